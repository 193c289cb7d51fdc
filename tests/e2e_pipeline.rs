//! The maintainers' whole loop, end to end, as `examples/ci/stack-channels.yml`
//! runs it: a classic Helm repository and a real OCI registry on loopback hold
//! a newer chart and a newer image tag; `upstream check --write` finds and
//! writes both; `publish` beta; `gate` on a test cluster passes; `promote` to
//! stable with `--require-gate`; a cluster subscribed to stable takes exactly
//! that set. A second round whose new chart version fails its `helm test`
//! fails the gate, is withdrawn, and never reaches stable.
//!
//! Two clusters, as in the field: the shared loopback cluster is the gate's
//! throwaway test cluster, and a cluster of this test's own follows stable.
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::path::Path;

use serde_json::Value;
use support::cluster::{OwnCluster, helm4, kubeconfig_path};
use support::registry::Registry;
use support::sources::{helm_ok, push_image, serve_dir, write};
use support::world::{World, run, succeed};
use support::{test_key_file, testdata};

/// A chart `web` at `version` whose `helm test` Job uses the image tag `test_tag`.
fn web_chart(work: &Path, repo: &Path, version: &str, test_tag: &str) {
    let dir = work.join("src").join(version).join("web");
    write(
        &dir.join("Chart.yaml"),
        &format!("apiVersion: v2\nname: web\nversion: {version}\nappVersion: \"{version}\"\n"),
    );
    write(
        &dir.join("templates/config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  image: {{ .Values.image.repository }}:{{ .Values.image.tag }}\n",
    );
    write(
        &dir.join("templates/test.yaml"),
        &format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{{{ .Release.Name }}}}-test\n  annotations:\n    helm.sh/hook: test\n    helm.sh/hook-delete-policy: before-hook-creation\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: smoke\n          image: registry.coxswain.test/smoke:{test_tag}\n"
        ),
    );
    let packed =
        coxswain::chart::pack_dir(&dir, &coxswain::chart::ArchiveLimits::default()).unwrap();
    std::fs::write(repo.join(format!("web-{version}.tgz")), packed.bytes).unwrap();
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "coxswain {args:?}\nstdout: {out}\nstderr: {err}");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_to_beta_to_gate_to_stable_and_a_bad_version_is_withdrawn() {
    // The gate's test cluster is the shared one; stable's cluster is our own.
    let gate_kubeconfig = kubeconfig_path();
    let _stable_cluster = OwnCluster::up("stable");
    let w = World::new("pipeline", &["web"]).await;
    let work = w.dir.path().to_path_buf();
    let home = work.join("helm-home");
    let gate_key = test_key_file(&work, "test-channel-2");
    let site = w.site();

    // Upstream: a repository with web 1.0.0 and 1.1.0, a registry with app 1.0.0 and 1.1.0.
    let registry = Registry::start(None);
    let repo = work.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    for version in ["1.0.0", "1.1.0"] {
        web_chart(&work, &repo, version, "ok");
    }
    let repo_url = serve_dir(repo.clone()).await;
    helm_ok(
        &["repo", "index", repo.to_str().unwrap(), "--url", &repo_url],
        &home,
    );
    for tag in ["1.0.0", "1.1.0"] {
        push_image(&work, &format!("{}/team/app:{tag}", registry.host), tag);
    }

    // The maintainers' spec, at the old versions.
    let spec = work.join("channels/beta.yaml");
    write(
        &spec,
        &format!(
            "# beta: what the test cluster gates\napiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: beta\nreleases:\n  - name: web\n    namespace: {ns}\n    chart:\n      repo: {{url: \"{repo_url}\", name: web, version: 1.0.0}}\n    values:\n      image:\n        repository: {host}/team/app\n        tag: \"1.0.0\"   # written by upstream check\n    health: {{timeout: 30s}}\n    update:\n      chart: minor\n      images:\n        - {{repository: {host}/team/app, tag: image.tag}}\n",
            ns = w.rns("web"),
            host = registry.host
        ),
    );
    let spec_arg = spec.to_str().unwrap().to_owned();
    let key = w.key.to_str().unwrap().to_owned();
    let trust = work.join("trust.json");
    let gate = |namespace: &str| -> (i32, String, String) {
        run(&[
            "gate",
            "--site",
            &w.server.url,
            "--channel",
            "beta",
            "--trust",
            trust.to_str().unwrap(),
            "--kubeconfig",
            gate_kubeconfig.to_str().unwrap(),
            "--namespace",
            namespace,
            "--helm",
            helm4().to_str().unwrap(),
            "--test-timeout",
            "30s",
            "--record",
            site.join("channels/beta/gate.json").to_str().unwrap(),
            "--record-key",
            gate_key.to_str().unwrap(),
        ])
    };
    let promote = || {
        run(&[
            "promote",
            "--site",
            site.to_str().unwrap(),
            "--from",
            "beta",
            "--to",
            "stable",
            "--key",
            &key,
            "--min-soak",
            "1s",
            "--require-gate",
            "--gate-key",
            testdata("keys/test-channel-2.pub").to_str().unwrap(),
        ])
    };

    // Round 1: upstream check writes both updates.
    let (code, out, err) = run(&["upstream", "check", "--spec", &spec_arg, "--write"]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    let text = std::fs::read_to_string(&spec).unwrap();
    assert!(text.contains("version: 1.1.0}"), "{text}");
    assert!(
        text.contains("tag: \"1.1.0\"   # written by upstream check"),
        "{text}"
    );
    // Publish beta#1, gate it on the test cluster, promote it to stable.
    let publish = |extra: &[&str]| {
        let mut args = vec![
            "publish",
            "--spec",
            &spec_arg,
            "--key",
            &key,
            "--out",
            site.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ok(&args)
    };
    publish(&["--sequence", "1"]);
    let gate_ns = format!("{}-gate", w.ns.name);
    let (code, out, err) = gate(&gate_ns);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (code, out, err) = promote();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("promoted beta#1 to stable#1"), "{out}");

    // The cluster subscribed to stable takes exactly that set.
    w.subscribe(|_| {}).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let history = w.history("web");
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["chart"], "web-1.1.0");
    let values: Value = serde_json::from_slice(&succeed(
        std::process::Command::new(helm4())
            .args(["get", "values", "web", "-o", "json", "--namespace"])
            .arg(w.rns("web"))
            .arg("--kubeconfig")
            .arg(kubeconfig_path()),
    ))
    .unwrap();
    assert_eq!(values["image"]["tag"], "1.1.0", "{values}");

    // Round 2: web 1.2.0 upstream, whose helm test fails.
    web_chart(&work, &repo, "1.2.0", "fail");
    helm_ok(
        &["repo", "index", repo.to_str().unwrap(), "--url", &repo_url],
        &home,
    );
    let (code, out, err) = run(&["upstream", "check", "--spec", &spec_arg, "--write"]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    publish(&[]);
    let (code, out, err) = gate(&gate_ns);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("FAIL  web 1.2.0"), "{out}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (code, _, err) = promote();
    assert_eq!(code, 1);
    assert!(
        err.contains("beta#2 has no passing gate record: the gate failed"),
        "{err}"
    );
    // Withdrawn: beta#3 brings back beta#1's releases.
    let out = ok(&[
        "withdraw",
        "--site",
        site.to_str().unwrap(),
        "--channel",
        "beta",
        "--sequence",
        "2",
        "--reason",
        "web 1.2.0 fails its smoke test",
        "--key",
        &key,
    ]);
    assert!(
        out.contains("withdrew beta#2: beta#3 offers the releases of #1"),
        "{out}"
    );
    // Stable never saw 1.2.0: its cluster stays at what it runs.
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(w.history("web").len(), 1, "stable's cluster did not move");
    let stable: Value =
        serde_json::from_slice(&std::fs::read(site.join("channels/stable/index.json")).unwrap())
            .unwrap();
    assert_eq!(stable["sequence"], 1);
    assert_eq!(stable["releases"][0]["chart"]["version"], "1.1.0");
}
