//! `coxswain promote`: the next index of one channel from the exact entries of another.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use coxswain::duration::Duration;
use coxswain::format::Timestamp;
use coxswain::keys;
use coxswain::publish::promote::{PromoteOptions, promote};
use coxswain::publish::{DEFAULT_VALID_FOR, release_table};

/// Promote a channel's releases to another channel on the same site (beta to stable).
///
/// Reads the source channel's index from SITE and checks its signature (by one of the
/// --key keys, or by the channel keys of --trust after a rotation), requires it to have
/// been published at least --min-soak ago, and writes the target channel's next index
/// (its sequence + 1, its own expiry) from the source's entries exactly: the same chart
/// archives, values, dependsOn, health and upgradeFrom; nothing is repacked. The target's
/// older entries are carried forward as publish does. --releases promotes a subset; the
/// target's other releases stay as they are.
///
/// Refused, with nothing written: a source younger than the soak, a release the source
/// lacks, a promotion that would give a release of the target an older chart, a
/// promotion that changes nothing, a chart missing from the site.
#[derive(Debug, Parser)]
#[command(
    after_help = "Examples:\n  coxswain promote --site site --from beta --to stable --key keys/ci-1.key --min-soak 24h\n  coxswain promote --site site --from beta --to stable --key keys/ci-1.key --releases sso,wiki"
)]
pub struct Args {
    /// The site directory (read and written).
    #[arg(long, value_name = "SITE")]
    site: PathBuf,
    /// The channel to promote from.
    #[arg(long, value_name = "CHANNEL")]
    from: String,
    /// The channel to promote to.
    #[arg(long, value_name = "CHANNEL")]
    to: String,
    /// A private key to sign with (NAME.key); repeat for several.
    #[arg(long = "key", value_name = "KEY", required = true)]
    keys: Vec<PathBuf>,
    /// How long the source index must have been published.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    min_soak: Duration,
    /// Only these releases (comma-separated).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    releases: Option<Vec<String>>,
    /// How long the new index stays valid.
    #[arg(long, value_name = "DURATION", default_value_t = DEFAULT_VALID_FOR)]
    valid_for: Duration,
    /// How many older entries per release stay pinnable in the target.
    #[arg(long, value_name = "N", default_value_t = 3)]
    keep_previous: usize,
    /// A trust root whose channel keys may have signed the indexes read (after a channel
    /// key rotation).
    #[arg(long, value_name = "TRUST")]
    trust: Option<PathBuf>,
    /// Require a passing gate record (`coxswain gate --record`) for the source's exact
    /// index at SITE/channels/<from>/gate.json, signed by one of the --gate-key keys.
    #[arg(long, requires = "gate_keys")]
    require_gate: bool,
    /// A public key (NAME.pub) whose signature on the gate record counts; repeat for
    /// several.
    #[arg(long = "gate-key", value_name = "PUB", requires = "require_gate")]
    gate_keys: Vec<PathBuf>,
}

pub async fn run(args: Args) -> Result<()> {
    let keys = super::signing_keys(&args.keys)?;
    let trust = super::trust_root(args.trust.as_deref())?;
    let opts = PromoteOptions {
        site: args.site,
        from: args.from,
        to: args.to,
        keys,
        trust,
        min_soak: args.min_soak,
        releases: args.releases,
        valid_for: args.valid_for,
        keep_previous: args.keep_previous,
        now: Timestamp::now(),
        site_limits: coxswain::site::Limits::default(),
        gate_keys: args
            .gate_keys
            .iter()
            .map(|p| keys::read_verifying_key(p))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let report = promote(&opts)
        .await
        .with_context(|| format!("cannot promote {} to {}", opts.from, opts.to))?;
    print!("{}", release_table(&report.releases));
    let (to, prior, sequence) = &report.to;
    println!(
        "promoted {}#{} to {to}#{sequence} ({})",
        report.from.0,
        report.from.1,
        prior.map_or_else(|| "no prior index".to_owned(), |p| format!("prior {p}"))
    );
    println!("wrote {}", report.index_path.display());
    Ok(())
}
