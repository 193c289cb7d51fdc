//! The subscription's status after a reconcile: per-release states, the
//! check's result, the four conditions, and the verdict `--once` turns into
//! its exit code. Composing it is pure; [`write_status`] sends it with
//! server-side apply on the status subresource (field manager `coxswain`).

use std::collections::BTreeMap;

use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::crd::{
    ChannelSubscription, ChannelSubscriptionStatus, CheckResult, ConditionStatus, LastCheck,
    ReleaseState, ReleaseStatus, condition,
};
use crate::format::Timestamp;
use crate::plan::{Plan, SkipReason};

use super::executor::ExecReport;

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "coxswain";

/// How a reconcile ended, for `--once` and for requeueing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Every release is at its desired state (or the subscription is suspended).
    Done,
    /// A release stepped through an intermediate version (`upgradeFrom`) and
    /// takes its next hop on the next reconcile: not there yet, nothing wrong.
    Progressing,
    /// Something was rolled back, is degraded, or waits on a failed sequence.
    Degraded,
    /// The channel could not be checked or was refused.
    Error,
}

impl Verdict {
    /// `coxswain agent --once` exit code: 0, 2 or 1.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Done => 0,
            Self::Progressing | Self::Degraded => 2,
            Self::Error => 1,
        }
    }
}

/// Per-release statuses from a plan, what ran, and a waiting failed sequence.
///
/// `waiting` (a failed sequence's sentence) applies to the plan's actions when
/// they were not executed; `report` holds what was executed.
pub fn release_statuses(
    plan: &Plan,
    report: Option<&ExecReport>,
    waiting: Option<&str>,
    previous: &[ReleaseStatus],
    now: Timestamp,
) -> Vec<ReleaseStatus> {
    let mut out: Vec<ReleaseStatus> = Vec::new();
    for s in &plan.skipped {
        out.push(ReleaseStatus {
            name: s.release.clone(),
            namespace: s.namespace.clone(),
            version: s.installed_version.clone(),
            desired_version: s.desired_version.clone(),
            revision: s.revision,
            state: s.state(),
            message: s.reason(),
            since: now,
            pinned: s.pinned,
            held: s.held,
        });
    }
    let outcomes: BTreeMap<&str, _> = report
        .map(|r| r.outcomes.iter().map(|o| (o.release.as_str(), o)).collect())
        .unwrap_or_default();
    for action in plan.actions() {
        if let Some(o) = outcomes.get(action.release.as_str()) {
            out.push(ReleaseStatus {
                name: o.release.clone(),
                namespace: o.namespace.clone(),
                version: o.version.clone(),
                desired_version: o.desired_version.clone(),
                revision: o.revision,
                state: o.state,
                message: o.message.clone(),
                since: now,
                pinned: o.pinned,
                held: false,
            });
            continue;
        }
        let (version, revision) = match &action.kind {
            crate::plan::ActionKind::Install => (None, None),
            crate::plan::ActionKind::Upgrade {
                from_version,
                from_revision,
                ..
            } => (Some(from_version.clone()), Some(*from_revision)),
        };
        // Not executed: keep the state the previous run left (rolled back, failed).
        let before = previous
            .iter()
            .find(|p| p.name == action.release && p.namespace == action.namespace);
        let state = match before.map(|b| b.state) {
            Some(s @ (ReleaseState::RolledBack | ReleaseState::Failed)) => s,
            _ => ReleaseState::Skipped,
        };
        let message = match (waiting, before) {
            // The previous run may have said it already: saying it again on
            // every poll would grow the message and rewrite the status each time.
            (Some(w), Some(b))
                if matches!(state, ReleaseState::RolledBack | ReleaseState::Failed)
                    && b.message.ends_with(w) =>
            {
                b.message.clone()
            }
            (Some(w), Some(b))
                if matches!(state, ReleaseState::RolledBack | ReleaseState::Failed) =>
            {
                format!("{}; {w}", b.message)
            }
            (Some(w), _) => format!("{}; not applied: {w}", action.reason),
            (None, _) => action.reason.clone(),
        };
        out.push(ReleaseStatus {
            name: action.release.clone(),
            namespace: action.namespace.clone(),
            version,
            desired_version: Some(
                action
                    .step_toward
                    .clone()
                    .unwrap_or_else(|| action.target.chart.version.clone()),
            ),
            revision,
            state,
            message,
            since: now,
            pinned: action.pinned,
            held: false,
        });
    }
    for o in &plan.orphans {
        out.push(ReleaseStatus {
            name: o.release.clone(),
            namespace: o.namespace.clone(),
            version: Some(o.version.clone()),
            desired_version: None,
            revision: Some(o.revision),
            state: ReleaseState::Orphaned,
            message: o.reason.clone(),
            since: now,
            pinned: false,
            held: false,
        });
    }
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    // `since` moves only when the state changes.
    for r in &mut out {
        if let Some(p) = previous
            .iter()
            .find(|p| p.name == r.name && p.namespace == r.namespace && p.state == r.state)
        {
            r.since = p.since;
        }
    }
    out
}

/// True for a release state (or skip) that makes the subscription degraded.
fn is_degraded(r: &ReleaseStatus) -> bool {
    matches!(
        r.state,
        ReleaseState::RolledBack
            | ReleaseState::Failed
            | ReleaseState::Blocked
            | ReleaseState::Conflict
            | ReleaseState::Skipped
    ) || (r.state == ReleaseState::Held && !r.held)
}

fn degraded_reason(r: &ReleaseStatus) -> &'static str {
    match r.state {
        ReleaseState::RolledBack => condition::REASON_ROLLED_BACK,
        ReleaseState::Failed => condition::REASON_FAILED,
        ReleaseState::Conflict => condition::REASON_CONFLICT,
        _ => condition::REASON_BLOCKED,
    }
}

/// The outcome of a reconcile that reached the planning stage.
#[derive(Debug, Clone)]
pub struct Summary {
    /// For `lastCheck.result`.
    pub result: CheckResult,
    /// For `--once`.
    pub verdict: Verdict,
    /// One sentence for people.
    pub message: String,
}

/// How many releases a summary names; the rest are counted.
const MAX_LISTED: usize = 5;

/// The first [`MAX_LISTED`] items joined with `; `, and how many more there
/// are: a summary stays one readable sentence with a thousand releases.
fn listed(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(MAX_LISTED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > MAX_LISTED {
        text.push_str(&format!("; and {} more", items.len() - MAX_LISTED));
    }
    text
}

/// Summarises the release statuses of a reconcile.
pub fn summarize(
    plan: &Plan,
    releases: &[ReleaseStatus],
    report: Option<&ExecReport>,
    waiting: Option<&str>,
) -> Summary {
    let degraded: Vec<&ReleaseStatus> = releases.iter().filter(|r| is_degraded(r)).collect();
    let channel = format!("{}#{}", plan.channel, plan.sequence);
    if let Some(w) = waiting {
        return Summary {
            result: CheckResult::Degraded,
            verdict: Verdict::Degraded,
            message: format!("{channel}: {w}"),
        };
    }
    if let Some(failure) = report.and_then(|r| r.failure.as_deref()) {
        let rolled_back = releases.iter().any(|r| r.state == ReleaseState::RolledBack);
        return Summary {
            result: if rolled_back {
                CheckResult::RolledBack
            } else {
                CheckResult::Degraded
            },
            verdict: Verdict::Degraded,
            message: format!("{channel}: {failure}"),
        };
    }
    if !degraded.is_empty() {
        let list: Vec<String> = degraded
            .iter()
            .map(|r| format!("{}: {}", r.name, r.message))
            .collect();
        return Summary {
            result: CheckResult::Degraded,
            verdict: Verdict::Degraded,
            message: format!("{channel}: {}", listed(&list)),
        };
    }
    let stepping: Vec<String> = releases
        .iter()
        .filter(|r| {
            r.state == ReleaseState::UpToDate && !r.pinned && r.version != r.desired_version
        })
        .map(|r| {
            format!(
                "{} is at {} on its way to {} (next hop on the next check)",
                r.name,
                r.version.as_deref().unwrap_or("?"),
                r.desired_version.as_deref().unwrap_or("?")
            )
        })
        .collect();
    if !stepping.is_empty() {
        return Summary {
            result: CheckResult::Applied,
            verdict: Verdict::Progressing,
            message: format!("{channel}: {}", listed(&stepping)),
        };
    }
    let applied = report.map(|r| r.operations.len()).unwrap_or(0);
    let awaiting: Vec<String> = releases
        .iter()
        .filter(|r| r.state == ReleaseState::AwaitingApproval)
        .map(|r| {
            format!(
                "{} awaits approval of {}",
                r.name,
                r.desired_version.as_deref().unwrap_or("?")
            )
        })
        .collect();
    if !awaiting.is_empty() {
        // Not degraded: an administrator's decision is pending, nothing failed.
        return Summary {
            result: if applied > 0 {
                CheckResult::Applied
            } else {
                CheckResult::UpToDate
            },
            verdict: Verdict::Done,
            message: format!("{channel}: {}", listed(&awaiting)),
        };
    }
    if applied > 0 {
        Summary {
            result: CheckResult::Applied,
            verdict: Verdict::Done,
            message: format!(
                "{channel}: {} release(s) installed or upgraded",
                plan.actions().count()
            ),
        }
    } else {
        Summary {
            result: CheckResult::UpToDate,
            verdict: Verdict::Done,
            message: format!("{channel}: every release is at its desired state"),
        }
    }
}

/// Sets lastCheck and the conditions after a reconcile that planned.
pub fn set_planned_conditions(
    status: &mut ChannelSubscriptionStatus,
    summary: &Summary,
    plan: &Plan,
    trust_root_version: u64,
    waiting: bool,
    generation: Option<i64>,
    now: Timestamp,
) {
    status.last_check = Some(LastCheck {
        time: now,
        result: summary.result,
        message: summary.message.clone(),
    });
    status.set_condition(
        condition::VERIFIED,
        ConditionStatus::True,
        condition::REASON_VERIFIED,
        format!(
            "sequence {} of channel {} verified with trust root version {trust_root_version}",
            plan.sequence, plan.channel
        ),
        generation,
        now,
    );
    let degraded: Vec<&ReleaseStatus> = status.releases.iter().filter(|r| is_degraded(r)).collect();
    let reason = if waiting {
        condition::REASON_WAITING_FOR_NEWER
    } else if summary.verdict == Verdict::Progressing {
        // Between two upgradeFrom hops nothing is degraded: the release is on its way.
        condition::REASON_PROGRESSING
    } else {
        degraded
            .first()
            .map(|r| degraded_reason(r))
            .unwrap_or(condition::REASON_BLOCKED)
    };
    let (ready, ready_reason, degraded_status, degraded_reason, degraded_message) =
        match summary.verdict {
            Verdict::Done => (
                ConditionStatus::True,
                condition::REASON_RECONCILED,
                ConditionStatus::False,
                condition::REASON_HEALTHY,
                String::new(),
            ),
            Verdict::Progressing => (
                ConditionStatus::False,
                condition::REASON_PROGRESSING,
                ConditionStatus::False,
                condition::REASON_HEALTHY,
                String::new(),
            ),
            Verdict::Degraded | Verdict::Error => (
                ConditionStatus::False,
                reason,
                ConditionStatus::True,
                reason,
                summary.message.clone(),
            ),
        };
    status.set_condition(
        condition::READY,
        ready,
        ready_reason,
        summary.message.clone(),
        generation,
        now,
    );
    status.set_condition(
        condition::DEGRADED,
        degraded_status,
        degraded_reason,
        degraded_message,
        generation,
        now,
    );
    let behind: Vec<String> = status
        .releases
        .iter()
        .filter(|r| r.state != ReleaseState::Orphaned && !r.pinned && !r.held)
        .filter(|r| r.state != ReleaseState::UpToDate || r.version != r.desired_version)
        .map(|r| {
            format!(
                "{} ({})",
                r.name,
                r.version.as_deref().unwrap_or("not installed")
            )
        })
        .collect();
    if behind.is_empty() {
        status.set_condition(
            condition::UP_TO_DATE,
            ConditionStatus::True,
            condition::REASON_RECONCILED,
            format!(
                "every release runs what {}#{} offers",
                plan.channel, plan.sequence
            ),
            generation,
            now,
        );
    } else {
        status.set_condition(
            condition::UP_TO_DATE,
            ConditionStatus::False,
            reason,
            format!(
                "behind {}#{}: {}",
                plan.channel,
                plan.sequence,
                behind.join(", ")
            ),
            generation,
            now,
        );
    }
}

/// Sets lastCheck and the conditions after a reconcile that stopped early
/// (suspended, unreachable, refused, or another error). Releases are kept.
pub fn set_stopped_conditions(
    status: &mut ChannelSubscriptionStatus,
    result: CheckResult,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    status.last_check = Some(LastCheck {
        time: now,
        result,
        message: message.to_owned(),
    });
    match result {
        CheckResult::Suspended => {
            status.set_condition(
                condition::READY,
                ConditionStatus::True,
                condition::REASON_SUSPENDED,
                "suspended: nothing is checked or changed",
                generation,
                now,
            );
        }
        CheckResult::VerificationFailed => {
            status.set_condition(
                condition::VERIFIED,
                ConditionStatus::False,
                condition::REASON_VERIFICATION_FAILED,
                message,
                generation,
                now,
            );
            status.set_condition(
                condition::READY,
                ConditionStatus::False,
                condition::REASON_VERIFICATION_FAILED,
                message,
                generation,
                now,
            );
        }
        CheckResult::Unreachable => {
            status.set_condition(
                condition::READY,
                ConditionStatus::False,
                condition::REASON_UNREACHABLE,
                message,
                generation,
                now,
            );
        }
        _ => {
            status.set_condition(
                condition::READY,
                ConditionStatus::False,
                condition::REASON_FAILED,
                message,
                generation,
                now,
            );
        }
    }
}

/// True when `new` differs from `old` in more than the check time (a status
/// that only says "checked again, same result" is not worth an API write
/// more often than `max_age`).
pub fn worth_writing(
    old: Option<&ChannelSubscriptionStatus>,
    new: &ChannelSubscriptionStatus,
    max_age: std::time::Duration,
) -> bool {
    let Some(old) = old else { return true };
    let (Some(a), Some(b)) = (&old.last_check, &new.last_check) else {
        return true;
    };
    let mut probe = new.clone();
    if let Some(lc) = &mut probe.last_check {
        lc.time = a.time;
    }
    // `accepted[].at` says when a (server, channel) pair was last used; like the
    // check time, it moves on every poll and alone is not worth a write.
    for entry in &mut probe.accepted {
        if let Some(prev) = old
            .accepted
            .iter()
            .find(|p| p.server == entry.server && p.channel == entry.channel)
        {
            entry.at = prev.at;
        }
    }
    if probe != *old {
        return true;
    }
    let age = b.time.datetime() - a.time.datetime();
    age.whole_seconds() < 0 || age.unsigned_abs() >= max_age
}

/// Writes the whole status with server-side apply, fitted to what the API
/// server stores ([`ChannelSubscriptionStatus::fit`]).
pub async fn write_status(
    api: &Api<ChannelSubscription>,
    name: &str,
    status: &ChannelSubscriptionStatus,
) -> Result<(), kube::Error> {
    let mut status = status.clone();
    let size = status.fit();
    if size > crate::crd::STATUS_BUDGET {
        tracing::warn!(
            subscription = name,
            bytes = size,
            budget = crate::crd::STATUS_BUDGET,
            releases = status.releases.len(),
            "the status is larger than its budget even without messages; the API server may refuse it"
        );
    }
    let patch = serde_json::json!({
        "apiVersion": "coxswain.dev/v1alpha1",
        "kind": "ChannelSubscription",
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(drop)
}

/// True when the plan has a skip the admin asked for but cannot be honoured
/// (a pin to a version the index no longer offers): reported, degraded.
pub fn has_unavailable_pin(plan: &Plan) -> bool {
    plan.skipped
        .iter()
        .any(|s| matches!(s.why, SkipReason::PinUnavailable { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix(1_790_000_000 + s).unwrap()
    }

    fn rs(name: &str, state: ReleaseState, since: Timestamp) -> ReleaseStatus {
        ReleaseStatus {
            name: name.into(),
            namespace: name.into(),
            version: Some("1.0.0".into()),
            desired_version: Some("1.0.0".into()),
            revision: Some(1),
            state,
            message: String::new(),
            since,
            pinned: false,
            held: false,
        }
    }

    #[test]
    fn verdicts_map_to_exit_codes() {
        assert_eq!(Verdict::Done.exit_code(), 0);
        assert_eq!(Verdict::Degraded.exit_code(), 2);
        assert_eq!(Verdict::Progressing.exit_code(), 2);
        assert_eq!(Verdict::Error.exit_code(), 1);
        assert!(Verdict::Error > Verdict::Degraded && Verdict::Degraded > Verdict::Progressing);
        assert!(Verdict::Progressing > Verdict::Done);
    }

    #[test]
    fn degraded_states() {
        assert!(!is_degraded(&rs("a", ReleaseState::UpToDate, at(0))));
        assert!(is_degraded(&rs("a", ReleaseState::RolledBack, at(0))));
        let mut held = rs("a", ReleaseState::Held, at(0));
        held.held = true;
        assert!(!is_degraded(&held), "a hold is what the admin asked for");
        held.held = false;
        assert!(
            is_degraded(&held),
            "a pin the index no longer offers is reported"
        );
    }

    #[test]
    fn a_check_that_only_moved_in_time_is_not_rewritten() {
        let mut old = ChannelSubscriptionStatus::default();
        set_stopped_conditions(&mut old, CheckResult::UpToDate, "same", Some(1), at(0));
        let mut new = old.clone();
        new.last_check.as_mut().unwrap().time = at(60);
        let hour = std::time::Duration::from_secs(3600);
        assert!(!worth_writing(Some(&old), &new, hour));
        new.last_check.as_mut().unwrap().time = at(3600);
        assert!(worth_writing(Some(&old), &new, hour));
        let mut changed = old.clone();
        changed.last_check.as_mut().unwrap().message = "other".into();
        assert!(worth_writing(Some(&old), &changed, hour));
        assert!(worth_writing(None, &new, hour));

        // The pair's last-used time moves on every poll, too; a new sequence is news.
        old.record_accepted("https://site.example", "stable", 4, 1, at(0));
        let mut polled = old.clone();
        polled.last_check.as_mut().unwrap().time = at(60);
        polled.record_accepted("https://site.example", "stable", 4, 1, at(60));
        assert!(!worth_writing(Some(&old), &polled, hour));
        polled.record_accepted("https://site.example", "stable", 5, 1, at(60));
        assert!(worth_writing(Some(&old), &polled, hour));
    }

    fn two_release_plan() -> Plan {
        let chart = |name: &str| {
            serde_json::json!({
                "name": name, "version": "1.0.0",
                "url": format!("../../charts/sha256-{}.tgz", "ab".repeat(32)),
                "digest": format!("sha256:{}", "ab".repeat(32)), "size": 10
            })
        };
        let index: crate::format::ChannelIndex = serde_json::from_value(serde_json::json!({
            "apiVersion": "coxswain.dev/v1", "kind": "ChannelIndex", "channel": "stable",
            "sequence": 7, "published": "2026-11-26T00:00:00Z", "expires": "2026-12-26T00:00:00Z",
            "releases": [
                {"name": "a", "namespace": "a", "chart": chart("a")},
                {"name": "b", "namespace": "b", "chart": chart("b"), "dependsOn": ["a"]}
            ]
        }))
        .unwrap();
        crate::plan::plan(&index, &Default::default(), &[]).unwrap()
    }

    fn outcome(
        name: &str,
        state: ReleaseState,
        message: &str,
    ) -> super::super::executor::ReleaseOutcome {
        super::super::executor::ReleaseOutcome {
            release: name.into(),
            namespace: name.into(),
            state,
            version: None,
            desired_version: Some("1.0.0".into()),
            revision: None,
            message: message.into(),
            pinned: false,
        }
    }

    #[test]
    fn a_rolled_back_run_is_degraded_and_says_why() {
        let plan = two_release_plan();
        assert_eq!(plan.layers.len(), 2);
        let report = ExecReport {
            outcomes: vec![
                outcome(
                    "a",
                    ReleaseState::RolledBack,
                    "install of 1.0.0 failed: x; uninstalled",
                ),
                outcome(
                    "b",
                    ReleaseState::Skipped,
                    "waits for dependency `a`, which failed in this run",
                ),
            ],
            operations: Vec::new(),
            failure: Some("a: x".into()),
            stopped: vec![],
            wake: None,
        };
        let releases = release_statuses(&plan, Some(&report), None, &[], at(0));
        assert_eq!(releases.len(), 2);
        assert_eq!(releases[0].state, ReleaseState::RolledBack);
        assert_eq!(releases[1].state, ReleaseState::Skipped);
        let summary = summarize(&plan, &releases, Some(&report), None);
        assert_eq!(summary.result, CheckResult::RolledBack);
        assert_eq!(summary.verdict, Verdict::Degraded);
        assert!(
            summary.message.contains("stable#7: a: x"),
            "{}",
            summary.message
        );
        let mut status = ChannelSubscriptionStatus {
            releases,
            ..Default::default()
        };
        set_planned_conditions(&mut status, &summary, &plan, 1, false, Some(3), at(0));
        let ready = status.condition(condition::READY).unwrap();
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (ConditionStatus::False, "RolledBack")
        );
        let degraded = status.condition(condition::DEGRADED).unwrap();
        assert_eq!(degraded.status, ConditionStatus::True);
        let up = status.condition(condition::UP_TO_DATE).unwrap();
        assert_eq!(up.status, ConditionStatus::False);
        assert!(up.message.contains("a (not installed)"), "{}", up.message);

        // The next poll waits: nothing runs, the states and reasons stay, `since` too.
        let previous = status.releases.clone();
        let waiting = "sequence 7 failed (a: x); not retried";
        let releases = release_statuses(&plan, None, Some(waiting), &previous, at(60));
        assert_eq!(releases[0].state, ReleaseState::RolledBack);
        assert_eq!(releases[0].since, at(0));
        assert!(
            releases[0].message.ends_with(waiting),
            "{}",
            releases[0].message
        );
        // Another waiting poll says the same: no growing message, no status write.
        let again = release_statuses(&plan, None, Some(waiting), &releases, at(120));
        assert_eq!(again, releases);
        assert_eq!(releases[1].state, ReleaseState::Skipped);
        assert!(
            releases[1].message.contains("not applied"),
            "{}",
            releases[1].message
        );
        let summary = summarize(&plan, &releases, None, Some(waiting));
        assert_eq!(summary.verdict, Verdict::Degraded);
        status.releases = releases;
        set_planned_conditions(&mut status, &summary, &plan, 1, true, Some(3), at(60));
        assert_eq!(
            status.condition(condition::READY).unwrap().reason,
            "WaitingForNewerSequence"
        );
    }

    #[test]
    fn a_summary_names_five_releases_and_counts_the_rest() {
        let plan = two_release_plan();
        let releases: Vec<ReleaseStatus> = (0..1_000)
            .map(|i| {
                let mut r = rs(&format!("r{i}"), ReleaseState::Blocked, at(0));
                r.message = "no upgrade path".into();
                r
            })
            .collect();
        let summary = summarize(&plan, &releases, None, None);
        assert_eq!(summary.verdict, Verdict::Degraded);
        assert!(
            summary.message.ends_with(
                "r0: no upgrade path; r1: no upgrade path; r2: no upgrade path; r3: no upgrade path; r4: no upgrade path; and 995 more"
            ),
            "{}",
            summary.message
        );
        assert_eq!(listed(&["a".into(), "b".into()]), "a; b");
    }

    #[test]
    fn a_clean_run_is_done_and_ready() {
        let plan = two_release_plan();
        let report = ExecReport {
            outcomes: vec![
                outcome("a", ReleaseState::UpToDate, "installed"),
                outcome("b", ReleaseState::UpToDate, "installed"),
            ],
            operations: vec![],
            failure: None,
            stopped: vec![],
            wake: None,
        };
        let mut releases = release_statuses(&plan, Some(&report), None, &[], at(0));
        for r in &mut releases {
            r.version = Some("1.0.0".into());
        }
        let summary = summarize(&plan, &releases, Some(&report), None);
        assert_eq!(summary.verdict, Verdict::Done);
        let mut status = ChannelSubscriptionStatus {
            releases: releases.clone(),
            ..Default::default()
        };
        set_planned_conditions(&mut status, &summary, &plan, 1, false, None, at(0));
        for (type_, want) in [
            (condition::READY, ConditionStatus::True),
            (condition::UP_TO_DATE, ConditionStatus::True),
            (condition::VERIFIED, ConditionStatus::True),
            (condition::DEGRADED, ConditionStatus::False),
        ] {
            assert_eq!(status.condition(type_).unwrap().status, want, "{type_}");
        }
        // One release between two upgradeFrom hops: progressing, exit 2, not degraded.
        releases[1].desired_version = Some("2.0.0".into());
        let summary = summarize(&plan, &releases, Some(&report), None);
        assert_eq!(summary.verdict, Verdict::Progressing);
        status.releases = releases;
        set_planned_conditions(&mut status, &summary, &plan, 1, false, None, at(1));
        assert_eq!(
            status.condition(condition::READY).unwrap().reason,
            "Progressing"
        );
        assert_eq!(
            status.condition(condition::DEGRADED).unwrap().status,
            ConditionStatus::False
        );
        let up_to_date = status.condition(condition::UP_TO_DATE).unwrap();
        assert_eq!(up_to_date.status, ConditionStatus::False);
        assert_eq!(up_to_date.reason, "Progressing");
    }
}
