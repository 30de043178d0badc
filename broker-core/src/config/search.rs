//! Where `broker.conf` is found, and where its companion files are by default.

use std::path::{Path, PathBuf};

use super::error::ConfigError;

/// The places searched, in order, after `--config` and `PROCUSTODIBUS_CONF`.
pub const SEARCH_PATH: [&str; 5] = [
    "broker.conf",
    "/usr/local/etc/procustodibus/broker/broker.conf",
    "/usr/local/etc/procustodibus/broker.conf",
    "/etc/procustodibus/broker/broker.conf",
    "/etc/procustodibus/broker.conf",
];

/// Finds `broker.conf`: `explicit` (`--config`) if given, else `env` (`PROCUSTODIBUS_CONF`) if
/// set and not empty, else the first file of [`SEARCH_PATH`] that exists. An explicit path that
/// does not exist is an error naming it.
pub fn find_config(explicit: Option<&Path>, env: Option<&str>) -> Result<PathBuf, ConfigError> {
    let given = explicit
        .map(Path::to_path_buf)
        .or_else(|| env.filter(|e| !e.trim().is_empty()).map(PathBuf::from));
    if let Some(path) = given {
        if path.is_file() {
            return Ok(path);
        }
        let why = if path.exists() {
            "is not a file"
        } else {
            "does not exist"
        };
        return Err(ConfigError::file(&path, format!("config file {why}")));
    }
    SEARCH_PATH
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            ConfigError::other(format!(
                "no broker.conf found (looked in {}); pass --config PATH or set PROCUSTODIBUS_CONF",
                SEARCH_PATH.join(", ")
            ))
        })
}

/// A file beside `config` named with its stem plus `suffix` (`dir/broker.conf` with
/// `-credentials` gives `dir/broker-credentials.conf`).
pub fn companion_path(config: &Path, suffix: &str) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "broker".to_string());
    let name = match config.extension() {
        Some(ext) => format!("{stem}{suffix}.{}", ext.to_string_lossy()),
        None => format!("{stem}{suffix}"),
    };
    config.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companions() {
        assert_eq!(
            companion_path(Path::new("/etc/x/broker.conf"), "-setup"),
            PathBuf::from("/etc/x/broker-setup.conf")
        );
        assert_eq!(
            companion_path(Path::new("b"), "-credentials"),
            PathBuf::from("b-credentials")
        );
    }

    #[test]
    fn explicit_missing_is_an_error() {
        let e = find_config(Some(Path::new("/nonexistent/b.conf")), None).unwrap_err();
        assert_eq!(e.message, "/nonexistent/b.conf: config file does not exist");
    }
}
