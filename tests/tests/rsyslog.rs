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

use broker_sim::Simulator;
use broker_tests::rsyslog::{expected_lines_chunked, Input, Received, Rsyslog};
use broker_tests::*;

/// How long the messages of one run may take to show up in rsyslog's output file.
const ARRIVAL: Duration = Duration::from_secs(20);

/// One hand-written alert whose text tests the escaping through the syslog path too.
const TRICKY_ALERT: &str = r#"{"type": "alerts", "id": "tricky-1", "attributes": {"text": "é😀/\u007f\u0000 tab\t<134>1 - \n", "n": 1.50, "big": 123456789012345678901234567890}}"#;

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

// ---- The broker ----

/// A syslog pipe's keys beyond `From`, `To` and `Socket`, as `(key, value)` pairs.
type Keys<'a> = &'a [(&'a str, &'a str)];

/// The `[Pipe.NAME]` section of a syslog pipe to `socket`.
fn syslog_pipe(name: &str, from: &str, socket: &str, keys: Keys) -> String {
    let mut text = format!("[Pipe.{name}]\nFrom = {from}\nTo = syslog\nSocket = {socket}\n");
    for (key, value) in keys {
        text.push_str(&format!("{key} = {value}\n"));
    }
    text.push('\n');
    text
}

/// Queues 3 generated alerts, the tricky alert and `authn` generated log_authn events (110 or
/// more include one of over 10 KB, beyond rsyslog's default 8k; more than 100 need `Max` above
/// its default for a one-shot run); returns the raw events of both queues in queue order.
fn enqueue_events(sim: &Simulator, authn: usize) -> (Vec<String>, Vec<String>) {
    broker_tests::rsyslog::enqueue_events(sim, TRICKY_ALERT, authn)
}

/// Runs the broker once (setup first, from a setup file), asserts it succeeded and took every
/// event, and returns its process id (which RFC 5424 and RFC 3164 messages carry).
fn run_once(sim: &Simulator, dir: &BrokerDir) -> u32 {
    dir.write_setup(sim, "rsyslog-setup");
    let mut running = dir.spawn("procustodibus-broker", &[]);
    let pid = running.id();
    let run = running.finish(Duration::from_secs(60));
    assert!(run.status.success(), "{}", describe(&run));
    assert!(!stdout(&run).contains("ERROR"), "{}", describe(&run));
    for queue in ["alerts", "log_authn"] {
        assert_eq!(
            sim.queue_len(queue),
            0,
            "a one-shot run pulls all of {queue}"
        );
    }
    pid
}

/// Asserts that `got` holds each of `want` exactly once (in order when `ordered`), intact.
fn assert_exactly_once(got: &[Received], want: &[String], ordered: bool, rsyslog: &Rsyslog) {
    let bodies: Vec<&str> = got.iter().map(Received::body).collect();
    let mut missing: Vec<&str> = Vec::new();
    let mut extra: Vec<&str> = bodies.clone();
    for line in want {
        match extra.iter().position(|b| b == line) {
            Some(i) => {
                extra.remove(i);
            }
            None => missing.push(line),
        }
    }
    let short = |v: &[&str]| -> Vec<String> {
        v.iter()
            .take(5)
            .map(|s| s.chars().take(300).collect())
            .collect()
    };
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} of {} events missing, {} messages not expected (duplicates or damaged)\n\
         missing: {:#?}\nnot expected: {:#?}\n{}",
        missing.len(),
        want.len(),
        extra.len(),
        short(&missing),
        short(&extra),
        rsyslog.diagnostics()
    );
    if ordered {
        assert!(
            bodies.iter().zip(want).all(|(g, w)| g == w),
            "events out of order"
        );
    }
}

/// The PRI of `local0.info`, the default.
const DEFAULT_PRI: u8 = 134;

/// Checks the fields of RFC 5424 messages: PRI, version, a timestamp rsyslog read (within a
/// minute of the receive time), host name, app name (the tag), process id, the event type as
/// message id, no structured data, and the raw message in exactly that form.
fn check_rfc5424(got: &[Received], pri: u8, host: &str, app: &str, pid: u32) {
    for r in got {
        let context = format!("{r:#?}");
        assert_eq!(r.pri, pri, "{context}");
        assert_eq!(r.protocol_version, "1", "{context}");
        assert_eq!(r.hostname, host, "{context}");
        assert_eq!(r.app_name, app, "{context}");
        assert_eq!(r.procid, pid.to_string(), "{context}");
        assert_eq!(
            r.msgid,
            line_type(&r.msg),
            "message id = event type: {context}"
        );
        assert_eq!(r.structured_data, "-", "{context}");
        assert_eq!(r.from_ip, "127.0.0.1", "{context}");
        check_time(r);
        // The raw message: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG`.
        let prefix = format!("<{pri}>1 ");
        let rest = r
            .raw
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("raw message does not start with {prefix:?}: {context}"));
        let (stamp, rest) = rest.split_once(' ').expect("timestamp");
        chrono::DateTime::parse_from_rfc3339(stamp)
            .unwrap_or_else(|e| panic!("timestamp {stamp:?} is not RFC 3339 ({e}): {context}"));
        assert_eq!(
            rest,
            format!("{host} {app} {pid} {} - {}", r.msgid, r.msg),
            "raw message after the timestamp"
        );
    }
}

/// Checks the fields of RFC 3164 messages: PRI, a timestamp rsyslog read, host name, `TAG[PID]:`
/// and the raw message in exactly that form, `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`.
fn check_rfc3164(got: &[Received], pri: u8, host: &str, tag: &str, pid: u32) {
    for r in got {
        let context = format!("{r:#?}");
        assert_eq!(r.pri, pri, "{context}");
        assert_eq!(r.protocol_version, "0", "{context}");
        assert_eq!(r.hostname, host, "{context}");
        assert_eq!(r.app_name, tag, "{context}");
        assert_eq!(r.procid, pid.to_string(), "{context}");
        assert_eq!(r.tag, format!("{tag}[{pid}]:"), "{context}");
        assert_eq!(r.from_ip, "127.0.0.1", "{context}");
        check_time(r);
        let prefix = format!("<{pri}>");
        let rest = r
            .raw
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("raw message does not start with {prefix:?}: {context}"));
        assert!(rest.len() > 16, "{context}");
        let (stamp, rest) = rest.split_at(16);
        assert!(
            !stamp[4..].starts_with('0'),
            "RFC 3164 pads the day with a space: {context}"
        );
        let now = chrono::Local::now();
        chrono::NaiveDateTime::parse_from_str(
            &format!("{} {}", now.format("%Y"), stamp.trim_end()),
            "%Y %b %e %H:%M:%S",
        )
        .unwrap_or_else(|e| {
            panic!("timestamp {stamp:?} is not `Mmm dd hh:mm:ss ` ({e}): {context}")
        });
        assert_eq!(
            rest,
            format!("{host} {tag}[{pid}]: {}", r.body()),
            "raw message after the timestamp"
        );
    }
}

/// rsyslog read the message's own timestamp, and it is within a minute of the receive time.
fn check_time(r: &Received) {
    let parse = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("rsyslog's time {s:?} ({e}): {r:#?}"))
    };
    let reported = parse(&r.time_reported);
    let generated = parse(&r.time_generated);
    assert!(
        (reported - generated).num_seconds().abs() <= 60,
        "reported time {reported} is not the receive time {generated}: {r:#?}"
    );
}

/// Runs the broker once with the one pipe `name`, from `from` (`"alerts, log_authn"` or
/// `"log_authn, alerts"`) to rsyslog's `input` with `keys`, after [`enqueue_events`] with `authn`
/// log_authn events; asserts that rsyslog got every event exactly once (in the order of `from` if
/// `ordered`), one of them beyond 8k. Returns what rsyslog got and the broker's process id.
fn every_event_once(
    input: Input,
    name: &str,
    from: &str,
    keys: Keys,
    authn: usize,
    ordered: bool,
) -> (Vec<Received>, u32) {
    let rsyslog = Rsyslog::start();
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        &syslog_pipe(name, from, &rsyslog.address(input), keys),
    );
    let (alerts, authn) = enqueue_events(&sim, authn);
    let pid = run_once(&sim, &dir);

    let raws = match from {
        "alerts, log_authn" => [alerts, authn].concat(),
        "log_authn, alerts" => [authn, alerts].concat(),
        _ => panic!("from {from:?}"),
    };
    let want = expected_lines_chunked(&raws);
    assert!(want.iter().any(|l| l.len() > 8192), "a line beyond 8k");
    let got = rsyslog.wait_for(input, want.len(), ARRIVAL);
    assert_exactly_once(&got, &want, ordered, &rsyslog);
    (got, pid)
}

#[test]
fn udp_rfc5424_every_event_once_with_app_name_procid_and_msgid() {
    let (got, pid) = every_event_once(
        Input::Udp,
        "Udp5424",
        "alerts, log_authn",
        &[
            ("Max", "1000"),
            ("Protocol", "udp"),
            ("Format", "rfc5424"),
            ("Facility", "user"),
            ("Priority", "notice"),
            ("Tag", "pc-broker"),
        ],
        110,
        false,
    );
    check_rfc5424(&got, 13, &host_name(), "pc-broker", pid);
}

#[test]
fn udp_legacy_every_event_once_with_the_tag() {
    let rsyslog = Rsyslog::start();
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    // Legacy is the default format, and UDP the protocol of a host:port.
    let pipes = syslog_pipe(
        "Legacy",
        "log_authn, alerts",
        &rsyslog.address(Input::Udp),
        &[],
    ) + &syslog_pipe(
        "LegacyExplicit",
        "alerts",
        &rsyslog.address(Input::Udp),
        &[
            ("Protocol", "udp"),
            ("Format", "legacy"),
            ("Tag", "legacy-explicit"),
        ],
    );
    dir.write_config(&sim.url(), &pipes);
    let (alerts, authn) = enqueue_events(&sim, 40);
    run_once(&sim, &dir);

    let alert_lines = expected_lines(&alerts);
    let mut want = expected_lines(&authn);
    want.extend(alert_lines.iter().cloned());
    let got = rsyslog.wait_for(Input::Udp, want.len() + alert_lines.len(), ARRIVAL);
    let (default, explicit): (Vec<Received>, Vec<Received>) =
        got.into_iter().partition(|r| r.app_name == "procustodibus");
    assert_exactly_once(&default, &want, false, &rsyslog);
    assert_exactly_once(&explicit, &alert_lines, false, &rsyslog);
    for (records, tag) in [(&default, "procustodibus"), (&explicit, "legacy-explicit")] {
        for r in records {
            // `<134>TAG: JSON\0`: rsyslog drops the trailing NUL and, as there is no timestamp
            // or host name, takes its own receive time and the sender's address.
            assert_eq!(r.pri, DEFAULT_PRI, "{r:#?}");
            assert_eq!(r.tag, format!("{tag}:"), "{r:#?}");
            assert_eq!(r.app_name, tag, "{r:#?}");
            assert_eq!(r.hostname, "127.0.0.1", "{r:#?}");
            assert_eq!(r.raw, format!("<134>{tag}: {}", r.body()), "{r:#?}");
            assert_eq!(r.msg, format!(" {}", r.body()), "{r:#?}");
        }
    }
}

#[test]
fn tcp_octet_counted_rfc5424_every_event_once_in_order() {
    // Octet counting is the default framing of TCP.
    let (got, pid) = every_event_once(
        Input::Tcp,
        "Tcp5424",
        "alerts, log_authn",
        &[
            ("Max", "1000"),
            ("Protocol", "tcp"),
            ("Format", "rfc5424"),
            ("Hostname", "broker-1.example.test"),
        ],
        250,
        true,
    );
    check_rfc5424(
        &got,
        DEFAULT_PRI,
        "broker-1.example.test",
        "procustodibus",
        pid,
    );
}

#[test]
fn tcp_octet_counted_rfc3164_every_event_once_in_order() {
    let (got, pid) = every_event_once(
        Input::Tcp,
        "Tcp3164",
        "log_authn, alerts",
        &[
            ("Max", "1000"),
            ("Protocol", "tcp"),
            ("Format", "rfc3164"),
            ("Framing", "octet"),
            ("Hostname", "broker-2"),
            ("Facility", "local7"),
            ("Priority", "err"),
            ("Tag", "pcb"),
        ],
        120,
        true,
    );
    check_rfc3164(&got, 187, "broker-2", "pcb", pid);
}

#[test]
fn tls_rfc5424_with_the_test_ca_every_event_once_in_order_over_a_loop_run() {
    let rsyslog = Rsyslog::start();
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let ca = rsyslog.certs.ca.display().to_string();
    // One pipe checks the server's name against its IP address, one against `localhost`.
    let pipes = syslog_pipe(
        "Tls",
        "alerts, log_authn",
        &rsyslog.address(Input::Tls),
        &[
            ("Protocol", "tls"),
            ("Format", "rfc5424"),
            ("CA", &ca),
            ("Tag", "tls-ip"),
        ],
    ) + &syslog_pipe(
        "TlsName",
        "alerts",
        &rsyslog.address(Input::Tls),
        &[
            ("Protocol", "tls"),
            ("Format", "rfc5424"),
            ("Framing", "octet"),
            ("CA", &ca),
            ("ServerName", "localhost"),
            ("Tag", "tls-name"),
        ],
    );
    dir.write_config(&sim.url(), &pipes);
    let (mut alerts, mut authn) = enqueue_events(&sim, 120);
    dir.write_setup(&sim, "rsyslog-tls-setup");
    let mut running = dir.spawn("procustodibus-broker", &["--loop", "1"]);
    let pid = running.id();
    // More events while it runs: a second round over the same connection.
    let first = alerts.len() * 2 + authn.len();
    assert!(
        wait_until(ARRIVAL, || rsyslog.received_on(Input::Tls).len() >= first),
        "the first round did not arrive\n{}\n{}",
        running.stdout_so_far(),
        rsyslog.diagnostics()
    );
    alerts.extend(sim.enqueue_generated("alerts", 5).expect("enqueue"));
    authn.extend(sim.enqueue_generated("log_authn", 20).expect("enqueue"));

    let alert_lines = expected_lines(&alerts);
    let authn_lines = expected_lines_chunked(&authn);
    let total = alert_lines.len() * 2 + authn_lines.len();
    let got = rsyslog.wait_for(Input::Tls, total, ARRIVAL);
    let out = running.terminate(Duration::from_secs(10));
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!stdout(&out).contains("ERROR"), "{}", describe(&out));

    let (by_ip, by_name): (Vec<Received>, Vec<Received>) =
        got.into_iter().partition(|r| r.app_name == "tls-ip");
    // Across the queues of a pipe the order is the spool's; each line once is what counts.
    let want_ip: Vec<String> = alert_lines.iter().chain(&authn_lines).cloned().collect();
    assert_exactly_once(&by_ip, &want_ip, false, &rsyslog);
    assert_exactly_once(&by_name, &alert_lines, true, &rsyslog);
    check_rfc5424(&by_ip, DEFAULT_PRI, &host_name(), "tls-ip", pid);
    check_rfc5424(&by_name, DEFAULT_PRI, &host_name(), "tls-name", pid);
    assert!(
        rsyslog.own_messages().lines().all(|l| !l.contains("error")),
        "{}",
        rsyslog.diagnostics()
    );
}

#[test]
fn tls_with_a_ca_that_did_not_sign_the_server_delivers_nothing_and_says_so() {
    let rsyslog = Rsyslog::start();
    let other = tempfile::tempdir().expect("temp dir");
    let stranger = broker_tests::rsyslog::Certificates::generate(other.path());
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        &syslog_pipe(
            "Tls",
            "alerts",
            &rsyslog.address(Input::Tls),
            &[
                ("Protocol", "tls"),
                ("Format", "rfc5424"),
                ("CA", &stranger.ca.display().to_string()),
            ],
        ),
    );
    sim.enqueue_generated("alerts", 3).expect("enqueue");
    dir.write_setup(&sim, "rsyslog-stranger-setup");
    let run = dir.run("procustodibus-broker", &[]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert!(
        stdout(&run)
            .lines()
            .any(|l| l.contains("pipe Tls") && l.to_lowercase().contains("certificate")),
        "a line names the pipe and the certificate problem\n{}",
        describe(&run)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(rsyslog.received().is_empty(), "{:#?}", rsyslog.received());
}
