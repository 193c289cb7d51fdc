//! `coxswain upstream check`: newer chart versions and image tags for a channel spec.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use coxswain::format::spec::ChannelSpec;
use coxswain::site::Limits;
use coxswain::upstream::{self, Kind, Report, Upstream};

/// Exit code when updates were found (and, with --write, written).
pub const EXIT_UPDATES: i32 = 2;

/// Find what is new upstream for the releases of a channel spec.
#[derive(Debug, Parser)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Check(CheckArgs),
}

/// How the findings are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line per update, for people.
    Text,
    /// A JSON list of {release, kind, name, from, to, appVersion, notes}.
    Json,
    /// A changelog for a pull request's body.
    Markdown,
}

/// Check every release's chart and images upstream, within its `update:` policy.
///
/// Charts from classic Helm repositories (index.yaml) and OCI registries, images from
/// OCI registries (the distribution API, with the anonymous token flow of public
/// registries). Without an `update:` block a release's chart may move within its major
/// version, and its images are not checked. Local charts (path, archive) have no
/// upstream. Registries on loopback addresses are read over plain HTTP.
///
/// Exit codes: 0 nothing new; 2 updates found (with --write: written); 1 an error
/// (a release could not be checked: nothing is written).
#[derive(Debug, Parser)]
#[command(
    after_help = "Examples:\n  coxswain upstream check --spec channels/beta.yaml\n  coxswain upstream check --spec channels/beta.yaml --write --format markdown > pr-body.md"
)]
struct CheckArgs {
    /// The channel spec.
    #[arg(long, value_name = "SPEC")]
    spec: PathBuf,
    /// Rewrite the new versions and tags into the spec and its values files in place
    /// (only those scalars change; comments and formatting stay).
    #[arg(long)]
    write: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Time allowed for the whole check (every request included).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    timeout: coxswain::duration::Duration,
}

pub async fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Check(args) => check(args).await,
    }
}

async fn check(args: CheckArgs) -> Result<()> {
    let spec = ChannelSpec::load(&args.spec)
        .with_context(|| format!("cannot read the spec {}", args.spec.display()))?;
    let limits = Limits {
        total_timeout: Duration::from_secs(60).min(args.timeout.to_std()),
        ..Limits::default()
    };
    let upstream = Upstream::new(limits)?;
    let report = tokio::time::timeout(
        args.timeout.to_std(),
        upstream::check(&spec, &args.spec, &upstream),
    )
    .await
    .map_err(|_| anyhow::anyhow!("the check did not finish within {}", args.timeout))?;
    match args.format {
        Format::Text => print!("{}", text(&report)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report.findings)?),
        Format::Markdown => print!("{}", upstream::markdown(&report)),
    }
    if !report.errors.is_empty() {
        for e in &report.errors {
            eprintln!("error: {}", coxswain::site_verify::describe(e));
        }
        bail!(
            "{} of {} release(s) could not be checked{}",
            report.errors.len(),
            report.checked,
            if args.write {
                "; nothing was written"
            } else {
                ""
            }
        );
    }
    if report.findings.is_empty() {
        return Ok(());
    }
    if args.write {
        let written = upstream::write(&report.findings)?;
        for path in written {
            eprintln!("wrote {}", path.display());
        }
    }
    std::process::exit(EXIT_UPDATES)
}

fn text(report: &Report) -> String {
    if report.findings.is_empty() {
        return format!("nothing new upstream for {} release(s)\n", report.checked);
    }
    let mut out = String::new();
    for f in &report.findings {
        let kind = match f.kind {
            Kind::Chart => "chart",
            Kind::Image => "image",
        };
        out.push_str(&format!(
            "{}: {kind} {} {} -> {}\n",
            f.release, f.name, f.from, f.to
        ));
    }
    out
}
