//! A minimal API client for baseline A: it logs in and pulls, splits each answer into events
//! (to count them, as any client must to know when a queue is empty) and discards them, without
//! re-encoding anything. It is the least work a client can do with what the simulator serves.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use broker_core::config::Credentials;
use ed25519_dalek::Signer;
use serde_json::value::RawValue;
use serde_json::Value;

/// A logged-in client of one broker id.
pub struct RawClient {
    http: reqwest::Client,
    base: String,
    authorization: String,
}

#[derive(serde::Deserialize)]
struct Events<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
}

impl RawClient {
    /// Logs in to `base` as `broker` with `credentials` (challenge, signature, session).
    pub async fn login(
        base: &str,
        broker: &str,
        credentials: &Credentials,
    ) -> Result<Self, String> {
        broker_core::install_crypto_provider();
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let challenge: Value = get_json(http.get(format!("{base}/sessions/challenge"))).await?;
        let id = challenge["data"][0]["id"].as_str().unwrap_or_default();
        let value = challenge["data"][0]["attributes"]["value"]
            .as_str()
            .unwrap_or_default();
        let signature = credentials.signing_key().sign(value.as_bytes());
        let auth = format!(
            "X-Custos user=^{broker}, challenge=^{id}, signature={}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        );
        let session: Value = get_json(
            http.post(format!("{base}/sessions"))
                .header(reqwest::header::AUTHORIZATION, auth),
        )
        .await?;
        let token = session["data"][0]["attributes"]["token"]
            .as_str()
            .ok_or_else(|| format!("login answer without a token: {session}"))?;
        Ok(RawClient {
            http,
            base: base.to_string(),
            authorization: format!("X-Custos user=^{broker}, session=^{token}"),
        })
    }

    /// `POST /queues/{queue}/next` with `max`; returns how many events came and the body's size.
    pub async fn pull(&self, queue: &str, max: u32) -> Result<(usize, usize), String> {
        let response = self
            .http
            .post(format!("{}/queues/{queue}/next", self.base))
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .json(&serde_json::json!({ "max": max }))
            .send()
            .await
            .map_err(|e| format!("pull {queue}: {e}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("pull {queue}: {e}"))?;
        if !status.is_success() {
            return Err(format!("pull {queue}: status {status}"));
        }
        let events: Events = serde_json::from_slice(&body)
            .map_err(|e| format!("pull {queue}: malformed answer: {e}"))?;
        Ok((events.data.len(), body.len()))
    }
}

async fn get_json(request: reqwest::RequestBuilder) -> Result<Value, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}
