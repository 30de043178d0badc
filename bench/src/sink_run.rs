//! What the benchmarks of the network sinks share (`sentinel-bench` and the like): timing the
//! real broker binary that drains the simulator through one pipe into a receiver, and timing a
//! raw client that posts pre-built bodies straight to that receiver, the receiver's own rate.
//!
//! A sink benchmark starts its vendor receiver (from `broker_tests`), fills the simulator with a
//! [`Workload`], and calls [`broker_to_receiver`] with the pipe's keys and a closure that says
//! how many events the receiver took; [`post_bodies`] gives the baseline from the same run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::sim::BenchSim;
use crate::stats::{has_exited, terminate};
use crate::temp_dir;
use crate::workload::Workload;

/// The text of a `broker.conf` for `sim`: the spool in `spool`, and one pipe `Sink` from the
/// four queues with `Max = max` and the sink keys `keys` (`To = ...` and the rest, one a line).
pub fn config_text(sim: &BenchSim, spool: &Path, max: u32, keys: &str) -> String {
    format!(
        "[Broker]\nBroker = {}\nApi = {}\nSpool = {}\n\n\
         [Pipe.Sink]\nFrom = alerts, endpoint_stats, log_authn, log_changes\nMax = {max}\n{keys}\n",
        crate::sim::BROKER_ID,
        sim.url(),
        spool.display()
    )
}

/// The release broker binary next to the running benchmark (`target/release/`), or `given`.
pub fn broker_binary(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("procustodibus-broker")))
            .unwrap_or_else(|| PathBuf::from("procustodibus-broker"))
    })
}

/// Enqueues `workload` in `sim`, runs `broker --loop 1` with the pipe keys `keys` in a fresh
/// directory under `root`, and returns the seconds from its start until `taken()` reaches the
/// workload's size (then SIGTERM). An error names what went wrong, with the log's last lines.
pub fn broker_to_receiver(
    broker: &Path,
    root: &Path,
    sim: &BenchSim,
    workload: &Workload,
    keys: &str,
    taken: impl Fn() -> usize,
    timeout: Duration,
) -> Result<f64, String> {
    workload.enqueue(&sim.sim);
    let dir = temp_dir(root, "sink-bench-");
    let config = dir.path().join("broker.conf");
    let text = config_text(sim, &dir.path().join("spool"), 1000, keys);
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    sim.credentials
        .write(
            &dir.path().join("broker-credentials.conf"),
            crate::sim::BROKER_ID,
            "bench",
        )
        .map_err(|e| e.to_string())?;
    let log_path = dir.path().join("broker.log");
    let log = File::create(&log_path).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let child = Command::new(broker)
        .arg("--config")
        .arg(&config)
        .args(["--loop", "1"])
        .current_dir(dir.path())
        .env("STATE_DIRECTORY", dir.path().join("state"))
        .env_remove("PROCUSTODIBUS_CONF")
        .env_remove("PROCUSTODIBUS_LOGGING_LEVEL")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", broker.display()))?;
    let pid = child.id();
    let want = workload.len();
    let waited = loop {
        let got = taken();
        if got >= want {
            break Ok(start.elapsed().as_secs_f64());
        }
        if has_exited(pid) {
            break Err(format!(
                "the broker exited with {got} of {want} events taken"
            ));
        }
        if start.elapsed() > timeout {
            break Err(format!(
                "timed out after {} s with {got} of {want} events taken",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let usage = terminate(pid, Duration::from_secs(10), None);
    drop(child);
    let tail = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    };
    let seconds = waited.map_err(|e| format!("{e}; broker log: {}", tail()))?;
    if usage.exit_code != Some(0) {
        return Err(format!(
            "the broker did not exit 0 after SIGTERM ({usage:?}); broker log: {}",
            tail()
        ));
    }
    Ok(seconds)
}

/// Posts each of `bodies` in turn over one connection of `client` to `url` with `headers`, as a
/// sink does, and returns the seconds it took; an answer other than 2xx is an error.
pub async fn post_bodies(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    bodies: &[Vec<u8>],
) -> Result<f64, String> {
    let start = Instant::now();
    for body in bodies {
        let mut request = client.post(url).body(body.clone());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer = request.send().await.map_err(|e| e.to_string())?;
        if !answer.status().is_success() {
            return Err(format!("the receiver answered {}", answer.status()));
        }
        answer.bytes().await.map_err(|e| e.to_string())?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// A client that trusts the CA in the PEM file `ca` (a test receiver's).
pub fn client_trusting(ca: &Path) -> Result<reqwest::Client, String> {
    broker_core::install_crypto_provider();
    let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .add_root_certificate(cert)
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())
}
