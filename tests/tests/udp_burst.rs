//! UDP bursts into a stock rsyslog (issue 10, item 9): the real broker, one-shot, sends a full
//! `Max = 1000` batch (1% of the events about 11 KB) over UDP to an rsyslogd whose `imudp` input
//! has the kernel's default receive buffer, 20 times; rsyslog must have every event of every run.
//! Without pacing (`Rate = 0`) the burst overflows that buffer and events are lost; the default
//! `Rate` keeps up.
//!
//! rsyslogd must be installed (Debian packages `rsyslog` and `rsyslog-gnutls`; `scripts/test`
//! installs them): without it this test fails and says so.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use broker_sim::SimOptions;
use broker_tests::rsyslog::{Input, Rsyslog};
use broker_tests::*;

/// One-shot runs, each of one full batch.
const RUNS: usize = 20;
/// Events per run: a full batch of `Max = 1000`.
const BATCH: usize = 1000;
/// One event in this many is large: 1%.
const LARGE_EVERY: u64 = 100;
/// How long a run's messages may take to show up in rsyslog's output file.
const ARRIVAL: Duration = Duration::from_secs(20);

/// The `id` of an event's JSON text (a received message's body or a raw event).
fn event_id(json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value["id"].as_str().map(str::to_string)
}

#[test]
fn twenty_full_batches_over_udp_at_the_default_rate_lose_nothing_into_a_stock_rsyslog() {
    let rsyslog = Rsyslog::start_stock_udp();
    let sim = simulator(SimOptions {
        large_every: LARGE_EVERY,
        ..Default::default()
    });
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        &format!(
            "[Pipe.Burst]\nFrom = log_authn\nTo = syslog\nSocket = {}\nProtocol = udp\n\
             Max = {BATCH}\n",
            rsyslog.address(Input::Udp)
        ),
    );
    dir.set_up(&sim);
    let started = Instant::now();
    let mut offset = 0;
    for run in 1..=RUNS {
        let raws = sim
            .enqueue_generated("log_authn", BATCH)
            .expect("enqueue log_authn");
        let large = raws.iter().filter(|r| r.len() > 10_000).count();
        assert_eq!(large, BATCH / 100, "run {run}: 1% of the events are large");
        let mut missing: HashSet<String> = raws
            .iter()
            .map(|r| event_id(r).expect("a generated event has an id"))
            .collect();

        let out = dir.run("procustodibus-broker", &[]);
        assert!(out.status.success(), "run {run}: {}", describe(&out));
        assert_eq!(sim.queue_len("log_authn"), 0, "run {run} pulls the batch");

        let mut unexpected = Vec::new();
        let deadline = Instant::now() + ARRIVAL;
        while !missing.is_empty() && Instant::now() < deadline {
            let (received, next) = rsyslog.received_from(offset);
            offset = next;
            for r in received {
                match event_id(r.body()) {
                    Some(id) if missing.remove(&id) => {}
                    _ => unexpected.push(r.body().chars().take(200).collect::<String>()),
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            missing.is_empty() && unexpected.is_empty(),
            "run {run}: {} of {BATCH} events lost, {} messages not expected (duplicates or \
             damaged): {:?}\n{}",
            missing.len(),
            unexpected.len(),
            unexpected.iter().take(3).collect::<Vec<_>>(),
            rsyslog.diagnostics()
        );
    }
    eprintln!(
        "{RUNS} runs of {BATCH} events over UDP: none lost, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        !rsyslog.own_messages().contains("error"),
        "rsyslogd complained:\n{}",
        rsyslog.diagnostics()
    );
}
