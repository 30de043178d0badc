use super::*;
use crate::config::BrokerConfig;
use std::path::PathBuf;

fn pipes(text: &str) -> Vec<PipeConfig> {
    let text = format!("[Broker]\nBroker = b\n{text}");
    BrokerConfig::parse(&text, Path::new("b.conf"))
        .unwrap()
        .pipes
}

fn events(queue: EventType, range: std::ops::Range<u32>) -> Vec<Event> {
    range
        .map(|i| Event::from_encoded_line(queue, format!("{{\"id\":\"{queue}-{i}\"}}")))
        .collect()
}

fn ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.id().unwrap()).collect()
}

const TWO: &str = "[Pipe.A]\nFrom = log_authn, alerts\nTo = recording\n\
                   [Pipe.B]\nFrom = alerts\nTo = recording\n";

#[test]
fn pipes_read_in_from_order_and_positions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = pipes(TWO);
    {
        let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &config).unwrap();
        spool
            .append(EventType::Alerts, &events(EventType::Alerts, 0..3))
            .unwrap();
        spool
            .append(EventType::LogAuthn, &events(EventType::LogAuthn, 0..2))
            .unwrap();
        let a = spool.read(0, 10).unwrap();
        assert_eq!(
            ids(&a),
            [
                "log_authn-0",
                "log_authn-1",
                "alerts-0",
                "alerts-1",
                "alerts-2"
            ]
        );
        // A delivered the first three; B delivered everything.
        spool.advance(0, &a[..3]).unwrap();
        let b = spool.read(1, 2).unwrap();
        assert_eq!(ids(&b), ["alerts-0", "alerts-1"]);
        spool.advance(1, &b).unwrap();
        assert_eq!((spool.pending(0), spool.pending(1)), (2, 1));
        // A second broker cannot use the same spool.
        let second = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &config);
        assert!(second.err().unwrap().0.contains("in use by another"));
    }
    let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &config).unwrap();
    assert_eq!(ids(&spool.read(0, 10).unwrap()), ["alerts-1", "alerts-2"]);
    assert_eq!(ids(&spool.read(1, 10).unwrap()), ["alerts-2"]);
    // New events come after the spooled ones.
    spool
        .append(EventType::Alerts, &events(EventType::Alerts, 3..4))
        .unwrap();
    assert_eq!(ids(&spool.read(1, 10).unwrap()), ["alerts-2", "alerts-3"]);
}

#[test]
fn space_is_reclaimed_when_every_pipe_is_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 64 * 1024, &pipes(TWO)).unwrap();
    for i in 0..20 {
        spool
            .append(
                EventType::Alerts,
                &events(EventType::Alerts, i * 50..(i + 1) * 50),
            )
            .unwrap();
    }
    let full = spool.bytes();
    assert!(full > 20_000, "{full}");
    loop {
        let b = spool.read(1, 100).unwrap();
        if b.is_empty() {
            break;
        }
        spool.advance(1, &b).unwrap();
    }
    assert_eq!(spool.bytes(), full, "pipe A still needs every event");
    loop {
        let a = spool.read(0, 100).unwrap();
        if a.is_empty() {
            break;
        }
        spool.advance(0, &a).unwrap();
    }
    assert_eq!(spool.bytes(), 0);
    let segments = std::fs::read_dir(dir.path().join("queues/alerts"))
        .unwrap()
        .count();
    assert_eq!(segments, 0);
}

#[test]
fn full_spool_signals_when_it_has_room_again() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 4096, &pipes(TWO)).unwrap();
    let freed = spool.watch_freed();
    let mut n = 0;
    while !spool.is_full() {
        spool
            .append(EventType::Alerts, &events(EventType::Alerts, n..n + 10))
            .unwrap();
        n += 10;
    }
    assert!(!freed.has_changed().unwrap());
    for pipe in [0, 1] {
        let all = spool.read(pipe, 10_000).unwrap();
        assert_eq!(all.len(), n as usize);
        spool.advance(pipe, &all).unwrap();
    }
    assert!(!spool.is_full());
    assert!(freed.has_changed().unwrap());
}

#[test]
fn removed_pipe_is_dropped_new_pipe_starts_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    {
        let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &pipes(TWO)).unwrap();
        spool
            .append(EventType::Alerts, &events(EventType::Alerts, 0..4))
            .unwrap();
        let b = spool.read(1, 10).unwrap();
        spool.advance(1, &b).unwrap();
    }
    // A is gone (its 4 alerts are dropped); C is new.
    let config = pipes(
        "[Pipe.B]\nFrom = alerts\nTo = recording\n\
         [Pipe.C]\nFrom = alerts\nTo = recording\n",
    );
    let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &config).unwrap();
    assert_eq!((spool.pending(0), spool.pending(1)), (0, 0));
    assert_eq!(spool.bytes(), 0, "nobody needs the old alerts");
    spool
        .append(EventType::Alerts, &events(EventType::Alerts, 4..5))
        .unwrap();
    assert_eq!(ids(&spool.read(1, 10).unwrap()), ["alerts-4"]);
    assert_eq!(ids(&spool.read(0, 10).unwrap()), ["alerts-4"]);
}

#[test]
fn lost_positions_replay_everything_rather_than_skip() {
    let dir = tempfile::tempdir().unwrap();
    {
        let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &pipes(TWO)).unwrap();
        spool
            .append(EventType::Alerts, &events(EventType::Alerts, 0..3))
            .unwrap();
        let b = spool.read(1, 2).unwrap();
        spool.advance(1, &b).unwrap();
    }
    std::fs::write(dir.path().join("positions"), "garbage\n").unwrap();
    let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &pipes(TWO)).unwrap();
    assert_eq!(spool.pending(1), 3);
    assert_eq!(spool.pending(0), 3);
}

#[test]
fn dead_letters_go_to_the_spool_directory() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &pipes(TWO)).unwrap();
    let event = &events(EventType::Alerts, 7..8)[0];
    let path = spool.dead_letter(1, event, "too large").unwrap();
    assert!(path.ends_with(DEAD_LETTER_FILE));
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(v["pipe"], "B");
    assert_eq!(v["id"], "alerts-7");
    assert_eq!(v["event"]["id"], "alerts-7");
}

#[test]
fn a_file_in_the_way_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool");
    std::fs::write(&path, "").unwrap();
    let err = Spool::open(&path, DEFAULT_MAX_BYTES, &pipes(TWO))
        .err()
        .unwrap();
    assert!(
        err.0.starts_with(&format!("spool {}:", path.display())),
        "{err}"
    );
}

/// Fills a spool of pipe B (alerts) with 150 events of about 100 bytes (several 4 KiB
/// segments), damages it with `damage` (given the segment files, oldest first), reopens it, and
/// delivers everything: returns the delivered ids and the dead-letter file's text.
fn deliver_after_damage(damage: impl FnOnce(&[PathBuf])) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = pipes("[Pipe.B]\nFrom = alerts\nTo = recording\n");
    let pad = "x".repeat(80);
    let all: Vec<Event> = (0..150)
        .map(|i| {
            Event::from_encoded_line(
                EventType::Alerts,
                format!("{{\"id\":\"{i}\",\"p\":\"{pad}\"}}"),
            )
        })
        .collect();
    {
        let spool = Spool::open(dir.path(), 32 * 1024, &config).unwrap();
        spool.append(EventType::Alerts, &all).unwrap();
    }
    let qdir = dir.path().join("queues").join("alerts");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&qdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "{} segments", segs.len());
    damage(&segs);
    let spool = Spool::open(dir.path(), 32 * 1024, &config).unwrap();
    let mut delivered = Vec::new();
    for _ in 0..100 {
        let batch = spool.read(0, 7).unwrap();
        if batch.is_empty() {
            break;
        }
        delivered.extend(ids(&batch));
        spool.advance(0, &batch).unwrap();
    }
    assert_eq!(spool.pending(0), 0);
    assert_eq!(spool.bytes(), 0, "the spool reclaims to empty");
    assert_eq!(std::fs::read_dir(&qdir).unwrap().count(), 0);
    let letters = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap_or_default();
    (delivered, letters)
}

fn expect_all_but(delivered: &[String], missing: &[u32]) {
    let expected: Vec<String> = (0..150)
        .filter(|i| !missing.contains(i))
        .map(|i| i.to_string())
        .collect();
    assert_eq!(delivered, expected);
}

#[test]
fn a_flipped_byte_in_record_2_of_the_first_segment_costs_that_record_only() {
    let (delivered, letters) = deliver_after_damage(|segs| {
        let mut bytes = std::fs::read(&segs[0]).unwrap();
        let record = record::HEADER + r#"{"id":"0","p":""}"#.len() + 80;
        bytes[2 * record + record::HEADER + 20] ^= 0x01;
        std::fs::write(&segs[0], bytes).unwrap();
    });
    expect_all_but(&delivered, &[2]);
    assert_eq!(letters.lines().count(), 1);
    assert!(
        letters.contains("damaged record") && letters.contains(r#"\"id\":\"2\""#),
        "{letters}"
    );
}

#[test]
fn a_missing_middle_segment_costs_its_events_only() {
    let mut gone = Vec::new();
    let (delivered, _) = deliver_after_damage(|segs| {
        let first =
            segment::parse_file_name(segs[1].file_name().unwrap().to_str().unwrap()).unwrap();
        let next =
            segment::parse_file_name(segs[2].file_name().unwrap().to_str().unwrap()).unwrap();
        gone = (first as u32..next as u32).collect();
        std::fs::remove_file(&segs[1]).unwrap();
    });
    assert!(!gone.is_empty());
    expect_all_but(&delivered, &gone);
}

#[test]
fn a_torn_last_segment_is_cut_at_the_torn_record() {
    let (delivered, letters) = deliver_after_damage(|segs| {
        let last = segs.last().unwrap();
        let len = std::fs::metadata(last).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(last).unwrap();
        file.set_len(len - 10).unwrap();
    });
    expect_all_but(&delivered, &[149]);
    assert!(letters.is_empty());
}

#[test]
fn a_segment_that_cannot_be_deleted_fails_no_delivery_and_is_counted_until_gone() {
    let dir = tempfile::tempdir().unwrap();
    let config = pipes(TWO);
    let spool = Spool::open(dir.path(), 32 * 1024, &config).unwrap();
    let pad = "x".repeat(80);
    let all: Vec<Event> = (0..100)
        .map(|i| {
            Event::from_encoded_line(
                EventType::Alerts,
                format!("{{\"id\":\"{i}\",\"p\":\"{pad}\"}}"),
            )
        })
        .collect();
    spool.append(EventType::Alerts, &all).unwrap();
    let qdir = dir.path().join("queues").join("alerts");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&qdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    // Pipe A is done with everything; B holds the segments.
    let a = spool.read(0, 1000).unwrap();
    spool.advance(0, &a).unwrap();
    // The first segment is already gone; the second cannot be deleted (a directory now).
    std::fs::remove_file(&segs[0]).unwrap();
    std::fs::remove_file(&segs[1]).unwrap();
    std::fs::create_dir(&segs[1]).unwrap();
    std::fs::write(segs[1].join("x"), "x").unwrap();
    let before = spool.bytes();
    let b = spool.read(1, 1000).unwrap();
    assert_eq!(b.len(), 100);
    spool.advance(1, &b).unwrap();
    // The one already gone counts as deleted; the rest wait behind the stuck one.
    let left = spool.bytes();
    assert!(left > 0 && left < before, "{left} of {before}");
    // Once it can be deleted, the next delivery reclaims it.
    std::fs::remove_dir_all(&segs[1]).unwrap();
    spool
        .append(EventType::Alerts, &events(EventType::Alerts, 0..1))
        .unwrap();
    for pipe in [0, 1] {
        let got = spool.read(pipe, 10).unwrap();
        spool.advance(pipe, &got).unwrap();
    }
    assert_eq!(spool.bytes(), 0);
}

#[test]
fn new_spool_directories_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a").join("spool");
    let _spool = Spool::open(&root, DEFAULT_MAX_BYTES, &pipes(TWO)).unwrap();
    for d in [
        root.clone(),
        root.join("queues"),
        root.join("queues").join("alerts"),
    ] {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
}

#[test]
fn renaming_a_pipe_only_in_case_keeps_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let before = pipes("[Pipe.MyPipe]\nFrom = alerts\nTo = recording\n");
    {
        let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &before).unwrap();
        spool
            .append(EventType::Alerts, &events(EventType::Alerts, 0..3))
            .unwrap();
        let got = spool.read(0, 2).unwrap();
        spool.advance(0, &got).unwrap();
    }
    let after = pipes("[Pipe.mypipe]\nFrom = alerts\nTo = recording\n");
    let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &after).unwrap();
    assert_eq!(ids(&spool.read(0, 10).unwrap()), ["alerts-2"]);
}

#[test]
fn a_torn_positions_file_replays_rather_than_skips() {
    let dir = tempfile::tempdir().unwrap();
    let config = pipes(TWO);
    {
        let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &config).unwrap();
        spool
            .append(EventType::Alerts, &events(EventType::Alerts, 0..3))
            .unwrap();
        let got = spool.read(1, 1).unwrap();
        spool.advance(1, &got).unwrap();
    }
    // A torn write: B's line claims more than it delivered, A's says nothing delivered yet.
    let path = dir.path().join("positions");
    let text = std::fs::read_to_string(&path).unwrap();
    let torn = text.replace("B\talerts\t1", "B\talerts\t3");
    assert_ne!(torn, text);
    std::fs::write(&path, torn).unwrap();
    let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &config).unwrap();
    assert_eq!(spool.read(1, 10).unwrap().len(), 3);
}

#[test]
fn backlog_counts_each_pipes_undelivered_events_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &pipes(TWO)).unwrap();
    assert_eq!(spool.backlog(1), (0, 0));
    spool
        .append(EventType::Alerts, &events(EventType::Alerts, 0..3))
        .unwrap();
    let all = spool.bytes();
    assert_eq!(spool.backlog(1), (3, all));
    let b = spool.read(1, 1).unwrap();
    spool.advance(1, &b).unwrap();
    let (events_left, bytes_left) = spool.backlog(1);
    assert_eq!(events_left, 2);
    assert!(bytes_left > 0 && bytes_left < all, "{bytes_left} of {all}");
    let b = spool.read(1, 10).unwrap();
    spool.advance(1, &b).unwrap();
    assert_eq!(spool.backlog(1), (0, 0), "A still holds the segment");
    assert_eq!(spool.backlog(0), (3, all));
    assert_eq!(spool.backlog(9), (0, 0));
}

#[test]
fn the_lock_holder_is_this_process_while_the_spool_is_open() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(lock_holder(dir.path()), LockHolder::Nobody);
    let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &pipes(TWO)).unwrap();
    assert_eq!(
        lock_holder(dir.path()),
        LockHolder::Process(std::process::id())
    );
    drop(spool);
    assert_eq!(lock_holder(dir.path()), LockHolder::Nobody);
}

#[test]
fn dead_letters_are_counted_per_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), DEFAULT_MAX_BYTES, &pipes(TWO)).unwrap();
    let event = &events(EventType::Alerts, 0..1)[0];
    spool.dead_letter(1, event, "too big").unwrap();
    spool.dead_letter(1, event, "too big").unwrap();
    assert_eq!((spool.dead_lettered(0), spool.dead_lettered(1)), (0, 2));
    // One that cannot be written is not counted.
    std::fs::remove_file(dir.path().join(DEAD_LETTER_FILE)).unwrap();
    std::fs::create_dir(dir.path().join(DEAD_LETTER_FILE)).unwrap();
    assert!(spool.dead_letter(0, event, "too big").is_err());
    assert_eq!(spool.dead_lettered(0), 0);
}
