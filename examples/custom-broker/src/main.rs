//! `custom-broker`: the stock daemon (same flags, config and behaviour) with one more sink,
//! `webhook`. Naming the sink crate keeps the linker from dropping it and its registration.

fn main() -> std::process::ExitCode {
    webhook_sink::link();
    broker_cli::main()
}
