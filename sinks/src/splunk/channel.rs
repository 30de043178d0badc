//! The HEC channel: a GUID sent as `X-Splunk-Request-Channel` with every request. HEC counts
//! indexer acknowledgements per channel, so a pipe keeps its channel across restarts: it is
//! generated once and kept in the spool directory (`splunk-channel-PIPE`, one line), which the
//! pipeline hands the sink ([`broker_core::Sink::use_state_dir`]). Without a spool directory
//! (`--test-pipe`, an in-memory spool) the channel lives as long as the sink.

use std::path::{Path, PathBuf};

use crate::util::guid::is_guid;

/// The file that keeps the channel of pipe `pipe` in `dir`: `splunk-channel-PIPE` (characters
/// other than ASCII letters, digits, `-`, `_` and `.` written as `_`).
pub fn channel_file(dir: &Path, pipe: &str) -> PathBuf {
    let name: String = pipe
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("splunk-channel-{name}"))
}

/// A random GUID (UUID version 4), lower case: `8-4-4-4-12` hex digits.
pub fn new_guid() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot make a channel id: {e}"))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// The channel kept in `file`, or a new one written there (through a temporary file renamed
/// into place, so a crash never leaves half a GUID). A file that holds no GUID is replaced.
/// Errors name the file and the reason. Blocking: call it on tokio's blocking pool.
pub fn load_or_create(file: &Path) -> Result<String, String> {
    match std::fs::read_to_string(file) {
        Ok(text) if is_guid(text.trim()) => return Ok(text.trim().to_string()),
        Ok(_) => {
            tracing::warn!("{} holds no channel id: writing a new one", file.display());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "cannot read {}: {}",
                file.display(),
                crate::util::io_error::reason(&e)
            ))
        }
    }
    let guid = new_guid()?;
    let temporary = file.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        std::fs::write(&temporary, format!("{guid}\n"))?;
        std::fs::File::open(&temporary)?.sync_all()?;
        std::fs::rename(&temporary, file)
    };
    write().map_err(|e| {
        format!(
            "cannot write {}: {}",
            file.display(),
            crate::util::io_error::reason(&e)
        )
    })?;
    Ok(guid)
}
