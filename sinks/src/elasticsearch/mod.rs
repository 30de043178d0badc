//! The `elasticsearch` sink: stores events in Elasticsearch or OpenSearch through `_bulk`.
//!
//! ```ini
//! [Pipe.Elastic]
//! From = alerts, log_authn, log_changes, endpoint_stats
//! To = elasticsearch
//! Url = https://es1.example.com:9200, https://es2.example.com:9200
//! ApiKeyFile = /etc/procustodibus/broker/elastic-api-key
//! ```
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `Url` | (required) | `https://host:9200` of a node (a path prefix is kept; the sink posts to `/INDEX/_bulk`); repeatable or comma-separated: the next is tried when one gives no answer or a 5xx |
//! | `Index` | `logs-procustodibus-default` | the index or data stream (the default matches Elasticsearch's built-in `logs-*-*` data stream template) |
//! | `ApiKey`, `ApiKeyFile` | none | the API key, base64 as Elasticsearch gives it (`Authorization: ApiKey KEY`), or the file holding it alone |
//! | `User`, `Password`, `PasswordFile` | none | basic authentication instead of an API key |
//! | `Pipeline` | none | the ingest pipeline (`?pipeline=`) |
//! | `Batch` | `1000` | events per request, 1 to 10000 |
//! | `MaxBytes` | `10M` | the largest request body (1K to 100M); an event larger than this alone is dead-lettered |
//! | `CA`, `Timeout`, `Proxy` | system roots, 30 s, none | see [`crate::util::http::client`] |
//!
//! Each event is a `create` action whose `_id` is the event's `id`, and a document that is the
//! event's JSON line as the `file` sink writes it, with `@timestamp` (the event's
//! `attributes.created`, which a data stream needs) put first ([`body`]).
//!
//! # Delivery guarantee
//!
//! Exactly once in the index. An event counts as delivered when its item in the bulk answer says
//! 201 (stored) or 409 (its `_id` is already there: a resend after a timeout, a dropped
//! connection or a crash). Items answered 429 or 5xx are sent again later, alone; an item refused
//! with another 4xx (a mapping error) is dead-lettered with the item's error type and reason. A
//! refusal of the request itself (401/403 bad credentials, 404 missing index or data stream, a
//! 400 of the whole request, every event refused alike) is retried with backoff and a warning
//! naming the receiver's reason, never dead-lettered. See [`sink`]. (An event without an `id`
//! gets an `_id` from the receiver: at least once.)
//!
//! The parts: [`config`] (the keys), [`body`] (bulk entries), [`answer`] (bulk answers and
//! what each item means), [`sink`] (requests, failover, sorting out the items).

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
use crate::util::http::secret::{API_KEY, API_KEY_FILE, PASSWORD, PASSWORD_FILE};
pub use config::ElasticConfig;
pub use sink::ElasticSink;

/// The keys of an elasticsearch pipe, as messages and `--list-sinks` show them.
pub const KEYS: &[SinkKey] = &[
    SinkKey::list(
        "Url",
        "https://host:9200 of Elasticsearch or OpenSearch (required; repeatable or comma-separated: tried in turn)",
    ),
    SinkKey::one(
        "Index",
        "index or data stream (default logs-procustodibus-default)",
    ),
    API_KEY,
    API_KEY_FILE,
    SinkKey::one("User", "user for basic authentication (with Password)"),
    PASSWORD,
    PASSWORD_FILE,
    SinkKey::one("Pipeline", "ingest pipeline to run (default none)"),
    SinkKey::one("Batch", "events per request, 1 to 10000 (default 1000)"),
    SinkKey::one(
        "MaxBytes",
        "largest request body, 1K to 100M (default 10M); a larger event is dead-lettered",
    ),
    CA,
    TIMEOUT,
    PROXY,
];

inventory::submit! {
    SinkPlugin {
        name: "elasticsearch",
        keys: KEYS,
        build: build_elastic_sink,
    }
}

/// Builds an [`ElasticSink`] from a pipe's settings (the registered builder of the
/// `elasticsearch` sink).
fn build_elastic_sink(settings: &PipeSettings) -> Result<Box<dyn Sink>, BuildError> {
    Ok(Box::new(ElasticSink::from_settings(settings)?))
}
