//! Helpers for the end-to-end tests (`tests/e2e_*.rs`).
//!
//! The tests run against the loopback cluster that `cargo xtask e2e` starts and
//! find it through the environment it sets: `KUBECONFIG`, `COXSWAIN_TEST_HELM`
//! (helm 4), `COXSWAIN_TEST_HELM3`, `COXSWAIN_TEST_KUBECTL` and
//! `COXSWAIN_TEST_XTASK` (the xtask binary, to start a cluster of a test's own
//! or stop one of its components). A test that cannot reach the cluster fails
//! with a hint; it never skips.

use std::ffi::OsStr;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// What to do when the cluster or a tool is missing.
pub const HINT: &str = "run the e2e tests with `cargo xtask e2e`: it builds the tools, \
     starts the loopback cluster and sets KUBECONFIG, COXSWAIN_TEST_HELM, \
     COXSWAIN_TEST_HELM3, COXSWAIN_TEST_KUBECTL and COXSWAIN_TEST_XTASK";

/// A path from environment variable `var` that must name an existing file.
pub fn env_path(var: &str) -> PathBuf {
    env_existing(var, false)
}

/// A path from environment variable `var` that must name an existing directory.
pub fn env_dir(var: &str) -> PathBuf {
    env_existing(var, true)
}

fn env_existing(var: &str, dir: bool) -> PathBuf {
    let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
        panic!("{var} is not set: {HINT}");
    };
    let path = PathBuf::from(value);
    let what = if dir { "directory" } else { "file" };
    assert!(
        if dir { path.is_dir() } else { path.is_file() },
        "{var}={} does not name a {what}: {HINT}",
        path.display()
    );
    path
}

/// The kubeconfig of a cluster this test binary started for itself
/// ([`OwnCluster`]); when set, every helper uses it instead of `KUBECONFIG`.
static OWN_KUBECONFIG: OnceLock<PathBuf> = OnceLock::new();

/// The test cluster's kubeconfig: the binary's own cluster ([`OwnCluster`])
/// when it started one, else `KUBECONFIG`.
pub fn kubeconfig_path() -> PathBuf {
    match OWN_KUBECONFIG.get() {
        Some(path) => path.clone(),
        None => env_path("KUBECONFIG"),
    }
}

/// The xtask binary (`COXSWAIN_TEST_XTASK`, set by `cargo xtask e2e` to itself).
pub fn xtask() -> PathBuf {
    env_path("COXSWAIN_TEST_XTASK")
}

/// Runs `xtask cluster <args>`; fails the test unless it succeeds; returns stdout.
fn xtask_cluster(args: &[&str]) -> String {
    let out = std::process::Command::new(xtask())
        .arg("cluster")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {} cluster {}: {e}", xtask().display(), args.join(" ")));
    assert!(
        out.status.success(),
        "xtask cluster {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The name of the test cluster: its state directory,
/// `<cache>/clusters/<name>/`, holds the kubeconfig.
pub fn cluster_name() -> String {
    let path = kubeconfig_path();
    let dir = path.parent().filter(|d| {
        d.parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "clusters")
    });
    let Some(name) = dir.and_then(Path::file_name) else {
        panic!(
            "{} is not the kubeconfig of a cluster of `cargo xtask cluster` \
             (<cache>/clusters/<name>/kubeconfig): {HINT}",
            path.display()
        );
    };
    name.to_string_lossy().into_owned()
}

/// Stops `component` (e.g. `kube-apiserver`) of the test cluster by its
/// recorded pid: SIGTERM, SIGKILL after 10s (`xtask cluster stop-component`).
/// Every test of the cluster sees it go; use it on an [`OwnCluster`].
pub fn stop_component(component: &str) {
    xtask_cluster(&[
        "stop-component",
        "--name",
        &cluster_name(),
        "--component",
        component,
    ]);
}

/// Starts `component` of the test cluster again with the command line it was
/// first started with; for kube-apiserver, returns once /readyz answers
/// (`xtask cluster start-component`).
pub fn start_component(component: &str) {
    xtask_cluster(&[
        "start-component",
        "--name",
        &cluster_name(),
        "--component",
        component,
    ]);
}

/// A cluster of the test binary's own (`xtask cluster up --name <prefix>-<random>`),
/// for tests that break the cluster (stop its API server) and must not take the
/// shared one down with them. Once started, every helper of this module uses
/// it; one per test binary. Taken down on drop, also when the test panics.
pub struct OwnCluster {
    /// The cluster's name.
    pub name: String,
}

impl OwnCluster {
    /// Starts the cluster and makes it the one the helpers use.
    pub fn up(prefix: &str) -> Self {
        let name = unique_name(prefix);
        let started = Instant::now();
        // The guard exists before `up` returns: a failed start is cleaned up too.
        let cluster = Self { name };
        let stdout = xtask_cluster(&["up", "--name", &cluster.name]);
        let Some(path) = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("export KUBECONFIG="))
        else {
            panic!("xtask cluster up printed no `export KUBECONFIG=` line: {stdout}");
        };
        let path = PathBuf::from(path.trim());
        assert!(
            OWN_KUBECONFIG.set(path.clone()).is_ok(),
            "a test binary starts at most one cluster of its own"
        );
        eprintln!(
            "own cluster {} up in {:.1}s: {}",
            cluster.name,
            started.elapsed().as_secs_f64(),
            path.display()
        );
        cluster
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        // Not `xtask_cluster`: a panic while panicking would abort.
        let result = std::process::Command::new(xtask())
            .args(["cluster", "down", "--name", &self.name])
            .stdin(Stdio::null())
            .status();
        if !matches!(result, Ok(status) if status.success()) {
            eprintln!(
                "could not take down cluster {}: {result:?}; run `cargo xtask cluster down --name {}`",
                self.name, self.name
            );
        }
    }
}

/// Helm 4 (`COXSWAIN_TEST_HELM`).
pub fn helm4() -> PathBuf {
    env_path("COXSWAIN_TEST_HELM")
}

/// Helm 3 (`COXSWAIN_TEST_HELM3`).
pub fn helm3() -> PathBuf {
    env_path("COXSWAIN_TEST_HELM3")
}

/// kubectl matching the cluster's version (`COXSWAIN_TEST_KUBECTL`).
pub fn kubectl() -> PathBuf {
    env_path("COXSWAIN_TEST_KUBECTL")
}

/// A chart of the shared test stack, `testdata/charts/<name>`.
pub fn chart(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join("charts")
        .join(name);
    assert!(path.is_dir(), "no test chart at {}", path.display());
    path
}

/// A kube client for the test cluster, checked to answer before it is returned.
pub async fn client() -> Client {
    let path = kubeconfig_path();
    let kubeconfig = Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("cannot read the kubeconfig {}: {e}; {HINT}", path.display()));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("bad kubeconfig {}: {e}; {HINT}", path.display()));
    let client = Client::try_from(config)
        .unwrap_or_else(|e| panic!("cannot build a kube client from {}: {e}", path.display()));
    if let Err(e) = client.apiserver_version().await {
        panic!(
            "the cluster of {} does not answer: {e}; {HINT}",
            path.display()
        );
    }
    client
}

/// A name no other test (in this or an earlier run) uses: `<prefix>-<suffix>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix =
        (u64::from(std::process::id()) << 32 | u64::from(nanos ^ n.rotate_left(24))) % 36u64.pow(6);
    format!("{prefix}-{}", base36(suffix, 6))
}

fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(out).expect("base36 digits are ASCII")
}

/// A namespace of its own for one test, deleted when the test passes and kept
/// for inspection when it fails.
pub struct TestNamespace {
    /// The namespace's name.
    pub name: String,
}

impl TestNamespace {
    /// Create `<prefix>-<random>`, labelled `coxswain.dev/e2e=true`.
    pub async fn create(client: &Client, prefix: &str) -> Self {
        let name = unique_name(prefix);
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("coxswain.dev/e2e".to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        Self { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping namespace {} for inspection", self.name);
            return;
        }
        // Drop cannot await; kubectl is a plain process and does not wait for
        // the namespace to be finalized.
        let result = std::process::Command::new(kubectl())
            .arg(format!("--kubeconfig={}", kubeconfig_path().display()))
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .stdout(Stdio::null())
            .status();
        if !matches!(result, Ok(status) if status.success()) {
            eprintln!("could not delete namespace {}: {result:?}", self.name);
        }
    }
}

/// One helm binary bound to a namespace, with its own config, cache and data
/// directories so tests never read or write the user's helm settings.
pub struct Helm {
    bin: PathBuf,
    namespace: String,
    home: tempfile::TempDir,
}

/// The outcome of one helm invocation.
#[derive(Debug)]
pub struct HelmRun {
    /// Whether helm exited 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Helm {
    /// Helm at `bin`, acting in `namespace` of the test cluster.
    pub fn new(bin: PathBuf, namespace: &str) -> Self {
        let home = tempfile::tempdir().expect("create a temp dir for helm's home");
        Self {
            bin,
            namespace: namespace.to_owned(),
            home,
        }
    }

    /// Run helm with `args` (plus `--namespace` and `--kubeconfig`).
    pub async fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> HelmRun {
        let home = self.home.path();
        let output = tokio::process::Command::new(&self.bin)
            .args(args)
            .arg("--namespace")
            .arg(&self.namespace)
            .arg("--kubeconfig")
            .arg(kubeconfig_path())
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("run {}: {e}", self.bin.display()));
        HelmRun {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Run helm and fail the test unless it succeeds; returns stdout.
    pub async fn succeed<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let run = self.run(args).await;
        assert!(
            run.success,
            "helm {} failed:\n{}{}",
            show(args),
            run.stdout,
            run.stderr
        );
        run.stdout
    }

    /// Run helm and fail the test unless it fails; returns stderr.
    pub async fn fail<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let run = self.run(args).await;
        assert!(
            !run.success,
            "helm {} succeeded but should have failed:\n{}",
            show(args),
            run.stdout
        );
        run.stderr
    }

    /// `helm status -o json` of `release`.
    pub async fn status(&self, release: &str) -> serde_json::Value {
        let out = self.succeed(&["status", release, "-o", "json"]).await;
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("helm status {release} is not JSON ({e}): {out}"))
    }

    /// The release's status (`deployed`, `failed`, ...) and revision.
    pub async fn release_state(&self, release: &str) -> (String, u64) {
        let status = self.status(release).await;
        let state = status["info"]["status"]
            .as_str()
            .unwrap_or_else(|| panic!("helm status {release}: no info.status in {status}"))
            .to_owned();
        let version = status["version"]
            .as_u64()
            .unwrap_or_else(|| panic!("helm status {release}: no version in {status}"));
        (state, version)
    }
}

fn show<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Poll `probe` every 250ms until it yields a value; fail the test after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {}s waiting for {what}",
            timeout.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether the Deployment has rolled out completely: observed, updated, all
/// replicas available.
pub fn deployment_ready(deployment: &Deployment) -> bool {
    let generation = deployment.metadata.generation;
    let want = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let Some(status) = &deployment.status else {
        return false;
    };
    status.observed_generation == generation
        && status.updated_replicas.unwrap_or(0) == want
        && status.available_replicas.unwrap_or(0) == want
        && status.replicas.unwrap_or(0) == want
}

/// The image of the first container of a Deployment's pod template.
pub fn deployment_image(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// Wait until Deployment `name` in `namespace` is fully rolled out; returns it.
pub async fn wait_deployment_ready(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Deployment {
    let api = Api::<Deployment>::namespaced(client.clone(), namespace);
    wait_for(
        &format!("Deployment {namespace}/{name} to be ready"),
        timeout,
        || async {
            let deployment = api.get_opt(name).await.ok().flatten()?;
            deployment_ready(&deployment).then_some(deployment)
        },
    )
    .await
}

/// Pods in `namespace` matching `selector`.
pub async fn pods(client: &Client, namespace: &str, selector: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap_or_else(|e| panic!("list pods {selector} in {namespace}: {e}"))
        .items
}

/// The status of condition `kind` of a pod (`"True"`, `"False"`), if reported.
pub fn pod_condition(pod: &Pod, kind: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
}
