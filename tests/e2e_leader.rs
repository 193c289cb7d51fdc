//! End-to-end test of leader election: two `coxswain agent` controllers serve
//! one namespace on the loopback cluster; exactly one acts, the other follows
//! and says who leads, and takes over when the leader is killed with SIGKILL.
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::world::{Agent, World, set};

/// The Lease's duration: short, so the takeover is quick.
const LEASE: Duration = Duration::from_secs(6);

/// The subscription's interval.
const INTERVAL: Duration = Duration::from_secs(5);

/// How long any single wait of this test may take.
const WAIT: Duration = Duration::from_secs(60);

/// `GET url` as JSON, or `None` while the agent does not answer.
async fn json(url: &str) -> Option<Value> {
    serde_json::from_str(&text(url).await?).ok()
}

/// `GET url` as text (any status).
async fn text(url: &str) -> Option<String> {
    reqwest::get(url).await.ok()?.text().await.ok()
}

/// The `leader` object of an agent's `/api/v1/status`.
async fn leader_of(agent: &Agent) -> Option<Value> {
    Some(json(&format!("{}/api/v1/status", agent.url)).await?["leader"].clone())
}

/// Polls `probe` every 250 ms until it returns `Some`, at most `limit`.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {}s",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the subscription's status accepted `sequence` and is Ready.
async fn wait_applied(w: &World, sequence: u64) -> Value {
    let subs = w.subs();
    wait_for(&format!("sequence {sequence} applied"), WAIT, || {
        let subs = subs.clone();
        async move {
            let status = serde_json::to_value(subs.get("stack").await.ok()?.status?).ok()?;
            let ready = status["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            (status["acceptedSequence"] == sequence && ready).then_some(status)
        }
    })
    .await
}

/// `coxswain_leader` as an agent's `/metrics` says it.
async fn leader_metric(agent: &Agent) -> Option<String> {
    let body = text(&format!("{}/metrics", agent.url)).await?;
    body.lines()
        .find_map(|l| l.strip_prefix("coxswain_leader "))
        .map(str::to_owned)
}

fn no_helm_conflict(name: &str, agent: &Agent) {
    let logs = agent.logs();
    assert!(
        !logs.contains("another operation is in progress"),
        "{name} saw a concurrent helm operation:\n{logs}"
    );
}

#[tokio::test]
async fn two_replicas_one_acts_and_the_follower_takes_over() {
    let mut w = World::new("ld", &["certs", "ingress"]).await;
    w.publish(|_, _| {});
    w.subscribe(|s| s.interval = coxswain::duration::Duration::from_secs(INTERVAL.as_secs()))
        .await;
    let lease = format!("{}s", LEASE.as_secs());
    let args = ["--lease-duration", lease.as_str()];
    let mut agents = [
        (
            "agent-a",
            w.start_agent_with(&args, &[("POD_NAME", "agent-a")]),
        ),
        (
            "agent-b",
            w.start_agent_with(&args, &[("POD_NAME", "agent-b")]),
        ),
    ];

    // One of them leads; both say which.
    let holder = wait_for("one replica leads and both agree", WAIT, || {
        let agents = &agents;
        async move {
            let a = leader_of(&agents[0].1).await?;
            let b = leader_of(&agents[1].1).await?;
            let holder = a["holder"].as_str()?.to_owned();
            (b["holder"] == holder.as_str()
                && a["leading"] != b["leading"]
                && a["election"] == true
                && b["election"] == true)
                .then_some(holder)
        }
    })
    .await;
    let (lead, follow) = if holder == agents[0].0 {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(agents[lead].0, holder);

    // Sequence 1: each release installed once.
    wait_applied(&w, 1).await;
    let revisions = w.revisions();
    assert_eq!(revisions["certs"], 1, "{revisions:?}");
    assert_eq!(revisions["ingress"], 1, "{revisions:?}");

    // The follower serves the status the leader wrote, and names the leader.
    let follower = &agents[follow].1;
    let doc = wait_for("the follower shows sequence 1", WAIT, || async {
        let doc = json(&format!("{}/api/v1/status", follower.url)).await?;
        (doc["subscriptions"][0]["acceptedSequence"] == 1).then_some(doc)
    })
    .await;
    assert_eq!(doc["leader"]["leading"], false, "{doc}");
    assert_eq!(doc["leader"]["holder"], holder.as_str(), "{doc}");
    let ready = text(&format!("{}/readyz", follower.url)).await.unwrap();
    assert!(
        ready.contains(&format!(
            "follower ({}); leader is {holder}",
            agents[follow].0
        )),
        "{ready}"
    );
    let page = text(&format!("{}/", follower.url)).await.unwrap();
    assert!(page.contains("follower"), "{page}");
    assert!(page.contains(&holder), "{page}");
    assert_eq!(leader_metric(follower).await.as_deref(), Some("0"));
    assert_eq!(leader_metric(&agents[lead].1).await.as_deref(), Some("1"));

    // Sequence 2 changes both releases: one upgrade each, whoever looks.
    let seq = w.publish(|name, r| match name {
        "certs" => set(r, &["values", "logLevel"], 3.into()),
        "ingress" => set(r, &["values", "image", "tag"], "1.10.1".into()),
        _ => {}
    });
    assert_eq!(seq, 2);
    wait_applied(&w, 2).await;
    // Two more intervals: nobody upgrades again.
    tokio::time::sleep(INTERVAL * 2).await;
    let revisions = w.revisions();
    assert_eq!(revisions["certs"], 2, "{revisions:?}");
    assert_eq!(revisions["ingress"], 2, "{revisions:?}");
    for (name, agent) in &agents {
        no_helm_conflict(name, agent);
    }
    assert!(
        !agents[follow].1.logs().contains("\"helm call\""),
        "the follower ran helm:\n{}",
        agents[follow].1.logs()
    );

    // The leader dies without releasing the Lease; the follower takes over
    // within the Lease's duration and applies the next sequence.
    agents[lead].1.kill();
    let killed = Instant::now();
    let seq = w.publish(|name, r| match name {
        "certs" => set(r, &["values", "logLevel"], 4.into()),
        "ingress" => set(r, &["values", "image", "tag"], "1.10.2".into()),
        _ => {}
    });
    assert_eq!(seq, 3);
    let survivor = &agents[follow];
    wait_for("the follower leads", WAIT, || async {
        let l = leader_of(&survivor.1).await?;
        (l["leading"] == true && l["holder"] == survivor.0).then_some(())
    })
    .await;
    let took_over = killed.elapsed();
    wait_applied(&w, 3).await;
    let applied = killed.elapsed();
    eprintln!(
        "takeover {:.1}s, sequence 3 applied {:.1}s after the leader was killed",
        took_over.as_secs_f64(),
        applied.as_secs_f64()
    );
    // Up to a Lease duration after the last renewal, 1 s of back-off and a
    // fifth of the duration to read the Lease.
    assert!(
        took_over < LEASE + Duration::from_secs(3),
        "takeover took {took_over:?}"
    );
    // The new leader checks at once; the upgrades themselves take a few seconds.
    assert!(
        applied < LEASE + INTERVAL + Duration::from_secs(15),
        "sequence 3 applied {applied:?} after the kill"
    );
    let revisions = w.revisions();
    assert_eq!(revisions["certs"], 3, "{revisions:?}");
    assert_eq!(revisions["ingress"], 3, "{revisions:?}");
    assert_eq!(leader_metric(&survivor.1).await.as_deref(), Some("1"));
    let page = text(&format!("{}/", survivor.1.url)).await.unwrap();
    assert!(page.contains("is the <strong>leader</strong>"), "{page}");
    no_helm_conflict(survivor.0, &survivor.1);
    let logs = survivor.1.logs();
    assert!(logs.contains("this replica leads"), "{logs}");

    // SIGTERM: the leader releases the Lease on its way out, and a third
    // replica takes it at once, without waiting for it to expire.
    let third = w.start_agent_with(&args, &[("POD_NAME", "agent-c")]);
    wait_for("the third replica follows", WAIT, || async {
        let l = leader_of(&third).await?;
        (l["leading"] == false && l["holder"] == survivor.0).then_some(())
    })
    .await;
    let stopped = Instant::now();
    assert!(agents[follow].1.stop(), "the agent exits 0 after SIGTERM");
    let released = stopped.elapsed();
    wait_for("the third replica leads", WAIT, || async {
        let l = leader_of(&third).await?;
        (l["leading"] == true && l["holder"] == "agent-c").then_some(())
    })
    .await;
    let handed_over = stopped.elapsed();
    eprintln!(
        "SIGTERM: exited after {:.1}s, the third replica leads {:.1}s after the signal",
        released.as_secs_f64(),
        handed_over.as_secs_f64()
    );
    // Released, not expired: the next read of the Lease (a fifth of its
    // duration) finds it free.
    assert!(
        handed_over < Duration::from_secs(4),
        "hand-over took {handed_over:?}"
    );
    no_helm_conflict("agent-c", &third);
}
