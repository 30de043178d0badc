//! `spool-choice`: the spool's append-only segment files (`broker_core::spool::Spool`) against
//! a small spool on redb ([`broker_bench::redb_spool`]) doing the same work with the same
//! durability, measured in one run.
//!
//! `--events` realistic events (default 200,000, a quarter per queue, from the simulator's
//! generator, encoded as the broker writes them) go through each store in a fresh temporary
//! directory, for each batch size (default 100 and 1000):
//!
//! 1. append: batches of that size, the queues taking turns (as the four concurrent pulls
//!    would), each batch flushed to the disk before the next (`fdatasync` for the segments, a
//!    write transaction with `Durability::Immediate` for redb);
//! 2. reopen: the store closed and opened again while it holds every event (what a restart
//!    with a full spool costs: the segment spool reads and checks every record);
//! 3. read + advance: one pipe from the four queues reads up to the batch size per queue, then
//!    advances past what it read (saving its positions and reclaiming what it is past), until
//!    nothing is left; what was read is checked against what was appended.
//!
//! Printed per store: events per second of each phase, CPU seconds, the size on disk at the
//! peak (every event stored) and after reclaim (for redb also after `compact`), and the rise
//! of this process's peak RSS during the run (`VmHWM`, reset before each run).

use std::path::Path;
use std::time::Instant;

use broker_bench::args::Args;
use broker_bench::redb_spool::RedbSpool;
use broker_bench::report::{megabytes, rate, ratio, thousands, Table};
use broker_bench::stats::{
    peak_rss_kib, release_free_memory, reset_peak_rss, rss_kib, self_cpu_seconds,
};
use broker_bench::workload::{per_queue, LinesDigest, Workload};
use broker_bench::{temp_dir, temp_root};
use broker_core::config::{BrokerConfig, PipeConfig};
use broker_core::spool::{Spool, DEFAULT_MAX_BYTES};
use broker_core::{Event, EventType};
use redb::Durability;

const USAGE: &str = "\
spool-choice: the spool's segment files against a spool on redb, same work, same durability

usage: cargo run --release -p broker-bench --bin spool-choice -- [OPTIONS]

options:
  --events N          events to spool, a quarter per queue (default 200000)
  --batch LIST        batch sizes (events per append, and per queue per read), comma-separated
                      (default 100,1000)
  --redb-cache BYTES  redb's page cache (default 8388608, 8 MiB; redb's own default is 1 GiB)
  --dir DIR           where the temporary directories go (default: the system's temp dir)";

/// A store under test: the same calls for the segment spool and the redb one.
trait Store {
    fn append(&mut self, queue: EventType, events: &[Event]) -> Result<(), String>;
    fn read(&mut self, max_per_queue: usize) -> Result<Vec<Event>, String>;
    fn advance(&mut self, delivered: &[Event]) -> Result<(), String>;
    /// Makes everything durable, as at shutdown.
    fn finish(&mut self) -> Result<(), String>;
}

/// The broker's spool, one pipe (index 0).
struct Segments(Spool);

impl Store for Segments {
    fn append(&mut self, queue: EventType, events: &[Event]) -> Result<(), String> {
        self.0.append(queue, events).map_err(|(_, e)| e.to_string())
    }
    fn read(&mut self, max_per_queue: usize) -> Result<Vec<Event>, String> {
        self.0.read(0, max_per_queue).map_err(|e| e.to_string())
    }
    fn advance(&mut self, delivered: &[Event]) -> Result<(), String> {
        self.0.advance(0, delivered).map_err(|e| e.to_string())
    }
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// The redb prototype, one pipe (index 0).
struct Redb(RedbSpool);

impl Store for Redb {
    fn append(&mut self, queue: EventType, events: &[Event]) -> Result<(), String> {
        self.0.append(queue, events).map_err(|e| e.to_string())
    }
    fn read(&mut self, max_per_queue: usize) -> Result<Vec<Event>, String> {
        self.0.read(0, max_per_queue).map_err(|e| e.to_string())
    }
    fn advance(&mut self, delivered: &[Event]) -> Result<(), String> {
        self.0.advance(0, delivered).map_err(|e| e.to_string())
    }
    fn finish(&mut self) -> Result<(), String> {
        self.0.sync().map_err(|e| e.to_string())
    }
}

/// Which store, and how it is set up.
#[derive(Clone, Copy)]
enum Kind {
    Segments,
    Redb(Durability),
}

impl Kind {
    fn name(self) -> String {
        match self {
            Kind::Segments => "segment files".to_string(),
            Kind::Redb(Durability::None) => "redb, advance None".to_string(),
            Kind::Redb(_) => "redb, advance Immediate".to_string(),
        }
    }

    fn open(
        self,
        dir: &Path,
        pipes: &[PipeConfig],
        cache: usize,
    ) -> Result<Box<dyn Store>, String> {
        match self {
            Kind::Segments => Ok(Box::new(Segments(
                Spool::open(dir, DEFAULT_MAX_BYTES, pipes).map_err(|e| e.to_string())?,
            ))),
            Kind::Redb(durability) => {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                let pipes: Vec<(String, Vec<EventType>)> = pipes
                    .iter()
                    .map(|p| (p.name.clone(), p.from.clone()))
                    .collect();
                Ok(Box::new(Redb(
                    RedbSpool::open(&dir.join("spool.redb"), &pipes, cache, durability)
                        .map_err(|e| e.to_string())?,
                )))
            }
        }
    }
}

/// What one store did with one batch size.
struct Run {
    append_seconds: f64,
    append_cpu: f64,
    reopen_seconds: f64,
    read_seconds: f64,
    read_cpu: f64,
    peak: DiskUse,
    after: DiskUse,
    /// For redb: `compact` after reclaim, its seconds and the size after it.
    compacted: Option<(f64, DiskUse)>,
    /// Rise of the peak RSS over the RSS at the start of the run, in KiB.
    rss_rise_kib: Option<u64>,
}

/// Bytes of the files in a directory tree: their length and what the file system allocated.
#[derive(Clone, Copy, Default)]
struct DiskUse {
    apparent: u64,
    allocated: u64,
}

fn disk_use(dir: &Path) -> DiskUse {
    use std::os::unix::fs::MetadataExt;
    let mut total = DiskUse::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return total;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let sub = disk_use(&entry.path());
            total.apparent += sub.apparent;
            total.allocated += sub.allocated;
        } else {
            total.apparent += meta.len();
            total.allocated += meta.blocks() * 512;
        }
    }
    total
}

fn main() {
    broker_sinks::link();
    let args = Args::from_env(USAGE, &["events", "batch", "redb-cache", "dir"]);
    let total = args.number("events", 200_000);
    let batches = args.numbers("batch", &[100, 1000]);
    let cache = args.number("redb-cache", 8 << 20);
    let root = temp_root(args.path("dir").as_deref());

    let workload = Workload::generate(total, 1);
    let events = workload.encode();
    let expected = LinesDigest::of_events(&events);
    let mut by_queue: Vec<(EventType, Vec<Event>)> = EventType::ALL
        .into_iter()
        .map(|q| (q, Vec::new()))
        .collect();
    for event in events {
        let i = EventType::ALL
            .iter()
            .position(|q| *q == event.event_type())
            .expect("one of the four queues");
        by_queue[i].1.push(event);
    }
    let config = BrokerConfig::parse(
        "[Broker]\nBroker = bench\n\n[Pipe.All]\n\
         From = alerts, endpoint_stats, log_authn, log_changes\nTo = file\nFile = /dev/null\n",
        Path::new("broker.conf"),
    )
    .expect("a valid config");

    println!(
        "spool-choice: {} events ({} per queue), {} of output lines (mean {} B); one pipe \
         from the four queues; temp dirs in {}; redb {} with a {} page cache",
        thousands(expected.lines as f64),
        per_queue(total).map(|n| thousands(n as f64)).join("/"),
        megabytes(expected.bytes),
        expected.bytes / expected.lines.max(1),
        root.display(),
        REDB_VERSION,
        cache_text(cache),
    );
    println!();

    let kinds = [
        Kind::Segments,
        Kind::Redb(Durability::None),
        Kind::Redb(Durability::Immediate),
    ];
    for &batch in &batches {
        let runs: Vec<Result<Run, String>> = kinds
            .iter()
            .map(|kind| {
                eprintln!("batch {batch}: {}", kind.name());
                run(
                    *kind,
                    batch as usize,
                    &by_queue,
                    &expected,
                    &config.pipes,
                    cache,
                    &root,
                )
            })
            .collect();
        print_table(batch, expected.lines as usize, &kinds, &runs);
        println!();
    }
}

/// A cache size in MiB (or bytes when it is not a whole number of them).
fn cache_text(bytes: usize) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} B")
    }
}

/// The redb version this crate is built with (for the report).
const REDB_VERSION: &str = "4.6";

/// Appends every event in batches of `batch`, reopens the store, reads and advances until it is
/// empty, and measures each phase.
fn run(
    kind: Kind,
    batch: usize,
    by_queue: &[(EventType, Vec<Event>)],
    expected: &LinesDigest,
    pipes: &[PipeConfig],
    cache: usize,
    root: &Path,
) -> Result<Run, String> {
    let dir = temp_dir(root, "spool-choice-");
    let spool_dir = dir.path().join("spool");
    release_free_memory();
    let reset = reset_peak_rss();
    let rss_start = rss_kib();
    let mut store = kind.open(&spool_dir, pipes, cache)?;

    let cpu = self_cpu_seconds();
    let start = Instant::now();
    let rounds = by_queue
        .iter()
        .map(|(_, e)| e.len().div_ceil(batch))
        .max()
        .unwrap_or(0);
    for round in 0..rounds {
        for (queue, events) in by_queue {
            let from = round * batch;
            if from < events.len() {
                store.append(*queue, &events[from..(from + batch).min(events.len())])?;
            }
        }
    }
    let append_seconds = start.elapsed().as_secs_f64();
    let append_cpu = self_cpu_seconds() - cpu;
    let peak = disk_use(&spool_dir);

    let start = Instant::now();
    drop(store);
    let mut store = kind.open(&spool_dir, pipes, cache)?;
    let reopen_seconds = start.elapsed().as_secs_f64();

    let cpu = self_cpu_seconds();
    let start = Instant::now();
    let mut got = LinesDigest::default();
    loop {
        let events = store.read(batch)?;
        if events.is_empty() {
            break;
        }
        for event in &events {
            got.add(event.line().as_bytes());
        }
        store.advance(&events)?;
    }
    store.finish()?;
    let read_seconds = start.elapsed().as_secs_f64();
    let read_cpu = self_cpu_seconds() - cpu;
    if got != *expected {
        return Err(format!("read back {}", got.shortfall(expected, "appended")));
    }
    let after = disk_use(&spool_dir);
    drop(store);

    let compacted = match kind {
        Kind::Segments => None,
        Kind::Redb(durability) => {
            let pipes: Vec<(String, Vec<EventType>)> = pipes
                .iter()
                .map(|p| (p.name.clone(), p.from.clone()))
                .collect();
            let mut db = RedbSpool::open(&spool_dir.join("spool.redb"), &pipes, cache, durability)
                .map_err(|e| e.to_string())?;
            let start = Instant::now();
            while db.compact().map_err(|e| e.to_string())? {}
            let seconds = start.elapsed().as_secs_f64();
            drop(db);
            Some((seconds, disk_use(&spool_dir)))
        }
    };
    let rss_rise_kib = match (reset, rss_start, peak_rss_kib()) {
        (true, Some(start), Some(peak)) => Some(peak.saturating_sub(start)),
        _ => None,
    };
    Ok(Run {
        append_seconds,
        append_cpu,
        reopen_seconds,
        read_seconds,
        read_cpu,
        peak,
        after,
        compacted,
        rss_rise_kib,
    })
}

/// Prints one batch size's table: a column per store.
fn print_table(batch: u32, events: usize, kinds: &[Kind], runs: &[Result<Run, String>]) {
    let mut header = vec![format!("batch = {batch}")];
    header.extend(kinds.iter().map(|k| k.name()));
    let mut t = Table::new(header);
    let cells = |f: &dyn Fn(&Run) -> String| {
        runs.iter()
            .map(|r| r.as_ref().map_or("failed".to_string(), f))
            .collect::<Vec<_>>()
    };
    t.section("events per second");
    t.row(
        "append (flushed per batch)",
        cells(&|r| thousands(rate(events, r.append_seconds))),
    );
    t.row(
        "read + advance (+ reclaim)",
        cells(&|r| thousands(rate(events, r.read_seconds))),
    );
    t.section("seconds");
    t.row(
        "append: wall / CPU",
        cells(&|r| format!("{:.2} / {:.2}", r.append_seconds, r.append_cpu)),
    );
    t.row(
        "reopen holding every event",
        cells(&|r| format!("{:.3}", r.reopen_seconds)),
    );
    t.row(
        "read + advance: wall / CPU",
        cells(&|r| format!("{:.2} / {:.2}", r.read_seconds, r.read_cpu)),
    );
    t.section("on disk (file length / allocated)");
    let size = |d: DiskUse| format!("{} / {}", megabytes(d.apparent), megabytes(d.allocated));
    t.row("at the peak (every event stored)", cells(&|r| size(r.peak)));
    t.row("after reclaim", cells(&|r| size(r.after)));
    t.row(
        "after compact (seconds)",
        cells(&|r| {
            r.compacted.map_or("-".to_string(), |(s, d)| {
                format!("{} ({s:.2} s)", megabytes(d.apparent))
            })
        }),
    );
    t.section("memory");
    t.row(
        "peak RSS rise during the run",
        cells(&|r| {
            r.rss_rise_kib
                .map_or("n/a".to_string(), |k| megabytes(k * 1024))
        }),
    );
    if let Some(Ok(segments)) = runs.first() {
        t.section("segment files / this store");
        let over = |f: &dyn Fn(&Run) -> f64| {
            runs.iter()
                .map(|r| {
                    r.as_ref()
                        .map_or("failed".to_string(), |r| ratio(f(r), f(segments)))
                })
                .collect::<Vec<_>>()
        };
        // Rates: segments' rate over this store's rate is this store's time over segments'.
        t.row("append rate", over(&|r| r.append_seconds));
        t.row("read + advance rate", over(&|r| r.read_seconds));
    }
    print!("{}", t.render());
    for (kind, run) in kinds.iter().zip(runs) {
        if let Err(e) = run {
            println!("{} failed: {e}", kind.name());
        }
    }
}
