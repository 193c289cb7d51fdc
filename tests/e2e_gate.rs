//! `coxswain gate` and `promote --require-gate` end to end, on the loopback
//! cluster with the real helm 4: a published channel (certs, wiki with its
//! `helm test` Job) is gated on the cluster, the signed gate record lets it be
//! promoted; a second sequence whose wiki test fails (and whose channel does
//! not ask the agent to run it) fails the gate in `helm test`, gets a failed
//! record, and is not promoted, nor with the older record; it is withdrawn, and
//! the cluster goes back to the first sequence's releases and shows the reason.
//!
//! Run with `cargo xtask e2e`.

mod support;

use serde_json::Value;
use support::cluster::{helm4, kubeconfig_path};
use support::world::{World, run, set};
use support::{test_key_file, testdata};

fn gate(w: &World, out: &std::path::Path, key: &std::path::Path) -> (i32, String, String) {
    let trust = w.dir.path().join("trust.json");
    run(&[
        "gate",
        "--site",
        &w.server.url,
        "--channel",
        "stable",
        "--trust",
        trust.to_str().unwrap(),
        "--kubeconfig",
        kubeconfig_path().to_str().unwrap(),
        "--namespace",
        &w.ns.name,
        "--helm",
        helm4().to_str().unwrap(),
        "--test-timeout",
        "60s",
        "--junit",
        out.join("gate.xml").to_str().unwrap(),
        "--record",
        out.join("gate.json").to_str().unwrap(),
        "--record-key",
        key.to_str().unwrap(),
    ])
}

/// Copies the gate record and its signature next to the channel's index.
fn upload(w: &World, out: &std::path::Path) {
    let dir = w.site().join("channels/stable");
    std::fs::copy(out.join("gate.json"), dir.join("gate.json")).unwrap();
    std::fs::copy(out.join("gate.json.sig"), dir.join("gate.json.sig")).unwrap();
}

fn promote(w: &World) -> (i32, String, String) {
    run(&[
        "promote",
        "--site",
        w.site().to_str().unwrap(),
        "--from",
        "stable",
        "--to",
        "prod",
        "--key",
        w.key.to_str().unwrap(),
        "--min-soak",
        "1s",
        "--require-gate",
        "--gate-key",
        testdata("keys/test-channel-2.pub").to_str().unwrap(),
    ])
}

#[tokio::test]
async fn a_gated_sequence_is_promoted_and_a_failing_one_is_not() {
    let mut w = World::new("gate", &["certs", "wiki"]).await;
    let out = tempfile::tempdir().unwrap();
    let gate_key = test_key_file(out.path(), "test-channel-2");
    w.publish(|_, _| {});

    // Sequence 1 passes: the agent installs, helm test passes for both.
    let (code, stdout, err) = gate(&w, out.path(), &gate_key);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {err}");
    assert!(stdout.contains("ok    certs 1.4.0"), "{stdout}");
    assert!(stdout.contains("ok    wiki 1.0.0"), "{stdout}");
    assert!(stdout.contains("gate stable#1 (sha256:"), "{stdout}");
    let junit = std::fs::read_to_string(out.path().join("gate.xml")).unwrap();
    assert!(
        junit.contains("<testsuite name=\"coxswain gate stable#1\" tests=\"2\" failures=\"0\">"),
        "{junit}"
    );
    let record: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("gate.json")).unwrap()).unwrap();
    assert_eq!(record["passed"], true, "{record}");
    assert_eq!(record["sequence"], 1);
    let index = std::fs::read(w.site().join("channels/stable/index.json")).unwrap();
    assert_eq!(
        record["index"],
        coxswain::format::Sha256Digest::of(&index).to_string()
    );
    // A second gate of the same sequence changes nothing on the cluster.
    let revisions = w.revisions();
    let (code, stdout, err) = gate(&w, out.path(), &gate_key);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {err}");
    assert_eq!(w.revisions(), revisions);

    // Promotion without the record is refused; with it, prod#1 is stable#1.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (code, _, err) = promote(&w);
    assert_eq!(code, 1);
    assert!(err.contains("stable#1 has no passing gate record"), "{err}");
    upload(&w, out.path());
    let (code, stdout, err) = promote(&w);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {err}");
    assert!(stdout.contains("promoted stable#1 to prod#1"), "{stdout}");

    // Sequence 2: wiki's test Job fails; the channel does not ask the agent to test.
    w.publish(|name, r| {
        if name == "wiki" {
            set(r, &["values", "tests", "image", "tag"], "fail".into());
            set(r, &["values", "image", "tag"], "2.5.301".into());
            set(r, &["health", "test"], false.into());
        }
    });
    let (code, stdout, err) = gate(&w, out.path(), &gate_key);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {err}");
    assert!(stdout.contains("FAIL  wiki 1.0.0"), "{stdout}");
    assert!(stdout.contains("helm test failed"), "{stdout}");
    assert!(err.contains("the gate failed for stable#2"), "{err}");
    let junit = std::fs::read_to_string(out.path().join("gate.xml")).unwrap();
    assert!(junit.contains("failures=\"1\""), "{junit}");
    assert!(
        junit.contains("<failure message=\"helm test failed"),
        "{junit}"
    );

    // The old record does not vouch for sequence 2, the new one says it failed.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (code, _, err) = promote(&w);
    assert_eq!(code, 1);
    assert!(
        err.contains("is for stable#1") && err.contains("not this index"),
        "{err}"
    );
    upload(&w, out.path());
    let (code, _, err) = promote(&w);
    assert_eq!(code, 1);
    assert!(
        err.contains("stable#2 has no passing gate record: the gate failed at"),
        "{err}"
    );
    assert!(err.contains("(wiki)"), "{err}");
    let prod: Value =
        serde_json::from_slice(&std::fs::read(w.site().join("channels/prod/index.json")).unwrap())
            .unwrap();
    assert_eq!(prod["sequence"], 1, "prod stays at stable#1's set");

    // Withdrawn: stable#3 brings back stable#1's releases with the reason on record;
    // the cluster goes back and says why, and the gate passes again.
    let reason = "wiki's smoke test fails on 2.5.301";
    let (code, stdout, err) = run(&[
        "withdraw",
        "--site",
        w.site().to_str().unwrap(),
        "--channel",
        "stable",
        "--sequence",
        "2",
        "--reason",
        reason,
        "--key",
        w.key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {err}");
    assert!(
        stdout.contains("withdrew stable#2: stable#3 offers the releases of #1"),
        "{stdout}"
    );
    let wiki_before = w.history("wiki").len();
    let (code, stdout, err) = gate(&w, out.path(), &gate_key);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {err}");
    assert!(stdout.contains("gate stable#3"), "{stdout}");
    let history = w.history("wiki");
    assert_eq!(
        history.len(),
        wiki_before + 1,
        "wiki went back: {history:?}"
    );
    let sub: Value =
        serde_json::to_value(w.subs().get("gate").await.unwrap().status.unwrap()).unwrap();
    assert_eq!(
        sub["withdrawn"],
        serde_json::json!([{"sequence": 2, "reason": reason}])
    );
    // What the agent installed again is what sequence 1 had: the old image tag.
    let values = String::from_utf8(support::world::succeed(
        std::process::Command::new(helm4())
            .args(["get", "values", "wiki", "-o", "json", "--namespace"])
            .arg(w.rns("wiki"))
            .arg("--kubeconfig")
            .arg(kubeconfig_path()),
    ))
    .unwrap();
    assert!(values.contains("2.5.300"), "{values}");
}
