//! The checked-in ChannelSubscription CRD matches the Rust types, and is a
//! valid `apiextensions.k8s.io/v1` definition with a structural schema.
//!
//! The structural rules checked here are the API server's
//! (k8s.io/apiextensions-apiserver `ValidateStructural` and CRD validation),
//! restated for the subset of JSON Schema our generator can emit.

use std::collections::BTreeSet;
use std::path::Path;

use coxswain::crd::{ChannelSubscription, YAML_HEADER, definition, definition_yaml};
use serde_json::Value;

const CRD_FILE: &str = "charts/coxswain/crds/channelsubscriptions.yaml";

fn checked_in() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CRD_FILE);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask crd`", path.display()))
}

fn parsed() -> Value {
    serde_saphyr::from_str(&checked_in()).expect("the CRD file is YAML")
}

#[test]
fn checked_in_crd_matches_the_types() {
    let want = definition_yaml().unwrap();
    let have = checked_in();
    assert!(
        have == want,
        "{CRD_FILE} is out of date with src/agent/crd.rs: run `cargo xtask crd` and commit the result"
    );
    assert!(have.starts_with(YAML_HEADER));
    // The YAML reads back as the same definition the agent would apply.
    let typed: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_saphyr::from_str(&have).unwrap();
    assert_eq!(typed, definition().unwrap());
}

#[test]
fn definition_header_names_group_kind_and_scope() {
    let crd = parsed();
    assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], "channelsubscriptions.coxswain.dev");
    let spec = &crd["spec"];
    assert_eq!(spec["group"], "coxswain.dev");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["kind"], "ChannelSubscription");
    assert_eq!(spec["names"]["plural"], "channelsubscriptions");
    let versions = spec["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    let v = &versions[0];
    assert_eq!(v["name"], "v1alpha1");
    assert_eq!(v["served"], true);
    assert_eq!(v["storage"], true);
    assert!(
        v["subresources"]["status"].is_object(),
        "status subresource"
    );
}

#[test]
fn printer_columns_point_at_schema_fields() {
    let crd = parsed();
    let version = &crd["spec"]["versions"][0];
    let root = &version["schema"]["openAPIV3Schema"];
    let columns = version["additionalPrinterColumns"].as_array().unwrap();
    let names: Vec<&str> = columns
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Channel",
            "Sequence",
            "Ready",
            "UpToDate",
            "Failed",
            "Last Check",
            "Age"
        ]
    );
    for column in columns {
        let path = column["jsonPath"].as_str().unwrap();
        let ty = column["type"].as_str().unwrap();
        assert!(
            ["string", "integer", "date", "number", "boolean"].contains(&ty),
            "{path}: {ty}"
        );
        if path == ".metadata.creationTimestamp" {
            continue;
        }
        let field = resolve(root, path).unwrap_or_else(|| panic!("{path} is not in the schema"));
        let field_type = field["type"].as_str().unwrap();
        let expected = match ty {
            "date" => "string",
            other => other,
        };
        assert_eq!(field_type, expected, "{path}");
        if ty == "date" {
            assert_eq!(field["format"], "date-time", "{path}");
        }
    }
}

/// Follows `.a.b[?(@.type=="X")].c` through `properties` and `items`.
fn resolve<'a>(mut node: &'a Value, path: &str) -> Option<&'a Value> {
    // Split on the dots outside brackets; a bracket means "an item of this list".
    let mut segments: Vec<(String, bool)> = vec![];
    let mut depth = 0;
    for c in path.trim_start_matches('.').chars() {
        match c {
            '[' => {
                depth += 1;
                segments.last_mut()?.1 = true;
            }
            ']' => depth -= 1,
            '.' if depth == 0 => segments.push((String::new(), false)),
            _ if depth > 0 => {}
            c => match segments.last_mut() {
                Some(last) => last.0.push(c),
                None => segments.push((c.to_string(), false)),
            },
        }
    }
    for (name, is_list) in segments {
        node = node.get("properties")?.get(&name)?;
        if is_list {
            node = node.get("items")?;
        }
    }
    Some(node)
}

/// Every keyword of `JSONSchemaProps` (apiextensions/v1). Anything else is
/// dropped or refused by the API server.
const KEYWORDS: &[&str] = &[
    "id",
    "$schema",
    "$ref",
    "description",
    "type",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "definitions",
    "externalDocs",
    "example",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// Formats the API server recognizes without a warning (the subset we emit).
const FORMATS: &[&str] = &["int32", "int64", "date-time", "byte", "double", "float"];

fn check_structural(node: &Value, at: &str, problems: &mut Vec<String>) {
    let Some(map) = node.as_object() else {
        problems.push(format!("{at}: a schema must be an object, found {node}"));
        return;
    };
    for key in map.keys() {
        if !KEYWORDS.contains(&key.as_str()) {
            problems.push(format!("{at}: `{key}` is not a JSONSchemaProps field"));
        }
    }
    // Forbidden in structural schemas, or unsupported by the API server.
    for key in [
        "$ref",
        "definitions",
        "id",
        "$schema",
        "patternProperties",
        "dependencies",
        "additionalItems",
    ] {
        if map.contains_key(key) {
            problems.push(format!(
                "{at}: `{key}` is not allowed in a structural schema"
            ));
        }
    }
    // Our generator should never need the logical junctors; if it does, the
    // kube rewriter failed and the type/description rules below would bite.
    for key in ["allOf", "oneOf", "anyOf", "not"] {
        if map.contains_key(key) {
            problems.push(format!("{at}: `{key}` left in the schema"));
        }
    }
    if map.get("uniqueItems") == Some(&Value::Bool(true)) {
        problems.push(format!(
            "{at}: uniqueItems: true is not supported (use x-kubernetes-list-type: set)"
        ));
    }
    let preserve = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let int_or_string = map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let ty = match map.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(other) => {
            problems.push(format!("{at}: type must be one string, found {other}"));
            return;
        }
        None if preserve || int_or_string => "",
        None => {
            problems.push(format!("{at}: type is missing"));
            return;
        }
    };
    if ![
        "", "object", "array", "string", "integer", "number", "boolean",
    ]
    .contains(&ty)
    {
        problems.push(format!("{at}: unknown type `{ty}`"));
    }
    if let Some(format) = map.get("format").and_then(Value::as_str)
        && !FORMATS.contains(&format)
    {
        problems.push(format!("{at}: format `{format}` makes the API server warn"));
    }
    if map.contains_key("properties") && map.contains_key("additionalProperties") {
        problems.push(format!(
            "{at}: properties and additionalProperties together"
        ));
    }
    if let Some(additional) = map.get("additionalProperties")
        && !additional.is_object()
    {
        problems.push(format!(
            "{at}: additionalProperties must be a schema (found {additional}); use x-kubernetes-preserve-unknown-fields"
        ));
    }
    if ty == "object"
        && !preserve
        && !map.contains_key("properties")
        && !map.contains_key("additionalProperties")
    {
        problems.push(format!(
            "{at}: an object without properties is pruned empty"
        ));
    }
    if ty != "object"
        && (map.contains_key("properties") || map.contains_key("additionalProperties"))
    {
        problems.push(format!("{at}: properties on a {ty}"));
    }
    if ty == "array" && !map.get("items").is_some_and(Value::is_object) {
        problems.push(format!("{at}: an array needs one items schema"));
    }
    if let Some(required) = map.get("required") {
        let props = map.get("properties").and_then(Value::as_object);
        for name in required.as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !props.is_some_and(|p| p.contains_key(name)) {
                problems.push(format!("{at}: required `{name}` is not a property"));
            }
        }
    }
    if let Some(list_type) = map.get("x-kubernetes-list-type").and_then(Value::as_str) {
        let items = &map["items"];
        match list_type {
            "set" => {
                if !matches!(
                    items["type"].as_str(),
                    Some("string" | "integer" | "number" | "boolean")
                ) {
                    problems.push(format!("{at}: a set needs scalar items"));
                }
            }
            "map" => {
                let keys = map["x-kubernetes-list-map-keys"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if keys.is_empty() {
                    problems.push(format!("{at}: a list map needs x-kubernetes-list-map-keys"));
                }
                let required: BTreeSet<&str> = items["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                for key in keys {
                    let key = key.as_str().unwrap_or_default();
                    if !required.contains(key) {
                        problems.push(format!(
                            "{at}: list map key `{key}` must be required in items"
                        ));
                    }
                }
            }
            "atomic" => {}
            other => problems.push(format!("{at}: unknown x-kubernetes-list-type `{other}`")),
        }
    }
    if let Some(default) = map.get("default") {
        check_default(default, map, at, problems);
    }
    if let Some(values) = map.get("enum") {
        for v in values.as_array().into_iter().flatten() {
            if !json_type_fits(v, ty) {
                problems.push(format!("{at}: enum value {v} is not a {ty}"));
            }
        }
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let here = format!("{at}.{name}");
            if prop
                .get("description")
                .and_then(Value::as_str)
                .is_none_or(|d| d.trim().is_empty())
            {
                problems.push(format!("{here}: no description for kubectl explain"));
            }
            check_structural(prop, &here, problems);
        }
    }
    if let Some(additional) = map.get("additionalProperties").filter(|a| a.is_object()) {
        check_structural(additional, &format!("{at}.*"), problems);
    }
    if let Some(items) = map.get("items").filter(|i| i.is_object()) {
        check_structural(items, &format!("{at}[]"), problems);
    }
}

fn json_type_fits(v: &Value, ty: &str) -> bool {
    match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

/// Defaults must validate against their schema (the API server refuses them otherwise).
fn check_default(
    default: &Value,
    map: &serde_json::Map<String, Value>,
    at: &str,
    problems: &mut Vec<String>,
) {
    let ty = map.get("type").and_then(Value::as_str).unwrap_or_default();
    if !json_type_fits(default, ty) {
        problems.push(format!("{at}: default {default} is not a {ty}"));
        return;
    }
    if let Some(values) = map.get("enum").and_then(Value::as_array)
        && !values.contains(default)
    {
        problems.push(format!("{at}: default {default} is not in the enum"));
    }
    if let Some(n) = default.as_f64() {
        if map
            .get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|min| n < min)
            || map
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|max| n > max)
        {
            problems.push(format!("{at}: default {default} is out of bounds"));
        }
    }
    if let (Some(text), Some(pattern)) =
        (default.as_str(), map.get("pattern").and_then(Value::as_str))
    {
        // The only patterned defaults are durations.
        if pattern == coxswain::duration::PATTERN
            && coxswain::duration::Duration::parse(text).is_err()
        {
            problems.push(format!("{at}: default {default} does not match {pattern}"));
        }
    }
}

#[test]
fn schema_is_structural_and_documented() {
    let crd = parsed();
    let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut problems = Vec::new();
    check_structural(root, "", &mut problems);
    if let Some(metadata) = root["properties"].get("metadata") {
        problems.push(format!("metadata must not be specified: {metadata}"));
    }
    assert!(
        problems.is_empty(),
        "not a structural schema:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_catches_what_it_claims_to() {
    // A check that cannot fail is no check: feed it known-bad schemas.
    let cases: &[(&str, Value)] = &[
        ("type is missing", serde_json::json!({"description": "x"})),
        (
            "properties and additionalProperties together",
            serde_json::json!({"type": "object", "properties": {"a": {"type": "string", "description": "a"}}, "additionalProperties": {"type": "string"}}),
        ),
        (
            "additionalProperties must be a schema",
            serde_json::json!({"type": "object", "additionalProperties": true}),
        ),
        (
            "makes the API server warn",
            serde_json::json!({"type": "integer", "format": "uint32"}),
        ),
        (
            "left in the schema",
            serde_json::json!({"type": "string", "anyOf": [{"type": "string"}]}),
        ),
        (
            "no description",
            serde_json::json!({"type": "object", "properties": {"a": {"type": "string"}}}),
        ),
        (
            "is not a string",
            serde_json::json!({"type": "string", "default": 5}),
        ),
        (
            "out of bounds",
            serde_json::json!({"type": "integer", "minimum": 1, "default": 0}),
        ),
        (
            "does not match",
            serde_json::json!({"type": "string", "pattern": coxswain::duration::PATTERN, "default": "5 min"}),
        ),
        (
            "not a JSONSchemaProps field",
            serde_json::json!({"type": "string", "examples": ["a"]}),
        ),
        (
            "must be required in items",
            serde_json::json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object", "properties": {"type": {"type": "string", "description": "t"}}}}),
        ),
        (
            "type must be one string",
            serde_json::json!({"type": ["string", "null"]}),
        ),
    ];
    for (expected, schema) in cases {
        let mut problems = Vec::new();
        check_structural(schema, "", &mut problems);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected `{expected}` for {schema}, got {problems:?}"
        );
    }
}

#[test]
fn a_sample_subscription_reads_as_the_type() {
    let sample = r#"
apiVersion: coxswain.dev/v1alpha1
kind: ChannelSubscription
metadata:
  name: stack
  namespace: coxswain
spec:
  server: https://updates.example.org/stack
  channel: stable
  trustRef: {kind: ConfigMap, name: coxswain-trust, key: root.json}
  interval: 10m
  pins: {wiki: 0.3.1}
  holds: [files]
  values:
    sso:
      valuesFrom:
        - {kind: Secret, name: sso-values, key: values.yaml}
  concurrency: 2
  rollbackPolicy: channel
"#;
    let sub: ChannelSubscription = serde_saphyr::from_str(sample).unwrap();
    assert_eq!(sub.spec.channel, "stable");
    assert_eq!(sub.spec.pins["wiki"], "0.3.1");
    assert_eq!(sub.spec.concurrency, 2);
}
