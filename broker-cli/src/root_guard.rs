//! Refuses to run as root on a configuration another user can change.
//!
//! broker.conf names the spool, the file pipes' files, the credentials and setup paths and the
//! API; setup renames over the credentials path and deletes the setup path. Run as root on a
//! configuration the daemon user (or anyone but root) can write, every mode (`--test`,
//! `--test-pipe`, `--check-config`, a run, `procustodibus-broker-credentials`) would follow paths
//! that user chose. So as root (effective uid 0) the broker first checks broker.conf, the
//! credentials and setup files, and each one's directory (and, for a link, the file and
//! directory it leads to): each must be root's and writable by root alone (a group write bit
//! counts only for group root). Otherwise it stops with one line naming the path and the fix:
//! run as the daemon user, as the documented troubleshooting commands do.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Checks, when the process runs as root, that no one but root can change `paths` or their
/// directories; the error is the one-line message to stop with. Paths that do not exist are
/// skipped (their directory is checked all the same).
pub fn check(paths: &[&Path]) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    check_as_root(paths)
}

/// The check of [`check`], whoever runs it.
fn check_as_root(paths: &[&Path]) -> Result<(), String> {
    for path in paths {
        for watched in watched_paths(path) {
            if let Some(why) = writable_by_others(&watched) {
                return Err(format!(
                    "refusing to run as root: {} {why}, so another user could choose what root \
                     reads and writes through it; run as the daemon user instead \
                     (sudo -u procustodibus-broker procustodibus-broker ...), or make it root's \
                     and writable by root alone (chown root:root, chmod go-w)",
                    watched.display()
                ));
            }
        }
    }
    Ok(())
}

/// A path and its directory, and when it leads elsewhere through links, the file it leads to
/// and that file's directory.
fn watched_paths(path: &Path) -> Vec<PathBuf> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut watched = vec![absolute.clone()];
    watched.extend(absolute.parent().map(Path::to_path_buf));
    if let Ok(real) = std::fs::canonicalize(&absolute) {
        watched.extend(real.parent().map(Path::to_path_buf));
        watched.push(real);
    }
    watched.dedup();
    watched
}

/// Why someone other than root can change `path` (its owner, or its write bits), or `None`
/// when only root can, or it is a link (what it leads to is checked on its own) or missing.
fn writable_by_others(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        return None;
    }
    let mode = meta.mode();
    if meta.uid() != 0 {
        Some(format!("is owned by uid {}, not root", meta.uid()))
    } else if mode & 0o002 != 0 {
        Some(format!(
            "is writable by every user (mode {:o})",
            mode & 0o7777
        ))
    } else if mode & 0o020 != 0 && meta.gid() != 0 {
        Some(format!(
            "is writable by group {} (mode {:o})",
            meta.gid(),
            mode & 0o7777
        ))
    } else {
        None
    }
}
