//! Polls the objects of a release until all are current, one failed, or the
//! timeout passed.

use std::time::{Duration, Instant};

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use serde_json::Value;

use super::manifest::{ManifestError, parse_manifest};
use super::pods::{current_replicaset_hash, label_selector, pod_of_current_revision};
use super::rules::{Kind, evaluate, judged_kind, pod_failure, pod_not_ready};
use super::{Health, ObjectRef};

/// How often objects are read again.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How long the API server has to answer the probe that tells an outage
/// from a release that is not ready.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most pods read per workload and poll; a crash loop shows in any of them.
const POD_PAGE: u32 = 500;

/// What a workload's pods of the current revision show.
enum PodProblem {
    /// One will not become ready (crash loop, image pull).
    Failed(String),
    /// One is not Ready yet.
    NotReady(String),
}

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
}

impl HealthCheck {
    /// A check polling every [`DEFAULT_POLL_INTERVAL`].
    pub fn new(client: Client) -> Self {
        Self {
            client,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Polls every `interval` instead.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Checks the objects of a release manifest (`helm get manifest`) until
    /// all are current, one fails, or `timeout` passes.
    pub async fn run(
        &self,
        manifest: &str,
        release_namespace: &str,
        timeout: Duration,
    ) -> Result<HealthReport, HealthError> {
        let objects = parse_manifest(manifest, release_namespace)?;
        self.run_objects(objects, timeout).await
    }

    /// As [`HealthCheck::run`], for objects already known.
    pub async fn run_objects(
        &self,
        objects: Vec<ObjectRef>,
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
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            // A hanging API call must not outlive the timeout either.
            match tokio::time::timeout(remaining, self.check_once(&objects)).await {
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
            if Instant::now() + self.poll_interval >= deadline {
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
            tokio::time::sleep(self.poll_interval).await;
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
    ) -> Result<Vec<ObjectReport>, HealthError> {
        let mut reports = Vec::with_capacity(objects.len());
        for object in objects {
            let health = self.check_object(object).await?;
            reports.push(ObjectReport {
                object: object.clone(),
                health,
            });
        }
        Ok(reports)
    }

    async fn check_object(&self, object: &ObjectRef) -> Result<Health, HealthError> {
        let Some(kind) = judged_kind(object) else {
            return Ok(Health::Current);
        };
        let api = self.api(object, kind, object.version());
        let value = match api.get(&object.name).await {
            Ok(found) => to_value(&found),
            Err(kube::Error::Api(status)) if status.is_not_found() => {
                return Ok(Health::InProgress(format!("{object}: not found")));
            }
            Err(e) => return transient_or_denied(e, object.to_string()),
        };
        let health = evaluate(&value);
        if health.is_current() || !kind.has_pods() {
            return Ok(health);
        }
        match self.pod_problem(kind, object, &value).await? {
            Some(PodProblem::Failed(why)) => Ok(Health::Failed(format!("{object}: {why}"))),
            // The workload's own counts may look fine while an old pod still
            // serves; the new pod that is not Ready is the useful fact.
            Some(PodProblem::NotReady(why)) => Ok(match health {
                Health::InProgress(r) => Health::InProgress(format!("{r}; {why}")),
                other => other,
            }),
            None => Ok(health),
        }
    }

    /// The first pod of the workload's current revision that crash-loops or
    /// cannot pull its image; else the first that is not Ready.
    async fn pod_problem(
        &self,
        kind: Kind,
        object: &ObjectRef,
        workload: &Value,
    ) -> Result<Option<PodProblem>, HealthError> {
        let Some(selector) = label_selector(workload) else {
            return Ok(None);
        };
        let params = ListParams::default().labels(&selector).limit(POD_PAGE);
        let hash = if kind == Kind::Deployment {
            let sets = self.api_in(object, "apps", "v1", "ReplicaSet", "replicasets");
            match sets.list(&params).await {
                Ok(list) => {
                    let sets: Vec<Value> = list.items.iter().map(to_value).collect();
                    current_replicaset_hash(workload, &sets)
                }
                Err(e) => {
                    return transient_or_denied(e, format!("replica sets of {object}"))
                        .map(|_| None);
                }
            }
        } else {
            None
        };
        let pods = self.api_in(object, "", "v1", "Pod", "pods");
        let list = match pods.list(&params).await {
            Ok(list) => list,
            Err(e) => return transient_or_denied(e, format!("pods of {object}")).map(|_| None),
        };
        let mut not_ready = None;
        for pod in list.items.iter().map(to_value) {
            if !pod_of_current_revision(workload, &pod, hash.as_deref()) {
                continue;
            }
            let name = pod
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            if let Some(why) = pod_failure(&pod) {
                return Ok(Some(PodProblem::Failed(format!("pod {name}: {why}"))));
            }
            if not_ready.is_none()
                && let Some(why) = pod_not_ready(&pod)
            {
                not_ready = Some(PodProblem::NotReady(format!("pod {name}: {why}")));
            }
        }
        Ok(not_ready)
    }

    fn api(&self, object: &ObjectRef, kind: Kind, version: &str) -> Api<DynamicObject> {
        let (group, plural) = match kind {
            Kind::Deployment => ("apps", "deployments"),
            Kind::StatefulSet => ("apps", "statefulsets"),
            Kind::DaemonSet => ("apps", "daemonsets"),
            Kind::Job => ("batch", "jobs"),
            Kind::CustomResourceDefinition => ("apiextensions.k8s.io", "customresourcedefinitions"),
            Kind::Pod => ("", "pods"),
        };
        self.api_in(object, group, version, &object.kind, plural)
    }

    fn api_in(
        &self,
        object: &ObjectRef,
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
    ) -> Api<DynamicObject> {
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        match &object.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }
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
