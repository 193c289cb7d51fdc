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

use super::ReleaseStatus;

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
    let value: Value =
        serde_json::from_slice(&json).map_err(|e| malformed(format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(malformed("not a JSON object".to_owned()));
    }
    Ok(value)
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

    #[test]
    fn record_names_follow_helm() {
        assert_eq!(record_name("wiki", 12), "sh.helm.release.v1.wiki.v12");
    }
}
