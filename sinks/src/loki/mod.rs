//! The `loki` sink: pushes events to Grafana Loki's push API (`POST /loki/api/v1/push`, JSON).
//!
//! ```ini
//! [Pipe.Loki]
//! From = alerts, log_authn
//! To = loki
//! Url = https://loki.example.com:3100
//! TenantId = security
//! Label = env=prod
//! ```
//!
//! Every event is one entry: its timestamp the event's `created` in nanoseconds, its line the
//! event's JSON object as the file sink writes it, in a stream labelled
//! `job="procustodibus-broker"`, `type=<event type>` and the pipe's `Label` keys ([`body`]).
//! `Url` is Loki's base URL: the sink posts to `Url` + `/loki/api/v1/push`, unless the Url's
//! path already ends with `/loki/api/v1/push` (a gateway's path prefix is kept).
//!
//! Delivery guarantee: at least once. An event counts as delivered when Loki answered 2xx to
//! its request, or answered 400 naming other entries of it (Loki takes the valid entries of a
//! push). Loki names an entry it refused (too old, too far behind the stream, too new, line too
//! long) and the sink dead-letters exactly that event with Loki's words ([`answer`]); a refusal
//! of the request (401, 403, 404, a 400 that names no entry of it, a 5xx, a 429) is retried with
//! a loud log line and never dead-letters. A request that got no answer (a timeout, a broken
//! connection after Loki received it) is sent again, so Loki may get an entry twice: Loki stores
//! the same timestamp and line in the same stream once when the first copy is still in the
//! ingester's memory (its head block or the stream's last entry), and its queries merge entries
//! of identical timestamp and line (as they do for its own replicas), so a resent event is shown
//! once; an entry resent after its chunk was flushed may be stored twice. Limits: when Loki
//! rejects more entries of a stream than it names (`max_returned_stream_errors`, 10 by default),
//! the unnamed ones are sent again and named the next time; older Lokis (before the distributor
//! grouped its validation errors) name only the last entry the distributor refused in a request
//! (too old, too new, too long), and the others refused that way count as delivered (Loki
//! dropped them). An event without a readable
//! `created` is stamped with the time its request is built, so a resend of it is a new entry.
//!
//! The parts: [`config`] (the keys), [`body`] (the JSON body), [`answer`] (what a 400 says about
//! each entry), [`sink`] (requests, answers, verdicts).

pub mod answer;
pub mod body;
pub mod config;
pub mod sink;
#[cfg(test)]
mod tests;

use broker_core::config::PipeSettings;
use broker_core::registry::{BuildError, SinkKey};
use broker_core::{Sink, SinkPlugin};

use crate::util::http::client::{CA, PROXY, TIMEOUT};
use crate::util::http::secret::{PASSWORD, PASSWORD_FILE, TOKEN, TOKEN_FILE};

pub use config::LokiConfig;
pub use sink::LokiSink;

/// The keys of a Loki pipe, as messages and `--list-sinks` show them.
pub const KEYS: &[SinkKey] = &[
    SinkKey::one(
        "Url",
        "Loki's base URL, https://host:3100 (required; /loki/api/v1/push is added unless there)",
    ),
    SinkKey::list(
        "Label",
        "name=value, a label of every stream besides job and type (repeatable)",
    ),
    SinkKey::one(
        "TenantId",
        "the X-Scope-OrgID of a multi-tenant Loki (default none)",
    ),
    SinkKey::one(
        "User",
        "user for basic authentication (with Password or PasswordFile)",
    ),
    PASSWORD,
    PASSWORD_FILE,
    TOKEN,
    TOKEN_FILE,
    SinkKey::one("Batch", "events per request, 1 to 10000 (default 1000)"),
    CA,
    TIMEOUT,
    PROXY,
];

inventory::submit! {
    SinkPlugin {
        name: "loki",
        keys: KEYS,
        build: build_loki_sink,
    }
}

/// Builds a [`LokiSink`] from a pipe's settings (the registered builder of the `loki` sink).
fn build_loki_sink(settings: &PipeSettings) -> Result<Box<dyn Sink>, BuildError> {
    Ok(Box::new(LokiSink::from_settings(settings)?))
}
