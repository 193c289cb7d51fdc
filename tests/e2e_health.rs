//! The health runner and the helm shim on the test cluster: a healthy install
//! is reported healthy, a crash-looping upgrade fails fast naming the
//! Deployment and the container, a broken image times out, a rollback to the
//! noted revision is healthy again, and a failing `helm test` carries helm's
//! message. Helm 4 in full, helm 3 for the upgrade/rollback path. A pod no
//! node has room for times out with the scheduler's message; an object deleted
//! after the upgrade fails the check by name; requests for ephemeral storage
//! schedule on the fake nodes; a change is seen through watches, not at the
//! next poll; a pending LoadBalancer Service, an unavailable
//! APIService, a webhook without endpoints and a kind nobody serves are named.
//! (KWOK removes
//! the old revision's pods at once, so the filter that ignores them is covered
//! by the unit tests in src/agent/health/pods.rs, not here.)
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::time::{Duration, Instant};

use coxswain::health::{HealthCheck, HealthOptions, HealthOutcome, ObjectRef};
use coxswain::helm::{
    Description, Fingerprint, HelmCli, HelmConfig, ReleaseStatus, RollbackOptions, TestOptions,
    UpgradeOptions,
};
use serde_json::json;
use support::cluster::{
    TestNamespace, chart, client, helm3, helm4, kubeconfig_path, kubectl, unique_name,
};

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
    let report = check
        .run(&manifest, ns, &HealthOptions::default(), timeout)
        .await
        .unwrap();
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
    // The upgrade prints the manifest `helm get manifest` reads back (which
    // adds a newline), with helm 3 and 4 alike.
    let stored = helm.get_manifest("wiki", ns, None).await.unwrap();
    assert!(first.manifest.as_str().contains("kind: Deployment"));
    assert_eq!(first.manifest.as_str().trim_end(), stored.trim_end());
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

fn check(client: &kube::Client) -> HealthCheck {
    HealthCheck::new(client.clone()).with_poll_interval(Duration::from_millis(500))
}

/// The wiki chart asking for more memory than any fake node has (1 TiB each).
async fn install_unschedulable(helm: &HelmCli, ns: &str) {
    let values = json!({"resources": {"requests": {"memory": "4Ti"}, "limits": {"memory": "4Ti"}}});
    helm.upgrade_install("wiki", ns, &chart("wiki"), &values, &options(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unschedulable_pod_times_out_with_the_schedulers_message() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "health-unsched").await;
    let (helm, _home) = helm(helm4()).await;
    install_unschedulable(&helm, &ns.name).await;
    let outcome = health(&helm, &check(&client), &ns.name, Duration::from_secs(10)).await;
    let HealthOutcome::TimedOut(reason) = &outcome else {
        panic!("an unschedulable pod must time out, got {outcome:?}");
    };
    eprintln!("unschedulable: {reason}");
    assert!(
        reason.contains(&format!("Deployment {}/wiki-web", ns.name)),
        "{reason}"
    );
    assert!(
        reason.contains(
            "not scheduled (Unschedulable: 0/2 nodes are available: 2 Insufficient memory"
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn a_change_is_seen_through_watches_not_at_the_next_poll() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "health-watch").await;
    let (helm, _home) = helm(helm4()).await;
    install_unschedulable(&helm, &ns.name).await;
    let manifest = helm.get_manifest("wiki", &ns.name, None).await.unwrap();
    // A poll interval far beyond the test: without the watches, the check
    // would look again only just before its 40 s timeout (checked by hand
    // with `.without_watches()`: seen 37 s after the patch, 0 watches).
    let check = HealthCheck::new(client.clone()).with_poll_interval(Duration::from_secs(600));
    let namespace = ns.name.clone();
    let running = tokio::spawn(async move {
        check
            .run(
                &manifest,
                &namespace,
                &HealthOptions::default(),
                Duration::from_secs(40),
            )
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !running.is_finished(),
        "the first look must find it not ready"
    );
    // Now it fits: a new ReplicaSet, pods that the fake nodes make ready.
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client.clone(), &ns.name);
    let fits = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}}}
    ]}}}});
    let patched = Instant::now();
    deployments
        .patch(
            "wiki-web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Strategic(fits),
        )
        .await
        .unwrap();
    let report = running.await.unwrap();
    let seen_after = patched.elapsed();
    eprintln!(
        "ready {seen_after:?} after the patch; {} looks, {} watches",
        report.polls, report.watches
    );
    assert_eq!(report.outcome, HealthOutcome::Healthy);
    assert!(
        report.watches >= 3,
        "the Deployment, its pods and replica sets: {}",
        report.watches
    );
    assert!(
        seen_after < Duration::from_secs(20),
        "woken by the change, not by the poll before the timeout: {seen_after:?}"
    );
}

#[tokio::test]
async fn an_object_deleted_after_the_upgrade_fails_the_check_by_name() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "health-missing").await;
    let (helm, _home) = helm(helm4()).await;
    helm.upgrade_install("wiki", &ns.name, &chart("wiki"), &json!({}), &options(1))
        .await
        .unwrap();
    let configmaps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), &ns.name);
    configmaps
        .delete("wiki-config", &Default::default())
        .await
        .unwrap();
    let started = Instant::now();
    let outcome = health(&helm, &check(&client), &ns.name, HEALTH_TIMEOUT).await;
    assert_eq!(
        outcome,
        HealthOutcome::Failed(format!(
            "ConfigMap {}/wiki-config: missing from the API server",
            ns.name
        ))
    );
    assert!(
        started.elapsed() < HEALTH_TIMEOUT / 2,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn requests_for_ephemeral_storage_schedule_on_the_fake_nodes() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "health-storage").await;
    let (helm, _home) = helm(helm4()).await;
    let requests = json!({"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "2Gi"});
    helm.upgrade_install(
        "wiki",
        &ns.name,
        &chart("wiki"),
        &json!({"resources": {"requests": requests, "limits": {"ephemeral-storage": "4Gi"}}}),
        &options(1),
    )
    .await
    .unwrap();
    let outcome = health(&helm, &check(&client), &ns.name, HEALTH_TIMEOUT).await;
    assert_eq!(outcome, HealthOutcome::Healthy);
}

/// `kubectl apply` of one object; returns what it applied.
fn apply(object: &serde_json::Value) -> ObjectRef {
    let mut child = std::process::Command::new(kubectl())
        .arg(format!("--kubeconfig={}", kubeconfig_path().display()))
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(object.to_string().as_bytes()).unwrap();
    }
    assert!(child.wait().unwrap().success(), "kubectl apply {object}");
    ObjectRef::from_object(object).unwrap()
}

/// `kubectl delete` of a cluster-scoped object, on drop.
struct ClusterObject(String);

impl Drop for ClusterObject {
    fn drop(&mut self) {
        let _ = std::process::Command::new(kubectl())
            .arg(format!("--kubeconfig={}", kubeconfig_path().display()))
            .args(["delete", &self.0, "--wait=false", "--ignore-not-found"])
            .status();
    }
}

async fn timed_out(
    client: &kube::Client,
    objects: Vec<ObjectRef>,
    options: &HealthOptions,
) -> String {
    let report = check(client)
        .run_objects(objects, options, Duration::from_secs(6))
        .await
        .unwrap();
    match report.outcome {
        HealthOutcome::TimedOut(reason) => reason,
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_pending_load_balancer_is_named_unless_accepted() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "health-lb").await;
    let service = apply(&json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "edge", "namespace": ns.name},
        "spec": {"type": "LoadBalancer", "selector": {"app": "edge"}, "ports": [{"port": 443}]}
    }));
    let reason = timed_out(&client, vec![service.clone()], &HealthOptions::default()).await;
    assert!(
        reason.contains(&format!(
            "Service {}/edge: waiting for a load balancer address",
            ns.name
        )),
        "{reason}"
    );
    let accept = HealthOptions {
        accept_pending_load_balancer: true,
    };
    let report = check(&client)
        .run_objects(vec![service], &accept, Duration::from_secs(6))
        .await
        .unwrap();
    assert_eq!(report.outcome, HealthOutcome::Healthy);
}

#[tokio::test]
async fn an_apiservice_without_endpoints_is_not_available() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "health-apisvc").await;
    let group = format!("{}.coxswain.test", unique_name("metrics"));
    apply(&json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "metrics", "namespace": ns.name},
        "spec": {"selector": {"app": "nothing"}, "ports": [{"port": 443}]}
    }));
    let api_service = apply(&json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": format!("v1.{group}")},
        "spec": {"group": group, "version": "v1", "groupPriorityMinimum": 10, "versionPriority": 10,
                 "insecureSkipTLSVerify": true,
                 "service": {"namespace": ns.name, "name": "metrics", "port": 443}}
    }));
    let _cleanup = ClusterObject(format!("apiservice/v1.{group}"));
    let reason = timed_out(&client, vec![api_service], &HealthOptions::default()).await;
    eprintln!("apiservice: {reason}");
    assert!(
        reason.contains(&format!("APIService v1.{group}: not available (")),
        "{reason}"
    );
}

#[tokio::test]
async fn a_webhook_without_a_ready_endpoint_is_named() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "health-webhook").await;
    let name = unique_name("guard");
    apply(&json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "guard", "namespace": ns.name},
        "spec": {"selector": {"app": "nothing"}, "ports": [{"port": 443}]}
    }));
    // Intercepts nothing that exists, so it cannot disturb other tests.
    let webhook = apply(&json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "guard.coxswain.test", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "clientConfig": {"service": {"namespace": ns.name, "name": "guard"}},
            "rules": [{"apiGroups": ["guard.coxswain.test"], "apiVersions": ["v1"],
                       "operations": ["CREATE"], "resources": ["nothings"]}]
        }]
    }));
    let _cleanup = ClusterObject(format!("validatingwebhookconfiguration/{name}"));
    let reason = timed_out(&client, vec![webhook], &HealthOptions::default()).await;
    assert!(
        reason.contains(&format!(
            "ValidatingWebhookConfiguration {name}: webhook guard.coxswain.test calls service {}/guard, which has no ready endpoint",
            ns.name
        )),
        "{reason}"
    );
}

#[tokio::test]
async fn a_kind_nobody_serves_waits_and_a_cluster_scoped_kind_drops_its_namespace() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "health-kinds").await;
    // A group no test defines (e2e_crds installs a Widget CRD and, by design, never
    // deletes it).
    let widget = ObjectRef {
        api_version: "unserved.coxswain.test/v1".into(),
        kind: "Gadget".into(),
        namespace: Some(ns.name.clone()),
        name: "w".into(),
    };
    let reason = timed_out(&client, vec![widget], &HealthOptions::default()).await;
    assert!(
        reason.contains("kind unserved.coxswain.test/v1 Gadget is not served by the API server"),
        "{reason}"
    );
    // A cluster-scoped object given a namespace (helm ignores it; a guessed
    // scope could be wrong): discovery decides where it is read.
    let class = ObjectRef {
        api_version: "scheduling.k8s.io/v1".into(),
        kind: "PriorityClass".into(),
        namespace: Some(ns.name.clone()),
        name: "system-cluster-critical".into(),
    };
    let report = check(&client)
        .run_objects(
            vec![class],
            &HealthOptions::default(),
            Duration::from_secs(6),
        )
        .await
        .unwrap();
    assert_eq!(report.outcome, HealthOutcome::Healthy);
    assert_eq!(report.objects[0].object.namespace, None);
}
