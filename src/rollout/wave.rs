//! A cluster's place in the fleet and its wave.

use sha2::{Digest, Sha256};

use super::{Ring, Rollout};

/// Positions run from 0 to `POSITIONS - 1`: basis points of the fleet.
pub const POSITIONS: u32 = 10_000;

/// A cluster's stable place in the fleet for one channel, in basis points
/// (`0..POSITIONS`): SHA-256 of the cluster's identity (the `kube-system` namespace
/// UID) and the channel name. The same cluster keeps its place for every sequence of a
/// channel (so the same clusters are the canaries each time) and gets an unrelated
/// place in another channel (so one cluster is not the canary of everything).
pub fn fleet_position(cluster_uid: &str, channel: &str) -> u32 {
    let mut h = Sha256::new();
    h.update(b"coxswain fleet position\0");
    h.update(cluster_uid.as_bytes());
    h.update([0]);
    h.update(channel.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // u64 mod 10,000: the bias is below 10^-15.
    (u64::from_be_bytes(first) % u64::from(POSITIONS)) as u32
}

/// The wave (0-based) a cluster at `position` in `ring` belongs to. A position falls in
/// the first wave whose cumulative percent covers it: with 5 / 25 / 100, positions 0 to
/// 499 are wave 0, 500 to 2,499 wave 1, the rest wave 2. A named ring overrides the
/// position: `canary` is the first wave, `early` the second (the first when there is
/// one), `late` the last. No waves: everyone is wave 0.
pub fn wave_of(rollout: &Rollout, position: u32, ring: Ring) -> usize {
    let last = rollout.wave_count() - 1;
    match ring {
        Ring::Canary => 0,
        Ring::Early => last.min(1),
        Ring::Late => last,
        Ring::Default => rollout
            .waves
            .iter()
            .position(|w| position < u32::from(w.percent) * (POSITIONS / 100))
            .unwrap_or(last),
    }
}
