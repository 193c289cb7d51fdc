//! `/api/v1/status`: what the UI shows, as JSON (documented in docs/ui.md).
//! The HTML pages render this same document, so the two cannot disagree.

use serde::Serialize;

use crate::agent::AgentState;
use crate::agent::executor::OperationDetail;
use crate::agent::leader::LeaderView;
use crate::agent::view::{IndexSummary, Preview, Running, SpecSummary};
use crate::crd::{Condition, FailedSequence, LastCheck, Operation, ReleaseStatus};
use crate::format::Timestamp;

/// An index expiring sooner than this is flagged (the alert uses the same bound).
pub const EXPIRY_WARNING: time::Duration = time::Duration::days(1);

/// The whole document.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDocument {
    /// The document's version (`coxswain.dev/v1`).
    pub api_version: &'static str,
    /// When it was generated.
    pub generated_at: Timestamp,
    /// The agent's version.
    pub agent_version: &'static str,
    /// The namespace the agent serves.
    pub namespace: String,
    /// Whether the agent reaches the Kubernetes API.
    pub ready: bool,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_ready_reason: Option<String>,
    /// Who leads: with leader election only the leader acts; a follower shows
    /// the subscriptions' status as the leader wrote it.
    pub leader: LeaderView,
    /// Every subscription the agent has seen, by name.
    pub subscriptions: Vec<SubscriptionDocument>,
}

/// One subscription.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionDocument {
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its spec, without values (null until the agent reconciled it once).
    pub spec: Option<SpecSummary>,
    /// The index the last successful check verified.
    pub index: Option<IndexSummary>,
    /// The index expires within a day (or has expired).
    pub expires_soon: bool,
    /// Highest sequence accepted for the subscription's server and channel.
    pub accepted_sequence: Option<u64>,
    /// A sequence that failed and is not retried on its own.
    pub failed_sequence: Option<FailedSequence>,
    /// Sequences the maintainers withdrew, with their reasons (newest first).
    pub withdrawn: Vec<crate::format::Withdrawn>,
    /// The last check.
    pub last_check: Option<LastCheck>,
    /// When the next check is due.
    pub next_check: Option<Timestamp>,
    /// When the first release the rollout gate holds (wave, maintenance window) may start.
    pub next_start: Option<Timestamp>,
    /// The last reconcile's one-sentence outcome.
    pub message: String,
    /// The standard conditions.
    pub conditions: Vec<Condition>,
    /// Every release and where it stands.
    pub releases: Vec<ReleaseStatus>,
    /// The plan for the newest verified index.
    pub preview: Option<Preview>,
    /// The plan being applied now.
    pub running: Option<Running>,
    /// What the upgrades awaiting approval would change: `helm template` of the
    /// new revision with this cluster's values against the installed manifest,
    /// object by object, Secrets by key only; bounded.
    pub diffs: Vec<crate::agent::diff::ReleaseDiff>,
    /// Recent operations, newest first, with health detail while in memory.
    pub history: Vec<HistoryEntry>,
}

/// An operation, with its health check object by object when the agent still
/// has it in memory (operations from before the agent started have only the summary).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The operation as `status.history` records it.
    #[serde(flatten)]
    pub operation: Operation,
    /// Exact wall time in seconds (the status rounds to whole seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<f64>,
    /// Exact wall time of the health check in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_elapsed_seconds: Option<f64>,
    /// Every object the health check looked at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub health_objects: Vec<ObjectDocument>,
}

/// One object of a health check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectDocument {
    /// Its kind.
    pub kind: String,
    /// Its namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// `current`, `inProgress` or `failed`.
    pub state: &'static str,
    /// Why it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn history_entry(op: &Operation, detail: Option<&OperationDetail>) -> HistoryEntry {
    HistoryEntry {
        operation: op.clone(),
        elapsed_seconds: detail.map(|d| d.elapsed.as_secs_f64()),
        health_elapsed_seconds: detail
            .and_then(|d| d.health.as_ref())
            .map(|h| h.elapsed.as_secs_f64()),
        health_objects: detail
            .and_then(|d| d.health.as_ref())
            .map(|h| {
                h.objects
                    .iter()
                    .map(|o| ObjectDocument {
                        kind: o.kind.clone(),
                        namespace: o.namespace.clone(),
                        name: o.name.clone(),
                        state: o.state.as_str(),
                        reason: o.reason.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The document for the agent's current state.
pub async fn status_document(agent: &AgentState, namespace: &str) -> StatusDocument {
    let snapshot = agent.snapshot().await;
    let readiness = agent.readiness();
    let now = Timestamp::now();
    let subscriptions = snapshot
        .into_iter()
        .map(|(key, state)| {
            let (ns, name) = key
                .split_once('/')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .unwrap_or_else(|| (namespace.to_owned(), key.clone()));
            let view = &state.view;
            let status = view.status.clone().unwrap_or_default();
            let expires_soon = view
                .index
                .is_some_and(|i| i.expires.datetime() - now.datetime() < EXPIRY_WARNING);
            let history = status
                .history
                .iter()
                .rev()
                .map(|op| history_entry(op, view.detail_of(op)))
                .collect();
            SubscriptionDocument {
                name,
                namespace: ns,
                spec: view.spec.clone(),
                index: view.index,
                expires_soon,
                accepted_sequence: status.accepted_sequence,
                failed_sequence: status.failed_sequence.clone(),
                withdrawn: status.withdrawn.clone(),
                last_check: status.last_check.clone(),
                next_check: view.next_check,
                next_start: status.next_start,
                message: state.message.clone(),
                conditions: status.conditions.clone(),
                releases: status.releases.clone(),
                preview: view.preview.clone(),
                running: view.running.clone(),
                diffs: view.diffs.clone(),
                history,
            }
        })
        .collect();
    StatusDocument {
        api_version: "coxswain.dev/v1",
        generated_at: now,
        agent_version: env!("CARGO_PKG_VERSION"),
        namespace: namespace.to_owned(),
        ready: readiness.is_ok(),
        not_ready_reason: readiness.err(),
        leader: agent.leader().view(),
        subscriptions,
    }
}
