//! `broker.conf`: the broker id, the API, the companion files and the pipes.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;

use super::credentials::Credentials;
use super::error::ConfigError;
use super::ini::{canonical_key, parse_ini, parse_secret_ini, IniEntry, IniSection};
use super::readers::{self, parse_seconds};
use super::search::companion_path;
use super::secret::{shown_key, CREDENTIALS_FORM, SETUP_FORM};
use super::settings::{PipeSettings, Setting};
use super::setup::SetupConfig;
use crate::event::EventType;
use crate::registry;

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
        let mut seen_pipes: HashSet<String> = HashSet::new();

        for section in &sections {
            let (head, rest) = match section.name.split_once('.') {
                Some((h, r)) => (canonical_key(h), Some(r.trim())),
                None => (canonical_key(&section.name), None),
            };
            match (head.as_str(), rest.map(canonical_key).as_deref()) {
                ("broker", None) => {
                    broker_line = section.line;
                    broker_entries.extend(&section.entries);
                }
                ("broker", Some("credentials")) => {
                    inline_credentials = Some(Credentials::from_section(section, path)?)
                }
                ("broker", Some("setup")) => {
                    inline_setup = Some(SetupConfig::from_section(section, path, Utc::now())?)
                }
                ("pipe", Some(_)) => {
                    let pipe = parse_pipe(section, rest.unwrap_or_default(), path, &mut warnings)?;
                    if !seen_pipes.insert(pipe.name.to_ascii_lowercase()) {
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
                }
                _ => warnings.push(format!(
                    "{} line {}: ignoring unknown section [{}]",
                    path.display(),
                    section.line,
                    section.name
                )),
            }
        }

        let mut first: Vec<(String, &IniEntry)> = Vec::new();
        for entry in broker_entries {
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
                warnings.push(format!(
                    "{} line {}: ignoring repeated {} (line {} counts)",
                    path.display(),
                    entry.line,
                    shown_key(&entry.key),
                    kept.line
                ));
            } else {
                first.push((key, entry));
            }
        }
        let get = |name: &str| first.iter().find(|(k, _)| k == name).map(|(_, e)| *e);

        let broker = get("broker")
            .map(|e| e.value.clone())
            .filter(|b| !b.is_empty() && b != "true")
            .ok_or_else(|| {
                ConfigError::at(
                    path,
                    broker_line,
                    "missing Broker id: add `Broker = <id>` to the [Broker] section (the id is on the broker's setup page)",
                )
            })?;
        if !broker
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            let line = get("broker").map_or(0, |e| e.line);
            return Err(ConfigError::at(
                path,
                line,
                format!("Broker id {broker:?} has characters other than A-Z a-z 0-9 _ -"),
            ));
        }
        let api = match get("api") {
            Some(e) => {
                let url = e.value.trim_end_matches('/').to_string();
                if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 9 {
                    return Err(ConfigError::at(
                        path,
                        e.line,
                        format!("Api {:?} is not an http:// or https:// URL", e.value),
                    ));
                }
                if url.starts_with("http://") && !crate::loopback::is_loopback_url(&url) {
                    return Err(ConfigError::at(
                        path,
                        e.line,
                        "Api: http:// would send the session token, the signed challenge and the setup code in clear text; use https:// (http:// is only for a loopback address such as 127.0.0.1, ::1 or localhost)",
                    ));
                }
                url
            }
            None => DEFAULT_API.to_string(),
        };
        let timeout = match get("timeout") {
            Some(e) => parse_seconds(&e.value)
                .filter(|d| !d.is_zero() && *d <= Duration::from_secs(86_400))
                .ok_or_else(|| {
                    ConfigError::at(
                        path,
                        e.line,
                        format!("Timeout {:?} is not a number of seconds above 0", e.value),
                    )
                })?,
            None => Duration::from_secs(DEFAULT_TIMEOUT_SECS),
        };
        let credentials_path = get("credentials")
            .map(|e| PathBuf::from(&e.value))
            .unwrap_or_else(|| companion_path(path, "-credentials"));
        let setup_path = get("setup")
            .map(|e| PathBuf::from(&e.value))
            .unwrap_or_else(|| companion_path(path, "-setup"));
        let spool = match get("spool") {
            Some(e) if e.value.is_empty() => {
                return Err(ConfigError::at(
                    path,
                    e.line,
                    "Spool is empty: name a directory",
                ))
            }
            Some(e) => Some(PathBuf::from(&e.value)),
            None => None,
        };
        let spool_max = match get("spoolmax") {
            Some(e) => parse_size(&e.value).ok_or_else(|| {
                ConfigError::at(
                    path,
                    e.line,
                    format!(
                        "SpoolMax {:?} is not a size in bytes (a whole number with an optional K, M or G suffix, at least 4K)",
                        e.value
                    ),
                )
            })?,
            None => crate::spool::DEFAULT_MAX_BYTES,
        };
        let status_grace = match get("statusgrace") {
            Some(e) => parse_seconds(&e.value)
                .filter(|d| d.subsec_nanos() == 0)
                .map(|d| d.as_secs())
                .ok_or_else(|| {
                    ConfigError::at(
                        path,
                        e.line,
                        format!(
                            "StatusGrace {:?} is not a whole number of seconds (0 or more)",
                            e.value
                        ),
                    )
                })?,
            None => crate::status::DEFAULT_GRACE_SECS,
        };
        let metrics = match get("metrics") {
            Some(e) => Some(e.value.parse::<SocketAddr>().map_err(|_| {
                ConfigError::at(
                    path,
                    e.line,
                    format!(
                        "Metrics {:?} is not an address and port (127.0.0.1:9090 or [::1]:9090)",
                        e.value
                    ),
                )
            })?),
            None => None,
        };
        if let Some(e) = get("logging") {
            warnings.push(format!(
                "{} line {}: Logging = {} is a Python logging config, which this broker does not read; use -v, -vv or --verbosity",
                path.display(),
                e.line,
                e.value
            ));
        } else if companion_path(path, "-logging").is_file() {
            warnings.push(format!(
                "{}: this broker does not read Python logging configs; use -v, -vv or --verbosity",
                companion_path(path, "-logging").display()
            ));
        }
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

fn parse_pipe(
    section: &IniSection,
    name: &str,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<PipeConfig, ConfigError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ConfigError::at(
            path,
            section.line,
            format!("pipe name {name:?} must be made of A-Z a-z 0-9 _ - only"),
        ));
    }
    let mut from: Vec<EventType> = Vec::new();
    let mut max: Option<(u32, usize)> = None;
    let mut to: Option<&IniEntry> = None;
    let mut rest: Vec<&IniEntry> = Vec::new();
    for entry in &section.entries {
        let at = |msg: String| ConfigError::at(path, entry.line, format!("pipe {name}: {msg}"));
        match canonical_key(&entry.key).as_str() {
            "from" => {
                for part in entry
                    .value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                {
                    let t: EventType = part.parse().map_err(|e| at(format!("From: {e}")))?;
                    if !from.contains(&t) {
                        from.push(t);
                    }
                }
            }
            "max" => {
                let n = entry
                    .value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        at(format!("Max {:?} is not a positive integer", entry.value))
                    })?;
                match max {
                    None => max = Some((n, entry.line)),
                    Some((_, first)) => warnings.push(repeat_warning(path, entry, first)),
                }
            }
            "to" => match to {
                None => to = Some(entry),
                Some(first) => warnings.push(repeat_warning(path, entry, first.line)),
            },
            _ => rest.push(entry),
        }
    }
    let names = registry::names().join(", ");
    let to = to.ok_or_else(|| {
        ConfigError::at(
            path,
            section.line,
            format!("pipe {name}: missing To (one of: {names})"),
        )
    })?;
    let plugin = registry::find(&to.value).ok_or_else(|| {
        ConfigError::at(
            path,
            to.line,
            format!(
                "pipe {name}: To: unknown sink {:?} (this broker has: {names})",
                to.value
            ),
        )
    })?;
    if from.is_empty() {
        warnings.push(format!(
            "{} line {}: pipe {name} has no From event types; it receives nothing",
            path.display(),
            section.line
        ));
    }
    let mut settings = Vec::new();
    for entry in rest {
        let key = canonical_key(&entry.key);
        let Some(known) = plugin.keys.iter().find(|k| k.matches(&entry.key)) else {
            let mut expected: Vec<String> = vec!["From".into(), "Max".into(), "To".into()];
            expected.extend(plugin.keys.iter().map(|k| k.shown()));
            return Err(ConfigError::at(
                path,
                entry.line,
                format!(
                    "pipe {name}: unknown key {} for sink {} (expected one of: {})",
                    shown_key(&entry.key),
                    plugin.name,
                    expected.join(", ")
                ),
            ));
        };
        if !known.repeatable {
            if let Some(first) = settings
                .iter()
                .find(|s: &&Setting| canonical_key(&s.key) == key)
            {
                warnings.push(repeat_warning(path, entry, first.line));
                continue;
            }
        }
        settings.push(Setting {
            key: entry.key.clone(),
            value: entry.value.clone(),
            line: entry.line,
        });
    }
    let settings = PipeSettings {
        pipe: name.to_string(),
        file: path.to_path_buf(),
        line: section.line,
        settings,
    };
    // Build once to validate the sink's values; building does no I/O.
    (plugin.build)(&settings)?;
    Ok(PipeConfig {
        name: name.to_string(),
        from,
        max: max.map_or(DEFAULT_MAX, |(n, _)| n),
        to: plugin.name.to_string(),
        settings,
    })
}

fn repeat_warning(path: &Path, entry: &IniEntry, first_line: usize) -> String {
    format!(
        "{} line {}: ignoring repeated {} (line {} counts)",
        path.display(),
        entry.line,
        shown_key(&entry.key),
        first_line
    )
}

/// `private_key` -> `PrivateKey`, `c_a` -> `CA`: a key as the files write it.
pub fn camel_case(key: &str) -> String {
    key.split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `256M` -> 268435456: a whole number of bytes with an optional `K`, `M` or `G` suffix (powers
/// of 1024, either case), at least 4K.
pub fn parse_size(text: &str) -> Option<u64> {
    readers::parse_size(text).filter(|bytes| *bytes >= 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M"), Some(256 << 20));
        assert_eq!(parse_size("16k"), Some(16 << 10));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("5000"), Some(5000));
        for bad in ["", "M", "1.5M", "-1M", "10T", "100", "99999999999G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

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
