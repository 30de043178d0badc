//! `procustodibus-broker-credentials`: runs setup only.

fn main() -> std::process::ExitCode {
    broker_cli::credentials_main()
}
