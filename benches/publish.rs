//! Benchmark: `coxswain publish` of testdata's stable channel (five charts packed,
//! values merged, index built, signed and written) into a fresh temporary site, at a
//! fixed time. Run with `cargo xtask bench`; the figures are recorded in
//! docs/performance.md. Not a timed assertion.

use std::path::PathBuf;

use coxswain::format::Timestamp;
use coxswain::publish::{PublishOptions, publish};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;

fn publish_testdata(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let spec = root.join("testdata/channels/stable.yaml");
    let key = SigningKey::from_bytes(&[7; 32]);
    let now = Timestamp::from_unix(1_800_000_000).expect("a fixed time in range");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut group = c.benchmark_group("publish");
    group.sample_size(30);
    group.bench_function("testdata-stable", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("a temporary directory"),
            |dir| {
                let mut opts = PublishOptions::new(
                    spec.clone(),
                    vec![key.clone()],
                    dir.path().join("site"),
                    now,
                );
                opts.sequence = Some(1);
                let report = runtime.block_on(publish(&opts)).expect("publish succeeds");
                assert_eq!(report.releases.len(), 5);
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, publish_testdata);
criterion_main!(benches);
