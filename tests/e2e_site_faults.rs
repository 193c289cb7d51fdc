//! End-to-end tests of `coxswain agent` against a misbehaving update site:
//! the real `coxswain serve` behind a fault-injecting proxy
//! (`support/proxy.rs`) that answers 500, truncates the index, serves a new
//! index with the old signature (a publish caught half-way), cuts a chart
//! download mid-way or trickles bytes; and a chart cache that cannot be
//! written. For each fault: nothing is applied (helm revisions and the
//! reported releases unchanged), `status.lastCheck` says why and names the
//! document, and once the fault is gone the next check applies the sequence.
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use coxswain::site::{Limits, Site, SitePath};
use serde_json::Value;
use support::proxy::{Fault, FaultProxy};
use support::world::{World, condition, set};

/// Two dependency layers: `ingress` depends on `certs`.
const RELEASES: [&str; 2] = ["certs", "ingress"];
const INDEX: &str = "channels/stable/index.json";
const SIGNATURES: &str = "channels/stable/index.json.sig";

/// A world whose subscription reads the site through a fault proxy, with
/// sequence 1 installed.
async fn world(prefix: &str) -> (World, FaultProxy) {
    let mut w = World::new(prefix, &RELEASES).await;
    w.publish(|_, _| {});
    let proxy = FaultProxy::start(&w.server.url);
    let url = proxy.url.clone();
    w.subscribe(|s| s.server = url).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(
        code, 0,
        "the first install failed\nstdout: {out}\nstderr: {err}"
    );
    (w, proxy)
}

/// Publishes the next sequence, changing every release's values.
fn publish_round(w: &mut World, round: u64) -> u64 {
    w.publish(|_, r| set(r, &["values", "round"], round.into()))
}

/// Per release: the latest helm revision, its status and description.
fn cluster(w: &World) -> BTreeMap<String, (u64, String, String)> {
    RELEASES
        .iter()
        .map(|r| {
            let h = w.history(r);
            let last = h.last().unwrap();
            (
                r.to_string(),
                (
                    last["revision"].as_u64().unwrap(),
                    last["status"].as_str().unwrap().to_owned(),
                    last["description"].as_str().unwrap_or("").to_owned(),
                ),
            )
        })
        .collect()
}

/// Runs `--once` (with `extra` flags) while the site is broken: it must exit
/// 1, change no release, keep the reported releases, and say `result` in
/// `lastCheck` with every one of `needles` in the message. Returns the status.
async fn refused(w: &World, extra: &[&str], result: &str, needles: &[&str]) -> Value {
    let before = cluster(w);
    let reported_before = w.status().await["releases"].clone();
    let started = Instant::now();
    let (code, out, err) = w.agent_once_with(extra);
    let took = started.elapsed();
    assert_eq!(
        code, 1,
        "a broken site must fail the check\nstdout: {out}\nstderr: {err}"
    );
    assert_eq!(
        cluster(w),
        before,
        "nothing may be applied while the site is broken\nstderr: {err}"
    );
    let status = w.status().await;
    assert_eq!(
        status["releases"], reported_before,
        "the reported releases keep their last state"
    );
    let last = &status["lastCheck"];
    assert_eq!(last["result"], result, "lastCheck: {last:#}");
    let message = last["message"].as_str().unwrap();
    for needle in needles {
        assert!(
            message.contains(needle),
            "lastCheck.message lacks {needle:?}: {message}"
        );
    }
    eprintln!("refused in {took:?} ({result}): {message}");
    status
}

/// Runs `--once` (with `extra` flags) once the fault is gone: it must apply
/// `sequence` to every release.
async fn recovers(w: &World, extra: &[&str], sequence: u64) {
    let (code, out, err) = w.agent_once_with(extra);
    assert_eq!(
        code, 0,
        "the agent did not recover\nstdout: {out}\nstderr: {err}"
    );
    for (release, (_, state, description)) in cluster(w) {
        assert_eq!(state, "deployed", "{release}: {description}");
        assert!(
            description.starts_with(&format!("coxswain stable#{sequence} ")),
            "{release} is not at sequence {sequence}: {description}"
        );
    }
    let status = w.status().await;
    assert_eq!(status["acceptedSequence"], sequence, "{status:#}");
    assert_eq!(status["lastCheck"]["result"], "applied", "{status:#}");
    assert_eq!(condition(&status, "Verified").0, "True", "{status:#}");
}

/// The site path of `release`'s chart in the served index.
fn chart_path(w: &World, release: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(w.site().join(INDEX)).unwrap()).unwrap();
    let entry = index["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == release)
        .unwrap_or_else(|| panic!("no {release} in the index"));
    let site = Site::http(&w.server.url, Limits::default()).unwrap();
    site.resolve(
        &SitePath::index("stable").unwrap(),
        entry["chart"]["url"].as_str().unwrap(),
    )
    .unwrap()
    .as_str()
    .to_owned()
}

/// 500, a truncated index and a trickling server: each refused, each healed
/// by the next run.
#[tokio::test]
async fn index_faults_apply_nothing_and_heal() {
    let (mut w, proxy) = world("sitefault-index").await;

    // The server fails: retried, then unreachable.
    let sequence = publish_round(&mut w, 1);
    proxy.set(INDEX, Fault::Status(500));
    refused(&w, &[], "unreachable", &[INDEX, "HTTP status 500"]).await;
    assert!(
        proxy.hits(INDEX) >= 2,
        "a 5xx is retried ({} requests)",
        proxy.hits(INDEX)
    );
    proxy.clear(INDEX);
    recovers(&w, &[], sequence).await;

    // Half an index, as a complete answer: its signature does not match.
    let sequence = publish_round(&mut w, 2);
    proxy.set(INDEX, Fault::Truncate);
    let status = refused(
        &w,
        &[],
        "verificationFailed",
        &[INDEX, "valid signature(s)"],
    )
    .await;
    assert_eq!(condition(&status, "Verified").0, "False", "{status:#}");
    proxy.clear(INDEX);
    recovers(&w, &[], sequence).await;

    // One byte per 200 ms: the agent's time bound ends each attempt.
    let timeout = ["--http-timeout", "2s"];
    let sequence = publish_round(&mut w, 3);
    proxy.set(INDEX, Fault::Trickle(Duration::from_millis(200)));
    let started = Instant::now();
    refused(&w, &timeout, "unreachable", &[INDEX, "timed out after 2s"]).await;
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the trickle held the agent for {:?}",
        started.elapsed()
    );
    proxy.clear(INDEX);
    recovers(&w, &timeout, sequence).await;
}

/// A new index served with the old signature, as a reader sees a publish
/// caught half-way: read once more, refused, then applied once the publish
/// is complete.
#[tokio::test]
async fn a_publish_caught_half_way_is_refused_then_applied() {
    let (mut w, proxy) = world("sitefault-half").await;
    let (sequence, staged) = w.publish_staged(|_, r| set(r, &["values", "round"], 1.into()));
    proxy.set(
        INDEX,
        Fault::Replace(std::fs::read(staged.join(INDEX)).unwrap()),
    );
    let before = proxy.hits(INDEX);
    refused(
        &w,
        &[],
        "verificationFailed",
        &[INDEX, "valid signature(s)"],
    )
    .await;
    assert_eq!(
        proxy.hits(INDEX) - before,
        2,
        "the index is read once more before it is refused"
    );
    // The publish completes.
    support::copy_tree(&staged, &w.site());
    proxy.clear(INDEX);
    recovers(&w, &[], sequence).await;
}

/// A chart download cut mid-way, and a chart cache that cannot be written:
/// the first layer is not upgraded either (charts are all fetched before
/// the first change), and the next run applies the sequence.
#[tokio::test]
async fn chart_faults_apply_nothing_and_heal() {
    let (mut w, proxy) = world("sitefault-chart").await;
    let charts = w.cache_dir().join("charts");

    // The second layer's chart breaks off half-way (the cache is emptied so
    // it must be downloaded again).
    let sequence = publish_round(&mut w, 1);
    std::fs::remove_dir_all(&charts).unwrap();
    let ingress_chart = chart_path(&w, "ingress");
    proxy.set(&ingress_chart, Fault::Cut);
    refused(
        &w,
        &[],
        "unreachable",
        &["chart ingress ", &ingress_chart, "transfer failed"],
    )
    .await;
    proxy.clear(&ingress_chart);
    recovers(&w, &[], sequence).await;

    // The cache cannot be written (here: a regular file where its directory
    // goes; a full disk reads the same, with the OS's "No space left on
    // device"): an error of this agent, not a verification failure.
    let sequence = publish_round(&mut w, 2);
    std::fs::remove_dir_all(&charts).unwrap();
    std::fs::write(&charts, b"in the way").unwrap();
    let cache = format!("cannot write to the chart cache {}: ", charts.display());
    let status = refused(&w, &[], "error", &[&cache, "os error"]).await;
    assert_eq!(
        condition(&status, "Verified").0,
        "True",
        "a local write error is no verification failure: {status:#}"
    );
    std::fs::remove_file(&charts).unwrap();
    recovers(&w, &[], sequence).await;
    let left: Vec<_> = std::fs::read_dir(&charts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temp files left in the cache: {left:?}");
}

/// The controller, left alone: while the site answers 500 it reports
/// `unreachable` and changes nothing; once the site is back it applies the
/// sequence at its next interval, without anyone touching it.
#[tokio::test]
async fn the_controller_heals_by_itself() {
    let (mut w, proxy) = world("sitefault-ctl").await;
    w.patch_spec(serde_json::json!({"interval": "3s"})).await;
    let before = cluster(&w);
    let sequence = publish_round(&mut w, 1);
    proxy.set(INDEX, Fault::Status(500));
    proxy.set(SIGNATURES, Fault::Status(500));
    let mut agent = w.start_agent();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = w.status().await;
        if status["lastCheck"]["result"] == "unreachable" {
            assert!(
                status["lastCheck"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("HTTP status 500"),
                "{status:#}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the controller never reported the site unreachable: {status:#}\n{}",
            agent.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(cluster(&w), before, "nothing applied while the site fails");

    proxy.clear(INDEX);
    proxy.clear(SIGNATURES);
    let healed = Instant::now();
    let deadline = healed + Duration::from_secs(60);
    loop {
        let status = w.status().await;
        let done = status["acceptedSequence"] == sequence
            && (status["lastCheck"]["result"] == "applied"
                || status["lastCheck"]["result"] == "upToDate")
            && cluster(&w).values().all(|(_, state, description)| {
                state == "deployed"
                    && description.starts_with(&format!("coxswain stable#{sequence} "))
            });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the controller did not apply sequence {sequence} once the site was back: {status:#}\n{}",
            agent.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "the controller applied sequence {sequence} {:?} after the site came back",
        healed.elapsed()
    );
    assert!(agent.stop(), "the controller exits 0 on SIGTERM");
}
