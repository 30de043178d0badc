//! `procustodibus-broker --status` against a real `--loop` daemon and the simulator: healthy,
//! a sink down past `StatusGrace`, a queue the API fails, both recovering by themselves, the
//! daemon stopped; the JSON form with the same verdict; as the daemon's own unprivileged user.

use std::process::Output;
use std::time::{Duration, Instant};

use broker_sim::Fault;
use broker_tests::*;

/// The uid and gid of `nobody`.
const NOBODY: u32 = 65534;

/// Runs `--status` (with `extra` flags) for `dir`'s config as root.
fn status(dir: &BrokerDir, extra: &[&str]) -> Output {
    let mut args = vec!["--status"];
    args.extend_from_slice(extra);
    dir.run("procustodibus-broker", &args)
}

/// Runs `--status` until its exit code is `code` (at most `limit`); returns the last output and
/// how long it took.
fn status_until(dir: &BrokerDir, code: i32, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    loop {
        let out = status(dir, &[]);
        if out.status.code() == Some(code) || start.elapsed() > limit {
            return (out, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `--status --json` object, checked to have `verdict`.
fn json_status(dir: &BrokerDir, verdict: &str) -> serde_json::Value {
    let out = status(dir, &["--json"]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--status --json is not JSON ({e}): {}", describe(&out)));
    assert_eq!(value["verdict"], verdict, "{value:#}");
    let code = match verdict {
        "healthy" => 0,
        "unhealthy" => 1,
        _ => 3,
    };
    assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
    value
}

fn last_line(out: &Output) -> String {
    stdout(out).lines().last().unwrap_or_default().to_string()
}

/// A config with a syslog pipe `Sys` to a unix socket and a file pipe `File`, both from
/// alerts and log_authn, `StatusGrace = 2` and the harness's `Timeout = 3`.
fn broker_with_two_pipes(sim: &broker_sim::Simulator) -> BrokerDir {
    let dir = BrokerDir::new();
    let socket = dir.path("log.sock");
    dir.write_config_with(
        &sim.url(),
        "StatusGrace = 2\n",
        &format!(
            "{}{}",
            default_syslog_pipe(
                "Sys",
                "alerts, log_authn",
                None,
                &socket.display().to_string()
            ),
            file_pipe("File", "alerts, log_authn", None, &dir.path("f.jsonl"))
        ),
    );
    dir.set_up(sim);
    dir
}

#[test]
fn status_follows_a_sink_outage_an_api_outage_their_recovery_and_the_stop() {
    let sim = simulator(Default::default());
    let dir = broker_with_two_pipes(&sim);
    let socket = dir.path("log.sock");
    let receiver = DatagramCollector::bind_unix(&socket);
    sim.enqueue_generated("alerts", 3).unwrap();
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1"]);

    // Healthy: a line per pipe and per queue, then the verdict.
    let delivered = wait_until(Duration::from_secs(20), || {
        receiver.count() == 3 && dir.lines("f.jsonl").len() == 3
    });
    assert!(delivered, "{}", broker.stdout_so_far());
    // The deliveries are published with the round after them.
    let mut out = status(&dir, &[]);
    let published = wait_until(Duration::from_secs(20), || {
        out = status(&dir, &[]);
        stdout(&out).matches("ok; dead-lettered 0").count() == 2
    });
    assert!(published, "{}", describe(&out));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(
        lines[0].starts_with("pipe Sys (syslog): backlog 0 events, 0 bytes; last delivery 20"),
        "{text}"
    );
    assert!(
        lines[0].ends_with("ok; dead-lettered 0 since start"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("pipe File (file): backlog 0 events"),
        "{text}"
    );
    assert!(lines[2].starts_with("queue alerts: last pull 20"), "{text}");
    assert!(lines[2].ends_with(": ok"), "{text}");
    assert!(
        lines[3].starts_with("queue log_authn: last pull 20"),
        "{text}"
    );
    assert!(
        lines[4].starts_with(&format!("daemon: pid {}, version ", broker.id())),
        "{text}"
    );
    assert_eq!(lines[5], "HEALTHY", "{text}");
    let value = json_status(&dir, "healthy");
    assert_eq!(value["healthy"], true);
    assert_eq!(value["reasons"], serde_json::json!([]));
    assert_eq!(value["status"]["pid"], broker.id());
    assert_eq!(value["status"]["grace_seconds"], 2);
    assert_eq!(value["status"]["pipes"][0]["name"], "Sys");
    assert_eq!(value["status"]["queues"][1]["name"], "log_authn");

    // The syslog receiver goes away: unhealthy once Sys has failed for StatusGrace (2 s),
    // naming the pipe and the reason, while File goes on.
    drop(receiver.stop());
    std::fs::remove_file(&socket).unwrap();
    sim.enqueue_generated("alerts", 4).unwrap();
    let (out, took) = status_until(&dir, 1, Duration::from_secs(30));
    let verdict = last_line(&out);
    assert!(
        verdict.starts_with("UNHEALTHY: pipe Sys: failing for ")
            && verdict.contains("(StatusGrace 2 s): cannot ")
            && verdict.contains(&socket.display().to_string()),
        "after {took:?}: {}\n{}",
        describe(&out),
        broker.stdout_so_far()
    );
    assert!(!verdict.contains("File"), "{verdict}");
    let text = stdout(&out);
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.starts_with("pipe Sys (syslog): backlog 4 events, ")
                && l.contains("; failing since 20")),
        "{text}"
    );
    let value = json_status(&dir, "unhealthy");
    assert_eq!(value["healthy"], false);
    let reason = value["reasons"][0].as_str().unwrap();
    assert!(reason.starts_with("pipe Sys: failing for "), "{value:#}");
    assert_eq!(value["status"]["pipes"][0]["backlog_events"], 4);

    // It comes back: healthy again by itself, nothing waiting.
    let receiver = DatagramCollector::bind_unix(&socket);
    let (out, _) = status_until(&dir, 0, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(wait_until(Duration::from_secs(20), || receiver.count() == 4));

    // The API fails every alerts pull: unhealthy within two intervals plus Timeout (5 s),
    // naming the queue and the error, not the other queue.
    sim.inject(Fault::Status(503), 1_000_000, Some("/queues/alerts"));
    let (out, took) = status_until(&dir, 1, Duration::from_secs(30));
    let verdict = last_line(&out);
    assert!(
        verdict.starts_with("UNHEALTHY: queue alerts: no successful pull for ")
            && verdict.contains("(limit 5 s: two intervals plus Timeout): cannot pull alerts")
            && !verdict.contains("log_authn"),
        "after {took:?}: {}",
        describe(&out)
    );
    assert!(
        took < Duration::from_secs(15),
        "unhealthy only after {took:?}"
    );
    let value = json_status(&dir, "unhealthy");
    assert!(value["reasons"][0]
        .as_str()
        .unwrap()
        .starts_with("queue alerts: "));

    // The API answers again: healthy by itself.
    sim.clear_faults();
    let (out, _) = status_until(&dir, 0, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Stopped: not running, exit 3, the last published lines still shown.
    let stopped = broker.terminate(Duration::from_secs(10));
    assert_eq!(stopped.status.code(), Some(0), "{}", describe(&stopped));
    let out = status(&dir, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(
        last_line(&out),
        format!(
            "NOT RUNNING: no procustodibus-broker runs on spool {} (its lock is free)",
            dir.spool().display()
        )
    );
    assert!(
        stdout(&out).starts_with("pipe Sys (syslog): backlog 0 events, 0 bytes; "),
        "{}",
        describe(&out)
    );
    let value = json_status(&dir, "not_running");
    assert_eq!(value["healthy"], false);

    // A run without --loop leaves 2 events for Sys in the spool (its socket is gone): with no
    // daemon, the backlog comes from the spool itself, not from the last published status.
    drop(receiver.stop());
    std::fs::remove_file(&socket).unwrap();
    sim.enqueue_generated("alerts", 2).unwrap();
    let once = dir.run("procustodibus-broker", &[]);
    assert_eq!(once.status.code(), Some(1), "{}", describe(&once));
    let out = status(&dir, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("pipe Sys (syslog): backlog 2 events, ")
            && text.contains("\npipe File (file): backlog 0 events, 0 bytes; "),
        "{}",
        describe(&out)
    );
    let value = json_status(&dir, "not_running");
    assert_eq!(value["status"]["pipes"][0]["backlog_events"], 2);
    assert!(
        value["status"]["pipes"][0]["backlog_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn status_works_as_the_daemon_user_and_as_root() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let out_dir = dir.path("out");
    dir.write_config(
        &sim.url(),
        &file_pipe("File", "alerts", None, &out_dir.join("f.jsonl")),
    );
    dir.set_up(&sim);
    // As installed: the config root's (so root may read it), the credentials the daemon's (as
    // setup writes them), the spool and the output directory the daemon user's.
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    mode(dir.dir.path(), 0o755);
    std::os::unix::fs::chown(dir.credentials(), Some(NOBODY), Some(NOBODY)).unwrap();
    mode(&dir.credentials(), 0o600);
    for owned in [dir.spool(), out_dir] {
        std::fs::create_dir(&owned).unwrap();
        chown_recursive(&owned, NOBODY, NOBODY);
    }
    let as_nobody = || {
        let mut command = std::process::Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(binary("procustodibus-broker"))
            .arg("--config")
            .arg(dir.config())
            .arg("--status");
        run_with_timeout(command, Duration::from_secs(30))
    };
    let out = as_nobody();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));

    let _broker = dir.spawn_as(NOBODY, NOBODY, "procustodibus-broker", &["--loop", "1"]);
    let healthy = wait_until(Duration::from_secs(20), || {
        as_nobody().status.code() == Some(0)
    });
    let out = as_nobody();
    assert!(healthy, "{}", describe(&out));
    assert_eq!(last_line(&out), "HEALTHY");
    let out = status(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "as root: {}", describe(&out));
    // The dead-letter summary only reads the spool too: root runs it as installed.
    let out = dir.run("procustodibus-broker", &["--dead-letter"]);
    assert_eq!(out.status.code(), Some(0), "as root: {}", describe(&out));

    // The status file is the daemon user's, readable by its group, and nothing else.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir.spool().join("status.json")).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (NOBODY, 0o640));
}

#[test]
fn check_config_rejects_a_bad_status_grace_in_one_line() {
    let dir = BrokerDir::new();
    dir.write_config_with("http://127.0.0.1:9", "StatusGrace = -5\n", "");
    for args in [&["--check-config"][..], &["--status"][..]] {
        let out = dir.run("procustodibus-broker", args);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert_eq!(
            stderr(&out).trim_end(),
            format!(
                "{} line 6: StatusGrace \"-5\" is not a whole number of seconds (0 or more)",
                dir.config().display()
            )
        );
    }
}

#[test]
fn a_full_spool_shows_as_paused_and_turns_unhealthy_after_the_pull_limit() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let socket = dir.path("dead.sock");
    dir.write_config_with(
        &sim.url(),
        "SpoolMax = 16K\nStatusGrace = 3600\n",
        &default_syslog_pipe("Dead", "alerts", Some(50), &socket.display().to_string()),
    );
    dir.set_up(&sim);
    sim.enqueue_generated("alerts", 2000).unwrap();
    let _broker = dir.spawn("procustodibus-broker", &["--loop", "1"]);

    // Published as soon as pulling pauses, though the round does not end.
    let mut out = status(&dir, &[]);
    let paused = wait_until(Duration::from_secs(20), || {
        out = status(&dir, &[]);
        stdout(&out).contains("\nqueue alerts: ") && stdout(&out).contains("; paused: spool full\n")
    });
    assert!(paused, "{}", describe(&out));
    // Two intervals plus Timeout (5 s) later, the queue makes the broker unhealthy.
    let (out, _) = status_until(&dir, 1, Duration::from_secs(30));
    let verdict = last_line(&out);
    assert!(
        verdict.starts_with("UNHEALTHY: queue alerts: no successful pull for ")
            && verdict.ends_with(": pulling paused: spool full"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_status_file_that_cannot_be_written_is_logged_once_and_delivery_goes_on() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        &file_pipe("File", "alerts", None, &dir.path("f.jsonl")),
    );
    dir.set_up(&sim);
    // The temporary file's name is taken by a directory: every write fails.
    std::fs::create_dir_all(dir.spool().join("status.json.tmp")).unwrap();
    sim.enqueue_generated("alerts", 3).unwrap();
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    assert!(wait_until(Duration::from_secs(20), || dir
        .lines("f.jsonl")
        .len()
        == 3));
    sim.enqueue_generated("alerts", 2).unwrap();
    assert!(wait_until(Duration::from_secs(20), || dir
        .lines("f.jsonl")
        .len()
        == 5));
    let log = broker.stdout_so_far();
    let warnings = lines_containing(&log, "cannot write the status file in ");
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].ends_with("(--status shows an old state)"),
        "{log}"
    );
    let out = status(&dir, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        last_line(&out).contains("which publishes no status"),
        "{}",
        describe(&out)
    );

    // Once it can be written again, it is, and said so.
    std::fs::remove_dir(dir.spool().join("status.json.tmp")).unwrap();
    let (out, _) = status_until(&dir, 0, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let log = broker.terminate(Duration::from_secs(10));
    assert_eq!(
        lines_containing(&stdout(&log), "written again").len(),
        1,
        "{}",
        describe(&log)
    );
}

#[test]
fn a_pipe_that_starts_failing_is_published_at_once_not_at_the_end_of_the_round() {
    let sim = simulator(Default::default());
    let dir = broker_with_two_pipes(&sim);
    let socket = dir.path("log.sock");
    // A run without --loop leaves 2 events for Sys in the spool (no socket).
    sim.enqueue_generated("alerts", 2).unwrap();
    let once = dir.run("procustodibus-broker", &[]);
    assert_eq!(once.status.code(), Some(1), "{}", describe(&once));
    std::fs::write(
        dir.config(),
        std::fs::read_to_string(dir.config())
            .unwrap()
            .replace("StatusGrace = 2", "StatusGrace = 0"),
    )
    .unwrap();
    // Every pull hangs past Timeout (3 s): the first round cannot end before then, while Sys
    // fails at once on what the spool holds.
    sim.inject(
        Fault::Delay(Duration::from_secs(8)),
        1_000,
        Some("/queues/"),
    );
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1"]);
    let (out, took) = status_until(&dir, 1, Duration::from_secs(20));
    let text = stdout(&out);
    assert!(
        last_line(&out).starts_with("UNHEALTHY: pipe Sys: failing for "),
        "after {took:?}: {}",
        describe(&out)
    );
    assert!(
        text.contains("\nqueue alerts: last pull never\n"),
        "published before the first round ended: {}\n{}",
        describe(&out),
        broker.stdout_so_far()
    );
    assert!(!socket.exists());
    sim.clear_faults();
    broker.terminate(Duration::from_secs(15));
}
