//! The HTTP client of a sink: the `Url`, `Timeout`, `Proxy` and `CA` keys, and the `reqwest`
//! client built from them.
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `Url` | (the sink says) | `https://...` to any host; `http://` only to a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`) |
//! | `Timeout` | `30` | seconds to connect, and in all, for each request (`2.5`, `30s`, `5m`) |
//! | `Proxy` | no proxy | `environment` (the `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` variables) or a proxy URL (`http://proxy.example.com:3128`) |
//! | `CA` | the system's trusted roots | PEM file of the CA certificates that may sign the receiver's certificate |
//!
//! Without `Proxy` the proxy variables are ignored: a daemon's environment (a shell's
//! `HTTPS_PROXY`, a unit's `Environment=`) never reroutes events on its own. The client never
//! follows a redirect (a sink reports it), and TLS is rustls with ring, the workspace's one
//! crypto provider, always verifying the receiver's certificate. Error messages name a URL by its
//! origin (`https://host:port`) only: a path or query may hold a secret.

use std::path::PathBuf;
use std::time::Duration;

use broker_core::config::{ConfigError, Keys, PipeSettings};
use broker_core::registry::SinkKey;
use broker_core::KeyError;
use reqwest::Url;

use super::answer::transport_reason;
use crate::util::blocking::run_blocking;
use crate::util::tls::{self, TlsSettings};

/// `Url`: where to send (a sink may word its own help and declare its own key instead).
pub const URL: SinkKey = SinkKey::one(
    "Url",
    "https:// URL of the receiver (http:// only to localhost)",
);
/// `Timeout`: seconds per request.
pub const TIMEOUT: SinkKey = SinkKey::one(
    "Timeout",
    "seconds to connect, and in all, per request (default 30)",
);
/// `Proxy`: none, `environment` or a proxy URL.
pub const PROXY: SinkKey = SinkKey::one(
    "Proxy",
    "environment (HTTPS_PROXY, NO_PROXY...) or http://proxy:port (default no proxy)",
);
/// `CA`: the PEM file of the CAs to trust.
pub const CA: SinkKey = SinkKey::one(
    "CA",
    "PEM file of the CAs to trust (default the system's roots)",
);

/// The keys [`ClientSettings::from_settings`] reads.
pub const CLIENT_KEYS: &[SinkKey] = &[TIMEOUT, PROXY, CA];

/// Seconds per request when `Timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Checks a URL's text: absolute, `https://` (or `http://` to a loopback host), a host, no user
/// or password. The error says why without quoting the text (it may hold a secret).
pub fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("not an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if broker_core::loopback::is_loopback_url(url.as_str()) => {}
        "http" => {
            return Err(
                "http:// is only for a loopback host (localhost, 127.0.0.0/8, [::1]): use https://"
                    .to_string(),
            )
        }
        other => {
            return Err(format!(
                "scheme {other:?} is not https (or http to localhost)"
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_string());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("has a user or password: give credentials in their own keys".to_string());
    }
    Ok(url)
}

/// Reads the URL key `key` (required) with [`parse_url`]; errors name the key.
pub fn read_url(keys: &Keys, key: &str) -> Result<Url, ConfigError> {
    match keys.value(key) {
        None => Err(keys.error(key, "missing: give the https:// URL of the receiver")),
        Some("") => Err(keys.error(key, "empty: give the https:// URL of the receiver")),
        Some(text) => parse_url(text).map_err(|e| keys.error(key, e)),
    }
}

/// The URL's scheme, host and port (`https://hooks.example.com`): how messages name a receiver
/// without its path or query.
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Which proxy the client uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxySetting {
    /// None at all (no `Proxy` key): the proxy variables are ignored.
    Direct,
    /// `Proxy = environment`: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`.
    Environment,
    /// `Proxy = http://host:port`.
    Url(Url),
}

/// The checked `Timeout`, `Proxy` and `CA` of a pipe.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Connect and total timeout of each request.
    pub timeout: Duration,
    /// The proxy.
    pub proxy: ProxySetting,
    /// The PEM file of the CAs to trust instead of the system's roots.
    pub ca: Option<PathBuf>,
}

impl ClientSettings {
    /// Reads `Timeout`, `Proxy` and `CA` of a pipe (no I/O).
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        Self::from_keys(&settings.keys(CLIENT_KEYS))
    }

    /// The same through a sink's own key reader (whose list holds [`TIMEOUT`], [`PROXY`] and
    /// [`CA`]).
    pub fn from_keys(keys: &Keys) -> Result<Self, ConfigError> {
        let timeout = keys.seconds("Timeout", 0.001..=3600.0, DEFAULT_TIMEOUT)?;
        let proxy = match keys.value("Proxy") {
            None => ProxySetting::Direct,
            Some(text) if text.eq_ignore_ascii_case("environment") => ProxySetting::Environment,
            Some(text) => ProxySetting::Url(parse_proxy(text).map_err(|e| keys.error("Proxy", e))?),
        };
        let ca = keys.path("CA", "a PEM file")?;
        Ok(ClientSettings { timeout, proxy, ca })
    }

    /// The proxy's password, if its URL has one: a secret to mask.
    pub fn proxy_password(&self) -> Option<String> {
        match &self.proxy {
            ProxySetting::Url(url) => url.password().map(str::to_string),
            _ => None,
        }
    }

    /// Reads the `CA` file, if any, and checks that it holds PEM certificates (a sink's
    /// [`Sink::check_files`](broker_core::Sink::check_files)); the error names the file.
    pub fn check_files(&self) -> Result<(), KeyError> {
        let settings = TlsSettings {
            ca: self.ca.clone(),
            ..TlsSettings::default()
        };
        settings.check_files()
    }

    /// Builds the client. It reads the `CA` file, so call it on the first delivery (a sink
    /// builds without I/O), on tokio's blocking pool (`spawn_blocking`). The error says what
    /// failed, naming the `CA` file; a sink returns it as a retryable error.
    pub fn build(&self) -> Result<reqwest::Client, String> {
        broker_core::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(format!("procustodibus-broker/{}", broker_core::VERSION))
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none());
        builder = match &self.proxy {
            ProxySetting::Direct => builder.no_proxy(),
            ProxySetting::Environment => builder,
            ProxySetting::Url(url) => builder
                .proxy(reqwest::Proxy::all(url.clone()).map_err(|_| "Proxy: not a proxy URL")?),
        };
        builder = builder.tls_backend_preconfigured(self.tls_config()?);
        builder
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", transport_reason(&e)))
    }

    /// The rustls config of the toolkit ([`tls::client_config`]: ring, the system's roots or
    /// `CA`, always verifying), offering HTTP/2 and HTTP/1.1.
    fn tls_config(&self) -> Result<rustls::ClientConfig, String> {
        let settings = TlsSettings {
            ca: self.ca.clone(),
            ..TlsSettings::default()
        };
        let mut config = tls::client_config(&settings).map_err(|e| match self.ca {
            // The error names the file: `CA /etc/ca.pem: no such file or directory`.
            Some(_) => format!("cannot read {e}"),
            None => format!("cannot set up TLS: {e}"),
        })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The one-line reason of a failed request (see [`transport_reason`]), with what a timeout
    /// means and, for an untrusted certificate, what to set.
    pub fn reason(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!(
                "no answer within {} s (the request may have arrived: it is sent again)",
                self.timeout.as_secs_f64()
            );
        }
        let mut reason = transport_reason(error);
        if reason.contains("invalid peer certificate") {
            reason.push_str(&match &self.ca {
                Some(ca) => format!(
                    " (the server's certificate is not signed by a CA of {})",
                    ca.display()
                ),
                None => " (the server's certificate is not signed by a CA this system trusts: \
                          set CA = the PEM file of the CAs that signed it)"
                    .to_string(),
            });
        }
        reason
    }
}

/// A sink's HTTP client, built on the first delivery (reading the `CA` file, on tokio's blocking
/// pool) and kept; [`LazyClient::forget`] (a sink's `reopen` and `close`) drops it and its
/// connections, so the next delivery reads the `CA` file again.
#[derive(Debug, Default)]
pub struct LazyClient {
    client: Option<reqwest::Client>,
}

impl LazyClient {
    /// The client, built from `settings` now if there is none yet. The error says what failed
    /// (naming the `CA` file); a sink returns it as a retryable error.
    pub async fn get(&mut self, settings: &ClientSettings) -> Result<reqwest::Client, String> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let settings = settings.clone();
        let client = run_blocking("setting up the HTTP client", move || settings.build())
            .await
            .map_err(|e| e.message)??;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Drops the client and its connections.
    pub fn forget(&mut self) {
        self.client = None;
    }
}

/// `Proxy = URL`: http or https, with a host.
fn parse_proxy(text: &str) -> Result<Url, String> {
    let url = Url::parse(text)
        .map_err(|_| "not a proxy URL: give `environment` or http://host:port".to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err("not a proxy URL: give `environment` or http://host:port".to_string());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(pairs: &[(&str, &str)]) -> Result<ClientSettings, String> {
        ClientSettings::from_settings(&PipeSettings::new("P", "/b.conf", pairs))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn urls_https_anywhere_http_to_loopback_only() {
        for url in [
            "https://h.example/x",
            "http://localhost:8/",
            "http://127.3.0.1/",
            "http://[::1]/",
        ] {
            assert!(parse_url(url).is_ok(), "{url}");
        }
        let refused = [
            (
                "http://h.example/s3cret",
                "http:// is only for a loopback host",
            ),
            ("http://10.0.0.1/", "http:// is only for a loopback host"),
            ("ftp://h/s3cret", "scheme \"ftp\""),
            ("h/s3cret", "not an absolute URL"),
            ("https://u:s3cret@h/", "has a user or password"),
        ];
        for (url, expected) in refused {
            let e = parse_url(url).unwrap_err();
            assert!(e.starts_with(expected), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert_eq!(
            origin(&parse_url("https://h.example:8088/a?b").unwrap()),
            "https://h.example:8088"
        );
    }

    #[test]
    fn defaults_and_every_key() {
        let c = client(&[]).unwrap();
        assert_eq!(
            (c.timeout, &c.proxy, &c.ca),
            (DEFAULT_TIMEOUT, &ProxySetting::Direct, &None)
        );
        let c = client(&[
            ("Timeout", "2.5"),
            ("proxy", "Environment"),
            ("CA", "/ca.pem"),
        ])
        .unwrap();
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.proxy, ProxySetting::Environment);
        assert_eq!(c.ca, Some(PathBuf::from("/ca.pem")));
        let c = client(&[("Proxy", "http://u:pw-s3cret@proxy.example:3128")]).unwrap();
        assert!(matches!(c.proxy, ProxySetting::Url(_)));
        assert_eq!(c.proxy_password().as_deref(), Some("pw-s3cret"));
    }

    #[test]
    fn errors_name_the_key_never_the_value() {
        for (pairs, expected) in [
            (&[("Timeout", "-1")][..], "pipe P: Timeout: \"-1\""),
            (&[("Timeout", "3601")][..], "pipe P: Timeout: \"3601\""),
            (&[("Proxy", "s3cret")][..], "pipe P: Proxy: not a proxy URL"),
            (
                &[("Proxy", "socks5://s3cret@h:1")][..],
                "pipe P: Proxy: not a proxy URL",
            ),
            (&[("CA", "")][..], "pipe P: CA: empty"),
        ] {
            let e = client(pairs).unwrap_err();
            assert!(e.contains(expected), "{e:?} should contain {expected:?}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let c = client(&[("CA", "/nonexistent/ca.pem")]).unwrap();
        let e = c.build().unwrap_err();
        assert!(
            e.starts_with("cannot read CA /nonexistent/ca.pem: no such file"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let c = client(&[("CA", path.to_str().unwrap())]).unwrap();
        let e = c.build().unwrap_err();
        assert!(
            e.starts_with(&format!("cannot read CA {}: ", path.display())),
            "{e}"
        );
        assert!(client(&[]).unwrap().build().is_ok());
    }
}
