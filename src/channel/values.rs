//! Values are signed as written: YAML values (a spec's inline `values`, a `valuesFile`)
//! become JSON in the index, and helm reads that JSON into Go's `float64` numbers. Every
//! conversion that would change or lose something is refused, naming the path in the
//! values, instead of being signed silently:
//!
//! - keys that are not strings: integers and booleans become their decimal or
//!   `true`/`false` string (what helm's YAML-to-JSON reader does too), but a null, a
//!   floating-point, a sequence or a mapping as a key is refused;
//! - two keys that become the same string (`1:` and `"1":`, `true:` and `"true":`);
//! - integers beyond ±2^53 ([`MAX_EXACT_INTEGER`]): helm 3 and 4 read values with
//!   `sigs.k8s.io/yaml`, JSON numbers become `float64`, and 9007199254740993 is applied
//!   as 9007199254740992 (checked with the real helm: `toJson` of such a value);
//! - NaN and infinities, which JSON cannot hold (they would become `null`).

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The largest integer magnitude helm keeps exactly: 2^53, the last integer every
/// smaller one of which a `float64` represents.
pub const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// A YAML value as parsed, before it becomes JSON: keys keep their YAML type.
#[derive(Debug, Clone, PartialEq)]
pub enum YamlValue {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer (as wide as YAML allows here).
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// A string.
    String(String),
    /// A sequence.
    Seq(Vec<YamlValue>),
    /// A mapping, keys in document order.
    Map(Vec<(YamlValue, YamlValue)>),
}

impl<'de> Deserialize<'de> for YamlValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(YamlVisitor)
    }
}

struct YamlVisitor;

impl<'de> Visitor<'de> for YamlVisitor {
    type Value = YamlValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<YamlValue, E> {
        Ok(YamlValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<YamlValue, E> {
        Ok(YamlValue::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<YamlValue, E> {
        Ok(YamlValue::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<YamlValue, E> {
        Ok(YamlValue::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<YamlValue, E> {
        // Beyond i128 is far beyond what helm keeps: the check refuses it anyway.
        Ok(YamlValue::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<YamlValue, E> {
        Ok(YamlValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<YamlValue, E> {
        Ok(YamlValue::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<YamlValue, E> {
        Ok(YamlValue::String(v))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<YamlValue, E> {
        Err(E::custom("binary data has no JSON form"))
    }
    fn visit_none<E>(self) -> Result<YamlValue, E> {
        Ok(YamlValue::Null)
    }
    fn visit_unit<E>(self) -> Result<YamlValue, E> {
        Ok(YamlValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<YamlValue, D::Error> {
        YamlValue::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YamlValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(YamlValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YamlValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(YamlValue::Map(entries))
    }
}

/// A conversion that would change the values, at `path` (`image.tag`, `hosts[2]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("values at `{path}`: {problem}; coxswain signs values exactly as written")]
pub struct ValuesProblem {
    /// Where in the values (`.`-separated keys, `[n]` for sequence items; `(top)` for the
    /// document itself).
    pub path: String,
    /// What would change.
    pub problem: String,
}

fn describe_key(key: &YamlValue) -> &'static str {
    match key {
        YamlValue::Null => "a null key",
        YamlValue::Float(_) => "a floating-point key",
        YamlValue::Seq(_) => "a sequence as a key",
        YamlValue::Map(_) => "a mapping as a key",
        _ => "a key",
    }
}

fn join(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'));
    let key = if plain {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// Converts `value` to JSON, refusing what would change (see the module documentation).
pub fn to_json(value: &YamlValue) -> Result<Value, ValuesProblem> {
    convert(value, "")
}

/// Converts a document that must be a mapping (or empty) to a JSON object.
pub fn to_json_object(value: &YamlValue) -> Result<Option<Map<String, Value>>, ValuesProblem> {
    match to_json(value)? {
        Value::Null => Ok(Some(Map::new())),
        Value::Object(map) => Ok(Some(map)),
        _ => Ok(None),
    }
}

fn convert(value: &YamlValue, path: &str) -> Result<Value, ValuesProblem> {
    let problem = |problem: String| ValuesProblem {
        path: if path.is_empty() {
            "(top)".to_owned()
        } else {
            crate::bounded::bounded(path, crate::bounded::MAX_ECHO)
        },
        problem,
    };
    Ok(match value {
        YamlValue::Null => Value::Null,
        YamlValue::Bool(b) => Value::Bool(*b),
        YamlValue::Int(i) => {
            if i.unsigned_abs() > u128::from(MAX_EXACT_INTEGER) {
                return Err(problem(format!(
                    "the integer {i} is beyond ±2^53 ({MAX_EXACT_INTEGER}); helm reads values \
                     as float64 and would apply {} (write it as a string)",
                    *i as f64
                )));
            }
            // Within ±2^53, so within i64.
            Value::Number(Number::from(*i as i64))
        }
        YamlValue::Float(f) => match Number::from_f64(*f) {
            Some(n) => Value::Number(n),
            None => {
                return Err(problem(format!(
                    "{f} has no JSON form (it would become null)"
                )));
            }
        },
        YamlValue::String(s) => Value::String(s.clone()),
        YamlValue::Seq(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(n, item)| convert(item, &format!("{path}[{n}]")))
                .collect::<Result<_, _>>()?,
        ),
        YamlValue::Map(entries) => {
            let mut map = Map::new();
            let mut seen = BTreeSet::new();
            for (key, item) in entries {
                let name = match key {
                    YamlValue::String(s) => s.clone(),
                    YamlValue::Int(i) => i.to_string(),
                    YamlValue::Bool(b) => b.to_string(),
                    other => {
                        return Err(problem(format!(
                            "{} has no JSON form (keys become strings)",
                            describe_key(other)
                        )));
                    }
                };
                if !seen.insert(name.clone()) {
                    return Err(problem(format!(
                        "two keys become {name:?} once keys are strings (such as `1:` and \
                         `\"1\":`, or `true:` and `\"true\":`)"
                    )));
                }
                let converted = convert(item, &join(path, &name))?;
                map.insert(name, converted);
            }
            Value::Object(map)
        }
    })
}

/// `deserialize_with` for inline values: any YAML mapping, converted with [`to_json`].
pub fn deserialize_object<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Map<String, Value>>, D::Error> {
    let value = Option::<YamlValue>::deserialize(d)?;
    match value {
        None => Ok(None),
        Some(v) => match to_json_object(&v).map_err(de::Error::custom)? {
            Some(map) => Ok(Some(map)),
            None => Err(de::Error::custom("values must be a mapping")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Value, ValuesProblem> {
        to_json(&yaml(text).unwrap())
    }

    fn yaml(text: &str) -> Result<YamlValue, crate::yaml::YamlError> {
        crate::yaml::from_slice(
            text.as_bytes(),
            "t.yaml",
            crate::yaml::Limits::bytes(1 << 20),
        )
    }

    #[test]
    fn ordinary_values_convert_unchanged() {
        let v = parse(
            "a: 1\nb: [true, null, 1.5, \"x\"]\nc: {d: -9007199254740992}\n1: one\ntrue: t\n",
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": [true, null, 1.5, "x"], "c": {"d": -9007199254740992i64}, "1": "one", "true": "t"})
        );
    }

    #[test]
    fn keys_that_collide_as_strings_are_refused() {
        for (text, path, key) in [
            ("a:\n  1: x\n  \"1\": y\n", "a", "\"1\""),
            ("a:\n  -1: x\n  \"-1\": y\n", "a", "\"-1\""),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.path, path, "{text}");
            assert!(
                err.problem.contains(&format!("two keys become {key}")),
                "{err}"
            );
        }
        // serde-saphyr already compares `true` and `"true"` as keys: refused as a duplicate.
        assert!(matches!(
            yaml("true: x\n\"true\": y\n"),
            Err(crate::yaml::YamlError::DuplicateKey { .. })
        ));
        // Converted values themselves: the same rule.
        let built = YamlValue::Map(vec![
            (YamlValue::Bool(true), YamlValue::Null),
            (YamlValue::String("true".into()), YamlValue::Null),
        ]);
        assert!(
            to_json(&built)
                .unwrap_err()
                .problem
                .contains("two keys become \"true\"")
        );
    }

    #[test]
    fn keys_without_a_json_form_are_refused() {
        for (text, what) in [
            ("a:\n  ~: x\n", "a null key"),
            ("a:\n  1.5: x\n", "a floating-point key"),
            ("a:\n  ? [1, 2]\n  : x\n", "a sequence as a key"),
            ("a:\n  ? {b: 1}\n  : x\n", "a mapping as a key"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.path, "a", "{text}");
            assert!(err.problem.starts_with(what), "{text}: {err}");
        }
    }

    #[test]
    fn numbers_helm_would_change_are_refused() {
        let err = parse("image:\n  ids: [1, 9007199254740993]\n").unwrap_err();
        assert_eq!(err.path, "image.ids[1]");
        assert!(err.problem.contains("beyond ±2^53"), "{err}");
        assert!(err.problem.contains("9007199254740992"), "{err}");
        assert!(parse("n: -9007199254740993\n").is_err());
        assert!(parse("n: 9007199254740992\n").is_ok());
        // The YAML reader refuses non-finite floats already; the conversion would too.
        for nan in [".nan", ".inf", "-.inf"] {
            let err = yaml(&format!("x:\n  f: {nan}\n")).unwrap_err();
            assert!(err.to_string().contains("t.yaml"), "{err}");
        }
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let built = YamlValue::Map(vec![(YamlValue::String("f".into()), YamlValue::Float(f))]);
            let err = to_json(&built).unwrap_err();
            assert_eq!(err.path, "f");
            assert!(err.problem.contains("no JSON form"), "{err}");
        }
    }
}
