//! Helm chart archives: a safe reader and a deterministic packer.
//!
//! The reader ([`ChartArchive::read`]) inflates a `.tgz` in memory and never writes to
//! disk (the tar crate's own `unpack` still follows escaping symlinks, so it is not used).
//! It refuses absolute paths, `..`, links, device and fifo entries, more entries or bytes
//! than [`ArchiveLimits`] allow (counted while inflating, so a gzip bomb stops early),
//! and anything but exactly one top-level directory named like the chart; then it checks
//! `Chart.yaml` as Helm reads it (see [`meta`]: apiVersion v1 or v2, a DNS-1123 name, a
//! version Helm accepts), and every subchart in `charts/` and declared dependency.
//!
//! The packer ([`pack_dir`]) turns a chart directory into a byte-identical `.tgz` for the
//! same input, the way `helm package` lays it out (one top directory named after the
//! chart), honouring `.helmignore` (see [`helmignore`]).

mod archive;
pub mod crds;
pub mod helmignore;
pub mod lock;
pub mod meta;
mod pack;

pub use archive::ChartArchive;
pub use meta::{ChartApiVersion, ChartMetadata, Dependency};
pub use pack::{ChartDirContents, PackedChart, pack_dir};

use crate::format::{ChartVersion, VersionError};

/// Bounds for reading (and packing) one chart archive.
#[derive(Clone, Debug)]
pub struct ArchiveLimits {
    /// Largest compressed archive accepted, in bytes.
    pub compressed_bytes: u64,
    /// Most bytes inflated in total (tar headers and padding included); Helm's own cap is
    /// 100 MiB.
    pub unpacked_bytes: u64,
    /// Largest single file, in bytes.
    pub file_bytes: u64,
    /// Most tar entries (files and directories).
    pub entries: usize,
    /// Largest `Chart.yaml`, in bytes.
    pub chart_yaml_bytes: usize,
}

impl Default for ArchiveLimits {
    /// Helm's 100 MiB inflated-size cap; 16 MiB per file is three times the largest CRD
    /// bundles seen in public charts.
    fn default() -> Self {
        ArchiveLimits {
            compressed_bytes: 32 * 1024 * 1024,
            unpacked_bytes: 100 * 1024 * 1024,
            file_bytes: 16 * 1024 * 1024,
            entries: 10_000,
            chart_yaml_bytes: 1024 * 1024,
        }
    }
}

/// A checked `Chart.yaml`: apiVersion v1 or v2, a valid name, a version Helm accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartId {
    /// `v1` (Helm 2 charts, which Helm 3 and 4 still install) or `v2`.
    pub api_version: ChartApiVersion,
    /// The chart's name (DNS-1123 label).
    pub name: String,
    /// The chart's version, as written (`v1.14.2` stays `v1.14.2`).
    pub version: ChartVersion,
}

/// A chart archive or directory that was refused; `origin` names the archive or directory.
///
/// Displays as `origin: reason`; the underlying cause (an I/O, YAML or semver error), if
/// any, is its [`source`](std::error::Error::source), as for every error in this crate.
#[derive(Debug)]
pub struct ChartError {
    /// The archive (file, URL, digest) or directory the error is about.
    pub origin: String,
    /// What is wrong.
    pub kind: ChartErrorKind,
}

impl std::fmt::Display for ChartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.origin, self.kind)
    }
}

impl std::error::Error for ChartError {
    // The kind is part of this error's own message; its cause comes next in the chain.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// The specific reason a chart was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChartErrorKind {
    /// The compressed archive is over the cap; nothing was inflated.
    #[error("archive is {size} bytes, more than the limit of {limit}")]
    CompressedTooLarge {
        /// Its size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// Inflating went past the total cap (a gzip bomb, or a huge chart).
    #[error("inflates to more than {limit} bytes (stopped near entry {entry})")]
    UnpackedTooLarge {
        /// The entry being read when the cap was reached.
        entry: String,
        /// The cap.
        limit: u64,
    },
    /// One file is over the per-file cap.
    #[error("file {path} is {size} bytes, more than the limit of {limit}")]
    FileTooLarge {
        /// The file.
        path: String,
        /// Its declared size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// More entries than allowed.
    #[error("more than {limit} entries (stopped at {entry})")]
    TooManyEntries {
        /// The first entry over the limit.
        entry: String,
        /// The cap.
        limit: usize,
    },
    /// Not gzip, or a corrupt gzip or tar stream.
    #[error("corrupt archive near {entry}")]
    Corrupt {
        /// The last entry read, or `(start)`.
        entry: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An entry with an absolute path.
    #[error("entry {path} has an absolute path")]
    AbsolutePath {
        /// The path as stored.
        path: String,
    },
    /// An entry with a `..` component.
    #[error("entry {path} climbs out with `..`")]
    ParentDir {
        /// The path as stored.
        path: String,
    },
    /// An entry path that is not UTF-8, holds a backslash, or has empty or `.` parts.
    #[error("entry {path} has an invalid path: {reason}")]
    BadPath {
        /// The path as stored (lossy if not UTF-8).
        path: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// An entry whose name or metadata tar readers could read differently.
    #[error("entry {path}: {reason}; tar readers could read it differently")]
    AmbiguousEntry {
        /// The entry, as the tar crate reads it.
        path: String,
        /// Which record.
        reason: &'static str,
    },
    /// A symbolic link entry.
    #[error("entry {path} is a symbolic link to {target}")]
    Symlink {
        /// The link.
        path: String,
        /// Where it points.
        target: String,
    },
    /// A hard link entry.
    #[error("entry {path} is a hard link to {target}")]
    HardLink {
        /// The link.
        path: String,
        /// What it links to.
        target: String,
    },
    /// A character or block device, or a fifo.
    #[error("entry {path} is a {kind}")]
    SpecialFile {
        /// The entry.
        path: String,
        /// `character device`, `block device` or `fifo`.
        kind: &'static str,
    },
    /// Another entry type (GNU sparse files, vendor extensions).
    #[error("entry {path} has unsupported tar type {type_flag:?}")]
    UnsupportedEntry {
        /// The entry.
        path: String,
        /// The tar type flag byte.
        type_flag: char,
    },
    /// The same path twice.
    #[error("entry {path} appears twice")]
    DuplicateEntry {
        /// The path.
        path: String,
    },
    /// A file directly at the top level, outside the chart directory.
    #[error("entry {path} is not inside the chart's directory")]
    NotInDirectory {
        /// The path.
        path: String,
    },
    /// More than one top-level directory.
    #[error("two top-level directories, {first} and {second}; a chart archive has exactly one")]
    MultipleTopLevel {
        /// The first one seen.
        first: String,
        /// The next one.
        second: String,
    },
    /// No files at all.
    #[error("the archive holds no files")]
    Empty,
    /// `Chart.yaml` is missing from the chart directory.
    #[error("{path} is missing")]
    MissingChartYaml {
        /// Where it was expected.
        path: String,
    },
    /// `Chart.yaml` (or a v1 chart's `requirements.yaml`) is not valid YAML, or says
    /// something Helm could read differently (see [`meta`]).
    #[error("{path}: {reason}")]
    ChartYamlRefused {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// `apiVersion` is neither `v1` nor `v2`.
    #[error(
        "{path}: apiVersion is {found:?}; Helm 4 loads \"v1\" and \"v2\" charts only (\"invalid chart apiVersion\")"
    )]
    ApiVersion {
        /// The file.
        path: String,
        /// What it says.
        found: String,
    },
    /// The chart name is not a DNS-1123 label.
    #[error(
        "{path}: name {name:?} is not a valid chart name (lowercase letters, digits and \
         '-', starting and ending with a letter or digit, at most 63 characters)"
    )]
    InvalidName {
        /// The file.
        path: String,
        /// The name.
        name: String,
    },
    /// The chart version is not one Helm accepts.
    #[error("{path}: version {version:?} is not a semantic version")]
    InvalidVersion {
        /// The file.
        path: String,
        /// The version as written.
        version: String,
        /// Why.
        source: VersionError,
    },
    /// A declared dependency that Helm would not find in `charts/`, or a `charts/`
    /// entry Helm cannot load.
    #[error("{path}: {reason}")]
    Dependency {
        /// The Chart.yaml (or requirements.yaml) that declares it, or the entry.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A v2 chart with `requirements.yaml`: Helm reads that file into the chart's
    /// metadata over Chart.yaml's.
    #[error(
        "{path}: a v2 chart with requirements.yaml; Helm 3 and 4 read it over Chart.yaml \
         (its dependencies, and any other key, replace Chart.yaml's): move the dependencies \
         into Chart.yaml and delete it"
    )]
    RequirementsInV2 {
        /// The requirements.yaml.
        path: String,
    },
    /// The chart is not the one the caller expected.
    #[error("{path}: name is {found:?}, expected {expected:?}")]
    NameMismatch {
        /// The file.
        path: String,
        /// The expected name.
        expected: String,
        /// The name in Chart.yaml.
        found: String,
    },
    /// The top directory is not named like the chart.
    #[error("top-level directory {dir} does not match the chart name {name:?} in Chart.yaml")]
    TopDirMismatch {
        /// The directory.
        dir: String,
        /// The name in Chart.yaml.
        name: String,
    },
    /// A file or directory of the chart source could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The chart source directory holds a symbolic link.
    #[error("{path} is a symbolic link; charts are packed without links")]
    SourceSymlink {
        /// The link.
        path: String,
    },
    /// The chart source directory holds a socket, fifo or device.
    #[error("{path} is not a regular file or directory")]
    SourceSpecial {
        /// The path.
        path: String,
    },
    /// A file of the chart source directory has other hard links: it may be a file from
    /// outside the chart, so it is refused like a symbolic link.
    #[error("{path} has {links} hard links; charts are packed without links")]
    SourceHardLink {
        /// The file.
        path: String,
        /// Its link count.
        links: u64,
    },
    /// `.helmignore` holds a pattern coxswain does not support or cannot parse.
    #[error(".helmignore line {line}: {reason}")]
    Helmignore {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Whether `name` is a valid chart name: a DNS-1123 label (what Kubernetes object names
/// derived from it need anyway).
pub fn is_valid_chart_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// Parses and checks `Chart.yaml` bytes (see [`meta`]); `path` names the file in errors.
pub fn parse_chart_yaml(
    bytes: &[u8],
    path: &str,
    limits: &ArchiveLimits,
) -> Result<ChartMetadata, ChartErrorKind> {
    if bytes.len() > limits.chart_yaml_bytes {
        return Err(ChartErrorKind::FileTooLarge {
            path: path.to_owned(),
            size: bytes.len() as u64,
            limit: limits.chart_yaml_bytes as u64,
        });
    }
    meta::parse_chart_yaml(bytes, path)
}

/// Checks a chart's name for coxswain's use (a DNS-1123 label: release and object
/// names derive from it).
pub fn check_chart_name(meta: &ChartMetadata, path: &str) -> Result<(), ChartErrorKind> {
    if is_valid_chart_name(&meta.name) {
        Ok(())
    } else {
        Err(ChartErrorKind::InvalidName {
            path: path.to_owned(),
            name: meta.name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_names_are_dns_labels() {
        for good in ["a", "cert-manager", "app1", &"a".repeat(63)] {
            assert!(is_valid_chart_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "a/b", &"a".repeat(64)] {
            assert!(!is_valid_chart_name(bad), "{bad}");
        }
    }

    #[test]
    fn chart_yaml_is_checked() {
        let limits = ArchiveLimits::default();
        let ok = parse_chart_yaml(
            b"apiVersion: v2\nname: sso\nversion: 1.2.3-rc.1\ndescription: x\nappVersion: \"26.0\"\n",
            "sso/Chart.yaml",
            &limits,
        )
        .unwrap();
        assert_eq!(ok.name, "sso");
        assert_eq!(ok.version.to_string(), "1.2.3-rc.1");
        let bad = parse_chart_yaml(
            b"apiVersion: v2\nname: A_b\nversion: 1.0.0\n",
            "a/Chart.yaml",
            &limits,
        )
        .unwrap();
        let err = check_chart_name(&bad, "a/Chart.yaml").unwrap_err();
        assert!(matches!(err, ChartErrorKind::InvalidName { .. }), "{err}");
        let err = parse_chart_yaml(
            b"apiVersion: v2\nname: a\nversion: \"1.0.0-01\"\n",
            "a/Chart.yaml",
            &limits,
        )
        .unwrap_err();
        assert!(
            matches!(err, ChartErrorKind::InvalidVersion { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("a/Chart.yaml"), "{err}");
        let err = parse_chart_yaml(
            b"apiVersion: v2\nname: a\nversion: 1.0.0\n",
            "a/Chart.yaml",
            &ArchiveLimits {
                chart_yaml_bytes: 10,
                ..limits
            },
        )
        .unwrap_err();
        assert!(matches!(err, ChartErrorKind::FileTooLarge { .. }), "{err}");
    }
}
