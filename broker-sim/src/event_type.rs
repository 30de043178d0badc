//! The four event queues of the Pro Custodibus API.
//!
//! Every queue call names one of these types in its path (`/queues/{type}/next`); any other name
//! answers 404, as the real API does.

use std::fmt;
use std::str::FromStr;

use crate::error::SimError;

/// One of the API's event queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// `alerts`: security alerts raised by the API.
    Alerts,
    /// `endpoint_stats`: WireGuard endpoint statistics (handshakes, transfer counters).
    EndpointStats,
    /// `log_authn`: authentication log (logins of users).
    LogAuthn,
    /// `log_changes`: change log (configuration edits, with before and after).
    LogChanges,
}

impl EventType {
    /// All four types, in the order the API documents them.
    pub const ALL: [EventType; 4] = [
        EventType::Alerts,
        EventType::EndpointStats,
        EventType::LogAuthn,
        EventType::LogChanges,
    ];

    /// The name used in queue paths and in a pipe's `From` (e.g. `endpoint_stats`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Alerts => "alerts",
            EventType::EndpointStats => "endpoint_stats",
            EventType::LogAuthn => "log_authn",
            EventType::LogChanges => "log_changes",
        }
    }

    /// Position of this type in [`EventType::ALL`], used to index per-type tables.
    pub(crate) fn index(self) -> usize {
        match self {
            EventType::Alerts => 0,
            EventType::EndpointStats => 1,
            EventType::LogAuthn => 2,
            EventType::LogChanges => 3,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| SimError::UnknownEventType(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().ok(), Some(t));
            assert_eq!(EventType::ALL[t.index()], t);
        }
        assert!("alert".parse::<EventType>().is_err());
        assert!("Alerts".parse::<EventType>().is_err());
    }
}
