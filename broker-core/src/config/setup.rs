//! `broker-setup.conf`: the one-time setup code that registers the broker's first key.

use std::fmt;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::error::ConfigError;
use super::ini::{canonical_key, IniSection};

/// The `[Broker.Setup]` table. The code is a secret: `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SetupConfig {
    /// The one-time setup code.
    pub code: String,
    /// When the code expires, if the file says.
    pub expires: Option<DateTime<Utc>>,
    /// Keep the broker's other registered keys instead of replacing them.
    pub keep_others: bool,
}

impl fmt::Debug for SetupConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetupConfig")
            .field("code", &"<redacted>")
            .field("expires", &self.expires)
            .field("keep_others", &self.keep_others)
            .finish()
    }
}

impl SetupConfig {
    /// Reads the `[Broker.Setup]` table of `section`, checking that the code is there and has not
    /// expired at `now`.
    pub fn from_section(
        section: &IniSection,
        path: &Path,
        now: DateTime<Utc>,
    ) -> Result<Self, ConfigError> {
        let mut code = None;
        let mut expires = None;
        let mut keep_others = false;
        for entry in &section.entries {
            match canonical_key(&entry.key).as_str() {
                "code" if code.is_none() => code = Some(entry.value.clone()),
                "expires" if expires.is_none() => {
                    let when = parse_time(&entry.value).ok_or_else(|| {
                        ConfigError::at(
                            path,
                            entry.line,
                            "Expires is not a UTC time like 2022-01-04T12:34:56Z (the value is not shown: this file holds the setup code)",
                        )
                    })?;
                    if when <= now {
                        return Err(ConfigError::at(
                            path,
                            entry.line,
                            format!(
                                "setup code expired at {}; download a new broker-setup.conf from the broker's setup page",
                                when.format("%Y-%m-%dT%H:%M:%SZ")
                            ),
                        ));
                    }
                    expires = Some(when);
                }
                "keepothers" => keep_others = parse_bool(&entry.value),
                _ => {}
            }
        }
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ConfigError::at(path, section.line, "[Broker.Setup] has no Code"))?;
        Ok(SetupConfig {
            code,
            expires,
            keep_others,
        })
    }
}

/// Parses an RFC 3339 time, or one without a zone (taken as UTC).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .map(|n| n.and_utc())
}

/// The truth of a config value: `true`, `yes`, `on`, `1` (any case) are true.
pub fn parse_bool(text: &str) -> bool {
    matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "1" | "y" | "t"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ini::parse_ini;

    fn setup(text: &str) -> Result<SetupConfig, ConfigError> {
        let s = parse_ini(text, Path::new("s.conf")).unwrap();
        let now = DateTime::parse_from_rfc3339("2022-01-02T00:00:00Z")
            .unwrap()
            .to_utc();
        SetupConfig::from_section(&s[0], Path::new("s.conf"), now)
    }

    #[test]
    fn reads_code_and_expiry() {
        let s = setup("[Broker.Setup]\nCode = abc\nExpires = 2022-01-04T12:34:56Z\nKeepOthers\n")
            .unwrap();
        assert_eq!(s.code, "abc");
        assert!(s.keep_others);
        assert!(!format!("{s:?}").contains("abc"));
    }

    #[test]
    fn refuses_expired_and_missing() {
        let e = setup("[Broker.Setup]\nCode = abc\nExpires = 2022-01-01T12:34:56Z\n").unwrap_err();
        assert!(
            e.message
                .starts_with("s.conf line 3: setup code expired at 2022-01-01T12:34:56Z"),
            "{e}"
        );
        let e = setup("[Broker.Setup]\nExpires = soon\n").unwrap_err();
        assert!(
            e.message.contains("line 2: Expires is not a UTC time"),
            "{e}"
        );
        let e = setup("[Broker.Setup]\nKeepOthers = false\n").unwrap_err();
        assert_eq!(e.message, "s.conf line 1: [Broker.Setup] has no Code");
    }
}
