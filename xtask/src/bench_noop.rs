//! `cargo xtask bench --noop`: what an unchanged channel costs `agent --once`
//! (helm processes spawned, wall time), for this build and optionally a
//! baseline binary (`--baseline`, e.g. main's), in interleaved rounds on the
//! loopback cluster `bench-noop`; and how long `agent --once` takes to upgrade
//! a 20-release stack at several `concurrency` settings.
//!
//! Two stacks, each its own site, subscription namespace and `--cache-dir`
//! per binary (kept across rounds, as an agent's is):
//!
//! - `testdata`: testdata's stable channel (5 releases, certs -> ingress ->
//!   sso -> {wiki, files});
//! - `generated`: 20 releases of testdata's `wiki` chart in 10 namespaces, 4
//!   layers of 5 where release N depends on release N-5 (5 chains of 4).
//!
//! Each binary does one untimed no-op first (its cache warms, the status
//! settles), then rounds alternate baseline and build.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::bench_agent::{median, read_counter, wait_rusage, write_helm_wrapper};
use crate::demo::{self, Demo, Server, heading, path_str};

const CLUSTER: &str = "bench-noop";
/// Marks the section of docs/performance.md this benchmark rewrites.
pub const MARKER: &str = "<!-- cargo xtask bench --noop -->";
/// Where that section ends.
const END: &str = "<!-- end bench --noop -->";

/// One stack on the cluster.
struct Bench<'a> {
    demo: &'a Demo,
    /// Subscription namespace.
    namespace: &'static str,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    /// The helm wrapper and its counter file.
    wrapper: PathBuf,
    counter: PathBuf,
}

/// The figures of one binary on one stack.
#[derive(Default)]
struct Noop {
    walls: Vec<f64>,
    helm: Vec<usize>,
    calls: Vec<String>,
}

pub fn run(root: &Path, runs: usize, baseline: Option<PathBuf>, record: bool) -> Result<()> {
    ensure!(runs >= 1, "--runs must be at least 1");
    let binary = demo::build(root, false)?;
    let mut binaries = vec![("this build".to_owned(), binary.clone())];
    if let Some(b) = baseline {
        ensure!(b.is_file(), "--baseline {} is not a file", b.display());
        binaries.insert(0, ("baseline".to_owned(), b));
    }
    let five = Demo::new(root, binary.clone(), "bench-noop5")?;
    let twenty = Demo::new(root, binary, "bench-noop20")?;
    for d in [&five, &twenty] {
        demo::make_keys(d)?;
        demo::make_trust_root(d)?;
    }
    demo::publish(&five)?;
    let spec20 = write_generated_spec(&twenty, 1)?;
    publish(&twenty, &spec20, 1)?;
    let (s5, s20) = (Server::start(&five, false)?, Server::start(&twenty, false)?);
    let tools = crate::tools::ensure()?;
    let outcome = (|| {
        let kubeconfig = crate::cluster::up(CLUSTER, &tools)?;
        let mk = |d, ns| -> Result<Bench<'_>> {
            let counter = write_helm_wrapper(d, &tools.helm4)?;
            Ok(Bench {
                demo: d,
                namespace: ns,
                kubeconfig: kubeconfig.clone(),
                kubectl: tools.kubectl.clone(),
                wrapper: d.work.join("helm-count.sh"),
                counter,
            })
        };
        let b5 = mk(&five, "noop5")?;
        let b20 = mk(&twenty, "noop20")?;
        b5.subscribe(root, &s5.url)?;
        b20.subscribe(root, &s20.url)?;
        let mut report = String::new();
        for (label, bench) in [
            ("testdata stack, 5 releases in 5 namespaces", &b5),
            ("generated stack, 20 releases in 10 namespaces", &b20),
        ] {
            heading(&format!("{label}: install, then no-op rounds"));
            let (code, wall, _) = bench.once(&binaries[binaries.len() - 1].1, "install")?;
            ensure!(code == 0, "the install exited {code}");
            println!("  install: {:.2}s", wall.as_secs_f64());
            let mut figures: Vec<Noop> = binaries.iter().map(|_| Noop::default()).collect();
            for (i, (_, bin)) in binaries.iter().enumerate() {
                // Warm-up: the binary's cache directory, the status.
                bench.noop(bin, &format!("cache-{i}"))?;
            }
            for round in 1..=runs {
                for (i, (name, bin)) in binaries.iter().enumerate() {
                    let (wall, calls) = bench.noop(bin, &format!("cache-{i}"))?;
                    println!(
                        "  round {round} {name}: {:.2}s, helm {calls:?}",
                        wall.as_secs_f64()
                    );
                    figures[i].walls.push(wall.as_secs_f64());
                    figures[i].helm.push(calls.len());
                    figures[i].calls = calls;
                }
            }
            writeln!(
                report,
                "\n{label}, medians over {runs} interleaved rounds:\n"
            )?;
            writeln!(
                report,
                "| binary | helm processes | wall time of `agent --once` | helm calls (last round) |"
            )?;
            writeln!(report, "|---|---|---|---|")?;
            for ((name, _), f) in binaries.iter().zip(&figures) {
                let helm = median(f.helm.iter().map(|&n| n as f64).collect());
                writeln!(
                    report,
                    "| {name} | {helm} | {:.2}s | {} |",
                    median(f.walls.clone()),
                    if f.calls.is_empty() {
                        "none".to_owned()
                    } else {
                        f.calls.join(", ")
                    }
                )?;
            }
        }

        heading("generated stack: upgrades of all 20 releases by concurrency");
        let mut sequence = 1;
        let levels = [1u16, 2, 4, 8];
        // upgrades[binary][level]: wall times; binaries alternate at each level.
        let mut upgrades: Vec<Vec<Vec<f64>>> = binaries
            .iter()
            .map(|_| levels.iter().map(|_| Vec::new()).collect())
            .collect();
        for round in 1..=runs {
            for (l, &c) in levels.iter().enumerate() {
                for (i, (name, bin)) in binaries.iter().enumerate() {
                    sequence += 1;
                    let spec = write_generated_spec(&twenty, sequence)?;
                    publish(&twenty, &spec, sequence)?;
                    b20.kubectl(&[
                        "patch",
                        "channelsubscription",
                        "stack",
                        "--namespace",
                        b20.namespace,
                        "--type",
                        "merge",
                        "-p",
                        &format!("{{\"spec\":{{\"concurrency\":{c}}}}}"),
                    ])?;
                    let (code, wall, _) = b20.once(bin, &format!("cache-upgrade-{i}"))?;
                    ensure!(
                        code == 0,
                        "{name}: the upgrade at concurrency {c} exited {code}"
                    );
                    println!(
                        "  round {round} concurrency {c} {name}: {:.2}s",
                        wall.as_secs_f64()
                    );
                    upgrades[i][l].push(wall.as_secs_f64());
                }
            }
        }
        writeln!(
            report,
            "\nUpgrade of all 20 releases of the generated stack by `agent --once` (a new \
             image tag per release, health checked, no helm test; each binary upgrades from \
             the state the other left, in turn), medians over {runs} rounds:\n"
        )?;
        let names: Vec<&str> = binaries.iter().map(|(n, _)| n.as_str()).collect();
        let this = binaries.len() - 1;
        writeln!(
            report,
            "| concurrency | {} | this build vs. 1 |{}",
            names.join(" | "),
            if this > 0 {
                " this build / baseline |"
            } else {
                ""
            }
        )?;
        writeln!(
            report,
            "|---|{}---|{}",
            "---|".repeat(names.len()),
            if this > 0 { "---|" } else { "" }
        )?;
        let one = median(upgrades[this][0].clone());
        for (l, c) in levels.iter().enumerate() {
            let medians: Vec<f64> = upgrades.iter().map(|u| median(u[l].clone())).collect();
            let cells: Vec<String> = medians.iter().map(|m| format!("{m:.2}s")).collect();
            let ratio = if this > 0 {
                format!(" {:.2}x |", medians[this] / medians[0])
            } else {
                String::new()
            };
            writeln!(
                report,
                "| {c} | {} | {:.2}x |{ratio}",
                cells.join(" | "),
                one / medians[this]
            )?;
        }
        heading(&format!(
            "bring the cluster down (`cargo xtask cluster down --name {CLUSTER}`)"
        ));
        crate::cluster::down(CLUSTER)?;
        Ok(report)
    })();
    s5.stop()?;
    s20.stop()?;
    let report = outcome?;
    for d in [&five, &twenty] {
        let _ = std::fs::remove_dir_all(&d.work);
    }
    let report = format!(
        "{MARKER}\n## An unchanged channel, and concurrency\n\nFrom `cargo xtask bench --noop --runs {runs}{}`: debug builds of coxswain (the agent's own \
         CPU is a small part of a no-op; helm processes dominate), helm v4.3.1 behind a wrapper that counts \
         its processes, the loopback cluster `{CLUSTER}`, `coxswain serve` on 127.0.0.1. Each binary \
         has its own `--cache-dir`, warmed by one untimed no-op; rounds alternate the binaries.\n{report}\n{END}\n",
        if binaries.len() > 1 {
            " --baseline <main's coxswain>"
        } else {
            ""
        }
    );
    println!("\n{report}");
    if record {
        crate::bench::record_between(root, MARKER, END, &report)?;
    }
    Ok(())
}

impl Bench<'_> {
    fn kubectl(&self, args: &[&str]) -> Result<()> {
        let out = Command::new(&self.kubectl)
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .output()
            .context("running kubectl")?;
        if !out.status.success() {
            bail!(
                "kubectl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// The CRD, the namespace, the trust root and the subscription `stack`.
    fn subscribe(&self, root: &Path, url: &str) -> Result<()> {
        let crds = root.join("charts/coxswain/crds");
        self.kubectl(&["apply", "--server-side", "-f", path_str(&crds)?])?;
        self.kubectl(&crate::demo::stack::WAIT_FOR_CRD)?;
        self.kubectl(&["create", "namespace", self.namespace])?;
        let from_file = format!("--from-file=root.json={}", path_str(&self.demo.trust())?);
        self.kubectl(&[
            "create",
            "configmap",
            "trust",
            "--namespace",
            self.namespace,
            &from_file,
        ])?;
        let file = self.demo.work.join("subscription.yaml");
        std::fs::write(
            &file,
            format!(
                "apiVersion: coxswain.dev/v1alpha1\nkind: ChannelSubscription\n\
                 metadata: {{name: stack, namespace: {}}}\n\
                 spec:\n  server: {url}\n  channel: stable\n  \
                 trustRef: {{kind: ConfigMap, name: trust, key: root.json}}\n  \
                 interval: 1h\n  healthTimeout: 2m\n",
                self.namespace
            ),
        )
        .with_context(|| format!("writing {}", file.display()))?;
        self.kubectl(&["apply", "-f", path_str(&file)?])
    }

    /// `agent --once` of `binary` through the counting helm wrapper, with
    /// the cache directory `cache`: exit code, wall time, helm calls.
    fn once(&self, binary: &Path, cache: &str) -> Result<(i32, Duration, Vec<String>)> {
        std::fs::write(&self.counter, "")
            .with_context(|| format!("truncating {}", self.counter.display()))?;
        let log_path = self.demo.work.join("agent-once.log");
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let started = Instant::now();
        let child = Command::new(binary)
            .args([
                "agent",
                "--once",
                "--kubeconfig",
                path_str(&self.kubeconfig)?,
            ])
            .args([
                "--namespace",
                self.namespace,
                "--helm",
                path_str(&self.wrapper)?,
            ])
            .arg("--cache-dir")
            .arg(self.demo.work.join(cache))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} agent --once", binary.display()))?;
        let (code, _) = wait_rusage(&child)?;
        let wall = started.elapsed();
        if code != 0 {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            for line in tail.into_iter().rev() {
                println!("  | {line}");
            }
        }
        let (calls, _) = read_counter(&self.counter)?;
        Ok((code, wall, calls))
    }

    /// A no-op `agent --once`, checked to be one: wall time and helm calls.
    fn noop(&self, binary: &Path, cache: &str) -> Result<(Duration, Vec<String>)> {
        let (code, wall, calls) = self.once(binary, cache)?;
        ensure!(code == 0, "the no-op of {} exited {code}", binary.display());
        let log = std::fs::read_to_string(self.demo.work.join("agent-once.log"))?;
        ensure!(
            log.contains("every release is at its desired state"),
            "{} did not find the stack at its desired state:\n{log}",
            binary.display()
        );
        ensure!(
            !calls.iter().any(|c| c == "upgrade"),
            "a no-op ran helm upgrade: {calls:?}"
        );
        Ok((wall, calls))
    }
}

/// The generated channel spec for `sequence` (each sequence a new image tag,
/// so every release changes).
fn write_generated_spec(demo: &Demo, sequence: u64) -> Result<PathBuf> {
    let chart = demo.root.join("testdata/charts/wiki");
    let mut spec = String::from(
        "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: stable\nvalidFor: 14d\nreleases:\n",
    );
    for n in 1..=20u32 {
        write!(
            spec,
            "  - name: app-{n:02}\n    namespace: gen-{:02}\n    chart: {{path: {}}}\n    \
             values: {{image: {{tag: \"2.5.{sequence}\"}}}}\n    health: {{timeout: 2m, test: false}}\n",
            n.div_ceil(2),
            path_str(&chart)?
        )?;
        if n > 5 {
            writeln!(spec, "    dependsOn: [app-{:02}]", n - 5)?;
        }
    }
    let path = demo.work.join("generated.yaml");
    std::fs::write(&path, spec).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn publish(demo: &Demo, spec: &Path, sequence: u64) -> Result<()> {
    demo::coxswain(
        demo,
        &[
            "publish",
            "--spec",
            path_str(spec)?,
            "--key",
            path_str(&demo.keys().join("channel.key"))?,
            "--out",
            path_str(&demo.site())?,
            "--sequence",
            &sequence.to_string(),
        ],
    )?;
    Ok(())
}
