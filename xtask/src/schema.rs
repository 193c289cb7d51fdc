//! `cargo xtask schema`: writes channel-schema/<kind>.schema.json from the Rust types.
//! tests/schema.rs fails when the checked-in files differ from what this writes.

use std::path::Path;

use anyhow::{Context, Result};

/// Writes one JSON Schema per document kind and removes schema files of kinds that no
/// longer exist.
pub fn write(root: &Path) -> Result<()> {
    let dir = root.join("channel-schema");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let schemas = coxswain::format::schemas();
    for (kind, json) in &schemas {
        let path = dir.join(format!("{kind}.schema.json"));
        std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
    {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let known = schemas
            .iter()
            .any(|(kind, _)| name == format!("{kind}.schema.json"));
        if name.ends_with(".schema.json") && !known {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            println!("removed {}", path.display());
        }
    }
    Ok(())
}
