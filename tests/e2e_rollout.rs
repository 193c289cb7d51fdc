//! End-to-end tests of staged rollouts and maintenance windows (docs/rollouts.md)
//! with real parts: the real `coxswain publish` writes the waves into the signed
//! index, the agent (real helm 4, the loopback cluster) holds an upgrade until its
//! ring's wave or its maintenance window opens, says why in the status, and starts
//! it as soon as the gate opens — the controller wakes at the window's opening
//! rather than at its next poll.
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::cluster::wait_for;
use support::world::{World, release, updated};

/// Publishes the next sequence of the stable spec with wiki at chart `chart` and the
/// channel-wide `rollout` (null: none).
fn publish_with_rollout(w: &mut World, chart: &std::path::Path, rollout: Value) -> u64 {
    w.sequence += 1;
    let chart = chart.to_str().unwrap().to_owned();
    let spec = w.spec("stable", |name, r| {
        if name == "wiki" {
            r["chart"]["path"] = chart.clone().into();
        }
    });
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&spec).unwrap()).unwrap();
    if !rollout.is_null() {
        doc["rollout"] = rollout;
    }
    std::fs::write(&spec, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let site = w.site();
    let sequence = w.sequence;
    w.publish_to(&spec, &site, sequence);
    sequence
}

#[tokio::test]
async fn a_late_ring_waits_for_its_wave_and_a_canary_applies_at_once() {
    let mut w = World::new("ro-wave", &["wiki"]).await;
    w.publish(|_, _| {});
    w.subscribe(|_| {}).await;
    w.patch_spec(json!({"ring": "late"})).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.revisions()["wiki"], 1);

    // 1.1.0, staged: 5 % of the fleet at once, everyone an hour later.
    let next = w.wiki_as("1.1.0");
    publish_with_rollout(
        &mut w,
        &next,
        json!({"waves": [{"percent": 5, "after": "0s"}, {"percent": 100, "after": "1h"}]}),
    );
    let index: Value = serde_json::from_slice(
        &std::fs::read(w.site().join("channels/stable/index.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(index["rollout"]["waves"][1]["after"], "1h", "{index}");

    // The late ring is the last wave: it waits, says until when, and changes nothing.
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "waiting for a wave is not a failure: {out}{err}");
    assert_eq!(w.revisions()["wiki"], 1, "a late cluster upgraded at once");
    let status = w.status().await;
    let wiki = release(&status, "wiki");
    assert_eq!(wiki["state"], "waiting", "{wiki}");
    let message = wiki["message"].as_str().unwrap();
    assert!(message.contains("wave 2 of 2"), "{message}");
    let next_start = status["nextStart"]
        .as_str()
        .unwrap_or_else(|| panic!("no nextStart in {status}"));
    let next_start =
        time::OffsetDateTime::parse(next_start, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let from_now = next_start - time::OffsetDateTime::now_utc();
    assert!(
        from_now > time::Duration::minutes(55) && from_now <= time::Duration::minutes(61),
        "the last wave opens an hour after the publish, not {from_now}"
    );
    let events = w.events().await;
    assert!(
        events
            .iter()
            .any(|(reason, _)| reason == "WaitingForRollout"),
        "{events:?}"
    );

    // The same cluster as a canary is in the first wave: it applies at once.
    w.patch_spec(json!({"ring": "canary"})).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.revisions()["wiki"], 2, "a canary waited: {out}{err}");
    let status = w.status().await;
    assert_eq!(release(&status, "wiki")["state"], "upToDate", "{status}");
    assert!(status.get("nextStart").is_none(), "nothing waits: {status}");
}

#[tokio::test]
async fn a_window_that_opens_a_minute_later_holds_the_upgrade_until_it_opens() {
    let mut w = World::new("ro-window", &["wiki"]).await;
    w.publish(|_, _| {});
    w.subscribe(|s| {
        // Polls far apart: only the wake-up at the window's opening can be in time.
        s.interval = coxswain::duration::Duration::from_mins(30);
    })
    .await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(w.revisions()["wiki"], 1);

    // A window opening at the first whole minute at least 75 s from now, in UTC,
    // on that minute's weekday, for an hour.
    let now = time::OffsetDateTime::now_utc();
    let at = now + time::Duration::seconds(75);
    let opens =
        at.replace_second(0).unwrap().replace_nanosecond(0).unwrap() + time::Duration::minutes(1);
    let day = &format!("{:?}", opens.weekday())[..3];
    w.patch_spec(json!({
        "healthTimeout": "1m",
        "maintenance": {"windows": [{
            "days": [day],
            "start": format!("{:02}:{:02}", opens.hour(), opens.minute()),
            "duration": "1h",
            "timeZone": "UTC",
        }]},
    }))
    .await;
    let next = w.wiki_as("1.1.0");
    publish_with_rollout(&mut w, &next, Value::Null);

    let agent = w.start_agent();
    // Before the window: waiting, with the window's opening as the next start.
    let status = wait_for(
        "wiki waiting for its window",
        Duration::from_secs(60),
        || {
            let w = &w;
            async move {
                let status = w.status().await;
                (release(&status, "wiki")["state"] == "waiting").then_some(status)
            }
        },
    )
    .await;
    assert!(
        time::OffsetDateTime::now_utc() < opens,
        "the test set up too slowly to see the wait"
    );
    assert_eq!(w.revisions()["wiki"], 1, "upgraded outside the window");
    let message = release(&status, "wiki")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("window"), "{message}");
    assert_eq!(
        status["nextStart"].as_str(),
        Some(
            opens
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
                .as_str()
        ),
        "{status}"
    );

    // The window opens: the controller wakes and upgrades within seconds, not at
    // its next poll half an hour later.
    let left = (opens - time::OffsetDateTime::now_utc()).unsigned_abs();
    wait_for(
        "wiki upgraded once the window opened",
        left + Duration::from_secs(90),
        || {
            let w = &w;
            async move { (w.revisions()["wiki"] == 2).then_some(()) }
        },
    )
    .await;
    let upgrade = w
        .history("wiki")
        .into_iter()
        .find(|e| e["revision"] == 2)
        .unwrap();
    assert!(
        updated(&upgrade) >= opens,
        "upgraded at {} before the window opened at {opens}",
        updated(&upgrade)
    );
    drop(agent);
}
