//! Verifying a whole update site the way `coxswain verify` does, and fetching a verified
//! index (with one refetch on a signature mismatch), which the agent shares.
//!
//! 1. Trust: the installed anchor, then `trust/<N+1>.json` (+ `.sig`) for as long as the
//!    site has the next version ([`walk_site`]), each accepted by [`TrustChain::advance`];
//!    the newest root must not have expired.
//! 2. Index: `index.json`, then `index.json.sig` (publish renames the signature into
//!    place first, so reading in this order never pairs a new index with an old
//!    signature), verified by [`verify_index`] on the raw bytes before parsing. When
//!    the signatures do not match, the pair is fetched once more: a reader can land
//!    between publish's two renames.
//! 3. Charts: every chart the index names, current and `previous`, fetched once per
//!    digest (bounded), checked for size and SHA-256, then read with the safe archive
//!    reader and compared with the entry (name, version). Problems are collected per
//!    release rather than stopping at the first, so one run reports everything.

use std::collections::BTreeMap;

use crate::chart::{ArchiveLimits, ChartArchive};
use crate::format::{IndexChart, Sha256Digest, Timestamp};
use crate::site::{DocKind, Fetched, Site, SiteError, SitePath};
use crate::trust::{TrustError, walk_site};
use crate::verify::{
    IndexPolicy, TrustChain, TrustedRoot, VerifiedIndex, VerifyError, verify_index,
};

/// Why a site could not be verified at all (per-chart problems are in [`ReleaseCheck`]).
#[derive(Debug, thiserror::Error)]
pub enum SiteVerifyError {
    /// A document could not be fetched.
    #[error("cannot fetch {what}")]
    Fetch {
        /// What was being fetched.
        what: String,
        /// Why.
        #[source]
        source: SiteError,
    },
    /// The trust anchor, the index, or the newest root's expiry failed verification.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Following `trust/<N>.json` rotations failed.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The whole verify did not finish within its deadline (every request of
    /// it counted, however quickly each one answered).
    #[error(
        "verify of channel {channel} did not finish within {after:?} (the deadline for the whole check): it ran out while {during}"
    )]
    DeadlineExceeded {
        /// The channel being verified.
        channel: String,
        /// The deadline.
        after: std::time::Duration,
        /// The step it ran out in: `walking the trust roots`, `reading the index`,
        /// `checking chart <name version>`.
        during: String,
    },
}

/// The default for [`SiteVerifyOptions::deadline`]: a verify reads a few
/// documents and every chart once; ten minutes is far more than a healthy
/// site of a thousand charts needs and bounds one that answers each request
/// just inside its timeout.
pub const DEFAULT_VERIFY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// An error and its causes on one line, `a: b: c` (what `coxswain` prints for errors),
/// for problems reported as text.
pub fn describe(err: &dyn std::error::Error) -> String {
    let mut text = crate::bounded::bounded(&err.to_string(), crate::bounded::MAX_CAUSE);
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        // Causes from other libraries (serde's "unknown field `…`") echo input too.
        text.push_str(&crate::bounded::bounded(
            &cause.to_string(),
            crate::bounded::MAX_CAUSE,
        ));
        source = cause.source();
    }
    text
}

fn fetch_err(what: String) -> impl FnOnce(SiteError) -> SiteVerifyError {
    move |source| SiteVerifyError::Fetch { what, source }
}

/// A verified index and how it was obtained.
#[derive(Debug, Clone)]
pub struct FetchedIndex {
    /// The index.
    pub verified: VerifiedIndex,
    /// Where it was read from.
    pub location: String,
    /// Whether the first pair did not match and was fetched again.
    pub refetched: bool,
}

/// Fetches `index.json` then `index.json.sig` and verifies them; on a signature
/// mismatch, fetches the pair once more before failing.
pub async fn fetch_verified_index(
    site: &Site,
    trust: &TrustedRoot,
    policy: IndexPolicy<'_>,
) -> Result<FetchedIndex, SiteVerifyError> {
    let index_path = SitePath::index(policy.channel)
        .map_err(fetch_err(format!("channel {}", policy.channel)))?;
    let sig_path = SitePath::index_signatures(policy.channel)
        .map_err(fetch_err(format!("channel {}", policy.channel)))?;
    let location = site.location(&index_path);
    let sig_location = site.location(&sig_path);
    let mut refetched = false;
    loop {
        let bytes = site
            .read(&index_path, DocKind::Index)
            .await
            .map_err(fetch_err(location.clone()))?;
        let sig = site
            .read(&sig_path, DocKind::Signatures)
            .await
            .map_err(fetch_err(sig_location.clone()))?;
        match verify_index(&bytes, &sig, trust, policy, &location, &sig_location) {
            Ok(verified) => {
                return Ok(FetchedIndex {
                    verified,
                    location,
                    refetched,
                });
            }
            Err(VerifyError::ThresholdNotMet { .. }) if !refetched => refetched = true,
            Err(e) => return Err(e.into()),
        }
    }
}

/// What `coxswain verify` needs besides the site.
#[derive(Debug, Clone)]
pub struct SiteVerifyOptions {
    /// The installed trust anchor's bytes.
    pub anchor: Vec<u8>,
    /// Where the anchor came from, for messages.
    pub anchor_origin: String,
    /// The channel to verify.
    pub channel: String,
    /// The lowest acceptable sequence.
    pub min_sequence: u64,
    /// The time expiry is checked against.
    pub now: Timestamp,
    /// Limits for reading every chart archive.
    pub archive_limits: ArchiveLimits,
    /// How long the whole verify may take, from the first request to the last
    /// chart ([`DEFAULT_VERIFY_DEADLINE`] unless told otherwise).
    pub deadline: std::time::Duration,
}

/// The outcome for one release.
#[derive(Debug, Clone)]
pub struct ReleaseCheck {
    /// The release name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// `chart-name version` of the current entry.
    pub chart: String,
    /// The current chart's digest.
    pub digest: Sha256Digest,
    /// How many `previous` entries were checked too.
    pub previous: usize,
    /// What is wrong; empty when the release verified.
    pub problems: Vec<String>,
}

impl ReleaseCheck {
    /// Whether everything about the release held.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A site whose trust chain and index verified, with the per-release chart results.
#[derive(Debug, Clone)]
pub struct SiteReport {
    /// The newest trust root (version and where it came from).
    pub trust_version: u64,
    /// Where the newest trust root came from.
    pub trust_origin: String,
    /// The verified index.
    pub index: FetchedIndex,
    /// One entry per release, in index order.
    pub releases: Vec<ReleaseCheck>,
    /// Distinct chart archives fetched and checked.
    pub charts_checked: usize,
}

impl SiteReport {
    /// Whether every release verified.
    pub fn is_ok(&self) -> bool {
        self.releases.iter().all(ReleaseCheck::is_ok)
    }

    /// One line per release (`ok` or `FAIL`, name, namespace, chart, short digest, older
    /// entries, and each problem), then one summary line.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let width = |f: fn(&ReleaseCheck) -> usize| self.releases.iter().map(f).max().unwrap_or(0);
        let (wn, wns, wc) = (
            width(|r| r.name.len()),
            width(|r| r.namespace.len()),
            width(|r| r.chart.len()),
        );
        let mut out = String::new();
        for r in &self.releases {
            let status = if r.is_ok() { "ok  " } else { "FAIL" };
            let digest = r.digest.hex();
            let _ = write!(
                out,
                "{status}  {:<wn$}  {:<wns$}  {:<wc$}  sha256:{}  previous {}",
                r.name,
                r.namespace,
                r.chart,
                digest.get(..12).unwrap_or(&digest),
                r.previous
            );
            if !r.is_ok() {
                let _ = write!(out, "  {}", r.problems.join("; "));
            }
            out.push('\n');
        }
        let index = self.index.verified.index();
        let failed = self.releases.iter().filter(|r| !r.is_ok()).count();
        let _ = writeln!(
            out,
            "channel {} sequence {} published {} expires {}: {} signature(s) valid under trust root \
             version {} ({}); {} chart archive(s) checked{}; {}",
            index.channel,
            index.sequence,
            index.published,
            index.expires,
            self.index.verified.signers().len(),
            self.trust_version,
            self.trust_origin,
            self.charts_checked,
            if self.index.refetched {
                ", index fetched twice (signature mismatch on the first read)"
            } else {
                ""
            },
            if failed == 0 {
                "all releases verified".to_owned()
            } else {
                format!("{failed} release(s) FAILED")
            }
        );
        out
    }
}

/// Verifies the channel on `site`: trust chain, index, and every chart's bytes.
pub async fn verify_site(
    site: &Site,
    opts: &SiteVerifyOptions,
) -> Result<SiteReport, SiteVerifyError> {
    let deadline = tokio::time::Instant::now() + opts.deadline;
    // Each step runs to the one deadline: the error names the step it ran out in.
    let within = |during: String| {
        move |_: tokio::time::error::Elapsed| SiteVerifyError::DeadlineExceeded {
            channel: opts.channel.clone(),
            after: opts.deadline,
            during,
        }
    };
    let anchor = TrustChain::anchor(&opts.anchor, None, &opts.anchor_origin)?;
    let walked = tokio::time::timeout_at(deadline, walk_site(site, anchor))
        .await
        .map_err(within("walking the trust roots".into()))?;
    let trust = walked?.trusted(opts.now)?;
    let policy = IndexPolicy {
        channel: &opts.channel,
        min_sequence: opts.min_sequence,
        now: opts.now,
    };
    let fetched = tokio::time::timeout_at(deadline, fetch_verified_index(site, &trust, policy))
        .await
        .map_err(within("reading the index".into()))??;
    let index_path = SitePath::index(&opts.channel).map_err(fetch_err(opts.channel.clone()))?;
    // Outcomes, not archives: each archive is dropped once checked, so a verify holds
    // one chart in memory at a time, however many the index pins.
    let mut checked: BTreeMap<ChartKey, Result<(), String>> = BTreeMap::new();
    let mut releases = Vec::with_capacity(fetched.verified.index().releases.len());
    for release in &fetched.verified.index().releases {
        let mut problems = Vec::new();
        let entries =
            std::iter::once(&release.chart).chain(release.previous.iter().map(|p| &p.chart));
        for chart in entries {
            let check = check_chart(
                site,
                &index_path,
                &fetched.verified,
                chart,
                &mut checked,
                &opts.archive_limits,
            );
            let during = || format!("checking chart {} {}", chart.name, chart.version);
            if let Err(problem) = tokio::time::timeout_at(deadline, check)
                .await
                .map_err(|e| within(during())(e))?
            {
                problems.push(problem);
            }
        }
        releases.push(ReleaseCheck {
            name: release.name.clone(),
            namespace: release.namespace.clone(),
            chart: format!("{} {}", release.chart.name, release.chart.version),
            digest: release.chart.digest,
            previous: release.previous.len(),
            problems,
        });
    }
    Ok(SiteReport {
        trust_version: trust.root().version,
        trust_origin: trust.origin().to_owned(),
        index: fetched,
        releases,
        charts_checked: checked
            .keys()
            .map(|(digest, ..)| digest)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
    })
}

/// A chart entry as far as its check goes: the same archive may be pinned under another
/// name or version, which is a different check.
type ChartKey = (Sha256Digest, String, String);

/// Fetches and checks one chart entry (once per digest, name and version), reading at
/// most the entry's signed size; the error is a one-line reason naming the chart.
async fn check_chart(
    site: &Site,
    index_path: &SitePath,
    verified: &VerifiedIndex,
    chart: &IndexChart,
    checked: &mut BTreeMap<ChartKey, Result<(), String>>,
    limits: &ArchiveLimits,
) -> Result<(), String> {
    let key = (chart.digest, chart.name.clone(), chart.version.clone());
    if let Some(outcome) = checked.get(&key) {
        return outcome.clone();
    }
    let label = format!("chart {} {}", chart.name, chart.version);
    let outcome = async {
        let path = site
            .resolve(index_path, &chart.url)
            .map_err(|e| format!("{label}: {}", describe(&e)))?;
        let location = site.location(&path);
        // The signed size caps the download: a server sending more is cut off there.
        let cap = chart.size.min(site.limits().cap(DocKind::Chart));
        let bytes = match site.fetch(&path, cap, None).await {
            Ok(Fetched::Modified { bytes, .. }) => bytes,
            Ok(Fetched::NotModified) => {
                return Err(format!("{label}: {location} answered 304 to a plain GET"));
            }
            Err(e) => return Err(format!("{label}: {}", describe(&e))),
        };
        check_chart_bytes(verified, chart, &bytes, &location, limits)
            .map(drop)
            .map_err(|e| match e {
                ChartCheckError::Verify(e) => format!("{} ({location})", describe(&e)),
                other => format!("{label}: {other}"),
            })
    }
    .await;
    checked.insert(key, outcome.clone());
    outcome
}

/// Why a chart archive does not match its index entry.
#[derive(Debug, thiserror::Error)]
pub enum ChartCheckError {
    /// Size or SHA-256 differ from the verified index.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Not a safe, well-formed chart archive of the entry's chart name.
    #[error(transparent)]
    Archive(#[from] crate::chart::ChartError),
    /// The index's version is not one (a validated index never has such an entry).
    #[error("version in the index: {0}")]
    IndexVersion(String),
    /// The archive's Chart.yaml names another version than the index.
    #[error("{location} holds version {found}, the index says {expected}")]
    Version {
        /// Where the archive came from.
        location: String,
        /// Chart.yaml's version.
        found: String,
        /// The index's version.
        expected: String,
    },
}

/// The one check of a chart's bytes against its verified index entry, shared
/// by `coxswain verify` and the agent: size and SHA-256 first (nothing else
/// is read before they match), then the safe archive reader (its chart name
/// must be the entry's), then Chart.yaml's version against the entry's.
pub fn check_chart_bytes(
    verified: &VerifiedIndex,
    chart: &IndexChart,
    bytes: &[u8],
    location: &str,
    limits: &ArchiveLimits,
) -> Result<ChartArchive, ChartCheckError> {
    verified.check_chart(chart, bytes)?;
    let archive = ChartArchive::read(bytes, location, Some(&chart.name), limits)?;
    let expected = chart
        .parsed_version()
        .map_err(|e| ChartCheckError::IndexVersion(e.to_string()))?;
    // The index keeps the version as Chart.yaml writes it: the text must be the same.
    if *archive.version() != expected {
        return Err(ChartCheckError::Version {
            location: location.to_owned(),
            found: archive.version().to_string(),
            expected: chart.version.clone(),
        });
    }
    Ok(archive)
}
