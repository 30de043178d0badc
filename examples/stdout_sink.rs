//! The smallest sink plugin: `stdout` prints each event's JSON line on standard output. With
//! `main` calling `broker_cli::main()`, this one file is a whole broker daemon whose pipes can
//! say `To = file`, `To = syslog` or `To = stdout`:
//!
//! ```text
//! cargo run --example stdout_sink -- --config broker.conf     # [Pipe.Screen] To = stdout
//! cargo run --example stdout_sink                             # a demo: see `main`
//! ```

use std::io::Write;

use async_trait::async_trait;
use broker_core::config::PipeSettings;
use broker_core::registry::{BuildError, SinkKey};
use broker_core::{Event, Sink, SinkError, SinkPlugin};
use broker_sinks::util::blocking::run_blocking;

/// Prints each event's line, after an optional prefix.
struct StdoutSink {
    prefix: String,
}

#[async_trait]
impl Sink for StdoutSink {
    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let mut text = String::new();
        for event in events {
            text.push_str(&self.prefix);
            text.push_str(event.line());
            text.push('\n');
        }
        // Writing may block (a full pipe): do it on tokio's blocking pool, not the runtime.
        // On a failure nothing counts as delivered, so the whole batch is sent again later.
        let written = run_blocking("writing task", move || {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()
        });
        written
            .await?
            .map_err(|e| SinkError::retry(0, format!("cannot write to stdout: {e}")))
    }
}

/// The keys a pipe with `To = stdout` may have, besides `From`, `Max` and `To`.
const KEYS: &[SinkKey] = &[SinkKey::one(
    "Prefix",
    "text printed before each event's line (default none)",
)];

/// Checks a pipe's keys and builds the sink, without I/O (`--check-config` calls it too).
fn build_stdout_sink(settings: &PipeSettings) -> Result<Box<dyn Sink>, BuildError> {
    let prefix = settings.keys(KEYS).value("Prefix").unwrap_or_default();
    Ok(Box::new(StdoutSink {
        prefix: prefix.to_string(),
    }))
}

inventory::submit! {
    SinkPlugin {
        name: "stdout",
        keys: KEYS,
        build: build_stdout_sink,
    }
}

/// The stock daemon: same flags and config, plus the sink above (it is in this binary's own
/// crate, so the linker keeps it; a sink in another crate needs `that_crate::link()`). With no
/// arguments and no config found (`PROCUSTODIBUS_CONF`, the search path), a demo instead: one
/// round against the embedded API simulator, with the sink printing two queues' events.
fn main() -> std::process::ExitCode {
    if broker_examples::no_config_given() {
        return broker_examples::run_demo(
            "stdout_sink",
            "[Pipe.Screen]\nFrom = alerts, log_changes\nTo = stdout\nPrefix = event:\n",
        );
    }
    broker_cli::main()
}
