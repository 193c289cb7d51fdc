//! The documents coxswain reads and writes, as Rust types.
//!
//! Every document carries `apiVersion: coxswain.dev/v1` and its `kind`, and
//! unknown fields are errors. The header is checked before the typed parse, so a
//! document of the wrong kind or version is named as such instead of failing on
//! its first unexpected field. Signed documents ([`ChannelIndex`], [`TrustRoot`],
//! [`Signatures`]) are JSON read by [`read_json`]; the human-written
//! [`ChannelSpec`] is YAML read by [`read_yaml`]. The JSON Schemas in
//! `channel-schema/` are generated from these types by [`schemas`].

pub mod gate;
pub mod index;
pub mod signatures;
pub mod spec;
pub mod trust;
pub mod version;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use gate::{GateRecord, GateRelease};
pub use index::{ChannelIndex, IndexChart, IndexRelease, PreviousRelease, Withdrawn};
pub use signatures::{SignatureEntry, Signatures};
pub use spec::{
    Approval, BackupBefore, BackupPolicy, ChannelSpec, ChartDir, ChartSource, CrdPolicy,
    DependencyPolicy, OciChart, ReleaseSpec, RepoAuth, RepoChart,
};
pub use trust::{KeyEntry, KeyScheme, Role, Roles, TrustRoot};
pub use version::{
    ChartVersion, VersionError, constraint_matches, is_older, parse_range, same_version,
};

use crate::{json, yaml};

/// The only `apiVersion` this build reads and writes.
pub const API_VERSION: &str = "coxswain.dev/v1";

/// The `apiVersion` field: one known value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum ApiVersion {
    /// `coxswain.dev/v1`
    #[default]
    #[serde(rename = "coxswain.dev/v1")]
    V1,
}

/// A document type with a fixed `kind` and a size cap.
pub trait Document: DeserializeOwned {
    /// The `kind` field's value.
    const KIND: &'static str;
    /// Largest accepted file, checked before parsing.
    const MAX_BYTES: usize;
    /// Structural checks beyond what the types express.
    fn validate(&self) -> Result<(), ValidationError>;
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Malformed or over-budget JSON.
    #[error(transparent)]
    Json(#[from] json::JsonError),
    /// Malformed or over-budget YAML.
    #[error(transparent)]
    Yaml(#[from] yaml::YamlError),
    /// `apiVersion` or `kind` is missing or not the expected one.
    #[error(
        "{origin}: unknown document apiVersion `{api_version}`, kind `{kind}`: expected apiVersion `{API_VERSION}`, kind `{expected_kind}`"
    )]
    UnknownDocument {
        /// The file or URL.
        origin: String,
        /// What the document says (`<missing>` when absent).
        api_version: String,
        /// What the document says (`<missing>` when absent).
        kind: String,
        /// The kind the reader asked for.
        expected_kind: &'static str,
    },
    /// Well-formed but structurally invalid.
    #[error("{origin}: invalid {kind}")]
    Invalid {
        /// The file or URL.
        origin: String,
        /// The document kind.
        kind: &'static str,
        /// What is wrong.
        #[source]
        error: ValidationError,
    },
}

impl FormatError {
    /// The validation failure, if that is what this is.
    pub fn validation(&self) -> Option<&ValidationError> {
        match self {
            FormatError::Invalid { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A structural problem in a well-formed document. Each variant names the release,
/// key or field concerned.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// A channel, release or namespace name that is not a DNS-1123 label.
    #[error("{what} `{value}` is invalid: {reason}")]
    InvalidName {
        /// `channel`, `release name` or `namespace`.
        what: &'static str,
        /// The offending value.
        value: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Two releases with the same name.
    #[error("release `{name}` is listed more than once")]
    DuplicateRelease {
        /// The repeated name.
        name: String,
    },
    /// `dependsOn` names a release that is not in the document.
    #[error("release `{release}` depends on `{dependency}`, which is not in the channel")]
    UnknownDependency {
        /// The release with the dependency.
        release: String,
        /// The missing name.
        dependency: String,
    },
    /// `dependsOn` lists the same name twice.
    #[error("release `{release}` lists dependency `{dependency}` more than once")]
    DuplicateDependency {
        /// The release with the dependency.
        release: String,
        /// The repeated name.
        dependency: String,
    },
    /// The dependency graph has a cycle.
    #[error("dependency cycle: {cycle}")]
    DependencyCycle {
        /// The cycle, e.g. `a -> b -> a`.
        cycle: String,
    },
    /// A chart version Helm would not accept (see [`ChartVersion`]).
    #[error("release `{release}`: chart version `{version}` is not a semantic version")]
    BadVersion {
        /// The release.
        release: String,
        /// The offending version.
        version: String,
        /// Why.
        #[source]
        error: VersionError,
    },
    /// An `upgradeFrom` that is not a semver range.
    #[error("release `{release}`: upgradeFrom `{range}` is not a semver range")]
    BadRange {
        /// The release.
        release: String,
        /// The offending range.
        range: String,
        /// semver's reason.
        #[source]
        error: semver::Error,
    },
    /// A `withdrawn` list that cannot be right.
    #[error("withdrawn: {0}")]
    BadWithdrawn(String),
    /// An `update` block `coxswain upstream check` cannot follow.
    #[error("release `{release}`: update.{reason}")]
    BadUpdatePolicy {
        /// The release.
        release: String,
        /// Which field and what is wrong with it.
        reason: String,
    },
    /// A `backup` block the agent cannot follow.
    #[error("release `{release}`: backup.{reason}")]
    BadBackupPolicy {
        /// The release.
        release: String,
        /// Which field and what is wrong with it.
        reason: String,
    },
    /// A chart source that cannot be used.
    #[error("release `{release}`: chart {reason}")]
    BadChartSource {
        /// The release.
        release: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A chart URL in the index that is not a relative path inside the site.
    #[error("release `{release}`: chart url `{url}` {reason}")]
    BadChartUrl {
        /// The release.
        release: String,
        /// The offending URL.
        url: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A `previous` entry that does not belong to its release.
    #[error("release `{release}`: previous entry {reason}")]
    BadPrevious {
        /// The release.
        release: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A zero duration where time must pass.
    #[error("{what} must be longer than 0s")]
    ZeroDuration {
        /// Which field.
        what: String,
    },
    /// A sequence of 0 or above [`MAX_SEQUENCE`].
    #[error(
        "sequence {0} is out of range: sequences run from 1 to {MAX_SEQUENCE} (2^53), so a \
         later index can always follow and every JSON reader keeps the number exactly"
    )]
    SequenceOutOfRange(u64),
    /// `expires - published` longer than [`MAX_INDEX_VALIDITY`].
    #[error(
        "valid from {published} to {expires}, longer than the maximum of {} days for an index \
         (a stolen key could otherwise sign an index that never expires)",
        MAX_INDEX_VALIDITY.as_secs() / 86_400
    )]
    ValidityTooLong {
        /// `published`.
        published: Timestamp,
        /// `expires`.
        expires: Timestamp,
    },
    /// Timestamps in the wrong order.
    #[error("expires ({expires}) is before published ({published})")]
    ExpiresBeforePublished {
        /// `published`.
        published: Timestamp,
        /// `expires`.
        expires: Timestamp,
    },
    /// A trust root key whose id is not the sha256 of its public key.
    #[error(
        "trust root key `{keyid}`: keyid is not the sha256 of its public key (that is `{expected}`)"
    )]
    KeyIdMismatch {
        /// The listed id.
        keyid: String,
        /// The id computed from the key.
        expected: String,
    },
    /// A trust root key that is not a valid ed25519 public key.
    #[error("trust root key `{keyid}`: {reason}")]
    BadPublicKey {
        /// The listed id.
        keyid: String,
        /// What is wrong.
        reason: String,
    },
    /// A role that names a key the root does not list.
    #[error("trust role `{role}` names key `{keyid}`, which is not in keys")]
    UnknownRoleKey {
        /// `root` or `channel`.
        role: &'static str,
        /// The missing id.
        keyid: String,
    },
    /// A role that lists a key twice.
    #[error("trust role `{role}` lists key `{keyid}` more than once")]
    DuplicateRoleKey {
        /// `root` or `channel`.
        role: &'static str,
        /// The repeated id.
        keyid: String,
    },
    /// A threshold of 0 or above the number of keys in the role.
    #[error("trust role `{role}`: threshold {threshold} must be between 1 and its {keys} key(s)")]
    BadThreshold {
        /// `root` or `channel`.
        role: &'static str,
        /// The threshold.
        threshold: u32,
        /// Keys in the role.
        keys: usize,
    },
    /// Trust root versions start at 1.
    #[error("trust root version must be at least 1")]
    ZeroTrustVersion,
    /// A `rollout` (waves, pause) that cannot be followed.
    #[error(transparent)]
    BadRollout(#[from] crate::rollout::RolloutError),
    /// A release entry whose rollout would start after the index was published.
    #[error(
        "release `{release}`: since ({since}) is after the index's published time ({published}): a rollout cannot start in the future"
    )]
    SinceAfterPublished {
        /// The release.
        release: String,
        /// Its `since`.
        since: Timestamp,
        /// The index's `published`.
        published: Timestamp,
    },
    /// A signature entry that is not hex of the right length.
    #[error("signature entry {index}: {reason}")]
    BadSignatureEntry {
        /// Position in the list.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Reads a signed (JSON) document: size cap, strict JSON, header, typed parse, validation.
///
/// For a [`ChannelIndex`] call this only on bytes whose signatures were verified
/// ([`crate::verify`] does).
pub fn read_json<T: Document>(bytes: &[u8], origin: &str) -> Result<T, FormatError> {
    let header = json::check(bytes, origin, json::Limits::bytes(T::MAX_BYTES))?;
    check_header::<T>(header.api_version, header.kind, origin)?;
    let doc: T = json::parse_checked(bytes, origin)?;
    validated(doc, origin)
}

/// Reads a human-written (YAML) document within budgets.
pub fn read_yaml<T: Document>(bytes: &[u8], origin: &str) -> Result<T, FormatError> {
    /// Only the header; everything else is skipped (still within the budgets).
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Header {
        api_version: Option<String>,
        kind: Option<String>,
    }
    let limits = yaml::Limits::bytes(T::MAX_BYTES);
    let header: Header = yaml::from_slice(bytes, origin, limits)?;
    check_header::<T>(header.api_version, header.kind, origin)?;
    let doc: T = yaml::from_slice(bytes, origin, limits)?;
    validated(doc, origin)
}

fn check_header<T: Document>(
    api_version: Option<String>,
    kind: Option<String>,
    origin: &str,
) -> Result<(), FormatError> {
    if api_version.as_deref() == Some(API_VERSION) && kind.as_deref() == Some(T::KIND) {
        return Ok(());
    }
    let missing = || "<missing>".to_owned();
    Err(FormatError::UnknownDocument {
        origin: origin.to_owned(),
        api_version: api_version.unwrap_or_else(missing),
        kind: kind.unwrap_or_else(missing),
        expected_kind: T::KIND,
    })
}

fn validated<T: Document>(doc: T, origin: &str) -> Result<T, FormatError> {
    doc.validate().map_err(|error| FormatError::Invalid {
        origin: origin.to_owned(),
        kind: T::KIND,
        error,
    })?;
    Ok(doc)
}

/// Pretty-printed JSON with a trailing newline: readable, diffable, and `jq`-friendly.
pub fn to_json_pretty<T: Serialize>(doc: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = serde_json::to_vec_pretty(doc)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// One JSON Schema per document kind, as `(kind, pretty JSON)`, for `channel-schema/<kind>.schema.json`.
pub fn schemas() -> Vec<(&'static str, String)> {
    fn one<T: JsonSchema>(kind: &'static str) -> (&'static str, String) {
        let schema = schemars::schema_for!(T);
        // A Schema is a serde_json::Value underneath; printing it cannot fail.
        let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
        text.push('\n');
        (kind, text)
    }
    vec![
        one::<ChannelSpec>("ChannelSpec"),
        one::<ChannelIndex>("ChannelIndex"),
        one::<Signatures>("Signatures"),
        one::<TrustRoot>("TrustRoot"),
        one::<GateRecord>("GateRecord"),
    ]
}

/// A point in time, written as RFC 3339 in UTC (`2026-11-26T03:00:00Z`).
///
/// Only UTC is accepted on read, so every signed timestamp has one spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

/// The highest sequence an index may carry: 2^53, far from `u64::MAX` (so `+ 1` always
/// works) and exact in every JSON reader.
pub const MAX_SEQUENCE: u64 = 1 << 53;

/// The longest an index may be valid (`expires - published`): 366 days.
pub const MAX_INDEX_VALIDITY: crate::duration::Duration = crate::duration::Duration::from_days(366);

/// The longest ahead of the time of a check a trust root may expire: 3 years (1,096 days).
/// Trust roots carry no `published` time, so this bounds what a stolen root key could
/// sign; `trust init` and `trust rotate` refuse a longer `--valid-for`.
pub const MAX_TRUST_ROOT_VALIDITY: crate::duration::Duration =
    crate::duration::Duration::from_days(1096);

/// How far in the future an index's `published` may lie at the time of a check: 5 minutes
/// of clock skew between the publisher and the reader.
pub const MAX_CLOCK_SKEW: crate::duration::Duration = crate::duration::Duration::from_mins(5);

impl Timestamp {
    /// Now, truncated to whole seconds.
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    /// From a `time` value, converted to UTC and truncated to whole seconds.
    pub fn from_datetime(t: OffsetDateTime) -> Self {
        let t = t.to_offset(time::UtcOffset::UTC);
        Self(t.replace_nanosecond(0).unwrap_or(t))
    }

    /// From seconds since the Unix epoch (tests, fixed fixtures).
    pub fn from_unix(secs: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp(secs).ok().map(Self)
    }

    /// Seconds since the Unix epoch, for metrics.
    pub fn unix_seconds(self) -> f64 {
        self.0.unix_timestamp() as f64
    }

    /// The `time` value.
    pub fn datetime(self) -> OffsetDateTime {
        self.0
    }

    /// This point plus `d`, or `None` past the year 9999.
    pub fn checked_add(self, d: crate::duration::Duration) -> Option<Self> {
        self.0
            .checked_add(d.to_time())
            .filter(|t| t.year() <= 9999)
            .map(Self)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

impl FromStr for Timestamp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| format!("timestamp `{s}` is not RFC 3339: {e}"))?;
        if t.offset() != time::UtcOffset::UTC {
            return Err(format!("timestamp `{s}` is not in UTC: write it with `Z`"));
        }
        Ok(Self(t))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.0.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 in UTC, e.g. 2026-11-26T03:00:00Z.",
        })
    }
}

/// A SHA-256 digest, written `sha256:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// From raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex characters, without the `sha256:` prefix (for file names).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl FromStr for Sha256Digest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("digest `{s}` is not `sha256:` followed by 64 lowercase hex digits");
        let hex_part = s.strip_prefix("sha256:").ok_or_else(bad)?;
        Ok(Self(parse_lower_hex::<32>(hex_part).ok_or_else(bad)?))
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Sha256Digest {
    fn schema_name() -> Cow<'static, str> {
        "Sha256Digest".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^sha256:[0-9a-f]{64}$",
        })
    }
}

/// Decodes exactly `N` bytes of lowercase hex (uppercase is refused: one spelling per value).
pub fn parse_lower_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Checks a DNS-1123 label (RFC 1123): lowercase letters, digits and `-`,
/// starting and ending with a letter or digit, at most `max_len` characters.
pub fn check_dns_label(
    what: &'static str,
    value: &str,
    max_len: usize,
) -> Result<(), ValidationError> {
    let reason = if value.is_empty() {
        Some("it is empty")
    } else if value.len() > max_len {
        Some(if max_len == 53 {
            "it is longer than 53 characters (Helm's limit for release names)"
        } else {
            "it is longer than 63 characters"
        })
    } else if !value
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
    {
        Some("only lowercase letters, digits and `-` are allowed (DNS-1123 label)")
    } else if value.starts_with('-') || value.ends_with('-') {
        Some("it must start and end with a letter or digit (DNS-1123 label)")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(ValidationError::InvalidName {
            what,
            value: crate::bounded::bounded(value, crate::bounded::MAX_ECHO),
            reason,
        }),
    }
}

/// Helm's limit on release name length.
pub const MAX_RELEASE_NAME: usize = 53;
/// Kubernetes' limit on a namespace (DNS-1123 label).
pub const MAX_LABEL: usize = 63;

/// One node of the release graph, as the spec and the index both describe it.
pub(crate) struct GraphNode<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub depends_on: &'a [String],
}

/// The checks the spec and the index share: names, uniqueness, dependencies and cycles.
pub(crate) fn check_release_graph<'a>(
    nodes: impl IntoIterator<Item = GraphNode<'a>>,
) -> Result<(), ValidationError> {
    let nodes: Vec<GraphNode<'a>> = nodes.into_iter().collect();
    let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        check_dns_label("release name", node.name, MAX_RELEASE_NAME)?;
        check_dns_label("namespace", node.namespace, MAX_LABEL)?;
        if by_name.insert(node.name, i).is_some() {
            return Err(ValidationError::DuplicateRelease {
                name: node.name.to_owned(),
            });
        }
    }
    let mut edges: Vec<Vec<usize>> = Vec::with_capacity(nodes.len());
    for node in &nodes {
        let mut out: Vec<usize> = Vec::with_capacity(node.depends_on.len());
        for dep in node.depends_on {
            let Some(&j) = by_name.get(dep.as_str()) else {
                return Err(ValidationError::UnknownDependency {
                    release: node.name.to_owned(),
                    dependency: dep.clone(),
                });
            };
            if out.contains(&j) {
                return Err(ValidationError::DuplicateDependency {
                    release: node.name.to_owned(),
                    dependency: dep.clone(),
                });
            }
            out.push(j);
        }
        edges.push(out);
    }
    if let Some(cycle) = find_cycle(&edges) {
        let names: Vec<&str> = cycle.iter().map(|&i| nodes[i].name).collect();
        return Err(ValidationError::DependencyCycle {
            cycle: names.join(" -> "),
        });
    }
    Ok(())
}

/// The first cycle found by an iterative depth-first search (no recursion, so a
/// hostile 100,000-long chain cannot overflow the stack), as a closed path `a, b, a`.
fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; edges.len()];
    for start in 0..edges.len() {
        if mark[start] != Mark::New {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::OnPath;
        while let Some(top) = path.last_mut() {
            let (node, next) = *top;
            if let Some(&dep) = edges[node].get(next) {
                top.1 += 1;
                match mark[dep] {
                    Mark::New => {
                        mark[dep] = Mark::OnPath;
                        path.push((dep, 0));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                        let mut cycle: Vec<usize> = path[from..].iter().map(|&(n, _)| n).collect();
                        cycle.push(dep);
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                path.pop();
            }
        }
    }
    None
}

/// Checks an optional `upgradeFrom` range.
pub(crate) fn check_range(release: &str, range: Option<&str>) -> Result<(), ValidationError> {
    if let Some(range) = range {
        parse_range(range).map_err(|error| ValidationError::BadRange {
            release: release.to_owned(),
            range: range.to_owned(),
            error,
        })?;
    }
    Ok(())
}

/// Checks a chart version.
pub(crate) fn check_version(release: &str, version: &str) -> Result<ChartVersion, ValidationError> {
    ChartVersion::parse(version).map_err(|error| ValidationError::BadVersion {
        release: release.to_owned(),
        version: version.to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(name: &'a str, deps: &'a [String]) -> GraphNode<'a> {
        GraphNode {
            name,
            namespace: "default",
            depends_on: deps,
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn dns_labels() {
        for ok in ["a", "cert-manager", "a1", "0a", &"a".repeat(53)] {
            check_dns_label("release name", ok, MAX_RELEASE_NAME).unwrap();
        }
        for bad in ["", "A", "a_b", "-a", "a-", "a.b", &"a".repeat(54)] {
            assert!(
                check_dns_label("release name", bad, MAX_RELEASE_NAME).is_err(),
                "{bad}"
            );
        }
        check_dns_label("namespace", &"a".repeat(63), MAX_LABEL).unwrap();
        assert!(check_dns_label("namespace", &"a".repeat(64), MAX_LABEL).is_err());
    }

    #[test]
    fn graph_cycles_are_named() {
        let (a, b, c, none) = (s(&["b"]), s(&["c"]), s(&["a"]), s(&[]));
        let err = check_release_graph([node("a", &a), node("b", &b), node("c", &c)]).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: a -> b -> c -> a");
        let own = s(&["x"]);
        let err = check_release_graph([node("x", &own)]).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: x -> x");
        // A cycle not reachable from the first node is still found, and named from its entry.
        let (d, e) = (s(&["e"]), s(&["d"]));
        let err =
            check_release_graph([node("a", &none), node("d", &d), node("e", &e)]).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: d -> e -> d");
        // A diamond is fine.
        let (top, l, r) = (s(&["l", "r"]), s(&["base"]), s(&["base"]));
        check_release_graph([
            node("top", &top),
            node("l", &l),
            node("r", &r),
            node("base", &none),
        ])
        .unwrap();
    }

    #[test]
    fn graph_rejects_unknown_duplicate_and_repeated() {
        let (a, none) = (s(&["zz"]), s(&[]));
        assert!(matches!(
            check_release_graph([node("a", &a)]),
            Err(ValidationError::UnknownDependency { .. })
        ));
        assert!(matches!(
            check_release_graph([node("a", &none), node("a", &none)]),
            Err(ValidationError::DuplicateRelease { name }) if name == "a"
        ));
        let twice = s(&["b", "b"]);
        assert!(matches!(
            check_release_graph([node("a", &twice), node("b", &none)]),
            Err(ValidationError::DuplicateDependency { .. })
        ));
    }

    #[test]
    fn long_chains_do_not_overflow() {
        let n = 200_000;
        let names: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
        let deps: Vec<Vec<String>> = (0..n)
            .map(|i| {
                if i + 1 < n {
                    vec![names[i + 1].clone()]
                } else {
                    vec![names[0].clone()]
                }
            })
            .collect();
        let err = check_release_graph((0..n).map(|i| node(&names[i], &deps[i]))).unwrap_err();
        assert!(matches!(err, ValidationError::DependencyCycle { .. }));
    }

    #[test]
    fn digests_and_timestamps() {
        let d = Sha256Digest::of(b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.to_string().parse::<Sha256Digest>().unwrap(), d);
        for bad in [
            "ba7816bf",
            "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
            "sha512:00",
            "sha256:zz",
        ] {
            assert!(bad.parse::<Sha256Digest>().is_err(), "{bad}");
        }
        let t: Timestamp = "2026-11-26T03:00:00Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-26T03:00:00Z");
        assert!("2026-11-26T03:00:00+01:00".parse::<Timestamp>().is_err());
        assert!("2026-11-26".parse::<Timestamp>().is_err());
        let later = t
            .checked_add(crate::duration::Duration::from_days(14))
            .unwrap();
        assert_eq!(later.to_string(), "2026-12-10T03:00:00Z");
    }
}
