//! Readiness rules, after kstatus: pure functions from one Kubernetes object
//! (as JSON) to [`Health`]. No I/O here; the runner fetches, these judge.

use serde_json::Value;

use super::pods::{current_replicaset_hash, pod_of_current_revision};
use super::{Health, HealthOptions, ObjectRef};

/// Container waiting reasons that will not fix themselves within a health
/// timeout: fail at once instead of waiting for it to pass.
const FATAL_WAITING: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
];

/// Label an EndpointSlice carries with the name of its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Evaluates any object with the default [`HealthOptions`]. Kinds without
/// readiness (ConfigMap, Secret, RBAC, custom resources, ...) are current as
/// soon as they exist.
pub fn evaluate(object: &Value) -> Health {
    evaluate_with(object, &HealthOptions::default())
}

/// Evaluates one object on its own, under a release's options.
pub fn evaluate_with(object: &Value, options: &HealthOptions) -> Health {
    let Some(obj) = ObjectRef::from_object(object) else {
        return Health::Failed("object without apiVersion, kind or metadata.name".into());
    };
    own_verdict(&obj, object, options).about(&obj)
}

fn own_verdict(obj: &ObjectRef, object: &Value, options: &HealthOptions) -> Verdict {
    match judged_kind(obj) {
        Some(kind) => {
            if object.pointer("/metadata/deletionTimestamp").is_some() {
                Verdict::Progress("being deleted".into())
            } else {
                kind.rule()(object, options)
            }
        }
        None => Verdict::Ready,
    }
}

/// The objects an object's health depends on, as the API server returned
/// them: a workload's pods (and a Deployment's ReplicaSets), the
/// EndpointSlices of the services a webhook calls.
#[derive(Debug, Clone, Default)]
pub struct Related {
    /// Pods selected by the workload.
    pub pods: Vec<Value>,
    /// ReplicaSets selected by a Deployment (to tell its current revision).
    pub replicasets: Vec<Value>,
    /// EndpointSlices of the services the object calls.
    pub endpoint_slices: Vec<Value>,
}

impl Related {
    /// Sorts objects by kind (anything else is ignored).
    pub fn from_objects(objects: impl IntoIterator<Item = Value>) -> Self {
        let mut related = Self::default();
        for object in objects {
            match object.get("kind").and_then(Value::as_str) {
                Some("Pod") => related.pods.push(object),
                Some("ReplicaSet") => related.replicasets.push(object),
                Some("EndpointSlice") => related.endpoint_slices.push(object),
                _ => {}
            }
        }
        related
    }
}

/// Evaluates an object together with the objects it depends on: a
/// workload's pods of the current revision (a crash loop fails it, an
/// unschedulable pod says why it waits), a webhook's endpoints.
pub fn judge(object: &Value, related: &Related, options: &HealthOptions) -> Health {
    let Some(obj) = ObjectRef::from_object(object) else {
        return Health::Failed("object without apiVersion, kind or metadata.name".into());
    };
    let own = own_verdict(&obj, object, options);
    let kind = judged_kind(&obj);
    let verdict = match (own, kind) {
        (Verdict::Ready, Some(Kind::ValidatingWebhook | Kind::MutatingWebhook)) => {
            webhook_endpoints(object, &related.endpoint_slices)
        }
        (own, Some(kind)) if kind.has_pods() && own != Verdict::Ready => {
            match pod_problem(object, related) {
                Some(PodProblem::Failed(why)) => Verdict::Broken(why),
                // The workload's own counts may look fine while an old pod
                // still serves; the new pod that is not Ready is the useful fact.
                Some(PodProblem::NotReady(why)) => match own {
                    Verdict::Progress(r) => Verdict::Progress(format!("{r}; {why}")),
                    other => other,
                },
                None => own,
            }
        }
        (own, _) => own,
    };
    verdict.about(&obj)
}

/// What a workload's pods of the current revision show.
enum PodProblem {
    /// One will not become ready (crash loop, image pull).
    Failed(String),
    /// One is not Ready yet.
    NotReady(String),
}

/// The first pod of the workload's current revision that crash-loops or
/// cannot pull its image; else the first that is not Ready.
fn pod_problem(workload: &Value, related: &Related) -> Option<PodProblem> {
    let hash = current_replicaset_hash(workload, &related.replicasets);
    let mut not_ready = None;
    for pod in &related.pods {
        if !pod_of_current_revision(workload, pod, hash.as_deref()) {
            continue;
        }
        let name = text(pod, "/metadata/name").unwrap_or("?");
        if let Some(why) = pod_failure(pod) {
            return Some(PodProblem::Failed(format!("pod {name}: {why}")));
        }
        if not_ready.is_none()
            && let Some(why) = pod_not_ready(pod)
        {
            not_ready = Some(PodProblem::NotReady(format!("pod {name}: {why}")));
        }
    }
    not_ready
}

/// The kinds with a readiness rule; matched on group and kind, any version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CustomResourceDefinition,
    Pod,
    Service,
    ApiService,
    ValidatingWebhook,
    MutatingWebhook,
}

impl Kind {
    fn rule(self) -> fn(&Value, &HealthOptions) -> Verdict {
        match self {
            Self::Deployment => |o, _| deployment(o),
            Self::StatefulSet => |o, _| statefulset(o),
            Self::DaemonSet => |o, _| daemonset(o),
            Self::Job => |o, _| job(o),
            Self::CustomResourceDefinition => |o, _| crd(o),
            Self::Pod => |o, _| pod(o),
            Self::Service => service,
            Self::ApiService => |o, _| api_service(o),
            // Judged with the endpoints of the services they call.
            Self::ValidatingWebhook | Self::MutatingWebhook => |_, _| Verdict::Ready,
        }
    }

    /// Webhook configurations, judged with the endpoints of their services.
    pub(crate) fn has_endpoints(self) -> bool {
        matches!(self, Self::ValidatingWebhook | Self::MutatingWebhook)
    }

    /// Workloads whose pods are watched for crash loops.
    pub(crate) fn has_pods(self) -> bool {
        matches!(
            self,
            Self::Deployment | Self::StatefulSet | Self::DaemonSet | Self::Job
        )
    }
}

pub(crate) fn judged_kind(obj: &ObjectRef) -> Option<Kind> {
    let group = obj.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    Some(match (group, obj.kind.as_str()) {
        ("apps", "Deployment") => Kind::Deployment,
        ("apps", "StatefulSet") => Kind::StatefulSet,
        ("apps", "DaemonSet") => Kind::DaemonSet,
        ("batch", "Job") => Kind::Job,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => Kind::CustomResourceDefinition,
        ("", "Pod") => Kind::Pod,
        ("", "Service") => Kind::Service,
        ("apiregistration.k8s.io", "APIService") => Kind::ApiService,
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            Kind::ValidatingWebhook
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => Kind::MutatingWebhook,
        _ => return None,
    })
}

/// A rule's answer before it is attributed to an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ready,
    Progress(String),
    Broken(String),
}

impl Verdict {
    pub(crate) fn about(self, obj: &ObjectRef) -> Health {
        match self {
            Self::Ready => Health::Current,
            Self::Progress(why) => Health::InProgress(format!("{obj}: {why}")),
            Self::Broken(why) => Health::Failed(format!("{obj}: {why}")),
        }
    }
}

fn int(object: &Value, pointer: &str) -> Option<i64> {
    object.pointer(pointer).and_then(Value::as_i64)
}

fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// `status.conditions[type == kind]`.
fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn condition_is(object: &Value, kind: &str, status: &str) -> bool {
    condition(object, kind).and_then(|c| c.get("status")?.as_str()) == Some(status)
}

/// `reason: message` of a condition, whichever parts exist.
fn explain(cond: &Value) -> String {
    let reason = cond.get("reason").and_then(Value::as_str).unwrap_or("");
    let message = cond.get("message").and_then(Value::as_str).unwrap_or("");
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_owned(),
        (true, false) => message.to_owned(),
        (true, true) => "no reason given".to_owned(),
    }
}

/// The controller has seen the latest spec; until then status describes an older one.
fn generation_observed(object: &Value) -> Result<(), Verdict> {
    let generation = int(object, "/metadata/generation").unwrap_or(0);
    let observed = int(object, "/status/observedGeneration").unwrap_or(0);
    if observed < generation {
        Err(Verdict::Progress(format!(
            "waiting for the controller to observe generation {generation} (observed {observed})"
        )))
    } else {
        Ok(())
    }
}

fn counts(object: &Value, want: i64, checks: &[(&str, &str)]) -> Verdict {
    for (pointer, what) in checks {
        let have = int(object, pointer).unwrap_or(0);
        if have < want {
            return Verdict::Progress(format!("{have}/{want} {what}"));
        }
    }
    Verdict::Ready
}

fn deployment(object: &Value) -> Verdict {
    if let Err(v) = generation_observed(object) {
        return v;
    }
    if let Some(progressing) = condition(object, "Progressing") {
        let reason = progressing.get("reason").and_then(Value::as_str);
        if progressing.get("status").and_then(Value::as_str) == Some("False")
            && reason == Some("ProgressDeadlineExceeded")
        {
            return Verdict::Broken(format!(
                "progress deadline exceeded ({})",
                explain(progressing)
            ));
        }
    }
    let want = int(object, "/spec/replicas").unwrap_or(1);
    let verdict = counts(
        object,
        want,
        &[
            ("/status/updatedReplicas", "replicas updated"),
            ("/status/readyReplicas", "replicas ready"),
            ("/status/availableReplicas", "replicas available"),
        ],
    );
    if verdict != Verdict::Ready {
        return verdict;
    }
    let total = int(object, "/status/replicas").unwrap_or(0);
    if total > want {
        return Verdict::Progress(format!("{} old replicas pending termination", total - want));
    }
    Verdict::Ready
}

fn statefulset(object: &Value) -> Verdict {
    if let Err(v) = generation_observed(object) {
        return v;
    }
    let want = int(object, "/spec/replicas").unwrap_or(1);
    let verdict = counts(object, want, &[("/status/readyReplicas", "replicas ready")]);
    if verdict != Verdict::Ready {
        return verdict;
    }
    let strategy = text(object, "/spec/updateStrategy/type").unwrap_or("RollingUpdate");
    if strategy != "RollingUpdate" {
        // OnDelete: pods change only when someone deletes them; nothing to wait for.
        return Verdict::Ready;
    }
    let partition = int(object, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0);
    let updated = int(object, "/status/updatedReplicas").unwrap_or(0);
    let must_update = (want - partition).max(0);
    if updated < must_update {
        return Verdict::Progress(format!("{updated}/{must_update} replicas updated"));
    }
    if partition == 0 {
        let current = text(object, "/status/currentRevision");
        let update = text(object, "/status/updateRevision");
        if current != update {
            return Verdict::Progress(format!(
                "rolling update to revision {} in progress",
                update.unwrap_or("(unknown)")
            ));
        }
    }
    Verdict::Ready
}

fn daemonset(object: &Value) -> Verdict {
    if let Err(v) = generation_observed(object) {
        return v;
    }
    let want = int(object, "/status/desiredNumberScheduled").unwrap_or(0);
    counts(
        object,
        want,
        &[
            ("/status/currentNumberScheduled", "pods scheduled"),
            ("/status/updatedNumberScheduled", "pods updated"),
            ("/status/numberReady", "pods ready"),
            ("/status/numberAvailable", "pods available"),
        ],
    )
}

fn job(object: &Value) -> Verdict {
    for failed in ["Failed", "FailureTarget"] {
        if condition_is(object, failed, "True") {
            let cond = condition(object, failed).unwrap_or(&Value::Null);
            return Verdict::Broken(format!("job failed ({})", explain(cond)));
        }
    }
    if condition_is(object, "Complete", "True") {
        return Verdict::Ready;
    }
    if object.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        // A suspended Job is what the chart asked for; it will not complete on its own.
        return Verdict::Ready;
    }
    let succeeded = int(object, "/status/succeeded").unwrap_or(0);
    let completions = int(object, "/spec/completions").unwrap_or(1);
    let active = int(object, "/status/active").unwrap_or(0);
    let failed = int(object, "/status/failed").unwrap_or(0);
    let mut why = format!("{succeeded}/{completions} completions, {active} active");
    if failed > 0 {
        why.push_str(&format!(", {failed} failed"));
    }
    Verdict::Progress(why)
}

fn crd(object: &Value) -> Verdict {
    if condition_is(object, "NamesAccepted", "False") {
        let cond = condition(object, "NamesAccepted").unwrap_or(&Value::Null);
        return Verdict::Broken(format!("names not accepted ({})", explain(cond)));
    }
    if condition_is(object, "Established", "True") {
        Verdict::Ready
    } else {
        Verdict::Progress("not established yet".into())
    }
}

/// A `LoadBalancer` Service is ready once the cloud gave it an address; other
/// Services as soon as they exist.
fn service(object: &Value, options: &HealthOptions) -> Verdict {
    if text(object, "/spec/type") != Some("LoadBalancer") || options.accept_pending_load_balancer {
        return Verdict::Ready;
    }
    let has_address = object
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|ingress| {
            ingress.iter().any(|i| {
                ["ip", "hostname"].iter().any(|k| {
                    i.get(k)
                        .and_then(Value::as_str)
                        .is_some_and(|a| !a.is_empty())
                })
            })
        });
    if has_address {
        Verdict::Ready
    } else {
        Verdict::Progress(
            "waiting for a load balancer address (a cluster without load balancers needs health.acceptPendingLoadBalancer)"
                .into(),
        )
    }
}

/// An aggregated API (`APIService`) is ready when the API server can reach it.
fn api_service(object: &Value) -> Verdict {
    match condition(object, "Available") {
        Some(c) if c.get("status").and_then(Value::as_str) == Some("True") => Verdict::Ready,
        Some(c) => Verdict::Progress(format!("not available ({})", explain(c))),
        None => Verdict::Progress("not available yet".into()),
    }
}

/// A webhook whose failure policy is `Fail` and whose service has no ready
/// endpoint rejects every request it intercepts: name the first such.
fn webhook_endpoints(config: &Value, slices: &[Value]) -> Verdict {
    let webhooks = config
        .get("webhooks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for webhook in webhooks {
        if text(webhook, "/failurePolicy") == Some("Ignore") {
            continue;
        }
        let Some((namespace, service)) = webhook_service(webhook) else {
            continue;
        };
        if !service_has_ready_endpoint(slices, namespace, service) {
            let name = text(webhook, "/name").unwrap_or("(unnamed)");
            return Verdict::Progress(format!(
                "webhook {name} calls service {namespace}/{service}, which has no ready endpoint (requests it intercepts are rejected)"
            ));
        }
    }
    Verdict::Ready
}

/// The `(namespace, name)` of the service a webhook calls; `None` for a URL.
pub(crate) fn webhook_service(webhook: &Value) -> Option<(&str, &str)> {
    let service = webhook.pointer("/clientConfig/service")?;
    Some((
        service.get("namespace")?.as_str()?,
        service.get("name")?.as_str()?,
    ))
}

/// The services the webhooks of a configuration call, failure policy `Fail` only.
pub(crate) fn webhook_services(config: &Value) -> Vec<(String, String)> {
    let mut services: Vec<(String, String)> = config
        .get("webhooks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|w| text(w, "/failurePolicy") != Some("Ignore"))
        .filter_map(webhook_service)
        .map(|(ns, name)| (ns.to_owned(), name.to_owned()))
        .collect();
    services.sort();
    services.dedup();
    services
}

/// An endpoint of the service that is ready (an unset `ready` counts as ready,
/// as the EndpointSlice API says).
fn service_has_ready_endpoint(slices: &[Value], namespace: &str, service: &str) -> bool {
    slices
        .iter()
        .filter(|s| {
            text(s, "/metadata/namespace") == Some(namespace)
                && s.pointer("/metadata/labels")
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .and_then(Value::as_str)
                    == Some(service)
        })
        .flat_map(|s| {
            s.get("endpoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .any(|e| e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false))
}

/// The label selector of a service's EndpointSlices.
pub(crate) fn endpoint_slice_selector(service: &str) -> String {
    format!("{SERVICE_NAME_LABEL}={service}")
}

/// Readiness of one pod, with crash loops and image pull failures as failures.
pub(crate) fn pod(object: &Value) -> Verdict {
    match text(object, "/status/phase") {
        Some("Succeeded") => return Verdict::Ready,
        Some("Failed") => {
            let reason = text(object, "/status/reason").unwrap_or("");
            let message = text(object, "/status/message").unwrap_or("");
            let detail = [reason, message]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(": ");
            return Verdict::Broken(if detail.is_empty() {
                "pod failed".into()
            } else {
                format!("pod failed ({detail})")
            });
        }
        _ => {}
    }
    if let Some(broken) = pod_failure(object) {
        return Verdict::Broken(broken);
    }
    if condition_is(object, "Ready", "True") {
        return Verdict::Ready;
    }
    Verdict::Progress(waiting_for(object).unwrap_or_else(|| "not ready".into()))
}

/// What a pod that is not Ready waits for, when the pod says: the
/// scheduler's reason it has no node, or the first waiting container's reason.
fn waiting_for(pod: &Value) -> Option<String> {
    if let Some(scheduled) = condition(pod, "PodScheduled")
        && scheduled.get("status").and_then(Value::as_str) == Some("False")
    {
        return Some(format!("not scheduled ({})", explain(scheduled)));
    }
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|list| pod.pointer(&format!("/status/{list}"))?.as_array())
        .flatten()
        .find_map(|s| {
            let name = s.get("name")?.as_str()?;
            let reason = s.pointer("/state/waiting/reason")?.as_str()?;
            Some(format!("container {name} waiting: {reason}"))
        })
}

/// A container of the pod that crash-loops or cannot get its image: the one
/// signal that fails a workload before its own status says anything. A pod's
/// `Failed` phase is not one: controllers replace such pods and Jobs retry them.
pub(crate) fn pod_failure(pod: &Value) -> Option<String> {
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|list| pod.pointer(&format!("/status/{list}"))?.as_array())
        .flatten()
        .find_map(fatal_container)
}

/// Why a pod is not Ready (the scheduler's reason it has no node, a waiting
/// container, its Ready condition's reason and message, or its phase), or
/// `None` when it is.
pub(crate) fn pod_not_ready(pod: &Value) -> Option<String> {
    if text(pod, "/status/phase") == Some("Succeeded") {
        return None;
    }
    let ready = condition(pod, "Ready");
    if ready.and_then(|c| c.get("status")?.as_str()) == Some("True") {
        return None;
    }
    if let Some(why) = waiting_for(pod) {
        return Some(why);
    }
    match ready {
        Some(c) => Some(format!("not Ready ({})", explain(c))),
        None => {
            let phase = pod
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Unknown");
            Some(format!("not Ready (phase {phase})"))
        }
    }
}

fn fatal_container(status: &Value) -> Option<String> {
    let reason = status.pointer("/state/waiting/reason")?.as_str()?;
    if !FATAL_WAITING.contains(&reason) {
        return None;
    }
    let name = status
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    let restarts = status
        .get("restartCount")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut why = format!("container {name}: {reason} (restarted {restarts} times)");
    if let Some(message) = status
        .pointer("/state/waiting/message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    {
        // Kubelet messages can be long (full image pull errors); keep the start.
        let short: String = message.chars().take(300).collect();
        why.push_str(": ");
        why.push_str(&short);
    }
    Some(why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn pod_not_ready_says_why() {
        let pod =
            |conditions: Value| json!({"status": {"phase": "Running", "conditions": conditions}});
        assert_eq!(
            pod_not_ready(&pod(json!([{"type": "Ready", "status": "True"}]))),
            None
        );
        assert_eq!(
            pod_not_ready(&pod(json!([{"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [app]"}]))).as_deref(),
            Some("not Ready (ContainersNotReady: containers with unready status: [app])")
        );
        assert_eq!(
            pod_not_ready(&pod(json!([{"type": "Ready", "status": "False"}]))).as_deref(),
            Some("not Ready (no reason given)")
        );
        assert_eq!(
            pod_not_ready(&json!({"status": {"phase": "Pending"}})).as_deref(),
            Some("not Ready (phase Pending)")
        );
    }

    /// Every `testdata/health/*.json`: `{"object": ..., "related"?: [...],
    /// "options"?: {"acceptPendingLoadBalancer": bool}, "expect": {"health", "reason"?}}`.
    /// `related` holds the pods, ReplicaSets and EndpointSlices the runner
    /// would read for the object.
    #[test]
    fn fixtures() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/health");
        let mut checked = 0;
        let mut failures = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let case: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let options = HealthOptions {
                accept_pending_load_balancer: case
                    .pointer("/options/acceptPendingLoadBalancer")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            };
            let related =
                Related::from_objects(case["related"].as_array().into_iter().flatten().cloned());
            let got = judge(&case["object"], &related, &options);

            let want = match (
                case["expect"]["health"].as_str(),
                case["expect"]["reason"].as_str(),
            ) {
                (Some("current"), None) => Health::Current,
                (Some("in-progress"), Some(r)) => Health::InProgress(r.to_owned()),
                (Some("failed"), Some(r)) => Health::Failed(r.to_owned()),
                other => panic!("{}: bad expectation {other:?}", path.display()),
            };
            if got != want {
                failures.push(format!(
                    "{}:\n  want {want:?}\n  got  {got:?}",
                    path.display()
                ));
            }
            checked += 1;
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(
            checked >= 40,
            "only {checked} fixtures found in {}",
            dir.display()
        );
    }

    #[test]
    fn objects_without_identity_fail() {
        assert!(matches!(
            evaluate(&json!({"kind": "Deployment"})),
            Health::Failed(_)
        ));
        assert!(matches!(evaluate(&json!("text")), Health::Failed(_)));
    }

    #[test]
    fn rules_match_group_not_just_kind() {
        let core_deployment =
            json!({"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "x"}});
        assert_eq!(
            judged_kind(&ObjectRef::from_object(&core_deployment).unwrap()),
            None
        );
        let beta =
            json!({"apiVersion": "apps/v1beta2", "kind": "StatefulSet", "metadata": {"name": "x"}});
        assert_eq!(
            judged_kind(&ObjectRef::from_object(&beta).unwrap()),
            Some(Kind::StatefulSet)
        );
    }

    #[test]
    fn status_with_wrong_types_is_in_progress_not_a_panic() {
        let odd = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "namespace": "n", "generation": "two"},
            "spec": {"replicas": "3"}, "status": {"conditions": "none", "readyReplicas": null}});
        assert!(
            matches!(evaluate(&odd), Health::InProgress(_)),
            "{:?}",
            evaluate(&odd)
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {"containerStatuses": [{"state": {"waiting": {"reason": 5}}}, "junk"]}});
        assert_eq!(
            evaluate(&pod),
            Health::InProgress("Pod p: not ready".into())
        );
    }

    #[test]
    fn long_kubelet_messages_are_cut() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
            "status": {"containerStatuses": [{"name": "c", "restartCount": 1,
                "state": {"waiting": {"reason": "ErrImagePull", "message": "x".repeat(5000)}}}]}});
        let Health::Failed(reason) = evaluate(&pod) else {
            panic!()
        };
        assert!(reason.len() < 400, "{}", reason.len());
    }
}
