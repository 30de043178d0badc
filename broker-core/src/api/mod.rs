//! The Pro Custodibus API: the HTTP calls ([`client`]), the one-time setup ([`setup`]), and the
//! logged-in [`Source`](crate::Source) that pulls the queues ([`source`]).

pub mod client;
pub mod error;
pub mod host;
pub mod setup;
pub mod source;

pub use client::{ApiClient, HealthEntry, Session};
pub use error::ApiError;
pub use setup::{prepare_credentials, run_setup, setup_from_file, SetupError};
pub use source::ApiSource;
