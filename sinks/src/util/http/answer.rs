//! A receiver's answer and what it means for delivery.
//!
//! | status | [`Class`] | meaning |
//! | --- | --- | --- |
//! | 2xx | [`Class::Delivered`] | the request's events are delivered |
//! | 429, 408, 5xx, 3xx | [`Class::Retry`] | the receiver is busy or failing: send again later (a `Retry-After` on a 429 or 503 is the least wait) |
//! | 401, 403, 404, 405, 407, 410, 415, 421 | [`Class::Retry`] | the Url, the credentials or the body format are wrong for every request, not one event: dead-lettering would empty the spool into the dead-letter file until someone fixed the config, so the events wait and the log says why |
//! | any other 4xx (400, 413, 422, ...) | [`Class::Reject`] | the request's content was refused; the sink finds out whether for one event or for all (a 400 that every event gets too is about the request: a retry) |
//!
//! A request that got no answer (refused, reset, timed out, TLS failure) is a retry too, its
//! reason from [`transport_reason`]. Every text from the receiver is quoted with its secrets
//! masked ([`Secrets`]), on one line, cut to [`QUOTED_CHARS`] characters ([`quote`], which a
//! sink also uses for the reasons it picks out of an answer: an item's error, a named entry).

use std::time::{Duration, SystemTime};

use broker_core::SinkError;
use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;

use super::mask::Secrets;
use super::retry_after::parse_retry_after;

/// How much of a response body a message quotes, in characters.
pub const QUOTED_CHARS: usize = 200;
/// How much of a response body [`Answer::read`] keeps for a quote, in bytes.
pub const QUOTE_BYTES: usize = 16 * 1024;

/// What a status means for the request's events: see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Taken.
    Delivered,
    /// Send again later.
    Retry,
    /// The content was refused.
    Reject,
}

/// Sorts a status code: see the module docs.
pub fn classify(status: StatusCode) -> Class {
    match status.as_u16() {
        200..=299 => Class::Delivered,
        401 | 403 | 404 | 405 | 407 | 408 | 410 | 415 | 421 | 429 => Class::Retry,
        400..=499 => Class::Reject,
        _ => Class::Retry,
    }
}

/// A receiver's answer: its status, the wait it asks for and its body (up to a limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The `Retry-After` of a 429 or 503, capped at 300 s.
    pub retry_after: Option<Duration>,
    /// The body, or its first bytes when [`Answer::complete`] is false.
    pub body: Vec<u8>,
    /// Whether `body` is the whole body.
    pub complete: bool,
}

impl Answer {
    /// Reads the status, the `Retry-After` and at most `limit` bytes of the body (a body that
    /// breaks off is kept as far as it came).
    pub async fn read(mut response: reqwest::Response, limit: usize) -> Answer {
        let status = response.status();
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
            _ => None,
        };
        let mut body = Vec::new();
        let mut complete = false;
        while body.len() < limit {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => {
                    complete = true;
                    break;
                }
                Err(_) => break,
            }
        }
        Answer {
            status,
            retry_after,
            body,
            complete,
        }
    }

    /// What the status means: see [`classify`].
    pub fn class(&self) -> Class {
        classify(self.status)
    }

    /// The start of the body for a message: secrets masked, control characters and runs of
    /// white space made one space, at most [`QUOTED_CHARS`] characters (then `...`); empty for
    /// an empty body.
    pub fn excerpt(&self, secrets: &Secrets) -> String {
        let mut bytes = &self.body[..];
        if !self.complete {
            // The end of what was read may hold the start of a secret, which no mask matches.
            let keep = bytes.len().saturating_sub(8 * secrets.longest());
            bytes = &bytes[..keep];
        }
        quote(&secrets.mask(&String::from_utf8_lossy(bytes)), QUOTED_CHARS)
    }

    /// `STATUS` and `: EXCERPT` when the body says something (`400 Bad Request: {"text":...}`):
    /// what `--test-pipe` prints and a message quotes.
    pub fn summary(&self, secrets: &Secrets) -> String {
        let excerpt = self.excerpt(secrets);
        if excerpt.is_empty() {
            self.status.to_string()
        } else {
            format!("{}: {excerpt}", self.status)
        }
    }

    /// ` (Retry-After: waiting at least N s)`, or empty.
    pub fn asked_wait(&self) -> String {
        self.retry_after.map_or(String::new(), |w| {
            format!(" (Retry-After: waiting at least {} s)", w.as_secs_f64())
        })
    }
}

/// A receiver's `text` as a message quotes it: on one line (control characters and runs of
/// white space made one space, none at either end), at most `chars` characters (then `...`).
/// Mask its secrets first ([`Secrets::mask`]): a cut may split one.
pub fn quote(text: &str, chars: usize) -> String {
    let mut text = text
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some((cut, _)) = text.char_indices().nth(chars) {
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// A retryable error after `delivered` events, asking for `wait` if any. The core logs it as a
/// warning naming the pipe, and the pipe backs off; `why` names the receiver and its reason.
pub fn retry_error(delivered: usize, why: impl Into<String>, wait: Option<Duration>) -> SinkError {
    let error = SinkError::retry(delivered, why);
    match wait {
        Some(wait) => error.with_retry_after(wait),
        None => error,
    }
}

/// The one-line reason of a request that got no answer: the error's causes (`tcp connect
/// error: Connection refused`, `invalid peer certificate: UnknownIssuer`), without the request's
/// URL (only its origin, should the error name no cause). Mask it before quoting it.
pub fn transport_reason(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    match error.source() {
        Some(source) => broker_core::text::error_causes(source),
        None => {
            let text = broker_core::text::error_causes(error);
            match error.url() {
                Some(url) => text.replace(url.as_str(), &super::client::origin(url)),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_as_documented() {
        let class = |n: u16| classify(StatusCode::from_u16(n).unwrap());
        for n in [200, 201, 202, 204, 299] {
            assert_eq!(class(n), Class::Delivered, "{n}");
        }
        for n in [
            301, 302, 307, 401, 403, 404, 405, 407, 408, 410, 415, 421, 429, 500, 502, 503, 504,
        ] {
            assert_eq!(class(n), Class::Retry, "{n}");
        }
        for n in [400, 409, 411, 413, 422, 451, 499] {
            assert_eq!(class(n), Class::Reject, "{n}");
        }
    }

    fn answer(status: u16, body: &str, complete: bool) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: body.as_bytes().to_vec(),
            complete,
        }
    }

    #[test]
    fn excerpts_are_masked_one_line_and_cut() {
        let mut secrets = Secrets::new();
        secrets.add("t0ken-value");
        let a = answer(400, "{\"error\":\n\t\"bad t0ken-value\"\u{1b}[2J}", true);
        assert_eq!(
            a.summary(&secrets),
            "400 Bad Request: {\"error\": \"bad ***\" [2J}"
        );
        assert_eq!(answer(204, "", true).summary(&secrets), "204 No Content");
        let long = "x".repeat(500);
        let excerpt = answer(200, &long, true).excerpt(&secrets);
        assert_eq!(excerpt.len(), QUOTED_CHARS + 3);
        assert!(excerpt.ends_with("..."));
        // A body cut off may end in the start of a secret: that end is left out.
        let cut = answer(500, "abc t0ken-va", false).excerpt(&secrets);
        assert!(!cut.contains("t0ken"), "{cut}");
    }

    #[test]
    fn quotes_are_one_line_and_cut_to_their_length() {
        assert_eq!(quote("  a\n\tb \u{1b}[2J  c\r\n", 100), "a b [2J c");
        assert_eq!(quote("", 10), "");
        assert_eq!(quote("abcdef", 6), "abcdef");
        assert_eq!(quote("abcdefg", 6), "abcdef...");
        // Characters, not bytes.
        assert_eq!(quote("ééééé", 3), "ééé...");
    }

    #[test]
    fn retry_errors_carry_the_wait() {
        let e = retry_error(3, "busy", Some(Duration::from_secs(7)));
        assert_eq!(
            (e.delivered, e.retry_after),
            (3, Some(Duration::from_secs(7)))
        );
        assert_eq!(retry_error(0, "x", None).retry_after, None);
        let mut a = answer(503, "", true);
        a.retry_after = Some(Duration::from_secs(2));
        assert_eq!(a.asked_wait(), " (Retry-After: waiting at least 2 s)");
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_cause_never_the_path() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/s3cret-path?k=s3cret",
            listener.local_addr().unwrap()
        );
        drop(listener);
        broker_core::install_crypto_provider();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let e = client.post(&url).send().await.unwrap_err();
        let reason = transport_reason(&e);
        assert!(reason.contains("onnect"), "{reason}");
        assert!(!reason.contains("s3cret"), "{reason}");
    }
}
