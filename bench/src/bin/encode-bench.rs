//! `encode-bench`: how fast the broker turns raw API events into output lines, in process.
//!
//! The events are the simulator's generated ones ([`Workload::generate`], a quarter per queue).
//! Three figures, each the best of `--runs` (default 5) passes over all events:
//!
//! - encode: [`Event::from_json`] on each raw event text;
//! - pull: each queue's events joined into pull answers (`{"data":[...]}`, `--max` events each,
//!   as the simulator writes them) and split and encoded as the API client does it: serde_json
//!   splits the answer into `RawValue`s, then [`Event::from_raw`] encodes each one;
//! - pull-1: the same answers split and encoded in one scan by [`Event::from_pull_answer`], as
//!   the API client does it now.
//!
//! It also prints how many events are already in the output form (line == raw text).
//!
//! `cargo run --release -p broker-bench --bin encode-bench -- [--events N] [--max N] [--runs N]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use broker_bench::workload::Workload;
use broker_core::{Event, EventType};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Events<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
}

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn best_of(runs: usize, mut pass: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut count = 0;
    for _ in 0..runs {
        let start = Instant::now();
        count = pass();
        best = best.min(start.elapsed());
    }
    (best, count)
}

fn report(name: &str, time: Duration, events: usize, bytes: usize) {
    let secs = time.as_secs_f64();
    println!(
        "{name:<8} {:>12.0} events/s {:>8.1} MB/s  ({events} events in {:.1} ms)",
        events as f64 / secs,
        bytes as f64 / secs / 1e6,
        secs * 1e3
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let total = flag(&args, "--events", 200_000);
    let max = flag(&args, "--max", 1000).max(1);
    let runs = flag(&args, "--runs", 5).max(1);

    let workload = Workload::generate(total, 1);
    let events: Vec<(EventType, &str)> = workload
        .queues
        .iter()
        .flat_map(|(queue, raws)| raws.iter().map(move |raw| (*queue, raw.as_str())))
        .collect();
    let raw_bytes: usize = events.iter().map(|(_, raw)| raw.len()).sum();
    let same = events
        .iter()
        .filter(|(queue, raw)| Event::from_json(*queue, raw).unwrap().line() == *raw)
        .count();
    println!(
        "{} events, {:.1} MB raw, {} ({:.1}%) already in the output form",
        events.len(),
        raw_bytes as f64 / 1e6,
        same,
        100.0 * same as f64 / events.len() as f64
    );

    let (time, count) = best_of(runs, || {
        let mut n = 0;
        for (queue, raw) in &events {
            black_box(Event::from_json(*queue, raw).unwrap());
            n += 1;
        }
        n
    });
    assert_eq!(count, events.len());
    report("encode", time, events.len(), raw_bytes);

    let answers: Vec<(EventType, String)> = workload
        .queues
        .iter()
        .flat_map(|(queue, raws)| {
            raws.chunks(max)
                .map(move |chunk| (*queue, format!("{{\"data\":[{}]}}", chunk.join(","))))
        })
        .collect();
    let (time, count) = best_of(runs, || {
        let mut n = 0;
        for (queue, body) in &answers {
            let parsed: Events = serde_json::from_slice(body.as_bytes()).unwrap();
            let lines: Vec<Event> = parsed
                .data
                .into_iter()
                .map(|raw| Event::from_raw(*queue, raw).unwrap())
                .collect();
            n += black_box(lines).len();
        }
        n
    });
    assert_eq!(count, events.len());
    report("pull", time, count, raw_bytes);

    let (time, count) = best_of(runs, || {
        let mut n = 0;
        for (queue, body) in &answers {
            let lines = Event::from_pull_answer(*queue, body.as_bytes()).unwrap();
            n += black_box(lines).len();
        }
        n
    });
    assert_eq!(count, events.len());
    report("pull-1", time, count, raw_bytes);
}
