//! `coxswain keygen`: a new ed25519 key pair.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use coxswain::keys;

/// Generate an ed25519 key pair: DIR/NAME.key (private, mode 0600) and DIR/NAME.pub.
///
/// Prints the keyid (lowercase hex SHA-256 of the public key), the name trust roots and
/// signature files use for the key. Existing files are never overwritten.
#[derive(Debug, Parser)]
#[command(
    after_help = "Example:\n  coxswain keygen --out keys --name ci-channel-1\n  # keys/ci-channel-1.key (0600), keys/ci-channel-1.pub; prints the keyid"
)]
pub struct Args {
    /// Directory to write the key files into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Base name of the files: NAME.key and NAME.pub.
    #[arg(long, value_name = "NAME")]
    name: String,
}

pub fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let key = keys::generate()?;
    let (private, public) = keys::write_key_pair(&args.out, &args.name, &key)?;
    eprintln!("wrote {} and {}", private.display(), public.display());
    println!("{}", keys::keyid(&key.verifying_key()));
    Ok(())
}
