//! Differential test against the real helm 4 and helm 3: for every archive coxswain's
//! reader accepts (the testdata stack, the real public charts of testdata/charts-real,
//! and generated variants: a `v`-prefixed version,
//! short and leading-zero versions, a v1 chart with `requirements.yaml` and a packed
//! subchart, a chart without `apiVersion`, a template path longer than tar's name
//! field; and charts whose `charts/` publish built from a lock file the real helm wrote,
//! `dependencies: build`, v2 with `Chart.lock` and v1 with `requirements.lock`), `helm show chart` must read the same name,
//! version and apiVersion, and every template `helm template` renders must be a file
//! coxswain holds. For the hostile Chart.yaml cases coxswain refuses, helm is shown to
//! read something other than what the file seems to say, which is why they are refused.
//!
//! Needs `COXSWAIN_TEST_HELM` (helm 4) and `COXSWAIN_TEST_HELM3`; fails without them.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use coxswain::chart::{ArchiveLimits, ChartArchive, PackedChart, pack_dir};
use serde::Deserialize;

fn helms() -> Vec<PathBuf> {
    ["COXSWAIN_TEST_HELM", "COXSWAIN_TEST_HELM3"]
        .iter()
        .map(|var| match std::env::var_os(var) {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => panic!("{var} is not set: the differential test needs helm 4 and helm 3"),
        })
        .collect()
}

/// Runs `helm` with its homes in `sandbox` and no cluster; stdout, or stderr as the error.
fn run(helm: &Path, sandbox: &Path, args: &[&str]) -> Result<String, String> {
    let output = support::chart::helm_output(helm, sandbox, None, args);
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shown {
    api_version: String,
    name: String,
    version: String,
}

fn write(dir: &Path, path: &str, data: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, data).unwrap();
}

const CM: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-{{ .Chart.Name }}\n";

/// Chart directories to pack: testdata's stack and generated variants.
fn accepted_sources(work: &Path) -> Vec<PathBuf> {
    let mut dirs = support::testdata_chart_dirs();
    dirs.extend(support::real_chart_dirs());
    for (name, chart_yaml) in [
        (
            "vprefixed",
            "apiVersion: v2\nname: vprefixed\nversion: v1.14.2\n",
        ),
        ("short", "apiVersion: v2\nname: short\nversion: \"1.2\"\n"),
        (
            "zeros",
            "apiVersion: v2\nname: zeros\nversion: 01.02.3-rc.1+b.007\n",
        ),
        ("noapi", "name: noapi\nversion: 0.1.0\n"),
        (
            "legacy",
            "apiVersion: v1\nname: legacy\nversion: v0.9.0\nappVersion: 1.0\n",
        ),
    ] {
        let dir = work.join("src").join(name);
        write(&dir, "Chart.yaml", chart_yaml);
        write(&dir, "templates/cm.yaml", CM);
        dirs.push(dir);
    }
    // A template path over tar's 100-byte name field: packed with a pax `path` record.
    write(
        &work.join("src/vprefixed"),
        &format!("templates/{}/{}.yaml", "d".repeat(70), "f".repeat(70)),
        CM.replace("{{ .Chart.Name }}", "long").as_str(),
    );
    // The v1 chart takes its dependency from requirements.yaml, packed as a .tgz.
    let legacy = work.join("src/legacy");
    write(
        &legacy,
        "requirements.yaml",
        "dependencies:\n- name: database\n  version: ~0.3.0\n  condition: database.enabled\n",
    );
    let sub = work.join("sub/database");
    write(
        &sub,
        "Chart.yaml",
        "apiVersion: v1\nname: database\nversion: 0.3.1\n",
    );
    write(&sub, "templates/cm.yaml", CM);
    let packed = pack_dir(&sub, &ArchiveLimits::default()).unwrap();
    std::fs::create_dir_all(legacy.join("charts")).unwrap();
    std::fs::write(legacy.join("charts/database-0.3.1.tgz"), packed.bytes).unwrap();
    dirs
}

/// Charts with a `file://` dependency, locked by the real helm 4 (`helm dependency
/// update`, which also fills charts/ on disk: emptied again, as a maintainer commits only
/// the lock), then built by `dependencies: build`: a v2 chart (`Chart.lock`) and a v1
/// chart (`requirements.yaml`, `requirements.lock`).
fn built_archives(work: &Path) -> Vec<PackedChart> {
    let helm = &helms()[0];
    let common = work.join("built/common");
    write(
        &common,
        "Chart.yaml",
        "apiVersion: v2\nname: common\nversion: 0.2.0\n",
    );
    write(&common, "templates/cm.yaml", CM);
    let mut dirs = Vec::new();
    for (name, chart_yaml, requirements) in [
        (
            "built",
            "apiVersion: v2\nname: built\nversion: 1.0.0\ndependencies:\n- name: common\n  version: ~0.2.0\n  repository: file://../common\n",
            None,
        ),
        (
            "builtv1",
            "apiVersion: v1\nname: builtv1\nversion: 1.0.0\n",
            Some(
                "dependencies:\n- name: common\n  version: 0.2.0\n  repository: file://../common\n",
            ),
        ),
    ] {
        let dir = work.join("built").join(name);
        write(&dir, "Chart.yaml", chart_yaml);
        if let Some(text) = requirements {
            write(&dir, "requirements.yaml", text);
        }
        write(&dir, "templates/cm.yaml", CM);
        run(helm, work, &["dependency", "update", dir.to_str().unwrap()])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        std::fs::remove_dir_all(dir.join("charts")).unwrap();
        dirs.push(dir);
    }
    let opts = coxswain::publish::SourceOptions {
        spec_dir: work.to_path_buf(),
        archive_limits: ArchiveLimits::default(),
        site_limits: coxswain::site::Limits::default(),
        helm: helm.clone(),
        allow_outside_spec_dir: false,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    dirs.iter()
        .map(|dir| {
            runtime
                .block_on(coxswain::publish::dependencies::build("diff", dir, &opts))
                .unwrap_or_else(|e| panic!("{}: {}", dir.display(), support::chain(&e)))
        })
        .collect()
}

#[test]
fn helm_reads_what_coxswain_accepts_the_same_way() {
    let work = tempfile::tempdir().unwrap();
    let sources = accepted_sources(work.path());
    let built = built_archives(work.path());
    assert!(
        built
            .iter()
            .all(|b| b.archive.files.contains_key("charts/common-0.2.0.tgz")),
        "the file:// dependency is in each built archive"
    );
    for helm in helms() {
        let packed_dirs = sources.iter().map(|dir| {
            pack_dir(dir, &ArchiveLimits::default())
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        });
        for packed in packed_dirs.chain(built.iter().cloned()) {
            let chart: &ChartArchive = &packed.archive;
            let tgz = work
                .path()
                .join(format!("{}-{}.tgz", chart.name(), chart.version()));
            std::fs::write(&tgz, &packed.bytes).unwrap();
            let tgz = tgz.to_str().unwrap();
            let label = format!("{} on {}", helm.display(), chart.name());

            let shown = run(&helm, work.path(), &["show", "chart", tgz])
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            let shown: Shown = coxswain::yaml::from_slice(
                shown.as_bytes(),
                "helm show chart",
                coxswain::yaml::Limits::bytes(1 << 20),
            )
            .unwrap();
            assert_eq!(shown.name, chart.name(), "{label}");
            assert_eq!(shown.version, chart.version().as_str(), "{label}");
            assert_eq!(shown.api_version, chart.id.api_version.as_str(), "{label}");

            let rendered = run(
                &helm,
                work.path(),
                &[
                    "template",
                    "rel",
                    tgz,
                    "--kube-version",
                    "1.35.0",
                    "--include-crds",
                ],
            )
            .unwrap_or_else(|e| panic!("{label}: {e}"));
            let ours: BTreeSet<String> = chart
                .files
                .keys()
                .map(|p| format!("{}/{p}", chart.name()))
                .collect();
            let mut sources = 0;
            for line in rendered.lines() {
                let Some(source) = line.strip_prefix("# Source: ") else {
                    continue;
                };
                sources += 1;
                // Templates of packed subcharts live inside their .tgz.
                let in_packed_subchart = ours.iter().any(|f| {
                    f.ends_with(".tgz")
                        && source.starts_with(&format!(
                            "{}/",
                            f.rsplit_once('-').map_or(f.as_str(), |(base, _)| base)
                        ))
                });
                assert!(
                    ours.contains(source) || in_packed_subchart,
                    "{label}: helm rendered {source}, which coxswain does not hold"
                );
            }
            assert!(sources > 0, "{label}: helm rendered nothing");
        }
    }
}

#[test]
fn what_coxswain_refuses_in_chart_yaml_helm_reads_differently() {
    // Each of these is refused by coxswain (tests/bad_charts.rs); here helm shows why:
    // the version it reads is not the one the file seems to say.
    let work = tempfile::tempdir().unwrap();
    for (name, chart_yaml, seems, helm_reads) in [
        (
            "float",
            "apiVersion: v2\nname: float\nversion: 1.10\n",
            "1.10",
            "1.1",
        ),
        (
            "integer",
            "apiVersion: v2\nname: integer\nversion: 010\n",
            "010",
            "8",
        ),
    ] {
        let dir = work.path().join(name);
        write(&dir, "Chart.yaml", chart_yaml);
        write(&dir, "templates/cm.yaml", CM);
        let err = pack_dir(&dir, &ArchiveLimits::default()).unwrap_err();
        assert!(err.to_string().contains("Chart.yaml"), "{err}");
        for helm in helms() {
            let shown = run(
                &helm,
                work.path(),
                &["show", "chart", dir.to_str().unwrap()],
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let shown: Shown = coxswain::yaml::from_slice(
                shown.as_bytes(),
                "helm show chart",
                coxswain::yaml::Limits::bytes(1 << 20),
            )
            .unwrap();
            assert_ne!(shown.version, seems, "{name}: helm agrees after all");
            assert_eq!(shown.version, helm_reads, "{name}");
        }
    }
}
