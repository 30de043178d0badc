//! The Pro Custodibus API: the HTTP calls ([`client`]), reading their answers (`answer`), the
//! one-time setup ([`setup`]), and the logged-in [`Source`](crate::Source) that pulls the queues
//! ([`source`]).

mod answer;
pub mod client;
pub mod error;
pub mod host;
pub mod setup;
pub mod source;

pub use answer::{HealthEntry, Session};
pub use client::ApiClient;
pub use error::ApiError;
pub use setup::{prepare_credentials, run_setup, setup_from_file, SetupError};
pub use source::ApiSource;
