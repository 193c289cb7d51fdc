//! Fleet rollout safety, the pure part: maintenance windows and freezes per
//! subscription, staged waves per channel, named rings, and the one gate that decides
//! whether a cluster may *start* a change now.
//!
//! No I/O and no clock reads: `now` is always an argument, so the agent and the fleet
//! simulation (`cargo xtask fleet-sim`) drive the same code over real or simulated time.
//! Time zones come from jiff's bundled copy of the IANA database, so a machine without
//! `/usr/share/zoneinfo` (the agent's image) reads `Europe/Berlin` the same way.
//!
//! - [`Maintenance`], [`Window`], [`Exclusion`]: when a subscription allows changes to
//!   start; [`next_opening`] answers "open now, until when?" or "closed, opens when?".
//! - [`Rollout`], [`Wave`], [`Ring`]: the maintainers' staged waves; [`fleet_position`]
//!   places a cluster in the fleet, [`wave_of`] picks its wave, [`Rollout::opens`] says when.
//! - [`gate`]: all of it together for one release entry: [`Gate::Go`] or
//!   [`Gate::Wait`] with a [`WaitReason`] whose `Display` is written for people.
//!
//! What the gate holds is only the *start* of an install or upgrade. Checking, verifying,
//! repairs of stuck releases and rollbacks are never held (see docs/rollouts.md).

mod gate;
mod wave;
mod window;

use std::collections::BTreeSet;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::duration::Duration;
pub use crate::format::Timestamp;
pub use gate::{Gate, GateInput, WaitKind, WaitReason, gate};
pub use wave::{POSITIONS, fleet_position, wave_of};
pub use window::{ClosedWhy, WindowVerdict, next_opening};

/// Most recurring windows a subscription lists.
pub const MAX_WINDOWS: usize = 32;
/// Most dated exclusions a subscription lists.
pub const MAX_EXCLUSIONS: usize = 100;
/// Longest exclusion reason, in characters.
pub const MAX_REASON: usize = 200;
/// Longest window: a whole week (a window is weekly; a longer one would overlap itself).
pub const MAX_WINDOW: Duration = Duration::from_days(7);
/// Most waves a rollout has.
pub const MAX_WAVES: usize = 10;
/// Latest a wave may open after the rollout starts: 90 days.
pub const MAX_WAVE_AFTER: Duration = Duration::from_days(90);
/// How far ahead [`next_opening`] looks for a window that fits: 400 days, beyond the
/// longest sensible freeze and the index's own 366-day validity.
pub const HORIZON: Duration = Duration::from_days(400);

/// When a subscription lets the agent start changes (the `maintenance` field of a
/// `ChannelSubscription`). No windows means "at any time, except the exclusions".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Maintenance {
    /// Recurring weekly windows; changes start only inside one (none: at any time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
    /// Dated freezes: no change starts between `from` and `until`, windows or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusions: Vec<Exclusion>,
    /// Release entries the maintainers mark `urgency: security` start outside the
    /// windows (never inside an exclusion).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_security_updates: bool,
}

/// A recurring window: on each of `days`, from `start` local time in `timeZone`, for
/// `duration` of elapsed time (a window may cross midnight and the end of the week).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Window {
    /// The days the window starts on.
    pub days: Vec<Weekday>,
    /// Local start time, `HH:MM` (24-hour, two digits each). A start that a DST change
    /// skips begins right after the gap; one that happens twice begins at the first.
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub start: String,
    /// How long it stays open (elapsed time: a DST change does not stretch it).
    pub duration: Duration,
    /// An IANA time zone, e.g. `Europe/Berlin` or `UTC`.
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,
}

/// A dated freeze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exclusion {
    /// First second of the freeze (RFC 3339, UTC).
    pub from: Timestamp,
    /// End of the freeze (exclusive).
    pub until: Timestamp,
    /// Why, shown to people while it holds a change.
    #[schemars(length(min = 1, max = 200))]
    pub reason: String,
}

/// A day of the week.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Weekday {
    /// Monday
    Mon,
    /// Tuesday
    Tue,
    /// Wednesday
    Wed,
    /// Thursday
    Thu,
    /// Friday
    Fri,
    /// Saturday
    Sat,
    /// Sunday
    Sun,
}

/// The maintainers' staged rollout of a channel (`rollout` in the spec, carried in the
/// signed index).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rollout {
    /// Cumulative waves, e.g. 5 % after 0h, 25 % after 24h, 100 % after 72h (none: the
    /// whole fleet at once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Wave>,
    /// Paused: no cluster starts a change it has not started yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// One wave: the first `percent` of the fleet may start `after` the rollout started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Wave {
    /// Cumulative share of the fleet, 1 to 100, increasing; the last wave is 100.
    #[schemars(range(min = 1, max = 100))]
    pub percent: u8,
    /// When the wave opens, counted from the release entry's rollout start.
    pub after: Duration,
}

/// Where an administrator puts a cluster in the rollout (the subscription's `ring`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Ring {
    /// The first wave, whatever the hash says.
    Canary,
    /// The second wave (the first when there is only one).
    Early,
    /// The wave the cluster's [`fleet_position`] falls in.
    #[default]
    Default,
    /// The last wave.
    Late,
}

/// How urgent the maintainers mark a release entry (`urgency` in the spec and index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Urgency {
    /// A security fix: may start outside the maintenance windows of subscriptions that
    /// set `allowSecurityUpdates` (never inside an exclusion, never before its wave).
    Security,
}

/// Why a maintenance or rollout setting was refused. Each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    /// More windows than [`MAX_WINDOWS`].
    #[error("maintenance.windows: {count} windows, more than the {MAX_WINDOWS} allowed")]
    TooManyWindows {
        /// How many.
        count: usize,
    },
    /// A window with no days.
    #[error("maintenance.windows[{window}].days is empty: name at least one day, e.g. [Sat, Sun]")]
    NoDays {
        /// Position in the list.
        window: usize,
    },
    /// A window that lists a day twice.
    #[error("maintenance.windows[{window}].days lists {day} more than once")]
    DuplicateDay {
        /// Position in the list.
        window: usize,
        /// The repeated day.
        day: Weekday,
    },
    /// A start that is not `HH:MM` within a day.
    #[error(
        "maintenance.windows[{window}].start `{value}` is not a time of day: write HH:MM from 00:00 to 23:59"
    )]
    BadStart {
        /// Position in the list.
        window: usize,
        /// The offending value (cut to 200 characters).
        value: String,
    },
    /// A window of 0s or longer than [`MAX_WINDOW`].
    #[error(
        "maintenance.windows[{window}].duration {duration} is out of range: more than 0s, at most 7d"
    )]
    BadDuration {
        /// Position in the list.
        window: usize,
        /// The offending duration.
        duration: Duration,
    },
    /// A time zone that the IANA database does not know.
    #[error(
        "maintenance.windows[{window}].timeZone `{zone}` is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)"
    )]
    BadTimeZone {
        /// Position in the list.
        window: usize,
        /// The offending name (cut to 200 characters).
        zone: String,
    },
    /// More exclusions than [`MAX_EXCLUSIONS`].
    #[error("maintenance.exclusions: {count} exclusions, more than the {MAX_EXCLUSIONS} allowed")]
    TooManyExclusions {
        /// How many.
        count: usize,
    },
    /// An exclusion that ends before (or when) it starts.
    #[error("maintenance.exclusions[{exclusion}]: until ({until}) is not after from ({from})")]
    ExclusionOrder {
        /// Position in the list.
        exclusion: usize,
        /// `from`.
        from: Timestamp,
        /// `until`.
        until: Timestamp,
    },
    /// An exclusion whose reason is empty or too long.
    #[error(
        "maintenance.exclusions[{exclusion}].reason must say why in 1 to {MAX_REASON} characters (it has {chars})"
    )]
    BadReason {
        /// Position in the list.
        exclusion: usize,
        /// Its length in characters.
        chars: usize,
    },
    /// More waves than [`MAX_WAVES`].
    #[error("rollout.waves: {count} waves, more than the {MAX_WAVES} allowed")]
    TooManyWaves {
        /// How many.
        count: usize,
    },
    /// A wave percent of 0 or above 100.
    #[error("rollout.waves[{wave}].percent {percent} is out of range: 1 to 100")]
    WavePercent {
        /// Position in the list.
        wave: usize,
        /// The offending value.
        percent: u8,
    },
    /// Waves whose percents do not increase (a duplicate or overlapping wave).
    #[error(
        "rollout.waves[{wave}].percent {percent} is not above the wave before ({before}): percents are cumulative and increase"
    )]
    WavesNotIncreasing {
        /// Position in the list.
        wave: usize,
        /// Its percent.
        percent: u8,
        /// The percent of the wave before.
        before: u8,
    },
    /// Waves whose `after` does not increase.
    #[error(
        "rollout.waves[{wave}].after {after} is not later than the wave before ({before}): each wave opens after the one before"
    )]
    WavesNotLater {
        /// Position in the list.
        wave: usize,
        /// Its `after`.
        after: Duration,
        /// The `after` of the wave before.
        before: Duration,
    },
    /// A wave that opens later than [`MAX_WAVE_AFTER`].
    #[error("rollout.waves[{wave}].after {after} is later than the 90d allowed")]
    WaveTooLate {
        /// Position in the list.
        wave: usize,
        /// Its `after`.
        after: Duration,
    },
    /// Waves that never reach the whole fleet.
    #[error("rollout.waves: the last wave is {percent} %, not 100: every cluster must get a wave")]
    LastWaveNot100 {
        /// The last wave's percent.
        percent: u8,
    },
}

impl Maintenance {
    /// The structural checks: counts, days, `HH:MM`, durations, IANA zones, exclusions.
    pub fn validate(&self) -> Result<(), RolloutError> {
        if self.windows.len() > MAX_WINDOWS {
            return Err(RolloutError::TooManyWindows {
                count: self.windows.len(),
            });
        }
        for (i, w) in self.windows.iter().enumerate() {
            w.validate(i)?;
        }
        if self.exclusions.len() > MAX_EXCLUSIONS {
            return Err(RolloutError::TooManyExclusions {
                count: self.exclusions.len(),
            });
        }
        for (i, e) in self.exclusions.iter().enumerate() {
            if e.until <= e.from {
                return Err(RolloutError::ExclusionOrder {
                    exclusion: i,
                    from: e.from,
                    until: e.until,
                });
            }
            let chars = e.reason.chars().count();
            if e.reason.trim().is_empty() || chars > MAX_REASON {
                return Err(RolloutError::BadReason {
                    exclusion: i,
                    chars,
                });
            }
        }
        Ok(())
    }

    /// Whether the windows hold a release of this urgency (security updates may pass
    /// when the subscription allows them).
    pub fn windows_apply(&self, urgency: Option<Urgency>) -> bool {
        !(self.allow_security_updates && urgency == Some(Urgency::Security))
    }
}

impl Window {
    fn validate(&self, i: usize) -> Result<(), RolloutError> {
        if self.days.is_empty() {
            return Err(RolloutError::NoDays { window: i });
        }
        let mut seen = BTreeSet::new();
        for d in &self.days {
            if !seen.insert(*d) {
                return Err(RolloutError::DuplicateDay { window: i, day: *d });
            }
        }
        self.start_time(i)?;
        if self.duration.as_secs() == 0 || self.duration > MAX_WINDOW {
            return Err(RolloutError::BadDuration {
                window: i,
                duration: self.duration,
            });
        }
        window::zone(&self.time_zone).ok_or_else(|| RolloutError::BadTimeZone {
            window: i,
            zone: crate::bounded::bounded(&self.time_zone, 200),
        })?;
        Ok(())
    }

    /// `start` as (hour, minute); `i` names the window in the error.
    pub fn start_time(&self, i: usize) -> Result<(i8, i8), RolloutError> {
        parse_hh_mm(&self.start).ok_or_else(|| RolloutError::BadStart {
            window: i,
            value: crate::bounded::bounded(&self.start, 200),
        })
    }
}

/// `HH:MM`, exactly two digits each, 00:00 to 23:59.
fn parse_hh_mm(text: &str) -> Option<(i8, i8)> {
    let b = text.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
        return None;
    }
    let h = (b[0] - b'0') * 10 + (b[1] - b'0');
    let m = (b[3] - b'0') * 10 + (b[4] - b'0');
    (h < 24 && m < 60).then_some((h as i8, m as i8))
}

impl Rollout {
    /// The structural checks: percents 1..=100 increasing to 100, `after` increasing.
    pub fn validate(&self) -> Result<(), RolloutError> {
        if self.waves.len() > MAX_WAVES {
            return Err(RolloutError::TooManyWaves {
                count: self.waves.len(),
            });
        }
        for (i, w) in self.waves.iter().enumerate() {
            if w.percent == 0 || w.percent > 100 {
                return Err(RolloutError::WavePercent {
                    wave: i,
                    percent: w.percent,
                });
            }
            if w.after > MAX_WAVE_AFTER {
                return Err(RolloutError::WaveTooLate {
                    wave: i,
                    after: w.after,
                });
            }
            if let Some(before) = i.checked_sub(1).and_then(|j| self.waves.get(j)) {
                if w.percent <= before.percent {
                    return Err(RolloutError::WavesNotIncreasing {
                        wave: i,
                        percent: w.percent,
                        before: before.percent,
                    });
                }
                if w.after <= before.after {
                    return Err(RolloutError::WavesNotLater {
                        wave: i,
                        after: w.after,
                        before: before.after,
                    });
                }
            }
        }
        match self.waves.last() {
            Some(last) if last.percent != 100 => Err(RolloutError::LastWaveNot100 {
                percent: last.percent,
            }),
            _ => Ok(()),
        }
    }

    /// When wave `wave` opens for a release entry whose rollout started at `start`
    /// (`start` itself with no waves; `None` only past the year 9999).
    pub fn opens(&self, wave: usize, start: Timestamp) -> Option<Timestamp> {
        match self.waves.get(wave) {
            Some(w) => start.checked_add(w.after),
            None => Some(start),
        }
    }

    /// How many waves there are (at least one: no waves is one wave of 100 % at once).
    pub fn wave_count(&self) -> usize {
        self.waves.len().max(1)
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Weekday::Mon => "Mon",
            Weekday::Tue => "Tue",
            Weekday::Wed => "Wed",
            Weekday::Thu => "Thu",
            Weekday::Fri => "Fri",
            Weekday::Sat => "Sat",
            Weekday::Sun => "Sun",
        })
    }
}

impl Ring {
    /// The wire name (`canary`, `early`, `default`, `late`).
    pub fn as_str(self) -> &'static str {
        match self {
            Ring::Canary => "canary",
            Ring::Early => "early",
            Ring::Default => "default",
            Ring::Late => "late",
        }
    }
}

impl fmt::Display for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;
