//! The maintainers' pipeline around a channel: `coxswain upstream check` finds newer
//! chart versions and image tags upstream, within each release's `update:` policy, and
//! can write them into the spec (and its values files) in place; `coxswain gate` proves
//! a published channel on a test cluster.
//!
//! - [`policy`]: tracks (`patch`/`minor`/`major`/ranges), image references, tag
//!   patterns, values paths — pure;
//! - [`registry`]: the OCI distribution API (tags, manifest digests, chart configs)
//!   with the anonymous bearer-token flow of public registries;
//! - [`repo`]: a classic Helm repository's `index.yaml`;
//! - [`edit`]: rewriting only the bytes of the scalars that change;
//! - [`gate`]: a published channel applied to a test cluster, `helm test` for every
//!   release, JUnit and a signed gate record.
//!
//! `upstream check` touches no site and no cluster: its output is a changed spec for a
//! pull request, which CI then publishes.

pub mod edit;
pub mod gate;
pub mod policy;
pub mod registry;
pub mod repo;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

pub use policy::{ImageRef, Track, tag_pattern, tag_version, values_path};

use crate::format::ChartVersion;
use crate::format::spec::{ChannelSpec, ChartSource, ImageUpdate, ReleaseSpec};
use edit::{Edit, Step};
use registry::Registry;

/// Why a release could not be checked, or a spec not written.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// A registry failed or answered something unusable.
    #[error("registry {image}: {reason}")]
    Registry {
        /// The repository asked.
        image: String,
        /// What went wrong.
        reason: String,
    },
    /// A Helm repository failed or answered something unusable.
    #[error("repository {url}: {reason}")]
    Repository {
        /// The repository URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A release's policy cannot be followed with what the spec says.
    #[error("release `{release}`: {reason}")]
    Release {
        /// The release.
        release: String,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// What changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// A chart version.
    Chart,
    /// An image tag (and digest).
    Image,
}

/// One newer version found upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The release.
    pub release: String,
    /// Chart or image.
    pub kind: Kind,
    /// The chart name or the image repository.
    pub name: String,
    /// The version or tag now (with `@digest` when digests are pinned).
    pub from: String,
    /// The newer version or tag (with `@digest` when digests are pinned).
    pub to: String,
    /// The chart's app version now and then, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_version: Option<(Option<String>, Option<String>)>,
    /// The new chart version's notes (`artifacthub.io/changes`), when it has some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The scalars to rewrite: file → edits.
    #[serde(skip)]
    pub edits: Vec<(PathBuf, Edit)>,
}

/// The outcome of a check.
#[derive(Debug, Default)]
pub struct Report {
    /// Newer versions, in spec order.
    pub findings: Vec<Finding>,
    /// Releases that could not be checked.
    pub errors: Vec<UpstreamError>,
    /// Releases checked (charts and images counted once per release).
    pub checked: usize,
}

/// The sources a check reads.
pub struct Upstream {
    registry: Registry,
    limits: crate::site::Limits,
    indexes: tokio::sync::Mutex<HashMap<String, std::sync::Arc<repo::RepoIndex>>>,
}

impl Upstream {
    /// A checker with the timeouts of `limits`.
    pub fn new(limits: crate::site::Limits) -> Result<Self, UpstreamError> {
        Ok(Upstream {
            registry: Registry::new(&limits)?,
            limits,
            indexes: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    async fn index(
        &self,
        repo: &crate::format::RepoChart,
        spec_dir: &Path,
    ) -> Result<std::sync::Arc<repo::RepoIndex>, UpstreamError> {
        let mut cache = self.indexes.lock().await;
        if let Some(index) = cache.get(&repo.url) {
            return Ok(index.clone());
        }
        let err = |reason: String| UpstreamError::Repository {
            url: repo.url.clone(),
            reason,
        };
        let opened = crate::publish::sources::open_repo(repo, spec_dir, &self.limits)
            .await
            .map_err(|e| match e {
                crate::publish::sources::RepoOpenError::Spec(reason) => err(reason),
                crate::publish::sources::RepoOpenError::Fetch(source) => {
                    let text = crate::site::check::describe(&source);
                    err(
                        match crate::publish::sources::repo_fetch_hint(repo, &source) {
                            Some(hint) => format!("{text}; {hint}"),
                            None => text,
                        },
                    )
                }
            })?;
        let index = std::sync::Arc::new(opened.index);
        cache.insert(repo.url.clone(), index.clone());
        Ok(index)
    }
}

/// Checks every release of `spec` (read from `spec_path`); one release's failure does
/// not stop the others.
pub async fn check(spec: &ChannelSpec, spec_path: &Path, upstream: &Upstream) -> Report {
    let spec_dir = spec_path.parent().unwrap_or(Path::new("."));
    let mut report = Report::default();
    for (index, release) in spec.releases.iter().enumerate() {
        report.checked += 1;
        match check_release(index, release, spec_path, spec_dir, upstream).await {
            Ok(found) => report.findings.extend(found),
            Err(e) => report.errors.push(e),
        }
    }
    report
}

fn release_err(release: &ReleaseSpec, reason: String) -> UpstreamError {
    UpstreamError::Release {
        release: release.name.clone(),
        reason,
    }
}

async fn check_release(
    index: usize,
    release: &ReleaseSpec,
    spec_path: &Path,
    spec_dir: &Path,
    upstream: &Upstream,
) -> Result<Vec<Finding>, UpstreamError> {
    let policy = release.update.clone().unwrap_or_default();
    let explicit = policy.chart.is_some();
    let track = match &policy.chart {
        Some(text) => {
            Track::parse(text).map_err(|e| release_err(release, format!("update.chart: {e}")))?
        }
        // Without a policy, newer versions within the current major version.
        None => Track::Minor,
    };
    let mut findings = Vec::new();
    let spec_step = |rest: &[&str]| -> Vec<Step> {
        let mut p = vec![Step::Key("releases".into()), Step::Index(index)];
        p.extend(rest.iter().map(|k| Step::Key((*k).to_owned())));
        p
    };
    if track != Track::None {
        match &release.chart {
            ChartSource::Repo(repo) => {
                let index = upstream.index(repo, spec_dir).await?;
                let current = parse_current(release, &repo.version)?;
                let entries =
                    index
                        .entries
                        .get(&repo.name)
                        .ok_or_else(|| UpstreamError::Repository {
                            url: repo.url.clone(),
                            reason: format!("lists no chart `{}`", repo.name),
                        })?;
                let candidates = entries.iter().filter_map(|e| {
                    Some((e.version.as_str(), ChartVersion::parse(&e.version).ok()?))
                });
                if let Some((to, _)) = policy::newest(&current, &track, candidates) {
                    let from_entry = entries.iter().find(|e| e.version == repo.version);
                    let to_entry = entries.iter().find(|e| e.version == to);
                    findings.push(Finding {
                        release: release.name.clone(),
                        kind: Kind::Chart,
                        name: repo.name.clone(),
                        from: repo.version.clone(),
                        to: to.to_owned(),
                        app_version: Some((
                            from_entry.and_then(repo::RepoEntry::app_version),
                            to_entry.and_then(repo::RepoEntry::app_version),
                        )),
                        notes: to_entry.and_then(repo::RepoEntry::notes),
                        edits: vec![(
                            spec_path.to_owned(),
                            Edit {
                                path: spec_step(&["chart", "repo", "version"]),
                                value: to.to_owned(),
                            },
                        )],
                    });
                }
            }
            ChartSource::Oci(oci) => {
                let image = ImageRef::from_oci(&oci.reference)
                    .map_err(|e| release_err(release, format!("chart.oci.ref: {e}")))?;
                let current = parse_current(release, &oci.version)?;
                let tags = upstream.registry.tags(&image).await?;
                let versions: Vec<(String, ChartVersion)> = tags
                    .iter()
                    .filter_map(|t| {
                        let text = policy::chart_version_of_tag(t);
                        let v = ChartVersion::parse(&text).ok()?;
                        Some((text, v))
                    })
                    .collect();
                let found = policy::newest(
                    &current,
                    &track,
                    versions.iter().map(|(t, v)| (t.as_str(), v.clone())),
                );
                if let Some((to, _)) = found {
                    let config = |version: &str| {
                        let tag = version.replace('+', "_");
                        let image = image.clone();
                        async move { upstream.registry.chart_config(&image, &tag).await }
                    };
                    let old = config(&oci.version).await.ok();
                    let new = config(to).await?;
                    findings.push(Finding {
                        release: release.name.clone(),
                        kind: Kind::Chart,
                        name: oci.reference.clone(),
                        from: oci.version.clone(),
                        to: to.to_owned(),
                        app_version: Some((
                            old.and_then(|c| c.app_version),
                            new.app_version.clone(),
                        )),
                        notes: new
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get("artifacthub.io/changes").cloned()),
                        edits: vec![(
                            spec_path.to_owned(),
                            Edit {
                                path: spec_step(&["chart", "oci", "version"]),
                                value: to.to_owned(),
                            },
                        )],
                    });
                }
            }
            ChartSource::Path(_) | ChartSource::Archive(_) if explicit => {
                return Err(release_err(
                    release,
                    "update.chart is set, but the chart is a local path or archive, which has no upstream; use `none` or a repo/oci chart".to_owned(),
                ));
            }
            ChartSource::Path(_) | ChartSource::Archive(_) => {}
        }
    }
    for (i, image) in policy.images.iter().enumerate() {
        if let Some(found) =
            check_image(index, i, release, image, spec_path, spec_dir, upstream).await?
        {
            findings.push(found);
        }
    }
    Ok(findings)
}

fn parse_current(release: &ReleaseSpec, version: &str) -> Result<ChartVersion, UpstreamError> {
    ChartVersion::parse(version)
        .map_err(|e| release_err(release, format!("chart version `{version}`: {e}")))
}

/// Where a values path is set: the spec's inline values win over the values file, as
/// they do when the values are merged.
fn locate(
    index: usize,
    release: &ReleaseSpec,
    keys: &[String],
    spec_path: &Path,
    spec_dir: &Path,
) -> Result<Option<(PathBuf, Vec<Step>, Value)>, UpstreamError> {
    let keyed = |prefix: Vec<Step>| {
        let mut p = prefix;
        p.extend(keys.iter().cloned().map(Step::Key));
        p
    };
    if let Some(value) = release.values.as_ref().and_then(|v| lookup(v, keys)) {
        let prefix = vec![
            Step::Key("releases".into()),
            Step::Index(index),
            Step::Key("values".into()),
        ];
        return Ok(Some((spec_path.to_owned(), keyed(prefix), value)));
    }
    if let Some(file) = &release.values_file {
        let path = spec_dir.join(file);
        let values = crate::format::spec::load_values_file(&path)
            .map_err(|e| release_err(release, crate::site::check::describe(&e)))?;
        if let Some(value) = lookup(&values, keys) {
            return Ok(Some((path, keyed(Vec::new()), value)));
        }
    }
    Ok(None)
}

fn lookup(values: &Map<String, Value>, keys: &[String]) -> Option<Value> {
    let (last, parents) = keys.split_last()?;
    let mut map = values;
    for key in parents {
        map = map.get(key)?.as_object()?;
    }
    map.get(last).cloned()
}

async fn check_image(
    index: usize,
    i: usize,
    release: &ReleaseSpec,
    image: &ImageUpdate,
    spec_path: &Path,
    spec_dir: &Path,
    upstream: &Upstream,
) -> Result<Option<Finding>, UpstreamError> {
    let at = format!("update.images[{i}]");
    let bad = |reason: String| release_err(release, format!("{at}: {reason}"));
    let reference =
        ImageRef::parse(&image.repository).map_err(|e| bad(format!("repository: {e}")))?;
    let track = match &image.versions {
        Some(text) => Track::parse(text).map_err(|e| bad(format!("versions: {e}")))?,
        None => Track::Minor,
    };
    let pattern = image
        .pattern
        .as_deref()
        .map(tag_pattern)
        .transpose()
        .map_err(|e| bad(format!("pattern: {e}")))?;
    let tag_keys = values_path(&image.tag).map_err(|e| bad(format!("tag: {e}")))?;
    let (tag_file, tag_path, current_tag) = locate(index, release, &tag_keys, spec_path, spec_dir)?
        .ok_or_else(|| {
            bad(format!(
                "the tag `{}` is set neither in the release's values nor in its valuesFile; set it there to pin the image",
                image.tag
            ))
        })?;
    let current_tag = match current_tag {
        Value::String(s) => s,
        other => {
            return Err(bad(format!(
                "the tag at `{}` is {other}, not a string; quote it",
                image.tag
            )));
        }
    };
    let current = tag_version(&current_tag, pattern.as_ref()).ok_or_else(|| {
        bad(format!(
            "the current tag `{current_tag}` is not a version{}",
            if pattern.is_some() {
                " matching the pattern"
            } else {
                "; set `pattern` to read it"
            }
        ))
    })?;
    let tags = if track == Track::None {
        Vec::new()
    } else {
        upstream.registry.tags(&reference).await?
    };
    let newest = policy::newest(
        &current,
        &track,
        tags.iter()
            .filter_map(|t| Some((t.as_str(), tag_version(t, pattern.as_ref())?))),
    )
    .map(|(t, _)| t.to_owned());
    let to_tag = newest.clone().unwrap_or_else(|| current_tag.clone());
    let mut edits = Vec::new();
    if let Some(tag) = &newest {
        edits.push((
            tag_file,
            Edit {
                path: tag_path,
                value: tag.clone(),
            },
        ));
    }
    let (mut from, mut to) = (current_tag.clone(), to_tag.clone());
    if let Some(digest_at) = &image.digest {
        let digest_keys = values_path(digest_at).map_err(|e| bad(format!("digest: {e}")))?;
        let (digest_file, digest_path, current_digest) =
            locate(index, release, &digest_keys, spec_path, spec_dir)?.ok_or_else(|| {
                bad(format!(
                    "the digest `{digest_at}` is set neither in the values nor in the valuesFile; add it (an empty string will do) so it can be pinned"
                ))
            })?;
        let current_digest = current_digest.as_str().unwrap_or_default().to_owned();
        let digest = upstream.registry.digest(&reference, &to_tag).await?;
        if digest != current_digest {
            edits.push((
                digest_file,
                Edit {
                    path: digest_path,
                    value: digest.clone(),
                },
            ));
            if !current_digest.is_empty() {
                from = format!("{from}@{current_digest}");
            }
            to = format!("{to}@{digest}");
        }
    }
    if edits.is_empty() {
        return Ok(None);
    }
    Ok(Some(Finding {
        release: release.name.clone(),
        kind: Kind::Image,
        name: image.repository.clone(),
        from,
        to,
        app_version: None,
        notes: None,
        edits,
    }))
}

/// Writes every finding's edits: each file is rewritten once, atomically, and only
/// after re-reading the result shows that exactly the intended values changed.
pub fn write(findings: &[Finding]) -> Result<Vec<PathBuf>, UpstreamError> {
    let mut per_file: BTreeMap<PathBuf, Vec<Edit>> = BTreeMap::new();
    for finding in findings {
        for (file, edit) in &finding.edits {
            let edits = per_file.entry(file.clone()).or_default();
            match edits.iter().find(|e| e.path == edit.path) {
                Some(other) if other.value != edit.value => {
                    return Err(UpstreamError::File {
                        path: file.clone(),
                        reason: format!(
                            "{} would be set to both {} and {}",
                            edit::show(&edit.path),
                            other.value,
                            edit.value
                        ),
                    });
                }
                Some(_) => {}
                None => edits.push(edit.clone()),
            }
        }
    }
    // Everything is computed and checked before the first file is replaced.
    let mut planned = Vec::new();
    for (path, edits) in &per_file {
        let file_err = |reason: String| UpstreamError::File {
            path: path.clone(),
            reason,
        };
        let bytes = crate::fsread::read(
            path,
            crate::fsread::Rules::regular(crate::format::spec::MAX_SPEC_BYTES as u64),
        )
        .map_err(|e| file_err(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|_| file_err("not UTF-8".to_owned()))?;
        let edited = edit::apply(&text, edits).map_err(file_err)?;
        check_edit(&text, &edited, edits).map_err(file_err)?;
        planned.push((path.clone(), edited));
    }
    let mut written = Vec::new();
    for (path, edited) in planned {
        // A spec and its values files are the maintainers' sources: keep their mode.
        let mode = std::fs::metadata(&path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap_or(0o644);
        let opts = crate::atomic::WriteOptions {
            mode,
            replace: true,
            create_dirs: false,
        };
        crate::atomic::write(&path, edited.as_bytes(), opts).map_err(|e| UpstreamError::File {
            path: path.clone(),
            reason: format!("cannot write: {e}"),
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Re-reads both texts: the edited one must equal the original with exactly the edited
/// values replaced (as strings), and nothing else.
fn check_edit(before: &str, after: &str, edits: &[Edit]) -> Result<(), String> {
    let limits = crate::yaml::Limits::bytes(crate::format::spec::MAX_SPEC_BYTES);
    let mut expected: Value = crate::yaml::from_slice(before.as_bytes(), "before", limits)
        .map_err(|e| format!("cannot re-read: {e}"))?;
    let actual: Value = crate::yaml::from_slice(after.as_bytes(), "after", limits)
        .map_err(|e| format!("the edit made the file unreadable: {e}"))?;
    for edit in edits {
        let mut node = &mut expected;
        for step in &edit.path {
            node = match step {
                Step::Key(k) => node.get_mut(k.as_str()),
                Step::Index(i) => node.get_mut(*i),
            }
            .ok_or_else(|| format!("{}: not found on re-reading", edit::show(&edit.path)))?;
        }
        *node = Value::String(edit.value.clone());
    }
    if expected != actual {
        return Err(
            "the edit changed more than the intended values; nothing was written".to_owned(),
        );
    }
    Ok(())
}

/// Renders findings as a changelog fit for a pull request's body.
pub fn markdown(report: &Report) -> String {
    let mut out = String::from("## Upstream updates\n\n");
    if report.findings.is_empty() {
        out.push_str("Nothing new upstream.\n");
    } else {
        out.push_str(
            "| release | what | from | to | app version |\n| --- | --- | --- | --- | --- |\n",
        );
        for f in &report.findings {
            let app = match &f.app_version {
                Some((a, b)) if a != b => format!(
                    "{} → {}",
                    a.as_deref().unwrap_or("?"),
                    b.as_deref().unwrap_or("?")
                ),
                Some((_, Some(b))) => b.clone(),
                _ => String::new(),
            };
            let what = match f.kind {
                Kind::Chart => format!("chart `{}`", f.name),
                Kind::Image => format!("image `{}`", f.name),
            };
            out.push_str(&format!(
                "| {} | {what} | `{}` | `{}` | {app} |\n",
                f.release, f.from, f.to
            ));
        }
        for f in report.findings.iter().filter(|f| f.notes.is_some()) {
            out.push_str(&format!(
                "\n### {} {} {}\n\n{}\n",
                f.release,
                f.name,
                f.to,
                f.notes.as_deref().unwrap_or_default().trim_end()
            ));
        }
    }
    if !report.errors.is_empty() {
        out.push_str("\n### Not checked\n\n");
        for e in &report.errors {
            out.push_str(&format!("- {}\n", crate::site::check::describe(e)));
        }
    }
    out
}
