//! Benchmarks of the Pro Custodibus broker (measurement code, not product code).
//!
//! Two binaries print figures and ratios measured in one run, so that the noise of a shared
//! machine hits every figure alike:
//!
//! - `drain-bench`: how fast the real broker drains a backlog of the simulator into a file
//!   (end to end, as a child process), next to what bounds it: the simulator serving the same
//!   pulls to a client that discards them (baseline A), and writing the same lines straight to a
//!   file (baseline B); plus the cost of the durable spool against an in-memory one, in process.
//! - `sentinel-bench`: the `sentinel` sink into its test receiver, end to end, against the
//!   receiver's own rate ([`sink_run`]: what the benchmarks of network sinks share).
//! - `splunk-bench`: the `splunk` sink at `Batch = 1000` into the test HEC receiver, end to
//!   end, against the receiver's own rate.
//! - `spool-choice`: the spool's append-only segment files against a small store on redb doing
//!   the same work with the same durability ([`redb_spool`]).
//!
//! - `loki-bench`: the `loki` sink end to end against a Loki receiver, as a ratio to the
//!   receiver's own rate ([`siem`] holds what the SIEM sink benchmarks share).
//!
//! Run them with `cargo run --release -p broker-bench --bin drain-bench` (or `--bin
//! spool-choice`); `--help` lists their options. README.md's "Benchmark" section says what each
//! figure means. This library holds what both share: the workload ([`workload`]), the simulator
//! and broker files ([`sim`]), a minimal API client ([`raw_client`]), process statistics
//! ([`stats`]) and formatting ([`report`]); for the SIEM sink benchmarks (`splunk-bench`), a
//! receiver's own rate ([`post_rate`]) and a timed broker run until its receiver has every
//! event ([`broker_run`]).

pub mod args;
pub mod broker_run;
pub mod post_rate;
pub mod raw_client;
pub mod redb_spool;
pub mod report;
pub mod siem;
pub mod sim;
pub mod sink_run;
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
