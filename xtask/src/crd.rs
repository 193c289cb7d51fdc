//! `cargo xtask crd`: writes the ChannelSubscription CRD from the Rust types.

use std::path::Path;

use anyhow::{Context, Result};

/// Where the chart keeps the generated CRD (relative to the workspace root).
pub const CRD_PATH: &str = "charts/coxswain/crds/channelsubscriptions.yaml";

/// Regenerates the CRD file; `tests/crd.rs` fails until this has been run after
/// a change to `src/agent/crd.rs`.
pub fn write(root: &Path) -> Result<()> {
    let path = root.join(CRD_PATH);
    let yaml = coxswain::crd::definition_yaml()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
