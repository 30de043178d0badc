//! The simulator the benchmarks drain, with a broker registered, and the broker's files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use broker_core::api::{ApiClient, ApiSource};
use broker_core::config::{BrokerConfig, Credentials};
use broker_core::EventType;
use broker_sim::{SimOptions, Simulator};

/// The broker id the benchmarks use.
pub const BROKER_ID: &str = "benchbroker1";

/// A simulator on 127.0.0.1 (its own thread and runtime) that knows the bench broker's key.
pub struct BenchSim {
    /// The simulator.
    pub sim: Simulator,
    /// The bench broker's key pair, registered with the simulator.
    pub credentials: Credentials,
}

impl BenchSim {
    /// Starts a simulator on a free port and registers a fresh key for [`BROKER_ID`].
    pub fn start() -> BenchSim {
        let sim = Simulator::start_background(SimOptions::default()).expect("start the simulator");
        sim.add_broker(BROKER_ID, "Bench Broker");
        let credentials = Credentials::generate().expect("generate a key pair");
        sim.add_key(BROKER_ID, credentials.public_key().to_bytes());
        BenchSim { sim, credentials }
    }

    /// The API's base URL.
    pub fn url(&self) -> String {
        self.sim.url()
    }

    /// Events waiting in the four queues.
    pub fn queued(&self) -> usize {
        EventType::ALL
            .into_iter()
            .map(|q| self.sim.queue_len(q.as_str()))
            .sum()
    }

    /// The text of a `broker.conf` for this simulator: the spool in `spool`, and one file pipe
    /// `All` from the four queues with `Max = max` into `output`.
    pub fn config_text(&self, spool: &Path, max: u32, output: &Path) -> String {
        self.config_with_pipes(
            spool,
            &format!(
                "[Pipe.All]\nFrom = alerts, endpoint_stats, log_authn, log_changes\nMax = {max}\n\
                 To = file\nFile = {}\n",
                output.display()
            ),
        )
    }

    /// The text of a `broker.conf` for this simulator with the spool in `spool` and the pipe
    /// sections `pipes` (any sink: a SIEM benchmark gives its own).
    pub fn config_with_pipes(&self, spool: &Path, pipes: &str) -> String {
        format!(
            "[Broker]\nBroker = {BROKER_ID}\nApi = {}\nSpool = {}\n\n{pipes}",
            self.url(),
            spool.display(),
        )
    }

    /// Writes `broker.conf` (see [`BenchSim::config_text`]) and `broker-credentials.conf` in
    /// `dir` and returns the config's path.
    pub fn write_broker_dir(&self, dir: &Path, spool: &Path, max: u32, output: &Path) -> PathBuf {
        self.write_broker_files(dir, &self.config_text(spool, max, output))
    }

    /// Writes `config` as `broker.conf` and the credentials as `broker-credentials.conf` in
    /// `dir`; returns the config's path.
    pub fn write_broker_files(&self, dir: &Path, config: &str) -> PathBuf {
        let path = dir.join("broker.conf");
        std::fs::write(&path, config).expect("write broker.conf");
        self.credentials
            .write(&dir.join("broker-credentials.conf"), BROKER_ID, "bench")
            .expect("write broker-credentials.conf");
        path
    }

    /// The parsed config of [`BenchSim::config_text`] (nothing is written).
    pub fn config(&self, dir: &Path, spool: &Path, max: u32, output: &Path) -> BrokerConfig {
        BrokerConfig::parse(
            &self.config_text(spool, max, output),
            &dir.join("broker.conf"),
        )
        .expect("a valid broker.conf")
    }

    /// The broker's own source of events for this simulator (logs in on the first pull).
    pub fn api_source(&self) -> Arc<ApiSource> {
        let client = ApiClient::new(&self.url(), BROKER_ID, Duration::from_secs(16))
            .expect("an HTTP client");
        Arc::new(ApiSource::new(client, self.credentials.clone()))
    }
}
