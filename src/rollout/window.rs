//! Maintenance windows and exclusions: is a start allowed now, and if not, when?

use std::fmt;
use std::sync::LazyLock;

use jiff::ToSpan;
use jiff::civil::Date;
use jiff::tz::{TimeZone, TimeZoneDatabase};

use super::{Duration, HORIZON, Maintenance, Timestamp, Weekday};

const DAY: i64 = 86_400;

/// jiff's bundled IANA database: the same on every machine, with or without
/// `/usr/share/zoneinfo` (jiff caches each zone once parsed).
static ZONES: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// The zone of an IANA name, or `None` when the bundled database does not know it.
pub(super) fn zone(name: &str) -> Option<TimeZone> {
    if name.is_empty() || name.len() > 64 || name.eq_ignore_ascii_case("Etc/Unknown") {
        return None;
    }
    ZONES.get(name).ok()
}

/// What the maintenance settings say about starting a change now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowVerdict {
    /// A change that takes the `needs` asked about may start now and end before `closes`
    /// (`None`: nothing closes within [`HORIZON`]).
    Open {
        /// When the open time that contains now ends.
        closes: Option<Timestamp>,
    },
    /// No change that long may start now.
    Closed {
        /// The first time one may (`None`: no window within [`HORIZON`] is long enough).
        opens: Option<Timestamp>,
        /// Why not now.
        why: ClosedWhy,
    },
}

/// Why a change may not start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosedWhy {
    /// Now is outside every window.
    Outside,
    /// An exclusion covers now.
    Excluded {
        /// The exclusion's reason.
        reason: String,
        /// When it ends.
        until: Timestamp,
    },
    /// Now is inside a window, but it closes (or an exclusion starts) before a change
    /// that takes `needs` could end.
    DoesNotFit {
        /// When the open time ends.
        closes: Timestamp,
        /// How long the change may take.
        needs: Duration,
    },
}

impl fmt::Display for ClosedWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClosedWhy::Outside => f.write_str("outside the maintenance windows"),
            ClosedWhy::Excluded { reason, until } => {
                write!(f, "maintenance exclusion until {until}: {reason}")
            }
            ClosedWhy::DoesNotFit { closes, needs } => write!(
                f,
                "the maintenance window closes at {closes}, too soon for an upgrade that may take {needs} (helm and health timeouts)"
            ),
        }
    }
}

impl WindowVerdict {
    /// Whether a change may start now.
    pub fn is_open(&self) -> bool {
        matches!(self, WindowVerdict::Open { .. })
    }
}

/// Whether a change that may take `needs` (helm timeout + health timeout) may start at
/// `now` under `m`, and if not, the first time it may. Assumes `m` passed
/// [`Maintenance::validate`] (a window with an unknown zone or a bad start is ignored).
///
/// Windows are united first (two windows that touch or overlap are one open time, so
/// a change may run from one into the next), then exclusions are cut out; a change
/// starts only where the rest of its open time is at least `needs` long.
pub fn next_opening(m: &Maintenance, now: Timestamp, needs: Duration) -> WindowVerdict {
    let now_s = now.datetime().unix_timestamp();
    let needs_s = i64::try_from(needs.as_secs()).unwrap_or(i64::MAX);
    let freezes = merged_exclusions(m);
    let windows: Vec<Parsed> = m.windows.iter().filter_map(Parsed::new).collect();
    // Most windows repeat within a week: look a week ahead first, then further.
    let max_days = i64::try_from(HORIZON.as_secs()).unwrap_or(i64::MAX) / DAY;
    let mut days = 9;
    loop {
        let days_now = days.min(max_days);
        let (open, complete_until) = if m.windows.is_empty() {
            (vec![(i64::MIN, i64::MAX)], i64::MAX)
        } else {
            (
                occurrences(&windows, now_s, days_now),
                now_s.saturating_add(days_now * DAY),
            )
        };
        let last_try = days_now >= max_days;
        match first_fit(&open, &freezes, now_s, needs_s) {
            Some((t, end)) if t <= complete_until && (end <= complete_until || last_try) => {
                let closes = if end > complete_until { None } else { ts(end) };
                return if t == now_s {
                    WindowVerdict::Open { closes }
                } else {
                    WindowVerdict::Closed {
                        opens: ts(t),
                        why: why_closed(m, &open, &freezes, now_s, needs),
                    }
                };
            }
            _ if last_try => {
                return WindowVerdict::Closed {
                    opens: None,
                    why: why_closed(m, &open, &freezes, now_s, needs),
                };
            }
            _ => days = days.saturating_mul(4),
        }
    }
}

/// A window with its zone looked up and its start parsed.
struct Parsed {
    zone: TimeZone,
    hour: i8,
    minute: i8,
    days: [bool; 7],
    secs: i64,
}

impl Parsed {
    fn new(w: &super::Window) -> Option<Self> {
        let (hour, minute) = w.start_time(0).ok()?;
        let mut days = [false; 7];
        for d in &w.days {
            days[*d as usize] = true;
        }
        Some(Self {
            zone: zone(&w.time_zone)?,
            hour,
            minute,
            days,
            secs: i64::try_from(w.duration.as_secs()).ok()?,
        })
    }
}

/// Every occurrence of the windows that starts between 8 days before `now` (the
/// longest window is 7 days) and `days` days after it, united into sorted, disjoint
/// `[start, end)` spans of Unix seconds.
fn occurrences(windows: &[Parsed], now: i64, days: i64) -> Vec<(i64, i64)> {
    let mut spans = Vec::new();
    let Ok(instant) = jiff::Timestamp::from_second(now) else {
        return spans;
    };
    for w in windows {
        let today = w.zone.to_datetime(instant).date();
        for k in -8..=days + 2 {
            let Ok(date) = today.checked_add(k.days()) else {
                continue;
            };
            if !w.days[weekday(date) as usize] {
                continue;
            }
            // A start a DST gap skips begins right after the gap; one a fold repeats
            // begins at its first occurrence ("compatible", as RFC 5545 and Temporal do).
            let local = date.at(w.hour, w.minute, 0, 0);
            let Ok(zoned) = w.zone.to_ambiguous_zoned(local).compatible() else {
                continue;
            };
            let start = zoned.timestamp().as_second();
            spans.push((start, start.saturating_add(w.secs)));
        }
    }
    unite(spans)
}

fn weekday(date: Date) -> Weekday {
    match date.weekday() {
        jiff::civil::Weekday::Monday => Weekday::Mon,
        jiff::civil::Weekday::Tuesday => Weekday::Tue,
        jiff::civil::Weekday::Wednesday => Weekday::Wed,
        jiff::civil::Weekday::Thursday => Weekday::Thu,
        jiff::civil::Weekday::Friday => Weekday::Fri,
        jiff::civil::Weekday::Saturday => Weekday::Sat,
        jiff::civil::Weekday::Sunday => Weekday::Sun,
    }
}

/// Sorted, disjoint spans; touching spans are one.
fn unite(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The exclusions as sorted, disjoint spans.
fn merged_exclusions(m: &Maintenance) -> Vec<(i64, i64)> {
    unite(
        m.exclusions
            .iter()
            .map(|e| {
                (
                    e.from.datetime().unix_timestamp(),
                    e.until.datetime().unix_timestamp(),
                )
            })
            .collect(),
    )
}

/// The open spans minus the freezes.
fn cut(open: &[(i64, i64)], freezes: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for &(mut s, e) in open {
        for &(fs, fe) in freezes {
            if fe <= s || fs >= e {
                continue;
            }
            if fs > s {
                out.push((s, fs));
            }
            s = s.max(fe);
            if s >= e {
                break;
            }
        }
        if s < e {
            out.push((s, e));
        }
    }
    out
}

/// The earliest start at or after `now` with `needs` seconds of open time after it,
/// and the end of that open time.
fn first_fit(
    open: &[(i64, i64)],
    freezes: &[(i64, i64)],
    now: i64,
    needs: i64,
) -> Option<(i64, i64)> {
    cut(open, freezes).into_iter().find_map(|(s, e)| {
        let t = s.max(now);
        (t < e && e.saturating_sub(t) >= needs).then_some((t, e))
    })
}

fn why_closed(
    m: &Maintenance,
    open: &[(i64, i64)],
    freezes: &[(i64, i64)],
    now: i64,
    needs: Duration,
) -> ClosedWhy {
    // Of the exclusions covering now, the one that lasts longest names the freeze.
    let covering = m
        .exclusions
        .iter()
        .filter(|e| {
            e.from.datetime().unix_timestamp() <= now && now < e.until.datetime().unix_timestamp()
        })
        .max_by_key(|e| e.until);
    if let Some(e) = covering {
        return ClosedWhy::Excluded {
            reason: e.reason.clone(),
            until: e.until,
        };
    }
    cut(open, freezes)
        .into_iter()
        .find(|&(s, e)| s <= now && now < e)
        .and_then(|(_, e)| ts(e))
        .map_or(ClosedWhy::Outside, |closes| ClosedWhy::DoesNotFit {
            closes,
            needs,
        })
}

fn ts(secs: i64) -> Option<Timestamp> {
    if secs == i64::MAX || secs == i64::MIN {
        return None;
    }
    Timestamp::from_unix(secs)
}
