//! The end-to-end half of the benchmarks: the release broker binary drains the simulator as a
//! `--loop` daemon in a directory of its own, timed from its start until its receiver holds every
//! event (a file for `drain-bench`, a SIEM test receiver for `splunk-bench`,
//! `elasticsearch-bench`, `loki-bench` and `sentinel-bench`), then stopped with SIGTERM.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::sim::BenchSim;
use crate::stats::{has_exited, self_cpu_seconds, terminate, watch_peak_rss, ChildUsage};
use crate::workload::Workload;
use crate::{temp_dir, temp_root};

/// The release broker a benchmark runs, where its temporary directories go and how long one run
/// may take.
pub struct ReleaseBroker {
    /// The `procustodibus-broker` binary.
    pub binary: PathBuf,
    /// Where the runs' temporary directories go.
    pub root: PathBuf,
    /// How long one run may take before it fails.
    pub timeout: Duration,
}

/// What one run of the broker measured.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Seconds from the broker's start until every event arrived.
    pub seconds: f64,
    /// CPU seconds this process (the simulator, and a receiver in it) used meanwhile.
    pub cpu: f64,
    /// How the broker ended and what it used (its own peak RSS watched while it ran).
    pub usage: ChildUsage,
}

impl ReleaseBroker {
    /// From the options `--broker PATH` (else `procustodibus-broker` next to the running
    /// benchmark, `target/release/`), `--dir` (else the system's temporary directory) and
    /// `--timeout` in seconds (else `timeout`; also for a benchmark without that option). Exits 2
    /// with the command that builds the broker when it is missing.
    pub fn from_args(args: &Args, timeout: u64) -> ReleaseBroker {
        let binary = args.path("broker").unwrap_or_else(|| {
            std::env::current_exe()
                .expect("the benchmark's own path")
                .with_file_name("procustodibus-broker")
        });
        if !binary.is_file() {
            eprintln!(
                "{} is missing: cargo build --release -p broker-cli (or give --broker)",
                binary.display()
            );
            std::process::exit(2);
        }
        ReleaseBroker {
            binary,
            root: temp_root(args.path("dir").as_deref()),
            timeout: Duration::from_secs(args.number("timeout", timeout as usize) as u64),
        }
    }

    /// Starts `broker --config CONFIG --loop 1` in `dir` (its output in `dir/broker.log`), polls
    /// `arrived` every 2 ms until it says true, then stops the broker with SIGTERM. An error
    /// (with the log's last lines) when the broker exits first, the timeout passes or the broker
    /// does not exit 0.
    pub fn run_until(
        &self,
        dir: &Path,
        config: &Path,
        mut arrived: impl FnMut() -> bool,
    ) -> Result<Run, String> {
        let log_path = dir.join("broker.log");
        let log = File::create(&log_path).map_err(|e| e.to_string())?;
        let cpu = self_cpu_seconds();
        let start = Instant::now();
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(config)
            .args(["--loop", "1"])
            .current_dir(dir)
            .env("STATE_DIRECTORY", dir.join("state"))
            .env_remove("PROCUSTODIBUS_CONF")
            .env_remove("PROCUSTODIBUS_LOGGING_LEVEL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        let pid = child.id();
        let mut peak_rss = None;
        let mut polls = 0u32;
        let waited = loop {
            if polls.is_multiple_of(8) {
                watch_peak_rss(pid, &mut peak_rss);
            }
            polls += 1;
            if arrived() {
                break Ok(start.elapsed().as_secs_f64());
            }
            if has_exited(pid) {
                break Err("the broker exited before every event arrived".to_string());
            }
            if start.elapsed() > self.timeout {
                break Err(format!("timed out after {} s", self.timeout.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let cpu = self_cpu_seconds() - cpu;
        let usage = terminate(pid, Duration::from_secs(10), peak_rss);
        drop(child);
        let log_tail = || {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(5)..].join(" | ")
        };
        let seconds = waited.map_err(|e| format!("{e}; broker log: {}", log_tail()))?;
        if usage.exit_code != Some(0) {
            return Err(format!(
                "the broker did not exit 0 after SIGTERM ({usage:?}); broker log: {}",
                log_tail()
            ));
        }
        Ok(Run {
            seconds,
            cpu,
            usage,
        })
    }

    /// The end to end of a sink benchmark: enqueues `workload` in `sim`, writes the broker's
    /// files in a fresh directory `PREFIX...` under the root with one pipe from the four queues,
    /// `Max = 1000`, into the sink of `keys` (`To = ...` and the rest, one a line), and runs it
    /// until the receiver's count `taken` reaches the workload's (see
    /// [`ReleaseBroker::run_until`]); returns the seconds it took. An error also when the
    /// receiver then holds more events than were sent ([`Workload::all_taken`]).
    pub fn drain_into_sink(
        &self,
        sim: &BenchSim,
        workload: &Workload,
        prefix: &str,
        keys: &str,
        mut taken: impl FnMut() -> usize,
    ) -> Result<f64, String> {
        workload.enqueue(&sim.sim);
        let dir = temp_dir(&self.root, prefix);
        let config = sim.write_broker_files(
            dir.path(),
            &sim.config_with_pipes(&dir.path().join("spool"), &sink_pipe(keys)),
        );
        let run = self.run_until(dir.path(), &config, || taken() >= workload.len())?;
        workload.all_taken(taken())?;
        Ok(run.seconds)
    }
}

/// A pipe `Sink` from the four queues with `Max = 1000` (a batch as the benchmarks measure) and
/// the sink's keys `keys` (`To = ...` and the rest, one a line).
fn sink_pipe(keys: &str) -> String {
    format!(
        "[Pipe.Sink]\nFrom = alerts, endpoint_stats, log_authn, log_changes\nMax = 1000\n{keys}\n"
    )
}
