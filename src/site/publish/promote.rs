//! `coxswain promote`: the next index of one channel (stable) made from the exact
//! entries of another (beta) on the same site — same chart archives (digest, size,
//! URL), values, `dependsOn`, health and `upgradeFrom`; nothing is repacked or
//! re-resolved, so what stable gets is byte for byte what beta was tested with.
//!
//! The source index is read back and its signature checked (by the signing keys, or
//! by a trust root's channel keys after a rotation) before anything is taken from it,
//! and it must have soaked for `min_soak` since it was published. The target channel
//! keeps its own sequence (+1) and gets its own expiry; its older entries are carried
//! forward as a publish does. Refused, with nothing written: a source younger than the
//! soak, a release the source does not have, a promotion that would move a release of
//! the target to an older chart version, or one that changes nothing.

use std::collections::HashMap;
use std::path::PathBuf;

use super::previous::{Change, carry_forward};
use super::{
    IndexReader, PublishError, ReleaseSummary, load_index, next_sequence, present_with_digest,
    write_derived_index,
};
use crate::duration::Duration;
use crate::format::index::ChannelIndexKind;
use crate::format::{
    ApiVersion, ChannelIndex, ChartVersion, IndexRelease, Timestamp, TrustRoot, read_json,
};
use crate::keys::SigningKey;
use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;

use crate::format::trust::RoleName;
use crate::format::{GateRecord, Sha256Digest, Signatures};
use crate::keys;
use crate::site::{self, DocKind, SitePath, SiteWriter};
use crate::site_verify::describe;
use crate::verify::check_threshold;

/// What a promotion needs.
#[derive(Debug, Clone)]
pub struct PromoteOptions {
    /// The site directory: read and written.
    pub site: PathBuf,
    /// The channel promoted from (`beta`).
    pub from: String,
    /// The channel promoted to (`stable`).
    pub to: String,
    /// The keys that sign the new index (at least one).
    pub keys: Vec<SigningKey>,
    /// Accept indexes signed by this root's channel keys instead of one of `keys`.
    pub trust: Option<TrustRoot>,
    /// How long the source index must have been published.
    pub min_soak: Duration,
    /// Only these releases (the others keep the target's entries); all when `None`.
    pub releases: Option<Vec<String>>,
    /// How long the new index stays valid.
    pub valid_for: Duration,
    /// How many older entries per release stay pinnable.
    pub keep_previous: usize,
    /// Now: the new index's `published`, and the soak's reference.
    pub now: Timestamp,
    /// Limits for reading the site.
    pub site_limits: site::Limits,
    /// Require a passing gate record for the source's exact index, signed by one of
    /// these keys (`channels/<from>/gate.json` and `gate.json.sig`); no check when empty.
    pub gate_keys: Vec<VerifyingKey>,
}

/// What a promotion did.
#[derive(Debug)]
pub struct PromoteReport {
    /// The source channel and the sequence taken.
    pub from: (String, u64),
    /// The target channel, its prior sequence and the new one.
    pub to: (String, Option<u64>, u64),
    /// Per release of the new index.
    pub releases: Vec<ReleaseSummary>,
    /// The new index's path.
    pub index_path: PathBuf,
}

fn refused(reason: String) -> PublishError {
    PublishError::Promote(reason)
}

/// Promotes; see the module documentation.
pub async fn promote(opts: &PromoteOptions) -> Result<PromoteReport, PublishError> {
    if opts.keys.is_empty() {
        return Err(PublishError::NoKeys);
    }
    if opts.from == opts.to {
        return Err(refused(format!("--from and --to are both `{}`", opts.from)));
    }
    let location = opts.site.display().to_string();
    let reader = IndexReader {
        keys: &opts.keys,
        trust: opts.trust.as_ref(),
        limits: &opts.site_limits,
    };
    let source = load_index(&reader, &location, &opts.from)
        .await?
        .ok_or_else(|| {
            refused(format!(
                "{location} has no index for channel `{}`",
                opts.from
            ))
        })?;
    if !opts.gate_keys.is_empty() {
        check_gate(opts, &source.site, source.index.sequence, &source.digest).await?;
    }
    let source = source.index;
    let target = load_index(&reader, &location, &opts.to)
        .await?
        .map(|p| p.index);

    // Soaked long enough?
    let age = opts.now.datetime() - source.published.datetime();
    let soak = time::Duration::seconds(i64::try_from(opts.min_soak.as_secs()).unwrap_or(i64::MAX));
    if age < soak {
        let left = soak - age;
        return Err(refused(format!(
            "{}#{} was published {} ago, at {}; --min-soak {} asks for {} more",
            opts.from,
            source.sequence,
            human(age),
            source.published,
            opts.min_soak,
            human(left)
        )));
    }

    let chosen: Vec<&IndexRelease> = match &opts.releases {
        None => source.releases.iter().collect(),
        Some(names) => {
            let mut chosen = Vec::new();
            for name in names {
                let found = source
                    .releases
                    .iter()
                    .find(|r| &r.name == name)
                    .ok_or_else(|| {
                        refused(format!(
                            "{}#{} has no release `{name}`",
                            opts.from, source.sequence
                        ))
                    })?;
                chosen.push(found);
            }
            chosen
        }
    };
    let target_by_name: HashMap<&str, &IndexRelease> = target
        .as_ref()
        .map(|t| t.releases.iter().map(|r| (r.name.as_str(), r)).collect())
        .unwrap_or_default();

    // Never an older chart than the target already has.
    let mut downgrades = Vec::new();
    for r in &chosen {
        if let Some(t) = target_by_name.get(r.name.as_str())
            && let (Ok(new), Ok(old)) = (
                ChartVersion::parse(&r.chart.version),
                ChartVersion::parse(&t.chart.version),
            )
            && new.cmp_precedence(&old) == std::cmp::Ordering::Less
        {
            downgrades.push(format!(
                "{} ({}#{} holds {}, newer than {}#{}'s {})",
                r.name,
                opts.to,
                target.as_ref().map_or(0, |t| t.sequence),
                t.chart.version,
                opts.from,
                source.sequence,
                r.chart.version
            ));
        }
    }
    if !downgrades.is_empty() {
        return Err(refused(format!(
            "{} already holds something newer: {}",
            opts.to,
            downgrades.join("; ")
        )));
    }

    // The new target: the chosen entries as they are in the source; with a subset, the
    // target's other releases stay as they were.
    let mut releases: Vec<IndexRelease> = Vec::new();
    let mut summaries = Vec::new();
    let mut any_change = false;
    let mut push = |entry: IndexRelease, change: Change| {
        summaries.push(ReleaseSummary {
            name: entry.name.clone(),
            namespace: entry.namespace.clone(),
            chart: entry.chart.name.clone(),
            version: entry.chart.version.clone(),
            digest: entry.chart.digest,
            change,
            previous: entry.previous.len(),
            requires_approval: entry.requires_approval,
        });
        releases.push(entry);
    };
    let chosen_names: Vec<&str> = chosen.iter().map(|r| r.name.as_str()).collect();
    for r in &chosen {
        let mut entry = (*r).clone();
        entry.previous = Vec::new();
        let in_target = target_by_name.get(r.name.as_str()).copied();
        let (previous, change) = carry_forward(in_target, &entry, opts.keep_previous);
        entry.previous = previous;
        // The waves of the target count from when the entry reached the target, not
        // the source.
        entry.since = target
            .as_ref()
            .and_then(|t| super::rollout_since(in_target, t.published, &entry));
        any_change |= change.is_change();
        push(entry, change);
    }
    if let Some(t) = &target {
        for r in &t.releases {
            if !chosen_names.contains(&r.name.as_str()) {
                if opts.releases.is_some() {
                    let mut kept = r.clone();
                    kept.since = Some(r.rollout_start(t.published));
                    push(kept, Change::Unchanged);
                } else {
                    // Promoting everything: the target becomes exactly the source's set.
                    any_change = true;
                }
            }
        }
    }
    if !any_change {
        return Err(refused(format!(
            "nothing to promote: {} already holds exactly what {}#{} offers{}",
            opts.to,
            opts.from,
            source.sequence,
            if opts.releases.is_some() {
                " for these releases"
            } else {
                ""
            }
        )));
    }

    // Every chart the new index names must be on the site with its digest.
    let writer = SiteWriter::new(&opts.site);
    let mut missing = Vec::new();
    for r in &releases {
        for chart in std::iter::once(&r.chart).chain(r.previous.iter().map(|p| &p.chart)) {
            if !present_with_digest(&writer, &chart.digest, chart.size) {
                missing.push(format!("{} {} ({})", r.name, chart.version, chart.digest));
            }
        }
    }
    if !missing.is_empty() {
        return Err(refused(format!(
            "charts missing from the site or changed: {}",
            crate::bounded::bounded_list(&missing, 10)
        )));
    }

    let prior_sequence = target.as_ref().map(|t| t.sequence);
    let (sequence, expires) = next_sequence(prior_sequence, opts.now, opts.valid_for)?;
    let index = ChannelIndex {
        api_version: ApiVersion::V1,
        kind: ChannelIndexKind::ChannelIndex,
        channel: opts.to.clone(),
        sequence,
        published: opts.now,
        expires,
        releases,
        withdrawn: target
            .as_ref()
            .map(|t| t.withdrawn.clone())
            .unwrap_or_default(),
        // The target's own waves and pause (set by publishing its spec), not the source's.
        rollout: target.as_ref().and_then(|t| t.rollout.clone()),
    };
    // A promoted subset whose dependsOn names a release the target lacks is refused by
    // the agents' reader here.
    let index_file = write_derived_index(&opts.site, &index, &opts.keys)?;
    Ok(PromoteReport {
        from: (opts.from.clone(), source.sequence),
        to: (opts.to.clone(), prior_sequence, sequence),
        releases: summaries,
        index_path: index_file,
    })
}

/// Refuses unless the source channel's gate record is signed by a gate key, names the
/// source's exact index (channel, sequence, digest) and passed.
async fn check_gate(
    opts: &PromoteOptions,
    site: &site::Site,
    sequence: u64,
    digest: &Sha256Digest,
) -> Result<(), PublishError> {
    let record_path = SitePath::parse(&format!("channels/{}/gate.json", opts.from))
        .map_err(PublishError::Write)?;
    let sig_path = SitePath::parse(&format!("channels/{}/gate.json.sig", opts.from))
        .map_err(PublishError::Write)?;
    let shown = site.location(&record_path);
    let no_gate = |why: String| {
        refused(format!(
            "{}#{sequence} has no passing gate record: {why}",
            opts.from
        ))
    };
    let bytes = site
        .read(&record_path, DocKind::Signatures)
        .await
        .map_err(|e| no_gate(describe(&e)))?;
    let sig_bytes = site
        .read(&sig_path, DocKind::Signatures)
        .await
        .map_err(|e| no_gate(describe(&e)))?;
    let signatures: Signatures =
        read_json(&sig_bytes, &site.location(&sig_path)).map_err(|e| no_gate(describe(&e)))?;
    let ids: Vec<String> = opts.gate_keys.iter().map(keys::keyid).collect();
    let accepted: BTreeMap<&str, VerifyingKey> = ids
        .iter()
        .map(String::as_str)
        .zip(opts.gate_keys.iter().copied())
        .collect();
    check_threshold(&bytes, &signatures, &accepted, 1, RoleName::Channel, &shown)
        .map_err(|e| no_gate(format!("{shown} is not signed by a gate key ({e})")))?;
    let record: GateRecord = read_json(&bytes, &shown).map_err(|e| no_gate(describe(&e)))?;
    if record.channel != opts.from || record.sequence != sequence || record.index != *digest {
        return Err(no_gate(format!(
            "{shown} is for {}#{} (index {}), not this index ({digest})",
            record.channel, record.sequence, record.index
        )));
    }
    if !record.passed {
        let failed: Vec<&str> = record
            .releases
            .iter()
            .filter(|r| !r.passed)
            .map(|r| r.name.as_str())
            .collect();
        return Err(no_gate(format!(
            "the gate failed at {} ({})",
            record.checked,
            crate::bounded::bounded_list(&failed, 10)
        )));
    }
    Ok(())
}

/// A duration for people: `3h12m`, `2d4h`, `45s`.
fn human(d: time::Duration) -> String {
    let secs = d.whole_seconds().max(0);
    let (days, hours, minutes, seconds) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m{seconds}s"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(human(time::Duration::seconds(45)), "45s");
        assert_eq!(human(time::Duration::seconds(125)), "2m5s");
        assert_eq!(human(time::Duration::seconds(3 * 3600 + 720)), "3h12m");
        assert_eq!(
            human(time::Duration::seconds(2 * 86_400 + 4 * 3600)),
            "2d4h"
        );
    }
}
