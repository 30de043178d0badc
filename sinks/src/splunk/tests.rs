//! Unit tests of the splunk sink's pure parts: keys, event objects, answers, the channel.

use std::time::Duration;

use broker_core::config::PipeSettings;
use broker_core::{Event, EventType};

use super::answer::{ack_query, acked_ids, outcome, Outcome, Reply};
use super::body::{event_time, Envelope};
use super::channel::{channel_file, load_or_create, new_guid};
use super::config::{SplunkConfig, DEFAULT_ACK_TIMEOUT, DEFAULT_BATCH};
use super::SplunkSink;
use crate::util::guid::is_guid;

fn config(pairs: &[(&str, &str)]) -> Result<SplunkConfig, String> {
    SplunkConfig::from_settings(&PipeSettings::new("P", "/b.conf", pairs))
        .map_err(|e| e.to_string())
}

fn event(t: EventType, line: &str) -> Event {
    Event::from_json(t, line).unwrap()
}

#[test]
fn defaults_and_every_key() {
    let c = config(&[("Url", "https://s:8088"), ("Token", "t0ken-s3cret")]).unwrap();
    assert_eq!(
        c.event_url.as_str(),
        "https://s:8088/services/collector/event"
    );
    assert_eq!(c.ack_url.as_str(), "https://s:8088/services/collector/ack");
    assert_eq!(c.token.expose(), "t0ken-s3cret");
    assert_eq!(
        (c.batch, c.ack, c.ack_timeout),
        (DEFAULT_BATCH, false, DEFAULT_ACK_TIMEOUT)
    );
    assert_eq!(
        (c.index, c.source, c.source_type, c.host),
        (None, None, None, None)
    );
    let c = config(&[
        ("url", "https://s:8088/"),
        ("token", "x"),
        ("index", "wg"),
        ("source", "broker"),
        ("source_type", "pc:json"),
        ("host", "h1"),
        ("batch", "10"),
        ("ack", "yes"),
        ("acktimeout", "2.5"),
        ("timeout", "5"),
    ])
    .unwrap();
    assert_eq!(c.index.as_deref(), Some("wg"));
    assert_eq!(c.source.as_deref(), Some("broker"));
    assert_eq!(c.source_type.as_deref(), Some("pc:json"));
    assert_eq!(c.host.as_deref(), Some("h1"));
    assert_eq!((c.batch, c.ack), (10, true));
    assert_eq!(c.ack_timeout, Duration::from_millis(2500));
    assert_eq!(c.client.timeout, Duration::from_secs(5));
}

#[test]
fn bad_keys_are_named_and_secrets_never_quoted() {
    let url = ("Url", "https://s:8088");
    for (pairs, expected) in [
        (vec![("Token", "t0ken-s3cret")], "Url: missing"),
        (
            vec![("Url", "http://10.0.0.1/s3cret"), ("Token", "x")],
            "Url: http:// is only",
        ),
        (vec![url], "Token: is required (or TokenFile)"),
        (
            vec![url, ("Token", "s3cret"), ("TokenFile", "/x")],
            "TokenFile: set Token or TokenFile",
        ),
        (
            vec![url, ("Token", "s3cret"), ("Batch", "0")],
            "Batch: \"0\" is not a number of events",
        ),
        (vec![url, ("Token", "s3cret"), ("Ack", "maybe")], "Ack:"),
        (
            vec![url, ("Token", "s3cret"), ("AckTimeout", "0")],
            "AckTimeout:",
        ),
        (
            vec![url, ("Token", "s3cret"), ("Index", "")],
            "Index: must not be empty",
        ),
        (
            vec![url, ("Token", "s3cret"), ("Proxy", "s3cret")],
            "Proxy: not a proxy URL",
        ),
    ] {
        let e = config(&pairs).unwrap_err();
        assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        assert!(!e.contains("s3cret"), "{e}");
    }
    // A token an HTTP header cannot carry is refused without quoting it.
    let settings = PipeSettings::new("P", "/b.conf", &[url, ("Token", "s3cret\u{7f}x")]);
    let e = SplunkSink::from_settings(&settings)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("pipe P: Token: holds characters"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

#[test]
fn event_objects_wrap_the_file_sinks_line() {
    let line = r#"{"attributes":{"created":"2024-05-01T08:00:00.250Z","title":"x"},"id":"a1","type":"alerts"}"#;
    let e = event(EventType::Alerts, line);
    let body = Envelope::from_values(None, None, None, None).body(std::slice::from_ref(&e));
    assert_eq!(
        String::from_utf8(body).unwrap(),
        format!(
            r#"{{"time":1714550400.25,"sourcetype":"procustodibus:alerts","event":{}}}"#,
            e.line()
        )
    );
    let envelope = Envelope::from_values(Some("h\"1"), Some("src"), Some("st"), Some("idx"));
    let other = event(EventType::LogAuthn, r#"{"id":2}"#);
    let body = envelope.body(&[e.clone(), other.clone()]);
    let text = String::from_utf8(body).unwrap();
    // Concatenated objects, each one valid JSON with the shared members.
    let objects: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["host"], "h\"1");
    assert_eq!(objects[0]["source"], "src");
    assert_eq!(objects[0]["sourcetype"], "st");
    assert_eq!(objects[0]["index"], "idx");
    assert_eq!(objects[0]["event"]["id"], "a1");
    assert!(objects[1].get("time").is_none(), "no created, no time");
    assert_eq!(objects[1]["event"], serde_json::json!({"id": 2}));
}

#[test]
fn times_are_epoch_seconds_from_created() {
    let at = |created: &str| event_time(&format!(r#"{{"attributes":{{"created":{created}}}}}"#));
    assert_eq!(
        at("\"2024-05-01T08:00:00Z\"").as_deref(),
        Some("1714550400")
    );
    assert_eq!(
        at("\"2024-05-01T08:00:00.123456Z\"").as_deref(),
        Some("1714550400.123456")
    );
    assert_eq!(
        at("\"2024-05-01T10:00:00.5+02:00\"").as_deref(),
        Some("1714550400.5")
    );
    for bad in ["\"yesterday\"", "null", "12", "\"1960-01-01T00:00:00Z\""] {
        assert_eq!(at(bad), None, "{bad}");
    }
    assert_eq!(event_time(r#"{"attributes":null}"#), None);
    assert_eq!(event_time(r#"{"attributes":"x"}"#), None);
    assert_eq!(event_time("[]"), None);
}

#[test]
fn answers_are_read_tolerantly() {
    let r = Reply::parse(br#"{"text":"Success","code":0,"ackId":7,"extra":[1]}"#);
    assert_eq!(
        (r.text.as_deref(), r.code, r.ack_id),
        (Some("Success"), Some(0), Some(7))
    );
    let r = Reply::parse(br#"{"text":null,"code":"6","invalid-event-number":"3"}"#);
    assert_eq!((r.text, r.code, r.invalid_event), (None, Some(6), Some(3)));
    let r = Reply::parse(br#"{"code":{"x":1},"ackId":-1,"invalid-event-number":1.5}"#);
    assert_eq!(r, Reply::default());
    assert_eq!(Reply::parse(b"<html>busy</html>"), Reply::default());
    assert_eq!(Reply::parse(b"[1]"), Reply::default());
}

#[test]
fn each_answer_means_what_the_docs_say() {
    let o = |status: u16, body: &str, events: usize| {
        outcome(status, &Reply::parse(body.as_bytes()), None, events)
    };
    assert_eq!(
        o(200, r#"{"text":"Success","code":0}"#, 5),
        Outcome::Accepted { ack_id: None }
    );
    assert_eq!(
        o(200, r#"{"text":"Success","code":0,"ackId":3}"#, 5),
        Outcome::Accepted { ack_id: Some(3) }
    );
    assert_eq!(o(200, "", 5), Outcome::Accepted { ack_id: None });
    let bad = r#"{"text":"Invalid data format","code":6,"invalid-event-number":3}"#;
    assert_eq!(o(400, bad, 5), Outcome::EventRefused { at: 3 });
    // Out of range or not said: the first event is tried alone.
    assert_eq!(o(400, bad, 3), Outcome::EventRefused { at: 0 });
    assert_eq!(
        o(400, r#"{"text":"Event field is required","code":12}"#, 3),
        Outcome::EventRefused { at: 0 }
    );
    assert_eq!(o(413, "", 3), Outcome::TooLarge);
    // About the request: a retry with a hint, never an event's fault.
    for (status, body, hint) in [
        (
            400,
            r#"{"text":"Incorrect index","code":7,"invalid-event-number":1}"#,
            "check Index",
        ),
        (403, r#"{"text":"Token disabled","code":1}"#, "check Token"),
        (
            401,
            r#"{"text":"Token is required","code":2}"#,
            "check Token",
        ),
        (
            401,
            r#"{"text":"Invalid authorization","code":3}"#,
            "check Token",
        ),
        (403, r#"{"text":"Invalid token","code":4}"#, "check Token"),
        (
            400,
            r#"{"text":"Data channel is missing","code":10}"#,
            "channel",
        ),
        (400, r#"{"text":"ACK is disabled","code":14}"#, "Ack = no"),
        (404, "", "check Url"),
        (400, "not json", ""),
        (503, r#"{"text":"Server is busy","code":9}"#, ""),
        (429, "", ""),
        (500, r#"{"text":"Internal server error","code":8}"#, ""),
    ] {
        match o(status, body, 3) {
            Outcome::Retry { hint: h, .. } => assert!(h.contains(hint), "{status} {body}: {h}"),
            other => panic!("{status} {body}: {other:?}"),
        }
    }
    let wait = Some(Duration::from_secs(4));
    assert_eq!(
        outcome(503, &Reply::default(), wait, 1),
        Outcome::Retry { hint: "", wait }
    );
}

#[test]
fn acks_are_read_tolerantly() {
    let mut ids = acked_ids(br#"{"acks":{"0":true,"1":false,"2":true,"x":true,"3":null}}"#);
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 2]);
    assert!(acked_ids(br#"{"acks":null}"#).is_empty());
    assert!(acked_ids(b"oops").is_empty());
    assert_eq!(ack_query(&[1, 2]), br#"{"acks":[1,2]}"#.to_vec());
}

#[test]
fn the_channel_is_made_once_and_kept() {
    let guid = new_guid().unwrap();
    assert!(is_guid(&guid), "{guid}");
    assert_eq!(&guid[14..15], "4");
    assert_ne!(guid, new_guid().unwrap());
    assert!(!is_guid("not-a-guid"));
    let dir = tempfile::tempdir().unwrap();
    let file = channel_file(dir.path(), "My Pipe/1");
    assert_eq!(file.file_name().unwrap(), "splunk-channel-My_Pipe_1");
    let first = load_or_create(&file).unwrap();
    assert_eq!(load_or_create(&file).unwrap(), first);
    std::fs::write(&file, "garbage").unwrap();
    let replaced = load_or_create(&file).unwrap();
    assert!(is_guid(&replaced) && replaced != first);
    let e = load_or_create(&dir.path().join("no/such/dir/f")).unwrap_err();
    assert!(e.starts_with("cannot write "), "{e}");
}
