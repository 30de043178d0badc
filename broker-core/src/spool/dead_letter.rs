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
