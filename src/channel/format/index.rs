//! The channel index: the signed, machine-written list of releases a channel offers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use super::spec::{BackupPolicy, CrdPolicy, Health};
use super::{
    ApiVersion, ChartVersion, Document, GraphNode, Sha256Digest, Timestamp, ValidationError,
    VersionError, check_dns_label, check_range, check_release_graph, check_version,
};

/// Largest index accepted (a 1,000-release index is about 0.7 MB).
pub const MAX_INDEX_BYTES: usize = 16 << 20;

/// How many `..` segments a chart URL may start with: the index sits at
/// `channels/<channel>/index.json`, two levels below the site root.
pub const MAX_PARENT_SEGMENTS: usize = 2;

/// The `kind` of a channel index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum ChannelIndexKind {
    /// `ChannelIndex`
    #[default]
    ChannelIndex,
}

/// A published channel: `channels/<channel>/index.json`, signed by `index.json.sig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChannelIndex {
    /// Always `coxswain.dev/v1`.
    pub api_version: ApiVersion,
    /// Always `ChannelIndex`.
    pub kind: ChannelIndexKind,
    /// The channel's name; agents reject an index for another channel.
    pub channel: String,
    /// Increases with every publish; agents never accept a lower one (anti-rollback).
    pub sequence: u64,
    /// When it was published.
    pub published: Timestamp,
    /// After this the index is refused (anti-freeze).
    pub expires: Timestamp,
    /// The releases.
    pub releases: Vec<IndexRelease>,
    /// Earlier sequences the maintainers withdrew, with their reasons (carried forward by
    /// every later publish). Agents that meet one in their status say so; the entries of
    /// a withdrawing sequence are the last good ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdrawn: Vec<Withdrawn>,
    /// The maintainers' staged waves and pause (docs/rollouts.md); unset: every cluster
    /// may start at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::rollout::Rollout>,
}

/// A withdrawn sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Withdrawn {
    /// The sequence withdrawn.
    pub sequence: u64,
    /// Why, for the people who see it in a cluster's status and web UI.
    pub reason: String,
}

/// Most withdrawn sequences an index lists.
pub const MAX_WITHDRAWN: usize = 1_000;

/// Longest reason of a withdrawn sequence, in characters.
pub const MAX_WITHDRAWN_REASON: usize = 1_000;

/// A chart archive on the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IndexChart {
    /// The chart's name (from Chart.yaml).
    pub name: String,
    /// The chart's version (semver, from Chart.yaml).
    pub version: String,
    /// Relative to the index, e.g. `../../charts/sha256-<hex>.tgz`.
    pub url: String,
    /// SHA-256 of the archive's bytes.
    pub digest: Sha256Digest,
    /// The archive's size in bytes.
    pub size: u64,
}

/// One release in the index, with the older versions admins may still pin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IndexRelease {
    /// The Helm release name.
    pub name: String,
    /// The namespace.
    pub namespace: String,
    /// The chart to install.
    pub chart: IndexChart,
    /// The channel's values for it.
    #[serde(default)]
    pub values: Map<String, Value>,
    /// Releases upgraded before this one.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The health check.
    #[serde(default)]
    pub health: Health,
    /// Semver range of installed versions that may upgrade directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_from: Option<String>,
    /// What the agent does with the chart's `crds/` (unset: Helm's own rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crds: Option<CrdPolicy>,
    /// The Velero backup the agent takes before upgrading it (unset: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupPolicy>,
    /// Clusters wait in `awaitingApproval` until an administrator approves this
    /// entry's version before they upgrade an installed release to it (set by
    /// `coxswain publish`: the spec's `approval`, or a major-version bump).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_approval: bool,
    /// Older entries, newest first, that admins may pin.
    #[serde(default)]
    pub previous: Vec<PreviousRelease>,
    /// `security`: may start outside the maintenance windows of subscriptions that allow it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<crate::rollout::Urgency>,
    /// When this entry (its chart bytes and values) first appeared in the channel: the
    /// start of its rollout waves, carried forward by every publish that leaves it
    /// unchanged. Unset: the index's `published`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

/// An older entry of a release: the same fields, without `previous`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PreviousRelease {
    /// Same as the release's name.
    pub name: String,
    /// Same as the release's namespace.
    pub namespace: String,
    /// The older chart.
    pub chart: IndexChart,
    /// The values it was published with.
    #[serde(default)]
    pub values: Map<String, Value>,
    /// Its dependencies then.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Its health check then.
    #[serde(default)]
    pub health: Health,
    /// Its upgrade range then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_from: Option<String>,
    /// Its CRD policy then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crds: Option<CrdPolicy>,
    /// Its backup policy then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupPolicy>,
}

impl IndexRelease {
    /// When this entry's rollout started: `since`, else the index's `published`.
    pub fn rollout_start(&self, published: Timestamp) -> Timestamp {
        self.since.unwrap_or(published)
    }

    /// This entry as a `previous` entry of the next index (publish carries it forward).
    pub fn to_previous(&self) -> PreviousRelease {
        PreviousRelease {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            chart: self.chart.clone(),
            values: self.values.clone(),
            depends_on: self.depends_on.clone(),
            health: self.health,
            upgrade_from: self.upgrade_from.clone(),
            crds: self.crds,
            backup: self.backup,
        }
    }
}

impl IndexChart {
    /// The chart version, parsed as Helm parses it (validated on read, so this only fails
    /// for hand-built values).
    pub fn parsed_version(&self) -> Result<ChartVersion, VersionError> {
        ChartVersion::parse(&self.version)
    }

    /// The site-relative file name the layout requires for this digest.
    pub fn archive_name(digest: &Sha256Digest) -> String {
        format!("sha256-{}.tgz", digest.hex())
    }

    fn validate(&self, release: &str) -> Result<(), ValidationError> {
        if self.name.is_empty() {
            return Err(ValidationError::BadChartSource {
                release: release.to_owned(),
                reason: "name is empty".to_owned(),
            });
        }
        check_version(release, &self.version)?;
        check_chart_url(release, &self.url, &self.digest)
    }
}

/// The rule for chart URLs (our call; the fetcher still resolves against the index URL):
/// a relative path only — no scheme, no host, no leading `/`, no query, fragment,
/// percent-escape or backslash, no empty or `.` segments — that climbs at most
/// [`MAX_PARENT_SEGMENTS`] levels with leading `..` (so it stays inside the site), and
/// whose file name is `sha256-<digest>.tgz` for the entry's own digest (content-addressed).
/// Absolute URLs to other hosts are refused outright: a signed index must not send
/// agents to servers the site operator does not control.
pub fn check_chart_url(
    release: &str,
    url: &str,
    digest: &Sha256Digest,
) -> Result<(), ValidationError> {
    let bad = |reason: &'static str| ValidationError::BadChartUrl {
        release: release.to_owned(),
        url: crate::bounded::bounded(url, crate::bounded::MAX_ECHO),
        reason,
    };
    if url.contains(':') {
        return Err(bad("must be relative (no scheme or host)"));
    }
    if url.starts_with('/') {
        return Err(bad("must be relative (no leading `/`)"));
    }
    if url.contains(['?', '#', '%', '\\']) || url.chars().any(char::is_control) {
        return Err(bad(
            "must be a plain path (no query, fragment, escapes or backslashes)",
        ));
    }
    let segments: Vec<&str> = url.split('/').collect();
    let parents = segments.iter().take_while(|s| **s == "..").count();
    if parents > MAX_PARENT_SEGMENTS {
        return Err(bad("climbs above the site root"));
    }
    if segments[parents..]
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return Err(bad("has empty, `.` or inner `..` segments"));
    }
    if segments.last().copied() != Some(IndexChart::archive_name(digest).as_str()) {
        return Err(bad(
            "does not end in sha256-<digest>.tgz for its own digest",
        ));
    }
    Ok(())
}

impl Document for ChannelIndex {
    const KIND: &'static str = "ChannelIndex";
    const MAX_BYTES: usize = MAX_INDEX_BYTES;

    fn validate(&self) -> Result<(), ValidationError> {
        check_dns_label("channel", &self.channel, super::MAX_LABEL)?;
        if self.sequence == 0 || self.sequence > super::MAX_SEQUENCE {
            return Err(ValidationError::SequenceOutOfRange(self.sequence));
        }
        if self.expires < self.published {
            return Err(ValidationError::ExpiresBeforePublished {
                published: self.published,
                expires: self.expires,
            });
        }
        if self
            .published
            .checked_add(super::MAX_INDEX_VALIDITY)
            .is_some_and(|latest| self.expires > latest)
        {
            return Err(ValidationError::ValidityTooLong {
                published: self.published,
                expires: self.expires,
            });
        }
        if self.withdrawn.len() > MAX_WITHDRAWN {
            return Err(ValidationError::BadWithdrawn(format!(
                "{} entries; at most {MAX_WITHDRAWN}",
                self.withdrawn.len()
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for w in &self.withdrawn {
            if w.sequence == 0 || w.sequence >= self.sequence {
                return Err(ValidationError::BadWithdrawn(format!(
                    "sequence {} is not below this index's {}",
                    w.sequence, self.sequence
                )));
            }
            if !seen.insert(w.sequence) {
                return Err(ValidationError::BadWithdrawn(format!(
                    "sequence {} is listed twice",
                    w.sequence
                )));
            }
            let len = w.reason.chars().count();
            if w.reason.trim().is_empty() || len > MAX_WITHDRAWN_REASON {
                return Err(ValidationError::BadWithdrawn(format!(
                    "sequence {}: the reason must have 1 to {MAX_WITHDRAWN_REASON} characters, not {len}",
                    w.sequence
                )));
            }
        }
        if let Some(rollout) = &self.rollout {
            rollout.validate()?;
        }
        check_release_graph(self.releases.iter().map(|r| GraphNode {
            name: &r.name,
            namespace: &r.namespace,
            depends_on: &r.depends_on,
        }))?;
        for r in &self.releases {
            if let Some(since) = r.since.filter(|s| *s > self.published) {
                return Err(ValidationError::SinceAfterPublished {
                    release: r.name.clone(),
                    since,
                    published: self.published,
                });
            }
            r.health.validate(&r.name)?;
            check_range(&r.name, r.upgrade_from.as_deref())?;
            r.chart.validate(&r.name)?;
            if let Some(backup) = &r.backup {
                backup.validate(&r.name)?;
            }
            for (i, p) in r.previous.iter().enumerate() {
                if p.name != r.name || p.namespace != r.namespace {
                    return Err(ValidationError::BadPrevious {
                        release: r.name.clone(),
                        reason: format!(
                            "{i} is for `{}` in `{}`, not this release",
                            p.name, p.namespace
                        ),
                    });
                }
                p.health.validate(&r.name)?;
                check_range(&r.name, p.upgrade_from.as_deref())?;
                p.chart.validate(&r.name)?;
                if let Some(backup) = &p.backup {
                    backup.validate(&r.name)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::format::{FormatError, read_json, to_json_pretty};

    /// A small valid index for tests elsewhere in the crate.
    pub(crate) fn sample() -> ChannelIndex {
        let chart = |name: &str, version: &str, content: &[u8]| {
            let digest = Sha256Digest::of(content);
            IndexChart {
                name: name.into(),
                version: version.into(),
                url: format!("../../charts/{}", IndexChart::archive_name(&digest)),
                digest,
                size: content.len() as u64,
            }
        };
        let sso = IndexRelease {
            name: "sso".into(),
            namespace: "sso".into(),
            chart: chart("sso", "2.0.0", b"sso-2"),
            values: serde_json::json!({"image": {"tag": "2.0"}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            depends_on: vec![],
            health: Health::default(),
            upgrade_from: Some(">=1.0.0".into()),
            crds: None,
            backup: None,
            requires_approval: false,
            previous: vec![],
            urgency: None,
            since: None,
        };
        let mut old = sso.to_previous();
        old.chart = chart("sso", "1.0.0", b"sso-1");
        let sso = IndexRelease {
            previous: vec![old],
            ..sso
        };
        let wiki = IndexRelease {
            name: "wiki".into(),
            namespace: "wiki".into(),
            chart: chart("wiki", "0.3.1", b"wiki"),
            values: Map::new(),
            depends_on: vec!["sso".into()],
            health: Health::default(),
            upgrade_from: None,
            crds: None,
            backup: None,
            requires_approval: false,
            previous: vec![],
            urgency: None,
            since: None,
        };
        ChannelIndex {
            api_version: ApiVersion::V1,
            kind: ChannelIndexKind::ChannelIndex,
            channel: "stable".into(),
            sequence: 7,
            published: "2026-11-26T03:00:00Z".parse().unwrap(),
            expires: "2026-12-10T03:00:00Z".parse().unwrap(),
            releases: vec![sso, wiki],
            withdrawn: Vec::new(),
            rollout: None,
        }
    }

    #[test]
    fn roundtrips_through_pretty_json() {
        let index = sample();
        let bytes = to_json_pretty(&index).unwrap();
        assert!(bytes.ends_with(b"}\n"));
        let back: ChannelIndex = read_json(&bytes, "index.json").unwrap();
        assert_eq!(back, index);
    }

    fn invalid(index: &ChannelIndex) -> ValidationError {
        let bytes = to_json_pretty(index).unwrap();
        match read_json::<ChannelIndex>(&bytes, "index.json") {
            Err(FormatError::Invalid { error, .. }) => error,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn chart_urls_stay_relative_and_content_addressed() {
        let d = Sha256Digest::of(b"x");
        let name = IndexChart::archive_name(&d);
        for ok in [
            format!("../../charts/{name}"),
            format!("../{name}"),
            name.clone(),
        ] {
            check_chart_url("r", &ok, &d).unwrap();
        }
        for bad in [
            format!("https://evil.example/charts/{name}"),
            format!("//evil.example/{name}"),
            format!("/charts/{name}"),
            format!("../../../charts/{name}"),
            format!("../../charts/../../{name}"),
            format!("../../charts//{name}"),
            format!("../../charts/{name}?x=1"),
            format!("..\\..\\charts\\{name}"),
            "../../charts/sha256-0000.tgz".to_owned(),
        ] {
            assert!(
                matches!(
                    check_chart_url("r", &bad, &d),
                    Err(ValidationError::BadChartUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn validation_covers_versions_previous_and_times() {
        let mut i = sample();
        i.releases[1].chart.version = "V0.3".into();
        assert!(
            matches!(invalid(&i), ValidationError::BadVersion { release, .. } if release == "wiki")
        );
        let mut i = sample();
        i.releases[0].previous[0].name = "wiki".into();
        assert!(matches!(invalid(&i), ValidationError::BadPrevious { .. }));
        let mut i = sample();
        i.expires = "2026-01-01T00:00:00Z".parse().unwrap();
        assert!(matches!(
            invalid(&i),
            ValidationError::ExpiresBeforePublished { .. }
        ));
        let mut i = sample();
        i.releases[0].depends_on = vec!["wiki".into()];
        assert!(
            matches!(invalid(&i), ValidationError::DependencyCycle { cycle } if cycle == "sso -> wiki -> sso")
        );
    }

    #[test]
    fn a_backup_policy_is_signed_as_written_and_its_ttl_checked() {
        use crate::duration::Duration;
        use crate::format::spec::BackupBefore;
        let mut i = sample();
        i.releases[1].backup = Some(BackupPolicy {
            before: BackupBefore::Upgrade,
            ttl: Some(Duration::from_days(30)),
            include_volumes: true,
            auto_restore: true,
        });
        let text = String::from_utf8(to_json_pretty(&i).unwrap()).unwrap();
        assert!(
            text.contains(
                "\"backup\": {\n        \"before\": \"upgrade\",\n        \"ttl\": \"30d\",\n        \"includeVolumes\": true,\n        \"autoRestore\": true\n      }"
            ),
            "{text}"
        );
        assert_eq!(
            read_json::<ChannelIndex>(text.as_bytes(), "index.json").unwrap(),
            i
        );
        // Carried into the next index's previous entries with the rest.
        assert_eq!(i.releases[1].to_previous().backup, i.releases[1].backup);

        let mut zero = i.clone();
        zero.releases[1].backup = Some(BackupPolicy {
            ttl: Some(Duration::from_secs(0)),
            ..i.releases[1].backup.unwrap()
        });
        assert!(
            matches!(invalid(&zero), ValidationError::ZeroDuration { what } if what == "release `wiki`: backup.ttl")
        );
        let mut long = i.clone();
        long.releases[0].previous[0].backup = Some(BackupPolicy {
            ttl: Some(Duration::from_days(3_651)),
            ..i.releases[1].backup.unwrap()
        });
        assert!(
            matches!(invalid(&long), ValidationError::BadBackupPolicy { release, .. } if release == "sso")
        );
    }

    #[test]
    fn rejects_bad_digest_and_nested_previous() {
        let text = String::from_utf8(to_json_pretty(&sample()).unwrap()).unwrap();
        let bad = text.replacen("\"digest\": \"sha256:", "\"digest\": \"sha256:AB", 1);
        let err = read_json::<ChannelIndex>(bad.as_bytes(), "index.json").unwrap_err();
        assert!(err.to_string().contains("index.json"), "{err}");
        let nested = text.replacen(
            "\"previous\": [\n        {",
            "\"previous\": [\n        {\"previous\": [],",
            1,
        );
        assert_ne!(nested, text);
        assert!(matches!(
            read_json::<ChannelIndex>(nested.as_bytes(), "index.json"),
            Err(FormatError::Json(crate::json::JsonError::Invalid { .. }))
        ));
    }
}
