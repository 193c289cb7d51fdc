//! The channel zone: what the maintainers sign and every reader checks.
//!
//! - [`format`](mod@format): the channel spec people write, the index and trust-root
//!   documents, and their signature envelopes (schemas are generated from
//!   these types);
//! - [`json`]: the strict reader for signed JSON (duplicate keys, depth,
//!   UTF-8), and [`yaml`]: the reader for what people write; [`values`]: YAML
//!   values to JSON, refusing what the conversion (or helm) would change;
//! - [`keys`]: ed25519 keys and key files;
//! - [`trust`]: trust roots and the walk from a pinned root to the newest;
//! - [`verify`]: signature thresholds, expiry, anti-rollback and the
//!   [`verify::VerifiedIndex`] that only verification constructs.
//!
//! Nothing here does I/O beyond reading the files it is given.

pub mod format;
pub mod json;
pub mod keys;
pub mod trust;
pub mod values;
pub mod verify;
pub mod yaml;
