//! Request bodies: a request's events as newline-delimited JSON or as one JSON array.
//!
//! Each event's line is already compact JSON (encoded once by the core), so a body is the lines
//! put together, never parsed again.

use broker_core::Event;

use crate::config::BodyFormat;

/// The body of a request that carries `events`.
pub fn encode_body(format: BodyFormat, events: &[Event]) -> Vec<u8> {
    let size: usize = events.iter().map(|e| e.line().len() + 1).sum::<usize>() + 1;
    let mut body = Vec::with_capacity(size);
    match format {
        BodyFormat::Ndjson => {
            for event in events {
                body.extend_from_slice(event.line().as_bytes());
                body.push(b'\n');
            }
        }
        BodyFormat::Array => {
            body.push(b'[');
            for (i, event) in events.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(event.line().as_bytes());
            }
            body.push(b']');
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use broker_core::EventType;

    use super::*;

    fn events(jsons: &[&str]) -> Vec<Event> {
        jsons
            .iter()
            .map(|j| Event::from_json(EventType::Alerts, j).unwrap())
            .collect()
    }

    #[test]
    fn ndjson_is_one_line_per_event() {
        let body = encode_body(
            BodyFormat::Ndjson,
            &events(&[r#"{"a": 1}"#, r#"{"b":"é"}"#]),
        );
        assert_eq!(body, b"{\"a\":1}\n{\"b\":\"\\u00e9\"}\n");
        assert_eq!(encode_body(BodyFormat::Ndjson, &[]), b"");
    }

    #[test]
    fn array_is_one_json_array() {
        let body = encode_body(BodyFormat::Array, &events(&[r#"{"a": 1}"#, "2.50"]));
        assert_eq!(body, b"[{\"a\":1},2.50]");
        assert_eq!(encode_body(BodyFormat::Array, &[]), b"[]");
    }
}
