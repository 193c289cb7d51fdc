//! End-to-end fault tests of `coxswain agent`: the agent (and the helm it
//! runs) killed with SIGKILL at random points of an upgrade, during the
//! health check of a broken upgrade and during its rollback, then started
//! again: every release must end in a known state (never `pending-*`), at the
//! newest healthy sequence or rolled back as the failure calls for, with the
//! anti-rollback state intact and no write-ahead intent left over.
//!
//! The kill points are drawn from a seeded generator: set
//! `COXSWAIN_FAULT_SEED` to replay a failing run (the seed is printed).
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::os::unix::process::CommandExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::kubeconfig_path;
use support::world::{World, break_sso, coxswain, release, set};

/// The releases of the campaign (three dependency layers).
const RELEASES: [&str; 3] = ["certs", "ingress", "sso"];

/// A small xorshift generator: the same seed gives the same kill points.
struct Rng(u64);

impl Rng {
    fn from_env() -> Self {
        let seed = std::env::var("COXSWAIN_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_c0c5_u64);
        eprintln!("fault campaign seed: COXSWAIN_FAULT_SEED={seed}");
        Self(seed.max(1))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `coxswain agent --once` in a process group of its own, as a pod's
/// container is: killing the group kills the agent and its helm together.
fn spawn_once(w: &World) -> std::process::Child {
    std::process::Command::new(coxswain())
        .arg("agent")
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args(["--namespace", &w.ns.name, "--helm"])
        .arg(&w.helm)
        .arg("--cache-dir")
        .arg(w.dir.path().join("cache"))
        .arg("--once")
        .env("COXSWAIN_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// SIGKILL to the agent's whole process group (agent and helm), then reaps it.
fn kill_group(child: &mut std::process::Child) {
    let pid = rustix::process::Pid::from_child(child);
    // The group may be gone already when the run ended before the kill.
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    let _ = child.wait();
}

/// Runs `--once` until it exits with `want` (at most three runs); returns
/// the time it took and the last output.
fn converge(w: &World, want: i32) -> (Duration, String) {
    let started = Instant::now();
    let mut last = String::new();
    for _ in 0..3 {
        let (code, out, err) = w.agent_once();
        last = format!("exit {code}\nstdout: {out}\nstderr: {err}");
        if code == want {
            return (started.elapsed(), last);
        }
    }
    panic!("the agent did not converge to exit {want} in three runs; last run: {last}");
}

/// Latest revision of `release`: (revision, status, description).
fn latest(w: &World, release: &str) -> (u64, String, String) {
    let h = w.history(release);
    let last = h.last().unwrap();
    (
        last["revision"].as_u64().unwrap(),
        last["status"].as_str().unwrap().to_owned(),
        last["description"].as_str().unwrap_or("").to_owned(),
    )
}

/// Counts the repairs in the status history.
fn repairs(status: &Value) -> usize {
    status["history"]
        .as_array()
        .map(|h| h.iter().filter(|o| o["operation"] == "repair").count())
        .unwrap_or(0)
}

/// Asserts the invariants after a converged round at `sequence`.
async fn assert_converged(w: &World, sequence: u64) -> Value {
    let status = w.status().await;
    assert_eq!(status["acceptedSequence"], sequence, "{status:#}");
    assert!(
        status.get("inFlight").is_none(),
        "intents left over: {status:#}"
    );
    for r in RELEASES {
        let (_, state, description) = latest(w, r);
        assert_eq!(state, "deployed", "{r}: {description}");
        assert!(
            description.starts_with(&format!("coxswain stable#{sequence} ")),
            "{r} is not at sequence {sequence}: {description}"
        );
        assert_eq!(release(&status, r)["state"], "upToDate", "{status:#}");
    }
    status
}

/// Ten rounds: each publishes a sequence that changes every release, kills
/// the agent and its helm at a random point of the run, and starts it again.
#[tokio::test]
async fn kill_nine_during_upgrades_always_converges() {
    let mut w = World::new("fault-kill", &RELEASES).await;
    w.publish(|_, _| {});
    w.subscribe(|_| {}).await;
    let (took, out) = converge(&w, 0);
    eprintln!("installed in {took:?}");
    assert_converged(&w, 1).await;

    // One uninterrupted upgrade of every release: how long a run lasts, so
    // the kills land inside one.
    let sequence = w.publish(|_, r| set(r, &["values", "round"], 0.into()));
    let (run_time, _) = converge(&w, 0);
    assert_converged(&w, sequence).await;
    let window = u64::try_from(run_time.as_millis()).unwrap().max(500);
    eprintln!("an upgrade run takes {run_time:?}: kills fall within {window} ms");

    let mut rng = Rng::from_env();
    let rounds = 10;
    let mut killed_mid_run = 0;
    let mut total_repairs_before = repairs(&w.status().await);
    let mut converge_times = Vec::new();
    for round in 1..=rounds {
        let sequence = w.publish(|_, r| set(r, &["values", "round"], round.into()));
        let delay = Duration::from_millis(100 + rng.below(window));
        let mut child = spawn_once(&w);
        std::thread::sleep(delay);
        let running = child.try_wait().unwrap().is_none();
        kill_group(&mut child);
        if running {
            killed_mid_run += 1;
        }
        let stuck: Vec<(String, String)> = RELEASES
            .iter()
            .map(|r| (r.to_string(), latest(&w, r).1))
            .collect();
        let (took, _) = converge(&w, 0);
        converge_times.push(took);
        let status = assert_converged(&w, sequence).await;
        let now = repairs(&status);
        eprintln!(
            "round {round}: killed after {delay:?} (mid-run: {running}), states then {stuck:?}, \
             repairs {}, converged in {took:?}",
            now.saturating_sub(total_repairs_before)
        );
        total_repairs_before = now;
        let _ = &out;
    }
    converge_times.sort();
    eprintln!(
        "campaign: {rounds} rounds, {killed_mid_run} killed mid-run, {} repairs in the status history, \
         median time to converge {:?}",
        repairs(&w.status().await),
        converge_times[converge_times.len() / 2]
    );
    assert!(
        killed_mid_run >= rounds / 2,
        "most kills must land inside a run ({killed_mid_run} of {rounds})"
    );
}

/// Five rounds of a broken upgrade (health timeout 5s), each killed at a
/// random point of the run (upgrade, its health check, the rollback, the
/// rollback's health check) and started again: the release always ends
/// rolled back to a healthy revision, the sequence failed, nothing pending.
#[tokio::test]
async fn kill_nine_during_broken_upgrades_always_ends_rolled_back() {
    let mut w = World::new("fault-rb", &["certs", "sso"]).await;
    w.publish(|_, _| {});
    w.subscribe(|_| {}).await;
    converge(&w, 0);
    let broken = |round: u64| {
        move |name: &str, r: &mut Value| {
            if name == "sso" {
                break_sso(r);
                set(r, &["health", "timeout"], "5s".into());
                set(r, &["values", "round"], round.into());
            }
        }
    };
    // One uninterrupted broken run: how long upgrade, check and rollback take.
    let sequence = w.publish(broken(0));
    let (run_time, _) = converge(&w, 2);
    let status = w.status().await;
    assert_eq!(status["failedSequence"]["sequence"], sequence, "{status:#}");
    let window = u64::try_from(run_time.as_millis()).unwrap().max(500);
    eprintln!("a broken run takes {run_time:?}: kills fall within {window} ms");

    let mut rng = Rng::from_env();
    let mut states = Vec::new();
    for round in 1..=5 {
        let sequence = w.publish(broken(round));
        let delay = Duration::from_millis(100 + rng.below(window));
        let mut child = spawn_once(&w);
        std::thread::sleep(delay);
        kill_group(&mut child);
        let at_kill = latest(&w, "sso");
        let (took, out) = converge(&w, 2);
        let (_, state, description) = latest(&w, "sso");
        assert_eq!(state, "deployed", "round {round}: {description}\n{out}");
        assert!(
            description.starts_with("Rollback to"),
            "round {round}: killed at {at_kill:?}, now {description}\n{out}"
        );
        let status = w.status().await;
        assert_eq!(
            status["failedSequence"]["sequence"], sequence,
            "round {round}: {status:#}"
        );
        assert!(
            status.get("inFlight").is_none(),
            "round {round}: {status:#}"
        );
        assert_eq!(release(&status, "sso")["state"], "rolledBack", "{status:#}");
        eprintln!(
            "broken round {round}: killed after {delay:?} at {:?}, converged in {took:?}",
            (&at_kill.1, &at_kill.2)
        );
        states.push(at_kill.1);
    }
    eprintln!("broken rounds: states at the kill {states:?}");
}

/// A broken upgrade: the agent is killed while it checks the new revision's
/// health, then again while it rolls back. After each restart the release is
/// rolled back to the revision noted before, the sequence is failed (not
/// retried), and nothing is left pending.
#[tokio::test]
async fn kill_during_health_check_and_rollback_of_a_broken_upgrade() {
    let mut w = World::new("fault-broken", &RELEASES).await;
    w.publish(|_, _| {});
    w.subscribe(|_| {}).await;
    converge(&w, 0);
    let (good, _, _) = latest(&w, "sso");

    // Killed during the health check of the broken revision.
    let broken = w.publish(|name, r| {
        if name == "sso" {
            break_sso(r);
        }
    });
    let mut child = spawn_once(&w);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (rev, state, _) = latest(&w, "sso");
        if rev > good && state == "deployed" {
            break;
        }
        assert!(Instant::now() < deadline, "sso was never upgraded");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    kill_group(&mut child);
    // The broken revision is deployed; before this work a restart called it up to date.
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    let (rev, state, description) = latest(&w, "sso");
    assert_eq!(state, "deployed");
    assert_eq!(description, format!("Rollback to {good}"), "rev {rev}");
    let status = w.status().await;
    assert_eq!(status["failedSequence"]["sequence"], broken, "{status:#}");
    assert!(status.get("inFlight").is_none(), "{status:#}");
    assert!(repairs(&status) >= 1, "{status:#}");
    assert!(
        status["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["operation"] == "repair"
                && o["message"].as_str().unwrap().contains("checked again")),
        "{status:#}"
    );
    // Not retried: the next run changes nothing.
    let before = w.revisions();
    let (code, _, _) = w.agent_once();
    assert_eq!(code, 2);
    assert_eq!(w.revisions(), before);

    // A newer broken sequence; killed while it rolls back.
    let (good, _, _) = latest(&w, "sso");
    let broken = w.publish(|name, r| {
        if name == "sso" {
            break_sso(r);
            set(r, &["values", "again"], true.into());
        }
    });
    let mut child = spawn_once(&w);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, state, description) = latest(&w, "sso");
        if state == "pending-rollback" || description.starts_with("Rollback to") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sso was never rolled back ({state}: {description})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_group(&mut child);
    let (_, state_at_kill, _) = latest(&w, "sso");
    let (code, out, err) = w.agent_once();
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    let (_, state, description) = latest(&w, "sso");
    assert_eq!(state, "deployed", "{description}");
    assert!(
        description.starts_with("Rollback to"),
        "killed at {state_at_kill}; now {description}"
    );
    let status = w.status().await;
    assert_eq!(status["failedSequence"]["sequence"], broken, "{status:#}");
    assert!(status.get("inFlight").is_none(), "{status:#}");
    // The healthy revision's workload is what runs.
    let h = w.history("sso");
    let target: u64 = description
        .trim_start_matches("Rollback to ")
        .parse()
        .unwrap();
    assert!(
        target <= good,
        "rolled back to {target}, good was {good}: {h:#?}"
    );
}
