//! Local sockets: datagram, the stream fallback, missing and restored sockets.

use super::*;

/// Accepts one connection on `listener` and reads it to its end, in the background.
fn read_one_connection(listener: UnixListener) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let (mut stream, _) = within(listener.accept()).await;
        let mut got = Vec::new();
        within(stream.read_to_end(&mut got)).await;
        got
    })
}

async fn recv_unix(receiver: &UnixDatagram) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = within(receiver.recv(&mut buf)).await;
    buf.truncate(n);
    buf
}

/// Asserts that the next datagrams on `receiver` are [`expected`], in order.
async fn assert_receives_expected(receiver: &UnixDatagram) {
    for want in expected() {
        assert_eq!(recv_unix(receiver).await, want);
    }
}

fn socket_path(dir: &Path) -> PathBuf {
    dir.join("log.sock")
}

/// Asserts that `err` is a retry, with nothing delivered, because no socket is at `path`.
fn assert_no_socket(err: &SinkError, path: &Path) {
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

/// A sink that has delivered the first of [`events`] to a datagram receiver at `path`, which is
/// then gone, its socket file removed (as a syslog daemon that stopped leaves it).
async fn sink_whose_receiver_is_gone(path: &Path) -> SyslogSink {
    let first = UnixDatagram::bind(path).unwrap();
    let mut sink = sink_to(path.to_str().unwrap());
    sink.deliver(&events()[..1]).await.unwrap();
    assert_eq!(recv_unix(&first).await, expected()[0]);
    drop(first);
    std::fs::remove_file(path).unwrap();
    sink
}

#[tokio::test]
async fn unix_datagram_gets_exact_bytes_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let receiver = UnixDatagram::bind(&path).unwrap();
    let mut sink = sink_to(path.to_str().unwrap());
    sink.deliver(&events()).await.unwrap();
    assert_receives_expected(&receiver).await;
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
    let reader = read_one_connection(listener);
    sink.deliver(&events()).await.unwrap();
    sink.deliver(&events()[2..]).await.unwrap();
    sink.close().await.unwrap();
    let got = reader.await.unwrap();
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
    let size = legacy_datagram_size(&batch[1]);
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
    assert_receives_expected(&receiver).await;
}

#[tokio::test]
async fn missing_unix_socket_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let err = sink_to(path.to_str().unwrap())
        .deliver(&events())
        .await
        .unwrap_err();
    assert_no_socket(&err, &path);
}

#[tokio::test]
async fn reconnects_after_receiver_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let mut sink = sink_whose_receiver_is_gone(&path).await;
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
    let mut sink = sink_whose_receiver_is_gone(&path).await;
    let second = UnixDatagram::bind(&path).unwrap();
    sink.reopen().await.unwrap();
    sink.deliver(&events()[1..2]).await.unwrap();
    assert_eq!(recv_unix(&second).await, expected()[1]);
}

/// Removes the receiver at `path` (as a syslog daemon that stopped does), then checks that the
/// sink retries, without counting anything delivered, as long as nothing is there.
async fn check_missing_receiver_is_retried(sink: &mut SyslogSink, path: &Path) {
    // The first delivery finds the old connection dead (a datagram socket when it sends, a
    // stream before it does), the next ones find no socket at all.
    let err = sink.deliver(&events()).await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert_eq!(err.delivered, 0);
    let missing = format!(
        "cannot connect to {}: no such file or directory",
        path.display()
    );
    assert!(
        err.message
            .starts_with(&format!("cannot send to {}: ", path.display()))
            || err.message == missing,
        "{}",
        err.message
    );
    for _ in 0..2 {
        let err = sink.deliver(&events()).await.unwrap_err();
        assert_no_socket(&err, path);
    }
}

/// [`check_missing_receiver_is_retried`], then checks that a stream receiver put back at `path`
/// gets every one of [`events`].
/// `again`: the bytes of the batch the sink kept from a connection that closed right after it,
/// which go first on the restored one.
async fn check_retried_until_restored_as_a_stream(mut sink: SyslogSink, path: &Path, again: &[u8]) {
    check_missing_receiver_is_retried(&mut sink, path).await;
    let reader = read_one_connection(UnixListener::bind(path).unwrap());
    sink.deliver(&events()).await.unwrap();
    sink.close().await.unwrap();
    assert_eq!(
        reader.await.unwrap(),
        [again, &expected().concat()].concat()
    );
}

#[tokio::test]
async fn removed_unix_socket_is_retried_until_restored() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let mut sink = sink_whose_receiver_is_gone(&path).await;
    check_missing_receiver_is_retried(&mut sink, &path).await;
    let second = UnixDatagram::bind(&path).unwrap();
    sink.deliver(&events()).await.unwrap();
    assert_receives_expected(&second).await;
}

#[tokio::test]
async fn unix_socket_restored_as_a_stream_is_used_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let sink = sink_whose_receiver_is_gone(&path).await;
    check_retried_until_restored_as_a_stream(sink, &path, b"").await;
}

#[tokio::test]
async fn unix_stream_receiver_gone_is_retried_until_restored() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path());
    let listener = UnixListener::bind(&path).unwrap();
    let mut sink = sink_to(path.to_str().unwrap());
    let first = tokio::spawn(async move {
        let (mut stream, _) = within(listener.accept()).await;
        let mut got = vec![0u8; expected()[0].len()];
        within(stream.read_exact(&mut got)).await;
        (got, stream, listener)
    });
    sink.deliver(&events()[..1]).await.unwrap();
    let (got, stream, listener) = first.await.unwrap();
    assert_eq!(got, expected()[0]);
    drop((stream, listener));
    std::fs::remove_file(&path).unwrap();
    // The receiver went away right after the first event: it goes again, first.
    check_retried_until_restored_as_a_stream(sink, &path, &expected()[0]).await;
}

#[tokio::test]
async fn unix_stream_framing_follows_the_format_unless_given() {
    let cases: [(&[(&str, &str)], Framing); 3] = [
        (&[("Format", "rfc5424")], Framing::Octet),
        (&[("Format", "rfc3164"), ("Framing", "lf")], Framing::Lf),
        (&[("Framing", "octet")], Framing::Octet),
    ];
    for (pairs, framing) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_path(dir.path());
        let reader = read_one_connection(UnixListener::bind(&path).unwrap());
        let mut keys = vec![("Socket", path.to_str().unwrap()), ("Hostname", "web1")];
        keys.extend_from_slice(pairs);
        let mut sink = sink_with(&keys);
        sink.deliver(&events()).await.unwrap();
        sink.close().await.unwrap();
        let got = reader.await.unwrap();
        let (messages, rest) = framing::split_frames(framing, &got).unwrap();
        assert!(
            rest.is_empty(),
            "{pairs:?}: {}",
            String::from_utf8_lossy(&got)
        );
        assert_eq!(messages.len(), 3, "{pairs:?}");
        for (message, event) in messages.iter().zip(events()) {
            assert!(message.ends_with(event.line().as_bytes()), "{pairs:?}");
            assert!(!message.contains(&0), "no NUL inside a frame");
        }
    }
}
