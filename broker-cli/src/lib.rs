//! The `procustodibus-broker` and `procustodibus-broker-credentials` commands.
//!
//! A thin layer over [`broker_core`]: flags ([`args`]), log format ([`logging`]), the one-shot
//! and looping runs ([`run`]), the `--test` report ([`report`]), `--test-pipe`
//! ([`test_pipe`]), `--check-config` ([`check_config`]), `--dead-letter` and
//! `--redeliver-dead-letter` ([`dead_letter`]); as root, every mode first refuses a
//! configuration another user can change ([`root_guard`]); systemd notifications ([`notify`]);
//! the opt-in metrics and health endpoints ([`metrics`]).
//! A custom build is its sink crates plus one call to [`main`].

pub mod args;
pub mod check_config;
pub mod dead_letter;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod plugins;
pub mod report;
pub mod root_guard;
pub mod run;
pub mod signals;
pub mod status;
pub mod test_pipe;

use std::path::Path;
use std::process::ExitCode;

use broker_core::config::{find_config, BrokerConfig, ConfigError};
use clap::Parser;

use crate::args::{BrokerArgs, CredentialsArgs, LogArgs};

/// Env variable naming the config file.
pub const CONF_ENV: &str = "PROCUSTODIBUS_CONF";
/// Env variable naming the log level.
pub const LEVEL_ENV: &str = "PROCUSTODIBUS_LOGGING_LEVEL";

/// Runs `procustodibus-broker` with the process's arguments and returns its exit status.
pub fn main() -> ExitCode {
    let args = BrokerArgs::parse();
    if args.list_sinks {
        plugins::link();
        print!("{}", plugins::list_sinks());
        return ExitCode::SUCCESS;
    }
    if args.status {
        // No log output: standard output is the status alone (JSON with --json).
        plugins::link();
        return match load_config(args.config.as_deref(), Secrets::Unread) {
            Ok(config) => status::run(&config, args.json),
            Err(e) => fail(&e.to_string()),
        };
    }
    // The dead-letter summary only reads the spool, as --status does: it never opens the
    // credentials or setup file, so a daemon-owned one (as setup leaves it) does not stop root.
    let secrets = if args.dead_letter {
        Secrets::Unread
    } else {
        Secrets::Read
    };
    with_config(
        &args.log,
        args.config.as_deref(),
        secrets,
        |config| async move {
            if args.test {
                return report::run(&config).await;
            }
            if args.check_config {
                return check_config::run(&config);
            }
            if args.dead_letter {
                return dead_letter::summary(&config);
            }
            if let Some(pipe) = &args.redeliver_dead_letter {
                return dead_letter::redeliver(&config, pipe.as_deref());
            }
            if let Some(name) = &args.test_pipe {
                return test_pipe::run(&config, name).await;
            }
            run::run(&config, args.loop_seconds).await
        },
    )
}

/// Runs `procustodibus-broker-credentials` (setup only) and returns its exit status.
pub fn credentials_main() -> ExitCode {
    let args = CredentialsArgs::parse();
    with_config(
        &args.log,
        args.config.as_deref(),
        Secrets::Read,
        |config| async move { run::setup_only(&config).await },
    )
}

/// Starts logging and the runtime, loads broker.conf, and runs `body` with it.
fn with_config<F, Fut>(log: &LogArgs, config: Option<&Path>, secrets: Secrets, body: F) -> ExitCode
where
    F: FnOnce(BrokerConfig) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    plugins::link();
    if let Err(code) = start_logging(log) {
        return code;
    }
    let config = match load_config(config, secrets) {
        Ok(config) => config,
        Err(e) => return fail(&e.to_string()),
    };
    with_runtime(|| body(config))
}

fn start_logging(args: &LogArgs) -> Result<(), ExitCode> {
    let env = std::env::var(LEVEL_ENV).ok();
    match logging::level(args, env.as_deref()) {
        Ok(level) => {
            logging::init(level);
            Ok(())
        }
        Err(e) => Err(fail(&e)),
    }
}

/// Whether a mode opens the credentials and setup files (and so whether, as root, they must be
/// root's alone).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Secrets {
    /// The mode reads them, or setup writes them: a run, `--test`, `--test-pipe`,
    /// `--check-config`, the credentials tool.
    Read,
    /// The mode only reads the spool (`--status`, `--dead-letter`).
    Unread,
}

/// Finds and loads broker.conf, logging its warnings; as root, first refuses a configuration
/// another user can change ([`root_guard`]): broker.conf always, the credentials and setup files
/// when the mode opens them.
fn load_config(explicit: Option<&Path>, secrets: Secrets) -> Result<BrokerConfig, ConfigError> {
    let env = std::env::var(CONF_ENV).ok();
    let path = find_config(explicit, env.as_deref())?;
    root_guard::check(&[&path]).map_err(ConfigError::other)?;
    let config = BrokerConfig::load(&path)?;
    if secrets == Secrets::Read {
        root_guard::check(&[&config.credentials_path, &config.setup_path])
            .map_err(ConfigError::other)?;
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

fn with_runtime<F, Fut>(body: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    broker_core::install_crypto_provider();
    limit_malloc_arenas();
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
    {
        Ok(runtime) => {
            let code = runtime.block_on(async {
                signals::keep_hangup_harmless();
                body().await
            });
            // A file write stuck in a blocking thread must not keep the process from exiting.
            runtime.shutdown_timeout(std::time::Duration::from_millis(500));
            code
        }
        Err(e) => fail(&format!("cannot start the async runtime: {e}")),
    }
}

/// glibc gives each thread that allocates its own arena and keeps what is freed there; with a
/// few runtime and blocking threads that doubles the broker's memory for nothing. One arena is
/// enough for a broker's few threads (measured with drain-bench: peak RSS 52 MB -> 25 MB at
/// `Max = 1000`, the same throughput).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning parameter of the allocator, before threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Prints a one-line error on standard error and gives exit status 1.
pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::FAILURE
}
