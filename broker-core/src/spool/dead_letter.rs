//! The dead-letter file: events a sink rejected for good, one JSON object per line.

use std::io::Write;
use std::path::Path;

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
    };
    serde_json::to_string(&letter).unwrap_or_default()
}

/// The dead-letter line for the bytes of a damaged spool record of `queue` (no newline): the
/// bytes go in `event` as a JSON string (invalid UTF-8 replaced), `pipe` is empty.
pub(crate) fn damaged_line(queue: EventType, bytes: &[u8], reason: &str) -> String {
    let text = String::from_utf8_lossy(bytes);
    let raw = serde_json::value::to_raw_value(&*text).unwrap_or_default();
    let letter = DeadLetter {
        time: now(),
        pipe: "",
        event_type: queue.as_str(),
        id: None,
        reason,
        event: &raw,
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
}
