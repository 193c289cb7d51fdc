//! The chart packer and reader against the real helm: what coxswain packs, helm renders
//! and installs (client-side dry run, no cluster needed); what `helm package` writes,
//! coxswain reads; and both agree on which files a `.helmignore` leaves out.
//!
//! The helm binary comes from `COXSWAIN_TEST_HELM` (as for the e2e tests). These tests
//! fail, rather than skip, when it is unset: a compatibility claim that silently did not
//! run is worse than a red test.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use coxswain::chart::{ArchiveLimits, ChartArchive, pack_dir};

fn helm() -> PathBuf {
    match std::env::var_os("COXSWAIN_TEST_HELM") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "COXSWAIN_TEST_HELM is not set: point it at a helm 4 binary to run the chart \
             compatibility tests (build one with `GOBIN=$PWD/target/tools go install \
             helm.sh/helm/v4/cmd/helm@v4.3.1`)"
        ),
    }
}

/// Runs helm with its homes in `sandbox` and no kubeconfig, returning stdout; fails the
/// test with helm's stderr when it exits non-zero.
fn run_helm(sandbox: &Path, args: &[&str]) -> String {
    let output = support::chart::helm_output(&helm(), sandbox, None, args);
    assert!(
        output.status.success(),
        "helm {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn testdata_charts() -> Vec<PathBuf> {
    support::testdata_chart_dirs()
}

fn paths(chart: &ChartArchive) -> BTreeSet<String> {
    chart.files.keys().cloned().collect()
}

#[test]
fn helm_renders_and_dry_run_installs_what_coxswain_packs() {
    let sandbox = tempfile::tempdir().unwrap();
    for dir in testdata_charts() {
        let packed = pack_dir(&dir, &ArchiveLimits::default()).unwrap();
        let name = packed.archive.name().to_owned();
        let version = packed.archive.version().to_string();
        let tgz = sandbox.path().join(format!("{name}-{version}.tgz"));
        std::fs::write(&tgz, &packed.bytes).unwrap();
        let tgz = tgz.to_str().unwrap();

        let shown = run_helm(sandbox.path(), &["show", "chart", tgz]);
        assert!(shown.contains(&format!("name: {name}")), "{shown}");
        assert!(shown.contains(&format!("version: {version}")), "{shown}");

        let rendered = run_helm(
            sandbox.path(),
            &[
                "template",
                "rel",
                tgz,
                "--namespace",
                "ns",
                "--include-crds",
            ],
        );
        assert!(rendered.contains("kind: "), "{name}: nothing rendered");

        let installed = run_helm(
            sandbox.path(),
            &[
                "install",
                "rel",
                tgz,
                "--namespace",
                "ns",
                "--dry-run=client",
            ],
        );
        assert!(installed.contains("STATUS: pending-install"), "{installed}");
    }
}

#[test]
fn coxswain_reads_what_helm_packages_and_agrees_on_the_file_set() {
    let sandbox = tempfile::tempdir().unwrap();
    let out = sandbox.path().join("out");
    for dir in testdata_charts() {
        let ours = pack_dir(&dir, &ArchiveLimits::default()).unwrap().archive;
        run_helm(
            sandbox.path(),
            &[
                "package",
                dir.to_str().unwrap(),
                "-d",
                out.to_str().unwrap(),
            ],
        );
        let helm_tgz = out.join(format!("{}-{}.tgz", ours.name(), ours.version()));
        let bytes = std::fs::read(&helm_tgz).unwrap();
        let theirs = ChartArchive::read(
            &bytes,
            &helm_tgz.display().to_string(),
            Some(ours.name()),
            &ArchiveLimits::default(),
        )
        .unwrap();
        assert_eq!(theirs.id, ours.id);
        assert_eq!(paths(&theirs), paths(&ours), "{}", dir.display());
        // helm re-serializes every Chart.yaml; everything else is copied byte for byte.
        for (path, content) in &ours.files {
            if !path.ends_with("Chart.yaml") {
                assert_eq!(&theirs.files[path], content, "{path}");
            }
        }
    }
}

#[test]
fn helmignore_leaves_out_the_same_files_as_helm() {
    let sandbox = tempfile::tempdir().unwrap();
    let dir = sandbox.path().join("src");
    let write = |path: &str, data: &str| {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, data).unwrap();
    };
    write(
        "Chart.yaml",
        "apiVersion: v2\nname: ignored\nversion: 2.0.0\n",
    );
    write("values.yaml", "a: 1\n");
    write(
        "templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    );
    write("templates/.hidden.yaml", "not: rendered\n");
    write("templates/notes.bak", "x");
    write("README.md", "# r");
    write("docs/guide.md", "g");
    write("docs/img/a.png", "p");
    write("ci/run.sh", "#!/bin/sh");
    write("nested/ci/keep.txt", "k");
    write(".git/HEAD", "ref");
    write("temp1", "t");
    write("tempXY", "t");
    write("files/a.conf", "c");
    write("files/b.conf", "c");
    write("files/c.txt", "c");
    write(
        ".helmignore",
        "# comments and blanks\n\n.git/\n*.md\n*.bak\n/ci/*\ndocs/img/\ntemp?\nfiles/[ab].conf\n",
    );
    let ours = pack_dir(&dir, &ArchiveLimits::default()).unwrap().archive;
    let out = sandbox.path().join("out");
    run_helm(
        sandbox.path(),
        &[
            "package",
            dir.to_str().unwrap(),
            "-d",
            out.to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(out.join("ignored-2.0.0.tgz")).unwrap();
    let theirs =
        ChartArchive::read(&bytes, "helm package", None, &ArchiveLimits::default()).unwrap();
    assert_eq!(paths(&ours), paths(&theirs));
    // And the expectations themselves, so a shared mistake cannot pass.
    let expected: BTreeSet<String> = [
        ".helmignore",
        "Chart.yaml",
        "values.yaml",
        "templates/cm.yaml",
        "nested/ci/keep.txt",
        "tempXY",
        "files/c.txt",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(paths(&ours), expected);
}
