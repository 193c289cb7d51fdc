//! Reading a chart archive in memory, entry by entry, with every limit checked before
//! the bytes it guards are read.

use std::collections::BTreeMap;
use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::format::{ChartVersion, constraint_matches};

use super::{
    ArchiveLimits, ChartApiVersion, ChartError, ChartErrorKind, ChartId, ChartMetadata,
    check_chart_name, meta, parse_chart_yaml,
};

/// A chart archive that passed every check: its files, held in memory, keyed by their path
/// below the chart's top directory (`Chart.yaml`, `templates/deployment.yaml`, ...).
#[derive(Clone, Debug)]
pub struct ChartArchive {
    /// The chart's name and version from `Chart.yaml`.
    pub id: ChartId,
    /// The files, by path relative to the top directory.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Lowercase hex sha256 of the archive's bytes, as read.
    pub sha256: String,
    /// The archive's size in bytes.
    pub size: u64,
}

impl ChartArchive {
    /// Reads and checks an archive. `origin` names it in errors; `expected_name`, when
    /// given, must equal the name in `Chart.yaml` (a channel release naming chart `sso`
    /// must not get another chart).
    pub fn read(
        bytes: &[u8],
        origin: &str,
        expected_name: Option<&str>,
        limits: &ArchiveLimits,
    ) -> Result<Self, ChartError> {
        read_archive(bytes, expected_name, limits, 0).map_err(|kind| ChartError {
            origin: origin.to_owned(),
            kind,
        })
    }

    /// The chart's name.
    pub fn name(&self) -> &str {
        &self.id.name
    }

    /// The chart's version.
    pub fn version(&self) -> &ChartVersion {
        &self.id.version
    }
}

/// Marks the error a [`CountingReader`] raises at its cap, to tell it apart from a
/// corrupt stream once the tar crate has wrapped it.
#[derive(Debug)]
struct InflateCapReached;

impl std::fmt::Display for InflateCapReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("inflated-size cap reached")
    }
}

impl std::error::Error for InflateCapReached {}

/// Counts inflated bytes and fails once more than `limit` have come out, whatever asks
/// for them (file bodies, tar headers, padding, GNU/PAX extension records the tar crate
/// buffers on its own).
struct CountingReader<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read > self.limit {
            return Err(io::Error::other(InflateCapReached));
        }
        // Ask for at most one byte past the cap, so going over is noticed without
        // inflating much more.
        let room = usize::try_from(self.limit - self.read + 1).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(InflateCapReached));
        }
        Ok(n)
    }
}

fn is_cap_error(error: &io::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.get_ref().map(|e| e as _);
    while let Some(e) = source {
        if e.is::<InflateCapReached>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<InflateCapReached>())
        {
            return true;
        }
        source = e.source();
    }
    false
}

fn stream_error(error: io::Error, entry: &str, limits: &ArchiveLimits) -> ChartErrorKind {
    if is_cap_error(&error) {
        ChartErrorKind::UnpackedTooLarge {
            entry: entry.to_owned(),
            limit: limits.unpacked_bytes,
        }
    } else {
        ChartErrorKind::Corrupt {
            entry: entry.to_owned(),
            source: error,
        }
    }
}

fn read_archive(
    bytes: &[u8],
    expected_name: Option<&str>,
    limits: &ArchiveLimits,
    depth: usize,
) -> Result<ChartArchive, ChartErrorKind> {
    let size = bytes.len() as u64;
    if size > limits.compressed_bytes {
        return Err(ChartErrorKind::CompressedTooLarge {
            size,
            limit: limits.compressed_bytes,
        });
    }
    let counting = CountingReader {
        inner: MultiGzDecoder::new(bytes),
        read: 0,
        limit: limits.unpacked_bytes,
    };
    let mut tar = tar::Archive::new(counting);
    let mut last_entry = String::from("(start)");
    let entries = tar
        .entries()
        .map_err(|e| stream_error(e, &last_entry, limits))?;

    let mut top: Option<String> = None;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut declared_total: u64 = 0;
    let mut count = 0usize;
    for entry in entries {
        let mut entry = entry.map_err(|e| stream_error(e, &last_entry, limits))?;
        let header_type = entry.header().entry_type();
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        last_entry.clone_from(&shown);
        if header_type == EntryType::XGlobalHeader {
            // A pax global header (`git archive` writes one) carries metadata only.
            continue;
        }
        count += 1;
        if count > limits.entries {
            return Err(ChartErrorKind::TooManyEntries {
                entry: shown,
                limit: limits.entries,
            });
        }
        check_path_records(&mut entry, &raw_path, &shown)?;
        if header_type != EntryType::Directory && raw_path.ends_with(b"/") {
            // Go's tar reader turns an old-style regular file with a trailing slash into a
            // directory; the tar crate keeps it a file.
            return Err(ChartErrorKind::BadPath {
                path: shown,
                reason: "is a file whose name ends with `/` (a directory to Helm)",
            });
        }
        let parts = check_entry_path(&raw_path, &shown)?;
        match header_type {
            EntryType::Regular | EntryType::Continuous | EntryType::Directory => {}
            EntryType::Symlink | EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                return Err(if header_type == EntryType::Symlink {
                    ChartErrorKind::Symlink {
                        path: shown,
                        target,
                    }
                } else {
                    ChartErrorKind::HardLink {
                        path: shown,
                        target,
                    }
                });
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let kind = match header_type {
                    EntryType::Char => "character device",
                    EntryType::Block => "block device",
                    _ => "fifo",
                };
                return Err(ChartErrorKind::SpecialFile { path: shown, kind });
            }
            other => {
                return Err(ChartErrorKind::UnsupportedEntry {
                    path: shown,
                    type_flag: char::from(other.as_byte()),
                });
            }
        }
        let first = &parts[0];
        match &top {
            None => top = Some(first.clone()),
            Some(existing) if existing != first => {
                return Err(ChartErrorKind::MultipleTopLevel {
                    first: existing.clone(),
                    second: first.clone(),
                });
            }
            Some(_) => {}
        }
        if header_type == EntryType::Directory {
            continue;
        }
        if parts.len() < 2 {
            return Err(ChartErrorKind::NotInDirectory { path: shown });
        }
        // The effective size: a pax `size` record overrides the header's field.
        let declared = entry.size();
        if declared > limits.file_bytes {
            return Err(ChartErrorKind::FileTooLarge {
                path: shown,
                size: declared,
                limit: limits.file_bytes,
            });
        }
        declared_total = declared_total.saturating_add(declared);
        if declared_total > limits.unpacked_bytes {
            return Err(ChartErrorKind::UnpackedTooLarge {
                entry: shown,
                limit: limits.unpacked_bytes,
            });
        }
        let relative = parts[1..].join("/");
        if files.contains_key(&relative) {
            return Err(ChartErrorKind::DuplicateEntry { path: shown });
        }
        let mut body = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        (&mut entry)
            .take(limits.file_bytes.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(|e| stream_error(e, &shown, limits))?;
        if body.len() as u64 > limits.file_bytes {
            return Err(ChartErrorKind::FileTooLarge {
                path: shown,
                size: body.len() as u64,
                limit: limits.file_bytes,
            });
        }
        files.insert(relative, body);
    }

    let Some(top) = top.filter(|_| !files.is_empty()) else {
        return Err(ChartErrorKind::Empty);
    };
    let meta = check_chart_tree(&files, &top, limits, depth)?;
    let chart_yaml_path = format!("{top}/Chart.yaml");
    check_chart_name(&meta, &chart_yaml_path)?;
    if let Some(expected) = expected_name
        && expected != meta.name
    {
        return Err(ChartErrorKind::NameMismatch {
            path: chart_yaml_path,
            expected: expected.to_owned(),
            found: meta.name,
        });
    }
    if top != meta.name {
        return Err(ChartErrorKind::TopDirMismatch {
            dir: top,
            name: meta.name,
        });
    }
    Ok(ChartArchive {
        id: ChartId {
            api_version: meta.api_version,
            name: meta.name,
            version: meta.version,
        },
        files,
        sha256: hex::encode(Sha256::digest(bytes)),
        size,
    })
}

/// How deep charts may nest in `charts/` (Helm has no bound; real charts nest two or
/// three deep).
const MAX_SUBCHART_DEPTH: usize = 5;

/// Checks one chart's files (keyed by path below its directory, `shown` naming that
/// directory in errors) as Helm's loader reads them: Chart.yaml; for a v1 chart the
/// dependencies of `requirements.yaml`, for a v2 chart no `requirements.yaml`; every
/// entry of `charts/` loads as a chart (a directory or a `.tgz`, checked the same way,
/// recursively); every declared dependency is there under its name with a version its
/// constraint admits (Helm refuses to install a chart whose dependency is missing,
/// whatever its `condition`, and silently ignores the condition and alias of one whose
/// version does not match).
fn check_chart_tree(
    files: &BTreeMap<String, Vec<u8>>,
    shown: &str,
    limits: &ArchiveLimits,
    depth: usize,
) -> Result<ChartMetadata, ChartErrorKind> {
    let chart_yaml_path = format!("{shown}/Chart.yaml");
    let chart_yaml = files
        .get("Chart.yaml")
        .ok_or_else(|| ChartErrorKind::MissingChartYaml {
            path: chart_yaml_path.clone(),
        })?;
    let mut meta = parse_chart_yaml(chart_yaml, &chart_yaml_path, limits)?;
    let mut declared_in = chart_yaml_path.clone();
    if let Some(requirements) = files.get("requirements.yaml") {
        let path = format!("{shown}/requirements.yaml");
        if meta.api_version != ChartApiVersion::V1 {
            return Err(ChartErrorKind::RequirementsInV2 { path });
        }
        if let Some(deps) = meta::parse_requirements(requirements, &path)? {
            meta.dependencies = deps;
            declared_in = path;
        }
    }

    // charts/: one chart per first path component, as Helm groups them; names starting
    // with `.` or `_` and `.prov` files are not charts to Helm.
    let mut subcharts: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for (path, data) in files {
        let Some(rest) = path.strip_prefix("charts/") else {
            continue;
        };
        if rest.starts_with(['.', '_']) || rest.ends_with(".prov") {
            continue;
        }
        let (group, inner) = rest.split_once('/').unwrap_or((rest, ""));
        subcharts
            .entry(group)
            .or_default()
            .insert(inner.to_owned(), data.clone());
    }
    if !subcharts.is_empty() && depth >= MAX_SUBCHART_DEPTH {
        return Err(ChartErrorKind::Dependency {
            path: format!("{shown}/charts"),
            reason: format!("subcharts nest deeper than {MAX_SUBCHART_DEPTH} levels"),
        });
    }
    let mut found: Vec<(String, ChartVersion)> = Vec::new();
    for (group, sub_files) in &subcharts {
        let sub_shown = format!("{shown}/charts/{group}");
        let sub = if group.ends_with(".tgz") {
            let Some(bytes) = sub_files.get("") else {
                return Err(ChartErrorKind::Dependency {
                    path: sub_shown,
                    reason: "a directory named like an archive; Helm cannot load it".to_owned(),
                });
            };
            read_archive(bytes, None, limits, depth + 1)
                .map_err(|e| nested(&sub_shown, e))?
                .id
        } else {
            if sub_files.contains_key("") {
                return Err(ChartErrorKind::Dependency {
                    path: sub_shown,
                    reason: "a file in charts/ that is neither a chart directory nor a .tgz; \
                             Helm fails to load the chart"
                        .to_owned(),
                });
            }
            let m = check_chart_tree(sub_files, &sub_shown, limits, depth + 1)?;
            ChartId {
                api_version: m.api_version,
                name: m.name,
                version: m.version,
            }
        };
        found.push((sub.name, sub.version));
    }
    for dep in &meta.dependencies {
        let same_name: Vec<&ChartVersion> = found
            .iter()
            .filter(|(name, _)| *name == dep.name)
            .map(|(_, v)| v)
            .collect();
        if same_name.is_empty() {
            return Err(ChartErrorKind::Dependency {
                path: declared_in,
                reason: format!(
                    "dependency `{}` is not in charts/ (as a directory or a .tgz); helm \
                     install and upgrade refuse the chart whatever its condition (run `helm \
                     dependency build` before publishing)",
                    dep.name
                ),
            });
        }
        let Some(constraint) = &dep.version else {
            continue;
        };
        let mut matched = false;
        for version in &same_name {
            matched |= constraint_matches(constraint, version).map_err(|reason| {
                ChartErrorKind::Dependency {
                    path: declared_in.clone(),
                    reason: format!("dependency `{}`: {reason}", dep.name),
                }
            })?;
        }
        if !matched {
            return Err(ChartErrorKind::Dependency {
                path: declared_in,
                reason: format!(
                    "dependency `{}` wants version `{constraint}`, charts/ holds {}; Helm \
                     would not match them (and would ignore its condition and alias)",
                    dep.name,
                    same_name
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    Ok(meta)
}

/// An error inside a subchart archive, named by where the archive sits.
fn nested(at: &str, kind: ChartErrorKind) -> ChartErrorKind {
    ChartErrorKind::Dependency {
        path: at.to_owned(),
        reason: kind.to_string(),
    }
}

/// Refuses the extension records whose reading differs between tar readers: a pax
/// record that does not parse or names a key twice (Go keeps the last, the tar crate
/// the first), a pax `path` the header's own name is not the start of (Go's writer
/// puts the ASCII prefix of the path there, so anything else is a second name), a pax
/// `linkpath`, and GNU long-name records (which `helm package` never writes, and which
/// Go and the tar crate cut at NUL bytes differently).
fn check_path_records<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    effective: &[u8],
    shown: &str,
) -> Result<(), ChartErrorKind> {
    let refuse = |reason: &'static str| ChartErrorKind::AmbiguousEntry {
        path: shown.to_owned(),
        reason,
    };
    let header_name = entry.header().path_bytes().into_owned();
    let mut pax_path: Option<Vec<u8>> = None;
    let extensions = entry
        .pax_extensions()
        .map_err(|_| refuse("its pax header cannot be read"))?;
    if let Some(extensions) = extensions {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for record in extensions {
            let record = record.map_err(|_| refuse("a pax record that does not parse"))?;
            let key = record.key_bytes().to_vec();
            if keys.contains(&key) {
                return Err(refuse("a pax record repeats a key"));
            }
            if key == b"linkpath" {
                return Err(refuse("a pax linkpath record"));
            }
            if key == b"path" {
                pax_path = Some(record.value_bytes().to_vec());
            }
            keys.push(key);
        }
    }
    match pax_path {
        Some(path) => {
            let ascii: Vec<u8> = path.iter().copied().filter(u8::is_ascii).collect();
            let stem = header_name.strip_suffix(b"/").unwrap_or(&header_name);
            if !(path.starts_with(stem) || ascii.starts_with(stem)) {
                return Err(refuse(
                    "a pax path record that disagrees with the header's name",
                ));
            }
        }
        None if effective != header_name.as_slice() => {
            return Err(refuse("a GNU long-name record"));
        }
        None => {}
    }
    Ok(())
}

/// Splits an entry path into its components, refusing anything that could name a place
/// outside the chart directory or be read differently by another tool.
fn check_entry_path(raw: &[u8], shown: &str) -> Result<Vec<String>, ChartErrorKind> {
    let bad = |reason| ChartErrorKind::BadPath {
        path: shown.to_owned(),
        reason,
    };
    let Ok(path) = std::str::from_utf8(raw) else {
        return Err(bad("not UTF-8"));
    };
    if path.starts_with('/') {
        return Err(ChartErrorKind::AbsolutePath {
            path: shown.to_owned(),
        });
    }
    if path.contains('\\') {
        // Helm turns backslashes into separators; refusing them avoids two readings.
        return Err(bad("contains a backslash"));
    }
    if path.contains('\0') {
        return Err(bad("contains NUL"));
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        match part {
            ".." => {
                return Err(ChartErrorKind::ParentDir {
                    path: shown.to_owned(),
                });
            }
            "" => return Err(bad("has an empty component")),
            "." => return Err(bad("has a `.` component")),
            _ => parts.push(part.to_owned()),
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    /// A tar.gz built by hand, so each test names exactly the entries it needs.
    fn tgz(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, path, *data).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    const CHART_YAML: &[u8] = b"apiVersion: v2\nname: demo\nversion: 0.1.0\n";

    fn read(bytes: &[u8]) -> Result<ChartArchive, ChartError> {
        ChartArchive::read(bytes, "demo.tgz", Some("demo"), &ArchiveLimits::default())
    }

    #[test]
    fn a_plain_chart_reads_into_memory() {
        let bytes = tgz(&[
            ("demo/", EntryType::Directory, b""),
            ("demo/Chart.yaml", EntryType::Regular, CHART_YAML),
            (
                "demo/templates/cm.yaml",
                EntryType::Regular,
                b"kind: ConfigMap\n",
            ),
        ]);
        let chart = read(&bytes).unwrap();
        assert_eq!(chart.name(), "demo");
        assert_eq!(chart.version().to_string(), "0.1.0");
        assert_eq!(
            chart.files.keys().collect::<Vec<_>>(),
            vec!["Chart.yaml", "templates/cm.yaml"]
        );
        assert_eq!(chart.size, bytes.len() as u64);
        assert_eq!(chart.sha256, hex::encode(Sha256::digest(&bytes)));
    }

    #[test]
    fn a_v1_chart_takes_its_dependencies_from_requirements_yaml() {
        let sub = tgz(&[(
            "database/Chart.yaml",
            EntryType::Regular,
            b"apiVersion: v1\nname: database\nversion: v0.3.0\n",
        )]);
        let bytes = tgz(&[
            (
                "demo/Chart.yaml",
                EntryType::Regular,
                b"apiVersion: v1\nname: demo\nversion: 1.0.0\n",
            ),
            (
                "demo/requirements.yaml",
                EntryType::Regular,
                b"dependencies:\n- name: database\n  version: ~0.3.0\n  condition: database.enabled\n",
            ),
            ("demo/requirements.lock", EntryType::Regular, b"dependencies: []\n"),
            ("demo/charts/database-v0.3.0.tgz", EntryType::Regular, &sub),
        ]);
        let chart = read(&bytes).unwrap();
        assert_eq!(chart.id.api_version, crate::chart::ChartApiVersion::V1);
        // Without the subchart, helm install refuses it; so does the reader.
        let bytes = tgz(&[
            (
                "demo/Chart.yaml",
                EntryType::Regular,
                b"apiVersion: v1\nname: demo\nversion: 1.0.0\n",
            ),
            (
                "demo/requirements.yaml",
                EntryType::Regular,
                b"dependencies:\n- name: database\n  version: ~0.3.0\n",
            ),
            (
                "demo/charts/database/Chart.yaml",
                EntryType::Regular,
                b"apiVersion: v2\nname: postgres\nversion: 0.3.0\n",
            ),
        ]);
        let err = read(&bytes).unwrap_err();
        assert!(
            err.to_string()
                .contains("dependency `database` is not in charts/"),
            "{err}"
        );
        // A broken subchart is the chart's problem, named by where it sits.
        let bytes = tgz(&[
            ("demo/Chart.yaml", EntryType::Regular, CHART_YAML),
            ("demo/charts/README.md", EntryType::Regular, b"# stray"),
        ]);
        let err = read(&bytes).unwrap_err();
        assert!(
            err.to_string()
                .contains("demo/charts/README.md: a file in charts/"),
            "{err}"
        );
    }

    /// An archive whose `demo/values.yaml` entry comes after `pax` records.
    fn with_pax(pax: &[(&str, &[u8])], name: &str) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(CHART_YAML.len() as u64);
        builder
            .append_data(&mut header, "demo/Chart.yaml", CHART_YAML)
            .unwrap();
        builder.append_pax_extensions(pax.iter().copied()).unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(3);
        builder
            .append_data(&mut header, name, &b"a: 1"[..3])
            .unwrap();
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&builder.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn records_tar_readers_read_differently_are_refused() {
        let ambiguous = |bytes: &[u8], needle: &str| match read(bytes) {
            Err(ChartError {
                kind: ChartErrorKind::AmbiguousEntry { reason, .. },
                ..
            }) => assert!(reason.contains(needle), "{reason}"),
            other => panic!("{needle}: {other:?}"),
        };
        ambiguous(
            &with_pax(
                &[("path", b"demo/a.yaml"), ("path", b"demo/b.yaml")],
                "demo/a.yaml",
            ),
            "repeats a key",
        );
        ambiguous(
            &with_pax(&[("path", b"demo/templates/x.yaml")], "demo/values.yaml"),
            "disagrees with the header's name",
        );
        ambiguous(
            &with_pax(&[("linkpath", b"/etc/passwd")], "demo/values.yaml"),
            "linkpath",
        );
        // A pax path the header name starts, as Go writes long names, is fine.
        let long = format!("demo/templates/{}.yaml", "x".repeat(120));
        read(&with_pax(&[("path", long.as_bytes())], &long[..100])).unwrap();
        // GNU long-name records (the tar crate writes one for a long name in a GNU header).
        ambiguous(
            &tgz(&[
                ("demo/Chart.yaml", EntryType::Regular, CHART_YAML),
                (&long, EntryType::Regular, b"x"),
            ]),
            "GNU long-name record",
        );
        // A regular file whose name ends with a slash is a directory to Go.
        let err = read(&tgz(&[
            ("demo/Chart.yaml", EntryType::Regular, CHART_YAML),
            ("demo/values.yaml/", EntryType::Regular, b"a: 1"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("ends with `/`"), "{err}");
    }

    #[test]
    fn paths_are_checked_component_by_component() {
        assert_eq!(check_entry_path(b"a/b/c", "").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(check_entry_path(b"a/", "").unwrap(), vec!["a"]);
        assert!(matches!(
            check_entry_path(b"/a/b", "/a/b"),
            Err(ChartErrorKind::AbsolutePath { .. })
        ));
        assert!(matches!(
            check_entry_path(b"a/../../b", ""),
            Err(ChartErrorKind::ParentDir { .. })
        ));
        for bad in [&b"a//b"[..], b"./a", b"a\\b", b"a/\xff"] {
            assert!(
                matches!(
                    check_entry_path(bad, ""),
                    Err(ChartErrorKind::BadPath { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits_apply_to_compressed_size_entries_and_inflated_bytes() {
        let bytes = tgz(&[
            ("demo/Chart.yaml", EntryType::Regular, CHART_YAML),
            ("demo/a", EntryType::Regular, &[0u8; 3000]),
        ]);
        let limits = |f: fn(&mut ArchiveLimits)| {
            let mut l = ArchiveLimits::default();
            f(&mut l);
            l
        };
        let err = ChartArchive::read(&bytes, "x", None, &limits(|l| l.compressed_bytes = 10))
            .unwrap_err();
        assert!(
            matches!(err.kind, ChartErrorKind::CompressedTooLarge { .. }),
            "{err}"
        );
        let err = ChartArchive::read(&bytes, "x", None, &limits(|l| l.entries = 1)).unwrap_err();
        assert!(
            matches!(&err.kind, ChartErrorKind::TooManyEntries { entry, .. } if entry == "demo/a"),
            "{err}"
        );
        let err =
            ChartArchive::read(&bytes, "x", None, &limits(|l| l.file_bytes = 2999)).unwrap_err();
        assert!(
            matches!(err.kind, ChartErrorKind::FileTooLarge { size: 3000, .. }),
            "{err}"
        );
        // The inflate counter trips inside the second header, before any declared size
        // could be compared: it guards what the tar reader consumes by itself.
        let err = ChartArchive::read(&bytes, "x", None, &limits(|l| l.unpacked_bytes = 1000))
            .unwrap_err();
        assert!(
            matches!(err.kind, ChartErrorKind::UnpackedTooLarge { .. }),
            "{err}"
        );
    }

    #[test]
    fn mutated_archives_never_panic() {
        // Deterministic xorshift: flip, truncate and splice bytes of a valid archive, in
        // the compressed stream and in the tar stream under it. Every outcome is fine
        // except a panic or an accepted archive with files outside the chart.
        let tar_entries: &[(&str, EntryType, &[u8])] = &[
            ("demo/", EntryType::Directory, b""),
            ("demo/Chart.yaml", EntryType::Regular, CHART_YAML),
            (
                "demo/templates/cm.yaml",
                EntryType::Regular,
                b"kind: ConfigMap\n",
            ),
        ];
        let valid = tgz(tar_entries);
        let mut plain_tar = Vec::new();
        flate2::read::GzDecoder::new(&valid[..])
            .read_to_end(&mut plain_tar)
            .unwrap();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..3000 {
            let compressed_layer = round % 2 == 0;
            let mut bytes = if compressed_layer {
                valid.clone()
            } else {
                plain_tar.clone()
            };
            for _ in 0..=(next() % 4) {
                let at = (next() % bytes.len() as u64) as usize;
                match next() % 3 {
                    0 => bytes[at] ^= 1 << (next() % 8),
                    1 => bytes.truncate(at.max(1)),
                    _ => bytes[at] = (next() & 0xff) as u8,
                }
            }
            if !compressed_layer {
                let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
                gz.write_all(&bytes).unwrap();
                bytes = gz.finish().unwrap();
            }
            if let Ok(chart) = read(&bytes) {
                for path in chart.files.keys() {
                    assert!(check_entry_path(path.as_bytes(), path).is_ok(), "{path}");
                }
            }
        }
    }

    #[test]
    fn the_cause_of_a_corrupt_archive_is_its_source() {
        let err = read(b"not gzip at all").unwrap_err();
        assert!(matches!(err.kind, ChartErrorKind::Corrupt { .. }), "{err}");
        assert_eq!(err.to_string(), "demo.tgz: corrupt archive near (start)");
        let cause = std::error::Error::source(&err).expect("the I/O error");
        assert!(cause.downcast_ref::<io::Error>().is_some(), "{cause}");
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        for bytes in [&b""[..], b"not gzip at all", &[0x1f, 0x8b, 8, 0, 0, 0][..]] {
            let err = read(bytes).unwrap_err();
            assert!(
                matches!(
                    err.kind,
                    ChartErrorKind::Corrupt { .. } | ChartErrorKind::Empty
                ),
                "{err}"
            );
        }
    }
}
