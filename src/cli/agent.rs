//! `coxswain agent`: the cluster agent.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::Parser;

use coxswain::agent::fetch::{Fetcher, RetryPolicy};
use coxswain::agent::{self, Context, Verdict, leader};
use coxswain::duration::Duration;
use coxswain::health::HealthCheck;
use coxswain::helm::{HelmCli, HelmConfig};
use coxswain::metrics::Metrics;
use coxswain::site::Limits;
use coxswain::ui::UiState;

/// Keep this namespace's ChannelSubscriptions' Helm releases up to date.
///
/// Watches every ChannelSubscription of the namespace and reconciles each when it
/// changes and on its interval (with jitter): fetch the channel's signed index
/// (conditional GET, retries), verify it against the trust root from the
/// subscription's trustRef (following rotations under SERVER/trust/), plan against
/// what helm reports, upgrade in dependency order, check health, run helm test when
/// asked, and roll back what fails. Status, Events and logs say what happened.
///
/// With --once: one reconcile of every subscription, then exit 0 when every release
/// is at its desired state (a suspended subscription counts as done), 2 when
/// something was rolled back, is degraded or waits on a failed sequence, and 1 on
/// any other error (no subscription, verification failure, server unreachable),
/// with the reason on stderr.
///
/// Any number of replicas may serve a namespace: they elect a leader with a
/// coordination.k8s.io Lease (--lease-name) in the namespace, and only the leader
/// acts; followers serve the web UI and /metrics from the subscriptions' status.
#[derive(Debug, Parser)]
#[command(
    after_help = "Examples:\n  coxswain agent                       # in a pod: in-cluster config, its own namespace\n  coxswain agent --kubeconfig ~/.kube/config --namespace coxswain --once"
)]
pub struct Args {
    /// A kubeconfig file [default: in-cluster config, else KUBECONFIG or ~/.kube/config].
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// The namespace whose subscriptions are served [default: the config's namespace].
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// Reconcile every subscription once and exit (0 done, 2 degraded, 1 error).
    #[arg(long)]
    once: bool,
    /// The helm binary.
    #[arg(long, value_name = "PATH", env = coxswain::helm::HELM_ENV, default_value = "helm")]
    helm: PathBuf,
    /// Where chart archives (by digest) and helm's cache live.
    #[arg(long, value_name = "DIR", env = "COXSWAIN_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Where the web UI, /api/v1/status, /healthz, /readyz and /metrics are
    /// served (`off`: nowhere). Not served with --once.
    #[arg(long, value_name = "ADDR", env = "COXSWAIN_LISTEN", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    listen: Listen,
    /// After SIGTERM: how long the running helm call and its health check get
    /// before the agent records what it knows and exits (a helm call itself is
    /// never killed by choice). Keep it below the pod's
    /// terminationGracePeriodSeconds.
    #[arg(
        long,
        value_name = "DURATION",
        env = "COXSWAIN_STOP_GRACE",
        default_value = "20s"
    )]
    stop_grace: coxswain::duration::Duration,
    /// How long a release stuck pending-install, pending-upgrade or
    /// pending-rollback by an operation coxswain did not start is left alone
    /// before the agent repairs it (its own interrupted operations are
    /// repaired at once).
    #[arg(
        long,
        value_name = "DURATION",
        env = "COXSWAIN_STUCK_AFTER",
        default_value = "15m"
    )]
    stuck_after: coxswain::duration::Duration,
    /// The helm release this agent runs from, as NAMESPACE/NAME (the chart
    /// sets it): when a channel lists that release, the agent updates it
    /// last, after every other release of the plan is done and healthy, and
    /// rolls it back like any other when its new pods never become ready.
    #[arg(long, value_name = "NAMESPACE/NAME", env = "COXSWAIN_AGENT_RELEASE", value_parser = parse_release_id)]
    agent_release: Option<coxswain::plan::ReleaseId>,
    /// Elect a leader among the replicas with a Lease in the namespace; only the
    /// leader acts. On by default; `--leader-elect=false` turns it off (then every
    /// replica acts: run one). Never with --once.
    #[arg(long, value_name = "BOOL", env = "COXSWAIN_LEADER_ELECT", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value_t = true,
          action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// The Lease the replicas compete for (in the served namespace).
    #[arg(long, value_name = "NAME", env = "COXSWAIN_LEASE_NAME", default_value = leader::DEFAULT_LEASE_NAME)]
    lease_name: String,
    /// How long the leader's Lease holds after each renewal; a replica takes over
    /// this long after the leader stopped renewing (the leader renews a third of it
    /// before it expires). At least 2s.
    #[arg(
        long,
        value_name = "DURATION",
        env = "COXSWAIN_LEASE_DURATION",
        default_value = "15s"
    )]
    lease_duration: Duration,
    /// Time allowed for one request to the update site (index, signatures,
    /// a trust root or a chart), from connecting to the last byte; a slower
    /// answer is a timeout, retried like any transient failure. Connecting
    /// alone has 10s.
    #[arg(
        long,
        value_name = "DURATION",
        env = "COXSWAIN_HTTP_TIMEOUT",
        default_value = "60s",
        value_parser = parse_timeout
    )]
    http_timeout: coxswain::duration::Duration,
    /// Time allowed for one whole fetch of a channel (trust roots, index and
    /// signatures) and for each chart download, every request, retry and
    /// backoff delay of it counted: a site that answers each request just
    /// inside --http-timeout cannot hold a check longer than this. Past it
    /// the check fails as `unreachable` and the next one tries again.
    #[arg(
        long,
        value_name = "DURATION",
        env = "COXSWAIN_FETCH_DEADLINE",
        default_value = "5m",
        value_parser = parse_timeout
    )]
    fetch_deadline: coxswain::duration::Duration,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Where the web server listens.
#[derive(Debug, Clone, Copy)]
pub enum Listen {
    /// At this address.
    At(std::net::SocketAddr),
    /// Nowhere.
    Off,
}

fn parse_listen(text: &str) -> Result<Listen, String> {
    if text == "off" {
        return Ok(Listen::Off);
    }
    text.parse().map(Listen::At).map_err(|_| {
        format!("`{text}` is not an address like 127.0.0.1:8080 or 0.0.0.0:8080, or `off`")
    })
}

pub(crate) fn parse_timeout(text: &str) -> Result<coxswain::duration::Duration, String> {
    let d = coxswain::duration::Duration::parse(text).map_err(|e| e.to_string())?;
    if d.as_secs() == 0 {
        return Err("0s would stop every request at once; write e.g. `60s`".into());
    }
    Ok(d)
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

pub async fn run(args: Args) -> Result<()> {
    let (client, namespace) =
        super::kube_client(args.kubeconfig.as_deref(), args.namespace.as_deref()).await?;
    let ctx = context(
        client,
        namespace,
        &ContextArgs {
            helm: args.helm.clone(),
            kubeconfig: args.kubeconfig.clone(),
            cache_dir: args.cache_dir.clone(),
            http_timeout: args.http_timeout,
            fetch_deadline: args.fetch_deadline,
            stuck_after: args.stuck_after,
            agent_release: args.agent_release.clone(),
        },
    )
    .await?;
    if !args.once {
        let election = start_election(&args, &ctx).await?;
        if let Listen::At(addr) = args.listen {
            let ui = UiState {
                agent: ctx.state.clone(),
                metrics: ctx.metrics.clone(),
                namespace: ctx.namespace.clone(),
            };
            let (local, server) = coxswain::ui::bind(addr, ui).await?;
            tracing::info!(address = %local, "web UI and /metrics listening");
            tokio::spawn(async move {
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "web server stopped");
                }
            });
        }
        agent::run(Arc::new(ctx), args.stop_grace.to_std()).await;
        if let Some(election) = election {
            election.stop().await;
        }
        return Ok(());
    }
    tokio::spawn(agent::stop_signal(
        ctx.gate.clone(),
        args.stop_grace.to_std(),
    ));
    let outcomes = agent::run_once(&ctx).await?;
    let mut worst = Verdict::Done;
    for outcome in &outcomes {
        match outcome {
            Ok(o) => {
                worst = worst.max(o.verdict);
                if o.verdict == Verdict::Done {
                    println!("{}", o.message);
                } else {
                    eprintln!("{}", o.message);
                }
            }
            Err(e) => {
                worst = Verdict::Error;
                eprintln!("error: {}", coxswain::site_verify::describe(e));
            }
        }
    }
    match worst {
        Verdict::Done => Ok(()),
        Verdict::Error => bail!(
            "{} subscription(s) could not be reconciled",
            count(&outcomes, Verdict::Error)
        ),
        Verdict::Progressing | Verdict::Degraded => {
            std::process::exit(i32::from(worst.exit_code()))
        }
    }
}

/// Starts leader election unless it is off: from here on, this replica acts
/// only while it holds the Lease.
async fn start_election(args: &Args, ctx: &Context) -> Result<Option<leader::Election>> {
    if !args.leader_elect {
        tracing::info!("leader election is off: this replica acts (run only one)");
        return Ok(None);
    }
    let config = leader::Config::new(
        &args.lease_name,
        args.lease_duration.to_std(),
        &leader::default_identity(),
    )?;
    let election = leader::elect(
        ctx.client.clone(),
        &ctx.namespace,
        config,
        ctx.gate.clone(),
        ctx.state.leader().clone(),
        ctx.metrics.clone(),
    )
    .await?;
    Ok(Some(election))
}

fn count(outcomes: &[Result<agent::Outcome, agent::AgentError>], verdict: Verdict) -> usize {
    outcomes
        .iter()
        .filter(|o| match o {
            Ok(o) => o.verdict == verdict,
            Err(_) => verdict == Verdict::Error,
        })
        .count()
}

/// `NAMESPACE/NAME`, both Kubernetes names.
fn parse_release_id(text: &str) -> Result<coxswain::plan::ReleaseId, String> {
    let (namespace, name) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not NAMESPACE/NAME"))?;
    let dns_label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    if !dns_label(namespace) || !dns_label(name) {
        return Err(format!(
            "`{text}`: namespace and release name must be lowercase DNS labels"
        ));
    }
    Ok(coxswain::plan::ReleaseId::new(namespace, name))
}

/// What an agent [`Context`] is made from (the agent's flags; `coxswain diff`
/// builds the same context, so it reads charts and values the agent's way).
pub(crate) struct ContextArgs {
    pub helm: PathBuf,
    pub kubeconfig: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub http_timeout: Duration,
    pub fetch_deadline: Duration,
    pub stuck_after: Duration,
    pub agent_release: Option<coxswain::plan::ReleaseId>,
}

/// The agent's context: helm detected, the chart cache and the private
/// values directory prepared.
pub(crate) async fn context(
    client: kube::Client,
    namespace: String,
    args: &ContextArgs,
) -> Result<Context> {
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("coxswain-agent"));
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("cannot create cache directory {}", cache_dir.display()))?;
    let values_dir = coxswain::agent::private_dir(&cache_dir.join("values"))
        .with_context(|| format!("cannot prepare {}", cache_dir.join("values").display()))?;
    let helm_config = HelmConfig {
        binary: args.helm.clone(),
        kubeconfig: args.kubeconfig.clone(),
        state_dir: Some(cache_dir.join("helm")),
        temp_dir: Some(values_dir),
        ..HelmConfig::default()
    };
    let metrics = Arc::new(Metrics::new());
    let helm = HelmCli::detect_with_observer(helm_config, metrics.clone())
        .await
        .with_context(|| format!("helm binary {}", args.helm.display()))?;
    metrics.set_build_info(&helm.version().to_string());
    let driver = helm.storage_driver()?;
    let ctx = Context {
        health: HealthCheck::new(client.clone()),
        events: agent::events::Events::new(client.clone()),
        driver,
        records: Default::default(),
        fetcher: Fetcher::new(
            cache_dir.join("charts"),
            Limits {
                total_timeout: args.http_timeout.to_std(),
                ..Limits::default()
            },
            RetryPolicy::default(),
        )
        .with_deadline(args.fetch_deadline.to_std()),
        client,
        helm,
        namespace,
        state: agent::AgentState::default(),
        metrics,
        gate: agent::gate::Gate::new(),
        holder: agent::intent::holder(),
        stuck_grace: args.stuck_after.to_std(),
        agent_release: args.agent_release.clone(),
        unwritten: Default::default(),
        cluster_uid: Default::default(),
    };
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::parse_release_id;

    #[test]
    fn agent_release_is_namespace_slash_name() {
        let id = parse_release_id("coxswain/coxswain").unwrap();
        assert_eq!(
            (id.namespace.as_str(), id.name.as_str()),
            ("coxswain", "coxswain")
        );
        for bad in ["coxswain", "/x", "x/", "Caps/x", "a/b/c", "-a/b"] {
            let e = parse_release_id(bad).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
