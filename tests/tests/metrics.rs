//! The opt-in metrics endpoint (`Metrics = ADDR:PORT`) of a real `--loop` broker against the
//! simulator: exact counters against what the sinks received and the dead-letter file holds,
//! `/readyz` following a sink outage and an API outage and their recovery, `/healthz`, 404 and
//! 405, `promtool check metrics`, and the real Prometheus server scraping it. Without
//! `Metrics =` nothing listens.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use broker_sim::{Fault, Simulator};
use broker_tests::*;

/// A port on 127.0.0.1 that nothing listens on: bound by the OS, then closed.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

/// One HTTP/1.0 request to `127.0.0.1:port`: the status code and the body (`None` when
/// nothing answers).
fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    http_waiting(port, method, path, Duration::from_secs(10))
}

/// [`http`], waiting at most `limit` for the answer.
fn http_waiting(port: u16, method: &str, path: &str, limit: Duration) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(limit)).expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// `GET /metrics`, which must answer 200.
fn scrape(port: u16) -> String {
    match http(port, "GET", "/metrics") {
        Some((200, body)) => body,
        other => panic!("GET /metrics: {other:?}"),
    }
}

/// The value of the sample `series` (name and labels, exactly as exposed) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `GET /readyz` as (code, JSON).
fn readyz(port: u16) -> (u16, serde_json::Value) {
    let (code, body) = http(port, "GET", "/readyz").expect("GET /readyz");
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (code, value)
}

/// Waits (at most `limit`) until `/readyz` answers `code`, and returns its JSON.
fn readyz_until(port: u16, code: u16, limit: Duration) -> serde_json::Value {
    let mut last = (0, serde_json::Value::Null);
    let turned = wait_until(limit, || {
        last = readyz(port);
        last.0 == code
    });
    assert!(turned, "/readyz never answered {code}: {last:?}");
    last.1
}

const PULLED: &str = "procustodibus_broker_events_pulled_total{queue=\"alerts\"}";

fn delivered(pipe: &str, sink: &str) -> String {
    format!("procustodibus_broker_events_delivered_total{{pipe=\"{pipe}\",sink=\"{sink}\"}}")
}

fn failures(pipe: &str, kind: &str) -> String {
    format!("procustodibus_broker_delivery_failures_total{{pipe=\"{pipe}\",kind=\"{kind}\"}}")
}

fn per_pipe(name: &str, pipe: &str) -> String {
    format!("procustodibus_broker_{name}{{pipe=\"{pipe}\"}}")
}

/// `promtool check metrics` on `text`: its complaints, if any.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{text}",
        describe(&out)
    );
}

#[test]
fn metrics_count_exactly_and_readyz_follows_outages_and_recoveries() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let port = free_port();
    let socket = dir.path("log.sock");
    let (udp, udp_address) = DatagramCollector::bind_udp();
    dir.write_config_with(
        &sim.url(),
        &format!("StatusGrace = 2\nMetrics = 127.0.0.1:{port}\n"),
        &format!(
            "{}{}",
            default_syslog_pipe("Udp", "alerts", None, &udp_address),
            default_syslog_pipe("Sys", "alerts", None, &socket.display().to_string()),
        ),
    );
    dir.set_up(&sim);
    let receiver = DatagramCollector::bind_unix(&socket);
    // Seven alerts, one too big for a UDP datagram: Udp dead-letters it, Sys takes it.
    let big = format!(
        r#"{{"type":"alerts","id":"big-1","attributes":{{"text":"{}"}}}}"#,
        "x".repeat(70_000)
    );
    sim.enqueue_generated("alerts", 3).unwrap();
    sim.enqueue("alerts", &big).unwrap();
    sim.enqueue_generated("alerts", 3).unwrap();
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1"]);

    let mut text = String::new();
    let counted = wait_until(Duration::from_secs(30), || {
        text = http(port, "GET", "/metrics")
            .map(|a| a.1)
            .unwrap_or_default();
        sample(&text, &delivered("Udp", "syslog")) == Some(6.0)
            && sample(&text, &delivered("Sys", "syslog")) == Some(7.0)
            && sample(&text, &per_pipe("events_dead_lettered_total", "Udp")) == Some(1.0)
    });
    assert!(counted, "{text}\n{}", broker.stdout_so_far());
    assert_eq!(udp.count(), 6);
    assert_eq!(receiver.count(), 7);
    let letters = dir.lines("spool/dead-letter.jsonl");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0].contains("big-1"), "{letters:?}");
    assert_eq!(sample(&text, PULLED), Some(7.0), "{text}");
    assert_eq!(sample(&text, &failures("Udp", "permanent")), Some(1.0));
    assert_eq!(sample(&text, &failures("Udp", "retry")), Some(0.0));
    assert_eq!(sample(&text, &failures("Sys", "permanent")), Some(0.0));
    assert_eq!(
        sample(&text, &per_pipe("events_dead_lettered_total", "Sys")),
        Some(0.0)
    );
    assert_eq!(sample(&text, &per_pipe("backlog_events", "Sys")), Some(0.0));
    assert_eq!(sample(&text, &per_pipe("backlog_bytes", "Sys")), Some(0.0));
    assert_eq!(
        sample(
            &text,
            "procustodibus_broker_pulling_paused{queue=\"alerts\"}"
        ),
        Some(0.0)
    );
    let logins = sample(
        &text,
        "procustodibus_broker_api_logins_total{result=\"ok\"}",
    );
    assert!(logins >= Some(1.0), "{text}");
    let version = format!(
        "procustodibus_broker_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &version), Some(1.0), "{text}");
    let max = sample(&text, "procustodibus_broker_spool_max_bytes");
    assert_eq!(max, Some((256u64 << 20) as f64), "{text}");
    assert!(sample(&text, "procustodibus_broker_spool_bytes").is_some());
    let now = chrono::Utc::now().timestamp() as f64;
    let last = sample(
        &text,
        "procustodibus_broker_last_pull_success_timestamp_seconds{queue=\"alerts\"}",
    )
    .expect("last pull");
    assert!((now - 30.0..=now + 1.0).contains(&last), "{last} {now}");
    let last = sample(
        &text,
        &per_pipe("last_delivery_success_timestamp_seconds", "Sys"),
    )
    .expect("last delivery");
    assert!((now - 30.0..=now + 1.0).contains(&last), "{last} {now}");
    promtool_check(&text);

    // Health, ready, and nothing else.
    assert_eq!(http(port, "GET", "/healthz"), Some((200, "ok\n".into())));
    let (code, value) = readyz(port);
    assert_eq!(
        (code, &value["verdict"]),
        (200, &"healthy".into()),
        "{value}"
    );
    assert_eq!(http(port, "GET", "/nope").map(|a| a.0), Some(404));
    assert_eq!(http(port, "POST", "/metrics").map(|a| a.0), Some(405));
    assert_eq!(http(port, "DELETE", "/readyz").map(|a| a.0), Some(405));

    // The Sys receiver goes away: 503 within StatusGrace (2 s) and a round, naming the pipe
    // and the reason, as --status does; the events wait in its backlog.
    drop(receiver.stop());
    std::fs::remove_file(&socket).unwrap();
    sim.enqueue_generated("alerts", 4).unwrap();
    let value = readyz_until(port, 503, Duration::from_secs(15));
    let reasons = value["reasons"].as_array().expect("reasons");
    assert_eq!(reasons.len(), 1, "{value:#}");
    let reason = reasons[0].as_str().unwrap();
    assert!(
        reason.starts_with("pipe Sys: failing for ")
            && reason.contains("(StatusGrace 2 s): cannot ")
            && reason.contains(&socket.display().to_string()),
        "{value:#}"
    );
    let status = dir.run("procustodibus-broker", &["--status", "--json"]);
    let from_status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(from_status["verdict"], "unhealthy", "{}", describe(&status));
    let text = scrape(port);
    assert_eq!(sample(&text, PULLED), Some(11.0), "{text}");
    assert_eq!(sample(&text, &per_pipe("backlog_events", "Sys")), Some(4.0));
    assert!(sample(&text, &per_pipe("backlog_bytes", "Sys")) > Some(0.0));
    assert_eq!(sample(&text, &per_pipe("pipe_failing", "Sys")), Some(1.0));
    assert!(
        sample(&text, &failures("Sys", "retry")) >= Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "procustodibus_broker_healthy"), Some(0.0));
    assert!(wait_until(Duration::from_secs(10), || udp.count() == 10));

    // It comes back: ready again by itself, everything delivered once.
    let receiver = DatagramCollector::bind_unix(&socket);
    readyz_until(port, 200, Duration::from_secs(60));
    assert!(wait_until(Duration::from_secs(20), || receiver.count() == 4));
    let text = scrape(port);
    assert_eq!(sample(&text, &delivered("Sys", "syslog")), Some(11.0));
    assert_eq!(sample(&text, &delivered("Udp", "syslog")), Some(10.0));
    assert_eq!(sample(&text, &per_pipe("backlog_events", "Sys")), Some(0.0));
    assert_eq!(sample(&text, &per_pipe("pipe_failing", "Sys")), Some(0.0));

    // The API fails every alerts pull: 503 within two intervals plus Timeout, naming the queue,
    // the failures counted by reason; then ready again by itself.
    sim.inject(Fault::Status(503), 1_000_000, Some("/queues/alerts"));
    let value = readyz_until(port, 503, Duration::from_secs(15));
    let reason = value["reasons"][0].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("queue alerts: no successful pull for ")
            && reason.contains("cannot pull alerts"),
        "{value:#}"
    );
    let text = scrape(port);
    let failed = "procustodibus_broker_pull_failures_total{queue=\"alerts\",reason=\"status\"}";
    assert!(sample(&text, failed) >= Some(2.0), "{text}");
    sim.clear_faults();
    readyz_until(port, 200, Duration::from_secs(30));
    promtool_check(&scrape(port));

    // The counters match the sinks exactly, to the end.
    let stopped = broker.terminate(Duration::from_secs(10));
    assert_eq!(stopped.status.code(), Some(0), "{}", describe(&stopped));
    assert_eq!(udp.stop().len(), 10);
    assert_eq!(receiver.stop().len(), 4);
    assert_eq!(dir.lines("spool/dead-letter.jsonl").len(), 1);
    assert_eq!(http(port, "GET", "/metrics"), None);
}

/// The listening TCP sockets of process `pid` (their inodes).
fn listening_sockets(pid: u32) -> Vec<String> {
    let mut listening = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // `st` 0A is LISTEN; the inode is the tenth field.
            if fields.get(3) == Some(&"0A") {
                listening.push(fields[9].to_string());
            }
        }
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fds");
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let inode = target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?;
            listening
                .contains(&inode.to_string())
                .then(|| inode.to_string())
        })
        .collect()
}

#[test]
fn without_metrics_nothing_listens_and_a_bad_address_is_one_line() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        &file_pipe("F", "alerts", None, &dir.path("f.jsonl")),
    );
    dir.set_up(&sim);
    sim.enqueue_generated("alerts", 2).unwrap();
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1"]);
    assert!(wait_until(Duration::from_secs(20), || dir
        .lines("f.jsonl")
        .len()
        == 2));
    assert_eq!(listening_sockets(broker.id()), Vec::<String>::new());
    broker.terminate(Duration::from_secs(10));

    // With Metrics, the same check sees the listener (the check can fail).
    let port = free_port();
    dir.write_config_with(
        &sim.url(),
        &format!("Metrics = 127.0.0.1:{port}\n"),
        &file_pipe("F", "alerts", None, &dir.path("f.jsonl")),
    );
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1"]);
    assert!(wait_until(Duration::from_secs(20), || http(
        port, "GET", "/healthz"
    )
    .is_some()));
    assert_eq!(listening_sockets(broker.id()).len(), 1);
    broker.terminate(Duration::from_secs(10));

    let out = dir.run("procustodibus-broker", &["--check-config"]);
    assert!(
        stdout(&out).contains(&format!(", metrics at http://127.0.0.1:{port}/metrics")),
        "{}",
        describe(&out)
    );

    for bad in ["9464", "localhost:9464", "127.0.0.1:99999"] {
        dir.write_config_with(&sim.url(), &format!("Metrics = {bad}\n"), "");
        let out = dir.run("procustodibus-broker", &["--check-config"]);
        assert!(!out.status.success(), "{}", describe(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!(
                "line 6: Metrics {bad:?} is not an address and port (127.0.0.1:9090 or [::1]:9090)"
            )),
            "{err}"
        );
    }

    // A port already taken: a one-line error naming it, exit non-zero.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    dir.write_config_with(&sim.url(), &format!("Metrics = {addr}\n"), "");
    let out = run_with_timeout(
        {
            let mut c = dir.command("procustodibus-broker");
            c.args(["--loop", "1"]);
            c
        },
        Duration::from_secs(20),
    );
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains(&format!("Metrics = {addr}: cannot listen: "))
            || stderr(&out).contains(&format!("Metrics = {addr}: cannot listen: ")),
        "{}",
        describe(&out)
    );
}

/// Writes a Prometheus config scraping `127.0.0.1:target` every second into `dir`.
fn prometheus_config(dir: &Path, target: u16) -> std::path::PathBuf {
    let path = dir.join("prometheus.yml");
    std::fs::write(
        &path,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: procustodibus-broker\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        ),
    )
    .unwrap();
    path
}

/// Stops the Prometheus server on drop.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A simulator and a set-up broker directory whose config serves metrics on a free port and
/// has one file pipe `F` (alerts to `f.jsonl`).
fn metrics_file_broker() -> (Simulator, BrokerDir, u16) {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let port = free_port();
    dir.write_config_with(
        &sim.url(),
        &format!("Metrics = 127.0.0.1:{port}\n"),
        &file_pipe("F", "alerts", None, &dir.path("f.jsonl")),
    );
    dir.set_up(&sim);
    (sim, dir, port)
}

#[test]
fn the_real_prometheus_server_scrapes_the_broker() {
    let (sim, dir, port) = metrics_file_broker();
    sim.enqueue_generated("alerts", 5).unwrap();
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1"]);
    assert!(wait_until(Duration::from_secs(20), || dir
        .lines("f.jsonl")
        .len()
        == 5));

    let web = free_port();
    let config = prometheus_config(&dir.path(""), port);
    let data = dir.path("tsdb");
    let log = std::fs::File::create(dir.path("prometheus.log")).unwrap();
    let server = Server(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian package prometheus; scripts/test installs it)"),
    );
    let mut targets = String::new();
    let up = wait_until(Duration::from_secs(60), || {
        targets = http(web, "GET", "/api/v1/targets")
            .map(|a| a.1)
            .unwrap_or_default();
        targets.contains("\"health\":\"up\"")
    });
    let log = std::fs::read_to_string(dir.path("prometheus.log")).unwrap_or_default();
    assert!(up, "{targets}\n{log}");
    assert!(targets.contains(&format!("127.0.0.1:{port}")), "{targets}");
    let mut answer = serde_json::Value::Null;
    let found = wait_until(Duration::from_secs(30), || {
        answer = http(
            web,
            "GET",
            "/api/v1/query?query=procustodibus_broker_events_pulled_total",
        )
        .and_then(|a| serde_json::from_str(&a.1).ok())
        .unwrap_or_default();
        answer["data"]["result"][0]["value"][1] == "5"
    });
    assert!(found, "{answer:#}");
    let series = &answer["data"]["result"][0]["metric"];
    assert_eq!(series["queue"], "alerts", "{answer:#}");
    assert_eq!(series["job"], "procustodibus-broker", "{answer:#}");
    drop(server);
    broker.terminate(Duration::from_secs(10));
}

/// The YAML block of the README that follows `marker`.
fn readme_yaml_after(marker: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(path).expect("README");
    let (_, after) = readme.split_once(marker).expect(marker);
    let (_, block) = after.split_once("```yaml\n").expect("a yaml block");
    block.split_once("```").expect("its end").0.to_string()
}

#[test]
fn the_readme_scrape_config_and_alert_rules_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, readme_yaml_after("Alert rules")).unwrap();
    let out = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&rules)
        .output()
        .expect("promtool (Debian package prometheus)");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains("SUCCESS: 5 rules found"),
        "{}",
        describe(&out)
    );
    let config = dir.path().join("prometheus.yml");
    let scrape = readme_yaml_after("A Prometheus scrape config");
    std::fs::write(
        &config,
        format!("{scrape}rule_files:\n  - {}\n", rules.display()),
    )
    .unwrap();
    let out = Command::new("promtool")
        .arg("check")
        .arg("config")
        .arg(&config)
        .output()
        .expect("promtool");
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn silent_clients_are_dropped_and_cannot_starve_the_endpoints() {
    let (_sim, dir, port) = metrics_file_broker();
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1"]);
    assert!(wait_until(Duration::from_secs(20), || http(
        port, "GET", "/healthz"
    )
    .is_some()));
    // More connections than are served at once, each sending nothing.
    let mut silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    // They are dropped after the 10 s header timeout, and a real request is answered.
    let answer = http_waiting(port, "GET", "/healthz", Duration::from_secs(25));
    assert_eq!(answer, Some((200, "ok\n".into())));
    for stream in &mut silent {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut rest = Vec::new();
        // The broker closed it (an answer such as 408, or nothing at all).
        assert!(stream.read_to_end(&mut rest).is_ok());
    }
    broker.terminate(Duration::from_secs(10));
}
