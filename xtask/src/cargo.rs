//! Running cargo from an xtask, and finding what it built.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Runs `cargo ARGS` in `root` (the cargo that runs this xtask), failing on a non-zero exit.
pub fn run(root: &Path, args: &[&str]) -> Result<()> {
    run_with_env(root, args, &[])
}

/// [`run`] with extra environment variables.
pub fn run_with_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The target directory: `CARGO_TARGET_DIR`, else `root/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}
