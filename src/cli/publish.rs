//! `coxswain publish`: channel spec + charts + values → chart archives and a signed index.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use coxswain::duration::Duration;
use coxswain::format::Timestamp;
use coxswain::publish::{PublishOptions, publish};

/// Publish a channel: package every chart, build the next index, sign it, write the site.
///
/// The prior index comes from --previous, else from --out; the new sequence is the prior's
/// plus one. The prior index must be signed by one of the --key keys (or, after the
/// channel keys were rotated, by the channel keys of --prior-trust). Without a prior index
/// --sequence is required: restarting at 1 would make every agent refuse the channel.
///
/// Everything is checked before anything is written: the spec (names, namespaces,
/// dependsOn and cycles, semver versions and ranges), every values file, every chart
/// (Chart.yaml name and version, a safe archive). Then the site gets the chart archives
/// (charts/sha256-<hex>.tgz), then index.json.sig, then index.json, each through a
/// temporary file and a rename. oci:// charts are pulled with helm (--helm,
/// COXSWAIN_HELM, or helm on PATH); repository charts are downloaded and checked
/// against the repository's digest.
#[derive(Debug, Parser)]
#[command(
    after_help = "Examples:\n  # first publish into an empty site:\n  coxswain publish --spec channels/stable.yaml --key keys/ci-1.key --out site --sequence 1\n  # CI: next sequence from the live site, written to a fresh directory to upload:\n  coxswain publish --spec channels/stable.yaml --key keys/ci-1.key --out build/site \\\n      --previous https://updates.example.org/stack --valid-for 14d"
)]
pub struct Args {
    /// The channel spec (YAML); chart paths and values files are relative to it.
    #[arg(long, value_name = "SPEC")]
    spec: PathBuf,
    /// A private key to sign with (NAME.key); repeat for several.
    #[arg(long = "key", value_name = "KEY", required = true)]
    keys: Vec<PathBuf>,
    /// The site directory to write (created if missing).
    #[arg(long, value_name = "SITE")]
    out: PathBuf,
    /// Where the prior index is read from: a site directory or URL [default: --out].
    #[arg(long, value_name = "DIR_OR_URL")]
    previous: Option<String>,
    /// The new sequence: required without a prior index, above the prior's with one.
    #[arg(long, value_name = "N")]
    sequence: Option<u64>,
    /// How long the index stays valid, e.g. 14d [default: the spec's validFor, else 14d].
    #[arg(long, value_name = "DURATION")]
    valid_for: Option<Duration>,
    /// A trust root whose channel keys may have signed the prior index (after a channel
    /// key rotation).
    #[arg(long, value_name = "TRUST")]
    prior_trust: Option<PathBuf>,
    /// The helm binary that pulls oci:// charts.
    #[arg(
        long,
        value_name = "HELM",
        env = coxswain::helm::HELM_ENV,
        default_value = "helm"
    )]
    helm: PathBuf,
    /// Allow valuesFile, chart path and archive entries that lead (links resolved) outside
    /// both the spec's directory and the working directory; refused by default.
    #[arg(long)]
    allow_outside_spec_dir: bool,
    /// Allow a --sequence more than 1,000,000 above the prior index's.
    #[arg(long)]
    force_sequence_jump: bool,
}

pub async fn run(args: Args) -> Result<()> {
    let keys = super::signing_keys(&args.keys)?;
    let prior_trust = super::trust_root(args.prior_trust.as_deref())?;
    let mut opts = PublishOptions::new(args.spec, keys, args.out, Timestamp::now());
    opts.previous = args.previous;
    opts.sequence = args.sequence;
    opts.valid_for = args.valid_for;
    opts.prior_trust = prior_trust;
    opts.helm = args.helm;
    opts.progress = true;
    opts.allow_outside_spec_dir = args.allow_outside_spec_dir;
    opts.force_sequence_jump = args.force_sequence_jump;
    let report = publish(&opts)
        .await
        .with_context(|| format!("cannot publish {}", opts.spec.display()))?;
    print!("{}", report.table());
    println!("wrote {}", report.index_path.display());
    Ok(())
}
