//! A real Velero on the loopback cluster: `velero server` run as a plain
//! process outside any pod (with the test cluster's kubeconfig), its AWS
//! object-store plugin, and `versitygw`, a real S3 gateway over a temporary
//! directory, as the backup storage location. Binaries from
//! `COXSWAIN_TEST_VELERO`, `COXSWAIN_TEST_VELERO_PLUGINS` (a directory) and
//! `COXSWAIN_TEST_VERSITYGW`, built by `cargo xtask tools`.
//!
//! Each [`Velero`] has a namespace of its own, so tests run side by side; the
//! Velero CRDs are cluster-wide and applied (server-side, idempotent) from
//! `velero install --crds-only --dry-run -o yaml`. What running outside a pod
//! takes (docs/testcluster.md):
//!
//! - the credentials reach the plugin through `AWS_SHARED_CREDENTIALS_FILE`
//!   (a 0600 file), never argv; versitygw reads its own from the environment;
//! - the BackupStorageLocation sets `s3ForcePathStyle`, `s3Url` and an empty
//!   `checksumAlgorithm` (versitygw is not AWS);
//! - a `velero` Deployment with 0 replicas in Velero's namespace: a restore
//!   reads the server's image from it (for its restore-helper init container)
//!   and fails with `deployments.apps "velero" not found` without it;
//! - no node-agent (the server warns; pod volume backups need one, and KWOK's
//!   fake nodes have no volumes to back up anyway);
//! - port 8080 free: Velero's controller manager serves its own metrics on
//!   `:8080`, fixed in Velero's code (no flag), so one Velero server runs on
//!   the machine at a time (a lock in this binary; a check of the port
//!   against anything else, which says so).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cluster::{kubeconfig_path, kubectl, unique_name};

/// The S3 credentials of the test gateway (loopback only, made up per run).
const ACCESS_KEY: &str = "coxswain-e2e";

/// A running Velero server and S3 gateway, killed by pid on drop.
pub struct Velero {
    /// Velero's namespace (`velero server --namespace`), where Backups live.
    pub namespace: String,
    /// The S3 gateway's directory: `<dir>/<bucket>/backups/<name>/...`.
    pub bucket_dir: PathBuf,
    s3: Child,
    server: Child,
    dir: tempfile::TempDir,
    // Last: released after the server is gone (and port 8080 with it).
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

/// Held by each running [`Velero`] of this test binary: port 8080 is Velero's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The `velero` binary.
pub fn velero_bin() -> PathBuf {
    super::cluster::env_path("COXSWAIN_TEST_VELERO")
}

/// `kubectl` against the test cluster, with `stdin` piped in; its stdout.
pub fn kubectl_run(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write as _;
    let mut child = Command::new(kubectl())
        .arg(format!("--kubeconfig={}", kubeconfig_path().display()))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Applies Velero's CRDs as its own CLI prints them.
pub fn apply_velero_crds() {
    let out = Command::new(velero_bin())
        .args(["install", "--crds-only", "--dry-run", "-o", "yaml"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "velero install --crds-only: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    kubectl_run(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&yaml),
    );
    kubectl_run(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/backups.velero.io",
            "crd/restores.velero.io",
            "crd/backupstoragelocations.velero.io",
        ],
        None,
    );
}

impl Velero {
    /// Starts the S3 gateway and a Velero server in a new namespace, and
    /// waits until its BackupStorageLocation is `Available`.
    pub fn start() -> Self {
        // A test that failed while holding it poisoned it; the port is free again.
        let guard = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(
            std::net::TcpListener::bind("0.0.0.0:8080").is_ok(),
            "port 8080 is taken: velero server's controller manager binds :8080 (fixed in \
             Velero, no flag), so nothing else may hold it while the backup tests run"
        );
        apply_velero_crds();
        let dir = tempfile::tempdir().unwrap();
        let namespace = unique_name("velero");
        let root = dir.path().join("s3");
        let bucket = "backups";
        let bucket_dir = root.join(bucket);
        std::fs::create_dir_all(&bucket_dir).unwrap();
        let secret = format!("secret-{}", unique_name("s3"));

        let s3_addr = format!("127.0.0.1:{}", super::free_port());
        let s3 = Command::new(super::cluster::env_path("COXSWAIN_TEST_VERSITYGW"))
            .args(["--port", &s3_addr, "--quiet", "posix"])
            .arg(&root)
            .env("ROOT_ACCESS_KEY", ACCESS_KEY)
            .env("ROOT_SECRET_KEY", &secret)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("versitygw.log")).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(&s3_addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "versitygw did not listen on {s3_addr} within 30s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }

        let credentials = dir.path().join("credentials");
        std::fs::write(
            &credentials,
            format!("[default]\naws_access_key_id={ACCESS_KEY}\naws_secret_access_key={secret}\n"),
        )
        .unwrap();
        std::fs::set_permissions(
            &credentials,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        kubectl_run(&["create", "namespace", &namespace], None);
        kubectl_run(
            &["apply", "-f", "-"],
            Some(&format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: velero, namespace: {namespace}}}\n\
                 spec:\n  replicas: 0\n  selector: {{matchLabels: {{deploy: velero}}}}\n  template:\n    \
                 metadata: {{labels: {{deploy: velero}}}}\n    spec:\n      containers: \
                 [{{name: velero, image: \"velero/velero:v1.18.3\"}}]\n---\n\
                 apiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata: {{name: default, namespace: {namespace}}}\n\
                 spec:\n  provider: aws\n  default: true\n  objectStorage: {{bucket: {bucket}}}\n  \
                 config: {{region: us-east-1, s3ForcePathStyle: \"true\", s3Url: \"http://{s3_addr}\", checksumAlgorithm: \"\"}}\n"
            )),
        );
        // Velero logs to stdout.
        let log = std::fs::File::create(dir.path().join("velero.log")).unwrap();
        let server = Command::new(velero_bin())
            .arg("server")
            .arg(format!("--kubeconfig={}", kubeconfig_path().display()))
            .args(["--namespace", &namespace])
            .arg("--plugin-dir")
            .arg(super::cluster::env_dir("COXSWAIN_TEST_VELERO_PLUGINS"))
            .arg("--features=")
            .arg(format!(
                "--metrics-address=127.0.0.1:{}",
                super::free_port()
            ))
            .arg(format!(
                "--profiler-address=127.0.0.1:{}",
                super::free_port()
            ))
            .args(["--store-validation-frequency=5s", "--backup-sync-period=1h"])
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let velero = Self {
            namespace,
            bucket_dir,
            s3,
            server,
            dir,
            _one_at_a_time: guard,
        };
        velero.wait_phase("backupstoragelocation", "default", &["Available"], 90);
        velero
    }

    /// The server's log (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("velero.log")).unwrap_or_default()
    }

    /// Waits until `kind/name` in Velero's namespace reaches one of `phases`
    /// (or any terminal phase); returns the phase.
    pub fn wait_phase(&self, kind: &str, name: &str, phases: &[&str], secs: u64) -> String {
        let started = Instant::now();
        loop {
            let phase = Command::new(kubectl())
                .arg(format!("--kubeconfig={}", kubeconfig_path().display()))
                .args(["-n", &self.namespace, "get", kind, name])
                .args(["-o", "jsonpath={.status.phase}"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let terminal = ["Completed", "Failed", "PartiallyFailed", "FailedValidation"];
            if phases.contains(&phase.as_str()) || terminal.contains(&phase.as_str()) {
                return phase;
            }
            assert!(
                started.elapsed() < Duration::from_secs(secs),
                "{kind}/{name} in {} is `{phase}` after {secs}s; velero's log:\n{}",
                self.namespace,
                tail(&self.log(), 40)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The files the S3 gateway holds for backup `name`.
    pub fn stored_files(&self, name: &str) -> Vec<String> {
        let dir = self.bucket_dir.join("backups").join(name);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The directory of the run (logs, credentials).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Velero {
    fn drop(&mut self) {
        for child in [&mut self.server, &mut self.s3] {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
            eprintln!(
                "keeping namespace {} and {} (logs) for inspection",
                self.namespace,
                dir.display()
            );
            return;
        }
        let _ = Command::new(kubectl())
            .arg(format!("--kubeconfig={}", kubeconfig_path().display()))
            .args(["delete", "namespace", &self.namespace, "--wait=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
