//! Wakes a health check as soon as something it judges changes, instead of
//! after a fixed sleep: metadata-only watches (kube-runtime watchers) of the
//! release's judged objects, and of the pods, replica sets and endpoint slices
//! their health depends on, in the namespaces the release uses.
//!
//! The watches only say *when* to look again; the check itself still reads
//! and judges every object with the same rules, so a missed or refused watch
//! (narrowed RBAC, an API server restarting) costs only speed: the check then
//! falls back to its poll interval. Watches are metadata-only because every
//! change of an object, status included, moves its `resourceVersion`, and the
//! check needs nothing more from the event.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::discovery::Scope;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::ObjectRef;
use super::rules::{Kind, judged_kind};

/// One watch: a resource in a namespace (or cluster-wide), and which of its
/// objects' changes matter (`None`: any of them, e.g. the pods of a workload,
/// whose names are not known in advance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WatchTarget {
    /// What is watched.
    pub resource: ApiResource,
    /// `None` for a cluster-scoped resource.
    pub namespace: Option<String>,
    /// The names whose changes wake the check; `None`: every change.
    pub names: Option<BTreeSet<String>>,
}

/// A resource (group, version, plural) in a namespace (`None`: cluster-wide).
type ResourceIn = (String, String, String, Option<String>);

/// The watches that cover everything the rules read for `objects`, each
/// paired with its resolved resource and scope (`None` when its kind is not
/// served yet: the poll interval covers it). Objects without a rule are only
/// checked to exist and are not watched.
pub(crate) fn watch_targets(
    objects: &[(ObjectRef, Option<(ApiResource, Scope)>)],
) -> Vec<WatchTarget> {
    // Judged kinds → the names judged; related kinds → their namespaces.
    let mut named: BTreeMap<ResourceIn, (ApiResource, BTreeSet<String>)> = BTreeMap::new();
    let mut pods: BTreeSet<String> = BTreeSet::new();
    let mut replica_sets: BTreeSet<String> = BTreeSet::new();
    let mut endpoints = false;
    let mut namespaces: BTreeSet<String> = BTreeSet::new();
    for (object, resolved) in objects {
        // Discovery, not the manifest, knows the scope (helm ignores a
        // namespace on a cluster-scoped object).
        let namespace = match resolved {
            Some((_, Scope::Cluster)) => None,
            _ => object.namespace.clone(),
        };
        if let Some(ns) = &namespace {
            namespaces.insert(ns.clone());
        }
        let (Some(kind), Some((resource, _))) = (judged_kind(object), resolved) else {
            continue;
        };
        let key = (
            resource.group.clone(),
            resource.version.clone(),
            resource.plural.clone(),
            namespace.clone(),
        );
        named
            .entry(key)
            .or_insert_with(|| (resource.clone(), BTreeSet::new()))
            .1
            .insert(object.name.clone());
        if kind.has_pods()
            && let Some(ns) = namespace.clone()
        {
            pods.insert(ns.clone());
            if kind == Kind::Deployment {
                replica_sets.insert(ns);
            }
        }
        endpoints |= kind.has_endpoints();
    }
    let mut targets: Vec<WatchTarget> = named
        .into_iter()
        .map(|((.., namespace), (resource, names))| WatchTarget {
            resource,
            namespace,
            names: Some(names),
        })
        .collect();
    let every = |resource: ApiResource, namespaces: &BTreeSet<String>| {
        namespaces
            .iter()
            .map(|ns| WatchTarget {
                resource: resource.clone(),
                namespace: Some(ns.clone()),
                names: None,
            })
            .collect::<Vec<_>>()
    };
    targets.extend(every(ApiResource::erase::<Pod>(&()), &pods));
    targets.extend(every(ApiResource::erase::<ReplicaSet>(&()), &replica_sets));
    if endpoints {
        // A webhook's service is usually in the release's own namespace; one
        // elsewhere is seen at the poll interval.
        targets.extend(every(ApiResource::erase::<EndpointSlice>(&()), &namespaces));
    }
    targets
}

/// Whether a watch event says that an object the check judges changed.
/// The initial listing is not a change (the check has just read everything);
/// its end after a reconnect is, since events may have been missed.
fn wakes(
    event: &Event<PartialObjectMeta<DynamicObject>>,
    names: Option<&BTreeSet<String>>,
) -> bool {
    let named = |meta: &PartialObjectMeta<DynamicObject>| {
        names.is_none_or(|names| {
            meta.metadata
                .name
                .as_ref()
                .is_some_and(|name| names.contains(name))
        })
    };
    match event {
        Event::Apply(meta) | Event::Delete(meta) => named(meta),
        Event::Init | Event::InitApply(_) => false,
        Event::InitDone => true,
    }
}

/// Running watches; dropping it stops them.
pub(crate) struct Wakeups {
    changed: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl Wakeups {
    /// Starts one watch per target; each change it reports wakes
    /// [`Wakeups::changed`].
    pub(crate) fn start(client: &Client, targets: Vec<WatchTarget>) -> Self {
        let changed = Arc::new(Notify::new());
        let tasks = targets
            .into_iter()
            .map(|target| {
                // `Api<PartialObjectMeta<_>>` asks for metadata only.
                let api: Api<PartialObjectMeta<DynamicObject>> = match &target.namespace {
                    Some(ns) => Api::namespaced_with(client.clone(), ns, &target.resource),
                    None => Api::all_with(client.clone(), &target.resource),
                };
                let changed = changed.clone();
                tokio::spawn(async move {
                    // Served from the API server's cache: the check reads the
                    // objects itself, the listing only starts the watch.
                    let config = watcher::Config::default().any_semantic();
                    let stream = watcher::watcher(api, config).default_backoff();
                    futures::pin_mut!(stream);
                    while let Some(event) = stream.next().await {
                        match event {
                            Ok(event) if wakes(&event, target.names.as_ref()) => {
                                changed.notify_one();
                            }
                            Ok(_) => {}
                            // Refused or broken: the backoff retries; until
                            // then the poll interval covers it.
                            Err(e) => {
                                tracing::debug!(resource = %target.resource.plural, namespace = ?target.namespace, error = %e, "health watch interrupted");
                            }
                        }
                    }
                })
            })
            .collect();
        Self { changed, tasks }
    }

    /// How many watches run.
    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Returns when a watched object changed since the last call (at once
    /// when one did in between).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::GroupVersionKind;

    fn object(api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: ns.map(Into::into),
            name: name.into(),
        }
    }

    fn resolved(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        scope: Scope,
    ) -> Option<(ApiResource, Scope)> {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        Some((ApiResource::from_gvk_with_plural(&gvk, plural), scope))
    }

    fn described(targets: &[WatchTarget]) -> Vec<String> {
        targets
            .iter()
            .map(|t| {
                let names = t.names.as_ref().map_or("*".to_owned(), |n| {
                    n.iter().cloned().collect::<Vec<_>>().join(",")
                });
                format!(
                    "{} {} {names}",
                    t.resource.plural,
                    t.namespace.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    #[test]
    fn workloads_are_watched_by_name_with_their_pods_and_replica_sets() {
        let deploy = resolved("apps", "v1", "Deployment", "deployments", Scope::Namespaced);
        let objects = vec![
            (
                object("apps/v1", "Deployment", Some("wiki"), "web"),
                deploy.clone(),
            ),
            (
                object("apps/v1", "Deployment", Some("wiki"), "worker"),
                deploy,
            ),
            (
                object("apps/v1", "StatefulSet", Some("db"), "pg"),
                resolved(
                    "apps",
                    "v1",
                    "StatefulSet",
                    "statefulsets",
                    Scope::Namespaced,
                ),
            ),
            // No rule: only checked to exist, not watched (its namespace still counts).
            (
                object("v1", "ConfigMap", Some("wiki"), "settings"),
                resolved("", "v1", "ConfigMap", "configmaps", Scope::Namespaced),
            ),
            // A kind not served yet: the poll covers it.
            (object("example.org/v1", "Widget", Some("wiki"), "w"), None),
        ];
        assert_eq!(
            described(&watch_targets(&objects)),
            [
                "deployments wiki web,worker",
                "statefulsets db pg",
                "pods db *",
                "pods wiki *",
                "replicasets wiki *",
            ]
        );
    }

    #[test]
    fn cluster_scoped_kinds_drop_the_namespace_and_webhooks_add_endpoint_slices() {
        let objects = vec![
            (
                object(
                    "apiextensions.k8s.io/v1",
                    "CustomResourceDefinition",
                    Some("ignored"),
                    "widgets.example.org",
                ),
                resolved(
                    "apiextensions.k8s.io",
                    "v1",
                    "CustomResourceDefinition",
                    "customresourcedefinitions",
                    Scope::Cluster,
                ),
            ),
            (
                object(
                    "admissionregistration.k8s.io/v1",
                    "ValidatingWebhookConfiguration",
                    None,
                    "hook",
                ),
                resolved(
                    "admissionregistration.k8s.io",
                    "v1",
                    "ValidatingWebhookConfiguration",
                    "validatingwebhookconfigurations",
                    Scope::Cluster,
                ),
            ),
            (
                object("v1", "Service", Some("certs"), "webhook"),
                resolved("", "v1", "Service", "services", Scope::Namespaced),
            ),
        ];
        assert_eq!(
            described(&watch_targets(&objects)),
            [
                "services certs webhook",
                "validatingwebhookconfigurations - hook",
                "customresourcedefinitions - widgets.example.org",
                "endpointslices certs *",
            ]
        );
    }

    #[test]
    fn only_changes_of_judged_objects_wake_and_the_initial_listing_does_not() {
        let meta = |name: &str| PartialObjectMeta::<DynamicObject> {
            types: None,
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            _phantom: std::marker::PhantomData,
        };
        let names: BTreeSet<String> = ["web".to_owned()].into();
        assert!(wakes(&Event::Apply(meta("web")), Some(&names)));
        assert!(wakes(&Event::Delete(meta("web")), Some(&names)));
        assert!(!wakes(&Event::Apply(meta("other")), Some(&names)));
        assert!(wakes(&Event::Apply(meta("web-7d9f-abcde")), None));
        assert!(!wakes(&Event::Init, None));
        assert!(!wakes(&Event::InitApply(meta("web")), Some(&names)));
        assert!(wakes(&Event::InitDone, Some(&names)));
    }
}
