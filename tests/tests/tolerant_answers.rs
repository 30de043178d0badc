//! Tolerant reading of the API (docs/protocol.md): against a simulator that writes every answer
//! in `AnswerStyle::Tolerant` (extra members, `null` and other types in members the broker does
//! not use, optional members left out, extra `data` elements that are not resources, an
//! unhealthy entry's error as an object), `--test`, setup, login and pulls all work as against
//! the plain answers.

use broker_sim::{AnswerStyle, SimOptions, Simulator};
use broker_tests::delivery::*;
use broker_tests::*;

fn tolerant_simulator() -> Simulator {
    simulator(SimOptions {
        answer_style: AnswerStyle::Tolerant,
        ..SimOptions::default()
    })
}

#[test]
fn test_mode_against_tolerant_answers_is_all_systems_go() {
    let sim = tolerant_simulator();
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), "");
    // Setup runs first in --test: the setup answer too is in the tolerant style.
    dir.write_setup(&sim, "tolerant-setup-code");
    let out = dir.run("procustodibus-broker", &["--test"]);
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            "... 127.0.0.1 is pro custodibus ip address ...",
            "... healthy pro custodibus api ...",
            "... can access queues on api for My Test Broker ...",
            "All systems go :)",
        ],
        "{}",
        describe(&out)
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(sim.registered_keys(BROKER_ID).len(), 1);
    assert!(!dir.setup().exists() && dir.credentials().is_file());
    assert_eq!(sim.login_count(), 1);
}

#[test]
fn unhealthy_entry_shows_its_error_whatever_its_type() {
    let sim = tolerant_simulator();
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), "");
    dir.set_up(&sim);
    // Entry 2 is `"healthy":false` with an object error, entry 3 `"healthy":null` with a list.
    sim.set_health(vec![
        (true, String::new()),
        (true, String::new()),
        (false, "db down".into()),
        (false, "queue slow".into()),
    ]);
    let out = dir.run("procustodibus-broker", &["--test"]);
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(
        lines[1..3],
        [
            r#"!!! unhealthy pro custodibus api: {"code":503,"message":"db down"} !!!"#,
            r#"!!! unhealthy pro custodibus api: ["queue slow"] !!!"#
        ],
        "{}",
        describe(&out)
    );
    assert_eq!(lines.len(), 5, "{}", describe(&out));
    assert_eq!(out.status.code(), Some(8), "{}", describe(&out));
}

#[test]
fn setup_with_the_credentials_tool_against_tolerant_answers() {
    let sim = tolerant_simulator();
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), "");
    dir.set_up(&sim);
    let (public_key, _) = check_credentials_file(&dir.credentials());
    assert_eq!(sim.registered_keys(BROKER_ID), [public_key]);
}

#[test]
fn setup_login_and_pulls_against_tolerant_answers() {
    let sim = tolerant_simulator();
    let dir = BrokerDir::new();
    let pipe = file_pipe("All", "alerts, log_authn", Some(10), &dir.path("out.jsonl"));
    dir.write_config(&sim.url(), &pipe);
    dir.write_setup(&sim, "tolerant-setup-code");
    let alerts = sim.enqueue_generated("alerts", 7).expect("enqueue");
    let authn = sim.enqueue_generated("log_authn", 3).expect("enqueue");
    // A one-shot run: setup, login, then one pull of each queue.
    let out = dir.run("procustodibus-broker", &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let catalog = Catalog::new(&[("alerts", &alerts), ("log_authn", &authn)]);
    let tally = catalog.tally(&read_lines(&dir.path("out.jsonl")));
    assert!(tally.exactly_once(), "{}", tally.describe());
    assert_eq!(sim.login_count(), 1);
    assert!(!dir.spool().join("dead-letter.jsonl").exists());
}
