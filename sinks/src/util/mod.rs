//! Shared pieces for sinks that talk to a receiver over the network.
//!
//! - [`http`]: the HTTP sink layer (client settings and keys, secrets, answers, masking).

pub mod http;
