//! The answers of [`AnswerStyle::Tolerant`](crate::AnswerStyle::Tolerant): the same facts as
//! the plain answers, with everything a client must tolerate around the fields it needs (see
//! docs/protocol.md): extra members, `null` in members it does not use, values of other types
//! there, optional members left out, and extra `data` elements that are not resources at all.

use crate::response::quote;

/// The health answer: one entry per `(healthy, error)`. A healthy entry has `"error": null`
/// (or none at all); an unhealthy one has `"healthy": false` or `null`, and its error as an
/// object or a list, so its message has no string type.
pub(crate) fn health(entries: &[(bool, String)]) -> String {
    let items: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(i, (healthy, error))| match (healthy, i % 2) {
            (true, 0) => format!(
                r#"{{"name":"part {i}","healthy":true,"error":null,"latency":{{"ms":[1.5,null]}}}}"#
            ),
            (true, _) => format!(r#"{{"healthy":true,"name":{i}}}"#),
            (false, 0) => format!(
                r#"{{"name":null,"healthy":false,"error":{{"message":{},"code":503}},"since":7}}"#,
                quote(error)
            ),
            (false, _) => format!(r#"{{"healthy":null,"error":[{}]}}"#, quote(error)),
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// The setup answer for a registered key.
pub(crate) fn setup(credential_id: &str, description: &str, created: &str) -> String {
    format!(
        r#"{{"data":[{{"type":"credentials","id":{},"attributes":{{"type":null,"description":{},"public_key":["hidden"],"created":{}}},"relationships":null}},"extra"],"meta":null,"jsonapi":{{"version":1.1}}}}"#,
        quote(credential_id),
        quote(description),
        quote(created)
    )
}

/// The challenge answer.
pub(crate) fn challenge(id: &str, value: &str) -> String {
    format!(
        r#"{{"data":[{{"type":7,"id":{},"attributes":{{"value":{},"created":null,"algorithm":["ed25519"]}},"links":null}},null],"meta":{{"note":null}}}}"#,
        quote(id),
        quote(value)
    )
}

/// The login answer (no `type` nor `id` at all).
pub(crate) fn login(token: &str, lifetime_secs: u64) -> String {
    format!(
        r#"{{"data":[{{"attributes":{{"token":{},"user":null,"scopes":{{}}}},"meta":{{"expiration_timeout":{lifetime_secs},"renewable":"no"}}}},7],"included":null}}"#,
        quote(token)
    )
}

/// The hello answer.
pub(crate) fn hello(broker_id: &str, name: &str) -> String {
    format!(
        r#"{{"data":[{{"type":["brokers"],"id":{},"attributes":{{"name":{},"description":null,"hosts":3}}}},{{}}],"meta":1}}"#,
        quote(broker_id),
        quote(name)
    )
}

/// The pull answer around `events` (raw texts joined by commas): `data` not first, more
/// members around it.
pub(crate) fn pull(events: &str) -> String {
    format!(
        r#"{{"meta":{{"remaining":null,"page":"1"}},"data":[{events}],"links":null,"included":[]}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_is_valid_json() {
        for body in [
            health(&[
                (true, String::new()),
                (true, String::new()),
                (false, "x".into()),
            ]),
            setup("c1", "on host", "2026-01-01T00:00:00Z"),
            challenge("id", "value"),
            login("token", 60),
            hello("b1", "Name"),
            pull(r#"{"id":"a"},{"id":"b"}"#),
        ] {
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(&body);
            assert!(parsed.is_ok(), "{body}");
        }
    }
}
