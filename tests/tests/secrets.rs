//! No secret in any output: a malformed line that holds the private key, the setup code or a
//! sink's token, in the credentials file, the setup file, an inline `[Broker.Credentials]` or
//! `[Broker.Setup]` section or a pipe, never shows up on standard output, standard error or the
//! log at `-vv`, in `--check-config`, a one-shot run or a `--loop` round. Errors about a line of a
//! secret-holding file or section name the file, the line and the expected form.

use std::thread::sleep;
use std::time::Duration;

use broker_tests::*;

/// A private key (the base64 of 32 bytes) that must never be shown.
const KEY: &str = "c2VjcmV0LWtleS1ub3QtdG8tYmUtc2hvd24tZXZlcjE=";
/// A setup code that must never be shown.
const CODE: &str = "setup-code-never-shown-4711";
/// A sink token that must never be shown.
const TOKEN: &str = "token-never-shown-0815";

/// Every malformed form of `key` carrying `secret`: colon, no `=`, duplicate, bad base64, stray
/// text (alone and after other words), and a valid line with trailing junk before the secret.
fn malformed(key: &str, secret: &str) -> Vec<String> {
    vec![
        format!("{key}: {secret}"),
        format!("{key} {secret}"),
        format!("{key}:{secret}"),
        format!("{key} = {secret}\n{key} = {secret}!"),
        format!("{key} = {secret}!!*"),
        format!("{secret}"),
        format!("stray {secret} text"),
        format!("[{secret}"),
    ]
}

/// Runs `--check-config`, a one-shot run and one `--loop` round, all at `-vv`, and checks that
/// `secret` is in none of their output; returns the one-shot run's standard error.
fn assert_never_shown(dir: &BrokerDir, secret: &str, case: &str) -> String {
    let check = dir.run("procustodibus-broker", &["--check-config", "-vv"]);
    let once = dir.run("procustodibus-broker", &["-vv"]);
    let mut looping = dir.spawn("procustodibus-broker", &["--loop", "1", "-vv"]);
    sleep(Duration::from_millis(700));
    let looped = looping.terminate(Duration::from_secs(10));
    for (mode, out) in [
        ("--check-config", &check),
        ("one-shot", &once),
        ("--loop", &looped),
    ] {
        let all = format!("{}{}", stdout(out), stderr(out));
        assert!(
            !all.contains("panicked"),
            "{case} {mode}: {}",
            describe(out)
        );
        assert!(
            !all.contains(secret),
            "{case} {mode}: the secret is shown: {}",
            describe(out)
        );
    }
    stderr(&once)
}

/// broker.conf with an API nobody listens on and one file pipe, plus `extra` at its end.
fn config(dir: &BrokerDir, extra: &str) -> String {
    format!(
        "[Broker]\nBroker = {BROKER_ID}\nApi = http://127.0.0.1:9\nTimeout = 1\nSpool = {}\n\n{}\n{extra}",
        dir.path("spool").display(),
        file_pipe("P", "alerts", None, &dir.path("out.jsonl")),
    )
}

#[test]
fn a_private_key_in_a_malformed_credentials_file_is_never_shown() {
    for line in malformed("PrivateKey", KEY) {
        let dir = BrokerDir::new();
        dir.write("broker.conf", &config(&dir, ""));
        let text = format!("# credentials\n[Broker.Credentials]\n{line}\n");
        dir.write("broker-credentials.conf", &text);
        let err = assert_never_shown(&dir, KEY, &format!("credentials file {line:?}"));
        // A duplicate of a valid key is used (the first counts); every other form is an error.
        assert!(
            line.contains('\n') || err.contains(&dir.credentials().display().to_string()),
            "{line:?}: {err}"
        );
    }
}

#[test]
fn a_private_key_in_a_malformed_inline_credentials_section_is_never_shown() {
    for line in malformed("PrivateKey", KEY) {
        let dir = BrokerDir::new();
        dir.write(
            "broker.conf",
            &config(&dir, &format!("[Broker.Credentials]\n{line}\n")),
        );
        assert_never_shown(&dir, KEY, &format!("inline credentials {line:?}"));
    }
}

#[test]
fn a_setup_code_in_a_malformed_setup_file_is_never_shown() {
    for line in malformed("Code", CODE) {
        let dir = BrokerDir::new();
        dir.write("broker.conf", &config(&dir, ""));
        let text = format!("[Broker.Setup]\n{line}\nExpires = 2999-01-01T00:00:00Z junk {CODE}\n");
        dir.write("broker-setup.conf", &text);
        let err = assert_never_shown(&dir, CODE, &format!("setup file {line:?}"));
        assert!(
            line.contains('\n') || err.contains(&dir.setup().display().to_string()),
            "{line:?}: {err}"
        );
    }
}

#[test]
fn a_setup_code_in_a_malformed_inline_setup_section_is_never_shown() {
    for line in malformed("Code", CODE) {
        let dir = BrokerDir::new();
        dir.write(
            "broker.conf",
            &config(&dir, &format!("[Broker.Setup]\n{line}\n")),
        );
        assert_never_shown(&dir, CODE, &format!("inline setup {line:?}"));
    }
}

#[test]
fn a_sink_token_in_a_malformed_pipe_or_broker_line_is_never_shown() {
    for line in [
        format!("Header: Authorization: Bearer {TOKEN}"),
        format!("Header Authorization: Bearer {TOKEN}"),
        format!("Token {TOKEN}"),
        format!("Url https://hooks.example.com/in?token={TOKEN}"),
    ] {
        let dir = BrokerDir::new();
        dir.write("broker.conf", &config(&dir, ""));
        // The same line in the pipe (an error) and in [Broker] (a warning).
        let text = std::fs::read_to_string(dir.config()).unwrap();
        let text = text.replacen("[Broker]\n", &format!("[Broker]\n{line}\n"), 1);
        dir.write("broker.conf", &format!("{text}{line}\n"));
        assert_never_shown(&dir, TOKEN, &format!("pipe {line:?}"));
    }
}

#[test]
fn errors_about_secret_lines_name_the_file_the_line_and_the_expected_form() {
    let dir = BrokerDir::new();
    dir.write("broker.conf", &config(&dir, ""));
    dir.write(
        "broker-credentials.conf",
        &format!("[Broker.Credentials]\nPrivateKey: {KEY}\n"),
    );
    let out = dir.run("procustodibus-broker", &["--check-config"]);
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "{} line 2: not a valid line here (not shown, it may hold a secret); expected `PrivateKey = <base64 key>` or `PublicKey = <base64 key>` under [Broker.Credentials]",
            dir.credentials().display()
        ),
        "{}",
        describe(&out)
    );
}
