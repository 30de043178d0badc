//! Broken input: every broken config, setup or credentials file, and every bad `--config` or
//! `PROCUSTODIBUS_CONF`, gives one line on standard error that names the file (and the line
//! where there is one) and the problem, a non-zero exit and never a panic. Also a file sink that
//! cannot write (a missing directory, `/dev/full`) makes a one-shot run fail with an error that
//! names the path.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use broker_tests::*;

/// The one line on standard error of a failed run, after checking that the run failed with
/// status 1, did not panic and printed exactly one line.
fn one_line_error(out: &Output) -> String {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{}", describe(out));
    assert_eq!(out.status.code(), Some(1), "{}", describe(out));
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one line on standard error: {}",
        describe(out)
    );
    assert!(err.ends_with('\n'), "{err:?}");
    lines[0].to_string()
}

/// Writes `text` as broker.conf, runs a one-shot broker and returns its one-line error and the
/// config path as shown in messages.
fn config_error(text: &str) -> (String, String) {
    let dir = BrokerDir::new();
    dir.write("broker.conf", text);
    let out = dir.run("procustodibus-broker", &[]);
    (one_line_error(&out), dir.config().display().to_string())
}

/// A broker.conf with a valid `[Broker]` section (an API nobody listens on) and then `pipes`.
fn with_pipes(pipes: &str) -> String {
    format!("[Broker]\nBroker = {BROKER_ID}\nApi = http://127.0.0.1:9\nTimeout = 1\n\n{pipes}")
}

#[test]
fn missing_broker_id_in_every_command() {
    let dir = BrokerDir::new();
    dir.write(
        "broker.conf",
        "# no id\n[Broker]\nApi = http://127.0.0.1:9\n",
    );
    let want = format!(
        "{} line 2: missing Broker id: add `Broker = <id>` to the [Broker] section (the id is on the broker's setup page)",
        dir.config().display()
    );
    for args in [
        &[][..],
        &["--test"],
        &["--test-pipe", "x"],
        &["--loop", "1"],
    ] {
        let out = dir.run("procustodibus-broker", args);
        assert_eq!(one_line_error(&out), want, "{args:?}");
    }
    let out = dir.run("procustodibus-broker-credentials", &[]);
    assert_eq!(one_line_error(&out), want, "credentials tool");

    // No [Broker] section at all: the file as a whole.
    let (err, path) = config_error("[Pipe.A]\nFrom = alerts\nTo = file\nFile = /tmp/x\n");
    assert!(
        err.starts_with(&format!("{path}: missing Broker id")),
        "{err}"
    );
    // `Broker` without a value is not an id either.
    let (err, path) = config_error("[Broker]\nBroker\n");
    assert!(
        err.starts_with(&format!("{path} line 1: missing Broker id")),
        "{err}"
    );
}

#[test]
fn unknown_sink_in_to() {
    let (err, path) = config_error(&with_pipes("[Pipe.Out]\nFrom = alerts\nTo = kafka\n"));
    assert!(
        err.starts_with(&format!(
            "{path} line 8: pipe Out: To: unknown sink \"kafka\" (this broker has: "
        )),
        "{err}"
    );
    assert_eq!(
        sinks_listed(&err),
        Some(stock_sinks_listed(&[]).as_str()),
        "lists the sinks: {err}"
    );
}

#[test]
fn missing_to() {
    let (err, path) = config_error(&with_pipes("[Pipe.Out]\nFrom = alerts\n"));
    assert!(
        err.starts_with(&format!("{path} line 6: pipe Out: missing To (one of: ")),
        "{err}"
    );
}

#[test]
fn misspelt_key_names_the_key_the_pipe_and_the_line() {
    let (err, path) = config_error(&with_pipes(
        "[Pipe.MyFile]\nFrom = alerts\nTo = file\nFiel = /tmp/out.jsonl\n",
    ));
    assert!(
        err.starts_with(&format!(
            "{path} line 9: pipe MyFile: unknown key Fiel for sink file (expected one of: "
        )),
        "{err}"
    );
    // A misspelt syslog key, before `To` in the section.
    let (err, path) = config_error(&with_pipes(
        "[Pipe.Log]\nFacilty = local0\nFrom = alerts\nTo = syslog\n",
    ));
    assert!(
        err.starts_with(&format!(
            "{path} line 7: pipe Log: unknown key Facilty for sink syslog"
        )),
        "{err}"
    );
}

#[test]
fn max_must_be_a_positive_integer() {
    for (value, _why) in [
        ("lots", "text"),
        ("0", "zero"),
        ("-5", "negative"),
        ("1.5", "fraction"),
        ("4294967296", "too big"),
    ] {
        let (err, path) = config_error(&with_pipes(&format!(
            "[Pipe.P]\nFrom = alerts\nMax = {value}\nTo = file\nFile = /tmp/x.jsonl\n"
        )));
        assert_eq!(
            err,
            format!("{path} line 8: pipe P: Max \"{value}\" is not a positive integer")
        );
    }
}

#[test]
fn unknown_facility_and_priority() {
    let (err, path) = config_error(&with_pipes(
        "[Pipe.Log]\nFrom = alerts\nTo = syslog\nSocket = 127.0.0.1:5140\nFacility = local9\n",
    ));
    assert!(
        err.starts_with(&format!(
            "{path} line 10: pipe Log: Facility: unknown facility \"local9\" (expected one of: kern, user,"
        )),
        "{err}"
    );
    assert!(err.ends_with("local7)"), "{err}");
    let (err, path) = config_error(&with_pipes(
        "[Pipe.Log]\nFrom = alerts\nTo = syslog\nPriority = loud\n",
    ));
    assert_eq!(
        err,
        format!(
            "{path} line 9: pipe Log: Priority: unknown priority \"loud\" (expected one of: emerg, panic, \
             alert, crit, critical, err, error, warning, warn, notice, info, debug)"
        )
    );
}

#[test]
fn unknown_event_type_in_from() {
    let (err, path) = config_error(&with_pipes(
        "[Pipe.P]\nFrom = alerts\nFrom = log_authn, endpoint_stat\nTo = file\nFile = /tmp/x.jsonl\n",
    ));
    assert_eq!(
        err,
        format!(
            "{path} line 8: pipe P: From: unknown event type \"endpoint_stat\" (expected alerts, endpoint_stats, log_authn or log_changes)"
        )
    );
}

#[test]
fn duplicate_pipe_names_ignoring_case() {
    let pipe = |name: &str| {
        format!("[Pipe.{name}]\nFrom = alerts\nTo = file\nFile = /tmp/{name}.jsonl\n\n")
    };
    let (err, path) = config_error(&with_pipes(&(pipe("MyPipe") + &pipe("mypipe"))));
    assert_eq!(
        err,
        format!("{path} line 11: duplicate pipe mypipe (pipe names are compared ignoring case)")
    );
    let (err, path) = config_error(&with_pipes(
        &(pipe("Same") + &pipe("Other") + &pipe("Same")),
    ));
    assert_eq!(
        err,
        format!("{path} line 16: duplicate pipe Same (pipe names are compared ignoring case)")
    );
}

#[test]
fn file_pipe_without_file() {
    let (err, path) = config_error(&with_pipes("[Pipe.P]\nFrom = alerts\nTo = file\n"));
    assert_eq!(
        err,
        format!("{path} line 6: pipe P: File: missing: the file sink needs File = PATH of the file to append to")
    );
}

#[test]
fn syslog_socket_with_a_bad_port() {
    let (err, path) = config_error(&with_pipes(
        "[Pipe.Log]\nFrom = alerts\nTo = syslog\nSocket = 127.0.0.1:99999\n",
    ));
    assert_eq!(
        err,
        format!("{path} line 9: pipe Log: Socket: port \"99999\" is not a number from 1 to 65535")
    );
    let (err, _) = config_error(&with_pipes(
        "[Pipe.Log]\nFrom = alerts\nTo = syslog\nSocket = loghost:syslog\n",
    ));
    assert!(
        err.contains("line 9: pipe Log: Socket: port \"syslog\""),
        "{err}"
    );
}

#[test]
fn other_broken_broker_conf_lines() {
    let cases: &[(&str, &str)] = &[
        (
            "[Broker]\nBroker = abc\n[Pipe.X\n",
            "line 3: section header \"[Pipe.X\" lacks a closing ']'",
        ),
        (
            "[Broker]\nBroker = abc\n[Pipe.my pipe]\nTo = file\nFile = x\n",
            "line 3: pipe name \"my pipe\" must be made of A-Z a-z 0-9 _ - only",
        ),
        (
            "[Broker]\nBroker = abc\nTimeout = soon\n",
            "line 3: Timeout \"soon\" is not a number of seconds above 0",
        ),
        (
            "[Broker]\nBroker = abc\nApi = ftp://example.com\n",
            "line 3: Api \"ftp://example.com\" is not an http:// or https:// URL",
        ),
        (
            "[Broker]\nBroker = abc def\n",
            "line 2: Broker id \"abc def\" has characters other than A-Z a-z 0-9 _ -",
        ),
        (
            "[Broker]\nBroker = abc\n = value\n",
            "line 3: a '=' with no key before it",
        ),
        (
            "[Broker]\nBroker = abc\n[Pipe.T]\nTo = syslog\nTag = a\tb\n",
            "line 5: pipe T: Tag: ",
        ),
    ];
    for (text, want) in cases {
        let (err, path) = config_error(text);
        assert!(
            err.starts_with(&format!("{path} {want}")),
            "for {text:?}:\n{err}"
        );
    }
}

#[test]
fn binary_junk_as_broker_conf() {
    let dir = BrokerDir::new();
    std::fs::write(dir.config(), b"\xff\xfe\x00[Broker]\x00\x9c\x80junk\n").expect("write");
    let out = dir.run("procustodibus-broker", &[]);
    assert_eq!(
        one_line_error(&out),
        format!("{}: is not UTF-8 text", dir.config().display())
    );
    // Text that is not INI at all: no panic, and one line when it is refused.
    for junk in [
        "[",
        "[]",
        "]]]",
        "=",
        "[Pipe.]\nTo",
        "[Broker]\nBroker = a\n[Pipe.\u{e9}]\nTo=file\n",
        "\u{feff}[Broker]\nBroker = abc\n",
    ] {
        dir.write("broker.conf", junk);
        let out = dir.run("procustodibus-broker", &[]);
        one_line_error(&out);
    }
}

#[test]
fn missing_credentials_and_setup_files() {
    let dir = BrokerDir::new();
    dir.write("broker.conf", &with_pipes(""));
    let want = format!(
        "no credentials file at {} and no setup file at {}: download broker-setup.conf from the broker's setup page",
        dir.credentials().display(),
        dir.setup().display()
    );
    assert_eq!(one_line_error(&dir.run("procustodibus-broker", &[])), want);
    assert_eq!(
        one_line_error(&dir.run("procustodibus-broker", &["--loop", "1"])),
        want
    );
    assert_eq!(
        one_line_error(&dir.run("procustodibus-broker-credentials", &[])),
        want
    );
    // The files broker.conf names itself.
    dir.write(
        "broker.conf",
        &format!(
            "[Broker]\nBroker = {BROKER_ID}\nApi = http://127.0.0.1:9\nCredentials = {0}/creds.conf\nSetup = {0}/setup.conf\n",
            dir.dir.path().display()
        ),
    );
    let err = one_line_error(&dir.run("procustodibus-broker", &[]));
    assert!(
        err.contains(&format!(
            "no credentials file at {}/creds.conf",
            dir.dir.path().display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "no setup file at {}/setup.conf",
            dir.dir.path().display()
        )),
        "{err}"
    );
}

#[test]
fn credentials_file_that_is_a_directory() {
    let dir = BrokerDir::new();
    dir.write("broker.conf", &with_pipes(""));
    std::fs::create_dir(dir.credentials()).expect("mkdir");
    let want = format!(
        "{}: is a directory, not a file",
        dir.credentials().display()
    );
    assert_eq!(one_line_error(&dir.run("procustodibus-broker", &[])), want);
    assert_eq!(
        one_line_error(&dir.run("procustodibus-broker-credentials", &[])),
        want
    );
}

/// Whether `setpriv` (util-linux) is there to drop privileges.
fn have_setpriv() -> bool {
    Command::new("setpriv")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn credentials_file_the_broker_may_not_read() {
    let dir = BrokerDir::new();
    dir.write("broker.conf", &with_pipes(""));
    let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    dir.write(
        "broker-credentials.conf",
        &format!("[Broker.Credentials]\nPrivateKey = {key}\n"),
    );
    let set_mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    set_mode(dir.dir.path(), 0o755);
    set_mode(&dir.config(), 0o644);
    set_mode(&dir.credentials(), 0o600);
    let as_root = std::fs::metadata(dir.credentials()).expect("stat").uid() == 0;
    let mut command = if as_root {
        assert!(
            have_setpriv(),
            "setpriv (util-linux) is needed to run the broker as nobody"
        );
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        c.arg(binary("procustodibus-broker"));
        c
    } else {
        // Not root: a 0600 file of our own is readable; take the read bit away instead.
        set_mode(&dir.credentials(), 0o200);
        Command::new(binary("procustodibus-broker"))
    };
    command
        .arg("--config")
        .arg(dir.config())
        .current_dir(dir.dir.path())
        .env("STATE_DIRECTORY", dir.path("state"))
        .env_remove("PROCUSTODIBUS_CONF")
        .env_remove("PROCUSTODIBUS_LOGGING_LEVEL")
        .stdin(Stdio::null());
    let out = run_with_timeout(command, Duration::from_secs(30));
    let err = one_line_error(&out);
    assert_eq!(
        err,
        format!(
            "{}: cannot read: Permission denied (os error 13)",
            dir.credentials().display()
        )
    );
}

#[test]
fn garbage_credentials_file() {
    let dir = BrokerDir::new();
    dir.write("broker.conf", &with_pipes(""));
    let cred = dir.credentials().display().to_string();
    let cases: &[(&str, String)] = &[
        (
            "# broker-credentials.conf\n[Broker.Credentials]\nPublicKey = x\nPrivateKey = not base64 at all!\n",
            format!("{cred} line 4: PrivateKey is not the base64 of a 32-byte Ed25519 key"),
        ),
        (
            // Valid base64, but of 3 bytes.
            "[Broker.Credentials]\nPrivateKey = AAAA\n",
            format!("{cred} line 2: PrivateKey is not the base64 of a 32-byte Ed25519 key"),
        ),
        (
            "[Broker.Credentials]\nPublicKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nPrivateKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            format!("{cred} line 2: PublicKey does not match PrivateKey; run setup again with a new broker-setup.conf"),
        ),
        // Stray text is never quoted (it may be a pasted key).
        ("just some text\n", format!("{cred} line 1: not a valid line here (not shown, it may hold a secret); expected `PrivateKey = <base64 key>` or `PublicKey = <base64 key>` under [Broker.Credentials]")),
        ("# only a comment\n", format!("{cred}: no [Broker.Credentials] section with a PrivateKey")),
        ("[Broker.Credentials]\nPublicKey = x\n", format!("{cred} line 1: [Broker.Credentials] has no PrivateKey")),
    ];
    for (text, want) in cases {
        dir.write("broker-credentials.conf", text);
        assert_eq!(
            &one_line_error(&dir.run("procustodibus-broker", &[])),
            want,
            "for {text:?}"
        );
    }
    std::fs::write(dir.credentials(), b"\x00\x01\x02\xff\xfe binary").expect("write");
    assert_eq!(
        one_line_error(&dir.run("procustodibus-broker", &[])),
        format!("{cred}: is not UTF-8 text")
    );
}

#[test]
fn garbage_setup_file() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(&sim.url(), "");
    let setup = dir.setup().display().to_string();
    std::fs::write(dir.setup(), b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8").expect("write");
    let want = format!("{setup}: is not UTF-8 text");
    assert_eq!(one_line_error(&dir.run("procustodibus-broker", &[])), want);
    assert_eq!(
        one_line_error(&dir.run("procustodibus-broker-credentials", &[])),
        want
    );
    dir.write("broker-setup.conf", "Code = abc\n[Broker]\nBroker = x\n");
    assert_eq!(
        one_line_error(&dir.run("procustodibus-broker", &[])),
        format!("{setup}: no [Broker.Setup] section with a Code")
    );
    dir.write(
        "broker-setup.conf",
        "[Broker.Setup]\nExpires = 2099-01-01T00:00:00Z\n",
    );
    assert_eq!(
        one_line_error(&dir.run("procustodibus-broker", &[])),
        format!("{setup} line 1: [Broker.Setup] has no Code")
    );
    dir.write(
        "broker-setup.conf",
        "[Broker.Setup]\nCode = abc\nExpires = next tuesday\n",
    );
    assert_eq!(
        one_line_error(&dir.run("procustodibus-broker", &[])),
        format!(
            "{setup} line 3: Expires is not a UTC time like 2022-01-04T12:34:56Z (the value is not shown: this file holds the setup code)"
        )
    );
    // None of that reached the API, and the broken setup file is left for a person to see.
    assert!(sim.setups().is_empty());
    assert!(dir.setup().is_file());
    assert!(!dir.credentials().exists());
}

#[test]
fn config_path_that_does_not_exist_or_is_a_directory() {
    let dir = BrokerDir::new();
    let missing = dir.path("nope/broker.conf");
    let mut command = Command::new(binary("procustodibus-broker"));
    command
        .arg("--config")
        .arg(&missing)
        .current_dir(dir.dir.path())
        .env("STATE_DIRECTORY", dir.path("state"))
        .env_remove("PROCUSTODIBUS_CONF");
    let out = run_with_timeout(command, Duration::from_secs(30));
    assert_eq!(
        one_line_error(&out),
        format!("{}: config file does not exist", missing.display())
    );

    let mut command = Command::new(binary("procustodibus-broker"));
    command
        .arg("--config")
        .arg(dir.dir.path())
        .arg("--test")
        .env_remove("PROCUSTODIBUS_CONF");
    let out = run_with_timeout(command, Duration::from_secs(30));
    assert_eq!(
        one_line_error(&out),
        format!("{}: config file is not a file", dir.dir.path().display())
    );
}

#[test]
fn procustodibus_conf_naming_a_missing_file_is_an_error_not_a_fallback() {
    let dir = BrokerDir::new();
    // A usable ./broker.conf in the working directory must not be picked instead.
    dir.write("broker.conf", &with_pipes(""));
    let missing = dir.path("elsewhere/broker.conf");
    let mut command = Command::new(binary("procustodibus-broker"));
    command
        .current_dir(dir.dir.path())
        .env("PROCUSTODIBUS_CONF", &missing)
        .env_remove("PROCUSTODIBUS_LOGGING_LEVEL")
        .stdin(Stdio::null());
    let out = run_with_timeout(command, Duration::from_secs(30));
    assert_eq!(
        one_line_error(&out),
        format!("{}: config file does not exist", missing.display())
    );
}

/// Sets up a broker at a fresh simulator with two alerts waiting and one file pipe to `file`,
/// runs it once and returns the run.
fn run_into_file(file: &str) -> Output {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        &format!("[Pipe.Out]\nFrom = alerts\nTo = file\nFile = {file}\n"),
    );
    dir.write_setup(&sim, "file-errors");
    sim.enqueue_generated("alerts", 2).expect("enqueue");
    dir.run("procustodibus-broker", &[])
}

#[test]
fn file_sink_in_a_missing_directory_fails_the_run() {
    let dir = BrokerDir::new();
    let file = dir.path("no/such/dir/out.jsonl");
    let out = run_into_file(&file.display().to_string());
    assert!(!stderr(&out).contains("panicked"), "{}", describe(&out));
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        out.status.code().is_some(),
        "exited, not killed: {}",
        describe(&out)
    );
    let text = stdout(&out) + &stderr(&out);
    let want = format!(
        "pipe Out: cannot open {}: directory {} does not exist",
        file.display(),
        dir.path("no/such/dir").display()
    );
    assert!(
        text.lines().any(|l| l.contains(&want)),
        "{want}\n{}",
        describe(&out)
    );
    assert!(!dir.path("no").exists(), "no directory created");
}

#[test]
fn file_sink_on_a_full_device_fails_the_run() {
    let out = run_into_file("/dev/full");
    assert!(!stderr(&out).contains("panicked"), "{}", describe(&out));
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        out.status.code().is_some(),
        "exited, not killed: {}",
        describe(&out)
    );
    let text = stdout(&out) + &stderr(&out);
    let want = "pipe Out: cannot write /dev/full: no space left on device";
    assert!(
        text.lines().any(|l| l.contains(want)),
        "{want}\n{}",
        describe(&out)
    );
}

#[test]
fn credentials_file_in_a_missing_directory_fails_setup_and_keeps_the_code() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let creds = dir.path("missing/creds.conf");
    dir.write(
        "broker.conf",
        &format!(
            "[Broker]\nBroker = {BROKER_ID}\nApi = {}\nTimeout = 3\nCredentials = {}\n",
            sim.url(),
            creds.display()
        ),
    );
    dir.write_setup(&sim, "burnt-code");
    let err = one_line_error(&dir.run("procustodibus-broker", &[]));
    assert!(
        err.starts_with(&format!(
            "cannot write credentials file {}: ",
            creds.display()
        )),
        "{err}"
    );
    assert!(
        dir.setup().is_file(),
        "the setup file stays when the credentials were not written"
    );
    assert!(!creds.exists());
    assert!(
        sim.setups().is_empty(),
        "the code was spent: {:?}",
        sim.setups()
    );
    // Once the directory exists, the same setup file works.
    std::fs::create_dir(dir.path("missing")).unwrap();
    let out = dir.run("procustodibus-broker", &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(creds.is_file());
    assert!(!dir.setup().exists());
}

#[test]
fn plain_http_to_a_host_that_is_not_loopback_is_refused() {
    let (err, path) = config_error(&format!(
        "[Broker]\nBroker = {BROKER_ID}\nApi = http://api.custodib.us\n"
    ));
    assert_eq!(
        err,
        format!("{path} line 3: Api: http:// would send the session token, the signed challenge and the setup code in clear text; use https:// (http:// is only for a loopback address such as 127.0.0.1, ::1 or localhost)")
    );
}

#[test]
fn a_nul_byte_in_any_value_is_an_error_naming_the_line() {
    let dir = BrokerDir::new();
    for (line, text) in [
        (
            9,
            with_pipes("[Pipe.P]\nFrom = alerts\nTo = file\nFile = /tmp/out\0.jsonl\n"),
        ),
        (
            9,
            with_pipes("[Pipe.P]\nFrom = alerts\nTo = syslog\nSocket = /dev/log\0x\n"),
        ),
        (2, format!("[Broker]\nBroker = {BROKER_ID}\0\n")),
        (
            3,
            format!("[Broker]\nBroker = {BROKER_ID}\n# a comment \0\n"),
        ),
    ] {
        let (err, path) = config_error(&text);
        assert_eq!(
            err,
            format!(
                "{path} line {line}: has a NUL byte, which no key or value can hold (not shown)"
            )
        );
    }
    // The same for the companion files.
    dir.write("broker.conf", &with_pipes(""));
    dir.write("broker-setup.conf", "[Broker.Setup]\nCode = a\0b\n");
    let out = dir.run("procustodibus-broker", &["--check-config"]);
    assert_eq!(
        one_line_error(&out),
        format!(
            "{} line 2: has a NUL byte, which no key or value can hold (not shown)",
            dir.setup().display()
        )
    );
}

/// A pipe `Net` of each network sink with its required keys and `tls`, the TLS keys to check.
fn network_pipes(tls: &str) -> Vec<(&'static str, String)> {
    let http = |to: &str, keys: &str| format!("[Pipe.Net]\nFrom = alerts\nTo = {to}\n{keys}{tls}");
    vec![
        (
            "splunk",
            http("splunk", "Url = https://127.0.0.1:9\nToken = t\n"),
        ),
        (
            "elasticsearch",
            http("elasticsearch", "Url = https://127.0.0.1:9\nApiKey = k\n"),
        ),
        ("loki", http("loki", "Url = https://127.0.0.1:9\n")),
        (
            "sentinel",
            http(
                "sentinel",
                "Endpoint = https://127.0.0.1:9\nDcr = dcr-1\nStream = Custom-P\nTenantId = 72f988bf-86f1-41af-91ab-2d7cd011db47\n\
                 ClientId = 0f2d3c4b-1a2b-4c5d-8e9f-0a1b2c3d4e5f\nClientSecret = s\nAuthorityHost = https://127.0.0.1:9\n",
            ),
        ),
        (
            "syslog",
            http("syslog", "Socket = 127.0.0.1:9\nProtocol = relp-tls\n"),
        ),
    ]
}

#[test]
fn a_missing_or_malformed_tls_file_is_named_at_check_config_for_every_network_sink() {
    let dir = BrokerDir::new();
    write_credentials(&dir.credentials(), [7; 32]);
    let certs = rsyslog::Certificates::generate(&dir.path(""));
    let secret = "-----BEGIN PRIVATE KEY-----\nSECRET-KEY-LINE\n-----END PRIVATE KEY-----\n";
    dir.write("not-a-cert.pem", secret);
    let (ca, cert, key) = (
        certs.ca.display().to_string(),
        certs.client_cert.display().to_string(),
        certs.client_key.display().to_string(),
    );
    let missing = dir.path("missing-ca.pem").display().to_string();
    let not_a_cert = dir.path("not-a-cert.pem").display().to_string();
    let config = dir.config().display().to_string();
    // The line of `key` in the config's text.
    let line_of = |text: &str, key: &str| {
        1 + text
            .lines()
            .position(|l| l.starts_with(&format!("{key} =")))
            .unwrap()
    };
    for (sink, good) in network_pipes(&format!("CA = {ca}\n")) {
        dir.write_config("http://127.0.0.1:9", &good);
        let run = dir.run("procustodibus-broker", &["--check-config"]);
        assert!(run.status.success(), "{sink}: {}", describe(&run));
    }
    let cases = [
        (
            format!("CA = {missing}\n"),
            "CA",
            format!("{missing}: no such file or directory"),
        ),
        (
            format!("CA = {not_a_cert}\n"),
            "CA",
            format!("{not_a_cert}: not a valid PEM file of a certificate"),
        ),
    ];
    for (tls, key_name, reason) in &cases {
        for (sink, pipe) in network_pipes(tls) {
            dir.write_config("http://127.0.0.1:9", &pipe);
            let text = std::fs::read_to_string(dir.config()).unwrap();
            let run = dir.run("procustodibus-broker", &["--check-config"]);
            let error = one_line_error(&run);
            let line = line_of(&text, key_name);
            assert_eq!(
                error,
                format!("{config} line {line}: pipe Net: {key_name}: {reason}"),
                "{sink}"
            );
            assert!(!error.contains("SECRET"), "{error}");
        }
    }

    // The client certificate of RELP over TLS: a key that is not one, a key of another
    // certificate.
    let syslog = |extra: &str| {
        format!(
            "[Pipe.Net]\nFrom = alerts\nTo = syslog\nSocket = 127.0.0.1:9\nProtocol = relp-tls\n\
             CA = {ca}\nCert = {cert}\n{extra}"
        )
    };
    for (extra, key_name, reason) in [
        (
            format!("Key = {not_a_cert}\n"),
            "Key",
            format!("{not_a_cert}: not a valid PEM file of a private key"),
        ),
        (
            format!("Key = {}\n", certs.key.display()),
            "Cert",
            format!(
                "{cert} and Key {} do not make a client certificate",
                certs.key.display()
            ),
        ),
    ] {
        dir.write_config("http://127.0.0.1:9", &syslog(&extra));
        let text = std::fs::read_to_string(dir.config()).unwrap();
        let run = dir.run("procustodibus-broker", &["--check-config"]);
        let error = one_line_error(&run);
        let line = line_of(&text, key_name);
        assert!(
            error.starts_with(&format!(
                "{config} line {line}: pipe Net: {key_name}: {reason}"
            )),
            "{error}"
        );
        assert!(!error.contains("SECRET"), "{error}");
    }
    dir.write_config("http://127.0.0.1:9", &syslog(&format!("Key = {key}\n")));
    let run = dir.run("procustodibus-broker", &["--check-config"]);
    assert!(run.status.success(), "{}", describe(&run));
}
