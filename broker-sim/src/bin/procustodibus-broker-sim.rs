//! `procustodibus-broker-sim`: run the Pro Custodibus API simulator on 127.0.0.1 for a quick
//! start or a dry run of the broker, with a broker, a fresh setup code and generated events,
//! and the broker's config files written next to it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use broker_sim::{AnswerStyle, EventType, SimOptions, Simulator};
use chrono::{SecondsFormat, Utc};
use clap::Parser;

/// Run a simulator of the Pro Custodibus API on 127.0.0.1 until SIGINT or SIGTERM.
///
/// It creates a broker with a fresh one-time setup code, queues generated events of every
/// type, prints the API URL plus a matching broker.conf and broker-setup.conf (and writes them
/// into --dir), then serves. Drive it further through the admin routes under /_admin/
/// (e.g. `curl URL/_admin/queues`).
#[derive(Debug, Parser)]
#[command(name = "procustodibus-broker-sim", version)]
struct Args {
    /// Port to listen on at 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Directory to write broker.conf and broker-setup.conf into
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Generated events to queue per event type
    #[arg(long, value_name = "N", default_value_t = 20)]
    events: usize,
    /// Broker id
    #[arg(long, value_name = "ID", default_value = "abcdef12345")]
    broker: String,
    /// Broker display name (answered by the hello call)
    #[arg(long, default_value = "Simulated Broker")]
    name: String,
    /// Seed of the event generator
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Session lifetime in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    session_lifetime: u64,
    /// How answers are written: `plain`, or `tolerant` (extra members, nulls and other types in
    /// members a client does not use, extra data elements)
    #[arg(long, value_name = "STYLE", default_value = "plain")]
    answer_style: AnswerStyle,
    /// Log every API request to standard error
    #[arg(short, long)]
    verbose: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let level = if args.verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(level)
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("procustodibus-broker-sim: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if args.broker.is_empty() || args.broker.contains(['/', '#']) {
        return Err("--broker must be non-empty and contain no '/' or '#'".to_string());
    }
    let options = SimOptions {
        port: args.port,
        seed: args.seed,
        session_lifetime: Duration::from_secs(args.session_lifetime),
        answer_style: args.answer_style,
        ..SimOptions::default()
    };
    let sim = Simulator::start(options).await.map_err(|e| e.to_string())?;
    let code = setup_code()?;
    let expires = Utc::now() + chrono::Duration::days(3);
    sim.add_broker(&args.broker, &args.name);
    sim.add_setup_code(&args.broker, &code, expires);
    for event_type in EventType::ALL {
        sim.enqueue_generated(event_type.as_str(), args.events)
            .map_err(|e| e.to_string())?;
    }

    let broker_conf = broker_conf(&sim.url(), &args.broker, args.dir.as_deref());
    let setup_conf = format!(
        "[Broker.Setup]\nCode = {code}\nExpires = {}\n",
        expires.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    let mut out = String::new();
    let _ = writeln!(out, "Pro Custodibus API simulator at {}", sim.url());
    let _ = writeln!(
        out,
        "broker {} ({}); {} events queued per type; admin: {}/_admin/queues",
        args.broker,
        args.name,
        args.events,
        sim.url()
    );
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        write_file(&dir.join("broker.conf"), &broker_conf)?;
        write_file(&dir.join("broker-setup.conf"), &setup_conf)?;
        let _ = writeln!(
            out,
            "wrote broker.conf and broker-setup.conf to {}",
            dir.display()
        );
    }
    let _ = write!(
        out,
        "\n--- broker.conf ---\n{broker_conf}\n--- broker-setup.conf ---\n{setup_conf}"
    );
    println!("{out}");

    wait_for_signal().await?;
    sim.shutdown();
    Ok(())
}

/// A fresh one-time setup code: 16 random bytes as hex.
fn setup_code() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A broker.conf for this simulator, with two example pipes commented out.
fn broker_conf(url: &str, broker: &str, dir: Option<&Path>) -> String {
    let log_dir = dir
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "/var/log/procustodibus/broker".to_string());
    format!(
        "# broker.conf for the Pro Custodibus API simulator at {url}\n\
         [Broker]\n\
         Broker = {broker}\n\
         Api = {url}\n\
         \n\
         # Uncomment a pipe (or both) to send events somewhere:\n\
         # [Pipe.Stats]\n\
         # From = endpoint_stats\n\
         # Max = 100\n\
         # To = file\n\
         # File = {log_dir}/stats.jsonl\n\
         #\n\
         # [Pipe.Security]\n\
         # From = alerts, log_authn, log_changes\n\
         # To = syslog\n\
         # Socket = localhost:514\n\
         # Facility = local0\n\
         # Tag = procustodibus\n"
    )
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(unix)]
async fn wait_for_signal() -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.map_err(|e| format!("cannot watch SIGINT: {e}")),
        _ = terminate.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<(), String> {
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot watch Ctrl-C: {e}"))
}
