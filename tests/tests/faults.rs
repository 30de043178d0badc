//! A looping broker against a failing API (docs/reliability.md, "Retries"): 5xx bursts,
//! dropped connections, answers slower than `Timeout`, malformed JSON and expired sessions in
//! the middle of a drain. The simulator's pulls are transactional (a failed pull removes
//! nothing), so every event it held must arrive exactly once, in queue order; the broker never
//! exits, logs `retrying the api in S s`, retries within seconds rather than after a whole
//! `--loop` interval, and exits 0 on SIGTERM.
//!
//! Faults are injected before the broker starts, as a per-queue sequence of the pulls to come:
//! a few pulls that go through (a short `Delay`), then the failures, then more pulls. So they
//! hit the drain in its middle every time, without racing the broker.

use std::time::{Duration, Instant};

use broker_sim::{Fault, SimOptions, Simulator};
use broker_tests::delivery::*;
use broker_tests::*;

/// Most time a drain with faults may take.
const DRAIN_LIMIT: Duration = Duration::from_secs(90);

/// A pull that goes through (slowed down a little, so the drain lasts a few pulls).
fn pass() -> Fault {
    Fault::Delay(Duration::from_millis(5))
}

/// Injects `steps` on the pulls of `queue`, in order: each step is a fault and how many pulls
/// in a row take it.
fn inject_sequence(sim: &Simulator, queue: &str, steps: &[(Fault, u32)]) {
    let path = format!("/queues/{queue}/next");
    for (fault, count) in steps {
        sim.inject(fault.clone(), *count, Some(&path));
    }
}

/// A simulator, a set-up broker whose one file pipe `out.jsonl` reads `queues` with `Max`,
/// `Timeout` as given, and `per_queue` generated events in each queue.
struct Bench {
    sim: Simulator,
    dir: BrokerDir,
    queues: Vec<&'static str>,
    catalog: Catalog,
}

impl Bench {
    fn new(options: SimOptions, queues: &[&'static str], per_queue: usize, max: u32) -> Bench {
        Bench::with_timeout(options, queues, per_queue, max, "3")
    }

    fn with_timeout(
        options: SimOptions,
        queues: &[&'static str],
        per_queue: usize,
        max: u32,
        timeout: &str,
    ) -> Bench {
        let sim = simulator(options);
        let dir = BrokerDir::new();
        let pipe = file_pipe("All", &queues.join(", "), Some(max), &dir.path("out.jsonl"));
        write_config_timeout(&dir, &sim.url(), timeout, &pipe);
        dir.set_up(&sim);
        sim.clear_requests();
        let raws: Vec<Vec<String>> = queues
            .iter()
            .map(|q| sim.enqueue_generated(q, per_queue).expect("enqueue"))
            .collect();
        let named: Vec<(&str, &[String])> = queues
            .iter()
            .zip(&raws)
            .map(|(q, r)| (*q, r.as_slice()))
            .collect();
        let catalog = Catalog::new(&named);
        Bench {
            sim,
            dir,
            queues: queues.to_vec(),
            catalog,
        }
    }

    fn out_lines(&self) -> usize {
        count_lines(&self.dir.path("out.jsonl"))
    }

    /// Whether the drain is over: queues empty, faults used up, every event written.
    fn drained(&self) -> bool {
        queues_empty(&self.sim, &self.queues)
            && self.sim.pending_faults() == 0
            && self.out_lines() >= self.catalog.total()
    }

    /// Waits for the drain, checks the broker is still running, stops it with SIGTERM (exit 0)
    /// and checks every event arrived exactly once. Returns the run's output.
    fn finish(&self, broker: &mut Running) -> std::process::Output {
        let drained = wait_until(DRAIN_LIMIT, || self.drained());
        // Late duplicates would show up now.
        std::thread::sleep(Duration::from_millis(500));
        let alive = broker.is_alive();
        let (out, took) = broker.stop_with("TERM", Duration::from_secs(10));
        let tally = self.catalog.tally(&read_lines(&self.dir.path("out.jsonl")));
        assert!(
            drained,
            "not drained within {DRAIN_LIMIT:?}: queues {:?}, pending faults {}, {} of {} lines; {}\n{}",
            self.queues
                .iter()
                .map(|q| self.sim.queue_len(q))
                .collect::<Vec<_>>(),
            self.sim.pending_faults(),
            self.out_lines(),
            self.catalog.total(),
            tally.describe(),
            describe(&out)
        );
        assert!(
            alive,
            "the broker exited during the drain: {}",
            describe(&out)
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "SIGTERM after {took:?}: {}",
            describe(&out)
        );
        assert!(tally.exactly_once(), "{}", tally.describe());
        out
    }
}

/// The delays of the log's `retrying the api in S s` lines, in order.
fn retry_delays(out: &std::process::Output) -> Vec<f64> {
    log_lines_with(out, "retrying the api in")
        .iter()
        .map(|line| {
            line.split("retrying the api in ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|s| s.trim_end_matches('s').parse().ok())
                .unwrap_or_else(|| panic!("no number of seconds in {line:?}"))
        })
        .collect()
}

/// The broker's log says it retries the API, never later than the `--loop` interval
/// (`loop_seconds`; the log rounds to tenths).
fn assert_retry_logged(out: &std::process::Output, loop_seconds: f64) {
    let delays = retry_delays(out);
    assert!(
        !delays.is_empty(),
        "no `retrying the api in S s` line: {}",
        describe(out)
    );
    assert!(
        delays.iter().all(|d| *d <= loop_seconds + 0.05),
        "a retry delay above the --loop interval {loop_seconds} s: {delays:?}"
    );
}

/// The statuses the simulator answered to the pulls of `queue`.
fn pull_statuses(sim: &Simulator, queue: &str) -> Vec<u16> {
    requests_to(sim, &format!("/queues/{queue}/next"))
        .into_iter()
        .map(|(_, s)| s)
        .collect()
}

#[test]
fn bursts_of_5xx_in_a_drain_lose_and_repeat_nothing() {
    let bench = Bench::new(Default::default(), &["alerts", "log_authn"], 1500, 100);
    inject_sequence(
        &bench.sim,
        "alerts",
        &[
            (pass(), 3),
            (Fault::Status(500), 3),
            (pass(), 1),
            (Fault::Status(502), 1),
            (Fault::Status(503), 2),
            (Fault::Status(504), 1),
            (pass(), 2),
            (Fault::Status(500), 1),
        ],
    );
    inject_sequence(
        &bench.sim,
        "log_authn",
        &[(pass(), 5), (Fault::Status(503), 4), (pass(), 1)],
    );
    let mut broker = bench
        .dir
        .spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let out = bench.finish(&mut broker);
    assert_retry_logged(&out, 1.0);
    let alerts = pull_statuses(&bench.sim, "alerts");
    assert_eq!(
        alerts.iter().filter(|s| **s >= 500).count(),
        8,
        "every injected 5xx was met: {alerts:?}"
    );
}

#[test]
fn dropped_connections_in_a_drain_lose_and_repeat_nothing() {
    let bench = Bench::new(
        Default::default(),
        &["endpoint_stats", "log_changes"],
        1200,
        100,
    );
    inject_sequence(
        &bench.sim,
        "endpoint_stats",
        &[(pass(), 2), (Fault::Drop, 2), (pass(), 3), (Fault::Drop, 1)],
    );
    inject_sequence(&bench.sim, "log_changes", &[(pass(), 4), (Fault::Drop, 3)]);
    let mut broker = bench
        .dir
        .spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let out = bench.finish(&mut broker);
    assert_retry_logged(&out, 1.0);
}

#[test]
fn answers_slower_than_the_timeout_lose_and_repeat_nothing() {
    // Timeout = 1: the broker gives up on a pull after a second; the simulator's answer comes
    // after 2.5 s, to nobody, so it takes nothing from the queue (as the real API's transaction
    // rolls back) or answers a late 504.
    let bench = Bench::with_timeout(Default::default(), &["alerts", "log_authn"], 800, 100, "1");
    let slow = Fault::Delay(Duration::from_millis(2500));
    let stall = Fault::Stall(Duration::from_millis(2500));
    inject_sequence(
        &bench.sim,
        "alerts",
        &[(pass(), 2), (slow.clone(), 2), (pass(), 1), (stall, 1)],
    );
    inject_sequence(&bench.sim, "log_authn", &[(pass(), 3), (slow, 1)]);
    let mut broker = bench
        .dir
        .spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let out = bench.finish(&mut broker);
    assert_retry_logged(&out, 1.0);
    // 499: the client left before the answer. Had the broker waited longer than its Timeout,
    // it would have got the late answer instead.
    let gone = |q: &str| {
        pull_statuses(&bench.sim, q)
            .iter()
            .filter(|s| **s == 499)
            .count()
    };
    assert_eq!(
        (gone("alerts"), gone("log_authn")),
        (3, 1),
        "the broker gives up on pulls slower than Timeout = 1: alerts {:?}, log_authn {:?}",
        pull_statuses(&bench.sim, "alerts"),
        pull_statuses(&bench.sim, "log_authn")
    );
}

#[test]
fn malformed_answers_in_a_drain_lose_and_repeat_nothing() {
    let bench = Bench::new(Default::default(), &["alerts", "log_changes"], 1000, 100);
    inject_sequence(
        &bench.sim,
        "alerts",
        &[
            (pass(), 2),
            (Fault::MalformedJson, 2),
            (pass(), 2),
            (Fault::MalformedJson, 1),
        ],
    );
    inject_sequence(
        &bench.sim,
        "log_changes",
        &[(pass(), 1), (Fault::MalformedJson, 3)],
    );
    let mut broker = bench
        .dir
        .spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let out = bench.finish(&mut broker);
    assert_retry_logged(&out, 1.0);
    let errors = log_lines_with(&out, "malformed answer");
    assert!(errors.len() >= 6, "{}", describe(&out));
}

#[test]
fn sessions_expired_in_a_drain_lose_and_repeat_nothing() {
    let bench = Bench::new(Default::default(), &["alerts", "endpoint_stats"], 2000, 100);
    // Slow pulls (40 of them per queue at 100 ms): the drain lasts about 4 s.
    for q in ["alerts", "endpoint_stats"] {
        inject_sequence(
            &bench.sim,
            q,
            &[(Fault::Delay(Duration::from_millis(100)), 25)],
        );
    }
    let mut broker = bench
        .dir
        .spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let started = wait_until(Duration::from_secs(20), || bench.out_lines() >= 200);
    let logins_before = bench.sim.login_count();
    let served: usize = ["alerts", "endpoint_stats"]
        .iter()
        .map(|q| bench.sim.served_count(q))
        .sum();
    bench.sim.expire_all_sessions();
    assert!(
        started,
        "no events after 20 s: {}",
        describe(&broker.finish(Duration::ZERO))
    );
    assert!(
        served < bench.catalog.total(),
        "the drain ended before the sessions expired: make it slower"
    );
    bench.finish(&mut broker);
    assert!(
        bench.sim.login_count() > logins_before,
        "the broker logged in again after its session expired"
    );
    let refused = bench
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/next") && r.status == 401)
        .count();
    assert!(refused >= 1, "a pull met the expired session");
}

#[test]
fn short_sessions_expire_again_and_again_in_a_drain() {
    let options = SimOptions {
        // Whole seconds: the API reports the lifetime in seconds, and never 0.
        session_lifetime: Duration::from_secs(2),
        ..Default::default()
    };
    let bench = Bench::new(options, &["log_authn"], 2000, 100);
    inject_sequence(
        &bench.sim,
        "log_authn",
        &[(Fault::Delay(Duration::from_millis(300)), 20)],
    );
    let mut broker = bench
        .dir
        .spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    bench.finish(&mut broker);
    assert!(
        bench.sim.login_count() >= 3,
        "{} logins in a 6 s drain with 2 s sessions",
        bench.sim.login_count()
    );
}

#[test]
fn a_failed_pull_is_retried_within_seconds_not_after_the_loop_interval() {
    let bench = Bench::new(Default::default(), &["alerts"], 500, 100);
    inject_sequence(
        &bench.sim,
        "alerts",
        &[
            (pass(), 1),
            (Fault::Status(503), 2),
            (Fault::Drop, 1),
            (Fault::MalformedJson, 1),
        ],
    );
    let start = Instant::now();
    let mut broker = bench
        .dir
        .spawn("procustodibus-broker", &["--loop", "30", "-v"]);
    // Backoff 0.25, 0.5, 1, 2 s, each with up to half again of jitter: 5.6 s at most, while a
    // wait for the next round would take 30 s.
    let recovered = wait_until(Duration::from_secs(10), || bench.drained());
    let took = start.elapsed();
    let alive = broker.is_alive();
    let (out, _) = broker.stop_with("TERM", Duration::from_secs(10));
    let delays = retry_delays(&out);
    println!("drained through 4 failed pulls in {took:?} with --loop 30; retry delays {delays:?}");
    assert!(
        recovered,
        "not drained {took:?} after the start with --loop 30 ({} of {} lines): {}",
        bench.out_lines(),
        bench.catalog.total(),
        describe(&out)
    );
    assert!(alive, "{}", describe(&out));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let tally = bench
        .catalog
        .tally(&read_lines(&bench.dir.path("out.jsonl")));
    assert!(tally.exactly_once(), "{}", tally.describe());
    assert_retry_logged(&out, 30.0);
    // Four failures in a row: the n-th retry waits 0.25 * 2^(n-1) s plus up to half of that.
    assert!(delays.len() >= 4, "{delays:?}: {}", describe(&out));
    for (n, delay) in delays.iter().take(4).enumerate() {
        let base = 0.25 * f64::from(1u32 << n);
        assert!(
            *delay <= base * 1.5 + 0.05,
            "retry {} after {delay} s, expected 0.25 s doubling with at most half again of \
             jitter (at most {} s): delays {delays:?}",
            n + 1,
            base * 1.5
        );
    }
}

#[test]
fn every_fault_at_once_on_every_queue_with_two_pipes() {
    let sim = simulator(SimOptions {
        session_lifetime: Duration::from_secs(3),
        ..Default::default()
    });
    let dir = BrokerDir::new();
    let all = ["alerts", "endpoint_stats", "log_authn", "log_changes"];
    let pipes = format!(
        "{}{}",
        file_pipe(
            "Everything",
            &all.join(", "),
            Some(200),
            &dir.path("all.jsonl")
        ),
        file_pipe(
            "Security",
            "alerts, log_authn",
            Some(250),
            &dir.path("security.jsonl")
        )
    );
    write_config_timeout(&dir, &sim.url(), "1", &pipes);
    dir.set_up(&sim);
    let raws: Vec<Vec<String>> = all
        .iter()
        .map(|q| sim.enqueue_generated(q, 2500).expect("enqueue"))
        .collect();
    let everything = Catalog::new(
        &all.iter()
            .zip(&raws)
            .map(|(q, r)| (*q, r.as_slice()))
            .collect::<Vec<_>>(),
    );
    let security = Catalog::new(&[("alerts", &raws[0]), ("log_authn", &raws[2])]);
    let slow = Fault::Delay(Duration::from_millis(2000));
    let stall = Fault::Stall(Duration::from_millis(1500));
    inject_sequence(
        &sim,
        "alerts",
        &[
            (pass(), 2),
            (Fault::Status(500), 2),
            (Fault::Drop, 1),
            (pass(), 1),
            (Fault::MalformedJson, 1),
            (slow.clone(), 1),
            (Fault::Unauthorized, 1),
        ],
    );
    inject_sequence(
        &sim,
        "endpoint_stats",
        &[
            (pass(), 1),
            (stall, 1),
            (Fault::Status(502), 3),
            (pass(), 3),
            (Fault::Drop, 2),
        ],
    );
    inject_sequence(
        &sim,
        "log_authn",
        &[
            (pass(), 4),
            (Fault::MalformedJson, 1),
            (slow, 1),
            (Fault::Status(503), 1),
        ],
    );
    inject_sequence(
        &sim,
        "log_changes",
        &[(Fault::Drop, 1), (pass(), 2), (Fault::Status(504), 2)],
    );
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let drained = wait_until(DRAIN_LIMIT, || {
        queues_empty(&sim, &all)
            && sim.pending_faults() == 0
            && count_lines(&dir.path("all.jsonl")) >= everything.total()
            && count_lines(&dir.path("security.jsonl")) >= security.total()
    });
    std::thread::sleep(Duration::from_millis(500));
    let alive = broker.is_alive();
    let (out, _) = broker.stop_with("TERM", Duration::from_secs(10));
    let got_all = everything.tally(&read_lines(&dir.path("all.jsonl")));
    let got_security = security.tally(&read_lines(&dir.path("security.jsonl")));
    assert!(
        drained,
        "not drained: pending faults {}; Everything: {}; Security: {}\n{}",
        sim.pending_faults(),
        got_all.describe(),
        got_security.describe(),
        describe(&out)
    );
    assert!(alive, "{}", describe(&out));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(got_all.exactly_once(), "Everything: {}", got_all.describe());
    assert!(
        got_security.exactly_once(),
        "Security: {}",
        got_security.describe()
    );
    assert_retry_logged(&out, 1.0);
}
