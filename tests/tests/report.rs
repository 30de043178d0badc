//! `--test`: the report lines and the exit status (the sum of the failed checks: 4 DNS, 8 health,
//! 16 setup or queue access) against a healthy, an unhealthy, an unreachable and an unresolvable
//! API, with good and bad setup codes, and for a config without a broker id.

use std::process::Output;

use broker_tests::*;

const TROUBLESHOOT: &str =
    "Issues encountered; see https://docs.procustodibus.com/guide/integrations/brokers/#troubleshoot to fix";

/// The report's lines (standard output), after checking that nothing panicked and nothing went
/// to standard error.
fn report_lines(out: &Output) -> Vec<String> {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{}", describe(out));
    assert!(
        err.is_empty(),
        "nothing on standard error expected: {}",
        describe(out)
    );
    stdout(out).lines().map(String::from).collect()
}

/// A port on 127.0.0.1 that nothing listens on: bound by the OS, then closed.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

/// A broker directory with credentials registered at `sim`, and broker.conf pointing at `api`.
fn with_credentials(sim: &broker_sim::Simulator, api: &str) -> BrokerDir {
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), "");
    dir.set_up(sim);
    assert!(dir.credentials().is_file());
    dir.write_config(api, "");
    dir
}

/// Asserts `line` is `{start}(reason) !!!` with a reason that is not empty, and returns it.
fn reason_of<'a>(line: &'a str, start: &str) -> &'a str {
    let reason = line
        .strip_prefix(start)
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.strip_suffix(") !!!"))
        .unwrap_or_else(|| panic!("{line:?} is not {start}(reason) !!!"));
    assert!(!reason.trim().is_empty(), "{line}");
    reason
}

#[test]
fn healthy_api_with_credentials_is_all_systems_go() {
    let sim = simulator(Default::default());
    let dir = with_credentials(&sim, &sim.url());
    sim.clear_requests();
    let out = dir.run("procustodibus-broker", &["--test"]);
    assert_eq!(
        report_lines(&out),
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
    // It really asked: health, then a login and hello.
    let paths: Vec<String> = sim.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.contains(&"/health".to_string()), "{paths:?}");
    assert!(paths.iter().any(|p| p.ends_with("/hello")), "{paths:?}");
    assert_eq!(sim.login_count(), 1);
}

#[test]
fn unhealthy_api_gives_one_line_per_unhealthy_entry_and_status_8() {
    let sim = simulator(Default::default());
    let dir = with_credentials(&sim, &sim.url());
    sim.set_health(vec![(false, "db down".into())]);
    let out = dir.run("procustodibus-broker", &["--test"]);
    assert_eq!(
        report_lines(&out),
        [
            "... 127.0.0.1 is pro custodibus ip address ...",
            "!!! unhealthy pro custodibus api: db down !!!",
            "... can access queues on api for My Test Broker ...",
            TROUBLESHOOT,
        ],
        "{}",
        describe(&out)
    );
    assert_eq!(out.status.code(), Some(8));

    // Several entries: one line for each unhealthy one, in order; still 8 (not 8 per entry).
    sim.set_health(vec![
        (true, String::new()),
        (false, "db down".into()),
        (false, "queue stuck".into()),
    ]);
    let out = dir.run("procustodibus-broker", &["--test"]);
    let lines = report_lines(&out);
    assert_eq!(
        lines[1..3],
        [
            "!!! unhealthy pro custodibus api: db down !!!",
            "!!! unhealthy pro custodibus api: queue stuck !!!",
        ],
        "{}",
        describe(&out)
    );
    assert_eq!(lines.last().map(String::as_str), Some(TROUBLESHOOT));
    assert_eq!(out.status.code(), Some(8));
}

#[test]
fn health_answering_an_error_status_is_server_unavailable() {
    let sim = simulator(Default::default());
    let dir = with_credentials(&sim, &sim.url());
    sim.set_health_status(503);
    let out = dir.run("procustodibus-broker", &["--test"]);
    let lines = report_lines(&out);
    assert_eq!(lines.len(), 4, "{}", describe(&out));
    let reason = reason_of(
        &lines[1],
        "!!! unhealthy pro custodibus api: server unavailable ",
    );
    assert!(reason.contains("503"), "{reason}");
    assert_eq!(
        lines[2],
        "... can access queues on api for My Test Broker ..."
    );
    assert_eq!(lines[3], TROUBLESHOOT);
    assert_eq!(out.status.code(), Some(8));
}

#[test]
fn unreachable_api_is_unhealthy_and_inaccessible_status_24() {
    let sim = simulator(Default::default());
    let port = closed_port();
    let dir = with_credentials(&sim, &format!("http://127.0.0.1:{port}"));
    let out = dir.run("procustodibus-broker", &["--test"]);
    let lines = report_lines(&out);
    assert_eq!(lines.len(), 4, "{}", describe(&out));
    assert_eq!(lines[0], "... 127.0.0.1 is pro custodibus ip address ...");
    let reason = reason_of(
        &lines[1],
        "!!! unhealthy pro custodibus api: server unavailable ",
    );
    assert!(
        reason.contains(&format!("127.0.0.1:{port}")),
        "names the URL: {reason}"
    );
    reason_of(&lines[2], "!!! cannot access queues on api ");
    assert_eq!(lines[3], TROUBLESHOOT);
    assert_eq!(out.status.code(), Some(24), "{}", describe(&out));
}

#[test]
fn unresolvable_host_fails_the_lookup_check() {
    let dir = BrokerDir::new();
    dir.write(
        "broker.conf",
        &format!(
            "[Broker]\nBroker = {BROKER_ID}\nApi = https://nonexistent.invalid\nTimeout = 1\n"
        ),
    );
    let started = std::time::Instant::now();
    let out = dir.run("procustodibus-broker", &["--test"]);
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
    let lines = report_lines(&out);
    assert!(!lines.is_empty(), "{}", describe(&out));
    reason_of(
        &lines[0],
        "!!! cannot lookup ip address for nonexistent.invalid ",
    );
    assert!(
        lines[1].starts_with("!!! unhealthy pro custodibus api: server unavailable ("),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("!!! cannot set up access to api ("),
        "{lines:?}"
    );
    assert_eq!(lines.last().map(String::as_str), Some(TROUBLESHOOT));
    let code = out.status.code().expect("exit status");
    assert_eq!(code & 4, 4, "{}", describe(&out));
    assert_eq!(code, 4 + 8 + 16, "{}", describe(&out));
}

#[test]
fn bad_setup_code_cannot_set_up_access_status_16() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), "");
    // A well-formed setup file whose code the API never issued.
    let expires = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ");
    dir.write(
        "broker-setup.conf",
        &format!("[Broker.Setup]\nCode = not-a-real-code\nExpires = {expires}\n"),
    );
    let out = dir.run("procustodibus-broker", &["--test"]);
    let lines = report_lines(&out);
    assert_eq!(lines.len(), 4, "{}", describe(&out));
    assert_eq!(lines[0], "... 127.0.0.1 is pro custodibus ip address ...");
    assert_eq!(lines[1], "... healthy pro custodibus api ...");
    let reason = reason_of(&lines[2], "!!! cannot set up access to api ");
    assert!(reason.contains("401"), "{reason}");
    assert!(
        !reason.contains("not-a-real-code"),
        "never shows the setup code: {reason}"
    );
    assert_eq!(lines[3], TROUBLESHOOT);
    assert_eq!(out.status.code(), Some(16));
    // Nothing written, nothing deleted, nothing registered.
    assert!(dir.setup().is_file());
    assert!(!dir.credentials().exists());
    assert!(sim.registered_keys(BROKER_ID).is_empty());
}

#[test]
fn expired_setup_code_cannot_set_up_access_without_asking_the_api() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), "");
    dir.write(
        "broker-setup.conf",
        "[Broker.Setup]\nCode = old-code\nExpires = 2022-01-04T12:34:56Z\n",
    );
    let out = dir.run("procustodibus-broker", &["--test"]);
    let lines = report_lines(&out);
    assert_eq!(lines.len(), 4, "{}", describe(&out));
    let reason = reason_of(&lines[2], "!!! cannot set up access to api ");
    assert!(
        reason.contains("setup code expired at 2022-01-04T12:34:56Z"),
        "{reason}"
    );
    assert!(reason.contains("broker-setup.conf line 3"), "{reason}");
    assert_eq!(out.status.code(), Some(16));
    assert!(sim.setups().is_empty());
}

#[test]
fn test_runs_setup_first_then_reports_access() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), "");
    dir.write_setup(&sim, "report-setup");
    let out = dir.run("procustodibus-broker", &["--test"]);
    assert_eq!(
        report_lines(&out),
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
    assert!(!dir.setup().exists(), "the used setup file is deleted");
    let text = std::fs::read_to_string(dir.credentials()).expect("credentials written");
    assert!(text.contains("[Broker.Credentials]"), "{text}");
    let setups = sim.setups();
    assert_eq!(setups.len(), 1);
    assert_eq!(setups[0].broker, BROKER_ID);
    // The key in the file is the one registered.
    let public = text
        .lines()
        .find_map(|l| l.strip_prefix("PublicKey = "))
        .expect("PublicKey line");
    let registered = sim.registered_keys(BROKER_ID);
    assert_eq!(registered, [setups[0].public_key]);
    assert_eq!(public, base64_standard(&setups[0].public_key));
    // A second --test logs in with those credentials, without setup.
    let again = dir.run("procustodibus-broker", &["--test"]);
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
    assert_eq!(sim.setups().len(), 1);
}

#[test]
fn config_without_broker_id_prints_only_its_message_and_exits_1() {
    let dir = BrokerDir::new();
    dir.write("broker.conf", "[Broker]\nApi = http://127.0.0.1:9\n");
    let out = dir.run("procustodibus-broker", &["--test"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(stdout(&out), "", "no report lines");
    let err = stderr(&out);
    assert_eq!(
        err,
        format!(
            "{} line 1: missing Broker id: add `Broker = <id>` to the [Broker] section (the id is on the broker's setup page)\n",
            dir.config().display()
        )
    );
}

/// Standard base64 with padding, written out here so the test does not share the broker's code.
fn base64_standard(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
