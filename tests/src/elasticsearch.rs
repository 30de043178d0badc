//! An Elasticsearch `_bulk` receiver for the elasticsearch sink's end-to-end tests and bench, on
//! the generic [`HttpReceiver`]: it keeps an index of documents by `_id` and answers as
//! Elasticsearch documents it.
//!
//! - `POST /INDEX/_bulk` (or `/_bulk` with `_index` in each action), `Content-Type:
//!   application/x-ndjson` or `application/json` (else 406), body: action line, document line.
//! - `create`: stored, item `201 created`; an `_id` already there: item `409
//!   version_conflict_engine_exception`, nothing stored. `index`: stored or replaced (201/200),
//!   refused (400 `illegal_argument_exception`) into a data stream. A data stream (an index
//!   named `logs-*-*`, as Elasticsearch's built-in template makes them) needs `@timestamp`.
//! - A document that is not a JSON object: item `400 mapper_parsing_exception`. A malformed
//!   action line: the whole request `400 illegal_argument_exception`.
//! - The answer: `{"took":N,"errors":BOOL,"items":[{"create":{"_index":..,"_id":..,"status":..,
//!   "error":{"type":..,"reason":..}}}]}`.
//!
//! Fault switches ([`Faults`]): credentials to require (else 401 `security_exception`, echoing
//! what it got when told to, as a careless receiver might), per-item 429 for chosen ids, a 400
//! `mapper_parsing_exception` for a chosen id, 413 over a body bound, a burst of 503s (with
//! `Retry-After` when told), a missing index (items 404 `index_not_found_exception`), and
//! dropping the connection after the request was stored.
//!
//! Request handling is a plain function, [`handle`], over the state and a request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Map, Value};

use crate::http_receiver::{Action, HttpReceiver, Reply, Request};

/// The faults to show; the default is a healthy receiver that requires no credentials.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// The `Authorization` header every request must carry (else 401).
    pub authorization: Option<String>,
    /// A 401 echoes the `Authorization` it got in its reason.
    pub echo_credentials: bool,
    /// Per `_id`: how many more times its item is answered 429 (not stored).
    pub busy: HashMap<String, usize>,
    /// `_id`s whose document is refused with 400 `mapper_parsing_exception`, every time.
    pub unparsable: HashSet<String>,
    /// A body longer than this is answered 413.
    pub max_body: Option<usize>,
    /// How many of the next requests are answered 503.
    pub unavailable: usize,
    /// The `Retry-After` of a 503, if any.
    pub retry_after: Option<String>,
    /// Every item is answered 404 `index_not_found_exception` (the index or data stream is
    /// missing and the receiver does not create it).
    pub missing_index: bool,
    /// How many of the next requests are stored, then their connection dropped unanswered.
    pub drop_after_store: usize,
}

/// What the receiver has: its documents and counters.
#[derive(Debug, Default)]
pub struct State {
    /// The faults to show.
    pub faults: Faults,
    /// Every stored document by index and `_id`.
    pub docs: HashMap<(String, String), Value>,
    /// The `(index, _id)` of each document stored, in order (twice if replaced by `index`;
    /// none with `discard_docs`).
    pub stored: Vec<(String, String)>,
    /// How many `create` actions were answered 409.
    pub conflicts: usize,
    /// How many items were answered 429.
    pub rejected_busy: usize,
    /// Keep only the `_id`s, not the documents (`docs` values are `null`): for benchmarks.
    pub discard_docs: bool,
    /// The next made-up `_id` for actions without one.
    next_auto_id: u64,
}

/// Answers one request as Elasticsearch would, changing `state`.
pub fn handle(state: &mut State, request: &Request) -> Action {
    if let Some(expected) = &state.faults.authorization {
        let got = request.header("authorization").unwrap_or_default();
        if got != expected {
            let shown = if state.faults.echo_credentials {
                format!(" [{got}]")
            } else {
                String::new()
            };
            let reason = format!(
                "unable to authenticate with provided credentials{shown} and anonymous access is \
                 not allowed for this request"
            );
            return reply(
                Reply::json(401, &error_body("security_exception", &reason, 401))
                    .header("WWW-Authenticate", "ApiKey"),
            );
        }
    }
    if state.faults.unavailable > 0 {
        state.faults.unavailable -= 1;
        let body = error_body(
            "unavailable_shards_exception",
            "primary shard is not active",
            503,
        );
        let mut answer = Reply::json(503, &body);
        if let Some(wait) = &state.faults.retry_after {
            answer = answer.header("Retry-After", wait);
        }
        return reply(answer);
    }
    let (path, _query) = request
        .path
        .split_once('?')
        .unwrap_or((request.path.as_str(), ""));
    let Some(target) = path.strip_suffix("/_bulk") else {
        let reason = format!(
            "no handler found for uri [{path}] and method [{}]",
            request.method
        );
        return reply(Reply::json(404, &json!({"error": reason, "status": 404})));
    };
    let default_index = target.trim_start_matches('/').to_string();
    if request.method != "POST" && request.method != "PUT" {
        return reply(Reply::status(405));
    }
    let content_type = request.header("content-type").unwrap_or_default();
    if !content_type.starts_with("application/x-ndjson")
        && !content_type.starts_with("application/json")
    {
        let reason = format!("Content-Type header [{content_type}] is not supported");
        return reply(Reply::json(406, &json!({"error": reason, "status": 406})));
    }
    if state
        .faults
        .max_body
        .is_some_and(|max| request.body.len() > max)
    {
        return reply(Reply::text(413, "Request Entity Too Large"));
    }
    let answer = match bulk(state, &default_index, &request.body) {
        Ok(answer) => Reply::json(200, &answer),
        Err(reason) => Reply::json(400, &error_body("illegal_argument_exception", &reason, 400)),
    };
    if answer.status == 200 && state.faults.drop_after_store > 0 {
        state.faults.drop_after_store -= 1;
        return Action::Drop;
    }
    reply(answer)
}

fn reply(reply: Reply) -> Action {
    Action::Reply(reply)
}

/// Elasticsearch's error answer: `{"error":{"root_cause":[..],"type":..,"reason":..},"status":N}`.
fn error_body(kind: &str, reason: &str, status: u16) -> Value {
    json!({
        "error": {
            "root_cause": [{"type": kind, "reason": reason}],
            "type": kind,
            "reason": reason,
        },
        "status": status,
    })
}

/// Runs the actions of a bulk body; the answer, or why the whole request is refused.
fn bulk(state: &mut State, default_index: &str, body: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let mut items = Vec::new();
    let mut errors = false;
    while let Some(action_line) = lines.next() {
        let action: Map<String, Value> = serde_json::from_str(action_line)
            .map_err(|e| format!("Malformed action/metadata line [{}]: {e}", items.len() + 1))?;
        let (op, meta) = action
            .iter()
            .next()
            .filter(|(op, meta)| ["create", "index"].contains(&op.as_str()) && meta.is_object())
            .ok_or_else(|| format!("Malformed action/metadata line [{}]", items.len() + 1))?;
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .unwrap_or(default_index)
            .to_string();
        if index.is_empty() {
            return Err("an index is required".to_string());
        }
        let doc_line = lines
            .next()
            .ok_or("The bulk request must be terminated by a newline [\\n]")?;
        let id = match meta.get("_id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => {
                state.next_auto_id += 1;
                format!("auto-{}", state.next_auto_id)
            }
        };
        let (status, error) = item(state, op, &index, &id, doc_line);
        let mut result = json!({"_index": index, "_id": id, "status": status});
        match error {
            Some((kind, reason)) => {
                errors |= status != 200 && status != 201;
                result["error"] = json!({"type": kind, "reason": reason, "index": index});
            }
            None => {
                result["result"] = json!(if status == 201 { "created" } else { "updated" });
                result["_version"] = json!(1);
            }
        }
        items.push(json!({ op.as_str(): result }));
    }
    Ok(json!({"took": 1, "errors": errors, "items": items}))
}

/// Runs one action; its status and, when refused, the error's type and reason.
fn item(
    state: &mut State,
    op: &str,
    index: &str,
    id: &str,
    doc_line: &str,
) -> (u16, Option<(String, String)>) {
    let refuse =
        |status: u16, kind: &str, reason: String| (status, Some((kind.to_string(), reason)));
    if state.faults.missing_index {
        return refuse(
            404,
            "index_not_found_exception",
            format!("no such index [{index}]"),
        );
    }
    if let Some(left) = state.faults.busy.get_mut(id).filter(|n| **n > 0) {
        *left -= 1;
        state.rejected_busy += 1;
        return refuse(
            429,
            "es_rejected_execution_exception",
            "rejected execution of coordinating operation".to_string(),
        );
    }
    let data_stream = index.starts_with("logs-") && index.matches('-').count() >= 2;
    if data_stream && op != "create" {
        return refuse(
            400,
            "illegal_argument_exception",
            format!(
                "only write ops with an op_type of create are allowed in data streams [{index}]"
            ),
        );
    }
    let Some(doc) =
        parse_doc(doc_line, state.discard_docs).filter(|_| !state.faults.unparsable.contains(id))
    else {
        return refuse(
            400,
            "mapper_parsing_exception",
            format!(
                "failed to parse field [attributes] of type [object] in document with id '{id}'"
            ),
        );
    };
    if data_stream && !doc.has_timestamp {
        return refuse(
            400,
            "illegal_argument_exception",
            "data stream timestamp field [@timestamp] is missing".to_string(),
        );
    }
    let key = (index.to_string(), id.to_string());
    let existed = state.docs.contains_key(&key);
    if existed && op == "create" {
        state.conflicts += 1;
        return refuse(
            409,
            "version_conflict_engine_exception",
            format!("[{id}]: version conflict, document already exists (current version [1])"),
        );
    }
    state.docs.insert(key.clone(), doc.kept);
    if !state.discard_docs {
        state.stored.push(key);
    }
    (if existed { 200 } else { 201 }, None)
}

/// A document the receiver took: whether it has `@timestamp`, and the document itself unless
/// documents are discarded.
struct Doc {
    has_timestamp: bool,
    kept: Value,
}

/// The document line as a JSON object, or `None`. With `discard`, it is checked to be one
/// without building it (only `@timestamp` is looked at), which keeps the receiver's own cost
/// small in benchmarks, where it shares the machine with the broker.
fn parse_doc(line: &str, discard: bool) -> Option<Doc> {
    /// The one member the receiver reads; the others are parsed and ignored.
    #[derive(serde::Deserialize)]
    struct Members {
        #[serde(rename = "@timestamp")]
        timestamp: Option<serde::de::IgnoredAny>,
    }
    if !line.trim_start().starts_with('{') {
        return None;
    }
    if discard {
        let members: Members = serde_json::from_str(line).ok()?;
        return Some(Doc {
            has_timestamp: members.timestamp.is_some(),
            kept: Value::Null,
        });
    }
    let doc: Value = serde_json::from_str(line).ok()?;
    Some(Doc {
        has_timestamp: doc.get("@timestamp").is_some(),
        kept: doc,
    })
}

/// The receiver: an [`HttpReceiver`] whose handler is [`handle`] over a shared [`State`].
pub struct ElasticReceiver {
    receiver: HttpReceiver,
    state: Arc<Mutex<State>>,
}

impl ElasticReceiver {
    /// An HTTPS receiver (certificate signed by [`ElasticReceiver::ca_path`]) with `faults`.
    pub fn start_tls(faults: Faults) -> ElasticReceiver {
        Self::start_with(faults, true)
    }

    /// A plain HTTP receiver with `faults`.
    pub fn start(faults: Faults) -> ElasticReceiver {
        Self::start_with(faults, false)
    }

    fn start_with(faults: Faults, tls: bool) -> ElasticReceiver {
        let state = Arc::new(Mutex::new(State {
            faults,
            ..State::default()
        }));
        let shared = state.clone();
        let handler = move |request: &Request| handle(&mut lock(&shared), request);
        let receiver = if tls {
            HttpReceiver::start_tls(handler)
        } else {
            HttpReceiver::start(handler)
        };
        ElasticReceiver { receiver, state }
    }

    /// `https://127.0.0.1:PORT` (a pipe's `Url`).
    pub fn url(&self) -> String {
        self.receiver.url("")
    }

    /// The PEM file of the CA of its certificate (a pipe's `CA`).
    pub fn ca_path(&self) -> &std::path::Path {
        self.receiver.ca_path()
    }

    /// The generic receiver: every request with its status.
    pub fn http(&self) -> &HttpReceiver {
        &self.receiver
    }

    /// The state, to read or to change the faults.
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// How many documents it holds, in every index.
    pub fn doc_count(&self) -> usize {
        self.state().docs.len()
    }

    /// The `_id`s stored in `index`, each once (a document is stored at most once per `_id`).
    pub fn ids(&self, index: &str) -> HashSet<String> {
        self.state()
            .docs
            .keys()
            .filter(|(i, _)| i == index)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Waits at most `limit` until `index` holds `count` documents; gives how many it holds.
    pub fn wait_for(&self, index: &str, count: usize, limit: std::time::Duration) -> usize {
        let start = std::time::Instant::now();
        loop {
            let n = self.ids(index).len();
            if n >= count || start.elapsed() > limit {
                return n;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, SystemTime};

    use super::*;

    fn request(path: &str, body: &str) -> Request {
        Request {
            method: "POST".to_string(),
            path: path.to_string(),
            headers: vec![(
                "content-type".to_string(),
                "application/x-ndjson".to_string(),
            )],
            body: body.as_bytes().to_vec(),
            at: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    fn answer(state: &mut State, path: &str, body: &str) -> (u16, Value) {
        match handle(state, &request(path, body)) {
            Action::Reply(r) => (
                r.status,
                serde_json::from_slice(&r.body).unwrap_or(Value::Null),
            ),
            other => panic!("{other:?}"),
        }
    }

    const TWO: &str = "{\"create\":{\"_id\":\"a\"}}\n{\"@timestamp\":\"T\",\"n\":1}\n\
                       {\"create\":{\"_id\":\"b\"}}\n{\"@timestamp\":\"T\",\"n\":2}\n";

    #[test]
    fn create_stores_once_then_answers_409() {
        let mut state = State::default();
        let (status, body) = answer(&mut state, "/logs-p-default/_bulk", TWO);
        assert_eq!((status, &body["errors"]), (200, &json!(false)));
        assert_eq!(body["items"][1]["create"]["status"], 201);
        let (_, body) = answer(&mut state, "/logs-p-default/_bulk", TWO);
        assert_eq!(body["errors"], true);
        assert_eq!(body["items"][0]["create"]["status"], 409);
        assert_eq!(
            body["items"][0]["create"]["error"]["type"],
            "version_conflict_engine_exception"
        );
        assert_eq!(
            (state.docs.len(), state.stored.len(), state.conflicts),
            (2, 2, 2)
        );
    }

    #[test]
    fn faults() {
        let mut state = State::default();
        state.faults.busy.insert("a".to_string(), 1);
        state.faults.unparsable.insert("b".to_string());
        let (_, body) = answer(&mut state, "/i/_bulk", TWO);
        assert_eq!(body["items"][0]["create"]["status"], 429);
        assert_eq!(body["items"][1]["create"]["status"], 400);
        assert_eq!(
            body["items"][1]["create"]["error"]["type"],
            "mapper_parsing_exception"
        );
        let (_, body) = answer(&mut state, "/i/_bulk", TWO);
        assert_eq!(body["items"][0]["create"]["status"], 201);

        // A data stream needs create and @timestamp.
        let (_, body) = answer(
            &mut state,
            "/logs-p-default/_bulk",
            "{\"index\":{\"_id\":\"x\"}}\n{}\n{\"create\":{\"_id\":\"y\"}}\n{}\n",
        );
        assert_eq!(body["items"][0]["index"]["status"], 400);
        assert_eq!(body["items"][1]["create"]["status"], 400);

        state.faults.max_body = Some(10);
        assert_eq!(answer(&mut state, "/i/_bulk", TWO).0, 413);
        state.faults.max_body = None;
        state.faults.unavailable = 1;
        assert_eq!(answer(&mut state, "/i/_bulk", TWO).0, 503);
        assert_eq!(answer(&mut state, "/i/_bulk", "{\"nope\n").0, 400);
        assert_eq!(answer(&mut state, "/i/_search", TWO).0, 404);
        state.faults.missing_index = true;
        let (_, body) = answer(&mut state, "/i/_bulk", TWO);
        assert_eq!(body["items"][0]["create"]["status"], 404);
        state.faults.authorization = Some("ApiKey k".to_string());
        assert_eq!(answer(&mut state, "/i/_bulk", TWO).0, 401);
        state.faults.drop_after_store = 1;
        state.faults.authorization = None;
        state.faults.missing_index = false;
        assert!(matches!(
            handle(&mut state, &request("/j/_bulk", TWO)),
            Action::Drop
        ));
        assert!(state.docs.contains_key(&("j".to_string(), "a".to_string())));
    }
}
