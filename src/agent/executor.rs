//! Runs a [`Plan`] through helm in dependency order (each release as soon as
//! its own dependencies are done, see [`schedule`]): upgrade, check health, test,
//! and on failure roll back to exactly the revision noted before the upgrade
//! (or uninstall a failed first install). Dependents of a failed release are
//! skipped. With `rollbackPolicy: channel` every release this run already
//! changed is returned to its noted revision too, newest change first.
//!
//! The executor never lets helm wait or roll back by itself (see the helm
//! shim); it reports what it did as [`Operation`]s, per-release outcomes and
//! Event notes, and never puts values into any of them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use crate::crd::{
    HealthSummary, MAX_HEALTH_REASONS, Operation, OperationKind, OperationResult, ReleaseState,
    RollbackPolicy,
};
use crate::duration::Duration;
use crate::format::Timestamp;
use crate::health::{Health, HealthOptions, HealthOutcome, HealthReport};
use crate::helm::UpgradeOptions;
use crate::plan::{Action, ActionKind, Plan, ReleaseId};
use crate::site_verify::describe;

use super::backup::{BackupRequest, BackupTarget};
use super::crds::{CrdApply, CrdChanges};
use super::events::{Note, reason};
use super::gate::Gate;
use super::intent::Journal;
use super::ops::Operator;
use super::restore::RestoreTarget;
use super::schedule::{self, Admit};
use crate::chart::crds::ChartCrd;
use crate::crd::{Intent, VeleroSettings};

/// How a plan is executed.
#[derive(Debug, Clone)]
pub struct ExecSettings {
    /// What a failure rolls back.
    pub policy: RollbackPolicy,
    /// Most releases run at the same time (each when its dependencies are done).
    pub concurrency: usize,
    /// Health timeout per action (already resolved from the index and the spec).
    pub timeouts: BTreeMap<String, Duration>,
    /// Timeout for releases missing from `timeouts`.
    pub default_timeout: Duration,
    /// Revision to return to per release (the last deployed one).
    pub rollback_to: BTreeMap<ReleaseId, u32>,
    /// Local chart archive per release, downloaded and verified before.
    pub charts: BTreeMap<String, PathBuf>,
    /// The CRDs of the chart's `crds/` per release whose CRD policy has the
    /// agent apply them, read from the verified archive.
    pub crds: BTreeMap<String, Vec<ChartCrd>>,
    /// The agent's own release: changed only when every other release of
    /// the run ended healthy (the planner puts it last).
    pub agent_release: Option<ReleaseId>,
    /// The backup to take before upgrading each release that gets one (the
    /// index's policy as the subscription changes it; `Err`: an override
    /// that cannot be used).
    pub backups: BTreeMap<String, Result<BackupRequest, String>>,
    /// Velero's namespace and how long a backup may take.
    pub velero: VeleroSettings,
    /// The subscription's namespace and name (for the restore command).
    pub subscription: (String, String),
}

/// Where one release of the plan ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseOutcome {
    /// The release.
    pub release: String,
    /// Its namespace.
    pub namespace: String,
    /// Its state now.
    pub state: ReleaseState,
    /// The chart version installed now, if any.
    pub version: Option<String>,
    /// The version the run aimed at.
    pub desired_version: Option<String>,
    /// The helm revision now, if any.
    pub revision: Option<u32>,
    /// Why, for people.
    pub message: String,
    /// A pin selected the version.
    pub pinned: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct ExecReport {
    /// One per action of the plan.
    pub outcomes: Vec<ReleaseOutcome>,
    /// Every helm operation, in the order they finished.
    pub operations: Vec<OperationDetail>,
    /// The first failure, naming the release and why.
    pub failure: Option<String>,
    /// Releases not started (or not confirmed) because the agent stopped or
    /// lost its lease; the next check continues where this one ended.
    pub stopped: Vec<String>,
    /// The earliest time a release the rollout gate held at its start may start.
    pub wake: Option<Timestamp>,
}

/// One object's readiness at the end of a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHealth {
    /// `Deployment`, `StatefulSet`, ...
    pub kind: String,
    /// Its namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Ready, not yet, or failed.
    pub state: ObjectState,
    /// Why it is not ready.
    pub reason: Option<String>,
}

/// The readiness of an object, without its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    /// Reconciled and ready.
    Current,
    /// Not ready when the check ended.
    InProgress,
    /// Will not become ready without a change.
    Failed,
}

impl ObjectState {
    /// A stable label (`current`, `inProgress`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::InProgress => "inProgress",
            Self::Failed => "failed",
        }
    }
}

/// A health check, object by object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthDetail {
    /// Every object became ready.
    pub healthy: bool,
    /// How long it took.
    pub elapsed: std::time::Duration,
    /// Why it failed or timed out.
    pub reason: Option<String>,
    /// The API server did not answer (the reason says so): the release is
    /// neither healthy nor unhealthy, its check is made again later.
    pub unobserved: bool,
    /// Every object of the release's manifest.
    pub objects: Vec<ObjectHealth>,
}

impl HealthDetail {
    /// The detail of a finished health check.
    pub fn from_report(report: &HealthReport) -> Self {
        let objects = report
            .objects
            .iter()
            .map(|o| {
                let (state, reason) = match &o.health {
                    Health::Current => (ObjectState::Current, None),
                    Health::InProgress(r) => (ObjectState::InProgress, Some(r.clone())),
                    Health::Failed(r) => (ObjectState::Failed, Some(r.clone())),
                };
                ObjectHealth {
                    kind: o.object.kind.clone(),
                    namespace: o.object.namespace.clone(),
                    name: o.object.name.clone(),
                    state,
                    reason,
                }
            })
            .collect();
        Self {
            healthy: report.outcome.is_healthy(),
            elapsed: report.elapsed,
            reason: report.outcome.reason().map(str::to_owned),
            unobserved: matches!(report.outcome, HealthOutcome::Unobserved(_)),
            objects,
        }
    }

    /// A check that could not be made because the API server did not answer.
    pub fn unobserved(why: String, elapsed: std::time::Duration) -> Self {
        Self {
            healthy: false,
            elapsed,
            reason: Some(why),
            unobserved: true,
            objects: Vec::new(),
        }
    }

    /// What the status keeps of it.
    pub fn summary(&self) -> HealthSummary {
        HealthSummary {
            healthy: self.healthy,
            duration: Duration::from_secs(self.elapsed.as_secs()),
            objects: u32::try_from(self.objects.len()).unwrap_or(u32::MAX),
            not_ready: self
                .objects
                .iter()
                .filter_map(|o| o.reason.as_deref())
                .take(MAX_HEALTH_REASONS)
                .map(|r| super::events::truncate(r, 300))
                .collect(),
        }
    }
}

/// An operation as the status records it, plus what only memory keeps: the
/// exact elapsed time and the health check object by object.
#[derive(Debug, Clone)]
pub struct OperationDetail {
    /// The record written to `status.history`.
    pub operation: Operation,
    /// Wall time of the operation, health check and tests included.
    pub elapsed: std::time::Duration,
    /// The health check that followed it, if one ran.
    pub health: Option<HealthDetail>,
}

impl ExecReport {
    /// True when something failed (and was rolled back or not).
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }
}

/// Why an install or upgrade did not end healthy.
enum Failure {
    /// Failed (the revision helm made, if any, and why).
    Failed(Option<u32>, String),
    /// This revision was deployed, but its health is not known (the agent
    /// stopped, or the API server did not answer); why.
    Interrupted(u32, String),
    /// helm failed while the API server did not answer: the call was cut
    /// off and says nothing about the chart; why.
    CutOff(String),
}

#[derive(Debug, Clone, Copy)]
enum Undo {
    Rollback(u32),
    Uninstall,
}

struct Applied {
    outcome: ReleaseOutcome,
    operations: Vec<OperationDetail>,
    /// For a success: how to undo it (channel policy).
    undo: Option<Undo>,
    /// For a failure: why.
    failure: Option<String>,
    /// Not started, or its health check not confirmed, because the gate
    /// closed (the agent stops or lost its lease): neither done nor failed.
    stopped: bool,
}

/// Runs plans.
pub struct Executor<'a> {
    /// Helm and the health check ([`super::ops::ClusterOperator`]; scripted in tests).
    pub ops: &'a dyn Operator,
    /// Where Event notes go as they happen.
    pub notes: Option<UnboundedSender<Note>>,
    /// Where steps are announced as they start and end, for the UI.
    pub progress: Option<UnboundedSender<Progress>>,
    /// Where each operation is recorded before it starts (write-ahead intent).
    pub journal: &'a dyn Journal,
    /// Closed when the agent stops or loses its lease: no new operation starts.
    pub gate: &'a Gate,
    /// This agent's identity in the intents.
    pub holder: &'a str,
}

/// Why a health check that was cut short by a stop says nothing.
pub(crate) const STOPPED: &str = "the agent stopped first";

/// How a health check ended.
enum Checked {
    Healthy,
    Unhealthy(String),
    /// Nothing is known: the grace period after a stop ran out first, or the
    /// API server did not answer. Why, as a clause.
    Unknown(String),
}

/// A step of a running plan, for the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// `namespace/release`.
    pub release: String,
    /// What is happening, or what came of it.
    pub message: String,
    /// The release's part of the run is over.
    pub done: bool,
}

/// The state of one run of a plan, as the scheduler drives it.
struct Run<'e, 'a> {
    executor: &'e Executor<'a>,
    sequence: u64,
    policy: RollbackPolicy,
    agent_release: Option<ReleaseId>,
    report: ExecReport,
    /// What succeeded, in the order it ended, and how to undo it.
    done: Vec<(Action, Undo, ReleaseOutcome)>,
    /// A failure under `rollbackPolicy: channel`: nothing more starts.
    stop: bool,
}

impl Run<'_, '_> {
    fn skip(&mut self, action: &Action, message: String) {
        self.executor.note(Note::warning(
            reason::SKIPPED,
            "Skip",
            format!("{}/{}: {message}", action.namespace, action.release),
        ));
        self.report
            .outcomes
            .push(skipped(action, self.sequence, message));
    }
}

impl schedule::Hooks<Action> for Run<'_, '_> {
    type Output = Applied;

    fn admit(&mut self, action: &Action, blocker: Option<(&Action, &'static str)>) -> Admit {
        let is_agent = self
            .agent_release
            .as_ref()
            .is_some_and(|r| r.name == action.release && r.namespace == action.namespace);
        let unfinished = self.report.failure.is_some() || !self.report.stopped.is_empty();
        if is_agent && !self.stop && unfinished {
            let message = "not attempted: the agent's own release is updated only when \
                           every other release of the run is healthy"
                .to_owned();
            self.skip(action, message);
            Admit::Skip("not attempted")
        } else if self.stop {
            let why = format!(
                "not attempted: {} (rollbackPolicy channel)",
                self.report
                    .failure
                    .as_deref()
                    .unwrap_or("an earlier release failed")
            );
            self.report
                .outcomes
                .push(skipped(action, self.sequence, why));
            Admit::Skip("not attempted")
        } else if let Some((dependency, why)) = blocker {
            let message = format!(
                "waits for dependency `{}`, which {why} in this run",
                dependency.release
            );
            self.report.operations.push(op(
                action,
                OperationKind::Skip,
                self.sequence,
                Timestamp::now(),
                Instant::now(),
                OperationResult::Succeeded,
                message.clone(),
                None,
                None,
                None,
            ));
            self.skip(action, message);
            Admit::Skip("was skipped")
        } else if let Some(crate::rollout::Gate::Wait(why)) = action
            .start_gate
            .as_ref()
            .map(|g| g.check(Timestamp::now()))
        {
            // Checked again now, not only at plan time: a release starts when its
            // dependencies finished, and its window may have closed (or no longer
            // leaves room for its timeouts) meanwhile.
            let message = format!("not started: {why}");
            self.executor.note(Note::normal(
                reason::WAITING_FOR_ROLLOUT,
                "Wait",
                format!("{}/{}: {message}", action.namespace, action.release),
            ));
            let mut outcome = skipped(action, self.sequence, message);
            outcome.state = ReleaseState::Waiting;
            self.report.outcomes.push(outcome);
            self.report.wake = match (self.report.wake, why.until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            Admit::Skip("waits for its maintenance window")
        } else {
            Admit::Run
        }
    }

    fn finished(&mut self, action: &Action, applied: Applied) -> Option<&'static str> {
        self.report.operations.extend(applied.operations);
        if applied.stopped {
            self.report.stopped.push(action.release.clone());
            self.report.outcomes.push(applied.outcome);
            return Some("was not finished");
        }
        let verdict = match applied.failure {
            Some(why) => {
                if self.report.failure.is_none() {
                    self.report.failure = Some(format!("{}: {why}", action.release));
                }
                if self.policy == RollbackPolicy::Channel {
                    self.stop = true;
                }
                Some("failed")
            }
            None => {
                if let Some(undo) = applied.undo {
                    self.done
                        .push((action.clone(), undo, applied.outcome.clone()));
                }
                None
            }
        };
        self.report.outcomes.push(applied.outcome);
        verdict
    }
}

impl Executor<'_> {
    fn send_progress(&self, namespace: &str, release: &str, message: String, done: bool) {
        if let Some(tx) = &self.progress {
            // The receiver only goes away when the reconcile ends; nothing to do then.
            let _ = tx.send(Progress {
                release: format!("{namespace}/{release}"),
                message,
                done,
            });
        }
    }

    fn progress(&self, namespace: &str, release: &str, what: String) {
        self.send_progress(namespace, release, what, false);
    }

    fn finished(&self, namespace: &str, release: &str, what: &str) {
        self.send_progress(namespace, release, what.to_owned(), true);
    }

    fn note(&self, note: Note) {
        tracing::info!(reason = note.reason, action = note.action, message = %note.message, "event");
        if let Some(tx) = &self.notes {
            // The receiver only goes away when the reconcile ends; nothing to do then.
            let _ = tx.send(note);
        }
    }

    /// Executes `plan` with `settings`: each action starts as soon as the
    /// actions it depends on ended (not when their whole layer did), at most
    /// `settings.concurrency` at a time; the agent's own release waits for
    /// every other one.
    pub async fn run(&self, plan: &Plan, settings: &ExecSettings) -> ExecReport {
        let actions: Vec<Action> = plan.layers.iter().flatten().cloned().collect();
        let is_agent = |action: &Action| {
            settings
                .agent_release
                .as_ref()
                .is_some_and(|r| r.name == action.release && r.namespace == action.namespace)
        };
        let depends_on: Vec<Vec<usize>> = actions
            .iter()
            .enumerate()
            .map(|(i, action)| {
                if is_agent(action) {
                    return (0..i).collect();
                }
                action
                    .target
                    .depends_on
                    .iter()
                    .filter_map(|d| actions[..i].iter().position(|a| a.release == *d))
                    .collect()
            })
            .collect();
        let mut run = Run {
            executor: self,
            sequence: plan.sequence,
            policy: settings.policy,
            agent_release: settings.agent_release.clone(),
            report: ExecReport::default(),
            done: Vec::new(),
            stop: false,
        };
        let sequence = plan.sequence;
        schedule::run(
            &actions,
            &depends_on,
            settings.concurrency,
            &mut run,
            |action: &Action| async move { self.apply(action, sequence, settings).await },
        )
        .await;
        let Run {
            mut report,
            done,
            stop,
            ..
        } = run;
        if stop {
            let cause = report.failure.clone().unwrap_or_default();
            // Newest change first, so dependents go back before what they depend on.
            for (action, undo, _) in done.into_iter().rev() {
                let (outcome, ops) = self
                    .undo_for_channel(&action, undo, plan.sequence, settings, &cause)
                    .await;
                report.operations.extend(ops);
                if let Some(slot) = report
                    .outcomes
                    .iter_mut()
                    .find(|o| o.release == action.release)
                {
                    *slot = outcome;
                }
            }
        }
        report
    }

    fn timeout(&self, action: &Action, settings: &ExecSettings) -> Duration {
        settings
            .timeouts
            .get(&action.release)
            .copied()
            .unwrap_or(settings.default_timeout)
    }

    /// The backup the release's upgrade asks for, then the upgrade; a backup
    /// that fails leaves the release as it is and fails the sequence.
    async fn apply(&self, action: &Action, sequence: u64, settings: &ExecSettings) -> Applied {
        let wanted = match (&action.kind, settings.backups.get(&action.release)) {
            (ActionKind::Upgrade { .. }, Some(wanted)) => wanted,
            _ => return self.apply_release(action, sequence, settings).await,
        };
        if let Err(closed) = self.gate.may_mutate() {
            // Nothing starts after the gate closed; the next check continues.
            let message = format!("not started: {closed}; the next check continues");
            return self.not_started(action, sequence, message);
        }
        let (name, backup_op) = match self.backup(action, sequence, settings, wanted).await {
            Ok(done) => done,
            Err(failed) => return failed,
        };
        let mut applied = self.apply_release(action, sequence, settings).await;
        applied.operations.insert(0, backup_op);
        let auto_restore = matches!(wanted, Ok(request) if request.auto_restore);
        if auto_restore && rollback_left_unhealthy(&applied) {
            self.restore_after_rollback(action, sequence, settings, &name, &mut applied)
                .await;
        }
        let restored = applied
            .operations
            .last()
            .is_some_and(|o| o.operation.operation == OperationKind::Restore);
        if !restored
            && matches!(
                applied.outcome.state,
                ReleaseState::RolledBack | ReleaseState::Failed
            )
        {
            let (sub_ns, sub) = &settings.subscription;
            let hint = format!(
                "backup {name} holds namespace {} from before the upgrade; a rollback does not \
                 bring back data the upgrade changed: restore it with `coxswain restore \
                 --namespace {sub_ns} --subscription {sub} --release {} --backup {name}` \
                 (or `{}`)",
                action.namespace,
                action.release,
                super::backup::restore_command(
                    &settings.velero.namespace,
                    &action.namespace,
                    &name
                )
            );
            applied.outcome.message = format!("{}; {hint}", applied.outcome.message);
            if let Some(last) = applied.operations.last_mut() {
                last.operation.message =
                    super::events::truncate(&format!("{}; {hint}", last.operation.message), 2000);
            }
            self.note(Note::normal(
                reason::RESTORE_AVAILABLE,
                "Rollback",
                format!("{}/{}: {hint}", action.namespace, action.release),
            ));
        }
        applied
    }

    /// The channel's `autoRestore`: the rollback left the release unhealthy,
    /// so the backup taken before the upgrade is restored over its namespace
    /// and its health checked once more; recorded as a `restore` operation.
    async fn restore_after_rollback(
        &self,
        action: &Action,
        sequence: u64,
        settings: &ExecSettings,
        backup: &str,
        applied: &mut Applied,
    ) {
        let started = Timestamp::now();
        let clock = Instant::now();
        let (ns, release) = (&action.namespace, &action.release);
        let id = ReleaseId::new(ns, release);
        let restore = super::backup::restore_name(backup, started);
        self.progress(
            ns,
            release,
            format!(
                "the rollback left the release unhealthy; restoring backup {backup} (autoRestore)"
            ),
        );
        let target = RestoreTarget {
            name: &restore,
            velero_namespace: &settings.velero.namespace,
            backup,
            release,
            namespace: ns,
        };
        let (healthy, message, detail) = match self
            .ops
            .restore(&target, settings.velero.timeout.to_std())
            .await
        {
            Err(why) => (
                false,
                format!("automatic restore of backup {backup} failed: {why}"),
                None,
            ),
            Ok(()) => {
                let timeout = self.timeout(action, settings);
                match self.check_health(action, timeout, None).await {
                    (Checked::Healthy, detail) => (
                        true,
                        format!("restored backup {backup} ({restore}, autoRestore): healthy"),
                        detail,
                    ),
                    (Checked::Unhealthy(why) | Checked::Unknown(why), detail) => (
                        false,
                        format!(
                            "restored backup {backup} ({restore}, autoRestore), still not healthy: {why}"
                        ),
                        detail,
                    ),
                }
            }
        };
        tracing::info!(release = %id, backup, healthy, "automatic restore");
        self.note(if healthy {
            Note::normal(reason::RESTORED, "Restore", format!("{id}: {message}"))
        } else {
            Note::warning(reason::RESTORED, "Restore", format!("{id}: {message}"))
        });
        applied.operations.push(op(
            action,
            OperationKind::Restore,
            sequence,
            started,
            clock,
            if healthy {
                OperationResult::Succeeded
            } else {
                OperationResult::Failed
            },
            message.clone(),
            None,
            None,
            detail,
        ));
        if healthy {
            applied.outcome.state = ReleaseState::RolledBack;
        }
        applied.outcome.message = format!("{}; {message}", applied.outcome.message);
        self.finished(ns, release, &message);
    }

    /// A release the run did not start (the gate closed, or its intent could
    /// not be recorded): neither done nor failed.
    fn not_started(&self, action: &Action, sequence: u64, message: String) -> Applied {
        self.finished(&action.namespace, &action.release, &message);
        let mut outcome = skipped(action, sequence, message);
        outcome.pinned = action.pinned;
        Applied {
            outcome,
            operations: Vec::new(),
            undo: None,
            failure: None,
            stopped: true,
        }
    }

    /// Takes the backup before an upgrade: its name and operation, or the
    /// release's outcome when it failed (nothing else was started).
    async fn backup(
        &self,
        action: &Action,
        sequence: u64,
        settings: &ExecSettings,
        wanted: &Result<BackupRequest, String>,
    ) -> Result<(String, OperationDetail), Applied> {
        let started = Timestamp::now();
        let clock = Instant::now();
        let ns = &action.namespace;
        let release = &action.release;
        let name = super::backup::backup_name(release, sequence, started);
        let timeout = settings.velero.timeout;
        let result = match wanted {
            Err(why) => Err(why.clone()),
            Ok(request) => {
                self.progress(
                    ns,
                    release,
                    format!("backing up namespace {ns} with Velero ({name}, timeout {timeout})"),
                );
                let target = BackupTarget {
                    name: &name,
                    velero_namespace: &settings.velero.namespace,
                    release,
                    namespace: ns,
                    sequence,
                    request: *request,
                };
                self.ops.backup(&target, timeout.to_std()).await
            }
        };
        let id = ReleaseId::new(ns, release);
        match result {
            Ok(()) => {
                let message = format!(
                    "velero backup {name} of namespace {ns} completed in {}s",
                    clock.elapsed().as_secs()
                );
                tracing::info!(release = %id, backup = %name, "backed up before the upgrade");
                self.note(Note::normal(
                    reason::BACKED_UP,
                    "Backup",
                    format!("{id}: {message}"),
                ));
                self.progress(ns, release, message.clone());
                let operation = op(
                    action,
                    OperationKind::Backup,
                    sequence,
                    started,
                    clock,
                    OperationResult::Succeeded,
                    message,
                    None,
                    None,
                    None,
                );
                Ok((name, operation))
            }
            Err(why) => {
                let to = &action.target.chart.version;
                let message = format!(
                    "backup before the upgrade to {to} failed: {why}; the upgrade did not start"
                );
                tracing::warn!(release = %id, backup = %name, reason = %why, "backup failed");
                self.note(Note::warning(
                    reason::BACKUP_FAILED,
                    "Backup",
                    format!("{id}: {message}"),
                ));
                let operation = op(
                    action,
                    OperationKind::Backup,
                    sequence,
                    started,
                    clock,
                    OperationResult::Failed,
                    why.clone(),
                    None,
                    None,
                    None,
                );
                self.finished(ns, release, &message);
                // Blocked, not failed: the release runs as before, untouched.
                let mut outcome = skipped(action, sequence, message.clone());
                outcome.state = ReleaseState::Blocked;
                outcome.pinned = action.pinned;
                Err(Applied {
                    outcome,
                    operations: vec![operation],
                    undo: None,
                    failure: Some(message),
                    stopped: false,
                })
            }
        }
    }

    /// Upgrade (or install), health, test; on failure undo.
    async fn apply_release(
        &self,
        action: &Action,
        sequence: u64,
        settings: &ExecSettings,
    ) -> Applied {
        let started = Timestamp::now();
        let clock = Instant::now();
        let name = &action.release;
        let ns = &action.namespace;
        let id = ReleaseId::new(ns, name);
        let timeout = self.timeout(action, settings);
        let (kind, from_version, noted) = match &action.kind {
            ActionKind::Install => (OperationKind::Install, None, None),
            ActionKind::Upgrade { from_version, .. } => (
                OperationKind::Upgrade,
                Some(from_version.clone()),
                settings.rollback_to.get(&id).copied(),
            ),
        };
        let to_version = action.target.chart.version.clone();
        // `from` as the chart writes it (`4.15.2`), or `none` for an install.
        let from = from_version.as_deref().unwrap_or("none");
        tracing::info!(release = %id, from = %from, to = %to_version, reason = %action.reason, "applying");
        self.progress(
            ns,
            name,
            match &from_version {
                Some(from) if *from == to_version => format!("upgrading: {}", action.reason),
                Some(from) => format!("upgrading {from} -> {to_version}"),
                None => format!("installing {to_version}"),
            },
        );
        let begun = match self.gate.may_mutate() {
            Err(closed) => Err(format!("not started: {closed}; the next check continues")),
            Ok(()) => self
                .journal
                .begin(Intent {
                    release: name.clone(),
                    namespace: ns.clone(),
                    operation: kind,
                    from_revision: noted,
                    to_revision: None,
                    fingerprint: action.fingerprint.to_string(),
                    sequence,
                    started,
                    holder: self.holder.to_owned(),
                    cause: None,
                })
                .await
                .map_err(|e| format!("not started: {}; the next check retries", describe(&e))),
        };
        if let Err(message) = begun {
            return self.not_started(action, sequence, message);
        }
        let (result, health, crds_done) = self.upgrade_and_check(action, settings, timeout).await;
        // The CRDs stay as applied whatever follows (they are never deleted),
        // so the operation says so, failed or not.
        let with_crds = |text: String| match &crds_done {
            Some(line) => format!("{text}; {line}"),
            None => text,
        };
        let (new_revision, failure) = match result {
            Ok(revision) => (Some(revision), None),
            Err(Failure::Interrupted(revision, why)) => {
                let message = format!(
                    "revision {revision} deployed; its health was not confirmed ({why}): checked again at the next check"
                );
                return self.left_upgrading(action, sequence, Some(revision), message);
            }
            Err(Failure::CutOff(why)) => {
                let message = format!(
                    "helm was cut off by the API server: {why}; the next check repairs the release and applies the sequence again"
                );
                return self.left_upgrading(action, sequence, None, message);
            }
            Err(Failure::Failed(revision, why)) => (revision, Some(why)),
        };
        if failure.is_none() {
            self.end(ns, name).await;
        }
        let verb = if kind == OperationKind::Install {
            "installed"
        } else {
            "upgraded"
        };
        let Some(why) = failure else {
            let message = match &from_version {
                Some(from) => format!(
                    "{verb} {from} -> {to_version} (revision {}, sequence {sequence})",
                    new_revision.unwrap_or_default()
                ),
                None => format!(
                    "{verb} {to_version} (revision {}, sequence {sequence})",
                    new_revision.unwrap_or_default()
                ),
            };
            let message = with_crds(message);
            self.note(Note::normal(
                if kind == OperationKind::Install {
                    reason::INSTALLED
                } else {
                    reason::UPGRADED
                },
                if kind == OperationKind::Install {
                    "Install"
                } else {
                    "Upgrade"
                },
                format!("{id}: {message}"),
            ));
            let operation = op(
                action,
                kind,
                sequence,
                started,
                clock,
                OperationResult::Succeeded,
                with_crds(action.reason.clone()),
                noted,
                new_revision,
                health,
            );
            self.finished(ns, name, &message);
            return Applied {
                outcome: ReleaseOutcome {
                    release: name.clone(),
                    namespace: ns.clone(),
                    state: ReleaseState::UpToDate,
                    version: Some(to_version.clone()),
                    desired_version: Some(action.step_toward.clone().unwrap_or(to_version.clone())),
                    revision: new_revision,
                    message,
                    pinned: action.pinned,
                },
                operations: vec![operation],
                undo: Some(match noted {
                    Some(rev) => Undo::Rollback(rev),
                    None => Undo::Uninstall,
                }),
                failure: None,
                stopped: false,
            };
        };

        // Failed: record it, then return to the noted revision.
        let what = if kind == OperationKind::Install {
            "install"
        } else {
            "upgrade"
        };
        self.note(Note::warning(
            reason::UPGRADE_FAILED,
            if kind == OperationKind::Install {
                "Install"
            } else {
                "Upgrade"
            },
            format!("{id}: {what} to {to_version} failed: {why}"),
        ));
        let mut operations = vec![op(
            action,
            kind,
            sequence,
            started,
            clock,
            OperationResult::Failed,
            with_crds(why.clone()),
            noted,
            new_revision,
            health,
        )];
        let (state, revision, version, message, undo_op) = match noted {
            Some(rev) => {
                let (ok, revision, detail, operation) = self
                    .rollback(
                        action,
                        rev,
                        new_revision,
                        sequence,
                        timeout,
                        (&format!("{what} to {to_version} failed"), &why),
                    )
                    .await;
                let state = if ok {
                    ReleaseState::RolledBack
                } else {
                    ReleaseState::Failed
                };
                (
                    state,
                    revision,
                    from_version.clone(),
                    format!("{what} to {to_version} failed: {why}; {detail}"),
                    operation,
                )
            }
            None => {
                let (ok, detail, operation) = self
                    .uninstall(
                        action,
                        new_revision,
                        sequence,
                        timeout,
                        &format!("{what} of {to_version} failed: {why}"),
                    )
                    .await;
                let state = if ok {
                    ReleaseState::RolledBack
                } else {
                    ReleaseState::Failed
                };
                (
                    state,
                    None,
                    None,
                    format!("{what} of {to_version} failed: {why}; {detail}"),
                    operation,
                )
            }
        };
        let mut undo_op = undo_op;
        // The revision the failed upgrade left, which the rollback replaces.
        undo_op.operation.from_revision = new_revision;
        operations.push(undo_op);
        self.finished(ns, name, &message);
        Applied {
            outcome: ReleaseOutcome {
                release: name.clone(),
                namespace: ns.clone(),
                state,
                version,
                desired_version: Some(action.step_toward.clone().unwrap_or(to_version)),
                revision,
                message,
                pinned: action.pinned,
            },
            operations,
            undo: None,
            failure: Some(why),
            stopped: false,
        }
    }

    /// `helm upgrade --install`, then health, then `helm test` when asked.
    /// Returns the new revision, or the revision (if one was made) and why it
    /// failed; and the health check, if it ran.
    async fn upgrade_and_check(
        &self,
        action: &Action,
        settings: &ExecSettings,
        timeout: Duration,
    ) -> (Result<u32, Failure>, Option<HealthDetail>, Option<String>) {
        let mut health = None;
        let mut crds = None;
        let result = self
            .upgrade_check_test(action, settings, timeout, &mut health, &mut crds)
            .await;
        (result, health, crds)
    }

    /// Applies the chart's CRDs when the release's policy asks for it, before
    /// helm runs; what was written, for people (`None`: nothing).
    async fn apply_crds(
        &self,
        action: &Action,
        settings: &ExecSettings,
        how: CrdApply,
        timeout: Duration,
    ) -> Result<Option<String>, Failure> {
        let name = &action.release;
        let ns = &action.namespace;
        let policy = action.target.crds.map_or("", |p| p.as_str());
        let Some(crds) = settings.crds.get(name) else {
            return Err(Failure::Failed(
                None,
                format!("crds {policy}: the chart's CRDs were not read"),
            ));
        };
        if crds.is_empty() {
            return Ok(None);
        }
        self.progress(
            ns,
            name,
            format!("crds {policy}: applying {} CRD(s) of the chart", crds.len()),
        );
        let id = ReleaseId::new(ns, name);
        let changes: CrdChanges = match self.ops.apply_crds(&id, crds, how, timeout.to_std()).await
        {
            Ok(changes) => changes,
            Err(why) => {
                if let Some(down) = self.ops.api_unreachable().await {
                    return Err(Failure::CutOff(format!("crds {policy}: {why} ({down})")));
                }
                return Err(Failure::Failed(None, format!("crds {policy}: {why}")));
            }
        };
        let Some(done) = super::crds::summary(&changes) else {
            return Ok(None);
        };
        let line = format!("crds {policy}: {done}");
        tracing::info!(release = %id, policy, crds = %done, "applied the chart's CRDs");
        self.note(Note::normal(
            reason::CRDS_APPLIED,
            "Upgrade",
            format!("{id}: {line}"),
        ));
        self.progress(ns, name, line.clone());
        Ok(Some(line))
    }

    async fn upgrade_check_test(
        &self,
        action: &Action,
        settings: &ExecSettings,
        timeout: Duration,
        health: &mut Option<HealthDetail>,
        crds_done: &mut Option<String>,
    ) -> Result<u32, Failure> {
        let name = &action.release;
        let ns = &action.namespace;
        let Some(chart) = settings.charts.get(name) else {
            return Err(Failure::Failed(
                None,
                "chart archive was not downloaded".to_owned(),
            ));
        };
        let crd_step = super::crds::step(action.target.crds);
        if let Some(how) = crd_step.apply {
            *crds_done = self.apply_crds(action, settings, how, timeout).await?;
        }
        let opts = UpgradeOptions {
            description: Some(action.fingerprint.to_string()),
            timeout: timeout.to_std(),
            create_namespace: true,
            skip_crds: crd_step.skip_crds,
            ..UpgradeOptions::default()
        };
        let values = serde_json::Value::Object(action.target.values.clone());
        let id = ReleaseId::new(ns, name);
        let (revision, manifest) = match self.ops.upgrade(&id, chart, &values, &opts).await {
            Ok(made) => (made.revision, made.manifest),
            Err(why) => {
                // Rolling back (and failing the sequence) for an outage would
                // blame the chart; the intent stays and the next check
                // repairs whatever helm left.
                if let Some(down) = self.ops.api_unreachable().await {
                    return Err(Failure::CutOff(format!("{why} ({down})")));
                }
                return Err(Failure::Failed(None, why));
            }
        };
        self.progress(
            ns,
            name,
            format!("revision {revision} deployed; checking health (timeout {timeout})"),
        );
        let (checked, detail) = self
            .check_health(action, timeout, manifest.as_deref())
            .await;
        *health = detail;
        match checked {
            Checked::Healthy => {}
            Checked::Unhealthy(why) => return Err(Failure::Failed(Some(revision), why)),
            Checked::Unknown(why) => return Err(Failure::Interrupted(revision, why)),
        }
        if action.target.health.test {
            self.progress(ns, name, "healthy; running helm test".to_owned());
            self.ops
                .test(&id, timeout.to_std())
                .await
                .map_err(|why| Failure::Failed(Some(revision), why))?;
        }
        Ok(revision)
    }

    /// An operation that stopped without a verdict (the agent stopping, the
    /// API server gone): the release stays `upgrading`, its intent stays
    /// recorded, and the next check (or the next leader) takes it up.
    fn left_upgrading(
        &self,
        action: &Action,
        sequence: u64,
        revision: Option<u32>,
        message: String,
    ) -> Applied {
        self.finished(&action.namespace, &action.release, &message);
        let mut outcome = skipped(action, sequence, message);
        outcome.state = ReleaseState::Upgrading;
        if revision.is_some() {
            outcome.revision = revision;
        }
        Applied {
            outcome,
            operations: Vec::new(),
            undo: None,
            failure: None,
            stopped: true,
        }
    }

    /// Removes the intent of a finished operation; a failure to write is
    /// logged (the next start finds the intent and checks the release again).
    async fn end(&self, ns: &str, name: &str) {
        if let Err(e) = self.journal.end(ns, name).await {
            tracing::warn!(release = %format!("{ns}/{name}"), error = %describe(&e), "cannot clear the operation's intent; the next start checks the release again");
        }
    }

    /// Records an undo (rollback or uninstall) before it starts. An undo
    /// runs even when the gate is closed or the record fails: returning to
    /// the noted revision is always safer than leaving a failed one.
    async fn begin_undo(
        &self,
        action: &Action,
        operation: OperationKind,
        from_revision: Option<u32>,
        to_revision: Option<u32>,
        sequence: u64,
        cause: &str,
    ) {
        let intent = Intent {
            release: action.release.clone(),
            namespace: action.namespace.clone(),
            operation,
            from_revision,
            to_revision,
            fingerprint: String::new(),
            sequence,
            started: Timestamp::now(),
            holder: self.holder.to_owned(),
            cause: Some(super::events::truncate(cause, 1000)),
        };
        if let Err(e) = self.journal.begin(intent).await {
            tracing::warn!(release = %format!("{}/{}", action.namespace, action.release), error = %describe(&e), "cannot record the undo before it starts; undoing anyway");
        }
    }

    /// Checks the release's objects; the detail is there when the check ran.
    /// Ends [`Checked::Unknown`] when the grace period after a stop runs
    /// out first.
    async fn check_health(
        &self,
        action: &Action,
        timeout: Duration,
        manifest: Option<&str>,
    ) -> (Checked, Option<HealthDetail>) {
        let id = ReleaseId::new(&action.namespace, &action.release);
        let options = HealthOptions::from(&action.target.health);
        let check = async {
            match self
                .ops
                .health(&id, &options, timeout.to_std(), manifest)
                .await
            {
                Err(why) => (Checked::Unhealthy(why), None),
                Ok(detail) => {
                    let why = detail
                        .reason
                        .clone()
                        .unwrap_or_else(|| "not healthy".to_owned());
                    let result = if detail.healthy {
                        Checked::Healthy
                    } else if detail.unobserved {
                        Checked::Unknown(why)
                    } else {
                        Checked::Unhealthy(why)
                    };
                    (result, Some(detail))
                }
            }
        };
        tokio::select! {
            done = check => done,
            () = self.gate.grace_over() => (Checked::Unknown(STOPPED.to_owned()), None),
        }
    }

    /// Rolls back to `revision` and checks health again. Returns whether the
    /// release is healthy there, its revision now, a sentence, and the operation.
    /// `cause` is what the history shows; `why`, the failure, is kept in the
    /// intent so a repair after a kill can fail the sequence with it.
    async fn rollback(
        &self,
        action: &Action,
        revision: u32,
        from_revision: Option<u32>,
        sequence: u64,
        timeout: Duration,
        (cause, why): (&str, &str),
    ) -> (bool, Option<u32>, String, OperationDetail) {
        let started = Timestamp::now();
        let clock = Instant::now();
        let name = &action.release;
        let ns = &action.namespace;
        let id = ReleaseId::new(ns, name);
        let mut health = None;
        self.progress(
            ns,
            name,
            format!("rolling back to revision {revision} ({cause})"),
        );
        self.begin_undo(
            action,
            OperationKind::Rollback,
            from_revision,
            Some(revision),
            sequence,
            &if why.is_empty() {
                cause.to_owned()
            } else {
                format!("{cause}: {why}")
            },
        )
        .await;
        let mut keep_intent = None;
        let mut now_revision = None;
        let result = match self.ops.rollback(&id, revision, timeout.to_std()).await {
            Err(why) => {
                keep_intent = Some("helm refused");
                Err(why)
            }
            Ok(made) => {
                now_revision = made;
                // A rollback prints no manifest: helm's is read.
                let (checked, detail) = self.check_health(action, timeout, None).await;
                health = detail;
                match checked {
                    Checked::Healthy => Ok(()),
                    Checked::Unhealthy(why) => Err(format!(
                        "rolled back to revision {revision}, which is not healthy either: {why}"
                    )),
                    Checked::Unknown(why) => {
                        keep_intent = Some("not confirmed");
                        Err(format!(
                            "rolled back to revision {revision}; its health was not confirmed ({why}): checked again at the next check"
                        ))
                    }
                }
            }
        };
        // A rollback helm refused, or one whose health is not known yet, keeps
        // its intent: the next start's repair finishes it. One that ran and
        // was checked has a known outcome.
        if keep_intent.is_none() {
            self.end(ns, name).await;
        }
        if now_revision.is_none() {
            now_revision = self.ops.revision(&id).await;
        }
        let (ok, detail, result_kind) = match result {
            Ok(()) => {
                self.note(Note::warning(
                    reason::ROLLED_BACK,
                    "Rollback",
                    format!("{id}: rolled back to revision {revision} ({cause})"),
                ));
                (
                    true,
                    format!("rolled back to revision {revision}"),
                    OperationResult::Succeeded,
                )
            }
            Err(why) => {
                self.note(Note::warning(
                    reason::ROLLBACK_FAILED,
                    "Rollback",
                    format!("{id}: {why}"),
                ));
                (false, why, OperationResult::Failed)
            }
        };
        let mut operation = op(
            action,
            OperationKind::Rollback,
            sequence,
            started,
            clock,
            result_kind,
            format!("{cause}; {detail}"),
            None,
            now_revision,
            health,
        );
        operation.operation.to = match &action.kind {
            ActionKind::Upgrade { from_version, .. } => Some(from_version.clone()),
            ActionKind::Install => None,
        };
        operation.operation.from = Some(action.target.chart.version.clone());
        (ok, now_revision, detail, operation)
    }

    async fn uninstall(
        &self,
        action: &Action,
        from_revision: Option<u32>,
        sequence: u64,
        timeout: Duration,
        cause: &str,
    ) -> (bool, String, OperationDetail) {
        let started = Timestamp::now();
        let clock = Instant::now();
        let name = &action.release;
        let ns = &action.namespace;
        self.progress(ns, name, "uninstalling the failed first install".to_owned());
        self.begin_undo(
            action,
            OperationKind::Uninstall,
            from_revision,
            None,
            sequence,
            cause,
        )
        .await;
        let id = ReleaseId::new(ns, name);
        let (ok, detail, result) = match self.ops.uninstall(&id, timeout.to_std()).await {
            Ok(()) => {
                self.end(ns, name).await;
                self.note(Note::warning(
                    reason::UNINSTALLED,
                    "Uninstall",
                    format!("{ns}/{name}: failed first install uninstalled"),
                ));
                (true, "uninstalled".to_owned(), OperationResult::Succeeded)
            }
            Err(why) => {
                self.note(Note::warning(
                    reason::ROLLBACK_FAILED,
                    "Uninstall",
                    format!("{ns}/{name}: {why}"),
                ));
                (false, why, OperationResult::Failed)
            }
        };
        let mut operation = op(
            action,
            OperationKind::Uninstall,
            sequence,
            started,
            clock,
            result,
            detail.clone(),
            None,
            None,
            None,
        );
        operation.operation.from = Some(action.target.chart.version.clone());
        operation.operation.to = None;
        (ok, detail, operation)
    }

    async fn undo_for_channel(
        &self,
        action: &Action,
        undo: Undo,
        sequence: u64,
        settings: &ExecSettings,
        cause: &str,
    ) -> (ReleaseOutcome, Vec<OperationDetail>) {
        let timeout = self.timeout(action, settings);
        let cause = format!("{cause} (rollbackPolicy channel)");
        let (ok, revision, version, detail, operation) = match undo {
            Undo::Rollback(rev) => {
                let (ok, revision, detail, operation) = self
                    .rollback(action, rev, None, sequence, timeout, (&cause, ""))
                    .await;
                let version = match &action.kind {
                    ActionKind::Upgrade { from_version, .. } => Some(from_version.clone()),
                    ActionKind::Install => None,
                };
                (ok, revision, version, detail, operation)
            }
            Undo::Uninstall => {
                let (ok, detail, operation) = self
                    .uninstall(action, None, sequence, timeout, &cause)
                    .await;
                (ok, None, None, detail, operation)
            }
        };
        let outcome = ReleaseOutcome {
            release: action.release.clone(),
            namespace: action.namespace.clone(),
            state: if ok {
                ReleaseState::RolledBack
            } else {
                ReleaseState::Failed
            },
            version,
            desired_version: Some(action.target.chart.version.clone()),
            revision,
            message: format!("{cause}; {detail}"),
            pinned: action.pinned,
        };
        self.finished(&action.namespace, &action.release, &outcome.message);
        (outcome, vec![operation])
    }
}

fn skipped(action: &Action, _sequence: u64, message: String) -> ReleaseOutcome {
    let (version, revision) = match &action.kind {
        ActionKind::Install => (None, None),
        ActionKind::Upgrade {
            from_version,
            from_revision,
            ..
        } => (Some(from_version.clone()), Some(*from_revision)),
    };
    ReleaseOutcome {
        release: action.release.clone(),
        namespace: action.namespace.clone(),
        state: ReleaseState::Skipped,
        version,
        desired_version: Some(action.target.chart.version.clone()),
        revision,
        message,
        pinned: action.pinned,
    }
}

/// Whether the release ended failed because its health after the rollback
/// was not good (not because helm refused the rollback, nor for want of an answer).
fn rollback_left_unhealthy(applied: &Applied) -> bool {
    applied.outcome.state == ReleaseState::Failed
        && applied.operations.last().is_some_and(|o| {
            o.operation.operation == OperationKind::Rollback
                && o.health
                    .as_ref()
                    .is_some_and(|h| !h.healthy && !h.unobserved)
        })
}

#[allow(clippy::too_many_arguments)] // a record of plain fields; a builder would only rename them
fn op(
    action: &Action,
    operation: OperationKind,
    sequence: u64,
    started: Timestamp,
    clock: Instant,
    result: OperationResult,
    message: String,
    from_revision: Option<u32>,
    to_revision: Option<u32>,
    health: Option<HealthDetail>,
) -> OperationDetail {
    let from = match &action.kind {
        ActionKind::Install => None,
        ActionKind::Upgrade { from_version, .. } => Some(from_version.clone()),
    };
    let elapsed = clock.elapsed();
    OperationDetail {
        operation: Operation {
            release: action.release.clone(),
            namespace: action.namespace.clone(),
            operation,
            from,
            to: Some(action.target.chart.version.clone()),
            sequence,
            started,
            duration: Duration::from_secs(elapsed.as_secs()),
            result,
            message: super::events::truncate(&message, 2000),
            from_revision,
            to_revision,
            health: health.as_ref().map(HealthDetail::summary),
        },
        elapsed,
        health,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use super::*;
    use crate::agent::intent::MemoryJournal;
    use crate::agent::ops::script::{Script, unhealthy};
    use crate::crd::OperationKind;
    use crate::helm::ReleaseStatus;
    use crate::plan::InstalledRelease;

    /// `releases` (name, dependencies), each installed at 0.9.0 revision 1
    /// without a fingerprint, so each is upgraded to 1.0.0; `agent` is the
    /// agent's own release.
    fn plan_of(releases: &[(&str, &[&str])], agent: Option<&str>) -> Plan {
        let chart = |name: &str| {
            serde_json::json!({
                "name": name, "version": "1.0.0",
                "url": format!("../../charts/sha256-{}.tgz", "ab".repeat(32)),
                "digest": format!("sha256:{}", "ab".repeat(32)), "size": 10
            })
        };
        let entries: Vec<serde_json::Value> = releases
            .iter()
            .map(|(n, deps)| {
                serde_json::json!({"name": n, "namespace": n, "chart": chart(n), "dependsOn": deps})
            })
            .collect();
        let index: crate::format::ChannelIndex = serde_json::from_value(serde_json::json!({
            "apiVersion": "coxswain.dev/v1", "kind": "ChannelIndex", "channel": "stable",
            "sequence": 7, "published": "2026-11-26T00:00:00Z", "expires": "2026-12-26T00:00:00Z",
            "releases": entries
        }))
        .unwrap();
        let installed: Vec<InstalledRelease> = releases
            .iter()
            .map(|(n, _)| InstalledRelease {
                name: (*n).into(),
                namespace: (*n).into(),
                chart_name: (*n).into(),
                chart_version: "0.9.0".into(),
                status: ReleaseStatus::Deployed,
                revision: 1,
                fingerprint: None,
                owner: None,
            })
            .collect();
        let settings = crate::plan::Settings {
            agent_release: agent.map(|n| ReleaseId::new(n, n)),
            ..Default::default()
        };
        crate::plan::plan(&index, &settings, &installed).unwrap()
    }

    /// Releases `a` and `b` (b depends on a).
    fn plan_of_two_upgrades() -> Plan {
        plan_of(&[("a", &[]), ("b", &["a"])], None)
    }

    fn settings(policy: RollbackPolicy) -> ExecSettings {
        ExecSettings {
            policy,
            concurrency: 1,
            timeouts: BTreeMap::new(),
            default_timeout: Duration::from_secs(20),
            rollback_to: [("a", 1), ("b", 1)]
                .into_iter()
                .map(|(n, r)| (ReleaseId::new(n, n), r))
                .collect(),
            charts: [("a", "/c/a.tgz"), ("b", "/c/b.tgz")]
                .into_iter()
                .map(|(n, p)| (n.to_owned(), PathBuf::from(p)))
                .collect(),
            crds: BTreeMap::new(),
            agent_release: None,
            backups: BTreeMap::new(),
            velero: VeleroSettings::default(),
            subscription: ("coxswain".to_owned(), "stack".to_owned()),
        }
    }

    async fn run(
        ops: &Script,
        journal: &MemoryJournal,
        gate: &Gate,
        policy: RollbackPolicy,
    ) -> ExecReport {
        let executor = Executor {
            ops,
            notes: None,
            progress: None,
            journal,
            gate,
            holder: "agent-0",
        };
        executor
            .run(&plan_of_two_upgrades(), &settings(policy))
            .await
    }

    fn outcome<'a>(report: &'a ExecReport, release: &str) -> &'a ReleaseOutcome {
        report
            .outcomes
            .iter()
            .find(|o| o.release == release)
            .unwrap()
    }

    fn ops_begun(journal: &MemoryJournal) -> Vec<(String, OperationKind)> {
        journal
            .begun
            .lock()
            .unwrap()
            .iter()
            .map(|i| (i.release.clone(), i.operation))
            .collect()
    }

    #[tokio::test]
    async fn a_healthy_run_records_and_clears_an_intent_per_upgrade() {
        let (ops, journal, gate) = (Script::default(), MemoryJournal::default(), Gate::new());
        let report = run(&ops, &journal, &gate, RollbackPolicy::Release).await;
        assert_eq!(
            ops.calls(),
            ["upgrade a/a", "health a/a", "upgrade b/b", "health b/b"]
        );
        assert!(report.failure.is_none());
        assert_eq!(
            ops_begun(&journal),
            [
                ("a".to_owned(), OperationKind::Upgrade),
                ("b".to_owned(), OperationKind::Upgrade)
            ]
        );
        let first = journal.begun.lock().unwrap()[0].clone();
        assert_eq!(first.from_revision, Some(1));
        assert!(
            first.fingerprint.starts_with("coxswain stable#7 "),
            "{first:?}"
        );
        assert_eq!(first.holder, "agent-0");
        assert!(journal.current().is_empty());
    }

    /// Runs the two-release plan with `a`'s CRD policy set to `policy` and
    /// one CRD read from its chart; the report and the Events.
    async fn run_with_crds(
        ops: &Script,
        policy: crate::format::CrdPolicy,
    ) -> (ExecReport, Vec<Note>) {
        let mut plan = plan_of_two_upgrades();
        for layer in &mut plan.layers {
            for action in layer.iter_mut().filter(|a| a.release == "a") {
                action.target.crds = Some(policy);
            }
        }
        let mut settings = settings(RollbackPolicy::Release);
        let crd = ChartCrd {
            name: "widgets.example.test".into(),
            file: "crds/widgets.yaml".into(),
            object: serde_json::Map::new(),
        };
        settings.crds.insert("a".into(), vec![crd]);
        let (report, notes) = run_noting(ops, &plan, &settings, &MemoryJournal::default()).await;
        (report, notes)
    }

    /// Runs `plan` with `settings`; the report and the Events it noted.
    async fn run_noting(
        ops: &Script,
        plan: &Plan,
        settings: &ExecSettings,
        journal: &MemoryJournal,
    ) -> (ExecReport, Vec<Note>) {
        let gate = Gate::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let executor = Executor {
            ops,
            notes: Some(tx),
            progress: None,
            journal,
            gate: &gate,
            holder: "agent-0",
        };
        let report = executor.run(plan, settings).await;
        drop(executor);
        let mut notes = Vec::new();
        while let Ok(note) = rx.try_recv() {
            notes.push(note);
        }
        (report, notes)
    }

    #[tokio::test]
    async fn crds_are_applied_before_helm_which_then_skips_them() {
        use crate::format::CrdPolicy;
        let ops = Script::default();
        let (report, notes) = run_with_crds(&ops, CrdPolicy::CreateReplace).await;
        assert_eq!(
            ops.calls(),
            [
                "crds a/a CreateOrUpdate widgets.example.test",
                "upgrade a/a --skip-crds",
                "health a/a",
                "upgrade b/b",
                "health b/b"
            ]
        );
        assert!(report.failure.is_none(), "{report:?}");
        let applied = notes.iter().find(|n| n.reason == reason::CRDS_APPLIED);
        assert_eq!(
            applied.map(|n| n.message.as_str()),
            Some("a/a: crds createReplace: created widgets.example.test")
        );
        let op = &report.operations[0].operation;
        assert!(
            op.message
                .ends_with("; crds createReplace: created widgets.example.test"),
            "{op:?}"
        );
        assert!(outcome(&report, "a").message.contains("crds createReplace"));

        // create leaves an existing CRD alone: no Event, nothing in the history.
        let ops = Script {
            crds_exist: true,
            ..Script::default()
        };
        let (report, notes) = run_with_crds(&ops, CrdPolicy::Create).await;
        assert_eq!(
            ops.calls()[0],
            "crds a/a CreateMissing widgets.example.test"
        );
        assert!(notes.iter().all(|n| n.reason != reason::CRDS_APPLIED));
        assert!(!report.operations[0].operation.message.contains("crds"));

        // skip: helm is told to skip them, coxswain does not touch them.
        let ops = Script::default();
        let (report, _) = run_with_crds(&ops, CrdPolicy::Skip).await;
        assert_eq!(ops.calls()[0], "upgrade a/a --skip-crds");
        assert!(report.failure.is_none());
    }

    #[tokio::test]
    async fn a_crd_that_cannot_be_applied_fails_the_release_before_helm() {
        let ops = Script {
            crds_fail: Some(
                "CustomResourceDefinition widgets.example.test could not be updated: forbidden"
                    .into(),
            ),
            ..Script::default()
        };
        let (report, _) = run_with_crds(&ops, crate::format::CrdPolicy::CreateReplace).await;
        let calls = ops.calls();
        assert!(
            !calls.iter().any(|c| c.starts_with("upgrade a/a")),
            "helm must not run: {calls:?}"
        );
        let failure = report.failure.clone().unwrap_or_default();
        assert!(
            failure.contains("crds createReplace: CustomResourceDefinition widgets.example.test could not be updated"),
            "{failure}"
        );
        assert_eq!(outcome(&report, "b").state, ReleaseState::Skipped);
    }

    async fn run_with_the_agents_release(ops: &Script) -> ExecReport {
        let (journal, gate) = (MemoryJournal::default(), Gate::new());
        let executor = Executor {
            ops,
            notes: None,
            progress: None,
            journal: &journal,
            gate: &gate,
            holder: "agent-0",
        };
        let mut settings = settings(RollbackPolicy::Release);
        settings.agent_release = Some(ReleaseId::new("c", "c"));
        settings
            .charts
            .insert("c".into(), PathBuf::from("/c/c.tgz"));
        settings.rollback_to.insert(ReleaseId::new("c", "c"), 1);
        executor
            .run(&plan_of(&[("a", &[]), ("c", &[])], Some("c")), &settings)
            .await
    }

    #[tokio::test]
    async fn the_agents_own_release_is_updated_last_once_the_others_are_healthy() {
        let ops = Script::default();
        let report = run_with_the_agents_release(&ops).await;
        assert_eq!(
            ops.calls(),
            ["upgrade a/a", "health a/a", "upgrade c/c", "health c/c"]
        );
        assert!(report.failure.is_none());
        assert_eq!(outcome(&report, "c").state, ReleaseState::UpToDate);
    }

    #[tokio::test]
    async fn the_agents_own_release_waits_when_another_release_failed() {
        let ops = Script::default();
        ops.then_health(Ok(unhealthy("Deployment a/a: 0/1 ready")));
        let report = run_with_the_agents_release(&ops).await;
        assert_eq!(
            ops.calls(),
            ["upgrade a/a", "health a/a", "rollback a/a 1", "health a/a"],
            "the agent's release is not touched"
        );
        let c = outcome(&report, "c");
        assert_eq!(c.state, ReleaseState::Skipped, "{c:?}");
        assert!(
            c.message
                .contains("updated only when every other release of the run is healthy"),
            "{}",
            c.message
        );
    }

    #[tokio::test]
    async fn an_upgrade_cut_off_by_an_api_outage_is_not_rolled_back_and_keeps_its_intent() {
        let ops = Script {
            api_down: true,
            ..Script::default()
        };
        ops.upgrades.lock().unwrap().insert(
            "a".into(),
            Err("helm upgrade for release a/a failed: connection refused".into()),
        );
        let (journal, gate) = (MemoryJournal::default(), Gate::new());
        let report = run(&ops, &journal, &gate, RollbackPolicy::Channel).await;
        assert_eq!(ops.calls(), ["upgrade a/a"], "no rollback, b waits");
        assert!(report.failure.is_none(), "the sequence is not failed");
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::Upgrading, "{a:?}");
        assert!(
            a.message.contains("cut off by the API server"),
            "{}",
            a.message
        );
        assert_eq!(
            journal.current().len(),
            1,
            "the intent stays for the repair"
        );
        // The same error while the API answers is the chart's failure.
        let ops = Script::default();
        ops.upgrades.lock().unwrap().insert(
            "a".into(),
            Err("helm upgrade for release a/a failed: bad template".into()),
        );
        let (journal, gate) = (MemoryJournal::default(), Gate::new());
        let report = run(&ops, &journal, &gate, RollbackPolicy::Release).await;
        assert!(report.failure.is_some());
    }

    #[tokio::test]
    async fn a_failed_health_check_rolls_back_to_the_noted_revision() {
        let (ops, journal, gate) = (Script::default(), MemoryJournal::default(), Gate::new());
        ops.then_health(Ok(unhealthy("Deployment a/a: 0/1 ready")));
        let report = run(&ops, &journal, &gate, RollbackPolicy::Release).await;
        assert_eq!(
            ops.calls(),
            ["upgrade a/a", "health a/a", "rollback a/a 1", "health a/a"]
        );
        // The upgrade's own manifest is checked (no `helm get manifest`);
        // after the rollback, which prints none, helm's is read.
        assert_eq!(
            *ops.manifests.lock().unwrap(),
            [Some("# manifest of 2".to_owned()), None]
        );
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::RolledBack, "{a:?}");
        assert_eq!(a.revision, Some(11));
        assert_eq!(outcome(&report, "b").state, ReleaseState::Skipped);
        assert!(
            report
                .failure
                .as_deref()
                .is_some_and(|f| f.contains("Deployment a/a: 0/1 ready")),
            "{report:?}"
        );
        let begun = journal.begun.lock().unwrap().clone();
        assert_eq!(begun[1].operation, OperationKind::Rollback);
        assert_eq!(begun[1].to_revision, Some(1));
        assert!(
            begun[1]
                .cause
                .as_deref()
                .is_some_and(|c| c.contains("0/1 ready"))
        );
        assert!(journal.current().is_empty());
    }

    /// Runs the two-release plan with `a`'s backup resolved to `wanted`; the
    /// report and the Events.
    async fn run_with_backup(
        ops: &Script,
        wanted: Result<BackupRequest, String>,
    ) -> (ExecReport, Vec<Note>, MemoryJournal) {
        let journal = MemoryJournal::default();
        let mut settings = settings(RollbackPolicy::Release);
        settings.backups.insert("a".to_owned(), wanted);
        let (report, notes) = run_noting(ops, &plan_of_two_upgrades(), &settings, &journal).await;
        (report, notes, journal)
    }

    fn month() -> BackupRequest {
        BackupRequest {
            ttl: Some(Duration::from_days(30)),
            include_volumes: false,
            auto_restore: false,
        }
    }

    #[tokio::test]
    async fn the_backup_completes_before_the_upgrade_starts_and_is_recorded() {
        let ops = Script::default();
        let (report, notes, journal) = run_with_backup(&ops, Ok(month())).await;
        assert_eq!(
            ops.calls(),
            [
                "backup a/a velero ttl=Some(\"30d\") volumes=false",
                "upgrade a/a",
                "health a/a",
                "upgrade b/b",
                "health b/b"
            ]
        );
        assert!(report.failure.is_none(), "{report:?}");
        let backup = &report.operations[0].operation;
        assert_eq!(backup.operation, OperationKind::Backup);
        assert_eq!(backup.result, OperationResult::Succeeded);
        assert!(
            backup.message.starts_with("velero backup a-7-")
                && backup.message.contains("of namespace a completed"),
            "{backup:?}"
        );
        assert_eq!(
            report.operations[1].operation.operation,
            OperationKind::Upgrade
        );
        assert!(
            notes.iter().any(|n| n.reason == reason::BACKED_UP),
            "{notes:?}"
        );
        // The backup changes no release: only the upgrades were journaled.
        assert_eq!(
            ops_begun(&journal),
            [
                ("a".to_owned(), OperationKind::Upgrade),
                ("b".to_owned(), OperationKind::Upgrade)
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_backup_starts_no_upgrade_and_fails_the_sequence() {
        let ops = Script {
            backup_fail: Some("velero backup a-7-x ended Failed: bucket gone".to_owned()),
            ..Script::default()
        };
        let (report, notes, journal) = run_with_backup(&ops, Ok(month())).await;
        assert_eq!(
            ops.calls(),
            ["backup a/a velero ttl=Some(\"30d\") volumes=false"]
        );
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::Blocked, "{a:?}");
        assert_eq!(a.revision, Some(1), "the release stays where it was");
        assert!(
            a.message.contains("bucket gone") && a.message.contains("the upgrade did not start"),
            "{a:?}"
        );
        assert_eq!(outcome(&report, "b").state, ReleaseState::Skipped);
        assert!(
            report
                .failure
                .as_deref()
                .is_some_and(|f| f.starts_with("a: backup before the upgrade to 1.0.0 failed")),
            "{report:?}"
        );
        let of_a: Vec<OperationKind> = report
            .operations
            .iter()
            .filter(|o| o.operation.release == "a")
            .map(|o| o.operation.operation)
            .collect();
        assert_eq!(of_a, [OperationKind::Backup]);
        assert_eq!(
            report.operations[0].operation.result,
            OperationResult::Failed
        );
        assert!(
            notes.iter().any(|n| n.reason == reason::BACKUP_FAILED),
            "{notes:?}"
        );
        assert!(journal.begun.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unusable_override_fails_the_release_without_calling_velero() {
        let ops = Script::default();
        let (report, _, _) = run_with_backup(
            &ops,
            Err("spec.backups: release `a`: backup.ttl must be longer than 0s".to_owned()),
        )
        .await;
        assert!(ops.calls().is_empty(), "{:?}", ops.calls());
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::Blocked);
        assert!(a.message.contains("spec.backups"), "{a:?}");
    }

    #[tokio::test]
    async fn after_a_rollback_the_backup_and_its_restore_command_are_named() {
        let ops = Script::default();
        ops.then_health(Ok(unhealthy("Job a/migrate: failed")));
        let (report, notes, _) = run_with_backup(&ops, Ok(month())).await;
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::RolledBack, "{a:?}");
        let backup = report.operations[0].operation.message.clone();
        let name = backup
            .strip_prefix("velero backup ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap();
        let command = format!(
            "velero restore create --namespace velero --from-backup {name} --include-namespaces a --existing-resource-policy update"
        );
        assert!(a.message.contains(&command), "{a:?}");
        let ours = format!(
            "coxswain restore --namespace coxswain --subscription stack --release a --backup {name}"
        );
        assert!(a.message.contains(&ours), "{a:?}");
        let rollback = report
            .operations
            .iter()
            .find(|o| o.operation.operation == OperationKind::Rollback)
            .unwrap();
        assert!(
            rollback.operation.message.contains(&command),
            "{rollback:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.reason == reason::RESTORE_AVAILABLE && n.message.contains(name)),
            "{notes:?}"
        );
    }

    fn of_release(report: &ExecReport, release: &str) -> Vec<(OperationKind, OperationResult)> {
        report
            .operations
            .iter()
            .filter(|o| o.operation.release == release)
            .map(|o| (o.operation.operation, o.operation.result))
            .collect()
    }

    #[tokio::test]
    async fn auto_restore_restores_the_backup_when_the_rollback_stays_unhealthy() {
        let ops = Script::default();
        ops.then_health(Ok(unhealthy("Job a/migrate: failed")));
        ops.then_health(Ok(unhealthy("Deployment a/a: schema too new")));
        let wanted = BackupRequest {
            auto_restore: true,
            ..month()
        };
        let (report, notes, _) = run_with_backup(&ops, Ok(wanted)).await;
        let calls = ops.calls();
        let restore = calls
            .iter()
            .position(|c| c.starts_with("restore a/a from a-7-"))
            .unwrap();
        assert_eq!(calls[restore - 1], "health a/a", "{calls:?}");
        assert_eq!(calls[restore + 1], "health a/a", "{calls:?}");
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::RolledBack, "{a:?}");
        assert!(a.message.contains("autoRestore): healthy"), "{a:?}");
        assert!(
            !a.message.contains("velero restore create"),
            "no hint after a restore: {a:?}"
        );
        use OperationResult::{Failed, Succeeded};
        assert_eq!(
            of_release(&report, "a"),
            [
                (OperationKind::Backup, Succeeded),
                (OperationKind::Upgrade, Failed),
                (OperationKind::Rollback, Failed),
                (OperationKind::Restore, Succeeded)
            ]
        );
        assert!(report.failure.is_some(), "the sequence still failed");
        assert!(
            notes.iter().any(|n| n.reason == reason::RESTORED),
            "{notes:?}"
        );
    }

    #[tokio::test]
    async fn without_auto_restore_an_unhealthy_rollback_only_names_the_backup() {
        let ops = Script::default();
        ops.then_health(Ok(unhealthy("Job a/migrate: failed")));
        ops.then_health(Ok(unhealthy("Deployment a/a: schema too new")));
        let (report, _, _) = run_with_backup(&ops, Ok(month())).await;
        assert!(
            !ops.calls().iter().any(|c| c.starts_with("restore")),
            "{:?}",
            ops.calls()
        );
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::Failed, "{a:?}");
        assert!(a.message.contains("velero restore create"), "{a:?}");
    }

    #[tokio::test]
    async fn a_failed_auto_restore_leaves_the_release_failed_and_says_why() {
        let ops = Script {
            restore_fail: Some(
                "velero restore r: ended PartiallyFailed with 1 error(s)".to_owned(),
            ),
            ..Script::default()
        };
        ops.then_health(Ok(unhealthy("Job a/migrate: failed")));
        ops.then_health(Ok(unhealthy("Deployment a/a: schema too new")));
        let wanted = BackupRequest {
            auto_restore: true,
            ..month()
        };
        let (report, _, _) = run_with_backup(&ops, Ok(wanted)).await;
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::Failed, "{a:?}");
        assert!(
            a.message.contains("automatic restore of backup a-7-"),
            "{a:?}"
        );
        assert_eq!(
            of_release(&report, "a").last(),
            Some(&(OperationKind::Restore, OperationResult::Failed))
        );
    }

    #[tokio::test]
    async fn a_rollback_helm_refuses_is_failed_and_its_intent_stays_for_the_repair() {
        let ops = Script {
            fail_rollback: true,
            ..Script::default()
        };
        let (journal, gate) = (MemoryJournal::default(), Gate::new());
        ops.then_health(Ok(unhealthy("Deployment a/a: 0/1 ready")));
        let report = run(&ops, &journal, &gate, RollbackPolicy::Release).await;
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::Failed, "{a:?}");
        assert!(a.message.contains("timed out"), "{}", a.message);
        let left = journal.current();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].operation, OperationKind::Rollback);
    }

    #[tokio::test]
    async fn health_that_times_out_after_the_rollback_leaves_the_release_failed() {
        let (ops, journal, gate) = (Script::default(), MemoryJournal::default(), Gate::new());
        ops.then_health(Ok(unhealthy("Deployment a/a: 0/1 ready")));
        ops.then_health(Ok(unhealthy("not ready after 20s: Deployment a/a")));
        let report = run(&ops, &journal, &gate, RollbackPolicy::Release).await;
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::Failed, "{a:?}");
        assert!(
            a.message
                .contains("rolled back to revision 1, which is not healthy either"),
            "{}",
            a.message
        );
        // Its state is known: no intent left.
        assert!(journal.current().is_empty());
    }

    #[tokio::test]
    async fn the_channel_policy_returns_what_the_run_changed() {
        let (ops, journal, gate) = (Script::default(), MemoryJournal::default(), Gate::new());
        ops.then_health(Ok(crate::agent::ops::script::healthy()));
        ops.then_health(Ok(unhealthy("Deployment b/b: 0/1 ready")));
        let report = run(&ops, &journal, &gate, RollbackPolicy::Channel).await;
        assert_eq!(
            ops.calls(),
            [
                "upgrade a/a",
                "health a/a",
                "upgrade b/b",
                "health b/b",
                "rollback b/b 1",
                "health b/b",
                "rollback a/a 1",
                "health a/a"
            ]
        );
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::RolledBack);
        assert!(
            a.message.contains("rollbackPolicy channel"),
            "{}",
            a.message
        );
        assert!(journal.current().is_empty());
    }

    #[tokio::test]
    async fn a_closed_gate_starts_nothing_and_fails_nothing() {
        let (ops, journal, gate) = (Script::default(), MemoryJournal::default(), Gate::new());
        gate.set_leading(false);
        let report = run(&ops, &journal, &gate, RollbackPolicy::Release).await;
        assert!(ops.calls().is_empty(), "{:?}", ops.calls());
        assert!(report.failure.is_none());
        assert_eq!(report.stopped, ["a"]);
        let a = outcome(&report, "a");
        assert!(
            a.message
                .contains("not started: this replica does not hold the leader lease"),
            "{}",
            a.message
        );
        assert_eq!(outcome(&report, "b").state, ReleaseState::Skipped);
        assert!(journal.begun.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_health_check_cut_by_the_stop_grace_keeps_its_intent_and_rolls_nothing_back() {
        let ops = Script {
            hang_health: true,
            ..Script::default()
        };
        let (journal, gate) = (MemoryJournal::default(), Gate::new());
        let stopper = gate.clone();
        tokio::spawn(async move {
            tokio::time::sleep(StdDuration::from_millis(100)).await;
            stopper.stop(StdDuration::from_millis(50));
        });
        let report = run(&ops, &journal, &gate, RollbackPolicy::Release).await;
        assert_eq!(ops.calls(), ["upgrade a/a", "health a/a"]);
        assert!(report.failure.is_none());
        assert_eq!(report.stopped, ["a"]);
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::Upgrading);
        assert!(a.message.contains("not confirmed"), "{}", a.message);
        let left = journal.current();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].operation, OperationKind::Upgrade);
    }

    #[tokio::test]
    async fn an_unanswered_health_check_keeps_its_intent_and_rolls_nothing_back() {
        let (ops, journal, gate) = (Script::default(), MemoryJournal::default(), Gate::new());
        ops.then_health(Ok(crate::agent::ops::script::unobserved()));
        let report = run(&ops, &journal, &gate, RollbackPolicy::Release).await;
        assert!(
            !ops.calls().iter().any(|c| c.starts_with("rollback")),
            "an outage is no reason to roll back: {:?}",
            ops.calls()
        );
        assert!(report.failure.is_none(), "{report:?}");
        let a = outcome(&report, "a");
        assert_eq!(a.state, ReleaseState::Upgrading, "{a:?}");
        assert!(
            a.message
                .contains("not confirmed (the API server did not answer"),
            "{}",
            a.message
        );
        let left = journal.current();
        assert_eq!(left.len(), 1, "the repair checks it again: {left:?}");
        assert_eq!(left[0].operation, OperationKind::Upgrade);
        assert_eq!(left[0].release, "a");
    }

    #[tokio::test]
    async fn an_unanswered_check_after_a_rollback_keeps_the_rollback_intent() {
        let (ops, journal, gate) = (Script::default(), MemoryJournal::default(), Gate::new());
        ops.then_health(Ok(unhealthy("Deployment a/a: 0/1 ready")));
        ops.then_health(Ok(crate::agent::ops::script::unobserved()));
        let report = run(&ops, &journal, &gate, RollbackPolicy::Release).await;
        let a = outcome(&report, "a");
        assert!(
            a.message
                .contains("its health was not confirmed (the API server"),
            "{}",
            a.message
        );
        let left = journal.current();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].operation, OperationKind::Rollback);
    }
}
