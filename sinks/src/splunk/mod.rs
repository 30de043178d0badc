//! The `splunk` sink: sends events to a Splunk HTTP Event Collector (HEC).
//!
//! ```ini
//! [Pipe.Splunk]
//! From = alerts, log_authn, log_changes, endpoint_stats
//! To = splunk
//! Url = https://splunk.example.com:8088
//! TokenFile = /etc/procustodibus/broker/splunk-token
//! Index = wireguard
//! Ack = yes
//! ```
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `Url` | (required) | the HEC's `https://host:8088` (a path prefix is kept; the sink posts to `/services/collector/event`) |
//! | `Token`, `TokenFile` | (one required) | the HEC token (`Authorization: Splunk TOKEN`), or the file holding it alone |
//! | `Index` | the token's default | `index` of every event |
//! | `Source` | the token's default | `source` of every event |
//! | `SourceType` | `procustodibus:<event type>` | `sourcetype` of every event |
//! | `Host` | the sender's address | `host` of every event |
//! | `Batch` | `1000` | events per request (1 to 100000; 1000 events of the API are about 1 MB, HEC's smallest default limit) |
//! | `Ack` | `no` | `yes`: a request counts as delivered only once HEC's indexer acknowledgement says it was indexed |
//! | `AckTimeout` | `300` | seconds to wait for that acknowledgement before sending the request again |
//! | `CA`, `Timeout`, `Proxy` | system roots, 30 s, none | see [`crate::util::http::client`] |
//!
//! Each event is an HEC event object whose `event` is the event's JSON line as the `file` sink
//! writes it and whose `time` is the event's `created` ([`body`]).
//!
//! # Delivery guarantee
//!
//! At least once. With `Ack = no` an event counts as delivered once HEC answered its request
//! with 2xx (HEC has it in memory; a crash of HEC before indexing can lose it). With
//! `Ack = yes` it counts only once `/services/collector/ack` says its request was indexed;
//! a request not acknowledged within `AckTimeout` is sent again. Requests carry a channel
//! (`X-Splunk-Request-Channel`), a GUID made once per pipe and kept in the spool directory
//! ([`channel`]). A request HEC refuses for one event (`invalid-event-number`) is split so
//! that only that event goes to the dead-letter file, with HEC's answer; the others are sent
//! again (HEC refuses the whole request, so none of them is lost; should HEC have indexed
//! some, they are there twice). A refusal of the request itself (a wrong token or index, a
//! busy HEC) is retried with backoff and a warning, never dead-lettered. See [`sink`].
//!
//! The parts: [`config`] (the keys), [`body`] (event objects), [`answer`] (HEC's answers and
//! what they mean), [`channel`] (the channel GUID and its file), [`sink`] (requests,
//! acknowledgements, sorting out refusals).

pub mod answer;
pub mod body;
pub mod channel;
pub mod config;
pub mod sink;
#[cfg(test)]
mod tests;

use broker_core::config::PipeSettings;
use broker_core::registry::{BuildError, SinkKey};
use broker_core::{Sink, SinkPlugin};

use crate::util::http::client::{CA, PROXY, TIMEOUT};
use crate::util::http::secret::{TOKEN, TOKEN_FILE};
pub use config::SplunkConfig;
pub use sink::SplunkSink;

/// The keys of a splunk pipe, as messages and `--list-sinks` show them.
pub const KEYS: &[SinkKey] = &[
    SinkKey::one(
        "Url",
        "the HEC's https://host:8088 (required; events go to /services/collector/event)",
    ),
    TOKEN,
    TOKEN_FILE,
    SinkKey::one("Index", "index of every event (default the token's)"),
    SinkKey::one("Source", "source of every event (default the token's)"),
    SinkKey::one(
        "SourceType",
        "sourcetype of every event (default procustodibus:<event type>)",
    ),
    SinkKey::one("Host", "host of every event (default the sender's address)"),
    SinkKey::one("Batch", "events per request (default 1000)"),
    SinkKey::one(
        "Ack",
        "yes: count events delivered only once HEC's indexer acknowledgement says indexed (default no)",
    ),
    SinkKey::one(
        "AckTimeout",
        "seconds to wait for an acknowledgement before sending again (default 300)",
    ),
    CA,
    TIMEOUT,
    PROXY,
];

inventory::submit! {
    SinkPlugin {
        name: "splunk",
        keys: KEYS,
        build: build_splunk_sink,
    }
}

/// Builds a [`SplunkSink`] from a pipe's settings (the registered builder of the `splunk` sink).
fn build_splunk_sink(settings: &PipeSettings) -> Result<Box<dyn Sink>, BuildError> {
    Ok(Box::new(SplunkSink::from_settings(settings)?))
}
