//! YAML reading for human-written inputs (channel specs, values files, Chart.yaml).
//!
//! Everything goes through serde-saphyr with explicit budgets: the size is checked
//! before parsing, nesting depth, node count and alias expansion are bounded
//! during parsing, and duplicate keys are errors. Error snippets are turned off:
//! they quote the input, and values files may hold secrets.

use serde::de::DeserializeOwned;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::options::AliasLimits;
use serde_saphyr::{
    Budget, DuplicateKeyPolicy, Error as SaphyrError, ExternalMessageSource, Options,
};

/// Bounds for one YAML document.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted input, checked before parsing.
    pub max_bytes: usize,
    /// Deepest accepted nesting of sequences and mappings.
    pub max_depth: usize,
    /// Most alias (`*ref`) uses.
    pub max_aliases: usize,
    /// Most parser events replayed through aliases in total: this is what stops an alias bomb.
    pub max_alias_replayed_events: usize,
    /// Most nodes (scalars, sequences, mappings).
    pub max_nodes: usize,
}

impl Limits {
    /// Budgets sized for a channel spec or a values file of `max_bytes`.
    pub const fn bytes(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            max_depth: 64,
            max_aliases: 1_000,
            max_alias_replayed_events: 100_000,
            max_nodes: 250_000,
        }
    }
}

/// Why a YAML document was rejected. `origin` names the file.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// Larger than the size cap; nothing was parsed.
    #[error("{origin}: {size} bytes is more than the limit of {limit} bytes")]
    TooLarge {
        /// The file.
        origin: String,
        /// Its size.
        size: usize,
        /// The cap it exceeded.
        limit: usize,
    },
    /// Not valid UTF-8.
    #[error("{origin}: not UTF-8 (invalid byte sequence at byte offset {offset})")]
    NotUtf8 {
        /// The file.
        origin: String,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Sequences/mappings nested deeper than the limit.
    #[error("{origin}: nested deeper than {limit} levels")]
    TooDeep {
        /// The file.
        origin: String,
        /// The depth bound.
        limit: usize,
    },
    /// Aliases used or expanded beyond the budget (an alias bomb, or close to one).
    #[error("{origin}: too many YAML aliases or alias expansions ({detail})")]
    AliasBudget {
        /// The file.
        origin: String,
        /// Which limit was hit.
        detail: String,
    },
    /// Another budget (node count, events, scalar bytes, documents) was exceeded.
    #[error("{origin}: YAML budget exceeded ({detail})")]
    Budget {
        /// The file.
        origin: String,
        /// Which limit was hit.
        detail: String,
    },
    /// The same key twice in one mapping.
    #[error("{origin}: duplicate mapping key")]
    DuplicateKey {
        /// The file.
        origin: String,
        /// serde-saphyr's description, with the location (boxed: the error is large).
        #[source]
        error: Box<SaphyrError>,
    },
    /// Syntax errors, wrong types, unknown or missing fields.
    #[error("{origin}: invalid YAML document")]
    Invalid {
        /// The file.
        origin: String,
        /// serde-saphyr's description, with the location (boxed: the error is large).
        #[source]
        error: Box<SaphyrError>,
    },
}

/// Parses one YAML document into `T` within `limits`.
pub fn from_slice<T: DeserializeOwned>(
    bytes: &[u8],
    origin: &str,
    limits: Limits,
) -> Result<T, YamlError> {
    let text = checked_text(bytes, origin, limits)?;
    serde_saphyr::from_str_with_options(text, options(limits))
        .map_err(|error| classify(error, origin, limits))
}

/// Parses a stream of YAML documents (separated by `---`) into one `T` each, within
/// `limits` for the whole stream and at most `max_documents` documents. Empty and null
/// documents are skipped, as Helm and kubectl skip them.
pub fn from_slice_multi<T: DeserializeOwned>(
    bytes: &[u8],
    origin: &str,
    limits: Limits,
    max_documents: usize,
) -> Result<Vec<T>, YamlError> {
    let text = checked_text(bytes, origin, limits)?;
    let mut options = options(limits);
    if let Some(budget) = options.budget.as_mut() {
        budget.max_documents = max_documents;
    }
    serde_saphyr::from_multiple_with_options(text, options)
        .map_err(|error| classify(error, origin, limits))
}

/// The input as text, when it is within the size cap (checked before anything
/// is parsed) and UTF-8.
fn checked_text<'a>(bytes: &'a [u8], origin: &str, limits: Limits) -> Result<&'a str, YamlError> {
    if bytes.len() > limits.max_bytes {
        return Err(YamlError::TooLarge {
            origin: origin.to_owned(),
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    std::str::from_utf8(bytes).map_err(|e| YamlError::NotUtf8 {
        origin: origin.to_owned(),
        offset: e.valid_up_to(),
    })
}

fn options(limits: Limits) -> Options {
    // Budget is non_exhaustive: start from its defaults and tighten field by field.
    let mut budget = Budget::default();
    budget.max_reader_input_bytes = Some(limits.max_bytes);
    budget.max_depth = limits.max_depth;
    // The scanner looks ahead in flow collections, so `[[[[...` trips this parser limit
    // before the event budget sees the depth; `classify` reports both as `TooDeep`.
    budget.flow_nesting_limit = limits.max_depth;
    budget.max_aliases = limits.max_aliases;
    budget.max_anchors = limits.max_aliases;
    budget.max_nodes = limits.max_nodes;
    budget.max_events = limits.max_nodes.saturating_mul(4);
    budget.max_total_scalar_bytes = limits.max_bytes;
    budget.max_documents = 1;
    budget.max_inclusion_depth = 0;
    budget.max_merge_keys = limits.max_aliases;
    let mut alias_limits = AliasLimits::default();
    alias_limits.max_total_replayed_events = limits.max_alias_replayed_events;
    alias_limits.max_replay_stack_depth = 16;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.alias_limits = alias_limits;
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    options
}

fn classify(error: SaphyrError, origin: &str, limits: Limits) -> YamlError {
    let origin = origin.to_owned();
    let inner = innermost(&error);
    match inner {
        SaphyrError::Budget { breach, .. } => match breach {
            BudgetBreach::Depth { .. } => YamlError::TooDeep {
                origin,
                limit: limits.max_depth,
            },
            BudgetBreach::Aliases { .. }
            | BudgetBreach::Anchors { .. }
            | BudgetBreach::AliasAnchorRatio { .. }
            | BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. } => YamlError::AliasBudget {
                origin,
                detail: format!("{breach:?}"),
            },
            other => YamlError::Budget {
                origin,
                detail: format!("{other:?}"),
            },
        },
        SaphyrError::AliasReplayLimitExceeded { .. }
        | SaphyrError::AliasExpansionLimitExceeded { .. }
        | SaphyrError::AliasReplayStackDepthExceeded { .. }
        | SaphyrError::AliasReplayCounterOverflow { .. } => YamlError::AliasBudget {
            origin,
            detail: inner.to_string(),
        },
        SaphyrError::ExternalMessage { source, .. }
            if matches!(
                &**source,
                ExternalMessageSource::Parser(scan)
                    if *scan.kind() == serde_saphyr::granit_parser::ErrorKind::RecursionLimitExceeded
            ) =>
        {
            YamlError::TooDeep {
                origin,
                limit: limits.max_depth,
            }
        }
        SaphyrError::DuplicateMappingKey { .. } => YamlError::DuplicateKey {
            origin,
            error: Box::new(error),
        },
        _ => YamlError::Invalid {
            origin,
            error: Box::new(error),
        },
    }
}

fn innermost(mut error: &SaphyrError) -> &SaphyrError {
    while let SaphyrError::AliasError { error: inner, .. }
    | SaphyrError::WithSnippet { error: inner, .. } = error
    {
        error = inner;
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const L: Limits = Limits::bytes(1 << 20);

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        name: String,
        #[serde(default)]
        values: serde_json::Map<String, serde_json::Value>,
    }

    #[test]
    fn reads_a_document_with_a_few_aliases() {
        let doc: Doc = from_slice(
            b"name: a\nvalues:\n  base: &b {x: 1}\n  copy: *b\n",
            "ok.yaml",
            L,
        )
        .unwrap();
        assert_eq!(doc.name, "a");
        assert_eq!(doc.values["copy"]["x"], 1);
    }

    #[test]
    fn rejects_an_alias_bomb() {
        let mut bomb = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (i, prev) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
            let next = ["b", "c", "d", "e", "f", "g", "h", "i"][i];
            bomb.push_str(&format!(
                "{next}: &{next} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
        }
        let err = from_slice::<serde_json::Value>(bomb.as_bytes(), "bomb.yaml", L).unwrap_err();
        assert!(matches!(err, YamlError::AliasBudget { .. }), "{err:?}");
        assert!(err.to_string().starts_with("bomb.yaml: "), "{err}");
    }

    #[test]
    fn rejects_deep_nesting() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = from_slice::<serde_json::Value>(deep.as_bytes(), "deep.yaml", L).unwrap_err();
        assert!(matches!(err, YamlError::TooDeep { .. }), "{err:?}");
        let mut block = String::new();
        for i in 0..200 {
            block.push_str(&" ".repeat(i));
            block.push_str("k:\n");
        }
        let err = from_slice::<serde_json::Value>(block.as_bytes(), "deep.yaml", L).unwrap_err();
        assert!(matches!(err, YamlError::TooDeep { .. }), "{err:?}");
    }

    #[test]
    fn rejects_duplicate_keys_size_and_non_utf8() {
        let err = from_slice::<Doc>(b"name: a\nname: b\n", "dup.yaml", L).unwrap_err();
        assert!(matches!(err, YamlError::DuplicateKey { .. }), "{err:?}");
        let err =
            from_slice::<Doc>(b"values:\n  x: 1\n  x: 2\nname: a\n", "dup.yaml", L).unwrap_err();
        assert!(matches!(err, YamlError::DuplicateKey { .. }), "{err:?}");
        let err = from_slice::<Doc>(b"name: a\n", "big.yaml", Limits::bytes(3)).unwrap_err();
        assert!(
            matches!(
                err,
                YamlError::TooLarge {
                    size: 8,
                    limit: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = from_slice::<Doc>(b"name: \xc3\x28\n", "bin.yaml", L).unwrap_err();
        assert!(
            matches!(err, YamlError::NotUtf8 { offset: 6, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_unknown_fields_and_multiple_documents() {
        let err = from_slice::<Doc>(b"name: a\nnope: 1\n", "u.yaml", L).unwrap_err();
        assert!(matches!(err, YamlError::Invalid { .. }), "{err:?}");
        let err = from_slice::<Doc>(b"name: a\n---\nname: b\n", "m.yaml", L).unwrap_err();
        assert!(
            matches!(err, YamlError::Invalid { .. } | YamlError::Budget { .. }),
            "{err:?}"
        );
    }
}
