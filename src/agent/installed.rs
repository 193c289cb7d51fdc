//! What is installed, in the form the planner takes, read from helm's own
//! release records (the `owner=helm` Secrets, or ConfigMaps with
//! `HELM_DRIVER=configmap`) without running helm: one LIST of the records'
//! labels per namespace, and a record's contents only when its
//! `resourceVersion` is new (a revision helm wrote or rewrote since). An
//! unchanged cluster costs one metadata LIST per namespace and nothing else.
//!
//! Per release, as `helm list` shows it: the latest revision, its status,
//! chart and time; the fingerprint of the deployed state, followed through
//! helm's "Rollback to N"; and the revision a failed upgrade must return to.
//!
//! Why a LIST per check rather than a watch: the namespaces to read follow
//! each subscription's index and change with it, the agent checks on a
//! timer anyway, and labels alone answer an unchanged check; a watch per
//! namespace would add streams to start, stop and resynchronise for no
//! fewer requests per check that matter, and a watch of whole Secrets would
//! keep every revision's values (secrets) in the agent's memory.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::helm::storage::{self, Driver, RecordMeta, StorageError};
use crate::helm::{Description, Fingerprint, Release, ReleaseStatus};
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

/// `(namespace, record name)`.
type CacheKey = (String, String);

/// Decoded records by name, each with the `resourceVersion` it was read
/// at: a record is read again only when helm rewrote it. Holds no values
/// and no manifests (see [`storage::decode_release`]).
#[derive(Debug, Default)]
pub struct RecordCache {
    entries: Mutex<HashMap<CacheKey, (String, Arc<Release>)>>,
}

impl RecordCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, (String, Arc<Release>)>> {
        // A panic while holding this lock leaves plain data behind; keep using it.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The decoded record, from the cache when its `resourceVersion` is unchanged.
    async fn get(
        &self,
        client: &kube::Client,
        driver: Driver,
        namespace: &str,
        meta: &RecordMeta,
    ) -> Result<Arc<Release>, StorageError> {
        let key = (namespace.to_owned(), meta.record.clone());
        if let Some((rv, release)) = self.lock().get(&key)
            && *rv == meta.resource_version
            && !rv.is_empty()
        {
            return Ok(release.clone());
        }
        let release = Arc::new(storage::read_record(client, driver, namespace, meta).await?);
        self.lock()
            .insert(key, (meta.resource_version.clone(), release.clone()));
        Ok(release)
    }
}

/// Where helm keeps its records and a client to read them.
#[derive(Clone, Copy)]
pub struct Records<'a> {
    /// The Kubernetes client.
    pub client: &'a kube::Client,
    /// Secrets or ConfigMaps.
    pub driver: Driver,
    /// Decoded records kept between checks.
    pub cache: &'a RecordCache,
}

/// Reads the releases of `namespaces` from helm's records.
pub async fn read_installed(
    records: Records<'_>,
    namespaces: &BTreeSet<String>,
) -> Result<Installed, StorageError> {
    let mut out = Installed::default();
    let mut seen: HashSet<CacheKey> = HashSet::new();
    for namespace in namespaces {
        let metas = storage::list_records(records.client, records.driver, namespace).await?;
        seen.extend(metas.iter().map(|m| (namespace.clone(), m.record.clone())));
        let mut by_release: BTreeMap<&str, Vec<&RecordMeta>> = BTreeMap::new();
        for meta in &metas {
            by_release.entry(&meta.release).or_default().push(meta);
        }
        for (name, revisions) in by_release {
            let Some(latest) = revisions.iter().copied().max_by_key(|m| m.revision) else {
                continue;
            };
            let release = records
                .cache
                .get(records.client, records.driver, namespace, latest)
                .await?;
            let id = ReleaseId::new(namespace, name);
            let fingerprint =
                deployed_fingerprint(records, namespace, &revisions, &release).await?;
            if let Some(updated) = release.info.last_deployed {
                out.updated.insert(id.clone(), updated);
            }
            let labelled: Vec<(u32, ReleaseStatus)> =
                revisions.iter().map(|m| (m.revision, m.status)).collect();
            if let Some(rev) = last_deployed(&labelled) {
                out.rollback_to.insert(id, rev);
            }
            let (chart_name, chart_version) = release
                .chart
                .as_ref()
                .map(|c| (c.metadata.name.clone(), c.metadata.version.clone()))
                .unwrap_or_default();
            out.releases.push(InstalledRelease {
                name: name.to_owned(),
                namespace: namespace.clone(),
                chart_name,
                chart_version,
                status: release.info.status,
                revision: release.version,
                fingerprint,
                owner: None,
            });
        }
    }
    // Forget records of these namespaces that went away.
    records
        .cache
        .lock()
        .retain(|key, _| !namespaces.contains(&key.0) || seen.contains(key));
    Ok(out)
}

/// The fingerprint of the latest revision, followed through "Rollback to
/// N"; reads the records of the revisions on the way only.
async fn deployed_fingerprint(
    records: Records<'_>,
    namespace: &str,
    revisions: &[&RecordMeta],
    latest: &Arc<Release>,
) -> Result<Option<Fingerprint>, StorageError> {
    let mut current = latest.clone();
    for _ in 0..MAX_HOPS {
        let target = match hop(&current) {
            Hop::Found(fp) => return Ok(Some(fp)),
            Hop::To(target) => target,
            Hop::Nowhere => return Ok(None),
        };
        let Some(meta) = revisions.iter().find(|m| m.revision == target) else {
            return Ok(None);
        };
        current = records
            .cache
            .get(records.client, records.driver, namespace, meta)
            .await?;
    }
    Ok(None)
}

/// Where one revision's description leads.
#[derive(Debug, PartialEq, Eq)]
enum Hop {
    /// A coxswain fingerprint.
    Found(Fingerprint),
    /// "Rollback to N" (helm 3 says it only in the description; helm 4 also
    /// in `rollback_revision`), to an older revision.
    To(u32),
    /// Neither.
    Nowhere,
}

fn hop(release: &Release) -> Hop {
    let target = match Description::parse(&release.info.description) {
        Description::Fingerprint(fp) => return Hop::Found(fp),
        Description::RollbackTo(n) => Some(n),
        Description::Other => release.info.rollback_revision.filter(|&n| n > 0),
    };
    match target {
        Some(n) if n < release.version => Hop::To(n),
        _ => Hop::Nowhere,
    }
}

/// The newest revision that is deployed, else the newest that was deployed
/// once (superseded); `None` when no revision ever was.
pub fn last_deployed(revisions: &[(u32, ReleaseStatus)]) -> Option<u32> {
    let newest = |status: ReleaseStatus| {
        revisions
            .iter()
            .filter(|(_, s)| *s == status)
            .map(|(r, _)| *r)
            .max()
    };
    newest(ReleaseStatus::Deployed).or_else(|| newest(ReleaseStatus::Superseded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(revision: u32, description: &str, rollback_revision: Option<u32>) -> Release {
        serde_json::from_value(serde_json::json!({
            "name": "wiki",
            "version": revision,
            "info": {"status": "deployed", "description": description,
                     "rollback_revision": rollback_revision},
        }))
        .unwrap()
    }

    fn fp(seq: u64) -> Fingerprint {
        Fingerprint::new("stable", seq, [1; 32], [2; 32]).unwrap()
    }

    #[test]
    fn a_description_leads_to_a_fingerprint_or_an_older_revision() {
        let found = release(2, &fp(7).to_string(), None);
        assert_eq!(hop(&found), Hop::Found(fp(7)));
        assert_eq!(hop(&release(3, "Rollback to 1", None)), Hop::To(1));
        // Helm 4 also says it in `rollback_revision`.
        assert_eq!(hop(&release(3, "rolled back", Some(2))), Hop::To(2));
        // A rollback forwards, to itself or to 0 leads nowhere.
        assert_eq!(hop(&release(1, "Rollback to 1", None)), Hop::Nowhere);
        assert_eq!(hop(&release(2, "Rollback to 5", None)), Hop::Nowhere);
        assert_eq!(hop(&release(2, "x", Some(0))), Hop::Nowhere);
        assert_eq!(hop(&release(1, "Install complete", None)), Hop::Nowhere);
    }

    #[test]
    fn rollback_target_is_the_last_deployed_revision() {
        use ReleaseStatus::*;
        assert_eq!(
            last_deployed(&[(1, Superseded), (2, Deployed), (3, Failed)]),
            Some(2)
        );
        assert_eq!(last_deployed(&[(1, Superseded), (2, Failed)]), Some(1));
        assert_eq!(last_deployed(&[(1, Failed)]), None);
    }
}
