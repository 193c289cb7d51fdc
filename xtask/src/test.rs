//! `cargo xtask test`: every check and test the project has, in the order that
//! fails fastest — formatting, lints, unit and component tests, then the
//! end-to-end suite on a loopback cluster it starts and stops. This is the
//! README's test command and what `.ci/run` runs.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{e2e, tools};

/// Run everything; fails on the first step that fails.
pub fn run() -> Result<()> {
    let root = crate::workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut timings = Vec::new();

    let mut step = |name: &str, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        eprintln!("==> {name}");
        let started = Instant::now();
        let result = f().with_context(|| format!("step `{name}` failed"));
        timings.push((name.to_owned(), started.elapsed().as_secs_f64()));
        result
    };
    let cargo_step = |args: &[&str], env: &[(&str, &std::path::Path)]| -> Result<()> {
        let mut cmd = Command::new(&cargo);
        cmd.args(args).current_dir(&root);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let status = cmd
            .status()
            .with_context(|| format!("run cargo {}", args.join(" ")))?;
        if !status.success() {
            bail!("cargo {} exited with {status}", args.join(" "));
        }
        Ok(())
    };

    step("fmt", &mut || {
        cargo_step(&["fmt", "--all", "--", "--check"], &[])
    })?;
    step("clippy", &mut || {
        cargo_step(
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )
    })?;
    // The component tests run the real helm (rendering, packaging checks) and
    // promtool (alert rules, dashboard queries), so the tools are built and the
    // Debian packages installed first; the first build on a fresh machine takes
    // ~12 minutes.
    let mut built = None;
    step("tools", &mut || {
        built = Some(tools::ensure()?);
        Ok(())
    })?;
    let tools = built.context("tools step returned no tools")?;
    step("unit and component tests", &mut || {
        cargo_step(
            &["test", "--workspace"],
            &[
                ("COXSWAIN_TEST_HELM", &tools.helm4),
                ("COXSWAIN_TEST_HELM3", &tools.helm3),
                ("COXSWAIN_TEST_KUBECTL", &tools.kubectl),
                ("COXSWAIN_TEST_PROMTOOL", &tools.promtool),
                ("COXSWAIN_TEST_PROMETHEUS", &tools.prometheus),
                ("COXSWAIN_TEST_CHROMIUM", &tools.chromium),
                ("COXSWAIN_TEST_CHROMEDRIVER", &tools.chromedriver),
                // tests/upstream.rs reads a real registry filled by crane.
                ("COXSWAIN_TEST_CRANE", &tools.crane),
                ("COXSWAIN_TEST_REGISTRY", &tools.registry),
            ],
        )
    })?;
    step("end-to-end tests", &mut || {
        e2e::run(&e2e::E2eArgs::default())
    })?;

    eprintln!("\ncargo xtask test: every step passed");
    for (name, seconds) in &timings {
        eprintln!("  {name:<26} {seconds:>7.1}s");
    }
    Ok(())
}
