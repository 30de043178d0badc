use super::*;
use crate::config::BrokerConfig;

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
