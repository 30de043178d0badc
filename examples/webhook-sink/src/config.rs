//! A webhook pipe's settings, read and checked from its `[Pipe.NAME]` keys without any I/O but
//! the `HeaderFile` files.
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `Url` | (required) | where to POST: `https://...`; `http://` only to a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`) |
//! | `Header` | none | `Name: value`, repeatable; sent with every request; values are never logged |
//! | `HeaderFile` | none | a file holding one `Name: value` line (a secret header, so broker.conf can stay world-readable), repeatable; read and checked when the sink is built (`--check-config` too) |
//! | `Batch` | `100` | events per request, 1 to 10000 |
//! | `Body` | `ndjson` | `ndjson` (one JSON line per event) or `array` (one JSON array) |
//! | `Timeout` | `30` | seconds to connect, and in all, for each request |
//! | `CA` | the system's trusted roots | PEM file of the CA certificates that may sign the server's certificate |
//! | `Proxy` | no proxy | `environment` (the `HTTPS_PROXY`... variables) or a proxy URL |
//!
//! `Url`, `Timeout`, `CA` and `Proxy` are the HTTP layer's ([`broker_sinks::util::http::client`]).
//! Error messages name the file, the line, the pipe and the key, never a header's value nor the
//! URL's path or query (a webhook URL often carries its secret there).

use std::path::Path;

use broker_core::config::{ConfigError, Keys, Occurrence, PipeSettings};
use broker_core::registry::SinkKey;
use broker_sinks::util::http::client::{self, ClientSettings};
use broker_sinks::util::http::secret;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Url;

/// Events per request when `Batch` is not set.
pub const DEFAULT_BATCH: usize = 100;
/// The largest `Batch`.
pub const MAX_BATCH: usize = 10_000;

/// The webhook's keys, as `--list-sinks` shows them.
pub const KEYS: &[SinkKey] = &[
    SinkKey::one("Url", "https:// URL to POST the events to (required)"),
    SinkKey::list(
        "Header",
        "`Name: value` sent with every request (values are never logged)",
    ),
    SinkKey::one("Batch", "events per request, 1 to 10000 (default 100)"),
    SinkKey::one(
        "Body",
        "ndjson (a JSON line per event) or array (default ndjson)",
    ),
    client::TIMEOUT,
    client::CA,
    client::PROXY,
    SinkKey::list(
        "HeaderFile",
        "file holding one `Name: value` header line (a secret kept out of broker.conf)",
    ),
];

broker_core::keyword_enum! {
    /// How a request's events are laid out in its body.
    pub enum BodyFormat {
        /// One JSON line per event, each ending with a newline (`application/x-ndjson`).
        Ndjson = "ndjson",
        /// One JSON array of the events (`application/json`).
        Array = "array",
    }
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
    /// The headers of every request: the `Header` and `HeaderFile` keys (values marked
    /// sensitive), plus the `Content-Type` of the body format unless a header sets one.
    pub headers: HeaderMap,
    /// Events per request.
    pub batch: usize,
    /// The body format.
    pub body: BodyFormat,
    /// `Timeout`, `CA` and `Proxy`.
    pub client: ClientSettings,
}

/// Headers that the HTTP client sets itself from the body; a `Header` may not set them.
const RESERVED: [&str; 4] = ["content-length", "transfer-encoding", "host", "connection"];

impl WebhookConfig {
    /// Reads and checks a pipe's keys. No I/O but the `HeaderFile` files: the `CA` file is read
    /// on the first delivery.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        let keys = settings.keys(KEYS);
        let url = client::read_url(&keys, "Url")?;
        let body = match keys.value("Body") {
            None => BodyFormat::Ndjson,
            Some(text) => text.parse().map_err(|_| {
                keys.error(
                    "Body",
                    format!("{text:?} is not a body format (expected ndjson or array)"),
                )
            })?,
        };
        let batch = keys
            .number("Batch", 1..=MAX_BATCH, "events")?
            .unwrap_or(DEFAULT_BATCH);
        let client = ClientSettings::from_keys(&keys)?;
        let mut headers = headers(&keys)?;
        if !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(body.content_type()));
        }
        Ok(WebhookConfig {
            url,
            headers,
            batch,
            body,
            client,
        })
    }

    /// The URL's scheme, host and port (`https://hooks.example.com`): how messages name the
    /// destination without its path or query, which may hold a secret.
    pub fn origin(&self) -> String {
        client::origin(&self.url)
    }

    /// Whether the Url's host is this machine (`localhost`, `127.0.0.0/8`, `[::1]`).
    pub fn is_loopback(&self) -> bool {
        broker_core::loopback::is_loopback_url(self.url.as_str())
    }
}

/// Every `Header = Name: value` in file order, then the header of each `HeaderFile`, with
/// sensitive values. (Both are registered with `SinkKey::list`, so the config keeps every
/// occurrence, each with its line.)
fn headers(keys: &Keys) -> Result<HeaderMap, ConfigError> {
    let mut headers = HeaderMap::new();
    for occurrence in keys.each("Header") {
        let (name, value) = header(occurrence.value, None).map_err(|e| occurrence.error(e))?;
        headers.append(name, value);
    }
    for occurrence in keys.each("HeaderFile") {
        let (name, value) = header_file(&occurrence)?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// The header in the file a `HeaderFile` names; errors name the file, never its content.
fn header_file(occurrence: &Occurrence) -> Result<(HeaderName, HeaderValue), ConfigError> {
    if occurrence.value.is_empty() {
        return Err(occurrence.error("empty: give the path of a file holding `Name: value`"));
    }
    let path = Path::new(occurrence.value);
    let line = secret::read_file(path).map_err(|e| occurrence.error(e))?;
    header(line.expose(), Some(path)).map_err(|e| occurrence.error(e))
}

/// A `Name: value` header with a sensitive value; `file` names where it came from. Messages name
/// the header, never its value.
fn header(text: &str, file: Option<&Path>) -> Result<(HeaderName, HeaderValue), String> {
    let from = file.map_or(String::new(), |f| format!("{}: ", f.display()));
    let Some((name, value)) = text.split_once(':') else {
        return Err(format!(
            "{from}expected `Name: value` (a header name, a colon, then the value)"
        ));
    };
    let name = name.trim();
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| match file {
        // A file's text before the colon may be a secret written without its name.
        Some(_) => format!("{from}the text before the colon is not an HTTP header name"),
        None => format!("{name:?} is not an HTTP header name"),
    })?;
    if RESERVED.contains(&header.as_str()) {
        return Err(format!(
            "{from}{name} is set by the sink itself; remove this header"
        ));
    }
    let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
        format!("{from}the value of {name} is not a valid HTTP header value (printable ASCII)")
    })?;
    value.set_sensitive(true);
    Ok((header, value))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

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
        assert_eq!(c.client.timeout, Duration::from_secs(30));
        assert_eq!(c.client.ca, None);
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
        assert_eq!(c.client.timeout, Duration::from_millis(2500));
        assert_eq!(c.client.ca, Some(PathBuf::from("/etc/ca.pem")));
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

    #[test]
    fn a_header_file_holds_a_secret_header_named_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_string()
        };
        let good = write("good", "Authorization: Splunk s3cret-token\n");
        let c = config(&[("Url", "https://h/"), ("HeaderFile", &good)]).unwrap();
        assert_eq!(c.headers["authorization"], "Splunk s3cret-token");
        assert!(c.headers["authorization"].is_sensitive());

        let no_colon = write("nocolon", "s3cret-token\n");
        let bad_name = write("badname", "s3cret token: x\n");
        let reserved = write("reserved", "Host: s3cret\n");
        let cases = [
            (
                no_colon.clone(),
                format!("{no_colon}: expected `Name: value`"),
            ),
            (
                bad_name.clone(),
                format!("{bad_name}: the text before the colon is not"),
            ),
            (
                reserved.clone(),
                format!("{reserved}: Host is set by the sink itself"),
            ),
            (
                "/no/such/header".to_string(),
                "cannot read /no/such/header: no such file".to_string(),
            ),
            (String::new(), "empty: give the path".to_string()),
        ];
        for (path, expected) in cases {
            let e = config(&[("Url", "https://h/"), ("HeaderFile", &path)]).unwrap_err();
            assert!(e.starts_with("/etc/b.conf: pipe Hook: HeaderFile: "), "{e}");
            assert!(e.contains(&expected), "{e:?} should contain {expected:?}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn proxy_is_none_unless_named() {
        use broker_sinks::util::http::ProxySetting;
        let c = config(&[("Url", "https://h/")]).unwrap();
        assert_eq!(c.client.proxy, ProxySetting::Direct);
        let c = config(&[("Url", "https://h/"), ("Proxy", "environment")]).unwrap();
        assert_eq!(c.client.proxy, ProxySetting::Environment);
        let e = config(&[("Url", "https://h/"), ("Proxy", "nope")]).unwrap_err();
        assert!(e.contains("pipe Hook: Proxy: not a proxy URL"), "{e}");
    }
}
