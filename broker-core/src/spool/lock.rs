//! The spool directory's lock: one broker process per spool.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::SpoolError;

/// An exclusive `flock` on `DIR/lock`, released when dropped (or when the process dies).
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of `dir`, or says that another process holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, SpoolError> {
        let path = dir.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                SpoolError(format!(
                    "spool {}: cannot open {}: {e}",
                    dir.display(),
                    path.display()
                ))
            })?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(SpoolError(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                format!(
                    "spool {} is in use by another procustodibus-broker process",
                    dir.display()
                )
            } else {
                format!(
                    "spool {}: cannot lock {}: {e}",
                    dir.display(),
                    path.display()
                )
            }));
        }
        Ok(DirLock { _file: file })
    }
}

/// Who holds the lock of a spool directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockHolder {
    /// Nobody: no broker runs on this spool.
    Nobody,
    /// This process id.
    Process(u32),
    /// A process this system cannot name (no `/proc/locks`).
    Unknown,
}

/// Who holds the lock of the spool in `dir`, found without taking it: `/proc/locks` where
/// there is one (matched by device and inode), else a shared `flock` tried and let go at once.
/// The lock file is not followed if it is a link (a link is not the broker's lock).
pub fn lock_holder(dir: &Path) -> LockHolder {
    let path = dir.join("lock");
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return LockHolder::Nobody;
    };
    if !meta.is_file() {
        return LockHolder::Nobody;
    }
    match std::fs::read_to_string("/proc/locks") {
        Ok(locks) => holder_in_proc_locks(&locks, meta.dev(), meta.ino()),
        Err(_) => probe(&path),
    }
}

/// The process of the exclusive `flock` on device `dev`, inode `ino` in the text of
/// `/proc/locks` (`1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`; waiters are marked `->`).
fn holder_in_proc_locks(locks: &str, dev: u64, ino: u64) -> LockHolder {
    let file_id = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
    for line in locks.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [_, "FLOCK", _, "WRITE", pid, id, ..] = fields.as_slice() {
            if *id == file_id {
                if let Ok(pid) = pid.parse() {
                    return LockHolder::Process(pid);
                }
            }
        }
    }
    LockHolder::Nobody
}

/// Whether anyone holds the lock file at `path`, by taking a shared lock for an instant.
fn probe(path: &Path) -> LockHolder {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return LockHolder::Nobody;
    };
    // SAFETY: flock on a descriptor this function owns; closing it releases the lock.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if rc == 0 {
        LockHolder::Nobody
    } else {
        LockHolder::Unknown
    }
}
