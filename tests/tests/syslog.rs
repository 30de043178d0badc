//! The syslog sink end to end: the real broker pulls from the simulator and sends each event as
//! one `<PRI>TAG: JSON\0` message over UDP (IPv4 and IPv6), a unix datagram socket and a unix
//! stream socket; and `--test-pipe` to syslog and file pipes.

use std::time::{Duration, Instant};

use broker_sim::Simulator;
use broker_tests::rsyslog::expected_lines_chunked;
use broker_tests::*;
use syslog_loose::{SyslogFacility as F, SyslogSeverity as S, Variant};

/// One hand-written alert whose text tests the escaping through the syslog path too.
const TRICKY_ALERT: &str = r#"{"type": "alerts", "id": "tricky-1", "attributes": {"text": "é😀/\u007f\u0000 tab\t", "n": 1.50, "big": 123456789012345678901234567890}}"#;

/// One pipe's syslog settings (an empty string: the key is left out, so the default applies)
/// and what its messages must carry.
struct Case {
    /// `Facility = ...`.
    facility: &'static str,
    /// `Priority = ...`.
    priority: &'static str,
    /// `Tag = ...` (default `procustodibus`).
    tag: &'static str,
    /// The PRI every message must start with.
    pri: u8,
    /// What syslog_loose must read from that PRI.
    parsed: (F, S),
}

const fn case(
    facility: &'static str,
    priority: &'static str,
    tag: &'static str,
    pri: u8,
    f: F,
    s: S,
) -> Case {
    Case {
        facility,
        priority,
        tag,
        pri,
        parsed: (f, s),
    }
}

/// Facility/priority pairs, aliases and odd case included.
const CASES: &[Case] = &[
    case("", "", "", 134, F::LOG_LOCAL0, S::SEV_INFO),
    case("local0", "info", "broker", 134, F::LOG_LOCAL0, S::SEV_INFO),
    case("user", "debug", "my-tag", 15, F::LOG_USER, S::SEV_DEBUG),
    case("auth", "emerg", "", 32, F::LOG_AUTH, S::SEV_EMERG),
    case("local7", "err", "pc", 187, F::LOG_LOCAL7, S::SEV_ERR),
    case("authpriv", "notice", "", 85, F::LOG_AUTHPRIV, S::SEV_NOTICE),
    case("security", "warn", "", 36, F::LOG_AUTH, S::SEV_WARNING),
    case("Local3", "CRITICAL", "", 154, F::LOG_LOCAL3, S::SEV_CRIT),
    case("daemon", "panic", "", 24, F::LOG_DAEMON, S::SEV_EMERG),
    case("kern", "alert", "", 1, F::LOG_KERN, S::SEV_ALERT),
    case("local7", "debug", "", 191, F::LOG_LOCAL7, S::SEV_DEBUG),
    case("mail", "error", "", 19, F::LOG_MAIL, S::SEV_ERR),
    case("cron", "warning", "", 76, F::LOG_CRON, S::SEV_WARNING),
];

impl Case {
    /// The tag the messages carry.
    fn tag(&self) -> &'static str {
        if self.tag.is_empty() {
            "procustodibus"
        } else {
            self.tag
        }
    }
}

/// The `[Pipe.NAME]` section of a syslog pipe to `socket` with `case`'s settings.
fn syslog_pipe(name: &str, from: &str, socket: &str, case: &Case) -> String {
    let mut text = format!("[Pipe.{name}]\nFrom = {from}\nTo = syslog\nSocket = {socket}\n");
    for (key, value) in [
        ("Facility", case.facility),
        ("Priority", case.priority),
        ("Tag", case.tag),
    ] {
        if !value.is_empty() {
            text.push_str(&format!("{key} = {value}\n"));
        }
    }
    text.push('\n');
    text
}

/// Queues 3 generated alerts, the tricky alert and 2 generated log_authn events; returns the raw
/// alerts and the raw log_authn events, in queue order.
fn enqueue_events(sim: &Simulator) -> (Vec<String>, Vec<String>) {
    broker_tests::rsyslog::enqueue_events(sim, TRICKY_ALERT, 2)
}

/// The exact messages of `case` for these encoded lines.
fn expected_messages(case: &Case, lines: &[String]) -> Vec<Vec<u8>> {
    let tag = case.tag();
    lines
        .iter()
        .map(|line| format!("<{}>{tag}: {line}\0", case.pri).into_bytes())
        .collect()
}

/// Checks each message's framing (one trailing NUL and no other), then reads it with
/// syslog_loose as a cross-check of facility, severity, tag and JSON. The broker sends no
/// timestamp or host name (the receiving daemon adds them), and syslog_loose's RFC 3164 parser
/// insists on a timestamp, so the message is read as a daemon would store it: with a time and a
/// host after the PRI.
fn check_parsed(case: &Case, messages: &[Vec<u8>]) {
    let tag = case.tag();
    for message in messages {
        assert_eq!(
            message.last(),
            Some(&0),
            "message does not end in NUL: {message:?}"
        );
        let body = &message[..message.len() - 1];
        assert!(!body.contains(&0), "NUL inside a message: {message:?}");
        let text = std::str::from_utf8(body).expect("messages are ASCII");
        assert!(text.is_ascii(), "non-ASCII in {text}");
        let end = text.find('>').expect("<PRI>");
        let (pri, rest) = text.split_at(end + 1);
        let stamped = format!("{pri}Jan  2 03:04:05 receiver {rest}");
        let parsed = syslog_loose::parse_message(&stamped, Variant::RFC3164);
        assert_eq!(
            (parsed.facility, parsed.severity),
            (Some(case.parsed.0), Some(case.parsed.1)),
            "syslog_loose reads another facility/severity from {text}"
        );
        assert_eq!(parsed.hostname, Some("receiver"), "{text}");
        assert_eq!(parsed.appname, Some(tag), "{text}");
        serde_json::from_str::<serde_json::Value>(parsed.msg)
            .unwrap_or_else(|e| panic!("message {:?} is not JSON: {e}", parsed.msg));
        assert!(rest.ends_with(parsed.msg), "{text}");
    }
}

/// The datagrams waiting at a socket, when `expected` are due: reads up to `expected` of them
/// (waiting up to 2 s for each), then any extra one that arrives within 30 ms. The broker has
/// exited by then, so everything it sent is queued already.
fn receive(
    expected: usize,
    set_timeout: impl Fn(Duration),
    recv: impl Fn(&mut [u8]) -> std::io::Result<usize>,
) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 70_000];
    set_timeout(Duration::from_secs(2));
    while got.len() < expected {
        match recv(&mut buf) {
            Ok(n) => got.push(buf[..n].to_vec()),
            Err(_) => return got,
        }
    }
    set_timeout(Duration::from_millis(30));
    while let Ok(n) = recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    got
}

/// [`receive`] on a UDP receiver.
fn receive_udp(receiver: &UdpReceiver, expected: usize) -> Vec<Vec<u8>> {
    let socket = &receiver.socket;
    receive(
        expected,
        |t| socket.set_read_timeout(Some(t)).expect("read timeout"),
        |buf| socket.recv(buf),
    )
}

/// Runs the broker once (setup first, from a setup file) and asserts it succeeded.
fn run_once(sim: &Simulator, dir: &BrokerDir) {
    dir.write_setup(sim, "syslog-setup");
    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    assert!(!stdout(&run).contains("ERROR"), "{}", describe(&run));
}

/// One UDP receiver per facility/priority pair, all fed by one broker run.
fn udp_messages_are_exact(v6: bool) {
    let receivers: Vec<UdpReceiver> = match CASES.iter().map(|_| UdpReceiver::bind(v6)).collect() {
        Ok(r) => r,
        Err(e) if v6 => {
            eprintln!("skipped: no IPv6 loopback ({e})");
            return;
        }
        Err(e) => panic!("bind UDP: {e}"),
    };
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let mut pipes = String::new();
    for (i, (case, receiver)) in CASES.iter().zip(&receivers).enumerate() {
        // Every other pipe lists the types the other way round: order follows `From`.
        let from = if i % 2 == 0 {
            "alerts, log_authn"
        } else {
            "log_authn, alerts"
        };
        pipes.push_str(&syslog_pipe(
            &format!("Syslog{i}"),
            from,
            &receiver.address(),
            case,
        ));
    }
    dir.write_config(&sim.url(), &pipes);
    let (alerts, authn) = enqueue_events(&sim);
    run_once(&sim, &dir);

    let alert_lines = expected_lines(&alerts);
    let authn_lines = expected_lines(&authn);
    for (i, (case, receiver)) in CASES.iter().zip(&receivers).enumerate() {
        let lines: Vec<String> = if i % 2 == 0 {
            alert_lines.iter().chain(&authn_lines).cloned().collect()
        } else {
            authn_lines.iter().chain(&alert_lines).cloned().collect()
        };
        let want = expected_messages(case, &lines);
        let got = receive_udp(receiver, want.len());
        assert_eq!(
            got.len(),
            want.len(),
            "pipe Syslog{i}: one datagram per event"
        );
        for (n, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                String::from_utf8_lossy(g),
                String::from_utf8_lossy(w),
                "pipe Syslog{i}, datagram {n}"
            );
        }
        assert_eq!(got, want, "pipe Syslog{i}: bytes");
        check_parsed(case, &got);
    }
    assert_eq!(sim.queue_len("alerts"), 0);
    assert_eq!(sim.queue_len("log_authn"), 0);
}

#[test]
fn udp_ipv4_one_exact_datagram_per_event_for_each_facility_and_priority() {
    udp_messages_are_exact(false);
}

#[test]
fn udp_ipv6_one_exact_datagram_per_event_for_each_facility_and_priority() {
    udp_messages_are_exact(true);
}

#[test]
fn unix_datagram_socket_gets_one_exact_datagram_per_event() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let receiver = UnixDatagramReceiver::bind(dir.dir.path(), "log.sock");
    let case = &CASES[2]; // user/debug, tag my-tag
    let socket = receiver.path.display().to_string();
    dir.write_config(
        &sim.url(),
        &syslog_pipe("Local", "log_authn, alerts", &socket, case),
    );
    let (alerts, authn) = enqueue_events(&sim);
    run_once(&sim, &dir);

    let mut raws = authn;
    raws.extend(alerts);
    let want = expected_messages(case, &expected_lines(&raws));
    let socket = &receiver.socket;
    let got = receive(
        want.len(),
        |t| socket.set_read_timeout(Some(t)).expect("read timeout"),
        |buf| socket.recv(buf),
    );
    assert_eq!(got.len(), raws.len(), "one datagram per event");
    assert_eq!(got, want);
    check_parsed(case, &got);
}

#[test]
fn unix_stream_socket_is_the_fallback_and_gets_the_same_messages_back_to_back() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let receiver = UnixStreamReceiver::bind(dir.dir.path(), "stream.sock");
    let case = &CASES[4]; // local7/err, tag pc
    let socket = receiver.path.display().to_string();
    dir.write_config(
        &sim.url(),
        &syslog_pipe("Stream", "alerts, log_authn", &socket, case),
    );
    let (alerts, authn) = enqueue_events(&sim);
    run_once(&sim, &dir);

    let mut raws = alerts;
    raws.extend(authn);
    let want = expected_messages(case, &expected_lines(&raws));
    let want_len = want.iter().map(Vec::len).sum();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = receiver.received(Duration::ZERO);
    while got.len() < want_len && Instant::now() < deadline {
        got = receiver.received(Duration::from_millis(20));
    }
    // Anything after the expected bytes would show up now.
    let got = if got.len() == want_len {
        receiver.received(Duration::from_millis(50))
    } else {
        got
    };
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want.concat())
    );
    // Each message ends in its NUL: splitting there gives the messages back.
    let messages: Vec<Vec<u8>> = got
        .split_inclusive(|b| *b == 0)
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(messages.len(), raws.len());
    check_parsed(case, &messages);
}

#[test]
fn unix_datagram_backlog_beyond_the_socket_queue_arrives_whole_and_in_order() {
    // Linux queues only `net.unix.max_dgram_qlen` (often 10) datagrams on a unix socket: a
    // burst larger than that must wait for the reader, not be dropped or fail.
    const EVENTS: usize = 60;
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let receiver = UnixDatagramReceiver::bind(dir.dir.path(), "busy.sock");
    let case = &CASES[0];
    let socket = receiver.path.display().to_string();
    let mut pipe = syslog_pipe("Busy", "endpoint_stats", &socket, case);
    pipe.push_str("Max = 1000\n");
    dir.write_config(&sim.url(), &pipe);
    let raws = sim
        .enqueue_generated("endpoint_stats", EVENTS)
        .expect("enqueue");
    dir.write_setup(&sim, "busy-setup");
    let got = std::thread::scope(|scope| {
        // A reader that keeps up, as a syslog daemon does, started before the broker.
        let reader = scope.spawn(|| {
            let socket = &receiver.socket;
            receive(
                EVENTS,
                |t| {
                    // Longer for the first datagrams: the broker has yet to start.
                    let t = if t > Duration::from_secs(1) {
                        Duration::from_secs(10)
                    } else {
                        t
                    };
                    socket.set_read_timeout(Some(t)).expect("timeout")
                },
                |buf| socket.recv(buf),
            )
        });
        let run = dir.run("procustodibus-broker", &[]);
        assert!(run.status.success(), "{}", describe(&run));
        reader.join().expect("reader")
    });
    let want = expected_messages(case, &expected_lines_chunked(&raws));
    assert_eq!(got.len(), EVENTS, "one datagram per event");
    assert!(
        got == want,
        "datagrams differ from the expected messages (order or bytes)"
    );
    assert_eq!(sim.queue_len("endpoint_stats"), 0);
}

/// Checks a `--test-pipe` message body: the test event of pipe `id`, created between `before`
/// and `after` (to the second).
fn check_test_event(
    json: &str,
    id: &str,
    before: chrono::DateTime<chrono::Utc>,
    after: chrono::DateTime<chrono::Utc>,
) {
    let prefix = "{\"attributes\":{\"created\":\"";
    let suffix = format!("\"}},\"id\":\"{id}\",\"type\":\"test\"}}");
    assert!(
        json.starts_with(prefix) && json.ends_with(&suffix),
        "test event {json}"
    );
    let created = &json[prefix.len()..json.len() - suffix.len()];
    let when = chrono::NaiveDateTime::parse_from_str(created, "%Y-%m-%dT%H:%M:%SZ")
        .unwrap_or_else(|e| panic!("created {created:?}: {e}"))
        .and_utc();
    let slack = chrono::Duration::seconds(2);
    assert!(
        when >= before - slack && when <= after + slack,
        "created {created} is not now ({before} .. {after})"
    );
}

#[test]
fn test_pipe_sends_one_test_event_to_a_syslog_pipe_named_in_another_case() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let receiver = UdpReceiver::bind(false).expect("bind UDP");
    let other = UdpReceiver::bind(false).expect("bind UDP");
    let case = &CASES[2]; // user/debug, tag my-tag
    let mut pipes = syslog_pipe("MyPipe", "alerts", &receiver.address(), case);
    pipes.push_str(&syslog_pipe("Other", "alerts", &other.address(), &CASES[0]));
    dir.write_config(&sim.url(), &pipes);
    let before = chrono::Utc::now();
    let run = dir.run("procustodibus-broker", &["--test-pipe", "mypipe"]);
    let after = chrono::Utc::now();
    assert!(run.status.success(), "{}", describe(&run));

    let got = receive_udp(&receiver, 1);
    assert_eq!(got.len(), 1, "one test message: {got:?}");
    check_parsed(case, &got);
    let text = std::str::from_utf8(&got[0]).expect("ASCII");
    let json = text
        .strip_prefix("<15>my-tag: ")
        .and_then(|t| t.strip_suffix('\0'))
        .unwrap_or_else(|| panic!("not <15>my-tag: JSON\\0: {text:?}"));
    check_test_event(json, "mypipe", before, after);
    assert!(
        receive_udp(&other, 0).is_empty(),
        "only the named pipe gets the test event"
    );
    assert!(
        sim.requests().is_empty(),
        "--test-pipe does not call the API"
    );
}

#[test]
fn test_pipe_appends_one_test_event_to_a_file_pipe_named_in_another_case() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let file = dir.path("test.jsonl");
    let other = dir.path("other.jsonl");
    dir.write_config(
        &sim.url(),
        &format!(
            "[Pipe.My_File-2]\nFrom = alerts\nTo = file\nFile = {}\n\n[Pipe.Other]\nFrom = alerts\nTo = file\nFile = {}\n",
            file.display(),
            other.display()
        ),
    );
    let before = chrono::Utc::now();
    let run = dir.run("procustodibus-broker", &["--test-pipe", "MY_FILE-2"]);
    let after = chrono::Utc::now();
    assert!(run.status.success(), "{}", describe(&run));
    let lines = dir.lines("test.jsonl");
    assert_eq!(lines.len(), 1, "{lines:?}");
    check_test_event(&lines[0], "my_file-2", before, after);
    assert!(std::fs::read(&file).expect("file").ends_with(b"}\n"));
    assert!(!other.exists(), "only the named pipe gets the test event");
    assert!(
        sim.requests().is_empty(),
        "--test-pipe does not call the API"
    );
}

#[test]
fn syslog_to_a_missing_local_socket_fails_with_one_line_naming_it() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let missing = dir.path("no-such.sock");
    dir.write_config(
        &sim.url(),
        &syslog_pipe("Gone", "alerts", &missing.display().to_string(), &CASES[0]),
    );
    let run = dir.run("procustodibus-broker", &["--test-pipe", "gone"]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let err = stderr(&run);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        err,
        format!(
            "pipe Gone: cannot connect to {}: no such file or directory\n",
            missing.display()
        )
    );

    // A poll fails too, and says so.
    sim.enqueue_generated("alerts", 2).expect("enqueue");
    dir.write_setup(&sim, "gone-setup");
    let run = dir.run("procustodibus-broker", &[]);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let want = format!(
        "pipe Gone: cannot connect to {}: no such file or directory",
        missing.display()
    );
    assert!(
        stdout(&run).lines().any(|l| l.contains(&want)),
        "{}",
        describe(&run)
    );
}

#[test]
fn test_pipe_with_an_unknown_name_fails_and_lists_the_pipes() {
    let dir = BrokerDir::new();
    let udp = UdpReceiver::bind(false).expect("bind UDP");
    let mut pipes = syslog_pipe("MyPipe", "alerts", &udp.address(), &CASES[0]);
    pipes.push_str(&format!(
        "[Pipe.Other]\nFrom = alerts\nTo = file\nFile = {}\n",
        dir.path("o.jsonl").display()
    ));
    dir.write_config("http://127.0.0.1:9", &pipes);
    let started = Instant::now();
    let run = dir.run("procustodibus-broker", &["--test-pipe", "NoSuchPipe"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let err = stderr(&run);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "{}: no pipe named NoSuchPipe (pipes: MyPipe, Other)",
            dir.config().display()
        )
    );
    assert!(receive_udp(&udp, 0).is_empty());
    assert!(!dir.path("o.jsonl").exists());
}
