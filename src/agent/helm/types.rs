//! Typed views of helm's JSON output (`history`, `list`, `status`, `upgrade -o json`).
//!
//! Only the fields coxswain needs are read. The release's `config` (the user's
//! values, possibly secret) and `manifest` are deliberately not deserialized,
//! so they are never kept around or printed by `Debug`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::format::ChartVersion;

/// The state of one helm revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReleaseStatus {
    /// Helm does not know (also used for any status string newer than this code).
    Unknown,
    /// The current, healthy revision as far as helm knows.
    Deployed,
    /// Uninstalled with `--keep-history`.
    Uninstalled,
    /// An older revision replaced by a newer one.
    Superseded,
    /// The operation that created this revision failed.
    Failed,
    /// An uninstall is in progress (or was killed).
    Uninstalling,
    /// An install is in progress (or was killed).
    PendingInstall,
    /// An upgrade is in progress (or was killed).
    PendingUpgrade,
    /// A rollback is in progress (or was killed).
    PendingRollback,
}

impl ReleaseStatus {
    /// Helm's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Deployed => "deployed",
            Self::Uninstalled => "uninstalled",
            Self::Superseded => "superseded",
            Self::Failed => "failed",
            Self::Uninstalling => "uninstalling",
            Self::PendingInstall => "pending-install",
            Self::PendingUpgrade => "pending-upgrade",
            Self::PendingRollback => "pending-rollback",
        }
    }

    /// True for the states helm refuses to operate on ("another operation is in
    /// progress"); left behind when a helm process is killed.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            Self::PendingInstall
                | Self::PendingUpgrade
                | Self::PendingRollback
                | Self::Uninstalling
        )
    }
}

impl FromStr for ReleaseStatus {
    type Err = std::convert::Infallible;

    /// Never fails: a status this code does not know reads as `Unknown`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "deployed" => Self::Deployed,
            "uninstalled" => Self::Uninstalled,
            "superseded" => Self::Superseded,
            "failed" => Self::Failed,
            "uninstalling" => Self::Uninstalling,
            "pending-install" => Self::PendingInstall,
            "pending-upgrade" => Self::PendingUpgrade,
            "pending-rollback" => Self::PendingRollback,
            _ => Self::Unknown,
        })
    }
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReleaseStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let Ok(status) = text.parse();
        Ok(status)
    }
}

/// One revision from `helm history -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HistoryEntry {
    /// Revision number (1-based).
    pub revision: u32,
    /// When the revision was last deployed; absent for a zero time.
    #[serde(default, deserialize_with = "rfc3339_or_empty")]
    pub updated: Option<OffsetDateTime>,
    /// Revision state.
    pub status: ReleaseStatus,
    /// `<chart name>-<chart version>`; see [`split_chart`].
    #[serde(default)]
    pub chart: String,
    /// The chart's appVersion.
    #[serde(default)]
    pub app_version: String,
    /// The revision's description (a coxswain fingerprint, or helm's text).
    #[serde(default)]
    pub description: String,
    /// Revision this one rolled back to; Helm 4 only (Helm 3 says it only in the description).
    #[serde(default)]
    pub rollback_revision: Option<u32>,
}

impl HistoryEntry {
    /// Chart name and version, split from `chart`.
    pub fn chart_name_version(&self) -> Option<(&str, &str)> {
        split_chart(&self.chart)
    }
}

/// One release from `helm list -o json` (latest revision per release).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListEntry {
    /// Release name.
    pub name: String,
    /// Release namespace.
    pub namespace: String,
    /// Latest revision; helm prints it as a string in this one output.
    #[serde(deserialize_with = "u32_from_string")]
    pub revision: u32,
    /// Last deployment time (coxswain asks for RFC 3339); `None` when helm prints `-`.
    #[serde(default, deserialize_with = "rfc3339_or_empty")]
    pub updated: Option<OffsetDateTime>,
    /// State of the latest revision.
    pub status: ReleaseStatus,
    /// `<chart name>-<chart version>`.
    #[serde(default)]
    pub chart: String,
    /// The chart's appVersion.
    #[serde(default)]
    pub app_version: String,
}

impl ListEntry {
    /// Chart name and version, split from `chart`.
    pub fn chart_name_version(&self) -> Option<(&str, &str)> {
        split_chart(&self.chart)
    }
}

/// A release as printed by `helm status -o json` and `helm upgrade -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Release {
    /// Release name.
    pub name: String,
    /// Release namespace.
    #[serde(default)]
    pub namespace: String,
    /// Revision number.
    pub version: u32,
    /// Status and timestamps.
    pub info: ReleaseInfo,
    /// The chart's metadata: printed by `upgrade -o json`, stripped by
    /// `helm status`; `list` and `history` name the chart as `<name>-<version>`.
    #[serde(default)]
    pub chart: Option<ReleaseChart>,
    /// `ssa` or `csa`; Helm 4 only.
    #[serde(default)]
    pub apply_method: Option<String>,
}

/// The `info` object of a release.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReleaseInfo {
    /// Revision state.
    pub status: ReleaseStatus,
    /// The revision's description.
    #[serde(default)]
    pub description: String,
    /// First install time.
    #[serde(default, deserialize_with = "rfc3339_or_empty")]
    pub first_deployed: Option<OffsetDateTime>,
    /// This revision's deployment time.
    #[serde(default, deserialize_with = "rfc3339_or_empty")]
    pub last_deployed: Option<OffsetDateTime>,
    /// Deletion time, for uninstalled releases.
    #[serde(default, deserialize_with = "rfc3339_or_empty")]
    pub deleted: Option<OffsetDateTime>,
    /// Rendered NOTES.txt.
    #[serde(default)]
    pub notes: String,
    /// Revision this one rolled back to; Helm 4 only.
    #[serde(default)]
    pub rollback_revision: Option<u32>,
}

/// The part of a release's chart coxswain reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReleaseChart {
    /// Chart.yaml fields.
    pub metadata: ChartMetadata,
}

/// Chart.yaml fields of a deployed chart.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChartMetadata {
    /// Chart name.
    pub name: String,
    /// Chart version.
    #[serde(default)]
    pub version: String,
    /// Application version.
    #[serde(default, rename = "appVersion")]
    pub app_version: String,
}

/// Splits helm's `<name>-<version>` chart column. Both parts may contain
/// dashes (`cert-manager-1.2.0-rc.1`), and Helm's versions may be short or
/// start with `v` (`app-v1.2`), so the split is at the first dash after which a
/// full `major.minor.patch` version follows, else at the first dash after which
/// any version Helm accepts follows (`app-1-2.0.0` is `app-1` at `2.0.0`, not
/// `app` at `1-2.0.0`).
pub fn split_chart(chart: &str) -> Option<(&str, &str)> {
    let candidates = || {
        chart.match_indices('-').filter_map(|(i, _)| {
            let (name, version) = (&chart[..i], &chart[i + 1..]);
            (!name.is_empty() && ChartVersion::parse(version).is_ok()).then_some((name, version))
        })
    };
    let full = |version: &str| {
        let core = version.strip_prefix('v').unwrap_or(version);
        let core = core.split(['-', '+']).next().unwrap_or_default();
        core.split('.').count() == 3
    };
    candidates()
        .find(|(_, version)| full(version))
        .or_else(|| candidates().next())
}

fn u32_from_string<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u32),
    }
    match Either::deserialize(d)? {
        Either::Number(n) => Ok(n),
        Either::Text(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("revision {s:?} is not a number"))),
    }
}

/// Helm 3 writes a zero time as `""`, `helm list` as `-`, Helm 4 leaves it out.
fn rfc3339_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    match text.as_deref() {
        None | Some("" | "-") => Ok(None),
        Some(t) => OffsetDateTime::parse(t, &Rfc3339)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("time {t:?} is not RFC 3339: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips() {
        for s in [
            ReleaseStatus::Unknown,
            ReleaseStatus::Deployed,
            ReleaseStatus::Uninstalled,
            ReleaseStatus::Superseded,
            ReleaseStatus::Failed,
            ReleaseStatus::Uninstalling,
            ReleaseStatus::PendingInstall,
            ReleaseStatus::PendingUpgrade,
            ReleaseStatus::PendingRollback,
        ] {
            let json = format!("\"{s}\"");
            assert_eq!(serde_json::from_str::<ReleaseStatus>(&json).unwrap(), s);
        }
        assert_eq!(
            serde_json::from_str::<ReleaseStatus>("\"brand-new\"").unwrap(),
            ReleaseStatus::Unknown
        );
        assert!(ReleaseStatus::PendingUpgrade.is_pending());
        assert!(!ReleaseStatus::Failed.is_pending());
    }

    #[test]
    fn splits_chart_columns() {
        assert_eq!(split_chart("wiki-1.2.3"), Some(("wiki", "1.2.3")));
        assert_eq!(
            split_chart("cert-manager-1.2.0-rc.1"),
            Some(("cert-manager", "1.2.0-rc.1"))
        );
        assert_eq!(split_chart("app-2fa-0.1.0"), Some(("app-2fa", "0.1.0")));
        assert_eq!(
            split_chart("cert-manager-v1.14.2"),
            Some(("cert-manager", "v1.14.2"))
        );
        assert_eq!(split_chart("app-1-2.0.0"), Some(("app-1", "2.0.0")));
        assert_eq!(split_chart("app-1.2"), Some(("app", "1.2")));
        assert_eq!(split_chart("nover"), None);
        assert_eq!(split_chart("-1.0.0"), None);
        assert_eq!(split_chart(""), None);
    }

    #[test]
    fn list_revision_is_a_string_and_times_may_be_missing() {
        let json = r#"[{"name":"a","namespace":"ns","revision":"12","updated":"-","status":"failed","chart":"a-1.0.0","app_version":""},
                      {"name":"b","namespace":"ns","revision":3,"updated":"2026-11-26T03:10:00.123456789Z","status":"deployed","chart":"b-2.0.0","app_version":"2"}]"#;
        let list: Vec<ListEntry> = serde_json::from_str(json).unwrap();
        assert_eq!(list[0].revision, 12);
        assert_eq!(list[0].updated, None);
        assert_eq!(list[1].revision, 3);
        assert_eq!(
            list[1].updated.unwrap().unix_timestamp_nanos(),
            1_795_662_600_123_456_789
        );
        let bad = r#"[{"name":"a","namespace":"ns","revision":"x","status":"failed"}]"#;
        let err = serde_json::from_str::<Vec<ListEntry>>(bad).unwrap_err();
        assert!(err.to_string().contains("revision \"x\""), "{err}");
    }
}
