//! A damaged spool (docs/reliability.md, "Damaged spool files"): filled by a one-shot run while
//! the sink is down, then damaged by hand (a flipped byte in the middle of a segment, a missing
//! middle segment, a torn last segment), the next run delivers every intact event exactly once,
//! never stalls, and reclaims the spool to empty.

use std::path::{Path, PathBuf};
use std::time::Duration;

use broker_tests::*;

/// How many events the first run spools: several 4 KiB segments (`SpoolMax = 32K`).
const EVENTS: usize = 60;

/// The segment files of the alerts queue, oldest first.
fn segments(spool: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(spool.join("queues").join("alerts"))
        .expect("alerts queue directory")
        .map(|e| e.expect("dir entry").path())
        .collect();
    segs.sort();
    segs
}

/// The first sequence number of a segment file.
fn first_of(segment: &Path) -> usize {
    let name = segment.file_stem().expect("name").to_string_lossy();
    name.parse().expect("a segment name")
}

/// The byte offset of record `index` in a segment's bytes (each record: 4-byte little-endian
/// length, 4-byte CRC, line).
fn record_offset(bytes: &[u8], index: usize) -> usize {
    let mut at = 0;
    for _ in 0..index {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 8 + len;
    }
    at
}

/// Spools EVENTS alerts with the syslog socket missing, applies `damage` to the segment files
/// and returns which event indexes it cost; then runs `--loop` with the socket back and checks
/// that exactly the other events arrive, once each and in order, and that the spool empties.
fn deliver_after(damage: impl FnOnce(&[PathBuf]) -> Vec<usize>) {
    let sim = simulator(Default::default());
    let dir = BrokerDir::new();
    let socket = dir.path("log.sock");
    dir.write_config_with(
        &sim.url(),
        "SpoolMax = 32K\n",
        &default_syslog_pipe("Sys", "alerts", None, &socket.display().to_string()),
    );
    dir.set_up(&sim);
    let raws = sim.enqueue_generated("alerts", EVENTS).unwrap();
    let first = dir.run("procustodibus-broker", &["-v"]);
    assert_eq!(sim.queue_len("alerts"), 0, "{}", describe(&first));
    let segs = segments(&dir.spool());
    assert!(
        segs.len() >= 3,
        "{} segments\n{}",
        segs.len(),
        describe(&first)
    );

    let lost = damage(&segs);
    let receiver = DatagramCollector::bind_unix(&socket);
    let want: Vec<Vec<u8>> = expected_lines(&raws)
        .iter()
        .enumerate()
        .filter(|(i, _)| !lost.contains(i))
        .map(|(_, l)| default_syslog_message(l))
        .collect();
    let mut broker = dir.spawn("procustodibus-broker", &["--loop", "1", "-v"]);
    let done = wait_until(Duration::from_secs(30), || {
        receiver.count() >= want.len() && spool_segment_bytes(&dir.spool()) == 0
    });
    let out = broker.terminate(Duration::from_secs(6));
    let got = receiver.stop();
    assert!(
        done,
        "{} of {} events delivered, {} bytes left in the spool\n{}",
        got.len(),
        want.len(),
        spool_segment_bytes(&dir.spool()),
        describe(&out)
    );
    assert_eq!(
        got,
        want,
        "every intact event once, in order\n{}",
        describe(&out)
    );
    assert_eq!(spool_segment_bytes(&dir.spool()), 0);
}

#[test]
fn a_flipped_byte_in_record_2_of_the_first_segment_costs_that_event_only() {
    deliver_after(|segs| {
        let mut bytes = std::fs::read(&segs[0]).unwrap();
        let at = record_offset(&bytes, 2);
        bytes[at + 8 + 5] ^= 0x20;
        std::fs::write(&segs[0], bytes).unwrap();
        vec![first_of(&segs[0]) + 2]
    });
}

#[test]
fn a_missing_middle_segment_costs_its_events_only() {
    deliver_after(|segs| {
        let lost = (first_of(&segs[1])..first_of(&segs[2])).collect();
        std::fs::remove_file(&segs[1]).unwrap();
        lost
    });
}

#[test]
fn a_last_segment_cut_mid_record_costs_that_record_only() {
    deliver_after(|segs| {
        let last = segs.last().unwrap();
        let len = std::fs::metadata(last).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(last)
            .unwrap()
            .set_len(len - 7)
            .unwrap();
        vec![EVENTS - 1]
    });
}
