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
//! The test cluster's pods run no containers, so the new version cannot be
//! shown taking the Lease here (docs/agent.md says so).
//!
//! Run with `cargo xtask e2e`.

mod support;

use serde_json::Value;
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
