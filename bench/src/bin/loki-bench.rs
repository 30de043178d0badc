//! `loki-bench`: how fast the real broker pushes events to a Loki receiver, next to the
//! receiver's own rate, at `Batch = 1000` (see bench/src/broker_run.rs and bench/src/post_rate.rs).
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
use broker_bench::broker_run::{release_broker, run_until, sink_pipe, write_broker};
use broker_bench::post_rate::{client, post_all};
use broker_bench::report::{middle, print_sink_figures, rate, thousands};
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
    let broker = release_broker(args.path("broker"));
    let sim = BenchSim::start();
    let workload = Workload::generate(events, 7);
    let bodies: Vec<Vec<u8>> = workload
        .encode()
        .chunks(BATCH)
        .map(|events| build(events, &[], 0).body)
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
    let http = client(loki.http.ca_path()).expect("a client");
    let url = loki.http.url("/loki/api/v1/push");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let mut own = Vec::new();
    let mut end_to_end = Vec::new();
    for run in 1..=runs {
        eprintln!("run {run} of {runs}: the receiver's own rate");
        *loki.state() = LokiState::loki();
        let seconds = runtime
            .block_on(post_all(
                &http,
                &url,
                &[("content-type", "application/json")],
                &bodies,
            ))
            .expect("the receiver takes every push");
        assert_eq!(
            loki.state().count(),
            workload.len(),
            "the receiver stored every entry"
        );
        own.push(rate(workload.len(), seconds));

        eprintln!("run {run} of {runs}: end to end");
        *loki.state() = LokiState::loki();
        workload.enqueue(&sim.sim);
        let dir = temp_dir(&root, "loki-bench-");
        let pipe = sink_pipe(&format!(
            "To = loki\nUrl = {}\nCA = {}\nBatch = {BATCH}",
            loki.url(),
            loki.http.ca_path().display()
        ));
        let config = write_broker(&sim, dir.path(), &pipe);
        let seconds = run_until(
            &broker,
            dir.path(),
            &config,
            Duration::from_secs(600),
            || loki.state().count() >= workload.len(),
        )
        .expect("the broker delivers every event");
        end_to_end.push(rate(workload.len(), seconds));
    }
    print_sink_figures(
        &format!("loki sink, {events} events, Batch = {BATCH}, middle of {runs} runs"),
        middle(&mut own),
        middle(&mut end_to_end),
        TARGET,
    );
}
