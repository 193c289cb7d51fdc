//! Project automation: `cargo xtask <command>`. One language, one place.

mod bad_charts;
mod cluster;
mod e2e;
mod paths;
mod schema;
mod tools;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::paths::workspace_root;

#[derive(Parser)]
#[command(name = "xtask", about = "coxswain's automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Regenerate the hostile chart archives in testdata/bad/charts/ (deterministic).
    GenBadCharts,
    /// Write channel-schema/<kind>.schema.json from the document types in src/format/.
    Schema,
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
        Command::GenBadCharts => {
            bad_charts::write_all(&workspace_root().join("testdata/bad/charts"))
        }
        Command::Schema => schema::write(&workspace_root()),
        Command::Tools => tools::run(),
        Command::Cluster(command) => cluster::run(command),
        Command::E2e(args) => e2e::run(&args),
    }
}
