//! Answers of the API that the broker cannot read (docs/reliability.md, "API answers"): a 200
//! pull answer that is not valid UTF-8, nested past the parser's limit, cut short, or larger
//! than the 256 MiB bound. The simulator takes the events off its queue first and then sends the
//! broken body, so that body is their only copy: the broker must write it to the dead-letter
//! file (exact bytes, recoverable), log one clear line and go on. An answer with more events
//! than `Max` is accepted whole.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use broker_sim::{Breakage, Fault, SimOptions, Simulator};
use broker_tests::delivery::*;
use broker_tests::*;

const PULL_PATH: &str = "/queues/alerts/next";

/// A simulator, a set-up broker whose one file pipe `out.jsonl` reads alerts with `Max`, and
/// `events` generated alerts in the queue (their raw texts in queue order).
fn bench(max: u32, events: usize, timeout: &str) -> (Simulator, BrokerDir, Vec<String>) {
    let sim = simulator(SimOptions::default());
    let dir = BrokerDir::new();
    let pipe = file_pipe("All", "alerts", Some(max), &dir.path("out.jsonl"));
    write_config_timeout(&dir, &sim.url(), timeout, &pipe);
    dir.set_up(&sim);
    let raws = sim.enqueue_generated("alerts", events).expect("enqueue");
    (sim, dir, raws)
}

/// The dead-letter lines of the spool, parsed.
fn dead_letters(dir: &BrokerDir) -> Vec<serde_json::Value> {
    read_lines(&dir.spool().join("dead-letter.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("dead letter {l:.200}: {e}")))
        .collect()
}

/// The exact bytes a dead letter keeps, as an operator recovers them: `event_base64` when it is
/// there, else the `event` string.
fn recovered(letter: &serde_json::Value) -> Vec<u8> {
    match letter.get("event_base64") {
        Some(b64) => STANDARD
            .decode(b64.as_str().expect("event_base64 is a string"))
            .expect("event_base64 is base64"),
        None => letter["event"]
            .as_str()
            .expect("event is a string")
            .as_bytes()
            .to_vec(),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs a looping broker against a queue of 25 alerts (`Max = 10`) whose first pull is
/// answered 200 with a body broken by `breakage` after the dequeue; checks that the dead-letter
/// file has one line for it with a reason that names the call and `why`, that the log says so
/// in one line, and that the broker went on and delivered the other 15 exactly once. Returns
/// the bytes the dead letter keeps and the raw texts of the 25 events.
fn broken_answer_run(breakage: Breakage, why: &str) -> (Vec<u8>, Vec<String>) {
    let (sim, dir, raws) = bench(10, 25, "3");
    sim.inject(Fault::BrokenAnswer(breakage), 1, Some(PULL_PATH));
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1"]);
    let out_path = dir.path("out.jsonl");
    let drained = wait_until(Duration::from_secs(60), || {
        sim.queue_len("alerts") == 0 && count_lines(&out_path) >= 15
    });
    std::thread::sleep(Duration::from_millis(300));
    let alive = broker.is_alive();
    let (out, _) = broker.stop_with("TERM", Duration::from_secs(10));
    assert!(
        drained && alive,
        "drained {drained}, alive {alive}: {}",
        describe(&out)
    );

    // The other 15 events, once each, in order.
    let catalog = Catalog::new(&[("alerts", &raws[10..])]);
    let tally = catalog.tally(&read_lines(&out_path));
    assert!(tally.exactly_once(), "{}", tally.describe());

    let letters = dead_letters(&dir);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["type"], "alerts");
    assert_eq!(letter["pipe"], "");
    let reason = letter["reason"].as_str().expect("reason");
    assert!(
        reason.contains(PULL_PATH) && reason.contains(why),
        "{reason}"
    );

    // One clear log line that says where the answer went.
    let lines = log_lines_with(&out, "was written to");
    assert_eq!(lines.len(), 1, "{}", describe(&out));
    assert!(
        lines[0].contains("cannot pull alerts") && lines[0].contains("dead-letter.jsonl"),
        "{}",
        lines[0]
    );
    (recovered(letter), raws)
}

/// [`broken_answer_run`], and the 10 dequeued events are in the dead letter byte for byte.
fn broken_answer_is_kept(breakage: Breakage, why: &str) {
    let (bytes, raws) = broken_answer_run(breakage, why);
    for raw in &raws[..10] {
        assert!(
            contains(&bytes, raw.as_bytes()),
            "{raw} not in the dead letter"
        );
    }
}

#[test]
fn answer_with_invalid_utf8_goes_to_the_dead_letter_file() {
    broken_answer_is_kept(Breakage::BadUtf8, "UTF-8");
}

#[test]
fn answer_nested_too_deeply_goes_to_the_dead_letter_file() {
    broken_answer_is_kept(Breakage::DeepNesting, "nested too deeply");
}

#[test]
fn truncated_answer_goes_to_the_dead_letter_file() {
    broken_answer_is_kept(Breakage::Truncated, "EOF");
}

#[test]
fn answer_cut_off_by_a_dropped_connection_keeps_what_arrived() {
    let (bytes, raws) = broken_answer_run(Breakage::CutOff, "cut short");
    let plain = format!(r#"{{"data":[{}]}}"#, raws[..10].join(","));
    assert_eq!(bytes, plain.as_bytes()[..plain.len() / 2]);
}

#[test]
fn a_login_answer_cut_off_is_never_kept() {
    let (sim, dir, _) = bench(10, 5, "3");
    // The challenge goes through; the login answer, which holds the session token, is cut.
    sim.inject(Fault::Delay(Duration::ZERO), 1, Some("/sessions/challenge"));
    sim.inject(Fault::BrokenAnswer(Breakage::CutOff), 1, Some("/sessions"));
    let out = dir.run("procustodibus-broker", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let lines = log_lines_with(&out, "cannot pull alerts");
    assert_eq!(lines.len(), 1, "{}", describe(&out));
    assert!(
        lines[0].contains("POST") && lines[0].contains("/sessions: malformed answer"),
        "{}",
        lines[0]
    );
    assert!(!dir.spool().join("dead-letter.jsonl").exists());
    assert!(!stdout(&out).contains("token"), "{}", describe(&out));
    assert_eq!(sim.queue_len("alerts"), 5);
}

#[test]
fn invalid_utf8_is_kept_exactly() {
    let (sim, dir, raws) = bench(5, 5, "3");
    sim.inject(Fault::BrokenAnswer(Breakage::BadUtf8), 1, Some(PULL_PATH));
    let out = dir.run("procustodibus-broker", &[]);
    assert_eq!(sim.queue_len("alerts"), 0, "{}", describe(&out));
    let letters = dead_letters(&dir);
    assert_eq!(letters.len(), 1, "{}", describe(&out));
    let mut expected = b"{\"data\":[\"\xff\xfe\",".to_vec();
    expected.extend_from_slice(raws.join(",").as_bytes());
    expected.extend_from_slice(b"]}");
    assert_eq!(recovered(&letters[0]), expected);
    assert!(letters[0]["event"].as_str().unwrap().contains('\u{fffd}'));
}

#[test]
fn an_answer_that_cannot_be_set_aside_is_logged_exactly() {
    let (sim, dir, raws) = bench(5, 5, "3");
    // A directory where the dead-letter file should be: it cannot be written.
    std::fs::create_dir_all(dir.spool().join("dead-letter.jsonl")).expect("mkdir");
    sim.inject(Fault::BrokenAnswer(Breakage::BadUtf8), 1, Some(PULL_PATH));
    let out = dir.run("procustodibus-broker", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let lines = log_lines_with(&out, "dead letter not written: ");
    assert_eq!(lines.len(), 1, "{}", describe(&out));
    let json = lines[0].split_once("dead letter not written: ").unwrap().1;
    let letter: serde_json::Value = serde_json::from_str(json).expect("one JSON line");
    let mut expected = b"{\"data\":[\"\xff\xfe\",".to_vec();
    expected.extend_from_slice(raws.join(",").as_bytes());
    expected.extend_from_slice(b"]}");
    assert_eq!(recovered(&letter), expected);
    assert_eq!(
        log_lines_with(&out, "its dead-letter line is in this log").len(),
        1
    );
}

#[test]
fn answer_with_more_events_than_max_is_accepted_whole() {
    let (sim, dir, raws) = bench(10, 30, "3");
    sim.inject(Fault::OversizedAnswer(15), 1, Some(PULL_PATH));
    let out = dir.run("procustodibus-broker", &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(sim.served_count("alerts"), 25);
    let catalog = Catalog::new(&[("alerts", &raws[..25])]);
    let tally = catalog.tally(&read_lines(&dir.path("out.jsonl")));
    assert!(tally.exactly_once(), "{}", tally.describe());
    assert!(dead_letters(&dir).is_empty());
}

/// The bound, as the broker has it (broker-core's `MAX_ANSWER_BYTES`).
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

#[test]
fn answer_over_256_mib_is_refused_and_its_first_256_mib_kept() {
    let (sim, dir, raws) = bench(10, 10, "120");
    let size = MAX_ANSWER_BYTES + (1 << 20);
    sim.inject(
        Fault::BrokenAnswer(Breakage::Padded(size)),
        1,
        Some(PULL_PATH),
    );
    // Slow in a debug build on a busy machine: 256 MiB read, escaped and written.
    let out = dir
        .spawn("procustodibus-broker", &[])
        .finish(Duration::from_secs(300));
    assert_eq!(sim.served_count("alerts"), 10, "{}", describe(&out));
    let lines = log_lines_with(&out, "larger than 256 MiB");
    assert_eq!(lines.len(), 1, "{}", describe(&out));
    assert!(lines[0].contains("was written to"), "{}", lines[0]);
    assert!(lines[0].len() < 1000, "{:.1000}", lines[0]);
    let letters = dead_letters(&dir);
    assert_eq!(letters.len(), 1);
    let bytes = recovered(&letters[0]);
    assert_eq!(bytes.len(), MAX_ANSWER_BYTES);
    for raw in &raws {
        assert!(
            contains(&bytes[..1 << 20], raw.as_bytes()),
            "{raw} not kept"
        );
    }
    assert!(count_lines(&dir.path("out.jsonl")) == 0);
}
