//! Act: the small trait through which the executor and the repair change
//! releases and check their health, and its implementation on real parts
//! ([`ClusterOperator`]: the helm binary, helm's storage, the health check).
//!
//! Decisions such as "the rollback fails", "health times out after a
//! rollback", the channel rollback policy and every repair case are unit
//! tested against a scripted [`Operator`]; the e2e tests are the proof with
//! real parts. Errors are sentences for people (they end up in the status).

use std::path::Path;
use std::time::Duration;

use futures::future::BoxFuture;

use super::backup::{self, BackupTarget};
use super::crds::{CrdApply, CrdChanges};
use super::executor::HealthDetail;
use super::gate::Gate;
use super::restore::RestoreTarget;
use crate::chart::crds::ChartCrd;
use crate::health::{HealthCheck, HealthOptions};
use crate::helm::{
    HelmCli, ReleaseStatus, RollbackOptions, TestOptions, UninstallOptions, UpgradeOptions,
};
use crate::plan::ReleaseId;
use crate::site_verify::describe;

/// What an upgrade made.
pub struct Upgraded {
    /// The new revision.
    pub revision: u32,
    /// Its manifest, as the upgrade printed it (may hold rendered Secrets:
    /// never logged); the health check reads it instead of asking helm again.
    pub manifest: Option<String>,
}

/// What the agent does to a release.
pub trait Operator: Send + Sync {
    /// `helm upgrade --install` with exactly `values`: the new revision.
    fn upgrade<'a>(
        &'a self,
        id: &'a ReleaseId,
        chart: &'a Path,
        values: &'a serde_json::Value,
        opts: &'a UpgradeOptions,
    ) -> BoxFuture<'a, Result<Upgraded, String>>;
    /// Creates or updates the chart's CRDs as `how` says, before an install
    /// or upgrade (see [`super::crds`]); what was done to each.
    fn apply_crds<'a>(
        &'a self,
        id: &'a ReleaseId,
        crds: &'a [ChartCrd],
        how: CrdApply,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<CrdChanges, String>>;
    /// `helm test`.
    fn test<'a>(
        &'a self,
        id: &'a ReleaseId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// `helm rollback` to exactly `revision`; the revision it made, when helm says.
    fn rollback<'a>(
        &'a self,
        id: &'a ReleaseId,
        revision: u32,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<u32>, String>>;
    /// `helm uninstall`.
    fn uninstall<'a>(
        &'a self,
        id: &'a ReleaseId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// The latest revision, when helm can tell.
    fn revision<'a>(&'a self, id: &'a ReleaseId) -> BoxFuture<'a, Option<u32>>;
    /// Marks `revision` failed in helm's storage, if it is still `status`.
    fn unlock<'a>(
        &'a self,
        id: &'a ReleaseId,
        revision: u32,
        status: ReleaseStatus,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// The health check of the latest revision, object by object, from
    /// `manifest` when the caller has it (else helm's); `Err` when it could
    /// not run at all (the manifest could not be read).
    fn health<'a>(
        &'a self,
        id: &'a ReleaseId,
        options: &'a HealthOptions,
        timeout: Duration,
        manifest: Option<&'a str>,
    ) -> BoxFuture<'a, Result<HealthDetail, String>>;
    /// Why the API server does not answer now, or `None` when it does: a
    /// helm call that failed while it did not answer was cut off, it said
    /// nothing about the release.
    fn api_unreachable(&self) -> BoxFuture<'_, Option<String>>;
    /// Creates the Velero `Backup` of `target` and waits until it completed,
    /// at most `timeout`; why not otherwise (it failed, timed out, or Velero
    /// is not installed).
    fn backup<'a>(
        &'a self,
        target: &'a BackupTarget<'a>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Creates the Velero `Restore` of `target` and waits until it completed,
    /// at most `timeout`; why not otherwise.
    fn restore<'a>(
        &'a self,
        target: &'a RestoreTarget<'a>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// The [`Operator`] on real parts.
pub struct ClusterOperator<'a> {
    /// The helm binary.
    pub helm: &'a HelmCli,
    /// The health checker.
    pub health: &'a HealthCheck,
    /// For helm's storage.
    pub client: &'a kube::Client,
    /// Where helm keeps its release records.
    pub driver: crate::helm::storage::Driver,
    /// Fencing: an unlock starts only while the gate is open.
    pub gate: &'a Gate,
}

/// A helm error as one line: said once. Most helm errors already name the command
/// (`helm upgrade for release ... failed`); only the others get `what` in front, so a
/// message never reads "helm upgrade: helm upgrade for release ... failed".
fn helm_failure(what: &str, error: &dyn std::error::Error) -> String {
    let text = describe(error);
    if text.starts_with("helm ") {
        text
    } else {
        format!("{what}: {text}")
    }
}

impl Operator for ClusterOperator<'_> {
    fn upgrade<'a>(
        &'a self,
        id: &'a ReleaseId,
        chart: &'a Path,
        values: &'a serde_json::Value,
        opts: &'a UpgradeOptions,
    ) -> BoxFuture<'a, Result<Upgraded, String>> {
        Box::pin(async move {
            self.helm
                .upgrade_install(&id.name, &id.namespace, chart, values, opts)
                .await
                .map(|made| Upgraded {
                    revision: made.version,
                    // An empty manifest is what older output looks like: ask helm.
                    manifest: Some(made.manifest.as_str().to_owned()).filter(|m| !m.is_empty()),
                })
                .map_err(|e| helm_failure("helm upgrade", &e))
        })
    }

    fn apply_crds<'a>(
        &'a self,
        _: &'a ReleaseId,
        crds: &'a [ChartCrd],
        how: CrdApply,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<CrdChanges, String>> {
        Box::pin(super::crds::apply(self.client, crds, how, timeout))
    }

    fn test<'a>(
        &'a self,
        id: &'a ReleaseId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let opts = TestOptions {
                timeout,
                logs: false,
            };
            self.helm
                .test(&id.name, &id.namespace, &opts)
                .await
                .map(drop)
                .map_err(|e| helm_failure("helm test", &e))
        })
    }

    fn rollback<'a>(
        &'a self,
        id: &'a ReleaseId,
        revision: u32,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<u32>, String>> {
        Box::pin(async move {
            let opts = RollbackOptions {
                timeout,
                ..RollbackOptions::default()
            };
            self.helm
                .rollback(&id.name, &id.namespace, revision, &opts)
                .await
                .map_err(|e| helm_failure(&format!("helm rollback to revision {revision}"), &e))?;
            Ok(self.revision(id).await)
        })
    }

    fn uninstall<'a>(
        &'a self,
        id: &'a ReleaseId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let opts = UninstallOptions {
                timeout,
                keep_history: false,
                ignore_not_found: true,
            };
            self.helm
                .uninstall(&id.name, &id.namespace, &opts)
                .await
                .map_err(|e| helm_failure("helm uninstall", &e))
        })
    }

    fn revision<'a>(&'a self, id: &'a ReleaseId) -> BoxFuture<'a, Option<u32>> {
        Box::pin(async move {
            // helm's records say it without a helm process; the labels suffice.
            match crate::helm::storage::list_records(self.client, self.driver, &id.namespace).await
            {
                Ok(records) => records
                    .iter()
                    .filter(|r| r.release == id.name)
                    .map(|r| r.revision)
                    .max(),
                Err(_) => self
                    .helm
                    .status(&id.name, &id.namespace, None)
                    .await
                    .ok()
                    .map(|r| r.version),
            }
        })
    }

    fn unlock<'a>(
        &'a self,
        id: &'a ReleaseId,
        revision: u32,
        status: ReleaseStatus,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.gate
                .may_mutate()
                .map_err(|c| format!("not started: {c}"))?;
            crate::helm::storage::mark_failed(
                self.client,
                &id.namespace,
                &id.name,
                revision,
                status,
            )
            .await
            .map_err(|e| describe(&e))
        })
    }

    fn health<'a>(
        &'a self,
        id: &'a ReleaseId,
        options: &'a HealthOptions,
        timeout: Duration,
        manifest: Option<&'a str>,
    ) -> BoxFuture<'a, Result<HealthDetail, String>> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let checked = async {
                let manifest = match manifest {
                    Some(m) => m.to_owned(),
                    None => self
                        .helm
                        .get_manifest(&id.name, &id.namespace, None)
                        .await
                        .map_err(|e| helm_failure("helm get manifest", &e))?,
                };
                let report = self
                    .health
                    .run(&manifest, &id.namespace, options, timeout)
                    .await
                    .map_err(|e| format!("health check: {}", describe(&e)))?;
                Ok(HealthDetail::from_report(&report))
            };
            match checked.await {
                Ok(detail) => Ok(detail),
                // helm could not read the manifest, or the checker the
                // objects: when the API server is down that says nothing
                // about the release.
                Err(why) => match self.health.api_unreachable().await {
                    Some(down) => Ok(HealthDetail::unobserved(
                        format!("{down} ({why})"),
                        started.elapsed(),
                    )),
                    None => Err(why),
                },
            }
        })
    }

    fn api_unreachable(&self) -> BoxFuture<'_, Option<String>> {
        Box::pin(self.health.api_unreachable())
    }

    fn backup<'a>(
        &'a self,
        target: &'a BackupTarget<'a>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(velero_backup(self.client, target, timeout))
    }

    fn restore<'a>(
        &'a self,
        target: &'a RestoreTarget<'a>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            super::restore::velero_restore(self.client, target, timeout)
                .await
                .map(drop)
                .map_err(|e| format!("velero restore {}: {e}", target.name))
        })
    }
}

/// How often a running backup's phase is read.
const BACKUP_POLL: Duration = Duration::from_secs(1);

/// Creates the `Backup` and polls its phase until it ends or `timeout` passes.
async fn velero_backup(
    client: &kube::Client,
    target: &BackupTarget<'_>,
    timeout: Duration,
) -> Result<(), String> {
    use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
    let gvk = GroupVersionKind::gvk("velero.io", "v1", "Backup");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "backups");
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), target.velero_namespace, &resource);
    let name = target.name;
    let object: DynamicObject = serde_json::from_value(backup::backup_object(target))
        .map_err(|e| format!("velero backup {name}: {e}"))?;
    let started = std::time::Instant::now();
    if let Err(err) = api.create(&PostParams::default(), &object).await {
        return Err(match &err {
            kube::Error::Api(status) if status.code == 404 => {
                if status.message.contains("namespaces") {
                    format!(
                        "velero backup {name}: Velero's namespace `{}` does not exist (set spec.velero.namespace)",
                        target.velero_namespace
                    )
                } else {
                    backup::velero_missing(target.release)
                }
            }
            _ => format!("velero backup {name}: create: {}", describe(&err)),
        });
    }
    loop {
        let last = match api.get(name).await {
            Ok(got) => {
                let value = serde_json::to_value(&got).unwrap_or_default();
                match backup::phase(&value) {
                    backup::Phase::Completed => return Ok(()),
                    backup::Phase::Failed(why) => return Err(format!("{name}: {why}")),
                    backup::Phase::Running => value
                        .pointer("/status/phase")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("New")
                        .to_owned(),
                }
            }
            // A read that fails is tried again until the deadline: the
            // backup runs in Velero whatever the agent's connection does.
            Err(err) => format!("unread: {}", describe(&err)),
        };
        if started.elapsed() >= timeout {
            return Err(format!(
                "velero backup {name} did not complete within {}s (phase {last})",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(BACKUP_POLL.min(timeout.saturating_sub(started.elapsed()))).await;
    }
}

/// A scripted [`Operator`] for unit tests: records every call, answers
/// health checks and upgrades from queues (healthy and a new revision when
/// empty), and fails rollbacks when told to.
#[cfg(test)]
pub mod script {
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::Mutex;

    use super::*;

    /// The script.
    #[derive(Default)]
    pub struct Script {
        /// Every call, e.g. `upgrade apps/wiki`, in order.
        pub calls: Mutex<Vec<String>>,
        /// The manifest each health check was given (`None`: helm's read).
        pub manifests: Mutex<Vec<Option<String>>>,
        /// Health answers, first first; healthy when empty.
        pub health: Mutex<VecDeque<Result<HealthDetail, String>>>,
        /// Upgrade answers per release name; a new revision when absent.
        pub upgrades: Mutex<BTreeMap<String, Result<u32, String>>>,
        /// Rollbacks fail.
        pub fail_rollback: bool,
        /// A health check never ends (until the grace period does).
        pub hang_health: bool,
        /// The API server does not answer (for `api_unreachable`).
        pub api_down: bool,
        /// Every CRD a chart carries exists in the cluster already.
        pub crds_exist: bool,
        /// Applying CRDs fails with this.
        pub crds_fail: Option<String>,
        /// Backups fail with this.
        pub backup_fail: Option<String>,
        /// Restores fail with this.
        pub restore_fail: Option<String>,
    }

    impl Script {
        /// The calls so far.
        pub fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        fn log(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }

        /// Queues a health answer.
        pub fn then_health(&self, answer: Result<HealthDetail, String>) {
            self.health.lock().unwrap().push_back(answer);
        }
    }

    /// A health check that ended healthy.
    pub fn healthy() -> HealthDetail {
        HealthDetail {
            healthy: true,
            elapsed: Duration::from_millis(10),
            reason: None,
            unobserved: false,
            objects: Vec::new(),
        }
    }

    /// A health check that ended unhealthy for `why`.
    pub fn unhealthy(why: &str) -> HealthDetail {
        HealthDetail {
            healthy: false,
            elapsed: Duration::from_secs(20),
            reason: Some(why.to_owned()),
            unobserved: false,
            objects: Vec::new(),
        }
    }

    /// A health check that could not be made: the API server did not answer.
    pub fn unobserved() -> HealthDetail {
        HealthDetail::unobserved(
            "the API server did not answer: connection refused".to_owned(),
            Duration::from_secs(20),
        )
    }

    impl Operator for Script {
        fn upgrade<'a>(
            &'a self,
            id: &'a ReleaseId,
            _: &'a Path,
            _: &'a serde_json::Value,
            opts: &'a UpgradeOptions,
        ) -> BoxFuture<'a, Result<Upgraded, String>> {
            self.log(if opts.skip_crds {
                format!("upgrade {id} --skip-crds")
            } else {
                format!("upgrade {id}")
            });
            let answer = self
                .upgrades
                .lock()
                .unwrap()
                .get(&id.name)
                .cloned()
                .unwrap_or(Ok(2));
            Box::pin(async move {
                answer.map(|revision| Upgraded {
                    revision,
                    manifest: Some(format!("# manifest of {revision}")),
                })
            })
        }

        fn apply_crds<'a>(
            &'a self,
            id: &'a ReleaseId,
            crds: &'a [ChartCrd],
            how: CrdApply,
            _: Duration,
        ) -> BoxFuture<'a, Result<CrdChanges, String>> {
            let names: Vec<&str> = crds.iter().map(|c| c.name.as_str()).collect();
            self.log(format!("crds {id} {how:?} {}", names.join(",")));
            // Every CRD counts as missing, unless the script says otherwise.
            let exists = self.crds_exist;
            let answer = self.crds_fail.clone().map_or_else(
                || {
                    Ok(crds
                        .iter()
                        .map(|c| (c.name.clone(), super::super::crds::write_for(how, exists)))
                        .collect())
                },
                Err,
            );
            Box::pin(async move { answer })
        }

        fn test<'a>(&'a self, id: &'a ReleaseId, _: Duration) -> BoxFuture<'a, Result<(), String>> {
            self.log(format!("test {id}"));
            Box::pin(async { Ok(()) })
        }

        fn rollback<'a>(
            &'a self,
            id: &'a ReleaseId,
            revision: u32,
            _: Duration,
        ) -> BoxFuture<'a, Result<Option<u32>, String>> {
            self.log(format!("rollback {id} {revision}"));
            let fail = self.fail_rollback;
            Box::pin(async move {
                if fail {
                    Err(format!(
                        "helm rollback to revision {revision}: timed out after 30s"
                    ))
                } else {
                    Ok(Some(revision + 10))
                }
            })
        }

        fn uninstall<'a>(
            &'a self,
            id: &'a ReleaseId,
            _: Duration,
        ) -> BoxFuture<'a, Result<(), String>> {
            self.log(format!("uninstall {id}"));
            Box::pin(async { Ok(()) })
        }

        fn revision<'a>(&'a self, _: &'a ReleaseId) -> BoxFuture<'a, Option<u32>> {
            Box::pin(async { Some(3) })
        }

        fn unlock<'a>(
            &'a self,
            id: &'a ReleaseId,
            revision: u32,
            status: ReleaseStatus,
        ) -> BoxFuture<'a, Result<(), String>> {
            self.log(format!("unlock {id} {revision} {status}"));
            Box::pin(async { Ok(()) })
        }

        fn health<'a>(
            &'a self,
            id: &'a ReleaseId,
            _: &'a HealthOptions,
            _: Duration,
            manifest: Option<&'a str>,
        ) -> BoxFuture<'a, Result<HealthDetail, String>> {
            self.log(format!("health {id}"));
            self.manifests
                .lock()
                .unwrap()
                .push(manifest.map(str::to_owned));
            if self.hang_health {
                return Box::pin(futures::future::pending());
            }
            let answer = self
                .health
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| Ok(healthy()));
            Box::pin(async move { answer })
        }

        fn backup<'a>(
            &'a self,
            target: &'a BackupTarget<'a>,
            _: Duration,
        ) -> BoxFuture<'a, Result<(), String>> {
            self.log(format!(
                "backup {}/{} {} ttl={:?} volumes={}",
                target.namespace,
                target.release,
                target.velero_namespace,
                target.request.ttl.map(|t| t.to_string()),
                target.request.include_volumes
            ));
            let answer = self.backup_fail.clone().map_or(Ok(()), Err);
            Box::pin(async move { answer })
        }

        fn restore<'a>(
            &'a self,
            target: &'a RestoreTarget<'a>,
            _: Duration,
        ) -> BoxFuture<'a, Result<(), String>> {
            self.log(format!(
                "restore {}/{} from {}",
                target.namespace, target.release, target.backup
            ));
            let answer = self.restore_fail.clone().map_or(Ok(()), Err);
            Box::pin(async move { answer })
        }

        fn api_unreachable(&self) -> BoxFuture<'_, Option<String>> {
            let down = self.api_down;
            Box::pin(async move {
                down.then(|| "the API server did not answer: connection refused".to_owned())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_failures_are_said_once() {
        let said = std::io::Error::other("helm upgrade for release a/b failed (exit 1): boom");
        assert_eq!(
            helm_failure("helm upgrade", &said),
            "helm upgrade for release a/b failed (exit 1): boom"
        );
        let other = std::io::Error::other("cannot write the values file");
        assert_eq!(
            helm_failure("helm upgrade", &other),
            "helm upgrade: cannot write the values file"
        );
    }
}
