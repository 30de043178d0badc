//! The HTTP sink layer: what every sink that POSTs events to a web service (a webhook, Splunk
//! HEC, Elasticsearch, Loki, Azure Monitor) needs, written once.
//!
//! - [`client`]: the `Url`, `Timeout`, `Proxy` and `CA` keys ([`client::ClientSettings`]) and
//!   the `reqwest` client built from them: rustls with ring, the server's certificate always
//!   verified (system roots or `CA`), `http://` only to a loopback host, no proxy unless the
//!   operator names one, no redirects; [`client::LazyClient`] builds it on a sink's first
//!   delivery and keeps it until `reopen` or `close`.
//! - [`secret`]: a token, password, API key or client secret ([`secret::Secret`], shown as
//!   `***`), read from `Token` or `TokenFile` (and alike): the file is read when the sink is
//!   built, so `--check-config` checks it, and no error ever quotes its content. Also the
//!   `Authorization` values made from one ([`authorization`], [`basic_authorization`]).
//! - [`answer`]: a receiver's answer ([`answer::Answer`]: status, `Retry-After`, the start of the
//!   body), what a status means for delivery ([`answer::classify`]), the retryable error, the
//!   one-line reason of a failed request, and a receiver's text quoted on one line, cut to a
//!   length ([`answer::quote`]).
//! - [`mask`]: every secret replaced by `***` in any form a receiver may echo it, before a
//!   receiver's text reaches a log line, an error or the dead-letter file.
//! - [`retry_after`]: the wait a 429 or 503 asks for, capped at 300 s.
//!
//! A sink built on the layer also sets [`broker_core::Sink::last_answer`] on every answer, so
//! `--test-pipe` prints what the receiver said.

pub mod answer;
pub mod client;
pub mod mask;
pub mod retry_after;
pub mod secret;

pub use answer::{classify, quote, retry_error, transport_reason, Answer, Class};
pub use client::{parse_url, ClientSettings, LazyClient, ProxySetting};
pub use mask::Secrets;
pub use retry_after::parse_retry_after;
pub use secret::{authorization, basic_authorization, Secret};
