//! What helm reports as installed, in the form the planner takes: `helm list`
//! per namespace, then `helm history` per release to read the fingerprint of
//! the deployed revision (through helm's "Rollback to N") and to note the
//! revision a failed upgrade must return to.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use crate::helm::{
    Description, Fingerprint, HelmCli, HelmError, HistoryEntry, ListScope, ReleaseStatus,
};
use crate::plan::{InstalledRelease, ReleaseId};

/// Installed releases, and for each the revision to roll back to.
#[derive(Debug, Clone, Default)]
pub struct Installed {
    /// What the planner reads.
    pub releases: Vec<InstalledRelease>,
    /// The last deployed revision per release: where a failed upgrade returns.
    /// Absent when no revision was ever deployed (a failed first install).
    pub rollback_to: BTreeMap<ReleaseId, u32>,
    /// When helm last wrote each release's latest revision (the age of a
    /// release stuck `pending-*`).
    pub updated: BTreeMap<ReleaseId, time::OffsetDateTime>,
}

/// How many "Rollback to N" hops are followed before giving up (helm keeps ten
/// revisions by default, so a longer chain is never complete anyway).
const MAX_HOPS: usize = 16;

/// What `helm history` told about one revision of a release.
#[derive(Debug, Clone)]
struct Read {
    fingerprint: Option<Fingerprint>,
    rollback_to: Option<u32>,
}

type CacheKey = (ReleaseId, u32, ReleaseStatus);

/// Remembers, per release, what its history said at a given latest revision
/// and status, so an unchanged release costs `helm list` only (a revision
/// number never comes back with other contents).
#[derive(Debug, Default)]
pub struct HistoryCache {
    entries: Mutex<HashMap<CacheKey, Read>>,
}

impl HistoryCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Read>> {
        // A panic while holding this lock leaves plain data behind; keep using it.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Reads the releases of `namespaces` from helm.
pub async fn read_installed(
    helm: &HelmCli,
    namespaces: &BTreeSet<String>,
    cache: &HistoryCache,
) -> Result<Installed, HelmError> {
    let mut out = Installed::default();
    let mut seen = HashSet::new();
    for namespace in namespaces {
        let entries = helm.list(&ListScope::Namespace(namespace.clone())).await?;
        for entry in entries {
            let id = ReleaseId::new(&entry.namespace, &entry.name);
            let key = (id.clone(), entry.revision, entry.status);
            let cached = cache.lock().get(&key).cloned();
            let read = match cached {
                Some(read) => read,
                None => {
                    let history = match helm.history(&entry.name, &entry.namespace, 0).await {
                        Ok(h) => h,
                        // Gone between list and history (uninstalled meanwhile).
                        Err(e) if e.is_not_found() => continue,
                        Err(e) => return Err(e),
                    };
                    let read = Read {
                        fingerprint: deployed_fingerprint(&history),
                        rollback_to: last_deployed(&history),
                    };
                    cache.lock().insert(key.clone(), read.clone());
                    read
                }
            };
            seen.insert(key);
            let (chart_name, chart_version) = entry
                .chart_name_version()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .unwrap_or_else(|| (entry.chart.clone(), String::new()));
            if let Some(updated) = entry.updated {
                out.updated.insert(id.clone(), updated);
            }
            if let Some(rev) = read.rollback_to {
                out.rollback_to.insert(id, rev);
            }
            out.releases.push(InstalledRelease {
                name: entry.name.clone(),
                namespace: entry.namespace.clone(),
                chart_name,
                chart_version,
                status: entry.status,
                revision: entry.revision,
                fingerprint: read.fingerprint,
                owner: None,
            });
        }
    }
    // Forget releases of these namespaces that moved on or went away.
    cache
        .lock()
        .retain(|key, _| !namespaces.contains(&key.0.namespace) || seen.contains(key));
    Ok(out)
}

/// The fingerprint of the latest revision, followed through "Rollback to N"
/// (helm 3 says it only in the description; helm 4 also in `rollback_revision`).
pub fn deployed_fingerprint(history: &[HistoryEntry]) -> Option<Fingerprint> {
    let mut entry = history.iter().max_by_key(|e| e.revision)?;
    for _ in 0..MAX_HOPS {
        let target = match Description::parse(&entry.description) {
            Description::Fingerprint(fp) => return Some(fp),
            Description::RollbackTo(n) => n,
            Description::Other => entry.rollback_revision.filter(|&n| n > 0)?,
        };
        if target >= entry.revision {
            return None;
        }
        entry = history.iter().find(|e| e.revision == target)?;
    }
    None
}

/// The newest revision that is deployed, else the newest that was deployed
/// once (superseded); `None` when no revision ever was.
pub fn last_deployed(history: &[HistoryEntry]) -> Option<u32> {
    let newest = |status: ReleaseStatus| {
        history
            .iter()
            .filter(|e| e.status == status)
            .map(|e| e.revision)
            .max()
    };
    newest(ReleaseStatus::Deployed).or_else(|| newest(ReleaseStatus::Superseded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(revision: u32, status: &str, description: &str) -> HistoryEntry {
        serde_json::from_value(serde_json::json!({
            "revision": revision,
            "status": status,
            "chart": "wiki-1.0.0",
            "description": description,
        }))
        .unwrap()
    }

    fn fp(seq: u64) -> String {
        Fingerprint::new("stable", seq, [1; 32], [2; 32])
            .unwrap()
            .to_string()
    }

    #[test]
    fn fingerprint_is_followed_through_rollbacks() {
        let h = vec![
            entry(1, "superseded", &fp(1)),
            entry(2, "superseded", &fp(2)),
            entry(3, "deployed", "Rollback to 1"),
        ];
        assert_eq!(deployed_fingerprint(&h).unwrap().sequence, 1);
        let h = vec![
            entry(1, "superseded", &fp(1)),
            entry(2, "superseded", "Rollback to 1"),
            entry(3, "deployed", "Rollback to 2"),
        ];
        assert_eq!(deployed_fingerprint(&h).unwrap().sequence, 1);
        // A rollback to a revision helm no longer keeps, or forwards, gives none.
        let h = vec![entry(5, "deployed", "Rollback to 2")];
        assert_eq!(deployed_fingerprint(&h), None);
        let h = vec![entry(1, "superseded", "Rollback to 1")];
        assert_eq!(deployed_fingerprint(&h), None);
        let h = vec![entry(1, "deployed", "Install complete")];
        assert_eq!(deployed_fingerprint(&h), None);
        assert_eq!(deployed_fingerprint(&[]), None);
    }

    #[test]
    fn rollback_target_is_the_last_deployed_revision() {
        let h = vec![
            entry(1, "superseded", ""),
            entry(2, "deployed", ""),
            entry(3, "failed", ""),
        ];
        assert_eq!(last_deployed(&h), Some(2));
        let h = vec![entry(1, "superseded", ""), entry(2, "failed", "")];
        assert_eq!(last_deployed(&h), Some(1));
        let h = vec![entry(1, "failed", "")];
        assert_eq!(last_deployed(&h), None);
    }
}
