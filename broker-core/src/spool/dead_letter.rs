//! The dead-letter file: events a sink rejected for good, and bytes that hold events but cannot
//! be read as them (a damaged spool record, an unreadable pull answer), one JSON object per line.
//!
//! Each dead letter is exactly one line and keeps its payload whole: an event's line is kept as
//! JSON (compacted, should it hold white space), or as a string if it is not JSON; the bytes of a
//! damaged spool record or an unreadable pull answer as a string, and exactly in `event_base64`
//! when they are not UTF-8.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::encode::encode_python_compact;
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
    /// The exact bytes of a damaged record that is not UTF-8 (`event` has them with U+FFFD for
    /// each invalid sequence).
    #[serde(skip_serializing_if = "Option::is_none")]
    event_base64: Option<String>,
}

/// The dead-letter line for `event`, rejected by `pipe` for `reason` (no newline).
pub(crate) fn line(pipe: &str, event: &Event, reason: &str) -> String {
    let time = now();
    // An output line is copied as it is; a line built by hand may hold white space (even new
    // lines) and is compacted; one that is not JSON at all (which no API event is) is kept as a
    // string.
    let raw = encode_python_compact(event.line())
        .ok()
        .and_then(|compact| RawValue::from_string(compact).ok())
        .unwrap_or_else(|| as_json_string(event.line()));
    let letter = DeadLetter {
        time,
        pipe,
        event_type: event.event_type().as_str(),
        id: event.id(),
        reason,
        event: &raw,
        event_base64: None,
    };
    serde_json::to_string(&letter).unwrap_or_default()
}

/// The dead-letter line for bytes of `queue` that hold events but cannot be read as them (a
/// damaged spool record, an unreadable pull answer), no newline: the bytes go in `event` as a
/// JSON string (invalid UTF-8 replaced) and, when they are not UTF-8, exactly in
/// `event_base64`; `pipe` is empty.
pub(crate) fn damaged_line(queue: EventType, bytes: &[u8], reason: &str) -> String {
    let text = String::from_utf8_lossy(bytes);
    let exact = std::str::from_utf8(bytes)
        .is_err()
        .then(|| STANDARD.encode(bytes));
    let letter = DeadLetter {
        time: now(),
        pipe: "",
        event_type: queue.as_str(),
        id: None,
        reason,
        event: &as_json_string(&text),
        event_base64: exact,
    };
    serde_json::to_string(&letter).unwrap_or_default()
}

/// `text` as a JSON string.
fn as_json_string(text: &str) -> Box<RawValue> {
    serde_json::value::to_raw_value(text).unwrap_or_default()
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Appends `line` and a newline to the file at `path` and flushes it to the disk, holding the
/// file's lock (see [`open_locked`]).
pub(crate) fn append(path: &Path, line: &str) -> std::io::Result<()> {
    let mut file = open_locked(path)?;
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    file.write_all(&bytes)?;
    file.sync_data()
}

/// Opens the dead-letter file at `path` to read and append (creating it, mode 0600, never
/// through a link) and takes an exclusive `flock` on it, once sure that it is still the file at
/// `path`: a redelivery replaces the file while holding this lock, and whoever opened the old
/// one opens the new one instead. The lock goes with the returned file.
pub(crate) fn open_locked(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    loop {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        flock_exclusive(&file)?;
        let held = file.metadata()?;
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(file),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Waits for an exclusive `flock` on `file` (released when the file is closed).
pub(crate) fn flock_exclusive(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock on a descriptor `file` owns; no memory is shared.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A dead-letter line read back.
#[derive(serde::Deserialize)]
pub(crate) struct Letter {
    /// When it was written (UTC, milliseconds, `Z`).
    #[serde(default)]
    pub(crate) time: String,
    /// The pipe that rejected it; empty for bytes or events that never reached a pipe.
    #[serde(default)]
    pub(crate) pipe: String,
    /// The queue it came from.
    #[serde(rename = "type", default)]
    pub(crate) event_type: String,
    /// The event's id, if it has one.
    #[serde(default)]
    pub(crate) id: Option<String>,
    /// Why it is here.
    #[serde(default)]
    pub(crate) reason: String,
    /// The event (a JSON object), or raw bytes as a JSON string.
    pub(crate) event: Box<RawValue>,
}

impl Letter {
    /// The dead letter on `line`, if it is one.
    pub(crate) fn parse(line: &str) -> Option<Letter> {
        serde_json::from_str(line).ok()
    }

    /// The reason with the event's own id shown as `<id>`, so that the same failure of many
    /// events reads the same.
    pub(crate) fn reason_of_any_event(&self) -> String {
        match &self.id {
            Some(id) if !id.is_empty() => self.reason.replace(id.as_str(), "<id>"),
            _ => self.reason.clone(),
        }
    }

    /// The event it holds, if it holds one (a JSON object from a known queue) rather than raw
    /// bytes (a damaged spool record, an unreadable API answer).
    pub(crate) fn event(&self) -> Option<Event> {
        let queue: EventType = self.event_type.parse().ok()?;
        if !self.event.get().starts_with('{') {
            return None;
        }
        Event::from_json(queue, self.event.get()).ok()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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

    /// A dead-letter line as JSON, after checking that it is exactly one line.
    fn parse_one_line(line: &str) -> Result<serde_json::Value, TestCaseError> {
        prop_assert!(!line.contains(['\n', '\r']), "{line:?}");
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| TestCaseError::fail(format!("{e}: {line:?}")))?;
        prop_assert!(value.is_object(), "{line:?}");
        Ok(value)
    }

    /// Event lines of every kind: output lines, valid JSON with white space and new lines,
    /// anything at all.
    fn event_text() -> impl Strategy<Value = String> {
        let json =
            any::<String>().prop_map(|s| serde_json::json!({"id": s.clone(), "x": [s, 1.50]}));
        prop_oneof![
            json.clone().prop_map(|v| v.to_string()),
            json.prop_map(|v| format!(" {} ", serde_json::to_string_pretty(&v).unwrap())),
            any::<String>(),
            "[{}\\[\\]\"a-c:, \n\t0-9.-]{0,20}",
        ]
    }

    proptest! {
        #[test]
        fn a_dead_letter_is_one_json_line_that_keeps_the_event(
            text in event_text(),
            pipe in any::<String>(),
            reason in any::<String>(),
        ) {
            let event = Event::from_encoded_line(EventType::LogAuthn, text.clone());
            let out = line(&pipe, &event, &reason);
            let v = parse_one_line(&out)?;
            prop_assert_eq!(&v["pipe"], &serde_json::Value::from(pipe));
            prop_assert_eq!(&v["reason"], &serde_json::Value::from(reason));
            prop_assert_eq!(&v["type"], "log_authn");
            prop_assert!(v["id"].is_null() || v["id"].is_string(), "{:?}", v["id"]);
            // The event compacted to one line, reading as serde_json reads it; or its text as a
            // string when it is not JSON.
            match encode_python_compact(&text) {
                Ok(compact) => {
                    prop_assert!(out.ends_with(&format!(",\"event\":{compact}}}")), "{out:?}");
                    if let Ok(event) = serde_json::from_str::<serde_json::Value>(&text) {
                        prop_assert_eq!(&v["event"], &event);
                    }
                }
                Err(_) => prop_assert_eq!(&v["event"], &serde_json::Value::from(text)),
            }
        }

        #[test]
        fn a_damaged_record_is_one_json_line_that_keeps_its_bytes(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..256),
                any::<String>().prop_map(String::into_bytes),
            ],
            reason in any::<String>(),
        ) {
            let out = damaged_line(EventType::Alerts, &bytes, &reason);
            let v = parse_one_line(&out)?;
            prop_assert_eq!(&v["pipe"], "");
            prop_assert_eq!(&v["type"], "alerts");
            prop_assert_eq!(&v["reason"], &serde_json::Value::from(reason));
            let shown = v["event"].as_str().unwrap();
            prop_assert_eq!(shown, String::from_utf8_lossy(&bytes));
            // The exact bytes come back, also when they are not UTF-8.
            let recovered = match v.get("event_base64") {
                Some(b64) => {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.as_str().unwrap())
                        .unwrap()
                }
                None => shown.as_bytes().to_vec(),
            };
            prop_assert_eq!(recovered, bytes);
        }
    }
}
