//! `--test-pipe NAME`: send one test event to one pipe, without the API.

use std::process::ExitCode;

use broker_core::config::BrokerConfig;
use broker_core::encode::push_python_string;
use broker_core::pipeline::Pipeline;
use broker_core::{Event, EventType};

use crate::fail;

/// The test event: `{"attributes":{"created":"TIME"},"id":"NAME","type":"test"}`, NAME in lower
/// case as the existing broker writes it.
pub fn test_event(pipe: &str, now: chrono::DateTime<chrono::Utc>) -> Event {
    let mut line = String::from("{\"attributes\":{\"created\":\"");
    line.push_str(&now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    line.push_str("\"},\"id\":");
    push_python_string(&mut line, &pipe.to_lowercase());
    line.push_str(",\"type\":\"test\"}");
    Event::from_encoded_line(EventType::Test, line)
}

/// Sends the test event to the pipe `name` (matched ignoring case).
pub async fn run(config: &BrokerConfig, name: &str) -> ExitCode {
    let Some(pipe) = config.pipe(name) else {
        let names: Vec<&str> = config.pipes.iter().map(|p| p.name.as_str()).collect();
        return fail(&format!(
            "{}: no pipe named {name} (pipes: {})",
            config.path.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
    };
    let mut pipeline = match Pipeline::new(std::slice::from_ref(pipe)) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    let event = test_event(&pipe.name, chrono::Utc::now());
    let result = pipeline
        .deliver_to(&pipe.name, std::slice::from_ref(&event))
        .await;
    let answer = pipeline.last_answer(&pipe.name);
    pipeline.close().await;
    if let Some(answer) = answer {
        println!("pipe {}: the receiver answered {answer}", pipe.name);
    }
    match result {
        Some(Ok(())) => {
            println!("sent test event to pipe {}", pipe.name);
            ExitCode::SUCCESS
        }
        Some(Err(e)) => fail(&format!("pipe {}: {e}", pipe.name)),
        None => fail(&format!("no pipe named {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_bytes() {
        let now = chrono::DateTime::parse_from_rfc3339("2022-01-01T12:34:56.7Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            test_event("MyPipe", now).line(),
            r#"{"attributes":{"created":"2022-01-01T12:34:56Z"},"id":"mypipe","type":"test"}"#
        );
    }
}
