//! Opening the file: append mode, created when missing, a FIFO without blocking, a partial last
//! line ended, and a message that names what is wrong with the path.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::write::write_all_counted;
use crate::util::io_error::reason;

/// The mode of a file the sink creates (before the umask): owner read/write, group read.
const CREATE_MODE: u32 = 0o640;

/// The open file, whether it is a regular file (only those are synced), and its device
/// and inode numbers (to notice that the path now names another file, or none).
#[derive(Debug)]
pub(super) struct OpenFile {
    pub(super) file: File,
    pub(super) regular: bool,
    pub(super) id: (u64, u64),
}

impl OpenFile {
    /// Whether `path` still names this file (a failed `stat` counts as no).
    pub(super) fn is_at(&self, path: &Path) -> bool {
        match std::fs::metadata(path) {
            Ok(metadata) => (metadata.dev(), metadata.ino()) == self.id,
            Err(_) => false,
        }
    }
}

/// Opens `path` for appending, creating it when missing, and ends a partial last line.
///
/// The open never blocks: a FIFO with no reader fails at once (`ENXIO`), named as such, and the
/// retry opens it again. A FIFO is opened write-only, so the broker is never its own reader.
/// The handle blocks again once open, as writes to a file or a device expect.
pub(super) fn open_for_append(path: &Path) -> Result<OpenFile, String> {
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
pub(super) fn open_error(path: &Path, error: &io::Error) -> String {
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
