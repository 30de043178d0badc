//! The broker's files: `broker.conf`, `broker-setup.conf` and `broker-credentials.conf`.
//!
//! All three use one INI dialect ([`ini`]). Loading validates everything it can without network
//! or writes: pipe names, duplicate pipes, `From` types, `Max`, `To` against the registered sinks,
//! each sink's keys and values, and the expiry of a setup code. Every error is one line that names
//! the file, the line and the problem.
//!
//! Where to read: [`broker`] loads `broker.conf` (its `sink_keys` part is the check behind the
//! unknown-key error a sink's user sees), [`readers`] is how a sink reads its keys, and [`keys`]
//! holds the key helpers every file shares.

pub mod broker;
pub mod credentials;
pub mod error;
pub mod ini;
pub mod keys;
pub mod readers;
pub mod search;
pub mod secret;
pub mod settings;
pub mod setup;

pub use broker::{camel_case, BrokerConfig, PipeConfig};
pub use credentials::Credentials;
pub use error::ConfigError;
pub use readers::{Keys, Occurrence};
pub use search::find_config;
pub use settings::{PipeSettings, Setting};
pub use setup::SetupConfig;
