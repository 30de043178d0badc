//! TCP: every format and framing through a real connection, refusals, and receivers that close
//! the connection and come back (every event arrives at least once).

use std::collections::BTreeSet;
use std::time::Instant;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::formats::{parse_back, settings, tricky_events, FORMATS, FRAMINGS};
use super::*;
use crate::util::confirmed::ConfirmedStream;

/// Accepts one connection on `listener` and reads it to its end, in the background.
fn read_one_connection(listener: TcpListener) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let (mut stream, _) = within(listener.accept()).await;
        read_to_end(&mut stream).await
    })
}

pub(super) async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    within(stream.read_to_end(&mut got)).await;
    got
}

/// Reads `count` octet-counted messages and nothing more (so what follows stays unread).
pub(super) async fn read_octet_frames(stream: &mut TcpStream, count: usize) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    for _ in 0..count {
        let mut digits = Vec::new();
        loop {
            let byte = within(stream.read_u8()).await;
            if byte == b' ' {
                break;
            }
            digits.push(byte);
        }
        let len: usize = String::from_utf8(digits).unwrap().parse().unwrap();
        let mut message = vec![0u8; len];
        within(stream.read_exact(&mut message)).await;
        messages.push(message);
    }
    messages
}

/// `count` events with ids `ev-0`, `ev-1` ..., each about `pad` bytes long.
pub(super) fn numbered_events(count: usize, pad: usize) -> Vec<Event> {
    (0..count)
        .map(|i| event(&format!(r#"{{"id":"ev-{i}","pad":"{}"}}"#, "x".repeat(pad))))
        .collect()
}

/// The ids in legacy messages (`<134>procustodibus: {"id":"ev-N",...}`), in order.
pub(super) fn ids(messages: &[&[u8]]) -> Vec<usize> {
    messages
        .iter()
        .map(|m| {
            let text = std::str::from_utf8(m).unwrap();
            let start = text.find("\"ev-").unwrap() + 4;
            let end = start + text[start..].find('"').unwrap();
            text[start..end].parse().unwrap()
        })
        .collect()
}

/// Delivers `events` as the pipeline does: in batches of `batch`, going on after the events a
/// failed delivery handed over, retrying after a short pause, for at most 20 seconds.
pub(super) async fn deliver_like_the_pipeline(
    sink: &mut SyslogSink,
    events: &[Event],
    batch: usize,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut next = 0;
    while next < events.len() {
        let end = (next + batch).min(events.len());
        match sink.deliver(&events[next..end]).await {
            Ok(()) => next = end,
            Err(e) => {
                assert_eq!(e.kind, SinkErrorKind::Retry, "{}", e.message);
                assert!(Instant::now() < deadline, "still failing: {}", e.message);
                next += e.delivered;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

pub(super) fn tcp_sink(port: u16, pairs: &[(&str, &str)]) -> SyslogSink {
    let socket = format!("127.0.0.1:{port}");
    let mut keys = vec![("Protocol", "tcp"), ("Socket", socket.as_str())];
    keys.extend_from_slice(pairs);
    sink_with(&keys)
}

#[tokio::test]
async fn every_format_and_framing_over_tcp_parses_back() {
    let events = tricky_events();
    for format in FORMATS {
        for framing in FRAMINGS {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let reader = read_one_connection(listener);
            let mut sink = tcp_sink(
                port,
                &[
                    ("Format", format.name()),
                    ("Framing", framing.name()),
                    ("Facility", "local3"),
                    ("Priority", "warning"),
                    ("Hostname", "web1"),
                ],
            );
            let before = chrono::Local::now().fixed_offset();
            sink.deliver(&events[..2]).await.unwrap();
            sink.deliver(&events[2..]).await.unwrap();
            let after = chrono::Local::now().fixed_offset();
            sink.close().await.unwrap();
            let got = reader.await.unwrap();
            let (messages, rest) = framing::split_frames(framing, &got).unwrap();
            assert!(rest.is_empty(), "{format}/{framing}");
            assert_eq!(messages.len(), events.len(), "{format}/{framing}");
            let message_settings = &sink.config().message;
            assert_eq!(message_settings.procid, std::process::id());
            assert_eq!(settings().hostname, message_settings.hostname);
            for (message, event) in messages.iter().zip(&events) {
                let stamp = parse_back(
                    format,
                    message,
                    event,
                    message_settings,
                    *before.offset(),
                    before.format("%Y").to_string().parse().unwrap(),
                );
                if let Some(stamp) = stamp {
                    let slack = chrono::Duration::seconds(1);
                    assert!(
                        stamp >= before - slack && stamp <= after + slack,
                        "{format}: {stamp} not between {before} and {after}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn tcp_frames_are_octet_counted_by_default_with_no_nul() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let reader = read_one_connection(listener);
    let mut sink = tcp_sink(port, &[]);
    assert_eq!(sink.config().stream_framing(), Framing::Octet);
    assert_eq!(sink.config().max_size(), None);
    sink.deliver(&events()).await.unwrap();
    sink.close().await.unwrap();
    let mut want = Vec::new();
    for datagram in expected() {
        let message = &datagram[..datagram.len() - 1];
        want.extend_from_slice(format!("{} ", message.len()).as_bytes());
        want.extend_from_slice(message);
    }
    assert_eq!(reader.await.unwrap(), want);
}

#[tokio::test]
async fn refused_tcp_is_retried_with_nothing_delivered() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = tcp_sink(port, &[]).deliver(&events()).await.unwrap_err();
    assert_eq!((err.kind, err.delivered), (SinkErrorKind::Retry, 0));
    assert_eq!(
        err.message,
        format!(
            "cannot connect to 127.0.0.1:{port} over TCP: connection refused (127.0.0.1:{port})"
        )
    );
}

#[tokio::test]
async fn tcp_max_size_sets_aside_what_does_not_fit() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let reader = read_one_connection(listener);
    let mut sink = tcp_sink(port, &[("MaxSize", "1K")]);
    let batch = vec![
        events()[0].clone(),
        big_event("big", 1024),
        events()[1].clone(),
    ];
    let err = sink.deliver(&batch).await.unwrap_err();
    assert_eq!((err.kind, err.delivered), (SinkErrorKind::Permanent, 1));
    let size = legacy_datagram_size(&batch[1]) - 1;
    assert_eq!(
        err.message,
        format!("event big is {size} bytes, over MaxSize 1024 for 127.0.0.1:{port}")
    );
    sink.deliver(&batch[2..]).await.unwrap();
    sink.close().await.unwrap();
    let got = reader.await.unwrap();
    let (messages, _) = framing::split_frames(Framing::Octet, &got).unwrap();
    let want = expected();
    assert_eq!(
        messages,
        [&want[0][..want[0].len() - 1], &want[1][..want[1].len() - 1]]
    );
}

#[tokio::test]
async fn a_stream_the_receiver_closed_confirms_nothing() {
    // The kernel takes the write although the receiver is gone: only the check after it tells.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connecting = TcpStream::connect(address);
    let (accepted, connected) = tokio::join!(listener.accept(), connecting);
    drop(accepted.unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut stream = ConfirmedStream::tcp(connected.unwrap(), Framing::Octet);
    let messages: Vec<Vec<u8>> = expected().into_iter().collect();
    let err = stream.send(&messages).await.unwrap_err();
    assert_eq!(err.confirmed, 0, "{}", err.error);
}

#[tokio::test]
async fn tcp_receiver_restart_between_batches_loses_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let events = numbered_events(20, 10);
    // The receiver reads six messages; when told, it closes the connection and stops listening.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let first = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let got = read_octet_frames(&mut stream, 6).await;
        let _ = stopped.await;
        got
    });
    let mut sink = tcp_sink(address.port(), &[]);
    sink.deliver(&events[..3]).await.unwrap();
    sink.deliver(&events[3..6]).await.unwrap();
    stop.send(()).unwrap();
    let first: Vec<Vec<u8>> = first.await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Nothing listens: the sink notices the closed connection and cannot connect again.
    let err = sink.deliver(&events[6..9]).await.unwrap_err();
    assert_eq!((err.kind, err.delivered), (SinkErrorKind::Retry, 0));
    assert!(
        err.message.starts_with(&format!(
            "cannot connect to {address} over TCP: connection refused"
        )),
        "{}",
        err.message
    );
    // The receiver comes back on the same port.
    let Ok(listener) = TcpListener::bind(address).await else {
        eprintln!(
            "skipped the end: port {} was taken meanwhile",
            address.port()
        );
        return;
    };
    let second = read_one_connection(listener);
    deliver_like_the_pipeline(&mut sink, &events[6..], 3).await;
    sink.close().await.unwrap();
    let second = second.await.unwrap();
    let (later, rest) = framing::split_frames(Framing::Octet, &second).unwrap();
    assert!(rest.is_empty());
    let first: Vec<&[u8]> = first.iter().map(Vec::as_slice).collect();
    assert_eq!(ids(&first), (0..6).collect::<Vec<_>>());
    // The connection closed right after the second batch (within 3 s): the sink kept it and
    // sends it again first, as the receiver may have dropped it unread.
    assert_eq!(ids(&later), (3..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn tcp_receiver_closing_mid_batch_gets_every_event_at_least_once() {
    // A small receive buffer, so the receiver's end cannot take the batch before it reads it.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(8).unwrap();
    let port = listener.local_addr().unwrap().port();
    let events = numbered_events(2000, 1000);
    // The receiver reads 20 messages and closes the connection with the rest unread, then
    // accepts the next connection and reads it to the end.
    let receiver = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let first = read_octet_frames(&mut stream, 20).await;
        drop(stream);
        let (mut stream, _) = listener.accept().await.unwrap();
        (first, read_to_end(&mut stream).await)
    });
    let mut sink = tcp_sink(port, &[]);
    sink.deliver(&events[..1]).await.unwrap();
    // One delivery: the connection fails under it, and the sink sends the unconfirmed tail again
    // on a new connection.
    sink.deliver(&events[1..]).await.unwrap();
    sink.close().await.unwrap();
    let (first, second) = tokio::time::timeout(Duration::from_secs(20), receiver)
        .await
        .unwrap()
        .unwrap();
    let first: Vec<&[u8]> = first.iter().map(Vec::as_slice).collect();
    let (second, rest) = framing::split_frames(Framing::Octet, &second).unwrap();
    assert!(rest.is_empty());
    let first = ids(&first);
    let second = ids(&second);
    assert_eq!(first, (0..20).collect::<Vec<_>>());
    let resent_from = second[0];
    assert!(
        resent_from <= 20,
        "the second connection starts at ev-{resent_from}, after the first unread event ev-20"
    );
    assert_eq!(second, (resent_from..2000).collect::<Vec<_>>());
    let all: BTreeSet<usize> = first.iter().chain(&second).copied().collect();
    assert_eq!(all.len(), 2000, "every event arrives");
}
