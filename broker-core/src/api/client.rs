//! [`ApiClient`]: one method per API call of docs/protocol.md, each with a connect and a total timeout.
//!
//! A loopback API (`http://127.0.0.1:PORT`, [`crate::loopback`]) is reached directly; any other
//! API honours the proxy variables (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, ...).

use std::error::Error as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::Signer;

use super::answer::{self, HealthEntry, Session};
use super::error::ApiError;
use crate::config::Credentials;
use crate::event::{Event, EventType};

/// The largest answer the broker reads: a longer one is cut here and refused (for a pull, the
/// part read goes to the dead-letter file; see docs/reliability.md, "API answers").
pub const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// The HTTP client of one broker id.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    broker: String,
}

impl ApiClient {
    /// A client for `base` (`https://api.custodib.us`) and broker id `broker`; every request has
    /// `timeout` to connect and `timeout` in all.
    pub fn new(base: &str, broker: &str, timeout: Duration) -> Result<Self, ApiError> {
        crate::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("procustodibus-broker/", env!("CARGO_PKG_VERSION")));
        if crate::loopback::is_loopback_url(base) {
            // A local API (the simulator) is reached directly, whatever HTTP_PROXY and the like
            // say; any other API uses them, and NO_PROXY, as the existing broker does.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| ApiError::Transport {
            call: base.to_string(),
            reason: format!("cannot set up the HTTP client: {}", reason(&e)),
        })?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            broker: broker.to_string(),
        })
    }

    /// The API base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The broker id.
    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Vec<HealthEntry>, ApiError> {
        let (call, body) = self
            .send(reqwest::Method::GET, "/health", None, None)
            .await?;
        answer::health(&call, &body)
    }

    /// `POST /users/{broker}/credentials/signature`: registers `public_key` (standard base64)
    /// with the one-time setup `code`.
    pub async fn register_key(
        &self,
        code: &str,
        public_key: &str,
        description: &str,
        keep_others: bool,
    ) -> Result<(), ApiError> {
        let path = format!("/users/{}/credentials/signature", self.broker);
        let auth = format!("X-Custos user=^{} broker_setup=^{code}", self.broker);
        let body = serde_json::json!({
            "secret": public_key,
            "description": description,
            "keep_others": keep_others,
        });
        self.send(reqwest::Method::POST, &path, Some(auth), Some(body))
            .await?;
        Ok(())
    }

    /// `GET /sessions/challenge`, then `POST /sessions` with the challenge signed by `credentials`.
    pub async fn login(&self, credentials: &Credentials) -> Result<Session, ApiError> {
        let session = self.sign_in(credentials).await;
        let counter = match session {
            Ok(_) => &LOGINS_OK,
            Err(_) => &LOGINS_FAILED,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        session
    }

    async fn sign_in(&self, credentials: &Credentials) -> Result<Session, ApiError> {
        let (call, body) = self
            .send(reqwest::Method::GET, "/sessions/challenge", None, None)
            .await?;
        let challenge = answer::challenge(&call, &body)?;
        let signature = credentials.signing_key().sign(challenge.value.as_bytes());
        let auth = format!(
            "X-Custos user=^{}, challenge=^{}, signature={}",
            self.broker,
            challenge.id,
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        );
        let (call, body) = self
            .send(reqwest::Method::POST, "/sessions", Some(auth), None)
            .await?;
        answer::session(&call, &body)
    }

    /// `GET /queues/{version}/hello`: the broker's display name.
    pub async fn hello(&self, session: &Session) -> Result<String, ApiError> {
        let path = format!("/queues/{}/hello", crate::VERSION);
        let (call, body) = self
            .send(
                reqwest::Method::GET,
                &path,
                Some(self.session_header(session)),
                None,
            )
            .await?;
        let name = answer::hello_name(&call, &body)?;
        Ok(if name.is_empty() {
            self.broker.clone()
        } else {
            name
        })
    }

    /// `POST /queues/{type}/next`: takes up to `max` events off the queue.
    pub async fn pull(
        &self,
        session: &Session,
        queue: EventType,
        max: u32,
    ) -> Result<Vec<Event>, ApiError> {
        let path = format!("/queues/{queue}/next");
        let body = serde_json::json!({ "max": max });
        let (call, body) = self
            .send_keeping_cut_answer(
                reqwest::Method::POST,
                &path,
                Some(self.session_header(session)),
                Some(body),
            )
            .await?;
        // The events are gone from the API's queue now: an answer that cannot be decoded
        // comes back whole in the error, for the dead-letter file.
        answer::pull_events(&call, queue, &body).map_err(|e| match e {
            ApiError::Malformed { call, reason } => ApiError::Unreadable { call, reason, body },
            other => other,
        })
    }

    fn session_header(&self, session: &Session) -> String {
        format!(
            "X-Custos user=^{}, session=^{}",
            self.broker,
            session.token()
        )
    }

    /// Sends one request; returns `METHOD URL` and the body of a 2xx answer. A 2xx answer that
    /// cannot be read whole is [`ApiError::Malformed`]: its bytes (which may hold a session
    /// token) are dropped.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        authorization: Option<String>,
        json: Option<serde_json::Value>,
    ) -> Result<(String, bytes::Bytes), ApiError> {
        self.send_keeping_cut_answer(method, path, authorization, json)
            .await
            .map_err(|e| match e {
                ApiError::Unreadable { call, reason, .. } => ApiError::Malformed { call, reason },
                other => other,
            })
    }

    /// Like [`ApiClient::send`], but a 2xx answer that cannot be read whole is
    /// [`ApiError::Unreadable`] with the bytes that arrived: only for pulls, whose answers hold
    /// events already gone from the API's queue and never a secret.
    async fn send_keeping_cut_answer(
        &self,
        method: reqwest::Method,
        path: &str,
        authorization: Option<String>,
        json: Option<serde_json::Value>,
    ) -> Result<(String, bytes::Bytes), ApiError> {
        let url = format!("{}{path}", self.base);
        let call = format!("{method} {url}");
        let mut request = self.http.request(method, &url);
        if let Some(auth) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        if let Some(body) = json {
            request = request.json(&body);
        }
        let transport = |e: reqwest::Error, call: &str| ApiError::Transport {
            call: call.to_string(),
            reason: reason(&e),
        };
        let response = request.send().await.map_err(|e| transport(e, &call))?;
        let status = response.status();
        let body = read_body(response, MAX_ANSWER_BYTES).await;
        if status.is_success() {
            return match body {
                Ok(body) => Ok((call, body)),
                Err(cut) => Err(ApiError::Unreadable {
                    call,
                    reason: cut.reason,
                    body: cut.partial,
                }),
            };
        }
        let detail = answer::error_detail(&body.unwrap_or_else(|cut| cut.partial));
        if status == reqwest::StatusCode::UNAUTHORIZED {
            Err(ApiError::Unauthorized { call, detail })
        } else {
            Err(ApiError::Status {
                call,
                status: status.as_u16(),
                detail,
            })
        }
    }
}

/// An answer body that could not be read whole: why, and the bytes that did arrive.
struct CutAnswer {
    reason: String,
    partial: bytes::Bytes,
}

/// Reads the body of `response`, at most `limit` bytes of it.
async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, CutAnswer> {
    let expected = response.content_length().unwrap_or(0);
    let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(limit).min(limit));
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    return Err(CutAnswer {
                        reason: format!(
                            "answer larger than {} MiB: only its first {} MiB were read",
                            limit >> 20,
                            limit >> 20
                        ),
                        partial: body.into(),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.into()),
            Err(e) => {
                return Err(CutAnswer {
                    reason: format!(
                        "answer cut short after {} bytes: {}",
                        body.len(),
                        reason(&e)
                    ),
                    partial: body.into(),
                })
            }
        }
    }
}

/// A reqwest error with its causes, without the URL (the caller names it).
fn reason(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    if error.is_timeout() {
        parts.push("timed out".to_string());
    }
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    if parts.is_empty() {
        let text = error.to_string();
        parts.push(text);
    }
    parts.join(": ")
}

static LOGINS_OK: AtomicU64 = AtomicU64::new(0);
static LOGINS_FAILED: AtomicU64 = AtomicU64::new(0);

/// API logins since the process started: (succeeded, failed).
pub fn login_counts() -> (u64, u64) {
    (
        LOGINS_OK.load(Ordering::Relaxed),
        LOGINS_FAILED.load(Ordering::Relaxed),
    )
}
