//! The packer is deterministic: the same chart directory gives the same bytes, run after
//! run, whatever the files' timestamps, owners or modes, and reads back unchanged.

use std::path::Path;

use coxswain::chart::{ArchiveLimits, ChartArchive, pack_dir};

fn testdata_charts() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/charts");
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Chart.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn packing_the_testdata_stack_twice_gives_the_same_bytes() {
    let dirs = testdata_charts();
    assert!(!dirs.is_empty());
    for dir in dirs {
        let a = pack_dir(&dir, &ArchiveLimits::default()).unwrap();
        let b = pack_dir(&dir, &ArchiveLimits::default()).unwrap();
        assert!(a.bytes == b.bytes, "{}", dir.display());
        assert_eq!(a.archive.sha256, b.archive.sha256);
        // What was packed reads back with every file intact.
        let back = ChartArchive::read(&a.bytes, "packed", None, &ArchiveLimits::default()).unwrap();
        assert_eq!(back.files, a.archive.files);
    }
}

/// A fixed chart, written with odd modes and times: its archive digest is pinned, so a
/// change in header layout, ordering or compression shows up here first (published
/// digests would otherwise change for unchanged charts).
#[test]
fn a_fixed_chart_packs_to_a_pinned_digest() {
    let dir = tempfile::tempdir().unwrap();
    let files: &[(&str, &str)] = &[
        (
            "Chart.yaml",
            "apiVersion: v2\nname: pinned\nversion: 1.2.3\n",
        ),
        ("values.yaml", "image:\n  tag: v1\nreplicas: 2\n"),
        (
            "templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
        ),
        (
            "templates/_helpers.tpl",
            "{{- define \"x\" -}}x{{- end -}}\n",
        ),
        (
            "charts/sub/Chart.yaml",
            "apiVersion: v2\nname: sub\nversion: 0.0.1\n",
        ),
        (".helmignore", "*.md\n"),
        ("README.md", "left out\n"),
    ];
    for (path, data) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, data).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let packed = pack_dir(dir.path(), &ArchiveLimits::default()).unwrap();
    assert_eq!(packed.archive.files.len(), 6);
    assert_eq!(
        packed.archive.sha256, PINNED_SHA256,
        "the packer's output changed for an unchanged chart"
    );
}

const PINNED_SHA256: &str = "86d5c0e503467c9d1ab2c0cff33e177d714520b5be6ea8cc851835255ed9c71c";
