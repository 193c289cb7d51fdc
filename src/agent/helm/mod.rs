//! The Helm CLI shim: a typed async API over the real `helm` binary.
//!
//! coxswain drives the same helm its users do, so releases stay ordinary Helm
//! releases (`helm ls` shows them, `helm rollback` works by hand). The shim
//! hides the differences between Helm 3 and Helm 4 (see [`args`]), never lets
//! helm block on readiness or roll back by itself, hands values over in 0600
//! temporary files, and reports every call to tracing and an [`Observer`].

mod args;
pub(crate) use args::{PullOptions, pull as pull_args};
mod error;
mod fingerprint;
mod process;
pub mod storage;
mod types;

use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use error::{HelmError, Target};
pub use fingerprint::{Description, Fingerprint, FingerprintError, rollback_target};
pub use types::{
    ChartMetadata, HistoryEntry, ListEntry, Release, ReleaseChart, ReleaseInfo, ReleaseStatus,
    split_chart,
};

use process::Call;

/// Environment variable naming the helm binary (the `--helm` flag reads it too).
pub const HELM_ENV: &str = "COXSWAIN_HELM";

/// Where helm is and how to run it.
#[derive(Debug, Clone)]
pub struct HelmConfig {
    /// Path or name (looked up on `PATH`) of the helm binary.
    pub binary: PathBuf,
    /// Passed as `--kubeconfig`; without it helm reads `KUBECONFIG` or the
    /// in-cluster service account, like kubectl.
    pub kubeconfig: Option<PathBuf>,
    /// Passed as `--kube-context`.
    pub kube_context: Option<String>,
    /// Directory for helm's cache, config and data (`HELM_*_HOME`); helm's
    /// defaults under `$HOME` when unset.
    pub state_dir: Option<PathBuf>,
    /// Directory for the temporary values files; the system's when unset.
    pub temp_dir: Option<PathBuf>,
    /// Extra environment for helm (`HELM_DRIVER`, proxies); never values.
    pub extra_env: Vec<(OsString, OsString)>,
    /// Hard limit for calls that only read (list, status, history, get, template, version).
    pub read_timeout: Duration,
    /// Added to helm's own `--timeout` for calls that change the cluster, so
    /// helm normally gives up first and reports why.
    pub grace: Duration,
    /// Most bytes read from helm's standard output (manifests, status JSON).
    pub max_output_bytes: usize,
}

impl Default for HelmConfig {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("helm"),
            kubeconfig: None,
            kube_context: None,
            state_dir: None,
            temp_dir: None,
            extra_env: Vec::new(),
            read_timeout: Duration::from_secs(60),
            grace: Duration::from_secs(30),
            max_output_bytes: 64 * 1024 * 1024,
        }
    }
}

impl HelmConfig {
    /// Defaults, with the binary taken from `COXSWAIN_HELM` when set.
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Some(binary) = std::env::var_os(HELM_ENV).filter(|b| !b.is_empty()) {
            config.binary = PathBuf::from(binary);
        }
        config
    }
}

/// The file in `state_dir` that remembers which version a binary reported.
const VERSION_FILE: &str = "helm-version";

/// The binary as found on disk (through `PATH` when it is a bare name):
/// canonical path, size, modification time and inode. `None` when it cannot
/// be told, and then the version is asked every time.
fn binary_identity(binary: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let found = if binary.components().count() > 1 {
        binary.to_path_buf()
    } else {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join(binary))
            .find(|p| p.is_file())?
    };
    let path = std::fs::canonicalize(found).ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    Some(format!(
        "{} {} {}.{} {}",
        path.display(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino()
    ))
}

/// The version remembered in `file` for exactly this `identity`.
fn remembered_version(file: &Path, identity: &str) -> Option<HelmVersion> {
    let bytes = crate::fsread::read(file, crate::fsread::Rules::no_links(4096)).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (who, version) = text.split_once('\n')?;
    (who == identity).then(|| HelmVersion::parse(version))?
}

/// The helm major versions coxswain speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HelmMajor {
    /// Helm 3.x.
    V3,
    /// Helm 4.x.
    V4,
}

/// The version a helm binary reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmVersion {
    /// Major version, which decides the flags.
    pub major: HelmMajor,
    /// Full version, e.g. 4.3.1.
    pub version: semver::Version,
}

impl HelmVersion {
    /// Reads the output of `helm version --template '{{.Version}}'`: `v4.3.1`
    /// for release builds, `v4.3` for builds without release ldflags (`go install`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let version = semver::Version::parse(text).ok().or_else(|| {
            let (major, minor) = text.split_once('.')?;
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(major) || !digits(minor) {
                return None;
            }
            Some(semver::Version::new(
                major.parse().ok()?,
                minor.parse().ok()?,
                0,
            ))
        })?;
        let major = match version.major {
            3 => HelmMajor::V3,
            4 => HelmMajor::V4,
            _ => return None,
        };
        Some(Self { major, version })
    }
}

impl fmt::Display for HelmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.version)
    }
}

/// The helm subcommands the shim runs; the names are metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HelmCommand {
    /// `helm version`.
    Version,
    /// `helm upgrade --install`.
    UpgradeInstall,
    /// `helm rollback`.
    Rollback,
    /// `helm uninstall`.
    Uninstall,
    /// `helm history`.
    History,
    /// `helm status`.
    Status,
    /// `helm list`.
    List,
    /// `helm get manifest`.
    GetManifest,
    /// `helm test`.
    Test,
    /// `helm template`.
    Template,
}

impl HelmCommand {
    /// A stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Version => "version",
            Self::UpgradeInstall => "upgrade",
            Self::Rollback => "rollback",
            Self::Uninstall => "uninstall",
            Self::History => "history",
            Self::Status => "status",
            Self::List => "list",
            Self::GetManifest => "get-manifest",
            Self::Test => "test",
            Self::Template => "template",
        }
    }

    /// True for commands that change the cluster.
    pub fn mutates(self) -> bool {
        matches!(
            self,
            Self::UpgradeInstall | Self::Rollback | Self::Uninstall | Self::Test
        )
    }
}

impl fmt::Display for HelmCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a helm call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Exit code 0.
    Succeeded,
    /// helm reported an error (including "release not found").
    Failed,
    /// Stopped after the call's timeout.
    TimedOut,
    /// The binary could not be started.
    SpawnFailed,
}

impl Outcome {
    /// A stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed-out",
            Self::SpawnFailed => "spawn-failed",
        }
    }
}

/// One finished helm call, as reported to an [`Observer`]. Carries no values,
/// arguments or output.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// Which subcommand.
    pub command: HelmCommand,
    /// Release, when the command has one.
    pub release: Option<&'a str>,
    /// Namespace, when the command has one.
    pub namespace: Option<&'a str>,
    /// Wall time from spawn to exit.
    pub duration: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

/// Hears about every helm call (for metrics and the UI's history).
pub trait Observer: Send + Sync {
    /// Called once per call, after it ended. Must not block.
    fn helm_finished(&self, invocation: &Invocation<'_>) {
        let _ = invocation;
    }
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// Options for [`HelmCli::upgrade_install`].
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    /// Revision description; coxswain puts its [`Fingerprint`] here.
    pub description: Option<String>,
    /// helm's `--timeout` for each Kubernetes operation, hooks included.
    pub timeout: Duration,
    /// Create the namespace on first install.
    pub create_namespace: bool,
    /// Replace objects that cannot be patched (`--force` / `--force-replace`).
    pub force: bool,
    /// Delete objects this upgrade created when it fails.
    pub cleanup_on_fail: bool,
    /// Do not install the chart's `crds/` on first install.
    pub skip_crds: bool,
    /// Revisions helm keeps (`--history-max`); helm's default (10) when unset.
    pub history_max: Option<u32>,
}

impl Default for UpgradeOptions {
    fn default() -> Self {
        Self {
            description: None,
            timeout: Duration::from_secs(300),
            create_namespace: false,
            force: false,
            cleanup_on_fail: false,
            skip_crds: false,
            history_max: None,
        }
    }
}

/// Options for [`HelmCli::rollback`].
#[derive(Debug, Clone)]
pub struct RollbackOptions {
    /// helm's `--timeout` for each Kubernetes operation, hooks included.
    pub timeout: Duration,
    /// Replace objects that cannot be patched.
    pub force: bool,
    /// Delete objects the rollback created when it fails.
    pub cleanup_on_fail: bool,
    /// Revisions helm keeps.
    pub history_max: Option<u32>,
    /// Description of the new revision; Helm 4 only (Helm 3 always writes "Rollback to N").
    pub description: Option<String>,
}

impl Default for RollbackOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            force: false,
            cleanup_on_fail: false,
            history_max: None,
            description: None,
        }
    }
}

/// Options for [`HelmCli::uninstall`].
#[derive(Debug, Clone)]
pub struct UninstallOptions {
    /// helm's `--timeout` for hooks.
    pub timeout: Duration,
    /// Keep the release history (status `uninstalled`).
    pub keep_history: bool,
    /// Succeed when the release does not exist.
    pub ignore_not_found: bool,
}

impl Default for UninstallOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            keep_history: false,
            ignore_not_found: false,
        }
    }
}

/// Options for [`HelmCli::test`].
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// How long the test pods may take.
    pub timeout: Duration,
    /// Print the test pods' logs (they end up in the output or the error).
    pub logs: bool,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            logs: false,
        }
    }
}

/// Options for [`HelmCli::template`].
#[derive(Debug, Clone, Default)]
pub struct TemplateOptions {
    /// Include the chart's `crds/`.
    pub include_crds: bool,
    /// Render as an upgrade (`.Release.IsUpgrade`).
    pub is_upgrade: bool,
    /// `.Capabilities.KubeVersion`.
    pub kube_version: Option<String>,
    /// Extra `.Capabilities.APIVersions`.
    pub api_versions: Vec<String>,
}

/// Which releases `helm list` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// One namespace.
    Namespace(String),
    /// Every namespace the credentials can read.
    AllNamespaces,
}

/// A helm binary of a known version, ready to run commands.
#[derive(Clone)]
pub struct HelmCli {
    config: HelmConfig,
    version: HelmVersion,
    observer: Arc<dyn Observer>,
}

impl fmt::Debug for HelmCli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HelmCli")
            .field("config", &self.config)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl HelmCli {
    /// Asks the binary for its version and keeps it for choosing flags.
    pub async fn detect(config: HelmConfig) -> Result<Self, HelmError> {
        Self::detect_with_observer(config, Arc::new(NoObserver)).await
    }

    /// As [`HelmCli::detect`], reporting every call to `observer`. With a
    /// `state_dir`, the answer is kept there beside helm's own cache, keyed
    /// by the binary's path, size, modification time and inode, so `helm
    /// version` runs once per binary, not once per process.
    pub async fn detect_with_observer(
        config: HelmConfig,
        observer: Arc<dyn Observer>,
    ) -> Result<Self, HelmError> {
        let remembered = config
            .state_dir
            .as_deref()
            .map(|dir| dir.join(VERSION_FILE));
        let identity = binary_identity(&config.binary);
        if let (Some(file), Some(identity)) = (&remembered, &identity)
            && let Some(version) = remembered_version(file, identity)
        {
            tracing::debug!(target: "coxswain::helm", binary = %config.binary.display(), %version, "helm version remembered");
            return Ok(Self {
                config,
                version,
                observer,
            });
        }
        let call = Call {
            command: HelmCommand::Version,
            release: None,
            namespace: None,
            args: args::version(),
            timeout: config.read_timeout,
        };
        let out = process::run(&config, observer.as_ref(), call).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = HelmVersion::parse(&text).ok_or_else(|| HelmError::UnsupportedVersion {
            binary: config.binary.clone(),
            version: text.trim().chars().take(100).collect(),
        })?;
        tracing::debug!(target: "coxswain::helm", binary = %config.binary.display(), %version, "detected helm");
        if let (Some(file), Some(identity)) = (&remembered, &identity) {
            let text = format!("{identity}\n{version}\n");
            if let Err(e) =
                crate::atomic::write(file, text.as_bytes(), crate::atomic::WriteOptions::PUBLIC)
            {
                // Only a cost: the next process asks helm again.
                tracing::debug!(target: "coxswain::helm", file = %file.display(), error = %e, "cannot remember the helm version");
            }
        }
        Ok(Self {
            config,
            version,
            observer,
        })
    }

    /// The version found by [`HelmCli::detect`].
    pub fn version(&self) -> &HelmVersion {
        &self.version
    }

    /// The configuration in use.
    pub fn config(&self) -> &HelmConfig {
        &self.config
    }

    /// Where this helm keeps its release records: `HELM_DRIVER` from the
    /// extra environment, else from the agent's own (which helm inherits).
    pub fn storage_driver(&self) -> Result<storage::Driver, storage::StorageError> {
        let from_config = self
            .config
            .extra_env
            .iter()
            .rev()
            .find(|(k, _)| k == "HELM_DRIVER")
            .map(|(_, v)| v.clone());
        let value = from_config.or_else(|| std::env::var_os("HELM_DRIVER"));
        storage::Driver::from_helm_driver(value.as_deref().map(|v| v.to_string_lossy()).as_deref())
    }

    fn connection(&self) -> args::Connection<'_> {
        args::Connection {
            kubeconfig: self.config.kubeconfig.as_deref(),
            kube_context: self.config.kube_context.as_deref(),
        }
    }

    async fn call(&self, call: Call<'_>) -> Result<process::Output, HelmError> {
        process::run(&self.config, self.observer.as_ref(), call).await
    }

    fn read_call<'a>(
        &self,
        command: HelmCommand,
        release: Option<&'a str>,
        namespace: Option<&'a str>,
        args: Vec<OsString>,
    ) -> Call<'a> {
        Call {
            command,
            release,
            namespace,
            args,
            timeout: self.config.read_timeout,
        }
    }

    fn write_call<'a>(
        &self,
        command: HelmCommand,
        release: &'a str,
        namespace: &'a str,
        args: Vec<OsString>,
        helm_timeout: Duration,
    ) -> Call<'a> {
        Call {
            command,
            release: Some(release),
            namespace: Some(namespace),
            args,
            timeout: helm_timeout.saturating_add(self.config.grace),
        }
    }

    /// `helm upgrade --install`: installs or upgrades `release` from a chart
    /// archive or directory with exactly `values` (`--reset-values`). Returns
    /// the new revision, with its manifest as helm 3 and 4 print it in
    /// `upgrade -o json` (no `helm get manifest` needed after it). Does not
    /// wait for readiness (hooks excepted) and never rolls back; the caller
    /// checks health.
    pub async fn upgrade_install(
        &self,
        release: &str,
        namespace: &str,
        chart: &Path,
        values: &serde_json::Value,
        opts: &UpgradeOptions,
    ) -> Result<Upgraded, HelmError> {
        check_names(release, namespace)?;
        let values_file = self.values_file(release, namespace, values)?;
        let argv = args::upgrade(
            self.version.major,
            &self.connection(),
            release,
            namespace,
            chart,
            values_file.path(),
            opts,
        );
        let call = self.write_call(
            HelmCommand::UpgradeInstall,
            release,
            namespace,
            argv,
            opts.timeout,
        );
        let out = self.call(call).await?;
        drop(values_file);
        let made: Release =
            parse_json(HelmCommand::UpgradeInstall, release, namespace, &out.stdout)?;
        let manifest: ManifestOnly =
            parse_json(HelmCommand::UpgradeInstall, release, namespace, &out.stdout)?;
        Ok(Upgraded {
            release: made,
            manifest: Manifest(manifest.manifest),
        })
    }

    /// `helm rollback` to exactly `revision` (never "the previous one").
    pub async fn rollback(
        &self,
        release: &str,
        namespace: &str,
        revision: u32,
        opts: &RollbackOptions,
    ) -> Result<(), HelmError> {
        check_names(release, namespace)?;
        if revision == 0 {
            // helm reads 0 as "the previous revision", which is not what a caller noting a revision means.
            return Err(HelmError::InvalidArgument {
                what: "revision",
                value: "0".into(),
                reason: "revisions start at 1",
            });
        }
        let argv = args::rollback(
            self.version.major,
            &self.connection(),
            release,
            namespace,
            revision,
            opts,
        );
        let call = self.write_call(
            HelmCommand::Rollback,
            release,
            namespace,
            argv,
            opts.timeout,
        );
        self.call(call).await.map(drop)
    }

    /// `helm uninstall`.
    pub async fn uninstall(
        &self,
        release: &str,
        namespace: &str,
        opts: &UninstallOptions,
    ) -> Result<(), HelmError> {
        check_names(release, namespace)?;
        let argv = args::uninstall(
            self.version.major,
            &self.connection(),
            release,
            namespace,
            opts,
        );
        let call = self.write_call(
            HelmCommand::Uninstall,
            release,
            namespace,
            argv,
            opts.timeout,
        );
        self.call(call).await.map(drop)
    }

    /// `helm history -o json`, oldest first, at most `max` revisions
    /// (0 = helm's default of 256). [`HelmError::ReleaseNotFound`] when the
    /// release was never installed.
    pub async fn history(
        &self,
        release: &str,
        namespace: &str,
        max: u32,
    ) -> Result<Vec<HistoryEntry>, HelmError> {
        check_names(release, namespace)?;
        let max = if max == 0 { 256 } else { max };
        let argv = args::history(&self.connection(), release, namespace, max);
        let call = self.read_call(HelmCommand::History, Some(release), Some(namespace), argv);
        let out = self.call(call).await?;
        let mut entries: Vec<HistoryEntry> =
            parse_json(HelmCommand::History, release, namespace, &out.stdout)?;
        entries.sort_by_key(|e| e.revision);
        Ok(entries)
    }

    /// `helm status -o json` of the latest or a given revision.
    pub async fn status(
        &self,
        release: &str,
        namespace: &str,
        revision: Option<u32>,
    ) -> Result<Release, HelmError> {
        check_names(release, namespace)?;
        let argv = args::status(&self.connection(), release, namespace, revision);
        let call = self.read_call(HelmCommand::Status, Some(release), Some(namespace), argv);
        let out = self.call(call).await?;
        parse_json(HelmCommand::Status, release, namespace, &out.stdout)
    }

    /// `helm list -o json` of every release in every state (pending and failed included).
    pub async fn list(&self, scope: &ListScope) -> Result<Vec<ListEntry>, HelmError> {
        let namespace = match scope {
            ListScope::Namespace(ns) => {
                check_namespace(ns)?;
                Some(ns.as_str())
            }
            ListScope::AllNamespaces => None,
        };
        let argv = args::list(self.version.major, &self.connection(), scope);
        let call = self.read_call(HelmCommand::List, None, namespace, argv);
        let out = self.call(call).await?;
        let target = Target {
            release: None,
            namespace: namespace.map(str::to_owned),
        };
        parse_json_target(HelmCommand::List, target, &out.stdout)
    }

    /// `helm get manifest`: the release's objects as multi-document YAML.
    pub async fn get_manifest(
        &self,
        release: &str,
        namespace: &str,
        revision: Option<u32>,
    ) -> Result<String, HelmError> {
        check_names(release, namespace)?;
        let argv = args::get_manifest(&self.connection(), release, namespace, revision);
        let call = self.read_call(
            HelmCommand::GetManifest,
            Some(release),
            Some(namespace),
            argv,
        );
        let out = self.call(call).await?;
        utf8(HelmCommand::GetManifest, release, namespace, out.stdout)
    }

    /// `helm test`: runs the chart's test hooks; the error carries helm's message.
    pub async fn test(
        &self,
        release: &str,
        namespace: &str,
        opts: &TestOptions,
    ) -> Result<String, HelmError> {
        check_names(release, namespace)?;
        let argv = args::test(&self.connection(), release, namespace, opts);
        let call = self.write_call(HelmCommand::Test, release, namespace, argv, opts.timeout);
        let out = self.call(call).await?;
        utf8(HelmCommand::Test, release, namespace, out.stdout)
    }

    /// `helm template`: renders a chart offline with `values`.
    pub async fn template(
        &self,
        release: &str,
        namespace: &str,
        chart: &Path,
        values: &serde_json::Value,
        opts: &TemplateOptions,
    ) -> Result<String, HelmError> {
        check_names(release, namespace)?;
        let values_file = self.values_file(release, namespace, values)?;
        let argv = args::template(release, namespace, chart, values_file.path(), opts);
        let call = self.read_call(HelmCommand::Template, Some(release), Some(namespace), argv);
        let out = self.call(call).await?;
        drop(values_file);
        utf8(HelmCommand::Template, release, namespace, out.stdout)
    }

    /// Writes values to a fresh 0600 file, deleted when the handle drops.
    fn values_file(
        &self,
        release: &str,
        namespace: &str,
        values: &serde_json::Value,
    ) -> Result<tempfile::NamedTempFile, HelmError> {
        let target = || Target {
            release: Some(release.to_owned()),
            namespace: Some(namespace.to_owned()),
        };
        write_values_file(self.config.temp_dir.as_deref(), values).map_err(|e| match e {
            ValuesFileError::NotAMapping(found) => HelmError::ValuesNotAMapping {
                target: target(),
                found,
            },
            ValuesFileError::Io(source) => HelmError::ValuesFile {
                target: target(),
                source,
            },
        })
    }
}

enum ValuesFileError {
    NotAMapping(&'static str),
    Io(std::io::Error),
}

/// JSON is YAML, so helm reads the file as is; no YAML serializer involved.
fn write_values_file(
    dir: Option<&Path>,
    values: &serde_json::Value,
) -> Result<tempfile::NamedTempFile, ValuesFileError> {
    use std::os::unix::fs::PermissionsExt;
    let empty = serde_json::Value::Object(serde_json::Map::new());
    let values = match values {
        serde_json::Value::Object(_) => values,
        serde_json::Value::Null => &empty,
        other => return Err(ValuesFileError::NotAMapping(json_type(other))),
    };
    let mut builder = tempfile::Builder::new();
    builder
        .prefix("coxswain-values-")
        .suffix(".json")
        .permissions(std::fs::Permissions::from_mode(0o600));
    let mut file = match dir {
        Some(dir) => builder.tempfile_in(dir),
        None => builder.tempfile(),
    }
    .map_err(ValuesFileError::Io)?;
    // Small, local and written once per helm call; blocking here is cheaper than a thread hop.
    serde_json::to_writer(&mut file, values).map_err(|e| ValuesFileError::Io(e.into()))?;
    file.flush().map_err(ValuesFileError::Io)?;
    Ok(file)
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// What `helm upgrade --install` made.
#[derive(Debug, Clone)]
pub struct Upgraded {
    /// The new revision.
    pub release: Release,
    /// Its manifest.
    pub manifest: Manifest,
}

impl std::ops::Deref for Upgraded {
    type Target = Release;

    fn deref(&self) -> &Release {
        &self.release
    }
}

/// A rendered manifest. It may hold rendered Secrets, so `Debug` prints
/// only its size; never log [`Manifest::as_str`].
#[derive(Clone, Default)]
pub struct Manifest(String);

impl Manifest {
    /// The YAML documents.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Manifest({} bytes)", self.0.len())
    }
}

/// The `manifest` of helm's release JSON, read on its own so that
/// [`Release`] (which `Debug` prints) never holds it.
#[derive(serde::Deserialize)]
struct ManifestOnly {
    #[serde(default)]
    manifest: String,
}

fn parse_json<T: serde::de::DeserializeOwned>(
    command: HelmCommand,
    release: &str,
    namespace: &str,
    stdout: &[u8],
) -> Result<T, HelmError> {
    let target = Target {
        release: Some(release.to_owned()),
        namespace: Some(namespace.to_owned()),
    };
    parse_json_target(command, target, stdout)
}

fn parse_json_target<T: serde::de::DeserializeOwned>(
    command: HelmCommand,
    target: Target,
    stdout: &[u8],
) -> Result<T, HelmError> {
    serde_json::from_slice(stdout).map_err(|e| HelmError::BadOutput {
        command,
        target,
        // The error names line and column, never the content (which may hold values).
        reason: format!("not the expected JSON: {e}"),
    })
}

fn utf8(
    command: HelmCommand,
    release: &str,
    namespace: &str,
    stdout: Vec<u8>,
) -> Result<String, HelmError> {
    String::from_utf8(stdout).map_err(|e| HelmError::BadOutput {
        command,
        target: Target {
            release: Some(release.to_owned()),
            namespace: Some(namespace.to_owned()),
        },
        reason: format!("not UTF-8: {e}"),
    })
}

/// Helm's own rule for release names: lowercase DNS-1123 subdomain, at most 53 characters.
fn check_names(release: &str, namespace: &str) -> Result<(), HelmError> {
    let ok = !release.is_empty() && release.len() <= 53 && release.split('.').all(dns_label);
    if !ok {
        return Err(HelmError::InvalidArgument {
            what: "release name",
            value: release.chars().take(80).collect(),
            reason: "must be lowercase letters, digits, '-' and '.', start and end alphanumeric, at most 53 characters",
        });
    }
    check_namespace(namespace)
}

fn check_namespace(namespace: &str) -> Result<(), HelmError> {
    if namespace.len() <= 63 && dns_label(namespace) {
        Ok(())
    } else {
        Err(HelmError::InvalidArgument {
            what: "namespace",
            value: namespace.chars().take(80).collect(),
            reason: "must be a DNS label: lowercase letters, digits and '-', start and end alphanumeric, at most 63 characters",
        })
    }
}

fn dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parses_versions() {
        let v = HelmVersion::parse("v4.3.1\n").unwrap();
        assert_eq!(v.major, HelmMajor::V4);
        assert_eq!(v.to_string(), "v4.3.1");
        assert_eq!(HelmVersion::parse("v3.22.0").unwrap().major, HelmMajor::V3);
        assert_eq!(
            HelmVersion::parse("v3.19.0-rc.1").unwrap().major,
            HelmMajor::V3
        );
        // What `go install` builds report.
        let short = HelmVersion::parse("v4.3").unwrap();
        assert_eq!((short.major, short.version.minor), (HelmMajor::V4, 3));
        assert_eq!(HelmVersion::parse("3.22").unwrap().major, HelmMajor::V3);
        for bad in [
            "",
            "v2.17.0",
            "v5.0.0",
            "v4",
            "v4.",
            "v4.x",
            "v.3",
            "garbage",
            "<no value>",
        ] {
            assert_eq!(HelmVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_that_helm_would_misread_are_refused() {
        assert!(check_names("wiki", "apps").is_ok());
        assert!(check_names("my-app.v2", "kube-system").is_ok());
        for (release, ns) in [
            ("--atomic", "apps"),
            ("-f", "apps"),
            ("Wiki", "apps"),
            ("", "apps"),
            (&"a".repeat(54), "apps"),
            ("wiki", "--all-namespaces"),
            ("wiki", ""),
            ("wiki", "a.b"),
            ("wiki ", "apps"),
        ] {
            assert!(
                matches!(
                    check_names(release, ns),
                    Err(HelmError::InvalidArgument { .. })
                ),
                "{release:?} {ns:?}"
            );
        }
    }

    #[test]
    fn values_file_is_private_json_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let values = serde_json::json!({"password": "hunter2", "replicas": 2});
        let file = write_values_file(Some(dir.path()), &values).unwrap_or_else(|_| panic!("write"));
        let path = file.path().to_owned();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, values);
        drop(file);
        assert!(!path.exists());

        let null = write_values_file(Some(dir.path()), &serde_json::Value::Null)
            .unwrap_or_else(|_| panic!("write"));
        assert_eq!(std::fs::read_to_string(null.path()).unwrap(), "{}");
        assert!(matches!(
            write_values_file(Some(dir.path()), &serde_json::json!([1])),
            Err(ValuesFileError::NotAMapping("a list"))
        ));
    }
}
