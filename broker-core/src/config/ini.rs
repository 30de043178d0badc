//! The INI dialect shared by `broker.conf`, `broker-setup.conf` and `broker-credentials.conf`.
//!
//! `rust-ini` does the section and key splitting, with its quote, escape and multi-line handling
//! off. In front of it sits a small pre-pass for what the dialect adds: `#` starts a comment
//! anywhere on a line (a value cannot contain `#`), a line without `=` sets its key to `true`,
//! and every key keeps its line number for error messages. A line starting with `;` is a comment
//! too, as it is for `rust-ini`.

use std::path::Path;

use ini::{Ini, ParseOption};

use super::error::ConfigError;
pub use super::keys::canonical_key;
use super::secret::{secret_section_form, shown_key};

/// One `key = value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IniEntry {
    /// The key as written, trimmed.
    pub key: String,
    /// The value, trimmed; `true` for a line without `=`.
    pub value: String,
    /// Line number, from 1.
    pub line: usize,
}

/// One `[section]` with its entries in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IniSection {
    /// The name between the brackets, trimmed (`Pipe.MyStats`).
    pub name: String,
    /// Line number of the header.
    pub line: usize,
    /// The entries, in file order, repeats included.
    pub entries: Vec<IniEntry>,
}

/// Parses a whole file. Keys before the first section are dropped, as are empty sections.
/// An error about a line of a `[Broker.Credentials]` or `[Broker.Setup]` section never quotes it.
pub fn parse_ini(text: &str, path: &Path) -> Result<Vec<IniSection>, ConfigError> {
    parse(text, path, None)
}

/// Parses a file that holds secrets (the credentials or the setup file): an error about any of
/// its lines names the file, the line and `form`, the form expected there, and never quotes it.
pub fn parse_secret_ini(
    text: &str,
    path: &Path,
    form: &'static str,
) -> Result<Vec<IniSection>, ConfigError> {
    parse(text, path, Some(form))
}

fn parse(
    text: &str,
    path: &Path,
    secret_form: Option<&'static str>,
) -> Result<Vec<IniSection>, ConfigError> {
    let (clean, mut sections) = prepass(text, path, secret_form)?;
    let options = ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: false,
        ..ParseOption::default()
    };
    let parsed = Ini::load_from_str_opt(&clean, options).map_err(|e| match secret_form {
        Some(form) => ConfigError::file(path, format!("cannot parse; expected {form}")),
        None => ConfigError::file(path, format!("cannot parse: {e}")),
    })?;
    // rust-ini keeps sections and keys in file order; line numbers come from the pre-pass.
    let named: Vec<_> = parsed.iter().filter(|(name, _)| name.is_some()).collect();
    let non_empty: Vec<&mut IniSection> = sections
        .iter_mut()
        .filter(|s| !s.entries.is_empty())
        .collect();
    let named: Vec<_> = named.into_iter().filter(|(_, p)| !p.is_empty()).collect();
    if named.len() != non_empty.len() {
        return Err(ConfigError::file(
            path,
            "cannot parse the sections of this file",
        ));
    }
    for ((name, props), section) in named.into_iter().zip(non_empty) {
        let same_keys = props.iter().count() == section.entries.len()
            && props
                .iter()
                .zip(&section.entries)
                .all(|((k, v), e)| k == e.key && v == e.value);
        if name != Some(section.name.as_str()) || !same_keys {
            let message = match secret_form.or_else(|| secret_section_form(&section.name)) {
                Some(form) => format!("cannot parse this section; expected {form}"),
                None => format!("cannot parse section [{}]", section.name),
            };
            return Err(ConfigError::at(path, section.line, message));
        }
    }
    sections.retain(|s| !s.entries.is_empty());
    Ok(sections)
}

/// Strips comments, turns bare keys into `key=true`, and records sections and line numbers.
/// `file_form` is the expected form of every line of a file that holds secrets.
fn prepass(
    text: &str,
    path: &Path,
    file_form: Option<&'static str>,
) -> Result<(String, Vec<IniSection>), ConfigError> {
    let mut clean = String::with_capacity(text.len());
    let mut sections: Vec<IniSection> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        if raw.contains('\0') {
            return Err(ConfigError::at(
                path,
                line_no,
                "has a NUL byte, which no key or value can hold (not shown)",
            ));
        }
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        // A line of a secret-holding file or section is never quoted, only its expected form.
        let secret_form =
            file_form.or_else(|| sections.last().and_then(|s| secret_section_form(&s.name)));
        if let Some(form) = secret_form {
            check_secret_line(line, line_no, path, form)?;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.strip_suffix(']').ok_or_else(|| {
                ConfigError::at(
                    path,
                    line_no,
                    format!("section header {line:?} lacks a closing ']'"),
                )
            })?;
            let name = name.trim();
            if name.is_empty() || name.contains(['[', ']']) {
                return Err(ConfigError::at(
                    path,
                    line_no,
                    format!("invalid section header {line:?}"),
                ));
            }
            clean.push('[');
            clean.push_str(name);
            clean.push_str("]\n");
            sections.push(IniSection {
                name: name.to_string(),
                line: line_no,
                entries: Vec::new(),
            });
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, "true"),
        };
        if key.is_empty() {
            return Err(ConfigError::at(
                path,
                line_no,
                "a '=' with no key before it",
            ));
        }
        if key.contains([':', '[', ']']) {
            return Err(ConfigError::at(
                path,
                line_no,
                format!(
                    "invalid key {} (a key cannot have ':', '[' or ']'; write `Key = value`)",
                    shown_key(key)
                ),
            ));
        }
        let Some(section) = sections.last_mut() else {
            continue; // keys before the first section are ignored
        };
        clean.push_str(key);
        clean.push('=');
        clean.push_str(value);
        clean.push('\n');
        section.entries.push(IniEntry {
            key: key.to_string(),
            value: value.to_string(),
            line: line_no,
        });
    }
    Ok((clean, sections))
}

/// Checks a line of a secret-holding file or section with errors that never quote it: a section
/// header must be well formed, and a key line must have a key made of key characters.
fn check_secret_line(
    line: &str,
    line_no: usize,
    path: &Path,
    form: &str,
) -> Result<(), ConfigError> {
    let well_formed = match line.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .is_some_and(|name| !name.trim().is_empty() && !name.contains(['[', ']'])),
        None => {
            line.split_once('=')
                .map_or(line, |(key, _)| key)
                .trim()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !line.starts_with('=')
        }
    };
    if well_formed {
        Ok(())
    } else {
        Err(ConfigError::at(
            path,
            line_no,
            format!("not a valid line here (not shown, it may hold a secret); expected {form}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<IniSection> {
        parse_ini(text, Path::new("t.conf")).unwrap()
    }

    #[test]
    fn dialect() {
        let s = parse(
            "ignored = 1\n[Broker]\nBroker = abc # comment\n\n[Empty]\n[Pipe.A]\nFrom = alerts\nFrom=log_authn\nBare\nSocket = [::1]:514\nPath = C:\\x \"q\"\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "Broker");
        assert_eq!(s[0].entries[0].value, "abc");
        assert_eq!(s[0].entries[0].line, 3);
        assert_eq!(s[1].name, "Pipe.A");
        let kv: Vec<_> = s[1]
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            kv,
            vec![
                ("From", "alerts", 7),
                ("From", "log_authn", 8),
                ("Bare", "true", 9),
                ("Socket", "[::1]:514", 10),
                ("Path", "C:\\x \"q\"", 11),
            ]
        );
    }

    #[test]
    fn repeated_sections_stay_apart() {
        let s = parse("[Pipe.A]\nTo=file\n[Pipe.B]\nTo=x\n[Pipe.A]\nTo=y\n");
        let names: Vec<_> = s.iter().map(|s| (s.name.as_str(), s.line)).collect();
        assert_eq!(names, vec![("Pipe.A", 1), ("Pipe.B", 3), ("Pipe.A", 5)]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_ini("[Broker]\n = x\n", Path::new("b.conf")).unwrap_err();
        assert_eq!(e.message, "b.conf line 2: a '=' with no key before it");
        let e = parse_ini("[Broker\n", Path::new("b.conf")).unwrap_err();
        assert!(
            e.message.starts_with("b.conf line 1: section header"),
            "{e}"
        );
    }

    #[test]
    fn canonical_keys() {
        assert_eq!(canonical_key("PrivateKey"), "privatekey");
        assert_eq!(canonical_key("private_key"), "privatekey");
    }
}
