//! The admin interface under `/_admin/`: drive a simulator from another process (the binary,
//! shell scripts, end-to-end tests) the way the library API drives it in-process.
//!
//! No authentication: the simulator only ever listens on 127.0.0.1. Admin requests take no
//! injected faults and are not recorded in the request log.
//! The routes are listed in the crate documentation.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event_type::EventType;
use crate::faults::{Breakage, Fault};
use crate::response::{self, quote, Body};
use crate::state::{Health, State};

/// Most events one generate call makes.
const MAX_GENERATE: u64 = 100_000;

/// Answer one request whose path starts with `/_admin/`.
pub(crate) fn handle(
    state: &mut State,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Response<Body> {
    let rest = path.strip_prefix("/_admin/").unwrap_or_default();
    let segments: Vec<&str> = rest.split('/').collect();
    let result = match (method, segments.as_slice()) {
        (&Method::POST, ["broker"]) => add_broker(state, body),
        (&Method::POST, ["setup-code"]) => add_setup_code(state, body),
        (&Method::POST, ["enqueue", name]) => enqueue(state, name, body),
        (&Method::POST, ["generate", name]) => generate(state, name, query),
        (&Method::GET, ["queues"]) => Ok(queues(state)),
        (&Method::POST, ["fault"]) => inject(state, body),
        (&Method::POST, ["clear-faults"]) => {
            state.faults.clear();
            Ok(ok())
        }
        (&Method::POST, ["expire-sessions"]) => {
            state.expire_all_sessions(Instant::now());
            Ok(ok())
        }
        (&Method::POST, ["health"]) => set_health(state, body),
        (&Method::POST, ["hold-pulls"]) => hold_pulls(state, body),
        (&Method::GET, ["requests"]) => Ok(requests(state)),
        (&Method::GET, ["keys", broker]) => Ok(keys(state, broker)),
        (&Method::GET, ["stats"]) => Ok(stats(state)),
        _ => Err((StatusCode::NOT_FOUND, "no such admin route".to_string())),
    };
    match result {
        Ok(body) => response::json(200, body),
        Err((status, detail)) => response::error(status.as_u16(), &detail),
    }
}

type AdminResult = Result<String, (StatusCode, String)>;

fn bad_request(detail: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, detail.into())
}

fn ok() -> String {
    r#"{"ok":true}"#.to_string()
}

fn event_type(name: &str) -> Result<EventType, (StatusCode, String)> {
    name.parse::<EventType>()
        .map_err(|e| (StatusCode::NOT_FOUND, e.to_string()))
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, (StatusCode, String)> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

#[derive(Deserialize)]
struct BrokerBody {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

fn add_broker(state: &mut State, body: &[u8]) -> AdminResult {
    let request: BrokerBody = parse(body)?;
    if request.id.is_empty() || request.id.contains('/') {
        return Err(bad_request("broker id must be non-empty and without '/'"));
    }
    let name = request.name.unwrap_or_else(|| request.id.clone());
    state.add_broker(&request.id, &name);
    Ok(ok())
}

#[derive(Deserialize)]
struct SetupCodeBody {
    broker: String,
    code: String,
    #[serde(default)]
    expires: Option<String>,
}

fn add_setup_code(state: &mut State, body: &[u8]) -> AdminResult {
    let request: SetupCodeBody = parse(body)?;
    if !state.has_broker(&request.broker) {
        return Err((
            StatusCode::NOT_FOUND,
            format!("unknown broker {:?}: add it first", request.broker),
        ));
    }
    let expires = match request.expires {
        Some(text) => DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| bad_request(format!("expires is not RFC 3339 ({e}): {text}")))?,
        None => Utc::now() + chrono::Duration::days(3),
    };
    state.add_setup_code(&request.broker, &request.code, expires);
    Ok(ok())
}

fn enqueue(state: &mut State, name: &str, body: &[u8]) -> AdminResult {
    let event_type = event_type(name)?;
    let text = std::str::from_utf8(body).map_err(|_| bad_request("body is not UTF-8"))?;
    let raw: &RawValue = serde_json::from_str(text)
        .map_err(|e| bad_request(format!("body is not valid JSON: {e}")))?;
    let events: Vec<&RawValue> = if raw.get().starts_with('[') {
        serde_json::from_str(raw.get())
            .map_err(|e| bad_request(format!("body is not a JSON array: {e}")))?
    } else {
        vec![raw]
    };
    for event in &events {
        state.enqueue(event_type, event.get().to_string());
    }
    Ok(format!(
        r#"{{"enqueued":{},"queue_len":{}}}"#,
        events.len(),
        state.queue_len(event_type)
    ))
}

fn generate(state: &mut State, name: &str, query: Option<&str>) -> AdminResult {
    let event_type = event_type(name)?;
    let n = match query_param(query, "n") {
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_GENERATE)
            .ok_or_else(|| bad_request(format!("n must be an integer 0..={MAX_GENERATE}")))?,
        None => 1,
    };
    let events: Vec<String> = (0..n)
        .map(|_| {
            let raw = state.generator.generate(event_type);
            state.enqueue(event_type, raw.clone());
            raw
        })
        .collect();
    Ok(format!(
        r#"{{"generated":{},"events":[{}]}}"#,
        events.len(),
        events.join(",")
    ))
}

fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn queues(state: &State) -> String {
    let members: Vec<String> = EventType::ALL
        .iter()
        .map(|t| format!(r#""{}":{}"#, t.as_str(), state.queue_len(*t)))
        .collect();
    format!("{{{}}}", members.join(","))
}

#[derive(Deserialize)]
struct FaultBody {
    kind: String,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    ms: Option<u64>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    bytes: Option<usize>,
    #[serde(default)]
    extra: Option<u32>,
}

fn inject(state: &mut State, body: &[u8]) -> AdminResult {
    let request: FaultBody = parse(body)?;
    let fault = match request.kind.as_str() {
        "status" => {
            let status = request
                .status
                .filter(|s| StatusCode::from_u16(*s).is_ok())
                .ok_or_else(|| bad_request("a status fault needs \"status\": 100..=999"))?;
            Fault::Status(status)
        }
        "delay" => {
            let ms = request
                .ms
                .ok_or_else(|| bad_request("a delay fault needs \"ms\": milliseconds"))?;
            Fault::Delay(Duration::from_millis(ms))
        }
        "stall" => {
            let ms = request
                .ms
                .ok_or_else(|| bad_request("a stall fault needs \"ms\": milliseconds"))?;
            Fault::Stall(Duration::from_millis(ms))
        }
        "slow_answer" => {
            let ms = request
                .ms
                .ok_or_else(|| bad_request("a slow_answer fault needs \"ms\": milliseconds"))?;
            Fault::SlowAnswer(Duration::from_millis(ms))
        }
        "drop" => Fault::Drop,
        "malformed" => Fault::MalformedJson,
        "unauthorized" => Fault::Unauthorized,
        "bad_utf8_answer" => Fault::BrokenAnswer(Breakage::BadUtf8),
        "deep_nesting_answer" => Fault::BrokenAnswer(Breakage::DeepNesting),
        "truncated_answer" => Fault::BrokenAnswer(Breakage::Truncated),
        "cut_off_answer" => Fault::BrokenAnswer(Breakage::CutOff),
        "huge_answer" => {
            let bytes = request
                .bytes
                .ok_or_else(|| bad_request("a huge_answer fault needs \"bytes\": a size"))?;
            Fault::BrokenAnswer(Breakage::Padded(bytes))
        }
        "oversized_answer" => {
            let extra = request.extra.ok_or_else(|| {
                bad_request("an oversized_answer fault needs \"extra\": events more than max")
            })?;
            Fault::OversizedAnswer(extra)
        }
        other => {
            return Err(bad_request(format!(
                "unknown fault kind {other:?}: use status, delay, slow_answer, stall, drop, malformed, unauthorized, bad_utf8_answer, deep_nesting_answer, truncated_answer, cut_off_answer, huge_answer or oversized_answer"
            )))
        }
    };
    state
        .faults
        .push(fault, request.count.unwrap_or(1), request.path.as_deref());
    Ok(ok())
}

#[derive(Deserialize)]
struct HoldBody {
    hold: bool,
}

fn hold_pulls(state: &mut State, body: &[u8]) -> AdminResult {
    let request: HoldBody = parse(body)?;
    state.pull_gate.send_replace(request.hold);
    Ok(ok())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum HealthBody {
    Entries(Vec<HealthEntry>),
    Status { status: u16 },
}

#[derive(Deserialize)]
struct HealthEntry {
    healthy: bool,
    #[serde(default)]
    error: String,
}

fn set_health(state: &mut State, body: &[u8]) -> AdminResult {
    let request: HealthBody = parse(body)?;
    state.health = match request {
        HealthBody::Entries(entries) => {
            Health::Entries(entries.into_iter().map(|e| (e.healthy, e.error)).collect())
        }
        HealthBody::Status { status } => {
            if StatusCode::from_u16(status).is_err() {
                return Err(bad_request("status must be 100..=999"));
            }
            Health::Status(status)
        }
    };
    Ok(ok())
}

fn requests(state: &State) -> String {
    let items: Vec<String> = state
        .requests
        .iter()
        .map(|r| {
            let max = r.max.map_or_else(|| "null".to_string(), |m| m.to_string());
            format!(
                r#"{{"method":{},"path":{},"max":{max},"status":{}}}"#,
                quote(&r.method),
                quote(&r.path),
                r.status
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn keys(state: &State, broker: &str) -> String {
    let items: Vec<String> = state
        .registered_keys(broker)
        .iter()
        .map(|k| quote(&STANDARD.encode(k)))
        .collect();
    format!("[{}]", items.join(","))
}

fn stats(state: &State) -> String {
    let versions: Vec<String> = state.hello_versions.iter().map(|v| quote(v)).collect();
    format!(
        r#"{{"logins":{},"hello_versions":[{}],"pending_faults":{},"held_pulls":{}}}"#,
        state.logins,
        versions.join(","),
        state.faults.remaining(),
        state.held_pulls
    )
}
