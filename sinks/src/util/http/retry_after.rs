//! `Retry-After` (RFC 9110, section 10.2.3): how long a receiver that answered 429 or 503 asks
//! the sender to wait, as seconds (`120`) or an HTTP-date (`Fri, 04 Dec 2026 07:00:00 GMT`, or
//! the obsolete RFC 850 and asctime forms).
//!
//! The wait is capped at [`MAX_RETRY_AFTER`], so a receiver that asks for a day (or a clock that
//! is wrong) holds a pipe back at most five minutes; a date in the past asks for no wait.

use std::time::{Duration, SystemTime};

/// The longest wait a `Retry-After` can ask for: 300 s.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The wait a `Retry-After` value asks for at `now`, capped at [`MAX_RETRY_AFTER`]; `None` when
/// the value is neither a number of seconds nor an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: a number too large for u64 is still a long wait.
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let date = httpdate::parse_http_date(value).ok()?;
        date.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_every_date_form_capped() {
        // 1994-11-06 08:49:37 UTC, the RFC's example.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let wait = |v: &str| parse_retry_after(v, now);
        assert_eq!(wait("2"), Some(Duration::from_secs(2)));
        assert_eq!(wait(" 0 "), Some(Duration::ZERO));
        assert_eq!(wait("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("99999999999999999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            wait("Sun, 06 Nov 1994 08:49:40 GMT"),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            wait("Sunday, 06-Nov-94 08:50:37 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            wait("Sun Nov  6 08:49:47 1994"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(wait("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(wait("Mon, 07 Nov 1994 08:49:37 GMT"), Some(MAX_RETRY_AFTER));
        for bad in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994"] {
            assert_eq!(wait(bad), None, "{bad:?}");
        }
    }
}
