//! Benchmarks of the Pro Custodibus broker (measurement code, not product code).
//!
//! The binaries print figures and ratios measured in one run, so that the noise of a shared
//! machine hits every figure alike:
//!
//! - `drain-bench`: how fast the real broker drains a backlog of the simulator into a file
//!   (end to end, as a child process: [`broker_run`]), next to what bounds it: the simulator
//!   serving the same pulls to a client that discards them (baseline A), and writing the same
//!   lines straight to a file (baseline B); plus the cost of the durable spool against an
//!   in-memory one, in process.
//! - `splunk-bench`, `elasticsearch-bench`, `loki-bench`, `sentinel-bench`: each HTTP SIEM sink
//!   at `Batch = 1000` into its test receiver, end to end ([`broker_run`]: the release broker
//!   drains the simulator into the receiver), against the receiver's own rate ([`post_rate`]:
//!   pre-built bodies POSTed by a plain client), printed by [`report::SinkRates`].
//! - `relp-bench`: the syslog sink over RELP against plain TCP, into one real rsyslogd.
//! - `encode-bench`: the cost of encoding events.
//! - `spool-choice`: the spool's append-only segment files against a small store on redb doing
//!   the same work with the same durability ([`redb_spool`]).
//!
//! Run them with `cargo run --release -p broker-bench --bin NAME`; `--help` lists their
//! options. README.md's "Benchmark" section says what each figure means. This library holds
//! what they share: the workload ([`workload`]), the simulator and broker files ([`sim`]), a
//! minimal API client ([`raw_client`]), process statistics ([`stats`]), argument parsing
//! ([`args`]) and formatting ([`report`]).

pub mod args;
pub mod broker_run;
pub mod post_rate;
pub mod raw_client;
pub mod redb_spool;
pub mod report;
pub mod sim;
pub mod stats;
pub mod workload;

/// Where the benchmarks make their temporary directories: `--dir`, else the system's.
pub fn temp_root(dir: Option<&std::path::Path>) -> std::path::PathBuf {
    dir.map(std::path::Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
}

/// A fresh temporary directory under `root` (deleted on drop).
pub fn temp_dir(root: &std::path::Path, prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(root)
        .unwrap_or_else(|e| {
            panic!(
                "cannot make a temporary directory in {}: {e}",
                root.display()
            )
        })
}
