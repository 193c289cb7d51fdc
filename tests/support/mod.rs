//! Shared helpers for integration tests: paths into testdata/ and the test-only keys.
#![allow(dead_code)] // each test binary uses a different subset

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use coxswain::keys::{self, SigningKey};

pub mod chart;
pub mod cluster;
pub mod proxy;
pub mod registry;
pub mod sources;
pub mod velero;
pub mod world;

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path under testdata/.
pub fn testdata(rel: &str) -> PathBuf {
    repo().join("testdata").join(rel)
}

/// Copies testdata/keys/NAME.key into `dir` with mode 0600 (git does not keep modes,
/// and coxswain refuses looser private key files) and returns the copy's path.
pub fn test_key_file(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(format!("{name}.key"));
    std::fs::copy(testdata(&format!("keys/{name}.key")), &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    to
}

/// A test key, loaded through the same checks as any key file.
pub fn test_key(name: &str) -> SigningKey {
    let dir = tempfile::tempdir().unwrap();
    keys::read_signing_key(&test_key_file(dir.path(), name)).unwrap()
}

/// An error and all its causes, `a: b: c`, as the CLI prints them.
pub fn chain(err: &dyn std::error::Error) -> String {
    coxswain::site_verify::describe(err)
}

/// Every file under `dir`, relative, with its bytes: to prove nothing was written.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path.strip_prefix(dir).unwrap().to_path_buf(), bytes));
            }
        }
    }
    out.sort();
    out
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The chart directories of testdata/charts (the stack), sorted.
pub fn testdata_chart_dirs() -> Vec<PathBuf> {
    let root = testdata("charts");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Chart.yaml").is_file())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 5,
        "expected the testdata stack in {}",
        root.display()
    );
    dirs
}

/// The real public charts vendored under testdata/charts-real (current and
/// previous upstream versions), sorted.
pub fn real_chart_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for set in ["current", "previous"] {
        let root = testdata("charts-real").join(set);
        dirs.extend(
            std::fs::read_dir(&root)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.join("Chart.yaml").is_file()),
        );
    }
    dirs.sort();
    assert!(
        dirs.len() >= 8,
        "expected the real charts in {}",
        testdata("charts-real").display()
    );
    dirs
}
