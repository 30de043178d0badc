//! The shipped binaries: exactly the stock sinks are registered, and the version flags.

use broker_tests::*;

#[test]
fn an_unknown_sink_is_refused_naming_exactly_the_stock_sinks() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let fine = file_pipe("Fine", "alerts", None, &dir.path("fine.jsonl"));
    dir.write_config(&sim.url(), &fine);
    dir.set_up(&sim);
    dir.write_config(
        &sim.url(),
        &format!("{fine}[Pipe.Odd]\nFrom = alerts\nTo = nosuch\n"),
    );
    sim.clear_requests();
    sim.enqueue_generated("alerts", 2).unwrap();
    let runs: [(&str, &[&str]); 5] = [
        ("procustodibus-broker", &[]),
        ("procustodibus-broker", &["--loop", "1"]),
        ("procustodibus-broker", &["--test"]),
        ("procustodibus-broker", &["--test-pipe", "Fine"]),
        ("procustodibus-broker-credentials", &[]),
    ];
    for (binary, args) in runs {
        let run = dir.run(binary, args);
        assert_eq!(
            run.status.code(),
            Some(1),
            "{binary} {args:?}: {}",
            describe(&run)
        );
        let err = stderr(&run);
        assert!(
            err.contains("nosuch") && err.contains("line 14"),
            "{binary} {args:?}: names the value and the line: {}",
            describe(&run)
        );
        assert_eq!(
            sinks_listed(&err),
            Some(stock_sinks_listed(&[]).as_str()),
            "{binary} {args:?}: {err}"
        );
    }
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    assert_eq!(sim.queue_len("alerts"), 2);
    assert!(!dir.path("fine.jsonl").exists());
}

#[test]
fn both_stock_sinks_work_in_the_shipped_binary() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let receiver = UdpReceiver::bind(false).unwrap();
    dir.write_config(
        &sim.url(),
        &format!(
            "{}[Pipe.Log]\nFrom = alerts\nTo = syslog\nSocket = {}\n",
            file_pipe("File", "alerts", None, &dir.path("file.jsonl")),
            receiver.address()
        ),
    );
    dir.set_up(&sim);
    let alerts = sim.enqueue_generated("alerts", 2).unwrap();
    let run = dir.run("procustodibus-broker", &[]);
    assert!(run.status.success(), "{}", describe(&run));
    let lines = expected_lines(&alerts);
    assert_eq!(dir.lines("file.jsonl"), lines);
    let datagrams: Vec<Vec<u8>> = receiver.drain();
    let expected: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| format!("<134>procustodibus: {l}\0").into_bytes())
        .collect();
    assert_eq!(datagrams, expected);
}

#[test]
fn version_flags_print_name_and_version() {
    for (name, flag) in [
        ("procustodibus-broker", "--version"),
        ("procustodibus-broker-credentials", "--version"),
    ] {
        let mut command = std::process::Command::new(binary(name));
        command.arg(flag).env_remove("PROCUSTODIBUS_CONF");
        let run = run_with_timeout(command, std::time::Duration::from_secs(10));
        assert!(run.status.success(), "{name} {flag}: {}", describe(&run));
        assert_eq!(stdout(&run), format!("{name} 2.0.0\n"), "{name} {flag}");
        assert_eq!(stderr(&run), "", "{name} {flag}");
    }
}
