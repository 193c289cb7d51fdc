//! Fetching a subscription's channel: the trust chain, the index and its
//! signatures (conditional GET, retries with backoff, one refetch of the pair
//! on a signature mismatch), and chart archives into a content-addressed cache.
//!
//! The fetcher remembers, per (server, channel), the index's ETag and the
//! verified result, so an unchanged channel costs one conditional request.
//! Anti-rollback floors (sequence, trust root version) come from the caller,
//! which keeps them in the subscription's status.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use backon::{ExponentialBuilder, Retryable};
use tokio::sync::Mutex;

use crate::chart::ArchiveLimits;
use crate::crd::server_key;
use crate::duration::Duration;
use crate::format::{IndexChart, Sha256Digest, Timestamp};
use crate::site::{DocKind, Fetched, Limits, Site, SiteError, SitePath};
use crate::trust::{TrustError, walk_site};
use crate::verify::{
    IndexPolicy, TrustChain, TrustedRoot, VerifiedIndex, VerifyError, verify_index,
};

/// How transient fetch errors are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The first delay; each further one doubles.
    pub min_delay: StdDuration,
    /// The longest delay.
    pub max_delay: StdDuration,
    /// Retries after the first attempt.
    pub max_retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: StdDuration::from_millis(500),
            max_delay: StdDuration::from_secs(5),
            max_retries: 3,
        }
    }
}

/// Why a channel could not be fetched or was refused.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server URL is not a usable site.
    #[error("server {server}")]
    BadServer {
        /// The subscription's server.
        server: String,
        /// Why.
        #[source]
        source: SiteError,
    },
    /// A document could not be read (after retries for transient errors).
    #[error("cannot fetch {what}")]
    Site {
        /// The URL or what it was.
        what: String,
        /// Why.
        #[source]
        source: SiteError,
    },
    /// The installed trust anchor is unreadable.
    #[error("trust anchor {origin}")]
    Anchor {
        /// Where it came from (ConfigMap or Secret key).
        origin: String,
        /// Why.
        #[source]
        source: Box<VerifyError>,
    },
    /// A rotated trust root was refused, or the newest has expired.
    #[error("trust root chain of {server}")]
    Trust {
        /// The server.
        server: String,
        /// Why.
        #[source]
        source: Box<TrustError>,
    },
    /// The newest trust root on the site is older than one accepted before.
    #[error(
        "{server}: newest trust root is version {found}, but version {floor} was accepted before (rollback refused)"
    )]
    TrustRootRollback {
        /// The server.
        server: String,
        /// The newest version the site offers.
        found: u64,
        /// The version accepted before.
        floor: u64,
    },
    /// The index failed verification (signatures, channel, expiry, sequence).
    #[error("index verification failed")]
    Verify(#[source] Box<VerifyError>),
    /// The whole fetch (every request of it, retries and their delays
    /// included) did not finish within the fetcher's deadline: a site that
    /// answers each request just inside `--http-timeout`, or a long trust-root
    /// walk, cannot hold the agent for longer than this.
    #[error(
        "{what}: not finished within {after:?} (the deadline for the whole fetch, retries included)"
    )]
    DeadlineExceeded {
        /// What was being fetched: `channel <name> from <server>` or `chart <name version>`.
        what: String,
        /// The deadline that ran out.
        after: StdDuration,
    },
    /// A chart archive is not what the index says, or not a safe chart.
    #[error("chart {chart}")]
    Chart {
        /// `name version`.
        chart: String,
        /// Why.
        #[source]
        source: Box<ChartFetchError>,
    },
}

/// What went wrong with one chart archive.
#[derive(Debug, thiserror::Error)]
pub enum ChartFetchError {
    /// Download failed.
    #[error(transparent)]
    Site(#[from] SiteError),
    /// Size, digest, archive or version differ from the index (the check
    /// `coxswain verify` makes too).
    #[error(transparent)]
    Check(#[from] crate::site_verify::ChartCheckError),
    /// The release's CRD policy has the agent apply the chart's `crds/`, and
    /// they are not what the agent applies (publish refuses such a chart).
    #[error("crds/")]
    Crds(#[from] crate::chart::crds::CrdError),
    /// The cached archive could not be read back.
    #[error("cannot read the cached archive")]
    CacheRead(#[source] crate::fsread::ReadError),
    /// The local chart cache could not be written (a full disk, a read-only
    /// or missing directory): the agent's problem, not the site's. Nothing is
    /// left behind; the next check downloads the chart again.
    #[error("cannot write to the chart cache {dir}")]
    Cache {
        /// The cache directory.
        dir: PathBuf,
        /// The OS reason (e.g. "No space left on device").
        #[source]
        source: std::io::Error,
    },
}

impl FetchError {
    /// True when the update site could not be reached (timeouts, refused
    /// connections, 5xx, broken transfers, or no index at all); false for
    /// verification failures and local problems.
    pub fn is_unreachable(&self) -> bool {
        match self {
            // A site too slow to finish within the deadline is an outage: the
            // next check tries again.
            Self::DeadlineExceeded { .. } => true,
            Self::Site { source, .. } => source.is_transient() || source.is_not_found(),
            // A chart the index names but the site does not have is the site's
            // defect, not an outage: only transient download failures count.
            Self::Chart { source, .. } => {
                matches!(source.as_ref(), ChartFetchError::Site(e) if e.is_transient())
            }
            Self::Trust { source, .. } => match source.as_ref() {
                TrustError::Site(e) => e.is_transient() || e.is_not_found(),
                _ => false,
            },
            _ => false,
        }
    }

    /// The bounded reason label of `coxswain_verification_failures_total`, for
    /// errors that are verification failures.
    pub fn verification_reason(&self) -> Option<&'static str> {
        if !self.is_verification() {
            return None;
        }
        Some(match self {
            Self::Verify(v) => match v.as_ref() {
                VerifyError::Signatures(_) | VerifyError::ThresholdNotMet { .. } => "signature",
                VerifyError::Document(_) => "malformed",
                VerifyError::WrongChannel { .. } => "wrong_channel",
                // Time sanity: a `published` ahead of the clock is reported with expiry.
                VerifyError::Expired { .. } | VerifyError::PublishedInFuture { .. } => "expired",
                VerifyError::ValidityTooLong { .. } => "trust_root",
                VerifyError::SequenceTooLow { .. } => "sequence_rollback",
                VerifyError::TrustVersionSkip { .. } => "trust_root",
                VerifyError::ChartSize { .. } | VerifyError::ChartDigest { .. } => "chart",
            },
            Self::TrustRootRollback { .. } | Self::Trust { .. } => "trust_root",
            Self::Anchor { .. } => "anchor",
            Self::Chart { .. } => "chart",
            Self::BadServer { .. } | Self::Site { .. } | Self::DeadlineExceeded { .. } => {
                "malformed"
            }
        })
    }

    /// True when something signed or pinned was refused (as opposed to a
    /// network problem).
    pub fn is_verification(&self) -> bool {
        match self {
            Self::Verify(_) | Self::TrustRootRollback { .. } | Self::Anchor { .. } => true,
            Self::Trust { .. } => !self.is_unreachable(),
            // A download or cache failure says nothing about what was signed.
            Self::Chart { source, .. } => matches!(source.as_ref(), ChartFetchError::Check(_)),
            _ => false,
        }
    }
}

/// A verified channel index with what the agent needs besides it.
#[derive(Debug)]
pub struct ChannelSnapshot {
    /// The verified index.
    pub verified: VerifiedIndex,
    /// Version of the trust root it was verified with.
    pub trust_root_version: u64,
    /// Health timeouts the index sets explicitly, per (release, chart version);
    /// entries without one use the subscription's `healthTimeout`.
    pub explicit_timeouts: BTreeMap<(String, String), Duration>,
    /// Where the index was read from.
    pub location: String,
    /// The site it came from (for charts).
    pub site: Site,
}

impl ChannelSnapshot {
    /// The health timeout for `release` at chart `version`.
    pub fn health_timeout(&self, release: &str, version: &str, default: Duration) -> Duration {
        self.explicit_timeouts
            .get(&(release.to_owned(), version.to_owned()))
            .copied()
            .unwrap_or(default)
    }
}

/// The result of one fetch.
#[derive(Debug, Clone)]
pub struct FetchOutcome {
    /// The channel as verified (shared with the memo).
    pub snapshot: Arc<ChannelSnapshot>,
    /// True when the server said the index had not changed since the last fetch.
    pub not_modified: bool,
    /// True when the first index/signature pair did not match and was fetched again.
    pub refetched: bool,
}

/// What the caller asks of a fetch.
#[derive(Debug, Clone, Copy)]
pub struct FetchRequest<'a> {
    /// The site's base URL.
    pub server: &'a str,
    /// The channel.
    pub channel: &'a str,
    /// The installed trust anchor's bytes.
    pub anchor: &'a [u8],
    /// Where the anchor came from, for messages.
    pub anchor_origin: &'a str,
    /// Lowest acceptable sequence (the highest accepted so far).
    pub min_sequence: u64,
    /// Lowest acceptable trust root version (the newest accepted so far).
    pub trust_floor: Option<u64>,
    /// The time expiry is checked against.
    pub now: Timestamp,
}

struct Memo {
    anchor: Sha256Digest,
    etag: String,
    snapshot: Arc<ChannelSnapshot>,
    trust: TrustedRoot,
}

/// How old a temporary file in the chart cache must be before it counts as
/// left behind by a killed writer: longer than any download and write takes.
const STALE_TEMPORARY_AGE: StdDuration = StdDuration::from_secs(600);

/// The default for [`Fetcher::with_deadline`]: a fetch is a handful of
/// requests of at most `--http-timeout` each, retried a few times; five
/// minutes leaves room for that and for a long trust-root walk, and still
/// frees the agent well within a check interval.
pub const DEFAULT_FETCH_DEADLINE: StdDuration = StdDuration::from_secs(300);

/// Fetches and verifies channels and charts; shared by every reconcile.
pub struct Fetcher {
    limits: Limits,
    retry: RetryPolicy,
    /// How long one [`Fetcher::fetch`] or [`Fetcher::chart`] may take in all.
    deadline: StdDuration,
    cache_dir: PathBuf,
    archive_limits: ArchiveLimits,
    sites: Mutex<HashMap<String, Site>>,
    memo: Mutex<HashMap<(String, String), Memo>>,
    /// When the cache was last swept of a killed writer's temporary files.
    swept: Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("cache_dir", &self.cache_dir)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher keeping chart archives in `cache_dir` (created when needed).
    pub fn new(cache_dir: PathBuf, limits: Limits, retry: RetryPolicy) -> Self {
        Self {
            limits,
            retry,
            deadline: DEFAULT_FETCH_DEADLINE,
            cache_dir,
            archive_limits: ArchiveLimits::default(),
            sites: Mutex::new(HashMap::new()),
            memo: Mutex::new(HashMap::new()),
            swept: Mutex::new(None),
        }
    }

    /// The same fetcher with another overall deadline for each fetch of a
    /// channel and each chart download (every request, retry and backoff
    /// delay of it): per-request timeouts alone let a site that answers each
    /// request just in time, or a long walk of trust roots, hold a check for
    /// as long as it likes. Past the deadline the fetch fails with
    /// [`FetchError::DeadlineExceeded`] (an outage: the next check retries)
    /// and nothing of it is remembered or cached.
    pub fn with_deadline(mut self, deadline: StdDuration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Removes the partial downloads a killed agent left in the cache (they
    /// are never read: a cached archive is only ever taken under its final
    /// name, and checked again), at the first check and then at most every
    /// [`STALE_TEMPORARY_AGE`]; only files that old, so a writer sharing the
    /// directory (a `--once` run beside a controller) keeps its own.
    async fn sweep_cache(&self) {
        let mut swept = self.swept.lock().await;
        if swept.is_some_and(|at| at.elapsed() < STALE_TEMPORARY_AGE) {
            return;
        }
        *swept = Some(std::time::Instant::now());
        let dir = self.cache_dir.clone();
        let removed = tokio::task::spawn_blocking(move || {
            crate::atomic::remove_stale_temporaries(&dir, STALE_TEMPORARY_AGE)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match removed {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(dir = %self.cache_dir.display(), removed = n, "removed partial downloads of an earlier run")
            }
            Err(e) => {
                tracing::warn!(dir = %self.cache_dir.display(), error = %e, "cannot sweep the chart cache")
            }
        }
    }

    /// The chart cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    async fn site(&self, server: &str) -> Result<Site, FetchError> {
        let key = server_key(server).to_owned();
        let mut sites = self.sites.lock().await;
        if let Some(site) = sites.get(&key) {
            return Ok(site.clone());
        }
        let site =
            Site::http(&key, self.limits.clone()).map_err(|source| FetchError::BadServer {
                server: server.to_owned(),
                source,
            })?;
        sites.insert(key, site.clone());
        Ok(site)
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_retries)
            .with_jitter()
    }

    async fn get(
        &self,
        site: &Site,
        path: &SitePath,
        cap: u64,
        etag: Option<&str>,
    ) -> Result<Fetched, FetchError> {
        (|| site.fetch(path, cap, etag))
            .retry(self.backoff())
            .when(SiteError::is_transient)
            .notify(|e, after| {
                tracing::debug!(location = %site.location(path), error = %e, retry_in = ?after, "transient fetch error")
            })
            .await
            .map_err(|source| FetchError::Site {
                what: site.location(path),
                source,
            })
    }

    async fn read(
        &self,
        site: &Site,
        path: &SitePath,
        kind: DocKind,
    ) -> Result<Vec<u8>, FetchError> {
        match self.get(site, path, self.limits.cap(kind), None).await? {
            Fetched::Modified { bytes, .. } => Ok(bytes),
            Fetched::NotModified => Err(FetchError::Site {
                what: site.location(path),
                source: SiteError::Status {
                    location: site.location(path),
                    status: 304,
                },
            }),
        }
    }

    /// Forgets what was remembered about a channel (the next fetch is unconditional).
    pub async fn forget(&self, server: &str, channel: &str) {
        self.memo
            .lock()
            .await
            .remove(&(server_key(server).to_owned(), channel.to_owned()));
    }

    /// Fetches and verifies the channel's index, within the fetcher's deadline.
    pub async fn fetch(&self, req: FetchRequest<'_>) -> Result<FetchOutcome, FetchError> {
        let what = || format!("channel {} from {}", req.channel, req.server);
        self.within(what, self.fetch_index(req)).await
    }

    /// Runs `fetch` within the deadline. A fetch cut off there leaves nothing
    /// behind: the memo is written only after verification, as its last step,
    /// and a chart reaches the cache by an atomic rename or not at all.
    async fn within<T>(
        &self,
        what: impl FnOnce() -> String,
        fetch: impl std::future::Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        tokio::time::timeout(self.deadline, fetch)
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::DeadlineExceeded {
                    what: what(),
                    after: self.deadline,
                })
            })
    }

    async fn fetch_index(&self, req: FetchRequest<'_>) -> Result<FetchOutcome, FetchError> {
        self.sweep_cache().await;
        let site = self.site(req.server).await?;
        let key = (server_key(req.server).to_owned(), req.channel.to_owned());
        let anchor_digest = Sha256Digest::of(req.anchor);
        let index_path = SitePath::index(req.channel).map_err(|source| FetchError::Site {
            what: format!("channel {}", req.channel),
            source,
        })?;
        let sig_path =
            SitePath::index_signatures(req.channel).map_err(|source| FetchError::Site {
                what: format!("channel {}", req.channel),
                source,
            })?;
        let location = site.location(&index_path);
        let sig_location = site.location(&sig_path);

        let remembered = {
            let memo = self.memo.lock().await;
            memo.get(&key)
                .filter(|m| m.anchor == anchor_digest)
                .map(|m| (m.etag.clone(), m.snapshot.clone(), m.trust.clone()))
        };
        let etag = remembered.as_ref().map(|(etag, _, _)| etag.as_str());
        let first = self
            .get(&site, &index_path, self.limits.index_bytes, etag)
            .await?;
        let (mut bytes, mut new_etag) = match first {
            Fetched::NotModified => {
                if let Some((_, snapshot, trust)) = remembered {
                    recheck(&snapshot, &trust, &req)?;
                    return Ok(FetchOutcome {
                        snapshot,
                        not_modified: true,
                        refetched: false,
                    });
                }
                // A 304 without having sent an ETag: read it again in full.
                match self
                    .get(&site, &index_path, self.limits.index_bytes, None)
                    .await?
                {
                    Fetched::Modified { bytes, etag } => (bytes, etag),
                    Fetched::NotModified => {
                        return Err(FetchError::Site {
                            what: location,
                            source: SiteError::Status {
                                location: site.location(&index_path),
                                status: 304,
                            },
                        });
                    }
                }
            }
            Fetched::Modified { bytes, etag } => (bytes, etag),
        };

        // The index changed (or is new to us): walk the trust chain from the anchor.
        let chain = TrustChain::anchor(req.anchor, None, req.anchor_origin).map_err(|source| {
            FetchError::Anchor {
                origin: req.anchor_origin.to_owned(),
                source: Box::new(source),
            }
        })?;
        let chain = (|| walk_site(&site, chain.clone()))
            .retry(self.backoff())
            .when(|e: &TrustError| matches!(e, TrustError::Site(s) if s.is_transient()))
            .await
            .map_err(|source| FetchError::Trust {
                server: req.server.to_owned(),
                source: Box::new(source),
            })?;
        let found = chain.current().version;
        if let Some(floor) = req.trust_floor
            && found < floor
        {
            return Err(FetchError::TrustRootRollback {
                server: req.server.to_owned(),
                found,
                floor,
            });
        }
        let trust = chain.trusted(req.now).map_err(|e| FetchError::Trust {
            server: req.server.to_owned(),
            source: Box::new(TrustError::Verify(e)),
        })?;
        let policy = IndexPolicy {
            channel: req.channel,
            min_sequence: req.min_sequence,
            now: req.now,
        };
        let mut refetched = false;
        let verified = loop {
            let sig = self.read(&site, &sig_path, DocKind::Signatures).await?;
            match verify_index(&bytes, &sig, &trust, policy, &location, &sig_location) {
                Ok(v) => break v,
                // publish renames the signature first, then the index: a reader can
                // land between the two; one more read of the pair settles it.
                Err(VerifyError::ThresholdNotMet { .. }) if !refetched => {
                    refetched = true;
                    match self
                        .get(&site, &index_path, self.limits.index_bytes, None)
                        .await?
                    {
                        Fetched::Modified { bytes: b, etag } => {
                            bytes = b;
                            new_etag = etag;
                        }
                        Fetched::NotModified => {}
                    }
                }
                Err(e) => return Err(FetchError::Verify(Box::new(e))),
            }
        };
        let explicit_timeouts = explicit_timeouts(verified.index());
        let snapshot = Arc::new(ChannelSnapshot {
            verified,
            trust_root_version: found,
            explicit_timeouts,
            location,
            site,
        });
        let mut memo = self.memo.lock().await;
        match new_etag {
            Some(etag) => {
                memo.insert(
                    key,
                    Memo {
                        anchor: anchor_digest,
                        etag,
                        snapshot: snapshot.clone(),
                        trust,
                    },
                );
            }
            None => {
                memo.remove(&key);
            }
        }
        Ok(FetchOutcome {
            snapshot,
            not_modified: false,
            refetched,
        })
    }

    /// The local path of `chart`, downloading it into the cache when it is not
    /// there, within the fetcher's deadline. Cached files are checked again
    /// (size and SHA-256) on every use, and a damaged one is replaced.
    pub async fn chart(
        &self,
        snapshot: &ChannelSnapshot,
        chart: &IndexChart,
    ) -> Result<PathBuf, FetchError> {
        let what = || format!("chart {} {}", chart.name, chart.version);
        self.within(what, self.fetch_chart(snapshot, chart)).await
    }

    async fn fetch_chart(
        &self,
        snapshot: &ChannelSnapshot,
        chart: &IndexChart,
    ) -> Result<PathBuf, FetchError> {
        let label = format!("{} {}", chart.name, chart.version);
        let err = |source: ChartFetchError| FetchError::Chart {
            chart: label.clone(),
            source: Box::new(source),
        };
        let path = self.cache_dir.join(IndexChart::archive_name(&chart.digest));
        if let Ok(bytes) = tokio::fs::read(&path).await {
            if snapshot.verified.check_chart(chart, &bytes).is_ok() {
                return Ok(path);
            }
            tracing::warn!(path = %path.display(), chart = %label, "cached chart does not match its digest; downloading it again");
        }
        let index_path = SitePath::index(&snapshot.verified.index().channel)
            .map_err(|e| err(ChartFetchError::Site(e)))?;
        let site = &snapshot.site;
        let chart_path = site
            .resolve(&index_path, &chart.url)
            .map_err(|e| err(ChartFetchError::Site(e)))?;
        let cap = chart.size.min(self.limits.chart_bytes);
        let bytes = match self.get(site, &chart_path, cap, None).await {
            Ok(Fetched::Modified { bytes, .. }) => bytes,
            Ok(Fetched::NotModified) => {
                return Err(err(ChartFetchError::Site(SiteError::Status {
                    location: site.location(&chart_path),
                    status: 304,
                })));
            }
            Err(FetchError::Site { source, .. }) => return Err(err(ChartFetchError::Site(source))),
            Err(other) => return Err(other),
        };
        crate::site_verify::check_chart_bytes(
            &snapshot.verified,
            chart,
            &bytes,
            &site.location(&chart_path),
            &self.archive_limits,
        )
        .map_err(|e| err(ChartFetchError::Check(e)))?;
        self.store(&path, bytes).await.map_err(err)?;
        Ok(path)
    }

    /// The CustomResourceDefinitions of `chart`'s `crds/`, read in memory from
    /// the cached archive at `path` (what [`Fetcher::chart`] returned) after
    /// its size and SHA-256 are checked against the verified index once more.
    pub async fn chart_crds(
        &self,
        snapshot: &ChannelSnapshot,
        chart: &IndexChart,
        path: &Path,
    ) -> Result<Vec<crate::chart::crds::ChartCrd>, FetchError> {
        let err = |source: ChartFetchError| FetchError::Chart {
            chart: format!("{} {}", chart.name, chart.version),
            source: Box::new(source),
        };
        let cap = chart.size.min(self.limits.chart_bytes);
        let read = crate::fsread::read(path, crate::fsread::Rules::regular(cap));
        let bytes = read.map_err(|e| err(ChartFetchError::CacheRead(e)))?;
        let archive = crate::site_verify::check_chart_bytes(
            &snapshot.verified,
            chart,
            &bytes,
            &path.display().to_string(),
            &self.archive_limits,
        )
        .map_err(|e| err(ChartFetchError::Check(e)))?;
        crate::chart::crds::chart_crds(&archive, &self.archive_limits)
            .map_err(|e| err(ChartFetchError::Crds(e)))
    }

    /// Writes a verified archive to `path` in the cache, atomically: on any
    /// failure (ENOSPC, EROFS, a cache directory that cannot be created) the
    /// temp file is removed and nothing is left under the final name.
    async fn store(&self, path: &Path, bytes: Vec<u8>) -> Result<(), ChartFetchError> {
        let dir = self.cache_dir.clone();
        let target = path.to_path_buf();
        let written = tokio::task::spawn_blocking(move || write_cached(&dir, &target, &bytes))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        written.map_err(|source| ChartFetchError::Cache {
            dir: self.cache_dir.clone(),
            source,
        })
    }
}

/// Expiry moves on while the index stays the same: check it (and the trust
/// root's) again for a remembered index, and the floors too.
fn recheck(
    snapshot: &ChannelSnapshot,
    trust: &TrustedRoot,
    req: &FetchRequest<'_>,
) -> Result<(), FetchError> {
    let index = snapshot.verified.index();
    if req.now >= trust.root().expires {
        return Err(FetchError::Trust {
            server: req.server.to_owned(),
            source: Box::new(TrustError::Verify(VerifyError::Expired {
                origin: trust.origin().to_owned(),
                expires: trust.root().expires,
                now: req.now,
            })),
        });
    }
    if req.now >= index.expires {
        return Err(FetchError::Verify(Box::new(VerifyError::Expired {
            origin: snapshot.location.clone(),
            expires: index.expires,
            now: req.now,
        })));
    }
    if index.sequence < req.min_sequence {
        return Err(FetchError::Verify(Box::new(VerifyError::SequenceTooLow {
            origin: snapshot.location.clone(),
            found: index.sequence,
            minimum: req.min_sequence,
        })));
    }
    if let Some(floor) = req.trust_floor
        && snapshot.trust_root_version < floor
    {
        return Err(FetchError::TrustRootRollback {
            server: req.server.to_owned(),
            found: snapshot.trust_root_version,
            floor,
        });
    }
    Ok(())
}

/// Which entries of the verified index set `health.timeout` themselves,
/// per (release, chart version).
fn explicit_timeouts(index: &crate::format::ChannelIndex) -> BTreeMap<(String, String), Duration> {
    let mut out = BTreeMap::new();
    // A previous entry may carry the same chart version as the current one
    // (a values-only change): the current entry wins, so it is noted first and
    // never overwritten.
    for release in &index.releases {
        if let Some(t) = release.health.timeout {
            out.insert((release.name.clone(), release.chart.version.clone()), t);
        }
    }
    for release in &index.releases {
        for previous in &release.previous {
            if let Some(t) = previous.health.timeout {
                out.entry((release.name.clone(), previous.chart.version.clone()))
                    .or_insert(t);
            }
        }
    }
    out
}

fn write_cached(dir: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    write_cached_with(dir, target, bytes, |file, bytes| file.write_all(bytes))
}

/// [`write_cached`] with the write itself supplied, so tests can fail it
/// half-way as a full disk does. The one atomic writer removes the partial
/// file on any failure (a short write, a failed fsync or rename).
fn write_cached_with(
    dir: &Path,
    target: &Path,
    bytes: &[u8],
    write: impl FnOnce(&mut std::fs::File, &[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::atomic::write_with(target, crate::atomic::WriteOptions::PRIVATE, |file| {
        write(file, bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_timeouts_are_read_from_the_typed_index() {
        let chart = |v: &str| {
            serde_json::json!({
                "name": "x", "version": v,
                "url": format!("../../charts/sha256-{}.tgz", "ab".repeat(32)),
                "digest": format!("sha256:{}", "ab".repeat(32)), "size": 10
            })
        };
        let index: crate::format::ChannelIndex = serde_json::from_value(serde_json::json!({
            "apiVersion": "coxswain.dev/v1", "kind": "ChannelIndex", "channel": "stable",
            "sequence": 7, "published": "2026-11-26T00:00:00Z", "expires": "2026-12-26T00:00:00Z",
            "releases": [
                {"name": "a", "namespace": "a", "chart": chart("1.0.0"), "health": {"timeout": "20s"},
                 "previous": [{"name": "a", "namespace": "a", "chart": chart("0.9.0"), "health": {"test": true}}]},
                {"name": "b", "namespace": "b", "chart": chart("2.0.0"), "health": {"timeout": "30s"},
                 "previous": [{"name": "b", "namespace": "b", "chart": chart("2.0.0"), "health": {"timeout": "3m"}}]},
                {"name": "c", "namespace": "c", "chart": chart("2.0.0")}
            ]
        }))
        .unwrap();
        let t = explicit_timeouts(&index);
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(
            t[&("b".to_owned(), "2.0.0".to_owned())],
            Duration::from_secs(30),
            "a previous entry of the same version does not override the current one"
        );
        assert_eq!(
            t[&("a".to_owned(), "1.0.0".to_owned())],
            Duration::from_secs(20)
        );
    }

    #[test]
    fn cache_writes_are_atomic_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("c/sha256-x.tgz");
        write_cached(&dir.path().join("c"), &target, b"one").unwrap();
        write_cached(&dir.path().join("c"), &target, b"two").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
        let leftovers = std::fs::read_dir(dir.path().join("c")).unwrap().count();
        assert_eq!(leftovers, 1);
    }

    /// ENOSPC, as `write(2)` reports it on Linux.
    fn no_space() -> std::io::Error {
        std::io::Error::from_raw_os_error(28)
    }

    #[test]
    fn a_write_that_fails_half_way_leaves_nothing_behind() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let charts = dir.path().join("charts");
        let target = charts.join("sha256-x.tgz");
        let err = write_cached_with(&charts, &target, b"0123456789", |file, bytes| {
            file.write_all(&bytes[..5])?;
            Err(no_space())
        })
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28));
        assert!(!target.exists(), "no entry under the final name");
        let left: Vec<_> = std::fs::read_dir(&charts).unwrap().collect();
        assert!(
            left.is_empty(),
            "the partial temp file is removed: {left:?}"
        );
        // Space is back: the same write succeeds.
        write_cached(&charts, &target, b"0123456789").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"0123456789");
    }

    #[tokio::test]
    async fn a_check_sweeps_the_partial_downloads_of_a_killed_run() {
        let dir = tempfile::tempdir().unwrap();
        let charts = dir.path().join("charts");
        std::fs::create_dir_all(&charts).unwrap();
        // What a kill -9 during `store` leaves: a temporary file, an hour old.
        let partial = charts.join(".coxswain-tmp-Xy12ab");
        let file = std::fs::File::create(&partial).unwrap();
        file.set_modified(std::time::SystemTime::now() - StdDuration::from_secs(3600))
            .unwrap();
        drop(file);
        let kept = charts.join(format!("sha256-{}.tgz", "ab".repeat(32)));
        std::fs::write(&kept, b"a cached chart").unwrap();
        let fetcher = Fetcher::new(charts.clone(), Limits::default(), RetryPolicy::default());
        // The site does not matter: the sweep comes first.
        let _ = fetcher
            .fetch(FetchRequest {
                server: "not a url",
                channel: "stable",
                anchor: b"{}",
                anchor_origin: "test",
                min_sequence: 0,
                trust_floor: None,
                now: "2026-12-01T00:00:00Z".parse().unwrap(),
            })
            .await;
        assert!(!partial.exists(), "the partial download is gone");
        assert!(kept.exists(), "cached archives stay");
    }

    #[tokio::test]
    async fn a_cache_that_cannot_be_written_is_an_error_naming_it_then_recovers() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where the cache directory should be: create_dir_all
        // fails whoever runs the test (root ignores permission bits).
        let blocker = dir.path().join("cache");
        std::fs::write(&blocker, b"not a directory").unwrap();
        let charts = blocker.join("charts");
        let fetcher = Fetcher::new(charts.clone(), Limits::default(), RetryPolicy::default());
        let target = charts.join("sha256-x.tgz");
        let cause = fetcher.store(&target, b"chart".to_vec()).await.unwrap_err();
        assert!(matches!(cause, ChartFetchError::Cache { ref dir, .. } if *dir == charts));
        let e = FetchError::Chart {
            chart: "certs 1.0.0".into(),
            source: Box::new(cause),
        };
        assert!(
            !e.is_verification(),
            "a local write error is not a verification failure"
        );
        assert!(!e.is_unreachable(), "nor is the site unreachable");
        assert_eq!(e.verification_reason(), None);
        let text = crate::site_verify::describe(&e);
        assert!(
            text.starts_with(&format!(
                "chart certs 1.0.0: cannot write to the chart cache {}: ",
                charts.display()
            )),
            "{text}"
        );
        assert!(text.contains("os error"), "the OS reason is named: {text}");

        // The cause goes away: the next check stores the chart.
        std::fs::remove_file(&blocker).unwrap();
        fetcher.store(&target, b"chart".to_vec()).await.unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"chart");
    }

    #[test]
    fn chart_failures_are_classified_by_whose_fault_they_are() {
        let chart = |source: ChartFetchError| FetchError::Chart {
            chart: "certs 1.0.0".into(),
            source: Box::new(source),
        };
        let full = chart(ChartFetchError::Cache {
            dir: PathBuf::from("/var/cache/coxswain/charts"),
            source: no_space(),
        });
        assert!(!full.is_verification() && !full.is_unreachable());
        let text = crate::site_verify::describe(&full);
        assert_eq!(
            text,
            format!(
                "chart certs 1.0.0: cannot write to the chart cache /var/cache/coxswain/charts: {}",
                no_space()
            ),
            "the OS reason once, not twice"
        );
        assert!(text.contains("No space left on device"), "{text}");

        let cut = chart(ChartFetchError::Site(SiteError::Timeout {
            location: "http://site/charts/sha256-x.tgz".into(),
            after: StdDuration::from_secs(2),
        }));
        assert!(cut.is_unreachable() && !cut.is_verification());
        let missing = chart(ChartFetchError::Site(SiteError::NotFound {
            location: "http://site/charts/sha256-x.tgz".into(),
        }));
        assert!(!missing.is_unreachable() && !missing.is_verification());
        let tampered = chart(ChartFetchError::Check(
            crate::site_verify::ChartCheckError::Verify(VerifyError::ChartSize {
                chart: "certs 1.0.0".into(),
                expected: 10,
                actual: 5,
            }),
        ));
        assert!(tampered.is_verification() && !tampered.is_unreachable());
        assert_eq!(tampered.verification_reason(), Some("chart"));
    }
}
