//! `cargo xtask bench --agent [--runs N] [--record]`: the agent (release build) on the
//! loopback cluster `bench`, following testdata's stable channel served by
//! `coxswain serve`. Every run measures, in this order:
//!
//! 1. a full stack install by `coxswain agent --once` (wall time);
//! 2. a no-op reconcile by `agent --once`: HTTP requests (the server's access log),
//!    helm processes (the agent's `--helm` is a wrapper script that appends each
//!    subcommand and bash's `times` to a file), kube writes (resourceVersions of the
//!    subscription, the Events of its namespace and helm's release Secrets, before and
//!    after), and CPU time (`wait4` rusage of the agent, which includes its reaped helm
//!    children, minus the children's share that the wrapper recorded);
//! 3. the agent in controller mode (interval 20s, leader election on with a 15 s
//!    Lease, the defaults): VmRSS/VmHWM from /proc after its first (no-op) reconcile
//!    and 5 s of idling; its next periodic poll, a no-op that
//!    can be conditional, counted like 2 (CPU from /proc/<pid>/stat, 10 ms ticks; the
//!    subscription's status content stands for its writes); then VmHWM after a
//!    published sequence that changes all five releases has been applied (triggered by
//!    a spec change; helm children are separate processes, so they are excluded);
//! 4. leader hand-over: two controllers, the leader's process group killed with
//!    SIGKILL, the time until the other's `/readyz` says it leads (baseline: the
//!    lease duration);
//! 5. restart after a kill during an upgrade: an uninterrupted `agent --once` upgrade
//!    of all five releases (the baseline), then `agent --once` on the next sequence
//!    killed (SIGKILL to its process group) when certs' new revision shows
//!    `pending-upgrade`, and a fresh `agent --once` timed until it exits 0 with every
//!    release at that sequence, with the repairs it recorded;
//! 6. the releases uninstalled, then installed one by one with
//!    `helm upgrade --install --wait` in dependency order with the values the agent
//!    installed, and `helm test` where the index asks the agent for it (wall time),
//!    and uninstalled again. Both installs start from the same state: the
//!    releases' namespaces and the chart's CRD deleted ([`reset`]).
//!
//! It reports medians and ratios and, with `--record`, writes them into
//! docs/performance.md after the criterion figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::demo::stack::{self, NAMESPACE, ORDER, SUBSCRIPTION, Stack};
use crate::demo::{self, Demo, Server, heading, path_str};

/// The benchmark cluster's name.
const CLUSTER: &str = "bench";

/// Where the agent section of docs/performance.md begins; `bench --record` keeps it.
pub const MARKER: &str = "<!-- cargo xtask bench --agent -->";
/// Where the image's figures (docs/image.md, `cargo xtask image`) begin, after
/// the agent section; `bench --agent --record` keeps them.
pub const IMAGE_MARKER: &str = "<!-- cargo xtask image -->";

/// What one run measured.
#[derive(Debug, Default, Clone)]
struct RunFigures {
    agent_install: Duration,
    helm_install: Duration,
    noop_requests: Vec<String>,
    noop_helm: Vec<String>,
    noop_writes: Vec<String>,
    noop_cpu_agent: Duration,
    noop_cpu_total: Duration,
    noop_wall: Duration,
    ctl_requests: Vec<String>,
    ctl_helm: Vec<String>,
    ctl_writes: Vec<String>,
    ctl_cpu_ms: u64,
    idle_rss_kib: u64,
    idle_hwm_kib: u64,
    peak_hwm_kib: u64,
    upgrade_wall: Duration,
    /// An uninterrupted upgrade of the five releases by `agent --once` (the baseline).
    once_upgrade: Duration,
    /// From the start of the killed `agent --once` to the SIGKILL of its group.
    kill_after: Duration,
    /// `release=status` of each release right after the kill.
    kill_states: Vec<String>,
    /// A fresh `agent --once` after the kill, from its start to exit 0.
    restart_converge: Duration,
    /// `operation: repair` entries the restart added to status.history.
    restart_repairs: usize,
    /// From the SIGKILL of the leading controller to the other one leading.
    handover: Duration,
    /// How long before the SIGKILL the killed leader last renewed the Lease.
    since_renewal: Duration,
}

/// Runs the agent benchmarks `runs` times; `record` writes docs/performance.md.
pub fn run(root: &Path, runs: usize, record: bool) -> Result<()> {
    ensure!(runs >= 1, "--runs must be at least 1");
    let binary = demo::build(root, true)?;
    let demo = Demo::new(root, binary, "bench")?;
    demo::make_keys(&demo)?;
    demo::make_trust_root(&demo)?;
    demo::publish(&demo)?;
    let server = Server::start(&demo, false)?;
    let outcome = (|| {
        let mut stack = stack::start_named(&demo, &server.url, CLUSTER)?;
        let result = measure(&demo, &mut stack, &server, runs);
        heading(&format!(
            "bring the cluster down (`cargo xtask cluster down --name {CLUSTER}`)"
        ));
        crate::cluster::down(CLUSTER)?;
        result
    })();
    server.stop()?;
    let figures = outcome?;
    if let Err(e) = std::fs::remove_dir_all(&demo.work) {
        eprintln!("warning: could not remove {}: {e}", demo.work.display());
    }
    let report = render(&figures)?;
    println!("\n{report}");
    if record {
        crate::bench::record_section(root, MARKER, Some(IMAGE_MARKER), &report)?;
    }
    Ok(())
}

fn measure(
    demo: &Demo,
    stack: &mut Stack,
    server: &Server,
    runs: usize,
) -> Result<Vec<RunFigures>> {
    // The controller polls every 20s (+ up to 2s jitter): its periodic no-op poll is measured.
    stack.interval = "20s";
    stack.subscribe()?;
    let counter = write_helm_wrapper(demo, &stack.tools.helm4)?;
    let values_dir = demo.work.join("values");
    let mut all = Vec::new();
    let mut sequence = 1;
    for run in 1..=runs {
        heading(&format!("run {run} of {runs}"));
        let mut f = RunFigures::default();
        if run > 1 {
            // The same starting state as the first run's, and as helm's below.
            reset(stack)?;
            stack.must(
                "kubectl",
                &stack.tools.kubectl,
                &[
                    "apply",
                    "-f",
                    path_str(&demo.work.join("subscription.yaml"))?,
                ],
                true,
            )?;
        }

        // 1. Full install by the agent.
        let helm = stack.tools.helm4.clone();
        let (code, wall, _) = agent_once(demo, stack, &helm)?;
        ensure!(code == 0, "the agent's full install exited {code}");
        f.agent_install = wall;
        println!("  agent --once full install: {}", secs(wall));
        if run == 1 {
            save_values(stack, &values_dir)?;
        }

        // 2. A no-op reconcile, counted.
        let before = write_state(stack)?;
        clear(&server.requests);
        std::fs::write(&counter, "")
            .with_context(|| format!("truncating {}", counter.display()))?;
        let wrapper = demo.work.join("helm-count.sh");
        let (code, wall, cpu_total) = agent_once(demo, stack, &wrapper)?;
        ensure!(code == 0, "the no-op reconcile exited {code}");
        let after = write_state(stack)?;
        f.noop_wall = wall;
        f.noop_cpu_total = cpu_total;
        f.noop_requests = server
            .requests
            .lock()
            .map_err(|_| anyhow::anyhow!("the access log lock is poisoned"))?
            .clone();
        let (calls, helm_cpu) = read_counter(&counter)?;
        f.noop_helm = calls;
        f.noop_cpu_agent = cpu_total.saturating_sub(helm_cpu);
        f.noop_writes = changed(&before, &after);
        println!(
            "  no-op: {} HTTP request(s) {:?}, helm processes {:?}, kube writes {:?}, CPU {} (agent alone {})",
            f.noop_requests.len(),
            f.noop_requests,
            f.noop_helm,
            f.noop_writes,
            ms(f.noop_cpu_total),
            ms(f.noop_cpu_agent)
        );

        // 3. Controller mode: idle memory, then the peak of a full stack upgrade.
        sequence += 1;
        memory(demo, stack, server, &counter, &mut f, run, sequence)?;

        // 4. Two controllers: the leader killed, the time until the other leads.
        handover(demo, stack, &mut f, run)?;

        // 5. `agent --once` killed during an upgrade, then the time to converge.
        kill_during_upgrade(demo, stack, &mut f, run, &mut sequence)?;

        // 6. Uninstall, then helm one by one, then uninstall again.
        stack.must(
            "kubectl",
            &stack.tools.kubectl,
            &[
                "delete",
                "channelsubscription",
                SUBSCRIPTION,
                "--namespace",
                NAMESPACE,
            ],
            true,
        )?;
        uninstall_all(stack)?;
        reset(stack)?;
        f.helm_install = helm_one_by_one(demo, stack, &values_dir)?;
        println!(
            "  helm upgrade --install --wait, one by one: {}",
            secs(f.helm_install)
        );
        uninstall_all(stack)?;
        all.push(f);
    }
    Ok(all)
}

/// The agent in controller mode: RSS after idling, VmHWM after a full stack upgrade.
fn memory(
    demo: &Demo,
    stack: &Stack,
    server: &Server,
    counter: &Path,
    f: &mut RunFigures,
    run: usize,
    sequence: u64,
) -> Result<()> {
    let log_path = demo.work.join(format!("agent-controller-{run}.log"));
    let mut child = spawn_controller(
        demo,
        stack,
        &demo.work.join("helm-count.sh"),
        &format!("bench-memory-{run}"),
        &log_path,
    )?;
    let pid = child.id();
    let result = (|| {
        let reconciles = || -> Result<usize> {
            Ok(std::fs::read_to_string(&log_path)?
                .matches("reconciled")
                .count())
        };
        wait_until(
            Duration::from_secs(60),
            "the controller's first reconcile",
            || Ok(reconciles()? >= 1),
        )?;
        std::thread::sleep(Duration::from_secs(5));
        let (rss, hwm) = proc_memory(pid)?;
        f.idle_rss_kib = rss;
        f.idle_hwm_kib = hwm;
        println!("  controller idle: VmRSS {} KiB, VmHWM {} KiB", rss, hwm);

        // The controller's next periodic poll, a no-op (it keeps the ETag from its first).
        let done = reconciles()?;
        let mut before = write_state(stack)?;
        flatten("status", &stack.subscription()?["status"], &mut before);
        clear(&server.requests);
        std::fs::write(counter, "").with_context(|| format!("truncating {}", counter.display()))?;
        let cpu_before = proc_cpu_ticks(pid)?;
        wait_until(
            Duration::from_secs(60),
            "the controller's no-op reconcile",
            || Ok(reconciles()? > done),
        )?;
        std::thread::sleep(Duration::from_secs(1));
        f.ctl_cpu_ms = (proc_cpu_ticks(pid)? - cpu_before) * 1000 / clock_ticks();
        let mut after = write_state(stack)?;
        flatten("status", &stack.subscription()?["status"], &mut after);
        before.remove(&format!("channelsubscription/{SUBSCRIPTION}"));
        after.remove(&format!("channelsubscription/{SUBSCRIPTION}"));
        f.ctl_writes = changed(&before, &after);
        f.ctl_requests = server
            .requests
            .lock()
            .map_err(|_| anyhow::anyhow!("the access log lock is poisoned"))?
            .clone();
        f.ctl_helm = read_counter(counter)?.0;
        println!(
            "  controller no-op: {} HTTP request(s) {:?}, helm processes {:?}, kube writes {:?}, agent CPU {} ms",
            f.ctl_requests.len(),
            f.ctl_requests,
            f.ctl_helm,
            f.ctl_writes,
            f.ctl_cpu_ms
        );

        let before = stack.releases()?;
        publish_all_changed(
            stack,
            &format!("all-{run}"),
            &format!("-bench{run}"),
            sequence,
        )?;
        let started = Instant::now();
        trigger(stack, &format!("{}s", 20 + run))?;
        wait_until(Duration::from_secs(300), "the full stack upgrade", || {
            let status = stack.subscription()?["status"].clone();
            Ok(
                status["acceptedSequence"] == sequence
                    && status["lastCheck"]["result"] == "applied",
            )
        })?;
        f.upgrade_wall = started.elapsed();
        let after = stack.releases()?;
        for (name, _) in ORDER {
            ensure!(
                after[*name].revision == before[*name].revision + 1,
                "{name} was not upgraded by the full stack upgrade"
            );
        }
        let (_, peak) = proc_memory(pid)?;
        f.peak_hwm_kib = peak;
        println!(
            "  controller full stack upgrade: {} (trigger to applied status), VmHWM {} KiB",
            secs(f.upgrade_wall),
            peak
        );
        Ok(())
    })();
    stop(&mut child)?;
    result
}

/// Publishes `sequence`: testdata's spec with every release's image tag suffixed by
/// `suffix`, so that all five releases change.
fn publish_all_changed(stack: &Stack, name: &str, suffix: &str, sequence: u64) -> Result<()> {
    let edits: Vec<(String, String, String)> = [
        ("certs", "1.14.0"),
        ("ingress", "1.10.0"),
        ("sso", "24.0.5"),
        ("wiki", "2.5.300"),
        ("files", "29.0.1"),
    ]
    .iter()
    .map(|(release, tag)| {
        (
            (*release).to_owned(),
            format!("tag: \"{tag}\""),
            format!("tag: \"{tag}{suffix}\""),
        )
    })
    .collect();
    let edits: Vec<(&str, &str, &str)> = edits
        .iter()
        .map(|(r, a, b)| (r.as_str(), a.as_str(), b.as_str()))
        .collect();
    let spec = stack.write_spec(name, &[], &edits)?;
    stack.publish(&spec, sequence)
}

/// The lease duration of the bench's controllers (the agent's default, written out).
const LEASE: Duration = Duration::from_secs(15);

/// `coxswain agent` in controller mode with leader election on (`--leader-elect`,
/// `--lease-duration 15s`, identity `identity`), in a process group of its own as a
/// pod's container is; output to `log_path`.
fn spawn_controller(
    demo: &Demo,
    stack: &Stack,
    helm: &Path,
    identity: &str,
    log_path: &Path,
) -> Result<Child> {
    use std::os::unix::process::CommandExt as _;
    let log = File::create(log_path).with_context(|| format!("creating {}", log_path.display()))?;
    Command::new(&demo.coxswain)
        .args(agent_args(demo, stack, helm, false)?)
        .env("NO_COLOR", "1")
        .env("POD_NAME", identity)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting coxswain agent")
}

/// SIGKILL to the process group `child` leads (the agent and its helm), then reaps it.
fn kill_group(child: &mut Child) -> Result<()> {
    let pgid = libc::pid_t::try_from(child.id()).context("the agent's pid does not fit pid_t")?;
    // SAFETY: kill(2) takes plain integers and has no memory effects; `pgid` is the
    // group our unreaped child leads (spawned with process_group(0)), so it names
    // only the processes this bench started.
    let r = unsafe { libc::kill(-pgid, libc::SIGKILL) };
    if r != 0 {
        let err = std::io::Error::last_os_error();
        // ESRCH: the group is gone already.
        if err.raw_os_error() != Some(libc::ESRCH) {
            bail!("kill -9 -{pgid}: {err}");
        }
    }
    child.wait().context("reaping the killed agent")?;
    Ok(())
}

/// The address the controller logged for its web server (`--listen 127.0.0.1:0`).
fn listen_address(log_path: &Path) -> Result<String> {
    let mut address = None;
    wait_until(
        Duration::from_secs(30),
        "the controller's web server address in its log",
        || {
            let text = std::fs::read_to_string(log_path)
                .with_context(|| format!("reading {}", log_path.display()))?;
            address = text
                .lines()
                .filter(|l| l.contains("web UI and /metrics listening"))
                .flat_map(str::split_whitespace)
                .find_map(|w| w.strip_prefix("address="))
                .map(str::to_owned);
            Ok(address.is_some())
        },
    )?;
    address.context("the controller logged no address")
}

/// `GET path` from `address` over plain HTTP/1.1: status code and body, or `None`
/// while nothing answers.
pub(crate) fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let addr: std::net::SocketAddr = address.parse().ok()?;
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}

/// The Lease's holder and its last renewal (`spec.renewTime`, a UTC MicroTime).
fn lease_renewal(stack: &Stack) -> Result<(String, std::time::SystemTime)> {
    let out = stack.must(
        "kubectl",
        &stack.tools.kubectl,
        &[
            "get",
            "lease",
            "coxswain-agent",
            "--namespace",
            NAMESPACE,
            "--output",
            "jsonpath={.spec.holderIdentity} {.spec.renewTime}",
        ],
        false,
    )?;
    let (holder, renewed) = out
        .trim()
        .split_once(' ')
        .with_context(|| format!("the Lease has no holder and renewal: {out:?}"))?;
    Ok((holder.to_owned(), parse_utc(renewed)?))
}

/// `2026-12-02T20:12:05.123456Z` (RFC 3339 in UTC, as the API server writes a
/// MicroTime) as a system time.
fn parse_utc(text: &str) -> Result<std::time::SystemTime> {
    let bad = || format!("cannot read the time {text:?}");
    let rest = text.strip_suffix('Z').with_context(bad)?;
    let (date, time) = rest.split_once('T').with_context(bad)?;
    let mut ymd = date.split('-').map(str::parse::<i64>);
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(d)), None) =
        (ymd.next(), ymd.next(), ymd.next(), ymd.next())
    else {
        bail!(bad());
    };
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut parts = hms.split(':').map(str::parse::<i64>);
    let (Some(Ok(hh)), Some(Ok(mm)), Some(Ok(ss)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!(bad());
    };
    let fraction: f64 = format!("0.{fraction}").parse().with_context(bad)?;
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).with_context(bad)?;
    Ok(std::time::UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_secs_f64(fraction))
}

/// The hand-over minus the rest of the Lease at the kill: how long after the Lease
/// expired the other replica led (negative: before, which fencing must not allow).
fn after_expiry(f: &RunFigures) -> f64 {
    f.handover.as_secs_f64() - (LEASE.as_secs_f64() - f.since_renewal.as_secs_f64())
}

/// Whether the controller at `address` says, on `/readyz`, that it leads.
fn leads(address: &str) -> bool {
    http_get(address, "/readyz")
        .is_some_and(|(code, body)| code == 200 && body.contains("leader (this replica"))
}

/// Two controllers with leader election: once one leads and the other follows, the
/// leader's process group gets SIGKILL (it cannot release the Lease); measured until
/// the other's `/readyz` says it leads. The survivor is then stopped with SIGTERM,
/// which releases the Lease for what follows.
fn handover(demo: &Demo, stack: &Stack, f: &mut RunFigures, run: usize) -> Result<()> {
    let helm = stack.tools.helm4.clone();
    let names = [format!("bench-{run}-a"), format!("bench-{run}-b")];
    let mut children: Vec<Child> = Vec::new();
    let result = (|| {
        let mut addresses = Vec::new();
        for name in &names {
            let log_path = demo.work.join(format!("agent-{name}.log"));
            children.push(spawn_controller(demo, stack, &helm, name, &log_path)?);
            addresses.push(listen_address(&log_path)?);
        }
        // One leads; the other names it as the leader.
        let mut lead = 0;
        wait_until(
            Duration::from_secs(60),
            "one of two controllers leading, the other following it",
            || {
                for (i, name) in names.iter().enumerate() {
                    let other = 1 - i;
                    let follows =
                        http_get(&addresses[other], "/readyz").is_some_and(|(code, body)| {
                            code == 200 && body.contains(&format!("leader is {name}"))
                        });
                    if leads(&addresses[i]) && follows {
                        lead = i;
                        return Ok(true);
                    }
                }
                Ok(false)
            },
        )?;
        let follow = 1 - lead;
        kill_group(&mut children[lead])?;
        let killed = Instant::now();
        let killed_at = std::time::SystemTime::now();
        // The dead leader's last renewal: nobody may take the Lease before it expires.
        let (holder, renewed) = lease_renewal(stack)?;
        ensure!(
            holder == names[lead],
            "the Lease names {holder:?} right after the SIGKILL of {}",
            names[lead]
        );
        f.since_renewal = killed_at.duration_since(renewed).unwrap_or(Duration::ZERO);
        let deadline = killed + LEASE * 3;
        while !leads(&addresses[follow]) {
            ensure!(
                Instant::now() < deadline,
                "{} did not lead within {} of the SIGKILL of {}",
                names[follow],
                secs(LEASE * 3),
                names[lead]
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        f.handover = killed.elapsed();
        println!(
            "  leader hand-over: {} killed (SIGKILL) {} after its last renewal, {} leads {} later (lease duration {}; {} after the Lease expired)",
            names[lead],
            secs(f.since_renewal),
            names[follow],
            secs(f.handover),
            secs(LEASE),
            secs_signed(after_expiry(f))
        );
        Ok(())
    })();
    // Every controller this step started is stopped by its pid: SIGTERM (the one
    // still leading releases the Lease), or reaped if it was killed already.
    let mut stopped = Ok(());
    for child in &mut children {
        if child.try_wait()?.is_none()
            && let Err(e) = stop(child)
        {
            stopped = Err(e);
        }
    }
    result.and(stopped)
}

/// The baseline, then the kill: an uninterrupted `agent --once` upgrade of all five
/// releases; then another sequence that changes all five, `agent --once` in its own
/// process group, SIGKILL to the group as soon as certs' new revision shows
/// `pending-upgrade` in helm's storage (a watch on its release Secrets), and a fresh
/// `agent --once` timed until it exits 0 with every release at the new sequence.
fn kill_during_upgrade(
    demo: &Demo,
    stack: &Stack,
    f: &mut RunFigures,
    run: usize,
    sequence: &mut u64,
) -> Result<()> {
    let helm = stack.tools.helm4.clone();
    *sequence += 1;
    publish_all_changed(
        stack,
        &format!("once-{run}"),
        &format!("-bench{run}o"),
        *sequence,
    )?;
    let (code, wall, _) = agent_once(demo, stack, &helm)?;
    ensure!(
        code == 0,
        "the uninterrupted `agent --once` upgrade exited {code}"
    );
    converged(stack, *sequence)?;
    f.once_upgrade = wall;
    println!(
        "  agent --once upgrade of the 5 releases, uninterrupted: {}",
        secs(wall)
    );

    *sequence += 1;
    publish_all_changed(
        stack,
        &format!("kill-{run}"),
        &format!("-bench{run}k"),
        *sequence,
    )?;
    let certs = stack
        .releases()?
        .get("certs")
        .map(|r| r.revision)
        .context("certs is not installed")?;
    let target = format!("sh.helm.release.v1.certs.v{} pending-upgrade", certs + 1);
    let mut watch = Command::new(&stack.tools.kubectl)
        .args([
            "get",
            "secrets",
            "--namespace",
            "cert-system",
            "--selector",
            "owner=helm,name=certs",
            "--watch",
            "--output",
            "jsonpath={.metadata.name} {.metadata.labels.status}{\"\\n\"}",
        ])
        .env("KUBECONFIG", &stack.kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting kubectl get --watch")?;
    let result = (|| -> Result<()> {
        let stdout = watch
            .stdout
            .take()
            .context("kubectl's stdout is not piped")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The watch lists certs' existing revisions first: then it is watching.
        rx.recv_timeout(Duration::from_secs(30))
            .context("kubectl get --watch listed nothing within 30s")?;
        let log_path = demo.work.join(format!("agent-killed-{run}.log"));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut child = {
            use std::os::unix::process::CommandExt as _;
            Command::new(&demo.coxswain)
                .args(agent_args(demo, stack, &helm, true)?)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .process_group(0)
                .spawn()
                .context("starting coxswain agent --once")?
        };
        let started = Instant::now();
        let seen = (|| -> Result<()> {
            loop {
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(line) if line.trim() == target => return Ok(()),
                    Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        bail!("kubectl get --watch ended")
                    }
                }
                if let Some(status) = child.try_wait()? {
                    bail!("the agent ended ({status}) before {target:?} was seen");
                }
                ensure!(
                    started.elapsed() < Duration::from_secs(120),
                    "{target:?} not seen within 120s"
                );
            }
        })();
        // Killed whether or not the point was seen: nothing is left running.
        kill_group(&mut child)?;
        seen?;
        f.kill_after = started.elapsed();
        Ok(())
    })();
    watch.kill().context("stopping kubectl get --watch")?;
    watch.wait().context("reaping kubectl get --watch")?;
    result?;

    f.kill_states = helm_states(stack)?;
    let repairs_before = repairs(&stack.subscription()?["status"]);
    let (code, wall, _) = agent_once(demo, stack, &helm)?;
    ensure!(code == 0, "the `agent --once` after the kill exited {code}");
    converged(stack, *sequence)?;
    f.restart_converge = wall;
    f.restart_repairs = repairs(&stack.subscription()?["status"]).saturating_sub(repairs_before);
    println!(
        "  agent --once killed {} after its start (states then {:?}); a fresh agent --once converged in {} with {} repair(s): {:.2}x the uninterrupted upgrade",
        secs(f.kill_after),
        f.kill_states,
        secs(wall),
        f.restart_repairs,
        wall.as_secs_f64() / f.once_upgrade.as_secs_f64()
    );
    Ok(())
}

/// `release=status` of the stack's releases as helm's storage says (pending ones included).
fn helm_states(stack: &Stack) -> Result<Vec<String>> {
    let json = stack.must(
        "helm",
        &stack.tools.helm4,
        &[
            "list",
            "--all-namespaces",
            "--deployed",
            "--failed",
            "--pending",
            "--uninstalling",
            "--output",
            "json",
        ],
        false,
    )?;
    let list: Vec<Value> = serde_json::from_str(&json).context("parsing helm list")?;
    Ok(ORDER
        .iter()
        .map(|(name, _)| {
            let status = list
                .iter()
                .find(|r| r["name"] == *name)
                .and_then(|r| r["status"].as_str())
                .unwrap_or("absent");
            format!("{name}={status}")
        })
        .collect())
}

/// `operation: repair` entries in a subscription's status.history.
fn repairs(status: &Value) -> usize {
    status["history"].as_array().map_or(0, |h| {
        h.iter().filter(|o| o["operation"] == "repair").count()
    })
}

/// Fails unless the subscription accepted `sequence` with no intent left, every
/// release up to date, and helm's latest revision of each deployed by that sequence.
fn converged(stack: &Stack, sequence: u64) -> Result<()> {
    let status = stack.subscription()?["status"].clone();
    ensure!(
        status["acceptedSequence"] == sequence,
        "the subscription accepted {} where {sequence} was expected",
        status["acceptedSequence"]
    );
    ensure!(
        status
            .get("inFlight")
            .is_none_or(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty)),
        "intents left over: {}",
        status["inFlight"]
    );
    for (name, namespace) in ORDER {
        let state = status["releases"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == *name))
            .map(|r| r["state"].clone())
            .unwrap_or(Value::Null);
        ensure!(state == "upToDate", "{name} is {state} in the status");
        let history = stack.must(
            "helm",
            &stack.tools.helm4,
            &[
                "history",
                name,
                "--namespace",
                namespace,
                "--max",
                "1",
                "--output",
                "json",
            ],
            false,
        )?;
        let history: Vec<Value> = serde_json::from_str(&history).context("parsing helm history")?;
        let last = history
            .last()
            .with_context(|| format!("{name} has no history"))?;
        let description = last["description"].as_str().unwrap_or("");
        ensure!(
            last["status"] == "deployed"
                && description.starts_with(&format!("coxswain stable#{sequence} ")),
            "{name}'s latest revision is {} ({description:?}), not deployed by sequence {sequence}",
            last["status"]
        );
    }
    Ok(())
}

/// Sets the subscription's interval: a spec change (new generation) makes the
/// controller reconcile at once instead of at the end of its interval.
fn trigger(stack: &Stack, interval: &str) -> Result<()> {
    stack.must(
        "kubectl",
        &stack.tools.kubectl,
        &[
            "patch",
            "channelsubscription",
            SUBSCRIPTION,
            "--namespace",
            NAMESPACE,
            "--type=merge",
            "--patch",
            &format!("{{\"spec\":{{\"interval\":\"{interval}\"}}}}"),
        ],
        false,
    )?;
    Ok(())
}

/// utime + stime of `pid` itself (children excluded), in clock ticks.
pub(crate) fn proc_cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("{path} has no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{path}: field {} is missing", i + 3))
    };
    Ok(tick(11)? + tick(12)?)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub(crate) fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

fn agent_args(demo: &Demo, stack: &Stack, helm: &Path, once: bool) -> Result<Vec<String>> {
    let mut args: Vec<String> = [
        "agent",
        "--kubeconfig",
        path_str(&stack.kubeconfig)?,
        "--namespace",
        NAMESPACE,
        "--helm",
        path_str(helm)?,
        "--cache-dir",
        path_str(&demo.work.join("agent-cache"))?,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if once {
        args.push("--once".to_owned());
    } else {
        // The web UI and /metrics are part of what the controller costs, and so is
        // leader election (the default, written out).
        args.extend(
            [
                "--listen",
                "127.0.0.1:0",
                "--leader-elect=true",
                "--lease-duration",
                &format!("{}s", LEASE.as_secs()),
            ]
            .map(str::to_owned),
        );
    }
    Ok(args)
}

/// `agent --once` with `helm`: exit code, wall time, CPU time (user + system) of the
/// agent and its reaped children.
fn agent_once(demo: &Demo, stack: &Stack, helm: &Path) -> Result<(i32, Duration, Duration)> {
    let log_path = demo.work.join("agent-once.log");
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let started = Instant::now();
    let child = Command::new(&demo.coxswain)
        .args(agent_args(demo, stack, helm, true)?)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting coxswain agent --once")?;
    let (code, cpu) = wait_rusage(&child)?;
    let wall = started.elapsed();
    if code != 0 {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        for line in text
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            println!("  | {line}");
        }
    }
    Ok((code, wall, cpu))
}

/// Waits for `child` with `wait4`, returning its exit code and CPU time (its own and
/// that of the children it reaped).
pub(crate) fn wait_rusage(child: &Child) -> Result<(i32, Duration)> {
    let (code, cpu, _) = wait_usage(child)?;
    Ok((code, cpu))
}

/// Like [`wait_rusage`], also with `ru_maxrss` in KiB: the largest peak RSS of the
/// child and of the descendants it reaped.
pub(crate) fn wait_usage(child: &Child) -> Result<(i32, Duration, u64)> {
    let pid = libc::pid_t::try_from(child.id()).context("the agent's pid does not fit pid_t")?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is a plain C struct for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid for writes; `pid` is our unreaped child
        // (std's Child is never waited on after this, so the pid is not reaped twice).
        let r = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            bail!("wait4 on the agent (pid {pid}): {err}");
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok((
        code,
        tv(usage.ru_utime) + tv(usage.ru_stime),
        u64::try_from(usage.ru_maxrss).unwrap_or(0),
    ))
}

/// Sends SIGTERM to the controller and waits; SIGKILL after 10 seconds.
pub(crate) fn stop(child: &mut Child) -> Result<()> {
    let pid = child.id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .context("running kill")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill()?;
    child.wait()?;
    bail!("the agent (pid {pid}) ignored SIGTERM and was killed");
}

/// (VmRSS, VmHWM) in KiB from /proc/<pid>/status.
fn proc_memory(pid: u32) -> Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{path} has no {name}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if done()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not happen within {}", secs(limit));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A helm wrapper that runs helm 4 and appends its subcommand and bash's `times`
/// (the shell's and helm's CPU) to a counter file; returns the counter's path.
pub(crate) fn write_helm_wrapper(demo: &Demo, helm: &Path) -> Result<PathBuf> {
    let counter = demo.work.join("helm-calls.txt");
    let script = format!(
        "#!/bin/bash\n\"{}\" \"$@\"\nrc=$?\n{{ echo \"call $1\"; times; }} >> \"{}\"\nexit $rc\n",
        path_str(helm)?,
        path_str(&counter)?
    );
    let path = demo.work.join("helm-count.sh");
    std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(counter)
}

/// The helm subcommands called and the CPU time of the wrappers and helm.
pub(crate) fn read_counter(path: &Path) -> Result<(Vec<String>, Duration)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut calls = Vec::new();
    let mut cpu = Duration::ZERO;
    for line in text.lines() {
        if let Some(sub) = line.strip_prefix("call ") {
            calls.push(sub.to_owned());
            continue;
        }
        // `times`: "0m0.004s 0m0.001s", the shell's then its children's user and system time.
        for word in line.split_whitespace() {
            let parsed = word
                .strip_suffix('s')
                .and_then(|w| w.split_once('m'))
                .and_then(|(m, s)| Some(m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?))
                .with_context(|| format!("cannot read {word:?} in {}", path.display()))?;
            cpu += Duration::from_secs_f64(parsed);
        }
    }
    Ok((calls, cpu))
}

/// resourceVersions of what a reconcile could write: the subscription, the Events
/// of its namespace, helm's release Secrets.
fn write_state(stack: &Stack) -> Result<BTreeMap<String, String>> {
    let mut state = BTreeMap::new();
    let sub = stack.subscription()?;
    state.insert(
        format!("channelsubscription/{SUBSCRIPTION}"),
        sub["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    );
    for (kind, args) in [
        (
            "event",
            vec![
                "get",
                "events",
                "--namespace",
                NAMESPACE,
                "--output",
                "json",
            ],
        ),
        (
            "secret",
            vec![
                "get",
                "secrets",
                "--all-namespaces",
                "--selector",
                "owner=helm",
                "--output",
                "json",
            ],
        ),
    ] {
        let json = stack.must("kubectl", &stack.tools.kubectl, &args, false)?;
        let list: Value = serde_json::from_str(&json).context("parsing a kubectl list")?;
        for item in list["items"].as_array().into_iter().flatten() {
            let meta = &item["metadata"];
            state.insert(
                format!(
                    "{kind}/{}/{}",
                    meta["namespace"].as_str().unwrap_or(""),
                    meta["name"].as_str().unwrap_or("")
                ),
                meta["resourceVersion"].as_str().unwrap_or("").to_owned(),
            );
        }
    }
    Ok(state)
}

/// Every leaf of `value` as `prefix.key.0.key = value`, so a diff names the fields.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), v, out);
            }
        }
        leaf => {
            out.insert(prefix.to_owned(), leaf.to_string());
        }
    }
}

/// Objects created or changed between two snapshots.
fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}

fn clear(log: &std::sync::Mutex<Vec<String>>) {
    if let Ok(mut log) = log.lock() {
        log.clear();
    }
}

/// The values the agent gave each release (channel values merged), for the helm baseline.
fn save_values(stack: &Stack, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, namespace) in ORDER {
        let values = stack.must(
            "helm",
            &stack.tools.helm4,
            &[
                "get",
                "values",
                name,
                "--namespace",
                namespace,
                "--output",
                "yaml",
            ],
            false,
        )?;
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, values).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn uninstall_all(stack: &Stack) -> Result<()> {
    for (name, namespace) in ORDER.iter().rev() {
        stack.must(
            "helm",
            &stack.tools.helm4,
            &[
                "uninstall",
                name,
                "--namespace",
                namespace,
                "--wait",
                "--timeout",
                "2m",
            ],
            false,
        )?;
    }
    println!("  uninstalled the 5 releases");
    Ok(())
}

/// What a fresh cluster has of the stack: nothing. Deletes the releases'
/// namespaces and the CRD the certs chart installs from `crds/` (helm leaves
/// both behind on uninstall), so that the agent's install and helm's start
/// from the same state and do the same work.
fn reset(stack: &Stack) -> Result<()> {
    let mut args = vec![
        "delete",
        "namespace",
        "--ignore-not-found",
        "--wait",
        "--timeout=3m",
    ];
    args.extend(ORDER.iter().map(|(_, ns)| *ns));
    stack.must("kubectl", &stack.tools.kubectl, &args, false)?;
    stack.must(
        "kubectl",
        &stack.tools.kubectl,
        &[
            "delete",
            "crd",
            CERTS_CRD,
            "--ignore-not-found",
            "--wait",
            "--timeout=3m",
        ],
        false,
    )?;
    println!("  deleted the releases' namespaces and the {CERTS_CRD} CRD");
    Ok(())
}

/// The CustomResourceDefinition in testdata's certs chart's `crds/`.
const CERTS_CRD: &str = "certificates.certs.coxswain.test";

/// `helm upgrade --install --wait` per release in dependency order, then
/// `helm test` for the releases whose health asks for it (as the agent
/// runs it); the total wall time.
fn helm_one_by_one(demo: &Demo, stack: &Stack, values: &Path) -> Result<Duration> {
    let spec =
        coxswain::format::ChannelSpec::load(&demo.root.join("testdata/channels/stable.yaml"))?;
    let started = Instant::now();
    for (name, namespace) in ORDER {
        let chart = demo.root.join("testdata/charts").join(name);
        stack.must(
            "helm",
            &stack.tools.helm4,
            &[
                "upgrade",
                "--install",
                name,
                path_str(&chart)?,
                "--namespace",
                namespace,
                "--create-namespace",
                "--values",
                path_str(&values.join(format!("{name}.yaml")))?,
                "--wait",
                "--timeout",
                "5m",
            ],
            false,
        )?;
        if spec
            .releases
            .iter()
            .any(|r| r.name == *name && r.health.test)
        {
            stack.must(
                "helm",
                &stack.tools.helm4,
                &["test", name, "--namespace", namespace, "--timeout", "5m"],
                false,
            )?;
        }
    }
    Ok(started.elapsed())
}

pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn secs_signed(x: f64) -> String {
    format!("{x:.2}s")
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

fn render(runs: &[RunFigures]) -> Result<String> {
    let n = runs.len();
    let med = |f: &dyn Fn(&RunFigures) -> f64| median(runs.iter().map(f).collect());
    let agent = med(&|r| r.agent_install.as_secs_f64());
    let helm = med(&|r| r.helm_install.as_secs_f64());
    let upgrade = med(&|r| r.upgrade_wall.as_secs_f64());
    let requests = med(&|r| r.noop_requests.len() as f64);
    let helm_calls = med(&|r| r.noop_helm.len() as f64);
    let upgrades = runs
        .iter()
        .map(|r| r.noop_helm.iter().filter(|c| *c == "upgrade").count())
        .max()
        .unwrap_or(0);
    let writes = med(&|r| r.noop_writes.len() as f64);
    let cpu_agent = med(&|r| r.noop_cpu_agent.as_secs_f64() * 1000.0);
    let cpu_total = med(&|r| r.noop_cpu_total.as_secs_f64() * 1000.0);
    let noop_wall = med(&|r| r.noop_wall.as_secs_f64());
    let ctl_requests = med(&|r| r.ctl_requests.len() as f64);
    let ctl_helm = med(&|r| r.ctl_helm.len() as f64);
    let ctl_upgrades = runs
        .iter()
        .map(|r| r.ctl_helm.iter().filter(|c| *c == "upgrade").count())
        .max()
        .unwrap_or(0);
    // Changed status fields are one status write.
    let writes_of = |w: &[String]| {
        let status = usize::from(w.iter().any(|k| k.starts_with("status.")));
        (w.iter().filter(|k| !k.starts_with("status.")).count() + status) as f64
    };
    let ctl_writes = med(&|r| writes_of(&r.ctl_writes));
    let ctl_cpu = med(&|r| r.ctl_cpu_ms as f64);
    let idle = med(&|r| r.idle_rss_kib as f64);
    let idle_hwm = med(&|r| r.idle_hwm_kib as f64);
    let peak = med(&|r| r.peak_hwm_kib as f64);
    let once_upgrade = med(&|r| r.once_upgrade.as_secs_f64());
    let restart = med(&|r| r.restart_converge.as_secs_f64());
    let restart_ratio = med(&|r| r.restart_converge.as_secs_f64() / r.once_upgrade.as_secs_f64());
    let repairs = med(&|r| r.restart_repairs as f64);
    let kill_after = med(&|r| r.kill_after.as_secs_f64());
    let handover = med(&|r| r.handover.as_secs_f64());
    let since_renewal = med(&|r| r.since_renewal.as_secs_f64());
    let after_expiry = med(&after_expiry);
    let lease = LEASE.as_secs_f64();
    let first = &runs[0];
    let machine = crate::bench::Machine::probe()?;
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER}\n## The agent on a loopback cluster\n");
    let _ = writeln!(
        out,
        "From `cargo xtask bench --agent --runs {n} --record`: the release build of coxswain,\n\
         helm {}, the loopback cluster `bench` (Kubernetes v1.36.3, two KWOK nodes, see\n\
         docs/testcluster.md) on the same machine, `coxswain serve` on 127.0.0.1 serving\n\
         testdata's stable channel (5 releases: certs -> ingress -> sso -> wiki, files).\n\
         Medians over {n} runs. Machine: {} CPUs, {}; {}; 1-minute load average {} at the end.\n",
        crate::tools::HELM4_VERSION,
        machine.cpus,
        machine.cpu_model,
        machine.rustc,
        machine.load
    );
    let _ = writeln!(out, "| what | median | target |\n|---|---|---|");
    let _ = writeln!(
        out,
        "| no-op reconcile of the running controller: HTTP requests to the site | {ctl_requests} | 1 conditional request |"
    );
    let _ = writeln!(
        out,
        "| controller no-op: helm processes (of them `helm upgrade`: {ctl_upgrades} in every run) | {ctl_helm} | no helm upgrade |"
    );
    let _ = writeln!(
        out,
        "| controller no-op: kube writes (subscription status, Events, helm Secrets changed; a status change counts once) | {ctl_writes} | none |"
    );
    let _ = writeln!(
        out,
        "| controller no-op: CPU time of the agent process (/proc utime + stime, 10 ms ticks) | {} | |",
        if ctl_cpu < 10.0 {
            "< 10 ms (under one tick)".to_owned()
        } else {
            format!("{ctl_cpu:.0} ms")
        }
    );
    let _ = writeln!(
        out,
        "| no-op reconcile by `agent --once` (a fresh process): HTTP requests to the site | {requests} | 1 conditional request |"
    );
    let _ = writeln!(
        out,
        "| `--once` no-op: helm processes spawned (of them `helm upgrade`: {upgrades} in every run) | {helm_calls} | no helm upgrade |"
    );
    let _ = writeln!(
        out,
        "| `--once` no-op: kube writes (objects whose resourceVersion changed) | {writes} | none |"
    );
    let _ = writeln!(
        out,
        "| `--once` no-op: CPU time of the agent process (user + system, helm children excluded) | {cpu_agent:.0} ms | |"
    );
    let _ = writeln!(
        out,
        "| `--once` no-op: CPU time with the helm children | {cpu_total:.0} ms | |"
    );
    let _ = writeln!(
        out,
        "| `--once` no-op: wall time of `agent --once` (start-up included) | {noop_wall:.2}s | |"
    );
    let _ = writeln!(
        out,
        "| agent RSS idle (controller mode, leader election on, after its first reconcile and 5 s; VmHWM so far {}) | {} | <= 25 MiB |",
        mib(idle_hwm),
        mib(idle)
    );
    let _ = writeln!(
        out,
        "| agent peak RSS (controller mode, leader election on; VmHWM after a full stack upgrade, helm children excluded) | {} | <= 60 MiB |",
        mib(peak)
    );
    let _ = writeln!(
        out,
        "| leader hand-over: SIGKILL of the leading controller until the other's `/readyz` says it leads | {handover:.2}s | |"
    );
    let _ = writeln!(
        out,
        "| the lease duration (`--lease-duration`, the default; baseline of the hand-over) | {lease:.0}s | |"
    );
    let _ = writeln!(
        out,
        "| hand-over / lease duration | {:.2}x | |",
        handover / lease
    );
    let _ = writeln!(
        out,
        "| hand-over: the killed leader's last renewal before the SIGKILL; the other led this long after the Lease expired | {since_renewal:.2}s; {after_expiry:.2}s | |"
    );
    let _ = writeln!(
        out,
        "| `agent --once` upgrade of the 5 releases, uninterrupted (baseline of the restart) | {once_upgrade:.2}s | |"
    );
    let _ = writeln!(
        out,
        "| restart to converged: `agent --once` killed (SIGKILL to its process group) {kill_after:.2}s after its start, when certs' new revision shows `pending-upgrade`; a fresh `agent --once` until it exits 0 with every release at the new sequence | {restart:.2}s | |"
    );
    let _ = writeln!(
        out,
        "| restart to converged / uninterrupted upgrade (median of the per-run ratios) | {restart_ratio:.2}x | |"
    );
    let _ = writeln!(
        out,
        "| repairs by that restart (`operation: repair` entries added to status.history) | {repairs} | |"
    );
    let _ = writeln!(
        out,
        "| full stack upgrade in controller mode (spec change that triggers it to applied status) | {upgrade:.2}s | |"
    );
    let _ = writeln!(
        out,
        "| full stack install by `agent --once` | {agent:.2}s | |"
    );
    let _ = writeln!(
        out,
        "| the same 5 releases, `helm upgrade --install --wait` one by one in dependency order, and `helm test` where the index asks for it; both from the same state (namespaces and CRD deleted) | {helm:.2}s | |"
    );
    let _ = writeln!(out, "| agent / helm one by one | {:.2}x | |", agent / helm);
    let _ = writeln!(
        out,
        "\nPer run:\n\n| run | agent install | helm one by one | ratio | no-op CPU (agent) | idle RSS | peak VmHWM | hand-over (renewed before kill) | `--once` upgrade | killed after | restart to converged | ratio | repairs |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (i, r) in runs.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2}x | {} | {} | {} | {} ({}) | {} | {} | {} | {:.2}x | {} |",
            i + 1,
            secs(r.agent_install),
            secs(r.helm_install),
            r.agent_install.as_secs_f64() / r.helm_install.as_secs_f64(),
            ms(r.noop_cpu_agent),
            mib(r.idle_rss_kib as f64),
            mib(r.peak_hwm_kib as f64),
            secs(r.handover),
            secs(r.since_renewal),
            secs(r.once_upgrade),
            secs(r.kill_after),
            secs(r.restart_converge),
            r.restart_converge.as_secs_f64() / r.once_upgrade.as_secs_f64(),
            r.restart_repairs
        );
    }
    let _ = writeln!(
        out,
        "\nThe releases as helm's storage had them right after each kill:\n"
    );
    for (i, r) in runs.iter().enumerate() {
        let _ = writeln!(out, "- run {}: {}", i + 1, r.kill_states.join(", "));
    }
    let _ = writeln!(
        out,
        "\nAgainst the targets: the controller's no-op poll makes {}, {} `helm upgrade` and {}; \
         `--once` starts without the ETag of a previous process, so it fetches the index, the \
         signature and probes the next trust root. With leader election on, idle memory is \
         {} ({}) the 25 MiB budget, peak memory {} ({}) the 60 MiB budget.",
        if ctl_requests <= 1.0 {
            "one conditional request (304)".to_owned()
        } else {
            format!("{ctl_requests} requests")
        },
        if ctl_upgrades == 0 { "no" } else { "some" },
        if ctl_writes == 0.0 {
            "no kube write".to_owned()
        } else {
            format!(
                "{ctl_writes} kube write(s): it rewrites the subscription's status on every poll ({}), where the target is none",
                first.ctl_writes.join(", ")
            )
        },
        mib(idle),
        if idle <= 25.0 * 1024.0 {
            "within"
        } else {
            "over"
        },
        mib(peak),
        if peak <= 60.0 * 1024.0 {
            "within"
        } else {
            "over"
        },
    );
    let _ = writeln!(
        out,
        "\nWhat the no-op reconciles did in run 1. Controller: HTTP {:?}; helm {:?}; writes {:?}. \
         `--once` (a fresh process, so no ETag from before): HTTP {:?}; helm {:?}; writes {:?}.\n",
        first.ctl_requests,
        first.ctl_helm,
        first.ctl_writes,
        first.noop_requests,
        first.noop_helm,
        first.noop_writes
    );
    let _ = writeln!(
        out,
        "How it is measured:\n\n\
         - HTTP requests: `coxswain serve`'s access log during the run.\n\
         - helm processes: the agent's `--helm` is a bash wrapper that runs helm 4 and appends\n  \
           the subcommand and bash's `times` to a file (the wrapper belongs to the harness).\n\
         - kube writes: resourceVersions of the subscription, the Events of its namespace and\n  \
           helm's release Secrets (`owner=helm`) before and after; no audit log.\n\
         - controller no-op: its periodic poll (interval 20s) after the first reconcile;\n  \
           writes are the status content, Events and helm Secrets compared before and after;\n  \
           CPU from /proc/<pid>/stat (the sandbox has no schedstat), 10 ms resolution.\n\
         - `--once` CPU: `wait4` rusage of the agent (it includes the helm children it reaped) minus\n  \
           the wrappers' `times` (helm and the wrapper shells).\n\
         - memory: VmRSS / VmHWM of the agent's pid in /proc; helm runs in child processes,\n  \
           so its memory is not counted. The controller runs with `--leader-elect=true\n  \
           --lease-duration 15s` (the defaults) and the admin kubeconfig, so it holds the Lease.\n\
         - leader hand-over: two controllers (`POD_NAME` bench-<run>-a and -b, each in its\n  \
           own process group); once one leads and the other names it, the leader's group\n  \
           gets SIGKILL (the Lease is not released), and the other's `/readyz` is polled every\n  \
           100 ms until it says `leader (this replica, …)`; the Lease's `renewTime`, read right\n  \
           after the kill, gives the dead leader's last renewal. Expected: the rest of the Lease\n  \
           (renewed a third of the duration before it expires) plus up to 1 s of back-off and\n  \
           a fifth of the duration to read it, so between about 5 s and 19 s. The kill comes\n  \
           right after the leader took the Lease (that is its last renewal), so the hand-over\n  \
           is close to a whole lease duration; the time after the expiry is the overhead.\n\
         - restart to converged: `agent --once` starts in its own process group on a sequence\n  \
           that changes all five releases; a `kubectl get secrets --watch` on certs' helm\n  \
           release Secrets sees its new revision appear as `pending-upgrade`, and the group\n  \
           (agent and helm) gets SIGKILL at once. The fresh `agent --once` is timed from its\n  \
           start (start-up included) to exit 0; then the status must have accepted the new\n  \
           sequence with no intent left, every release `upToDate`, and helm's latest\n  \
           revision of each deployed with `coxswain stable#<sequence>`. The baseline is an\n  \
           uninterrupted `agent --once` upgrade of all five releases just before, in the same run.\n\
         - install wall time: the agent's includes its start-up, fetching and verifying the\n  \
           index and charts, health checks after every release and `helm test` for wiki\n  \
           (the channel asks for it); the helm baseline runs `helm upgrade --install --wait`\n  \
           (watcher) per release with the values the agent installed, from the chart\n  \
           directories, and `helm test` for wiki too: the same work. Both start from the\n  \
           same state: the releases' namespaces and the certs chart's CRD are deleted\n  \
           before each (helm's uninstall leaves both), so both create them.\n"
    );
    let _ = writeln!(
        out,
        "```sh\ncargo xtask bench --agent [--runs N]            # run and print (N defaults to 3)\ncargo xtask bench --agent --runs 5 --record     # also replace this section\n```"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_api_servers_micro_time() {
        let at = |s| {
            parse_utc(s)
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
        };
        assert_eq!(
            at("2026-12-02T20:12:05.250000Z"),
            Duration::from_millis(1_796_242_325_250)
        );
        assert_eq!(at("2000-02-29T23:59:59Z"), Duration::from_secs(951_868_799));
        assert_eq!(at("1970-01-01T00:00:00Z"), Duration::ZERO);
        assert!(parse_utc("2026-12-02 20:12:05Z").is_err());
        assert!(parse_utc("2026-12-02T20:12:05").is_err());
        assert!(parse_utc("2026-12-02T20:12Z").is_err());
    }
}
