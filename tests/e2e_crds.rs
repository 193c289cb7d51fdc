//! End-to-end test of the CRD policies (`crds: skip | create | createReplace`)
//! with the real `coxswain publish`, `coxswain agent --once`, helm 4 and the
//! loopback cluster's API server: the `widgets` test chart, whose 1.1.0 adds
//! a field (`spec.color`) to its CRD.
//!
//! The CRD is cluster-scoped, so the whole story is one test: it deletes the
//! CRD a former run left first.
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::DeleteParams;
use serde_json::{Value, json};
use support::cluster::{kubeconfig_path, kubectl, wait_for};
use support::testdata;
use support::world::World;

const CRD: &str = "widgets.widgets.coxswain.test";

/// A spec with the one release `widgets` from `chart`, its CRD policy and a
/// `logLevel` (a change of it makes an upgrade).
fn spec(w: &World, chart: &Path, crds: Option<&str>, log_level: u32) -> PathBuf {
    let mut release = json!({
        "name": "widgets",
        "namespace": w.rns("widgets"),
        "chart": {"path": chart},
        "values": {"logLevel": log_level},
        "health": {"timeout": "30s"},
    });
    if let Some(policy) = crds {
        release["crds"] = policy.into();
    }
    let doc = json!({
        "apiVersion": "coxswain.dev/v1", "kind": "ChannelSpec", "channel": "stable",
        "releases": [release],
    });
    let path = w.dir.path().join(format!("widgets-{log_level}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    path
}

fn publish(w: &mut World, chart: &Path, crds: Option<&str>, log_level: u32) -> u64 {
    let spec = spec(w, chart, crds, log_level);
    w.sequence += 1;
    let site = w.site();
    w.publish_to(&spec, &site, w.sequence);
    w.sequence
}

/// The properties of the CRD's `spec` in its v1 schema.
async fn spec_properties(crds: &Api<CustomResourceDefinition>) -> Vec<String> {
    let crd = crds.get(CRD).await.unwrap();
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
    let props = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"];
    props.as_object().unwrap().keys().cloned().collect()
}

/// `kubectl create --validate=strict` of a Widget; (success, output).
fn create_widget(namespace: &str, name: &str, spec: Value) -> (bool, String) {
    let widget = json!({
        "apiVersion": "widgets.coxswain.test/v1", "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("widget.json");
    std::fs::write(&file, widget.to_string()).unwrap();
    let out = std::process::Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args(["create", "--validate=strict", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn helm(w: &World, args: &[&str]) -> String {
    let out = std::process::Command::new(&w.helm)
        .args(args)
        .args(["--namespace", w.rns("widgets")])
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn crd_policies_create_skip_replace_and_never_delete() {
    let mut w = World::new("crds", &["widgets"]).await;
    let crds: Api<CustomResourceDefinition> = Api::all(w.client.clone());
    if crds.get_opt(CRD).await.unwrap().is_some() {
        crds.delete(CRD, &DeleteParams::default()).await.unwrap();
        wait_for("the old CRD to go", Duration::from_secs(60), || async {
            crds.get_opt(CRD).await.unwrap().is_none().then_some(())
        })
        .await;
    }
    let v1 = testdata("charts/widgets");
    let v2 = testdata("charts-next/widgets");
    let ns = w.rns("widgets").to_owned();

    // 1. create: the agent creates the missing CRD before helm installs.
    publish(&mut w, &v1, Some("create"), 1);
    w.subscribe(|_| {}).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(spec_properties(&crds).await, ["size"]);
    let crd = crds.get(CRD).await.unwrap();
    let managers: Vec<String> = crd
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.iter().any(|m| m == "coxswain"), "{managers:?}");
    assert!(err.contains(CRD), "the log names the CRD: {err}");
    let (ok, text) = create_widget(&ns, "plain", json!({"size": 3}));
    assert!(ok, "{text}");

    // 2. skip, with 1.1.0 (which adds spec.color): the CRD stays as it was,
    // and a Widget with the new field is refused.
    publish(&mut w, &v2, Some("skip"), 2);
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    let history = w.history("widgets");
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[1]["app_version"], "1.1.0");
    assert_eq!(spec_properties(&crds).await, ["size"]);
    let (ok, text) = create_widget(&ns, "red", json!({"size": 3, "color": "red"}));
    assert!(!ok, "a field the CRD does not have: {text}");
    assert!(text.contains("color"), "{text}");

    // 3. createReplace: the CRD is updated before helm upgrades, and the new
    // field is accepted.
    publish(&mut w, &v2, Some("createReplace"), 3);
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(spec_properties(&crds).await, ["color", "size"]);
    let (ok, text) = create_widget(&ns, "red", json!({"size": 3, "color": "red"}));
    assert!(ok, "{text}");
    let (ok, text) = create_widget(&ns, "pink", json!({"size": 3, "color": "pink"}));
    assert!(!ok && text.contains("pink"), "the enum is enforced: {text}");
    // Where users look: an Event, the status history, the log.
    let events = w.events().await;
    let applied: Vec<&String> = events
        .iter()
        .filter(|(r, _)| r == "CrdsApplied")
        .map(|(_, n)| n)
        .collect();
    assert!(
        applied
            .iter()
            .any(|n| n.ends_with(&format!("crds createReplace: updated {CRD}"))),
        "{events:?}"
    );
    assert!(
        applied
            .iter()
            .any(|n| n.ends_with(&format!("crds create: created {CRD}"))),
        "{events:?}"
    );
    let status = w.status().await;
    let last = status["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["result"], "succeeded", "{last}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("crds createReplace: updated {CRD}")),
        "{last}"
    );
    assert!(err.contains(CRD), "{err}");

    // 4. Neither a rollback nor removing the release deletes the CRD or its
    // objects.
    helm(&w, &["rollback", "widgets", "1"]);
    assert_eq!(spec_properties(&crds).await, ["color", "size"]);
    helm(&w, &["uninstall", "widgets"]);
    assert_eq!(spec_properties(&crds).await, ["color", "size"]);
    let widgets: Api<kube::api::DynamicObject> = Api::namespaced_with(
        w.client.clone(),
        &ns,
        &kube::api::ApiResource {
            group: "widgets.coxswain.test".into(),
            version: "v1".into(),
            api_version: "widgets.coxswain.test/v1".into(),
            kind: "Widget".into(),
            plural: "widgets".into(),
        },
    );
    let names: Vec<String> = widgets
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    assert_eq!(names, ["plain", "red"]);
}
