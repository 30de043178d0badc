//! Embedding the broker: a pipeline built from a config string, fed by an in-memory source
//! instead of the Pro Custodibus API, with an in-memory spool, all in this process.
//!
//! Run it with `cargo run --example embed`. It prints what the run did and the file pipe's lines.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use broker_core::config::BrokerConfig;
use broker_core::pipeline::Pipeline;
use broker_core::source::MemorySource;
use broker_core::spool::Spool;
use broker_core::{Event, EventType};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The stock sinks live in another crate: name it so the linker keeps their registrations.
    broker_sinks::link();

    let dir = std::env::temp_dir().join(format!("procustodibus-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("events.jsonl");
    let config_text = format!(
        "[Broker]\nBroker = embedded\n\n\
         [Pipe.Everything]\nFrom = alerts, log_authn\nMax = 10\nTo = file\nFile = {}\n",
        file.display()
    );
    // The path only names the config in error messages.
    let config = BrokerConfig::parse(&config_text, Path::new("embedded broker.conf"))?;

    let source = Arc::new(MemorySource::new());
    for n in 1..=3 {
        let alert = format!(r#"{{"type":"alerts","id":"alert-{n}","attributes":{{"n":{n}}}}}"#);
        source.push(Event::from_json(EventType::Alerts, &alert)?);
    }
    let login = r#"{"type":"log_authn","id":"login-1","attributes":{"user":"José"}}"#;
    source.push(Event::from_json(EventType::LogAuthn, login)?);

    let spool = Arc::new(Spool::in_memory(1 << 20, &config.pipes));
    let report = Pipeline::new(&config.pipes)?.run_once(source, spool).await;
    println!(
        "pulled {}, delivered {}, failures {}",
        report.pulled,
        report.delivered,
        report.failures.len()
    );
    print!("{}", std::fs::read_to_string(&file)?);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
