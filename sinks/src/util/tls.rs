//! TLS clients with rustls and the workspace's one crypto provider, ring.
//!
//! The server's certificate is always verified: against the certificates of the `CA` file, or
//! else the system's trusted roots, and for the host connected to (or `ServerName`). `Cert` and
//! `Key` give a client certificate. A sink declares the keys ([`CA`], [`CERT`], [`KEY`],
//! [`SERVER_NAME`], or all of [`KEYS`]) in its key list, reads them with
//! [`TlsSettings::from_keys`] when it is built (no I/O), checks the files for `--check-config`
//! with [`TlsSettings::check_files`], and connects with a [`TlsClient`], which
//! reads the files on the first connection (off the async runtime) and keeps them until
//! [`TlsClient::forget`] (a sink's `reopen`). [`client_config`] gives the rustls settings alone,
//! for a client library that makes its own connections. Errors name the file and the reason,
//! never a key's content.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use broker_core::config::{ConfigError, Keys};
use broker_core::registry::SinkKey;
use broker_core::KeyError;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::connect::{self, within, TIMEOUT};
use super::io_error::reason;

/// `CA`: PEM file of the certificates to trust.
pub const CA: SinkKey = SinkKey::one(
    "CA",
    "tls: PEM file of the CAs to trust (default the system's roots)",
);

/// `Cert`: PEM file of the client certificate chain (with [`KEY`]).
pub const CERT: SinkKey = SinkKey::one("Cert", "tls: PEM file of the client certificate chain");

/// `Key`: PEM file of the client certificate's private key (with [`CERT`]).
pub const KEY: SinkKey = SinkKey::one(
    "Key",
    "tls: PEM file of the client certificate's private key",
);

/// `ServerName`: the name to verify the server's certificate against.
pub const SERVER_NAME: SinkKey = SinkKey::one(
    "ServerName",
    "tls: name to verify the server against (default the host)",
);

/// The four TLS keys, in the order a key list shows them.
pub const KEYS: [SinkKey; 4] = [CA, CERT, KEY, SERVER_NAME];

/// The TLS keys of a pipe: file paths and names only; the files are read when the sink connects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `CA`: PEM file of the certificates to trust (default: the system's roots).
    pub ca: Option<PathBuf>,
    /// `Cert`: PEM file of the client certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// `Key`: PEM file of the client certificate's private key.
    pub key: Option<PathBuf>,
    /// `ServerName`: the name to verify the server's certificate against (default: the host).
    pub server_name: Option<String>,
}

impl TlsSettings {
    /// Reads `CA`, `Cert`, `Key` and `ServerName` (all optional; the sink declared them), without
    /// reading any file: `Cert` and `Key` go together, and `ServerName` must be a DNS name or an
    /// IP address. Errors name the file, line, pipe and key.
    pub fn from_keys(keys: &Keys) -> Result<TlsSettings, ConfigError> {
        let tls = TlsSettings {
            ca: keys.path(CA.name, "a PEM file")?,
            cert: keys.path(CERT.name, "a PEM file")?,
            key: keys.path(KEY.name, "a PEM file")?,
            server_name: keys.value(SERVER_NAME.name).map(str::to_string),
        };
        match (&tls.cert, &tls.key) {
            (Some(_), None) => {
                return Err(keys.error(CERT.name, "needs Key, the certificate's private key"))
            }
            (None, Some(_)) => {
                return Err(keys.error(KEY.name, "needs Cert, the client certificate"))
            }
            _ => {}
        }
        if let Some(name) = &tls.server_name {
            if ServerName::try_from(name.as_str()).is_err() {
                return Err(keys.error(
                    SERVER_NAME.name,
                    format!("{name:?} is not a DNS name or IP address"),
                ));
            }
        }
        Ok(tls)
    }

    /// Reads the files the keys name, as a connection will, and checks them: `CA` and `Cert`
    /// hold PEM certificates, `Key` a PEM private key, and `Cert` and `Key` make a client
    /// certificate (a sink's [`Sink::check_files`](broker_core::Sink::check_files)). The error
    /// names the key and the file, never a file's content. The system's roots (no `CA`) are
    /// left to the connection.
    pub fn check_files(&self) -> Result<(), KeyError> {
        if let Some(ca) = &self.ca {
            read_ca(ca).map_err(|e| KeyError::new(CA.name, e))?;
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            let chain = read_certs(cert).map_err(|e| KeyError::new(CERT.name, e))?;
            let key_der = read_key(key).map_err(|e| KeyError::new(KEY.name, e))?;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| KeyError::new(CERT.name, format!("TLS settings: {e}")))?
                .with_root_certificates(RootCertStore::empty())
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| KeyError::new(CERT.name, not_a_pair(cert, key, &e)))?;
        }
        Ok(())
    }
}

/// The TLS client side of a sink: its rustls settings, loaded on the first connection and kept.
#[derive(Debug, Default)]
pub struct TlsClient {
    config: Option<Arc<ClientConfig>>,
}

impl TlsClient {
    /// Forgets the loaded settings, so the next connection reads the files again (new
    /// certificates after a renewal take effect on SIGHUP).
    pub fn forget(&mut self) {
        self.config = None;
    }

    /// Connects to `host:port` over TCP and completes a TLS handshake that verifies the server.
    /// The error is the reason only (the caller names the endpoint).
    pub async fn connect(
        &mut self,
        host: &str,
        port: u16,
        settings: &TlsSettings,
    ) -> Result<TlsStream<TcpStream>, String> {
        let config = match &self.config {
            Some(config) => config.clone(),
            None => {
                let owned = settings.clone();
                let config = tokio::task::spawn_blocking(move || client_config(&owned))
                    .await
                    .map_err(|e| format!("loading the TLS settings failed: {e}"))??;
                let config = Arc::new(config);
                self.config = Some(config.clone());
                config
            }
        };
        let name = settings.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| format!("{name:?} is not a DNS name or IP address to verify"))?;
        let tcp = connect::tcp(host, port).await?;
        let connector = TlsConnector::from(config);
        within(TIMEOUT, connector.connect(server_name, tcp))
            .await
            .map_err(|e| handshake_failure(&e, name, settings))
    }
}

/// The rustls client settings: trusted roots, and the client certificate if any.
pub fn client_config(settings: &TlsSettings) -> Result<ClientConfig, String> {
    let roots = match &settings.ca {
        Some(path) => read_ca(path).map_err(|e| format!("CA {e}"))?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots);
    match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert).map_err(|e| format!("Cert {e}"))?;
            let key_der = read_key(key).map_err(|e| format!("Key {e}"))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| format!("Cert {}", not_a_pair(cert, key, &e)))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// `Cert` and `Key` that do not make a client certificate, in words (after the key `Cert`).
fn not_a_pair(cert: &Path, key: &Path, error: &rustls::Error) -> String {
    format!(
        "{} and Key {} do not make a client certificate: {error}",
        cert.display(),
        key.display()
    )
}

/// The certificates of a `CA` file as trusted roots; the error names the file.
fn read_ca(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(roots)
}

/// The system's trusted roots; an error if there are none.
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added > 0 {
        return Ok(roots);
    }
    let why = match found.errors.first() {
        Some(e) => format!(" ({e})"),
        None => String::new(),
    };
    Err(format!(
        "the system store has no trusted root certificates{why}; install them (the \
         ca-certificates package) or set CA to the file of the CA that signed the server's \
         certificate"
    ))
}

/// Every certificate of a PEM file (a `Cert` chain, leaf first, or a `CA` file's); the error
/// names the file.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let failed = |e: &pem::Error| format!("{}: {}", path.display(), pem_reason(e, "certificate"));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| failed(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(&e))?;
    if certs.is_empty() {
        return Err(failed(&pem::Error::NoItemsFound));
    }
    Ok(certs)
}

/// The private key of a `Key` file (PKCS#8, PKCS#1 or SEC1, in PEM); the error names the file.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("{}: {}", path.display(), pem_reason(&e, "private key")))
}

/// Why a PEM file could not be read, without quoting any of its content (a key's lines must
/// never reach a log).
fn pem_reason(error: &pem::Error, what: &str) -> String {
    match error {
        pem::Error::Io(e) => reason(e),
        pem::Error::NoItemsFound => format!("no {what} found (expected a PEM file)"),
        _ => format!("not a valid PEM file of a {what}"),
    }
}

/// Why a TLS handshake failed, in words: an untrusted certificate, a certificate for another
/// name, an alert from the server, or the I/O error.
fn handshake_failure(error: &std::io::Error, name: &str, settings: &TlsSettings) -> String {
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return format!("TLS handshake failed: {}", reason(error));
    };
    let trusted = match &settings.ca {
        Some(path) => format!("CA {}", path.display()),
        None => "the system's trusted roots".to_string(),
    };
    match tls {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the server's certificate is not trusted: no certificate of {trusted} signed it \
             ({tls})"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!("the server's certificate is not valid for {name} ({tls})"),
        rustls::Error::InvalidCertificate(_) => {
            format!("the server's certificate was refused ({tls})")
        }
        rustls::Error::AlertReceived(alert) => {
            format!("the server ended the handshake with the alert {alert:?}")
        }
        _ => format!("TLS handshake failed: {tls}"),
    }
}
