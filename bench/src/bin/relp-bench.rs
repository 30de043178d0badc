//! `relp-bench`: the syslog sink over RELP against plain TCP, into the same real rsyslog, in one
//! run.
//!
//! One rsyslogd ([`Rsyslog::start_relp_queued`] of the test crate: `imtcp` and `imrelp` on
//! loopback feeding one output file through rsyslog's default in-memory main queue; with
//! `--queue direct`, [`Rsyslog::start_relp`]'s direct queue, where `imrelp` answers a message only
//! once it is written) receives `--events` generated events
//! (default 100,000) from the broker's own `SyslogSink`, in process (in a task of its own on a
//! 2-thread runtime, as a pipe's worker in the daemon), in deliveries of `--batch`
//! events (default 1000, a pipe's `Max`): once with `Protocol = tcp` (octet-counted frames), once
//! with `Protocol = relp` (`--window`, default the sink's, 1024). Each pass is timed from its first delivery
//! until rsyslog's output file holds every one of its messages, so both count what rsyslog wrote,
//! not what the socket took. The passes alternate `--runs` times (default 3); each figure is the
//! middle run. It prints events per second for each and the ratio RELP/TCP, against the target:
//! RELP at least half as fast as TCP; and, to tell who bounds each rate, the CPU time per event of
//! rsyslogd (from `/proc/PID/stat`) and of this process (the sink) in each pass.
//!
//! `cargo run --release -p broker-bench --bin relp-bench -- [--events N] [--batch N]
//! [--window N] [--runs R]` (rsyslogd with `imrelp`: Debian packages `rsyslog`, `rsyslog-relp`)

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_bench::args::Args;
use broker_bench::report::{rate, ratio, thousands, verdict};
use broker_bench::stats::self_cpu_seconds;
use broker_bench::workload::Workload;
use broker_core::config::PipeSettings;
use broker_core::{Event, Sink};
use broker_sinks::syslog::transport::relp::DEFAULT_WINDOW;
use broker_sinks::syslog::SyslogSink;
use broker_tests::rsyslog::{Input, Rsyslog};

const USAGE: &str = "\
relp-bench: the syslog sink over RELP and over plain TCP into the same rsyslog

usage: cargo run --release -p broker-bench --bin relp-bench -- [OPTIONS]

options:
  --events N   events per pass (default 100000)
  --batch N    events per delivery, as a pipe's Max (default 1000)
  --window N   the RELP Window (default 1024, the sink's default)
  --runs R     passes of each protocol, alternating; the middle one counts (default 3)
  --queue Q    rsyslog's main queue: memory (its default) or direct (default memory)";

/// The least ratio of the RELP rate to the TCP rate.
const TARGET_RATIO: f64 = 0.5;

/// How long one pass may take before the bench gives up.
const PASS_LIMIT: Duration = Duration::from_secs(600);

/// Counts the lines of rsyslog's output file as it grows, reading each byte once into one
/// reused buffer (so that counting costs this process, whose CPU is the sink's figure, little).
struct LineCount {
    file: File,
    buf: Vec<u8>,
    lines: usize,
}

impl LineCount {
    fn open(path: &Path) -> LineCount {
        let file = File::options()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .expect("open rsyslog's output file");
        LineCount {
            file,
            buf: vec![0; 256 * 1024],
            lines: 0,
        }
    }

    /// Reads what was appended since the last call; the lines so far.
    fn update(&mut self) -> usize {
        // The file position is where the last call stopped reading.
        loop {
            let n = self
                .file
                .read(&mut self.buf)
                .expect("read rsyslog's output file");
            if n == 0 {
                return self.lines;
            }
            self.lines += self.buf[..n].iter().filter(|b| **b == b'\n').count();
        }
    }
}

/// The CPU seconds (user and system) process `pid` used so far.
fn cpu_seconds_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / per_second.max(1.0)
}

/// What one pass measured.
struct Pass {
    seconds: f64,
    rsyslog_cpu: f64,
    sink_cpu: f64,
}

/// Delivers `events` through `sink` in deliveries of `batch`, as a pipe does: each delivery again
/// from the first event not handed over, until every one is.
async fn deliver_all(mut sink: SyslogSink, events: Arc<Vec<Event>>, batch: usize) -> SyslogSink {
    let start = Instant::now();
    for chunk in events.chunks(batch) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match sink.deliver(rest).await {
                Ok(()) => rest = &[],
                Err(e) => {
                    assert!(start.elapsed() < PASS_LIMIT, "gave up: {e:?}");
                    eprintln!("relp-bench: {e:?}; again");
                    rest = &rest[e.delivered..];
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    sink
}

/// One pass: every event through a new sink with `keys`, until rsyslog (process `pid`) wrote
/// them all. The sink runs in a task of its own, as a pipe's worker does in the daemon.
async fn pass(
    keys: &[(&str, &str)],
    events: &Arc<Vec<Event>>,
    batch: usize,
    output: &mut LineCount,
    pid: u32,
) -> Pass {
    let settings = PipeSettings::new("Bench", "relp-bench", keys);
    let sink = SyslogSink::from_settings(&settings).expect("the bench's pipe settings");
    let before = output.update();
    let (rsyslog_cpu, sink_cpu) = (cpu_seconds_of(pid), self_cpu_seconds());
    let start = Instant::now();
    let mut sink = tokio::spawn(deliver_all(sink, Arc::clone(events), batch))
        .await
        .expect("the delivering task");
    while output.update() < before + events.len() {
        assert!(
            start.elapsed() < PASS_LIMIT,
            "rsyslog wrote {} of {} messages",
            output.lines - before,
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let measured = Pass {
        seconds,
        rsyslog_cpu: cpu_seconds_of(pid) - rsyslog_cpu,
        sink_cpu: self_cpu_seconds() - sink_cpu,
    };
    let _ = sink.close().await;
    measured
}

/// The middle value.
fn middle(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args = Args::from_env(USAGE, &["events", "batch", "window", "runs", "queue"]);
    let count = args.number("events", 100_000);
    let batch = args.number("batch", 1000).max(1);
    let window = args.number("window", DEFAULT_WINDOW).to_string();
    let runs = args.number("runs", 3).max(1);

    let queue = args.value("queue").unwrap_or("memory").to_string();
    let rsyslog = match queue.as_str() {
        "memory" => Rsyslog::start_relp_queued(),
        "direct" => Rsyslog::start_relp(),
        other => panic!("--queue {other:?}: memory or direct"),
    };
    let events = Arc::new(Workload::generate(count, 1).encode());
    let mut output = LineCount::open(&rsyslog.path("received.jsonl"));
    let tcp_address = rsyslog.address(Input::Tcp);
    let relp_address = rsyslog.address(Input::Relp);
    let tcp_keys = [
        ("Socket", tcp_address.as_str()),
        ("Protocol", "tcp"),
        ("Format", "rfc5424"),
    ];
    let relp_keys = [
        ("Socket", relp_address.as_str()),
        ("Protocol", "relp"),
        ("Format", "rfc5424"),
        ("Window", window.as_str()),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2) // as the daemon's runtime
        .enable_all()
        .build()
        .expect("tokio runtime");
    let pid = rsyslog.pid();
    let (mut tcp, mut relp) = (Vec::new(), Vec::new());
    let micros = |cpu: f64| format!("{:.1}", cpu * 1e6 / count as f64);
    for run in 1..=runs {
        for (name, keys, rates) in [
            ("tcp ", &tcp_keys[..], &mut tcp),
            ("relp", &relp_keys[..], &mut relp),
        ] {
            let measured = runtime.block_on(pass(keys, &events, batch, &mut output, pid));
            println!(
                "run {run} {name}: {:>8} events/s; CPU per event: rsyslogd {} us, sink {} us",
                thousands(rate(count, measured.seconds)),
                micros(measured.rsyslog_cpu),
                micros(measured.sink_cpu)
            );
            rates.push(rate(count, measured.seconds));
        }
    }
    let (tcp, relp) = (middle(tcp), middle(relp));
    println!(
        "\n{count} events, deliveries of {batch}, RELP window {window}, rsyslog's {queue} \
         queue, middle of {runs} runs"
    );
    println!("plain TCP into rsyslog:  {:>10} events/s", thousands(tcp));
    println!("RELP into rsyslog:       {:>10} events/s", thousands(relp));
    println!(
        "RELP/TCP:                {:>10}   target >= {TARGET_RATIO}: {}",
        ratio(relp, tcp),
        verdict(relp >= tcp * TARGET_RATIO)
    );
}
