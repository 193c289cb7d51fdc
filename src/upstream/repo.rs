//! A classic Helm repository's `index.yaml`: what publish and `upstream check` read of
//! it (opened by [`crate::publish::sources::open_repo`], the one path for that).

use std::collections::BTreeMap;

use serde::Deserialize;

/// What `upstream check` reads of a repository index.
#[derive(Debug, Default, Deserialize)]
pub struct RepoIndex {
    /// Chart name → its versions.
    #[serde(default)]
    pub entries: BTreeMap<String, Vec<RepoEntry>>,
}

/// One chart version of a repository index.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepoEntry {
    /// The chart version as written.
    pub version: String,
    /// Where the archive is (relative to the repository, or absolute).
    #[serde(default)]
    pub urls: Vec<String>,
    /// The archive's sha256, when the index says.
    #[serde(default)]
    pub digest: Option<String>,
    /// The app version, if any.
    #[serde(default)]
    pub app_version: Option<serde_json::Value>,
    /// The chart's annotations (`artifacthub.io/changes` holds release notes).
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, serde_json::Value>>,
}

impl RepoEntry {
    /// The app version as text.
    pub fn app_version(&self) -> Option<String> {
        scalar_text(self.app_version.as_ref()?)
    }

    /// The release notes the chart carries in its `artifacthub.io/changes` annotation.
    pub fn notes(&self) -> Option<String> {
        scalar_text(self.annotations.as_ref()?.get("artifacthub.io/changes")?)
    }
}

fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
