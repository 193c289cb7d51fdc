//! End-to-end test with real public charts: the corpus vendored unmodified under
//! testdata/charts-real (ingress-nginx, traefik, prometheus with its four
//! subcharts, kube-state-metrics, metrics-server, external-dns, podinfo,
//! keycloakx; sources and licences in its README), published into one channel by
//! the real `coxswain publish` from `testdata/channels/real-charts.yaml`, and
//! installed, upgraded (three charts to their next upstream version) and rolled
//! back by `coxswain agent --once` with the real helm 4 on the loopback cluster.
//!
//! What the charts bring that the testdata stack does not: CRDs in `crds/`
//! (traefik, external-dns), an admission webhook with pre- and post-install hook
//! Jobs (ingress-nginx), subcharts unpacked under `charts/` (prometheus), an
//! `apiVersion: v1` chart with `helm test` pods (podinfo), a LoadBalancer Service
//! on a cluster without a load balancer (traefik), StatefulSets, DaemonSets,
//! cluster-scoped RBAC and values schemas.
//!
//! Run with `cargo xtask e2e`.

mod support;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use serde_json::Value;
use support::cluster::{helm4, kubeconfig_path, kubectl};
use support::testdata;
use support::world::{World, condition, release, set, succeed};

/// The releases of `channels/real-charts.yaml`.
const REAL: [&str; 8] = [
    "metrics-server",
    "kube-state-metrics",
    "external-dns",
    "prometheus",
    "traefik",
    "ingress-nginx",
    "podinfo",
    "keycloakx",
];

/// The releases whose previous upstream version is vendored under
/// `charts-real/previous`, and that version.
const UPGRADED: [(&str, &str, &str); 3] = [
    ("ingress-nginx", "4.15.0", "4.15.1"),
    ("podinfo", "6.14.0", "6.14.1"),
    ("kube-state-metrics", "8.3.1", "8.4.0"),
];

const SPEC: &str = "channels/real-charts.yaml";

/// The chart (`name-version`) of the latest revision of `release`.
fn chart_of(w: &World, release: &str) -> String {
    let h = w.history(release);
    h.last().unwrap()["chart"].as_str().unwrap().to_owned()
}

/// Removes what a failed earlier run on this cluster may have left behind:
/// the charts' cluster-scoped objects outlive the test's namespaces, and helm
/// refuses to adopt objects of another release namespace.
fn remove_leftovers() {
    let selector = format!(
        "app.kubernetes.io/managed-by=Helm,app.kubernetes.io/instance in ({})",
        REAL.join(",")
    );
    succeed(
        std::process::Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(kubeconfig_path())
            .args([
                "delete",
                "clusterrole,clusterrolebinding,ingressclass,\
                 validatingwebhookconfiguration,mutatingwebhookconfiguration,apiservice",
                "-l",
                &selector,
                "--ignore-not-found",
                "--wait=false",
            ]),
    );
}

#[tokio::test]
async fn real_charts_install_upgrade_and_roll_back() {
    remove_leftovers();
    let mut w = World::new("real", &REAL).await;

    // Sequence 1: three charts at their previous upstream version.
    let previous = |name: &str, r: &mut Value| {
        if let Some((_, _, _)) = UPGRADED.iter().find(|(n, _, _)| *n == name) {
            let dir = testdata("charts-real/previous").join(name);
            r["chart"]["path"] = dir.to_str().unwrap().into();
        }
    };
    w.publish_from(SPEC, previous);
    w.subscribe(|s| s.concurrency = 2).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("8 release(s) installed"), "{out}");
    let status = w.status().await;
    assert_eq!(condition(&status, "Ready").0, "True", "{status}");
    for r in REAL {
        assert_eq!(release(&status, r)["state"], "upToDate", "{r}: {status}");
        assert_eq!(w.history(r).len(), 1, "{r}");
    }
    for (name, from, _) in UPGRADED {
        assert_eq!(chart_of(&w, name), format!("{name}-{from}"));
    }
    // helm installed the charts' crds/ directories.
    let crds: Api<CustomResourceDefinition> = Api::all(w.client.clone());
    for crd in [
        "ingressroutes.traefik.io",
        "dnsendpoints.externaldns.k8s.io",
    ] {
        crds.get(crd).await.unwrap_or_else(|e| panic!("{crd}: {e}"));
    }
    // The subcharts were installed with their parent.
    let manifest = String::from_utf8(succeed(
        std::process::Command::new(helm4())
            .args(["get", "manifest", "prometheus", "--namespace"])
            .arg(w.rns("prometheus"))
            .arg("--kubeconfig")
            .arg(kubeconfig_path()),
    ))
    .unwrap();
    for sub in [
        "alertmanager",
        "kube-state-metrics",
        "prometheus-node-exporter",
        "prometheus-pushgateway",
    ] {
        assert!(
            manifest.contains(&format!("# Source: prometheus/charts/{sub}/")),
            "{sub} missing from prometheus's manifest"
        );
    }
    // podinfo's `helm test` pods ran and passed.
    let shown: Value = serde_json::from_slice(&succeed(
        std::process::Command::new(helm4())
            .args(["status", "podinfo", "-o", "json", "--namespace"])
            .arg(w.rns("podinfo"))
            .arg("--kubeconfig")
            .arg(kubeconfig_path()),
    ))
    .unwrap();
    let tests: Vec<&Value> = shown["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["events"].as_array().unwrap().iter().any(|e| e == "test"))
        .collect();
    assert!(!tests.is_empty(), "podinfo has no test hooks: {shown}");
    for t in tests {
        assert_eq!(t["last_run"]["phase"], "Succeeded", "{t}");
    }

    // Sequence 2: the next upstream versions; only those three are upgraded.
    w.publish_from(SPEC, |_, _| {});
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let status = w.status().await;
    for r in REAL {
        assert_eq!(release(&status, r)["state"], "upToDate", "{r}: {status}");
        let upgraded = UPGRADED.iter().any(|(n, _, _)| *n == r);
        assert_eq!(
            w.history(r).len(),
            if upgraded { 2 } else { 1 },
            "{r}: {:?}",
            w.history(r)
        );
    }
    for (name, _, to) in UPGRADED {
        assert_eq!(chart_of(&w, name), format!("{name}-{to}"));
    }

    // Sequence 3: podinfo's new pods never become ready; the agent rolls it
    // back to the revision of sequence 2 and touches nothing else.
    let seq = w.publish_from(SPEC, |name, r| {
        if name == "podinfo" {
            set(r, &["values", "image", "tag"], "broken".into());
            set(r, &["health", "timeout"], "20s".into());
        }
    });
    let before = w.revisions();
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    let h = w.history("podinfo");
    assert_eq!(h.len(), 4, "{h:?}");
    assert_eq!(h[3]["description"], "Rollback to 2");
    assert_eq!(h[3]["status"], "deployed");
    assert_eq!(chart_of(&w, "podinfo"), "podinfo-6.14.1");
    let status = w.status().await;
    assert_eq!(status["failedSequence"]["sequence"], seq);
    assert_eq!(release(&status, "podinfo")["state"], "rolledBack");
    let after = w.revisions();
    for r in REAL.iter().filter(|r| **r != "podinfo") {
        assert_eq!(after[*r], before[*r], "{r} must not be touched");
    }

    // Leave no cluster-scoped objects behind for the next run.
    for r in REAL.iter().rev() {
        succeed(
            std::process::Command::new(helm4())
                .args(["uninstall", r, "--wait", "--namespace"])
                .arg(w.rns(r))
                .arg("--kubeconfig")
                .arg(kubeconfig_path()),
        );
    }
    // helm never deletes the CRDs of crds/ on uninstall: the CRDs stay.
    for crd in [
        "ingressroutes.traefik.io",
        "dnsendpoints.externaldns.k8s.io",
    ] {
        crds.get(crd).await.unwrap_or_else(|e| panic!("{crd}: {e}"));
    }
}
