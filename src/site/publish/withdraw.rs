//! `coxswain withdraw`: takes back a channel's newest sequence N. The site gets N+1,
//! whose releases are exactly those of N-1 (read back from the copy every publish keeps
//! under `channels/<channel>/history/`, its signature checked), and whose `withdrawn`
//! list records N with the maintainers' reason, signed like any index.
//!
//! An agent that has not applied N never will: N+1 supersedes it. An agent that applied
//! N goes back to N-1's releases as it would for any new sequence. One that failed on N
//! reads the reason in the index and shows it. Only the newest sequence can be
//! withdrawn: a later sequence already replaced it (publish a fix instead).

use std::path::PathBuf;

use super::{
    IndexReader, PublishError, load_index, load_index_at, next_sequence, write_derived_index,
};
use crate::duration::Duration;
use crate::format::index::{ChannelIndexKind, MAX_WITHDRAWN_REASON};
use crate::format::{ApiVersion, ChannelIndex, Timestamp, TrustRoot, Withdrawn};
use crate::keys::SigningKey;
use crate::site;

/// What a withdrawal needs.
#[derive(Debug, Clone)]
pub struct WithdrawOptions {
    /// The site directory.
    pub site: PathBuf,
    /// The channel.
    pub channel: String,
    /// The sequence withdrawn: the channel's newest.
    pub sequence: u64,
    /// Why, for the administrators who see it.
    pub reason: String,
    /// The keys that sign the new index.
    pub keys: Vec<SigningKey>,
    /// Accept indexes signed by this root's channel keys instead of one of `keys`.
    pub trust: Option<TrustRoot>,
    /// How long the new index stays valid.
    pub valid_for: Duration,
    /// Now: the new index's `published`.
    pub now: Timestamp,
    /// Limits for reading the site.
    pub site_limits: site::Limits,
}

/// What a withdrawal wrote.
#[derive(Debug)]
pub struct WithdrawReport {
    /// The new sequence.
    pub sequence: u64,
    /// The sequence whose releases it carries.
    pub restored: u64,
    /// The new index's path.
    pub index_path: PathBuf,
}

fn refused(reason: String) -> PublishError {
    PublishError::Withdraw(reason)
}

/// Withdraws; see the module documentation.
pub async fn withdraw(opts: &WithdrawOptions) -> Result<WithdrawReport, PublishError> {
    if opts.keys.is_empty() {
        return Err(PublishError::NoKeys);
    }
    let reason = opts.reason.trim();
    let len = reason.chars().count();
    if len == 0 || len > MAX_WITHDRAWN_REASON {
        return Err(refused(format!(
            "the reason must have 1 to {MAX_WITHDRAWN_REASON} characters, not {len}"
        )));
    }
    let location = opts.site.display().to_string();
    let reader = IndexReader {
        keys: &opts.keys,
        trust: opts.trust.as_ref(),
        limits: &opts.site_limits,
    };
    let current = load_index(&reader, &location, &opts.channel)
        .await?
        .ok_or_else(|| {
            refused(format!(
                "{location} has no index for channel `{}`",
                opts.channel
            ))
        })?
        .index;
    if current.sequence != opts.sequence {
        return Err(refused(format!(
            "{}#{} is not the newest sequence ({}#{} is): only the newest can be withdrawn; publish a fix instead",
            opts.channel, opts.sequence, opts.channel, current.sequence
        )));
    }
    let before = opts.sequence - 1;
    if before == 0 {
        return Err(refused(format!(
            "{}#{} is the channel's first sequence: there is nothing to go back to",
            opts.channel, opts.sequence
        )));
    }
    let last_good = load_index_at(&reader, &location, &opts.channel, Some(before))
        .await?
        .ok_or_else(|| {
            refused(format!(
                "{location} keeps no copy of {}#{before} (channels/{}/history/{before}.json): it was published before copies were kept; publish its spec again instead",
                opts.channel, opts.channel
            ))
        })?
        .index;
    if current.withdrawn.iter().any(|w| w.sequence == before) {
        return Err(refused(format!(
            "{}#{before}, which {}#{} would go back to, was itself withdrawn",
            opts.channel, opts.channel, opts.sequence
        )));
    }
    let (sequence, expires) = next_sequence(Some(current.sequence), opts.now, opts.valid_for)?;
    let mut withdrawn = current.withdrawn.clone();
    withdrawn.push(Withdrawn {
        sequence: opts.sequence,
        reason: reason.to_owned(),
    });
    let index = ChannelIndex {
        api_version: ApiVersion::V1,
        kind: ChannelIndexKind::ChannelIndex,
        channel: opts.channel.clone(),
        sequence,
        published: opts.now,
        expires,
        // The last good releases, with the older entries they had then: what N
        // introduced is not offered, not even as a pin. Their rollout started when they
        // first appeared, long open: clusters go back at once, wave or not.
        releases: last_good
            .releases
            .into_iter()
            .map(|mut r| {
                r.since = Some(r.rollout_start(last_good.published));
                r
            })
            .collect(),
        withdrawn,
        // The waves stay; a pause does not (the withdrawal is the stop: what it held is
        // gone, and the last good entries must reach every cluster).
        rollout: current
            .rollout
            .clone()
            .map(|r| crate::rollout::Rollout { paused: false, ..r }),
    };
    let index_path = write_derived_index(&opts.site, &index, &opts.keys)?;
    Ok(WithdrawReport {
        sequence,
        restored: before,
        index_path,
    })
}
