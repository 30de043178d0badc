//! The sink registry: sinks are plugins collected at link time with `inventory`.
//!
//! A sink crate registers itself with
//!
//! ```ignore
//! inventory::submit! {
//!     broker_core::SinkPlugin {
//!         name: "file",
//!         keys: &[broker_core::registry::SinkKey::one("File", "path of the JSON Lines file")],
//!         build: build_file_sink,
//!     }
//! }
//! ```
//!
//! and a pipe's `To` picks it by name. A binary must name every sink crate it wants (`use
//! broker_sinks as _;`), or the linker may drop the crate and its registration with it.

use crate::config::ini::canonical_key;
use crate::config::{camel_case, PipeSettings};
use crate::sink::Sink;

/// One config key that a sink accepts, besides the common `From`, `Max` and `To`.
#[derive(Clone, Copy, Debug)]
pub struct SinkKey {
    /// The key's display name, as messages and `--list-sinks` show it (`Facility`, `CA`,
    /// `ServerName`). The config matches it ignoring case and `_` (`servername`, `server_name`).
    /// A name in snake_case (`max_size`, `c_a`) is shown camel-cased (`MaxSize`, `CA`).
    pub name: &'static str,
    /// Whether every occurrence counts, in order (like the webhook's `Header`), or only the first.
    pub repeatable: bool,
    /// One line of help for `--list-sinks`.
    pub help: &'static str,
}

impl SinkKey {
    /// A key of which only the first occurrence counts.
    pub const fn one(name: &'static str, help: &'static str) -> Self {
        SinkKey {
            name,
            repeatable: false,
            help,
        }
    }

    /// A key whose every occurrence counts, in order.
    pub const fn list(name: &'static str, help: &'static str) -> Self {
        SinkKey {
            name,
            repeatable: true,
            help,
        }
    }

    /// The key as messages and `--list-sinks` show it (`ServerName`; `MaxSize` for `max_size`).
    pub fn shown(&self) -> String {
        camel_case(self.name)
    }

    /// Whether `key`, as written in a config, is this key (ignoring case and `_`).
    pub fn matches(&self, key: &str) -> bool {
        canonical_key(self.name) == canonical_key(key)
    }
}

/// The error a sink's builder gives for a bad setting; the config loader adds file and line.
pub type BuildError = crate::config::ConfigError;

/// A registered sink type.
pub struct SinkPlugin {
    /// The name a pipe's `To` uses (`file`, `syslog`).
    pub name: &'static str,
    /// The keys this sink accepts.
    pub keys: &'static [SinkKey],
    /// Validates a pipe's settings and builds the sink, without any I/O.
    pub build: fn(&PipeSettings) -> Result<Box<dyn Sink>, BuildError>,
}

inventory::collect!(SinkPlugin);

/// Finds the registered sink of this name (case-insensitive).
pub fn find(name: &str) -> Option<&'static SinkPlugin> {
    inventory::iter::<SinkPlugin>
        .into_iter()
        .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
}

/// Every registered sink, sorted by name.
pub fn all() -> Vec<&'static SinkPlugin> {
    let mut plugins: Vec<_> = inventory::iter::<SinkPlugin>.into_iter().collect();
    plugins.sort_by_key(|p| p.name);
    plugins
}

/// The names of every registered sink, sorted.
pub fn names() -> Vec<&'static str> {
    all().into_iter().map(|p| p.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_shown_as_declared_and_matched_loosely() {
        let key = SinkKey::one("ServerName", "name to verify");
        assert_eq!(key.shown(), "ServerName");
        for written in ["ServerName", "servername", "server_name", "SERVERNAME"] {
            assert!(key.matches(written), "{written}");
        }
        assert!(!key.matches("Server"));
        assert_eq!(SinkKey::one("CA", "").shown(), "CA");
        assert!(SinkKey::one("CA", "").matches("ca"));
        // A snake_case declaration is shown camel-cased.
        assert_eq!(SinkKey::one("max_size", "").shown(), "MaxSize");
        assert_eq!(SinkKey::one("c_a", "").shown(), "CA");
    }
}
