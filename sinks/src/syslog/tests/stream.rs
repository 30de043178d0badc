//! Stream delivery against receivers that misbehave in time: one that reads slowly, one that
//! stops reading so a write is left part way, and one that closes right after a batch.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Instant;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::tcp::{
    deliver_like_the_pipeline, ids, numbered_events, read_octet_frames, read_to_end, tcp_sink,
};
use super::*;
use crate::util::confirmed::SETTLE;

/// A listener on 127.0.0.1 whose connections have a receive buffer of about `bytes`.
fn small_buffer_listener(bytes: u32) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(bytes).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(8).unwrap()
}

/// The `ev-N` ids of `messages`, each checked to be whole: a legacy message of `event`'s
/// exact length.
fn whole_ids(messages: &[&[u8]], events: &[Event]) -> Vec<usize> {
    let ids = ids(messages);
    for (message, id) in messages.iter().zip(&ids) {
        let whole = legacy_datagram_size(&events[*id]) - 1;
        assert_eq!(message.len(), whole, "ev-{id} arrived torn");
    }
    ids
}

#[tokio::test]
async fn a_slow_receiver_takes_a_large_batch_whole_and_once() {
    // 1000 events of 2 KB into a receiver that reads at most 8 KB every 10 ms: the drain takes
    // 2.5 s at least, longer than the stall limit, but the send queue keeps shrinking.
    let listener = small_buffer_listener(4096).into_std().unwrap();
    listener.set_nonblocking(false).unwrap();
    let port = listener.local_addr().unwrap().port();
    let receiver = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).unwrap() {
                0 => return got,
                n => got.extend_from_slice(&buf[..n]),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let events = numbered_events(1000, 2000);
    let stall = Duration::from_secs(1);
    let mut sink = tcp_sink(port, &[]);
    sink.set_stream_limits(stall, SETTLE);
    let start = Instant::now();
    sink.deliver(&events).await.unwrap();
    let took = start.elapsed();
    sink.close().await.unwrap();
    let got = receiver.join().unwrap();
    assert!(
        took > stall,
        "the drain took {took:?}: the test needs one longer than the stall limit"
    );
    let (messages, rest) = framing::split_frames(Framing::Octet, &got).unwrap();
    assert!(rest.is_empty());
    assert_eq!(
        whole_ids(&messages, &events),
        (0..1000).collect::<Vec<_>>(),
        "every event once, in order"
    );
}

/// How a receiver's read of a connection ended.
#[derive(Debug, PartialEq)]
enum End {
    Eof,
    Reset,
}

/// Reads `stream` to its end as an LF-framed syslog receiver does: the records it keeps, and how
/// the stream ended. At a clean end a last record without its LF is kept as it is (rsyslog and
/// syslog-ng do so); after a reset it is dropped.
async fn read_lf_records(stream: &mut TcpStream) -> (Vec<Vec<u8>>, End) {
    let mut got = Vec::new();
    let end = match tokio::time::timeout(WAIT * 4, stream.read_to_end(&mut got))
        .await
        .unwrap()
    {
        Ok(_) => End::Eof,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => End::Reset,
        Err(e) => panic!("reading failed: {e}"),
    };
    let mut records: Vec<Vec<u8>> = got.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let tail = records.pop().unwrap_or_default();
    if end == End::Eof && !tail.is_empty() {
        records.push(tail);
    }
    (records, end)
}

/// How the sink gives up a write left part way.
#[derive(Clone, Copy, Debug)]
enum GiveUp {
    /// The write takes nothing for the stall limit: the delivery fails.
    Stall,
    /// The delivery is cancelled (dropped), as at shutdown.
    Cancel,
}

/// A receiver that does not read until the sink gave up (`how`): the write stalls part way
/// through a frame, with the rest of the frame in the sender's send queue. Then it reads that
/// connection to its end, and the next one, which the sink delivers the batch on again.
async fn give_up_a_torn_write(how: GiveUp) {
    let listener = small_buffer_listener(4096);
    let port = listener.local_addr().unwrap().port();
    let (go, gave_up) = tokio::sync::oneshot::channel::<()>();
    let receiver = tokio::spawn(async move {
        let (mut first, _) = listener.accept().await.unwrap();
        gave_up.await.unwrap();
        let first = read_lf_records(&mut first).await;
        let (mut second, _) = listener.accept().await.unwrap();
        (first, read_lf_records(&mut second).await)
    });
    // 6 MB: more than the send queue takes while the receiver does not read.
    let events = numbered_events(300, 20_000);
    let mut sink = tcp_sink(port, &[("Framing", "lf")]);
    match how {
        GiveUp::Stall => {
            sink.set_stream_limits(Duration::from_millis(300), SETTLE);
            let err = sink.deliver(&events).await.unwrap_err();
            assert_eq!((err.kind, err.delivered), (SinkErrorKind::Retry, 0));
            assert!(
                err.message
                    .contains("the receiver took nothing of the next"),
                "{}",
                err.message
            );
        }
        GiveUp::Cancel => {
            let cancelled =
                tokio::time::timeout(Duration::from_millis(300), sink.deliver(&events)).await;
            assert!(cancelled.is_err(), "the delivery is still writing");
        }
    }
    go.send(()).unwrap();
    deliver_like_the_pipeline(&mut sink, &events, 300).await;
    sink.close().await.unwrap();
    let ((first, first_end), (second, second_end)) = receiver.await.unwrap();
    let first: Vec<&[u8]> = first.iter().map(Vec::as_slice).collect();
    let second: Vec<&[u8]> = second.iter().map(Vec::as_slice).collect();
    let first = whole_ids(&first, &events);
    assert_eq!(
        first_end,
        End::Reset,
        "{how:?}: the abandoned connection is reset, not closed after a torn frame"
    );
    assert_eq!(second_end, End::Eof);
    assert_eq!(whole_ids(&second, &events), (0..300).collect::<Vec<_>>());
    assert!(first.iter().all(|id| *id < 300));
}

#[tokio::test]
async fn a_stalled_write_resets_the_connection_so_no_torn_record_is_kept() {
    give_up_a_torn_write(GiveUp::Stall).await;
}

#[tokio::test]
async fn a_cancelled_write_resets_the_connection_so_no_torn_record_is_kept() {
    give_up_a_torn_write(GiveUp::Cancel).await;
}

/// Delivers two batches of ten to a receiver that takes the first into its kernel buffer and
/// then `end`s the connection without reading it; returns the ids the next connection carries.
async fn second_connection_after(
    end: impl FnOnce(TcpStream) + Send + 'static,
    sink: &mut SyslogSink,
    listener: TcpListener,
) -> Vec<usize> {
    let (delivered, told) = tokio::sync::oneshot::channel::<()>();
    let receiver = tokio::spawn(async move {
        let (first, _) = listener.accept().await.unwrap();
        told.await.unwrap();
        end(first);
        let (mut second, _) = listener.accept().await.unwrap();
        read_to_end(&mut second).await
    });
    let events = numbered_events(20, 100);
    sink.deliver(&events[..10]).await.unwrap();
    delivered.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    sink.deliver(&events[10..]).await.unwrap();
    sink.close().await.unwrap();
    let got = receiver.await.unwrap();
    let (messages, rest) = framing::split_frames(Framing::Octet, &got).unwrap();
    assert!(rest.is_empty());
    ids(&messages)
}

#[tokio::test]
async fn a_batch_the_receiver_dropped_unread_right_after_the_drain_goes_again() {
    // Closed with the batch unread (the receiver's kernel resets the connection).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut sink = tcp_sink(listener.local_addr().unwrap().port(), &[]);
    let got = second_connection_after(drop, &mut sink, listener).await;
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    // Shut down (a FIN) with the batch unread.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut sink = tcp_sink(listener.local_addr().unwrap().port(), &[]);
    let shut = |stream: TcpStream| {
        let stream = stream.into_std().unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        std::mem::forget(stream);
    };
    let got = second_connection_after(shut, &mut sink, listener).await;
    assert_eq!(got, (0..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_batch_is_not_sent_again_when_the_connection_closed_after_the_window() {
    // The receiver reads the batch and closes 600 ms later, past a 200 ms window; the sink
    // notices only at its next delivery, 1 s after the first, and tells from the connection when
    // it closed.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut sink = tcp_sink(listener.local_addr().unwrap().port(), &[]);
    sink.set_stream_limits(crate::util::connect::TIMEOUT, Duration::from_millis(200));
    let (delivered, told) = tokio::sync::oneshot::channel::<()>();
    let receiver = tokio::spawn(async move {
        let (mut first, _) = listener.accept().await.unwrap();
        told.await.unwrap();
        read_octet_frames(&mut first, 10).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        drop(first);
        let (mut second, _) = listener.accept().await.unwrap();
        read_to_end(&mut second).await
    });
    let events = numbered_events(20, 100);
    sink.deliver(&events[..10]).await.unwrap();
    delivered.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    sink.deliver(&events[10..]).await.unwrap();
    sink.close().await.unwrap();
    let got = receiver.await.unwrap();
    let (messages, _) = framing::split_frames(Framing::Octet, &got).unwrap();
    assert_eq!(ids(&messages), (10..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_kept_batch_goes_again_once_whatever_the_retries() {
    // The receiver drops the first batch unread and is away for the next delivery: the kept
    // batch waits for the connection after, and goes first on it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut sink = tcp_sink(address.port(), &[]);
    let events = numbered_events(20, 100);
    let first = tokio::spawn(async move { listener.accept().await.unwrap() });
    sink.deliver(&events[..10]).await.unwrap();
    drop(first.await.unwrap());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = sink.deliver(&events[10..]).await.unwrap_err();
    assert_eq!((err.kind, err.delivered), (SinkErrorKind::Retry, 0));
    let Ok(listener) = TcpListener::bind(address).await else {
        eprintln!(
            "skipped the end: port {} was taken meanwhile",
            address.port()
        );
        return;
    };
    let receiver = tokio::spawn(async move {
        let (mut second, _) = listener.accept().await.unwrap();
        read_to_end(&mut second).await
    });
    sink.deliver(&events[10..]).await.unwrap();
    sink.close().await.unwrap();
    let got = receiver.await.unwrap();
    let (messages, _) = framing::split_frames(Framing::Octet, &got).unwrap();
    let got = ids(&messages);
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 20);
}
