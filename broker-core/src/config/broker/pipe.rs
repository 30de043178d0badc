//! One `[Pipe.NAME]` section: its name, `From`, `Max`, `To`, and the sink's own keys (checked by
//! [`super::sink_keys`], then validated by building the sink once).

use std::path::Path;

use super::sink_keys::check_sink_keys;
use super::{repeat_warning, PipeConfig, DEFAULT_MAX};
use crate::config::ini::{IniEntry, IniSection};
use crate::config::keys::canonical_key;
use crate::config::settings::PipeSettings;
use crate::config::ConfigError;
use crate::event::EventType;
use crate::registry::{self, SinkPlugin};

/// Reads and validates the pipe section `section` named `name` (the part after `Pipe.`).
pub(super) fn parse_pipe(
    section: &IniSection,
    name: &str,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<PipeConfig, ConfigError> {
    check_pipe_name(section, name, path)?;
    let entries = PipeEntries::sort(section, name, path, warnings)?;
    let plugin = find_sink(entries.to, section, name, path)?;
    if entries.from.is_empty() {
        warnings.push(format!(
            "{} line {}: pipe {name} has no From event types; it receives nothing",
            path.display(),
            section.line
        ));
    }
    let settings = PipeSettings {
        pipe: name.to_string(),
        file: path.to_path_buf(),
        line: section.line,
        settings: check_sink_keys(plugin, &entries.rest, name, path, warnings)?,
    };
    // Build once to validate the sink's values; building does no I/O.
    (plugin.build)(&settings)?;
    Ok(PipeConfig {
        name: name.to_string(),
        from: entries.from,
        max: entries.max.map_or(DEFAULT_MAX, |(n, _)| n),
        to: plugin.name.to_string(),
        settings,
    })
}

/// A pipe name is made of A-Z a-z 0-9 _ - only (it names spool files and metrics labels).
fn check_pipe_name(section: &IniSection, name: &str, path: &Path) -> Result<(), ConfigError> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Ok(());
    }
    Err(ConfigError::at(
        path,
        section.line,
        format!("pipe name {name:?} must be made of A-Z a-z 0-9 _ - only"),
    ))
}

/// A pipe section's lines sorted into the keys every pipe has and the sink's own.
struct PipeEntries<'a> {
    /// The event types of every `From` line, in order, without repeats.
    from: Vec<EventType>,
    /// The first `Max` and its line.
    max: Option<(u32, usize)>,
    /// The first `To`.
    to: Option<&'a IniEntry>,
    /// Every other line, for the sink.
    rest: Vec<&'a IniEntry>,
}

impl<'a> PipeEntries<'a> {
    /// Sorts the lines of `section`, checking `From` and `Max` and warning of repeated `Max`/`To`.
    fn sort(
        section: &'a IniSection,
        name: &str,
        path: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let mut entries = PipeEntries {
            from: Vec::new(),
            max: None,
            to: None,
            rest: Vec::new(),
        };
        for entry in &section.entries {
            let at = |msg: String| ConfigError::at(path, entry.line, format!("pipe {name}: {msg}"));
            match canonical_key(&entry.key).as_str() {
                "from" => add_from(&mut entries.from, &entry.value).map_err(at)?,
                "max" => {
                    let n = parse_max(&entry.value).map_err(at)?;
                    match entries.max {
                        None => entries.max = Some((n, entry.line)),
                        Some((_, first)) => warnings.push(repeat_warning(path, entry, first)),
                    }
                }
                "to" => match entries.to {
                    None => entries.to = Some(entry),
                    Some(first) => warnings.push(repeat_warning(path, entry, first.line)),
                },
                _ => entries.rest.push(entry),
            }
        }
        Ok(entries)
    }
}

/// Adds the event types of a `From` value (comma-separated) to `from`, skipping repeats.
fn add_from(from: &mut Vec<EventType>, value: &str) -> Result<(), String> {
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let t: EventType = part.parse().map_err(|e| format!("From: {e}"))?;
        if !from.contains(&t) {
            from.push(t);
        }
    }
    Ok(())
}

/// A `Max` value: a positive integer.
fn parse_max(value: &str) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("Max {value:?} is not a positive integer"))
}

/// The registered sink a pipe's `To` names; an error lists the sinks this broker has.
fn find_sink(
    to: Option<&IniEntry>,
    section: &IniSection,
    name: &str,
    path: &Path,
) -> Result<&'static SinkPlugin, ConfigError> {
    let names = registry::names().join(", ");
    let to = to.ok_or_else(|| {
        ConfigError::at(
            path,
            section.line,
            format!("pipe {name}: missing To (one of: {names})"),
        )
    })?;
    registry::find(&to.value).ok_or_else(|| {
        ConfigError::at(
            path,
            to.line,
            format!(
                "pipe {name}: To: unknown sink {:?} (this broker has: {names})",
                to.value
            ),
        )
    })
}
