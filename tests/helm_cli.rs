//! The helm shim against the real helm 4 and helm 3 binaries, without a cluster:
//! rendering, flag acceptance, errors, timeouts, and every read command over
//! releases preloaded into helm's in-memory storage driver
//! (`testdata/helm/releases.yaml`).
//!
//! The binaries come from `COXSWAIN_TEST_HELM` (helm 4) and
//! `COXSWAIN_TEST_HELM3`, as for the e2e tests.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coxswain::helm::{
    Description, Fingerprint, HelmCli, HelmCommand, HelmConfig, HelmError, HelmMajor, Invocation,
    ListScope, Observer, Outcome, ReleaseStatus, RollbackOptions, TemplateOptions, TestOptions,
    UninstallOptions, UpgradeOptions,
};
use serde_json::json;

/// These tests fail, rather than skip, when a binary is not set (as the chart
/// tests do): a compatibility claim that silently did not run is worse than a red test.
fn helm_binary(var: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "{var} is not set: point COXSWAIN_TEST_HELM at a helm 4 binary and \
             COXSWAIN_TEST_HELM3 at a helm 3 binary (`cargo xtask e2e` builds both)"
        ),
    }
}

/// Both helm binaries with the major version each must report.
fn binaries() -> [(PathBuf, HelmMajor); 2] {
    [
        (helm_binary("COXSWAIN_TEST_HELM"), HelmMajor::V4),
        (helm_binary("COXSWAIN_TEST_HELM3"), HelmMajor::V3),
    ]
}

/// A config isolated from the machine: own helm home, own temp dir for values,
/// and no kubeconfig from the environment.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("values")).unwrap();
        std::fs::create_dir(dir.path().join("helm")).unwrap();
        Self { dir }
    }

    fn config(&self, binary: &Path) -> HelmConfig {
        HelmConfig {
            binary: binary.to_owned(),
            state_dir: Some(self.dir.path().join("helm")),
            temp_dir: Some(self.values_dir()),
            // A kubeconfig that points nowhere: nothing here may reach a real cluster.
            kubeconfig: Some(self.unreachable_kubeconfig()),
            ..HelmConfig::default()
        }
    }

    /// helm's in-memory driver, preloaded from testdata.
    fn memory_config(&self, binary: &Path) -> HelmConfig {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/helm/releases.yaml");
        let mut config = self.config(binary);
        config.extra_env = vec![
            ("HELM_DRIVER".into(), "memory".into()),
            ("HELM_MEMORY_DRIVER_DATA".into(), data.into()),
        ];
        config
    }

    fn values_dir(&self) -> PathBuf {
        self.dir.path().join("values")
    }

    fn values_files_left(&self) -> usize {
        std::fs::read_dir(self.values_dir()).unwrap().count()
    }

    fn unreachable_kubeconfig(&self) -> PathBuf {
        let path = self.dir.path().join("kubeconfig");
        // Port 1 on loopback: connection refused, immediately.
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: nowhere\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: nowhere\n  context:\n    cluster: nowhere\n    user: nobody\ncurrent-context: nowhere\nusers:\n- name: nobody\n  user:\n    token: not-a-secret\n",
        )
        .unwrap();
        path
    }

    /// A chart directory named `name` with one ConfigMap template.
    fn chart(&self, name: &str, template: &str) -> PathBuf {
        let dir = self.dir.path().join("charts").join(name);
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(
            dir.join("Chart.yaml"),
            format!("apiVersion: v2\nname: {name}\nversion: 2.6.0\nappVersion: \"2.6\"\n"),
        )
        .unwrap();
        std::fs::write(dir.join("templates/configmap.yaml"), template).unwrap();
        dir
    }
}

const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: wiki-config\n  namespace: {{ .Release.Namespace }}\ndata:\n  title: {{ .Values.title | default \"Wiki\" | quote }}\n";

/// command, release, namespace, outcome
type Call = (HelmCommand, Option<String>, Option<String>, Outcome);

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<Call>>,
}

impl Observer for Recorder {
    fn helm_finished(&self, inv: &Invocation<'_>) {
        self.calls.lock().unwrap().push((
            inv.command,
            inv.release.map(str::to_owned),
            inv.namespace.map(str::to_owned),
            inv.outcome,
        ));
    }
}

#[tokio::test]
async fn detects_the_major_version() {
    for (binary, major) in binaries() {
        let sandbox = Sandbox::new();
        let helm = HelmCli::detect(sandbox.config(&binary)).await.unwrap();
        assert_eq!(helm.version().major, major, "{}", binary.display());
    }
}

#[tokio::test]
async fn the_version_is_asked_once_per_binary() {
    for (binary, major) in binaries() {
        let sandbox = Sandbox::new();
        let asked = |config| async {
            let recorder = Arc::new(Recorder::default());
            let helm = HelmCli::detect_with_observer(config, recorder.clone())
                .await
                .unwrap();
            assert_eq!(helm.version().major, major, "{}", binary.display());
            recorder.calls.lock().unwrap().len()
        };
        assert_eq!(asked(sandbox.config(&binary)).await, 1);
        // Remembered in the state directory: the next process does not ask.
        assert_eq!(asked(sandbox.config(&binary)).await, 0);
        // Another binary (a copy: another inode) is asked again.
        let copy = sandbox.dir.path().join("helm-copy");
        std::fs::copy(&binary, &copy).unwrap();
        assert_eq!(asked(sandbox.config(&copy)).await, 1);
        assert_eq!(asked(sandbox.config(&copy)).await, 0);
        // A remembered answer that is not a version is not believed.
        let file = sandbox.dir.path().join("helm/helm-version");
        let text = std::fs::read_to_string(&file).unwrap();
        let identity = text.lines().next().unwrap();
        std::fs::write(&file, format!("{identity}\nv9.9.9\n")).unwrap();
        assert_eq!(asked(sandbox.config(&copy)).await, 1);
    }
}

#[tokio::test]
async fn a_missing_binary_is_named_in_the_error() {
    let config = HelmConfig {
        binary: "/nonexistent/helm".into(),
        ..HelmConfig::default()
    };
    let err = HelmCli::detect(config).await.unwrap_err();
    assert!(matches!(err, HelmError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/helm"), "{err}");
}

#[tokio::test]
async fn template_renders_values_from_a_private_file_that_is_removed() {
    for (binary, _) in binaries() {
        let sandbox = Sandbox::new();
        let chart = sandbox.chart("wiki", CONFIGMAP);
        let helm = HelmCli::detect(sandbox.config(&binary)).await.unwrap();
        let out = helm
            .template(
                "wiki",
                "apps",
                &chart,
                &json!({"title": "Hello from values"}),
                &TemplateOptions {
                    kube_version: Some("1.33.0".into()),
                    ..TemplateOptions::default()
                },
            )
            .await
            .unwrap();
        assert!(out.contains("title: \"Hello from values\""), "{out}");
        assert!(out.contains("namespace: apps"), "{out}");
        assert_eq!(sandbox.values_files_left(), 0);

        let defaults = helm
            .template(
                "wiki",
                "apps",
                &chart,
                &serde_json::Value::Null,
                &TemplateOptions::default(),
            )
            .await
            .unwrap();
        assert!(defaults.contains("title: \"Wiki\""), "{defaults}");
    }
}

#[tokio::test]
async fn template_errors_carry_helm_stderr() {
    for (binary, _) in binaries() {
        let sandbox = Sandbox::new();
        let chart = sandbox.chart("wiki", "{{ fail \"the chart refuses to render\" }}\n");
        let helm = HelmCli::detect(sandbox.config(&binary)).await.unwrap();
        let err = helm
            .template(
                "wiki",
                "apps",
                &chart,
                &json!({}),
                &TemplateOptions::default(),
            )
            .await
            .unwrap_err();
        let HelmError::Failed {
            command, stderr, ..
        } = &err
        else {
            panic!("expected Failed, got {err}");
        };
        assert_eq!(*command, HelmCommand::Template);
        assert!(stderr.contains("the chart refuses to render"), "{stderr}");
        let message = err.to_string();
        assert!(
            message.contains("helm template for release apps/wiki failed (exit code 1)"),
            "{message}"
        );
        assert_eq!(sandbox.values_files_left(), 0);
    }
}

#[tokio::test]
async fn upgrade_against_an_unreachable_cluster_reports_helm_stderr_and_no_values() {
    for (binary, major) in binaries() {
        let sandbox = Sandbox::new();
        let chart = sandbox.chart("wiki", CONFIGMAP);
        let recorder = Arc::new(Recorder::default());
        let helm = HelmCli::detect_with_observer(sandbox.config(&binary), recorder.clone())
            .await
            .unwrap();
        let fp = Fingerprint::new("stable", 8, [1; 32], [2; 32]).unwrap();
        let err = helm
            .upgrade_install(
                "wiki",
                "apps",
                &chart,
                &json!({"adminPassword": "s3cret-value-xyz"}),
                &UpgradeOptions {
                    description: Some(fp.to_string()),
                    timeout: Duration::from_secs(20),
                    create_namespace: true,
                    force: true,
                    history_max: Some(5),
                    ..UpgradeOptions::default()
                },
            )
            .await
            .unwrap_err();
        let message = err.to_string();
        // Flags were accepted (an unknown flag fails before any connection);
        // the failure is the cluster that is not there.
        assert!(message.contains("127.0.0.1:1"), "{major:?}: {message}");
        assert!(
            message.contains("connection refused"),
            "{major:?}: {message}"
        );
        assert!(
            message.contains("helm upgrade for release apps/wiki"),
            "{message}"
        );
        assert!(!message.contains("s3cret-value-xyz"), "{message}");
        assert!(!format!("{err:?}").contains("s3cret-value-xyz"));
        assert_eq!(sandbox.values_files_left(), 0);
        let calls = recorder.calls.lock().unwrap();
        assert_eq!(
            calls.last().unwrap(),
            &(
                HelmCommand::UpgradeInstall,
                Some("wiki".into()),
                Some("apps".into()),
                Outcome::Failed
            )
        );
    }
}

#[tokio::test]
async fn a_call_past_its_timeout_is_stopped_and_reported() {
    for (binary, _) in binaries() {
        let sandbox = Sandbox::new();
        let recorder = Arc::new(Recorder::default());
        let mut config = sandbox.config(&binary);
        // Shorter than helm's own start-up.
        config.read_timeout = Duration::from_millis(1);
        let err = HelmCli::detect_with_observer(config, recorder.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, HelmError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("did not finish within"), "{err}");
        let calls = recorder.calls.lock().unwrap();
        assert_eq!(
            calls.as_slice(),
            [(HelmCommand::Version, None, None, Outcome::TimedOut)]
        );
    }
}

#[tokio::test]
async fn reads_history_list_status_and_manifests() {
    for (binary, major) in binaries() {
        let sandbox = Sandbox::new();
        let helm = HelmCli::detect(sandbox.memory_config(&binary))
            .await
            .unwrap();

        let history = helm.history("wiki", "apps", 0).await.unwrap();
        assert_eq!(
            history
                .iter()
                .map(|h| (h.revision, h.status))
                .collect::<Vec<_>>(),
            [
                (1, ReleaseStatus::Superseded),
                (2, ReleaseStatus::Superseded),
                (3, ReleaseStatus::Deployed)
            ],
            "{major:?}"
        );
        assert_eq!(
            Description::parse(&history[0].description),
            Description::Other
        );
        let Description::Fingerprint(fp) = Description::parse(&history[1].description) else {
            panic!(
                "revision 2 carries a fingerprint: {:?}",
                history[1].description
            );
        };
        assert_eq!((fp.channel.as_str(), fp.sequence), ("stable", 7));
        assert_eq!(
            Description::parse(&history[2].description),
            Description::RollbackTo(2)
        );
        assert_eq!(history[2].chart_name_version(), Some(("wiki", "2.5.0")));
        assert_eq!(
            history[1].updated.unwrap().nanosecond(),
            123_456_789,
            "{major:?}"
        );
        assert_eq!(history[2].updated.unwrap().offset().whole_hours(), 1);

        let list = helm
            .list(&ListScope::Namespace("apps".into()))
            .await
            .unwrap();
        let files = list.iter().find(|r| r.name == "files").unwrap();
        assert_eq!(files.status, ReleaseStatus::PendingUpgrade);
        assert!(files.status.is_pending());
        assert_eq!(
            files.chart_name_version(),
            Some(("nextcloud-files", "1.0.0-rc.1"))
        );
        let wiki = list.iter().find(|r| r.name == "wiki").unwrap();
        assert_eq!((wiki.revision, wiki.status), (3, ReleaseStatus::Deployed));
        assert!(wiki.updated.is_some());

        let status = helm.status("wiki", "apps", None).await.unwrap();
        assert_eq!(status.version, 3);
        assert_eq!(status.info.status, ReleaseStatus::Deployed);
        assert_eq!(status.info.description, "Rollback to 2");
        // helm status strips the chart (both majors); list and history name it.
        assert_eq!(status.chart, None);
        let second = helm.status("wiki", "apps", Some(2)).await.unwrap();
        assert!(Fingerprint::parse(&second.info.description).is_some());

        let manifest = helm.get_manifest("wiki", "apps", Some(1)).await.unwrap();
        assert!(manifest.contains("title: \"First\""), "{manifest}");
        let latest = helm.get_manifest("wiki", "apps", None).await.unwrap();
        assert!(latest.contains("title: \"Second\""), "{latest}");

        let missing = helm.history("nope", "apps", 0).await.unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
        let missing = helm.status("nope", "apps", None).await.unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
    }
}

#[tokio::test]
async fn rollback_uninstall_and_test_run_with_each_major_s_flags() {
    for (binary, major) in binaries() {
        let sandbox = Sandbox::new();
        let helm = HelmCli::detect(sandbox.memory_config(&binary))
            .await
            .unwrap();
        helm.rollback(
            "wiki",
            "apps",
            1,
            &RollbackOptions {
                force: true,
                cleanup_on_fail: true,
                history_max: Some(5),
                description: Some("coxswain rollback".into()),
                ..RollbackOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{major:?}: {e}"));
        let zero = helm
            .rollback("wiki", "apps", 0, &RollbackOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(zero, HelmError::InvalidArgument { .. }), "{zero}");

        let out = helm
            .test("wiki", "apps", &TestOptions::default())
            .await
            .unwrap();
        assert!(out.contains("TEST SUITE"), "{out}");

        helm.uninstall("wiki", "apps", &UninstallOptions::default())
            .await
            .unwrap();
        let missing = helm
            .uninstall("nope", "apps", &UninstallOptions::default())
            .await
            .unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
        helm.uninstall(
            "nope",
            "apps",
            &UninstallOptions {
                ignore_not_found: true,
                ..UninstallOptions::default()
            },
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_release_stuck_in_pending_is_refused_by_helm_with_its_reason() {
    for (binary, _) in binaries() {
        let sandbox = Sandbox::new();
        let chart = sandbox.chart("files", CONFIGMAP);
        let helm = HelmCli::detect(sandbox.memory_config(&binary))
            .await
            .unwrap();
        let err = helm
            .upgrade_install(
                "files",
                "apps",
                &chart,
                &json!({}),
                &UpgradeOptions::default(),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("another operation (install/upgrade/rollback) is in progress"),
            "{err}"
        );
    }
}
