//! systemd notifications end to end (docs/reliability.md, "systemd notify and watchdog"): the
//! real binary against the simulator, with a unix datagram socket standing in for systemd
//! (`NOTIFY_SOCKET`) and a 2 s watchdog (`WATCHDOG_USEC`). Every message is read, in order:
//! `READY=1` first, a `STATUS=` line after every round whose numbers add up to what the file
//! sink received, `WATCHDOG=1` again and again, `RELOADING=1` then `READY=1` around a SIGHUP,
//! `STOPPING=1` at SIGTERM. The watchdog starves while a pull hangs (the simulator holds it,
//! `Timeout` far above), is fed while a full spool pauses pulling, and a run without `--loop`
//! sends nothing.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broker_tests::delivery::*;
use broker_tests::*;

/// The watchdog period given to the broker (`WATCHDOG_USEC`).
const WATCHDOG: Duration = Duration::from_secs(2);

/// A unix datagram socket standing in for systemd's notification socket: a thread keeps every
/// line of every datagram with the time it came.
struct FakeSystemd {
    path: PathBuf,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
}

impl FakeSystemd {
    fn bind(dir: &Path) -> FakeSystemd {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (got, halt) = (lines.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !halt.load(Ordering::Relaxed) {
                let Ok(n) = socket.recv(&mut buf) else {
                    continue;
                };
                let now = Instant::now();
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let mut got = got.lock().expect("lock");
                got.extend(text.lines().map(|l| (now, l.to_string())));
            }
        });
        FakeSystemd { path, lines, stop }
    }

    /// The environment of a broker run by a `Type=notify` unit with `WatchdogSec=2`.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("NOTIFY_SOCKET", self.path.display().to_string()),
            ("WATCHDOG_USEC", WATCHDOG.as_micros().to_string()),
        ]
    }

    fn timed_lines(&self) -> Vec<(Instant, String)> {
        self.lines.lock().expect("lock").clone()
    }

    fn lines(&self) -> Vec<String> {
        self.timed_lines().into_iter().map(|(_, l)| l).collect()
    }

    /// When each `WATCHDOG=1` came.
    fn feeds(&self) -> Vec<Instant> {
        self.timed_lines()
            .into_iter()
            .filter(|(_, l)| l == "WATCHDOG=1")
            .map(|(t, _)| t)
            .collect()
    }

    /// The `(pulled, delivered, backlog)` of every round's `STATUS=` line.
    fn rounds(&self) -> Vec<(u64, u64, u64)> {
        self.lines()
            .iter()
            .filter_map(|l| round_counts(l))
            .collect()
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The counts of `STATUS=pulled N, delivered M, backlog K` (also after a `failing: ...; `).
fn round_counts(line: &str) -> Option<(u64, u64, u64)> {
    let status = line.strip_prefix("STATUS=")?;
    let counts = status.rsplit("; ").next()?;
    let mut numbers = counts
        .strip_prefix("pulled ")?
        .split(", ")
        .enumerate()
        .map(|(i, part)| {
            let label = ["", "delivered ", "backlog "][i.min(2)];
            part.strip_prefix(label)?.parse::<u64>().ok()
        });
    Some((numbers.next()??, numbers.next()??, numbers.next()??))
}

/// Starts a `--loop 1` broker with `env`.
fn spawn_looping(dir: &BrokerDir, systemd: &FakeSystemd) -> Running {
    let env = systemd.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    dir.spawn_with_env("procustodibus-broker", &["--loop", "1"], &env)
}

/// Whether the rounds so far pulled and delivered `total` events and left no backlog.
fn settled_at(systemd: &FakeSystemd, total: u64) -> bool {
    let rounds = systemd.rounds();
    let pulled: u64 = rounds.iter().map(|r| r.0).sum();
    let delivered: u64 = rounds.iter().map(|r| r.1).sum();
    pulled == total && delivered == total && rounds.last().is_some_and(|r| r.2 == 0)
}

#[test]
fn a_looping_broker_tells_systemd_ready_every_round_reload_and_stop() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let out = dir.path("out.jsonl");
    dir.write_config(&sim.url(), &file_pipe("All", "alerts", Some(4), &out));
    dir.set_up(&sim);
    sim.enqueue_generated("alerts", 10).expect("enqueue");
    let systemd = FakeSystemd::bind(dir.dir.path());
    let mut broker = spawn_looping(&dir, &systemd);

    let limit = Duration::from_secs(30);
    let settled = wait_until(limit, || settled_at(&systemd, 10));
    assert!(
        settled,
        "rounds {:?}\n{:?}\n{}",
        systemd.rounds(),
        systemd.lines(),
        broker.stdout_so_far()
    );
    assert_eq!(count_lines(&out), 10);
    sim.enqueue_generated("alerts", 3).expect("enqueue");
    let settled = wait_until(limit, || settled_at(&systemd, 13));
    assert!(settled, "rounds {:?}", systemd.rounds());
    assert_eq!(
        count_lines(&out),
        13,
        "the STATUS lines add up to the sink's lines"
    );

    send_signal(broker.id(), "HUP");
    let reloaded = wait_until(limit, || {
        let lines = systemd.lines();
        lines
            .iter()
            .position(|l| l == "RELOADING=1")
            .is_some_and(|at| lines[at..].iter().any(|l| l == "READY=1"))
    });
    assert!(reloaded, "{:?}", systemd.lines());
    let (run, _) = broker.stop_with("TERM", Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    std::thread::sleep(Duration::from_millis(300));

    let lines = systemd.lines();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("READY=1"),
        "{lines:?}"
    );
    let at = |what: &str, from: usize| {
        lines[from..]
            .iter()
            .position(|l| l == what)
            .map(|i| i + from)
            .unwrap_or_else(|| panic!("no {what} after line {from}: {lines:?}"))
    };
    let reloading = at("RELOADING=1", 1);
    assert!(
        lines[reloading + 1].starts_with("MONOTONIC_USEC="),
        "RELOADING=1 comes with MONOTONIC_USEC: {lines:?}"
    );
    let ready_again = at("READY=1", reloading);
    let stopping = at("STOPPING=1", ready_again);
    assert!(
        lines[..reloading]
            .iter()
            .filter(|l| *l == "WATCHDOG=1")
            .count()
            >= 3,
        "the watchdog is fed again and again: {lines:?}"
    );
    for line in lines[..stopping]
        .iter()
        .filter(|l| l.starts_with("STATUS="))
    {
        let counts = round_counts(line);
        assert!(
            counts.is_some() && !line.contains("failing"),
            "a round's STATUS is `pulled N, delivered M, backlog K`: {line:?}"
        );
    }
    // Nothing but the stop's own status and watchdog feeds after STOPPING=1.
    for line in &lines[stopping + 1..] {
        assert!(
            line == "WATCHDOG=1" || line.starts_with("STATUS=stopping"),
            "{line:?} after STOPPING=1: {lines:?}"
        );
    }
    let totals = systemd
        .rounds()
        .iter()
        .fold((0, 0), |(p, d), r| (p + r.0, d + r.1));
    assert_eq!(totals, (13, 13), "pulled and delivered over every round");
}

/// A password in the `Api` URL, which a `STATUS=` line (readable by every local user) masks.
const URL_PASSWORD: &str = "url-password-never-in-status-4711";

#[test]
fn a_failed_round_is_in_the_status_line_with_url_secrets_masked() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let pipe = file_pipe("All", "alerts", None, &dir.path("out.jsonl"));
    dir.write_config(&sim.url(), &pipe);
    dir.set_up(&sim);
    let api = sim
        .url()
        .replace("http://", &format!("http://broker:{URL_PASSWORD}@"));
    // The URL's user goes as HTTP basic authorization, which the simulator refuses: every
    // round fails, and its failure names the URL.
    dir.write_config(&api, &pipe);
    let systemd = FakeSystemd::bind(dir.dir.path());
    let mut broker = spawn_looping(&dir, &systemd);
    let failing = wait_until(Duration::from_secs(20), || {
        systemd
            .lines()
            .iter()
            .any(|l| l.starts_with("STATUS=failing: cannot pull alerts: "))
    });
    let (run, _) = broker.stop_with("TERM", Duration::from_secs(10));
    assert!(failing, "{:?}\n{}", systemd.lines(), describe(&run));
    let line = systemd
        .lines()
        .into_iter()
        .find(|l| l.starts_with("STATUS=failing"))
        .expect("a failing status");
    assert_eq!(round_counts(&line), Some((0, 0, 0)), "{line}");
    assert!(
        line.contains("http://***@127.0.0.1:") && !line.contains(URL_PASSWORD),
        "{line}"
    );
}

#[test]
fn the_watchdog_starves_while_a_pull_hangs_and_is_fed_again_after() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    // Timeout far above the hang: the pull is stuck, not timed out.
    write_config_timeout(
        &dir,
        &sim.url(),
        "60",
        &file_pipe("All", "alerts", None, &dir.path("out.jsonl")),
    );
    dir.set_up(&sim);
    let systemd = FakeSystemd::bind(dir.dir.path());
    let mut broker = spawn_looping(&dir, &systemd);
    let turning = wait_until(Duration::from_secs(20), || systemd.feeds().len() >= 3);
    assert!(turning, "{:?}", systemd.lines());

    sim.hold_pulls();
    let held = wait_until(Duration::from_secs(10), || sim.held_pulls() >= 1);
    assert!(held, "no pull reached the simulator");
    let hung = Instant::now();
    std::thread::sleep(WATCHDOG * 3);
    let starved_until = Instant::now();
    sim.release_pulls();
    let fed_again = wait_until(Duration::from_secs(10), || {
        systemd.feeds().iter().any(|t| *t > starved_until)
    });
    let (run, _) = broker.stop_with("TERM", Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));

    let late: Vec<Duration> = systemd
        .feeds()
        .iter()
        .filter(|t| **t > hung + WATCHDOG && **t <= starved_until)
        .map(|t| t.duration_since(hung))
        .collect();
    assert!(
        late.is_empty(),
        "WATCHDOG=1 while a pull hung for {:?}, at {late:?} after it began",
        WATCHDOG * 3
    );
    assert!(
        fed_again,
        "no WATCHDOG=1 after the pull ended: {:?}",
        systemd.lines()
    );
}

#[test]
fn the_watchdog_is_fed_while_a_full_spool_pauses_pulling() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    // A syslog pipe to a socket nobody listens on: nothing is delivered and the spool fills.
    let socket = dir.path("dead.sock");
    dir.write_config_with(
        &sim.url(),
        "SpoolMax = 16K\n",
        &default_syslog_pipe("Dead", "alerts", Some(50), &socket.display().to_string()),
    );
    dir.set_up(&sim);
    sim.enqueue_generated("alerts", 2000).expect("enqueue");
    let systemd = FakeSystemd::bind(dir.dir.path());
    let mut broker = spawn_looping(&dir, &systemd);
    let full = wait_until(Duration::from_secs(20), || {
        broker.stdout_so_far().contains("spool full (")
    });
    assert!(full, "no `spool full` line\n{}", broker.stdout_so_far());
    let paused = Instant::now();
    let statuses_before = systemd.rounds().len();
    std::thread::sleep(WATCHDOG * 3);
    let (run, _) = broker.stop_with("TERM", Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));

    assert_eq!(
        systemd.rounds().len(),
        statuses_before,
        "the round stays open while pulling is paused: {:?}",
        systemd.lines()
    );
    let feeds: Vec<Instant> = systemd
        .feeds()
        .into_iter()
        .filter(|t| *t > paused && *t <= paused + WATCHDOG * 3)
        .collect();
    let longest_gap = feeds
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or(WATCHDOG * 3);
    assert!(
        feeds.len() >= 3 && longest_gap < WATCHDOG,
        "{} WATCHDOG=1 in {:?} of paused pulling, longest gap {longest_gap:?}",
        feeds.len(),
        WATCHDOG * 3
    );
}

#[test]
fn a_run_without_loop_tells_systemd_nothing() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let out = dir.path("out.jsonl");
    dir.write_config(&sim.url(), &file_pipe("All", "alerts", None, &out));
    dir.set_up(&sim);
    sim.enqueue_generated("alerts", 3).expect("enqueue");
    let systemd = FakeSystemd::bind(dir.dir.path());
    let mut command = dir.command("procustodibus-broker");
    command.envs(systemd.env());
    let run = run_with_timeout(command, Duration::from_secs(30));
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(count_lines(&out), 3);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(systemd.lines(), Vec::<String>::new());
}
