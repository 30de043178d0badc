//! The dead-letter file: events a sink rejected for good, and bytes that hold events but cannot
//! be read as them (a damaged spool record, an unreadable API answer), one JSON object per line.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::event::{Event, EventType};

/// The name of the dead-letter file in the spool directory.
pub const FILE_NAME: &str = "dead-letter.jsonl";

#[derive(Serialize)]
struct DeadLetter<'a> {
    time: String,
    pipe: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    id: Option<String>,
    reason: &'a str,
    event: &'a RawValue,
    /// The exact bytes in standard base64, only when `event` holds bytes that are not valid
    /// UTF-8 (there they are replaced by U+FFFD, so `event` alone would not give them back).
    #[serde(skip_serializing_if = "Option::is_none")]
    event_base64: Option<String>,
}

/// The dead-letter line for `event`, rejected by `pipe` for `reason` (no newline).
pub(crate) fn line(pipe: &str, event: &Event, reason: &str) -> String {
    let time = now();
    let fallback;
    let raw: &RawValue = match serde_json::from_str::<&RawValue>(event.line()) {
        Ok(raw) => raw,
        Err(_) => {
            // Cannot happen for an event from the API; keep the text all the same.
            fallback = serde_json::value::to_raw_value(event.line()).unwrap_or_default();
            &fallback
        }
    };
    let letter = DeadLetter {
        time,
        pipe,
        event_type: event.event_type().as_str(),
        id: event.id(),
        reason,
        event: raw,
        event_base64: None,
    };
    serde_json::to_string(&letter).unwrap_or_default()
}

/// The dead-letter line for `bytes` of `queue` that hold events but cannot be read as them (a
/// damaged spool record, an unreadable API answer), no newline: the bytes go in `event` as a
/// JSON string and `pipe` is empty. Nothing is lost: bytes that are not valid UTF-8 are also
/// kept exactly, in `event_base64`.
pub(crate) fn damaged_line(queue: EventType, bytes: &[u8], reason: &str) -> String {
    let text = String::from_utf8_lossy(bytes);
    let exact = matches!(text, std::borrow::Cow::Owned(_)).then(|| STANDARD.encode(bytes));
    let raw = serde_json::value::to_raw_value(&*text).unwrap_or_default();
    let letter = DeadLetter {
        time: now(),
        pipe: "",
        event_type: queue.as_str(),
        id: None,
        reason,
        event: &raw,
        event_base64: exact,
    };
    serde_json::to_string(&letter).unwrap_or_default()
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Appends `line` and a newline to the file at `path` and flushes it to the disk.
pub(crate) fn append(path: &Path, line: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    file.write_all(&bytes)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;

    #[test]
    fn line_has_every_field() {
        let event = Event::from_json(EventType::Alerts, r#"{"id":"a1","x":[1,2.50]}"#).unwrap();
        let text = line("P", &event, "too big");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["pipe"], "P");
        assert_eq!(v["type"], "alerts");
        assert_eq!(v["id"], "a1");
        assert_eq!(v["reason"], "too big");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        assert!(
            text.ends_with(r#""event":{"id":"a1","x":[1,2.50]}}"#),
            "{text}"
        );
    }

    #[test]
    fn damaged_bytes_are_kept_exactly() {
        let text = damaged_line(EventType::Alerts, br#"{"data":["a"]}"#, "cut");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["event"], r#"{"data":["a"]}"#);
        assert_eq!(v["type"], "alerts");
        assert_eq!(v["reason"], "cut");
        assert!(v.get("event_base64").is_none(), "{text}");

        let bytes = b"{\"data\":[\"\xff\xfe\"]}";
        let text = damaged_line(EventType::LogAuthn, bytes, "bad UTF-8");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["event"], "{\"data\":[\"\u{fffd}\u{fffd}\"]}");
        let exact = STANDARD
            .decode(v["event_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(exact, bytes);
    }
}
