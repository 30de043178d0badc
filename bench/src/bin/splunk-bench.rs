//! `splunk-bench`: how fast the `splunk` sink delivers into a Splunk HTTP Event Collector, as a
//! ratio to what that collector takes on its own. Every figure comes from the same run.
//!
//! The collector is the test crate's HEC receiver (`broker_tests::splunk_hec`, HTTPS on
//! 127.0.0.1, counting what it indexes); the simulator runs in this process. For `--events`
//! generated events (default 100,000, a quarter per queue):
//!
//! - receiver: a plain client POSTs the very bodies the sink builds (HEC event objects,
//!   `Batch = 1000` per request) one after the other ([`broker_bench::post_rate`]).
//! - end to end: the release binary `procustodibus-broker --loop 1` (next to this binary, or
//!   `--broker PATH`) drains the simulator through one `splunk` pipe from the four queues,
//!   `Batch = 1000`, into the collector; timed from its start until the collector indexed every
//!   event ([`broker_bench::broker_run`]). `--ack yes` turns indexer acknowledgement on.
//!
//! Repeated `--runs` times (default 3), interleaved; each figure is the middle run.

use broker_bench::args::Args;
use broker_bench::broker_run::ReleaseBroker;
use broker_bench::post_rate::Poster;
use broker_bench::report::{rate, SinkRates};
use broker_bench::sim::BenchSim;
use broker_bench::workload::Workload;
use broker_sinks::splunk::body::Envelope;
use broker_tests::splunk_hec::{SplunkHec, EVENT_PATH};

const USAGE: &str = "\
splunk-bench: the splunk sink at Batch = 1000 into a local HEC, against the HEC's own rate

usage: cargo run --release -p broker-bench --bin splunk-bench -- [OPTIONS]
  (build the broker first: cargo build --release -p broker-cli)

options:
  --events N      events per measurement, a quarter per queue (default 100000)
  --runs N        measurements of each kind, interleaved; the middle one counts (default 3)
  --ack yes|no    indexer acknowledgement on the pipe and the collector (default no)
  --broker PATH   the broker binary (default procustodibus-broker next to this binary)
  --dir PATH      where to make temporary directories (default the system's)
  --timeout S     give up on a run after S seconds (default 300)";

/// The HEC token of the benchmark.
const TOKEN: &str = "bench-token-0000";
/// Events per request.
const BATCH: usize = 1000;
/// The end-to-end target, events per second.
const TARGET: f64 = 50_000.0;

/// A collector that counts what it indexes and keeps nothing, with indexer acknowledgement when
/// `ack`.
fn receiver(ack: bool) -> SplunkHec {
    let hec = SplunkHec::start(TOKEN);
    let mut state = hec.hec();
    state.keep_indexed = false;
    state.ack = ack;
    drop(state);
    hec
}

fn main() {
    let args = Args::from_env(
        USAGE,
        &["events", "runs", "ack", "broker", "dir", "timeout"],
    );
    let events = args.number("events", 100_000);
    let runs = args.number("runs", 3).max(1);
    let ack = matches!(args.value("ack"), Some("yes" | "true" | "on" | "1"));
    let broker = ReleaseBroker::from_args(&args, 300);

    let sim = BenchSim::start();
    let workload = Workload::generate(events, 7);
    let encoded = workload.encode();
    let envelope = Envelope::from_values(None, None, None, None);
    let bodies: Vec<Vec<u8>> = encoded.chunks(BATCH).map(|c| envelope.body(c)).collect();
    let auth = format!("Splunk {TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        (
            "x-splunk-request-channel",
            "0a1b2c3d-0000-4000-8000-0123456789ab",
        ),
    ];

    let mut rates = SinkRates::default();
    for _ in 1..=runs {
        // The receiver's own rate.
        let hec = receiver(false);
        let url = format!("{}{EVENT_PATH}", hec.url());
        let seconds = Poster::new(hec.ca_path())
            .and_then(|poster| poster.post_all(&url, &headers, &bodies))
            .unwrap_or_else(|e| fail(&e));
        workload
            .all_taken(hec.indexed_count())
            .unwrap_or_else(|e| fail(&e));
        rates.receiver.push(rate(events, seconds));
        drop(hec);

        // End to end.
        let hec = receiver(ack);
        let keys = format!(
            "To = splunk\nUrl = {}\nToken = {TOKEN}\nCA = {}\nBatch = {BATCH}\nAck = {}",
            hec.url(),
            hec.ca_path().display(),
            if ack { "yes" } else { "no" }
        );
        let seconds = broker
            .drain_into_sink(&sim, &workload, "splunk-bench-", &keys, || {
                hec.indexed_count()
            })
            .unwrap_or_else(|e| fail(&e));
        rates.end_to_end.push(rate(events, seconds));
        rates.print_last_run();
    }
    rates.print_figures(
        &format!(
            "splunk sink, {events} events, Batch = {BATCH}, Ack = {}, middle of {runs} runs",
            if ack { "yes" } else { "no" }
        ),
        TARGET,
    );
}

/// Prints `message` and exits 1.
fn fail(message: &str) -> ! {
    eprintln!("splunk-bench: {message}");
    std::process::exit(1);
}
