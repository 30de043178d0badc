//! Dead-letter redelivery end to end (docs/reliability.md, "Redelivering dead letters"): events
//! a UDP syslog pipe rejected as too large go to the dead-letter file; once the pipe's sink is
//! one that takes them, `--redeliver-dead-letter` puts them back and every one arrives exactly
//! once, with a one-shot run, with a `--loop` daemon running (which dead-letters more events
//! meanwhile), and after a redelivery killed between its steps; `--dead-letter` sums it up.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use broker_sim::Simulator;
use broker_tests::*;

/// A big alert (too large for UDP), `big-N`, the same size for every N below 10.
fn big_alert(n: usize) -> String {
    format!(
        r#"{{"type":"alerts","id":"big-{n}","attributes":{{"text":"{}"}}}}"#,
        "x".repeat(70_000)
    )
}

/// The pipes: `Siem` (UDP syslog at `udp`, or the file `siem.jsonl` when `udp` is `None`) and
/// `Other` (the file `other.jsonl`), both reading alerts.
fn pipes(dir: &BrokerDir, udp: Option<&str>) -> String {
    let siem = match udp {
        Some(address) => default_syslog_pipe("Siem", "alerts", None, address),
        None => file_pipe("Siem", "alerts", None, &dir.path("siem.jsonl")),
    };
    siem + &file_pipe("Other", "alerts", None, &dir.path("other.jsonl"))
}

/// A broker set up against a simulator, whose pipe Siem dead-lettered `big` big alerts out of
/// the alerts it got (normal ones around them): returns the raw events in queue order and the
/// big ones.
fn with_dead_letters(big: usize) -> (Simulator, BrokerDir, Vec<String>, Vec<String>) {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let (udp, address) = DatagramCollector::bind_udp();
    dir.write_config(&sim.url(), &pipes(&dir, Some(&address)));
    dir.set_up(&sim);
    let mut all = Vec::new();
    let mut bigs = Vec::new();
    for n in 0..big {
        all.extend(sim.enqueue_generated("alerts", 2).unwrap());
        let event = big_alert(n);
        sim.enqueue("alerts", &event).unwrap();
        all.push(event.clone());
        bigs.push(event);
    }
    all.extend(sim.enqueue_generated("alerts", 2).unwrap());
    let out = dir.run("procustodibus-broker", &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        udp.stop().len(),
        all.len() - big,
        "the normal alerts went by UDP"
    );
    assert_eq!(dead_letters(&dir).len(), big, "{}", describe(&out));
    (sim, dir, all, bigs)
}

/// The lines of the dead-letter file.
fn dead_letters(dir: &BrokerDir) -> Vec<String> {
    dir.lines("spool/dead-letter.jsonl")
}

/// The complete batches waiting in the spool's redeliver directory, of every pipe.
fn batches(spool: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for pipe in std::fs::read_dir(spool.join("redeliver"))
        .into_iter()
        .flatten()
    {
        let pipe = pipe.unwrap().path();
        if pipe.is_dir() {
            for file in std::fs::read_dir(&pipe).unwrap() {
                found.push(file.unwrap().path());
            }
        }
    }
    found.sort();
    found
}

fn run_ok(dir: &BrokerDir, args: &[&str]) -> String {
    let out = dir.run("procustodibus-broker", args);
    assert!(out.status.success(), "{args:?}: {}", describe(&out));
    stdout(&out)
}

#[test]
fn redelivered_dead_letters_arrive_once_in_order_after_the_sink_is_fixed() {
    let (sim, dir, all, bigs) = with_dead_letters(3);
    let letters = dead_letters(&dir);

    // The summary: one line for the pipe and its reason (the id in it shown as <id>).
    let summary = run_ok(&dir, &["--dead-letter"]);
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 2, "{summary}");
    assert!(
        lines[0].ends_with("dead-letter.jsonl: 3 dead letters"),
        "{summary}"
    );
    let first: serde_json::Value = serde_json::from_str(&letters[0]).unwrap();
    let last: serde_json::Value = serde_json::from_str(&letters[2]).unwrap();
    let reason = first["reason"].as_str().unwrap().replace("big-0", "<id>");
    assert_eq!(
        lines[1],
        format!(
            "pipe Siem: 3 events from {} to {}: {reason}",
            first["time"].as_str().unwrap(),
            last["time"].as_str().unwrap()
        )
    );

    // A pipe that is not in the config is refused.
    let out = dir.run("procustodibus-broker", &["--redeliver-dead-letter", "Nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("no pipe Nope in"),
        "{}",
        describe(&out)
    );

    // The pipe gets a sink that takes big events; its dead letters go back (named in another
    // case: pipe names ignore case).
    dir.write_config(&sim.url(), &pipes(&dir, None));
    let said = run_ok(&dir, &["--redeliver-dead-letter", "sIEM"]);
    assert!(
        said.contains("pipe Siem: 3 dead letters put back in the spool"),
        "{said}"
    );
    assert!(dead_letters(&dir).is_empty());
    assert!(dir.spool().join("dead-letter.jsonl").exists());
    assert_eq!(batches(&dir.spool()).len(), 1);
    let summary = run_ok(&dir, &["--dead-letter"]);
    assert!(summary.contains(": 0 dead letters\n"), "{summary}");
    assert!(
        summary.contains("pipe siem: 3 events put back, waiting for redelivery"),
        "{summary}"
    );
    assert_eq!(
        run_ok(&dir, &["--redeliver-dead-letter"]).trim(),
        "nothing to redeliver"
    );

    // The next run delivers them, once, in order, to Siem alone.
    let log = run_ok(&dir, &["-v"]);
    assert!(
        log.contains("pipe Siem: 3 dead letters to redeliver"),
        "{log}"
    );
    assert_eq!(dir.lines("siem.jsonl"), expected_lines(&bigs), "{log}");
    assert_eq!(dir.lines("other.jsonl"), expected_lines(&all));
    assert!(
        batches(&dir.spool()).is_empty(),
        "{:?}",
        batches(&dir.spool())
    );
    run_ok(&dir, &[]);
    assert_eq!(dir.lines("siem.jsonl"), expected_lines(&bigs));
    assert!(dead_letters(&dir).is_empty());
}

#[test]
fn redelivery_while_a_daemon_runs_and_dead_letters_more_loses_and_repeats_nothing() {
    let (sim, dir, _, bigs) = with_dead_letters(4);
    // The daemon: Siem now writes a file; a third pipe, Udp, still rejects big events, so the
    // daemon appends dead letters while the redelivery rewrites the file.
    let (udp, address) = DatagramCollector::bind_udp();
    let text = pipes(&dir, None) + &default_syslog_pipe("Udp", "alerts", None, &address);
    dir.write_config(&sim.url(), &text);
    let mut daemon = dir.spawn("procustodibus-broker", &["--loop", "0.2", "-v"]);
    let mut new = Vec::new();
    let mut new_bigs = 0;
    for round in 0..6 {
        new.extend(sim.enqueue_generated("alerts", 2).unwrap());
        // big-4 to big-9: not the ones dead-lettered before.
        let event = big_alert(4 + round);
        sim.enqueue("alerts", &event).unwrap();
        new.push(event);
        new_bigs += 1;
        run_ok(&dir, &["--redeliver-dead-letter", "Siem"]);
        std::thread::sleep(Duration::from_millis(150));
    }
    let want = new.len() + bigs.len();
    let arrived = wait_until(Duration::from_secs(30), || {
        dir.lines("siem.jsonl").len() >= want
            && dead_letters(&dir).len() >= new_bigs
            && batches(&dir.spool()).is_empty()
    });
    std::thread::sleep(Duration::from_millis(600));
    let out = daemon.terminate(Duration::from_secs(6));
    assert!(arrived, "{}", describe(&out));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Siem: every new alert in queue order, and each redelivered one once.
    let siem = dir.lines("siem.jsonl");
    let redelivered = expected_lines(&bigs);
    let queue_order: Vec<&String> = siem.iter().filter(|l| !redelivered.contains(l)).collect();
    assert!(
        queue_order == expected_lines(&new).iter().collect::<Vec<_>>(),
        "the new alerts in queue order ({} of {})",
        queue_order.len(),
        new.len()
    );
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for line in &siem {
        *counts.entry(line).or_default() += 1;
    }
    for line in &redelivered {
        assert_eq!(
            counts.get(line),
            Some(&1),
            "redelivered once: {}",
            &line[..40]
        );
    }
    assert_eq!(siem.len(), want);
    // The dead-letter file: exactly Udp's new dead letters, none of Siem's.
    let left = dead_letters(&dir);
    assert_eq!(left.len(), new_bigs, "{left:?}");
    assert!(
        left.iter().all(|l| l.contains(r#""pipe":"Udp""#)),
        "{left:?}"
    );
    assert_eq!(udp.stop().len(), new.len() - new_bigs);
}

#[test]
fn a_redelivery_killed_between_its_steps_loses_nothing_and_repeats_nothing() {
    let (sim, dir, _, bigs) = with_dead_letters(2);
    let spool = dir.spool();
    let dead_letter = spool.join("dead-letter.jsonl");
    let temp = spool.join("dead-letter.jsonl.redeliver-tmp");
    let before = std::fs::read_to_string(&dead_letter).unwrap();
    dir.write_config(&sim.url(), &pipes(&dir, None));

    // A whole redelivery, then its files put back as they were at each step it can be killed
    // after: the broker's next start (or the next redelivery) finishes it or undoes it.
    run_ok(&dir, &["--redeliver-dead-letter"]);
    let batch = batches(&spool).pop().expect("a batch");
    let id = batch.file_stem().unwrap().to_string_lossy().to_string();
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());

    // Killed after step 2 (the staged batch and the new dead-letter file written, neither in
    // place): the dead-letter file still has every line, and the staged batch is dropped.
    std::fs::rename(&dead_letter, &temp).unwrap();
    std::fs::write(&dead_letter, &before).unwrap();
    let staged = batch.with_file_name(format!("{id}-{}.staged", inode(&temp)));
    std::fs::rename(&batch, &staged).unwrap();
    let summary = run_ok(&dir, &["--dead-letter"]);
    assert!(summary.contains(": 2 dead letters"), "{summary}");
    assert!(
        summary.contains("1 batches of an interrupted redelivery"),
        "{summary}"
    );
    let log = run_ok(&dir, &["-v"]);
    assert!(log.contains("dropping"), "{log}");
    assert!(!staged.exists() && !temp.exists());
    assert!(!dir.path("siem.jsonl").exists(), "nothing redelivered yet");
    assert_eq!(std::fs::read_to_string(&dead_letter).unwrap(), before);

    // Killed after step 1 (only the new dead-letter file written): it is dropped.
    std::fs::write(&temp, "").unwrap();
    run_ok(&dir, &["--redeliver-dead-letter"]);
    assert!(!temp.exists());
    assert!(dead_letters(&dir).is_empty());
    let batch = batches(&spool).pop().expect("a batch");

    // Killed after step 3 (the new dead-letter file in place, the batch still staged): the
    // next start puts the batch in place and delivers it.
    let id = batch.file_stem().unwrap().to_string_lossy().to_string();
    let staged = batch.with_file_name(format!("{id}-{}.staged", inode(&dead_letter)));
    std::fs::rename(&batch, &staged).unwrap();
    let log = run_ok(&dir, &["-v"]);
    assert!(log.contains("finishing an interrupted redelivery"), "{log}");
    assert_eq!(dir.lines("siem.jsonl"), expected_lines(&bigs), "{log}");
    assert!(batches(&spool).is_empty());
    assert!(dead_letters(&dir).is_empty());
    run_ok(&dir, &["--redeliver-dead-letter"]);
    run_ok(&dir, &[]);
    assert_eq!(dir.lines("siem.jsonl"), expected_lines(&bigs), "once");
}

#[test]
fn a_daemon_killed_while_redelivering_loses_nothing() {
    const EVENTS: usize = 1000;
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    // Siem takes one event per batch, so the daemon saves its progress after each.
    let siem = format!(
        "[Pipe.Siem]\nFrom = alerts\nMax = 1\nTo = file\nFile = {}\n\n",
        dir.path("siem.jsonl").display()
    );
    dir.write_config(&sim.url(), &siem);
    dir.set_up(&sim);
    // Dead letters as the broker writes them.
    std::fs::create_dir_all(dir.spool()).unwrap();
    let events: Vec<String> = (0..EVENTS)
        .map(|i| format!(r#"{{"id":"e{i}","n":{i}}}"#))
        .collect();
    let letters: String = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!(
                r#"{{"time":"2026-12-04T06:00:00.000Z","pipe":"Siem","type":"alerts","id":"e{i}","reason":"refused","event":{e}}}"#
            ) + "\n"
        })
        .collect();
    dir.write("spool/dead-letter.jsonl", &letters);
    let said = run_ok(&dir, &["--redeliver-dead-letter"]);
    assert!(
        said.contains(&format!("pipe Siem: {EVENTS} dead letters put back")),
        "{said}"
    );

    let mut daemon = dir.spawn("procustodibus-broker", &["--loop", "60"]);
    wait_until(Duration::from_secs(30), || {
        dir.lines("siem.jsonl").len() >= 50
    });
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &daemon.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = daemon.finish(Duration::from_secs(5));
    let got_first = dir.lines("siem.jsonl").len();
    assert!(
        (50..EVENTS).contains(&got_first),
        "killed halfway: {got_first} delivered\n{}",
        describe(&out)
    );
    let summary = run_ok(&dir, &["--dead-letter"]);
    let waiting = format!("pipe siem: {} events put back", EVENTS - got_first);
    let one_more = format!("pipe siem: {} events put back", EVENTS - got_first + 1);
    assert!(
        summary.contains(&waiting) || summary.contains(&one_more),
        "{got_first} delivered: {summary}"
    );

    // The next run delivers the rest: every one, in order; the kill may repeat the one it
    // struck in the middle of.
    run_ok(&dir, &[]);
    let got = dir.lines("siem.jsonl");
    let mut unique = got.clone();
    unique.dedup();
    assert!(
        unique == events,
        "every event in order ({} of {EVENTS})",
        unique.len()
    );
    assert!(got.len() <= EVENTS + 1, "{} lines", got.len());
    assert!(batches(&dir.spool()).is_empty());
    assert!(dead_letters(&dir).is_empty());
}

#[test]
fn as_root_a_spool_of_the_daemon_user_is_refused_and_the_daemon_user_redelivers() {
    const NOBODY: u32 = 65534;
    let (sim, dir, _, bigs) = with_dead_letters(2);
    dir.write_config(&sim.url(), &pipes(&dir, None));
    let before = dead_letters(&dir);
    chown_recursive(&dir.spool(), NOBODY, NOBODY);
    let out = dir.run("procustodibus-broker", &["--redeliver-dead-letter"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("refusing to redeliver as root")
            && stderr(&out).contains("run it as the daemon user"),
        "{}",
        describe(&out)
    );
    assert_eq!(dead_letters(&dir), before);
    assert!(!dir.spool().join("redeliver").exists());
    // The summary only reads: root may look.
    assert!(run_ok(&dir, &["--dead-letter"]).contains(": 2 dead letters"));

    // As the daemon user it works, and the daemon user's next run delivers them.
    chown_recursive(dir.dir.path(), NOBODY, NOBODY);
    let out = dir
        .spawn_as(
            NOBODY,
            NOBODY,
            "procustodibus-broker",
            &["--redeliver-dead-letter"],
        )
        .finish(Duration::from_secs(30));
    assert!(out.status.success(), "{}", describe(&out));
    let out = dir
        .spawn_as(NOBODY, NOBODY, "procustodibus-broker", &[])
        .finish(Duration::from_secs(30));
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(dir.lines("siem.jsonl"), expected_lines(&bigs));
    assert!(dead_letters(&dir).is_empty());
}
