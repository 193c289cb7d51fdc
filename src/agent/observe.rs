//! Observe: everything a check looks at before it decides anything — the
//! trust anchor, the channel (fetched and verified, its sequence recorded as
//! accepted), the cluster's values, which releases other subscriptions
//! claim, and what helm reports as installed. Reads only; the one change is
//! to the in-memory status (the accepted sequence), which the status write
//! of the check, or of the first intent, persists.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, ResourceExt};
use serde_json::{Map, Value};

use crate::crd::{
    ChannelSubscription, ChannelSubscriptionStatus, KeyRef, KeyRefKind, ReleaseState,
};
use crate::format::Timestamp;
use crate::format::spec::MAX_VALUES_BYTES;
use crate::metrics::FetchResult;
use crate::plan::{ReleaseId, Settings};
use crate::site_verify::describe;

use super::Context;
use super::fetch::{ChannelSnapshot, FetchOutcome, FetchRequest};
use super::installed::{Installed, read_installed};
use super::reconcile::{Seen, Stop, fetch_stop};
use super::view::IndexSummary;

/// Largest trust anchor read from a ConfigMap or Secret.
const MAX_ANCHOR_BYTES: usize = crate::format::trust::MAX_TRUST_BYTES;

/// Why a ConfigMap or Secret key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyRefError {
    /// The object could not be read.
    #[error("cannot read {kind:?} {namespace}/{name}")]
    Get {
        /// ConfigMap or Secret.
        kind: KeyRefKind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The key is not in its data.
    #[error("{kind:?} {namespace}/{name} has no key `{key}`")]
    MissingKey {
        /// ConfigMap or Secret.
        kind: KeyRefKind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The key.
        key: String,
    },
    /// The value is larger than allowed.
    #[error("{kind:?} {namespace}/{name} key `{key}` is larger than {limit} bytes")]
    TooLarge {
        /// ConfigMap or Secret.
        kind: KeyRefKind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The key.
        key: String,
        /// The limit.
        limit: usize,
    },
    /// A values document is not a YAML mapping.
    #[error("{origin}: values must be a YAML mapping")]
    NotAMapping {
        /// `Kind ns/name key`.
        origin: String,
    },
    /// A values document is not valid YAML.
    #[error(transparent)]
    Yaml(#[from] crate::yaml::YamlError),
}

/// Reads the bytes of a ConfigMap or Secret key in `namespace`.
pub async fn read_key_ref(
    client: &kube::Client,
    namespace: &str,
    key_ref: &KeyRef,
    limit: usize,
) -> Result<Vec<u8>, KeyRefError> {
    let get_err = |source| KeyRefError::Get {
        kind: key_ref.kind,
        namespace: namespace.to_owned(),
        name: key_ref.name.clone(),
        source,
    };
    let missing = || KeyRefError::MissingKey {
        kind: key_ref.kind,
        namespace: namespace.to_owned(),
        name: key_ref.name.clone(),
        key: key_ref.key.clone(),
    };
    let bytes = match key_ref.kind {
        KeyRefKind::ConfigMap => {
            let cm = Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .get(&key_ref.name)
                .await
                .map_err(get_err)?;
            match (cm.data, cm.binary_data) {
                (Some(data), _) if data.contains_key(&key_ref.key) => data
                    .get(&key_ref.key)
                    .cloned()
                    .unwrap_or_default()
                    .into_bytes(),
                (_, Some(binary)) => binary.get(&key_ref.key).ok_or_else(missing)?.0.clone(),
                _ => return Err(missing()),
            }
        }
        KeyRefKind::Secret => {
            let secret = Api::<Secret>::namespaced(client.clone(), namespace)
                .get(&key_ref.name)
                .await
                .map_err(get_err)?;
            secret
                .data
                .and_then(|d| d.get(&key_ref.key).cloned())
                .ok_or_else(missing)?
                .0
        }
    };
    if bytes.len() > limit {
        return Err(KeyRefError::TooLarge {
            kind: key_ref.kind,
            namespace: namespace.to_owned(),
            name: key_ref.name.clone(),
            key: key_ref.key.clone(),
            limit,
        });
    }
    Ok(bytes)
}

/// Reads and merges a release's `valuesFrom` documents, in order.
async fn cluster_values(
    client: &kube::Client,
    namespace: &str,
    refs: &[KeyRef],
) -> Result<Map<String, Value>, KeyRefError> {
    let mut merged = Map::new();
    for key_ref in refs {
        let bytes = read_key_ref(client, namespace, key_ref, MAX_VALUES_BYTES).await?;
        let origin = format!(
            "{:?} {namespace}/{} key {}",
            key_ref.kind, key_ref.name, key_ref.key
        );
        let doc: Option<Value> = crate::yaml::from_slice(
            &bytes,
            &origin,
            crate::yaml::Limits::bytes(MAX_VALUES_BYTES),
        )?;
        match doc {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => merged = crate::plan::merge_values(&merged, &map),
            Some(_) => return Err(KeyRefError::NotAMapping { origin }),
        }
    }
    Ok(merged)
}

/// Releases that subscriptions created before `sub` (in the same namespace)
/// report: they belong to those.
async fn claimed_elsewhere(
    ctx: &Context,
    sub: &ChannelSubscription,
) -> Result<BTreeMap<ReleaseId, String>, kube::Error> {
    let ns = sub.namespace().unwrap_or_default();
    let api: Api<ChannelSubscription> = Api::namespaced(ctx.client.clone(), &ns);
    let all = api.list(&Default::default()).await?;
    let key = |s: &ChannelSubscription| {
        (
            s.metadata.creation_timestamp.clone().map(|t| t.0),
            s.name_any(),
        )
    };
    let mine = key(sub);
    let mut out = BTreeMap::new();
    for other in all.items.iter().filter(|o| key(o) < mine) {
        let owner = format!("{ns}/{}", other.name_any());
        for r in other.status.iter().flat_map(|s| &s.releases) {
            if r.state != ReleaseState::Conflict {
                out.entry(ReleaseId::new(&r.namespace, &r.name))
                    .or_insert_with(|| owner.clone());
            }
        }
    }
    Ok(out)
}

/// What a check observed.
pub(super) struct Observed {
    /// The verified channel.
    pub snapshot: Arc<ChannelSnapshot>,
    /// Pins, holds, cluster values and claims, for the planner.
    pub settings: Settings,
    /// The namespaces whose releases were read.
    pub namespaces: BTreeSet<String>,
    /// What helm reports there.
    pub installed: Installed,
}

/// Reads the anchor, fetches and verifies the channel (recording its
/// sequence as accepted in `status`), resolves the cluster's values and
/// claims, and reads the installed releases.
pub(super) async fn observe(
    ctx: &Context,
    sub: &ChannelSubscription,
    status: &mut ChannelSubscriptionStatus,
    now: Timestamp,
    seen: &mut Seen,
) -> Result<Observed, Stop> {
    let spec = &sub.spec;
    let ns = sub.namespace().unwrap_or_else(|| ctx.namespace.clone());
    let name = sub.name_any();
    let anchor = read_key_ref(&ctx.client, &ns, &spec.trust_ref, MAX_ANCHOR_BYTES)
        .await
        .map_err(|e| Stop::error(format!("trust anchor: {}", describe(&e))))?;
    let anchor_origin = format!(
        "{:?} {ns}/{} key {}",
        spec.trust_ref.kind, spec.trust_ref.name, spec.trust_ref.key
    );
    let min_sequence = status
        .accepted_for(&spec.server, &spec.channel)
        .map(|a| a.sequence)
        .unwrap_or(0);
    let FetchOutcome {
        snapshot,
        not_modified,
        refetched,
    } = ctx
        .fetcher
        .fetch(FetchRequest {
            server: &spec.server,
            channel: &spec.channel,
            anchor: &anchor,
            anchor_origin: &anchor_origin,
            min_sequence,
            trust_floor: status.trust_root_floor(&spec.server),
            now,
        })
        .await
        .map_err(|e| fetch_stop(ctx, sub, &e, true))?;
    let index = snapshot.verified.index();
    let key = format!("{ns}/{name}");
    ctx.metrics.index_fetch(
        &key,
        &spec.channel,
        if not_modified {
            FetchResult::NotModified
        } else {
            FetchResult::Updated
        },
    );
    seen.index = Some(IndexSummary {
        sequence: index.sequence,
        published: index.published,
        expires: index.expires,
        trust_root_version: snapshot.trust_root_version,
    });
    seen.charts = index
        .releases
        .iter()
        .map(|r| (r.name.clone(), r.chart.name.clone()))
        .collect();
    tracing::debug!(subscription = %format!("{ns}/{name}"), sequence = index.sequence, not_modified, refetched, "index verified");
    status.record_accepted(
        &spec.server,
        &spec.channel,
        index.sequence,
        snapshot.trust_root_version,
        now,
    );

    let mut values = BTreeMap::new();
    for (release, rv) in &spec.values {
        let merged = cluster_values(&ctx.client, &ns, &rv.values_from)
            .await
            .map_err(|e| Stop::error(format!("values for `{release}`: {}", describe(&e))))?;
        values.insert(release.clone(), merged);
    }
    let claimed = claimed_elsewhere(ctx, sub)
        .await
        .map_err(|e| Stop::error(format!("cannot list subscriptions: {e}")))?;
    let rollout = rollout_settings(ctx, spec, index, now).await?;
    let (approvals, approval_problems) = sub.approvals();
    let settings = Settings {
        approvals,
        approval_problems: approval_problems.iter().map(ToString::to_string).collect(),
        subscription: format!("{ns}/{name}"),
        pins: spec.pins.clone(),
        holds: spec.holds.iter().cloned().collect(),
        cluster_values: values,
        claimed_elsewhere: claimed,
        agent_release: ctx.agent_release.clone(),
        rollout,
    };
    let namespaces: BTreeSet<String> = index
        .releases
        .iter()
        .map(|r| r.namespace.clone())
        .chain(status.releases.iter().map(|r| r.namespace.clone()))
        .collect();
    let installed = read_installed(ctx.records(), &namespaces)
        .await
        .map_err(|e| Stop::error(format!("reading installed releases: {}", describe(&e))))?;

    Ok(Observed {
        snapshot,
        settings,
        namespaces,
        installed,
    })
}

/// The cluster's side of the rollout gate: the subscription's maintenance settings
/// (checked: a bad zone or start names the field) and ring, and the cluster's
/// position in the channel, for which the `kube-system` namespace UID is read once
/// (only when the channel has waves and the ring is not named).
async fn rollout_settings(
    ctx: &Context,
    spec: &crate::crd::ChannelSubscriptionSpec,
    index: &crate::format::ChannelIndex,
    now: Timestamp,
) -> Result<Option<crate::plan::RolloutSettings>, Stop> {
    if let Some(m) = &spec.maintenance {
        m.validate().map_err(|e| Stop::error(format!("spec.{e}")))?;
    }
    let ring = spec.ring.unwrap_or_default();
    let waves = index.rollout.as_ref().is_some_and(|r| !r.waves.is_empty());
    if spec.maintenance.is_none() && index.rollout.is_none() {
        return Ok(None);
    }
    let position = if waves && ring == crate::rollout::Ring::Default {
        let uid = ctx.cluster_uid().await.map_err(|e| {
            Stop::error(format!(
                "reading the cluster's identity (the kube-system namespace's UID) for the channel's rollout waves: {e}"
            ))
        })?;
        crate::rollout::fleet_position(uid, &index.channel)
    } else {
        0
    };
    Ok(Some(crate::plan::RolloutSettings {
        now,
        position,
        ring,
        maintenance: spec.maintenance.clone(),
        default_health_timeout: spec.health_timeout,
    }))
}
