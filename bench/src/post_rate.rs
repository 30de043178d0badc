//! A receiver's own rate: a plain HTTP client POSTing pre-built request bodies one after the
//! other on one kept-alive connection, every answer checked to be 2xx. The baseline of the sink
//! benchmarks: what the receiver takes when nothing else (pulling, spooling, encoding) is in the
//! way.

use std::path::Path;
use std::time::Instant;

use tokio::runtime::Runtime;

/// A plain client for one HTTPS receiver, with the runtime it runs on.
pub struct Poster {
    runtime: Runtime,
    client: reqwest::Client,
}

impl Poster {
    /// A client that trusts the PEM CA file `ca` (the test receiver's), no proxy.
    pub fn new(ca: &Path) -> Result<Poster, String> {
        broker_core::install_crypto_provider();
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only(certs)
            .build()
            .map_err(|e| e.to_string())?;
        let runtime = Runtime::new().map_err(|e| format!("cannot start a runtime: {e}"))?;
        Ok(Poster { runtime, client })
    }

    /// POSTs each of `bodies` to `url` with `headers`, in order, each after the answer to the
    /// one before; returns the seconds it took.
    pub fn post_all(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        bodies: &[Vec<u8>],
    ) -> Result<f64, String> {
        self.runtime.block_on(async {
            let start = Instant::now();
            for body in bodies {
                let mut request = self.client.post(url).body(body.clone());
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                let response = request
                    .send()
                    .await
                    .map_err(|e| format!("POST failed: {e}"))?;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if !status.is_success() {
                    return Err(format!("the receiver answered {status}: {text}"));
                }
            }
            Ok(start.elapsed().as_secs_f64())
        })
    }
}
