//! The broker's main job on an embedded default: start the API simulator, write a config with a
//! file pipe and a syslog pipe to a local UDP receiver, run setup, pull once, and print what
//! landed.
//!
//! Run it with `cargo run --release --example quickstart`.

use std::process::ExitCode;
use std::time::Duration;

use broker_core::config::BrokerConfig;
use broker_sim::{SimOptions, Simulator};

const BROKER: &str = "quickstart1";

#[tokio::main]
async fn main() -> ExitCode {
    broker_cli::plugins::link();
    broker_cli::logging::init(tracing_level());
    match quickstart().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("quickstart failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tracing_level() -> broker_cli::logging::Level {
    broker_cli::logging::Level::INFO
}

async fn quickstart() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let sim = Simulator::start(SimOptions::default()).await?;
    sim.add_broker(BROKER, "Quickstart Broker");
    let expires = chrono::Utc::now() + chrono::Duration::days(3);
    sim.add_setup_code(BROKER, "quickstart-setup-code", expires);
    for queue in ["alerts", "endpoint_stats", "log_authn", "log_changes"] {
        sim.enqueue_generated(queue, 3)?;
    }
    let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;

    let dir = std::env::temp_dir().join(format!("procustodibus-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let jsonl = dir.join("all.jsonl");
    let config_path = dir.join("broker.conf");
    std::fs::write(
        &config_path,
        format!(
            "[Broker]\nBroker = {BROKER}\nApi = {}\nSpool = {}\n\n\
             [Pipe.AllToFile]\nFrom = alerts, endpoint_stats, log_authn, log_changes\nMax = 100\nTo = file\nFile = {}\n\n\
             [Pipe.AlertsToSyslog]\nFrom = alerts\nTo = syslog\nSocket = {}\nFacility = local0\nPriority = info\n",
            sim.url(),
            dir.join("spool").display(),
            jsonl.display(),
            syslog.local_addr()?
        ),
    )?;
    std::fs::write(
        dir.join("broker-setup.conf"),
        format!(
            "[Broker.Setup]\nCode = quickstart-setup-code\nExpires = {}\n",
            expires.format("%Y-%m-%dT%H:%M:%SZ")
        ),
    )?;
    println!(
        "simulator at {}; broker files in {}",
        sim.url(),
        dir.display()
    );

    let config = BrokerConfig::load(&config_path)?;
    let code = broker_cli::run::run(&config, None).await;

    println!("\n--- {} ---", jsonl.display());
    print!("{}", std::fs::read_to_string(&jsonl).unwrap_or_default());
    println!(
        "\n--- syslog datagrams received on {} ---",
        syslog.local_addr()?
    );
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(200), syslog.recv(&mut buf)).await
    {
        println!(
            "{}",
            String::from_utf8_lossy(&buf[..n]).replace('\0', "\\0")
        );
    }
    let credentials = dir.join("broker-credentials.conf");
    println!(
        "\n--- {} (written by setup, mode 0600; private key not shown) ---",
        credentials.display()
    );
    for line in std::fs::read_to_string(&credentials)
        .unwrap_or_default()
        .lines()
    {
        if !line.to_ascii_lowercase().starts_with("privatekey") {
            println!("{line}");
        }
    }
    Ok(code)
}
