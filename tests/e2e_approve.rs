//! End-to-end test of approvals and the rendered diff (docs/rollouts.md): the
//! real `coxswain publish` marks a major bump, the agent (`--once`, real helm 4,
//! the loopback cluster) waits in `awaitingApproval`, `coxswain diff` shows what
//! the upgrade changes, the annotation approves it, and the diff shown before
//! matches what `helm get manifest` shows afterwards. A Secret's value appears
//! in none of the diff, its JSON or the status.
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::Value;
use support::cluster::{kubeconfig_path, wait_for};
use support::world::{World, release, run};

/// The value the new chart's Secret holds; it must never be shown.
const SECRET_VALUE: &str = "hunter2-never-shown-7f3a";

/// (kind, name) of every object of a manifest.
fn object_set(manifest: &str) -> BTreeSet<(String, String)> {
    support::chart::objects(manifest)
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default().to_owned(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn helm_manifest(w: &World, release: &str) -> String {
    let out = std::process::Command::new(&w.helm)
        .args(["get", "manifest", release, "-n", w.rns(release)])
        .env("KUBECONFIG", kubeconfig_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_major_bump_waits_for_approval_with_a_diff_that_matches_the_upgrade() {
    let mut w = World::new("ap-major", &["wiki"]).await;
    // 2.0.0: the next wiki chart, a major version up, with a Secret added.
    let v2 = w.wiki_as("2.0.0");
    std::fs::write(
        v2.join("templates/secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{{{ .Release.Name }}}}-token\ntype: Opaque\nstringData:\n  token: {SECRET_VALUE}\n"
        ),
    )
    .unwrap();

    w.publish(|_, _| {});
    w.subscribe(|_| {}).await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}{err}");
    let before = helm_manifest(&w, "wiki");

    // Publish marks the step from 1.0.0 to 2.0.0 as requiring approval.
    w.publish(|_, r| {
        r["chart"]["path"] = v2.to_str().unwrap().into();
    });
    let index: Value = serde_json::from_slice(
        &std::fs::read(w.site().join("channels/stable/index.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(index["releases"][0]["requiresApproval"], true, "{index}");

    // The agent waits, says why and how to approve, and changes nothing.
    let (code, out, err) = w.agent_once();
    assert_eq!(
        code, 0,
        "waiting for an approval is not a failure: {out}{err}"
    );
    assert!(out.contains("wiki awaits approval of 2.0.0"), "{out}");
    assert_eq!(w.revisions()["wiki"], 1);
    let status = w.status().await;
    let wiki = release(&status, "wiki");
    assert_eq!(wiki["state"], "awaitingApproval", "{wiki}");
    let message = wiki["message"].as_str().unwrap();
    let ns = &w.ns.name;
    assert!(message.contains("1.0.0 -> 2.0.0"), "{message}");
    assert!(
        message.contains(&format!(
            "kubectl -n {ns} annotate channelsubscription stack coxswain.dev/approve=wiki=2.0.0 --overwrite"
        )),
        "{message}"
    );
    assert!(
        message.contains("rendered diff 1.0.0 -> 2.0.0: "),
        "{message}"
    );
    assert!(!status.to_string().contains(SECRET_VALUE));
    let events = w.events().await;
    assert!(
        events
            .iter()
            .any(|(reason, _)| reason == "AwaitingApproval"),
        "{events:?}"
    );

    // `coxswain diff`, as an administrator runs it.
    let helm = w.helm.clone();
    let kubeconfig = kubeconfig_path();
    let cache = w.dir.path().join("diff-cache");
    let args = |json: bool| {
        let mut a = vec![
            "diff".to_owned(),
            "--kubeconfig".into(),
            kubeconfig.to_str().unwrap().into(),
            "-n".into(),
            ns.clone(),
            "--helm".into(),
            helm.to_str().unwrap().into(),
            "--cache-dir".into(),
            cache.to_str().unwrap().into(),
            "stack".into(),
            "wiki".into(),
        ];
        if json {
            a.push("--json".into());
        }
        a
    };
    let text_args = args(false);
    let (code, text, err) = run(&text_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{text}{err}");
    let json_args = args(true);
    let (code, json, err) = run(&json_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{json}{err}");
    for shown in [&text, &json, &err] {
        assert!(
            !shown.contains(SECRET_VALUE),
            "the Secret's value leaked: {shown}"
        );
    }
    assert!(text.contains("## added: v1 Secret"), "{text}");
    assert!(
        text.contains("Secret values are not shown; keys added: [stringData.token]"),
        "{text}"
    );
    let diffs: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(diffs.len(), 1, "{json}");
    let d = &diffs[0];
    assert_eq!(
        (d["from"].as_str(), d["to"].as_str()),
        (Some("1.0.0"), Some("2.0.0"))
    );
    let objects = d["diff"]["objects"].as_array().unwrap();
    let with = |change: &str| -> BTreeSet<(String, String)> {
        objects
            .iter()
            .filter(|o| o["change"] == change)
            .map(|o| {
                (
                    o["key"]["kind"].as_str().unwrap().to_owned(),
                    o["key"]["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (added, removed, changed) = (with("added"), with("removed"), with("changed"));
    assert!(
        added.contains(&("Secret".into(), "wiki-token".into())),
        "{json}"
    );
    assert!(
        !changed.is_empty(),
        "the next chart changes objects: {json}"
    );

    // The agent's web UI and /api/v1/status show the same diff, redacted.
    let mut agent = w.start_agent();
    let http = reqwest::Client::new();
    let api_url = format!("{}/api/v1/status", agent.url);
    let api = wait_for(
        "the diff in /api/v1/status",
        Duration::from_secs(60),
        || {
            let (http, url) = (http.clone(), api_url.clone());
            async move {
                let text = http.get(&url).send().await.ok()?.text().await.ok()?;
                text.contains("wiki-token").then_some(text)
            }
        },
    )
    .await;
    let doc: Value = serde_json::from_str(&api).unwrap();
    let api_diff = &doc["subscriptions"][0]["diffs"][0];
    assert_eq!(api_diff["to"], "2.0.0", "{api}");
    assert_eq!(
        api_diff["diff"]["objects"], d["diff"]["objects"],
        "the API and coxswain diff agree"
    );
    let page = http
        .get(format!("{}/subscriptions/stack/preview", agent.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Awaiting approval: what the upgrades change"),
        "{page}"
    );
    assert!(
        page.contains("wiki-token") && page.contains("stringData.token"),
        "{page}"
    );
    for shown in [&api, &page, &agent.logs()] {
        assert!(
            !shown.contains(SECRET_VALUE),
            "the Secret's value leaked: {shown}"
        );
    }

    // Approve with the annotation: the running controller checks at once (an
    // annotation does not move the generation; the interval is 5m) and upgrades.
    w.subs()
        .patch(
            "stack",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({
                "metadata": {"annotations": {"coxswain.dev/approve": "wiki=2.0.0"}}
            })),
        )
        .await
        .unwrap();
    let status = wait_for("the approved upgrade", Duration::from_secs(90), || {
        let w = &w;
        async move {
            let status = w.status().await;
            (release(&status, "wiki")["version"] == "2.0.0").then_some(status)
        }
    })
    .await;
    assert!(agent.stop(), "{}", agent.logs());
    assert!(!agent.logs().contains(SECRET_VALUE));
    assert_eq!(release(&status, "wiki")["state"], "upToDate", "{status}");

    // What the diff said is what helm did: the object set moved exactly so,
    // and every object it called changed is different in the manifest.
    let after = helm_manifest(&w, "wiki");
    let (old_set, new_set) = (object_set(&before), object_set(&after));
    let expected: BTreeSet<_> = old_set
        .difference(&removed)
        .cloned()
        .chain(added.iter().cloned())
        .collect();
    assert_eq!(new_set, expected, "diff: {json}");
    let old_objects = support::chart::objects(&before);
    let new_objects = support::chart::objects(&after);
    let find = |objs: &[Value], kind: &str, name: &str| {
        objs.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .cloned()
    };
    for (kind, name) in &changed {
        assert_ne!(
            find(&old_objects, kind, name),
            find(&new_objects, kind, name),
            "{kind} {name} was said to change"
        );
    }
    for (kind, name) in old_set.intersection(&new_set) {
        if !changed.contains(&(kind.clone(), name.clone())) {
            assert_eq!(
                find(&old_objects, kind, name),
                find(&new_objects, kind, name),
                "{kind} {name} changed but the diff did not say so"
            );
        }
    }
    // Each changed field the diff showed is in the new manifest.
    for o in objects.iter().filter(|o| o["change"] == "changed") {
        for line in o["diff"].as_str().unwrap().lines() {
            if let Some(added_line) = line.strip_prefix('+')
                && !line.starts_with("+++")
                && !added_line.trim().is_empty()
            {
                assert!(
                    after.contains(added_line),
                    "`{added_line}` not in the new manifest"
                );
            }
        }
    }
}
