//! `coxswain verify`: check a published channel the way an agent would, and every chart.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Parser;

use coxswain::chart::ArchiveLimits;
use coxswain::format::Timestamp;
use coxswain::site::{Limits, Site};
use coxswain::site_verify::{SiteVerifyOptions, verify_site};

/// Verify a channel on a site: trust chain, signatures, expiry, channel, sequence, charts.
///
/// Starts from the trust root given with --trust (the anchor agents are installed with)
/// and follows SITE/trust/<N>.json rotations; then checks index.json against
/// index.json.sig (fetched once more if they do not match: a publish may be between its
/// two renames), its expiry, channel and sequence; then downloads every chart the index
/// names, current and previous, and checks its size, SHA-256, that it is a safe,
/// well-formed chart archive, and that its Chart.yaml matches the entry. Prints one line
/// per release and exits 0 only when everything holds.
#[derive(Debug, Parser)]
#[command(
    after_help = "Examples:\n  coxswain verify --trust trust.json --channel stable https://updates.example.org/stack\n  coxswain verify --trust trust.json --channel beta --min-sequence 42 ./site"
)]
pub struct Args {
    /// The trust root to start from (trust.json).
    #[arg(long, value_name = "TRUST")]
    trust: PathBuf,
    /// The channel to verify.
    #[arg(long, value_name = "NAME")]
    channel: String,
    /// Refuse an index with a lower sequence (anti-rollback, as an agent that accepted N).
    #[arg(long, value_name = "N", default_value_t = 0)]
    min_sequence: u64,
    /// How long the whole verify may take, every request of it counted (trust
    /// roots, index, signatures, every chart): a site that answers each request
    /// just inside its timeout is stopped here. Write e.g. `90s`, `10m`.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = crate::cli::agent::parse_timeout)]
    deadline: coxswain::duration::Duration,
    /// The site: a directory, or an http(s):// base URL.
    #[arg(value_name = "SITE_DIR_OR_URL")]
    site: String,
}

pub async fn run(args: Args) -> Result<()> {
    let cap = coxswain::format::trust::MAX_TRUST_BYTES;
    let anchor = coxswain::format::spec::read_capped(&args.trust, cap)?;
    let site = Site::open(&args.site, Limits::default())?;
    let opts = SiteVerifyOptions {
        anchor,
        anchor_origin: args.trust.display().to_string(),
        channel: args.channel,
        min_sequence: args.min_sequence,
        now: Timestamp::now(),
        archive_limits: ArchiveLimits::default(),
        deadline: args.deadline.to_std(),
    };
    let report = verify_site(&site, &opts).await?;
    print!("{}", report.render());
    let failed = report.releases.iter().filter(|r| !r.is_ok()).count();
    if failed > 0 {
        bail!(
            "{failed} of {} release(s) in channel {} failed verification",
            report.releases.len(),
            opts.channel
        );
    }
    Ok(())
}
