//! The command line: one module per subcommand, each with an `Args` struct (clap derive)
//! and a `run` function. Adding a subcommand is a new module, a variant in [`Command`]
//! and an arm in [`run`].

mod agent;
mod diff;
mod gate;
mod keygen;
mod promote;
mod publish;
mod restore;
mod serve;
mod trust;
mod upstream;
mod verify;
mod withdraw;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Keeps Kubernetes clusters on a signed, curated stack of Helm releases.
#[derive(Debug, Parser)]
#[command(name = "coxswain", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Keygen(keygen::Args),
    Trust(trust::Args),
    Publish(publish::Args),
    Promote(promote::Args),
    Verify(verify::Args),
    Serve(serve::Args),
    Agent(agent::Args),
    Diff(diff::Args),
    Upstream(upstream::Args),
    Gate(gate::Args),
    Withdraw(withdraw::Args),
    Restore(restore::Args),
}

/// Runs the chosen subcommand.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Trust(args) => trust::run(args).await,
        Command::Publish(args) => publish::run(args).await,
        Command::Promote(args) => promote::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Agent(args) => agent::run(args).await,
        Command::Diff(args) => diff::run(args).await,
        Command::Upstream(args) => upstream::run(args).await,
        Command::Gate(args) => gate::run(args).await,
        Command::Withdraw(args) => withdraw::run(args).await,
        Command::Restore(args) => restore::run(args).await,
    }
}

/// A Kubernetes client from `--kubeconfig` when given, else the in-cluster
/// config, else KUBECONFIG or ~/.kube/config; and the namespace to work in:
/// `namespace`, else the configuration's default.
async fn kube_client(
    path: Option<&std::path::Path>,
    namespace: Option<&str>,
) -> Result<(kube::Client, String)> {
    use anyhow::Context as _;
    let config = match path {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .with_context(|| format!("kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no in-cluster config and no usable kubeconfig")?,
    };
    let namespace = namespace.map_or_else(|| config.default_namespace.clone(), str::to_owned);
    let client = kube::Client::try_from(config).context("cannot build the Kubernetes client")?;
    Ok((client, namespace))
}

/// Reads the private keys of `--key` flags.
fn signing_keys(paths: &[std::path::PathBuf]) -> Result<Vec<coxswain::keys::SigningKey>> {
    Ok(paths
        .iter()
        .map(|p| coxswain::keys::read_signing_key(p))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Reads an optional trust root file (`--trust`, `--prior-trust`).
fn trust_root(path: Option<&std::path::Path>) -> Result<Option<coxswain::format::TrustRoot>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let cap = coxswain::format::trust::MAX_TRUST_BYTES;
    let bytes = coxswain::format::spec::read_capped(path, cap)?;
    Ok(Some(coxswain::format::read_json(
        &bytes,
        &path.display().to_string(),
    )?))
}

/// Logs go to stderr; `COXSWAIN_LOG` takes a tracing filter (default `info`).
/// `coxswain agent --log-format json` writes one JSON object per line.
pub fn init_logging(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COXSWAIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = matches!(&cli.command, Command::Agent(a) if a.log_format == agent::LogFormat::Json);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: log files and pipes get plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        );
    // A second initialisation (never happens in the binary) is harmless; ignore it.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
