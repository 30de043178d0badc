//! The simulated API's data and rules: brokers and their keys, setup codes, challenges,
//! sessions, queues, health, injected faults and the request log.
//!
//! Everything here is plain synchronous code on one struct kept behind a mutex; the HTTP layer
//! (`api.rs`, `admin.rs`) turns requests into these calls and their results into responses.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::Deserialize;

use crate::auth::CustosAuth;
use crate::event_type::EventType;
use crate::faults::FaultQueue;
use crate::generator::EventGenerator;
use crate::options::{AnswerStyle, SimOptions};
use crate::random;
use crate::records::{RequestRecord, SetupRecord};
use crate::response::quote;
use crate::tolerant;

/// A refusal of the API: the status to answer and the JSON:API error detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// HTTP status, e.g. 401.
    pub(crate) status: u16,
    /// Human-readable detail for the error document.
    pub(crate) detail: String,
}

impl ApiError {
    fn new(status: u16, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
        }
    }

    fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(401, detail)
    }

    fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, detail)
    }

    fn random_failed(err: getrandom::Error) -> ApiError {
        ApiError::new(500, format!("no randomness available: {err}"))
    }
}

/// What `GET /health` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    /// 200 with one `{"healthy": .., "error": ..}` entry per element.
    Entries(Vec<(bool, String)>),
    /// This status with a JSON:API error body.
    Status(u16),
}

#[derive(Debug, Clone)]
struct Broker {
    name: String,
    keys: Vec<[u8; 32]>,
}

#[derive(Debug, Clone)]
struct SetupCode {
    expires: DateTime<Utc>,
    used: bool,
}

#[derive(Debug, Clone)]
struct Challenge {
    value: String,
    expires: Instant,
}

#[derive(Debug, Clone)]
struct Session {
    broker: String,
    expires: Instant,
}

/// Body of the setup call.
#[derive(Debug, Deserialize)]
struct SetupBody {
    secret: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    keep_others: Option<bool>,
}

/// The whole simulated API.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) options: SimOptions,
    brokers: HashMap<String, Broker>,
    setup_codes: HashMap<(String, String), SetupCode>,
    challenges: HashMap<String, Challenge>,
    sessions: HashMap<String, Session>,
    queues: [VecDeque<String>; 4],
    served: [usize; 4],
    pub(crate) health: Health,
    pub(crate) faults: FaultQueue,
    pub(crate) requests: Vec<RequestRecord>,
    pub(crate) setups: Vec<SetupRecord>,
    pub(crate) logins: usize,
    pub(crate) hello_versions: Vec<String>,
    pub(crate) generator: EventGenerator,
    /// True while pulls are held: they wait, unanswered, until it turns false.
    pub(crate) pull_gate: tokio::sync::watch::Sender<bool>,
    /// Pulls waiting at the gate now.
    pub(crate) held_pulls: usize,
}

impl State {
    /// An API with no brokers, empty queues and a healthy answer.
    pub(crate) fn new(options: SimOptions) -> State {
        State {
            generator: EventGenerator::with_large_every(options.seed, options.large_every),
            options,
            brokers: HashMap::new(),
            setup_codes: HashMap::new(),
            challenges: HashMap::new(),
            sessions: HashMap::new(),
            queues: Default::default(),
            served: [0; 4],
            health: Health::Entries(vec![(true, String::new())]),
            faults: FaultQueue::default(),
            requests: Vec::new(),
            setups: Vec::new(),
            logins: 0,
            hello_versions: Vec::new(),
            pull_gate: tokio::sync::watch::Sender::new(false),
            held_pulls: 0,
        }
    }

    /// Whether answers are written in [`AnswerStyle::Tolerant`].
    fn tolerant(&self) -> bool {
        self.options.answer_style == AnswerStyle::Tolerant
    }

    /// Add a broker, or rename an existing one (its keys stay).
    pub(crate) fn add_broker(&mut self, id: &str, name: &str) {
        self.brokers
            .entry(id.to_string())
            .and_modify(|b| b.name = name.to_string())
            .or_insert_with(|| Broker {
                name: name.to_string(),
                keys: Vec::new(),
            });
    }

    /// Whether a broker with this id exists.
    pub(crate) fn has_broker(&self, id: &str) -> bool {
        self.brokers.contains_key(id)
    }

    /// Register a one-time setup code for `broker`.
    pub(crate) fn add_setup_code(&mut self, broker: &str, code: &str, expires: DateTime<Utc>) {
        self.setup_codes.insert(
            (broker.to_string(), code.to_string()),
            SetupCode {
                expires,
                used: false,
            },
        );
    }

    /// Register a public key for `broker`, creating the broker (named after its id) if needed.
    pub(crate) fn add_key(&mut self, broker: &str, key: [u8; 32]) {
        let entry = self
            .brokers
            .entry(broker.to_string())
            .or_insert_with(|| Broker {
                name: broker.to_string(),
                keys: Vec::new(),
            });
        if !entry.keys.contains(&key) {
            entry.keys.push(key);
        }
    }

    /// The public keys registered for `broker`, oldest first.
    pub(crate) fn registered_keys(&self, broker: &str) -> Vec<[u8; 32]> {
        self.brokers
            .get(broker)
            .map(|b| b.keys.clone())
            .unwrap_or_default()
    }

    /// Append one raw event to a queue.
    pub(crate) fn enqueue(&mut self, event_type: EventType, raw: String) {
        self.queues[event_type.index()].push_back(raw);
    }

    /// Number of events waiting in a queue.
    pub(crate) fn queue_len(&self, event_type: EventType) -> usize {
        self.queues[event_type.index()].len()
    }

    /// Number of events successful pulls have removed from a queue so far.
    pub(crate) fn served(&self, event_type: EventType) -> usize {
        self.served[event_type.index()]
    }

    /// Make every session token invalid from now on.
    pub(crate) fn expire_all_sessions(&mut self, now: Instant) {
        for session in self.sessions.values_mut() {
            session.expires = now;
        }
    }

    /// `POST /users/{broker}/credentials/signature`: register a key with a one-time code.
    pub(crate) fn setup(
        &mut self,
        broker: &str,
        authorization: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<String, ApiError> {
        let auth = authorization
            .and_then(CustosAuth::parse)
            .ok_or_else(|| ApiError::unauthorized("missing or malformed authorization header"))?;
        let user = auth
            .caret("user")
            .ok_or_else(|| ApiError::unauthorized("authorization header has no user=^ID"))?;
        let code = auth.caret("broker_setup").ok_or_else(|| {
            ApiError::unauthorized("authorization header has no broker_setup=^CODE")
        })?;
        if user != broker {
            return Err(ApiError::unauthorized(
                "user does not match the broker in the path",
            ));
        }
        if !self.brokers.contains_key(broker) {
            return Err(ApiError::unauthorized("unknown broker"));
        }
        let key = (broker.to_string(), code.to_string());
        let entry = self
            .setup_codes
            .get(&key)
            .ok_or_else(|| ApiError::unauthorized("invalid setup code"))?;
        if entry.used {
            return Err(ApiError::unauthorized("setup code already used"));
        }
        if entry.expires <= now {
            return Err(ApiError::unauthorized("setup code expired"));
        }

        let request: SetupBody = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid setup body: {e}")))?;
        let decoded = STANDARD
            .decode(request.secret.as_bytes())
            .map_err(|e| ApiError::bad_request(format!("secret is not standard base64: {e}")))?;
        let public_key: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
            ApiError::bad_request(format!(
                "secret must be a 32-byte Ed25519 public key, not {} bytes",
                decoded.len()
            ))
        })?;
        if VerifyingKey::from_bytes(&public_key).is_err() {
            return Err(ApiError::bad_request(
                "secret is not a valid Ed25519 public key",
            ));
        }
        let credential_id = random::hex_id(8).map_err(ApiError::random_failed)?;

        if let Some(entry) = self.setup_codes.get_mut(&key) {
            entry.used = true;
        }
        let keep_others = request.keep_others.unwrap_or(false);
        if let Some(entry) = self.brokers.get_mut(broker) {
            if !keep_others {
                entry.keys.clear();
            }
            if !entry.keys.contains(&public_key) {
                entry.keys.push(public_key);
            }
        }
        let description = request.description.unwrap_or_default();
        self.setups.push(SetupRecord {
            broker: broker.to_string(),
            public_key,
            description: description.clone(),
            keep_others,
        });
        let created = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        if self.tolerant() {
            return Ok(tolerant::setup(&credential_id, &description, &created));
        }
        Ok(format!(
            r#"{{"data":[{{"type":"credentials","id":{},"attributes":{{"type":"signature","description":{},"public_key":{},"created":{}}}}}]}}"#,
            quote(&credential_id),
            quote(&description),
            quote(&request.secret),
            quote(&created),
        ))
    }

    /// `GET /sessions/challenge`: a fresh single-use challenge.
    pub(crate) fn challenge(&mut self, now: Instant) -> Result<String, ApiError> {
        self.challenges.retain(|_, c| c.expires > now);
        let id = random::hex_id(16).map_err(ApiError::random_failed)?;
        let value = random::token(32).map_err(ApiError::random_failed)?;
        let body = if self.tolerant() {
            tolerant::challenge(&id, &value)
        } else {
            format!(
                r#"{{"data":[{{"type":"challenges","id":{},"attributes":{{"value":{}}}}}]}}"#,
                quote(&id),
                quote(&value)
            )
        };
        self.challenges.insert(
            id,
            Challenge {
                value,
                expires: later(now, self.options.challenge_lifetime),
            },
        );
        Ok(body)
    }

    /// `POST /sessions`: log in by signing a challenge.
    pub(crate) fn login(
        &mut self,
        authorization: Option<&str>,
        now: Instant,
    ) -> Result<String, ApiError> {
        let auth = authorization
            .and_then(CustosAuth::parse)
            .ok_or_else(|| ApiError::unauthorized("missing or malformed authorization header"))?;
        let user = auth
            .caret("user")
            .ok_or_else(|| ApiError::unauthorized("authorization header has no user=^ID"))?;
        let challenge_id = auth
            .caret("challenge")
            .ok_or_else(|| ApiError::unauthorized("authorization header has no challenge=^ID"))?;
        // Single use: any attempt that names a challenge consumes it.
        let challenge = self
            .challenges
            .remove(challenge_id)
            .ok_or_else(|| ApiError::unauthorized("invalid challenge"))?;
        if challenge.expires <= now {
            return Err(ApiError::unauthorized("challenge expired"));
        }
        let broker = self
            .brokers
            .get(user)
            .ok_or_else(|| ApiError::unauthorized("unknown broker"))?;
        let signature = auth
            .plain("signature")
            .and_then(|s| URL_SAFE_NO_PAD.decode(s.as_bytes()).ok())
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "signature missing or not 64 bytes of URL-safe base64 without padding",
                )
            })?;
        let verified = broker.keys.iter().any(|key| {
            VerifyingKey::from_bytes(key)
                .map(|k| k.verify(challenge.value.as_bytes(), &signature).is_ok())
                .unwrap_or(false)
        });
        if !verified {
            return Err(ApiError::unauthorized("invalid signature"));
        }

        let token = random::token(32).map_err(ApiError::random_failed)?;
        let lifetime = self.options.session_lifetime;
        self.sessions.retain(|_, s| s.expires > now);
        self.sessions.insert(
            token.clone(),
            Session {
                broker: user.to_string(),
                expires: later(now, lifetime),
            },
        );
        self.logins += 1;
        if self.tolerant() {
            return Ok(tolerant::login(&token, lifetime.as_secs()));
        }
        Ok(format!(
            r#"{{"data":[{{"type":"sessions","attributes":{{"token":{}}},"meta":{{"expiration_timeout":{}}}}}]}}"#,
            quote(&token),
            lifetime.as_secs()
        ))
    }

    /// The broker a session header belongs to, if its token is valid now.
    fn session_broker(
        &self,
        authorization: Option<&str>,
        now: Instant,
    ) -> Result<String, ApiError> {
        let auth = authorization
            .and_then(CustosAuth::parse)
            .ok_or_else(|| ApiError::unauthorized("missing or malformed authorization header"))?;
        let user = auth
            .caret("user")
            .ok_or_else(|| ApiError::unauthorized("authorization header has no user=^ID"))?;
        let token = auth
            .caret("session")
            .ok_or_else(|| ApiError::unauthorized("authorization header has no session=^TOKEN"))?;
        let session = self
            .sessions
            .get(token)
            .ok_or_else(|| ApiError::unauthorized("invalid session"))?;
        if session.expires <= now {
            return Err(ApiError::unauthorized("session expired"));
        }
        if session.broker != user {
            return Err(ApiError::unauthorized("session belongs to another broker"));
        }
        Ok(session.broker.clone())
    }

    /// `GET /queues/{version}/hello`: the broker's display name; records the version.
    pub(crate) fn hello(
        &mut self,
        version: &str,
        authorization: Option<&str>,
        now: Instant,
    ) -> Result<String, ApiError> {
        let broker_id = self.session_broker(authorization, now)?;
        let name = self
            .brokers
            .get(&broker_id)
            .map(|b| b.name.clone())
            .unwrap_or_default();
        self.hello_versions.push(version.to_string());
        if self.tolerant() {
            return Ok(tolerant::hello(&broker_id, &name));
        }
        Ok(format!(
            r#"{{"data":[{{"type":"brokers","id":{},"attributes":{{"name":{}}}}}]}}"#,
            quote(&broker_id),
            quote(&name)
        ))
    }

    /// `POST /queues/{type}/next`: remove and return up to `max` events, oldest first, as the
    /// concatenation of their raw texts.
    pub(crate) fn pull(
        &mut self,
        event_type: EventType,
        authorization: Option<&str>,
        body: &[u8],
        now: Instant,
    ) -> Result<String, ApiError> {
        self.session_broker(authorization, now)?;
        let max = pull_max(body).ok_or_else(|| {
            ApiError::bad_request("body must be a JSON object with \"max\": a positive integer")
        })?;
        let count = max.min(self.options.max_cap) as usize;
        let tolerant = self.tolerant();
        let queue = &mut self.queues[event_type.index()];
        let count = count.min(queue.len());
        self.served[event_type.index()] += count;
        let mut out = String::from(r#"{"data":["#);
        for (i, raw) in queue.drain(..count).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&raw);
        }
        out.push_str("]}");
        if tolerant {
            // The events alone, without `{"data":[` and `]}`.
            return Ok(tolerant::pull(&out[9..out.len() - 2]));
        }
        Ok(out)
    }

    /// The `GET /health` answer.
    pub(crate) fn health_body(&self) -> Result<String, ApiError> {
        match &self.health {
            Health::Status(status) => Err(ApiError::new(*status, "unhealthy (simulated)")),
            Health::Entries(entries) if self.tolerant() => Ok(tolerant::health(entries)),
            Health::Entries(entries) => {
                let items: Vec<String> = entries
                    .iter()
                    .map(|(healthy, error)| {
                        format!(r#"{{"healthy":{healthy},"error":{}}}"#, quote(error))
                    })
                    .collect();
                Ok(format!("[{}]", items.join(",")))
            }
        }
    }
}

/// The positive integer `max` of a pull body (saturated to u32), if it has one.
pub(crate) fn pull_max(body: &[u8]) -> Option<u32> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let max = value.as_object()?.get("max")?.as_u64()?;
    (max > 0).then(|| u32::try_from(max).unwrap_or(u32::MAX))
}

/// Lifetime arithmetic that cannot overflow an `Instant`.
pub(crate) fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_max_accepts_only_positive_integers() {
        assert_eq!(pull_max(br#"{"max": 5}"#), Some(5));
        assert_eq!(pull_max(br#"{"max": 99999999999}"#), Some(u32::MAX));
        for bad in [
            &br#"{"max": 0}"#[..],
            br#"{"max": -1}"#,
            br#"{"max": 1.5}"#,
            br#"{"max": "5"}"#,
            br#"{}"#,
            br#"[5]"#,
            b"",
            b"max=5",
        ] {
            assert_eq!(pull_max(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn health_entries_render_as_a_list() {
        let mut state = State::new(SimOptions::default());
        assert_eq!(
            state.health_body(),
            Ok(r#"[{"healthy":true,"error":""}]"#.into())
        );
        state.health = Health::Entries(vec![(true, String::new()), (false, "db \"down\"".into())]);
        assert_eq!(
            state.health_body(),
            Ok(r#"[{"healthy":true,"error":""},{"healthy":false,"error":"db \"down\""}]"#.into())
        );
        state.health = Health::Status(503);
        assert_eq!(state.health_body().map_err(|e| e.status), Err(503));
    }
}
