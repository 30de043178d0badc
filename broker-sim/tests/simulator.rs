//! End-to-end tests of the simulator over real HTTP/1.1 on loopback, with a tiny blocking
//! client on `std::net::TcpStream`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use broker_sim::{Fault, RequestRecord, SimOptions, Simulator};
use chrono::Utc;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::Value;

const BROKER: &str = "abcdef12345";

/// An HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn detail(&self) -> String {
        self.json()["errors"][0]["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Send one request on a fresh connection and read the whole answer.
fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    if let Some(auth) = auth {
        request.push_str(&format!("authorization: {auth}\r\n"));
    }
    let body = body.unwrap_or("");
    if method != "GET" || !body.is_empty() {
        request.push_str("content-type: application/json\r\n");
        request.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8(raw)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no complete response")
    })?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad status"))?;
    assert!(
        head.to_ascii_lowercase().contains("content-length:"),
        "expected a sized body: {head}"
    );
    Ok(Reply {
        status,
        body: body.to_string(),
    })
}

fn get(sim: &Simulator, path: &str, auth: Option<&str>) -> Reply {
    send(sim.addr(), "GET", path, auth, None).unwrap()
}

fn post(sim: &Simulator, path: &str, auth: Option<&str>, body: &str) -> Reply {
    send(sim.addr(), "POST", path, auth, Some(body)).unwrap()
}

fn options() -> SimOptions {
    SimOptions::default()
}

fn start(options: SimOptions) -> Simulator {
    let sim = Simulator::start_background(options).unwrap();
    sim.add_broker(BROKER, "My Test Broker");
    sim
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn setup_body(key: &SigningKey, keep_others: bool) -> String {
    serde_json::json!({
        "secret": STANDARD.encode(key.verifying_key().to_bytes()),
        "description": "on host.example.com",
        "keep_others": keep_others,
    })
    .to_string()
}

fn setup(sim: &Simulator, code: &str, body: &str) -> Reply {
    post(
        sim,
        &format!("/users/{BROKER}/credentials/signature"),
        Some(&format!("X-Custos user=^{BROKER} broker_setup=^{code}")),
        body,
    )
}

fn challenge(sim: &Simulator) -> (String, String) {
    let reply = get(sim, "/sessions/challenge", None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    let data = &json["data"][0];
    (
        data["id"].as_str().unwrap().to_string(),
        data["attributes"]["value"].as_str().unwrap().to_string(),
    )
}

fn login_reply(sim: &Simulator, key: &SigningKey) -> Reply {
    let (id, value) = challenge(sim);
    let signature = URL_SAFE_NO_PAD.encode(key.sign(value.as_bytes()).to_bytes());
    post(
        sim,
        "/sessions",
        Some(&format!(
            "X-Custos user=^{BROKER}, challenge=^{id}, signature={signature}"
        )),
        "",
    )
}

fn login(sim: &Simulator, key: &SigningKey) -> String {
    let reply = login_reply(sim, key);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["data"][0]["attributes"]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn session(token: &str) -> String {
    format!("X-Custos user=^{BROKER}, session=^{token}")
}

fn pull(sim: &Simulator, token: &str, queue: &str, max: u32) -> Reply {
    post(
        sim,
        &format!("/queues/{queue}/next"),
        Some(&session(token)),
        &format!(r#"{{"max": {max}}}"#),
    )
}

/// A simulator with one registered key and a session token.
fn logged_in(options: SimOptions) -> (Simulator, String) {
    let sim = start(options);
    sim.add_key(BROKER, key(7).verifying_key().to_bytes());
    let token = login(&sim, &key(7));
    (sim, token)
}

#[test]
fn health_answers_entries_or_a_status() {
    let sim = start(options());
    let reply = get(&sim, "/health", None);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, r#"[{"healthy":true,"error":""}]"#)
    );
    sim.set_health(vec![(true, String::new()), (false, "database down".into())]);
    let reply = get(&sim, "/health", None);
    assert_eq!(reply.json()[1]["error"], "database down");
    assert_eq!(reply.json()[1]["healthy"], false);
    sim.set_health_status(503);
    let reply = get(&sim, "/health", None);
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["errors"][0]["status"], "503");
}

#[test]
fn unknown_paths_and_methods_are_refused() {
    let sim = start(options());
    assert_eq!(get(&sim, "/nope", None).status, 404);
    assert_eq!(get(&sim, "/", None).status, 404);
    assert_eq!(get(&sim, "/_admin/nope", None).status, 404);
    assert_eq!(post(&sim, "/health", None, "").status, 405);
    let (_sim, token) = logged_in(options());
    assert_eq!(pull(&_sim, &token, "alert", 1).status, 404);
}

#[test]
fn setup_registers_a_key_once() {
    let sim = start(options());
    let later = Utc::now() + chrono::Duration::hours(1);
    sim.add_setup_code(BROKER, "code-1", later);
    sim.add_setup_code(BROKER, "code-2", later);
    sim.add_setup_code(BROKER, "code-3", later);

    let reply = setup(&sim, "code-1", &setup_body(&key(1), false));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["data"][0]["type"], "credentials");
    assert_eq!(
        sim.registered_keys(BROKER),
        vec![key(1).verifying_key().to_bytes()]
    );
    let setups = sim.setups();
    assert_eq!(setups.len(), 1);
    assert_eq!(setups[0].description, "on host.example.com");
    assert!(!setups[0].keep_others);

    let reply = setup(&sim, "code-1", &setup_body(&key(2), false));
    assert_eq!(
        (reply.status, reply.detail().as_str()),
        (401, "setup code already used")
    );

    // keep_others = true adds, false replaces
    assert_eq!(
        setup(&sim, "code-2", &setup_body(&key(2), true)).status,
        200
    );
    assert_eq!(sim.registered_keys(BROKER).len(), 2);
    assert_eq!(
        setup(&sim, "code-3", &setup_body(&key(3), false)).status,
        200
    );
    assert_eq!(
        sim.registered_keys(BROKER),
        vec![key(3).verifying_key().to_bytes()]
    );
}

#[test]
fn setup_refuses_bad_codes_and_bodies() {
    let sim = start(options());
    sim.add_setup_code(BROKER, "old", Utc::now() - chrono::Duration::seconds(1));
    sim.add_setup_code(BROKER, "good", Utc::now() + chrono::Duration::hours(1));
    let body = setup_body(&key(1), false);

    let reply = setup(&sim, "old", &body);
    assert_eq!(
        (reply.status, reply.detail().as_str()),
        (401, "setup code expired")
    );
    let reply = setup(&sim, "unknown", &body);
    assert_eq!(
        (reply.status, reply.detail().as_str()),
        (401, "invalid setup code")
    );
    assert_eq!(reply.json()["errors"][0]["title"], "Unauthorized");

    // bad bodies are 400 and do not use up the code
    for bad in [
        "",
        "{}",
        "not json",
        r#"{"secret": "!!!"}"#,
        r#"{"secret": "AAAA"}"#,
        r#"{"secret": 5}"#,
    ] {
        assert_eq!(setup(&sim, "good", bad).status, 400, "{bad}");
    }
    // wrong user, missing header, code of another broker
    let path = format!("/users/{BROKER}/credentials/signature");
    let reply = post(
        &sim,
        &path,
        Some("X-Custos user=^other broker_setup=^good"),
        &body,
    );
    assert_eq!(reply.status, 401);
    assert_eq!(post(&sim, &path, None, &body).status, 401);
    sim.add_broker("other", "Other");
    sim.add_setup_code("other", "theirs", Utc::now() + chrono::Duration::hours(1));
    assert_eq!(setup(&sim, "theirs", &body).detail(), "invalid setup code");

    assert_eq!(setup(&sim, "good", &body).status, 200);
    assert!(sim.registered_keys("other").is_empty());
}

#[test]
fn login_with_a_real_signature_and_hello() {
    let sim = start(options());
    sim.add_setup_code(BROKER, "code", Utc::now() + chrono::Duration::hours(1));
    assert_eq!(setup(&sim, "code", &setup_body(&key(9), false)).status, 200);

    let reply = login_reply(&sim, &key(9));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    assert_eq!(json["data"][0]["meta"]["expiration_timeout"], 3600);
    let token = json["data"][0]["attributes"]["token"].as_str().unwrap();
    assert_eq!(sim.login_count(), 1);

    let reply = get(&sim, "/queues/2.0.0/hello", Some(&session(token)));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["data"][0]["attributes"]["name"],
        "My Test Broker"
    );
    assert_eq!(reply.json()["data"][0]["id"], BROKER);
    // no space after the comma works too
    let compact = format!("X-Custos user=^{BROKER},session=^{token}");
    assert_eq!(get(&sim, "/queues/2.0.1/hello", Some(&compact)).status, 200);
    assert_eq!(sim.hello_versions(), vec!["2.0.0", "2.0.1"]);
}

#[test]
fn login_refuses_bad_signatures_and_reused_challenges() {
    let sim = start(options());
    sim.add_key(BROKER, key(1).verifying_key().to_bytes());

    // signed by an unregistered key
    let reply = login_reply(&sim, &key(2));
    assert_eq!(
        (reply.status, reply.detail().as_str()),
        (401, "invalid signature")
    );

    let (id, value) = challenge(&sim);
    let signature = key(1).sign(value.as_bytes()).to_bytes();
    let header = |sig: &str| format!("X-Custos user=^{BROKER}, challenge=^{id}, signature={sig}");
    // padded base64 is refused (and uses up the challenge)
    let padded = URL_SAFE.encode(signature);
    assert!(padded.ends_with('='));
    assert_eq!(
        post(&sim, "/sessions", Some(&header(&padded)), "").status,
        401
    );
    let good = URL_SAFE_NO_PAD.encode(signature);
    let reply = post(&sim, "/sessions", Some(&header(&good)), "");
    assert_eq!(
        (reply.status, reply.detail().as_str()),
        (401, "invalid challenge")
    );

    // signature over other bytes
    let (id, value) = challenge(&sim);
    let wrong = URL_SAFE_NO_PAD.encode(key(1).sign(format!("{value}x").as_bytes()).to_bytes());
    let reply = post(
        &sim,
        "/sessions",
        Some(&format!(
            "X-Custos user=^{BROKER}, challenge=^{id}, signature={wrong}"
        )),
        "",
    );
    assert_eq!(reply.status, 401);
    assert_eq!(sim.login_count(), 0);

    // a correct login works after all that, and a second key also works
    login(&sim, &key(1));
    sim.add_key(BROKER, key(2).verifying_key().to_bytes());
    login(&sim, &key(2));
    assert_eq!(sim.login_count(), 2);
}

#[test]
fn expired_challenges_and_sessions_are_refused() {
    let sim = start(SimOptions {
        session_lifetime: Duration::from_millis(300),
        challenge_lifetime: Duration::from_millis(300),
        ..options()
    });
    sim.add_key(BROKER, key(1).verifying_key().to_bytes());
    let token = login(&sim, &key(1));
    let (id, value) = challenge(&sim);
    assert_eq!(pull(&sim, &token, "alerts", 1).status, 200);
    std::thread::sleep(Duration::from_millis(400));

    let reply = pull(&sim, &token, "alerts", 1);
    assert_eq!(
        (reply.status, reply.detail().as_str()),
        (401, "session expired")
    );
    let signature = URL_SAFE_NO_PAD.encode(key(1).sign(value.as_bytes()).to_bytes());
    let reply = post(
        &sim,
        "/sessions",
        Some(&format!(
            "X-Custos user=^{BROKER}, challenge=^{id}, signature={signature}"
        )),
        "",
    );
    assert_eq!(
        (reply.status, reply.detail().as_str()),
        (401, "challenge expired")
    );
}

#[test]
fn sessions_are_checked() {
    let (sim, token) = logged_in(options());
    assert_eq!(pull(&sim, "forged", "alerts", 1).status, 401);
    assert_eq!(
        post(&sim, "/queues/alerts/next", None, r#"{"max":1}"#).status,
        401
    );
    // the token is bound to its broker
    sim.add_broker("other", "Other");
    let foreign = format!("X-Custos user=^other, session=^{token}");
    assert_eq!(get(&sim, "/queues/2.0.0/hello", Some(&foreign)).status, 401);
    // no caret: refused
    let no_caret = format!("X-Custos user={BROKER}, session={token}");
    assert_eq!(
        get(&sim, "/queues/2.0.0/hello", Some(&no_caret)).status,
        401
    );

    assert_eq!(pull(&sim, &token, "alerts", 1).status, 200);
    sim.expire_all_sessions();
    assert_eq!(pull(&sim, &token, "alerts", 1).status, 401);
    let fresh = login(&sim, &key(7));
    assert_eq!(pull(&sim, &fresh, "alerts", 1).status, 200);
}

#[test]
fn pulls_are_fifo_exact_and_capped() {
    let (sim, token) = logged_in(SimOptions {
        max_cap: 3,
        ..options()
    });
    let events = [
        r#"{"type":"alerts","id":"1","n":1.50}"#,
        "{ \"type\" : \"alerts\",\n  \"id\": \"2\", \"s\": \"\\u00e9\\/\u{7f}\" }",
        r#"{"type":"alerts","id":"3","big":18446744073709551615}"#,
        r#"{"type":"alerts","id":"4"}"#,
        r#"{"type":"alerts","id":"5"}"#,
    ];
    for event in events {
        sim.enqueue("alerts", event).unwrap();
    }
    assert!(sim.enqueue("alert", "{}").is_err());
    assert_eq!(sim.queue_len("alerts"), 5);

    let reply = pull(&sim, &token, "alerts", 2);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        format!(r#"{{"data":[{},{}]}}"#, events[0], events[1])
    );
    assert_eq!(sim.queue_len("alerts"), 3);

    // capped at 3 although 100 were asked for
    let reply = pull(&sim, &token, "alerts", 100);
    assert_eq!(reply.json()["data"].as_array().unwrap().len(), 3);
    assert_eq!(
        reply.body,
        format!(r#"{{"data":[{},{},{}]}}"#, events[2], events[3], events[4])
    );
    assert_eq!(pull(&sim, &token, "alerts", 100).body, r#"{"data":[]}"#);
    assert_eq!(pull(&sim, &token, "log_changes", 1).body, r#"{"data":[]}"#);

    for bad in [
        "",
        "{}",
        r#"{"max":0}"#,
        r#"{"max":-3}"#,
        r#"{"max":"5"}"#,
        r#"{"max":2.5}"#,
    ] {
        let reply = post(&sim, "/queues/alerts/next", Some(&session(&token)), bad);
        assert_eq!(reply.status, 400, "{bad}");
    }

    let log = sim.requests();
    let pulls: Vec<&RequestRecord> = log.iter().filter(|r| r.path.ends_with("/next")).collect();
    assert_eq!(pulls[0].max, Some(2));
    assert_eq!(pulls[1].max, Some(100));
    assert_eq!(pulls[1].status, 200);
    assert_eq!(pulls.last().map(|r| (r.max, r.status)), Some((None, 400)));
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].path, "/sessions/challenge");
}

#[test]
fn generated_events_are_served_byte_for_byte() {
    let (sim, token) = logged_in(options());
    let generated = sim.enqueue_generated("endpoint_stats", 30).unwrap();
    assert_eq!(sim.queue_len("endpoint_stats"), 30);
    let reply = pull(&sim, &token, "endpoint_stats", 1000);
    assert_eq!(
        reply.body,
        format!(r#"{{"data":[{}]}}"#, generated.join(","))
    );
    let data = reply.json();
    assert_eq!(data["data"].as_array().unwrap().len(), 30);
    assert_eq!(data["data"][0]["type"], "endpoint_stats");
}

#[test]
fn status_and_malformed_faults_keep_the_queue() {
    let (sim, token) = logged_in(options());
    sim.enqueue_generated("alerts", 3).unwrap();
    sim.inject(Fault::Status(503), 2, Some("/queues/alerts"));
    sim.inject(Fault::MalformedJson, 1, Some("/queues/alerts"));
    // a fault restricted to alerts leaves other paths alone
    assert_eq!(pull(&sim, &token, "log_authn", 1).status, 200);
    assert_eq!(get(&sim, "/health", None).status, 200);

    for _ in 0..2 {
        let reply = pull(&sim, &token, "alerts", 10);
        assert_eq!(reply.status, 503);
        assert_eq!(reply.json()["errors"][0]["status"], "503");
    }
    let reply = pull(&sim, &token, "alerts", 10);
    assert_eq!(reply.status, 200);
    assert!(serde_json::from_str::<Value>(&reply.body).is_err());
    assert_eq!(sim.queue_len("alerts"), 3);
    assert_eq!(sim.pending_faults(), 0);
    assert_eq!(
        pull(&sim, &token, "alerts", 10).json()["data"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn unauthorized_fault_answers_401_once() {
    let (sim, token) = logged_in(options());
    sim.enqueue_generated("log_authn", 1).unwrap();
    sim.inject(Fault::Unauthorized, 1, None);
    assert_eq!(pull(&sim, &token, "log_authn", 1).status, 401);
    assert_eq!(sim.queue_len("log_authn"), 1);
    assert_eq!(pull(&sim, &token, "log_authn", 1).status, 200);
    assert_eq!(sim.queue_len("log_authn"), 0);
}

#[test]
fn drop_fault_closes_without_an_answer() {
    let (sim, token) = logged_in(options());
    sim.enqueue_generated("log_changes", 2).unwrap();
    sim.inject(Fault::Drop, 1, Some("/queues/"));
    let result = send(
        sim.addr(),
        "POST",
        "/queues/log_changes/next",
        Some(&session(&token)),
        Some(r#"{"max":5}"#),
    );
    assert!(result.is_err(), "{result:?}");
    assert_eq!(sim.queue_len("log_changes"), 2);
    let last = sim.requests().pop().unwrap();
    assert_eq!((last.status, last.max), (0, Some(5)));
    assert_eq!(pull(&sim, &token, "log_changes", 5).status, 200);
    assert_eq!(sim.queue_len("log_changes"), 0);
}

#[test]
fn delay_fault_waits_then_answers() {
    let sim = start(options());
    sim.inject(Fault::Delay(Duration::from_millis(300)), 1, Some("/health"));
    let started = Instant::now();
    assert_eq!(get(&sim, "/health", None).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(get(&sim, "/health", None).status, 200);
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[test]
fn admin_routes_drive_the_simulator() {
    let (sim, token) = logged_in(options());
    let reply = post(
        &sim,
        "/_admin/enqueue/alerts",
        None,
        r#"{"id":"a", "n": 1.50}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = post(
        &sim,
        "/_admin/enqueue/alerts",
        None,
        "[{\"id\":\"b\"},\n {\"id\" : \"c\"}]",
    );
    assert_eq!(reply.body, r#"{"enqueued":2,"queue_len":3}"#);
    assert_eq!(post(&sim, "/_admin/enqueue/alerts", None, "{").status, 400);
    assert_eq!(post(&sim, "/_admin/enqueue/nope", None, "{}").status, 404);
    let reply = post(&sim, "/_admin/generate/log_authn?n=4", None, "");
    assert_eq!(reply.json()["generated"], 4);
    assert_eq!(reply.json()["events"][3]["type"], "log_authn");
    let reply = get(&sim, "/_admin/queues", None);
    assert_eq!(
        reply.body,
        r#"{"alerts":3,"endpoint_stats":0,"log_authn":4,"log_changes":0}"#
    );
    assert_eq!(
        pull(&sim, &token, "alerts", 10).body,
        r#"{"data":[{"id":"a", "n": 1.50},{"id":"b"},{"id" : "c"}]}"#
    );

    let fault = r#"{"kind":"status","status":502,"count":1,"path":"/queues"}"#;
    assert_eq!(post(&sim, "/_admin/fault", None, fault).status, 200);
    assert_eq!(get(&sim, "/health", None).status, 200);
    assert_eq!(pull(&sim, &token, "log_authn", 1).status, 502);
    for fault in [
        r#"{"kind":"delay","ms":1}"#,
        r#"{"kind":"drop","count":0}"#,
        r#"{"kind":"malformed","path":"/nowhere"}"#,
        r#"{"kind":"unauthorized","path":"/nowhere"}"#,
    ] {
        assert_eq!(
            post(&sim, "/_admin/fault", None, fault).status,
            200,
            "{fault}"
        );
    }
    for bad in [
        r#"{"kind":"status"}"#,
        r#"{"kind":"delay"}"#,
        r#"{"kind":"boom"}"#,
        "x",
    ] {
        assert_eq!(post(&sim, "/_admin/fault", None, bad).status, 400, "{bad}");
    }
    assert_eq!(get(&sim, "/_admin/stats", None).json()["pending_faults"], 3);
    assert_eq!(post(&sim, "/_admin/clear-faults", None, "").status, 200);
    assert_eq!(sim.pending_faults(), 0);

    post(
        &sim,
        "/_admin/health",
        None,
        r#"[{"healthy":false,"error":"down"}]"#,
    );
    assert_eq!(
        get(&sim, "/health", None).body,
        r#"[{"healthy":false,"error":"down"}]"#
    );
    post(&sim, "/_admin/health", None, r#"{"status":500}"#);
    assert_eq!(get(&sim, "/health", None).status, 500);

    post(&sim, "/_admin/expire-sessions", None, "");
    assert_eq!(pull(&sim, &token, "alerts", 1).status, 401);

    let reply = post(
        &sim,
        "/_admin/broker",
        None,
        r#"{"id":"second","name":"Second Broker"}"#,
    );
    assert_eq!(reply.status, 200);
    let code = r#"{"broker":"second","code":"xyz","expires":"2999-01-01T00:00:00Z"}"#;
    assert_eq!(post(&sim, "/_admin/setup-code", None, code).status, 200);
    let unknown = r#"{"broker":"third","code":"xyz"}"#;
    assert_eq!(post(&sim, "/_admin/setup-code", None, unknown).status, 404);
    let reply = post(
        &sim,
        "/users/second/credentials/signature",
        Some("X-Custos user=^second broker_setup=^xyz"),
        &setup_body(&key(4), false),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let keys = get(&sim, "/_admin/keys/second", None).json();
    assert_eq!(keys[0], STANDARD.encode(key(4).verifying_key().to_bytes()));

    let log = get(&sim, "/_admin/requests", None).json();
    let log = log.as_array().unwrap();
    assert!(log
        .iter()
        .all(|r| !r["path"].as_str().unwrap().starts_with("/_admin")));
    assert!(log.iter().any(|r| r["max"] == 10 && r["status"] == 200));
    assert_eq!(get(&sim, "/_admin/stats", None).json()["logins"], 1);
}

#[test]
fn simulators_are_independent_and_shut_down() {
    let a = start(options());
    let b = start(options());
    assert_ne!(a.url(), b.url());
    assert!(a.url().starts_with("http://127.0.0.1:"));
    a.enqueue("alerts", "{}").unwrap();
    assert_eq!(b.queue_len("alerts"), 0);
    let addr = a.addr();
    let clone = a.clone();
    drop(a);
    assert_eq!(
        send(addr, "GET", "/health", None, None).unwrap().status,
        200
    );
    clone.shutdown();
    assert!(send(addr, "GET", "/health", None, None).is_err());
    assert_eq!(get(&b, "/health", None).status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_the_callers_runtime() {
    let sim = Simulator::start(options()).await.unwrap();
    sim.add_broker(BROKER, "Async Broker");
    sim.add_key(BROKER, key(5).verifying_key().to_bytes());
    let probe = sim.clone();
    let name = tokio::task::spawn_blocking(move || {
        let token = login(&probe, &key(5));
        get(&probe, "/queues/2.0.0/hello", Some(&session(&token))).json()["data"][0]["attributes"]
            ["name"]
            .clone()
    })
    .await
    .unwrap();
    assert_eq!(name, "Async Broker");
    sim.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(sim.addr()).is_err());
}

/// Sends a pull and gives up (closes the connection) after `patience` without an answer.
fn pull_impatiently(sim: &Simulator, token: &str, queue: &str, patience: Duration) {
    let mut stream = TcpStream::connect(sim.addr()).unwrap();
    stream.set_read_timeout(Some(patience)).unwrap();
    let body = r#"{"max": 10}"#;
    let request = format!(
        "POST /queues/{queue}/next HTTP/1.1\r\nhost: {}\r\nauthorization: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        sim.addr(),
        session(token),
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    let read = stream.read(&mut buf);
    assert!(
        read.is_err(),
        "an answer came before the client gave up: {read:?}"
    );
}

fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

#[test]
fn a_delayed_pull_whose_client_left_removes_nothing() {
    let (sim, token) = logged_in(options());
    sim.enqueue_generated("alerts", 3).unwrap();
    sim.inject(
        Fault::Delay(Duration::from_millis(600)),
        1,
        Some("/queues/"),
    );
    pull_impatiently(&sim, &token, "alerts", Duration::from_millis(150));
    let logged = wait_for(Duration::from_secs(5), || {
        sim.requests()
            .iter()
            .any(|r| r.path == "/queues/alerts/next")
    });
    assert!(logged, "{:?}", sim.requests());
    // Past the delay: the simulator did not hand the events to anyone.
    std::thread::sleep(Duration::from_millis(700));
    let last = sim.requests().pop().unwrap();
    assert_eq!((last.status, last.max), (499, Some(10)));
    assert_eq!(sim.queue_len("alerts"), 3);
    assert_eq!(sim.served_count("alerts"), 0);

    // A patient client gets the delayed answer and the events.
    sim.inject(
        Fault::Delay(Duration::from_millis(200)),
        1,
        Some("/queues/"),
    );
    let reply = pull(&sim, &token, "alerts", 10);
    assert_eq!(reply.json()["data"].as_array().unwrap().len(), 3);
    assert_eq!(sim.queue_len("alerts"), 0);
    assert_eq!(sim.served_count("alerts"), 3);
}

#[test]
fn a_stall_answers_504_late_and_keeps_the_queue() {
    let (sim, token) = logged_in(options());
    sim.enqueue_generated("log_authn", 2).unwrap();
    sim.inject(
        Fault::Stall(Duration::from_millis(300)),
        2,
        Some("/queues/"),
    );
    let started = Instant::now();
    let reply = pull(&sim, &token, "log_authn", 5);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.status, 504);
    assert_eq!(reply.json()["errors"][0]["status"], "504");
    assert_eq!(sim.queue_len("log_authn"), 2);
    // A client that leaves during a stall is logged as gone.
    pull_impatiently(&sim, &token, "log_authn", Duration::from_millis(100));
    assert!(wait_for(Duration::from_secs(5), || {
        sim.requests().last().map(|r| r.status) == Some(499)
    }));
    assert_eq!(sim.queue_len("log_authn"), 2);
    assert_eq!(pull(&sim, &token, "log_authn", 5).status, 200);
    assert_eq!(sim.served_count("log_authn"), 2);
    assert_eq!(
        post(&sim, "/_admin/fault", None, r#"{"kind":"stall","ms":5}"#).status,
        200
    );
    assert_eq!(
        post(&sim, "/_admin/fault", None, r#"{"kind":"stall"}"#).status,
        400
    );
}

#[test]
fn every_failed_pull_keeps_the_queue() {
    let (sim, token) = logged_in(options());
    sim.enqueue_generated("endpoint_stats", 4).unwrap();
    for fault in [
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::MalformedJson,
        Fault::Unauthorized,
    ] {
        sim.inject(fault.clone(), 1, Some("/queues/endpoint_stats"));
        let reply = pull(&sim, &token, "endpoint_stats", 10);
        assert_ne!(
            serde_json::from_str::<Value>(&reply.body)
                .ok()
                .and_then(|v| v["data"].as_array().map(Vec::len)),
            Some(4),
            "{fault:?}"
        );
        assert_eq!(sim.queue_len("endpoint_stats"), 4, "{fault:?}");
    }
    sim.inject(Fault::Drop, 1, Some("/queues/"));
    assert!(send(
        sim.addr(),
        "POST",
        "/queues/endpoint_stats/next",
        Some(&session(&token)),
        Some(r#"{"max":10}"#)
    )
    .is_err());
    assert_eq!(sim.queue_len("endpoint_stats"), 4);
    assert_eq!(sim.served_count("endpoint_stats"), 0);
    sim.expire_all_sessions();
    assert_eq!(pull(&sim, &token, "endpoint_stats", 10).status, 401);
    assert_eq!(sim.queue_len("endpoint_stats"), 4);
}

#[test]
fn held_pulls_wait_for_release_and_a_leaving_client_takes_nothing() {
    let (sim, token) = logged_in(options());
    sim.enqueue_generated("alerts", 3).unwrap();
    sim.hold_pulls();
    pull_impatiently(&sim, &token, "alerts", Duration::from_millis(150));
    assert!(wait_for(Duration::from_secs(5), || {
        sim.requests().last().map(|r| r.status) == Some(499)
    }));
    assert_eq!(sim.held_pulls(), 0);
    assert_eq!(sim.queue_len("alerts"), 3);

    let probe = sim.clone();
    let waiting = std::thread::spawn(move || pull(&probe, &token, "alerts", 10));
    assert!(wait_for(Duration::from_secs(5), || sim.held_pulls() == 1));
    assert_eq!(get(&sim, "/_admin/stats", None).json()["held_pulls"], 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(sim.queue_len("alerts"), 3, "nothing served while held");
    assert_eq!(
        post(&sim, "/_admin/hold-pulls", None, r#"{"hold":false}"#).status,
        200
    );
    let reply = waiting.join().unwrap();
    assert_eq!(reply.json()["data"].as_array().unwrap().len(), 3);
    assert_eq!(sim.held_pulls(), 0);
    assert_eq!(sim.served_count("alerts"), 3);
    // Other calls are never held.
    sim.release_pulls();
    assert_eq!(
        post(&sim, "/_admin/hold-pulls", None, r#"{"hold":true}"#).status,
        200
    );
    assert_eq!(get(&sim, "/health", None).status, 200);
    sim.release_pulls();
}
