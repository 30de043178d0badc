//! Example programs for the Pro Custodibus broker; each is a file in this folder, run with
//! `cargo run --example NAME`:
//!
//! - `quickstart`: the broker's main job against the simulator.
//! - `stdout_sink`: the smallest sink plugin, in a whole daemon (`-- --config broker.conf`).
//! - `embed`: a pipeline in process, from a config string and an in-memory source.
//!
//! Beside them, two crates: `webhook-sink` (a sink crate) and `custom-broker` (the stock daemon
//! plus that sink). The guide `docs/writing-a-sink.md` is compiled here as doctests.

/// The code blocks of `docs/writing-a-sink.md`, compiled and run by `cargo test` as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/writing-a-sink.md")]
pub struct WritingASinkGuide;

#[cfg(test)]
mod tests {
    const GUIDE: &str = include_str!("../docs/writing-a-sink.md");

    /// The guide shows these files whole, in a Rust block: they must be the files as they are.
    #[test]
    fn the_guide_shows_the_example_files_as_they_are() {
        for (name, text) in [
            ("stdout_sink.rs", include_str!("stdout_sink.rs")),
            (
                "custom-broker/src/main.rs",
                include_str!("custom-broker/src/main.rs"),
            ),
        ] {
            let block = format!("```rust,no_run\n{text}```\n");
            assert!(
                GUIDE.contains(&block),
                "docs/writing-a-sink.md does not show examples/{name} as it is: copy the file into its block"
            );
        }
    }
}
