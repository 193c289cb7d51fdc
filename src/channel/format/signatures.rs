//! The signature envelope (`index.json.sig`, `trust/<N>.json.sig`): ed25519 over the
//! exact bytes of the file beside it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiVersion, Document, ValidationError, parse_lower_hex};

/// Largest signature file accepted.
pub const MAX_SIGNATURES_BYTES: usize = 256 << 10;

/// The `kind` of a signature envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum SignaturesKind {
    /// `Signatures`
    #[default]
    Signatures,
}

/// Signatures over one file's exact bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Signatures {
    /// Always `coxswain.dev/v1`.
    pub api_version: ApiVersion,
    /// Always `Signatures`.
    pub kind: SignaturesKind,
    /// One entry per signing key. A key listed twice still counts once.
    pub signatures: Vec<SignatureEntry>,
}

/// One signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignatureEntry {
    /// Lowercase hex SHA-256 of the signer's raw 32-byte public key.
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub keyid: String,
    /// Lowercase hex of the 64-byte ed25519 signature.
    #[schemars(regex(pattern = "^[0-9a-f]{128}$"))]
    pub sig: String,
}

impl SignatureEntry {
    /// The signature bytes (validated on read, so `None` only for hand-built values).
    pub fn sig_bytes(&self) -> Option<[u8; 64]> {
        parse_lower_hex::<64>(&self.sig)
    }
}

impl Signatures {
    /// An envelope around `entries`.
    pub fn new(signatures: Vec<SignatureEntry>) -> Self {
        Self {
            api_version: ApiVersion::V1,
            kind: SignaturesKind::Signatures,
            signatures,
        }
    }
}

impl Document for Signatures {
    const KIND: &'static str = "Signatures";
    const MAX_BYTES: usize = MAX_SIGNATURES_BYTES;

    fn validate(&self) -> Result<(), ValidationError> {
        for (index, entry) in self.signatures.iter().enumerate() {
            if parse_lower_hex::<32>(&entry.keyid).is_none() {
                return Err(ValidationError::BadSignatureEntry {
                    index,
                    reason: "keyid is not 64 lowercase hex digits",
                });
            }
            if entry.sig_bytes().is_none() {
                return Err(ValidationError::BadSignatureEntry {
                    index,
                    reason: "sig is not 128 lowercase hex digits",
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{FormatError, read_json, to_json_pretty};

    #[test]
    fn roundtrip_and_entry_checks() {
        let good = Signatures::new(vec![SignatureEntry {
            keyid: "ab".repeat(32),
            sig: "cd".repeat(64),
        }]);
        let bytes = to_json_pretty(&good).unwrap();
        assert_eq!(read_json::<Signatures>(&bytes, "x.sig").unwrap(), good);
        let mut bad = good.clone();
        bad.signatures[0].sig = "CD".repeat(64);
        let bytes = to_json_pretty(&bad).unwrap();
        assert!(matches!(
            read_json::<Signatures>(&bytes, "x.sig"),
            Err(FormatError::Invalid {
                error: ValidationError::BadSignatureEntry { index: 0, .. },
                ..
            })
        ));
    }
}
