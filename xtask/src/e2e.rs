//! `cargo xtask e2e`: run every end-to-end test target (`tests/e2e_*.rs`)
//! against a loopback cluster named `e2e`, started here when it is not running.
//!
//! The tests find the cluster and tools through the environment:
//! `KUBECONFIG`, `COXSWAIN_TEST_HELM` (helm 4), `COXSWAIN_TEST_HELM3`,
//! `COXSWAIN_TEST_KUBECTL`, `COXSWAIN_TEST_XTASK` (this binary: a test that
//! breaks a cluster starts one of its own with it), and the Debian binaries `COXSWAIN_TEST_PROMTOOL`,
//! `COXSWAIN_TEST_PROMETHEUS`, `COXSWAIN_TEST_CHROMIUM`, `COXSWAIN_TEST_CHROMEDRIVER`,
//! for the image test `COXSWAIN_TEST_CRANE`, `COXSWAIN_TEST_REGISTRY` and
//! `COXSWAIN_TEST_IMAGE_COXSWAIN` (the static release build, made here), and for
//! the backup test `COXSWAIN_TEST_VELERO`, `COXSWAIN_TEST_VELERO_PLUGINS` (a
//! directory) and `COXSWAIN_TEST_VERSITYGW`.

use std::fs;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cluster;
use crate::tools;

/// Name of the cluster the e2e tests run against.
pub const CLUSTER: &str = "e2e";

/// `cargo xtask e2e [--keep] [-- <cargo test args>]`
#[derive(Args, Debug, Default)]
pub struct E2eArgs {
    /// Leave the cluster running afterwards (the next run reuses it).
    #[arg(long)]
    pub keep: bool,
    /// Passed to `cargo test` after the generated arguments, e.g. `-- helm3 -- --nocapture`.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

/// Build the tools if needed, bring the `e2e` cluster up, run every e2e test
/// target and bring the cluster down again unless `keep`. Fails when any test fails.
pub fn run(args: &E2eArgs) -> Result<()> {
    let started = Instant::now();
    let targets = discover_targets()?;
    let tools = tools::ensure()?;
    // The image test (tests/e2e_image.rs) packs the static release build.
    let image_coxswain = crate::image::build_static(&crate::workspace_root())?;
    let kubeconfig = cluster::up(CLUSTER, &tools)?;

    let xtask = std::env::current_exe().context("find the xtask binary")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate::workspace_root())
        .args(["test", "--features", "e2e"]);
    for target in &targets {
        cmd.args(["--test", target]);
    }
    cmd.args(&args.cargo_args)
        .env("KUBECONFIG", &kubeconfig)
        .env("COXSWAIN_TEST_HELM", &tools.helm4)
        .env("COXSWAIN_TEST_HELM3", &tools.helm3)
        .env("COXSWAIN_TEST_KUBECTL", &tools.kubectl)
        .env("COXSWAIN_TEST_XTASK", &xtask)
        .env("COXSWAIN_TEST_PROMTOOL", &tools.promtool)
        .env("COXSWAIN_TEST_PROMETHEUS", &tools.prometheus)
        .env("COXSWAIN_TEST_CHROMIUM", &tools.chromium)
        .env("COXSWAIN_TEST_CHROMEDRIVER", &tools.chromedriver)
        .env("COXSWAIN_TEST_CRANE", &tools.crane)
        .env("COXSWAIN_TEST_REGISTRY", &tools.registry)
        .env("COXSWAIN_TEST_VELERO", &tools.velero.server)
        .env("COXSWAIN_TEST_VELERO_PLUGINS", &tools.velero.plugin_dir)
        .env("COXSWAIN_TEST_VERSITYGW", &tools.velero.s3)
        .env("COXSWAIN_TEST_IMAGE_COXSWAIN", &image_coxswain);
    eprintln!("running e2e targets: {}", targets.join(", "));
    let status = cmd.status().context("run cargo test for the e2e targets");

    let teardown = if args.keep {
        eprintln!(
            "cluster {CLUSTER} kept running: export KUBECONFIG={}",
            kubeconfig.display()
        );
        Ok(())
    } else {
        cluster::down(CLUSTER)
    };
    let status = status?;
    eprintln!("e2e run took {:.1}s", started.elapsed().as_secs_f64());
    if !status.success() {
        bail!("e2e tests failed ({status})");
    }
    teardown
}

/// Every `tests/e2e_*.rs`, each of which must be declared in Cargo.toml behind
/// the `e2e` feature, or a plain `cargo test` would run it without a cluster.
fn discover_targets() -> Result<Vec<String>> {
    let root = crate::workspace_root();
    let tests = root.join("tests");
    let manifest_path = root.join("Cargo.toml");
    let manifest = fs::read_to_string(&manifest_path)
        .with_context(|| format!("read {}", manifest_path.display()))?;
    let mut targets = Vec::new();
    for entry in fs::read_dir(&tests).with_context(|| format!("read {}", tests.display()))? {
        let entry = entry.with_context(|| format!("read an entry of {}", tests.display()))?;
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let Some(stem) = file.strip_suffix(".rs") else {
            continue;
        };
        if !stem.starts_with("e2e_") {
            continue;
        }
        let declared = manifest.contains(&format!("path = \"tests/{file}\""));
        if !declared {
            bail!(
                "tests/{file} is not declared in {}: add\n[[test]]\nname = \"{stem}\"\n\
                 path = \"tests/{file}\"\nrequired-features = [\"e2e\"]",
                manifest_path.display()
            );
        }
        targets.push(stem.to_owned());
    }
    if targets.is_empty() {
        bail!(
            "no e2e test targets (tests/e2e_*.rs) in {}",
            tests.display()
        );
    }
    targets.sort();
    Ok(targets)
}
