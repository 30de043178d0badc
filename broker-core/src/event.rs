//! Events: what the API's queues hand out and what the sinks write.
//!
//! An event keeps its queue type and its output line, encoded once when it arrives (see
//! [`crate::encode`]) and shared by every pipe that receives it, so no sink re-parses it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::encode::{encode_python_compact, EncodeError};

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    event_type: EventType,
    line: Arc<str>,
}

impl Event {
    /// Encodes an event as received from the API (any valid JSON text) into its output line.
    pub fn from_json(event_type: EventType, json: &str) -> Result<Self, EncodeError> {
        Ok(Event {
            event_type,
            line: encode_python_compact(json)?.into(),
        })
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
        }
    }

    /// The queue this event came from.
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// The compact, ASCII-only JSON line of PROTOCOL.md, without the trailing newline.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The event's `id` member, if it has a string or number one (for log lines and dead letters).
    pub fn id(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct IdOnly {
            id: Option<serde_json::Value>,
        }
        let parsed: IdOnly = serde_json::from_str(&self.line).ok()?;
        match parsed.id? {
            serde_json::Value::String(s) => Some(s),
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

    #[test]
    fn event_keeps_encoded_line_and_id() {
        let e = Event::from_json(EventType::Alerts, r#"{ "id": "a1", "x": "é" }"#).unwrap();
        assert_eq!(e.line(), r#"{"id":"a1","x":"\u00e9"}"#);
        assert_eq!(e.id().as_deref(), Some("a1"));
    }
}
