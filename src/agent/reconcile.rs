//! One reconcile of one subscription, as Flux's helm-controller shapes it:
//! [`check`] is the sequence
//!
//! 1. **observe** ([`super::observe`]): trust anchor, channel fetched and
//!    verified, cluster values, claims, installed releases;
//! 2. **repair** ([`super::repair`], a pure decision per release, acted on
//!    through [`super::ops::Operator`]): what a killed helm or agent left;
//! 3. **decide**: the plan ([`crate::plan`], pure) and whether a failed
//!    sequence waits;
//! 4. **act** ([`super::executor`]): charts fetched, the accepted sequence
//!    written, each operation recorded as an intent, then helm and health;
//! 5. **record** ([`super::status`], [`super::events`]): release states,
//!    Events, the failed sequence, conditions, the outcome;
//!
//! and [`reconcile`] writes the status (and the UI's view and metrics).

use futures::StreamExt as _;
use std::collections::{BTreeMap, BTreeSet};

use kube::{Api, ResourceExt};

use crate::crd::{
    ChannelSubscription, ChannelSubscriptionStatus, CheckResult, ConditionStatus, FailedSequence,
    Operation, OperationKind, OperationResult, RESTORE_ANNOTATION, ReleaseState,
};
use crate::format::Timestamp;
use crate::health::HealthOptions;
use crate::plan::{Plan, ReleaseId, plan};

use super::observe::Observed;

use super::intent::StatusJournal;
use super::ops::ClusterOperator;
use super::repair::{Repair, RepairSettings};
use crate::site_verify::describe;

use super::events::{Note, reason};
use super::executor::{ExecReport, ExecSettings, Executor, Progress};
use super::installed::read_installed;
use super::status::{
    Summary, Verdict, release_statuses, set_planned_conditions, set_stopped_conditions, summarize,
    worth_writing, write_status,
};
use super::view::{IndexSummary, Preview, PreviewState, Running, SpecSummary};
use super::{AgentError, Context};
use crate::metrics::{CheckReport, FetchResult};

/// A status that only repeats the last check is written at most this often.
const QUIET_WRITE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// How a reconcile ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// For `--once` and requeueing.
    pub verdict: Verdict,
    /// One sentence for people (stderr of `--once`, logs, the UI).
    pub message: String,
    /// The sequence looked at, if the index verified.
    pub sequence: Option<u64>,
    /// When a release the rollout gate holds may start (its wave or window opens):
    /// the controller checks again then if that is before the next poll.
    pub wake: Option<Timestamp>,
}

/// What a check learnt that the metrics want after the status is final.
#[derive(Default)]
pub(super) struct Seen {
    /// The verified index, when one verified.
    pub index: Option<IndexSummary>,
    /// Chart name per release of that index.
    pub charts: BTreeMap<String, String>,
}

/// A reconcile that ended before planning.
pub(super) struct Stop {
    result: CheckResult,
    message: String,
}

impl Stop {
    /// Why the check stopped, for people.
    pub(super) fn into_message(self) -> String {
        self.message
    }

    /// A check that stopped on an error; a refused permission says so.
    pub(super) fn error(message: String) -> Self {
        let message = if super::events::permission_refused(&message) {
            format!("{message}; {}", super::events::FORBIDDEN_HINT)
        } else {
            message
        };
        Self {
            result: CheckResult::Error,
            message,
        }
    }
}

/// Reconciles `sub` once and writes its status.
pub async fn reconcile(ctx: &Context, sub: &ChannelSubscription) -> Result<Outcome, AgentError> {
    let name = sub.name_any();
    let ns = sub.namespace().unwrap_or_else(|| ctx.namespace.clone());
    let api: Api<ChannelSubscription> = Api::namespaced(ctx.client.clone(), &ns);
    let previous = sub.status.clone();
    let mut status = previous.clone().unwrap_or_default();
    let generation = sub.metadata.generation;
    let now = Timestamp::now();
    let spec = &sub.spec;
    let key = format!("{ns}/{name}");
    status.observed_generation = generation;
    status.show_pair(&spec.server, &spec.channel);
    ctx.state
        .update_view(&key, |v| {
            v.spec = Some(SpecSummary::of(sub));
            // Until this agent's first check ends, show what the last one wrote.
            if v.status.is_none() {
                v.status = previous.clone();
            }
        })
        .await;
    let mut seen = Seen::default();

    let outcome = if spec.suspend {
        set_stopped_conditions(
            &mut status,
            CheckResult::Suspended,
            "suspended: nothing checked",
            generation,
            now,
        );
        Outcome {
            verdict: Verdict::Done,
            message: format!("{ns}/{name}: suspended; nothing checked"),
            sequence: None,
            wake: None,
        }
    } else {
        match check(ctx, sub, &mut status, now, &mut seen).await {
            Ok(outcome) => outcome,
            Err(stop) => {
                let note =
                    match stop.result {
                        CheckResult::VerificationFailed => Some(Note::warning(
                            reason::VERIFICATION_FAILED,
                            "Verify",
                            stop.message.clone(),
                        )),
                        CheckResult::Unreachable => Some(Note::warning(
                            reason::UNREACHABLE,
                            "Fetch",
                            stop.message.clone(),
                        )),
                        _ if super::events::permission_refused(&stop.message) => Some(
                            Note::warning(reason::FORBIDDEN, "Check", stop.message.clone()),
                        ),
                        _ => None,
                    };
                if let Some(note) = note {
                    tracing::warn!(subscription = %format!("{ns}/{name}"), reason = note.reason, message = %note.message, "check failed");
                    ctx.events.publish(sub, &note).await;
                }
                set_stopped_conditions(&mut status, stop.result, &stop.message, generation, now);
                Outcome {
                    verdict: Verdict::Error,
                    message: format!("{ns}/{name}: {}", stop.message),
                    sequence: None,
                    wake: None,
                }
            }
        }
    };
    // What the API server stores is what the UI shows and the next check
    // compares with.
    status.fit();
    ctx.metrics.check_finished(&CheckReport {
        subscription: &key,
        channel: &spec.channel,
        interval: spec.interval.to_std(),
        status: &status,
        index_times: seen.index.map(|i| (i.published, i.expires)),
        charts: &seen.charts,
    });
    ctx.state
        .update_view(&key, |v| {
            v.status = Some(status.clone());
            v.running = None;
            if seen.index.is_some() {
                v.index = seen.index;
            }
            // A check that stopped between planning and applying (a chart that
            // failed to download or verify) applied nothing.
            if let Some(p) = v.preview.as_mut()
                && p.state == PreviewState::Applying
            {
                p.state = PreviewState::Waiting(format!("the check stopped: {}", outcome.message));
            }
        })
        .await;
    if !ctx.gate.is_leading() {
        // The Lease went to another replica during this run: its status is
        // the one that counts now.
        tracing::warn!(subscription = %key, "lost the leader lease during the check; the status is left to the new leader");
    } else {
        // Operations an earlier check did, whose final write failed.
        status.merge_history(ctx.unwritten.take(&key));
        if worth_writing(previous.as_ref(), &status, QUIET_WRITE_INTERVAL)
            && let Err(source) = write_status(&api, &name, &status).await
        {
            let before = previous.as_ref().map_or(&[][..], |p| &p.history[..]);
            let unwritten: Vec<_> = status
                .history
                .iter()
                .filter(|op| !before.contains(op))
                .cloned()
                .collect();
            ctx.unwritten.keep(&key, unwritten);
            return Err(AgentError::WriteStatus {
                subscription: format!("{ns}/{name}"),
                source,
            });
        }
    }
    Ok(outcome)
}

/// Carries out the repairs `decided`, recording each step in the status
/// first; records the outcomes (history, Events, metrics, a failed sequence).
async fn repair(
    ctx: &Context,
    sub: &ChannelSubscription,
    status: &mut ChannelSubscriptionStatus,
    decided: &BTreeMap<ReleaseId, (Repair, Option<crate::crd::Intent>)>,
    timeouts: BTreeMap<ReleaseId, std::time::Duration>,
    options: BTreeMap<ReleaseId, HealthOptions>,
) -> Result<(), Stop> {
    let ns = sub.namespace().unwrap_or_else(|| ctx.namespace.clone());
    let name = sub.name_any();
    let key = format!("{ns}/{name}");
    let api: Api<ChannelSubscription> = Api::namespaced(ctx.client.clone(), &ns);
    let journal = StatusJournal::new(api, &ns, &name, status.clone());
    let ops = ClusterOperator {
        helm: &ctx.helm,
        health: &ctx.health,
        client: &ctx.client,
        driver: ctx.driver,
        gate: &ctx.gate,
    };
    let settings = RepairSettings {
        timeouts,
        default_timeout: sub.spec.health_timeout.to_std(),
        options,
        holder: ctx.holder.clone(),
    };
    let done = super::repair::run(&ops, &journal, &ctx.gate, decided, &settings).await;
    status.in_flight = journal.in_flight().await;
    let mut details = Vec::new();
    for d in &done {
        let Some(op) = &d.operation else {
            tracing::info!(subscription = %key, release = %d.id, "forgot an interrupted operation that had changed nothing");
            continue;
        };
        let note = if d.ok {
            Note::warning(reason::REPAIRED, "Repair", d.message.clone())
        } else {
            Note::warning(reason::REPAIR_FAILED, "Repair", d.message.clone())
        };
        tracing::warn!(subscription = %key, release = %d.id, ok = d.ok, message = %d.message, "repair");
        ctx.events.publish(sub, &note).await;
        status.push_history(op.clone());
        details.push(super::executor::OperationDetail {
            operation: op.clone(),
            elapsed: std::time::Duration::from_secs(op.duration.as_secs()),
            health: None,
        });
        if let Some((sequence, why)) = &d.failed {
            // The release's state is what the repair found out: rolled back
            // (or failed), as if the agent had not been killed.
            let state = if d.ok {
                ReleaseState::RolledBack
            } else {
                ReleaseState::Failed
            };
            let message = super::events::truncate(&d.message, 2000);
            match status
                .releases
                .iter_mut()
                .find(|r| r.name == d.id.name && r.namespace == d.id.namespace)
            {
                Some(r) => {
                    r.state = state;
                    r.message = message;
                    r.since = Timestamp::now();
                }
                None => status.releases.push(crate::crd::ReleaseStatus {
                    name: d.id.name.clone(),
                    namespace: d.id.namespace.clone(),
                    version: None,
                    desired_version: None,
                    revision: op.to_revision,
                    state,
                    message,
                    since: Timestamp::now(),
                    pinned: false,
                    held: false,
                }),
            }
            status.failed_sequence = Some(FailedSequence {
                server: crate::crd::server_key(&sub.spec.server).to_owned(),
                channel: sub.spec.channel.clone(),
                sequence: *sequence,
                reason: super::events::truncate(&format!("{}: {why}", d.id.name), 2000),
                at: Timestamp::now(),
            });
        }
    }
    ctx.metrics.operations(&key, &details);
    if let Some(failed) = done.iter().find(|d| !d.ok) {
        return Err(Stop::error(failed.message.clone()));
    }
    Ok(())
}

/// Why a failed sequence is not applied again, and how to retry it.
fn waiting_sentence(sequence: u64, reason: &str) -> String {
    format!(
        "sequence {sequence} failed ({reason}); not retried until a newer sequence is published or the coxswain.dev/retry annotation is set to a new value"
    )
}

/// The stop for a fetch error, counted in the metrics (`index`: the index
/// fetch itself rather than a chart).
pub(super) fn fetch_stop(
    ctx: &Context,
    sub: &ChannelSubscription,
    e: &super::fetch::FetchError,
    index: bool,
) -> Stop {
    let key = format!("{}/{}", sub.namespace().unwrap_or_default(), sub.name_any());
    if index {
        let result = if e.is_unreachable() {
            FetchResult::Unreachable
        } else if e.is_verification() {
            FetchResult::VerificationFailed
        } else {
            FetchResult::Error
        };
        ctx.metrics.index_fetch(&key, &sub.spec.channel, result);
    }
    if let Some(reason) = e.verification_reason() {
        ctx.metrics
            .verification_failure(&key, &sub.spec.channel, reason);
    }
    let message = describe(e);
    let result = if e.is_unreachable() {
        CheckResult::Unreachable
    } else if e.is_verification() {
        CheckResult::VerificationFailed
    } else {
        CheckResult::Error
    };
    Stop { result, message }
}

/// One check: observe → repair → decide → act → record.
async fn check(
    ctx: &Context,
    sub: &ChannelSubscription,
    status: &mut ChannelSubscriptionStatus,
    now: Timestamp,
    seen: &mut Seen,
) -> Result<Outcome, Stop> {
    let mut observed = super::observe::observe(ctx, sub, status, now, seen).await?;
    let left_alone = repair_stuck(ctx, sub, status, &mut observed, now).await?;
    restore_on_request(ctx, sub, status).await;
    let mut decided = decide(sub, status, &observed)?;
    let key = format!(
        "{}/{}",
        sub.namespace().unwrap_or_else(|| ctx.namespace.clone()),
        sub.name_any()
    );
    decided.diff_summaries = super::diff::approval_diffs(ctx, &key, &observed, &decided.plan).await;
    let notes = Notes::start(ctx, sub);
    let report = act(ctx, sub, status, &observed, &decided, &notes, now).await?;
    Ok(record(
        ctx,
        sub,
        status,
        &observed,
        &decided,
        report,
        &left_alone,
        notes,
        now,
    )
    .await)
}

/// The restore annotation (docs/backup.md): restores the backup it names, or
/// the release's newest, once per value; recorded as a `restore` operation and
/// a `Restored` Event, whatever came of it. Nothing else of the check waits
/// on it failing.
async fn restore_on_request(
    ctx: &Context,
    sub: &ChannelSubscription,
    status: &mut ChannelSubscriptionStatus,
) {
    let Some(value) = sub.pending_restore().map(str::to_owned) else {
        return;
    };
    if ctx.gate.may_mutate().is_err() {
        // The next leader, or the next start, acts on it.
        return;
    }
    status.handled_restore = Some(value.clone());
    let started = Timestamp::now();
    let clock = std::time::Instant::now();
    let outcome = match crate::crd::parse_restore_request(&value) {
        Err(why) => Err((String::new(), why)),
        Ok((release, backup)) => {
            let opts = super::restore::RestoreOptions {
                namespace: sub.namespace().unwrap_or_else(|| ctx.namespace.clone()),
                subscription: sub.name_any(),
                release: release.clone(),
                backup,
                timeout: sub.spec.velero.timeout.to_std(),
            };
            match super::restore::restore(&ctx.client, &opts).await {
                Ok(done) => Ok((release, done)),
                Err(e) => Err((release, describe(&e))),
            }
        }
    };
    let (release, namespace, result, message) = match outcome {
        Ok((release, done)) => (
            release,
            done.namespace.clone(),
            OperationResult::Succeeded,
            format!(
                "restored backup {} into namespace {} ({RESTORE_ANNOTATION}: {value}): restore {} completed{}",
                done.backup,
                done.namespace,
                done.restore,
                done.items
                    .map(|n| format!(", {n} item(s)"))
                    .unwrap_or_default()
            ),
        ),
        Err((release, why)) => {
            let namespace = status
                .releases
                .iter()
                .find(|r| r.name == release)
                .map(|r| r.namespace.clone())
                .unwrap_or_default();
            (
                release,
                namespace,
                OperationResult::Failed,
                format!("restore asked by {RESTORE_ANNOTATION}: {value} failed: {why}"),
            )
        }
    };
    tracing::info!(release = %release, ?result, message = %message, "restore on request");
    let note = if result == OperationResult::Succeeded {
        Note::normal(reason::RESTORED, "Restore", message.clone())
    } else {
        Note::warning(reason::RESTORED, "Restore", message.clone())
    };
    status.push_history(Operation {
        release,
        namespace,
        operation: OperationKind::Restore,
        from: None,
        to: None,
        sequence: status.accepted_sequence.unwrap_or(0),
        started,
        duration: crate::duration::Duration::from_secs(clock.elapsed().as_secs()),
        result,
        message: super::events::truncate(&message, 2000),
        from_revision: None,
        to_revision: None,
        health: None,
    });
    ctx.events.publish(sub, &note).await;
}

/// Repairs what a killed helm or agent left behind (see [`super::repair`]),
/// then reads the installed releases again. Returns, for releases stuck by
/// someone else and left alone, the sentence their status shows.
async fn repair_stuck(
    ctx: &Context,
    sub: &ChannelSubscription,
    status: &mut ChannelSubscriptionStatus,
    observed: &mut Observed,
    now: Timestamp,
) -> Result<BTreeMap<ReleaseId, String>, Stop> {
    let spec = &sub.spec;
    let index = observed.snapshot.verified.index();
    let managed: BTreeSet<ReleaseId> = index
        .releases
        .iter()
        .filter(|r| !spec.holds.contains(&r.name))
        .map(|r| ReleaseId::new(&r.namespace, &r.name))
        .collect();
    let decided = super::repair::decide_all(
        &status.in_flight,
        &observed.installed,
        &managed,
        now.datetime(),
        ctx.stuck_grace,
    );
    let left_alone: BTreeMap<ReleaseId, String> = decided
        .iter()
        .filter_map(|(id, (r, _))| match r {
            Repair::LeaveAlone { status, age } => Some((
                id.clone(),
                format!(
                    "{status} for {} by an operation coxswain did not start; repaired if still stuck after {}",
                    age.map(|a| crate::duration::Duration::from_secs(a.as_secs()).to_string())
                        .unwrap_or_else(|| "an unknown time".to_owned()),
                    crate::duration::Duration::from_secs(ctx.stuck_grace.as_secs())
                ),
            )),
            _ => None,
        })
        .collect();
    if decided.len() > left_alone.len() {
        let timeouts = index
            .releases
            .iter()
            .map(|r| {
                (
                    ReleaseId::new(&r.namespace, &r.name),
                    observed
                        .snapshot
                        .health_timeout(&r.name, &r.chart.version, spec.health_timeout)
                        .to_std(),
                )
            })
            .collect();
        let options = index
            .releases
            .iter()
            .map(|r| {
                let mut options = HealthOptions::from(&r.health);
                options.accept_pending_load_balancer |= spec.accept_pending_load_balancer;
                (ReleaseId::new(&r.namespace, &r.name), options)
            })
            .collect();
        repair(ctx, sub, status, &decided, timeouts, options).await?;
        observed.installed = read_installed(ctx.records(), &observed.namespaces)
            .await
            .map_err(|e| Stop::error(format!("reading installed releases: {}", describe(&e))))?;
    }
    Ok(left_alone)
}

/// What a check decided: the plan, and whether a failed sequence keeps it waiting.
struct Decided {
    plan: Plan,
    waiting: Option<String>,
    /// Release to the summary of its rendered diff, for releases awaiting approval.
    diff_summaries: BTreeMap<String, String>,
}

/// Plans (a pure function of the index, the settings and what is installed)
/// and decides whether a failed sequence waits; notes a handled retry.
fn decide(
    sub: &ChannelSubscription,
    status: &mut ChannelSubscriptionStatus,
    observed: &Observed,
) -> Result<Decided, Stop> {
    let spec = &sub.spec;
    let index = observed.snapshot.verified.index();
    let settings = &observed.settings;
    let installed = &observed.installed;
    let mut plan =
        plan(index, settings, &installed.releases).map_err(|e| Stop::error(describe(&e)))?;
    if spec.accept_pending_load_balancer {
        plan.accept_pending_load_balancers();
    }
    for note in &plan.notes {
        tracing::warn!(subscription = %settings.subscription, note = %note, "settings");
    }

    let retry = sub.pending_retry().map(str::to_owned);
    let failed = status
        .failed_for(&spec.server, &spec.channel)
        .cloned()
        .filter(|f| f.sequence >= index.sequence);
    let waiting = match (&failed, &retry) {
        (Some(f), None) if !plan.is_noop() => Some(waiting_sentence(f.sequence, &f.reason)),
        _ => None,
    };
    if let Some(r) = &retry {
        status.handled_retry = Some(r.clone());
    }

    Ok(Decided {
        plan,
        waiting,
        diff_summaries: BTreeMap::new(),
    })
}

/// Where Event notes go during a check: published in order by a task, and
/// also shown in the running plan's activity.
struct Notes {
    tx: tokio::sync::mpsc::UnboundedSender<Note>,
    publisher: tokio::task::JoinHandle<()>,
}

impl Notes {
    fn start(ctx: &Context, sub: &ChannelSubscription) -> Self {
        let ns = sub.namespace().unwrap_or_else(|| ctx.namespace.clone());
        let name = sub.name_any();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Note>();
        let publisher = {
            let events = ctx.events.clone();
            let sub = sub.clone();
            let state = ctx.state.clone();
            let key = format!("{ns}/{name}");
            tokio::spawn(async move {
                while let Some(note) = rx.recv().await {
                    state
                        .push_activity(&key, None, note.message.clone(), false)
                        .await;
                    events.publish(&sub, &note).await;
                }
            })
        };

        Self { tx, publisher }
    }

    /// Waits until every note sent so far is published.
    async fn finish(self) {
        drop(self.tx);
        let _ = self.publisher.await;
    }
}

/// Applies the plan (unless it waits or has nothing to do): charts
/// downloaded and verified, the accepted sequence written, then the executor.
async fn act(
    ctx: &Context,
    sub: &ChannelSubscription,
    status: &mut ChannelSubscriptionStatus,
    observed: &Observed,
    decided: &Decided,
    notes: &Notes,
    now: Timestamp,
) -> Result<Option<ExecReport>, Stop> {
    let spec = &sub.spec;
    let ns = sub.namespace().unwrap_or_else(|| ctx.namespace.clone());
    let name = sub.name_any();
    let key = format!("{ns}/{name}");
    let (plan, waiting) = (&decided.plan, &decided.waiting);
    let snapshot = &observed.snapshot;
    let installed = &observed.installed;
    let tx = &notes.tx;
    let preview_state = match (&waiting, plan.is_noop()) {
        (Some(w), _) => PreviewState::Waiting(w.clone()),
        (None, true) => PreviewState::NothingToDo,
        (None, false) => PreviewState::Applying,
    };
    let applying = preview_state == PreviewState::Applying;
    ctx.state
        .update_view(&key, |v| {
            v.preview = Some(Preview::of(plan, preview_state, now));
            if applying {
                v.running = Some(Running {
                    sequence: plan.sequence,
                    started: Timestamp::now(),
                    activity: Vec::new(),
                });
            }
        })
        .await;
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
    let progress_task = {
        let state = ctx.state.clone();
        let key = key.clone();
        tokio::spawn(async move {
            while let Some(step) = progress_rx.recv().await {
                state
                    .push_activity(&key, Some(step.release), step.message, step.done)
                    .await;
            }
        })
    };

    let mut report: Option<ExecReport> = None;
    if waiting.is_none() && !plan.is_noop() {
        let mut charts = BTreeMap::new();
        let mut crds = BTreeMap::new();
        let mut timeouts = BTreeMap::new();
        // Every chart is downloaded and verified before the first change (a
        // chart that fails applies nothing), several at a time.
        // Owned charts: a stream over borrowed ones trips the compiler's
        // higher-ranked lifetime check where the future must be Send.
        let wanted: Vec<_> = plan.actions().map(|a| a.target.chart.clone()).collect();
        let fetcher = &ctx.fetcher;
        let fetched: Vec<_> = futures::stream::iter(wanted)
            .map(|chart| async move { fetcher.chart(snapshot, &chart).await })
            .buffered(usize::from(spec.concurrency).max(1))
            .collect()
            .await;
        for (action, fetched) in plan.actions().zip(fetched) {
            let path = fetched.map_err(|e| fetch_stop(ctx, sub, &e, false))?;
            if action.target.crds.is_some_and(|p| p.applies()) {
                let read = ctx
                    .fetcher
                    .chart_crds(snapshot, &action.target.chart, &path)
                    .await
                    .map_err(|e| fetch_stop(ctx, sub, &e, false))?;
                crds.insert(action.release.clone(), read);
            }
            charts.insert(action.release.clone(), path);
            timeouts.insert(
                action.release.clone(),
                snapshot.health_timeout(
                    &action.release,
                    &action.target.chart.version,
                    spec.health_timeout,
                ),
            );
        }
        let settings = ExecSettings {
            policy: spec.rollback_policy,
            concurrency: usize::from(spec.concurrency),
            timeouts,
            default_timeout: spec.health_timeout,
            rollback_to: installed.rollback_to.clone(),
            charts,
            crds,
            agent_release: ctx.agent_release.clone(),
            backups: plan
                .actions()
                .filter_map(|a| {
                    super::backup::wanted(
                        &a.release,
                        a.target.backup.as_ref(),
                        spec.backups.get(&a.release),
                    )
                    .transpose()
                    .map(|w| (a.release.clone(), w))
                })
                .collect(),
            velero: spec.velero.clone(),
            subscription: (ns.clone(), name.clone()),
        };
        // The accepted sequence is on record before the first change of it,
        // and Ready says the sequence is being applied (not the last check's
        // verdict), also if this agent is killed before it ends.
        status.set_condition(
            "Ready",
            ConditionStatus::Unknown,
            "Progressing",
            format!(
                "applying {}#{}: {} release(s) to install or upgrade",
                plan.channel,
                plan.sequence,
                plan.actions().count()
            ),
            sub.metadata.generation,
            now,
        );
        let api: Api<ChannelSubscription> = Api::namespaced(ctx.client.clone(), &ns);
        let journal = StatusJournal::new(api, &ns, &name, status.clone());
        journal.flush().await.map_err(|e| {
            Stop::error(format!(
                "cannot record the accepted sequence before applying it: {}",
                describe(&e)
            ))
        })?;
        let ops = ClusterOperator {
            helm: &ctx.helm,
            health: &ctx.health,
            client: &ctx.client,
            driver: ctx.driver,
            gate: &ctx.gate,
        };
        let executor = Executor {
            ops: &ops,
            notes: Some(tx.clone()),
            progress: Some(progress_tx.clone()),
            journal: &journal,
            gate: &ctx.gate,
            holder: &ctx.holder,
        };
        let done = executor.run(plan, &settings).await;
        // Intents of operations left unfinished stay for the next start.
        status.in_flight = journal.in_flight().await;
        ctx.metrics.operations(&key, &done.operations);
        ctx.state
            .update_view(&key, |v| {
                v.keep_details(&done.operations);
                if let Some(p) = v.preview.as_mut() {
                    // A failed run waits from now on, as the next check will say.
                    p.state = match &done.failure {
                        None => PreviewState::Applied,
                        Some(why) => PreviewState::Waiting(waiting_sentence(plan.sequence, why)),
                    };
                }
            })
            .await;
        report = Some(done);
    }
    drop(progress_tx);
    let _ = progress_task.await;

    Ok(report)
}

/// Records what the check found and did: release states, Events for
/// releases left alone, the failed sequence, the conditions; the outcome.
#[allow(clippy::too_many_arguments)] // the steps' results, each used once
async fn record(
    ctx: &Context,
    sub: &ChannelSubscription,
    status: &mut ChannelSubscriptionStatus,
    observed: &Observed,
    decided: &Decided,
    report: Option<ExecReport>,
    left_alone: &BTreeMap<ReleaseId, String>,
    notes: Notes,
    now: Timestamp,
) -> Outcome {
    let spec = &sub.spec;
    let ns = sub.namespace().unwrap_or_else(|| ctx.namespace.clone());
    let name = sub.name_any();
    let generation = sub.metadata.generation;
    let index = observed.snapshot.verified.index();
    let snapshot = &observed.snapshot;
    let settings = &observed.settings;
    let (plan, waiting) = (&decided.plan, &decided.waiting);
    let tx = &notes.tx;
    // Events for releases left alone, when their state or reason is new.
    let mut releases = release_statuses(
        plan,
        report.as_ref(),
        waiting.as_deref(),
        &status.releases,
        now,
    );
    // The status carries the diff's summary; the diff itself is in the web UI,
    // /api/v1/status and `coxswain diff` (the status has a size budget).
    for r in &mut releases {
        if r.state == ReleaseState::AwaitingApproval
            && let Some(summary) = decided.diff_summaries.get(&r.name)
        {
            r.message = format!("{}; {summary}", r.message);
        }
    }
    for r in &releases {
        let noteworthy = matches!(
            r.state,
            ReleaseState::Held
                | ReleaseState::Blocked
                | ReleaseState::Conflict
                | ReleaseState::Skipped
                | ReleaseState::Orphaned
                | ReleaseState::Waiting
        );
        let seen = status
            .releases
            .iter()
            .any(|p| p.name == r.name && p.state == r.state && p.message == r.message);
        if noteworthy && !seen && plan.action(&r.name).is_none() {
            let (why, verb) = if r.state == ReleaseState::Waiting {
                (reason::WAITING_FOR_ROLLOUT, "Wait")
            } else {
                (reason::SKIPPED, "Skip")
            };
            let _ = tx.send(Note::normal(
                why,
                verb,
                format!("{}/{}: {}", r.namespace, r.name, r.message),
            ));
        }
        // Said once, when the release starts waiting (not again at each check).
        let was_awaiting = status.releases.iter().any(|p| {
            p.name == r.name
                && p.state == ReleaseState::AwaitingApproval
                && p.desired_version == r.desired_version
        });
        if r.state == ReleaseState::AwaitingApproval && !was_awaiting {
            let _ = tx.send(Note::normal(
                reason::AWAITING_APPROVAL,
                "Wait",
                format!("{}/{}: {}", r.namespace, r.name, r.message),
            ));
        }
    }
    // Sequences the maintainers withdrew: said once when this cluster failed on one.
    let withdrawn: Vec<crate::format::Withdrawn> =
        index.withdrawn.iter().rev().take(10).cloned().collect();
    if let Some(failed) = status.failed_for(&spec.server, &spec.channel)
        && let Some(w) = withdrawn.iter().find(|w| w.sequence == failed.sequence)
        && !status.withdrawn.contains(w)
    {
        let _ = tx.send(Note::warning(
            reason::WITHDRAWN,
            "Withdraw",
            format!(
                "sequence {}, which failed here, was withdrawn by the channel's maintainers: {}",
                w.sequence, w.reason
            ),
        ));
    }
    status.withdrawn = withdrawn;
    if let Some(w) = &waiting {
        let said = status
            .last_check
            .as_ref()
            .is_some_and(|lc| lc.message.contains(w.as_str()));
        if !said {
            let _ = tx.send(Note::warning(reason::WAITING, "Wait", w.clone()));
        }
    }
    // Every note is sent; wait until they are published so `--once` exits after them.
    notes.finish().await;

    for r in &mut releases {
        if let Some(why) = left_alone.get(&ReleaseId::new(&r.namespace, &r.name)) {
            r.message = format!("helm reports {why}");
        }
    }
    status.releases = releases;
    if let Some(r) = &report {
        for done in &r.operations {
            status.push_history(done.operation.clone());
        }
        match &r.failure {
            Some(why) => {
                status.failed_sequence = Some(FailedSequence {
                    server: crate::crd::server_key(&spec.server).to_owned(),
                    channel: spec.channel.clone(),
                    sequence: index.sequence,
                    reason: super::events::truncate(why, 2000),
                    at: now,
                });
            }
            None => status.failed_sequence = None,
        }
    } else if waiting.is_none() && status.failed_for(&spec.server, &spec.channel).is_some() {
        // Nothing to do at a sequence at least as new as the failed one: it is behind us.
        status.failed_sequence = None;
    }
    let summary: Summary = summarize(plan, &status.releases, report.as_ref(), waiting.as_deref());
    set_planned_conditions(
        status,
        &summary,
        plan,
        snapshot.trust_root_version,
        waiting.is_some(),
        generation,
        now,
    );
    tracing::info!(subscription = %settings.subscription, sequence = plan.sequence, result = %crate::crd::wire_name(&summary.result), message = %summary.message, "reconciled");
    let wake = match (plan.wake, report.as_ref().and_then(|r| r.wake)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    status.next_start = wake;
    Outcome {
        verdict: summary.verdict,
        message: format!("{ns}/{name}: {}", summary.message),
        sequence: Some(plan.sequence),
        wake,
    }
}
