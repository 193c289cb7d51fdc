//! The agent's Prometheus metrics (prometheus-client, OpenMetrics text at
//! `/metrics`). `docs/metrics.md` documents every family; the alert rules and
//! the Grafana dashboard in `charts/coxswain/` use them, and `tests/monitoring.rs`
//! checks that they only name families [`family_names`] lists.
//!
//! Labels are bounded: subscriptions, channels, releases and the enumerations
//! below, never sequences, revisions, messages or values. A subscription's
//! release series are replaced as a whole after each check, so a release that
//! left the channel, or a version that is no longer installed, stops being
//! exported.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::agent::executor::OperationDetail;
use crate::crd::{
    ChannelSubscriptionStatus, CheckResult, OperationKind, OperationResult, ReleaseState, wire_name,
};
use crate::format::Timestamp;
use crate::helm::{Invocation, Observer};

/// Every `lastCheck.result` value, the label values of `coxswain_check_result`.
pub const CHECK_RESULTS: [CheckResult; 8] = [
    CheckResult::UpToDate,
    CheckResult::Applied,
    CheckResult::RolledBack,
    CheckResult::Degraded,
    CheckResult::VerificationFailed,
    CheckResult::Unreachable,
    CheckResult::Error,
    CheckResult::Suspended,
];

/// Every release state, the label values of `coxswain_release_state`.
pub const RELEASE_STATES: [ReleaseState; 13] = [
    ReleaseState::UpToDate,
    ReleaseState::Installing,
    ReleaseState::Upgrading,
    ReleaseState::RollingBack,
    ReleaseState::RolledBack,
    ReleaseState::Failed,
    ReleaseState::Held,
    ReleaseState::Blocked,
    ReleaseState::Skipped,
    ReleaseState::Conflict,
    ReleaseState::Orphaned,
    ReleaseState::AwaitingApproval,
    ReleaseState::Waiting,
];

/// How an index fetch ended (`coxswain_index_fetches_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchResult {
    /// A new or changed index was fetched and verified.
    Updated,
    /// The server answered 304; the verified index in memory still holds.
    NotModified,
    /// The site could not be reached.
    Unreachable,
    /// Something signed or pinned was refused.
    VerificationFailed,
    /// Any other error.
    Error,
}

impl FetchResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Updated => "updated",
            Self::NotModified => "not_modified",
            Self::Unreachable => "unreachable",
            Self::VerificationFailed => "verification_failed",
            Self::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubLabels {
    subscription: String,
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubResultLabels {
    subscription: String,
    channel: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubReasonLabels {
    subscription: String,
    channel: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReleaseInfoLabels {
    subscription: String,
    channel: String,
    namespace: String,
    release: String,
    version: String,
    chart: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReleaseLabels {
    subscription: String,
    namespace: String,
    release: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReleaseStateLabels {
    subscription: String,
    namespace: String,
    release: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    subscription: String,
    namespace: String,
    release: String,
    operation: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    subscription: String,
    release: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HelmLabels {
    command: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HelmCommandLabels {
    command: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    helm_version: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn upgrade_buckets() -> Histogram {
    // 1 s .. 2048 s: KWOK upgrades take a second, real ones minutes.
    Histogram::new(exponential_buckets(1.0, 2.0, 12))
}

fn health_buckets() -> Histogram {
    // 0.5 s .. 1024 s.
    Histogram::new(exponential_buckets(0.5, 2.0, 12))
}

fn helm_buckets() -> Histogram {
    // 50 ms .. ~205 s.
    Histogram::new(exponential_buckets(0.05, 2.0, 13))
}

/// The release series last exported for one subscription, to remove them when they change.
#[derive(Debug, Default)]
struct Exported {
    channel: String,
    info: BTreeSet<ReleaseInfoKey>,
    releases: BTreeSet<(String, String)>,
}

type ReleaseInfoKey = (String, String, String, String, String);

/// The registry and every metric family of the agent.
pub struct Metrics {
    registry: Registry,
    index_fetches: Family<SubResultLabels, Counter>,
    verification_failures: Family<SubReasonLabels, Counter>,
    check_result: Family<SubResultLabels, Gauge>,
    accepted_sequence: Family<SubLabels, Gauge>,
    failed_sequence: Family<SubLabels, Gauge>,
    index_published: Family<SubLabels, FloatGauge>,
    index_expiry: Family<SubLabels, FloatGauge>,
    last_check: Family<SubLabels, FloatGauge>,
    last_success: Family<SubLabels, FloatGauge>,
    check_interval: Family<SubLabels, Gauge>,
    awaiting_approval: Family<SubLabels, Gauge>,
    next_start: Family<SubLabels, FloatGauge>,
    release_info: Family<ReleaseInfoLabels, Gauge>,
    release_state: Family<ReleaseStateLabels, Gauge>,
    release_revision: Family<ReleaseLabels, Gauge>,
    upgrades: Family<OperationLabels, Counter>,
    rollbacks: Family<OperationLabels, Counter>,
    repairs: Family<OperationLabels, Counter>,
    backups: Family<OperationLabels, Counter>,
    backup_duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
    upgrade_duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
    health_duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
    helm_invocations: Family<HelmLabels, Counter>,
    helm_duration: Family<HelmCommandLabels, Histogram, fn() -> Histogram>,
    build_info: Family<BuildLabels, Gauge>,
    leader: Gauge,
    exported: Mutex<BTreeMap<String, Exported>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What a finished check tells the metrics.
#[derive(Debug, Clone)]
pub struct CheckReport<'a> {
    /// `namespace/name` of the subscription.
    pub subscription: &'a str,
    /// Its channel.
    pub channel: &'a str,
    /// Its `spec.interval`.
    pub interval: std::time::Duration,
    /// The status after the check (releases, accepted and failed sequence, last check).
    pub status: &'a ChannelSubscriptionStatus,
    /// The accepted index's `published` and `expires`, when one verified.
    pub index_times: Option<(Timestamp, Timestamp)>,
    /// Chart names per release, from the index.
    pub charts: &'a BTreeMap<String, String>,
}

impl Metrics {
    /// Every family registered, all empty.
    pub fn new() -> Self {
        let m = Self {
            registry: Registry::default(),
            index_fetches: Family::default(),
            verification_failures: Family::default(),
            check_result: Family::default(),
            accepted_sequence: Family::default(),
            failed_sequence: Family::default(),
            index_published: Family::default(),
            index_expiry: Family::default(),
            last_check: Family::default(),
            last_success: Family::default(),
            check_interval: Family::default(),
            awaiting_approval: Family::default(),
            next_start: Family::default(),
            release_info: Family::default(),
            release_state: Family::default(),
            release_revision: Family::default(),
            upgrades: Family::default(),
            rollbacks: Family::default(),
            repairs: Family::default(),
            backups: Family::default(),
            backup_duration: Family::new_with_constructor(upgrade_buckets),
            upgrade_duration: Family::new_with_constructor(upgrade_buckets),
            health_duration: Family::new_with_constructor(health_buckets),
            helm_invocations: Family::default(),
            helm_duration: Family::new_with_constructor(helm_buckets),
            build_info: Family::default(),
            leader: Gauge::default(),
            exported: Mutex::default(),
        };
        // Without leader election this replica always acts.
        m.leader.set(1);
        m.register()
    }

    fn register(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "coxswain_build_info",
            "The agent's version and the helm version it drives (always 1)",
            self.build_info.clone(),
        );
        r.register(
            "coxswain_leader",
            "1 when this replica acts (holds the leader lease, or runs without leader election), 0 for a follower",
            self.leader.clone(),
        );
        r.register(
            "coxswain_index_fetches",
            "Channel index fetches, by result (updated, not_modified, unreachable, verification_failed, error)",
            self.index_fetches.clone(),
        );
        r.register(
            "coxswain_verification_failures",
            "Refused indexes, trust roots, anchors and charts, by reason",
            self.verification_failures.clone(),
        );
        r.register(
            "coxswain_check_result",
            "1 for the result of the subscription's last check, 0 for the other results",
            self.check_result.clone(),
        );
        r.register(
            "coxswain_accepted_sequence",
            "Highest index sequence accepted for the subscription's server and channel",
            self.accepted_sequence.clone(),
        );
        r.register(
            "coxswain_failed_sequence",
            "Sequence that failed and is not retried until a newer one or the retry annotation (0: none)",
            self.failed_sequence.clone(),
        );
        r.register_with_unit(
            "coxswain_index_published_timestamp",
            "When the accepted index was published (Unix time)",
            Unit::Seconds,
            self.index_published.clone(),
        );
        r.register_with_unit(
            "coxswain_index_expiry_timestamp",
            "When the accepted index expires (Unix time); after it the agent refuses it",
            Unit::Seconds,
            self.index_expiry.clone(),
        );
        r.register_with_unit(
            "coxswain_last_check_timestamp",
            "When the subscription's last check ended, whatever its result (Unix time)",
            Unit::Seconds,
            self.last_check.clone(),
        );
        r.register_with_unit(
            "coxswain_last_successful_check_timestamp",
            "When a check last verified the channel's index (Unix time)",
            Unit::Seconds,
            self.last_success.clone(),
        );
        r.register_with_unit(
            "coxswain_check_interval",
            "The subscription's polling interval",
            Unit::Seconds,
            self.check_interval.clone(),
        );
        r.register_with_unit(
            "coxswain_rollout_next_start_timestamp",
            "When the first release the rollout gate holds (its wave, a maintenance window) may start (Unix time); absent when none waits for a time",
            Unit::Seconds,
            self.next_start.clone(),
        );
        r.register(
            "coxswain_releases_awaiting_approval",
            "Releases whose new version waits for an administrator's approval",
            self.awaiting_approval.clone(),
        );
        r.register(
            "coxswain_release_info",
            "1 per release a subscription manages, with its installed chart version and chart name",
            self.release_info.clone(),
        );
        r.register(
            "coxswain_release_state",
            "1 for the release's current state, 0 for the other states",
            self.release_state.clone(),
        );
        r.register(
            "coxswain_release_revision",
            "The release's installed Helm revision",
            self.release_revision.clone(),
        );
        r.register(
            "coxswain_upgrades",
            "Installs and upgrades, by result (failed: helm, health check or helm test failed)",
            self.upgrades.clone(),
        );
        r.register(
            "coxswain_rollbacks",
            "Rollbacks after a failed upgrade and uninstalls after a failed first install, by result",
            self.rollbacks.clone(),
        );
        r.register(
            "coxswain_repairs",
            "Releases repaired after a killed helm or agent (a pending-* revision unlocked, an interrupted operation undone, an unconfirmed revision checked again), by result",
            self.repairs.clone(),
        );
        r.register(
            "coxswain_backups",
            "Velero backups taken before an upgrade, by result (failed: the backup failed, timed out or Velero is not installed, and the upgrade did not start)",
            self.backups.clone(),
        );
        r.register_with_unit(
            "coxswain_backup_duration",
            "Wall time of a Velero backup before an upgrade, from its creation to its end",
            Unit::Seconds,
            self.backup_duration.clone(),
        );
        r.register_with_unit(
            "coxswain_upgrade_duration",
            "Wall time of an install or upgrade, health check and helm test included",
            Unit::Seconds,
            self.upgrade_duration.clone(),
        );
        r.register_with_unit(
            "coxswain_health_check_duration",
            "Wall time of a health check, after an upgrade or a rollback",
            Unit::Seconds,
            self.health_duration.clone(),
        );
        r.register(
            "coxswain_helm_invocations",
            "helm calls, by command and result",
            self.helm_invocations.clone(),
        );
        r.register_with_unit(
            "coxswain_helm_invocation_duration",
            "Wall time of helm calls, by command",
            Unit::Seconds,
            self.helm_duration.clone(),
        );
        self
    }

    /// Records the agent's and helm's versions.
    pub fn set_build_info(&self, helm_version: &str) {
        self.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                helm_version: helm_version.to_owned(),
            })
            .set(1);
    }

    /// Whether this replica acts (`coxswain_leader`).
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// A follower's view of a subscription: the gauges its status (written by
    /// the leader) tells, with the last check's own time. Counters,
    /// histograms, the index's times, the last successful check and the
    /// interval are the leader's.
    pub fn status_observed(&self, report: &CheckReport<'_>) {
        self.check_finished(&CheckReport {
            index_times: None,
            ..report.clone()
        });
        let sub = SubLabels {
            subscription: report.subscription.to_owned(),
            channel: report.channel.to_owned(),
        };
        if let Some(last) = &report.status.last_check {
            self.last_check
                .get_or_create(&sub)
                .set(last.time.unix_seconds());
        }
        // A follower checks nothing: without an interval, the alerts on checks
        // that did not succeed look at the leader only.
        self.check_interval.remove(&sub);
    }

    /// Counts one index fetch.
    pub fn index_fetch(&self, subscription: &str, channel: &str, result: FetchResult) {
        self.index_fetches
            .get_or_create(&SubResultLabels {
                subscription: subscription.to_owned(),
                channel: channel.to_owned(),
                result: result.as_str().to_owned(),
            })
            .inc();
    }

    /// Counts one refusal; `reason` is one of the bounded reasons of
    /// [`crate::agent::fetch::FetchError::verification_reason`].
    pub fn verification_failure(&self, subscription: &str, channel: &str, reason: &str) {
        self.verification_failures
            .get_or_create(&SubReasonLabels {
                subscription: subscription.to_owned(),
                channel: channel.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Sets everything a finished check knows: its result and times, the
    /// sequences, and the subscription's release series (replaced as a whole).
    pub fn check_finished(&self, report: &CheckReport<'_>) {
        let sub = SubLabels {
            subscription: report.subscription.to_owned(),
            channel: report.channel.to_owned(),
        };
        let status = report.status;
        let previous_channel = self
            .exported
            .lock()
            .ok()
            .and_then(|e| e.get(report.subscription).map(|x| x.channel.clone()));
        if let Some(old) = previous_channel.filter(|c| c != report.channel) {
            // The subscription moved to another channel: the old one's gauges go.
            self.remove_subscription_gauges(report.subscription, &old);
        }
        let now = Timestamp::now().unix_seconds();
        self.last_check.get_or_create(&sub).set(now);
        self.check_interval
            .get_or_create(&sub)
            .set(i64::try_from(report.interval.as_secs()).unwrap_or(i64::MAX));
        if let Some(last) = &status.last_check {
            for result in CHECK_RESULTS {
                let labels = SubResultLabels {
                    subscription: sub.subscription.clone(),
                    channel: sub.channel.clone(),
                    result: wire_name(&result),
                };
                self.check_result
                    .get_or_create(&labels)
                    .set(i64::from(result == last.result));
            }
        }
        if let Some((published, expires)) = report.index_times {
            self.last_success.get_or_create(&sub).set(now);
            self.index_published
                .get_or_create(&sub)
                .set(published.unix_seconds());
            self.index_expiry
                .get_or_create(&sub)
                .set(expires.unix_seconds());
        }
        if let Some(seq) = status.accepted_sequence {
            self.accepted_sequence
                .get_or_create(&sub)
                .set(i64::try_from(seq).unwrap_or(i64::MAX));
        }
        let failed = status
            .failed_sequence
            .as_ref()
            .map(|f| i64::try_from(f.sequence).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.failed_sequence.get_or_create(&sub).set(failed);
        let awaiting = report
            .status
            .releases
            .iter()
            .filter(|r| r.state == ReleaseState::AwaitingApproval)
            .count();
        self.awaiting_approval
            .get_or_create(&sub)
            .set(i64::try_from(awaiting).unwrap_or(i64::MAX));
        match status.next_start {
            Some(at) => {
                self.next_start.get_or_create(&sub).set(at.unix_seconds());
            }
            None => {
                self.next_start.remove(&sub);
            }
        }
        self.set_releases(report);
    }

    fn set_releases(&self, report: &CheckReport<'_>) {
        let Ok(mut exported) = self.exported.lock() else {
            // A panic while holding the lock poisoned it; metrics are not worth a second one.
            return;
        };
        let entry = exported.entry(report.subscription.to_owned()).or_default();
        let mut info = BTreeSet::new();
        let mut releases = BTreeSet::new();
        for r in &report.status.releases {
            let chart = report.charts.get(&r.name).cloned().unwrap_or_default();
            info.insert((
                report.channel.to_owned(),
                r.namespace.clone(),
                r.name.clone(),
                r.version.clone().unwrap_or_default(),
                chart,
            ));
            releases.insert((r.namespace.clone(), r.name.clone()));
        }
        for gone in entry.info.difference(&info) {
            self.release_info
                .remove(&info_labels(report.subscription, gone));
        }
        for (ns, name) in entry.releases.difference(&releases) {
            self.remove_release(report.subscription, ns, name);
        }
        for key in &info {
            self.release_info
                .get_or_create(&info_labels(report.subscription, key))
                .set(1);
        }
        for r in &report.status.releases {
            // Upgrade and rollback counters exist at 0 from the first check on, so
            // `increase()` sees a release's first upgrade or rollback too.
            for labels in zeroed_counters(report.subscription, &r.namespace, &r.name) {
                let family = if labels.operation == "upgrade" {
                    &self.upgrades
                } else {
                    &self.rollbacks
                };
                let _created = family.get_or_create(&labels);
            }
            let labels = release_labels(report.subscription, &r.namespace, &r.name);
            for state in RELEASE_STATES {
                self.release_state
                    .get_or_create(&state_labels(&labels, &wire_name(&state)))
                    .set(i64::from(state == r.state));
            }
            match r.revision {
                Some(rev) => {
                    self.release_revision
                        .get_or_create(&labels)
                        .set(i64::from(rev));
                }
                None => {
                    self.release_revision.remove(&labels);
                }
            }
        }
        *entry = Exported {
            channel: report.channel.to_owned(),
            info,
            releases,
        };
    }

    fn remove_release(&self, subscription: &str, namespace: &str, release: &str) {
        for labels in zeroed_counters(subscription, namespace, release) {
            self.upgrades.remove(&labels);
            self.rollbacks.remove(&labels);
        }
        let labels = release_labels(subscription, namespace, release);
        self.release_revision.remove(&labels);
        for state in RELEASE_STATES {
            self.release_state
                .remove(&state_labels(&labels, &wire_name(&state)));
        }
    }

    fn remove_subscription_gauges(&self, subscription: &str, channel: &str) {
        let sub = SubLabels {
            subscription: subscription.to_owned(),
            channel: channel.to_owned(),
        };
        for family in [
            &self.accepted_sequence,
            &self.failed_sequence,
            &self.check_interval,
            &self.awaiting_approval,
        ] {
            family.remove(&sub);
        }
        for family in [
            &self.index_published,
            &self.index_expiry,
            &self.next_start,
            &self.last_check,
            &self.last_success,
        ] {
            family.remove(&sub);
        }
        for result in CHECK_RESULTS {
            self.check_result.remove(&SubResultLabels {
                subscription: subscription.to_owned(),
                channel: channel.to_owned(),
                result: wire_name(&result),
            });
        }
    }

    /// Stops exporting a deleted subscription's gauges and release series
    /// (its counters and histograms stay until the agent restarts).
    pub fn forget(&self, subscription: &str) {
        let Some(gone) = self
            .exported
            .lock()
            .ok()
            .and_then(|mut e| e.remove(subscription))
        else {
            return;
        };
        self.remove_subscription_gauges(subscription, &gone.channel);
        for key in &gone.info {
            self.release_info.remove(&info_labels(subscription, key));
        }
        for (ns, name) in &gone.releases {
            self.remove_release(subscription, ns, name);
        }
    }

    /// Counts the operations of a run and observes their durations.
    pub fn operations(&self, subscription: &str, done: &[OperationDetail]) {
        for d in done {
            let op = &d.operation;
            let result = match op.result {
                OperationResult::Succeeded => "succeeded",
                OperationResult::Failed => "failed",
            };
            let labels = OperationLabels {
                subscription: subscription.to_owned(),
                namespace: op.namespace.clone(),
                release: op.release.clone(),
                operation: wire_name(&op.operation),
                result: result.to_owned(),
            };
            match op.operation {
                OperationKind::Install | OperationKind::Upgrade => {
                    self.upgrades.get_or_create(&labels).inc();
                    self.upgrade_duration
                        .get_or_create(&DurationLabels {
                            subscription: subscription.to_owned(),
                            release: op.release.clone(),
                            result: result.to_owned(),
                        })
                        .observe(d.elapsed.as_secs_f64());
                }
                OperationKind::Rollback | OperationKind::Uninstall => {
                    self.rollbacks.get_or_create(&labels).inc();
                }
                OperationKind::Repair => {
                    self.repairs.get_or_create(&labels).inc();
                }
                // An automatic restore counts with the rollbacks: it undoes an upgrade.
                OperationKind::Restore => {
                    self.rollbacks.get_or_create(&labels).inc();
                }
                OperationKind::Backup => {
                    self.backups.get_or_create(&labels).inc();
                    self.backup_duration
                        .get_or_create(&DurationLabels {
                            subscription: subscription.to_owned(),
                            release: op.release.clone(),
                            result: result.to_owned(),
                        })
                        .observe(d.elapsed.as_secs_f64());
                }
                OperationKind::Skip => {}
            }
            if let Some(h) = &d.health {
                self.health_duration
                    .get_or_create(&DurationLabels {
                        subscription: subscription.to_owned(),
                        release: op.release.clone(),
                        result: match (h.healthy, h.unobserved) {
                            (true, _) => "healthy",
                            (false, true) => "unobserved",
                            (false, false) => "unhealthy",
                        }
                        .to_owned(),
                    })
                    .observe(h.elapsed.as_secs_f64());
            }
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

fn info_labels(subscription: &str, key: &ReleaseInfoKey) -> ReleaseInfoLabels {
    let (channel, namespace, release, version, chart) = key.clone();
    ReleaseInfoLabels {
        subscription: subscription.to_owned(),
        channel,
        namespace,
        release,
        version,
        chart,
    }
}

/// The upgrade and rollback counter series created at 0 for a release.
fn zeroed_counters(subscription: &str, namespace: &str, release: &str) -> Vec<OperationLabels> {
    let mut out = Vec::new();
    for operation in ["upgrade", "rollback"] {
        for result in ["succeeded", "failed"] {
            out.push(OperationLabels {
                subscription: subscription.to_owned(),
                namespace: namespace.to_owned(),
                release: release.to_owned(),
                operation: operation.to_owned(),
                result: result.to_owned(),
            });
        }
    }
    out
}

fn release_labels(subscription: &str, namespace: &str, release: &str) -> ReleaseLabels {
    ReleaseLabels {
        subscription: subscription.to_owned(),
        namespace: namespace.to_owned(),
        release: release.to_owned(),
    }
}

fn state_labels(release: &ReleaseLabels, state: &str) -> ReleaseStateLabels {
    ReleaseStateLabels {
        subscription: release.subscription.clone(),
        namespace: release.namespace.clone(),
        release: release.release.clone(),
        state: state.to_owned(),
    }
}

impl Observer for Metrics {
    fn helm_finished(&self, invocation: &Invocation<'_>) {
        let command = invocation.command.as_str().to_owned();
        self.helm_invocations
            .get_or_create(&HelmLabels {
                command: command.clone(),
                result: invocation.outcome.as_str().to_owned(),
            })
            .inc();
        self.helm_duration
            .get_or_create(&HelmCommandLabels { command })
            .observe(invocation.duration.as_secs_f64());
    }
}

/// A metric family as exposed: its sample name (`_total` on counters) and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyInfo {
    /// The name queried in PromQL (`coxswain_upgrades_total`).
    pub name: String,
    /// `counter`, `gauge` or `histogram`.
    pub kind: String,
    /// Label names of its series.
    pub labels: BTreeSet<String>,
}

/// Every family the agent exposes, read from an exposition of a registry
/// where each family has one series.
pub fn families() -> Vec<FamilyInfo> {
    let m = Metrics::new();
    m.populate_for_listing();
    let text = m.encode().unwrap_or_default();
    parse_families(&text)
}

/// Names of every family as PromQL sees them (`coxswain_upgrades_total`,
/// `coxswain_upgrade_duration_seconds`), for the alert and dashboard checks.
pub fn family_names() -> Vec<String> {
    families().into_iter().map(|f| f.name).collect()
}

impl Metrics {
    /// One series in every family, so an exposition lists them all.
    fn populate_for_listing(&self) {
        use crate::crd::{LastCheck, ReleaseStatus};
        self.set_build_info("v0.0.0");
        self.index_fetch("ns/sub", "stable", FetchResult::Updated);
        self.verification_failure("ns/sub", "stable", "signature");
        let status = ChannelSubscriptionStatus {
            accepted_sequence: Some(1),
            last_check: Some(LastCheck {
                time: Timestamp::now(),
                result: CheckResult::Applied,
                message: String::new(),
            }),
            releases: vec![ReleaseStatus {
                name: "r".to_owned(),
                namespace: "ns".to_owned(),
                version: Some("1.0.0".to_owned()),
                desired_version: None,
                revision: Some(1),
                state: ReleaseState::UpToDate,
                message: String::new(),
                since: Timestamp::now(),
                pinned: false,
                held: false,
            }],
            next_start: Some(Timestamp::now()),
            ..Default::default()
        };
        let now = Timestamp::now();
        self.check_finished(&CheckReport {
            subscription: "ns/sub",
            channel: "stable",
            interval: std::time::Duration::from_secs(60),
            status: &status,
            index_times: Some((now, now)),
            charts: &BTreeMap::new(),
        });
        for kind in [
            OperationKind::Upgrade,
            OperationKind::Rollback,
            OperationKind::Repair,
            OperationKind::Backup,
        ] {
            let detail = OperationDetail {
                operation: crate::crd::Operation {
                    release: "r".to_owned(),
                    namespace: "ns".to_owned(),
                    operation: kind,
                    from: None,
                    to: None,
                    sequence: 1,
                    started: now,
                    duration: crate::duration::Duration::from_secs(1),
                    result: OperationResult::Succeeded,
                    message: String::new(),
                    from_revision: None,
                    to_revision: None,
                    health: None,
                },
                elapsed: std::time::Duration::from_secs(1),
                health: Some(crate::agent::executor::HealthDetail {
                    healthy: true,
                    elapsed: std::time::Duration::from_secs(1),
                    reason: None,
                    unobserved: false,
                    objects: Vec::new(),
                }),
            };
            self.operations("ns/sub", &[detail]);
        }
        self.helm_finished(&Invocation {
            command: crate::helm::HelmCommand::List,
            release: None,
            namespace: None,
            duration: std::time::Duration::from_millis(10),
            outcome: crate::helm::Outcome::Succeeded,
        });
    }
}

/// Reads `# TYPE` lines and the label names of the first sample of each family.
fn parse_families(text: &str) -> Vec<FamilyInfo> {
    let mut out: Vec<FamilyInfo> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let name = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            };
            out.push(FamilyInfo {
                name,
                kind: kind.to_owned(),
                labels: BTreeSet::new(),
            });
        } else if !line.starts_with('#')
            && let Some(family) = out.last_mut()
            && let Some((_, rest)) = line.split_once('{')
            && let Some((labels, _)) = rest.split_once('}')
        {
            for pair in labels.split(',') {
                if let Some((key, _)) = pair.split_once('=')
                    && key != "le"
                {
                    family.labels.insert(key.to_owned());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {

    /// Every state the CRD knows, by its wire name: a state missing from
    /// [`RELEASE_STATES`] would never be exported as 1, so a release in it would
    /// vanish from `coxswain_release_state` (this is how `waiting` was missed).
    #[test]
    fn every_release_state_is_a_label_value() {
        fn wire_values(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        match (k.as_str(), v) {
                            ("const", serde_json::Value::String(s)) => out.push(s.clone()),
                            ("enum", serde_json::Value::Array(items)) => out
                                .extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned))),
                            _ => wire_values(v, out),
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|i| wire_values(i, out)),
                _ => {}
            }
        }
        let schema = serde_json::to_value(schemars::schema_for!(ReleaseState)).unwrap();
        let mut known = Vec::new();
        wire_values(&schema, &mut known);
        known.sort();
        let mut exported: Vec<String> = RELEASE_STATES.iter().map(crate::crd::wire_name).collect();
        exported.sort();
        assert!(
            known.len() >= 13,
            "read the states from the schema: {known:?}"
        );
        assert_eq!(exported, known);
    }

    use super::*;

    /// Labels allowed on any family: each takes a bounded set of values (one
    /// per subscription, release, enumeration value or helm command).
    const BOUNDED_LABELS: [&str; 12] = [
        "subscription",
        "channel",
        "namespace",
        "release",
        "version",
        "chart",
        "state",
        "result",
        "operation",
        "reason",
        "command",
        "helm_version",
    ];

    /// What is wrong with the families' names and labels, one line each.
    fn lint(families: &[FamilyInfo]) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                problems.push(what);
            }
        };
        for f in families {
            let n = &f.name;
            check(
                n.starts_with("coxswain_"),
                format!("{n}: no coxswain_ prefix"),
            );
            check(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                format!("{n}: not snake_case"),
            );
            match f.kind.as_str() {
                "counter" => check(
                    n.ends_with("_total"),
                    format!("{n}: counter without _total"),
                ),
                "histogram" => check(
                    n.ends_with("_seconds"),
                    format!("{n}: histograms here measure time and end in _seconds"),
                ),
                "gauge" => check(
                    !n.ends_with("_total"),
                    format!("{n}: gauge named like a counter"),
                ),
                other => check(false, format!("{n}: unexpected type {other}")),
            }
            if ["timestamp", "duration", "interval"]
                .iter()
                .any(|w| n.contains(w))
            {
                check(
                    n.ends_with("_seconds"),
                    format!("{n}: a time without its unit"),
                );
            }
            check(
                !f.labels.is_empty() || n == "coxswain_build_info" || n == "coxswain_leader",
                format!("{n}: no labels"),
            );
            for label in &f.labels {
                check(
                    BOUNDED_LABELS.contains(&label.as_str()),
                    format!("{n}: label `{label}` is not a known bounded label"),
                );
            }
        }
        problems
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        let families = families();
        assert_eq!(families.len(), 26, "{families:#?}");
        let problems = lint(&families);
        assert!(problems.is_empty(), "{problems:#?}");
        let names = family_names();
        for expected in [
            "coxswain_index_fetches_total",
            "coxswain_upgrade_duration_seconds",
            "coxswain_index_expiry_timestamp_seconds",
            "coxswain_release_info",
            "coxswain_repairs_total",
            "coxswain_backups_total",
            "coxswain_backup_duration_seconds",
            "coxswain_leader",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} missing: {names:?}"
            );
        }
    }

    #[test]
    fn the_lint_catches_bad_names_and_labels() {
        let text = "# TYPE coxswain_things counter\ncoxswain_things_total{sequence=\"4\"} 1\n\
                    # TYPE coxswain_upgrade_time histogram\ncoxswain_upgrade_time_bucket{release=\"a\",le=\"1\"} 1\n\
                    # TYPE coxswain_last_check_timestamp gauge\ncoxswain_last_check_timestamp{release=\"a\"} 1\n\
                    # TYPE coxswain_errors_total gauge\ncoxswain_errors_total{result=\"x\"} 1\n";
        let problems = lint(&parse_families(text));
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("label `sequence`"), "{problems:#?}");
        assert!(problems[1].contains("histograms"), "{problems:#?}");
        assert!(problems[2].contains("without its unit"), "{problems:#?}");
        assert!(
            problems[3].contains("gauge named like a counter"),
            "{problems:#?}"
        );
    }

    /// A check of the subscription `coxswain/stack` on channel `stable`.
    fn report<'a>(
        status: &'a ChannelSubscriptionStatus,
        charts: &'a BTreeMap<String, String>,
    ) -> CheckReport<'a> {
        CheckReport {
            subscription: "coxswain/stack",
            channel: "stable",
            interval: std::time::Duration::from_secs(300),
            status,
            index_times: None,
            charts,
        }
    }

    #[test]
    fn a_waiting_release_and_the_next_start_are_exported_and_go_when_nothing_waits() {
        use crate::crd::ReleaseStatus;
        let m = Metrics::new();
        let charts = BTreeMap::from([("wiki".to_owned(), "wiki".to_owned())]);
        let at: Timestamp = "2026-12-05T01:00:00Z".parse().unwrap();
        let mut status = ChannelSubscriptionStatus {
            releases: vec![ReleaseStatus {
                name: "wiki".to_owned(),
                namespace: "apps".to_owned(),
                version: Some("1.0.0".to_owned()),
                desired_version: Some("1.1.0".to_owned()),
                revision: Some(2),
                state: ReleaseState::Waiting,
                message: String::new(),
                since: Timestamp::now(),
                pinned: false,
                held: false,
            }],
            next_start: Some(at),
            ..Default::default()
        };
        m.check_finished(&report(&status, &charts));
        let text = m.encode().unwrap();
        assert!(
            text.contains("release=\"wiki\",state=\"waiting\"} 1"),
            "{text}"
        );
        let series = "coxswain_rollout_next_start_timestamp_seconds{subscription=\"coxswain/stack\",channel=\"stable\"} ";
        let value: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
            .parse()
            .unwrap();
        assert_eq!(value, at.unix_seconds());
        status.next_start = None;
        status.releases[0].state = ReleaseState::UpToDate;
        m.check_finished(&report(&status, &charts));
        let text = m.encode().unwrap();
        assert!(
            !text.contains("coxswain_rollout_next_start_timestamp_seconds{"),
            "a next start still exported when nothing waits:\n{text}"
        );
    }

    #[test]
    fn release_series_follow_the_status() {
        use crate::crd::ReleaseStatus;
        let m = Metrics::new();
        let release = |name: &str, version: &str, state| ReleaseStatus {
            name: name.to_owned(),
            namespace: "apps".to_owned(),
            version: Some(version.to_owned()),
            desired_version: None,
            revision: Some(2),
            state,
            message: String::new(),
            since: Timestamp::now(),
            pinned: false,
            held: false,
        };
        let charts = BTreeMap::from([("wiki".to_owned(), "wiki".to_owned())]);
        let mut status = ChannelSubscriptionStatus {
            releases: vec![
                release("wiki", "1.0.0", ReleaseState::UpToDate),
                release("chat", "2.0.0", ReleaseState::UpToDate),
            ],
            ..Default::default()
        };
        m.check_finished(&report(&status, &charts));
        status.releases = vec![release("wiki", "1.1.0", ReleaseState::RolledBack)];
        m.check_finished(&report(&status, &charts));
        let text = m.encode().unwrap();
        assert!(text.contains("coxswain_release_info{subscription=\"coxswain/stack\",channel=\"stable\",namespace=\"apps\",release=\"wiki\",version=\"1.1.0\",chart=\"wiki\"} 1"), "{text}");
        assert!(
            !text.contains("version=\"1.0.0\""),
            "stale version still exported:\n{text}"
        );
        assert!(
            !text.contains("release=\"chat\""),
            "release that left still exported:\n{text}"
        );
        assert!(
            text.contains("release=\"wiki\",state=\"rolledBack\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("release=\"wiki\",state=\"upToDate\"} 0"),
            "{text}"
        );
        assert!(
            !text.contains("coxswain_last_successful_check_timestamp_seconds{"),
            "no index verified:\n{text}"
        );
        // Another channel: the old channel's gauges go; then the subscription goes.
        let mut moved = report(&status, &charts);
        moved.channel = "beta";
        m.check_finished(&moved);
        let text = m.encode().unwrap();
        assert!(!text.contains("channel=\"stable\""), "{text}");
        assert!(
            text.contains(
                "coxswain_failed_sequence{subscription=\"coxswain/stack\",channel=\"beta\"} 0"
            ),
            "{text}"
        );
        m.forget("coxswain/stack");
        let gone = m.encode().unwrap();
        assert!(!gone.contains("coxswain/stack"), "{gone}");
        m.check_finished(&report(&status, &charts));
        let text = m.encode().unwrap();
        // A release's rollbacks start at 0, so the first one is an increase.
        assert!(
            text.contains("coxswain_rollbacks_total{subscription=\"coxswain/stack\",namespace=\"apps\",release=\"wiki\",operation=\"rollback\",result=\"succeeded\"} 0"),
            "{text}"
        );
    }
}
