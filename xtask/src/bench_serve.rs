//! `cargo xtask bench --serve [--runs N] [--record]`: `coxswain serve` under load
//! (benches/serve.rs: 10,000 idle connections, 64 concurrent downloads of a 50 MiB chart),
//! printed, and with `--record` written as the last section of docs/performance.md.
//!
//! Measures only; nothing about time or memory is asserted.

use std::path::Path;

use anyhow::{Context, Result, ensure};

/// Where the serve section of docs/performance.md begins (the last section).
pub const MARKER: &str = "<!-- cargo xtask bench --serve -->";

/// Runs benches/serve.rs `runs` times per scenario; `record` rewrites its section.
pub fn run(root: &Path, runs: usize, record: bool) -> Result<()> {
    ensure!(runs >= 1, "--runs must be at least 1");
    let runs_text = runs.to_string();
    crate::cargo::run_with_env(
        root,
        &["bench", "--package", "coxswain", "--bench", "serve"],
        &[("COXSWAIN_BENCH_RUNS", runs_text.as_str())],
    )?;
    let target = crate::cargo::target_dir(root);
    let figures_path = target.join("serve-bench.md");
    let figures = std::fs::read_to_string(&figures_path).with_context(|| {
        format!(
            "reading {} (did the benchmark run?)",
            figures_path.display()
        )
    })?;
    let machine = crate::bench::Machine::probe()?;
    let report = format!(
        "{MARKER}\n## `coxswain serve` under load\n\n\
         From `cargo xtask bench --serve --runs {runs} --record` (benches/serve.rs): the release \
         build of `coxswain serve` on 127.0.0.1, clients in the benchmark process (tokio, \
         reqwest) on the same machine, a fresh server for each scenario; memory is VmRSS / \
         VmHWM of the server's pid in /proc. Medians over {runs} runs. Machine: {} CPUs, {}; \
         {}; 1-minute load average {} at the end (other builds shared the machine).\n\n{}\n\
         How to read it:\n\n\
         - 10,000 idle connections, all accepted: what each open connection costs the \
         server (a task and hyper's buffers), and that a normal request is still answered \
         at once.\n\
         - Against the defaults (at most 512 connections, the rest in the listen backlog), \
         idle clients hold slots until the header-read timeout closes them, so a normal \
         request waits its turn: that wait is the price of the bounded memory. With the \
         default `--header-timeout 10s` it is five times as long per round of 512.\n\
         - Downloads: files are streamed in 32 KiB chunks, so peak RSS does not follow the \
         file size (64 × 50 MiB = 3,200 MiB are sent); every download is checked by its \
         sha256.\n\n\
         ```sh\ncargo xtask bench --serve [--runs N]          # run and print (N defaults to 3)\n\
         cargo xtask bench --serve --runs 3 --record   # also replace this section\n```\n",
        machine.cpus,
        machine.cpu_model,
        machine.rustc,
        machine.load,
        figures.trim_end(),
    );
    println!("\n{report}");
    if record {
        crate::bench::record_section(root, MARKER, None, &report)?;
    }
    Ok(())
}
