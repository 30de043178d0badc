//! A test receiver that behaves as Microsoft Entra's token endpoint and the Azure Monitor Logs
//! Ingestion API document, on one [`HttpReceiver`] (so a pipe's `AuthorityHost` and `Endpoint`
//! are both its URL), with fault switches.
//!
//! - `POST /{tenant}/oauth2/v2.0/token`, a form with `client_id`, `client_secret`,
//!   `grant_type=client_credentials` and `scope=https://monitor.azure.com//.default`: 200 and
//!   `{"token_type":"Bearer","expires_in":N,"ext_expires_in":N,"access_token":"..."}` (N as a
//!   string when [`AzureState::expires_in_as_string`]); a wrong tenant, client id, secret, grant
//!   or scope: 400 with an OAuth error and an `AADSTS` code in `error_description`, as Entra
//!   answers.
//! - `POST /dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01` with
//!   `Authorization: Bearer` and a JSON array of rows: 204; 401 for a missing, unknown, expired
//!   or revoked token; 404 for another DCR or stream; 400 for a missing api-version, a body that
//!   is not an array of objects, or a row chosen to be refused; 413 over the body bound (1 MiB).
//!
//! The handling is plain functions over the state and the request ([`handle`]); the faults are
//! fields of [`AzureState`] a test sets through [`SentinelReceiver::state`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::http_receiver::{Action, HttpReceiver, Reply, Request};

/// The tenant the receiver knows.
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The application (client) id it knows.
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
/// The client secret it takes.
pub const CLIENT_SECRET: &str = "Qx8~SECRET.client-secret_value";
/// The DCR immutable id it knows.
pub const DCR: &str = "dcr-0123456789abcdef0123456789abcdef";
/// The stream it knows.
pub const STREAM: &str = "Custom-ProCustodibus_CL";
/// The scope a token must be asked for.
pub const SCOPE: &str = "https://monitor.azure.com//.default";
/// The largest body the ingestion endpoint takes, as Azure Monitor's 1 MB.
pub const MAX_BODY: usize = 1 << 20;

/// What the receiver knows and has received, and its fault switches.
#[derive(Debug)]
pub struct AzureState {
    /// Lifetime of the tokens it issues.
    pub token_lifetime: Duration,
    /// Writes `expires_in` as a string (`"3599"`), as some Entra answers do.
    pub expires_in_as_string: bool,
    /// Puts the secret it got into its error description (a careless proxy or server).
    pub echo_secret: bool,
    /// The largest body taken; over it, 413.
    pub max_body: usize,
    /// A request holding a row whose `Id` is this is refused with 400.
    pub refuse_id: Option<String>,
    /// Every ingestion request is refused with 400 (a stream whose columns do not match).
    pub refuse_all: bool,
    /// The next this many ingestion requests are answered 503 with `Retry-After: 1`.
    pub unavailable: usize,
    /// The next this many ingestion requests are answered 429 with this `Retry-After`.
    pub throttled: (usize, u64),
    /// The next this many ingestion requests are taken (their rows kept) and the connection is
    /// closed without an answer.
    pub drop_after_receipt: usize,
    /// Every ingestion request is answered 403 (no role assignment on the DCR).
    pub forbidden: bool,
    /// The next this many token requests are answered 503 with `Retry-After: 2`.
    pub token_unavailable: usize,
    /// Tokens issued: value and expiry; revoked ones are gone.
    tokens: Vec<(String, Instant)>,
    /// How many tokens were issued.
    pub issued: usize,
    /// The rows taken, in order (only counted when [`AzureState::keep_rows`] is off).
    pub rows: Vec<Value>,
    /// Whether taken rows are kept in [`AzureState::rows`] (a benchmark only counts them).
    pub keep_rows: bool,
    /// How many rows were taken.
    pub taken: usize,
}

impl Default for AzureState {
    fn default() -> Self {
        AzureState {
            token_lifetime: Duration::from_secs(3599),
            expires_in_as_string: false,
            echo_secret: false,
            max_body: MAX_BODY,
            refuse_id: None,
            refuse_all: false,
            unavailable: 0,
            throttled: (0, 0),
            drop_after_receipt: 0,
            forbidden: false,
            token_unavailable: 0,
            tokens: Vec::new(),
            issued: 0,
            rows: Vec::new(),
            keep_rows: true,
            taken: 0,
        }
    }
}

impl AzureState {
    /// Revokes every token issued so far: the next ingestion request with one gets 401.
    pub fn revoke_tokens(&mut self) {
        self.tokens.clear();
    }

    /// Issues a token, as the token endpoint does (a benchmark's raw client takes one here).
    pub fn issue_token(&mut self) -> String {
        self.issued += 1;
        let value = format!("eyJ0eXAiOiJKV1QifQ.tok{}.sig", self.issued);
        self.tokens
            .push((value.clone(), Instant::now() + self.token_lifetime));
        value
    }

    /// The `Id` of every row taken, in order.
    pub fn ids(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|row| match &row["Id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }
}

/// What the ingestion endpoint checks in a row.
#[derive(Deserialize)]
struct RowCheck<'a> {
    #[serde(rename = "TimeGenerated", borrow, default)]
    time: Option<&'a RawValue>,
    #[serde(rename = "Id", borrow, default)]
    id: Option<&'a RawValue>,
}

/// Answers one request: the token endpoint or the ingestion endpoint.
pub fn handle(state: &mut AzureState, request: &Request) -> Action {
    if request.method != "POST" {
        return Action::Reply(error(405, "MethodNotAllowed", "only POST"));
    }
    let path = request.path.split('?').next().unwrap_or_default();
    if path.ends_with("/oauth2/v2.0/token") {
        Action::Reply(token(state, request))
    } else if path.starts_with("/dataCollectionRules/") {
        ingest(state, request)
    } else {
        Action::Reply(error(404, "NotFound", "no such resource"))
    }
}

/// An Azure Monitor error answer.
fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// An Entra OAuth error answer (400), as Entra writes them.
fn oauth_error(error: &str, description: &str, code: u32) -> Reply {
    Reply::json(
        400,
        &json!({
            "error": error,
            "error_description": format!("{description}\r\nTrace ID: 0f1e2d3c\r\nCorrelation ID: 4b5a6978\r\nTimestamp: 2026-01-01 00:00:00Z"),
            "error_codes": [code],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "0f1e2d3c",
            "correlation_id": "4b5a6978",
            "error_uri": "https://login.microsoftonline.com/error?code=7000215"
        }),
    )
}

/// The fields of an `application/x-www-form-urlencoded` body.
fn form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// Percent-decoding, `+` as a space.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The token endpoint.
fn token(state: &mut AzureState, request: &Request) -> Reply {
    if state.token_unavailable > 0 {
        state.token_unavailable -= 1;
        return Reply::json(
            503,
            &json!({"error": "temporarily_unavailable", "error_description": "AADSTS90033: A transient error has occurred. Please try again."}),
        )
        .header("retry-after", "2");
    }
    let tenant = request
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    if tenant != TENANT {
        return oauth_error(
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID."),
            90002,
        );
    }
    let fields = form(&request.body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    if field("grant_type") != "client_credentials" {
        return oauth_error(
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
            70003,
        );
    }
    if field("client_id") != CLIENT_ID {
        return oauth_error(
            "unauthorized_client",
            &format!(
                "AADSTS700016: Application with identifier '{}' was not found in the directory.",
                field("client_id")
            ),
            700016,
        );
    }
    if field("client_secret") != CLIENT_SECRET {
        let shown = if state.echo_secret {
            format!(" (got '{}')", field("client_secret"))
        } else {
            String::new()
        };
        return oauth_error(
            "invalid_client",
            &format!("AADSTS7000215: Invalid client secret provided{shown}. Ensure the secret being sent in the request is the client secret value, not the client secret ID."),
            7000215,
        );
    }
    if field("scope") != SCOPE {
        return oauth_error(
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid.",
            1002012,
        );
    }
    let value = state.issue_token();
    let seconds = state.token_lifetime.as_secs();
    let expires_in = if state.expires_in_as_string {
        json!(seconds.to_string())
    } else {
        json!(seconds)
    };
    Reply::json(
        200,
        &json!({"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in, "access_token": value}),
    )
}

/// The ingestion endpoint.
fn ingest(state: &mut AzureState, request: &Request) -> Action {
    let reply = |r: Reply| Action::Reply(r);
    let bearer = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "));
    let now = Instant::now();
    let valid =
        bearer.is_some_and(|t| state.tokens.iter().any(|(v, until)| v == t && now < *until));
    if !valid {
        return reply(
            error(401, "InvalidToken", "The provided authentication token is not valid or has expired.")
                .header("www-authenticate", "Bearer authorization_uri=\"https://login.microsoftonline.com/\", error=\"invalid_token\""),
        );
    }
    let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let [_, dcr, "streams", stream] = parts[..] else {
        return reply(error(404, "NotFound", "no such resource"));
    };
    if dcr != DCR {
        return reply(error(
            404,
            "NotFound",
            &format!("Data collection rule with immutable Id '{dcr}' not found."),
        ));
    }
    if stream != STREAM {
        return reply(error(
            404,
            "InvalidStream",
            &format!("Stream '{stream}' is not declared in the data collection rule."),
        ));
    }
    if !query.split('&').any(|p| p == "api-version=2023-01-01") {
        return reply(error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    }
    if state.forbidden {
        return reply(error(403, "OperationFailed", &format!("The authentication token provided does not have access to ingest data for the data collection rule with immutable Id '{DCR}'.")));
    }
    if !request
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json"))
    {
        return reply(error(
            415,
            "UnsupportedMediaType",
            "Content-Type must be application/json.",
        ));
    }
    if request.body.len() > state.max_body {
        return reply(error(
            413,
            "ContentLengthLimitExceeded",
            &format!(
                "Maximum allowed content length: {} bytes. Provided content length: {} bytes.",
                state.max_body,
                request.body.len()
            ),
        ));
    }
    if state.throttled.0 > 0 {
        state.throttled.0 -= 1;
        return reply(
            error(429, "TooManyRequests", "Rate limit exceeded.")
                .header("retry-after", &state.throttled.1.to_string()),
        );
    }
    if state.unavailable > 0 {
        state.unavailable -= 1;
        return reply(
            error(503, "ServiceUnavailable", "The service is unavailable.")
                .header("retry-after", "1"),
        );
    }
    // Each row checked without building it (a benchmark posts many); kept as JSON on demand.
    let Ok(rows) = serde_json::from_slice::<Vec<&RawValue>>(&request.body) else {
        return reply(error(
            400,
            "InvalidContent",
            "The request body must be a JSON array.",
        ));
    };
    if state.refuse_all {
        return reply(error(
            400,
            "InvalidContent",
            "The data does not match the stream's columns.",
        ));
    }
    let refused = state
        .refuse_id
        .as_ref()
        .map(|id| Value::from(id.as_str()).to_string());
    for row in &rows {
        let checked = row
            .get()
            .starts_with('{')
            .then(|| serde_json::from_str::<RowCheck>(row.get()).ok())
            .flatten();
        let Some(checked) = checked.filter(|c| c.time.is_some_and(|t| t.get().starts_with('"')))
        else {
            return reply(error(
                400,
                "InvalidContent",
                "Every row must be an object with a TimeGenerated.",
            ));
        };
        let id = checked.id.map_or("null", RawValue::get);
        if refused.as_deref() == Some(id) {
            return reply(error(
                400,
                "InvalidContent",
                &format!("Row {id} could not be converted to the stream's columns."),
            ));
        }
    }
    state.taken += rows.len();
    if state.keep_rows {
        let kept = rows
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(r.get()).ok());
        state.rows.extend(kept);
    }
    if state.drop_after_receipt > 0 {
        state.drop_after_receipt -= 1;
        return Action::Drop;
    }
    reply(Reply::status(204))
}

/// The receiver: an HTTPS [`HttpReceiver`] answering with [`handle`].
pub struct SentinelReceiver {
    /// The HTTP receiver (its requests, its CA).
    pub http: HttpReceiver,
    state: Arc<Mutex<AzureState>>,
}

impl SentinelReceiver {
    /// Starts an HTTPS receiver with the default state.
    pub fn start() -> SentinelReceiver {
        let state = Arc::new(Mutex::new(AzureState::default()));
        let shared = state.clone();
        let http = HttpReceiver::start_tls(move |request| {
            handle(
                &mut shared.lock().unwrap_or_else(|e| e.into_inner()),
                request,
            )
        });
        SentinelReceiver { http, state }
    }

    /// The state, to set a fault or read what was taken.
    pub fn state(&self) -> MutexGuard<'_, AzureState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Its URL (`https://127.0.0.1:PORT`): a pipe's `Endpoint` and `AuthorityHost`.
    pub fn url(&self) -> String {
        self.http.url("")
    }

    /// The keys of a pipe that delivers to this receiver, besides `From`: every required key
    /// and `CA`, then `extra` lines.
    pub fn pipe_keys(&self, extra: &str) -> String {
        format!(
            "To = sentinel\nEndpoint = {url}\nAuthorityHost = {url}\nDcr = {DCR}\nStream = {STREAM}\n\
             TenantId = {TENANT}\nClientId = {CLIENT_ID}\nCA = {ca}\n{extra}",
            url = self.url(),
            ca = self.http.ca_path().display()
        )
    }

    /// The `Id` of every row taken, in order.
    pub fn ids(&self) -> Vec<String> {
        self.state().ids()
    }

    /// The ingestion requests so far with their status (`None`: dropped) and row count.
    pub fn ingestions(&self) -> Vec<(usize, Option<u16>)> {
        self.http
            .requests()
            .iter()
            .filter(|(r, _)| r.path.starts_with("/dataCollectionRules/"))
            .map(|(r, status)| {
                let rows = match r.json() {
                    Some(Value::Array(rows)) => rows.len(),
                    _ => 0,
                };
                (rows, *status)
            })
            .collect()
    }

    /// The token requests so far with their status.
    pub fn token_requests(&self) -> Vec<Option<u16>> {
        self.http
            .requests()
            .iter()
            .filter(|(r, _)| r.path.ends_with("/oauth2/v2.0/token"))
            .map(|(_, status)| *status)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        assert_eq!(
            form(b"a=1%2B2&b=x+y&c=%&d"),
            [
                ("a".to_string(), "1+2".to_string()),
                ("b".to_string(), "x y".to_string()),
                ("c".to_string(), "%".to_string()),
                ("d".to_string(), String::new())
            ]
        );
    }
}
