//! RELP against a scripted receiver on loopback: what rsyslog does not easily do on demand (a
//! status other than 200 for one message, a connection dropped in the middle of a window, a
//! receiver that never answers). The real rsyslog `imrelp` is in tests/tests/relp.rs.

use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::*;
use transport::relp::frame::{encode, Frame, Parser};

/// How the scripted receiver treats one connection.
#[derive(Clone, Copy)]
enum Script {
    /// Answers every message: 500 for those whose text holds `refuse-me`, else 200.
    Answer,
    /// Answers the first `n` messages, then drops the connection with the rest unanswered.
    DropAfter(usize),
    /// Answers `open`, then never anything else.
    Silent,
}

/// Messages received per connection, in order.
type Received = Arc<Mutex<Vec<Vec<String>>>>;

/// A receiver that follows `scripts`, one per connection in turn (the last one again after).
async fn receiver(scripts: Vec<Script>) -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let received: Received = Arc::default();
    let log = received.clone();
    tokio::spawn(async move {
        for n in 0.. {
            let (stream, _) = listener.accept().await.unwrap();
            let script = scripts[n.min(scripts.len() - 1)];
            log.lock().unwrap().push(Vec::new());
            tokio::spawn(session(stream, script, log.clone(), n));
        }
    });
    (address, received)
}

/// One connection of the scripted receiver.
async fn session(mut stream: TcpStream, script: Script, log: Received, index: usize) {
    let mut parser = Parser::default();
    let mut buf = vec![0u8; 4096];
    let mut answered = 0;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut frames: Vec<Frame> = Vec::new();
        parser.push(&buf[..n], &mut frames).unwrap();
        let mut out = Vec::new();
        for frame in frames {
            match frame.command.as_str() {
                "open" => encode(
                    frame.txnr,
                    "rsp",
                    b"200 OK\nrelp_version=0\nrelp_software=test\ncommands=syslog",
                    &mut out,
                ),
                "syslog" => {
                    let text = String::from_utf8(frame.data).unwrap();
                    log.lock().unwrap()[index].push(text.clone());
                    match script {
                        Script::Silent => {}
                        Script::DropAfter(limit) if answered >= limit => {
                            stream.write_all(&out).await.unwrap();
                            return;
                        }
                        _ if text.contains("refuse-me") => {
                            encode(frame.txnr, "rsp", b"500 rejected by the test", &mut out)
                        }
                        _ => encode(frame.txnr, "rsp", b"200 OK", &mut out),
                    }
                    answered += 1;
                }
                "close" => {
                    encode(frame.txnr, "rsp", b"", &mut out);
                    encode(0, "serverclose", b"", &mut out);
                }
                other => panic!("unexpected command {other}"),
            }
        }
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn relp_sink(address: &str) -> SyslogSink {
    sink_with(&[("Socket", address), ("Protocol", "relp"), ("Window", "2")])
}

/// The ids of the events in `messages` (legacy format: `<134>procustodibus: JSON`).
fn ids(messages: &[String]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            let json = m.split_once(": ").unwrap().1;
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            value["id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn numbered(names: &[&str]) -> Vec<Event> {
    names
        .iter()
        .map(|id| event(&format!(r#"{{"id":"{id}"}}"#)))
        .collect()
}

#[tokio::test]
async fn every_message_is_answered_and_the_session_is_kept_then_closed() {
    let (address, received) = receiver(vec![Script::Answer]).await;
    let mut sink = relp_sink(&address);
    sink.deliver(&numbered(&["a", "b", "c", "d", "e"]))
        .await
        .unwrap();
    sink.deliver(&numbered(&["f"])).await.unwrap();
    assert_eq!(sink.last_answer().as_deref(), Some("200 OK"));
    sink.close().await.unwrap();
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "one session for both batches");
    assert_eq!(ids(&received[0]), ["a", "b", "c", "d", "e", "f"]);
}

#[tokio::test]
async fn a_refused_message_is_permanent_for_it_alone() {
    let (address, received) = receiver(vec![Script::Answer]).await;
    let mut sink = relp_sink(&address);
    let events = numbered(&["a", "refuse-me", "c"]);
    let error = sink.deliver(&events).await.unwrap_err();
    assert_eq!(error.kind, SinkErrorKind::Permanent);
    assert_eq!(error.delivered, 1);
    assert!(sink.last_answer().is_some());
    assert_eq!(
        error.message,
        format!("{address} refused event refuse-me over RELP: 500 rejected by the test")
    );
    sink.deliver(&events[2..]).await.unwrap();
    let received = received.lock().unwrap().clone();
    assert_eq!(
        ids(&received[0]),
        ["a", "refuse-me", "c", "c"],
        "the one answered behind the refused one goes again"
    );
}

#[tokio::test]
async fn a_kept_session_dropped_mid_window_sends_the_unanswered_again_at_once() {
    let (address, received) = receiver(vec![Script::DropAfter(3), Script::Answer]).await;
    let mut sink = relp_sink(&address);
    sink.deliver(&numbered(&["a", "b"])).await.unwrap();
    sink.deliver(&numbered(&["c", "d", "e"])).await.unwrap();
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "a second session within the delivery");
    assert_eq!(
        ids(&received[0]),
        ["a", "b", "c", "d"],
        "d was taken, not answered"
    );
    assert_eq!(ids(&received[1]), ["d", "e"]);
}

#[tokio::test]
async fn a_new_session_dropped_mid_window_counts_what_was_answered() {
    let (address, _received) = receiver(vec![Script::DropAfter(1)]).await;
    let error = relp_sink(&address)
        .deliver(&numbered(&["a", "b", "c"]))
        .await
        .unwrap_err();
    assert_eq!(error.kind, SinkErrorKind::Retry);
    assert_eq!(error.delivered, 1);
    assert_eq!(
        error.message,
        format!("cannot send to {address} over RELP: the receiver closed the connection")
    );
}

#[tokio::test]
async fn a_receiver_that_never_answers_fails_after_the_stall_limit() {
    let (address, _received) = receiver(vec![Script::Silent]).await;
    let mut sink = relp_sink(&address);
    sink.set_stream_limits(Duration::from_millis(300), crate::util::confirmed::SETTLE);
    let error = sink.deliver(&numbered(&["a", "b", "c"])).await.unwrap_err();
    assert_eq!(error.kind, SinkErrorKind::Retry);
    assert_eq!(error.delivered, 0);
    assert_eq!(
        error.message,
        format!(
            "cannot send to {address} over RELP: no answer for 0.3 seconds (2 messages unanswered)"
        )
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_with_nothing_delivered() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let error = relp_sink(&address)
        .deliver(&numbered(&["a"]))
        .await
        .unwrap_err();
    assert_eq!(error.kind, SinkErrorKind::Retry);
    assert!(
        error
            .message
            .starts_with(&format!("cannot connect to {address} over RELP: ")),
        "{}",
        error.message
    );
}
