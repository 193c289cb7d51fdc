//! Strict JSON reading for signed documents.
//!
//! serde_json alone accepts duplicate object keys (last wins), which gives one
//! byte string two plausible readings; it also only stops deep nesting at its own
//! recursion limit with a generic message. [`from_slice`] closes both gaps: the
//! size is checked before anything is parsed, the bytes must be UTF-8, and one
//! structural pass rejects duplicate keys and nesting deeper than
//! [`Limits::max_depth`] before the typed parse runs.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Nesting depth allowed by default: the index needs about six levels, Helm values a few dozen.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Bounds for one document.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted input, checked before parsing.
    pub max_bytes: usize,
    /// Deepest accepted nesting of arrays and objects (the top-level value is depth 1).
    pub max_depth: usize,
}

impl Limits {
    /// `max_bytes` with the default depth bound.
    pub const fn bytes(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Why a JSON document was rejected. `origin` names the file or URL.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Larger than the size cap; nothing was parsed.
    #[error("{origin}: {size} bytes is more than the limit of {limit} bytes")]
    TooLarge {
        /// The file or URL.
        origin: String,
        /// Its size.
        size: usize,
        /// The cap it exceeded.
        limit: usize,
    },
    /// Not valid UTF-8 (JSON must be).
    #[error("{origin}: not UTF-8 (invalid byte sequence at byte offset {offset})")]
    NotUtf8 {
        /// The file or URL.
        origin: String,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Arrays/objects nested deeper than the limit.
    #[error("{origin}: nested deeper than {limit} levels (line {line}, column {column})")]
    TooDeep {
        /// The file or URL.
        origin: String,
        /// The depth bound.
        limit: usize,
        /// Where the limit was crossed.
        line: usize,
        /// Where the limit was crossed.
        column: usize,
    },
    /// The same key twice in one object.
    #[error("{origin}: duplicate key `{key}` (line {line}, column {column})")]
    DuplicateKey {
        /// The file or URL.
        origin: String,
        /// The repeated key.
        key: String,
        /// Where the second occurrence ends.
        line: usize,
        /// Where the second occurrence ends.
        column: usize,
    },
    /// Syntax errors, wrong types, unknown or missing fields.
    #[error("{origin}: invalid JSON document")]
    Invalid {
        /// The file or URL.
        origin: String,
        /// serde_json's description, with line and column.
        #[source]
        error: serde_json::Error,
    },
}

/// The top-level `apiVersion` and `kind` strings, when present, seen during the structural pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// Top-level `apiVersion` if it is a string.
    pub api_version: Option<String>,
    /// Top-level `kind` if it is a string.
    pub kind: Option<String>,
}

/// Checks size, UTF-8, nesting and duplicate keys, and returns the document header.
pub fn check(bytes: &[u8], origin: &str, limits: Limits) -> Result<Header, JsonError> {
    if bytes.len() > limits.max_bytes {
        return Err(JsonError::TooLarge {
            origin: origin.to_owned(),
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(JsonError::NotUtf8 {
            origin: origin.to_owned(),
            offset: e.valid_up_to(),
        });
    }
    let state = State {
        max_depth: limits.max_depth,
        violation: RefCell::new(None),
        header: RefCell::new(Header::default()),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let walked = Walk {
        depth: 0,
        capture: false,
        top: true,
        state: &state,
    }
    .deserialize(&mut de)
    .and_then(|_| de.end());
    if let Err(error) = walked {
        let (line, column) = (error.line(), error.column());
        return Err(match state.violation.into_inner() {
            Some(Violation::TooDeep) => JsonError::TooDeep {
                origin: origin.to_owned(),
                limit: limits.max_depth,
                line,
                column,
            },
            Some(Violation::DuplicateKey(key)) => JsonError::DuplicateKey {
                origin: origin.to_owned(),
                key: crate::bounded::bounded(&key, crate::bounded::MAX_ECHO),
                line,
                column,
            },
            None => JsonError::Invalid {
                origin: origin.to_owned(),
                error,
            },
        });
    }
    Ok(state.header.into_inner())
}

/// Typed parse of bytes that already passed [`check`].
pub fn parse_checked<T: DeserializeOwned>(bytes: &[u8], origin: &str) -> Result<T, JsonError> {
    serde_json::from_slice(bytes).map_err(|error| JsonError::Invalid {
        origin: origin.to_owned(),
        error,
    })
}

/// [`check`] then the typed parse.
pub fn from_slice<T: DeserializeOwned>(
    bytes: &[u8],
    origin: &str,
    limits: Limits,
) -> Result<T, JsonError> {
    check(bytes, origin, limits)?;
    parse_checked(bytes, origin)
}

/// An object key, borrowed from the input when possible.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

enum Violation {
    TooDeep,
    DuplicateKey(String),
}

struct State {
    max_depth: usize,
    violation: RefCell<Option<Violation>>,
    header: RefCell<Header>,
}

impl State {
    fn fail<E: de::Error>(&self, violation: Violation) -> E {
        let message = match &violation {
            Violation::TooDeep => "nesting too deep".to_owned(),
            Violation::DuplicateKey(k) => format!("duplicate key `{k}`"),
        };
        *self.violation.borrow_mut() = Some(violation);
        E::custom(message)
    }
}

/// Walks any JSON value without building it; yields the string when `capture` is set.
struct Walk<'s> {
    depth: usize,
    capture: bool,
    top: bool,
    state: &'s State,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Option<String>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Walk<'_> {
    fn child(&self, capture: bool) -> Walk<'_> {
        Walk {
            depth: self.depth + 1,
            capture,
            top: false,
            state: self.state,
        }
    }

    fn enter<E: de::Error>(&self) -> Result<(), E> {
        if self.depth + 1 > self.state.max_depth {
            return Err(self.state.fail(Violation::TooDeep));
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.capture.then(|| v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.enter()?;
        while seq.next_element_seed(self.child(false))?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        self.enter()?;
        // Keys borrow from the input when they have no escapes: no allocation per key.
        let mut seen: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let wanted = self.top && (key == "apiVersion" || key == "kind");
            let value = map.next_value_seed(self.child(wanted))?;
            if wanted {
                let mut header = self.state.header.borrow_mut();
                if key == "apiVersion" {
                    header.api_version = value;
                } else {
                    header.kind = value;
                }
            }
            if seen.contains(&key) {
                return Err(self.state.fail(Violation::DuplicateKey(key.into_owned())));
            }
            seen.insert(key);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const L: Limits = Limits::bytes(1 << 20);

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        a: u32,
        #[serde(default)]
        b: serde_json::Value,
    }

    #[test]
    fn accepts_a_plain_document() {
        let doc: Doc = from_slice(br#"{"a": 1, "b": {"x": [1, {"y": 2}]}}"#, "t.json", L).unwrap();
        assert_eq!(doc.a, 1);
    }

    #[test]
    fn rejects_duplicate_keys_at_any_level() {
        let err = from_slice::<Doc>(br#"{"a": 1, "a": 2}"#, "t.json", L).unwrap_err();
        assert!(
            matches!(&err, JsonError::DuplicateKey { key, .. } if key == "a"),
            "{err}"
        );
        let err =
            from_slice::<Doc>(br#"{"a": 1, "b": {"x": 1, "x": 1}}"#, "t.json", L).unwrap_err();
        assert!(
            matches!(&err, JsonError::DuplicateKey { key, .. } if key == "x"),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("t.json: duplicate key `x`"),
            "{err}"
        );
        // An escaped spelling of the same key is the same key.
        let err = from_slice::<Doc>(br#"{"a": 1, "\u0061": 2}"#, "t.json", L).unwrap_err();
        assert!(
            matches!(&err, JsonError::DuplicateKey { key, .. } if key == "a"),
            "{err}"
        );
    }

    #[test]
    fn rejects_deep_nesting_with_a_clear_error() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = check(deep.as_bytes(), "deep.json", L).unwrap_err();
        assert!(matches!(err, JsonError::TooDeep { limit: 64, .. }), "{err}");
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        check(ok.as_bytes(), "ok.json", L).unwrap();
        let over = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(matches!(
            check(over.as_bytes(), "o.json", L),
            Err(JsonError::TooDeep { .. })
        ));
    }

    #[test]
    fn rejects_size_before_parsing() {
        let err = check(b"not even json", "big.json", Limits::bytes(4)).unwrap_err();
        assert!(
            matches!(
                err,
                JsonError::TooLarge {
                    size: 13,
                    limit: 4,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_non_utf8() {
        let err = check(b"{\"a\": \"\xff\"}", "bin.json", L).unwrap_err();
        assert!(matches!(err, JsonError::NotUtf8 { offset: 7, .. }), "{err}");
    }

    #[test]
    fn reports_the_header_and_trailing_garbage() {
        let h = check(
            br#"{"apiVersion": "coxswain.dev/v1", "kind": "X", "nested": {"kind": "Y"}}"#,
            "h.json",
            L,
        )
        .unwrap();
        assert_eq!(h.api_version.as_deref(), Some("coxswain.dev/v1"));
        assert_eq!(h.kind.as_deref(), Some("X"));
        assert!(matches!(
            check(br#"{"a": 1} x"#, "t.json", L),
            Err(JsonError::Invalid { .. })
        ));
        assert!(matches!(
            from_slice::<Doc>(br#"{"a": 1, "c": 2}"#, "t.json", L),
            Err(JsonError::Invalid { .. })
        ));
    }
}
