//! The agent's web server on a real socket, fed a made-up agent state (the
//! rendering is pure; `tests/e2e_observe.rs` drives it with the real agent, a
//! real Prometheus and a real browser).

use std::collections::BTreeMap;
use std::sync::Arc;

use coxswain::agent::AgentState;
use coxswain::agent::executor::{HealthDetail, ObjectHealth, ObjectState, OperationDetail};
use coxswain::agent::view::{
    Activity, IndexSummary, Preview, PreviewAction, PreviewItem, PreviewState, Running, SpecSummary,
};
use coxswain::crd::{
    ChannelSubscription, ChannelSubscriptionSpec, ChannelSubscriptionStatus, CheckResult,
    FailedSequence, LastCheck, Operation, OperationKind, OperationResult, ReleaseState,
    ReleaseStatus,
};
use coxswain::duration::Duration;
use coxswain::format::Timestamp;
use coxswain::metrics::Metrics;
use coxswain::ui::UiState;

const EVIL: &str = "<script>alert('x')</script>";

fn at(offset: i64) -> Timestamp {
    let now = Timestamp::now().datetime().unix_timestamp();
    Timestamp::from_unix(now + offset).unwrap()
}

fn release(name: &str, version: &str, state: ReleaseState, message: &str) -> ReleaseStatus {
    ReleaseStatus {
        name: name.to_owned(),
        namespace: format!("{name}-ns"),
        version: Some(version.to_owned()),
        desired_version: Some(version.to_owned()),
        revision: Some(2),
        state,
        message: message.to_owned(),
        since: at(-120),
        pinned: name == "certs",
        held: false,
    }
}

fn operation(kind: OperationKind, result: OperationResult, started: Timestamp) -> Operation {
    Operation {
        release: "sso".to_owned(),
        namespace: "sso-ns".to_owned(),
        operation: kind,
        from: Some("2.3.0".to_owned()),
        to: Some("2.4.0".to_owned()),
        sequence: 3,
        started,
        duration: Duration::from_secs(20),
        result,
        message: format!("not ready after 20s {EVIL}"),
        from_revision: Some(1),
        to_revision: Some(2),
        health: None,
    }
}

fn spec() -> ChannelSubscriptionSpec {
    serde_json::from_value(serde_json::json!({
        "server": "http://updates.example",
        "channel": "stable",
        "trustRef": {"kind": "ConfigMap", "name": "trust", "key": "root.json"},
        "pins": {"certs": "1.4.0"},
        "holds": ["files"],
        "values": {"sso": {"valuesFrom": [{"kind": "Secret", "name": "sso-secret-values", "key": "values.yaml"}]}}
    }))
    .unwrap()
}

/// A state with one subscription `stack` where sso's upgrade failed and was rolled back.
async fn state(running: bool, expires_in: i64) -> AgentState {
    let state = AgentState::default();
    let upgrade_started = at(-60);
    let failed = operation(
        OperationKind::Upgrade,
        OperationResult::Failed,
        upgrade_started,
    );
    let health = HealthDetail {
        healthy: false,
        elapsed: std::time::Duration::from_millis(20_250),
        reason: Some("Deployment sso-ns/sso-server: 0/1 replicas available".to_owned()),
        unobserved: false,
        objects: vec![
            ObjectHealth {
                kind: "Deployment".to_owned(),
                namespace: Some("sso-ns".to_owned()),
                name: "sso-server".to_owned(),
                state: ObjectState::InProgress,
                reason: Some("Deployment sso-ns/sso-server: 0/1 replicas available".to_owned()),
            },
            ObjectHealth {
                kind: "Service".to_owned(),
                namespace: Some("sso-ns".to_owned()),
                name: "sso".to_owned(),
                state: ObjectState::Current,
                reason: None,
            },
        ],
    };
    let mut failed_with_health = failed.clone();
    failed_with_health.health = Some(health.summary());
    let mut backup = operation(OperationKind::Backup, OperationResult::Succeeded, at(-62));
    backup.message =
        "velero backup sso-3-20261203120000 of namespace sso-ns completed in 2s".to_owned();
    let mut rollback = operation(OperationKind::Rollback, OperationResult::Succeeded, at(-40));
    rollback.message = "upgrade to 2.4.0 failed; rolled back to revision 1".to_owned();
    rollback.from_revision = Some(2);
    rollback.to_revision = Some(3);
    let status = ChannelSubscriptionStatus {
        accepted_sequence: Some(3),
        failed_sequence: Some(FailedSequence {
            server: "http://updates.example".to_owned(),
            channel: "stable".to_owned(),
            sequence: 3,
            reason: "sso: not ready after 20s".to_owned(),
            at: at(-40),
        }),
        last_check: Some(LastCheck {
            time: at(-30),
            result: CheckResult::RolledBack,
            message: "stable#3: sso rolled back".to_owned(),
        }),
        next_start: Some(at(3_600)),
        releases: vec![
            release("certs", "1.4.0", ReleaseState::UpToDate, "up to date"),
            release(
                "sso",
                "2.3.0",
                ReleaseState::RolledBack,
                &format!("upgrade failed {EVIL}"),
            ),
        ],
        history: vec![backup, failed_with_health.clone(), rollback],
        ..Default::default()
    };
    let sub = ChannelSubscription::new("stack", spec());
    state
        .update_view("apps/stack", |v| {
            v.spec = Some(SpecSummary::of(&sub));
            v.status = Some(status);
            v.index = Some(IndexSummary {
                sequence: 3,
                published: at(-3600),
                expires: at(expires_in),
                trust_root_version: 1,
            });
            v.next_check = Some(at(240));
            v.preview = Some(Preview {
                sequence: 3,
                planned_at: at(-30),
                state: PreviewState::Waiting("sequence 3 failed".to_owned()),
                items: vec![
                    PreviewItem {
                        release: "sso".to_owned(),
                        namespace: "sso-ns".to_owned(),
                        action: PreviewAction::Upgrade,
                        from: Some("2.3.0".to_owned()),
                        to: Some("2.4.0".to_owned()),
                        layer: Some(1),
                        reason: "chart 2.3.0 -> 2.4.0".to_owned(),
                        pinned: false,
                        held: false,
                    },
                    PreviewItem {
                        release: "files".to_owned(),
                        namespace: "files-ns".to_owned(),
                        action: PreviewAction::Skip,
                        from: Some("4.2.0".to_owned()),
                        to: Some("4.3.0".to_owned()),
                        layer: None,
                        reason: "held by the subscription; not touched".to_owned(),
                        pinned: false,
                        held: true,
                    },
                ],
                notes: vec![],
            });
            v.running = running.then(|| Running {
                sequence: 4,
                started: at(-5),
                activity: vec![
                    Activity {
                        at: at(-5),
                        release: Some("certs-ns/certs".to_owned()),
                        message: "upgrading 1.4.0 -> 1.4.1".to_owned(),
                        done: false,
                    },
                    Activity {
                        at: at(-4),
                        release: Some("certs-ns/certs".to_owned()),
                        message: "upgraded 1.4.0 -> 1.4.1 (revision 3, sequence 4)".to_owned(),
                        done: true,
                    },
                    Activity {
                        at: at(-4),
                        release: Some("sso-ns/sso".to_owned()),
                        message: "upgrading 2.3.0 -> 2.4.0".to_owned(),
                        done: false,
                    },
                ],
            });
            v.keep_details(&[OperationDetail {
                operation: failed_with_health,
                elapsed: std::time::Duration::from_millis(20_500),
                health: Some(health),
            }]);
        })
        .await;
    state
}

/// Serves `state` on a free port; returns the base URL.
async fn serve(state: AgentState) -> String {
    let metrics = Arc::new(Metrics::new());
    metrics.set_build_info("v4.3.1");
    let ui = UiState {
        agent: state,
        metrics,
        namespace: "apps".to_owned(),
    };
    let (addr, server) = coxswain::ui::bind("127.0.0.1:0".parse().unwrap(), ui)
        .await
        .unwrap();
    tokio::spawn(server);
    format!("http://{addr}")
}

async fn get(url: &str) -> (u16, BTreeMap<String, String>, String) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    (status, headers, r.text().await.unwrap())
}

#[tokio::test]
async fn overview_shows_every_fact_and_escapes_text() {
    let base = serve(state(false, 3 * 86_400).await).await;
    let (code, headers, html) = get(&format!("{base}/")).await;
    assert_eq!(code, 200);
    assert!(headers["content-type"].starts_with("text/html"));
    assert!(headers["content-security-policy"].contains("default-src 'none'"));
    for needle in [
        "http://updates.example",
        "stable",
        "Accepted sequence",
        ">rolledBack<",
        ">upToDate<",
        ">pinned<",
        "sso: not ready after 20s",
        "coxswain.dev/retry",
        "href=\"/subscriptions/stack/releases/sso\"",
        "href=\"/subscriptions/stack/preview\"",
        "1 upgrade, 1 skip",
        "Next check",
        "the first may start",
    ] {
        assert!(html.contains(needle), "overview lacks {needle:?}:\n{html}");
    }
    assert!(!html.contains(EVIL), "unescaped text in the page");
    assert!(html.contains("&lt;script&gt;"), "escaped text missing");
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "refreshes with nothing running"
    );
    assert!(!html.contains("expires within a day"));
    assert!(!html.contains("<script"), "the UI uses no JavaScript");
}

#[tokio::test]
async fn a_running_plan_refreshes_the_page_and_a_near_expiry_is_flagged() {
    let base = serve(state(true, 3600).await).await;
    let (_, _, html) = get(&format!("{base}/")).await;
    assert!(html.contains("http-equiv=\"refresh\""), "{html}");
    assert!(html.contains("Applying sequence 4"), "{html}");
    assert!(html.contains("upgrading 2.3.0 -&gt; 2.4.0"), "{html}");
    assert!(html.contains("expires within a day"), "{html}");
    // Only sso is in progress: certs is done with.
    assert_eq!(html.matches(">in progress<").count(), 1, "{html}");
    let sso_row = &html[html.find("releases/sso\"").unwrap()..];
    let sso_row = &sso_row[..sso_row.find("</tr>").unwrap()];
    assert!(sso_row.contains(">in progress<"), "{sso_row}");
    let (_, _, json) = get(&format!("{base}/api/v1/status")).await;
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["subscriptions"][0]["expiresSoon"], true);
    assert_eq!(doc["subscriptions"][0]["running"]["sequence"], 4);
}

#[tokio::test]
async fn release_page_is_a_timeline_with_health_objects() {
    let base = serve(state(false, 86_400 * 3).await).await;
    let (code, _, html) = get(&format!("{base}/subscriptions/stack/releases/sso")).await;
    assert_eq!(code, 200);
    for needle in [
        "<ol class=\"timeline\">",
        ">upgrade<",
        ">rollback<",
        "Rollback reason: upgrade to 2.4.0 failed; rolled back to revision 1",
        "helm revision 2 → 3",
        "took 20.5 s",
        "2 objects in 20.2 s",
        "Deployment/sso-ns/sso-server",
        "0/1 replicas available",
        "Service/sso-ns/sso",
        ">not healthy<",
    ] {
        assert!(
            html.contains(needle),
            "release page lacks {needle:?}:\n{html}"
        );
    }
    // Newest first: the rollback comes before the failed upgrade, and that
    // before the backup taken ahead of it, which the timeline names.
    assert!(html.find(">rollback<").unwrap() < html.find(">upgrade<").unwrap());
    assert!(html.find(">upgrade<").unwrap() < html.find(">backup<").unwrap());
    assert!(
        html.contains("velero backup sso-3-20261203120000 of namespace sso-ns completed"),
        "{html}"
    );
}

#[tokio::test]
async fn preview_page_lists_actions_and_why_it_waits() {
    let base = serve(state(false, 86_400 * 3).await).await;
    let (code, _, html) = get(&format!("{base}/subscriptions/stack/preview")).await;
    assert_eq!(code, 200);
    for needle in [
        "Next sequence",
        "Not applied: sequence 3 failed",
        ">upgrade<",
        ">skip<",
        ">held<",
        "held by the subscription",
    ] {
        assert!(html.contains(needle), "preview lacks {needle:?}:\n{html}");
    }
}

#[tokio::test]
async fn unknown_pages_are_404_naming_what_is_missing() {
    let base = serve(state(false, 86_400 * 3).await).await;
    for (path, what) in [
        ("/subscriptions/nope", "subscription apps/nope"),
        (
            "/subscriptions/stack/releases/nope",
            "release nope of subscription stack",
        ),
        ("/subscriptions/nope/preview", "subscription apps/nope"),
        ("/nothing/here", "No such page"),
    ] {
        let (code, _, html) = get(&format!("{base}{path}")).await;
        assert_eq!(code, 404, "{path}");
        assert!(html.contains(what), "{path}: {html}");
    }
}

#[tokio::test]
async fn status_json_has_the_documented_shape_and_no_values() {
    let base = serve(state(false, 86_400 * 3).await).await;
    let (code, headers, json) = get(&format!("{base}/api/v1/status")).await;
    assert_eq!(code, 200);
    assert_eq!(headers["content-type"], "application/json");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["apiVersion"], "coxswain.dev/v1");
    assert_eq!(doc["namespace"], "apps");
    let sub = &doc["subscriptions"][0];
    assert_eq!(sub["name"], "stack");
    assert_eq!(sub["acceptedSequence"], 3);
    assert_eq!(sub["failedSequence"]["sequence"], 3);
    assert_eq!(sub["spec"]["pins"]["certs"], "1.4.0");
    assert_eq!(sub["spec"]["valuesFor"][0], "sso");
    assert_eq!(sub["releases"][1]["state"], "rolledBack");
    assert_eq!(sub["preview"]["state"]["state"], "waiting");
    assert_eq!(
        sub["nextStart"].as_str().unwrap(),
        at(3_600).to_string(),
        "when the held releases may start"
    );
    let history = sub["history"].as_array().unwrap();
    assert_eq!(history[0]["operation"], "rollback", "newest first");
    assert_eq!(history[1]["healthObjects"][0]["state"], "inProgress");
    assert_eq!(history[1]["elapsedSeconds"], 20.5);
    assert_eq!(
        history[1]["health"]["notReady"][0],
        "Deployment sso-ns/sso-server: 0/1 replicas available"
    );
    // A values reference is shown by release name only, never its Secret.
    assert!(!json.contains("sso-secret-values"), "{json}");
}

#[tokio::test]
async fn health_readiness_and_metrics_endpoints() {
    let state = state(false, 86_400 * 3).await;
    let base = serve(state.clone()).await;
    let (code, _, body) = get(&format!("{base}/healthz")).await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, _, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(code, 503);
    assert!(body.contains("not reached the Kubernetes API"), "{body}");
    state.set_readiness(Ok(()));
    let (code, _, _) = get(&format!("{base}/readyz")).await;
    assert_eq!(code, 200);
    let (code, headers, body) = get(&format!("{base}/metrics")).await;
    assert_eq!(code, 200);
    assert!(headers["content-type"].starts_with("application/openmetrics-text"));
    assert!(
        body.contains(&format!(
            "coxswain_build_info{{version=\"{}\",helm_version=\"v4.3.1\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
}

#[tokio::test]
async fn a_follower_says_who_leads() {
    let state = state(false, 86_400 * 3).await;
    state.set_readiness(Ok(()));
    let base = serve(state.clone()).await;
    // Without election: plain `ok`, no notice.
    let (code, _, body) = get(&format!("{base}/readyz")).await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (_, _, page) = get(&format!("{base}/")).await;
    assert!(!page.contains("id=\"leader\""), "{page}");

    let follower = coxswain::agent::leader::LeaderView {
        election: true,
        leading: false,
        identity: Some("agent-1".to_owned()),
        holder: Some("agent-0".to_owned()),
        lease: Some("coxswain/coxswain-agent".to_owned()),
    };
    state.leader().set(follower.clone());
    let (code, _, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(
        (code, body.as_str()),
        (200, "ok: follower (agent-1); leader is agent-0\n")
    );
    let (_, _, page) = get(&format!("{base}/")).await;
    assert!(
        page.contains("is a <strong>follower</strong>; the leader is <code>agent-0</code>"),
        "{page}"
    );
    let (_, _, json) = get(&format!("{base}/api/v1/status")).await;
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        doc["leader"],
        serde_json::json!({"election": true, "leading": false, "identity": "agent-1",
                           "holder": "agent-0", "lease": "coxswain/coxswain-agent"})
    );

    state.leader().set(coxswain::agent::leader::LeaderView {
        leading: true,
        holder: Some("agent-1".to_owned()),
        ..follower
    });
    let (_, _, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(body, "ok: leader (this replica, agent-1)\n");
    let (_, _, page) = get(&format!("{base}/")).await;
    assert!(page.contains("is the <strong>leader</strong>"), "{page}");
}
