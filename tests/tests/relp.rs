//! The syslog sink over RELP (`Protocol = relp`, `relp-tls`) against a real rsyslog `imrelp`
//! (tests/src/rsyslog.rs, [`Rsyslog::start_relp`]): the real broker pulls from the simulator and
//! each event must reach rsyslog's output file, also when rsyslog is killed and started again in
//! the middle of a run, and when it stops reading for a while (SIGSTOP). rsyslog's main queue is
//! direct here, so what `imrelp` answered `200` for is in the file even after a SIGKILL.
//!
//! rsyslogd and imrelp must be installed (Debian packages `rsyslog`, `rsyslog-gnutls` and
//! `rsyslog-relp`; `scripts/test` installs them): without them these tests fail and say so.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use broker_sim::Simulator;
use broker_tests::rsyslog::{expected_lines_chunked, Input, Received, Rsyslog};
use broker_tests::*;

/// How long the messages of a short run may take to show up in rsyslog's output file.
const ARRIVAL: Duration = Duration::from_secs(20);

/// How long a long run (tens of thousands of events, a receiver outage) may take.
const LONG_ARRIVAL: Duration = Duration::from_secs(120);

/// The `[Pipe.NAME]` section of a syslog pipe to `socket` with `keys`.
fn relp_pipe(name: &str, from: &str, socket: &str, keys: &[(&str, &str)]) -> String {
    let mut text = format!("[Pipe.{name}]\nFrom = {from}\nTo = syslog\nSocket = {socket}\n");
    for (key, value) in keys {
        text.push_str(&format!("{key} = {value}\n"));
    }
    text.push('\n');
    text
}

/// The event id in a message rsyslog stored (its body is the event's JSON line).
fn id_of(received: &Received) -> String {
    let value: serde_json::Value = serde_json::from_str(received.body())
        .unwrap_or_else(|e| panic!("a damaged message ({e}): {received:?}"));
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a message without id: {received:?}"))
        .to_string()
}

/// The id of a raw event the simulator serves.
fn raw_id(raw: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(raw).expect("raw event");
    value["id"].as_str().expect("raw id").to_string()
}

/// Runs the broker once with `pipes`, after 3 alerts, a tricky one and 120 log_authn events
/// (one beyond 8 KB); asserts rsyslog got every event on `input` exactly once and in order.
fn every_event_once_in_order(rsyslog: &Rsyslog, input: Input, keys: &[(&str, &str)]) {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let pipe = relp_pipe(
        "Relp",
        "alerts, log_authn",
        &rsyslog.address(input),
        &[&[("Format", "rfc5424"), ("Max", "1000")], keys].concat(),
    );
    dir.write_config(&sim.url(), &pipe);
    let tricky = r#"{"type": "alerts", "id": "tricky-1", "attributes": {"text": "é😀/\u007f\u0000 tab\t<134>1 - \n"}}"#;
    let (alerts, authn) = broker_tests::rsyslog::enqueue_events(&sim, tricky, 120);
    dir.write_setup(&sim, "relp-setup");
    let run = dir.spawn("procustodibus-broker", &[]).finish(ARRIVAL * 3);
    assert!(run.status.success(), "{}", describe(&run));
    assert!(!stdout(&run).contains("ERROR"), "{}", describe(&run));

    let want = expected_lines_chunked(&[alerts, authn].concat());
    assert!(want.iter().any(|l| l.len() > 8192), "a line beyond 8k");
    // The run ended after the receiver answered every message: all are in the file now.
    let got: Vec<Received> = rsyslog.received_on(input);
    let bodies: Vec<&str> = got.iter().map(Received::body).collect();
    assert_eq!(
        bodies.len(),
        want.len(),
        "every event exactly once\n{}",
        rsyslog.diagnostics()
    );
    for (i, (got, want)) in bodies.iter().zip(&want).enumerate() {
        assert_eq!(got, want, "message {i}");
    }
    assert!(got
        .iter()
        .all(|r| r.app_name == "procustodibus" && r.pri == 134));
}

#[test]
fn relp_every_event_once_in_order_each_answered_before_the_run_ends() {
    let rsyslog = Rsyslog::start_relp();
    every_event_once_in_order(&rsyslog, Input::Relp, &[("Protocol", "relp")]);
    assert!(
        !rsyslog.own_messages().contains("error"),
        "{}",
        rsyslog.diagnostics()
    );
}

#[test]
fn relp_tls_with_a_client_certificate_every_event_once_in_order() {
    let rsyslog = Rsyslog::start_relp();
    let certs = &rsyslog.certs;
    let (ca, cert, key) = (
        certs.ca.display().to_string(),
        certs.client_cert.display().to_string(),
        certs.client_key.display().to_string(),
    );
    every_event_once_in_order(
        &rsyslog,
        Input::RelpTls,
        &[
            ("Protocol", "relp-tls"),
            ("CA", &ca),
            ("Cert", &cert),
            ("Key", &key),
            ("ServerName", "localhost"),
            ("Window", "16"),
        ],
    );
}

#[test]
fn relp_tls_without_a_client_certificate_is_refused_and_retried() {
    let rsyslog = Rsyslog::start_relp();
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let ca = rsyslog.certs.ca.display().to_string();
    let pipe = relp_pipe(
        "Relp",
        "alerts",
        &rsyslog.address(Input::RelpTls),
        &[("Protocol", "relp-tls"), ("CA", &ca)],
    );
    dir.write_config(&sim.url(), &pipe);
    sim.enqueue_generated("alerts", 2).expect("enqueue");
    dir.write_setup(&sim, "relp-setup");
    let run = dir.spawn("procustodibus-broker", &[]).finish(ARRIVAL);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let out = stdout(&run);
    assert!(
        out.contains(&format!(
            "pipe Relp: cannot connect to {} over RELP/TLS:",
            rsyslog.address(Input::RelpTls)
        )),
        "{}",
        describe(&run)
    );
    assert!(rsyslog.received_on(Input::RelpTls).is_empty());
}

/// Reads rsyslog's output file as it grows and counts each event id.
struct Tally {
    offset: u64,
    seen: HashMap<String, usize>,
    messages: usize,
}

impl Tally {
    fn new() -> Self {
        Tally {
            offset: 0,
            seen: HashMap::new(),
            messages: 0,
        }
    }

    /// Reads what arrived since the last call; returns the number of messages so far.
    fn update(&mut self, rsyslog: &Rsyslog) -> usize {
        let (received, offset) = rsyslog.received_from(self.offset);
        self.offset = offset;
        for r in &received {
            assert_eq!(r.input, "relp", "{r:?}");
            *self.seen.entry(id_of(r)).or_default() += 1;
        }
        self.messages += received.len();
        self.messages
    }

    /// Waits until every id of `want` arrived (at most `limit`); returns the ids missing.
    fn wait_for_all(&mut self, rsyslog: &Rsyslog, want: &[String], limit: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            self.update(rsyslog);
            let missing: Vec<String> = want
                .iter()
                .filter(|id| !self.seen.contains_key(*id))
                .cloned()
                .collect();
            if missing.is_empty() || start.elapsed() > limit {
                return missing;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A `--loop` broker with one RELP pipe of `log_authn` (RELP window `window`) and `n` events
/// queued; returns the simulator, the broker's directory, the running broker and the event ids in
/// queue order.
fn long_run(
    rsyslog: &Rsyslog,
    n: usize,
    window: &str,
) -> (Simulator, BrokerDir, Running, Vec<String>) {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let pipe = relp_pipe(
        "Relp",
        "log_authn",
        &rsyslog.address(Input::Relp),
        &[
            ("Protocol", "relp"),
            ("Format", "rfc5424"),
            ("Max", "1000"),
            ("Window", window),
        ],
    );
    dir.write_config(&sim.url(), &pipe);
    let ids: Vec<String> = sim
        .enqueue_generated("log_authn", n)
        .expect("enqueue")
        .iter()
        .map(|raw| raw_id(raw))
        .collect();
    dir.write_setup(&sim, "relp-setup");
    let running = dir.spawn("procustodibus-broker", &["--loop", "0.2"]);
    (sim, dir, running, ids)
}

/// Waits until at least `count` messages arrived; panics (with what the broker said) if not.
fn wait_for_messages(tally: &mut Tally, rsyslog: &Rsyslog, count: usize, running: &Running) {
    assert!(
        wait_until(LONG_ARRIVAL, || tally.update(rsyslog) >= count),
        "{count} messages did not arrive\n{}\n{}",
        running.stdout_so_far(),
        rsyslog.diagnostics()
    );
}

#[test]
fn relp_receiver_killed_and_restarted_mid_run_loses_nothing() {
    const EVENTS: usize = 40_000;
    let mut rsyslog = Rsyslog::start_relp();
    // A small window: each batch (`Max = 1000`) takes many round trips, so there is time to see
    // one half done.
    let (_sim, _dir, mut running, ids) = long_run(&rsyslog, EVENTS, "32");
    let mut tally = Tally::new();
    // Killed in the middle of a batch: messages are on their way then.
    let start = Instant::now();
    let mid_batch = loop {
        let count = tally.update(&rsyslog);
        if count >= 2_000 && !count.is_multiple_of(1000) {
            break true;
        }
        if count >= EVENTS || start.elapsed() > LONG_ARRIVAL {
            break false;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let at_restart = tally.messages;
    rsyslog.restart();
    assert!(
        mid_batch && at_restart < EVENTS,
        "the run was over before the restart ({at_restart} messages): nothing was tested\n{}",
        running.stdout_so_far()
    );
    let missing = tally.wait_for_all(&rsyslog, &ids, LONG_ARRIVAL);
    let out = running.terminate(Duration::from_secs(10));
    assert!(
        missing.is_empty(),
        "{} of {EVENTS} events lost across the restart (at {at_restart} messages), first {:?}\n{}\n{}",
        missing.len(),
        missing.first(),
        describe(&out),
        rsyslog.diagnostics()
    );
    // At least once: only what was unanswered when the connection broke goes twice, at most a
    // window (32) of it.
    let twice = tally.seen.values().filter(|n| **n > 1).count();
    eprintln!("restarted at {at_restart} of {EVENTS} messages; {twice} events arrived twice");
    assert!(twice <= 32, "{twice} events arrived more than once");
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn relp_receiver_that_stops_reading_for_a_while_loses_nothing() {
    // The first part arrives in full before rsyslog stops; the rest is queued while it is
    // stopped, so the broker is sending into a receiver that does not read, however fast the
    // first part went.
    const BEFORE: usize = 2_000;
    const EVENTS: usize = 40_000;
    let rsyslog = Rsyslog::start_relp();
    let (sim, _dir, mut running, mut ids) = long_run(&rsyslog, BEFORE, "1024");
    let mut tally = Tally::new();
    wait_for_messages(&mut tally, &rsyslog, BEFORE, &running);
    rsyslog.pause();
    let rest = sim
        .enqueue_generated("log_authn", EVENTS - BEFORE)
        .expect("enqueue");
    ids.extend(rest.iter().map(|raw| raw_id(raw)));
    assert!(
        wait_until(Duration::from_secs(20), || sim.queue_len("log_authn")
            < EVENTS - BEFORE),
        "the broker pulled nothing while rsyslog was stopped\n{}",
        running.stdout_so_far()
    );
    std::thread::sleep(Duration::from_secs(3));
    let during = tally.update(&rsyslog);
    rsyslog.resume();
    assert_eq!(during, BEFORE, "a stopped rsyslog wrote messages");
    let missing = tally.wait_for_all(&rsyslog, &ids, LONG_ARRIVAL);
    let out = running.terminate(Duration::from_secs(10));
    assert!(
        missing.is_empty(),
        "{} of {EVENTS} events lost across the pause, first {:?}\n{}\n{}",
        missing.len(),
        missing.first(),
        describe(&out),
        rsyslog.diagnostics()
    );
    // A pause shorter than the stall limit breaks nothing: each event exactly once.
    let twice = tally.seen.values().filter(|n| **n > 1).count();
    assert_eq!(twice, 0, "events arrived more than once");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!stdout(&out).contains("ERROR"), "{}", describe(&out));
}

#[test]
fn test_pipe_sends_one_event_and_prints_the_receiver_s_answer() {
    let rsyslog = Rsyslog::start_relp();
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let pipe = relp_pipe(
        "Relp",
        "alerts",
        &rsyslog.address(Input::Relp),
        &[("Protocol", "relp")],
    );
    dir.write_config(&sim.url(), &pipe);
    let out = dir.run("procustodibus-broker", &["--test-pipe", "Relp"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains("pipe Relp: the receiver answered 200 OK"),
        "{}",
        describe(&out)
    );
    let got = rsyslog.received_on(Input::Relp);
    assert_eq!(got.len(), 1, "{}", rsyslog.diagnostics());
    assert_eq!(id_of(&got[0]), "relp");
}
