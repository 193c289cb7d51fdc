//! `cargo xtask fleet-sim`: a fleet of simulated clusters following one
//! channel, driven by the project's real planner and rollout gate over
//! simulated time. It reports how fast a release reaches the fleet with and
//! without waves, and how far a bad release gets before the maintainers pause
//! it (see docs/rollouts.md, "The fleet simulation").

mod fleet;
mod plot;
mod sim;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

pub use sim::{Outcome, Scenario};

/// Most clusters one run simulates.
const MAX_CLUSTERS: usize = 100_000;
/// Most simulated days.
const MAX_DAYS: u32 = 366;

#[derive(clap::Args, Debug, Clone)]
pub struct FleetSimArgs {
    /// How many clusters.
    #[arg(long, default_value_t = 1000)]
    pub clusters: usize,
    /// Seed of the random generator: the same seed gives the same fleet and figures.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The new release fails its health check on most clusters; the maintainers
    /// pause the rollout and publish a fix.
    #[arg(long)]
    pub bad_release: bool,
    /// Simulated days from the start (Monday 00:00 UTC; the release comes at 14:00).
    #[arg(long, default_value_t = 14)]
    pub days: u32,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Also write the rollout curves (a good and a bad release, with and without
    /// waves) as an SVG, e.g. docs/img/fleet-sim.svg.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// The four runs a report needs: with and without waves, for a good and a bad release.
struct Runs {
    with_waves: Outcome,
    without_waves: Outcome,
}

fn simulate(args: &FleetSimArgs, bad_release: bool) -> Result<Runs> {
    let fleet = fleet::generate(args.clusters, args.seed);
    let scenario = |waves| Scenario {
        bad_release,
        waves,
        days: args.days,
        exhaustive: false,
    };
    Ok(Runs {
        with_waves: sim::run(&fleet, scenario(true))?,
        without_waves: sim::run(&fleet, scenario(false))?,
    })
}

/// Runs the command.
pub fn run(root: &std::path::Path, args: &FleetSimArgs) -> Result<()> {
    if args.clusters == 0 || args.clusters > MAX_CLUSTERS {
        bail!(
            "--clusters {} is out of range: simulate 1 to {MAX_CLUSTERS} clusters",
            args.clusters
        );
    }
    if args.days == 0 || args.days > MAX_DAYS {
        bail!(
            "--days {} is out of range: simulate 1 to {MAX_DAYS} days",
            args.days
        );
    }
    let started = Instant::now();
    let runs = simulate(args, args.bad_release)?;
    let elapsed = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(args, &runs))?);
    } else {
        print!("{}", text(args, &runs, elapsed));
    }
    if let Some(path) = &args.plot {
        let other = simulate(args, !args.bad_release)?;
        let (good, bad) = if args.bad_release {
            (&other, &runs)
        } else {
            (&runs, &other)
        };
        let svg = plot::svg(&plot::Figure {
            clusters: args.clusters,
            seed: args.seed,
            days: args.days,
            good_waves: &good.with_waves,
            good_flat: &good.without_waves,
            bad_waves: &bad.with_waves,
            bad_flat: &bad.without_waves,
        });
        let path = if path.is_absolute() {
            path.clone()
        } else {
            root.join(path)
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        std::fs::write(&path, svg).with_context(|| format!("write {}", path.display()))?;
        if !args.json {
            println!("plot: {}", path.display());
        }
    }
    Ok(())
}

/// Hours to two decimals (a second is 0.0003 h; the JSON need not pretend more).
fn rounded(h: Option<f64>) -> Option<f64> {
    h.map(|h| (h * 100.0).round() / 100.0)
}

fn outcome_json(o: &Outcome) -> Value {
    json!({
        "t50": rounded(o.t50),
        "t90": rounded(o.t90),
        "t99": rounded(o.t99),
        "appliedBad": o.applied_bad,
        "broken": o.broken,
        "pausedAt": rounded(o.paused_at),
        "fixAt": rounded(o.fix_at),
        "upgrades": o.upgrades,
        "rollbacks": o.rollbacks,
        "checks": o.checks,
        "plans": o.plans,
        "waits": o.waits,
    })
}

fn to_json(args: &FleetSimArgs, runs: &Runs) -> Value {
    json!({
        "clusters": args.clusters,
        "seed": args.seed,
        "badRelease": args.bad_release,
        "days": args.days,
        "withWaves": outcome_json(&runs.with_waves),
        "withoutWaves": outcome_json(&runs.without_waves),
    })
}

fn hours(h: Option<f64>) -> String {
    h.map_or_else(|| "never".to_owned(), |h| format!("{h:.1} h"))
}

fn text(args: &FleetSimArgs, runs: &Runs, elapsed: f64) -> String {
    let what = if args.bad_release {
        "a bad release (fails health on most clusters), paused by the maintainers, then a fix"
    } else {
        "a good release"
    };
    let target = if args.bad_release {
        "the fix"
    } else {
        "the release"
    };
    let mut out = format!(
        "fleet-sim: {} clusters, seed {}, {what}; {} simulated days; hours counted from the release's publication\n{}\n\n",
        args.clusters,
        args.seed,
        args.days,
        fleet::summary(&fleet::generate(args.clusters, args.seed))
    );
    out.push_str(&format!(
        "{:<15}{:>10}{:>10}{:>10}{:>12}{:>8}{:>12}{:>12}\n",
        "", "t50", "t90", "t99", "appliedBad", "broken", "paused at", "fix at"
    ));
    for (name, o) in [
        ("with waves", &runs.with_waves),
        ("without waves", &runs.without_waves),
    ] {
        out.push_str(&format!(
            "{name:<15}{:>10}{:>10}{:>10}{:>12}{:>8}{:>12}{:>12}\n",
            hours(o.t50),
            hours(o.t90),
            hours(o.t99),
            o.applied_bad,
            o.broken,
            o.paused_at.map_or("-".to_owned(), |h| format!("{h:.1} h")),
            o.fix_at.map_or("-".to_owned(), |h| format!("{h:.1} h")),
        ));
    }
    out.push_str(&format!(
        "\ntN: hours until N % of the clusters ran {target}; appliedBad: clusters that started the bad release; broken: clusters left failed (must be 0)\n"
    ));
    for (name, o) in [
        ("with waves", &runs.with_waves),
        ("without waves", &runs.without_waves),
    ] {
        let waits: Vec<String> = o.waits.iter().map(|(k, n)| format!("{k} {n}")).collect();
        out.push_str(&format!(
            "{name}: {} checks, {} planner runs, {} upgrades, {} rolled back; the gate held a start: {}\n",
            o.checks,
            o.plans,
            o.upgrades,
            o.rollbacks,
            if waits.is_empty() {
                "never".to_owned()
            } else {
                waits.join(", ")
            }
        ));
    }
    out.push_str(&format!("simulated in {elapsed:.2} s\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(clusters: usize, days: u32) -> FleetSimArgs {
        FleetSimArgs {
            clusters,
            seed: 3,
            bad_release: true,
            days,
            json: true,
            plot: None,
        }
    }

    #[test]
    fn the_json_has_the_documented_keys_for_both_runs() {
        let a = args(120, 4);
        let v = to_json(&a, &simulate(&a, true).unwrap());
        for side in ["withWaves", "withoutWaves"] {
            for key in ["t50", "t90", "t99", "appliedBad", "broken"] {
                assert!(v[side].get(key).is_some(), "{side}.{key} missing in {v}");
            }
            assert_eq!(v[side]["broken"], 0, "{v}");
            assert!(v[side]["appliedBad"].as_u64().unwrap() > 0, "{v}");
        }
        assert_eq!(v["badRelease"], true);
        assert_eq!(v["clusters"], 120);
    }

    #[test]
    fn out_of_range_arguments_are_refused_by_name() {
        let root = std::path::Path::new("/nonexistent");
        let e = run(root, &args(0, 14)).unwrap_err().to_string();
        assert!(e.contains("--clusters 0 is out of range"), "{e}");
        let e = run(root, &args(100_001, 14)).unwrap_err().to_string();
        assert!(e.contains("--clusters 100001 is out of range"), "{e}");
        let e = run(root, &args(10, 0)).unwrap_err().to_string();
        assert!(e.contains("--days 0 is out of range"), "{e}");
    }
}
