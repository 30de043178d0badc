//! [`SplunkConfig`]: the checked keys of a `To = splunk` pipe (see the table in [`super`]).

use std::time::Duration;

use broker_core::config::{ConfigError, PipeSettings};
use reqwest::Url;

use crate::util::http::client::{origin, read_url, ClientSettings};
use crate::util::http::secret::{Secret, TOKEN, TOKEN_FILE};

use super::KEYS;

/// Events per request when `Batch` is not set.
pub const DEFAULT_BATCH: usize = 1000;
/// The largest `Batch`.
pub const MAX_BATCH: usize = 100_000;
/// How long to wait for an indexer acknowledgement when `AckTimeout` is not set.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(300);

/// The path of the HEC event endpoint under `Url`.
pub const EVENT_PATH: &str = "services/collector/event";
/// The path of the HEC acknowledgement endpoint under `Url`.
pub const ACK_PATH: &str = "services/collector/ack";

/// A pipe's checked Splunk settings.
#[derive(Clone, Debug)]
pub struct SplunkConfig {
    /// Where events go: `Url` + `/services/collector/event`.
    pub event_url: Url,
    /// Where acknowledgements are asked for: `Url` + `/services/collector/ack`.
    pub ack_url: Url,
    /// The HEC token (`Authorization: Splunk TOKEN`).
    pub token: Secret,
    /// `index` of every event, when set (else the token's default index).
    pub index: Option<String>,
    /// `source` of every event, when set.
    pub source: Option<String>,
    /// `sourcetype` of every event; `None`: `procustodibus:<event type>`.
    pub source_type: Option<String>,
    /// `host` of every event, when set (else HEC's default: the sender's address).
    pub host: Option<String>,
    /// Events per request.
    pub batch: usize,
    /// Whether a request counts only once HEC acknowledges it was indexed.
    pub ack: bool,
    /// How long to wait for that acknowledgement before sending the request again.
    pub ack_timeout: Duration,
    /// Timeout, Proxy and CA.
    pub client: ClientSettings,
}

impl SplunkConfig {
    /// Reads and checks a pipe's keys; reads `TokenFile` (no other I/O).
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        let keys = settings.keys(KEYS);
        let url = read_url(&keys, "Url")?;
        let base = collector_base(&url);
        let join = |path: &str| {
            base.join(path)
                .map_err(|e| keys.error("Url", format!("cannot add /{path} ({e})")))
        };
        Ok(SplunkConfig {
            event_url: join(EVENT_PATH)?,
            ack_url: join(ACK_PATH)?,
            token: Secret::required(&keys, &TOKEN, &TOKEN_FILE)?,
            index: keys.text("Index")?,
            source: keys.text("Source")?,
            source_type: keys.text("SourceType")?,
            host: keys.text("Host")?,
            batch: keys
                .number("Batch", 1..=MAX_BATCH, "events")?
                .unwrap_or(DEFAULT_BATCH),
            ack: keys.boolean("Ack", false)?,
            ack_timeout: keys.seconds("AckTimeout", 0.001..=3600.0, DEFAULT_ACK_TIMEOUT)?,
            client: ClientSettings::from_keys(&keys)?,
        })
    }

    /// `https://host:port` of the receiver, for messages.
    pub fn origin(&self) -> String {
        origin(&self.event_url)
    }
}

/// `Url` as the base the HEC paths are joined to: ending in `/`, without a query, and without
/// `/services/collector/event` or `/services/collector` when the operator gave the endpoint's
/// own URL (`https://splunk:8088/services/collector/event` works like `https://splunk:8088`).
/// A path before those (a reverse proxy's prefix) is kept.
fn collector_base(url: &Url) -> Url {
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    let mut path = base.path().trim_end_matches('/').to_string();
    for suffix in ["/services/collector/event", "/services/collector"] {
        if let Some(prefix) = path.strip_suffix(suffix) {
            path = prefix.to_string();
            break;
        }
    }
    path.push('/');
    base.set_path(&path);
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoints_are_under_the_url() {
        for (url, event) in [
            ("https://s:8088", "https://s:8088/services/collector/event"),
            ("https://s:8088/", "https://s:8088/services/collector/event"),
            (
                "https://s:8088/services/collector/event",
                "https://s:8088/services/collector/event",
            ),
            (
                "https://s/splunk/services/collector?x=1",
                "https://s/splunk/services/collector/event",
            ),
            ("https://s/hec", "https://s/hec/services/collector/event"),
        ] {
            let base = collector_base(&Url::parse(url).unwrap());
            assert_eq!(base.join(EVENT_PATH).unwrap().as_str(), event, "{url}");
        }
    }
}
