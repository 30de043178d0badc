//! The end-to-end half of the sink benchmarks (`splunk-bench`, `elasticsearch-bench`,
//! `loki-bench`, `sentinel-bench`): the release broker binary drains the simulator through one
//! pipe into a receiver, as a `--loop` daemon in a directory of its own, timed until the receiver
//! holds every event.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::sim::BenchSim;
use crate::stats::{has_exited, terminate};

/// The release broker: `given` (`--broker PATH`), else `procustodibus-broker` next to the
/// running benchmark (`target/release/`). Exits 2 with the command that builds it when it is
/// missing.
pub fn release_broker(given: Option<PathBuf>) -> PathBuf {
    let broker = given.unwrap_or_else(|| {
        std::env::current_exe()
            .expect("the benchmark's own path")
            .with_file_name("procustodibus-broker")
    });
    if !broker.is_file() {
        eprintln!(
            "{} is missing: cargo build --release -p broker-cli (or give --broker)",
            broker.display()
        );
        std::process::exit(2);
    }
    broker
}

/// A pipe `Sink` from the four queues with `Max = 1000` (a batch as the benchmarks measure) and
/// the sink's keys `keys` (`To = ...` and the rest, one a line).
pub fn sink_pipe(keys: &str) -> String {
    format!(
        "[Pipe.Sink]\nFrom = alerts, endpoint_stats, log_authn, log_changes\nMax = 1000\n{keys}\n"
    )
}

/// Writes the broker's files for `sim` in `dir` (the spool in `dir/spool`, the one `pipe`) and
/// returns the config's path.
pub fn write_broker(sim: &BenchSim, dir: &Path, pipe: &str) -> PathBuf {
    sim.write_broker_files(dir, &sim.config_with_pipes(&dir.join("spool"), pipe))
}

/// Starts `broker --config CONFIG --loop 1` in `dir` (its output in `dir/broker.log`), polls
/// `arrived` every 2 ms until it says true, then stops the broker with SIGTERM. Returns the
/// seconds from the start to the moment `arrived` held; an error (with the log's last lines)
/// when the broker exits first, `timeout` passes or the broker does not exit 0.
pub fn run_until(
    broker: &Path,
    dir: &Path,
    config: &Path,
    timeout: Duration,
    mut arrived: impl FnMut() -> bool,
) -> Result<f64, String> {
    let log_path = dir.join("broker.log");
    let log = File::create(&log_path).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let child = Command::new(broker)
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
        .map_err(|e| format!("cannot start {}: {e}", broker.display()))?;
    let pid = child.id();
    let waited = loop {
        if arrived() {
            break Ok(start.elapsed().as_secs_f64());
        }
        if has_exited(pid) {
            break Err("the broker exited before every event arrived".to_string());
        }
        if start.elapsed() > timeout {
            break Err(format!("timed out after {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let usage = terminate(pid, Duration::from_secs(10), None);
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
    Ok(seconds)
}
