//! The agent's own chart, `charts/coxswain/`, as the tests render and install
//! it: `helm template` with a sandboxed helm (no kubeconfig, homes in a temp
//! dir), the rendered objects as JSON, and the objects found by kind and name.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// `charts/coxswain/`.
pub fn chart_dir() -> PathBuf {
    super::repo().join("charts/coxswain")
}

/// `charts/coxswain/ci/full-values.yaml`: every value set.
pub fn full_values() -> PathBuf {
    chart_dir().join("ci/full-values.yaml")
}

/// Runs `helm` with `args`, its homes in `sandbox` and, unless `kubeconfig`
/// is given, no cluster at all.
pub fn helm_output(
    helm: &Path,
    sandbox: &Path,
    kubeconfig: Option<&Path>,
    args: &[&str],
) -> Output {
    let no_cluster = sandbox.join("no-kubeconfig");
    Command::new(helm)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", sandbox)
        .env("HELM_CACHE_HOME", sandbox.join("cache"))
        .env("HELM_CONFIG_HOME", sandbox.join("config"))
        .env("HELM_DATA_HOME", sandbox.join("data"))
        .env("KUBECONFIG", kubeconfig.unwrap_or(&no_cluster))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", helm.display()))
}

/// `helm template coxswain charts/coxswain -n coxswain <args>`: the rendered
/// manifest as text; fails the test with helm's stderr when helm refuses.
pub fn template_text(helm: &Path, args: &[&str]) -> String {
    template_text_in(helm, "coxswain", args)
}

/// [`template_text`] for namespace `namespace`.
pub fn template_text_in(helm: &Path, namespace: &str, args: &[&str]) -> String {
    let sandbox = tempfile::tempdir().unwrap();
    let chart = chart_dir();
    let mut all = vec![
        "template",
        "coxswain",
        chart.to_str().unwrap(),
        "-n",
        namespace,
    ];
    all.extend_from_slice(args);
    let out = helm_output(helm, sandbox.path(), None, &all);
    assert!(
        out.status.success(),
        "helm {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The objects of a rendered manifest (empty documents dropped).
pub fn objects(manifest: &str) -> Vec<Value> {
    let docs: Vec<Option<Value>> =
        serde_saphyr::from_multiple(manifest).unwrap_or_else(|e| panic!("{e}:\n{manifest}"));
    docs.into_iter()
        .flatten()
        .filter(|d| !d.is_null())
        .collect()
}

/// `helm template` with `args`, as objects.
pub fn template(helm: &Path, args: &[&str]) -> Vec<Value> {
    objects(&template_text(helm, args))
}

/// The objects of `kind`.
pub fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// The one object of `kind`; fails the test unless there is exactly one.
pub fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(objects, kind);
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0]
}

/// `kind/name` of every object, sorted.
pub fn kinds_and_names(objects: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    out.sort();
    out
}
