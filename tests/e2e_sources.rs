//! Chart sources as they exist in the field, against real servers on
//! loopback: OCI registries (the CNCF distribution `registry serve` at
//! `COXSWAIN_TEST_REGISTRY`, pushed to and pulled from with the real helm 4)
//! over plain HTTP and over TLS with a private CA the real `openssl` makes.
//! Each failure asserts the message that names the spec field to set.
//!
//! Run with `cargo xtask e2e` (which builds the registry).

mod support;

use std::path::{Path, PathBuf};

use coxswain::format::Timestamp;
use coxswain::publish::{PublishOptions, publish};
use ed25519_dalek::SigningKey;
use support::cluster::helm4;
use support::registry::{Registry, TestCa};
use support::testdata;

/// Runs helm 4 with `args`, which must succeed.
fn helm(args: &[&std::ffi::OsStr]) {
    let out = std::process::Command::new(helm4())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `helm package` of the widgets test chart into `dir`.
fn packaged_chart(dir: &Path) -> PathBuf {
    let chart = testdata("charts/widgets");
    helm(&[
        "package".as_ref(),
        chart.as_ref(),
        "--destination".as_ref(),
        dir.as_ref(),
    ]);
    dir.join("widgets-1.0.0.tgz")
}

/// `helm push` of `chart` to `oci://<host>/charts` with `flags`.
fn push(chart: &Path, host: &str, flags: &[&str]) {
    let target = format!("oci://{host}/charts");
    let mut args: Vec<&std::ffi::OsStr> = vec!["push".as_ref(), chart.as_ref(), target.as_ref()];
    args.extend(flags.iter().map(std::ffi::OsStr::new));
    helm(&args);
}

/// Publishes a spec with the one release `widgets` from `oci://<host>/charts/widgets`
/// with `extra` YAML in its `oci` mapping, into a fresh site under `dir`.
async fn publish_oci(dir: &Path, host: &str, extra: &str) -> Result<(), String> {
    let spec = dir.join("spec.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: stable\nreleases:\n  \
             - name: widgets\n    namespace: widgets\n    chart:\n      oci: \
             {{ref: \"oci://{host}/charts/widgets\", version: 1.0.0{extra}}}\n"
        ),
    )
    .unwrap();
    let site = tempfile::tempdir_in(dir).unwrap();
    let mut opts = PublishOptions::new(
        spec,
        vec![SigningKey::from_bytes(&[7; 32])],
        site.path().to_path_buf(),
        Timestamp::from_unix(1_800_000_000).unwrap(),
    );
    opts.sequence = Some(1);
    opts.helm = helm4();
    match publish(&opts).await {
        Ok(report) => {
            assert_eq!(report.releases[0].version, "1.0.0");
            assert!(site.path().join("channels/stable/index.json").is_file());
            Ok(())
        }
        Err(e) => {
            assert!(
                !site.path().join("channels").exists(),
                "nothing is written on a refusal"
            );
            Err(support::chain(&e))
        }
    }
}

#[tokio::test]
async fn oci_over_plain_http_needs_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let chart = packaged_chart(dir.path());
    let registry = Registry::start(None);
    push(&chart, &registry.host, &["--plain-http"]);

    publish_oci(dir.path(), &registry.host, ", plainHttp: true")
        .await
        .unwrap();
    let err = publish_oci(dir.path(), &registry.host, "")
        .await
        .unwrap_err();
    assert!(
        err.contains("release `widgets`: `")
            && err.contains("the registry speaks plain HTTP: set `chart.oci.plainHttp: true`"),
        "{err}"
    );
}

#[tokio::test]
async fn oci_with_a_private_ca_needs_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let chart = packaged_chart(dir.path());
    let ca = TestCa::new(dir.path(), "registry");
    let other = TestCa::new(dir.path(), "other");
    let registry = Registry::start(Some(&ca));
    push(
        &chart,
        &registry.host,
        &["--ca-file", ca.ca.to_str().unwrap()],
    );

    // caFile is relative to the spec, which lies in `dir`.
    publish_oci(dir.path(), &registry.host, ", caFile: registry-ca.pem")
        .await
        .unwrap();
    let err = publish_oci(dir.path(), &registry.host, "")
        .await
        .unwrap_err();
    assert!(
        err.contains("the registry's TLS certificate is not trusted: set `chart.oci.caFile`"),
        "{err}"
    );
    assert!(other.ca.is_file());
    let err = publish_oci(dir.path(), &registry.host, ", caFile: other-ca.pem")
        .await
        .unwrap_err();
    assert!(
        err.contains("does not verify against `chart.oci.caFile`"),
        "{err}"
    );
    let err = publish_oci(dir.path(), &registry.host, ", caFile: missing.pem")
        .await
        .unwrap_err();
    assert!(
        err.contains("chart.oci.caFile: ") && err.contains("missing.pem"),
        "{err}"
    );
    // HTTP to a registry that speaks HTTPS.
    let err = publish_oci(dir.path(), &registry.host, ", plainHttp: true")
        .await
        .unwrap_err();
    assert!(err.contains("remove `chart.oci.plainHttp`"), "{err}");
}
