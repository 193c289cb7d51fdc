//! Backups before an upgrade, with Velero (docs/backup.md): the pure part.
//!
//! Decide: whether a release gets a backup before its upgrade (the index's
//! `backup` block, which the subscription may require, waive or override),
//! the `velero.io/v1` `Backup` object to create, and what its phase means.
//! The [`super::ops::Operator`] creates it and waits; the executor runs that
//! before anything changes and gives the upgrade up when it fails. The agent
//! never deletes a backup: Velero does once its TTL has passed.

use serde_json::{Value, json};

use crate::crd::{BackupMode, BackupOverride};
use crate::duration::Duration;
use crate::format::Timestamp;
use crate::format::spec::{BackupPolicy, check_backup_ttl};

/// Velero's API group and version of `Backup` and `Restore`.
pub const VELERO_API_VERSION: &str = "velero.io/v1";

/// The label on every `Backup` the agent creates; its value is the release.
pub const LABEL_RELEASE: &str = "coxswain.dev/release";
/// The label naming the release's namespace.
pub const LABEL_NAMESPACE: &str = "coxswain.dev/release-namespace";
/// The label naming the index sequence the upgrade came from.
pub const LABEL_SEQUENCE: &str = "coxswain.dev/sequence";
/// `app.kubernetes.io/managed-by` on every `Backup` the agent creates.
pub const MANAGED_BY: &str = "coxswain";

/// Longest Kubernetes label value, and so the longest backup name (Velero
/// labels each backed-up item with its backup's name).
const MAX_NAME: usize = 63;

/// A backup to take before an upgrade, as resolved for one release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupRequest {
    /// How long Velero keeps it; `None`: Velero's default.
    pub ttl: Option<Duration>,
    /// Snapshot persistent volumes too.
    pub include_volumes: bool,
    /// Restore it when the rollback alone leaves the release unhealthy
    /// (the channel's `autoRestore`).
    pub auto_restore: bool,
}

/// Whether `release` gets a backup before its upgrade: the channel's policy
/// (`index`) as this cluster's `over`ride changes it. `Err` names a field of
/// the override that cannot be used.
pub fn wanted(
    release: &str,
    index: Option<&BackupPolicy>,
    over: Option<&BackupOverride>,
) -> Result<Option<BackupRequest>, String> {
    let mode = over.and_then(|o| o.mode);
    if mode == Some(BackupMode::Waive) {
        return Ok(None);
    }
    if index.is_none() && mode != Some(BackupMode::Require) {
        return Ok(None);
    }
    let ttl = over.and_then(|o| o.ttl).or(index.and_then(|p| p.ttl));
    check_backup_ttl(release, ttl).map_err(|e| format!("spec.backups: {e}"))?;
    let include_volumes = over
        .and_then(|o| o.include_volumes)
        .unwrap_or(index.is_some_and(|p| p.include_volumes));
    Ok(Some(BackupRequest {
        ttl,
        include_volumes,
        auto_restore: index.is_some_and(|p| p.auto_restore),
    }))
}

/// `yyyymmddhhmmss` (UTC), as names carry it.
fn compact_time(at: Timestamp) -> String {
    let t = at.datetime();
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The backup's name: `<release>-<sequence>-<yyyymmddhhmmss>`, the release
/// cut so the whole stays a label value (63 characters).
pub fn backup_name(release: &str, sequence: u64, at: Timestamp) -> String {
    let suffix = format!("-{sequence}-{}", compact_time(at));
    let room = MAX_NAME.saturating_sub(suffix.len());
    let head: String = release.chars().take(room).collect();
    // A cut may end on `-`, which a name may not end with before the suffix's own.
    let head = head.trim_end_matches('-');
    format!("{head}{suffix}")
}

/// What the agent asks Velero to back up before upgrading a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupTarget<'a> {
    /// The backup's name ([`backup_name`]).
    pub name: &'a str,
    /// Velero's namespace.
    pub velero_namespace: &'a str,
    /// The release.
    pub release: &'a str,
    /// The release's namespace: what is backed up.
    pub namespace: &'a str,
    /// The sequence whose upgrade it protects.
    pub sequence: u64,
    /// TTL and volumes.
    pub request: BackupRequest,
}

/// The `Backup` object: the release's namespace, every resource in it (the
/// release's objects, helm's release records and what the application wrote,
/// such as ConfigMaps and Secrets holding data), the TTL as a Go duration
/// (`<seconds>s`), `snapshotVolumes` as asked, labelled as coxswain's.
pub fn backup_object(target: &BackupTarget<'_>) -> Value {
    let mut spec = json!({
        "includedNamespaces": [target.namespace],
        "snapshotVolumes": target.request.include_volumes,
        "includeClusterResources": false,
    });
    if let Some(ttl) = target.request.ttl {
        spec["ttl"] = json!(format!("{}s", ttl.as_secs()));
    }
    json!({
        "apiVersion": VELERO_API_VERSION,
        "kind": "Backup",
        "metadata": {
            "name": target.name,
            "namespace": target.velero_namespace,
            "labels": {
                "app.kubernetes.io/managed-by": MANAGED_BY,
                LABEL_RELEASE: target.release,
                LABEL_NAMESPACE: target.namespace,
                LABEL_SEQUENCE: target.sequence.to_string(),
            },
        },
        "spec": spec,
    })
}

/// What a `Backup`'s `status.phase` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Completed: the upgrade may start.
    Completed,
    /// Not finished yet (no phase, `New`, `Queued`, `InProgress`, ...).
    Running,
    /// It ended without a complete backup: why.
    Failed(String),
}

/// Reads a `Backup`'s phase, and its `failureReason` or error count when it failed.
pub fn phase(object: &Value) -> Phase {
    phase_of("velero backup", object)
}

/// Reads the phase of a Velero `Backup` or `Restore` (`what` names it in a failure).
pub fn phase_of(what: &str, object: &Value) -> Phase {
    let status = object.get("status");
    let field = |name: &str| status.and_then(|s| s.get(name));
    let phase = field("phase").and_then(Value::as_str).unwrap_or("");
    let reason = field("failureReason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .map(|r| format!(": {}", crate::bounded::bounded(r, 300)));
    let errors = field("errors").and_then(Value::as_u64).unwrap_or(0);
    match phase {
        "Completed" => Phase::Completed,
        "Failed" | "FailedValidation" | "PartiallyFailed" => {
            let detail = reason.unwrap_or_else(|| {
                let validation = field("validationErrors")
                    .and_then(Value::as_array)
                    .and_then(|list| list.first())
                    .and_then(Value::as_str)
                    .map(|e| format!(": {}", crate::bounded::bounded(e, 300)));
                validation.unwrap_or_else(|| format!(" with {errors} error(s)"))
            });
            Phase::Failed(format!("{what} ended {phase}{detail}"))
        }
        _ => Phase::Running,
    }
}

/// The message when the cluster has no `backups.velero.io`.
pub fn velero_missing(release: &str) -> String {
    format!(
        "Velero is not installed (the cluster serves no backups.velero.io/v1); waive the backup \
         in the subscription to upgrade unprotected (spec.backups.{release}.mode: waive)"
    )
}

/// The Velero CLI command that restores `backup` over the release's namespace
/// (shown after a rollback): objects the backup holds are created, or updated
/// back to their backed-up content; objects created since stay.
pub fn restore_command(velero_namespace: &str, namespace: &str, backup: &str) -> String {
    format!(
        "velero restore create --namespace {velero_namespace} --from-backup {backup} \
         --include-namespaces {namespace} --existing-resource-policy update"
    )
}

/// A restore's name: `<backup>-restore-<yyyymmddhhmmss>`, the backup's name
/// cut so the whole stays within 63 characters.
pub fn restore_name(backup: &str, at: Timestamp) -> String {
    let suffix = format!("-restore-{}", compact_time(at));
    let head: String = backup
        .chars()
        .take(MAX_NAME.saturating_sub(suffix.len()))
        .collect();
    format!("{}{suffix}", head.trim_end_matches('-'))
}

/// The `Restore` of `backup` over the release's `namespace`: what the backup
/// holds is created, or updated back (`existingResourcePolicy: update`);
/// what was created since stays.
pub fn restore_object(
    name: &str,
    velero_namespace: &str,
    backup: &str,
    release: &str,
    namespace: &str,
) -> Value {
    json!({
        "apiVersion": VELERO_API_VERSION,
        "kind": "Restore",
        "metadata": {
            "name": name,
            "namespace": velero_namespace,
            "labels": {
                "app.kubernetes.io/managed-by": MANAGED_BY,
                LABEL_RELEASE: release,
                LABEL_NAMESPACE: namespace,
            },
        },
        "spec": {
            "backupName": backup,
            "includedNamespaces": [namespace],
            "existingResourcePolicy": "update",
        },
    })
}

/// Whether `backup` (a `Backup` object) is one the agent took of `release`
/// in `namespace`.
pub fn is_backup_of(backup: &Value, release: &str, namespace: &str) -> bool {
    let labels = &backup["metadata"]["labels"];
    labels["app.kubernetes.io/managed-by"] == MANAGED_BY
        && labels[LABEL_RELEASE] == release
        && labels[LABEL_NAMESPACE] == namespace
}

/// The newest completed backup the agent took of `release` in `namespace`,
/// among `backups` (by creation time, then name).
pub fn newest_backup(backups: &[Value], release: &str, namespace: &str) -> Option<String> {
    backups
        .iter()
        .filter(|b| is_backup_of(b, release, namespace) && phase(b) == Phase::Completed)
        .filter_map(|b| {
            let name = b["metadata"]["name"].as_str()?;
            // RFC 3339 UTC timestamps sort as text.
            let created = b["metadata"]["creationTimestamp"].as_str().unwrap_or("");
            Some((created.to_owned(), name.to_owned()))
        })
        .max()
        .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::spec::BackupBefore;

    fn policy(ttl: Option<u64>, include_volumes: bool) -> BackupPolicy {
        BackupPolicy {
            before: BackupBefore::Upgrade,
            ttl: ttl.map(Duration::from_secs),
            include_volumes,
            auto_restore: false,
        }
    }

    fn over(mode: Option<BackupMode>, ttl: Option<u64>, vols: Option<bool>) -> BackupOverride {
        BackupOverride {
            mode,
            ttl: ttl.map(Duration::from_secs),
            include_volumes: vols,
        }
    }

    #[test]
    fn the_channel_asks_the_cluster_requires_waives_or_overrides() {
        let asked = policy(Some(3_600), true);
        assert_eq!(wanted("db", None, None), Ok(None));
        assert_eq!(
            wanted("db", Some(&asked), None),
            Ok(Some(BackupRequest {
                ttl: Some(Duration::from_secs(3_600)),
                include_volumes: true,
                auto_restore: false,
            }))
        );
        assert_eq!(
            wanted(
                "db",
                Some(&asked),
                Some(&over(Some(BackupMode::Waive), None, None))
            ),
            Ok(None)
        );
        assert_eq!(
            wanted(
                "db",
                None,
                Some(&over(Some(BackupMode::Require), None, None))
            ),
            Ok(Some(BackupRequest {
                ttl: None,
                include_volumes: false,
                auto_restore: false,
            }))
        );
        // An override without a mode changes only what it names.
        assert_eq!(
            wanted("db", Some(&asked), Some(&over(None, Some(60), None))),
            Ok(Some(BackupRequest {
                ttl: Some(Duration::from_secs(60)),
                include_volumes: true,
                auto_restore: false,
            }))
        );
        assert_eq!(
            wanted("db", Some(&asked), Some(&over(None, None, Some(false)))),
            Ok(Some(BackupRequest {
                ttl: Some(Duration::from_secs(3_600)),
                include_volumes: false,
                auto_restore: false,
            }))
        );
        // ... and asks for nothing when the channel does not.
        assert_eq!(
            wanted("db", None, Some(&over(None, Some(60), Some(true)))),
            Ok(None)
        );
    }

    #[test]
    fn an_unusable_override_ttl_is_named() {
        let err = wanted(
            "db",
            Some(&policy(None, false)),
            Some(&over(None, Some(0), None)),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "spec.backups: release `db`: backup.ttl must be longer than 0s"
        );
        let err = wanted(
            "db",
            None,
            Some(&over(Some(BackupMode::Require), Some(3_651 * 86_400), None)),
        )
        .unwrap_err();
        assert!(err.contains("longer than the maximum of 3650d"), "{err}");
    }

    #[test]
    fn names_are_release_sequence_and_time_within_63_characters() {
        let at = Timestamp::from_unix(1_796_300_000).unwrap();
        assert_eq!(backup_name("db", 42, at), "db-42-20261203121320");
        let long = "a".repeat(40) + "-" + &"b".repeat(12);
        let name = backup_name(&long, 9_007_199_254_740_992, at);
        assert_eq!(name.len(), 63, "{name}");
        assert!(name.ends_with("-9007199254740992-20261203121320"), "{name}");
        let dash = "a".repeat(30) + "-bbbb";
        let name = backup_name(&dash, 9_007_199_254_740_992, at);
        assert!(!name.contains("--"), "{name}");
    }

    #[test]
    fn the_backup_object_covers_the_namespace_and_is_labelled() {
        let target = BackupTarget {
            name: "db-42-20261203121320",
            velero_namespace: "velero",
            release: "db",
            namespace: "data",
            sequence: 42,
            request: BackupRequest {
                ttl: Some(Duration::from_days(30)),
                include_volumes: false,
                auto_restore: false,
            },
        };
        assert_eq!(
            backup_object(&target),
            json!({
                "apiVersion": "velero.io/v1",
                "kind": "Backup",
                "metadata": {
                    "name": "db-42-20261203121320",
                    "namespace": "velero",
                    "labels": {
                        "app.kubernetes.io/managed-by": "coxswain",
                        "coxswain.dev/release": "db",
                        "coxswain.dev/release-namespace": "data",
                        "coxswain.dev/sequence": "42",
                    },
                },
                "spec": {
                    "includedNamespaces": ["data"],
                    "snapshotVolumes": false,
                    "includeClusterResources": false,
                    "ttl": "2592000s",
                },
            })
        );
        let mut no_ttl = target.clone();
        no_ttl.request.ttl = None;
        assert!(backup_object(&no_ttl)["spec"].get("ttl").is_none());
    }

    #[test]
    fn restores_update_what_the_backup_holds_and_name_it() {
        let at = Timestamp::from_unix(1_796_300_000).unwrap();
        assert_eq!(
            restore_name("db-42-20261203121320", at),
            "db-42-20261203121320-restore-20261203121320"
        );
        assert_eq!(restore_name(&"x".repeat(63), at).len(), 63);
        let object = restore_object("r", "velero", "db-42-1", "db", "data");
        assert_eq!(
            object["spec"],
            json!({"backupName": "db-42-1", "includedNamespaces": ["data"], "existingResourcePolicy": "update"})
        );
        assert_eq!(object["metadata"]["labels"]["coxswain.dev/release"], "db");
    }

    #[test]
    fn the_newest_completed_backup_of_the_release_is_chosen() {
        let backup = |name: &str, created: &str, release: &str, phase: &str| {
            json!({
                "metadata": {
                    "name": name,
                    "creationTimestamp": created,
                    "labels": {
                        "app.kubernetes.io/managed-by": "coxswain",
                        "coxswain.dev/release": release,
                        "coxswain.dev/release-namespace": "data",
                    },
                },
                "status": {"phase": phase},
            })
        };
        let mut foreign = backup("foreign", "2026-12-05T00:00:00Z", "db", "Completed");
        foreign["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("someone");
        let all = [
            backup("db-1", "2026-12-01T00:00:00Z", "db", "Completed"),
            backup("db-2", "2026-12-02T00:00:00Z", "db", "Completed"),
            backup("db-3", "2026-12-03T00:00:00Z", "db", "Failed"),
            backup("web-4", "2026-12-04T00:00:00Z", "web", "Completed"),
            foreign,
        ];
        assert_eq!(newest_backup(&all, "db", "data").as_deref(), Some("db-2"));
        assert_eq!(newest_backup(&all, "db", "other"), None);
        assert_eq!(newest_backup(&all, "cache", "data"), None);
    }

    #[test]
    fn phases_say_done_running_or_why_not() {
        assert_eq!(phase(&json!({})), Phase::Running);
        assert_eq!(
            phase(&json!({"status": {"phase": "InProgress"}})),
            Phase::Running
        );
        assert_eq!(
            phase(&json!({"status": {"phase": "Completed"}})),
            Phase::Completed
        );
        assert_eq!(
            phase(&json!({"status": {"phase": "Failed", "failureReason": "bucket gone"}})),
            Phase::Failed("velero backup ended Failed: bucket gone".into())
        );
        assert_eq!(
            phase(&json!({"status": {"phase": "PartiallyFailed", "errors": 2}})),
            Phase::Failed("velero backup ended PartiallyFailed with 2 error(s)".into())
        );
        assert_eq!(
            phase(
                &json!({"status": {"phase": "FailedValidation", "validationErrors": ["no location"]}})
            ),
            Phase::Failed("velero backup ended FailedValidation: no location".into())
        );
    }
}
