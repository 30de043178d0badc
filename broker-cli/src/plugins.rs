//! The sink crates linked into the stock binary. A crate that nothing names may be dropped by the
//! linker, and its sinks with it, so each is named here. Also `--list-sinks`, which shows what
//! the binary at hand has (a custom build adds its own sink crates before calling
//! [`crate::main`]).

use broker_sinks as _;

/// Makes sure the stock sink crates are linked in.
pub fn link() {
    broker_sinks::link();
}

/// The text of `--list-sinks`: each registered sink, sorted by name, on a line of its own, and
/// under it, indented, each key it accepts (as written in broker.conf) with its one-line help.
pub fn list_sinks() -> String {
    let plugins = broker_core::registry::all();
    let shown = |key: &broker_core::registry::SinkKey| {
        let name = key.shown();
        if key.repeatable {
            format!("{name} (repeatable)")
        } else {
            name
        }
    };
    let width = plugins
        .iter()
        .flat_map(|p| p.keys.iter().map(|k| shown(k).len()))
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for plugin in plugins {
        text.push_str(plugin.name);
        text.push('\n');
        for key in plugin.keys {
            text.push_str(&format!("  {:width$}  {}\n", shown(key), key.help));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_core::config::camel_case;

    #[test]
    fn lists_the_stock_sinks_with_their_keys() {
        link();
        let text = list_sinks();
        let names: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
        assert_eq!(names, broker_sinks::STOCK_SINK_NAMES);
        assert!(
            text.contains("\n  File  ") && text.contains("path of the file"),
            "{text}"
        );
        for key in ["Socket", "MaxSize", "CA", "ServerName"] {
            assert!(text.contains(&format!("\n  {key} ")), "{key}: {text}");
        }
    }

    #[test]
    fn keys_are_shown_as_the_config_writes_them() {
        assert_eq!(camel_case("file"), "File");
        assert_eq!(camel_case("max_size"), "MaxSize");
        assert_eq!(camel_case("c_a"), "CA");
    }
}
