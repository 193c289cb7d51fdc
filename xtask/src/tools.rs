//! `cargo xtask tools`: the test cluster's binaries, built from the Go module
//! proxy at pinned versions and cached by version, so only the first build is slow.
//!
//! - `control-plane`: one multi-call binary (xtask/testcluster) holding etcd,
//!   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and a
//!   PKI generator; `kubectl` and `kwok` are symlinks to it.
//! - `helm4`, `helm3`: `go install helm.sh/helm/vN/cmd/helm@version`.
//! - `crane` (go-containerregistry) and `registry` (CNCF distribution): a real
//!   OCI client and registry, for the image test (`tests/e2e_image.rs`).
//! - `velero` (the server and CLI), its AWS object-store plugin and
//!   `versitygw` (an S3 gateway over a directory): the backups before an
//!   upgrade (`tests/e2e_backup.rs`, `docs/backup.md`). Velero's go.mod has a
//!   `replace` (so `go install module@version` refuses it) and names a
//!   `k8s.io/cli-runtime` patch release the module proxy does not serve: it is
//!   built from a copy of its module with that one requirement moved to the
//!   next patch release ([`VELERO_REQUIRE`]).
//!
//! Debian packages the tests drive as they are (installed with apt-get when a
//! binary is missing, see [`ensure_debian_packages`]):
//!
//! - `prometheus`: `promtool` (rule checks and unit tests) and `prometheus` (the
//!   e2e tests scrape the agent with a real server);
//! - `chromium` and `chromium-driver`: the browser tests of the web UI;
//! - `musl-tools`: `musl-gcc`, for the static coxswain of the image;
//! - `openssl`: the private CAs and the TLS file server of the chart-source tests.

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
/// go-containerregistry release of `crane`, the OCI client of the image test.
pub const CRANE_VERSION: &str = "v0.22.1";
/// CNCF distribution release of the OCI registry of the image test.
pub const REGISTRY_VERSION: &str = "v3.1.2";

/// Velero release of the backup tests (server and CLI in one binary).
pub const VELERO_VERSION: &str = "v1.18.3";
/// Requirements changed in Velero's go.mod before building: v1.18.3 names
/// `k8s.io/cli-runtime v0.33.12`, which the Go module proxy refuses (403,
/// "not available"); v0.33.13 is the next patch release of the same line
/// (it moves k8s.io/api, apimachinery and client-go to v0.33.13 too).
pub const VELERO_REQUIRE: [&str; 1] = ["k8s.io/cli-runtime@v0.33.13"];
/// Velero's AWS object-store plugin: v1.14.x is the line for Velero v1.18.x
/// (the compatibility table of the plugin's README).
pub const VELERO_PLUGIN_AWS_VERSION: &str = "v1.14.3";
/// versitygw, the S3 gateway (Apache-2.0) the backup tests store into.
pub const VERSITYGW_VERSION: &str = "v1.8.0";

/// helmfile release of `cargo xtask bench --compare` (docs/performance.md).
pub const HELMFILE_VERSION: &str = "v1.8.0";
/// Flux's helm-controller release of `bench --compare`.
pub const HELM_CONTROLLER_VERSION: &str = "v1.6.0";
/// Requirements changed in helm-controller's go.mod before building: it names
/// `github.com/fluxcd/pkg/chartutil v1.27.0`, which the Go module proxy refuses
/// (403, "not available"); v1.27.2 is the next patch release it serves.
pub const HELM_CONTROLLER_REQUIRE: [&str; 1] = ["github.com/fluxcd/pkg/chartutil@v1.27.2"];
/// Flux's source-controller release of `bench --compare`: the v1.9 line that
/// helm-controller v1.6.0 is built against (it requires `source-controller/api
/// v1.9.0`). v1.10.1 needs Go 1.27 (`GOTOOLCHAIN=go1.27.3`) and names seven
/// module versions the proxy refuses (fluxcd/pkg's apis/crypto, artifact,
/// spiffe, masktoken, http/transport; cosign v3.1.4; a k8schain pseudo-version).
pub const SOURCE_CONTROLLER_VERSION: &str = "v1.9.6";
/// Requirements changed in source-controller's go.mod before building: v1.9.6
/// names `github.com/fluxcd/pkg/artifact v0.18.3`, which the Go module proxy
/// refuses; v0.18.0 is the release of that line it serves.
pub const SOURCE_CONTROLLER_REQUIRE: [&str; 1] = ["github.com/fluxcd/pkg/artifact@v0.18.0"];

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
    /// `crane`, an OCI registry client.
    pub crane: PathBuf,
    /// `registry`, the CNCF distribution OCI registry.
    pub registry: PathBuf,
    /// The Velero server and CLI, its plugin directory and the S3 gateway.
    pub velero: VeleroTools,
    /// `promtool` from Debian's `prometheus` package.
    pub promtool: PathBuf,
    /// The Prometheus server from Debian's `prometheus` package.
    pub prometheus: PathBuf,
    /// Chromium from Debian's `chromium` package.
    pub chromium: PathBuf,
    /// `chromedriver` from Debian's `chromium-driver` package.
    pub chromedriver: PathBuf,
}

/// `cargo xtask tools`: build what is missing and print `name path` lines.
pub fn run() -> Result<()> {
    let tools = ensure()?;
    println!("helm4 {}", tools.helm4.display());
    println!("helm3 {}", tools.helm3.display());
    println!("crane {}", tools.crane.display());
    println!("registry {}", tools.registry.display());
    println!("kwok {}", tools.kwok.display());
    println!("kubectl {}", tools.kubectl.display());
    println!("control-plane {}", tools.control_plane.display());
    println!("velero {}", tools.velero.server.display());
    println!("velero-plugins {}", tools.velero.plugin_dir.display());
    println!("versitygw {}", tools.velero.s3.display());
    println!("promtool {}", tools.promtool.display());
    println!("prometheus {}", tools.prometheus.display());
    println!("chromium {}", tools.chromium.display());
    println!("chromedriver {}", tools.chromedriver.display());
    Ok(())
}

/// The tools directory, created, and its lock held until the file is dropped:
/// two xtask processes (say, `tools` in two terminals) must not build the same
/// binary at once.
fn lock_tools_dir() -> Result<(PathBuf, fs::File)> {
    let tools_dir = paths::cache_root()?.join("tools");
    fs::create_dir_all(&tools_dir)
        .with_context(|| format!("create the tools directory {}", tools_dir.display()))?;
    let lock_path = tools_dir.join(".lock");
    let lock = fs::File::create(&lock_path)
        .with_context(|| format!("open the lock file {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("lock {}", lock_path.display()))?;
    Ok((tools_dir, lock))
}

/// Install the missing Debian packages, build every tool that is not cached
/// yet and return the paths.
pub fn ensure() -> Result<Tools> {
    let (tools_dir, _lock) = lock_tools_dir()?;
    // First, under the same lock: apt-get takes the dpkg lock and a second
    // xtask would fail on it; and a machine that cannot install fails in
    // seconds instead of after the Go builds.
    let debian = ensure_debian_packages()?;

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
    let crane = ensure_go_binary(
        &tools_dir,
        "crane",
        "github.com/google/go-containerregistry/cmd/crane",
        CRANE_VERSION,
        "-s -w",
    )?;
    let registry = ensure_go_binary(
        &tools_dir,
        "registry",
        "github.com/distribution/distribution/v3/cmd/registry",
        REGISTRY_VERSION,
        "-s -w",
    )?;
    let velero = ensure_velero(&tools_dir)?;
    Ok(Tools {
        control_plane,
        velero,
        kubectl,
        kwok,
        helm4,
        helm3,
        crane,
        registry,
        promtool: debian.promtool,
        prometheus: debian.prometheus,
        chromium: debian.chromium,
        chromedriver: debian.chromedriver,
    })
}

/// The backup tests' binaries.
#[derive(Debug, Clone)]
pub struct VeleroTools {
    /// `velero` (`velero server`, `velero install --crds-only`).
    pub server: PathBuf,
    /// A directory holding only `velero-plugin-for-aws`: `velero server --plugin-dir`.
    pub plugin_dir: PathBuf,
    /// `versitygw`, the S3 gateway.
    pub s3: PathBuf,
}

fn ensure_velero(tools_dir: &Path) -> Result<VeleroTools> {
    let server = ensure_module_binary(
        tools_dir,
        &ModuleBuild {
            label: "velero",
            module: "github.com/vmware-tanzu/velero",
            version: VELERO_VERSION,
            package: "./cmd/velero",
            binary: "velero",
            ldflags: &format!(
                "-s -w -X github.com/vmware-tanzu/velero/pkg/buildinfo.Version={VELERO_VERSION}"
            ),
            require: &VELERO_REQUIRE,
            drop_replace: &[],
            keep: &[],
        },
    )?;
    let plugin = ensure_module_binary(
        tools_dir,
        &ModuleBuild {
            label: "velero-plugin-for-aws",
            module: "github.com/vmware-tanzu/velero-plugin-for-aws",
            version: VELERO_PLUGIN_AWS_VERSION,
            package: "./velero-plugin-for-aws",
            binary: "velero-plugin-for-aws",
            ldflags: "-s -w",
            require: &[],
            drop_replace: &[],
            keep: &[],
        },
    )?;
    let s3 = ensure_module_binary(
        tools_dir,
        &ModuleBuild {
            label: "versitygw",
            module: "github.com/versity/versitygw",
            version: VERSITYGW_VERSION,
            package: "./cmd/versitygw",
            binary: "versitygw",
            ldflags: &format!("-s -w -X main.Version={VERSITYGW_VERSION}"),
            require: &[],
            drop_replace: &[],
            keep: &[],
        },
    )?;
    let plugin_dir = plugin
        .parent()
        .context("the plugin binary has no directory")?
        .to_path_buf();
    Ok(VeleroTools {
        server,
        plugin_dir,
        s3,
    })
}

/// One binary built from a copy of its module's source (`go mod download`),
/// for modules `go install module@version` refuses.
struct ModuleBuild<'a> {
    /// The cache directory is `<label>-<version>`.
    label: &'a str,
    module: &'a str,
    version: &'a str,
    /// The main package, relative to the module root.
    package: &'a str,
    binary: &'a str,
    ldflags: &'a str,
    /// `module@version` requirements set in the copy's go.mod before building.
    require: &'a [&'a str],
    /// `replace` directives dropped from the copy's go.mod (a nested module the
    /// module's zip does not hold is taken from the proxy at its required version).
    drop_replace: &'a [&'a str],
    /// Directories of the module (relative to its root) copied next to the binary,
    /// e.g. a controller's CRDs.
    keep: &'a [&'a str],
}

/// Flux's controllers for `cargo xtask bench --compare` (not part of [`ensure`]:
/// only that benchmark builds them).
#[derive(Debug, Clone)]
pub struct FluxTools {
    /// Flux's helm-controller.
    pub helm_controller: PathBuf,
    /// Flux's source-controller.
    pub source_controller: PathBuf,
    /// The CRDs of both (their modules' `config/crd/bases`).
    pub crds: Vec<PathBuf>,
}

/// Builds helmfile from the Go module proxy unless it is cached
/// (`<tools>/helmfile-<version>/`), for `cargo xtask bench --compare`.
pub fn ensure_helmfile() -> Result<PathBuf> {
    let (tools_dir, _lock) = lock_tools_dir()?;
    ensure_module_binary(
        &tools_dir,
        &ModuleBuild {
            label: "helmfile",
            module: "github.com/helmfile/helmfile",
            version: HELMFILE_VERSION,
            package: ".",
            binary: "helmfile",
            ldflags: &format!("-s -w -X go.szostok.io/version.version={HELMFILE_VERSION}"),
            require: &[],
            drop_replace: &[],
            keep: &[],
        },
    )
}

/// Builds Flux's two controllers from the Go module proxy unless they are
/// cached (`<tools>/<label>-<version>/`, each with its CRDs), for `cargo xtask
/// bench --compare`.
pub fn ensure_flux() -> Result<FluxTools> {
    let (tools_dir, _lock) = lock_tools_dir()?;
    let crds = "config/crd/bases";
    let helm_controller = ensure_module_binary(
        &tools_dir,
        &ModuleBuild {
            label: "helm-controller",
            module: "github.com/fluxcd/helm-controller",
            version: HELM_CONTROLLER_VERSION,
            package: ".",
            binary: "helm-controller",
            ldflags: "-s -w",
            require: &HELM_CONTROLLER_REQUIRE,
            drop_replace: &["github.com/fluxcd/helm-controller/api"],
            keep: &[crds],
        },
    )?;
    let source_controller = ensure_module_binary(
        &tools_dir,
        &ModuleBuild {
            label: "source-controller",
            module: "github.com/fluxcd/source-controller",
            version: SOURCE_CONTROLLER_VERSION,
            package: ".",
            binary: "source-controller",
            ldflags: "-s -w",
            require: &SOURCE_CONTROLLER_REQUIRE,
            drop_replace: &["github.com/fluxcd/source-controller/api"],
            keep: &[crds],
        },
    )?;
    let crds = [&helm_controller, &source_controller]
        .iter()
        .filter_map(|b| b.parent().map(|d| d.join(crds)))
        .collect();
    Ok(FluxTools {
        helm_controller,
        source_controller,
        crds,
    })
}

/// Builds `build` into `<tools>/<label>-<version>/<binary>` unless it is there:
/// `go mod download -json module@version` (the module proxy, verified by
/// go.sum's checksum database), a writable copy of the module in a staging
/// directory, `go mod edit -require` for each of `require`, then `go build`
/// with `-mod=mod`. Returns the binary.
fn ensure_module_binary(tools_dir: &Path, build: &ModuleBuild<'_>) -> Result<PathBuf> {
    let ModuleBuild {
        label,
        module,
        version,
        package,
        binary,
        ldflags,
        require,
        drop_replace,
        keep,
    } = *build;
    let dir = tools_dir.join(format!("{label}-{version}"));
    let out = dir.join(binary);
    if out.is_file() {
        return Ok(out);
    }
    let staging = tools_dir.join(format!(".{label}-{version}.partial"));
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .with_context(|| format!("remove the leftover {}", staging.display()))?;
    }
    let source = staging.join("src");
    fs::create_dir_all(&source).with_context(|| format!("create {}", source.display()))?;
    eprintln!("building {label} ({module} {version}); this takes a few minutes the first time");
    let download = go_command()?
        .current_dir(&staging)
        .args(["mod", "download", "-json"])
        .arg(format!("{module}@{version}"))
        .output()
        .with_context(|| format!("run go mod download {module}@{version}"))?;
    if !download.status.success() {
        bail!(
            "go mod download {module}@{version} failed ({}): {}{}",
            download.status,
            String::from_utf8_lossy(&download.stdout).trim(),
            String::from_utf8_lossy(&download.stderr).trim()
        );
    }
    let info: serde_json::Value = serde_json::from_slice(&download.stdout)
        .with_context(|| format!("read go mod download's answer for {module}@{version}"))?;
    let module_dir = info
        .get("Dir")
        .and_then(serde_json::Value::as_str)
        .with_context(|| format!("go mod download names no directory for {module}@{version}"))?;
    copy_tree(Path::new(module_dir), &source)?;
    let edits = require
        .iter()
        .map(|r| format!("-require={r}"))
        .chain(drop_replace.iter().map(|r| format!("-dropreplace={r}")));
    for req in edits {
        let status = go_command()?
            .current_dir(&source)
            .args(["mod", "edit"])
            .arg(&req)
            .status()
            .with_context(|| format!("run go mod edit {req} for {label}"))?;
        if !status.success() {
            bail!("go mod edit {req} failed for {label} ({status})");
        }
    }
    let partial = staging.join(binary);
    let mut cmd = go_command()?;
    cmd.current_dir(&source)
        .env("GOFLAGS", "-mod=mod")
        .args(["build", "-trimpath", "-ldflags", ldflags, "-o"])
        .arg(&partial)
        .arg(package);
    run_build(cmd, label)?;
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("remove the stale {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    for sub in keep {
        let target = dir.join(sub);
        fs::create_dir_all(&target).with_context(|| format!("create {}", target.display()))?;
        copy_tree(&source.join(sub), &target)?;
    }
    fs::rename(&partial, &out)
        .with_context(|| format!("move {} to {}", partial.display(), out.display()))?;
    fs::remove_dir_all(&staging)
        .with_context(|| format!("remove the build directory {}", staging.display()))?;
    Ok(out)
}

/// Copies a module's source tree (regular files and directories; the module
/// cache holds nothing else), writable, so go.mod can be edited.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry.with_context(|| format!("read an entry of {}", from.display()))?;
        let kind = entry
            .file_type()
            .with_context(|| format!("stat {}", entry.path().display()))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            fs::create_dir_all(&target).with_context(|| format!("create {}", target.display()))?;
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target).with_context(|| {
                format!("copy {} to {}", entry.path().display(), target.display())
            })?;
            let mut perms = fs::metadata(&target)
                .with_context(|| format!("stat {}", target.display()))?
                .permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
            fs::set_permissions(&target, perms)
                .with_context(|| format!("make {} writable", target.display()))?;
        }
    }
    Ok(())
}

/// The binaries the tests take from Debian packages, with the package that
/// ships each one.
const DEBIAN_BINARIES: [(&str, &str); 6] = [
    // The static coxswain of the image (`cargo xtask image`) compiles aws-lc with it.
    ("/usr/bin/musl-gcc", "musl-tools"),
    ("/usr/bin/promtool", "prometheus"),
    ("/usr/bin/prometheus", "prometheus"),
    ("/usr/bin/chromium", "chromium"),
    ("/usr/bin/chromedriver", "chromium-driver"),
    // The private CAs and the TLS file server of tests/e2e_sources.rs.
    ("/usr/bin/openssl", "openssl"),
];

/// Paths of the binaries from Debian packages.
#[derive(Debug, Clone)]
pub struct DebianTools {
    /// `promtool`.
    pub promtool: PathBuf,
    /// `prometheus`.
    pub prometheus: PathBuf,
    /// `chromium`.
    pub chromium: PathBuf,
    /// `chromedriver`.
    pub chromedriver: PathBuf,
}

/// Install the Debian packages whose binaries are missing
/// (`apt-get install -y --no-install-recommends`, through `sudo` when not root)
/// and return the binaries' paths. Does nothing when every binary is there.
pub fn ensure_debian_packages() -> Result<DebianTools> {
    let missing = missing_packages(|path| Path::new(path).is_file());
    if !missing.is_empty() {
        install_debian_packages(&missing)?;
        let still = missing_packages(|path| Path::new(path).is_file());
        if let Some((binary, package)) = DEBIAN_BINARIES
            .iter()
            .find(|(_, package)| still.contains(package))
        {
            bail!("apt-get installed the Debian package {package}, but {binary} is still missing");
        }
    }
    let [
        _musl_gcc,
        promtool,
        prometheus,
        chromium,
        chromedriver,
        _openssl,
    ] = DEBIAN_BINARIES.map(|(binary, _)| PathBuf::from(binary));
    Ok(DebianTools {
        promtool,
        prometheus,
        chromium,
        chromedriver,
    })
}

/// The packages (deduplicated, in [`DEBIAN_BINARIES`] order) of the binaries
/// for which `exists` is false.
fn missing_packages(exists: impl Fn(&str) -> bool) -> Vec<&'static str> {
    let mut packages = Vec::new();
    for (binary, package) in DEBIAN_BINARIES {
        if !exists(binary) && !packages.contains(&package) {
            packages.push(package);
        }
    }
    packages
}

/// How apt-get is run: directly as root, else through `sudo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Privilege {
    Root,
    Sudo,
}

fn install_debian_packages(packages: &[&str]) -> Result<()> {
    let names = packages.join(" ");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let privilege = if root {
        Privilege::Root
    } else if find_on_path("sudo").is_some() {
        Privilege::Sudo
    } else {
        bail!(
            "the tests need the Debian package(s) {names}, which are not installed, and this \
             user is not root and has no sudo: run `apt-get install -y --no-install-recommends \
             {names}` as root"
        );
    };
    eprintln!("installing the Debian package(s) {names} with apt-get");
    let install = apt_get(privilege, "install", packages)?;
    if install.status.success() {
        return Ok(());
    }
    if !needs_update(&install.stderr) {
        bail!(
            "apt-get could not install the Debian package(s) {names} ({}): {}",
            install.status,
            install.stderr.trim()
        );
    }
    // A fresh image has no package lists; apt-get update only when that is why.
    eprintln!("apt-get does not know {names} yet: running apt-get update");
    let update = apt_get(privilege, "update", &[])?;
    if !update.status.success() {
        bail!(
            "apt-get update failed ({}) while installing the Debian package(s) {names}: {}",
            update.status,
            update.stderr.trim()
        );
    }
    let retry = apt_get(privilege, "install", packages)?;
    if !retry.status.success() {
        bail!(
            "apt-get could not install the Debian package(s) {names} after apt-get update ({}): {}",
            retry.status,
            retry.stderr.trim()
        );
    }
    Ok(())
}

/// apt-get says this for a package its lists do not have, e.g.
/// `E: Unable to locate package chromium-driver`.
fn needs_update(stderr: &str) -> bool {
    stderr.contains("Unable to locate package")
}

/// The outcome of one apt-get run.
struct AptRun {
    status: std::process::ExitStatus,
    stderr: String,
}

/// The argv of one apt-get run: `env` carries DEBIAN_FRONTEND through sudo,
/// which resets the environment.
fn apt_get_argv(privilege: Privilege, action: &str, packages: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    if privilege == Privilege::Sudo {
        argv.push("sudo".into());
    }
    argv.extend(["env".into(), "DEBIAN_FRONTEND=noninteractive".into()]);
    argv.extend(["apt-get".into(), action.into()]);
    if action == "install" {
        argv.extend(["-y".into(), "--no-install-recommends".into()]);
    }
    argv.extend(packages.iter().map(|p| (*p).to_owned()));
    argv
}

/// Run apt-get with its stdout on the terminal (a chromium install is long and
/// should show progress) and its stderr captured for the error message.
fn apt_get(privilege: Privilege, action: &str, packages: &[&str]) -> Result<AptRun> {
    let argv = apt_get_argv(privilege, action, packages);
    let (program, args) = argv.split_first().context("apt-get argv is empty")?;
    let output = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("run `{}`", argv.join(" ")))?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    eprint!("{stderr}");
    Ok(AptRun {
        status: output.status,
        stderr,
    })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
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
    // `helm version` reads this variable; a plain `go install` would report the
    // minor version only.
    let ldflags = format!("-s -w -X {module}/internal/version.version={version}");
    let helm = ensure_go_binary(
        tools_dir,
        label,
        &format!("{module}/cmd/helm"),
        version,
        &ldflags,
    )?;
    Ok(helm)
}

/// `go install PACKAGE@VERSION` (static, trimmed) into `<tools>/<label>-<version>/`,
/// unless it is there; returns the binary (named after the package's last element).
fn ensure_go_binary(
    tools_dir: &Path,
    label: &str,
    package: &str,
    version: &str,
    ldflags: &str,
) -> Result<PathBuf> {
    let binary_name = package.rsplit('/').next().unwrap_or(label);
    let dir = tools_dir.join(format!("{label}-{version}"));
    let binary = dir.join(binary_name);
    if binary.is_file() {
        return Ok(binary);
    }
    let staging = tools_dir.join(format!(".{label}-{version}.partial"));
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .with_context(|| format!("remove the leftover {}", staging.display()))?;
    }
    fs::create_dir_all(&staging).with_context(|| format!("create {}", staging.display()))?;
    eprintln!("building {label} ({package} {version}); this takes a few minutes the first time");
    let mut cmd = go_command()?;
    cmd.current_dir(tools_dir)
        .env("GOBIN", &staging)
        .args(["install", "-trimpath", "-ldflags", ldflags])
        .arg(format!("{package}@{version}"));
    run_build(cmd, label)?;
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("remove the stale {}", dir.display()))?;
    }
    fs::rename(&staging, &dir)
        .with_context(|| format!("move {} to {}", staging.display(), dir.display()))?;
    Ok(binary)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_installed_when_every_binary_exists() {
        assert!(missing_packages(|_| true).is_empty());
    }

    #[test]
    fn each_missing_binary_names_its_package_once() {
        assert_eq!(
            missing_packages(|_| false),
            [
                "musl-tools",
                "prometheus",
                "chromium",
                "chromium-driver",
                "openssl"
            ]
        );
        assert_eq!(
            missing_packages(|path| path != "/usr/bin/promtool"),
            ["prometheus"]
        );
        assert_eq!(
            missing_packages(|path| path != "/usr/bin/chromedriver"),
            ["chromium-driver"]
        );
    }

    #[test]
    fn apt_get_runs_noninteractive_and_without_recommends() {
        assert_eq!(
            apt_get_argv(Privilege::Root, "install", &["prometheus", "chromium"]),
            [
                "env",
                "DEBIAN_FRONTEND=noninteractive",
                "apt-get",
                "install",
                "-y",
                "--no-install-recommends",
                "prometheus",
                "chromium"
            ]
        );
        assert_eq!(
            apt_get_argv(Privilege::Sudo, "update", &[]),
            [
                "sudo",
                "env",
                "DEBIAN_FRONTEND=noninteractive",
                "apt-get",
                "update"
            ]
        );
    }

    #[test]
    fn only_an_unknown_package_triggers_apt_get_update() {
        assert!(needs_update(
            "E: Unable to locate package chromium-driver\n"
        ));
        assert!(!needs_update(
            "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 42\n"
        ));
    }
}
