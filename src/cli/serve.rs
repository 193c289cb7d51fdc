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
/// http://ADDR` once bound; stops gracefully on SIGTERM or ctrl-c. Files are streamed from
/// disk. At most --max-connections connections are served at once (the rest wait to be
/// accepted), and a connection that sends no complete request head within
/// --header-timeout is closed. For production, any static server or object store works as
/// well: the site is plain files.
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
    /// Connections served at once; further ones wait in the listen backlog until one
    /// closes.
    #[arg(long, value_name = "N", default_value_t = serve::DEFAULT_MAX_CONNECTIONS as u32,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_connections: u32,
    /// Time a connection has to send a complete request head (on connect and between
    /// keep-alive requests) before it is closed.
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = super::agent::parse_timeout)]
    header_timeout: coxswain::duration::Duration,
}

pub async fn run(args: Args) -> Result<()> {
    let options = ServeOptions {
        max_connections: args.max_connections as usize,
        header_read_timeout: std::time::Duration::from_secs(args.header_timeout.as_secs()),
        ..ServeOptions::default()
    };
    let router = serve::router(&args.dir, options.clone())?;
    let listener = serve::bind(&args.listen).await?;
    let addr = listener
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {}", args.listen))?;
    // Tests and scripts read this line to learn the port; print it once, flushed.
    println!("listening on {}", serve::display_url(addr));
    tracing::info!(dir = %args.dir.display(), %addr, "serving");
    serve::run(listener, router, options, serve::shutdown_signal()).await?;
    Ok(())
}
