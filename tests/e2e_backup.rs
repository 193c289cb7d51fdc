//! Backups with a real Velero on the loopback cluster (docs/backup.md):
//! `velero server` outside a pod, its AWS plugin, versitygw as S3.

mod support;

use serde_json::{Value, json};
use support::cluster::{client, unique_name};
use support::velero::{Velero, kubectl_run};
use support::world::World;

/// The test parts themselves: a Backup of a namespace completes into the S3
/// gateway's directory, and a Restore brings a deleted ConfigMap back and
/// (with `existingResourcePolicy: update`) an overwritten one's data.
#[tokio::test(flavor = "multi_thread")]
async fn velero_backs_up_a_namespace_and_restores_its_config_maps() {
    let _ = client().await;
    let velero = Velero::start();
    let ns = unique_name("backed-up");
    kubectl_run(&["create", "namespace", &ns], None);
    kubectl_run(
        &[
            "-n",
            &ns,
            "create",
            "configmap",
            "data",
            "--from-literal=rows=original",
        ],
        None,
    );
    kubectl_run(
        &[
            "-n",
            &ns,
            "create",
            "configmap",
            "other",
            "--from-literal=x=1",
        ],
        None,
    );
    let backup = unique_name("b");
    kubectl_run(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {{name: {backup}, namespace: {}}}\n\
             spec: {{includedNamespaces: [{ns}], ttl: 1h0m0s, snapshotVolumes: false}}\n",
            velero.namespace
        )),
    );
    assert_eq!(velero.wait_phase("backup", &backup, &[], 120), "Completed");
    let stored = velero.stored_files(&backup);
    assert!(
        stored.contains(&format!("{backup}.tar.gz"))
            && stored.contains(&"velero-backup.json".to_owned()),
        "the S3 gateway holds {stored:?}"
    );

    kubectl_run(&["-n", &ns, "delete", "configmap", "other"], None);
    kubectl_run(
        &[
            "-n",
            &ns,
            "patch",
            "configmap",
            "data",
            "-p",
            r#"{"data":{"rows":"migrated"}}"#,
        ],
        None,
    );
    let restore = unique_name("r");
    kubectl_run(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: velero.io/v1\nkind: Restore\nmetadata: {{name: {restore}, namespace: {}}}\n\
             spec: {{backupName: {backup}, includedNamespaces: [{ns}], existingResourcePolicy: update}}\n",
            velero.namespace
        )),
    );
    assert_eq!(
        velero.wait_phase("restore", &restore, &[], 120),
        "Completed"
    );
    let rows = kubectl_run(
        &[
            "-n",
            &ns,
            "get",
            "configmap",
            "data",
            "-o",
            "jsonpath={.data.rows}",
        ],
        None,
    );
    assert_eq!(rows, "original");
    let x = kubectl_run(
        &[
            "-n",
            &ns,
            "get",
            "configmap",
            "other",
            "-o",
            "jsonpath={.data.x}",
        ],
        None,
    );
    assert_eq!(x, "1");
    kubectl_run(&["delete", "namespace", &ns, "--wait=false"], None);
}

/// Item 5 of the backup issue with real parts: a release whose channel asks
/// for a backup before upgrades is installed; the application writes its data
/// (a ConfigMap) afterwards; the next sequence's pre-upgrade hook "migrates"
/// that data and its workload never becomes ready. The agent backs the
/// namespace up with Velero first, upgrades, rolls back, and names the backup
/// and the command that restores it; the rollback leaves the data migrated,
/// and running that exact command brings the original data back.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_before_a_failing_migration_restores_the_data_a_rollback_cannot() {
    let velero = Velero::start();
    let mut w = World::new("bk", &["ledger"]).await;
    let ns = w.rns("ledger").to_owned();
    w.publish_from("channels/backup.yaml", |_, _| {});
    let velero_ns = velero.namespace.clone();
    w.subscribe(move |spec| spec.velero.namespace = velero_ns)
        .await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}\n{err}");
    // A first install has nothing to back up.
    assert_eq!(backups(&velero), Vec::<Value>::new());

    // The application writes its data after the install.
    kubectl_run(
        &[
            "-n",
            &ns,
            "create",
            "configmap",
            "ledger-data",
            "--from-literal=rows=original",
        ],
        None,
    );
    let sequence = w.publish_from("channels/backup.yaml", |_, r| {
        r["values"]["image"]["tag"] = "broken".into();
        r["values"]["migration"] = json!({"enabled": true, "rows": "migrated"});
        r["health"]["timeout"] = "15s".into();
    });
    let (code, out, err) = w.agent_once();
    assert_ne!(code, 0, "the upgrade must fail: {out}\n{err}");

    // The backup: made before the upgrade, completed, labelled as ours.
    let made = backups(&velero);
    assert_eq!(made.len(), 1, "{made:#?}");
    let backup = &made[0];
    let name = backup["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with(&format!("ledger-{sequence}-")), "{name}");
    assert_eq!(backup["status"]["phase"], "Completed", "{backup:#?}");
    assert_eq!(backup["spec"]["includedNamespaces"], json!([ns]));
    assert_eq!(backup["spec"]["ttl"], "3600s");
    assert_eq!(
        backup["metadata"]["labels"]["coxswain.dev/release"],
        "ledger"
    );
    assert_eq!(
        backup["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "coxswain"
    );
    assert!(
        velero
            .stored_files(&name)
            .contains(&format!("{name}.tar.gz")),
        "the S3 gateway holds {:?}",
        velero.stored_files(&name)
    );

    // The status: a backup operation before the upgrade, the rollback naming
    // the backup and the exact restore command; Events say the same.
    let status = w.status().await;
    let history = status["history"].as_array().unwrap();
    let kinds: Vec<&str> = history
        .iter()
        .filter(|op| op["sequence"] == sequence)
        .map(|op| op["operation"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["backup", "upgrade", "rollback"], "{history:#?}");
    let backed_up = history
        .iter()
        .find(|op| op["operation"] == "backup")
        .unwrap();
    assert_eq!(backed_up["result"], "succeeded");
    assert!(backed_up["message"].as_str().unwrap().contains(&name));
    let rollback = history
        .iter()
        .rev()
        .find(|op| op["operation"] == "rollback")
        .unwrap();
    let message = rollback["message"].as_str().unwrap();
    let command = format!(
        "velero restore create --namespace {} --from-backup {name} --include-namespaces {ns} --existing-resource-policy update",
        velero.namespace
    );
    assert!(message.contains(&command), "{message}");
    assert!(
        message.contains(&format!(
            "coxswain restore --namespace {} --subscription stack --release ledger --backup {name}",
            w.ns.name
        )),
        "{message}"
    );
    let release = status["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "ledger")
        .unwrap();
    assert_eq!(release["state"], "rolledBack", "{release:#?}");
    let events = w.events().await;
    for reason in ["BackedUp", "RestoreAvailable"] {
        assert!(
            events
                .iter()
                .any(|(r, note)| r == reason && note.contains(&name)),
            "no {reason} Event naming {name}: {events:#?}"
        );
    }

    // helm rollback restored the objects, not the data.
    assert_eq!(rows(&ns), "migrated");

    // coxswain restore: refuses what is not the release's backup, by name.
    let kubeconfig = support::cluster::kubeconfig_path();
    let restore_cli = |extra: &[&str]| {
        let mut args = vec![
            "restore",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--namespace",
            &w.ns.name,
            "--subscription",
            "stack",
            "--timeout",
            "2m",
        ];
        args.extend_from_slice(extra);
        support::world::run(&args)
    };
    let (code, _, err) = restore_cli(&["--release", "nope"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("has no release `nope` in its status: name one of ledger"),
        "{err}"
    );
    let (code, _, err) = restore_cli(&["--release", "ledger", "--backup", "not-a-backup"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("backup not-a-backup in velero-") && err.contains("is not there"),
        "{err}"
    );
    assert_eq!(rows(&ns), "migrated", "a refused restore changes nothing");
    // Without --backup: the release's newest completed backup.
    let (code, out, err) = restore_cli(&["--release", "ledger"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.starts_with(&format!(
            "restored backup {name} into namespace {ns}: restore {name}-restore-"
        )),
        "{out}"
    );
    assert_eq!(rows(&ns), "original");

    // The data changes again; the restore annotation has the agent restore
    // the backup it names, once per value.
    set_rows(&ns, "migrated");
    kubectl_run(
        &[
            "-n",
            &w.ns.name,
            "annotate",
            "channelsubscriptions.coxswain.dev",
            "stack",
            &format!("coxswain.dev/restore=ledger/{name}"),
        ],
        None,
    );
    let _ = w.agent_once();
    assert_eq!(rows(&ns), "original");
    let restores = |status: &Value| -> Vec<Value> {
        status["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|op| op["operation"] == "restore")
            .cloned()
            .collect()
    };
    let status = w.status().await;
    let done = restores(&status);
    assert_eq!(done.len(), 1, "{done:#?}");
    assert_eq!(done[0]["result"], "succeeded", "{done:#?}");
    assert!(
        done[0]["message"].as_str().unwrap().starts_with(&format!(
            "restored backup {name} into namespace {ns} (coxswain.dev/restore: ledger/{name})"
        )),
        "{done:#?}"
    );
    assert_eq!(status["handledRestore"], format!("ledger/{name}"));
    assert!(
        w.events()
            .await
            .iter()
            .any(|(r, note)| r == "Restored" && note.contains(&name)),
        "no Restored Event"
    );
    // Acted on once: a later check leaves the data alone.
    set_rows(&ns, "migrated");
    let _ = w.agent_once();
    assert_eq!(rows(&ns), "migrated");
    assert_eq!(restores(&w.status().await).len(), 1);

    // The command the agent printed, run as printed.
    set_rows(&ns, "migrated");
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    let out = std::process::Command::new(support::velero::velero_bin())
        .args(&args)
        .env("KUBECONFIG", support::cluster::kubeconfig_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let restore = String::from_utf8_lossy(&out.stdout)
        .split('"')
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_default();
    assert_eq!(
        velero.wait_phase("restore", &restore, &[], 120),
        "Completed"
    );
    assert_eq!(rows(&ns), "original");
}

/// Where Velero's namespace does not exist, the upgrade does not start and
/// the status says why; waiving the backup lets the next sequence upgrade.
#[tokio::test(flavor = "multi_thread")]
async fn without_velero_the_upgrade_waits_unless_the_backup_is_waived() {
    // Velero's CRDs exist (as after any backup test): only its namespace is missing.
    support::velero::apply_velero_crds();
    let mut w = World::new("bk-none", &["ledger"]).await;
    w.publish_from("channels/backup.yaml", |_, _| {});
    w.subscribe(|spec| spec.velero.namespace = "no-velero-here".to_owned())
        .await;
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}\n{err}");
    let revisions = w.revisions();
    w.publish_from("channels/backup.yaml", |_, r| {
        r["values"]["image"]["tag"] = "1.0.1".into();
    });
    let (code, _, _) = w.agent_once();
    assert_ne!(code, 0);
    assert_eq!(w.revisions(), revisions, "nothing was upgraded");
    let status = w.status().await;
    let release = &status["releases"][0];
    assert_eq!(release["state"], "blocked", "{release:#?}");
    let message = release["message"].as_str().unwrap();
    assert!(
        message.contains("Velero's namespace `no-velero-here` does not exist")
            && message.contains("the upgrade did not start"),
        "{message}"
    );
    assert!(
        w.events().await.iter().any(|(r, _)| r == "BackupFailed"),
        "no BackupFailed Event"
    );

    w.patch_spec(json!({"backups": {"ledger": {"mode": "waive"}}}))
        .await;
    w.publish_from("channels/backup.yaml", |_, r| {
        r["values"]["image"]["tag"] = "1.0.2".into();
    });
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(w.revisions()["ledger"] > revisions["ledger"]);
}

fn backups(velero: &Velero) -> Vec<Value> {
    let list: Value = serde_json::from_str(&kubectl_run(
        &[
            "-n",
            &velero.namespace,
            "get",
            "backups.velero.io",
            "-o",
            "json",
        ],
        None,
    ))
    .unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

fn rows(ns: &str) -> String {
    kubectl_run(
        &[
            "-n",
            ns,
            "get",
            "configmap",
            "ledger-data",
            "-o",
            "jsonpath={.data.rows}",
        ],
        None,
    )
}

fn set_rows(ns: &str, rows: &str) {
    kubectl_run(
        &[
            "-n",
            ns,
            "patch",
            "configmap",
            "ledger-data",
            "-p",
            &format!(r#"{{"data":{{"rows":"{rows}"}}}}"#),
        ],
        None,
    );
}
