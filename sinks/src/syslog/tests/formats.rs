//! Every format in every framing (and in a datagram), parsed back without any socket: the legacy
//! format byte by byte, RFC 3164 and RFC 5424 with `syslog_loose`.

use chrono::{DateTime, FixedOffset};
use syslog_loose::{ProcId, Protocol as Version, SyslogFacility, SyslogSeverity, Variant};

use super::*;
use format::Format;

pub(super) const FORMATS: [Format; 3] = [Format::Legacy, Format::Rfc3164, Format::Rfc5424];
pub(super) const FRAMINGS: [Framing; 3] = [Framing::Octet, Framing::Lf, Framing::Nul];

/// `local3`/`warning` (PRI 156), tag `procustodibus`, host `web1`, process 4242.
pub(super) fn settings() -> MessageSettings {
    MessageSettings {
        facility: "local3".parse().unwrap(),
        priority: "warning".parse().unwrap(),
        tag: "procustodibus".to_string(),
        hostname: "web1".to_string(),
        procid: 4242,
    }
}

/// Events of every type, with text that a careless encoder would break a frame with: newlines,
/// carriage returns, NUL, non-ASCII, quotes and backslashes.
pub(super) fn tricky_events() -> Vec<Event> {
    let raw = [
        (
            EventType::Alerts,
            r#"{"id":"a1","text":"line 1\nline 2\r\n","n":1.50}"#,
        ),
        (
            EventType::EndpointStats,
            r#"{"id":"s1","x":"\u0000 nul é 😀"}"#,
        ),
        (EventType::LogAuthn, r#"{"id":7,"q":"say \"hi\" \\ / \t"}"#),
        (
            EventType::LogChanges,
            r#"{"type":"log_changes","nested":{"a\nb":[1,2]}}"#,
        ),
        (
            EventType::Test,
            r#"{"attributes":{"created":"2022-01-01T12:34:56Z"},"id":"p"}"#,
        ),
    ];
    raw.iter()
        .map(|(event_type, json)| Event::from_json(*event_type, json).unwrap())
        .collect()
}

/// Checks one message of `event` in `format` field by field; returns its timestamp (none in the
/// legacy format). `tz` is the zone an RFC 3164 time is read in.
pub(super) fn parse_back(
    format: Format,
    message: &[u8],
    event: &Event,
    settings: &MessageSettings,
    tz: FixedOffset,
    year: i32,
) -> Option<DateTime<FixedOffset>> {
    let pri = format::pri(settings.facility, settings.priority);
    let text = std::str::from_utf8(message).expect("a message is ASCII");
    assert!(text.is_ascii(), "{text}");
    match format {
        Format::Legacy => {
            assert_eq!(text, format!("<{pri}>{}: {}", settings.tag, event.line()));
            None
        }
        Format::Rfc3164 => {
            let parsed = syslog_loose::parse_message_with_year_tz(
                text,
                |_| year,
                Some(tz),
                Variant::RFC3164,
            );
            assert_eq!(parsed.protocol, Version::RFC3164, "{text}");
            check_common(&parsed, text, event, settings);
            assert_eq!(parsed.msgid, None, "{text}");
            parsed.timestamp
        }
        Format::Rfc5424 => {
            let parsed = syslog_loose::parse_message_with_year_tz(
                text,
                |_| year,
                Some(tz),
                Variant::RFC5424,
            );
            assert_eq!(parsed.protocol, Version::RFC5424(1), "{text}");
            check_common(&parsed, text, event, settings);
            assert_eq!(
                parsed.msgid,
                Some(event.event_type().as_str()),
                "MSGID is the event type: {text}"
            );
            assert!(parsed.structured_data.is_empty(), "{text}");
            parsed.timestamp
        }
    }
}

/// Facility, severity, host name, app name, process id and message.
fn check_common(
    parsed: &syslog_loose::Message<&str>,
    text: &str,
    event: &Event,
    settings: &MessageSettings,
) {
    assert_eq!(parsed.facility, Some(SyslogFacility::LOG_LOCAL3), "{text}");
    assert_eq!(parsed.severity, Some(SyslogSeverity::SEV_WARNING), "{text}");
    assert_eq!(parsed.hostname, Some(settings.hostname.as_str()), "{text}");
    assert_eq!(parsed.appname, Some(settings.tag.as_str()), "{text}");
    let pid = i32::try_from(settings.procid).unwrap();
    assert_eq!(parsed.procid, Some(ProcId::PID(pid)), "{text}");
    assert_eq!(
        parsed.msg,
        event.line(),
        "the message is the JSON line: {text}"
    );
}

fn time(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap()
}

#[test]
fn every_format_and_framing_parses_back() {
    let events = tricky_events();
    let settings = settings();
    for sent in [
        time("2026-01-05T09:03:07.123456+01:00"),
        time("2026-11-27T21:05:01-08:00"),
        time("2026-03-10T00:00:00Z"),
    ] {
        for format in FORMATS {
            for framing in FRAMINGS {
                let mut stream = Vec::new();
                for event in &events {
                    let message = format.encode(&settings, event, &sent);
                    assert!(!message.contains(&b'\n'), "{format}: a raw newline");
                    assert!(!message.contains(&0), "{format}: a NUL inside the frame");
                    framing.frame_into(&message, &mut stream);
                }
                let (messages, rest) = framing::split_frames(framing, &stream).unwrap();
                assert!(rest.is_empty(), "{format}/{framing}: bytes left over");
                assert_eq!(messages.len(), events.len(), "{format}/{framing}");
                for (message, event) in messages.iter().zip(&events) {
                    let stamp = parse_back(format, message, event, &settings, *sent.offset(), 2026);
                    match format {
                        Format::Legacy => assert_eq!(stamp, None),
                        // RFC 3164 has whole seconds in local time.
                        Format::Rfc3164 => assert_eq!(
                            stamp,
                            Some(time(&sent.format("%Y-%m-%dT%H:%M:%S%:z").to_string()))
                        ),
                        Format::Rfc5424 => assert_eq!(stamp, Some(sent)),
                    }
                }
            }
        }
    }
}

#[test]
fn every_format_in_a_datagram_parses_back() {
    let events = tricky_events();
    let settings = settings();
    let sent = time("2026-01-05T09:03:07.5+01:00");
    for format in FORMATS {
        for event in &events {
            let message = format.encode(&settings, event, &sent);
            let datagram = framing::datagram(format, &message);
            let body = match format {
                Format::Legacy => {
                    // docs/protocol.md's bytes exactly: `<PRI>TAG: JSON` and one NUL.
                    let want = format!("<156>procustodibus: {}\0", event.line());
                    assert_eq!(datagram, want.as_bytes());
                    &datagram[..datagram.len() - 1]
                }
                _ => &datagram[..],
            };
            parse_back(format, body, event, &settings, *sent.offset(), 2026);
        }
    }
}

#[test]
fn lf_frames_split_at_the_messages_only() {
    // Raw newlines in the event's strings are escaped, so each LF ends exactly one message.
    let events = tricky_events();
    let time = time("2026-01-05T09:03:07Z");
    for format in FORMATS {
        let mut stream = Vec::new();
        for event in &events {
            Framing::Lf.frame_into(&format.encode(&settings(), event, &time), &mut stream);
        }
        let newlines = stream.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(newlines, events.len(), "{format}");
        assert!(stream.ends_with(b"\n"));
        assert!(!stream.contains(&b'\r'), "{format}");
    }
}

#[test]
fn rfc3164_day_is_space_padded() {
    let event = &tricky_events()[0];
    let message = Format::Rfc3164.encode(&settings(), event, &time("2026-01-05T09:03:07+00:00"));
    assert!(message.starts_with(b"<156>Jan  5 09:03:07 web1 procustodibus[4242]: {"));
    let message = Format::Rfc3164.encode(&settings(), event, &time("2026-01-15T19:03:07+00:00"));
    assert!(message.starts_with(b"<156>Jan 15 19:03:07 web1 "));
}
