//! The `sentinel` sink: events into Microsoft Sentinel (a Log Analytics workspace) through the
//! Azure Monitor Logs Ingestion API.
//!
//! ```ini
//! [Pipe.Sentinel]
//! From = alerts, log_changes
//! To = sentinel
//! Endpoint = https://my-dce-abcd.eastus-1.ingest.monitor.azure.com
//! Dcr = dcr-00000000000000000000000000000000
//! Stream = Custom-ProCustodibus_CL
//! TenantId = 72f988bf-86f1-41af-91ab-2d7cd011db47
//! ClientId = 11111111-2222-3333-4444-555555555555
//! ClientSecretFile = /etc/procustodibus/broker/sentinel-secret
//! ```
//!
//! **Token.** The OAuth2 client-credentials flow: `POST {AuthorityHost}/{TenantId}/oauth2/v2.0/token`
//! with `client_id`, `client_secret`, `grant_type=client_credentials` and
//! `scope=https://monitor.azure.com//.default` (`Scope` for a sovereign cloud). The token is kept
//! until a tenth of its lifetime (at most 5 minutes) before it expires; a 401 from the ingestion
//! endpoint (a token revoked or expired early) fetches a new one and sends the request once more.
//! A refusal by the token endpoint (`invalid_client`, `unauthorized_client`, an `AADSTS` code) is
//! about the credentials, not an event: a retry, logged as a warning with Entra's reason; a 429
//! or 5xx from it is a retry that waits at least its `Retry-After`.
//!
//! **Requests.** `POST {Endpoint}/dataCollectionRules/{Dcr}/streams/{Stream}?api-version=2023-01-01`
//! with `Authorization: Bearer` and a JSON array of rows ([`body`]): at most `Batch` rows and
//! 1 MB per request; a row over 1 MB alone is dead-lettered before it is sent.
//!
//! | answer | what the sink does |
//! | --- | --- |
//! | 204 (any 2xx) | the request's events are delivered |
//! | 413 | the request is split in halves, sent again; a single row still refused is dead-lettered with the answer |
//! | 400 (or another 4xx about the content) | the API says nothing per row, so the request is split in halves and each half sent, down to single rows, to find the refused one; see below |
//! | 429, 503, 5xx, no answer | retry: the events wait in the spool; `Retry-After` (capped at 300 s) is the least wait |
//! | 401 twice, 403 (no role assignment), 404 (DCR or stream not found) | retry with a warning naming the answer and what to check: these are about the configuration, never an event |
//!
//! A single row refused with 400 is dead-lettered (with Azure Monitor's message) when an event
//! before it was taken in the same delivery. As the first event, the next event is sent alone
//! first: taken, the row is dead-lettered (the next event counts as delivered in the next
//! delivery, not sent again); refused too, the receiver refuses every request (a stream whose
//! columns do not match, say) and that is a retry, so the spool never empties into the
//! dead-letter file. A lone event refused with no next event waits (retry) until another event
//! arrives to compare with.
//!
//! **Delivery guarantee: at least once.** A request counts only once answered 2xx; a request
//! that got no answer (a timeout, a dropped connection) is sent again, and Azure Monitor does not
//! deduplicate, so a row can arrive twice: its `Id` tells the copies apart. The client secret and
//! the tokens never reach a log line, an error, the dead-letter file or `--check-config` output:
//! every quoted answer is masked.
//!
//! The parts: [`config`] (the keys), [`body`] (rows and requests), [`answer`] (what Entra and
//! Azure Monitor answer) and [`sink`] (the [`SentinelSink`]).

pub mod answer;
pub mod body;
pub mod config;
pub mod sink;
#[cfg(test)]
mod tests;

use broker_core::config::PipeSettings;
use broker_core::registry::{BuildError, SinkKey};
use broker_core::{Sink, SinkPlugin};

pub use config::SentinelConfig;
pub use sink::SentinelSink;

use crate::util::http::client::{CA, PROXY, TIMEOUT};
use crate::util::http::secret::{CLIENT_SECRET, CLIENT_SECRET_FILE};

/// The keys of a sentinel pipe, as messages and `--list-sinks` show them.
pub const KEYS: &[SinkKey] = &[
    SinkKey::one(
        "Endpoint",
        "https:// data collection endpoint or the DCR's logs ingestion endpoint (required)",
    ),
    SinkKey::one(
        "Dcr",
        "immutable id of the data collection rule, dcr-... (required)",
    ),
    SinkKey::one("Stream", "the DCR's input stream, Custom-... (required)"),
    SinkKey::one("TenantId", "Microsoft Entra tenant id (required)"),
    SinkKey::one(
        "ClientId",
        "application (client) id of the app registration (required)",
    ),
    CLIENT_SECRET,
    CLIENT_SECRET_FILE,
    SinkKey::one(
        "AuthorityHost",
        "where tokens come from (default https://login.microsoftonline.com)",
    ),
    SinkKey::one(
        "Scope",
        "OAuth scope of the token (default https://monitor.azure.com//.default)",
    ),
    SinkKey::one(
        "Batch",
        "rows per request, 1 to 100000 (default 1000; 1 MB at most)",
    ),
    CA,
    TIMEOUT,
    PROXY,
];

inventory::submit! {
    SinkPlugin {
        name: "sentinel",
        keys: KEYS,
        build: build_sentinel_sink,
    }
}

/// Builds a [`SentinelSink`] from a pipe's settings (the registered builder).
fn build_sentinel_sink(settings: &PipeSettings) -> Result<Box<dyn Sink>, BuildError> {
    Ok(Box::new(SentinelSink::from_settings(settings)?))
}
