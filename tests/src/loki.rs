//! A Grafana Loki push API receiver for the end-to-end tests of the `loki` sink: `POST
//! /loki/api/v1/push` with a JSON body, answered as Loki 3 answers.
//!
//! - Entries are stored per stream (the stream's labels, sorted, as Loki names them:
//!   `{job="procustodibus-broker", type="alerts"}`), in the order they were taken. An entry with
//!   the timestamp and line of one the stream already has is not stored again (Loki's ingester
//!   does so for the entries in memory; see [`LokiState::duplicates`]).
//! - Validation like Loki's distributor: an entry older than [`LokiState::oldest`] (Loki's
//!   `reject_old_samples_max_age`) or with a line longer than [`LokiState::max_line`] is refused
//!   with Loki's message (`entry for stream '...' has timestamp too old: ...`, `Max entry size
//!   ...`); the other entries of the push are taken.
//! - Order like Loki's ingester with unordered writes: an entry older than the stream's newest
//!   less [`LokiState::behind`] (`max_chunk_age / 2`) is refused, `entry with timestamp ...
//!   ignored, reason: 'entry too far behind, ...'`, at most [`LokiState::max_named`] named per
//!   stream and `total ignored: N out of M for stream: {...}` after them.
//! - Refused entries make the answer a 400 with a text body; otherwise 204.
//! - `X-Scope-OrgID` is required when [`LokiState::tenant`] is set (401 `no org id`), the
//!   `Authorization` header must equal [`LokiState::authorization`] when set (401).
//! - Faults: [`LokiState::busy`] (503 for the next N pushes, with `Retry-After: 1`),
//!   [`LokiState::throttled`] (429 with `Retry-After`), [`LokiState::refuse_marked`] (a 400
//!   naming each entry whose line holds one of the texts, as too far behind), [`LokiState::max_body`]
//!   (413 above it), [`LokiState::drop_after`] (takes the next N pushes, then drops the
//!   connection without an answer), [`LokiState::refuse_all`] (every push answered with a
//!   status and a body naming no entry: 401, 403, 404, or a 400 like Loki's `error at least one
//!   valid stream is required`).
//!
//! The handling is plain functions over the state and the request ([`handle`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::http_receiver::{Action, HttpReceiver, Reply, Request};

/// The path of the push API.
pub const PUSH_PATH: &str = "/loki/api/v1/push";

/// One stored entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Nanoseconds since the epoch.
    pub nanos: i64,
    /// The line.
    pub line: String,
}

/// What the receiver holds and how it behaves.
#[derive(Debug, Default)]
pub struct LokiState {
    /// The stored entries by stream name.
    pub streams: BTreeMap<String, Vec<Entry>>,
    /// Entries pushed again that the stream already had (not stored twice).
    pub duplicates: usize,
    /// The oldest timestamp taken, in nanoseconds (`None`: any).
    pub oldest: Option<i64>,
    /// The longest line taken, in bytes (`None`: any).
    pub max_line: Option<usize>,
    /// How far behind a stream's newest entry an entry may be, in nanoseconds (`None`: any).
    pub behind: Option<i64>,
    /// The most refused entries named per stream (Loki: 10).
    pub max_named: usize,
    /// The `X-Scope-OrgID` required, if any.
    pub tenant: Option<String>,
    /// The `Authorization` header required, if any.
    pub authorization: Option<String>,
    /// Pushes still to answer 503.
    pub busy: usize,
    /// Pushes still to answer 429, and the `Retry-After` seconds.
    pub throttled: (usize, u64),
    /// Entries whose line holds one of these texts are refused as too far behind.
    pub refuse_marked: Vec<String>,
    /// The largest body taken, in bytes.
    pub max_body: Option<usize>,
    /// Pushes still to take and then drop without an answer.
    pub drop_after: usize,
    /// Every push answered with this status and body, naming no entry.
    pub refuse_all: Option<(u16, String)>,
    /// Each stream's newest timestamp.
    newest: BTreeMap<String, i64>,
    /// Every stored (stream, timestamp, line), to find a duplicate at once.
    stored: HashSet<(String, i64, String)>,
}

impl LokiState {
    /// Every stored line of every stream, stream by stream.
    pub fn lines(&self) -> Vec<String> {
        self.streams
            .values()
            .flat_map(|entries| entries.iter().map(|e| e.line.clone()))
            .collect()
    }

    /// How many entries are stored.
    pub fn count(&self) -> usize {
        self.streams.values().map(Vec::len).sum()
    }
}

/// A running Loki receiver: the HTTP(S) receiver and its shared state.
pub struct LokiReceiver {
    /// The HTTP(S) receiver (its URL, CA and request record).
    pub http: HttpReceiver,
    state: Arc<Mutex<LokiState>>,
}

impl LokiReceiver {
    /// An HTTPS Loki on 127.0.0.1 with `state` (use [`LokiState::loki`] for Loki's defaults).
    pub fn start_tls(state: LokiState) -> LokiReceiver {
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let http = HttpReceiver::start_tls(move |request| handle(&mut lock(&shared), request));
        LokiReceiver { http, state }
    }

    /// The state, to read what arrived or to switch a fault on.
    pub fn state(&self) -> MutexGuard<'_, LokiState> {
        lock(&self.state)
    }

    /// The base URL (`https://127.0.0.1:PORT`): the pipe's `Url`.
    pub fn url(&self) -> String {
        self.http.url("")
    }
}

impl LokiState {
    /// Loki's defaults: any age, any order within an hour, any line length, 10 named per stream.
    pub fn loki() -> LokiState {
        LokiState {
            behind: Some(3600 * 1_000_000_000),
            max_named: 10,
            ..LokiState::default()
        }
    }
}

fn lock(state: &Mutex<LokiState>) -> MutexGuard<'_, LokiState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Answers one request as Loki would (see the module docs).
pub fn handle(state: &mut LokiState, request: &Request) -> Action {
    if request.method != "POST" || request.path.split('?').next() != Some(PUSH_PATH) {
        return Action::Reply(Reply::text(404, "404 page not found\n"));
    }
    if let Some((status, body)) = &state.refuse_all {
        return Action::Reply(Reply::text(*status, body));
    }
    if let Some(expected) = &state.authorization {
        if request.header("authorization") != Some(expected.as_str()) {
            return Action::Reply(Reply::text(401, "Unauthorized\n"));
        }
    }
    if let Some(tenant) = &state.tenant {
        if request.header("x-scope-orgid") != Some(tenant.as_str()) {
            return Action::Reply(Reply::text(401, "no org id\n"));
        }
    }
    if state.max_body.is_some_and(|max| request.body.len() > max) {
        let message = format!(
            "request body too large: {} bytes, limit: {} bytes\n",
            request.body.len(),
            state.max_body.unwrap_or_default()
        );
        return Action::Reply(Reply::text(413, &message));
    }
    if state.busy > 0 {
        state.busy -= 1;
        return Action::Reply(
            Reply::text(503, "ingester unavailable\n").header("Retry-After", "1"),
        );
    }
    if state.throttled.0 > 0 {
        state.throttled.0 -= 1;
        let wait = state.throttled.1.to_string();
        return Action::Reply(
            Reply::text(429, "Ingestion rate limit exceeded for user fake\n")
                .header("Retry-After", &wait),
        );
    }
    let streams = match parse_push(&request.body) {
        Ok(streams) => streams,
        Err(message) => return Action::Reply(Reply::text(400, &format!("{message}\n"))),
    };
    let refused = push(state, streams, request.header("x-scope-orgid"));
    if state.drop_after > 0 {
        state.drop_after -= 1;
        return Action::Drop;
    }
    if refused.is_empty() {
        Action::Reply(Reply::status(204))
    } else {
        Action::Reply(Reply::text(400, &refused))
    }
}

/// One stream of a push: its name and its entries.
type PushStream = (String, Vec<Entry>);

/// The streams of a push body, or Loki's message for a body it cannot read.
fn parse_push(body: &[u8]) -> Result<Vec<PushStream>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("loghttp.PushRequest: {e}"))?;
    let streams = value
        .get("streams")
        .and_then(|s| s.as_array())
        .ok_or("error at least one valid stream is required for ingestion")?;
    let mut out = Vec::new();
    for stream in streams {
        let labels = stream
            .get("stream")
            .and_then(|s| s.as_object())
            .ok_or("error at least one label pair is required per stream")?;
        let mut pairs = Vec::new();
        for (name, value) in labels {
            let value = value.as_str().ok_or_else(|| {
                format!("Error parsing labels: the value of {name} is not a string")
            })?;
            if !is_label_name(name) {
                return Err(format!(
                    "Error parsing labels '{name}' with error: invalid label name"
                ));
            }
            pairs.push((name.clone(), value.to_string()));
        }
        if pairs.is_empty() {
            return Err("error at least one label pair is required per stream".into());
        }
        let mut entries = Vec::new();
        for value in stream
            .get("values")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let pair = value.as_array().filter(|p| p.len() >= 2);
            let nanos = pair
                .and_then(|p| p[0].as_str())
                .and_then(|t| t.parse::<i64>().ok());
            let line = pair.and_then(|p| p[1].as_str());
            match (nanos, line) {
                (Some(nanos), Some(line)) => entries.push(Entry {
                    nanos,
                    line: line.to_string(),
                }),
                _ => return Err(format!("loghttp.PushRequest: bad entry {value}")),
            }
        }
        out.push((stream_name(&mut pairs), entries));
    }
    Ok(out)
}

/// Whether `name` is a label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A stream's name as Loki writes it: labels sorted, `{a="x", b="y"}`.
pub fn stream_name(pairs: &mut [(String, String)]) -> String {
    pairs.sort();
    let inner: Vec<String> = pairs
        .iter()
        .map(|(n, v)| format!("{n}={}", serde_json::Value::String(v.clone())))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// Validates and stores the entries of a push; returns the 400 text naming the refused ones
/// (empty when none was).
fn push(state: &mut LokiState, streams: Vec<PushStream>, tenant: Option<&str>) -> String {
    let mut distributor: Vec<String> = Vec::new();
    let mut ingester: Vec<String> = Vec::new();
    for (name, entries) in streams {
        let total = entries.len();
        let mut ignored = Vec::new();
        for entry in entries {
            if let Some(oldest) = state.oldest.filter(|o| entry.nanos < *o) {
                distributor.push(format!(
                    "entry for stream '{name}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                    rfc3339(entry.nanos),
                    rfc3339(oldest)
                ));
                continue;
            }
            if let Some(max) = state.max_line.filter(|m| entry.line.len() > *m) {
                distributor.push(format!(
                    "Max entry size '{max}' bytes exceeded for stream '{name}' while adding an entry with length '{}' bytes",
                    entry.line.len()
                ));
                continue;
            }
            let newest = state.newest.get(&name).copied();
            let cutoff = newest.zip(state.behind).map(|(n, b)| n - b);
            let marked = state
                .refuse_marked
                .iter()
                .any(|m| entry.line.contains(m.as_str()));
            if marked || cutoff.is_some_and(|c| entry.nanos < c) {
                let cutoff = cutoff.unwrap_or(entry.nanos + 1);
                ignored.push(format!(
                    "entry with timestamp {} ignored, reason: 'entry too far behind, entry timestamp is: {}, oldest acceptable timestamp is: {}',",
                    go_time(entry.nanos),
                    rfc3339(entry.nanos),
                    rfc3339(cutoff)
                ));
                continue;
            }
            let key = (name.clone(), entry.nanos, entry.line.clone());
            if !state.stored.insert(key) {
                state.duplicates += 1;
                continue;
            }
            let newest = state.newest.entry(name.clone()).or_insert(entry.nanos);
            *newest = (*newest).max(entry.nanos);
            state.streams.entry(name.clone()).or_default().push(entry);
        }
        if !ignored.is_empty() {
            let n = ignored.len();
            ignored.truncate(state.max_named.max(1));
            ingester.extend(ignored);
            ingester.push(format!(
                "user '{}', total ignored: {n} out of {total} for stream: {name}",
                tenant.unwrap_or("fake")
            ));
        }
    }
    distributor.extend(ingester);
    distributor.join("\n")
}

/// Go's RFC 3339 to the second.
fn rfc3339(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Go's `time.Time.String()` in UTC: `2024-05-01 08:00:53.5 +0000 UTC`.
pub fn go_time(nanos: i64) -> String {
    let time = chrono::DateTime::from_timestamp_nanos(nanos);
    let fraction = nanos.rem_euclid(1_000_000_000);
    let mut text = time.format("%Y-%m-%d %H:%M:%S").to_string();
    if fraction != 0 {
        let digits = format!(".{fraction:09}");
        text.push_str(digits.trim_end_matches('0'));
    }
    text.push_str(" +0000 UTC");
    text
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, SystemTime};

    use super::*;

    fn request(body: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            path: PUSH_PATH.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            at: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    fn status(action: &Action) -> Option<(u16, String)> {
        match action {
            Action::Reply(r) | Action::Delay(_, r) => {
                Some((r.status, String::from_utf8_lossy(&r.body).into_owned()))
            }
            Action::Drop => None,
        }
    }

    const PUSH: &str = r#"{"streams":[{"stream":{"type":"alerts","job":"j"},"values":[["2000000000","a"],["1000000000","b"],["3000000000","c"]]}]}"#;

    #[test]
    fn entries_are_stored_per_stream_and_duplicates_once() {
        let mut state = LokiState::loki();
        assert_eq!(
            status(&handle(&mut state, &request(PUSH, &[]))),
            Some((204, String::new()))
        );
        assert_eq!(state.lines(), ["a", "b", "c"]);
        assert!(state.streams.contains_key(r#"{job="j", type="alerts"}"#));
        handle(&mut state, &request(PUSH, &[]));
        assert_eq!((state.count(), state.duplicates), (3, 3));
    }

    #[test]
    fn old_and_far_behind_entries_are_named_and_the_rest_taken() {
        let mut state = LokiState::loki();
        state.oldest = Some(1_500_000_000);
        state.behind = Some(500_000_000);
        let (code, text) = status(&handle(&mut state, &request(PUSH, &[]))).unwrap();
        assert_eq!(code, 400);
        assert_eq!(state.lines(), ["a", "c"]);
        assert!(text.contains("entry for stream '{job=\"j\", type=\"alerts\"}' has timestamp too old: 1970-01-01T00:00:01Z"), "{text}");
        let late = r#"{"streams":[{"stream":{"job":"j","type":"alerts"},"values":[["2400000000.5","x"],["2400000001","d"]]}]}"#;
        assert_eq!(
            status(&handle(&mut state, &request(late, &[]))).unwrap().0,
            400
        );
        let late =
            r#"{"streams":[{"stream":{"job":"j","type":"alerts"},"values":[["2400000001","d"]]}]}"#;
        let (code, text) = status(&handle(&mut state, &request(late, &[]))).unwrap();
        assert_eq!(code, 400);
        assert_eq!(
            text,
            "entry with timestamp 1970-01-01 00:00:02.400000001 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 1970-01-01T00:00:02Z, oldest acceptable timestamp is: 1970-01-01T00:00:02Z',\nuser 'fake', total ignored: 1 out of 1 for stream: {job=\"j\", type=\"alerts\"}"
        );
    }

    #[test]
    fn faults_and_refusals() {
        let mut state = LokiState::loki();
        state.busy = 1;
        state.throttled = (1, 2);
        assert_eq!(
            status(&handle(&mut state, &request(PUSH, &[]))).unwrap().0,
            503
        );
        assert_eq!(
            status(&handle(&mut state, &request(PUSH, &[]))).unwrap().0,
            429
        );
        state.drop_after = 1;
        assert!(status(&handle(&mut state, &request(PUSH, &[]))).is_none());
        assert_eq!(state.count(), 3);
        state.max_body = Some(10);
        assert_eq!(
            status(&handle(&mut state, &request(PUSH, &[]))).unwrap().0,
            413
        );
        let mut state = LokiState::loki();
        state.tenant = Some("t".into());
        assert_eq!(
            status(&handle(&mut state, &request(PUSH, &[]))).unwrap().0,
            401
        );
        let ok = [("X-Scope-OrgID", "t")];
        assert_eq!(
            status(&handle(&mut state, &request(PUSH, &ok))).unwrap().0,
            204
        );
        assert_eq!(
            status(&handle(&mut state, &request("{", &ok))).unwrap().0,
            400
        );
        let bad = r#"{"streams":[{"stream":{"9x":"a"},"values":[]}]}"#;
        assert_eq!(
            status(&handle(&mut state, &request(bad, &ok))).unwrap().0,
            400
        );
    }

    #[test]
    fn go_times_trim_the_fraction() {
        assert_eq!(go_time(1_500_000_000), "1970-01-01 00:00:01.5 +0000 UTC");
        assert_eq!(go_time(1_000_000_000), "1970-01-01 00:00:01 +0000 UTC");
    }
}
