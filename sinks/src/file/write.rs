//! Writing a batch: every event's line in one buffer, written counted (only whole lines count as
//! delivered) and synced to disk before the batch counts as delivered.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use broker_core::Event;

use super::open::{open_for_append, OpenFile};
use crate::util::io_error::reason;

/// Why a batch could not be written in full.
pub(super) struct WriteFailure {
    /// How many events of the batch reached the file whole.
    pub(super) delivered: usize,
    /// The one-line message.
    pub(super) message: String,
}

/// Every event's line plus a newline in one buffer, and the offset just past each line.
pub(super) fn encode_lines(events: &[Event]) -> (Vec<u8>, Vec<usize>) {
    let size = events.iter().map(|e| e.line().len() + 1).sum();
    let mut buffer = Vec::with_capacity(size);
    let mut ends = Vec::with_capacity(events.len());
    for event in events {
        buffer.extend_from_slice(event.line().as_bytes());
        buffer.push(b'\n');
        ends.push(buffer.len());
    }
    (buffer, ends)
}

/// Opens the file if needed (or if the open one is no longer at the path) and appends the whole
/// buffer (blocking: runs on the blocking pool). Gives back the open file on success.
pub(super) fn append_batch(
    path: &Path,
    file: Option<OpenFile>,
    buffer: &[u8],
    ends: &[usize],
) -> (Option<OpenFile>, Result<(), WriteFailure>) {
    let file = file.filter(|open| {
        let here = open.is_at(path);
        if !here {
            tracing::info!(
                "file {} was moved or deleted: opening a new one at that path",
                path.display()
            );
        }
        here
    });
    let mut open = match file {
        Some(open) => open,
        None => match open_for_append(path) {
            Ok(open) => open,
            Err(message) => return nothing_delivered(message),
        },
    };
    let (written, result) = write_all_counted(&mut open.file, buffer);
    match result {
        Ok(()) => match sync_if_regular(&open) {
            Ok(()) => (Some(open), Ok(())),
            // The lines reached the page cache but maybe not the disk: none counts as delivered,
            // so the spool keeps them and the retry writes them again (at least once).
            Err(e) => nothing_delivered(format!("cannot sync {}: {}", path.display(), reason(&e))),
        },
        Err(e) => {
            let delivered = ends.iter().take_while(|end| **end <= written).count();
            let message = format!("cannot write {}: {}", path.display(), reason(&e));
            (None, Err(WriteFailure { delivered, message }))
        }
    }
}

/// [`append_batch`]'s answer when none of the batch counts as delivered: no file kept open (the
/// retry opens the path again) and the failure `message`.
fn nothing_delivered(message: String) -> (Option<OpenFile>, Result<(), WriteFailure>) {
    (
        None,
        Err(WriteFailure {
            delivered: 0,
            message,
        }),
    )
}

/// Makes what was written to a regular file durable (`fdatasync`), so that `Ok` means on disk
/// and the spool may reclaim the events. Pipes and character devices have no disk to sync.
fn sync_if_regular(open: &OpenFile) -> io::Result<()> {
    if open.regular {
        open.file.sync_data()
    } else {
        Ok(())
    }
}

/// Writes the whole buffer, in as few calls as the OS allows, and says how many bytes made it.
pub(super) fn write_all_counted(file: &mut File, buffer: &[u8]) -> (usize, io::Result<()>) {
    let mut written = 0;
    while written < buffer.len() {
        match file.write(&buffer[written..]) {
            Ok(0) => {
                let e = io::Error::new(io::ErrorKind::WriteZero, "the file accepted no more bytes");
                return (written, Err(e));
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Err(e)),
        }
    }
    (written, Ok(()))
}
