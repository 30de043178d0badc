//! `_bulk` request bodies: for each event an action line, `{"create":{"_id":"ID"}}`, and the
//! document line, the event's line as the file sink writes it (compact JSON, encoded once by the
//! core) with `"@timestamp"` (the event's `attributes.created`) put first, which a data stream
//! needs. Each line ends with a newline (`application/x-ndjson`).
//!
//! The `_id` is the event's `id`, so that a resend of an event already stored is answered 409
//! (a conflict on `create`) instead of storing it twice. An event without an `id` gets no `_id`
//! (the receiver makes one up: that event is delivered at least once); one without
//! `attributes.created` gets no `@timestamp` (a data stream then refuses it, and it is
//! dead-lettered with the receiver's reason).

use std::borrow::Cow;

use broker_core::Event;
use serde::Deserialize;

/// The members of an event that a bulk entry needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fields {
    /// The `id` (a string, or a number's text).
    pub id: Option<String>,
    /// `attributes.created`.
    pub created: Option<String>,
}

/// Reads `id` and `attributes.created` from an event's line; either is `None` when missing or
/// not a string (a number for `id`), and both are when the line is not an object of that shape.
pub fn fields(line: &str) -> Fields {
    #[derive(Deserialize)]
    struct Attributes<'a> {
        #[serde(borrow)]
        created: Option<Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct Members<'a> {
        id: Option<serde_json::Value>,
        #[serde(borrow)]
        attributes: Option<Attributes<'a>>,
    }
    let Ok(members) = serde_json::from_str::<Members>(line) else {
        return Fields::default();
    };
    let id = match members.id {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let created = members
        .attributes
        .and_then(|a| a.created)
        .map(Cow::into_owned);
    Fields { id, created }
}

/// Appends the bulk entry of `event` (its action line and its document line) to `out`, and
/// gives the event's `_id` if it has one.
pub fn push_entry(event: &Event, out: &mut Vec<u8>) -> Option<String> {
    let line = event.line();
    let Fields { id, created } = fields(line);
    out.extend_from_slice(b"{\"create\":{");
    if let Some(id) = &id {
        out.extend_from_slice(b"\"_id\":");
        push_json_string(id, out);
    }
    out.extend_from_slice(b"}}\n");
    match (created, line.strip_prefix('{')) {
        (Some(created), Some(rest)) => {
            out.extend_from_slice(b"{\"@timestamp\":");
            push_json_string(&created, out);
            if rest != "}" {
                out.push(b',');
            }
            out.extend_from_slice(rest.as_bytes());
        }
        _ => out.extend_from_slice(line.as_bytes()),
    }
    out.push(b'\n');
    id
}

/// `text` as a JSON string.
fn push_json_string(text: &str, out: &mut Vec<u8>) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}
