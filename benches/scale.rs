//! Benchmark: how the pure planner and verify grow with the channel. The same generated
//! channel (benches/common) at 100, 1,000 and 10,000 releases; the planner plans the
//! reconcile that follows a one-release change (every other release deployed as the
//! index wants it, so every release is decided and one is upgraded), verify checks the
//! signature and parses and validates the whole index. Linear means the time per release
//! stays flat from one size to the next; `cargo xtask bench` prints those ratios and
//! records them in docs/performance.md. Not a timed assertion.

use std::hint::black_box;

use coxswain::format::{ChannelIndex, IndexRelease};
use coxswain::helm::{Fingerprint, ReleaseStatus};
use coxswain::plan::{InstalledRelease, Settings, plan, values_hash};
use coxswain::verify::verify_index;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

mod common;

/// The channel sizes measured.
const SIZES: [usize; 3] = [100, 1_000, 10_000];

/// Deployed as `entry` wants it, recorded by the index of sequence `sequence`.
fn deployed(entry: &IndexRelease, sequence: u64) -> InstalledRelease {
    InstalledRelease {
        name: entry.name.clone(),
        namespace: entry.namespace.clone(),
        chart_name: entry.chart.name.clone(),
        chart_version: entry.chart.version.clone(),
        status: ReleaseStatus::Deployed,
        revision: 4,
        fingerprint: Some(
            Fingerprint::new(
                "stable",
                sequence,
                *entry.chart.digest.as_bytes(),
                values_hash(&entry.values),
            )
            .expect("a valid channel name"),
        ),
        owner: Some("coxswain/stable".to_owned()),
    }
}

/// The index of a one-release change, and the cluster as the index before it left it:
/// release `n / 2` moves from 1.4.1 to the index's 1.4.2.
fn one_change(n: usize) -> (ChannelIndex, Vec<InstalledRelease>) {
    let index = common::index(n, 43, common::published());
    let mut installed: Vec<InstalledRelease> =
        index.releases.iter().map(|r| deployed(r, 42)).collect();
    let changed = &mut installed[n / 2];
    let old = common::chart(&changed.name, "1.4.1");
    changed.chart_version = old.version.clone();
    if let Some(fp) = changed.fingerprint.as_mut() {
        fp.chart_sha256 = *old.digest.as_bytes();
    }
    (index, installed)
}

fn scale(c: &mut Criterion) {
    let settings = Settings {
        subscription: "coxswain/stable".to_owned(),
        ..Settings::default()
    };
    let mut group = c.benchmark_group("scale");
    for n in SIZES {
        let (index, installed) = one_change(n);
        // The benchmark measures the plan it claims to: one upgrade, every other release
        // decided up to date.
        let planned = plan(&index, &settings, &installed).expect("plans");
        assert_eq!(planned.actions().count(), 1, "one release changed");
        assert_eq!(planned.skipped.len(), n - 1);
        group.bench_with_input(BenchmarkId::new("plan", n), &n, |b, _| {
            b.iter(|| plan(black_box(&index), &settings, black_box(&installed)).expect("plans"));
        });

        let signed = common::signed(&index);
        group.bench_with_input(BenchmarkId::new("verify", n), &n, |b, _| {
            b.iter(|| {
                verify_index(
                    black_box(&signed.bytes),
                    black_box(&signed.sig_bytes),
                    &signed.trusted,
                    signed.policy,
                    "index.json",
                    "index.json.sig",
                )
                .expect("verifies")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
