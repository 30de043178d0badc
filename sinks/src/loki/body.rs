//! A push request's body: the events grouped into streams by their labels, each event an entry
//! `[timestamp, line]`.
//!
//! ```json
//! {"streams":[{"stream":{"job":"procustodibus-broker","type":"alerts","env":"prod"},
//!              "values":[["1714550453000000000","{\"id\":\"a1\",...}"], ...]}, ...]}
//! ```
//!
//! The labels of a stream are `job="procustodibus-broker"`, `type=<event type>` and the pipe's
//! `Label` keys, so there is one stream per event type in a request, in the order the types
//! first appear; within a stream the entries keep the order of the batch. The timestamp is the
//! event's `attributes.created` (RFC 3339) in nanoseconds since the epoch, as a string; an event
//! without a readable `created` gets the time the request is built. The line is the event's
//! JSON object exactly as the file sink writes it ([`Event::line`]).

use std::time::{SystemTime, UNIX_EPOCH};

use broker_core::{Event, EventType};
use serde::Deserialize;

use super::config::JOB;

/// One event's place in a request, to match what Loki says about entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRef {
    /// Its stream, an index into [`PushBody::streams`].
    pub stream: usize,
    /// Its timestamp in nanoseconds.
    pub nanos: i64,
    /// The length of its line in bytes.
    pub length: usize,
}

/// A request's body and where each event went in it.
#[derive(Debug)]
pub struct PushBody {
    /// The JSON body.
    pub body: Vec<u8>,
    /// Each event's entry, in the order of the events.
    pub entries: Vec<EntryRef>,
    /// Each stream's labels as Loki writes them in its messages (`{env="prod", job="...",
    /// type="alerts"}`: sorted by name, values quoted), spaces removed.
    pub streams: Vec<String>,
}

/// Builds the body for `events` with the pipe's own `labels`; `now` stands for a missing
/// `created`.
pub fn build(events: &[Event], labels: &[(String, String)], now: i64) -> PushBody {
    let mut types: Vec<EventType> = Vec::new();
    let mut entries = Vec::with_capacity(events.len());
    for event in events {
        let stream = match types.iter().position(|t| *t == event.event_type()) {
            Some(i) => i,
            None => {
                types.push(event.event_type());
                types.len() - 1
            }
        };
        entries.push(EntryRef {
            stream,
            nanos: created_nanos(event.line()).unwrap_or(now),
            length: event.line().len(),
        });
    }
    let size = events.iter().map(|e| e.line().len() + 64).sum::<usize>() + 256 * types.len();
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(b"{\"streams\":[");
    for (i, event_type) in types.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"stream\":{\"job\":");
        push_string(&mut body, JOB);
        body.extend_from_slice(b",\"type\":");
        push_string(&mut body, event_type.as_str());
        for (name, value) in labels {
            body.push(b',');
            push_string(&mut body, name);
            body.push(b':');
            push_string(&mut body, value);
        }
        body.extend_from_slice(b"},\"values\":[");
        let mut first = true;
        for (event, entry) in events.iter().zip(&entries) {
            if entry.stream != i {
                continue;
            }
            if !first {
                body.push(b',');
            }
            first = false;
            body.extend_from_slice(b"[\"");
            body.extend_from_slice(entry.nanos.to_string().as_bytes());
            body.extend_from_slice(b"\",");
            push_string(&mut body, event.line());
            body.push(b']');
        }
        body.extend_from_slice(b"]}");
    }
    body.extend_from_slice(b"]}");
    let streams = types
        .iter()
        .map(|t| stream_name(t.as_str(), labels))
        .collect();
    PushBody {
        body,
        entries,
        streams,
    }
}

/// The time now in nanoseconds since the epoch.
pub fn now_nanos() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}

/// The event's `attributes.created` in nanoseconds since the epoch, if it is an RFC 3339 time
/// (with any offset and fraction) within the years 1678 to 2261.
pub fn created_nanos(line: &str) -> Option<i64> {
    #[derive(Deserialize)]
    struct Top {
        attributes: Option<Attributes>,
    }
    #[derive(Deserialize)]
    struct Attributes {
        created: Option<serde_json::Value>,
    }
    let top: Top = serde_json::from_str(line).ok()?;
    let created = top.attributes?.created?;
    let text = created.as_str()?;
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()?
        .timestamp_nanos_opt()
}

/// Appends `text` as a JSON string. Event lines are ASCII with control characters escaped
/// already; this escapes `"` and `\` (and any control character) so that the line is the
/// string's value.
fn push_string(body: &mut Vec<u8>, text: &str) {
    body.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0..=0x1f => {
                body.extend_from_slice(&bytes[start..i]);
                body.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        body.extend_from_slice(&bytes[start..i]);
        body.extend_from_slice(escape);
        start = i + 1;
    }
    body.extend_from_slice(&bytes[start..]);
    body.push(b'"');
}

/// A stream's labels as Loki names a stream in its messages, without spaces: sorted by name,
/// each `name="value"` with the value quoted (`\\`, `\"`, `\n`, `\t`, `\r` escaped).
pub fn stream_name(event_type: &str, labels: &[(String, String)]) -> String {
    let mut all: Vec<(&str, &str)> = vec![("job", JOB), ("type", event_type)];
    all.extend(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    all.sort();
    let mut name = String::from("{");
    for (i, (label, value)) in all.iter().enumerate() {
        if i > 0 {
            name.push(',');
        }
        name.push_str(label);
        name.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => name.push_str("\\\\"),
                '"' => name.push_str("\\\""),
                '\n' => name.push_str("\\n"),
                '\t' => name.push_str("\\t"),
                '\r' => name.push_str("\\r"),
                c => name.push(c),
            }
        }
        name.push('"');
    }
    name.push('}');
    without_spaces(&name)
}

/// `text` without white space: how stream names are compared (Loki writes `, ` between labels).
pub fn without_spaces(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}
