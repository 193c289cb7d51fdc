//! The objects of a release manifest (`helm get manifest`): multi-document YAML.

use serde::Deserialize;
use serde_saphyr::{Budget, DuplicateKeyPolicy, Options};

use super::ObjectRef;

/// Largest manifest read (helm stores releases in a 1 MiB Secret, compressed;
/// big CRD-carrying charts render to a few MiB).
pub const MAX_MANIFEST_BYTES: usize = 32 * 1024 * 1024;

/// Cluster-scoped kinds that can appear in charts; everything else is
/// namespaced and defaults to the release namespace, as helm applies it.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "PersistentVolume"),
    ("", "Node"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("networking.k8s.io", "IngressClass"),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("apiregistration.k8s.io", "APIService"),
    ("policy", "PodSecurityPolicy"),
    ("node.k8s.io", "RuntimeClass"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("cert-manager.io", "ClusterIssuer"),
];

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Larger than [`MAX_MANIFEST_BYTES`].
    #[error("release manifest of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not YAML, or over the parser's budget.
    #[error("release manifest is not valid YAML: {0}")]
    Yaml(#[source] Box<serde_saphyr::Error>),
    /// A document lacks apiVersion, kind or metadata.name.
    #[error("release manifest document {index} has no {missing}")]
    Incomplete {
        /// 1-based position among the non-empty documents.
        index: usize,
        /// The missing field.
        missing: &'static str,
    },
}

#[derive(Deserialize)]
struct Doc {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<Meta>,
}

#[derive(Deserialize)]
struct Meta {
    name: Option<String>,
    namespace: Option<String>,
}

fn options() -> Options {
    // Budget is non_exhaustive: start from its defaults and adjust.
    let mut budget = Budget::default();
    budget.max_reader_input_bytes = Some(MAX_MANIFEST_BYTES);
    budget.max_documents = 10_000;
    // CRD schemas nest deep and have many nodes.
    budget.max_depth = 256;
    budget.flow_nesting_limit = 264;
    budget.max_nodes = 5_000_000;
    budget.max_events = 20_000_000;
    budget.max_total_scalar_bytes = MAX_MANIFEST_BYTES;
    budget.max_inclusion_depth = 0;
    let mut options = Options::default();
    options.budget = Some(budget);
    // What kubectl and helm do with a repeated key.
    options.duplicate_keys = DuplicateKeyPolicy::LastWins;
    // Snippets would quote the manifest, which may contain Secret data.
    options.with_snippet = false;
    options
}

/// The objects of a release manifest, in manifest order. Objects without a
/// namespace get `release_namespace` unless their kind is cluster-scoped.
pub fn parse_manifest(
    manifest: &str,
    release_namespace: &str,
) -> Result<Vec<ObjectRef>, ManifestError> {
    if manifest.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            size: manifest.len(),
            limit: MAX_MANIFEST_BYTES,
        });
    }
    let docs: Vec<Doc> = serde_saphyr::from_multiple_with_options(manifest, options())
        .map_err(|e| ManifestError::Yaml(Box::new(e)))?;
    let mut objects = Vec::with_capacity(docs.len());
    for (i, doc) in docs.into_iter().enumerate() {
        let index = i + 1;
        let missing = |missing| ManifestError::Incomplete { index, missing };
        let api_version = doc.api_version.ok_or_else(|| missing("apiVersion"))?;
        let kind = doc.kind.ok_or_else(|| missing("kind"))?;
        let meta = doc.metadata.ok_or_else(|| missing("metadata"))?;
        let name = meta.name.ok_or_else(|| missing("metadata.name"))?;
        let mut object = ObjectRef {
            api_version,
            kind,
            namespace: meta.namespace.filter(|ns| !ns.is_empty()),
            name,
        };
        if CLUSTER_SCOPED.contains(&(object.group(), object.kind.as_str())) {
            object.namespace = None;
        } else if object.namespace.is_none() {
            object.namespace = Some(release_namespace.to_owned());
        }
        objects.push(object);
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"---
# Source: wiki/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: wiki
---
# Source: wiki/templates/crd.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: pages.wiki.example
  namespace: ignored
---
# Source: wiki/templates/empty.yaml
---
# Source: wiki/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: wiki-web
  namespace: other
  labels: {app: wiki}
spec:
  replicas: 2
  template:
    metadata:
      labels: &labels {app: wiki}
"#;

    #[test]
    fn reads_objects_and_fills_namespaces() {
        let objects = parse_manifest(MANIFEST, "wiki").unwrap();
        let shown: Vec<String> = objects.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "ServiceAccount wiki/wiki",
                "CustomResourceDefinition pages.wiki.example",
                "Deployment other/wiki-web"
            ]
        );
        assert_eq!(objects[2].group(), "apps");
        assert_eq!(objects[2].version(), "v1");
        assert_eq!(objects[0].group(), "");
    }

    #[test]
    fn empty_manifest_has_no_objects() {
        assert!(parse_manifest("", "ns").unwrap().is_empty());
        assert!(
            parse_manifest("---\n# Source: x\n---\n", "ns")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn incomplete_documents_are_named() {
        let err =
            parse_manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "ns").unwrap_err();
        assert!(
            err.to_string().contains("document 1 has no metadata.name"),
            "{err}"
        );
        let err = parse_manifest("kind: ConfigMap\n", "ns").unwrap_err();
        assert!(err.to_string().contains("no apiVersion"), "{err}");
    }

    #[test]
    fn broken_yaml_is_an_error_without_quoting_the_input() {
        let err = parse_manifest(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: \"c2VjcmV0\"\n",
            "ns",
        )
        .unwrap_err();
        assert!(matches!(err, ManifestError::Yaml(_)), "{err}");
        assert!(!format!("{err} {err:?}").contains("c2VjcmV0"), "{err:?}");
    }
}
