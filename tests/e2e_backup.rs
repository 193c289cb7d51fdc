//! Backups with a real Velero on the loopback cluster (docs/backup.md):
//! `velero server` outside a pod, its AWS plugin, versitygw as S3.

mod support;

use support::cluster::{client, unique_name};
use support::velero::{Velero, kubectl_run};

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
