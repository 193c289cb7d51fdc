//! The simulated fleet: clusters drawn from a seeded generator, each with a
//! `kube-system` UID, a time zone, a maintenance window (or none), a ring, a
//! check interval, how long its upgrades take and how likely they fail.
//!
//! The spread below is an assumption written down, not a measurement: most
//! clusters where most Kubernetes clusters run (North America, Europe), some
//! in Asia, South America and Oceania; a third with no window, the rest mostly
//! nightly or at the weekend.

use coxswain::rollout::{Duration, Exclusion, Maintenance, Ring, Weekday, Window};
use rand_core::{Rng as _, SeedableRng as _};
use rand_pcg::Pcg64;

use super::sim::START_UNIX;

/// A weighted choice: weight in parts of 1,000.
type Weighted<T> = &'static [(u32, T)];

/// Where the clusters are (IANA zone, parts of 1,000).
const ZONES: Weighted<&str> = &[
    (170, "America/New_York"),
    (70, "America/Chicago"),
    (110, "America/Los_Angeles"),
    (50, "America/Sao_Paulo"),
    (100, "Europe/London"),
    (150, "Europe/Berlin"),
    (60, "Europe/Paris"),
    (70, "Asia/Kolkata"),
    (50, "Asia/Singapore"),
    (70, "Asia/Tokyo"),
    (40, "Australia/Sydney"),
    (60, "UTC"),
];

/// The kinds of maintenance window, in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// No window: upgrades start whenever the rollout lets them.
    None,
    /// Every night, four hours from `start_hour`:00.
    Nightly { start_hour: u8 },
    /// Saturday and Sunday, 08:00 for ten hours.
    Weekend,
    /// Tuesday to Thursday, 10:00 for six hours (a team that watches its upgrades).
    OfficeHours,
}

const WINDOWS: Weighted<WindowKind> = &[
    (330, WindowKind::None),
    (100, WindowKind::Nightly { start_hour: 0 }),
    (100, WindowKind::Nightly { start_hour: 1 }),
    (120, WindowKind::Nightly { start_hour: 2 }),
    (80, WindowKind::Nightly { start_hour: 3 }),
    (190, WindowKind::Weekend),
    (80, WindowKind::OfficeHours),
];

/// The ring an administrator put a cluster in (`Default`: by its hash).
const RINGS: Weighted<Ring> = &[
    (10, Ring::Canary),
    (40, Ring::Early),
    (900, Ring::Default),
    (50, Ring::Late),
];

/// Check intervals in seconds: most keep the agent's default of 5 minutes.
const INTERVALS: Weighted<u64> = &[(700, 300), (200, 900), (100, 3600)];

/// Per-attempt probability that an upgrade of a good release fails its health
/// check here (a busy node, a slow image pull): most clusters are reliable.
const FAIL_PROBABILITY: Weighted<f64> = &[(850, 0.005), (120, 0.03), (30, 0.2)];

/// Share of clusters on which the bad release fails its health check.
pub const BAD_FAILS_SHARE: f64 = 0.9;

/// Share of clusters with a dated freeze (an end-of-year exclusion).
const FREEZE_SHARE: f64 = 0.05;

/// One simulated cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The `kube-system` namespace UID (a version-4 UUID), the cluster's identity.
    pub uid: String,
    /// Its IANA time zone.
    pub zone: &'static str,
    /// Its maintenance window.
    pub window: WindowKind,
    /// Whether it has a dated freeze ([`FREEZE`]).
    pub freeze: bool,
    /// Its ring.
    pub ring: Ring,
    /// Its check interval in seconds (the agent adds up to a tenth of jitter).
    pub interval: u64,
    /// Seconds an upgrade and its health check take when they succeed.
    pub upgrade_secs: u64,
    /// Probability that an upgrade of a good release fails here.
    pub fail_probability: f64,
    /// Whether the bad release fails its health check here.
    pub bad_fails: bool,
    /// Seed of the cluster's own random stream (jitter, failures), so that a
    /// run with waves and one without see the same clusters behave alike.
    pub stream: u64,
}

impl Cluster {
    /// The subscription's `maintenance` settings for this cluster (`None`: no window
    /// and no freeze, so nothing holds its upgrades but the rollout).
    pub fn maintenance(&self) -> Option<Maintenance> {
        use Weekday::{Fri, Mon, Sat, Sun, Thu, Tue, Wed};
        let window = |days: &[Weekday], start: &str, hours: u64| Window {
            days: days.to_vec(),
            start: start.to_owned(),
            duration: Duration::from_secs(hours * 3600),
            time_zone: self.zone.to_owned(),
        };
        let windows = match self.window {
            WindowKind::None => Vec::new(),
            WindowKind::Nightly { start_hour } => vec![window(
                &[Mon, Tue, Wed, Thu, Fri, Sat, Sun],
                &format!("{start_hour:02}:00"),
                4,
            )],
            WindowKind::Weekend => vec![window(&[Sat, Sun], "08:00", 10)],
            WindowKind::OfficeHours => vec![window(&[Tue, Wed, Thu], "10:00", 6)],
        };
        let exclusions = if self.freeze {
            FREEZE
                .iter()
                .filter_map(|(from, until)| {
                    Some(Exclusion {
                        from: coxswain::format::Timestamp::from_unix(START_UNIX + from)?,
                        until: coxswain::format::Timestamp::from_unix(START_UNIX + until)?,
                        reason: "customer event: no changes".to_owned(),
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        (!windows.is_empty() || !exclusions.is_empty()).then_some(Maintenance {
            windows,
            exclusions,
            allow_security_updates: false,
        })
    }
}

/// The freeze of the clusters that have one: from Wednesday 00:00 UTC to Friday 00:00
/// UTC of the first week (seconds after the start).
const FREEZE: &[(i64, i64)] = &[(2 * 86_400, 4 * 86_400)];

/// A uniform number in `[0, 1)` from 53 random bits.
pub fn unit(rng: &mut Pcg64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn pick<T: Copy>(rng: &mut Pcg64, table: Weighted<T>) -> T {
    let total: u32 = table.iter().map(|(w, _)| w).sum();
    let mut roll = (rng.next_u64() % u64::from(total)) as u32;
    for (weight, value) in table {
        if roll < *weight {
            return *value;
        }
        roll -= weight;
    }
    // The roll is below the total, so the loop returned; the last entry keeps this total.
    table[table.len() - 1].1
}

fn uuid_v4(rng: &mut Pcg64) -> String {
    let hi = rng.next_u64();
    let lo = rng.next_u64();
    let hi = (hi & !0xf000) | 0x4000; // version 4
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// `count` clusters drawn from `seed`; the same seed gives the same fleet.
pub fn generate(count: usize, seed: u64) -> Vec<Cluster> {
    let mut rng = Pcg64::seed_from_u64(seed);
    (0..count)
        .map(|_| Cluster {
            uid: uuid_v4(&mut rng),
            zone: pick(&mut rng, ZONES),
            window: pick(&mut rng, WINDOWS),
            freeze: unit(&mut rng) < FREEZE_SHARE,
            ring: pick(&mut rng, RINGS),
            interval: pick(&mut rng, INTERVALS),
            upgrade_secs: 120 + rng.next_u64() % 480,
            fail_probability: pick(&mut rng, FAIL_PROBABILITY),
            bad_fails: unit(&mut rng) < BAD_FAILS_SHARE,
            stream: rng.next_u64(),
        })
        .collect()
}

/// One line on the fleet: zones, windows, freezes, rings.
pub fn summary(fleet: &[Cluster]) -> String {
    let count = |f: &dyn Fn(&Cluster) -> bool| fleet.iter().filter(|c| f(c)).count();
    let mut zones: Vec<&str> = fleet.iter().map(|c| c.zone).collect();
    zones.sort_unstable();
    zones.dedup();
    format!(
        "fleet: {} time zones; windows: {} none, {} nightly, {} weekend, {} office hours; {} with a freeze; rings: {} canary, {} early, {} late, the rest by hash",
        zones.len(),
        count(&|c| c.window == WindowKind::None),
        count(&|c| matches!(c.window, WindowKind::Nightly { .. })),
        count(&|c| c.window == WindowKind::Weekend),
        count(&|c| c.window == WindowKind::OfficeHours),
        count(&|c| c.freeze),
        count(&|c| c.ring == Ring::Canary),
        count(&|c| c.ring == Ring::Early),
        count(&|c| c.ring == Ring::Late),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_fleet_other_seed_other_fleet() {
        let a = generate(50, 7);
        let b = generate(50, 7);
        let c = generate(50, 8);
        let uids = |f: &[Cluster]| f.iter().map(|c| c.uid.clone()).collect::<Vec<_>>();
        assert_eq!(uids(&a), uids(&b));
        assert_ne!(uids(&a), uids(&c));
    }

    #[test]
    fn uids_are_version_4_uuids() {
        for c in generate(20, 1) {
            let parts: Vec<&str> = c.uid.split('-').collect();
            let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{}", c.uid);
            assert!(parts[2].starts_with('4'), "{}", c.uid);
            assert!(
                matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "{}",
                c.uid
            );
        }
    }

    #[test]
    fn every_clusters_maintenance_passes_the_subscriptions_validation() {
        let fleet = generate(500, 2);
        let with = fleet.iter().filter_map(Cluster::maintenance).count();
        assert!(
            (300..370).contains(&with),
            "{with} of 500 have maintenance settings"
        );
        for c in &fleet {
            if let Some(m) = c.maintenance() {
                m.validate().unwrap_or_else(|e| panic!("{}: {e}", c.uid));
            }
        }
    }

    #[test]
    fn the_spread_follows_the_weights() {
        let fleet = generate(4000, 3);
        let share = |f: &dyn Fn(&Cluster) -> bool| {
            fleet.iter().filter(|c| f(c)).count() as f64 / fleet.len() as f64
        };
        let none = share(&|c| c.window == WindowKind::None);
        let weekend = share(&|c| c.window == WindowKind::Weekend);
        let bad = share(&|c| c.bad_fails);
        let five_minutes = share(&|c| c.interval == 300);
        assert!((0.30..0.36).contains(&none), "{none}");
        assert!((0.17..0.21).contains(&weekend), "{weekend}");
        assert!((0.88..0.92).contains(&bad), "{bad}");
        assert!((0.67..0.73).contains(&five_minutes), "{five_minutes}");
    }
}
