//! `coxswain gate`: prove a published channel on a test cluster.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;

use coxswain::duration::Duration;
use coxswain::format::{Timestamp, to_json_pretty};
use coxswain::keys;
use coxswain::upstream::gate::{GateOptions, gate};

/// Apply a published channel to a test cluster and run every release's helm test.
///
/// Verifies the channel (trust chain from --trust, signatures, every chart), subscribes
/// the test cluster as an administrator would (the trust root in ConfigMap <name>-trust
/// and the ChannelSubscription <name> in --namespace, applied server-side), runs
/// `coxswain agent --once` as a child, then `helm test` for every release the agent left
/// up to date. Prints one line per release; --junit writes JUnit XML for CI; --record
/// writes a gate record for that exact index (and, with --record-key, its signature
/// FILE.sig), which `coxswain promote --require-gate` checks once uploaded as
/// SITE/channels/<channel>/gate.json.
///
/// Exit 0 only when the agent accepted the verified sequence and every release is up
/// to date and passed helm test.
#[derive(Debug, Parser)]
#[command(
    after_help = "Example:\n  coxswain serve --dir site --listen 127.0.0.1:8443 &\n  coxswain gate --site http://127.0.0.1:8443 --channel beta --trust trust.json \\\n      --kubeconfig test-cluster.yaml --junit gate.xml --record gate.json --record-key keys/gate.key"
)]
pub struct Args {
    /// The site's http(s) URL (the test cluster's agent reads it).
    #[arg(long, value_name = "URL")]
    site: String,
    /// The channel to gate.
    #[arg(long, value_name = "NAME")]
    channel: String,
    /// The trust root the test cluster is installed with.
    #[arg(long, value_name = "TRUST")]
    trust: PathBuf,
    /// The test cluster's kubeconfig [default: KUBECONFIG, else in-cluster].
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The namespace of the subscription on the test cluster.
    #[arg(long, value_name = "NS", default_value = "coxswain-gate")]
    namespace: String,
    /// The subscription's name.
    #[arg(long, value_name = "NAME", default_value = "gate")]
    name: String,
    /// The helm binary.
    #[arg(long, value_name = "HELM", env = coxswain::helm::HELM_ENV, default_value = "helm")]
    helm: PathBuf,
    /// The agent's chart cache [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Time allowed for the agent's run.
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    agent_timeout: Duration,
    /// Time allowed for each release's helm test.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    test_timeout: Duration,
    /// Write JUnit XML here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the gate record here (JSON).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Sign the gate record with this key (FILE.sig next to --record).
    #[arg(long, value_name = "KEY", requires = "record")]
    record_key: Option<PathBuf>,
}

pub async fn run(args: Args) -> Result<()> {
    let cap = coxswain::format::trust::MAX_TRUST_BYTES;
    let trust = coxswain::format::spec::read_capped(&args.trust, cap)?;
    let record_key = args
        .record_key
        .as_deref()
        .map(keys::read_signing_key)
        .transpose()?;
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let opts = GateOptions {
        site: args.site,
        channel: args.channel,
        trust,
        trust_origin: args.trust.display().to_string(),
        namespace: args.namespace,
        name: args.name,
        kubeconfig: args.kubeconfig,
        helm: args.helm,
        agent: std::env::current_exe().context("cannot find the coxswain binary")?,
        cache_dir: args.cache_dir.unwrap_or_else(|| temp.path().join("cache")),
        agent_timeout: args.agent_timeout.to_std(),
        test_timeout: args.test_timeout.to_std(),
    };
    let report = gate(&opts).await?;
    print!("{}", report.text());
    let write = |path: &PathBuf, bytes: &[u8]| {
        coxswain::atomic::write(path, bytes, coxswain::atomic::WriteOptions::PUBLIC)
            .with_context(|| format!("cannot write {}", path.display()))
    };
    if let Some(path) = &args.junit {
        write(path, report.junit().as_bytes())?;
    }
    if let Some(path) = &args.record {
        let record = to_json_pretty(&report.record(Timestamp::now()))?;
        write(path, &record)?;
        if let Some(key) = &record_key {
            let sig = to_json_pretty(&keys::sign(&record, std::slice::from_ref(key)))?;
            let mut sig_path = path.clone().into_os_string();
            sig_path.push(".sig");
            write(&PathBuf::from(sig_path), &sig)?;
        }
    }
    if !report.passed() {
        bail!("the gate failed for {}#{}", report.channel, report.sequence);
    }
    Ok(())
}
