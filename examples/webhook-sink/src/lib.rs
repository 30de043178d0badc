//! A `webhook` sink for the Pro Custodibus broker: POSTs a pipe's events over HTTPS.
//!
//! ```ini
//! [Pipe.Splunk]
//! From = alerts, log_authn, log_changes
//! To = webhook
//! Url = https://splunk.example.com:8088/services/collector/raw
//! Header = Authorization: Splunk 0a1b2c3d-0000-0000-0000-000000000000
//! Batch = 50                 # events per request (default 100)
//! Body = ndjson              # or array (default ndjson)
//! Timeout = 10               # seconds per request (default 30)
//! CA = /etc/procustodibus/broker/splunk-ca.pem   # default: the system's trusted roots
//! Proxy = http://proxy.example.com:3128          # default: no proxy (or `environment`)
//! HeaderFile = /etc/procustodibus/broker/splunk-header   # `Name: value`, kept out of broker.conf
//! ```
//!
//! This crate is also the worked example of `docs/writing-a-sink.md`: a sink that lives in its
//! own crate, uses broker-core's public API and the sink toolkit of broker-sinks, registers itself
//! with [`inventory`], and is linked into a custom daemon (`examples/custom-broker`) by one call
//! to [`link`].
//!
//! - [`config`]: the keys ([`config::KEYS`]), checked without I/O but the `HeaderFile` files
//!   ([`WebhookConfig`]).
//! - [`body`]: a request's body (`ndjson` or `array`).
//! - [`sink`](mod@sink): [`WebhookSink`], the requests and what each answer means for delivery
//!   (a refused event against a refused request, retries, proxies).
//!
//! What every HTTP sink shares (the client keys, secrets, answers, `Retry-After`, masking) is
//! the layer [`broker_sinks::util::http`].
//!
//! TLS is rustls with ring, the workspace's one crypto provider (reqwest's `rustls-no-provider`
//! feature; the provider is installed with [`broker_core::install_crypto_provider`]). The server's
//! certificate is always verified.

#![warn(missing_docs)]

pub mod body;
pub mod config;
pub mod sink;

use broker_core::config::PipeSettings;
use broker_core::registry::BuildError;
use broker_core::{Sink, SinkPlugin};

pub use config::{BodyFormat, WebhookConfig};
pub use sink::WebhookSink;

inventory::submit! {
    SinkPlugin {
        name: "webhook",
        keys: config::KEYS,
        build: build_webhook_sink,
    }
}

/// The registered builder: checks the settings and makes the sink, without I/O.
fn build_webhook_sink(settings: &PipeSettings) -> Result<Box<dyn Sink>, BuildError> {
    Ok(Box::new(WebhookSink::from_settings(settings)?))
}

/// Does nothing: call it (or write `use webhook_sink as _;`) in a binary so the linker keeps
/// this crate, and with it the `webhook` registration.
pub fn link() {}

#[cfg(test)]
mod tests {
    #[test]
    fn webhook_is_registered() {
        super::link();
        let plugin = broker_core::registry::find("Webhook").expect("registered");
        assert_eq!(plugin.name, "webhook");
        let header = plugin.keys.iter().find(|k| k.matches("header")).unwrap();
        assert!(header.repeatable);
    }
}
