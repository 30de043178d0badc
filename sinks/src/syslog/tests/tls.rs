//! TLS against a real rustls server with certificates made by rcgen: delivery with a trusted CA
//! and a client certificate, and handshakes that must fail (an untrusted certificate, the wrong
//! name, bad files) with a clear error and nothing delivered.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::formats::{parse_back, tricky_events};
use super::*;
use format::Format;

/// A CA and certificates it signed, as PEM text.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM text.
struct Leaf {
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let ca_pem = params.self_signed(&key).unwrap().pem();
        Pki {
            ca_pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate for these names (DNS names or IP addresses), signed by this CA.
    fn leaf(&self, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = CertificateParams::new(names).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config presenting `leaf`; with `client_ca`, it requires a client certificate.
fn server_config(leaf: &Leaf, client_ca: Option<&Pki>) -> Arc<ServerConfig> {
    let chain = vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(pki) => {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
                .unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(builder.with_single_cert(chain, key).unwrap())
}

/// A TLS server on 127.0.0.1 that accepts one connection and reads it to its end; the bytes it
/// got (empty when the handshake failed).
async fn tls_server(config: Arc<ServerConfig>) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let Ok(mut tls) = TlsAcceptor::from(config).accept(tcp).await else {
            return Vec::new();
        };
        let mut got = Vec::new();
        let _ = tokio::time::timeout(WAIT, tls.read_to_end(&mut got)).await;
        got
    });
    (port, task)
}

/// Writes `text` to `name` in `dir`; its path as a string.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn tls_sink(port: u16, pairs: &[(&str, &str)]) -> SyslogSink {
    let socket = format!("127.0.0.1:{port}");
    let mut keys = vec![("Protocol", "tls"), ("Socket", socket.as_str())];
    keys.extend_from_slice(pairs);
    sink_with(&keys)
}

#[tokio::test]
async fn tls_delivers_rfc5424_octet_framed() {
    broker_core::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("test CA");
    let ca = write(dir.path(), "ca.pem", &pki.ca_pem);
    let (port, server) = tls_server(server_config(&pki.leaf(&["127.0.0.1"]), None)).await;
    let mut sink = tls_sink(
        port,
        &[
            ("CA", &ca),
            ("Format", "rfc5424"),
            ("Facility", "local3"),
            ("Priority", "warning"),
            ("Hostname", "web1"),
        ],
    );
    let events = tricky_events();
    sink.deliver(&events).await.unwrap();
    sink.close().await.unwrap();
    let got = server.await.unwrap();
    let (messages, rest) = framing::split_frames(Framing::Octet, &got).unwrap();
    assert!(rest.is_empty());
    assert_eq!(messages.len(), events.len());
    let now = chrono::Local::now().fixed_offset();
    for (message, event) in messages.iter().zip(&events) {
        let stamp = parse_back(
            Format::Rfc5424,
            message,
            event,
            &sink.config().message,
            *now.offset(),
            2026,
        )
        .unwrap();
        assert!(
            (now - stamp).abs() < chrono::Duration::seconds(5),
            "{stamp}"
        );
    }
}

#[tokio::test]
async fn server_name_overrides_the_name_checked() {
    broker_core::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("test CA");
    let ca = write(dir.path(), "ca.pem", &pki.ca_pem);
    let leaf = pki.leaf(&["logs.example.com"]);
    let (port, server) = tls_server(server_config(&leaf, None)).await;
    let mut sink = tls_sink(port, &[("CA", &ca), ("ServerName", "logs.example.com")]);
    sink.deliver(&events()).await.unwrap();
    sink.close().await.unwrap();
    let got = server.await.unwrap();
    let (messages, _) = framing::split_frames(Framing::Octet, &got).unwrap();
    assert_eq!(messages.len(), 3);
}

#[tokio::test]
async fn untrusted_certificate_fails_clearly_and_delivers_nothing() {
    broker_core::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let trusted = Pki::new("trusted CA");
    let ca = write(dir.path(), "ca.pem", &trusted.ca_pem);
    let other = Pki::new("other CA");
    let (port, server) = tls_server(server_config(&other.leaf(&["127.0.0.1"]), None)).await;
    let mut sink = tls_sink(port, &[("CA", &ca)]);
    let err = sink.deliver(&events()).await.unwrap_err();
    assert_eq!((err.kind, err.delivered), (SinkErrorKind::Retry, 0));
    let want = format!(
        "cannot connect to 127.0.0.1:{port} over TLS: the server's certificate is not trusted: \
         no certificate of CA {ca} signed it ("
    );
    assert!(err.message.starts_with(&want), "{}", err.message);
    assert!(sink.connection.is_none());
    assert!(
        server.await.unwrap().is_empty(),
        "no event reached the server"
    );
}

#[tokio::test]
async fn certificate_for_another_name_fails_clearly_and_delivers_nothing() {
    broker_core::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("test CA");
    let ca = write(dir.path(), "ca.pem", &pki.ca_pem);
    let (port, server) = tls_server(server_config(&pki.leaf(&["logs.example.com"]), None)).await;
    let mut sink = tls_sink(port, &[("CA", &ca)]);
    let err = sink.deliver(&events()).await.unwrap_err();
    assert_eq!((err.kind, err.delivered), (SinkErrorKind::Retry, 0));
    let want = format!(
        "cannot connect to 127.0.0.1:{port} over TLS: the server's certificate is not valid for \
         127.0.0.1 ("
    );
    assert!(err.message.starts_with(&want), "{}", err.message);
    assert!(
        server.await.unwrap().is_empty(),
        "no event reached the server"
    );
}

#[tokio::test]
async fn system_roots_do_not_trust_a_private_ca() {
    broker_core::install_crypto_provider();
    let pki = Pki::new("test CA");
    let (port, server) = tls_server(server_config(&pki.leaf(&["127.0.0.1"]), None)).await;
    let mut sink = tls_sink(port, &[]);
    let err = sink.deliver(&events()).await.unwrap_err();
    assert_eq!((err.kind, err.delivered), (SinkErrorKind::Retry, 0));
    let prefix = format!("cannot connect to 127.0.0.1:{port} over TLS: ");
    assert!(err.message.starts_with(&prefix), "{}", err.message);
    let trusted = "the server's certificate is not trusted: no certificate of the system's \
                   trusted roots signed it";
    let empty = "the system store has no trusted root certificates";
    assert!(
        err.message.contains(trusted) || err.message.contains(empty),
        "{}",
        err.message
    );
    // Without a usable store the sink never connected; the server task may still wait.
    server.abort();
}

#[tokio::test]
async fn client_certificate_is_sent_when_required() {
    broker_core::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let server_pki = Pki::new("server CA");
    let client_pki = Pki::new("client CA");
    let ca = write(dir.path(), "ca.pem", &server_pki.ca_pem);
    let client = client_pki.leaf(&["broker.example.com"]);
    let cert = write(dir.path(), "client.pem", &client.cert_pem);
    let key = write(dir.path(), "client.key", &client.key_pem);
    let config = server_config(&server_pki.leaf(&["127.0.0.1"]), Some(&client_pki));

    let (port, server) = tls_server(config.clone()).await;
    let mut sink = tls_sink(port, &[("CA", &ca), ("Cert", &cert), ("Key", &key)]);
    sink.deliver(&events()).await.unwrap();
    sink.close().await.unwrap();
    let got = server.await.unwrap();
    let (messages, _) = framing::split_frames(Framing::Octet, &got).unwrap();
    assert_eq!(messages.len(), 3);

    // Without a client certificate the server refuses, and nothing counts as delivered.
    let (port, server) = tls_server(config).await;
    let mut sink = tls_sink(port, &[("CA", &ca)]);
    let err = sink.deliver(&events()).await.unwrap_err();
    assert_eq!((err.kind, err.delivered), (SinkErrorKind::Retry, 0));
    assert!(
        err.message
            .contains(&format!("127.0.0.1:{port} over TLS: ")),
        "{}",
        err.message
    );
    assert!(server.await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_files_are_named_and_never_quoted() {
    broker_core::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("test CA");
    let ca = write(dir.path(), "ca.pem", &pki.ca_pem);
    let leaf = pki.leaf(&["broker"]);
    let cert = write(dir.path(), "client.pem", &leaf.cert_pem);
    let secret = "-----BEGIN PRIVATE KEY-----\nSECRETSECRETSECRET!!\n-----END PRIVATE KEY-----\n";
    let bad_key = write(dir.path(), "bad.key", secret);
    let missing = dir.path().join("missing.pem").to_str().unwrap().to_string();

    // Nothing listens: the files are read, and fail, before any connection.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cases = [
        (
            vec![
                ("CA", ca.as_str()),
                ("Cert", cert.as_str()),
                ("Key", bad_key.as_str()),
            ],
            format!("Key {bad_key}: "),
        ),
        (
            vec![("CA", missing.as_str())],
            format!("CA {missing}: no such file or directory"),
        ),
        (
            vec![
                ("CA", cert.as_str()),
                ("Cert", cert.as_str()),
                ("Key", cert.as_str()),
            ],
            format!("Key {cert}: no private key found (expected a PEM file)"),
        ),
    ];
    for (pairs, reason) in cases {
        let mut sink = tls_sink(port, &pairs);
        let err = sink.deliver(&events()).await.unwrap_err();
        assert_eq!((err.kind, err.delivered), (SinkErrorKind::Retry, 0));
        assert!(
            err.message.starts_with(&format!(
                "cannot connect to 127.0.0.1:{port} over TLS: {reason}"
            )),
            "{}",
            err.message
        );
        assert!(!err.message.contains("SECRET"), "{}", err.message);
    }
}

#[tokio::test]
async fn a_batch_a_tls_receiver_dropped_unread_goes_again_on_the_next_connection() {
    broker_core::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("test CA");
    let ca = write(dir.path(), "ca.pem", &pki.ca_pem);
    let acceptor = TlsAcceptor::from(server_config(&pki.leaf(&["127.0.0.1"]), None));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (delivered, told) = tokio::sync::oneshot::channel::<()>();
    // The receiver takes the first batch into its buffers and closes without reading it.
    let receiver = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let first = acceptor.accept(tcp).await.unwrap();
        told.await.unwrap();
        drop(first);
        let (tcp, _) = listener.accept().await.unwrap();
        let mut second = acceptor.accept(tcp).await.unwrap();
        let mut got = Vec::new();
        let _ = tokio::time::timeout(WAIT, second.read_to_end(&mut got)).await;
        got
    });
    let mut sink = tls_sink(port, &[("CA", &ca)]);
    let events: Vec<Event> = (0..6)
        .map(|i| event(&format!(r#"{{"id":"ev-{i}"}}"#)))
        .collect();
    sink.deliver(&events[..3]).await.unwrap();
    delivered.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    sink.deliver(&events[3..]).await.unwrap();
    sink.close().await.unwrap();
    let got = receiver.await.unwrap();
    let (messages, rest) = framing::split_frames(Framing::Octet, &got).unwrap();
    assert!(rest.is_empty());
    let lines: Vec<&[u8]> = events.iter().map(|e| e.line().as_bytes()).collect();
    assert_eq!(messages.len(), 6, "the first batch again, then the second");
    for (message, line) in messages.iter().zip(lines) {
        assert!(message.ends_with(line));
    }
}
