//! The update site: where a channel's index, its signatures, rotated trust roots and
//! content-addressed chart archives live, and how they are read and written.
//!
//! Layout (the agent relies on it):
//!
//! ```text
//! SITE/channels/<channel>/index.json       the signed channel index
//! SITE/channels/<channel>/index.json.sig   its signature envelope
//! SITE/charts/sha256-<hex>.tgz             chart archives, named by their digest
//! SITE/trust/<N>.json + <N>.json.sig       every trust root version after the first
//! ```
//!
//! A [`Site`] is either a local directory or an HTTP(S) base URL. Every read is bounded in
//! size while it streams (a cap per [`DocKind`]) and, over HTTP, in time (connect and total
//! timeouts). Chart URLs in an index are relative to the index and are resolved with URL
//! joining; a reference that leaves the site (another origin, or above the base path) is
//! refused before anything is fetched. HTTP redirects are followed only within the origin
//! (scheme, host, port) of the URL requested, at most [`MAX_REDIRECTS`] times: a mirror
//! cannot send a reader to another server ([`RedirectRule`]). [`SiteError::is_transient`]
//! tells a retrying caller which failures are worth another attempt.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use sha2::{Digest, Sha256};

/// A relative path inside a site, such as `channels/stable/index.json`.
///
/// Every segment is made of ASCII letters, digits, `.`, `_` and `-`, does not start with a
/// dot (no `.`/`..`, no hidden or temporary files) and is at most 255 bytes long. That
/// keeps the same path meaningful as a URL path and as a file path, with nothing to
/// percent-encode and nothing that could climb out of the site.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SitePath(String);

/// Why a path or URL segment is not a valid [`SitePath`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathProblem {
    /// The path is empty or has an empty segment (`a//b`, a trailing `/`).
    Empty,
    /// A `.` or `..` segment.
    DotSegment,
    /// A segment starting with `.` (hidden and temporary files are not part of a site).
    Hidden,
    /// A character outside `[A-Za-z0-9._-]`.
    BadCharacter,
    /// A segment longer than 255 bytes.
    TooLong,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathProblem::Empty => "has an empty segment",
            PathProblem::DotSegment => "has a `.` or `..` segment",
            PathProblem::Hidden => "has a segment starting with `.`",
            PathProblem::BadCharacter => "has a character outside [A-Za-z0-9._-]",
            PathProblem::TooLong => "has a segment longer than 255 bytes",
        })
    }
}

/// Checks one path segment against the rules of [`SitePath`].
pub fn check_segment(segment: &str) -> Result<(), PathProblem> {
    if segment.is_empty() {
        return Err(PathProblem::Empty);
    }
    if segment == "." || segment == ".." {
        return Err(PathProblem::DotSegment);
    }
    if segment.starts_with('.') {
        return Err(PathProblem::Hidden);
    }
    if segment.len() > 255 {
        return Err(PathProblem::TooLong);
    }
    if !segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(PathProblem::BadCharacter);
    }
    Ok(())
}

impl SitePath {
    /// Parses a `/`-separated relative path, checking every segment.
    pub fn parse(path: &str) -> Result<Self, SiteError> {
        for segment in path.split('/') {
            check_segment(segment).map_err(|problem| SiteError::InvalidPath {
                path: crate::bounded::bounded(path, crate::bounded::MAX_ECHO),
                problem,
            })?;
        }
        Ok(SitePath(path.to_owned()))
    }

    /// `channels/<channel>/index.json`.
    pub fn index(channel: &str) -> Result<Self, SiteError> {
        Self::parse(&format!("channels/{channel}/index.json"))
    }

    /// `channels/<channel>/history/<sequence>.json`: the index of that sequence, kept.
    pub fn history(channel: &str, sequence: u64) -> Result<Self, SiteError> {
        Self::parse(&format!("channels/{channel}/history/{sequence}.json"))
    }

    /// `channels/<channel>/history/<sequence>.json.sig`.
    pub fn history_signatures(channel: &str, sequence: u64) -> Result<Self, SiteError> {
        Self::parse(&format!("channels/{channel}/history/{sequence}.json.sig"))
    }

    /// `channels/<channel>/index.json.sig`.
    pub fn index_signatures(channel: &str) -> Result<Self, SiteError> {
        Self::parse(&format!("channels/{channel}/index.json.sig"))
    }

    /// `trust/<version>.json`.
    pub fn trust_root(version: u64) -> Self {
        SitePath(format!("trust/{version}.json"))
    }

    /// `trust/<version>.json.sig`.
    pub fn trust_root_signatures(version: u64) -> Self {
        SitePath(format!("trust/{version}.json.sig"))
    }

    /// `charts/sha256-<hex>.tgz`, for a lowercase hex sha256 digest.
    pub fn chart(sha256_hex: &str) -> Result<Self, SiteError> {
        if sha256_hex.len() != 64
            || !sha256_hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(SiteError::InvalidPath {
                path: format!("charts/sha256-{sha256_hex}.tgz"),
                problem: PathProblem::BadCharacter,
            });
        }
        Ok(SitePath(format!("charts/sha256-{sha256_hex}.tgz")))
    }

    /// The path as written, `/`-separated.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// This path below a local directory.
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        path.extend(self.segments());
        path
    }
}

impl fmt::Display for SitePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is being fetched; each kind has its own size cap (see [`Limits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocKind {
    /// A channel index (`index.json`).
    Index,
    /// A signature envelope (`*.sig`).
    Signatures,
    /// A trust root (`trust/<N>.json`).
    TrustRoot,
    /// A chart archive (`charts/sha256-<hex>.tgz`).
    Chart,
}

/// Size caps per [`DocKind`] and the HTTP timeouts.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest channel index accepted, in bytes.
    pub index_bytes: u64,
    /// Largest signature envelope accepted, in bytes.
    pub signatures_bytes: u64,
    /// Largest trust root accepted, in bytes.
    pub trust_root_bytes: u64,
    /// Largest chart archive accepted, in bytes (the compressed size).
    pub chart_bytes: u64,
    /// Time allowed to establish a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, from connecting to the last body byte.
    pub total_timeout: Duration,
}

impl Default for Limits {
    /// An index of 1,000 releases is about 700 KB, so 16 MiB leaves room without letting a
    /// server feed us without end; charts share the chart reader's compressed-size cap.
    fn default() -> Self {
        Limits {
            index_bytes: 16 * 1024 * 1024,
            signatures_bytes: 256 * 1024,
            trust_root_bytes: 1024 * 1024,
            chart_bytes: crate::chart::ArchiveLimits::default().compressed_bytes,
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// The size cap for one kind of document.
    pub fn cap(&self, kind: DocKind) -> u64 {
        match kind {
            DocKind::Index => self.index_bytes,
            DocKind::Signatures => self.signatures_bytes,
            DocKind::TrustRoot => self.trust_root_bytes,
            DocKind::Chart => self.chart_bytes,
        }
    }
}

/// Everything that can go wrong reading from or writing to a site.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The site argument is neither an HTTP(S) URL nor a usable directory.
    #[error("invalid site {site}: {reason}")]
    InvalidSite {
        /// The site as given.
        site: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A path inside the site breaks the [`SitePath`] rules.
    #[error("invalid site path {path:?}: it {problem}")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// The rule it breaks.
        problem: PathProblem,
    },
    /// A relative reference (a chart URL in an index) resolves outside the site.
    #[error("reference {reference:?} in {from} resolves to {resolved}, outside the site {base}")]
    Escape {
        /// The reference as written.
        reference: String,
        /// The document it was found in.
        from: String,
        /// Where it resolves to.
        resolved: String,
        /// The site base it must stay below.
        base: String,
    },
    /// The document does not exist (HTTP 404/410, or no such file).
    #[error("{location} not found")]
    NotFound {
        /// URL or file path.
        location: String,
    },
    /// The document is larger than the cap for its kind.
    #[error("{location} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// URL or file path.
        location: String,
        /// The cap, in bytes.
        limit: u64,
    },
    /// The server answered with an unexpected HTTP status.
    #[error("{location}: HTTP status {status}")]
    Status {
        /// URL.
        location: String,
        /// The status code.
        status: u16,
    },
    /// The connect or total timeout ran out.
    #[error("{location}: timed out after {after:?}")]
    Timeout {
        /// URL.
        location: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// No connection could be established (refused, DNS, TLS handshake).
    #[error("{location}: cannot connect")]
    Connect {
        /// URL.
        location: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// The transfer broke off or the server misbehaved mid-response.
    #[error("{location}: transfer failed")]
    Transfer {
        /// URL.
        location: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// The server redirected where coxswain does not follow: to another origin than the
    /// one requested (for a site), from https to http, or too many times.
    #[error("{location} redirects to {to}: coxswain refuses {reason}")]
    Redirect {
        /// The URL requested.
        location: String,
        /// Where the refused redirect pointed.
        to: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot set up the HTTP client")]
    Client(#[source] reqwest::Error),
    /// A local file could not be read or written.
    #[error("cannot access {location}")]
    Io {
        /// File path.
        location: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl SiteError {
    /// Whether another attempt may succeed: timeouts, connection failures, broken
    /// transfers, HTTP 408/429/5xx. Missing or oversized documents, bad paths and escapes
    /// are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            SiteError::Timeout { .. } | SiteError::Connect { .. } | SiteError::Transfer { .. } => {
                true
            }
            SiteError::Status { status, .. } => {
                *status == 408 || *status == 429 || (500..600).contains(status)
            }
            SiteError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
            ),
            SiteError::InvalidSite { .. }
            | SiteError::InvalidPath { .. }
            | SiteError::Escape { .. }
            | SiteError::Redirect { .. }
            | SiteError::NotFound { .. }
            | SiteError::TooLarge { .. }
            | SiteError::Client(_) => false,
        }
    }

    /// Whether the document is simply absent (the end of a trust-root walk, for instance).
    pub fn is_not_found(&self) -> bool {
        matches!(self, SiteError::NotFound { .. })
    }
}

/// The outcome of a conditional read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The document still has the ETag the caller sent (HTTP 304).
    NotModified,
    /// The document's bytes, with its ETag when the site gave one.
    Modified {
        /// The full body, no larger than the cap.
        bytes: Vec<u8>,
        /// The strong or weak ETag, as sent (quotes included).
        etag: Option<String>,
    },
}

/// The strong ETag coxswain uses for a document: `"sha256-<hex>"` of its bytes.
///
/// `coxswain serve` sends it, and a directory site computes it, so conditional reads
/// behave the same way whatever the site is.
pub fn strong_etag(bytes: &[u8]) -> String {
    format!("\"sha256-{}\"", hex::encode(Sha256::digest(bytes)))
}

/// Whether an `If-None-Match` header value matches `etag`, with the weak comparison
/// RFC 9110 prescribes for it (a `W/` prefix is ignored on either side).
pub fn if_none_match_matches(header: &str, etag: &str) -> bool {
    let etag = etag.trim_start_matches("W/");
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || (!candidate.is_empty() && candidate.trim_start_matches("W/") == etag)
    })
}

/// An update site to read from.
#[derive(Clone, Debug)]
pub struct Site {
    source: Source,
    /// The base every path and reference is resolved against; ends with `/`.
    base: Url,
    limits: Limits,
}

#[derive(Clone, Debug)]
enum Source {
    Dir(PathBuf),
    Http(HttpFetcher),
}

impl Site {
    /// Opens `site`: an `http://` or `https://` base URL, or else a local directory.
    pub fn open(site: &str, limits: Limits) -> Result<Self, SiteError> {
        let lower = site.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Self::http(site, limits)
        } else if lower.contains("://") {
            Err(SiteError::InvalidSite {
                site: site.to_owned(),
                reason: "only http://, https:// and local directories are supported".into(),
            })
        } else {
            Self::dir(Path::new(site), limits)
        }
    }

    /// A site in a local directory (which must exist).
    pub fn dir(dir: &Path, limits: Limits) -> Result<Self, SiteError> {
        let invalid = |reason: String| SiteError::InvalidSite {
            site: dir.display().to_string(),
            reason,
        };
        let root = dir
            .canonicalize()
            .map_err(|e| invalid(format!("cannot open the directory: {e}")))?;
        if !root.is_dir() {
            return Err(invalid("not a directory".into()));
        }
        let base = Url::from_directory_path(&root)
            .map_err(|()| invalid("cannot express the directory as a file URL".into()))?;
        Ok(Site {
            source: Source::Dir(root),
            base,
            limits,
        })
    }

    /// A site served over HTTP(S); a base without a trailing `/` gets one, so
    /// `https://example.org/stack` and `https://example.org/stack/` are the same site.
    pub fn http(base: &str, limits: Limits) -> Result<Self, SiteError> {
        let invalid = |reason: String| SiteError::InvalidSite {
            site: base.to_owned(),
            reason,
        };
        let mut url = Url::parse(base).map_err(|e| invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https".into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a site base takes no query or fragment".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "credentials in the URL are not supported (they would end up in logs)".into(),
            ));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let fetcher = HttpFetcher::new(&limits)?;
        Ok(Site {
            source: Source::Http(fetcher),
            base: url,
            limits,
        })
    }

    /// The base URL (`file://` for a directory), ending with `/`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The limits this site enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Where `path` lives, as a URL or file path, for messages.
    pub fn location(&self, path: &SitePath) -> String {
        match &self.source {
            Source::Dir(root) => path.under(root).display().to_string(),
            Source::Http(_) => self.url_of(path).to_string(),
        }
    }

    fn url_of(&self, path: &SitePath) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}{}", self.base.path(), path.as_str());
        url.set_path(&joined);
        url
    }

    /// Resolves `reference` (a chart URL from the document at `from`) against that
    /// document's URL, and refuses it unless the result stays below the site base on the
    /// same origin and is itself a valid [`SitePath`] without query or fragment.
    pub fn resolve(&self, from: &SitePath, reference: &str) -> Result<SitePath, SiteError> {
        let from_url = self.url_of(from);
        let escape = |resolved: String| SiteError::Escape {
            reference: crate::bounded::bounded(reference, crate::bounded::MAX_ECHO),
            from: from.to_string(),
            resolved: crate::bounded::bounded(&resolved, crate::bounded::MAX_ECHO),
            base: self.base.to_string(),
        };
        let target = from_url
            .join(reference)
            .map_err(|e| escape(format!("(not a URL: {e})")))?;
        let same_origin = target.scheme() == self.base.scheme()
            && target.host_str() == self.base.host_str()
            && target.port_or_known_default() == self.base.port_or_known_default()
            && target.username() == self.base.username()
            && target.password().is_none();
        if !same_origin || target.query().is_some() || target.fragment().is_some() {
            return Err(escape(target.to_string()));
        }
        let Some(relative) = target.path().strip_prefix(self.base.path()) else {
            return Err(escape(target.to_string()));
        };
        SitePath::parse(relative).map_err(|_| escape(target.to_string()))
    }

    /// Reads a whole document of `kind`, capped at that kind's limit.
    pub async fn read(&self, path: &SitePath, kind: DocKind) -> Result<Vec<u8>, SiteError> {
        match self.fetch(path, self.limits.cap(kind), None).await? {
            Fetched::Modified { bytes, .. } => Ok(bytes),
            // Unreachable in practice: without If-None-Match a server has no reason to
            // send 304, so treat one as a protocol error rather than an empty document.
            Fetched::NotModified => Err(SiteError::Status {
                location: self.location(path),
                status: 304,
            }),
        }
    }

    /// Reads a document with an explicit size cap and an optional `If-None-Match` ETag.
    ///
    /// The cap is enforced while the body streams: a server announcing or sending more is
    /// cut off at `cap + 1` bytes. A directory site computes [`strong_etag`] from the
    /// file's bytes, so conditional reads work there too.
    pub async fn fetch(
        &self,
        path: &SitePath,
        cap: u64,
        if_none_match: Option<&str>,
    ) -> Result<Fetched, SiteError> {
        match &self.source {
            Source::Dir(root) => {
                let root = root.clone();
                let path = path.clone();
                let etag_wanted = if_none_match.map(str::to_owned);
                let location = self.location(&path);
                tokio::task::spawn_blocking(move || {
                    let bytes = read_capped_file(&root, &path, cap)?;
                    let etag = strong_etag(&bytes);
                    if etag_wanted.is_some_and(|h| if_none_match_matches(&h, &etag)) {
                        return Ok(Fetched::NotModified);
                    }
                    Ok(Fetched::Modified {
                        bytes,
                        etag: Some(etag),
                    })
                })
                .await
                .map_err(|e| SiteError::Io {
                    location,
                    source: std::io::Error::other(e),
                })?
            }
            Source::Http(fetcher) => fetcher.get(&self.url_of(path), cap, if_none_match).await,
        }
    }
}

/// Bounded HTTP(S) GETs of any URL: the client behind HTTP sites, for documents that live
/// outside a site (a Helm repository's `index.yaml` and the charts it lists).
#[derive(Clone, Debug)]
pub struct HttpFetcher {
    client: reqwest::Client,
    connect_timeout: Duration,
    total_timeout: Duration,
    auth: Option<BasicAuth>,
}

/// HTTP basic-auth credentials for one origin: sent only to URLs of that
/// origin, never printed (`Debug` shows the origin alone).
#[derive(Clone)]
pub struct BasicAuth {
    origin: reqwest::Url,
    username: String,
    password: String,
}

impl BasicAuth {
    /// Credentials for the origin (scheme, host, port) of `url`.
    pub fn new(url: &Url, username: String, password: String) -> Self {
        Self {
            origin: url.clone(),
            username,
            password,
        }
    }

    fn applies_to(&self, url: &Url) -> bool {
        self.origin.origin() == url.origin()
    }
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BasicAuth {{ origin: {}, .. }}",
            self.origin.origin().ascii_serialization()
        )
    }
}

impl HttpFetcher {
    /// A fetcher for an update site: the timeouts of `limits` (the size caps are per
    /// call), redirects followed only within the origin first requested.
    pub fn new(limits: &Limits) -> Result<Self, SiteError> {
        Self::with_redirects(limits, RedirectRule::SameOrigin)
    }

    /// A fetcher that follows the redirects `rule` allows.
    pub fn with_redirects(limits: &Limits, rule: RedirectRule) -> Result<Self, SiteError> {
        Self::with_access(limits, rule, Vec::new(), None)
    }

    /// A fetcher that follows the redirects `rule` allows, trusts the `extra_roots`
    /// besides the system's, and sends `auth` to its origin (only there; a redirect to
    /// another host does not carry it).
    pub fn with_access(
        limits: &Limits,
        rule: RedirectRule,
        extra_roots: Vec<reqwest::Certificate>,
        auth: Option<BasicAuth>,
    ) -> Result<Self, SiteError> {
        Ok(HttpFetcher {
            auth,
            client: http_client(limits, rule, extra_roots)?,
            connect_timeout: limits.connect_timeout,
            total_timeout: limits.total_timeout,
        })
    }

    /// GETs `url`, reading at most `cap` bytes (enforced while the body streams), with an
    /// optional `If-None-Match`; 404 and 410 are [`SiteError::NotFound`].
    pub async fn get(
        &self,
        url: &Url,
        cap: u64,
        if_none_match: Option<&str>,
    ) -> Result<Fetched, SiteError> {
        let location = url.to_string();
        let classify = |source: reqwest::Error| {
            if let Some(refused) = refused_redirect(&source) {
                SiteError::Redirect {
                    location: location.clone(),
                    to: refused.to.clone(),
                    reason: refused.reason.clone(),
                }
            } else if source.is_timeout() {
                SiteError::Timeout {
                    location: location.clone(),
                    after: if source.is_connect() {
                        self.connect_timeout
                    } else {
                        self.total_timeout
                    },
                }
            } else if source.is_connect() {
                SiteError::Connect {
                    location: location.clone(),
                    source,
                }
            } else {
                SiteError::Transfer {
                    location: location.clone(),
                    source,
                }
            }
        };
        let mut request = self.client.get(url.clone());
        if let Some(auth) = self.auth.as_ref().filter(|a| a.applies_to(url)) {
            // reqwest marks the header sensitive and drops it on a redirect to another host.
            request = request.basic_auth(&auth.username, Some(&auth.password));
        }
        if let Some(etag) = if_none_match {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let mut response = request.send().await.map_err(classify)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED && if_none_match.is_some() {
            return Ok(Fetched::NotModified);
        }
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(SiteError::NotFound { location });
        }
        if !status.is_success() {
            return Err(SiteError::Status {
                location,
                status: status.as_u16(),
            });
        }
        let too_large = || SiteError::TooLarge {
            location: location.clone(),
            limit: cap,
        };
        if response.content_length().is_some_and(|len| len > cap) {
            return Err(too_large());
        }
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if bytes.len() as u64 + chunk.len() as u64 > cap {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched::Modified { bytes, etag })
    }
}

/// The most redirects one request follows.
pub const MAX_REDIRECTS: usize = 5;

/// Which redirects an [`HttpFetcher`] follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectRule {
    /// Only to the origin (scheme, host and port) of the URL first requested: the rule for
    /// everything read from an update site (indexes, signatures, trust roots, charts).
    SameOrigin,
    /// To any origin except from https down to http: for publishing from a Helm repository,
    /// whose charts commonly live on another host (release downloads, object stores).
    AnyOrigin,
}

/// A redirect the client refused; found again in the `reqwest::Error`'s source chain.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
struct RedirectRefused {
    /// Where the redirect pointed.
    to: String,
    reason: String,
}

impl RedirectRule {
    /// The reqwest policy: at most [`MAX_REDIRECTS`], never https to http, and for
    /// [`RedirectRule::SameOrigin`] never to another origin.
    fn policy(self) -> reqwest::redirect::Policy {
        reqwest::redirect::Policy::custom(move |attempt| {
            let to = attempt.url().clone();
            let first = attempt.previous().first().cloned();
            let refuse = |reason: String| RedirectRefused {
                to: crate::bounded::bounded(to.as_str(), crate::bounded::MAX_ECHO),
                reason,
            };
            let downgrade =
                to.scheme() == "http" && attempt.previous().iter().any(|u| u.scheme() == "https");
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(refuse(format!("more than {MAX_REDIRECTS} redirects")))
            } else if downgrade {
                attempt.error(refuse("a redirect from https to http".into()))
            } else if let Some(first) = first
                .filter(|first| self == RedirectRule::SameOrigin && first.origin() != to.origin())
            {
                let origin = first.origin().ascii_serialization();
                attempt.error(refuse(format!(
                    "a redirect to another origin than {origin} ({})",
                    to.origin().ascii_serialization()
                )))
            } else {
                attempt.follow()
            }
        })
    }
}

/// The HTTP client: rustls with the platform's roots, bounded connect and total time, and
/// the redirects `rule` allows.
pub(crate) fn http_client(
    limits: &Limits,
    rule: RedirectRule,
    extra_roots: Vec<reqwest::Certificate>,
) -> Result<reqwest::Client, SiteError> {
    reqwest::Client::builder()
        .tls_certs_merge(extra_roots)
        .user_agent(concat!("coxswain/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.total_timeout)
        .redirect(rule.policy())
        .build()
        .map_err(SiteError::Client)
}

/// The redirect refusal inside a reqwest error, if that is what it is.
fn refused_redirect(error: &reqwest::Error) -> Option<&RedirectRefused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<RedirectRefused>() {
            return Some(refused);
        }
        source = e.source();
    }
    None
}

/// Reads `root/path` with at most `cap` bytes, refusing anything that is not a regular
/// file below `root` once symlinks are resolved.
fn read_capped_file(root: &Path, path: &SitePath, cap: u64) -> Result<Vec<u8>, SiteError> {
    let full = path.under(root);
    let location = full.display().to_string();
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            SiteError::NotFound {
                location: location.clone(),
            }
        } else {
            SiteError::Io {
                location: location.clone(),
                source,
            }
        }
    };
    let real = full.canonicalize().map_err(io)?;
    if !real.starts_with(root) {
        return Err(SiteError::Io {
            location: location.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "resolves to {} outside the site directory {}",
                    real.display(),
                    root.display()
                ),
            ),
        });
    }
    // A FIFO or a device in a site directory is refused before it is opened, so it cannot
    // block a reader; the cap holds before and while reading.
    crate::fsread::read(&real, crate::fsread::Rules::regular(cap)).map_err(|e| match e {
        crate::fsread::ReadError::Io { source, .. } => io(source),
        crate::fsread::ReadError::TooLarge { .. } => SiteError::TooLarge {
            location: location.clone(),
            limit: cap,
        },
        other => SiteError::NotFound {
            location: format!("{location} ({other})"),
        },
    })
}

/// Refuses to write `path` below `root` when the directory it would land in leaves the
/// site directory through a symbolic link (`charts -> /elsewhere`): the nearest existing
/// directory on the way, links resolved, must lie below `root`, links resolved.
fn check_inside(root: &Path, path: &SitePath) -> Result<(), SiteError> {
    let target = path.under(root);
    let location = target.display().to_string();
    let io = |source: std::io::Error| SiteError::Io {
        location: location.clone(),
        source,
    };
    let real_root = match root.canonicalize() {
        Ok(real) => real,
        // A site directory that does not exist yet has nothing below it to follow.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let mut dir = target.parent().unwrap_or(root).to_path_buf();
    loop {
        match std::fs::symlink_metadata(&dir) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir != root => {
                match dir.parent() {
                    Some(parent) => dir = parent.to_path_buf(),
                    None => return Ok(()),
                }
            }
            Err(e) => return Err(io(e)),
        }
    }
    let real = dir.canonicalize().map_err(io)?;
    if real.starts_with(&real_root) {
        Ok(())
    } else {
        Err(io(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} resolves to {}, outside the site directory {}: publish never follows a \
                 link out of the site",
                dir.display(),
                real.display(),
                real_root.display()
            ),
        )))
    }
}

/// Writes documents into a local site directory, each atomically.
#[derive(Clone, Debug)]
pub struct SiteWriter {
    root: PathBuf,
}

impl SiteWriter {
    /// A writer for the site in `root` (created on the first write if missing).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SiteWriter { root: root.into() }
    }

    /// The site directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks, without writing, that `path` would be written inside the site directory (no
    /// symbolic link on the way leads out of it); [`SiteWriter::write`] checks it too.
    pub fn check_target(&self, path: &SitePath) -> Result<(), SiteError> {
        check_inside(&self.root, path)
    }

    /// The bytes of the regular file at `path` (never through a link), if there is one of
    /// at most `cap` bytes.
    pub fn existing(&self, path: &SitePath, cap: u64) -> Option<Vec<u8>> {
        crate::fsread::read(&path.under(&self.root), crate::fsread::Rules::no_links(cap)).ok()
    }

    /// Writes `bytes` to `path` through a temporary file in the same directory, fsynced
    /// and renamed over the target, then fsyncs the directory: a reader sees the old
    /// document or the new one, never half of one, even across a crash. The file is made
    /// 0644 (a site is public; temp files start out 0600).
    pub fn write(&self, path: &SitePath, bytes: &[u8]) -> Result<PathBuf, SiteError> {
        self.check_target(path)?;
        let target = path.under(&self.root);
        let location = target.display().to_string();
        let io = |source: std::io::Error| SiteError::Io {
            location: location.clone(),
            source,
        };
        crate::atomic::write(&target, bytes, crate::atomic::WriteOptions::PUBLIC).map_err(io)?;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_site(base: &str) -> Site {
        Site::http(base, Limits::default()).expect("site")
    }

    #[test]
    fn site_paths_accept_the_layout_and_refuse_escapes() {
        assert_eq!(
            SitePath::index("stable").unwrap().as_str(),
            "channels/stable/index.json"
        );
        assert_eq!(SitePath::trust_root(3).as_str(), "trust/3.json");
        let hex = "ab".repeat(32);
        assert_eq!(
            SitePath::chart(&hex).unwrap().as_str(),
            format!("charts/sha256-{hex}.tgz")
        );
        assert!(SitePath::chart("ABCD").is_err());
        for (bad, problem) in [
            ("", PathProblem::Empty),
            ("a//b", PathProblem::Empty),
            ("a/", PathProblem::Empty),
            ("../x", PathProblem::DotSegment),
            ("a/./b", PathProblem::DotSegment),
            ("a/.tmp-1", PathProblem::Hidden),
            ("a\\b", PathProblem::BadCharacter),
            ("a%2e", PathProblem::BadCharacter),
            ("/abs", PathProblem::Empty),
        ] {
            match SitePath::parse(bad) {
                Err(SiteError::InvalidPath { problem: p, path }) => {
                    assert_eq!(p, problem, "{bad}");
                    assert_eq!(path, bad);
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        assert!(SitePath::index("../x").is_err());
    }

    #[test]
    fn base_without_trailing_slash_gets_one() {
        let site = http_site("https://example.org/stack");
        assert_eq!(site.base().as_str(), "https://example.org/stack/");
        assert_eq!(
            site.location(&SitePath::index("beta").unwrap()),
            "https://example.org/stack/channels/beta/index.json"
        );
    }

    #[test]
    fn open_refuses_other_schemes_and_credentials() {
        assert!(matches!(
            Site::open("ftp://example.org/x", Limits::default()),
            Err(SiteError::InvalidSite { .. })
        ));
        assert!(matches!(
            Site::open("https://user:pw@example.org/", Limits::default()),
            Err(SiteError::InvalidSite { .. })
        ));
        assert!(matches!(
            Site::open("/nonexistent/coxswain/site", Limits::default()),
            Err(SiteError::InvalidSite { .. })
        ));
    }

    #[test]
    fn chart_references_resolve_relative_to_the_index() {
        let site = http_site("https://example.org/stack");
        let index = SitePath::index("stable").unwrap();
        let hex = "0f".repeat(32);
        let resolved = site
            .resolve(&index, &format!("../../charts/sha256-{hex}.tgz"))
            .unwrap();
        assert_eq!(resolved, SitePath::chart(&hex).unwrap());
        // An absolute URL on the same site is fine too.
        let resolved = site
            .resolve(
                &index,
                &format!("https://example.org/stack/charts/sha256-{hex}.tgz"),
            )
            .unwrap();
        assert_eq!(resolved, SitePath::chart(&hex).unwrap());
    }

    #[test]
    fn chart_references_that_leave_the_site_are_refused() {
        let site = http_site("https://example.org/stack/");
        let index = SitePath::index("stable").unwrap();
        for reference in [
            "../../../charts/x.tgz",
            "../../%2e%2e/charts/x.tgz",
            "..\\..\\..\\x.tgz",
            "/charts/x.tgz",
            "https://evil.example/stack/charts/x.tgz",
            "http://example.org/stack/charts/x.tgz",
            "https://example.org:8443/stack/charts/x.tgz",
            "//evil.example/stack/charts/x.tgz",
            "../../charts/x.tgz?x=1",
            "../../charts/.hidden.tgz",
            "../../charts/a%2fb.tgz",
            "file:///etc/passwd",
        ] {
            match site.resolve(&index, reference) {
                Err(SiteError::Escape {
                    reference: r, base, ..
                }) => {
                    assert_eq!(r, reference);
                    assert_eq!(base, "https://example.org/stack/");
                }
                other => panic!("{reference:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn transient_and_permanent_errors_are_told_apart() {
        let status = |status| SiteError::Status {
            location: "u".into(),
            status,
        };
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(403).is_transient());
        assert!(
            SiteError::Timeout {
                location: "u".into(),
                after: Duration::from_secs(1)
            }
            .is_transient()
        );
        let not_found = SiteError::NotFound {
            location: "u".into(),
        };
        assert!(!not_found.is_transient());
        assert!(not_found.is_not_found());
        assert!(
            !SiteError::TooLarge {
                location: "u".into(),
                limit: 1
            }
            .is_transient()
        );
    }

    #[test]
    fn if_none_match_uses_weak_comparison_and_lists() {
        let etag = strong_etag(b"hello");
        assert!(etag.starts_with("\"sha256-") && etag.ends_with('"'));
        assert!(if_none_match_matches(&etag, &etag));
        assert!(if_none_match_matches(&format!("\"x\", W/{etag}"), &etag));
        assert!(if_none_match_matches("*", &etag));
        assert!(!if_none_match_matches("\"x\"", &etag));
        assert!(!if_none_match_matches("", &etag));
    }

    #[tokio::test]
    async fn directory_sites_read_capped_and_conditionally() {
        let dir = tempfile::tempdir().unwrap();
        let writer = SiteWriter::new(dir.path());
        let index = SitePath::index("stable").unwrap();
        let written = writer.write(&index, b"{\"a\":1}").unwrap();
        assert_eq!(std::fs::read(&written).unwrap(), b"{\"a\":1}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&written).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        // No temp files are left behind.
        let names: Vec<_> = std::fs::read_dir(written.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["index.json"]);

        let site = Site::dir(dir.path(), Limits::default()).unwrap();
        let fetched = site.fetch(&index, 100, None).await.unwrap();
        let Fetched::Modified { bytes, etag } = fetched else {
            panic!("expected a body")
        };
        assert_eq!(bytes, b"{\"a\":1}");
        let etag = etag.unwrap();
        assert_eq!(
            site.fetch(&index, 100, Some(&etag)).await.unwrap(),
            Fetched::NotModified
        );
        match site.fetch(&index, 3, None).await {
            Err(SiteError::TooLarge { location, limit: 3 }) => {
                assert!(location.ends_with("index.json"), "{location}")
            }
            other => panic!("{other:?}"),
        }
        let missing = SitePath::index("beta").unwrap();
        assert!(
            site.read(&missing, DocKind::Index)
                .await
                .unwrap_err()
                .is_not_found()
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn directory_sites_refuse_symlinks_out_of_the_site() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("trust")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret"),
            dir.path().join("trust/2.json"),
        )
        .unwrap();
        let site = Site::dir(dir.path(), Limits::default()).unwrap();
        match site
            .read(&SitePath::trust_root(2), DocKind::TrustRoot)
            .await
        {
            Err(SiteError::Io { location, source }) => {
                assert!(location.ends_with("trust/2.json"));
                assert!(source.to_string().contains("outside the site"), "{source}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_https_capable_client_builds_without_panicking() {
        // reqwest's rustls backend panics at build time when no crypto provider can be
        // chosen (two providers linked and none installed); this is the guard.
        let site = Site::http("https://example.org/", Limits::default()).unwrap();
        assert_eq!(site.base().scheme(), "https");
    }
}
