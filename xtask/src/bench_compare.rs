//! `cargo xtask bench --compare [--stacks 5,20,1000] [--rounds N] [--contenders ...]
//! [--record]`: coxswain against helmfile, a helm loop and Flux, side by side on the
//! loopback cluster `cmp` (its API server writes an audit log), doing the same work
//! from the same starting state. docs/performance.md says what is measured and how.
//!
//! Stacks: testdata's stable channel (5 releases; `helm test` off, since no other
//! contender runs it) and generated stacks of N releases of testdata's wiki chart in
//! 5 layers ([`model::generate`]). Each is published once by `coxswain publish`; its
//! index gives every contender the same charts (the published archives), merged values
//! and dependency DAG.
//!
//! Scenarios, per contender and round: install from empty (the releases'
//! namespaces and the CRDs a chart brought deleted, a fresh coxswain cache), one
//! changed release (the last release's image tag), no-op (nothing changed).
//!
//! Contenders:
//! - coxswain `agent --once`, `concurrency: 1` and the default (4);
//! - `helmfile sync` (helmfile built from source) with the same `needs:` DAG,
//!   `wait: true`;
//! - a sequential `helm upgrade --install --wait` loop in dependency order;
//! - Flux: source-controller and helm-controller as local processes, a
//!   HelmRepository served by `coxswain serve`, HelmReleases with the same
//!   `dependsOn` DAG.

mod model;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::demo::{self, Demo, Server, heading, path_str};
use model::Release;

/// The comparison's cluster.
const CLUSTER: &str = "cmp";
/// Where the section of docs/performance.md begins, and ends.
pub const MARKER: &str = "<!-- cargo xtask bench --compare -->";
const END: &str = "<!-- end bench --compare -->";
/// The subscription's namespace (coxswain) and the HelmReleases' (Flux).
const SUB_NS: &str = "cmp-coxswain";
const FLUX_NS: &str = "cmp-flux";
/// Flux's controllers' namespace (`RUNTIME_NAMESPACE`, their Events).
const FLUX_SYSTEM: &str = "flux-system";

/// The contenders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Contender {
    Coxswain1,
    Coxswain,
    Helmfile,
    HelmLoop,
    Flux,
}

impl Contender {
    pub const ALL: [Contender; 5] = [
        Self::Coxswain1,
        Self::Coxswain,
        Self::Helmfile,
        Self::HelmLoop,
        Self::Flux,
    ];
    fn key(self) -> &'static str {
        match self {
            Self::Coxswain1 => "coxswain1",
            Self::Coxswain => "coxswain",
            Self::Helmfile => "helmfile",
            Self::HelmLoop => "loop",
            Self::Flux => "flux",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Self::Coxswain1 => "coxswain `--once`, concurrency 1",
            Self::Coxswain => "coxswain `--once`, concurrency 4 (default)",
            Self::Helmfile => "`helmfile sync`",
            Self::HelmLoop => "`helm upgrade --install --wait` loop",
            Self::Flux => "Flux (helm-controller + source-controller)",
        }
    }
    /// Parses a comma-separated list of [`Contender::key`]s.
    pub fn parse_list(text: &str) -> Result<Vec<Contender>> {
        let mut out = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let c = Self::ALL
                .into_iter()
                .find(|c| c.key() == word)
                .with_context(|| {
                    format!(
                        "unknown contender {word:?} (one of {})",
                        Self::ALL.map(Contender::key).join(", ")
                    )
                })?;
            if !out.contains(&c) {
                out.push(c);
            }
        }
        ensure!(!out.is_empty(), "--contenders names no contender");
        Ok(out)
    }
}

/// Parses `--stacks 5,20,1000`.
pub fn parse_stacks(text: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let n: usize = word
            .parse()
            .with_context(|| format!("--stacks: {word:?} is not a number of releases"))?;
        ensure!(
            n == 5 || (10..=2000).contains(&n),
            "--stacks: {n} releases (5 is testdata's stack; a generated one has 10 to 2000)"
        );
        out.push(n);
    }
    ensure!(!out.is_empty(), "--stacks names no stack");
    Ok(out)
}

/// The scenarios.
const SCENARIOS: [&str; 3] = ["install", "one change", "no-op"];

/// What one run of one contender cost.
#[derive(Debug, Default, Clone)]
struct Sample {
    wall: f64,
    /// Peak RSS of the orchestrating process(es), KiB.
    rss_kib: u64,
    /// CPU seconds, helm children included.
    cpu: f64,
    helm: usize,
    requests: usize,
    writes: usize,
    /// HTTP requests to the update site (coxswain only; its access log).
    site: Option<Vec<String>>,
    /// Requests per user agent (printed, to check what was counted).
    agents: String,
    load: f64,
}

/// samples[stack][contender][scenario]
type Samples = Vec<Vec<Vec<Vec<Sample>>>>;

/// Options of one comparison.
pub struct Options {
    pub stacks: Vec<usize>,
    pub rounds: usize,
    pub contenders: Vec<Contender>,
    pub record: bool,
}

pub fn run(root: &Path, opts: &Options) -> Result<()> {
    ensure!(opts.rounds >= 1, "--rounds must be at least 1");
    let tools = crate::tools::ensure()?;
    let helmfile = if opts.contenders.contains(&Contender::Helmfile) {
        Some(crate::tools::ensure_helmfile()?)
    } else {
        None
    };
    let flux_tools = if opts.contenders.contains(&Contender::Flux) {
        Some(crate::tools::ensure_flux()?)
    } else {
        None
    };
    let binary = demo::build(root, true)?;
    let site = Demo::new(root, binary.clone(), "cmp")?;
    let repo = Demo::new(root, binary, "cmp-repo")?;
    demo::make_keys(&site)?;
    demo::make_trust_root(&site)?;
    std::fs::create_dir_all(repo.site())?;
    // An empty site would make `coxswain serve` fail; publish first.
    let kubeconfig = crate::cluster::up_with(CLUSTER, &tools, true)?;
    let audit = crate::cluster::audit_log(CLUSTER)?;
    ensure!(
        audit.is_file(),
        "the cluster {CLUSTER} runs without an audit log ({} is missing): bring it down \
         (`cargo xtask cluster down --name {CLUSTER}`) and run again",
        audit.display()
    );
    let mut bench = Bench {
        root: root.to_path_buf(),
        site: &site,
        repo: &repo,
        kubeconfig,
        audit,
        kubectl: tools.kubectl.clone(),
        helm: tools.helm4.clone(),
        helmfile,
        flux_tools,
        sequence: 0,
        flux: None,
        base_crds: BTreeSet::new(),
        site_log: None,
    };
    let outcome = (|| -> Result<String> {
        bench.prepare_cluster()?;
        let mut samples: Samples = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        let mut stack_labels = Vec::new();
        let mut servers = Vec::new();
        for &n in &opts.stacks {
            let stack = bench.stack(n)?;
            if servers.is_empty() {
                servers.push(Server::start(&site, false)?);
                servers.push(Server::start(&repo, false)?);
                bench.site_log = Some(servers[0].requests.clone());
            }
            let (site_url, repo_url) = (servers[0].url.clone(), servers[1].url.clone());
            bench.write_repo_index(&repo_url)?;
            stack_labels.push(stack.label.clone());
            let mut per: Vec<Vec<Vec<Sample>>> = opts
                .contenders
                .iter()
                .map(|_| SCENARIOS.iter().map(|_| Vec::new()).collect())
                .collect();
            let mut failed = BTreeSet::new();
            for round in 1..=opts.rounds {
                for (ci, &c) in opts.contenders.iter().enumerate() {
                    if failed.contains(&ci) {
                        continue;
                    }
                    heading(&format!(
                        "{}: round {round} of {}, {}",
                        stack.label,
                        opts.rounds,
                        c.label()
                    ));
                    let got = match bench.contender(c, &stack, &site_url, &repo_url) {
                        Ok(got) => got,
                        Err(e) => {
                            // The other contenders still run; the report names the failure.
                            println!("  {} failed: {e:#}", c.label());
                            failures.push(format!(
                                "{}, round {round}, {}: {e:#}",
                                stack.label,
                                c.label()
                            ));
                            failed.insert(ci);
                            continue;
                        }
                    };
                    for (si, s) in got.into_iter().enumerate() {
                        println!(
                            "  {}: {:.2}s, RSS {} KiB, CPU {:.2}s, helm {}, API {} ({} writes) {}, site {:?}, load {:.2}",
                            SCENARIOS[si],
                            s.wall,
                            s.rss_kib,
                            s.cpu,
                            s.helm,
                            s.requests,
                            s.writes,
                            s.agents,
                            s.site,
                            s.load
                        );
                        per[ci][si].push(s);
                    }
                }
            }
            bench.clean(&stack)?;
            samples.push(per);
        }
        for s in servers {
            s.stop()?;
        }
        Ok(render(opts, &stack_labels, &samples, &failures))
    })();
    bench.stop_flux();
    heading(&format!(
        "bring the cluster down (`cargo xtask cluster down --name {CLUSTER}`)"
    ));
    let down = crate::cluster::down(CLUSTER);
    let report = outcome?;
    down?;
    for d in [&site, &repo] {
        let _ = std::fs::remove_dir_all(&d.work);
    }
    println!("\n{report}");
    if opts.record {
        crate::bench::record_between(root, MARKER, END, &report)?;
    }
    Ok(())
}

/// One stack: its releases as published for the install and for the change.
struct Stack {
    label: String,
    n: usize,
    /// Spec text of the installed state and of the one change.
    spec: String,
    changed_spec: String,
    releases: Vec<Release>,
    changed: Vec<Release>,
}

/// The running Flux controllers.
struct Flux {
    source: Child,
    helm: Child,
    storage: PathBuf,
}

struct Bench<'a> {
    root: PathBuf,
    site: &'a Demo,
    repo: &'a Demo,
    kubeconfig: PathBuf,
    audit: PathBuf,
    kubectl: PathBuf,
    helm: PathBuf,
    helmfile: Option<PathBuf>,
    flux_tools: Option<crate::tools::FluxTools>,
    sequence: u64,
    flux: Option<Flux>,
    /// The CRDs before any contender ran (a reset deletes the others).
    base_crds: BTreeSet<String>,
    /// The update site's access log.
    site_log: Option<Arc<std::sync::Mutex<Vec<String>>>>,
}

impl Bench<'_> {
    fn kubectl(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.kubectl)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .output()
            .context("running kubectl")?;
        if !out.status.success() {
            bail!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Helm's directories, the same for every contender: under the work directory.
    fn helm_env(&self, cmd: &mut Command) {
        let home = self.site.work.join("helm-home");
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"));
    }

    fn prepare_cluster(&mut self) -> Result<()> {
        let crds = self.root.join("charts/coxswain/crds");
        self.kubectl(&["apply", "--server-side", "-f", path_str(&crds)?])?;
        self.kubectl(&crate::demo::stack::WAIT_FOR_CRD)?;
        if let Some(c) = &self.flux_tools {
            for dir in &c.crds {
                self.kubectl(&["apply", "--server-side", "-f", path_str(dir)?])?;
            }
        }
        for ns in [SUB_NS, FLUX_NS, FLUX_SYSTEM] {
            self.kubectl(&["create", "namespace", ns])?;
        }
        let from_file = format!("--from-file=root.json={}", path_str(&self.site.trust())?);
        self.kubectl(&[
            "create",
            "configmap",
            "trust",
            "--namespace",
            SUB_NS,
            &from_file,
        ])?;
        self.base_crds = self.crds()?;
        Ok(())
    }

    fn crds(&self) -> Result<BTreeSet<String>> {
        Ok(self
            .kubectl(&["get", "crd", "--output", "name"])?
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Publishes `spec` as the next sequence.
    fn publish(&mut self, spec: &str) -> Result<String> {
        self.sequence += 1;
        let path = self.site.work.join("spec.yaml");
        std::fs::write(&path, spec).with_context(|| format!("writing {}", path.display()))?;
        let out = Command::new(&self.site.coxswain)
            .args(["publish", "--spec", path_str(&path)?, "--key"])
            .arg(self.site.keys().join("channel.key"))
            .arg("--out")
            .arg(self.site.site())
            .args(["--sequence", &self.sequence.to_string()])
            .stdin(Stdio::null())
            .output()
            .context("running coxswain publish")?;
        ensure!(
            out.status.success(),
            "coxswain publish failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let index = self.site.site().join("channels/stable/index.json");
        std::fs::read_to_string(&index).with_context(|| format!("reading {}", index.display()))
    }

    /// The stack of `n` releases, published, its archives in the Helm repository.
    fn stack(&mut self, n: usize) -> Result<Stack> {
        let (label, spec, changed_spec) = if n == 5 {
            let text = std::fs::read_to_string(self.root.join("testdata/channels/stable.yaml"))?;
            let dir = self.root.join("testdata/channels");
            let base = text
                .replace(
                    "path: ../charts/",
                    &format!("path: {}/../charts/", dir.display()),
                )
                .replace(
                    "valuesFile: values/",
                    &format!("valuesFile: {}/values/", dir.display()),
                )
                .replace("test: true", "test: false");
            let changed = crate::demo::stack::edit_release(&base, "files", "29.0.1", "29.0.1-cmp")?;
            ensure!(changed != base, "the files release's tag was not found");
            (
                "testdata stack, 5 releases (certs -> ingress -> sso -> wiki, files)".to_owned(),
                base,
                changed,
            )
        } else {
            let generated = model::generate(n, 5)?;
            let chart = self.root.join("testdata/charts/wiki");
            let chart = path_str(&chart)?;
            let last = generated.last().map(|g| g.name.clone()).unwrap_or_default();
            (
                format!(
                    "generated stack, {n} releases in 5 layers ({} namespaces)",
                    n.div_ceil(10)
                ),
                model::generated_spec(&generated, chart, "2.5.300", None),
                model::generated_spec(&generated, chart, "2.5.300", Some((&last, "2.5.301"))),
            )
        };
        let changed = model::read_index(&self.publish(&changed_spec)?)?;
        let releases = model::read_index(&self.publish(&spec)?)?;
        // The Helm repository and the helm loop's archives: the published ones.
        for r in releases.iter().chain(&changed) {
            let from = self.site.site().join("charts").join(&r.archive);
            let to = self
                .repo
                .site()
                .join(format!("{}-{}.tgz", r.chart, r.version));
            if !to.is_file() {
                std::fs::copy(&from, &to)
                    .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            }
        }
        Ok(Stack {
            label,
            n,
            spec,
            changed_spec,
            releases,
            changed,
        })
    }

    fn write_repo_index(&self, url: &str) -> Result<()> {
        let mut cmd = Command::new(&self.helm);
        self.helm_env(&mut cmd);
        let out = cmd
            .args(["repo", "index"])
            .arg(self.repo.site())
            .args(["--url", url])
            .output()
            .context("running helm repo index")?;
        ensure!(
            out.status.success(),
            "helm repo index failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// Back to the empty state: no HelmRelease, no subscription, the releases'
    /// namespaces and the CRDs the charts brought deleted (helm's uninstall would
    /// leave both), waited for.
    fn clean(&mut self, stack: &Stack) -> Result<()> {
        if self.flux.is_some() {
            // helm-controller uninstalls what it installed.
            self.kubectl(&[
                "delete",
                "helmreleases.helm.toolkit.fluxcd.io",
                "--all",
                "--namespace",
                FLUX_NS,
                "--wait",
                "--timeout=10m",
            ])?;
            self.kubectl(&[
                "delete",
                "helmrepositories.source.toolkit.fluxcd.io",
                "--all",
                "--namespace",
                FLUX_NS,
                "--wait",
                "--timeout=5m",
            ])?;
            // Stopped between Flux's turns: idle controllers would add their
            // background requests and CPU to the other contenders' figures.
            self.stop_flux();
        }
        self.kubectl(&[
            "delete",
            "channelsubscription",
            "--all",
            "--namespace",
            SUB_NS,
            "--ignore-not-found",
        ])?;
        let namespaces: BTreeSet<String> =
            stack.releases.iter().map(|r| r.namespace.clone()).collect();
        let names: Vec<String> = namespaces
            .iter()
            .map(|n| format!("namespace/{n}"))
            .collect();
        let mut args = vec!["delete", "--ignore-not-found", "--wait", "--timeout=30m"];
        args.extend(names.iter().map(String::as_str));
        self.kubectl(&args)?;
        let extra: Vec<String> = self.crds()?.difference(&self.base_crds).cloned().collect();
        if !extra.is_empty() {
            let mut args = vec!["delete", "--wait", "--timeout=5m"];
            args.extend(extra.iter().map(String::as_str));
            self.kubectl(&args)?;
        }
        Ok(())
    }

    /// One contender's three scenarios on `stack`, each from the state the previous left.
    fn contender(
        &mut self,
        c: Contender,
        stack: &Stack,
        site_url: &str,
        repo_url: &str,
    ) -> Result<Vec<Sample>> {
        self.clean(stack)?;
        match c {
            Contender::Coxswain1 | Contender::Coxswain => {
                let cache = self.site.work.join(format!("cache-{}", c.key()));
                let _ = std::fs::remove_dir_all(&cache);
                self.publish(&stack.spec)?;
                self.subscribe(site_url, (c == Contender::Coxswain1).then_some(1))?;
                let install = self.coxswain(&cache)?;
                self.publish(&stack.changed_spec)?;
                let change = self.coxswain(&cache)?;
                let noop = self.coxswain(&cache)?;
                Ok(vec![install, change, noop])
            }
            Contender::Helmfile => {
                let install = self.helmfile(&stack.releases)?;
                let change = self.helmfile(&stack.changed)?;
                let noop = self.helmfile(&stack.changed)?;
                Ok(vec![install, change, noop])
            }
            Contender::HelmLoop => {
                let install = self.helm_loop(&stack.releases)?;
                let change = self.helm_loop(&stack.changed)?;
                let noop = self.helm_loop(&stack.changed)?;
                Ok(vec![install, change, noop])
            }
            Contender::Flux => self.flux(stack, repo_url),
        }
    }

    fn subscribe(&self, url: &str, concurrency: Option<u16>) -> Result<()> {
        let file = self.site.work.join("subscription.yaml");
        let concurrency = concurrency.map_or_else(String::new, |c| format!("  concurrency: {c}\n"));
        std::fs::write(
            &file,
            format!(
                "apiVersion: coxswain.dev/v1alpha1\nkind: ChannelSubscription\n\
                 metadata: {{name: stack, namespace: {SUB_NS}}}\n\
                 spec:\n  server: {url}\n  channel: stable\n  \
                 trustRef: {{kind: ConfigMap, name: trust, key: root.json}}\n  \
                 interval: 1h\n  healthTimeout: 5m\n{concurrency}"
            ),
        )
        .with_context(|| format!("writing {}", file.display()))?;
        self.kubectl(&["apply", "-f", path_str(&file)?])?;
        Ok(())
    }

    /// The counting helm wrapper (bench --agent's) and its emptied counter.
    fn wrapper(&self) -> Result<(PathBuf, PathBuf)> {
        let counter = crate::bench_agent::write_helm_wrapper(self.site, &self.helm)?;
        std::fs::write(&counter, "")?;
        Ok((self.site.work.join("helm-count.sh"), counter))
    }

    fn coxswain(&self, cache: &Path) -> Result<Sample> {
        let (wrapper, counter) = self.wrapper()?;
        let mut cmd = Command::new(&self.site.coxswain);
        cmd.args(["agent", "--once", "--kubeconfig"])
            .arg(&self.kubeconfig)
            .args(["--namespace", SUB_NS, "--helm"])
            .arg(&wrapper)
            .arg("--cache-dir")
            .arg(cache)
            .env("NO_COLOR", "1");
        self.helm_env(&mut cmd);
        let log = self.site.work.join("coxswain.log");
        let site_log = self.site_log.as_ref().context("the site is not served")?;
        site_log
            .lock()
            .map_err(|_| anyhow::anyhow!("the access log lock is poisoned"))?
            .clear();
        let mut s = self.measure(cmd, &log)?;
        s.helm = crate::bench_agent::read_counter(&counter)?.0.len();
        s.site = Some(
            site_log
                .lock()
                .map_err(|_| anyhow::anyhow!("the access log lock is poisoned"))?
                .clone(),
        );
        Ok(s)
    }

    fn helmfile(&self, releases: &[Release]) -> Result<Sample> {
        let helmfile = self.helmfile.as_ref().context("helmfile was not built")?;
        let values = self.write_values(releases)?;
        let file = self.site.work.join("helmfile.yaml");
        std::fs::write(
            &file,
            model::helmfile_yaml(
                releases,
                path_str(&self.site.site().join("charts"))?,
                path_str(&values)?,
            )?,
        )?;
        let (wrapper, counter) = self.wrapper()?;
        let mut cmd = Command::new(helmfile);
        cmd.arg("--helm-binary")
            .arg(&wrapper)
            .arg("--file")
            .arg(&file)
            .args(["sync", "--skip-deps"])
            .current_dir(&self.site.work)
            .env("NO_COLOR", "1");
        self.helm_env(&mut cmd);
        let log = self.site.work.join("helmfile.log");
        let mut s = self.measure(cmd, &log)?;
        s.helm = crate::bench_agent::read_counter(&counter)?.0.len();
        Ok(s)
    }

    fn write_values(&self, releases: &[Release]) -> Result<PathBuf> {
        let dir = self.site.work.join("values");
        std::fs::create_dir_all(&dir)?;
        for r in releases {
            std::fs::write(
                dir.join(format!("{}.json", r.name)),
                serde_json::to_vec(&r.values)?,
            )?;
        }
        Ok(dir)
    }

    /// `helm upgrade --install --wait` for each release in dependency order, one at
    /// a time; the orchestrator is helm itself, so its peak RSS is the largest helm's.
    fn helm_loop(&self, releases: &[Release]) -> Result<Sample> {
        let values = self.write_values(releases)?;
        let charts = self.site.site().join("charts");
        let offset = audit_offset(&self.audit)?;
        let load = load1();
        let started = Instant::now();
        let mut s = Sample::default();
        for r in model::dependency_order(releases)? {
            let mut cmd = Command::new(&self.helm);
            self.helm_env(&mut cmd);
            cmd.args(["upgrade", "--install", &r.name])
                .arg(charts.join(&r.archive))
                .args([
                    "--namespace",
                    &r.namespace,
                    "--create-namespace",
                    "--wait",
                    "--timeout",
                    "10m",
                    "--values",
                ])
                .arg(values.join(format!("{}.json", r.name)))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let child = cmd.spawn().context("starting helm")?;
            let (code, cpu, maxrss) = crate::bench_agent::wait_usage(&child)?;
            ensure!(code == 0, "helm upgrade --install {} exited {code}", r.name);
            s.cpu += cpu.as_secs_f64();
            s.rss_kib = s.rss_kib.max(maxrss);
            s.helm += 1;
        }
        s.wall = started.elapsed().as_secs_f64();
        s.load = load.max(load1());
        let req = read_requests(&self.audit, offset)?;
        s.requests = req.total;
        s.writes = req.writes;
        s.agents = format!("{:?}", req.by_agent);
        Ok(s)
    }

    /// Runs `cmd` (output to `log`) to completion: wall time, CPU with its children
    /// (`wait4`), peak RSS of the process itself (VmHWM sampled every 20 ms, helm
    /// children excluded), API requests from the audit log.
    fn measure(&self, mut cmd: Command, log: &Path) -> Result<Sample> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let offset = audit_offset(&self.audit)?;
        let load = load1();
        let started = Instant::now();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting the contender")?;
        let hwm = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (hwm, done, pid) = (hwm.clone(), done.clone(), child.id());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if let Some(kib) = vm_hwm(pid) {
                        hwm.fetch_max(kib, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let waited = crate::bench_agent::wait_usage(&child);
        let wall = started.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        let (code, cpu, _) = waited?;
        if code != 0 {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            for line in tail.into_iter().rev() {
                println!("  | {line}");
            }
            bail!(
                "{} exited {code} (log {})",
                cmd.get_program().to_string_lossy(),
                log.display()
            );
        }
        let req = read_requests(&self.audit, offset)?;
        Ok(Sample {
            wall,
            rss_kib: hwm.load(Ordering::Relaxed),
            cpu: cpu.as_secs_f64(),
            helm: 0,
            requests: req.total,
            writes: req.writes,
            site: None,
            agents: format!("{:?}", req.by_agent),
            load: load.max(load1()),
        })
    }

    fn start_flux(&mut self) -> Result<()> {
        if self.flux.is_some() {
            return Ok(());
        }
        let tools = self.flux_tools.as_ref().context("Flux was not built")?;
        let storage = self.site.work.join("flux-storage");
        std::fs::create_dir_all(&storage)?;
        let [storage_port, m1, h1, m2, h2] = crate::cluster::free_ports::<5>()?;
        let storage_addr = format!("127.0.0.1:{storage_port}");
        let spawn = |bin: &Path, args: Vec<String>, log: &str| -> Result<Child> {
            let log = self.site.work.join(log);
            let out = File::create(&log)?;
            Command::new(bin)
                .args(args)
                .env("KUBECONFIG", &self.kubeconfig)
                .env("RUNTIME_NAMESPACE", FLUX_SYSTEM)
                .env("HOME", self.site.work.join("flux-home"))
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out)
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))
        };
        let source = spawn(
            &tools.source_controller,
            vec![
                format!("--storage-path={}", storage.display()),
                format!("--storage-addr={storage_addr}"),
                format!("--storage-adv-addr={storage_addr}"),
                format!("--metrics-addr=127.0.0.1:{m1}"),
                format!("--health-addr=127.0.0.1:{h1}"),
                "--enable-leader-election=false".into(),
                "--watch-all-namespaces=true".into(),
                "--log-level=info".into(),
            ],
            "source-controller.log",
        )?;
        let helm = spawn(
            &tools.helm_controller,
            vec![
                format!("--metrics-addr=127.0.0.1:{m2}"),
                format!("--health-addr=127.0.0.1:{h2}"),
                "--enable-leader-election=false".into(),
                "--watch-all-namespaces=true".into(),
                "--log-level=info".into(),
            ],
            "helm-controller.log",
        );
        let helm = match helm {
            Ok(h) => h,
            Err(e) => {
                let mut source = source;
                let _ = crate::bench_agent::stop(&mut source);
                return Err(e);
            }
        };
        self.flux = Some(Flux {
            source,
            helm,
            storage,
        });
        // Both serve /readyz once their caches have synced.
        let deadline = Instant::now() + Duration::from_secs(120);
        for port in [h1, h2] {
            let address = format!("127.0.0.1:{port}");
            while crate::bench_agent::http_get(&address, "/readyz").is_none_or(|(c, _)| c != 200) {
                ensure!(
                    Instant::now() < deadline,
                    "Flux's controllers were not ready within 2 minutes (logs in {})",
                    self.site.work.display()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }

    fn stop_flux(&mut self) {
        if let Some(mut f) = self.flux.take() {
            let _ = crate::bench_agent::stop(&mut f.helm);
            let _ = crate::bench_agent::stop(&mut f.source);
            let _ = std::fs::remove_dir_all(&f.storage);
        }
    }

    /// Flux's three scenarios: apply the HelmRepository and HelmReleases (install),
    /// change one HelmRelease's values (one change), request a reconcile of every
    /// HelmRelease with nothing changed (no-op); each until every HelmRelease is
    /// Ready for its generation (and, for the no-op, has handled the request).
    fn flux(&mut self, stack: &Stack, repo_url: &str) -> Result<Vec<Sample>> {
        self.start_flux()?;
        let objects = self.site.work.join("flux.yaml");
        std::fs::write(
            &objects,
            model::flux_objects(&stack.releases, FLUX_NS, repo_url)?,
        )?;
        let install = self.flux_measure(stack.n, None, |b| {
            b.kubectl(&["apply", "--server-side", "-f", path_str(&objects)?])?;
            Ok(())
        })?;
        std::fs::write(
            &objects,
            model::flux_objects(&stack.changed, FLUX_NS, repo_url)?,
        )?;
        let change = self.flux_measure(stack.n, None, |b| {
            b.kubectl(&["apply", "--server-side", "-f", path_str(&objects)?])?;
            Ok(())
        })?;
        let token = format!("cmp-{}", self.sequence);
        let noop = self.flux_measure(stack.n, Some(&token), |b| {
            b.kubectl(&[
                "annotate",
                "helmreleases.helm.toolkit.fluxcd.io",
                "--all",
                "--namespace",
                FLUX_NS,
                "--overwrite",
                &format!("reconcile.fluxcd.io/requestedAt={token}"),
            ])?;
            Ok(())
        })?;
        Ok(vec![install, change, noop])
    }

    fn flux_measure(
        &mut self,
        n: usize,
        token: Option<&str>,
        act: impl Fn(&Self) -> Result<()>,
    ) -> Result<Sample> {
        let flux = self.flux.as_ref().context("Flux is not running")?;
        let pids = [flux.source.id(), flux.helm.id()];
        for pid in pids {
            // Resets VmHWM to the current RSS (proc(5), clear_refs).
            std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
                .with_context(|| format!("resetting the peak RSS of pid {pid}"))?;
        }
        let cpu0: u64 = pids
            .iter()
            .map(|p| crate::bench_agent::proc_cpu_ticks(*p))
            .sum::<Result<u64>>()?;
        let offset = audit_offset(&self.audit)?;
        let load = load1();
        let started = Instant::now();
        act(self)?;
        let deadline = started + Duration::from_secs(3600);
        let mut hwm = [0u64; 2];
        loop {
            for (i, pid) in pids.iter().enumerate() {
                hwm[i] = hwm[i].max(vm_hwm(*pid).context("a Flux controller exited")?);
            }
            if self.flux_ready(n, token)? {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "Flux did not get ready within an hour"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let wall = started.elapsed().as_secs_f64();
        let cpu1: u64 = pids
            .iter()
            .map(|p| crate::bench_agent::proc_cpu_ticks(*p))
            .sum::<Result<u64>>()?;
        let req = read_requests(&self.audit, offset)?;
        Ok(Sample {
            wall,
            rss_kib: hwm.iter().sum(),
            cpu: (cpu1 - cpu0) as f64 / crate::bench_agent::clock_ticks() as f64,
            helm: 0,
            requests: req.total,
            writes: req.writes,
            site: None,
            agents: format!("{:?}", req.by_agent),
            load: load.max(load1()),
        })
    }

    /// Whether all `n` HelmReleases are Ready for their generation (and handled `token`).
    fn flux_ready(&self, n: usize, token: Option<&str>) -> Result<bool> {
        let out = self.kubectl(&[
            "get",
            "helmreleases.helm.toolkit.fluxcd.io",
            "--namespace",
            FLUX_NS,
            "--output",
            "jsonpath={range .items[*]}{.metadata.generation} {.status.observedGeneration} {.status.lastHandledReconcileAt} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ])?;
        let ready = out
            .lines()
            .filter(|l| {
                let w: Vec<&str> = l.split(' ').collect();
                w.len() == 4 && w[0] == w[1] && w[3] == "True" && token.is_none_or(|t| w[2] == t)
            })
            .count();
        Ok(ready == n)
    }
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn audit_offset(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .len())
}

/// The contenders' requests in the audit log after `offset`.
fn read_requests(path: &Path, offset: u64) -> Result<model::Requests> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    f.seek(SeekFrom::Start(offset))?;
    let mut text = String::new();
    f.read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    // The last line may still be being written.
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    model::count_requests(complete)
}

/// How the figures are taken (written under the tables).
const METHOD: &str = "
How it is measured (xtask/src/bench_compare.rs):

- Same work, same start: every contender installs the same published chart
  archives with the same merged values and the same dependency DAG (coxswain
  from its signed site, helmfile and the loop from the archives, Flux from a
  Helm repository of the same archives served by `coxswain serve`). Before each
  install the releases' namespaces and the CRDs a chart brought are deleted
  (waited for), the subscription or HelmReleases removed and coxswain's cache
  emptied. The change is one leaf release's image tag (`files` in testdata's
  stack, the last release of a generated one); the no-op runs again with
  nothing changed. helmfile and the loop do not know what changed, so they
  upgrade every release each time (a new helm revision each); coxswain and
  Flux act only on what changed.
- Readiness: coxswain's health check (the release's workloads ready, `helm
  test` off for all); helm `--wait` (helm 4's watcher: kstatus of every
  resource) for helmfile (`wait: true`) and the loop; Flux's helm-controller
  waits the same way (its default). The loopback cluster's KWOK nodes make the
  pods ready.
- Wall time: from the contender's start to its exit (coxswain, helmfile, the
  loop: start-up included), for Flux from applying the objects until every
  HelmRelease is Ready for its generation (polled with kubectl every 250 ms, every
  second above 100 releases; kubectl's requests are not counted); Flux's
  controllers are started (and their `/readyz` awaited) before its install and
  stopped after its turn, so they do not load the other contenders' runs. Flux
  runs with its defaults: helm-controller `--concurrent 4`, a release whose
  dependencies are not ready is retried after `--requeue-dependency 30s`.
- Peak RSS of the orchestrating processes: coxswain's and helmfile's VmHWM
  (sampled every 20 ms; the helm processes they spawn are not in it); for the
  loop the largest helm (`wait4`'s ru_maxrss: helm is the orchestrator there);
  for Flux the sum of both controllers' VmHWM (reset through
  `/proc/<pid>/clear_refs` before each scenario; helm runs inside them).
- CPU: `wait4` user + system time of the contender with the helm children it
  reaped (the counting wrapper's bash included); for the loop the sum over its
  helm processes; for Flux the controllers' utime + stime from /proc.
- helm processes: coxswain and helmfile run helm through a wrapper that counts
  them; the loop spawns one per release; Flux spawns none (helm is a library).
- API requests: the API server's audit log (one event per request, metadata
  only), those of the cluster's own components and of kubectl left out;
  writes are create, update, patch and delete.
- Rounds are interleaved (each round runs every contender in turn); the load
  column is the 1-minute load average, the larger of start and end. Other
  builds shared this 2-core machine, so the figures are noisy.
";

/// The targets against the medians of this run.
fn targets(opts: &Options, samples: &Samples) -> String {
    let find = |c: Contender| opts.contenders.iter().position(|x| *x == c);
    let stack = |n: usize| opts.stacks.iter().position(|x| *x == n);
    let col = |st: usize, c: usize, sc: usize, f: fn(&Sample) -> f64| -> Vec<f64> {
        samples[st][c][sc].iter().map(f).collect()
    };
    // The default concurrency where it ran, else concurrency 1.
    let cox = find(Contender::Coxswain).or(find(Contender::Coxswain1));
    let mut out = String::from("\nAgainst issue 12's targets (medians of this run):\n\n");
    let line = |out: &mut String, what: &str, got: Option<String>| {
        let _ = writeln!(
            out,
            "- {what}: {}",
            got.unwrap_or_else(|| "not run".to_owned())
        );
    };
    let install20 = stack(20)
        .zip(cox)
        .zip(find(Contender::Helmfile))
        .map(|((s, c), h)| model::ratio(&col(s, c, 0, |x| x.wall), &col(s, h, 0, |x| x.wall)));
    line(
        &mut out,
        "20-release install ≤ 0.5× `helmfile sync` (coxswain, default concurrency)",
        install20,
    );
    let install1000 = stack(1000)
        .zip(cox)
        .zip(find(Contender::Flux))
        .map(|((s, c), f)| {
            format!(
                "time {}, peak RSS {}",
                model::ratio(&col(s, c, 0, |x| x.wall), &col(s, f, 0, |x| x.wall)),
                model::ratio(
                    &col(s, c, 0, |x| x.rss_kib as f64),
                    &col(s, f, 0, |x| x.rss_kib as f64)
                )
            )
        });
    line(
        &mut out,
        "1,000-release install ≤ 1.0× Flux's time with ≤ 0.1× its peak memory",
        install1000,
    );
    for (st, n) in opts.stacks.iter().enumerate() {
        if let Some(c) = cox {
            let noop = &samples[st][c][2];
            let site: Vec<f64> = noop
                .iter()
                .map(|x| x.site.as_ref().map_or(f64::NAN, |s| s.len() as f64))
                .collect();
            let last = noop
                .last()
                .and_then(|x| x.site.clone())
                .unwrap_or_default()
                .join(", ");
            line(
                &mut out,
                &format!(
                    "no-op = 1 conditional request, 0 helm processes, 0 writes ({n} releases, coxswain `--once`)"
                ),
                (!noop.is_empty()).then(|| {
                    format!(
                        "{} site request(s) (last round: {last}), {} helm processes, {} API writes",
                        model::cell(&site, |x| format!("{x:.0}")),
                        model::cell(&col(st, c, 2, |x| x.helm as f64), |x| format!("{x:.0}")),
                        model::cell(&col(st, c, 2, |x| x.writes as f64), |x| format!("{x:.0}")),
                    )
                }),
            );
        }
    }
    let change = stack(1000).zip(stack(5)).zip(cox).map(|((big, small), c)| {
        model::ratio(&col(big, c, 1, |x| x.wall), &col(small, c, 1, |x| x.wall))
    });
    line(
        &mut out,
        "one change in 1,000 releases ≤ 1.2× the same change in 5 (coxswain)",
        change,
    );
    out
}

fn render(opts: &Options, stacks: &[String], samples: &Samples, failures: &[String]) -> String {
    let mut out = String::new();
    let machine = crate::bench::Machine::probe().ok();
    let _ = writeln!(
        out,
        "{MARKER}\n## Side by side: coxswain, helmfile, a helm loop and Flux\n\n\
         From `cargo xtask bench --compare --stacks {} --rounds {} --contenders {}`{}.",
        opts.stacks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        opts.rounds,
        opts.contenders
            .iter()
            .map(|c| c.key())
            .collect::<Vec<_>>()
            .join(","),
        machine.map_or_else(String::new, |m| format!(
            " on {} CPUs ({}), 1-minute load {} at the end",
            m.cpus, m.cpu_model, m.load
        ))
    );
    for (si, label) in stacks.iter().enumerate() {
        for (sc, scenario) in SCENARIOS.iter().enumerate() {
            let _ = writeln!(
                out,
                "\n{label}, {scenario} (median (min–max) of {} rounds):\n",
                opts.rounds
            );
            let _ = writeln!(
                out,
                "| contender | wall time | peak RSS | CPU incl. helm | helm processes | API requests (writes) | load | wall / `helmfile sync` | wall / Flux |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
            let col = |ci: usize, f: fn(&Sample) -> f64| -> Vec<f64> {
                samples[si][ci][sc].iter().map(f).collect()
            };
            let find = |c: Contender| opts.contenders.iter().position(|x| *x == c);
            let hf = find(Contender::Helmfile).map(|i| col(i, |s| s.wall));
            let flux = find(Contender::Flux).map(|i| col(i, |s| s.wall));
            for (ci, c) in opts.contenders.iter().enumerate() {
                let wall = col(ci, |s| s.wall);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} |",
                    c.label(),
                    model::cell(&wall, |x| format!("{x:.2}s")),
                    model::cell(&col(ci, |s| s.rss_kib as f64), |x| format!(
                        "{:.1} MiB",
                        x / 1024.0
                    )),
                    model::cell(&col(ci, |s| s.cpu), |x| format!("{x:.2}s")),
                    model::cell(&col(ci, |s| s.helm as f64), |x| format!("{x:.0}")),
                    model::cell(&col(ci, |s| s.requests as f64), |x| format!("{x:.0}")),
                    model::cell(&col(ci, |s| s.writes as f64), |x| format!("{x:.0}")),
                    model::cell(&col(ci, |s| s.load), |x| format!("{x:.2}")),
                    hf.as_ref()
                        .map_or("—".to_owned(), |h| model::ratio(&wall, h)),
                    flux.as_ref()
                        .map_or("—".to_owned(), |f| model::ratio(&wall, f)),
                );
            }
        }
    }
    if !failures.is_empty() {
        let _ = writeln!(
            out,
            "\nFailed (that contender was not run again on that stack):\n"
        );
        for f in failures {
            let _ = writeln!(out, "- {}", f.replace('\n', " "));
        }
    }
    out.push_str(&targets(opts, samples));
    out.push_str(METHOD);
    let _ = writeln!(out, "\n{END}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_and_contenders_parse() {
        assert_eq!(parse_stacks("5,20, 1000").unwrap(), [5, 20, 1000]);
        assert!(
            parse_stacks("7")
                .unwrap_err()
                .to_string()
                .contains("7 releases")
        );
        assert!(parse_stacks("x").unwrap_err().to_string().contains("\"x\""));
        assert_eq!(
            Contender::parse_list("loop,helmfile,loop").unwrap(),
            [Contender::HelmLoop, Contender::Helmfile]
        );
        assert!(
            Contender::parse_list("argo")
                .unwrap_err()
                .to_string()
                .contains("unknown contender \"argo\"")
        );
    }
}
