//! Syslog message formats: pure functions from an event and a pipe's settings to the bytes of one
//! message, kept apart from the transports that carry them (and tested without any socket).
//!
//! The one format so far is the existing broker's, which is what Python's
//! `logging.handlers.SysLogHandler` sends: `<PRI>TAG: JSON` and a NUL byte, with no timestamp or
//! host name (the receiving syslog daemon adds them).

use broker_core::Event;

use super::names::{Facility, Priority};

/// What every message of a pipe carries besides the event: facility, priority and tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageSettings {
    /// The facility (`local0` by default).
    pub facility: Facility,
    /// The priority (`info` by default).
    pub priority: Priority,
    /// The tag before the colon (`procustodibus` by default).
    pub tag: String,
}

impl Default for MessageSettings {
    fn default() -> Self {
        MessageSettings {
            facility: Facility::LOCAL0,
            priority: Priority::INFO,
            tag: "procustodibus".to_string(),
        }
    }
}

/// How a message is laid out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// The existing broker's format (Python's `SysLogHandler`): `<PRI>TAG: JSON\0`.
    #[default]
    SysLogHandler,
}

impl Format {
    /// The bytes of one message for `event`.
    pub fn encode(self, settings: &MessageSettings, event: &Event) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(settings, event, &mut out);
        out
    }

    /// Appends the bytes of one message for `event` to `out`.
    pub fn encode_into(self, settings: &MessageSettings, event: &Event, out: &mut Vec<u8>) {
        match self {
            Format::SysLogHandler => sysloghandler_message(settings, event, out),
        }
    }
}

/// The PRI value: facility code * 8 + priority code (`local0`/`info` is 134).
pub fn pri(facility: Facility, priority: Priority) -> u8 {
    facility.code() * 8 + priority.code()
}

/// Checks that a tag can go into a message: no control characters (a NUL would end a message
/// early on a stream socket).
pub fn check_tag(tag: &str) -> Result<(), String> {
    match tag.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("tag {tag:?} contains the control character {c:?}")),
        None => Ok(()),
    }
}

/// `<PRI>TAG: JSON\0`.
fn sysloghandler_message(settings: &MessageSettings, event: &Event, out: &mut Vec<u8>) {
    let line = event.line();
    out.reserve(line.len() + settings.tag.len() + 8);
    out.push(b'<');
    out.extend_from_slice(
        pri(settings.facility, settings.priority)
            .to_string()
            .as_bytes(),
    );
    out.push(b'>');
    out.extend_from_slice(settings.tag.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(line.as_bytes());
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_core::EventType;

    fn settings(facility: &str, priority: &str, tag: &str) -> MessageSettings {
        MessageSettings {
            facility: facility.parse().unwrap(),
            priority: priority.parse().unwrap(),
            tag: tag.to_string(),
        }
    }

    #[test]
    fn pri_values() {
        let pri_of = |f: &str, p: &str| pri(f.parse().unwrap(), p.parse().unwrap());
        assert_eq!(pri_of("local0", "info"), 134);
        assert_eq!(pri_of("user", "debug"), 15);
        assert_eq!(pri_of("auth", "emerg"), 32);
        assert_eq!(pri_of("local7", "err"), 187);
        assert_eq!(pri_of("authpriv", "notice"), 85);
        assert_eq!(pri_of("kern", "emerg"), 0);
        assert_eq!(pri_of("local7", "debug"), 191);
    }

    #[test]
    fn message_bytes() {
        let event = Event::from_json(EventType::Alerts, r#"{"id": "a1", "x": "é\u0000"}"#).unwrap();
        let bytes = Format::SysLogHandler.encode(&MessageSettings::default(), &event);
        assert_eq!(
            bytes,
            b"<134>procustodibus: {\"id\":\"a1\",\"x\":\"\\u00e9\\u0000\"}\0"
        );
        let bytes = Format::SysLogHandler.encode(&settings("user", "debug", "my-tag"), &event);
        assert_eq!(
            bytes,
            b"<15>my-tag: {\"id\":\"a1\",\"x\":\"\\u00e9\\u0000\"}\0"
        );
        let bytes = Format::default().encode(&settings("kern", "emerg", "t"), &event);
        assert!(bytes.starts_with(b"<0>t: {"));
    }

    #[test]
    fn encode_into_appends() {
        let event = Event::from_json(EventType::Alerts, r#"{"id":1}"#).unwrap();
        let mut out = b"x".to_vec();
        Format::SysLogHandler.encode_into(&settings("local7", "err", "b"), &event, &mut out);
        assert_eq!(out, b"x<187>b: {\"id\":1}\0");
    }

    #[test]
    fn tags_without_control_characters() {
        assert!(check_tag("procustodibus").is_ok());
        assert!(check_tag("my broker é").is_ok());
        assert!(check_tag("a\0b").is_err());
        assert!(check_tag("a\tb").is_err());
    }
}
