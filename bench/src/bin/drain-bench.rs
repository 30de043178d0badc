//! `drain-bench`: how fast the broker drains a backlog of the simulator into a file, and what
//! bounds it. Every figure and ratio comes from the same run.
//!
//! The simulator runs in this process (its own thread and runtime, 127.0.0.1, a free port),
//! filled with `--events` generated events (default 200,000, a quarter per queue); the same
//! events are enqueued again for each measurement. For each `Max` (default 100 and 1000):
//!
//! - end to end: the release binary `procustodibus-broker --loop 1` (found next to this binary,
//!   or `--broker PATH`) in a temporary directory of its own (config, credentials, spool), one
//!   file pipe from the four queues. Timed from its start until the output file holds every
//!   line (its size is polled, its content checked afterwards); then SIGTERM. Its CPU time comes
//!   from `wait4`; its peak RSS from its own `VmHWM` (read while it runs), because `wait4`'s
//!   `ru_maxrss` also counts the resident set of this (big) process that spawned it
//!   ([`broker_bench::broker_run`]).
//! - baseline A: the same pulls (same `Max`, the four queues concurrently, each until it is
//!   empty) by a minimal client that splits each answer into events and discards them
//!   ([`broker_bench::raw_client`]); A2 does the same through the broker's `ApiSource`, which
//!   also parses and re-encodes every event.
//! - baseline B: encoding the same events and writing their lines straight to a file
//!   (buffered, one fsync at the end).
//! - spool cost: the broker's `Pipeline` in this process (`start` and `Running::drain`, a file
//!   sink), with a durable `Spool::open` in a temporary directory and with `Spool::in_memory`.
//! - status cost: the same pipeline with the durable spool, started as a `--loop` daemon starts
//!   it (`start_with_status`: the status board records every pull and delivery and writes
//!   `status.json` after every round).
//!
//! All of it is repeated `--runs` times (default 3), interleaved; each figure is the middle run.
//! Then a table of the figures, the ratios and the targets with PASS or MISS.

use std::fs::File;
use std::future::Future;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_bench::args::Args;
use broker_bench::broker_run::ReleaseBroker;
use broker_bench::raw_client::RawClient;
use broker_bench::report::{megabytes, rate, ratio, thousands, verdict, Table};
use broker_bench::sim::{BenchSim, BROKER_ID};
use broker_bench::stats::{peak_rss_kib, self_cpu_seconds, ChildUsage};
use broker_bench::temp_dir;
use broker_bench::workload::{per_queue, LinesDigest, Workload};
use broker_core::pipeline::Pipeline;
use broker_core::spool::Spool;
use broker_core::status::StatusBoard;
use broker_core::{EventType, Source};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

const USAGE: &str = "\
drain-bench: drain throughput of the broker against the simulator, with its baselines

usage: cargo run --release -p broker-bench --bin drain-bench -- [OPTIONS]
  (build the broker first: cargo build --release -p broker-cli)

options:
  --events N      events to drain, a quarter per queue (default 200000)
  --max LIST      Max values to measure, comma-separated (default 100,1000)
  --broker PATH   the procustodibus-broker binary (default: next to this binary)
  --dir DIR       where the temporary directories go (default: the system's temp dir)
  --runs R        measure everything R times, interleaved, and report the middle run of each
                  figure (default 3)
  --timeout SECS  give up on one drain after SECS seconds (default 600)";

/// The throughput target at `Max = 1000`, in events per second.
const TARGET_RATE: f64 = 50_000.0;
/// The least share of baseline A the end-to-end rate should reach.
const TARGET_SHARE_OF_A: f64 = 0.5;
/// The broker's peak RSS should stay below this many bytes (30 MB).
const TARGET_RSS_BYTES: u64 = 30_000_000;
/// The durable spool may cost at most this share of the in-memory rate.
const TARGET_SPOOL_COST: f64 = 0.30;
/// The status board and file may cost at most this share of the durable pipeline's rate.
const TARGET_STATUS_COST: f64 = 0.03;

/// The spool of a pipeline measurement, and whether the status board records it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spooled {
    Durable,
    DurableWithStatus,
    InMemory,
}

/// What the options ask for.
struct Options {
    events: usize,
    runs: usize,
    maxes: Vec<u32>,
    /// The broker of the end-to-end runs, where the temporary directories go and the timeout.
    broker: ReleaseBroker,
}

/// A timed drain: how long it took and the CPU seconds of this process meanwhile.
#[derive(Clone, Copy, Debug)]
struct Timed {
    seconds: f64,
    cpu: f64,
}

/// The end-to-end run of the broker binary.
#[derive(Clone, Debug)]
struct EndToEnd {
    timed: Timed,
    usage: ChildUsage,
    /// This process's peak resident set size when it spawned the broker, in KiB.
    parent_rss_kib: Option<u64>,
}

/// Baseline B's phases.
#[derive(Clone, Copy)]
struct Baseline {
    encode: f64,
    write: f64,
}

/// Every run's measurements for one `Max`.
#[derive(Default)]
struct Samples {
    raw: Vec<Result<Timed, String>>,
    source: Vec<Result<Timed, String>>,
    end_to_end: Vec<Result<EndToEnd, String>>,
    durable: Vec<Result<Timed, String>>,
    status: Vec<Result<Timed, String>>,
    memory: Vec<Result<Timed, String>>,
}

/// The figures reported for one `Max`: of each measurement, the middle run by time (an error
/// when every run failed).
struct Figures {
    max: u32,
    raw: Result<Timed, String>,
    source: Result<Timed, String>,
    end_to_end: Result<EndToEnd, String>,
    durable: Result<Timed, String>,
    status: Result<Timed, String>,
    memory: Result<Timed, String>,
    /// The end-to-end rate of every run that succeeded, in run order.
    e2e_rates: Vec<f64>,
    /// The broker's highest peak RSS over the runs, in KiB.
    peak_rss_kib: Option<u64>,
    /// What failed, one line each.
    failures: Vec<String>,
}

/// Adds a line to `failures` for each run of `what` that failed.
fn note<T>(failures: &mut Vec<String>, max: u32, what: &str, samples: &[Result<T, String>]) {
    for (run, sample) in samples.iter().enumerate() {
        if let Err(e) = sample {
            failures.push(format!("Max = {max}, run {}: {what} failed: {e}", run + 1));
        }
    }
}

/// The sample whose `seconds` is in the middle (of an even number, the slower of the middle
/// two), or the first error when none succeeded.
fn middle<T: Clone>(
    samples: &[Result<T, String>],
    seconds: impl Fn(&T) -> f64,
) -> Result<T, String> {
    let mut ok: Vec<&T> = samples.iter().filter_map(|s| s.as_ref().ok()).collect();
    if ok.is_empty() {
        return Err(samples
            .iter()
            .find_map(|s| s.as_ref().err().cloned())
            .unwrap_or_else(|| "not measured".to_string()));
    }
    ok.sort_by(|a, b| seconds(a).total_cmp(&seconds(b)));
    Ok(ok[ok.len() / 2].clone())
}

impl Figures {
    fn from_samples(max: u32, events: usize, s: &Samples) -> Figures {
        let mut failures = Vec::new();
        note(&mut failures, max, "baseline A", &s.raw);
        note(&mut failures, max, "baseline A2", &s.source);
        note(&mut failures, max, "end to end", &s.end_to_end);
        note(&mut failures, max, "durable spool", &s.durable);
        note(&mut failures, max, "durable spool with status", &s.status);
        note(&mut failures, max, "in-memory spool", &s.memory);
        let e2e_ok: Vec<&EndToEnd> = s
            .end_to_end
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .collect();
        Figures {
            max,
            raw: middle(&s.raw, |t| t.seconds),
            source: middle(&s.source, |t| t.seconds),
            end_to_end: middle(&s.end_to_end, |e| e.timed.seconds),
            durable: middle(&s.durable, |t| t.seconds),
            status: middle(&s.status, |t| t.seconds),
            memory: middle(&s.memory, |t| t.seconds),
            e2e_rates: e2e_ok
                .iter()
                .map(|e| rate(events, e.timed.seconds))
                .collect(),
            peak_rss_kib: e2e_ok.iter().filter_map(|e| e.usage.peak_rss_kib).max(),
            failures,
        }
    }
}

fn main() {
    broker_sinks::link();
    broker_core::install_crypto_provider();
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let sim = BenchSim::start();
    let generating = Instant::now();
    let workload = Workload::enqueue_generated(&sim.sim, options.events);
    let generated = generating.elapsed().as_secs_f64();

    let mut baselines = Vec::new();
    let (first, expected) = baseline_b(&options.broker.root, &workload);
    baselines.push(first);
    let largest = workload
        .queues
        .iter()
        .flat_map(|(_, raws)| raws.iter())
        .map(String::len)
        .max()
        .unwrap_or(0);
    println!(
        "drain-bench: {} events ({} per queue), generated in {generated:.1} s: {} of raw JSON, \
         {} of output lines (mean {} B, largest raw event {} B)",
        thousands(workload.len() as f64),
        per_queue(workload.len())
            .map(|n| thousands(n as f64))
            .join("/"),
        megabytes(workload.raw_bytes()),
        megabytes(expected.bytes),
        expected.bytes / expected.lines.max(1),
        thousands(largest as f64),
    );
    println!(
        "machine: {} CPUs; broker {}; temp dirs in {}; the simulator runs in this process \
         (one thread)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        options.broker.binary.display(),
        options.broker.root.display()
    );
    println!(
        "{} runs, interleaved; each figure is its middle run by time, and the ratios are of \
         those figures",
        options.runs
    );
    println!();

    let mut samples: Vec<Samples> = options.maxes.iter().map(|_| Samples::default()).collect();
    for run in 1..=options.runs {
        if run > 1 {
            baselines.push(baseline_b(&options.broker.root, &workload).0);
        }
        for (&max, s) in options.maxes.iter().zip(&mut samples) {
            let step = |what: &str| eprintln!("run {run} of {}, Max = {max}: {what}", options.runs);
            step("baseline A (minimal client)");
            s.raw.push(baseline_a_raw(&runtime, &sim, &workload, max));
            step("baseline A2 (ApiSource)");
            s.source
                .push(baseline_a_source(&runtime, &sim, &workload, max));
            step("end to end");
            s.end_to_end
                .push(end_to_end(&options, &sim, &workload, max, &expected));
            step("pipeline with the durable spool");
            s.durable.push(pipeline(
                &options,
                &runtime,
                &sim,
                &workload,
                max,
                Spooled::Durable,
                &expected,
            ));
            step("pipeline with the durable spool and the status board");
            s.status.push(pipeline(
                &options,
                &runtime,
                &sim,
                &workload,
                max,
                Spooled::DurableWithStatus,
                &expected,
            ));
            step("pipeline with the in-memory spool");
            s.memory.push(pipeline(
                &options,
                &runtime,
                &sim,
                &workload,
                max,
                Spooled::InMemory,
                &expected,
            ));
        }
    }
    let baseline = middle(
        &baselines.into_iter().map(Ok).collect::<Vec<_>>(),
        |b: &Baseline| b.encode + b.write,
    )
    .expect("baseline B always succeeds");
    let all: Vec<Figures> = options
        .maxes
        .iter()
        .zip(&samples)
        .map(|(&max, s)| Figures::from_samples(max, workload.len(), s))
        .collect();
    print_table(workload.len(), &baseline, &all);
}

fn options() -> Options {
    let args = Args::from_env(
        USAGE,
        &["events", "max", "broker", "dir", "runs", "timeout"],
    );
    let broker = ReleaseBroker::from_args(&args, 600);
    let events = args.number("events", 200_000);
    if events == 0 {
        eprintln!("--events must be at least 1");
        std::process::exit(2);
    }
    Options {
        events,
        runs: args.number("runs", 3).max(1),
        maxes: args.numbers("max", &[100, 1000]),
        broker,
    }
}

/// Makes sure the simulator holds the workload: the first measurement finds the events that
/// [`Workload::enqueue_generated`] put there; later ones find the queues empty and enqueue the
/// same events again.
fn fill(sim: &BenchSim, workload: &Workload) {
    match sim.queued() {
        0 => workload.enqueue(&sim.sim),
        n if n == workload.len() => {}
        n => panic!(
            "the simulator holds {n} events; expected none or {}",
            workload.len()
        ),
    }
}

/// Baseline B: encode every event once, then write the lines to a file through a 1 MiB buffer
/// and fsync it. Also returns the digest of the lines every drain must produce.
fn baseline_b(root: &Path, workload: &Workload) -> (Baseline, LinesDigest) {
    let dir = temp_dir(root, "drain-bench-b-");
    let start = Instant::now();
    let events = workload.encode();
    let encode = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let file = File::create(dir.path().join("all.jsonl")).expect("create the output file");
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for event in &events {
        out.write_all(event.line().as_bytes()).expect("write");
        out.write_all(b"\n").expect("write");
    }
    let file = out.into_inner().expect("flush");
    file.sync_all().expect("fsync");
    let write = start.elapsed().as_secs_f64();
    (Baseline { encode, write }, LinesDigest::of_events(&events))
}

/// Adds up what the drain tasks of the four queues pulled.
async fn join_total(mut tasks: JoinSet<Result<usize, String>>) -> Result<usize, String> {
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done.map_err(|e| e.to_string())??;
    }
    Ok(total)
}

/// Checks that a drain took every event.
fn check_count(pulled: usize, workload: &Workload) -> Result<(), String> {
    if pulled == workload.len() {
        Ok(())
    } else {
        Err(format!("pulled {pulled} of {} events", workload.len()))
    }
}

/// Pulls one queue by `pull` (which returns how many events a pull got) until a pull returns
/// fewer than `max`; how many events it pulled in all.
async fn pull_until_short<F, Fut>(max: u32, mut pull: F) -> Result<usize, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, String>>,
{
    let mut total = 0;
    loop {
        let n = pull().await?;
        total += n;
        if n < max as usize {
            return Ok(total);
        }
    }
}

/// Runs `drain` on the four queues concurrently and times them (wall clock and this process's
/// CPU); checks that they pulled every event of `workload`.
async fn time_drain<F, Fut>(workload: &Workload, mut drain: F) -> Result<Timed, String>
where
    F: FnMut(EventType) -> Fut,
    Fut: Future<Output = Result<usize, String>> + Send + 'static,
{
    let cpu = self_cpu_seconds();
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for queue in EventType::ALL {
        tasks.spawn(drain(queue));
    }
    let pulled = join_total(tasks).await?;
    let timed = Timed {
        seconds: start.elapsed().as_secs_f64(),
        cpu: self_cpu_seconds() - cpu,
    };
    check_count(pulled, workload)?;
    Ok(timed)
}

/// Baseline A: the four queues pulled concurrently, each until a pull returns fewer than `max`,
/// by [`RawClient`], which discards the events.
fn baseline_a_raw(
    runtime: &Runtime,
    sim: &BenchSim,
    workload: &Workload,
    max: u32,
) -> Result<Timed, String> {
    fill(sim, workload);
    runtime.block_on(async {
        let client = Arc::new(RawClient::login(&sim.url(), BROKER_ID, &sim.credentials).await?);
        time_drain(workload, |queue| {
            let client = client.clone();
            async move {
                pull_until_short(max, || async {
                    let (n, _) = client.pull(queue.as_str(), max).await?;
                    Ok(n)
                })
                .await
            }
        })
        .await
    })
}

/// Baseline A2: like [`baseline_a_raw`], through the broker's `ApiSource` (which parses and
/// re-encodes each event); the events are dropped.
fn baseline_a_source(
    runtime: &Runtime,
    sim: &BenchSim,
    workload: &Workload,
    max: u32,
) -> Result<Timed, String> {
    fill(sim, workload);
    let source = sim.api_source();
    runtime.block_on(async {
        // Log in before the clock starts, as baseline A does.
        source.hello().await.map_err(|e| e.to_string())?;
        time_drain(workload, |queue| {
            let source = source.clone();
            async move {
                pull_until_short(max, || async {
                    Ok(source
                        .pull(queue, max)
                        .await
                        .map_err(|e| e.to_string())?
                        .len())
                })
                .await
            }
        })
        .await
    })
}

/// End to end: runs the broker binary with `--loop 1` until its output file holds every line,
/// then stops it with SIGTERM and collects its rusage.
fn end_to_end(
    options: &Options,
    sim: &BenchSim,
    workload: &Workload,
    max: u32,
    expected: &LinesDigest,
) -> Result<EndToEnd, String> {
    fill(sim, workload);
    let dir = temp_dir(&options.broker.root, "drain-bench-e2e-");
    let output = dir.path().join("all.jsonl");
    let config = sim.write_broker_dir(dir.path(), &dir.path().join("spool"), max, &output);
    let parent_rss_kib = peak_rss_kib();
    let run = options
        .broker
        .run_until(dir.path(), &config, || {
            std::fs::metadata(&output).map_or(0, |m| m.len()) >= expected.bytes
        })
        .map_err(|e| {
            let size = std::fs::metadata(&output).map_or(0, |m| m.len());
            format!("{e} ({size} of {} bytes written)", expected.bytes)
        })?;
    check_file(&output, expected)?;
    Ok(EndToEnd {
        timed: Timed {
            seconds: run.seconds,
            cpu: run.cpu,
        },
        usage: run.usage,
        parent_rss_kib,
    })
}

/// Checks that `path` holds exactly the expected lines (in any order).
fn check_file(path: &Path, expected: &LinesDigest) -> Result<(), String> {
    let got = LinesDigest::of_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if got == *expected {
        Ok(())
    } else {
        Err(format!(
            "{} holds {}",
            path.display(),
            got.shortfall(expected, "expected lines")
        ))
    }
}

/// The broker's pipeline in this process: a delivery task for one file pipe and a drain of
/// the four queues, with a durable spool in a temporary directory or an in-memory one; timed
/// until the pipe has delivered every event.
fn pipeline(
    options: &Options,
    runtime: &Runtime,
    sim: &BenchSim,
    workload: &Workload,
    max: u32,
    spooled: Spooled,
    expected: &LinesDigest,
) -> Result<Timed, String> {
    fill(sim, workload);
    let dir = temp_dir(&options.broker.root, "drain-bench-pipeline-");
    let output = dir.path().join("all.jsonl");
    let spool_dir = dir.path().join("spool");
    let config = sim.config(dir.path(), &spool_dir, max, &output);
    let source = sim.api_source();
    let cpu = self_cpu_seconds();
    let start = Instant::now();
    let spool = if spooled != Spooled::InMemory {
        Spool::open(&spool_dir, config.spool_max, &config.pipes).map_err(|e| e.to_string())?
    } else {
        Spool::in_memory(config.spool_max, &config.pipes)
    };
    let spool = Arc::new(spool);
    let pipeline = Pipeline::new(&config.pipes).map_err(|e| e.to_string())?;
    let seconds = runtime.block_on(async {
        let running = if spooled == Spooled::DurableWithStatus {
            let every = Duration::from_secs(1);
            let status = StatusBoard::new(spool.clone(), &config, every);
            pipeline.start_with_status(spool.clone(), status)
        } else {
            pipeline.start(spool.clone())
        };
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let result = async {
            loop {
                let report = running.drain(source.clone(), &stop).await;
                if report.failed() {
                    return Err(report.failures.join("; "));
                }
                if sim.queued() == 0 {
                    break;
                }
            }
            while spool.pending(0) > 0 {
                if start.elapsed() > options.broker.timeout {
                    return Err(format!(
                        "timed out with {} events undelivered",
                        spool.pending(0)
                    ));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok(start.elapsed().as_secs_f64())
        }
        .await;
        running.shutdown(Duration::from_secs(5)).await;
        result
    })?;
    let cpu = self_cpu_seconds() - cpu;
    drop(spool);
    check_file(&output, expected)?;
    Ok(Timed { seconds, cpu })
}

/// Prints the table of figures, ratios and targets, then what failed.
fn print_table(events: usize, baseline: &Baseline, all: &[Figures]) {
    let b_seconds = baseline.encode + baseline.write;
    let b_rate = rate(events, b_seconds);
    let rate_of = |t: &Result<Timed, String>| t.as_ref().ok().map(|t| rate(events, t.seconds));
    let e2e_rate = |f: &Figures| {
        f.end_to_end
            .as_ref()
            .ok()
            .map(|e| rate(events, e.timed.seconds))
    };
    let show = |v: Option<f64>| v.map_or("failed".to_string(), thousands);
    let fixed =
        |v: Option<f64>, digits: usize| v.map_or("failed".to_string(), |v| format!("{v:.digits$}"));
    let cells = |f: &dyn Fn(&Figures) -> String| all.iter().map(f).collect::<Vec<_>>();

    let mut header = vec!["figure".to_string()];
    header.extend(all.iter().map(|f| format!("Max = {}", f.max)));
    let mut t = Table::new(header);
    t.section("events per second");
    t.row(
        "baseline A: simulator -> minimal client, discarded",
        cells(&|f| show(rate_of(&f.raw))),
    );
    t.row(
        "baseline A2: simulator -> broker's ApiSource (parse + encode), discarded",
        cells(&|f| show(rate_of(&f.source))),
    );
    t.row(
        &format!(
            "baseline B: encode ({:.2} s) + buffered write and fsync ({:.2} s)",
            baseline.encode, baseline.write
        ),
        cells(&|_| thousands(b_rate)),
    );
    t.row(
        "end to end: procustodibus-broker --loop 1, file pipe",
        cells(&|f| show(e2e_rate(f))),
    );
    t.row(
        "end to end, each run",
        cells(&|f| {
            f.e2e_rates
                .iter()
                .map(|r| format!("{:.0}k", r / 1000.0))
                .collect::<Vec<_>>()
                .join(" ")
        }),
    );
    t.row(
        "pipeline in process, durable spool (Spool::open)",
        cells(&|f| show(rate_of(&f.durable))),
    );
    t.row(
        "pipeline in process, durable spool and status board (start_with_status)",
        cells(&|f| show(rate_of(&f.status))),
    );
    t.row(
        "pipeline in process, in-memory spool (Spool::in_memory)",
        cells(&|f| show(rate_of(&f.memory))),
    );
    t.section("end to end");
    let usage = |f: &Figures| f.end_to_end.as_ref().ok().map(|e| e.usage);
    t.row(
        "wall seconds to the last line",
        cells(&|f| fixed(f.end_to_end.as_ref().ok().map(|e| e.timed.seconds), 2)),
    );
    t.row(
        "broker CPU seconds, user + sys",
        cells(&|f| {
            usage(f).map_or("failed".to_string(), |u| {
                format!("{:.2} + {:.2}", u.user, u.system)
            })
        }),
    );
    let mb = |kib: u64| kib as f64 * 1024.0 / 1e6;
    t.row(
        "broker peak RSS (its VmHWM), MB, highest of the runs",
        cells(&|f| fixed(f.peak_rss_kib.map(mb), 1)),
    );
    t.row(
        "wait4 ru_maxrss, MB (counts this process's peak RSS before the spawn)",
        cells(&|f| fixed(usage(f).map(|u| mb(u.max_rss_kib)), 1)),
    );
    t.row(
        "this process's peak RSS at the spawn, MB",
        cells(&|f| {
            fixed(
                f.end_to_end
                    .as_ref()
                    .ok()
                    .and_then(|e| e.parent_rss_kib)
                    .map(mb),
                1,
            )
        }),
    );
    t.row(
        "simulator CPU seconds (this process meanwhile)",
        cells(&|f| fixed(f.end_to_end.as_ref().ok().map(|e| e.timed.cpu), 2)),
    );
    t.row(
        "SIGTERM to exit, seconds",
        cells(&|f| fixed(usage(f).map(|u| u.stop_time.as_secs_f64()), 2)),
    );
    t.section("CPU seconds of this process (simulator + client or pipeline)");
    t.row(
        "baseline A",
        cells(&|f| fixed(f.raw.as_ref().ok().map(|t| t.cpu), 2)),
    );
    t.row(
        "baseline A2",
        cells(&|f| fixed(f.source.as_ref().ok().map(|t| t.cpu), 2)),
    );
    t.row(
        "pipeline, durable spool",
        cells(&|f| fixed(f.durable.as_ref().ok().map(|t| t.cpu), 2)),
    );
    t.row(
        "pipeline, durable spool and status board",
        cells(&|f| fixed(f.status.as_ref().ok().map(|t| t.cpu), 2)),
    );
    t.row(
        "pipeline, in-memory spool",
        cells(&|f| fixed(f.memory.as_ref().ok().map(|t| t.cpu), 2)),
    );
    t.section("ratios");
    let over = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => ratio(a, b),
        _ => "failed".to_string(),
    };
    t.row(
        "end to end / baseline A",
        cells(&|f| over(e2e_rate(f), rate_of(&f.raw))),
    );
    t.row(
        "end to end / baseline A2",
        cells(&|f| over(e2e_rate(f), rate_of(&f.source))),
    );
    t.row(
        "end to end / baseline B",
        cells(&|f| over(e2e_rate(f), Some(b_rate))),
    );
    t.row(
        "durable / in-memory spool",
        cells(&|f| over(rate_of(&f.durable), rate_of(&f.memory))),
    );
    t.row(
        "durable with status board / durable",
        cells(&|f| over(rate_of(&f.status), rate_of(&f.durable))),
    );
    t.section("targets");
    let judge = |ok: Option<bool>| ok.map_or("failed".to_string(), |ok| verdict(ok).to_string());
    t.row(
        &format!(
            "end to end >= {} events/s at Max = 1000",
            thousands(TARGET_RATE)
        ),
        cells(&|f| {
            if f.max == 1000 {
                judge(e2e_rate(f).map(|r| r >= TARGET_RATE))
            } else {
                "-".to_string()
            }
        }),
    );
    t.row(
        &format!("end to end >= {TARGET_SHARE_OF_A} x baseline A"),
        cells(&|f| {
            judge(
                e2e_rate(f)
                    .zip(rate_of(&f.raw))
                    .map(|(e, a)| e >= TARGET_SHARE_OF_A * a),
            )
        }),
    );
    t.row(
        &format!("broker peak RSS < {}", megabytes(TARGET_RSS_BYTES)),
        cells(&|f| judge(f.peak_rss_kib.map(|k| k * 1024 < TARGET_RSS_BYTES))),
    );
    t.row(
        &format!(
            "spool cost <= {:.0}% (durable >= {:.1} x in-memory)",
            TARGET_SPOOL_COST * 100.0,
            1.0 - TARGET_SPOOL_COST
        ),
        cells(&|f| {
            judge(
                rate_of(&f.durable)
                    .zip(rate_of(&f.memory))
                    .map(|(d, m)| d >= (1.0 - TARGET_SPOOL_COST) * m),
            )
        }),
    );
    t.row(
        &format!(
            "status cost <= {:.0}% (with status >= {:.2} x durable)",
            TARGET_STATUS_COST * 100.0,
            1.0 - TARGET_STATUS_COST
        ),
        cells(&|f| {
            judge(
                rate_of(&f.status)
                    .zip(rate_of(&f.durable))
                    .map(|(s, d)| s >= (1.0 - TARGET_STATUS_COST) * d),
            )
        }),
    );
    print!("{}", t.render());
    for f in all {
        for failure in &f.failures {
            println!("{failure}");
        }
    }
}
