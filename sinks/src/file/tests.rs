//! The file sink's tests: deliveries to real files, directories, FIFOs and `/dev/full`.

use std::fs::File;
use std::io;
use std::path::Path;

use broker_core::config::PipeSettings;
use broker_core::{Event, Sink};

use super::open::open_error;
use super::write::encode_lines;
use super::FileSink;
use broker_core::{EventType, SinkErrorKind};

fn event(json: &str) -> Event {
    Event::from_json(EventType::Alerts, json).unwrap()
}

fn events() -> Vec<Event> {
    vec![
        event(r#"{"id": "a1", "x": "é"}"#),
        event(r#"{"id": "a2", "n": 1.50}"#),
    ]
}

const LINES: &str = "{\"id\":\"a1\",\"x\":\"\\u00e9\"}\n{\"id\":\"a2\",\"n\":1.50}\n";

#[tokio::test]
async fn creates_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let mut sink = FileSink::new(&path);
    sink.deliver(&events()).await.unwrap();
    sink.close().await.unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), LINES);
}

#[tokio::test]
async fn appends_to_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    std::fs::write(&path, "old\n").unwrap();
    let mut sink = FileSink::new(&path);
    sink.deliver(&events()).await.unwrap();
    sink.deliver(&events()[..1]).await.unwrap();
    let want = format!("old\n{LINES}{{\"id\":\"a1\",\"x\":\"\\u00e9\"}}\n");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
}

#[tokio::test]
async fn ends_a_partial_last_line_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    std::fs::write(&path, "{\"id\":\"a1\",\"x").unwrap();
    let mut sink = FileSink::new(&path);
    sink.deliver(&events()).await.unwrap();
    let want = format!("{{\"id\":\"a1\",\"x\n{LINES}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
}

#[tokio::test]
async fn empty_batch_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    FileSink::new(&path).deliver(&[]).await.unwrap();
    assert!(!path.exists());
}

#[tokio::test]
async fn missing_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let path = missing.join("out.jsonl");
    let err = FileSink::new(&path).deliver(&events()).await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert_eq!(err.delivered, 0);
    let want = format!(
        "cannot open {}: directory {} does not exist",
        path.display(),
        missing.display()
    );
    assert_eq!(err.message, want);
}

#[tokio::test]
async fn directory_as_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = FileSink::new(dir.path())
        .deliver(&events())
        .await
        .unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert_eq!(err.delivered, 0);
    let want = format!(
        "cannot open {}: it is a directory, not a file",
        dir.path().display()
    );
    assert_eq!(err.message, want);
}

#[tokio::test]
async fn full_device_delivers_nothing() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full on this system");
        return;
    }
    let mut sink = FileSink::new("/dev/full");
    let err = sink.deliver(&events()).await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert_eq!(err.delivered, 0);
    assert_eq!(
        err.message,
        "cannot write /dev/full: no space left on device"
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The first line of [`LINES`] (event a1), with its newline.
fn first_line() -> String {
    format!("{}\n", LINES.lines().next().unwrap())
}

#[tokio::test]
async fn moved_file_is_noticed_before_the_next_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let rotated = dir.path().join("out.jsonl.1");
    let mut sink = FileSink::new(&path);
    sink.deliver(&events()[..1]).await.unwrap();
    std::fs::rename(&path, &rotated).unwrap();
    sink.deliver(&events()[1..]).await.unwrap();
    sink.deliver(&events()[..1]).await.unwrap();
    sink.close().await.unwrap();
    assert_eq!(read(&rotated), first_line());
    let second = LINES.lines().nth(1).unwrap();
    assert_eq!(read(&path), format!("{second}\n{}", first_line()));
}

#[tokio::test]
async fn deleted_file_is_created_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let mut sink = FileSink::new(&path);
    sink.deliver(&events()[..1]).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    sink.deliver(&events()).await.unwrap();
    assert_eq!(read(&path), LINES);
}

#[tokio::test]
async fn reopen_closes_and_opens_the_path_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let rotated = dir.path().join("out.jsonl.1");
    let mut sink = FileSink::new(&path);
    // Nothing open yet: nothing to reopen, nothing created.
    sink.reopen().await.unwrap();
    assert!(!path.exists());
    sink.deliver(&events()).await.unwrap();
    std::fs::rename(&path, &rotated).unwrap();
    sink.reopen().await.unwrap();
    assert_eq!(read(&path), "");
    sink.deliver(&events()[..1]).await.unwrap();
    assert_eq!(read(&rotated), LINES);
    assert_eq!(read(&path), first_line());
}

#[tokio::test]
async fn reopen_that_fails_is_retried_by_the_next_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let path = logs.join("out.jsonl");
    let mut sink = FileSink::new(&path);
    sink.deliver(&events()[..1]).await.unwrap();
    std::fs::remove_dir_all(&logs).unwrap();
    let err = sink.reopen().await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Retry);
    let want = format!(
        "cannot open {}: directory {} does not exist",
        path.display(),
        logs.display()
    );
    assert_eq!(err.message, want);
    std::fs::create_dir(&logs).unwrap();
    sink.deliver(&events()).await.unwrap();
    assert_eq!(read(&path), LINES);
}

#[tokio::test]
async fn parent_replaced_by_a_file_is_retried_until_restored() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let moved = dir.path().join("logs.old");
    std::fs::create_dir(&logs).unwrap();
    let path = logs.join("out.jsonl");
    let mut sink = FileSink::new(&path);
    sink.deliver(&events()[..1]).await.unwrap();
    std::fs::rename(&logs, &moved).unwrap();
    std::fs::write(&logs, "not a directory").unwrap();
    for _ in 0..2 {
        let err = sink.deliver(&events()).await.unwrap_err();
        assert_eq!(err.kind, SinkErrorKind::Retry);
        assert_eq!(err.delivered, 0);
        let want = format!(
            "cannot open {}: {} is a file, not a directory",
            path.display(),
            logs.display()
        );
        assert_eq!(err.message, want);
    }
    // Nothing went to the old file while the path was unusable.
    assert_eq!(read(&moved.join("out.jsonl")), first_line());
    std::fs::remove_file(&logs).unwrap();
    std::fs::rename(&moved, &logs).unwrap();
    sink.deliver(&events()).await.unwrap();
    assert_eq!(read(&path), format!("{}{LINES}", first_line()));
}

#[tokio::test]
async fn unwritable_directory_is_retried_until_fixed() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("skipped: root may write to any directory");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o500)).unwrap();
    let path = logs.join("out.jsonl");
    let mut sink = FileSink::new(&path);
    let err = sink.deliver(&events()).await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert_eq!(err.delivered, 0);
    assert_eq!(
        err.message,
        format!("cannot open {}: permission denied", path.display())
    );
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o700)).unwrap();
    sink.deliver(&events()).await.unwrap();
    assert_eq!(read(&path), LINES);
}

#[tokio::test]
async fn full_disk_is_retried_until_fixed() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full on this system");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let real = dir.path().join("real.jsonl");
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let mut sink = FileSink::new(&path);
    let err = sink.deliver(&events()).await.unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert_eq!(err.delivered, 0);
    assert_eq!(
        err.message,
        format!("cannot write {}: no space left on device", path.display())
    );
    // The operator points the path at a disk with room.
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&real, &path).unwrap();
    sink.deliver(&events()).await.unwrap();
    assert_eq!(read(&real), LINES);
}

/// How many of the file's cached pages are dirty or under writeback (not yet on disk), by
/// Linux's `cachestat` (6.5 and later); `None` where the kernel lacks it.
fn unsynced_pages(path: &Path) -> Option<u64> {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        cache: u64,
        dirty: u64,
        writeback: u64,
        evicted: u64,
        recently_evicted: u64,
    }
    const SYS_CACHESTAT: libc::c_long = 451;
    let file = File::open(path).unwrap();
    let range = Range { off: 0, len: 0 };
    let mut stat = Stat::default();
    // SAFETY: both pointers are to live repr(C) structs of the layout the kernel expects.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const Range,
            &mut stat as *mut Stat,
            0,
        )
    };
    (rc == 0 && stat.cache > 0).then_some(stat.dirty + stat.writeback)
}

#[tokio::test]
async fn ok_means_the_lines_are_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let mut sink = FileSink::new(&path);
    let many: Vec<Event> = (0..200)
        .map(|i| {
            event(&format!(
                r#"{{"id": "e{i}", "pad": "{}"}}"#,
                "x".repeat(100)
            ))
        })
        .collect();
    sink.deliver(&many).await.unwrap();
    match unsynced_pages(&path) {
        Some(unsynced) => {
            assert_eq!(unsynced, 0, "pages of {} not yet on disk", path.display())
        }
        None => eprintln!("skipped: no cachestat, or the file is not cached (tmpfs?)"),
    }
}

#[tokio::test]
async fn fifo_without_a_reader_is_retried_then_delivered_to_its_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.fifo");
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let mut sink = FileSink::new(&path);
    let err = tokio::time::timeout(std::time::Duration::from_secs(10), sink.deliver(&events()))
        .await
        .expect("delivery to a FIFO without a reader hung")
        .unwrap_err();
    assert_eq!(err.kind, SinkErrorKind::Retry);
    assert_eq!(err.delivered, 0);
    assert_eq!(
        err.message,
        format!(
            "cannot open {}: it is a FIFO with no reader (ENXIO); retrying",
            path.display()
        )
    );
    let reader_path = path.clone();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        io::Read::read_to_string(&mut File::open(reader_path).unwrap(), &mut text).unwrap();
        text
    });
    let mut delivered = false;
    for _ in 0..200 {
        if sink.deliver(&events()).await.is_ok() {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(delivered, "the FIFO's reader never got the events");
    sink.close().await.unwrap();
    drop(sink);
    assert_eq!(reader.join().unwrap(), LINES);
}

#[test]
fn open_errors_name_the_path_and_the_reason() {
    let path = Path::new("/var/log/broker/out.jsonl");
    let denied = io::Error::from_raw_os_error(libc::EACCES);
    assert_eq!(
        open_error(path, &denied),
        "cannot open /var/log/broker/out.jsonl: permission denied"
    );
    let read_only = io::Error::from_raw_os_error(libc::EROFS);
    assert_eq!(
        open_error(path, &read_only),
        "cannot open /var/log/broker/out.jsonl: read-only file system"
    );
}

#[test]
fn delivered_counts_whole_lines_only() {
    let (buffer, ends) = encode_lines(&events());
    assert_eq!(buffer, LINES.as_bytes());
    let whole = |written: usize| ends.iter().take_while(|end| **end <= written).count();
    assert_eq!(whole(0), 0);
    assert_eq!(whole(ends[0] - 1), 0);
    assert_eq!(whole(ends[0]), 1);
    assert_eq!(whole(buffer.len() - 1), 1);
    assert_eq!(whole(buffer.len()), 2);
}

#[test]
fn build_needs_file() {
    let mut settings = PipeSettings::new("MyPipe", "/etc/b.conf", &[]);
    settings.line = 3;
    let err = FileSink::from_settings(&settings).unwrap_err();
    assert_eq!(
        err.message,
        "/etc/b.conf line 3: pipe MyPipe: File: missing: the file sink needs File = PATH of the file to append to"
    );
    let mut settings = PipeSettings::new("MyPipe", "/etc/b.conf", &[("file", "")]);
    settings.settings[0].line = 7;
    let err = FileSink::from_settings(&settings).unwrap_err();
    assert_eq!(
        err.message,
        "/etc/b.conf line 7: pipe MyPipe: file: empty: give the path of the file to append to"
    );
}

#[test]
fn build_does_no_io() {
    let settings = PipeSettings::new("P", "/etc/b.conf", &[("File", "/no/such/dir/x.jsonl")]);
    let sink = FileSink::from_settings(&settings).unwrap();
    assert_eq!(sink.path(), Path::new("/no/such/dir/x.jsonl"));
    assert!(broker_core::registry::find("file").is_some());
    assert!((broker_core::registry::find("file").unwrap().build)(&settings).is_ok());
}
