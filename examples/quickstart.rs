//! The broker's main job on an embedded default: start the API simulator (`broker_examples::Demo`,
//! shared with the other examples' no-argument runs), write a config with a
//! file pipe and a syslog pipe to a local UDP receiver, run setup, pull once, and print what
//! landed.
//!
//! Run it with `cargo run --release --example quickstart`.

use std::process::ExitCode;
use std::time::Duration;

use broker_examples::{Demo, DEMO_QUEUES};

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
    let demo = Demo::start("quickstart").await?;
    let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let jsonl = demo.dir.join("all.jsonl");
    let code = demo
        .run_once(&format!(
            "[Pipe.AllToFile]\nFrom = {}\nMax = 100\nTo = file\nFile = {}\n\n\
             [Pipe.AlertsToSyslog]\nFrom = alerts\nTo = syslog\nSocket = {}\nFacility = local0\nPriority = info\n",
            DEMO_QUEUES.join(", "),
            jsonl.display(),
            syslog.local_addr()?
        ))
        .await?;

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
    let credentials = demo.dir.join("broker-credentials.conf");
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
