//! Signature checking, trust root rotation, and the only way to obtain a [`VerifiedIndex`].
//!
//! Signatures are checked with ed25519 `verify_strict` over the exact raw bytes of the
//! signed file, before those bytes are parsed. A key counts once however often it is
//! listed; signatures by keys outside the required role are ignored.
//!
//! Trust roots form a chain. The anchor (usually version 1) is what the administrator
//! installs, and is trusted as given; if its own signature file is supplied it must also
//! carry a threshold of its own root keys, which catches a damaged or mismatched copy.
//! Root N+1 is accepted only when signed by a threshold of root N's `root` keys and a
//! threshold of its own `root` keys, and its version is exactly N+1. Intermediate roots
//! may have expired; the latest one must not have.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signature, VerifyingKey};

use crate::format::index::MAX_INDEX_BYTES;
use crate::format::trust::RoleName;
use crate::format::{
    ChannelIndex, FormatError, IndexChart, Sha256Digest, Signatures, Timestamp, TrustRoot,
    read_json,
};
use crate::json::JsonError;

/// Why one signature entry did not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// The key is not in the required role.
    NotInRole {
        /// The entry's keyid.
        keyid: String,
    },
    /// The signature does not verify (wrong key, altered bytes).
    BadSignature {
        /// The entry's keyid.
        keyid: String,
    },
    /// The key already counted once.
    Duplicate {
        /// The entry's keyid.
        keyid: String,
    },
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::NotInRole { keyid } => write!(f, "{} is not a key of the role", short(keyid)),
            Rejected::BadSignature { keyid } => {
                write!(f, "signature by {} does not match", short(keyid))
            }
            Rejected::Duplicate { keyid } => write!(f, "{} is listed again", short(keyid)),
        }
    }
}

fn short(keyid: &str) -> &str {
    keyid.get(..12).unwrap_or(keyid)
}

/// The rejected entries of a signature file, as a message shows them: at most 10, then how
/// many more (a hostile file may list thousands).
fn list(rejected: &[Rejected]) -> String {
    if rejected.is_empty() {
        return String::new();
    }
    format!(" ({})", crate::bounded::bounded_list(rejected, 10))
}

/// Why verification failed. Every variant names the file or URL concerned.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The signature envelope is malformed.
    #[error("signature file is unreadable")]
    Signatures(#[source] FormatError),
    /// Fewer distinct keys of the role signed than the threshold requires.
    #[error(
        "{origin}: {valid} valid signature(s) by distinct `{role}` keys, {threshold} required{}",
        list(rejected)
    )]
    ThresholdNotMet {
        /// The signed file.
        origin: String,
        /// The role whose keys had to sign.
        role: RoleName,
        /// Distinct valid signers found.
        valid: usize,
        /// Signers required.
        threshold: u32,
        /// Entries that did not count, and why.
        rejected: Vec<Rejected>,
    },
    /// The document is malformed or invalid (it was authentic, but is still refused).
    #[error(transparent)]
    Document(FormatError),
    /// The index is for another channel (a channel swap).
    #[error("{origin}: index is for channel `{found}`, not `{expected}`")]
    WrongChannel {
        /// The index.
        origin: String,
        /// The channel asked for.
        expected: String,
        /// The channel the index names.
        found: String,
    },
    /// The index or trust root has expired (a freeze attack, or a publisher that stopped).
    #[error("{origin}: expired at {expires} (now {now})")]
    Expired {
        /// The document.
        origin: String,
        /// Its expiry.
        expires: Timestamp,
        /// The time of the check.
        now: Timestamp,
    },
    /// The index says it was published later than the time of the check allows.
    #[error(
        "{origin}: published {published}, more than {} minutes after now ({now}): refused \
         (a clock far behind, or an index dated ahead to outlive its validity)",
        crate::format::MAX_CLOCK_SKEW.as_secs() / 60
    )]
    PublishedInFuture {
        /// The index.
        origin: String,
        /// Its `published`.
        published: Timestamp,
        /// The time of the check.
        now: Timestamp,
    },
    /// A trust root expiring further ahead than [`crate::format::MAX_TRUST_ROOT_VALIDITY`].
    #[error(
        "{origin}: expires {expires}, more than {} days after now ({now}), longer than any \
         trust root may be valid",
        crate::format::MAX_TRUST_ROOT_VALIDITY.as_secs() / 86_400
    )]
    ValidityTooLong {
        /// The trust root.
        origin: String,
        /// Its expiry.
        expires: Timestamp,
        /// The time of the check.
        now: Timestamp,
    },
    /// The index's sequence is below the highest already accepted (a rollback).
    #[error(
        "{origin}: sequence {found} is lower than {minimum}, already accepted (rollback refused)"
    )]
    SequenceTooLow {
        /// The index.
        origin: String,
        /// The sequence in the index.
        found: u64,
        /// The lowest acceptable.
        minimum: u64,
    },
    /// A rotated trust root whose version is not exactly one more than the current.
    #[error("{origin}: trust root version {found} does not follow version {current} (expected {})", current + 1)]
    TrustVersionSkip {
        /// The new root.
        origin: String,
        /// The version in it.
        found: u64,
        /// The current root's version.
        current: u64,
    },
    /// A chart archive of the wrong size.
    #[error("chart {chart}: {actual} bytes, the index says {expected}")]
    ChartSize {
        /// `name version`.
        chart: String,
        /// The size in the index.
        expected: u64,
        /// The size received.
        actual: u64,
    },
    /// A chart archive with the wrong digest.
    #[error("chart {chart}: digest {actual}, the index says {expected}")]
    ChartDigest {
        /// `name version`.
        chart: String,
        /// The digest in the index.
        expected: Sha256Digest,
        /// The digest of the bytes received.
        actual: Sha256Digest,
    },
}

/// Checks `signatures` over `bytes` against the keys of one role and its threshold.
/// Returns the distinct keyids whose signatures verified.
pub fn check_threshold(
    bytes: &[u8],
    signatures: &Signatures,
    role_keys: &BTreeMap<&str, VerifyingKey>,
    threshold: u32,
    role: RoleName,
    origin: &str,
) -> Result<BTreeSet<String>, VerifyError> {
    let (valid, rejected) = valid_signers(bytes, signatures, role_keys);
    if valid.len() < threshold as usize {
        return Err(VerifyError::ThresholdNotMet {
            origin: origin.to_owned(),
            role,
            valid: valid.len(),
            threshold,
            rejected,
        });
    }
    Ok(valid)
}

/// The distinct keys of `role_keys` with a valid `verify_strict` signature over `bytes`,
/// and the entries that did not count.
pub fn valid_signers(
    bytes: &[u8],
    signatures: &Signatures,
    role_keys: &BTreeMap<&str, VerifyingKey>,
) -> (BTreeSet<String>, Vec<Rejected>) {
    let mut valid = BTreeSet::new();
    let mut rejected = Vec::new();
    for entry in &signatures.signatures {
        let keyid = entry.keyid.clone();
        let Some(key) = role_keys.get(entry.keyid.as_str()) else {
            rejected.push(Rejected::NotInRole { keyid });
            continue;
        };
        if valid.contains(&entry.keyid) {
            rejected.push(Rejected::Duplicate { keyid });
            continue;
        }
        let ok = entry.sig_bytes().is_some_and(|sig| {
            key.verify_strict(bytes, &Signature::from_bytes(&sig))
                .is_ok()
        });
        if ok {
            valid.insert(keyid);
        } else {
            rejected.push(Rejected::BadSignature { keyid });
        }
    }
    (valid, rejected)
}

fn read_signatures(sig_bytes: &[u8], sig_origin: &str) -> Result<Signatures, VerifyError> {
    read_json(sig_bytes, sig_origin).map_err(VerifyError::Signatures)
}

/// A trust root chain being walked from the anchor towards the newest root.
#[derive(Debug, Clone)]
pub struct TrustChain {
    current: TrustRoot,
    origin: String,
}

impl TrustChain {
    /// Starts from the installed anchor. It is trusted as given (only parsed and
    /// validated); when `sig` (its `.sig` file) is given, a threshold of the anchor's own
    /// root keys must have signed it.
    pub fn anchor(
        bytes: &[u8],
        sig: Option<(&[u8], &str)>,
        origin: &str,
    ) -> Result<Self, VerifyError> {
        let root: TrustRoot = read_json(bytes, origin).map_err(VerifyError::Document)?;
        if let Some((sig_bytes, sig_origin)) = sig {
            let signatures = read_signatures(sig_bytes, sig_origin)?;
            let role = root.role(RoleName::Root);
            check_threshold(
                bytes,
                &signatures,
                &root.role_keys(RoleName::Root),
                role.threshold,
                RoleName::Root,
                origin,
            )?;
        }
        Ok(Self {
            current: root,
            origin: origin.to_owned(),
        })
    }

    /// The newest root accepted so far.
    pub fn current(&self) -> &TrustRoot {
        &self.current
    }

    /// The version to look for next (`trust/<N>.json`).
    pub fn next_version(&self) -> u64 {
        self.current.version.saturating_add(1)
    }

    /// Accepts root N+1: signatures first (a threshold of the current root's root keys,
    /// over the raw bytes), then the parse, the version step, and a threshold of the new
    /// root's own root keys.
    pub fn advance(
        &mut self,
        bytes: &[u8],
        sig_bytes: &[u8],
        origin: &str,
        sig_origin: &str,
    ) -> Result<(), VerifyError> {
        let signatures = read_signatures(sig_bytes, sig_origin)?;
        let old_role = self.current.role(RoleName::Root);
        check_threshold(
            bytes,
            &signatures,
            &self.current.role_keys(RoleName::Root),
            old_role.threshold,
            RoleName::Root,
            &format!(
                "{origin} (signed by version {}'s root keys)",
                self.current.version
            ),
        )?;
        let next: TrustRoot = read_json(bytes, origin).map_err(VerifyError::Document)?;
        if next.version != self.next_version() {
            return Err(VerifyError::TrustVersionSkip {
                origin: origin.to_owned(),
                found: next.version,
                current: self.current.version,
            });
        }
        check_threshold(
            bytes,
            &signatures,
            &next.role_keys(RoleName::Root),
            next.role(RoleName::Root).threshold,
            RoleName::Root,
            &format!("{origin} (signed by its own root keys)"),
        )?;
        self.current = next;
        self.origin = origin.to_owned();
        Ok(())
    }

    /// Ends the walk: the newest root must not have expired at `now`.
    pub fn trusted(self, now: Timestamp) -> Result<TrustedRoot, VerifyError> {
        if now >= self.current.expires {
            return Err(VerifyError::Expired {
                origin: self.origin,
                expires: self.current.expires,
                now,
            });
        }
        if now
            .checked_add(crate::format::MAX_TRUST_ROOT_VALIDITY)
            .is_some_and(|latest| self.current.expires > latest)
        {
            return Err(VerifyError::ValidityTooLong {
                origin: self.origin,
                expires: self.current.expires,
                now,
            });
        }
        Ok(TrustedRoot {
            root: self.current,
            origin: self.origin,
        })
    }
}

/// The newest trust root, reached through a verified chain and not expired when checked.
/// Only [`TrustChain::trusted`] makes one.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    root: TrustRoot,
    origin: String,
}

impl TrustedRoot {
    /// The root document.
    pub fn root(&self) -> &TrustRoot {
        &self.root
    }

    /// Where it came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// What the caller requires of an index besides valid signatures.
#[derive(Debug, Clone, Copy)]
pub struct IndexPolicy<'a> {
    /// The channel asked for; the index must name it.
    pub channel: &'a str,
    /// The lowest acceptable sequence: the highest already accepted (0 when none).
    pub min_sequence: u64,
    /// The time to check expiry against (injected so tests need no clock).
    pub now: Timestamp,
}

/// A channel index whose signatures, channel, expiry and sequence were checked.
/// Only [`verify_index`] makes one, so code holding it cannot have skipped verification.
#[derive(Debug, Clone)]
pub struct VerifiedIndex {
    index: ChannelIndex,
    digest: Sha256Digest,
    signers: BTreeSet<String>,
}

/// Verifies `index.json` bytes with their `index.json.sig` against the trusted root.
/// The signatures are checked on the raw bytes before anything is parsed.
pub fn verify_index(
    bytes: &[u8],
    sig_bytes: &[u8],
    trust: &TrustedRoot,
    policy: IndexPolicy<'_>,
    origin: &str,
    sig_origin: &str,
) -> Result<VerifiedIndex, VerifyError> {
    // Cap the size before spending time on hashing it for the signature check.
    if bytes.len() > MAX_INDEX_BYTES {
        return Err(VerifyError::Document(FormatError::Json(
            JsonError::TooLarge {
                origin: origin.to_owned(),
                size: bytes.len(),
                limit: MAX_INDEX_BYTES,
            },
        )));
    }
    let signatures = read_signatures(sig_bytes, sig_origin)?;
    let root = trust.root();
    let signers = check_threshold(
        bytes,
        &signatures,
        &root.role_keys(RoleName::Channel),
        root.role(RoleName::Channel).threshold,
        RoleName::Channel,
        origin,
    )?;
    let index: ChannelIndex = read_json(bytes, origin).map_err(VerifyError::Document)?;
    if index.channel != policy.channel {
        return Err(VerifyError::WrongChannel {
            origin: origin.to_owned(),
            expected: policy.channel.to_owned(),
            found: index.channel,
        });
    }
    if policy.now >= index.expires {
        return Err(VerifyError::Expired {
            origin: origin.to_owned(),
            expires: index.expires,
            now: policy.now,
        });
    }
    if policy
        .now
        .checked_add(crate::format::MAX_CLOCK_SKEW)
        .is_some_and(|latest| index.published > latest)
    {
        return Err(VerifyError::PublishedInFuture {
            origin: origin.to_owned(),
            published: index.published,
            now: policy.now,
        });
    }
    if index.sequence < policy.min_sequence {
        return Err(VerifyError::SequenceTooLow {
            origin: origin.to_owned(),
            found: index.sequence,
            minimum: policy.min_sequence,
        });
    }
    Ok(VerifiedIndex {
        index,
        digest: Sha256Digest::of(bytes),
        signers,
    })
}

impl VerifiedIndex {
    /// The index.
    pub fn index(&self) -> &ChannelIndex {
        &self.index
    }

    /// The index, consumed.
    pub fn into_index(self) -> ChannelIndex {
        self.index
    }

    /// SHA-256 of the exact index bytes that were verified.
    pub fn digest(&self) -> Sha256Digest {
        self.digest
    }

    /// The channel keys whose signatures verified.
    pub fn signers(&self) -> &BTreeSet<String> {
        &self.signers
    }

    /// Checks a chart archive's bytes against its entry: size first, then SHA-256.
    pub fn check_chart(&self, chart: &IndexChart, bytes: &[u8]) -> Result<(), VerifyError> {
        let label = || format!("{} {}", chart.name, chart.version);
        let actual = bytes.len() as u64;
        if actual != chart.size {
            return Err(VerifyError::ChartSize {
                chart: label(),
                expected: chart.size,
                actual,
            });
        }
        let digest = Sha256Digest::of(bytes);
        if digest != chart.digest {
            return Err(VerifyError::ChartDigest {
                chart: label(),
                expected: chart.digest,
                actual: digest,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn ten_thousand_signatures_and_a_megabyte_keyid_give_bounded_messages() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let role: BTreeMap<&str, VerifyingKey> = BTreeMap::new();
        let signatures = Signatures {
            api_version: crate::format::ApiVersion::V1,
            kind: crate::format::signatures::SignaturesKind::Signatures,
            signatures: (0..10_000u32)
                .map(|n| crate::format::signatures::SignatureEntry {
                    keyid: format!("{:064x}", n),
                    sig: "00".repeat(64),
                })
                .collect(),
        };
        let err = check_threshold(b"x", &signatures, &role, 1, RoleName::Channel, "index.json")
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("… (9990 more)"), "{text}");
        assert!(text.len() < 1_000, "{} bytes: {text}", text.len());
        assert!(
            matches!(err, VerifyError::ThresholdNotMet { ref rejected, .. } if rejected.len() == 10_000),
            "the error keeps every entry; only its message is bounded"
        );

        // A trust anchor naming a key by a 1 MB keyid.
        let huge = "f".repeat(1_000_000);
        let mut root = TrustRoot::new(
            1,
            "2027-06-01T00:00:00Z".parse().unwrap(),
            (&[key.verifying_key()], 1),
            (&[key.verifying_key()], 1),
        );
        let entry = root.keys.values().next().unwrap().clone();
        root.keys.insert(huge.clone(), entry);
        let bytes = crate::format::to_json_pretty(&root).unwrap();
        assert!(bytes.len() > 1_000_000 && bytes.len() <= crate::format::trust::MAX_TRUST_BYTES);
        let err = TrustChain::anchor(&bytes, None, "trust.json").unwrap_err();
        let text = crate::site_verify::describe(&err);
        assert!(text.contains("more characters)"), "{}", &text[..200]);
        assert!(text.len() < 2_000, "{} bytes", text.len());
    }

    #[test]
    fn a_trust_root_valid_too_far_ahead_is_refused() {
        let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let anchor = |expires: &str| {
            let root = TrustRoot::new(
                1,
                expires.parse().unwrap(),
                (&[key.verifying_key()], 1),
                (&[key.verifying_key()], 1),
            );
            crate::format::to_json_pretty(&root).unwrap()
        };
        // 1,096 days ahead is the maximum; a day more is refused.
        let ok = anchor("2029-12-01T00:00:00Z");
        assert!(
            TrustChain::anchor(&ok, None, "trust.json")
                .unwrap()
                .trusted(now)
                .is_ok()
        );
        let far = anchor("2029-12-02T00:00:01Z");
        match TrustChain::anchor(&far, None, "trust.json")
            .unwrap()
            .trusted(now)
        {
            Err(e @ VerifyError::ValidityTooLong { .. }) => {
                assert!(
                    e.to_string().contains("more than 1096 days after now"),
                    "{e}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    use super::*;
    use crate::format::to_json_pretty;
    use crate::keys::sign;
    use ed25519_dalek::SigningKey;

    fn sk(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const NOW: &str = "2026-12-01T00:00:00Z";

    fn root_doc(
        version: u64,
        root: &[&SigningKey],
        rt: u32,
        channel: &[&SigningKey],
        ct: u32,
    ) -> TrustRoot {
        let pubs = |ks: &[&SigningKey]| ks.iter().map(|k| k.verifying_key()).collect::<Vec<_>>();
        TrustRoot::new(
            version,
            at("2027-12-01T00:00:00Z"),
            (&pubs(root), rt),
            (&pubs(channel), ct),
        )
    }

    fn signed(doc: &impl serde::Serialize, keys: &[&SigningKey]) -> (Vec<u8>, Vec<u8>) {
        let bytes = to_json_pretty(doc).unwrap();
        let keys: Vec<SigningKey> = keys.iter().map(|k| (*k).clone()).collect();
        let sig = to_json_pretty(&sign(&bytes, &keys)).unwrap();
        (bytes, sig)
    }

    fn trusted(root: &TrustRoot) -> TrustedRoot {
        let bytes = to_json_pretty(root).unwrap();
        TrustChain::anchor(&bytes, None, "trust.json")
            .unwrap()
            .trusted(at(NOW))
            .unwrap()
    }

    fn policy() -> IndexPolicy<'static> {
        IndexPolicy {
            channel: "stable",
            min_sequence: 7,
            now: at(NOW),
        }
    }

    #[test]
    fn accepts_a_good_index_and_checks_charts() {
        let root = trusted(&root_doc(1, &[&sk(1)], 1, &[&sk(3), &sk(4)], 2));
        let (bytes, sig) = signed(&crate::format::index::tests::sample(), &[&sk(3), &sk(4)]);
        let v = verify_index(
            &bytes,
            &sig,
            &root,
            policy(),
            "index.json",
            "index.json.sig",
        )
        .unwrap();
        assert_eq!(v.index().sequence, 7);
        assert_eq!(v.signers().len(), 2);
        assert_eq!(v.digest(), Sha256Digest::of(&bytes));
        let chart = &v.index().releases[1].chart;
        v.check_chart(chart, b"wiki").unwrap();
        assert!(matches!(
            v.check_chart(chart, b"wikx"),
            Err(VerifyError::ChartDigest { .. })
        ));
        assert!(matches!(
            v.check_chart(chart, b"wiki!"),
            Err(VerifyError::ChartSize {
                expected: 4,
                actual: 5,
                ..
            })
        ));
    }

    #[test]
    fn tampering_and_thresholds() {
        let root = trusted(&root_doc(1, &[&sk(1)], 1, &[&sk(3), &sk(4)], 2));
        let (mut bytes, sig) = signed(&crate::format::index::tests::sample(), &[&sk(3), &sk(4)]);
        let pos = bytes.len() / 2;
        bytes[pos] ^= 1;
        let err = verify_index(&bytes, &sig, &root, policy(), "index.json", "s").unwrap_err();
        assert!(
            matches!(&err, VerifyError::ThresholdNotMet { valid: 0, threshold: 2, rejected, .. }
            if rejected.iter().all(|r| matches!(r, Rejected::BadSignature { .. }))),
            "{err}"
        );
        assert!(err.to_string().starts_with("index.json: 0 valid"), "{err}");

        // One signer short; a repeated entry does not make up for it.
        let (bytes, _) = signed(&crate::format::index::tests::sample(), &[]);
        let mut sigs = sign(&bytes, &[sk(3)]);
        sigs.signatures.push(sigs.signatures[0].clone());
        let sig = to_json_pretty(&sigs).unwrap();
        let err = verify_index(&bytes, &sig, &root, policy(), "index.json", "s").unwrap_err();
        assert!(
            matches!(&err, VerifyError::ThresholdNotMet { valid: 1, rejected, .. }
            if matches!(rejected.as_slice(), [Rejected::Duplicate { .. }])),
            "{err}"
        );

        // A root key is not a channel key.
        let sig = to_json_pretty(&sign(&bytes, &[sk(1), sk(3)])).unwrap();
        let err = verify_index(&bytes, &sig, &root, policy(), "index.json", "s").unwrap_err();
        assert!(
            matches!(&err, VerifyError::ThresholdNotMet { valid: 1, rejected, .. }
            if matches!(rejected.as_slice(), [Rejected::NotInRole { .. }])),
            "{err}"
        );
    }

    #[test]
    fn channel_expiry_and_sequence() {
        let root = trusted(&root_doc(1, &[&sk(1)], 1, &[&sk(3)], 1));
        let (bytes, sig) = signed(&crate::format::index::tests::sample(), &[&sk(3)]);
        let check = |p: IndexPolicy<'_>| verify_index(&bytes, &sig, &root, p, "index.json", "s");
        assert!(matches!(check(IndexPolicy { channel: "beta", ..policy() }),
            Err(VerifyError::WrongChannel { found, .. }) if found == "stable"));
        assert!(matches!(
            check(IndexPolicy {
                now: at("2026-12-10T03:00:00Z"),
                ..policy()
            }),
            Err(VerifyError::Expired { .. })
        ));
        check(IndexPolicy {
            now: at("2026-12-10T02:59:59Z"),
            ..policy()
        })
        .unwrap();
        assert!(matches!(
            check(IndexPolicy {
                min_sequence: 8,
                ..policy()
            }),
            Err(VerifyError::SequenceTooLow {
                found: 7,
                minimum: 8,
                ..
            })
        ));
        check(IndexPolicy {
            min_sequence: 7,
            ..policy()
        })
        .unwrap();
    }

    #[test]
    fn rotation_chain_of_three() {
        let (a, b, c, d) = (sk(1), sk(2), sk(5), sk(6));
        let r1 = root_doc(1, &[&a, &b], 2, &[&sk(3)], 1);
        let r2 = root_doc(2, &[&b, &c], 2, &[&sk(4)], 1);
        let r3 = root_doc(3, &[&c, &d], 1, &[&sk(4)], 1);
        let (b1, s1) = signed(&r1, &[&a, &b]);
        let (b2, s2) = signed(&r2, &[&a, &b, &c]);
        let (b3, s3) = signed(&r3, &[&b, &c, &d]);
        let mut chain = TrustChain::anchor(&b1, Some((&s1, "1.json.sig")), "trust.json").unwrap();
        chain
            .advance(&b2, &s2, "trust/2.json", "trust/2.json.sig")
            .unwrap();
        assert_eq!(chain.next_version(), 3);
        chain
            .advance(&b3, &s3, "trust/3.json", "trust/3.json.sig")
            .unwrap();
        let trusted = chain.clone().trusted(at(NOW)).unwrap();
        assert_eq!(trusted.root().version, 3);
        assert_eq!(trusted.origin(), "trust/3.json");
        // An index signed by the rotated channel key verifies; the old one no longer does.
        let (ib, is) = signed(&crate::format::index::tests::sample(), &[&sk(4)]);
        verify_index(&ib, &is, &trusted, policy(), "i", "s").unwrap();
        let (ib, is) = signed(&crate::format::index::tests::sample(), &[&sk(3)]);
        assert!(matches!(
            verify_index(&ib, &is, &trusted, policy(), "i", "s"),
            Err(VerifyError::ThresholdNotMet { .. })
        ));
    }

    #[test]
    fn rotation_refusals() {
        let (a, b, c) = (sk(1), sk(2), sk(5));
        let r1 = root_doc(1, &[&a], 1, &[&sk(3)], 1);
        let chain =
            || TrustChain::anchor(&to_json_pretty(&r1).unwrap(), None, "trust.json").unwrap();
        // Lacks the old root's signature.
        let (b2, s2) = signed(&root_doc(2, &[&b], 1, &[&sk(3)], 1), &[&b]);
        let err = chain().advance(&b2, &s2, "trust/2.json", "s").unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::ThresholdNotMet {
                    role: RoleName::Root,
                    ..
                }
            ),
            "{err}"
        );
        // Lacks its own root keys' signatures.
        let (b2, s2) = signed(&root_doc(2, &[&b, &c], 2, &[&sk(3)], 1), &[&a, &b]);
        let err = chain().advance(&b2, &s2, "trust/2.json", "s").unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::ThresholdNotMet {
                    valid: 1,
                    threshold: 2,
                    ..
                }
            ),
            "{err}"
        );
        // Skips a version.
        let (b3, s3) = signed(&root_doc(3, &[&a], 1, &[&sk(3)], 1), &[&a]);
        let err = chain().advance(&b3, &s3, "trust/3.json", "s").unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::TrustVersionSkip {
                    found: 3,
                    current: 1,
                    ..
                }
            ),
            "{err}"
        );
        // Replays the same version.
        let (b1, s1) = signed(&r1, &[&a]);
        assert!(matches!(
            chain().advance(&b1, &s1, "trust/1.json", "s"),
            Err(VerifyError::TrustVersionSkip { .. })
        ));
        // The latest root has expired.
        let mut late = r1.clone();
        late.expires = at("2026-11-30T00:00:00Z");
        let c = TrustChain::anchor(&to_json_pretty(&late).unwrap(), None, "trust.json").unwrap();
        assert!(matches!(
            c.trusted(at(NOW)),
            Err(VerifyError::Expired { .. })
        ));
        // A tampered anchor with its signature file fails; without it, it is taken as given.
        let (b1, s1) = signed(&r1, &[&a]);
        TrustChain::anchor(&b1, Some((&s1, "s")), "trust.json").unwrap();
        let longer = String::from_utf8(b1)
            .unwrap()
            .replace("2027-12-01", "2099-12-01");
        assert!(matches!(
            TrustChain::anchor(longer.as_bytes(), Some((&s1, "s")), "trust.json"),
            Err(VerifyError::ThresholdNotMet { .. })
        ));
        TrustChain::anchor(longer.as_bytes(), None, "trust.json").unwrap();
    }
}
