//! Which pods belong to a workload's current revision, and how to select them.
//!
//! Crash-loop detection must only look at pods of the revision being rolled
//! out: when an upgrade fixes a crash-looping release, the old pods keep
//! crash-looping until they are replaced, and must not fail the fix.

use serde_json::Value;

use super::rules::Kind;

/// Label the Deployment controller puts on a ReplicaSet and its pods.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Label the StatefulSet and DaemonSet controllers put on pods.
const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";
/// DaemonSet pods carry their template's generation.
const POD_TEMPLATE_GENERATION: &str = "pod-template-generation";
/// Deployment revision annotation, on the Deployment and its ReplicaSets.
const DEPLOYMENT_REVISION: &str = "deployment.kubernetes.io/revision";

/// A workload's `spec.selector` as a label selector string for a LIST call;
/// `None` when it is missing or empty (which would select every pod).
pub fn label_selector(workload: &Value) -> Option<String> {
    let selector = workload.pointer("/spec/selector")?;
    let mut terms = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (key, value) in labels {
            terms.push(format!("{key}={}", value.as_str()?));
        }
    }
    for expr in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr.get("key")?.as_str()?;
        let values = || -> Option<String> {
            let list: Option<Vec<&str>> = expr
                .get("values")?
                .as_array()?
                .iter()
                .map(Value::as_str)
                .collect();
            Some(list?.join(","))
        };
        terms.push(match expr.get("operator")?.as_str()? {
            "In" => format!("{key} in ({})", values()?),
            "NotIn" => format!("{key} notin ({})", values()?),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        });
    }
    (!terms.is_empty()).then(|| terms.join(","))
}

/// The `pod-template-hash` of a Deployment's current ReplicaSet: the one it
/// owns whose revision annotation equals the Deployment's.
pub fn current_replicaset_hash(deployment: &Value, replicasets: &[Value]) -> Option<String> {
    let uid = deployment.pointer("/metadata/uid")?.as_str()?;
    let revision = annotation(deployment, DEPLOYMENT_REVISION)?;
    replicasets
        .iter()
        .filter(|rs| owned_by(rs, uid))
        .find(|rs| annotation(rs, DEPLOYMENT_REVISION) == Some(revision))
        .and_then(|rs| label(rs, POD_TEMPLATE_HASH))
        .map(str::to_owned)
}

/// True when `pod` was made from the workload's current template. When the
/// revision cannot be told (labels missing), the pod counts as current.
pub fn pod_of_current_revision(
    workload: &Value,
    pod: &Value,
    replicaset_hash: Option<&str>,
) -> bool {
    let Some(obj) = super::ObjectRef::from_object(workload) else {
        return true;
    };
    match super::rules::judged_kind(&obj) {
        Some(Kind::Deployment) => match (replicaset_hash, label(pod, POD_TEMPLATE_HASH)) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        },
        Some(Kind::StatefulSet) => {
            let update = workload
                .pointer("/status/updateRevision")
                .and_then(Value::as_str);
            match (update, label(pod, CONTROLLER_REVISION_HASH)) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            }
        }
        Some(Kind::DaemonSet) => {
            let generation = workload
                .pointer("/metadata/generation")
                .and_then(Value::as_i64);
            match (generation, label(pod, POD_TEMPLATE_GENERATION)) {
                (Some(want), Some(have)) => have == want.to_string(),
                _ => true,
            }
        }
        _ => true,
    }
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.pointer("/metadata/annotations")?.get(key)?.as_str()
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.pointer("/metadata/labels")?.get(key)?.as_str()
}

fn owned_by(object: &Value, uid: &str) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_become_label_queries() {
        let d = json!({"spec": {"selector": {
        "matchLabels": {"app": "wiki", "tier": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["x"]},
            {"key": "team", "operator": "Exists"}
        ]}}});
        assert_eq!(
            label_selector(&d).unwrap(),
            "app=wiki,tier=web,env in (a,b),!canary,zone notin (x),team"
        );
        assert_eq!(label_selector(&json!({"spec": {"selector": {}}})), None);
        assert_eq!(label_selector(&json!({"spec": {}})), None);
        let unknown =
            json!({"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}});
        assert_eq!(label_selector(&unknown), None);
    }

    fn rs(uid_owner: &str, revision: &str, hash: &str) -> Value {
        json!({"metadata": {
            "annotations": {DEPLOYMENT_REVISION: revision},
            "labels": {POD_TEMPLATE_HASH: hash},
            "ownerReferences": [{"uid": uid_owner}]}})
    }

    #[test]
    fn finds_the_current_replicaset() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "w", "uid": "d1", "annotations": {DEPLOYMENT_REVISION: "3"}}});
        let sets = [
            rs("d1", "2", "old"),
            rs("other", "3", "foreign"),
            rs("d1", "3", "new"),
        ];
        assert_eq!(current_replicaset_hash(&d, &sets).as_deref(), Some("new"));
        assert_eq!(current_replicaset_hash(&d, &sets[..2]), None);

        let pod = |hash: &str| json!({"metadata": {"labels": {POD_TEMPLATE_HASH: hash}}});
        assert!(pod_of_current_revision(&d, &pod("new"), Some("new")));
        assert!(!pod_of_current_revision(&d, &pod("old"), Some("new")));
        assert!(pod_of_current_revision(&d, &pod("old"), None));
    }

    #[test]
    fn statefulset_and_daemonset_pods_by_revision_labels() {
        let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "status": {"updateRevision": "db-2"}});
        let pod = |k: &str, v: &str| json!({"metadata": {"labels": {k: v}}});
        assert!(pod_of_current_revision(
            &sts,
            &pod(CONTROLLER_REVISION_HASH, "db-2"),
            None
        ));
        assert!(!pod_of_current_revision(
            &sts,
            &pod(CONTROLLER_REVISION_HASH, "db-1"),
            None
        ));
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "generation": 4}});
        assert!(pod_of_current_revision(
            &ds,
            &pod(POD_TEMPLATE_GENERATION, "4"),
            None
        ));
        assert!(!pod_of_current_revision(
            &ds,
            &pod(POD_TEMPLATE_GENERATION, "3"),
            None
        ));
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"}});
        assert!(pod_of_current_revision(&job, &pod("x", "y"), None));
    }
}
