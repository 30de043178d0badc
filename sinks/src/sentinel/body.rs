//! The request body: a JSON array of rows, one per event, and how a batch is cut into requests
//! of at most [`MAX_REQUEST`] bytes.
//!
//! A row is `{"TimeGenerated":..,"Type":..,"Id":..,"Event":..}`:
//!
//! - `TimeGenerated`: the event's `attributes.created` in UTC, ISO 8601 (`2024-05-01T08:00:00Z`);
//!   the time the row is built when the event has no readable `created` (Log Analytics needs a
//!   `TimeGenerated` in every row);
//! - `Type`: the event's queue (`alerts`, `endpoint_stats`, ...);
//! - `Id`: the event's `id` (a string or number as the API wrote it; `null` when it has none);
//! - `Event`: the event's JSON object exactly as the file sink writes it ([`Event::line`]).

use std::ops::Range;

use broker_core::Event;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The most bytes of one request body: the Logs Ingestion API takes at most 1 MB per call.
pub const MAX_REQUEST: usize = 1_000_000;

/// The members of an event a row needs.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    attributes: Option<&'a RawValue>,
}

/// `created`, from an event's `attributes`.
#[derive(Deserialize)]
struct Attributes {
    #[serde(default)]
    created: Option<serde_json::Value>,
}

/// The row of `event`; `now` is its `TimeGenerated` when the event has no readable `created`.
pub fn row(event: &Event, now: DateTime<Utc>) -> String {
    let line = event.line();
    // Only an object has members (serde would read an array's items as the fields in order).
    let fields: Option<Fields> = if line.starts_with('{') {
        serde_json::from_str(line).ok()
    } else {
        None
    };
    let id = fields
        .as_ref()
        .and_then(|f| f.id)
        .map(RawValue::get)
        .filter(|raw| {
            raw.starts_with('"') || raw.starts_with(|c: char| c == '-' || c.is_ascii_digit())
        })
        .unwrap_or("null");
    let created = fields
        .as_ref()
        .and_then(|f| f.attributes)
        .filter(|raw| raw.get().starts_with('{'))
        .and_then(|raw| serde_json::from_str::<Attributes>(raw.get()).ok())
        .and_then(|a| match a.created {
            Some(serde_json::Value::String(text)) => time_generated(&text),
            _ => None,
        })
        .unwrap_or_else(|| now.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    let mut row = String::with_capacity(line.len() + id.len() + created.len() + 64);
    row.push_str("{\"TimeGenerated\":\"");
    row.push_str(&created);
    row.push_str("\",\"Type\":\"");
    row.push_str(event.event_type().as_str());
    row.push_str("\",\"Id\":");
    row.push_str(id);
    row.push_str(",\"Event\":");
    row.push_str(line);
    row.push('}');
    row
}

/// An RFC 3339 time (`2024-05-01T08:00:00Z`, `...+02:00`, fractions) as UTC with a `Z`.
fn time_generated(text: &str) -> Option<String> {
    let time = DateTime::parse_from_rfc3339(text).ok()?;
    Some(
        time.with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true),
    )
}

/// The body of a request of `rows`: `[row,row,...]`.
pub fn body(rows: &[String]) -> Vec<u8> {
    let mut body = Vec::with_capacity(body_size(rows));
    body.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(row.as_bytes());
    }
    body.push(b']');
    body
}

/// The size of [`body`] of `rows`.
pub fn body_size(rows: &[String]) -> usize {
    2 + rows.iter().map(String::len).sum::<usize>() + rows.len().saturating_sub(1)
}

/// Whether `row` alone makes a body over [`MAX_REQUEST`]: it can never be sent.
pub fn too_large(row: &str) -> bool {
    row.len() + 2 > MAX_REQUEST
}

/// The rows of the next request from `start`: at most `batch` rows and [`MAX_REQUEST`] bytes,
/// ending before the first row that is [`too_large`] (empty when `rows[start]` is one).
pub fn next_request(rows: &[String], start: usize, batch: usize) -> Range<usize> {
    let mut size = 1;
    let mut end = start;
    while end < rows.len() && end - start < batch {
        let added = rows[end].len() + 1;
        if size + added > MAX_REQUEST {
            break;
        }
        size += added;
        end += 1;
    }
    start..end
}
