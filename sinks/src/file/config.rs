//! A file pipe's settings, read and checked from its `[Pipe.NAME]` keys without any I/O.
//!
//! | key | default |
//! | --- | --- |
//! | `File` | (required) the path of the file to append to |

use std::path::PathBuf;

use broker_core::config::{ConfigError, PipeSettings};

/// A file pipe's checked settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileConfig {
    /// `File`: the path of the file to append to.
    pub path: PathBuf,
}

impl FileConfig {
    /// Reads and checks a pipe's keys: `File` must be present and not empty. No I/O.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        let keys = settings.keys(super::KEYS);
        let path = keys.path("File", "the file to append to")?.ok_or_else(|| {
            keys.error(
                "File",
                "missing: the file sink needs File = PATH of the file to append to",
            )
        })?;
        Ok(FileConfig { path })
    }
}
