//! The gate record: a CI's signed statement that one exact index of a channel was
//! applied to a test cluster and every release was healthy and passed `helm test`.
//! `coxswain gate` writes it; `coxswain promote --require-gate` checks it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiVersion, Document, Sha256Digest, Timestamp, ValidationError, check_dns_label};

/// Largest gate record accepted.
pub const MAX_GATE_BYTES: usize = 1 << 20;

/// The `kind` of a gate record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum GateRecordKind {
    /// `GateRecord`
    #[default]
    GateRecord,
}

/// `channels/<channel>/gate.json` (signed by `gate.json.sig`): one gate run's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GateRecord {
    /// Always `coxswain.dev/v1`.
    pub api_version: ApiVersion,
    /// Always `GateRecord`.
    pub kind: GateRecordKind,
    /// The channel gated.
    pub channel: String,
    /// The index's sequence.
    pub sequence: u64,
    /// The SHA-256 of the index's exact bytes.
    pub index: Sha256Digest,
    /// Whether every release was healthy at that sequence and passed `helm test`.
    pub passed: bool,
    /// When the gate finished.
    pub checked: Timestamp,
    /// Each release: name, chart version, verdict.
    pub releases: Vec<GateRelease>,
}

/// One release's verdict in a gate record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GateRelease {
    /// The release.
    pub name: String,
    /// The chart version the index offers.
    pub version: String,
    /// Healthy at the sequence and `helm test` passed.
    pub passed: bool,
}

impl Document for GateRecord {
    const KIND: &'static str = "GateRecord";
    const MAX_BYTES: usize = MAX_GATE_BYTES;

    fn validate(&self) -> Result<(), ValidationError> {
        check_dns_label("channel", &self.channel, super::MAX_LABEL)?;
        if self.sequence == 0 || self.sequence > super::MAX_SEQUENCE {
            return Err(ValidationError::SequenceOutOfRange(self.sequence));
        }
        Ok(())
    }
}
