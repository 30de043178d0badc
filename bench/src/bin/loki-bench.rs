//! `loki-bench`: how fast the real broker pushes events to a Loki receiver, next to the
//! receiver's own rate, at `Batch = 1000` (see bench/src/siem.rs).
//!
//! (a) the receiver's own rate: the workload's push bodies, built beforehand with the sink's own
//! body builder, POSTed one after the other by a minimal client; (b) end to end: the simulator's
//! backlog drained by the broker binary (`--loop 1`) into the receiver through the `loki` sink.
//! Both over HTTPS with the test CA, the receiver in this process (tests/src/loki.rs).
//!
//! `cargo build --release -p broker-cli -p broker-bench --bin loki-bench` then
//! `target/release/loki-bench [--events N] [--runs N] [--broker PATH]`.

use std::time::Duration;

use broker_bench::args::Args;
use broker_bench::report::{ratio, thousands, verdict};
use broker_bench::siem::{batches, post_bodies, run_broker_until, write_broker};
use broker_bench::sim::BenchSim;
use broker_bench::workload::Workload;
use broker_bench::{temp_dir, temp_root};
use broker_sinks::loki::body::build;
use broker_tests::loki::{LokiReceiver, LokiState};

const USAGE: &str = "loki-bench [--events N] [--runs N] [--broker PATH] [--dir DIR]";
/// Events per request, as the issue asks.
const BATCH: usize = 1000;
/// The end-to-end target, events per second.
const TARGET: f64 = 50_000.0;

fn main() {
    broker_sinks::link();
    let args = Args::from_env(USAGE, &["events", "runs", "broker", "dir"]);
    let events = args.number("events", 100_000);
    let runs = args.number("runs", 3).max(1);
    let root = temp_root(args.path("dir").as_deref());
    let broker = args.path("broker").unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("this binary's path");
        exe.with_file_name("procustodibus-broker")
    });
    if !broker.is_file() {
        eprintln!(
            "{} is missing: cargo build --release -p broker-cli",
            broker.display()
        );
        std::process::exit(2);
    }
    let sim = BenchSim::start();
    let workload = Workload::enqueue_generated(&sim.sim, events);
    let bodies: Vec<Vec<u8>> = batches(&workload, BATCH)
        .iter()
        .map(|(_, events)| build(events, &[], 0).body)
        .collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "loki-bench: {} events in {} pushes of up to {BATCH} ({} MB of bodies), {runs} runs, \
         the middle run of each kept",
        thousands(workload.len() as f64),
        bodies.len(),
        bytes / 1_000_000
    );
    let loki = LokiReceiver::start_tls(LokiState::loki());
    let mut own = Vec::new();
    let mut end_to_end = Vec::new();
    for run in 1..=runs {
        eprintln!("run {run} of {runs}: the receiver's own rate");
        *loki.state() = LokiState::loki();
        let seconds = post_bodies(
            &loki.http.url("/loki/api/v1/push"),
            loki.http.ca_path(),
            &[("content-type", "application/json")],
            bodies.clone(),
        )
        .expect("the receiver takes every push");
        assert_eq!(
            loki.state().count(),
            workload.len(),
            "the receiver stored every entry"
        );
        own.push(workload.len() as f64 / seconds);

        eprintln!("run {run} of {runs}: end to end");
        *loki.state() = LokiState::loki();
        if sim.queued() == 0 {
            workload.enqueue(&sim.sim);
        }
        let dir = temp_dir(&root, "loki-bench-");
        let pipe = format!(
            "[Pipe.Loki]\nFrom = alerts, endpoint_stats, log_authn, log_changes\nMax = {BATCH}\n\
             To = loki\nUrl = {}\nCA = {}\nBatch = {BATCH}\n",
            loki.url(),
            loki.http.ca_path().display()
        );
        let config = write_broker(&sim, dir.path(), &pipe);
        let seconds = run_broker_until(
            &broker,
            &config,
            workload.len(),
            Duration::from_secs(600),
            || loki.state().count(),
        )
        .expect("the broker delivers every event");
        end_to_end.push(workload.len() as f64 / seconds);
    }
    let middle = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (own, e2e) = (middle(own), middle(end_to_end));
    println!(
        "(a) receiver's own rate (raw client, pre-built bodies): {} events/s",
        thousands(own)
    );
    println!(
        "(b) end to end (simulator -> broker -> loki sink -> receiver): {} events/s",
        thousands(e2e)
    );
    println!("ratio (b)/(a): {}", ratio(e2e, own));
    println!(
        "target: at least {} events/s end to end: {}",
        thousands(TARGET),
        verdict(e2e >= TARGET)
    );
}
