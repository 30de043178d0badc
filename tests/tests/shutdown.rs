//! Stopping in the window between the API's dequeue and the spool (docs/reliability.md,
//! "Signals and lifecycle"): the simulator's `SlowAnswer` fault takes a pull's events off the
//! queue and answers 4 s later; SIGTERM, SIGINT or SIGHUP to a one-shot run, or SIGTERM to a
//! `--loop` run, in those 4 s (longer than the old 2.5 s pull grace) must lose nothing: after restarts every event is delivered exactly
//! once. Also: a `--loop` broker with nothing in flight exits within 1 s of SIGTERM; one that
//! cannot write its spool at SIGTERM puts the batch it holds in the dead-letter file; SIGHUP
//! does not kill `--test`; a slow health check is abandoned at SIGTERM; the logrotate hook
//! signals only the daemon; and the service managers' stop timeouts cover a pull in flight.

use std::time::Duration;

use broker_sim::{Fault, Simulator};
use broker_tests::delivery::*;
use broker_tests::*;

/// How late the slow answer reaches the broker after the API dequeued its events.
const SLOW: Duration = Duration::from_secs(4);

/// A simulator with `n` alerts and a set-up broker (Timeout 10) with one file pipe from alerts,
/// `Max = 100`.
fn alerts_broker(n: usize) -> (Simulator, BrokerDir, Catalog) {
    let sim = simulator(Default::default());
    let dir = broker_dir(&sim);
    let raws = sim.enqueue_generated("alerts", n).expect("enqueue");
    let catalog = Catalog::new(&[("alerts", raws.as_slice())]);
    (sim, dir, catalog)
}

/// A set-up broker of `sim` (Timeout 10) with one file pipe from alerts, `Max = 100`.
fn broker_dir(sim: &Simulator) -> BrokerDir {
    let dir = BrokerDir::new();
    let pipe = file_pipe("Alerts", "alerts", Some(100), &dir.path("out.jsonl"));
    write_config_timeout(&dir, &sim.url(), "10", &pipe);
    dir.set_up(sim);
    dir
}

/// Runs one-shot brokers until the queue is empty and the output has every event; asserts each
/// was delivered exactly once.
fn deliver_the_rest(sim: &Simulator, dir: &BrokerDir, catalog: &Catalog) {
    for _ in 0..8 {
        if sim.queue_len("alerts") == 0 && count_lines(&dir.path("out.jsonl")) >= catalog.total() {
            break;
        }
        let out = dir.run("procustodibus-broker", &["-v"]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    }
    let tally = catalog.tally(&read_lines(&dir.path("out.jsonl")));
    assert!(tally.exactly_once(), "{}", tally.describe());
}

/// Sends `signal` to a broker started with `args` while the answer to its first pull, already
/// dequeued by the API, is on its way; then restarts until every event is delivered once.
fn signal_in_the_slow_answer(signal: &str, args: &[&str]) {
    let (sim, dir, catalog) = alerts_broker(400);
    sim.inject(Fault::SlowAnswer(SLOW), 1, Some("/queues/alerts"));
    let mut broker = dir.spawn("procustodibus-broker", args);
    let dequeued = wait_until(Duration::from_secs(20), || {
        sim.served_count("alerts") >= 100
    });
    assert!(
        dequeued,
        "no pull: {}",
        describe(&broker.finish(Duration::ZERO))
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sim.served_count("alerts"), 100, "a second pull went out");
    send_signal(broker.id(), signal);
    let out = broker.finish(Duration::from_secs(20));
    assert_eq!(
        out.status.code(),
        Some(0),
        "SIG{signal}: {}",
        describe(&out)
    );
    if signal != "HUP" {
        assert!(
            !log_lines_with(&out, "stopped").is_empty(),
            "{}",
            describe(&out)
        );
        assert_eq!(
            sim.served_count("alerts"),
            100,
            "a pull started after SIG{signal}: {}",
            describe(&out)
        );
    }
    println!("{}", describe(&out));
    deliver_the_rest(&sim, &dir, &catalog);
}

#[test]
fn sigterm_to_a_one_shot_run_in_a_slow_answer_loses_nothing() {
    signal_in_the_slow_answer("TERM", &["-v"]);
}

#[test]
fn sigint_to_a_one_shot_run_in_a_slow_answer_loses_nothing() {
    signal_in_the_slow_answer("INT", &["-v"]);
}

#[test]
fn sighup_to_a_one_shot_run_in_a_slow_answer_does_not_kill_it() {
    signal_in_the_slow_answer("HUP", &["-v"]);
}

#[test]
fn sigterm_to_a_looping_run_in_a_slow_answer_loses_nothing() {
    signal_in_the_slow_answer("TERM", &["--loop", "60", "-v"]);
}

#[test]
fn sighup_does_not_kill_test_mode() {
    let (sim, dir, _) = alerts_broker(0);
    sim.inject(Fault::Delay(Duration::from_secs(2)), 1, Some("/health"));
    let mut broker = dir.spawn("procustodibus-broker", &["--test"]);
    std::thread::sleep(Duration::from_millis(700));
    send_signal(broker.id(), "HUP");
    let out = broker.finish(Duration::from_secs(20));
    assert!(
        out.status.code().is_some(),
        "--test was killed by SIGHUP: {}",
        describe(&out)
    );
}

#[test]
fn sigterm_with_nothing_in_flight_exits_within_1_s() {
    let (sim, dir, _) = alerts_broker(10);
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "60", "-v"]);
    let idle = wait_until(Duration::from_secs(20), || {
        count_lines(&dir.path("out.jsonl")) == 10
    });
    assert!(idle, "{}", describe(&broker.finish(Duration::ZERO)));
    assert_eq!(sim.queue_len("alerts"), 0);
    std::thread::sleep(Duration::from_millis(300));
    let (out, took) = broker.stop_with("TERM", Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        took <= Duration::from_secs(1),
        "exited {took:?} after SIGTERM"
    );
}

/// The shipped logrotate `postrotate` script, with the pid file paths of the init scripts
/// replaced by `pid_file` (and no systemd, as in this container).
fn postrotate_script(pid_file: &std::path::Path) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../packaging/logrotate/procustodibus-broker"),
    )
    .expect("read the logrotate file");
    let start = text.find("postrotate\n").expect("postrotate") + "postrotate\n".len();
    let end = text[start..].find("endscript").expect("endscript") + start;
    let pid = pid_file.display().to_string();
    text[start..end]
        .replace("/var/run/procustodibus-broker.pid", &pid)
        .replace("/run/procustodibus-broker.pid", &pid)
        .replace("[ -d /run/systemd/system ]", "false")
}

fn run_postrotate(pid_file: &std::path::Path) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(postrotate_script(pid_file))
        .status()
        .expect("run sh");
    assert!(status.success(), "postrotate failed");
}

#[test]
fn the_logrotate_hook_signals_only_the_daemon_of_the_pid_file() {
    let (sim, dir, _) = alerts_broker(200);
    // A one-shot run, as from cron, in the middle of its pull.
    sim.inject(Fault::SlowAnswer(SLOW), 1, Some("/queues/alerts"));
    let mut one_shot = dir.spawn("procustodibus-broker", &["-v"]);
    assert!(wait_until(Duration::from_secs(20), || {
        sim.served_count("alerts") >= 100
    }));
    // The daemon, with a spool of its own.
    let daemon_dir = broker_dir(&sim);
    let mut daemon = daemon_dir.spawn("procustodibus-broker", &["--loop", "60", "-v"]);
    let pid_file = dir.path("broker.pid");
    std::fs::write(&pid_file, format!("{}\n", daemon.id())).expect("write pid file");
    std::thread::sleep(Duration::from_millis(500));
    run_postrotate(&pid_file);

    // A pid file that names another program (a stale pid, reused): it is left alone.
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    std::fs::write(&pid_file, format!("{}\n", other.id())).expect("write pid file");
    run_postrotate(&pid_file);
    std::thread::sleep(Duration::from_millis(300));
    let other_alive = matches!(other.try_wait(), Ok(None));
    let _ = other.kill();
    let _ = other.wait();
    assert!(
        other_alive,
        "the hook signalled a process that is not the broker"
    );

    let one_shot_out = one_shot.finish(Duration::from_secs(20));
    let (daemon_out, _) = daemon.stop_with("TERM", Duration::from_secs(20));
    assert!(
        !log_lines_with(&daemon_out, "SIGHUP").is_empty(),
        "the daemon got no SIGHUP: {}",
        describe(&daemon_out)
    );
    assert!(
        log_lines_with(&one_shot_out, "SIGHUP").is_empty(),
        "the one-shot run got the SIGHUP: {}",
        describe(&one_shot_out)
    );
    assert_eq!(
        one_shot_out.status.code(),
        Some(0),
        "{}",
        describe(&one_shot_out)
    );
}

/// The user id the broker runs as when it must not be able to write somewhere.
const NOBODY: u32 = 65534;

/// The `id` of each JSON object in `lines` (under `key`, when given).
fn ids(lines: &[String], key: Option<&str>) -> Vec<String> {
    let mut ids: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            let v = key.map(|k| v[k].clone()).unwrap_or(v);
            v["id"].as_str().expect("id").to_string()
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn sigterm_while_the_spool_cannot_be_written_puts_the_held_batch_in_the_dead_letter_file() {
    let sim = simulator(Default::default());
    let dir = broker_dir(&sim);
    let raws = sim.enqueue_generated("alerts", 50).expect("enqueue");
    // The broker (as nobody) owns its spool, but not the alerts queue's directory there: its
    // first segment cannot be created, while the dead-letter file can.
    let queue_dir = dir.spool().join("queues").join("alerts");
    std::fs::create_dir_all(&queue_dir).expect("create the queue directory");
    chown_recursive(dir.dir.path(), NOBODY, NOBODY);
    std::os::unix::fs::chown(&queue_dir, Some(0), Some(0)).expect("chown");
    let mut broker = dir.spawn_as(
        NOBODY,
        NOBODY,
        "procustodibus-broker",
        &["--loop", "60", "-v"],
    );
    let holding = wait_until(Duration::from_secs(20), || {
        broker.stdout_so_far().contains("held in memory")
    });
    assert!(holding, "{}", describe(&broker.finish(Duration::ZERO)));
    assert_eq!(sim.queue_len("alerts"), 0, "the API dequeued the batch");
    let (out, _) = broker.stop_with("TERM", Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let said = log_lines_with(&out, "cannot be spooled");
    assert!(
        said.iter()
            .any(|l| l.contains("50 pulled alerts events") && l.contains("dead-letter.jsonl")),
        "{}",
        describe(&out)
    );
    let letters = read_lines(&dir.spool().join("dead-letter.jsonl"));
    assert_eq!(ids(&letters, Some("event")), ids(&raws, None));
}

/// The longest a broker with the default `Timeout` (16 s) takes to stop: a login and the pull
/// under way after it, then the 1.5 s the sinks get to finish a delivery.
const LONGEST_STOP_SECS: f64 = 2.0 * 16.0 + 1.5;

/// The text of the packaging file at `path` (relative to the repository).
fn packaging_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The number after `prefix` on the line of `text` that starts with it (after blanks).
fn number_after(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(prefix))
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no number after {prefix:?}"))
}

#[test]
fn every_service_manager_waits_for_a_pull_in_flight_before_it_kills() {
    for unit in [
        "packaging/systemd/procustodibus-broker.service",
        "packaging/debian/procustodibus-broker.service",
    ] {
        let secs = number_after(&packaging_file(unit), "TimeoutStopSec=");
        assert!(secs > LONGEST_STOP_SECS, "{unit}: TimeoutStopSec={secs}");
    }
    let openrc = number_after(
        &packaging_file("packaging/openrc/procustodibus-broker"),
        "retry=\"TERM/",
    );
    assert!(openrc > LONGEST_STOP_SECS, "openrc: TERM/{openrc}");
    // sysvinit waits with `wait_exit TRIES PID`, which polls every 0.1 s.
    let sysvinit = packaging_file("packaging/sysvinit/procustodibus-broker");
    assert!(
        sysvinit.contains("sleep 0.1"),
        "sysvinit: wait_exit no longer polls every 0.1 s"
    );
    let tries = number_after(&sysvinit, "wait_exit ");
    assert!(tries / 10.0 > LONGEST_STOP_SECS, "sysvinit: {tries} tries");
}

#[test]
fn sigterm_during_a_slow_health_check_exits_at_once() {
    let (sim, dir, _) = alerts_broker(10);
    // The health check at start takes nothing off a queue: it is abandoned at SIGTERM.
    sim.inject(Fault::Stall(Duration::from_secs(8)), 1, Some("/health"));
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "60", "-v"]);
    // The simulator logs a request when it is answered: the stalled check is not there yet.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        broker.is_alive(),
        "{}",
        describe(&broker.finish(Duration::ZERO))
    );
    assert_eq!(
        sim.queue_len("alerts"),
        10,
        "the health check did not hold the broker up"
    );
    let (out, took) = broker.stop_with("TERM", Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        took <= Duration::from_secs(1),
        "exited {took:?} after SIGTERM"
    );
    assert_eq!(sim.queue_len("alerts"), 10, "nothing was pulled");
}
