//! Reading the API's answers: each function takes the body of a 2xx answer to one call (or of an
//! error answer, for [`error_detail`]) and gives its value or an [`ApiError::Malformed`] naming
//! the call. No network here, so the property tests below can feed them any bytes.
//!
//! Reading is tolerant (docs/protocol.md): only the fields the broker needs are required, and of
//! a `data` list only its first element; extra fields, missing optional ones, and `null` or
//! another type in a field the broker does not use all pass.
//!
//! Text the API sends only to be shown (a health entry's `error`, an error answer's `detail`, the
//! broker's name in the hello answer) is made one line ([`crate::text::one_line`]): control
//! characters are written as escapes (`\n`, `\u{1b}`), so an answer can neither split a log
//! line in two nor send terminal escapes.

use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::ApiError;
use crate::event::{Event, EventType};
use crate::text::one_line;

/// One entry of the `/health` answer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct HealthEntry {
    /// Whether this part of the service is healthy: only `true` is; anything else (`false`,
    /// `null`, a missing member, another type) is not.
    #[serde(default, deserialize_with = "only_true")]
    pub healthy: bool,
    /// What is wrong, when it is not: read only for an unhealthy entry, so any JSON is
    /// accepted here (null or missing is empty, a string as is, anything else as its JSON text),
    /// with control characters escaped.
    #[serde(default, deserialize_with = "any_json_as_text")]
    pub error: String,
}

/// Reads any JSON value as display text: `null` is empty, a string is itself (on one line), anything
/// else is its JSON text.
fn any_json_as_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(json_as_text(serde_json::Value::deserialize(d)?))
}

/// `null` is empty, a string is itself (on one line), anything else is its JSON text.
fn json_as_text(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => one_line(&text),
        other => other.to_string(),
    }
}

/// Reads any JSON value as a flag that only `true` sets.
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

impl Session {
    /// The session token, for the `Authorization` header only.
    pub(super) fn token(&self) -> &str {
        &self.token
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// The login challenge: its id and the value to sign.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Challenge {
    pub(super) id: String,
    pub(super) value: String,
}

/// `{"data": [resource, ...]}`: only the first resource is read.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Data<T> {
    #[serde(deserialize_with = "first_element")]
    data: Option<T>,
}

#[derive(Deserialize)]
struct ChallengeData {
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
    /// Only shown: any JSON is accepted (`null` or missing is empty).
    #[serde(default, deserialize_with = "any_json_as_text")]
    name: String,
}

#[derive(Deserialize)]
struct Events<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
}

/// The `/health` answer: a list of entries.
pub(super) fn health(call: &str, body: &[u8]) -> Result<Vec<HealthEntry>, ApiError> {
    parse_json(call, body)
}

/// The `/sessions/challenge` answer.
pub(super) fn challenge(call: &str, body: &[u8]) -> Result<Challenge, ApiError> {
    let data = first(call, parse_json::<Data<ChallengeData>>(call, body)?)?;
    Ok(Challenge {
        id: data.id,
        value: data.attributes.value,
    })
}

/// The `/sessions` answer: the token and a positive lifetime in seconds (capped at 10^9 s).
pub(super) fn session(call: &str, body: &[u8]) -> Result<Session, ApiError> {
    let session = first(call, parse_json::<Data<SessionData>>(call, body)?)?;
    let secs = session.meta.expiration_timeout;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(malformed(
            call,
            format!("expiration_timeout {secs} is not a positive number"),
        ));
    }
    Ok(Session {
        token: session.attributes.token,
        lifetime: Duration::from_secs_f64(secs.min(1e9)),
    })
}

/// The `/queues/{version}/hello` answer: the broker's display name (shown only: on one line,
/// any JSON type, empty when `null` or missing).
pub(super) fn hello_name(call: &str, body: &[u8]) -> Result<String, ApiError> {
    Ok(first(call, parse_json::<Data<Hello>>(call, body)?)?
        .attributes
        .name)
}

/// The `/queues/{type}/next` answer: its events, in order, each encoded into its output line.
pub(super) fn pull_events(
    call: &str,
    queue: EventType,
    body: &[u8],
) -> Result<Vec<Event>, ApiError> {
    // The usual answer in one scan; anything unusual through serde_json, for its errors.
    if let Some(events) = Event::from_pull_answer(queue, body) {
        return Ok(events);
    }
    if let Err(e) = std::str::from_utf8(body) {
        let reason = format!("not valid UTF-8 (at byte {})", e.valid_up_to());
        return Err(malformed(call, reason));
    }
    parse_json::<Events>(call, body)?
        .data
        .into_iter()
        .map(|raw| Event::from_raw(queue, raw).map_err(|e| malformed(call, e.to_string())))
        .collect()
}

/// The explanation in a JSON:API error answer (`errors[].detail` or `title`), on one line and
/// kept short (300 bytes and `...`); empty when there is none.
pub(super) fn error_detail(body: &[u8]) -> String {
    // Tolerant as every answer: entries of any type, `detail` or `title` of any JSON type.
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
    let mut text = one_line(&text.join("; "));
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

fn malformed(call: &str, reason: String) -> ApiError {
    ApiError::Malformed {
        call: call.to_string(),
        reason,
    }
}

fn parse_json<'a, T: Deserialize<'a>>(call: &str, body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| malformed(call, e.to_string()))
}

fn first<T>(call: &str, data: Data<T>) -> Result<T, ApiError> {
    data.data
        .ok_or_else(|| malformed(call, "empty data list".to_string()))
}

#[cfg(test)]
mod tests;
