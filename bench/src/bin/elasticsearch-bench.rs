//! `elasticsearch-bench`: how fast the `elasticsearch` sink stores events through `_bulk`, as a
//! ratio to what the receiver takes on its own. Every figure comes from the same run.
//!
//! The receiver is the test crate's Elasticsearch `_bulk` receiver
//! (`broker_tests::elasticsearch`, HTTPS on 127.0.0.1, keeping its index by `_id`); the
//! simulator runs in this process. For `--events` generated events (default 100,000, a quarter
//! per queue):
//!
//! - receiver: a plain client POSTs the very bodies the sink builds (`create` entries with the
//!   event's id and `@timestamp`, `Batch = 1000` per request) one after the other
//!   ([`broker_bench::post_rate`]).
//! - end to end: the release binary `procustodibus-broker --loop 1` (next to this binary, or
//!   `--broker PATH`) drains the simulator through one `elasticsearch` pipe from the four
//!   queues, `Batch = 1000`, into the receiver; timed from its start until the receiver holds
//!   every event ([`broker_bench::broker_run`]).
//!
//! Repeated `--runs` times (default 3), interleaved; each figure is the middle run.

use broker_bench::args::Args;
use broker_bench::broker_run::ReleaseBroker;
use broker_bench::post_rate::Poster;
use broker_bench::report::{rate, SinkRates};
use broker_bench::sim::BenchSim;
use broker_bench::workload::Workload;
use broker_sinks::elasticsearch::body::push_entry;
use broker_tests::elasticsearch::{ElasticReceiver, Faults};

const USAGE: &str = "\
elasticsearch-bench: the elasticsearch sink at Batch = 1000 into a local _bulk receiver, against
the receiver's own rate

usage: cargo run --release -p broker-bench --bin elasticsearch-bench -- [OPTIONS]
  (build the broker first: cargo build --release -p broker-cli)

options:
  --events N      events per measurement, a quarter per queue (default 100000)
  --runs N        measurements of each kind, interleaved; the middle one counts (default 3)
  --broker PATH   the broker binary (default procustodibus-broker next to this binary)
  --dir PATH      where to make temporary directories (default the system's)
  --timeout S     give up on a run after S seconds (default 300)";

/// Events per request.
const BATCH: usize = 1000;
/// The end-to-end target, events per second.
const TARGET: f64 = 50_000.0;
/// The index: the sink's default data stream.
const INDEX: &str = "logs-procustodibus-default";

/// A receiver that keeps the ids only (the documents would take gigabytes).
fn receiver() -> ElasticReceiver {
    let receiver = ElasticReceiver::start_tls(Faults::default());
    receiver.state().discard_docs = true;
    receiver
}

fn main() {
    let args = Args::from_env(USAGE, &["events", "runs", "broker", "dir", "timeout"]);
    let events = args.number("events", 100_000);
    let runs = args.number("runs", 3).max(1);
    let broker = ReleaseBroker::from_args(&args, 300);

    let sim = BenchSim::start();
    let workload = Workload::generate(events, 7);
    let encoded = workload.encode();
    let bodies: Vec<Vec<u8>> = encoded
        .chunks(BATCH)
        .map(|chunk| {
            let mut body = Vec::new();
            for event in chunk {
                push_entry(event, &mut body);
            }
            body
        })
        .collect();
    let headers = [("content-type", "application/x-ndjson")];

    let mut rates = SinkRates::default();
    for _ in 1..=runs {
        // The receiver's own rate.
        let es = receiver();
        let url = format!("{}/{INDEX}/_bulk", es.url());
        let seconds = Poster::new(es.ca_path())
            .and_then(|poster| poster.post_all(&url, &headers, &bodies))
            .unwrap_or_else(|e| fail(&e));
        workload
            .all_taken(es.doc_count())
            .unwrap_or_else(|e| fail(&e));
        rates.receiver.push(rate(events, seconds));
        drop(es);

        // End to end.
        let es = receiver();
        let keys = format!(
            "To = elasticsearch\nUrl = {}\nCA = {}\nBatch = {BATCH}",
            es.url(),
            es.ca_path().display(),
        );
        let seconds = broker
            .drain_into_sink(&sim, &workload, "elasticsearch-bench-", &keys, || {
                es.doc_count()
            })
            .unwrap_or_else(|e| fail(&e));
        rates.end_to_end.push(rate(events, seconds));
        rates.print_last_run();
    }
    rates.print_figures(
        &format!("elasticsearch sink, {events} events, Batch = {BATCH}, middle of {runs} runs"),
        TARGET,
    );
}

/// Prints `message` and exits 1.
fn fail(message: &str) -> ! {
    eprintln!("elasticsearch-bench: {message}");
    std::process::exit(1);
}
