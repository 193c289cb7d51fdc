//! Reading a chart archive in memory, entry by entry, with every limit checked before
//! the bytes it guards are read.

use std::collections::BTreeMap;
use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::format::ChartVersion;

use super::{ArchiveLimits, ChartError, ChartErrorKind, ChartId, parse_chart_yaml};

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
        read_archive(bytes, expected_name, limits).map_err(|kind| ChartError {
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
    let chart_yaml_path = format!("{top}/Chart.yaml");
    let chart_yaml = files
        .get("Chart.yaml")
        .ok_or_else(|| ChartErrorKind::MissingChartYaml {
            path: chart_yaml_path.clone(),
        })?;
    let id = parse_chart_yaml(chart_yaml, &chart_yaml_path, limits)?;
    if let Some(expected) = expected_name
        && expected != id.name
    {
        return Err(ChartErrorKind::NameMismatch {
            path: chart_yaml_path,
            expected: expected.to_owned(),
            found: id.name,
        });
    }
    if top != id.name {
        return Err(ChartErrorKind::TopDirMismatch {
            dir: top,
            name: id.name,
        });
    }
    Ok(ChartArchive {
        id,
        files,
        sha256: hex::encode(Sha256::digest(bytes)),
        size,
    })
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
