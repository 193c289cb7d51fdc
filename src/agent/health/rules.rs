//! Readiness rules, after kstatus: pure functions from one Kubernetes object
//! (as JSON) to [`Health`]. No I/O here; the runner fetches, these judge.

use serde_json::Value;

use super::{Health, ObjectRef};

/// Container waiting reasons that will not fix themselves within a health
/// timeout: fail at once instead of waiting for it to pass.
const FATAL_WAITING: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
];

/// Evaluates any object. Kinds without readiness (Service, ConfigMap, Secret,
/// RBAC, custom resources, ...) are current as soon as they exist.
pub fn evaluate(object: &Value) -> Health {
    let Some(obj) = ObjectRef::from_object(object) else {
        return Health::Failed("object without apiVersion, kind or metadata.name".into());
    };
    let verdict = match judged_kind(&obj) {
        Some(kind) => {
            if object.pointer("/metadata/deletionTimestamp").is_some() {
                Verdict::Progress("being deleted".into())
            } else {
                kind.rule()(object)
            }
        }
        None => Verdict::Ready,
    };
    verdict.about(&obj)
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
}

impl Kind {
    fn rule(self) -> fn(&Value) -> Verdict {
        match self {
            Self::Deployment => deployment,
            Self::StatefulSet => statefulset,
            Self::DaemonSet => daemonset,
            Self::Job => job,
            Self::CustomResourceDefinition => crd,
            Self::Pod => pod,
        }
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
    if let Some(scheduled) = condition(object, "PodScheduled")
        && scheduled.get("status").and_then(Value::as_str) == Some("False")
    {
        return Verdict::Progress(format!("not scheduled ({})", explain(scheduled)));
    }
    let waiting = object
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|s| {
            let name = s.get("name")?.as_str()?;
            let reason = s.pointer("/state/waiting/reason")?.as_str()?;
            Some(format!("container {name} waiting: {reason}"))
        });
    Verdict::Progress(waiting.unwrap_or_else(|| "not ready".into()))
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

/// Why a pod is not Ready (its Ready condition's reason and message, or its
/// phase), or `None` when it is.
pub(crate) fn pod_not_ready(pod: &Value) -> Option<String> {
    let ready = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"));
    match ready {
        Some(c) if c.get("status").and_then(Value::as_str) == Some("True") => None,
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

    /// Every `testdata/health/*.json`: `{"object": ..., "expect": {"health", "reason"?}}`.
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
            let got = evaluate(&case["object"]);
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
