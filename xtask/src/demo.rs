//! `cargo xtask demo`: the main job on a built-in default, end to end with the real
//! binary. It builds coxswain, makes fresh keys and a trust root in a temporary
//! directory, publishes testdata's stable channel to a temporary site, serves that site
//! on loopback with `coxswain serve`, and verifies it over HTTP with `coxswain verify`,
//! printing each step and what it produced. Then (unless `--no-cluster`) a loopback
//! cluster follows the served channel: see [`stack`].
//!
//! Each step is a function over [`Demo`]; a step that does not see what it shows
//! fails the demo, so it doubles as a smoke test.

mod observe;
pub(crate) mod stack;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// What the steps share.
pub struct Demo {
    /// The workspace root (testdata lives there).
    pub root: PathBuf,
    /// The coxswain binary that was built.
    pub coxswain: PathBuf,
    /// Scratch space for keys, trust root and site; removed at the end unless kept.
    pub work: PathBuf,
    /// The channel published and verified.
    pub channel: &'static str,
}

impl Demo {
    /// Fresh scratch space and the binary to run; nothing is created yet.
    pub fn new(root: &Path, coxswain: PathBuf, name: &str) -> Result<Self> {
        let work = std::env::temp_dir().join(format!("coxswain-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        Ok(Self {
            root: root.to_path_buf(),
            coxswain,
            work,
            channel: "stable",
        })
    }
    pub(crate) fn keys(&self) -> PathBuf {
        self.work.join("keys")
    }
    pub(crate) fn trust(&self) -> PathBuf {
        self.work.join("trust.json")
    }
    pub(crate) fn site(&self) -> PathBuf {
        self.work.join("site")
    }
}

/// Runs the demo; `keep` leaves the temporary directory and the cluster in place for
/// inspection; `no_cluster` stops after verifying over HTTP.
pub fn run(root: &Path, keep: bool, no_cluster: bool) -> Result<()> {
    let coxswain = build(root, false)?;
    let demo = Demo::new(root, coxswain, "demo")?;
    let outcome = steps(&demo, keep, no_cluster);
    if let Err(e) = &outcome {
        println!("\ndemo FAILED: {e:#}");
    }
    if keep {
        println!("\nkept {}", demo.work.display());
    } else if let Err(e) = std::fs::remove_dir_all(&demo.work) {
        eprintln!("warning: could not remove {}: {e}", demo.work.display());
    }
    outcome
}

fn steps(demo: &Demo, keep: bool, no_cluster: bool) -> Result<()> {
    make_keys(demo)?;
    make_trust_root(demo)?;
    publish(demo)?;
    let server = Server::start(demo, true)?;
    let mut passed = Vec::new();
    let mut outcome = verify_over_http(demo, &server.url);
    if outcome.is_ok() {
        passed.push(format!(
            "the {} channel was published, served and verified over HTTP",
            demo.channel
        ));
    }
    let mut kubeconfig = None;
    if outcome.is_ok() && !no_cluster {
        outcome = (|| {
            let mut stack = stack::start(demo, &server.url)?;
            kubeconfig = Some(stack.kubeconfig.clone());
            let result = stack
                .subscribe()
                .and_then(|()| stack.install())
                .and_then(|()| stack.update())
                .and_then(|()| stack.broken())
                .and_then(|()| stack.observe());
            passed.append(&mut stack.passed);
            result
        })();
    }
    let stopped = server.stop();
    if let Some(kubeconfig) = kubeconfig {
        if keep {
            heading("the demo cluster keeps running (--keep)");
            println!("  export KUBECONFIG={}", kubeconfig.display());
            println!(
                "  cargo xtask cluster down --name {}   # when done",
                stack::CLUSTER
            );
        } else {
            heading(&format!(
                "bring the cluster down (`cargo xtask cluster down --name {}`)",
                stack::CLUSTER
            ));
            crate::cluster::down(stack::CLUSTER)?;
        }
    }
    outcome?;
    stopped?;
    println!("\n== summary");
    for line in &passed {
        println!("  ok: {line}");
    }
    println!("\ndemo finished: every step showed what it claims");
    Ok(())
}

pub(crate) fn heading(step: &str) {
    println!("\n== {step}");
}

/// `cargo build --bin coxswain` (with `--release` when `release`), returning the binary's path.
pub(crate) fn build(root: &Path, release: bool) -> Result<PathBuf> {
    let profile = if release { "release" } else { "debug" };
    heading(&format!("build coxswain ({profile})"));
    let mut args = vec![
        "build",
        "--quiet",
        "--package",
        "coxswain",
        "--bin",
        "coxswain",
    ];
    if release {
        args.push("--release");
    }
    crate::cargo::run(root, &args)?;
    let binary = crate::cargo::target_dir(root)
        .join(profile)
        .join("coxswain");
    if !binary.is_file() {
        bail!("{} was not built", binary.display());
    }
    println!("built {}", binary.display());
    Ok(binary)
}

/// Runs coxswain with `args`, echoing the command and its output; fails on a non-zero exit.
pub(crate) fn coxswain(demo: &Demo, args: &[&str]) -> Result<String> {
    println!("$ coxswain {}", args.join(" "));
    let output = Command::new(&demo.coxswain)
        .args(args)
        .current_dir(&demo.root)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", demo.coxswain.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stdout.lines().chain(stderr.lines()) {
        println!("  {line}");
    }
    if !output.status.success() {
        bail!("coxswain {} failed ({})", args.join(" "), output.status);
    }
    Ok(stdout)
}

pub(crate) fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// A root key (signs trust roots) and a channel key (signs the index).
pub(crate) fn make_keys(demo: &Demo) -> Result<()> {
    heading("generate a root key and a channel key");
    let keys = demo.keys();
    for name in ["root", "channel"] {
        coxswain(demo, &["keygen", "--out", path_str(&keys)?, "--name", name])?;
    }
    Ok(())
}

/// The trust anchor an agent would be installed with.
pub(crate) fn make_trust_root(demo: &Demo) -> Result<()> {
    heading("create the trust root (version 1)");
    let keys = demo.keys();
    coxswain(
        demo,
        &[
            "trust",
            "init",
            "--root-key",
            path_str(&keys.join("root.key"))?,
            "--channel-key",
            path_str(&keys.join("channel.pub"))?,
            "--valid-for",
            "365d",
            "--out",
            path_str(&demo.trust())?,
        ],
    )?;
    Ok(())
}

/// Publishes testdata's channel spec to the site (an empty site needs `--sequence`).
pub(crate) fn publish(demo: &Demo) -> Result<()> {
    heading(&format!("publish testdata/channels/{}.yaml", demo.channel));
    let spec = demo
        .root
        .join("testdata/channels")
        .join(format!("{}.yaml", demo.channel));
    coxswain(
        demo,
        &[
            "publish",
            "--spec",
            path_str(&spec)?,
            "--key",
            path_str(&demo.keys().join("channel.key"))?,
            "--out",
            path_str(&demo.site())?,
            "--sequence",
            "1",
        ],
    )?;
    Ok(())
}

/// `coxswain verify` against the served site.
fn verify_over_http(demo: &Demo, url: &str) -> Result<()> {
    heading(&format!("verify {url} over HTTP"));
    coxswain(
        demo,
        &[
            "verify",
            "--trust",
            path_str(&demo.trust())?,
            "--channel",
            demo.channel,
            url,
        ],
    )?;
    Ok(())
}

/// A log line without its leading RFC 3339 timestamp (the demo's reader wants the message).
fn without_timestamp(line: &str) -> &str {
    match line.split_once(' ') {
        Some((first, rest)) if first.len() >= 20 && first.ends_with('Z') && first.contains('T') => {
            rest.trim_start()
        }
        _ => line,
    }
}

/// `GET /path 200` from a `coxswain serve` access-log line; other lines unchanged.
fn access_line(line: &str) -> String {
    let field = |key: &str| {
        line.split([' ', '{', '}'])
            .find_map(|w| w.strip_prefix(key))
    };
    match (field("method="), field("path="), field("status=")) {
        (Some(method), Some(path), Some(status)) => format!("{method} {path} {status}"),
        _ => without_timestamp(line).to_owned(),
    }
}

/// `coxswain serve` on a free loopback port, stopped by its pid.
pub struct Server {
    child: Child,
    /// The base URL it serves.
    pub url: String,
    /// The access log so far, one `GET /path 200` line per request (benchmarks count them).
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the server; `echo` prints its log as it comes.
    pub fn start(demo: &Demo, echo: bool) -> Result<Self> {
        heading("serve the site on 127.0.0.1");
        let site = demo.site();
        println!(
            "$ coxswain serve --dir {} --listen 127.0.0.1:0",
            site.display()
        );
        let mut child = Command::new(&demo.coxswain)
            .args([
                "serve",
                "--dir",
                path_str(&site)?,
                "--listen",
                "127.0.0.1:0",
            ])
            .stdin(Stdio::null())
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting coxswain serve")?;
        // The access log, marked so it reads apart from the commands' own output.
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let requests = requests.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let line = access_line(&line);
                    if echo {
                        println!("  [serve] {line}");
                    }
                    if (line.starts_with("GET ") || line.starts_with("HEAD "))
                        && let Ok(mut log) = requests.lock()
                    {
                        log.push(line);
                    }
                }
            });
        }
        let Some(stdout) = child.stdout.take() else {
            bail!("coxswain serve has no standard output");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        // The first line naming an http:// URL is the address it listens on.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(start) = line.find("http://") {
                    let url = line[start..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    let _ = tx.send(url);
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            if let Ok(url) = rx.recv_timeout(Duration::from_millis(100)) {
                break url;
            }
            if let Some(status) = child.try_wait()? {
                bail!("coxswain serve exited early ({status})");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("coxswain serve did not print its address within 30s");
            }
        };
        println!("  serving at {url} (pid {})", child.id());
        Ok(Self {
            child,
            url,
            requests,
        })
    }

    /// Sends SIGTERM to the server's pid and waits for it; SIGKILL after 10 seconds.
    pub fn stop(mut self) -> Result<()> {
        let pid = self.child.id();
        heading(&format!("stop the server (pid {pid})"));
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -TERM {pid} failed ({status})");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                println!("  stopped ({status})");
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!("coxswain serve (pid {pid}) ignored SIGTERM and was killed");
    }
}
