//! The stock sinks of the Pro Custodibus broker: `file`, `syslog` (UDP, TCP, TLS, unix, RELP),
//! and the SIEM sinks `elasticsearch`, `loki`, `sentinel` and `splunk`.
//!
//! Each sink is a plugin: it registers itself with [`inventory::submit!`] as a
//! [`broker_core::SinkPlugin`], and a pipe's `To` key picks it by name. Building a sink only
//! validates the pipe's settings; files and sockets are opened on the first delivery, so checking
//! a config has no side effects.
//!
//! - [`elasticsearch`]: stores events in Elasticsearch or OpenSearch through `_bulk`, exactly
//!   once ([`ElasticSink`]).
//! - [`file`](mod@file): appends one JSON line per event to a file ([`FileSink`]).
//! - [`loki`]: pushes events to Grafana Loki's push API ([`LokiSink`]).
//! - [`syslog`]: sends one syslog message per event to a UDP or local socket ([`SyslogSink`]).
//! - [`sentinel`]: posts events as rows to the Azure Monitor Logs Ingestion API, the way into
//!   Microsoft Sentinel ([`SentinelSink`]).
//! - [`splunk`]: sends events to a Splunk HTTP Event Collector, with indexer acknowledgement if
//!   asked ([`SplunkSink`]).
//!
//! [`util`] is the toolkit these sinks are built on, public for sinks in other crates:
//! connecting with a time limit, TLS client settings, the stream writer that confirms delivery,
//! the wording of I/O errors, blocking work off the runtime, and the HTTP sink layer.
//!
//! A binary must reference this crate (call [`link`] or write `use broker_sinks as _;`), or the
//! linker may drop it together with its registrations.

#![warn(missing_docs)]

pub mod elasticsearch;
pub mod file;
pub mod loki;
pub mod sentinel;
pub mod splunk;
pub mod syslog;
pub mod util;

pub use elasticsearch::ElasticSink;
pub use file::FileSink;
pub use loki::LokiSink;
pub use sentinel::SentinelSink;
pub use splunk::SplunkSink;
pub use syslog::SyslogSink;

/// The names of the stock sinks, sorted: exactly what a binary that links this crate registers
/// (besides sinks of its own). A new stock sink adds its name here; the tests that check a
/// registry (`--list-sinks`, the unknown-sink error) compare against this list.
pub const STOCK_SINK_NAMES: &[&str] = &[
    "elasticsearch",
    "file",
    "loki",
    "sentinel",
    "splunk",
    "syslog",
];

/// Does nothing: call it or `use broker_sinks as _;` so the linker keeps the registrations.
pub fn link() {}

#[cfg(test)]
mod tests {
    use super::STOCK_SINK_NAMES;

    #[test]
    fn exactly_the_stock_sinks_are_registered() {
        super::link();
        assert_eq!(broker_core::registry::names(), STOCK_SINK_NAMES);
    }

    /// The README's `[Pipe.NAME]` table tells users which sinks `To` takes.
    #[test]
    fn the_readme_names_every_stock_sink_in_the_to_row() {
        let readme = include_str!("../../README.md");
        let row = readme
            .lines()
            .find(|line| line.starts_with("| `To` |"))
            .expect("README.md has the `To` row of the [Pipe.NAME] table");
        for name in STOCK_SINK_NAMES {
            assert!(
                row.contains(&format!("`{name}`")),
                "README.md's `To` row does not name the stock sink {name}: {row}"
            );
        }
    }

    #[test]
    fn the_stock_sink_names_are_sorted_and_distinct() {
        assert!(
            STOCK_SINK_NAMES.windows(2).all(|w| w[0] < w[1]),
            "{STOCK_SINK_NAMES:?}"
        );
    }
}
