//! The `file` sink: appends one JSON line per event to a file (JSON Lines).
//!
//! ```ini
//! [Pipe.MyStats]
//! From = endpoint_stats
//! To = file
//! File = /var/log/procustodibus/broker/stats.jsonl
//! ```
//!
//! The file is opened in append mode (created with mode 0640 when missing) on the first delivery
//! and kept open until [`Sink::reopen`] (log rotation), [`Sink::close`] or a failed write. Before
//! each delivery the sink compares the open file with what is at the path now (device and inode):
//! when the file was moved (logrotate's `mv`) or deleted, or the path now names another file, it
//! closes its handle and opens (or creates) the file at the path, so no event goes to a file that
//! nobody will read. A batch is written as one buffer; when a write fails partway, only the events
//! whose whole line reached the file count as delivered. Should the file end in a partial line
//! (an earlier failed write, a crash), the next write first ends that line, so a retried event
//! always starts a line of its own. A batch written to a regular file is synced to disk
//! (`fdatasync`) before `deliver` returns `Ok`, because the spool reclaims delivered events at
//! once; a failed sync counts no event as delivered, so the retry writes the batch again (at least
//! once). Every failure (missing or unwritable directory, a directory
//! at the path, a full disk) is worth retrying: an operator can fix each of them, and the next
//! delivery opens the path again. Writing runs on tokio's blocking pool, never on the runtime's
//! threads.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use broker_core::config::{ConfigError, PipeSettings};
use broker_core::registry::{BuildError, SinkKey};
use broker_core::{Event, Sink, SinkError, SinkPlugin};

use crate::os_error::reason;

/// The mode of a file the sink creates (before the umask): owner read/write, group read.
const CREATE_MODE: u32 = 0o640;

/// The keys of a file pipe, as messages and `--list-sinks` show them.
pub const KEYS: &[SinkKey] = &[SinkKey::one(
    "File",
    "path of the file that gets one JSON line per event (required)",
)];

inventory::submit! {
    SinkPlugin {
        name: "file",
        keys: KEYS,
        build: build_file_sink,
    }
}

/// Builds a [`FileSink`] from a pipe's settings (the registered builder of the `file` sink).
fn build_file_sink(settings: &PipeSettings) -> Result<Box<dyn Sink>, BuildError> {
    Ok(Box::new(FileSink::from_settings(settings)?))
}

/// A sink that appends each event's JSON line, and a newline, to a file.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: Option<OpenFile>,
}

/// The open file, whether it is a regular file (only those are synced), and its device
/// and inode numbers (to notice that the path now names another file, or none).
#[derive(Debug)]
struct OpenFile {
    file: File,
    regular: bool,
    id: (u64, u64),
}

impl OpenFile {
    /// Whether `path` still names this file (a failed `stat` counts as no).
    fn is_at(&self, path: &Path) -> bool {
        match std::fs::metadata(path) {
            Ok(metadata) => (metadata.dev(), metadata.ino()) == self.id,
            Err(_) => false,
        }
    }
}

/// Why a batch could not be written in full.
struct WriteFailure {
    /// How many events of the batch reached the file whole.
    delivered: usize,
    /// The one-line message.
    message: String,
}

impl FileSink {
    /// A sink that appends to `path`. Nothing is opened until the first delivery.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSink {
            path: path.into(),
            file: None,
        }
    }

    /// Validates a pipe's settings: `File` must be present and not empty. No I/O.
    pub fn from_settings(settings: &PipeSettings) -> Result<Self, ConfigError> {
        match settings.value("File") {
            None => Err(settings.error(
                "File",
                "missing: the file sink needs File = PATH of the file to append to",
            )),
            Some("") => {
                Err(settings.error("File", "empty: give the path of the file to append to"))
            }
            Some(path) => Ok(FileSink::new(path)),
        }
    }

    /// The path of the file this sink appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Sink for FileSink {
    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        let (buffer, ends) = encode_lines(events);
        let path = self.path.clone();
        let file = self.file.take();
        let task = tokio::task::spawn_blocking(move || append_batch(&path, file, &buffer, &ends));
        match task.await {
            Ok((file, Ok(()))) => {
                self.file = file;
                Ok(())
            }
            // After any failure the handle is dropped: the next delivery opens the path again.
            Ok((_, Err(failure))) => Err(SinkError::retry(failure.delivered, failure.message)),
            Err(e) => Err(SinkError::retry(
                0,
                format!(
                    "cannot write {}: writing task failed: {e}",
                    self.path.display()
                ),
            )),
        }
    }

    /// Closes the file and, if it was open, opens the file at the path again (after log
    /// rotation). A sink that has not delivered yet stays closed until its first delivery.
    async fn reopen(&mut self) -> Result<(), SinkError> {
        if self.file.take().is_none() {
            return Ok(());
        }
        let path = self.path.clone();
        let task = tokio::task::spawn_blocking(move || open_for_append(&path));
        match task.await {
            Ok(Ok(open)) => {
                self.file = Some(open);
                Ok(())
            }
            Ok(Err(message)) => Err(SinkError::retry(0, message)),
            Err(e) => Err(SinkError::retry(
                0,
                format!(
                    "cannot open {}: opening task failed: {e}",
                    self.path.display()
                ),
            )),
        }
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        let Some(open) = self.file.take() else {
            return Ok(());
        };
        if !open.regular {
            return Ok(());
        }
        let task = tokio::task::spawn_blocking(move || open.file.sync_data());
        let result = match task.await {
            Ok(result) => result.map_err(|e| reason(&e)),
            Err(e) => Err(format!("flushing task failed: {e}")),
        };
        result.map_err(|why| {
            SinkError::retry(0, format!("cannot flush {}: {why}", self.path.display()))
        })
    }
}

/// Every event's line plus a newline in one buffer, and the offset just past each line.
fn encode_lines(events: &[Event]) -> (Vec<u8>, Vec<usize>) {
    let size = events.iter().map(|e| e.line().len() + 1).sum();
    let mut buffer = Vec::with_capacity(size);
    let mut ends = Vec::with_capacity(events.len());
    for event in events {
        buffer.extend_from_slice(event.line().as_bytes());
        buffer.push(b'\n');
        ends.push(buffer.len());
    }
    (buffer, ends)
}

/// Opens the file if needed (or if the open one is no longer at the path) and appends the whole
/// buffer (blocking: runs on the blocking pool). Gives back the open file on success.
fn append_batch(
    path: &Path,
    file: Option<OpenFile>,
    buffer: &[u8],
    ends: &[usize],
) -> (Option<OpenFile>, Result<(), WriteFailure>) {
    let file = file.filter(|open| {
        let here = open.is_at(path);
        if !here {
            tracing::info!(
                "file {} was moved or deleted: opening a new one at that path",
                path.display()
            );
        }
        here
    });
    let mut open = match file {
        Some(open) => open,
        None => match open_for_append(path) {
            Ok(open) => open,
            Err(message) => return nothing_delivered(message),
        },
    };
    let (written, result) = write_all_counted(&mut open.file, buffer);
    match result {
        Ok(()) => match sync_if_regular(&open) {
            Ok(()) => (Some(open), Ok(())),
            // The lines reached the page cache but maybe not the disk: none counts as delivered,
            // so the spool keeps them and the retry writes them again (at least once).
            Err(e) => nothing_delivered(format!("cannot sync {}: {}", path.display(), reason(&e))),
        },
        Err(e) => {
            let delivered = ends.iter().take_while(|end| **end <= written).count();
            let message = format!("cannot write {}: {}", path.display(), reason(&e));
            (None, Err(WriteFailure { delivered, message }))
        }
    }
}

/// [`append_batch`]'s answer when none of the batch counts as delivered: no file kept open (the
/// retry opens the path again) and the failure `message`.
fn nothing_delivered(message: String) -> (Option<OpenFile>, Result<(), WriteFailure>) {
    (
        None,
        Err(WriteFailure {
            delivered: 0,
            message,
        }),
    )
}

/// Makes what was written to a regular file durable (`fdatasync`), so that `Ok` means on disk
/// and the spool may reclaim the events. Pipes and character devices have no disk to sync.
fn sync_if_regular(open: &OpenFile) -> io::Result<()> {
    if open.regular {
        open.file.sync_data()
    } else {
        Ok(())
    }
}

/// Opens `path` for appending, creating it when missing, and ends a partial last line.
///
/// The open never blocks: a FIFO with no reader fails at once (`ENXIO`), named as such, and the
/// retry opens it again. A FIFO is opened write-only, so the broker is never its own reader.
/// The handle blocks again once open, as writes to a file or a device expect.
fn open_for_append(path: &Path) -> Result<OpenFile, String> {
    let mut options = OpenOptions::new();
    options
        .append(true)
        .create(true)
        .mode(CREATE_MODE)
        .custom_flags(libc::O_NONBLOCK);
    let is_fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    if is_fifo {
        let file = options.open(path).map_err(|e| open_error(path, &e))?;
        return finish_open(path, file);
    }
    // Reading lets us look at the last byte; a file we may only write to is still appended to.
    let opened = match options.clone().read(true).open(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => options.open(path),
        other => other,
    };
    let file = opened.map_err(|e| open_error(path, &e))?;
    finish_open(path, file)
}

/// Makes an opened handle blocking again, notes what it is and ends a partial last line.
fn finish_open(path: &Path, mut file: File) -> Result<OpenFile, String> {
    set_blocking(&file).map_err(|e| open_error(path, &e))?;
    let metadata = file.metadata().map_err(|e| open_error(path, &e))?;
    let regular = metadata.is_file();
    let id = (metadata.dev(), metadata.ino());
    if regular && metadata.len() > 0 {
        let mut last = [0u8; 1];
        // A failed read (a write-only handle) just skips the check.
        if matches!(file.read_at(&mut last, metadata.len() - 1), Ok(1)) && last[0] != b'\n' {
            let (_, result) = write_all_counted(&mut file, b"\n");
            result.map_err(|e| format!("cannot write {}: {}", path.display(), reason(&e)))?;
        }
    }
    Ok(OpenFile { file, regular, id })
}

/// Clears `O_NONBLOCK` (set only so that opening a FIFO cannot hang) on an open handle.
fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with flags it returned; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The message for a file that cannot be opened, naming a missing directory when that is why.
fn open_error(path: &Path, error: &io::Error) -> String {
    let shown = path.display();
    match error.kind() {
        io::ErrorKind::NotFound => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                format!(
                    "cannot open {shown}: directory {} does not exist",
                    dir.display()
                )
            }
            _ => format!("cannot open {shown}: {}", reason(error)),
        },
        io::ErrorKind::IsADirectory => {
            format!("cannot open {shown}: it is a directory, not a file")
        }
        io::ErrorKind::NotADirectory => match path.parent() {
            Some(dir) if dir.is_file() => {
                format!(
                    "cannot open {shown}: {} is a file, not a directory",
                    dir.display()
                )
            }
            _ => format!("cannot open {shown}: {}", reason(error)),
        },
        _ if error.raw_os_error() == Some(libc::ENXIO) => {
            format!("cannot open {shown}: it is a FIFO with no reader (ENXIO); retrying")
        }
        _ => format!("cannot open {shown}: {}", reason(error)),
    }
}

/// Writes the whole buffer, in as few calls as the OS allows, and says how many bytes made it.
fn write_all_counted(file: &mut File, buffer: &[u8]) -> (usize, io::Result<()>) {
    let mut written = 0;
    while written < buffer.len() {
        match file.write(&buffer[written..]) {
            Ok(0) => {
                let e = io::Error::new(io::ErrorKind::WriteZero, "the file accepted no more bytes");
                return (written, Err(e));
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Err(e)),
        }
    }
    (written, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
