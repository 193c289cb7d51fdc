//! Project automation: `cargo xtask <command>`. One language, one place.

mod cluster;
mod e2e;
mod paths;
mod tools;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "coxswain's automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the test cluster's binaries (cached by version) and print their paths.
    Tools,
    /// Run a loopback Kubernetes test cluster with KWOK nodes.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Run the e2e tests (tests/e2e_*.rs) against a loopback cluster.
    E2e(e2e::E2eArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Tools => tools::run(),
        Command::Cluster(command) => cluster::run(command),
        Command::E2e(args) => e2e::run(&args),
    }
}
