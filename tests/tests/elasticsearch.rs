//! The `elasticsearch` sink end to end: the stock broker pulling from the API simulator and
//! storing the events over HTTPS (test CA) in the Elasticsearch `_bulk` receiver of
//! `broker_tests::elasticsearch`, which keeps its index by `_id`.
//!
//! Every event arrives exactly once (a resend after a dropped connection or a restart is
//! answered 409 and counts as delivered); per-item 429s are resent alone; an event refused for
//! itself (400 `mapper_parsing_exception`, larger than `MaxBytes`) is dead-lettered with the
//! reason; 413 and 503 bursts lose nothing; a refusal of the request (401, a missing index) is
//! retried loudly and never dead-letters; the API key never shows; `--check-config` checks every
//! key offline; `--test-pipe` prints the receiver's answer.
//!
//! The binaries come from cargo's target directory (`cargo build --workspace --bins`).

use std::collections::HashSet;
use std::process::Output;
use std::time::Duration;

use broker_sim::Simulator;
use broker_tests::elasticsearch::{ElasticReceiver, Faults};
use broker_tests::*;

const STOCK: &str = "procustodibus-broker";
/// The API key: it must never show in a log, a message or the dead-letter file.
const API_KEY: &str = "ZXMta2V5LVNFQ1JFVC04YjFj";
/// The default index, a data stream.
const INDEX: &str = "logs-procustodibus-default";
/// An API address for the runs that never call the API.
const NO_API: &str = "http://127.0.0.1:9";

/// A simulator, a receiver that requires [`API_KEY`] with `faults`, and a broker with
/// credentials and one pipe `Es` of the alerts to the receiver, with the keys `extra`.
fn es_broker(faults: Faults, extra: &str) -> (Simulator, ElasticReceiver, BrokerDir) {
    let sim = simulator(Default::default());
    let receiver = ElasticReceiver::start_tls(Faults {
        authorization: Some(format!("ApiKey {API_KEY}")),
        ..faults
    });
    let dir = BrokerDir::new();
    dir.write("es.key", &format!("{API_KEY}\n"));
    dir.write_config(&sim.url(), &es_pipe(&receiver, &dir, extra));
    let public = write_credentials(&dir.credentials(), [7; 32]);
    sim.add_key(BROKER_ID, public);
    (sim, receiver, dir)
}

/// The pipe `Es` to `receiver` with the API key file and the keys `extra`.
fn es_pipe(receiver: &ElasticReceiver, dir: &BrokerDir, extra: &str) -> String {
    format!(
        "[Pipe.Es]\nFrom = alerts\nTo = elasticsearch\nUrl = {}\nApiKeyFile = {}\nCA = {}\n{extra}\n",
        receiver.url(),
        dir.path("es.key").display(),
        receiver.ca_path().display()
    )
}

/// The `id`s of raw events.
fn ids(raws: &[String]) -> HashSet<String> {
    raws.iter().map(|r| id_of(r)).collect()
}

fn id_of(raw: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(raw).expect("event JSON");
    value["id"].as_str().expect("string id").to_string()
}

fn dead_letters(dir: &BrokerDir) -> Vec<String> {
    dir.lines("spool/dead-letter.jsonl")
}

/// Checks that the API key shows in no output and no dead letter.
fn assert_no_secret(run: &Output, dir: &BrokerDir) {
    let dead = dead_letters(dir).join("\n");
    for text in [stdout(run), stderr(run), dead] {
        assert!(!text.contains(API_KEY), "{}", describe(run));
        assert!(!text.contains("SECRET"), "{}", describe(run));
    }
}

/// Runs the broker in `--loop` mode until `index` holds `count` documents (or 60 s), then a
/// moment more for a duplicate to show, and stops it.
fn run_until_stored(dir: &BrokerDir, receiver: &ElasticReceiver, count: usize) -> Output {
    let mut broker = dir.spawn(STOCK, &["--loop", "1"]);
    receiver.wait_for(INDEX, count, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    broker.terminate(Duration::from_secs(10))
}

#[test]
fn every_event_is_stored_once_by_its_id_with_a_timestamp() {
    let (sim, receiver, dir) = es_broker(Faults::default(), "Batch = 7");
    let alerts = sim.enqueue_generated("alerts", 30).unwrap();
    let run = dir.run(STOCK, &[]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(receiver.ids(INDEX), ids(&alerts));
    let state = receiver.state();
    assert_eq!(state.stored.len(), 30, "each once");
    for raw in &alerts {
        let event: serde_json::Value = serde_json::from_str(raw).unwrap();
        let doc = &state.docs[&(INDEX.to_string(), id_of(raw))];
        assert_eq!(doc["@timestamp"], event["attributes"]["created"]);
        assert_eq!(doc["attributes"], event["attributes"]);
    }
    drop(state);
    let requests = receiver.http().requests();
    assert_eq!(requests.len(), 5, "30 events in requests of 7");
    for (request, status) in &requests {
        assert_eq!(*status, Some(200));
        assert_eq!(request.path, format!("/{INDEX}/_bulk"));
        assert_eq!(request.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(
            request.header("authorization"),
            Some(format!("ApiKey {API_KEY}").as_str())
        );
    }
    assert!(dead_letters(&dir).is_empty());
    assert_no_secret(&run, &dir);
}

#[test]
fn a_connection_dropped_after_the_receiver_stored_the_batch_is_resent_and_counted_once() {
    let faults = Faults {
        drop_after_store: 2,
        ..Faults::default()
    };
    let (sim, receiver, dir) = es_broker(faults, "Batch = 10");
    let alerts = sim.enqueue_generated("alerts", 25).unwrap();
    let run = run_until_stored(&dir, &receiver, 25);
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    assert_eq!(receiver.ids(INDEX), ids(&alerts));
    let state = receiver.state();
    assert_eq!(state.stored.len(), 25, "every id stored once");
    assert_eq!(
        state.conflicts, 20,
        "both dropped requests sent again: 409s"
    );
    drop(state);
    let statuses: Vec<_> = receiver.http().requests().iter().map(|r| r.1).collect();
    assert_eq!(statuses.iter().filter(|s| s.is_none()).count(), 2);
    assert!(dead_letters(&dir).is_empty(), "{:?}", dead_letters(&dir));
}

#[test]
fn a_restart_after_a_dropped_answer_stores_nothing_twice() {
    let faults = Faults {
        drop_after_store: 1,
        ..Faults::default()
    };
    let (sim, receiver, dir) = es_broker(faults, "");
    let alerts = sim.enqueue_generated("alerts", 12).unwrap();
    // A one-shot run: stored, but the answer lost; the events stay in the spool.
    let run = dir.run(STOCK, &[]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert_eq!(receiver.ids(INDEX).len(), 12);
    // The next run sends them again: 409 each, delivered, the spool emptied.
    let run = dir.run(STOCK, &[]);
    assert!(run.status.success(), "{}", describe(&run));
    let state = receiver.state();
    assert_eq!((state.stored.len(), state.conflicts), (12, 12));
    drop(state);
    assert_eq!(receiver.ids(INDEX), ids(&alerts));
    let run = dir.run(STOCK, &[]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(receiver.http().requests().len(), 2, "nothing left to send");
}

#[test]
fn per_item_429s_are_resent_alone_and_a_mapping_error_is_dead_lettered() {
    let sim = simulator(Default::default());
    let alerts = sim.enqueue_generated("alerts", 10).unwrap();
    let mut faults = Faults::default();
    faults.busy.insert(id_of(&alerts[2]), 2);
    faults.busy.insert(id_of(&alerts[7]), 1);
    let bad = id_of(&alerts[5]);
    faults.unparsable.insert(bad.clone());
    let receiver = ElasticReceiver::start_tls(Faults {
        authorization: Some(format!("ApiKey {API_KEY}")),
        ..faults
    });
    let dir = BrokerDir::new();
    dir.write("es.key", API_KEY);
    dir.write_config(&sim.url(), &es_pipe(&receiver, &dir, ""));
    sim.add_key(BROKER_ID, write_credentials(&dir.credentials(), [7; 32]));

    let run = run_until_stored(&dir, &receiver, 9);
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let mut good = ids(&alerts);
    good.remove(&bad);
    assert_eq!(receiver.ids(INDEX), good);
    let state = receiver.state();
    assert_eq!(state.stored.len(), 9, "each once");
    assert_eq!(state.rejected_busy, 3);
    drop(state);
    // The first request carries all ten; the next ones only the events not yet settled.
    let sizes: Vec<usize> = receiver
        .http()
        .requests()
        .iter()
        .map(|(r, _)| r.text().lines().count() / 2)
        .collect();
    assert_eq!(sizes[0], 10, "{sizes:?}");
    assert!(sizes[1..].iter().all(|n| *n <= 2), "{sizes:?}");

    let dead = dead_letters(&dir);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter: serde_json::Value = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!(letter["id"], bad.as_str());
    let reason = letter["reason"].as_str().unwrap();
    assert!(reason.starts_with("https://127.0.0.1:"), "{reason}");
    assert!(
        reason.contains("refused the event: 400 mapper_parsing_exception: failed to parse"),
        "{reason}"
    );
    let log = stdout(&run);
    assert!(
        log.contains("es_rejected_execution_exception"),
        "the 429s are logged: {log}"
    );
    assert_no_secret(&run, &dir);
}

#[test]
fn a_413_splits_the_request_a_503_burst_waits_and_an_event_over_max_bytes_is_dead_lettered() {
    let faults = Faults {
        max_body: Some(6000),
        unavailable: 3,
        retry_after: Some("1".to_string()),
        ..Faults::default()
    };
    let (sim, receiver, dir) = es_broker(faults, "MaxBytes = 8K\nBatch = 40");
    let mut alerts = sim.enqueue_generated("alerts", 20).unwrap();
    let big = format!(
        r#"{{"type":"alerts","id":"big-1","attributes":{{"created":"2024-05-01T00:00:00Z","description":"{}"}}}}"#,
        "x".repeat(9000)
    );
    sim.enqueue("alerts", &big).unwrap();
    alerts.extend(sim.enqueue_generated("alerts", 5).unwrap());

    let run = run_until_stored(&dir, &receiver, 25);
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    assert_eq!(receiver.ids(INDEX), ids(&alerts));
    assert_eq!(receiver.state().stored.len(), 25, "each once");
    let requests = receiver.http().requests();
    let statuses: Vec<_> = requests.iter().map(|r| r.1).collect();
    assert_eq!(&statuses[..3], [Some(503); 3], "{statuses:?}");
    assert!(statuses.contains(&Some(413)), "{statuses:?}");
    assert!(
        requests.iter().all(|(r, _)| r.body.len() <= 8192),
        "no body over MaxBytes"
    );
    // Retry-After: 1 between the 503s.
    assert!(requests[2].0.at - requests[1].0.at >= Duration::from_millis(900));

    let dead = dead_letters(&dir);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].contains("more than MaxBytes (8192 bytes)") && dead[0].contains("big-1"),
        "{dead:?}"
    );
    let log = stdout(&run);
    assert!(log.contains("answered 503 Service Unavailable"), "{log}");
    assert_no_secret(&run, &dir);
}

#[test]
fn a_wrong_key_or_a_missing_index_is_retried_loudly_and_never_dead_letters() {
    let faults = Faults {
        echo_credentials: true,
        ..Faults::default()
    };
    let (sim, receiver, dir) = es_broker(faults, "Batch = 4");
    receiver.state().faults.authorization = Some("ApiKey the-right-one".to_string());
    let alerts = sim.enqueue_generated("alerts", 10).unwrap();

    let mut broker = dir.spawn(STOCK, &["--loop", "1"]);
    let refused = |text: &str| lines_containing(&broker.stdout_so_far(), text).len();
    assert!(
        wait_until(Duration::from_secs(30), || refused("401 Unauthorized") >= 2),
        "{}",
        broker.stdout_so_far()
    );
    let log = broker.stdout_so_far();
    let line = lines_containing(&log, "401 Unauthorized")[0].clone();
    assert!(line.contains("pipe Es: https://127.0.0.1:"), "{line}");
    assert!(line.contains("security_exception"), "{line}");
    assert!(line.contains("check ApiKey"), "{line}");
    assert!(line.contains("10 events waiting; retrying in"), "{line}");

    // The key is right, the data stream missing: each item 404, retried too.
    {
        let mut state = receiver.state();
        state.faults.authorization = Some(format!("ApiKey {API_KEY}"));
        state.faults.missing_index = true;
    }
    assert!(
        wait_until(Duration::from_secs(30), || refused(
            "index_not_found_exception"
        ) >= 2),
        "{}",
        broker.stdout_so_far()
    );
    assert!(dead_letters(&dir).is_empty(), "{:?}", dead_letters(&dir));
    assert_eq!(receiver.ids(INDEX).len(), 0);

    // Fixed: everything arrives, once.
    receiver.state().faults.missing_index = false;
    receiver.wait_for(INDEX, 10, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let run = broker.terminate(Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    assert_eq!(receiver.ids(INDEX), ids(&alerts));
    assert_eq!(receiver.state().stored.len(), 10);
    assert!(dead_letters(&dir).is_empty(), "{:?}", dead_letters(&dir));
    assert_no_secret(&run, &dir);
}

#[test]
fn check_config_checks_every_key_offline_without_showing_a_secret() {
    let dir = BrokerDir::new();
    write_credentials(&dir.credentials(), [7; 32]);
    dir.write("es.key", API_KEY);
    let pipe = |extra: &str| {
        format!("[Pipe.Es]\nFrom = alerts\nTo = elasticsearch\nUrl = https://es.invalid:9200\n{extra}\n")
    };
    let key_file = dir.path("es.key").display().to_string();
    dir.write_config(
        NO_API,
        &pipe(&format!(
            "ApiKeyFile = {key_file}\nPipeline = p\nMaxBytes = 5M"
        )),
    );
    let run = dir.run(STOCK, &["--check-config"]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(stdout(&run).matches(API_KEY).count(), 0);

    for (extra, expected) in [
        (
            "ApiKeyFile = /no/such/es.key",
            "pipe Es: ApiKeyFile: cannot read /no/such/es.key",
        ),
        (
            "ApiKey = SECRET-1\nUser = elastic\nPassword = SECRET-2",
            "pipe Es: ApiKey: set ApiKey or User and Password, not both",
        ),
        ("User = elastic", "pipe Es: User: needs Password"),
        (
            "Index = Bad Index",
            "pipe Es: Index: \"Bad Index\" is not an index name",
        ),
        ("Batch = 0", "pipe Es: Batch:"),
        ("MaxBytes = 1G", "pipe Es: MaxBytes: must be at most"),
        ("Timeout = never", "pipe Es: Timeout:"),
        (
            "Url = http://es.example.com/SECRET",
            "pipe Es: Url: http:// is only for a loopback host",
        ),
        ("Proxy = SECRET", "pipe Es: Proxy: not a proxy URL"),
    ] {
        dir.write_config(NO_API, &pipe(extra));
        let run = dir.run(STOCK, &["--check-config"]);
        assert_eq!(run.status.code(), Some(1), "{extra}: {}", describe(&run));
        let text = format!("{}{}", stdout(&run), stderr(&run));
        assert!(text.contains(expected), "{expected}: {}", describe(&run));
        assert!(!text.contains("SECRET"), "{}", describe(&run));
    }
}

#[test]
fn test_pipe_prints_what_the_receiver_answered() {
    let receiver = ElasticReceiver::start_tls(Faults::default());
    let dir = BrokerDir::new();
    dir.write("es.key", API_KEY);
    dir.write_config(NO_API, &es_pipe(&receiver, &dir, ""));
    let run = dir.run(STOCK, &["--test-pipe", "Es"]);
    assert!(run.status.success(), "{}", describe(&run));
    let answered = lines_containing(&stdout(&run), "pipe Es: the receiver answered 200 OK: ");
    assert_eq!(answered.len(), 1, "{}", describe(&run));
    assert!(answered[0].contains("\"status\":201"), "{}", describe(&run));
    assert_eq!(receiver.ids(INDEX).len(), 1);
    assert_no_secret(&run, &dir);
}
