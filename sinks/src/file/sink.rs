//! [`FileSink`]: what a delivery, a reopen and a close do with the file.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use broker_core::config::{ConfigError, PipeSettings};
use broker_core::{Event, Sink, SinkError};

use super::config::FileConfig;
use super::open::{open_for_append, OpenFile};
use super::write::{append_batch, encode_lines};
use crate::util::blocking::run_blocking;
use crate::util::io_error::reason;

/// A sink that appends each event's JSON line, and a newline, to a file.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: Option<OpenFile>,
}

impl FileSink {
    /// A sink that appends to `path`. Nothing is opened until the first delivery.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSink {
            path: path.into(),
            file: None,
        }
    }

    /// Validates a pipe's settings ([`FileConfig`]): `File` must be present and not empty.
    /// No I/O.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        Ok(FileSink::new(FileConfig::from_settings(settings)?.path))
    }

    /// The path of the file this sink appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Sink for FileSink {
    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        let (buffer, ends) = encode_lines(events);
        let path = self.path.clone();
        let file = self.file.take();
        let writing = format!("cannot write {}: writing task", self.path.display());
        match run_blocking(writing, move || append_batch(&path, file, &buffer, &ends)).await? {
            (file, Ok(())) => {
                self.file = file;
                Ok(())
            }
            // After any failure the handle is dropped: the next delivery opens the path again.
            (_, Err(failure)) => Err(SinkError::retry(failure.delivered, failure.message)),
        }
    }

    /// Closes the file and, if it was open, opens the file at the path again (after log
    /// rotation). A sink that has not delivered yet stays closed until its first delivery.
    async fn reopen(&mut self) -> Result<(), SinkError> {
        if self.file.take().is_none() {
            return Ok(());
        }
        let path = self.path.clone();
        let opening = format!("cannot open {}: opening task", self.path.display());
        let open = run_blocking(opening, move || open_for_append(&path))
            .await?
            .map_err(|message| SinkError::retry(0, message))?;
        self.file = Some(open);
        Ok(())
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        let Some(open) = self.file.take() else {
            return Ok(());
        };
        if !open.regular {
            return Ok(());
        }
        let flushing = format!("cannot flush {}: flushing task", self.path.display());
        run_blocking(flushing, move || open.file.sync_data())
            .await?
            .map_err(|e| {
                SinkError::retry(
                    0,
                    format!("cannot flush {}: {}", self.path.display(), reason(&e)),
                )
            })
    }
}
