//! Helm's own release records, read and (for one purpose) changed without
//! the helm binary: unlocking a release left `pending-*` by a killed helm.
//!
//! Helm 3 and 4 keep each revision in a Secret `sh.helm.release.v1.<name>.v<N>`
//! of type `helm.sh/release.v1` (or, with `HELM_DRIVER=configmap`, a ConfigMap
//! of the same name), labelled `owner=helm`, `name`, `status`, `version`; its
//! `release` key holds base64(gzip(JSON of the release)). A killed helm leaves
//! the newest record `pending-install`, `pending-upgrade` or `pending-rollback`
//! and every later helm call refuses with "another operation is in progress".
//! Helm's own answer, and Flux helm-controller's, is to mark that record failed
//! (status and description), after which `helm rollback` and `helm upgrade`
//! work again. [`mark_failed`] does exactly that, with the record's
//! `resourceVersion` as a precondition, so a helm that is in fact alive and
//! writes the record meanwhile wins and the unlock is refused.
//!
//! Reading is bounded: a record larger than [`MAX_RECORD_BYTES`] encoded or
//! [`MAX_RELEASE_JSON_BYTES`] decompressed is refused, never inflated.

use std::io::Read as _;
use std::io::Write as _;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::PostParams;
use serde_json::Value;

use super::{Release, ReleaseStatus};
use crate::bounded::{MAX_ECHO, bounded};

/// Largest encoded record read (etcd refuses objects above ~1.5 MiB anyway).
pub const MAX_RECORD_BYTES: usize = 4 * 1024 * 1024;
/// Largest release JSON a record may inflate to.
pub const MAX_RELEASE_JSON_BYTES: usize = 64 * 1024 * 1024;

/// The description helm-controller writes; ours says who did it.
pub const UNLOCK_DESCRIPTION: &str = "Release unlocked from stale state by coxswain";

/// Why a record could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The Kubernetes API refused or failed.
    #[error("helm release record {namespace}/{name}: {source}")]
    Api {
        /// Namespace of the record.
        namespace: String,
        /// Name of the Secret or ConfigMap.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The records of a namespace could not be listed.
    #[error("cannot list helm's release records (owner=helm) in namespace {namespace}: {source}")]
    List {
        /// The namespace.
        namespace: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// Neither a Secret nor a ConfigMap of that name exists.
    #[error("helm release record {namespace}/{name} not found (neither Secret nor ConfigMap)")]
    NotFound {
        /// Namespace of the record.
        namespace: String,
        /// Name of the record.
        name: String,
    },
    /// The record's content is not what helm writes.
    #[error("helm release record {name}: {reason}")]
    Malformed {
        /// Name of the record.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// `HELM_DRIVER` names a driver whose records the agent cannot read.
    #[error(
        "HELM_DRIVER={driver}: coxswain reads helm's release records from Secrets or ConfigMaps only (HELM_DRIVER unset, `secret` or `configmap`)"
    )]
    UnsupportedDriver {
        /// The value.
        driver: String,
    },
    /// The record is not in the state the caller expected (someone moved on).
    #[error("helm release record {name} is {found}, not {expected}; left alone")]
    Moved {
        /// Name of the record.
        name: String,
        /// What the caller expected.
        expected: String,
        /// What it is.
        found: String,
    },
}

/// The name helm gives revision `revision` of `release`.
pub fn record_name(release: &str, revision: u32) -> String {
    format!("sh.helm.release.v1.{release}.v{revision}")
}

/// Decodes a record's `release` value (base64, then gzip when gzipped) into
/// the release JSON, bounded.
pub fn decode(name: &str, encoded: &[u8]) -> Result<Value, StorageError> {
    let json = decode_bytes(name, encoded)?;
    let value: Value = serde_json::from_slice(&json).map_err(|e| StorageError::Malformed {
        name: name.to_owned(),
        reason: format!("not JSON: {e}"),
    })?;
    if !value.is_object() {
        return Err(StorageError::Malformed {
            name: name.to_owned(),
            reason: "not a JSON object".to_owned(),
        });
    }
    Ok(value)
}

/// Decodes a record's `release` value into the parts of the release the
/// agent reads (name, revision, status, description, chart): the values and
/// the manifest are skipped, and the rendered NOTES.txt (which may print
/// values) is dropped, so nothing secret is kept.
pub fn decode_release(name: &str, encoded: &[u8]) -> Result<Release, StorageError> {
    let json = decode_bytes(name, encoded)?;
    let mut release: Release =
        serde_json::from_slice(&json).map_err(|e| StorageError::Malformed {
            name: name.to_owned(),
            reason: format!("not a helm release: {}", bounded(&e.to_string(), MAX_ECHO)),
        })?;
    release.info.notes = String::new();
    Ok(release)
}

/// Base64, then gunzip when gzipped (helm writes records of releases made
/// before it compressed them as plain base64 JSON), bounded on both sides.
fn decode_bytes(name: &str, encoded: &[u8]) -> Result<Vec<u8>, StorageError> {
    let malformed = |reason: String| StorageError::Malformed {
        name: name.to_owned(),
        reason,
    };
    if encoded.len() > MAX_RECORD_BYTES {
        return Err(malformed(format!(
            "larger than {MAX_RECORD_BYTES} bytes encoded"
        )));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| malformed(format!("not base64: {e}")))?;
    let json = if raw.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut out = Vec::new();
        let limit = u64::try_from(MAX_RELEASE_JSON_BYTES).unwrap_or(u64::MAX) + 1;
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|e| malformed(format!("not gzip: {e}")))?;
        if out.len() > MAX_RELEASE_JSON_BYTES {
            return Err(malformed(format!(
                "inflates to more than {MAX_RELEASE_JSON_BYTES} bytes"
            )));
        }
        out
    } else {
        raw
    };
    Ok(json)
}

/// Encodes release JSON the way helm does (gzip, then base64).
pub fn encode(release: &Value) -> Result<Vec<u8>, std::io::Error> {
    let json = serde_json::to_vec(release)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&json)?;
    let zipped = gz.finish()?;
    Ok(base64::engine::general_purpose::STANDARD
        .encode(zipped)
        .into_bytes())
}

/// The `info.status` of a decoded release.
pub fn status_of(release: &Value) -> Option<&str> {
    release.pointer("/info/status").and_then(Value::as_str)
}

/// Marks a decoded release failed with `description`, keeping every other
/// field as helm wrote it. Refuses unless its status is `expected`.
pub fn set_failed(
    name: &str,
    release: &mut Value,
    expected: ReleaseStatus,
    description: &str,
) -> Result<(), StorageError> {
    let found = status_of(release).unwrap_or("(none)").to_owned();
    if found != expected.as_str() {
        return Err(StorageError::Moved {
            name: name.to_owned(),
            expected: expected.as_str().to_owned(),
            found,
        });
    }
    let Some(info) = release.get_mut("info").and_then(Value::as_object_mut) else {
        return Err(StorageError::Malformed {
            name: name.to_owned(),
            reason: "no `info` object".to_owned(),
        });
    };
    info.insert("status".into(), Value::String("failed".into()));
    info.insert("description".into(), Value::String(description.to_owned()));
    Ok(())
}

/// Marks revision `revision` of `release` in `namespace` failed in helm's
/// storage, provided it is still `expected` (a `pending-*` status). Tries the
/// Secret driver first, then the ConfigMap driver.
pub async fn mark_failed(
    client: &kube::Client,
    namespace: &str,
    release: &str,
    revision: u32,
    expected: ReleaseStatus,
) -> Result<(), StorageError> {
    let name = record_name(release, revision);
    let api_err = |source| StorageError::Api {
        namespace: namespace.to_owned(),
        name: name.clone(),
        source,
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    if let Some(mut secret) = secrets.get_opt(&name).await.map_err(api_err)? {
        let encoded = unlocked(
            &name,
            secret
                .data
                .as_ref()
                .and_then(|d| d.get("release"))
                .map(|b| b.0.as_slice()),
            expected,
        )?;
        secret
            .data
            .get_or_insert_with(Default::default)
            .insert("release".into(), ByteString(encoded));
        relabel(&mut secret.metadata);
        // `metadata.resourceVersion` is kept: a concurrent write by a live helm wins.
        secrets
            .replace(&name, &PostParams::default(), &secret)
            .await
            .map_err(api_err)?;
        return Ok(());
    }
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let Some(mut map) = maps.get_opt(&name).await.map_err(api_err)? else {
        return Err(StorageError::NotFound {
            namespace: namespace.to_owned(),
            name,
        });
    };
    let encoded = unlocked(
        &name,
        map.data
            .as_ref()
            .and_then(|d| d.get("release"))
            .map(String::as_bytes),
        expected,
    )?;
    map.data.get_or_insert_with(Default::default).insert(
        "release".into(),
        String::from_utf8_lossy(&encoded).into_owned(),
    );
    relabel(&mut map.metadata);
    maps.replace(&name, &PostParams::default(), &map)
        .await
        .map_err(api_err)?;
    Ok(())
}

/// A record's `release` value with its release marked failed, re-encoded
/// (the one path for both drivers).
fn unlocked(
    name: &str,
    encoded: Option<&[u8]>,
    expected: ReleaseStatus,
) -> Result<Vec<u8>, StorageError> {
    let malformed = |reason: String| StorageError::Malformed {
        name: name.to_owned(),
        reason,
    };
    let encoded = encoded.ok_or_else(|| malformed("no `release` key".to_owned()))?;
    let mut value = decode(name, encoded)?;
    set_failed(name, &mut value, expected, UNLOCK_DESCRIPTION)?;
    encode(&value).map_err(|e| malformed(format!("cannot encode: {e}")))
}

/// The labels helm's driver sets on update.
fn relabel(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.insert("status".into(), "failed".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    labels.insert("modifiedAt".into(), now.to_string());
}

/// Where helm keeps its release records, from `HELM_DRIVER` as helm reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Secrets (helm's default).
    Secret,
    /// ConfigMaps (`HELM_DRIVER=configmap`).
    ConfigMap,
}

impl Driver {
    /// The driver helm uses given its `HELM_DRIVER` (unset or empty: Secrets).
    /// The SQL and memory drivers keep nothing the agent could read through
    /// the Kubernetes API, so they are refused.
    pub fn from_helm_driver(value: Option<&str>) -> Result<Self, StorageError> {
        match value.unwrap_or_default() {
            "" | "secret" | "secrets" => Ok(Self::Secret),
            "configmap" | "configmaps" => Ok(Self::ConfigMap),
            other => Err(StorageError::UnsupportedDriver {
                driver: bounded(other, MAX_ECHO),
            }),
        }
    }
}

/// One release record as its labels describe it (no data read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// The Secret's or ConfigMap's name (`sh.helm.release.v1.<name>.v<N>`).
    pub record: String,
    /// The release name (label `name`).
    pub release: String,
    /// The revision (label `version`).
    pub revision: u32,
    /// The revision's status (label `status`).
    pub status: ReleaseStatus,
    /// The object's `resourceVersion`: changes whenever helm rewrites it.
    pub resource_version: String,
}

/// The label selector of helm's records.
const OWNER_HELM: &str = "owner=helm";

/// Lists the release records of `namespace`, labels only (one LIST of
/// object metadata: the records' contents, which hold values, are not read).
pub async fn list_records(
    client: &kube::Client,
    driver: Driver,
    namespace: &str,
) -> Result<Vec<RecordMeta>, StorageError> {
    let params = kube::api::ListParams::default().labels(OWNER_HELM);
    let api_err = |source| StorageError::List {
        namespace: namespace.to_owned(),
        source,
    };
    let items = match driver {
        Driver::Secret => list_metadata::<Secret>(client, namespace, &params).await,
        Driver::ConfigMap => list_metadata::<ConfigMap>(client, namespace, &params).await,
    }
    .map_err(api_err)?;
    items.iter().map(record_meta).collect()
}

/// The metadata of the objects of kind `K` in `namespace` that `params` selects.
async fn list_metadata<K>(
    client: &kube::Client,
    namespace: &str,
    params: &kube::api::ListParams,
) -> Result<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let list = Api::<K>::namespaced(client.clone(), namespace)
        .list_metadata(params)
        .await?;
    Ok(list.items.into_iter().map(|o| o.metadata).collect())
}

/// The record `name` of kind `K` in `namespace`.
async fn get_record<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<K, StorageError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|source| StorageError::Api {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        })?
        .ok_or_else(|| StorageError::NotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
}

/// A record's labels, checked.
pub fn record_meta(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Result<RecordMeta, StorageError> {
    let record = meta.name.clone().unwrap_or_default();
    let malformed = |reason: String| StorageError::Malformed {
        name: bounded(&record, MAX_ECHO),
        reason,
    };
    let label = |key: &str| {
        meta.labels
            .as_ref()
            .and_then(|l| l.get(key))
            .map(String::as_str)
            .ok_or_else(|| malformed(format!("no `{key}` label")))
    };
    let release = label("name")?.to_owned();
    let version = label("version")?;
    let revision = version
        .parse::<u32>()
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| {
            malformed(format!(
                "label `version` is `{}`, not a revision",
                bounded(version, MAX_ECHO)
            ))
        })?;
    let Ok(status) = label("status")?.parse();
    if record != record_name(&release, revision) {
        return Err(malformed(format!(
            "its labels name release `{}` revision {revision}, not this record",
            bounded(&release, MAX_ECHO)
        )));
    }
    Ok(RecordMeta {
        record,
        release,
        revision,
        status,
        resource_version: meta.resource_version.clone().unwrap_or_default(),
    })
}

/// Reads and decodes one record (the release without its values and
/// manifest), checking that it is the revision its name says.
pub async fn read_record(
    client: &kube::Client,
    driver: Driver,
    namespace: &str,
    meta: &RecordMeta,
) -> Result<Release, StorageError> {
    let name = meta.record.as_str();
    let encoded: Vec<u8> = match driver {
        Driver::Secret => {
            let secret: Secret = get_record(client, namespace, name).await?;
            let payload = secret.data.as_ref().and_then(|d| d.get("release"));
            record_payload(name, secret.type_.as_deref(), payload.map(|b| b.0.clone()))?
        }
        Driver::ConfigMap => {
            let map: ConfigMap = get_record(client, namespace, name).await?;
            let payload = map.data.as_ref().and_then(|d| d.get("release"));
            // ConfigMaps have no type; helm's are known by their labels.
            record_payload(
                name,
                Some(RECORD_TYPE),
                payload.map(|s| s.clone().into_bytes()),
            )?
        }
    };
    let release = decode_release(name, &encoded)?;
    check_release(meta, &release)?;
    Ok(release)
}

/// The Secret type helm 3 and 4 give their records.
pub const RECORD_TYPE: &str = "helm.sh/release.v1";

/// The `release` value of a record of helm's type.
fn record_payload(
    name: &str,
    type_: Option<&str>,
    payload: Option<Vec<u8>>,
) -> Result<Vec<u8>, StorageError> {
    let malformed = |reason: String| StorageError::Malformed {
        name: name.to_owned(),
        reason,
    };
    if type_ != Some(RECORD_TYPE) {
        return Err(malformed(format!(
            "type is `{}`, not `{RECORD_TYPE}`",
            bounded(type_.unwrap_or("(none)"), MAX_ECHO)
        )));
    }
    payload.ok_or_else(|| malformed("no `release` key".to_owned()))
}

/// A decoded release must be the one its record's labels name.
pub fn check_release(meta: &RecordMeta, release: &Release) -> Result<(), StorageError> {
    if release.name != meta.release || release.version != meta.revision {
        return Err(StorageError::Malformed {
            name: meta.record.clone(),
            reason: format!(
                "holds release `{}` revision {}, not `{}` revision {}",
                bounded(&release.name, MAX_ECHO),
                release.version,
                meta.release,
                meta.revision
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(status: &str) -> Value {
        serde_json::json!({
            "name": "wiki",
            "namespace": "apps",
            "version": 3,
            "info": {"status": status, "description": "Preparing upgrade", "notes": "x"},
            "config": {"secret": "kept as is"},
            "manifest": "---\n",
        })
    }

    #[test]
    fn encode_then_decode_is_the_same_release() {
        let r = release("pending-upgrade");
        let encoded = encode(&r).unwrap();
        assert_eq!(decode("x", &encoded).unwrap(), r);
    }

    #[test]
    fn decode_reads_plain_base64_json_too() {
        let plain = base64::engine::general_purpose::STANDARD.encode(b"{\"info\":{}}");
        assert!(decode("x", plain.as_bytes()).is_ok());
    }

    #[test]
    fn decode_refuses_what_helm_never_writes() {
        for (bytes, want) in [
            (&b"!!!"[..], "not base64"),
            (b"bm90IGpzb24=", "not JSON"),
            (b"WzFd", "not a JSON object"),
        ] {
            let e = decode("sh.helm.release.v1.a.v1", bytes)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
            assert!(e.contains("sh.helm.release.v1.a.v1"), "{e}");
        }
        let big = vec![b'A'; MAX_RECORD_BYTES + 4];
        assert!(
            decode("x", &big)
                .unwrap_err()
                .to_string()
                .contains("larger")
        );
    }

    #[test]
    fn decode_refuses_a_gzip_bomb() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1024 * 1024];
        for _ in 0..(MAX_RELEASE_JSON_BYTES / zeros.len() + 1) {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        let e = decode("x", bomb.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("inflates to more than"), "{e}");
    }

    #[test]
    fn set_failed_changes_status_and_description_only() {
        let mut r = release("pending-upgrade");
        set_failed(
            "n",
            &mut r,
            ReleaseStatus::PendingUpgrade,
            UNLOCK_DESCRIPTION,
        )
        .unwrap();
        assert_eq!(status_of(&r), Some("failed"));
        assert_eq!(r["info"]["description"], UNLOCK_DESCRIPTION);
        assert_eq!(r["info"]["notes"], "x");
        assert_eq!(r["config"]["secret"], "kept as is");
    }

    #[test]
    fn set_failed_leaves_a_record_that_moved_on() {
        let mut r = release("deployed");
        let e = set_failed(
            "n",
            &mut r,
            ReleaseStatus::PendingUpgrade,
            UNLOCK_DESCRIPTION,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("is deployed, not pending-upgrade"), "{e}");
        assert_eq!(status_of(&r), Some("deployed"));
    }

    /// Real records: `helm upgrade --install` (1), an upgrade with a coxswain
    /// fingerprint (2), an upgrade (3, 4), `helm rollback wiki 2` (5), by the
    /// real helm 3.22 and 4.3 (see `testdata/helm/records/README.md`).
    fn fixture(helm: u8, revision: u32) -> Secret {
        let path = format!(
            "{}/testdata/helm/records/helm{helm}/sh.helm.release.v1.wiki.v{revision}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn payload(secret: &Secret) -> Option<Vec<u8>> {
        secret.data.as_ref()?.get("release").map(|b| b.0.clone())
    }

    fn read_fixture(secret: &Secret) -> Result<Release, StorageError> {
        let meta = record_meta(&secret.metadata)?;
        let name = &meta.record;
        let release = decode_release(
            name,
            &record_payload(name, secret.type_.as_deref(), payload(secret))?,
        )?;
        check_release(&meta, &release)?;
        Ok(release)
    }

    #[test]
    fn real_records_of_helm_3_and_4_decode() {
        for helm in [3, 4] {
            for revision in 1..=5 {
                let secret = fixture(helm, revision);
                let meta = record_meta(&secret.metadata).unwrap();
                assert_eq!(meta.release, "wiki");
                assert_eq!(meta.revision, revision);
                let release = read_fixture(&secret).unwrap();
                assert_eq!(release.version, revision);
                assert_eq!(release.namespace, format!("fx{helm}"));
                let chart = release.chart.as_ref().unwrap();
                assert_eq!(
                    (
                        chart.metadata.name.as_str(),
                        chart.metadata.version.as_str()
                    ),
                    ("wiki", "1.0.0")
                );
                assert!(release.info.last_deployed.is_some());
                let want = if revision == 5 {
                    ReleaseStatus::Deployed
                } else {
                    ReleaseStatus::Superseded
                };
                assert_eq!((meta.status, release.info.status), (want, want));
            }
            let fp = read_fixture(&fixture(helm, 2)).unwrap();
            assert!(fp.info.description.starts_with("coxswain stable#2 "));
            let rollback = read_fixture(&fixture(helm, 5)).unwrap();
            assert_eq!(rollback.info.description, "Rollback to 2");
            // Helm 4 also records the target on its own; helm 3 only in the text.
            let target = if helm == 4 { Some(2) } else { None };
            assert_eq!(rollback.info.rollback_revision, target);
        }
    }

    #[test]
    fn hostile_records_are_refused_naming_the_record() {
        let good = fixture(4, 5);
        let name = "sh.helm.release.v1.wiki.v5";
        let refused = |secret: &Secret, want: &str| {
            let e = read_fixture(secret).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(e.contains(name), "{e}");
        };
        let with_payload = |bytes: &[u8]| {
            let mut s = good.clone();
            s.data
                .as_mut()
                .unwrap()
                .insert("release".into(), ByteString(bytes.to_vec()));
            s
        };
        refused(&with_payload(b"!!!"), "not base64");
        refused(&with_payload(b"bm90IGpzb24="), "not a helm release");
        let b64 = |raw: &[u8]| base64::engine::general_purpose::STANDARD.encode(raw);
        let gz = |raw: &[u8]| {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(raw).unwrap();
            w.finish().unwrap()
        };
        refused(
            &with_payload(b64(&gz(b"[1]")).as_bytes()),
            "not a helm release",
        );
        refused(
            &with_payload(b64(&[0x1f, 0x8b, 0x08, 0, 1]).as_bytes()),
            "not gzip",
        );
        // Another release's record under this name.
        let other =
            serde_json::json!({"name": "files", "version": 5, "info": {"status": "deployed"}});
        refused(
            &with_payload(&encode(&other).unwrap()),
            "holds release `files` revision 5, not `wiki` revision 5",
        );
        let mut typed = good.clone();
        typed.type_ = Some("Opaque".into());
        refused(&typed, "type is `Opaque`, not `helm.sh/release.v1`");
        let mut empty = good.clone();
        empty.data = None;
        refused(&empty, "no `release` key");
        let relabel = |key: &str, value: &str| {
            let mut s = good.clone();
            s.metadata
                .labels
                .as_mut()
                .unwrap()
                .insert(key.into(), value.into());
            s
        };
        refused(
            &relabel("version", "five"),
            "label `version` is `five`, not a revision",
        );
        refused(&relabel("version", "0"), "label `version` is `0`");
        refused(
            &relabel("version", "4"),
            "its labels name release `wiki` revision 4",
        );
        let mut unlabelled = good.clone();
        unlabelled.metadata.labels.as_mut().unwrap().remove("name");
        refused(&unlabelled, "no `name` label");
    }

    #[test]
    fn decoded_releases_keep_no_notes() {
        let with_notes = serde_json::json!({
            "name": "wiki", "version": 1,
            "info": {"status": "deployed", "notes": "admin password: hunter2"},
            "config": {"adminPassword": "hunter2"}, "manifest": "kind: Secret",
        });
        let release = decode_release("r", &encode(&with_notes).unwrap()).unwrap();
        assert_eq!(release.info.notes, "");
        assert!(!format!("{release:?}").contains("hunter2"));
    }

    #[test]
    fn decode_release_refuses_a_gzip_bomb() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(b"{\"name\":\"").unwrap();
        let spaces = vec![b'a'; 1024 * 1024];
        for _ in 0..(MAX_RELEASE_JSON_BYTES / spaces.len() + 1) {
            gz.write_all(&spaces).unwrap();
        }
        let bomb = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        let e = decode_release("sh.helm.release.v1.a.v1", bomb.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("inflates to more than"), "{e}");
        assert!(e.contains("sh.helm.release.v1.a.v1"), "{e}");
    }

    #[test]
    fn only_drivers_with_records_in_the_api_are_read() {
        for (value, want) in [
            (None, Driver::Secret),
            (Some(""), Driver::Secret),
            (Some("secret"), Driver::Secret),
            (Some("configmap"), Driver::ConfigMap),
            (Some("configmaps"), Driver::ConfigMap),
        ] {
            assert_eq!(Driver::from_helm_driver(value).unwrap(), want);
        }
        for value in ["sql", "memory"] {
            let e = Driver::from_helm_driver(Some(value))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("HELM_DRIVER={value}: ")), "{e}");
        }
    }

    #[test]
    fn record_names_follow_helm() {
        assert_eq!(record_name("wiki", 12), "sh.helm.release.v1.wiki.v12");
    }
}
