//! [`PipeSettings`]: a pipe's sink-specific keys, as its sink's builder sees them.

use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::ini::canonical_key;

/// One `Key = value` line of a pipe section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The key as written (`Facility`).
    pub key: String,
    /// The value, trimmed (`true` for a line without `=`).
    pub value: String,
    /// The line number in the config file, from 1.
    pub line: usize,
}

/// The keys of one `[Pipe.NAME]` section other than `From`, `Max` and `To`, with where they came
/// from, so a sink's builder can give errors that name the file, the line, the pipe and the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipeSettings {
    /// The pipe's name as written in the section header (`MyStats` for `[Pipe.MyStats]`).
    pub pipe: String,
    /// The config file the pipe is in.
    pub file: PathBuf,
    /// The line of the section header.
    pub line: usize,
    /// The settings, in file order.
    pub settings: Vec<Setting>,
}

impl PipeSettings {
    /// Settings for a pipe built in code (tests, embedding); `file` is only used in messages.
    pub fn new(pipe: impl Into<String>, file: impl AsRef<Path>, settings: &[(&str, &str)]) -> Self {
        PipeSettings {
            pipe: pipe.into(),
            file: file.as_ref().to_path_buf(),
            line: 0,
            settings: settings
                .iter()
                .map(|(k, v)| Setting {
                    key: (*k).to_string(),
                    value: (*v).to_string(),
                    line: 0,
                })
                .collect(),
        }
    }

    /// The first occurrence of `key` (matched as the config matches keys: `PrivateKey`,
    /// `privatekey` and `private_key` are the same key).
    pub fn get(&self, key: &str) -> Option<&Setting> {
        let want = canonical_key(key);
        self.settings.iter().find(|s| canonical_key(&s.key) == want)
    }

    /// The value of the first occurrence of `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).map(|s| s.value.as_str())
    }

    /// The values of every occurrence of `key`, in file order (for repeatable keys).
    pub fn values<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a str> + 'a {
        let want = canonical_key(key);
        self.settings
            .iter()
            .filter(move |s| canonical_key(&s.key) == want)
            .map(|s| s.value.as_str())
    }

    /// An error about `key` of this pipe: names the file, the line of the key (or of the section
    /// when the key is missing), the pipe and the key.
    pub fn error(&self, key: &str, message: impl std::fmt::Display) -> ConfigError {
        let (line, shown) = match self.get(key) {
            Some(s) => (s.line, s.key.as_str()),
            None => (self.line, key),
        };
        ConfigError::at(
            &self.file,
            line,
            format!("pipe {}: {shown}: {message}", self.pipe),
        )
    }
}
