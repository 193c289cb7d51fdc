//! `Chart.lock` (a v1 chart's `requirements.lock`): the exact dependency versions that
//! `helm dependency update` chose, and whether the lock is still in sync with the
//! dependencies Chart.yaml declares.
//!
//! Helm's `dependency build` compares the lock's `digest` with the sha256 of Go's
//! `json.Marshal([2][]*Dependency{declared, locked})` and refuses a lock that differs
//! ("out of sync"); for a v1 chart it also accepts Helm 2's digest, the sha256 of
//! `{"dependencies": declared}`. The same digests are computed here, from the entries
//! as [`super::meta`] writes them in Go's JSON.

use serde::Deserialize;

use super::Dependency;
use super::meta::go_json_string;
use crate::format::Sha256Digest;
use crate::yaml;

/// Largest lock file read.
pub const MAX_LOCK_BYTES: usize = 1 << 20;

/// A parsed lock file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartLock {
    /// `sha256:<hex>` over the declared and locked dependencies.
    pub digest: String,
    /// The locked dependencies, in the order Chart.yaml declares them.
    pub dependencies: Vec<LockedDependency>,
}

/// One locked dependency: an exact version from one repository.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedDependency {
    /// The chart's name.
    pub name: String,
    /// The exact version.
    #[serde(default)]
    pub version: String,
    /// Where it comes from (empty: already in `charts/`).
    #[serde(default)]
    pub repository: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    #[serde(default)]
    generated: Option<serde::de::IgnoredAny>,
    digest: String,
    #[serde(default)]
    dependencies: Vec<LockedDependency>,
}

/// Reads a lock file; `path` names it in errors.
pub fn parse_lock(bytes: &[u8], path: &str) -> Result<ChartLock, String> {
    let limits = yaml::Limits::bytes(MAX_LOCK_BYTES);
    let file: LockFile =
        yaml::from_slice(bytes, path, limits).map_err(|e| crate::site_verify::describe(&e))?;
    let _ = file.generated;
    if file.dependencies.iter().any(|d| d.name.is_empty()) {
        return Err(format!("{path}: a locked dependency has no name"));
    }
    Ok(ChartLock {
        digest: file.digest,
        dependencies: file.dependencies,
    })
}

/// The digest Helm 3 and 4 write into a lock for `declared` and `locked`.
pub fn helm_digest(declared: &[Dependency], locked: &[LockedDependency]) -> Result<String, String> {
    let declared = declared_json(declared)?;
    let locked: Vec<String> = locked.iter().map(locked_json).collect();
    let json = format!("[[{}],[{}]]", declared.join(","), locked.join(","));
    Ok(format!(
        "sha256:{}",
        Sha256Digest::of(json.as_bytes()).hex()
    ))
}

/// The digest Helm 2 wrote into `requirements.lock` (accepted by Helm 3 and 4 for v1
/// charts).
pub fn helm2_digest(declared: &[Dependency]) -> Result<String, String> {
    let json = format!(
        "{{\"dependencies\":[{}]}}",
        declared_json(declared)?.join(",")
    );
    Ok(format!(
        "sha256:{}",
        Sha256Digest::of(json.as_bytes()).hex()
    ))
}

fn declared_json(declared: &[Dependency]) -> Result<Vec<String>, String> {
    declared.iter().map(|d| d.helm_json.clone()).collect()
}

/// A locked entry as Go marshals `chart.Dependency` with only name, version and
/// repository set (what Helm writes into a lock).
fn locked_json(d: &LockedDependency) -> String {
    let mut out = format!("{{\"name\":{}", go_json_string(&d.name));
    if !d.version.is_empty() {
        out.push_str(&format!(",\"version\":{}", go_json_string(&d.version)));
    }
    out.push_str(&format!(
        ",\"repository\":{}}}",
        go_json_string(&d.repository)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::meta::parse_chart_yaml;

    fn declared(yaml: &str) -> Vec<Dependency> {
        let text = format!("apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n{yaml}");
        parse_chart_yaml(text.as_bytes(), "Chart.yaml")
            .unwrap()
            .dependencies
    }

    #[test]
    fn the_digest_is_helms() {
        // Chart.yaml and Chart.lock as `helm dependency update` (helm 4.3.1) left them.
        let deps = declared(
            "- name: db\n  version: ~1.2.0\n  repository: https://charts.example.com/stable\n  condition: db.enabled\n  tags: [backend]\n",
        );
        let lock = parse_lock(
            b"dependencies:\n- name: db\n  repository: https://charts.example.com/stable\n  version: 1.2.3\ndigest: sha256:x\ngenerated: \"2026-12-03T15:00:00.123Z\"\n",
            "Chart.lock",
        )
        .unwrap();
        let expected = format!(
            "sha256:{}",
            Sha256Digest::of(
                br#"[[{"name":"db","version":"~1.2.0","repository":"https://charts.example.com/stable","condition":"db.enabled","tags":["backend"]}],[{"name":"db","version":"1.2.3","repository":"https://charts.example.com/stable"}]]"#
            )
            .hex()
        );
        assert_eq!(helm_digest(&deps, &lock.dependencies).unwrap(), expected);
    }

    #[test]
    fn go_json_details() {
        let deps = declared(
            "- name: db\n  repository: \"file://../a<b>&c\"\n  enabled: true\n  import-values:\n  - child: x\n    parent: p\n  - data\n  alias: main\n",
        );
        assert_eq!(
            deps[0].helm_json.as_deref().unwrap(),
            r#"{"name":"db","repository":"file://../a\u003cb\u003e\u0026c","enabled":true,"import-values":[{"child":"x","parent":"p"},"data"],"alias":"main"}"#
        );
        let deps = declared("- name: db\n  import-values: [1.10]\n");
        assert!(deps[0].helm_json.as_ref().unwrap_err().contains("quote it"));
    }

    #[test]
    fn a_lock_with_unknown_fields_or_no_digest_is_refused() {
        let err = parse_lock(b"dependencies: []\n", "Chart.lock").unwrap_err();
        assert!(err.contains("digest"), "{err}");
        let err = parse_lock(
            b"digest: sha256:x\ndependencies:\n- name: a\n  version: 1.0.0\n  repository: r\n  extra: 1\n",
            "Chart.lock",
        )
        .unwrap_err();
        assert!(err.contains("extra"), "{err}");
    }
}
