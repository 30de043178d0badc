//! Delivery over RELP (`Protocol = relp` or `relp-tls`): a batch counts as handed over message by
//! message, as the receiver answers `200` for each.
//!
//! The session is opened on the first delivery and kept; one the receiver ended meanwhile is
//! replaced before the next batch. When a kept session breaks during a batch, the messages it
//! left unanswered go again, in order, on one new session within the same delivery; when that
//! one (or a session this delivery opened) fails too, the delivery fails with the answered messages at the front counted, and the rest is sent
//! again later. So delivery is at least once: a message whose answer was lost with its connection
//! (and, after a refused message, those behind it that were answered) arrive twice. A status
//! other than `200` for one message is that message's permanent failure, with the receiver's
//! status and text as the reason; the pipeline sets it aside in the dead-letter file.

use std::time::Duration;

use broker_core::{Event, SinkError};

use super::config::{Endpoint, SyslogConfig};
use super::transport::relp::session::{RelpIo, Session};
use super::transport::relp::window::Window;
use crate::util::connect;
use crate::util::tls::TlsClient;

/// The RELP side of a syslog sink: its session, if one is open.
#[derive(Debug, Default)]
pub struct RelpDelivery {
    session: Option<Session>,
    last_answer: Option<String>,
}

impl RelpDelivery {
    /// Sends `messages` (those of `events`, in order) and returns once the receiver answered
    /// `200` for each. `stall` bounds every wait for the receiver.
    pub async fn send(
        &mut self,
        config: &SyslogConfig,
        tls: &mut TlsClient,
        stall: Duration,
        events: &[Event],
        messages: &[Vec<u8>],
    ) -> Result<(), SinkError> {
        let endpoint = &config.endpoint;
        let mut window = Window::new(messages.len(), config.window);
        // Taken out while sending: after a failure (or a cancelled delivery) it stays dropped.
        let open = self.session.as_mut().map(Session::is_open);
        let (mut session, mut fresh) = match (self.session.take(), open) {
            (Some(session), Some(true)) => (session, false),
            (Some(_), _) => {
                tracing::debug!("syslog: the RELP session with {endpoint} ended; reopening");
                (connect(config, tls, stall, 0).await?, true)
            }
            (None, _) => (connect(config, tls, stall, 0).await?, true),
        };
        loop {
            let sent = session.send(messages, &mut window).await;
            if let Some((code, text)) = window.last_answer() {
                self.last_answer = Some(format!("{code} {text}"));
            }
            match sent {
                Ok(()) => break,
                Err(reason) => {
                    drop(session);
                    window.connection_lost();
                    let delivered = window.delivered();
                    let failed = format!("cannot send to {endpoint}{}: {reason}", over(endpoint));
                    if fresh {
                        return Err(SinkError::retry(delivered, failed));
                    }
                    tracing::debug!("syslog: {failed}; reopening the session");
                    session = connect(config, tls, stall, delivered).await?;
                    fresh = true;
                }
            }
        }
        self.session = Some(session);
        match window.refused() {
            Some((index, code, text)) => {
                let id = match events[index].id() {
                    Some(id) => format!("event {id}"),
                    None => "an event without id".to_string(),
                };
                Err(SinkError::permanent(
                    index,
                    format!("{endpoint} refused {id} over RELP: {code} {text}"),
                ))
            }
            None => Ok(()),
        }
    }

    /// The receiver's last answer to a message (`200 OK`), for `--test-pipe`.
    pub fn last_answer(&self) -> Option<String> {
        self.last_answer.clone()
    }

    /// Drops the session, so the next delivery opens a new one.
    pub fn forget(&mut self) {
        self.session = None;
    }

    /// Ends the session politely, if one is open.
    pub async fn close(&mut self) {
        if let Some(session) = self.session.take() {
            session.close().await;
        }
    }
}

/// `" over RELP"` or `" over RELP/TLS"` after the endpoint in messages.
pub fn over(endpoint: &Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Relp { tls: true, .. } => " over RELP/TLS",
        _ => " over RELP",
    }
}

/// Connects to the endpoint and opens a session; the error is worth retrying, with `delivered`
/// messages of the batch handed over.
async fn connect(
    config: &SyslogConfig,
    tls: &mut TlsClient,
    stall: Duration,
    delivered: usize,
) -> Result<Session, SinkError> {
    let endpoint = &config.endpoint;
    let failed = |reason: String| {
        SinkError::retry(
            delivered,
            format!("cannot connect to {endpoint}{}: {reason}", over(endpoint)),
        )
    };
    let io: Box<dyn RelpIo> = match endpoint {
        Endpoint::Relp {
            host,
            port,
            tls: false,
        } => Box::new(connect::tcp(host, *port).await.map_err(failed)?),
        Endpoint::Relp {
            host,
            port,
            tls: true,
        } => Box::new(
            tls.connect(host, *port, &config.tls)
                .await
                .map_err(failed)?,
        ),
        _ => return Err(failed("not a RELP endpoint".to_string())),
    };
    let session = Session::open(io, stall).await.map_err(failed)?;
    tracing::debug!("syslog: RELP session open with {endpoint}");
    Ok(session)
}
