//! The command line of `procustodibus-broker` and `procustodibus-broker-credentials`.

use std::path::PathBuf;

use clap::{ArgAction, Parser};

/// `procustodibus-broker`: pulls events from Pro Custodibus and pushes them to the pipes' sinks.
#[derive(Debug, Parser)]
#[command(
    name = "procustodibus-broker",
    version,
    about = "Pulls events from the Pro Custodibus API and pushes them to each pipe's sink.",
    after_help = "Environment: PROCUSTODIBUS_CONF (config path), PROCUSTODIBUS_LOGGING_LEVEL (log level)."
)]
pub struct BrokerArgs {
    /// Path to broker.conf (default: search ./broker.conf, /usr/local/etc/procustodibus/broker/, /etc/procustodibus/broker/ ...).
    #[arg(short = 'c', long = "config", value_name = "CONFIG")]
    pub config: Option<PathBuf>,

    /// Poll every SECONDS seconds instead of once.
    #[arg(short = 'l', long = "loop", value_name = "SECONDS", value_parser = parse_seconds)]
    pub loop_seconds: Option<f64>,

    /// Check connectivity and access to the API, print a report, and exit.
    #[arg(long, conflicts_with_all = ["loop_seconds", "test_pipe"])]
    pub test: bool,

    /// Send a test event to the pipe NAME (case-insensitive) and exit.
    #[arg(
        long = "test-pipe",
        value_name = "NAME",
        conflicts_with = "loop_seconds"
    )]
    pub test_pipe: Option<String>,

    /// Validate the config, the credentials (or setup) file, the pipes' sinks and the spool
    /// directory, without network or writes, and exit.
    #[arg(long = "check-config", conflicts_with_all = ["loop_seconds", "test", "test_pipe"])]
    pub check_config: bool,

    /// Print the running daemon's state (a line per pipe and per queue, then a verdict) and
    /// exit 0 when healthy, 1 when unhealthy, 3 when no daemon runs. Read-only.
    #[arg(long, conflicts_with_all = ["loop_seconds", "test", "test_pipe", "check_config", "list_sinks"])]
    pub status: bool,

    /// With --status: print it as one JSON object.
    #[arg(long, requires = "status")]
    pub json: bool,

    /// Print the sinks this binary has, with the keys each accepts, and exit (no config needed).
    #[arg(long = "list-sinks", conflicts_with_all = ["loop_seconds", "test", "test_pipe", "check_config"])]
    pub list_sinks: bool,

    /// Print a summary of the spool's dead-letter file (per pipe and reason: counts, oldest and
    /// newest) and exit.
    #[arg(long = "dead-letter", conflicts_with_all = ["loop_seconds", "test", "test_pipe", "check_config", "list_sinks", "status"])]
    pub dead_letter: bool,

    /// Put the dead letters of every pipe (or of the pipe PIPE, case-insensitive) back in the
    /// spool for their pipes, remove them from the dead-letter file, and exit; the running
    /// daemon (or the next run) delivers them.
    #[arg(
        long = "redeliver-dead-letter",
        value_name = "PIPE",
        num_args = 0..=1,
        conflicts_with_all = ["loop_seconds", "test", "test_pipe", "check_config", "list_sinks", "dead_letter", "status"]
    )]
    pub redeliver_dead_letter: Option<Option<String>>,

    #[command(flatten)]
    pub log: LogArgs,
}

/// `procustodibus-broker-credentials`: runs setup only.
#[derive(Debug, Parser)]
#[command(
    name = "procustodibus-broker-credentials",
    version,
    about = "Trades the one-time code of broker-setup.conf for the broker's credentials file.",
    after_help = "Environment: PROCUSTODIBUS_CONF (config path), PROCUSTODIBUS_LOGGING_LEVEL (log level)."
)]
pub struct CredentialsArgs {
    /// Path to broker.conf (default: the same search as procustodibus-broker).
    #[arg(short = 'c', long = "config", value_name = "CONFIG")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub log: LogArgs,
}

/// The logging flags shared by both commands.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// More log output: -v for INFO, -vv for DEBUG.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    /// Log level: ERROR, WARNING, INFO or DEBUG (default WARNING).
    #[arg(long, value_name = "LEVEL")]
    pub verbosity: Option<String>,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if (0.0..=31_536_000.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "{text:?} is not a number of seconds (0 to 31536000)"
        )),
    }
}
