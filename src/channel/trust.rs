//! Making, rotating and following trust roots (the document type is
//! [`crate::format::TrustRoot`]; the checks are in [`crate::verify`]).
//!
//! - `trust init` makes the anchor, version 1, and signs it with its own root keys.
//!   The anchor is trusted as installed; its `.sig` only proves it is self-consistent
//!   (see [`crate::verify::TrustChain::anchor`]).
//! - `trust rotate` makes version N+1 from the newest root N on a site, signed so that
//!   a threshold of N's root keys and a threshold of N+1's own root keys vouch for it,
//!   and writes `SITE/trust/<N+1>.json.sig` then `SITE/trust/<N+1>.json`: a reader that
//!   finds the new root also finds its signatures.

use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::duration::Duration;
use crate::format::trust::RoleName;
use crate::format::{Document, Timestamp, TrustRoot, ValidationError, to_json_pretty};
use crate::keys::{self, keyid, sign};
use crate::site::{DocKind, Site, SiteError, SitePath, SiteWriter};
use crate::verify::{TrustChain, VerifyError};

/// How long a trust root is valid unless told otherwise.
pub const DEFAULT_VALID_FOR: Duration = Duration::from_days(365);

/// Why a trust root could not be made, rotated or followed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// No root signing key was given.
    #[error("no root key given: pass at least one --root-key")]
    NoRootKeys,
    /// No channel key was given.
    #[error("no channel key given: pass at least one --channel-key")]
    NoChannelKeys,
    /// The requested root would be structurally invalid (e.g. a threshold above the key count).
    #[error("the new trust root would be invalid")]
    Invalid(#[source] ValidationError),
    /// `validFor` is longer than a trust root may be valid (1,096 days,
    /// [`crate::format::MAX_TRUST_ROOT_VALIDITY`]) or pushes the expiry past what a
    /// timestamp can hold.
    #[error("--valid-for {0} is too long: a trust root is valid for at most 1096 days")]
    ValidForTooLong(Duration),
    /// A signing key that is a root key of neither the current nor the new root.
    #[error("signing key {keyid} is a root key of neither version {current} nor version {next}")]
    StrayKey {
        /// The key's id.
        keyid: String,
        /// The current version.
        current: u64,
        /// The new version.
        next: u64,
    },
    /// The new root would not pass verification (not enough signatures of old or new keys).
    #[error("the rotated root would be refused by agents")]
    WouldBeRefused(#[source] VerifyError),
    /// A trust root chain on the site failed verification.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Reading the site failed.
    #[error(transparent)]
    Site(#[from] SiteError),
    /// A key file problem.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// The site holds more rotated roots than one walk follows.
    #[error(
        "the trust root walk from version {from} stopped after {steps} rotations, the most one walk follows"
    )]
    WalkTooManySteps {
        /// The version the walk started from.
        from: u64,
        /// The rotations followed.
        steps: u64,
    },
    /// The walk took longer than allowed (a slow site, or very many roots).
    #[error("the trust root walk from version {from} took longer than {secs}s")]
    WalkTimedOut {
        /// The version the walk started from.
        from: u64,
        /// The time allowed.
        secs: u64,
    },
    /// Refused to replace an existing file.
    #[error("{0}: already exists (pass --force to replace it)")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        error: std::io::Error,
    },
    /// Serializing failed (does not happen for these types; kept rather than a panic).
    #[error("cannot serialize the trust root")]
    Serialize(#[source] serde_json::Error),
}

/// A trust root and the bytes that were signed.
#[derive(Debug, Clone)]
pub struct SignedRoot {
    /// The document.
    pub root: TrustRoot,
    /// Its exact bytes (pretty JSON).
    pub bytes: Vec<u8>,
    /// The signature envelope over `bytes`.
    pub signatures: Vec<u8>,
}

/// What `trust init` needs.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The root keys; they make up the root role and sign the anchor.
    pub root_keys: Vec<SigningKey>,
    /// The channel keys (public halves).
    pub channel_keys: Vec<VerifyingKey>,
    /// Root signatures required; default: all root keys.
    pub root_threshold: Option<u32>,
    /// Channel signatures required; default: 1.
    pub channel_threshold: Option<u32>,
    /// Validity from `now`.
    pub valid_for: Duration,
    /// The time the root is made (injected for tests).
    pub now: Timestamp,
}

fn unique(keys: &[VerifyingKey]) -> Vec<VerifyingKey> {
    let mut out: Vec<VerifyingKey> = Vec::new();
    for k in keys {
        if !out.contains(k) {
            out.push(*k);
        }
    }
    out
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn expiry(now: Timestamp, valid_for: Duration) -> Result<Timestamp, TrustError> {
    if valid_for > crate::format::MAX_TRUST_ROOT_VALIDITY {
        return Err(TrustError::ValidForTooLong(valid_for));
    }
    if valid_for.as_secs() == 0 {
        return Err(TrustError::Invalid(ValidationError::ZeroDuration {
            what: "--valid-for".to_owned(),
        }));
    }
    now.checked_add(valid_for)
        .ok_or(TrustError::ValidForTooLong(valid_for))
}

fn finish(root: TrustRoot, signers: &[SigningKey]) -> Result<SignedRoot, TrustError> {
    root.validate().map_err(TrustError::Invalid)?;
    let bytes = to_json_pretty(&root).map_err(TrustError::Serialize)?;
    let signatures = to_json_pretty(&sign(&bytes, signers)).map_err(TrustError::Serialize)?;
    Ok(SignedRoot {
        root,
        bytes,
        signatures,
    })
}

/// Makes the anchor (version 1), signed by all its root keys.
pub fn init(opts: &InitOptions) -> Result<SignedRoot, TrustError> {
    if opts.root_keys.is_empty() {
        return Err(TrustError::NoRootKeys);
    }
    if opts.channel_keys.is_empty() {
        return Err(TrustError::NoChannelKeys);
    }
    let root_pubs = unique(
        &opts
            .root_keys
            .iter()
            .map(SigningKey::verifying_key)
            .collect::<Vec<_>>(),
    );
    let channel_pubs = unique(&opts.channel_keys);
    let root = TrustRoot::new(
        1,
        expiry(opts.now, opts.valid_for)?,
        (
            &root_pubs,
            opts.root_threshold.unwrap_or(count(root_pubs.len())),
        ),
        (&channel_pubs, opts.channel_threshold.unwrap_or(1)),
    );
    let signed = finish(root, &opts.root_keys)?;
    // The anchor must read back as a self-consistent root.
    TrustChain::anchor(
        &signed.bytes,
        Some((&signed.signatures, "trust.json.sig")),
        "trust.json",
    )
    .map_err(TrustError::WouldBeRefused)?;
    Ok(signed)
}

/// What `trust rotate` needs besides the current root.
#[derive(Debug, Clone)]
pub struct RotateOptions {
    /// Keys that sign the new root: enough of the current root keys and of the new ones.
    pub signing_keys: Vec<SigningKey>,
    /// The new root role's keys; `None` keeps the current ones.
    pub new_root_keys: Option<Vec<VerifyingKey>>,
    /// The new root threshold; `None` keeps the current one (capped at the key count).
    pub root_threshold: Option<u32>,
    /// The new channel keys; `None` keeps the current ones.
    pub channel_keys: Option<Vec<VerifyingKey>>,
    /// The new channel threshold; `None` keeps the current one (capped at the key count).
    pub channel_threshold: Option<u32>,
    /// Validity from `now`.
    pub valid_for: Duration,
    /// The time the root is made (injected for tests).
    pub now: Timestamp,
}

/// Makes root N+1 from `current` (root N) and checks that agents holding N will accept it.
pub fn rotate(current: &TrustRoot, opts: &RotateOptions) -> Result<SignedRoot, TrustError> {
    if opts.signing_keys.is_empty() {
        return Err(TrustError::NoRootKeys);
    }
    let role_pubs = |name: RoleName| current.role_keys(name).into_values().collect::<Vec<_>>();
    let root_pubs = match &opts.new_root_keys {
        Some(keys) if keys.is_empty() => return Err(TrustError::NoRootKeys),
        Some(keys) => unique(keys),
        None => role_pubs(RoleName::Root),
    };
    let channel_pubs = match &opts.channel_keys {
        Some(keys) if keys.is_empty() => return Err(TrustError::NoChannelKeys),
        Some(keys) => unique(keys),
        None => role_pubs(RoleName::Channel),
    };
    let keep = |name: RoleName, n: usize| current.role(name).threshold.min(count(n)).max(1);
    let next_version = current.version.saturating_add(1);
    let root = TrustRoot::new(
        next_version,
        expiry(opts.now, opts.valid_for)?,
        (
            &root_pubs,
            opts.root_threshold
                .unwrap_or(keep(RoleName::Root, root_pubs.len())),
        ),
        (
            &channel_pubs,
            opts.channel_threshold
                .unwrap_or(keep(RoleName::Channel, channel_pubs.len())),
        ),
    );
    let old_ids = current.role(RoleName::Root).keyids.clone();
    let new_ids = root.role(RoleName::Root).keyids.clone();
    for key in &opts.signing_keys {
        let id = keyid(&key.verifying_key());
        if !old_ids.contains(&id) && !new_ids.contains(&id) {
            return Err(TrustError::StrayKey {
                keyid: id,
                current: current.version,
                next: next_version,
            });
        }
    }
    let signed = finish(root, &opts.signing_keys)?;
    let current_bytes = to_json_pretty(current).map_err(TrustError::Serialize)?;
    let mut chain = TrustChain::anchor(&current_bytes, None, "current trust root")
        .map_err(TrustError::WouldBeRefused)?;
    let name = format!("trust/{next_version}.json");
    chain
        .advance(
            &signed.bytes,
            &signed.signatures,
            &name,
            &format!("{name}.sig"),
        )
        .map_err(TrustError::WouldBeRefused)?;
    Ok(signed)
}

/// Writes the anchor to `out` and its signatures to `out.sig`, each atomically;
/// refuses to replace existing files unless `force`.
pub fn write_anchor(out: &Path, signed: &SignedRoot, force: bool) -> Result<PathBuf, TrustError> {
    let sig_path = sig_path_of(out);
    if !force {
        for p in [out, sig_path.as_path()] {
            if p.exists() {
                return Err(TrustError::Exists(p.to_owned()));
            }
        }
    }
    write_atomic(&sig_path, &signed.signatures)?;
    write_atomic(out, &signed.bytes)?;
    Ok(sig_path)
}

/// `FILE.sig` beside `FILE`.
pub fn sig_path_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrustError> {
    crate::atomic::write(path, bytes, crate::atomic::WriteOptions::PUBLIC).map_err(|error| {
        TrustError::Write {
            path: path.to_owned(),
            error,
        }
    })
}

/// Writes root N+1 into a site directory: signatures first, then the root, so a reader
/// that sees `trust/<N+1>.json` also sees its `.sig`. Refuses to replace an existing root.
pub fn write_rotated(site_dir: &Path, signed: &SignedRoot) -> Result<PathBuf, TrustError> {
    let version = signed.root.version;
    let json = SitePath::trust_root(version);
    if json.under(site_dir).exists() {
        return Err(TrustError::Exists(json.under(site_dir)));
    }
    let writer = SiteWriter::new(site_dir);
    writer.write(
        &SitePath::trust_root_signatures(version),
        &signed.signatures,
    )?;
    Ok(writer.write(&json, &signed.bytes)?)
}

/// How far one trust root walk may go.
#[derive(Clone, Copy, Debug)]
pub struct WalkBounds {
    /// Most rotations followed (roots accepted after the starting one).
    pub max_steps: u64,
    /// Longest time for the whole walk, every request included.
    pub max_time: std::time::Duration,
}

impl Default for WalkBounds {
    /// 1,000 rotations (decades of yearly ones) and 5 minutes.
    fn default() -> Self {
        WalkBounds {
            max_steps: 1_000,
            max_time: std::time::Duration::from_secs(300),
        }
    }
}

/// Follows `trust/<N+1>.json` on `site` from `chain` until one is missing, within the
/// default [`WalkBounds`].
pub async fn walk_site(site: &Site, chain: TrustChain) -> Result<TrustChain, TrustError> {
    walk_site_within(site, chain, WalkBounds::default()).await
}

/// [`walk_site`] within `bounds`: more rotations than `max_steps` or a walk longer than
/// `max_time` is an error, and the chain is not advanced.
pub async fn walk_site_within(
    site: &Site,
    chain: TrustChain,
    bounds: WalkBounds,
) -> Result<TrustChain, TrustError> {
    let from = chain.current().version;
    let timed_out = TrustError::WalkTimedOut {
        from,
        secs: bounds.max_time.as_secs(),
    };
    // The timeout stops a read that hangs; the walk itself also checks the time before
    // each step, so the bound holds however quickly a site answers.
    tokio::time::timeout(bounds.max_time, walk(site, chain, bounds))
        .await
        .unwrap_or(Err(timed_out))
}

async fn walk(
    site: &Site,
    mut chain: TrustChain,
    bounds: WalkBounds,
) -> Result<TrustChain, TrustError> {
    let started = std::time::Instant::now();
    let from = chain.current().version;
    let max_steps = bounds.max_steps;
    let mut steps = 0;
    loop {
        if started.elapsed() >= bounds.max_time {
            return Err(TrustError::WalkTimedOut {
                from,
                secs: bounds.max_time.as_secs(),
            });
        }
        let version = chain.next_version();
        let json = SitePath::trust_root(version);
        let bytes = match site.read(&json, DocKind::TrustRoot).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(chain),
            Err(e) => return Err(e.into()),
        };
        if steps >= max_steps {
            return Err(TrustError::WalkTooManySteps { from, steps });
        }
        steps += 1;
        let sig = SitePath::trust_root_signatures(version);
        let sig_bytes = site.read(&sig, DocKind::Signatures).await?;
        chain.advance(
            &bytes,
            &sig_bytes,
            &site.location(&json),
            &site.location(&sig),
        )?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::read_json;

    fn sk(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn now() -> Timestamp {
        "2026-11-26T00:00:00Z".parse().unwrap()
    }

    fn anchor() -> SignedRoot {
        init(&InitOptions {
            root_keys: vec![sk(1), sk(2)],
            channel_keys: vec![sk(3).verifying_key()],
            root_threshold: None,
            channel_threshold: None,
            valid_for: DEFAULT_VALID_FOR,
            now: now(),
        })
        .unwrap()
    }

    fn rotate_opts(signing: Vec<SigningKey>) -> RotateOptions {
        RotateOptions {
            signing_keys: signing,
            new_root_keys: None,
            root_threshold: None,
            channel_keys: None,
            channel_threshold: None,
            valid_for: DEFAULT_VALID_FOR,
            now: now(),
        }
    }

    #[test]
    fn init_defaults() {
        let a = anchor();
        assert_eq!(a.root.version, 1);
        assert_eq!(a.root.roles.root.threshold, 2);
        assert_eq!(a.root.roles.channel.threshold, 1);
        assert_eq!(a.root.expires.to_string(), "2027-11-26T00:00:00Z");
        let back: TrustRoot = read_json(&a.bytes, "trust.json").unwrap();
        assert_eq!(back, a.root);
        let err = init(&InitOptions {
            root_threshold: Some(3),
            ..InitOptions {
                root_keys: vec![sk(1), sk(2)],
                channel_keys: vec![sk(3).verifying_key()],
                root_threshold: None,
                channel_threshold: None,
                valid_for: DEFAULT_VALID_FOR,
                now: now(),
            }
        })
        .unwrap_err();
        assert!(
            matches!(
                err,
                TrustError::Invalid(ValidationError::BadThreshold { .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn rotation_needs_old_and_new_signatures() {
        let a = anchor();
        // Replace both root keys: old threshold (2) and new threshold (2) must both sign.
        let mut opts = rotate_opts(vec![sk(1), sk(2), sk(5), sk(6)]);
        opts.new_root_keys = Some(vec![sk(5).verifying_key(), sk(6).verifying_key()]);
        let r2 = rotate(&a.root, &opts).unwrap();
        assert_eq!(r2.root.version, 2);
        assert_eq!(r2.root.roles.root.threshold, 2);
        // Only the new keys: the old root has not agreed.
        opts.signing_keys = vec![sk(5), sk(6)];
        let err = rotate(&a.root, &opts).unwrap_err();
        assert!(
            matches!(
                err,
                TrustError::WouldBeRefused(VerifyError::ThresholdNotMet { .. })
            ),
            "{err}"
        );
        // A key of neither root.
        opts.signing_keys = vec![sk(1), sk(2), sk(5), sk(6), sk(9)];
        assert!(matches!(
            rotate(&a.root, &opts),
            Err(TrustError::StrayKey { .. })
        ));
        // Keeping the root keys and rotating the channel key.
        let mut keep = rotate_opts(vec![sk(1), sk(2)]);
        keep.channel_keys = Some(vec![sk(4).verifying_key()]);
        let r2 = rotate(&a.root, &keep).unwrap();
        assert_eq!(r2.root.roles.root, a.root.roles.root);
        assert_ne!(r2.root.roles.channel, a.root.roles.channel);
    }

    #[tokio::test]
    async fn rotate_write_and_walk_a_chain_of_three() {
        let dir = tempfile::tempdir().unwrap();
        let a = anchor();
        let anchor_path = dir.path().join("trust.json");
        write_anchor(&anchor_path, &a, false).unwrap();
        assert!(matches!(
            write_anchor(&anchor_path, &a, false),
            Err(TrustError::Exists(_))
        ));
        let site_dir = dir.path().join("site");
        std::fs::create_dir(&site_dir).unwrap();
        let mut opts = rotate_opts(vec![sk(1), sk(2), sk(5)]);
        opts.new_root_keys = Some(vec![sk(2).verifying_key(), sk(5).verifying_key()]);
        let r2 = rotate(&a.root, &opts).unwrap();
        write_rotated(&site_dir, &r2).unwrap();
        assert!(matches!(
            write_rotated(&site_dir, &r2),
            Err(TrustError::Exists(_))
        ));
        let mut opts = rotate_opts(vec![sk(2), sk(5)]);
        opts.root_threshold = Some(1);
        let r3 = rotate(&r2.root, &opts).unwrap();
        write_rotated(&site_dir, &r3).unwrap();

        let site = Site::dir(&site_dir, crate::site::Limits::default()).unwrap();
        let bytes = std::fs::read(&anchor_path).unwrap();
        let sig = std::fs::read(sig_path_of(&anchor_path)).unwrap();
        let chain =
            TrustChain::anchor(&bytes, Some((&sig, "trust.json.sig")), "trust.json").unwrap();
        let chain = walk_site(&site, chain).await.unwrap();
        assert_eq!(chain.current().version, 3);
        assert_eq!(chain.current(), &r3.root);

        // The walk is bounded in steps and in time.
        let chain = TrustChain::anchor(&bytes, None, "trust.json").unwrap();
        let bounds = WalkBounds {
            max_steps: 1,
            ..WalkBounds::default()
        };
        match walk_site_within(&site, chain.clone(), bounds).await {
            Err(TrustError::WalkTooManySteps { from: 1, steps: 1 }) => {}
            other => panic!("{other:?}"),
        }
        let bounds = WalkBounds {
            max_steps: 2,
            ..WalkBounds::default()
        };
        assert_eq!(
            walk_site_within(&site, chain.clone(), bounds)
                .await
                .unwrap()
                .current()
                .version,
            3
        );
        let bounds = WalkBounds {
            max_time: std::time::Duration::ZERO,
            ..WalkBounds::default()
        };
        let err = walk_site_within(&site, chain, bounds).await.unwrap_err();
        assert!(
            matches!(err, TrustError::WalkTimedOut { from: 1, secs: 0 }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "the trust root walk from version 1 took longer than 0s"
        );

        // A tampered rotated root stops the walk with a verification error.
        let p = SitePath::trust_root(3).under(&site_dir);
        let text = std::fs::read_to_string(&p).unwrap().replace("2027", "2099");
        std::fs::write(&p, text).unwrap();
        let chain = TrustChain::anchor(&bytes, None, "trust.json").unwrap();
        let err = walk_site(&site, chain).await.unwrap_err();
        assert!(
            matches!(err, TrustError::Verify(VerifyError::ThresholdNotMet { .. })),
            "{err}"
        );
    }
}
