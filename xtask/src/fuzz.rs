//! `cargo xtask fuzz [--time 10m] [--target NAME]`: coverage-guided fuzzing of the readers
//! of hostile bytes (`coxswain::fuzz::TARGETS`) with AFL++ through cargo-afl, on the stable
//! toolchain.
//!
//! 1. cargo-afl (pinned) is installed into the coxswain cache when missing, and AFL++ is
//!    built by `cargo afl config --build` (its own sources, make and a C compiler);
//! 2. `fuzz/` is built with AFL's instrumentation into `<target>/fuzz`;
//! 3. each target runs for `--time` (`afl-fuzz -V`) from its seeds (testdata files, the
//!    generated seeds, the saved inputs of `fuzz/regressions/<target>/`);
//! 4. per target it prints executions, corpus size, edges covered, crashes and hangs, and
//!    copies every crash and hang into `fuzz/regressions/<target>/`, where
//!    `tests/fuzz_replay.rs` replays it on every `cargo test` (it fails until fixed).
//!
//! Exits non-zero when a target crashed or hung.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use sha2::Digest;

/// The cargo-afl release installed (and the `afl` crate fuzz/ depends on).
const CARGO_AFL_VERSION: &str = "0.18.2";

/// Seeds larger than this are left out (AFL++ refuses inputs over 1 MiB).
const MAX_SEED_BYTES: usize = 1 << 20;

#[derive(Args, Debug)]
pub struct FuzzArgs {
    /// How long each target runs: `90s`, `10m`, `1h`.
    #[arg(long, default_value = "10m")]
    time: String,
    /// Only this target (default: all of them).
    #[arg(long)]
    target: Option<String>,
}

/// What one target's run found (from AFL++'s `fuzzer_stats`).
struct Outcome {
    name: &'static str,
    execs: u64,
    execs_per_sec: f64,
    corpus: u64,
    edges: u64,
    total_edges: u64,
    bitmap_cvg: String,
    crashes: u64,
    hangs: u64,
    saved: Vec<PathBuf>,
}

pub fn run(root: &Path, args: &FuzzArgs) -> Result<()> {
    let secs = coxswain::duration::Duration::parse(&args.time)
        .map_err(|e| anyhow::anyhow!("--time: {e}"))?
        .as_secs();
    ensure!(secs > 0, "--time must be more than 0s");
    let targets: Vec<&coxswain::fuzz::Target> = match &args.target {
        Some(name) => vec![coxswain::fuzz::target(name).with_context(|| {
            let names: Vec<_> = coxswain::fuzz::TARGETS.iter().map(|t| t.name).collect();
            format!(
                "no fuzz target {name}; the targets are {}",
                names.join(", ")
            )
        })?],
        None => coxswain::fuzz::TARGETS.iter().collect(),
    };
    let cargo_afl = ensure_cargo_afl()?;
    let target_dir = crate::cargo::target_dir(root).join("fuzz");
    eprintln!(
        "building fuzz/ with AFL++ instrumentation into {}",
        target_dir.display()
    );
    let status = Command::new(&cargo_afl)
        .args(["afl", "build", "--release", "--manifest-path"])
        .arg(root.join("fuzz/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .context("running cargo afl build")?;
    ensure!(status.success(), "cargo afl build failed ({status})");
    let binary = target_dir.join("release/coxswain-fuzz");
    let work = crate::cargo::target_dir(root).join("fuzz-work");
    let mut outcomes = Vec::new();
    for target in targets {
        outcomes.push(fuzz_one(root, &cargo_afl, &binary, &work, target, secs)?);
    }
    println!("\n{}", render(&outcomes, secs));
    let found: u64 = outcomes.iter().map(|o| o.crashes + o.hangs).sum();
    if found > 0 {
        bail!(
            "{found} crash(es) or hang(s): saved under fuzz/regressions/ (tests/fuzz_replay.rs \
             replays them); fix each, and add a testdata/bad case where one fits"
        );
    }
    Ok(())
}

/// cargo-afl from the cache (installed there when missing), with AFL++ built for it.
fn ensure_cargo_afl() -> Result<PathBuf> {
    let dir = crate::paths::cache_root()?
        .join("tools")
        .join(format!("cargo-afl-{CARGO_AFL_VERSION}"));
    let binary = dir.join("bin/cargo-afl");
    if !binary.is_file() {
        eprintln!(
            "installing cargo-afl {CARGO_AFL_VERSION} into {}",
            dir.display()
        );
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "install",
                "cargo-afl",
                "--locked",
                "--version",
                CARGO_AFL_VERSION,
                "--root",
            ])
            .arg(&dir)
            // Not the caller's target directory: cargo install would leave its build there.
            .env("CARGO_TARGET_DIR", dir.join("build"))
            .status()
            .context("running cargo install cargo-afl")?;
        ensure!(
            status.success(),
            "cargo install cargo-afl failed ({status})"
        );
        let _ = std::fs::remove_dir_all(dir.join("build"));
    }
    let stamp = dir.join("afl-built");
    if !stamp.is_file() {
        eprintln!("building AFL++ (cargo afl config --build)");
        let status = Command::new(&binary)
            .args(["afl", "config", "--build", "--force"])
            .status()
            .context("running cargo afl config --build")?;
        ensure!(
            status.success(),
            "cargo afl config --build failed ({status}); it needs make and a C compiler \
             (Debian: apt-get install -y build-essential)"
        );
        std::fs::write(&stamp, CARGO_AFL_VERSION)
            .with_context(|| format!("writing {}", stamp.display()))?;
    }
    Ok(binary)
}

fn fuzz_one(
    root: &Path,
    cargo_afl: &Path,
    binary: &Path,
    work: &Path,
    target: &coxswain::fuzz::Target,
    secs: u64,
) -> Result<Outcome> {
    let dir = work.join(target.name);
    let input = dir.join("in");
    let output = dir.join("out");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&input).with_context(|| format!("creating {}", input.display()))?;
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for file in coxswain::fuzz::seed_files(root, target)? {
        seeds.push(std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?);
    }
    seeds.extend((target.generated)());
    let saved_dir = root.join("fuzz/regressions").join(target.name);
    if saved_dir.is_dir() {
        for entry in std::fs::read_dir(&saved_dir)? {
            seeds.push(std::fs::read(entry?.path())?);
        }
    }
    let mut written = 0;
    for seed in seeds
        .iter()
        .filter(|s| !s.is_empty() && s.len() <= MAX_SEED_BYTES)
    {
        let name = hex::encode(&sha2::Sha256::digest(seed)[..8]);
        std::fs::write(input.join(name), seed)?;
        written += 1;
    }
    ensure!(written > 0, "fuzz target {} has no seeds", target.name);
    eprintln!(
        "fuzzing {} for {secs}s from {written} seeds: {}",
        target.name, target.about
    );
    let status = Command::new(cargo_afl)
        .args(["afl", "fuzz", "-i"])
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .args(["-V", &secs.to_string(), "--"])
        .arg(binary)
        .arg(target.name)
        // No curses screen, no CPU pinning (the machine is shared), and no refusal over
        // the host's core_pattern or CPU frequency governor (sandboxes cannot change them).
        .env("AFL_NO_UI", "1")
        .env("AFL_NO_AFFINITY", "1")
        .env("AFL_SKIP_CPUFREQ", "1")
        .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
        .env("AFL_SUPPRESS_ERROR_CHECK", "1")
        .status()
        .context("running cargo afl fuzz")?;
    ensure!(
        status.success(),
        "afl-fuzz for {} failed ({status})",
        target.name
    );
    let found = output.join("default");
    let stats = std::fs::read_to_string(found.join("fuzzer_stats"))
        .with_context(|| format!("reading {}/fuzzer_stats", found.display()))?;
    let field = |key: &str| -> String {
        stats
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == key).then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let number = |key: &str| field(key).parse::<u64>().unwrap_or(0);
    let mut saved = Vec::new();
    for (kind, sub) in [("crash", "crashes"), ("hang", "hangs")] {
        let Ok(entries) = std::fs::read_dir(found.join(sub)) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if path.file_name().is_some_and(|n| n == "README.txt") {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            std::fs::create_dir_all(&saved_dir)?;
            let keep = saved_dir.join(format!(
                "{kind}-{}",
                hex::encode(&sha2::Sha256::digest(&bytes)[..8])
            ));
            std::fs::write(&keep, &bytes)?;
            saved.push(keep);
        }
    }
    Ok(Outcome {
        name: target.name,
        execs: number("execs_done"),
        execs_per_sec: field("execs_per_sec").parse().unwrap_or(0.0),
        corpus: number("corpus_count"),
        edges: number("edges_found"),
        total_edges: number("total_edges"),
        bitmap_cvg: field("bitmap_cvg"),
        crashes: number("saved_crashes"),
        hangs: number("saved_hangs"),
        saved,
    })
}

fn render(outcomes: &[Outcome], secs: u64) -> String {
    let mut out = String::from(
        "| target | time | executions | execs/s | corpus (paths) | edges found / instrumented | bitmap | crashes | hangs |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        out.push_str(&format!(
            "| `{}` | {secs}s | {} | {:.0} | {} | {} / {} | {} | {} | {} |\n",
            o.name,
            o.execs,
            o.execs_per_sec,
            o.corpus,
            o.edges,
            o.total_edges,
            o.bitmap_cvg,
            o.crashes,
            o.hangs
        ));
        for path in &o.saved {
            out.push_str(&format!("  saved {}\n", path.display()));
        }
    }
    out
}
