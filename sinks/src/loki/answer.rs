//! What Loki's 400 answer to a push says about its entries, and the verdict for each event.
//!
//! Loki takes the valid entries of a push and names the ones it refused in the text body of a
//! 400, in one of these shapes (Loki 2.x and 3.x):
//!
//! - the ingester (order): `entry with timestamp 2024-05-01 08:00:53.5 +0000 UTC ignored,
//!   reason: 'entry too far behind, entry timestamp is: ..., oldest acceptable timestamp is:
//!   ...'` followed by ` for stream: {...},` (older) or, after the stream's entries,
//!   `user 'T', total ignored: N out of M for stream: {...}` (newer); at most
//!   `max_returned_stream_errors` (default 10) entries named per stream, the total counted;
//! - the distributor (validation): `entry for stream '{...}' has timestamp too old: 2024-05-01T08:00:53Z,
//!   oldest acceptable timestamp is: ...`, `... has timestamp too new: ...`, and `Max entry
//!   size 'N' bytes exceeded for stream '{...}' while adding an entry with length 'L' bytes`.
//!
//! Each named entry is matched to the first event of the request not matched yet with the same
//! stream and the same timestamp (to the nanosecond for the ingester's, to the second for the
//! distributor's), or the same line length: that event is refused, with Loki's words as the
//! reason. The other events were taken. When Loki counted more ignored entries in a stream than
//! it named, the events of the stream after the last one named are sent again (Loki names the
//! first ones in the order they came; it keeps an entry it already has, same timestamp and line
//! in the same stream, once). An answer that names no event of the request
//! is about the request (bad labels, a proxy's 400, a missing stream): `None`.

use super::body::{without_spaces, PushBody};
use crate::util::verdicts::Verdict;

/// How a named entry is told from the others of its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Matcher {
    /// Its timestamp, to the nanosecond.
    Nanos(i64),
    /// Its timestamp, to the second (RFC 3339 without a fraction).
    Second(i64),
    /// The length of its line in bytes.
    Length(usize),
}

/// One entry Loki named.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Named {
    /// The stream, without spaces.
    stream: String,
    matcher: Matcher,
    /// Loki's words about it.
    text: String,
}

/// The verdict for each event of the request `push` from Loki's 400 body `text`, or `None` when
/// it names none of them (see the module docs).
pub fn verdicts(push: &PushBody, text: &str) -> Option<Vec<Verdict>> {
    let (named, totals) = parse(text);
    let mut verdicts = vec![Verdict::Taken; push.entries.len()];
    let mut matched = false;
    let mut named_per_stream = vec![0usize; push.streams.len()];
    for item in &named {
        let Some(stream) = push.streams.iter().position(|s| *s == item.stream) else {
            continue;
        };
        let found = push.entries.iter().enumerate().position(|(i, e)| {
            e.stream == stream
                && verdicts[i] == Verdict::Taken
                && match item.matcher {
                    Matcher::Nanos(n) => e.nanos == n,
                    Matcher::Second(s) => e.nanos.div_euclid(1_000_000_000) == s,
                    Matcher::Length(l) => e.length == l,
                }
        });
        if let Some(i) = found {
            verdicts[i] = Verdict::Refused(item.text.clone());
            named_per_stream[stream] += 1;
            matched = true;
        }
    }
    if !matched {
        return None;
    }
    for (stream_name, total) in totals {
        let Some(stream) = push.streams.iter().position(|s| *s == stream_name) else {
            continue;
        };
        if total <= named_per_stream[stream] {
            continue;
        }
        // Loki names the first refused entries of a stream in the order they came: the
        // unnamed ones are after the last one named.
        let last_named = (0..push.entries.len())
            .rev()
            .find(|&i| push.entries[i].stream == stream && verdicts[i] != Verdict::Taken)
            .unwrap_or(0);
        for (i, e) in push.entries.iter().enumerate().skip(last_named) {
            if e.stream == stream && verdicts[i] == Verdict::Taken {
                verdicts[i] = Verdict::Resend;
            }
        }
    }
    Some(verdicts)
}

/// The entries `text` names, and the `total ignored` count of each stream it gives one for.
fn parse(text: &str) -> (Vec<Named>, Vec<(String, usize)>) {
    let mut named = Vec::new();
    let mut totals: Vec<(String, usize)> = Vec::new();
    let mut last_stream: Option<String> = None;
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let next = [
            rest.find("entry with timestamp "),
            rest.find("entry for stream '"),
            rest.find("Max entry size '"),
            rest.find("total ignored: "),
        ];
        let Some(start) = next.iter().flatten().min().copied() else {
            break;
        };
        let item = &rest[start..];
        let (found, used) = if item.starts_with("entry with timestamp ") {
            ingester_item(item)
        } else if item.starts_with("entry for stream '") {
            distributor_item(item)
        } else if item.starts_with("Max entry size '") {
            line_too_long(item)
        } else {
            let (total, used) = total_ignored(item, last_stream.as_deref());
            if let Some(total) = total {
                match totals.iter_mut().find(|(s, _)| *s == total.0) {
                    Some(entry) => entry.1 += total.1,
                    None => totals.push(total),
                }
            }
            (None, used)
        };
        if let Some(found) = found {
            last_stream = Some(found.stream.clone());
            named.push(found);
        }
        at += start + used.max(1);
    }
    (named, totals)
}

/// `entry with timestamp T ignored, reason: 'R'` and the stream after it.
fn ingester_item(item: &str) -> (Option<Named>, usize) {
    let skip = "entry with timestamp ".len();
    let Some(end_time) = item.find(" ignored") else {
        return (None, skip);
    };
    let nanos = parse_go_time(&item[skip..end_time]);
    let Some(reason_at) = item.find("reason: '") else {
        return (None, skip);
    };
    let reason_start = reason_at + "reason: '".len();
    let Some(reason_len) = item[reason_start..].find('\'') else {
        return (None, skip);
    };
    let end = reason_start + reason_len + 1;
    let Some(stream) = stream_after(&item[end..], "for stream: ") else {
        return (None, end);
    };
    let found = nanos.map(|n| Named {
        stream,
        matcher: Matcher::Nanos(n),
        text: item[..end].to_string(),
    });
    (found, end)
}

/// `entry for stream '{...}' has timestamp too old: T, oldest acceptable timestamp is: T` or
/// `... too new: T`.
fn distributor_item(item: &str) -> (Option<Named>, usize) {
    let skip = "entry for stream '".len();
    let Some(stream_len) = item[skip..].find("' has timestamp too ") else {
        return (None, skip);
    };
    let stream = without_spaces(&item[skip..skip + stream_len]);
    let after = skip + stream_len + "' has timestamp too ".len();
    let rest = &item[after..];
    let (time_at, end) = if let Some(r) = rest.strip_prefix("old: ") {
        let time_at = after + "old: ".len();
        let end = match r.find("oldest acceptable timestamp is: ") {
            Some(p) => {
                let t = time_at + p + "oldest acceptable timestamp is: ".len();
                t + token(&item[t..]).len()
            }
            None => time_at + token(r).len(),
        };
        (time_at, end)
    } else if let Some(r) = rest.strip_prefix("new: ") {
        let time_at = after + "new: ".len();
        (time_at, time_at + token(r).len())
    } else {
        return (None, after);
    };
    let second = chrono::DateTime::parse_from_rfc3339(token(&item[time_at..]))
        .ok()
        .map(|t| t.timestamp());
    let found = second.map(|s| Named {
        stream,
        matcher: Matcher::Second(s),
        text: item[..end].to_string(),
    });
    (found, end)
}

/// `Max entry size 'N' bytes exceeded for stream '{...}' while adding an entry with length 'L'
/// bytes`.
fn line_too_long(item: &str) -> (Option<Named>, usize) {
    let skip = "Max entry size '".len();
    let Some(s) = item.find("for stream '") else {
        return (None, skip);
    };
    let s = s + "for stream '".len();
    let Some(stream_len) = item[s..].find("' while adding an entry with length '") else {
        return (None, skip);
    };
    let stream = without_spaces(&item[s..s + stream_len]);
    let l = s + stream_len + "' while adding an entry with length '".len();
    let Some(len_len) = item[l..].find('\'') else {
        return (None, l);
    };
    let end = (l + len_len + "' bytes".len()).min(item.len());
    let found = item[l..l + len_len].parse().ok().map(|length| Named {
        stream,
        matcher: Matcher::Length(length),
        text: item[..end].to_string(),
    });
    (found, end)
}

/// `total ignored: N out of M`, and the stream after it (`for stream: {...}`) or else the one of
/// the entries before it.
fn total_ignored(item: &str, last_stream: Option<&str>) -> (Option<(String, usize)>, usize) {
    let skip = "total ignored: ".len();
    let digits = item[skip..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(item.len() - skip);
    let Ok(total) = item[skip..skip + digits].parse::<usize>() else {
        return (None, skip);
    };
    let line_end = item.find('\n').unwrap_or(item.len());
    let stream =
        stream_after(&item[..line_end], "for stream: ").or_else(|| last_stream.map(str::to_string));
    (stream.map(|s| (s, total)), skip + digits)
}

/// The stream `{...}` after `marker` in `text`, without spaces.
fn stream_after(text: &str, marker: &str) -> Option<String> {
    let at = text.find(marker)? + marker.len();
    let rest = &text[at..];
    if !rest.starts_with('{') {
        return None;
    }
    let end = rest.find('}')?;
    Some(without_spaces(&rest[..=end]))
}

/// The text up to white space, `,`, `;` or `'`.
fn token(text: &str) -> &str {
    let end = text
        .find(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '\'')
        .unwrap_or(text.len());
    &text[..end]
}

/// Go's `time.Time.String()` (`2024-05-01 08:00:53.123456789 +0000 UTC`) in nanoseconds.
fn parse_go_time(text: &str) -> Option<i64> {
    let mut words = text.split_whitespace();
    let shown = format!("{} {} {}", words.next()?, words.next()?, words.next()?);
    chrono::DateTime::parse_from_str(&shown, "%Y-%m-%d %H:%M:%S%.f %z")
        .ok()?
        .timestamp_nanos_opt()
}
