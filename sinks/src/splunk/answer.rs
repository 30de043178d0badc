//! What HEC answers, read tolerantly, and what each answer means for a request's events.
//!
//! HEC answers a request with a status and a JSON body `{"text":"...","code":N}`, plus `ackId`
//! when the token has indexer acknowledgement, and `invalid-event-number` (the index, from 0,
//! of the event it stopped at) when it refused the request's content. Only the members a
//! decision needs are read; a missing member, `null`, an odd type or a body that is not JSON at
//! all is taken as "not said".
//!
//! | answer | [`Outcome`] |
//! | --- | --- |
//! | 2xx (`Success`, code 0) | [`Outcome::Accepted`], with the `ackId` if any |
//! | 400 with code 6 (invalid data format), 12, 13 (event field missing or blank) or 15 (indexed fields) | [`Outcome::EventRefused`] at `invalid-event-number` (0 when not said): HEC refused the request for that event |
//! | 413 (request larger than HEC's `max_content_length`) | [`Outcome::TooLarge`] |
//! | 400 with any other code: 5 (no data), 7 (incorrect index), 10 and 11 (channel), 14 (ack disabled), 16, or none | [`Outcome::Retry`]: about the request, never one event |
//! | 401, 403 (codes 1 to 4: token missing, disabled or invalid), 404, other 4xx | [`Outcome::Retry`], with a hint at the key to check |
//! | 429, 503 (code 9 server busy, 18 to 20 unhealthy), 5xx, 3xx, no answer | [`Outcome::Retry`], waiting at least the `Retry-After` of a 429 or 503 |
//!
//! The acknowledgement endpoint answers `{"acks":{"0":true,"1":false}}`: [`acked_ids`].

use std::time::Duration;

use serde_json::Value;

/// The members of a HEC answer body that the sink uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// `text`: HEC's words (`Success`, `Invalid data format`).
    pub text: Option<String>,
    /// `code`: HEC's status code (0 success, 6 invalid data format, 9 server busy...).
    pub code: Option<i64>,
    /// `ackId`: the request's acknowledgement id (indexer acknowledgement on).
    pub ack_id: Option<u64>,
    /// `invalid-event-number`: the index, from 0, of the event HEC refused.
    pub invalid_event: Option<u64>,
}

impl Reply {
    /// Reads a body tolerantly: what is missing, `null`, of an odd type or not JSON at all is
    /// `None`. Numbers written as strings (`"7"`) are read too.
    pub fn parse(body: &[u8]) -> Reply {
        let Ok(Value::Object(members)) = serde_json::from_slice::<Value>(body) else {
            return Reply::default();
        };
        let number = |name: &str| match members.get(name) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        Reply {
            text: members
                .get("text")
                .and_then(Value::as_str)
                .map(str::to_string),
            code: match members.get("code") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            },
            ack_id: number("ackId"),
            invalid_event: number("invalid-event-number"),
        }
    }
}

/// What an answer means for the request's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// HEC took the request; with indexer acknowledgement, the id to ask about.
    Accepted {
        /// The `ackId`, if HEC gave one.
        ack_id: Option<u64>,
    },
    /// HEC refused the request because of the event at `at` (an index into the request): the
    /// events before it were not indexed either and are sent again, then that event alone.
    EventRefused {
        /// The index of the refused event in the request.
        at: usize,
    },
    /// The request is larger than HEC takes: send fewer events per request.
    TooLarge,
    /// Send again later, not before `wait` if any; about the request, not an event.
    Retry {
        /// What to check, when the answer points at a key (` (check Token; ...)`).
        hint: &'static str,
        /// The least wait HEC asked for (`Retry-After`).
        wait: Option<Duration>,
    },
}

/// HEC codes that are about one event of the request (`invalid-event-number` names it).
const EVENT_CODES: [i64; 4] = [6, 12, 13, 15];

/// Sorts an answer: see the module docs. `events` is the number of events in the request, so
/// an `invalid-event-number` out of range is taken as "not said" (0: the first event).
pub fn outcome(status: u16, reply: &Reply, wait: Option<Duration>, events: usize) -> Outcome {
    match status {
        200..=299 => Outcome::Accepted {
            ack_id: reply.ack_id,
        },
        413 => Outcome::TooLarge,
        400 if reply.code.is_some_and(|c| EVENT_CODES.contains(&c)) => {
            let at = reply
                .invalid_event
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n < events)
                .unwrap_or(0);
            Outcome::EventRefused { at }
        }
        _ => Outcome::Retry {
            hint: hint(status, reply.code),
            wait,
        },
    }
}

/// What to check for a refusal of every request alike.
fn hint(status: u16, code: Option<i64>) -> &'static str {
    match (status, code) {
        (_, Some(1..=4)) | (401 | 403, _) => {
            " (check Token or TokenFile; the events wait in the spool)"
        }
        (_, Some(7)) => {
            " (check Index: the token may not write to it; the events wait in the spool)"
        }
        (_, Some(10 | 11)) => " (the channel header was refused; the events wait in the spool)",
        (_, Some(14)) => {
            " (indexer acknowledgement is off for the token: turn it on or set Ack = no)"
        }
        (404 | 405, _) => " (check Url: it should be the HEC's https://host:8088)",
        (300..=399, _) => " (redirects are not followed: set Url to the address it points to)",
        _ => "",
    }
}

/// The ids the acknowledgement endpoint says are indexed, from `{"acks":{"0":true,...}}`:
/// anything but `true` (`false`, `null`, a missing id, a body that is not JSON) is not yet.
pub fn acked_ids(body: &[u8]) -> Vec<u64> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let Some(acks) = value.get("acks").and_then(Value::as_object) else {
        return Vec::new();
    };
    acks.iter()
        .filter(|(_, v)| v.as_bool() == Some(true))
        .filter_map(|(id, _)| id.trim().parse().ok())
        .collect()
}

/// The request body that asks about `ids`: `{"acks":[0,1,2]}`.
pub fn ack_query(ids: &[u64]) -> Vec<u8> {
    serde_json::json!({ "acks": ids }).to_string().into_bytes()
}
