//! A release's CRD policy at work: which helm flag it sets, which
//! CustomResourceDefinitions of the chart's `crds/` it creates or updates
//! before the install or upgrade (a pure decision), and the server-side apply
//! that does it.
//!
//! Helm creates `crds/` at a release's first install and never changes them
//! afterwards. With a policy, coxswain takes that over: helm always gets
//! `--skip-crds`, and for `create` / `createReplace` the agent applies the
//! CRDs itself, read from the verified chart archive in memory
//! ([`crate::chart::crds`]), with its own field manager. Nothing here deletes
//! a CRD: a rollback or an uninstall leaves them as they are, since deleting
//! one deletes every custom resource of it.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::chart::crds::ChartCrd;
use crate::format::CrdPolicy;
use crate::health::Health;
use crate::site_verify::describe;

/// The field manager of the CRDs coxswain applies.
pub const FIELD_MANAGER: &str = "coxswain";

/// What a release's policy asks of one install or upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrdStep {
    /// Pass `--skip-crds` to helm.
    pub skip_crds: bool,
    /// Apply the chart's CRDs first, and how.
    pub apply: Option<CrdApply>,
}

/// How coxswain applies a chart's CRDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrdApply {
    /// Create the missing ones, leave the others (`create`).
    CreateMissing,
    /// Create the missing ones, update the others (`createReplace`).
    CreateOrUpdate,
}

/// What happens to one CRD of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrdWrite {
    /// It exists and the policy leaves existing ones alone.
    Leave,
    /// It is missing: created.
    Create,
    /// It exists: updated to the chart's (conflicting fields taken over).
    Update,
}

impl CrdWrite {
    /// `created`, `updated`, `left as it was`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leave => "left as it was",
            Self::Create => "created",
            Self::Update => "updated",
        }
    }
}

/// The step for a release with `policy` (unset: Helm's own rule, nothing to do).
pub fn step(policy: Option<CrdPolicy>) -> CrdStep {
    match policy {
        None => CrdStep {
            skip_crds: false,
            apply: None,
        },
        Some(CrdPolicy::Skip) => CrdStep {
            skip_crds: true,
            apply: None,
        },
        Some(CrdPolicy::Create) => CrdStep {
            skip_crds: true,
            apply: Some(CrdApply::CreateMissing),
        },
        Some(CrdPolicy::CreateReplace) => CrdStep {
            skip_crds: true,
            apply: Some(CrdApply::CreateOrUpdate),
        },
    }
}

/// What `apply` does to a CRD that `exists` in the cluster or not. There is
/// no answer that deletes it.
pub fn write_for(apply: CrdApply, exists: bool) -> CrdWrite {
    match (apply, exists) {
        (_, false) => CrdWrite::Create,
        (CrdApply::CreateMissing, true) => CrdWrite::Leave,
        (CrdApply::CreateOrUpdate, true) => CrdWrite::Update,
    }
}

/// What was done to each CRD, in the chart's order.
pub type CrdChanges = Vec<(String, CrdWrite)>;

/// One line for people: `created a.x; updated b.x` (CRDs left alone are not
/// named), or `None` when nothing was written.
pub fn summary(changes: &CrdChanges) -> Option<String> {
    let mut parts = Vec::new();
    for write in [CrdWrite::Create, CrdWrite::Update] {
        let names: Vec<&str> = changes
            .iter()
            .filter(|(_, w)| *w == write)
            .map(|(n, _)| n.as_str())
            .collect();
        if !names.is_empty() {
            parts.push(format!("{} {}", write.as_str(), names.join(", ")));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Applies `crds` as `apply` says with server-side apply (forced for an
/// update), then waits up to `timeout` until every CRD written is
/// established, so that helm finds their kinds. Errors are sentences naming
/// the CRD.
pub async fn apply(
    client: &kube::Client,
    crds: &[ChartCrd],
    how: CrdApply,
    timeout: Duration,
) -> Result<CrdChanges, String> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut changes = Vec::with_capacity(crds.len());
    for crd in crds {
        let exists = api
            .get_opt(&crd.name)
            .await
            .map_err(|e| format!("CustomResourceDefinition {}: {}", crd.name, describe(&e)))?
            .is_some();
        let write = write_for(how, exists);
        if write != CrdWrite::Leave {
            let mut params = PatchParams::apply(FIELD_MANAGER);
            if write == CrdWrite::Update {
                params = params.force();
            }
            api.patch(&crd.name, &params, &Patch::Apply(&crd.object))
                .await
                .map_err(|e| {
                    format!(
                        "CustomResourceDefinition {} (from {}) could not be {}: {}",
                        crd.name,
                        crd.file,
                        write.as_str(),
                        describe(&e)
                    )
                })?;
        }
        changes.push((crd.name.clone(), write));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for (name, write) in &changes {
        if *write == CrdWrite::Leave {
            continue;
        }
        loop {
            let found = api
                .get_opt(name)
                .await
                .map_err(|e| format!("CustomResourceDefinition {name}: {}", describe(&e)))?;
            let health = match found {
                Some(crd) => serde_json::to_value(&crd)
                    .map(|object| crate::health::evaluate(&object))
                    .unwrap_or_else(|e| Health::Failed(e.to_string())),
                None => Health::InProgress("gone after it was applied".to_owned()),
            };
            match health {
                Health::Current => break,
                Health::Failed(why) => {
                    return Err(format!("CustomResourceDefinition {name}: {why}"));
                }
                Health::InProgress(why) if tokio::time::Instant::now() >= deadline => {
                    return Err(format!(
                        "CustomResourceDefinition {name} was {} but is still {why} after {}s",
                        write.as_str(),
                        timeout.as_secs()
                    ));
                }
                Health::InProgress(_) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_policy_sets_the_flag_and_the_apply() {
        assert_eq!(
            step(None),
            CrdStep {
                skip_crds: false,
                apply: None
            }
        );
        assert_eq!(
            step(Some(CrdPolicy::Skip)),
            CrdStep {
                skip_crds: true,
                apply: None
            }
        );
        assert_eq!(
            step(Some(CrdPolicy::Create)).apply,
            Some(CrdApply::CreateMissing)
        );
        assert_eq!(
            step(Some(CrdPolicy::CreateReplace)).apply,
            Some(CrdApply::CreateOrUpdate)
        );
        // Whenever coxswain applies the CRDs, helm must not touch them.
        for p in [CrdPolicy::Skip, CrdPolicy::Create, CrdPolicy::CreateReplace] {
            assert!(step(Some(p)).skip_crds, "{p}");
            assert_eq!(step(Some(p)).apply.is_some(), p.applies(), "{p}");
        }
    }

    #[test]
    fn create_leaves_existing_crds_and_replace_updates_them() {
        use CrdApply::*;
        assert_eq!(write_for(CreateMissing, false), CrdWrite::Create);
        assert_eq!(write_for(CreateMissing, true), CrdWrite::Leave);
        assert_eq!(write_for(CreateOrUpdate, false), CrdWrite::Create);
        assert_eq!(write_for(CreateOrUpdate, true), CrdWrite::Update);
    }

    #[test]
    fn the_summary_names_what_was_written() {
        let changes = vec![
            ("a.x".to_owned(), CrdWrite::Update),
            ("b.x".to_owned(), CrdWrite::Leave),
            ("c.x".to_owned(), CrdWrite::Create),
            ("d.x".to_owned(), CrdWrite::Update),
        ];
        assert_eq!(
            summary(&changes).as_deref(),
            Some("created c.x; updated a.x, d.x")
        );
        assert_eq!(summary(&vec![("b.x".to_owned(), CrdWrite::Leave)]), None);
        assert_eq!(summary(&Vec::new()), None);
    }
}
