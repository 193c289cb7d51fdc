//! Where the per-user cache lives.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

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
