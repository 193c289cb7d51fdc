//! `coxswain trust init|rotate`: make the trust anchor, and rotate it on a site.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ed25519_dalek::{SigningKey, VerifyingKey};

use coxswain::duration::Duration;
use coxswain::format::Timestamp;
use coxswain::keys;
use coxswain::site::{Limits, Site};
use coxswain::trust::{self, DEFAULT_VALID_FOR, InitOptions, RotateOptions};
use coxswain::verify::TrustChain;

/// Manage trust roots: which keys may sign channels and future trust roots.
#[derive(Debug, Parser)]
pub struct Args {
    #[command(subcommand)]
    command: TrustCommand,
}

#[derive(Debug, Subcommand)]
enum TrustCommand {
    Init(InitArgs),
    Rotate(RotateArgs),
}

/// Create the trust anchor (version 1): trust.json and trust.json.sig.
///
/// The root keys make up the `root` role and sign the anchor; the channel keys make up
/// the `channel` role that signs channel indexes. Administrators install trust.json in
/// their clusters; it is trusted as installed, and trust.json.sig (signed by all the
/// root keys) lets anyone check that the copy is complete and self-consistent.
#[derive(Debug, Parser)]
#[command(
    after_help = "Example:\n  coxswain trust init --root-key keys/root-1.key --root-key keys/root-2.key \\\n      --channel-key keys/ci-1.pub --root-threshold 2 --valid-for 365d --out trust.json"
)]
struct InitArgs {
    /// A private root key (NAME.key); repeat for several. All of them sign the anchor.
    #[arg(long = "root-key", value_name = "KEY", required = true)]
    root_keys: Vec<PathBuf>,
    /// A public channel key (NAME.pub); repeat for several.
    #[arg(long = "channel-key", value_name = "PUB", required = true)]
    channel_keys: Vec<PathBuf>,
    /// Root signatures needed to accept the next trust root [default: all root keys].
    #[arg(long, value_name = "N")]
    root_threshold: Option<u32>,
    /// Channel signatures needed to accept an index [default: 1].
    #[arg(long, value_name = "M")]
    channel_threshold: Option<u32>,
    /// How long the root stays valid.
    #[arg(long, value_name = "DURATION", default_value_t = DEFAULT_VALID_FOR)]
    valid_for: Duration,
    /// Where to write the root; the signatures go to the same path plus `.sig`.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

/// Publish the next trust root version to a site: SITE/trust/<N+1>.json and .json.sig.
///
/// Follows the chain from the anchor (--trust) through SITE/trust/2.json, 3.json, ... to
/// the newest root N, builds N+1 (same keys unless told otherwise) and signs it with every
/// --root-key. Agents accept it only with a threshold of N's root keys AND a threshold of
/// N+1's own root keys, so pass enough of both; the command checks this before writing.
#[derive(Debug, Parser)]
#[command(
    after_help = "Examples:\n  # replace root key 1 by a new key 3 (root threshold 2 before and after):\n  coxswain trust rotate --trust trust.json --site site \\\n      --root-key keys/root-1.key --root-key keys/root-2.key --root-key keys/root-3.key \\\n      --new-root-pub keys/root-2.pub --new-root-pub keys/root-3.pub\n  # rotate the channel key, keep the root keys:\n  coxswain trust rotate --trust trust.json --site site \\\n      --root-key keys/root-1.key --root-key keys/root-2.key --channel-key keys/ci-2.pub"
)]
struct RotateArgs {
    /// The installed anchor (trust.json); its .sig is checked when present.
    #[arg(long, value_name = "FILE")]
    trust: PathBuf,
    /// The site directory holding trust/<N>.json.
    #[arg(long, value_name = "DIR")]
    site: PathBuf,
    /// A private root key that signs the new root (old or new root key); repeat.
    #[arg(long = "root-key", value_name = "KEY", required = true)]
    root_keys: Vec<PathBuf>,
    /// The new root's root keys (NAME.pub); repeat. Omit to keep the current root keys.
    #[arg(long = "new-root-pub", value_name = "PUB")]
    new_root_pubs: Vec<PathBuf>,
    /// The new root threshold [default: the current one].
    #[arg(long, value_name = "N")]
    root_threshold: Option<u32>,
    /// The new channel keys (NAME.pub); repeat. Omit to keep the current channel keys.
    #[arg(long = "channel-key", value_name = "PUB")]
    channel_keys: Vec<PathBuf>,
    /// The new channel threshold [default: the current one].
    #[arg(long, value_name = "M")]
    channel_threshold: Option<u32>,
    /// How long the new root stays valid.
    #[arg(long, value_name = "DURATION", default_value_t = DEFAULT_VALID_FOR)]
    valid_for: Duration,
}

pub async fn run(args: Args) -> Result<()> {
    match args.command {
        TrustCommand::Init(a) => init(a),
        TrustCommand::Rotate(a) => rotate(a).await,
    }
}

fn signing_keys(paths: &[PathBuf]) -> Result<Vec<SigningKey>> {
    paths
        .iter()
        .map(|p| keys::read_signing_key(p).map_err(Into::into))
        .collect()
}

/// Public keys; a `.key` file is refused, since its hex would read as a (wrong) public key.
fn public_keys(paths: &[PathBuf], flag: &str) -> Result<Vec<VerifyingKey>> {
    paths
        .iter()
        .map(|p| {
            if p.extension().is_some_and(|e| e == "key") {
                bail!(
                    "{}: {flag} takes a public key (NAME.pub), not a private key",
                    p.display()
                );
            }
            Ok(keys::read_verifying_key(p)?)
        })
        .collect()
}

fn init(a: InitArgs) -> Result<()> {
    let signed = trust::init(&InitOptions {
        root_keys: signing_keys(&a.root_keys)?,
        channel_keys: public_keys(&a.channel_keys, "--channel-key")?,
        root_threshold: a.root_threshold,
        channel_threshold: a.channel_threshold,
        valid_for: a.valid_for,
        now: Timestamp::now(),
    })?;
    let sig = trust::write_anchor(&a.out, &signed, a.force)?;
    println!(
        "wrote {} and {} (version 1, root threshold {}/{}, channel threshold {}/{}, expires {})",
        a.out.display(),
        sig.display(),
        signed.root.roles.root.threshold,
        signed.root.roles.root.keyids.len(),
        signed.root.roles.channel.threshold,
        signed.root.roles.channel.keyids.len(),
        signed.root.expires,
    );
    Ok(())
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let cap = coxswain::format::trust::MAX_TRUST_BYTES;
    let bytes = coxswain::format::spec::read_capped(path, cap)?;
    Ok(bytes)
}

async fn rotate(a: RotateArgs) -> Result<()> {
    let anchor = read_file(&a.trust)?;
    let sig_path = trust::sig_path_of(&a.trust);
    let anchor_sig = if sig_path.exists() {
        Some(read_file(&sig_path)?)
    } else {
        None
    };
    let sig_name = sig_path.display().to_string();
    let chain = TrustChain::anchor(
        &anchor,
        anchor_sig.as_deref().map(|s| (s, sig_name.as_str())),
        &a.trust.display().to_string(),
    )?;
    let site = Site::dir(&a.site, Limits::default())?;
    let chain = trust::walk_site(&site, chain)
        .await
        .with_context(|| format!("cannot follow the trust roots in {}", a.site.display()))?;
    let current = chain.current();
    let new_root_keys = if a.new_root_pubs.is_empty() {
        None
    } else {
        Some(public_keys(&a.new_root_pubs, "--new-root-pub")?)
    };
    let channel_keys = if a.channel_keys.is_empty() {
        None
    } else {
        Some(public_keys(&a.channel_keys, "--channel-key")?)
    };
    let signed = trust::rotate(
        current,
        &RotateOptions {
            signing_keys: signing_keys(&a.root_keys)?,
            new_root_keys,
            root_threshold: a.root_threshold,
            channel_keys,
            channel_threshold: a.channel_threshold,
            valid_for: a.valid_for,
            now: Timestamp::now(),
        },
    )
    .with_context(|| format!("cannot rotate trust root version {}", current.version))?;
    let path = trust::write_rotated(&a.site, &signed)?;
    println!(
        "wrote {} (version {}, root threshold {}/{}, channel threshold {}/{}, expires {})",
        path.display(),
        signed.root.version,
        signed.root.roles.root.threshold,
        signed.root.roles.root.keyids.len(),
        signed.root.roles.channel.threshold,
        signed.root.roles.channel.keyids.len(),
        signed.root.expires,
    );
    Ok(())
}
