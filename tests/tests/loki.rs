//! End-to-end tests of the `loki` sink: the real broker pulls from the API simulator and pushes
//! to a Loki receiver over HTTPS with a test CA (tests/src/loki.rs), with Loki's faults.

use std::time::Duration;

use broker_tests::loki::{LokiReceiver, LokiState};
use broker_tests::{describe, expected_lines, simulator, stderr, stdout, wait_until, BrokerDir};

const BROKER: &str = "procustodibus-broker";
const PASSWORD: &str = "pa55-SECRET-word";
const TOKEN: &str = "t0ken-SECRET-value";
const ALERTS: &str = r#"{env="test", job="procustodibus-broker", type="alerts"}"#;
const AUTHN: &str = r#"{env="test", job="procustodibus-broker", type="log_authn"}"#;

/// A Loki pipe section named Loki for the receiver, with `extra` keys.
fn loki_pipe(from: &str, loki: &LokiReceiver, extra: &str) -> String {
    format!(
        "[Pipe.Loki]\nFrom = {from}\nTo = loki\nUrl = {}\nCA = {}\nLabel = env=test\n{extra}\n",
        loki.url(),
        loki.http.ca_path().display()
    )
}

/// A simulator, the receiver with `state`, and a set-up broker with the Loki pipe.
fn loki_broker(
    state: LokiState,
    from: &str,
    extra: &str,
) -> (broker_sim::Simulator, LokiReceiver, BrokerDir) {
    let sim = simulator(Default::default());
    let loki = LokiReceiver::start_tls(state);
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &loki_pipe(from, &loki, extra));
    dir.set_up(&sim);
    (sim, loki, dir)
}

/// The dead-letter lines, parsed.
fn dead_letters(dir: &BrokerDir) -> Vec<serde_json::Value> {
    dir.lines("spool/dead-letter.jsonl")
        .iter()
        .map(|l| serde_json::from_str(l).expect("dead letter JSON"))
        .collect()
}

/// Checks that no secret shows in a run's output or the dead-letter file.
fn assert_no_secret(out: &std::process::Output, dir: &BrokerDir) {
    let dead = dir.lines("spool/dead-letter.jsonl").join("\n");
    for text in [stdout(out), stderr(out), dead] {
        for secret in [PASSWORD, TOKEN, "SECRET"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

#[test]
fn every_event_arrives_in_its_stream_with_tenant_and_basic_auth() {
    let mut state = LokiState::loki();
    state.tenant = Some("team-a".into());
    state.authorization = Some(format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("broker:{PASSWORD}")
        )
    ));
    let (sim, loki, dir) = loki_broker(
        state,
        "alerts, log_authn",
        &format!("TenantId = team-a\nUser = broker\nPassword = {PASSWORD}\nBatch = 4\n"),
    );
    let alerts = sim.enqueue_generated("alerts", 10).unwrap();
    let logins = sim.enqueue_generated("log_authn", 5).unwrap();

    let out = dir.run(BROKER, &["-vv"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_no_secret(&out, &dir);
    let state = loki.state();
    assert_eq!(
        state.streams[ALERTS]
            .iter()
            .map(|e| e.line.clone())
            .collect::<Vec<_>>(),
        expected_lines(&alerts)
    );
    assert_eq!(
        state.streams[AUTHN]
            .iter()
            .map(|e| e.line.clone())
            .collect::<Vec<_>>(),
        expected_lines(&logins)
    );
    assert_eq!(state.streams.len(), 2);
    for entry in &state.streams[ALERTS] {
        let event: serde_json::Value = serde_json::from_str(&entry.line).unwrap();
        let created = event["attributes"]["created"].as_str().unwrap();
        let nanos = chrono::DateTime::parse_from_rfc3339(created)
            .unwrap()
            .timestamp_nanos_opt();
        assert_eq!(Some(entry.nanos), nanos);
    }
    drop(state);
    let requests = loki.http.requests();
    assert_eq!(requests.len(), 4, "15 events in requests of 4");
    for (request, status) in &requests {
        assert_eq!(*status, Some(204));
        assert_eq!(request.path, "/loki/api/v1/push");
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
    assert!(dead_letters(&dir).is_empty());
}

#[test]
fn faults_are_retried_and_every_event_arrives_once() {
    // A 503 burst, a 429, then a push taken whose answer never comes.
    let (sim, loki, dir) = loki_broker(
        LokiState::loki(),
        "alerts",
        &format!("Token = {TOKEN}\nBatch = 5\n"),
    );
    {
        let mut s = loki.state();
        s.busy = 3;
        s.throttled = (1, 1);
        s.drop_after = 1;
        s.authorization = Some(format!("Bearer {TOKEN}"));
    }
    let alerts = sim.enqueue_generated("alerts", 12).unwrap();
    let mut broker = dir.spawn(BROKER, &["--loop", "1"]);
    let arrived = wait_until(Duration::from_secs(60), || {
        loki.state().count() == alerts.len() && sim.queue_len("alerts") == 0
    });
    std::thread::sleep(Duration::from_millis(500));
    let out = broker.terminate(Duration::from_secs(10));
    assert!(arrived, "{}", describe(&out));
    assert_no_secret(&out, &dir);
    let state = loki.state();
    let lines: Vec<String> = state.streams[ALERTS]
        .iter()
        .map(|e| e.line.clone())
        .collect();
    assert_eq!(lines, expected_lines(&alerts), "each event once, in order");
    // The push whose answer was dropped is sent again: Loki keeps its entries once.
    assert_eq!(state.duplicates, 5);
    drop(state);
    let statuses: Vec<Option<u16>> = loki.http.requests().iter().map(|(_, s)| *s).collect();
    assert_eq!(
        statuses[..5],
        [Some(503), Some(503), Some(503), Some(429), None],
        "{}",
        describe(&out)
    );
    assert!(
        stdout(&out).contains("503") || stderr(&out).contains("503"),
        "{}",
        describe(&out)
    );
    assert!(dead_letters(&dir).is_empty());
}

#[test]
fn entries_loki_refuses_are_dead_lettered_with_its_words_and_the_rest_delivered_once() {
    let (sim, loki, dir) = loki_broker(LokiState::loki(), "alerts", "Batch = 10\n");
    let alerts = sim.enqueue_generated("alerts", 10).unwrap();
    let lines = expected_lines(&alerts);
    let id = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Loki refuses two entries in the middle of a push (as too far behind).
    let (third, seventh) = (id(&lines[2]), id(&lines[6]));
    loki.state().refuse_marked = vec![third.clone(), seventh.clone()];
    let out = dir.run(BROKER, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let dead = dead_letters(&dir);
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(
        (dead[0]["id"].as_str(), dead[1]["id"].as_str()),
        (Some(third.as_str()), Some(seventh.as_str()))
    );
    for letter in &dead {
        let reason = letter["reason"].as_str().unwrap();
        assert!(
            reason.contains("refused the entry (400): entry with timestamp"),
            "{reason}"
        );
        assert!(reason.contains("entry too far behind"), "{reason}");
    }
    let state = loki.state();
    let mut expected = lines.clone();
    expected.remove(6);
    expected.remove(2);
    let got: Vec<String> = state.streams[ALERTS]
        .iter()
        .map(|e| e.line.clone())
        .collect();
    assert_eq!(got, expected, "the others once");
    assert_eq!(state.duplicates, 0);
    assert_eq!(loki.http.requests().len(), 1, "nothing sent again");
}

#[test]
fn too_old_entries_are_dead_lettered_and_newer_ones_delivered() {
    let (sim, loki, dir) = loki_broker(LokiState::loki(), "alerts", "");
    let alerts = sim.enqueue_generated("alerts", 6).unwrap();
    let lines = expected_lines(&alerts);
    let created = |line: &str| {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        chrono::DateTime::parse_from_rfc3339(v["attributes"]["created"].as_str().unwrap())
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    };
    // Loki's reject_old_samples_max_age cuts between the third and fourth events.
    loki.state().oldest = Some(created(&lines[3]) / 1_000_000_000 * 1_000_000_000);
    let out = dir.run(BROKER, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let dead = dead_letters(&dir);
    assert_eq!(dead.len(), 3, "{dead:?}");
    for letter in &dead {
        let reason = letter["reason"].as_str().unwrap();
        assert!(reason.contains("has timestamp too old"), "{reason}");
    }
    let got: Vec<String> = loki.state().streams[ALERTS]
        .iter()
        .map(|e| e.line.clone())
        .collect();
    assert_eq!(got, lines[3..]);
}

#[test]
fn a_413_splits_the_request_and_an_event_too_large_alone_is_dead_lettered() {
    let (sim, loki, dir) = loki_broker(LokiState::loki(), "alerts", "Batch = 8\n");
    let alerts = sim.enqueue_generated("alerts", 8).unwrap();
    let lines = expected_lines(&alerts);
    let longest = lines.iter().map(String::len).max().unwrap();
    // Room for about three events per request, and for every event alone.
    loki.state().max_body = Some(3 * longest + 400);
    let out = dir.run(BROKER, &["-v"]);
    assert!(out.status.success(), "{}", describe(&out));
    let got: Vec<String> = loki.state().streams[ALERTS]
        .iter()
        .map(|e| e.line.clone())
        .collect();
    assert_eq!(got, lines);
    let statuses: Vec<Option<u16>> = loki.http.requests().iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses[0], Some(413));
    assert!(dead_letters(&dir).is_empty());
}

#[test]
fn a_refused_request_is_retried_loudly_never_dead_lettered_and_kept_across_a_restart() {
    for (status, body) in [
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (404, "404 page not found"),
        (
            400,
            "error at least one valid stream is required for ingestion",
        ),
    ] {
        let (sim, loki, dir) =
            loki_broker(LokiState::loki(), "alerts", &format!("Token = {TOKEN}\n"));
        loki.state().refuse_all = Some((status, body.to_string()));
        let alerts = sim.enqueue_generated("alerts", 4).unwrap();
        let mut broker = dir.spawn(BROKER, &["--loop", "1"]);
        wait_until(Duration::from_secs(20), || loki.http.requests().len() >= 2);
        let out = broker.terminate(Duration::from_secs(10));
        let log = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            log.contains("pipe Loki") && log.contains(&status.to_string()) && log.contains(body),
            "{}",
            describe(&out)
        );
        assert!(dead_letters(&dir).is_empty(), "{status}");
        assert_no_secret(&out, &dir);
        assert_eq!(loki.state().count(), 0);
        // Loki fixed, a new start delivers what waited in the spool.
        loki.state().refuse_all = None;
        let out = dir.run(BROKER, &[]);
        assert!(out.status.success(), "{}", describe(&out));
        let got: Vec<String> = loki.state().streams[ALERTS]
            .iter()
            .map(|e| e.line.clone())
            .collect();
        assert_eq!(got, expected_lines(&alerts), "{status}");
    }
}

#[test]
fn check_config_validates_every_key_offline_and_test_pipe_prints_lokis_answer() {
    let sim = simulator(Default::default());
    let loki = LokiReceiver::start_tls(LokiState::loki());
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        &loki_pipe(
            "alerts",
            &loki,
            &format!("Label = 2bad=x\nToken = {TOKEN}\n"),
        ),
    );
    let out = dir.run(BROKER, &["--check-config"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("Label") && text.contains("\"2bad\" is not a label name"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
    dir.write_config(
        &sim.url(),
        &loki_pipe("alerts", &loki, "TokenFile = /nonexistent/loki-token\n"),
    );
    let out = dir.run(BROKER, &["--check-config"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        !out.status.success() && text.contains("/nonexistent/loki-token"),
        "{text}"
    );
    assert!(
        loki.http.requests().is_empty(),
        "--check-config sends nothing"
    );

    dir.write_config(
        &sim.url(),
        &loki_pipe("alerts", &loki, &format!("Token = {TOKEN}\n")),
    );
    dir.set_up(&sim);
    let out = dir.run(BROKER, &["--test-pipe", "Loki"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stdout(&out).contains("204"), "{}", describe(&out));
    assert!(!stdout(&out).contains(TOKEN));
    let state = loki.state();
    assert_eq!(state.count(), 1);
    let test = r#"{env="test", job="procustodibus-broker", type="test"}"#;
    assert_eq!(state.streams[test].len(), 1);
}

#[test]
fn entries_ignored_beyond_those_loki_names_are_sent_again_until_named() {
    let mut state = LokiState::loki();
    // Loki names one refused entry per stream and counts the others.
    state.max_named = 1;
    let (sim, loki, dir) = loki_broker(state, "alerts", "Batch = 10\n");
    let alerts = sim.enqueue_generated("alerts", 8).unwrap();
    let lines = expected_lines(&alerts);
    let id = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let refused: Vec<String> = [1, 4, 5].iter().map(|i| id(&lines[*i])).collect();
    loki.state().refuse_marked = refused.clone();
    let mut broker = dir.spawn(BROKER, &["--loop", "1", "-v"]);
    let done = wait_until(Duration::from_secs(60), || {
        dead_letters(&dir).len() == 3 && loki.state().count() == 5
    });
    let out = broker.terminate(Duration::from_secs(10));
    assert!(done, "{}", describe(&out));
    let dead: Vec<String> = dead_letters(&dir)
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(dead, refused);
    let got: Vec<String> = loki.state().streams[ALERTS]
        .iter()
        .map(|e| e.line.clone())
        .collect();
    let expected: Vec<String> = [0, 2, 3, 6, 7].iter().map(|i| lines[*i].clone()).collect();
    assert_eq!(
        got, expected,
        "the others once in Loki (resent ones deduplicated)"
    );
    assert!(
        stdout(&out).contains("counted more ignored entries than it named")
            || stderr(&out).contains("counted more ignored entries than it named"),
        "{}",
        describe(&out)
    );
}
