//! The `sentinel` sink against a receiver that behaves as Entra's token endpoint and the Azure
//! Monitor Logs Ingestion API (broker_tests::sentinel), over HTTPS with a test CA.
//!
//! First the sink itself, delivery by delivery (each fault and what the sink reports), then the
//! real broker binary pulling from the API simulator: every event arrives, faults end in a
//! delivery or a dead letter with the receiver's reason, a restart loses nothing, a refused
//! configuration is retried loudly and never dead-letters, secrets never show, `--check-config`
//! and `--test-pipe`.

use std::time::Duration;

use broker_core::config::PipeSettings;
use broker_core::{Event, EventType, Sink, SinkError, SinkErrorKind};
use broker_sinks::SentinelSink;
use broker_tests::sentinel::{SentinelReceiver, CLIENT_ID, CLIENT_SECRET, DCR, STREAM, TENANT};
use broker_tests::{describe, expected_lines, simulator, stdout, wait_until, BrokerDir};
use serde_json::Value;

const BROKER: &str = "procustodibus-broker";

/// A sink delivering to `receiver`, with more keys.
fn sink(receiver: &SentinelReceiver, extra: &[(&str, &str)]) -> SentinelSink {
    let url = receiver.url();
    let ca = receiver.http.ca_path().display().to_string();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("Endpoint", &url),
        ("AuthorityHost", &url),
        ("Dcr", DCR),
        ("Stream", STREAM),
        ("TenantId", TENANT),
        ("ClientId", CLIENT_ID),
        ("CA", &ca),
    ];
    if !extra.iter().any(|(k, _)| k.starts_with("ClientSecret")) {
        pairs.push(("ClientSecret", CLIENT_SECRET));
    }
    pairs.extend_from_slice(extra);
    SentinelSink::from_settings(&PipeSettings::new("Sentinel", "/b.conf", &pairs))
        .expect("valid keys")
}

/// `n` alerts with ids `e0`... and a `created` time.
fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let json = format!(
                r#"{{"type":"alerts","id":"e{i}","attributes":{{"created":"2024-05-01T08:00:{:02}Z","n":{i}}}}}"#,
                i % 60
            );
            Event::from_json(EventType::Alerts, &json).expect("event")
        })
        .collect()
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("e{i}")).collect()
}

/// Delivers all of `events`, as the core does: after a permanent failure, the rest.
async fn deliver_all(sink: &mut SentinelSink, events: &[Event]) -> Vec<(usize, SinkError)> {
    let mut start = 0;
    let mut failures = Vec::new();
    while start < events.len() {
        match sink.deliver(&events[start..]).await {
            Ok(()) => break,
            Err(e) if (e.kind == SinkErrorKind::Permanent) => {
                failures.push((start + e.delivered, e.clone()));
                start += e.delivered + 1;
            }
            Err(e) => panic!("unexpected retry: {e}"),
        }
    }
    failures
}

#[tokio::test]
async fn rows_go_in_batches_with_one_cached_token() {
    let receiver = SentinelReceiver::start();
    let mut sink = sink(&receiver, &[("Batch", "10")]);
    let events = events(25);
    sink.deliver(&events).await.expect("delivered");
    assert_eq!(
        receiver.ingestions(),
        [(10, Some(204)), (10, Some(204)), (5, Some(204))]
    );
    assert_eq!(receiver.token_requests(), [Some(200)]);
    assert_eq!(receiver.ids(), ids(0..25));
    let state = receiver.state();
    let row = &state.rows[3];
    assert_eq!(row["TimeGenerated"], "2024-05-01T08:00:03Z");
    assert_eq!(row["Type"], "alerts");
    let event: Value = serde_json::from_str(events[3].line()).unwrap();
    assert_eq!(row["Event"], event);
    drop(state);
    assert_eq!(sink.last_answer().as_deref(), Some("204 No Content"));
    let requests = receiver.http.requests();
    let (ingest, _) = requests
        .iter()
        .find(|(r, _)| r.path.starts_with("/data"))
        .unwrap();
    assert_eq!(
        ingest.path,
        format!("/dataCollectionRules/{DCR}/streams/{STREAM}?api-version=2023-01-01")
    );
    assert_eq!(ingest.header("content-type"), Some("application/json"));
    assert!(ingest
        .header("authorization")
        .unwrap()
        .starts_with("Bearer eyJ"));
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once_and_an_expiring_one_before_it_expires() {
    let receiver = SentinelReceiver::start();
    {
        let mut state = receiver.state();
        state.token_lifetime = Duration::from_secs(2);
        state.expires_in_as_string = true;
    }
    let mut sink = sink(&receiver, &[]);
    let events = events(3);
    sink.deliver(&events[..1]).await.expect("delivered");
    receiver.state().revoke_tokens();
    sink.deliver(&events[1..2])
        .await
        .expect("delivered with a new token");
    assert_eq!(
        receiver.ingestions(),
        [(1, Some(204)), (1, Some(401)), (1, Some(204))]
    );
    assert_eq!(receiver.token_requests().len(), 2);
    // 2 s lifetime: refreshed 0.2 s before it ends, so the request never meets a 401.
    tokio::time::sleep(Duration::from_millis(1900)).await;
    sink.deliver(&events[2..]).await.expect("delivered");
    assert_eq!(receiver.token_requests().len(), 3);
    assert_eq!(receiver.ingestions().last(), Some(&(1, Some(204))));
    assert_eq!(receiver.ids(), ids(0..3));
}

#[tokio::test]
async fn a_refused_secret_is_a_retry_naming_entras_reason_never_the_secret() {
    let receiver = SentinelReceiver::start();
    receiver.state().echo_secret = true;
    let mut sink = sink(&receiver, &[("ClientSecret", "wr0ng~SECRET~value")]);
    let e = sink.deliver(&events(2)).await.unwrap_err();
    assert!(!(e.kind == SinkErrorKind::Permanent), "{e}");
    assert_eq!(e.delivered, 0);
    assert!(e.message.contains("refused the client credentials: 400 Bad Request: invalid_client: AADSTS7000215: Invalid client secret provided (got '***')"), "{e}");
    assert!(!e.message.contains("SECRET"), "{e}");
    assert!(!e.message.contains("Trace ID"), "{e}");
    let answer = sink.last_answer().unwrap();
    assert!(
        answer.starts_with("token endpoint 400 Bad Request: invalid_client"),
        "{answer}"
    );
    assert!(!answer.contains("SECRET"), "{answer}");
    assert!(receiver.ingestions().is_empty());
    assert!(receiver.state().rows.is_empty());
}

#[tokio::test]
async fn a_busy_token_endpoint_is_a_retry_with_its_wait() {
    let receiver = SentinelReceiver::start();
    receiver.state().token_unavailable = 1;
    let mut sink = sink(&receiver, &[]);
    let events = events(2);
    let e = sink.deliver(&events).await.unwrap_err();
    assert_ne!(e.kind, SinkErrorKind::Permanent, "{e}");
    assert_eq!(
        (e.delivered, e.retry_after),
        (0, Some(Duration::from_secs(2)))
    );
    assert!(
        e.message
            .contains("answered 503 Service Unavailable: temporarily_unavailable: AADSTS90033"),
        "{e}"
    );
    assert!(!e.message.contains("refused the client credentials"), "{e}");
    sink.deliver(&events).await.expect("a token the next time");
    assert_eq!(receiver.ids(), ids(0..2));
}

#[tokio::test]
async fn a_413_splits_the_request_and_a_row_too_large_alone_is_dead_lettered() {
    let receiver = SentinelReceiver::start();
    let events = events(8);
    let row_size = 160; // about: each row is ~150 bytes
    receiver.state().max_body = 3 * row_size;
    let mut sink = sink(&receiver, &[]);
    sink.deliver(&events)
        .await
        .expect("delivered in smaller requests");
    assert_eq!(receiver.ids(), ids(0..8));
    let statuses: Vec<_> = receiver.ingestions();
    assert_eq!(statuses[0], (8, Some(413)));
    assert!(
        statuses
            .iter()
            .all(|(rows, s)| *s == Some(413) || *rows <= 3),
        "{statuses:?}"
    );

    // A bound below one row: the row alone gets 413 and is dead-lettered with the answer.
    receiver.state().max_body = 50;
    let e = sink.deliver(&events[..1]).await.unwrap_err();
    assert!((e.kind == SinkErrorKind::Permanent), "{e}");
    assert_eq!(e.delivered, 0);
    assert!(
        e.message
            .contains("answered 413 Payload Too Large: ContentLengthLimitExceeded"),
        "{e}"
    );
    assert!(e.message.contains("for its row alone"), "{e}");
}

#[tokio::test]
async fn a_row_over_one_megabyte_is_dead_lettered_without_being_sent() {
    let receiver = SentinelReceiver::start();
    let mut sink = sink(&receiver, &[]);
    let mut events = events(3);
    let big = format!(
        r#"{{"id":"big","attributes":{{"text":"{}"}}}}"#,
        "x".repeat(1_000_000)
    );
    events.insert(1, Event::from_json(EventType::Alerts, &big).unwrap());
    let e = sink.deliver(&events).await.unwrap_err();
    assert!((e.kind == SinkErrorKind::Permanent), "{e}");
    assert_eq!(e.delivered, 1);
    assert!(e.message.contains("more than the 1000000 bytes"), "{e}");
    sink.deliver(&events[2..]).await.expect("the rest");
    assert_eq!(receiver.ids(), ["e0", "e1", "e2"]);
    assert!(receiver.ingestions().iter().all(|(_, s)| *s == Some(204)));
}

#[tokio::test]
async fn a_refused_row_is_found_by_halving_and_only_it_is_dead_lettered() {
    let receiver = SentinelReceiver::start();
    receiver.state().refuse_id = Some("e6".to_string());
    let mut sink = sink(&receiver, &[]);
    let events = events(10);
    let failures = deliver_all(&mut sink, &events).await;
    assert_eq!(failures.len(), 1);
    let (at, e) = &failures[0];
    assert_eq!(*at, 6);
    assert!(
        e.message
            .contains("answered 400 Bad Request: InvalidContent: Row \"e6\""),
        "{e}"
    );
    let mut expected = ids(0..10);
    expected.remove(6);
    assert_eq!(receiver.ids(), expected, "every other row once, in order");
    // 10 refused; 0-4 taken; 5-9 refused; 5-6 refused; 5 taken; 6 refused; then 7-9.
    assert_eq!(
        receiver.ingestions(),
        [
            (10, Some(400)),
            (5, Some(204)),
            (5, Some(400)),
            (2, Some(400)),
            (1, Some(204)),
            (1, Some(400)),
            (3, Some(204))
        ]
    );
}

#[tokio::test]
async fn a_refused_first_row_is_told_from_a_refused_request_by_the_next_one() {
    let receiver = SentinelReceiver::start();
    receiver.state().refuse_id = Some("e0".to_string());
    let mut sink = sink(&receiver, &[]);
    let events = events(4);
    let failures = deliver_all(&mut sink, &events).await;
    assert_eq!(failures.iter().map(|(at, _)| *at).collect::<Vec<_>>(), [0]);
    assert_eq!(
        receiver.ids(),
        ids(1..4),
        "e1, taken alone, is not sent again"
    );
    assert_eq!(
        receiver.ingestions(),
        [
            (4, Some(400)),
            (2, Some(400)),
            (1, Some(400)),
            (1, Some(204)),
            (2, Some(204))
        ]
    );
}

#[tokio::test]
async fn a_receiver_that_refuses_every_request_is_a_retry() {
    let receiver = SentinelReceiver::start();
    receiver.state().refuse_all = true;
    let mut sink = sink(&receiver, &[]);
    let events = events(6);
    for _ in 0..2 {
        let e = sink.deliver(&events).await.unwrap_err();
        assert!(!(e.kind == SinkErrorKind::Permanent), "{e}");
        assert_eq!(e.delivered, 0);
        assert!(
            e.message.contains("the next event alone was refused too"),
            "{e}"
        );
    }
    let e = sink.deliver(&events[..1]).await.unwrap_err();
    assert!(
        !(e.kind == SinkErrorKind::Permanent),
        "one event alone waits: {e}"
    );
}

#[tokio::test]
async fn busy_and_misconfigured_answers_are_retries_with_their_reason() {
    let receiver = SentinelReceiver::start();
    let mut sink = sink(&receiver, &[("Batch", "2")]);
    let events = events(4);
    receiver.state().throttled = (1, 7);
    let e = sink.deliver(&events).await.unwrap_err();
    assert!(!(e.kind == SinkErrorKind::Permanent));
    assert_eq!(
        (e.delivered, e.retry_after),
        (0, Some(Duration::from_secs(7)))
    );
    assert!(e.message.contains("429 Too Many Requests"), "{e}");
    sink.deliver(&events[..2]).await.expect("taken");
    receiver.state().unavailable = 1;
    let e = sink.deliver(&events[2..]).await.unwrap_err();
    assert_eq!(
        (e.delivered, e.retry_after),
        (0, Some(Duration::from_secs(1)))
    );
    assert!(e.message.contains("503 Service Unavailable"), "{e}");

    receiver.state().forbidden = true;
    let e = sink.deliver(&events[2..]).await.unwrap_err();
    assert!(!(e.kind == SinkErrorKind::Permanent));
    assert!(e.message.contains("403 Forbidden: OperationFailed"), "{e}");
    assert!(e.message.contains("Monitoring Metrics Publisher"), "{e}");
    receiver.state().forbidden = false;

    let url = receiver.url();
    let ca = receiver.http.ca_path().display().to_string();
    let mut wrong = SentinelSink::from_settings(&PipeSettings::new(
        "S",
        "/b.conf",
        &[
            ("Endpoint", url.as_str()),
            ("AuthorityHost", url.as_str()),
            ("Dcr", "dcr-ffff"),
            ("Stream", STREAM),
            ("TenantId", TENANT),
            ("ClientId", CLIENT_ID),
            ("ClientSecret", CLIENT_SECRET),
            ("CA", ca.as_str()),
        ],
    ))
    .unwrap();
    let e = wrong.deliver(&events[2..]).await.unwrap_err();
    assert!(!(e.kind == SinkErrorKind::Permanent));
    assert!(
        e.message
            .contains("404 Not Found: NotFound: Data collection rule"),
        "{e}"
    );
    assert!(e.message.contains("check Endpoint, Dcr and Stream"), "{e}");

    receiver.state().drop_after_receipt = 1;
    let e = sink.deliver(&events[2..]).await.unwrap_err();
    assert!(!(e.kind == SinkErrorKind::Permanent));
    assert_eq!(e.delivered, 0);
    sink.deliver(&events[2..]).await.expect("sent again");
    assert_eq!(
        receiver.ids(),
        ["e0", "e1", "e2", "e3", "e2", "e3"],
        "at least once"
    );
}

// ---- The broker binary, pulling from the simulator. ----

/// A simulator, a receiver and a broker with credentials and a pipe `Sentinel` from `from`.
fn broker(from: &str, extra: &str) -> (broker_sim::Simulator, SentinelReceiver, BrokerDir) {
    let sim = simulator(Default::default());
    let receiver = SentinelReceiver::start();
    let dir = BrokerDir::new();
    dir.write("secret", &format!("{CLIENT_SECRET}\n"));
    let pipe = format!(
        "[Pipe.Sentinel]\nFrom = {from}\n{}ClientSecretFile = {}\n",
        receiver.pipe_keys(extra),
        dir.path("secret").display()
    );
    dir.write_config(&sim.url(), &pipe);
    dir.set_up(&sim);
    (sim, receiver, dir)
}

/// The `id` of each raw event.
fn raw_ids(raws: &[String]) -> Vec<String> {
    raws.iter()
        .map(|raw| {
            let v: Value = serde_json::from_str(raw).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Checks that the secret is in none of the run's output or the spool's files.
fn assert_no_secret(text: &str, dir: &BrokerDir) {
    assert!(!text.contains("SECRET"), "{text}");
    assert!(!text.contains("eyJ0eXAiOiJKV1QifQ"), "a token in: {text}");
    let dead = dir.lines("spool/dead-letter.jsonl").join("\n");
    assert!(!dead.contains("SECRET"), "{dead}");
}

#[test]
fn the_broker_delivers_every_event_as_a_row() {
    let (sim, receiver, dir) = broker("alerts, log_authn", "Batch = 7\n");
    let alerts = sim.enqueue_generated("alerts", 20).unwrap();
    let logins = sim.enqueue_generated("log_authn", 5).unwrap();
    let run = dir.run(BROKER, &["-vv"]);
    assert!(run.status.success(), "{}", describe(&run));
    let mut expected = raw_ids(&alerts);
    expected.extend(raw_ids(&logins));
    assert_eq!(receiver.ids(), expected);
    let lines = expected_lines(&[alerts, logins].concat());
    let state = receiver.state();
    for (row, line) in state.rows.iter().zip(&lines) {
        assert_eq!(row["Event"], serde_json::from_str::<Value>(line).unwrap());
        assert!(
            row["TimeGenerated"].as_str().unwrap().ends_with('Z'),
            "{row}"
        );
    }
    assert_eq!(state.rows[0]["Type"], "alerts");
    assert_eq!(state.rows[24]["Type"], "log_authn");
    assert_eq!(receiver.token_requests(), [Some(200)]);
    assert_no_secret(&format!("{}{}", stdout(&run), describe(&run)), &dir);
}

#[test]
fn through_every_fault_each_event_is_delivered_or_dead_lettered_with_the_reason() {
    let (sim, receiver, dir) = broker("alerts", "Batch = 10\n");
    let alerts = sim.enqueue_generated("alerts", 60).unwrap();
    let all = raw_ids(&alerts);
    {
        let mut state = receiver.state();
        state.unavailable = 2;
        state.throttled = (1, 1);
        state.drop_after_receipt = 1;
        state.refuse_id = Some(all[23].clone());
        state.token_lifetime = Duration::from_secs(3);
    }
    let mut running = dir.spawn(BROKER, &["--loop", "1"]);
    let arrived = wait_until(Duration::from_secs(60), || {
        let got = receiver.ids();
        all.iter()
            .enumerate()
            .all(|(i, id)| i == 23 || got.contains(id))
            && !dir.lines("spool/dead-letter.jsonl").is_empty()
    });
    // A revoked token in the middle of the run: a new one, nothing lost.
    receiver.state().revoke_tokens();
    let more = sim.enqueue_generated("alerts", 5).unwrap();
    let more_ids = raw_ids(&more);
    let arrived_more = wait_until(Duration::from_secs(30), || {
        let got = receiver.ids();
        more_ids.iter().all(|id| got.contains(id))
    });
    let run = running.terminate(Duration::from_secs(10));
    assert!(arrived && arrived_more, "{}", describe(&run));
    let got = receiver.ids();
    assert!(!got.contains(&all[23]), "the refused row is not ingested");
    let dead = dir.lines("spool/dead-letter.jsonl");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter: Value = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!(letter["id"], all[23].as_str());
    let reason = letter["reason"].as_str().unwrap();
    assert!(
        reason.contains("answered 400 Bad Request: InvalidContent"),
        "{reason}"
    );
    let log = stdout(&run);
    assert!(log.contains("503 Service Unavailable"), "{log}");
    assert!(log.contains("429 Too Many Requests"), "{log}");
    assert!(receiver.ingestions().iter().any(|(_, s)| *s == Some(401)));
    assert_no_secret(&format!("{log}{}", describe(&run)), &dir);
}

#[test]
fn a_restart_loses_nothing() {
    let (sim, receiver, dir) = broker("alerts", "Batch = 5\n");
    let alerts = sim.enqueue_generated("alerts", 30).unwrap();
    let all = raw_ids(&alerts);
    receiver.state().unavailable = 1_000_000;
    let mut first = dir.spawn(BROKER, &["--loop", "1"]);
    let pulled = wait_until(Duration::from_secs(30), || sim.queue_len("alerts") == 0);
    let run = first.terminate(Duration::from_secs(10));
    assert!(pulled, "{}", describe(&run));
    assert!(receiver.ids().is_empty());
    receiver.state().unavailable = 0;
    let run = dir.run(BROKER, &[]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(receiver.ids(), all);
}

#[test]
fn refused_credentials_are_retried_loudly_and_never_dead_letter() {
    let (sim, receiver, dir) = broker("alerts", "");
    dir.write("secret", "Wr0ng-SECRET-value\n");
    receiver.state().echo_secret = true;
    sim.enqueue_generated("alerts", 5).unwrap();
    let mut running = dir.spawn(BROKER, &["--loop", "1"]);
    let logged = wait_until(Duration::from_secs(30), || {
        running.stdout_so_far().matches("AADSTS7000215").count() >= 2
    });
    receiver.state().forbidden = true;
    dir.write("secret", &format!("{CLIENT_SECRET}\n"));
    let run = running.terminate(Duration::from_secs(10));
    assert!(logged, "{}", describe(&run));
    let log = stdout(&run);
    let line = log.lines().find(|l| l.contains("AADSTS7000215")).unwrap();
    assert!(line.contains("pipe Sentinel:"), "{line}");
    assert!(line.contains("invalid_client"), "{line}");
    assert!(line.contains("retrying in"), "{line}");
    assert!(dir.lines("spool/dead-letter.jsonl").is_empty());
    assert!(receiver.state().rows.is_empty());
    assert_no_secret(&format!("{log}{}", describe(&run)), &dir);

    // 403 (no role assignment) is retried loudly too; the events wait.
    let mut running = dir.spawn(BROKER, &["--loop", "1"]);
    let logged = wait_until(Duration::from_secs(30), || {
        running.stdout_so_far().contains("403 Forbidden")
    });
    receiver.state().forbidden = false;
    let delivered = wait_until(Duration::from_secs(30), || receiver.ids().len() == 5);
    let run = running.terminate(Duration::from_secs(10));
    assert!(logged && delivered, "{}", describe(&run));
    assert!(dir.lines("spool/dead-letter.jsonl").is_empty());
}

#[test]
fn check_config_validates_every_key_offline_and_test_pipe_prints_the_answer() {
    let (_sim, receiver, dir) = broker("alerts", "Batch = 3\nTimeout = 10s\n");
    let out = dir.run(BROKER, &["--check-config"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        receiver.http.requests().is_empty(),
        "no network at --check-config"
    );
    assert!(!describe(&out).contains("SECRET"), "{}", describe(&out));

    let out = dir.run(BROKER, &["--test-pipe", "Sentinel"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains("pipe Sentinel: the receiver answered 204 No Content"),
        "{}",
        describe(&out)
    );
    assert_eq!(receiver.state().rows[0]["Type"], "test");

    let pipe = |keys: &str| format!("[Pipe.Sentinel]\nFrom = alerts\nTo = sentinel\n{keys}\n");
    let good = format!(
        "Endpoint = https://dce.example.com\nDcr = {DCR}\nStream = {STREAM}\nTenantId = {TENANT}\nClientId = {CLIENT_ID}\n"
    );
    for (keys, expected) in [
        (
            format!("{good}ClientSecret = A-SECRET-x\nBatch = 0"),
            "Batch: \"0\" is not a number of rows",
        ),
        (
            format!("{good}ClientSecretFile = {}", dir.path("none").display()),
            "ClientSecretFile: cannot read",
        ),
        (
            format!(
                "{}ClientSecret = A-SECRET-x",
                good.replace("https://dce.example.com", "http://SECRET.example.com")
            ),
            "Endpoint: http:// is only for a loopback",
        ),
        (
            format!("{good}ClientSecret = A-SECRET-x\nAuthorityHost = ftp://SECRET"),
            "AuthorityHost: scheme \"ftp\"",
        ),
        (
            good.replace("Dcr = ", "Dcr = SECRET"),
            "Dcr: is not a DCR immutable id",
        ),
        (
            good.clone(),
            "ClientSecret: is required (or ClientSecretFile)",
        ),
        (
            format!("{good}ClientSecret = A-SECRET-x\nTimeout = 0"),
            "Timeout:",
        ),
    ] {
        dir.write_config("https://127.0.0.1:1", &pipe(&keys));
        let out = dir.run(BROKER, &["--check-config"]);
        assert!(!out.status.success(), "{keys}: {}", describe(&out));
        let text = describe(&out);
        assert!(text.contains(expected), "{expected:?} in {text}");
        assert!(text.contains("pipe Sentinel"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
    }
}
