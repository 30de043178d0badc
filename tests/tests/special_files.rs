//! `File` at something other than a regular file (docs/reliability.md, "The spool"): a FIFO with
//! no reader never hangs the broker (its open fails at once, `ENXIO`, and is retried with a clear
//! message), and every event reaches the reader that opens it later, also after a reader went
//! away (a broken pipe, retried); a character device (a pty as standard output, as in a container
//! run with `-t`, and `/dev/null`) works as `File`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use broker_tests::*;

/// The retry message of a file sink whose FIFO has no reader.
fn no_reader_message(fifo: &Path) -> String {
    format!(
        "cannot open {}: it is a FIFO with no reader (ENXIO); retrying",
        fifo.display()
    )
}

/// Makes a FIFO at `path` with `mkfifo`.
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Opens the FIFO for reading in a thread (which waits for a writer), sends every line read from
/// it, and closes it after `max` lines (or at its end). The thread ends when it has closed it.
fn read_fifo_lines(fifo: &Path, max: usize) -> (mpsc::Receiver<String>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let fifo = fifo.to_path_buf();
    let reader = std::thread::spawn(move || {
        let reader = BufReader::new(File::open(&fifo).expect("open the FIFO for reading"));
        for line in reader.lines().take(max) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (rx, reader)
}

/// Collects lines from `rx` until there are `n` or `limit` passes.
fn collect_lines(rx: &mpsc::Receiver<String>, n: usize, limit: Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + limit;
    let mut lines = Vec::new();
    while lines.len() < n {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    lines
}

#[test]
fn a_fifo_without_a_reader_never_hangs_the_broker_and_its_reader_gets_every_event() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let fifo = dir.path("events.fifo");
    mkfifo(&fifo);
    let other = dir.path("other.jsonl");
    dir.write_config(
        &sim.url(),
        &format!(
            "{}{}",
            file_pipe("Fifo", "alerts, log_authn", None, &fifo),
            file_pipe("Other", "alerts, log_authn", None, &other)
        ),
    );
    dir.set_up(&sim);
    let mut alerts = sim.enqueue_generated("alerts", 6).unwrap();
    let mut authn = sim.enqueue_generated("log_authn", 4).unwrap();

    // A one-shot run with nobody reading: it ends by itself (a blocking open would hang it until
    // the limit kills it), says why, and keeps the events for the next run.
    let mut command = dir.command("procustodibus-broker");
    command.arg("-v");
    let out = run_with_timeout(command, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let log = stdout(&out);
    assert!(
        log.contains(&no_reader_message(&fifo)),
        "the retry names the FIFO and why\n{}",
        describe(&out)
    );
    assert!(
        log.contains("pipe Fifo: 10 events kept in the spool for the next run"),
        "{}",
        describe(&out)
    );
    assert_eq!(dir.lines("other.jsonl").len(), 10, "Other is not held up");

    // A `--loop` run retries while nobody reads, and is not held up either.
    alerts.extend(sim.enqueue_generated("alerts", 3).unwrap());
    authn.extend(sim.enqueue_generated("log_authn", 2).unwrap());
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let retried = wait_until(Duration::from_secs(20), || {
        broker
            .stdout_so_far()
            .lines()
            .any(|l| l.contains("pipe Fifo: ") && l.contains(&no_reader_message(&fifo)))
    });
    let other_done = wait_until(Duration::from_secs(20), || {
        dir.lines("other.jsonl").len() == 15
    });
    assert!(
        retried && other_done,
        "the retry is logged ({retried}) and Other has its 15 events ({})\n{}",
        dir.lines("other.jsonl").len(),
        broker.stdout_so_far()
    );

    // A reader comes: it gets every event, each queue's in order, within the retry backoff.
    let (rx, _reader) = read_fifo_lines(&fifo, usize::MAX);
    let got = collect_lines(&rx, 15, Duration::from_secs(60));
    let out = broker.terminate(Duration::from_secs(10));
    assert_eq!(
        got.len(),
        15,
        "the reader got {} of 15 events: {got:?}\n{}",
        got.len(),
        describe(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(lines_of_type(&got, "alerts"), expected_lines(&alerts));
    assert_eq!(lines_of_type(&got, "log_authn"), expected_lines(&authn));
    // The broker closed the FIFO when it stopped: the reader sees its end, with nothing more.
    assert!(
        collect_lines(&rx, 1, Duration::from_secs(5)).is_empty(),
        "no line twice"
    );
}

#[test]
fn a_fifo_reader_that_goes_away_is_waited_for_and_the_next_reader_gets_the_rest() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let fifo = dir.path("events.fifo");
    mkfifo(&fifo);
    dir.write_config(&sim.url(), &file_pipe("Fifo", "alerts", None, &fifo));
    dir.set_up(&sim);
    let first = sim.enqueue_generated("alerts", 4).unwrap();
    let (rx, reader) = read_fifo_lines(&fifo, first.len());
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let got = collect_lines(&rx, first.len(), Duration::from_secs(30));
    assert_eq!(got, expected_lines(&first), "{}", broker.stdout_so_far());
    reader.join().expect("first reader");

    // The reader has gone: the next write fails (EPIPE, never a SIGPIPE that kills the broker),
    // and the broker retries until another reader comes.
    let broken = format!("pipe Fifo: cannot write {}: broken pipe", fifo.display());
    let second = sim.enqueue_generated("alerts", 5).unwrap();
    let retried = wait_until(Duration::from_secs(20), || {
        let log = broker.stdout_so_far();
        log.contains(&broken) && log.contains(&no_reader_message(&fifo))
    });
    assert!(
        retried,
        "the broken pipe, then the missing reader, are logged as retries\n{}",
        broker.stdout_so_far()
    );
    let (rx, _reader) = read_fifo_lines(&fifo, usize::MAX);
    let got = collect_lines(&rx, second.len(), Duration::from_secs(60));
    let out = broker.terminate(Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(got, expected_lines(&second), "{}", describe(&out));
}

/// A new pseudo-terminal: the master, the slave.
fn open_pty() -> (File, File) {
    let mut master = -1;
    let mut slave = -1;
    // SAFETY: openpty writes two descriptors into the integers it is given; the name, termios
    // and window size pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and belong to no one else.
    unsafe {
        (
            File::from(OwnedFd::from_raw_fd(master)),
            File::from(OwnedFd::from_raw_fd(slave)),
        )
    }
}

#[test]
fn dev_stdout_on_a_terminal_works_as_file() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        &file_pipe("Out", "alerts", None, Path::new("/dev/stdout")),
    );
    dir.set_up(&sim);
    let alerts = sim.enqueue_generated("alerts", 8).unwrap();

    // The broker's standard output is a terminal (a character device), as in `docker run -t`.
    let (mut master, slave) = open_pty();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // Ends with EIO once every copy of the slave is closed.
        let _ = master.read_to_end(&mut bytes);
        bytes
    });
    let mut command = dir.command("procustodibus-broker");
    command.stdout(Stdio::from(slave));
    let mut child = command.spawn().expect("spawn the broker");
    // The command holds the parent's copy of the slave: drop it so the reader sees the end.
    drop(command);
    let status = child.wait().expect("wait for the broker");
    let bytes = reader.join().expect("pty reader");
    let text = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
    let got: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(String::from)
        .collect();
    assert_eq!(status.code(), Some(0), "{text}");
    assert_eq!(got, expected_lines(&alerts), "{text}");
}

#[test]
fn dev_null_works_as_file() {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    dir.write_config(
        &sim.url(),
        &file_pipe("Null", "alerts", None, Path::new("/dev/null")),
    );
    dir.set_up(&sim);
    sim.enqueue_generated("alerts", 5).unwrap();
    // A one-shot run exits 0 only when every pipe delivered everything it pulled.
    let out = dir.run("procustodibus-broker", &["-v"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        !stdout(&out).contains("kept in the spool"),
        "{}",
        describe(&out)
    );
    assert_eq!(sim.queue_len("alerts"), 0);
}
