//! The HTTP sink layer (`broker_sinks::util::http`) end to end, through the webhook sink of the
//! `custom-broker` binary and receivers of the generic harness (`broker_tests::http_receiver`):
//! `http://` only to loopback (at `--check-config`, without network), secret files checked at
//! `--check-config` and named without their content, no proxy unless `Proxy` names one, a
//! receiver's echo of the token masked in the log and the dead-letter file, and `--test-pipe`
//! printing what the receiver answered.
//!
//! The binaries come from cargo's target directory (`cargo build --workspace --bins`).

use std::process::Output;
use std::time::Duration;

use broker_tests::http_receiver::{Action, HttpReceiver, Reply, Request};
use broker_tests::*;

const CUSTOM: &str = "custom-broker";
/// The token of the header file: it must never show in a log, a message or a dead letter.
const TOKEN: &str = "SECRET-FILE-TOKEN-4f2a";
/// An API address for the runs that never call the API (`--check-config`, `--test-pipe`).
const NO_API: &str = "http://127.0.0.1:9";

/// Standard output and error together.
fn output(run: &Output) -> String {
    format!("{}{}", stdout(run), stderr(run))
}

/// A webhook pipe `Hook` to `url` with the extra keys.
fn hook(url: &str, extra: &str) -> String {
    format!("[Pipe.Hook]\nFrom = alerts\nTo = webhook\nUrl = {url}\n{extra}\n")
}

/// A broker directory with credentials (which `--check-config` checks too).
fn broker_dir() -> BrokerDir {
    let dir = BrokerDir::new();
    write_credentials(&dir.credentials(), [7; 32]);
    dir
}

/// Writes the header file `name` in `dir` with an `Authorization` header holding [`TOKEN`].
fn header_file(dir: &BrokerDir, name: &str) -> String {
    dir.write(name, &format!("Authorization: Bearer {TOKEN}\n"));
    dir.path(name).display().to_string()
}

#[test]
fn plain_http_to_a_host_not_on_this_machine_is_refused_at_check_config() {
    let dir = broker_dir();
    dir.write_config(NO_API, &hook("http://hooks.example.com/in/s3cret-path", ""));
    let run = dir.run(CUSTOM, &["--check-config"]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let text = output(&run);
    assert!(
        text.contains(
            "pipe Hook: Url: http:// is only for a loopback host (localhost, 127.0.0.0/8, \
             [::1]): use https://"
        ),
        "{}",
        describe(&run)
    );
    assert!(!text.contains("s3cret"), "{}", describe(&run));

    // https:// anywhere, http:// to this machine: fine, and checked without any connection.
    for url in ["https://hooks.example.com/in", "http://127.0.0.1:9/in"] {
        dir.write_config(NO_API, &hook(url, ""));
        let run = dir.run(CUSTOM, &["--check-config"]);
        assert!(run.status.success(), "{url}: {}", describe(&run));
    }
}

#[test]
fn a_header_file_missing_or_unreadable_is_named_at_check_config_without_its_content() {
    let dir = broker_dir();
    let good = header_file(&dir, "token.header");
    dir.write_config(
        NO_API,
        &hook(
            "https://hooks.example.com/",
            &format!("HeaderFile = {good}"),
        ),
    );
    let run = dir.run(CUSTOM, &["--check-config"]);
    assert!(run.status.success(), "{}", describe(&run));
    assert!(!output(&run).contains(TOKEN), "{}", describe(&run));

    dir.write("bad.header", &format!("{TOKEN}\n"));
    let missing = dir.path("missing.header");
    let cases = [
        (
            missing.clone(),
            format!(
                "pipe Hook: HeaderFile: cannot read {}: no such file or directory",
                missing.display()
            ),
        ),
        (
            dir.path("bad.header"),
            format!(
                "pipe Hook: HeaderFile: {}: expected `Name: value`",
                dir.path("bad.header").display()
            ),
        ),
        (
            dir.path("spool-not-a-file"),
            format!(
                "pipe Hook: HeaderFile: {} is not a regular file",
                dir.path("spool-not-a-file").display()
            ),
        ),
    ];
    std::fs::create_dir(dir.path("spool-not-a-file")).unwrap();
    for (path, expected) in cases {
        let extra = format!("HeaderFile = {}", path.display());
        dir.write_config(NO_API, &hook("https://hooks.example.com/", &extra));
        let run = dir.run(CUSTOM, &["--check-config"]);
        assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
        let text = output(&run);
        assert!(text.contains(&expected), "{expected}: {}", describe(&run));
        assert!(text.contains("line "), "names the line: {}", describe(&run));
        assert!(!text.contains(TOKEN), "{}", describe(&run));
    }

    unreadable_header_file_is_named(&dir, &good);
}

/// A header file the daemon's user cannot read: as root, the run is as `nobody` with the file
/// root's own (mode 0600); otherwise the file is mode 0000.
fn unreadable_header_file_is_named(dir: &BrokerDir, header: &str) {
    use std::os::unix::fs::PermissionsExt;
    const NOBODY: u32 = 65534;
    let root = unsafe { libc::geteuid() } == 0;
    let mode = if root { 0o600 } else { 0o000 };
    std::fs::set_permissions(header, std::fs::Permissions::from_mode(mode)).unwrap();
    dir.write_config(
        NO_API,
        &hook(
            "https://hooks.example.com/",
            &format!("HeaderFile = {header}"),
        ),
    );
    let run = if root {
        // Everything but the header file belongs to nobody.
        chown_recursive(dir.dir.path(), NOBODY, NOBODY);
        std::os::unix::fs::chown(header, Some(0), Some(0)).unwrap();
        dir.spawn_as(NOBODY, NOBODY, CUSTOM, &["--check-config"])
            .finish(Duration::from_secs(30))
    } else {
        dir.run(CUSTOM, &["--check-config"])
    };
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let expected = format!("pipe Hook: HeaderFile: cannot read {header}: permission denied");
    assert!(
        output(&run).contains(&expected),
        "{expected}: {}",
        describe(&run)
    );
    assert!(!output(&run).contains(TOKEN), "{}", describe(&run));
}

/// Runs `--test-pipe Hook` with the proxy variables set to `proxy`.
fn test_pipe_with_proxy_variables(dir: &BrokerDir, proxy: &RecordingProxy) -> Output {
    let mut command = dir.command(CUSTOM);
    command.args(["--test-pipe", "Hook"]);
    proxy.set_in(&mut command);
    run_with_timeout(command, Duration::from_secs(60))
}

#[test]
fn proxy_variables_are_used_only_when_proxy_says_so() {
    // A host that resolves nowhere: reached directly, the request fails without a connection
    // anywhere; through a proxy, the proxy gets the connection (and never answers).
    let url = "https://hooks.example.invalid/hook";
    let proxy = RecordingProxy::start();
    let dir = BrokerDir::new();

    dir.write_config(NO_API, &hook(url, "Timeout = 3"));
    let run = test_pipe_with_proxy_variables(&dir, &proxy);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert!(
        output(&run).contains("pipe Hook: cannot POST to https://hooks.example.invalid"),
        "{}",
        describe(&run)
    );
    assert_eq!(proxy.connections(), 0, "no Proxy key: {}", describe(&run));

    dir.write_config(NO_API, &hook(url, "Timeout = 3\nProxy = environment"));
    let run = test_pipe_with_proxy_variables(&dir, &proxy);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert!(
        proxy.connections() >= 1,
        "Proxy = environment: {}",
        describe(&run)
    );

    // A named proxy, the variables unset.
    dir.write_config(
        NO_API,
        &hook(url, &format!("Timeout = 3\nProxy = {}", proxy.url())),
    );
    let run = dir.run(CUSTOM, &["--test-pipe", "Hook"]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert!(proxy.connections() >= 1, "Proxy = URL: {}", describe(&run));
}

/// A receiver that echoes the `Authorization` header in its answers, plain and in base64, and
/// refuses (400) an event whose body holds `refuse`.
fn echoing_receiver(refuse: Option<String>) -> HttpReceiver {
    HttpReceiver::start_tls(move |request: &Request| {
        use base64::Engine as _;
        let auth = request.header("authorization").unwrap_or_default();
        let token = auth.split_whitespace().last().unwrap_or_default();
        let b64 = base64::engine::general_purpose::STANDARD.encode(token);
        let refused = refuse
            .as_ref()
            .is_some_and(|r| request.text().contains(r.as_str()));
        let status = if refused { 400 } else { 202 };
        let verdict = if refused { "bad event" } else { "Success" };
        Action::Reply(Reply::json(
            status,
            &serde_json::json!({"text": verdict, "auth": auth, "b64": b64}),
        ))
    })
}

#[test]
fn a_token_echoed_by_the_receiver_is_masked_in_the_log_and_the_dead_letters() {
    let sim = simulator(Default::default());
    let alerts = sim.enqueue_generated("alerts", 4).unwrap();
    let bad: serde_json::Value = serde_json::from_str(&alerts[1]).unwrap();
    let bad_id = bad["id"].as_str().unwrap().to_string();
    let receiver = echoing_receiver(Some(format!("\"id\":\"{bad_id}\"")));
    let dir = BrokerDir::new();
    let header = header_file(&dir, "token.header");
    let extra = format!(
        "HeaderFile = {header}\nCA = {}\nBatch = 1",
        receiver.ca_path().display()
    );
    dir.write_config(&sim.url(), &hook(&receiver.url("/hook"), &extra));
    let public = write_credentials(&dir.credentials(), [7; 32]);
    sim.add_key(BROKER_ID, public);

    let run = dir.run(CUSTOM, &["-vv"]);
    let requests = receiver.requests();
    assert!(
        requests
            .iter()
            .all(|(r, _)| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))),
        "the header file's header goes with every request"
    );
    let taken = requests.iter().filter(|(_, s)| *s == Some(202)).count();
    assert_eq!(taken, 3, "{}", describe(&run));
    let dead = dir.lines("spool/dead-letter.jsonl");
    assert_eq!(dead.len(), 1, "{dead:?}\n{}", describe(&run));
    assert!(dead[0].contains(&bad_id), "{dead:?}");
    assert!(dead[0].contains("answered 400 Bad Request"), "{dead:?}");
    assert!(dead[0].contains(r#"\"auth\":\"***\""#), "{dead:?}");
    assert!(dead[0].contains(r#"\"b64\":\"***\""#), "{dead:?}");

    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(TOKEN);
    for secret in [TOKEN, "4f2a", b64.as_str()] {
        assert!(
            !output(&run).contains(secret),
            "{secret}: {}",
            describe(&run)
        );
        assert!(!dead.join("\n").contains(secret), "{secret}: {dead:?}");
    }
}

#[test]
fn test_pipe_prints_what_the_receiver_answered() {
    let receiver = echoing_receiver(None);
    let dir = BrokerDir::new();
    let header = header_file(&dir, "token.header");
    let extra = format!(
        "HeaderFile = {header}\nCA = {}",
        receiver.ca_path().display()
    );
    dir.write_config(NO_API, &hook(&receiver.url("/hook"), &extra));
    let run = dir.run(CUSTOM, &["--test-pipe", "hook"]);
    assert!(run.status.success(), "{}", describe(&run));
    let answered = lines_containing(&stdout(&run), "pipe Hook: the receiver answered ");
    assert_eq!(
        answered,
        [
            r#"pipe Hook: the receiver answered 202 Accepted: {"auth":"***","b64":"***","text":"Success"}"#
        ],
        "{}",
        describe(&run)
    );
    assert!(
        stdout(&run).contains("sent test event to pipe Hook"),
        "{}",
        describe(&run)
    );
    assert!(!output(&run).contains(TOKEN), "{}", describe(&run));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].0.text().contains("\"type\":\"test\""));

    // A refusal: printed too, and the run fails.
    let busy = HttpReceiver::start_tls(|_| {
        Action::Reply(Reply::text(503, "busy, try later").header("retry-after", "1"))
    });
    let extra = format!("CA = {}", busy.ca_path().display());
    dir.write_config(NO_API, &hook(&busy.url("/hook"), &extra));
    let run = dir.run(CUSTOM, &["--test-pipe", "Hook"]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert!(
        stdout(&run)
            .contains("pipe Hook: the receiver answered 503 Service Unavailable: busy, try later"),
        "{}",
        describe(&run)
    );
}
