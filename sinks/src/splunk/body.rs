//! The body of a HEC request: one event object per event, concatenated (HEC's batch format):
//!
//! ```text
//! {"time":1714550400.25,"host":"h","source":"s","sourcetype":"procustodibus:alerts","index":"i","event":{...}}{"time":...}
//! ```
//!
//! - `time`: the event's `attributes.created` (RFC 3339) as epoch seconds with the fraction the
//!   event has (up to microseconds); left out when the event has none (or an unreadable one),
//!   and HEC then uses the time it received the event.
//! - `host`, `source`, `index`: the pipe's `Host`, `Source`, `Index`, left out when not set
//!   (HEC then uses the token's defaults).
//! - `sourcetype`: the pipe's `SourceType`, or `procustodibus:<event type>`.
//! - `event`: the event's JSON line exactly as the `file` sink writes it ([`Event::line`]).

use broker_core::Event;

use super::config::SplunkConfig;

/// The members every event object of a pipe shares, encoded once.
#[derive(Clone, Debug, Default)]
pub struct Envelope {
    /// `"host":...,"source":...,` (the members that are set), each followed by a comma.
    fixed: String,
    /// `"sourcetype":"...",` when `SourceType` is set; else built per event type.
    source_type: Option<String>,
    /// `"index":"...",` when set.
    index: String,
}

/// `"name":VALUE,` with the value as a JSON string.
fn member(name: &str, value: &str) -> String {
    format!("\"{name}\":{},", json_string(value))
}

/// `value` as a JSON string (quotes and escapes).
fn json_string(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

impl Envelope {
    /// The shared members of a pipe's config.
    pub fn new(config: &SplunkConfig) -> Envelope {
        Envelope::from_values(
            config.host.as_deref(),
            config.source.as_deref(),
            config.source_type.as_deref(),
            config.index.as_deref(),
        )
    }

    /// The shared members from the optional `Host`, `Source`, `SourceType` and `Index`.
    pub fn from_values(
        host: Option<&str>,
        source: Option<&str>,
        source_type: Option<&str>,
        index: Option<&str>,
    ) -> Envelope {
        let mut fixed = String::new();
        if let Some(host) = host {
            fixed.push_str(&member("host", host));
        }
        if let Some(source) = source {
            fixed.push_str(&member("source", source));
        }
        Envelope {
            fixed,
            source_type: source_type.map(|t| member("sourcetype", t)),
            index: index.map_or(String::new(), |i| member("index", i)),
        }
    }

    /// Appends the event object of `event` to `body`.
    pub fn push(&self, event: &Event, body: &mut Vec<u8>) {
        body.push(b'{');
        if let Some(time) = event_time(event.line()) {
            body.extend_from_slice(b"\"time\":");
            body.extend_from_slice(time.as_bytes());
            body.push(b',');
        }
        body.extend_from_slice(self.fixed.as_bytes());
        match &self.source_type {
            Some(member) => body.extend_from_slice(member.as_bytes()),
            None => {
                // Event type names are plain ASCII words: nothing to escape.
                body.extend_from_slice(b"\"sourcetype\":\"procustodibus:");
                body.extend_from_slice(event.event_type().as_str().as_bytes());
                body.extend_from_slice(b"\",");
            }
        }
        body.extend_from_slice(self.index.as_bytes());
        body.extend_from_slice(b"\"event\":");
        body.extend_from_slice(event.line().as_bytes());
        body.push(b'}');
    }

    /// The body of a request of `events`.
    pub fn body(&self, events: &[Event]) -> Vec<u8> {
        let size: usize = events.iter().map(|e| e.line().len() + 128).sum();
        let mut body = Vec::with_capacity(size + self.fixed.len() * events.len());
        for event in events {
            self.push(event, &mut body);
        }
        body
    }
}

/// The `time` of an event line: its `attributes.created` as epoch seconds (`1714550400`,
/// `1714550400.25`); `None` when it has no readable one (or one before 1970).
pub fn event_time(line: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        attributes: Option<Attributes<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Attributes<'a> {
        #[serde(borrow)]
        created: Option<std::borrow::Cow<'a, str>>,
    }
    let parsed: Line = serde_json::from_str(line).ok()?;
    let created = parsed.attributes?.created?;
    let time = chrono::DateTime::parse_from_rfc3339(created.trim()).ok()?;
    let seconds = time.timestamp();
    if seconds < 0 {
        return None;
    }
    let micros = time.timestamp_subsec_micros();
    if micros == 0 {
        return Some(seconds.to_string());
    }
    let fraction = format!("{micros:06}");
    Some(format!("{seconds}.{}", fraction.trim_end_matches('0')))
}
