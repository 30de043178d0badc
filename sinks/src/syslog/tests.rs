//! Tests of the syslog sink: settings validation, and real receivers on loopback and unix sockets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use broker_core::EventType;
use tokio::io::AsyncReadExt;
use tokio::net::{UdpSocket, UnixDatagram, UnixListener};

use super::*;

const WAIT: Duration = Duration::from_secs(5);

fn event(json: &str) -> Event {
    Event::from_json(EventType::Alerts, json).unwrap()
}

fn events() -> Vec<Event> {
    vec![
        event(r#"{"id": "e1", "x": "é"}"#),
        event(r#"{"id": "e2", "n": 1.50}"#),
        event(r#"{"type": "t", "id": 3}"#),
    ]
}

/// The bytes each of [`events`] must arrive as, for `local0`/`info`/`procustodibus`.
fn expected() -> Vec<Vec<u8>> {
    vec![
        b"<134>procustodibus: {\"id\":\"e1\",\"x\":\"\\u00e9\"}\0".to_vec(),
        b"<134>procustodibus: {\"id\":\"e2\",\"n\":1.50}\0".to_vec(),
        b"<134>procustodibus: {\"type\":\"t\",\"id\":3}\0".to_vec(),
    ]
}

/// An event whose message is `size` bytes or a little more.
fn big_event(id: &str, size: usize) -> Event {
    event(&format!(r#"{{"id":"{id}","pad":"{}"}}"#, "x".repeat(size)))
}

fn sink_to(socket: &str) -> SyslogSink {
    let settings = PipeSettings::new("P", "/etc/b.conf", &[("Socket", socket)]);
    SyslogSink::from_settings(&settings).unwrap()
}

fn at_line(pairs: &[(&str, &str)]) -> PipeSettings {
    let mut settings = PipeSettings::new("MyPipe", "/etc/b.conf", pairs);
    settings.line = 3;
    for (i, s) in settings.settings.iter_mut().enumerate() {
        s.line = 4 + i;
    }
    settings
}

async fn recv_udp(receiver: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = tokio::time::timeout(WAIT, receiver.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf.truncate(n);
    buf
}

async fn recv_unix(receiver: &UnixDatagram) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = tokio::time::timeout(WAIT, receiver.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf.truncate(n);
    buf
}

fn socket_path(dir: &Path) -> PathBuf {
    dir.join("log.sock")
}

#[test]
fn defaults() {
    let sink = SyslogSink::from_settings(&PipeSettings::new("P", "/etc/b.conf", &[])).unwrap();
    assert_eq!(sink.socket().to_string(), "localhost:514");
    assert_eq!(sink.message_settings(), &MessageSettings::default());
    assert_eq!(sink.message_settings().facility.code(), 16);
    assert_eq!(sink.message_settings().priority.code(), 6);
    assert_eq!(sink.message_settings().tag, "procustodibus");
}

#[test]
fn settings_are_read_case_insensitively() {
    let settings = at_line(&[
        ("socket", "/dev/log"),
        ("FACILITY", "Auth"),
        ("Priority", "EMERG"),
        ("Tag", "broker"),
    ]);
    let sink = SyslogSink::from_settings(&settings).unwrap();
    assert_eq!(sink.socket(), &Socket::Local(PathBuf::from("/dev/log")));
    assert_eq!(
        format::pri(
            sink.message_settings().facility,
            sink.message_settings().priority
        ),
        32
    );
    assert_eq!(sink.message_settings().tag, "broker");
}

#[test]
fn unknown_facility_names_file_line_pipe_and_key() {
    let err = SyslogSink::from_settings(&at_line(&[("Facility", "nope")])).unwrap_err();
    let want =
        "/etc/b.conf line 4: pipe MyPipe: Facility: unknown facility \"nope\" (expected one \
        of: kern, user, mail, daemon, auth, security, syslog, lpr, news, uucp, cron, authpriv, \
        ftp, ntp, audit, console, solaris-cron, local0, local1, local2, local3, local4, local5, \
        local6, local7)";
    assert_eq!(err.message, want);
}

#[test]
fn unknown_priority_names_file_line_pipe_and_key() {
    let err =
        SyslogSink::from_settings(&at_line(&[("Tag", "t"), ("priority", "loud")])).unwrap_err();
    assert!(
        err.message.starts_with(
            "/etc/b.conf line 5: pipe MyPipe: priority: unknown priority \"loud\" (expected one of: emerg,"
        ),
        "{}",
        err.message
    );
}

#[test]
fn bad_sockets_name_file_line_pipe_and_key() {
    let cases = [
        ("localhost:0", "port \"0\" is not a number from 1 to 65535"),
        (
            "localhost:99999",
            "port \"99999\" is not a number from 1 to 65535",
        ),
        (
            "localhost:syslog",
            "port \"syslog\" is not a number from 1 to 65535",
        ),
        (
            "[::1:514",
            "\"[::1:514\" has an unclosed bracket (write [::1]:514)",
        ),
        (
            "::1:514",
            "\"::1:514\": put an IPv6 address in brackets, like [::1]:514",
        ),
        ("", "empty: give host:port or the path of a local socket"),
    ];
    for (value, why) in cases {
        let err = SyslogSink::from_settings(&at_line(&[("Socket", value)])).unwrap_err();
        assert_eq!(
            err.message,
            format!("/etc/b.conf line 4: pipe MyPipe: Socket: {why}")
        );
    }
}

#[test]
fn bad_tag_is_rejected() {
    let err = SyslogSink::from_settings(&at_line(&[("Tag", "a\0b")])).unwrap_err();
    assert_eq!(
        err.message,
        "/etc/b.conf line 4: pipe MyPipe: Tag: tag \"a\\0b\" contains the control character '\\0'"
    );
}

#[test]
fn registered_builder_does_no_io() {
    let plugin = broker_core::registry::find("syslog").unwrap();
    assert_eq!(plugin.keys.len(), 4);
    let settings = at_line(&[("Socket", "no-such-host.invalid:514")]);
    assert!((plugin.build)(&settings).is_ok());
    let settings = at_line(&[("Socket", "/no/such/socket")]);
    assert!((plugin.build)(&settings).is_ok());
}

#[tokio::test]
async fn udp_ipv4_gets_exact_bytes_in_order() {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = receiver.local_addr().unwrap().port();
    let mut sink = sink_to(&format!("127.0.0.1:{port}"));
    sink.deliver(&events()).await.unwrap();
    sink.deliver(&events()[..1]).await.unwrap();
    for want in expected().into_iter().chain(expected().into_iter().take(1)) {
        assert_eq!(recv_udp(&receiver).await, want);
    }
    sink.close().await.unwrap();
}

#[tokio::test]
async fn udp_ipv6_gets_exact_bytes_in_order() {
    let Ok(receiver) = UdpSocket::bind("[::1]:0").await else {
        eprintln!("skipped: this system has no ::1");
        return;
    };
    let port = receiver.local_addr().unwrap().port();
    let mut sink = sink_to(&format!("[::1]:{port}"));
    sink.deliver(&events()).await.unwrap();
    for want in expected() {
        assert_eq!(recv_udp(&receiver).await, want);
    }
}

#[tokio::test]
async fn udp_too_large_is_permanent_for_that_event() {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = receiver.local_addr().unwrap().port();
    let mut sink = sink_to(&format!("127.0.0.1:{port}"));
    let mut batch = events();
    batch.insert(1, big_event("big", 70_000));
    let size = Format::SysLogHandler
        .encode(&MessageSettings::default(), &batch[1])
        .len();
    let err = sink.deliver(&batch).await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Permanent);
    assert_eq!(err.delivered, 1);
    assert_eq!(
        err.message,
        format!("event big is {size} bytes, too large for 127.0.0.1:{port}")
    );
    // The pipeline sets the event aside and goes on with the rest.
    sink.deliver(&batch[2..]).await.unwrap();
    let want = expected();
    assert_eq!(recv_udp(&receiver).await, want[0]);
    assert_eq!(recv_udp(&receiver).await, want[1]);
    assert_eq!(recv_udp(&receiver).await, want[2]);
}

#[tokio::test]
async fn udp_refused_is_retried() {
    let closed = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut sink = sink_to(&format!("127.0.0.1:{port}"));
    // UDP learns of a refusal only from the next send after the one that was refused.
    let mut failure = None;
    for _ in 0..5 {
        if let Err(e) = sink.deliver(&events()).await {
            failure = Some(e);
            break;
        }
    }
    let err = failure.expect("a send to a closed port fails");
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert!(err.delivered < 3);
    assert_eq!(
        err.message,
        format!("cannot send to 127.0.0.1:{port}: connection refused")
    );
}

#[tokio::test]
async fn unix_datagram_gets_exact_bytes_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let receiver = UnixDatagram::bind(&path).unwrap();
    let mut sink = sink_to(path.to_str().unwrap());
    sink.deliver(&events()).await.unwrap();
    for want in expected() {
        assert_eq!(recv_unix(&receiver).await, want);
    }
}

#[tokio::test]
async fn unix_stream_fallback_gets_exact_bytes_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let listener = UnixListener::bind(&path).unwrap();
    let settings = PipeSettings::new(
        "P",
        "/etc/b.conf",
        &[
            ("Socket", path.to_str().unwrap()),
            ("Facility", "user"),
            ("Priority", "debug"),
        ],
    );
    let mut sink = SyslogSink::from_settings(&settings).unwrap();
    sink.deliver(&events()).await.unwrap();
    sink.deliver(&events()[2..]).await.unwrap();
    sink.close().await.unwrap();
    let (mut stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    let mut want = Vec::new();
    for message in expected().into_iter().chain(expected().into_iter().skip(2)) {
        want.extend_from_slice(b"<15>");
        want.extend_from_slice(&message[b"<134>".len()..]);
    }
    assert_eq!(got, want);
}

#[tokio::test]
async fn unix_datagram_too_large_is_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let receiver = UnixDatagram::bind(&path).unwrap();
    let mut sink = sink_to(path.to_str().unwrap());
    let mut batch = events();
    batch.insert(1, big_event("huge", 8 << 20));
    let size = Format::SysLogHandler
        .encode(&MessageSettings::default(), &batch[1])
        .len();
    let err = sink.deliver(&batch).await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Permanent);
    assert_eq!(err.delivered, 1);
    assert_eq!(
        err.message,
        format!(
            "event huge is {size} bytes, too large for {}",
            path.display()
        )
    );
    // The pipeline sets the event aside and goes on with the rest.
    sink.deliver(&batch[2..]).await.unwrap();
    for want in expected() {
        assert_eq!(recv_unix(&receiver).await, want);
    }
}

#[tokio::test]
async fn missing_unix_socket_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let err = sink_to(path.to_str().unwrap())
        .deliver(&events())
        .await
        .unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert_eq!(err.delivered, 0);
    assert_eq!(
        err.message,
        format!(
            "cannot connect to {}: no such file or directory",
            path.display()
        )
    );
}

#[tokio::test]
async fn reconnects_after_receiver_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let first = UnixDatagram::bind(&path).unwrap();
    let mut sink = sink_to(path.to_str().unwrap());
    sink.deliver(&events()[..1]).await.unwrap();
    assert_eq!(recv_unix(&first).await, expected()[0]);
    drop(first);
    std::fs::remove_file(&path).unwrap();
    let second = UnixDatagram::bind(&path).unwrap();
    // The old connection points at the socket that is gone: one failed delivery, then a new one.
    let err = sink.deliver(&events()[1..]).await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert_eq!(err.delivered, 0);
    assert!(err
        .message
        .starts_with(&format!("cannot send to {}: ", path.display())));
    sink.deliver(&events()[1..]).await.unwrap();
    assert_eq!(recv_unix(&second).await, expected()[1]);
    assert_eq!(recv_unix(&second).await, expected()[2]);
}

#[tokio::test]
async fn reopen_connects_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let first = UnixDatagram::bind(&path).unwrap();
    let mut sink = sink_to(path.to_str().unwrap());
    sink.deliver(&events()[..1]).await.unwrap();
    assert_eq!(recv_unix(&first).await, expected()[0]);
    drop(first);
    std::fs::remove_file(&path).unwrap();
    let second = UnixDatagram::bind(&path).unwrap();
    sink.reopen().await.unwrap();
    sink.deliver(&events()[1..2]).await.unwrap();
    assert_eq!(recv_unix(&second).await, expected()[1]);
}

/// Removes the receiver at `path` (as a syslog daemon that stopped does), then checks that the
/// sink retries, without counting anything delivered, as long as nothing is there.
async fn check_missing_receiver_is_retried(sink: &mut SyslogSink, path: &Path) {
    // The first delivery finds the old connection dead, the next ones find no socket at all.
    let err = sink.deliver(&events()).await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert_eq!(err.delivered, 0);
    assert!(
        err.message
            .starts_with(&format!("cannot send to {}: ", path.display())),
        "{}",
        err.message
    );
    for _ in 0..2 {
        let err = sink.deliver(&events()).await.unwrap_err();
        assert_eq!(err.kind, SinkErrorKind::Retry);
        assert_eq!(err.delivered, 0);
        assert_eq!(
            err.message,
            format!(
                "cannot connect to {}: no such file or directory",
                path.display()
            )
        );
    }
}

#[tokio::test]
async fn removed_unix_socket_is_retried_until_restored() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let first = UnixDatagram::bind(&path).unwrap();
    let mut sink = sink_to(path.to_str().unwrap());
    sink.deliver(&events()[..1]).await.unwrap();
    assert_eq!(recv_unix(&first).await, expected()[0]);
    drop(first);
    std::fs::remove_file(&path).unwrap();
    check_missing_receiver_is_retried(&mut sink, &path).await;
    let second = UnixDatagram::bind(&path).unwrap();
    sink.deliver(&events()).await.unwrap();
    for want in expected() {
        assert_eq!(recv_unix(&second).await, want);
    }
}

#[tokio::test]
async fn unix_socket_restored_as_a_stream_is_used_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let first = UnixDatagram::bind(&path).unwrap();
    let mut sink = sink_to(path.to_str().unwrap());
    sink.deliver(&events()[..1]).await.unwrap();
    assert_eq!(recv_unix(&first).await, expected()[0]);
    drop(first);
    std::fs::remove_file(&path).unwrap();
    check_missing_receiver_is_retried(&mut sink, &path).await;
    let listener = UnixListener::bind(&path).unwrap();
    sink.deliver(&events()).await.unwrap();
    sink.close().await.unwrap();
    let (mut stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, expected().concat());
}

#[tokio::test]
async fn unix_stream_receiver_gone_is_retried_until_restored() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let listener = UnixListener::bind(&path).unwrap();
    let mut sink = sink_to(path.to_str().unwrap());
    sink.deliver(&events()[..1]).await.unwrap();
    let (mut stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut got = vec![0u8; expected()[0].len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, expected()[0]);
    drop((stream, listener));
    std::fs::remove_file(&path).unwrap();
    check_missing_receiver_is_retried(&mut sink, &path).await;
    let listener = UnixListener::bind(&path).unwrap();
    sink.deliver(&events()).await.unwrap();
    sink.close().await.unwrap();
    let (mut stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, expected().concat());
}

#[tokio::test]
async fn udp_refused_is_retried_until_the_receiver_is_back() {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = receiver.local_addr().unwrap();
    let mut sink = sink_to(&address.to_string());
    sink.deliver(&events()[..1]).await.unwrap();
    assert_eq!(recv_udp(&receiver).await, expected()[0]);
    drop(receiver);
    // UDP learns of a refusal only from a send after the one that was refused.
    let mut failure = None;
    for _ in 0..5 {
        if let Err(e) = sink.deliver(&events()).await {
            failure = Some(e);
            break;
        }
    }
    let err = failure.expect("a send to a closed port fails");
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert!(err.delivered < 3, "{err:?}");
    assert_eq!(
        err.message,
        format!("cannot send to {address}: connection refused")
    );
    let Ok(receiver) = UdpSocket::bind(address).await else {
        eprintln!(
            "skipped the end: port {} was taken meanwhile",
            address.port()
        );
        return;
    };
    // The next delivery connects afresh and sends every event of the retried batch.
    sink.deliver(&events()).await.unwrap();
    for want in expected() {
        assert_eq!(recv_udp(&receiver).await, want);
    }
}

#[tokio::test]
async fn too_large_keeps_the_connection_for_the_rest() {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = receiver.local_addr().unwrap().port();
    let mut sink = sink_to(&format!("127.0.0.1:{port}"));
    let err = sink.deliver(&[big_event("big", 70_000)]).await.unwrap_err();
    assert_eq!((err.kind, err.delivered), (SinkErrorKind::Permanent, 0));
    assert!(sink.transport.is_some());
    sink.deliver(&events()).await.unwrap();
    for want in expected() {
        assert_eq!(recv_udp(&receiver).await, want);
    }
}
