//! `coxswain serve` under load (run by `cargo xtask bench --serve`): the release binary,
//! real sockets on loopback, RSS read from /proc. Not criterion: each scenario runs a
//! fresh server, `COXSWAIN_BENCH_RUNS` times (default 3), and the report gives medians.
//!
//! Scenarios:
//! 1. 10,000 idle connections against `--max-connections 10240` (every one accepted): RSS
//!    before and with all of them open, and a normal request's time meanwhile;
//! 2. 10,000 idle connections against the defaults (512 connections, `--header-timeout`
//!    shortened to 2s so that a run ends within a minute): peak RSS and how long a
//!    normal request, sent once the idle ones fill every slot and the backlog, waits;
//! 3. 64 concurrent downloads of a 50 MiB chart: wall time until all are read, peak RSS;
//!    every download is checked byte for byte (sha256).
//!
//! The file descriptor limit (`RLIMIT_NOFILE`) of this process is raised to its hard limit
//! first; the server inherits it. The report goes to stdout and to
//! `$CARGO_TARGET_DIR/serve-bench.md`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

const IDLE_CONNECTIONS: usize = 10_000;
const DOWNLOADS: usize = 64;
const CHART_BYTES: usize = 50 << 20;

struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(site: &Path, extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coxswain"))
            .args(["serve", "--listen", "127.0.0.1:0", "--dir"])
            .arg(site)
            .args(extra)
            .env("COXSWAIN_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start coxswain serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the address line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Serve { child, addr }
    }

    /// (VmRSS, VmHWM) in KiB.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/<pid>/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc status"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    limit.rlim_cur
}

fn site() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    // Incompressible bytes: SHA-256 of a counter, block after block.
    let chart: Vec<u8> = (0..CHART_BYTES / 32)
        .flat_map(|block| Sha256::digest((block as u64).to_le_bytes()))
        .collect();
    let hex = hex::encode(Sha256::digest(&chart));
    let writer = coxswain::site::SiteWriter::new(dir.path());
    writer
        .write(
            &coxswain::site::SitePath::chart(&hex).expect("path"),
            &chart,
        )
        .expect("write chart");
    writer
        .write(
            &coxswain::site::SitePath::index("stable").expect("path"),
            b"{\"sequence\":1}",
        )
        .expect("write index");
    (dir, format!("/charts/sha256-{hex}.tgz"), hex)
}

/// Opens `n` connections that send nothing; returns them once `wait_for` of them are
/// established (the rest keep connecting in the background).
async fn idle_connections(
    addr: &str,
    n: usize,
    wait_for: usize,
) -> (tokio::task::JoinSet<Option<TcpStream>>, usize) {
    let mut set = tokio::task::JoinSet::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..n {
        let addr = addr.to_owned();
        let tx = tx.clone();
        set.spawn(async move {
            let stream = TcpStream::connect(&addr).await.ok();
            let _ = tx.send(stream.is_some());
            // Keep it open (and silent) until the scenario ends.
            if let Some(stream) = stream {
                std::future::pending::<()>().await;
                drop(stream);
            }
            None
        });
    }
    drop(tx);
    let mut connected = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while connected < wait_for {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(true)) => connected += 1,
            Ok(Some(false)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    (set, connected)
}

/// A normal request's time, on a fresh connection.
async fn normal_request(addr: &str) -> (Duration, u16) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    let started = Instant::now();
    let status = client
        .get(format!("http://{addr}/channels/stable/index.json"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (started.elapsed(), status)
}

struct Idle {
    rss_before: u64,
    rss_with: u64,
    hwm: u64,
    connected: usize,
    request: Duration,
    status: u16,
}

async fn idle_scenario(site: &Path, extra: &[&str], wait_for: usize) -> Idle {
    let serve = Serve::start(site, extra);
    let _ = normal_request(&serve.addr).await;
    let (rss_before, _) = serve.memory();
    let (mut set, connected) = idle_connections(&serve.addr, IDLE_CONNECTIONS, wait_for).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (request, status) = normal_request(&serve.addr).await;
    let (rss_with, hwm) = serve.memory();
    set.abort_all();
    while set.join_next().await.is_some() {}
    Idle {
        rss_before,
        rss_with,
        hwm,
        connected,
        request,
        status,
    }
}

struct Downloads {
    wall: Duration,
    rss_before: u64,
    hwm: u64,
}

async fn download_scenario(site: &Path, path: &str, hex: &str) -> Downloads {
    let serve = Serve::start(site, &[]);
    let _ = normal_request(&serve.addr).await;
    let (rss_before, _) = serve.memory();
    let url = format!("http://{}{path}", serve.addr);
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..DOWNLOADS {
        let client = client.clone();
        let url = url.clone();
        set.spawn(async move {
            let mut response = client.get(&url).send().await.expect("download");
            assert_eq!(response.status(), 200);
            let mut hasher = Sha256::new();
            let mut len = 0;
            while let Some(chunk) = response.chunk().await.expect("body") {
                len += chunk.len();
                hasher.update(&chunk);
            }
            (len, hex::encode(hasher.finalize()))
        });
    }
    while let Some(result) = set.join_next().await {
        let (len, digest) = result.expect("download task");
        assert_eq!(len, CHART_BYTES, "a download was cut");
        assert_eq!(digest, hex, "a download has other bytes");
    }
    let wall = started.elapsed();
    let (_, hwm) = serve.memory();
    Downloads {
        wall,
        rss_before,
        hwm,
    }
}

fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    values[values.len() / 2]
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument (a filter) is ignored.
    let nofile = raise_fd_limit();
    let runs: usize = std::env::var("COXSWAIN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (dir, chart_path, hex) = site();
    let mut all = Vec::new();
    let mut capped = Vec::new();
    let mut downloads = Vec::new();
    for run in 1..=runs {
        eprintln!("run {run}/{runs}: {IDLE_CONNECTIONS} idle connections, every one accepted");
        all.push(runtime.block_on(idle_scenario(
            dir.path(),
            &["--max-connections", "10240", "--header-timeout", "300s"],
            IDLE_CONNECTIONS,
        )));
        eprintln!("run {run}/{runs}: {IDLE_CONNECTIONS} idle connections, the default cap");
        capped.push(runtime.block_on(idle_scenario(
            dir.path(),
            &["--header-timeout", "2s"],
            1_000,
        )));
        eprintln!(
            "run {run}/{runs}: {DOWNLOADS} downloads of {} MiB",
            CHART_BYTES >> 20
        );
        downloads.push(runtime.block_on(download_scenario(dir.path(), &chart_path, &hex)));
    }
    let report = render(&all, &capped, &downloads, nofile, runs);
    println!("{report}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let _ = std::fs::write(target.join("serve-bench.md"), &report);
}

fn render(
    all: &[Idle],
    capped: &[Idle],
    downloads: &[Downloads],
    nofile: u64,
    runs: usize,
) -> String {
    let secs = |d: Duration| format!("{:.2}s", d.as_secs_f64());
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    let mut out = String::new();
    let per_conn = median(
        all.iter()
            .map(|i| {
                (i.rss_with.saturating_sub(i.rss_before)) as f64 * 1024.0
                    / i.connected.max(1) as f64
            })
            .collect(),
    );
    out.push_str(&format!(
        "| what | median |\n|---|---|\n\
         | RSS, idle server (after one request) | {} |\n\
         | RSS with {IDLE_CONNECTIONS} idle connections open, all accepted (`--max-connections 10240`) | {} |\n\
         | the same, per idle connection | {:.1} KiB |\n\
         | a normal request meanwhile (fresh connection; status {}) | {} |\n\
         | peak RSS (VmHWM) with {IDLE_CONNECTIONS} idle clients against the defaults (512 connections, `--header-timeout 2s`) | {} |\n\
         | a normal request, sent once 1,000 of them were connected, answered after (status {}) | {} |\n\
         | {DOWNLOADS} concurrent downloads of a {} MiB chart, wall time until all were read and checked | {} |\n\
         | peak RSS (VmHWM) during those downloads (idle before: {}) | {} |\n",
        mib(median(all.iter().map(|i| i.rss_before).collect())),
        mib(median(all.iter().map(|i| i.rss_with).collect())),
        per_conn / 1024.0,
        median(all.iter().map(|i| i.status).collect()),
        ms(median(all.iter().map(|i| i.request).collect())),
        mib(median(capped.iter().map(|i| i.hwm).collect())),
        median(capped.iter().map(|i| i.status).collect()),
        secs(median(capped.iter().map(|i| i.request).collect())),
        CHART_BYTES >> 20,
        secs(median(downloads.iter().map(|d| d.wall).collect())),
        mib(median(downloads.iter().map(|d| d.rss_before).collect())),
        mib(median(downloads.iter().map(|d| d.hwm).collect())),
    ));
    out.push_str("\nPer run:\n\n| run | idle RSS | RSS with 10,000 open | request | capped: connected when sent | capped: peak RSS | capped: request | downloads: wall | downloads: peak RSS |\n|---|---|---|---|---|---|---|---|---|\n");
    for i in 0..runs {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            i + 1,
            mib(all[i].rss_before),
            mib(all[i].rss_with),
            ms(all[i].request),
            capped[i].connected,
            mib(capped[i].hwm),
            secs(capped[i].request),
            secs(downloads[i].wall),
            mib(downloads[i].hwm),
        ));
    }
    out.push_str(&format!(
        "\nRLIMIT_NOFILE of the benchmark and of the server it starts: raised to the hard limit, {nofile}.\n"
    ));
    out
}
