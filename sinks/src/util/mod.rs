//! A sink author's toolkit: what a network or file sink needs besides its own format, public
//! so that a sink in another crate uses it too (`broker_sinks::util::...`).
//!
//! - [`connect`]: connecting with a time limit. TCP and UDP to `host:port` (resolved on every
//!   connection, each address tried in turn), unix stream and datagram sockets, [`connect::within`]
//!   to bound any wait, and [`connect::TIMEOUT`], the 30 seconds a wait may take.
//! - [`tls`]: TLS client settings from the keys `CA`, `Cert`, `Key` and `ServerName`
//!   ([`tls::TlsSettings`], [`tls::KEYS`] for the key list), the rustls client config
//!   ([`tls::client_config`], always verifying the server) and [`tls::TlsClient`], which connects
//!   and words a failed handshake (an untrusted certificate, one for another name).
//! - [`confirmed`]: [`confirmed::ConfirmedStream`], the stream writer for protocols without
//!   acknowledgements: a message counts as delivered once the receiver's end took it off the
//!   socket's send queue, with the connection still open; [`confirmed::kept::Kept`] keeps the
//!   last batch in case its connection closes right after it.
//! - [`io_error`]: [`io_error::reason`], an I/O error as the short lower-case reason that ends a
//!   one-line message (`connection refused`, without `(os error 111)`).
//! - [`blocking`]: [`blocking::run_blocking`], blocking work (files, standard output) on tokio's
//!   blocking pool, a failed task turned into a retryable [`SinkError`](broker_core::SinkError).
//! - [`guid`]: [`guid::is_guid`], the `8-4-4-4-12` hex form of Splunk channels and Azure ids.
//! - [`http`]: the HTTP sink layer: client keys (`Url`, `Timeout`, `Proxy`, `CA`) and the
//!   reqwest client, secrets from a key or a file, a receiver's answer and what it means,
//!   `Retry-After`, and masking secrets in whatever a receiver echoes.
//! - [`verdicts`]: a receiver's answer for each event of a request (taken, refused, to send
//!   again) past the first failure, which is all a `deliver` reports: [`verdicts::Verdicts`]
//!   keeps the verdicts on the events after it, so that the next delivery, which starts there,
//!   sends none of the taken ones twice and dead-letters each refused one with its reason.
//!
//! A sink reads its keys and builds without I/O; on its first `deliver` it connects with
//! [`connect`], and it words every failure as `cannot <do what> <where>: <reason>` with
//! [`io_error::reason`], so the operator reads one line that says what failed and where.
//!
//! A delivery over TCP, each event's line in its own frame, counted as the receiver takes it (a
//! real sink keeps the stream between deliveries, and checks it with
//! [`check_open`](confirmed::ConfirmedStream::check_open) before reusing it):
//!
//! ```no_run
//! use broker_core::{Event, SinkError};
//! use broker_sinks::util::confirmed::{ConfirmedStream, Framer, Unconfirmed};
//! use broker_sinks::util::connect;
//! use broker_sinks::util::io_error::reason;
//!
//! /// Each message, then a newline.
//! #[derive(Debug)]
//! struct Lines;
//!
//! impl Framer for Lines {
//!     fn frame_into(&self, message: &[u8], out: &mut Vec<u8>) {
//!         out.extend_from_slice(message);
//!         out.push(b'\n');
//!     }
//! }
//!
//! /// Sends each event's line to `host:port`; an error counts the events delivered before it.
//! async fn deliver(host: &str, port: u16, events: &[Event]) -> Result<(), SinkError> {
//!     let where_to = format!("{host}:{port}");
//!     let tcp = connect::tcp(host, port)
//!         .await
//!         .map_err(|why| SinkError::retry(0, format!("cannot connect to {where_to}: {why}")))?;
//!     let mut stream = ConfirmedStream::tcp(tcp, Lines);
//!     let lines: Vec<&str> = events.iter().map(Event::line).collect();
//!     stream.send(&lines).await.map_err(|Unconfirmed { confirmed, error }| {
//!         SinkError::retry(confirmed, format!("cannot send to {where_to}: {}", reason(&error)))
//!     })
//! }
//! ```

pub mod blocking;
pub mod confirmed;
pub mod connect;
pub mod guid;
pub mod http;
pub mod io_error;
pub mod tls;
pub mod verdicts;
