//! The rendered diff of an upgrade: what `helm template` of the new revision
//! (with this cluster's merged values) would change against `helm get
//! manifest` of the installed one, object by object, Secrets redacted.
//!
//! [`diff_manifests`] is pure: two manifests in, a bounded [`ManifestDiff`]
//! out. [`render`] runs helm for it through the agent's own paths (the chart
//! from the verified channel's cache, values in a 0600 file).
//!
//! Secrets never show a value: their `data` and `stringData` are compared by
//! SHA-256 and reported by key only (added, removed, changed), and the rest of
//! the object is shown without them. A document that does not parse as YAML
//! is reported by position, never shown (it could hold anything). Hooks
//! (objects annotated `helm.sh/hook`: tests, pre/post jobs) are left out:
//! `helm get manifest` does not list them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::plan::{Action, ActionKind};

/// Largest manifest read, per side.
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;

/// Most documents read per side.
pub const MAX_DOCUMENTS: usize = 5_000;

/// Longest unified diff kept per object (bytes); the rest is cut with a note.
pub const MAX_OBJECT_DIFF: usize = 16 * 1024;

/// Longest the diffs of a release may grow together (bytes): past it,
/// objects are listed with their change but without a diff.
pub const MAX_TOTAL_DIFF: usize = 256 * 1024;

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// What identifies an object in a release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectKey {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`, or the release's namespace when unset.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}/{}",
            self.api_version, self.kind, self.namespace, self.name
        )
    }
}

/// How an object changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ObjectChange {
    /// Only in the new revision.
    Added,
    /// Only in the installed revision: helm deletes it.
    Removed,
    /// In both, different.
    Changed,
}

/// Which keys of a Secret's `data` and `stringData` change (never their values).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeys {
    /// Keys only in the new revision.
    pub added: Vec<String>,
    /// Keys only in the installed revision.
    pub removed: Vec<String>,
    /// Keys in both with another value.
    pub changed: Vec<String>,
}

/// One object that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectDiff {
    /// Which object.
    pub key: ObjectKey,
    /// How.
    pub change: ObjectChange,
    /// A unified diff of its YAML (a Secret's without `data` and
    /// `stringData`); empty when only a Secret's values change, or when the
    /// release's diff budget was spent.
    pub diff: String,
    /// For a Secret: which keys change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_keys: Option<SecretKeys>,
}

/// What an upgrade changes, object by object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestDiff {
    /// The objects that change, by key.
    pub objects: Vec<ObjectDiff>,
    /// Documents that could not be read, as `installed #3` / `new #2`
    /// (never shown: they could hold anything).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
    /// Some diffs were cut or left out to stay within the bounds.
    pub truncated: bool,
}

impl ManifestDiff {
    /// How many objects are added, removed and changed.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |c| self.objects.iter().filter(|o| o.change == c).count();
        (
            count(ObjectChange::Added),
            count(ObjectChange::Removed),
            count(ObjectChange::Changed),
        )
    }

    /// One line for people (and the subscription's status).
    pub fn summary(&self) -> String {
        let (added, removed, changed) = self.counts();
        if self.objects.is_empty() && self.unreadable.is_empty() {
            return "the rendered manifest does not change".to_owned();
        }
        let mut text = format!(
            "{} object(s) change: {added} added, {removed} removed, {changed} changed",
            self.objects.len()
        );
        if !self.unreadable.is_empty() {
            text.push_str(&format!(
                "; {} document(s) could not be read",
                self.unreadable.len()
            ));
        }
        text
    }
}

/// Why a manifest could not be compared at all.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// Larger than [`MAX_MANIFEST_BYTES`].
    #[error("{side} manifest: {size} bytes, more than the {MAX_MANIFEST_BYTES} compared")]
    TooLarge {
        /// `installed` or `new`.
        side: &'static str,
        /// Its size.
        size: usize,
    },
    /// More than [`MAX_DOCUMENTS`] documents.
    #[error("{side} manifest: more than {MAX_DOCUMENTS} documents")]
    TooManyDocuments {
        /// `installed` or `new`.
        side: &'static str,
    },
}

/// One object of a manifest, as compared.
struct Object {
    /// What is shown: the document's text (comments dropped), or for a
    /// Secret the object without its values, as YAML-compatible JSON.
    shown: String,
    /// For a Secret: key to SHA-256 of `data` and `stringData` values.
    secret: Option<BTreeMap<String, [u8; 32]>>,
}

/// Splits a manifest into documents at `---` lines.
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            docs.push(String::new());
            continue;
        }
        if line.starts_with('#') {
            continue; // helm's `# Source:` lines name template files, not content
        }
        if let Some(doc) = docs.last_mut() {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.retain(|d| !d.trim().is_empty());
    docs
}

fn text_field<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

/// The objects of one side, by key; unreadable documents named in `unreadable`.
fn objects(
    text: &str,
    side: &'static str,
    namespace: &str,
    unreadable: &mut Vec<String>,
) -> Result<BTreeMap<ObjectKey, Object>, DiffError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(DiffError::TooLarge {
            side,
            size: text.len(),
        });
    }
    let docs = documents(text);
    if docs.len() > MAX_DOCUMENTS {
        return Err(DiffError::TooManyDocuments { side });
    }
    let mut out = BTreeMap::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let origin = format!("{side} #{}", i + 1);
        let parsed: Result<Option<Value>, _> = crate::yaml::from_slice(
            doc.as_bytes(),
            &origin,
            crate::yaml::Limits::bytes(MAX_MANIFEST_BYTES),
        );
        let value = match parsed {
            Ok(Some(v @ Value::Object(_))) => v,
            Ok(None | Some(Value::Null)) => continue,
            Ok(Some(_)) | Err(_) => {
                unreadable.push(origin);
                continue;
            }
        };
        let (Some(api_version), Some(kind), Some(name)) = (
            text_field(&value, &["apiVersion"]),
            text_field(&value, &["kind"]),
            text_field(&value, &["metadata", "name"]),
        ) else {
            unreadable.push(origin);
            continue;
        };
        // Hooks (tests, pre/post jobs) run and go; `helm get manifest` has
        // none, `helm template` renders them: not part of what is compared.
        if value
            .pointer("/metadata/annotations")
            .and_then(|a| a.get("helm.sh/hook"))
            .is_some()
        {
            continue;
        }
        let key = ObjectKey {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: text_field(&value, &["metadata", "namespace"])
                .unwrap_or(namespace)
                .to_owned(),
            name: name.to_owned(),
        };
        let object = if kind == "Secret" {
            redacted(value)
        } else {
            Object {
                shown: doc,
                secret: None,
            }
        };
        out.insert(key, object);
    }
    Ok(out)
}

/// A Secret without its values: the rest shown, the values hashed per key.
fn redacted(mut value: Value) -> Object {
    let mut hashes = BTreeMap::new();
    if let Value::Object(map) = &mut value {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(entries)) = map.remove(field) {
                for (k, v) in entries {
                    let bytes = match &v {
                        Value::String(s) => s.clone().into_bytes(),
                        other => other.to_string().into_bytes(),
                    };
                    // `data` holds base64 and `stringData` text: hashed apart
                    // so the same key in both is not read as one value.
                    let mut hasher = Sha256::new();
                    hasher.update(field.as_bytes());
                    hasher.update([0]);
                    hasher.update(&bytes);
                    hashes.insert(format!("{field}.{k}"), hasher.finalize().into());
                }
            }
        }
    }
    let shown = serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
    Object {
        shown,
        secret: Some(hashes),
    }
}

fn secret_keys(
    old: Option<&BTreeMap<String, [u8; 32]>>,
    new: Option<&BTreeMap<String, [u8; 32]>>,
) -> SecretKeys {
    let empty = BTreeMap::new();
    let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    SecretKeys {
        added: new
            .keys()
            .filter(|k| !old.contains_key(*k))
            .cloned()
            .collect(),
        removed: old
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect(),
        changed: new
            .iter()
            .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
            .map(|(k, _)| k.clone())
            .collect(),
    }
}

fn unified(old: &str, new: &str, key: &ObjectKey) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(CONTEXT)
        .header(&format!("installed: {key}"), &format!("new: {key}"))
        .to_string()
}

/// Compares the installed revision's manifest with the new one, object by
/// object (keyed by apiVersion, kind, namespace and name; `namespace` is the
/// release's, for objects that do not set one). Bounded: each object's diff
/// to [`MAX_OBJECT_DIFF`], all of them to [`MAX_TOTAL_DIFF`].
pub fn diff_manifests(
    installed: &str,
    new: &str,
    namespace: &str,
) -> Result<ManifestDiff, DiffError> {
    let mut unreadable = Vec::new();
    let old = objects(installed, "installed", namespace, &mut unreadable)?;
    let new = objects(new, "new", namespace, &mut unreadable)?;
    let mut keys: Vec<&ObjectKey> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = ManifestDiff {
        unreadable,
        ..ManifestDiff::default()
    };
    let mut spent = 0;
    for key in keys {
        let (before, after) = (old.get(key), new.get(key));
        let change = match (before, after) {
            (None, Some(_)) => ObjectChange::Added,
            (Some(_), None) => ObjectChange::Removed,
            (Some(b), Some(a)) if b.shown == a.shown && b.secret == a.secret => continue,
            _ => ObjectChange::Changed,
        };
        let is_secret = before.or(after).is_some_and(|o| o.secret.is_some());
        let secret = is_secret.then(|| {
            secret_keys(
                before.and_then(|o| o.secret.as_ref()),
                after.and_then(|o| o.secret.as_ref()),
            )
        });
        fn shown(o: Option<&Object>) -> &str {
            o.map(|o| o.shown.as_str()).unwrap_or("")
        }
        let mut diff = if shown(before) == shown(after) {
            String::new()
        } else {
            unified(shown(before), shown(after), key)
        };
        if diff.len() > MAX_OBJECT_DIFF {
            let cut = diff.len() - MAX_OBJECT_DIFF;
            diff = crate::bounded::bounded_bytes(&diff, MAX_OBJECT_DIFF);
            diff.push_str(&format!(
                "\n... ({cut} more bytes of this diff not shown)\n"
            ));
            out.truncated = true;
        }
        if spent + diff.len() > MAX_TOTAL_DIFF {
            diff.clear();
            out.truncated = true;
        }
        spent += diff.len();
        out.objects.push(ObjectDiff {
            key: key.clone(),
            change,
            diff,
            secret_keys: secret,
        });
    }
    Ok(out)
}

/// One release's rendered diff, as the web UI, `/api/v1/status` and
/// `coxswain diff` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseDiff {
    /// The release.
    pub release: String,
    /// Its namespace.
    pub namespace: String,
    /// The installed chart version.
    pub from: String,
    /// The version the upgrade would install.
    pub to: String,
    /// The installed Helm revision compared against.
    pub installed_revision: u32,
    /// When it was rendered.
    pub rendered_at: crate::format::Timestamp,
    /// What changes, when it could be rendered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<ManifestDiff>,
    /// Why it could not be rendered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it was rendered from (chart and values digests, installed
    /// revision): the agent renders again only when this changes.
    #[serde(skip)]
    pub inputs: String,
}

impl ReleaseDiff {
    /// One line for people: the versions and the summary (or the error).
    pub fn summary(&self) -> String {
        match (&self.diff, &self.error) {
            (Some(d), _) => format!(
                "rendered diff {} -> {}: {}",
                self.from,
                self.to,
                d.summary()
            ),
            (None, Some(e)) => format!("no rendered diff {} -> {}: {e}", self.from, self.to),
            (None, None) => format!("no rendered diff {} -> {}", self.from, self.to),
        }
    }

    /// The whole diff as text (what `coxswain diff` prints).
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "# {}/{}: {} (installed revision {})\n",
            self.namespace,
            self.release,
            self.summary(),
            self.installed_revision
        );
        let Some(d) = &self.diff else {
            return out;
        };
        for o in &d.objects {
            let change = match o.change {
                ObjectChange::Added => "added",
                ObjectChange::Removed => "removed",
                ObjectChange::Changed => "changed",
            };
            out.push_str(&format!("\n## {change}: {}\n", o.key));
            if let Some(k) = &o.secret_keys {
                out.push_str(&format!(
                    "Secret values are not shown; keys added: [{}], removed: [{}], changed: [{}]\n",
                    k.added.join(", "),
                    k.removed.join(", "),
                    k.changed.join(", ")
                ));
            }
            out.push_str(&o.diff);
        }
        for u in &d.unreadable {
            out.push_str(&format!("\n## unreadable document {u} (not shown)\n"));
        }
        if d.truncated {
            out.push_str("\n# (cut to stay within the bounds; the object list is complete)\n");
        }
        out
    }
}

/// What a rendered diff depends on, as one string.
fn inputs_of(action: &Action, revision: u32) -> String {
    format!(
        "{}:{}:{}",
        hex::encode(action.fingerprint.chart_sha256),
        hex::encode(action.fingerprint.values_sha256),
        revision
    )
}

/// Renders `action` (an upgrade a release awaits approval for) against the
/// installed revision: the chart from the verified channel (the fetcher's
/// cache, checked against the index), `helm template` with the action's
/// merged values (channel values and this cluster's, in a 0600 file; never in
/// argv) as an upgrade for this cluster's Kubernetes version, and `helm get
/// manifest` of the installed revision.
pub async fn render(
    ctx: &super::Context,
    snapshot: &super::fetch::ChannelSnapshot,
    action: &Action,
) -> Option<ReleaseDiff> {
    let ActionKind::Upgrade {
        from_version,
        from_revision,
        ..
    } = &action.kind
    else {
        return None;
    };
    let (release, namespace) = (action.release.as_str(), action.namespace.as_str());
    let mut out = ReleaseDiff {
        release: release.to_owned(),
        namespace: namespace.to_owned(),
        from: from_version.clone(),
        to: action.target.chart.version.clone(),
        installed_revision: *from_revision,
        rendered_at: crate::format::Timestamp::now(),
        diff: None,
        error: None,
        inputs: inputs_of(action, *from_revision),
    };
    let result: Result<ManifestDiff, String> = async {
        let describe = |e: &dyn std::error::Error| crate::site_verify::describe(e);
        let chart = ctx
            .fetcher
            .chart(snapshot, &action.target.chart)
            .await
            .map_err(|e| describe(&e))?;
        let kube_version = ctx
            .client
            .apiserver_version()
            .await
            .ok()
            .map(|v| v.git_version);
        let opts = crate::helm::TemplateOptions {
            include_crds: false, // helm get manifest has no crds/ either
            is_upgrade: true,
            kube_version,
            api_versions: Vec::new(),
        };
        let values = Value::Object(action.target.values.clone());
        let new = ctx
            .helm
            .template(release, namespace, &chart, &values, &opts)
            .await
            .map_err(|e| describe(&e))?;
        let installed = ctx
            .helm
            .get_manifest(release, namespace, Some(*from_revision))
            .await
            .map_err(|e| describe(&e))?;
        diff_manifests(&installed, &new, namespace).map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(d) => out.diff = Some(d),
        Err(e) => out.error = Some(crate::bounded::bounded(&e, 1000)),
    }
    Some(out)
}

/// The rendered diffs of the releases of `plan` that await approval, kept in
/// the subscription's view (`key`) for the UI and the API; rendered again
/// only when the chart, the values or the installed revision changed.
/// Returns the summary line per release for the status.
pub(super) async fn approval_diffs(
    ctx: &super::Context,
    key: &str,
    observed: &super::observe::Observed,
    plan: &crate::plan::Plan,
) -> BTreeMap<String, String> {
    let index = observed.snapshot.verified.index();
    let previews = match crate::plan::approval_previews(
        index,
        &observed.settings,
        &observed.installed.releases,
        plan,
    ) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(subscription = %key, error = %e, "no approval previews");
            Vec::new()
        }
    };
    let known: BTreeMap<String, ReleaseDiff> = ctx
        .state
        .snapshot()
        .await
        .get(key)
        .map(|s| {
            s.view
                .diffs
                .iter()
                .map(|d| (d.release.clone(), d.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut diffs = Vec::new();
    for action in &previews {
        let kept = known.get(&action.release).filter(|d| match &action.kind {
            ActionKind::Upgrade { from_revision, .. } => {
                d.inputs == inputs_of(action, *from_revision) && d.error.is_none()
            }
            ActionKind::Install => false,
        });
        let diff = match kept {
            Some(d) => Some(d.clone()),
            None => render(ctx, &observed.snapshot, action).await,
        };
        diffs.extend(diff);
    }
    let summaries = diffs
        .iter()
        .map(|d| (d.release.clone(), d.summary()))
        .collect();
    ctx.state.update_view(key, |v| v.diffs = diffs).await;
    summaries
}

/// Why `coxswain diff` could not render.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionDiffError {
    /// Observing the subscription failed (trust anchor, channel, values,
    /// installed releases), as a check would.
    #[error("{0}")]
    Observe(String),
    /// Planning failed.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// The named release has no upgrade to show.
    #[error("release `{release}` of subscription {subscription} has no upgrade to show: {why}")]
    NothingFor {
        /// The release.
        release: String,
        /// The subscription.
        subscription: String,
        /// Where it stands.
        why: String,
    },
}

/// `coxswain diff`: the rendered diffs of `sub`'s upgrades as the agent would
/// run them now (observed and planned the agent's way, nothing changed in the
/// cluster): the releases awaiting approval, and the upgrades the plan would
/// run; only `release` when named.
pub async fn diff_subscription(
    ctx: &super::Context,
    sub: &crate::crd::ChannelSubscription,
    release: Option<&str>,
) -> Result<Vec<ReleaseDiff>, SubscriptionDiffError> {
    use kube::ResourceExt as _;
    let mut status = sub.status.clone().unwrap_or_default();
    let mut seen = super::reconcile::Seen::default();
    let now = crate::format::Timestamp::now();
    let observed = super::observe::observe(ctx, sub, &mut status, now, &mut seen)
        .await
        .map_err(|stop| SubscriptionDiffError::Observe(stop.into_message()))?;
    let index = observed.snapshot.verified.index();
    let plan = crate::plan::plan(index, &observed.settings, &observed.installed.releases)?;
    let mut actions: Vec<Action> = crate::plan::approval_previews(
        index,
        &observed.settings,
        &observed.installed.releases,
        &plan,
    )?;
    actions.extend(plan.actions().cloned());
    actions.retain(|a| release.is_none_or(|r| a.release == r));
    if let Some(name) = release
        && !actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::Upgrade { .. }))
    {
        let why = match (plan.action(name), plan.skipped(name)) {
            (Some(_), _) => {
                "it is not installed yet (an install has nothing to compare)".to_owned()
            }
            (None, Some(s)) => s.reason(),
            (None, None) => "the channel does not list it".to_owned(),
        };
        return Err(SubscriptionDiffError::NothingFor {
            release: name.to_owned(),
            subscription: format!("{}/{}", sub.namespace().unwrap_or_default(), sub.name_any()),
            why,
        });
    }
    let mut out = Vec::new();
    for action in &actions {
        out.extend(render(ctx, &observed.snapshot, action).await);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLED: &str = "---
# Source: wiki/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: wiki
data:
  greeting: hello
  color: blue
---
# Source: wiki/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: wiki-db
  labels: {app: wiki}
type: Opaque
data:
  password: c2VjcmV0LW9uZQ==
  user: d2lraQ==
stringData:
  token: hunter2-old
---
apiVersion: v1
kind: Service
metadata:
  name: wiki-old
spec:
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: wiki
  namespace: elsewhere
spec:
  replicas: 1
";

    const NEW: &str = "---
# Source: wiki/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: wiki
data:
  greeting: hello
  color: green
---
apiVersion: v1
kind: Secret
metadata:
  name: wiki-db
  labels: {app: wiki, tier: db}
type: Opaque
data:
  password: c2VjcmV0LXR3bw==
  user: d2lraQ==
  apikey: bmV3LWtleQ==
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: wiki
  namespace: elsewhere
spec:
  replicas: 1
---
apiVersion: v1
kind: Service
metadata:
  name: wiki
spec:
  ports: [{port: 8080}]
";

    fn find<'a>(d: &'a ManifestDiff, kind: &str, name: &str) -> &'a ObjectDiff {
        d.objects
            .iter()
            .find(|o| o.key.kind == kind && o.key.name == name)
            .unwrap_or_else(|| panic!("{kind} {name} not in {d:#?}"))
    }

    #[test]
    fn objects_are_compared_by_key_with_unified_diffs() {
        let d = diff_manifests(INSTALLED, NEW, "wiki").unwrap();
        assert_eq!(d.counts(), (1, 1, 2), "{d:#?}");
        assert_eq!(
            d.summary(),
            "4 object(s) change: 1 added, 1 removed, 2 changed"
        );
        let cm = find(&d, "ConfigMap", "wiki");
        assert_eq!(cm.change, ObjectChange::Changed);
        assert_eq!(cm.key.namespace, "wiki", "the release's namespace");
        assert!(
            cm.diff.contains("-  color: blue\n+  color: green\n"),
            "{}",
            cm.diff
        );
        assert!(
            cm.diff.contains("--- installed: v1 ConfigMap wiki/wiki"),
            "{}",
            cm.diff
        );
        assert!(!cm.diff.contains("# Source"), "{}", cm.diff);
        assert_eq!(find(&d, "Service", "wiki").change, ObjectChange::Added);
        let old = find(&d, "Service", "wiki-old");
        assert_eq!(old.change, ObjectChange::Removed);
        assert!(old.diff.contains("-  name: wiki-old"), "{}", old.diff);
        // Unchanged (namespace set by the chart): not listed.
        assert!(d.objects.iter().all(|o| o.key.kind != "Deployment"));
        assert!(!d.truncated && d.unreadable.is_empty());
    }

    #[test]
    fn secrets_show_keys_never_values() {
        let d = diff_manifests(INSTALLED, NEW, "wiki").unwrap();
        let s = find(&d, "Secret", "wiki-db");
        assert_eq!(s.change, ObjectChange::Changed);
        assert_eq!(
            s.secret_keys,
            Some(SecretKeys {
                added: vec!["data.apikey".into()],
                removed: vec!["stringData.token".into()],
                changed: vec!["data.password".into()],
            })
        );
        assert!(
            s.diff.contains("tier"),
            "the rest of the Secret is shown: {}",
            s.diff
        );
        let everything = serde_json::to_string(&d).unwrap() + &format!("{d:?}");
        for value in [
            "c2VjcmV0LW9uZQ==",
            "c2VjcmV0LXR3bw==",
            "d2lraQ==",
            "bmV3LWtleQ==",
            "hunter2",
            "secret-one",
        ] {
            assert!(!everything.contains(value), "{value} leaked: {everything}");
        }
        // Only a value changes: listed, with no text diff.
        let only_value = NEW.replace("c2VjcmV0LXR3bw==", "c2VjcmV0LXRocmVl");
        let d2 = diff_manifests(NEW, &only_value, "wiki").unwrap();
        let s = find(&d2, "Secret", "wiki-db");
        assert!(s.diff.is_empty(), "{}", s.diff);
        assert_eq!(s.secret_keys.as_ref().unwrap().changed, ["data.password"]);
        // An added Secret: its keys, not its values.
        let d3 = diff_manifests("", NEW, "wiki").unwrap();
        let s = find(&d3, "Secret", "wiki-db");
        assert_eq!(s.change, ObjectChange::Added);
        assert_eq!(s.secret_keys.as_ref().unwrap().added.len(), 3);
        assert!(!serde_json::to_string(&d3).unwrap().contains("c2VjcmV0"));
    }

    #[test]
    fn identical_manifests_change_nothing_and_unreadable_documents_are_not_shown() {
        let d = diff_manifests(NEW, NEW, "wiki").unwrap();
        assert!(d.objects.is_empty());
        // A hook (what `helm template` renders and `helm get manifest` omits) is not compared.
        let hook = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: t\n  annotations:\n    \"helm.sh/hook\": test\n";
        assert!(
            diff_manifests(NEW, &format!("{NEW}{hook}"), "wiki")
                .unwrap()
                .objects
                .is_empty()
        );
        assert_eq!(d.summary(), "the rendered manifest does not change");
        let broken =
            format!("{NEW}---\nkind: Secret\ndata: {{password: [unclosed\n---\n- a list\n");
        let d = diff_manifests(NEW, &broken, "wiki").unwrap();
        assert_eq!(d.unreadable, ["new #5", "new #6"]);
        assert!(!format!("{d:?}").contains("unclosed"));
        assert!(d.summary().contains("2 document(s) could not be read"));
    }

    #[test]
    fn diffs_are_bounded() {
        let big = |n: usize| {
            (0..400)
                .map(|i| {
                    format!(
                        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\ndata:\n{}",
                        (0..60)
                            .map(|k| format!("  k{k}: v{n}-{k}-{}\n", "x".repeat(40)))
                            .collect::<String>()
                    )
                })
                .collect::<String>()
        };
        let d = diff_manifests(&big(1), &big(2), "ns").unwrap();
        assert_eq!(d.objects.len(), 400, "every object is listed");
        assert!(d.truncated);
        let total: usize = d.objects.iter().map(|o| o.diff.len()).sum();
        assert!(total <= MAX_TOTAL_DIFF, "{total}");
        assert!(
            d.objects
                .iter()
                .all(|o| o.diff.len() <= MAX_OBJECT_DIFF + 100)
        );
        let huge = "a".repeat(MAX_MANIFEST_BYTES + 1);
        assert!(matches!(
            diff_manifests(&huge, "", "ns"),
            Err(DiffError::TooLarge {
                side: "installed",
                ..
            })
        ));
        let many = "---\na: 1\n".repeat(MAX_DOCUMENTS + 1);
        assert!(matches!(
            diff_manifests("", &many, "ns"),
            Err(DiffError::TooManyDocuments { side: "new" })
        ));
    }
}
