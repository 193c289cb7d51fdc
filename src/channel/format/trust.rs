//! The trust root: which keys may sign the channel index, and which may sign the next root.

use std::collections::{BTreeMap, HashSet};

use ed25519_dalek::VerifyingKey;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiVersion, Document, Timestamp, ValidationError};
use crate::keys;

/// Largest trust root accepted.
pub const MAX_TRUST_BYTES: usize = 1 << 20;

/// The `kind` of a trust root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum TrustRootKind {
    /// `TrustRoot`
    #[default]
    TrustRoot,
}

/// A versioned, expiring set of keys and the roles they fill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrustRoot {
    /// Always `coxswain.dev/v1`.
    pub api_version: ApiVersion,
    /// Always `TrustRoot`.
    pub kind: TrustRootKind,
    /// 1 for the anchor, then +1 per rotation.
    pub version: u64,
    /// After this the root is refused until a newer one is published.
    pub expires: Timestamp,
    /// Public keys by keyid (lowercase hex SHA-256 of the raw public key).
    pub keys: BTreeMap<String, KeyEntry>,
    /// Who may sign what.
    pub roles: Roles,
}

/// A public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeyEntry {
    /// The signature scheme.
    pub scheme: KeyScheme,
    /// Lowercase hex of the raw 32-byte public key.
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub public: String,
}

/// Signature schemes; only ed25519.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum KeyScheme {
    /// Ed25519 (RFC 8032), verified strictly.
    #[serde(rename = "ed25519")]
    Ed25519,
}

/// The two roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Roles {
    /// Signs new trust roots.
    pub root: Role,
    /// Signs channel indexes.
    pub channel: Role,
}

/// A set of keys and how many of them must sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Role {
    /// The keys that fill the role.
    pub keyids: Vec<String>,
    /// How many distinct keys of the role must sign (1 ..= keyids.len()).
    #[schemars(range(min = 1))]
    pub threshold: u32,
}

/// Which role a signature must come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleName {
    /// Signs trust roots.
    Root,
    /// Signs channel indexes.
    Channel,
}

impl RoleName {
    /// `root` or `channel`.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleName::Root => "root",
            RoleName::Channel => "channel",
        }
    }
}

impl std::fmt::Display for RoleName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TrustRoot {
    /// A root from keys and roles; `keys` are added under their keyids.
    pub fn new(
        version: u64,
        expires: Timestamp,
        root: (&[VerifyingKey], u32),
        channel: (&[VerifyingKey], u32),
    ) -> Self {
        let mut keys_by_id = BTreeMap::new();
        let mut role = |(list, threshold): (&[VerifyingKey], u32)| {
            let mut keyids = Vec::new();
            for key in list {
                let id = keys::keyid(key);
                keys_by_id.insert(
                    id.clone(),
                    KeyEntry {
                        scheme: KeyScheme::Ed25519,
                        public: hex::encode(key.as_bytes()),
                    },
                );
                if !keyids.contains(&id) {
                    keyids.push(id);
                }
            }
            Role { keyids, threshold }
        };
        let roles = Roles {
            root: role(root),
            channel: role(channel),
        };
        Self {
            api_version: ApiVersion::V1,
            kind: TrustRootKind::TrustRoot,
            version,
            expires,
            keys: keys_by_id,
            roles,
        }
    }

    /// The role's definition.
    pub fn role(&self, name: RoleName) -> &Role {
        match name {
            RoleName::Root => &self.roles.root,
            RoleName::Channel => &self.roles.channel,
        }
    }

    /// The role's keys by keyid (validated on read, so unparsable keys do not occur).
    pub fn role_keys(&self, name: RoleName) -> BTreeMap<&str, VerifyingKey> {
        self.role(name)
            .keyids
            .iter()
            .filter_map(|id| {
                let entry = self.keys.get(id)?;
                let key = keys::public_from_hex(&entry.public, id).ok()?;
                Some((id.as_str(), key))
            })
            .collect()
    }
}

/// A keyid as an error message shows it: bounded (a trust root may name a 1 MB one).
fn echo(keyid: &str) -> String {
    crate::bounded::bounded(keyid, crate::bounded::MAX_ECHO)
}

impl Document for TrustRoot {
    const KIND: &'static str = "TrustRoot";
    const MAX_BYTES: usize = MAX_TRUST_BYTES;

    fn validate(&self) -> Result<(), ValidationError> {
        if self.version == 0 {
            return Err(ValidationError::ZeroTrustVersion);
        }
        for (keyid, entry) in &self.keys {
            let key = keys::public_from_hex(&entry.public, keyid).map_err(|e| {
                ValidationError::BadPublicKey {
                    keyid: echo(keyid),
                    reason: match e {
                        keys::KeyError::BadPublicKey { reason, .. } => reason,
                        other => other.to_string(),
                    },
                }
            })?;
            let expected = keys::keyid(&key);
            if *keyid != expected {
                return Err(ValidationError::KeyIdMismatch {
                    keyid: echo(keyid),
                    expected,
                });
            }
        }
        for name in [RoleName::Root, RoleName::Channel] {
            let role = self.role(name);
            let mut seen = HashSet::new();
            for keyid in &role.keyids {
                if !self.keys.contains_key(keyid) {
                    return Err(ValidationError::UnknownRoleKey {
                        role: name.as_str(),
                        keyid: echo(keyid),
                    });
                }
                if !seen.insert(keyid) {
                    return Err(ValidationError::DuplicateRoleKey {
                        role: name.as_str(),
                        keyid: echo(keyid),
                    });
                }
            }
            if role.threshold == 0 || role.threshold as usize > role.keyids.len() {
                return Err(ValidationError::BadThreshold {
                    role: name.as_str(),
                    threshold: role.threshold,
                    keys: role.keyids.len(),
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
    use ed25519_dalek::SigningKey;

    fn key(n: u8) -> VerifyingKey {
        SigningKey::from_bytes(&[n; 32]).verifying_key()
    }

    fn root() -> TrustRoot {
        TrustRoot::new(
            1,
            "2027-01-01T00:00:00Z".parse().unwrap(),
            (&[key(1), key(2)], 2),
            (&[key(3)], 1),
        )
    }

    fn invalid(t: &TrustRoot) -> ValidationError {
        match read_json::<TrustRoot>(&to_json_pretty(t).unwrap(), "trust.json") {
            Err(FormatError::Invalid { error, .. }) => error,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn roundtrip_and_role_keys() {
        let t = root();
        let back: TrustRoot = read_json(&to_json_pretty(&t).unwrap(), "trust.json").unwrap();
        assert_eq!(back, t);
        assert_eq!(back.role_keys(RoleName::Root).len(), 2);
        assert_eq!(back.role_keys(RoleName::Channel).len(), 1);
    }

    #[test]
    fn rejects_structural_mistakes() {
        let mut t = root();
        t.roles.root.threshold = 0;
        assert!(matches!(
            invalid(&t),
            ValidationError::BadThreshold { role: "root", .. }
        ));
        let mut t = root();
        t.roles.channel.threshold = 2;
        assert!(matches!(
            invalid(&t),
            ValidationError::BadThreshold {
                role: "channel",
                threshold: 2,
                keys: 1
            }
        ));
        let mut t = root();
        t.roles.channel.keyids.push("ff".repeat(32));
        assert!(matches!(
            invalid(&t),
            ValidationError::UnknownRoleKey {
                role: "channel",
                ..
            }
        ));
        let mut t = root();
        let first = t.roles.root.keyids[0].clone();
        t.roles.root.keyids.push(first);
        assert!(matches!(
            invalid(&t),
            ValidationError::DuplicateRoleKey { .. }
        ));
        let mut t = root();
        let (id, entry) = t.keys.pop_first().unwrap();
        let wrong = "00".repeat(32);
        t.keys.insert(wrong.clone(), entry);
        for r in [&mut t.roles.root.keyids, &mut t.roles.channel.keyids] {
            r.iter_mut()
                .filter(|k| **k == id)
                .for_each(|k| *k = wrong.clone());
        }
        assert!(
            matches!(invalid(&t), ValidationError::KeyIdMismatch { keyid, .. } if keyid == wrong)
        );
        let mut t = root();
        t.version = 0;
        assert!(matches!(invalid(&t), ValidationError::ZeroTrustVersion));
    }
}
