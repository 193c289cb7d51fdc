//! The health runner and the helm shim on the test cluster: a healthy install
//! is reported healthy, a crash-looping upgrade fails fast naming the
//! Deployment and the container, a broken image times out, a rollback to the
//! noted revision is healthy again, and a failing `helm test` carries helm's
//! message. Helm 4 in full, helm 3 for the upgrade/rollback path. (KWOK removes
//! the old revision's pods at once, so the filter that ignores them is covered
//! by the unit tests in src/agent/health/pods.rs, not here.)
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::time::{Duration, Instant};

use coxswain::health::{HealthCheck, HealthOutcome};
use coxswain::helm::{
    Description, Fingerprint, HelmCli, HelmConfig, ReleaseStatus, RollbackOptions, TestOptions,
    UpgradeOptions,
};
use serde_json::json;
use support::cluster::{TestNamespace, chart, client, helm3, helm4, kubeconfig_path};

const HEALTH_TIMEOUT: Duration = Duration::from_secs(90);

async fn helm(binary: std::path::PathBuf) -> (HelmCli, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let config = HelmConfig {
        binary,
        kubeconfig: Some(kubeconfig_path()),
        state_dir: Some(home.path().to_owned()),
        ..HelmConfig::default()
    };
    (HelmCli::detect(config).await.unwrap(), home)
}

fn options(sequence: u64) -> UpgradeOptions {
    let fp = Fingerprint::new("stable", sequence, [sequence as u8; 32], [7; 32]).unwrap();
    UpgradeOptions {
        description: Some(fp.to_string()),
        timeout: Duration::from_secs(60),
        ..UpgradeOptions::default()
    }
}

async fn health(helm: &HelmCli, check: &HealthCheck, ns: &str, timeout: Duration) -> HealthOutcome {
    let manifest = helm.get_manifest("wiki", ns, None).await.unwrap();
    let report = check.run(&manifest, ns, timeout).await.unwrap();
    assert!(!report.objects.is_empty());
    report.outcome
}

async fn install_crashloop_rollback(helm: &HelmCli, client: &kube::Client, ns: &str) {
    let check = HealthCheck::new(client.clone()).with_poll_interval(Duration::from_millis(500));
    let wiki = chart("wiki");

    let first = helm
        .upgrade_install("wiki", ns, &wiki, &json!({}), &options(1))
        .await
        .unwrap();
    assert_eq!(
        (first.version, first.info.status),
        (1, ReleaseStatus::Deployed)
    );
    assert!(Fingerprint::parse(&first.info.description).is_some());
    let outcome = health(helm, &check, ns, HEALTH_TIMEOUT).await;
    assert_eq!(outcome, HealthOutcome::Healthy);

    let broken = helm
        .upgrade_install(
            "wiki",
            ns,
            &wiki,
            &json!({"image": {"tag": "crashloop"}}),
            &options(2),
        )
        .await
        .unwrap();
    assert_eq!(
        broken.version, 2,
        "helm did not wait or roll back by itself"
    );
    let started = Instant::now();
    let outcome = health(helm, &check, ns, HEALTH_TIMEOUT).await;
    let HealthOutcome::Failed(reason) = &outcome else {
        panic!("a crash loop must fail the check, got {outcome:?}");
    };
    eprintln!("crashloop after {:?}: {reason}", started.elapsed());
    assert!(
        reason.contains(&format!("Deployment {ns}/wiki")),
        "{reason}"
    );
    assert!(reason.contains("CrashLoopBackOff"), "{reason}");
    assert!(
        started.elapsed() < HEALTH_TIMEOUT / 2,
        "not fast: {:?}",
        started.elapsed()
    );

    helm.rollback("wiki", ns, 1, &RollbackOptions::default())
        .await
        .unwrap();
    let history = helm.history("wiki", ns, 0).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.revision, 3);
    assert_eq!(
        Description::parse(&last.description),
        Description::RollbackTo(1)
    );
    let outcome = health(helm, &check, ns, HEALTH_TIMEOUT).await;
    assert_eq!(outcome, HealthOutcome::Healthy);
}

#[tokio::test]
async fn helm4_crash_loop_fails_fast_and_rollback_is_healthy() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "health4").await;
    let (helm, _home) = helm(helm4()).await;
    install_crashloop_rollback(&helm, &client, &ns.name).await;
}

#[tokio::test]
async fn helm3_crash_loop_fails_fast_and_rollback_is_healthy() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "health3").await;
    let (helm, _home) = helm(helm3()).await;
    install_crashloop_rollback(&helm, &client, &ns.name).await;
}

#[tokio::test]
async fn a_broken_image_times_out_naming_the_deployment() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "health-broken").await;
    let (helm, _home) = helm(helm4()).await;
    let check = HealthCheck::new(client.clone()).with_poll_interval(Duration::from_millis(500));
    helm.upgrade_install(
        "wiki",
        &ns.name,
        &chart("wiki"),
        &json!({"image": {"tag": "broken"}}),
        &options(1),
    )
    .await
    .unwrap();
    let outcome = health(&helm, &check, &ns.name, Duration::from_secs(10)).await;
    let HealthOutcome::TimedOut(reason) = &outcome else {
        panic!("a never-ready pod must time out, got {outcome:?}");
    };
    eprintln!("broken: {reason}");
    assert!(
        reason.contains(&format!("Deployment {}/wiki", ns.name)),
        "{reason}"
    );
    assert!(reason.contains("replicas"), "{reason}");
}

#[tokio::test]
async fn helm_test_failure_carries_helm_stderr() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "health-test").await;
    let (helm, _home) = helm(helm4()).await;
    helm.upgrade_install(
        "wiki",
        &ns.name,
        &chart("wiki"),
        &json!({"tests": {"image": {"tag": "fail"}}}),
        &options(1),
    )
    .await
    .unwrap();
    let err = helm
        .test(
            "wiki",
            &ns.name,
            &TestOptions {
                timeout: Duration::from_secs(60),
                logs: false,
            },
        )
        .await
        .unwrap_err();
    eprintln!("helm test: {err}");
    assert!(err.to_string().contains("helm test for release"), "{err}");
}
