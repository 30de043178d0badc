//! The events every measurement works on, and a digest to check what landed in a file.
//!
//! The events come from the simulator's [`EventGenerator`]: realistic
//! JSON:API objects with tricky text, about one in 200 of them around 10 KB. They are generated
//! once and the same raw texts are enqueued again for each measurement, so every figure is about
//! the same bytes.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{self, BufRead};
use std::path::Path;

use broker_core::{Event, EventType};
use broker_sim::{EventGenerator, Simulator};

/// The events of a run: raw JSON texts as the API serves them, per queue, oldest first.
pub struct Workload {
    /// Each queue with its raw events, in [`EventType::ALL`] order.
    pub queues: Vec<(EventType, Vec<String>)>,
}

/// How `total` events are split over the four queues: evenly, the first queues taking the rest.
pub fn per_queue(total: usize) -> [usize; 4] {
    let mut counts = [total / 4; 4];
    for count in counts.iter_mut().take(total % 4) {
        *count += 1;
    }
    counts
}

impl Workload {
    /// Enqueues `total` generated events (a quarter per queue) in `sim` with
    /// [`Simulator::enqueue_generated`] and keeps their raw texts to enqueue them again later.
    pub fn enqueue_generated(sim: &Simulator, total: usize) -> Workload {
        let queues = EventType::ALL
            .into_iter()
            .zip(per_queue(total))
            .map(|(queue, n)| {
                let raws = sim
                    .enqueue_generated(queue.as_str(), n)
                    .expect("the simulator knows the four queues");
                (queue, raws)
            })
            .collect();
        Workload { queues }
    }

    /// `total` events (a quarter per queue) from the simulator's generator with `seed`, without
    /// a simulator.
    pub fn generate(total: usize, seed: u64) -> Workload {
        let mut generator = EventGenerator::new(seed);
        let queues = EventType::ALL
            .into_iter()
            .zip(per_queue(total))
            .map(|(queue, n)| {
                let sim_type = queue
                    .as_str()
                    .parse::<broker_sim::EventType>()
                    .expect("the simulator knows the four queues");
                (
                    queue,
                    (0..n).map(|_| generator.generate(sim_type)).collect(),
                )
            })
            .collect();
        Workload { queues }
    }

    /// Enqueues every event in `sim` again (the queues must be empty).
    pub fn enqueue(&self, sim: &Simulator) {
        for (queue, raws) in &self.queues {
            for raw in raws {
                sim.enqueue(queue.as_str(), raw)
                    .expect("the simulator knows the four queues");
            }
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.queues.iter().map(|(_, r)| r.len()).sum()
    }

    /// Ok when a receiver took exactly these events (`taken` of them), else what it took:
    /// a benchmark's figures count only when nothing was lost or sent twice.
    pub fn all_taken(&self, taken: usize) -> Result<(), String> {
        if taken == self.len() {
            Ok(())
        } else {
            Err(format!(
                "the receiver took {taken} of {} events",
                self.len()
            ))
        }
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of raw JSON.
    pub fn raw_bytes(&self) -> u64 {
        self.queues
            .iter()
            .flat_map(|(_, r)| r.iter())
            .map(|r| r.len() as u64)
            .sum()
    }

    /// Every event encoded as the broker writes it (queue after queue).
    pub fn encode(&self) -> Vec<Event> {
        self.queues
            .iter()
            .flat_map(|(queue, raws)| raws.iter().map(move |raw| (*queue, raw)))
            .map(|(queue, raw)| {
                Event::from_json(queue, raw).expect("generated events are valid JSON")
            })
            .collect()
    }
}

/// What a JSON Lines file should hold, in a form that is cheap to compare: the number of lines,
/// the bytes (newlines included) and an order-independent hash of the lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinesDigest {
    /// Number of lines.
    pub lines: u64,
    /// Bytes, newlines included.
    pub bytes: u64,
    /// The wrapping sum of each line's hash: equal for the same lines in any order.
    pub hash: u64,
}

impl LinesDigest {
    /// Adds one line (without its newline).
    pub fn add(&mut self, line: &[u8]) {
        let mut hasher = DefaultHasher::new();
        line.hash(&mut hasher);
        self.lines += 1;
        self.bytes += line.len() as u64 + 1;
        self.hash = self.hash.wrapping_add(hasher.finish());
    }

    /// The digest of these events' lines.
    pub fn of_events(events: &[Event]) -> LinesDigest {
        let mut digest = LinesDigest::default();
        for event in events {
            digest.add(event.line().as_bytes());
        }
        digest
    }

    /// How these lines fall short of `expected`, as the end of an error message: "N lines
    /// (B bytes), not the N `expected_what` (B bytes)", with " or other lines" where the counts
    /// agree (so the lines themselves differ).
    pub fn shortfall(&self, expected: &LinesDigest, expected_what: &str) -> String {
        format!(
            "{} lines ({} bytes), not the {} {expected_what} ({} bytes){}",
            self.lines,
            self.bytes,
            expected.lines,
            expected.bytes,
            if self.lines == expected.lines {
                " or other lines"
            } else {
                ""
            }
        )
    }

    /// The digest of a file's lines.
    pub fn of_file(path: &Path) -> io::Result<LinesDigest> {
        let mut digest = LinesDigest::default();
        let mut reader = io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(digest);
            }
            let newline = line.last() == Some(&b'\n');
            if newline {
                line.pop();
            }
            digest.add(&line);
            if !newline {
                // A last line without its newline: count its bytes as they are.
                digest.bytes -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_taken_only_when_the_receiver_took_exactly_the_workload() {
        let workload = Workload::generate(10, 1);
        assert_eq!(workload.all_taken(10), Ok(()));
        assert_eq!(
            workload.all_taken(9),
            Err("the receiver took 9 of 10 events".to_string())
        );
        assert!(workload.all_taken(11).is_err(), "one sent twice");
    }
}
