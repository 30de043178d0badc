//! The stock sinks of the Pro Custodibus broker: `file`, `syslog` and `elasticsearch`.
//!
//! Each sink is a plugin: it registers itself with [`inventory::submit!`] as a
//! [`broker_core::SinkPlugin`], and a pipe's `To` key picks it by name. Building a sink only
//! validates the pipe's settings; files and sockets are opened on the first delivery, so checking
//! a config has no side effects.
//!
//! - [`file`](mod@file): appends one JSON line per event to a file ([`FileSink`]).
//! - [`syslog`]: sends one syslog message per event to a UDP or local socket ([`SyslogSink`]).
//! - [`elasticsearch`]: stores events in Elasticsearch or OpenSearch through `_bulk`, exactly
//!   once ([`ElasticSink`]).
//! - [`util`]: pieces shared by network sinks, in this crate and outside it (the HTTP layer).
//!
//! A binary must reference this crate (call [`link`] or write `use broker_sinks as _;`), or the
//! linker may drop it together with its registrations.

#![warn(missing_docs)]

pub mod elasticsearch;
pub mod file;
pub mod syslog;
pub mod util;

mod os_error;

pub use elasticsearch::ElasticSink;
pub use file::FileSink;
pub use syslog::SyslogSink;

/// Does nothing: call it or `use broker_sinks as _;` so the linker keeps the registrations.
pub fn link() {}

#[cfg(test)]
mod tests {
    #[test]
    fn stock_sinks_are_registered() {
        super::link();
        let names = broker_core::registry::names();
        assert!(names.contains(&"file"), "{names:?}");
        assert!(names.contains(&"syslog"), "{names:?}");
        assert!(names.contains(&"elasticsearch"), "{names:?}");
    }
}
