//! `cargo xtask image --out DIR`: the agent's container image, written as an
//! OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) without a
//! container engine.
//!
//! The image holds a static release build of coxswain (musl), the static
//! helm 4 that `cargo xtask tools` builds, the CA certificates of this
//! machine, an `/etc/passwd` naming the non-root user 65532, an empty `/tmp`
//! and the user's home — nothing else: no shell, no package manager, no libc.
//! Three layers (base files, helm, coxswain) so their sizes show apart and a
//! new coxswain reuses the helm layer.
//!
//! Reproducible: entries are sorted, owners and times fixed (every time is
//! the commit time of `HEAD`, or `SOURCE_DATE_EPOCH` when set), gzip headers
//! carry no time or name, JSON is written with sorted keys; two builds of the
//! same commit on the same machine give the same digest (checked by
//! `tests/e2e_image.rs`, which also pushes the layout to a real registry).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest as _, Sha256};

/// The user the image runs as (distroless's `nonroot`).
pub const USER_ID: u64 = 65532;
/// Where the binaries are in the image.
pub const COXSWAIN_PATH: &str = "usr/local/bin/coxswain";
/// Where helm is in the image.
pub const HELM_PATH: &str = "usr/local/bin/helm";
/// The CA bundle in the image (also `SSL_CERT_FILE`).
pub const CA_PATH: &str = "etc/ssl/certs/ca-certificates.crt";
const HOST_CA: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The Rust target of the static build.
pub const TARGET: &str = "x86_64-unknown-linux-musl";

const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `cargo xtask image` arguments.
#[derive(clap::Args, Debug)]
pub struct ImageArgs {
    /// The directory to write the OCI layout to (created; an earlier layout there is replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// The tag recorded in index.json (`org.opencontainers.image.ref.name`); default: the crate version.
    #[arg(long)]
    pub tag: Option<String>,
    /// Use this coxswain binary instead of building it (must be static).
    #[arg(long)]
    pub coxswain: Option<PathBuf>,
}

/// One layer as written.
#[derive(Debug, Clone)]
pub struct Layer {
    /// What it holds.
    pub name: &'static str,
    /// The gzip blob's digest (`sha256:…`).
    pub digest: String,
    /// Compressed size.
    pub size: u64,
    /// Uncompressed (tar) size.
    pub tar_size: u64,
    diff_id: String,
}

/// What `write` produced.
#[derive(Debug, Clone)]
pub struct Built {
    /// The manifest's digest: the image's digest in a registry.
    pub digest: String,
    /// The tag in index.json.
    pub tag: String,
    /// The layers, in order.
    pub layers: Vec<Layer>,
}

/// `cargo xtask image`.
pub fn run(root: &Path, args: &ImageArgs) -> Result<()> {
    let coxswain = match &args.coxswain {
        Some(path) => path.clone(),
        None => build_static(root)?,
    };
    let tools = crate::tools::ensure()?;
    let tag = args.tag.clone().unwrap_or_else(|| crate_version(root));
    let built = write(root, &args.out, &coxswain, &tools.helm4, &tag)?;
    println!("wrote the OCI layout {}", args.out.display());
    println!("  image  coxswain:{}  {}", built.tag, built.digest);
    for layer in &built.layers {
        println!(
            "  layer  {:<9} {:>9} compressed {:>9} uncompressed  {}",
            layer.name,
            human(layer.size),
            human(layer.tar_size),
            layer.digest
        );
    }
    let total: u64 = built.layers.iter().map(|l| l.size).sum();
    let total_tar: u64 = built.layers.iter().map(|l| l.tar_size).sum();
    println!(
        "  total  {} compressed, {} uncompressed",
        human(total),
        human(total_tar)
    );
    Ok(())
}

/// `cargo build --release --target x86_64-unknown-linux-musl --bin coxswain`:
/// a static binary, so the image needs no libc.
pub fn build_static(root: &Path) -> Result<PathBuf> {
    crate::demo::heading(&format!("build coxswain (release, static, {TARGET})"));
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(true);
    if !installed {
        bail!("the static build needs the Rust target {TARGET}: `rustup target add {TARGET}`");
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "--locked",
            "--release",
            "--package",
            "coxswain",
            "--bin",
            "coxswain",
            "--target",
            TARGET,
        ])
        // aws-lc's C code is compiled for musl by Debian's musl-gcc (package
        // musl-tools, installed by `cargo xtask tools`).
        .env("CC_x86_64_unknown_linux_musl", "musl-gcc")
        // No symbols in the image: smaller, and nothing of the build machine.
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .status()
        .context("run cargo build for the static coxswain")?;
    if !status.success() {
        bail!("the static build of coxswain failed ({status}); its output is above");
    }
    let binary = crate::cargo::target_dir(root)
        .join(TARGET)
        .join("release")
        .join("coxswain");
    if !binary.is_file() {
        bail!("{} was not built", binary.display());
    }
    Ok(binary)
}

fn crate_version(root: &Path) -> String {
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or("0.0.0")
        .to_owned()
}

/// The time every entry and the config carry: `SOURCE_DATE_EPOCH`, else the
/// commit time of `HEAD`, else 0.
fn source_date(root: &Path) -> u64 {
    if let Some(t) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return t;
    }
    Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

fn git_revision(root: &Path) -> Option<String> {
    Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

/// An entry of a layer.
enum Entry {
    Dir { mode: u32, owner: u64 },
    File { mode: u32, bytes: Vec<u8> },
}

/// A tar of `entries` (sorted by path: a BTreeMap), every header with fixed
/// owner, time and empty user/group names.
fn tar_layer(entries: &BTreeMap<String, Entry>, mtime: u64) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for (path, entry) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(mtime);
        match entry {
            Entry::Dir { mode, owner } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_uid(*owner);
                header.set_gid(*owner);
                header.set_size(0);
                header.set_cksum();
                builder
                    .append_data(&mut header, format!("{path}/"), std::io::empty())
                    .with_context(|| format!("add {path}/ to a layer"))?;
            }
            Entry::File { mode, bytes } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_uid(0);
                header.set_gid(0);
                header.set_size(bytes.len() as u64);
                header.set_cksum();
                builder
                    .append_data(&mut header, path, bytes.as_slice())
                    .with_context(|| format!("add {path} to a layer"))?;
            }
        }
    }
    builder.into_inner().context("finish a layer's tar")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// gzip without a time or file name in its header, at a fixed level.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3) // Unix, whatever machine builds it
        .write(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).context("compress a layer")?;
    encoder.finish().context("compress a layer")
}

/// Writes `bytes` to `blobs/sha256/<hex>` under `dir`; returns its digest.
fn blob(dir: &Path, bytes: &[u8]) -> Result<String> {
    let digest = sha256(bytes);
    let path = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
    Ok(digest)
}

/// Serialises `value` with sorted keys (serde_json's map is a BTreeMap).
fn json(value: &serde_json::Value) -> Result<Vec<u8>> {
    serde_json::to_vec(value).context("serialise image JSON")
}

fn rfc3339(epoch: u64) -> String {
    // Days to a civil date (Howard Hinnant's algorithm), enough for a label.
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn read_static_binary(path: &Path, what: &str) -> Result<Vec<u8>> {
    let bytes = fs::read(path).with_context(|| format!("read {what} {}", path.display()))?;
    if !bytes.starts_with(b"\x7fELF") {
        bail!("{what} {} is not an ELF executable", path.display());
    }
    // A dynamically linked binary names its loader in a PT_INTERP segment;
    // the image has no loader, so such a binary could not start there.
    if bytes
        .windows(b"/lib64/ld-linux".len())
        .any(|w| w == b"/lib64/ld-linux")
        || bytes
            .windows(b"/lib/ld-musl".len())
            .any(|w| w == b"/lib/ld-musl")
    {
        bail!(
            "{what} {} is dynamically linked; the image has no libc (build it with --target {TARGET})",
            path.display()
        );
    }
    Ok(bytes)
}

/// Writes the OCI layout of the image to `out`: coxswain and helm from the
/// given paths, this machine's CA bundle.
pub fn write(root: &Path, out: &Path, coxswain: &Path, helm: &Path, tag: &str) -> Result<Built> {
    let mtime = source_date(root);
    let coxswain_bytes = read_static_binary(coxswain, "coxswain")?;
    let helm_bytes = read_static_binary(helm, "helm")?;
    let ca = fs::read(HOST_CA).with_context(|| {
        format!("read the CA bundle {HOST_CA} (Debian's ca-certificates package)")
    })?;

    let mut base = BTreeMap::new();
    for dir in [
        "etc",
        "etc/ssl",
        "etc/ssl/certs",
        "home",
        "usr",
        "usr/local",
        "usr/local/bin",
    ] {
        base.insert(
            dir.to_owned(),
            Entry::Dir {
                mode: 0o755,
                owner: 0,
            },
        );
    }
    base.insert(
        "tmp".to_owned(),
        Entry::Dir {
            mode: 0o1777,
            owner: 0,
        },
    );
    base.insert(
        "home/nonroot".to_owned(),
        Entry::Dir {
            mode: 0o700,
            owner: USER_ID,
        },
    );
    base.insert(
        "etc/passwd".to_owned(),
        Entry::File {
            mode: 0o644,
            bytes: format!(
                "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{USER_ID}:{USER_ID}:nonroot:/home/nonroot:/sbin/nologin\n"
            )
            .into_bytes(),
        },
    );
    base.insert(
        "etc/group".to_owned(),
        Entry::File {
            mode: 0o644,
            bytes: format!("root:x:0:\nnonroot:x:{USER_ID}:\n").into_bytes(),
        },
    );
    base.insert(
        CA_PATH.to_owned(),
        Entry::File {
            mode: 0o644,
            bytes: ca,
        },
    );
    let mut helm_layer = BTreeMap::new();
    helm_layer.insert(
        HELM_PATH.to_owned(),
        Entry::File {
            mode: 0o755,
            bytes: helm_bytes,
        },
    );
    let mut coxswain_layer = BTreeMap::new();
    coxswain_layer.insert(
        COXSWAIN_PATH.to_owned(),
        Entry::File {
            mode: 0o755,
            bytes: coxswain_bytes,
        },
    );

    // A fresh directory: an earlier layout's blobs must not linger.
    if out.exists() {
        let is_layout = out.join("oci-layout").is_file();
        let is_empty = fs::read_dir(out)
            .with_context(|| format!("read {}", out.display()))?
            .next()
            .is_none();
        if !is_layout && !is_empty {
            bail!(
                "{} exists and is not an OCI layout; choose an empty or new directory",
                out.display()
            );
        }
        fs::remove_dir_all(out).with_context(|| format!("remove {}", out.display()))?;
    }
    fs::create_dir_all(out.join("blobs/sha256"))
        .with_context(|| format!("create {}", out.display()))?;

    let mut layers = Vec::new();
    for (name, entries) in [
        ("base", &base),
        ("helm", &helm_layer),
        ("coxswain", &coxswain_layer),
    ] {
        let tar = tar_layer(entries, mtime)?;
        let gz = gzip(&tar)?;
        let digest = blob(out, &gz)?;
        layers.push(Layer {
            name,
            digest,
            size: gz.len() as u64,
            tar_size: tar.len() as u64,
            diff_id: sha256(&tar),
        });
    }

    let version = crate_version(root);
    let created = rfc3339(mtime);
    let mut labels = serde_json::Map::new();
    labels.insert("org.opencontainers.image.title".into(), "coxswain".into());
    labels.insert(
        "org.opencontainers.image.description".into(),
        "coxswain's cluster agent with helm 4".into(),
    );
    labels.insert("org.opencontainers.image.version".into(), version.into());
    labels.insert(
        "org.opencontainers.image.created".into(),
        created.clone().into(),
    );
    labels.insert(
        "org.opencontainers.image.licenses".into(),
        "Apache-2.0".into(),
    );
    if let Some(rev) = git_revision(root) {
        labels.insert("org.opencontainers.image.revision".into(), rev.into());
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": format!("{USER_ID}:{USER_ID}"),
            "Entrypoint": [format!("/{COXSWAIN_PATH}")],
            "Cmd": ["agent"],
            "Env": [
                "PATH=/usr/local/bin",
                format!("SSL_CERT_FILE=/{CA_PATH}"),
                "HOME=/home/nonroot",
            ],
            "WorkingDir": "/home/nonroot",
            "Labels": labels,
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        },
        "history": layers.iter().map(|l| serde_json::json!({
            "created": created,
            "created_by": format!("cargo xtask image: {}", l.name),
        })).collect::<Vec<_>>(),
    });
    let config_bytes = json(&config)?;
    let config_digest = blob(out, &config_bytes)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {
            "mediaType": MEDIA_CONFIG,
            "digest": config_digest,
            "size": config_bytes.len(),
        },
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": MEDIA_LAYER,
            "digest": l.digest,
            "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let manifest_bytes = json(&manifest)?;
    let manifest_digest = blob(out, &manifest_bytes)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    fs::write(out.join("index.json"), json(&index)?)
        .with_context(|| format!("write {}/index.json", out.display()))?;
    fs::write(out.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .with_context(|| format!("write {}/oci-layout", out.display()))?;
    Ok(Built {
        digest: manifest_digest,
        tag: tag.to_owned(),
        layers,
    })
}

fn human(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_720_000), "2025-12-03T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn layers_are_byte_identical_across_builds() {
        let mut entries = BTreeMap::new();
        entries.insert(
            "b".to_owned(),
            Entry::File {
                mode: 0o644,
                bytes: b"x".to_vec(),
            },
        );
        entries.insert(
            "a".to_owned(),
            Entry::Dir {
                mode: 0o755,
                owner: 0,
            },
        );
        let one = gzip(&tar_layer(&entries, 7).unwrap()).unwrap();
        let two = gzip(&tar_layer(&entries, 7).unwrap()).unwrap();
        assert_eq!(sha256(&one), sha256(&two));
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(one.as_slice()));
        let names: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a/", "b"], "sorted");
    }
}
