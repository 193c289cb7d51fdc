//! `Chart.yaml` (and a v1 chart's `requirements.yaml`) read so that coxswain and Helm
//! cannot disagree about what they say.
//!
//! Helm reads these files with `sigs.k8s.io/yaml`: YAML 1.1 (go-yaml v2) turned into
//! JSON, then Go's `encoding/json` into its `Metadata` struct. Three things in that path
//! read differently from a plain YAML parser, and each is refused here instead of being
//! guessed at:
//!
//! - **Key case**: Go's JSON decoding matches keys case-insensitively (with Unicode
//!   simple folding, so `K` U+212A is `k` and `ſ` U+017F is `s`): `Version:` or `NAME:`
//!   set the same field as `version:` and `name:`, and which one wins depends on order.
//!   A key that folds onto a known field without being spelled like it is refused.
//! - **Scalar types**: YAML 1.1 reads plain `1.10` as the float 1.1, `010` as the
//!   octal 8, `on` as `true`; Helm then turns the number back into the string `"1.1"`.
//!   A plain scalar that YAML 1.1 or 1.2 would not read as a string is refused in the
//!   fields coxswain reads (apiVersion, name, version, and a dependency's name, version,
//!   alias, condition, repository): quote it.
//! - **Anchors, aliases, merge keys (`<<`), tags and several documents**: YAML features
//!   whose expansion differs between parsers; none has a use in Chart.yaml.
//!
//! Duplicate keys are refused too. Keys Helm does not know are ignored, as Helm ignores
//! them.

use granit_parser::{Event, Parser, ScalarStyle};

use super::ChartErrorKind;
use crate::format::ChartVersion;

/// The chart API versions Helm 3 and 4 load (`v1`: Helm 2 charts; a missing
/// `apiVersion` is `v1`, as Helm reads it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartApiVersion {
    /// Helm 2 charts; dependencies in `requirements.yaml`.
    V1,
    /// Helm 3 and later; dependencies in `Chart.yaml`.
    V2,
}

impl ChartApiVersion {
    /// As written in Chart.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

/// One declared dependency (`dependencies:` in Chart.yaml, or in `requirements.yaml`
/// for a v1 chart): the fields coxswain checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The subchart's name (its Chart.yaml `name`).
    pub name: String,
    /// The version constraint, if any.
    pub version: Option<String>,
    /// The name it is used under, if any.
    pub alias: Option<String>,
    /// Where it comes from (`https://...`, `oci://...`, `file://...`, `@name`), if set.
    pub repository: Option<String>,
    /// The entry as Go's `json.Marshal` writes Helm's `chart.Dependency` (what the
    /// `digest` of `Chart.lock` is taken over), or why it cannot be written exactly.
    pub helm_json: Result<String, String>,
}

/// What coxswain reads from `Chart.yaml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartMetadata {
    /// `v1` or `v2` (`v1` when absent).
    pub api_version: ChartApiVersion,
    /// The chart's name, as written.
    pub name: String,
    /// The chart's version, as written.
    pub version: ChartVersion,
    /// Declared dependencies (Chart.yaml's; for v1, see [`parse_requirements`]).
    pub dependencies: Vec<Dependency>,
}

/// A parsed YAML node: only what Chart.yaml may hold.
#[derive(Debug)]
enum Node {
    Scalar { value: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// The fields of Helm's `chart.Metadata`, by their JSON names.
const METADATA_KEYS: &[&str] = &[
    "name",
    "home",
    "sources",
    "version",
    "description",
    "keywords",
    "maintainers",
    "icon",
    "apiVersion",
    "condition",
    "tags",
    "appVersion",
    "deprecated",
    "annotations",
    "kubeVersion",
    "dependencies",
    "type",
];

/// The fields of Helm's `chart.Dependency`.
const DEPENDENCY_KEYS: &[&str] = &[
    "name",
    "version",
    "repository",
    "condition",
    "tags",
    "enabled",
    "import-values",
    "alias",
];

/// The fields of Helm's `chart.Maintainer`.
const MAINTAINER_KEYS: &[&str] = &["name", "email", "url"];

const MAX_DEPTH: usize = 64;
const MAX_NODES: usize = 100_000;

/// Parses and checks `Chart.yaml`; `path` names it in errors.
pub fn parse_chart_yaml(bytes: &[u8], path: &str) -> Result<ChartMetadata, ChartErrorKind> {
    let refuse = |reason: String| ChartErrorKind::ChartYamlRefused {
        path: path.to_owned(),
        reason,
    };
    let root = parse_tree(bytes).map_err(refuse)?;
    let top = as_map(&root, "the document").map_err(refuse)?;
    check_keys(top, METADATA_KEYS, "").map_err(refuse)?;
    let api_version = match string_field(top, "apiVersion", "").map_err(refuse)? {
        None => ChartApiVersion::V1,
        Some(v) if v == "v1" => ChartApiVersion::V1,
        Some(v) if v == "v2" => ChartApiVersion::V2,
        Some(found) => {
            return Err(ChartErrorKind::ApiVersion {
                path: path.to_owned(),
                found,
            });
        }
    };
    let name = string_field(top, "name", "")
        .map_err(refuse)?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| refuse("`name` is missing".to_owned()))?;
    let version_text = string_field(top, "version", "")
        .map_err(refuse)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| refuse("`version` is missing".to_owned()))?;
    let version =
        ChartVersion::parse(&version_text).map_err(|source| ChartErrorKind::InvalidVersion {
            path: path.to_owned(),
            version: version_text.clone(),
            source,
        })?;
    if let Some(Node::Seq(items)) = field(top, "maintainers") {
        for (i, item) in items.iter().enumerate() {
            if let Node::Map(entries) = item {
                check_keys(entries, MAINTAINER_KEYS, &format!("maintainers[{i}]."))
                    .map_err(refuse)?;
            }
        }
    }
    let dependencies = dependencies(top, "").map_err(refuse)?;
    Ok(ChartMetadata {
        api_version,
        name,
        version,
        dependencies,
    })
}

/// Parses a v1 chart's `requirements.yaml`: Helm decodes it into the same `Metadata`
/// as Chart.yaml, so any key but `dependencies` would override Chart.yaml's fields and
/// is refused. `Ok(None)` when it has no `dependencies` key (Chart.yaml's stay).
pub fn parse_requirements(
    bytes: &[u8],
    path: &str,
) -> Result<Option<Vec<Dependency>>, ChartErrorKind> {
    let refuse = |reason: String| ChartErrorKind::ChartYamlRefused {
        path: path.to_owned(),
        reason,
    };
    let root = parse_tree(bytes).map_err(refuse)?;
    let top = as_map(&root, "the document").map_err(refuse)?;
    check_keys(top, METADATA_KEYS, "").map_err(refuse)?;
    if let Some((key, _)) = top.iter().find(|(k, _)| k != "dependencies") {
        return Err(refuse(format!(
            "key `{key}`: Helm reads this file into the chart's metadata, so anything but \
             `dependencies` would change what Chart.yaml says"
        )));
    }
    if field(top, "dependencies").is_none() {
        return Ok(None);
    }
    dependencies(top, "").map(Some).map_err(refuse)
}

fn dependencies(top: &[(String, Node)], prefix: &str) -> Result<Vec<Dependency>, String> {
    let items = match field(top, "dependencies") {
        None => return Ok(Vec::new()),
        Some(Node::Scalar { value, plain: true }) if is_null(value) => return Ok(Vec::new()),
        Some(Node::Seq(items)) => items,
        Some(_) => return Err(format!("`{prefix}dependencies` is not a list")),
    };
    let mut out = Vec::with_capacity(items.len());
    let mut seen: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{prefix}dependencies[{i}].");
        let Node::Map(entries) = item else {
            return Err(format!(
                "`{prefix}dependencies[{i}]` is not a mapping (Helm refuses empty or null entries)"
            ));
        };
        check_keys(entries, DEPENDENCY_KEYS, &at)?;
        for key in ["condition", "repository"] {
            string_field(entries, key, &at)?;
        }
        let name = string_field(entries, "name", &at)?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("`{at}name` is missing"))?;
        let version = string_field(entries, "version", &at)?.filter(|v| !v.is_empty());
        let alias = string_field(entries, "alias", &at)?.filter(|a| !a.is_empty());
        let repository = string_field(entries, "repository", &at)?.filter(|r| !r.is_empty());
        let helm_json = helm_dependency_json(entries, &at);
        if let Some(alias) = &alias
            && !alias
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "`{at}alias` {alias:?} has characters Helm refuses (letters, digits, `_`, `-`)"
            ));
        }
        let used_as = alias.clone().unwrap_or_else(|| name.clone());
        if seen.contains(&used_as) {
            return Err(format!(
                "two dependencies are named {used_as:?} (Helm refuses the chart; give one an alias)"
            ));
        }
        seen.push(used_as);
        out.push(Dependency {
            name,
            version,
            alias,
            repository,
            helm_json,
        });
    }
    Ok(out)
}

/// One dependency entry as Go's `json.Marshal` writes Helm's `chart.Dependency`: its
/// fields in the struct's order (`name`, `version`, `repository`, `condition`, `tags`,
/// `enabled`, `import-values`, `alias`), the ones marked `omitempty` left out when
/// empty, strings as Helm's loader sanitizes them (whitespace turned into spaces,
/// control characters dropped). `Err` names what cannot be written exactly: an
/// `import-values` number (Go reads it as a float whose spelling coxswain does not
/// reproduce).
fn helm_dependency_json(entries: &[(String, Node)], at: &str) -> Result<String, String> {
    let text = |key: &str| -> Result<String, String> {
        Ok(string_field(entries, key, at)?
            .map(|v| sanitize(&v))
            .unwrap_or_default())
    };
    let mut out = String::from("{");
    let mut put = |key: &str, value: String| {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&go_json_string(key));
        out.push(':');
        out.push_str(&value);
    };
    put("name", go_json_string(&text("name")?));
    let version = text("version")?;
    if !version.is_empty() {
        put("version", go_json_string(&version));
    }
    put("repository", go_json_string(&text("repository")?));
    let condition = text("condition")?;
    if !condition.is_empty() {
        put("condition", go_json_string(&condition));
    }
    match field(entries, "tags") {
        None => {}
        Some(Node::Scalar { value, plain: true }) if is_null(value) => {}
        Some(Node::Seq(items)) if items.is_empty() => {}
        Some(Node::Seq(items)) => {
            let mut tags = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Node::Scalar { value, plain }
                        if !*plain || yaml_non_string(value).is_none() =>
                    {
                        tags.push(go_json_string(&sanitize(value)));
                    }
                    _ => return Err(format!("`{at}tags` holds something else than strings")),
                }
            }
            put("tags", format!("[{}]", tags.join(",")));
        }
        Some(_) => return Err(format!("`{at}tags` is not a list")),
    }
    match field(entries, "enabled") {
        None => {}
        Some(Node::Scalar { value, plain: true }) if is_null(value) => {}
        Some(Node::Scalar { value, plain: true }) if yaml_bool(value) == Some(false) => {}
        Some(Node::Scalar { value, plain: true }) if yaml_bool(value) == Some(true) => {
            put("enabled", "true".to_owned());
        }
        Some(_) => return Err(format!("`{at}enabled` is not a boolean")),
    }
    match field(entries, "import-values") {
        None => {}
        Some(Node::Scalar { value, plain: true }) if is_null(value) => {}
        Some(Node::Seq(items)) if items.is_empty() => {}
        Some(node @ Node::Seq(_)) => put("import-values", go_json_value(node, at)?),
        Some(_) => return Err(format!("`{at}import-values` is not a list")),
    }
    let alias = text("alias")?;
    if !alias.is_empty() {
        put("alias", go_json_string(&alias));
    }
    out.push('}');
    Ok(out)
}

/// A YAML 1.1 boolean (go-yaml v2, what Helm reads with), if `value` is one.
fn yaml_bool(value: &str) -> Option<bool> {
    match value {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

/// A node as Go marshals the `interface{}` that `sigs.k8s.io/yaml` made of it: maps with
/// their keys sorted, strings, booleans, null; numbers are refused (see
/// [`helm_dependency_json`]).
fn go_json_value(node: &Node, at: &str) -> Result<String, String> {
    Ok(match node {
        Node::Scalar { value, plain: true } if is_null(value) => "null".to_owned(),
        Node::Scalar { value, plain: true } if yaml_bool(value).is_some() => {
            yaml_bool(value).unwrap_or_default().to_string()
        }
        Node::Scalar { value, plain: true } if yaml_non_string(value).is_some() => {
            return Err(format!(
                "`{at}import-values` holds the plain scalar `{value}`, which Helm reads as a \
                 number or date; quote it"
            ));
        }
        Node::Scalar { value, .. } => go_json_string(value),
        Node::Seq(items) => {
            let items: Result<Vec<String>, String> =
                items.iter().map(|i| go_json_value(i, at)).collect();
            format!("[{}]", items?.join(","))
        }
        Node::Map(entries) => {
            let mut sorted: Vec<&(String, Node)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            let mut parts = Vec::with_capacity(sorted.len());
            for (k, v) in sorted {
                parts.push(format!("{}:{}", go_json_string(k), go_json_value(v, at)?));
            }
            format!("{{{}}}", parts.join(","))
        }
    })
}

/// Helm's `sanitizeString`: whitespace becomes a space, what is not printable is dropped.
fn sanitize(value: &str) -> String {
    value
        .chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some(' ')
            } else if c.is_control() {
                None
            } else {
                Some(c)
            }
        })
        .collect()
}

/// A string as Go's `encoding/json` writes it: HTML-safe (`<`, `>`, `&` escaped), control
/// characters and U+2028/U+2029 as `\u` escapes.
pub(crate) fn go_json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn field<'a>(map: &'a [(String, Node)], key: &str) -> Option<&'a Node> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn as_map<'a>(node: &'a Node, what: &str) -> Result<&'a [(String, Node)], String> {
    match node {
        Node::Map(entries) => Ok(entries),
        _ => Err(format!("{what} is not a mapping")),
    }
}

/// A field Helm reads as a string: absent, null, or a scalar that every YAML reading
/// takes as the same string.
fn string_field(map: &[(String, Node)], key: &str, prefix: &str) -> Result<Option<String>, String> {
    match field(map, key) {
        None => Ok(None),
        Some(Node::Scalar { value, plain: true }) if is_null(value) => Ok(None),
        Some(Node::Scalar { value, plain }) => {
            if *plain && let Some(kind) = yaml_non_string(value) {
                return Err(format!(
                    "`{prefix}{key}: {value}` is a YAML {kind}, not a string; Helm would read \
                     it as {}; quote it",
                    helm_reading(value, kind)
                ));
            }
            Ok(Some(value.clone()))
        }
        Some(_) => Err(format!("`{prefix}{key}` is not a string")),
    }
}

/// How Helm turns a non-string scalar back into text (what `helm show chart` prints).
fn helm_reading(value: &str, kind: &str) -> String {
    match kind {
        "number" => {
            let cleaned: String = value.chars().filter(|c| *c != '_').collect();
            match cleaned.parse::<f64>() {
                Ok(f) if cleaned.contains(['.', 'e', 'E']) => format!("\"{f}\""),
                _ => "another number".to_owned(),
            }
        }
        "boolean" => "\"true\" or \"false\"".to_owned(),
        _ => "something else".to_owned(),
    }
}

/// Refuses keys that Go's case-insensitive JSON decoding would fold onto one of
/// `known` without being spelled like it, and keys seen twice.
fn check_keys(map: &[(String, Node)], known: &[&str], prefix: &str) -> Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    for (key, _) in map {
        let folded = go_fold(key);
        if let Some(target) = known.iter().find(|k| go_fold(k) == folded)
            && key != target
        {
            return Err(format!(
                "key `{prefix}{key}` is read by Helm as `{prefix}{target}` (Go's JSON decoding \
                 ignores case); spell it `{target}`"
            ));
        }
        if seen.contains(&folded) {
            return Err(format!("key `{prefix}{key}` appears twice"));
        }
        seen.push(folded);
    }
    Ok(())
}

/// Go's `bytes.EqualFold` as seen from ASCII field names: ASCII case, and the two
/// non-ASCII letters whose simple fold is ASCII (KELVIN SIGN, LATIN SMALL LETTER LONG S).
fn go_fold(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '\u{212A}' => 'k',
            '\u{017F}' => 's',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn is_null(value: &str) -> bool {
    matches!(value, "" | "~" | "null" | "Null" | "NULL")
}

/// Whether a plain scalar is something else than a string under YAML 1.1 (go-yaml v2,
/// what Helm uses) or YAML 1.2: the kind it is, if so.
fn yaml_non_string(value: &str) -> Option<&'static str> {
    if is_null(value) {
        return Some("null");
    }
    if matches!(
        value,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    ) {
        return Some("boolean");
    }
    if is_yaml_number(value) {
        return Some("number");
    }
    if is_yaml_timestamp(value) {
        return Some("timestamp");
    }
    None
}

fn is_yaml_number(value: &str) -> bool {
    let body = value.strip_prefix(['-', '+']).unwrap_or(value);
    if matches!(body, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let digits =
        |s: &str, ok: fn(char) -> bool| !s.is_empty() && s.chars().all(|c| ok(c) || c == '_');
    if let Some(hex) = body.strip_prefix("0x") {
        return digits(hex, |c| c.is_ascii_hexdigit());
    }
    if let Some(bin) = body.strip_prefix("0b") {
        return digits(bin, |c| matches!(c, '0' | '1'));
    }
    if let Some(oct) = body.strip_prefix("0o") {
        return digits(oct, |c| matches!(c, '0'..='7'));
    }
    // Sexagesimal (YAML 1.1): 190:20:30, 1:30.5
    if body.contains(':') {
        let mut parts = body.split(':');
        let first = parts.next().unwrap_or_default();
        return digits(first, |c| c.is_ascii_digit())
            && first.starts_with(|c: char| c.is_ascii_digit())
            && parts.all(|p| {
                let int = p.split('.').next().unwrap_or_default();
                !int.is_empty() && int.len() <= 2 && int.chars().all(|c| c.is_ascii_digit())
            });
    }
    // Decimal integers and floats, with YAML 1.1's underscores: 1, 010, 1_000, 1.10,
    // .5, 1., 1e3, 1.2e-3
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if let Some(exp) = exponent {
        let exp = exp.strip_prefix(['-', '+']).unwrap_or(exp);
        if exp.is_empty() || !exp.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    let mut halves = mantissa.splitn(2, '.');
    let int = halves.next().unwrap_or_default();
    let frac = halves.next();
    if frac.is_some_and(|f| f.contains('.')) {
        return false;
    }
    let int_ok = int.is_empty()
        || (int.starts_with(|c: char| c.is_ascii_digit()) && digits(int, |c| c.is_ascii_digit()));
    match frac {
        None => !int.is_empty() && int_ok,
        Some(f) => {
            int_ok
                && (f.is_empty() || digits(f, |c| c.is_ascii_digit()))
                && !(int.is_empty() && f.is_empty())
        }
    }
}

/// YAML 1.1 timestamps start with a date: `2001-12-14`, `2001-12-14t21:59:43.10-05:00`.
fn is_yaml_timestamp(value: &str) -> bool {
    let b = value.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    if !(digit(0) && digit(1) && digit(2) && digit(3) && b.get(4) == Some(&b'-')) {
        return false;
    }
    let mut i = 5;
    let month_start = i;
    while digit(i) {
        i += 1;
    }
    if !(1..=2).contains(&(i - month_start)) || b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    let day_start = i;
    while digit(i) {
        i += 1;
    }
    (1..=2).contains(&(i - day_start))
        && (i == b.len() || matches!(b.get(i), Some(b'T' | b't' | b' ' | b'\t')))
}

/// Parses one YAML document into a [`Node`], refusing what could be read two ways.
fn parse_tree(bytes: &[u8]) -> Result<Node, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 ({e})"))?;
    // Helm strips a UTF-8 byte order mark; so does the YAML parser.
    let mut stack: Vec<(Node, Option<String>)> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| format!("not valid YAML: {e}"))?;
        let line = span.start.line();
        let (anchor, tagged) = match &event {
            Event::Scalar(_, _, anchor, tag) => (*anchor, tag.is_some()),
            Event::SequenceStart(_, anchor, tag) | Event::MappingStart(_, anchor, tag) => {
                (*anchor, tag.is_some())
            }
            _ => (0, false),
        };
        if anchor != 0 {
            return Err(format!(
                "line {line}: a YAML anchor; Chart.yaml is read without anchors, aliases or merge keys"
            ));
        }
        if tagged {
            return Err(format!(
                "line {line}: a YAML tag; Helm's YAML 1.1 reader and others resolve tags differently"
            ));
        }
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => continue,
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(format!("line {line}: a second YAML document"));
                }
                continue;
            }
            Event::Alias(_) | Event::UnresolvedAlias(_) => {
                return Err(format!(
                    "line {line}: a YAML alias; Chart.yaml is read without anchors, aliases or merge keys"
                ));
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if stack.len() >= MAX_DEPTH => {
                return Err(format!("nested deeper than {MAX_DEPTH} levels"));
            }
            Event::SequenceStart(..) => {
                stack.push((Node::Seq(Vec::new()), None));
                continue;
            }
            Event::MappingStart(..) => {
                stack.push((Node::Map(Vec::new()), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some((node, None)) => node,
                _ => return Err(format!("line {line}: a mapping key without a value")),
            },
            Event::Scalar(value, style, _, _) => Node::Scalar {
                value: value.into_owned(),
                plain: style == ScalarStyle::Plain,
            },
            // Anchor names (refused above with their node) and comments.
            _ => continue,
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(format!("more than {MAX_NODES} YAML nodes"));
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some((Node::Seq(items), _)) => items.push(node),
            Some((Node::Map(entries), pending)) => match pending.take() {
                Some(key) => {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(format!("line {line}: key `{key}` appears twice"));
                    }
                    entries.push((key, node));
                }
                None => match node {
                    Node::Scalar { value, plain } => {
                        if plain && value == "<<" {
                            return Err(format!(
                                "line {line}: a YAML merge key `<<`; Chart.yaml is read without anchors, aliases or merge keys"
                            ));
                        }
                        *pending = Some(value);
                    }
                    _ => return Err(format!("line {line}: a mapping key that is not a string")),
                },
            },
            Some((Node::Scalar { .. }, _)) => {
                return Err(format!("line {line}: unexpected YAML structure"));
            }
        }
    }
    Ok(root.unwrap_or(Node::Map(Vec::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        match parse_chart_yaml(text.as_bytes(), "c/Chart.yaml") {
            Err(ChartErrorKind::ChartYamlRefused { reason, .. }) => reason,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn a_plain_chart_yaml_reads() {
        let meta = parse_chart_yaml(
            b"apiVersion: v2\nname: demo\nversion: v1.2.0\nappVersion: 1.0\nmaintainers:\n- name: a\nx-custom: 1\ndependencies:\n- name: db\n  version: \">=0.1.0\"\n  alias: main-db\n  condition: db.enabled\n",
            "demo/Chart.yaml",
        )
        .unwrap();
        assert_eq!(meta.api_version, ChartApiVersion::V2);
        assert_eq!(meta.version.as_str(), "v1.2.0");
        assert_eq!(
            meta.dependencies,
            vec![Dependency {
                name: "db".into(),
                version: Some(">=0.1.0".into()),
                alias: Some("main-db".into()),
                repository: None,
                helm_json: Ok(
                    r#"{"name":"db","version":"\u003e=0.1.0","repository":"","condition":"db.enabled","alias":"main-db"}"#
                        .into()
                ),
            }]
        );
        let v1 = parse_chart_yaml(b"name: old\nversion: 1.0.0\n", "old/Chart.yaml").unwrap();
        assert_eq!(
            v1.api_version,
            ChartApiVersion::V1,
            "no apiVersion is v1, as Helm reads it"
        );
    }

    #[test]
    fn what_helm_could_read_differently_is_refused() {
        for (text, needle) in [
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\nVersion: 2.0.0\n",
                "`Version` is read by Helm as `version`",
            ),
            (
                "apiVersion: v2\nNAME: a\nname: a\nversion: 1.0.0\n",
                "`NAME`",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\nappversion: 1\n",
                "`appversion` is read by Helm as `appVersion`",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\n\u{212A}eywords: [x]\n",
                "read by Helm as `keywords`",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.10\n",
                "Helm would read it as \"1.1\"",
            ),
            ("apiVersion: v2\nname: a\nversion: 1\n", "YAML number"),
            ("apiVersion: v2\nname: on\nversion: 1.0.0\n", "YAML boolean"),
            (
                "apiVersion: v2\nname: 2024-01-01\nversion: 1.0.0\n",
                "YAML timestamp",
            ),
            ("apiVersion: v2\nname: a\nversion: &v 1.0.0\n", "anchor"),
            (
                "base: &b {name: a}\napiVersion: v2\nversion: 1.0.0\n<<: *b\n",
                "anchor",
            ),
            ("apiVersion: v2\nname: !!str a\nversion: 1.0.0\n", "tag"),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\nname: b\n",
                "appears twice",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\n---\nname: b\n",
                "second YAML document",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies:\n- name: db\n  Version: 1.0.0\n",
                "`dependencies[0].Version`",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies:\n- name: db\n  version: 1.2\n",
                "dependencies[0].version: 1.2",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies:\n- null\n",
                "not a mapping",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies:\n- name: db\n- name: db\n",
                "two dependencies are named \"db\"",
            ),
            (
                "apiVersion: v2\nname: a\nversion: 1.0.0\ndependencies:\n- name: db\n  alias: my.db\n",
                "alias",
            ),
            ("apiVersion: v2\nversion: 1.0.0\n", "`name` is missing"),
        ] {
            let reason = refused(text);
            assert!(reason.contains(needle), "{text:?}: {reason}");
        }
        assert!(matches!(
            parse_chart_yaml(b"apiVersion: v3\nname: a\nversion: 1.0.0\n", "a/Chart.yaml"),
            Err(ChartErrorKind::ApiVersion { .. })
        ));
    }

    #[test]
    fn yaml_scalar_kinds() {
        for number in [
            "1",
            "010",
            "1_000",
            "1.10",
            ".5",
            "1.",
            "1e3",
            "-1.2e-3",
            "0x1F",
            "0o17",
            "0b101",
            "190:20:30",
            ".inf",
            "-.Inf",
        ] {
            assert_eq!(yaml_non_string(number), Some("number"), "{number}");
        }
        for string in [
            "1.2.3",
            "v1.2",
            "1.2.3-rc.1",
            "a1",
            "1a",
            "1.2e",
            "e3",
            "1-2",
            "cert-manager",
            "2024-1",
            ".",
        ] {
            assert_eq!(yaml_non_string(string), None, "{string}");
        }
    }

    #[test]
    fn requirements_hold_dependencies_only() {
        let deps =
            parse_requirements(b"dependencies:\n- name: db\n  version: 0.1.0\n", "r").unwrap();
        assert_eq!(deps.unwrap()[0].name, "db");
        assert_eq!(parse_requirements(b"{}", "r").unwrap(), None);
        let err = parse_requirements(b"version: 9.9.9\ndependencies: []\n", "r").unwrap_err();
        assert!(err.to_string().contains("key `version`"), "{err}");
    }
}
