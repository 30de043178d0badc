//! Example programs for the Pro Custodibus broker; each is a file in this folder, run with
//! `cargo run --example NAME`. `quickstart` runs the broker's main job against the simulator.
