//! A classic Helm repository's `index.yaml`, read for the versions it lists.

use std::collections::BTreeMap;

use reqwest::Url;
use serde::Deserialize;

use super::UpstreamError;
use crate::site::{Fetched, HttpFetcher, Limits, RedirectRule};
use crate::yaml;

/// Largest `index.yaml` read: large public repositories ship tens of MB.
pub const MAX_INDEX_BYTES: usize = 64 << 20;

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

/// Downloads and reads `<url>/index.yaml`, bounded in size and time.
pub async fn fetch_index(url: &str, limits: &Limits) -> Result<RepoIndex, UpstreamError> {
    let err = |reason: String| UpstreamError::Repository {
        url: url.to_owned(),
        reason,
    };
    // Helm resolves index.yaml against the repository URL as a directory.
    let base = if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    };
    let index_url = Url::parse(&base)
        .and_then(|b| b.join("index.yaml"))
        .map_err(|e| err(format!("not a URL: {e}")))?;
    let fetcher = HttpFetcher::with_redirects(limits, RedirectRule::AnyOrigin)
        .map_err(|e| err(e.to_string()))?;
    let bytes = match fetcher.get(&index_url, MAX_INDEX_BYTES as u64, None).await {
        Ok(Fetched::Modified { bytes, .. }) => bytes,
        Ok(Fetched::NotModified) => return Err(err("answered 304 to a plain GET".to_owned())),
        Err(e) => return Err(err(crate::site::check::describe(&e))),
    };
    let limits = yaml::Limits {
        max_bytes: MAX_INDEX_BYTES,
        max_depth: 64,
        max_aliases: 10_000,
        max_alias_replayed_events: 1_000_000,
        max_nodes: 20_000_000,
    };
    yaml::from_slice(&bytes, index_url.as_str(), limits).map_err(|e| {
        err(format!(
            "cannot read index.yaml: {}",
            crate::site::check::describe(&e)
        ))
    })
}
