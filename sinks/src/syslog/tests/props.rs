//! Property tests of framing and message formats against hostile input, without sockets:
//! octet-counted frames of any bytes split back into exactly the messages (also from a stream cut
//! anywhere); for any event and any `Tag` and `Hostname` the config accepts, a message holds no
//! LF or NUL of its own (so `lf` and `nul` frames split only between messages), and its RFC 3164
//! or RFC 5424 header is well formed and carries exactly the configured names; what the config
//! refuses gets a one-line error. The case count comes from `PROPTEST_CASES` (scripts/test sets
//! it).

use chrono::{DateTime, FixedOffset, TimeZone};
use proptest::prelude::*;
use serde_json::Value;

use super::formats::{FORMATS, FRAMINGS};
use super::*;
use format::{check_hostname, check_tag, short_hostname, Format, MAX_APP_NAME, MAX_HOSTNAME};
use names::{FACILITIES, PRIORITIES};

/// Any JSON value, strings with any characters (control characters, NUL, new lines included).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[\\x00-\\x1f\\n\\r\"\\\\ a]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn event() -> impl Strategy<Value = Event> {
    (
        json_value(),
        proptest::sample::select(EventType::ALL.to_vec()),
    )
        .prop_map(|(v, t)| Event::from_json(t, &v.to_string()).unwrap())
}

/// A `Tag` or `Hostname` value as an operator might write it: plain names, any printable
/// ASCII, too long, or anything at all.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9.-]{0,20}",
        "[!-~]{1,60}",
        "[!-~]{250,260}",
        "[ -~]{0,10}",
        any::<String>(),
    ]
}

/// Any time from 1970 to 2096 with microseconds, in any zone from -14:00 to +14:00.
fn time() -> impl Strategy<Value = DateTime<FixedOffset>> {
    (0i64..4_000_000_000, 0u32..1_000_000, -840i32..=840).prop_map(|(secs, micros, minutes)| {
        FixedOffset::east_opt(minutes * 60)
            .unwrap()
            .timestamp_opt(secs, micros * 1000)
            .unwrap()
    })
}

fn settings() -> impl Strategy<Value = (MessageSettings, Format)> {
    (
        proptest::sample::select(FACILITIES),
        proptest::sample::select(PRIORITIES),
        name(),
        name(),
        any::<u32>(),
        proptest::sample::select(FORMATS.to_vec()),
    )
        .prop_map(|(f, p, tag, hostname, procid, format)| {
            let settings = MessageSettings {
                facility: f.0.parse().unwrap(),
                priority: p.0.parse().unwrap(),
                tag,
                hostname,
                procid,
            };
            (settings, format)
        })
}

/// Splits `text` at its first space: the field before it and the rest.
fn field(text: &str) -> Result<(&str, &str), TestCaseError> {
    text.split_once(' ')
        .ok_or_else(|| TestCaseError::fail(format!("no space after a field in {text:?}")))
}

/// Checks an RFC 5424 header field: 1 to `max` printable ASCII characters without space.
fn check_field(value: &str, max: usize, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        (1..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()),
        "field {value:?} in {text:?}"
    );
    Ok(())
}

/// Checks a message field by field against what was configured and sent.
fn check_message(
    format: Format,
    message: &[u8],
    settings: &MessageSettings,
    event: &Event,
    sent: &DateTime<FixedOffset>,
) -> Result<(), TestCaseError> {
    let text = std::str::from_utf8(message).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let pri = format::pri(settings.facility, settings.priority);
    let head = format!("<{pri}>");
    prop_assert!(text.starts_with(&head), "{text:?}");
    let rest = &text[head.len()..];
    match format {
        Format::Legacy => {
            prop_assert_eq!(rest, format!("{}: {}", settings.tag, event.line()));
        }
        Format::Rfc3164 => {
            // `Mmm dd hh:mm:ss`, in the sender's zone, day padded with a space.
            let stamp = rest.get(..15).unwrap_or_default();
            prop_assert_eq!(stamp, sent.format("%b %e %H:%M:%S").to_string());
            prop_assert_eq!(rest.as_bytes().get(15), Some(&b' '));
            let (host, rest) = field(&rest[16..])?;
            prop_assert_eq!(host, &settings.hostname);
            let want = format!("{}[{}]: {}", settings.tag, settings.procid, event.line());
            prop_assert_eq!(rest, want);
        }
        Format::Rfc5424 => {
            let (version, rest) = field(rest)?;
            prop_assert_eq!(version, "1");
            let (stamp, rest) = field(rest)?;
            let parsed = DateTime::parse_from_rfc3339(stamp)
                .map_err(|e| TestCaseError::fail(format!("{stamp}: {e}")))?;
            prop_assert_eq!(parsed, *sent);
            let (host, rest) = field(rest)?;
            check_field(host, MAX_HOSTNAME, text)?;
            prop_assert_eq!(host, &settings.hostname);
            let (app, rest) = field(rest)?;
            check_field(app, MAX_APP_NAME, text)?;
            prop_assert_eq!(app, &settings.tag);
            let (procid, rest) = field(rest)?;
            prop_assert_eq!(procid, settings.procid.to_string());
            let (msgid, rest) = field(rest)?;
            prop_assert_eq!(msgid, event.event_type().as_str());
            prop_assert_eq!(rest, format!("- {}", event.line()));
            // An independent parser reads the same fields (syslog_loose guesses at names with
            // punctuation, such as a host name `:`, which RFC 5424 allows: plain names only).
            let plain = |v: &str| {
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            };
            if !(plain(&settings.hostname) && plain(&settings.tag)) {
                return Ok(());
            }
            let loose = syslog_loose::parse_message_with_year_tz(
                text,
                |_| 2026,
                Some(*sent.offset()),
                syslog_loose::Variant::RFC5424,
            );
            let nil = |v: &str| (v != "-").then(|| v.to_string());
            prop_assert_eq!(loose.hostname.map(String::from), nil(&settings.hostname));
            prop_assert_eq!(loose.appname.map(String::from), nil(&settings.tag));
            prop_assert_eq!(loose.msgid, Some(event.event_type().as_str()));
            prop_assert_eq!(loose.msg, event.line());
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn octet_frames_of_any_bytes_split_back_exactly(
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for m in &messages {
            Framing::Octet.frame_into(m, &mut stream);
            ends.push(stream.len());
        }
        let (got, rest) = framing::split_frames(Framing::Octet, &stream).unwrap();
        prop_assert_eq!(&got, &messages);
        prop_assert!(rest.is_empty());
        // A stream cut anywhere: the whole frames before the cut, the rest left as it is.
        let at = cut.index(stream.len() + 1);
        let (got, rest) = framing::split_frames(Framing::Octet, &stream[..at]).unwrap();
        let whole = ends.iter().take_while(|&&end| end <= at).count();
        prop_assert_eq!(&got[..], &messages[..whole]);
        let start = if whole == 0 { 0 } else { ends[whole - 1] };
        prop_assert_eq!(rest, &stream[start..at]);
    }

    #[test]
    fn every_message_the_config_allows_is_well_formed_in_every_framing(
        (settings, format) in settings(),
        events in proptest::collection::vec(event(), 1..4),
        sent in time(),
    ) {
        let tag = check_tag(&settings.tag, format);
        let host = check_hostname(&settings.hostname);
        for error in [&tag, &host].into_iter().filter_map(|r| r.as_ref().err()) {
            prop_assert!(!error.contains(['\n', '\r']), "{error}");
        }
        // The header checks hold for what the config accepts (the legacy format has no host).
        if tag.is_err() || (format != Format::Legacy && host.is_err()) {
            return Ok(());
        }
        let messages: Vec<Vec<u8>> = events.iter().map(|e| format.encode(&settings, e, &sent)).collect();
        for (message, event) in messages.iter().zip(&events) {
            prop_assert!(!message.contains(&b'\n') && !message.contains(&0), "{message:?}");
            check_message(format, message, &settings, event, &sent)?;
            let datagram = framing::datagram(format, message);
            let nuls = usize::from(format == Format::Legacy);
            prop_assert_eq!(datagram.iter().filter(|&&b| b == 0).count(), nuls);
        }
        for framing in FRAMINGS {
            let mut stream = Vec::new();
            for message in &messages {
                framing.frame_into(message, &mut stream);
            }
            let (got, rest) = framing::split_frames(framing, &stream).unwrap();
            prop_assert!(rest.is_empty(), "{framing}");
            prop_assert_eq!(got, messages.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }
    }

    #[test]
    fn an_rfc5424_header_stays_well_formed_whatever_the_names(
        tag in name(),
        hostname in name(),
        event in event(),
        sent in time(),
    ) {
        // Settings built in code, unchecked: fields are cleaned, never let out of shape.
        let settings = MessageSettings { tag, hostname, ..MessageSettings::default() };
        let message = Format::Rfc5424.encode(&settings, &event, &sent);
        let text = std::str::from_utf8(&message).unwrap();
        let fields: Vec<&str> = text.splitn(8, ' ').collect();
        prop_assert_eq!(fields.len(), 8, "{:?}", text);
        for (value, max) in [(fields[2], MAX_HOSTNAME), (fields[3], MAX_APP_NAME)] {
            check_field(value, max, text)?;
        }
        prop_assert_eq!(fields[6], "-");
        prop_assert_eq!(fields[7], event.line());
    }

    #[test]
    fn the_system_host_name_is_always_a_valid_hostname(name in name()) {
        let short = short_hostname(&name);
        prop_assert!(check_hostname(&short).is_ok(), "{short:?} from {name:?}");
    }
}
