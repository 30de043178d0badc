//! Helpers of the fault and lifecycle tests (tests/tests/faults.rs, tests/tests/lifecycle.rs):
//! a catalogue of the events a simulator served, to check that a sink's output holds each of
//! them exactly once (or at least once, after a crash) and in the order of its queue; signals
//! to a running broker; and a broker.conf with a chosen `Timeout`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use broker_sim::Simulator;

use crate::{expected_lines, BrokerDir, Running, BROKER_ID};

/// Writes broker.conf like [`BrokerDir::write_config`], with `Timeout = timeout` (seconds, as
/// written in the file) instead of 3, and `Spool` in the broker's directory.
pub fn write_config_timeout(dir: &BrokerDir, api: &str, timeout: &str, pipes: &str) {
    let text = format!(
        "[Broker]\nBroker = {BROKER_ID}\nApi = {api}\nTimeout = {timeout}\nSpool = {}\n\n{pipes}",
        dir.path("spool").display()
    );
    std::fs::write(dir.config(), text).expect("write broker.conf");
}

/// Number of complete lines of a file (0 when it does not exist).
pub fn count_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

/// The lines of a file (empty when it does not exist); a last line without its newline counts.
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read(path)
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The output lines the broker must write for every event enqueued in a simulator, per queue
/// in queue order, with an index from line to (queue, position).
pub struct Catalog {
    queues: Vec<(String, Vec<String>)>,
    index: HashMap<String, (usize, usize)>,
}

impl Catalog {
    /// The catalogue of `queues`: each queue's name and the raw events enqueued in it, in
    /// order. Panics if two events would give the same line (the checks need them distinct).
    pub fn new(queues: &[(&str, &[String])]) -> Catalog {
        let all: Vec<String> = queues.iter().flat_map(|(_, r)| r.iter().cloned()).collect();
        let mut lines = expected_lines(&all).into_iter();
        let mut index = HashMap::new();
        let mut out = Vec::new();
        for (q, (name, raws)) in queues.iter().enumerate() {
            let these: Vec<String> = lines.by_ref().take(raws.len()).collect();
            assert_eq!(these.len(), raws.len(), "reference lines for {name}");
            for (i, line) in these.iter().enumerate() {
                let previous = index.insert(line.clone(), (q, i));
                assert!(previous.is_none(), "two events give the line {line}");
            }
            out.push((name.to_string(), these));
        }
        Catalog { queues: out, index }
    }

    /// Every event of every queue.
    pub fn total(&self) -> usize {
        self.index.len()
    }

    /// The expected lines of queue `name`, in order.
    pub fn lines_of(&self, name: &str) -> &[String] {
        self.queues
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l.as_slice())
            .unwrap_or_else(|| panic!("no queue {name} in the catalogue"))
    }

    /// How `got` (a sink's output lines) compares with the catalogue.
    pub fn tally(&self, got: &[String]) -> Tally {
        let mut seen: Vec<Vec<usize>> = self.queues.iter().map(|(_, l)| vec![0; l.len()]).collect();
        let mut tally = Tally::default();
        let mut last_first: Vec<Option<usize>> = vec![None; self.queues.len()];
        for (n, line) in got.iter().enumerate() {
            let Some(&(q, i)) = self.index.get(line) else {
                if tally.unknown.len() < 3 {
                    tally
                        .unknown
                        .push(format!("line {}: {}", n + 1, shorten(line)));
                }
                tally.unknown_count += 1;
                continue;
            };
            seen[q][i] += 1;
            if seen[q][i] > 1 {
                tally.duplicates += 1;
                continue;
            }
            // First sight of this event: it must come after the first sight of every earlier
            // one of its queue that has been seen.
            if let Some(prev) = last_first[q] {
                if i < prev && tally.out_of_order.len() < 3 {
                    tally.out_of_order.push(format!(
                        "line {}: {} event #{} after #{}",
                        n + 1,
                        self.queues[q].0,
                        i + 1,
                        prev + 1
                    ));
                }
            }
            last_first[q] = Some(last_first[q].map_or(i, |p| p.max(i)));
        }
        for (q, counts) in seen.iter().enumerate() {
            let missing: Vec<usize> = (0..counts.len()).filter(|i| counts[*i] == 0).collect();
            tally.missing += missing.len();
            tally
                .missing_by_queue
                .push((self.queues[q].0.clone(), missing));
        }
        tally
    }
}

fn shorten(line: &str) -> String {
    if line.len() > 160 {
        let mut end = 160;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &line[..end], line.len())
    } else {
        line.to_string()
    }
}

/// The comparison of a sink's output with a [`Catalog`].
#[derive(Debug, Default)]
pub struct Tally {
    /// Events of the catalogue not in the output.
    pub missing: usize,
    /// Per queue, the positions (0-based, in queue order) of the missing events.
    pub missing_by_queue: Vec<(String, Vec<usize>)>,
    /// Output lines that repeat an event already seen.
    pub duplicates: usize,
    /// Output lines that are no event of the catalogue (torn or foreign lines).
    pub unknown_count: usize,
    /// The first few unknown lines.
    pub unknown: Vec<String>,
    /// The first few events whose first appearance is before an earlier event of their queue.
    pub out_of_order: Vec<String>,
}

impl Tally {
    /// Whether every event arrived exactly once, in queue order, with nothing else.
    pub fn exactly_once(&self) -> bool {
        self.missing == 0
            && self.duplicates == 0
            && self.unknown_count == 0
            && self.out_of_order.is_empty()
    }

    /// A one-paragraph summary for assertion messages.
    pub fn describe(&self) -> String {
        let missing: Vec<String> = self
            .missing_by_queue
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(q, m)| {
                format!(
                    "{q}: {} missing, first #{} last #{}",
                    m.len(),
                    m[0] + 1,
                    m[m.len() - 1] + 1
                )
            })
            .collect();
        format!(
            "missing {} [{}]; duplicates {}; unknown lines {} {:?}; out of order {:?}",
            self.missing,
            missing.join("; "),
            self.duplicates,
            self.unknown_count,
            self.unknown,
            self.out_of_order
        )
    }
}

/// Whether every queue of the simulator named in `queues` is empty.
pub fn queues_empty(sim: &Simulator, queues: &[&str]) -> bool {
    queues.iter().all(|q| sim.queue_len(q) == 0)
}

/// Sends signal `name` (`TERM`, `INT`, `HUP`, `KILL`) to process `pid` with `kill`.
pub fn send_signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

impl Running {
    /// Whether the process has not exited (yet).
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends signal `name` and waits at most `limit` for the process to end (killing it after
    /// that); its output and how long it took to end after the signal.
    pub fn stop_with(&mut self, name: &str, limit: Duration) -> (Output, Duration) {
        let sent = Instant::now();
        send_signal(self.id(), name);
        let out = self.finish(limit);
        (out, sent.elapsed())
    }
}

/// The log lines (standard output) of a run that contain `text`.
pub fn log_lines_with(out: &Output, text: &str) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(text))
        .map(String::from)
        .collect()
}
