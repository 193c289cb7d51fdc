//! Project automation: `cargo xtask <command>`. One language, one place.

mod bad_charts;
mod bad_inputs;
mod bench;
mod bench_agent;
mod bench_compare;
mod bench_noop;
mod bench_serve;
mod cargo;
mod cluster;
mod crd;
mod demo;
mod e2e;
mod fleet_sim;
mod fuzz;
mod image;
mod paths;
mod schema;
mod test;
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
    /// Regenerate the hostile chart archives in testdata/bad/charts/ (deterministic).
    GenBadCharts,
    /// Write charts/coxswain/crds/channelsubscriptions.yaml from src/agent/crd.rs.
    Crd,
    /// Write channel-schema/<kind>.schema.json from the document types in src/channel/format/.
    Schema,
    /// Publish testdata's stable channel with fresh keys, serve it, verify it over HTTP,
    /// then let the agent install, upgrade and roll back the stack on a loopback cluster.
    Demo {
        /// Keep the temporary directory (keys, trust root, site) and the cluster `demo`.
        #[arg(long)]
        keep: bool,
        /// Stop after verifying over HTTP (no cluster).
        #[arg(long)]
        no_cluster: bool,
    },
    /// Run the criterion benchmarks and print the medians (see docs/performance.md).
    Bench {
        /// Also rewrite docs/performance.md with the figures and this machine.
        #[arg(long)]
        record: bool,
        /// Instead, benchmark the agent on the loopback cluster `bench`: no-op reconcile
        /// (requests, helm processes, writes, CPU), memory with leader election on, leader
        /// hand-over after SIGKILL, restart after a kill during an upgrade, install time vs helm.
        #[arg(long, conflicts_with = "serve")]
        agent: bool,
        /// Instead, measure what an unchanged channel costs `agent --once` (helm
        /// processes, wall time) on a 5- and a 20-release stack, and the 20-release
        /// upgrade at several `concurrency` settings, on the loopback cluster `bench-noop`.
        #[arg(long, conflicts_with_all = ["agent", "serve"])]
        noop: bool,
        /// With --noop: a coxswain binary to compare with (e.g. main's), in interleaved rounds.
        #[arg(long, requires = "noop")]
        baseline: Option<std::path::PathBuf>,
        /// Instead, `coxswain serve` under load (benches/serve.rs): 10,000 idle connections
        /// (RSS, a normal request meanwhile) and 64 concurrent downloads of a 50 MiB chart.
        #[arg(long)]
        serve: bool,
        /// Instead, coxswain side by side with `helmfile sync`, a `helm upgrade --install
        /// --wait` loop and Flux on the loopback cluster `cmp` (install, one change,
        /// no-op); builds helmfile and Flux's controllers from the Go module proxy.
        #[arg(long, conflicts_with_all = ["agent", "serve", "noop"])]
        compare: bool,
        /// With --compare: the stacks, by number of releases (5 is testdata's stack).
        #[arg(long, default_value = "5,20", requires = "compare")]
        stacks: String,
        /// With --compare: the contenders (coxswain1, coxswain, helmfile, loop, flux).
        #[arg(
            long,
            default_value = "coxswain1,coxswain,helmfile,loop,flux",
            requires = "compare"
        )]
        contenders: String,
        /// With --compare: interleaved rounds the medians are taken over.
        #[arg(long, default_value_t = 3, requires = "compare")]
        rounds: usize,
        /// With --agent, --noop or --serve: how many runs the medians are taken over.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Regenerate the hostile specs, signed indexes and trust roots in testdata/bad/ (deterministic).
    GenBadInputs,
    /// Build the test cluster's binaries (cached by version), install the Debian
    /// packages the tests need when missing, and print their paths.
    Tools,
    /// Run a loopback Kubernetes test cluster with KWOK nodes.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Run the e2e tests (tests/e2e_*.rs) against a loopback cluster.
    E2e(e2e::E2eArgs),
    /// Fuzz the readers of hostile bytes (src/fuzz.rs) with AFL++ (cargo-afl, stable
    /// toolchain); saves crashes and hangs under fuzz/regressions/.
    Fuzz(fuzz::FuzzArgs),
    /// Run every check and test: fmt, clippy, unit and component tests, e2e (what CI runs).
    Test,
    /// Simulate a fleet of clusters following one channel with the real planner and
    /// rollout gate: time to 50/90/99 % updated, with and without waves, and how far
    /// a bad release gets before the maintainers pause it (docs/rollouts.md).
    FleetSim(fleet_sim::FleetSimArgs),
    /// Write the agent's container image as an OCI image layout (no container engine):
    /// a static coxswain, helm 4, CA certificates, a non-root user; reproducible.
    Image(image::ImageArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::GenBadCharts => {
            bad_charts::write_all(&workspace_root().join("testdata/bad/charts"))
        }
        Command::Crd => crd::write(&workspace_root()),
        Command::Schema => schema::write(&workspace_root()),
        Command::Demo { keep, no_cluster } => demo::run(&workspace_root(), keep, no_cluster),
        Command::Bench {
            record,
            noop: true,
            baseline,
            runs,
            ..
        } => bench_noop::run(&workspace_root(), runs, baseline, record),
        Command::Bench {
            record,
            compare: true,
            stacks,
            contenders,
            rounds,
            ..
        } => bench_compare::run(
            &workspace_root(),
            &bench_compare::Options {
                stacks: bench_compare::parse_stacks(&stacks)?,
                rounds,
                contenders: bench_compare::Contender::parse_list(&contenders)?,
                record,
            },
        ),
        Command::Bench {
            record,
            agent: true,
            runs,
            ..
        } => bench_agent::run(&workspace_root(), runs, record),
        Command::Bench {
            record,
            serve: true,
            runs,
            ..
        } => bench_serve::run(&workspace_root(), runs, record),
        Command::Bench { record, .. } => bench::run(&workspace_root(), record),
        Command::GenBadInputs => bad_inputs::write_all(&workspace_root()),
        Command::Tools => tools::run(),
        Command::Cluster(command) => cluster::run(command),
        Command::E2e(args) => e2e::run(&args),
        Command::Fuzz(args) => fuzz::run(&workspace_root(), &args),
        Command::Test => test::run(),
        Command::Image(args) => image::run(&workspace_root(), &args),
        Command::FleetSim(args) => fleet_sim::run(&workspace_root(), &args),
    }
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        )
}
