//! Fuzz target bodies: every reader of hostile bytes, as a function of one byte string.
//!
//! The same functions run in two places: the AFL++ harness in `fuzz/` (coverage-guided,
//! `cargo xtask fuzz`), and `tests/fuzz_replay.rs`, which replays every seed (files of
//! [`Target::seeds`] and [`Target::generated`]) and every saved input under
//! `fuzz/regressions/<target>/` on each `cargo test`. A target returns nothing: errors are
//! the expected outcome for most inputs; a panic, an abort or a hang is the bug.
//!
//! Signatures are the first gate of every signed document, and a fuzzer does not forge
//! ed25519. So the harness signs what the fuzzer writes with keys it holds ([`fixed_key`]),
//! which lets mutated documents reach the parse, validation and policy checks behind the
//! signature check, exactly as a threshold of stolen keys could.

use std::path::Path;
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;

use crate::chart::{ArchiveLimits, ChartArchive};
use crate::format::{
    ChannelIndex, ChannelSpec, Signatures, Timestamp, TrustRoot, read_json, read_yaml,
    to_json_pretty,
};
use crate::site::{Limits, Site, SitePath};
use crate::trust::{self, InitOptions, RotateOptions};
use crate::verify::{IndexPolicy, TrustChain, TrustedRoot, verify_index};

/// One fuzz target.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The name `cargo xtask fuzz --target` and `fuzz/regressions/` use.
    pub name: &'static str,
    /// What it reads.
    pub about: &'static str,
    /// The body: reads `data` and drops the result.
    pub run: fn(&[u8]),
    /// Seed directories, relative to the repository root (read recursively).
    pub seeds: &'static [&'static str],
    /// Seeds made in process (inputs that pass the signature gates).
    pub generated: fn() -> Vec<Vec<u8>>,
}

/// Every fuzz target.
pub static TARGETS: &[Target] = &[
    Target {
        name: "read_json",
        about: "format::read_json of an index, a trust root and a signature envelope",
        run: read_json_documents,
        seeds: &[
            "testdata/bad/index",
            "testdata/bad/base",
            "testdata/bad/trust",
        ],
        generated: no_seeds,
    },
    Target {
        name: "verify_index",
        about: "verify::verify_index: an index signed by the harness's channel key, or (input with a NUL byte) index and signature envelope both from the input",
        run: verify_signed_index,
        seeds: &["testdata/bad/index", "testdata/bad/base"],
        generated: index_seeds,
    },
    Target {
        name: "chart_archive",
        about: "chart::ChartArchive::read of a .tgz",
        run: chart_archive,
        seeds: &["testdata/bad/charts", "testdata/bad/base"],
        generated: no_seeds,
    },
    Target {
        name: "spec_values_yaml",
        about: "format::read_yaml of a channel spec, and format::spec::read_values of a values file",
        run: spec_and_values_yaml,
        seeds: &[
            "testdata/bad/spec",
            "testdata/channels",
            "testdata/bad/publish",
        ],
        generated: no_seeds,
    },
    Target {
        name: "trust_walk",
        about: "verify::TrustChain: the input as an anchor, then its NUL-separated parts as roots 2, 3, … signed by the harness's root key after a harness anchor, then trusted()",
        run: trust_walk,
        seeds: &["testdata/bad/trust", "testdata/bad/base"],
        generated: rotation_seeds,
    },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The seed files of `target` under the repository root `root`, sorted.
pub fn seed_files(root: &Path, target: &Target) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for dir in target.seeds {
        collect_files(&root.join(dir), &mut files)?;
    }
    files.sort();
    Ok(files)
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// The harness's key number `n` (1: root, 2: channel); never a real key.
pub fn fixed_key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// The clock of every check the targets make (the time testdata's documents were made for).
fn now() -> Option<Timestamp> {
    // 2026-11-26T00:00:00Z.
    Timestamp::from_unix(1_795_651_200)
}

/// The harness's anchor: root key 1, channel key 2, made at [`now`].
fn anchor() -> Option<&'static (Vec<u8>, TrustedRoot)> {
    static ANCHOR: OnceLock<Option<(Vec<u8>, TrustedRoot)>> = OnceLock::new();
    ANCHOR
        .get_or_init(|| {
            let signed = trust::init(&InitOptions {
                root_keys: vec![fixed_key(1)],
                channel_keys: vec![fixed_key(2).verifying_key()],
                root_threshold: None,
                channel_threshold: None,
                valid_for: trust::DEFAULT_VALID_FOR,
                now: now()?,
            })
            .ok()?;
            let trusted = TrustChain::anchor(&signed.bytes, None, "fuzz anchor")
                .ok()?
                .trusted(now()?)
                .ok()?;
            Some((signed.bytes, trusted))
        })
        .as_ref()
}

fn signature_file(bytes: &[u8], key: &SigningKey) -> Vec<u8> {
    to_json_pretty(&crate::keys::sign(bytes, std::slice::from_ref(key))).unwrap_or_default()
}

fn no_seeds() -> Vec<Vec<u8>> {
    Vec::new()
}

fn read_json_documents(data: &[u8]) {
    let _ = read_json::<ChannelIndex>(data, "fuzz");
    let _ = read_json::<TrustRoot>(data, "fuzz");
    let _ = read_json::<Signatures>(data, "fuzz");
}

fn verify_signed_index(data: &[u8]) {
    let (Some((_, trusted)), Some(now), Some(site)) = (anchor(), now(), site()) else {
        return;
    };
    let (index, signatures) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], data[at + 1..].to_vec()),
        None => (data, signature_file(data, &fixed_key(2))),
    };
    let policy = IndexPolicy {
        channel: "stable",
        min_sequence: 0,
        now,
    };
    if let Ok(verified) = verify_index(index, &signatures, trusted, policy, "fuzz", "fuzz.sig") {
        // The readers resolve every chart reference of a verified index next.
        let from = SitePath::index("stable");
        for release in &verified.index().releases {
            if let Ok(from) = &from {
                let _ = site.resolve(from, &release.chart.url);
            }
        }
    }
}

/// A site to resolve chart references against (nothing is fetched).
fn site() -> Option<&'static Site> {
    static SITE: OnceLock<Option<Site>> = OnceLock::new();
    SITE.get_or_init(|| Site::http("http://fuzz.invalid/site/", Limits::default()).ok())
        .as_ref()
}

/// testdata's genuine index, to be signed by the harness; and the same with its own
/// envelope after a NUL.
fn index_seeds() -> Vec<Vec<u8>> {
    let Ok(index) =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bad/base/index.json"))
    else {
        return Vec::new();
    };
    let mut with_sig = index.clone();
    with_sig.push(0);
    with_sig.extend(signature_file(&index, &fixed_key(2)));
    vec![index, with_sig]
}

fn chart_archive(data: &[u8]) {
    let _ = ChartArchive::read(data, "fuzz.tgz", None, &ArchiveLimits::default());
}

fn spec_and_values_yaml(data: &[u8]) {
    let _ = read_yaml::<ChannelSpec>(data, "fuzz.yaml");
    let _ = crate::format::spec::read_values(data, Path::new("fuzz-values.yaml"));
}

fn trust_walk(data: &[u8]) {
    let Some(now) = now() else {
        return;
    };
    // The input as an anchor, with no signature file (as an installed anchor may be).
    if let Ok(chain) = TrustChain::anchor(data, None, "fuzz anchor") {
        let _ = chain.trusted(now);
    }
    // Roots 2, 3, … after the harness's anchor, each signed by its root key.
    let Some((anchor_bytes, _)) = anchor() else {
        return;
    };
    let Ok(mut chain) = TrustChain::anchor(anchor_bytes, None, "fuzz anchor") else {
        return;
    };
    for part in data.split(|b| *b == 0).take(8) {
        let signatures = signature_file(part, &fixed_key(1));
        if chain
            .advance(part, &signatures, "fuzz root", "fuzz root.sig")
            .is_err()
        {
            return;
        }
    }
    let _ = chain.trusted(now);
}

/// Roots 2 and 3 rotated from the harness's anchor (the same key), NUL-separated.
fn rotation_seeds() -> Vec<Vec<u8>> {
    let (Some((anchor_bytes, _)), Some(now)) = (anchor(), now()) else {
        return Vec::new();
    };
    let Ok(mut current) = read_json::<TrustRoot>(anchor_bytes, "fuzz anchor") else {
        return Vec::new();
    };
    let mut seed = Vec::new();
    for _ in 0..2 {
        let Ok(next) = trust::rotate(
            &current,
            &RotateOptions {
                signing_keys: vec![fixed_key(1)],
                new_root_keys: None,
                root_threshold: None,
                channel_keys: None,
                channel_threshold: None,
                valid_for: trust::DEFAULT_VALID_FOR,
                now,
            },
        ) else {
            return Vec::new();
        };
        let Ok(root) = read_json::<TrustRoot>(&next.bytes, "fuzz root") else {
            return Vec::new();
        };
        if !seed.is_empty() {
            seed.push(0);
        }
        seed.extend_from_slice(&next.bytes);
        current = root;
    }
    vec![seed]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_seeds_pass_the_signature_gates() {
        let (_, trusted) = anchor().expect("the harness anchor");
        let policy = || IndexPolicy {
            channel: "stable",
            min_sequence: 0,
            now: now().unwrap(),
        };
        let seeds = index_seeds();
        assert_eq!(seeds.len(), 2);
        let signed = signature_file(&seeds[0], &fixed_key(2));
        verify_index(&seeds[0], &signed, trusted, policy(), "i", "s").unwrap();
        let at = seeds[1].iter().position(|b| *b == 0).unwrap();
        verify_index(
            &seeds[1][..at],
            &seeds[1][at + 1..],
            trusted,
            policy(),
            "i",
            "s",
        )
        .unwrap();

        let (anchor_bytes, _) = anchor().unwrap();
        let mut chain = TrustChain::anchor(anchor_bytes, None, "a").unwrap();
        let seed = &rotation_seeds()[0];
        for part in seed.split(|b| *b == 0) {
            chain
                .advance(part, &signature_file(part, &fixed_key(1)), "r", "s")
                .unwrap();
        }
        assert_eq!(chain.current().version, 3);
        chain.trusted(now().unwrap()).unwrap();
    }

    #[test]
    fn targets_have_unique_names_and_seed_directories() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (i, t) in TARGETS.iter().enumerate() {
            assert!(TARGETS[..i].iter().all(|o| o.name != t.name), "{}", t.name);
            assert!(!seed_files(root, t).unwrap().is_empty(), "{}", t.name);
            assert!(std::ptr::eq(target(t.name).unwrap(), t));
        }
    }
}
