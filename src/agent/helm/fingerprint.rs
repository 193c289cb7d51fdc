//! What coxswain writes into a helm revision's description, and how it reads
//! descriptions back.
//!
//! The description is the only free-text field helm keeps per revision, so it
//! carries the fingerprint `coxswain <channel>#<sequence> chart=sha256:<hex>
//! values=sha256:<hex>`. The planner compares it with the desired state to skip
//! unchanged releases without calling `helm upgrade`. Descriptions written by
//! helm itself ("Install complete", "Upgrade complete", "Rollback to 3") or by
//! people are not fingerprints; "Rollback to N" tells where to find one.

use std::fmt;

const PREFIX: &str = "coxswain ";
const DIGEST_PREFIX: &str = "sha256:";
/// Longest channel name a fingerprint accepts; keeps the description well
/// under helm's 256-character limit.
pub const MAX_CHANNEL_LEN: usize = 63;

/// The desired state a helm revision was made from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// Channel name from the signed index.
    pub channel: String,
    /// Sequence number of the index.
    pub sequence: u64,
    /// sha256 of the chart archive.
    pub chart_sha256: [u8; 32],
    /// sha256 of the canonical merged values.
    pub values_sha256: [u8; 32],
}

/// Why a fingerprint cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    /// The channel name would not survive a round trip through the description.
    #[error(
        "channel name {0:?} cannot go into a fingerprint: it must be 1-{MAX_CHANNEL_LEN} characters without whitespace, control characters or '#'"
    )]
    BadChannel(String),
}

impl Fingerprint {
    /// A fingerprint, checking that the channel name can be parsed back.
    pub fn new(
        channel: impl Into<String>,
        sequence: u64,
        chart_sha256: [u8; 32],
        values_sha256: [u8; 32],
    ) -> Result<Self, FingerprintError> {
        let channel = channel.into();
        if !channel_ok(&channel) {
            return Err(FingerprintError::BadChannel(channel));
        }
        Ok(Self {
            channel,
            sequence,
            chart_sha256,
            values_sha256,
        })
    }

    /// Reads a fingerprint; `None` for any other description (helm's own,
    /// a person's, or a malformed one).
    pub fn parse(description: &str) -> Option<Self> {
        let rest = description.trim().strip_prefix(PREFIX)?;
        let mut parts = rest.split(' ');
        let (channel, sequence) = parts.next()?.rsplit_once('#')?;
        let chart = parts.next()?.strip_prefix("chart=")?;
        let values = parts.next()?.strip_prefix("values=")?;
        if parts.next().is_some() || !channel_ok(channel) {
            return None;
        }
        // u64::from_str accepts a leading '+', which would not round-trip.
        if !sequence.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self {
            channel: channel.to_owned(),
            sequence: sequence.parse().ok()?,
            chart_sha256: parse_digest(chart)?,
            values_sha256: parse_digest(values)?,
        })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}#{} chart={DIGEST_PREFIX}{} values={DIGEST_PREFIX}{}",
            self.channel,
            self.sequence,
            hex::encode(self.chart_sha256),
            hex::encode(self.values_sha256)
        )
    }
}

fn channel_ok(channel: &str) -> bool {
    !channel.is_empty()
        && channel.chars().count() <= MAX_CHANNEL_LEN
        && !channel
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#')
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let hex_text = text.strip_prefix(DIGEST_PREFIX)?;
    // Only the lowercase spelling we write counts, so equal digests always
    // mean equal descriptions.
    if hex_text.len() != 64 || hex_text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

/// A helm revision description, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Description {
    /// Written by coxswain.
    Fingerprint(Fingerprint),
    /// Written by `helm rollback`: this revision restored revision N, whose
    /// description holds the fingerprint (if any).
    RollbackTo(u32),
    /// Anything else ("Install complete", "Upgrade complete", a person's note).
    Other,
}

impl Description {
    /// Classifies a description from `helm history` or `helm status`.
    pub fn parse(description: &str) -> Self {
        if let Some(fp) = Fingerprint::parse(description) {
            return Self::Fingerprint(fp);
        }
        match rollback_target(description) {
            Some(n) => Self::RollbackTo(n),
            None => Self::Other,
        }
    }
}

/// The N of helm's "Rollback to N" description.
pub fn rollback_target(description: &str) -> Option<u32> {
    let n = description.trim().strip_prefix("Rollback to ")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Fingerprint {
        Fingerprint::new("stable", 42, [0xab; 32], [0x01; 32]).unwrap()
    }

    #[test]
    fn formats_the_documented_layout() {
        let text = sample().to_string();
        assert_eq!(
            text,
            format!(
                "coxswain stable#42 chart=sha256:{} values=sha256:{}",
                "ab".repeat(32),
                "01".repeat(32)
            )
        );
        assert!(text.len() <= 256);
    }

    #[test]
    fn round_trips() {
        let fp = sample();
        assert_eq!(Fingerprint::parse(&fp.to_string()), Some(fp.clone()));
        let long =
            Fingerprint::new("c".repeat(MAX_CHANNEL_LEN), u64::MAX, [0xff; 32], [0; 32]).unwrap();
        let text = long.to_string();
        assert!(text.chars().count() <= 256, "{} chars", text.len());
        assert_eq!(Fingerprint::parse(&text), Some(long));
    }

    #[test]
    fn tolerates_surrounding_whitespace() {
        let fp = sample();
        assert_eq!(Fingerprint::parse(&format!("  {fp}\n")), Some(fp));
    }

    #[test]
    fn foreign_descriptions_are_not_fingerprints() {
        for text in [
            "",
            "Install complete",
            "Upgrade complete",
            "Rollback to 3",
            "Initial install underway",
            "coxswain",
            "coxswain stable#42",
            "coxswain is great",
        ] {
            assert_eq!(Fingerprint::parse(text), None, "{text:?}");
            assert!(
                !matches!(Description::parse(text), Description::Fingerprint(_)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn malformed_fingerprints_are_rejected() {
        let good = sample().to_string();
        let ab = "ab".repeat(32);
        let bad = [
            good.replace("#42", "#"),
            good.replace("#42", "#-1"),
            good.replace("#42", "#+42"),
            good.replace("#42", "#4x"),
            good.replace("#42", "#99999999999999999999999"),
            good.replace("stable#", "#"),
            good.replace("chart=", "chart:"),
            good.replace("values=sha256:", "values=sha512:"),
            good.replace(&ab, &ab.to_uppercase()),
            good.replace(&ab, &ab[..62]),
            good.replace(&ab, &format!("{ab}00")),
            good.replace(&ab, &"zz".repeat(32)),
            format!("{good} extra"),
            good.replace(" chart", "  chart"),
            good.replace("coxswain ", "Coxswain "),
        ];
        for text in bad {
            assert_eq!(Fingerprint::parse(&text), None, "{text:?}");
        }
    }

    #[test]
    fn channel_names_that_would_not_round_trip_are_refused() {
        for channel in [
            "",
            "a b",
            "a#b",
            "tab\there",
            &"x".repeat(MAX_CHANNEL_LEN + 1),
        ] {
            assert_eq!(
                Fingerprint::new(channel, 1, [0; 32], [0; 32]),
                Err(FingerprintError::BadChannel(channel.to_owned()))
            );
        }
        // A channel containing '#' elsewhere is refused by parse, too.
        let text = format!(
            "coxswain a#b#1 chart=sha256:{} values=sha256:{}",
            "00".repeat(32),
            "00".repeat(32)
        );
        assert_eq!(Fingerprint::parse(&text), None);
    }

    #[test]
    fn classifies_descriptions() {
        assert_eq!(
            Description::parse(&sample().to_string()),
            Description::Fingerprint(sample())
        );
        assert_eq!(
            Description::parse("Rollback to 3"),
            Description::RollbackTo(3)
        );
        assert_eq!(
            Description::parse("Rollback to 12\n"),
            Description::RollbackTo(12)
        );
        for other in [
            "Install complete",
            "Upgrade complete",
            "Rollback to",
            "Rollback to 0",
            "Rollback to -1",
            "Rollback to 3 please",
            "Rollback to 99999999999",
            "rollback to 3",
        ] {
            assert_eq!(Description::parse(other), Description::Other, "{other:?}");
        }
        assert_eq!(rollback_target("Rollback to 7"), Some(7));
        assert_eq!(rollback_target("Upgrade complete"), None);
    }
}
