//! The broker as a service (docs/reliability.md, "The spool" and "Signals and lifecycle"):
//! SIGKILL in the middle of a drain and a restart (every event served arrives at least once,
//! with few duplicates); SIGTERM and SIGINT in a drain (exit 0 within 5 s, `stopped`, and a
//! restart delivers the rest exactly once), also while a pull hangs; SIGHUP after logrotate's
//! `mv`, and a file sink that notices a moved or deleted file by itself.

use std::time::{Duration, Instant};

use broker_sim::{Fault, Simulator};
use broker_tests::delivery::*;
use broker_tests::*;

const QUEUES: [&str; 4] = ["alerts", "endpoint_stats", "log_authn", "log_changes"];

/// A simulator and a set-up broker with one file pipe `out.jsonl` from every queue with `max`,
/// and `per_queue` generated events in each queue.
fn drain_bench(per_queue: usize, max: u32, timeout: &str) -> (Simulator, BrokerDir, Catalog) {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let pipe = file_pipe("All", &QUEUES.join(", "), Some(max), &dir.path("out.jsonl"));
    write_config_timeout(&dir, &sim.url(), timeout, &pipe);
    dir.set_up(&sim);
    let raws: Vec<Vec<String>> = QUEUES
        .iter()
        .map(|q| sim.enqueue_generated(q, per_queue).expect("enqueue"))
        .collect();
    let catalog = Catalog::new(
        &QUEUES
            .iter()
            .zip(&raws)
            .map(|(q, r)| (*q, r.as_slice()))
            .collect::<Vec<_>>(),
    );
    (sim, dir, catalog)
}

/// Slows every pull down by `each`, for the next `count` pulls, so a drain lasts long enough
/// to be interrupted in its middle.
fn slow_pulls(sim: &Simulator, each: Duration, count: u32) {
    sim.inject(Fault::Delay(each), count, Some("/queues/"));
}

fn served(sim: &Simulator) -> Vec<usize> {
    QUEUES.iter().map(|q| sim.served_count(q)).collect()
}

/// Runs a `--loop 1` broker until every queue is empty and the output has at least `lines`
/// lines and has not grown for a second; stops it with SIGTERM (exit 0) and returns its output.
fn drain_to_the_end(sim: &Simulator, dir: &BrokerDir, lines: usize) -> std::process::Output {
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let mut last = (usize::MAX, Instant::now());
    let done = wait_until(Duration::from_secs(120), || {
        let now = count_lines(&dir.path("out.jsonl"));
        if now != last.0 {
            last = (now, Instant::now());
        }
        queues_empty(sim, &QUEUES) && now >= lines && last.1.elapsed() >= Duration::from_secs(1)
    });
    let alive = broker.is_alive();
    let (out, _) = broker.stop_with("TERM", Duration::from_secs(10));
    assert!(
        done,
        "the restarted broker did not finish the drain: queues {:?}, {} lines of {lines}: {}",
        QUEUES.iter().map(|q| sim.queue_len(q)).collect::<Vec<_>>(),
        count_lines(&dir.path("out.jsonl")),
        describe(&out)
    );
    assert!(alive, "{}", describe(&out));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    out
}

/// SIGKILL a broker draining 20,000 events (Max 100) when some but not all are in the output,
/// then restart it. With `quiesce`, pulls are held first and the kill waits until every queue
/// with events left has a pull waiting, so no served answer is on its way: every served event
/// must then be in the output. Without, pulls run at full speed, the kill lands anywhere, and
/// the answers in flight at that moment (at most one pull, the last served, per queue: pulled
/// but not yet in the spool) may be lost with the process.
fn crash_and_restart(quiesce: bool) {
    const MAX: usize = 100;
    let (sim, dir, catalog) = drain_bench(5000, MAX as u32, "3");
    if quiesce {
        // Slower pulls: the held pulls are waited for while the drain is still going on.
        slow_pulls(&sim, Duration::from_millis(20), 1000);
    }
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let some = wait_until(Duration::from_secs(60), || {
        count_lines(&dir.path("out.jsonl")) >= 2000
    });
    assert!(
        some,
        "no progress: {}",
        describe(&broker.finish(Duration::ZERO))
    );
    if quiesce {
        sim.hold_pulls();
        let settled = wait_until(Duration::from_secs(10), || {
            let waiting = QUEUES.iter().filter(|q| sim.queue_len(q) > 0).count();
            sim.held_pulls() >= waiting
        });
        assert!(
            settled,
            "held pulls {} while {} queues have events left",
            sim.held_pulls(),
            QUEUES.iter().filter(|q| sim.queue_len(q) > 0).count()
        );
        // Let the last answer's spool write finish, should the broker pull before it syncs.
        std::thread::sleep(Duration::from_millis(200));
    }
    send_signal(broker.id(), "KILL");
    let killed = broker.finish(Duration::from_secs(10));
    let served_at_kill = served(&sim);
    let lines_at_kill = count_lines(&dir.path("out.jsonl"));
    assert!(
        served_at_kill.iter().sum::<usize>() < catalog.total(),
        "the drain was over before the kill ({lines_at_kill} lines written)"
    );
    println!(
        "killed with {lines_at_kill} lines written and {:?} events served per queue",
        served_at_kill
    );

    sim.clear_faults();
    sim.release_pulls();
    let restarted = drain_to_the_end(&sim, &dir, catalog.total() - 4 * MAX);
    let tally = catalog.tally(&read_lines(&dir.path("out.jsonl")));
    println!(
        "after the restart: {} duplicates (bound {}), {} missing",
        tally.duplicates,
        2 * MAX * 4,
        tally.missing
    );
    let context = || {
        format!(
            "{}\n--- killed run\n{}\n--- restarted run\n{}",
            tally.describe(),
            describe(&killed),
            describe(&restarted)
        )
    };
    assert_eq!(
        tally.unknown_count,
        0,
        "torn or foreign lines: {}",
        context()
    );
    assert!(tally.out_of_order.is_empty(), "{}", context());
    for ((queue, missing), at_kill) in tally.missing_by_queue.iter().zip(&served_at_kill) {
        if quiesce {
            assert!(
                missing.is_empty(),
                "{queue}: served events lost: {}",
                context()
            );
        } else {
            // Only the answer in flight at the kill may be gone: the last served batch.
            let allowed = at_kill.saturating_sub(MAX)..*at_kill;
            assert!(
                missing.iter().all(|i| allowed.contains(i)),
                "{queue}: lost events outside the batch in flight at the kill ({allowed:?}): {}",
                context()
            );
        }
    }
    assert!(
        tally.duplicates <= 2 * MAX * 4,
        "more duplicates than the batches in flight at the kill: {}",
        context()
    );
}

#[test]
fn sigkill_mid_drain_with_nothing_in_flight_then_restart_delivers_every_served_event() {
    crash_and_restart(true);
}

#[test]
fn sigkill_anywhere_in_a_drain_then_restart_loses_at_most_the_answer_in_flight() {
    crash_and_restart(false);
}

/// Sends `signal` to a broker draining 4 x `per_queue` events when some are delivered; it must
/// exit 0 within 5 s logging `stopped`; a one-shot run then a loop deliver the rest: every
/// event exactly once, in queue order.
fn stop_mid_drain(signal: &str, per_queue: usize) {
    let (sim, dir, catalog) = drain_bench(per_queue, 100, "3");
    slow_pulls(&sim, Duration::from_millis(30), 10_000);
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let some = wait_until(Duration::from_secs(60), || {
        count_lines(&dir.path("out.jsonl")) >= 500
    });
    assert!(
        some,
        "no progress: {}",
        describe(&broker.finish(Duration::ZERO))
    );
    let (out, took) = broker.stop_with(signal, Duration::from_secs(10));
    let served_at_stop = served(&sim);
    assert!(
        served_at_stop.iter().sum::<usize>() < catalog.total(),
        "the drain was over before SIG{signal}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "SIG{signal}: {}",
        describe(&out)
    );
    assert!(
        took <= Duration::from_millis(5500),
        "SIG{signal}: exited {took:?} after the signal, expected within 5 s"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim_end().ends_with("stopped")),
        "no `stopped` line: {}",
        describe(&out)
    );
    let before = count_lines(&dir.path("out.jsonl"));
    println!("SIG{signal} after {before} lines; exited in {took:?}");
    let partial = catalog.tally(&read_lines(&dir.path("out.jsonl")));
    assert_eq!(partial.duplicates, 0, "{}", partial.describe());

    // A one-shot run delivers what the spool kept and pulls each queue once more.
    sim.clear_faults();
    let one_shot = dir.run("procustodibus-broker", &["-v"]);
    assert_eq!(one_shot.status.code(), Some(0), "{}", describe(&one_shot));
    let after_one_shot = catalog.tally(&read_lines(&dir.path("out.jsonl")));
    assert_eq!(
        after_one_shot.duplicates,
        0,
        "the one-shot run repeated events: {}",
        after_one_shot.describe()
    );
    // Every event served before the signal is out now, the spool's included.
    for ((queue, missing), at_stop) in after_one_shot.missing_by_queue.iter().zip(&served_at_stop) {
        assert!(
            missing.iter().all(|i| i >= at_stop),
            "{queue}: events served before SIG{signal} are still missing after a one-shot run: {}",
            after_one_shot.describe()
        );
    }
    drain_to_the_end(&sim, &dir, catalog.total());
    let tally = catalog.tally(&read_lines(&dir.path("out.jsonl")));
    assert!(tally.exactly_once(), "{}", tally.describe());
}

#[test]
fn sigterm_mid_drain_exits_0_and_a_restart_delivers_the_rest_exactly_once() {
    stop_mid_drain("TERM", 5000);
}

#[test]
fn sigint_mid_drain_behaves_like_sigterm() {
    stop_mid_drain("INT", 2000);
}

#[test]
fn sigterm_while_a_pull_hangs_exits_when_it_times_out_and_loses_nothing() {
    // The broker waits for a pull under way (the API may have dequeued its events) until its
    // `Timeout` of 3 s, then exits: within 5 s of the signal.
    let (sim, dir, catalog) = drain_bench(300, 100, "3");
    sim.hold_pulls();
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let hanging = wait_until(Duration::from_secs(20), || sim.held_pulls() >= 1);
    assert!(
        hanging,
        "no pull: {}",
        describe(&broker.finish(Duration::ZERO))
    );
    std::thread::sleep(Duration::from_millis(300));
    let (out, took) = broker.stop_with("TERM", Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        took <= Duration::from_millis(5500),
        "exited {took:?} after SIGTERM while a pull hung, expected within 5 s"
    );
    assert!(
        !log_lines_with(&out, "stopped").is_empty(),
        "{}",
        describe(&out)
    );
    assert_eq!(served(&sim), vec![0; 4], "nothing was served");
    sim.release_pulls();
    drain_to_the_end(&sim, &dir, catalog.total());
    let tally = catalog.tally(&read_lines(&dir.path("out.jsonl")));
    assert!(tally.exactly_once(), "{}", tally.describe());
}

/// A looping broker with one file pipe `out.jsonl` from alerts; `batch` enqueues n alerts and
/// returns their expected lines.
struct Rotation {
    sim: Simulator,
    dir: BrokerDir,
    broker: Running,
}

impl Rotation {
    fn start() -> Rotation {
        let sim = simulator(Default::default());
        let dir = BrokerDir::new();
        dir.write_config(
            &sim.url(),
            &file_pipe("All", "alerts", None, &dir.path("out.jsonl")),
        );
        dir.set_up(&sim);
        let broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
        Rotation { sim, dir, broker }
    }

    /// Enqueues `n` alerts and waits until the file at `name` has `lines` lines.
    fn batch(&mut self, n: usize, name: &str, lines: usize) -> Vec<String> {
        let raws = self.sim.enqueue_generated("alerts", n).expect("enqueue");
        let path = self.dir.path(name);
        let arrived = wait_until(Duration::from_secs(15), || count_lines(&path) >= lines);
        if !arrived {
            let found = read_lines(&path).len();
            let out = self.broker.finish(Duration::ZERO);
            panic!(
                "{name} has {found} lines, expected {lines}; files {:?}: {}",
                std::fs::read_dir(self.dir.dir.path())
                    .map(|d| d
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect::<Vec<_>>())
                    .unwrap_or_default(),
                describe(&out)
            );
        }
        expected_lines(&raws)
    }

    fn rename(&self, from: &str, to: &str) {
        std::fs::rename(self.dir.path(from), self.dir.path(to)).expect("mv");
    }

    fn stop(mut self) -> BrokerDir {
        std::thread::sleep(Duration::from_millis(300));
        let alive = self.broker.is_alive();
        let (out, _) = self.broker.stop_with("TERM", Duration::from_secs(10));
        assert!(alive, "the broker exited: {}", describe(&out));
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        self.dir
    }
}

#[test]
fn sighup_after_mv_writes_new_events_to_a_new_file() {
    let mut r = Rotation::start();
    let first = r.batch(40, "out.jsonl", 40);
    // As logrotate does: move the file, then SIGHUP.
    r.rename("out.jsonl", "out.jsonl.1");
    send_signal(r.broker.id(), "HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(r.broker.is_alive(), "SIGHUP ended the broker");
    let second = r.batch(40, "out.jsonl", 40);
    // A SIGHUP without a move reopens the same file and appends to it.
    send_signal(r.broker.id(), "HUP");
    std::thread::sleep(Duration::from_millis(300));
    let third = r.batch(25, "out.jsonl", 65);
    let dir = r.stop();
    assert_eq!(read_lines(&dir.path("out.jsonl.1")), first);
    let mut rest = second;
    rest.extend(third);
    assert_eq!(read_lines(&dir.path("out.jsonl")), rest);
}

#[test]
fn a_moved_or_deleted_file_is_noticed_without_sighup() {
    let mut r = Rotation::start();
    let first = r.batch(30, "out.jsonl", 30);
    r.rename("out.jsonl", "out.jsonl.1");
    let second = r.batch(30, "out.jsonl", 30);
    std::fs::remove_file(r.dir.path("out.jsonl")).expect("rm");
    let third = r.batch(20, "out.jsonl", 20);
    let dir = r.stop();
    assert_eq!(read_lines(&dir.path("out.jsonl.1")), first);
    assert_eq!(second.len(), 30);
    assert_eq!(read_lines(&dir.path("out.jsonl")), third);
}

#[test]
fn a_restart_after_a_clean_stop_repeats_nothing() {
    // The positions survive a stop: a second run sends nothing again.
    let (sim, dir, catalog) = drain_bench(200, 100, "3");
    let started = Instant::now();
    drain_to_the_end(&sim, &dir, catalog.total());
    let again = dir.run("procustodibus-broker", &["-v"]);
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
    let tally = catalog.tally(&read_lines(&dir.path("out.jsonl")));
    assert!(tally.exactly_once(), "{}", tally.describe());
    println!(
        "drained 800 events and ran again in {:?}",
        started.elapsed()
    );
}
