//! Smoke tests of the test cluster with the real helm: the behaviours the agent
//! relies on (waits, timeouts, rollback, hooks, CRDs, `helm test`) work on the
//! loopback control plane with KWOK nodes. Helm 4 in full, helm 3 as a subset.
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use support::cluster::{
    Helm, TestNamespace, chart, client, deployment_image, helm3, helm4, pod_condition, pods,
    wait_deployment_ready, wait_for,
};

/// Helm's timeout where the wait is expected to succeed.
const READY: &str = "60s";
/// Helm's timeout where the wait is expected to time out: short, so the suite stays fast.
const DOOMED: &str = "20s";
/// How long the test itself waits for what helm has already waited for.
const SETTLE: Duration = Duration::from_secs(30);

/// The path of a chart as helm's argument.
fn chart_arg(name: &str) -> String {
    chart(name).display().to_string()
}

/// Install wiki, upgrade it to a `broken` image and roll it back: the wait on
/// the broken upgrade times out, the rollback brings readiness back.
async fn install_break_rollback(helm: &Helm, client: &kube::Client, ns: &str, wait: &str) {
    let wiki = chart_arg("wiki");
    helm.succeed(&["install", "wiki", &wiki, wait, "--timeout", READY])
        .await;
    let deployment = wait_deployment_ready(client, ns, "wiki-web", SETTLE).await;
    assert_eq!(
        deployment_image(&deployment),
        "registry.coxswain.test/wiki:2.5.300"
    );
    assert_eq!(helm.release_state("wiki").await, ("deployed".into(), 1));

    let err = helm
        .fail(&[
            "upgrade",
            "wiki",
            &wiki,
            "--reuse-values",
            "--set",
            "image.tag=broken",
            wait,
            "--timeout",
            DOOMED,
        ])
        .await;
    assert!(
        err.contains("context deadline exceeded") || err.contains("timed out"),
        "the upgrade to a broken image should fail by timing out, got: {err}"
    );
    assert_eq!(helm.release_state("wiki").await, ("failed".into(), 2));
    // The broken pod runs but is not Ready; the old one still serves.
    let broken = wait_for("a running, unready broken pod", SETTLE, || async {
        pods(
            client,
            ns,
            "app.kubernetes.io/instance=wiki,app.kubernetes.io/version=broken",
        )
        .await
        .into_iter()
        .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
    })
    .await;
    assert_eq!(pod_condition(&broken, "Ready").as_deref(), Some("False"));

    helm.succeed(&["rollback", "wiki", "1", wait, "--timeout", READY])
        .await;
    assert_eq!(helm.release_state("wiki").await, ("deployed".into(), 3));
    let deployment = wait_deployment_ready(client, ns, "wiki-web", SETTLE).await;
    assert_eq!(
        deployment_image(&deployment),
        "registry.coxswain.test/wiki:2.5.300"
    );
}

#[tokio::test]
async fn helm4_install_waits_broken_upgrade_times_out_rollback_restores() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "helm4-rollback").await;
    let helm = Helm::new(helm4(), &ns.name);
    install_break_rollback(&helm, &client, &ns.name, "--wait=watcher").await;
}

#[tokio::test]
async fn helm4_pre_upgrade_hook_completes_and_failing_hook_fails_the_upgrade() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "helm4-hooks").await;
    let helm = Helm::new(helm4(), &ns.name);
    let sso = chart_arg("sso");
    helm.succeed(&["install", "sso", &sso, "--wait=watcher", "--timeout", READY])
        .await;

    helm.succeed(&[
        "upgrade",
        "sso",
        &sso,
        "--reuse-values",
        "--set",
        "hostname=login.coxswain.test",
        "--wait=watcher",
        "--timeout",
        READY,
    ])
    .await;
    let status = helm.status("sso").await;
    assert_eq!(status["info"]["status"], "deployed");
    let hook = status["hooks"]
        .as_array()
        .and_then(|hooks| hooks.iter().find(|h| h["name"] == "sso-migrate"))
        .unwrap_or_else(|| panic!("no sso-migrate hook in the release: {status}"));
    assert!(
        hook["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e == "pre-upgrade")),
        "sso-migrate is not a pre-upgrade hook: {hook}"
    );
    assert_eq!(
        hook["last_run"]["phase"], "Succeeded",
        "the pre-upgrade hook did not complete: {hook}"
    );

    let err = helm
        .fail(&[
            "upgrade",
            "sso",
            &sso,
            "--reuse-values",
            "--set",
            "migration.image.tag=fail",
            "--set",
            "image.tag=24.0.6",
            "--wait=watcher",
            "--timeout",
            READY,
        ])
        .await;
    assert!(
        err.contains("pre-upgrade") && err.contains("sso-migrate"),
        "the upgrade should fail on the pre-upgrade hook, got: {err}"
    );
    assert_eq!(helm.release_state("sso").await, ("failed".into(), 3));
    // The failed Job stays for inspection; the workload was never touched.
    let job = Api::<Job>::namespaced(client.clone(), &ns.name)
        .get("sso-migrate")
        .await
        .expect("the failed migration Job is kept");
    let failed = job
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Failed" && c.status == "True");
    assert!(failed, "the migration Job is not marked Failed");
    let deployment = wait_deployment_ready(&client, &ns.name, "sso-server", SETTLE).await;
    assert_eq!(
        deployment_image(&deployment),
        "registry.coxswain.test/sso-server:24.0.5"
    );
}

#[tokio::test]
async fn helm4_chart_crd_becomes_established_and_serves_its_schema() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "helm4-crd").await;
    let helm = Helm::new(helm4(), &ns.name);
    helm.succeed(&[
        "install",
        "certs",
        &chart_arg("certs"),
        "--wait=watcher",
        "--timeout",
        READY,
    ])
    .await;
    wait_deployment_ready(&client, &ns.name, "certs-controller", SETTLE).await;

    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    wait_for("the certificates CRD to be Established", SETTLE, || async {
        let crd = crds
            .get_opt("certificates.certs.coxswain.test")
            .await
            .ok()??;
        let established = crd
            .status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        established.then_some(())
    })
    .await;

    // Served, with its structural schema enforced.
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("certs.coxswain.test", "v1", "Certificate"),
        "certificates",
    );
    let certificates: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.name, &resource);
    let valid: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "certs.coxswain.test/v1",
        "kind": "Certificate",
        "metadata": {"name": "wiki-tls"},
        "spec": {"secretName": "wiki-tls", "dnsNames": ["wiki.coxswain.test"]}
    }))
    .expect("a valid Certificate object");
    certificates
        .create(&PostParams::default(), &valid)
        .await
        .expect("create a valid Certificate");
    let invalid: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "certs.coxswain.test/v1",
        "kind": "Certificate",
        "metadata": {"name": "no-names"},
        "spec": {"secretName": "x"}
    }))
    .expect("a Certificate object");
    let err = certificates
        .create(&PostParams::default(), &invalid)
        .await
        .expect_err("a Certificate without dnsNames must be rejected");
    assert!(
        err.to_string().contains("dnsNames"),
        "unexpected error: {err}"
    );
}

#[tokio::test]
async fn helm4_test_passes_and_fails_when_asked() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "helm4-test").await;
    let helm = Helm::new(helm4(), &ns.name);
    let wiki = chart_arg("wiki");
    helm.succeed(&[
        "install",
        "wiki",
        &wiki,
        "--wait=watcher",
        "--timeout",
        READY,
    ])
    .await;
    let out = helm.succeed(&["test", "wiki", "--timeout", READY]).await;
    assert!(
        out.contains("wiki-smoke-test") && out.contains("Succeeded"),
        "helm test output does not report the smoke test as passed: {out}"
    );

    helm.succeed(&[
        "upgrade",
        "wiki",
        &wiki,
        "--reuse-values",
        "--set",
        "tests.image.tag=fail",
        "--wait=watcher",
        "--timeout",
        READY,
    ])
    .await;
    let err = helm.fail(&["test", "wiki", "--timeout", READY]).await;
    assert!(
        err.contains("wiki-smoke-test"),
        "helm test should fail on the smoke test, got: {err}"
    );
}

#[tokio::test]
async fn helm3_smoke_install_break_rollback_test() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "helm3-smoke").await;
    let helm = Helm::new(helm3(), &ns.name);
    let version = helm.succeed(&["version", "--short"]).await;
    assert!(version.starts_with("v3."), "not helm 3: {version}");
    install_break_rollback(&helm, &client, &ns.name, "--wait").await;
    helm.succeed(&["test", "wiki", "--timeout", READY]).await;
}

#[tokio::test]
async fn cluster_reports_its_release_and_helm_versions_are_pinned() {
    let client = client().await;
    let version = client.apiserver_version().await.expect("GET /version");
    assert_eq!(
        version.git_version, "v1.36.3",
        "helm's kubeVersion checks need the real version"
    );
    let ns = TestNamespace::create(&client, "helm4-version").await;
    let helm = Helm::new(helm4(), &ns.name);
    let out = helm.succeed(&["version", "--short"]).await;
    assert!(out.starts_with("v4."), "not helm 4: {out}");
}
