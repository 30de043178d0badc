//! The sink crates linked into the stock binary. A crate that nothing names may be dropped by the
//! linker, and its sinks with it, so each is named here.

use broker_sinks as _;

/// Makes sure the stock sink crates are linked in.
pub fn link() {
    broker_sinks::link();
}
