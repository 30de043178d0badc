//! Tests of the answer readers, most of them properties against hostile answers: arbitrary bytes
//! and arbitrary JSON never panic and give either a value or a one-line error naming the call
//! (never the session token); a valid answer, with any extra members and white space, gives
//! exactly what it holds; a pull answer gives the events serde_json reads in it, in order.
//! The case count comes from `PROPTEST_CASES` (scripts/test sets it).

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;

const CALL: &str = "POST https://api.example/sessions";

#[test]
fn health_error_accepts_any_json() {
    let body = br#"[{"name":"api","healthy":true,"error":null},
        {"healthy":false,"error":{"code":3},"extra":[1]},
        {"healthy":false,"error":"down"},{"healthy":true},
        {"healthy":false,"error":"two\nlines\u001b[2J"}]"#;
    let entries = health(CALL, body).unwrap();
    let errors: Vec<&str> = entries.iter().map(|e| e.error.as_str()).collect();
    assert_eq!(
        errors,
        ["", r#"{"code":3}"#, "down", "", r"two\nlines\u{1b}[2J"]
    );
}

#[test]
fn only_the_first_resource_is_read() {
    let body = br#"{"data":[{"id":"c1","type":null,"attributes":{"value":"v","x":[]}},null,7],"meta":null}"#;
    let read = challenge(CALL, body).unwrap();
    assert_eq!((read.id.as_str(), read.value.as_str()), ("c1", "v"));
    let body = br#"{"data":[{"attributes":{"token":"t"},"meta":{"expiration_timeout":60}},7]}"#;
    assert_eq!(
        session(CALL, body).unwrap().lifetime,
        Duration::from_secs(60)
    );
    for needed in [
        &br#"{"data":[]}"#[..],
        br#"{"data":null}"#,
        br#"{}"#,
        br#"{"data":[{"id":"c1"}]}"#,
        br#"{"data":[null,{"id":"c1","attributes":{"value":"v"}}]}"#,
    ] {
        assert!(
            challenge(CALL, needed).is_err(),
            "{}",
            String::from_utf8_lossy(needed)
        );
    }
}

#[test]
fn health_is_true_only_for_true_and_names_of_any_type_are_shown() {
    let body = br#"[{"healthy":true},{"healthy":null,"error":5},{"error":"x"},{"healthy":"yes"}]"#;
    let healthy: Vec<bool> = health(CALL, body)
        .unwrap()
        .iter()
        .map(|e| e.healthy)
        .collect();
    assert_eq!(healthy, [true, false, false, false]);
    let hello = |body: &[u8]| hello_name(CALL, body).unwrap();
    assert_eq!(hello(br#"{"data":[{"attributes":{"name":null}},{}]}"#), "");
    assert_eq!(hello(br#"{"data":[{"attributes":{}}]}"#), "");
    assert_eq!(
        hello(br#"{"data":[{"attributes":{"name":["a"]}}]}"#),
        r#"["a"]"#
    );
}

#[test]
fn error_details_of_any_type_are_shown() {
    let body =
        br#"{"errors":[{"detail":{"code":3}},null,{"detail":null,"title":"Gone"},{"title":7}]}"#;
    assert_eq!(error_detail(body), r#"{"code":3}; Gone; 7"#);
}

#[test]
fn a_pull_answer_that_is_not_utf8_says_so() {
    let e = pull_events(CALL, EventType::Alerts, b"{\"data\":[\"\xff\"]}").unwrap_err();
    assert!(
        e.to_string().ends_with("not valid UTF-8 (at byte 10)"),
        "{e}"
    );
}

#[test]
fn error_detail_is_one_short_line() {
    let body = br#"{"errors":[{"detail":"bad\r\nsignature"},{"title":"t"},{}]}"#;
    assert_eq!(error_detail(body), r"bad\r\nsignature; t");
    let long = json!({"errors":[{"detail": "é".repeat(400)}]}).to_string();
    let detail = error_detail(long.as_bytes());
    assert_eq!(detail, format!("{}...", "é".repeat(150)));
    assert_eq!(error_detail(b"<html>"), "");
}

/// Any JSON value: nested arrays and objects, any strings, integers and floats.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}|\\PC{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with some of `keys`, each holding either `fitting` or any JSON, and perhaps an
/// extra member.
fn object_with(
    keys: &'static [&'static str],
    fitting: impl Strategy<Value = Value> + Clone,
) -> impl Strategy<Value = Value> {
    let member = prop_oneof![
        1 => Just(None),
        3 => fitting.prop_map(Some),
        2 => json_value().prop_map(Some),
    ];
    (
        proptest::collection::vec(member, keys.len()),
        proptest::option::of(json_value()),
    )
        .prop_map(move |(values, extra)| {
            let mut map: Map<String, Value> = keys
                .iter()
                .zip(values)
                .filter_map(|(k, v)| Some((k.to_string(), v?)))
                .collect();
            if let Some(extra) = extra {
                map.insert("extra".into(), extra);
            }
            Value::Object(map)
        })
}

/// JSON shaped more or less like one of the answers: `{"data":[{"id":..,"attributes":{..},
/// "meta":{..}}]}` with any part missing, of the wrong type or anything at all; or a health
/// list; or any JSON.
fn answer_like() -> impl Strategy<Value = Value> {
    let text = prop_oneof![any::<String>(), "[A-Za-z0-9_-]{1,40}"].prop_map(Value::String);
    let number = prop_oneof![
        any::<f64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0.0f64..1e12).prop_map(Value::from),
    ];
    let attributes = object_with(&["token", "value", "name"], text.clone());
    let meta = object_with(&["expiration_timeout"], number);
    let item = object_with(
        &["id", "attributes", "meta"],
        prop_oneof![text, attributes, meta],
    );
    let entry = object_with(
        &["healthy", "error"],
        prop_oneof![any::<bool>().prop_map(Value::Bool), json_value()],
    );
    prop_oneof![
        1 => json_value(),
        4 => proptest::collection::vec(item, 0..3).prop_map(|items| json!({ "data": items })),
        1 => proptest::collection::vec(entry, 0..4).prop_map(Value::Array),
    ]
}

/// What an answer reader must give for `value`, read by hand: `Some(Ok)` with the value,
/// `Some(Err)` when it is not the answer, `None` where serde would read an array as a struct
/// (which it may do: that is lenient, not wrong).
type Oracle<T> = Option<Result<T, ()>>;

/// What the first item of `data` gives, if `value` is an object with a `data` list whose first
/// item `read` takes (the other items are not read: anything passes there).
fn first_item<T>(value: &Value, read: impl Fn(&Map<String, Value>) -> Oracle<T>) -> Oracle<T> {
    let Value::Object(top) = value else {
        return if value.is_array() {
            None
        } else {
            Some(Err(()))
        };
    };
    let Some(Value::Array(data)) = top.get("data") else {
        return Some(Err(()));
    };
    match data.first() {
        Some(Value::Object(item)) => read(item),
        Some(Value::Array(_)) => None,
        _ => Some(Err(())),
    }
}

/// The string at `object[outer][inner]` (`outer` empty: `object[inner]`).
fn text_at(object: &Map<String, Value>, outer: &str, inner: &str) -> Oracle<String> {
    let holder = if outer.is_empty() {
        object
    } else {
        match object.get(outer) {
            Some(Value::Object(o)) => o,
            Some(Value::Array(_)) => return None,
            _ => return Some(Err(())),
        }
    };
    match holder.get(inner) {
        Some(Value::String(s)) => Some(Ok(s.clone())),
        _ => Some(Err(())),
    }
}

/// Combines two readings: an error in either is an error, an unknown is unknown.
fn both<A, B>(a: Oracle<A>, b: Oracle<B>) -> Oracle<(A, B)> {
    match (a, b) {
        (Some(Err(())), _) | (_, Some(Err(()))) => Some(Err(())),
        (Some(Ok(a)), Some(Ok(b))) => Some(Ok((a, b))),
        _ => None,
    }
}

fn expected_session(value: &Value) -> Oracle<(String, Duration)> {
    first_item(value, |item| {
        let lifetime = match item.get("meta") {
            Some(Value::Object(meta)) => {
                match meta.get("expiration_timeout").and_then(Value::as_f64) {
                    Some(secs) if secs.is_finite() && secs > 0.0 => {
                        Some(Ok(Some(Duration::from_secs_f64(secs.min(1e9)))))
                    }
                    // A number that is not positive is refused after reading all.
                    Some(_) => Some(Ok(None)),
                    None => Some(Err(())),
                }
            }
            Some(Value::Array(_)) => None,
            _ => Some(Err(())),
        };
        both(text_at(item, "attributes", "token"), lifetime)
    })
    .map(|r| r.and_then(|(token, lifetime)| Ok((token, lifetime.ok_or(())?))))
}

fn expected_challenge(value: &Value) -> Oracle<Challenge> {
    first_item(value, |item| {
        both(
            text_at(item, "", "id"),
            text_at(item, "attributes", "value"),
        )
        .map(|r| r.map(|(id, value)| Challenge { id, value }))
    })
}

/// Display text of any JSON value, as the readers show it.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => one_line(s),
        Some(other) => other.to_string(),
    }
}

fn expected_hello(value: &Value) -> Oracle<String> {
    first_item(value, |item| match item.get("attributes") {
        Some(Value::Object(attributes)) => Some(Ok(shown(attributes.get("name")))),
        Some(Value::Array(_)) => None,
        _ => Some(Err(())),
    })
}

fn expected_health(value: &Value) -> Oracle<Vec<HealthEntry>> {
    let Value::Array(entries) = value else {
        return Some(Err(()));
    };
    let mut out = Vec::new();
    for entry in entries {
        let Value::Object(entry) = entry else {
            return if entry.is_array() {
                None
            } else {
                Some(Err(()))
            };
        };
        // Only `true` is healthy; a missing or other `healthy` is not, and never an error.
        out.push(HealthEntry {
            healthy: entry.get("healthy") == Some(&Value::Bool(true)),
            error: shown(entry.get("error")),
        });
    }
    Some(Ok(out))
}

/// Checks that a reader's answer is what `oracle` says (when it knows), and that an error is a
/// one-line `Malformed` naming the call.
fn check<T: PartialEq + std::fmt::Debug>(
    got: Result<T, ApiError>,
    oracle: Oracle<T>,
    body: &[u8],
) -> Result<(), TestCaseError> {
    match (&got, oracle) {
        (Ok(got), Some(Ok(want))) => prop_assert_eq!(got, &want),
        (Err(_), Some(Err(()))) | (_, None) => {}
        (got, want) => prop_assert!(
            false,
            "got {got:?}, want {want:?} for {}",
            String::from_utf8_lossy(body)
        ),
    }
    if let Err(e) = got {
        prop_assert!(
            matches!(&e, ApiError::Malformed { call, .. } if call == CALL),
            "{e:?}"
        );
        prop_assert!(!e.to_string().contains(['\n', '\r']), "{e}");
    }
    Ok(())
}

/// Every reader on `body`, each checked against its oracle when `value` is the JSON it holds.
fn check_every_reader(body: &[u8], value: Option<&Value>) -> Result<(), TestCaseError> {
    let session = session(CALL, body).map(|s| (s.token, s.lifetime));
    check(session, value.and_then(expected_session), body)?;
    check(
        challenge(CALL, body),
        value.and_then(expected_challenge),
        body,
    )?;
    check(hello_name(CALL, body), value.and_then(expected_hello), body)?;
    check(health(CALL, body), value.and_then(expected_health), body)?;
    let events = pull_events(CALL, EventType::Alerts, body);
    check_pull(&events, body)?;
    let detail = error_detail(body);
    prop_assert!(!detail.contains(|c: char| c.is_control()), "{detail:?}");
    prop_assert!(detail.len() <= 303, "{detail:?}");
    Ok(())
}

/// A pull that gives events gives exactly the `data` items serde_json reads in the body, in
/// order, each parsing back to the same value; one that fails is refused by serde_json too (or
/// holds a lone surrogate or a number out of range, which serde_json's `Value` cannot hold).
fn check_pull(got: &Result<Vec<Event>, ApiError>, body: &[u8]) -> Result<(), TestCaseError> {
    #[derive(Deserialize)]
    struct Items {
        data: Vec<Value>,
    }
    let want = serde_json::from_slice::<Items>(body).ok().map(|i| i.data);
    match (got, want) {
        (Ok(events), Some(items)) => {
            let values: Vec<Value> = events
                .iter()
                .map(|e| serde_json::from_str(e.line()).unwrap())
                .collect();
            prop_assert_eq!(values, items);
            for e in events {
                prop_assert_eq!(e.event_type(), EventType::Alerts);
            }
        }
        (Ok(_), None) | (Err(_), None) => {}
        (Err(e), Some(_)) => prop_assert!(false, "serde_json reads the events, pull says {e}"),
    }
    if let Err(e) = got {
        prop_assert!(!e.to_string().contains(['\n', '\r']), "{e}");
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_every_reader(&bytes, None)?;
    }

    #[test]
    fn arbitrary_json_gives_the_value_it_holds_or_a_clear_error(
        value in answer_like(),
        pretty in any::<bool>(),
    ) {
        let body = if pretty {
            serde_json::to_vec_pretty(&value).unwrap()
        } else {
            serde_json::to_vec(&value).unwrap()
        };
        // serde_json's own reading of the text is the oracle's input (its float parsing may
        // differ from the generated value in the last bit).
        let value: Value = serde_json::from_slice(&body).unwrap();
        check_every_reader(&body, Some(&value))?;
    }

    #[test]
    fn arbitrary_json_cut_short_or_changed_never_panics(
        value in answer_like(),
        cut in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut body = serde_json::to_vec(&value).unwrap();
        let at = cut.index(body.len());
        check_every_reader(&body[..at], None)?;
        body[at] = byte;
        check_every_reader(&body, None)?;
    }

    #[test]
    fn a_session_error_never_shows_the_token(
        token in "[A-Za-z0-9_-]{24,40}",
        meta in json_value(),
        attributes_extra in json_value(),
    ) {
        let value = json!({"data":[{"attributes":{"token": token, "x": attributes_extra},"meta": meta}]});
        let body = serde_json::to_vec(&value).unwrap();
        for body in [&body[..], &body[..body.len() - 1]] {
            if let Err(e) = session(CALL, body) {
                prop_assert!(!e.to_string().contains(&token), "{e}");
                prop_assert!(!format!("{e:?}").contains(&token), "{e:?}");
            }
        }
    }

    #[test]
    fn pull_answers_give_every_event_in_order(
        items in proptest::collection::vec(json_value(), 0..6),
        extra in proptest::option::of(json_value()),
        form in 0u8..4,
    ) {
        let data = Value::Array(items.clone());
        let mut top = Map::new();
        if let Some(extra) = extra {
            top.insert("meta".into(), extra);
        }
        top.insert("data".into(), data);
        let mut body = match form {
            0 => serde_json::to_string(&Value::Object(top)).unwrap(),
            1 => serde_json::to_string_pretty(&Value::Object(top)).unwrap(),
            // An escaped key: not the one-scan shape, read by serde_json.
            _ => serde_json::to_string(&Value::Object(top)).unwrap().replacen("\"data\"", "\"d\\u0061ta\"", 1),
        };
        if form == 3 {
            body.push_str("\n\t ");
        }
        let events = pull_events(CALL, EventType::Alerts, body.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        let values: Vec<Value> = events.iter().map(|e| serde_json::from_str(e.line()).unwrap()).collect();
        prop_assert_eq!(values.len(), items.len());
        check_pull(&Ok(events), body.as_bytes())?;
    }
}
