//! Every fuzz target (src/fuzz.rs) over its seeds and the saved inputs in
//! fuzz/regressions/<target>/: what AFL++ runs in `cargo xtask fuzz`, replayed on each
//! `cargo test` so that a fixed crash stays fixed. A panic fails the test.

use std::path::Path;

use coxswain::fuzz::{TARGETS, Target, seed_files, target};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `name` over every seed file, generated seed and saved input; returns how many.
fn replay(name: &str) -> usize {
    let target: &Target = target(name).unwrap_or_else(|| panic!("no fuzz target {name}"));
    let mut inputs = Vec::new();
    for file in seed_files(root(), target).unwrap() {
        inputs.push((file.display().to_string(), std::fs::read(&file).unwrap()));
    }
    assert!(!inputs.is_empty(), "{name} has no seed files");
    for (i, bytes) in (target.generated)().into_iter().enumerate() {
        inputs.push((format!("generated seed {i}"), bytes));
    }
    let saved = root().join("fuzz/regressions").join(name);
    if saved.is_dir() {
        for entry in std::fs::read_dir(&saved).unwrap() {
            let path = entry.unwrap().path();
            inputs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    for (what, bytes) in &inputs {
        let outcome = std::panic::catch_unwind(|| (target.run)(bytes));
        assert!(outcome.is_ok(), "fuzz target {name} panicked on {what}");
    }
    inputs.len()
}

#[test]
fn every_target_is_replayed_here() {
    let names: Vec<_> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "read_json",
            "verify_index",
            "chart_archive",
            "spec_values_yaml",
            "trust_walk"
        ]
    );
}

#[test]
fn read_json_replays() {
    replay("read_json");
}

#[test]
fn verify_index_replays() {
    replay("verify_index");
}

#[test]
fn chart_archive_replays() {
    replay("chart_archive");
}

#[test]
fn spec_values_yaml_replays() {
    replay("spec_values_yaml");
}

#[test]
fn trust_walk_replays() {
    replay("trust_walk");
}
