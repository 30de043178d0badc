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

use broker_bench::args::Args;
use broker_bench::broker_run::ReleaseBroker;
use broker_bench::post_rate::Poster;
use broker_bench::report::{rate, thousands, SinkRates};
use broker_bench::sim::BenchSim;
use broker_bench::workload::Workload;
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
    // No --timeout: a run may take 600 s.
    let broker = ReleaseBroker::from_args(&args, 600);
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
    let poster = Poster::new(loki.http.ca_path()).expect("a client");
    let url = loki.http.url("/loki/api/v1/push");
    let keys = format!(
        "To = loki\nUrl = {}\nCA = {}\nBatch = {BATCH}",
        loki.url(),
        loki.http.ca_path().display()
    );
    let mut rates = SinkRates::default();
    for run in 1..=runs {
        eprintln!("run {run} of {runs}: the receiver's own rate");
        *loki.state() = LokiState::loki();
        let seconds = poster
            .post_all(&url, &[("content-type", "application/json")], &bodies)
            .expect("the receiver takes every push");
        workload
            .all_taken(loki.state().count())
            .expect("the receiver stores every entry");
        rates.receiver.push(rate(workload.len(), seconds));

        eprintln!("run {run} of {runs}: end to end");
        *loki.state() = LokiState::loki();
        let seconds = broker
            .drain_into_sink(&sim, &workload, "loki-bench-", &keys, || {
                loki.state().count()
            })
            .expect("the broker delivers every event");
        rates.end_to_end.push(rate(workload.len(), seconds));
    }
    rates.print_figures(
        &format!("loki sink, {events} events, Batch = {BATCH}, middle of {runs} runs"),
        TARGET,
    );
}
