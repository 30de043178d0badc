//! Example programs for the Pro Custodibus broker; each is a file in this folder, run with
//! `cargo run --example NAME`:
//!
//! - `quickstart`: the broker's main job against the simulator.
//! - `stdout_sink`: the smallest sink plugin, in a whole daemon (`-- --config broker.conf`); with
//!   no arguments, one round against the embedded simulator ([`run_demo`]).
//! - `embed`: a pipeline in process, from a config string and an in-memory source.
//!
//! Beside them, two crates: `webhook-sink` (a sink crate) and `custom-broker` (the stock daemon
//! plus that sink; with no arguments, one round against the embedded simulator and a local HTTP
//! receiver, [`run_http_demo`]). The guide `docs/writing-a-sink.md` is compiled here as doctests.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use broker_core::config::{find_config, BrokerConfig};
use broker_sim::{SimOptions, Simulator};

/// The broker id the demos register with the simulator.
const DEMO_BROKER: &str = "demo1";
/// The setup code the demos give the simulator and the broker.
const DEMO_SETUP_CODE: &str = "demo-setup-code";
/// The queues the demos fill, three events each.
pub const DEMO_QUEUES: [&str; 4] = ["alerts", "endpoint_stats", "log_authn", "log_changes"];

/// True when a program was started with no arguments and the daemon would find no config (no
/// `PROCUSTODIBUS_CONF`, no `broker.conf` on the search path): an example then runs a demo
/// against the embedded simulator. Given a config in any of those ways, it is the daemon.
pub fn no_config_given() -> bool {
    let env = std::env::var("PROCUSTODIBUS_CONF").ok();
    std::env::args_os().len() <= 1 && find_config(None, env.as_deref()).is_err()
}

/// The embedded API simulator with a broker, its setup code and three events in each of
/// [`DEMO_QUEUES`], and a fresh directory for the broker's files.
pub struct Demo {
    /// The simulator the broker talks to.
    pub sim: Simulator,
    /// The directory of the config, setup, credentials and spool.
    pub dir: PathBuf,
}

impl Demo {
    /// Starts the simulator and makes the directory `procustodibus-NAME-PID` in the temp dir.
    pub async fn start(name: &str) -> Result<Demo, Box<dyn Error>> {
        let sim = Simulator::start(SimOptions::default()).await?;
        sim.add_broker(DEMO_BROKER, "Demo Broker");
        let expires = chrono::Utc::now() + chrono::Duration::days(3);
        sim.add_setup_code(DEMO_BROKER, DEMO_SETUP_CODE, expires);
        for queue in DEMO_QUEUES {
            sim.enqueue_generated(queue, 3)?;
        }
        let dir = std::env::temp_dir().join(format!("procustodibus-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("broker-setup.conf"),
            format!(
                "[Broker.Setup]\nCode = {DEMO_SETUP_CODE}\nExpires = {}\n",
                expires.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        )?;
        println!(
            "simulator at {}; broker files in {}",
            sim.url(),
            dir.display()
        );
        Ok(Demo { sim, dir })
    }

    /// Writes `broker.conf` with `pipes` (`[Pipe.NAME]` sections) and runs the broker once: setup,
    /// then one pull and delivery. Returns the broker's exit code.
    pub async fn run_once(&self, pipes: &str) -> Result<ExitCode, Box<dyn Error>> {
        let config_path = self.dir.join("broker.conf");
        std::fs::write(
            &config_path,
            format!(
                "[Broker]\nBroker = {DEMO_BROKER}\nApi = {}\nSpool = {}\n\n{pipes}",
                self.sim.url(),
                self.dir.join("spool").display()
            ),
        )?;
        let config = BrokerConfig::load(&config_path)?;
        Ok(broker_cli::run::run(&config, None).await)
    }
}

/// What an example started with no config does: runs the stock sinks and the program's own
/// (`pipes`, `[Pipe.NAME]` sections) once against a fresh [`Demo`], logging at info.
pub fn run_demo(name: &str, pipes: &str) -> ExitCode {
    run_in_runtime(name, async {
        let demo = Demo::start(name).await?;
        demo.run_once(pipes).await
    })
}

/// Like [`run_demo`] for a sink that POSTs over HTTP: starts a local receiver that answers 200 and
/// prints each request body's lines after `received: `, and runs the pipes `pipes(url)` give.
pub fn run_http_demo(name: &str, pipes: fn(&str) -> String) -> ExitCode {
    run_in_runtime(name, async {
        let url = start_http_receiver().await?;
        let demo = Demo::start(name).await?;
        demo.run_once(&pipes(&url)).await
    })
}

/// Links the stock sinks, starts logging at info and runs `demo` to its end on a new runtime.
fn run_in_runtime<F>(name: &str, demo: F) -> ExitCode
where
    F: std::future::Future<Output = Result<ExitCode, Box<dyn Error>>>,
{
    broker_cli::plugins::link();
    broker_core::install_crypto_provider();
    broker_cli::logging::init(broker_cli::logging::Level::INFO);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name} demo failed: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{name} demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Listens on 127.0.0.1 and answers every HTTP request `200 OK` (closing the connection) after
/// printing its body's lines; returns the receiver's `http://` URL.
async fn start_http_receiver() -> Result<String, Box<dyn Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/events", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer_http_request(stream));
        }
    });
    Ok(url)
}

/// Reads one request (headers, then `Content-Length` bytes of body), prints the body's lines
/// and answers `200 OK`.
async fn answer_http_request(mut stream: tokio::net::TcpStream) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    let header_end = loop {
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    };
    let headers = String::from_utf8_lossy(&request[..header_end]).to_ascii_lowercase();
    let length: usize = headers
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < header_end + length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    for line in String::from_utf8_lossy(&request[header_end..]).lines() {
        println!("received: {line}");
    }
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await?;
    stream.shutdown().await
}

/// The code blocks of `docs/writing-a-sink.md`, compiled and run by `cargo test` as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/writing-a-sink.md")]
pub struct WritingASinkGuide;

#[cfg(test)]
mod tests {
    const GUIDE: &str = include_str!("../docs/writing-a-sink.md");

    /// The guide shows these files whole, in a Rust block: they must be the files as they are.
    #[test]
    fn the_guide_shows_the_example_files_as_they_are() {
        for (name, text) in [
            ("stdout_sink.rs", include_str!("stdout_sink.rs")),
            (
                "custom-broker/src/main.rs",
                include_str!("custom-broker/src/main.rs"),
            ),
        ] {
            let block = format!("```rust,no_run\n{text}```\n");
            assert!(
                GUIDE.contains(&block),
                "docs/writing-a-sink.md does not show examples/{name} as it is: copy the file into its block"
            );
        }
    }

    /// The guide quotes the shutdown grace of a `deliver` from the daemon's code: the quote must
    /// be the code as it is.
    #[test]
    fn the_guide_quotes_the_shutdown_grace_as_the_code_has_it() {
        let code = include_str!("../broker-cli/src/run.rs");
        let at = code
            .find("/// How long the sinks may take")
            .expect("broker-cli/src/run.rs documents DELIVERY_GRACE");
        let quote: String = code[at..]
            .lines()
            .take(2)
            .map(|line| format!("  {line}\n"))
            .collect();
        assert!(quote.contains("const DELIVERY_GRACE"), "{quote}");
        assert!(
            GUIDE.contains(&format!("  ```text\n{quote}  ```\n")),
            "docs/writing-a-sink.md does not quote DELIVERY_GRACE as broker-cli/src/run.rs has it:\n{quote}"
        );
    }
}
