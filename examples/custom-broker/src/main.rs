//! `custom-broker`: the stock daemon (same flags, config and behaviour) with one more sink,
//! `webhook`. Naming the sink crate keeps the linker from dropping it and its registration.
//! With no arguments and no config found (`PROCUSTODIBUS_CONF`, the search path), a demo
//! instead: one round against the embedded API simulator, the sink POSTing the alerts to a local
//! receiver that prints them.

fn main() -> std::process::ExitCode {
    webhook_sink::link();
    if broker_examples::no_config_given() {
        return broker_examples::run_http_demo("custom-broker", |url| {
            format!("[Pipe.Hook]\nFrom = alerts\nTo = webhook\nUrl = {url}\n")
        });
    }
    broker_cli::main()
}
