//! `broker.conf`: the broker id, the API, the companion files and the pipes.
//!
//! [`BrokerConfig::parse`] sorts the file's sections; `broker_keys` reads the `[Broker]` keys,
//! one function per key group; `pipe` reads each `[Pipe.NAME]`, and `sink_keys` checks a
//! pipe's keys against the keys its sink declared (the unknown-key error).

mod broker_keys;
mod pipe;
mod sink_keys;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;

use self::broker_keys::BrokerKeys;
use self::pipe::parse_pipe;
use super::credentials::Credentials;
use super::error::ConfigError;
use super::ini::{parse_ini, parse_secret_ini, IniEntry, IniSection};
use super::keys::canonical_key;
pub use super::keys::{camel_case, parse_size};
use super::secret::{shown_key, CREDENTIALS_FORM, SETUP_FORM};
use super::settings::PipeSettings;
use super::setup::SetupConfig;
use crate::event::EventType;

/// The default API base URL.
pub const DEFAULT_API: &str = "https://api.custodib.us";
/// The default per-request timeout, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 16;
/// The spool directory when neither `Spool =` nor `$STATE_DIRECTORY` names one.
pub const DEFAULT_SPOOL_DIR: &str = "/var/lib/procustodibus/broker";
/// The default `Max` of a pipe.
pub const DEFAULT_MAX: u32 = 100;

/// A loaded and validated `broker.conf`.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Where it was read from.
    pub path: PathBuf,
    /// The broker id (`Broker =`).
    pub broker: String,
    /// The API base URL, without a trailing slash.
    pub api: String,
    /// Where the credentials file is (or will be written).
    pub credentials_path: PathBuf,
    /// Where the setup file is looked for.
    pub setup_path: PathBuf,
    /// Connect and total timeout of every API request.
    pub timeout: Duration,
    /// A `[Broker.Credentials]` table inside broker.conf itself.
    pub inline_credentials: Option<Credentials>,
    /// A `[Broker.Setup]` table inside broker.conf itself.
    pub inline_setup: Option<SetupConfig>,
    /// The spool directory named by `Spool =`, if any (see [`BrokerConfig::spool_dir`]).
    pub spool: Option<PathBuf>,
    /// The bound on the spool's size in bytes (`SpoolMax =`).
    pub spool_max: u64,
    /// How long, in seconds, a pipe may fail before `--status` calls the broker unhealthy
    /// (`StatusGrace =`).
    pub status_grace: u64,
    /// Where the metrics and health endpoints listen (`Metrics = ADDR:PORT`); none without it.
    pub metrics: Option<SocketAddr>,
    /// The pipes, in file order.
    pub pipes: Vec<PipeConfig>,
    /// Things worth a warning in the log once logging is set up (each names file and line).
    pub warnings: Vec<String>,
}

/// One `[Pipe.NAME]` section.
#[derive(Clone, Debug)]
pub struct PipeConfig {
    /// The name as written (`MyStats`).
    pub name: String,
    /// The event types it receives, in `From` order, without repeats.
    pub from: Vec<EventType>,
    /// Events pulled per request.
    pub max: u32,
    /// The sink's name, as registered (`file`).
    pub to: String,
    /// The sink-specific keys.
    pub settings: PipeSettings,
}

impl PipeConfig {
    /// A pipe made in code (tests, embedding) that receives `from` in batches of [`DEFAULT_MAX`]
    /// and hands them to a sink called `to`, with no sink-specific keys; see
    /// [`crate::pipeline::Pipeline::with_sinks`].
    pub fn new(name: &str, from: &[EventType], to: &str) -> Self {
        PipeConfig {
            name: name.to_string(),
            from: from.to_vec(),
            max: DEFAULT_MAX,
            to: to.to_string(),
            settings: PipeSettings::new(name, "(in code)", &[]),
        }
    }
}

impl BrokerConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_text(path)?;
        Self::parse(&text, path)
    }

    /// Validates the text of a `broker.conf` that lives at `path` (used for messages and for the
    /// default companion paths).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let sections = parse_ini(text, path)?;
        let mut warnings = Vec::new();
        let mut broker_entries: Vec<&IniEntry> = Vec::new();
        let mut broker_line = 0;
        let mut inline_credentials = None;
        let mut inline_setup = None;
        let mut pipes: Vec<PipeConfig> = Vec::new();
        for section in &sections {
            match Table::of(section) {
                Table::Broker => {
                    broker_line = section.line;
                    broker_entries.extend(&section.entries);
                }
                Table::Credentials => {
                    inline_credentials = Some(Credentials::from_section(section, path)?)
                }
                Table::Setup => {
                    inline_setup = Some(SetupConfig::from_section(section, path, Utc::now())?)
                }
                Table::Pipe(name) => {
                    let pipe = parse_pipe(section, name, path, &mut warnings)?;
                    add_pipe(&mut pipes, pipe, section, path)?;
                }
                Table::Unknown => warnings.push(format!(
                    "{} line {}: ignoring unknown section [{}]",
                    path.display(),
                    section.line,
                    section.name
                )),
            }
        }

        let keys = BrokerKeys::collect(broker_entries, broker_line, path, &mut warnings);
        let broker = keys.broker_id()?;
        let api = keys.api()?;
        let timeout = keys.timeout()?;
        let (credentials_path, setup_path) = keys.companion_paths();
        let (spool, spool_max) = keys.spool()?;
        let status_grace = keys.status_grace()?;
        let metrics = keys.metrics()?;
        keys.logging_warning(&mut warnings);
        Ok(BrokerConfig {
            path: path.to_path_buf(),
            broker,
            api,
            credentials_path,
            setup_path,
            timeout,
            inline_credentials,
            inline_setup,
            spool,
            spool_max,
            status_grace,
            metrics,
            pipes,
            warnings,
        })
    }

    /// The spool directory: `Spool =`, else `state_directory` (systemd's `$STATE_DIRECTORY`;
    /// the first path when it lists several), else [`DEFAULT_SPOOL_DIR`].
    pub fn spool_dir(&self, state_directory: Option<&str>) -> PathBuf {
        if let Some(dir) = &self.spool {
            return dir.clone();
        }
        match state_directory.and_then(|s| s.split(':').find(|p| !p.is_empty())) {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(DEFAULT_SPOOL_DIR),
        }
    }

    /// The pipe of this name, compared ignoring case.
    pub fn pipe(&self, name: &str) -> Option<&PipeConfig> {
        self.pipes
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
    }

    /// The setup file's `[Broker.Setup]` table, if the setup file exists (else the inline one).
    pub fn load_setup(&self) -> Result<Option<SetupConfig>, ConfigError> {
        if self.setup_path.exists() {
            let text = read_text(&self.setup_path)?;
            let sections = parse_secret_ini(&text, &self.setup_path, SETUP_FORM)?;
            let section = find_table(&sections, "setup").ok_or_else(|| {
                ConfigError::file(&self.setup_path, "no [Broker.Setup] section with a Code")
            })?;
            return SetupConfig::from_section(section, &self.setup_path, Utc::now()).map(Some);
        }
        Ok(self.inline_setup.clone())
    }

    /// The credentials file's key pair, if the file exists (else the inline one).
    pub fn load_credentials(&self) -> Result<Option<Credentials>, ConfigError> {
        if self.credentials_path.exists() {
            let text = read_text(&self.credentials_path)?;
            let sections = parse_secret_ini(&text, &self.credentials_path, CREDENTIALS_FORM)?;
            let section = find_table(&sections, "credentials").ok_or_else(|| {
                ConfigError::file(
                    &self.credentials_path,
                    "no [Broker.Credentials] section with a PrivateKey",
                )
            })?;
            return Credentials::from_section(section, &self.credentials_path).map(Some);
        }
        Ok(self.inline_credentials.clone())
    }
}

/// Reads a config file as text, with a one-line error naming it.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    if path.is_dir() {
        return Err(ConfigError::file(path, "is a directory, not a file"));
    }
    let bytes =
        std::fs::read(path).map_err(|e| ConfigError::file(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|_| ConfigError::file(path, "is not UTF-8 text"))
}

/// The last `[Broker.NAME]` section of a file.
fn find_table<'a>(sections: &'a [IniSection], name: &str) -> Option<&'a IniSection> {
    sections.iter().rev().find(|s| {
        s.name
            .split_once('.')
            .is_some_and(|(h, r)| canonical_key(h) == "broker" && canonical_key(r) == name)
    })
}

/// What a section of `broker.conf` is, by its name (compared as keys are).
enum Table<'a> {
    /// `[Broker]` (several are read as one).
    Broker,
    /// `[Broker.Credentials]`: the key pair inline.
    Credentials,
    /// `[Broker.Setup]`: the setup code inline.
    Setup,
    /// `[Pipe.NAME]`, with NAME as written.
    Pipe(&'a str),
    /// Anything else (a warning).
    Unknown,
}

impl<'a> Table<'a> {
    /// The table `section` is.
    fn of(section: &'a IniSection) -> Self {
        let (head, rest) = match section.name.split_once('.') {
            Some((h, r)) => (canonical_key(h), Some(r.trim())),
            None => (canonical_key(&section.name), None),
        };
        match (head.as_str(), rest.map(canonical_key).as_deref()) {
            ("broker", None) => Table::Broker,
            ("broker", Some("credentials")) => Table::Credentials,
            ("broker", Some("setup")) => Table::Setup,
            ("pipe", Some(_)) => Table::Pipe(rest.unwrap_or_default()),
            _ => Table::Unknown,
        }
    }
}

/// Adds `pipe` to `pipes`, refusing a second pipe of the same name (ignoring case).
fn add_pipe(
    pipes: &mut Vec<PipeConfig>,
    pipe: PipeConfig,
    section: &IniSection,
    path: &Path,
) -> Result<(), ConfigError> {
    let name = pipe.name.to_ascii_lowercase();
    if pipes.iter().any(|p| p.name.to_ascii_lowercase() == name) {
        return Err(ConfigError::at(
            path,
            section.line,
            format!(
                "duplicate pipe {} (pipe names are compared ignoring case)",
                pipe.name
            ),
        ));
    }
    pipes.push(pipe);
    Ok(())
}

/// The warning for a key given twice where only the first counts.
fn repeat_warning(path: &Path, entry: &IniEntry, first_line: usize) -> String {
    format!(
        "{} line {}: ignoring repeated {} (line {} counts)",
        path.display(),
        entry.line,
        shown_key(&entry.key),
        first_line
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_dir_comes_from_the_config_then_systemd_then_the_default() {
        let parse = |text: &str| BrokerConfig::parse(text, Path::new("b.conf")).unwrap();
        let c = parse("[Broker]\nBroker = b\nSpool = /x/spool\nSpoolMax = 1M\n");
        assert_eq!(c.spool_dir(Some("/state")), PathBuf::from("/x/spool"));
        assert_eq!(c.spool_max, 1 << 20);
        let c = parse("[Broker]\nBroker = b\n");
        assert_eq!(c.spool_dir(Some("/a:/b")), PathBuf::from("/a"));
        assert_eq!(c.spool_dir(None), PathBuf::from(DEFAULT_SPOOL_DIR));
        assert_eq!(c.spool_max, crate::spool::DEFAULT_MAX_BYTES);
        let e = BrokerConfig::parse(
            "[Broker]\nBroker = b\nSpoolMax = lots\n",
            Path::new("b.conf"),
        );
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("line 3: SpoolMax \"lots\""));
    }

    #[test]
    fn metrics_is_an_address_and_port() {
        let parse = |text: &str| BrokerConfig::parse(text, Path::new("b.conf"));
        let c = parse("[Broker]\nBroker = b\n").unwrap();
        assert_eq!(c.metrics, None);
        let c = parse("[Broker]\nBroker = b\nMetrics = 127.0.0.1:9464\n").unwrap();
        assert_eq!(c.metrics, Some("127.0.0.1:9464".parse().unwrap()));
        let c = parse("[Broker]\nBroker = b\nMetrics = [::1]:9464\n").unwrap();
        assert_eq!(c.metrics, Some("[::1]:9464".parse().unwrap()));
        for bad in ["", "9464", "localhost:9464", "127.0.0.1", "127.0.0.1:99999"] {
            let e = parse(&format!("[Broker]\nBroker = b\nMetrics = {bad}\n")).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("b.conf line 3: Metrics {bad:?} is not an address and port (127.0.0.1:9090 or [::1]:9090)")
            );
        }
    }

    #[test]
    fn status_grace_is_a_whole_number_of_seconds() {
        let parse = |text: &str| BrokerConfig::parse(text, Path::new("b.conf"));
        let c = parse("[Broker]\nBroker = b\n").unwrap();
        assert_eq!(c.status_grace, 300);
        let c = parse("[Broker]\nBroker = b\nStatusGrace = 0\n").unwrap();
        assert_eq!(c.status_grace, 0);
        for bad in ["-1", "1.5", "soon", ""] {
            let e = parse(&format!("[Broker]\nBroker = b\nStatusGrace = {bad}\n")).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("b.conf line 3: StatusGrace {bad:?} is not a whole number of seconds (0 or more)")
            );
        }
    }

    #[test]
    fn the_unknown_key_warning_lists_every_key() {
        let c = BrokerConfig::parse(
            "[Broker]\nBroker = b\nSpool_Max = 1M\nToken s3cret\n",
            Path::new("b.conf"),
        )
        .unwrap();
        assert_eq!(c.spool_max, 1 << 20);
        assert_eq!(
            c.warnings,
            vec!["b.conf line 4: ignoring unknown key Token... in [Broker] (known: Broker, Api, Credentials, Setup, Timeout, Logging, Spool, SpoolMax, StatusGrace, Metrics)"]
        );
    }

    #[test]
    fn http_only_for_loopback() {
        let api = |url: &str| {
            BrokerConfig::parse(
                &format!("[Broker]\nBroker = b\nApi = {url}\n"),
                Path::new("b.conf"),
            )
        };
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.9.8.7/api/",
            "http://[::1]:80",
            "http://localhost:1234",
            "http://LocalHost",
            "https://api.example.com",
        ] {
            assert!(api(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.custodib.us",
            "http://10.0.0.1:80",
            "http://[::2]:80",
            "http://localhost.example.com",
            "http://127.0.0.1.example.com",
            "http://127.0.0.1@evil.example.com",
            "http://0.0.0.0",
        ] {
            let e = api(bad).unwrap_err().to_string();
            assert!(e.starts_with("b.conf line 3: Api: http://"), "{bad}: {e}");
            assert!(e.contains("use https://"), "{e}");
        }
    }
}
