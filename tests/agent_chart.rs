//! The agent's own chart, `charts/coxswain/`, without a cluster: `helm lint
//! --strict`, what `helm template` renders with the default values, with the
//! administrator's install command and with every value set
//! (`ci/full-values.yaml`), and `values.schema.json` — a misspelt key is
//! refused, and the schema and values.yaml name the same keys.
//!
//! helm comes from `COXSWAIN_TEST_HELM` (helm 4) and `COXSWAIN_TEST_HELM3`;
//! these tests fail, never skip, without them. What the API server makes of
//! the objects, and the chart's own identity at work, is `tests/e2e_install.rs`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use coxswain::crd::{ChannelSubscription, KeyRefKind, RollbackPolicy};
use serde_json::Value;
use support::chart::{
    chart_dir, full_values, helm_output, kinds_and_names, of_kind, one, template,
};

fn helm_from(var: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "{var} is not set: point it at a helm binary (`cargo xtask tools` builds and prints them)"
        ),
    }
}

fn helm() -> PathBuf {
    helm_from("COXSWAIN_TEST_HELM")
}

fn helm3() -> PathBuf {
    helm_from("COXSWAIN_TEST_HELM3")
}

/// The admin's command of docs/install.md, with `trust` as the trust root file.
fn admin_args(trust: &Path) -> Vec<String> {
    vec![
        "--set".into(),
        "subscription.server=https://updates.example.org".into(),
        "--set".into(),
        "subscription.channel=stable".into(),
        "--set-file".into(),
        format!("trust.root={}", trust.display()),
    ]
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn read_yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn chart_version_and_app_version_are_the_crate_version() {
    let chart = read_yaml(&chart_dir().join("Chart.yaml"));
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "coxswain");
    assert_eq!(
        chart["version"],
        env!("CARGO_PKG_VERSION"),
        "Chart.yaml version"
    );
    assert_eq!(
        chart["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "Chart.yaml appVersion"
    );
}

#[test]
fn lint_strict_passes_with_default_and_full_values_on_helm_4_and_3() {
    let full = full_values();
    let chart = chart_dir();
    for helm in [helm(), helm3()] {
        for extra in [vec![], vec!["-f", full.to_str().unwrap()]] {
            let sandbox = tempfile::tempdir().unwrap();
            let mut args = vec!["lint", "--strict", chart.to_str().unwrap()];
            args.extend_from_slice(&extra);
            let out = helm_output(&helm, sandbox.path(), None, &args);
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{} {args:?}: {text}{}",
                helm.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(text.contains("0 chart(s) failed"), "{text}");
            assert!(
                !text.contains("[WARNING]") && !text.contains("[ERROR]"),
                "{text}"
            );
        }
    }
}

#[test]
fn default_values_render_the_agent_and_its_rbac_and_nothing_optional() {
    let objects = template(&helm(), &[]);
    assert_eq!(
        kinds_and_names(&objects),
        [
            "ClusterRole/coxswain-coxswain-helm",
            "ClusterRole/coxswain-coxswain-identity",
            "ClusterRoleBinding/coxswain-coxswain-helm",
            "ClusterRoleBinding/coxswain-coxswain-identity",
            "Deployment/coxswain",
            "PodDisruptionBudget/coxswain",
            "Role/coxswain-agent",
            "RoleBinding/coxswain-agent",
            "Service/coxswain",
            "ServiceAccount/coxswain",
        ]
    );
    // Everything namespaced lands in the release's namespace.
    for o in &objects {
        let kind = o["kind"].as_str().unwrap();
        if !kind.starts_with("Cluster") {
            assert_eq!(o["metadata"]["namespace"], "coxswain", "{kind}");
        }
    }
}

/// The container of the one Deployment.
fn container(objects: &[Value]) -> &Value {
    &one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

fn args_of(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
    args.iter()
        .find_map(|a| a.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {args:?}"))
}

fn env_of(container: &Value, name: &str) -> Value {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name}"))
        .clone()
}

#[test]
fn deployment_runs_two_leader_electing_hardened_replicas_with_probes() {
    let objects = template(&helm(), &[]);
    let deployment = one(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let c = container(&objects);
    let args = args_of(c);
    assert_eq!(args[0], "agent");
    assert_eq!(flag(&args, "--leader-elect"), "true");
    assert_eq!(flag(&args, "--namespace"), "coxswain");
    assert_eq!(flag(&args, "--listen"), "0.0.0.0:8080");
    assert_eq!(flag(&args, "--lease-name"), "coxswain-agent");
    assert_eq!(
        env_of(c, "POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    // The agent knows its own release, so a channel may update it (last).
    assert_eq!(
        env_of(c, "COXSWAIN_AGENT_RELEASE")["value"],
        "coxswain/coxswain"
    );
    assert_eq!(
        c["image"],
        format!("ghcr.io/coxswain/coxswain:{}", env!("CARGO_PKG_VERSION"))
    );

    // Probes on the agent's own endpoints, through the named port.
    assert_eq!(c["ports"][0]["name"], "http");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(c[probe]["httpGet"]["port"], "http", "{probe}");
    }
    let service = one(&objects, "Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    // Hardened: non-root, read-only root, no capabilities, RuntimeDefault seccomp.
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());

    // Every place the agent or helm writes is on an emptyDir: the cache dir
    // (charts, values, helm's HELM_*_HOME) and HOME, TMPDIR, the XDG homes
    // and client-go's discovery cache.
    let volumes = pod["volumes"].as_array().unwrap();
    let mounts: Vec<String> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let volume = volumes.iter().find(|v| v["name"] == m["name"]).unwrap();
            assert!(volume["emptyDir"].is_object(), "{m} is not an emptyDir");
            m["mountPath"].as_str().unwrap().to_owned()
        })
        .collect();
    let on_a_mount = |path: &str| {
        mounts
            .iter()
            .any(|m| path == m || path.starts_with(&format!("{m}/")))
    };
    assert!(on_a_mount(flag(&args, "--cache-dir")), "--cache-dir");
    for var in [
        "HOME",
        "TMPDIR",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "KUBECACHEDIR",
    ] {
        let value = env_of(c, var)["value"].as_str().unwrap().to_owned();
        assert!(
            on_a_mount(&value),
            "{var}={value} is not on a writable volume ({mounts:?})"
        );
    }

    // The agent's stop grace fits in the pod's.
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let stop = coxswain::duration::Duration::parse(flag(&args, "--stop-grace")).unwrap();
    assert!(stop.as_secs() < grace, "--stop-grace {stop} >= {grace}s");

    let pdb = one(&objects, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(pdb["spec"]["selector"], deployment["spec"]["selector"]);
}

#[test]
fn rbac_is_the_agents_namespaced_role_and_helms_cluster_role() {
    let objects = template(&helm(), &[]);
    // (a) The agent's Role: only its namespace, only what it uses.
    let role = one(&objects, "Role");
    let rules = role["rules"].as_array().unwrap();
    let grants = |group: &str, resource: &str| -> BTreeSet<String> {
        rules
            .iter()
            .filter(|r| {
                r["apiGroups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|g| g == group)
                    && r["resources"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x == resource)
            })
            .flat_map(|r| {
                r["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
            })
            .collect()
    };
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        grants("coxswain.dev", "channelsubscriptions"),
        set(&["get", "list", "watch", "patch", "update"])
    );
    assert_eq!(
        grants("coxswain.dev", "channelsubscriptions/status"),
        set(&["get", "patch", "update"])
    );
    assert_eq!(grants("events.k8s.io", "events"), set(&["create", "patch"]));
    assert_eq!(
        grants("coordination.k8s.io", "leases"),
        set(&["create", "get", "update", "patch"])
    );
    assert_eq!(grants("", "configmaps"), set(&["get"]));
    assert_eq!(grants("", "secrets"), set(&["get"]));
    assert!(
        rules.iter().all(|r| !r["verbs"].to_string().contains('*')),
        "{rules:?}"
    );
    let binding = of_kind(&objects, "RoleBinding")
        .into_iter()
        .find(|b| b["metadata"]["name"] == "coxswain-agent")
        .unwrap();
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"][0]["name"], "coxswain");
    assert_eq!(binding["subjects"][0]["namespace"], "coxswain");

    // (a) with rbac.crds: the CRDs of the crds policies, cluster-wide: get,
    // create, patch; never delete. Off by default.
    let named_in = |objects: &[Value], kind: &str, name: &str| -> Value {
        of_kind(objects, kind)
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind}/{name} missing"))
            .clone()
    };
    let named = |kind: &str, name: &str| named_in(&objects, kind, name);
    let with_crds = template(&helm(), &["--set", "rbac.crds=true"]);
    assert_eq!(
        named_in(&with_crds, "ClusterRole", "coxswain-coxswain-crds")["rules"],
        serde_json::json!([{
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get", "create", "patch"]
        }])
    );
    let crds_binding = named_in(&with_crds, "ClusterRoleBinding", "coxswain-coxswain-crds");
    assert_eq!(crds_binding["roleRef"]["name"], "coxswain-coxswain-crds");
    assert_eq!(crds_binding["subjects"][0]["name"], "coxswain");
    assert_eq!(crds_binding["subjects"][0]["namespace"], "coxswain");
    assert!(
        kinds_and_names(&objects)
            .iter()
            .all(|k| !k.ends_with("-crds")),
        "off by default"
    );

    // (a) with rbac.veleroNamespace: Backups and Restores in Velero's
    // namespace, create and get; never delete. Off by default.
    let with_velero = template(&helm(), &["--set", "rbac.veleroNamespace=velero"]);
    let role = named_in(&with_velero, "Role", "coxswain-velero");
    assert_eq!(role["metadata"]["namespace"], "velero");
    assert_eq!(
        role["rules"],
        serde_json::json!([{
            "apiGroups": ["velero.io"],
            "resources": ["backups", "restores"],
            "verbs": ["get", "list", "create"]
        }])
    );
    let velero_binding = named_in(&with_velero, "RoleBinding", "coxswain-velero");
    assert_eq!(velero_binding["metadata"]["namespace"], "velero");
    assert_eq!(velero_binding["roleRef"]["name"], "coxswain-velero");
    assert_eq!(velero_binding["subjects"][0]["name"], "coxswain");
    assert_eq!(velero_binding["subjects"][0]["namespace"], "coxswain");
    assert!(
        kinds_and_names(&objects)
            .iter()
            .all(|k| !k.ends_with("-velero")),
        "off by default"
    );

    // (b) helm's ClusterRole, bound cluster-wide by default. The agent reads
    // helm's release records through it too (list and get on secrets in the
    // releases' namespaces), so the agent's own Role needs no list on secrets.
    let cluster_role = named("ClusterRole", "coxswain-coxswain-helm");
    assert_eq!(
        cluster_role["rules"],
        serde_json::json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])
    );
    let crb = named("ClusterRoleBinding", "coxswain-coxswain-helm");
    assert_eq!(crb["roleRef"]["name"], cluster_role["metadata"]["name"]);
    assert_eq!(crb["subjects"][0]["name"], "coxswain");

    // With rbac.helmNamespaces: RoleBindings in just those namespaces, no
    // cluster-wide binding of helm's role; only `create namespaces` stays
    // cluster-wide (helm's --create-namespace).
    let objects = template(&helm(), &["--set", "rbac.helmNamespaces={apps,wiki}"]);
    let helm_bindings: Vec<&Value> = of_kind(&objects, "RoleBinding")
        .into_iter()
        .filter(|b| b["roleRef"]["kind"] == "ClusterRole")
        .collect();
    let namespaces: Vec<&str> = helm_bindings
        .iter()
        .map(|b| b["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["apps", "wiki"]);
    for b in &helm_bindings {
        assert_eq!(b["roleRef"]["name"], "coxswain-coxswain-helm");
        assert_eq!(b["subjects"][0]["namespace"], "coxswain");
    }
    let crbs: Vec<&str> = of_kind(&objects, "ClusterRoleBinding")
        .into_iter()
        .map(|b| b["roleRef"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        crbs,
        [
            "coxswain-coxswain-identity",
            "coxswain-coxswain-helm-namespaces"
        ]
    );
    // The cluster's identity for rollout waves: get on the kube-system Namespace only.
    let identity = of_kind(&objects, "ClusterRole")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "coxswain-coxswain-identity")
        .unwrap();
    assert_eq!(
        identity["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["kube-system"], "verbs": ["get"]}])
    );
    let ns_role = of_kind(&objects, "ClusterRole")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "coxswain-coxswain-helm-namespaces")
        .unwrap();
    assert_eq!(
        ns_role["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]}])
    );

    // rbac.create=false: no RBAC object at all.
    let objects = template(&helm(), &["--set", "rbac.create=false"]);
    for kind in ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"] {
        assert!(of_kind(&objects, kind).is_empty(), "{kind}");
    }
}

#[test]
fn the_admin_command_makes_the_trust_anchor_and_the_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let trust = dir.path().join("trust.json");
    // Bytes that YAML would change if they were not carried exactly.
    let anchor = "{\"signed\": {\"version\": 1, \"note\": \"a: b # c\\n<&>\"}}\n";
    std::fs::write(&trust, anchor).unwrap();
    let objects = template(&helm(), &strs(&admin_args(&trust)));
    let cm = one(&objects, "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "coxswain-trust");
    assert_eq!(
        cm["data"]["root.json"], anchor,
        "the trust root's bytes, exactly"
    );

    let sub = one(&objects, "ChannelSubscription");
    assert_eq!(sub["apiVersion"], "coxswain.dev/v1alpha1");
    assert_eq!(sub["metadata"]["name"], "coxswain");
    assert_eq!(sub["metadata"]["namespace"], "coxswain");
    assert_eq!(
        sub["spec"],
        serde_json::json!({
            "server": "https://updates.example.org",
            "channel": "stable",
            "trustRef": {"kind": "ConfigMap", "name": "coxswain-trust", "key": "root.json"},
        }),
        "empty values leave the CRD's defaults"
    );
    // The agent reads it as a subscription with those defaults.
    let typed: ChannelSubscription = serde_json::from_value(sub.clone()).unwrap();
    assert_eq!(typed.spec.interval.to_string(), "5m");
    assert!(!typed.spec.suspend);
}

#[test]
fn every_value_set_renders_every_object_and_maps_onto_the_crd() {
    let dir = tempfile::tempdir().unwrap();
    let objects = template(
        &helm(),
        &[
            "-f",
            full_values().to_str().unwrap(),
            "--set",
            "subscription.server=https://updates.example.org",
        ],
    );
    let kinds: BTreeSet<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "ChannelSubscription",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }

    // The subscription: every spec field the chart offers, read by the agent's own type.
    let sub: ChannelSubscription =
        serde_json::from_value(one(&objects, "ChannelSubscription").clone()).unwrap();
    assert_eq!(sub.metadata.name.as_deref(), Some("stack"));
    let spec = &sub.spec;
    assert_eq!(spec.server, "https://updates.example.org");
    assert_eq!(spec.channel, "stable");
    assert_eq!(spec.trust_ref.kind, KeyRefKind::Secret);
    assert_eq!(spec.trust_ref.name, "coxswain-trust-anchor");
    assert_eq!(spec.trust_ref.key, "trust.json");
    assert_eq!(spec.interval.to_string(), "10m");
    assert_eq!(spec.pins.get("wiki").map(String::as_str), Some("1.0.0"));
    assert!(spec.holds.contains(&"files".to_owned()));
    let wiki = &spec.values["wiki"].values_from;
    assert_eq!(wiki.len(), 2);
    assert_eq!(wiki[1].kind, KeyRefKind::Secret);
    assert_eq!(spec.concurrency, 2);
    assert_eq!(spec.health_timeout.to_string(), "10m");
    assert_eq!(spec.rollback_policy, RollbackPolicy::Channel);

    // One source: the PrometheusRule's spec is monitoring/prometheusrule.yaml's.
    let rule_file = read_yaml(&chart_dir().join("monitoring/prometheusrule.yaml"));
    let rule = one(&objects, "PrometheusRule");
    assert_eq!(rule["spec"], rule_file["spec"]);
    assert_eq!(
        rule["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    // ... and the dashboard is dashboards/coxswain.json, labelled for the sidecar.
    let dashboard = one(&objects, "ConfigMap");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        dashboard["metadata"]["annotations"]["grafana_folder"],
        "coxswain"
    );
    let json = std::fs::read_to_string(chart_dir().join("dashboards/coxswain.json")).unwrap();
    assert_eq!(
        dashboard["data"]["coxswain.json"].as_str().unwrap(),
        json.trim_end()
    );
    let monitor = one(&objects, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");

    // Image by digest, the flags from values, the extra env.
    let c = container(&objects);
    assert_eq!(
        c["image"],
        "registry.example.org/coxswain/coxswain@sha256:0000000000000000000000000000000000000000000000000000000000000000"
    );
    let args = args_of(c);
    assert_eq!(flag(&args, "--listen"), "0.0.0.0:9090");
    assert_eq!(flag(&args, "--lease-duration"), "20s");
    assert_eq!(flag(&args, "--http-timeout"), "90s");
    assert_eq!(flag(&args, "--fetch-deadline"), "7m");
    assert_eq!(
        env_of(c, "HTTPS_PROXY")["value"],
        "http://proxy.example.org:3128"
    );
    assert_eq!(one(&objects, "Deployment")["spec"]["replicas"], 3);
    // The lease the Role lets the agent renew is the one it is told to use
    // (the other Role is Velero's, rbac.veleroNamespace).
    let roles = of_kind(&objects, "Role");
    assert_eq!(roles.len(), 2, "{roles:#?}");
    let role = roles
        .iter()
        .find(|r| r["metadata"]["namespace"] != "velero")
        .unwrap();
    assert!(
        role["rules"].to_string().contains("\"coxswain-leader\""),
        "{role}"
    );
    let policy = one(&objects, "NetworkPolicy");
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    drop(dir);
}

/// helm's error for `args`, which must fail.
fn refused(helm: &Path, args: &[&str]) -> String {
    let sandbox = tempfile::tempdir().unwrap();
    let chart = chart_dir();
    let mut all = vec!["template", "coxswain", chart.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = helm_output(helm, sandbox.path(), None, &all);
    assert!(
        !out.status.success(),
        "helm {all:?} accepted it:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_schema_refuses_a_misspelt_key_a_wrong_type_and_a_bad_value() {
    for helm in [helm(), helm3()] {
        let err = refused(
            &helm,
            &["--set", "subscripton.server=https://updates.example.org"],
        );
        assert!(
            err.contains("values don't meet the specifications of the schema"),
            "{err}"
        );
        assert!(
            err.contains("additional properties 'subscripton' not allowed"),
            "{err}"
        );
        let err = refused(&helm, &["--set", "image.tga=1.0"]);
        assert!(
            err.contains("additional properties 'tga' not allowed"),
            "{err}"
        );
        assert!(err.contains("/image"), "the error names where: {err}");
        let err = refused(&helm, &["--set", "replicaCount=two"]);
        assert!(err.contains("/replicaCount"), "{err}");
        let err = refused(&helm, &["--set", "subscription.rollbackPolicy=everything"]);
        assert!(err.contains("/subscription/rollbackPolicy"), "{err}");
        let err = refused(
            &helm,
            &["--set", "subscription.server=ftp://updates.example.org"],
        );
        assert!(err.contains("/subscription/server"), "{err}");
    }
}

#[test]
fn a_subscription_without_a_channel_or_a_trust_anchor_is_refused_with_a_hint() {
    let err = refused(
        &helm(),
        &["--set", "subscription.server=https://updates.example.org"],
    );
    assert!(
        err.contains("subscription.channel: name the channel to follow"),
        "{err}"
    );
    let err = refused(
        &helm(),
        &[
            "--set",
            "subscription.server=https://updates.example.org",
            "--set",
            "subscription.channel=stable",
        ],
    );
    assert!(err.contains("there is no trust anchor"), "{err}");
    assert!(err.contains("--set-file trust.root=trust.json"), "{err}");
}

/// Every key path of a values document (into mappings only); keys may hold
/// dots (`kubernetes.io/os`), so a path is a list.
fn key_paths(value: &Value, prefix: &[String], out: &mut BTreeSet<Vec<String>>) {
    if let Value::Object(map) = value {
        for (k, v) in map {
            let mut path = prefix.to_vec();
            path.push(k.clone());
            out.insert(path.clone());
            key_paths(v, &path, out);
        }
    }
}

/// The schema node of a key path, or why there is none.
fn schema_at<'a>(schema: &'a Value, path: &[String]) -> Result<&'a Value, String> {
    let mut node = schema;
    for key in path {
        node = match node.get("properties").and_then(|p| p.get(key)) {
            Some(n) => n,
            None => match node.get("additionalProperties") {
                Some(n) if n.is_object() => n,
                // A free-form object (securityContext, resources, ...): its
                // inner keys are Kubernetes', not this chart's.
                None if node["type"] == "object" && node.get("properties").is_none() => {
                    return Ok(node);
                }
                _ => return Err(format!("`{}`: the schema has no `{key}`", path.join("."))),
            },
        };
    }
    Ok(node)
}

#[test]
fn the_schema_and_values_yaml_name_the_same_keys() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).unwrap(),
    )
    .unwrap();
    let defaults = read_yaml(&chart_dir().join("values.yaml"));
    let full = read_yaml(&full_values());
    let mut paths = BTreeSet::new();
    key_paths(&defaults, &[], &mut paths);
    key_paths(&full, &[], &mut paths);
    let missing: Vec<String> = paths
        .iter()
        .filter_map(|p| schema_at(&schema, p).err())
        .collect();
    assert!(missing.is_empty(), "values.schema.json lacks: {missing:#?}");

    // Every key the schema declares has a default in values.yaml, and every
    // object of the chart's own refuses keys it does not know.
    let mut undocumented = Vec::new();
    let mut open = Vec::new();
    fn walk(
        node: &Value,
        path: &str,
        defaults: &Value,
        undocumented: &mut Vec<String>,
        open: &mut Vec<String>,
    ) {
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            return;
        };
        if node.get("additionalProperties") != Some(&Value::Bool(false)) {
            open.push(if path.is_empty() {
                "(root)".into()
            } else {
                path.to_owned()
            });
        }
        for (k, child) in props {
            let here = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match defaults.get(k) {
                None => undocumented.push(here),
                Some(d) => walk(child, &here, d, undocumented, open),
            }
        }
    }
    walk(&schema, "", &defaults, &mut undocumented, &mut open);
    assert!(
        undocumented.is_empty(),
        "schema keys without a default in values.yaml: {undocumented:?}"
    );
    assert!(
        open.is_empty(),
        "objects without additionalProperties: false: {open:?}"
    );
}

#[test]
fn the_packaged_chart_leaves_out_the_promtool_tests() {
    let sandbox = tempfile::tempdir().unwrap();
    let out = helm_output(
        &helm(),
        sandbox.path(),
        None,
        &[
            "package",
            chart_dir().to_str().unwrap(),
            "-d",
            sandbox.path().to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tgz = sandbox
        .path()
        .join(format!("coxswain-{}.tgz", env!("CARGO_PKG_VERSION")));
    let bytes = std::fs::read(&tgz).unwrap();
    let archive = coxswain::chart::ChartArchive::read(
        &bytes,
        "helm package",
        Some("coxswain"),
        &coxswain::chart::ArchiveLimits::default(),
    )
    .unwrap();
    let names: Vec<String> = archive.files.keys().cloned().collect();
    for want in [
        "crds/channelsubscriptions.yaml",
        "monitoring/prometheusrule.yaml",
        "dashboards/coxswain.json",
        "values.schema.json",
        "templates/NOTES.txt",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.ends_with(".test.yaml")),
        "{names:?}"
    );
}
