//! Repair: what a killed helm or agent left behind, found before planning and
//! made ordinary again.
//!
//! [`decide`] is pure: from the write-ahead intent of a release (if any) and
//! what helm reports, it chooses one [`Repair`]:
//!
//! | found | intent | repair |
//! | --- | --- | --- |
//! | `pending-*` | ours | unlock (mark the stuck revision failed in helm's storage), then roll back to the revision noted before, or uninstall a stuck first install |
//! | `pending-*` | none, older than the grace period | the same, to the last deployed revision |
//! | `pending-*` | none, younger | left alone, reported with its age |
//! | deployed, made by our install/upgrade | ours | health checked again: healthy confirms it, unhealthy rolls back and fails the sequence |
//! | deployed, made by our rollback | ours | health checked again; the sequence stays failed |
//! | `failed`, made by our operation | ours | undone as the failure would have been |
//! | unchanged since the intent | ours | the intent is forgotten (helm never started) |
//!
//! [`run`] carries the repairs out through the small [`Operator`] trait (helm,
//! helm's storage, the health check), recording each step in the
//! [`Journal`] first, so a kill during a repair is repaired again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::crd::{Intent, Operation, OperationKind, OperationResult};
use crate::format::Timestamp;
use crate::health::HealthOptions;
use crate::helm::{Fingerprint, ReleaseStatus};
use crate::plan::{InstalledRelease, ReleaseId};

use super::gate::Gate;
use super::intent::Journal;
pub use super::ops::Operator;

/// Where an interrupted operation returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    /// `helm rollback` to this revision.
    Rollback(u32),
    /// `helm uninstall` (a first install never got deployed).
    Uninstall,
}

/// The repair one release needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Nothing was interrupted.
    Nothing,
    /// The intent is over without anything to do (helm never started, or the
    /// release is gone): forget it.
    Forget,
    /// Stuck by an operation coxswain did not start, younger than the grace
    /// period: left alone.
    LeaveAlone {
        /// The stuck status.
        status: ReleaseStatus,
        /// How long it has been stuck, when helm says.
        age: Option<Duration>,
    },
    /// Mark `revision` (stuck in `status`) failed, then undo.
    Unlock {
        /// The stuck revision.
        revision: u32,
        /// Its status.
        status: ReleaseStatus,
        /// What follows.
        then: Undo,
        /// Whether coxswain's own intent named it (else: stuck past the grace period).
        ours: bool,
    },
    /// The operation's revision is deployed but its health was never confirmed.
    Recheck {
        /// The revision to check.
        revision: u32,
        /// What an unhealthy check calls for (`None` after a rollback: nothing more to return to).
        undo: Option<Undo>,
    },
    /// The operation failed (helm said so) but was not undone.
    Undo(Undo),
}

/// What [`decide`] looks at for one release.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The write-ahead intent for it, if one is recorded.
    pub intent: Option<&'a Intent>,
    /// What helm reports (latest revision), if installed.
    pub installed: Option<&'a InstalledRelease>,
    /// When helm last touched the latest revision.
    pub updated: Option<OffsetDateTime>,
    /// The newest revision that is or was deployed.
    pub last_deployed: Option<u32>,
}

/// Chooses the repair of one release; `now` and `grace` decide whether a
/// release stuck by someone else is old enough to unlock.
pub fn decide(seen: Observed<'_>, now: OffsetDateTime, grace: Duration) -> Repair {
    let Some(installed) = seen.installed else {
        // Nothing installed: an intent is over (a first install that never
        // started, or an uninstall that finished).
        return if seen.intent.is_some() {
            Repair::Forget
        } else {
            Repair::Nothing
        };
    };
    let undo_to = |rev: Option<u32>| match rev {
        Some(r) if r > 0 && r < installed.revision => Undo::Rollback(r),
        Some(_) | None => Undo::Uninstall,
    };
    let Some(intent) = seen.intent else {
        if !installed.status.is_pending() {
            return Repair::Nothing;
        }
        let age = seen.updated.and_then(|u| Duration::try_from(now - u).ok());
        return match age {
            Some(age) if age >= grace => Repair::Unlock {
                revision: installed.revision,
                status: installed.status,
                then: undo_for_status(installed.status, seen.last_deployed, installed.revision),
                ours: false,
            },
            _ => Repair::LeaveAlone {
                status: installed.status,
                age,
            },
        };
    };
    let from = intent.from_revision.unwrap_or(0);
    match intent.operation {
        OperationKind::Install | OperationKind::Upgrade => {
            if installed.revision <= from {
                // helm never made a revision: nothing happened.
                return if installed.status.is_pending() {
                    // Stuck from before this intent; treat as someone else's.
                    decide(
                        Observed {
                            intent: None,
                            ..seen
                        },
                        now,
                        grace,
                    )
                } else {
                    Repair::Forget
                };
            }
            let back = undo_to(intent.from_revision);
            match installed.status {
                s if s.is_pending() => Repair::Unlock {
                    revision: installed.revision,
                    status: s,
                    then: if s == ReleaseStatus::Uninstalling {
                        Undo::Uninstall
                    } else {
                        back
                    },
                    ours: true,
                },
                ReleaseStatus::Deployed => {
                    let made_by_intent = installed
                        .fingerprint
                        .as_ref()
                        .map(Fingerprint::to_string)
                        .is_some_and(|fp| fp == intent.fingerprint);
                    if made_by_intent {
                        Repair::Recheck {
                            revision: installed.revision,
                            undo: Some(back),
                        }
                    } else {
                        // Someone else moved the release on since: not ours to judge.
                        Repair::Forget
                    }
                }
                ReleaseStatus::Failed => Repair::Undo(back),
                _ => Repair::Forget,
            }
        }
        OperationKind::Rollback => {
            let Some(target) = intent.to_revision else {
                return Repair::Forget;
            };
            if installed.revision <= from {
                // The rollback never made a revision: do it now.
                return match installed.status {
                    s if s.is_pending() => Repair::Unlock {
                        revision: installed.revision,
                        status: s,
                        then: Undo::Rollback(target),
                        ours: true,
                    },
                    _ => Repair::Undo(Undo::Rollback(target)),
                };
            }
            match installed.status {
                s if s.is_pending() => Repair::Unlock {
                    revision: installed.revision,
                    status: s,
                    then: Undo::Rollback(target),
                    ours: true,
                },
                ReleaseStatus::Deployed => Repair::Recheck {
                    revision: installed.revision,
                    undo: None,
                },
                ReleaseStatus::Failed => Repair::Undo(Undo::Rollback(target)),
                _ => Repair::Forget,
            }
        }
        OperationKind::Uninstall | OperationKind::Repair => match installed.status {
            s if s.is_pending() => Repair::Unlock {
                revision: installed.revision,
                status: s,
                then: Undo::Uninstall,
                ours: true,
            },
            _ if intent.operation == OperationKind::Uninstall => Repair::Undo(Undo::Uninstall),
            _ => Repair::Forget,
        },
        // Backups and restores go through Velero, not helm, and are never journaled.
        OperationKind::Skip | OperationKind::Backup | OperationKind::Restore => Repair::Forget,
    }
}

/// The repair of every release that has an intent, or is managed by this
/// subscription (`managed`) and stuck `pending-*`.
pub fn decide_all(
    intents: &[Intent],
    installed: &super::installed::Installed,
    managed: &std::collections::BTreeSet<ReleaseId>,
    now: OffsetDateTime,
    grace: Duration,
) -> BTreeMap<ReleaseId, (Repair, Option<Intent>)> {
    let mut out = BTreeMap::new();
    let find = |id: &ReleaseId| {
        installed
            .releases
            .iter()
            .find(|r| r.namespace == id.namespace && r.name == id.name)
    };
    let mut ids: Vec<ReleaseId> = intents
        .iter()
        .map(|i| ReleaseId::new(&i.namespace, &i.release))
        .collect();
    ids.extend(
        installed
            .releases
            .iter()
            .filter(|r| r.status.is_pending())
            .map(|r| ReleaseId::new(&r.namespace, &r.name))
            .filter(|id| managed.contains(id)),
    );
    for id in ids {
        if out.contains_key(&id) {
            continue;
        }
        let intent = intents
            .iter()
            .find(|i| i.namespace == id.namespace && i.release == id.name);
        let seen = Observed {
            intent,
            installed: find(&id),
            updated: installed.updated.get(&id).copied(),
            last_deployed: installed.rollback_to.get(&id).copied(),
        };
        let repair = decide(seen, now, grace);
        if repair != Repair::Nothing {
            out.insert(id, (repair, intent.cloned()));
        }
    }
    out
}

/// Where a release stuck without an intent goes: an interrupted first install
/// or uninstall is removed, an interrupted upgrade or rollback returns to the
/// last deployed revision before the stuck one.
fn undo_for_status(status: ReleaseStatus, last_deployed: Option<u32>, stuck: u32) -> Undo {
    match (status, last_deployed) {
        (ReleaseStatus::PendingInstall | ReleaseStatus::Uninstalling, _) => Undo::Uninstall,
        (_, Some(rev)) if rev < stuck => Undo::Rollback(rev),
        _ => Undo::Uninstall,
    }
}

/// What one repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// The release.
    pub id: ReleaseId,
    /// What was decided.
    pub repair: Repair,
    /// For the status history (none for `Forget`).
    pub operation: Option<Operation>,
    /// Whether the release ended in a known, healthy state.
    pub ok: bool,
    /// A sentence for people (Event, log, status).
    pub message: String,
    /// When the repair shows that a sequence failed: the sequence and why.
    pub failed: Option<(u64, String)>,
}

/// How repairs run.
#[derive(Debug, Clone)]
pub struct RepairSettings {
    /// Health timeout of rechecks and of the health check after an undo, per
    /// release (the index's, else the subscription's).
    pub timeouts: BTreeMap<ReleaseId, Duration>,
    /// For releases missing from `timeouts`.
    pub default_timeout: Duration,
    /// Health options per release (the index's current entry); the defaults
    /// for releases missing here.
    pub options: BTreeMap<ReleaseId, HealthOptions>,
    /// This agent's identity for the journal.
    pub holder: String,
}

impl RepairSettings {
    fn options(&self, id: &ReleaseId) -> HealthOptions {
        self.options.get(id).copied().unwrap_or_default()
    }

    fn timeout(&self, id: &ReleaseId) -> Duration {
        self.timeouts
            .get(id)
            .copied()
            .unwrap_or(self.default_timeout)
    }
}

/// Carries out the repairs `decided` (release → repair, with its intent),
/// one release after the other, each mutating step recorded in `journal`
/// first. Releases left alone or with nothing to do are not returned.
pub async fn run(
    ops: &dyn Operator,
    journal: &dyn Journal,
    gate: &Gate,
    decided: &BTreeMap<ReleaseId, (Repair, Option<Intent>)>,
    settings: &RepairSettings,
) -> Vec<Repaired> {
    let mut out = Vec::new();
    for (id, (repair, intent)) in decided {
        let done = match repair {
            Repair::Nothing | Repair::LeaveAlone { .. } => continue,
            Repair::Forget => {
                let ok = journal.end(&id.namespace, &id.name).await.is_ok();
                Repaired {
                    id: id.clone(),
                    repair: repair.clone(),
                    operation: None,
                    ok,
                    message: format!("{id}: the interrupted operation had changed nothing"),
                    failed: None,
                }
            }
            _ => repair_one(ops, journal, gate, id, repair, intent.as_ref(), settings).await,
        };
        out.push(done);
    }
    out
}

async fn repair_one(
    ops: &dyn Operator,
    journal: &dyn Journal,
    gate: &Gate,
    id: &ReleaseId,
    repair: &Repair,
    intent: Option<&Intent>,
    settings: &RepairSettings,
) -> Repaired {
    let started = Timestamp::now();
    let clock = Instant::now();
    let sequence = intent.map(|i| i.sequence).unwrap_or(0);
    let what = match intent {
        Some(i) => format!(
            "{} of sequence {} interrupted",
            crate::crd::wire_name(&i.operation),
            i.sequence
        ),
        None => "stuck without an operation coxswain knows of".to_owned(),
    };
    let mut steps: Vec<String> = Vec::new();
    let mut failed: Option<(u64, String)> = None;
    let result: Result<Option<u32>, String> = async {
        let undo = match repair {
            Repair::Unlock {
                revision,
                status,
                then,
                ..
            } => {
                begin(journal, id, settings, intent, *then, *revision, &what).await?;
                ops.unlock(id, *revision, *status).await?;
                steps.push(format!("revision {revision} ({status}) marked failed"));
                Some(*then)
            }
            Repair::Recheck { revision, undo } => {
                match healthy(ops, gate, id, &settings.options(id), settings.timeout(id)).await {
                    Verdict::Unknown(why) => {
                        return Err(format!(
                            "revision {revision} not confirmed ({why}): checked again at the next check"
                        ));
                    }
                    Verdict::Healthy => {
                        steps.push(format!("revision {revision} checked again: healthy"));
                        journal
                            .end(&id.namespace, &id.name)
                            .await
                            .map_err(|e| e.to_string())?;
                        if intent.is_some_and(|i| i.operation == OperationKind::Rollback) {
                            failed = intent.map(|i| {
                                (i.sequence, i.cause.clone().unwrap_or_else(|| what.clone()))
                            });
                        }
                        return Ok(Some(*revision));
                    }
                    Verdict::Unhealthy(why) => {
                        steps.push(format!("revision {revision} checked again: {why}"));
                        let cause = intent
                            .and_then(|i| i.cause.clone())
                            .unwrap_or_else(|| why.clone());
                        failed = Some((sequence, cause));
                        match undo {
                            None => {
                                return Err(format!("revision {revision} is not healthy: {why}"));
                            }
                            Some(u) => {
                                begin(journal, id, settings, intent, *u, *revision, &why).await?;
                                Some(*u)
                            }
                        }
                    }
                }
            }
            Repair::Undo(u) => {
                let revision = intent.and_then(|i| i.from_revision).unwrap_or(0);
                begin(journal, id, settings, intent, *u, revision, &what).await?;
                if let Some(i) = intent {
                    failed = Some((i.sequence, i.cause.clone().unwrap_or_else(|| what.clone())));
                }
                Some(*u)
            }
            Repair::Nothing | Repair::Forget | Repair::LeaveAlone { .. } => None,
        };
        let now = match undo {
            Some(Undo::Rollback(rev)) => {
                let new = ops.rollback(id, rev, settings.timeout(id)).await?;
                steps.push(format!("rolled back to revision {rev}"));
                match healthy(ops, gate, id, &settings.options(id), settings.timeout(id)).await {
                    Verdict::Healthy => {}
                    Verdict::Unhealthy(why) => {
                        return Err(format!(
                            "rolled back to revision {rev}, which is not healthy: {why}"
                        ));
                    }
                    // The rollback's intent stays: the next check confirms it.
                    Verdict::Unknown(why) => {
                        return Err(format!(
                            "rolled back to revision {rev}; not confirmed ({why}): checked again at the next check"
                        ));
                    }
                }
                steps.push("healthy".to_owned());
                new
            }
            Some(Undo::Uninstall) => {
                ops.uninstall(id, settings.timeout(id)).await?;
                steps.push("uninstalled".to_owned());
                None
            }
            None => None,
        };
        journal
            .end(&id.namespace, &id.name)
            .await
            .map_err(|e| e.to_string())?;
        Ok(now)
    }
    .await;
    let ok = result.is_ok();
    let (to_revision, message) = match &result {
        Ok(rev) => (
            *rev,
            format!("{id}: repaired ({what}): {}", steps.join(", ")),
        ),
        Err(why) => (
            None,
            format!(
                "{id}: repair failed ({what}){}{why}",
                if steps.is_empty() {
                    ": ".to_owned()
                } else {
                    format!(": {}; then ", steps.join(", "))
                }
            ),
        ),
    };
    let from_revision = match repair {
        Repair::Unlock { revision, .. } | Repair::Recheck { revision, .. } => Some(*revision),
        _ => intent.and_then(|i| i.from_revision),
    };
    let elapsed = clock.elapsed();
    Repaired {
        id: id.clone(),
        repair: repair.clone(),
        operation: Some(Operation {
            release: id.name.clone(),
            namespace: id.namespace.clone(),
            operation: OperationKind::Repair,
            from: None,
            to: None,
            sequence,
            started,
            duration: crate::duration::Duration::from_secs(elapsed.as_secs()),
            result: if ok {
                OperationResult::Succeeded
            } else {
                OperationResult::Failed
            },
            message: super::events::truncate(&message, 2000),
            from_revision,
            to_revision,
            health: None,
        }),
        ok,
        message,
        failed,
    }
}

/// What a health check during a repair found.
enum Verdict {
    Healthy,
    /// Not healthy: why.
    Unhealthy(String),
    /// Nothing is known (the agent stops, or the API server did not answer):
    /// why. The intent stays; the next check repairs again.
    Unknown(String),
}

/// The health check of the deployed revision. A check still running when
/// the grace period after a stop ends, or one the API server did not answer,
/// is not confirmed either way: never a reason to roll back.
async fn healthy(
    ops: &dyn Operator,
    gate: &Gate,
    id: &ReleaseId,
    options: &HealthOptions,
    timeout: Duration,
) -> Verdict {
    tokio::select! {
        checked = ops.health(id, options, timeout, None) => match checked {
            Err(why) => Verdict::Unhealthy(why),
            Ok(detail) if detail.healthy => Verdict::Healthy,
            Ok(detail) => {
                let why = detail.reason.unwrap_or_else(|| "not healthy".to_owned());
                if detail.unobserved {
                    Verdict::Unknown(why)
                } else {
                    Verdict::Unhealthy(why)
                }
            }
        },
        () = gate.grace_over() => Verdict::Unknown(super::executor::STOPPED.to_owned()),
    }
}

/// Records the undo a repair is about to do.
async fn begin(
    journal: &dyn Journal,
    id: &ReleaseId,
    settings: &RepairSettings,
    intent: Option<&Intent>,
    undo: Undo,
    from_revision: u32,
    cause: &str,
) -> Result<(), String> {
    let (operation, to_revision) = match undo {
        Undo::Rollback(rev) => (OperationKind::Rollback, Some(rev)),
        Undo::Uninstall => (OperationKind::Uninstall, None),
    };
    journal
        .begin(Intent {
            release: id.name.clone(),
            namespace: id.namespace.clone(),
            operation,
            from_revision: (from_revision > 0).then_some(from_revision),
            to_revision,
            fingerprint: String::new(),
            sequence: intent.map(|i| i.sequence).unwrap_or(0),
            started: Timestamp::now(),
            holder: settings.holder.clone(),
            cause: Some(
                intent
                    .and_then(|i| i.cause.clone())
                    .unwrap_or_else(|| cause.to_owned()),
            ),
        })
        .await
        .map_err(|e| crate::site_verify::describe(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::intent::MemoryJournal;
    use crate::agent::ops::script::{Script, unhealthy};

    fn fp(seq: u64) -> Fingerprint {
        Fingerprint::new("stable", seq, [1; 32], [2; 32]).unwrap()
    }

    fn installed(status: ReleaseStatus, revision: u32, seq: Option<u64>) -> InstalledRelease {
        InstalledRelease {
            name: "wiki".into(),
            namespace: "apps".into(),
            chart_name: "wiki".into(),
            chart_version: "1.0.0".into(),
            status,
            revision,
            fingerprint: seq.map(fp),
            owner: None,
        }
    }

    fn intent(op: OperationKind, from: Option<u32>, seq: u64) -> Intent {
        Intent {
            release: "wiki".into(),
            namespace: "apps".into(),
            operation: op,
            from_revision: from,
            to_revision: None,
            fingerprint: fp(seq).to_string(),
            sequence: seq,
            started: Timestamp::from_unix(1_790_000_000).unwrap(),
            holder: "agent-0".into(),
            cause: None,
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
    }

    const GRACE: Duration = Duration::from_secs(600);

    fn seen<'a>(
        intent: Option<&'a Intent>,
        installed: Option<&'a InstalledRelease>,
        age: u64,
        last_deployed: Option<u32>,
    ) -> Observed<'a> {
        Observed {
            intent,
            installed,
            updated: Some(now() - Duration::from_secs(age)),
            last_deployed,
        }
    }

    #[test]
    fn an_interrupted_upgrade_is_unlocked_and_rolled_back_to_the_noted_revision() {
        let i = intent(OperationKind::Upgrade, Some(2), 5);
        let r = installed(ReleaseStatus::PendingUpgrade, 3, Some(4));
        assert_eq!(
            decide(seen(Some(&i), Some(&r), 5, Some(2)), now(), GRACE),
            Repair::Unlock {
                revision: 3,
                status: ReleaseStatus::PendingUpgrade,
                then: Undo::Rollback(2),
                ours: true
            }
        );
    }

    #[test]
    fn an_interrupted_first_install_is_unlocked_and_uninstalled() {
        let i = intent(OperationKind::Install, None, 1);
        let r = installed(ReleaseStatus::PendingInstall, 1, None);
        assert_eq!(
            decide(seen(Some(&i), Some(&r), 5, None), now(), GRACE),
            Repair::Unlock {
                revision: 1,
                status: ReleaseStatus::PendingInstall,
                then: Undo::Uninstall,
                ours: true
            }
        );
    }

    #[test]
    fn a_deployed_revision_of_ours_is_checked_again() {
        let i = intent(OperationKind::Upgrade, Some(2), 5);
        let r = installed(ReleaseStatus::Deployed, 3, Some(5));
        assert_eq!(
            decide(seen(Some(&i), Some(&r), 5, Some(3)), now(), GRACE),
            Repair::Recheck {
                revision: 3,
                undo: Some(Undo::Rollback(2))
            }
        );
        // Someone else's revision since: not ours to judge.
        let r = installed(ReleaseStatus::Deployed, 4, Some(6));
        assert_eq!(
            decide(seen(Some(&i), Some(&r), 5, Some(4)), now(), GRACE),
            Repair::Forget
        );
    }

    #[test]
    fn a_failed_upgrade_that_was_not_undone_is_undone() {
        let i = intent(OperationKind::Upgrade, Some(2), 5);
        let r = installed(ReleaseStatus::Failed, 3, Some(4));
        assert_eq!(
            decide(seen(Some(&i), Some(&r), 5, Some(2)), now(), GRACE),
            Repair::Undo(Undo::Rollback(2))
        );
    }

    #[test]
    fn an_intent_before_helm_started_is_forgotten() {
        let i = intent(OperationKind::Upgrade, Some(2), 5);
        let r = installed(ReleaseStatus::Deployed, 2, Some(4));
        assert_eq!(
            decide(seen(Some(&i), Some(&r), 5, Some(2)), now(), GRACE),
            Repair::Forget
        );
        let i = intent(OperationKind::Install, None, 1);
        assert_eq!(
            decide(seen(Some(&i), None, 5, None), now(), GRACE),
            Repair::Forget
        );
    }

    #[test]
    fn an_interrupted_rollback_is_finished_or_checked() {
        let mut i = intent(OperationKind::Rollback, Some(3), 5);
        i.to_revision = Some(2);
        i.cause = Some("wiki: Deployment not ready".into());
        let stuck = installed(ReleaseStatus::PendingRollback, 4, Some(5));
        assert_eq!(
            decide(seen(Some(&i), Some(&stuck), 5, Some(2)), now(), GRACE),
            Repair::Unlock {
                revision: 4,
                status: ReleaseStatus::PendingRollback,
                then: Undo::Rollback(2),
                ours: true
            }
        );
        let done = installed(ReleaseStatus::Deployed, 4, Some(4));
        assert_eq!(
            decide(seen(Some(&i), Some(&done), 5, Some(4)), now(), GRACE),
            Repair::Recheck {
                revision: 4,
                undo: None
            }
        );
        let not_started = installed(ReleaseStatus::Failed, 3, Some(5));
        assert_eq!(
            decide(seen(Some(&i), Some(&not_started), 5, Some(2)), now(), GRACE),
            Repair::Undo(Undo::Rollback(2))
        );
    }

    #[test]
    fn a_release_stuck_by_someone_else_waits_for_the_grace_period() {
        let r = installed(ReleaseStatus::PendingUpgrade, 7, Some(4));
        assert_eq!(
            decide(seen(None, Some(&r), 60, Some(6)), now(), GRACE),
            Repair::LeaveAlone {
                status: ReleaseStatus::PendingUpgrade,
                age: Some(Duration::from_secs(60))
            }
        );
        assert_eq!(
            decide(seen(None, Some(&r), 601, Some(6)), now(), GRACE),
            Repair::Unlock {
                revision: 7,
                status: ReleaseStatus::PendingUpgrade,
                then: Undo::Rollback(6),
                ours: false
            }
        );
        // No time from helm: never unlocked without an intent.
        let unknown = Observed {
            updated: None,
            ..seen(None, Some(&r), 0, Some(6))
        };
        assert!(matches!(
            decide(unknown, now(), GRACE),
            Repair::LeaveAlone { age: None, .. }
        ));
        // Stuck first install: uninstalled.
        let r = installed(ReleaseStatus::PendingInstall, 1, None);
        assert!(matches!(
            decide(seen(None, Some(&r), 601, None), now(), GRACE),
            Repair::Unlock {
                then: Undo::Uninstall,
                ..
            }
        ));
        // Healthy and alone: nothing.
        let r = installed(ReleaseStatus::Deployed, 7, Some(4));
        assert_eq!(
            decide(seen(None, Some(&r), 601, Some(7)), now(), GRACE),
            Repair::Nothing
        );
    }

    fn settings() -> RepairSettings {
        RepairSettings {
            timeouts: BTreeMap::new(),
            default_timeout: Duration::from_secs(30),
            options: BTreeMap::new(),
            holder: "agent-1".into(),
        }
    }

    fn one(
        repair: Repair,
        intent: Option<Intent>,
    ) -> BTreeMap<ReleaseId, (Repair, Option<Intent>)> {
        BTreeMap::from([(ReleaseId::new("apps", "wiki"), (repair, intent))])
    }

    #[tokio::test]
    async fn unlock_rolls_back_checks_health_and_clears_the_intent() {
        let ops = Script::default();
        let journal = MemoryJournal::default();
        let i = intent(OperationKind::Upgrade, Some(2), 5);
        journal.begin(i.clone()).await.unwrap();
        let repair = Repair::Unlock {
            revision: 3,
            status: ReleaseStatus::PendingUpgrade,
            then: Undo::Rollback(2),
            ours: true,
        };
        let done = run(
            &ops,
            &journal,
            &Gate::new(),
            &one(repair, Some(i)),
            &settings(),
        )
        .await;
        assert_eq!(
            ops.calls(),
            [
                "unlock apps/wiki 3 pending-upgrade",
                "rollback apps/wiki 2",
                "health apps/wiki"
            ]
        );
        assert!(done[0].ok, "{}", done[0].message);
        assert!(
            done[0].message.contains("marked failed"),
            "{}",
            done[0].message
        );
        // An interrupted upgrade is not a failed one: the plan tries again.
        assert_eq!(done[0].failed, None);
        let op = done[0].operation.as_ref().unwrap();
        assert_eq!(op.operation, OperationKind::Repair);
        assert_eq!(op.to_revision, Some(12));
        assert!(journal.current().is_empty());
        // The rollback was recorded before it ran.
        let begun = journal.begun.lock().unwrap().clone();
        assert_eq!(begun.last().unwrap().operation, OperationKind::Rollback);
        assert_eq!(begun.last().unwrap().to_revision, Some(2));
    }

    #[tokio::test]
    async fn an_unhealthy_recheck_rolls_back_and_fails_the_sequence() {
        let ops = Script::default();
        ops.then_health(Ok(unhealthy("Deployment apps/wiki: 0/1 ready")));
        let journal = MemoryJournal::default();
        let i = intent(OperationKind::Upgrade, Some(2), 5);
        let repair = Repair::Recheck {
            revision: 3,
            undo: Some(Undo::Rollback(2)),
        };
        let done = run(
            &ops,
            &journal,
            &Gate::new(),
            &one(repair, Some(i)),
            &settings(),
        )
        .await;
        assert_eq!(
            ops.calls(),
            [
                "health apps/wiki",
                "rollback apps/wiki 2",
                "health apps/wiki"
            ]
        );
        assert!(done[0].ok);
        assert_eq!(
            done[0].failed,
            Some((5, "Deployment apps/wiki: 0/1 ready".to_owned()))
        );
        assert!(journal.current().is_empty());
    }

    #[tokio::test]
    async fn a_healthy_recheck_confirms_without_touching_helm() {
        let ops = Script::default();
        let journal = MemoryJournal::default();
        let i = intent(OperationKind::Upgrade, Some(2), 5);
        journal.begin(i.clone()).await.unwrap();
        let repair = Repair::Recheck {
            revision: 3,
            undo: Some(Undo::Rollback(2)),
        };
        let done = run(
            &ops,
            &journal,
            &Gate::new(),
            &one(repair, Some(i)),
            &settings(),
        )
        .await;
        assert_eq!(ops.calls(), ["health apps/wiki"]);
        assert!(done[0].ok);
        assert_eq!(done[0].failed, None);
        assert_eq!(done[0].operation.as_ref().unwrap().to_revision, Some(3));
        assert!(journal.current().is_empty());
    }

    #[tokio::test]
    async fn a_failed_rollback_keeps_the_intent_for_the_next_try() {
        let ops = Script {
            fail_rollback: true,
            ..Script::default()
        };
        let journal = MemoryJournal::default();
        let repair = Repair::Unlock {
            revision: 3,
            status: ReleaseStatus::PendingUpgrade,
            then: Undo::Rollback(2),
            ours: false,
        };
        let done = run(
            &ops,
            &journal,
            &Gate::new(),
            &one(repair, None),
            &settings(),
        )
        .await;
        assert!(!done[0].ok);
        assert!(
            done[0].message.contains("repair failed") && done[0].message.contains("timed out"),
            "{}",
            done[0].message
        );
        assert_eq!(
            done[0].operation.as_ref().unwrap().result,
            OperationResult::Failed
        );
        // The rollback's intent stays: the next start finishes it.
        assert_eq!(journal.current().len(), 1);
        assert_eq!(journal.current()[0].operation, OperationKind::Rollback);
    }

    #[tokio::test]
    async fn an_interrupted_rollback_that_completed_is_confirmed_and_keeps_the_failure() {
        let ops = Script::default();
        let journal = MemoryJournal::default();
        let mut i = intent(OperationKind::Rollback, Some(3), 5);
        i.to_revision = Some(2);
        i.cause = Some("sso: upgrade to 2.0.0 failed".into());
        let repair = Repair::Recheck {
            revision: 4,
            undo: None,
        };
        let done = run(
            &ops,
            &journal,
            &Gate::new(),
            &one(repair, Some(i)),
            &settings(),
        )
        .await;
        assert!(done[0].ok);
        assert_eq!(
            done[0].failed,
            Some((5, "sso: upgrade to 2.0.0 failed".to_owned()))
        );
    }

    #[tokio::test]
    async fn nothing_and_leave_alone_do_nothing() {
        let ops = Script::default();
        let journal = MemoryJournal::default();
        let done = run(
            &ops,
            &journal,
            &Gate::new(),
            &one(
                Repair::LeaveAlone {
                    status: ReleaseStatus::PendingUpgrade,
                    age: None,
                },
                None,
            ),
            &settings(),
        )
        .await;
        assert!(done.is_empty());
        assert!(ops.calls().is_empty());
    }

    #[tokio::test]
    async fn a_recheck_the_api_server_does_not_answer_keeps_the_intent_and_rolls_nothing_back() {
        let ops = Script::default();
        ops.then_health(Ok(crate::agent::ops::script::unobserved()));
        let journal = MemoryJournal::default();
        let i = intent(OperationKind::Upgrade, Some(2), 5);
        journal.begin(i.clone()).await.unwrap();
        let repair = Repair::Recheck {
            revision: 3,
            undo: Some(Undo::Rollback(2)),
        };
        let done = run(
            &ops,
            &journal,
            &Gate::new(),
            &one(repair, Some(i)),
            &settings(),
        )
        .await;
        assert_eq!(ops.calls(), ["health apps/wiki"], "no rollback");
        assert!(!done[0].ok);
        assert!(
            done[0]
                .message
                .contains("not confirmed (the API server did not answer"),
            "{}",
            done[0].message
        );
        assert_eq!(done[0].failed, None, "the sequence is not failed");
        assert_eq!(journal.current().len(), 1, "checked again next time");
        assert_eq!(journal.current()[0].operation, OperationKind::Upgrade);
    }

    #[tokio::test]
    async fn a_recheck_cut_by_the_stop_grace_rolls_nothing_back() {
        let ops = Script {
            hang_health: true,
            ..Script::default()
        };
        let journal = MemoryJournal::default();
        let i = intent(OperationKind::Upgrade, Some(2), 5);
        journal.begin(i.clone()).await.unwrap();
        let gate = Gate::new();
        gate.stop(std::time::Duration::from_millis(50));
        let repair = Repair::Recheck {
            revision: 3,
            undo: Some(Undo::Rollback(2)),
        };
        let done = run(&ops, &journal, &gate, &one(repair, Some(i)), &settings()).await;
        assert_eq!(ops.calls(), ["health apps/wiki"], "no rollback");
        assert!(!done[0].ok);
        assert!(
            done[0].message.contains("the agent stopped first"),
            "{}",
            done[0].message
        );
        assert_eq!(journal.current().len(), 1);
    }
}
