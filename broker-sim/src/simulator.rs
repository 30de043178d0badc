//! The handle tests hold: start a simulator, set it up, inspect it, stop it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::error::SimError;
use crate::event_type::EventType;
use crate::faults::Fault;
use crate::options::SimOptions;
use crate::records::{RequestRecord, SetupRecord};
use crate::server::{self, lock, SharedState};
use crate::state::{Health, State};

/// A running simulator of the Pro Custodibus API on 127.0.0.1.
///
/// Cheap to clone (all clones share one server). The server stops when [`Simulator::shutdown`]
/// is called or the last clone is dropped. Every method is synchronous and safe to call from
/// any thread, inside or outside a tokio runtime.
#[derive(Debug, Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: SharedState,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Inner {
    fn stop(&self) {
        self.shutdown.send_replace(true);
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Simulator {
    /// Start a simulator on the current tokio runtime, listening on 127.0.0.1 at
    /// `options.port` (0: any free port). Returns once the port is bound.
    ///
    /// Must be called inside a tokio runtime. A test that talks to the simulator with blocking
    /// I/O on a current-thread runtime would starve it: use [`Simulator::start_background`]
    /// there.
    pub async fn start(options: SimOptions) -> Result<Simulator, SimError> {
        let listener = server::bind(options.port)?;
        let (simulator, receiver) = Simulator::new(&listener, options)?;
        tokio::spawn(server::serve(
            listener,
            Arc::clone(&simulator.inner.state),
            receiver,
        ));
        Ok(simulator)
    }

    /// Start a simulator on its own thread with its own tokio runtime, for tests that are not
    /// async (for instance those that run the broker binary as a subprocess). Returns once the
    /// port is bound.
    pub fn start_background(options: SimOptions) -> Result<Simulator, SimError> {
        let listener = server::bind(options.port)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SimError::Runtime)?;
        let (simulator, receiver) = Simulator::new(&listener, options)?;
        let state = Arc::clone(&simulator.inner.state);
        let thread = std::thread::Builder::new()
            .name(format!("broker-sim-{}", simulator.inner.addr.port()))
            .spawn(move || runtime.block_on(server::serve(listener, state, receiver)))
            .map_err(SimError::Runtime)?;
        *simulator
            .inner
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(thread);
        Ok(simulator)
    }

    fn new(
        listener: &std::net::TcpListener,
        options: SimOptions,
    ) -> Result<(Simulator, watch::Receiver<bool>), SimError> {
        let port = options.port;
        let addr = listener
            .local_addr()
            .map_err(|source| SimError::Bind { port, source })?;
        let (sender, receiver) = watch::channel(false);
        let inner = Inner {
            state: Arc::new(Mutex::new(State::new(options))),
            addr,
            shutdown: sender,
            thread: Mutex::new(None),
        };
        Ok((
            Simulator {
                inner: Arc::new(inner),
            },
            receiver,
        ))
    }

    /// The base URL of the API, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Stop serving: close the listener and every open connection. For a background
    /// simulator this waits until its thread has ended; for one started with
    /// [`Simulator::start`] the server task ends at its runtime's next turn.
    pub fn shutdown(&self) {
        self.inner.stop();
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// Add a broker with the display name that `hello` answers, or rename an existing one
    /// (its registered keys stay).
    pub fn add_broker(&self, id: &str, display_name: &str) {
        self.state().add_broker(id, display_name);
    }

    /// Register a one-time setup code for a broker, valid until `expires`. Setup with it
    /// fails (401 "invalid setup code") while the broker does not exist.
    pub fn add_setup_code(&self, broker_id: &str, code: &str, expires: DateTime<Utc>) {
        self.state().add_setup_code(broker_id, code, expires);
    }

    /// Register an Ed25519 public key for a broker directly, as if setup had run (for tests
    /// that write a credentials file themselves). Creates the broker, named after its id, if
    /// it does not exist.
    pub fn add_key(&self, broker_id: &str, public_key: [u8; 32]) {
        self.state().add_key(broker_id, public_key);
    }

    /// The public keys registered for a broker, oldest first (empty for an unknown broker).
    pub fn registered_keys(&self, broker_id: &str) -> Vec<[u8; 32]> {
        self.state().registered_keys(broker_id)
    }

    /// Every successful setup call so far, in order.
    pub fn setups(&self) -> Vec<SetupRecord> {
        self.state().setups.clone()
    }

    /// Append one event to a queue. `raw_json` is kept and served byte-for-byte; it is not
    /// checked, so invalid JSON here makes the whole pull answer invalid.
    pub fn enqueue(&self, event_type: &str, raw_json: &str) -> Result<(), SimError> {
        let event_type = event_type.parse::<EventType>()?;
        self.state().enqueue(event_type, raw_json.to_string());
        Ok(())
    }

    /// Append `n` generated events (see [`EventGenerator`](crate::EventGenerator)) to a queue
    /// and return their raw texts, in queue order.
    pub fn enqueue_generated(&self, event_type: &str, n: usize) -> Result<Vec<String>, SimError> {
        let event_type = event_type.parse::<EventType>()?;
        let mut state = self.state();
        Ok((0..n)
            .map(|_| {
                let raw = state.generator.generate(event_type);
                state.enqueue(event_type, raw.clone());
                raw
            })
            .collect())
    }

    /// Number of events waiting in a queue (0 for an unknown type).
    pub fn queue_len(&self, event_type: &str) -> usize {
        event_type
            .parse::<EventType>()
            .map(|t| self.state().queue_len(t))
            .unwrap_or(0)
    }

    /// Number of events of a queue that pulls have taken (answered with 200) so far: with the
    /// events enqueued in order, these are the first `served_count` of them (0 for an unknown
    /// type).
    pub fn served_count(&self, event_type: &str) -> usize {
        event_type
            .parse::<EventType>()
            .map(|t| self.state().served(t))
            .unwrap_or(0)
    }

    /// Make `GET /health` answer 200 with one `{"healthy": .., "error": ..}` per entry.
    pub fn set_health(&self, entries: Vec<(bool, String)>) {
        self.state().health = Health::Entries(entries);
    }

    /// Make `GET /health` answer this status with a JSON:API error body (an invalid status
    /// answers 500).
    pub fn set_health_status(&self, status: u16) {
        self.state().health = Health::Status(status);
    }

    /// Apply `fault` to the next `count` API requests whose path starts with `path_prefix`
    /// (every API request when `None`). Faults wait in order; a request takes the first one
    /// that matches. See [`Fault`].
    pub fn inject(&self, fault: Fault, count: u32, path_prefix: Option<&str>) {
        self.state().faults.push(fault, count, path_prefix);
    }

    /// Forget every pending fault.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// How many requests the pending faults will still affect.
    pub fn pending_faults(&self) -> u64 {
        self.state().faults.remaining()
    }

    /// Hold every pull from now on: a pull (`POST /queues/{type}/next`) waits, unanswered and
    /// before any fault or handling, until [`Simulator::release_pulls`]. A client that gives up
    /// meanwhile gets nothing and its pull removes nothing (logged with status 499). With every
    /// queue's pull held, no answer is on its way to the client: a test can stop the client at
    /// a moment when everything served has been received.
    pub fn hold_pulls(&self) {
        self.state().pull_gate.send_replace(true);
    }

    /// Let held pulls (and later ones) go on.
    pub fn release_pulls(&self) {
        self.state().pull_gate.send_replace(false);
    }

    /// Number of pulls waiting while held.
    pub fn held_pulls(&self) -> usize {
        self.state().held_pulls
    }

    /// Expire every session now; the next session call with an old token gets 401.
    pub fn expire_all_sessions(&self) {
        self.state().expire_all_sessions(Instant::now());
    }

    /// The API requests handled so far, in order (admin requests are not included).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().requests.clone()
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// Number of successful logins (`POST /sessions`) so far.
    pub fn login_count(&self) -> usize {
        self.state().logins
    }

    /// The broker versions seen in `GET /queues/{version}/hello` calls, in order.
    pub fn hello_versions(&self) -> Vec<String> {
        self.state().hello_versions.clone()
    }
}
