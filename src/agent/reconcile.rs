//! One reconcile of one subscription: read the trust anchor, fetch and verify
//! the channel, resolve cluster values, read what helm has installed, plan,
//! execute (unless a failed sequence waits), and write the status.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, ResourceExt};
use serde_json::{Map, Value};

use crate::crd::{
    ChannelSubscription, ChannelSubscriptionStatus, CheckResult, FailedSequence, KeyRef,
    KeyRefKind, ReleaseState,
};
use crate::format::Timestamp;
use crate::format::spec::MAX_VALUES_BYTES;
use crate::plan::{ReleaseId, Settings, plan};

use super::intent::StatusJournal;
use super::ops::ClusterOperator;
use super::repair::{Repair, RepairSettings};
use crate::site_verify::describe;

use super::events::{Note, reason};
use super::executor::{ExecReport, ExecSettings, Executor, Progress};
use super::fetch::{FetchOutcome, FetchRequest};
use super::installed::read_installed;
use super::status::{
    Summary, Verdict, release_statuses, set_planned_conditions, set_stopped_conditions, summarize,
    worth_writing, write_status,
};
use super::view::{IndexSummary, Preview, PreviewState, Running, SpecSummary};
use super::{AgentError, Context};
use crate::metrics::{CheckReport, FetchResult};

/// Largest trust anchor read from a ConfigMap or Secret.
const MAX_ANCHOR_BYTES: usize = crate::format::trust::MAX_TRUST_BYTES;

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
}

/// What a check learnt that the metrics want after the status is final.
#[derive(Default)]
struct Seen {
    /// The verified index, when one verified.
    index: Option<IndexSummary>,
    /// Chart name per release of that index.
    charts: BTreeMap<String, String>,
}

/// A reconcile that ended before planning.
struct Stop {
    result: CheckResult,
    message: String,
}

impl Stop {
    fn error(message: String) -> Self {
        Self {
            result: CheckResult::Error,
            message,
        }
    }
}

/// Why a ConfigMap or Secret key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyRefError {
    /// The object could not be read.
    #[error("cannot read {kind:?} {namespace}/{name}")]
    Get {
        /// ConfigMap or Secret.
        kind: KeyRefKind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The key is not in its data.
    #[error("{kind:?} {namespace}/{name} has no key `{key}`")]
    MissingKey {
        /// ConfigMap or Secret.
        kind: KeyRefKind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The key.
        key: String,
    },
    /// The value is larger than allowed.
    #[error("{kind:?} {namespace}/{name} key `{key}` is larger than {limit} bytes")]
    TooLarge {
        /// ConfigMap or Secret.
        kind: KeyRefKind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The key.
        key: String,
        /// The limit.
        limit: usize,
    },
    /// A values document is not a YAML mapping.
    #[error("{origin}: values must be a YAML mapping")]
    NotAMapping {
        /// `Kind ns/name key`.
        origin: String,
    },
    /// A values document is not valid YAML.
    #[error(transparent)]
    Yaml(#[from] crate::yaml::YamlError),
}

/// Reads the bytes of a ConfigMap or Secret key in `namespace`.
pub async fn read_key_ref(
    client: &kube::Client,
    namespace: &str,
    key_ref: &KeyRef,
    limit: usize,
) -> Result<Vec<u8>, KeyRefError> {
    let get_err = |source| KeyRefError::Get {
        kind: key_ref.kind,
        namespace: namespace.to_owned(),
        name: key_ref.name.clone(),
        source,
    };
    let missing = || KeyRefError::MissingKey {
        kind: key_ref.kind,
        namespace: namespace.to_owned(),
        name: key_ref.name.clone(),
        key: key_ref.key.clone(),
    };
    let bytes = match key_ref.kind {
        KeyRefKind::ConfigMap => {
            let cm = Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .get(&key_ref.name)
                .await
                .map_err(get_err)?;
            match (cm.data, cm.binary_data) {
                (Some(data), _) if data.contains_key(&key_ref.key) => data
                    .get(&key_ref.key)
                    .cloned()
                    .unwrap_or_default()
                    .into_bytes(),
                (_, Some(binary)) => binary.get(&key_ref.key).ok_or_else(missing)?.0.clone(),
                _ => return Err(missing()),
            }
        }
        KeyRefKind::Secret => {
            let secret = Api::<Secret>::namespaced(client.clone(), namespace)
                .get(&key_ref.name)
                .await
                .map_err(get_err)?;
            secret
                .data
                .and_then(|d| d.get(&key_ref.key).cloned())
                .ok_or_else(missing)?
                .0
        }
    };
    if bytes.len() > limit {
        return Err(KeyRefError::TooLarge {
            kind: key_ref.kind,
            namespace: namespace.to_owned(),
            name: key_ref.name.clone(),
            key: key_ref.key.clone(),
            limit,
        });
    }
    Ok(bytes)
}

/// Reads and merges a release's `valuesFrom` documents, in order.
async fn cluster_values(
    client: &kube::Client,
    namespace: &str,
    refs: &[KeyRef],
) -> Result<Map<String, Value>, KeyRefError> {
    let mut merged = Map::new();
    for key_ref in refs {
        let bytes = read_key_ref(client, namespace, key_ref, MAX_VALUES_BYTES).await?;
        let origin = format!(
            "{:?} {namespace}/{} key {}",
            key_ref.kind, key_ref.name, key_ref.key
        );
        let doc: Option<Value> = crate::yaml::from_slice(
            &bytes,
            &origin,
            crate::yaml::Limits::bytes(MAX_VALUES_BYTES),
        )?;
        match doc {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => merged = crate::plan::merge_values(&merged, &map),
            Some(_) => return Err(KeyRefError::NotAMapping { origin }),
        }
    }
    Ok(merged)
}

/// Releases that subscriptions created before `sub` (in the same namespace)
/// report: they belong to those.
async fn claimed_elsewhere(
    ctx: &Context,
    sub: &ChannelSubscription,
) -> Result<BTreeMap<ReleaseId, String>, kube::Error> {
    let ns = sub.namespace().unwrap_or_default();
    let api: Api<ChannelSubscription> = Api::namespaced(ctx.client.clone(), &ns);
    let all = api.list(&Default::default()).await?;
    let key = |s: &ChannelSubscription| {
        (
            s.metadata.creation_timestamp.clone().map(|t| t.0),
            s.name_any(),
        )
    };
    let mine = key(sub);
    let mut out = BTreeMap::new();
    for other in all.items.iter().filter(|o| key(o) < mine) {
        let owner = format!("{ns}/{}", other.name_any());
        for r in other.status.iter().flat_map(|s| &s.releases) {
            if r.state != ReleaseState::Conflict {
                out.entry(ReleaseId::new(&r.namespace, &r.name))
                    .or_insert_with(|| owner.clone());
            }
        }
    }
    Ok(out)
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
        }
    } else {
        match check(ctx, sub, &mut status, now, &mut seen).await {
            Ok(outcome) => outcome,
            Err(stop) => {
                let note = match stop.result {
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
                }
            }
        }
    };
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
    } else if worth_writing(previous.as_ref(), &status, QUIET_WRITE_INTERVAL) {
        write_status(&api, &name, &status)
            .await
            .map_err(|source| AgentError::WriteStatus {
                subscription: format!("{ns}/{name}"),
                source,
            })?;
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
        gate: &ctx.gate,
    };
    let settings = RepairSettings {
        timeouts,
        default_timeout: sub.spec.health_timeout.to_std(),
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
fn fetch_stop(
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

async fn check(
    ctx: &Context,
    sub: &ChannelSubscription,
    status: &mut ChannelSubscriptionStatus,
    now: Timestamp,
    seen: &mut Seen,
) -> Result<Outcome, Stop> {
    let spec = &sub.spec;
    let ns = sub.namespace().unwrap_or_else(|| ctx.namespace.clone());
    let name = sub.name_any();
    let generation = sub.metadata.generation;

    let anchor = read_key_ref(&ctx.client, &ns, &spec.trust_ref, MAX_ANCHOR_BYTES)
        .await
        .map_err(|e| Stop::error(format!("trust anchor: {}", describe(&e))))?;
    let anchor_origin = format!(
        "{:?} {ns}/{} key {}",
        spec.trust_ref.kind, spec.trust_ref.name, spec.trust_ref.key
    );
    let min_sequence = status
        .accepted_for(&spec.server, &spec.channel)
        .map(|a| a.sequence)
        .unwrap_or(0);
    let FetchOutcome {
        snapshot,
        not_modified,
        refetched,
    } = ctx
        .fetcher
        .fetch(FetchRequest {
            server: &spec.server,
            channel: &spec.channel,
            anchor: &anchor,
            anchor_origin: &anchor_origin,
            min_sequence,
            trust_floor: status.trust_root_floor(&spec.server),
            now,
        })
        .await
        .map_err(|e| fetch_stop(ctx, sub, &e, true))?;
    let index = snapshot.verified.index();
    let key = format!("{ns}/{name}");
    ctx.metrics.index_fetch(
        &key,
        &spec.channel,
        if not_modified {
            FetchResult::NotModified
        } else {
            FetchResult::Updated
        },
    );
    seen.index = Some(IndexSummary {
        sequence: index.sequence,
        published: index.published,
        expires: index.expires,
        trust_root_version: snapshot.trust_root_version,
    });
    seen.charts = index
        .releases
        .iter()
        .map(|r| (r.name.clone(), r.chart.name.clone()))
        .collect();
    tracing::debug!(subscription = %format!("{ns}/{name}"), sequence = index.sequence, not_modified, refetched, "index verified");
    status.record_accepted(
        &spec.server,
        &spec.channel,
        index.sequence,
        snapshot.trust_root_version,
        now,
    );

    let mut values = BTreeMap::new();
    for (release, rv) in &spec.values {
        let merged = cluster_values(&ctx.client, &ns, &rv.values_from)
            .await
            .map_err(|e| Stop::error(format!("values for `{release}`: {}", describe(&e))))?;
        values.insert(release.clone(), merged);
    }
    let claimed = claimed_elsewhere(ctx, sub)
        .await
        .map_err(|e| Stop::error(format!("cannot list subscriptions: {e}")))?;
    let settings = Settings {
        subscription: format!("{ns}/{name}"),
        pins: spec.pins.clone(),
        holds: spec.holds.iter().cloned().collect(),
        cluster_values: values,
        claimed_elsewhere: claimed,
    };
    let namespaces: BTreeSet<String> = index
        .releases
        .iter()
        .map(|r| r.namespace.clone())
        .chain(status.releases.iter().map(|r| r.namespace.clone()))
        .collect();
    let mut installed = read_installed(&ctx.helm, &namespaces, &ctx.history)
        .await
        .map_err(|e| Stop::error(format!("reading installed releases: {}", describe(&e))))?;

    // Repair what a killed helm or agent left behind, then look again.
    let managed: BTreeSet<ReleaseId> = index
        .releases
        .iter()
        .filter(|r| !spec.holds.contains(&r.name))
        .map(|r| ReleaseId::new(&r.namespace, &r.name))
        .collect();
    let decided = super::repair::decide_all(
        &status.in_flight,
        &installed,
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
                    snapshot
                        .health_timeout(&r.name, &r.chart.version, spec.health_timeout)
                        .to_std(),
                )
            })
            .collect();
        repair(ctx, sub, status, &decided, timeouts).await?;
        installed = read_installed(&ctx.helm, &namespaces, &ctx.history)
            .await
            .map_err(|e| Stop::error(format!("reading installed releases: {}", describe(&e))))?;
    }
    let plan =
        plan(index, &settings, &installed.releases).map_err(|e| Stop::error(describe(&e)))?;
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

    let preview_state = match (&waiting, plan.is_noop()) {
        (Some(w), _) => PreviewState::Waiting(w.clone()),
        (None, true) => PreviewState::NothingToDo,
        (None, false) => PreviewState::Applying,
    };
    let applying = preview_state == PreviewState::Applying;
    ctx.state
        .update_view(&key, |v| {
            v.preview = Some(Preview::of(&plan, preview_state, now));
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
        let mut timeouts = BTreeMap::new();
        for action in plan.actions() {
            let path = ctx
                .fetcher
                .chart(&snapshot, &action.target.chart)
                .await
                .map_err(|e| fetch_stop(ctx, sub, &e, false))?;
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
        };
        // The accepted sequence is on record before the first change of it.
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
        let done = executor.run(&plan, &settings).await;
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

    // Events for releases left alone, when their state or reason is new.
    let releases = release_statuses(
        &plan,
        report.as_ref(),
        waiting.as_deref(),
        &status.releases,
        now,
    );
    for r in &releases {
        let noteworthy = matches!(
            r.state,
            ReleaseState::Held
                | ReleaseState::Blocked
                | ReleaseState::Conflict
                | ReleaseState::Skipped
                | ReleaseState::Orphaned
        );
        let seen = status
            .releases
            .iter()
            .any(|p| p.name == r.name && p.state == r.state && p.message == r.message);
        if noteworthy && !seen && plan.action(&r.name).is_none() {
            let _ = tx.send(Note::normal(
                reason::SKIPPED,
                "Skip",
                format!("{}/{}: {}", r.namespace, r.name, r.message),
            ));
        }
    }
    if let Some(w) = &waiting {
        let said = status
            .last_check
            .as_ref()
            .is_some_and(|lc| lc.message.contains(w.as_str()));
        if !said {
            let _ = tx.send(Note::warning(reason::WAITING, "Wait", w.clone()));
        }
    }
    drop(tx);
    // Every note is sent; wait until they are published so `--once` exits after them.
    let _ = publisher.await;

    let mut releases = releases;
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
    let summary: Summary = summarize(&plan, &status.releases, report.as_ref(), waiting.as_deref());
    set_planned_conditions(
        status,
        &summary,
        &plan,
        snapshot.trust_root_version,
        waiting.is_some(),
        generation,
        now,
    );
    tracing::info!(subscription = %settings.subscription, sequence = plan.sequence, result = ?summary.result, message = %summary.message, "reconciled");
    Ok(Outcome {
        verdict: summary.verdict,
        message: format!("{ns}/{name}: {}", summary.message),
        sequence: Some(plan.sequence),
    })
}
