//! The channel spec: what the maintainers' CI publishes, written by hand in YAML.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    ApiVersion, Document, FormatError, GraphNode, ValidationError, check_dns_label, check_range,
    check_release_graph, check_version,
};
use crate::duration::Duration;
use crate::yaml;

/// Largest channel spec accepted.
pub const MAX_SPEC_BYTES: usize = 4 << 20;
/// Largest values file accepted.
pub const MAX_VALUES_BYTES: usize = 4 << 20;

/// The `kind` of a channel spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum ChannelSpecKind {
    /// `ChannelSpec`
    #[default]
    ChannelSpec,
}

/// The CI's input to `coxswain publish`: which charts, with which values, make up a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChannelSpec {
    /// Always `coxswain.dev/v1`.
    pub api_version: ApiVersion,
    /// Always `ChannelSpec`.
    pub kind: ChannelSpecKind,
    /// The channel's name (a DNS-1123 label), e.g. `stable`.
    pub channel: String,
    /// How long a published index stays valid; `publish --valid-for` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for: Option<Duration>,
    /// How many older entries per release stay pinnable in the index.
    #[serde(default = "default_keep_previous")]
    pub keep_previous: u32,
    /// The releases, in any order (`dependsOn` gives the order).
    pub releases: Vec<ReleaseSpec>,
    /// Staged waves and pause, carried into the signed index (docs/rollouts.md); unset:
    /// every subscribed cluster may start at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::rollout::Rollout>,
}

fn default_keep_previous() -> u32 {
    3
}

/// One Helm release in the spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleaseSpec {
    /// The Helm release name (DNS-1123 label, at most 53 characters).
    pub name: String,
    /// The namespace it is installed in.
    pub namespace: String,
    /// Where the chart comes from.
    pub chart: ChartSource,
    /// Inline values, merged over `valuesFile`. Signed as written: what JSON or helm would
    /// change (keys that collide as strings, integers beyond ±2^53) is refused.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::values::deserialize_object"
    )]
    pub values: Option<Map<String, Value>>,
    /// A YAML values file, relative to the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_file: Option<PathBuf>,
    /// Releases that must be upgraded and healthy before this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// How the agent decides the release is healthy.
    #[serde(default)]
    pub health: Health,
    /// Semver range of installed chart versions that may upgrade directly to this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_from: Option<String>,
    /// What `coxswain upstream check` may move this release to: newer chart versions
    /// and image tags. Read only by the maintainers' tools; not part of the index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdatePolicy>,
    /// What happens to the CustomResourceDefinitions in the chart's `crds/`; unset:
    /// Helm's own rule (created at the first install, never changed afterwards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crds: Option<CrdPolicy>,
    /// A Velero backup the agent takes of the release's namespace before it
    /// upgrades it (`docs/backup.md`); unset: none, unless a subscription requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupPolicy>,
    /// `security`: the entry may start outside the maintenance windows of subscriptions
    /// that allow security updates (docs/rollouts.md); unset: an ordinary release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<crate::rollout::Urgency>,
    /// Whether clusters wait for an administrator's approval before they upgrade to
    /// this entry (docs/rollouts.md): `required` or `waived`; unset: `coxswain publish`
    /// requires it when the chart's major version (the minor one below 1.0) goes up
    /// against the release's previous entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// The maintainers' word on a release entry's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Approval {
    /// Every cluster waits for an approval of this entry's version before it upgrades.
    Required,
    /// No cluster waits, even for a major-version bump.
    Waived,
}

/// Which upstream versions `coxswain upstream check` proposes for a release.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdatePolicy {
    /// Newer chart versions taken: `patch` (same major.minor), `minor` (same major),
    /// `major` (any), `none`, or a semver range such as `~1.14` or `>=2, <4`. Default:
    /// `minor`. Pre-releases only when the range names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Container images whose tags are set in this release's values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageUpdate>,
}

/// One container image whose tag (and optionally digest) lives in a release's values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageUpdate {
    /// The image repository without tag, e.g. `docker.io/traefik`, `ghcr.io/org/app`,
    /// `nginx` (Docker Hub's `library/nginx`).
    pub repository: String,
    /// The dotted values path of the tag, e.g. `image.tag`; set in the spec's inline
    /// `values` or its `valuesFile`.
    pub tag: String,
    /// Newer tags taken, as for `chart`: `patch`, `minor` (default), `major`, `none`
    /// or a semver range. Tags are read as versions (`v1.2.3` and `1.2` too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<String>,
    /// A regular expression a tag must match to be considered, e.g.
    /// `^(\d+\.\d+\.\d+)-alpine$`; its first capture group (else the whole tag) is
    /// read as the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The dotted values path where the tag's manifest digest (`sha256:…`) is pinned
    /// alongside the tag, when wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The CRD policy of a release: what the agent does with the
/// CustomResourceDefinitions in its chart's `crds/` before each install or
/// upgrade. Helm itself creates them at the first install only and never
/// changes them afterwards, so a chart version that needs a new CRD field
/// breaks; no policy ever deletes a CRD (that would delete every custom
/// resource of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CrdPolicy {
    /// Never create or change them, not even at the first install (helm gets
    /// `--skip-crds`): the cluster's administrators manage them.
    Skip,
    /// Create the ones missing from the cluster, before every install and
    /// upgrade; leave existing ones as they are.
    Create,
    /// Create the missing ones and update the existing ones to the chart's
    /// (server-side apply, taking over conflicting fields), before every
    /// install and upgrade; never delete one.
    CreateReplace,
}

impl CrdPolicy {
    /// The name as written in a spec (`skip`, `create`, `createReplace`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Create => "create",
            Self::CreateReplace => "createReplace",
        }
    }

    /// Whether coxswain applies the chart's CRDs itself (and so reads them).
    pub fn applies(self) -> bool {
        !matches!(self, Self::Skip)
    }
}

impl std::fmt::Display for CrdPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest `backup.ttl` accepted: ten years. Velero reads the TTL as a Go
/// duration, which ends at about 292 years; anything near that is a mistake.
pub const MAX_BACKUP_TTL: Duration = Duration::from_days(3_650);

/// A Velero backup the agent takes before it changes a release: what the
/// channel asks for, which a subscription may require, waive or override
/// per release. Velero deletes the backup once its TTL has passed; the
/// agent never deletes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackupPolicy {
    /// When the backup is taken: `upgrade`, before every upgrade of an
    /// installed release (a first install has nothing to back up yet).
    pub before: BackupBefore,
    /// How long Velero keeps the backup, e.g. `720h` or `30d`; unset:
    /// Velero's default (30 days). At most 3650d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Also snapshot the release's persistent volumes (needs a volume
    /// snapshot provider in the cluster); unset or `false`: Kubernetes objects only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_volumes: bool,
    /// When the upgrade failed and the rollback alone does not make the
    /// release healthy again, restore this backup over its namespace (data
    /// written since the backup is lost) and check its health once more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_restore: bool,
}

/// The operation a [`BackupPolicy`] backs up before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BackupBefore {
    /// Before every upgrade (not before a first install).
    Upgrade,
}

impl BackupPolicy {
    /// Refuses a TTL of zero or beyond [`MAX_BACKUP_TTL`].
    pub(crate) fn validate(&self, release: &str) -> Result<(), ValidationError> {
        check_backup_ttl(release, self.ttl)
    }
}

/// The TTL rule of [`BackupPolicy`], shared with the subscription's override.
pub fn check_backup_ttl(release: &str, ttl: Option<Duration>) -> Result<(), ValidationError> {
    match ttl {
        Some(ttl) if ttl.as_secs() == 0 => Err(ValidationError::ZeroDuration {
            what: format!("release `{release}`: backup.ttl"),
        }),
        Some(ttl) if ttl > MAX_BACKUP_TTL => Err(ValidationError::BadBackupPolicy {
            release: release.to_owned(),
            reason: format!("ttl {ttl} is longer than the maximum of {MAX_BACKUP_TTL}"),
        }),
        _ => Ok(()),
    }
}

/// Where a chart comes from: exactly one of the four forms.
///
/// Written as a mapping with one of `path`, `archive`, `repo` or `oci`; a `path`
/// source may add `dependencies: build`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ChartSourceFields", into = "ChartSourceFields")]
pub enum ChartSource {
    /// A chart directory, relative to the spec; packaged deterministically.
    Path(ChartDir),
    /// A packaged chart (`.tgz`), relative to the spec; used as is.
    Archive(PathBuf),
    /// A chart in a classic Helm repository.
    Repo(RepoChart),
    /// A chart in an OCI registry.
    Oci(OciChart),
}

/// A chart directory source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartDir {
    /// The directory, relative to the spec.
    pub path: PathBuf,
    /// What publish does with the dependencies its Chart.yaml declares; unset: they
    /// must already be in its `charts/`.
    pub dependencies: Option<DependencyPolicy>,
}

impl ChartDir {
    /// A directory whose dependencies must already be in its `charts/`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            dependencies: None,
        }
    }

    /// Whether publish builds its dependencies (`dependencies: build`).
    pub fn builds_dependencies(&self) -> bool {
        self.dependencies == Some(DependencyPolicy::Build)
    }
}

/// What publish does with a chart directory's declared dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DependencyPolicy {
    /// What `helm dependency build` does, in memory: every dependency locked in
    /// `Chart.lock` (`requirements.lock` for an apiVersion v1 chart), which must be in
    /// sync with Chart.yaml, is fetched at its locked version (`https://` repository,
    /// `oci://` registry, `file://` directory inside the spec's tree) and packed into the
    /// published archive's `charts/`; one already in `charts/` at that version is kept.
    /// The chart directory itself is never written.
    Build,
}

/// How a chart source is written: one mapping, checked into [`ChartSource`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ChartSourceFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    archive: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repo: Option<RepoChart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oci: Option<OciChart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dependencies: Option<DependencyPolicy>,
}

impl TryFrom<ChartSourceFields> for ChartSource {
    type Error = String;

    fn try_from(f: ChartSourceFields) -> Result<Self, String> {
        if f.dependencies.is_some() && f.path.is_none() {
            return Err(
                "`dependencies` applies to a `path` chart only (an archive or a downloaded \
                 chart already holds its dependencies)"
                    .to_owned(),
            );
        }
        match (f.path, f.archive, f.repo, f.oci) {
            (Some(path), None, None, None) => Ok(ChartSource::Path(ChartDir {
                path,
                dependencies: f.dependencies,
            })),
            (None, Some(archive), None, None) => Ok(ChartSource::Archive(archive)),
            (None, None, Some(repo), None) => Ok(ChartSource::Repo(repo)),
            (None, None, None, Some(oci)) => Ok(ChartSource::Oci(oci)),
            _ => Err(
                "a chart source sets exactly one of `path`, `archive`, `repo` or `oci`".to_owned(),
            ),
        }
    }
}

impl From<ChartSource> for ChartSourceFields {
    fn from(source: ChartSource) -> Self {
        let mut f = ChartSourceFields {
            path: None,
            archive: None,
            repo: None,
            oci: None,
            dependencies: None,
        };
        match source {
            ChartSource::Path(dir) => {
                f.path = Some(dir.path);
                f.dependencies = dir.dependencies;
            }
            ChartSource::Archive(p) => f.archive = Some(p),
            ChartSource::Repo(r) => f.repo = Some(r),
            ChartSource::Oci(o) => f.oci = Some(o),
        }
        f
    }
}

impl JsonSchema for ChartSource {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ChartSource".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = |description: &str, key: &str, schema: schemars::Schema| {
            serde_json::json!({
                "description": description,
                "type": "object",
                "properties": { key: schema },
                "additionalProperties": false,
                "required": [key],
            })
        };
        let mut path = one(
            "A chart directory, relative to the spec; packaged deterministically.",
            "path",
            generator.subschema_for::<PathBuf>(),
        );
        let policy = generator.subschema_for::<DependencyPolicy>();
        path["properties"]["dependencies"] = serde_json::json!({
            "description": "What publish does with the dependencies its Chart.yaml declares; \
                            unset: they must already be in its `charts/`.",
            "allOf": [policy],
        });
        schemars::json_schema!({
            "description": "Where a chart comes from: exactly one of the four forms.",
            "oneOf": [
                path,
                one(
                    "A packaged chart (`.tgz`), relative to the spec; used as is.",
                    "archive",
                    generator.subschema_for::<PathBuf>(),
                ),
                one(
                    "A chart in a classic Helm repository.",
                    "repo",
                    generator.subschema_for::<RepoChart>(),
                ),
                one(
                    "A chart in an OCI registry.",
                    "oci",
                    generator.subschema_for::<OciChart>(),
                ),
            ],
        })
    }
}

/// A chart in a Helm repository (`index.yaml` at `url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RepoChart {
    /// The repository URL (`https://...`).
    pub url: String,
    /// The chart's name in the repository.
    pub name: String,
    /// The exact chart version (semver).
    pub version: String,
    /// HTTP basic auth, with the credentials read from the environment of
    /// `coxswain publish` (never written in the spec, argv or logs); sent to
    /// the repository's own origin only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RepoAuth>,
    /// A PEM file of the certificate authority the repository's TLS certificate
    /// chains to (a private CA), relative to the spec; trusted besides the
    /// system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Basic-auth credentials for a Helm repository, by the names of the
/// environment variables that hold them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RepoAuth {
    /// The variable holding the user name, e.g. `CHARTS_USERNAME`.
    pub username_env: String,
    /// The variable holding the password or token, e.g. `CHARTS_PASSWORD`.
    pub password_env: String,
}

/// Whether `name` is a plain environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether an `http://` URL's host is on this machine (loopback), where
/// credentials in clear never cross a network.
fn is_loopback_http(url: &str) -> bool {
    url.strip_prefix("http://")
        .is_some_and(is_loopback_authority)
}

/// Whether the host of `rest` (a URL after its `scheme://`) is on this machine:
/// `localhost` or a loopback address.
pub(crate) fn is_loopback_authority(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A chart in an OCI registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OciChart {
    /// The reference without a tag, e.g. `oci://registry.example/charts/app`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The exact chart version (semver).
    pub version: String,
    /// The registry speaks plain HTTP, not HTTPS (a registry on a private network
    /// or loopback); helm gets `--plain-http`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plain_http: bool,
    /// A PEM file of the certificate authority the registry's TLS certificate
    /// chains to (a private CA), relative to the spec; helm gets `--ca-file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// How the agent checks a release after upgrading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Health {
    /// How long every workload may take to become ready; when unset, the
    /// subscription's `healthTimeout` (5m by default) applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Run `helm test` after the workloads are ready.
    #[serde(default)]
    pub test: bool,
    /// Count a `LoadBalancer` Service without an address as ready (for
    /// charts that expose one while clusters may have no load balancer).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_pending_load_balancer: bool,
}

impl Health {
    /// The timeout the entry sets, else `default` (the subscription's).
    pub fn timeout_or(&self, default: Duration) -> Duration {
        self.timeout.unwrap_or(default)
    }

    pub(crate) fn validate(&self, release: &str) -> Result<(), ValidationError> {
        if self.timeout.is_some_and(|t| t.as_secs() == 0) {
            return Err(ValidationError::ZeroDuration {
                what: format!("release `{release}`: health.timeout"),
            });
        }
        Ok(())
    }
}

impl Document for ChannelSpec {
    const KIND: &'static str = "ChannelSpec";
    const MAX_BYTES: usize = MAX_SPEC_BYTES;

    fn validate(&self) -> Result<(), ValidationError> {
        check_dns_label("channel", &self.channel, super::MAX_LABEL)?;
        if let Some(rollout) = &self.rollout {
            rollout.validate()?;
        }
        if self.valid_for.is_some_and(|d| d.as_secs() == 0) {
            return Err(ValidationError::ZeroDuration {
                what: "validFor".to_owned(),
            });
        }
        check_release_graph(self.releases.iter().map(|r| GraphNode {
            name: &r.name,
            namespace: &r.namespace,
            depends_on: &r.depends_on,
        }))?;
        for r in &self.releases {
            r.health.validate(&r.name)?;
            check_range(&r.name, r.upgrade_from.as_deref())?;
            r.chart.validate(&r.name)?;
            if let Some(update) = &r.update {
                update.validate(&r.name)?;
            }
            if let Some(backup) = &r.backup {
                backup.validate(&r.name)?;
            }
        }
        Ok(())
    }
}

impl UpdatePolicy {
    fn validate(&self, release: &str) -> Result<(), ValidationError> {
        let bad = |reason: String| ValidationError::BadUpdatePolicy {
            release: release.to_owned(),
            reason,
        };
        if let Some(chart) = &self.chart {
            crate::upstream::Track::parse(chart).map_err(|e| bad(format!("chart: {e}")))?;
        }
        for (i, image) in self.images.iter().enumerate() {
            let at = format!("images[{i}]");
            crate::upstream::ImageRef::parse(&image.repository)
                .map_err(|e| bad(format!("{at}.repository: {e}")))?;
            if let Some(versions) = &image.versions {
                crate::upstream::Track::parse(versions)
                    .map_err(|e| bad(format!("{at}.versions: {e}")))?;
            }
            if let Some(pattern) = &image.pattern {
                crate::upstream::tag_pattern(pattern)
                    .map_err(|e| bad(format!("{at}.pattern: {e}")))?;
            }
            for (field, path) in [("tag", Some(&image.tag)), ("digest", image.digest.as_ref())] {
                if let Some(path) = path {
                    crate::upstream::values_path(path)
                        .map_err(|e| bad(format!("{at}.{field}: {e}")))?;
                }
            }
        }
        Ok(())
    }
}

impl ChartSource {
    fn validate(&self, release: &str) -> Result<(), ValidationError> {
        let bad = |reason: &str| ValidationError::BadChartSource {
            release: release.to_owned(),
            reason: reason.to_owned(),
        };
        match self {
            ChartSource::Path(ChartDir { path: p, .. }) | ChartSource::Archive(p)
                if p.as_os_str().is_empty() =>
            {
                Err(bad("path is empty"))
            }
            ChartSource::Path(_) | ChartSource::Archive(_) => Ok(()),
            ChartSource::Repo(repo) => {
                if !(repo.url.starts_with("https://") || repo.url.starts_with("http://")) {
                    return Err(bad(&format!(
                        "repository url `{}` must start with https:// or http://",
                        repo.url
                    )));
                }
                if repo.name.is_empty() {
                    return Err(bad("repository chart name is empty"));
                }
                if let Some(auth) = &repo.auth {
                    for (field, name) in [
                        ("usernameEnv", &auth.username_env),
                        ("passwordEnv", &auth.password_env),
                    ] {
                        if !is_env_name(name) {
                            return Err(bad(&format!(
                                "repo auth.{field} `{name}` is not an environment variable name"
                            )));
                        }
                    }
                    if repo.url.starts_with("http://") && !is_loopback_http(&repo.url) {
                        return Err(bad(&format!(
                            "repo auth with `{}` would send the password in clear: use https://",
                            repo.url
                        )));
                    }
                }
                if repo
                    .ca_file
                    .as_ref()
                    .is_some_and(|f| f.as_os_str().is_empty())
                {
                    return Err(bad("repo caFile is empty"));
                }
                check_version(release, &repo.version).map(drop)
            }
            ChartSource::Oci(oci) => {
                let rest = oci.reference.strip_prefix("oci://").unwrap_or("");
                if rest.is_empty()
                    || rest.contains(['@', ' '])
                    || rest
                        .rsplit('/')
                        .next()
                        .is_some_and(|last| last.contains(':'))
                {
                    return Err(bad(&format!(
                        "oci ref `{}` must be `oci://host/path` without tag or digest (the version goes in `version`)",
                        oci.reference
                    )));
                }
                if oci.plain_http && oci.ca_file.is_some() {
                    return Err(bad(
                        "oci sets both plainHttp and caFile: a CA is for a registry that speaks \
                         HTTPS, plainHttp turns HTTPS off; keep the one that fits the registry",
                    ));
                }
                if oci
                    .ca_file
                    .as_ref()
                    .is_some_and(|f| f.as_os_str().is_empty())
                {
                    return Err(bad("oci caFile is empty"));
                }
                check_version(release, &oci.version).map(drop)
            }
        }
    }
}

impl ChannelSpec {
    /// Reads and validates a spec file's bytes; `origin` names the file in errors.
    pub fn from_yaml(bytes: &[u8], origin: &str) -> Result<Self, FormatError> {
        super::read_yaml(bytes, origin)
    }

    /// Reads and validates the spec at `path`.
    pub fn load(path: &Path) -> Result<Self, SpecFileError> {
        let bytes = read_capped(path, MAX_SPEC_BYTES)?;
        Ok(Self::from_yaml(&bytes, &path.display().to_string())?)
    }
}

impl ReleaseSpec {
    /// The values for this release: `valuesFile` (relative to `spec_dir`) with the inline
    /// `values` deep-merged over it.
    pub fn effective_values(&self, spec_dir: &Path) -> Result<Map<String, Value>, SpecFileError> {
        let mut base = match &self.values_file {
            Some(file) => load_values_file(&spec_dir.join(file))?,
            None => Map::new(),
        };
        if let Some(inline) = &self.values {
            deep_merge(&mut base, inline.clone());
        }
        Ok(base)
    }
}

/// Why a spec or values file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecFileError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        error: std::io::Error,
    },
    /// Not a regular file (a FIFO, a device, a socket, a directory), refused before it
    /// was opened.
    #[error(transparent)]
    NotReadable(crate::fsread::ReadError),
    /// A values file holds something its JSON form (or helm) would change.
    #[error("{path}: {problem}")]
    ValuesChanged {
        /// The file.
        path: PathBuf,
        /// Where and what.
        problem: crate::values::ValuesProblem,
    },
    /// The file is larger than its cap (checked before reading it all).
    #[error("{path}: more than the limit of {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap.
        limit: usize,
    },
    /// The spec itself is malformed or invalid.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A values file is malformed or over budget.
    #[error(transparent)]
    Values(#[from] yaml::YamlError),
    /// A values file whose top level is not a mapping.
    #[error("{path}: a values file must be a mapping at the top level")]
    ValuesNotMapping {
        /// The file.
        path: PathBuf,
    },
}

/// Reads a YAML values file (size-capped, budgeted); an empty file is an empty mapping.
pub fn load_values_file(path: &Path) -> Result<Map<String, Value>, SpecFileError> {
    let bytes = read_capped(path, MAX_VALUES_BYTES)?;
    read_values(&bytes, path)
}

/// Parses the bytes of a values file read from `path` (which names it in errors).
pub fn read_values(bytes: &[u8], path: &Path) -> Result<Map<String, Value>, SpecFileError> {
    let origin = path.display().to_string();
    let value: Option<crate::values::YamlValue> =
        yaml::from_slice(bytes, &origin, yaml::Limits::bytes(MAX_VALUES_BYTES))?;
    let Some(value) = value else {
        return Ok(Map::new());
    };
    match crate::values::to_json_object(&value) {
        Ok(Some(map)) => Ok(map),
        Ok(None) => Err(SpecFileError::ValuesNotMapping {
            path: path.to_owned(),
        }),
        Err(problem) => Err(SpecFileError::ValuesChanged {
            path: path.to_owned(),
            problem,
        }),
    }
}

/// Reads `path` if it is a regular file of at most `limit` bytes (checked before it is
/// opened, and while reading: see [`crate::fsread`]).
pub fn read_capped(path: &Path, limit: usize) -> Result<Vec<u8>, SpecFileError> {
    use crate::fsread::{ReadError, Rules, read};
    read(path, Rules::regular(limit as u64)).map_err(|e| match e {
        ReadError::Io { path, source } => SpecFileError::Read {
            path,
            error: source,
        },
        ReadError::TooLarge { path, .. } => SpecFileError::TooLarge { path, limit },
        other => SpecFileError::NotReadable(other),
    })
}

/// Merges `over` into `base`: mappings merge key by key, recursively; anything else
/// in `over` (scalars, lists, null) replaces what `base` had. This is Helm's rule for
/// values files.
pub fn deep_merge(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SPEC: &str = r#"
apiVersion: coxswain.dev/v1
kind: ChannelSpec
channel: stable
validFor: 14d
releases:
  - name: cert-manager
    namespace: cert-manager
    chart: {path: charts/cert-manager}
    health: {timeout: 90s}
  - name: ingress
    namespace: ingress
    chart: {archive: charts/ingress-1.2.3.tgz}
    dependsOn: [cert-manager]
    upgradeFrom: ">=1.0.0, <2.0.0"
  - name: sso
    namespace: sso
    chart:
      repo: {url: "https://charts.example.org", name: keycloak, version: 24.0.1}
    values: {replicas: 2}
    dependsOn: [ingress]
  - name: wiki
    namespace: wiki
    chart:
      oci: {ref: "oci://registry.example.org/charts/wiki", version: 1.0.0}
    dependsOn: [sso, ingress]
    health: {test: true, acceptPendingLoadBalancer: true}
"#;

    #[test]
    fn health_options_are_written_only_when_set() {
        // Indexes signed before the field existed keep their exact bytes,
        // and agents that do not know it still read indexes that do not use it.
        let plain = serde_json::to_value(Health::default()).unwrap();
        assert_eq!(plain, json!({"test": false}));
        let lenient = Health {
            accept_pending_load_balancer: true,
            ..Health::default()
        };
        let written = serde_json::to_value(lenient).unwrap();
        assert_eq!(
            written,
            json!({"test": false, "acceptPendingLoadBalancer": true})
        );
        assert_eq!(serde_json::from_value::<Health>(written).unwrap(), lenient);
    }

    #[test]
    fn a_path_chart_may_ask_for_its_dependencies_to_be_built() {
        let with = |chart: &str| SPEC.replace("chart: {path: charts/cert-manager}", chart);
        let spec = ChannelSpec::from_yaml(
            with("chart: {path: charts/cert-manager, dependencies: build}").as_bytes(),
            "spec.yaml",
        )
        .unwrap();
        let ChartSource::Path(dir) = &spec.releases[0].chart else {
            panic!("{:?}", spec.releases[0].chart);
        };
        assert!(dir.builds_dependencies());
        assert_eq!(
            serde_json::to_value(&spec.releases[0].chart).unwrap(),
            json!({"path": "charts/cert-manager", "dependencies": "build"})
        );
        let plain = ChannelSpec::from_yaml(SPEC.as_bytes(), "spec.yaml").unwrap();
        assert_eq!(
            serde_json::to_value(&plain.releases[0].chart).unwrap(),
            json!({"path": "charts/cert-manager"})
        );
        for (chart, needle) in [
            (
                "chart: {archive: a-1.0.0.tgz, dependencies: build}",
                "applies to a `path` chart only",
            ),
            (
                "chart: {path: charts/cert-manager, dependencies: update}",
                "update",
            ),
            (
                "chart: {dependencies: build}",
                "applies to a `path` chart only",
            ),
            (
                "chart: {}",
                "exactly one of `path`, `archive`, `repo` or `oci`",
            ),
            ("chart: {path: a, pth: b}", "pth"),
        ] {
            let err = ChannelSpec::from_yaml(with(chart).as_bytes(), "spec.yaml").unwrap_err();
            assert!(
                matches!(err, FormatError::Yaml(yaml::YamlError::Invalid { .. })),
                "{chart}: {err:?}"
            );
            let text = crate::site_verify::describe(&err);
            assert!(text.contains(needle), "{chart}: {text}");
        }
    }

    #[test]
    fn reads_every_chart_form_and_defaults() {
        let spec = ChannelSpec::from_yaml(SPEC.as_bytes(), "spec.yaml").unwrap();
        assert_eq!(spec.channel, "stable");
        assert_eq!(spec.valid_for, Some(Duration::from_days(14)));
        assert_eq!(spec.keep_previous, 3);
        assert_eq!(spec.releases.len(), 4);
        assert_eq!(
            spec.releases[0].health.timeout,
            Some(Duration::from_secs(90))
        );
        assert_eq!(spec.releases[1].health, Health::default());
        assert!(spec.releases[3].health.test);
        assert!(spec.releases[3].health.accept_pending_load_balancer);
        assert!(!spec.releases[0].health.accept_pending_load_balancer);
        assert!(matches!(&spec.releases[2].chart, ChartSource::Repo(r) if r.name == "keycloak"));
        assert!(matches!(&spec.releases[3].chart, ChartSource::Oci(o) if o.version == "1.0.0"));
        assert!(matches!(&spec.releases[1].chart, ChartSource::Archive(_)));
    }

    fn invalid(yaml: &str) -> ValidationError {
        match ChannelSpec::from_yaml(yaml.as_bytes(), "spec.yaml") {
            Err(FormatError::Invalid { error, .. }) => error,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let cycle = SPEC.replace(
            "chart: {path: charts/cert-manager}",
            "chart: {path: x}\n    dependsOn: [wiki]",
        );
        let err = invalid(&cycle);
        assert_eq!(
            err.to_string(),
            "dependency cycle: cert-manager -> wiki -> sso -> ingress -> cert-manager"
        );
        let err = invalid(&SPEC.replace(
            "upgradeFrom: \">=1.0.0, <2.0.0\"",
            "upgradeFrom: \"~> one\"",
        ));
        assert!(matches!(err, ValidationError::BadRange { release, .. } if release == "ingress"));
        let err = invalid(&SPEC.replace("version: 24.0.1", "version: latest"));
        assert!(matches!(err, ValidationError::BadVersion { release, .. } if release == "sso"));
        let err = invalid(&SPEC.replace("namespace: wiki", "namespace: Wiki"));
        assert!(matches!(
            err,
            ValidationError::InvalidName {
                what: "namespace",
                ..
            }
        ));
        let err = invalid(&SPEC.replace(
            "oci://registry.example.org/charts/wiki",
            "oci://r.example/wiki:1.0",
        ));
        assert!(matches!(err, ValidationError::BadChartSource { .. }));
        let err = invalid(&SPEC.replace(
            "version: 1.0.0}",
            "version: 1.0.0, plainHttp: true, caFile: ca.pem}",
        ));
        assert!(
            err.to_string()
                .contains("oci sets both plainHttp and caFile"),
            "{err}"
        );
        let auth = |url: &str, user: &str| {
            SPEC.replace("https://charts.example.org", url).replace(
                "version: 24.0.1}",
                &format!(
                    "version: 24.0.1, auth: {{usernameEnv: {user}, passwordEnv: CHARTS_PASSWORD}}}}"
                ),
            )
        };
        let ok = ChannelSpec::from_yaml(
            auth("https://charts.example.org", "CHARTS_USER").as_bytes(),
            "s.yaml",
        )
        .unwrap();
        assert!(
            matches!(&ok.releases[2].chart, ChartSource::Repo(r) if r.auth.as_ref().unwrap().password_env == "CHARTS_PASSWORD")
        );
        ChannelSpec::from_yaml(
            auth("http://127.0.0.1:8080/charts", "U").as_bytes(),
            "s.yaml",
        )
        .unwrap();
        let err = invalid(&auth("http://charts.example.org", "U"));
        assert!(err.to_string().contains("password in clear"), "{err}");
        let err = invalid(&auth("https://charts.example.org", "\"$HOME\""));
        assert!(
            err.to_string().contains("not an environment variable name"),
            "{err}"
        );
        let err = invalid(&SPEC.replace("timeout: 90s", "timeout: 0s"));
        assert!(matches!(err, ValidationError::ZeroDuration { .. }));
    }

    #[test]
    fn chart_must_be_exactly_one_form() {
        let two = SPEC.replace(
            "chart: {path: charts/cert-manager}",
            "chart: {path: a, archive: b.tgz}",
        );
        assert!(ChannelSpec::from_yaml(two.as_bytes(), "spec.yaml").is_err());
        let other = SPEC.replace("chart: {path: charts/cert-manager}", "chart: {git: a}");
        assert!(ChannelSpec::from_yaml(other.as_bytes(), "spec.yaml").is_err());
    }

    #[test]
    fn header_is_checked_first() {
        let err = ChannelSpec::from_yaml(
            SPEC.replace("coxswain.dev/v1", "coxswain.dev/v2")
                .as_bytes(),
            "s.yaml",
        )
        .unwrap_err();
        assert!(
            matches!(&err, FormatError::UnknownDocument { api_version, kind, .. }
            if api_version == "coxswain.dev/v2" && kind == "ChannelSpec"),
            "{err}"
        );
        let err = ChannelSpec::from_yaml(
            SPEC.replace("kind: ChannelSpec", "kind: ChannelIndex")
                .as_bytes(),
            "s.yaml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("kind `ChannelIndex`"), "{err}");
    }

    #[test]
    fn deep_merge_follows_helm() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": {"f": 1}})
            .as_object()
            .cloned()
            .unwrap();
        let over = json!({"a": {"c": [3], "g": true}, "d": {"nested": 1}, "e": null})
            .as_object()
            .cloned()
            .unwrap();
        deep_merge(&mut base, over);
        assert_eq!(
            Value::Object(base),
            json!({"a": {"b": 1, "c": [3], "g": true}, "d": {"nested": 1}, "e": null})
        );
    }

    #[test]
    fn effective_values_reads_the_file_and_merges() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("v.yaml"),
            "image: {repository: app, tag: \"1.0\"}\nreplicas: 1\n",
        )
        .unwrap();
        let release = ReleaseSpec {
            name: "a".into(),
            namespace: "a".into(),
            chart: ChartSource::Path(ChartDir::new("c")),
            values: json!({"image": {"tag": "2.0"}}).as_object().cloned(),
            values_file: Some("v.yaml".into()),
            depends_on: vec![],
            health: Health::default(),
            upgrade_from: None,
            update: None,
            crds: None,
            backup: None,
            urgency: None,
            approval: None,
        };
        let values = release.effective_values(dir.path()).unwrap();
        assert_eq!(
            Value::Object(values),
            json!({"image": {"repository": "app", "tag": "2.0"}, "replicas": 1})
        );
        std::fs::write(dir.path().join("v.yaml"), "- 1\n").unwrap();
        assert!(matches!(
            release.effective_values(dir.path()),
            Err(SpecFileError::ValuesNotMapping { .. })
        ));
    }
}
