//! Unit tests of the pure parts: keys, rows and requests, answers. The deliveries against a
//! receiver that behaves as Azure Monitor documents are in tests/tests/sentinel.rs.

use std::time::Duration;

use broker_core::config::PipeSettings;
use broker_core::{Event, EventType};
use chrono::{TimeZone, Utc};

use super::answer::{self, refresh_margin, ASSUMED_LIFETIME};
use super::body::{self, next_request, too_large, MAX_REQUEST};
use super::config::SentinelConfig;
use super::sink::form;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";

fn valid() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "Endpoint",
            "https://dce-1.eastus-1.ingest.monitor.azure.com",
        ),
        ("Dcr", "dcr-0123456789abcdef0123456789abcdef"),
        ("Stream", "Custom-ProCustodibus_CL"),
        ("TenantId", TENANT),
        ("ClientId", CLIENT),
        ("ClientSecret", "s3cret~value.x"),
    ]
}

fn config(pairs: &[(&str, &str)]) -> Result<SentinelConfig, String> {
    SentinelConfig::from_settings(&PipeSettings::new("S", "/b.conf", pairs))
        .map_err(|e| e.to_string())
}

fn with(changes: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut pairs: Vec<_> = valid()
        .into_iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .collect();
    pairs.extend(changes.iter().filter(|(_, v)| *v != "<unset>"));
    pairs
}

#[test]
fn a_valid_pipe_has_its_urls_and_defaults() {
    let c = config(&valid()).unwrap();
    assert_eq!(
        c.ingestion_url(),
        "https://dce-1.eastus-1.ingest.monitor.azure.com/dataCollectionRules/\
         dcr-0123456789abcdef0123456789abcdef/streams/Custom-ProCustodibus_CL?api-version=2023-01-01"
    );
    assert_eq!(
        c.token_url(),
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
    );
    assert_eq!(c.scope, "https://monitor.azure.com//.default");
    assert_eq!(c.batch, 1000);
    assert_eq!(format!("{:?}", c.client_secret), "***");
    let c = config(&with(&[
        ("AuthorityHost", "http://127.0.0.1:9/"),
        ("TenantId", "contoso.onmicrosoft.com"),
        ("Batch", "50"),
        ("Timeout", "5s"),
        ("Endpoint", "http://localhost:8080/"),
    ]))
    .unwrap();
    assert_eq!(
        c.token_url(),
        "http://127.0.0.1:9/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert!(c
        .ingestion_url()
        .starts_with("http://localhost:8080/dataCollectionRules/"));
    assert_eq!((c.batch, c.client.timeout), (50, Duration::from_secs(5)));
}

#[test]
fn bad_keys_are_named_and_no_secret_is_quoted() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("Endpoint", "<unset>")], "Endpoint: is required"),
        (
            &[("Endpoint", "http://s3cret.example/")],
            "Endpoint: http:// is only for a loopback",
        ),
        (
            &[("Endpoint", "https://h/?k=s3cret")],
            "Endpoint: has a query",
        ),
        (&[("Dcr", "s3cret")], "Dcr: is not a DCR immutable id"),
        (
            &[("Stream", "MyTable_s3cret")],
            "Stream: is not a stream name",
        ),
        (&[("TenantId", "s3cret")], "TenantId: is not a tenant id"),
        (
            &[("ClientId", "s3cret")],
            "ClientId: is not an application (client) id",
        ),
        (
            &[("ClientSecret", "<unset>")],
            "ClientSecret: is required (or ClientSecretFile)",
        ),
        (&[("ClientSecret", "")], "ClientSecret: must not be empty"),
        (
            &[("ClientSecretFile", "/nonexistent/s")],
            "ClientSecretFile: set ClientSecret or ClientSecretFile, not both",
        ),
        (
            &[("AuthorityHost", "http://login.s3cret.example")],
            "AuthorityHost: http:// is only for a loopback",
        ),
        (&[("Batch", "0")], "Batch: \"0\" is not a number of rows"),
        (&[("Scope", "a s3cret")], "Scope: must be one scope"),
        (&[("Proxy", "s3cret")], "Proxy: not a proxy URL"),
    ];
    for (changes, expected) in cases {
        let e = config(&with(changes)).unwrap_err();
        assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}

#[test]
fn the_client_secret_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "file~s3cret\n").unwrap();
    let path = path.to_str().unwrap().to_string();
    let mut pairs: Vec<(&str, &str)> = valid()
        .into_iter()
        .filter(|(k, _)| *k != "ClientSecret")
        .collect();
    pairs.push(("ClientSecretFile", &path));
    assert_eq!(
        config(&pairs).unwrap().client_secret.expose(),
        "file~s3cret"
    );
    let missing = format!("{path}.missing");
    pairs.pop();
    pairs.push(("ClientSecretFile", &missing));
    let e = config(&pairs).unwrap_err();
    assert!(e.contains("ClientSecretFile: cannot read"), "{e}");
}

fn event(json: &str) -> Event {
    Event::from_json(EventType::Alerts, json).unwrap()
}

#[test]
fn a_row_has_time_type_id_and_the_event_as_the_file_sink_writes_it() {
    let now = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let e = event(
        r#"{"id":"a1","attributes":{"created":"2024-05-01T10:00:00.250+02:00","x":"\u00e9"}}"#,
    );
    let row = body::row(&e, now);
    assert_eq!(
        row,
        format!(
            r#"{{"TimeGenerated":"2024-05-01T08:00:00.250Z","Type":"alerts","Id":"a1","Event":{}}}"#,
            e.line()
        )
    );
    let parsed: serde_json::Value = serde_json::from_str(&row).unwrap();
    assert_eq!(parsed["Event"]["attributes"]["x"], "\u{e9}");
    // No id, an odd created, odd attributes: the row is still whole, with the time it was built.
    for json in [
        r#"{"attributes":{"created":12}}"#,
        r#"{"id":null,"attributes":null}"#,
        r#"{"id":{"x":1},"attributes":"x"}"#,
        r#"{"id":7,"attributes":{"created":"yesterday"}}"#,
        r#"[1,2]"#,
    ] {
        let row = body::row(&event(json), now);
        let parsed: serde_json::Value = serde_json::from_str(&row).unwrap();
        assert_eq!(parsed["TimeGenerated"], "2026-01-02T03:04:05Z", "{row}");
        assert!(parsed["Id"].is_null() || parsed["Id"] == 7, "{row}");
    }
}

#[test]
fn requests_hold_at_most_batch_rows_and_one_megabyte() {
    let rows: Vec<String> = (0..10).map(|i| format!("{{\"n\":{i}}}")).collect();
    assert_eq!(next_request(&rows, 0, 4), 0..4);
    assert_eq!(next_request(&rows, 8, 4), 8..10);
    let b = body::body(&rows[0..3]);
    assert_eq!(b, br#"[{"n":0},{"n":1},{"n":2}]"#);
    assert_eq!(b.len(), body::body_size(&rows[0..3]));
    // Rows of 300 KB: three make a request (900 KB and brackets), four would not.
    let big: Vec<String> = (0..7).map(|_| "x".repeat(300_000)).collect();
    assert_eq!(next_request(&big, 0, 1000), 0..3);
    assert!(body::body_size(&big[0..3]) <= MAX_REQUEST);
    assert!(body::body_size(&big[0..4]) > MAX_REQUEST);
    // A row just within the bound goes alone; one over it never goes.
    let edge = vec!["x".repeat(MAX_REQUEST - 2), "y".repeat(MAX_REQUEST - 1)];
    assert!(!too_large(&edge[0]) && too_large(&edge[1]));
    assert_eq!(next_request(&edge, 0, 10), 0..1);
    assert_eq!(next_request(&edge, 1, 10), 1..1);
}

#[test]
fn token_answers_are_read_tolerantly() {
    let t = answer::token(br#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":"3599","access_token":"eyJ0.a-b_c"}"#).unwrap();
    assert_eq!(t.access_token, "eyJ0.a-b_c");
    assert_eq!(t.lifetime, Duration::from_secs(3599));
    assert!(!format!("{t:?}").contains("eyJ0"));
    let t = answer::token(br#"{"expires_in":"60","access_token":"t","token_type":null,"x":[1]}"#)
        .unwrap();
    assert_eq!(t.lifetime, Duration::from_secs(60));
    let t = answer::token(br#"{"expires_in":null,"access_token":"t"}"#).unwrap();
    assert_eq!(t.lifetime, ASSUMED_LIFETIME);
    for (body, expected) in [
        (&br#"{"expires_in":3599}"#[..], "no access_token"),
        (br#"{"access_token":7}"#, "no access_token"),
        (br#"{"access_token":"a b"}"#, "not a bearer token"),
        (br#"{"access_token":"t","token_type":"pop"}"#, "not Bearer"),
        (b"<html>", "not a JSON object"),
    ] {
        let e = answer::token(body).unwrap_err();
        assert!(e.contains(expected), "{e}");
    }
    assert_eq!(
        refresh_margin(Duration::from_secs(3599)),
        Duration::from_secs(300)
    );
    assert_eq!(
        refresh_margin(Duration::from_secs(10)),
        Duration::from_secs(1)
    );
}

#[test]
fn error_answers_are_read_tolerantly() {
    let aad = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1\r\nCorrelation ID: 2","error_codes":[7000215],"timestamp":null}"#;
    assert_eq!(
        answer::token_error(aad).as_deref(),
        Some("invalid_client: AADSTS7000215: Invalid client secret provided.")
    );
    assert_eq!(
        answer::token_error(br#"{"error":"x","error_description":null}"#).as_deref(),
        Some("x")
    );
    assert_eq!(answer::token_error(b"[]"), None);
    let monitor =
        br#"{"error":{"code":"InvalidStream","message":"Stream not found","details":null}}"#;
    assert_eq!(
        answer::ingestion_error(monitor).as_deref(),
        Some("InvalidStream: Stream not found")
    );
    assert_eq!(
        answer::ingestion_error(br#"{"error":{"code":"X"}}"#).as_deref(),
        Some("X")
    );
    assert_eq!(
        answer::ingestion_error(br#"{"error":"plain"}"#).as_deref(),
        Some("plain")
    );
    assert_eq!(answer::ingestion_error(br#"{"error":null}"#), None);
    assert_eq!(answer::ingestion_error(b""), None);
}

#[test]
fn the_token_form_is_percent_encoded() {
    assert_eq!(
        form(&[
            ("client_secret", "a+b/c=d&e~f g"),
            ("scope", "https://monitor.azure.com//.default")
        ]),
        "client_secret=a%2Bb%2Fc%3Dd%26e~f%20g&scope=https%3A%2F%2Fmonitor.azure.com%2F%2F.default"
    );
}

#[test]
fn the_sink_is_registered_with_every_key() {
    crate::link();
    let plugin = broker_core::registry::find("Sentinel").expect("registered");
    let names: Vec<String> = plugin.keys.iter().map(|k| k.shown()).collect();
    for key in [
        "Endpoint",
        "Dcr",
        "Stream",
        "TenantId",
        "ClientId",
        "ClientSecret",
        "ClientSecretFile",
        "AuthorityHost",
        "Scope",
        "Batch",
        "CA",
        "Timeout",
        "Proxy",
    ] {
        assert!(names.iter().any(|n| n == key), "{key} in {names:?}");
    }
}
