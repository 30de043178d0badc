//! [`ApiClient`]: one method per API call of docs/protocol.md, each with a connect and a total timeout.

use std::error::Error as _;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::Signer;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::ApiError;
use crate::config::Credentials;
use crate::event::{Event, EventType};

/// The largest answer the broker reads: a longer one is cut here and refused (for a pull, the
/// part read goes to the dead-letter file; see docs/reliability.md, "API answers").
pub const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// One entry of the `/health` answer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct HealthEntry {
    /// Whether this part of the service is healthy: only `true` is; anything else (`false`,
    /// `null`, a missing member, another type) is not.
    #[serde(default, deserialize_with = "only_true")]
    pub healthy: bool,
    /// What is wrong, when it is not: read only for an unhealthy entry, so any JSON is
    /// accepted here (null or missing is empty, a string as is, anything else as its JSON text).
    #[serde(default, deserialize_with = "any_json_as_text")]
    pub error: String,
}

/// Reads any JSON value as display text: `null` is empty, a string is itself, anything else
/// is its JSON text.
fn any_json_as_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(json_as_text(serde_json::Value::deserialize(d)?))
}

/// `null` is empty, a string is itself, anything else is its JSON text.
fn json_as_text(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    }
}

/// Reads any JSON value as a flag that is set only by `true`.
fn only_true<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(serde_json::Value::deserialize(d)? == serde_json::Value::Bool(true))
}

/// Reads a list of which only the first element is used: that one as `T`, the others skipped
/// whatever they are.
fn first_element<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct FirstOf<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for FirstOf<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let first = seq.next_element::<T>()?;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }
    d.deserialize_seq(FirstOf(std::marker::PhantomData))
}

/// A logged-in session. The token is a secret: `Debug` does not show it.
#[derive(Clone)]
pub struct Session {
    token: String,
    /// How long the session lives from login, as the API said.
    pub lifetime: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// The HTTP client of one broker id.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    broker: String,
}

/// `{"data": [resource, ...]}`: only the first resource is read (see docs/protocol.md).
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Data<T> {
    #[serde(deserialize_with = "first_element")]
    data: Option<T>,
}

#[derive(Deserialize)]
struct Challenge {
    id: String,
    attributes: ChallengeAttributes,
}

#[derive(Deserialize)]
struct ChallengeAttributes {
    value: String,
}

#[derive(Deserialize)]
struct SessionData {
    attributes: SessionAttributes,
    meta: SessionMeta,
}

#[derive(Deserialize)]
struct SessionAttributes {
    token: String,
}

#[derive(Deserialize)]
struct SessionMeta {
    expiration_timeout: f64,
}

#[derive(Deserialize)]
struct Hello {
    attributes: HelloAttributes,
}

#[derive(Deserialize)]
struct HelloAttributes {
    /// Only shown: any JSON is accepted (null or missing: the broker id is shown instead).
    #[serde(default, deserialize_with = "any_json_as_text")]
    name: String,
}

#[derive(Deserialize)]
struct Events<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
}

impl ApiClient {
    /// A client for `base` (`https://api.custodib.us`) and broker id `broker`; every request has
    /// `timeout` to connect and `timeout` in all.
    pub fn new(base: &str, broker: &str, timeout: Duration) -> Result<Self, ApiError> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("procustodibus-broker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Transport {
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
        parse_json::<Vec<HealthEntry>>(&call, &body)
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
        let (call, body) = self
            .send(reqwest::Method::GET, "/sessions/challenge", None, None)
            .await?;
        let challenge = first(&call, parse_json::<Data<Challenge>>(&call, &body)?)?;
        let signature = credentials
            .signing_key()
            .sign(challenge.attributes.value.as_bytes());
        let auth = format!(
            "X-Custos user=^{}, challenge=^{}, signature={}",
            self.broker,
            challenge.id,
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        );
        let (call, body) = self
            .send(reqwest::Method::POST, "/sessions", Some(auth), None)
            .await?;
        let session = first(&call, parse_json::<Data<SessionData>>(&call, &body)?)?;
        let secs = session.meta.expiration_timeout;
        if !(secs.is_finite() && secs > 0.0) {
            return Err(ApiError::Malformed {
                call,
                reason: format!("expiration_timeout {secs} is not a positive number"),
            });
        }
        Ok(Session {
            token: session.attributes.token,
            lifetime: Duration::from_secs_f64(secs.min(1e9)),
        })
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
        let name = first(&call, parse_json::<Data<Hello>>(&call, &body)?)?
            .attributes
            .name;
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
        decode_pull(queue, &body).map_err(|reason| ApiError::Unreadable { call, reason, body })
    }

    fn session_header(&self, session: &Session) -> String {
        format!("X-Custos user=^{}, session=^{}", self.broker, session.token)
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
        let detail = error_detail(&body.unwrap_or_else(|cut| cut.partial));
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

/// The events of a pull answer, or why it cannot be read.
fn decode_pull(queue: EventType, body: &[u8]) -> Result<Vec<Event>, String> {
    // The usual answer in one scan; anything unusual through serde_json, for its errors.
    if let Some(events) = Event::from_pull_answer(queue, body) {
        return Ok(events);
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Err(format!("not valid UTF-8 (at byte {})", e.valid_up_to()));
    }
    let events: Events = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    events
        .data
        .into_iter()
        .map(|raw| Event::from_raw(queue, raw).map_err(|e| e.to_string()))
        .collect()
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

fn parse_json<'a, T: Deserialize<'a>>(call: &str, body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Malformed {
        call: call.to_string(),
        reason: e.to_string(),
    })
}

fn first<T>(call: &str, data: Data<T>) -> Result<T, ApiError> {
    data.data.ok_or_else(|| ApiError::Malformed {
        call: call.to_string(),
        reason: "empty data list".to_string(),
    })
}

/// The explanation in a JSON:API error answer (`errors[].detail` or `title`), kept short.
fn error_detail(body: &[u8]) -> String {
    // Tolerant as every answer: any entry, and `detail` or `title` of any JSON type.
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<serde_json::Value>,
    }
    let Ok(errors) = serde_json::from_slice::<Errors>(body) else {
        return String::new();
    };
    let shown = |e: &mut serde_json::Value, key: &str| {
        let text = json_as_text(
            e.get_mut(key)
                .map(serde_json::Value::take)
                .unwrap_or_default(),
        );
        (!text.is_empty()).then_some(text)
    };
    let text: Vec<String> = errors
        .errors
        .into_iter()
        .filter_map(|mut e| shown(&mut e, "detail").or_else(|| shown(&mut e, "title")))
        .collect();
    let mut text = text.join("; ");
    if text.len() > 300 {
        let mut end = 300;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
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

#[cfg(test)]
mod tolerant_reading_tests {
    use super::*;

    #[test]
    fn only_the_first_resource_is_read() {
        let body = br#"{"data":[{"id":"c1","type":null,"attributes":{"value":"v","x":[]}},null,7],"meta":null}"#;
        let challenge = first(
            "GET x",
            parse_json::<Data<Challenge>>("GET x", body).unwrap(),
        );
        let challenge = challenge.unwrap();
        assert_eq!(
            (challenge.id.as_str(), challenge.attributes.value.as_str()),
            ("c1", "v")
        );
        let empty = parse_json::<Data<Challenge>>("GET x", br#"{"data":[]}"#).unwrap();
        assert!(first("GET x", empty).is_err());
        for needed in [
            &br#"{"data":null}"#[..],
            br#"{}"#,
            br#"{"data":[{"id":"c1"}]}"#,
        ] {
            assert!(parse_json::<Data<Challenge>>("GET x", needed).is_err());
        }
    }

    #[test]
    fn health_is_true_only_for_true_and_names_any_name() {
        let body =
            br#"[{"healthy":true},{"healthy":null,"error":5},{"error":"x"},{"healthy":"yes"}]"#;
        let entries: Vec<HealthEntry> = serde_json::from_slice(body).unwrap();
        let healthy: Vec<bool> = entries.iter().map(|e| e.healthy).collect();
        assert_eq!(healthy, [true, false, false, false]);
        let hello: Data<Hello> =
            serde_json::from_slice(br#"{"data":[{"attributes":{"name":null}},{}]}"#).unwrap();
        assert_eq!(hello.data.unwrap().attributes.name, "");
    }

    #[test]
    fn error_details_of_any_type_are_shown() {
        let body = br#"{"errors":[{"detail":{"code":3}},null,{"detail":null,"title":"Gone"},{"title":7}]}"#;
        assert_eq!(error_detail(body), r#"{"code":3}; Gone; 7"#);
    }
}

#[cfg(test)]
mod health_entry_tests {
    use super::HealthEntry;

    #[test]
    fn health_error_accepts_any_json() {
        let body = br#"[{"name":"api","healthy":true,"error":null},
            {"healthy":false,"error":{"code":3},"extra":[1]},
            {"healthy":false,"error":"down"},{"healthy":true}]"#;
        let entries: Vec<HealthEntry> = serde_json::from_slice(body).unwrap();
        let errors: Vec<&str> = entries.iter().map(|e| e.error.as_str()).collect();
        assert_eq!(errors, ["", r#"{"code":3}"#, "down", ""]);
    }
}
