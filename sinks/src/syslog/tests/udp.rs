//! UDP: exact bytes, `MaxSize`, refusals and reconnection.

use super::*;

async fn recv_udp(receiver: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = within(receiver.recv(&mut buf)).await;
    buf.truncate(n);
    buf
}

/// A receiver on a free port of 127.0.0.1, that port, and a sink sending to it.
async fn receiver_and_sink() -> (UdpSocket, u16, SyslogSink) {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = receiver.local_addr().unwrap().port();
    let sink = sink_to(&format!("127.0.0.1:{port}"));
    (receiver, port, sink)
}

/// Asserts that the next datagrams on `receiver` are [`expected`], in order.
async fn assert_receives_expected(receiver: &UdpSocket) {
    for want in expected() {
        assert_eq!(recv_udp(receiver).await, want);
    }
}

/// Delivers [`events`] until a delivery fails (at most 5 times): UDP learns of a refusal only
/// from a send after the one that was refused. Returns that failure.
async fn first_failure(sink: &mut SyslogSink) -> SinkError {
    let mut failure = None;
    for _ in 0..5 {
        if let Err(e) = sink.deliver(&events()).await {
            failure = Some(e);
            break;
        }
    }
    failure.expect("a send to a closed port fails")
}

#[tokio::test]
async fn udp_ipv4_gets_exact_bytes_in_order() {
    let (receiver, _, mut sink) = receiver_and_sink().await;
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
    assert_receives_expected(&receiver).await;
}

#[tokio::test]
async fn udp_too_large_is_permanent_for_that_event() {
    let (receiver, port, mut sink) = receiver_and_sink().await;
    let mut batch = events();
    batch.insert(1, big_event("big", 70_000));
    let size = legacy_datagram_size(&batch[1]);
    let err = sink.deliver(&batch).await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Permanent);
    assert_eq!(err.delivered, 1);
    assert_eq!(
        err.message,
        format!("event big is {size} bytes, over MaxSize 65507 for 127.0.0.1:{port}")
    );
    // The pipeline sets the event aside and goes on with the rest.
    sink.deliver(&batch[2..]).await.unwrap();
    assert_receives_expected(&receiver).await;
}

#[tokio::test]
async fn udp_refused_is_retried() {
    let closed = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut sink = sink_to(&format!("127.0.0.1:{port}"));
    let err = first_failure(&mut sink).await;
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert!(err.delivered < 3);
    assert_eq!(
        err.message,
        format!("cannot send to 127.0.0.1:{port}: connection refused")
    );
}

#[tokio::test]
async fn udp_refused_is_retried_until_the_receiver_is_back() {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = receiver.local_addr().unwrap();
    let mut sink = sink_to(&address.to_string());
    sink.deliver(&events()[..1]).await.unwrap();
    assert_eq!(recv_udp(&receiver).await, expected()[0]);
    drop(receiver);
    let err = first_failure(&mut sink).await;
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
    assert_receives_expected(&receiver).await;
}

#[tokio::test]
async fn too_large_keeps_the_connection_for_the_rest() {
    let (receiver, _, mut sink) = receiver_and_sink().await;
    let err = sink.deliver(&[big_event("big", 70_000)]).await.unwrap_err();
    assert_eq!((err.kind, err.delivered), (SinkErrorKind::Permanent, 0));
    assert!(sink.connection.is_some());
    sink.deliver(&events()).await.unwrap();
    assert_receives_expected(&receiver).await;
}

#[tokio::test]
async fn max_size_counts_the_whole_datagram_and_nothing_is_cut() {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = receiver.local_addr().unwrap().port();
    let fits = big_event("fits", 100);
    let max = legacy_datagram_size(&fits);
    let over = big_event("over", 101);
    assert_eq!(legacy_datagram_size(&over), max + 1);
    let max_text = max.to_string();
    let mut sink = sink_with(&[
        ("Socket", &format!("127.0.0.1:{port}")),
        ("MaxSize", &max_text),
    ]);
    let batch = vec![fits.clone(), over.clone(), events()[0].clone()];
    let err = sink.deliver(&batch).await.unwrap_err();
    assert_eq!((err.kind, err.delivered), (SinkErrorKind::Permanent, 1));
    assert_eq!(
        err.message,
        format!(
            "event over is {} bytes, over MaxSize {max} for 127.0.0.1:{port}",
            max + 1
        )
    );
    sink.deliver(&batch[2..]).await.unwrap();
    let first = recv_udp(&receiver).await;
    assert_eq!(first.len(), max);
    assert!(first.ends_with(b"\"}\0"), "the whole message, NUL included");
    // The next datagram is the next event: the oversized one was not sent in part.
    assert_eq!(recv_udp(&receiver).await, expected()[0]);
}

#[tokio::test]
async fn an_oversized_event_without_id_says_so() {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = receiver.local_addr().unwrap().port();
    let mut sink = sink_with(&[("Socket", &format!("127.0.0.1:{port}")), ("MaxSize", "64")]);
    let anonymous = event(&format!(r#"{{"pad":"{}"}}"#, "x".repeat(64)));
    let err = sink.deliver(&[anonymous]).await.unwrap_err();
    assert_eq!((err.kind, err.delivered), (SinkErrorKind::Permanent, 0));
    assert!(
        err.message.starts_with("event without id is "),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn rfc_formats_over_udp_have_no_nul() {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = receiver.local_addr().unwrap().port();
    for format in ["rfc3164", "rfc5424"] {
        let mut sink = sink_with(&[
            ("Socket", &format!("127.0.0.1:{port}")),
            ("Format", format),
            ("Hostname", "web1"),
        ]);
        sink.deliver(&events()[..1]).await.unwrap();
        let got = recv_udp(&receiver).await;
        assert!(got.starts_with(b"<134>"), "{format}");
        assert!(
            got.ends_with(b"{\"id\":\"e1\",\"x\":\"\\u00e9\"}"),
            "{format}: {}",
            String::from_utf8_lossy(&got)
        );
    }
}

/// Receives one datagram and says which port it came from.
async fn recv_from_port(receiver: &UdpSocket) -> u16 {
    let mut buf = vec![0u8; 70_000];
    within(receiver.recv_from(&mut buf)).await.1.port()
}

#[tokio::test]
async fn udp_resolves_the_host_again_after_resolve_every() {
    let (receiver, _, mut sink) = receiver_and_sink().await;
    sink.resolve_every = Duration::ZERO;
    sink.deliver(&events()[..1]).await.unwrap();
    let first = recv_from_port(&receiver).await;
    sink.deliver(&events()[..1]).await.unwrap();
    let second = recv_from_port(&receiver).await;
    assert_ne!(
        first, second,
        "a new socket, resolved again, sends the second delivery"
    );
    sink.resolve_every = RESOLVE_EVERY;
    sink.deliver(&events()[..1]).await.unwrap();
    assert_eq!(
        recv_from_port(&receiver).await,
        second,
        "within the interval: kept"
    );
}

#[tokio::test]
async fn udp_datagrams_are_paced_at_rate() {
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = receiver.local_addr().unwrap().port();
    let mut sink = sink_with(&[("Socket", &format!("127.0.0.1:{port}")), ("Rate", "10")]);
    let start = tokio::time::Instant::now();
    sink.deliver(&events()).await.unwrap();
    let paced = tokio::time::Instant::now() - start;
    let gaps = u32::try_from(events().len() - 1).unwrap();
    assert!(
        paced >= Duration::from_millis(100) * gaps,
        "{paced:?} for {gaps} gaps"
    );
    assert_receives_expected(&receiver).await;
    let mut unpaced = sink_with(&[("Socket", &format!("127.0.0.1:{port}")), ("Rate", "0")]);
    unpaced.deliver(&events()).await.unwrap();
    assert_receives_expected(&receiver).await;
}
