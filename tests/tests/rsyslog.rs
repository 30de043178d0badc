//! The syslog sink against a real rsyslog (tests/src/rsyslog.rs): the real broker pulls from the
//! simulator and sends to rsyslogd over UDP (RFC 5424 and legacy), TCP with octet counting (RFC 5424
//! and RFC 3164) and TLS (RFC 5424, with a CA made for the test); each test reads what rsyslog
//! stored and finds every event's JSON intact and exactly once, with the PRI, host name, app name,
//! process id and message id that rsyslog parsed. A first test proves the harness itself with a
//! hand-made client, so that a failure of the others is the broker's.
//!
//! rsyslogd must be installed (Debian packages `rsyslog` and `rsyslog-gnutls`; `scripts/test`
//! installs them): without it these tests fail and say so.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use broker_tests::rsyslog::{Input, Received, Rsyslog};

/// How long the messages of one run may take to show up in rsyslog's output file.
const ARRIVAL: Duration = Duration::from_secs(20);

// ---- The harness by itself ----

/// A small TLS client over rustls (ring), trusting only `ca_der`.
fn tls_client(
    ca_der: &[u8],
    port: u16,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
        .expect("add the test CA");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
    let connection = rustls::ClientConnection::new(Arc::new(config), name).expect("TLS client");
    let socket = TcpStream::connect(("127.0.0.1", port)).expect("connect to the TLS port");
    rustls::StreamOwned::new(connection, socket)
}

/// An RFC 5424 message made by hand.
fn hand_made(n: usize, body: &str) -> String {
    format!("<165>1 2024-05-06T07:08:09.123Z hand-host hand-app 4242 hand{n} - {body}")
}

/// Octet-counting framing: `LEN SP MSG`.
fn octet_framed(message: &str) -> Vec<u8> {
    format!("{} {message}", message.len()).into_bytes()
}

#[test]
fn harness_stores_hand_made_messages_over_udp_tcp_and_tls_exactly_once() {
    let dev_log = std::fs::symlink_metadata("/dev/log").ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        (m.ino(), m.mtime(), m.mtime_nsec())
    });
    let rsyslog = Rsyslog::start();
    // Bodies: short, one beyond rsyslog's default 8k limit, one near the UDP maximum.
    let bodies: Vec<String> = (0..30)
        .map(|i| match i {
            7 => format!("{{\"big\":\"{}\"}}", "x".repeat(20_000)),
            8 => format!("{{\"bigger\":\"{}\"}}", "y".repeat(60_000)),
            _ => format!("{{\"n\":{i},\"text\":\"hello \\u00e9\"}}"),
        })
        .collect();
    let messages: Vec<String> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| hand_made(i, b))
        .collect();

    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    for message in &messages {
        udp.send_to(message.as_bytes(), rsyslog.address(Input::Udp))
            .expect("send UDP");
    }
    let mut tcp = TcpStream::connect(rsyslog.address(Input::Tcp)).expect("connect TCP");
    let mut tls = tls_client(&rsyslog.certs.ca_der, rsyslog.tls_port);
    for message in &messages {
        tcp.write_all(&octet_framed(message)).expect("send TCP");
        tls.write_all(&octet_framed(message)).expect("send TLS");
    }
    tcp.flush().expect("flush TCP");
    tls.flush().expect("flush TLS");

    for input in [Input::Udp, Input::Tcp, Input::Tls] {
        let got = rsyslog.wait_for(input, messages.len(), ARRIVAL);
        let bodies_got: Vec<&str> = got.iter().map(Received::body).collect();
        if input == Input::Udp {
            let mut sorted = bodies_got.clone();
            sorted.sort_unstable();
            let mut want: Vec<&str> = bodies.iter().map(String::as_str).collect();
            want.sort_unstable();
            assert!(
                sorted == want,
                "{input:?}: bodies differ\n{}",
                rsyslog.diagnostics()
            );
        } else {
            assert!(
                bodies_got == bodies.iter().map(String::as_str).collect::<Vec<_>>(),
                "{input:?}: bodies differ or are out of order\n{}",
                rsyslog.diagnostics()
            );
        }
        for r in &got {
            let n: usize = r
                .msgid
                .strip_prefix("hand")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("msgid {r:?}"));
            assert_eq!(r.raw, messages[n], "{input:?}: raw message");
            assert_eq!(r.pri, 165);
            assert_eq!(r.protocol_version, "1");
            assert_eq!(r.hostname, "hand-host");
            assert_eq!(r.app_name, "hand-app");
            assert_eq!(r.procid, "4242");
            assert_eq!(r.structured_data, "-");
            assert_eq!(r.from_ip, "127.0.0.1");
            assert!(
                r.time_reported.starts_with("2024-05-06T07:08:09.123"),
                "{r:?}"
            );
        }
    }
    // A clean end: TLS close_notify, then the TCP close (rsyslog logs an error otherwise).
    tls.conn.send_close_notify();
    tls.flush().expect("send close_notify");
    drop(tls);
    drop(tcp);
    std::thread::sleep(Duration::from_millis(200));
    let after = std::fs::symlink_metadata("/dev/log").ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        (m.ino(), m.mtime(), m.mtime_nsec())
    });
    assert_eq!(dev_log, after, "rsyslogd touched /dev/log");
    let own = rsyslog.own_messages();
    assert!(
        !own.contains("error") && !own.contains("warning"),
        "rsyslogd complained:\n{}",
        rsyslog.diagnostics()
    );
}
