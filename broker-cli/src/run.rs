//! The broker's main job: poll once, or every `--loop` seconds until SIGTERM or SIGINT.

use std::process::ExitCode;
use std::time::Duration;

use broker_core::api::{prepare_credentials, setup_from_file, ApiClient, ApiSource, SetupError};
use broker_core::config::BrokerConfig;
use broker_core::pipeline::Pipeline;
use tokio::signal::unix::{signal, SignalKind};

use crate::fail;

/// Runs setup if a setup file exists, then polls once (`loop_seconds` None) or in a loop.
pub async fn run(config: &BrokerConfig, loop_seconds: Option<f64>) -> ExitCode {
    let client = match ApiClient::new(&config.api, &config.broker, config.timeout) {
        Ok(client) => client,
        Err(e) => return fail(&e.to_string()),
    };
    let mut pipeline = match Pipeline::new(&config.pipes) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    if config.pipes.is_empty() {
        tracing::warn!(
            "{}: no [Pipe.NAME] sections: nothing to do",
            config.path.display()
        );
    }
    // `--loop 0` means no loop, as in the existing broker.
    match loop_seconds.filter(|s| *s > 0.0) {
        None => {
            let credentials = match prepare_credentials(config, &client).await {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string()),
            };
            let source = ApiSource::new(client, credentials);
            let report = pipeline.poll(&source).await;
            pipeline.close().await;
            if report.failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Some(seconds) => {
            run_loop(
                config,
                client,
                &mut pipeline,
                Duration::from_secs_f64(seconds),
            )
            .await
        }
    }
}

/// What stopped a wait.
enum Wake {
    Timer,
    Reopen,
    Stop,
}

/// Signals the loop listens to.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn sleep(&mut self, duration: Duration) -> Wake {
        tokio::select! {
            _ = tokio::time::sleep(duration) => Wake::Timer,
            _ = self.term.recv() => Wake::Stop,
            _ = self.int.recv() => Wake::Stop,
            _ = self.hup.recv() => Wake::Reopen,
        }
    }
}

async fn run_loop(
    config: &BrokerConfig,
    client: ApiClient,
    pipeline: &mut Pipeline,
    every: Duration,
) -> ExitCode {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot listen for signals: {e}")),
    };
    check_connectivity(&client).await;
    // Credentials: a missing file is fatal; an API that is down is retried every round.
    let credentials = loop {
        match prepare_credentials(config, &client).await {
            Ok(c) => break c,
            Err(SetupError::Api(e)) => tracing::error!("cannot register the broker's key: {e}"),
            Err(e) => return fail(&e.to_string()),
        }
        if wait(&mut signals, every, pipeline).await {
            return ExitCode::SUCCESS;
        }
    };
    let mut source = ApiSource::new(client, credentials);
    loop {
        // A setup file dropped in while running is used at the next round: setup may have
        // replaced the old key at the API, so the new credentials take over at once.
        match setup_from_file(config, source.client()).await {
            Ok(Some(credentials)) => {
                tracing::info!(
                    "using the new credentials from {}",
                    config.setup_path.display()
                );
                source = ApiSource::new(source.client().clone(), credentials);
            }
            Ok(None) => {}
            Err(e) => tracing::error!("{e}"),
        }
        let report = pipeline.poll(&source).await;
        if report.failed() {
            check_connectivity(source.client()).await;
        }
        if wait(&mut signals, every, pipeline).await {
            break;
        }
    }
    pipeline.close().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Sleeps `every`, reopening sinks on SIGHUP; true when told to stop.
async fn wait(signals: &mut Signals, every: Duration, pipeline: &mut Pipeline) -> bool {
    let deadline = tokio::time::Instant::now() + every;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match signals.sleep(left).await {
            Wake::Timer => return false,
            Wake::Stop => return true,
            Wake::Reopen => {
                tracing::info!("SIGHUP: reopening sinks");
                pipeline.reopen().await;
            }
        }
    }
}

/// Logs whether the API answers and is healthy.
async fn check_connectivity(client: &ApiClient) {
    match client.health().await {
        Ok(entries) if !entries.is_empty() && entries.iter().all(|e| e.healthy) => {
            tracing::info!("healthy pro custodibus api at {}", client.base())
        }
        Ok(entries) => {
            for entry in entries.iter().filter(|e| !e.healthy) {
                tracing::error!("unhealthy pro custodibus api: {}", entry.error);
            }
            if entries.is_empty() {
                tracing::error!("unhealthy pro custodibus api: empty health answer");
            }
        }
        Err(e) => tracing::error!("pro custodibus api unavailable: {e}"),
    }
}

/// `procustodibus-broker-credentials`: runs setup with the setup file, or says why it cannot.
pub async fn setup_only(config: &BrokerConfig) -> ExitCode {
    let client = match ApiClient::new(&config.api, &config.broker, config.timeout) {
        Ok(client) => client,
        Err(e) => return fail(&e.to_string()),
    };
    match setup_from_file(config, &client).await {
        Ok(Some(_)) => {
            println!("credentials saved to {}", config.credentials_path.display());
            ExitCode::SUCCESS
        }
        Ok(None) => match prepare_credentials(config, &client).await {
            Ok(_) => {
                println!(
                    "no setup file at {}; credentials in {} are ready",
                    config.setup_path.display(),
                    config.credentials_path.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        },
        Err(e) => fail(&e.to_string()),
    }
}
