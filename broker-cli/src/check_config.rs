//! `--check-config`: validates everything the broker reads at start, without network or writes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use broker_core::config::BrokerConfig;
use broker_core::pipeline::Pipeline;

use crate::fail;

/// Checks the pipes' sink settings, the credentials or setup file and the spool directory of
/// an already loaded `config`; prints `config OK: PATH` and exits 0, or prints the first problem
/// and exits 1.
pub fn run(config: &BrokerConfig) -> ExitCode {
    match check(config) {
        Ok(summary) => {
            println!("config OK: {} ({summary})", config.path.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn check(config: &BrokerConfig) -> Result<String, String> {
    Pipeline::new(&config.pipes)
        .and_then(|pipeline| pipeline.check_files())
        .map_err(|e| e.to_string())?;
    let identity = match config.load_credentials().map_err(|e| e.to_string())? {
        Some(_) => format!("credentials {}", config.credentials_path.display()),
        None => match config.load_setup().map_err(|e| e.to_string())? {
            Some(_) => format!("setup {}", config.setup_path.display()),
            None => {
                return Err(format!(
                    "no credentials at {} and no setup file at {}: copy broker-setup.conf from the Pro Custodibus app there",
                    config.credentials_path.display(),
                    config.setup_path.display()
                ))
            }
        },
    };
    let state_directory = std::env::var("STATE_DIRECTORY").ok();
    let spool = config.spool_dir(state_directory.as_deref());
    check_spool_dir(&spool)?;
    let pipes = match config.pipes.len() {
        1 => "1 pipe".to_string(),
        n => format!("{n} pipes"),
    };
    let metrics = match config.metrics {
        Some(addr) => format!(", metrics at http://{addr}/metrics"),
        None => String::new(),
    };
    Ok(format!(
        "{pipes}, {identity}, spool {}{metrics}",
        spool.display()
    ))
}

/// The spool directory must be a writable directory, or creatable in its nearest existing
/// ancestor.
fn check_spool_dir(dir: &Path) -> Result<(), String> {
    let mut existing: PathBuf = dir.to_path_buf();
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent.to_path_buf(),
            _ => {
                existing = PathBuf::from(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return Err(format!(
            "spool {}: {} is not a directory",
            dir.display(),
            existing.display()
        ));
    }
    if !writable(&existing) {
        return Err(format!(
            "spool {}: {} is not writable by this user",
            dir.display(),
            existing.display()
        ));
    }
    Ok(())
}

fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access() reads a NUL-terminated path this function owns.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}
