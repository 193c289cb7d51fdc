//! End-to-end: kube-apiserver stops for 30 s in the middle of an upgrade and
//! starts again; the outage is longer than the subscription's health timeout
//! (15 s), so a health check runs out while nothing can be read — which is no
//! evidence against the new revision: it must not be rolled back, nor the
//! sequence failed. The agent (a controller process) must not crash, and soon
//! after the API is back no release may be `pending-*`, every release must be
//! at the new sequence, no write-ahead intent may be left, and what was
//! repaired must show in the status history and the Events.
//!
//! Stopping the API server would break every other test running against the
//! shared cluster, so this test starts a cluster of its own (`xtask cluster up
//! --name outage-<random>`) and takes it down at the end, also when it fails.
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;
use support::cluster::{OwnCluster, start_component, stop_component};
use support::world::{Agent, World, release, set};

/// The releases of the test (three dependency layers, so the outage falls
/// into a run that still has work after it).
const RELEASES: [&str; 3] = ["certs", "ingress", "sso"];

/// How long the API server stays down, counted from the stop.
const OUTAGE: Duration = Duration::from_secs(30);

/// The subscription's health timeout: shorter than the outage.
const HEALTH_TIMEOUT: &str = "15s";

/// How long after the API server is back everything must have converged.
const RECOVERY: Duration = Duration::from_secs(120);

/// The latest revision helm's storage holds for `release` (from the labels
/// of its release Secrets): (revision, status). `None` while unreadable.
async fn latest_revision(w: &World, release: &str) -> Option<(u64, String)> {
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), w.rns(release));
    let list = secrets
        .list(&ListParams::default().labels(&format!("owner=helm,name={release}")))
        .await
        .ok()?;
    list.items
        .iter()
        .filter_map(|s| {
            let labels = s.metadata.labels.as_ref()?;
            Some((
                labels.get("version")?.parse::<u64>().ok()?,
                labels.get("status")?.clone(),
            ))
        })
        .max_by_key(|(version, _)| *version)
}

/// The subscription's status, or `None` while the API does not answer.
async fn status_opt(w: &World) -> Option<Value> {
    let sub = w.subs().get_opt("stack").await.ok()??;
    serde_json::to_value(sub.status.unwrap_or_default()).ok()
}

/// Why the releases are not converged at `sequence` yet, or `None` when they are.
async fn not_converged(w: &World, sequence: u64) -> Option<String> {
    let Some(status) = status_opt(w).await else {
        return Some("the status cannot be read".to_owned());
    };
    if status["acceptedSequence"] != sequence {
        return Some(format!(
            "acceptedSequence is {}",
            status["acceptedSequence"]
        ));
    }
    if let Some(in_flight) = status.get("inFlight") {
        return Some(format!("intents in flight: {in_flight}"));
    }
    for r in RELEASES {
        match latest_revision(w, r).await {
            Some((_, state)) if state == "deployed" => {}
            Some((revision, state)) => return Some(format!("{r} revision {revision} is {state}")),
            None => return Some(format!("helm's storage of {r} cannot be read")),
        }
        let state = status["releases"]
            .as_array()
            .and_then(|rs| rs.iter().find(|x| x["name"] == r))
            .map(|x| x["state"].clone());
        if state != Some("upToDate".into()) {
            return Some(format!("{r} is reported {state:?}"));
        }
        let history = w.history(r);
        let description = history.last().unwrap()["description"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if !description.starts_with(&format!("coxswain stable#{sequence} ")) {
            return Some(format!("{r} is described {description:?}"));
        }
    }
    None
}

/// The fake nodes' Ready conditions and the pods of the releases that are not
/// Ready: what the cluster itself looks like after the outage.
async fn cluster_health(w: &World) -> String {
    use k8s_openapi::api::core::v1::Node;
    let mut out = Vec::new();
    if let Ok(nodes) = Api::<Node>::all(w.client.clone())
        .list(&ListParams::default())
        .await
    {
        for n in nodes.items {
            let ready = n
                .status
                .and_then(|s| s.conditions)
                .and_then(|c| c.into_iter().find(|c| c.type_ == "Ready"))
                .map(|c| c.status);
            out.push(format!("node {:?} Ready={ready:?}", n.metadata.name));
        }
    }
    for r in RELEASES {
        for p in support::cluster::pods(&w.client, w.rns(r), "").await {
            let ready = support::cluster::pod_condition(&p, "Ready");
            if ready.as_deref() != Some("True") {
                out.push(format!("{r}: pod {:?} Ready={ready:?}", p.metadata.name));
            }
        }
    }
    out.join("\n")
}

/// Fails the test with the agent's log when the agent process has exited.
fn assert_alive(agent: &mut Agent, when: &str) {
    if let Some(exit) = agent.exited() {
        panic!(
            "the agent exited ({exit}) {when}; its log:\n{}",
            agent.logs()
        );
    }
}

#[tokio::test]
async fn apiserver_outage_during_an_upgrade() {
    let _cluster = OwnCluster::up("outage");
    let mut w = World::new("outage", &RELEASES).await;
    w.publish(|_, _| {});
    w.subscribe(|s| s.health_timeout = HEALTH_TIMEOUT.parse().unwrap())
        .await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "the first install did not converge:\n{out}\n{err}");
    let installed = w.revisions();

    // A sequence that changes every release; the controller (default 5m
    // interval) starts on it at once.
    let sequence = w.publish(|_, r| set(r, &["values", "round"], 1.into()));
    let mut agent = w.start_agent();
    let run_started = Instant::now();

    // Stop the API server as soon as certs' new revision is in helm's storage:
    // helm is applying it, or the agent is checking its health.
    let (revision, state) = loop {
        if let Some((revision, state)) = latest_revision(&w, "certs").await
            && revision > installed["certs"]
        {
            break (revision, state);
        }
        assert!(
            run_started.elapsed() < Duration::from_secs(60),
            "the agent did not upgrade certs within 60s; its log:\n{}",
            agent.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stopped = Instant::now();
    eprintln!(
        "certs revision {revision} is {state} {:.1}s into the run: stopping kube-apiserver",
        run_started.elapsed().as_secs_f64()
    );
    stop_component("kube-apiserver");
    eprintln!(
        "kube-apiserver stopped in {:.1}s",
        stopped.elapsed().as_secs_f64()
    );
    while stopped.elapsed() < OUTAGE {
        assert_alive(&mut agent, "while the API server was down");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    start_component("kube-apiserver");
    let back = Instant::now();
    eprintln!(
        "kube-apiserver back after {:.1}s",
        stopped.elapsed().as_secs_f64()
    );

    // What helm's storage says right after the API returned (the agent may
    // already be repairing; what is pending here must be repaired).
    let mut pending = Vec::new();
    for r in RELEASES {
        let latest = latest_revision(&w, r).await;
        eprintln!("after the outage: {r} {latest:?}");
        if let Some((revision, state)) = latest
            && state.starts_with("pending-")
        {
            pending.push((r, revision, state));
        }
    }

    let converged_after = loop {
        assert_alive(&mut agent, "after the API server came back");
        let why = match not_converged(&w, sequence).await {
            None => break back.elapsed(),
            Some(reason) => reason,
        };
        assert!(
            back.elapsed() < RECOVERY,
            "not converged to sequence {sequence} within {}s after the API server came back \
             (last: {why}); the cluster:\n{}\nstatus:\n{:#}\nthe agent's log:\n{}",
            RECOVERY.as_secs(),
            cluster_health(&w).await,
            status_opt(&w).await.unwrap_or_default(),
            agent.logs()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    eprintln!(
        "converged {:.1}s after the API server came back",
        converged_after.as_secs_f64()
    );

    let status = w.status().await;
    let history = status["history"].as_array().cloned().unwrap_or_default();
    for op in &history {
        eprintln!(
            "history: {} {} {} {} -> {}: {}",
            op["release"],
            op["operation"],
            op["result"],
            op["fromRevision"],
            op["toRevision"],
            op["message"]
        );
    }
    // An outage says nothing against a revision: nothing was rolled back.
    assert!(
        !history.iter().any(|op| op["operation"] == "rollback"),
        "a release was rolled back because of the outage: {status:#}"
    );
    // Nothing pending anywhere in any release's history.
    for r in RELEASES {
        for entry in w.history(r) {
            assert!(
                !entry["status"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("pending-"),
                "{r} revision {} is still {}",
                entry["revision"],
                entry["status"]
            );
        }
        assert_eq!(release(&status, r)["state"], "upToDate", "{status:#}");
    }
    // What was stranded was repaired, and says so.
    let events = w.events().await;
    for (reason, note) in &events {
        eprintln!("event: {reason}: {note}");
    }
    for (r, revision, state) in &pending {
        assert!(
            history.iter().any(|op| op["operation"] == "repair"
                && op["release"] == *r
                && op["result"] == "succeeded"),
            "{r} revision {revision} was {state} after the outage but no repair is in the history: {status:#}"
        );
        assert!(
            events
                .iter()
                .any(|(reason, note)| reason == "Repaired" && note.contains(r)),
            "no Repaired Event for {r}: {events:#?}"
        );
    }

    // The controller still watches: a spec change is reconciled at once.
    w.patch_spec(serde_json::json!({"interval": "4m"})).await;
    let generation = w.subs().get("stack").await.unwrap().metadata.generation;
    let watched = Instant::now();
    loop {
        let seen = status_opt(&w)
            .await
            .map(|s| s["observedGeneration"].clone());
        if seen == Some(generation.into()) {
            break;
        }
        assert!(
            watched.elapsed() < Duration::from_secs(30),
            "the controller did not reconcile a spec change (generation {generation:?}) \
             within 30s after the outage; its log:\n{}",
            agent.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let logs = agent.logs();
    // What the agent said about the outage and the recovery.
    for line in logs.lines().filter(|l| {
        l.contains("reconcile failed") || l.contains("\"repair") || l.contains("forgot an")
    }) {
        eprintln!("agent: {line}");
    }
    let failed_reconciles = logs.matches("reconcile failed").count();
    eprintln!(
        "the agent logged {failed_reconciles} failed reconciles; pending after the outage: {pending:?}"
    );
    assert!(agent.stop(), "the agent did not exit 0 on SIGTERM:\n{logs}");
}
