//! The `file` sink: appends one JSON line per event to a file (JSON Lines).
//!
//! ```ini
//! [Pipe.MyStats]
//! From = endpoint_stats
//! To = file
//! File = /var/log/procustodibus/broker/stats.jsonl
//! ```
//!
//! The file is opened in append mode (created with mode 0640 when missing) on the first delivery
//! and kept open until [`Sink::reopen`] (log rotation), [`Sink::close`] or a failed write. Before
//! each delivery the sink compares the open file with what is at the path now (device and inode):
//! when the file was moved (logrotate's `mv`) or deleted, or the path now names another file, it
//! closes its handle and opens (or creates) the file at the path, so no event goes to a file that
//! nobody will read. A batch is written as one buffer; when a write fails partway, only the events
//! whose whole line reached the file count as delivered. Should the file end in a partial line
//! (an earlier failed write, a crash), the next write first ends that line, so a retried event
//! always starts a line of its own. A batch written to a regular file is synced to disk
//! (`fdatasync`) before `deliver` returns `Ok`, because the spool reclaims delivered events at
//! once; a failed sync counts no event as delivered, so the retry writes the batch again (at least
//! once). Every failure (missing or unwritable directory, a directory
//! at the path, a full disk) is worth retrying: an operator can fix each of them, and the next
//! delivery opens the path again. Writing runs on tokio's blocking pool, never on the runtime's
//! threads.
//!
//! The parts: [`config`] (the `File` key), [`sink`] (the [`FileSink`] and what a delivery,
//! a reopen and a close do), `open` (opening the path: FIFOs, a partial last line, the messages
//! that name what is wrong) and `write` (a batch's bytes, written counted and synced).

pub mod config;
mod open;
pub mod sink;
#[cfg(test)]
mod tests;
mod write;

use broker_core::config::PipeSettings;
use broker_core::registry::{BuildError, SinkKey};
use broker_core::{Sink, SinkPlugin};

pub use config::FileConfig;
pub use sink::FileSink;

/// The keys of a file pipe, as messages and `--list-sinks` show them.
pub const KEYS: &[SinkKey] = &[SinkKey::one(
    "File",
    "path of the file that gets one JSON line per event (required)",
)];

inventory::submit! {
    SinkPlugin {
        name: "file",
        keys: KEYS,
        build: build_file_sink,
    }
}

/// Builds a [`FileSink`] from a pipe's settings (the registered builder of the `file` sink).
fn build_file_sink(settings: &PipeSettings) -> Result<Box<dyn Sink>, BuildError> {
    Ok(Box::new(FileSink::from_settings(settings)?))
}
