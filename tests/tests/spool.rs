//! The spool end to end (docs/reliability.md): `SpoolMax` pauses pulling, the dead-letter file,
//! spooled events first after a failed run, a pipe removed from the config, a spool that cannot
//! be used or is in use, `--check-config`, and draining a backlog in one round.

use std::time::{Duration, Instant};

use broker_sim::Simulator;
use broker_tests::*;

/// A simulator and a broker that has been set up (credentials written), with `pipes` in its
/// broker.conf; the request log starts empty.
fn set_up_broker(pipes: impl Fn(&BrokerDir) -> String) -> (Simulator, BrokerDir) {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &pipes(&dir));
    dir.set_up(&sim);
    sim.clear_requests();
    (sim, dir)
}

/// The pulls `sim` answered, of any queue.
fn pulls(sim: &Simulator) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path.starts_with("/queues"))
        .count()
}

/// The legacy syslog messages for these raw events.
fn syslog_messages(raws: &[String]) -> Vec<Vec<u8>> {
    expected_lines(raws)
        .iter()
        .map(|l| default_syslog_message(l))
        .collect()
}

/// `B` and `M` of the first `spool full (B of M bytes): pulling paused until the pipes catch up`
/// line in `log`.
fn spool_full(log: &str) -> Option<(u64, u64)> {
    let line = log.lines().find(|l| {
        l.contains("spool full (") && l.contains("bytes): pulling paused until the pipes catch up")
    })?;
    let inside = line.split("spool full (").nth(1)?.split(" bytes)").next()?;
    let (b, m) = inside.split_once(" of ")?;
    Some((b.trim().parse().ok()?, m.trim().parse().ok()?))
}

#[test]
fn a_full_spool_pauses_pulling_until_the_pipes_catch_up() {
    const EVENTS: usize = 2000;
    const MAX: usize = 50;
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let socket = dir.path("dead.sock");
    dir.write_config_with(
        &sim.url(),
        "SpoolMax = 16K\n",
        &default_syslog_pipe(
            "Dead",
            "alerts",
            Some(MAX as u32),
            &socket.display().to_string(),
        ),
    );
    dir.set_up(&sim);
    sim.clear_requests();
    let raws = sim.enqueue_generated("alerts", EVENTS).unwrap();
    let want = syslog_messages(&raws);
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);

    let full = wait_until(Duration::from_secs(20), || {
        spool_full(&broker.stdout_so_far()).is_some()
    });
    assert!(full, "no `spool full` line\n{}", broker.stdout_so_far());
    let (bytes, max) = spool_full(&broker.stdout_so_far()).unwrap();
    assert_eq!(max, 16 * 1024, "SpoolMax = 16K is 16384 bytes");
    assert!(bytes >= max, "the spool is full at {bytes} of {max} bytes");
    // The bound is checked before each pull: at most one batch beyond it.
    let on_disk = spool_segment_bytes(&dir.spool());
    let biggest_batch: u64 = {
        let mut sizes: Vec<u64> = want.iter().map(|m| m.len() as u64 + 8).collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes.iter().take(MAX).sum()
    };
    assert!(
        on_disk >= max && on_disk <= max + biggest_batch,
        "segment files hold {on_disk} bytes; SpoolMax {max}, one batch at most {biggest_batch}"
    );

    // Pulling stays paused: the API keeps the backlog.
    let left = sim.queue_len("alerts");
    let pulled = pulls(&sim);
    assert!(left > 0 && left < EVENTS, "{left} events left at the API");
    let moved = wait_until(Duration::from_millis(2500), || {
        sim.queue_len("alerts") != left || pulls(&sim) != pulled
    });
    assert!(
        !moved,
        "pulled again while the spool was full: {} pulls, {} events left (were {pulled}, {left})\n{}",
        pulls(&sim),
        sim.queue_len("alerts"),
        broker.stdout_so_far()
    );
    assert!(
        broker
            .stdout_so_far()
            .lines()
            .any(|l| l.contains("pipe Dead: ") && l.contains(" events waiting; retrying in ")),
        "the dead pipe's retry is logged\n{}",
        broker.stdout_so_far()
    );

    // The syslog daemon comes up: the broker goes on by itself.
    let receiver = DatagramCollector::bind_unix(&socket);
    let done = wait_until(Duration::from_secs(90), || {
        receiver.count() >= EVENTS && sim.queue_len("alerts") == 0
    });
    let resumed = wait_until(Duration::from_secs(5), || {
        broker
            .stdout_so_far()
            .contains("spool has room again: pulling resumed")
    });
    let out = broker.terminate(Duration::from_secs(6));
    let got = receiver.stop();
    assert!(
        done,
        "{} of {EVENTS} messages, {} left at the API\n{}",
        got.len(),
        sim.queue_len("alerts"),
        describe(&out)
    );
    assert!(
        resumed,
        "no `spool has room again` line\n{}",
        describe(&out)
    );
    assert_eq!(got.len(), EVENTS, "each event exactly once");
    assert!(
        got == want,
        "the messages differ from the events served (order or bytes)"
    );
    assert_eq!(sim.queue_len("alerts"), 0);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn an_event_too_big_for_udp_goes_to_the_dead_letter_file_and_the_pipe_goes_on() {
    let (receiver, address) = DatagramCollector::bind_udp();
    let (sim, dir) = set_up_broker(|_| default_syslog_pipe("Udp", "alerts", None, &address));
    let big = format!(
        r#"{{"type":"alerts","id":"big-1","attributes":{{"text":"{}"}}}}"#,
        "x".repeat(70_000)
    );
    let mut normal = sim.enqueue_generated("alerts", 3).unwrap();
    sim.enqueue("alerts", &big).unwrap();
    normal.extend(sim.enqueue_generated("alerts", 3).unwrap());
    let started = chrono::Utc::now();
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let first = wait_until(Duration::from_secs(20), || receiver.count() >= 6);
    assert!(
        first,
        "{} of 6 normal events arrived\n{}",
        receiver.count(),
        broker.stdout_so_far()
    );
    // The pipe goes on: later events arrive too.
    normal.extend(sim.enqueue_generated("alerts", 4).unwrap());
    let later = wait_until(Duration::from_secs(20), || receiver.count() >= 10);
    let out = broker.terminate(Duration::from_secs(6));
    let ended = chrono::Utc::now();
    let got = receiver.stop();
    assert!(
        later,
        "{} of 10 normal events arrived\n{}",
        got.len(),
        describe(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        got == syslog_messages(&normal),
        "every other event arrives, once, in order ({} datagrams)",
        got.len()
    );

    let dead_letter = dir.spool().join("dead-letter.jsonl");
    let text = std::fs::read_to_string(&dead_letter)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", dead_letter.display(), describe(&out)));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one dead letter:\n{text}");
    assert!(text.ends_with('\n'));
    let letter: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON object");
    let members: std::collections::BTreeSet<&str> = letter
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        members,
        ["event", "id", "pipe", "reason", "time", "type"].into(),
        "members of the dead letter"
    );
    assert_eq!(letter["pipe"], "Udp");
    assert_eq!(letter["type"], "alerts");
    assert_eq!(letter["id"], "big-1");
    let reason = letter["reason"].as_str().expect("reason is a string");
    assert!(!reason.is_empty());
    let big_line = expected_lines(std::slice::from_ref(&big)).remove(0);
    let big_value: serde_json::Value = serde_json::from_str(&big_line).unwrap();
    assert!(
        letter["event"] == big_value,
        "event is the event's output line"
    );
    let time = letter["time"].as_str().expect("time is a string");
    assert!(time.ends_with('Z'), "time {time} is UTC with a Z");
    let when = chrono::DateTime::parse_from_rfc3339(time)
        .unwrap_or_else(|e| panic!("time {time}: {e}"))
        .with_timezone(&chrono::Utc);
    assert!(
        when >= started - chrono::Duration::seconds(1) && when <= ended,
        "time {time} is not during the run"
    );

    let log = stdout(&out);
    let named = format!(
        "pipe Udp: event big-1 written to {}: ",
        dead_letter.display()
    );
    assert_eq!(
        lines_containing(&log, &named).len(),
        1,
        "one log line `{named}REASON`\n{log}"
    );
    assert!(
        lines_containing(&log, "retrying in").is_empty(),
        "a rejected event is not retried\n{log}"
    );
    assert_eq!(sim.queue_len("alerts"), 0);
}

#[test]
fn spooled_events_of_a_failed_run_go_first_in_the_next_run() {
    let (sim, dir) = set_up_broker(|dir| {
        file_pipe(
            "Out",
            "alerts, log_authn",
            None,
            &dir.path("blocked").join("out.jsonl"),
        )
    });
    // The sink cannot write: the file's parent is a regular file.
    dir.write("blocked", "not a directory\n");
    let old_alerts = sim.enqueue_generated("alerts", 4).unwrap();
    let old_authn = sim.enqueue_generated("log_authn", 3).unwrap();
    let run = dir.run("procustodibus-broker", &["-v"]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert_eq!(
        lines_containing(
            &stdout(&run),
            "pipe Out: 7 events kept in the spool for the next run"
        )
        .len(),
        1,
        "{}",
        describe(&run)
    );
    assert_eq!(sim.queue_len("alerts"), 0, "pulled into the spool");
    assert_eq!(sim.queue_len("log_authn"), 0, "pulled into the spool");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.spool())
            .expect("spool")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o700,
            "the spool directory is created with mode 0700"
        );
    }

    // Fixed; the API has newer events meanwhile.
    std::fs::remove_file(dir.path("blocked")).unwrap();
    std::fs::create_dir(dir.path("blocked")).unwrap();
    let new_alerts = sim.enqueue_generated("alerts", 3).unwrap();
    let new_authn = sim.enqueue_generated("log_authn", 2).unwrap();
    let run = dir.run("procustodibus-broker", &["-v"]);
    assert!(run.status.success(), "{}", describe(&run));
    assert!(
        lines_containing(&stdout(&run), "kept in the spool").is_empty(),
        "{}",
        describe(&run)
    );
    let got = dir.lines("blocked/out.jsonl");
    assert_eq!(
        got.len(),
        12,
        "each event exactly once:\n{}",
        got.join("\n")
    );
    let alerts: Vec<String> = old_alerts.iter().chain(&new_alerts).cloned().collect();
    let authn: Vec<String> = old_authn.iter().chain(&new_authn).cloned().collect();
    assert_eq!(
        lines_of_type(&got, "alerts"),
        expected_lines(&alerts),
        "alerts: the spooled ones first, in order"
    );
    assert_eq!(
        lines_of_type(&got, "log_authn"),
        expected_lines(&authn),
        "log_authn: the spooled ones first, in order"
    );

    // Nothing is delivered twice by a later run.
    let run = dir.run("procustodibus-broker", &["-v"]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(dir.lines("blocked/out.jsonl"), got);
}

#[test]
fn a_pipe_removed_from_the_config_drops_its_spool_position() {
    let (sim, dir) = set_up_broker(|dir| {
        format!(
            "{}{}",
            file_pipe("X", "alerts", None, &dir.path("blocked").join("x.jsonl")),
            file_pipe("Y", "alerts", None, &dir.path("y.jsonl"))
        )
    });
    dir.write("blocked", "not a directory\n");
    let first = sim.enqueue_generated("alerts", 6).unwrap();
    let run = dir.run("procustodibus-broker", &["-v"]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert_eq!(
        lines_containing(
            &stdout(&run),
            "pipe X: 6 events kept in the spool for the next run"
        )
        .len(),
        1,
        "{}",
        describe(&run)
    );
    assert_eq!(dir.lines("y.jsonl"), expected_lines(&first));

    // X leaves the config.
    dir.write_config(
        &sim.url(),
        &file_pipe("Y", "alerts", None, &dir.path("y.jsonl")),
    );
    let second = sim.enqueue_generated("alerts", 2).unwrap();
    let run = dir.run("procustodibus-broker", &["-v"]);
    assert!(run.status.success(), "{}", describe(&run));
    let dropped = lines_containing(&stdout(&run), "is no longer in the config");
    assert_eq!(dropped.len(), 1, "{}", describe(&run));
    assert!(
        dropped[0].ends_with(
            "pipe X is no longer in the config: dropped its spool position and 6 undelivered events"
        ),
        "{}",
        dropped[0]
    );
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    assert_eq!(dir.lines("y.jsonl"), expected_lines(&all));
    let positions = std::fs::read_to_string(dir.spool().join("positions")).unwrap_or_default();
    assert!(
        !positions.lines().any(|l| l.starts_with("X\t")),
        "X's position is gone:\n{positions}"
    );

    // Said once: the next start has nothing to drop.
    let run = dir.run("procustodibus-broker", &["-v"]);
    assert!(run.status.success(), "{}", describe(&run));
    assert!(
        lines_containing(&stdout(&run), "is no longer in the config").is_empty(),
        "{}",
        describe(&run)
    );
    assert_eq!(dir.lines("y.jsonl"), expected_lines(&all));
}

#[test]
fn a_spool_that_is_a_regular_file_stops_the_broker_before_any_pull() {
    let (sim, dir) = set_up_broker(|dir| file_pipe("All", "alerts", None, &dir.path("all.jsonl")));
    dir.write("spool", "not a directory\n");
    sim.enqueue_generated("alerts", 3).unwrap();
    let spool = dir.spool().display().to_string();
    for args in [&["-v"][..], &["--loop", "1", "-v"][..]] {
        let mut command = dir.command("procustodibus-broker");
        command.args(args);
        let run = run_with_timeout(command, Duration::from_secs(20));
        assert_eq!(run.status.code(), Some(1), "{args:?}: {}", describe(&run));
        let err = stderr(&run);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{args:?}: one line on stderr\n{}",
            describe(&run)
        );
        assert!(
            lines[0].contains(&spool),
            "{args:?}: the line names {spool}: {}",
            lines[0]
        );
        assert_eq!(pulls(&sim), 0, "{args:?}: no pull: {:?}", sim.requests());
        assert_eq!(sim.queue_len("alerts"), 3);
        assert!(!dir.path("all.jsonl").exists());
    }
}

#[test]
fn a_second_broker_on_the_same_spool_exits_1() {
    let (sim, dir) = set_up_broker(|dir| file_pipe("All", "alerts", None, &dir.path("all.jsonl")));
    let first = sim.enqueue_generated("alerts", 2).unwrap();
    let mut running = dir.spawn("procustodibus-broker", &["--loop", "30", "-v"]);
    let started = wait_until(Duration::from_secs(20), || {
        dir.lines("all.jsonl").len() == 2
    });
    assert!(started, "{}", running.stdout_so_far());
    let pulled = pulls(&sim);
    sim.enqueue_generated("alerts", 3).unwrap();

    let run = dir.run("procustodibus-broker", &["-v"]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let want = format!(
        "spool {} is in use by another procustodibus-broker process",
        dir.spool().display()
    );
    assert!(
        stderr(&run).contains(&want) || stdout(&run).contains(&want),
        "expected `{want}`\n{}",
        describe(&run)
    );
    assert_eq!(pulls(&sim), pulled, "the second broker pulled nothing");
    assert_eq!(sim.queue_len("alerts"), 3);
    assert_eq!(dir.lines("all.jsonl"), expected_lines(&first));

    let out = running.terminate(Duration::from_secs(6));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

/// Runs `--check-config` and checks it made no request, created no spool and wrote no sink
/// output.
fn check_config(sim: &Simulator, dir: &BrokerDir, udp: &DatagramCollector) -> std::process::Output {
    let spool_before = dir.spool().exists();
    let run = dir.run("procustodibus-broker", &["--check-config"]);
    assert!(
        sim.requests().is_empty(),
        "no request: {:?}",
        sim.requests()
    );
    assert_eq!(
        dir.spool().exists(),
        spool_before,
        "the spool directory is not created"
    );
    assert!(!dir.path("all.jsonl").exists(), "no sink output");
    assert_eq!(udp.count(), 0, "nothing sent to the syslog socket");
    run
}

/// A simulator with queued events, a UDP syslog receiver, and a broker directory with
/// credentials whose config has a file pipe and a syslog pipe to that receiver; also the
/// receiver's `host:port`.
fn check_config_fixture() -> (Simulator, BrokerDir, DatagramCollector, String) {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let (udp, address) = DatagramCollector::bind_udp();
    let pipes = format!(
        "{}{}",
        file_pipe("All", "alerts", None, &dir.path("all.jsonl")),
        default_syslog_pipe("Sys", "alerts", None, &address)
    );
    dir.write_config(&sim.url(), &pipes);
    write_credentials(&dir.credentials(), [7; 32]);
    sim.enqueue_generated("alerts", 2).unwrap();
    (sim, dir, udp, address)
}

#[test]
fn check_config_accepts_a_valid_config_without_network_or_writes() {
    let (sim, dir, udp, _) = check_config_fixture();
    let run = check_config(&sim, &dir, &udp);
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    assert_eq!(
        stdout(&run),
        format!(
            "config OK: {} (2 pipes, credentials {}, spool {})\n",
            dir.config().display(),
            dir.credentials().display(),
            dir.path("spool").display()
        ),
        "{}",
        describe(&run)
    );
    assert_eq!(sim.queue_len("alerts"), 2);
}

#[test]
fn check_config_rejects_a_bad_sink_setting() {
    let (sim, dir, udp, address) = check_config_fixture();
    dir.write_config(
        &sim.url(),
        &format!(
            "{}[Pipe.Sys]\nFrom = alerts\nTo = syslog\nSocket = {address}\nFacility = nosuchfacility\n",
            file_pipe("All", "alerts", None, &dir.path("all.jsonl"))
        ),
    );
    let run = check_config(&sim, &dir, &udp);
    assert_eq!(
        run.status.code(),
        Some(1),
        "bad Facility: {}",
        describe(&run)
    );
    let said = format!("{}{}", stdout(&run), stderr(&run));
    assert!(
        said.to_lowercase().contains("facility"),
        "names the problem: {said}"
    );
    assert!(!said.contains("config OK"), "{said}");

    // A file pipe without its File.
    dir.write_config(&sim.url(), "[Pipe.NoFile]\nFrom = alerts\nTo = file\n");
    let run = check_config(&sim, &dir, &udp);
    assert_eq!(run.status.code(), Some(1), "no File: {}", describe(&run));
    let said = format!("{}{}", stdout(&run), stderr(&run));
    assert!(said.contains("File"), "names the problem: {said}");
    assert!(!said.contains("config OK"), "{said}");
}

#[test]
fn check_config_rejects_missing_credentials() {
    let (sim, dir, udp, _) = check_config_fixture();
    std::fs::remove_file(dir.credentials()).unwrap();
    let run = check_config(&sim, &dir, &udp);
    assert_eq!(
        run.status.code(),
        Some(1),
        "no credentials and no setup file: {}",
        describe(&run)
    );
    assert!(!stdout(&run).contains("config OK"), "{}", describe(&run));
}

#[test]
fn check_config_rejects_a_spool_that_cannot_be_a_directory() {
    let (sim, dir, udp, _) = check_config_fixture();
    dir.write("spool", "not a directory\n");
    let run = check_config(&sim, &dir, &udp);
    assert_eq!(
        run.status.code(),
        Some(1),
        "spool is a file: {}",
        describe(&run)
    );
    let said = format!("{}{}", stdout(&run), stderr(&run));
    assert!(said.contains(&dir.spool().display().to_string()), "{said}");
    assert!(!said.contains("config OK"), "{said}");
}

#[test]
fn a_loop_drains_a_backlog_in_one_round() {
    const EVENTS: usize = 5000;
    let (sim, dir) =
        set_up_broker(|dir| file_pipe("All", "alerts", Some(100), &dir.path("all.jsonl")));
    let raws = sim.enqueue_generated("alerts", EVENTS).unwrap();
    let started = Instant::now();
    // A second round would start 30 s after the first.
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "30", "-v"]);
    let drained = wait_until(Duration::from_secs(25), || {
        dir.lines("all.jsonl").len() >= EVENTS
            && requests_to(&sim, "/queues/alerts/next").len() > EVENTS / 100
    });
    let elapsed = started.elapsed();
    let requests = requests_to(&sim, "/queues/alerts/next");
    let out = broker.terminate(Duration::from_secs(6));
    assert!(
        drained,
        "{} of {EVENTS} events, {} pulls\n{}",
        dir.lines("all.jsonl").len(),
        requests.len(),
        describe(&out)
    );
    assert!(elapsed < Duration::from_secs(30), "within the first round");
    // 50 full batches, then one that comes back short (empty).
    assert_eq!(requests.len(), EVENTS / 100 + 1, "{requests:?}");
    assert!(
        requests.iter().all(|r| *r == (Some(100), 200)),
        "{requests:?}"
    );
    assert_eq!(sim.queue_len("alerts"), 0);
    assert!(
        dir.lines("all.jsonl") == expected_lines(&raws),
        "every event once, in order"
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn a_one_shot_run_takes_max_events_per_queue() {
    const EVENTS: usize = 5000;
    let (sim, dir) = set_up_broker(|dir| {
        file_pipe(
            "All",
            "alerts, log_authn",
            Some(100),
            &dir.path("all.jsonl"),
        )
    });
    let alerts = sim.enqueue_generated("alerts", EVENTS).unwrap();
    let authn = sim.enqueue_generated("log_authn", 150).unwrap();
    let run = dir.run("procustodibus-broker", &["-v"]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(requests_to(&sim, "/queues/alerts/next"), [(Some(100), 200)]);
    assert_eq!(
        requests_to(&sim, "/queues/log_authn/next"),
        [(Some(100), 200)]
    );
    assert_eq!(sim.queue_len("alerts"), EVENTS - 100);
    assert_eq!(sim.queue_len("log_authn"), 50);
    let got = dir.lines("all.jsonl");
    assert_eq!(got.len(), 200);
    assert_eq!(
        lines_of_type(&got, "alerts"),
        expected_lines(&alerts[..100])
    );
    assert_eq!(
        lines_of_type(&got, "log_authn"),
        expected_lines(&authn[..100])
    );
}
