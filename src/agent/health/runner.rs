//! Reads and judges the objects of a release until all are current, one
//! failed, or the timeout passed: again whenever a watch sees one of them (or
//! their pods) change, and at the latest every poll interval.

use std::time::{Duration, Instant};

use std::collections::HashMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::{self, Scope};
use kube::{Api, Client};
use serde_json::Value;

use super::manifest::{ManifestError, parse_manifest};
use super::pods::label_selector;
use super::rules::{
    Kind, Related, endpoint_slice_selector, evaluate_with, judge, judged_kind, webhook_services,
};
use super::watch::{Wakeups, watch_targets};
use super::{Health, HealthOptions, ObjectRef};

/// How often objects are read again when no watch woke the check before:
/// the watches see a change within milliseconds; the poll is for what they
/// do not cover (a kind served only later, a webhook's service in another
/// namespace, a refused or interrupted watch).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The least time between two looks at the objects when watches wake the
/// check, so that a burst of events (a rollout's pods) costs one look.
const MIN_RECHECK_GAP: Duration = Duration::from_millis(100);

/// The time the last look before the timeout is given to read everything.
const FINAL_CHECK: Duration = Duration::from_secs(1);

/// How long the API server has to answer the probe that tells an outage
/// from a release that is not ready.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most pods read per workload and poll; a crash loop shows in any of them.
const POD_PAGE: u32 = 500;

/// The health of one object at the end of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectReport {
    /// Which object.
    pub object: ObjectRef,
    /// Its last observed health.
    pub health: Health,
}

/// How a health check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthOutcome {
    /// Every object is current.
    Healthy,
    /// An object failed; the reason names it.
    Failed(String),
    /// The timeout passed with objects still in progress; the reason names the first.
    TimedOut(String),
    /// The timeout passed while the API server did not answer: nothing is
    /// known about the release, so it is neither healthy nor unhealthy (an
    /// outage is not evidence against a revision; the check is made again).
    Unobserved(String),
}

impl HealthOutcome {
    /// True for [`HealthOutcome::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Healthy)
    }

    /// Why the release is not healthy.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Healthy => None,
            Self::Failed(r) | Self::TimedOut(r) | Self::Unobserved(r) => Some(r),
        }
    }
}

/// The result of [`HealthCheck::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// Healthy, failed or timed out.
    pub outcome: HealthOutcome,
    /// Every object of the manifest, with its last observed health.
    pub objects: Vec<ObjectReport>,
    /// Time from start to verdict.
    pub elapsed: Duration,
    /// How many times the objects were read.
    pub polls: u32,
    /// How many watches woke the check when an object changed (0 when
    /// watching is off).
    pub watches: usize,
}

/// Why a health check could not be carried out at all (as opposed to finding
/// the release unhealthy).
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The release manifest cannot be read.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The agent's credentials may not read an object: waiting will not help.
    #[error("cannot read {object}: {reason} (HTTP {code}: {message})")]
    Denied {
        /// The object (or `pods of <object>`).
        object: String,
        /// Kubernetes' reason (`Forbidden`, `Unauthorized`).
        reason: String,
        /// HTTP status code.
        code: u16,
        /// Kubernetes' message.
        message: String,
    },
}

/// Evaluates a release's objects on a cluster.
#[derive(Clone)]
pub struct HealthCheck {
    client: Client,
    poll_interval: Duration,
    /// Whether watches wake the check when objects change.
    watch: bool,
}

impl HealthCheck {
    /// A check that looks again whenever a watched object changes, and at
    /// least every [`DEFAULT_POLL_INTERVAL`].
    pub fn new(client: Client) -> Self {
        Self {
            client,
            poll_interval: DEFAULT_POLL_INTERVAL,
            watch: true,
        }
    }

    /// Polls every `interval` instead.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Without watches: only the poll interval (what benchmarks compare with).
    pub fn without_watches(mut self) -> Self {
        self.watch = false;
        self
    }

    /// Checks the objects of a release manifest (`helm get manifest`) until
    /// all are current, one fails, or `timeout` passes.
    pub async fn run(
        &self,
        manifest: &str,
        release_namespace: &str,
        options: &HealthOptions,
        timeout: Duration,
    ) -> Result<HealthReport, HealthError> {
        let objects = parse_manifest(manifest, release_namespace)?;
        self.run_objects(objects, options, timeout).await
    }

    /// As [`HealthCheck::run`], for objects already known.
    pub async fn run_objects(
        &self,
        objects: Vec<ObjectRef>,
        options: &HealthOptions,
        timeout: Duration,
    ) -> Result<HealthReport, HealthError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut polls = 0;
        let mut last: Vec<ObjectReport> = objects
            .iter()
            .map(|o| ObjectReport {
                object: o.clone(),
                health: Health::InProgress(format!("{o}: not checked yet")),
            })
            .collect();
        let mut kinds = KindCache::default();
        let mut wakeups: Option<Wakeups> = None;
        loop {
            let checked = Instant::now();
            let remaining = deadline.saturating_duration_since(checked);
            // A hanging API call must not outlive the timeout either.
            let once = self.check_once(&objects, options, &mut kinds);
            match tokio::time::timeout(remaining, once).await {
                Ok(reports) => {
                    last = reports?;
                    polls += 1;
                }
                Err(_elapsed) => {}
            }
            let report = |outcome| HealthReport {
                outcome,
                objects: last.clone(),
                elapsed: started.elapsed(),
                polls,
                watches: wakeups.as_ref().map_or(0, Wakeups::len),
            };
            if let Some(failed) = last.iter().find_map(|r| match &r.health {
                Health::Failed(why) => Some(why.clone()),
                _ => None,
            }) {
                return Ok(report(HealthOutcome::Failed(failed)));
            }
            let waiting: Vec<&str> = last.iter().filter_map(|r| r.health.reason()).collect();
            if waiting.is_empty() {
                return Ok(report(HealthOutcome::Healthy));
            }
            // The last check needs time to read everything before the deadline.
            let last_call = deadline
                .checked_sub(self.poll_interval.min(FINAL_CHECK))
                .unwrap_or(started);
            if Instant::now() >= last_call {
                // Objects still "in progress" may only mean that they could
                // not be read: ask the API server before blaming the release.
                if let Some(why) = self.api_unreachable().await {
                    return Ok(report(HealthOutcome::Unobserved(why)));
                }
                let mut why = format!("not ready after {}s: {}", timeout.as_secs(), waiting[0]);
                if waiting.len() > 1 {
                    why.push_str(&format!(" (and {} more)", waiting.len() - 1));
                }
                return Ok(report(HealthOutcome::TimedOut(why)));
            }
            // Watches start once the first check has resolved the kinds.
            if wakeups.is_none() && self.watch {
                wakeups = Some(Wakeups::start(
                    &self.client,
                    watch_targets(&kinds.of(&objects)),
                ));
            }
            // Look again when a watched object changes, at the latest after the
            // poll interval (for what no watch covers), and not before
            // MIN_RECHECK_GAP since the last look: a rollout's burst of pod
            // events is one more check, not dozens.
            let poll =
                tokio::time::sleep_until((checked + self.poll_interval).min(last_call).into());
            match &wakeups {
                Some(wakeups) => {
                    tokio::select! {
                        () = wakeups.changed() => {
                            let gap = (checked + MIN_RECHECK_GAP).min(last_call);
                            tokio::time::sleep_until(gap.into()).await;
                        }
                        () = poll => {}
                    }
                }
                None => poll.await,
            }
        }
    }

    /// `Some(why)` when the API server does not answer at all (connection
    /// refused or reset, TLS, a timeout); an API error such as 403 or 500 is an
    /// answer, so `None`.
    pub async fn api_unreachable(&self) -> Option<String> {
        match tokio::time::timeout(PROBE_TIMEOUT, self.client.apiserver_version()).await {
            Ok(Ok(_)) | Ok(Err(kube::Error::Api(_))) => None,
            Ok(Err(e)) => Some(format!("the API server did not answer: {e}")),
            Err(_elapsed) => Some(format!(
                "the API server did not answer within {}s",
                PROBE_TIMEOUT.as_secs()
            )),
        }
    }

    /// Reads and judges every object once.
    pub async fn check_once(
        &self,
        objects: &[ObjectRef],
        options: &HealthOptions,
        kinds: &mut KindCache,
    ) -> Result<Vec<ObjectReport>, HealthError> {
        let mut reports = Vec::with_capacity(objects.len());
        for object in objects {
            reports.push(self.check_object(object, options, kinds).await?);
        }
        Ok(reports)
    }

    async fn check_object(
        &self,
        object: &ObjectRef,
        options: &HealthOptions,
        kinds: &mut KindCache,
    ) -> Result<ObjectReport, HealthError> {
        let report = |object: &ObjectRef, health| ObjectReport {
            object: object.clone(),
            health,
        };
        let (resource, scope) = match kinds.resolve(&self.client, object).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                let why = format!(
                    "{object}: kind {} {} is not served by the API server (its CustomResourceDefinition must be established first)",
                    object.api_version, object.kind
                );
                return Ok(report(object, Health::InProgress(why)));
            }
            Err(e) => {
                let health = transient_or_denied(e, format!("the kind of {object}"))?;
                return Ok(report(object, health));
            }
        };
        // Discovery, not the manifest, knows the scope: helm ignores a
        // namespace on a cluster-scoped object.
        let object = &match scope {
            Scope::Cluster => ObjectRef {
                namespace: None,
                ..object.clone()
            },
            Scope::Namespaced => object.clone(),
        };
        let api = self.api_for(object.namespace.as_deref(), &resource);
        let Some(kind) = judged_kind(object) else {
            // No readiness rule: it must exist. Metadata only (a Secret's
            // data is none of the check's business).
            let health = match api.get_metadata(&object.name).await {
                Ok(_) => Health::Current,
                Err(kube::Error::Api(status)) if status.is_not_found() => missing(object),
                Err(e) => transient_or_denied(e, object.to_string())?,
            };
            return Ok(report(object, health));
        };
        let value = match api.get(&object.name).await {
            Ok(found) => to_value(&found),
            Err(kube::Error::Api(status)) if status.is_not_found() => {
                return Ok(report(object, missing(object)));
            }
            Err(e) => {
                let health = transient_or_denied(e, object.to_string())?;
                return Ok(report(object, health));
            }
        };
        if evaluate_with(&value, options).is_current() && !kind.has_endpoints() {
            return Ok(report(object, Health::Current));
        }
        let related = match self.related(kind, object, &value).await? {
            Ok(related) => related,
            Err(unread) => return Ok(report(object, unread)),
        };
        Ok(report(object, judge(&value, &related, options)))
    }

    /// The objects `object`'s health depends on; `Ok(Err(health))` when one
    /// could not be read this time.
    async fn related(
        &self,
        kind: Kind,
        object: &ObjectRef,
        value: &Value,
    ) -> Result<Result<Related, Health>, HealthError> {
        let mut related = Related::default();
        if kind.has_pods() {
            let Some(selector) = label_selector(value) else {
                return Ok(Ok(related));
            };
            let params = ListParams::default().labels(&selector).limit(POD_PAGE);
            let ns = object.namespace.as_deref();
            if kind == Kind::Deployment {
                let sets = self.api_for(ns, &ApiResource::erase::<ReplicaSet>(&()));
                match sets.list(&params).await {
                    Ok(list) => related.replicasets = list.items.iter().map(to_value).collect(),
                    Err(e) => {
                        return transient_or_denied(e, format!("replica sets of {object}"))
                            .map(Err);
                    }
                }
            }
            let pods = self.api_for(ns, &ApiResource::erase::<Pod>(&()));
            match pods.list(&params).await {
                Ok(list) => related.pods = list.items.iter().map(to_value).collect(),
                Err(e) => return transient_or_denied(e, format!("pods of {object}")).map(Err),
            }
        }
        if kind.has_endpoints() {
            let slices = ApiResource::erase::<EndpointSlice>(&());
            for (ns, service) in webhook_services(value) {
                let params = ListParams::default()
                    .labels(&endpoint_slice_selector(&service))
                    .limit(POD_PAGE);
                match self.api_for(Some(&ns), &slices).list(&params).await {
                    Ok(list) => related
                        .endpoint_slices
                        .extend(list.items.iter().map(to_value)),
                    Err(e) => {
                        return transient_or_denied(
                            e,
                            format!("endpoints of service {ns}/{service}"),
                        )
                        .map(Err);
                    }
                }
            }
        }
        Ok(Ok(related))
    }

    fn api_for(&self, namespace: Option<&str>, resource: &ApiResource) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }
}

/// The API resources of the kinds a check has met, found through discovery.
/// Only kinds the API server serves are remembered: a kind that is missing
/// (its CustomResourceDefinition not established yet) is asked for again.
#[derive(Debug, Default)]
pub struct KindCache {
    known: HashMap<(String, String, String), (ApiResource, Scope)>,
}

impl KindCache {
    /// Each object with its kind's resource and scope, as far as discovery
    /// has resolved them.
    pub(crate) fn of(
        &self,
        objects: &[ObjectRef],
    ) -> Vec<(ObjectRef, Option<(ApiResource, Scope)>)> {
        objects
            .iter()
            .map(|object| (object.clone(), self.known.get(&kind_key(object)).cloned()))
            .collect()
    }

    /// The resource and scope of `object`'s kind; `None` when the API server
    /// does not serve it.
    async fn resolve(
        &mut self,
        client: &Client,
        object: &ObjectRef,
    ) -> Result<Option<(ApiResource, Scope)>, kube::Error> {
        let key = kind_key(object);
        if let Some(found) = self.known.get(&key) {
            return Ok(Some(found.clone()));
        }
        let gvk = GroupVersionKind::gvk(&key.0, &key.1, &key.2);
        match discovery::pinned_kind(client, &gvk).await {
            Ok((resource, caps)) => {
                let found = (resource, caps.scope);
                self.known.insert(key, found.clone());
                Ok(Some(found))
            }
            Err(kube::Error::Discovery(_)) => Ok(None),
            // An unknown group/version is a bare 404, not a Status.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn kind_key(object: &ObjectRef) -> (String, String, String) {
    (
        object.group().to_owned(),
        object.version().to_owned(),
        object.kind.clone(),
    )
}

/// An object of the manifest that the API server does not have. A Job is
/// the exception: its TTL controller removes a finished Job
/// (`ttlSecondsAfterFinished`), which is what the chart asked for.
fn missing(object: &ObjectRef) -> Health {
    if object.group() == "batch" && object.kind == "Job" {
        return Health::Current;
    }
    Health::Failed(format!("{object}: missing from the API server"))
}

fn to_value(object: &DynamicObject) -> Value {
    // DynamicObject is plain data (maps, strings, numbers): it always serializes.
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// Access errors end the check; anything else (network, 5xx, throttling) is
/// reported as in progress and retried on the next poll.
fn transient_or_denied(error: kube::Error, what: String) -> Result<Health, HealthError> {
    if let kube::Error::Api(status) = &error
        && (status.is_forbidden() || status.code == 401)
    {
        return Err(HealthError::Denied {
            object: what,
            reason: status.reason.clone(),
            code: status.code,
            message: status.message.clone(),
        });
    }
    Ok(Health::InProgress(format!("{what}: cannot read: {error}")))
}
