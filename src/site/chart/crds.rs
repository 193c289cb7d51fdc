//! The CustomResourceDefinitions of a chart's `crds/`, read from the chart archive in
//! memory, for releases whose CRD policy has coxswain apply them (`create`,
//! `createReplace`).
//!
//! Files are taken as Helm takes them (`crds/` and below, names ending in `.yaml`,
//! `.yml` or `.json` in any case; other files are ignored; documents separated by
//! `---`, empty ones skipped), but what coxswain applies is bounded: every object
//! must be an `apiextensions.k8s.io/v1` CustomResourceDefinition with a name, no name
//! twice, at most [`MAX_CRD_OBJECTS`] objects and [`MAX_CRD_BYTES`] in all. A subchart
//! carrying `crds/` is refused: with a policy helm is told to skip CRDs
//! (`--skip-crds`), so those would never be installed. Publish refuses such a chart;
//! the agent reads it again from the verified archive before applying.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{ArchiveLimits, ChartArchive};
use crate::values::YamlValue;
use crate::yaml;

/// Most CRD objects one chart may carry (the largest public operator charts have
/// about a hundred).
pub const MAX_CRD_OBJECTS: usize = 256;
/// Most bytes of `crds/` files in all (the largest public CRD bundles are a few MiB).
pub const MAX_CRD_BYTES: usize = 16 << 20;
/// The `apiVersion` of every object coxswain applies from `crds/`.
pub const CRD_API_VERSION: &str = "apiextensions.k8s.io/v1";
/// The `kind` of every object coxswain applies from `crds/`.
pub const CRD_KIND: &str = "CustomResourceDefinition";

/// One CustomResourceDefinition of a chart's `crds/`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartCrd {
    /// `metadata.name` (`<plural>.<group>`).
    pub name: String,
    /// The file it came from, relative to the chart (`crds/widgets.yaml`).
    pub file: String,
    /// The object as JSON, exactly as written.
    pub object: Map<String, Value>,
}

/// Why a chart's `crds/` cannot be applied by coxswain.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// A file is not YAML coxswain reads (or over a budget).
    #[error(transparent)]
    Yaml(#[from] yaml::YamlError),
    /// A document that JSON (or the API server) would read differently.
    #[error("{file} document {document}: {problem}")]
    Changed {
        /// The file.
        file: String,
        /// 1-based document number in the file.
        document: usize,
        /// What and where.
        problem: crate::values::ValuesProblem,
    },
    /// A document that is not a mapping.
    #[error("{file} document {document}: not a Kubernetes object (a mapping)")]
    NotAnObject {
        /// The file.
        file: String,
        /// 1-based document number in the file.
        document: usize,
    },
    /// Another kind of object in `crds/`.
    #[error(
        "{file} document {document}: {kind} ({api_version}) in crds/; coxswain applies only \
         {CRD_KIND} objects ({CRD_API_VERSION}) from crds/: move it to templates/"
    )]
    NotACrd {
        /// The file.
        file: String,
        /// 1-based document number in the file.
        document: usize,
        /// Its `kind`, or `(none)`.
        kind: String,
        /// Its `apiVersion`, or `(none)`.
        api_version: String,
    },
    /// A CRD without `metadata.name`.
    #[error("{file} document {document}: a {CRD_KIND} without metadata.name")]
    NoName {
        /// The file.
        file: String,
        /// 1-based document number in the file.
        document: usize,
    },
    /// The same CRD twice.
    #[error("{CRD_KIND} {name} appears twice, in {first} and {second}")]
    Duplicate {
        /// The CRD.
        name: String,
        /// Where it was first.
        first: String,
        /// Where it was again.
        second: String,
    },
    /// More objects than [`MAX_CRD_OBJECTS`].
    #[error("crds/ holds more than {limit} objects")]
    TooMany {
        /// The cap.
        limit: usize,
    },
    /// More bytes than [`MAX_CRD_BYTES`].
    #[error("crds/ files add up to {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Their size.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// A subchart carries `crds/`.
    #[error(
        "subchart {subchart} carries crds/; with a CRD policy helm skips every CRD, and \
         coxswain applies only the chart's own crds/: move them into the parent chart's \
         crds/ or leave the release's crds policy unset"
    )]
    InSubchart {
        /// The subchart, as a path in the chart.
        subchart: String,
    },
    /// A packed subchart could not be read again.
    #[error("subchart {subchart} cannot be read")]
    Subchart {
        /// The subchart.
        subchart: String,
        /// The reader's error.
        #[source]
        source: Box<super::ChartError>,
    },
}

/// Whether Helm reads `name` from `crds/` as a manifest.
fn is_manifest(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// The CRDs of `archive`'s `crds/`, in file order, each checked (see the module).
pub fn chart_crds(
    archive: &ChartArchive,
    limits: &ArchiveLimits,
) -> Result<Vec<ChartCrd>, CrdError> {
    check_subcharts(&archive.files, "", limits, 0)?;
    let files: Vec<(&String, &Vec<u8>)> = archive
        .files
        .iter()
        .filter(|(path, _)| path.starts_with("crds/") && is_manifest(path))
        .collect();
    let size: usize = files.iter().map(|(_, bytes)| bytes.len()).sum();
    if size > MAX_CRD_BYTES {
        return Err(CrdError::TooLarge {
            size,
            limit: MAX_CRD_BYTES,
        });
    }
    let mut crds: Vec<ChartCrd> = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (file, bytes) in files {
        let documents: Vec<YamlValue> = yaml::from_slice_multi(
            bytes,
            file,
            yaml::Limits::bytes(MAX_CRD_BYTES),
            MAX_CRD_OBJECTS + 1,
        )?;
        for (i, document) in documents.iter().enumerate() {
            let document_no = i + 1;
            let object = match crate::values::to_json_object(document) {
                Ok(Some(object)) => object,
                Ok(None) => {
                    return Err(CrdError::NotAnObject {
                        file: file.clone(),
                        document: document_no,
                    });
                }
                Err(problem) => {
                    return Err(CrdError::Changed {
                        file: file.clone(),
                        document: document_no,
                        problem,
                    });
                }
            };
            let crd = check_crd(object, file, document_no)?;
            if crds.len() == MAX_CRD_OBJECTS {
                return Err(CrdError::TooMany {
                    limit: MAX_CRD_OBJECTS,
                });
            }
            if let Some(first) = seen.insert(crd.name.clone(), file.clone()) {
                return Err(CrdError::Duplicate {
                    name: crd.name,
                    first,
                    second: file.clone(),
                });
            }
            crds.push(crd);
        }
    }
    Ok(crds)
}

fn check_crd(
    object: Map<String, Value>,
    file: &str,
    document: usize,
) -> Result<ChartCrd, CrdError> {
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    if api_version != Some(CRD_API_VERSION) || kind != Some(CRD_KIND) {
        return Err(CrdError::NotACrd {
            file: file.to_owned(),
            document,
            kind: crate::bounded::bounded(kind.unwrap_or("(none)"), crate::bounded::MAX_ECHO),
            api_version: crate::bounded::bounded(
                api_version.unwrap_or("(none)"),
                crate::bounded::MAX_ECHO,
            ),
        });
    }
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| CrdError::NoName {
            file: file.to_owned(),
            document,
        })?
        .to_owned();
    Ok(ChartCrd {
        name,
        file: file.to_owned(),
        object,
    })
}

/// Refuses the first subchart (unpacked or packed, at any depth) that carries `crds/`.
fn check_subcharts(
    files: &BTreeMap<String, Vec<u8>>,
    shown: &str,
    limits: &ArchiveLimits,
    depth: usize,
) -> Result<(), CrdError> {
    // One subchart per first path component below charts/, as Helm groups them.
    let mut subcharts: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for (path, bytes) in files {
        if let Some(rest) = path.strip_prefix("charts/") {
            let (group, inner) = rest.split_once('/').unwrap_or((rest, ""));
            subcharts
                .entry(group)
                .or_default()
                .insert(inner.to_owned(), bytes.clone());
        }
    }
    // The reader bounded the nesting already; this stops a loop all the same.
    if depth >= 8 {
        return Ok(());
    }
    for (group, sub_files) in subcharts {
        let subchart = format!("{shown}charts/{group}");
        let nested;
        let sub_files = match sub_files.get("") {
            Some(bytes) if group.ends_with(".tgz") => {
                nested = ChartArchive::read(bytes, &subchart, None, limits).map_err(|e| {
                    CrdError::Subchart {
                        subchart: subchart.clone(),
                        source: Box::new(e),
                    }
                })?;
                &nested.files
            }
            _ => &sub_files,
        };
        if sub_files.keys().any(|p| p.starts_with("crds/")) {
            return Err(CrdError::InSubchart { subchart });
        }
        check_subcharts(sub_files, &format!("{subchart}/"), limits, depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRD: &str = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
                       metadata: {name: widgets.example.test}\nspec: {group: example.test}\n";

    fn archive(files: &[(&str, &str)]) -> ChartArchive {
        let mut map = BTreeMap::new();
        map.insert(
            "Chart.yaml".to_owned(),
            b"apiVersion: v2\nname: demo\nversion: 1.0.0\n".to_vec(),
        );
        for (path, text) in files {
            map.insert((*path).to_owned(), text.as_bytes().to_vec());
        }
        ChartArchive {
            id: super::super::ChartId {
                api_version: super::super::ChartApiVersion::V2,
                name: "demo".into(),
                version: crate::format::ChartVersion::parse("1.0.0").unwrap(),
            },
            files: map,
            sha256: String::new(),
            size: 0,
        }
    }

    fn read(files: &[(&str, &str)]) -> Result<Vec<ChartCrd>, CrdError> {
        chart_crds(&archive(files), &ArchiveLimits::default())
    }

    #[test]
    fn reads_the_crds_as_helm_picks_the_files() {
        let two = format!(
            "---\n{CRD}---\n# nothing\n---\n{}",
            CRD.replace("widgets.example", "gadgets.example")
        );
        let crds = read(&[
            ("crds/a.yaml", &two),
            ("crds/README.md", "not read, as helm does not"),
            ("crds/nested/b.JSON", &CRD.replace("widgets", "gizmos")),
            ("templates/x.yaml", "kind: Deployment"),
        ])
        .unwrap();
        let names: Vec<&str> = crds.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "widgets.example.test",
                "gadgets.example.test",
                "gizmos.example.test"
            ]
        );
        assert_eq!(crds[2].file, "crds/nested/b.JSON");
        assert_eq!(crds[0].object["spec"]["group"], "example.test");
        assert!(read(&[]).unwrap().is_empty());
    }

    #[test]
    fn refuses_what_it_would_not_apply() {
        let err = read(&[(
            "crds/a.yaml",
            &format!("{CRD}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: x}}\n"),
        )])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "crds/a.yaml document 2: Deployment (apps/v1) in crds/; coxswain applies only \
             CustomResourceDefinition objects (apiextensions.k8s.io/v1) from crds/: move it to templates/"
        );
        let err = read(&[(
            "crds/a.yaml",
            &CRD.replace("apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1"),
        )])
        .unwrap_err();
        assert!(
            matches!(err, CrdError::NotACrd { ref api_version, .. } if api_version == "apiextensions.k8s.io/v1beta1"),
            "{err}"
        );
        let err = read(&[(
            "crds/a.yaml",
            &CRD.replace("{name: widgets.example.test}", "{}"),
        )])
        .unwrap_err();
        assert!(matches!(err, CrdError::NoName { document: 1, .. }), "{err}");
        let err = read(&[("crds/a.yaml", CRD), ("crds/b.yaml", CRD)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CustomResourceDefinition widgets.example.test appears twice, in crds/a.yaml and crds/b.yaml"
        );
        let err = read(&[("crds/a.yaml", "- a list\n")]).unwrap_err();
        assert!(matches!(err, CrdError::NotAnObject { .. }), "{err}");
        let err = read(&[("crds/a.yaml", "a: [unclosed\n")]).unwrap_err();
        assert!(matches!(err, CrdError::Yaml(_)), "{err}");
        let many: String = (0..=MAX_CRD_OBJECTS)
            .map(|i| CRD.replace("widgets", &format!("w{i}")) + "---\n")
            .collect();
        let err = read(&[("crds/many.yaml", &many)]).unwrap_err();
        assert!(
            matches!(err, CrdError::TooMany { .. } | CrdError::Yaml(_)),
            "{err}"
        );
        let big = "#".repeat(MAX_CRD_BYTES + 1);
        let err = read(&[("crds/big.yaml", &big)]).unwrap_err();
        assert!(matches!(err, CrdError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn refuses_crds_in_a_subchart() {
        let err = read(&[
            ("crds/a.yaml", CRD),
            (
                "charts/db/Chart.yaml",
                "apiVersion: v2\nname: db\nversion: 1.0.0\n",
            ),
            ("charts/db/crds/x.yaml", CRD),
        ])
        .unwrap_err();
        assert!(
            matches!(err, CrdError::InSubchart { ref subchart } if subchart == "charts/db"),
            "{err}"
        );
        let err = read(&[("charts/db/charts/inner/crds/x.yaml", CRD)]).unwrap_err();
        assert!(matches!(err, CrdError::InSubchart { .. }), "{err}");
        // A template directory named crds is not a chart's crds/.
        assert!(read(&[("charts/db/templates/crds/x.yaml", "kind: X")]).is_ok());
    }
}
