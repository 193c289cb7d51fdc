//! Rewrites scalars of a YAML file in place: only the bytes of the scalars change, so
//! comments, order, quoting and formatting of the rest stay byte-identical.
//!
//! The file is read event by event (the parser gives each scalar's position); an edit
//! names the scalar by its path of mapping keys and sequence indexes. A scalar reached
//! through an anchor or alias, or a path that does not lead to a scalar, is refused:
//! rewriting it would change more than the one value. The caller re-reads the result
//! to check that exactly the intended values changed.

use granit_parser::{Event, Parser, ScalarStyle};

/// One step of a path into a YAML document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// One scalar to rewrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    /// Where it is.
    pub path: Vec<Step>,
    /// Its new text (a version, tag or digest).
    pub value: String,
}

/// Renders a path for messages: `releases[2].values.image.tag`.
pub fn show(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Where a container is in the walk, and where the next node goes.
enum Frame {
    Mapping {
        key: Option<String>,
        expect_key: bool,
    },
    Sequence {
        next: usize,
    },
}

/// A scalar found at an edited path: its byte range and style.
struct Found {
    start: usize,
    end: usize,
    style: ScalarStyle,
}

/// Applies `edits` to `text`; each must name an existing plain or quoted scalar.
pub fn apply(text: &str, edits: &[Edit]) -> Result<String, String> {
    let mut found: Vec<Option<Found>> = edits.iter().map(|_| None).collect();
    let mut frames: Vec<Frame> = Vec::new();
    let mut path: Vec<Step> = Vec::new();
    // Byte offset of each char index, for the parser's char-based markers.
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let byte = |chars: usize| offsets.get(chars).copied();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| format!("not valid YAML: {e}"))?;
        // A node in a mapping value or sequence item position gets its path step.
        let step = match frames.last_mut() {
            Some(Frame::Mapping { key, expect_key }) => {
                if *expect_key {
                    None
                } else {
                    key.clone().map(Step::Key)
                }
            }
            Some(Frame::Sequence { next }) => Some(Step::Index(*next)),
            None => None,
        };
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::Alias(..)
        );
        if !is_node {
            match event {
                Event::SequenceEnd | Event::MappingEnd => {
                    frames.pop();
                    path.pop();
                    finish_node(&mut frames);
                }
                _ => {}
            }
            continue;
        }
        // A key of a mapping: remember it, no path step.
        if let Some(Frame::Mapping { key, expect_key }) = frames.last_mut()
            && *expect_key
        {
            *key = match &event {
                Event::Scalar(text, ..) => Some(text.to_string()),
                _ => None,
            };
            *expect_key = false;
            if !matches!(event, Event::Scalar(..)) {
                return Err(format!(
                    "line {}: a complex mapping key; the file cannot be edited safely",
                    span.start.line()
                ));
            }
            continue;
        }
        let mut here = path.clone();
        here.extend(step);
        let targeted = |p: &[Step]| edits.iter().position(|e| e.path == p);
        let prefix_of_target = |p: &[Step]| edits.iter().any(|e| e.path.starts_with(p));
        match &event {
            Event::Scalar(_, style, anchor, tag) => {
                if let Some(i) = targeted(&here) {
                    if *anchor != 0 || tag.is_some() {
                        return Err(format!(
                            "{}: line {}: the value has an anchor or tag; edit it by hand",
                            show(&here),
                            span.start.line()
                        ));
                    }
                    let (Some(start), Some(end)) =
                        (byte(span.start.index()), byte(span.end.index()))
                    else {
                        return Err(format!("{}: position out of range", show(&here)));
                    };
                    found[i] = Some(Found {
                        start,
                        end,
                        style: *style,
                    });
                }
                finish_node(&mut frames);
            }
            Event::Alias(_) => {
                if prefix_of_target(&here) {
                    return Err(format!(
                        "{}: line {}: reached through an alias; edit it by hand",
                        show(&here),
                        span.start.line()
                    ));
                }
                finish_node(&mut frames);
            }
            Event::SequenceStart(_, anchor, _) | Event::MappingStart(_, anchor, _) => {
                if *anchor != 0 && prefix_of_target(&here) {
                    return Err(format!(
                        "{}: line {}: inside an anchored node; edit it by hand",
                        show(&here),
                        span.start.line()
                    ));
                }
                path = here;
                frames.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Mapping {
                        key: None,
                        expect_key: true,
                    }
                } else {
                    Frame::Sequence { next: 0 }
                });
            }
            _ => {}
        }
    }
    // Replace from the end so earlier offsets stay valid.
    let mut located: Vec<(&Edit, Found)> = Vec::new();
    for (edit, found) in edits.iter().zip(found) {
        let found =
            found.ok_or_else(|| format!("{}: no such value in the file", show(&edit.path)))?;
        located.push((edit, found));
    }
    located.sort_by_key(|(_, f)| std::cmp::Reverse(f.start));
    let mut out = text.to_owned();
    for (edit, f) in located {
        check_value(&edit.value).map_err(|e| format!("{}: {e}", show(&edit.path)))?;
        let original = &text[f.start..f.end];
        let replacement = match f.style {
            ScalarStyle::Plain if plain_is_string(&edit.value) => edit.value.clone(),
            ScalarStyle::Plain => format!("\"{}\"", edit.value),
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                let quote = if matches!(f.style, ScalarStyle::SingleQuoted) {
                    '\''
                } else {
                    '"'
                };
                if original.starts_with(quote) && original.ends_with(quote) && original.len() >= 2 {
                    format!("{quote}{}{quote}", edit.value)
                } else {
                    // The span covers the inside of the quotes.
                    edit.value.clone()
                }
            }
            _ => {
                return Err(format!(
                    "{}: a block scalar; edit it by hand",
                    show(&edit.path)
                ));
            }
        };
        out.replace_range(f.start..f.end, &replacement);
    }
    Ok(out)
}

/// After the scalar or collection that filled a slot: a mapping expects its next key,
/// a sequence its next index.
fn finish_node(frames: &mut [Frame]) {
    match frames.last_mut() {
        Some(Frame::Mapping { expect_key, .. }) => *expect_key = true,
        Some(Frame::Sequence { next }) => *next += 1,
        None => {}
    }
}

/// New values are versions, tags and digests: nothing that needs escaping in YAML.
fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty()
        || value.len() > 256
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+:".contains(&b))
    {
        return Err(format!(
            "`{}` is not a version, tag or digest",
            crate::bounded::bounded(value, crate::bounded::MAX_ECHO)
        ));
    }
    Ok(())
}

/// Whether a plain scalar with this text is read as a string by YAML 1.1 and 1.2 readers
/// (helm's included): not a number, boolean, null or timestamp-like.
fn plain_is_string(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let keyword = matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    );
    let numeric = value
        .trim_start_matches(['+', '-'])
        .replace(['_', '.', 'e', 'E', '+', '-', ':'], "")
        .bytes()
        .all(|b| b.is_ascii_digit())
        && value.bytes().filter(|b| *b == b'.').count() <= 1;
    let starts_indicator = value.starts_with(['-', ':', '+']);
    !(keyword || numeric || starts_indicator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str) -> Vec<Step> {
        path.split('.')
            .map(|p| match p.parse::<usize>() {
                Ok(i) => Step::Index(i),
                Err(_) => Step::Key(p.to_owned()),
            })
            .collect()
    }

    const SPEC: &str = r#"# The stable channel.
apiVersion: coxswain.dev/v1
releases:
  - name: app   # the app
    chart:
      repo: {url: "https://charts.example", name: app, version: 1.2.3}
    values:
      image:
        tag: "1.27.0"     # pinned
        digest: ''
      sidecar: {image: {tag: v0.9}}
  - name: other
    chart:
      oci:
        ref: oci://r.example/other
        version: '2.0.0'
"#;

    #[test]
    fn only_the_edited_scalars_change() {
        let edits = [
            Edit {
                path: key("releases.0.chart.repo.version"),
                value: "1.3.0".into(),
            },
            Edit {
                path: key("releases.0.values.image.tag"),
                value: "1.27.1".into(),
            },
            Edit {
                path: key("releases.0.values.image.digest"),
                value: format!("sha256:{}", "a".repeat(64)),
            },
            Edit {
                path: key("releases.0.values.sidecar.image.tag"),
                value: "v0.10".into(),
            },
            Edit {
                path: key("releases.1.chart.oci.version"),
                value: "2.1.0".into(),
            },
        ];
        let out = apply(SPEC, &edits).unwrap();
        let expected = SPEC
            .replace("version: 1.2.3}", "version: 1.3.0}")
            .replace("tag: \"1.27.0\"", "tag: \"1.27.1\"")
            .replace(
                "digest: ''",
                &format!("digest: 'sha256:{}'", "a".repeat(64)),
            )
            .replace("tag: v0.9}", "tag: v0.10}")
            .replace("version: '2.0.0'", "version: '2.1.0'");
        assert_eq!(out, expected);
    }

    #[test]
    fn a_plain_value_that_yaml_would_read_as_a_number_is_quoted() {
        let out = apply(
            "tag: v1\n",
            &[Edit {
                path: key("tag"),
                value: "1.10".into(),
            }],
        )
        .unwrap();
        assert_eq!(out, "tag: \"1.10\"\n");
        let out = apply(
            "tag: v1\n",
            &[Edit {
                path: key("tag"),
                value: "1.10.2".into(),
            }],
        )
        .unwrap();
        assert_eq!(out, "tag: 1.10.2\n");
    }

    #[test]
    fn what_cannot_be_edited_safely_is_refused() {
        for (text, path, says) in [
            ("a: 1\n", "b", "no such value"),
            (
                "base: &b {tag: x}\nimage: *b\n",
                "image.tag",
                "through an alias",
            ),
            (
                "image: &b {tag: x}\n",
                "image.tag",
                "inside an anchored node",
            ),
            ("tag: &t x\n", "tag", "anchor or tag"),
            ("tag: !!str x\n", "tag", "anchor or tag"),
            ("tag: |\n  x\n", "tag", "block scalar"),
            ("tag: [\n", "tag", "not valid YAML"),
        ] {
            let e = apply(
                text,
                &[Edit {
                    path: key(path),
                    value: "1.0.0".into(),
                }],
            )
            .unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
        let e = apply(
            "tag: x\n",
            &[Edit {
                path: key("tag"),
                value: "1\n#".into(),
            }],
        )
        .unwrap_err();
        assert!(e.contains("not a version, tag or digest"), "{e}");
    }

    #[test]
    fn non_ascii_text_before_an_edit_keeps_offsets_right() {
        let text = "note: \"héllo wörld\" # ünïcode\ntag: 1.0.0\n";
        let out = apply(
            text,
            &[Edit {
                path: key("tag"),
                value: "1.0.1".into(),
            }],
        )
        .unwrap();
        assert_eq!(out, text.replace("1.0.0", "1.0.1"));
    }
}
