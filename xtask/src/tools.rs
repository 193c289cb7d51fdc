//! `cargo xtask tools`: the test cluster's binaries, built from the Go module
//! proxy at pinned versions and cached by version, so only the first build is slow.
//!
//! - `control-plane`: one multi-call binary (xtask/testcluster) holding etcd,
//!   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and a
//!   PKI generator; `kubectl` and `kwok` are symlinks to it.
//! - `helm4`, `helm3`: `go install helm.sh/helm/vN/cmd/helm@version`.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::paths;

/// Kubernetes release of the control plane; also written into its `/version`.
pub const KUBERNETES_VERSION: &str = "v1.36.3";
/// etcd release named by Kubernetes' go.mod for [`KUBERNETES_VERSION`].
pub const ETCD_VERSION: &str = "v3.6.8";
/// KWOK release linked into the control-plane binary.
pub const KWOK_VERSION: &str = "v0.8.0";
/// Helm 4 release the agent drives.
pub const HELM4_VERSION: &str = "v4.3.1";
/// Helm 3 release kept for the smoke subset.
pub const HELM3_VERSION: &str = "v3.22.0";

/// Paths of the built tools.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The multi-call binary (`control-plane <component> ...`).
    pub control_plane: PathBuf,
    /// `kubectl`, a symlink to the multi-call binary.
    pub kubectl: PathBuf,
    /// `kwok`, a symlink to the multi-call binary.
    pub kwok: PathBuf,
    /// Helm 4.
    pub helm4: PathBuf,
    /// Helm 3.
    pub helm3: PathBuf,
}

/// `cargo xtask tools`: build what is missing and print `name path` lines.
pub fn run() -> Result<()> {
    let tools = ensure()?;
    println!("helm4 {}", tools.helm4.display());
    println!("helm3 {}", tools.helm3.display());
    println!("kwok {}", tools.kwok.display());
    println!("kubectl {}", tools.kubectl.display());
    println!("control-plane {}", tools.control_plane.display());
    Ok(())
}

/// Build every tool that is not cached yet and return the paths.
pub fn ensure() -> Result<Tools> {
    let tools_dir = paths::cache_root()?.join("tools");
    fs::create_dir_all(&tools_dir)
        .with_context(|| format!("create the tools directory {}", tools_dir.display()))?;
    // Two xtask processes (say, `tools` in two terminals) must not build the same
    // binary at once; the lock is released when the file is closed.
    let lock_path = tools_dir.join(".lock");
    let lock = fs::File::create(&lock_path)
        .with_context(|| format!("open the lock file {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("lock {}", lock_path.display()))?;

    let source = crate::workspace_root().join("xtask").join("testcluster");
    let cp_dir = tools_dir.join(format!(
        "control-plane-{KUBERNETES_VERSION}-{:016x}",
        source_fingerprint(&source)?
    ));
    let control_plane = cp_dir.join("control-plane");
    if !control_plane.is_file() {
        build_control_plane(&source, &cp_dir)?;
        prune_control_planes(&tools_dir, &cp_dir);
    }
    let kubectl = ensure_symlink(&cp_dir, "kubectl")?;
    let kwok = ensure_symlink(&cp_dir, "kwok")?;

    let helm4 = ensure_helm(&tools_dir, "helm4", "helm.sh/helm/v4", HELM4_VERSION)?;
    let helm3 = ensure_helm(&tools_dir, "helm3", "helm.sh/helm/v3", HELM3_VERSION)?;
    Ok(Tools {
        control_plane,
        kubectl,
        kwok,
        helm4,
        helm3,
    })
}

/// FNV-1a over the Go module's go.mod, go.sum and Go sources: any change to the
/// pins or the code yields a new cache entry instead of a stale binary.
fn source_fingerprint(dir: &Path) -> Result<u64> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("read the Go module directory {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.file_name()))
        .filter(|name| {
            let name = name.to_string_lossy();
            name == "go.mod" || name == "go.sum" || name.ends_with(".go")
        })
        .collect();
    names.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for name in names {
        let path = dir.join(&name);
        let bytes = fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        for byte in name
            .as_encoded_bytes()
            .iter()
            .chain([0u8].iter())
            .chain(&bytes)
        {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    Ok(hash)
}

fn build_control_plane(source: &Path, out_dir: &Path) -> Result<()> {
    let minor = KUBERNETES_VERSION
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .context("KUBERNETES_VERSION has no minor number")?;
    // Without these, /version reports v0.0.0 and Helm's kubeVersion checks fail.
    let ldflags = format!(
        "-s -w -X k8s.io/component-base/version.gitVersion={KUBERNETES_VERSION} \
         -X k8s.io/component-base/version.gitMajor=1 \
         -X k8s.io/component-base/version.gitMinor={minor} \
         -X k8s.io/component-base/version.gitTreeState=clean"
    );
    fs::create_dir_all(out_dir).with_context(|| format!("create {}", out_dir.display()))?;
    let partial = out_dir.join("control-plane.partial");
    eprintln!(
        "building the control plane (Kubernetes {KUBERNETES_VERSION}, etcd {ETCD_VERSION}, \
         kwok {KWOK_VERSION}) from {}; the first build takes 15-30 minutes",
        source.display()
    );
    let mut cmd = go_command()?;
    cmd.current_dir(source)
        .args(["build", "-trimpath", "-ldflags", &ldflags, "-o"])
        .arg(&partial)
        .arg(".");
    run_build(cmd, "control-plane")?;
    let target = out_dir.join("control-plane");
    fs::rename(&partial, &target)
        .with_context(|| format!("move {} to {}", partial.display(), target.display()))?;
    Ok(())
}

/// Remove the binaries of earlier pins or sources (about 140 MB each). A cluster
/// still running one keeps working: Linux keeps a deleted executable alive.
fn prune_control_planes(tools_dir: &Path, current: &Path) {
    let Ok(entries) = fs::read_dir(tools_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = entry
            .file_name()
            .to_string_lossy()
            .starts_with("control-plane-")
            && path != current;
        if stale && let Err(err) = fs::remove_dir_all(&path) {
            eprintln!("could not remove the old {}: {err}", path.display());
        }
    }
}

fn ensure_symlink(dir: &Path, name: &str) -> Result<PathBuf> {
    let link = dir.join(name);
    if fs::read_link(&link).is_err() {
        // A relative target keeps the link valid if the cache directory moves.
        std::os::unix::fs::symlink("control-plane", &link)
            .with_context(|| format!("create the symlink {}", link.display()))?;
    }
    Ok(link)
}

fn ensure_helm(tools_dir: &Path, label: &str, module: &str, version: &str) -> Result<PathBuf> {
    let dir = tools_dir.join(format!("{label}-{version}"));
    let helm = dir.join("helm");
    if helm.is_file() {
        return Ok(helm);
    }
    let staging = tools_dir.join(format!(".{label}-{version}.partial"));
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .with_context(|| format!("remove the leftover {}", staging.display()))?;
    }
    fs::create_dir_all(&staging).with_context(|| format!("create {}", staging.display()))?;
    eprintln!("building {label} ({module} {version}); this takes a few minutes the first time");
    // `helm version` reads this variable; a plain `go install` would report the
    // minor version only.
    let ldflags = format!("-s -w -X {module}/internal/version.version={version}");
    let mut cmd = go_command()?;
    cmd.current_dir(tools_dir)
        .env("GOBIN", &staging)
        .args(["install", "-trimpath", "-ldflags", &ldflags])
        .arg(format!("{module}/cmd/helm@{version}"));
    run_build(cmd, label)?;
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("remove the stale {}", dir.display()))?;
    }
    fs::rename(&staging, &dir)
        .with_context(|| format!("move {} to {}", staging.display(), dir.display()))?;
    Ok(helm)
}

fn go_command() -> Result<Command> {
    let probe = Command::new("go").arg("version").output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => bail!(
            "`go version` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) => bail!(
            "cannot run `go` ({err}): the test cluster is built from source and needs Go 1.26 or newer on PATH"
        ),
    }
    let mut cmd = Command::new("go");
    // Static binaries: no C toolchain needed, and they run on any Linux.
    cmd.env("CGO_ENABLED", "0");
    Ok(cmd)
}

fn run_build(mut cmd: Command, what: &str) -> Result<()> {
    let started = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("start the Go build of {what}"))?;
    if !status.success() {
        bail!("the Go build of {what} failed ({status}); its output is above");
    }
    let mut err = std::io::stderr();
    let _ = writeln!(err, "built {what} in {}s", started.elapsed().as_secs());
    Ok(())
}
