//! Benchmark: what one visit of the agent's web UI and one Prometheus scrape cost,
//! for a subscription of 1,000 releases (issue 12's scale) with a full history (50 operations, the last
//! 20 per release with health details). The baseline in the same run is serialising
//! the same document as JSON (`/api/v1/status`), which every page also builds.
//! Run with `cargo xtask bench`; figures in docs/performance.md. Not a timed assertion.

use std::collections::BTreeMap;
use std::hint::black_box;

use coxswain::agent::AgentState;
use coxswain::agent::executor::{HealthDetail, ObjectHealth, ObjectState, OperationDetail};
use coxswain::agent::view::{IndexSummary, SpecSummary};
use coxswain::crd::{
    ChannelSubscription, ChannelSubscriptionStatus, CheckResult, LastCheck, Operation,
    OperationKind, OperationResult, ReleaseState, ReleaseStatus,
};
use coxswain::duration::Duration;
use coxswain::format::Timestamp;
use coxswain::metrics::{CheckReport, Metrics};
use coxswain::ui::{pages, status_document};
use criterion::{Criterion, criterion_group, criterion_main};

const RELEASES: usize = 1_000;

fn name(i: usize) -> String {
    format!("app-{i:03}")
}

fn operation(i: usize, now: Timestamp) -> Operation {
    Operation {
        release: name(i % RELEASES),
        namespace: format!("ns-{:03}", i % RELEASES),
        operation: OperationKind::Upgrade,
        from: Some("1.4.1".to_owned()),
        to: Some("1.4.2".to_owned()),
        sequence: 40 + i as u64,
        started: now,
        duration: Duration::from_secs(12),
        result: OperationResult::Succeeded,
        message: "chart 1.4.1 -> 1.4.2".to_owned(),
        from_revision: Some(3),
        to_revision: Some(4),
        health: None,
    }
}

fn health() -> HealthDetail {
    HealthDetail {
        healthy: true,
        elapsed: std::time::Duration::from_millis(4_200),
        reason: None,
        unobserved: false,
        objects: (0..6)
            .map(|k| ObjectHealth {
                kind: "Deployment".to_owned(),
                namespace: Some("ns".to_owned()),
                name: format!("object-{k}"),
                state: ObjectState::Current,
                reason: None,
            })
            .collect(),
    }
}

fn status(now: Timestamp) -> ChannelSubscriptionStatus {
    ChannelSubscriptionStatus {
        accepted_sequence: Some(90),
        last_check: Some(LastCheck {
            time: now,
            result: CheckResult::UpToDate,
            message: "stable#90: every release is up to date".to_owned(),
        }),
        releases: (0..RELEASES)
            .map(|i| ReleaseStatus {
                name: name(i),
                namespace: format!("ns-{i:03}"),
                version: Some("1.4.2".to_owned()),
                desired_version: Some("1.4.2".to_owned()),
                revision: Some(4),
                state: ReleaseState::UpToDate,
                message: "up to date: 1.4.2 is deployed with the desired chart and values"
                    .to_owned(),
                since: now,
                pinned: i % 10 == 0,
                held: false,
            })
            .collect(),
        history: (0..50).map(|i| operation(i, now)).collect(),
        ..Default::default()
    }
}

fn state(rt: &tokio::runtime::Runtime) -> AgentState {
    let now = Timestamp::now();
    let state = AgentState::default();
    let sub = ChannelSubscription::new(
        "stack",
        serde_json::from_value(serde_json::json!({
            "server": "https://updates.example.org",
            "channel": "stable",
            "trustRef": {"kind": "ConfigMap", "name": "trust", "key": "root.json"},
        }))
        .unwrap(),
    );
    rt.block_on(state.update_view("apps/stack", |v| {
        v.spec = Some(SpecSummary::of(&sub));
        v.status = Some(status(now));
        v.index = Some(IndexSummary {
            sequence: 90,
            published: now,
            expires: now,
            trust_root_version: 1,
        });
        let details: Vec<OperationDetail> = (0..50)
            .map(|i| OperationDetail {
                operation: operation(i, now),
                elapsed: std::time::Duration::from_millis(12_300),
                health: Some(health()),
            })
            .collect();
        v.keep_details(&details);
    }));
    state
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let state = state(&rt);
    let mut group = c.benchmark_group("ui-1000");
    group.bench_function("status-json", |b| {
        b.iter(|| {
            let doc = rt.block_on(status_document(&state, "apps"));
            black_box(serde_json::to_vec(&doc).unwrap())
        })
    });
    group.bench_function("overview-html", |b| {
        b.iter(|| {
            let doc = rt.block_on(status_document(&state, "apps"));
            black_box(pages::overview(&doc).into_string())
        })
    });
    group.bench_function("release-html", |b| {
        b.iter(|| {
            let doc = rt.block_on(status_document(&state, "apps"));
            black_box(pages::release(&doc, &doc.subscriptions[0], "app-007").into_string())
        })
    });
    let metrics = Metrics::new();
    let now = Timestamp::now();
    let status = status(now);
    let charts: BTreeMap<String, String> = (0..RELEASES).map(|i| (name(i), name(i))).collect();
    metrics.check_finished(&CheckReport {
        subscription: "apps/stack",
        channel: "stable",
        interval: std::time::Duration::from_secs(300),
        status: &status,
        index_times: Some((now, now)),
        charts: &charts,
    });
    group.bench_function("metrics-encode", |b| {
        b.iter(|| black_box(metrics.encode().unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
