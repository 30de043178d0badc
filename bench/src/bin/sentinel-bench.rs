//! `sentinel-bench`: how fast the `sentinel` sink delivers into a receiver that behaves as the
//! Azure Monitor Logs Ingestion API (broker_tests::sentinel, HTTPS with a test CA), at
//! `Batch = 1000`, against that receiver's own rate, both from the same run.
//!
//! - receiver: a raw client posts the same rows, pre-built as the sink builds them (1000 rows or
//!   1 MB a request), one request after the other over one connection with a valid token;
//! - end to end: the release broker binary drains the simulator's `--events` (a quarter per
//!   queue, as drain-bench) through one `To = sentinel` pipe (`Max = 1000`, `Batch = 1000`) into
//!   the receiver, timed from its start until the receiver took every row.
//!
//! Each is measured `--runs` times, interleaved; the middle run of each is reported, with the
//! ratio and the target (50,000 events per second end to end).

use broker_bench::args::Args;
use broker_bench::broker_run::ReleaseBroker;
use broker_bench::post_rate::Poster;
use broker_bench::report::{rate, SinkRates};
use broker_bench::sim::BenchSim;
use broker_bench::workload::Workload;
use broker_sinks::sentinel::body::{body, next_request, row};
use broker_tests::sentinel::{SentinelReceiver, CLIENT_SECRET, DCR, STREAM};

const USAGE: &str = "\
sentinel-bench: the sentinel sink into its test receiver, against the receiver's own rate

usage: cargo run --release -p broker-bench --bin sentinel-bench -- [OPTIONS]
  (build the broker first: cargo build --release -p broker-cli)

options:
  --events N      events to deliver, a quarter per queue (default 100000)
  --broker PATH   the procustodibus-broker binary (default: next to this binary)
  --dir DIR       where the temporary directories go (default: the system's temp dir)
  --runs R        measure R times, interleaved, and report the middle run (default 3)
  --timeout SECS  give up on one run after SECS seconds (default 600)";

/// The end-to-end target, in events per second.
const TARGET_RATE: f64 = 50_000.0;
/// Rows per request, as the pipe's `Batch`.
const BATCH: usize = 1000;

fn main() {
    let args = Args::from_env(USAGE, &["events", "broker", "dir", "runs", "timeout"]);
    let events = args.number("events", 100_000);
    let runs = args.number("runs", 3).max(1);
    let broker = ReleaseBroker::from_args(&args, 600);

    let sim = BenchSim::start();
    let receiver = SentinelReceiver::start();
    receiver.state().keep_rows = false;
    let workload = Workload::generate(events, 7);
    let now = chrono::Utc::now();
    let rows: Vec<String> = workload.encode().iter().map(|e| row(e, now)).collect();
    let mut bodies = Vec::new();
    let mut at = 0;
    while at < rows.len() {
        let request = next_request(&rows, at, BATCH);
        at = request.end;
        bodies.push(body(&rows[request]));
    }
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "{events} events, {} requests of {} rows on average, {:.1} MB of rows",
        bodies.len(),
        events / bodies.len().max(1),
        bytes as f64 / 1e6
    );

    let url = format!(
        "{}/dataCollectionRules/{DCR}/streams/{STREAM}?api-version=2023-01-01",
        receiver.url()
    );
    let poster = Poster::new(receiver.http.ca_path()).expect("a client");
    let keys = receiver.pipe_keys(&format!(
        "ClientSecret = {CLIENT_SECRET}\nBatch = {BATCH}\n"
    ));
    let taken = || receiver.state().taken;

    let (mut rates, mut failures) = (SinkRates::default(), Vec::new());
    for run in 1..=runs {
        let token = receiver.state().issue_token();
        let authorization = format!("Bearer {token}");
        let headers = [
            ("authorization", authorization.as_str()),
            ("content-type", "application/json"),
        ];
        let before = taken();
        match poster.post_all(&url, &headers, &bodies) {
            Ok(seconds) if taken() - before == events => rates.receiver.push(rate(events, seconds)),
            Ok(_) => failures.push(format!(
                "run {run}: the receiver took {} rows",
                taken() - before
            )),
            Err(e) => failures.push(format!("run {run}: receiver baseline: {e}")),
        }
        let before = taken();
        match broker.drain_into_sink(&sim, &workload, "sentinel-bench-", &keys, || {
            taken() - before
        }) {
            Ok(seconds) => rates.end_to_end.push(rate(events, seconds)),
            Err(e) => failures.push(format!("run {run}: end to end: {e}")),
        }
    }
    for failure in &failures {
        println!("FAILED {failure}");
    }
    if rates.receiver.is_empty() || rates.end_to_end.is_empty() {
        println!("no figures: every run of a measurement failed");
        std::process::exit(1);
    }
    rates.print_figures(
        &format!("sentinel sink, {events} events, Batch = {BATCH}, middle of {runs} runs"),
        TARGET_RATE,
    );
}
