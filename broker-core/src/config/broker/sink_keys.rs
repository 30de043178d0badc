//! The check of a pipe's sink-specific keys against the keys its sink declared: what a sink
//! author reads to understand the key errors a user gets.
//!
//! Every key of a `[Pipe.NAME]` section other than `From`, `Max` and `To` must be one of the
//! sink's [`SinkKey`](crate::registry::SinkKey)s, matched as every key is matched (`ServerName`,
//! `servername` and `server_name` are one key). A key the sink did not declare (a typo, or a key
//! of another sink) stops the load with one line that names the file, the line, the pipe, the
//! key as written (cut at the first character that cannot be in a key, so a value never shows)
//! and every key the sink expects:
//!
//! ```text
//! /etc/broker.conf line 7: pipe Log: unknown key Sockit for sink syslog (expected one of: From, Max, To, Socket, ...)
//! ```
//!
//! A repeated key that is not `repeatable` is a warning: the first occurrence counts. A
//! repeatable key keeps every occurrence, in file order.

use std::path::Path;

use super::repeat_warning;
use crate::config::ini::IniEntry;
use crate::config::keys::canonical_key;
use crate::config::secret::shown_key;
use crate::config::settings::Setting;
use crate::config::ConfigError;
use crate::registry::SinkPlugin;

/// The settings a pipe hands its sink: `entries` (the section's lines other than `From`, `Max`
/// and `To`) checked against the keys `plugin` declared. Warnings for ignored repeats go to
/// `warnings`.
pub(super) fn check_sink_keys(
    plugin: &SinkPlugin,
    entries: &[&IniEntry],
    pipe: &str,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<Setting>, ConfigError> {
    let mut settings: Vec<Setting> = Vec::new();
    for entry in entries {
        let Some(known) = plugin.keys.iter().find(|k| k.matches(&entry.key)) else {
            return Err(unknown_key(plugin, entry, pipe, path));
        };
        if !known.repeatable {
            let key = canonical_key(&entry.key);
            if let Some(first) = settings.iter().find(|s| canonical_key(&s.key) == key) {
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
    Ok(settings)
}

/// The error for a key `plugin` did not declare: names the key as it may be shown and lists
/// every key a pipe of this sink takes.
fn unknown_key(plugin: &SinkPlugin, entry: &IniEntry, pipe: &str, path: &Path) -> ConfigError {
    let mut expected: Vec<String> = vec!["From".into(), "Max".into(), "To".into()];
    expected.extend(plugin.keys.iter().map(|k| k.shown()));
    ConfigError::at(
        path,
        entry.line,
        format!(
            "pipe {pipe}: unknown key {} for sink {} (expected one of: {})",
            shown_key(&entry.key),
            plugin.name,
            expected.join(", ")
        ),
    )
}
