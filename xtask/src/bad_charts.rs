//! `cargo xtask gen-bad-charts`: writes the hostile chart archives of
//! `testdata/bad/charts/` and their README, deterministically (fixed headers, gzip without
//! a timestamp), so the checked-in files can be regenerated and compared byte for byte.
//!
//! Headers are written byte by byte where the tar crate's builder would refuse the
//! content (`..`, absolute paths): these archives are supposed to be wrong.

use std::io::{self, Read};
use std::path::Path;

use anyhow::{Context, Result};
use flate2::{Compression, GzBuilder};
use tar::{EntryType, Header};

/// One hostile archive: its file name, what is wrong with it, and its bytes.
pub struct BadChart {
    /// File name below `testdata/bad/charts/`.
    pub file: &'static str,
    /// One line for the README: what the archive holds and what must happen.
    pub description: &'static str,
    /// The archive.
    pub bytes: Vec<u8>,
}

const MIB: u64 = 1024 * 1024;
const CHART_YAML: &[u8] = b"apiVersion: v2\nname: demo\nversion: 0.1.0\n";
const VALUES: &[u8] = b"image:\n  tag: v1\n";

/// A tar.gz under construction.
struct Tgz {
    builder: tar::Builder<flate2::write::GzEncoder<Vec<u8>>>,
}

impl Tgz {
    fn new() -> Self {
        let gz = GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), Compression::best());
        Tgz {
            builder: tar::Builder::new(gz),
        }
    }

    /// Appends an entry with `name` written verbatim into the header.
    fn raw(&mut self, name: &[u8], kind: EntryType, size: u64, data: impl Read) -> io::Result<()> {
        let mut header = Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(size);
        let bytes = header.as_mut_bytes();
        bytes[..100].fill(0);
        bytes[..name.len()].copy_from_slice(name);
        header.set_cksum();
        self.builder.append(&header, data)
    }

    fn file(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.raw(name.as_bytes(), EntryType::Regular, data.len() as u64, data)
    }

    fn dir(&mut self, name: &str) -> io::Result<()> {
        self.raw(name.as_bytes(), EntryType::Directory, 0, io::empty())
    }

    fn link(&mut self, name: &str, kind: EntryType, target: &str) -> io::Result<()> {
        let mut header = Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(0o777);
        header.set_mtime(0);
        header.set_size(0);
        header.set_path(name)?;
        header.set_link_name_literal(target)?;
        header.set_cksum();
        self.builder.append(&header, io::empty())
    }

    fn device(&mut self, name: &str, kind: EntryType) -> io::Result<()> {
        let mut header = Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(0o666);
        header.set_mtime(0);
        header.set_size(0);
        header.set_path(name)?;
        header.set_device_major(1)?;
        header.set_device_minor(3)?;
        header.set_cksum();
        self.builder.append(&header, io::empty())
    }

    /// A pax extended header carrying `records` (`key=value` each).
    fn pax(&mut self, records: &[(&str, &str)]) -> io::Result<()> {
        let mut data = Vec::new();
        for (key, value) in records {
            let body = format!(" {key}={value}\n");
            // The length prefix counts itself.
            let mut len = body.len() + 1;
            while format!("{len}{body}").len() != len {
                len += 1;
            }
            data.extend_from_slice(format!("{len}{body}").as_bytes());
        }
        self.raw(
            b"PaxHeaders/x",
            EntryType::XHeader,
            data.len() as u64,
            &data[..],
        )
    }

    /// The valid beginning most bad archives share.
    fn chart_start(&mut self) -> io::Result<()> {
        self.dir("demo/")?;
        self.file("demo/Chart.yaml", CHART_YAML)?;
        self.file("demo/values.yaml", VALUES)
    }

    fn finish(self) -> io::Result<Vec<u8>> {
        self.builder.into_inner()?.finish()
    }
}

fn zeros(n: u64) -> impl Read {
    io::repeat(0).take(n)
}

fn build(f: impl FnOnce(&mut Tgz) -> io::Result<()>) -> io::Result<Vec<u8>> {
    let mut tgz = Tgz::new();
    f(&mut tgz)?;
    tgz.finish()
}

/// Every hostile archive, in README order. All are read with the expected chart name
/// `demo` and default limits (16 MiB per file, 100 MiB inflated, 10,000 entries).
pub fn generate() -> io::Result<Vec<BadChart>> {
    let chart = |file, description, bytes| BadChart {
        file,
        description,
        bytes,
    };
    Ok(vec![
        chart(
            "dotdot.tgz",
            "an entry `demo/../../../../tmp/coxswain-bad-chart-dotdot` climbing out with `..` → ParentDir",
            build(|t| {
                t.chart_start()?;
                t.file(
                    "demo/../../../../tmp/coxswain-bad-chart-dotdot",
                    b"escaped\n",
                )
            })?,
        ),
        chart(
            "absolute-path.tgz",
            "an entry with the absolute path `/tmp/coxswain-bad-chart-absolute` → AbsolutePath",
            build(|t| {
                t.chart_start()?;
                t.file("/tmp/coxswain-bad-chart-absolute", b"escaped\n")
            })?,
        ),
        chart(
            "symlink.tgz",
            "`demo/templates/passwd.yaml`, a symbolic link to `/etc/passwd` → Symlink",
            build(|t| {
                t.chart_start()?;
                t.link(
                    "demo/templates/passwd.yaml",
                    EntryType::Symlink,
                    "/etc/passwd",
                )
            })?,
        ),
        chart(
            "hardlink.tgz",
            "`demo/templates/shadow.yaml`, a hard link to `/etc/shadow` → HardLink",
            build(|t| {
                t.chart_start()?;
                t.link("demo/templates/shadow.yaml", EntryType::Link, "/etc/shadow")
            })?,
        ),
        chart(
            "device.tgz",
            "`demo/null`, a character device 1:3 → SpecialFile (character device)",
            build(|t| {
                t.chart_start()?;
                t.device("demo/null", EntryType::Char)
            })?,
        ),
        chart(
            "fifo.tgz",
            "`demo/pipe`, a fifo → SpecialFile (fifo)",
            build(|t| {
                t.chart_start()?;
                t.device("demo/pipe", EntryType::Fifo)
            })?,
        ),
        chart(
            "gzip-bomb-file.tgz",
            "a few KB of gzip holding `demo/templates/bomb.yaml`, 17 MiB of zeros (cap 16 MiB) → FileTooLarge, refused from its header before inflating it",
            build(|t| {
                t.chart_start()?;
                t.raw(
                    b"demo/templates/bomb.yaml",
                    EntryType::Regular,
                    17 * MIB,
                    zeros(17 * MIB),
                )
            })?,
        ),
        chart(
            "gzip-bomb-pax.tgz",
            "~100 KB of gzip holding a 101 MiB pax header record the tar reader would buffer by itself → UnpackedTooLarge, stopped by the inflate counter at 100 MiB",
            build(|t| {
                t.chart_start()?;
                t.raw(
                    b"PaxHeaders/bomb",
                    EntryType::XHeader,
                    101 * MIB,
                    zeros(101 * MIB),
                )?;
                t.file("demo/templates/after.yaml", b"x: 1\n")
            })?,
        ),
        chart(
            "pax-size-override.tgz",
            "`demo/templates/big.yaml` whose header says 5 bytes but whose pax `size` record says 17 MiB → FileTooLarge",
            build(|t| {
                t.chart_start()?;
                t.pax(&[("size", &(17 * MIB).to_string())])?;
                t.raw(
                    b"demo/templates/big.yaml",
                    EntryType::Regular,
                    5,
                    zeros(17 * MIB),
                )
            })?,
        ),
        chart(
            "pax-repeated-path.tgz",
            "`demo/values.yaml` preceded by two pax `path` records (Go keeps the last, the tar crate the first) → AmbiguousEntry",
            build(|t| {
                t.chart_start()?;
                t.pax(&[
                    ("path", "demo/templates/a.yaml"),
                    ("path", "demo/templates/b.yaml"),
                ])?;
                t.file("demo/templates/a.yaml", b"kind: ConfigMap\n")
            })?,
        ),
        chart(
            "pax-path-mismatch.tgz",
            "a header named `demo/values.yaml` whose pax `path` says `demo/templates/evil.yaml` → AmbiguousEntry",
            build(|t| {
                t.chart_start()?;
                t.pax(&[("path", "demo/templates/evil.yaml")])?;
                t.file("demo/values2.yaml", b"kind: ConfigMap\n")
            })?,
        ),
        chart(
            "gnu-long-name.tgz",
            "a GNU long-name record (`././@LongLink`) naming a 150-byte template path → AmbiguousEntry",
            build(|t| {
                t.chart_start()?;
                let long = format!("demo/templates/{}.yaml", "l".repeat(130));
                let mut name = long.clone().into_bytes();
                name.push(0);
                t.raw(
                    b"././@LongLink",
                    EntryType::GNULongName,
                    name.len() as u64,
                    &name[..],
                )?;
                t.file(&long[..100], b"kind: ConfigMap\n")
            })?,
        ),
        chart(
            "too-many-entries.tgz",
            "10,001 entries (the directory `demo/` repeated) → TooManyEntries",
            build(|t| {
                t.file("demo/Chart.yaml", CHART_YAML)?;
                for _ in 0..10_000 {
                    t.dir("demo/")?;
                }
                Ok(())
            })?,
        ),
        chart(
            "name-mismatch.tgz",
            "a valid chart named `other` where `demo` is expected → NameMismatch",
            build(|t| {
                t.dir("other/")?;
                t.file(
                    "other/Chart.yaml",
                    b"apiVersion: v2\nname: other\nversion: 0.1.0\n",
                )?;
                t.file("other/values.yaml", VALUES)
            })?,
        ),
        chart(
            "top-dir-mismatch.tgz",
            "chart `demo` packed under the top directory `wrongdir/` → TopDirMismatch",
            build(|t| {
                t.dir("wrongdir/")?;
                t.file("wrongdir/Chart.yaml", CHART_YAML)
            })?,
        ),
        chart(
            "missing-chart-yaml.tgz",
            "`demo/values.yaml` and a template but no `demo/Chart.yaml` → MissingChartYaml",
            build(|t| {
                t.dir("demo/")?;
                t.file("demo/values.yaml", VALUES)?;
                t.file("demo/templates/cm.yaml", b"kind: ConfigMap\n")
            })?,
        ),
        chart(
            "bad-semver.tgz",
            "`demo/Chart.yaml` with `version: \"1.2.3-01\"` (a numeric pre-release with a leading zero, which Helm refuses too) → InvalidVersion",
            build(|t| {
                t.dir("demo/")?;
                t.file(
                    "demo/Chart.yaml",
                    b"apiVersion: v2\nname: demo\nversion: \"1.2.3-01\"\n",
                )
            })?,
        ),
        chart(
            "bad-name.tgz",
            "`Demo_App/Chart.yaml` with `name: Demo_App` → InvalidName",
            build(|t| {
                t.dir("Demo_App/")?;
                t.file(
                    "Demo_App/Chart.yaml",
                    b"apiVersion: v2\nname: Demo_App\nversion: 0.1.0\n",
                )
            })?,
        ),
        chart(
            "apiversion-v3.tgz",
            "`apiVersion: v3`, which helm 4 refuses (`invalid chart apiVersion`) → ApiVersion",
            build(|t| {
                t.dir("demo/")?;
                t.file(
                    "demo/Chart.yaml",
                    b"apiVersion: v3\nname: demo\nversion: 0.1.0\n",
                )
            })?,
        ),
        chart(
            "version-float.tgz",
            "`version: 1.10` unquoted: a YAML float that Helm reads as `1.1` → ChartYamlRefused",
            build(|t| {
                t.dir("demo/")?;
                t.file(
                    "demo/Chart.yaml",
                    b"apiVersion: v2\nname: demo\nversion: 1.10\n",
                )
            })?,
        ),
        chart(
            "key-case.tgz",
            "`version: 0.1.0` and `Version: 9.9.9`: Go's JSON decoding folds case → ChartYamlRefused",
            build(|t| {
                t.dir("demo/")?;
                t.file(
                    "demo/Chart.yaml",
                    b"apiVersion: v2\nname: demo\nversion: 0.1.0\nVersion: 9.9.9\n",
                )
            })?,
        ),
        chart(
            "yaml-anchor.tgz",
            "`version: &v 0.1.0` and a merge key: anchors are refused → ChartYamlRefused",
            build(|t| {
                t.dir("demo/")?;
                t.file(
                    "demo/Chart.yaml",
                    b"apiVersion: v2\nname: demo\nversion: &v 0.1.0\nappVersion: *v\n",
                )
            })?,
        ),
        chart(
            "requirements-in-v2.tgz",
            "a v2 chart with `requirements.yaml` saying `version: 9.9.9`, which Helm reads over Chart.yaml → RequirementsInV2",
            build(|t| {
                t.dir("demo/")?;
                t.file("demo/requirements.yaml", b"version: 9.9.9\n")?;
                t.file(
                    "demo/Chart.yaml",
                    b"apiVersion: v2\nname: demo\nversion: 0.1.0\n",
                )
            })?,
        ),
        chart(
            "missing-dependency.tgz",
            "Chart.yaml declares `database` (with a condition) but `charts/` is empty → Dependency",
            build(|t| {
                t.dir("demo/")?;
                t.file(
                    "demo/Chart.yaml",
                    b"apiVersion: v2\nname: demo\nversion: 0.1.0\ndependencies:\n- name: database\n  version: 0.3.0\n  condition: database.enabled\n",
                )
            })?,
        ),
        chart(
            "dependency-version.tgz",
            "Chart.yaml wants `database` `~0.4.0`, `charts/database` is 0.3.0 → Dependency",
            build(|t| {
                t.dir("demo/")?;
                t.file(
                    "demo/charts/database/Chart.yaml",
                    b"apiVersion: v2\nname: database\nversion: 0.3.0\n",
                )?;
                t.file(
                    "demo/Chart.yaml",
                    b"apiVersion: v2\nname: demo\nversion: 0.1.0\ndependencies:\n- name: database\n  version: ~0.4.0\n",
                )
            })?,
        ),
        chart(
            "v1-missing-requirement.tgz",
            "a v1 chart whose `requirements.yaml` declares `database`, absent from `charts/` → Dependency",
            build(|t| {
                t.dir("demo/")?;
                t.file(
                    "demo/requirements.yaml",
                    b"dependencies:\n- name: database\n  version: 0.3.0\n",
                )?;
                t.file(
                    "demo/Chart.yaml",
                    b"apiVersion: v1\nname: demo\nversion: 0.1.0\n",
                )
            })?,
        ),
        chart(
            "two-top-dirs.tgz",
            "`demo/` and `extra/` side by side → MultipleTopLevel",
            build(|t| {
                t.chart_start()?;
                t.dir("extra/")?;
                t.file("extra/Chart.yaml", CHART_YAML)
            })?,
        ),
        chart(
            "file-at-top.tgz",
            "`Chart.yaml` at the top level, outside any directory → NotInDirectory",
            build(|t| t.file("Chart.yaml", CHART_YAML))?,
        ),
        chart(
            "duplicate-entry.tgz",
            "`demo/values.yaml` twice with different content → DuplicateEntry",
            build(|t| {
                t.chart_start()?;
                t.file("demo/values.yaml", b"image:\n  tag: evil\n")
            })?,
        ),
        chart(
            "backslash.tgz",
            "an entry `demo\\..\\..\\evil.yaml` with backslashes → BadPath",
            build(|t| {
                t.chart_start()?;
                t.file("demo\\..\\..\\evil.yaml", b"x: 1\n")
            })?,
        ),
        chart("not-gzip.tgz", "a plain, uncompressed tar → Corrupt", {
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = Header::new_ustar();
            header.set_size(CHART_YAML.len() as u64);
            header.set_mode(0o644);
            header.set_path("demo/Chart.yaml")?;
            header.set_cksum();
            builder.append(&header, CHART_YAML)?;
            builder.into_inner()?
        }),
        chart("truncated.tgz", "a valid archive cut in half → Corrupt", {
            let whole = build(|t| {
                t.chart_start()?;
                t.file("demo/templates/cm.yaml", &[b'x'; 4096])
            })?;
            whole[..whole.len() / 2].to_vec()
        }),
    ])
}

/// The README listing every archive.
pub fn readme(charts: &[BadChart]) -> String {
    let mut text = String::from(
        "# Hostile chart archives\n\n\
         Generated by `cargo xtask gen-bad-charts` (xtask/src/bad_charts.rs); do not edit by \
         hand. A test in xtask fails when these files differ from what the generator writes, \
         and `tests/bad_charts.rs` reads each one with `ChartArchive::read` (expected chart \
         name `demo`, default limits) and asserts its specific error.\n\n\
         | file | what it holds → expected error |\n|---|---|\n",
    );
    for chart in charts {
        text.push_str(&format!("| {} | {} |\n", chart.file, chart.description));
    }
    text
}

/// Writes every archive and the README into `dir`.
pub fn write_all(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let charts = generate().context("generating the bad chart archives")?;
    for chart in &charts {
        let path = dir.join(chart.file);
        std::fs::write(&path, &chart.bytes)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let path = dir.join("README.md");
    std::fs::write(&path, readme(&charts))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_bad_charts_match_the_generator() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/bad/charts");
        let charts = generate().unwrap();
        for chart in &charts {
            let path = dir.join(chart.file);
            let on_disk = std::fs::read(&path).unwrap_or_else(|e| {
                panic!("{}: {e}; run `cargo xtask gen-bad-charts`", path.display())
            });
            assert!(
                on_disk == chart.bytes,
                "{} differs from the generator; run `cargo xtask gen-bad-charts`",
                path.display()
            );
        }
        let readme_on_disk = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert_eq!(readme_on_disk, readme(&charts), "README.md is stale");
        // Nothing else in the directory: every file is generated (and so tested).
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mut expected: Vec<String> = charts.iter().map(|c| c.file.to_owned()).collect();
        expected.push("README.md".into());
        expected.sort();
        assert_eq!(names, expected);
    }

    #[test]
    fn generation_is_deterministic() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!(x.bytes == y.bytes, "{} differs between runs", x.file);
        }
    }

    #[test]
    fn the_bombs_stay_small() {
        for chart in generate().unwrap() {
            assert!(
                chart.bytes.len() < 200 * 1024,
                "{} is {} bytes",
                chart.file,
                chart.bytes.len()
            );
        }
    }
}
