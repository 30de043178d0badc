//! The status file: written whole to a temporary file, flushed and renamed over `status.json`,
//! so a reader sees the old or the new status, never a mix; read back without following links
//! (the reader may be root, the directory the daemon user's).

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::{Status, FILE_NAME};

/// The mode of the status file: the daemon user reads and writes it, its group reads it.
const MODE: u32 = 0o640;
/// The largest status file read back.
const MAX_BYTES: u64 = 4 << 20;

/// Replaces `DIR/status.json` with `status`.
pub fn write(dir: &Path, status: &Status) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    let temp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)?;
    file.set_permissions(std::fs::Permissions::from_mode(MODE))?;
    file.write_all(&text)?;
    file.write_all(b"\n")?;
    file.sync_data()?;
    std::fs::rename(&temp, dir.join(FILE_NAME))
}

/// Reads `DIR/status.json`: `Ok(None)` when there is none; an error names the file when it is
/// not a regular file (a link is not followed), too large, or not a status.
pub fn read(dir: &Path) -> Result<Option<Status>, String> {
    let path = dir.join(FILE_NAME);
    let fail = |what: String| format!("{}: {what}", path.display());
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(fail("is a symbolic link: not followed".to_string()))
        }
        Err(e) => return Err(fail(format!("cannot open: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(fail("is not a regular file".to_string()));
    }
    if meta.len() > MAX_BYTES {
        return Err(fail(format!("larger than {MAX_BYTES} bytes")));
    }
    let mut text = String::new();
    file.take(MAX_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| fail(format!("not a status file: {e}")))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn round_trip_mode_and_no_links() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), Ok(None));
        let status = Status {
            pid: 42,
            ..Default::default()
        };
        write(dir.path(), &status).unwrap();
        assert_eq!(read(dir.path()), Ok(Some(status)));
        let meta = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(meta.mode() & 0o777, MODE);

        let elsewhere = tempfile::tempdir().unwrap();
        write(elsewhere.path(), &Status::default()).unwrap();
        std::fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join(FILE_NAME), dir.path().join(FILE_NAME))
            .unwrap();
        let e = read(dir.path()).unwrap_err();
        assert!(
            e.ends_with("status.json: is a symbolic link: not followed"),
            "{e}"
        );

        std::fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
        std::fs::create_dir(dir.path().join(FILE_NAME)).unwrap();
        assert!(read(dir.path())
            .unwrap_err()
            .ends_with("is not a regular file"));
    }
}
