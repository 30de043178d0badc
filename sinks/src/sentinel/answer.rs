//! What Microsoft Entra and Azure Monitor answer, read tolerantly: only the members used are
//! required, `null`, extra members and odd types of unused ones are fine.
//!
//! - The token endpoint: `{"token_type":"Bearer","expires_in":3599,"access_token":"..."}`
//!   (`expires_in` a number or a string), or an OAuth error, `{"error":"invalid_client",
//!   "error_description":"AADSTS7000215: Invalid client secret provided. ...\r\nTrace ID: ..."}`.
//! - The ingestion endpoint: 204 and no body, or `{"error":{"code":"...","message":"..."}}`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// The lifetime assumed for a token whose answer has no readable `expires_in`.
pub const ASSUMED_LIFETIME: Duration = Duration::from_secs(300);

/// A token from the token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The access token (a secret).
    pub access_token: String,
    /// How long it is valid from when it was issued.
    pub lifetime: Duration,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(***, {:?})", self.lifetime)
    }
}

/// The members of a token answer the sink uses.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<Value>,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    token_type: Option<Value>,
}

/// Reads a token answer; the error says what is missing (never quoting the body: it may hold
/// a token).
pub fn token(body: &[u8]) -> Result<Token, String> {
    let answer: TokenAnswer =
        serde_json::from_slice(body).map_err(|_| "the answer is not a JSON object".to_string())?;
    let Some(Value::String(access_token)) = answer.access_token else {
        return Err("the answer has no access_token".to_string());
    };
    if access_token.is_empty() || access_token.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err("the answer's access_token is not a bearer token".to_string());
    }
    if let Some(Value::String(kind)) = &answer.token_type {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(format!(
                "the token is of type {:?}, not Bearer",
                broker_core::text::one_line(kind)
            ));
        }
    }
    let seconds = match answer.expires_in {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(text)) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    let lifetime = seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(ASSUMED_LIFETIME, |s| {
            Duration::from_secs_f64(s.min(86_400.0))
        });
    Ok(Token {
        access_token,
        lifetime,
    })
}

/// How long before a token expires the sink fetches a new one: a tenth of its lifetime, at
/// most 5 minutes.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

/// An OAuth error answer: `error: first line of error_description` (`invalid_client:
/// AADSTS7000215: Invalid client secret provided. ...`), `None` when the body has neither.
pub fn token_error(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct OAuthError {
        #[serde(default)]
        error: Option<Value>,
        #[serde(default)]
        error_description: Option<Value>,
    }
    let parsed: OAuthError = serde_json::from_slice(body).ok()?;
    let error = text_of(parsed.error);
    // The description goes on with trace and correlation ids on the next lines.
    let description = text_of(parsed.error_description)
        .map(|d| d.lines().next().unwrap_or_default().trim().to_string());
    match (error, description) {
        (Some(e), Some(d)) if !d.is_empty() => Some(format!("{e}: {d}")),
        (Some(e), _) => Some(e),
        (None, Some(d)) if !d.is_empty() => Some(d),
        _ => None,
    }
}

/// An Azure Monitor error answer: `code: message`, `None` when the body is not one.
pub fn ingestion_error(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Wrapper {
        #[serde(default)]
        error: Option<Value>,
    }
    let parsed: Wrapper = serde_json::from_slice(body).ok()?;
    match parsed.error? {
        Value::Object(error) => {
            let code = text_of(error.get("code").cloned());
            let message = text_of(error.get("message").cloned());
            match (code, message) {
                (Some(c), Some(m)) => Some(format!("{c}: {m}")),
                (c, m) => c.or(m),
            }
        }
        Value::String(text) if !text.is_empty() => Some(text),
        _ => None,
    }
}

/// A string member's text, if it is a non-empty string.
fn text_of(value: Option<Value>) -> Option<String> {
    match value {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(text),
        _ => None,
    }
}
