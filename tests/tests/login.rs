//! Login: the challenge signed with the broker's key, a fresh login after a 401 or an expired
//! session, the session renewed before it runs out, and the proxy variables (never for a
//! loopback Api, as usual for any other).

use std::time::{Duration, Instant};

use broker_sim::{Fault, SimOptions};
use broker_tests::*;

fn alerts_pipe(dir: &BrokerDir) -> String {
    file_pipe("Alerts", "alerts", None, &dir.path("alerts.jsonl"))
}

/// A simulator and a broker that has been set up, with an alerts pipe into `alerts.jsonl`.
fn set_up_broker(options: SimOptions) -> (broker_sim::Simulator, BrokerDir) {
    let sim = simulator(options);
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &alerts_pipe(&dir));
    dir.set_up(&sim);
    sim.clear_requests();
    (sim, dir)
}

/// The `(path, status)` of every request, for assertion messages and checks.
fn log(sim: &broker_sim::Simulator) -> Vec<(String, u16)> {
    sim.requests()
        .into_iter()
        .map(|r| (r.path, r.status))
        .collect()
}

#[test]
fn login_signs_the_challenge_and_hello_names_our_version() {
    let (sim, dir) = set_up_broker(Default::default());
    assert_eq!(sim.login_count(), 0);
    let alerts = sim.enqueue_generated("alerts", 2).unwrap();
    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(sim.login_count(), 1);
    assert_eq!(dir.lines("alerts.jsonl"), expected_lines(&alerts));
    let expected: Vec<(String, u16)> = [
        ("/sessions/challenge", 200),
        ("/sessions", 200),
        ("/queues/alerts/next", 200),
    ]
    .iter()
    .map(|(p, s)| (p.to_string(), *s))
    .collect();
    assert_eq!(log(&sim), expected);

    let test = dir.run("procustodibus-broker", &["--test"]);
    assert!(test.status.success(), "{}", describe(&test));
    assert_eq!(sim.login_count(), 2);
    assert_eq!(sim.hello_versions(), ["2.0.0"]);
}

#[test]
fn a_key_the_api_does_not_know_cannot_log_in() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &alerts_pipe(&dir));
    // The simulator knows one key; the credentials file holds another.
    sim.add_key(BROKER_ID, write_credentials(&dir.credentials(), [7; 32]));
    write_credentials(&dir.credentials(), [8; 32]);
    sim.enqueue_generated("alerts", 2).unwrap();
    let run = dir.run("procustodibus-broker", &[]);
    assert_ne!(run.status.code(), Some(0), "{}", describe(&run));
    assert!(
        stdout(&run).contains("invalid signature"),
        "{}",
        describe(&run)
    );
    assert_eq!(sim.login_count(), 0);
    assert_eq!(sim.queue_len("alerts"), 2);

    // With the registered key it works.
    write_credentials(&dir.credentials(), [7; 32]);
    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(sim.login_count(), 1);
    assert_eq!(dir.lines("alerts.jsonl").len(), 2);
}

#[test]
fn a_401_mid_run_leads_to_exactly_one_fresh_login_and_the_events_arrive() {
    let (sim, dir) = set_up_broker(Default::default());
    dir.write_config(
        &sim.url(),
        &file_pipe("Both", "alerts, log_authn", None, &dir.path("both.jsonl")),
    );
    let mut raws = sim.enqueue_generated("alerts", 3).unwrap();
    raws.extend(sim.enqueue_generated("log_authn", 3).unwrap());
    sim.inject(Fault::Unauthorized, 1, Some("/queues/"));
    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(dir.lines("both.jsonl"), expected_lines(&raws));
    assert_eq!(sim.login_count(), 2, "{:?}", log(&sim));
    let unauthorized = log(&sim).iter().filter(|(_, s)| *s == 401).count();
    assert_eq!(unauthorized, 1, "{:?}", log(&sim));
    assert_eq!(sim.pending_faults(), 0);
}

#[test]
fn a_second_401_right_after_the_fresh_login_is_not_retried_forever() {
    let (sim, dir) = set_up_broker(Default::default());
    sim.enqueue_generated("alerts", 3).unwrap();
    sim.inject(Fault::Unauthorized, 2, Some("/queues/alerts"));
    let run = dir.run("procustodibus-broker", &[]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert_eq!(sim.login_count(), 2, "{:?}", log(&sim));
    assert_eq!(
        requests_to(&sim, "/queues/alerts/next"),
        [(Some(100), 401), (Some(100), 401)]
    );
    let out = stdout(&run);
    assert!(
        out.lines()
            .any(|l| l.contains("ERROR") && l.contains("alerts") && l.contains("401")),
        "{}",
        describe(&run)
    );
    assert_eq!(sim.queue_len("alerts"), 3, "nothing pulled, nothing lost");
}

#[test]
fn an_expired_session_leads_to_a_new_login_in_a_loop() {
    let (sim, dir) = set_up_broker(Default::default());
    let mut raws = sim.enqueue_generated("alerts", 3).unwrap();
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let first = wait_until(Duration::from_secs(10), || {
        dir.lines("alerts.jsonl").len() == 3
    });
    assert!(first, "first round: {}", broker.stdout_so_far());
    assert_eq!(sim.login_count(), 1);

    sim.expire_all_sessions();
    raws.extend(sim.enqueue_generated("alerts", 3).unwrap());
    let second = wait_until(Duration::from_secs(10), || {
        dir.lines("alerts.jsonl").len() == 6
    });
    let out = broker.terminate(Duration::from_secs(5));
    assert!(second, "after expiry: {}", describe(&out));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(dir.lines("alerts.jsonl"), expected_lines(&raws));
    assert_eq!(sim.login_count(), 2, "{:?}", log(&sim));
    let pulls = requests_to(&sim, "/queues/alerts/next");
    assert_eq!(
        pulls.iter().filter(|(_, s)| *s == 401).count(),
        1,
        "{pulls:?}"
    );
}

#[test]
fn a_session_is_renewed_before_it_expires() {
    // Renewal is due at the lifetime less a jitter clamped to half of it: after 2 s here.
    let options = SimOptions {
        session_lifetime: Duration::from_secs(4),
        ..Default::default()
    };
    let (sim, dir) = set_up_broker(options);
    let start = Instant::now();
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    // Run past the first session's end, so a broker that does not renew gets a 401.
    let renewed = wait_until(Duration::from_secs(10), || {
        sim.login_count() >= 2 && start.elapsed() > Duration::from_millis(5000)
    });
    let out = broker.terminate(Duration::from_secs(5));
    assert!(renewed, "logins {}: {}", sim.login_count(), describe(&out));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let requests = log(&sim);
    assert!(
        requests.iter().all(|(_, s)| *s == 200),
        "no request refused: {requests:?}"
    );
    let pulls = requests_to(&sim, "/queues/alerts/next").len();
    assert!(pulls >= 4, "a pull every second: {requests:?}");
}

#[test]
fn a_loopback_api_is_reached_directly_whatever_the_proxy_variables_say() {
    let sim = simulator(Default::default());
    let proxy = RecordingProxy::start();
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &alerts_pipe(&dir));
    // Setup with the credentials tool, then a run: every API call of both, through no proxy.
    dir.write_setup(&sim, "setup-code-for-tests");
    let mut setup = dir.command("procustodibus-broker-credentials");
    proxy.set_in(&mut setup);
    let out = run_with_timeout(setup, Duration::from_secs(60));
    assert!(out.status.success(), "{}", describe(&out));
    let alerts = sim.enqueue_generated("alerts", 2).unwrap();
    let mut run = dir.command("procustodibus-broker");
    proxy.set_in(&mut run);
    let out = run_with_timeout(run, Duration::from_secs(60));
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(dir.lines("alerts.jsonl"), expected_lines(&alerts));
    assert_eq!(proxy.connections(), 0, "{}", describe(&out));
}

#[test]
fn any_other_api_goes_through_the_proxy_unless_no_proxy_names_it() {
    let proxy = RecordingProxy::start();
    let dir = BrokerDir::new();
    // A name that never resolves (RFC 6761): the broker can only try the proxy, which never
    // answers, so each run fails after its `Timeout`.
    dir.write_config("https://api.example.invalid", &alerts_pipe(&dir));
    write_credentials(&dir.credentials(), [7; 32]);
    let mut through = dir.command("procustodibus-broker");
    proxy.set_in(&mut through);
    let out = run_with_timeout(through, Duration::from_secs(60));
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(proxy.connections() > 0, "{}", describe(&out));

    let mut direct = dir.command("procustodibus-broker");
    proxy.set_in(&mut direct);
    direct
        .env("NO_PROXY", "example.invalid")
        .env("no_proxy", "example.invalid");
    let out = run_with_timeout(direct, Duration::from_secs(60));
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(proxy.connections(), 0, "{}", describe(&out));
}
