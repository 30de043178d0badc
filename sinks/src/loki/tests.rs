//! Tests of the loki sink's pure parts: keys, body, Loki's answers.

use broker_core::config::{BrokerConfig, PipeSettings};
use broker_core::{Event, EventType};

use super::answer::verdicts;
use super::body::{build, created_nanos, stream_name};
use super::config::{push_url, Auth, LokiConfig};
use crate::util::verdicts::Verdict;

fn settings(pairs: &[(&str, &str)]) -> PipeSettings {
    PipeSettings::new("Loki", "/b.conf", pairs)
}

fn config_error(pairs: &[(&str, &str)]) -> String {
    LokiConfig::from_settings(&settings(pairs))
        .unwrap_err()
        .to_string()
}

/// The error of loading a whole config whose Loki pipe has `lines` after `To = loki`.
fn load_error(lines: &str) -> String {
    crate::link();
    let text = format!("[Broker]\nBroker = b\n\n[Pipe.Loki]\nTo = loki\n{lines}");
    BrokerConfig::parse(&text, "/b.conf".as_ref())
        .unwrap_err()
        .to_string()
}

#[test]
fn the_url_gets_the_push_path_unless_it_has_it() {
    let url = |text: &str| push_url(text.parse().unwrap()).to_string();
    assert_eq!(
        url("https://loki.example.com:3100"),
        "https://loki.example.com:3100/loki/api/v1/push"
    );
    assert_eq!(
        url("https://gw.example.com/loki-a/"),
        "https://gw.example.com/loki-a/loki/api/v1/push"
    );
    assert_eq!(
        url("https://h.example/loki/api/v1/push"),
        "https://h.example/loki/api/v1/push"
    );
    assert_eq!(
        url("https://h.example/p/loki/api/v1/push/?x=1"),
        "https://h.example/p/loki/api/v1/push/?x=1"
    );
}

#[test]
fn keys_are_read_with_defaults() {
    let config = LokiConfig::from_settings(&settings(&[("Url", "http://127.0.0.1:3100")])).unwrap();
    assert_eq!(config.batch, 1000);
    assert_eq!(config.auth, Auth::None);
    assert!(config.labels.is_empty() && config.tenant.is_none());
    let config = LokiConfig::from_settings(&settings(&[
        ("Url", "https://loki.example.com"),
        ("TenantId", "team-a"),
        ("User", "u1"),
        ("Password", "pa55word-x"),
        ("Label", "env=prod"),
        ("Label", "site = ber 1"),
        ("Batch", "50"),
    ]))
    .unwrap();
    assert_eq!(config.tenant.as_deref(), Some("team-a"));
    assert_eq!(config.batch, 50);
    assert_eq!(
        config.labels,
        [
            ("env".into(), "prod".into()),
            ("site".into(), "ber 1".into())
        ]
    );
    assert!(matches!(config.auth, Auth::Basic { ref user, .. } if user == "u1"));
    assert!(!format!("{config:?}").contains("pa55word-x"));
}

#[test]
fn bad_keys_are_refused_with_what_is_wrong() {
    assert!(config_error(&[]).contains("Url"), "{}", config_error(&[]));
    let e = config_error(&[("Url", "http://loki.example.com")]);
    assert!(e.contains("loopback"), "{e}");
    let e = config_error(&[
        ("Url", "https://l.example"),
        ("Token", "t0ken-secret"),
        ("User", "u"),
        ("Password", "p4ss-secret"),
    ]);
    assert!(e.contains("not both") && !e.contains("secret"), "{e}");
    let e = config_error(&[("Url", "https://l.example"), ("User", "u")]);
    assert!(e.contains("User: needs Password"), "{e}");
    let e = config_error(&[("Url", "https://l.example"), ("Password", "p4ss-secret")]);
    assert!(
        e.contains("Password: needs User") && !e.contains("p4ss"),
        "{e}"
    );
    let e = config_error(&[("Url", "https://l.example"), ("Batch", "0")]);
    assert!(e.contains("from 1 to 10000"), "{e}");
    let e = config_error(&[
        ("Url", "https://l.example"),
        ("TokenFile", "/nonexistent/t"),
    ]);
    assert!(
        e.contains("TokenFile") && e.contains("/nonexistent/t"),
        "{e}"
    );
    let e = config_error(&[("Url", "https://l.example"), ("TenantId", "a\u{7}b")]);
    assert!(e.contains("TenantId"), "{e}");
}

#[test]
fn secrets_come_from_files_and_never_show() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "t0ken-from-file\n").unwrap();
    let config = LokiConfig::from_settings(&settings(&[
        ("Url", "https://l.example"),
        ("TokenFile", file.to_str().unwrap()),
    ]))
    .unwrap();
    match &config.auth {
        Auth::Bearer(token) => assert_eq!(token.expose(), "t0ken-from-file"),
        other => panic!("{other:?}"),
    }
    let masked = config.secrets().mask("echo t0ken-from-file");
    assert_eq!(masked, "echo ***");
}

#[test]
fn each_bad_label_names_its_own_line() {
    let e = load_error("Url = https://l.example\nLabel = env=prod\nLabel = 9lives=x\n");
    assert!(e.starts_with("/b.conf line 8: pipe Loki: Label:"), "{e}");
    assert!(e.contains("\"9lives\" is not a label name"), "{e}");
    let e = load_error("Url = https://l.example\nLabel = job=mine\nLabel = env=prod\n");
    assert!(
        e.starts_with("/b.conf line 7:") && e.contains("sink's own label"),
        "{e}"
    );
    let e = load_error("Url = https://l.example\nLabel = env=prod\nLabel = type=x\n");
    assert!(
        e.starts_with("/b.conf line 8:") && e.contains("type is the sink's own"),
        "{e}"
    );
    let e = load_error("Url = https://l.example\nLabel = env=a\nLabel = env=b\n");
    assert!(
        e.starts_with("/b.conf line 8:") && e.contains("already set"),
        "{e}"
    );
    let e = load_error("Url = https://l.example\nLabel = noequals\n");
    assert!(
        e.starts_with("/b.conf line 7:") && e.contains("name=value"),
        "{e}"
    );
    let e = load_error("Url = https://l.example\nLabel = env=\n");
    assert!(
        e.starts_with("/b.conf line 7:") && e.contains("no value"),
        "{e}"
    );
}

fn event(event_type: EventType, json: &str) -> Event {
    Event::from_json(event_type, json).unwrap()
}

#[test]
fn created_becomes_nanoseconds() {
    let line = |created: &str| format!(r#"{{"id":"a","attributes":{{"created":{created}}}}}"#);
    assert_eq!(
        created_nanos(&line("\"1970-01-01T00:00:01Z\"")),
        Some(1_000_000_000)
    );
    assert_eq!(
        created_nanos(&line("\"2024-05-01T08:00:53.123456Z\"")),
        Some(1_714_550_453_123_456_000)
    );
    assert_eq!(
        created_nanos(&line("\"2024-05-01T10:00:53+02:00\"")),
        Some(1_714_550_453_000_000_000)
    );
    for bad in ["null", "7", "\"yesterday\"", "[\"x\"]"] {
        assert_eq!(created_nanos(&line(bad)), None, "{bad}");
    }
    assert_eq!(created_nanos(r#"{"id":"a"}"#), None);
    assert_eq!(created_nanos(r#"{"attributes":null}"#), None);
    assert_eq!(created_nanos("[1,2]"), None);
}

#[test]
fn the_body_groups_entries_by_stream_in_order() {
    let events = [
        event(
            EventType::Alerts,
            r#"{"id":"a1","attributes":{"created":"2024-05-01T08:00:01Z","t":"q\"b\\s"}}"#,
        ),
        event(
            EventType::LogAuthn,
            r#"{"id":"l1","attributes":{"created":"2024-05-01T08:00:00Z"}}"#,
        ),
        event(
            EventType::Alerts,
            r#"{"id":"a2","attributes":{"created":"2024-05-01T08:00:02.5Z"}}"#,
        ),
        event(EventType::Alerts, r#"{"id":"a3","attributes":{}}"#),
    ];
    let labels = [("env".to_string(), "p\"rod".to_string())];
    let push = build(&events, &labels, 42);
    let body: serde_json::Value = serde_json::from_slice(&push.body).unwrap();
    let expected = serde_json::json!({"streams": [
        {"stream": {"job": "procustodibus-broker", "type": "alerts", "env": "p\"rod"},
         "values": [["1714550401000000000", events[0].line()],
                    ["1714550402500000000", events[2].line()],
                    ["42", events[3].line()]]},
        {"stream": {"job": "procustodibus-broker", "type": "log_authn", "env": "p\"rod"},
         "values": [["1714550400000000000", events[1].line()]]},
    ]});
    assert_eq!(body, expected);
    assert_eq!(
        push.entries.iter().map(|e| e.stream).collect::<Vec<_>>(),
        [0, 1, 0, 0]
    );
    assert_eq!(
        push.streams,
        [
            r#"{env="p\"rod",job="procustodibus-broker",type="alerts"}"#,
            r#"{env="p\"rod",job="procustodibus-broker",type="log_authn"}"#
        ]
    );
}

#[test]
fn stream_names_are_sorted_like_lokis() {
    let labels = [
        ("zone".to_string(), "a b".to_string()),
        ("app".to_string(), "x".to_string()),
    ];
    assert_eq!(
        stream_name("alerts", &labels),
        r#"{app="x",job="procustodibus-broker",type="alerts",zone="ab"}"#
    );
}

/// Four alerts at 08:00:00, :01, :02 (and :02 again), one log_authn at :00.
fn request() -> (Vec<Event>, super::body::PushBody) {
    let events: Vec<Event> = [
        (EventType::Alerts, "a0", "2024-05-01T08:00:00Z"),
        (EventType::Alerts, "a1", "2024-05-01T08:00:01.25Z"),
        (EventType::LogAuthn, "l0", "2024-05-01T08:00:00Z"),
        (EventType::Alerts, "a2", "2024-05-01T08:00:02Z"),
        (EventType::Alerts, "a3", "2024-05-01T08:00:02Z"),
    ]
    .iter()
    .map(|(t, id, created)| {
        event(
            *t,
            &format!(r#"{{"id":"{id}","attributes":{{"created":"{created}"}}}}"#),
        )
    })
    .collect();
    let push = build(&events, &[("env".to_string(), "prod".to_string())], 0);
    (events, push)
}

const ALERTS: &str = r#"{env="prod", job="procustodibus-broker", type="alerts"}"#;
const AUTHN: &str = r#"{env="prod", job="procustodibus-broker", type="log_authn"}"#;

fn refused(v: &Verdict) -> bool {
    matches!(v, Verdict::Refused(_))
}

#[test]
fn the_newer_ingester_answer_names_entries_then_the_stream() {
    let (_, push) = request();
    let text = format!(
        "entry with timestamp 2024-05-01 08:00:01.25 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2024-05-01T08:00:01Z, oldest acceptable timestamp is: 2024-05-01T09:00:00Z',\nuser 'fake', total ignored: 1 out of 4 for stream: {ALERTS}\n"
    );
    let v = verdicts(&push, &text).unwrap();
    assert_eq!(
        v.iter().map(refused).collect::<Vec<_>>(),
        [false, true, false, false, false]
    );
    assert_eq!(
        v[1],
        Verdict::Refused(
            "entry with timestamp 2024-05-01 08:00:01.25 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2024-05-01T08:00:01Z, oldest acceptable timestamp is: 2024-05-01T09:00:00Z'".into()
        )
    );
}

#[test]
fn the_older_ingester_answer_names_the_stream_on_each_line() {
    let (_, push) = request();
    let text = format!(
        "entry with timestamp 2024-05-01 08:00:02 +0000 UTC ignored, reason: 'entry out of order' for stream: {ALERTS},\nentry with timestamp 2024-05-01 08:00:02 +0000 UTC ignored, reason: 'entry out of order' for stream: {ALERTS},\nentry with timestamp 2024-05-01 08:00:00 +0000 UTC ignored, reason: 'entry out of order' for stream: {AUTHN},\ntotal ignored: 3 out of 5"
    );
    let v = verdicts(&push, &text).unwrap();
    // Two entries share a timestamp: each named line takes one of them.
    assert_eq!(
        v.iter().map(refused).collect::<Vec<_>>(),
        [false, false, true, true, true]
    );
}

#[test]
fn distributor_answers_name_too_old_too_new_and_too_long_entries() {
    let (events, push) = request();
    let text = format!(
        "entry for stream '{ALERTS}' has timestamp too old: 2024-05-01T08:00:01Z, oldest acceptable timestamp is: 2024-05-01T08:00:01Z\nentry for stream '{AUTHN}' has timestamp too new: 2024-05-01T08:00:00Z\nMax entry size '10' bytes exceeded for stream '{ALERTS}' while adding an entry with length '{}' bytes",
        events[3].line().len()
    );
    let v = verdicts(&push, &text).unwrap();
    // a0's line is as long as a2's: Loki refuses every line over its limit, so it names each
    // such line, and each name takes the first line of that length not taken yet.
    assert_eq!(
        v.iter().map(refused).collect::<Vec<_>>(),
        [true, true, true, false, false]
    );
    let Verdict::Refused(why) = &v[0] else {
        panic!()
    };
    assert!(
        why.starts_with("Max entry size '10' bytes exceeded") && why.ends_with("bytes"),
        "{why}"
    );
}

#[test]
fn more_ignored_than_named_sends_the_unnamed_again() {
    let (_, push) = request();
    let text = format!(
        "entry with timestamp 2024-05-01 08:00:01.25 +0000 UTC ignored, reason: 'entry too far behind',\nuser 'fake', total ignored: 3 out of 4 for stream: {ALERTS}"
    );
    let v = verdicts(&push, &text).unwrap();
    // The unnamed refused entries come after the last one named: a0 was taken.
    assert_eq!(
        v,
        [
            Verdict::Taken,
            Verdict::Refused("entry with timestamp 2024-05-01 08:00:01.25 +0000 UTC ignored, reason: 'entry too far behind'".into()),
            Verdict::Taken,
            Verdict::Resend,
            Verdict::Resend,
        ]
    );
}

#[test]
fn an_answer_naming_no_entry_is_about_the_request() {
    let (_, push) = request();
    for text in [
        "",
        "error at least one valid stream is required for ingestion",
        "Error parsing labels '{job=}' with error: 1:6: parse error",
        "entry with timestamp 2024-05-01 08:00:09 +0000 UTC ignored, reason: 'x' for stream: {job=\"other\"},",
        "entry with timestamp garbage ignored, reason: 'x' for stream: {a=\"b\"},",
        "entry for stream '{x' has timestamp too old: nope",
        "Max entry size 'x' bytes exceeded for stream '{' while adding an entry with length 'y' bytes",
        "total ignored: 99 out of 100",
        "<html>400 Bad Request</html>",
    ] {
        assert_eq!(verdicts(&push, text), None, "{text}");
    }
    // Named entries that are not in the request are skipped; the one that is counts.
    let text = format!(
        "entry with timestamp 2030-01-01 00:00:00 +0000 UTC ignored, reason: 'x',\nentry with timestamp 2024-05-01 08:00:00 +0000 UTC ignored, reason: 'y',\nuser 'u', total ignored: 2 out of 4 for stream: {ALERTS}"
    );
    let v = verdicts(&push, &text).unwrap();
    assert_eq!(
        v.iter().map(refused).collect::<Vec<_>>(),
        [true, false, false, false, false]
    );
}

#[test]
fn an_answer_read_in_part_sends_again_what_follows_its_last_name() {
    let why = || Verdict::Refused("x".into());
    let mut v = vec![
        Verdict::Taken,
        why(),
        Verdict::Taken,
        why(),
        Verdict::Taken,
        Verdict::Taken,
    ];
    super::sink::resend_after_last_named(&mut v);
    assert_eq!(
        v,
        [
            Verdict::Taken,
            why(),
            Verdict::Taken,
            why(),
            Verdict::Resend,
            Verdict::Resend
        ]
    );
}
