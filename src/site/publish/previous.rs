//! Carrying older entries forward: which `previous` entries a release gets in the new
//! index, and how the release changed since the prior one. Pure logic, no I/O.

use std::fmt;

use crate::format::{Approval, ChartVersion, IndexRelease, PreviousRelease, Timestamp};

/// How a release differs from the same release in the prior index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Not in the prior index (or there was no prior index).
    New,
    /// Installed into another namespace than before: a different Helm release, so its
    /// older entries (for the old namespace) are not carried over.
    Moved {
        /// The namespace it had.
        from: String,
    },
    /// Another chart archive (usually another chart version).
    Chart {
        /// The chart version it had.
        from: String,
    },
    /// Same chart, other values.
    Values,
    /// Same chart and values; `dependsOn`, `health` or `upgradeFrom` changed.
    Settings,
    /// Identical to the prior entry.
    Unchanged,
}

impl Change {
    /// Whether anything about the release changed.
    pub fn is_change(&self) -> bool {
        *self != Change::Unchanged
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::New => f.write_str("new"),
            Change::Moved { from } => write!(f, "moved from namespace {from}"),
            Change::Chart { from } => write!(f, "changed (chart, was {from})"),
            Change::Values => f.write_str("changed (values)"),
            Change::Settings => f.write_str("changed (settings)"),
            Change::Unchanged => f.write_str("unchanged"),
        }
    }
}

/// Whether two entries install the same thing: the same chart bytes with the same
/// values. Only such a difference is worth a pinnable `previous` entry; a change of
/// `dependsOn`, health or `upgradeFrom` alone installs nothing different.
fn same_install(a: &PreviousRelease, b: &PreviousRelease) -> bool {
    a.chart.digest == b.chart.digest && a.values == b.values
}

/// The `previous` list for `current` given the same release in the prior index, and
/// how the release changed.
///
/// When the chart or the values changed, the prior entry becomes the newest `previous`
/// entry, followed by the prior entry's own `previous` list. Otherwise the prior list
/// is kept as it was (an unchanged entry is not duplicated). In both cases entries that
/// install the same thing as `current` or as a newer entry are dropped (a channel that
/// goes back to an older version must not list it as both current and previous), and
/// the list is cut to `keep` entries, newest first.
pub fn carry_forward(
    prior: Option<&IndexRelease>,
    current: &IndexRelease,
    keep: usize,
) -> (Vec<PreviousRelease>, Change) {
    let Some(prior) = prior else {
        return (Vec::new(), Change::New);
    };
    if prior.namespace != current.namespace {
        return (
            Vec::new(),
            Change::Moved {
                from: prior.namespace.clone(),
            },
        );
    }
    let prior_entry = prior.to_previous();
    let current_entry = current.to_previous();
    let change = if prior.chart.digest != current.chart.digest {
        Change::Chart {
            from: prior.chart.version.clone(),
        }
    } else if prior.values != current.values {
        Change::Values
    } else if prior_entry != current_entry {
        Change::Settings
    } else {
        Change::Unchanged
    };
    let mut candidates: Vec<PreviousRelease> = Vec::with_capacity(prior.previous.len() + 1);
    if matches!(change, Change::Chart { .. } | Change::Values) {
        candidates.push(prior_entry);
    }
    candidates.extend(prior.previous.iter().cloned());
    let mut kept: Vec<PreviousRelease> = Vec::with_capacity(keep.min(candidates.len()));
    for entry in candidates {
        if kept.len() == keep {
            break;
        }
        let duplicate = same_install(&entry, &current_entry)
            || kept.iter().any(|newer| same_install(newer, &entry));
        if !duplicate {
            kept.push(entry);
        }
    }
    (kept, change)
}

/// When `current`'s rollout started, for its `since` in the new index: carried from
/// the same release in the prior index (published at `prior_published`) when that entry
/// installs the same thing (same namespace, chart bytes and values), so that a
/// re-publish (a refreshed expiry, another release changed, a pause) never restarts
/// the waves; `None` (the new index's `published`) for a new or changed entry.
pub fn rollout_since(
    prior: Option<&IndexRelease>,
    prior_published: Timestamp,
    current: &IndexRelease,
) -> Option<Timestamp> {
    prior
        .filter(|p| {
            p.namespace == current.namespace
                && same_install(&p.to_previous(), &current.to_previous())
        })
        .map(|p| p.rollout_start(prior_published))
}

/// Whether the new entry `current` requires an administrator's approval before a
/// cluster upgrades to it (`IndexRelease::requires_approval`), given the spec's
/// `approval` and the same release in the prior index.
///
/// `required` and `waived` decide. Unset: a step up to a higher compatibility line
/// ([`ChartVersion::compatibility_line`]: the major version, the minor one below 1.0)
/// against the prior entry requires it; and once required, it stays on every later
/// entry of the same line until the spec waives it. The last rule closes a gap: were
/// only the first entry of a new line marked, a cluster that missed it (2.4.0 while
/// the channel went 3.0.0 then 3.0.1) would cross the line unapproved. A new release,
/// one that moved namespace, a downgrade and a version that does not parse require
/// nothing.
pub fn requires_approval(
    asked: Option<Approval>,
    prior: Option<&IndexRelease>,
    current: &IndexRelease,
) -> bool {
    match asked {
        Some(Approval::Required) => return true,
        Some(Approval::Waived) => return false,
        None => {}
    }
    let Some(prior) = prior.filter(|p| p.namespace == current.namespace) else {
        return false;
    };
    let (Ok(was), Ok(now)) = (
        ChartVersion::parse(&prior.chart.version),
        ChartVersion::parse(&current.chart.version),
    ) else {
        return false;
    };
    match now.compatibility_line().cmp(&was.compatibility_line()) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => prior.requires_approval,
        std::cmp::Ordering::Less => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index::Health;
    use crate::format::{IndexChart, Sha256Digest};
    use serde_json::json;

    fn release(version: &str, tag: &str) -> IndexRelease {
        let digest = Sha256Digest::of(version.as_bytes());
        IndexRelease {
            name: "wiki".into(),
            namespace: "wiki".into(),
            chart: IndexChart {
                name: "wiki".into(),
                version: version.into(),
                url: format!("../../charts/{}", IndexChart::archive_name(&digest)),
                digest,
                size: 10,
            },
            values: json!({"image": {"tag": tag}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            depends_on: vec![],
            health: Health::default(),
            upgrade_from: None,
            crds: None,
            backup: None,
            requires_approval: false,
            previous: vec![],
            urgency: None,
            since: None,
        }
    }

    fn versions(list: &[PreviousRelease]) -> Vec<String> {
        list.iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.chart.version,
                    p.values["image"]["tag"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    fn approval(asked: Option<Approval>, prior: Option<&IndexRelease>, version: &str) -> bool {
        requires_approval(asked, prior, &release(version, "a"))
    }

    #[test]
    fn a_major_bump_requires_approval_and_a_minor_one_does_not() {
        let prior = release("2.4.0", "a");
        assert!(approval(None, Some(&prior), "3.0.0"));
        assert!(approval(None, Some(&prior), "4.1.0"));
        assert!(!approval(None, Some(&prior), "2.5.0"));
        assert!(!approval(None, Some(&prior), "2.4.1"));
        assert!(!approval(None, Some(&prior), "1.9.0"), "a downgrade");
        assert!(!approval(None, None, "3.0.0"), "a new release");
    }

    #[test]
    fn below_one_the_minor_version_is_the_line() {
        let prior = release("0.3.2", "a");
        assert!(approval(None, Some(&prior), "0.4.0"));
        assert!(approval(None, Some(&prior), "1.0.0"));
        assert!(!approval(None, Some(&prior), "0.3.9"));
    }

    #[test]
    fn the_spec_forces_or_waives() {
        let prior = release("2.4.0", "a");
        assert!(approval(Some(Approval::Required), Some(&prior), "2.4.1"));
        assert!(approval(Some(Approval::Required), None, "1.0.0"));
        assert!(!approval(Some(Approval::Waived), Some(&prior), "3.0.0"));
    }

    #[test]
    fn the_requirement_stays_on_the_new_line_until_waived() {
        let mut prior = release("3.0.0", "a");
        prior.requires_approval = true;
        assert!(approval(None, Some(&prior), "3.0.0"), "republished");
        assert!(
            approval(None, Some(&prior), "3.0.1"),
            "a later entry of the line"
        );
        assert!(!approval(Some(Approval::Waived), Some(&prior), "3.0.1"));
        let mut waived = release("3.0.1", "a");
        waived.requires_approval = false;
        assert!(!approval(None, Some(&waived), "3.0.2"));
        let mut moved = release("2.0.0", "a");
        moved.namespace = "elsewhere".into();
        assert!(
            !approval(None, Some(&moved), "3.0.0"),
            "another helm release"
        );
    }

    #[test]
    fn new_release_has_no_previous() {
        let (prev, change) = carry_forward(None, &release("1.0.0", "a"), 3);
        assert!(prev.is_empty());
        assert_eq!(change, Change::New);
    }

    #[test]
    fn unchanged_release_keeps_its_list_without_duplicating() {
        let mut prior = release("1.1.0", "a");
        prior.previous = vec![release("1.0.0", "a").to_previous()];
        let (prev, change) = carry_forward(Some(&prior), &release("1.1.0", "a"), 3);
        assert_eq!(change, Change::Unchanged);
        assert_eq!(versions(&prev), ["1.0.0/a"]);
    }

    #[test]
    fn a_bump_pushes_the_prior_entry_newest_first_up_to_keep() {
        let mut prior = release("1.2.0", "a");
        prior.previous = vec![
            release("1.1.0", "a").to_previous(),
            release("1.0.0", "a").to_previous(),
        ];
        let (prev, change) = carry_forward(Some(&prior), &release("1.3.0", "a"), 2);
        assert_eq!(
            change,
            Change::Chart {
                from: "1.2.0".into()
            }
        );
        assert_eq!(versions(&prev), ["1.2.0/a", "1.1.0/a"]);
        let (prev, _) = carry_forward(Some(&prior), &release("1.3.0", "a"), 0);
        assert!(prev.is_empty());
    }

    #[test]
    fn a_values_change_is_pinnable_too() {
        let prior = release("1.0.0", "a");
        let (prev, change) = carry_forward(Some(&prior), &release("1.0.0", "b"), 3);
        assert_eq!(change, Change::Values);
        assert_eq!(versions(&prev), ["1.0.0/a"]);
    }

    #[test]
    fn going_back_drops_the_entry_that_is_current_again() {
        let mut prior = release("1.1.0", "a");
        prior.previous = vec![release("1.0.0", "a").to_previous()];
        let (prev, change) = carry_forward(Some(&prior), &release("1.0.0", "a"), 3);
        assert_eq!(
            change,
            Change::Chart {
                from: "1.1.0".into()
            }
        );
        assert_eq!(versions(&prev), ["1.1.0/a"]);
    }

    #[test]
    fn settings_only_and_namespace_moves() {
        let prior = release("1.0.0", "a");
        let mut current = release("1.0.0", "a");
        current.upgrade_from = Some(">=0.9.0".into());
        let (prev, change) = carry_forward(Some(&prior), &current, 3);
        assert_eq!(change, Change::Settings);
        assert!(prev.is_empty());
        let mut moved = release("1.1.0", "a");
        moved.namespace = "other".into();
        let mut prior = release("1.0.0", "a");
        prior.previous = vec![release("0.9.0", "a").to_previous()];
        let (prev, change) = carry_forward(Some(&prior), &moved, 3);
        assert_eq!(
            change,
            Change::Moved {
                from: "wiki".into()
            }
        );
        assert!(prev.is_empty());
    }

    #[test]
    fn rollout_since_survives_republishing_and_restarts_on_a_change() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let first = t("2026-12-01T00:00:00Z");
        let prior = release("1.0.0", "a");
        // First publish: no prior entry, the index's published time counts.
        assert_eq!(rollout_since(None, first, &prior), None);
        // Re-published unchanged (or with other settings): the first time is carried.
        let mut same = release("1.0.0", "a");
        same.upgrade_from = Some(">=0.9.0".into());
        assert_eq!(rollout_since(Some(&prior), first, &same), Some(first));
        // ... and carried again from the carried value, whatever the prior's published.
        let mut carried = same.clone();
        carried.since = Some(first);
        assert_eq!(
            rollout_since(Some(&carried), t("2026-12-03T00:00:00Z"), &same),
            Some(first)
        );
        // Another chart, other values or another namespace: a new rollout.
        assert_eq!(
            rollout_since(Some(&carried), first, &release("1.1.0", "a")),
            None
        );
        assert_eq!(
            rollout_since(Some(&carried), first, &release("1.0.0", "b")),
            None
        );
        let mut moved = release("1.0.0", "a");
        moved.namespace = "other".into();
        assert_eq!(rollout_since(Some(&carried), first, &moved), None);
    }
}
