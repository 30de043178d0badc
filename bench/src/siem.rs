//! What the benchmarks of the HTTP SIEM sinks (Loki, Splunk HEC, Elasticsearch, Sentinel) share:
//! the receiver's own rate (pre-built bodies POSTed straight to it by a minimal client) and the
//! end-to-end rate (simulator -> the real broker binary -> the sink -> the receiver).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broker_core::{Event, EventType};

use crate::sim::{BenchSim, BROKER_ID};
use crate::stats::{has_exited, terminate};
use crate::workload::Workload;

/// The workload's events as the broker encodes them, queue after queue.
pub fn events(workload: &Workload) -> Vec<Event> {
    workload
        .queues
        .iter()
        .flat_map(|(queue, raws)| {
            raws.iter().map(move |raw| {
                Event::from_json(*queue, raw).expect("the simulator's events are JSON")
            })
        })
        .collect()
}

/// The workload's events cut into batches of `batch` events of one queue each.
pub fn batches(workload: &Workload, batch: usize) -> Vec<(EventType, Vec<Event>)> {
    let mut out = Vec::new();
    for (queue, raws) in &workload.queues {
        let events: Vec<Event> = raws
            .iter()
            .map(|raw| Event::from_json(*queue, raw).expect("JSON"))
            .collect();
        for chunk in events.chunks(batch.max(1)) {
            out.push((*queue, chunk.to_vec()));
        }
    }
    out
}

/// POSTs every body to `url` one after the other (as a sink's pipe does), trusting the CA in
/// `ca`, with `headers`; returns the seconds it took. Every answer must be a 2xx.
pub fn post_bodies(
    url: &str,
    ca: &Path,
    headers: &[(&str, &str)],
    bodies: Vec<Vec<u8>>,
) -> Result<f64, String> {
    broker_core::install_crypto_provider();
    let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .add_root_certificate(cert)
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let start = Instant::now();
        for body in bodies {
            let mut request = client.post(url).body(body);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let answer = request.send().await.map_err(|e| e.to_string())?;
            if !answer.status().is_success() {
                return Err(format!("the receiver answered {}", answer.status()));
            }
            let _ = answer.bytes().await;
        }
        Ok(start.elapsed().as_secs_f64())
    })
}

/// Writes a broker's files in `dir` for `sim`: the spool in `dir/spool`, then `pipe` (a whole
/// `[Pipe.X]` section); returns the config's path.
pub fn write_broker(sim: &BenchSim, dir: &Path, pipe: &str) -> PathBuf {
    let config = dir.join("broker.conf");
    let text = format!(
        "[Broker]\nBroker = {BROKER_ID}\nApi = {}\nSpool = {}\n\n{pipe}\n",
        sim.url(),
        dir.join("spool").display()
    );
    std::fs::write(&config, text).expect("write broker.conf");
    sim.credentials
        .write(&dir.join("broker-credentials.conf"), BROKER_ID, "bench")
        .expect("write broker-credentials.conf");
    config
}

/// Runs `broker` with `--loop 1` on `config` until `arrived()` reaches `events` (or `timeout`),
/// then stops it; returns the seconds from the start to the last arrival.
pub fn run_broker_until(
    broker: &Path,
    config: &Path,
    events: usize,
    timeout: Duration,
    arrived: impl Fn() -> usize,
) -> Result<f64, String> {
    let dir = config.parent().unwrap_or(Path::new("."));
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
    let result = loop {
        let n = arrived();
        if n >= events {
            break Ok(start.elapsed().as_secs_f64());
        }
        if has_exited(pid) {
            break Err("the broker exited before every event arrived".to_string());
        }
        if start.elapsed() > timeout {
            break Err(format!("timed out with {n} of {events} events arrived"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    terminate(pid, Duration::from_secs(10), None);
    drop(child);
    result.map_err(|e| {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        format!("{e}; broker log: {}", tail.join(" | "))
    })
}
