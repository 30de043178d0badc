//! One poll: what lands in the file sink, byte for byte and in order; fan-out; `Max`; one pull
//! per queue in a one-shot run; and failed or malformed pulls.

use std::time::Duration;

use broker_sim::Fault;
use broker_tests::*;

/// A simulator and a broker that has been set up, with `pipes` in its broker.conf.
fn set_up_broker(pipes: impl Fn(&BrokerDir) -> String) -> (broker_sim::Simulator, BrokerDir) {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &pipes(&dir));
    dir.set_up(&sim);
    sim.clear_requests();
    (sim, dir)
}

/// Hand-written raw events as an API might write them: escapes of every kind, raw UTF-8,
/// numbers Python would rewrite, nesting, and white space in odd places.
fn tricky_alerts() -> Vec<String> {
    [
        r#"{"type":"alerts","id":"x1","attributes":{"t":"é😀\u007f/\/ \u0001","n":123456789012345678901234567890,"f":1.50,"e":1E5,"nested":{"a":[1,{"b":null}]}}}"#,
        "{ \"type\" : \"alerts\" ,\n\t\"id\":\"x2\",\r\n  \"attributes\" : { \"s\" : \"\\u00e9\\ud83d\\ude00\\u20ac\\\"\\\\\\b\\f\\n\\r\\t\" , \"k\\u00e9y \u{2603}\" : [ ] , \"o\" : { } }\n}",
        r#"{"type":"alerts","id":"x3","attributes":{"neg":-0,"small":-1.25e-7,"exp":2E+300,"big":-98765432109876543210.000000000000000001,"t":true,"f":false,"z":null,"zero":0.0}}"#,
        "{\"type\":\"alerts\",\"id\":\"x4\",\"attributes\":{\"controls\":\"\\u0000\\u001f\\u0010\u{7f}\u{80}\u{9f}\u{a0}\u{ff}\u{100}\u{fffd}\u{ffff}\u{10000}\u{10ffff}\",\"tilde\":\"~ !#$%&'()*+,-.:;<=>?@[]^_`{|}\"}}",
        r#"{"type":"alerts","id":"x5","attributes":{"deep":[[[[[[[[[[{"a":[{"b":[{"c":"d"}]}]}]]]]]]]]]],"list":[1,2.0,"3",[],{},null,true]}}"#,
        "{\"type\":\"alerts\",\"id\":\"x6 \u{1F469}\u{200D}\u{1F4BB} \u{0301}e\u{0301} \u{202e}rtl\",\"attributes\":{\"html\":\"<script>alert('x')</script>&amp;\",\"path\":\"C:\\\\Windows\\\\/x\",\"u\":\"\\u0041\\u00E9\\uD83D\\uDE00\"}}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn setup_then_poll_into_a_file() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let out = dir.path("all.jsonl");
    dir.write_config(
        &sim.url(),
        &file_pipe("All", "alerts, endpoint_stats", None, &out),
    );
    dir.write_setup(&sim, "code-1");
    let alerts = sim.enqueue_generated("alerts", 5).unwrap();
    let stats = sim.enqueue_generated("endpoint_stats", 5).unwrap();
    let run = dir.run("procustodibus-broker", &["-v"]);
    assert!(run.status.success(), "{}", describe(&run));
    let mut raws = alerts.clone();
    raws.extend(stats);
    assert_eq!(dir.lines("all.jsonl"), expected_lines(&raws));
    assert!(!dir.setup().exists());
}

#[test]
fn tricky_and_big_events_are_byte_identical_to_the_reference() {
    let (sim, dir) = set_up_broker(|dir| {
        file_pipe(
            "All",
            "alerts, endpoint_stats, log_authn, log_changes",
            Some(1000),
            &dir.path("all.jsonl"),
        )
    });
    let mut raws = tricky_alerts();
    for raw in &raws {
        sim.enqueue("alerts", raw).unwrap();
    }
    raws.extend(sim.enqueue_generated("alerts", 20).unwrap());
    // Every 200th generated event is about 10 KB.
    raws.extend(sim.enqueue_generated("endpoint_stats", 210).unwrap());
    raws.extend(sim.enqueue_generated("log_authn", 30).unwrap());
    raws.extend(sim.enqueue_generated("log_changes", 30).unwrap());
    assert!(raws.iter().any(|r| r.len() >= 10_000), "a ~10 KB event");

    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    let bytes = std::fs::read(dir.path("all.jsonl")).unwrap();
    let mut expected = expected_lines(&raws).join("\n");
    expected.push('\n');
    if bytes != expected.as_bytes() {
        let got = String::from_utf8_lossy(&bytes);
        let want: Vec<&str> = expected.lines().collect();
        for (i, (g, w)) in got.lines().zip(&want).enumerate() {
            assert_eq!(g, *w, "line {} differs (raw event: {})", i + 1, raws[i]);
        }
        panic!(
            "{} lines written, {} expected",
            got.lines().count(),
            want.len()
        );
    }
    for (i, line) in expected_lines(&tricky_alerts()).iter().enumerate() {
        assert!(line.is_ascii(), "line {i}: {line}");
    }
}

#[test]
fn each_pipe_gets_its_types_in_from_order() {
    let (sim, dir) = set_up_broker(|dir| {
        // `From` may repeat; every line adds to the list.
        format!(
            "{}[Pipe.Alerts]\nFrom = alerts\nFrom = log_authn, log_changes\nTo = file\nFile = {}\n",
            file_pipe("Changes", "log_changes, alerts", None, &dir.path("a.jsonl")),
            dir.path("b.jsonl").display()
        )
    });
    let mut alerts = Vec::new();
    let mut changes = Vec::new();
    let mut authn = Vec::new();
    for _ in 0..3 {
        alerts.extend(sim.enqueue_generated("alerts", 2).unwrap());
        authn.extend(sim.enqueue_generated("log_authn", 1).unwrap());
        changes.extend(sim.enqueue_generated("log_changes", 2).unwrap());
    }
    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    let a: Vec<String> = changes.iter().chain(&alerts).cloned().collect();
    assert_eq!(dir.lines("a.jsonl"), expected_lines(&a));
    let b: Vec<String> = alerts
        .iter()
        .chain(&authn)
        .chain(&changes)
        .cloned()
        .collect();
    assert_eq!(dir.lines("b.jsonl"), expected_lines(&b));
    // Each queue was pulled once even though two pipes want it.
    assert_eq!(requests_to(&sim, "/queues/alerts/next").len(), 1);
    assert_eq!(requests_to(&sim, "/queues/log_changes/next").len(), 1);
}

#[test]
fn one_type_fans_out_to_two_pipes() {
    let (sim, dir) = set_up_broker(|dir| {
        format!(
            "{}{}",
            file_pipe("One", "alerts", None, &dir.path("one.jsonl")),
            file_pipe("Two", "alerts", None, &dir.path("two.jsonl"))
        )
    });
    let alerts = sim.enqueue_generated("alerts", 4).unwrap();
    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    let expected = expected_lines(&alerts);
    assert_eq!(dir.lines("one.jsonl"), expected);
    assert_eq!(dir.lines("two.jsonl"), expected);
    assert_eq!(sim.queue_len("alerts"), 0);
}

#[test]
fn pipes_sharing_a_type_pull_it_with_the_smallest_max() {
    let (sim, dir) = set_up_broker(|dir| {
        format!(
            "{}{}{}",
            file_pipe("Five", "alerts", Some(5), &dir.path("five.jsonl")),
            file_pipe("Three", "alerts", Some(3), &dir.path("three.jsonl")),
            file_pipe("Stats", "endpoint_stats", Some(7), &dir.path("stats.jsonl"))
        )
    });
    let alerts = sim.enqueue_generated("alerts", 10).unwrap();
    sim.enqueue_generated("endpoint_stats", 10).unwrap();
    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(requests_to(&sim, "/queues/alerts/next"), [(Some(3), 200)]);
    assert_eq!(
        requests_to(&sim, "/queues/endpoint_stats/next"),
        [(Some(7), 200)]
    );
    let first_three = expected_lines(&alerts[..3]);
    assert_eq!(dir.lines("five.jsonl"), first_three);
    assert_eq!(dir.lines("three.jsonl"), first_three);
    assert_eq!(dir.lines("stats.jsonl").len(), 7);
    assert_eq!(sim.queue_len("alerts"), 7);
    assert_eq!(sim.queue_len("endpoint_stats"), 3);
}

#[test]
fn a_one_shot_run_pulls_each_queue_exactly_once() {
    let (sim, dir) = set_up_broker(|dir| {
        file_pipe(
            "All",
            "alerts, endpoint_stats, log_authn, log_changes",
            Some(2),
            &dir.path("all.jsonl"),
        )
    });
    for t in ["alerts", "endpoint_stats", "log_authn", "log_changes"] {
        sim.enqueue_generated(t, 5).unwrap();
    }
    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    for t in ["alerts", "endpoint_stats", "log_authn", "log_changes"] {
        let path = format!("/queues/{t}/next");
        assert_eq!(requests_to(&sim, &path), [(Some(2), 200)], "{t}");
        assert_eq!(sim.queue_len(t), 3, "{t}");
    }
    assert_eq!(dir.lines("all.jsonl").len(), 8);
}

#[test]
fn a_failed_pull_does_not_drop_the_other_queues_events() {
    let (sim, dir) = set_up_broker(|dir| {
        format!(
            "{}{}",
            file_pipe("Mixed", "alerts, log_authn", None, &dir.path("mixed.jsonl")),
            file_pipe("Stats", "endpoint_stats", None, &dir.path("stats.jsonl"))
        )
    });
    let alerts = sim.enqueue_generated("alerts", 3).unwrap();
    let authn = sim.enqueue_generated("log_authn", 3).unwrap();
    let stats = sim.enqueue_generated("endpoint_stats", 3).unwrap();
    sim.inject(Fault::Status(503), 1, Some("/queues/alerts"));
    let run = dir.run("procustodibus-broker", &[]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert_eq!(dir.lines("mixed.jsonl"), expected_lines(&authn));
    assert_eq!(dir.lines("stats.jsonl"), expected_lines(&stats));
    let errors: Vec<String> = stdout(&run)
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(String::from)
        .collect();
    assert_eq!(errors.len(), 1, "{}", describe(&run));
    assert!(
        errors[0].contains("alerts") && errors[0].contains("503"),
        "{}",
        errors[0]
    );
    assert_eq!(sim.queue_len("alerts"), 3, "the refused pull took nothing");

    // The next run gets them.
    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    let mixed: Vec<String> = authn.iter().chain(&alerts).cloned().collect();
    assert_eq!(dir.lines("mixed.jsonl"), expected_lines(&mixed));
}

/// A one-shot run whose alerts pull suffers `fault`: it exits 1 with one clear ERROR line that
/// names the queue and the URL (and `expect` in it), and the other queue's events arrive.
fn one_shot_with_a_broken_pull(fault: Fault, expect: &str) {
    let (sim, dir) =
        set_up_broker(|dir| file_pipe("All", "alerts, log_changes", None, &dir.path("all.jsonl")));
    sim.enqueue_generated("alerts", 2).unwrap();
    let changes = sim.enqueue_generated("log_changes", 2).unwrap();
    sim.inject(fault, 1, Some("/queues/alerts"));
    let run = dir.run("procustodibus-broker", &[]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let out = stdout(&run);
    let errors: Vec<&str> = out.lines().filter(|l| l.contains(" ERROR: ")).collect();
    assert_eq!(errors.len(), 1, "{}", describe(&run));
    let url = format!("{}/queues/alerts/next", sim.url());
    assert!(
        errors[0].contains("cannot pull alerts") && errors[0].contains(&url),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains(expect), "{}", errors[0]);
    assert!(
        out.lines().all(|l| l.contains(" procustodibus_broker.")),
        "every output line is a log line: {out}"
    );
    assert_eq!(dir.lines("all.jsonl"), expected_lines(&changes));
    assert_eq!(sim.queue_len("alerts"), 2);
}

#[test]
fn a_malformed_answer_gives_one_clear_error_line() {
    one_shot_with_a_broken_pull(Fault::MalformedJson, "malformed answer");
}

#[test]
fn a_dropped_connection_gives_one_clear_error_line() {
    one_shot_with_a_broken_pull(Fault::Drop, "POST");
}

#[test]
fn a_loop_goes_on_after_broken_answers_and_delivers_later() {
    let (sim, dir) = set_up_broker(|dir| file_pipe("All", "alerts", None, &dir.path("all.jsonl")));
    let alerts = sim.enqueue_generated("alerts", 4).unwrap();
    sim.inject(Fault::MalformedJson, 1, Some("/queues/alerts"));
    sim.inject(Fault::Drop, 1, Some("/queues/alerts"));
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1"]);
    let delivered = wait_until(Duration::from_secs(15), || {
        dir.lines("all.jsonl").len() == alerts.len()
    });
    let out = broker.terminate(Duration::from_secs(5));
    assert!(delivered, "{}", describe(&out));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(dir.lines("all.jsonl"), expected_lines(&alerts));
    let text = stdout(&out);
    let pull_errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" ERROR: ") && l.contains("cannot pull alerts"))
        .collect();
    assert_eq!(pull_errors.len(), 2, "{}", describe(&out));
    assert!(
        pull_errors[0].contains("malformed answer"),
        "{}",
        pull_errors[0]
    );
    assert_eq!(sim.pending_faults(), 0);
    assert_eq!(sim.login_count(), 1, "the session survives broken answers");
}
