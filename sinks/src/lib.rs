//! The stock sinks of the Pro Custodibus broker: `file` and `syslog`.
//!
//! Each sink is a plugin: it registers itself with [`inventory::submit!`] as a
//! [`broker_core::SinkPlugin`], and a pipe's `To` key picks it by name. Building a sink only
//! validates the pipe's settings; files and sockets are opened on the first delivery, so checking
//! a config has no side effects.
//!
//! - [`file`](mod@file): appends one JSON line per event to a file ([`FileSink`]).
//! - [`syslog`]: sends one syslog message per event to a UDP or local socket ([`SyslogSink`]).
//!
//! [`util`] is the toolkit these sinks are built on, public for sinks in other crates:
//! connecting with a time limit, TLS client settings, the stream writer that confirms delivery,
//! the wording of I/O errors and blocking work off the runtime.
//!
//! A binary must reference this crate (call [`link`] or write `use broker_sinks as _;`), or the
//! linker may drop it together with its registrations.

#![warn(missing_docs)]

pub mod file;
pub mod syslog;
pub mod util;

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
    }
}
