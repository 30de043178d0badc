//! Unit tests of the elasticsearch sink's pure parts: keys, bulk entries, bulk answers.

use broker_core::config::PipeSettings;
use broker_core::{Event, EventType};
use serde_json::json;

use super::answer::{request_error, verdict, verdicts, Verdict};
use super::body::{fields, push_entry, Fields};
use super::config::{ElasticConfig, DEFAULT_BATCH, DEFAULT_INDEX, DEFAULT_MAX_BYTES};

fn config(pairs: &[(&str, &str)]) -> Result<ElasticConfig, String> {
    ElasticConfig::from_settings(&PipeSettings::new("Es", "/b.conf", pairs))
        .map_err(|e| e.to_string())
}

#[test]
fn defaults() {
    let c = config(&[("Url", "https://es.example:9200")]).unwrap();
    let urls: Vec<_> = c.bulk_urls.iter().map(|u| u.as_str()).collect();
    assert_eq!(
        urls,
        ["https://es.example:9200/logs-procustodibus-default/_bulk"]
    );
    assert_eq!(c.index, DEFAULT_INDEX);
    assert_eq!(
        (c.batch, c.max_bytes, c.authorization),
        (DEFAULT_BATCH, DEFAULT_MAX_BYTES, None)
    );
}

#[test]
fn every_key() {
    let c = config(&[
        ("Url", "https://a.example:9200/prefix/, https://b.example"),
        ("url", "http://127.0.0.1:9200"),
        ("Index", "wg-events"),
        (
            "ApiKey",
            "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==",
        ),
        ("Pipeline", "geo ip"),
        ("Batch", "250"),
        ("MaxBytes", "2M"),
        ("Timeout", "5"),
    ])
    .unwrap();
    let urls: Vec<_> = c.bulk_urls.iter().map(|u| u.as_str()).collect();
    assert_eq!(
        urls,
        [
            "https://a.example:9200/prefix/wg-events/_bulk?pipeline=geo+ip",
            "https://b.example/wg-events/_bulk?pipeline=geo+ip",
            "http://127.0.0.1:9200/wg-events/_bulk?pipeline=geo+ip",
        ]
    );
    let auth = c.authorization.unwrap();
    assert!(auth.is_sensitive());
    assert_eq!(
        auth,
        "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
    );
    assert_eq!((c.batch, c.max_bytes), (250, 2 << 20));
    let c = config(&[
        ("Url", "https://es"),
        ("User", "elastic"),
        ("Password", "s3cret-pw"),
    ])
    .unwrap();
    // base64("elastic:s3cret-pw")
    assert_eq!(c.authorization.unwrap(), "Basic ZWxhc3RpYzpzM2NyZXQtcHc=");
    assert_eq!(
        c.secrets.mask("x s3cret-pw ZWxhc3RpYzpzM2NyZXQtcHc="),
        "x *** ***"
    );
}

#[test]
fn secret_files_are_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "s3cret-key\n").unwrap();
    let path = file.to_str().unwrap();
    let c = config(&[("Url", "https://es"), ("ApiKeyFile", path)]).unwrap();
    assert_eq!(c.authorization.unwrap(), "ApiKey s3cret-key");
    let e = config(&[("Url", "https://es"), ("ApiKeyFile", "/no/such/key")]).unwrap_err();
    assert!(e.contains("ApiKeyFile: cannot read /no/such/key"), "{e}");
    let c = config(&[("Url", "https://es"), ("User", "u"), ("PasswordFile", path)]).unwrap();
    assert!(c.authorization.is_some());
}

#[test]
fn errors_name_the_key_never_a_secret() {
    for (pairs, expected) in [
        (&[][..], "pipe Es: Url: is required"),
        (
            &[("Url", "http://es.example/s3cret")][..],
            "Url: http:// is only",
        ),
        (
            &[("Url", "https://es, ftp://s3cret")][..],
            "Url: scheme \"ftp\"",
        ),
        (
            &[("Url", "https://es"), ("Index", "Logs")][..],
            "Index: \"Logs\" is not an index name",
        ),
        (
            &[("Url", "https://es"), ("Index", "_x")][..],
            "Index: \"_x\" is not an index name",
        ),
        (
            &[("Url", "https://es"), ("ApiKey", "s3cret"), ("User", "u")][..],
            "ApiKey: set ApiKey or User and Password, not both",
        ),
        (
            &[("Url", "https://es"), ("User", "u")][..],
            "User: needs Password",
        ),
        (
            &[("Url", "https://es"), ("Password", "s3cret")][..],
            "Password: needs User",
        ),
        (
            &[("Url", "https://es"), ("ApiKey", "s3cret\u{1}")][..],
            "not a valid HTTP header value",
        ),
        (
            &[("Url", "https://es"), ("Batch", "0")][..],
            "Batch: \"0\" is not a number of events from 1 to 10000",
        ),
        (
            &[("Url", "https://es"), ("MaxBytes", "12")][..],
            "MaxBytes: must be at least",
        ),
        (&[("Url", "https://es"), ("Pipeline", "")][..], "Pipeline"),
    ] {
        let e = config(pairs).unwrap_err();
        assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}

fn event(json: &str) -> Event {
    Event::from_json(EventType::Alerts, json).unwrap()
}

fn entry(json: &str) -> (String, Option<String>) {
    let mut out = Vec::new();
    let id = push_entry(&event(json), &mut out);
    (String::from_utf8(out).unwrap(), id)
}

#[test]
fn entries_are_a_create_with_the_id_and_the_line_with_a_timestamp() {
    let (body, id) = entry(
        r#"{"type": "alerts", "id": "al\"1", "attributes": {"created": "2024-05-01T10:00:00.5Z", "n": 1}}"#,
    );
    assert_eq!(id.as_deref(), Some("al\"1"));
    assert_eq!(
        body,
        "{\"create\":{\"_id\":\"al\\\"1\"}}\n\
         {\"@timestamp\":\"2024-05-01T10:00:00.5Z\",\"type\":\"alerts\",\"id\":\"al\\\"1\",\
         \"attributes\":{\"created\":\"2024-05-01T10:00:00.5Z\",\"n\":1}}\n"
    );
    for line in body.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    // A numeric id; no created: no @timestamp.
    let (body, id) = entry(r#"{"id": 42, "attributes": null}"#);
    assert_eq!(id.as_deref(), Some("42"));
    assert_eq!(
        body,
        "{\"create\":{\"_id\":\"42\"}}\n{\"id\":42,\"attributes\":null}\n"
    );
    // No id: no _id (the receiver makes one).
    let (body, id) = entry(r#"{"attributes": {"created": "T"}}"#);
    assert_eq!(id, None);
    assert_eq!(
        body,
        "{\"create\":{}}\n{\"@timestamp\":\"T\",\"attributes\":{\"created\":\"T\"}}\n"
    );
}

#[test]
fn fields_are_read_tolerantly() {
    let f = |line: &str| fields(event(line).line());
    assert_eq!(f("[1]"), Fields::default());
    assert_eq!(
        f(r#"{"id": null, "attributes": {"created": 5}}"#),
        Fields::default()
    );
    assert_eq!(
        f(r#"{"id": "a\u00e9", "x": {"y": [1]}, "attributes": {"created": "c", "o": {}}}"#),
        Fields {
            id: Some("a\u{e9}".to_string()),
            created: Some("c".to_string())
        }
    );
}

#[test]
fn answers_without_errors_deliver_every_event() {
    let body = br#"{"took": 3, "errors": false, "items": "not even read"}"#;
    assert_eq!(verdicts(body, 2).unwrap(), vec![Verdict::Delivered; 2]);
}

#[test]
fn each_item_has_its_verdict() {
    let body = json!({
        "took": 30, "errors": true, "extra": null,
        "items": [
            {"create": {"_id": "1", "status": 201, "result": "created"}},
            {"create": {"_id": "2", "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "[2]: version conflict, document already exists"}}},
            {"create": {"_id": "3", "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution"}}},
            {"create": {"_id": "4", "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [n]", "caused_by": {"type": "illegal_argument_exception", "reason": "For input string: \"x\""}}}},
            {"index": {"_id": "5", "status": "200"}},
            {"create": {"_id": "6", "status": 404, "error": {"type": "index_not_found_exception", "reason": "no such index [x]"}}},
            {"create": {"_id": "7", "status": 503, "error": "unavailable"}},
            {"create": {"_id": "8"}},
            {"create": {"_id": "9", "status": 400, "error": {"type": "cluster_block_exception", "reason": "blocked"}}},
        ]
    });
    let v = verdicts(body.to_string().as_bytes(), 9).unwrap();
    assert_eq!(v[0], Verdict::Delivered);
    assert_eq!(v[1], Verdict::Delivered);
    assert_eq!(
        v[2],
        Verdict::Retry("429 es_rejected_execution_exception: rejected execution".to_string())
    );
    assert_eq!(
        v[3],
        Verdict::Refused {
            why: "400 mapper_parsing_exception: failed to parse field [n] (caused by \
                  illegal_argument_exception: For input string: \"x\")"
                .to_string(),
            error_type: "mapper_parsing_exception".to_string(),
            about_request: false,
        }
    );
    assert_eq!(v[4], Verdict::Delivered);
    assert!(matches!(
        &v[5],
        Verdict::Refused {
            about_request: true,
            ..
        }
    ));
    assert_eq!(v[6], Verdict::Retry("503: unavailable".to_string()));
    assert_eq!(v[7], Verdict::Retry("no status".to_string()));
    assert!(matches!(
        &v[8],
        Verdict::Refused {
            about_request: true,
            ..
        }
    ));
}

#[test]
fn answers_that_are_not_bulk_answers_are_errors() {
    for (body, count, expected) in [
        (&b"<html>"[..], 1, "not a bulk answer"),
        (br#"{"errors": true}"#, 1, "no list of items"),
        (
            br#"{"errors": true, "items": [{}]}"#,
            2,
            "1 items for 2 events",
        ),
        (br#"{"items": {"a": 1}}"#, 1, "no list of items"),
    ] {
        let e = verdicts(body, count).unwrap_err();
        assert!(e.contains(expected), "{e}");
    }
    // An item of an odd shape is a retry, not a panic.
    assert_eq!(verdict(&json!(7)), Verdict::Retry("no status".to_string()));
}

#[test]
fn long_reasons_are_cut_on_one_line() {
    let reason = format!("a\nb\t{}", "x".repeat(1000));
    let v = verdict(&json!({"create": {"status": 400, "error": {"type": "t", "reason": reason}}}));
    let Verdict::Refused { why, .. } = v else {
        panic!("{v:?}")
    };
    assert!(why.starts_with("400 t: a b xxx"), "{why}");
    assert!(why.ends_with("...") && why.len() < 320, "{why}");
}

#[test]
fn request_errors_are_quoted_by_type_and_reason() {
    let body = json!({"error": {"root_cause": [], "type": "security_exception", "reason": "bad\nkey"}, "status": 401});
    assert_eq!(
        request_error(body.to_string().as_bytes()).as_deref(),
        Some("security_exception: bad key")
    );
    assert_eq!(
        request_error(br#"{"error":"no handler found","status":404}"#).as_deref(),
        Some("no handler found")
    );
    assert_eq!(request_error(b"Request Entity Too Large"), None);
    assert_eq!(request_error(br#"{"error":null}"#), None);
}
