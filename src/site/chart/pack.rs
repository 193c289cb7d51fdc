//! Packing a chart directory into a deterministic `.tgz`.
//!
//! Same input, same bytes: entries in sorted order (directory before its contents,
//! siblings by byte order of their names), every header with mtime 0, uid/gid 0, no user
//! or group names, mode 0644 for files and 0755 for directories (execute bits are never
//! needed in a chart), GNU tar headers (long paths use a pax `path` record, as Go's tar writer does), and a gzip header without timestamp or file name (OS byte 255, "unknown").
//! The gzip stream comes from flate2's backend at its default level: byte-identical
//! output is promised for the same coxswain build, not across compressor versions (the
//! digest is taken from the bytes actually published, so that never breaks a channel).

use std::io::Write;
use std::path::Path;

use flate2::{Compression, GzBuilder};
use tar::{EntryType, Header};

use super::helmignore::Rules;
use super::{
    ArchiveLimits, ChartArchive, ChartError, ChartErrorKind, ChartMetadata, check_chart_name,
    parse_chart_yaml,
};

/// A packed chart: the archive's bytes and what reading them back gave.
#[derive(Clone, Debug)]
pub struct PackedChart {
    /// The `.tgz` bytes.
    pub bytes: Vec<u8>,
    /// The archive as [`ChartArchive::read`] sees it (name, version, files, digest).
    pub archive: ChartArchive,
}

/// One thing to write into the archive, by path relative to the chart directory.
enum Item {
    Dir(String),
    File(String, Vec<u8>),
}

/// Packs the chart in `dir` (which holds `Chart.yaml`) into a `.tgz` whose top directory
/// is the chart's name, like `helm package`. Refuses symbolic links and special files,
/// and anything the reader would refuse: the result is read back with
/// [`ChartArchive::read`] before it is returned, so what is packed is what agents accept.
pub fn pack_dir(dir: &Path, limits: &ArchiveLimits) -> Result<PackedChart, ChartError> {
    ChartDirContents::read(dir, limits)?.pack(limits)
}

/// A chart directory read into memory the way [`pack_dir`] reads it (`.helmignore`
/// honoured, no links), before it is packed: `charts/` can still be completed in
/// memory (see `dependencies: build`), never on disk.
pub struct ChartDirContents {
    /// Chart.yaml as read.
    pub meta: ChartMetadata,
    origin: String,
    items: Vec<Item>,
}

impl ChartDirContents {
    /// Reads the chart in `dir`: Chart.yaml checked, every file not ignored.
    pub fn read(dir: &Path, limits: &ArchiveLimits) -> Result<Self, ChartError> {
        let origin = dir.display().to_string();
        let fail = |kind| ChartError {
            origin: origin.clone(),
            kind,
        };
        let chart_yaml_path = dir.join("Chart.yaml");
        let chart_yaml = match read_source_file(&chart_yaml_path, limits.file_bytes) {
            Ok(bytes) => bytes,
            Err(ChartErrorKind::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(fail(ChartErrorKind::MissingChartYaml {
                    path: chart_yaml_path.display().to_string(),
                }));
            }
            Err(kind) => return Err(fail(kind)),
        };
        let meta = parse_chart_yaml(&chart_yaml, &chart_yaml_path.display().to_string(), limits)
            .map_err(fail)?;
        check_chart_name(&meta, &chart_yaml_path.display().to_string()).map_err(fail)?;
        let rules = match read_source_file(&dir.join(".helmignore"), limits.file_bytes) {
            Ok(bytes) => Rules::parse(&String::from_utf8_lossy(&bytes)).map_err(fail)?,
            Err(ChartErrorKind::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Rules::defaults()
            }
            Err(kind) => return Err(fail(kind)),
        };
        let mut items = Vec::new();
        let mut budget = Budget {
            limits,
            entries: 1,
            bytes: 0,
        };
        walk(dir, "", &rules, &mut items, &mut budget).map_err(fail)?;
        Ok(Self {
            meta,
            origin,
            items,
        })
    }

    /// A file's bytes, by path relative to the chart directory.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.items.iter().find_map(|item| match item {
            Item::File(p, data) if p == path => Some(data.as_slice()),
            _ => None,
        })
    }

    /// The paths of the files and directories directly in `charts/`.
    pub fn subchart_entries(&self) -> Vec<String> {
        self.items
            .iter()
            .filter_map(|item| {
                let path = match item {
                    Item::Dir(p) | Item::File(p, _) => p,
                };
                path.strip_prefix("charts/")
                    .filter(|rest| !rest.is_empty() && !rest.contains('/'))
                    .map(|_| path.clone())
            })
            .collect()
    }

    /// Removes a file (a stale archive in `charts/`).
    pub fn remove_file(&mut self, path: &str) {
        self.items
            .retain(|item| !matches!(item, Item::File(p, _) if p == path));
    }

    /// Adds (or replaces) a file in `charts/`, creating that directory if needed; entries
    /// keep the order a walk of the directory would give them.
    pub fn add_subchart_archive(&mut self, file_name: &str, bytes: Vec<u8>) {
        let path = format!("charts/{file_name}");
        self.remove_file(&path);
        if !self
            .items
            .iter()
            .any(|item| matches!(item, Item::Dir(p) if p == "charts"))
        {
            self.items.push(Item::Dir("charts".to_owned()));
        }
        self.items.push(Item::File(path, bytes));
        // Component-wise order is the walk's order: siblings sorted, a directory
        // followed by its contents.
        self.items.sort_by(|a, b| {
            let key = |item: &Item| match item {
                Item::Dir(p) | Item::File(p, _) => {
                    p.split('/').map(str::to_owned).collect::<Vec<_>>()
                }
            };
            key(a).cmp(&key(b))
        });
    }

    /// Packs what was read (and added) into the archive, read back with
    /// [`ChartArchive::read`] (which checks every declared dependency).
    pub fn pack(self, limits: &ArchiveLimits) -> Result<PackedChart, ChartError> {
        let fail = |kind| ChartError {
            origin: self.origin.clone(),
            kind,
        };
        let tar = build_tar(&self.meta.name, &self.items).map_err(|source| {
            fail(ChartErrorKind::Io {
                path: "(tar in memory)".into(),
                source,
            })
        })?;
        let bytes = gzip(&tar).map_err(|source| {
            fail(ChartErrorKind::Io {
                path: "(gzip in memory)".into(),
                source,
            })
        })?;
        let archive = ChartArchive::read(&bytes, &self.origin, Some(&self.meta.name), limits)?;
        Ok(PackedChart { bytes, archive })
    }
}

/// Reads one file of a chart source directory: a regular file, not a symbolic link, with
/// no other hard link (which could be a file from outside the chart), of at most `limit`
/// bytes; a FIFO or device is refused before it is opened (see [`crate::fsread`]).
fn read_source_file(path: &Path, limit: u64) -> Result<Vec<u8>, ChartErrorKind> {
    use crate::fsread::{ReadError, Rules, read};
    let shown = path.display().to_string();
    read(path, Rules::no_links(limit)).map_err(|e| match e {
        ReadError::Io { source, .. } => ChartErrorKind::Io {
            path: shown,
            source,
        },
        ReadError::Symlink { .. } => ChartErrorKind::SourceSymlink { path: shown },
        ReadError::HardLink { links, .. } => ChartErrorKind::SourceHardLink { path: shown, links },
        ReadError::TooLarge { size, limit, .. } => ChartErrorKind::FileTooLarge {
            path: shown,
            size,
            limit,
        },
        ReadError::NotRegular { .. } | ReadError::Changed { .. } => {
            ChartErrorKind::SourceSpecial { path: shown }
        }
    })
}

/// Entry and byte counts so far, checked against the reader's limits while walking, so a
/// huge directory fails before it is all in memory.
struct Budget<'a> {
    limits: &'a ArchiveLimits,
    entries: usize,
    bytes: u64,
}

fn walk(
    dir: &Path,
    prefix: &str,
    rules: &Rules,
    items: &mut Vec<Item>,
    budget: &mut Budget<'_>,
) -> Result<(), ChartErrorKind> {
    let io = |path: &Path, source| ChartErrorKind::Io {
        path: path.display().to_string(),
        source,
    };
    let mut children = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        let Ok(name) = entry.file_name().into_string() else {
            return Err(ChartErrorKind::BadPath {
                path: path.display().to_string(),
                reason: "not UTF-8",
            });
        };
        children.push((name, path));
    }
    children.sort();
    for (name, path) in children {
        let relative = format!("{prefix}{name}");
        if name.contains('\\') {
            return Err(ChartErrorKind::BadPath {
                path: path.display().to_string(),
                reason: "contains a backslash",
            });
        }
        let meta = std::fs::symlink_metadata(&path).map_err(|e| io(&path, e))?;
        let is_dir = meta.is_dir();
        if rules.is_ignored(&relative, is_dir) {
            continue;
        }
        if meta.file_type().is_symlink() {
            return Err(ChartErrorKind::SourceSymlink {
                path: path.display().to_string(),
            });
        }
        budget.entries += 1;
        if budget.entries > budget.limits.entries {
            return Err(ChartErrorKind::TooManyEntries {
                entry: relative,
                limit: budget.limits.entries,
            });
        }
        if is_dir {
            items.push(Item::Dir(relative.clone()));
            walk(&path, &format!("{relative}/"), rules, items, budget)?;
        } else if meta.is_file() {
            if meta.len() > budget.limits.file_bytes {
                return Err(ChartErrorKind::FileTooLarge {
                    path: path.display().to_string(),
                    size: meta.len(),
                    limit: budget.limits.file_bytes,
                });
            }
            budget.bytes += meta.len();
            if budget.bytes > budget.limits.unpacked_bytes {
                return Err(ChartErrorKind::UnpackedTooLarge {
                    entry: relative,
                    limit: budget.limits.unpacked_bytes,
                });
            }
            let data = read_source_file(&path, budget.limits.file_bytes)?;
            items.push(Item::File(relative, data));
        } else {
            return Err(ChartErrorKind::SourceSpecial {
                path: path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// The size of a tar header's name field.
const NAME_FIELD: usize = 100;

fn build_tar(top: &str, items: &[Item]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |path: &str, kind: EntryType, data: &[u8]| {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if path.len() <= NAME_FIELD {
            return builder.append_data(&mut header, path, data);
        }
        // A long path goes in a pax `path` record, with its first 100 bytes in the
        // header, as Go's writer (`helm package`) does it; the reader refuses GNU
        // long-name records.
        builder.append_pax_extensions([("path", path.as_bytes())])?;
        let name = &mut header.as_old_mut().name;
        name.copy_from_slice(&path.as_bytes()[..NAME_FIELD]);
        header.set_cksum();
        builder.append(&header, data)
    };
    append(&format!("{top}/"), EntryType::Directory, &[])?;
    for item in items {
        match item {
            Item::Dir(path) => append(&format!("{top}/{path}/"), EntryType::Directory, &[])?,
            Item::File(path, data) => append(&format!("{top}/{path}"), EntryType::Regular, data)?,
        }
    }
    builder.into_inner()
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::default());
    encoder.write_all(data)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn write(dir: &Path, path: &str, data: &[u8]) {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, data).unwrap();
    }

    fn sample(dir: &Path) {
        write(
            dir,
            "Chart.yaml",
            b"apiVersion: v2\nname: demo\nversion: 1.0.0\n",
        );
        write(dir, "values.yaml", b"image:\n  tag: v1\n");
        write(dir, "templates/cm.yaml", b"kind: ConfigMap\n");
        write(dir, "templates/.swp", b"editor junk");
        write(dir, "docs/a.png", b"png");
        write(dir, "README.md", b"# demo");
        write(dir, ".helmignore", b"# test\ndocs/\n*.md\n");
    }

    fn entries(bytes: &[u8]) -> Vec<(String, u32, u64, u64, u64)> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut sink = Vec::new();
                e.read_to_end(&mut sink).unwrap();
                assert!(h.username_bytes().unwrap_or_default().is_empty());
                assert!(h.groupname_bytes().unwrap_or_default().is_empty());
                (
                    String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn packs_sorted_with_fixed_metadata_and_honours_helmignore() {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        let packed = pack_dir(dir.path(), &ArchiveLimits::default()).unwrap();
        assert_eq!(packed.archive.name(), "demo");
        let got = entries(&packed.bytes);
        let paths: Vec<_> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "demo/",
                "demo/.helmignore",
                "demo/Chart.yaml",
                "demo/templates/",
                "demo/templates/cm.yaml",
                "demo/values.yaml",
            ]
        );
        for (path, mode, mtime, uid, gid) in &got {
            let want = if path.ends_with('/') { 0o755 } else { 0o644 };
            assert_eq!((*mode, *mtime, *uid, *gid), (want, 0, 0, 0), "{path}");
        }
        // gzip header: no mtime, no name, OS unknown.
        assert_eq!(&packed.bytes[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&packed.bytes[4..8], &[0, 0, 0, 0]);
        assert_eq!(packed.bytes[9], 255);
    }

    #[test]
    fn same_input_gives_the_same_bytes_whatever_the_file_times() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        sample(a.path());
        std::thread::sleep(std::time::Duration::from_millis(20));
        sample(b.path());
        let pa = pack_dir(a.path(), &ArchiveLimits::default()).unwrap();
        let pb = pack_dir(b.path(), &ArchiveLimits::default()).unwrap();
        assert_eq!(pa.bytes, pb.bytes);
        assert_eq!(pa.archive.sha256, pb.archive.sha256);
        write(b.path(), "values.yaml", b"image:\n  tag: v2\n");
        let pc = pack_dir(b.path(), &ArchiveLimits::default()).unwrap();
        assert_ne!(pa.archive.sha256, pc.archive.sha256);
    }

    #[test]
    fn long_paths_survive_the_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        let long = format!("templates/{}/{}.yaml", "d".repeat(80), "f".repeat(80));
        write(dir.path(), &long, b"kind: Secret\n");
        let packed = pack_dir(dir.path(), &ArchiveLimits::default()).unwrap();
        assert_eq!(packed.archive.files[&long], b"kind: Secret\n");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_in_the_source_are_refused_unless_ignored() {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("templates/link.yaml")).unwrap();
        let err = pack_dir(dir.path(), &ArchiveLimits::default()).unwrap_err();
        match &err.kind {
            ChartErrorKind::SourceSymlink { path } => {
                assert!(path.ends_with("templates/link.yaml"))
            }
            other => panic!("{other:?}"),
        }
        write(dir.path(), ".helmignore", b"link.yaml\n");
        pack_dir(dir.path(), &ArchiveLimits::default()).unwrap();
    }

    #[test]
    fn a_directory_without_chart_yaml_or_with_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = pack_dir(dir.path(), &ArchiveLimits::default()).unwrap_err();
        assert!(
            matches!(err.kind, ChartErrorKind::MissingChartYaml { .. }),
            "{err}"
        );
        write(
            dir.path(),
            "Chart.yaml",
            b"apiVersion: v2\nname: demo\nversion: one\n",
        );
        let err = pack_dir(dir.path(), &ArchiveLimits::default()).unwrap_err();
        assert!(
            matches!(err.kind, ChartErrorKind::InvalidVersion { .. }),
            "{err}"
        );
        write(
            dir.path(),
            "Chart.yaml",
            b"apiVersion: v2\nname: demo\nversion: 1.0.0\n",
        );
        write(dir.path(), ".helmignore", b"!keep\n");
        let err = pack_dir(dir.path(), &ArchiveLimits::default()).unwrap_err();
        assert!(
            matches!(err.kind, ChartErrorKind::Helmignore { line: 1, .. }),
            "{err}"
        );
    }
}
