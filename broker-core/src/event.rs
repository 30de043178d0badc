//! Events: what the API's queues hand out and what the sinks write.
//!
//! An event keeps its queue type and its output line, encoded once when it arrives (see
//! [`crate::encode`]) and shared by every pipe that receives it, so no sink re-parses it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::encode::{encode_shared, for_each_data_line, EncodeError};

/// The four queues of the Pro Custodibus API, in the order the product documentation lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// Alerts, as on the Alerts page.
    Alerts,
    /// WireGuard handshake events with endpoint IPs and bytes sent/received.
    EndpointStats,
    /// Pro Custodibus authentication events.
    LogAuthn,
    /// WireGuard configuration changes.
    LogChanges,
    /// The broker's own test event (`--test-pipe`); no API queue has it and no `From` names it.
    Test,
}

impl EventType {
    /// Every queue of the API, in documentation order.
    pub const ALL: [EventType; 4] = [
        EventType::Alerts,
        EventType::EndpointStats,
        EventType::LogAuthn,
        EventType::LogChanges,
    ];

    /// The queue's name as the API and the config spell it (`endpoint_stats`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Alerts => "alerts",
            EventType::EndpointStats => "endpoint_stats",
            EventType::LogAuthn => "log_authn",
            EventType::LogChanges => "log_changes",
            EventType::Test => "test",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a name that is not one of the four event types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?} (expected alerts, endpoint_stats, log_authn or log_changes)")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s.trim())
            .ok_or_else(|| UnknownEventType(s.trim().to_string()))
    }
}

/// One event: its queue type and its encoded output line (without the trailing newline).
///
/// Cloning is cheap: the line is shared.
#[derive(Clone, Debug)]
pub struct Event {
    event_type: EventType,
    line: Arc<str>,
    /// Its sequence number in the spool's log of its queue, once read from the spool.
    spool_seq: Option<u64>,
    /// Whether it was read from the spool's redeliveries (put back from the dead-letter file)
    /// rather than from its queue's log.
    redelivered: bool,
}

/// Two events are equal when they come from the same queue with the same line (wherever they
/// are in the spool).
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.event_type == other.event_type && self.line == other.line
    }
}

impl Eq for Event {}

impl Event {
    /// Encodes an event as received from the API (any valid JSON text) into its output line.
    pub fn from_json(event_type: EventType, json: &str) -> Result<Self, EncodeError> {
        Ok(Event {
            event_type,
            line: encode_shared(json)?,
            spool_seq: None,
            redelivered: false,
        })
    }

    /// The events of a pull answer, `{"data":[...]}`, split and encoded in one scan of it.
    ///
    /// `None` when the answer is not in that plain shape (an object with exactly one `data`
    /// member, an array, and keys without escapes) or is not valid JSON: then split it with
    /// serde_json and use [`Event::from_raw`], which give the same events or say what is wrong.
    pub fn from_pull_answer(event_type: EventType, body: &[u8]) -> Option<Vec<Self>> {
        let body = std::str::from_utf8(body).ok()?;
        let mut events = Vec::new();
        for_each_data_line(body, |line| {
            events.push(Event::from_encoded_line(event_type, line));
        })?;
        Some(events)
    }

    /// Like [`Event::from_json`], for an event that serde_json already split out of a response.
    pub fn from_raw(event_type: EventType, raw: &RawValue) -> Result<Self, EncodeError> {
        Self::from_json(event_type, raw.get())
    }

    /// Wraps a line that is already in the output encoding (for example one read back from a
    /// spool or built by the broker itself, like the `--test-pipe` event).
    pub fn from_encoded_line(event_type: EventType, line: impl Into<Arc<str>>) -> Self {
        Event {
            event_type,
            line: line.into(),
            spool_seq: None,
            redelivered: false,
        }
    }

    /// The event read from sequence number `seq` of the spool's log of its queue.
    pub(crate) fn at_spool_seq(mut self, seq: u64) -> Self {
        self.spool_seq = Some(seq);
        self
    }

    /// Its sequence number in the spool, if it was read from the spool.
    pub(crate) fn spool_seq(&self) -> Option<u64> {
        self.spool_seq
    }

    /// The event as read from the spool's redeliveries (see [`crate::spool::redeliveries`]).
    pub(crate) fn into_redelivered(mut self) -> Self {
        self.redelivered = true;
        self
    }

    /// Whether it was read from the spool's redeliveries rather than its queue's log.
    pub(crate) fn is_redelivered(&self) -> bool {
        self.redelivered
    }

    /// The queue this event came from.
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// The compact, ASCII-only JSON line of docs/protocol.md, without the trailing newline.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The event's `id` member, if it has a string or number one (for log lines, error messages
    /// and dead letters), on one line: control characters are written as escapes (see
    /// [`crate::text::one_line`]).
    pub fn id(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct IdOnly {
            id: Option<serde_json::Value>,
        }
        let parsed: IdOnly = serde_json::from_str(&self.line).ok()?;
        match parsed.id? {
            serde_json::Value::String(s) => Some(crate::text::one_line(&s)),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        }
        assert!("alert".parse::<EventType>().is_err());
    }

    /// How the API client split a pull answer before [`Event::from_pull_answer`], and still does
    /// when that says `None`.
    fn pull_with_serde(event_type: EventType, body: &str) -> Result<Vec<Event>, String> {
        #[derive(serde::Deserialize)]
        struct Events<'a> {
            #[serde(borrow)]
            data: Vec<&'a RawValue>,
        }
        let events: Events = serde_json::from_str(body).map_err(|e| e.to_string())?;
        events
            .data
            .into_iter()
            .map(|raw| Event::from_raw(event_type, raw).map_err(|e| e.to_string()))
            .collect()
    }

    /// Whatever the one-scan split takes, serde_json takes too, with the same events.
    fn check_pull(body: &str) -> bool {
        let fast = Event::from_pull_answer(EventType::Alerts, body.as_bytes());
        if let Some(events) = &fast {
            assert_eq!(
                Ok(events),
                pull_with_serde(EventType::Alerts, body).as_ref(),
                "{body:?}"
            );
        }
        fast.is_some()
    }

    #[test]
    fn pull_answers_as_serde_splits_them() {
        for (body, one_scan) in [
            (r#"{"data":[]}"#, true),
            (r#"{"data":[{"a":1},{"b":"\u00E9"}]}"#, true),
            ("{ \"data\" : [ {\"a\": 1} , \"\u{e9}\" , 1.50 ]\n}\n", true),
            (
                r#"{"meta":{"n":[1,{"x":"\/"}]},"data":[2],"links":null}"#,
                true,
            ),
            (r#"{"data":[1],"data":[2]}"#, false),
            (r#"{"d\u0061ta":[1]}"#, false),
            (r#"{"meta":1}"#, false),
            (r#"{}"#, false),
            (r#"{"data":null}"#, false),
            (r#"{"data":{"a":1}}"#, false),
            (r#"[[1]]"#, false),
            (r#"{"data":[1]} x"#, false),
            (r#"{"data":[1,]}"#, false),
            (r#"{"data":[01]}"#, false),
            ("{\"data\":[\"\u{1}\"]}", false),
            (r#"{"data":["#, false),
            ("", false),
        ] {
            assert_eq!(check_pull(body), one_scan, "{body:?}");
        }
        assert_eq!(
            Event::from_pull_answer(EventType::Alerts, b"{\"data\":[\"\xff\"]}"),
            None
        );
    }

    #[test]
    fn randomized_pull_answers_as_serde_splits_them() {
        use crate::encode::tests::{mutate, random_document, Rng};
        let mut rng = Rng::new(42);
        let mut one_scan = 0;
        for _ in 0..3_000 {
            let events: Vec<String> = (0..rng.below(6))
                .map(|_| random_document(&mut rng))
                .collect();
            let data = format!("\"data\":[{}]", events.join(","));
            let (body, plain) = match rng.below(4) {
                0 => (mutate(&format!("{{{data}}}"), &mut rng), false),
                1 => {
                    let meta = random_document(&mut rng);
                    (
                        format!(" {{ \"meta\" : {meta} ,\n{data}, \"links\":[]}}\n"),
                        true,
                    )
                }
                _ => (format!("{{{data}}}"), true),
            };
            let fast = check_pull(&body);
            assert!(fast || !plain, "{body:?}");
            one_scan += usize::from(fast);
        }
        assert!(one_scan > 2_000, "{one_scan}");
    }

    proptest::proptest! {
        /// An id goes into log lines and error messages: it is one line whatever the API sent,
        /// and exactly the id when that has no control character.
        #[test]
        fn an_event_id_is_one_line(
            id in proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                "[a -~\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{2028}]{0,12}",
            ]
        ) {
            let json = serde_json::json!({"id": id, "x": 1}).to_string();
            let got = Event::from_json(EventType::Alerts, &json).unwrap().id().unwrap();
            proptest::prop_assert!(!got.contains(char::is_control), "{got:?}");
            if !id.contains(char::is_control) {
                proptest::prop_assert_eq!(got, id);
            }
        }
    }

    #[test]
    fn event_keeps_encoded_line_and_id() {
        let e = Event::from_json(EventType::Alerts, r#"{ "id": "a1", "x": "é" }"#).unwrap();
        assert_eq!(e.line(), r#"{"id":"a1","x":"\u00e9"}"#);
        assert_eq!(e.id().as_deref(), Some("a1"));
    }
}
