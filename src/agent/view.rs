//! What the web UI and `/api/v1/status` show of a subscription, kept by the
//! agent as it works: the status it computed, the verified index's times, the
//! plan before it is applied (the preview), what a running plan is doing, and
//! health checks object by object. Nothing here holds values or secrets: the
//! spec is summarised by names and versions only.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::crd::{ChannelSubscription, ChannelSubscriptionStatus, RollbackPolicy};
use crate::format::Timestamp;
use crate::plan::{ActionKind, Plan};

use super::executor::OperationDetail;

/// How many operations with health details are kept per release (the status
/// keeps the last 50 operations of the subscription in brief).
pub const MAX_DETAILS_PER_RELEASE: usize = 20;

/// How many progress lines a running plan keeps.
pub const MAX_ACTIVITY: usize = 100;

/// The parts of a subscription's spec people need to read its page: no values.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SpecSummary {
    /// The update site.
    pub server: String,
    /// The channel.
    pub channel: String,
    /// Polling interval (`5m`).
    pub interval: String,
    /// Suspended: nothing is checked.
    pub suspend: bool,
    /// Release → pinned version.
    pub pins: BTreeMap<String, String>,
    /// Held releases.
    pub holds: Vec<String>,
    /// Releases with cluster values (their content is never shown).
    pub values_for: Vec<String>,
    /// `release` or `channel`.
    pub rollback_policy: String,
    /// The trust anchor (`ConfigMap ns/name key`), not its content.
    pub trust_ref: String,
}

impl SpecSummary {
    /// The summary of `sub`'s spec.
    pub fn of(sub: &ChannelSubscription) -> Self {
        let spec = &sub.spec;
        Self {
            server: spec.server.clone(),
            channel: spec.channel.clone(),
            interval: spec.interval.to_string(),
            suspend: spec.suspend,
            pins: spec.pins.clone(),
            holds: spec.holds.clone(),
            values_for: spec.values.keys().cloned().collect(),
            rollback_policy: match spec.rollback_policy {
                RollbackPolicy::Release => "release",
                RollbackPolicy::Channel => "channel",
            }
            .to_owned(),
            trust_ref: format!(
                "{:?} {} key {}",
                spec.trust_ref.kind, spec.trust_ref.name, spec.trust_ref.key
            ),
        }
    }
}

/// The verified index a check used.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IndexSummary {
    /// Its sequence.
    pub sequence: u64,
    /// When it was published.
    pub published: Timestamp,
    /// When it expires.
    pub expires: Timestamp,
    /// The trust root version it verified with.
    pub trust_root_version: u64,
}

/// What the plan does with one release.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum PreviewAction {
    /// Not installed: install.
    Install,
    /// Upgrade to a newer chart version, or the same version with other values.
    Upgrade,
    /// Upgrade to an older chart version (the channel went back).
    Downgrade,
    /// Left alone (held, blocked, conflict, dependency not ready, pin unavailable).
    Skip,
    /// Already at the desired chart and values.
    Unchanged,
    /// No longer in the channel; left installed.
    Orphan,
}

/// One release in a preview.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PreviewItem {
    /// The release.
    pub release: String,
    /// Its namespace.
    pub namespace: String,
    /// What happens to it.
    pub action: PreviewAction,
    /// Installed version, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Version aimed at, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Dependency layer (1-based) for installs and upgrades.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// Why.
    pub reason: String,
    /// A pin chose the version.
    pub pinned: bool,
    /// A hold applies.
    pub held: bool,
}

/// Whether a preview's plan is applied.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", tag = "state", content = "reason")]
pub enum PreviewState {
    /// Nothing to install or upgrade.
    NothingToDo,
    /// Being applied now.
    Applying,
    /// Applied by the last check.
    Applied,
    /// Not applied; the reason says why: the sequence failed before and waits
    /// (and how to retry), or the check stopped before applying (a chart that
    /// failed to download or verify).
    Waiting(String),
}

/// The plan for the newest verified index, as computed before it is applied.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// The index sequence planned.
    pub sequence: u64,
    /// When the plan was computed.
    pub planned_at: Timestamp,
    /// Applied, being applied, waiting, or nothing to do.
    pub state: PreviewState,
    /// Every release of the index and every orphan, installs and upgrades in
    /// dependency order first.
    pub items: Vec<PreviewItem>,
    /// Settings that name releases the index does not have.
    pub notes: Vec<String>,
}

impl Preview {
    /// The preview of `plan`.
    pub fn of(plan: &Plan, state: PreviewState, now: Timestamp) -> Self {
        let mut items = Vec::new();
        for (i, layer) in plan.layers.iter().enumerate() {
            for a in layer {
                let (action, from) = match &a.kind {
                    ActionKind::Install => (PreviewAction::Install, None),
                    ActionKind::Upgrade { from_version, .. } => {
                        let older = crate::format::is_older(&a.target.chart.version, from_version);
                        let action = if older {
                            PreviewAction::Downgrade
                        } else {
                            PreviewAction::Upgrade
                        };
                        (action, Some(from_version.clone()))
                    }
                };
                items.push(PreviewItem {
                    release: a.release.clone(),
                    namespace: a.namespace.clone(),
                    action,
                    from,
                    to: Some(a.target.chart.version.clone()),
                    layer: Some(i + 1),
                    reason: a.reason.clone(),
                    pinned: a.pinned,
                    held: false,
                });
            }
        }
        for s in &plan.skipped {
            let action = match s.why {
                crate::plan::SkipReason::Unchanged { .. } => PreviewAction::Unchanged,
                _ => PreviewAction::Skip,
            };
            items.push(PreviewItem {
                release: s.release.clone(),
                namespace: s.namespace.clone(),
                action,
                from: s.installed_version.clone(),
                to: s.desired_version.clone(),
                layer: None,
                reason: s.reason(),
                pinned: s.pinned,
                held: s.held,
            });
        }
        for o in &plan.orphans {
            items.push(PreviewItem {
                release: o.release.clone(),
                namespace: o.namespace.clone(),
                action: PreviewAction::Orphan,
                from: Some(o.version.clone()),
                to: None,
                layer: None,
                reason: o.reason.clone(),
                pinned: false,
                held: false,
            });
        }
        Self {
            sequence: plan.sequence,
            planned_at: now,
            state,
            items,
            notes: plan.notes.clone(),
        }
    }
}

/// One line of what a running plan did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// When.
    pub at: Timestamp,
    /// `namespace/release`, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// What happened, for people.
    pub message: String,
    /// The release's part of the run is over (its last line says how it ended).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
}

/// A plan being applied.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Running {
    /// The sequence being applied.
    pub sequence: u64,
    /// When it started.
    pub started: Timestamp,
    /// What happened so far, oldest first.
    pub activity: Vec<Activity>,
}

impl Running {
    /// Appends a line, dropping the oldest beyond [`MAX_ACTIVITY`].
    pub fn push(&mut self, activity: Activity) {
        self.activity.push(activity);
        if self.activity.len() > MAX_ACTIVITY {
            let excess = self.activity.len() - MAX_ACTIVITY;
            self.activity.drain(..excess);
        }
    }
}

/// Everything the UI shows of one subscription.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Its spec, without values.
    pub spec: Option<SpecSummary>,
    /// The status as the last check computed it (written unless only the check time moved).
    pub status: Option<ChannelSubscriptionStatus>,
    /// The verified index of the last successful check.
    pub index: Option<IndexSummary>,
    /// The plan of the last check that got that far.
    pub preview: Option<Preview>,
    /// The plan being applied now.
    pub running: Option<Running>,
    /// When the next check is due.
    pub next_check: Option<Timestamp>,
    /// Operations with health detail per `namespace/release`, newest last.
    pub details: BTreeMap<String, VecDeque<OperationDetail>>,
    /// The rendered diffs of the releases awaiting approval.
    pub diffs: Vec<super::diff::ReleaseDiff>,
}

impl View {
    /// Keeps the operations of a run, at most [`MAX_DETAILS_PER_RELEASE`] per release.
    pub fn keep_details(&mut self, done: &[OperationDetail]) {
        for d in done {
            let key = format!("{}/{}", d.operation.namespace, d.operation.release);
            let list = self.details.entry(key).or_default();
            list.push_back(d.clone());
            while list.len() > MAX_DETAILS_PER_RELEASE {
                list.pop_front();
            }
        }
    }

    /// The detail of an operation of the status history, if still in memory.
    pub fn detail_of(&self, op: &crate::crd::Operation) -> Option<&OperationDetail> {
        self.details
            .get(&format!("{}/{}", op.namespace, op.release))?
            .iter()
            .find(|d| {
                d.operation.started == op.started
                    && d.operation.operation == op.operation
                    && d.operation.sequence == op.sequence
            })
    }
}
