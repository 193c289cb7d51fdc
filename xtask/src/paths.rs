//! Where things live: the workspace checkout and the per-user cache.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // CARGO_MANIFEST_DIR is xtask/, always one level below the workspace root.
    let xtask = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().map(PathBuf::from).unwrap_or(xtask)
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/coxswain`: tool binaries and cluster state.
pub fn cache_root() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) else {
                bail!("neither XDG_CACHE_HOME nor HOME is set: no place for the coxswain cache");
            };
            PathBuf::from(home).join(".cache")
        }
    };
    let root = base.join("coxswain");
    std::fs::create_dir_all(&root)
        .with_context(|| format!("create the cache directory {}", root.display()))?;
    Ok(root)
}
