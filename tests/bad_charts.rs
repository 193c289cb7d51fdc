//! Every hostile archive in testdata/bad/charts/ is refused with its specific error, the
//! message names the offending entry or file, nothing panics and nothing is written.

use std::path::Path;

use coxswain::chart::{ArchiveLimits, ChartArchive, ChartError, ChartErrorKind};

fn read(file: &str) -> ChartError {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/bad/charts")
        .join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match ChartArchive::read(&bytes, file, Some("demo"), &ArchiveLimits::default()) {
        Ok(chart) => panic!(
            "{file} was accepted as {} {}",
            chart.name(),
            chart.version()
        ),
        Err(err) => {
            assert_eq!(err.origin, file);
            assert!(err.to_string().starts_with(&format!("{file}: ")), "{err}");
            err
        }
    }
}

/// Asserts the error's message mentions `needle` (the entry or file at fault).
fn names(err: &ChartError, needle: &str) {
    assert!(
        err.to_string().contains(needle),
        "{err} does not name {needle}"
    );
}

#[test]
fn dotdot() {
    let err = read("dotdot.tgz");
    assert!(
        matches!(err.kind, ChartErrorKind::ParentDir { .. }),
        "{err}"
    );
    names(&err, "demo/../../../../tmp/coxswain-bad-chart-dotdot");
    assert!(!Path::new("/tmp/coxswain-bad-chart-dotdot").exists());
}

#[test]
fn absolute_path() {
    let err = read("absolute-path.tgz");
    assert!(
        matches!(err.kind, ChartErrorKind::AbsolutePath { .. }),
        "{err}"
    );
    names(&err, "/tmp/coxswain-bad-chart-absolute");
    assert!(!Path::new("/tmp/coxswain-bad-chart-absolute").exists());
}

#[test]
fn symlink() {
    let err = read("symlink.tgz");
    match &err.kind {
        ChartErrorKind::Symlink { path, target } => {
            assert_eq!(path, "demo/templates/passwd.yaml");
            assert_eq!(target, "/etc/passwd");
        }
        other => panic!("{other:?}"),
    }
    names(&err, "demo/templates/passwd.yaml");
}

#[test]
fn hardlink() {
    let err = read("hardlink.tgz");
    match &err.kind {
        ChartErrorKind::HardLink { path, target } => {
            assert_eq!(path, "demo/templates/shadow.yaml");
            assert_eq!(target, "/etc/shadow");
        }
        other => panic!("{other:?}"),
    }
    names(&err, "demo/templates/shadow.yaml");
}

#[test]
fn device() {
    let err = read("device.tgz");
    assert!(
        matches!(
            err.kind,
            ChartErrorKind::SpecialFile {
                kind: "character device",
                ..
            }
        ),
        "{err}"
    );
    names(&err, "demo/null");
}

#[test]
fn fifo() {
    let err = read("fifo.tgz");
    assert!(
        matches!(err.kind, ChartErrorKind::SpecialFile { kind: "fifo", .. }),
        "{err}"
    );
    names(&err, "demo/pipe");
}

#[test]
fn gzip_bomb_file() {
    let err = read("gzip-bomb-file.tgz");
    assert!(
        matches!(
            err.kind,
            ChartErrorKind::FileTooLarge {
                size: 17825792,
                limit: 16777216,
                ..
            }
        ),
        "{err}"
    );
    names(&err, "demo/templates/bomb.yaml");
}

#[test]
fn gzip_bomb_pax() {
    let err = read("gzip-bomb-pax.tgz");
    assert!(
        matches!(
            err.kind,
            ChartErrorKind::UnpackedTooLarge {
                limit: 104857600,
                ..
            }
        ),
        "{err}"
    );
    // The counter stops while the tar reader buffers the record after the last entry
    // that was read completely.
    names(&err, "demo/values.yaml");
}

#[test]
fn pax_size_override() {
    let err = read("pax-size-override.tgz");
    assert!(
        matches!(
            err.kind,
            ChartErrorKind::FileTooLarge { size: 17825792, .. }
        ),
        "{err}"
    );
    names(&err, "demo/templates/big.yaml");
}

#[test]
fn too_many_entries() {
    let err = read("too-many-entries.tgz");
    assert!(
        matches!(
            err.kind,
            ChartErrorKind::TooManyEntries { limit: 10_000, .. }
        ),
        "{err}"
    );
    names(&err, "demo/");
}

#[test]
fn name_mismatch() {
    let err = read("name-mismatch.tgz");
    match &err.kind {
        ChartErrorKind::NameMismatch {
            path,
            expected,
            found,
        } => {
            assert_eq!(path, "other/Chart.yaml");
            assert_eq!(expected, "demo");
            assert_eq!(found, "other");
        }
        other => panic!("{other:?}"),
    }
    names(&err, "other/Chart.yaml");
}

#[test]
fn top_dir_mismatch() {
    let err = read("top-dir-mismatch.tgz");
    assert!(
        matches!(err.kind, ChartErrorKind::TopDirMismatch { .. }),
        "{err}"
    );
    names(&err, "wrongdir");
}

#[test]
fn missing_chart_yaml() {
    let err = read("missing-chart-yaml.tgz");
    assert!(
        matches!(err.kind, ChartErrorKind::MissingChartYaml { .. }),
        "{err}"
    );
    names(&err, "demo/Chart.yaml");
}

#[test]
fn bad_semver() {
    let err = read("bad-semver.tgz");
    match &err.kind {
        ChartErrorKind::InvalidVersion { path, version, .. } => {
            assert_eq!(path, "demo/Chart.yaml");
            assert_eq!(version, "1.2.3-01");
        }
        other => panic!("{other:?}"),
    }
    names(&err, "demo/Chart.yaml");
}

#[test]
fn bad_name() {
    let err = read("bad-name.tgz");
    assert!(
        matches!(err.kind, ChartErrorKind::InvalidName { .. }),
        "{err}"
    );
    names(&err, "Demo_App/Chart.yaml");
}

#[test]
fn apiversion_v3() {
    let err = read("apiversion-v3.tgz");
    match &err.kind {
        ChartErrorKind::ApiVersion { path, found } => {
            assert_eq!((path.as_str(), found.as_str()), ("demo/Chart.yaml", "v3"));
        }
        other => panic!("{other:?}"),
    }
}

/// A Chart.yaml Helm could read differently: refused with a reason naming the thing.
fn refused_chart_yaml(file: &str, needle: &str) {
    let err = read(file);
    match &err.kind {
        ChartErrorKind::ChartYamlRefused { path, reason } => {
            assert_eq!(path, "demo/Chart.yaml");
            assert!(reason.contains(needle), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn version_float() {
    refused_chart_yaml("version-float.tgz", "Helm would read it as \"1.1\"");
}

#[test]
fn key_case() {
    refused_chart_yaml("key-case.tgz", "`Version` is read by Helm as `version`");
}

#[test]
fn yaml_anchor() {
    refused_chart_yaml("yaml-anchor.tgz", "anchor");
}

#[test]
fn requirements_in_v2() {
    let err = read("requirements-in-v2.tgz");
    assert!(
        matches!(&err.kind, ChartErrorKind::RequirementsInV2 { path } if path == "demo/requirements.yaml"),
        "{err}"
    );
}

fn dependency_error(file: &str, at: &str, needle: &str) {
    let err = read(file);
    match &err.kind {
        ChartErrorKind::Dependency { path, reason } => {
            assert_eq!(path, at);
            assert!(reason.contains(needle), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_dependency() {
    dependency_error(
        "missing-dependency.tgz",
        "demo/Chart.yaml",
        "dependency `database` is not in charts/",
    );
}

#[test]
fn dependency_version() {
    dependency_error(
        "dependency-version.tgz",
        "demo/Chart.yaml",
        "wants version `~0.4.0`, charts/ holds 0.3.0",
    );
}

#[test]
fn v1_missing_requirement() {
    dependency_error(
        "v1-missing-requirement.tgz",
        "demo/requirements.yaml",
        "dependency `database` is not in charts/",
    );
}

fn ambiguous(file: &str, needle: &str) {
    let err = read(file);
    match &err.kind {
        ChartErrorKind::AmbiguousEntry { reason, .. } => {
            assert!(reason.contains(needle), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pax_repeated_path() {
    ambiguous("pax-repeated-path.tgz", "repeats a key");
}

#[test]
fn pax_path_mismatch() {
    ambiguous("pax-path-mismatch.tgz", "disagrees with the header's name");
}

#[test]
fn gnu_long_name() {
    ambiguous("gnu-long-name.tgz", "GNU long-name record");
}

#[test]
fn two_top_dirs() {
    let err = read("two-top-dirs.tgz");
    match &err.kind {
        ChartErrorKind::MultipleTopLevel { first, second } => {
            assert_eq!((first.as_str(), second.as_str()), ("demo", "extra"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn file_at_top() {
    let err = read("file-at-top.tgz");
    assert!(
        matches!(err.kind, ChartErrorKind::NotInDirectory { .. }),
        "{err}"
    );
    names(&err, "Chart.yaml");
}

#[test]
fn duplicate_entry() {
    let err = read("duplicate-entry.tgz");
    assert!(
        matches!(err.kind, ChartErrorKind::DuplicateEntry { .. }),
        "{err}"
    );
    names(&err, "demo/values.yaml");
}

#[test]
fn backslash() {
    let err = read("backslash.tgz");
    assert!(
        matches!(
            err.kind,
            ChartErrorKind::BadPath {
                reason: "contains a backslash",
                ..
            }
        ),
        "{err}"
    );
    names(&err, "demo\\..\\..\\evil.yaml");
}

#[test]
fn not_gzip() {
    let err = read("not-gzip.tgz");
    assert!(matches!(err.kind, ChartErrorKind::Corrupt { .. }), "{err}");
}

#[test]
fn truncated() {
    let err = read("truncated.tgz");
    assert!(matches!(err.kind, ChartErrorKind::Corrupt { .. }), "{err}");
}

#[test]
fn every_bad_chart_has_a_test() {
    // Keep this list in step with the tests above; the xtask test keeps the directory in
    // step with the generator.
    let tested = [
        "absolute-path.tgz",
        "apiversion-v3.tgz",
        "gnu-long-name.tgz",
        "pax-path-mismatch.tgz",
        "pax-repeated-path.tgz",
        "dependency-version.tgz",
        "key-case.tgz",
        "missing-dependency.tgz",
        "requirements-in-v2.tgz",
        "v1-missing-requirement.tgz",
        "version-float.tgz",
        "yaml-anchor.tgz",
        "backslash.tgz",
        "bad-name.tgz",
        "bad-semver.tgz",
        "device.tgz",
        "dotdot.tgz",
        "duplicate-entry.tgz",
        "fifo.tgz",
        "file-at-top.tgz",
        "gzip-bomb-file.tgz",
        "gzip-bomb-pax.tgz",
        "hardlink.tgz",
        "missing-chart-yaml.tgz",
        "name-mismatch.tgz",
        "not-gzip.tgz",
        "pax-size-override.tgz",
        "symlink.tgz",
        "too-many-entries.tgz",
        "top-dir-mismatch.tgz",
        "truncated.tgz",
        "two-top-dirs.tgz",
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bad/charts");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tgz"))
        .collect();
    on_disk.sort();
    let mut tested = tested.to_vec();
    tested.sort();
    assert_eq!(on_disk, tested);
}
