//! The checked-in JSON Schemas in channel-schema/ must be exactly what the types generate.

use std::path::Path;

#[test]
fn checked_in_schemas_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("channel-schema");
    let schemas = coxswain::format::schemas();
    assert_eq!(schemas.len(), 5, "one schema per document kind");
    let mut stale = Vec::new();
    for (kind, generated) in &schemas {
        let path = dir.join(format!("{kind}.schema.json"));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != *generated {
            stale.push(path.display().to_string());
        }
        // Each schema is valid JSON naming its own kind.
        let value: serde_json::Value = serde_json::from_str(generated).unwrap();
        assert_eq!(value["title"], *kind);
        assert_eq!(
            value["additionalProperties"], false,
            "{kind} must deny unknown fields"
        );
    }
    let mut extra = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".schema.json")
            && !schemas
                .iter()
                .any(|(k, _)| name == format!("{k}.schema.json"))
        {
            extra.push(name);
        }
    }
    assert!(
        stale.is_empty() && extra.is_empty(),
        "channel-schema/ is out of date (differs: {stale:?}, unknown: {extra:?}); run `cargo xtask schema`"
    );
}
