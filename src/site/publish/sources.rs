//! Turning a release's chart source into checked archive bytes.
//!
//! - `path`: packed by [`crate::chart::pack_dir`] (deterministic); the directory's name
//!   must equal the chart's name (the rule `helm lint` and chart-testing apply, so a
//!   directory cannot silently hold another chart).
//! - `archive`: used as is; its file name must be `<name>-<version>.tgz`, as
//!   `helm package` writes it, and agree with its `Chart.yaml`.
//! - `repo`: `index.yaml` is downloaded from the repository (bounded in size and time),
//!   the entry for `name` and `version` picked, its first URL resolved against the
//!   repository URL, the archive downloaded and checked against the entry's `digest`
//!   when the index gives one.
//! - `oci`: `helm pull oci://... --version V` with the real helm (`COXSWAIN_HELM`, else
//!   `helm` on `PATH`) into a temporary directory, bounded in time.
//!
//! Every archive, whatever its source, is then read with the safe reader
//! ([`ChartArchive::read`]) and its `Chart.yaml` name and version compared with what the
//! spec asked for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

use crate::chart::{ArchiveLimits, ChartArchive, pack_dir};
use crate::format::{ChartSource, ChartVersion, OciChart, RepoChart, Sha256Digest};
use crate::site::{self, Fetched, HttpFetcher, RedirectRule, SiteError};
use crate::site_verify::describe;
use crate::upstream::repo::RepoIndex;
use crate::yaml;

use super::PublishError;

/// A chart archive ready to publish: its bytes and what the safe reader found in them.
#[derive(Debug, Clone)]
pub struct ResolvedChart {
    /// The `.tgz` bytes that will be published.
    pub bytes: Vec<u8>,
    /// The checked archive (name, version, digest, size).
    pub archive: ChartArchive,
    /// Where it came from, for messages and the summary.
    pub origin: String,
}

/// Largest Helm repository `index.yaml` read (large public repositories ship tens of MB).
const MAX_REPO_INDEX_BYTES: usize = 64 << 20;

/// How long `helm pull` may take.
const HELM_PULL_TIMEOUT: Duration = Duration::from_secs(300);

/// Largest CA bundle accepted for `caFile`.
const MAX_CA_FILE_BYTES: u64 = 1 << 20;

/// Most bytes of helm's error output kept for a message.
const HELM_STDERR_BYTES: usize = 4096;

/// Where and how chart sources are fetched.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// The directory chart paths and archives are relative to (the spec's).
    pub spec_dir: PathBuf,
    /// Limits for every archive.
    pub archive_limits: ArchiveLimits,
    /// Limits (size, time) for repository downloads.
    pub site_limits: site::Limits,
    /// The helm binary used for `oci` charts.
    pub helm: PathBuf,
    /// Whether `file://` dependencies may lie outside the spec's directory and the
    /// working directory (`--allow-outside-spec-dir`).
    pub allow_outside_spec_dir: bool,
}

/// Resolves and checks the chart of `release`.
pub async fn resolve(
    release: &str,
    source: &ChartSource,
    opts: &SourceOptions,
) -> Result<ResolvedChart, PublishError> {
    let source_err = |reason: String| source_error(release, reason);
    match source {
        ChartSource::Path(chart_dir) => {
            let dir = opts.spec_dir.join(&chart_dir.path);
            let packed = if chart_dir.builds_dependencies() {
                super::dependencies::build(release, &dir, opts).await?
            } else {
                pack_dir(&dir, &opts.archive_limits)
                    .map_err(|e| chart_error(release, with_build_hint(e)))?
            };
            let dir_name = dir
                .canonicalize()
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            check_identity(
                release,
                &packed.archive,
                &dir_name,
                None,
                &dir.display().to_string(),
            )?;
            Ok(ResolvedChart {
                bytes: packed.bytes,
                archive: packed.archive,
                origin: dir.display().to_string(),
            })
        }
        ChartSource::Archive(file) => {
            let path = opts.spec_dir.join(file);
            let origin = path.display().to_string();
            let bytes = read_file_capped(&path, opts.archive_limits.compressed_bytes)
                .map_err(|e| source_err(e.to_string()))?;
            let archive = ChartArchive::read(&bytes, &origin, None, &opts.archive_limits)
                .map_err(|e| chart_error(release, e))?;
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let expected = format!("{}-{}.tgz", archive.name(), archive.version());
            if file_name != expected {
                return Err(source_err(format!(
                    "archive {origin} holds chart {} {}, so it must be named {expected} \
                     (as `helm package` names it)",
                    archive.name(),
                    archive.version()
                )));
            }
            Ok(ResolvedChart {
                bytes,
                archive,
                origin,
            })
        }
        ChartSource::Repo(repo) => resolve_repo(release, repo, opts).await,
        ChartSource::Oci(oci) => resolve_oci(release, oci, opts).await,
    }
}

/// A dependency missing from `charts/` of a chart directory: the spec can ask publish
/// to build them.
fn with_build_hint(mut error: crate::chart::ChartError) -> crate::chart::ChartError {
    if let crate::chart::ChartErrorKind::Dependency { reason, .. } = &mut error.kind
        && reason.contains("is not in charts/")
    {
        reason.push_str(
            "; or let publish build them as `helm dependency build` does, from Chart.lock: \
             `dependencies: build` on this release's chart source",
        );
    }
    error
}

/// Checks the archive's `Chart.yaml` against the name (and version) the spec implies.
fn check_identity(
    release: &str,
    archive: &ChartArchive,
    expected_name: &str,
    expected_version: Option<&str>,
    origin: &str,
) -> Result<(), PublishError> {
    if archive.name() != expected_name {
        return Err(PublishError::ChartMismatch {
            from_directory: expected_version.is_none(),
            release: release.to_owned(),
            origin: origin.to_owned(),
            field: "name",
            expected: expected_name.to_owned(),
            found: archive.name().to_owned(),
        });
    }
    if let Some(version) = expected_version {
        // Compared by precedence, as Helm picks a chart version (`1.14.2` finds
        // `v1.14.2`); the index keeps Chart.yaml's spelling.
        let same = ChartVersion::parse(version).is_ok_and(|v| v.same_as(archive.version()));
        if !same {
            return Err(PublishError::ChartMismatch {
                from_directory: false,
                release: release.to_owned(),
                origin: origin.to_owned(),
                field: "version",
                expected: version.to_owned(),
                found: archive.version().to_string(),
            });
        }
    }
    Ok(())
}

/// Reads a regular file of at most `cap` bytes (see [`crate::fsread`]).
fn read_file_capped(path: &Path, cap: u64) -> Result<Vec<u8>, crate::fsread::ReadError> {
    crate::fsread::read(path, crate::fsread::Rules::regular(cap))
}

/// A Helm repository as the spec describes it, opened: its base URL (a directory), a
/// fetcher with the spec's CA and credentials, and its `index.yaml`.
pub struct OpenedRepo {
    /// The repository URL as a directory (relative chart URLs resolve against it).
    pub base: Url,
    /// The fetcher for its documents (redirects may change origin, never to http).
    pub fetcher: HttpFetcher,
    /// The index.
    pub index: RepoIndex,
    /// Where the index came from.
    pub index_location: String,
}

/// Why a repository could not be opened.
#[derive(Debug)]
pub enum RepoOpenError {
    /// The spec's description of it is unusable (URL, CA file, credentials), or its
    /// index is not readable.
    Spec(String),
    /// The download failed.
    Fetch(SiteError),
}

/// Opens `repo`: the one path that reads a Helm repository's `index.yaml`, for publish
/// and for `upstream check`. Bounded in size and time; the spec's CA and credentials
/// apply.
pub async fn open_repo(
    repo: &RepoChart,
    spec_dir: &Path,
    limits: &site::Limits,
) -> Result<OpenedRepo, RepoOpenError> {
    let spec_err = |reason: String| RepoOpenError::Spec(reason);
    // Helm resolves relative chart URLs against the repository URL as a directory.
    let base = if repo.url.ends_with('/') {
        repo.url.clone()
    } else {
        format!("{}/", repo.url)
    };
    let base =
        Url::parse(&base).map_err(|e| spec_err(format!("repository url {}: {e}", repo.url)))?;
    let (roots, auth) = repo_access(repo, &base, spec_dir).map_err(spec_err)?;
    // A Helm repository's charts commonly live on another host (release downloads, object
    // stores), so its redirects may change origin; never from https down to http.
    let fetcher = HttpFetcher::with_access(limits, RedirectRule::AnyOrigin, roots, auth)
        .map_err(RepoOpenError::Fetch)?;
    let index_url = base
        .join("index.yaml")
        .map_err(|e| spec_err(format!("repository url {}: {e}", repo.url)))?;
    let index_location = index_url.to_string();
    let index_bytes = fetch_bytes(&fetcher, &index_url, MAX_REPO_INDEX_BYTES as u64)
        .await
        .map_err(RepoOpenError::Fetch)?;
    let yaml_limits = yaml::Limits {
        max_bytes: MAX_REPO_INDEX_BYTES,
        max_depth: 64,
        max_aliases: 10_000,
        max_alias_replayed_events: 1_000_000,
        max_nodes: 20_000_000,
    };
    let index: RepoIndex =
        yaml::from_slice(&index_bytes, &index_location, yaml_limits).map_err(|e| {
            spec_err(format!(
                "cannot read the repository index: {}",
                describe(&e)
            ))
        })?;
    Ok(OpenedRepo {
        base,
        fetcher,
        index,
        index_location,
    })
}

async fn resolve_repo(
    release: &str,
    repo: &RepoChart,
    opts: &SourceOptions,
) -> Result<ResolvedChart, PublishError> {
    let (bytes, origin) = fetch_repo_chart(repo, opts).await.map_err(|e| match e {
        FetchFailure::Reason(reason) => source_error(release, reason),
        FetchFailure::Site(source) => repo_fetch_error(release, repo, source),
    })?;
    downloaded(release, bytes, origin, &repo.name, &repo.version, opts)
}

/// Why a chart could not be downloaded.
pub(super) enum FetchFailure {
    /// The repository, its index or the archive is not usable (said in words).
    Reason(String),
    /// The download itself failed.
    Site(SiteError),
}

/// Downloads chart `repo.name` at `repo.version` from a Helm repository: its index
/// through [`open_repo`], the entry's first URL resolved against the repository, the
/// archive bounded in size and time and checked against the entry's `digest` when the
/// index gives one. Returns the bytes and the URL they came from.
pub(super) async fn fetch_repo_chart(
    repo: &RepoChart,
    opts: &SourceOptions,
) -> Result<(Vec<u8>, String), FetchFailure> {
    let opened = open_repo_for_fetch(repo, opts).await?;
    fetch_from_repo(&opened, repo, opts).await
}

/// [`open_repo`] with its errors as a [`FetchFailure`].
pub(super) async fn open_repo_for_fetch(
    repo: &RepoChart,
    opts: &SourceOptions,
) -> Result<OpenedRepo, FetchFailure> {
    open_repo(repo, &opts.spec_dir, &opts.site_limits)
        .await
        .map_err(|e| match e {
            RepoOpenError::Spec(r) => FetchFailure::Reason(r),
            RepoOpenError::Fetch(source) => FetchFailure::Site(source),
        })
}

/// Downloads chart `repo.name` at `repo.version` from a repository already opened (see
/// [`fetch_repo_chart`]).
pub(super) async fn fetch_from_repo(
    opened: &OpenedRepo,
    repo: &RepoChart,
    opts: &SourceOptions,
) -> Result<(Vec<u8>, String), FetchFailure> {
    let reason = FetchFailure::Reason;
    let OpenedRepo {
        base,
        fetcher,
        index,
        index_location,
    } = opened;
    let wanted = ChartVersion::parse(&repo.version)
        .map_err(|e| reason(format!("version {}: {e}", repo.version)))?;
    let entry = index
        .entries
        .get(&repo.name)
        .and_then(|list| {
            // The exact spelling first, then any spelling of the same version.
            list.iter().find(|e| e.version == repo.version).or_else(|| {
                list.iter()
                    .find(|e| ChartVersion::parse(&e.version).is_ok_and(|v| v.same_as(&wanted)))
            })
        })
        .ok_or_else(|| {
            reason(format!(
                "{index_location} has no chart {} version {}",
                repo.name, repo.version
            ))
        })?;
    let first = entry.urls.first().ok_or_else(|| {
        reason(format!(
            "{index_location}: chart {} {} lists no download URL",
            repo.name, repo.version
        ))
    })?;
    let chart_url = base
        .join(first)
        .map_err(|e| reason(format!("chart URL {first:?} in {index_location}: {e}")))?;
    if !matches!(chart_url.scheme(), "http" | "https") {
        return Err(reason(format!(
            "chart URL {chart_url} in {index_location} is not http or https"
        )));
    }
    let bytes = fetch_bytes(fetcher, &chart_url, opts.archive_limits.compressed_bytes)
        .await
        .map_err(FetchFailure::Site)?;
    let origin = chart_url.to_string();
    if let Some(digest) = entry.digest.as_deref().filter(|d| !d.is_empty()) {
        let actual = Sha256Digest::of(&bytes).hex();
        let expected = digest
            .strip_prefix("sha256:")
            .unwrap_or(digest)
            .to_ascii_lowercase();
        if actual != expected {
            return Err(reason(format!(
                "{origin} has sha256 {actual}, but {index_location} says {expected}"
            )));
        }
    }
    Ok((bytes, origin))
}

/// The extra CA roots (`caFile`) and the credentials (`auth`, from the
/// environment) of a repository; errors name the spec field.
fn repo_access(
    repo: &RepoChart,
    base: &Url,
    spec_dir: &Path,
) -> Result<(Vec<reqwest::Certificate>, Option<site::BasicAuth>), String> {
    let mut roots = Vec::new();
    if let Some(file) = &repo.ca_file {
        let path = spec_dir.join(file);
        let pem = read_file_capped(&path, MAX_CA_FILE_BYTES)
            .map_err(|e| format!("chart.repo.caFile: {e}"))?;
        roots = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                format!(
                    "chart.repo.caFile: {} holds no PEM certificate",
                    path.display()
                )
            })?;
    }
    let auth = match &repo.auth {
        None => None,
        Some(auth) => {
            let var =
                |field: &str, name: &str| {
                    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
                    format!(
                        "chart.repo.auth.{field}: the environment variable {name} is not set \
                         (or empty, or not UTF-8); publish reads the repository's credentials \
                         from there"
                    )
                })
                };
            Some(site::BasicAuth::new(
                base,
                var("usernameEnv", &auth.username_env)?,
                var("passwordEnv", &auth.password_env)?,
            ))
        }
    };
    Ok((roots, auth))
}

/// A repository download that failed, with the spec field to set when the
/// reason is credentials or TLS.
fn repo_fetch_error(release: &str, repo: &RepoChart, source: SiteError) -> PublishError {
    match repo_fetch_hint(repo, &source) {
        Some(hint) => source_error(release, format!("{}; {hint}", describe(&source))),
        None => PublishError::Fetch {
            release: release.to_owned(),
            source,
        },
    }
}

/// What to set in the spec when a repository download failed for credentials or TLS.
pub fn repo_fetch_hint(repo: &RepoChart, source: &SiteError) -> Option<String> {
    match source {
        SiteError::Status {
            status: 401 | 403, ..
        } => Some(match &repo.auth {
            None => "the repository asks for credentials: set `chart.repo.auth` \
                     (usernameEnv, passwordEnv: the environment variables that hold them)"
                .to_owned(),
            Some(auth) => format!(
                "the repository refused the credentials from ${} and ${}",
                auth.username_env, auth.password_env
            ),
        }),
        SiteError::Connect { .. } | SiteError::Transfer { .. }
            if describe(source).contains("certificate") =>
        {
            Some(if repo.ca_file.is_some() {
                "the repository's TLS certificate does not verify against `chart.repo.caFile`"
                    .to_owned()
            } else {
                "the repository's TLS certificate is not trusted: set `chart.repo.caFile` to \
                 the PEM file of the private CA that signed it"
                    .to_owned()
            })
        }
        _ => None,
    }
}

/// A bounded GET of a whole document.
async fn fetch_bytes(fetcher: &HttpFetcher, url: &Url, cap: u64) -> Result<Vec<u8>, SiteError> {
    match fetcher.get(url, cap, None).await? {
        Fetched::Modified { bytes, .. } => Ok(bytes),
        // Without If-None-Match a 304 is a protocol error, not an empty document.
        Fetched::NotModified => Err(SiteError::Status {
            location: url.to_string(),
            status: 304,
        }),
    }
}

async fn resolve_oci(
    release: &str,
    oci: &OciChart,
    opts: &SourceOptions,
) -> Result<ResolvedChart, PublishError> {
    let (bytes, origin) = pull_oci_chart(oci, opts)
        .await
        .map_err(|reason| source_error(release, reason))?;
    let expected_name = oci.reference.rsplit('/').next().unwrap_or_default();
    downloaded(release, bytes, origin, expected_name, &oci.version, opts)
}

/// Pulls `oci.reference` at `oci.version` with the real helm (`helm pull`, bounded in
/// time, into a temporary directory) and reads the archive it left, bounded in size.
/// Returns the bytes and `ref:version`.
pub(super) async fn pull_oci_chart(
    oci: &OciChart,
    opts: &SourceOptions,
) -> Result<(Vec<u8>, String), String> {
    let source_err = std::convert::identity::<String>;
    let temp = tempfile::tempdir()
        .map_err(|e| source_err(format!("cannot create a temporary directory: {e}")))?;
    let ca_file = oci.ca_file.as_ref().map(|f| opts.spec_dir.join(f));
    if let Some(ca) = &ca_file
        && let Err(e) = read_file_capped(ca, MAX_CA_FILE_BYTES)
    {
        return Err(source_err(format!("chart.oci.caFile: {e}")));
    }
    let pull = crate::helm::PullOptions {
        plain_http: oci.plain_http,
        ca_file: ca_file.as_deref(),
    };
    let mut command = tokio::process::Command::new(&opts.helm);
    command
        .args(crate::helm::pull_args(
            &oci.reference,
            &oci.version,
            temp.path(),
            &pull,
        ))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let helm = opts.helm.display().to_string();
    let child = command.spawn().map_err(|e| {
        source_err(format!(
            "cannot run {helm} to pull {} (oci charts need helm: put it on PATH, or pass \
             --helm or set {}): {e}",
            oci.reference,
            crate::helm::HELM_ENV
        ))
    })?;
    let output = tokio::time::timeout(HELM_PULL_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            source_err(format!(
                "`{helm} pull {}` took longer than {}s",
                oci.reference,
                HELM_PULL_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| source_err(format!("`{helm} pull {}`: {e}", oci.reference)))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr
            .chars()
            .rev()
            .take(HELM_STDERR_BYTES)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let hint = oci_hint(&stderr, oci)
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        return Err(source_err(format!(
            "`{helm} pull {} --version {}` failed ({}): {}{hint}",
            oci.reference,
            oci.version,
            output.status,
            tail.trim()
        )));
    }
    let mut pulled: Vec<PathBuf> = std::fs::read_dir(temp.path())
        .map_err(|e| source_err(format!("cannot list {}: {e}", temp.path().display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tgz"))
        .collect();
    let Some(path) = pulled.pop().filter(|_| pulled.is_empty()) else {
        return Err(source_err(format!(
            "`{helm} pull {}` did not leave exactly one .tgz",
            oci.reference
        )));
    };
    let bytes = read_file_capped(&path, opts.archive_limits.compressed_bytes)
        .map_err(|e| source_err(format!("cannot read {}: {e}", path.display())))?;
    let origin = format!("{}:{}", oci.reference, oci.version);
    Ok((bytes, origin))
}

/// Which spec field to set when helm could not reach a registry for a TLS or
/// HTTP reason, from helm's error output.
fn oci_hint(stderr: &str, oci: &OciChart) -> Option<&'static str> {
    if stderr.contains("server gave HTTP response to HTTPS client") {
        return Some(
            "the registry speaks plain HTTP: set `chart.oci.plainHttp: true` for this release",
        );
    }
    // An HTTPS server answers a plain HTTP request with 400 Bad Request.
    if oci.plain_http
        && (stderr.contains("Client sent an HTTP request to an HTTPS server")
            || stderr.contains("status code 400"))
    {
        return Some(
            "a 400 answer to plain HTTP: if the registry speaks HTTPS, remove \
             `chart.oci.plainHttp`",
        );
    }
    let untrusted = [
        "x509:",
        "certificate signed by unknown authority",
        "failed to verify certificate",
    ];
    if untrusted.iter().any(|t| stderr.contains(t)) {
        return Some(if oci.ca_file.is_some() {
            "the registry's TLS certificate does not verify against `chart.oci.caFile`: \
             check that the file holds the CA that signed it, and that the certificate names \
             the registry's host"
        } else {
            "the registry's TLS certificate is not trusted: set `chart.oci.caFile` to the PEM \
             file of the private CA that signed it"
        });
    }
    None
}

/// A downloaded archive (repository or registry): read safely, then checked against the
/// name and version the spec asked for.
fn downloaded(
    release: &str,
    bytes: Vec<u8>,
    origin: String,
    name: &str,
    version: &str,
    opts: &SourceOptions,
) -> Result<ResolvedChart, PublishError> {
    let archive = ChartArchive::read(&bytes, &origin, None, &opts.archive_limits)
        .map_err(|e| chart_error(release, e))?;
    check_identity(release, &archive, name, Some(version), &origin)?;
    Ok(ResolvedChart {
        bytes,
        archive,
        origin,
    })
}

fn source_error(release: &str, reason: String) -> PublishError {
    PublishError::ChartSource {
        release: release.to_owned(),
        reason,
    }
}

fn chart_error(release: &str, source: crate::chart::ChartError) -> PublishError {
    PublishError::Chart {
        release: release.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_or_http_failure_names_the_field_to_set() {
        let mut oci = OciChart {
            reference: "oci://127.0.0.1:5000/charts/app".into(),
            version: "1.0.0".into(),
            plain_http: false,
            ca_file: None,
        };
        let http = "Error: Get \"https://127.0.0.1:5000/v2/\": http: server gave HTTP response to HTTPS client";
        assert!(
            oci_hint(http, &oci)
                .unwrap()
                .contains("`chart.oci.plainHttp: true`")
        );
        let tls = "Error: ... tls: failed to verify certificate: x509: certificate signed by unknown authority";
        assert!(
            oci_hint(tls, &oci)
                .unwrap()
                .contains("set `chart.oci.caFile`")
        );
        oci.ca_file = Some("ca.pem".into());
        assert!(
            oci_hint(tls, &oci)
                .unwrap()
                .contains("does not verify against `chart.oci.caFile`")
        );
        assert_eq!(oci_hint("Error: manifest unknown", &oci), None);
        let bad_request = "GET \"http://127.0.0.1:5000/v2/charts/app/manifests/1.0.0\": response status code 400: Bad Request";
        assert_eq!(oci_hint(bad_request, &oci), None);
        oci.ca_file = None;
        oci.plain_http = true;
        assert!(
            oci_hint(bad_request, &oci)
                .unwrap()
                .contains("remove `chart.oci.plainHttp`")
        );
    }

    #[test]
    fn repo_index_ignores_what_it_does_not_need() {
        let text =
            b"apiVersion: v1\nentries:\n  app:\n    - name: app\n      version: 1.0.0\n      \
            created: 2026-01-01T00:00:00Z\n      digest: abc\n      urls: [app-1.0.0.tgz]\n      \
            maintainers: [{name: x}]\ngenerated: 2026-01-01T00:00:00Z\n";
        let index: RepoIndex =
            yaml::from_slice(text, "index.yaml", yaml::Limits::bytes(1 << 20)).unwrap();
        assert_eq!(index.entries["app"][0].urls, ["app-1.0.0.tgz"]);
        assert_eq!(index.entries["app"][0].digest.as_deref(), Some("abc"));
    }
}
