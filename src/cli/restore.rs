//! `coxswain restore`: restore the Velero backup taken before a release's upgrade.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

use coxswain::agent::restore::{RestoreOptions, restore};
use coxswain::duration::Duration;

/// Restore the Velero backup the agent took before a release's upgrade.
///
/// Reads the subscription (the release's namespace from its status, Velero's
/// namespace from spec.velero), takes the backup named with --backup (it must be
/// the agent's backup of that release) or else the release's newest completed one,
/// creates a Velero Restore of the release's namespace with
/// existingResourcePolicy: update, and waits for it. Objects the backup holds are
/// created or updated back to their backed-up content: data written to them since
/// the backup is lost. Objects created since are left alone. See docs/backup.md.
#[derive(Debug, Parser)]
#[command(
    after_help = "Example:\n  coxswain restore --namespace coxswain --subscription stack --release ledger\n  coxswain restore --namespace coxswain --subscription stack --release ledger --backup ledger-8-20261203155044"
)]
pub struct Args {
    /// A kubeconfig file [default: in-cluster config, else KUBECONFIG or ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The subscription's namespace [default: the kubeconfig's].
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// The ChannelSubscription.
    #[arg(long, value_name = "NAME")]
    subscription: String,
    /// The release whose backup is restored.
    #[arg(long, value_name = "RELEASE")]
    release: String,
    /// The backup to restore [default: the release's newest completed one].
    #[arg(long, value_name = "NAME")]
    backup: Option<String>,
    /// How long the restore may take.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    timeout: Duration,
}

pub async fn run(args: Args) -> Result<()> {
    let (client, namespace) =
        super::kube_client(args.kubeconfig.as_deref(), args.namespace.as_deref()).await?;
    let opts = RestoreOptions {
        namespace,
        subscription: args.subscription,
        release: args.release,
        backup: args.backup,
        timeout: args.timeout.to_std(),
    };
    let done = restore(&client, &opts).await?;
    println!(
        "restored backup {} into namespace {}: restore {} in {} completed{}",
        done.backup,
        done.namespace,
        done.restore,
        done.velero_namespace,
        done.items
            .map(|n| format!(", {n} item(s)"))
            .unwrap_or_default()
    );
    Ok(())
}
