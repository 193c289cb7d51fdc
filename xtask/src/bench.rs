//! `cargo xtask bench [--record]`: runs the criterion benchmarks in benches/, prints the
//! medians with the split between signature checking and parsing, and with `--record`
//! writes them into docs/performance.md together with the machine they ran on.
//!
//! Benchmarks measure; they assert nothing about time (a slow CI machine is not a bug).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

/// One benchmark: criterion's group/function, and how the report names it.
struct Bench {
    group: &'static str,
    function: &'static str,
    label: &'static str,
}

const BENCHES: &[Bench] = &[
    Bench {
        group: "index-1000",
        function: "verify-and-parse",
        label: "verify + parse, whole (signature check, then parse and validate)",
    },
    Bench {
        group: "index-1000",
        function: "signature-check",
        label: "signature check only (ed25519 verify_strict over the raw bytes)",
    },
    Bench {
        group: "index-1000",
        function: "parse",
        label: "parse only (size cap, strict JSON, typed parse, validation)",
    },
    Bench {
        group: "publish",
        function: "testdata-stable",
        label: "publish testdata/channels/stable.yaml (5 charts) into an empty site",
    },
    Bench {
        group: "ui-1000",
        function: "status-json",
        label: "/api/v1/status body for 1,000 releases (baseline of the pages)",
    },
    Bench {
        group: "ui-1000",
        function: "overview-html",
        label: "overview page for 1,000 releases",
    },
    Bench {
        group: "ui-1000",
        function: "release-html",
        label: "release timeline page (1,000-release subscription)",
    },
    Bench {
        group: "ui-1000",
        function: "metrics-encode",
        label: "/metrics exposition for 1,000 releases",
    },
    Bench {
        group: "scale",
        function: "plan/100",
        label: "plan a one-release change, 100-release channel",
    },
    Bench {
        group: "scale",
        function: "plan/1000",
        label: "plan a one-release change, 1,000-release channel",
    },
    Bench {
        group: "scale",
        function: "plan/10000",
        label: "plan a one-release change, 10,000-release channel",
    },
    Bench {
        group: "scale",
        function: "verify/100",
        label: "verify + parse a 100-release index",
    },
    Bench {
        group: "scale",
        function: "verify/1000",
        label: "verify + parse a 1,000-release index",
    },
    Bench {
        group: "scale",
        function: "verify/10000",
        label: "verify + parse a 10,000-release index",
    },
];

/// The channel sizes of benches/scale.rs, in the order of their entries in [`BENCHES`].
const SCALE_SIZES: [f64; 3] = [100.0, 1_000.0, 10_000.0];

/// Runs the benchmarks; `record` rewrites docs/performance.md.
pub fn run(root: &Path, record: bool) -> Result<()> {
    crate::cargo::run(
        root,
        &[
            "bench",
            "--package",
            "coxswain",
            "--bench",
            "verify",
            "--bench",
            "publish",
            "--bench",
            "ui",
            "--bench",
            "scale",
        ],
    )?;
    let target = crate::cargo::target_dir(root);
    let mut medians = Vec::new();
    for bench in BENCHES {
        medians.push(median_ns(&target, bench)?);
    }
    let machine = Machine::probe()?;
    let index_bytes = std::fs::read_to_string(target.join("criterion/index-1000/index-bytes.txt"))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    let report = render(&medians, &machine, index_bytes);
    println!("\n{report}");
    if record {
        let path = root.join("docs/performance.md");
        // The agent's section (`bench --agent --record`) is kept as it is.
        let agent = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| {
                t.split_once(crate::bench_agent::MARKER)
                    .map(|(_, a)| a.to_owned())
            })
            .map_or_else(String::new, |a| {
                format!("\n\n{}{a}", crate::bench_agent::MARKER)
            });
        std::fs::write(&path, format!("{report}{agent}"))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Replaces the section of docs/performance.md that begins at `marker` with `report`
/// (which begins with the marker): what came before is kept, and so is everything from
/// `next` (the marker of the section after it) on; without `next` the section is the last.
pub(crate) fn record_section(
    root: &Path,
    marker: &str,
    next: Option<&str>,
    report: &str,
) -> Result<()> {
    let path = root.join("docs/performance.md");
    let existing =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let head = existing
        .split_once(marker)
        .map_or(existing.as_str(), |(head, _)| head);
    let tail = next
        .and_then(|next| {
            existing
                .split_once(next)
                .map(|(_, tail)| format!("\n\n{next}{tail}"))
        })
        .unwrap_or_default();
    // The last section ends the file with a newline; otherwise `tail` brings the end.
    let end = if tail.is_empty() { "\n" } else { "" };
    std::fs::write(
        &path,
        format!("{}\n\n{}{tail}{end}", head.trim_end(), report.trim_end()),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Replaces the section of docs/performance.md from `marker` to `end` (both
/// included; `report` brings them) with `report`, or appends it when the file has
/// no such section.
pub(crate) fn record_between(root: &Path, marker: &str, end: &str, report: &str) -> Result<()> {
    let path = root.join("docs/performance.md");
    let existing =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let updated = match (existing.find(marker), existing.find(end)) {
        (Some(a), Some(b)) if a < b => format!(
            "{}{}{}",
            &existing[..a],
            report.trim_end(),
            &existing[b + end.len()..]
        ),
        _ => format!("{}\n\n{}", existing.trim_end(), report),
    };
    std::fs::write(&path, updated).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The median point estimate criterion stored for `bench`, in nanoseconds.
fn median_ns(target: &Path, bench: &Bench) -> Result<f64> {
    let path = target
        .join("criterion")
        .join(bench.group)
        .join(bench.function)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (did the benchmark run?)", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    json["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("{} has no median.point_estimate", path.display()))
}

/// What the figures were measured on.
pub(crate) struct Machine {
    /// The 1-minute load average when the benchmarks finished (other work skews figures).
    pub load: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub rustc: String,
}

impl Machine {
    pub(crate) fn probe() -> Result<Self> {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let out = Command::new(rustc)
            .arg("--version")
            .output()
            .context("running rustc --version")?;
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        Ok(Self {
            load,
            cpus,
            cpu_model,
            rustc: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        })
    }
}

/// Time per release at each size, and its ratio to the smallest size's: 1.0 is linear.
fn per_release(medians: &[f64]) -> String {
    let base = medians[0] / SCALE_SIZES[0];
    medians
        .iter()
        .zip(SCALE_SIZES)
        .map(|(t, n)| {
            let each = t / n;
            format!("{n:.0}: {:.1} µs each ({:.2}×)", each / 1e3, each / base)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn scale_section(out: &mut String, plan: &[f64], verify: &[f64]) {
    let _ = writeln!(
        out,
        "## Linear in the channel's size\n\n\
         benches/scale.rs takes the same generated channel at 100, 1,000 and 10,000 releases.\n\
         The planner plans the reconcile after a one-release change (every other release\n\
         deployed as the index wants it, so every release is decided and one upgraded);\n\
         verify checks the signature and parses and validates the whole index. Time per\n\
         release, and its ratio to the 100-release figure (1.00× is linear):\n\n\
         - plan: {} / {} / {} in all; per release {};\n\
         - verify + parse: {} / {} / {} in all; per release {}.\n",
        ms(plan[0]),
        ms(plan[1]),
        ms(plan[2]),
        per_release(plan),
        ms(verify[0]),
        ms(verify[1]),
        ms(verify[2]),
        per_release(verify),
    );
}

fn ms(ns: f64) -> String {
    format!("{:.2} ms", ns / 1e6)
}

fn render(medians: &[f64], machine: &Machine, index_bytes: Option<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Performance\n");
    let _ = writeln!(
        out,
        "Figures from `cargo xtask bench --record` (criterion; each figure is the median of its\n\
         samples; criterion runs one benchmark at a time on one thread). They describe one\n\
         machine and are not asserted anywhere: a slower machine is not a failure.\n"
    );
    let _ = writeln!(
        out,
        "Machine: {} CPUs (`nproc`), {}; {}; release profile (`cargo bench`); 1-minute load\n\
         average {} when the run ended.\n",
        machine.cpus, machine.cpu_model, machine.rustc, machine.load
    );
    let _ = writeln!(out, "| benchmark | median |");
    let _ = writeln!(out, "|---|---|");
    for (bench, median) in BENCHES.iter().zip(medians) {
        let _ = writeln!(out, "| {} | {} |", bench.label, ms(*median));
    }
    let (whole, sig, parse) = (medians[0], medians[1], medians[2]);
    let size = index_bytes.map_or_else(
        || "its size was not recorded".to_owned(),
        |b| format!("{} KB", b / 1000),
    );
    let _ = writeln!(
        out,
        "\n## Verifying a 1,000-release index\n\n\
         benches/verify.rs generates the index: 1,000 releases shaped like testdata's (an image\n\
         tag and a replica count as values, up to two dependencies each, every twentieth with\n\
         an older entry), pretty-printed as publish writes it ({size}), signed by one key; the\n\
         trust root asks for that one key.\n\n\
         - whole, `verify::verify_index`: {} — the target is at most 10 ms on one core ({:.0}% of\n  \
           it). Besides the two parts below it reads the signature envelope and takes the\n  \
           SHA-256 of the index bytes that `VerifiedIndex::digest` reports;\n\
         - signature check, `verify::check_threshold`: {} ({:.0}% of the whole); ed25519\n  \
           `verify_strict` hashes the whole document with SHA-512;\n\
         - parse, `format::read_json::<ChannelIndex>`: {} ({:.0}% of the whole); size cap, strict\n  \
           JSON pre-pass (duplicate keys, depth), the typed parse, then validation (names,\n  \
           dependency graph and cycles, versions, ranges, chart URLs);\n\
         - parse / signature check: {:.1}×.\n",
        ms(whole),
        whole / 1e7 * 100.0,
        ms(sig),
        sig / whole * 100.0,
        ms(parse),
        parse / whole * 100.0,
        parse / sig,
    );
    let _ = writeln!(
        out,
        "## Publishing the testdata stack\n\n\
         benches/publish.rs publishes testdata/channels/stable.yaml (five chart directories\n\
         packed deterministically, values files merged, index built, validated, signed) into a\n\
         fresh temporary site at a fixed time: {} per publish, file system writes (with fsync)\n\
         included.\n",
        ms(medians[3])
    );
    let _ = writeln!(
        out,
        "## The web UI and /metrics\n\n\
         benches/ui.rs builds the agent state of one subscription with 1,000 releases, 50\n\
         operations in its history and health details (6 objects) for each, as the web\n\
         server sees it, and measures one request's work without the socket. Each page and\n\
         the JSON first copy the state and build the same document; the JSON body is the\n\
         baseline:\n\n\
         - `/api/v1/status`: {}; overview page: {} ({:.2}× the JSON); a release's timeline:\n  \
           {} ({:.2}×);\n\
         - `/metrics` with those 1,000 releases (13,000 `coxswain_release_state` series among\n  \
           them): {} per scrape ({:.2}× the JSON).\n",
        ms(medians[4]),
        ms(medians[5]),
        medians[5] / medians[4],
        ms(medians[6]),
        medians[6] / medians[4],
        ms(medians[7]),
        medians[7] / medians[4],
    );
    scale_section(&mut out, &medians[8..11], &medians[11..14]);
    let _ = writeln!(
        out,
        "## Reproduce\n\n```sh\ncargo xtask bench            # run and print\ncargo xtask bench --record   # also rewrite this file\n```\n\nThe sections below come from `cargo xtask bench --agent`, `--noop`, `--serve` and\n`--compare` (coxswain side by side with helmfile, a helm loop and Flux), each with\nits own command."
    );
    out
}
