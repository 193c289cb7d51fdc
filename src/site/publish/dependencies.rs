//! `dependencies: build`: a chart directory's `charts/` completed in memory the way
//! `helm dependency build` completes it on disk.
//!
//! - The lock file (`Chart.lock`; `requirements.lock` for an apiVersion v1 chart) must
//!   exist and be in sync with the declared dependencies: its `digest` is Helm's digest
//!   of them and of the locked entries (see [`crate::chart::lock`]). Choosing versions is
//!   `helm dependency update`'s job, done by the maintainer and committed.
//! - Each locked dependency is taken at its exact locked version: from a Helm repository
//!   (`https://`, through [`super::sources::fetch_repo_chart`], the index's digest
//!   checked), an OCI registry (`oci://`, through [`super::sources::pull_oci_chart`];
//!   plain HTTP only for a registry on loopback), or a chart directory (`file://`, inside
//!   the spec's tree, packed like any chart directory). One without a repository must
//!   already be in `charts/`.
//! - A dependency already in `charts/` at its locked version is kept; other archives of
//!   the same chart there are left out, as Helm deletes them.
//! - Repository names (`@name`, `alias:name`) need helm's local `repositories.yaml`,
//!   which publish does not read: they are refused, naming the dependency.
//!
//! The fetched archives go into the published archive's `charts/`; nothing is written
//! into the maintainer's chart directory.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};

use crate::chart::lock::{ChartLock, LockedDependency, MAX_LOCK_BYTES, helm_digest, helm2_digest};
use crate::chart::{
    ChartApiVersion, ChartArchive, ChartDirContents, ChartError, Dependency, PackedChart,
    meta::parse_requirements, pack_dir,
};
use crate::format::spec::is_loopback_authority;
use crate::format::{ChartVersion, OciChart, RepoChart, constraint_matches};
use crate::site_verify::describe;

use super::PublishError;
use super::sources::{
    FetchFailure, OpenedRepo, SourceOptions, fetch_from_repo, open_repo_for_fetch, pull_oci_chart,
};

/// Why `dependencies: build` could not build a chart's dependencies.
#[derive(Debug, thiserror::Error)]
pub enum DependencyError {
    /// Chart.yaml declares dependencies, but there is no lock file.
    #[error(
        "{lock} is missing: `dependencies: build` takes the versions locked there, as `helm \
         dependency build` does; run `helm dependency update` in the chart directory and \
         commit {file}"
    , file = lock.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default())]
    NoLock {
        /// Where it was looked for.
        lock: PathBuf,
    },
    /// The lock file cannot be read or parsed.
    #[error("{lock}: {reason}")]
    LockRefused {
        /// The lock file.
        lock: PathBuf,
        /// Why.
        reason: String,
    },
    /// The lock's digest is not that of the declared dependencies.
    #[error(
        "{lock} is out of sync with the dependencies of {declared} (its digest is not theirs): \
         run `helm dependency update` in the chart directory and commit the new lock file"
    )]
    OutOfSync {
        /// The lock file.
        lock: PathBuf,
        /// Chart.yaml or requirements.yaml.
        declared: String,
    },
    /// A declared dependency cannot be written the way Helm digests it.
    #[error("dependency `{dependency}`: {reason}")]
    Undigestible {
        /// The dependency.
        dependency: String,
        /// Why.
        reason: String,
    },
    /// A repository given by a name from helm's local `repositories.yaml`.
    #[error(
        "dependency `{dependency}`: repository `{repository}` names a repository of helm's \
         local repositories.yaml, which publish does not read; write the repository's URL \
         (`https://...` or `oci://...`) in Chart.yaml instead, then run `helm dependency \
         update`"
    )]
    RepositoryName {
        /// The dependency.
        dependency: String,
        /// As written.
        repository: String,
    },
    /// A repository that is neither a URL publish fetches from nor `file://`.
    #[error(
        "dependency `{dependency}`: repository `{repository}` is not `https://`, `http://`, \
         `oci://` or `file://`"
    )]
    UnsupportedRepository {
        /// The dependency.
        dependency: String,
        /// As written.
        repository: String,
    },
    /// A `file://` dependency that is missing or outside the spec's tree.
    #[error("dependency `{dependency}`: {repository}: {reason}")]
    LocalChart {
        /// The dependency.
        dependency: String,
        /// As written.
        repository: String,
        /// Why.
        reason: String,
    },
    /// The download failed.
    #[error("dependency `{dependency}` {version} from {repository}: {reason}")]
    Fetch {
        /// The dependency.
        dependency: String,
        /// The locked version.
        version: String,
        /// Where from.
        repository: String,
        /// Why.
        reason: String,
    },
    /// The dependencies together are larger than a whole chart archive may be.
    #[error(
        "dependency `{dependency}`: with it, the dependencies add more than {limit} bytes, \
         the limit of a whole chart archive"
    )]
    TooLarge {
        /// The dependency that went over.
        dependency: String,
        /// The archive cap.
        limit: u64,
    },
    /// What was fetched or packed is not a chart the safe reader accepts.
    #[error("dependency `{dependency}`")]
    Chart {
        /// The dependency.
        dependency: String,
        /// The reader's error.
        #[source]
        source: ChartError,
    },
    /// What was fetched is another chart or version than the lock names.
    #[error(
        "dependency `{dependency}`: {origin} holds chart {found}, the lock names {dependency} \
         {version}"
    )]
    Mismatch {
        /// The dependency.
        dependency: String,
        /// The locked version.
        version: String,
        /// Where it came from.
        origin: String,
        /// `name version` found.
        found: String,
    },
}

/// Packs the chart in `dir` with its locked dependencies in `charts/` (see the module
/// documentation).
pub async fn build(
    release: &str,
    dir: &Path,
    opts: &SourceOptions,
) -> Result<PackedChart, PublishError> {
    let limits = &opts.archive_limits;
    let chart_err = |source| PublishError::Chart {
        release: release.to_owned(),
        source,
    };
    let dep_err = |source| PublishError::Dependencies {
        release: release.to_owned(),
        chart: dir.display().to_string(),
        source: Box::new(source),
    };
    let mut contents = ChartDirContents::read(dir, limits).map_err(chart_err)?;
    let (declared, declared_in) = declared(&contents, dir).map_err(chart_err)?;
    if declared.is_empty() {
        return contents.pack(limits).map_err(chart_err);
    }
    let lock_name = match contents.meta.api_version {
        ChartApiVersion::V1 => "requirements.lock",
        ChartApiVersion::V2 => "Chart.lock",
    };
    refuse_repository_names(&declared).map_err(dep_err)?;
    let lock = read_lock(&dir.join(lock_name)).map_err(dep_err)?;
    check_in_sync(
        contents.meta.api_version,
        &declared,
        &declared_in,
        &lock,
        &dir.join(lock_name),
    )
    .map_err(dep_err)?;
    // What is fetched stays within one archive's compressed cap in total, however many
    // dependencies the lock names (the packed result must fit it anyway).
    let mut added: u64 = 0;
    // Each repository's index is read once, however many dependencies come from it.
    let mut repos = HashMap::new();
    for locked in &lock.dependencies {
        if locked.repository.is_empty() {
            // Helm expects it in charts/ already; the archive reader checks it is.
            continue;
        }
        added += place(&mut contents, locked, dir, &mut repos, opts)
            .await
            .map_err(dep_err)?;
        if added > limits.compressed_bytes {
            return Err(dep_err(DependencyError::TooLarge {
                dependency: locked.name.clone(),
                limit: limits.compressed_bytes,
            }));
        }
    }
    contents.pack(limits).map_err(chart_err)
}

/// The declared dependencies (for a v1 chart, those of `requirements.yaml`) and the
/// file that declares them.
fn declared(
    contents: &ChartDirContents,
    dir: &Path,
) -> Result<(Vec<Dependency>, String), ChartError> {
    let chart_yaml = dir.join("Chart.yaml").display().to_string();
    if contents.meta.api_version == ChartApiVersion::V1
        && let Some(bytes) = contents.file("requirements.yaml")
    {
        let path = dir.join("requirements.yaml").display().to_string();
        let deps = parse_requirements(bytes, &path).map_err(|kind| ChartError {
            origin: dir.display().to_string(),
            kind,
        })?;
        if let Some(deps) = deps {
            return Ok((deps, path));
        }
    }
    Ok((contents.meta.dependencies.clone(), chart_yaml))
}

fn read_lock(path: &Path) -> Result<ChartLock, DependencyError> {
    use crate::fsread::{ReadError, Rules, read};
    let bytes = match read(path, Rules::no_links(MAX_LOCK_BYTES as u64)) {
        Ok(bytes) => bytes,
        Err(ReadError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(DependencyError::NoLock {
                lock: path.to_owned(),
            });
        }
        Err(e) => {
            return Err(DependencyError::LockRefused {
                lock: path.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    crate::chart::lock::parse_lock(&bytes, &path.display().to_string()).map_err(|reason| {
        DependencyError::LockRefused {
            lock: path.to_owned(),
            reason,
        }
    })
}

/// Refuses repositories named after helm's local `repositories.yaml` (`@name`,
/// `alias:name`): what they stand for is not in the chart.
fn refuse_repository_names(declared: &[Dependency]) -> Result<(), DependencyError> {
    for dep in declared {
        let repository = dep.repository.as_deref().unwrap_or_default();
        if repository.starts_with('@') || repository.starts_with("alias:") {
            return Err(DependencyError::RepositoryName {
                dependency: dep.name.clone(),
                repository: repository.to_owned(),
            });
        }
    }
    Ok(())
}

/// Compares the lock's digest with Helm's digest of the
/// declared and locked dependencies (for a v1 chart, Helm 2's digest is accepted too).
fn check_in_sync(
    api_version: ChartApiVersion,
    declared: &[Dependency],
    declared_in: &str,
    lock: &ChartLock,
    lock_path: &Path,
) -> Result<(), DependencyError> {
    for dep in declared {
        if let Err(reason) = &dep.helm_json {
            return Err(DependencyError::Undigestible {
                dependency: dep.name.clone(),
                reason: reason.clone(),
            });
        }
    }
    let undigestible = |reason: String| DependencyError::Undigestible {
        dependency: declared.first().map(|d| d.name.clone()).unwrap_or_default(),
        reason,
    };
    let digest = helm_digest(declared, &lock.dependencies).map_err(undigestible)?;
    let in_sync = digest == lock.digest
        || (api_version == ChartApiVersion::V1
            && helm2_digest(declared).map_err(undigestible)? == lock.digest);
    if in_sync {
        Ok(())
    } else {
        Err(DependencyError::OutOfSync {
            lock: lock_path.to_owned(),
            declared: declared_in.to_owned(),
        })
    }
}

/// What `charts/` already holds: (path, chart name, version) of each archive or
/// directory that reads as a chart.
fn present(contents: &ChartDirContents, opts: &SourceOptions) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for path in contents.subchart_entries() {
        let id = if path.ends_with(".tgz") {
            contents.file(&path).and_then(|bytes| {
                ChartArchive::read(bytes, &path, None, &opts.archive_limits)
                    .ok()
                    .map(|a| (a.name().to_owned(), a.version().to_string()))
            })
        } else {
            contents
                .file(&format!("{path}/Chart.yaml"))
                .and_then(|bytes| {
                    crate::chart::parse_chart_yaml(bytes, &path, &opts.archive_limits).ok()
                })
                .map(|m| (m.name, m.version.to_string()))
        };
        if let Some((name, version)) = id {
            found.push((path, name, version));
        }
    }
    found
}

/// Puts one locked dependency into `charts/`: kept when already there at its version,
/// else fetched; older archives of the same chart are left out. Returns the bytes added.
async fn place(
    contents: &mut ChartDirContents,
    locked: &LockedDependency,
    dir: &Path,
    repos: &mut HashMap<String, OpenedRepo>,
    opts: &SourceOptions,
) -> Result<u64, DependencyError> {
    let name = &locked.name;
    let same_version = |v: &str| {
        ChartVersion::parse(v)
            .ok()
            .zip(ChartVersion::parse(&locked.version).ok())
            .is_some_and(|(a, b)| a.same_as(&b))
    };
    let present = present(contents, opts);
    let kept = present.iter().any(|(_, n, v)| n == name && same_version(v));
    let stale: Vec<String> = present
        .iter()
        .filter(|(path, n, v)| {
            n == name
                && path.ends_with(".tgz")
                && path.starts_with(&format!("charts/{name}-"))
                && !(kept && same_version(v))
        })
        .map(|(path, _, _)| path.clone())
        .collect();
    for path in &stale {
        contents.remove_file(path);
    }
    if kept {
        return Ok(0);
    }
    let (bytes, archive) = fetch(locked, dir, repos, opts).await?;
    let size = bytes.len() as u64;
    contents.add_subchart_archive(
        &format!("{}-{}.tgz", archive.name(), archive.version()),
        bytes,
    );
    Ok(size)
}

/// Fetches (or packs) one locked dependency and checks it is the chart and version the
/// lock names.
async fn fetch(
    locked: &LockedDependency,
    dir: &Path,
    repos: &mut HashMap<String, OpenedRepo>,
    opts: &SourceOptions,
) -> Result<(Vec<u8>, ChartArchive), DependencyError> {
    let repository = locked.repository.as_str();
    let fetch_err = |reason: String| DependencyError::Fetch {
        dependency: locked.name.clone(),
        version: locked.version.clone(),
        repository: repository.to_owned(),
        reason,
    };
    let chart_err = |source| DependencyError::Chart {
        dependency: locked.name.clone(),
        source,
    };
    if repository.starts_with('@') || repository.starts_with("alias:") {
        return Err(DependencyError::RepositoryName {
            dependency: locked.name.clone(),
            repository: repository.to_owned(),
        });
    }
    let (bytes, origin, archive) = if let Some(local) = repository.strip_prefix("file://") {
        let path = local_chart(locked, local, dir, opts)?;
        let packed = pack_dir(&path, &opts.archive_limits).map_err(chart_err)?;
        let constraint_ok =
            constraint_matches(&locked.version, packed.archive.version()).unwrap_or(false);
        if packed.archive.name() != locked.name || !constraint_ok {
            return Err(DependencyError::Mismatch {
                dependency: locked.name.clone(),
                version: locked.version.clone(),
                origin: path.display().to_string(),
                found: format!("{} {}", packed.archive.name(), packed.archive.version()),
            });
        }
        return Ok((packed.bytes, packed.archive));
    } else if repository.starts_with("https://") || repository.starts_with("http://") {
        let repo = RepoChart {
            url: repository.to_owned(),
            name: locked.name.clone(),
            version: locked.version.clone(),
            auth: None,
            ca_file: None,
        };
        let failed = |e| match e {
            FetchFailure::Reason(reason) => fetch_err(reason),
            FetchFailure::Site(source) => fetch_err(describe(&source)),
        };
        let opened = match repos.entry(repository.to_owned()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                entry.insert(open_repo_for_fetch(&repo, opts).await.map_err(failed)?)
            }
        };
        let (bytes, origin) = fetch_from_repo(opened, &repo, opts).await.map_err(failed)?;
        let archive =
            ChartArchive::read(&bytes, &origin, None, &opts.archive_limits).map_err(chart_err)?;
        (bytes, origin, archive)
    } else if let Some(rest) = repository.strip_prefix("oci://") {
        let oci = OciChart {
            reference: format!("{}/{}", repository.trim_end_matches('/'), locked.name),
            version: locked.version.clone(),
            plain_http: is_loopback_authority(rest),
            ca_file: None,
        };
        let (bytes, origin) = pull_oci_chart(&oci, opts).await.map_err(fetch_err)?;
        let archive =
            ChartArchive::read(&bytes, &origin, None, &opts.archive_limits).map_err(chart_err)?;
        (bytes, origin, archive)
    } else {
        return Err(DependencyError::UnsupportedRepository {
            dependency: locked.name.clone(),
            repository: repository.to_owned(),
        });
    };
    let version_ok =
        ChartVersion::parse(&locked.version).is_ok_and(|v| v.same_as(archive.version()));
    if archive.name() != locked.name || !version_ok {
        return Err(DependencyError::Mismatch {
            dependency: locked.name.clone(),
            version: locked.version.clone(),
            origin,
            found: format!("{} {}", archive.name(), archive.version()),
        });
    }
    Ok((bytes, archive))
}

/// The directory of a `file://` dependency (relative to the chart directory, as Helm
/// reads it), which must stay inside the spec's directory or the working directory
/// unless `--allow-outside-spec-dir`.
fn local_chart(
    locked: &LockedDependency,
    local: &str,
    dir: &Path,
    opts: &SourceOptions,
) -> Result<PathBuf, DependencyError> {
    let err = |reason: String| DependencyError::LocalChart {
        dependency: locked.name.clone(),
        repository: locked.repository.clone(),
        reason,
    };
    let path = dir.join(local);
    let real = path
        .canonicalize()
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    if !real.is_dir() {
        return Err(err(format!("{} is not a directory", real.display())));
    }
    if !opts.allow_outside_spec_dir {
        let spec_dir = if opts.spec_dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &opts.spec_dir
        };
        let inside = [
            spec_dir.canonicalize().ok(),
            std::env::current_dir().and_then(|d| d.canonicalize()).ok(),
        ]
        .into_iter()
        .flatten()
        .any(|root| real.starts_with(root));
        if !inside {
            return Err(err(format!(
                "resolves to {}, outside the spec's directory and the working directory; \
                 pass --allow-outside-spec-dir to publish from there",
                real.display()
            )));
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::lock::parse_lock;
    use crate::chart::meta::parse_requirements;

    fn requirements(text: &str) -> Vec<Dependency> {
        parse_requirements(text.as_bytes(), "requirements.yaml")
            .unwrap()
            .unwrap()
    }

    fn lock(digest: &str) -> ChartLock {
        parse_lock(
            format!(
                "dependencies:\n- name: db\n  repository: https://charts.example.com\n  version: 1.2.3\ndigest: {digest}\n"
            )
            .as_bytes(),
            "requirements.lock",
        )
        .unwrap()
    }

    #[test]
    fn a_lock_is_in_sync_only_with_helms_digest_and_helm2s_for_v1_charts() {
        let declared = requirements(
            "dependencies:\n- name: db\n  version: ~1.2.0\n  repository: https://charts.example.com\n",
        );
        let in_sync = |api, digest: &str| {
            check_in_sync(
                api,
                &declared,
                "requirements.yaml",
                &lock(digest),
                Path::new("l"),
            )
        };
        let helm3 = helm_digest(&declared, &lock("x").dependencies).unwrap();
        // Helm 2's digest: of `{"dependencies": declared}` only.
        let helm2 = format!(
            "sha256:{}",
            crate::format::Sha256Digest::of(
                br#"{"dependencies":[{"name":"db","version":"~1.2.0","repository":"https://charts.example.com"}]}"#
            )
            .hex()
        );
        in_sync(ChartApiVersion::V2, &helm3).unwrap();
        in_sync(ChartApiVersion::V1, &helm3).unwrap();
        in_sync(ChartApiVersion::V1, &helm2).unwrap();
        for (api, digest) in [
            (ChartApiVersion::V2, helm2.as_str()),
            (ChartApiVersion::V1, "sha256:00"),
        ] {
            let err = in_sync(api, digest).unwrap_err();
            assert!(matches!(err, DependencyError::OutOfSync { .. }), "{err}");
            assert!(
                err.to_string().contains("run `helm dependency update`"),
                "{err}"
            );
        }
    }

    #[test]
    fn repository_names_and_unwritable_entries_are_refused() {
        let declared = requirements(
            "dependencies:\n- name: db\n  version: 1.0.0\n  repository: \"alias:stable\"\n",
        );
        let err = refuse_repository_names(&declared).unwrap_err();
        assert!(
            matches!(&err, DependencyError::RepositoryName { dependency, repository }
                if dependency == "db" && repository == "alias:stable"),
            "{err}"
        );
        let declared =
            requirements("dependencies:\n- name: db\n  version: 1.0.0\n  import-values: [1.5]\n");
        let err = check_in_sync(
            ChartApiVersion::V2,
            &declared,
            "Chart.yaml",
            &lock("sha256:00"),
            Path::new("Chart.lock"),
        )
        .unwrap_err();
        assert!(
            matches!(&err, DependencyError::Undigestible { dependency, .. } if dependency == "db"),
            "{err}"
        );
    }
}
