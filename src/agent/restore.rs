//! `coxswain restore`: restores the Velero backup the agent took before a
//! release's upgrade (docs/backup.md). It reads the subscription (the
//! release's namespace from its status, Velero's namespace from its spec),
//! picks the backup (the one named, which must be the agent's backup of that
//! release, or the newest completed one), creates a Velero `Restore` with
//! `existingResourcePolicy: update` and waits, bounded, for its end.

use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use serde_json::Value;

use super::backup::{self, Phase};
use crate::crd::ChannelSubscription;
use crate::format::Timestamp;
use crate::site_verify::describe;

/// What to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The subscription's namespace.
    pub namespace: String,
    /// The subscription's name.
    pub subscription: String,
    /// The release.
    pub release: String,
    /// The backup; `None`: the newest completed one of the release.
    pub backup: Option<String>,
    /// How long the restore may take.
    pub timeout: Duration,
}

/// A restore that completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The backup restored.
    pub backup: String,
    /// The `Restore` object's name.
    pub restore: String,
    /// Velero's namespace.
    pub velero_namespace: String,
    /// The release's namespace.
    pub namespace: String,
    /// Items restored, when Velero says.
    pub items: Option<u64>,
}

/// Why a restore did not happen or did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The subscription could not be read.
    #[error("subscription {namespace}/{name}: {reason}")]
    Subscription {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The API server's answer.
        reason: String,
    },
    /// The subscription's status names no such release.
    #[error(
        "subscription {subscription} has no release `{release}` in its status: name one of {known}"
    )]
    UnknownRelease {
        /// `namespace/name`.
        subscription: String,
        /// The release asked for.
        release: String,
        /// The releases it has.
        known: String,
    },
    /// No completed backup of the release exists.
    #[error(
        "no completed backup of release `{release}` (namespace {namespace}) in Velero's namespace \
         {velero_namespace}: the agent takes one before an upgrade whose channel or subscription asks for it"
    )]
    NoBackup {
        /// The release.
        release: String,
        /// Its namespace.
        namespace: String,
        /// Velero's namespace.
        velero_namespace: String,
    },
    /// The backup named is not one the agent took of this release.
    #[error("backup {backup} in {velero_namespace} is {reason}")]
    WrongBackup {
        /// The backup named.
        backup: String,
        /// Velero's namespace.
        velero_namespace: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Velero refused or could not be asked.
    #[error("{0}")]
    Velero(String),
    /// The restore ended without completing, or did not end in time.
    #[error("restore {restore} of backup {backup}: {reason}")]
    NotCompleted {
        /// The `Restore`'s name.
        restore: String,
        /// The backup.
        backup: String,
        /// Its end, or how long it ran.
        reason: String,
    },
}

fn velero_api(
    client: &kube::Client,
    namespace: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("velero.io", "v1", kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
    Api::namespaced_with(client.clone(), namespace, &resource)
}

fn to_value(object: &DynamicObject) -> Value {
    // DynamicObject is plain data (maps, strings, numbers): it always serializes.
    serde_json::to_value(object).unwrap_or_default()
}

/// Restores the backup of `opts.release` and waits for the restore's end.
pub async fn restore(
    client: &kube::Client,
    opts: &RestoreOptions,
) -> Result<Restored, RestoreError> {
    let subs: Api<ChannelSubscription> = Api::namespaced(client.clone(), &opts.namespace);
    let sub = subs
        .get(&opts.subscription)
        .await
        .map_err(|e| RestoreError::Subscription {
            namespace: opts.namespace.clone(),
            name: opts.subscription.clone(),
            reason: describe(&e),
        })?;
    let releases = sub.status.map(|s| s.releases).unwrap_or_default();
    let Some(release) = releases.iter().find(|r| r.name == opts.release) else {
        let known: Vec<&str> = releases.iter().map(|r| r.name.as_str()).collect();
        return Err(RestoreError::UnknownRelease {
            subscription: format!("{}/{}", opts.namespace, opts.subscription),
            release: opts.release.clone(),
            known: if known.is_empty() {
                "(none yet)".to_owned()
            } else {
                known.join(", ")
            },
        });
    };
    let namespace = release.namespace.clone();
    let velero_namespace = sub.spec.velero.namespace.clone();
    let backups = velero_api(client, &velero_namespace, "Backup", "backups");
    let velero_err = |what: &str, e: &kube::Error| match e {
        kube::Error::Api(status)
            if status.code == 404 && !status.message.contains("namespaces") =>
        {
            RestoreError::Velero(format!(
                "{what}: Velero is not installed (the cluster serves no velero.io/v1)"
            ))
        }
        _ => RestoreError::Velero(format!("{what}: {}", describe(e))),
    };
    let backup = match &opts.backup {
        Some(name) => {
            let got = backups.get(name).await.map_err(|e| match &e {
                kube::Error::Api(status) if status.code == 404 => RestoreError::WrongBackup {
                    backup: name.clone(),
                    velero_namespace: velero_namespace.clone(),
                    reason: "not there".to_owned(),
                },
                _ => velero_err(&format!("read backup {name}"), &e),
            })?;
            let value = to_value(&got);
            if !backup::is_backup_of(&value, &opts.release, &namespace) {
                return Err(RestoreError::WrongBackup {
                    backup: name.clone(),
                    velero_namespace,
                    reason: format!(
                        "not the agent's backup of release `{}` in {namespace} (its labels say otherwise)",
                        opts.release
                    ),
                });
            }
            if let phase @ (Phase::Running | Phase::Failed(_)) = backup::phase(&value) {
                return Err(RestoreError::WrongBackup {
                    backup: name.clone(),
                    velero_namespace,
                    reason: match phase {
                        Phase::Failed(why) => format!("not complete: {why}"),
                        _ => "not complete yet".to_owned(),
                    },
                });
            }
            name.clone()
        }
        None => {
            let list = backups
                .list(&ListParams::default().labels(&format!(
                    "{}={}",
                    backup::LABEL_RELEASE,
                    opts.release
                )))
                .await
                .map_err(|e| velero_err("list backups", &e))?;
            let items: Vec<Value> = list.items.iter().map(to_value).collect();
            backup::newest_backup(&items, &opts.release, &namespace).ok_or_else(|| {
                RestoreError::NoBackup {
                    release: opts.release.clone(),
                    namespace: namespace.clone(),
                    velero_namespace: velero_namespace.clone(),
                }
            })?
        }
    };

    let name = backup::restore_name(&backup, Timestamp::now());
    let target = RestoreTarget {
        name: &name,
        velero_namespace: &velero_namespace,
        backup: &backup,
        release: &opts.release,
        namespace: &namespace,
    };
    match velero_restore(client, &target, opts.timeout).await {
        Ok(items) => Ok(Restored {
            backup,
            restore: name,
            velero_namespace,
            namespace,
            items,
        }),
        Err(RestoreFailure::Create(why)) => Err(RestoreError::Velero(why)),
        Err(RestoreFailure::Ended(reason)) => Err(RestoreError::NotCompleted {
            restore: name,
            backup,
            reason,
        }),
    }
}

/// A restore to create.
#[derive(Debug, Clone, Copy)]
pub struct RestoreTarget<'a> {
    /// The `Restore`'s name ([`backup::restore_name`]).
    pub name: &'a str,
    /// Velero's namespace.
    pub velero_namespace: &'a str,
    /// The backup restored.
    pub backup: &'a str,
    /// The release.
    pub release: &'a str,
    /// Its namespace: what is restored.
    pub namespace: &'a str,
}

/// Why [`velero_restore`] did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreFailure {
    /// The `Restore` could not be created: why.
    Create(String),
    /// It ended otherwise than `Completed`, or not in time: why.
    Ended(String),
}

impl std::fmt::Display for RestoreFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Create(why) | Self::Ended(why) => f.write_str(why),
        }
    }
}

/// Creates the `Restore` and waits, at most `timeout`, for its end; the items
/// restored, when Velero says.
pub async fn velero_restore(
    client: &kube::Client,
    target: &RestoreTarget<'_>,
    timeout: Duration,
) -> Result<Option<u64>, RestoreFailure> {
    let name = target.name;
    let velero_namespace = target.velero_namespace;
    let object: DynamicObject = serde_json::from_value(backup::restore_object(
        name,
        velero_namespace,
        target.backup,
        target.release,
        target.namespace,
    ))
    .map_err(|e| RestoreFailure::Create(format!("restore {name}: {e}")))?;
    let restores = velero_api(client, velero_namespace, "Restore", "restores");
    restores
        .create(&PostParams::default(), &object)
        .await
        .map_err(|e| RestoreFailure::Create(format!("create restore {name}: {}", describe(&e))))?;
    let started = Instant::now();
    loop {
        let last = match restores.get(name).await {
            Ok(got) => {
                let value = to_value(&got);
                match backup::phase_of("velero restore", &value) {
                    Phase::Completed => {
                        return Ok(value
                            .pointer("/status/progress/itemsRestored")
                            .and_then(Value::as_u64));
                    }
                    Phase::Failed(why) => {
                        return Err(RestoreFailure::Ended(format!(
                            "{why} (velero restore describe {name} -n {velero_namespace})"
                        )));
                    }
                    Phase::Running => value
                        .pointer("/status/phase")
                        .and_then(Value::as_str)
                        .unwrap_or("New")
                        .to_owned(),
                }
            }
            Err(e) => format!("unread: {}", describe(&e)),
        };
        if started.elapsed() >= timeout {
            return Err(RestoreFailure::Ended(format!(
                "did not complete within {}s (phase {last}); Velero goes on with it",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_secs(1).min(timeout.saturating_sub(started.elapsed())))
            .await;
    }
}
