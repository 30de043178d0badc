//! The spool directory's lock: one broker process per spool.

use std::fs::File;
use std::os::fd::AsRawFd;
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
