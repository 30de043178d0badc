//! The broker's main job: poll once, or every `--loop` seconds until SIGTERM or SIGINT.
//!
//! Everything pulled goes through the spool (see `docs/reliability.md`): a one-shot run pulls
//! each queue once and delivers what the spool holds; a looping run keeps one delivery task per
//! pipe and drains every queue each round, backing off after API failures. In both, SIGTERM and
//! SIGINT start no new pull but let the pulls under way finish and be spooled (the API may have
//! dequeued their events), and SIGHUP never ends the run (see `crate::signals`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use broker_core::api::{prepare_credentials, setup_from_file, ApiClient, ApiSource, SetupError};
use broker_core::backoff::Backoff;
use broker_core::config::BrokerConfig;
use broker_core::pipeline::{Pipeline, Running};
use broker_core::spool::Spool;
use broker_core::status::StatusBoard;
use tokio::sync::watch;

use crate::fail;
use crate::notify::Notifier;
use crate::signals::{Signals, Wake};

/// How long the sinks may take to finish a delivery under way at SIGTERM and close.
const DELIVERY_GRACE: Duration = Duration::from_millis(1500);

/// Runs setup if a setup file exists, then polls once (`loop_seconds` None) or in a loop.
pub async fn run(config: &BrokerConfig, loop_seconds: Option<f64>) -> ExitCode {
    let client = match ApiClient::new(&config.api, &config.broker, config.timeout) {
        Ok(client) => client,
        Err(e) => return fail(&e.to_string()),
    };
    let pipeline = match Pipeline::new(&config.pipes) {
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
    let loop_seconds = loop_seconds.filter(|s| *s > 0.0);
    // Only a looping broker talks to systemd (see `crate::notify`).
    let notify = match loop_seconds {
        Some(_) => Notifier::from_env(),
        None => Notifier::off(),
    };
    let mut signals = match Signals::new(notify) {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot listen for signals: {e}")),
    };
    match loop_seconds {
        None => run_once(config, client, pipeline, signals).await,
        Some(seconds) => {
            // The pipes start at once and deliver what an earlier run left in the spool, while
            // the loop gets credentials (retrying an API that is down).
            let spool = match open_spool(config).await {
                Ok(spool) => Arc::new(spool),
                Err(e) => return fail(&e),
            };
            let every = Duration::from_secs_f64(seconds);
            let status = StatusBoard::new(spool.clone(), config, every);
            let running = pipeline.start_with_status(spool, status);
            run_loop(config, client, running, &mut signals, every).await
        }
    }
}

/// A run without `--loop`: setup and credentials (abandoned at SIGTERM or SIGINT), then one
/// pull per queue and one delivery pass. A stop signal during the pulls lets each pull under
/// way finish and be spooled, then the run ends without starting anything new.
async fn run_once(
    config: &BrokerConfig,
    client: ApiClient,
    pipeline: Pipeline,
    mut signals: Signals,
) -> ExitCode {
    let credentials = match signals
        .race(prepare_credentials(config, &client), None)
        .await
    {
        None => return stopped_before_pulling(),
        Some(Ok(c)) => c,
        Some(Err(e)) => return fail(&e.to_string()),
    };
    let spool = match open_spool(config).await {
        Ok(spool) => Arc::new(spool),
        Err(e) => return fail(&e),
    };
    let source = Arc::new(ApiSource::new(client, credentials));
    let (stop_tx, stop) = watch::channel(false);
    let run = pipeline.run_once_until(source, spool, stop);
    tokio::pin!(run);
    let report = loop {
        tokio::select! {
            report = &mut run => break report,
            wake = signals.next() => match wake {
                Wake::Reopen => signals.reopen(None),
                Wake::Stop => {
                    if !*stop_tx.borrow() {
                        tracing::info!("stopping: finishing the pulls under way");
                    }
                    let _ = stop_tx.send(true);
                }
            },
        }
    };
    if *stop_tx.borrow() {
        tracing::info!("stopped");
    }
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Logs and returns the exit status of a run stopped before it pulled anything.
fn stopped_before_pulling() -> ExitCode {
    tracing::info!("stopped before pulling anything");
    ExitCode::SUCCESS
}

/// Opens the spool of `config` (in a blocking thread: it reads and repairs files).
async fn open_spool(config: &BrokerConfig) -> Result<Spool, String> {
    let state_directory = std::env::var("STATE_DIRECTORY").ok();
    let dir = config.spool_dir(state_directory.as_deref());
    let max = config.spool_max;
    let pipes = config.pipes.clone();
    tokio::task::spawn_blocking(move || Spool::open(&dir, max, &pipes))
        .await
        .map_err(|e| format!("cannot open the spool: {e}"))?
        .map_err(|e| e.to_string())
}

/// A `--loop` run: a drain of every queue each round until SIGTERM or SIGINT. Health checks,
/// setup and waits are abandoned at once at a stop signal; a drain is told to start no new
/// pull, and the pulls under way (each bounded by `Timeout`) are finished and spooled.
async fn run_loop(
    config: &BrokerConfig,
    client: ApiClient,
    running: Running,
    signals: &mut Signals,
    every: Duration,
) -> ExitCode {
    let (stop_pulling, stop) = watch::channel(false);
    // The sinks' backoff (0.25 s doubling to 30 s), never longer than a round.
    let mut api_backoff = Backoff::new(
        Duration::from_millis(250),
        every.min(Duration::from_secs(30)),
    );
    if signals
        .race(check_connectivity(&client), Some(&running))
        .await
        .is_none()
    {
        return stopped(running).await;
    }
    // Credentials: a missing file is fatal; an API that is down is retried with backoff. The
    // pipes meanwhile deliver what an earlier run left in the spool.
    let credentials = loop {
        let prepared = signals
            .race(prepare_credentials(config, &client), Some(&running))
            .await;
        let Some(prepared) = prepared else {
            return stopped(running).await;
        };
        match prepared {
            Ok(c) => break c,
            Err(SetupError::Api(e)) => tracing::error!("cannot register the broker's key: {e}"),
            Err(e) => {
                running.shutdown(DELIVERY_GRACE).await;
                return fail(&e.to_string());
            }
        }
        let delay = api_backoff.next_delay();
        tracing::info!("retrying the api in {:.1} s", delay.as_secs_f64());
        if signals.wait(delay, &running).await {
            return stopped(running).await;
        }
    };
    api_backoff.reset();
    let mut source = Arc::new(ApiSource::new(client, credentials));
    let notify = signals.notifier();
    notify.ready();
    loop {
        // A setup file dropped in while running is used at the next round: setup may have
        // replaced the old key at the API, so the new credentials take over at once.
        let setup = signals
            .race(setup_from_file(config, source.client()), Some(&running))
            .await;
        let Some(setup) = setup else {
            return stopped(running).await;
        };
        match setup {
            Ok(Some(credentials)) => {
                tracing::info!(
                    "using the new credentials from {}",
                    config.setup_path.display()
                );
                source = Arc::new(ApiSource::new(source.client().clone(), credentials));
            }
            Ok(None) => {}
            Err(e) => tracing::error!("{e}"),
        }
        let report = {
            let drain = notify.while_pulling(running.drain(source.clone(), &stop), &running);
            tokio::pin!(drain);
            loop {
                tokio::select! {
                    report = &mut drain => break Some(report),
                    wake = signals.next() => match wake {
                        Wake::Reopen => signals.reopen(Some(&running)),
                        Wake::Stop => {
                            // No new pull starts; those under way end within `Timeout` (or
                            // the spool's dead-letter fallback) and are spooled.
                            tracing::info!("stopping: finishing the pulls under way");
                            let _ = stop_pulling.send(true);
                            (&mut drain).await;
                            break None;
                        }
                    },
                }
            }
        };
        let Some(report) = report else {
            return stopped(running).await;
        };
        notify.round(&report, &running);
        let delay = if report.failed() {
            if signals
                .race(check_connectivity(source.client()), Some(&running))
                .await
                .is_none()
            {
                return stopped(running).await;
            }
            let delay = api_backoff.next_delay();
            tracing::info!("retrying the api in {:.1} s", delay.as_secs_f64());
            delay
        } else {
            api_backoff.reset();
            every
        };
        if signals.wait(delay, &running).await {
            return stopped(running).await;
        }
    }
}

async fn stopped(running: Running) -> ExitCode {
    running.shutdown(DELIVERY_GRACE).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
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
