//! The last cluster step of `cargo xtask demo`: the agent as a controller, and
//! what users look at — its web UI, `/api/v1/status` and `/metrics` — after the
//! broken update was rolled back. Each fact shown is checked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::heading;
use super::stack::Stack;

/// A running `coxswain agent` controller, stopped by pid (SIGTERM) on drop.
struct Agent {
    child: Child,
    addr: String,
}

impl Agent {
    fn stop(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                ensure!(
                    status.success(),
                    "the agent exited with {status} after SIGTERM"
                );
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!("the agent ignored SIGTERM for 15 s and was killed");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A plain HTTP/1.1 GET on loopback: (status code, body).
fn get(addr: &str, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("GET {path}: no HTTP header"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("GET {path}: bad status line"))?;
    ensure!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "GET {path}: chunked responses are not expected from the agent"
    );
    Ok((code, body.to_owned()))
}

/// The value of the first sample of `metric` whose labels contain every `needle`.
fn sample(metrics: &str, metric: &str, needles: &[&str]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(metric)?;
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            return None;
        }
        if !needles.iter().all(|n| rest.contains(n)) {
            return None;
        }
        rest.rsplit(' ').next()?.parse().ok()
    })
}

impl Stack<'_> {
    /// Runs the agent as a controller with its web server, shows and checks the
    /// UI, the status API and the metrics, then stops it.
    pub fn observe(&mut self) -> Result<()> {
        heading("run the agent as a controller: its web UI, status API and metrics");
        let args = self.agent_args(&["--listen", "127.0.0.1:0", "--log-format", "json"])?;
        let shown: Vec<String> = args.iter().map(|a| self.shorten(a)).collect();
        println!("$ coxswain {} &", shown.join(" "));
        let mut child = Command::new(self.coxswain_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the agent")?;
        let stderr = child.stderr.take().context("the agent's stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if let Some(addr) = v["fields"]["address"].as_str() {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the agent did not report its listening address within 30 s");
            }
        };
        let mut agent = Agent { child, addr };
        println!("  listening on http://{}/", agent.addr);

        // The first reconcile of the controller: the failed sequence waits.
        let deadline = Instant::now() + Duration::from_secs(60);
        let doc = loop {
            let (code, body) = get(&agent.addr, "/api/v1/status")?;
            ensure!(code == 200, "/api/v1/status answered {code}");
            let doc: Value = serde_json::from_str(&body).context("parsing /api/v1/status")?;
            let checked = doc["subscriptions"]
                .as_array()
                .and_then(|s| s.first())
                .is_some_and(|s| s["preview"].is_object() && s["running"].is_null());
            if checked && doc["ready"] == true {
                break doc;
            }
            ensure!(
                Instant::now() < deadline,
                "the agent did not finish a check within 60 s"
            );
            std::thread::sleep(Duration::from_millis(300));
        };
        let sub = &doc["subscriptions"][0];
        println!("$ curl http://{}/api/v1/status   # summarised", agent.addr);
        println!(
            "  {}: accepted sequence {}, failed sequence {}, plan for {}: {}",
            sub["name"].as_str().unwrap_or("?"),
            sub["acceptedSequence"],
            sub["failedSequence"]["sequence"],
            sub["preview"]["sequence"],
            sub["preview"]["state"]["state"].as_str().unwrap_or("?"),
        );
        for r in sub["releases"].as_array().into_iter().flatten() {
            println!(
                "    {:<8} {:<8} revision {:<3} {}",
                r["name"].as_str().unwrap_or("?"),
                r["version"].as_str().unwrap_or("-"),
                r["revision"],
                r["state"].as_str().unwrap_or("?")
            );
        }
        let sso_rollback = sub["history"]
            .as_array()
            .and_then(|h| {
                h.iter()
                    .find(|o| o["release"] == "sso" && o["operation"] == "rollback")
            })
            .context("/api/v1/status has no rollback of sso in its history")?;
        println!(
            "    sso's rollback: {} (helm revision {} -> {})",
            sso_rollback["message"].as_str().unwrap_or(""),
            sso_rollback["fromRevision"],
            sso_rollback["toRevision"]
        );
        ensure!(
            sub["failedSequence"]["sequence"] == 3 && sub["preview"]["state"]["state"] == "waiting",
            "the status API does not show sequence 3 failed and waiting: {sub}"
        );

        let (code, html) = get(&agent.addr, "/subscriptions/stack/releases/sso")?;
        ensure!(code == 200, "the sso page answered {code}");
        ensure!(
            html.contains("Rollback reason") && html.contains(">rolledBack<"),
            "the sso page does not show the rollback"
        );
        println!(
            "  pages: http://{0}/  http://{0}/subscriptions/stack/releases/sso  http://{0}/subscriptions/stack/preview",
            agent.addr
        );

        let (code, metrics) = get(&agent.addr, "/metrics")?;
        ensure!(code == 200, "/metrics answered {code}");
        println!(
            "$ curl http://{}/metrics   # a few of the series",
            agent.addr
        );
        for line in metrics.lines().filter(|l| {
            l.starts_with("coxswain_accepted_sequence")
                || l.starts_with("coxswain_failed_sequence")
                || (l.starts_with("coxswain_release_state") && l.ends_with(" 1"))
                || l.starts_with("coxswain_index_expiry_timestamp_seconds")
        }) {
            println!("  {line}");
        }
        ensure!(
            sample(&metrics, "coxswain_failed_sequence", &[]) == Some(3.0),
            "coxswain_failed_sequence is not 3"
        );
        ensure!(
            sample(
                &metrics,
                "coxswain_release_state",
                &["release=\"sso\"", "state=\"rolledBack\""]
            ) == Some(1.0),
            "coxswain_release_state says sso is not rolledBack"
        );
        agent.stop()?;
        println!("  stopped the agent (SIGTERM)");
        self.pass(
            "the controller's web UI, /api/v1/status and /metrics show sequence 3 failed and waiting, sso rolled back with its reason".to_owned(),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::sample;

    #[test]
    fn sample_matches_name_and_labels() {
        let text = "coxswain_failed_sequence{subscription=\"a/b\"} 3\n\
                    coxswain_failed_sequence_x 9\n\
                    coxswain_release_state{release=\"sso\",state=\"rolledBack\"} 1\n";
        assert_eq!(sample(text, "coxswain_failed_sequence", &[]), Some(3.0));
        assert_eq!(
            sample(text, "coxswain_release_state", &["state=\"rolledBack\""]),
            Some(1.0)
        );
        assert_eq!(
            sample(text, "coxswain_release_state", &["state=\"x\""]),
            None
        );
    }
}
