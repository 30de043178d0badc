//! [`ConfigError`]: one line that names the file, the line and the problem.

use std::fmt;
use std::path::Path;

/// A config, setup or credentials file that cannot be used, with a one-line message naming the
/// file, the line where known, and the problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The whole message.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ConfigError {
    /// An error at `line` of `file` (line 0: the file as a whole).
    pub fn at(file: &Path, line: usize, message: impl fmt::Display) -> Self {
        let message = if line == 0 {
            format!("{}: {message}", file.display())
        } else {
            format!("{} line {line}: {message}", file.display())
        };
        ConfigError { message }
    }

    /// An error about a file as a whole.
    pub fn file(file: &Path, message: impl fmt::Display) -> Self {
        Self::at(file, 0, message)
    }

    /// An error that is not about one file.
    pub fn other(message: impl fmt::Display) -> Self {
        ConfigError {
            message: message.to_string(),
        }
    }
}
