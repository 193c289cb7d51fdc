//! Benchmark: verifying and parsing a generated 1,000-release channel index, as the agent
//! does on every poll, measured whole and split into its two halves (the ed25519
//! signature check over the raw bytes, and the strict parse with validation), so the split
//! is visible. Run with `cargo xtask bench`; the figures are recorded in
//! docs/performance.md. Not a timed assertion.

use std::hint::black_box;

use coxswain::format::index::{ChannelIndexKind, Health};
use coxswain::format::trust::RoleName;
use coxswain::format::{
    ApiVersion, ChannelIndex, IndexChart, IndexRelease, Sha256Digest, Signatures, Timestamp,
    TrustRoot, read_json, to_json_pretty,
};
use coxswain::keys;
use coxswain::verify::{IndexPolicy, TrustChain, check_threshold, verify_index};
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use serde_json::json;

const RELEASES: usize = 1_000;

fn chart(name: &str, version: &str) -> IndexChart {
    let digest = Sha256Digest::of(format!("{name}-{version}").as_bytes());
    IndexChart {
        name: name.to_owned(),
        version: version.to_owned(),
        url: format!("../../charts/{}", IndexChart::archive_name(&digest)),
        digest,
        size: 4_096 + name.len() as u64,
    }
}

/// A release shaped like the testdata ones: an image tag and a replica count in its
/// values, up to two earlier releases it depends on, every twentieth with an older entry.
/// About 0.7 KB of pretty-printed JSON each, like the 676 KB index the design measured.
fn release(i: usize) -> IndexRelease {
    let name = format!("app-{i:04}");
    let values = json!({
        "image": {"tag": format!("1.{}.{}", i % 17, i % 5)},
        "replicas": 1 + i % 3,
    });
    let depends_on = [i / 2, i.saturating_sub(1)]
        .into_iter()
        .filter(|&d| d < i)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|d| format!("app-{d:04}"))
        .collect();
    let mut entry = IndexRelease {
        name: name.clone(),
        namespace: format!("ns-{i:04}"),
        chart: chart(&name, "1.4.2"),
        values: values.as_object().cloned().unwrap_or_default(),
        depends_on,
        health: Health::default(),
        upgrade_from: Some(">=1.0.0, <2.0.0".to_owned()),
        crds: None,
        backup: None,
        requires_approval: false,
        previous: Vec::new(),
    };
    if i % 20 == 0 {
        let mut old = entry.to_previous();
        old.chart = chart(&name, "1.4.1");
        entry.previous.push(old);
    }
    entry
}

fn index_verification(c: &mut Criterion) {
    let channel_key = SigningKey::from_bytes(&[3; 32]);
    let root_key = SigningKey::from_bytes(&[1; 32]);
    let published: Timestamp = "2026-11-26T03:00:00Z".parse().expect("a timestamp");
    let now: Timestamp = "2026-11-27T03:00:00Z".parse().expect("a timestamp");
    let index = ChannelIndex {
        api_version: ApiVersion::V1,
        kind: ChannelIndexKind::ChannelIndex,
        channel: "stable".to_owned(),
        sequence: 42,
        published,
        expires: "2026-12-10T03:00:00Z".parse().expect("a timestamp"),
        releases: (0..RELEASES).map(release).collect(),
        withdrawn: Vec::new(),
    };
    let bytes = to_json_pretty(&index).expect("serializable");
    let sig_bytes = to_json_pretty(&keys::sign(&bytes, std::slice::from_ref(&channel_key)))
        .expect("serializable");
    let signatures: Signatures = read_json(&sig_bytes, "index.json.sig").expect("valid");
    let root = TrustRoot::new(
        1,
        "2027-11-26T03:00:00Z".parse().expect("a timestamp"),
        (&[root_key.verifying_key()], 1),
        (&[channel_key.verifying_key()], 1),
    );
    let root_bytes = to_json_pretty(&root).expect("serializable");
    let trusted = TrustChain::anchor(&root_bytes, None, "trust.json")
        .and_then(|chain| chain.trusted(now))
        .expect("a trusted root");
    let policy = IndexPolicy {
        channel: "stable",
        min_sequence: 42,
        now,
    };
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
