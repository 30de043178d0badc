//! Typed key readers: how a sink's builder reads its keys from a pipe's [`PipeSettings`].
//!
//! ```
//! use std::time::Duration;
//! use broker_core::config::PipeSettings;
//! use broker_core::registry::SinkKey;
//!
//! const KEYS: &[SinkKey] = &[
//!     SinkKey::one("File", "path of the file (required)"),
//!     SinkKey::one("Timeout", "seconds per write (default 30)"),
//!     SinkKey::one("MaxSize", "largest line (default 64K)"),
//! ];
//! let settings = PipeSettings::new("P", "/etc/b.conf", &[("file", "/tmp/x"), ("timeout", "5m")]);
//! let keys = settings.keys(KEYS);
//! assert_eq!(keys.required_path("File", "the file").unwrap().to_str(), Some("/tmp/x"));
//! let timeout = keys.seconds("Timeout", 1..=3600, Duration::from_secs(30)).unwrap();
//! assert_eq!(timeout, Duration::from_secs(300));
//! assert_eq!(keys.size("MaxSize", 1..=1 << 20, 64 << 10).unwrap(), 64 << 10);
//! ```
//!
//! A key is matched as the config matches keys (`ServerName`, `servername`, `server_name`), and
//! every error names the file, the line, the pipe and the key ([`PipeSettings::error`]). Reading
//! a key that is not in the sink's [`SinkKey`] list is a bug: a debug build panics at once, so a
//! typo in a key name cannot go unnoticed in tests. (A release build reads it as any key; a
//! loaded config never has it, since the loader refuses a key the sink did not declare.)
//!
//! The value parsers ([`parse_seconds`], [`parse_size`], [`parse_boolean`]) are public too, so
//! every key of every file is read by one copy of each.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::error::ConfigError;
use super::settings::{PipeSettings, Setting};
use crate::registry::SinkKey;

impl PipeSettings {
    /// A reader of this pipe's keys for a sink that declared `declared` (its plugin's key list).
    pub fn keys<'a>(&'a self, declared: &'a [SinkKey]) -> Keys<'a> {
        Keys {
            settings: self,
            declared,
        }
    }
}

/// Reads a pipe's keys with types and checks; see the [module](self) documentation.
#[derive(Clone, Copy, Debug)]
pub struct Keys<'a> {
    settings: &'a PipeSettings,
    declared: &'a [SinkKey],
}

/// One occurrence of a repeatable key ([`Keys::each`]).
#[derive(Clone, Copy, Debug)]
pub struct Occurrence<'a> {
    /// The value, trimmed.
    pub value: &'a str,
    setting: &'a Setting,
    settings: &'a PipeSettings,
}

impl Occurrence<'_> {
    /// The line of this occurrence in the config file.
    pub fn line(&self) -> usize {
        self.setting.line
    }

    /// An error about this occurrence: names the file, its own line, the pipe and the key.
    pub fn error(&self, message: impl fmt::Display) -> ConfigError {
        let s = self.settings;
        ConfigError::at(
            &s.file,
            self.setting.line,
            format!("pipe {}: {}: {message}", s.pipe, self.setting.key),
        )
    }
}

impl<'a> Keys<'a> {
    /// Checks (in debug builds) that the sink declared `key`.
    fn declared(&self, key: &str) {
        debug_assert!(
            self.declared.iter().any(|k| k.matches(key)),
            "pipe {}: the sink reads key {key}, which is not in its SinkKey list",
            self.settings.pipe
        );
    }

    /// The first occurrence of `key`.
    fn setting(&self, key: &str) -> Option<&'a Setting> {
        self.declared(key);
        self.settings.get(key)
    }

    /// The value of `key` as written (trimmed; `true` for a line without `=`), unchecked.
    pub fn value(&self, key: &str) -> Option<&'a str> {
        self.setting(key).map(|s| s.value.as_str())
    }

    /// Whether the pipe sets `key`.
    pub fn has(&self, key: &str) -> bool {
        self.setting(key).is_some()
    }

    /// An error about `key`: names the file, the key's line (the section's when the key is
    /// missing), the pipe and the key.
    pub fn error(&self, key: &str, message: impl fmt::Display) -> ConfigError {
        self.declared(key);
        self.settings.error(key, message)
    }

    /// `key`'s value as text; an empty value is an error (`must not be empty`).
    pub fn text(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.value(key) {
            Some("") => Err(self.error(key, "must not be empty")),
            other => Ok(other.map(str::to_string)),
        }
    }

    /// Like [`Keys::text`], and a missing key is an error (`is required`).
    pub fn required_text(&self, key: &str) -> Result<String, ConfigError> {
        self.text(key)?
            .ok_or_else(|| self.error(key, "is required"))
    }

    /// `key`'s value as a path; an empty value is an error that asks for the path of `what`
    /// (`empty: give the path of a PEM file`).
    pub fn path(&self, key: &str, what: &str) -> Result<Option<PathBuf>, ConfigError> {
        match self.value(key) {
            Some("") => Err(self.error(key, format!("empty: give the path of {what}"))),
            other => Ok(other.map(PathBuf::from)),
        }
    }

    /// Like [`Keys::path`], and a missing key is an error too (`missing: give the path of ...`).
    pub fn required_path(&self, key: &str, what: &str) -> Result<PathBuf, ConfigError> {
        self.path(key, what)?
            .ok_or_else(|| self.error(key, format!("missing: give the path of {what}")))
    }

    /// `key`'s value parsed with `T`'s `FromStr`; the error is the parser's own message, which
    /// must not quote a secret value.
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.value(key) {
            Some(text) => text.parse().map(Some).map_err(|e| self.error(key, e)),
            None => Ok(None),
        }
    }

    /// Like [`Keys::parse`], with `default` when the key is missing.
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        Ok(self.parse(key)?.unwrap_or(default))
    }

    /// `key`'s value as a number within `range`, counting `what` (`events`): an error says
    /// `"x" is not a number of events from 1 to 10000`.
    pub fn number<T>(
        &self,
        key: &str,
        range: RangeInclusive<T>,
        what: &str,
    ) -> Result<Option<T>, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display,
    {
        let Some(text) = self.value(key) else {
            return Ok(None);
        };
        match text.parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(self.error(
                key,
                format!(
                    "{text:?} is not a number of {what} from {} to {}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    /// `key`'s value as a duration in seconds (see [`parse_seconds`]) within `range`, in
    /// seconds (`1..=3600`, or `0.001..=3600.0` for "above 0").
    pub fn optional_seconds<T: Into<f64> + Copy>(
        &self,
        key: &str,
        range: RangeInclusive<T>,
    ) -> Result<Option<Duration>, ConfigError> {
        let Some(text) = self.value(key) else {
            return Ok(None);
        };
        let (low, high): (f64, f64) = ((*range.start()).into(), (*range.end()).into());
        match parse_seconds(text) {
            Some(d) if (low..=high).contains(&d.as_secs_f64()) => Ok(Some(d)),
            _ => Err(self.error(
                key,
                format!(
                    "{text:?} is not a number of seconds from {low} to {high} (like 30, 30s, 5m \
                     or 1h)"
                ),
            )),
        }
    }

    /// Like [`Keys::optional_seconds`], with `default` when the key is missing.
    pub fn seconds<T: Into<f64> + Copy>(
        &self,
        key: &str,
        range: RangeInclusive<T>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        Ok(self.optional_seconds(key, range)?.unwrap_or(default))
    }

    /// `key`'s value as a size in bytes (see [`parse_size`]) within `range`.
    pub fn optional_size(
        &self,
        key: &str,
        range: RangeInclusive<usize>,
    ) -> Result<Option<usize>, ConfigError> {
        let Some(text) = self.value(key) else {
            return Ok(None);
        };
        let bytes = parse_size(text)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                self.error(
                    key,
                    format!("{text:?} is not a size in bytes (like 8192, 64K or 1M)"),
                )
            })?;
        if bytes < *range.start() {
            return Err(self.error(
                key,
                format!("must be at least {}", show_size(*range.start())),
            ));
        }
        if bytes > *range.end() {
            return Err(self.error(key, format!("must be at most {}", show_size(*range.end()))));
        }
        Ok(Some(bytes))
    }

    /// Like [`Keys::optional_size`], with `default` when the key is missing.
    pub fn size(
        &self,
        key: &str,
        range: RangeInclusive<usize>,
        default: usize,
    ) -> Result<usize, ConfigError> {
        Ok(self.optional_size(key, range)?.unwrap_or(default))
    }

    /// `key`'s value as yes or no (see [`parse_boolean`]), with `default` when it is missing.
    pub fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(text) = self.value(key) else {
            return Ok(default);
        };
        parse_boolean(text).ok_or_else(|| {
            self.error(
                key,
                format!("{text:?} is not yes or no (also true/false, on/off, 1/0)"),
            )
        })
    }

    /// Every occurrence of a repeatable key, in file order, each able to name its own line.
    pub fn each(&self, key: &str) -> impl Iterator<Item = Occurrence<'a>> + 'a {
        self.declared(key);
        let want = super::ini::canonical_key(key);
        let settings = self.settings;
        settings
            .settings
            .iter()
            .filter(move |s| super::ini::canonical_key(&s.key) == want)
            .map(move |setting| Occurrence {
                value: setting.value.as_str(),
                setting,
                settings,
            })
    }
}

/// A duration written in seconds: a number (`30`, `0.5`), or a number and a unit, `s`, `m` or
/// `h` (`30s`, `5m`, `1h`), either case; not negative. `None` when it is not one.
pub fn parse_seconds(text: &str) -> Option<Duration> {
    let (number, unit) = number_and_unit(text, 's', true)?;
    let scale = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(number.parse::<f64>().ok()? * scale).ok()
}

/// A size written in bytes: a whole number with an optional `K`, `M` or `G` suffix (powers of
/// 1024, either case; `B` for bytes is accepted too). `None` when it is not one or overflows.
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = number_and_unit(text, 'b', false)?;
    let shift = match unit {
        'b' => 0,
        'k' => 10,
        'm' => 20,
        'g' => 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// `text`, trimmed, split into its number and the letter of its unit (lower case; `default`
/// without one). `None` when the number is empty or has characters other than digits (and
/// points, with `point`): no sign, exponent, `inf` or `NaN`.
fn number_and_unit(text: &str, default: char, point: bool) -> Option<(&str, char)> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (text[..i].trim_end(), c.to_ascii_lowercase()),
        _ => (text, default),
    };
    let allowed = |b: u8| b.is_ascii_digit() || (point && b == b'.');
    (!number.is_empty() && number.bytes().all(allowed)).then_some((number, unit))
}

/// `yes`/`no`, `true`/`false`, `on`/`off`, `1`/`0`, either case. `None` for anything else.
pub fn parse_boolean(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// A size as a config would write it: `1 byte`, `4K`, `16M`, `1G`, else `N bytes`.
pub fn show_size(bytes: usize) -> String {
    match bytes {
        1 => "1 byte".to_string(),
        0 => "0 bytes".to_string(),
        n if n % (1 << 30) == 0 => format!("{}G", n >> 30),
        n if n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n % (1 << 10) == 0 => format!("{}K", n >> 10),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[SinkKey] = &[
        SinkKey::one("Name", "a text"),
        SinkKey::one("CA", "a path"),
        SinkKey::one("ServerName", "a text"),
        SinkKey::one("Batch", "a number"),
        SinkKey::one("Timeout", "seconds"),
        SinkKey::one("MaxSize", "bytes"),
        SinkKey::one("Ack", "yes or no"),
        SinkKey::list("Label", "repeatable"),
    ];

    /// Settings whose keys are on lines 5, 6, 7... of `/etc/b.conf`, section at line 4.
    fn settings(pairs: &[(&str, &str)]) -> PipeSettings {
        let mut settings = PipeSettings::new("P", "/etc/b.conf", pairs);
        settings.line = 4;
        for (i, s) in settings.settings.iter_mut().enumerate() {
            s.line = 5 + i;
        }
        settings
    }

    fn message<T: fmt::Debug>(result: Result<T, ConfigError>) -> String {
        result.unwrap_err().message
    }

    #[test]
    fn keys_match_ignoring_case_and_underscores() {
        for written in ["ServerName", "servername", "server_name", "SERVER_NAME"] {
            let s = settings(&[(written, "logs.example.com")]);
            let keys = s.keys(KEYS);
            assert_eq!(
                keys.value("ServerName"),
                Some("logs.example.com"),
                "{written}"
            );
            assert!(keys.has("ServerName"));
        }
        let s = settings(&[("ca", "/etc/ca.pem")]);
        assert_eq!(s.keys(KEYS).value("CA"), Some("/etc/ca.pem"));
    }

    #[test]
    fn text_and_required_text() {
        let s = settings(&[("Name", "x")]);
        assert_eq!(s.keys(KEYS).text("Name").unwrap().as_deref(), Some("x"));
        assert_eq!(s.keys(KEYS).text("ServerName").unwrap(), None);
        assert_eq!(s.keys(KEYS).required_text("Name").unwrap(), "x");
        assert_eq!(
            message(s.keys(KEYS).required_text("ServerName")),
            "/etc/b.conf line 4: pipe P: ServerName: is required"
        );
        let s = settings(&[("name", "")]);
        assert_eq!(
            message(s.keys(KEYS).text("Name")),
            "/etc/b.conf line 5: pipe P: name: must not be empty"
        );
    }

    #[test]
    fn paths_must_not_be_empty() {
        let s = settings(&[("Name", "x"), ("CA", "/etc/ca.pem")]);
        let keys = s.keys(KEYS);
        assert_eq!(
            keys.path("CA", "a PEM file").unwrap(),
            Some(PathBuf::from("/etc/ca.pem"))
        );
        assert_eq!(
            keys.required_path("CA", "a PEM file").unwrap(),
            PathBuf::from("/etc/ca.pem")
        );
        let s = settings(&[("CA", "")]);
        assert_eq!(
            message(s.keys(KEYS).path("CA", "a PEM file")),
            "/etc/b.conf line 5: pipe P: CA: empty: give the path of a PEM file"
        );
        let s = settings(&[]);
        assert_eq!(s.keys(KEYS).path("CA", "a PEM file").unwrap(), None);
        assert_eq!(
            message(s.keys(KEYS).required_path("CA", "a PEM file")),
            "/etc/b.conf line 4: pipe P: CA: missing: give the path of a PEM file"
        );
    }

    #[test]
    fn parse_quotes_the_parsers_error() {
        let s = settings(&[("Batch", "12")]);
        assert_eq!(s.keys(KEYS).parse_or("Batch", 100u32).unwrap(), 12);
        assert_eq!(s.keys(KEYS).parse::<u32>("Batch").unwrap(), Some(12));
        let s = settings(&[]);
        assert_eq!(s.keys(KEYS).parse_or("Batch", 100u32).unwrap(), 100);
        let s = settings(&[("Batch", "many")]);
        assert_eq!(
            message(s.keys(KEYS).parse_or("Batch", 100u32)),
            "/etc/b.conf line 5: pipe P: Batch: invalid digit found in string"
        );
    }

    #[test]
    fn numbers_within_a_range() {
        let read = |pairs: &[(&str, &str)]| {
            let s = settings(pairs);
            let keys = s.keys(KEYS);
            keys.number("Batch", 1..=10_000usize, "events")
                .map_err(|e| e.message)
        };
        assert_eq!(read(&[("Batch", "500")]), Ok(Some(500)));
        assert_eq!(read(&[]), Ok(None));
        for bad in ["0", "10001", "-1", "1.5", "lots", ""] {
            assert_eq!(
                read(&[("Batch", bad)]).unwrap_err(),
                format!(
                    "/etc/b.conf line 5: pipe P: Batch: {bad:?} is not a number of events \
                     from 1 to 10000"
                )
            );
        }
    }

    #[test]
    fn seconds_with_units_within_a_range() {
        let read = |text: &str| {
            let s = settings(&[("Timeout", text)]);
            let keys = s.keys(KEYS);
            keys.seconds("Timeout", 0.5..=3600.0, Duration::from_secs(30))
                .map_err(|e| e.message)
        };
        assert_eq!(read("30"), Ok(Duration::from_secs(30)));
        assert_eq!(read("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(read("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(read("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(read("1H"), Ok(Duration::from_secs(3600)));
        assert_eq!(read("1.5 m"), Ok(Duration::from_secs(90)));
        for bad in [
            "", "s", "soon", "-1", "0", "0.4", "2h", "1e3", "inf", "NaN", "5d", "1.2.3",
        ] {
            assert_eq!(
                read(bad).unwrap_err(),
                format!(
                    "/etc/b.conf line 5: pipe P: Timeout: {bad:?} is not a number of seconds \
                     from 0.5 to 3600 (like 30, 30s, 5m or 1h)"
                )
            );
        }
        let s = settings(&[]);
        let keys = s.keys(KEYS);
        assert_eq!(
            keys.seconds("Timeout", 1..=2, Duration::from_secs(9)),
            Ok(Duration::from_secs(9))
        );
        assert_eq!(keys.optional_seconds("Timeout", 1.0..=2.0), Ok(None));
    }

    #[test]
    fn sizes_with_suffixes_within_a_range() {
        let read = |text: &str| {
            let s = settings(&[("MaxSize", text)]);
            let keys = s.keys(KEYS);
            keys.size("MaxSize", 1..=1 << 20, 7).map_err(|e| e.message)
        };
        assert_eq!(read("1024"), Ok(1024));
        assert_eq!(read("64k"), Ok(64 << 10));
        assert_eq!(read(" 1M "), Ok(1 << 20));
        assert_eq!(read("100B"), Ok(100));
        for bad in [
            "",
            "x",
            "K",
            "-1",
            "1.5K",
            "+5",
            "1T",
            "99999999999999999999999",
        ] {
            assert_eq!(
                read(bad).unwrap_err(),
                format!(
                    "/etc/b.conf line 5: pipe P: MaxSize: {bad:?} is not a size in bytes \
                     (like 8192, 64K or 1M)"
                )
            );
        }
        assert_eq!(
            read("0").unwrap_err(),
            "/etc/b.conf line 5: pipe P: MaxSize: must be at least 1 byte"
        );
        assert_eq!(
            read("1G").unwrap_err(),
            "/etc/b.conf line 5: pipe P: MaxSize: must be at most 1M"
        );
        let s = settings(&[]);
        assert_eq!(s.keys(KEYS).size("MaxSize", 1..=2, 7), Ok(7));
        assert_eq!(s.keys(KEYS).optional_size("MaxSize", 1..=2), Ok(None));
    }

    #[test]
    fn size_and_seconds_parsers() {
        assert_eq!(parse_size("256M"), Some(256 << 20));
        assert_eq!(parse_size("16k"), Some(16 << 10));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("99999999999G"), None);
        assert_eq!(parse_seconds("86400"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_seconds("0"), Some(Duration::ZERO));
        assert_eq!(parse_seconds("."), None);
        assert_eq!(show_size(4096), "4K");
        assert_eq!(show_size(3 << 30), "3G");
        assert_eq!(show_size(1500), "1500 bytes");
    }

    proptest::proptest! {
        #[test]
        fn parsers_take_any_text_without_panicking(text in "\\PC{0,12}") {
            let _ = (parse_seconds(&text), parse_size(&text), parse_boolean(&text));
        }

        #[test]
        fn whole_numbers_read_back(n in 0u32..=u32::MAX, unit in 0usize..4) {
            let (suffix, shift) = [("", 0), ("k", 10), ("M", 20), ("g", 30)][unit];
            proptest::prop_assert_eq!(parse_size(&format!("{n}{suffix}")), Some(u64::from(n) << shift));
            let seconds = [("", 1), ("s", 1), ("m", 60), ("H", 3600)][unit];
            proptest::prop_assert_eq!(
                parse_seconds(&format!("{n}{}", seconds.0)),
                Some(Duration::from_secs(u64::from(n) * seconds.1))
            );
        }
    }

    #[test]
    fn booleans() {
        let read = |pairs: &[(&str, &str)]| {
            let s = settings(pairs);
            let keys = s.keys(KEYS);
            keys.boolean("Ack", false).map_err(|e| e.message)
        };
        for yes in ["yes", "TRUE", "on", "1", " Yes "] {
            assert_eq!(read(&[("Ack", yes)]), Ok(true), "{yes}");
        }
        for no in ["no", "False", "OFF", "0"] {
            assert_eq!(read(&[("Ack", no)]), Ok(false), "{no}");
        }
        assert_eq!(read(&[]), Ok(false));
        assert_eq!(
            read(&[("Ack", "maybe")]).unwrap_err(),
            "/etc/b.conf line 5: pipe P: Ack: \"maybe\" is not yes or no (also true/false, \
             on/off, 1/0)"
        );
    }

    #[test]
    fn each_occurrence_names_its_own_line() {
        let s = settings(&[("Label", "a"), ("Name", "n"), ("label", "b")]);
        let keys = s.keys(KEYS);
        let all: Vec<_> = keys.each("Label").collect();
        assert_eq!(
            all.iter().map(|o| (o.value, o.line())).collect::<Vec<_>>(),
            [("a", 5), ("b", 7)]
        );
        assert_eq!(
            all[1].error("bad label").message,
            "/etc/b.conf line 7: pipe P: label: bad label"
        );
        assert_eq!(keys.each("Name").count(), 1);
    }

    #[test]
    fn errors_name_the_key_as_written_or_as_declared() {
        let s = settings(&[("max_size", "1")]);
        let keys = s.keys(KEYS);
        assert_eq!(
            keys.error("MaxSize", "too small").message,
            "/etc/b.conf line 5: pipe P: max_size: too small"
        );
        assert_eq!(
            keys.error("Timeout", "needed").message,
            "/etc/b.conf line 4: pipe P: Timeout: needed"
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "the sink reads key Nmae, which is not in its SinkKey list")]
    fn reading_an_undeclared_key_panics_in_debug_builds() {
        let s = settings(&[("Name", "x")]);
        let _ = s.keys(KEYS).value("Nmae");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not in its SinkKey list")]
    fn iterating_an_undeclared_key_panics_in_debug_builds() {
        let s = settings(&[]);
        let _ = s.keys(KEYS).each("Labels").count();
    }
}
