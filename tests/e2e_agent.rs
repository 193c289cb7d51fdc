//! End-to-end tests of `coxswain agent`: the agent binary as a separate process
//! (`--once`), the real helm 4, a real `coxswain serve` serving a site made by
//! the real `coxswain publish`, on the loopback cluster with KWOK nodes.
//!
//! Each test has its own subscription namespace and release namespaces, so the
//! tests run in parallel. Failure cases use 20s health timeouts.
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::collections::BTreeMap;
use std::process::Stdio;

use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::Value;
use support::cluster::{TestNamespace, helm4, kubeconfig_path};
use support::world::{
    STACK, Server, World, access_log_of, break_sso, condition, coxswain, create_config_map,
    release, run, set, updated,
};
use support::{test_key_file, testdata};

/// Fresh install in dependency order (concurrency 2), a no-op poll, a new sequence that
/// upgrades only what changed, a cluster values override, pins and holds.
#[tokio::test]
async fn install_noop_update_values_pins_holds() {
    let mut w = World::new("ag-main", &STACK).await;
    w.publish(|_, _| {});
    // wiki and files share a layer: two at a time, still after sso.
    w.subscribe(|s| s.concurrency = 2).await;

    // Fresh install.
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("5 release(s) installed"), "{out}");
    let first: BTreeMap<&str, time::OffsetDateTime> = STACK
        .iter()
        .map(|r| (*r, updated(&w.history(r)[0])))
        .collect();
    assert!(first["certs"] < first["ingress"], "{first:?}");
    assert!(first["ingress"] < first["sso"], "{first:?}");
    assert!(
        first["sso"] < first["wiki"] && first["sso"] < first["files"],
        "{first:?}"
    );
    let status = w.status().await;
    assert_eq!(status["acceptedSequence"], 1);
    assert_eq!(condition(&status, "Ready").0, "True");
    assert_eq!(condition(&status, "Verified").0, "True");
    for r in STACK {
        assert_eq!(release(&status, r)["state"], "upToDate", "{status}");
        let h = w.history(r);
        assert!(
            h[0]["description"]
                .as_str()
                .unwrap()
                .starts_with("coxswain stable#1 chart=sha256:"),
            "{h:?}"
        );
    }
    let events = w.events().await;
    assert_eq!(
        events.iter().filter(|(r, _)| r == "Installed").count(),
        5,
        "{events:?}"
    );

    // A no-op poll: no helm upgrade, revisions unchanged.
    let before = w.revisions();
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("every release is at its desired state"),
        "{out}"
    );
    assert!(!err.contains("command=\"upgrade\""), "{err}");
    assert_eq!(w.revisions(), before);

    // A new sequence: wiki chart 1.1.0 and an ingress values change.
    let charts_next = testdata("charts-next/wiki");
    let seq = w.publish(|name, r| match name {
        "wiki" => {
            r["chart"]["path"] = charts_next.to_str().unwrap().into();
        }
        "ingress" => set(r, &["values", "image", "tag"], "1.10.1".into()),
        _ => {}
    });
    assert_eq!(seq, 2);
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    let after = w.revisions();
    assert_eq!(after["wiki"], 2);
    assert_eq!(after["ingress"], 2);
    for r in ["certs", "sso", "files"] {
        assert_eq!(after[r], 1, "{r} must not be upgraded: {after:?}");
    }
    let status = w.status().await;
    assert_eq!(release(&status, "wiki")["version"], "1.1.0");
    assert_eq!(status["acceptedSequence"], 2);

    // Cluster values override from a ConfigMap, visible in the rendered Ingress.
    create_config_map(
        &w.client,
        &w.ns.name,
        "wiki-values",
        "values.yaml",
        "ingress:\n  host: wiki.cluster-one.example\n",
    )
    .await;
    w.patch_spec(serde_json::json!({"values": {"wiki": {"valuesFrom": [
        {"kind": "ConfigMap", "name": "wiki-values", "key": "values.yaml"}
    ]}}}))
    .await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.revisions()["wiki"], 3);
    let ingresses = Api::<Ingress>::namespaced(w.client.clone(), w.rns("wiki"))
        .list(&Default::default())
        .await
        .unwrap();
    let hosts: Vec<String> = ingresses
        .items
        .iter()
        .flat_map(|i| i.spec.iter().flat_map(|s| s.rules.iter().flatten()))
        .filter_map(|r| r.host.clone())
        .collect();
    assert_eq!(hosts, vec!["wiki.cluster-one.example".to_owned()]);

    // Pin wiki to its previous version, hold files; a new sequence moves
    // certs and files: wiki goes to 1.0.0, files stays, certs moves.
    w.patch_spec(serde_json::json!({"pins": {"wiki": "1.0.0"}, "holds": ["files"]}))
        .await;
    let seq = w.publish(|name, r| match name {
        "wiki" => {
            r["chart"]["path"] = charts_next.to_str().unwrap().into();
        }
        "ingress" => set(r, &["values", "image", "tag"], "1.10.1".into()),
        "certs" => set(r, &["values", "logLevel"], 3.into()),
        "files" => set(r, &["values", "image", "tag"], "29.0.2".into()),
        _ => {}
    });
    assert_eq!(seq, 3);
    let before = w.revisions();
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    let after = w.revisions();
    assert_eq!(after["certs"], before["certs"] + 1);
    assert_eq!(after["files"], before["files"], "held");
    assert_eq!(after["ingress"], before["ingress"], "unchanged");
    assert_eq!(after["wiki"], before["wiki"] + 1, "pinned back to 1.0.0");
    let status = w.status().await;
    assert_eq!(release(&status, "wiki")["version"], "1.0.0");
    assert_eq!(release(&status, "wiki")["pinned"], true);
    assert_eq!(release(&status, "files")["held"], true);
    assert_eq!(release(&status, "files")["state"], "held");

    // A pin to a version the index does not offer: holds and reports, exit 2.
    w.patch_spec(serde_json::json!({"pins": {"wiki": "0.9.0"}}))
        .await;
    let before = w.revisions();
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(w.revisions(), before);
    let status = w.status().await;
    let wiki = release(&status, "wiki");
    assert!(
        wiki["message"]
            .as_str()
            .unwrap()
            .contains("no longer offered"),
        "{wiki}"
    );
    assert!(err.contains("0.9.0"), "{err}");
}

/// A broken image: rolled back to exactly the noted revision, dependents
/// untouched, status and Events say why, the failed sequence is not retried
/// until the retry annotation or a newer sequence.
#[tokio::test]
async fn broken_upgrade_is_rolled_back_and_not_retried() {
    let mut w = World::new("ag-broken", &["certs", "ingress", "sso", "wiki"]).await;
    w.publish(|_, _| {});
    w.subscribe(|_| {}).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.revisions()["sso"], 1);

    let broken = |name: &str, r: &mut Value| match name {
        "sso" => break_sso(r),
        "wiki" => set(r, &["values", "image", "tag"], "2.5.301".into()),
        _ => {}
    };
    let seq = w.publish(broken);
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("sso"), "{err}");
    let h = w.history("sso");
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!(h[2]["description"], "Rollback to 1");
    assert_eq!(h[2]["status"], "deployed");
    assert_eq!(
        w.revisions()["wiki"],
        1,
        "the dependent must not be touched"
    );
    let status = w.status().await;
    assert_eq!(status["failedSequence"]["sequence"], seq);
    assert_eq!(release(&status, "sso")["state"], "rolledBack");
    assert_eq!(release(&status, "sso")["revision"], 3);
    assert_eq!(release(&status, "wiki")["state"], "skipped");
    let (ready, reason, _) = condition(&status, "Ready");
    assert_eq!((ready.as_str(), reason.as_str()), ("False", "RolledBack"));
    assert_eq!(status["lastCheck"]["result"], "rolledBack");
    let events = w.events().await;
    for reason in ["UpgradeFailed", "RolledBack", "Skipped"] {
        assert!(
            events.iter().any(|(r, _)| r == reason),
            "{reason}: {events:?}"
        );
    }
    let failed = events.iter().find(|(r, _)| r == "UpgradeFailed").unwrap();
    assert!(failed.1.contains("sso-server"), "{failed:?}");

    // Not retried on the next poll.
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(w.history("sso").len(), 3);
    assert!(err.contains("not retried"), "{err}");
    let status = w.status().await;
    assert_eq!(condition(&status, "Ready").1, "WaitingForNewerSequence");

    // The retry annotation: tried once more, rolled back again.
    w.subs()
        .patch(
            "stack",
            &PatchParams::default(),
            &Patch::Merge(
                &serde_json::json!({"metadata": {"annotations": {"coxswain.dev/retry": "1"}}}),
            ),
        )
        .await
        .unwrap();
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "{out}{err}");
    let h = w.history("sso");
    assert_eq!(h.len(), 5, "{h:?}");
    assert_eq!(h[4]["description"], "Rollback to 3");
    let status = w.status().await;
    assert_eq!(status["handledRetry"], "1");

    // The maintainers withdraw the failed sequence: the next one brings back the
    // first one's releases, and the cluster says why its failure was taken back.
    let (code, out, err) = run(&[
        "withdraw",
        "--site",
        w.site().to_str().unwrap(),
        "--channel",
        "stable",
        "--sequence",
        &seq.to_string(),
        "--reason",
        "sso 24.0.6 never becomes ready",
        "--key",
        w.key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    w.sequence += 1;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    let status = w.status().await;
    assert!(status["failedSequence"].is_null(), "{status}");
    assert_eq!(
        status["withdrawn"],
        serde_json::json!([{"sequence": seq, "reason": "sso 24.0.6 never becomes ready"}])
    );
    let events = w.events().await;
    assert!(
        events.iter().any(|(r, n)| r == "SequenceWithdrawn"
            && n.contains(&format!("sequence {seq}, which failed here, was withdrawn"))
            && n.contains("sso 24.0.6 never becomes ready")),
        "{events:?}"
    );

    // A newer sequence that fixes sso is applied, dependents follow.
    let seq = w.publish(|name, r| {
        if name == "wiki" {
            set(r, &["values", "image", "tag"], "2.5.301".into());
        }
    });
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    let status = w.status().await;
    assert!(status.get("failedSequence").is_none(), "{status}");
    assert_eq!(status["acceptedSequence"], seq);
    assert_eq!(w.revisions()["wiki"], 2);
}

/// rollbackPolicy channel: a failure rolls back what the run already upgraded.
#[tokio::test]
async fn channel_policy_restores_the_previous_set() {
    let mut w = World::new("ag-chan", &["certs", "ingress", "sso"]).await;
    w.publish(|_, _| {});
    w.subscribe(|s| s.rollback_policy = coxswain::crd::RollbackPolicy::Channel)
        .await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    w.publish(|name, r| match name {
        "certs" => set(r, &["values", "logLevel"], 5.into()),
        "ingress" => set(r, &["values", "image", "tag"], "1.10.1".into()),
        "sso" => {
            set(r, &["values", "image", "tag"], "crashloop".into());
            set(r, &["values", "migration", "image", "tag"], "24.0.5".into());
            set(r, &["health", "timeout"], "20s".into());
        }
        _ => {}
    });
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "{out}{err}");
    for r in ["certs", "ingress", "sso"] {
        let h = w.history(r);
        assert_eq!(h.len(), 3, "{r}: {h:?}");
        assert_eq!(h[2]["description"], "Rollback to 1", "{r}");
    }
    // Reverse order: ingress went back before certs.
    assert!(updated(&w.history("ingress")[2]) <= updated(&w.history("certs")[2]));
    let status = w.status().await;
    for r in ["certs", "ingress", "sso"] {
        assert_eq!(release(&status, r)["state"], "rolledBack", "{status}");
    }
    assert!(
        release(&status, "sso")["message"]
            .as_str()
            .unwrap()
            .contains("CrashLoopBackOff"),
        "{status}"
    );
}

/// Tampered, lower-sequence and wrong-channel indexes change nothing and exit 1;
/// an unreachable server changes nothing, the agent catches up when it returns;
/// no subscription exits 1.
#[tokio::test]
async fn refused_indexes_and_unreachable_server_change_nothing() {
    let mut w = World::new("ag-refuse", &["certs"]).await;
    w.publish(|_, _| {});
    w.subscribe(|_| {}).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    let keep1 = w.dir.path().join("seq1");
    support::copy_tree(&w.site().join("channels/stable"), &keep1);
    w.publish(|_, r| set(r, &["values", "logLevel"], 3.into()));
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.revisions()["certs"], 2);
    let stable = w.site().join("channels/stable");
    let good = support::snapshot(&stable);

    // Tampered: one byte of the index changed after signing.
    let index = stable.join("index.json");
    let text = std::fs::read_to_string(&index).unwrap();
    std::fs::write(
        &index,
        text.replacen("\"logLevel\": 3", "\"logLevel\": 4", 1),
    )
    .unwrap();
    assert_ne!(std::fs::read_to_string(&index).unwrap(), text);
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("signature"), "{err}");
    let status = w.status().await;
    assert_eq!(condition(&status, "Verified").0, "False");
    assert_eq!(status["lastCheck"]["result"], "verificationFailed");
    assert!(
        w.events()
            .await
            .iter()
            .any(|(r, _)| r == "VerificationFailed")
    );
    assert_eq!(w.revisions()["certs"], 2);

    // Lower sequence: sequence 1, validly signed, after 2 was accepted.
    support::copy_tree(&keep1, &stable);
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("lower than 2"), "{err}");
    assert_eq!(w.revisions()["certs"], 2);

    // Wrong channel: a validly signed beta index served as stable.
    let beta_spec = w.spec("beta", |_, _| {});
    let beta_site = w.dir.path().join("beta-site");
    w.publish_to(&beta_spec, &beta_site, 9);
    for f in ["index.json", "index.json.sig"] {
        std::fs::copy(beta_site.join("channels/beta").join(f), stable.join(f)).unwrap();
    }
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("not `stable`"), "{err}");
    assert_eq!(w.revisions()["certs"], 2);

    // Back to the good index; then the server goes down while sequence 3 is made.
    for (rel, bytes) in &good {
        std::fs::write(stable.join(rel), bytes).unwrap();
    }
    let addr = w.server.addr();
    w.server.stop();
    w.publish(|_, r| set(r, &["values", "logLevel"], 5.into()));
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("cannot connect") || err.contains("cannot fetch"),
        "{err}"
    );
    let status = w.status().await;
    assert_eq!(status["lastCheck"]["result"], "unreachable");
    assert_eq!(condition(&status, "Ready").1, "Unreachable");
    assert_eq!(w.revisions()["certs"], 2);

    // The server returns on the same address: the agent catches up.
    w.server = Server::start(&w.site(), &addr);
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.revisions()["certs"], 3);
    assert_eq!(w.status().await["acceptedSequence"], 3);

    // No subscription at all: exit 1 with the reason.
    let empty = TestNamespace::create(&w.client, "ag-empty").await;
    let kubeconfig = kubeconfig_path();
    let (code, _, err) = run(&[
        "agent",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--namespace",
        &empty.name,
        "--helm",
        helm4().to_str().unwrap(),
        "--once",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no ChannelSubscription"), "{err}");
}

/// A failed first install is uninstalled; a failing pre-upgrade hook and a
/// failing `helm test` are rolled back to the noted revision.
#[tokio::test]
async fn failed_install_hook_and_helm_test_are_undone() {
    let mut w = World::new("ag-hooks", &["sso", "wiki"]).await;
    w.publish(|name, r| {
        if name == "wiki" {
            set(r, &["values", "image", "tag"], "broken".into());
            set(r, &["health", "timeout"], "20s".into());
        }
    });
    w.subscribe(|_| {}).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "{out}{err}");
    let status = w.status().await;
    assert_eq!(release(&status, "sso")["state"], "upToDate");
    let wiki = release(&status, "wiki");
    assert_eq!(wiki["state"], "rolledBack", "{wiki}");
    assert!(
        wiki["message"].as_str().unwrap().contains("uninstalled"),
        "{wiki}"
    );
    let out = std::process::Command::new(helm4())
        .args(["status", "wiki", "--namespace", w.rns("wiki")])
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "wiki must be uninstalled");
    assert!(w.events().await.iter().any(|(r, _)| r == "Uninstalled"));

    // Fixed: installed.
    w.publish(|_, _| {});
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.revisions()["wiki"], 1);

    // The schema migration hook fails: the upgrade fails before any workload changes.
    w.publish(|name, r| {
        if name == "sso" {
            set(r, &["values", "migration", "image", "tag"], "fail".into());
            set(r, &["values", "logLevel"], "debug".into());
            set(r, &["health", "timeout"], "20s".into());
        }
    });
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "{out}{err}");
    let h = w.history("sso");
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!(h[1]["status"], "failed");
    assert_eq!(h[2]["description"], "Rollback to 1");
    assert_eq!(w.revisions()["wiki"], 1);

    // sso fixed, wiki's helm test fails: rolled back to its revision 1.
    w.publish(|name, r| {
        if name == "wiki" {
            set(r, &["values", "tests", "image", "tag"], "fail".into());
            set(r, &["health", "timeout"], "20s".into());
        }
    });
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "{out}{err}");
    let h = w.history("wiki");
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!(h[2]["description"], "Rollback to 1");
    let status = w.status().await;
    let wiki = release(&status, "wiki");
    assert!(
        wiki["message"].as_str().unwrap().contains("helm test"),
        "{wiki}"
    );
}

/// An index that expired is refused like a tampered one.
#[tokio::test]
async fn expired_index_is_refused() {
    let mut w = World::new("ag-expired", &["certs"]).await;
    w.sequence += 1;
    let spec = w.spec("stable", |_, _| {});
    let (code, _, err) = run(&[
        "publish",
        "--spec",
        spec.to_str().unwrap(),
        "--key",
        w.key.to_str().unwrap(),
        "--out",
        w.site().to_str().unwrap(),
        "--sequence",
        "1",
        "--valid-for",
        "1s",
    ]);
    assert_eq!(code, 0, "{err}");
    w.subscribe(|_| {}).await;
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("expired"), "{err}");
    let status = w.status().await;
    assert_eq!(status["lastCheck"]["result"], "verificationFailed");
    let out = std::process::Command::new(helm4())
        .args(["status", "certs", "--namespace", w.rns("certs")])
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "nothing may be installed");
}

/// The agent as a long-running controller: reconciles a new subscription,
/// follows a new sequence on its interval, logs JSON, exits 0 on SIGTERM.
#[tokio::test]
async fn controller_follows_new_sequences_and_stops_on_sigterm() {
    let mut w = World::new("ag-ctl", &["certs"]).await;
    w.publish(|_, _| {});
    w.subscribe(|s| s.interval = coxswain::duration::Duration::from_secs(3))
        .await;
    let kubeconfig = kubeconfig_path();
    let cache = w.dir.path().join("cache");
    let mut agent = std::process::Command::new(coxswain())
        .args([
            "agent",
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .args(["--namespace", &w.ns.name, "--helm"])
        .arg(helm4())
        .arg("--cache-dir")
        .arg(&cache)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = agent.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        use std::io::Read;
        let mut text = String::new();
        let mut stderr = stderr;
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let subs = w.subs();
    support::cluster::wait_for(
        "sequence 1 reconciled",
        std::time::Duration::from_secs(60),
        || {
            let subs = subs.clone();
            async move {
                let s = subs.get("stack").await.ok()?.status?;
                (s.accepted_sequence == Some(1)
                    && s.condition("Ready")
                        .is_some_and(|c| c.status == coxswain::crd::ConditionStatus::True))
                .then_some(())
            }
        },
    )
    .await;
    w.publish(|_, r| set(r, &["values", "logLevel"], 4.into()));
    let history = |w: &World| w.history("certs").len();
    let started = std::time::Instant::now();
    while history(&w) < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "sequence 2 not applied by the running agent"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // A few more intervals of polling an unchanged channel change nothing, and
    // each poll costs one conditional request answered 304.
    let log = access_log_of(&w.site());
    let before = std::fs::read_to_string(&log).unwrap().lines().count();
    std::thread::sleep(std::time::Duration::from_secs(7));
    assert_eq!(history(&w), 2);
    let text = std::fs::read_to_string(&log).unwrap();
    let idle: Vec<&str> = text.lines().skip(before).collect();
    assert!(!idle.is_empty(), "no poll in 7s with a 3s interval");
    for line in &idle {
        let plain = strip_ansi(line);
        assert!(
            plain.contains("path=/channels/stable/index.json") && plain.contains("status=304"),
            "an idle poll made another request: {plain}"
        );
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&agent),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = agent.wait().unwrap();
    let logs = logs.join().unwrap();
    assert!(status.success(), "{status:?}\n{logs}");
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    assert!(logs.contains("reconciled"), "{logs}");
}

/// A rotated trust root (new channel key) is followed; a rotation that the old
/// root's keys did not sign is refused and changes nothing.
#[tokio::test]
async fn trust_rotation_is_followed_and_an_unsigned_one_refused() {
    let mut w = World::new("ag-trust", &["certs"]).await;
    w.publish(|_, _| {});
    w.subscribe(|_| {}).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");

    // Root 2 replaces the channel key; sequence 2 is signed by the new key.
    let root = test_key_file(w.dir.path(), "test-root-1");
    let trust = w.dir.path().join("trust.json");
    let (code, _, err) = run(&[
        "trust",
        "rotate",
        "--trust",
        trust.to_str().unwrap(),
        "--site",
        w.site().to_str().unwrap(),
        "--root-key",
        root.to_str().unwrap(),
        "--channel-key",
        testdata("keys/test-channel-2.pub").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let new_key = test_key_file(w.dir.path(), "test-channel-2");
    let spec = w.spec("stable", |_, r| set(r, &["values", "logLevel"], 4.into()));
    let publish = |sequence: &str| {
        run(&[
            "publish",
            "--spec",
            spec.to_str().unwrap(),
            "--key",
            new_key.to_str().unwrap(),
            "--prior-trust",
            trust.to_str().unwrap(),
            "--out",
            w.site().to_str().unwrap(),
            "--sequence",
            sequence,
        ])
    };
    let (code, _, err) = publish("2");
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    let status = w.status().await;
    assert_eq!(status["trustRootVersion"], 2);
    assert_eq!(status["acceptedSequence"], 2);
    assert_eq!(w.revisions()["certs"], 2);

    // Root 3, signed only by a key that is not a root key of version 2.
    let two = std::fs::read_to_string(w.site().join("trust/2.json")).unwrap();
    let three = two.replacen("\"version\": 2", "\"version\": 3", 1);
    assert_ne!(two, three);
    std::fs::write(w.site().join("trust/3.json.sig"), {
        let sigs = coxswain::keys::sign(three.as_bytes(), &[support::test_key("test-root-2")]);
        serde_json::to_vec(&sigs).unwrap()
    })
    .unwrap();
    std::fs::write(w.site().join("trust/3.json"), &three).unwrap();
    let spec = w.spec("stable", |_, r| set(r, &["values", "logLevel"], 5.into()));
    let (code, _, err) = run(&[
        "publish",
        "--spec",
        spec.to_str().unwrap(),
        "--key",
        new_key.to_str().unwrap(),
        "--out",
        w.site().to_str().unwrap(),
        "--sequence",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("trust/3.json"), "{err}");
    assert_eq!(w.revisions()["certs"], 2, "nothing may change");
    let status = w.status().await;
    assert_eq!(status["lastCheck"]["result"], "verificationFailed");
    assert_eq!(status["trustRootVersion"], 2);

    // A site that no longer offers root 2 is not followed back to root 1.
    for f in ["3.json", "3.json.sig", "2.json", "2.json.sig"] {
        std::fs::remove_file(w.site().join("trust").join(f)).unwrap();
    }
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("version 2 was accepted before"), "{err}");
    assert_eq!(w.revisions()["certs"], 2, "nothing may change");
}

/// Smoke test with helm 3: install, a no-op poll, a broken upgrade rolled back
/// ("Rollback to N" read back through helm 3's history), the dependent skipped.
#[tokio::test]
async fn helm3_install_noop_and_rollback() {
    let mut w = World::new("ag-helm3", &["certs", "ingress"]).await;
    w.helm = support::cluster::helm3();
    w.publish(|_, _| {});
    w.subscribe(|_| {}).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.revisions()["certs"], 1);
    w.publish(|name, r| match name {
        "certs" => {
            set(r, &["values", "image", "tag"], "broken".into());
            set(r, &["health", "timeout"], "20s".into());
        }
        "ingress" => set(r, &["values", "image", "tag"], "1.10.1".into()),
        _ => {}
    });
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "{out}{err}");
    let h = w.history("certs");
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!(h[2]["description"], "Rollback to 1");
    assert_eq!(w.revisions()["ingress"], 1);
    // Read back through helm 3's "Rollback to 1": nothing to do at sequence 1's state,
    // the failed sequence waits.
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(w.history("certs").len(), 3);
}

/// An installed version outside the target's upgradeFrom steps through a
/// previous entry whose range admits it, one hop per reconcile.
#[tokio::test]
async fn upgrade_from_steps_through_a_previous_entry() {
    let mut w = World::new("ag-step", &["wiki"]).await;
    let v2 = w.wiki_as("2.0.0");
    let next = testdata("charts-next/wiki");

    w.publish(|_, _| {});
    w.subscribe(|_| {}).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    w.patch_spec(serde_json::json!({"holds": ["wiki"]})).await;
    // Sequence 2 offers 1.1.0 (from any 1.x); the hold keeps 1.0.0.
    w.publish(|_, r| {
        r["chart"]["path"] = next.to_str().unwrap().into();
    });
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.revisions()["wiki"], 1);
    // Sequence 3 offers 2.0.0, only from 1.1.0 on; 1.1.0 stays in `previous`.
    w.publish(|_, r| {
        r["chart"]["path"] = v2.to_str().unwrap().into();
        r["upgradeFrom"] = ">=1.1.0, <3.0.0".into();
        // A major step: waived, this test is about upgradeFrom (tests/e2e_approve.rs).
        r["approval"] = "waived".into();
    });
    w.patch_spec(serde_json::json!({"holds": []})).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "one hop, not there yet: {out}{err}");
    let status = w.status().await;
    let wiki = release(&status, "wiki");
    assert_eq!(wiki["version"], "1.1.0", "{wiki}");
    assert_eq!(wiki["desiredVersion"], "2.0.0", "{wiki}");
    assert_eq!(condition(&status, "Ready").1, "Progressing");
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    let status = w.status().await;
    assert_eq!(release(&status, "wiki")["version"], "2.0.0");
    let h = w.history("wiki");
    let charts: Vec<&str> = h.iter().map(|e| e["chart"].as_str().unwrap()).collect();
    assert_eq!(charts, ["wiki-1.0.0", "wiki-1.1.0", "wiki-2.0.0"]);
}

/// A log line without terminal colour codes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A release that leaves the channel stays installed and is reported; a
/// younger subscription naming the same releases reports a conflict and
/// touches nothing.
#[tokio::test]
async fn orphans_are_left_installed_and_a_second_subscription_conflicts() {
    let mut w = World::new("ag-orphan", &["certs", "ingress"]).await;
    w.publish(|_, _| {});
    w.subscribe(|_| {}).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");

    // A second subscription to the same channel, created later.
    let mut second = w.subs().get("stack").await.unwrap();
    second.metadata = ObjectMeta {
        // Sorts after `stack` also if both were created within the same second.
        name: Some("zz-second".into()),
        ..Default::default()
    };
    second.status = None;
    w.subs()
        .create(&PostParams::default(), &second)
        .await
        .unwrap();
    let before = w.revisions();
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(w.revisions(), before);
    let sub = w.subs().get("zz-second").await.unwrap();
    let status = serde_json::to_value(sub.status.unwrap()).unwrap();
    for r in ["certs", "ingress"] {
        let rs = release(&status, r);
        assert_eq!(rs["state"], "conflict", "{rs}");
        assert!(
            rs["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{}/stack", w.ns.name)),
            "{rs}"
        );
    }
    w.subs()
        .delete("zz-second", &Default::default())
        .await
        .unwrap();

    // ingress leaves the channel: left installed, reported.
    let spec = w.spec("stable", |_, _| {});
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&spec).unwrap()).unwrap();
    doc["releases"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["name"] != "ingress");
    std::fs::write(&spec, serde_json::to_vec(&doc).unwrap()).unwrap();
    w.sequence += 1;
    let (site, sequence) = (w.site(), w.sequence);
    w.publish_to(&spec, &site, sequence);
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.revisions(), before, "nothing is uninstalled or upgraded");
    let status = w.status().await;
    let ingress = release(&status, "ingress");
    assert_eq!(ingress["state"], "orphaned", "{ingress}");
    assert!(
        ingress["message"]
            .as_str()
            .unwrap()
            .contains("no longer in channel"),
        "{ingress}"
    );
}

/// How long the controller may take for three polls on a busy machine.
const STEP: std::time::Duration = std::time::Duration::from_secs(90);

/// The helm binary behind a wrapper that notes each call's subcommand in a
/// file, then runs the real helm: how many helm processes the agent spawned.
struct CountedHelm {
    log: std::path::PathBuf,
}

impl CountedHelm {
    /// Puts the wrapper in `w`'s directory and makes it `w`'s helm.
    fn install(w: &mut World) -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        let log = w.dir.path().join("helm-calls");
        let wrapper = w.dir.path().join("counted-helm");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$1\" >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                w.helm.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        w.helm = wrapper;
        Self { log }
    }

    /// Every call so far, by subcommand.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The `resourceVersion` of the subscription and of every helm release
/// record of the world: any write changes one.
async fn written(w: &World) -> BTreeMap<String, String> {
    use k8s_openapi::api::core::v1::Secret;
    let mut out = BTreeMap::new();
    let sub = w.subs().get("stack").await.unwrap();
    out.insert(
        "subscription".to_owned(),
        sub.metadata.resource_version.unwrap(),
    );
    for ns in w.release_ns.values() {
        let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &ns.name);
        let params = kube::api::ListParams::default().labels("owner=helm");
        for s in secrets.list_metadata(&params).await.unwrap() {
            out.insert(
                format!("{}/{}", ns.name, s.metadata.name.unwrap()),
                s.metadata.resource_version.unwrap(),
            );
        }
    }
    out
}

/// An unchanged channel costs no helm process and no write: what is installed
/// is read from helm's release records, `helm version` is remembered in the
/// cache directory; checked for `--once` and for the controller's polls.
#[tokio::test]
async fn an_unchanged_channel_spawns_no_helm_and_writes_nothing() {
    let mut w = World::new("ag-noop", &STACK).await;
    let helm = CountedHelm::install(&mut w);
    w.publish(|_, _| {});
    w.subscribe(|s| s.interval = coxswain::duration::Duration::from_secs(2))
        .await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("5 release(s) installed"), "{out}");
    let installed = helm.calls();
    assert_eq!(
        installed.iter().filter(|c| *c == "upgrade").count(),
        5,
        "{installed:?}"
    );
    assert!(
        !installed.iter().any(|c| c == "list" || c == "history"),
        "installed state is read from helm's records, not from helm: {installed:?}"
    );

    // The first no-op check says "up to date" instead of "installed": one
    // status write, and still no helm process.
    let noop = || {
        let (code, out, err) = w.agent_once();
        assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
        assert!(
            out.contains("every release is at its desired state"),
            "{out}"
        );
    };
    let no_helm_since_install = |what: &str| {
        let calls = helm.calls();
        assert_eq!(
            calls[installed.len()..],
            [] as [String; 0],
            "{what} spawned helm"
        );
    };
    noop();
    no_helm_since_install("a no-op --once");
    let before = written(&w).await;
    noop();
    no_helm_since_install("a no-op --once");
    assert_eq!(written(&w).await, before, "a no-op --once wrote");

    // The controller: several polls of the unchanged channel.
    let agent = w.start_agent();
    let polls = |text: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("coxswain_index_fetches_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let http = reqwest::Client::new();
    support::cluster::wait_for("three polls of the controller", STEP, || async {
        let text = http
            .get(format!("{}/metrics", agent.url))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (polls(&text) >= 3.0).then_some(())
    })
    .await;
    no_helm_since_install("the controller's no-op polls");
    assert_eq!(
        written(&w).await,
        before,
        "the controller's no-op polls wrote"
    );
}
