//! Reading a `_bulk` answer and what each item's result means for its event.
//!
//! A 2xx answer to a bulk request is `{"took":..,"errors":BOOL,"items":[{"create":{"_id":..,
//! "status":201}}, {"create":{"status":409,"error":{"type":"version_conflict_engine_exception",
//! "reason":".."}}}, ..]}`: one item per action, in the request's order. Only `errors`, `items`,
//! each item's `status` and `error` (`type`, `reason`, `caused_by`) are read; any other member,
//! a `null` or an odd type where nothing is read, is ignored. `"errors":false` means every item
//! succeeded, and the items are not read at all.
//!
//! | item status | [`Verdict`] |
//! | --- | --- |
//! | 2xx, 409 (the document is already there: a resend) | [`Verdict::Delivered`] |
//! | 429, 5xx, none | [`Verdict::Retry`]: sent again later, alone with the others that failed so |
//! | 401, 403, 404, or an error type that is about the index (`index_not_found_exception`, `security_exception`, `cluster_block_exception`) | [`Verdict::Refused`] about the request: retried with a loud message, never dead-lettered |
//! | any other 4xx (`mapper_parsing_exception`, `document_parsing_exception`, ...) | [`Verdict::Refused`] about the event: dead-lettered with the error's type and reason |

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::util::http::quote;

/// The most characters of a receiver's reason a message quotes.
const REASON_CHARS: usize = 300;

/// Error types that are about the target (the index, the credentials, the cluster), never about
/// one document, whatever their status.
const ABOUT_THE_REQUEST: [&str; 4] = [
    "index_not_found_exception",
    "security_exception",
    "cluster_block_exception",
    "invalid_index_name_exception",
];

/// What one item's result means for its event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Stored, or already stored (409).
    Delivered,
    /// Worth sending again later (429, 5xx); the text is the item's `STATUS TYPE: REASON`.
    Retry(String),
    /// Refused; `about_request` when every event would be refused alike (see the module docs).
    Refused {
        /// The item's `STATUS TYPE: REASON`.
        why: String,
        /// The error's type (`mapper_parsing_exception`), empty if none.
        error_type: String,
        /// Whether the refusal is about the request (the index, the credentials), not the event.
        about_request: bool,
    },
}

/// The verdict on each event of a request, from a 2xx answer's body (`count` events were sent).
/// An error when the body is not a bulk answer for `count` events.
pub fn verdicts(body: &[u8], count: usize) -> Result<Vec<Verdict>, String> {
    #[derive(Deserialize)]
    struct Bulk<'a> {
        errors: Option<Value>,
        #[serde(borrow)]
        items: Option<&'a RawValue>,
    }
    let bulk: Bulk = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not a bulk answer ({e})"))?;
    if bulk.errors == Some(Value::Bool(false)) {
        return Ok(vec![Verdict::Delivered; count]);
    }
    let items: Vec<Value> = bulk
        .items
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .ok_or("the answer has errors but no list of items")?;
    if items.len() != count {
        return Err(format!(
            "the answer has {} items for {count} events",
            items.len()
        ));
    }
    Ok(items.iter().map(verdict).collect())
}

/// The verdict on one item: `{"create":{"status":..,"error":..}}` (or `index`, or any action).
pub fn verdict(item: &Value) -> Verdict {
    let result = item
        .as_object()
        .and_then(|o| o.values().find(|v| v.is_object()))
        .unwrap_or(&Value::Null);
    let status = match result.get("status") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let (error_type, reason) = error_text(result.get("error"));
    let why = |status: &dyn std::fmt::Display| {
        let mut why = status.to_string();
        for (separator, text) in [(" ", &error_type), (": ", &reason)] {
            if !text.is_empty() {
                why.push_str(separator);
                why.push_str(text);
            }
        }
        quote(&why, REASON_CHARS)
    };
    match status {
        Some(200..=299 | 409) => Verdict::Delivered,
        Some(429 | 500..=599) => Verdict::Retry(why(&status.unwrap_or_default())),
        Some(s @ 400..=499) => Verdict::Refused {
            why: why(&s),
            about_request: matches!(s, 401 | 403 | 404)
                || ABOUT_THE_REQUEST.contains(&error_type.as_str()),
            error_type,
        },
        Some(s) => Verdict::Retry(why(&s)),
        None => Verdict::Retry(why(&"no status")),
    }
}

/// The `TYPE: REASON` of an error answer to a whole request (`{"error":{"type":..,"reason":..},
/// "status":N}`, or `{"error":"text"}`), on one line; `None` when the body is not one.
pub fn request_error(body: &[u8]) -> Option<String> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let (kind, reason) = error_text(answer.get("error"));
    let text = match (kind.is_empty(), reason.is_empty()) {
        (true, true) => return None,
        (false, false) => format!("{kind}: {reason}"),
        _ => format!("{kind}{reason}"),
    };
    Some(quote(&text, REASON_CHARS))
}

/// The error's type and reason, and its cause's (`caused_by`) if it has one. An error given as a
/// plain string is its reason.
fn error_text(error: Option<&Value>) -> (String, String) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    match error {
        Some(Value::String(s)) => (String::new(), s.clone()),
        Some(error @ Value::Object(_)) => {
            let mut reason = text(error.get("reason"));
            if let Some(cause) = error.get("caused_by").filter(|c| c.is_object()) {
                let (kind, why) = (text(cause.get("type")), text(cause.get("reason")));
                if !kind.is_empty() || !why.is_empty() {
                    reason.push_str(&format!(" (caused by {kind}: {why})"));
                }
            }
            (text(error.get("type")), reason)
        }
        _ => (String::new(), String::new()),
    }
}
