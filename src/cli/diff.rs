//! `coxswain diff`: what the upgrades of a subscription would change.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use kube::Api;

use coxswain::crd::ChannelSubscription;
use coxswain::duration::Duration;

/// Show what a subscription's upgrades would change in the cluster, object by object.
///
/// Reads the ChannelSubscription and does what the agent's check does up to the
/// plan, changing nothing: reads the trust anchor, fetches and verifies the
/// channel, reads this cluster's values and what helm has installed. Then, for
/// each release awaiting approval and each upgrade the plan would run (only
/// RELEASE when named), it downloads and verifies the chart as the agent does,
/// renders it with `helm template` (the channel's values merged with the
/// subscription's, passed in a 0600 file) and compares it with `helm get
/// manifest` of the installed revision: objects added, removed and changed, with
/// a unified diff of each. Secret values are never shown: only which keys of
/// `data` and `stringData` are added, removed or changed.
///
/// Exits 0 with the diffs printed, 1 when nothing could be rendered.
#[derive(Debug, Parser)]
#[command(
    after_help = "Examples:\n  coxswain diff -n coxswain stack          # every pending upgrade\n  coxswain diff -n coxswain stack wiki     # one release\n  kubectl -n coxswain annotate channelsubscription stack coxswain.dev/approve=wiki=3.0.0 --overwrite"
)]
pub struct Args {
    /// A kubeconfig file [default: KUBECONFIG or ~/.kube/config, else in-cluster config].
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// The subscription's namespace [default: the kubeconfig's].
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// The ChannelSubscription.
    #[arg(value_name = "SUBSCRIPTION")]
    subscription: String,
    /// Only this release.
    #[arg(value_name = "RELEASE")]
    release: Option<String>,
    /// The helm binary.
    #[arg(long, value_name = "PATH", env = coxswain::helm::HELM_ENV, default_value = "helm")]
    helm: PathBuf,
    /// Where chart archives (by digest) are cached [default: a `coxswain-diff`
    /// directory in the temporary directory].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Print the diffs as JSON (the `diffs` of /api/v1/status).
    #[arg(long)]
    json: bool,
    /// Time allowed for one request to the update site.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = super::agent::parse_timeout)]
    http_timeout: Duration,
    /// Time allowed for the channel's fetch and each chart download.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::agent::parse_timeout)]
    fetch_deadline: Duration,
}

pub async fn run(args: Args) -> Result<()> {
    let (client, namespace) =
        super::kube_client(args.kubeconfig.as_deref(), args.namespace.as_deref()).await?;
    let sub = Api::<ChannelSubscription>::namespaced(client.clone(), &namespace)
        .get(&args.subscription)
        .await
        .with_context(|| {
            format!(
                "cannot read ChannelSubscription {namespace}/{}",
                args.subscription
            )
        })?;
    let ctx = super::agent::context(
        client,
        namespace,
        &super::agent::ContextArgs {
            helm: args.helm.clone(),
            kubeconfig: args.kubeconfig.clone(),
            // Not the agent's directory: its values directory is emptied on start.
            cache_dir: Some(
                args.cache_dir
                    .clone()
                    .unwrap_or_else(|| std::env::temp_dir().join("coxswain-diff")),
            ),
            http_timeout: args.http_timeout,
            fetch_deadline: args.fetch_deadline,
            stuck_after: Duration::from_mins(15),
            agent_release: None,
        },
    )
    .await?;
    let diffs =
        coxswain::agent::diff::diff_subscription(&ctx, &sub, args.release.as_deref()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&diffs)?);
    } else if diffs.is_empty() {
        println!(
            "{}: no upgrade to show (every release is at its desired state, or waits for something else; see its status)",
            args.subscription
        );
    } else {
        for d in &diffs {
            print!("{}", d.to_text());
        }
    }
    if !diffs.is_empty() && diffs.iter().all(|d| d.diff.is_none()) {
        bail!("no diff could be rendered");
    }
    Ok(())
}
