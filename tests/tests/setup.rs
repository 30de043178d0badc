//! Setup: the one-time code of broker-setup.conf traded for a key pair in
//! broker-credentials.conf, in every mode, and refused the right way when the code is bad.

use std::time::Duration;

use broker_tests::*;

const SETUP_PATH: &str = "/users/abcdef12345/credentials/signature";

/// The credentials file is right, its key is the one the simulator registered (and the only
/// one), the setup call described the host, and the setup file is gone.
fn assert_set_up(dir: &BrokerDir, sim: &broker_sim::Simulator) -> [u8; 32] {
    let (public, _) = check_credentials_file(&dir.credentials());
    assert_eq!(sim.registered_keys(BROKER_ID), vec![public]);
    let setups = sim.setups();
    assert_eq!(setups.len(), 1, "{setups:?}");
    assert_eq!(setups[0].broker, BROKER_ID);
    assert_eq!(setups[0].public_key, public);
    assert_eq!(setups[0].description, format!("on {}", host_name()));
    assert!(!setups[0].keep_others);
    assert!(!dir.setup().exists(), "the used setup file is deleted");
    public
}

/// Writes a setup file with `code`, without registering the code with the simulator.
fn write_setup_file(dir: &BrokerDir, code: &str, expires: chrono::DateTime<chrono::Utc>) {
    dir.write(
        "broker-setup.conf",
        &format!(
            "[Broker.Setup]\nCode = {code}\nExpires = {}\n",
            expires.format("%Y-%m-%dT%H:%M:%SZ")
        ),
    );
}

fn alerts_pipe(dir: &BrokerDir) -> String {
    file_pipe("Alerts", "alerts", None, &dir.path("alerts.jsonl"))
}

#[test]
fn one_shot_run_sets_up_and_then_polls() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &alerts_pipe(&dir));
    dir.write_setup(&sim, "one-shot-code");
    let alerts = sim.enqueue_generated("alerts", 3).unwrap();
    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_set_up(&dir, &sim);
    assert_eq!(sim.login_count(), 1);
    assert_eq!(dir.lines("alerts.jsonl"), expected_lines(&alerts));
}

#[test]
fn loop_run_sets_up_and_stops_cleanly_on_sigterm() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &alerts_pipe(&dir));
    dir.write_setup(&sim, "loop-code");
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let ready = wait_until(Duration::from_secs(10), || {
        dir.credentials().exists() && !dir.setup().exists()
    });
    let out = broker.terminate(Duration::from_secs(5));
    assert!(ready, "no credentials after 10 s: {}", describe(&out));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_set_up(&dir, &sim);
}

#[test]
fn credentials_tool_sets_up_and_does_nothing_else() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &alerts_pipe(&dir));
    dir.write_setup(&sim, "tool-code");
    sim.enqueue_generated("alerts", 2).unwrap();
    let run = dir.run("procustodibus-broker-credentials", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    assert!(
        stdout(&run).contains(&format!(
            "credentials saved to {}",
            dir.credentials().display()
        )),
        "{}",
        describe(&run)
    );
    assert_set_up(&dir, &sim);
    let paths: Vec<String> = sim.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, [SETUP_PATH], "the tool only sets up");
    assert_eq!(sim.queue_len("alerts"), 2);
}

#[test]
fn expired_code_is_refused_before_any_api_call() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &alerts_pipe(&dir));
    // The simulator would still take the code: only the file says it has expired.
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    sim.add_setup_code(BROKER_ID, "expired-code", tomorrow);
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    write_setup_file(&dir, "expired-code", past);
    for binary in ["procustodibus-broker", "procustodibus-broker-credentials"] {
        let run = dir.run(binary, &[]);
        assert_eq!(run.status.code(), Some(1), "{binary}: {}", describe(&run));
        let err = stderr(&run);
        assert!(
            err.contains(&dir.setup().display().to_string()) && err.contains("expired"),
            "{binary}: the message names the setup file and says it expired: {}",
            describe(&run)
        );
        assert!(
            !err.contains("expired-code"),
            "{binary} shows the code: {err}"
        );
    }
    assert!(
        sim.requests().iter().all(|r| r.path != SETUP_PATH),
        "{:?}",
        sim.requests()
    );
    assert!(dir.setup().exists());
    assert!(!dir.credentials().exists());
}

#[test]
fn already_used_code_is_refused_with_the_apis_reason() {
    let sim = simulator(Default::default());
    let first = BrokerDir::new();
    first.write_config(&sim.url(), &alerts_pipe(&first));
    first.write_setup(&sim, "used-code");
    let run = first.run("procustodibus-broker-credentials", &[]);
    assert!(run.status.success(), "{}", describe(&run));

    // The same code again, in another install of the same broker.
    let second = BrokerDir::new();
    second.write_config(&sim.url(), &alerts_pipe(&second));
    write_setup_file(
        &second,
        "used-code",
        chrono::Utc::now() + chrono::Duration::days(1),
    );
    for binary in ["procustodibus-broker-credentials", "procustodibus-broker"] {
        let run = second.run(binary, &[]);
        assert_eq!(run.status.code(), Some(1), "{binary}: {}", describe(&run));
        let err = stderr(&run);
        assert!(
            err.contains("setup code already used") && err.contains(SETUP_PATH),
            "{binary}: {}",
            describe(&run)
        );
        assert!(!err.contains("used-code"), "{binary} shows the code: {err}");
    }
    assert!(second.setup().exists());
    assert!(!second.credentials().exists());
    assert_eq!(sim.setups().len(), 1);
}

#[test]
fn wrong_code_is_refused_and_leaves_the_setup_file_and_no_credentials() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &alerts_pipe(&dir));
    write_setup_file(
        &dir,
        "never-issued",
        chrono::Utc::now() + chrono::Duration::days(1),
    );
    let before = std::fs::read(dir.setup()).unwrap();
    sim.enqueue_generated("alerts", 2).unwrap();
    for binary in ["procustodibus-broker", "procustodibus-broker-credentials"] {
        let run = dir.run(binary, &[]);
        assert_eq!(run.status.code(), Some(1), "{binary}: {}", describe(&run));
        let err = stderr(&run);
        assert!(
            err.contains("not authorized (401)") && err.contains("invalid setup code"),
            "{binary}: {}",
            describe(&run)
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(std::fs::read(dir.setup()).unwrap(), before);
    assert!(!dir.credentials().exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("credentials"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(sim.registered_keys(BROKER_ID).is_empty());
    assert_eq!(sim.login_count(), 0);
    assert_eq!(sim.queue_len("alerts"), 2);
}

#[test]
fn a_second_run_logs_in_with_the_credentials_alone() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &alerts_pipe(&dir));
    dir.set_up(&sim);
    let credentials = std::fs::read(dir.credentials()).unwrap();
    let alerts = sim.enqueue_generated("alerts", 4).unwrap();
    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(dir.lines("alerts.jsonl"), expected_lines(&alerts));
    assert_eq!(sim.setups().len(), 1, "no second setup");
    assert_eq!(sim.login_count(), 1);
    assert_eq!(std::fs::read(dir.credentials()).unwrap(), credentials);
}

#[test]
fn no_credentials_and_no_setup_file_is_a_clear_error() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &alerts_pipe(&dir));
    let run = dir.run("procustodibus-broker", &[]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let err = stderr(&run);
    assert!(
        err.contains(&dir.credentials().display().to_string())
            && err.contains(&dir.setup().display().to_string()),
        "{}",
        describe(&run)
    );
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
}

#[test]
fn secrets_never_appear_in_the_output_even_at_debug_level() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), &alerts_pipe(&dir));
    let code = "Secret-Setup-Code-7f3a9c";
    let mut outputs = Vec::new();

    // A refused code first: error paths must not show it either.
    write_setup_file(&dir, code, chrono::Utc::now() + chrono::Duration::days(1));
    outputs.push(dir.run("procustodibus-broker", &["-vv"]));
    assert_eq!(
        outputs[0].status.code(),
        Some(1),
        "{}",
        describe(&outputs[0])
    );

    dir.write_setup(&sim, code);
    sim.enqueue_generated("alerts", 2).unwrap();
    let run = dir.run("procustodibus-broker", &["-vv"]);
    assert!(run.status.success(), "{}", describe(&run));
    assert!(
        stdout(&run).contains("DEBUG"),
        "debug logging is on: {}",
        describe(&run)
    );
    outputs.push(run);
    let (_, private_key) = check_credentials_file(&dir.credentials());
    // A setup with the tool, a login, and a pull after a 401 with a fresh login.
    dir.write_setup(&sim, "Another-Secret-Code-51be");
    outputs.push(dir.run("procustodibus-broker-credentials", &["-vv"]));
    let (_, second_key) = check_credentials_file(&dir.credentials());
    sim.inject(broker_sim::Fault::Unauthorized, 1, Some("/queues/"));
    outputs.push(dir.run("procustodibus-broker", &["--verbosity", "DEBUG"]));
    outputs.push(dir.run("procustodibus-broker", &["--test", "-vv"]));

    for out in &outputs {
        let all = format!("{}{}", stdout(out), stderr(out));
        for secret in [code, "Another-Secret-Code-51be", &private_key, &second_key] {
            assert!(
                !all.contains(secret),
                "secret {secret:?} in {}",
                describe(out)
            );
            // Nor its URL-safe spelling.
            let url_safe = secret.replace('+', "-").replace('/', "_");
            assert!(
                !all.contains(url_safe.trim_end_matches('=')),
                "{}",
                describe(out)
            );
        }
    }
}

#[test]
fn a_setup_file_dropped_in_while_looping_replaces_the_credentials() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        &file_pipe("All", "alerts", None, &dir.path("all.jsonl")),
    );
    dir.set_up(&sim);
    let first = std::fs::read_to_string(dir.credentials()).unwrap();
    let mut running = dir.spawn("procustodibus-broker", &["--loop", "1"]);
    assert!(
        wait_until(Duration::from_secs(10), || sim.login_count() >= 1),
        "the broker did not log in with its first credentials"
    );
    dir.write_setup(&sim, "second-code");
    assert!(
        wait_until(Duration::from_secs(10), || !dir.setup().exists()),
        "the new setup file was not used"
    );
    // The old key is gone at the API (keep_others is false): after the sessions expire, only a
    // login with the new key delivers.
    sim.expire_all_sessions();
    let raws = sim.enqueue_generated("alerts", 3).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || dir.lines("all.jsonl").len()
            == 3),
        "events not delivered with the new credentials"
    );
    assert_eq!(dir.lines("all.jsonl"), expected_lines(&raws));
    assert_ne!(std::fs::read_to_string(dir.credentials()).unwrap(), first);
    let out = running.terminate(Duration::from_secs(10));
    assert!(out.status.success(), "{}", describe(&out));
}
