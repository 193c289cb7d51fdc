//! `coxswain publish`: channel spec + charts + values → content-addressed chart archives
//! and a new signed channel index.
//!
//! Everything is checked and built in memory before the first byte is written: the spec
//! (the format module's validation), every values file, the prior index, every chart
//! (packed or downloaded, then read back with the safe reader and compared with the
//! spec), the charts older entries still point at. A rejected publish leaves the site as
//! it was.
//!
//! **The prior index** comes from `--previous` (a site directory or URL), else from the
//! output site. It is the publisher's own earlier output, and what it holds is carried
//! forward and signed again, so it is not trusted blindly: its signature envelope must
//! hold a valid signature over its exact bytes by one of the keys this publish signs
//! with, or (with a trust root, after the channel keys were rotated) a threshold of that
//! root's channel keys. Its expiry is not checked (an expired index is exactly what a
//! late publish replaces); it is parsed strictly and must be for the same channel. Only
//! "not found" counts as "no prior index": any other failure stops the publish, so a
//! flaky server cannot reset the sequence.
//!
//! **Sequence**: prior + 1. Without a prior index publish refuses unless `--sequence`
//! is given (a CI job starting from an empty directory must not restart at 1, which
//! every agent would reject as a rollback). With both, `--sequence` must be above the
//! prior's.
//!
//! **Write order**: charts first (a chart already present with the same bytes is left
//! alone), then `index.json.sig`, then `index.json`, each through a temporary file and a
//! rename. Readers fetch the index first and the signature second, so a reader that
//! sees the new index also sees the new signature; the only mismatched pair a reader can
//! get is the old index with the new signature, between the two renames, and
//! `coxswain verify` (and the agent) fetch the pair once more on a mismatch.
//!
//! **Determinism**: the same spec, charts, prior index, keys and `now` give the same
//! bytes (deterministic packing, sorted JSON object keys, ed25519's deterministic
//! signatures); tests inject `now`.

pub mod dependencies;
mod previous;
pub mod promote;
pub mod sources;
pub mod withdraw;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use previous::{Change, carry_forward, requires_approval, rollout_since};
pub use sources::{ResolvedChart, SourceOptions};

use crate::chart::{ArchiveLimits, ChartError};
use crate::duration::Duration;
use crate::format::index::ChannelIndexKind;
use crate::format::spec::SpecFileError;
use crate::format::trust::RoleName;
use crate::format::{
    ApiVersion, ChannelIndex, ChannelSpec, FormatError, IndexChart, IndexRelease, Sha256Digest,
    Signatures, Timestamp, TrustRoot, read_json, to_json_pretty,
};
use crate::keys;
use crate::site::{self, DocKind, Site, SiteError, SitePath, SiteWriter};
use crate::site_verify::describe;
use crate::verify::{VerifyError, check_threshold};

/// How long an index stays valid when neither `--valid-for` nor the spec's `validFor`
/// says.
pub const DEFAULT_VALID_FOR: Duration = Duration::from_days(14);

/// The largest step over the prior index's sequence publish takes without
/// `--force-sequence-jump`: a typo (`--sequence 10000000000`) would otherwise use up the
/// sequence space agents accept.
pub const MAX_SEQUENCE_JUMP: u64 = 1_000_000;

/// What a publish needs.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The channel spec file.
    pub spec: PathBuf,
    /// The keys that sign the index (at least one).
    pub keys: Vec<SigningKey>,
    /// The site directory written to.
    pub out: PathBuf,
    /// Where the prior index is read from (a site directory or URL); `out` when `None`.
    pub previous: Option<String>,
    /// The sequence to use: required without a prior index, above the prior's with one.
    pub sequence: Option<u64>,
    /// Overrides the spec's `validFor`.
    pub valid_for: Option<Duration>,
    /// Accept a prior index signed by this root's channel keys (after a key rotation)
    /// instead of requiring one of `keys`.
    pub prior_trust: Option<TrustRoot>,
    /// The publication time (`published`; `expires` is counted from it).
    pub now: Timestamp,
    /// The helm binary for `oci` charts.
    pub helm: PathBuf,
    /// Limits for chart archives.
    pub archive_limits: ArchiveLimits,
    /// Limits for downloads (prior index, repository charts).
    pub site_limits: site::Limits,
    /// Draw a progress bar on standard error (only when it is a terminal).
    pub progress: bool,
    /// Allow `valuesFile` and chart paths that lead outside both the spec's directory and
    /// the working directory.
    pub allow_outside_spec_dir: bool,
    /// Allow a `--sequence` more than [`MAX_SEQUENCE_JUMP`] above the prior index's.
    pub force_sequence_jump: bool,
}

impl PublishOptions {
    /// Options with default limits, helm from `COXSWAIN_HELM` or `PATH`, no progress bar.
    pub fn new(spec: PathBuf, keys: Vec<SigningKey>, out: PathBuf, now: Timestamp) -> Self {
        Self {
            spec,
            keys,
            out,
            previous: None,
            sequence: None,
            valid_for: None,
            prior_trust: None,
            now,
            helm: crate::helm::HelmConfig::from_env().binary,
            archive_limits: ArchiveLimits::default(),
            site_limits: site::Limits::default(),
            progress: false,
            allow_outside_spec_dir: false,
            force_sequence_jump: false,
        }
    }
}

/// Why a publish was refused. Nothing was written to the site unless the variant is
/// [`PublishError::Write`].
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A withdrawal was refused (see [`withdraw`]).
    #[error("withdrawal refused: {0}")]
    Withdraw(String),
    /// A promotion was refused (see [`promote`]).
    #[error("promotion refused: {0}")]
    Promote(String),
    /// More than one problem; each is reported (a publish reports all it finds).
    #[error("{} problems, nothing was written:{}", .0.len(), list_problems(.0))]
    Several(Vec<PublishError>),
    /// No signing key was given.
    #[error("no signing key given: pass at least one --key")]
    NoKeys,
    /// The spec could not be read or is invalid.
    #[error(transparent)]
    Spec(Box<SpecFileError>),
    /// A release's values could not be read.
    #[error("release `{release}`: values")]
    Values {
        /// The release.
        release: String,
        /// Why (boxed: it is large and rare).
        #[source]
        source: Box<SpecFileError>,
    },
    /// A release's chart archive or directory was refused by the safe reader or packer.
    #[error("release `{release}`: chart")]
    Chart {
        /// The release.
        release: String,
        /// The reader's or packer's error.
        #[source]
        source: ChartError,
    },
    /// A release whose CRD policy has coxswain apply the chart's `crds/`, where
    /// `crds/` holds what coxswain would not apply.
    #[error("release `{release}`: crds {policy}: {origin}")]
    Crds {
        /// The release.
        release: String,
        /// Its policy.
        policy: crate::format::CrdPolicy,
        /// The chart.
        origin: String,
        /// What is wrong (boxed: it is large and rare).
        #[source]
        source: Box<crate::chart::crds::CrdError>,
    },
    /// A chart's `Chart.yaml` disagrees with the spec.
    #[error(
        "release `{release}`: {origin}: Chart.yaml {field} is {found:?}, but {} {expected:?}",
        if *.from_directory { "the directory is named" } else { "the spec asks for" }
    )]
    ChartMismatch {
        /// The expectation is the directory's name: a chart directory is named like its
        /// chart (the rule of `helm lint` and chart-testing).
        from_directory: bool,
        /// The release.
        release: String,
        /// The archive or directory.
        origin: String,
        /// `name` or `version`.
        field: &'static str,
        /// What the spec implies.
        expected: String,
        /// What Chart.yaml says.
        found: String,
    },
    /// A chart source could not be used.
    #[error("release `{release}`: {reason}")]
    ChartSource {
        /// The release.
        release: String,
        /// What went wrong.
        reason: String,
    },
    /// `dependencies: build` could not build a chart directory's dependencies.
    #[error("release `{release}`: {chart}: dependencies")]
    Dependencies {
        /// The release.
        release: String,
        /// The chart directory.
        chart: String,
        /// What is wrong (boxed: it is large and rare).
        #[source]
        source: Box<dependencies::DependencyError>,
    },
    /// A download for a release failed.
    #[error("release `{release}`: download failed")]
    Fetch {
        /// The release.
        release: String,
        /// The site error.
        #[source]
        source: SiteError,
    },
    /// The prior index could not be read.
    #[error("prior index {location}: cannot read it")]
    PriorRead {
        /// Where it was looked for.
        location: String,
        /// Why.
        #[source]
        source: SiteError,
    },
    /// The prior index exists but its signature envelope does not vouch for it.
    #[error(
        "prior index {location}: {reason}; it is carried forward and signed again, so it must be \
         signed by one of the --key keys (or pass --prior-trust with the trust root after a key \
         rotation; or, if an interrupted publish left it so, start over with --sequence)"
    )]
    PriorSignature {
        /// The index.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The prior index is not a valid channel index.
    #[error("prior index {location}: invalid")]
    PriorInvalid {
        /// The index.
        location: String,
        /// The format error (boxed: it is large and rare).
        #[source]
        source: Box<FormatError>,
    },
    /// The prior index is for another channel.
    #[error("prior index {location} is for channel `{found}`, the spec publishes `{expected}`")]
    PriorChannel {
        /// The index.
        location: String,
        /// The spec's channel.
        expected: String,
        /// The index's channel.
        found: String,
    },
    /// A `previous` entry's chart could not be found or does not match the prior index.
    #[error("release `{release}`: chart {version} of an older entry: {reason}")]
    PriorChart {
        /// The release.
        release: String,
        /// The older chart's version.
        version: String,
        /// What is wrong.
        reason: String,
    },
    /// No prior index and no `--sequence`.
    #[error(
        "no prior index for channel `{channel}` at {location}: pass --sequence N with N above \
         the sequence agents last saw (publishing from an empty site must not restart at 1, \
         which every agent rejects as a rollback), or --previous with the current site"
    )]
    NoPrior {
        /// The channel.
        channel: String,
        /// Where it was looked for.
        location: String,
    },
    /// A path in the spec leads outside the spec's directory.
    #[error(
        "release `{release}`: {field} {path:?} resolves to {resolved:?}, outside {allowed}; \
         pass --allow-outside-spec-dir to publish from there"
    )]
    OutsideSpecDir {
        /// The release.
        release: String,
        /// `valuesFile`, `chart.path` or `chart.archive`.
        field: &'static str,
        /// The path as written.
        path: PathBuf,
        /// Where it leads, links resolved.
        resolved: PathBuf,
        /// The trees it must stay in: the spec's directory and the working directory,
        /// links resolved.
        allowed: String,
    },
    /// The new index would be larger than agents accept.
    #[error(
        "the new index for channel `{channel}` would be {size} bytes, more than the limit of \
         {limit} bytes agents and `coxswain verify` accept; nothing was written (move large \
         values out of the channel, lower keepPrevious, or split the channel)"
    )]
    IndexTooLarge {
        /// The channel.
        channel: String,
        /// The serialized size.
        size: u64,
        /// The index cap.
        limit: u64,
    },
    /// `--sequence` is not above the prior index's.
    #[error(
        "--sequence {given} is not above the prior index's sequence {prior}; agents would reject it"
    )]
    SequenceNotAbove {
        /// The flag's value.
        given: u64,
        /// The prior sequence.
        prior: u64,
    },
    /// `--sequence` far above the prior index's.
    #[error(
        "--sequence {given} is more than {MAX_SEQUENCE_JUMP} above the prior index's sequence \
         {prior}; agents could never go back below it: pass --force-sequence-jump if it is meant"
    )]
    SequenceJump {
        /// The flag's value.
        given: u64,
        /// The prior sequence.
        prior: u64,
    },
    /// A sequence above [`crate::format::MAX_SEQUENCE`].
    #[error("sequence {0} is above the maximum of {max} (2^53)", max = crate::format::MAX_SEQUENCE)]
    SequenceTooHigh(u64),
    /// `--valid-for` (or the spec's `validFor`) above [`crate::format::MAX_INDEX_VALIDITY`].
    #[error(
        "validity {0} is longer than the maximum of {max} days for an index",
        max = crate::format::MAX_INDEX_VALIDITY.as_secs() / 86_400
    )]
    ValidForTooLong(Duration),
    /// `--sequence 0`.
    #[error("--sequence must be at least 1")]
    ZeroSequence,
    /// The prior sequence is the largest there is.
    #[error("the prior index's sequence {0} cannot be increased")]
    SequenceOverflow(u64),
    /// `published + validFor` is past the year 9999.
    #[error("validity {0} from {1} ends past the year 9999")]
    ExpiryOverflow(Duration, Timestamp),
    /// The index could not be serialized (does not happen for valid input).
    #[error("cannot write the index as JSON")]
    Serialize(#[source] serde_json::Error),
    /// The built index failed its own validation (a bug, reported instead of written).
    #[error("the new index is invalid")]
    InvalidOutput(#[source] Box<FormatError>),
    /// Writing to the site failed part way; what was written is complete files only.
    #[error("writing the site")]
    Write(#[source] SiteError),
}

fn list_problems(problems: &[PublishError]) -> String {
    problems
        .iter()
        .map(|p| format!("\n  - {}", describe(p)))
        .collect()
}

/// One release in the publish summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSummary {
    /// The release name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The chart's name.
    pub chart: String,
    /// The chart's version.
    pub version: String,
    /// The archive's digest.
    pub digest: Sha256Digest,
    /// How it changed since the prior index.
    pub change: Change,
    /// How many older entries it carries.
    pub previous: usize,
    /// Clusters wait for an administrator's approval before upgrading to it.
    pub requires_approval: bool,
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct PublishReport {
    /// The channel.
    pub channel: String,
    /// The new sequence.
    pub sequence: u64,
    /// The prior index's sequence, if there was one.
    pub prior_sequence: Option<u64>,
    /// `published`.
    pub published: Timestamp,
    /// `expires`.
    pub expires: Timestamp,
    /// The index file written.
    pub index_path: PathBuf,
    /// Per release, in spec order.
    pub releases: Vec<ReleaseSummary>,
    /// Chart archives written.
    pub charts_written: usize,
    /// Chart archives already present with the same bytes.
    pub charts_present: usize,
}

impl PublishReport {
    /// The summary table: release, namespace, chart version, short digest, change.
    pub fn table(&self) -> String {
        let mut out = release_table(&self.releases);
        let prior = self
            .prior_sequence
            .map_or_else(|| "no prior index".to_owned(), |p| format!("prior {p}"));
        let _ = writeln!(
            out,
            "channel {} sequence {} ({prior}), published {}, expires {}; {} chart(s) written, {} already present",
            self.channel,
            self.sequence,
            self.published,
            self.expires,
            self.charts_written,
            self.charts_present
        );
        out
    }
}

/// One row per release: name, namespace, chart version, short digest, previous entries,
/// change (shared by publish and promote).
pub fn release_table(releases: &[ReleaseSummary]) -> String {
    let header = [
        "RELEASE",
        "NAMESPACE",
        "CHART",
        "DIGEST",
        "PREVIOUS",
        "CHANGE",
    ];
    let rows: Vec<[String; 6]> = releases
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.namespace.clone(),
                format!("{} {}", r.chart, r.version),
                format!("sha256:{}", &r.digest.hex()[..12]),
                r.previous.to_string(),
                if r.requires_approval {
                    format!("{}; requires approval", r.change)
                } else {
                    r.change.to_string()
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

/// The sequence after `prior` (1 for a new channel) and the expiry `valid_for` after
/// `now`, for an index that `promote` or `withdraw` derives from others.
fn next_sequence(
    prior: Option<u64>,
    now: Timestamp,
    valid_for: Duration,
) -> Result<(u64, Timestamp), PublishError> {
    let sequence = match prior {
        None => 1,
        Some(s) => s
            .checked_add(1)
            .filter(|s| *s <= crate::format::MAX_SEQUENCE)
            .ok_or(PublishError::SequenceOverflow(s))?,
    };
    if valid_for > crate::format::MAX_INDEX_VALIDITY {
        return Err(PublishError::ValidForTooLong(valid_for));
    }
    let expires = now
        .checked_add(valid_for)
        .ok_or(PublishError::ExpiryOverflow(valid_for, now))?;
    Ok((sequence, expires))
}

/// Serializes `index`, checks it with the reader agents use, signs it with `keys` and
/// writes it with its copies into the site directory `site`; returns the index's path.
fn write_derived_index(
    site: &Path,
    index: &ChannelIndex,
    keys: &[SigningKey],
) -> Result<PathBuf, PublishError> {
    let index_bytes = to_json_pretty(index).map_err(PublishError::Serialize)?;
    read_json::<ChannelIndex>(&index_bytes, "the new index")
        .map_err(|e| PublishError::InvalidOutput(Box::new(e)))?;
    let sig_bytes =
        to_json_pretty(&sign_sorted(keys, &index_bytes)).map_err(PublishError::Serialize)?;
    let writer = SiteWriter::new(site);
    IndexFiles::checked(&writer, &index.channel, index.sequence)?.write(
        &writer,
        &sig_bytes,
        &index_bytes,
    )
}

/// A channel's signature envelope and index in a site, and their copies under
/// `channels/<channel>/history/<sequence>.json` (what `withdraw` goes back to), checked
/// as write targets.
struct IndexFiles {
    signatures: SitePath,
    index: SitePath,
    history_signatures: SitePath,
    history: SitePath,
}

impl IndexFiles {
    /// The paths of `channel` at `sequence`, refused when any would land outside the site.
    fn checked(writer: &SiteWriter, channel: &str, sequence: u64) -> Result<Self, PublishError> {
        let files = Self {
            signatures: SitePath::index_signatures(channel).map_err(PublishError::Write)?,
            index: SitePath::index(channel).map_err(PublishError::Write)?,
            history_signatures: SitePath::history_signatures(channel, sequence)
                .map_err(PublishError::Write)?,
            history: SitePath::history(channel, sequence).map_err(PublishError::Write)?,
        };
        for path in [
            &files.signatures,
            &files.index,
            &files.history_signatures,
            &files.history,
        ] {
            writer.check_target(path).map_err(PublishError::Write)?;
        }
        Ok(files)
    }

    /// Writes the history copies, then the signatures, then the index (a reader that
    /// finds the new index finds its signatures); returns the index's path.
    fn write(
        &self,
        writer: &SiteWriter,
        signatures: &[u8],
        index: &[u8],
    ) -> Result<PathBuf, PublishError> {
        for (path, bytes) in [
            (&self.history_signatures, signatures),
            (&self.history, index),
            (&self.signatures, signatures),
        ] {
            writer.write(path, bytes).map_err(PublishError::Write)?;
        }
        writer
            .write(&self.index, index)
            .map_err(PublishError::Write)
    }
}

/// The prior index and the site it came from (older charts are copied from there).
struct Prior {
    index: ChannelIndex,
    /// The SHA-256 of the index's bytes.
    digest: Sha256Digest,
    site: Site,
    index_path: SitePath,
}

/// Runs a publish; see the module documentation for what it checks and in which order
/// it writes.
pub async fn publish(opts: &PublishOptions) -> Result<PublishReport, PublishError> {
    if opts.keys.is_empty() {
        return Err(PublishError::NoKeys);
    }
    let spec = ChannelSpec::load(&opts.spec).map_err(|e| PublishError::Spec(Box::new(e)))?;
    let spec_dir = opts
        .spec
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    if !opts.allow_outside_spec_dir {
        check_spec_paths(&spec, &spec_dir)?;
    }
    // Every problem of the spec is collected and reported together (values, charts, the
    // prior index), so one CI run shows all of them; nothing is written when any is found.
    let mut problems: Vec<PublishError> = Vec::new();
    let mut values = Vec::with_capacity(spec.releases.len());
    for release in &spec.releases {
        match release.effective_values(&spec_dir) {
            Ok(v) => values.push(v),
            Err(source) => {
                problems.push(PublishError::Values {
                    release: release.name.clone(),
                    source: Box::new(source),
                });
                values.push(serde_json::Map::new());
            }
        }
    }

    let prior_location = opts
        .previous
        .clone()
        .unwrap_or_else(|| opts.out.display().to_string());
    let (prior, sequence) = match prior_and_sequence(opts, &prior_location, &spec.channel).await {
        Ok(found) => found,
        Err(e) => {
            problems.push(e);
            (None, 0)
        }
    };
    if sequence > crate::format::MAX_SEQUENCE {
        return Err(PublishError::SequenceTooHigh(sequence));
    }
    if let Some(p) = &prior
        && !opts.force_sequence_jump
        && sequence - p.index.sequence > MAX_SEQUENCE_JUMP
    {
        return Err(PublishError::SequenceJump {
            given: sequence,
            prior: p.index.sequence,
        });
    }
    let valid_for = opts
        .valid_for
        .or(spec.valid_for)
        .unwrap_or(DEFAULT_VALID_FOR);
    if valid_for > crate::format::MAX_INDEX_VALIDITY {
        return Err(PublishError::ValidForTooLong(valid_for));
    }
    let expires = opts
        .now
        .checked_add(valid_for)
        .ok_or(PublishError::ExpiryOverflow(valid_for, opts.now))?;

    let bar = progress_bar(opts.progress, spec.releases.len() as u64);
    let source_opts = SourceOptions {
        spec_dir: spec_dir.clone(),
        archive_limits: opts.archive_limits.clone(),
        site_limits: opts.site_limits.clone(),
        helm: opts.helm.clone(),
        allow_outside_spec_dir: opts.allow_outside_spec_dir,
    };
    let mut charts: BTreeMap<Sha256Digest, Vec<u8>> = BTreeMap::new();
    let mut releases = Vec::with_capacity(spec.releases.len());
    let mut summaries = Vec::with_capacity(spec.releases.len());
    let prior_by_name: HashMap<&str, &IndexRelease> = prior
        .as_ref()
        .map(|p| {
            p.index
                .releases
                .iter()
                .map(|r| (r.name.as_str(), r))
                .collect()
        })
        .unwrap_or_default();
    for (release, values) in spec.releases.iter().zip(values) {
        bar.set_message(format!("chart of {}", release.name));
        let resolved = sources::resolve(&release.name, &release.chart, &source_opts).await;
        bar.inc(1);
        let resolved = match resolved {
            Ok(resolved) => resolved,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        if let Some(policy) = release.crds.filter(|p| p.applies())
            && let Err(source) =
                crate::chart::crds::chart_crds(&resolved.archive, &opts.archive_limits)
        {
            problems.push(PublishError::Crds {
                release: release.name.clone(),
                policy,
                origin: format!(
                    "chart {} {}",
                    resolved.archive.name(),
                    resolved.archive.version()
                ),
                source: Box::new(source),
            });
            continue;
        }
        let digest = Sha256Digest::of(&resolved.bytes);
        let mut entry = IndexRelease {
            name: release.name.clone(),
            namespace: release.namespace.clone(),
            chart: IndexChart {
                name: resolved.archive.name().to_owned(),
                version: resolved.archive.version().to_string(),
                url: format!("../../charts/{}", IndexChart::archive_name(&digest)),
                digest,
                size: resolved.bytes.len() as u64,
            },
            values,
            depends_on: release.depends_on.clone(),
            health: release.health,
            upgrade_from: release.upgrade_from.clone(),
            crds: release.crds,
            backup: release.backup,
            requires_approval: false,
            previous: Vec::new(),
            urgency: release.urgency,
            since: None,
        };
        let keep = usize::try_from(spec.keep_previous).unwrap_or(usize::MAX);
        let prior_entry = prior_by_name.get(release.name.as_str()).copied();
        let (previous, change) = carry_forward(prior_entry, &entry, keep);
        entry.requires_approval = requires_approval(release.approval, prior_entry, &entry);
        entry.previous = previous;
        if let Some(p) = &prior {
            entry.since = rollout_since(prior_entry, p.index.published, &entry);
        }
        summaries.push(ReleaseSummary {
            name: entry.name.clone(),
            namespace: entry.namespace.clone(),
            chart: entry.chart.name.clone(),
            version: entry.chart.version.clone(),
            digest,
            change,
            previous: entry.previous.len(),
            requires_approval: entry.requires_approval,
        });
        charts.insert(digest, resolved.bytes);
        releases.push(entry);
    }
    bar.finish_and_clear();
    if problems.len() == 1 {
        return Err(problems.remove(0));
    }
    if !problems.is_empty() {
        return Err(PublishError::Several(problems));
    }

    let index = ChannelIndex {
        api_version: ApiVersion::V1,
        kind: ChannelIndexKind::ChannelIndex,
        channel: spec.channel.clone(),
        sequence,
        published: opts.now,
        expires,
        releases,
        // A withdrawal stays on record in every later sequence.
        withdrawn: prior
            .as_ref()
            .map(|p| p.index.withdrawn.clone())
            .unwrap_or_default(),
        rollout: spec.rollout.clone(),
    };
    let index_bytes = to_json_pretty(&index).map_err(PublishError::Serialize)?;
    if index_bytes.len() as u64 > opts.site_limits.index_bytes {
        return Err(PublishError::IndexTooLarge {
            channel: index.channel,
            size: index_bytes.len() as u64,
            limit: opts.site_limits.index_bytes,
        });
    }
    // What agents will parse must pass the reader agents use.
    read_json::<ChannelIndex>(&index_bytes, "the new index")
        .map_err(|e| PublishError::InvalidOutput(Box::new(e)))?;
    let sig_bytes =
        to_json_pretty(&sign_sorted(&opts.keys, &index_bytes)).map_err(PublishError::Serialize)?;

    // Older entries point at charts this publish did not build: make sure the output
    // site has them, copying (and checking) them from the prior site when it does not.
    let writer = SiteWriter::new(&opts.out);
    let mut older: BTreeMap<Sha256Digest, (&str, &IndexChart)> = BTreeMap::new();
    for r in &index.releases {
        for p in &r.previous {
            if !charts.contains_key(&p.chart.digest) {
                older.entry(p.chart.digest).or_insert((&r.name, &p.chart));
            }
        }
    }
    let mut charts_present = 0;
    let mut missing: BTreeMap<Sha256Digest, Vec<u8>> = BTreeMap::new();
    for (digest, (release, chart)) in older {
        if present_with_digest(&writer, &digest, chart.size) {
            charts_present += 1;
            continue;
        }
        let bytes = copy_older_chart(prior.as_ref(), release, chart).await?;
        missing.insert(digest, bytes);
    }

    // Nothing is written when any document would land outside the site through a link.
    for digest in charts.keys().chain(missing.keys()) {
        let path = SitePath::chart(&digest.hex()).map_err(PublishError::Write)?;
        writer.check_target(&path).map_err(PublishError::Write)?;
    }
    let index_files = IndexFiles::checked(&writer, &index.channel, index.sequence)?;

    let mut charts_written = 0;
    for (digest, bytes) in charts.iter().chain(missing.iter()) {
        let path = SitePath::chart(&digest.hex()).map_err(PublishError::Write)?;
        if existing_bytes_equal(&writer, &path, bytes) {
            charts_present += 1;
            continue;
        }
        writer.write(&path, bytes).map_err(PublishError::Write)?;
        charts_written += 1;
    }
    let index_file = index_files.write(&writer, &sig_bytes, &index_bytes)?;

    Ok(PublishReport {
        channel: index.channel,
        sequence,
        prior_sequence: prior.map(|p| p.index.sequence),
        published: opts.now,
        expires,
        index_path: index_file,
        releases: summaries,
        charts_written,
        charts_present,
    })
}

/// Refuses a `valuesFile`, chart `path` or chart `archive` that resolves (links followed)
/// outside both the spec's directory and the directory publish runs in (in CI, the
/// repository checkout, where `channels/stable.yaml` names `../charts/...`): a spec names
/// files of its own tree, and a publish that reads elsewhere (`../../home/ci/.ssh/id`,
/// `/etc/...`, a link out) would sign and publish what it finds there. A path that does
/// not exist is left to the read that follows, which names it.
fn check_spec_paths(spec: &ChannelSpec, spec_dir: &Path) -> Result<(), PublishError> {
    let dir = if spec_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        spec_dir
    };
    let Ok(real_dir) = dir.canonicalize() else {
        // The spec was just read from there; a directory that vanished fails the reads.
        return Ok(());
    };
    let real_cwd = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
    for release in &spec.releases {
        let mut paths: Vec<(&'static str, &Path)> = Vec::new();
        if let Some(file) = &release.values_file {
            paths.push(("valuesFile", file));
        }
        match &release.chart {
            crate::format::spec::ChartSource::Path(d) => paths.push(("chart.path", &d.path)),
            crate::format::spec::ChartSource::Archive(p) => paths.push(("chart.archive", p)),
            crate::format::spec::ChartSource::Oci(oci) => {
                if let Some(ca) = &oci.ca_file {
                    paths.push(("chart.oci.caFile", ca));
                }
            }
            crate::format::spec::ChartSource::Repo(_) => {}
        }
        for (field, path) in paths {
            let Ok(real) = dir.join(path).canonicalize() else {
                continue;
            };
            let inside = real.starts_with(&real_dir)
                || real_cwd.as_ref().is_some_and(|cwd| real.starts_with(cwd));
            if !inside {
                return Err(PublishError::OutsideSpecDir {
                    release: release.name.clone(),
                    field,
                    path: path.to_owned(),
                    resolved: real,
                    allowed: format!(
                        "the spec's directory {} and the working directory {}",
                        real_dir.display(),
                        real_cwd.as_deref().unwrap_or(Path::new("?")).display()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The prior index (if any) and the sequence this publish takes.
async fn prior_and_sequence(
    opts: &PublishOptions,
    prior_location: &str,
    channel: &str,
) -> Result<(Option<Prior>, u64), PublishError> {
    let prior = load_prior(opts, prior_location, channel).await?;
    let sequence = match (&prior, opts.sequence) {
        (_, Some(0)) => return Err(PublishError::ZeroSequence),
        (None, None) => {
            return Err(PublishError::NoPrior {
                channel: channel.to_owned(),
                location: prior_location.to_owned(),
            });
        }
        (None, Some(given)) => given,
        (Some(p), Some(given)) if given <= p.index.sequence => {
            return Err(PublishError::SequenceNotAbove {
                given,
                prior: p.index.sequence,
            });
        }
        (Some(_), Some(given)) => given,
        (Some(p), None) => p
            .index
            .sequence
            .checked_add(1)
            .ok_or(PublishError::SequenceOverflow(p.index.sequence))?,
    };
    Ok((prior, sequence))
}

/// Signs `bytes` with every key, in keyid order, so the envelope does not depend on the
/// order of `--key` flags.
fn sign_sorted(keys: &[SigningKey], bytes: &[u8]) -> Signatures {
    let mut sorted = keys.to_vec();
    sorted.sort_by_cached_key(|k| keys::keyid(&k.verifying_key()));
    keys::sign(bytes, &sorted)
}

fn progress_bar(show: bool, len: u64) -> ProgressBar {
    let target = if show {
        // indicatif draws nothing when standard error is not a terminal.
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}") {
        bar.set_style(style);
    }
    bar
}

/// Whether the output site holds exactly `bytes` at `path` (a chart already published is
/// not rewritten); a link or anything but a regular file there does not count.
fn existing_bytes_equal(writer: &SiteWriter, path: &SitePath, bytes: &[u8]) -> bool {
    writer
        .existing(path, bytes.len() as u64)
        .is_some_and(|existing| existing == bytes)
}

/// Whether the output site already holds the chart with this digest and size.
fn present_with_digest(writer: &SiteWriter, digest: &Sha256Digest, size: u64) -> bool {
    let Ok(path) = SitePath::chart(&digest.hex()) else {
        return false;
    };
    writer
        .existing(&path, size)
        .is_some_and(|bytes| bytes.len() as u64 == size && Sha256Digest::of(&bytes) == *digest)
}

/// Fetches an older entry's chart from the prior site, checking size and digest.
async fn copy_older_chart(
    prior: Option<&Prior>,
    release: &str,
    chart: &IndexChart,
) -> Result<Vec<u8>, PublishError> {
    let fail = |reason: String| PublishError::PriorChart {
        release: release.to_owned(),
        version: chart.version.clone(),
        reason,
    };
    let Some(prior) = prior else {
        return Err(fail("no prior site to copy it from".to_owned()));
    };
    let path = prior
        .site
        .resolve(&prior.index_path, &chart.url)
        .map_err(|e| fail(describe(&e)))?;
    let bytes = prior.site.read(&path, DocKind::Chart).await.map_err(|e| {
        fail(format!(
            "not in the output site, and copying it failed: {}",
            describe(&e)
        ))
    })?;
    if bytes.len() as u64 != chart.size || Sha256Digest::of(&bytes) != chart.digest {
        return Err(fail(format!(
            "{} is {} bytes with {}, the prior index says {} bytes with {}",
            prior.site.location(&path),
            bytes.len(),
            Sha256Digest::of(&bytes),
            chart.size,
            chart.digest
        )));
    }
    Ok(bytes)
}

/// Reads the prior index from `location`; `Ok(None)` only when it does not exist. The
/// output directory not existing yet means "no prior index"; a `--previous` directory
/// that does not exist is an error (a typo must not silently drop the older entries).
async fn load_prior(
    opts: &PublishOptions,
    location: &str,
    channel: &str,
) -> Result<Option<Prior>, PublishError> {
    let is_url = location.contains("://");
    if !is_url && opts.previous.is_none() && !Path::new(location).exists() {
        return Ok(None);
    }
    let reader = IndexReader {
        keys: &opts.keys,
        trust: opts.prior_trust.as_ref(),
        limits: &opts.site_limits,
    };
    load_index(&reader, location, channel).await
}

/// Who may have signed an index read back from a site, and the read's limits.
struct IndexReader<'a> {
    /// Keys whose signature alone is enough (the keys that sign the new index).
    keys: &'a [SigningKey],
    /// Instead: a trust root whose channel keys and threshold decide.
    trust: Option<&'a TrustRoot>,
    limits: &'a site::Limits,
}

/// Reads and checks a channel's index on a site: signed as `reader` accepts, for that
/// channel. `Ok(None)` only when the site has no index for the channel.
async fn load_index(
    reader: &IndexReader<'_>,
    location: &str,
    channel: &str,
) -> Result<Option<Prior>, PublishError> {
    load_index_at(reader, location, channel, None).await
}

/// [`load_index`] of the copy kept for `sequence` under `history/` when given.
async fn load_index_at(
    reader: &IndexReader<'_>,
    location: &str,
    channel: &str,
    sequence: Option<u64>,
) -> Result<Option<Prior>, PublishError> {
    let read_err = |source| PublishError::PriorRead {
        location: location.to_owned(),
        source,
    };
    let site = Site::open(location, reader.limits.clone()).map_err(read_err)?;
    let (index_path, sig_path) = match sequence {
        None => (
            SitePath::index(channel).map_err(read_err)?,
            SitePath::index_signatures(channel).map_err(read_err)?,
        ),
        Some(n) => (
            SitePath::history(channel, n).map_err(read_err)?,
            SitePath::history_signatures(channel, n).map_err(read_err)?,
        ),
    };
    let shown = site.location(&index_path);
    let index_bytes = match site.read(&index_path, DocKind::Index).await {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let sig_bytes = site
        .read(&sig_path, DocKind::Signatures)
        .await
        .map_err(read_err)?;
    let signatures: Signatures = read_json(&sig_bytes, &site.location(&sig_path)).map_err(|e| {
        PublishError::PriorSignature {
            location: shown.clone(),
            reason: format!("its signature envelope is unreadable: {}", describe(&e)),
        }
    })?;
    let own_keys: Vec<(String, VerifyingKey)> = reader
        .keys
        .iter()
        .map(|k| (keys::keyid(&k.verifying_key()), k.verifying_key()))
        .collect();
    let (accepted, threshold): (BTreeMap<&str, VerifyingKey>, u32) = match reader.trust {
        Some(root) => (
            root.role_keys(RoleName::Channel),
            root.role(RoleName::Channel).threshold,
        ),
        None => (
            own_keys.iter().map(|(id, k)| (id.as_str(), *k)).collect(),
            1,
        ),
    };
    check_threshold(
        &index_bytes,
        &signatures,
        &accepted,
        threshold,
        RoleName::Channel,
        &shown,
    )
    .map_err(|e| PublishError::PriorSignature {
        location: shown.clone(),
        reason: match e {
            VerifyError::ThresholdNotMet {
                valid, threshold, ..
            } => format!("{valid} valid signature(s) by accepted keys, {threshold} needed"),
            other => other.to_string(),
        },
    })?;
    let index: ChannelIndex =
        read_json(&index_bytes, &shown).map_err(|source| PublishError::PriorInvalid {
            location: shown.clone(),
            source: Box::new(source),
        })?;
    if index.channel != channel {
        return Err(PublishError::PriorChannel {
            location: shown,
            expected: channel.to_owned(),
            found: index.channel,
        });
    }
    if let Some(n) = sequence
        && index.sequence != n
    {
        return Err(PublishError::Withdraw(format!(
            "{shown} holds sequence {}, not {n}",
            index.sequence
        )));
    }
    Ok(Some(Prior {
        index,
        digest: Sha256Digest::of(&index_bytes),
        site,
        index_path,
    }))
}
