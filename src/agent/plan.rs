//! The planner: what should change, as a pure function of the verified index,
//! the subscription's settings and what helm reports as installed.
//!
//! [`plan`] does no I/O and never calls helm; the executor runs its [`Plan`]
//! layer by layer. Every decision carries a sentence for people: the strings
//! end up in the subscription's status, in Events and in the UI.
//!
//! Rules, in the order they are applied to each release of the index:
//!
//! 1. a release in `holds` is not touched ([`SkipReason::Held`]);
//! 2. a release another subscription claims, or whose helm release another
//!    subscription owns, is a [`Conflict`];
//! 3. a pin selects the current entry or a `previous` one; a pin to a version
//!    the index no longer offers holds the release ([`SkipReason::PinUnavailable`]);
//! 4. a helm release stuck in `pending-*` is [`Blocker::Pending`] (repairing it is
//!    the executor's job, not the planner's);
//! 5. a helm release without a coxswain fingerprint is adopted when its chart name
//!    matches, and is a [`Conflict`] otherwise;
//! 6. a deployed release whose fingerprint has the desired chart digest and values
//!    hash is [`SkipReason::Unchanged`] (no `helm upgrade`);
//! 7. an installed version outside the target's `upgradeFrom` steps through the
//!    newest older entry whose range admits it (one hop per reconcile), or is
//!    [`Blocker::NoUpgradePath`];
//! 8. a release that would be installed or upgraded while one of its dependencies
//!    is held, blocked, in conflict or itself skipped is skipped too
//!    ([`SkipReason::Dependency`]); a dependency that is unchanged or has an action
//!    in an earlier layer is fine.
//!
//! Helm releases that carry this subscription's fingerprint but are no longer in
//! the index are reported as [`Orphan`]s and left installed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::crd::ReleaseState;
use crate::duration::Duration;
use crate::format::Timestamp;
use crate::format::index::Health;
use crate::format::{
    BackupPolicy, ChannelIndex, ChartVersion, CrdPolicy, IndexChart, IndexRelease, PreviousRelease,
    is_older, parse_range, same_version,
};
use crate::helm::{Fingerprint, FingerprintError, ReleaseStatus};
use crate::rollout::{Gate, GateInput, Maintenance, Ring, Rollout, Urgency, WaitReason};

/// A helm release's identity: namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReleaseId {
    /// The namespace.
    pub namespace: String,
    /// The release name.
    pub name: String,
}

impl ReleaseId {
    /// `namespace`/`name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The subscription's side of the desired state, already resolved (the
/// `valuesFrom` keys read and merged in order by the caller).
#[derive(Clone, Default)]
pub struct Settings {
    /// This subscription, as `namespace/name`; compared with
    /// [`InstalledRelease::owner`].
    pub subscription: String,
    /// Release name to pinned chart version.
    pub pins: BTreeMap<String, String>,
    /// Releases never touched.
    pub holds: BTreeSet<String>,
    /// Release name to this cluster's values, merged over the channel's values.
    pub cluster_values: BTreeMap<String, Map<String, Value>>,
    /// Releases that an earlier subscription also names, with that subscription:
    /// they belong to it, and this one reports a conflict.
    pub claimed_elsewhere: BTreeMap<ReleaseId, String>,
    /// The release the agent itself runs from, when a channel may update it
    /// (self-update): it goes last, in a layer of its own, so every other
    /// release of the plan is done before the agent's pods are replaced.
    pub agent_release: Option<ReleaseId>,
    /// Release name to the chart versions an administrator approved: an entry
    /// the channel marks `requiresApproval` is upgraded to only when its exact
    /// version is here.
    pub approvals: BTreeMap<String, BTreeSet<String>>,
    /// Why approvals of the subscription were refused (shown as notes).
    pub approval_problems: Vec<String>,
    /// The rollout gate's inputs (waves, rings, maintenance windows); `None`: every
    /// change may start at once.
    pub rollout: Option<RolloutSettings>,
}

/// The cluster's side of the rollout gate (docs/rollouts.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutSettings {
    /// The time of the plan.
    pub now: Timestamp,
    /// The cluster's [`crate::rollout::fleet_position`] in this channel.
    pub position: u32,
    /// The subscription's ring.
    pub ring: Ring,
    /// The subscription's maintenance windows and exclusions.
    pub maintenance: Option<Maintenance>,
    /// Health timeout for entries that set none (the subscription's).
    pub default_health_timeout: Duration,
}

/// Grace the agent gives a helm process beyond its `--timeout` (the helm shim's).
pub const HELM_GRACE: Duration = Duration::from_secs(30);

/// What the rollout gate needs to decide again, right before the executor starts an
/// action (a release starts when its dependencies finish, maybe long after the plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartGate {
    /// The channel's waves and pause (`None` for a pinned entry: the admin chose it).
    pub rollout: Option<Rollout>,
    /// When the entry's rollout started.
    pub rollout_start: Timestamp,
    /// The cluster's position.
    pub position: u32,
    /// The cluster's ring.
    pub ring: Ring,
    /// The subscription's maintenance settings.
    pub maintenance: Option<Maintenance>,
    /// The entry's urgency.
    pub urgency: Option<Urgency>,
    /// How long the change may take: helm's timeout and grace, then the health check.
    pub needs: Duration,
}

impl StartGate {
    /// The gate's answer at `now`.
    pub fn check(&self, now: Timestamp) -> Gate {
        crate::rollout::gate(&GateInput {
            now,
            rollout: self.rollout.as_ref(),
            rollout_start: self.rollout_start,
            position: self.position,
            ring: self.ring,
            maintenance: self.maintenance.as_ref(),
            urgency: self.urgency,
            needs: self.needs,
        })
    }
}

impl fmt::Debug for Settings {
    // Cluster values may come from Secrets: show which releases have some, never what.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("subscription", &self.subscription)
            .field("pins", &self.pins)
            .field("holds", &self.holds)
            .field(
                "cluster_values",
                &self.cluster_values.keys().collect::<Vec<_>>(),
            )
            .field("claimed_elsewhere", &self.claimed_elsewhere)
            .field("agent_release", &self.agent_release)
            .field("rollout", &self.rollout)
            .field("approvals", &self.approvals)
            .field("approval_problems", &self.approval_problems)
            .finish()
    }
}

/// One helm release as the executor found it (`helm list` / `history`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledRelease {
    /// The release name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The chart name of the latest revision.
    pub chart_name: String,
    /// The chart version of the latest revision.
    pub chart_version: String,
    /// The latest revision's status.
    pub status: ReleaseStatus,
    /// The latest revision number.
    pub revision: u32,
    /// The coxswain fingerprint of the deployed state, already followed through
    /// helm's "Rollback to N" to revision N; `None` when there is none.
    pub fingerprint: Option<Fingerprint>,
    /// The subscription (`namespace/name`) that installed it, when recorded.
    pub owner: Option<String>,
}

impl InstalledRelease {
    fn id(&self) -> ReleaseId {
        ReleaseId::new(&self.namespace, &self.name)
    }
}

/// What the executor should do to one release, with everything it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// The release name.
    pub release: String,
    /// Its namespace.
    pub namespace: String,
    /// Install or upgrade.
    pub kind: ActionKind,
    /// The entry to deploy, values merged.
    pub target: Target,
    /// The revision description to record.
    pub fingerprint: Fingerprint,
    /// A pin selected the entry.
    pub pinned: bool,
    /// When this is a step through an intermediate version: the version the
    /// channel ultimately wants.
    pub step_toward: Option<String>,
    /// Why, for people.
    pub reason: String,
    /// The rollout gate to pass again right before it starts (`None`: none applies).
    pub start_gate: Option<StartGate>,
}

/// Install or upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// Not installed (or uninstalled with history kept).
    Install,
    /// Installed: upgrade it; the executor rolls back to `from_revision` on failure.
    Upgrade {
        /// The chart version installed now.
        from_version: String,
        /// The revision to roll back to.
        from_revision: u32,
        /// The release was installed outside coxswain and is being adopted.
        adopt: bool,
    },
}

/// The chosen index entry, with the merged values.
#[derive(Clone, PartialEq)]
pub struct Target {
    /// The chart to fetch by digest.
    pub chart: IndexChart,
    /// Channel values with cluster values merged over them.
    pub values: Map<String, Value>,
    /// The health check.
    pub health: Health,
    /// Its dependencies.
    pub depends_on: Vec<String>,
    /// What happens to the chart's `crds/` (unset: Helm's own rule).
    pub crds: Option<CrdPolicy>,
    /// The Velero backup the channel asks for before an upgrade.
    pub backup: Option<BackupPolicy>,
}

impl fmt::Debug for Target {
    // Merged values include cluster values from Secrets: never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("chart", &self.chart)
            .field(
                "values",
                &format_args!(
                    "<{} keys, sha256:{}>",
                    self.values.len(),
                    hex::encode(values_hash(&self.values))
                ),
            )
            .field("health", &self.health)
            .field("depends_on", &self.depends_on)
            .field("crds", &self.crds)
            .field("backup", &self.backup)
            .finish()
    }
}

/// A release of the index that gets no action, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The release name.
    pub release: String,
    /// Its namespace.
    pub namespace: String,
    /// Why it is left alone.
    pub why: SkipReason,
    /// The chart version installed, if any.
    pub installed_version: Option<String>,
    /// The latest helm revision, if any.
    pub revision: Option<u32>,
    /// The version the channel or a pin asks for, when known.
    pub desired_version: Option<String>,
    /// A pin applies.
    pub pinned: bool,
    /// A hold applies.
    pub held: bool,
}

impl Skipped {
    /// The sentence for status, Events and the UI.
    pub fn reason(&self) -> String {
        self.why.to_string()
    }

    /// The state to report in the subscription's status.
    pub fn state(&self) -> ReleaseState {
        self.why.state()
    }
}

/// Why a release gets no action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Deployed with the desired chart digest and values hash.
    Unchanged {
        /// The deployed chart version.
        version: String,
    },
    /// Listed in `holds`.
    Held,
    /// A pin to a version the index no longer offers.
    PinUnavailable {
        /// The pinned version.
        pinned: String,
        /// What the index offers, current first.
        available: Vec<String>,
    },
    /// Cannot proceed now.
    Blocked(Blocker),
    /// Belongs to someone else.
    Conflict(Conflict),
    /// The channel marks the new version as requiring approval and the
    /// subscription has not approved exactly this release and version.
    AwaitingApproval {
        /// The release.
        release: String,
        /// The installed chart version.
        from: String,
        /// The version waiting for approval.
        version: String,
        /// The subscription, as `namespace/name`.
        subscription: String,
    },
    /// Would be installed or upgraded, but a dependency is not ready.
    Dependency {
        /// The dependency.
        dependency: String,
        /// What the dependency's state is.
        state: ReleaseState,
    },
    /// Would be installed or upgraded, but waits for its rollout wave, a paused
    /// rollout, or a maintenance window.
    Waiting(WaitReason),
}

impl SkipReason {
    /// The state to report in the subscription's status.
    pub fn state(&self) -> ReleaseState {
        match self {
            Self::Unchanged { .. } => ReleaseState::UpToDate,
            Self::Held | Self::PinUnavailable { .. } => ReleaseState::Held,
            Self::Blocked(_) => ReleaseState::Blocked,
            Self::Conflict(_) => ReleaseState::Conflict,
            Self::Dependency { .. } => ReleaseState::Skipped,
            Self::Waiting(_) => ReleaseState::Waiting,
            Self::AwaitingApproval { .. } => ReleaseState::AwaitingApproval,
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unchanged { version } => {
                write!(
                    f,
                    "up to date: {version} is deployed with the desired chart and values"
                )
            }
            Self::Held => f.write_str("held by the subscription; not touched"),
            Self::PinUnavailable { pinned, available } => write!(
                f,
                "pinned version {pinned} is no longer offered (available: {})",
                available.join(", ")
            ),
            Self::Blocked(b) => b.fmt(f),
            Self::Conflict(c) => c.fmt(f),
            Self::Dependency { dependency, state } => write!(
                f,
                "waits for dependency `{dependency}`, which is {}",
                state_words(*state)
            ),
            Self::Waiting(w) => w.fmt(f),
            Self::AwaitingApproval {
                release,
                from,
                version,
                subscription,
            } => {
                let (ns, name) = subscription.split_once('/').unwrap_or(("", subscription));
                write!(
                    f,
                    "awaiting approval: the channel marks {from} -> {version} as needing an administrator's approval; \
                     see what changes with `coxswain diff -n {ns} {name} {release}`, then approve with \
                     `kubectl -n {ns} annotate channelsubscription {name} {}={release}={version} --overwrite`",
                    crate::crd::APPROVE_ANNOTATION
                )
            }
        }
    }
}

fn state_words(state: ReleaseState) -> &'static str {
    match state {
        ReleaseState::Held => "held",
        ReleaseState::Blocked => "blocked",
        ReleaseState::Conflict => "in conflict",
        ReleaseState::Skipped => "skipped",
        ReleaseState::Failed => "failed",
        ReleaseState::RolledBack => "rolled back",
        ReleaseState::Orphaned => "no longer in the channel",
        ReleaseState::UpToDate => "up to date",
        ReleaseState::Installing => "being installed",
        ReleaseState::Upgrading => "being upgraded",
        ReleaseState::RollingBack => "being rolled back",
        ReleaseState::Waiting => "waiting for its rollout wave or maintenance window",
        ReleaseState::AwaitingApproval => "awaiting approval",
    }
}

/// Why a release cannot be upgraded now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// The installed version is outside the target's `upgradeFrom` and no
    /// offered entry bridges the gap.
    NoUpgradePath {
        /// The installed chart version.
        installed: String,
        /// The version the channel (or a pin) wants.
        target: String,
        /// The target's `upgradeFrom`.
        range: String,
        /// Offered versions between the two (none of which admits `installed`).
        between: Vec<String>,
    },
    /// Helm reports an operation in progress (or killed): `pending-*` or `uninstalling`.
    Pending(ReleaseStatus),
    /// Helm reports a status the agent does not act on (`unknown`, `superseded`).
    Status(ReleaseStatus),
    /// The installed chart version is not a semantic version, so `upgradeFrom`
    /// cannot be checked.
    UnreadableVersion {
        /// What helm reports.
        installed: String,
    },
    /// A version or range in the index could not be read (a validated index never has one).
    BadEntry {
        /// What is wrong.
        detail: String,
    },
    /// `dependsOn` names a release that is not in the index.
    UnknownDependency {
        /// The missing name.
        dependency: String,
    },
    /// The chosen entries' dependencies form a cycle (possible when pins pick
    /// `previous` entries with other dependencies).
    DependencyCycle {
        /// The releases left in or behind the cycle.
        releases: Vec<String>,
    },
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoUpgradePath {
                installed,
                target,
                range,
                between,
            } => {
                write!(
                    f,
                    "installed {installed} is outside upgradeFrom `{range}` of {target}; needs an intermediate version: "
                )?;
                if between.is_empty() {
                    write!(
                        f,
                        "no path (the channel offers none between {installed} and {target})"
                    )
                } else {
                    write!(
                        f,
                        "no path (none of {} upgrades from {installed})",
                        between.join(", ")
                    )
                }
            }
            Self::Pending(status) => write!(
                f,
                "helm reports {status}: another operation is in progress or a helm process was killed; left alone until repaired"
            ),
            Self::Status(status) => {
                write!(f, "helm reports status {status}; left alone")
            }
            Self::UnreadableVersion { installed } => write!(
                f,
                "installed chart version `{installed}` is not a semantic version, so upgradeFrom cannot be checked"
            ),
            Self::BadEntry { detail } => write!(f, "unusable index entry: {detail}"),
            Self::UnknownDependency { dependency } => {
                write!(f, "depends on `{dependency}`, which is not in the channel")
            }
            Self::DependencyCycle { releases } => write!(
                f,
                "caught in or behind a dependency cycle (unresolved: {})",
                releases.join(", ")
            ),
        }
    }
}

/// Why a release belongs to someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Installed outside coxswain with another chart.
    ForeignChart {
        /// The installed chart's name.
        installed_chart: String,
        /// The chart the channel offers.
        wanted_chart: String,
    },
    /// Installed by another subscription.
    OwnedBy {
        /// That subscription.
        subscription: String,
    },
    /// Named by an earlier subscription too.
    ClaimedBy {
        /// That subscription.
        subscription: String,
    },
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ForeignChart {
                installed_chart,
                wanted_chart,
            } => write!(
                f,
                "a release of the same name was installed outside coxswain with chart `{installed_chart}`, not `{wanted_chart}`; left alone"
            ),
            Self::OwnedBy { subscription } => {
                write!(f, "installed by subscription {subscription}; left alone")
            }
            Self::ClaimedBy { subscription } => write!(
                f,
                "also named by subscription {subscription}, which came first; left to it"
            ),
        }
    }
}

/// A helm release this subscription installed that the index no longer lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The release name.
    pub release: String,
    /// Its namespace.
    pub namespace: String,
    /// Its chart version.
    pub version: String,
    /// Its latest revision.
    pub revision: u32,
    /// The sentence for people.
    pub reason: String,
}

/// The outcome of planning.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The index's channel.
    pub channel: String,
    /// The index's sequence.
    pub sequence: u64,
    /// Actions in dependency order: every action's dependencies with actions
    /// are in earlier layers. Within a layer, actions are sorted by name and may
    /// run concurrently.
    pub layers: Vec<Vec<Action>>,
    /// Every other release of the index, sorted by name.
    pub skipped: Vec<Skipped>,
    /// Releases of this subscription that left the channel.
    pub orphans: Vec<Orphan>,
    /// Settings that name releases the index does not have (typos, removed releases).
    pub notes: Vec<String>,
    /// The earliest time a release that waits may start (its wave or window opens):
    /// when the agent checks again, before the next poll if sooner.
    pub wake: Option<Timestamp>,
}

impl Plan {
    /// Accepts a `LoadBalancer` Service without an address in every action's
    /// health check: what a subscription on a cluster without load balancers
    /// asks for, whatever the index says per release.
    pub fn accept_pending_load_balancers(&mut self) {
        for action in self.layers.iter_mut().flatten() {
            action.target.health.accept_pending_load_balancer = true;
        }
    }
}

impl Plan {
    /// Every action, layer by layer.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.layers.iter().flatten()
    }

    /// True when nothing is to be installed or upgraded.
    pub fn is_noop(&self) -> bool {
        self.layers.is_empty()
    }

    /// The skip record of `release`, if it has one.
    pub fn skipped(&self, release: &str) -> Option<&Skipped> {
        self.skipped.iter().find(|s| s.release == release)
    }

    /// The action for `release`, if it has one.
    pub fn action(&self, release: &str) -> Option<&Action> {
        self.actions().find(|a| a.release == release)
    }
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The index's channel name cannot be recorded in a fingerprint.
    #[error("cannot plan channel `{channel}`")]
    Fingerprint {
        /// The channel.
        channel: String,
        /// Why.
        #[source]
        error: FingerprintError,
    },
}

/// Deep-merges `over` onto `base`: where both hold a map, the maps merge key by
/// key, recursively; anything else in `over` (a list, a scalar, `null`)
/// replaces what `base` has. Lists are replaced, never concatenated, so a
/// cluster can shorten a list. A `null` is kept, so helm in turn drops the
/// chart's default for that key. The same rule helm applies to `-f` files.
pub fn merge_values(base: &Map<String, Value>, over: &Map<String, Value>) -> Map<String, Value> {
    let mut out = base.clone();
    for (key, value) in over {
        let merged = match (out.get(key), value) {
            (Some(Value::Object(b)), Value::Object(o)) => Value::Object(merge_values(b, o)),
            _ => value.clone(),
        };
        out.insert(key.clone(), merged);
    }
    out
}

/// The canonical JSON text of `values`: object keys sorted by code point
/// (byte-wise UTF-8), no whitespace, strings escaped as `serde_json` writes
/// them (only `"`, `\` and control characters; other text stays literal
/// UTF-8), numbers as `serde_json` prints them (`1` and `1.0` differ). Equal
/// values give equal text whatever order their keys were written in, also when
/// `serde_json` keeps insertion order. Not RFC 8785: nothing outside coxswain
/// needs to reproduce it, only this function must stay stable.
pub fn canonical_json(values: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_object(values, &mut out);
    out
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(key, out);
        out.push(':');
        if let Some(value) = map.get(key) {
            write_value(value, out);
        }
    }
    out.push('}');
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // Null, booleans and numbers have one spelling in serde_json.
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push_str(&Value::from(s).to_string());
}

/// sha256 of [`canonical_json`]: the `values=` part of a fingerprint.
pub fn values_hash(values: &Map<String, Value>) -> [u8; 32] {
    Sha256::digest(canonical_json(values).as_bytes()).into()
}

/// An index entry, current or previous, seen the same way.
#[derive(Clone, Copy)]
struct Entry<'a> {
    chart: &'a IndexChart,
    values: &'a Map<String, Value>,
    depends_on: &'a [String],
    health: Health,
    upgrade_from: Option<&'a str>,
    crds: Option<CrdPolicy>,
    backup: Option<BackupPolicy>,
}

impl<'a> From<&'a IndexRelease> for Entry<'a> {
    fn from(r: &'a IndexRelease) -> Self {
        Self {
            chart: &r.chart,
            values: &r.values,
            depends_on: &r.depends_on,
            health: r.health,
            upgrade_from: r.upgrade_from.as_deref(),
            crds: r.crds,
            backup: r.backup,
        }
    }
}

impl<'a> From<&'a PreviousRelease> for Entry<'a> {
    fn from(r: &'a PreviousRelease) -> Self {
        Self {
            chart: &r.chart,
            values: &r.values,
            depends_on: &r.depends_on,
            health: r.health,
            upgrade_from: r.upgrade_from.as_deref(),
            crds: r.crds,
            backup: r.backup,
        }
    }
}

/// The per-release decision before dependencies are looked at.
// `Skip` is the common case (most releases are unchanged): boxing it would
// allocate for every release of every check.
#[allow(clippy::large_enum_variant)]
enum Decision<'a> {
    Act {
        entry: Entry<'a>,
        /// Boxed: an action is large and most releases are skipped.
        action: Box<Action>,
    },
    Skip {
        /// The entry the dependency graph uses for this release.
        entry: Entry<'a>,
        skipped: Skipped,
    },
}

impl Decision<'_> {
    fn depends_on(&self) -> &[String] {
        match self {
            Self::Act { entry, .. } | Self::Skip { entry, .. } => entry.depends_on,
        }
    }
}

/// Moves the action on the agent's own release into a last layer of its
/// own: replacing the agent's pods ends the run of the one that leads, so
/// everything else must be done first. A release of the plan that depends on
/// the agent's release keeps the order the channel gives (it says so in the
/// notes): the dependency is the channel's promise, and it wins.
fn agent_release_last(layers: &mut Vec<Vec<Action>>, agent: &ReleaseId, notes: &mut Vec<String>) {
    let Some((li, ai)) = layers.iter().enumerate().find_map(|(li, layer)| {
        layer
            .iter()
            .position(|a| a.release == agent.name && a.namespace == agent.namespace)
            .map(|ai| (li, ai))
    }) else {
        return;
    };
    let is_last_alone = li + 1 == layers.len() && layers[li].len() == 1;
    if is_last_alone {
        return;
    }
    let dependents: Vec<&str> = layers
        .iter()
        .flatten()
        .filter(|a| a.target.depends_on.contains(&agent.name))
        .map(|a| a.release.as_str())
        .collect();
    if !dependents.is_empty() {
        notes.push(format!(
            "the agent's own release `{}` is not updated last: {} depend on it",
            agent.name,
            dependents.join(", ")
        ));
        return;
    }
    let action = layers[li].remove(ai);
    layers.retain(|l| !l.is_empty());
    layers.push(vec![action]);
}

/// Plans one reconcile of a subscription: `index` (verified by the caller),
/// the subscription's `settings`, and the helm releases `installed` in the
/// namespaces concerned. Pure: no I/O, and the same inputs give the same plan.
pub fn plan(
    index: &ChannelIndex,
    settings: &Settings,
    installed: &[InstalledRelease],
) -> Result<Plan, PlanError> {
    // Checked once: a channel that cannot go into a fingerprint fails every release.
    Fingerprint::new(&index.channel, index.sequence, [0; 32], [0; 32]).map_err(|error| {
        PlanError::Fingerprint {
            channel: index.channel.clone(),
            error,
        }
    })?;
    let installed_by_id: BTreeMap<ReleaseId, &InstalledRelease> = installed
        .iter()
        .filter(|r| r.status != ReleaseStatus::Uninstalled)
        .map(|r| (r.id(), r))
        .rev() // the first of duplicates wins
        .collect();

    let mut decisions: BTreeMap<&str, Decision<'_>> = BTreeMap::new();
    for release in &index.releases {
        if decisions.contains_key(release.name.as_str()) {
            // A validated index has no repeats; keep the first, note the rest.
            continue;
        }
        let installed = installed_by_id
            .get(&ReleaseId::new(&release.namespace, &release.name))
            .copied();
        decisions.insert(&release.name, decide(index, release, settings, installed));
    }
    let mut notes = settings_notes(index, settings);
    let mut seen = BTreeSet::new();
    for release in &index.releases {
        if !seen.insert(release.name.as_str()) {
            notes.push(format!(
                "release `{}` is listed more than once in the index; only the first entry is used",
                release.name
            ));
        }
    }

    let (order, cyclic) = layers_of(&decisions);
    let layer_of: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| layer.iter().map(move |name| (*name, i)))
        .collect();

    // Walk in dependency order so a skip propagates to dependents of dependents.
    let mut ready: BTreeMap<&str, Result<(), ReleaseState>> = BTreeMap::new();
    let mut layers: Vec<Vec<Action>> = vec![Vec::new(); order.len()];
    let mut skipped: Vec<Skipped> = Vec::new();
    let mut wake: Option<Timestamp> = None;
    let names: Vec<&str> = order
        .iter()
        .flatten()
        .copied()
        .chain(cyclic.iter().copied())
        .collect();
    for name in names {
        let Some(decision) = decisions.remove(name) else {
            continue;
        };
        match decision {
            Decision::Skip { skipped: s, .. } => {
                let outcome = match s.why {
                    SkipReason::Unchanged { .. } => Ok(()),
                    ref why => Err(why.state()),
                };
                ready.insert(name, outcome);
                skipped.push(s);
            }
            Decision::Act { entry, action } => {
                let blocked = if cyclic.contains(&name) {
                    Some(SkipReason::Blocked(Blocker::DependencyCycle {
                        releases: cyclic.iter().map(|s| (*s).to_owned()).collect(),
                    }))
                } else {
                    dependency_problem(entry.depends_on, &ready)
                };
                let mut action = action;
                action.start_gate = start_gate(index, settings, &action);
                let blocked = blocked.or_else(|| {
                    let rollout = settings.rollout.as_ref()?;
                    match action.start_gate.as_ref()?.check(rollout.now) {
                        Gate::Go => None,
                        Gate::Wait(w) => {
                            wake = earliest(wake, w.until);
                            Some(SkipReason::Waiting(w))
                        }
                    }
                });
                match blocked {
                    None => {
                        ready.insert(name, Ok(()));
                        // Every acyclic name has a layer; the fallback is never taken.
                        let layer = layer_of.get(name).copied().unwrap_or(0);
                        layers[layer].push(*action);
                    }
                    Some(why) => {
                        ready.insert(name, Err(why.state()));
                        skipped.push(Skipped {
                            release: action.release,
                            namespace: action.namespace,
                            installed_version: match &action.kind {
                                ActionKind::Install => None,
                                ActionKind::Upgrade { from_version, .. } => {
                                    Some(from_version.clone())
                                }
                            },
                            revision: match &action.kind {
                                ActionKind::Install => None,
                                ActionKind::Upgrade { from_revision, .. } => Some(*from_revision),
                            },
                            desired_version: Some(
                                action
                                    .step_toward
                                    .clone()
                                    .unwrap_or_else(|| action.target.chart.version.clone()),
                            ),
                            pinned: action.pinned,
                            held: false,
                            why,
                        });
                    }
                }
            }
        }
    }
    layers.retain(|l| !l.is_empty());
    for layer in &mut layers {
        layer.sort_by(|a, b| a.release.cmp(&b.release));
    }
    if let Some(agent) = &settings.agent_release {
        agent_release_last(&mut layers, agent, &mut notes);
    }
    skipped.sort_by(|a, b| a.release.cmp(&b.release));

    Ok(Plan {
        channel: index.channel.clone(),
        sequence: index.sequence,
        layers,
        skipped,
        orphans: orphans(index, settings, installed),
        notes,
        wake,
    })
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The gate an action passes before it starts, from the subscription's rollout
/// settings and the index entry; `None` without rollout settings.
fn start_gate(index: &ChannelIndex, settings: &Settings, action: &Action) -> Option<StartGate> {
    let rollout = settings.rollout.as_ref()?;
    let entry = index.releases.iter().find(|r| r.name == action.release)?;
    let health = action
        .target
        .health
        .timeout_or(rollout.default_health_timeout);
    Some(StartGate {
        // A pin is the admin's choice of an older entry: the channel's waves are not about it.
        rollout: if action.pinned {
            None
        } else {
            index.rollout.clone()
        },
        rollout_start: entry.rollout_start(index.published),
        position: rollout.position,
        ring: rollout.ring,
        maintenance: rollout.maintenance.clone(),
        urgency: entry.urgency,
        needs: health.saturating_add(HELM_GRACE).saturating_add(health),
    })
}

/// The first dependency that is not ready, as a skip reason.
fn dependency_problem(
    depends_on: &[String],
    ready: &BTreeMap<&str, Result<(), ReleaseState>>,
) -> Option<SkipReason> {
    for dependency in depends_on {
        match ready.get(dependency.as_str()) {
            Some(Ok(())) => {}
            Some(Err(state)) => {
                return Some(SkipReason::Dependency {
                    dependency: dependency.clone(),
                    state: *state,
                });
            }
            None => {
                return Some(SkipReason::Blocked(Blocker::UnknownDependency {
                    dependency: dependency.clone(),
                }));
            }
        }
    }
    None
}

/// Kahn's algorithm over the chosen entries' `dependsOn` (names not in the
/// index are ignored here and reported per release). Returns the layers, each
/// sorted by name, and the names left over because of a cycle, sorted.
fn layers_of<'a>(decisions: &BTreeMap<&'a str, Decision<'_>>) -> (Vec<Vec<&'a str>>, Vec<&'a str>) {
    let mut pending: BTreeMap<&'a str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&'a str>> = BTreeMap::new();
    for (&name, decision) in decisions {
        let deps: BTreeSet<&str> = decision
            .depends_on()
            .iter()
            .map(String::as_str)
            .filter(|d| decisions.contains_key(d))
            .collect();
        pending.insert(name, deps.len());
        for dep in deps {
            dependents.entry(dep).or_default().push(name);
        }
    }
    let mut layers = Vec::new();
    let mut current: Vec<&'a str> = pending
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(name, _)| *name)
        .collect();
    while !current.is_empty() {
        let mut next = Vec::new();
        for name in &current {
            pending.remove(name);
            for dependent in dependents.get(name).into_iter().flatten() {
                if let Some(n) = pending.get_mut(dependent) {
                    *n -= 1;
                    if *n == 0 {
                        next.push(*dependent);
                    }
                }
            }
        }
        next.sort_unstable();
        layers.push(std::mem::replace(&mut current, next));
    }
    (layers, pending.into_keys().collect())
}

/// The decision for one release, before its dependencies are looked at.
fn decide<'a>(
    index: &'a ChannelIndex,
    release: &'a IndexRelease,
    settings: &Settings,
    installed: Option<&InstalledRelease>,
) -> Decision<'a> {
    let current = Entry::from(release);
    let pin = settings.pins.get(&release.name);
    let held = settings.holds.contains(&release.name);
    let skip = |entry: Entry<'a>, why: SkipReason| Decision::Skip {
        entry,
        skipped: Skipped {
            release: release.name.clone(),
            namespace: release.namespace.clone(),
            installed_version: installed.map(|i| i.chart_version.clone()),
            revision: installed.map(|i| i.revision),
            desired_version: Some(entry.chart.version.clone()),
            pinned: pin.is_some(),
            held,
            why,
        },
    };

    // The entry a pin selects (a pin to the current version is no change).
    let target = match pin {
        None => Ok(current),
        Some(version) if same_version(version, &release.chart.version) => Ok(current),
        Some(version) => release
            .previous
            .iter()
            .find(|p| same_version(version, &p.chart.version))
            .map(Entry::from)
            .ok_or_else(|| SkipReason::PinUnavailable {
                pinned: version.clone(),
                available: std::iter::once(&release.chart.version)
                    .chain(release.previous.iter().map(|p| &p.chart.version))
                    .cloned()
                    .collect(),
            }),
    };
    let target = match (target, held) {
        (Ok(entry), false) => entry,
        (Ok(entry), true) => return skip(entry, SkipReason::Held),
        (Err(why), held) => {
            let why = if held { SkipReason::Held } else { why };
            let mut decision = skip(current, why);
            if let (Decision::Skip { skipped, .. }, Some(version)) = (&mut decision, pin) {
                skipped.desired_version = Some(version.clone());
            }
            return decision;
        }
    };

    let id = ReleaseId::new(&release.namespace, &release.name);
    if let Some(subscription) = settings.claimed_elsewhere.get(&id) {
        return skip(
            target,
            SkipReason::Conflict(Conflict::ClaimedBy {
                subscription: subscription.clone(),
            }),
        );
    }
    if let Some(owner) = installed.and_then(|i| i.owner.as_ref())
        && *owner != settings.subscription
    {
        return skip(
            target,
            SkipReason::Conflict(Conflict::OwnedBy {
                subscription: owner.clone(),
            }),
        );
    }

    let values = merge_values(
        target.values,
        settings
            .cluster_values
            .get(&release.name)
            .unwrap_or(&Map::new()),
    );
    let Some(installed) = installed else {
        return Decision::Act {
            entry: target,
            action: Box::new(action(
                index,
                release,
                target,
                values,
                ActionKind::Install,
                pin.is_some(),
                None,
                format!(
                    "not installed; installing {} {}",
                    target.chart.name, target.chart.version
                ),
            )),
        };
    };

    if installed.status.is_pending() {
        return skip(
            target,
            SkipReason::Blocked(Blocker::Pending(installed.status)),
        );
    }
    if !matches!(
        installed.status,
        ReleaseStatus::Deployed | ReleaseStatus::Failed
    ) {
        return skip(
            target,
            SkipReason::Blocked(Blocker::Status(installed.status)),
        );
    }
    let ours = installed.fingerprint.is_some() || installed.owner.is_some();
    if !ours && installed.chart_name != target.chart.name {
        return skip(
            target,
            SkipReason::Conflict(Conflict::ForeignChart {
                installed_chart: installed.chart_name.clone(),
                wanted_chart: target.chart.name.clone(),
            }),
        );
    }

    let hash = values_hash(&values);
    if installed.status == ReleaseStatus::Deployed
        && let Some(fp) = &installed.fingerprint
        && fp.chart_sha256 == *target.chart.digest.as_bytes()
        && fp.values_sha256 == hash
    {
        return skip(
            target,
            SkipReason::Unchanged {
                version: installed.chart_version.clone(),
            },
        );
    }

    // An entry the channel marks as requiring approval waits for one naming
    // exactly its version (a pin to an older entry is the admin's own choice;
    // a changed values or republished chart of the installed version is not a
    // new version).
    if release.requires_approval
        && std::ptr::eq(target.chart, &release.chart)
        && !same_version(&installed.chart_version, &target.chart.version)
        && !settings
            .approvals
            .get(&release.name)
            .is_some_and(|versions| {
                versions
                    .iter()
                    .any(|v| same_version(v, &target.chart.version))
            })
    {
        return skip(
            target,
            SkipReason::AwaitingApproval {
                release: release.name.clone(),
                from: installed.chart_version.clone(),
                version: target.chart.version.clone(),
                subscription: settings.subscription.clone(),
            },
        );
    }

    // upgradeFrom: maybe one hop through an older entry.
    let (entry, values, step_toward) = match upgrade_step(release, target, &installed.chart_version)
    {
        Ok(None) => (target, values, None),
        Ok(Some(step)) => {
            let values = merge_values(
                step.values,
                settings
                    .cluster_values
                    .get(&release.name)
                    .unwrap_or(&Map::new()),
            );
            (step, values, Some(target.chart.version.clone()))
        }
        Err(blocker) => return skip(target, SkipReason::Blocked(blocker)),
    };

    let from = &installed.chart_version;
    let to = &entry.chart.version;
    let mut reason = if !ours {
        format!(
            "adopting release installed outside coxswain (chart {} {from}); upgrading to {to}",
            installed.chart_name
        )
    } else if installed.fingerprint.is_none() {
        format!(
            "deployed revision {} has no coxswain fingerprint (changed by hand?); upgrading to {to}",
            installed.revision
        )
    } else if installed.status == ReleaseStatus::Failed {
        format!(
            "revision {} failed; upgrading to {to} again",
            installed.revision
        )
    } else if from != to {
        let older = is_older(to, from);
        if older {
            format!("downgrading {from} -> {to}")
        } else {
            format!("upgrading {from} -> {to}")
        }
    } else if installed
        .fingerprint
        .as_ref()
        .is_some_and(|fp| fp.chart_sha256 != *entry.chart.digest.as_bytes())
    {
        format!(
            "chart {} {to} was republished with other contents; upgrading",
            entry.chart.name
        )
    } else {
        format!("values changed; upgrading {to}")
    };
    if let Some(final_version) = &step_toward {
        reason.push_str(&format!(
            "; installed {from} is outside upgradeFrom `{}` of {final_version}, so this run stops at {to} (one hop per reconcile)",
            target.upgrade_from.unwrap_or_default()
        ));
    }
    if pin.is_some() {
        reason.push_str(" (pinned)");
    }
    let kind = ActionKind::Upgrade {
        from_version: from.clone(),
        from_revision: installed.revision,
        adopt: !ours,
    };
    Decision::Act {
        entry,
        action: Box::new(action(
            index,
            release,
            entry,
            values,
            kind,
            pin.is_some(),
            step_toward,
            reason,
        )),
    }
}

#[allow(clippy::too_many_arguments)] // one call site per kind; a struct would only rename them
fn action(
    index: &ChannelIndex,
    release: &IndexRelease,
    entry: Entry<'_>,
    values: Map<String, Value>,
    kind: ActionKind,
    pinned: bool,
    step_toward: Option<String>,
    reason: String,
) -> Action {
    let fingerprint = Fingerprint {
        channel: index.channel.clone(),
        sequence: index.sequence,
        chart_sha256: *entry.chart.digest.as_bytes(),
        values_sha256: values_hash(&values),
    };
    Action {
        release: release.name.clone(),
        namespace: release.namespace.clone(),
        kind,
        target: Target {
            chart: entry.chart.clone(),
            values,
            health: entry.health,
            depends_on: entry.depends_on.to_vec(),
            crds: entry.crds,
            backup: entry.backup,
        },
        fingerprint,
        pinned,
        step_toward,
        reason,
        start_gate: None,
    }
}

/// `Ok(None)`: upgrade straight to `target`. `Ok(Some(step))`: upgrade to the
/// intermediate `step` first. `Err`: no path.
///
/// Only upgrades are checked: a pin may move a release to an older version
/// (the admin asked for it), and a values change keeps the version.
fn upgrade_step<'a>(
    release: &'a IndexRelease,
    target: Entry<'a>,
    installed_version: &str,
) -> Result<Option<Entry<'a>>, Blocker> {
    let Some(range) = target.upgrade_from else {
        return Ok(None);
    };
    let bad = |detail: String| Blocker::BadEntry { detail };
    let target_version = target
        .chart
        .parsed_version()
        .map_err(|e| bad(format!("chart version `{}`: {e}", target.chart.version)))?;
    let Ok(installed) = ChartVersion::parse(installed_version) else {
        return Err(Blocker::UnreadableVersion {
            installed: installed_version.to_owned(),
        });
    };
    if installed.cmp_precedence(&target_version) != Ordering::Less {
        return Ok(None);
    }
    let admits = |range: Option<&str>| -> Result<bool, Blocker> {
        match range {
            None => Ok(true),
            Some(r) => parse_range(r)
                .map(|req| installed.satisfies(&req))
                .map_err(|e| bad(format!("upgradeFrom `{r}`: {e}"))),
        }
    };
    if admits(Some(range))? {
        return Ok(None);
    }
    // Entries strictly between the installed and the target version, newest first.
    let mut between: Vec<(ChartVersion, Entry<'a>)> = std::iter::once(Entry::from(release))
        .chain(release.previous.iter().map(Entry::from))
        .filter_map(|e| e.chart.parsed_version().ok().map(|v| (v, e)))
        .filter(|(v, _)| {
            v.cmp_precedence(&installed) == Ordering::Greater
                && v.cmp_precedence(&target_version) == Ordering::Less
        })
        .collect();
    between.sort_by(|a, b| b.0.cmp_precedence(&a.0));
    for (_, entry) in &between {
        if admits(entry.upgrade_from)? {
            return Ok(Some(*entry));
        }
    }
    Err(Blocker::NoUpgradePath {
        installed: installed_version.to_owned(),
        target: target.chart.version.clone(),
        range: range.to_owned(),
        between: between.iter().map(|(v, _)| v.to_string()).collect(),
    })
}

/// Pins, holds, values and claims that name releases the index does not have.
fn settings_notes(index: &ChannelIndex, settings: &Settings) -> Vec<String> {
    let names: BTreeSet<&str> = index.releases.iter().map(|r| r.name.as_str()).collect();
    let mut notes = Vec::new();
    let mut note = |what: &str, name: &str| {
        if !names.contains(name) {
            notes.push(format!(
                "{what} for `{name}` names no release of channel `{}`; ignored",
                index.channel
            ));
        }
    };
    for name in settings.pins.keys() {
        note("pin", name);
    }
    for name in &settings.holds {
        note("hold", name);
    }
    for name in settings.cluster_values.keys() {
        note("values", name);
    }
    for name in settings.approvals.keys() {
        note("approval", name);
    }
    for problem in &settings.approval_problems {
        notes.push(format!("{problem}; nothing in it is approved"));
    }
    notes
}

/// The actions that the releases awaiting approval in `plan` would get once
/// approved: the same inputs planned again with their versions approved (pure,
/// like [`plan`]). What `coxswain diff` and the web UI render. A release whose
/// dependencies are not ready yet gets none.
pub fn approval_previews(
    index: &ChannelIndex,
    settings: &Settings,
    installed: &[InstalledRelease],
    plan_now: &Plan,
) -> Result<Vec<Action>, PlanError> {
    let mut approved = settings.clone();
    let mut awaiting = Vec::new();
    for s in &plan_now.skipped {
        if let SkipReason::AwaitingApproval {
            release, version, ..
        } = &s.why
        {
            approved
                .approvals
                .entry(release.clone())
                .or_default()
                .insert(version.clone());
            awaiting.push(release.as_str());
        }
    }
    if awaiting.is_empty() {
        return Ok(Vec::new());
    }
    let preview = plan(index, &approved, installed)?;
    Ok(awaiting
        .into_iter()
        .filter_map(|name| preview.action(name).cloned())
        .collect())
}

/// Helm releases of this subscription that the index no longer lists. Without
/// a recorded owner, a fingerprint naming this channel counts as ours.
fn orphans(
    index: &ChannelIndex,
    settings: &Settings,
    installed: &[InstalledRelease],
) -> Vec<Orphan> {
    let wanted: BTreeSet<ReleaseId> = index
        .releases
        .iter()
        .map(|r| ReleaseId::new(&r.namespace, &r.name))
        .collect();
    let mut out: Vec<Orphan> = installed
        .iter()
        .filter(|r| r.status != ReleaseStatus::Uninstalled && !wanted.contains(&r.id()))
        .filter(|r| match (&r.owner, &r.fingerprint) {
            (Some(owner), _) => *owner == settings.subscription,
            (None, Some(fp)) => fp.channel == index.channel,
            (None, None) => false,
        })
        .map(|r| Orphan {
            release: r.name.clone(),
            namespace: r.namespace.clone(),
            version: r.chart_version.clone(),
            revision: r.revision,
            reason: format!(
                "no longer in channel `{}`; left installed (removing it needs an explicit tombstone entry)",
                index.channel
            ),
        })
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.release).cmp(&(&b.namespace, &b.release)));
    out.dedup_by(|a, b| a.namespace == b.namespace && a.release == b.release);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index::ChannelIndexKind;
    use crate::format::{ApiVersion, Sha256Digest};
    use serde_json::json;

    const US: &str = "coxswain/stack";

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn chart(name: &str, version: &str) -> IndexChart {
        let digest = Sha256Digest::of(format!("{name}-{version}").as_bytes());
        IndexChart {
            name: name.into(),
            version: version.into(),
            url: format!("../../charts/{}", IndexChart::archive_name(&digest)),
            digest,
            size: 1000,
        }
    }

    fn rel(name: &str, version: &str, deps: &[&str]) -> IndexRelease {
        IndexRelease {
            name: name.into(),
            namespace: name.into(),
            chart: chart(name, version),
            values: obj(json!({"image": {"tag": version}, "replicas": 1})),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            health: Health::default(),
            upgrade_from: None,
            crds: None,
            backup: None,
            requires_approval: false,
            previous: vec![],
            urgency: None,
            since: None,
        }
    }

    fn with_previous(mut r: IndexRelease, versions: &[(&str, Option<&str>)]) -> IndexRelease {
        r.previous = versions
            .iter()
            .map(|(v, range)| {
                let mut p = r.to_previous();
                p.chart = chart(&r.name, v);
                p.values = obj(json!({"image": {"tag": v}, "replicas": 1}));
                p.upgrade_from = range.map(str::to_owned);
                p
            })
            .collect();
        r
    }

    fn index(releases: Vec<IndexRelease>) -> ChannelIndex {
        ChannelIndex {
            api_version: ApiVersion::V1,
            kind: ChannelIndexKind::ChannelIndex,
            channel: "stable".into(),
            sequence: 7,
            published: "2026-11-26T03:00:00Z".parse().unwrap(),
            expires: "2026-12-10T03:00:00Z".parse().unwrap(),
            releases,
            withdrawn: Vec::new(),
            rollout: None,
        }
    }

    /// certs <- ingress <- sso <- wiki; database <- files -> sso.
    fn stack() -> ChannelIndex {
        index(vec![
            rel("wiki", "0.3.1", &["sso"]),
            rel("files", "4.0.0", &["database", "sso"]),
            rel("sso", "2.0.0", &["ingress"]),
            rel("ingress", "1.2.0", &["certs"]),
            rel("certs", "1.0.0", &[]),
            rel("database", "15.0.0", &[]),
        ])
    }

    fn settings() -> Settings {
        Settings {
            subscription: US.into(),
            ..Settings::default()
        }
    }

    fn fingerprint(chart: &IndexChart, values: &Map<String, Value>, sequence: u64) -> Fingerprint {
        Fingerprint::new(
            "stable",
            sequence,
            *chart.digest.as_bytes(),
            values_hash(values),
        )
        .unwrap()
    }

    /// Installed exactly as the index entry (with these cluster values) wants it.
    fn deployed(r: &IndexRelease, cluster: &Map<String, Value>) -> InstalledRelease {
        let values = merge_values(&r.values, cluster);
        InstalledRelease {
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            chart_name: r.chart.name.clone(),
            chart_version: r.chart.version.clone(),
            status: ReleaseStatus::Deployed,
            revision: 3,
            fingerprint: Some(fingerprint(&r.chart, &values, 6)),
            owner: Some(US.into()),
        }
    }

    fn all_deployed(idx: &ChannelIndex) -> Vec<InstalledRelease> {
        idx.releases
            .iter()
            .map(|r| deployed(r, &Map::new()))
            .collect()
    }

    fn layer_names(p: &Plan) -> Vec<Vec<&str>> {
        p.layers
            .iter()
            .map(|l| l.iter().map(|a| a.release.as_str()).collect())
            .collect()
    }

    fn run(idx: &ChannelIndex, s: &Settings, installed: &[InstalledRelease]) -> Plan {
        plan(idx, s, installed).unwrap()
    }

    #[test]
    fn merge_values_merges_maps_and_replaces_everything_else() {
        let base = obj(json!({
            "image": {"repository": "wiki", "tag": "1.0"},
            "hosts": ["a.example", "b.example"],
            "replicas": 1,
            "ingress": {"enabled": true, "tls": {"secret": "x"}},
            "keep": "me"
        }));
        let over = obj(json!({
            "image": {"tag": "1.1"},
            "hosts": ["c.example"],
            "replicas": {"min": 2},
            "ingress": {"tls": null},
            "extra": [1]
        }));
        let merged = merge_values(&base, &over);
        assert_eq!(
            Value::Object(merged),
            json!({
                "image": {"repository": "wiki", "tag": "1.1"},
                "hosts": ["c.example"],
                "replicas": {"min": 2},
                "ingress": {"enabled": true, "tls": null},
                "keep": "me",
                "extra": [1]
            })
        );
        // A scalar replaces a map, too; the inputs are untouched.
        let merged = merge_values(&base, &obj(json!({"image": "wiki:1.2"})));
        assert_eq!(merged["image"], "wiki:1.2");
        assert_eq!(base["image"]["tag"], "1.0");
        assert_eq!(merge_values(&base, &Map::new()), base);
        assert_eq!(merge_values(&Map::new(), &over), over);
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let v = obj(json!({
            "b": {"z": null, "a": true},
            "a": [3, "x\"y", {"d": 1.5, "c": -2}],
            "é": "ü\n",
            "B": 1
        }));
        assert_eq!(
            canonical_json(&v),
            r#"{"B":1,"a":[3,"x\"y",{"c":-2,"d":1.5}],"b":{"a":true,"z":null},"é":"ü\n"}"#
        );
        // The hash is sha256 of exactly that text; pinned for `{}` so the
        // fingerprints on clusters stay comparable across releases of coxswain.
        assert_eq!(
            hex::encode(values_hash(&Map::new())),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(
            values_hash(&v),
            <[u8; 32]>::from(Sha256::digest(canonical_json(&v).as_bytes()))
        );
        // Equal values, written in another key order, hash the same.
        let reordered: Map<String, Value> = serde_json::from_str(
            r#"{"B":1,"é":"ü\n","b":{"a":true,"z":null},"a":[3,"x\"y",{"d":1.5,"c":-2}]}"#,
        )
        .unwrap();
        assert_eq!(values_hash(&v), values_hash(&reordered));
        assert_ne!(
            values_hash(&obj(json!({"a": 1}))),
            values_hash(&obj(json!({"a": 1.0})))
        );
        assert_ne!(
            values_hash(&obj(json!({"a": [1, 2]}))),
            values_hash(&obj(json!({"a": [2, 1]})))
        );
    }

    #[test]
    fn a_cluster_without_load_balancers_accepts_pending_ones_everywhere() {
        let idx = stack();
        let mut p = run(&idx, &settings(), &[]);
        assert!(p.layers.iter().flatten().count() > 1);
        assert!(
            p.layers
                .iter()
                .flatten()
                .all(|a| !a.target.health.accept_pending_load_balancer)
        );
        p.accept_pending_load_balancers();
        assert!(
            p.layers
                .iter()
                .flatten()
                .all(|a| a.target.health.accept_pending_load_balancer)
        );
    }

    #[test]
    fn the_agents_own_release_goes_last_and_alone() {
        let mut releases = stack().releases;
        releases.push(rel("coxswain", "0.2.0", &[]));
        let idx = index(releases);
        let s = Settings {
            agent_release: Some(ReleaseId::new("coxswain", "coxswain")),
            ..settings()
        };
        let p = run(&idx, &s, &[]);
        assert_eq!(
            layer_names(&p),
            vec![
                vec!["certs", "database"],
                vec!["ingress"],
                vec!["sso"],
                vec!["files", "wiki"],
                vec!["coxswain"]
            ]
        );
        // Without the setting it is an ordinary release of the first layer.
        let p = run(&idx, &settings(), &[]);
        assert_eq!(layer_names(&p)[0], ["certs", "coxswain", "database"]);
        // Another namespace's release of the same name is not the agent's.
        let s = Settings {
            agent_release: Some(ReleaseId::new("elsewhere", "coxswain")),
            ..settings()
        };
        assert_eq!(
            layer_names(&run(&idx, &s, &[]))[0],
            ["certs", "coxswain", "database"]
        );
    }

    #[test]
    fn a_release_that_depends_on_the_agent_keeps_the_channels_order() {
        let idx = index(vec![
            rel("coxswain", "0.2.0", &[]),
            rel("wiki", "1.0.0", &["coxswain"]),
            rel("certs", "1.0.0", &[]),
        ]);
        let s = Settings {
            agent_release: Some(ReleaseId::new("coxswain", "coxswain")),
            ..settings()
        };
        let p = run(&idx, &s, &[]);
        assert_eq!(
            layer_names(&p),
            vec![vec!["certs", "coxswain"], vec!["wiki"]]
        );
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("`coxswain` is not updated last: wiki depend")),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn fresh_install_runs_in_dependency_layers() {
        let idx = stack();
        let p = run(&idx, &settings(), &[]);
        assert_eq!(
            layer_names(&p),
            vec![
                vec!["certs", "database"],
                vec!["ingress"],
                vec!["sso"],
                vec!["files", "wiki"]
            ]
        );
        assert!(p.skipped.is_empty() && p.orphans.is_empty() && p.notes.is_empty());
        let wiki = p.action("wiki").unwrap();
        assert_eq!(wiki.kind, ActionKind::Install);
        assert_eq!(wiki.reason, "not installed; installing wiki 0.3.1");
        assert_eq!(wiki.fingerprint.channel, "stable");
        assert_eq!(wiki.fingerprint.sequence, 7);
        assert_eq!(
            wiki.fingerprint.chart_sha256,
            *chart("wiki", "0.3.1").digest.as_bytes()
        );
        assert_eq!(
            wiki.fingerprint.values_sha256,
            values_hash(&idx.releases[0].values)
        );
        assert_eq!(wiki.target.depends_on, ["sso"]);
        assert_eq!((p.channel.as_str(), p.sequence), ("stable", 7));
    }

    #[test]
    fn a_no_op_poll_plans_nothing() {
        let idx = stack();
        let p = run(&idx, &settings(), &all_deployed(&idx));
        assert!(p.is_noop(), "{:?}", layer_names(&p));
        assert_eq!(p.skipped.len(), 6);
        for s in &p.skipped {
            assert_eq!(s.state(), ReleaseState::UpToDate, "{}", s.release);
            assert!(s.reason().starts_with("up to date: "), "{}", s.reason());
        }
        // Names come out sorted, whatever the index order.
        let names: Vec<&str> = p.skipped.iter().map(|s| s.release.as_str()).collect();
        assert_eq!(
            names,
            ["certs", "database", "files", "ingress", "sso", "wiki"]
        );
    }

    #[test]
    fn a_new_sequence_upgrades_only_what_changed() {
        let old = stack();
        let installed = all_deployed(&old);
        let mut idx = stack();
        idx.sequence = 8;
        idx.releases[0] = rel("wiki", "0.3.2", &["sso"]);
        let p = run(&idx, &settings(), &installed);
        assert_eq!(layer_names(&p), vec![vec!["wiki"]]);
        let a = p.action("wiki").unwrap();
        assert_eq!(
            a.kind,
            ActionKind::Upgrade {
                from_version: "0.3.1".into(),
                from_revision: 3,
                adopt: false
            }
        );
        assert_eq!(a.reason, "upgrading 0.3.1 -> 0.3.2");
        assert_eq!(a.fingerprint.sequence, 8);
        assert_eq!(p.skipped.len(), 5);
    }

    #[test]
    fn cluster_values_are_merged_and_part_of_the_fingerprint() {
        let idx = stack();
        let mut s = settings();
        s.cluster_values.insert(
            "sso".into(),
            obj(json!({"domain": "sso.example.org", "image": {"pullPolicy": "Always"}})),
        );
        let p = run(&idx, &s, &all_deployed(&idx));
        assert_eq!(layer_names(&p), vec![vec!["sso"]]);
        let a = p.action("sso").unwrap();
        assert_eq!(a.reason, "values changed; upgrading 2.0.0");
        assert_eq!(
            Value::Object(a.target.values.clone()),
            json!({"image": {"tag": "2.0.0", "pullPolicy": "Always"}, "replicas": 1, "domain": "sso.example.org"})
        );
        assert_eq!(a.fingerprint.values_sha256, values_hash(&a.target.values));
        // Once deployed with those values, the same settings plan nothing.
        let sso = idx.releases.iter().find(|r| r.name == "sso").unwrap();
        let mut installed = all_deployed(&idx);
        installed.retain(|r| r.name != "sso");
        installed.push(deployed(sso, &s.cluster_values["sso"]));
        assert!(run(&idx, &s, &installed).is_noop());
    }

    #[test]
    fn a_republished_chart_of_the_same_version_is_upgraded() {
        let idx = stack();
        let mut installed = all_deployed(&idx);
        let certs = installed.iter_mut().find(|r| r.name == "certs").unwrap();
        certs.fingerprint.as_mut().unwrap().chart_sha256 = [9; 32];
        let p = run(&idx, &settings(), &installed);
        assert_eq!(
            p.action("certs").unwrap().reason,
            "chart certs 1.0.0 was republished with other contents; upgrading"
        );
    }

    #[test]
    fn an_entry_requiring_approval_waits_for_exactly_its_version() {
        let old = stack();
        let installed = all_deployed(&old);
        let mut sso = rel("sso", "3.0.0", &["ingress"]);
        sso.requires_approval = true;
        let idx = index(vec![
            rel("wiki", "0.4.0", &["sso"]),
            rel("files", "4.0.0", &["database", "sso"]),
            sso,
            rel("ingress", "1.2.0", &["certs"]),
            rel("certs", "1.1.0", &[]),
            rel("database", "15.0.0", &[]),
        ]);
        let p = run(&idx, &settings(), &installed);
        assert_eq!(layer_names(&p), vec![vec!["certs"]]);
        let waiting = p.skipped("sso").unwrap();
        assert_eq!(waiting.state(), ReleaseState::AwaitingApproval);
        assert_eq!(waiting.desired_version.as_deref(), Some("3.0.0"));
        let reason = waiting.reason();
        assert!(reason.contains("2.0.0 -> 3.0.0"), "{reason}");
        assert!(
            reason.contains("kubectl -n coxswain annotate channelsubscription stack coxswain.dev/approve=sso=3.0.0 --overwrite"),
            "{reason}"
        );
        assert!(
            reason.contains("coxswain diff -n coxswain stack sso"),
            "{reason}"
        );
        // The dependency rule: wiki (which would change) waits for sso.
        assert_eq!(
            p.skipped("wiki").unwrap().reason(),
            "waits for dependency `sso`, which is awaiting approval"
        );

        // An approval of another (older) version approves nothing.
        let mut s = settings();
        s.approvals
            .insert("sso".into(), ["2.5.0".to_owned()].into());
        let p = run(&idx, &s, &installed);
        assert_eq!(
            p.skipped("sso").unwrap().state(),
            ReleaseState::AwaitingApproval
        );
        // The exact version (as Helm compares versions: `v3.0.0` is 3.0.0) does.
        s.approvals
            .insert("sso".into(), ["v3.0.0".to_owned()].into());
        let p = run(&idx, &s, &installed);
        assert_eq!(
            layer_names(&p),
            vec![vec!["certs"], vec!["sso"], vec!["wiki"]]
        );

        // Approving 3.0.0 does not approve 3.1.0.
        let mut newer = idx.clone();
        newer.releases[2].chart = chart("sso", "3.1.0");
        let p = run(&newer, &s, &installed);
        assert_eq!(
            p.skipped("sso").unwrap().state(),
            ReleaseState::AwaitingApproval
        );
    }

    #[test]
    fn approval_gates_only_a_change_of_version() {
        let mut sso = rel("sso", "2.0.0", &[]);
        sso.requires_approval = true;
        let idx = index(vec![sso.clone()]);
        // Not installed: an install has nothing to break.
        let p = run(&idx, &settings(), &[]);
        assert_eq!(layer_names(&p), vec![vec!["sso"]]);
        // Installed at the same version with other values: upgraded.
        let mut installed = deployed(&sso, &Map::new());
        installed.fingerprint = Some(fingerprint(&sso.chart, &obj(json!({"old": 1})), 6));
        let p = run(&idx, &settings(), &[installed]);
        assert_eq!(layer_names(&p), vec![vec!["sso"]]);
        // A pin to an older entry is the admin's own choice.
        let idx = index(vec![with_previous(sso, &[("1.0.0", None)])]);
        let mut s = settings();
        s.pins.insert("sso".into(), "1.0.0".into());
        let mut at_two = deployed(&idx.releases[0], &Map::new());
        at_two.chart_version = "2.0.0".into();
        let p = run(&idx, &s, &[at_two]);
        assert_eq!(layer_names(&p), vec![vec!["sso"]]);
    }

    #[test]
    fn previews_are_the_actions_an_approval_would_start_and_bad_approvals_are_noted() {
        let mut sso = rel("sso", "3.0.0", &[]);
        sso.requires_approval = true;
        let idx = index(vec![sso, rel("wiki", "1.0.0", &["sso"])]);
        let mut old_sso = rel("sso", "2.0.0", &[]);
        old_sso.values = obj(json!({"old": true}));
        let installed = vec![
            deployed(&old_sso, &Map::new()),
            deployed(&rel("wiki", "1.0.0", &["sso"]), &Map::new()),
        ];
        let mut s = settings();
        s.cluster_values
            .insert("sso".into(), obj(json!({"host": "sso.example"})));
        s.approvals
            .insert("gone".into(), ["1.0.0".to_owned()].into());
        s.approval_problems.push(
            "coxswain.dev/approve: `x` is not `<release>=<version>` (e.g. `wiki=3.0.0`)".into(),
        );
        let p = run(&idx, &s, &installed);
        assert!(p.is_noop());
        assert_eq!(
            p.notes,
            [
                "approval for `gone` names no release of channel `stable`; ignored",
                "coxswain.dev/approve: `x` is not `<release>=<version>` (e.g. `wiki=3.0.0`); nothing in it is approved",
            ]
        );
        let previews = approval_previews(&idx, &s, &installed, &p).unwrap();
        assert_eq!(previews.len(), 1);
        let a = &previews[0];
        assert_eq!(
            (a.release.as_str(), a.target.chart.version.as_str()),
            ("sso", "3.0.0")
        );
        assert_eq!(
            a.target.values["host"],
            json!("sso.example"),
            "the cluster's values merged"
        );
        assert!(
            matches!(&a.kind, ActionKind::Upgrade { from_version, .. } if from_version == "2.0.0")
        );
        // Nothing awaits: nothing to preview.
        assert!(
            approval_previews(&idx, &settings(), &[], &run(&idx, &settings(), &[]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn holds_stop_the_release_and_its_dependents_that_would_change() {
        let old = stack();
        let installed = all_deployed(&old);
        // Everything gets a new version; ingress is held.
        let idx = index(vec![
            rel("wiki", "0.4.0", &["sso"]),
            rel("files", "4.1.0", &["database", "sso"]),
            rel("sso", "2.1.0", &["ingress"]),
            rel("ingress", "1.3.0", &["certs"]),
            rel("certs", "1.1.0", &[]),
            rel("database", "15.1.0", &[]),
        ]);
        let mut s = settings();
        s.holds.insert("ingress".into());
        let p = run(&idx, &s, &installed);
        assert_eq!(layer_names(&p), vec![vec!["certs", "database"]]);
        let ingress = p.skipped("ingress").unwrap();
        assert_eq!(ingress.why, SkipReason::Held);
        assert!(ingress.held);
        assert_eq!(ingress.state(), ReleaseState::Held);
        let sso = p.skipped("sso").unwrap();
        assert_eq!(
            sso.reason(),
            "waits for dependency `ingress`, which is held"
        );
        assert_eq!(sso.state(), ReleaseState::Skipped);
        assert_eq!(sso.desired_version.as_deref(), Some("2.1.0"));
        assert_eq!(sso.installed_version.as_deref(), Some("2.0.0"));
        // Transitively: wiki and files wait on sso.
        assert_eq!(
            p.skipped("wiki").unwrap().reason(),
            "waits for dependency `sso`, which is skipped"
        );
        assert!(
            matches!(&p.skipped("files").unwrap().why, SkipReason::Dependency { dependency, .. } if dependency == "sso")
        );

        // A dependent that is already up to date stays up to date.
        let p = run(&old, &s, &installed);
        assert!(p.is_noop());
        assert_eq!(p.skipped("sso").unwrap().state(), ReleaseState::UpToDate);
        assert_eq!(p.skipped("ingress").unwrap().state(), ReleaseState::Held);
    }

    #[test]
    fn pins_select_current_or_previous_entries() {
        let sso = with_previous(
            rel("sso", "2.1.0", &[]),
            &[("2.0.0", None), ("1.9.0", None)],
        );
        let idx = index(vec![sso.clone(), rel("wiki", "0.3.1", &["sso"])]);
        let installed = vec![deployed(
            &sso.previous[1].clone().into_release(),
            &Map::new(),
        )];
        let mut s = settings();
        s.pins.insert("sso".into(), "2.0.0".into());
        let p = run(&idx, &s, &installed);
        let a = p.action("sso").unwrap();
        assert_eq!(a.target.chart.version, "2.0.0");
        assert_eq!(a.target.values["image"]["tag"], "2.0.0");
        assert!(a.pinned);
        assert_eq!(a.reason, "upgrading 1.9.0 -> 2.0.0 (pinned)");
        // Pinned to what is deployed: nothing to do, still reported as pinned.
        let installed = vec![deployed(
            &sso.previous[0].clone().into_release(),
            &Map::new(),
        )];
        let p = run(&idx, &s, &installed);
        let skipped = p.skipped("sso").unwrap();
        assert_eq!(skipped.state(), ReleaseState::UpToDate);
        assert!(skipped.pinned);
        // A pin to the current version is the same as no pin.
        s.pins.insert("sso".into(), "2.1.0".into());
        assert_eq!(
            run(&idx, &s, &installed)
                .action("sso")
                .unwrap()
                .target
                .chart
                .version,
            "2.1.0"
        );
        // Pinned below what is installed: a downgrade, allowed because the admin asked.
        s.pins.insert("sso".into(), "1.9.0".into());
        let p = run(&idx, &s, &installed);
        assert_eq!(
            p.action("sso").unwrap().reason,
            "downgrading 2.0.0 -> 1.9.0 (pinned)"
        );
    }

    #[test]
    fn a_pin_the_index_no_longer_offers_holds_and_reports() {
        let sso = with_previous(rel("sso", "2.1.0", &[]), &[("2.0.0", None)]);
        let idx = index(vec![sso, rel("wiki", "0.3.1", &["sso"])]);
        let mut s = settings();
        s.pins.insert("sso".into(), "1.0.0".into());
        let p = run(&idx, &s, &[]);
        let skipped = p.skipped("sso").unwrap();
        assert_eq!(
            skipped.reason(),
            "pinned version 1.0.0 is no longer offered (available: 2.1.0, 2.0.0)"
        );
        assert_eq!(skipped.state(), ReleaseState::Held);
        assert_eq!(skipped.desired_version.as_deref(), Some("1.0.0"));
        assert!(skipped.pinned && !skipped.held);
        assert_eq!(
            p.skipped("wiki").unwrap().reason(),
            "waits for dependency `sso`, which is held"
        );
        assert!(p.is_noop());
    }

    fn ladder() -> IndexRelease {
        // 3.0.0 upgrades from >=2.0.0; 2.5.0 from >=2.0.0; 2.0.0 from >=1.0.0.
        let mut r = with_previous(
            rel("files", "3.0.0", &[]),
            &[("2.5.0", Some(">=2.0.0")), ("2.0.0", Some(">=1.0.0"))],
        );
        r.upgrade_from = Some(">=2.0.0".into());
        r
    }

    fn installed_at(r: &IndexRelease, version: &str) -> InstalledRelease {
        let mut i = deployed(r, &Map::new());
        i.chart_version = version.into();
        i.fingerprint = Some(fingerprint(&chart(&r.name, version), &Map::new(), 6));
        i
    }

    #[test]
    fn upgrade_from_steps_through_an_intermediate_version() {
        let files = ladder();
        let idx = index(vec![files.clone()]);
        let p = run(&idx, &settings(), &[installed_at(&files, "1.4.0")]);
        let a = p.action("files").unwrap();
        assert_eq!(a.target.chart.version, "2.0.0");
        assert_eq!(a.step_toward.as_deref(), Some("3.0.0"));
        assert_eq!(
            a.reason,
            "upgrading 1.4.0 -> 2.0.0; installed 1.4.0 is outside upgradeFrom `>=2.0.0` of 3.0.0, so this run stops at 2.0.0 (one hop per reconcile)"
        );
        assert_eq!(
            a.fingerprint.chart_sha256,
            *chart("files", "2.0.0").digest.as_bytes()
        );
        // Next reconcile: 2.0.0 is inside the range, straight to 3.0.0.
        let p = run(&idx, &settings(), &[installed_at(&files, "2.0.0")]);
        let a = p.action("files").unwrap();
        assert_eq!(
            (a.target.chart.version.as_str(), a.step_toward.as_deref()),
            ("3.0.0", None)
        );
    }

    #[test]
    fn upgrade_from_without_a_path_blocks_and_says_what_is_missing() {
        let files = ladder();
        let idx = index(vec![files.clone(), rel("wiki", "1.0.0", &["files"])]);
        let p = run(&idx, &settings(), &[installed_at(&files, "0.9.0")]);
        let s = p.skipped("files").unwrap();
        assert_eq!(
            s.reason(),
            "installed 0.9.0 is outside upgradeFrom `>=2.0.0` of 3.0.0; needs an intermediate version: no path (none of 2.5.0, 2.0.0 upgrades from 0.9.0)"
        );
        assert_eq!(s.state(), ReleaseState::Blocked);
        assert_eq!(
            p.skipped("wiki").unwrap().reason(),
            "waits for dependency `files`, which is blocked"
        );
        // Nothing offered in between.
        let mut bare = rel("files", "3.0.0", &[]);
        bare.upgrade_from = Some(">=2.0.0".into());
        let p = run(
            &index(vec![bare.clone()]),
            &settings(),
            &[installed_at(&bare, "1.0.0")],
        );
        assert_eq!(
            p.skipped("files").unwrap().reason(),
            "installed 1.0.0 is outside upgradeFrom `>=2.0.0` of 3.0.0; needs an intermediate version: no path (the channel offers none between 1.0.0 and 3.0.0)"
        );
        // An installed version that is not semver cannot be checked.
        let p = run(
            &index(vec![bare.clone()]),
            &settings(),
            &[installed_at(&bare, "latest")],
        );
        assert!(matches!(
            p.skipped("files").unwrap().why,
            SkipReason::Blocked(Blocker::UnreadableVersion { .. })
        ));
        // Without upgradeFrom any installed version upgrades directly.
        let plain = rel("files", "3.0.0", &[]);
        let p = run(
            &index(vec![plain.clone()]),
            &settings(),
            &[installed_at(&plain, "0.1.0")],
        );
        assert_eq!(p.action("files").unwrap().target.chart.version, "3.0.0");
    }

    #[test]
    fn ownership_adopts_matching_charts_and_refuses_others() {
        let idx = index(vec![
            rel("sso", "2.0.0", &[]),
            rel("wiki", "0.3.1", &["sso"]),
        ]);
        let by_hand = InstalledRelease {
            name: "sso".into(),
            namespace: "sso".into(),
            chart_name: "sso".into(),
            chart_version: "1.8.0".into(),
            status: ReleaseStatus::Deployed,
            revision: 4,
            fingerprint: None,
            owner: None,
        };
        let p = run(&idx, &settings(), std::slice::from_ref(&by_hand));
        let a = p.action("sso").unwrap();
        assert_eq!(
            a.kind,
            ActionKind::Upgrade {
                from_version: "1.8.0".into(),
                from_revision: 4,
                adopt: true
            }
        );
        assert_eq!(
            a.reason,
            "adopting release installed outside coxswain (chart sso 1.8.0); upgrading to 2.0.0"
        );

        let foreign = InstalledRelease {
            chart_name: "keycloak".into(),
            ..by_hand.clone()
        };
        let p = run(&idx, &settings(), &[foreign]);
        let s = p.skipped("sso").unwrap();
        assert_eq!(s.state(), ReleaseState::Conflict);
        assert_eq!(
            s.reason(),
            "a release of the same name was installed outside coxswain with chart `keycloak`, not `sso`; left alone"
        );
        assert_eq!(
            p.skipped("wiki").unwrap().reason(),
            "waits for dependency `sso`, which is in conflict"
        );

        let theirs = InstalledRelease {
            owner: Some("other/subscription".into()),
            ..deployed(&idx.releases[0], &Map::new())
        };
        let p = run(&idx, &settings(), &[theirs]);
        assert_eq!(
            p.skipped("sso").unwrap().reason(),
            "installed by subscription other/subscription; left alone"
        );

        // Ours, but the deployed revision was changed by hand (no fingerprint).
        let touched = InstalledRelease {
            owner: Some(US.into()),
            ..by_hand
        };
        let p = run(&idx, &settings(), &[touched]);
        let a = p.action("sso").unwrap();
        assert_eq!(
            a.reason,
            "deployed revision 4 has no coxswain fingerprint (changed by hand?); upgrading to 2.0.0"
        );
        assert!(matches!(a.kind, ActionKind::Upgrade { adopt: false, .. }));
    }

    #[test]
    fn a_release_named_by_an_earlier_subscription_is_left_to_it() {
        let idx = stack();
        let mut s = settings();
        s.claimed_elsewhere.insert(
            ReleaseId::new("database", "database"),
            "coxswain/other".into(),
        );
        let p = run(&idx, &s, &[]);
        assert_eq!(
            p.skipped("database").unwrap().reason(),
            "also named by subscription coxswain/other, which came first; left to it"
        );
        assert_eq!(p.skipped("files").unwrap().state(), ReleaseState::Skipped);
        assert!(p.action("wiki").is_some());
        // Same name in another namespace is another release.
        let mut s = settings();
        s.claimed_elsewhere.insert(
            ReleaseId::new("elsewhere", "database"),
            "coxswain/other".into(),
        );
        assert!(run(&idx, &s, &[]).action("database").is_some());
    }

    #[test]
    fn releases_gone_from_the_index_are_reported_not_removed() {
        let idx = index(vec![rel("sso", "2.0.0", &[])]);
        let gone = rel("chat", "1.0.0", &[]);
        let mut ours = deployed(&gone, &Map::new());
        let mut unowned_fp = deployed(&rel("notes", "1.0.0", &[]), &Map::new());
        unowned_fp.owner = None;
        let mut other_channel = deployed(&rel("beta-only", "1.0.0", &[]), &Map::new());
        other_channel.owner = None;
        other_channel.fingerprint = Some(Fingerprint::new("beta", 1, [0; 32], [0; 32]).unwrap());
        let mut theirs = deployed(&rel("theirs", "1.0.0", &[]), &Map::new());
        theirs.owner = Some("x/y".into());
        let mut manual = deployed(&rel("manual", "1.0.0", &[]), &Map::new());
        manual.owner = None;
        manual.fingerprint = None;
        let mut moved = deployed(&idx.releases[0], &Map::new());
        moved.namespace = "old-namespace".into();
        ours.revision = 9;
        let p = run(
            &idx,
            &settings(),
            &[ours, unowned_fp, other_channel, theirs, manual, moved],
        );
        let orphans: Vec<(&str, &str)> = p
            .orphans
            .iter()
            .map(|o| (o.namespace.as_str(), o.release.as_str()))
            .collect();
        assert_eq!(
            orphans,
            [
                ("chat", "chat"),
                ("notes", "notes"),
                ("old-namespace", "sso")
            ]
        );
        assert_eq!(p.orphans[0].revision, 9);
        assert_eq!(
            p.orphans[0].reason,
            "no longer in channel `stable`; left installed (removing it needs an explicit tombstone entry)"
        );
        // The sso in its own namespace is not installed yet.
        assert_eq!(p.action("sso").unwrap().kind, ActionKind::Install);
    }

    #[test]
    fn helm_states_that_block_retry_or_reinstall() {
        let idx = index(vec![
            rel("sso", "2.0.0", &[]),
            rel("wiki", "0.3.1", &["sso"]),
        ]);
        let mut sso = deployed(&idx.releases[0], &Map::new());
        sso.status = ReleaseStatus::PendingUpgrade;
        let p = run(&idx, &settings(), &[sso.clone()]);
        let s = p.skipped("sso").unwrap();
        assert_eq!(s.state(), ReleaseState::Blocked);
        assert!(
            s.reason()
                .starts_with("helm reports pending-upgrade: another operation is in progress"),
            "{}",
            s.reason()
        );
        assert_eq!(
            p.skipped("wiki").unwrap().reason(),
            "waits for dependency `sso`, which is blocked"
        );

        sso.status = ReleaseStatus::Unknown;
        let p = run(&idx, &settings(), &[sso.clone()]);
        assert_eq!(
            p.skipped("sso").unwrap().reason(),
            "helm reports status unknown; left alone"
        );

        // A failed revision with the desired fingerprint is tried again.
        sso.status = ReleaseStatus::Failed;
        let p = run(&idx, &settings(), &[sso.clone()]);
        assert_eq!(
            p.action("sso").unwrap().reason,
            "revision 3 failed; upgrading to 2.0.0 again"
        );

        // Uninstalled with history kept counts as not installed.
        sso.status = ReleaseStatus::Uninstalled;
        let p = run(&idx, &settings(), &[sso]);
        assert_eq!(p.action("sso").unwrap().kind, ActionKind::Install);
    }

    #[test]
    fn the_fingerprint_ignores_channel_sequence_but_not_chart_or_values() {
        let idx = stack();
        let mut installed = all_deployed(&idx);
        for r in &mut installed {
            r.fingerprint.as_mut().unwrap().sequence = 1;
        }
        assert!(run(&idx, &settings(), &installed).is_noop());
        installed[0].fingerprint.as_mut().unwrap().values_sha256 = [1; 32];
        let p = run(&idx, &settings(), &installed);
        assert_eq!(layer_names(&p), vec![vec![installed[0].name.as_str()]]);
    }

    #[test]
    fn settings_for_unknown_releases_are_noted() {
        let idx = stack();
        let mut s = settings();
        s.pins.insert("chat".into(), "1.0.0".into());
        s.holds.insert("wikii".into());
        s.cluster_values.insert("nope".into(), Map::new());
        let p = run(&idx, &s, &[]);
        assert_eq!(
            p.notes,
            [
                "pin for `chat` names no release of channel `stable`; ignored",
                "hold for `wikii` names no release of channel `stable`; ignored",
                "values for `nope` names no release of channel `stable`; ignored",
            ]
        );
    }

    #[test]
    fn pinned_entries_with_bad_dependencies_block_instead_of_panicking() {
        // Current: b depends on a. b's previous entry depends on a release gone
        // from the channel; a's previous entry depends on b (a cycle once pinned).
        let mut a = rel("a", "2.0.0", &[]);
        let mut a_old = a.to_previous();
        a_old.chart = chart("a", "1.0.0");
        a_old.depends_on = vec!["b".into()];
        a.previous = vec![a_old];
        let mut b = rel("b", "2.0.0", &["a"]);
        let mut b_old = b.to_previous();
        b_old.chart = chart("b", "1.0.0");
        b_old.depends_on = vec!["gone".into()];
        b.previous = vec![b_old];
        let idx = index(vec![a, b, rel("c", "1.0.0", &["b"])]);

        let mut s = settings();
        s.pins.insert("b".into(), "1.0.0".into());
        let p = run(&idx, &s, &[]);
        assert_eq!(
            p.skipped("b").unwrap().reason(),
            "depends on `gone`, which is not in the channel"
        );
        assert_eq!(
            p.skipped("c").unwrap().reason(),
            "waits for dependency `b`, which is blocked"
        );
        assert!(p.action("a").is_some());

        let mut s = settings();
        s.pins.insert("a".into(), "1.0.0".into());
        let p = run(&idx, &s, &[]);
        assert!(p.is_noop());
        for name in ["a", "b", "c"] {
            assert_eq!(
                p.skipped(name).unwrap().reason(),
                "caught in or behind a dependency cycle (unresolved: a, b, c)",
                "{name}"
            );
        }
    }

    #[test]
    fn duplicates_and_bad_channels_do_not_panic() {
        let idx = index(vec![rel("a", "1.0.0", &[]), rel("a", "2.0.0", &[])]);
        let p = run(&idx, &settings(), &[]);
        assert_eq!(p.actions().count(), 1);
        assert_eq!(p.action("a").unwrap().target.chart.version, "1.0.0");
        assert_eq!(
            p.notes,
            ["release `a` is listed more than once in the index; only the first entry is used"]
        );
        let mut idx = stack();
        idx.channel = "has space".into();
        assert!(matches!(
            plan(&idx, &settings(), &[]),
            Err(PlanError::Fingerprint { .. })
        ));
    }

    #[test]
    fn debug_output_never_shows_values() {
        let idx = index(vec![rel("sso", "2.0.0", &[])]);
        let mut s = settings();
        s.cluster_values.insert(
            "sso".into(),
            obj(json!({"adminPassword": "hunter2-secret"})),
        );
        let p = run(&idx, &s, &[]);
        let text = format!("{p:?} {s:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("keys, sha256:"), "{text}");
    }

    /// xorshift64: deterministic randomness without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
    }

    fn random_case(rng: &mut Rng) -> (ChannelIndex, Settings, Vec<InstalledRelease>) {
        let n = 1 + rng.below(10) as usize;
        let names: Vec<String> = (0..n).map(|i| format!("r{i:02}")).collect();
        let mut releases = Vec::new();
        let mut s = settings();
        let mut installed = Vec::new();
        for (i, name) in names.iter().enumerate() {
            // Dependencies only on earlier names: the index itself is acyclic.
            let deps: Vec<&str> = names[..i]
                .iter()
                .filter(|_| rng.chance(30))
                .map(String::as_str)
                .collect();
            let major = 3 + rng.below(3);
            let mut r = with_previous(
                rel(name, &format!("{major}.0.0"), &deps),
                &[
                    (
                        &format!("{}.5.0", major - 1),
                        Some(&format!(">={}.0.0", major - 2)),
                    ),
                    (&format!("{}.0.0", major - 1), Some(">=0.0.0")),
                ],
            );
            if rng.chance(50) {
                r.upgrade_from = Some(format!(">={}.0.0", major - 1));
            }
            if rng.chance(15) {
                s.holds.insert(name.clone());
            }
            if rng.chance(15) {
                let v = [
                    "1.0.0",
                    &r.previous[0].chart.version.clone(),
                    &r.chart.version.clone(),
                ][rng.below(3) as usize]
                    .to_owned();
                s.pins.insert(name.clone(), v);
            }
            if rng.chance(20) {
                s.cluster_values
                    .insert(name.clone(), obj(json!({"cluster": rng.below(3)})));
            }
            if rng.chance(5) {
                s.claimed_elsewhere
                    .insert(ReleaseId::new(name, name), "x/other".into());
            }
            match rng.below(8) {
                0 => {}
                1 => installed.push(deployed(
                    &r,
                    s.cluster_values.get(name).unwrap_or(&Map::new()),
                )),
                2 => installed.push(installed_at(&r, &format!("{}.0.0", rng.below(major + 1)))),
                3 => {
                    let mut i = installed_at(&r, "0.1.0");
                    i.fingerprint = None;
                    i.owner = None;
                    if rng.chance(50) {
                        i.chart_name = "foreign".into();
                    }
                    installed.push(i);
                }
                4 => {
                    let mut i = deployed(&r, &Map::new());
                    i.status = [
                        ReleaseStatus::PendingInstall,
                        ReleaseStatus::Failed,
                        ReleaseStatus::Unknown,
                    ][rng.below(3) as usize];
                    installed.push(i);
                }
                5 => {
                    let mut i = deployed(&r, &Map::new());
                    i.owner = Some("x/other".into());
                    installed.push(i);
                }
                _ => installed.push(installed_at(&r, &format!("{}.0.0", major - 1))),
            }
            releases.push(r);
        }
        if rng.chance(30) {
            installed.push(deployed(&rel("gone", "1.0.0", &[]), &Map::new()));
        }
        (index(releases), s, installed)
    }

    fn check_invariants(idx: &ChannelIndex, p: &Plan) {
        // Every release of the index appears exactly once.
        let mut seen: Vec<&str> = p
            .actions()
            .map(|a| a.release.as_str())
            .chain(p.skipped.iter().map(|s| s.release.as_str()))
            .collect();
        seen.sort_unstable();
        let mut want: Vec<&str> = idx.releases.iter().map(|r| r.name.as_str()).collect();
        want.sort_unstable();
        assert_eq!(seen, want);
        // Dependencies are up to date or act in an earlier layer.
        let layer_of: BTreeMap<&str, usize> = p
            .layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.iter().map(move |a| (a.release.as_str(), i)))
            .collect();
        for (i, layer) in p.layers.iter().enumerate() {
            assert!(!layer.is_empty());
            assert!(layer.windows(2).all(|w| w[0].release < w[1].release));
            for a in layer {
                for dep in &a.target.depends_on {
                    match layer_of.get(dep.as_str()) {
                        Some(j) => assert!(
                            *j < i,
                            "{} (layer {i}) depends on {dep} (layer {j})",
                            a.release
                        ),
                        None => assert_eq!(
                            p.skipped(dep).map(Skipped::state),
                            Some(ReleaseState::UpToDate),
                            "{} depends on {dep}, which neither acts nor is up to date",
                            a.release
                        ),
                    }
                }
                assert_eq!(a.fingerprint.values_sha256, values_hash(&a.target.values));
                assert_eq!(
                    a.fingerprint.chart_sha256,
                    *a.target.chart.digest.as_bytes()
                );
                assert!(!a.reason.is_empty());
            }
        }
        for s in &p.skipped {
            assert!(!s.reason().is_empty());
            if let SkipReason::Dependency { dependency, state } = &s.why {
                let dep_state = p.skipped(dependency).map(Skipped::state);
                assert_eq!(
                    dep_state,
                    Some(*state),
                    "{} waits on {dependency}",
                    s.release
                );
                assert_ne!(*state, ReleaseState::UpToDate);
            }
        }
    }

    /// What the executor would leave behind after a successful run.
    fn apply(p: &Plan, installed: &mut Vec<InstalledRelease>) {
        for a in p.actions() {
            let revision = match &a.kind {
                ActionKind::Install => 1,
                ActionKind::Upgrade { from_revision, .. } => from_revision + 1,
            };
            installed.retain(|r| !(r.name == a.release && r.namespace == a.namespace));
            installed.push(InstalledRelease {
                name: a.release.clone(),
                namespace: a.namespace.clone(),
                chart_name: a.target.chart.name.clone(),
                chart_version: a.target.chart.version.clone(),
                status: ReleaseStatus::Deployed,
                revision,
                fingerprint: Some(a.fingerprint.clone()),
                owner: Some(US.into()),
            });
        }
    }

    #[test]
    fn random_plans_keep_the_invariants_and_converge() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // How often each outcome came up: the generator must reach them all.
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for case in 0..400 {
            let (idx, s, mut installed) = random_case(&mut rng);
            let first = run(&idx, &s, &installed);
            check_invariants(&idx, &first);
            for a in first.actions() {
                let kind = match (&a.kind, &a.step_toward) {
                    (ActionKind::Install, _) => "install",
                    (ActionKind::Upgrade { adopt: true, .. }, _) => "adopt",
                    (ActionKind::Upgrade { .. }, Some(_)) => "step",
                    (ActionKind::Upgrade { .. }, None) => "upgrade",
                };
                *seen.entry(kind.into()).or_default() += 1;
            }
            for sk in &first.skipped {
                let kind = format!("{:?}", sk.why);
                let kind = kind.split([' ', '(', '{']).next().unwrap_or_default();
                *seen.entry(kind.into()).or_default() += 1;
            }
            if !first.orphans.is_empty() {
                *seen.entry("orphan".into()).or_default() += 1;
            }
            // Deterministic, and independent of the order helm lists releases in.
            let mut reversed = installed.clone();
            reversed.reverse();
            assert_eq!(run(&idx, &s, &reversed), first, "case {case}");
            // Applying plans reaches a fixed point: at most one step hop plus
            // one run per dependency layer.
            let mut p = first;
            let mut rounds = 0;
            while !p.is_noop() {
                apply(&p, &mut installed);
                p = run(&idx, &s, &installed);
                check_invariants(&idx, &p);
                rounds += 1;
                assert!(
                    rounds <= 4,
                    "case {case} does not converge: {:?}",
                    layer_names(&p)
                );
            }
        }
        for kind in [
            "install",
            "adopt",
            "step",
            "upgrade",
            "Unchanged",
            "Held",
            "PinUnavailable",
            "Blocked",
            "Conflict",
            "Dependency",
            "orphan",
        ] {
            assert!(
                seen.get(kind).copied().unwrap_or(0) >= 5,
                "{kind} too rare: {seen:?}"
            );
        }
    }

    impl PreviousRelease {
        /// A previous entry as a current one (test fixtures only).
        fn into_release(self) -> IndexRelease {
            IndexRelease {
                name: self.name,
                namespace: self.namespace,
                chart: self.chart,
                values: self.values,
                depends_on: self.depends_on,
                health: self.health,
                upgrade_from: self.upgrade_from,
                crds: self.crds,
                backup: self.backup,
                requires_approval: false,
                previous: vec![],
                urgency: None,
                since: None,
            }
        }
    }

    fn rollout_settings(now: &str, ring: Ring, maintenance: Option<Maintenance>) -> Settings {
        Settings {
            rollout: Some(RolloutSettings {
                now: now.parse().unwrap(),
                position: 9_999,
                ring,
                maintenance,
                default_health_timeout: Duration::from_mins(5),
            }),
            ..settings()
        }
    }

    fn waves() -> crate::rollout::Rollout {
        serde_json::from_value(json!({"waves": [
            {"percent": 5, "after": "0s"}, {"percent": 100, "after": "24h"}
        ]}))
        .unwrap()
    }

    #[test]
    fn a_late_wave_waits_with_its_reason_and_its_dependents_wait_too() {
        // certs and its dependent ingress; published 2026-11-26T03:00Z, wave 2 after 24h.
        let mut idx = index(vec![
            rel("ingress", "1.2.0", &["certs"]),
            rel("certs", "1.0.0", &[]),
        ]);
        idx.rollout = Some(waves());
        let p = run(
            &idx,
            &rollout_settings("2026-11-26T12:00:00Z", Ring::Default, None),
            &[],
        );
        assert!(p.layers.is_empty(), "{p:?}");
        let certs = p.skipped.iter().find(|s| s.release == "certs").unwrap();
        assert_eq!(certs.state(), ReleaseState::Waiting);
        assert_eq!(
            certs.reason(),
            "waits for rollout wave 2 of 2 (100 % of the fleet), which opens at 2026-11-27T03:00:00Z"
        );
        let ingress = p.skipped.iter().find(|s| s.release == "ingress").unwrap();
        assert_eq!(
            ingress.why,
            SkipReason::Dependency {
                dependency: "certs".into(),
                state: ReleaseState::Waiting
            }
        );
        assert_eq!(p.wake, Some("2026-11-27T03:00:00Z".parse().unwrap()));
        // The canary goes at once, and carries the gate for the executor's re-check.
        let p = run(
            &idx,
            &rollout_settings("2026-11-26T12:00:00Z", Ring::Canary, None),
            &[],
        );
        assert_eq!(p.actions().count(), 2);
        let gate = p.action("certs").unwrap().start_gate.clone().unwrap();
        assert_eq!(
            gate.needs,
            Duration::from_secs(630),
            "5m helm + 30s grace + 5m health"
        );
        assert_eq!(
            gate.check("2026-11-26T12:00:00Z".parse().unwrap()),
            Gate::Go
        );
        assert_eq!(p.wake, None);
        // The entry's own start counts, not the index's publication.
        idx.releases[1].since = Some("2026-11-20T00:00:00Z".parse().unwrap());
        idx.published = "2026-11-26T03:00:00Z".parse().unwrap();
        let p = run(
            &idx,
            &rollout_settings("2026-11-26T12:00:00Z", Ring::Late, None),
            &[],
        );
        assert!(
            p.action("certs").is_some(),
            "certs' wave opened on 2026-11-21"
        );
    }

    #[test]
    fn a_paused_rollout_holds_and_a_pin_is_not_held_by_waves() {
        let mut idx = index(vec![with_previous(
            rel("certs", "1.1.0", &[]),
            &[("1.0.0", None)],
        )]);
        let mut paused = waves();
        paused.paused = true;
        idx.rollout = Some(paused);
        let s = rollout_settings("2026-11-30T12:00:00Z", Ring::Canary, None);
        let p = run(&idx, &s, &[]);
        assert_eq!(p.skipped[0].state(), ReleaseState::Waiting);
        assert!(
            p.skipped[0].reason().contains("paused"),
            "{}",
            p.skipped[0].reason()
        );
        let mut pinned = s.clone();
        pinned.pins.insert("certs".into(), "1.0.0".into());
        let p = run(&idx, &pinned, &[]);
        assert!(p.action("certs").is_some(), "{p:?}");
    }

    #[test]
    fn outside_the_window_an_upgrade_waits_and_a_security_entry_may_pass() {
        let maintenance: Maintenance = serde_json::from_value(json!({
            "windows": [{"days": ["Sat"], "start": "02:00", "duration": "4h", "timeZone": "Europe/Berlin"}]
        }))
        .unwrap();
        let mut idx = index(vec![rel("certs", "1.1.0", &[])]);
        let installed = vec![installed_at(&idx.releases[0], "1.0.0")];
        // Thursday 2026-11-26 12:00 UTC: the next window is Saturday 02:00 CET = 01:00 UTC.
        let s = rollout_settings(
            "2026-11-26T12:00:00Z",
            Ring::Default,
            Some(maintenance.clone()),
        );
        let p = run(&idx, &s, &installed);
        assert_eq!(
            p.skipped[0].reason(),
            "outside the maintenance windows; the next window that fits opens at 2026-11-28T01:00:00Z"
        );
        assert_eq!(p.wake, Some("2026-11-28T01:00:00Z".parse().unwrap()));
        idx.releases[0].urgency = Some(Urgency::Security);
        assert!(run(&idx, &s, &installed).skipped[0].state() == ReleaseState::Waiting);
        let mut allowed = maintenance;
        allowed.allow_security_updates = true;
        let s = rollout_settings("2026-11-26T12:00:00Z", Ring::Default, Some(allowed));
        assert!(run(&idx, &s, &installed).action("certs").is_some());
    }
}
