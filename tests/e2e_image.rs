//! The agent's container image, proven with real parts and no container
//! engine: `cargo xtask image` writes the OCI layout twice (same digest:
//! reproducible), the real `crane` pushes it to a real OCI registry (CNCF
//! distribution) on loopback and pulls it back; its config names the
//! non-root user, the entrypoint and the labels; its root filesystem holds
//! exactly coxswain, helm, the CA bundle and the user files (no shell); and
//! the binaries from that root filesystem run: `coxswain --version`,
//! `helm version`, and `coxswain agent --once`, with the image's helm,
//! installs a release on the loopback cluster.
//!
//! Needs `COXSWAIN_TEST_IMAGE_COXSWAIN` (the static coxswain `cargo xtask
//! e2e` builds for the image), `COXSWAIN_TEST_CRANE`, `COXSWAIN_TEST_REGISTRY`
//! and `COXSWAIN_TEST_XTASK`. Run with `cargo xtask e2e`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::cluster::kubeconfig_path;
use support::registry::{Registry, crane};
use support::world::{World, succeed};

fn env_path(name: &str) -> PathBuf {
    match std::env::var_os(name) {
        Some(v) => PathBuf::from(v),
        None => panic!("{name} is not set: run the e2e tests with `cargo xtask e2e`"),
    }
}

fn xtask_image(out: &Path, coxswain: &Path) {
    succeed(
        Command::new(env_path("COXSWAIN_TEST_XTASK"))
            .args(["image", "--tag", "e2e", "--out"])
            .arg(out)
            .arg("--coxswain")
            .arg(coxswain),
    );
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn the_image_is_reproducible_pushes_to_a_registry_and_its_binaries_run_the_agent() {
    let work = tempfile::tempdir().unwrap();
    let coxswain = env_path("COXSWAIN_TEST_IMAGE_COXSWAIN");

    // Reproducible: two builds, byte-identical layouts.
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    xtask_image(&a, &coxswain);
    xtask_image(&b, &coxswain);
    let layout = files(&a);
    assert!(layout == files(&b), "two builds of the same commit differ");
    let names: Vec<&str> = layout.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"oci-layout") && names.contains(&"index.json"),
        "{names:?}"
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("blobs/sha256/"))
            .count(),
        5,
        "three layers, a config and a manifest: {names:?}"
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(a.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "e2e"
    );

    // A real registry, a real client: push, then everything is read back from the registry.
    let registry = Registry::start(None);
    let reference = format!("{}/coxswain:e2e", registry.host);
    crane(&["push", a.to_str().unwrap(), &reference]).expect("crane push");
    let pulled = String::from_utf8(crane(&["digest", &reference]).unwrap()).unwrap();
    assert_eq!(
        pulled.trim(),
        digest,
        "the registry serves the layout's digest"
    );
    let manifest: Value =
        serde_json::from_slice(&crane(&["manifest", &reference]).unwrap()).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 3);
    let config: Value = serde_json::from_slice(&crane(&["config", &reference]).unwrap()).unwrap();
    assert_eq!(config["config"]["User"], "65532:65532", "non-root");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/coxswain"])
    );
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(config["architecture"], "amd64");

    // Its root filesystem, as the registry serves it.
    let rootfs_tar = work.path().join("rootfs.tar");
    crane(&["export", &reference, rootfs_tar.to_str().unwrap()]).expect("crane export");
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let mut regular = BTreeSet::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&rootfs_tar).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        if entry.header().entry_type().is_file() {
            regular.insert(path.trim_start_matches("./").to_owned());
        }
        assert!(
            !entry.header().entry_type().is_symlink(),
            "no links in the image: {path}"
        );
        entry.unpack_in(&rootfs).unwrap();
    }
    assert_eq!(
        regular,
        [
            "etc/group",
            "etc/passwd",
            "etc/ssl/certs/ca-certificates.crt",
            "usr/local/bin/coxswain",
            "usr/local/bin/helm",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<BTreeSet<_>>(),
        "nothing else: no shell, no package manager, no libc"
    );
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");

    // The binaries of the image run (static: no loader, no libc needed).
    let image_coxswain = rootfs.join("usr/local/bin/coxswain");
    let image_helm = rootfs.join("usr/local/bin/helm");
    let version =
        String::from_utf8(succeed(Command::new(&image_coxswain).arg("--version"))).unwrap();
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    let helm_version = String::from_utf8(succeed(
        Command::new(&image_helm).args(["version", "--short"]),
    ))
    .unwrap();
    assert!(helm_version.starts_with("v4."), "{helm_version}");

    // And the image's coxswain, driving the image's helm, installs a release.
    let mut w = World::new("image", &["certs"]).await;
    w.helm = image_helm.clone();
    w.publish(|_, _| {});
    w.subscribe(|_| {}).await;
    let out = Command::new(&image_coxswain)
        .env_clear()
        .env("HOME", work.path())
        .env(
            "SSL_CERT_FILE",
            rootfs.join("etc/ssl/certs/ca-certificates.crt"),
        )
        .args(["agent", "--once", "--namespace", &w.ns.name, "--kubeconfig"])
        .arg(kubeconfig_path())
        .arg("--helm")
        .arg(&image_helm)
        .arg("--cache-dir")
        .arg(w.cache_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the image's agent failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let history = w.history("certs");
    assert_eq!(history.last().unwrap()["status"], "deployed", "{history:?}");
}
