//! The keys of the `[Broker]` section, one function per key group: the broker id, the API and
//! its timeout, the companion files, the spool, status and metrics, and the Python `Logging` key
//! this broker does not read.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{repeat_warning, DEFAULT_API, DEFAULT_TIMEOUT_SECS};
use crate::config::ini::IniEntry;
use crate::config::keys::{camel_case, canonical_key, parse_size};
use crate::config::readers::parse_seconds;
use crate::config::search::companion_path;
use crate::config::secret::shown_key;
use crate::config::ConfigError;

/// The keys of `[Broker]`, as `camel_case` shows them (`spool_max` -> `SpoolMax`) and, without
/// the underscores, as `canonical_key` compares them.
const BROKER_KEYS: [&str; 10] = [
    "broker",
    "api",
    "credentials",
    "setup",
    "timeout",
    "logging",
    "spool",
    "spool_max",
    "status_grace",
    "metrics",
];

/// The `[Broker]` lines of a file (all `[Broker]` sections together), the first of each known
/// key kept.
pub(super) struct BrokerKeys<'a> {
    path: &'a Path,
    /// The line of the (last) `[Broker]` header, for a missing key.
    line: usize,
    /// Each known key present, canonical, with its first line.
    first: Vec<(String, &'a IniEntry)>,
}

impl<'a> BrokerKeys<'a> {
    /// Keeps the first line of each known key of `entries`; warns of unknown and repeated keys.
    pub(super) fn collect(
        entries: Vec<&'a IniEntry>,
        line: usize,
        path: &'a Path,
        warnings: &mut Vec<String>,
    ) -> Self {
        let mut first: Vec<(String, &IniEntry)> = Vec::new();
        for entry in entries {
            let key = canonical_key(&entry.key);
            if !BROKER_KEYS.iter().any(|k| canonical_key(k) == key) {
                warnings.push(format!(
                    "{} line {}: ignoring unknown key {} in [Broker] (known: {})",
                    path.display(),
                    entry.line,
                    shown_key(&entry.key),
                    BROKER_KEYS.map(camel_case).join(", ")
                ));
            } else if let Some((_, kept)) = first.iter().find(|(k, _)| *k == key) {
                warnings.push(repeat_warning(path, entry, kept.line));
            } else {
                first.push((key, entry));
            }
        }
        BrokerKeys { path, line, first }
    }

    /// The line of `key` (canonical), if present.
    fn get(&self, key: &str) -> Option<&'a IniEntry> {
        self.first.iter().find(|(k, _)| k == key).map(|(_, e)| *e)
    }

    /// An error at `entry`'s line.
    fn error(&self, entry: &IniEntry, message: impl std::fmt::Display) -> ConfigError {
        ConfigError::at(self.path, entry.line, message)
    }

    /// `Broker`: the broker id, required, of A-Z a-z 0-9 _ -.
    pub(super) fn broker_id(&self) -> Result<String, ConfigError> {
        let entry = self
            .get("broker")
            .filter(|e| !e.value.is_empty() && e.value != "true")
            .ok_or_else(|| {
                ConfigError::at(
                    self.path,
                    self.line,
                    "missing Broker id: add `Broker = <id>` to the [Broker] section (the id is on the broker's setup page)",
                )
            })?;
        let broker = &entry.value;
        if !broker
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.error(
                entry,
                format!("Broker id {broker:?} has characters other than A-Z a-z 0-9 _ -"),
            ));
        }
        Ok(broker.clone())
    }

    /// `Api`: the API base URL without a trailing slash; https://, or http:// to a loopback
    /// address only.
    pub(super) fn api(&self) -> Result<String, ConfigError> {
        let Some(e) = self.get("api") else {
            return Ok(DEFAULT_API.to_string());
        };
        let url = e.value.trim_end_matches('/').to_string();
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 9 {
            return Err(self.error(
                e,
                format!("Api {:?} is not an http:// or https:// URL", e.value),
            ));
        }
        if url.starts_with("http://") && !crate::loopback::is_loopback_url(&url) {
            return Err(self.error(
                e,
                "Api: http:// would send the session token, the signed challenge and the setup code in clear text; use https:// (http:// is only for a loopback address such as 127.0.0.1, ::1 or localhost)",
            ));
        }
        Ok(url)
    }

    /// `Timeout`: seconds per API request, above 0 and at most a day.
    pub(super) fn timeout(&self) -> Result<Duration, ConfigError> {
        let Some(e) = self.get("timeout") else {
            return Ok(Duration::from_secs(DEFAULT_TIMEOUT_SECS));
        };
        parse_seconds(&e.value)
            .filter(|d| !d.is_zero() && *d <= Duration::from_secs(86_400))
            .ok_or_else(|| {
                self.error(
                    e,
                    format!("Timeout {:?} is not a number of seconds above 0", e.value),
                )
            })
    }

    /// `Credentials` and `Setup`: the companion files, by default beside the config
    /// (`broker-credentials.conf`, `broker-setup.conf`).
    pub(super) fn companion_paths(&self) -> (PathBuf, PathBuf) {
        let companion = |key: &str, suffix: &str| {
            self.get(key)
                .map(|e| PathBuf::from(&e.value))
                .unwrap_or_else(|| companion_path(self.path, suffix))
        };
        (
            companion("credentials", "-credentials"),
            companion("setup", "-setup"),
        )
    }

    /// `Spool` (a directory, not empty) and `SpoolMax` (a size of at least 4K).
    pub(super) fn spool(&self) -> Result<(Option<PathBuf>, u64), ConfigError> {
        let spool = match self.get("spool") {
            Some(e) if e.value.is_empty() => {
                return Err(self.error(e, "Spool is empty: name a directory"))
            }
            Some(e) => Some(PathBuf::from(&e.value)),
            None => None,
        };
        let spool_max = match self.get("spoolmax") {
            Some(e) => parse_size(&e.value).ok_or_else(|| {
                self.error(
                    e,
                    format!(
                        "SpoolMax {:?} is not a size in bytes (a whole number with an optional K, M or G suffix, at least 4K)",
                        e.value
                    ),
                )
            })?,
            None => crate::spool::DEFAULT_MAX_BYTES,
        };
        Ok((spool, spool_max))
    }

    /// `StatusGrace`: whole seconds a pipe may fail before `--status` calls the broker unhealthy.
    pub(super) fn status_grace(&self) -> Result<u64, ConfigError> {
        let Some(e) = self.get("statusgrace") else {
            return Ok(crate::status::DEFAULT_GRACE_SECS);
        };
        parse_seconds(&e.value)
            .filter(|d| d.subsec_nanos() == 0)
            .map(|d| d.as_secs())
            .ok_or_else(|| {
                self.error(
                    e,
                    format!(
                        "StatusGrace {:?} is not a whole number of seconds (0 or more)",
                        e.value
                    ),
                )
            })
    }

    /// `Metrics`: the address and port of the metrics and health endpoints, if any.
    pub(super) fn metrics(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(e) = self.get("metrics") else {
            return Ok(None);
        };
        e.value.parse::<SocketAddr>().map(Some).map_err(|_| {
            self.error(
                e,
                format!(
                    "Metrics {:?} is not an address and port (127.0.0.1:9090 or [::1]:9090)",
                    e.value
                ),
            )
        })
    }

    /// `Logging`, or a `broker-logging.conf` beside the config: a Python logging config, which
    /// this broker does not read; a warning says what to use instead.
    pub(super) fn logging_warning(&self, warnings: &mut Vec<String>) {
        let logging_file = companion_path(self.path, "-logging");
        if let Some(e) = self.get("logging") {
            warnings.push(format!(
                "{} line {}: Logging = {} is a Python logging config, which this broker does not read; use -v, -vv or --verbosity",
                self.path.display(),
                e.line,
                e.value
            ));
        } else if logging_file.is_file() {
            warnings.push(format!(
                "{}: this broker does not read Python logging configs; use -v, -vv or --verbosity",
                logging_file.display()
            ));
        }
    }
}
