//! Syslog message formats: pure functions from an event, a pipe's settings and a time to the
//! bytes of one message, kept apart from the framing and the transports that carry them (and
//! tested without any socket).
//!
//! - [`Format::Legacy`]: the existing broker's, which is what Python's
//!   `logging.handlers.SysLogHandler` sends: `<PRI>TAG: JSON`, with no time or host name (the
//!   receiving daemon adds them). The NUL byte that follows it on the wire is framing
//!   ([`super::framing`]), not part of the message.
//! - [`Format::Rfc3164`]: `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: JSON`, local time with a
//!   space-padded day (`Jan  5 09:03:07`).
//! - [`Format::Rfc5424`]: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID - JSON`, an RFC 3339 time with
//!   its zone, MSGID the event type, no structured data.
//!
//! The JSON is the event's output line, which is printable ASCII only: it never holds a NUL or a
//! newline, whatever the framing.

use broker_core::Event;
use chrono::{DateTime, FixedOffset, SecondsFormat};

use super::names::{Facility, Priority};

/// RFC 5424's longest HOSTNAME.
pub const MAX_HOSTNAME: usize = 255;
/// RFC 5424's longest APP-NAME (the `Tag`).
pub const MAX_APP_NAME: usize = 48;
/// RFC 5424's longest PROCID.
pub const MAX_PROCID: usize = 128;
/// RFC 5424's longest MSGID.
pub const MAX_MSGID: usize = 32;
/// RFC 3164's longest TAG.
pub const MAX_RFC3164_TAG: usize = 32;

/// What every message of a pipe carries besides the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageSettings {
    /// The facility (`local0` by default).
    pub facility: Facility,
    /// The priority (`info` by default).
    pub priority: Priority,
    /// The tag (RFC 5424: APP-NAME), `procustodibus` by default.
    pub tag: String,
    /// The host name of RFC 3164 and RFC 5424 messages (the legacy format has none).
    pub hostname: String,
    /// The process id of RFC 3164 and RFC 5424 messages (the broker's).
    pub procid: u32,
}

impl Default for MessageSettings {
    /// `local0`, `info`, `procustodibus`, host `localhost`, process id 0 (the sink fills in the
    /// system's host name and its own process id).
    fn default() -> Self {
        MessageSettings {
            facility: Facility::LOCAL0,
            priority: Priority::INFO,
            tag: "procustodibus".to_string(),
            hostname: "localhost".to_string(),
            procid: 0,
        }
    }
}

broker_core::keyword_enum! {
    /// How a message is laid out (the `Format` key).
    #[derive(Default)]
    pub enum Format {
        /// The existing broker's format (Python's `SysLogHandler`): `<PRI>TAG: JSON`.
        #[default]
        Legacy = "legacy",
        /// BSD syslog: `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: JSON`.
        Rfc3164 = "rfc3164",
        /// The syslog protocol: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID - JSON`.
        Rfc5424 = "rfc5424",
    }
}

impl Format {
    /// The bytes of one message for `event`, sent at `time`.
    pub fn encode(
        self,
        settings: &MessageSettings,
        event: &Event,
        time: &DateTime<FixedOffset>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(settings, event, time, &mut out);
        out
    }

    /// Appends the bytes of one message for `event`, sent at `time`, to `out`.
    pub fn encode_into(
        self,
        settings: &MessageSettings,
        event: &Event,
        time: &DateTime<FixedOffset>,
        out: &mut Vec<u8>,
    ) {
        let line = event.line();
        out.reserve(line.len() + settings.tag.len() + settings.hostname.len() + 64);
        out.push(b'<');
        out.extend_from_slice(
            pri(settings.facility, settings.priority)
                .to_string()
                .as_bytes(),
        );
        out.push(b'>');
        match self {
            Format::Legacy => {
                out.extend_from_slice(settings.tag.as_bytes());
                out.extend_from_slice(b": ");
            }
            Format::Rfc3164 => {
                let header = format!(
                    "{} {} {}[{}]: ",
                    time.format("%b %e %H:%M:%S"),
                    rfc5424_field(&settings.hostname, MAX_HOSTNAME),
                    rfc5424_field(&settings.tag, MAX_RFC3164_TAG),
                    settings.procid
                );
                out.extend_from_slice(header.as_bytes());
            }
            Format::Rfc5424 => {
                let header = format!(
                    "1 {} {} {} {} {} - ",
                    time.to_rfc3339_opts(SecondsFormat::Micros, true),
                    rfc5424_field(&settings.hostname, MAX_HOSTNAME),
                    rfc5424_field(&settings.tag, MAX_APP_NAME),
                    rfc5424_field(&settings.procid.to_string(), MAX_PROCID),
                    rfc5424_field(event.event_type().as_str(), MAX_MSGID)
                );
                out.extend_from_slice(header.as_bytes());
            }
        }
        out.extend_from_slice(line.as_bytes());
    }
}

/// The PRI value: facility code * 8 + priority code (`local0`/`info` is 134).
pub fn pri(facility: Facility, priority: Priority) -> u8 {
    facility.code() * 8 + priority.code()
}

/// Checks that a tag can go into a message of `format`: no control characters in any format (a
/// NUL or newline would end a message early on a stream); for RFC 3164 at most 32 printable
/// ASCII characters without space, `:`, `[` or `]`; for RFC 5424 (APP-NAME) at most 48 printable
/// ASCII characters without space.
pub fn check_tag(tag: &str, format: Format) -> Result<(), String> {
    if let Some(c) = tag.chars().find(|c| c.is_control()) {
        return Err(format!("tag {tag:?} contains the control character {c:?}"));
    }
    let (max, extra_forbidden): (usize, &[char]) = match format {
        Format::Legacy => return Ok(()),
        Format::Rfc3164 => (MAX_RFC3164_TAG, &[':', '[', ']']),
        Format::Rfc5424 => (MAX_APP_NAME, &[]),
    };
    if tag.is_empty() {
        return Err(format!("an empty tag is not allowed in format {format}"));
    }
    if let Some(c) = tag
        .chars()
        .find(|c| !c.is_ascii_graphic() || extra_forbidden.contains(c))
    {
        return Err(format!(
            "tag {tag:?} contains {c:?}, not allowed in format {format}"
        ));
    }
    if tag.len() > max {
        return Err(format!(
            "tag {tag:?} is {} characters long; format {format} allows at most {max}",
            tag.len()
        ));
    }
    Ok(())
}

/// Checks a `Hostname` value: 1 to 255 printable ASCII characters without space (RFC 5424).
pub fn check_hostname(hostname: &str) -> Result<(), String> {
    if hostname.is_empty() {
        return Err("empty: give the host name the messages should carry".to_string());
    }
    if let Some(c) = hostname.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "host name {hostname:?} contains {c:?} (printable ASCII without spaces only)"
        ));
    }
    if hostname.len() > MAX_HOSTNAME {
        return Err(format!(
            "host name is {} characters long; at most {MAX_HOSTNAME} are allowed",
            hostname.len()
        ));
    }
    Ok(())
}

/// The system's host name as messages carry it: the short name (up to the first dot), printable
/// ASCII only, at most 255 characters; `localhost` if nothing is left.
pub fn system_hostname() -> String {
    let name = gethostname::gethostname();
    short_hostname(&name.to_string_lossy())
}

/// `web1.example.com` -> `web1`, with what RFC 5424 does not allow left out.
pub fn short_hostname(name: &str) -> String {
    let short = name.split('.').next().unwrap_or_default();
    let clean: String = short
        .chars()
        .filter(char::is_ascii_graphic)
        .take(MAX_HOSTNAME)
        .collect();
    if clean.is_empty() {
        "localhost".to_string()
    } else {
        clean
    }
}

/// A header field as RFC 5424 allows it: printable ASCII without spaces (anything else left
/// out), at most `max` characters, and `-` (the NILVALUE) when nothing is left.
fn rfc5424_field(value: &str, max: usize) -> String {
    let clean: String = value
        .chars()
        .filter(char::is_ascii_graphic)
        .take(max)
        .collect();
    if clean.is_empty() {
        "-".to_string()
    } else {
        clean
    }
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
            hostname: "web1".to_string(),
            procid: 4242,
        }
    }

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    fn event(event_type: EventType, json: &str) -> Event {
        Event::from_json(event_type, json).unwrap()
    }

    #[test]
    fn pri_values() {
        let s = settings("local0", "info", "t");
        assert_eq!(pri(s.facility, s.priority), 134);
        let s = settings("kern", "emerg", "t");
        assert_eq!(pri(s.facility, s.priority), 0);
        let s = settings("local7", "debug", "t");
        assert_eq!(pri(s.facility, s.priority), 191);
    }

    #[test]
    fn legacy_bytes_exactly() {
        let e = event(EventType::Alerts, r#"{"id": "a1", "x": "é\u0000"}"#);
        let time = at("2026-01-05T09:03:07+01:00");
        let bytes = Format::Legacy.encode(&MessageSettings::default(), &e, &time);
        assert_eq!(
            bytes,
            b"<134>procustodibus: {\"id\":\"a1\",\"x\":\"\\u00e9\\u0000\"}"
        );
        let bytes = Format::Legacy.encode(&settings("user", "debug", "my-tag"), &e, &time);
        assert_eq!(
            bytes,
            b"<15>my-tag: {\"id\":\"a1\",\"x\":\"\\u00e9\\u0000\"}"
        );
        let bytes = Format::default().encode(&settings("kern", "emerg", "t"), &e, &time);
        assert!(bytes.starts_with(b"<0>t: {"));
    }

    #[test]
    fn rfc3164_bytes() {
        let e = event(EventType::LogAuthn, r#"{"id":1}"#);
        let s = settings("local0", "info", "procustodibus");
        let bytes = Format::Rfc3164.encode(&s, &e, &at("2026-01-05T09:03:07+01:00"));
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "<134>Jan  5 09:03:07 web1 procustodibus[4242]: {\"id\":1}"
        );
        let bytes = Format::Rfc3164.encode(&s, &e, &at("2026-12-25T23:59:59-05:00"));
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "<134>Dec 25 23:59:59 web1 procustodibus[4242]: {\"id\":1}"
        );
    }

    #[test]
    fn rfc5424_bytes() {
        let e = event(EventType::EndpointStats, r#"{"id":"s"}"#);
        let s = settings("auth", "warning", "procustodibus");
        let time = at("2026-01-05T09:03:07.25+01:00");
        assert_eq!(
            String::from_utf8(Format::Rfc5424.encode(&s, &e, &time)).unwrap(),
            "<36>1 2026-01-05T09:03:07.250000+01:00 web1 procustodibus 4242 endpoint_stats - \
             {\"id\":\"s\"}"
        );
        let utc = at("2026-01-05T09:03:07Z");
        assert_eq!(
            String::from_utf8(Format::Rfc5424.encode(&s, &e, &utc)).unwrap(),
            "<36>1 2026-01-05T09:03:07.000000Z web1 procustodibus 4242 endpoint_stats - \
             {\"id\":\"s\"}"
        );
    }

    #[test]
    fn rfc5424_fields_keep_to_the_limits() {
        let e = event(EventType::Alerts, r#"{"id":1}"#);
        let mut s = settings("local0", "info", &"a".repeat(60));
        s.hostname = format!("{} x", "h".repeat(300));
        let text =
            String::from_utf8(Format::Rfc5424.encode(&s, &e, &at("2026-01-05T09:03:07Z"))).unwrap();
        let fields: Vec<&str> = text.split(' ').collect();
        assert_eq!(fields[2], "h".repeat(255));
        assert_eq!(fields[3], "a".repeat(48));
        s.hostname = String::new();
        let text =
            String::from_utf8(Format::Rfc5424.encode(&s, &e, &at("2026-01-05T09:03:07Z"))).unwrap();
        assert_eq!(text.split(' ').nth(2), Some("-"));
    }

    #[test]
    fn encode_into_appends() {
        let e = event(EventType::Alerts, r#"{"id":1}"#);
        let mut out = b"x".to_vec();
        let time = at("2026-01-05T09:03:07Z");
        Format::Legacy.encode_into(&settings("local7", "err", "b"), &e, &time, &mut out);
        assert_eq!(out, b"x<187>b: {\"id\":1}");
    }

    #[test]
    fn format_names() {
        assert_eq!("Legacy".parse::<Format>(), Ok(Format::Legacy));
        assert_eq!(" RFC3164 ".parse::<Format>(), Ok(Format::Rfc3164));
        assert_eq!("rfc5424".parse::<Format>(), Ok(Format::Rfc5424));
        assert_eq!(
            "json".parse::<Format>().unwrap_err(),
            "unknown format \"json\" (expected one of: legacy, rfc3164, rfc5424)"
        );
        for name in Format::NAMES {
            assert_eq!(name.parse::<Format>().unwrap().to_string(), *name);
        }
    }

    #[test]
    fn tags_per_format() {
        assert!(check_tag("procustodibus", Format::Legacy).is_ok());
        assert!(check_tag("my broker é", Format::Legacy).is_ok());
        assert!(check_tag("a\0b", Format::Legacy).is_err());
        assert!(check_tag("a\tb", Format::Rfc5424).is_err());
        assert!(check_tag(&"a".repeat(32), Format::Rfc3164).is_ok());
        assert_eq!(
            check_tag(&"a".repeat(33), Format::Rfc3164).unwrap_err(),
            format!(
                "tag \"{}\" is 33 characters long; format rfc3164 allows at most 32",
                "a".repeat(33)
            )
        );
        assert!(check_tag(&"a".repeat(48), Format::Rfc5424).is_ok());
        assert!(check_tag(&"a".repeat(49), Format::Rfc5424).is_err());
        assert_eq!(
            check_tag("a b", Format::Rfc5424).unwrap_err(),
            "tag \"a b\" contains ' ', not allowed in format rfc5424"
        );
        assert!(check_tag("a[1]", Format::Rfc3164).is_err());
        assert!(check_tag("a:b", Format::Rfc3164).is_err());
        assert!(check_tag("a:b", Format::Rfc5424).is_ok());
        assert!(check_tag("", Format::Rfc5424).is_err());
    }

    #[test]
    fn hostnames() {
        assert!(check_hostname("web1.example.com").is_ok());
        assert!(check_hostname("").is_err());
        assert!(check_hostname("a b").is_err());
        assert!(check_hostname(&"h".repeat(256)).is_err());
        assert_eq!(short_hostname("web1.example.com"), "web1");
        assert_eq!(short_hostname("wéb 1"), "wb1");
        assert_eq!(short_hostname(""), "localhost");
        assert!(!system_hostname().is_empty());
        assert!(check_hostname(&system_hostname()).is_ok());
    }
}
