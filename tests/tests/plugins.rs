//! Sinks as plugins (issue 6): which sinks each binary registers (`--list-sinks`, the unknown
//! `To` error), the custom build's webhook sink end to end against the simulator and a local
//! HTTPS receiver with a test CA (batches, headers, a 503 burst, a 400, certificate checks; issue
//! 10 item 19: a receiver that refuses every request, proxy variables with a loopback Url, a
//! token echoed in every form, `Retry-After`), and the example programs of `examples/`.
//!
//! The binaries come from cargo's target directory: `custom-broker` with the other binaries
//! (`cargo build --workspace --bins`), the examples from `target/debug/examples/`, which
//! `cargo test --workspace` builds before it runs any test (or `cargo build -p broker-examples
//! --examples`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use broker_tests::https::{HttpsReceiver, Received};
use broker_tests::*;

const STOCK: &str = "procustodibus-broker";
const CUSTOM: &str = "custom-broker";
/// A secret header value: it must never show in a log, a message or the dead-letter file.
const TOKEN: &str = "Splunk 6f1c-SECRET-TOKEN-7d2e";

/// Gives the broker in `dir` credentials that `sim` knows. (The stock credentials tool would
/// refuse a config whose pipes name a sink it lacks; the custom daemon runs setup itself.)
fn give_credentials(dir: &BrokerDir, sim: &broker_sim::Simulator) {
    let public = write_credentials(&dir.credentials(), [7; 32]);
    sim.add_key(BROKER_ID, public);
}

/// An example program, from `target/debug/examples/`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target directory");
    let path = dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p broker-examples --examples` first (`cargo test \
         --workspace` builds the examples before it runs the tests)",
        path.display()
    );
    path
}

/// Runs `binary --list-sinks` with no config anywhere, in an empty directory.
fn list_sinks(binary_name: &str) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(binary(binary_name));
    command
        .arg("--list-sinks")
        .current_dir(dir.path())
        .env_remove("PROCUSTODIBUS_CONF")
        .env_remove("PROCUSTODIBUS_LOGGING_LEVEL")
        .stdin(Stdio::null());
    run_with_timeout(command, Duration::from_secs(10))
}

/// The sink names of `--list-sinks` output: the lines that are not indented.
fn sink_names(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with(' ')).collect()
}

/// The `(key, help)` pairs listed under `sink`.
fn sink_keys(text: &str, sink: &str) -> Vec<(String, String)> {
    text.lines()
        .skip_while(|l| *l != sink)
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .map(|l| {
            let (key, help) = l.trim().split_once("  ").expect("key and help");
            (key.to_string(), help.trim().to_string())
        })
        .collect()
}

#[test]
fn list_sinks_shows_the_sinks_each_binary_has() {
    let stock = list_sinks(STOCK);
    assert_eq!(stock.status.code(), Some(0), "{}", describe(&stock));
    assert_eq!(stderr(&stock), "");
    let text = stdout(&stock);
    assert_eq!(sink_names(&text), stock_sinks_and(&[]), "{text}");
    assert_eq!(
        sink_keys(&text, "file"),
        [(
            "File".to_string(),
            "path of the file that gets one JSON line per event (required)".to_string()
        )]
    );
    let syslog: Vec<String> = sink_keys(&text, "syslog")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for key in [
        "Socket",
        "Protocol",
        "Format",
        "MaxSize",
        "Window",
        "CA",
        "ServerName",
    ] {
        assert!(syslog.iter().any(|k| k == key), "{key}: {text}");
    }

    let custom = list_sinks(CUSTOM);
    assert_eq!(custom.status.code(), Some(0), "{}", describe(&custom));
    let text = stdout(&custom);
    assert_eq!(sink_names(&text), stock_sinks_and(&["webhook"]), "{text}");
    let webhook = sink_keys(&text, "webhook");
    let keys: Vec<&str> = webhook.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "Url",
            "Header (repeatable)",
            "Batch",
            "Body",
            "Timeout",
            "CA",
            "Proxy",
            "HeaderFile (repeatable)"
        ],
        "{text}"
    );
    assert!(webhook.iter().all(|(_, help)| !help.is_empty()), "{text}");
    // The stock sinks are listed alike in both.
    let stock = stdout(&stock);
    for sink in broker_sinks::STOCK_SINK_NAMES {
        assert_eq!(sink_keys(&text, sink), sink_keys(&stock, sink), "{sink}");
    }
}

#[test]
fn an_unknown_to_names_the_sinks_of_each_binary() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        &file_pipe("Fine", "alerts", None, &dir.path("f.jsonl")),
    );
    give_credentials(&dir, &sim);
    for (binary_name, to, has) in [
        (STOCK, "nosuch", stock_sinks_listed(&[])),
        (CUSTOM, "nosuch", stock_sinks_listed(&["webhook"])),
        // The extra sink never leaks into the shipped daemon.
        (STOCK, "webhook", stock_sinks_listed(&[])),
    ] {
        dir.write_config(
            &sim.url(),
            &format!("[Pipe.Odd]\nFrom = alerts\nTo = {to}\nUrl = https://127.0.0.1:9/\n"),
        );
        for args in [&[][..], &["--check-config"][..]] {
            let run = dir.run(binary_name, args);
            assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
            let err = stderr(&run);
            assert!(
                err.contains(&format!("line 9: pipe Odd: To: unknown sink \"{to}\"")),
                "{binary_name} {args:?}: {err}"
            );
            assert_eq!(
                sinks_listed(&err),
                Some(has.as_str()),
                "{binary_name}: {err}"
            );
        }
    }
    // The custom build takes the same config with its own sink.
    let run = dir.run(CUSTOM, &["--check-config"]);
    let config = dir.config();
    assert!(run.status.success(), "{}", describe(&run));
    assert!(
        stdout(&run).starts_with(&format!("config OK: {}", config.display())),
        "{}",
        describe(&run)
    );
}

/// A webhook pipe section.
fn webhook_pipe(name: &str, from: &str, url: &str, extra: &str, ca: &std::path::Path) -> String {
    format!(
        "[Pipe.{name}]\nFrom = {from}\nTo = webhook\nUrl = {url}\nCA = {}\n{extra}\n",
        ca.display()
    )
}

/// A simulator, an HTTPS receiver with a test CA, and a broker with credentials and one pipe
/// `Hook` that POSTs the alerts to the receiver's `path`, with the sink keys `extra`.
fn hook_broker(path: &str, extra: &str) -> (broker_sim::Simulator, HttpsReceiver, BrokerDir) {
    let sim = simulator(Default::default());
    let receiver = HttpsReceiver::start();
    let dir = BrokerDir::new();
    let pipe = webhook_pipe(
        "Hook",
        "alerts",
        &receiver.url(path),
        extra,
        &receiver.certs.ca,
    );
    dir.write_config(&sim.url(), &pipe);
    give_credentials(&dir, &sim);
    (sim, receiver, dir)
}

/// The `id` of a raw event.
fn id_of(raw: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(raw).expect("event JSON");
    value["id"].as_str().expect("string id").to_string()
}

/// Checks that a run's output and the spool directory's files never show the token.
fn assert_no_secret(run: &Output, dir: &BrokerDir) {
    assert_none_of(run, dir, &["SECRET"]);
}

/// Checks that none of `secrets` is in a run's output or the dead-letter file.
fn assert_none_of(run: &Output, dir: &BrokerDir, secrets: &[&str]) {
    let dead = dead_letters(dir).join("\n");
    for secret in secrets {
        assert!(!stdout(run).contains(secret), "{secret}: {}", describe(run));
        assert!(!stderr(run).contains(secret), "{secret}: {}", describe(run));
        assert!(!dead.contains(secret), "{secret}: {dead}");
    }
}

/// The lines of the dead-letter file (none when it does not exist).
fn dead_letters(dir: &BrokerDir) -> Vec<String> {
    dir.lines("spool/dead-letter.jsonl")
}

#[test]
fn webhook_delivers_every_event_batched_with_the_headers() {
    let sim = simulator(Default::default());
    let receiver = HttpsReceiver::start();
    let dir = BrokerDir::new();
    let pipes = format!(
        "{}{}",
        webhook_pipe(
            "Ndjson",
            "alerts",
            &receiver.url("/services/collector/raw"),
            &format!("Header = Authorization: {TOKEN}\nHeader = X-Source: broker\nHeader = X-Source: test\nBatch = 4\n"),
            &receiver.certs.ca,
        ),
        webhook_pipe(
            "Array",
            "log_authn",
            &receiver.url("/array?channel=1"),
            "Body = array\nBatch = 2\nTimeout = 5\n",
            &receiver.certs.ca,
        ),
    );
    dir.write_config(&sim.url(), &pipes);
    give_credentials(&dir, &sim);
    let alerts = sim.enqueue_generated("alerts", 10).unwrap();
    let logins = sim.enqueue_generated("log_authn", 5).unwrap();

    let run = dir.run(CUSTOM, &["-vv"]);
    assert!(run.status.success(), "{}", describe(&run));
    assert_no_secret(&run, &dir);

    let ndjson = receiver.received_at("/services/collector/raw");
    let sizes: Vec<usize> = ndjson.iter().map(|r| r.lines().len()).collect();
    assert_eq!(sizes, [4, 4, 2]);
    assert!(ndjson.iter().all(Received::taken));
    assert_eq!(
        receiver.taken_lines("/services/collector/raw"),
        expected_lines(&alerts)
    );
    for request in &ndjson {
        assert_eq!(request.header("authorization"), Some(TOKEN));
        assert_eq!(request.header_values("x-source"), ["broker", "test"]);
        assert_eq!(request.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(
            request.header("user-agent"),
            Some("procustodibus-broker/2.0.0")
        );
        assert!(request.body.ends_with('\n'));
    }

    let arrays = receiver.received_at("/array?channel=1");
    let expected = expected_lines(&logins);
    let bodies: Vec<String> = arrays.iter().map(|r| r.body.clone()).collect();
    let wanted: Vec<String> = expected
        .chunks(2)
        .map(|c| format!("[{}]", c.join(",")))
        .collect();
    assert_eq!(bodies, wanted);
    for request in &arrays {
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("authorization"), None);
    }
    assert_eq!(sim.queue_len("alerts") + sim.queue_len("log_authn"), 0);
}

#[test]
fn a_503_burst_is_retried_and_nothing_is_lost_or_duplicated() {
    let (sim, receiver, dir) = hook_broker(
        "/hook",
        &format!("Header = Authorization: {TOKEN}\nBatch = 5\n"),
    );
    // The first request goes through, then the receiver is overloaded for three requests.
    receiver.script(&[200, 503, 503, 503]);
    let alerts = sim.enqueue_generated("alerts", 12).unwrap();

    let mut broker = dir.spawn(CUSTOM, &["--loop", "1"]);
    let lines = receiver.wait_for_lines("/hook", alerts.len(), Duration::from_secs(30));
    // A moment for a duplicate, if any, to arrive.
    std::thread::sleep(Duration::from_millis(500));
    let run = broker.terminate(Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    assert_eq!(lines.len(), alerts.len(), "{}", describe(&run));
    assert_eq!(
        receiver.taken_lines("/hook"),
        expected_lines(&alerts),
        "each event once, in order"
    );

    let statuses: Vec<u16> = receiver.received().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [200, 503, 503, 503, 200, 200],
        "{}",
        describe(&run)
    );
    let requests = receiver.received();
    // Each retry sends the same request again: events 5 to 9.
    assert_eq!(requests[1].body, requests[4].body);
    let log = stdout(&run);
    let retries = lines_containing(&log, "pipe Hook: https://127.0.0.1:");
    assert_eq!(retries.len(), 3, "{log}");
    assert!(
        retries
            .iter()
            .all(|l| l.contains("answered 503 Service Unavailable") && l.contains("retrying in")),
        "{log}"
    );
    assert!(!dir.spool().join("dead-letter.jsonl").exists());
    assert_no_secret(&run, &dir);
}

#[test]
fn a_400_is_permanent_and_only_the_refused_event_is_dead_lettered() {
    let (sim, receiver, dir) = hook_broker(
        "/hook/8f3a-SECRET-PATH",
        &format!("Header = Authorization: {TOKEN}\nBatch = 3\n"),
    );
    let alerts = sim.enqueue_generated("alerts", 6).unwrap();
    let bad = id_of(&alerts[4]);
    receiver.refuse_containing(&format!("\"id\":\"{bad}\""), 400);

    let run = dir.run(CUSTOM, &[]);
    assert!(
        run.status.success(),
        "a dead letter is not a failed run: {}",
        describe(&run)
    );
    assert_no_secret(&run, &dir);

    // 0-2 taken; 3-5 refused; then one per request: 3 taken, 4 refused; then 5 taken.
    let statuses: Vec<(usize, u16)> = receiver
        .received()
        .iter()
        .map(|r| (r.lines().len(), r.status))
        .collect();
    assert_eq!(statuses, [(3, 200), (3, 400), (1, 200), (1, 400), (1, 200)]);
    let mut good = expected_lines(&alerts);
    let refused = good.remove(4);
    assert_eq!(
        receiver.taken_lines("/hook/8f3a-SECRET-PATH"),
        good,
        "every other event once"
    );

    let dead = dir.lines("spool/dead-letter.jsonl");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter: serde_json::Value = serde_json::from_str(&dead[0]).expect("dead letter JSON");
    assert_eq!(letter["pipe"], "Hook");
    assert_eq!(letter["type"], "alerts");
    assert_eq!(letter["id"], bad.as_str());
    assert!(
        dead[0].contains(&format!("\"event\":{refused}")),
        "the event's line as it is: {}",
        dead[0]
    );
    let reason = letter["reason"].as_str().expect("reason");
    assert!(reason.starts_with("https://127.0.0.1:"), "{reason}");
    assert!(reason.contains("answered 400 Bad Request"), "{reason}");
    // The receiver echoed the token and the path: masked.
    assert!(reason.contains("\"authorization\":\"***\""), "{reason}");
    assert!(!reason.contains("SECRET"), "{reason}");
    let log = stdout(&run);
    assert_eq!(
        lines_containing(&log, &format!("pipe Hook: event {bad} written to ")).len(),
        1,
        "{log}"
    );
}

#[test]
fn a_receiver_that_refuses_every_request_keeps_the_events_in_the_spool() {
    let (sim, receiver, dir) = hook_broker(
        "/hook",
        &format!("Header = Authorization: {TOKEN}\nBatch = 4\n"),
    );
    // Splunk's answer to a wrong index ("Incorrect index"): 400 to every request, one event or
    // many.
    receiver.refuse_containing("", 400);
    let alerts = sim.enqueue_generated("alerts", 10).unwrap();

    let mut broker = dir.spawn(CUSTOM, &["--loop", "1"]);
    // Three rounds of a request of 4 refused, then each of its events alone refused, each
    // logged (or, as before the fix, the spool emptied into the dead-letter file).
    let why = || lines_containing(&broker.stdout_so_far(), "refuses every request");
    let rounds = wait_until(Duration::from_secs(30), || {
        why().len() >= 3 || !dead_letters(&dir).is_empty()
    });
    assert!(dead_letters(&dir).is_empty(), "{:?}", dead_letters(&dir));
    assert!(rounds, "{}", broker.stdout_so_far());
    assert!(receiver.received().len() >= 15, "{:?}", receiver.received());
    assert!(receiver.received().iter().all(|r| !r.taken()));
    assert_eq!(sim.queue_len("alerts"), 0, "pulled");
    assert!(
        spool_segment_bytes(&dir.spool()) > 0,
        "the events wait in the spool"
    );
    let why = why();
    for line in &why {
        assert!(
            line.contains(" ERROR: pipe Hook: https://127.0.0.1:"),
            "{line}"
        );
        assert!(line.contains("answered 400 Bad Request"), "{line}");
        // The receiver's message, masked.
        assert!(line.contains("\"authorization\":\"***\""), "{line}");
        assert!(line.contains("10 events waiting; retrying in"), "{line}");
    }

    // The receiver is fixed: everything arrives, once, in order.
    receiver.clear_refusals();
    let lines = receiver.wait_for_lines("/hook", alerts.len(), Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let run = broker.terminate(Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    assert_eq!(lines.len(), alerts.len(), "{}", describe(&run));
    assert_eq!(receiver.taken_lines("/hook"), expected_lines(&alerts));
    assert!(dead_letters(&dir).is_empty(), "{:?}", dead_letters(&dir));
    assert_no_secret(&run, &dir);
}

#[test]
fn the_proxy_variables_are_not_used_for_a_loopback_url() {
    let sim = simulator(Default::default());
    let receiver = HttpsReceiver::plain();
    let proxy = RecordingProxy::start();
    let dir = BrokerDir::new();
    // The simulator's API is loopback too: no call of this run may reach the proxy.
    dir.write_config(
        &sim.url(),
        &format!(
            "[Pipe.Local]\nFrom = alerts\nTo = webhook\nUrl = {}\nTimeout = 5\n",
            receiver.url("/hook")
        ),
    );
    give_credentials(&dir, &sim);
    let alerts = sim.enqueue_generated("alerts", 3).unwrap();

    let mut command = dir.command(CUSTOM);
    proxy.set_in(&mut command);
    let run = run_with_timeout(command, Duration::from_secs(60));
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(receiver.taken_lines("/hook"), expected_lines(&alerts));
    assert_eq!(proxy.connections(), 0, "{}", describe(&run));
}

#[test]
fn a_token_echoed_in_any_form_never_reaches_the_log_or_the_dead_letter_file() {
    use base64::Engine as _;
    // Characters that each encoding changes: `/`, `+`, `=`, a space.
    const SLASHED: &str = "Splunk 6f1c/SECRET+TOKEN=7d2e";
    let basic = base64::engine::general_purpose::STANDARD.encode("broker:SECRET/pa55+word");
    let sim = simulator(Default::default());
    let receiver = HttpsReceiver::start();
    let dir = BrokerDir::new();
    let pipes = format!(
        "{}{}",
        webhook_pipe(
            "Token",
            "alerts",
            &receiver.url("/token"),
            &format!("Header = Authorization: {SLASHED}\nBatch = 8\n"),
            &receiver.certs.ca,
        ),
        webhook_pipe(
            "Basic",
            "log_authn",
            &receiver.url("/basic/SECRET-PATH"),
            &format!("Header = Authorization: Basic {basic}\nBatch = 4\n"),
            &receiver.certs.ca,
        ),
    );
    dir.write_config(&sim.url(), &pipes);
    give_credentials(&dir, &sim);
    let alerts = sim.enqueue_generated("alerts", 8).unwrap();
    let logins = sim.enqueue_generated("log_authn", 4).unwrap();
    // Every event but the last of each pipe is refused on its own, each answer echoing the
    // header in another form; the first request of each pipe gets a 500 (one run each).
    for raw in alerts[..7].iter().chain(&logins[..3]) {
        receiver.refuse_containing(&format!("\"id\":\"{}\"", id_of(raw)), 400);
    }
    receiver.script(&[500, 500]);

    let secrets = ["SECRET", "7d2e", "pa55", basic.as_str()];
    let first = dir.run(CUSTOM, &["-vv"]);
    assert_eq!(first.status.code(), Some(1), "{}", describe(&first));
    assert_eq!(
        lines_containing(&stdout(&first), "answered 500 Internal Server Error").len(),
        2,
        "{}",
        describe(&first)
    );
    assert_none_of(&first, &dir, &secrets);
    let second = dir.run(CUSTOM, &["-vv"]);
    assert!(second.status.success(), "{}", describe(&second));
    assert_none_of(&second, &dir, &secrets);

    let dead = dead_letters(&dir);
    assert_eq!(dead.len(), 10, "{dead:?}");
    for letter in &dead {
        let reason = serde_json::from_str::<serde_json::Value>(letter).expect("JSON")["reason"]
            .as_str()
            .expect("reason")
            .to_string();
        assert!(reason.contains("answered 400 Bad Request"), "{reason}");
        assert!(reason.contains("\"authorization\":\"***\""), "{reason}");
        assert!(reason.contains("\"echo\":"), "{reason}");
    }
    // The receiver sent each of its six forms of the echo at least once.
    let refusals = receiver
        .received()
        .iter()
        .filter(|r| r.status >= 400)
        .count();
    assert!(refusals >= 6, "{refusals}");
}

#[test]
fn retry_after_on_a_503_is_honoured_as_seconds_and_as_a_date() {
    let (sim, receiver, dir) = hook_broker("/hook", "");
    receiver.retry_after("2");
    receiver.script(&[503]);
    let mut alerts = sim.enqueue_generated("alerts", 3).unwrap();
    let mut broker = dir.spawn(CUSTOM, &["--loop", "1"]);
    receiver.wait_for_lines("/hook", alerts.len(), Duration::from_secs(30));

    // The same as an HTTP-date, 6 s ahead (the 503 comes with the next round, within about
    // 1.5 s): the retry comes no sooner than that date.
    let when = chrono::Utc::now() + chrono::Duration::seconds(6);
    let date = when.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let not_before = SystemTime::UNIX_EPOCH + Duration::from_secs(when.timestamp() as u64);
    receiver.retry_after(&date);
    receiver.script(&[503]);
    alerts.extend(sim.enqueue_generated("alerts", 2).unwrap());
    receiver.wait_for_lines("/hook", alerts.len(), Duration::from_secs(30));
    let run = broker.terminate(Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    assert_eq!(receiver.taken_lines("/hook"), expected_lines(&alerts));

    let requests = receiver.received();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 200, 503, 200], "{}", describe(&run));
    // Lower bounds from the receiver's own clock: the retry never comes before it was asked to.
    let seconds = requests[1].at - requests[0].at;
    assert!(seconds >= Duration::from_millis(1900), "{seconds:?}");
    assert!(
        requests[2].wall + Duration::from_secs(1) < not_before,
        "the 503 came too late to tell: {:?}",
        requests[2].wall
    );
    let early = not_before
        .duration_since(requests[3].wall)
        .unwrap_or_default();
    assert!(
        early <= Duration::from_millis(50),
        "{early:?} before the date"
    );
    let log = stdout(&run);
    let waits = lines_containing(&log, "(Retry-After: waiting at least");
    assert_eq!(waits.len(), 2, "{log}");
    assert!(waits[0].contains("at least 2 s)"), "{log}");
}

#[test]
fn the_server_certificate_is_always_verified() {
    let sim = simulator(Default::default());
    let receiver = HttpsReceiver::start();
    let other_ca = tempfile::tempdir().unwrap();
    let other = broker_tests::rsyslog::Certificates::generate(other_ca.path());
    let dir = BrokerDir::new();
    let url = receiver.url("/hook");
    dir.write_config(
        &sim.url(),
        &format!(
            "[Pipe.System]\nFrom = alerts\nTo = webhook\nUrl = {url}\n\n{}",
            webhook_pipe("Other", "alerts", &url, "", &other.ca)
        ),
    );
    give_credentials(&dir, &sim);
    sim.enqueue_generated("alerts", 2).unwrap();
    let run = dir.run(CUSTOM, &[]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());
    let log = stdout(&run);
    for (pipe, why) in [
        ("System", "not signed by a CA this system trusts"),
        (
            "Other",
            &format!("not signed by a CA of {}", other.ca.display()),
        ),
    ] {
        let failed = lines_containing(
            &log,
            &format!("pipe {pipe}: cannot POST to https://127.0.0.1:"),
        );
        assert_eq!(failed.len(), 1, "{pipe}: {log}");
        assert!(failed[0].contains(why), "{pipe}: {log}");
        assert!(
            log.contains(&format!(
                "pipe {pipe}: 2 events kept in the spool for the next run"
            )),
            "{log}"
        );
    }
}

#[test]
fn the_stdout_sink_example_prints_the_events_it_got() {
    stdout_sink_prints_the_events_of(|dir| vec![OsString::from("--config"), dir.config().into()]);
}

/// With no arguments but a `broker.conf` in its working directory (the search path), the example
/// is the daemon on that config, not the demo.
#[test]
fn the_stdout_sink_example_with_a_config_on_the_search_path_is_the_daemon() {
    stdout_sink_prints_the_events_of(|_| Vec::new());
}

/// Runs the `stdout_sink` example with `args` in the directory of a config for a simulator with
/// five events, and checks that it printed them.
fn stdout_sink_prints_the_events_of(args: fn(&BrokerDir) -> Vec<OsString>) {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        "[Pipe.Screen]\nFrom = alerts, log_changes\nTo = stdout\nPrefix = event:\n",
    );
    give_credentials(&dir, &sim);
    let alerts = sim.enqueue_generated("alerts", 3).unwrap();
    let changes = sim.enqueue_generated("log_changes", 2).unwrap();
    let mut command = Command::new(example("stdout_sink"));
    command
        .args(args(&dir))
        .current_dir(dir.dir.path())
        .env_remove("PROCUSTODIBUS_CONF")
        .env_remove("PROCUSTODIBUS_LOGGING_LEVEL")
        .stdin(Stdio::null());
    let run = run_with_timeout(command, Duration::from_secs(60));
    assert!(run.status.success(), "{}", describe(&run));
    let printed: Vec<String> = stdout(&run)
        .lines()
        .filter_map(|l| l.strip_prefix("event:"))
        .map(String::from)
        .collect();
    let mut expected = expected_lines(&alerts);
    expected.extend(expected_lines(&changes));
    assert_eq!(printed, expected, "{}", describe(&run));

    let mut command = Command::new(example("stdout_sink"));
    command.arg("--list-sinks");
    let listed = run_with_timeout(command, Duration::from_secs(10));
    let text = stdout(&listed);
    assert_eq!(sink_names(&text), stock_sinks_and(&["stdout"]), "{text}");
}

/// Runs an example with no arguments and no config anywhere, in an empty directory.
fn run_example_alone(name: &str) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(example(name));
    command
        .current_dir(dir.path())
        .env_remove("PROCUSTODIBUS_CONF")
        .env_remove("PROCUSTODIBUS_LOGGING_LEVEL")
        .stdin(Stdio::null());
    run_with_timeout(command, Duration::from_secs(60))
}

#[test]
fn the_stdout_sink_example_with_no_arguments_runs_a_demo_on_the_simulator() {
    let run = run_example_alone("stdout_sink");
    assert!(run.status.success(), "{}", describe(&run));
    let text = stdout(&run);
    // Three generated events in each of the two queues of the demo's pipe, printed by the sink.
    let printed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event:"))
        .collect();
    assert_eq!(printed.len(), 6, "{}", describe(&run));
    for queue in ["alerts", "log_changes"] {
        let of_queue = printed
            .iter()
            .filter(|l| l.contains(&format!("\"type\":\"{queue}\"")))
            .count();
        assert_eq!(of_queue, 3, "{queue}: {}", describe(&run));
    }
}

#[test]
fn the_custom_broker_with_no_arguments_posts_a_demo_round_to_a_local_receiver() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(binary(CUSTOM));
    command
        .current_dir(dir.path())
        .env_remove("PROCUSTODIBUS_CONF")
        .env_remove("PROCUSTODIBUS_LOGGING_LEVEL")
        .stdin(Stdio::null());
    let run = run_with_timeout(command, Duration::from_secs(60));
    assert!(run.status.success(), "{}", describe(&run));
    let text = stdout(&run);
    // The three generated alerts, each POSTed by the webhook sink and printed by the receiver.
    let received: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("received: "))
        .collect();
    assert_eq!(received.len(), 3, "{text}");
    assert!(
        received.iter().all(|l| l.contains("\"type\":\"alerts\"")),
        "{text}"
    );
}

#[test]
fn the_quickstart_example_delivers_to_its_file_and_syslog_pipes() {
    let run = run_example_alone("quickstart");
    assert!(run.status.success(), "{}", describe(&run));
    let text = stdout(&run);
    let section = |title: &str| -> Vec<String> {
        text.split("\n--- ")
            .find(|s| s.contains(title))
            .map(|s| {
                s.lines()
                    .skip(1)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    // Three events of each of four queues in the file, the three alerts over syslog.
    assert_eq!(section("all.jsonl ---").len(), 12, "{text}");
    assert_eq!(section("syslog datagrams").len(), 3, "{text}");
}

#[test]
fn the_embed_example_runs_a_pipeline_in_process() {
    let run = run_with_timeout(Command::new(example("embed")), Duration::from_secs(60));
    assert!(run.status.success(), "{}", describe(&run));
    let text = stdout(&run);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"pulled 4, delivered 4, failures 0"),
        "{text}"
    );
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[4].contains("\"user\":\"Jos\\u00e9\""), "{text}");
}
