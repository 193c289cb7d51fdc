//! Health of a Helm release after an upgrade, judged like kstatus: every
//! object in the release manifest must reach its ready state, and a pod of the
//! release that crash-loops or cannot pull its image fails the check at once.
//!
//! [`rules`] holds the pure rules (one object in, [`Health`] out);
//! [`HealthCheck`] reads the cluster until everything is current, something
//! failed, or the timeout passed, looking again as soon as a watch sees a
//! judged object or its pods change (`watch`), and at least every poll interval.

mod manifest;
mod pods;
mod rules;
mod runner;
mod watch;

use std::fmt;

pub use manifest::{ManifestError, parse_manifest};
pub use pods::{current_replicaset_hash, label_selector, pod_of_current_revision};
pub use rules::{Related, evaluate, evaluate_with, judge};
pub use runner::{HealthCheck, HealthError, HealthOutcome, HealthReport, KindCache, ObjectReport};

/// The readiness of one object. Reasons name the object:
/// `Deployment wiki/wiki-web: 0/1 replicas available`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Reconciled and ready.
    Current,
    /// Not ready yet; may still become ready.
    InProgress(String),
    /// Will not become ready without a change.
    Failed(String),
}

impl Health {
    /// True for [`Health::Current`].
    pub fn is_current(&self) -> bool {
        matches!(self, Self::Current)
    }

    /// The reason, for anything but `Current`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Current => None,
            Self::InProgress(r) | Self::Failed(r) => Some(r),
        }
    }
}

/// Per-release choices of what counts as healthy (the index's `health:` block).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthOptions {
    /// A `LoadBalancer` Service without an address is ready (clusters
    /// without a load balancer implementation never give it one).
    pub accept_pending_load_balancer: bool,
}

impl From<&crate::format::spec::Health> for HealthOptions {
    fn from(health: &crate::format::spec::Health) -> Self {
        Self {
            accept_pending_load_balancer: health.accept_pending_load_balancer,
        }
    }
}

/// Which object, as written in a manifest (namespace filled in for namespaced kinds).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `apps/v1`, `v1`, ...
    pub api_version: String,
    /// `Deployment`, ...
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// Reads apiVersion, kind, metadata.name and metadata.namespace of an object.
    pub fn from_object(object: &serde_json::Value) -> Option<Self> {
        let s = |p: &str| object.pointer(p).and_then(serde_json::Value::as_str);
        Some(Self {
            api_version: s("/apiVersion")?.to_owned(),
            kind: s("/kind")?.to_owned(),
            namespace: s("/metadata/namespace")
                .filter(|ns| !ns.is_empty())
                .map(str::to_owned),
            name: s("/metadata/name")?.to_owned(),
        })
    }

    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    /// The API version without the group.
    pub fn version(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or(self.api_version.as_str(), |(_, v)| v)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}
