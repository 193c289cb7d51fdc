//! The one decision: may this cluster start a change to this release entry now?

use std::fmt;

use super::{
    ClosedWhy, Duration, Maintenance, Ring, Rollout, Timestamp, Urgency, WindowVerdict,
    next_opening, wave_of,
};

/// Everything the gate looks at, for one release entry in one cluster.
#[derive(Debug, Clone, Copy)]
pub struct GateInput<'a> {
    /// The time of the decision.
    pub now: Timestamp,
    /// The channel's staged rollout (from the verified index), if any.
    pub rollout: Option<&'a Rollout>,
    /// When this entry's rollout started: its `since` in the index, else the index's
    /// `published` (waves count from here).
    pub rollout_start: Timestamp,
    /// The cluster's [`super::fleet_position`] in this channel.
    pub position: u32,
    /// The subscription's ring.
    pub ring: Ring,
    /// The subscription's maintenance settings, if any.
    pub maintenance: Option<&'a Maintenance>,
    /// The entry's urgency.
    pub urgency: Option<Urgency>,
    /// How long the change may take: helm's timeout plus the health timeout.
    pub needs: Duration,
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Start now.
    Go,
    /// Do not start yet.
    Wait(WaitReason),
}

/// Why a change waits, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitReason {
    /// What holds it.
    pub kind: WaitKind,
    /// The earliest time the gate may say [`Gate::Go`], as far as it can tell now
    /// (`None`: not foreseeable, e.g. a paused rollout). The agent wakes up then.
    pub until: Option<Timestamp>,
}

/// What holds a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitKind {
    /// The cluster's wave has not opened.
    Wave {
        /// The wave, 0-based.
        wave: usize,
        /// How many waves there are.
        of: usize,
        /// The wave's cumulative percent of the fleet (100 with no waves).
        percent: u8,
        /// When it opens.
        opens: Timestamp,
    },
    /// The maintainers paused the rollout.
    Paused,
    /// The subscription's maintenance windows or exclusions (the wave, if any, opened).
    Window(ClosedWhy),
}

impl WaitKind {
    /// A short stable label, for metrics and Event reasons: `wave`, `paused`, `window`,
    /// `excluded`, `doesNotFit`.
    pub fn label(&self) -> &'static str {
        match self {
            WaitKind::Wave { .. } => "wave",
            WaitKind::Paused => "paused",
            WaitKind::Window(ClosedWhy::Outside) => "window",
            WaitKind::Window(ClosedWhy::Excluded { .. }) => "excluded",
            WaitKind::Window(ClosedWhy::DoesNotFit { .. }) => "doesNotFit",
        }
    }
}

/// Decides whether a change may start now. In this order: a paused rollout holds
/// everything; then the cluster's wave must have opened; then the maintenance windows
/// (which `urgency: security` passes where the subscription allows it) and the
/// exclusions (which nothing passes) must leave room for `needs`.
pub fn gate(input: &GateInput<'_>) -> Gate {
    if let Some(r) = input.rollout {
        if r.paused {
            return Gate::Wait(WaitReason {
                kind: WaitKind::Paused,
                until: None,
            });
        }
        let wave = wave_of(r, input.position, input.ring);
        let opens = r.opens(wave, input.rollout_start);
        if opens.is_none_or(|t| t > input.now) {
            // Past the year 9999 a wave never opens; say so as "not foreseeable".
            let until = opens.and_then(|t| match maintenance_verdict(input, t) {
                Some(WindowVerdict::Closed { opens, .. }) => opens,
                _ => Some(t),
            });
            return Gate::Wait(WaitReason {
                kind: WaitKind::Wave {
                    wave,
                    of: r.wave_count(),
                    percent: r.waves.get(wave).map_or(100, |w| w.percent),
                    opens: opens.unwrap_or(input.now),
                },
                until,
            });
        }
    }
    match maintenance_verdict(input, input.now) {
        None | Some(WindowVerdict::Open { .. }) => Gate::Go,
        Some(WindowVerdict::Closed { opens, why }) => Gate::Wait(WaitReason {
            kind: WaitKind::Window(why),
            until: opens,
        }),
    }
}

/// The windows' verdict at `at`, or `None` when nothing holds this entry: no
/// maintenance settings, or a security entry the subscription lets through the windows
/// and no exclusion.
fn maintenance_verdict(input: &GateInput<'_>, at: Timestamp) -> Option<WindowVerdict> {
    let m = input.maintenance?;
    if m.windows_apply(input.urgency) {
        Some(next_opening(m, at, input.needs))
    } else {
        // Security updates pass the windows, never the exclusions.
        let freezes_only = Maintenance {
            windows: Vec::new(),
            exclusions: m.exclusions.clone(),
            allow_security_updates: false,
        };
        Some(next_opening(&freezes_only, at, input.needs))
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            WaitKind::Wave {
                wave,
                of,
                percent,
                opens,
            } => {
                write!(
                    f,
                    "waits for rollout wave {} of {of} ({percent} % of the fleet), which opens at {opens}",
                    wave + 1
                )?;
                match self.until {
                    Some(u) if u != *opens => {
                        write!(f, "; the maintenance windows then let it start at {u}")
                    }
                    _ => Ok(()),
                }
            }
            WaitKind::Paused => f.write_str(
                "the maintainers paused the rollout of this channel: nothing new starts until they resume it",
            ),
            WaitKind::Window(why) => {
                write!(f, "{why}; ")?;
                match self.until {
                    Some(t) => write!(f, "the next window that fits opens at {t}"),
                    None => f.write_str("no window in the next 400 days is long enough for it"),
                }
            }
        }
    }
}
