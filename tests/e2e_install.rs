//! End-to-end tests of the agent's own chart, `charts/coxswain/`, on the
//! loopback cluster:
//!
//! - the API server accepts every object `helm template` renders, with the
//!   default values and with every value set (after minimal
//!   `monitoring.coreos.com` CRDs from `testdata/monitoring-crds/`), `helm
//!   install` installs them, and a misspelt value is refused with nothing
//!   installed;
//! - **the chart's own identity does the job**: the chart is installed, a
//!   token of its ServiceAccount is made with the TokenRequest API (`kubectl
//!   create token`), and the coxswain binary runs outside the cluster with a
//!   kubeconfig holding only that token: the testdata stack installs in
//!   dependency order, the controller takes the Lease and applies an update;
//!   without the ClusterRoleBinding of helm's role the next run stops with
//!   the permission that is missing and changes nothing;
//! - with `rbac.helmNamespaces`, the same identity installs a release in a
//!   namespace it was given (helm's `--create-namespace` included).
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::Value;
use support::chart::{chart_dir, full_values, objects, template_text_in};
use support::cluster::{Helm, TestNamespace, helm4, kubeconfig_path, kubectl, wait_for};
use support::repo;
use support::world::{STACK, World, set, succeed, updated};

/// How long any single wait of these tests may take.
const WAIT: Duration = Duration::from_secs(90);

/// The chart's release name in every test.
const RELEASE: &str = "coxswain";

/// kubectl as the cluster's admin.
fn kubectl_admin() -> Command {
    let mut cmd = Command::new(kubectl());
    cmd.arg(format!("--kubeconfig={}", kubeconfig_path().display()));
    cmd
}

/// `kubectl apply --dry-run=server -f -` of `manifest` (every object names
/// its namespace): kubectl's output; fails the test unless the API server
/// accepts every object.
fn dry_run_server(manifest: &str) -> String {
    let mut child = kubectl_admin()
        .args(["apply", "--dry-run=server", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the API server refused an object:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accepted = stdout
        .lines()
        .filter(|l| l.ends_with("(server dry run)"))
        .count();
    assert_eq!(accepted, objects(manifest).len(), "{stdout}");
    stdout
}

/// Applies the minimal ServiceMonitor and PrometheusRule CRDs of
/// `testdata/monitoring-crds/` (server-side, so parallel runs agree) and the
/// ChannelSubscription CRD, and waits until they are served.
async fn apply_crds() {
    support::world::apply_crd().await;
    succeed(
        kubectl_admin()
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(repo().join("testdata/monitoring-crds")),
    );
    for crd in [
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ] {
        succeed(kubectl_admin().args([
            "wait",
            "--for=condition=Established",
            &format!("crd/{crd}"),
            "--timeout=30s",
        ]));
    }
}

/// The chart's release in a namespace: uninstalled on drop, so its
/// cluster-scoped objects (ClusterRoles, ClusterRoleBindings) do not outlive
/// the test's namespaces.
struct Installed {
    helm: Helm,
}

impl Installed {
    /// `helm install coxswain charts/coxswain <args>` in `namespace`.
    async fn new(namespace: &str, args: &[&str]) -> (Self, String) {
        let helm = Helm::new(helm4(), namespace);
        let chart = chart_dir();
        let mut all = vec!["install", RELEASE, chart.to_str().unwrap()];
        all.extend_from_slice(args);
        let notes = helm.succeed(&all).await;
        (Self { helm }, notes)
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let helm = std::mem::replace(&mut self.helm, Helm::new(helm4(), "default"));
        // Drop cannot await: a thread of its own runs the uninstall.
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(helm.run(&["uninstall", RELEASE, "--wait=false"]))
        })
        .join();
        if !matches!(&done, Ok(run) if run.success) {
            eprintln!("could not uninstall the chart: {done:?}");
        }
    }
}

#[tokio::test]
async fn the_api_server_accepts_every_rendered_object_and_helm_installs_them() {
    let client = support::cluster::client().await;
    apply_crds().await;
    let ns = TestNamespace::create(&client, "chart-dry").await;
    let targets = [
        TestNamespace::create(&client, "chart-dry-a").await,
        TestNamespace::create(&client, "chart-dry-b").await,
    ];
    let helm_namespaces = format!(
        "rbac.helmNamespaces={{{},{}}}",
        targets[0].name, targets[1].name
    );
    // Velero's namespace, made here: full-values names `velero`, which only
    // the backup suite creates (and removes).
    let velero = TestNamespace::create(&client, "chart-dry-velero").await;
    let velero_namespace = format!("rbac.veleroNamespace={}", velero.name);

    // Default values.
    let manifest = template_text_in(&helm4(), &ns.name, &[]);
    dry_run_server(&manifest);

    // Every value set: PrometheusRule, ServiceMonitor, NetworkPolicy,
    // dashboard, subscription, RoleBindings in two namespaces, ...
    let full = full_values();
    let full_args = [
        "-f",
        full.to_str().unwrap(),
        "--set",
        "subscription.server=http://127.0.0.1:9/",
        "--set",
        &helm_namespaces,
        "--set",
        &velero_namespace,
    ];
    let manifest = template_text_in(&helm4(), &ns.name, &full_args);
    let out = dry_run_server(&manifest);
    for kind in [
        "prometheusrule.monitoring.coreos.com",
        "servicemonitor.monitoring.coreos.com",
        "networkpolicy.networking.k8s.io",
        "channelsubscription.coxswain.dev",
        "deployment.apps",
    ] {
        assert!(out.contains(kind), "no {kind} in {out}");
    }

    // A misspelt value: helm install refuses it and installs nothing.
    let helm = Helm::new(helm4(), &ns.name);
    let chart = chart_dir();
    let err = helm
        .fail(&[
            "install",
            RELEASE,
            chart.to_str().unwrap(),
            "--set",
            "subscripton.server=https://updates.example.org",
        ])
        .await;
    assert!(
        err.contains("additional properties 'subscripton' not allowed"),
        "{err}"
    );
    let records = succeed(kubectl_admin().args([
        "get",
        "secrets",
        "-n",
        &ns.name,
        "-l",
        "owner=helm",
        "-o",
        "name",
    ]));
    assert!(
        records.is_empty(),
        "a refused install left a release record"
    );

    // helm install of every value set: every object is created.
    let (installed, _) = Installed::new(&ns.name, &full_args).await;
    let manifest = helm.succeed(&["get", "manifest", RELEASE]).await;
    let rendered = objects(&manifest);
    assert!(rendered.len() >= 15, "{} objects", rendered.len());
    for o in &rendered {
        let kind = o["kind"].as_str().unwrap();
        let name = o["metadata"]["name"].as_str().unwrap();
        let namespace = o["metadata"]["namespace"].as_str();
        let mut get = kubectl_admin();
        get.args(["get", kind, name, "-o", "name"]);
        if let Some(namespace) = namespace {
            get.args(["-n", namespace]);
        }
        succeed(&mut get);
    }
    drop(installed);
}

/// A kubeconfig that holds only a token of ServiceAccount `sa` of
/// `namespace` (made with the TokenRequest API) and the cluster's address
/// and CA: the chart's own identity, and nothing of the admin's.
fn service_account_kubeconfig(dir: &Path, namespace: &str, sa: &str) -> PathBuf {
    let token = String::from_utf8(succeed(kubectl_admin().args([
        "create",
        "token",
        sa,
        "-n",
        namespace,
        "--duration=1h",
    ])))
    .unwrap();
    let admin: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(kubeconfig_path()).unwrap()).unwrap();
    let cluster = &admin["clusters"][0]["cluster"];
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "loopback", "cluster": {
            "server": cluster["server"],
            "certificate-authority-data": cluster["certificate-authority-data"],
        }}],
        "users": [{"name": sa, "user": {"token": token.trim()}}],
        "contexts": [{"name": sa, "context": {"cluster": "loopback", "user": sa, "namespace": namespace}}],
        "current-context": sa,
    });
    let path = dir.join(format!("{sa}.kubeconfig"));
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    path
}

/// Whether `user` may `verb` `resource` in `namespace` (`kubectl auth can-i`).
fn can_i(user: &str, verb: &str, resource: &str, namespace: &str) -> bool {
    let out = kubectl_admin()
        .args([
            "auth", "can-i", verb, resource, "-n", namespace, "--as", user,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

/// `VmRSS` and `VmHWM` (peak) of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The first revision's time per release: the install order.
fn install_times(w: &World) -> BTreeMap<String, time::OffsetDateTime> {
    STACK
        .iter()
        .map(|r| (r.to_string(), updated(&w.history(r)[0])))
        .collect()
}

/// The chart installed in the world's namespace as the admin's command of
/// docs/install.md does it (`subscription.server`, `subscription.channel`,
/// `--set-file trust.root=trust.json`), following the world's site, with the
/// subscription named `stack` as the world expects; `extra` appended.
async fn install_subscribed(w: &World, extra: &[&str]) -> (Installed, String) {
    let trust = w.dir.path().join("trust.json");
    let server = format!("subscription.server={}", w.server.url);
    let trust = format!("trust.root={}", trust.display());
    let mut args = vec![
        "--set",
        &server,
        "--set",
        "subscription.channel=stable",
        "--set",
        "subscription.name=stack",
        "--set-file",
        &trust,
    ];
    args.extend_from_slice(extra);
    Installed::new(&w.ns.name, &args).await
}

#[tokio::test]
async fn the_charts_own_identity_installs_updates_leads_and_stops_without_its_binding() {
    let mut w = World::new("chart-id", &STACK).await;
    let (installed, notes) = install_subscribed(&w, &["--wait", "--timeout=2m"]).await;
    assert!(
        notes.contains(&format!(
            "kubectl get channelsubscriptions -n {}",
            w.ns.name
        )),
        "{notes}"
    );
    assert!(notes.contains("kubectl port-forward"), "{notes}");
    // KWOK runs the two replicas (no container really starts): the
    // Deployment is complete, which `--wait` waited for.
    let pods = support::cluster::pods(
        &w.client,
        &w.ns.name,
        "app.kubernetes.io/name=coxswain,app.kubernetes.io/component=agent",
    )
    .await;
    assert_eq!(pods.len(), 2);
    for pod in &pods {
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
    }

    let sequence = w.publish(|_, _| {});
    let kubeconfig = service_account_kubeconfig(w.dir.path(), &w.ns.name, "coxswain");
    let config: Value = serde_json::from_slice(&std::fs::read(&kubeconfig).unwrap()).unwrap();
    assert_eq!(
        config["users"][0]["user"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["token"],
        "the kubeconfig holds the token alone"
    );

    // 1. The stack installs, in dependency order, as the chart's ServiceAccount.
    let (code, out, err) = w.agent_once_as(&kubeconfig, &[]);
    assert_eq!(
        code, 0,
        "agent --once as the chart's ServiceAccount:\n{out}\n{err}"
    );
    assert!(!err.contains("forbidden"), "{err}");
    let status = w.status().await;
    assert_eq!(status["acceptedSequence"], sequence);
    assert_eq!(status["lastCheck"]["result"], "applied");
    let at = install_times(&w);
    for (before, after) in [
        ("certs", "ingress"),
        ("ingress", "sso"),
        ("sso", "wiki"),
        ("sso", "files"),
    ] {
        assert!(
            at[before] < at[after],
            "{before} was not installed before {after}: {at:?}"
        );
    }

    // 2. The controller, as the same identity, takes the Lease and applies an update.
    let update = w.publish(|name, r| {
        if name == "ingress" {
            set(r, &["values", "image", "tag"], "1.10.1".into());
        }
    });
    let identity = format!("{}-outside", w.ns.name);
    let mut agent = w.start_agent_as(
        &kubeconfig,
        &["--lease-duration", "6s"],
        &[("POD_NAME", identity.as_str())],
    );
    let leases: Api<Lease> = Api::namespaced(w.client.clone(), &w.ns.name);
    wait_for("the agent to take the Lease", WAIT, || async {
        let lease = leases.get_opt("coxswain-agent").await.ok()??;
        (lease.spec?.holder_identity? == identity).then_some(())
    })
    .await;
    // The accepted sequence is written before the first change, so wait for
    // the check's own verdict on it.
    let applied = format!("stable#{update}:");
    wait_for("the update to be applied", WAIT, || async {
        let status = w.status().await;
        let message = status["lastCheck"]["message"].as_str().unwrap_or_default();
        (status["lastCheck"]["result"] == "applied" && message.contains(&applied)).then_some(())
    })
    .await;
    let revisions = w.revisions();
    assert_eq!(revisions["ingress"], 2, "{revisions:?}");
    assert_eq!(revisions["certs"], 1, "{revisions:?}");
    let (rss, peak) = memory_kib(agent.pid());
    eprintln!(
        "agent controller as the chart's ServiceAccount, after installing 5 releases and upgrading 1: RSS {:.1} MiB, peak {:.1} MiB",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    assert!(agent.stop(), "the agent did not exit 0 on SIGTERM");
    let logs = agent.logs();
    assert!(
        !logs.contains("forbidden"),
        "the chart's Role lacks something:\n{logs}"
    );
    assert!(!logs.contains("cannot publish an Event"), "{logs}");

    // 3. Without the ClusterRoleBinding of helm's role, the next run stops
    // with the permission that is missing, and changes nothing.
    let binding = format!("{}-coxswain-helm", w.ns.name);
    succeed(kubectl_admin().args(["delete", "clusterrolebinding", &binding]));
    let user = format!("system:serviceaccount:{}:coxswain", w.ns.name);
    // The API server's authorizer reads RBAC from a cache: wait until it
    // refuses, so the run below cannot slip through.
    let certs_ns = w.rns("certs").to_owned();
    wait_for("the removed binding to take effect", WAIT, || async {
        (!can_i(&user, "list", "secrets", &certs_ns)).then_some(())
    })
    .await;
    let before = w.revisions();
    let refused = w.publish(|name, r| {
        if name == "ingress" {
            set(r, &["values", "image", "tag"], "1.10.2".into());
        }
    });
    let (code, out, err) = w.agent_once_as(&kubeconfig, &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    let missing = format!("secrets is forbidden: User \"{user}\" cannot list resource \"secrets\"");
    assert!(
        err.contains(&missing),
        "stderr names the missing permission: {err}"
    );
    assert!(
        err.contains("the agent's ServiceAccount lacks this permission"),
        "{err}"
    );
    let status = w.status().await;
    assert_eq!(status["lastCheck"]["result"], "error");
    let message = status["lastCheck"]["message"].as_str().unwrap();
    assert!(message.contains(&missing), "{message}");
    assert!(message.contains("docs/install.md#rbac"), "{message}");
    assert_eq!(
        status["acceptedSequence"], refused,
        "the index itself verified"
    );
    let events = w.events().await;
    assert!(
        events
            .iter()
            .any(|(reason, note)| reason == "Forbidden" && note.contains(&missing)),
        "no Forbidden Event naming the permission: {events:?}"
    );
    assert_eq!(w.revisions(), before, "a refused run changed a release");
    drop(installed);
}

#[tokio::test]
async fn with_helm_namespaces_the_identity_installs_only_where_it_was_given() {
    let mut w = World::new("chart-ns", &["certs", "wiki"]).await;
    let only = format!(
        "rbac.helmNamespaces={{{},{}}}",
        w.rns("certs"),
        w.rns("wiki")
    );
    let (installed, notes) = install_subscribed(&w, &["--set", &only]).await;
    assert!(
        notes.contains("helm may manage releases only in"),
        "{notes}"
    );
    w.publish(|_, _| {});
    let kubeconfig = service_account_kubeconfig(w.dir.path(), &w.ns.name, "coxswain");
    // wiki's namespace exists: helm's --create-namespace is answered
    // AlreadyExists, which it accepts. certs brings a CRD and a ClusterRole,
    // which a namespaced identity may not create: its first install fails
    // (and is uninstalled), the run ends degraded.
    let (code, out, err) = w.agent_once_as(&kubeconfig, &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    let wiki = w.history("wiki");
    assert_eq!(wiki.last().unwrap()["status"], "deployed", "{wiki:?}");
    let status = w.status().await;
    let certs = support::world::release(&status, "certs");
    let message = certs["message"].as_str().unwrap();
    assert!(
        certs["state"] == "failed" || certs["state"] == "rolledBack",
        "{certs}"
    );
    assert!(
        // helm 4 installs CRDs with server-side apply: a PATCH.
        message.contains("is forbidden")
            && message.contains("cannot patch resource \"customresourcedefinitions\""),
        "{message}"
    );
    let events = w.events().await;
    assert!(
        events
            .iter()
            .any(|(reason, note)| reason == "UpgradeFailed" && note.contains("is forbidden")),
        "{events:?}"
    );
    // Outside its namespaces the identity can do nothing helm needs.
    let user = format!("system:serviceaccount:{}:coxswain", w.ns.name);
    assert!(can_i(&user, "create", "deployments", w.rns("wiki")));
    assert!(!can_i(&user, "create", "deployments", "default"));
    assert!(!can_i(&user, "list", "secrets", "kube-system"));
    assert!(!can_i(
        &user,
        "create",
        "customresourcedefinitions",
        "default"
    ));
    assert!(!can_i(&user, "create", "clusterroles", "default"));
    drop(installed);
}
