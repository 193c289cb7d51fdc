//! `coxswain serve`: a static server for an update site.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use coxswain::serve::{self, ServeOptions};

/// Serve an update site directory over HTTP (GET and HEAD only).
///
/// Strong ETags (sha256 of each file) with If-None-Match → 304, Content-Length, no
/// directory listings, nothing outside DIR (`..`, encoded escapes and symlinks leading out
/// are refused), one access log line per request on stderr. Prints `listening on
/// http://ADDR` once bound; stops gracefully on SIGTERM or ctrl-c. For production, any
/// static server or object store works as well: the site is plain files.
#[derive(Debug, Parser)]
#[command(
    after_help = "Example:\n  coxswain serve --dir site --listen 127.0.0.1:8080\n  coxswain verify --trust trust.json --channel stable http://127.0.0.1:8080/\n\n  --listen 127.0.0.1:0 picks a free port; the printed address says which."
)]
pub struct Args {
    /// The site directory (channels/, charts/, trust/).
    #[arg(long, value_name = "SITE")]
    dir: PathBuf,
    /// Address and port to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    listen: String,
}

pub async fn run(args: Args) -> Result<()> {
    let router = serve::router(&args.dir, ServeOptions::default())?;
    let listener = serve::bind(&args.listen).await?;
    let addr = listener
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {}", args.listen))?;
    // Tests and scripts read this line to learn the port; print it once, flushed.
    println!("listening on {}", serve::display_url(addr));
    tracing::info!(dir = %args.dir.display(), %addr, "serving");
    serve::run(listener, router, serve::shutdown_signal()).await?;
    Ok(())
}
