//! The `ChannelSubscription` custom resource: what a cluster admin writes to
//! subscribe a namespace to a channel, and what the agent reports back.
//!
//! The CRD YAML in `charts/coxswain/crds/` is generated from these types by
//! `cargo xtask crd` (never hand-written); `tests/crd.rs` fails when the two
//! drift apart. Doc comments on fields become `kubectl explain` text, so they
//! are written for cluster admins.
//!
//! The status helpers here are pure (no I/O): the agent loads the status, calls
//! them, and writes the result back.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::format::Timestamp;

/// The API group of coxswain's custom resources.
pub const GROUP: &str = "coxswain.dev";

/// The annotation an admin sets (to any new value, e.g. the current time) to
/// retry a failed sequence once without waiting for a newer one.
pub const RETRY_ANNOTATION: &str = "coxswain.dev/retry";

/// The annotation an admin sets to have the agent restore a release's backup
/// (docs/backup.md): `<release>` (its newest completed backup) or
/// `<release>/<backup>`; acted on once per value, like the retry annotation.
pub const RESTORE_ANNOTATION: &str = "coxswain.dev/restore";

/// The annotation an admin sets to approve release versions that the channel
/// marks as requiring approval (docs/rollouts.md): `<release>=<version>`,
/// comma-separated, e.g. `wiki=3.0.0,chat=2.0.0`; read together with
/// `spec.approvals`.
pub const APPROVE_ANNOTATION: &str = "coxswain.dev/approve";

/// Longest `coxswain.dev/approve` value read (bytes).
pub const MAX_APPROVE_ANNOTATION: usize = 4096;

/// Most approvals read from `spec.approvals` and the annotation together.
pub const MAX_APPROVALS: usize = 256;

/// How many operations `status.history` keeps (the oldest are dropped first).
pub const MAX_HISTORY: usize = 50;

/// How many (server, channel) pairs `status.accepted` remembers; the pair
/// accepted longest ago is forgotten first, never the current one.
pub const MAX_ACCEPTED: usize = 16;

/// Default polling interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_mins(5);

/// Default health timeout for releases whose index entry does not set one.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_mins(5);

/// Default number of releases upgraded at the same time (each when its own
/// dependencies are done).
///
/// Four: upgrading a 20-release stack (5 chains of 4) on the 2-CPU loopback
/// cluster took 18.0 s one at a time, 19.1 s with 2, 15.0 s with 4 and
/// 16.4 s with 8 once health checks were woken by watches (before: 54.4 s,
/// 31.6 s, 24.1 s, 18.2 s; docs/performance.md): four is the fastest there,
/// while each helm 4 child peaks at about 75 MiB (four: about 300 MiB of the
/// chart's 512 MiB limit, eight would pass it) and each upgrade loads the API
/// server. The dependency order holds at any setting.
pub const DEFAULT_CONCURRENCY: u16 = 4;

/// Upper bound for `spec.concurrency` (helm children are the agent's memory peak).
pub const MAX_CONCURRENCY: u16 = 16;

/// Subscribes this namespace to a release channel on an update site. The agent
/// polls the channel's signed index, verifies it against the trust root, and
/// keeps the channel's Helm releases installed and up to date in dependency
/// order, rolling back upgrades that fail their health checks.
// Each printcolumn(...) repeats the same keys; clippy reads them as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "coxswain.dev",
    version = "v1alpha1",
    kind = "ChannelSubscription",
    plural = "channelsubscriptions",
    singular = "channelsubscription",
    shortname = "csub",
    category = "coxswain",
    namespaced,
    status = "ChannelSubscriptionStatus",
    derive = "PartialEq",
    doc = "Subscribes a namespace to a signed release channel: the coxswain agent keeps the channel's Helm releases installed, upgraded in dependency order, health-checked and rolled back on failure.",
    printcolumn(
        name = "Channel",
        type_ = "string",
        json_path = ".spec.channel",
        description = "The subscribed channel"
    ),
    printcolumn(
        name = "Sequence",
        type_ = "integer",
        json_path = ".status.acceptedSequence",
        description = "Highest accepted index sequence of the channel"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Every release is at its desired state"
    ),
    printcolumn(
        name = "UpToDate",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"UpToDate\")].status",
        description = "Every release runs what the channel offers (pins and holds aside)"
    ),
    printcolumn(
        name = "Failed",
        type_ = "integer",
        json_path = ".status.failedSequence.sequence",
        description = "Sequence that failed and waits for a newer one or the retry annotation"
    ),
    printcolumn(
        name = "Last Check",
        type_ = "date",
        json_path = ".status.lastCheck.time",
        description = "When the channel was last checked"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ChannelSubscriptionSpec {
    /// Base URL of the update site, e.g. `https://updates.example.org/stack`. The
    /// agent reads `{server}/channels/{channel}/index.json` and its signature, and
    /// rotated trust roots under `{server}/trust/`. Plain `http` is allowed:
    /// everything fetched is signed or pinned by digest.
    #[schemars(regex(pattern = r"^https?://[^\s]+$"), length(max = 2048))]
    pub server: String,

    /// Channel name, e.g. `stable` or `beta`. The signed index must name the same
    /// channel. Switching to another channel starts that channel's own sequence
    /// count; switching back remembers the old one.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub channel: String,

    /// Where the initial trust root (the anchor, a JSON document) is stored. Only
    /// its first use matters: afterwards the agent follows signed rotations from
    /// the update site and never goes back to an older root.
    pub trust_ref: KeyRef,

    /// How often the channel is checked, as `90s`, `5m`, `2h` or `1d`. A random
    /// jitter of up to a tenth is added so clusters do not poll in lockstep.
    #[serde(default = "default_interval")]
    pub interval: Duration,

    /// Stop checking and changing anything (the status is kept). A suspended
    /// subscription counts as done for `coxswain agent --once`.
    #[serde(default)]
    pub suspend: bool,

    /// Release name to chart version: keep the release on this version while the
    /// channel moves on. The version must be the index's current version for
    /// that release or one of its `previous` entries; a pin to a version the
    /// index no longer offers holds the release and says so.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pins: BTreeMap<String, String>,

    /// Releases the agent never installs, upgrades or rolls back. Releases that
    /// depend on a held release are not upgraded either.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub holds: Vec<String>,

    /// Release name to this cluster's values for it (domains, e-mail addresses,
    /// storage classes), merged over the channel's values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, ReleaseValues>,

    /// How many releases are upgraded at the same time (1 to 16); each starts
    /// as soon as its own dependencies finished.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 16))]
    pub concurrency: u16,

    /// How long a release's workloads may take to become ready after an upgrade
    /// when the channel's index does not set a timeout for that release.
    #[serde(default = "default_health_timeout")]
    pub health_timeout: Duration,

    /// What is rolled back when a release fails its health check: `release` (only
    /// that release) or `channel` (also every release this run already upgraded,
    /// in reverse order, so the cluster returns to the previous consistent set).
    #[serde(default)]
    pub rollback_policy: RollbackPolicy,

    /// This cluster has no load balancer implementation (bare metal without
    /// MetalLB, a single-node cluster): a `LoadBalancer` Service without an
    /// address counts as ready for every release, as if the index set
    /// `health.acceptPendingLoadBalancer` for each.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_pending_load_balancer: bool,

    /// Release name to this cluster's choice about the Velero backup taken
    /// before the release is upgraded: `require` one the channel does not ask
    /// for, `waive` the one it asks for (the upgrade then runs unprotected, as
    /// it must in a cluster without Velero), or change its `ttl` or
    /// `includeVolumes`. See docs/backup.md.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backups: BTreeMap<String, BackupOverride>,

    /// Where Velero runs in this cluster and how long a backup may take.
    #[serde(default, skip_serializing_if = "VeleroSettings::is_default")]
    pub velero: VeleroSettings,

    /// When the agent may start installs and upgrades: weekly `windows` (days,
    /// `start` as HH:MM, `duration`, IANA `timeZone`), dated `exclusions` (freezes
    /// with a reason), and `allowSecurityUpdates` (entries the channel marks
    /// `urgency: security` start outside the windows, never in an exclusion). An
    /// upgrade starts only when its helm and health timeouts end before the window
    /// closes. Checking, verifying, repairs of stuck releases and rollbacks happen
    /// at any time. Unset: at any time. See docs/rollouts.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<crate::rollout::Maintenance>,

    /// This cluster's place in the channel's staged rollout: `canary` (the first
    /// wave), `early` (the second), `late` (the last), or `default` (the wave a
    /// stable hash of the cluster's identity, the kube-system namespace UID, and
    /// the channel falls in). Unset: `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring: Option<crate::rollout::Ring>,
    /// Release versions an administrator approved: the channel may mark an
    /// entry (usually a major-version upgrade) as requiring approval, and the
    /// agent then waits in state `awaitingApproval` until that exact release and
    /// version is listed here or in the `coxswain.dev/approve` annotation. An
    /// approval of an older version does not approve a newer one. See what an
    /// upgrade changes first with `coxswain diff` or the web UI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub approvals: Vec<ApprovalGrant>,
}

/// One approved release version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalGrant {
    /// The release name, as the channel lists it.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 53)
    )]
    pub release: String,
    /// The chart version approved, e.g. `3.0.0`.
    #[schemars(length(min = 1, max = 128))]
    pub version: String,
}

/// Why an approval could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// The annotation is longer than [`MAX_APPROVE_ANNOTATION`].
    #[error("{APPROVE_ANNOTATION}: {len} bytes, more than the {MAX_APPROVE_ANNOTATION} allowed")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// More than [`MAX_APPROVALS`] approvals.
    #[error("{origin}: {count} approvals, more than the {MAX_APPROVALS} allowed")]
    TooMany {
        /// Where they came from.
        origin: String,
        /// How many.
        count: usize,
    },
    /// An annotation entry is not `<release>=<version>`.
    #[error("{APPROVE_ANNOTATION}: `{entry}` is not `<release>=<version>` (e.g. `wiki=3.0.0`)")]
    NotAPair {
        /// The entry, cut to 200 characters.
        entry: String,
    },
    /// The release is not a release name.
    #[error(
        "{origin}: `{release}` is not a release name (lowercase letters, digits and `-`, at most 53)"
    )]
    BadRelease {
        /// Where it came from.
        origin: String,
        /// The name, cut to 200 characters.
        release: String,
    },
    /// The version is not a chart version.
    #[error("{origin}: version `{version}` of `{release}` is not a chart version: {reason}")]
    BadVersion {
        /// Where it came from.
        origin: String,
        /// The release.
        release: String,
        /// The version, cut to 200 characters.
        version: String,
        /// Why.
        reason: String,
    },
}

/// Checks one approval: a release name and a chart version as Helm reads it.
fn check_grant(origin: &str, release: &str, version: &str) -> Result<(), ApprovalError> {
    use crate::bounded::bounded;
    let name_ok = !release.is_empty()
        && release.len() <= 53
        && release
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !release.starts_with('-')
        && !release.ends_with('-');
    if !name_ok {
        return Err(ApprovalError::BadRelease {
            origin: origin.to_owned(),
            release: bounded(release, 200),
        });
    }
    crate::format::ChartVersion::parse(version).map_err(|e| ApprovalError::BadVersion {
        origin: origin.to_owned(),
        release: release.to_owned(),
        version: bounded(version, 200),
        reason: e.to_string(),
    })?;
    Ok(())
}

/// Reads a `coxswain.dev/approve` value: `<release>=<version>` entries separated
/// by commas (blanks around them ignored, an empty value approves nothing).
/// One bad entry refuses the whole value: nothing in it is approved.
pub fn parse_approve_annotation(value: &str) -> Result<Vec<ApprovalGrant>, ApprovalError> {
    if value.len() > MAX_APPROVE_ANNOTATION {
        return Err(ApprovalError::TooLong { len: value.len() });
    }
    let entries: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.len() > MAX_APPROVALS {
        return Err(ApprovalError::TooMany {
            origin: APPROVE_ANNOTATION.to_owned(),
            count: entries.len(),
        });
    }
    entries
        .into_iter()
        .map(|entry| {
            let Some((release, version)) = entry.split_once('=') else {
                return Err(ApprovalError::NotAPair {
                    entry: crate::bounded::bounded(entry, 200),
                });
            };
            let (release, version) = (release.trim(), version.trim());
            check_grant(APPROVE_ANNOTATION, release, version)?;
            Ok(ApprovalGrant {
                release: release.to_owned(),
                version: version.to_owned(),
            })
        })
        .collect()
}

/// Default namespace of the Velero server and its `Backup` objects.
pub const DEFAULT_VELERO_NAMESPACE: &str = "velero";

/// Default time a backup may take before the upgrade it protects is given up.
pub const DEFAULT_BACKUP_TIMEOUT: Duration = Duration::from_mins(10);

/// This cluster's choice about one release's backup before an upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupOverride {
    /// `require`: back up before every upgrade even when the channel does not
    /// ask; `waive`: never back up this release (upgrade unprotected); unset:
    /// as the channel says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<BackupMode>,
    /// How long Velero keeps the backup, e.g. `168h` or `7d` (at most 3650d),
    /// instead of the channel's TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Snapshot the release's persistent volumes too (or not), instead of
    /// what the channel says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_volumes: Option<bool>,
}

/// Whether this cluster takes a release's backup whatever the channel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BackupMode {
    /// Back up before every upgrade, even when the channel does not ask.
    Require,
    /// Never back up; upgrade without Velero.
    Waive,
}

/// Where Velero runs and how long a backup may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VeleroSettings {
    /// The namespace of the Velero server, where the agent creates `Backup`
    /// and `Restore` objects.
    #[serde(default = "default_velero_namespace")]
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub namespace: String,
    /// How long a backup may take to complete; past it, the upgrade it
    /// protects does not start.
    #[serde(default = "default_backup_timeout")]
    pub timeout: Duration,
}

impl Default for VeleroSettings {
    fn default() -> Self {
        Self {
            namespace: default_velero_namespace(),
            timeout: DEFAULT_BACKUP_TIMEOUT,
        }
    }
}

impl VeleroSettings {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn default_velero_namespace() -> String {
    DEFAULT_VELERO_NAMESPACE.to_owned()
}

fn default_backup_timeout() -> Duration {
    DEFAULT_BACKUP_TIMEOUT
}

fn default_interval() -> Duration {
    DEFAULT_INTERVAL
}

fn default_health_timeout() -> Duration {
    DEFAULT_HEALTH_TIMEOUT
}

fn default_concurrency() -> u16 {
    DEFAULT_CONCURRENCY
}

/// A key of a ConfigMap or Secret in the subscription's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRef {
    /// `ConfigMap` or `Secret`.
    pub kind: KeyRefKind,
    /// Name of the ConfigMap or Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key inside its `data`.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The kind of object a [`KeyRef`] points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum KeyRefKind {
    /// A ConfigMap (for data that is not secret, such as a trust root).
    ConfigMap,
    /// A Secret (for values holding passwords or tokens).
    Secret,
}

/// This cluster's values for one release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseValues {
    /// Keys holding YAML values documents, merged over the channel's values in
    /// this order (later ones win). Maps merge key by key; lists, scalars and
    /// `null` replace what they override (helm then treats `null` as removing
    /// the chart's default for that key).
    #[serde(default)]
    pub values_from: Vec<KeyRef>,
}

/// What a failed health check rolls back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum RollbackPolicy {
    /// Only the release that failed.
    #[default]
    Release,
    /// The failed release and every release this run upgraded before it.
    Channel,
}

/// What the agent observed and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChannelSubscriptionStatus {
    /// The `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Highest index sequence accepted for the current server and channel (a
    /// copy of the matching `accepted` entry, for `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_sequence: Option<u64>,

    /// Version of the newest trust root accepted for the current server and
    /// channel (a copy of the matching `accepted` entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_root_version: Option<u64>,

    /// The highest sequence and trust root accepted per server and channel. The
    /// agent never accepts a lower sequence or an older root for a pair again,
    /// also after restarts and after switching channels back and forth.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<AcceptedState>,

    /// A sequence that failed (an upgrade was rolled back or could not be
    /// applied). It is not retried until a newer sequence is published or the
    /// `coxswain.dev/retry` annotation is set to a new value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_sequence: Option<FailedSequence>,

    /// The sequences the channel's maintainers withdrew, with their reasons, as the
    /// newest index lists them (the newest 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdrawn: Vec<crate::format::Withdrawn>,

    /// The value of the `coxswain.dev/retry` annotation the agent last acted on;
    /// setting the annotation to any other value retries once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_retry: Option<String>,

    /// The value of the `coxswain.dev/restore` annotation the agent last acted
    /// on; another value restores once more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_restore: Option<String>,

    /// The last check of the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<LastCheck>,

    /// When the first release the rollout gate holds (its wave has not opened, or
    /// the maintenance windows keep it) may start; the agent checks again then.
    /// Unset when no release waits for a time (nothing waits, or the rollout is
    /// paused: a pause has no end). See docs/rollouts.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_start: Option<Timestamp>,

    /// Every release of the channel and where it stands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<ReleaseStatus>,

    /// `Ready`, `UpToDate`, `Verified` and `Degraded`, each with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The most recent operations, oldest first (at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Operation>,

    /// Write-ahead intents: what the agent is about to do or is doing to a
    /// release, written before every helm call that changes one and removed
    /// once the call and its health check ended. An agent that was killed
    /// finds here what it interrupted and repairs it on start-up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight: Vec<Intent>,
}

/// An operation the agent started on a release and has not finished (see
/// `status.inFlight`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    /// The release.
    pub release: String,
    /// Its namespace.
    pub namespace: String,
    /// What is being done: install, upgrade, rollback or uninstall.
    pub operation: OperationKind,
    /// The helm revision before the operation (where a failed or interrupted
    /// upgrade returns); absent for a first install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_revision: Option<u32>,
    /// For a rollback, the revision it returns to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_revision: Option<u32>,
    /// The revision description (fingerprint) an install or upgrade writes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
    /// The index sequence the operation belongs to.
    pub sequence: u64,
    /// When it started.
    pub started: Timestamp,
    /// Who started it (the agent's identity: pod name, or host and pid).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub holder: String,
    /// For a rollback or uninstall: the failure that called for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// The highest accepted state of one channel on one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedState {
    /// The update site's base URL (without a trailing `/`).
    pub server: String,
    /// The channel.
    pub channel: String,
    /// Highest index sequence accepted; a lower one is refused.
    pub sequence: u64,
    /// Newest trust root version accepted; an older root is refused.
    pub trust_root_version: u64,
    /// When this pair last accepted an index.
    pub at: Timestamp,
}

/// A sequence that is not retried on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedSequence {
    /// The update site it came from.
    pub server: String,
    /// Its channel.
    pub channel: String,
    /// The failed sequence number.
    pub sequence: u64,
    /// Why it failed, naming the release and the object or check.
    pub reason: String,
    /// When it failed.
    pub at: Timestamp,
}

/// When the channel was last checked, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastCheck {
    /// When the check finished.
    pub time: Timestamp,
    /// The outcome.
    pub result: CheckResult,
    /// Details for people: what changed, or what went wrong and where.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The outcome of one check of the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CheckResult {
    /// Nothing to do: every release was already at its desired state.
    UpToDate,
    /// Releases were installed or upgraded and passed their health checks.
    Applied,
    /// At least one release failed and was rolled back (or uninstalled).
    RolledBack,
    /// At least one release is blocked, held back, failed or in conflict.
    Degraded,
    /// The index or a trust root failed verification; nothing was changed.
    VerificationFailed,
    /// The update site could not be reached; nothing was changed.
    Unreachable,
    /// Another error (named in the message); nothing more was changed.
    Error,
    /// The subscription is suspended; nothing was checked.
    Suspended,
}

/// Where one release stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseStatus {
    /// The Helm release name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The chart version installed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The chart version the channel (or a pin) asks for, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_version: Option<String>,
    /// The Helm revision deployed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    /// The release's state.
    pub state: ReleaseState,
    /// Why it is in this state, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Since when it has been in this state.
    pub since: Timestamp,
    /// A pin keeps it on its version.
    #[serde(default)]
    pub pinned: bool,
    /// A hold keeps the agent away from it.
    #[serde(default)]
    pub held: bool,
}

/// The state of one release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ReleaseState {
    /// At its desired version and values.
    UpToDate,
    /// Being installed.
    Installing,
    /// Being upgraded.
    Upgrading,
    /// Being rolled back after a failed health check.
    RollingBack,
    /// Rolled back to its previous revision after a failed upgrade.
    RolledBack,
    /// Failed, and could not be rolled back (see the message).
    Failed,
    /// Left alone because of a hold, or a pin the index no longer offers.
    Held,
    /// Cannot be upgraded now: no upgrade path, or a stuck Helm operation.
    Blocked,
    /// Not touched in this run because a dependency was not ready.
    Skipped,
    /// Installed by someone else with another chart, or claimed by another subscription.
    Conflict,
    /// Installed by coxswain but no longer in the channel; left installed.
    Orphaned,
    /// Would be installed or upgraded, but waits for its rollout wave, a paused
    /// rollout to resume, or a maintenance window (see the message).
    Waiting,
    /// The channel marks the new version as requiring approval, and no
    /// administrator approved it yet (`spec.approvals` or the
    /// `coxswain.dev/approve` annotation).
    AwaitingApproval,
}

/// Whether a condition holds (the metav1 `Condition` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// It holds.
    True,
    /// It does not hold.
    False,
    /// Not known yet.
    Unknown,
}

/// A condition in the standard Kubernetes (`metav1.Condition`) shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `UpToDate`, `Verified` or `Degraded`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 316))]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// The `metadata.generation` the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed.
    pub last_transition_time: Timestamp,
    /// A CamelCase word for programs and alerts, e.g. `RolledBack`.
    #[schemars(
        regex(pattern = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"),
        length(min = 1, max = 1024)
    )]
    pub reason: String,
    /// Details for people.
    #[schemars(length(max = 32768))]
    pub message: String,
}

/// Condition types and the reasons the agent gives them.
pub mod condition {
    /// Every release is at its desired state and nothing waits.
    pub const READY: &str = "Ready";
    /// Every release runs what the channel offers (pins and holds aside).
    pub const UP_TO_DATE: &str = "UpToDate";
    /// The last index and trust root passed verification.
    pub const VERIFIED: &str = "Verified";
    /// Something is rolled back, blocked, failed or in conflict.
    pub const DEGRADED: &str = "Degraded";

    /// Reason: a reconcile finished with every release at its desired state.
    pub const REASON_RECONCILED: &str = "Reconciled";
    /// Reason: releases are being installed or upgraded.
    pub const REASON_PROGRESSING: &str = "Progressing";
    /// Reason: the subscription is suspended.
    pub const REASON_SUSPENDED: &str = "Suspended";
    /// Reason: the index and its signatures verified.
    pub const REASON_VERIFIED: &str = "Verified";
    /// Reason: signatures, expiry, channel, sequence or trust root were refused.
    pub const REASON_VERIFICATION_FAILED: &str = "VerificationFailed";
    /// Reason: the update site could not be reached.
    pub const REASON_UNREACHABLE: &str = "Unreachable";
    /// Reason: an upgrade failed its health check and was rolled back.
    pub const REASON_ROLLED_BACK: &str = "RolledBack";
    /// Reason: an operation failed and could not be undone.
    pub const REASON_FAILED: &str = "Failed";
    /// Reason: a release waits for an upgrade path, a pin or a stuck operation.
    pub const REASON_BLOCKED: &str = "Blocked";
    /// Reason: a release belongs to someone else.
    pub const REASON_CONFLICT: &str = "Conflict";
    /// Reason: a failed sequence waits for a newer one or the retry annotation.
    pub const REASON_WAITING_FOR_NEWER: &str = "WaitingForNewerSequence";
    /// Reason: nothing is wrong.
    pub const REASON_HEALTHY: &str = "Healthy";
    /// Reason: the agent has not finished a check yet.
    pub const REASON_PENDING: &str = "Pending";
}

/// One operation on one release, for `status.history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// The release.
    pub release: String,
    /// Its namespace.
    pub namespace: String,
    /// What was done.
    pub operation: OperationKind,
    /// Chart version before, if it was installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Chart version after (or aimed at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The index sequence the operation came from.
    pub sequence: u64,
    /// When it started.
    pub started: Timestamp,
    /// How long it took, including health checks.
    pub duration: Duration,
    /// How it ended.
    pub result: OperationResult,
    /// Details for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The Helm revision before the operation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_revision: Option<u32>,
    /// The Helm revision the operation produced, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_revision: Option<u32>,
    /// The health check that followed the operation, if one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSummary>,
}

/// How many unready objects a [`HealthSummary`] names.
pub const MAX_HEALTH_REASONS: usize = 3;

/// The health check after an operation, in brief (the agent's web UI shows
/// every object while the agent runs; the status keeps this much).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthSummary {
    /// Whether every object became ready.
    pub healthy: bool,
    /// How long the check took.
    pub duration: Duration,
    /// How many objects were checked.
    pub objects: u32,
    /// Why objects were not ready, at most three.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<String>,
}

/// The kind of an operation on a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    /// First installation.
    Install,
    /// Upgrade to another chart version or other values.
    Upgrade,
    /// Rollback to the revision noted before an upgrade.
    Rollback,
    /// Removal of a failed first installation.
    Uninstall,
    /// Deliberately not touched (held, blocked, dependency not ready).
    Skip,
    /// A release left `pending-*` by a killed helm or agent was unlocked
    /// (its stuck revision marked failed) and returned to a known revision.
    Repair,
    /// A Velero backup of the release's namespace before its upgrade; the
    /// message names the backup.
    Backup,
    /// The backup taken before a failed upgrade restored over the release's
    /// namespace, because the rollback alone left it unhealthy (the channel's
    /// `backup.autoRestore`).
    Restore,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OperationResult {
    /// It did what it set out to do (for `skip`: the release was left alone).
    Succeeded,
    /// It failed; the message says why.
    Failed,
}

/// The key `status.accepted` uses for a server: the URL without trailing `/`,
/// so `https://x/` and `https://x` share their anti-rollback state.
pub fn server_key(server: &str) -> &str {
    server.trim_end_matches('/')
}

/// The word the status uses for an enumeration value (`rolledBack`,
/// `upToDate`), for labels and pages that must say the same.
pub fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The first line of the generated CRD file.
pub const YAML_HEADER: &str =
    "# Generated by `cargo xtask crd` from src/agent/crd.rs. Do not edit; run it again.\n";

/// Why the CRD could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The definition did not survive the JSON round trip used to tidy it.
    #[error("ChannelSubscription CRD: cannot convert through JSON")]
    Json(#[from] serde_json::Error),
    /// The YAML writer failed.
    #[error("ChannelSubscription CRD: cannot write YAML")]
    Yaml(#[from] serde_saphyr::ser::Error),
}

/// The `CustomResourceDefinition` for [`ChannelSubscription`], as installed by
/// the chart: kube's derived definition, tidied for the API server and for
/// `kubectl explain`.
///
/// - Unsigned integer formats (`uint16`, `uint32`, `uint64`) are not OpenAPI
///   formats and make recent API servers warn on every apply; they become
///   `int32`/`int64` with the unsigned bounds kept as `minimum`/`maximum`.
/// - Doc comments are wrapped at ~80 columns in the source; single line breaks
///   are joined so `kubectl explain` can reflow the text (blank lines stay).
pub fn definition() -> Result<CustomResourceDefinition, CrdError> {
    Ok(serde_json::from_value(tidy_definition()?)?)
}

/// [`definition`] as the YAML file `charts/coxswain/crds/channelsubscriptions.yaml`.
pub fn definition_yaml() -> Result<String, CrdError> {
    // Written from the JSON value, where integer bounds stay integers
    // (the typed schema holds them as f64).
    let body = serde_saphyr::to_string(&tidy_definition()?)?;
    Ok(format!("{YAML_HEADER}{body}"))
}

fn tidy_definition() -> Result<serde_json::Value, CrdError> {
    let mut value = serde_json::to_value(ChannelSubscription::crd())?;
    tidy_schema(&mut value);
    Ok(value)
}

fn tidy_schema(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(Value::String(text)) = map.get_mut("description") {
                *text = join_lines(text);
            }
            let bound = match map.get("format").and_then(Value::as_str) {
                Some("uint8") => Some(("int32", u64::from(u8::MAX))),
                Some("uint16") => Some(("int32", u64::from(u16::MAX))),
                Some("uint32") => Some(("int64", u64::from(u32::MAX))),
                // No maximum: the API server stores integers as int64 anyway.
                Some("uint64") => Some(("int64", 0)),
                _ => None,
            };
            if let Some((format, max)) = bound {
                map.insert("format".into(), format.into());
                map.entry("minimum").or_insert(0.into());
                if max > 0 {
                    map.entry("maximum").or_insert(max.into());
                }
            }
            if map.get("type").and_then(Value::as_str) == Some("integer") {
                for key in ["minimum", "maximum"] {
                    // schemars writes integer bounds as floats (`1.0`).
                    if let Some(f) = map.get(key).and_then(Value::as_f64)
                        && f.fract() == 0.0
                        && f.abs() < 9.0e15
                    {
                        map.insert(key.into(), (f as i64).into());
                    }
                }
            }
            map.values_mut().for_each(tidy_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(tidy_schema),
        _ => {}
    }
}

/// Joins the lines of a paragraph with spaces; blank lines separate paragraphs.
fn join_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|para| para.lines().map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// How large the status written to the API server may grow, serialized: a
/// third of etcd's default object limit (1.5 MiB), which the subscription
/// (spec, metadata and managed fields) shares.
pub const STATUS_BUDGET: usize = 512 * 1024;

/// The longest message kept per release and per history entry (bytes).
pub const MAX_RELEASE_MESSAGE: usize = 512;

/// The longest message kept in `lastCheck` and each condition (bytes; the
/// CRD allows a condition 32 KiB).
pub const MAX_CHECK_MESSAGE: usize = 4096;

/// How many releases keep a (shortened) message when the status would not
/// fit otherwise.
const MESSAGES_KEPT_WHEN_FULL: usize = 50;

impl ChannelSubscriptionStatus {
    /// Makes the status fit what the API server stores, however many releases
    /// the channel has and however long their messages are (helm's errors, a
    /// chart's `fail` text): every message is cut to its bound, and while the
    /// serialized status is over [`STATUS_BUDGET`], in steps: release and
    /// history messages to 64 bytes; then only the first
    /// [`MESSAGES_KEPT_WHEN_FULL`] releases that are not up to date keep a
    /// message, and the history its newest 10 entries. Fitting a fitted
    /// status again changes nothing. Returns the serialized size.
    pub fn fit(&mut self) -> usize {
        use crate::bounded::bounded_bytes;
        let cut = |text: &mut String, max: usize| {
            if text.len() > max {
                *text = bounded_bytes(text, max);
            }
        };
        for release in &mut self.releases {
            cut(&mut release.message, MAX_RELEASE_MESSAGE);
        }
        for op in &mut self.history {
            cut(&mut op.message, MAX_RELEASE_MESSAGE);
        }
        for condition in &mut self.conditions {
            cut(&mut condition.message, MAX_CHECK_MESSAGE);
        }
        if let Some(check) = &mut self.last_check {
            cut(&mut check.message, MAX_CHECK_MESSAGE);
        }
        let size = |status: &Self| serde_json::to_vec(status).map_or(0, |bytes| bytes.len());
        if size(self) <= STATUS_BUDGET {
            return size(self);
        }
        for release in &mut self.releases {
            cut(&mut release.message, 64);
        }
        for op in &mut self.history {
            cut(&mut op.message, 64);
        }
        if size(self) <= STATUS_BUDGET {
            return size(self);
        }
        let mut kept = 0;
        for release in &mut self.releases {
            if release.state != ReleaseState::UpToDate && kept < MESSAGES_KEPT_WHEN_FULL {
                kept += 1;
            } else {
                release.message.clear();
            }
        }
        let excess = self.history.len().saturating_sub(10);
        self.history.drain(..excess);
        size(self)
    }

    /// The remembered state of `channel` on `server`, if it was ever accepted.
    pub fn accepted_for(&self, server: &str, channel: &str) -> Option<&AcceptedState> {
        let server = server_key(server);
        self.accepted
            .iter()
            .find(|a| a.server == server && a.channel == channel)
    }

    /// The newest trust root version accepted for any channel of `server`: a
    /// channel seen for the first time still must not go back to an older root
    /// of the same site.
    pub fn trust_root_floor(&self, server: &str) -> Option<u64> {
        let server = server_key(server);
        self.accepted
            .iter()
            .filter(|a| a.server == server)
            .map(|a| a.trust_root_version)
            .max()
    }

    /// Records that `sequence` of `channel` on `server` was accepted under trust
    /// root `trust_root_version`. Each value only ever grows (a lower one is
    /// kept at the remembered maximum). Updates the top-level copies, and
    /// forgets the longest-unused pair beyond [`MAX_ACCEPTED`].
    pub fn record_accepted(
        &mut self,
        server: &str,
        channel: &str,
        sequence: u64,
        trust_root_version: u64,
        at: Timestamp,
    ) {
        let server = server_key(server);
        let entry = match self
            .accepted
            .iter_mut()
            .position(|a| a.server == server && a.channel == channel)
        {
            Some(i) => &mut self.accepted[i],
            None => {
                self.accepted.push(AcceptedState {
                    server: server.to_owned(),
                    channel: channel.to_owned(),
                    sequence,
                    trust_root_version,
                    at,
                });
                let last = self.accepted.len() - 1;
                &mut self.accepted[last]
            }
        };
        entry.sequence = entry.sequence.max(sequence);
        entry.trust_root_version = entry.trust_root_version.max(trust_root_version);
        entry.at = entry.at.max(at);
        self.accepted_sequence = Some(entry.sequence);
        self.trust_root_version = Some(entry.trust_root_version);
        while self.accepted.len() > MAX_ACCEPTED {
            let oldest = self
                .accepted
                .iter()
                .enumerate()
                .filter(|(_, a)| !(a.server == server && a.channel == channel))
                .min_by_key(|(_, a)| a.at)
                .map(|(i, _)| i);
            match oldest {
                Some(i) => {
                    self.accepted.remove(i);
                }
                None => break,
            }
        }
    }

    /// Sets the top-level `acceptedSequence` and `trustRootVersion` to the
    /// remembered state of the current pair (both unset for a new pair), e.g.
    /// right after the spec switched channels.
    pub fn show_pair(&mut self, server: &str, channel: &str) {
        let (sequence, root) = match self.accepted_for(server, channel) {
            Some(a) => (Some(a.sequence), Some(a.trust_root_version)),
            None => (None, None),
        };
        self.accepted_sequence = sequence;
        self.trust_root_version = root;
    }

    /// The failed sequence, if it belongs to `channel` on `server`.
    pub fn failed_for(&self, server: &str, channel: &str) -> Option<&FailedSequence> {
        self.failed_sequence
            .as_ref()
            .filter(|f| server_key(&f.server) == server_key(server) && f.channel == channel)
    }

    /// Appends an operation, dropping the oldest beyond [`MAX_HISTORY`].
    pub fn push_history(&mut self, operation: Operation) {
        self.history.push(operation);
        if self.history.len() > MAX_HISTORY {
            let excess = self.history.len() - MAX_HISTORY;
            self.history.drain(..excess);
        }
    }

    /// Adds the operations of `carried` that the history lacks (records an
    /// earlier check could not write), in the order they started, dropping
    /// the oldest beyond [`MAX_HISTORY`].
    pub fn merge_history(&mut self, carried: Vec<Operation>) {
        let mut added = false;
        for op in carried {
            if !self.history.contains(&op) {
                self.history.push(op);
                added = true;
            }
        }
        if added {
            // Stable: operations that started in the same second keep their order.
            self.history.sort_by_key(|op| op.started);
            if self.history.len() > MAX_HISTORY {
                let excess = self.history.len() - MAX_HISTORY;
                self.history.drain(..excess);
            }
        }
    }

    /// The condition of `type_`, if set.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Sets a condition. `lastTransitionTime` moves to `now` only when the
    /// status changes, as Kubernetes conventions ask; reason and message are
    /// always replaced.
    pub fn set_condition(
        &mut self,
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
        observed_generation: Option<i64>,
        now: Timestamp,
    ) {
        let message = message.into();
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = now;
                }
                c.status = status;
                c.reason = reason.to_owned();
                c.message = message;
                c.observed_generation = observed_generation;
            }
            None => self.conditions.push(Condition {
                type_: type_.to_owned(),
                status,
                observed_generation,
                last_transition_time: now,
                reason: reason.to_owned(),
                message,
            }),
        }
    }
}

impl ChannelSubscription {
    /// The approvals of `spec.approvals` and the `coxswain.dev/approve`
    /// annotation, release to versions, and why any part was refused (a
    /// refused part approves nothing; the rest still counts).
    pub fn approvals(
        &self,
    ) -> (
        std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        Vec<ApprovalError>,
    ) {
        let mut granted: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        let mut problems = Vec::new();
        let mut add = |grants: Vec<ApprovalGrant>| {
            for g in grants {
                granted.entry(g.release).or_default().insert(g.version);
            }
        };
        let spec = &self.spec.approvals;
        if spec.len() > MAX_APPROVALS {
            problems.push(ApprovalError::TooMany {
                origin: "spec.approvals".to_owned(),
                count: spec.len(),
            });
        } else {
            let checked: Result<Vec<ApprovalGrant>, ApprovalError> = spec
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    check_grant(&format!("spec.approvals[{i}]"), &g.release, &g.version)
                        .map(|()| g.clone())
                })
                .collect();
            match checked {
                Ok(grants) => add(grants),
                Err(e) => problems.push(e),
            }
        }
        if let Some(value) = self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(APPROVE_ANNOTATION))
        {
            match parse_approve_annotation(value) {
                Ok(grants) => add(grants),
                Err(e) => problems.push(e),
            }
        }
        (granted, problems)
    }

    /// The retry annotation's value when it asks for a retry the agent has not
    /// acted on yet (a value differing from `status.handledRetry`).
    pub fn pending_retry(&self) -> Option<&str> {
        let wanted = self
            .metadata
            .annotations
            .as_ref()?
            .get(RETRY_ANNOTATION)?
            .as_str();
        let handled = self
            .status
            .as_ref()
            .and_then(|s| s.handled_retry.as_deref());
        (handled != Some(wanted)).then_some(wanted)
    }

    /// The restore annotation's value when the agent has not acted on it yet
    /// (a value differing from `status.handledRestore`).
    pub fn pending_restore(&self) -> Option<&str> {
        let wanted = self
            .metadata
            .annotations
            .as_ref()?
            .get(RESTORE_ANNOTATION)?
            .as_str();
        let handled = self
            .status
            .as_ref()
            .and_then(|s| s.handled_restore.as_deref());
        (handled != Some(wanted)).then_some(wanted)
    }
}

/// Reads a restore annotation: `<release>` or `<release>/<backup>`, each a
/// DNS-1123 name; why not otherwise.
pub fn parse_restore_request(value: &str) -> Result<(String, Option<String>), String> {
    let (release, backup) = match value.trim().split_once('/') {
        Some((release, backup)) => (release, Some(backup)),
        None => (value.trim(), None),
    };
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 253
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !n.starts_with(['-', '.'])
            && !n.ends_with(['-', '.'])
    };
    if !name_ok(release) || backup.is_some_and(|b| !name_ok(b)) {
        return Err(format!(
            "{RESTORE_ANNOTATION}: `{}` is not `<release>` or `<release>/<backup>`",
            crate::bounded::bounded(value, 200)
        ));
    }
    Ok((release.to_owned(), backup.map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn restore_annotations_name_a_release_and_maybe_a_backup() {
        use super::parse_restore_request as parse;
        assert_eq!(parse("ledger"), Ok(("ledger".into(), None)));
        assert_eq!(
            parse("ledger/ledger-8-20261203155044"),
            Ok(("ledger".into(), Some("ledger-8-20261203155044".into())))
        );
        for bad in ["", "/x", "ledger/", "Ledger", "a/b/c", "ledger now"] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with("coxswain.dev/restore: `"), "{bad}: {err}");
        }
    }

    use super::*;
    use kube::Resource;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix(1_790_000_000 + secs).unwrap()
    }

    fn minimal_json() -> &'static str {
        r#"{
            "apiVersion": "coxswain.dev/v1alpha1",
            "kind": "ChannelSubscription",
            "metadata": {"name": "stack", "namespace": "coxswain"},
            "spec": {
                "server": "https://updates.example.org/stack",
                "channel": "stable",
                "trustRef": {"kind": "ConfigMap", "name": "coxswain-trust", "key": "root.json"}
            }
        }"#
    }

    #[test]
    fn minimal_spec_gets_the_documented_defaults() {
        let sub: ChannelSubscription = serde_json::from_str(minimal_json()).unwrap();
        let spec = &sub.spec;
        assert_eq!(spec.interval, Duration::from_mins(5));
        assert_eq!(spec.health_timeout, Duration::from_mins(5));
        assert_eq!(spec.concurrency, 4);
        assert_eq!(spec.rollback_policy, RollbackPolicy::Release);
        assert!(!spec.suspend);
        assert!(spec.pins.is_empty() && spec.holds.is_empty() && spec.values.is_empty());
        assert_eq!(spec.trust_ref.kind, KeyRefKind::ConfigMap);
        assert!(sub.status.is_none());
    }

    #[test]
    fn full_spec_round_trips_in_camel_case() {
        let text = r#"{
            "server": "http://127.0.0.1:8080",
            "channel": "beta",
            "trustRef": {"kind": "Secret", "name": "trust", "key": "root.json"},
            "interval": "90s",
            "suspend": true,
            "pins": {"wiki": "0.3.1"},
            "holds": ["files"],
            "values": {"sso": {"valuesFrom": [
                {"kind": "ConfigMap", "name": "domains", "key": "sso.yaml"},
                {"kind": "Secret", "name": "sso-secrets", "key": "values.yaml"}
            ]}},
            "concurrency": 3,
            "healthTimeout": "10m",
            "rollbackPolicy": "channel"
        }"#;
        let spec: ChannelSubscriptionSpec = serde_json::from_str(text).unwrap();
        assert_eq!(spec.interval, Duration::from_secs(90));
        assert_eq!(spec.rollback_policy, RollbackPolicy::Channel);
        assert_eq!(spec.values["sso"].values_from[1].kind, KeyRefKind::Secret);
        let back = serde_json::to_value(&spec).unwrap();
        let orig: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn bad_enum_and_duration_values_are_rejected() {
        let base: serde_json::Value = serde_json::from_str(minimal_json()).unwrap();
        for (field, value) in [
            ("interval", serde_json::json!("5 minutes")),
            ("rollbackPolicy", serde_json::json!("Release")),
            (
                "trustRef",
                serde_json::json!({"kind": "Pod", "name": "x", "key": "y"}),
            ),
        ] {
            let mut doc = base.clone();
            doc["spec"][field] = value;
            let err = serde_json::from_value::<ChannelSubscription>(doc).unwrap_err();
            assert!(!err.to_string().is_empty(), "{field}");
        }
    }

    #[test]
    fn resource_identity() {
        assert_eq!(ChannelSubscription::group(&()), GROUP);
        assert_eq!(ChannelSubscription::version(&()), "v1alpha1");
        assert_eq!(ChannelSubscription::plural(&()), "channelsubscriptions");
        let crd = ChannelSubscription::crd();
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.short_names, Some(vec!["csub".to_owned()]));
    }

    #[test]
    fn accepted_state_is_kept_per_server_and_channel() {
        let mut s = ChannelSubscriptionStatus::default();
        s.record_accepted("https://u.example/", "stable", 7, 1, at(0));
        assert_eq!(
            (s.accepted_sequence, s.trust_root_version),
            (Some(7), Some(1))
        );
        // Switching channel starts that channel's own count.
        s.show_pair("https://u.example", "beta");
        assert_eq!(s.accepted_sequence, None);
        s.record_accepted("https://u.example", "beta", 3, 2, at(10));
        assert_eq!(s.accepted_sequence, Some(3));
        // ... but the site's trust root floor is shared.
        assert_eq!(s.trust_root_floor("https://u.example/"), Some(2));
        assert_eq!(s.trust_root_floor("https://other.example"), None);
        // Switching back remembers stable's count; trailing slashes do not matter.
        s.show_pair("https://u.example", "stable");
        assert_eq!(s.accepted_sequence, Some(7));
        assert_eq!(
            s.accepted_for("https://u.example/", "stable")
                .unwrap()
                .sequence,
            7
        );
        // A lower sequence or older root never lowers what is remembered.
        s.record_accepted("https://u.example", "stable", 5, 0, at(20));
        let a = s.accepted_for("https://u.example", "stable").unwrap();
        assert_eq!((a.sequence, a.trust_root_version), (7, 1));
        assert_eq!(s.accepted_sequence, Some(7));
        s.record_accepted("https://u.example", "stable", 9, 2, at(30));
        assert_eq!(
            (s.accepted_sequence, s.trust_root_version),
            (Some(9), Some(2))
        );
        assert_eq!(s.accepted.len(), 2);
    }

    #[test]
    fn accepted_pairs_are_bounded_and_keep_the_current_one() {
        let mut s = ChannelSubscriptionStatus::default();
        // The current pair was accepted first (oldest), then many others.
        s.record_accepted("https://u", "c0", 1, 1, at(0));
        for i in 1..=MAX_ACCEPTED + 5 {
            s.record_accepted("https://u", &format!("c{i}"), 1, 1, at(i as i64));
        }
        assert_eq!(s.accepted.len(), MAX_ACCEPTED);
        // c0 was the oldest and not current, so it went first.
        assert!(s.accepted_for("https://u", "c0").is_none());
        // Re-recording an old pair keeps it even though its `at` was oldest.
        let mut s = ChannelSubscriptionStatus::default();
        for i in 0..MAX_ACCEPTED {
            s.record_accepted("https://u", &format!("c{i}"), 1, 1, at(100 + i as i64));
        }
        s.record_accepted("https://u", "new", 1, 1, at(0));
        assert_eq!(s.accepted.len(), MAX_ACCEPTED);
        assert!(s.accepted_for("https://u", "new").is_some());
        assert!(s.accepted_for("https://u", "c0").is_none());
    }

    #[test]
    fn failed_sequence_belongs_to_its_pair() {
        let s = ChannelSubscriptionStatus {
            failed_sequence: Some(FailedSequence {
                server: "https://u/".into(),
                channel: "stable".into(),
                sequence: 8,
                reason: "wiki: Deployment wiki/wiki: ProgressDeadlineExceeded".into(),
                at: at(0),
            }),
            ..Default::default()
        };
        assert_eq!(
            s.failed_for("https://u", "stable").map(|f| f.sequence),
            Some(8)
        );
        assert!(s.failed_for("https://u", "beta").is_none());
        assert!(s.failed_for("https://v", "stable").is_none());
    }

    fn op(i: u64) -> Operation {
        Operation {
            release: "wiki".into(),
            namespace: "wiki".into(),
            operation: OperationKind::Upgrade,
            from: Some("0.3.0".into()),
            to: Some("0.3.1".into()),
            sequence: i,
            started: at(i as i64),
            duration: Duration::from_secs(12),
            result: OperationResult::Succeeded,
            message: String::new(),
            from_revision: Some(1),
            to_revision: Some(2),
            health: None,
        }
    }

    /// A status of `n` releases with the longest names, namespaces and
    /// versions the index allows, each with `message`, and a full history.
    fn big_status(n: usize, state: ReleaseState, message: &str) -> ChannelSubscriptionStatus {
        let mut s = ChannelSubscriptionStatus::default();
        for i in 0..n {
            s.releases.push(ReleaseStatus {
                name: format!("{i:0>53}"),
                namespace: format!("{i:0>63}"),
                version: Some(format!("1.0.0-{}", "r".repeat(58))),
                desired_version: Some(format!("2.0.0-{}", "r".repeat(58))),
                revision: Some(u32::MAX),
                state,
                message: message.to_owned(),
                since: at(i as i64),
                pinned: true,
                held: true,
            });
        }
        for i in 0..MAX_HISTORY as u64 {
            s.push_history(Operation {
                message: message.to_owned(),
                ..op(i)
            });
        }
        s.last_check = Some(LastCheck {
            time: at(0),
            result: CheckResult::Degraded,
            message: message.repeat(4),
        });
        s
    }

    fn size(status: &ChannelSubscriptionStatus) -> usize {
        serde_json::to_vec(status).unwrap().len()
    }

    #[test]
    fn a_thousand_releases_fit_the_status_budget_whatever_their_messages() {
        // Typical: up to date, no message; nothing to cut.
        let mut quiet = big_status(1_000, ReleaseState::UpToDate, "");
        let before = quiet.clone();
        let typical = quiet.fit();
        assert_eq!(quiet, before);
        assert!(typical < STATUS_BUDGET, "{typical}");

        // Hostile: every release failed with 64 KiB of control characters
        // (a chart's `fail` text), which JSON writes six bytes each.
        let hostile = "\u{1}".repeat(64 * 1024);
        let mut loud = big_status(1_000, ReleaseState::Failed, &hostile);
        assert!(size(&loud) > 300 * 1024 * 1024);
        let fitted = loud.fit();
        assert_eq!(fitted, size(&loud));
        assert!(fitted <= STATUS_BUDGET, "{fitted} bytes");
        assert_eq!(loud.releases.len(), 1_000, "every release keeps its entry");
        let with_message = loud
            .releases
            .iter()
            .filter(|r| !r.message.is_empty())
            .count();
        assert_eq!(with_message, MESSAGES_KEPT_WHEN_FULL);
        assert!(
            loud.releases[0].message.ends_with("more bytes)"),
            "{}",
            loud.releases[0].message
        );
        assert_eq!(loud.history.len(), 10);
        assert!(loud.last_check.as_ref().unwrap().message.len() <= MAX_CHECK_MESSAGE);
        // Fitting again changes nothing (the next check compares with it).
        let again = loud.clone();
        loud.fit();
        assert_eq!(loud, again);

        // In between: long messages are cut to their bound and nothing more.
        let mut few = big_status(20, ReleaseState::Failed, &"e".repeat(10_000));
        few.fit();
        assert!(
            few.releases
                .iter()
                .all(|r| r.message.len() <= MAX_RELEASE_MESSAGE
                    && r.message.len() > MAX_RELEASE_MESSAGE - 30)
        );
        assert_eq!(few.history.len(), MAX_HISTORY);
        eprintln!(
            "1,000 releases: {typical} bytes up to date; {fitted} bytes fitted from the hostile case"
        );
    }

    #[test]
    fn history_keeps_the_newest_fifty() {
        let mut s = ChannelSubscriptionStatus::default();
        for i in 0..(MAX_HISTORY as u64 + 7) {
            s.push_history(op(i));
        }
        assert_eq!(s.history.len(), MAX_HISTORY);
        assert_eq!(s.history.first().unwrap().sequence, 7);
        assert_eq!(s.history.last().unwrap().sequence, MAX_HISTORY as u64 + 6);
        let json = serde_json::to_value(&s.history[0]).unwrap();
        assert_eq!(json["operation"], "upgrade");
        assert_eq!(json["duration"], "12s");
        assert_eq!(json["fromRevision"], 1);
    }

    #[test]
    fn carried_history_is_merged_once_in_start_order() {
        let mut s = ChannelSubscriptionStatus::default();
        s.push_history(op(1));
        s.push_history(op(4));
        // Lost by a failed write: 2 and 3; 4 is already there.
        s.merge_history(vec![op(2), op(3), op(4)]);
        let seqs: Vec<u64> = s.history.iter().map(|o| o.sequence).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        s.merge_history(Vec::new());
        assert_eq!(s.history.len(), 4);
        let mut full = ChannelSubscriptionStatus::default();
        for i in 10..(10 + MAX_HISTORY as u64) {
            full.push_history(op(i));
        }
        full.merge_history(vec![op(1)]);
        assert_eq!(full.history.len(), MAX_HISTORY);
        assert_eq!(full.history[0].sequence, 10, "the oldest goes");
    }

    #[test]
    fn conditions_move_transition_time_only_on_status_change() {
        let mut s = ChannelSubscriptionStatus::default();
        s.set_condition(
            condition::READY,
            ConditionStatus::False,
            condition::REASON_PENDING,
            "first check",
            Some(1),
            at(0),
        );
        s.set_condition(
            condition::READY,
            ConditionStatus::False,
            condition::REASON_BLOCKED,
            "wiki blocked",
            Some(2),
            at(10),
        );
        let c = s.condition(condition::READY).unwrap();
        assert_eq!(c.last_transition_time, at(0));
        assert_eq!(
            (c.reason.as_str(), c.message.as_str(), c.observed_generation),
            ("Blocked", "wiki blocked", Some(2))
        );
        s.set_condition(
            condition::READY,
            ConditionStatus::True,
            condition::REASON_RECONCILED,
            "",
            Some(2),
            at(20),
        );
        assert_eq!(
            s.condition(condition::READY).unwrap().last_transition_time,
            at(20)
        );
        s.set_condition(
            condition::VERIFIED,
            ConditionStatus::True,
            condition::REASON_VERIFIED,
            "sequence 9",
            Some(2),
            at(20),
        );
        assert_eq!(s.conditions.len(), 2);
        let json = serde_json::to_value(&s.conditions[0]).unwrap();
        assert_eq!(json["type"], "Ready");
        assert_eq!(json["status"], "True");
        assert!(json["lastTransitionTime"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn retry_annotation_triggers_once_per_value() {
        let mut sub: ChannelSubscription = serde_json::from_str(minimal_json()).unwrap();
        assert_eq!(sub.pending_retry(), None);
        sub.metadata.annotations = Some(BTreeMap::from([(
            RETRY_ANNOTATION.to_owned(),
            "2026-11-27T10:00:00Z".to_owned(),
        )]));
        assert_eq!(sub.pending_retry(), Some("2026-11-27T10:00:00Z"));
        sub.status = Some(ChannelSubscriptionStatus {
            handled_retry: Some("2026-11-27T10:00:00Z".into()),
            ..Default::default()
        });
        assert_eq!(sub.pending_retry(), None);
        sub.metadata.annotations = Some(BTreeMap::from([(
            RETRY_ANNOTATION.to_owned(),
            "again".to_owned(),
        )]));
        assert_eq!(sub.pending_retry(), Some("again"));
    }

    #[test]
    fn approve_annotation_reads_pairs_and_refuses_hostile_values() {
        let grants = parse_approve_annotation(" wiki=3.0.0 , chat = 2.0.0,, ").unwrap();
        assert_eq!(
            grants,
            [
                ApprovalGrant {
                    release: "wiki".into(),
                    version: "3.0.0".into()
                },
                ApprovalGrant {
                    release: "chat".into(),
                    version: "2.0.0".into()
                }
            ]
        );
        assert!(parse_approve_annotation("").unwrap().is_empty());
        let err = parse_approve_annotation("wiki=3.0.0,chat").unwrap_err();
        assert_eq!(
            err,
            ApprovalError::NotAPair {
                entry: "chat".into()
            }
        );
        assert!(
            err.to_string()
                .contains("`chat` is not `<release>=<version>`")
        );
        let err = parse_approve_annotation("Wiki=3.0.0").unwrap_err();
        assert!(matches!(err, ApprovalError::BadRelease { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("coxswain.dev/approve: `Wiki` is not a release name")
        );
        let err = parse_approve_annotation("wiki=3.x").unwrap_err();
        assert!(matches!(err, ApprovalError::BadVersion { .. }), "{err}");
        assert!(err.to_string().contains("version `3.x` of `wiki`"), "{err}");
        let err = parse_approve_annotation("wiki=").unwrap_err();
        assert!(matches!(err, ApprovalError::BadVersion { .. }), "{err}");
        let err = parse_approve_annotation(&"x".repeat(MAX_APPROVE_ANNOTATION + 1)).unwrap_err();
        assert_eq!(
            err,
            ApprovalError::TooLong {
                len: MAX_APPROVE_ANNOTATION + 1
            }
        );
        let many = vec!["a=1.0.0"; MAX_APPROVALS + 1].join(",");
        let err = parse_approve_annotation(&many).unwrap_err();
        assert!(
            matches!(err, ApprovalError::TooMany { count: 257, .. }),
            "{err}"
        );
        let err = parse_approve_annotation("wiki=1.0.0\u{0}").unwrap_err();
        assert!(matches!(err, ApprovalError::BadVersion { .. }), "{err}");
    }

    #[test]
    fn approvals_join_the_spec_and_the_annotation_and_a_bad_part_approves_nothing() {
        let mut sub = ChannelSubscription::new(
            "s",
            serde_json::from_value(serde_json::json!({
                "server": "https://u.example", "channel": "stable",
                "trustRef": {"kind": "ConfigMap", "name": "t", "key": "k"},
                "approvals": [{"release": "wiki", "version": "3.0.0"}]
            }))
            .unwrap(),
        );
        sub.metadata.annotations =
            Some([(APPROVE_ANNOTATION.to_owned(), "chat=2.0.0".to_owned())].into());
        let (granted, problems) = sub.approvals();
        assert!(problems.is_empty(), "{problems:?}");
        assert!(granted["wiki"].contains("3.0.0") && granted["chat"].contains("2.0.0"));
        sub.metadata.annotations =
            Some([(APPROVE_ANNOTATION.to_owned(), "chat=2.0.0,oops".to_owned())].into());
        sub.spec.approvals.push(ApprovalGrant {
            release: "-bad".into(),
            version: "1.0.0".into(),
        });
        let (granted, problems) = sub.approvals();
        assert!(granted.is_empty(), "{granted:?}");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0]
                .to_string()
                .starts_with("spec.approvals[1]: `-bad`"),
            "{}",
            problems[0]
        );
    }
}
