//! A webhook pipe's settings, read and checked from its `[Pipe.NAME]` keys without any I/O.
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `Url` | (required) | where to POST: `https://...`; `http://` only to a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`) |
//! | `Header` | none | `Name: value`, repeatable; sent with every request; values are never logged |
//! | `Batch` | `100` | events per request, 1 to 10000 |
//! | `Body` | `ndjson` | `ndjson` (one JSON line per event) or `array` (one JSON array) |
//! | `Timeout` | `30` | seconds to connect, and in all, for each request |
//! | `CA` | the system's trusted roots | PEM file of the CA certificates that may sign the server's certificate |
//!
//! Error messages name the file, the line, the pipe and the key, never a header's value nor the
//! URL's path or query (a webhook URL often carries its secret there).

use std::path::PathBuf;
use std::time::Duration;

use broker_core::config::ini::canonical_key;
use broker_core::config::{ConfigError, PipeSettings};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Url;

/// Events per request when `Batch` is not set.
pub const DEFAULT_BATCH: usize = 100;
/// The largest `Batch`.
pub const MAX_BATCH: usize = 10_000;
/// Seconds per request when `Timeout` is not set.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// How a request's events are laid out in its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// One JSON line per event, each ending with a newline (`application/x-ndjson`).
    Ndjson,
    /// One JSON array of the events (`application/json`).
    Array,
}

impl BodyFormat {
    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Ndjson => "application/x-ndjson",
            BodyFormat::Array => "application/json",
        }
    }
}

/// A webhook pipe's checked settings.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: Url,
    /// The headers of every request: the `Header` keys (values marked sensitive), plus the
    /// `Content-Type` of the body format unless a `Header` sets one.
    pub headers: HeaderMap,
    /// Events per request.
    pub batch: usize,
    /// The body format.
    pub body: BodyFormat,
    /// Connect and total timeout of each request.
    pub timeout: Duration,
    /// The PEM file of the CAs to trust instead of the system's roots.
    pub ca: Option<PathBuf>,
}

/// Headers that the HTTP client sets itself from the body; a `Header` may not set them.
const RESERVED: [&str; 4] = ["content-length", "transfer-encoding", "host", "connection"];

impl WebhookConfig {
    /// Reads and checks a pipe's keys. No I/O: the `CA` file is read on the first delivery.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        let url = url(settings)?;
        let body = match settings
            .value("Body")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("ndjson") => BodyFormat::Ndjson,
            Some("array") => BodyFormat::Array,
            Some(other) => {
                return Err(settings.error(
                    "Body",
                    format!("{other:?} is not a body format (expected ndjson or array)"),
                ))
            }
        };
        let batch = match settings.value("Batch") {
            None => DEFAULT_BATCH,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_BATCH).contains(n))
                .ok_or_else(|| {
                    settings.error(
                        "Batch",
                        format!("{text:?} is not a number of events from 1 to {MAX_BATCH}"),
                    )
                })?,
        };
        let timeout = match settings.value("Timeout") {
            None => Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|s| *s > 0.0 && *s <= 3600.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    settings.error(
                        "Timeout",
                        format!("{text:?} is not a number of seconds above 0 (at most 3600)"),
                    )
                })?,
        };
        let ca = match settings.value("CA") {
            None => None,
            Some("") => return Err(settings.error("CA", "empty: give the path of a PEM file")),
            Some(path) => Some(PathBuf::from(path)),
        };
        let mut headers = headers(settings)?;
        if !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(body.content_type()));
        }
        Ok(WebhookConfig {
            url,
            headers,
            batch,
            body,
            timeout,
            ca,
        })
    }

    /// The URL's scheme, host and port (`https://hooks.example.com`): how messages name the
    /// destination without its path or query, which may hold a secret.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// Whether the Url's host is this machine (`localhost`, `127.0.0.0/8`, `[::1]`): such a
    /// receiver is reached directly, never through a proxy.
    pub fn is_loopback(&self) -> bool {
        broker_core::loopback::is_loopback_url(self.url.as_str())
    }
}

/// `Url`: required, absolute, `https://` (or `http://` to a loopback host), no user or password.
fn url(settings: &PipeSettings) -> Result<Url, ConfigError> {
    let text = match settings.value("Url") {
        None => {
            return Err(settings.error(
                "Url",
                "missing: the webhook sink needs Url = https://... to POST the events to",
            ))
        }
        Some("") => return Err(settings.error("Url", "empty: give the https:// URL to POST to")),
        Some(text) => text,
    };
    // The reason only: the text may hold a secret.
    let url = Url::parse(text)
        .map_err(|e| settings.error("Url", format!("not an absolute URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if broker_core::loopback::is_loopback_url(url.as_str()) => {}
        "http" => {
            return Err(settings.error(
                "Url",
                "http:// is only for a loopback host (localhost, 127.0.0.0/8, [::1]): use https://",
            ))
        }
        other => {
            return Err(settings.error(
                "Url",
                format!("scheme {other:?} is not https (or http to localhost)"),
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(settings.error("Url", "has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(settings.error(
            "Url",
            "has a user or password: send credentials with Header = Authorization: ... instead",
        ));
    }
    Ok(url)
}

/// Every `Header = Name: value`, in file order, with sensitive values. (`Header` is registered
/// with `SinkKey::list`, so the config keeps every occurrence, each with its line.)
fn headers(settings: &PipeSettings) -> Result<HeaderMap, ConfigError> {
    let mut headers = HeaderMap::new();
    let headers_only = settings
        .settings
        .iter()
        .filter(|s| canonical_key(&s.key) == "header");
    for setting in headers_only {
        // Messages about a header name its line and its name, never its value.
        let at = |message: String| {
            ConfigError::at(
                &settings.file,
                setting.line,
                format!("pipe {}: {}: {message}", settings.pipe, setting.key),
            )
        };
        let Some((name, value)) = setting.value.split_once(':') else {
            return Err(at(
                "expected `Name: value` (a header name, a colon, then the value)".to_string(),
            ));
        };
        let name = name.trim();
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| at(format!("{name:?} is not an HTTP header name")))?;
        if RESERVED.contains(&header.as_str()) {
            return Err(at(format!(
                "{name} is set by the sink itself; remove this Header"
            )));
        }
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
            at(format!(
                "the value of {name} is not a valid HTTP header value (printable ASCII)"
            ))
        })?;
        value.set_sensitive(true);
        headers.append(header, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> PipeSettings {
        PipeSettings::new("Hook", "/etc/b.conf", pairs)
    }

    fn config(pairs: &[(&str, &str)]) -> Result<WebhookConfig, String> {
        WebhookConfig::from_settings(&settings(pairs)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = config(&[("Url", "https://hooks.example.com/in?token=s3cret")]).unwrap();
        assert_eq!(c.batch, DEFAULT_BATCH);
        assert_eq!(c.body, BodyFormat::Ndjson);
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.ca, None);
        assert_eq!(c.origin(), "https://hooks.example.com");
        assert_eq!(c.headers[CONTENT_TYPE], "application/x-ndjson");
    }

    #[test]
    fn every_key() {
        let c = config(&[
            ("url", "https://127.0.0.1:8088/services/collector/raw"),
            ("Header", "Authorization: Splunk 1234-abcd"),
            ("header", "X-Extra:  a b  "),
            ("Header", "x-extra: second"),
            ("Batch", "25"),
            ("Body", "Array"),
            ("Timeout", "2.5"),
            ("CA", "/etc/ca.pem"),
        ])
        .unwrap();
        assert_eq!(c.batch, 25);
        assert_eq!(c.body, BodyFormat::Array);
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(c.headers["authorization"], "Splunk 1234-abcd");
        assert!(c.headers["authorization"].is_sensitive());
        let extra: Vec<_> = c.headers.get_all("x-extra").iter().collect();
        assert_eq!(extra, ["a b", "second"]);
        assert_eq!(c.headers[CONTENT_TYPE], "application/json");
        assert_eq!(c.origin(), "https://127.0.0.1:8088");
    }

    #[test]
    fn a_content_type_header_wins() {
        let c = config(&[
            ("Url", "https://h.example/"),
            ("Header", "Content-Type: text/plain"),
        ])
        .unwrap();
        let types: Vec<_> = c.headers.get_all(CONTENT_TYPE).iter().collect();
        assert_eq!(types, ["text/plain"]);
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for url in [
            "http://localhost:8080/x",
            "http://127.0.0.1/x",
            "http://127.1.2.3/x",
            "http://[::1]:9/",
            "http://LocalHost./",
        ] {
            let c = config(&[("Url", url)]).unwrap();
            assert!(c.is_loopback(), "{url}");
        }
        for url in [
            "http://hooks.example.com/x",
            "http://10.0.0.1/",
            "http://[::2]/",
        ] {
            assert_eq!(
                config(&[("Url", url)]).unwrap_err(),
                "/etc/b.conf: pipe Hook: Url: http:// is only for a loopback host (localhost, 127.0.0.0/8, [::1]): use https://"
            );
        }
        assert!(!config(&[("Url", "https://hooks.example.com/")])
            .unwrap()
            .is_loopback());
    }

    #[test]
    fn errors_name_the_key_and_never_a_secret() {
        let cases: [(&[(&str, &str)], &str); 11] = [
            (&[], "pipe Hook: Url: missing"),
            (&[("Url", "")], "pipe Hook: Url: empty"),
            (
                &[("Url", "hooks/s3cret")],
                "pipe Hook: Url: not an absolute URL",
            ),
            (
                &[("Url", "ftp://h/s3cret")],
                "pipe Hook: Url: scheme \"ftp\"",
            ),
            (
                &[("Url", "https://me:s3cret@h/")],
                "pipe Hook: Url: has a user or password",
            ),
            (
                &[("Url", "https://h/"), ("Batch", "0")],
                "pipe Hook: Batch: \"0\" is not",
            ),
            (
                &[("Url", "https://h/"), ("Body", "xml")],
                "pipe Hook: Body: \"xml\" is not",
            ),
            (
                &[("Url", "https://h/"), ("Timeout", "-1")],
                "pipe Hook: Timeout: \"-1\"",
            ),
            (&[("Url", "https://h/"), ("CA", "")], "pipe Hook: CA: empty"),
            (
                &[("Url", "https://h/"), ("Header", "s3cret")],
                "pipe Hook: Header: expected `Name: value`",
            ),
            (
                &[("Url", "https://h/"), ("Header", "X-Key: s3cret\u{7f}")],
                "pipe Hook: Header: the value of X-Key is not",
            ),
        ];
        for (pairs, expected) in cases {
            let e = config(pairs).unwrap_err();
            assert!(e.starts_with("/etc/b.conf: "), "{e}");
            assert!(e.contains(expected), "{e:?} should contain {expected:?}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert!(config(&[("Url", "https://h/"), ("Header", "Host: x")])
            .unwrap_err()
            .contains("Host is set by the sink itself"));
        assert!(config(&[("Url", "https://h/"), ("Header", "Bad Name: x")])
            .unwrap_err()
            .contains("\"Bad Name\" is not an HTTP header name"));
    }

    #[test]
    fn errors_give_the_line_of_the_bad_header() {
        let text = "[Broker]\nBroker = b\n[Pipe.Hook]\nTo = webhook\nUrl = https://h/\n\
                    Header = A: 1\nHeader = nocolon\n";
        crate::link();
        let e = broker_core::config::BrokerConfig::parse(text, std::path::Path::new("/b.conf"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/b.conf line 7: pipe Hook: Header: expected `Name: value` (a header name, a colon, then the value)"
        );
    }
}
