//! The `splunk` sink end to end: the real broker pulls from the simulator and delivers into a
//! Splunk HTTP Event Collector that behaves as Splunk documents it (`broker_tests::splunk_hec`),
//! over HTTPS with a test CA: every event arrives as an HEC event object; indexer
//! acknowledgement (a lost ack means the batch is sent again); 503, 429 and a dropped
//! connection are retried and nothing is lost, across a restart too; an event HEC refuses goes
//! alone to the dead-letter file with HEC's reason; a wrong token or index is retried loudly and
//! never dead-lettered; 413 splits requests; `--check-config` and `--test-pipe`; the token never
//! shows.

use std::collections::BTreeSet;
use std::process::Output;
use std::time::Duration;

use broker_tests::splunk_hec::{SplunkHec, ACK_PATH, EVENT_PATH};
use broker_tests::*;

const STOCK: &str = "procustodibus-broker";
/// The HEC token: it must never show in a log, a message or the dead-letter file.
const TOKEN: &str = "6f1c0d2e-SECRET-TOKEN-7d2e";

/// A simulator, a collector and a broker with credentials and one pipe `Hec` from `from` to the
/// collector with the sink keys `extra`.
fn set_up(from: &str, extra: &str) -> (broker_sim::Simulator, SplunkHec, BrokerDir) {
    let sim = simulator(Default::default());
    let hec = SplunkHec::start(TOKEN);
    let dir = BrokerDir::new();
    dir.write("token", &format!("{TOKEN}\n"));
    let pipe = format!(
        "[Pipe.Hec]\nFrom = {from}\nTo = splunk\nUrl = {}\nTokenFile = {}\nCA = {}\nTimeout = 5\n{extra}\n",
        hec.url(),
        dir.path("token").display(),
        hec.ca_path().display()
    );
    dir.write_config(&sim.url(), &pipe);
    let public = write_credentials(&dir.credentials(), [7; 32]);
    sim.add_key(BROKER_ID, public);
    (sim, hec, dir)
}

/// The lines of the dead-letter file.
fn dead_letters(dir: &BrokerDir) -> Vec<String> {
    dir.lines("spool/dead-letter.jsonl")
}

/// Checks that the token shows in neither the run's output nor the dead-letter file.
fn assert_no_secret(run: &Output, dir: &BrokerDir) {
    let dead = dead_letters(dir).join("\n");
    for text in [stdout(run), stderr(run), dead] {
        assert!(!text.contains("SECRET"), "{text}");
    }
}

/// The `id` of a raw event.
fn id_of(raw: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(raw).expect("event JSON");
    value["id"].as_str().expect("string id").to_string()
}

/// The event requests the collector got, with their status.
fn event_requests(hec: &SplunkHec) -> Vec<(broker_tests::http_receiver::Request, Option<u16>)> {
    hec.requests()
        .into_iter()
        .filter(|(r, _)| r.path.starts_with(EVENT_PATH))
        .collect()
}

#[test]
fn every_event_arrives_as_an_hec_event_object() {
    let (sim, hec, dir) = set_up(
        "alerts, log_authn",
        "Batch = 4\nIndex = wireguard\nSource = broker-test\nHost = vpn-1\n",
    );
    let alerts = sim.enqueue_generated("alerts", 10).unwrap();
    let logins = sim.enqueue_generated("log_authn", 5).unwrap();

    let run = dir.run(STOCK, &["-vv"]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_no_secret(&run, &dir);

    let mut expected = expected_lines(&alerts);
    expected.extend(expected_lines(&logins));
    assert_eq!(hec.events(), expected, "each event once, in order");
    let indexed = hec.hec().indexed.clone();
    for (n, item) in indexed.iter().enumerate() {
        let object = &item.object;
        let kind = if n < alerts.len() {
            "alerts"
        } else {
            "log_authn"
        };
        assert_eq!(object["sourcetype"], format!("procustodibus:{kind}"));
        assert_eq!(object["index"], "wireguard");
        assert_eq!(object["source"], "broker-test");
        assert_eq!(object["host"], "vpn-1");
        // `time` is the event's created, in epoch seconds.
        let created = object["event"]["attributes"]["created"].as_str().unwrap();
        let created = chrono::DateTime::parse_from_rfc3339(created).unwrap();
        let time = object["time"].as_f64().expect("time");
        assert!(
            (time - created.timestamp_micros() as f64 / 1e6).abs() < 1e-3,
            "{object}"
        );
    }
    let requests = event_requests(&hec);
    let sizes: Vec<usize> = requests
        .iter()
        .map(|(r, _)| {
            serde_json::Deserializer::from_slice(&r.body)
                .into_iter::<serde_json::Value>()
                .count()
        })
        .collect();
    // One delivery of the 15 events (queue after queue), cut into requests of 4.
    assert_eq!(sizes, [4, 4, 4, 3]);
    for (request, status) in &requests {
        assert_eq!(*status, Some(200));
        assert_eq!(
            request.header("authorization"),
            Some(format!("Splunk {TOKEN}").as_str())
        );
        let channel = request.header("x-splunk-request-channel").expect("channel");
        assert_eq!(channel.len(), 36, "{channel}");
    }
    assert!(
        hec.requests()
            .iter()
            .all(|(r, _)| !r.path.starts_with(ACK_PATH)),
        "Ack = no asks nothing"
    );
    assert_eq!(sim.queue_len("alerts") + sim.queue_len("log_authn"), 0);
}

#[test]
fn with_ack_a_batch_counts_once_indexed_and_a_lost_ack_is_sent_again() {
    let (sim, hec, dir) = set_up("alerts", "Batch = 5\nAck = yes\nAckTimeout = 1\n");
    {
        let mut state = hec.hec();
        state.ack = true;
        state.ack_delay = Duration::from_millis(200);
        state.lose_acks = 1;
    }
    let alerts = sim.enqueue_generated("alerts", 12).unwrap();
    let expected = expected_lines(&alerts);

    let mut broker = dir.spawn(STOCK, &["--loop", "1"]);
    // The first request's ack is lost: after AckTimeout its events (and those of the requests
    // after it in the same delivery) go again.
    let twice = |events: &[String]| {
        expected[..5]
            .iter()
            .all(|e| events.iter().filter(|x| *x == e).count() == 2)
    };
    let done = wait_until(Duration::from_secs(30), || {
        let events = hec.events();
        twice(&events) && expected.iter().all(|e| events.contains(e))
    });
    std::thread::sleep(Duration::from_millis(500));
    let run = broker.terminate(Duration::from_secs(10));
    assert!(done, "{:?}\n{}", hec.events().len(), describe(&run));
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    assert_no_secret(&run, &dir);
    let events = hec.events();
    let distinct: BTreeSet<&String> = events.iter().collect();
    assert_eq!(distinct, expected.iter().collect(), "{}", describe(&run));
    assert_eq!(&events[..5], &expected[..5]);
    assert!(events.len() <= 2 * expected.len(), "{}", events.len());
    let log = stdout(&run);
    assert!(
        log.contains("did not acknowledge 1 of ") && log.contains("AckTimeout (1 s)"),
        "{log}"
    );
    // One channel, kept in the spool directory, on every request.
    let channel = std::fs::read_to_string(dir.spool().join("splunk-channel-Hec")).unwrap();
    let channel = channel.trim();
    assert!(hec
        .requests()
        .iter()
        .all(|(r, _)| r.header("x-splunk-request-channel") == Some(channel)));
    assert!(hec
        .requests()
        .iter()
        .any(|(r, _)| r.path.starts_with(ACK_PATH)));
    assert!(dead_letters(&dir).is_empty());

    // After a restart the same channel again.
    let more = sim.enqueue_generated("alerts", 3).unwrap();
    let run = dir.run(STOCK, &[]);
    assert!(run.status.success(), "{}", describe(&run));
    let last = hec.requests().last().cloned().unwrap().0;
    assert_eq!(last.header("x-splunk-request-channel"), Some(channel));
    assert!(hec.events().ends_with(&expected_lines(&more)));
}

#[test]
fn busy_throttled_and_dropped_requests_are_retried_and_nothing_is_lost_across_a_restart() {
    let (sim, hec, dir) = set_up("alerts", "Batch = 4\nAck = yes\n");
    {
        let mut state = hec.hec();
        state.ack = true;
        state.ack_delay = Duration::from_secs(1);
        state.busy = 2;
        state.too_many = 1;
        state.retry_after = Some("1".to_string());
        state.drop_after_indexing = 1;
    }
    let alerts = sim.enqueue_generated("alerts", 10).unwrap();
    let expected = expected_lines(&alerts);

    let mut broker = dir.spawn(STOCK, &["--loop", "1"]);
    // Stop the broker while it waits for an acknowledgement, then start it again.
    let waited = wait_until(Duration::from_secs(30), || {
        hec.requests()
            .iter()
            .any(|(r, _)| r.path.starts_with(ACK_PATH))
    });
    assert!(waited, "{}", broker.stdout_so_far());
    let first = broker.terminate(Duration::from_secs(10));
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
    let mut broker = dir.spawn(STOCK, &["--loop", "1"]);
    let all = wait_until(Duration::from_secs(60), || {
        let events = hec.events();
        expected.iter().all(|e| events.contains(e))
    });
    std::thread::sleep(Duration::from_secs(2));
    let second = broker.terminate(Duration::from_secs(10));
    assert!(all, "{}\n{}", describe(&first), describe(&second));
    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    assert_no_secret(&first, &dir);
    assert_no_secret(&second, &dir);
    let statuses: Vec<Option<u16>> = event_requests(&hec).iter().map(|(_, s)| *s).collect();
    assert_eq!(
        &statuses[..4],
        &[Some(503), Some(503), Some(429), None],
        "{statuses:?}"
    );
    let log = format!("{}{}", stdout(&first), stdout(&second));
    assert!(log.contains("answered 503 Service Unavailable"), "{log}");
    assert!(log.contains("answered 429 Too Many Requests"), "{log}");
    assert!(log.contains("Retry-After: waiting at least 1 s"), "{log}");
    assert!(dead_letters(&dir).is_empty(), "{:?}", dead_letters(&dir));
}

#[test]
fn an_event_hec_refuses_is_dead_lettered_alone_and_the_others_delivered() {
    let (sim, hec, dir) = set_up("alerts", "Batch = 3\n");
    let alerts = sim.enqueue_generated("alerts", 7).unwrap();
    let bad = id_of(&alerts[4]);
    hec.hec().refuse_containing = Some(format!("\"id\":\"{bad}\""));

    let run = dir.run(STOCK, &[]);
    assert!(
        run.status.success(),
        "a dead letter is not a failed run: {}",
        describe(&run)
    );
    assert_no_secret(&run, &dir);
    let mut good = expected_lines(&alerts);
    let refused = good.remove(4);
    assert_eq!(hec.events(), good, "every other event once, in order");
    // 0-2 taken; 3-5 refused at 1; 3 again alone; 4 alone refused; then 5-6.
    let statuses: Vec<(usize, Option<u16>)> = event_requests(&hec)
        .iter()
        .map(|(r, s)| {
            let n = serde_json::Deserializer::from_slice(&r.body)
                .into_iter::<serde_json::Value>()
                .count();
            (n, *s)
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (3, Some(200)),
            (3, Some(400)),
            (1, Some(200)),
            (1, Some(400)),
            (2, Some(200))
        ]
    );
    let dead = dead_letters(&dir);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter: serde_json::Value = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!(letter["pipe"], "Hec");
    assert_eq!(letter["id"], bad.as_str());
    assert!(
        dead[0].contains(&format!("\"event\":{refused}")),
        "{}",
        dead[0]
    );
    let reason = letter["reason"].as_str().unwrap();
    assert!(reason.contains("answered 400 Bad Request"), "{reason}");
    assert!(reason.contains("Invalid data format"), "{reason}");
    assert!(reason.contains("\"invalid-event-number\":0"), "{reason}");
}

#[test]
fn a_wrong_token_or_index_is_retried_loudly_and_never_dead_lettered() {
    let (sim, hec, dir) = set_up("alerts", "Batch = 4\nIndex = wireguard\n");
    {
        let mut state = hec.hec();
        state.indexes = Some(vec!["main".to_string()]);
        state.token_disabled = true;
    }
    let alerts = sim.enqueue_generated("alerts", 6).unwrap();
    let mut broker = dir.spawn(STOCK, &["--loop", "1"]);
    let token_lines = || lines_containing(&broker.stdout_so_far(), "check Token");
    assert!(
        wait_until(Duration::from_secs(30), || token_lines().len() >= 2),
        "{}",
        broker.stdout_so_far()
    );
    for line in token_lines() {
        assert!(line.contains("pipe Hec: https://127.0.0.1:"), "{line}");
        assert!(line.contains("answered 403 Forbidden"), "{line}");
        assert!(line.contains("Token disabled"), "{line}");
        assert!(line.contains("6 events waiting; retrying in"), "{line}");
    }
    // The token is enabled, but the index is not the token's.
    hec.hec().token_disabled = false;
    let index_lines = || lines_containing(&broker.stdout_so_far(), "check Index");
    assert!(
        wait_until(Duration::from_secs(30), || index_lines().len() >= 2),
        "{}",
        broker.stdout_so_far()
    );
    assert!(index_lines().iter().all(|l| l.contains("Incorrect index")));
    assert!(dead_letters(&dir).is_empty(), "{:?}", dead_letters(&dir));
    assert!(hec.events().is_empty());
    // Fixed: everything arrives once.
    hec.hec().indexes = None;
    let events = hec.wait_for_events(alerts.len(), Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let run = broker.terminate(Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    assert_eq!(events, expected_lines(&alerts));
    assert_eq!(hec.events(), expected_lines(&alerts));
    assert!(dead_letters(&dir).is_empty());
    assert_no_secret(&run, &dir);
}

#[test]
fn a_request_too_large_is_split() {
    let (sim, hec, dir) = set_up("alerts", "Batch = 8\n");
    let alerts = sim.enqueue_generated("alerts", 8).unwrap();
    let longest = alerts.iter().map(String::len).max().unwrap();
    // Room for about two events per request.
    hec.hec().max_body = Some(2 * longest + 400);
    let run = dir.run(STOCK, &[]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(hec.events(), expected_lines(&alerts));
    assert!(event_requests(&hec).iter().any(|(_, s)| *s == Some(413)));
    assert!(dead_letters(&dir).is_empty());
}

#[test]
fn check_config_validates_offline_and_test_pipe_prints_the_answer() {
    let (_sim, hec, dir) = set_up("alerts", "Ack = yes\n");
    hec.hec().ack = true;
    let run = dir.run(STOCK, &["--check-config"]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_no_secret(&run, &dir);
    assert!(hec.requests().is_empty(), "no network");

    let run = dir.run(STOCK, &["--test-pipe", "Hec"]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_no_secret(&run, &dir);
    let out = stdout(&run);
    let answered = lines_containing(&out, "pipe Hec: the receiver answered 200 OK: {");
    assert_eq!(answered.len(), 1, "{out}");
    for part in ["\"ackId\":0", "\"code\":0", "\"text\":\"Success\""] {
        assert!(answered[0].contains(part), "{out}");
    }
    assert_eq!(hec.events().len(), 1);
    assert!(hec.events()[0].contains("\"type\":\"test\""));
    assert_eq!(
        hec.hec().indexed[0].object["sourcetype"],
        "procustodibus:test"
    );

    // A bad key of each kind, named; the token never quoted.
    for (extra, expected) in [
        ("Batch = lots", "Batch: \"lots\" is not a number of events"),
        ("Ack = perhaps", "Ack:"),
        ("AckTimeout = never", "AckTimeout:"),
        ("Index =", "Index: must not be empty"),
        (
            "Token = 6f1c0d2e-SECRET-TOKEN-7d2e",
            "set Token or TokenFile, not both",
        ),
        ("Proxy = SECRET", "Proxy: not a proxy URL"),
    ] {
        let text = std::fs::read_to_string(dir.config()).unwrap();
        let changed = text.replace("Ack = yes\n", &format!("Ack = yes\n{extra}\n"));
        let changed = if extra.starts_with("Ack =") {
            changed.replace("Ack = yes\n", "")
        } else {
            changed
        };
        std::fs::write(dir.config(), &changed).unwrap();
        let run = dir.run(STOCK, &["--check-config"]);
        assert!(!run.status.success(), "{extra}: {}", describe(&run));
        assert!(
            stderr(&run).contains(expected),
            "{extra}: {}",
            describe(&run)
        );
        assert_no_secret(&run, &dir);
        std::fs::write(dir.config(), &text).unwrap();
    }
    // A TokenFile that is missing is named.
    std::fs::remove_file(dir.path("token")).unwrap();
    let run = dir.run(STOCK, &["--check-config"]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("TokenFile: cannot read "),
        "{}",
        describe(&run)
    );
}

#[test]
fn list_sinks_shows_every_splunk_key_with_help() {
    let dir = BrokerDir::new();
    let run = dir.run(STOCK, &["--list-sinks"]);
    assert!(run.status.success(), "{}", describe(&run));
    let text = stdout(&run);
    let section: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "splunk")
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .collect();
    let keys: Vec<&str> = section
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        keys,
        [
            "Url",
            "Token",
            "TokenFile",
            "Index",
            "Source",
            "SourceType",
            "Host",
            "Batch",
            "Ack",
            "AckTimeout",
            "CA",
            "Timeout",
            "Proxy"
        ],
        "{text}"
    );
    assert!(
        section.iter().all(|l| l.split_whitespace().count() > 2),
        "{text}"
    );
}
