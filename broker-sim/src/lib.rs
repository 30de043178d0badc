//! A simulator of the Pro Custodibus API for tests, the quick start and dry runs.
//!
//! It serves, over plain HTTP on 127.0.0.1, the calls the broker makes (see docs/protocol.md):
//! `GET /health`, setup with a one-time code (`POST /users/{broker}/credentials/signature`),
//! challenge login with an Ed25519 signature (`GET /sessions/challenge`, `POST /sessions`),
//! `GET /queues/{version}/hello` and `POST /queues/{type}/next`. Events are stored as raw JSON
//! text and served byte-for-byte, so tests can compare exact bytes.
//!
//! Tests drive it in-process through [`Simulator`] (many simulators can run in one process),
//! or from another process through the admin routes under `/_admin/` (listed below; the
//! `procustodibus-broker-sim` binary serves them too). Faults ([`Fault`]) make the next
//! matching requests fail in chosen ways; [`EventGenerator`] makes realistic, tricky events.
//!
//! ## Pulls are transactional
//!
//! Like the real API, whose transaction rolls back when it cannot answer, the simulator removes
//! events from a queue only for a pull it answers with 200 and those events. A pull that gets a
//! status fault, a malformed answer, a dropped connection, a stall (`Fault::Stall`: a slow 504)
//! or a 401 removes nothing; a delayed pull (`Fault::Delay`) whose client gave up before the
//! delay was over removes nothing either (it is logged with status 499). So a broker that
//! retries every failed pull can, and must, deliver every event exactly once. The exception,
//! on purpose, is `Fault::SlowAnswer`: it takes the events off the queue first and answers
//! late, the window in which a broker told to stop must still spool what it pulled; and
//! `Fault::BrokenAnswer`, which takes them and then answers a body that cannot be read.
//!
//! ## Answer styles
//!
//! [`SimOptions::answer_style`] (the binary's `--answer-style`) chooses how answers are written:
//! [`AnswerStyle::Plain`], just the documented members, or [`AnswerStyle::Tolerant`], the same
//! facts with extra members, `null` and other types in members a client does not use, optional
//! members left out and extra `data` elements, as docs/protocol.md says a client must accept.
//!
//! ## Admin routes
//!
//! Under `/_admin/` on the same port, without authentication (loopback only); they take no
//! faults and are not recorded in the request log. Bodies and answers are JSON.
//!
//! | request | effect and answer |
//! | --- | --- |
//! | `POST /_admin/broker` `{"id":..,"name":..}` | add (or rename) a broker |
//! | `POST /_admin/setup-code` `{"broker":..,"code":..,"expires":rfc3339}` | add a one-time setup code (expires defaults to 3 days ahead); 404 for an unknown broker |
//! | `POST /_admin/enqueue/{type}` | body: one raw JSON event, or a JSON array of events; each kept byte-for-byte; answers `{"enqueued":N,"queue_len":M}` |
//! | `POST /_admin/generate/{type}?n=N` | enqueue N (default 1) generated events; answers `{"generated":N,"events":[...]}` |
//! | `GET /_admin/queues` | `{"alerts":N,"endpoint_stats":N,"log_authn":N,"log_changes":N}` |
//! | `POST /_admin/fault` `{"kind":"status","status":503,"count":2,"path":"/queues"}` | inject a fault; kinds `status` (with `status`), `delay` (with `ms`), `slow_answer` (with `ms`: takes the events off the queue, then answers that late), `stall` (with `ms`), `drop`, `malformed`, `unauthorized`, and after the dequeue `bad_utf8_answer`, `deep_nesting_answer`, `truncated_answer`, `cut_off_answer` (half the body, then the connection closes), `huge_answer` (with `bytes`: padded to that size), `oversized_answer` (with `extra`: that many events more than `max`); `count` defaults to 1, `path` (a prefix) to every API path |
//! | `POST /_admin/clear-faults` | forget pending faults |
//! | `POST /_admin/expire-sessions` | expire every session token |
//! | `POST /_admin/health` `[{"healthy":true,"error":""}]` or `{"status":503}` | set what `/health` answers |
//! | `POST /_admin/hold-pulls` `{"hold":true}` | hold every pull unanswered until `{"hold":false}` (see `Simulator::hold_pulls`) |
//! | `GET /_admin/requests` | the request log: `[{"method":..,"path":..,"max":N or null,"status":N}]` |
//! | `GET /_admin/keys/{broker}` | the broker's registered public keys, standard base64 |
//! | `GET /_admin/stats` | `{"logins":N,"hello_versions":[..],"pending_faults":N,"held_pulls":N}` |
//!
//! ## Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), broker_sim::SimError> {
//! use broker_sim::{Fault, SimOptions, Simulator};
//!
//! let sim = Simulator::start(SimOptions::default()).await?;
//! sim.add_broker("abcdef12345", "My Test Broker");
//! sim.add_setup_code("abcdef12345", "one-time-code", chrono::Utc::now() + chrono::Duration::days(3));
//! sim.enqueue_generated("alerts", 5)?;
//! sim.inject(Fault::Status(503), 1, Some("/queues/alerts"));
//! println!("API at {}", sim.url());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod admin;
mod api;
mod auth;
mod broken;
mod error;
mod event_type;
mod faults;
mod generator;
mod json_text;
mod options;
mod random;
mod records;
mod response;
mod rng;
mod server;
mod simulator;
mod state;
mod tolerant;

pub use error::SimError;
pub use event_type::EventType;
pub use faults::{Breakage, Fault};
pub use generator::EventGenerator;
pub use options::{AnswerStyle, SimOptions};
pub use records::{RequestRecord, SetupRecord};
pub use simulator::Simulator;
