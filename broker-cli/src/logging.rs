//! Log lines on standard output in the existing broker's form:
//! `2022-01-01 12:34:56,789 procustodibus_broker.api ERROR: message`.

use std::fmt;

pub use tracing::Level;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::args::LogArgs;

/// The log level from the flags, else `PROCUSTODIBUS_LOGGING_LEVEL`, else WARNING. An unknown
/// name is an error naming it.
pub fn level(args: &LogArgs, env: Option<&str>) -> Result<Level, String> {
    if let Some(name) = &args.verbosity {
        return parse_level(name).ok_or_else(|| {
            format!("--verbosity {name:?} is not one of ERROR, WARNING, INFO, DEBUG")
        });
    }
    match args.verbose {
        0 => {}
        1 => return Ok(Level::INFO),
        _ => return Ok(Level::DEBUG),
    }
    match env.map(str::trim).filter(|e| !e.is_empty()) {
        Some(name) => parse_level(name).ok_or_else(|| {
            format!(
                "PROCUSTODIBUS_LOGGING_LEVEL {name:?} is not one of ERROR, WARNING, INFO, DEBUG"
            )
        }),
        None => Ok(Level::WARN),
    }
}

fn parse_level(name: &str) -> Option<Level> {
    match name.trim().to_ascii_uppercase().as_str() {
        "CRITICAL" | "FATAL" | "ERROR" => Some(Level::ERROR),
        "WARNING" | "WARN" => Some(Level::WARN),
        "INFO" => Some(Level::INFO),
        "DEBUG" => Some(Level::DEBUG),
        "TRACE" => Some(Level::TRACE),
        _ => None,
    }
}

/// Sets up logging to standard output at `level`.
pub fn init(level: Level) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .event_format(PythonStyle)
        .try_init();
}

/// The existing broker's line format.
struct PythonStyle;

impl<S, N> FormatEvent<S, N> for PythonStyle
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let now = chrono::Local::now();
        write!(
            writer,
            "{} procustodibus_broker.{} {}: ",
            now.format("%Y-%m-%d %H:%M:%S,%3f"),
            module_name(meta.target()),
            level_name(*meta.level())
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// `broker_core::api::source` -> `api`; `broker_sinks::syslog` -> `syslog`; `broker_cli` -> `cli`.
fn module_name(target: &str) -> &str {
    let mut parts = target.split("::");
    let krate = parts.next().unwrap_or(target);
    match parts.next() {
        Some(module) => module,
        None => krate.strip_prefix("broker_").unwrap_or(krate),
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        let args = |v: u8, s: Option<&str>| LogArgs {
            verbose: v,
            verbosity: s.map(String::from),
        };
        assert_eq!(level(&args(0, None), None).unwrap(), Level::WARN);
        assert_eq!(level(&args(1, None), Some("error")).unwrap(), Level::INFO);
        assert_eq!(level(&args(2, None), None).unwrap(), Level::DEBUG);
        assert_eq!(level(&args(0, Some("error")), None).unwrap(), Level::ERROR);
        assert_eq!(level(&args(0, None), Some("debug")).unwrap(), Level::DEBUG);
        assert!(level(&args(0, Some("loud")), None).is_err());
    }

    #[test]
    fn module_names() {
        assert_eq!(module_name("broker_core::api::source"), "api");
        assert_eq!(module_name("broker_cli"), "cli");
    }
}
