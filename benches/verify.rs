//! Benchmark: verifying and parsing a generated 1,000-release channel index, as the agent
//! does on every poll, measured whole and split into its two halves (the ed25519
//! signature check over the raw bytes, and the strict parse with validation), so the split
//! is visible. Run with `cargo xtask bench`; the figures are recorded in
//! docs/performance.md. Not a timed assertion.

use std::hint::black_box;

use coxswain::format::trust::RoleName;
use coxswain::format::{ChannelIndex, Signatures, read_json};
use coxswain::verify::{check_threshold, verify_index};
use criterion::{Criterion, criterion_group, criterion_main};

mod common;

const RELEASES: usize = 1_000;

fn index_verification(c: &mut Criterion) {
    let common::Signed {
        bytes,
        sig_bytes,
        root,
        trusted,
        policy,
    } = common::signed(&common::index(RELEASES, 42, common::published()));
    let signatures: Signatures = read_json(&sig_bytes, "index.json.sig").expect("valid");
    eprintln!("index: {RELEASES} releases, {} bytes", bytes.len());
    record_size(bytes.len());
    // The benchmark measures a path that succeeds.
    verify_index(
        &bytes,
        &sig_bytes,
        &trusted,
        policy,
        "index.json",
        "index.json.sig",
    )
    .expect("the generated index verifies");

    let mut group = c.benchmark_group("index-1000");
    group.bench_function("verify-and-parse", |b| {
        b.iter(|| {
            verify_index(
                black_box(&bytes),
                black_box(&sig_bytes),
                &trusted,
                policy,
                "index.json",
                "index.json.sig",
            )
            .expect("verifies")
        });
    });
    let channel_keys = root.role_keys(RoleName::Channel);
    group.bench_function("signature-check", |b| {
        b.iter(|| {
            check_threshold(
                black_box(&bytes),
                &signatures,
                &channel_keys,
                1,
                RoleName::Channel,
                "index.json",
            )
            .expect("signed")
        });
    });
    group.bench_function("parse", |b| {
        b.iter(|| read_json::<ChannelIndex>(black_box(&bytes), "index.json").expect("parses"));
    });
    group.finish();
}

/// Leaves the index size beside criterion's results for `cargo xtask bench` to report.
fn record_size(bytes: usize) {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::PathBuf::from("target"),
        std::path::PathBuf::from,
    );
    let dir = target.join("criterion").join("index-1000");
    if std::fs::create_dir_all(&dir).is_ok() {
        // Only a figure for the report; the benchmark does not depend on it.
        let _ = std::fs::write(dir.join("index-bytes.txt"), bytes.to_string());
    }
}

criterion_group!(benches, index_verification);
criterion_main!(benches);
