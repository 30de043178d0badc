//! Sink outages in a `--loop` run (docs/reliability.md, "Retries and the dead-letter file"): a
//! failing sink is retried with backoff while the other pipes go on, the events wait in the
//! spool, and once the sink is back every event arrives exactly once, in order.

use std::path::Path;
use std::time::Duration;

use broker_tests::*;

/// The uid and gid of `nobody`, which cannot write a root-owned directory of mode 0755.
const NOBODY: u32 = 65534;

/// A line of the retry log for pipe `name`: `pipe NAME: REASON (N events waiting; retrying in S s)`.
fn retry_lines(log: &str, name: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            l.contains(&format!("pipe {name}: ")) && l.contains(" events waiting; retrying in ")
        })
        .map(String::from)
        .collect()
}

/// Asserts that `got` holds exactly the alerts and log_authn events of `alerts` and `authn`
/// (raw texts), each queue's in the order served, and nothing else.
fn assert_per_queue(what: &str, got: &[String], alerts: &[String], authn: &[String]) {
    assert_eq!(
        got.len(),
        alerts.len() + authn.len(),
        "{what}: each event exactly once"
    );
    assert_eq!(
        lines_of_type(got, "alerts"),
        expected_lines(alerts),
        "{what}: the alerts, in order"
    );
    assert_eq!(
        lines_of_type(got, "log_authn"),
        expected_lines(authn),
        "{what}: the log_authn events, in order"
    );
}

/// Sets the mode of `path`.
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn a_file_sink_in_an_unwritable_directory_is_retried_while_the_other_pipe_goes_on() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let a_dir = dir.path("a-dir");
    let b_dir = dir.path("b-dir");
    std::fs::create_dir(&a_dir).unwrap();
    std::fs::create_dir(&b_dir).unwrap();
    let a_file = a_dir.join("a.jsonl");
    let b_file = b_dir.join("b.jsonl");
    dir.write_config(
        &sim.url(),
        &format!(
            "{}{}",
            file_pipe("A", "alerts, log_authn", None, &a_file),
            file_pipe("B", "alerts, log_authn", None, &b_file)
        ),
    );
    dir.set_up(&sim);
    // Everything of the broker belongs to nobody, but A's directory: root's, mode 0755.
    chown_recursive(dir.dir.path(), NOBODY, NOBODY);
    std::os::unix::fs::chown(&a_dir, Some(0), Some(0)).unwrap();
    chmod(&a_dir, 0o755);
    let read = |path: &Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .map(|t| t.lines().map(String::from).collect())
            .unwrap_or_default()
    };

    let mut alerts = sim.enqueue_generated("alerts", 10).unwrap();
    let mut authn = sim.enqueue_generated("log_authn", 5).unwrap();
    let mut broker = dir.spawn_as(
        NOBODY,
        NOBODY,
        "procustodibus-broker",
        &["--loop", "1", "-v"],
    );
    let b_done = wait_until(Duration::from_secs(20), || read(&b_file).len() == 15);
    let a_retried = wait_until(Duration::from_secs(20), || {
        !retry_lines(&broker.stdout_so_far(), "A").is_empty()
    });
    assert!(
        b_done && a_retried,
        "B has its 15 events and A's retry is logged; B has {}:\n{}",
        read(&b_file).len(),
        broker.stdout_so_far()
    );
    assert!(read(&a_file).is_empty(), "A cannot write yet");

    // More events while A still fails: B keeps up.
    alerts.extend(sim.enqueue_generated("alerts", 7).unwrap());
    authn.extend(sim.enqueue_generated("log_authn", 3).unwrap());
    let b_done = wait_until(Duration::from_secs(20), || read(&b_file).len() == 25);
    assert!(
        b_done,
        "B is not held up by A: B has {} of 25\n{}",
        read(&b_file).len(),
        broker.stdout_so_far()
    );
    assert!(read(&a_file).is_empty(), "A still cannot write");
    assert!(!a_file.exists());

    // A's directory becomes writable: A catches up by itself (backoff is capped at 30 s).
    std::os::unix::fs::chown(&a_dir, Some(NOBODY), Some(NOBODY)).unwrap();
    let a_done = wait_until(Duration::from_secs(60), || read(&a_file).len() >= 25);
    let out = broker.terminate(Duration::from_secs(6));
    assert!(
        a_done,
        "A got {} of 25 events after its directory became writable\n{}",
        read(&a_file).len(),
        describe(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_per_queue("A", &read(&a_file), &alerts, &authn);
    assert_per_queue("B", &read(&b_file), &alerts, &authn);
    assert!(
        retry_lines(&stdout(&out), "B").is_empty(),
        "B never failed\n{}",
        describe(&out)
    );
    assert_eq!(sim.queue_len("alerts"), 0);
    assert_eq!(sim.queue_len("log_authn"), 0);
}

#[test]
fn a_removed_syslog_socket_is_retried_and_gets_every_event_once_it_is_back() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let socket = dir.path("log.sock");
    let file = dir.path("f.jsonl");
    dir.write_config(
        &sim.url(),
        &format!(
            "{}{}",
            default_syslog_pipe("Sys", "alerts", None, &socket.display().to_string()),
            file_pipe("File", "alerts", None, &file)
        ),
    );
    dir.set_up(&sim);
    let first_receiver = DatagramCollector::bind_unix(&socket);

    let first = sim.enqueue_generated("alerts", 5).unwrap();
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let delivered = wait_until(Duration::from_secs(20), || {
        first_receiver.count() == 5 && dir.lines("f.jsonl").len() == 5
    });
    assert!(
        delivered,
        "first batch: socket {} of 5, file {} of 5\n{}",
        first_receiver.count(),
        dir.lines("f.jsonl").len(),
        broker.stdout_so_far()
    );

    // The syslog daemon goes away, and its socket with it.
    let got_first = first_receiver.stop();
    std::fs::remove_file(&socket).unwrap();
    let second = sim.enqueue_generated("alerts", 8).unwrap();
    let file_done = wait_until(Duration::from_secs(20), || dir.lines("f.jsonl").len() == 13);
    let retried = wait_until(Duration::from_secs(20), || {
        !retry_lines(&broker.stdout_so_far(), "Sys").is_empty()
    });
    assert!(
        file_done && retried,
        "the file pipe goes on ({} of 13) and Sys's retry is logged\n{}",
        dir.lines("f.jsonl").len(),
        broker.stdout_so_far()
    );

    // It comes back at the same path.
    let second_receiver = DatagramCollector::bind_unix(&socket);
    let caught_up = wait_until(Duration::from_secs(60), || second_receiver.count() >= 8);
    let out = broker.terminate(Duration::from_secs(6));
    let got_second = second_receiver.stop();
    assert!(
        caught_up,
        "{} of 8 messages after the socket came back\n{}",
        got_second.len(),
        describe(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    let want = |raws: &[String]| -> Vec<Vec<u8>> {
        expected_lines(raws)
            .iter()
            .map(|l| default_syslog_message(l))
            .collect()
    };
    assert_eq!(got_first, want(&first), "the messages before the outage");
    assert_eq!(
        got_second.len(),
        second.len(),
        "each held-back event exactly once"
    );
    assert_eq!(
        got_second,
        want(&second),
        "the held-back messages, in order"
    );
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    assert_eq!(dir.lines("f.jsonl"), expected_lines(&all));
}
