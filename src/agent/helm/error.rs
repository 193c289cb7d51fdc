//! Errors of the helm shim. Every variant names the helm command and the
//! release it was about.

use std::path::PathBuf;
use std::time::Duration;

use super::HelmCommand;

/// Which release a failed call was about, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Release name, when the command has one.
    pub release: Option<String>,
    /// Namespace, when the command has one.
    pub namespace: Option<String>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.release, &self.namespace) {
            (Some(r), Some(ns)) => write!(f, "release {ns}/{r}"),
            (Some(r), None) => write!(f, "release {r}"),
            (None, Some(ns)) => write!(f, "namespace {ns}"),
            (None, None) => f.write_str("(no release)"),
        }
    }
}

/// What can go wrong when running helm.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// The helm binary could not be started (missing, not executable).
    #[error("cannot run helm binary {binary}: {source}")]
    Spawn {
        /// Path or name of the binary.
        binary: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// helm exited with an error; `stderr` is its trimmed, bounded message.
    #[error("helm {command} for {target} failed ({exit}): {stderr}")]
    Failed {
        /// The helm command.
        command: HelmCommand,
        /// Release and namespace.
        target: Target,
        /// Exit code or signal, as text.
        exit: String,
        /// helm's standard error, trimmed and bounded.
        stderr: String,
    },
    /// helm reported that the release does not exist.
    #[error("helm {command} for {target}: release not found")]
    ReleaseNotFound {
        /// The helm command.
        command: HelmCommand,
        /// Release and namespace.
        target: Target,
    },
    /// helm ran longer than the call's timeout and was stopped.
    #[error("helm {command} for {target} did not finish within {} and was stopped", seconds(*.timeout))]
    TimedOut {
        /// The helm command.
        command: HelmCommand,
        /// Release and namespace.
        target: Target,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// helm printed more than the configured limit on standard output.
    #[error("helm {command} for {target} printed more than {limit} bytes")]
    OutputTooLarge {
        /// The helm command.
        command: HelmCommand,
        /// Release and namespace.
        target: Target,
        /// The limit in bytes.
        limit: usize,
    },
    /// helm's output was not what this code expects.
    #[error("helm {command} for {target} printed output that cannot be read: {reason}")]
    BadOutput {
        /// The helm command.
        command: HelmCommand,
        /// Release and namespace.
        target: Target,
        /// What was wrong.
        reason: String,
    },
    /// The values file could not be written.
    #[error("cannot write the values file for {target}: {source}")]
    ValuesFile {
        /// Release and namespace.
        target: Target,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Values must be a mapping (or null for none).
    #[error("values for {target} must be a mapping, not {found}")]
    ValuesNotAMapping {
        /// Release and namespace.
        target: Target,
        /// The JSON type found.
        found: &'static str,
    },
    /// A release, namespace or revision that helm would misread or reject.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// `helm version` reported something other than Helm 3 or 4.
    #[error(
        "helm binary {binary} reports version {version:?}; coxswain supports Helm 3 and Helm 4"
    )]
    UnsupportedVersion {
        /// Path or name of the binary.
        binary: PathBuf,
        /// What it printed.
        version: String,
    },
}

/// `90s`, or milliseconds below a second.
fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

impl HelmError {
    /// True when helm said the release does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::ReleaseNotFound { .. })
    }

    /// The helm command this error came from, when there was one (for metric labels).
    pub fn command(&self) -> Option<HelmCommand> {
        match self {
            Self::Failed { command, .. }
            | Self::ReleaseNotFound { command, .. }
            | Self::TimedOut { command, .. }
            | Self::OutputTooLarge { command, .. }
            | Self::BadOutput { command, .. } => Some(*command),
            _ => None,
        }
    }
}
