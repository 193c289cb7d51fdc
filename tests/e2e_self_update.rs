//! Self-update through the channel, on the loopback cluster with the real
//! helm 4: a channel lists coxswain's own chart (`charts/coxswain`) as the
//! release `agent` beside `certs`, and `coxswain agent --once
//! --agent-release <ns>/agent` treats it as its own:
//!
//! 1. it is installed last, after certs (alphabetically and with concurrency
//!    1 it would go first);
//! 2. when certs fails in the same sequence, the agent's release is not
//!    attempted (helm keeps one revision) and the status says why;
//! 3. a new agent version whose pods crash-loop (the KWOK stage `crashloop`)
//!    fails its health check and is rolled back by the running agent;
//! 4. a good new version goes through.
//!
//! A second test runs the agent as a controller whose identity is its
//! release's pod, updates the agent's release to a good version, and plays
//! the kubelet the test cluster lacks: when the rollout deletes the old pod,
//! its process gets SIGTERM and exits, and a process with the new pod's
//! identity starts; the new one takes the Lease and finds the release
//! healthy at the new sequence without upgrading it again.
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;
use support::cluster::{pod_condition, wait_for};
use support::world::{World, release, set};

const AGENT: &str = "agent";

/// The stable spec with certs only, plus coxswain's own chart as `agent`
/// with image tag `tag`; `certs_tag` is certs' image tag.
fn spec(w: &World, sequence: u64, tag: &str, certs_tag: &str) -> std::path::PathBuf {
    let path = w.spec("stable", |name, r| {
        if name == "certs" {
            set(r, &["values", "image", "tag"], certs_tag.into());
            set(r, &["health", "timeout"], "20s".into());
        }
    });
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let chart = support::repo().join("charts/coxswain");
    doc["releases"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": AGENT,
            "namespace": w.rns(AGENT),
            "chart": {"path": chart.to_str().unwrap()},
            // One pod; no cluster-scoped objects, so nothing collides with other tests.
            "values": {"image": {"tag": tag}, "replicaCount": 1, "rbac": {"create": false}},
            "health": {"timeout": "20s"}
        }));
    let out = w.dir.path().join(format!("self-{sequence}.json"));
    std::fs::write(&out, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    out
}

fn publish(w: &mut World, tag: &str, certs_tag: &str) {
    w.sequence += 1;
    let path = spec(w, w.sequence, tag, certs_tag);
    let site = w.site();
    let sequence = w.sequence;
    w.publish_to(&path, &site, sequence);
}

fn once(w: &World) -> (i32, String, String) {
    let me = format!("{}/{AGENT}", w.rns(AGENT));
    w.agent_once_with(&["--agent-release", &me])
}

#[tokio::test]
async fn the_agents_own_release_goes_last_waits_for_the_others_and_is_rolled_back_when_broken() {
    let mut w = World::new("self", &["certs", AGENT]).await;
    w.subscribe(|s| s.concurrency = 1).await;

    // 1. Installed last.
    publish(&mut w, "0.1.0", "1.14.0");
    let (code, out, err) = once(&w);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let status = w.status().await;
    let order: Vec<&str> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["release"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["certs", AGENT], "{status:#}");
    assert_eq!(w.history(AGENT).len(), 1);

    // 2. certs fails in the same sequence: the agent's release is not attempted.
    publish(&mut w, "0.2.0", "crashloop");
    let (code, _, _) = once(&w);
    assert_ne!(code, 0, "certs failed");
    assert_eq!(
        w.history(AGENT).len(),
        1,
        "the agent's release was not touched"
    );
    let status = w.status().await;
    let agent = release(&status, AGENT);
    assert!(
        agent["message"]
            .as_str()
            .unwrap_or("")
            .contains("updated only when every other release of the run is healthy"),
        "{status:#}"
    );

    // 3. A new agent that crash-loops is rolled back by the running agent.
    publish(&mut w, "crashloop", "1.14.0");
    let (code, out, err) = once(&w);
    assert_ne!(code, 0, "stdout: {out}\nstderr: {err}");
    let history = w.history(AGENT);
    let last = history.last().unwrap();
    assert_eq!(last["status"], "deployed", "{history:#?}");
    assert!(
        last["description"]
            .as_str()
            .unwrap_or("")
            .contains("Rollback to 1"),
        "{history:#?}"
    );
    let status = w.status().await;
    assert!(
        status["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["release"] == AGENT
                && op["operation"] == "rollback"
                && op["result"] == "succeeded"),
        "{status:#}"
    );

    // 4. A good new version goes through.
    publish(&mut w, "0.2.0", "1.14.0");
    let (code, out, err) = once(&w);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let history = w.history(AGENT);
    assert_eq!(history.last().unwrap()["status"], "deployed");
    assert_eq!(release(&w.status().await, AGENT)["state"], "upToDate");
}

/// The agent release's pods that are not being deleted: (name, image tag, Ready).
async fn agent_pods(w: &World) -> Vec<(String, String, bool)> {
    let pods: Api<Pod> = Api::namespaced(w.client.clone(), w.rns(AGENT));
    pods.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let image = p.spec.as_ref().unwrap().containers[0].image.clone();
            let tag = image
                .unwrap_or_default()
                .rsplit(':')
                .next()
                .unwrap()
                .to_owned();
            let ready = pod_condition(&p, "Ready").as_deref() == Some("True");
            (p.metadata.name.unwrap(), tag, ready)
        })
        .collect()
}

/// The Lease's holder in the subscription's namespace.
async fn lease_holder(w: &World) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(w.client.clone(), &w.ns.name);
    leases
        .get_opt("coxswain-agent")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test]
async fn a_new_agent_version_takes_the_lease_from_the_old_one() {
    const WAIT: Duration = Duration::from_secs(90);
    let mut w = World::new("self-lease", &["certs", AGENT]).await;
    w.subscribe(|s| s.interval = coxswain::duration::Duration::from_secs(5))
        .await;
    publish(&mut w, "0.1.0", "1.14.0");
    let (code, out, err) = once(&w);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let old = wait_for("the agent's pod is Ready", WAIT, || async {
        let pods = agent_pods(&w).await;
        match pods.as_slice() {
            [(name, _, true)] => Some(name.clone()),
            _ => None,
        }
    })
    .await;

    // The old version runs as the leader, with its pod's identity.
    let me = format!("{}/{AGENT}", w.rns(AGENT));
    let lease_args = ["--lease-duration", "6s", "--agent-release", me.as_str()];
    let mut old_agent = w.start_agent_with(&lease_args, &[("POD_NAME", old.as_str())]);
    wait_for("the old pod's agent leads", WAIT, || async {
        (lease_holder(&w).await.as_deref() == Some(old.as_str())).then_some(())
    })
    .await;
    let revisions = w.history(AGENT).len();

    // A good new version: the rollout makes a new pod Ready, then deletes the old one.
    publish(&mut w, "0.2.0", "1.14.0");
    let new = wait_for("the rollout replaced the old pod", WAIT, || async {
        let pods = agent_pods(&w).await;
        match pods.as_slice() {
            [(name, tag, true)] if *name != old && tag == "0.2.0" => Some(name.clone()),
            _ => None,
        }
    })
    .await;
    // The kubelet would now stop the old pod's process: SIGTERM, graceful exit.
    assert!(
        old_agent.stop(),
        "the old agent exits 0 on SIGTERM:\n{}",
        old_agent.logs()
    );

    // The new pod's process takes the Lease and finds its release healthy.
    let new_agent = w.start_agent_with(&lease_args, &[("POD_NAME", new.as_str())]);
    wait_for("the new pod's agent takes the Lease", WAIT, || async {
        (lease_holder(&w).await.as_deref() == Some(new.as_str())).then_some(())
    })
    .await;
    let status = wait_for("the new agent reports sequence 2 applied", WAIT, || async {
        let status = w.status().await;
        let agent = status["releases"]
            .as_array()?
            .iter()
            .find(|r| r["name"] == AGENT)?
            .clone();
        (status["acceptedSequence"] == w.sequence && agent["state"] == "upToDate").then_some(status)
    })
    .await;
    let history = w.history(AGENT);
    assert_eq!(
        history.len(),
        revisions + 1,
        "one upgrade, not repeated by the new leader: {history:#?}\n{status:#}\nold agent:\n{}\nnew agent:\n{}",
        old_agent.logs(),
        new_agent.logs()
    );
    assert_eq!(history.last().unwrap()["status"], "deployed");
}
