//! `procustodibus-broker`: the stock daemon.

fn main() -> std::process::ExitCode {
    broker_cli::main()
}
