//! `coxswain withdraw`: take back a channel's newest sequence.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use coxswain::duration::Duration;
use coxswain::format::Timestamp;
use coxswain::publish::DEFAULT_VALID_FOR;
use coxswain::publish::withdraw::{WithdrawOptions, withdraw};

/// Withdraw a channel's newest sequence N: publish N+1 with the releases of N-1.
///
/// N-1's index is read back from the copy every publish keeps under
/// SITE/channels/<channel>/history/ (its signature checked, as the current index's);
/// N+1 offers exactly its releases and records N as withdrawn with --reason, which
/// clusters that failed on N show. Clusters that did not apply N never will; clusters
/// that did go back to N-1's releases.
#[derive(Debug, Parser)]
#[command(
    after_help = "Example:\n  coxswain withdraw --site site --channel beta --sequence 8 --key keys/ci-1.key \\\n      --reason \"sso 25.0.0 loses sessions on upgrade; see #1234\""
)]
pub struct Args {
    /// The site directory.
    #[arg(long, value_name = "SITE")]
    site: PathBuf,
    /// The channel.
    #[arg(long, value_name = "NAME")]
    channel: String,
    /// The sequence to withdraw: the channel's newest.
    #[arg(long, value_name = "N")]
    sequence: u64,
    /// Why (shown in clusters' status and web UI; at most 1,000 characters).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// A private key to sign with (NAME.key); repeat for several.
    #[arg(long = "key", value_name = "KEY", required = true)]
    keys: Vec<PathBuf>,
    /// How long the new index stays valid.
    #[arg(long, value_name = "DURATION", default_value_t = DEFAULT_VALID_FOR)]
    valid_for: Duration,
    /// A trust root whose channel keys may have signed the indexes read.
    #[arg(long, value_name = "TRUST")]
    trust: Option<PathBuf>,
}

pub async fn run(args: Args) -> Result<()> {
    let keys = super::signing_keys(&args.keys)?;
    let trust = super::trust_root(args.trust.as_deref())?;
    let opts = WithdrawOptions {
        site: args.site,
        channel: args.channel,
        sequence: args.sequence,
        reason: args.reason,
        keys,
        trust,
        valid_for: args.valid_for,
        now: Timestamp::now(),
        site_limits: coxswain::site::Limits::default(),
    };
    let report = withdraw(&opts)
        .await
        .with_context(|| format!("cannot withdraw {}#{}", opts.channel, opts.sequence))?;
    println!(
        "withdrew {}#{}: {}#{} offers the releases of #{}",
        opts.channel, opts.sequence, opts.channel, report.sequence, report.restored
    );
    println!("wrote {}", report.index_path.display());
    Ok(())
}
