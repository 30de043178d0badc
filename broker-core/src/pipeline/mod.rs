//! The pipeline: pull every queue the pipes want into the [`Spool`], and hand each pipe its
//! events from there.
//!
//! Queues are gathered across pipes, each pulled with the smallest `Max` of the pipes that want
//! it. Each pipe receives, batch by batch, the spooled events of each type in its `From`, in
//! `From` order, and its position in the spool moves only when its sink said `Ok`. A queue that
//! fails to pull does not stop the others, and a failing sink does not hold up the other pipes:
//! it is retried with backoff ([`crate::backoff`]), and an event it rejects for good goes to the
//! spool's dead-letter file.
//!
//! - [`Pipeline::run_once`]: one pull per queue, then one delivery pass (a run without `--loop`).
//! - [`Pipeline::start`]: a delivery task per pipe; [`Running::drain`] pulls every queue
//!   concurrently until it returns less than a full batch (a `--loop` round).

mod delivery;
mod drain;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{ConfigError, PipeConfig};
use crate::event::{Event, EventType};
use crate::registry;
use crate::sink::Sink;
use crate::source::Source;
use crate::spool::Spool;
use crate::status::StatusBoard;
pub use worker::Running;

/// The pipes with their built sinks.
pub struct Pipeline {
    pipes: Vec<PipeRun>,
    queues: Vec<(EventType, u32)>,
}

/// A pipe with its sink.
pub(crate) struct PipeRun {
    pub(crate) config: PipeConfig,
    pub(crate) sink: Box<dyn Sink>,
    /// Where each delivery's outcome is recorded (a `--loop` run).
    pub(crate) status: Option<Arc<StatusBoard>>,
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollReport {
    /// Events pulled, over all queues.
    pub pulled: usize,
    /// Events handed over, summed over pipes.
    pub delivered: usize,
    /// One line per failed pull or delivery.
    pub failures: Vec<String>,
}

impl PollReport {
    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    /// Adds `other`'s counts and failures to this report.
    pub fn merge(&mut self, other: PollReport) {
        self.pulled += other.pulled;
        self.delivered += other.delivered;
        self.failures.extend(other.failures);
    }
}

/// Each queue wanted by `pipes` with the smallest `Max` among the pipes that want it, in the
/// order of [`EventType::ALL`].
pub fn gather_queues(pipes: &[PipeConfig]) -> Vec<(EventType, u32)> {
    let mut queues: BTreeMap<EventType, u32> = BTreeMap::new();
    for pipe in pipes {
        for t in &pipe.from {
            let max = queues.entry(*t).or_insert(pipe.max);
            *max = (*max).min(pipe.max);
        }
    }
    queues.into_iter().collect()
}

impl Pipeline {
    /// Builds every pipe's sink (no I/O).
    pub fn new(pipes: &[PipeConfig]) -> Result<Self, ConfigError> {
        let mut runs = Vec::with_capacity(pipes.len());
        for pipe in pipes {
            let plugin = registry::find(&pipe.to).ok_or_else(|| {
                pipe.settings
                    .error("To", format!("unknown sink {:?}", pipe.to))
            })?;
            runs.push(PipeRun {
                config: pipe.clone(),
                sink: (plugin.build)(&pipe.settings)?,
                status: None,
            });
        }
        Ok(Pipeline {
            queues: gather_queues(pipes),
            pipes: runs,
        })
    }

    /// A pipeline of sinks built by the caller, one per pipe, instead of by the registry: a test
    /// hands it a sink that records what it got (through an `Arc` it keeps), with no plugin to
    /// register and no global state. The pipes need not name a registered sink.
    pub fn with_sinks(pipes: Vec<(PipeConfig, Box<dyn Sink>)>) -> Self {
        let configs: Vec<PipeConfig> = pipes.iter().map(|(config, _)| config.clone()).collect();
        Pipeline {
            queues: gather_queues(&configs),
            pipes: pipes
                .into_iter()
                .map(|(config, sink)| PipeRun {
                    config,
                    sink,
                    status: None,
                })
                .collect(),
        }
    }

    /// Checks the files each pipe's sink reads only when it connects ([`Sink::check_files`]):
    /// the first problem, naming the config file, the key's line and the pipe.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        for pipe in &self.pipes {
            pipe.sink
                .check_files()
                .map_err(|e| pipe.config.settings.error(e.key, e.message))?;
        }
        Ok(())
    }

    /// The queues polled, with the `Max` used for each.
    pub fn queues(&self) -> &[(EventType, u32)] {
        &self.queues
    }

    /// One run without `--loop`: pulls every queue once, spools what came, then delivers every
    /// pipe's spooled events (older ones first) and closes the sinks. What a pipe could not
    /// deliver stays in the spool for the next run.
    pub async fn run_once(self, source: Arc<dyn Source>, spool: Arc<Spool>) -> PollReport {
        let (_stop_tx, stop) = watch::channel(false);
        self.run_once_until(source, spool, stop).await
    }

    /// [`Pipeline::run_once`] that can be told to stop: once `stop` turns true no new pull or
    /// delivery batch starts, but a pull under way is finished and spooled (the API may already
    /// have taken its events off the queue), and a batch under way is finished.
    pub async fn run_once_until(
        mut self,
        source: Arc<dyn Source>,
        spool: Arc<Spool>,
        stop: watch::Receiver<bool>,
    ) -> PollReport {
        let mut report = PollReport::default();
        self.use_state_dir(&spool);
        delivery::import_redeliveries(&spool).await;
        let pulls = drain::pull_each_once(source, &self.queues, &spool, &stop).await;
        report.merge(pulls);
        for (index, pipe) in self.pipes.iter_mut().enumerate() {
            let deliveries = delivery::deliver_once(index, pipe, &spool, &stop).await;
            report.merge(deliveries);
        }
        self.close().await;
        report
    }

    /// Starts one delivery task per pipe for `--loop` mode; they deliver what reaches the spool
    /// until [`Running::shutdown`].
    pub fn start(mut self, spool: Arc<Spool>) -> Running {
        self.use_state_dir(&spool);
        worker::start(self.pipes, self.queues, spool)
    }

    /// Tells every sink the spool directory, if the spool has one ([`Sink::use_state_dir`]).
    fn use_state_dir(&mut self, spool: &Spool) {
        if let Some(dir) = spool.dir() {
            for pipe in &mut self.pipes {
                pipe.sink.use_state_dir(dir);
            }
        }
    }

    /// [`Pipeline::start`] that records every pull and delivery on `status` and writes the
    /// status file now, after every round and when a pipe starts or stops failing.
    pub fn start_with_status(mut self, spool: Arc<Spool>, status: Arc<StatusBoard>) -> Running {
        status.write();
        for pipe in &mut self.pipes {
            pipe.status = Some(status.clone());
        }
        self.start(spool).with_status(status)
    }

    /// Delivers `events` to the pipe named `name` only (for `--test-pipe`).
    pub async fn deliver_to(
        &mut self,
        name: &str,
        events: &[Event],
    ) -> Option<Result<(), crate::SinkError>> {
        let pipe = self
            .pipes
            .iter_mut()
            .find(|p| p.config.name.eq_ignore_ascii_case(name))?;
        Some(pipe.sink.deliver(events).await)
    }

    /// What the receiver of the pipe named `name` last answered ([`Sink::last_answer`]).
    pub fn last_answer(&self, name: &str) -> Option<String> {
        self.pipes
            .iter()
            .find(|p| p.config.name.eq_ignore_ascii_case(name))?
            .sink
            .last_answer()
    }

    /// Closes every sink.
    pub async fn close(&mut self) {
        for pipe in &mut self.pipes {
            if let Err(e) = pipe.sink.close().await {
                tracing::error!("pipe {}: cannot close: {e}", pipe.config.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::config::BrokerConfig;
    use crate::registry::{SinkKey, SinkPlugin};
    use crate::source::MemorySource;
    use crate::SinkError;

    /// Lines delivered to test sinks, by pipe name.
    static DELIVERED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

    struct RecordingSink {
        pipe: String,
        fail: bool,
    }

    #[async_trait]
    impl Sink for RecordingSink {
        async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
            if self.fail {
                return Err(SinkError::retry(0, "down"));
            }
            let mut d = DELIVERED.lock().unwrap();
            d.extend(
                events
                    .iter()
                    .map(|e| (self.pipe.clone(), e.line().to_string())),
            );
            Ok(())
        }
    }

    fn build(
        settings: &crate::config::PipeSettings,
    ) -> Result<Box<dyn Sink>, crate::config::ConfigError> {
        Ok(Box::new(RecordingSink {
            pipe: settings.pipe.clone(),
            fail: settings.value("fail").is_some(),
        }))
    }

    inventory::submit! {
        SinkPlugin { name: "recording", keys: &[SinkKey::one("fail", "fail every delivery")], build }
    }

    fn event(t: EventType, id: u32) -> Event {
        Event::from_json(t, &format!("{{\"id\":\"{t}-{id}\"}}")).unwrap()
    }

    #[tokio::test]
    async fn poll_orders_fans_out_and_uses_smallest_max() {
        let text = "[Broker]\nBroker = b\n\
            [Pipe.One]\nFrom = log_authn, alerts\nMax = 3\nTo = recording\n\
            [Pipe.Two]\nFrom = alerts\nMax = 2\nTo = recording\n\
            [Pipe.Down]\nFrom = alerts\nTo = recording\nFail\n";
        let config = BrokerConfig::parse(text, std::path::Path::new("b.conf")).unwrap();
        let pipeline = Pipeline::new(&config.pipes).unwrap();
        assert_eq!(
            pipeline.queues(),
            &[(EventType::Alerts, 2), (EventType::LogAuthn, 3)]
        );
        let source = Arc::new(MemorySource::new());
        for i in 0..3 {
            source.push(event(EventType::Alerts, i));
            source.push(event(EventType::LogAuthn, i));
        }
        let spool = Arc::new(Spool::in_memory(1 << 20, &config.pipes));
        let report = pipeline.run_once(source.clone(), spool.clone()).await;
        assert_eq!(report.pulled, 5);
        assert_eq!(report.failures.len(), 1, "{report:?}");
        assert!(report.failures[0].starts_with("pipe Down: down"));
        assert_eq!(spool.pending(2), 2, "Down's alerts wait in the spool");
        let d = DELIVERED.lock().unwrap().clone();
        let one: Vec<_> = d
            .iter()
            .filter(|(p, _)| p == "One")
            .map(|(_, l)| l.as_str())
            .collect();
        assert_eq!(
            one,
            [
                r#"{"id":"log_authn-0"}"#,
                r#"{"id":"log_authn-1"}"#,
                r#"{"id":"log_authn-2"}"#,
                r#"{"id":"alerts-0"}"#,
                r#"{"id":"alerts-1"}"#
            ]
        );
        let two: Vec<_> = d
            .iter()
            .filter(|(p, _)| p == "Two")
            .map(|(_, l)| l.as_str())
            .collect();
        assert_eq!(two, [r#"{"id":"alerts-0"}"#, r#"{"id":"alerts-1"}"#]);
        assert_eq!(source.len(EventType::Alerts), 1);
    }
}
