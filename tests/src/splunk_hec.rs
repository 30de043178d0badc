//! A Splunk HTTP Event Collector for the tests: the endpoints the `splunk` sink uses, behaving
//! as Splunk documents them, on the generic [`HttpReceiver`], with fault switches.
//!
//! - `POST /services/collector/event`: `Authorization: Splunk TOKEN` (missing: 401 code 2; not
//!   `Splunk ...`: 401 code 3; unknown: 403 code 4; [`Hec::token_disabled`]: 403 code 1).
//!   The body is event objects, concatenated; each must be a JSON object with a non-empty
//!   `event` (else 400 code 6 `Invalid data format`, code 12 `Event field is required`, code 13
//!   `Event field cannot be blank`) and an `index` the token may write to (else 400 code 7
//!   `Incorrect index`), each with the `invalid-event-number` of the first bad event (from 0).
//!   A refused request indexes nothing. With indexer acknowledgement on ([`Hec::ack`]), the
//!   `X-Splunk-Request-Channel` header (or `?channel=`) is required (400 code 10 missing, 11 not
//!   a GUID), and the answer carries the request's `ackId`, counted per channel from 0.
//! - `POST /services/collector/ack`: `{"acks":[ids]}` answered `{"acks":{"id":bool}}`: `true`
//!   once [`Hec::ack_delay`] passed since the request was indexed, unless its ack was lost
//!   ([`Hec::lose_acks`]); an id answered `true` is forgotten (HEC does the same). Ack off: 400
//!   code 14 `ACK is disabled`.
//! - `GET /services/collector/health`: 200 code 17 `HEC is healthy`.
//!
//! Faults, each counting down per event request: [`Hec::busy`] (503 code 9 `Server is busy`),
//! [`Hec::too_many`] (429, with [`Hec::retry_after`] if set), [`Hec::drop_after_indexing`]
//! (the request is indexed, then the connection closes without an answer), and the switches
//! [`Hec::refuse_containing`] (400 code 6 at the first event whose text contains it),
//! [`Hec::max_body`] (413 over that many bytes).
//!
//! The handling is plain functions over ([`Hec`], [`Request`]) ([`handle`]), so it is tested
//! without a network; [`SplunkHec`] serves it over HTTPS.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use broker_sinks::util::guid::is_guid;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::http_receiver::{Action, HttpReceiver, Reply, Request};

/// The event endpoint.
pub const EVENT_PATH: &str = "/services/collector/event";
/// The acknowledgement endpoint.
pub const ACK_PATH: &str = "/services/collector/ack";
/// The health endpoint.
pub const HEALTH_PATH: &str = "/services/collector/health";

/// One event HEC indexed.
#[derive(Clone, Debug)]
pub struct Indexed {
    /// The `event` member, as sent (raw JSON text).
    pub event: String,
    /// The whole event object, parsed.
    pub object: Value,
    /// The channel of its request.
    pub channel: Option<String>,
}

/// An acknowledgement id HEC handed out.
#[derive(Clone, Debug)]
struct PendingAck {
    /// When it becomes `true`.
    ready: Instant,
    /// Lost: it never becomes `true`.
    lost: bool,
}

/// The collector's state: its configuration, its fault switches and what it indexed.
#[derive(Debug)]
pub struct Hec {
    /// The token it accepts.
    pub token: String,
    /// Token disabled: every request answered 403 code 1.
    pub token_disabled: bool,
    /// Indexer acknowledgement on for the token.
    pub ack: bool,
    /// How long after indexing an ack turns `true`.
    pub ack_delay: Duration,
    /// The next this many acks are lost (never `true`).
    pub lose_acks: usize,
    /// The indexes the token may write to (`None`: any).
    pub indexes: Option<Vec<String>>,
    /// The next this many event requests are answered 503 code 9.
    pub busy: usize,
    /// The next this many event requests are answered 429.
    pub too_many: usize,
    /// The `Retry-After` of a 503 or 429, if any.
    pub retry_after: Option<String>,
    /// The next this many event requests are indexed, then dropped without an answer.
    pub drop_after_indexing: usize,
    /// An event whose text contains this is refused (400 code 6).
    pub refuse_containing: Option<String>,
    /// A body larger than this is answered 413.
    pub max_body: Option<usize>,
    /// What it indexed, in order (kept only while [`Hec::keep_indexed`]).
    pub indexed: Vec<Indexed>,
    /// How many events it indexed.
    pub indexed_count: usize,
    /// Whether to keep each indexed event in [`Hec::indexed`] (on; a benchmark turns it off
    /// to count only).
    pub keep_indexed: bool,
    /// The acknowledgement ids handed out, per channel.
    acks: BTreeMap<String, BTreeMap<u64, PendingAck>>,
    /// The next ack id per channel.
    next_ack: BTreeMap<String, u64>,
}

impl Hec {
    /// A collector that accepts `token`, acknowledgement off, no fault.
    pub fn new(token: &str) -> Hec {
        Hec {
            token: token.to_string(),
            token_disabled: false,
            ack: false,
            ack_delay: Duration::ZERO,
            lose_acks: 0,
            indexes: None,
            busy: 0,
            too_many: 0,
            retry_after: None,
            drop_after_indexing: 0,
            refuse_containing: None,
            max_body: None,
            indexed: Vec::new(),
            indexed_count: 0,
            keep_indexed: true,
            acks: BTreeMap::new(),
            next_ack: BTreeMap::new(),
        }
    }
}

/// HEC's answer body `{"text":...,"code":...}` with `status`.
fn hec_reply(status: u16, text: &str, code: u32) -> Reply {
    Reply::json(status, &json!({"text": text, "code": code}))
}

/// A refusal of the event at `n`.
fn refused(status: u16, text: &str, code: u32, n: usize) -> Action {
    Action::Reply(Reply::json(
        status,
        &json!({"text": text, "code": code, "invalid-event-number": n}),
    ))
}

/// Answers one request as HEC would: see the module docs.
pub fn handle(hec: &mut Hec, request: &Request) -> Action {
    let path = request.path.split('?').next().unwrap_or("");
    match (request.method.as_str(), path) {
        ("GET", HEALTH_PATH) => Action::Reply(hec_reply(200, "HEC is healthy", 17)),
        ("POST", EVENT_PATH) => event(hec, request),
        ("POST", ACK_PATH) => ack(hec, request),
        _ => Action::Reply(hec_reply(404, "The requested URL was not found", 404)),
    }
}

/// The token check: `None` when the request may go on.
fn authorize(hec: &Hec, request: &Request) -> Option<Action> {
    let Some(value) = request.header("authorization") else {
        return Some(Action::Reply(hec_reply(401, "Token is required", 2)));
    };
    let Some(token) = value.strip_prefix("Splunk ") else {
        return Some(Action::Reply(hec_reply(401, "Invalid authorization", 3)));
    };
    if token != hec.token {
        return Some(Action::Reply(hec_reply(403, "Invalid token", 4)));
    }
    if hec.token_disabled {
        return Some(Action::Reply(hec_reply(403, "Token disabled", 1)));
    }
    None
}

/// The request's channel: the header, else `?channel=`.
fn channel_of(request: &Request) -> Option<String> {
    if let Some(channel) = request.header("x-splunk-request-channel") {
        return Some(channel.to_string());
    }
    let query = request.path.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("channel="))
        .map(str::to_string)
}

/// The channel check when acknowledgement is on: `Err` answers the request.
fn channel_checked(hec: &Hec, request: &Request) -> Result<Option<String>, Action> {
    let channel = channel_of(request);
    if !hec.ack {
        return Ok(channel);
    }
    match channel {
        None => Err(Action::Reply(hec_reply(400, "Data channel is missing", 10))),
        Some(c) if !is_guid(&c) => Err(Action::Reply(hec_reply(400, "Invalid data channel", 11))),
        Some(c) => Ok(Some(c)),
    }
}

/// `POST /services/collector/event`.
fn event(hec: &mut Hec, request: &Request) -> Action {
    if let Some(refusal) = authorize(hec, request) {
        return refusal;
    }
    let wait = |reply: Reply, hec: &Hec| match &hec.retry_after {
        Some(after) => reply.header("retry-after", after),
        None => reply,
    };
    if hec.busy > 0 {
        hec.busy -= 1;
        return Action::Reply(wait(hec_reply(503, "Server is busy", 9), hec));
    }
    if hec.too_many > 0 {
        hec.too_many -= 1;
        return Action::Reply(wait(Reply::text(429, "Too Many Requests"), hec));
    }
    if let Some(max) = hec.max_body {
        if request.body.len() > max {
            let text = format!(
                "Content-Length of {} too large (maximum is {max})",
                request.body.len()
            );
            return Action::Reply(Reply::json(413, &json!({ "text": text, "code": 413 })));
        }
    }
    let channel = match channel_checked(hec, request) {
        Ok(channel) => channel,
        Err(answer) => return answer,
    };
    let objects = match parse_events(hec, &request.body) {
        Ok(objects) if objects.is_empty() => return Action::Reply(hec_reply(400, "No data", 5)),
        Ok(objects) => objects,
        Err(answer) => return answer,
    };
    hec.indexed_count += objects.len();
    if hec.keep_indexed {
        for (event, object) in objects {
            hec.indexed.push(Indexed {
                event,
                object,
                channel: channel.clone(),
            });
        }
    }
    let mut body = json!({"text": "Success", "code": 0});
    if let (true, Some(channel)) = (hec.ack, &channel) {
        let id = hec.next_ack.entry(channel.clone()).or_insert(0);
        let ack_id = *id;
        *id += 1;
        let lost = hec.lose_acks > 0;
        hec.lose_acks = hec.lose_acks.saturating_sub(1);
        hec.acks.entry(channel.clone()).or_default().insert(
            ack_id,
            PendingAck {
                ready: request.at + hec.ack_delay,
                lost,
            },
        );
        body["ackId"] = json!(ack_id);
    }
    if hec.drop_after_indexing > 0 {
        hec.drop_after_indexing -= 1;
        return Action::Drop;
    }
    Action::Reply(Reply::json(200, &body))
}

/// The event objects of a body, each with its `event` member's text; `Err` answers a refusal
/// at the first bad object (nothing indexed).
fn parse_events(hec: &Hec, body: &[u8]) -> Result<Vec<(String, Value)>, Action> {
    let mut objects = Vec::new();
    let stream = serde_json::Deserializer::from_slice(body).into_iter::<Box<RawValue>>();
    for (n, raw) in stream.enumerate() {
        let Ok(raw) = raw else {
            return Err(refused(400, "Invalid data format", 6, n));
        };
        let Ok(members) = serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(raw.get()) else {
            return Err(refused(400, "Invalid data format", 6, n));
        };
        let Some(event) = members.get("event") else {
            return Err(refused(400, "Event field is required", 12, n));
        };
        if matches!(event.get(), "\"\"" | "null") {
            return Err(refused(400, "Event field cannot be blank", 13, n));
        }
        if let Some(word) = &hec.refuse_containing {
            if raw.get().contains(word.as_str()) {
                return Err(refused(400, "Invalid data format", 6, n));
            }
        }
        if let (Some(allowed), Some(index)) = (&hec.indexes, members.get("index")) {
            if !allowed.iter().any(|a| index.get() == format!("\"{a}\"")) {
                return Err(refused(400, "Incorrect index", 7, n));
            }
        }
        if hec.keep_indexed {
            let object = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            objects.push((event.get().to_string(), object));
        } else {
            objects.push((String::new(), Value::Null));
        }
    }
    Ok(objects)
}

/// `POST /services/collector/ack`.
fn ack(hec: &mut Hec, request: &Request) -> Action {
    if let Some(refusal) = authorize(hec, request) {
        return refusal;
    }
    if !hec.ack {
        return Action::Reply(hec_reply(400, "ACK is disabled", 14));
    }
    let channel = match channel_checked(hec, request) {
        Ok(Some(channel)) => channel,
        Ok(None) => return Action::Reply(hec_reply(400, "Data channel is missing", 10)),
        Err(answer) => return answer,
    };
    let ids: Vec<u64> = request
        .json()
        .and_then(|v| v.get("acks").cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    if ids.is_empty() {
        return Action::Reply(hec_reply(400, "Invalid data format", 6));
    }
    let pending = hec.acks.entry(channel).or_default();
    let mut acks = serde_json::Map::new();
    for id in ids {
        let done = pending
            .get(&id)
            .is_some_and(|p| !p.lost && p.ready <= request.at);
        if done {
            pending.remove(&id);
        }
        acks.insert(id.to_string(), Value::Bool(done));
    }
    Action::Reply(Reply::json(200, &json!({ "acks": acks })))
}

/// The collector served over HTTPS on 127.0.0.1 with a test CA.
pub struct SplunkHec {
    hec: Arc<Mutex<Hec>>,
    receiver: HttpReceiver,
}

impl SplunkHec {
    /// Starts a collector that accepts `token`, acknowledgement off, no fault.
    pub fn start(token: &str) -> SplunkHec {
        let hec = Arc::new(Mutex::new(Hec::new(token)));
        let serving = hec.clone();
        let receiver = HttpReceiver::start_tls(move |request| {
            let mut hec = serving.lock().unwrap_or_else(|e| e.into_inner());
            handle(&mut hec, request)
        });
        SplunkHec { hec, receiver }
    }

    /// The collector's state, to set faults or read what it indexed.
    pub fn hec(&self) -> MutexGuard<'_, Hec> {
        self.hec.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `https://127.0.0.1:PORT`: a pipe's `Url`.
    pub fn url(&self) -> String {
        self.receiver.url("")
    }

    /// The CA file: a pipe's `CA`.
    pub fn ca_path(&self) -> &std::path::Path {
        self.receiver.ca_path()
    }

    /// The `event` members indexed so far, in order.
    pub fn events(&self) -> Vec<String> {
        self.hec().indexed.iter().map(|i| i.event.clone()).collect()
    }

    /// How many events it indexed so far (also while [`Hec::keep_indexed`] is off).
    pub fn indexed_count(&self) -> usize {
        self.hec().indexed_count
    }

    /// Waits at most `limit` until at least `n` events are indexed; returns them.
    pub fn wait_for_events(&self, n: usize, limit: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let events = self.events();
            if events.len() >= n || start.elapsed() > limit {
                return events;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every request so far with its status (`None`: dropped).
    pub fn requests(&self) -> Vec<(Request, Option<u16>)> {
        self.receiver.requests()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    const GUID: &str = "0a1b2c3d-0000-4000-8000-0123456789ab";

    fn request(path: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: "POST".to_string(),
            path: path.to_string(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            at: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    fn answer(action: Action) -> (u16, Value) {
        match action {
            Action::Reply(r) | Action::Delay(_, r) => (
                r.status,
                serde_json::from_slice(&r.body).unwrap_or(Value::Null),
            ),
            Action::Drop => (0, Value::Null),
        }
    }

    const AUTH: (&str, &str) = ("authorization", "Splunk tok");

    #[test]
    fn events_are_indexed_and_acknowledged() {
        let mut hec = Hec::new("tok");
        hec.ack = true;
        let chan = ("x-splunk-request-channel", GUID);
        let body = r#"{"event":{"a":1},"index":"i"}{"time":1,"event":"x"}"#;
        let (status, reply) = answer(handle(&mut hec, &request(EVENT_PATH, &[AUTH, chan], body)));
        assert_eq!(
            (status, reply["code"].clone(), reply["ackId"].clone()),
            (200, json!(0), json!(0))
        );
        assert_eq!(hec.indexed.len(), 2);
        assert_eq!(hec.indexed[0].event, r#"{"a":1}"#);
        let q = request(ACK_PATH, &[AUTH, chan], r#"{"acks":[0,5]}"#);
        assert_eq!(
            answer(handle(&mut hec, &q)).1,
            json!({"acks": {"0": true, "5": false}})
        );
        // Answered true once, then forgotten.
        assert_eq!(
            answer(handle(&mut hec, &q)).1,
            json!({"acks": {"0": false, "5": false}})
        );
        // No channel with ack on.
        let (status, reply) = answer(handle(&mut hec, &request(EVENT_PATH, &[AUTH], body)));
        assert_eq!((status, reply["code"].clone()), (400, json!(10)));
    }

    #[test]
    fn refusals_name_the_event_and_index_nothing() {
        let mut hec = Hec::new("tok");
        hec.indexes = Some(vec!["main".to_string()]);
        hec.refuse_containing = Some("BAD".to_string());
        for (body, code, n) in [
            (r#"{"event":1}{"event":"BAD"}"#, 6, 1),
            (r#"{"event":1}{"x":1}"#, 12, 1),
            (r#"{"event":""}"#, 13, 0),
            (r#"{"event":1}{"event":2,"index":"other"}"#, 7, 1),
            (r#"{"event":1} {oops"#, 6, 1),
        ] {
            let (status, reply) = answer(handle(&mut hec, &request(EVENT_PATH, &[AUTH], body)));
            assert_eq!(status, 400, "{body}");
            assert_eq!(reply["code"], json!(code), "{body}");
            assert_eq!(reply["invalid-event-number"], json!(n), "{body}");
        }
        assert!(hec.indexed.is_empty());
        for (headers, status, code) in [
            (vec![], 401, 2),
            (vec![("authorization", "Bearer tok")], 401, 3),
            (vec![("authorization", "Splunk nope")], 403, 4),
        ] {
            let (s, reply) = answer(handle(&mut hec, &request(EVENT_PATH, &headers, "{}")));
            assert_eq!((s, reply["code"].clone()), (status, json!(code)));
        }
        let (s, reply) = answer(handle(
            &mut hec,
            &request(ACK_PATH, &[AUTH], r#"{"acks":[0]}"#),
        ));
        assert_eq!((s, reply["code"].clone()), (400, json!(14)));
    }
}
