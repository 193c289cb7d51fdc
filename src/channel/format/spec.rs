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
}

/// Where a chart comes from: exactly one of the four forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum ChartSource {
    /// A chart directory, relative to the spec; packaged deterministically.
    Path(PathBuf),
    /// A packaged chart (`.tgz`), relative to the spec; used as is.
    Archive(PathBuf),
    /// A chart in a classic Helm repository.
    Repo(RepoChart),
    /// A chart in an OCI registry.
    Oci(OciChart),
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
            ChartSource::Path(p) | ChartSource::Archive(p) if p.as_os_str().is_empty() => {
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
            chart: ChartSource::Path("c".into()),
            values: json!({"image": {"tag": "2.0"}}).as_object().cloned(),
            values_file: Some("v.yaml".into()),
            depends_on: vec![],
            health: Health::default(),
            upgrade_from: None,
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
