//! Running one helm process: bounded output, a hard timeout, a trace line and
//! an observer callback per call.

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::error::{HelmError, Target};
use super::{HelmCommand, HelmConfig, Invocation, Observer, Outcome};

/// How much of helm's stderr is kept while reading (the tail; helm's
/// "Error: ..." line comes last).
const STDERR_KEEP: usize = 64 * 1024;
/// How much of it goes into an error message.
const STDERR_IN_ERROR: usize = 4 * 1024;
/// Time helm gets after SIGTERM to mark its release failed before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);

/// One helm call to make.
pub(crate) struct Call<'a> {
    pub command: HelmCommand,
    pub release: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub args: Vec<OsString>,
    pub timeout: Duration,
}

impl Call<'_> {
    pub fn target(&self) -> Target {
        Target {
            release: self.release.map(str::to_owned),
            namespace: self.namespace.map(str::to_owned),
        }
    }
}

/// What a successful call printed.
pub(crate) struct Output {
    pub stdout: Vec<u8>,
}

/// Runs helm, reports the call to tracing and the observer, and maps failures.
pub(crate) async fn run(
    config: &HelmConfig,
    observer: &dyn Observer,
    call: Call<'_>,
) -> Result<Output, HelmError> {
    let started = Instant::now();
    let result = run_inner(config, &call).await;
    let outcome = match &result {
        Ok(_) => Outcome::Succeeded,
        Err(HelmError::Spawn { .. }) => Outcome::SpawnFailed,
        Err(HelmError::TimedOut { .. }) => Outcome::TimedOut,
        Err(_) => Outcome::Failed,
    };
    let invocation = Invocation {
        command: call.command,
        release: call.release,
        namespace: call.namespace,
        duration: started.elapsed(),
        outcome,
    };
    trace(&invocation, result.as_ref().err());
    observer.helm_finished(&invocation);
    result
}

fn trace(inv: &Invocation<'_>, error: Option<&HelmError>) {
    let duration_ms = u64::try_from(inv.duration.as_millis()).unwrap_or(u64::MAX);
    let (command, outcome) = (inv.command.as_str(), inv.outcome.as_str());
    let release = inv.release.unwrap_or("");
    let namespace = inv.namespace.unwrap_or("");
    match error {
        // Not-found is an answer, not a failure (history of a release not yet installed).
        Some(e) if !e.is_not_found() => tracing::warn!(
            target: "coxswain::helm", command, release, namespace, duration_ms, outcome,
            error = %e, "helm call failed"
        ),
        _ if inv.command.mutates() => tracing::info!(
            target: "coxswain::helm", command, release, namespace, duration_ms, outcome, "helm call"
        ),
        _ => tracing::debug!(
            target: "coxswain::helm", command, release, namespace, duration_ms, outcome, "helm call"
        ),
    }
}

async fn run_inner(config: &HelmConfig, call: &Call<'_>) -> Result<Output, HelmError> {
    let mut cmd = Command::new(&config.binary);
    cmd.args(&call.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The backstop: a helm abandoned by a dropped future is not left running.
        .kill_on_drop(true);
    cmd.envs(config.extra_env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &config.state_dir {
        // helm wants writable cache/config/data directories; a container's
        // read-only root has none at $HOME.
        cmd.env("HELM_CACHE_HOME", dir.join("cache"))
            .env("HELM_CONFIG_HOME", dir.join("config"))
            .env("HELM_DATA_HOME", dir.join("data"));
    }
    let mut child = cmd.spawn().map_err(|source| HelmError::Spawn {
        binary: config.binary.clone(),
        source,
    })?;
    let pid = child.id();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        // Both were configured as pipes just above.
        return Err(HelmError::BadOutput {
            command: call.command,
            target: call.target(),
            reason: "helm's output pipes were not opened".into(),
        });
    };
    let limit = config.max_output_bytes;
    let work = async {
        tokio::join!(
            read_head(stdout, limit),
            read_tail(stderr, STDERR_KEEP),
            child.wait()
        )
    };
    let (stdout, stderr, status) = match tokio::time::timeout(call.timeout, work).await {
        Ok(done) => done,
        Err(_elapsed) => {
            stop(&mut child, pid).await;
            return Err(HelmError::TimedOut {
                command: call.command,
                target: call.target(),
                timeout: call.timeout,
            });
        }
    };
    let status = status.map_err(|source| HelmError::Spawn {
        binary: config.binary.clone(),
        source,
    })?;
    let stderr = stderr.unwrap_or_default();
    if !status.success() {
        let message = error_text(&stderr);
        if message.contains("release: not found") {
            return Err(HelmError::ReleaseNotFound {
                command: call.command,
                target: call.target(),
            });
        }
        return Err(HelmError::Failed {
            command: call.command,
            target: call.target(),
            exit: exit_text(status),
            stderr: message,
        });
    }
    match stdout {
        Ok((bytes, false)) => Ok(Output { stdout: bytes }),
        Ok((_, true)) => Err(HelmError::OutputTooLarge {
            command: call.command,
            target: call.target(),
            limit,
        }),
        Err(e) => Err(HelmError::BadOutput {
            command: call.command,
            target: call.target(),
            reason: format!("reading standard output: {e}"),
        }),
    }
}

/// SIGTERM first: helm 3.8+ and 4 then mark the release failed instead of
/// leaving it `pending-*`. SIGKILL after a grace period.
async fn stop(child: &mut tokio::process::Child, pid: Option<u32>) {
    if let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        // The child has not been reaped (we still own it), so the pid is still ours.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        if tokio::time::timeout(TERM_GRACE, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// Reads up to `limit` bytes and drains the rest, so helm never blocks on a
/// full pipe. Returns the bytes and whether the limit was exceeded.
async fn read_head(
    mut pipe: impl AsyncRead + Unpin,
    limit: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut overflow = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            return Ok((kept, overflow));
        }
        if kept.len() + n > limit {
            overflow = true;
        } else {
            kept.extend_from_slice(&buf[..n]);
        }
    }
}

/// Reads everything, keeping only the last `keep` bytes.
async fn read_tail(mut pipe: impl AsyncRead + Unpin, keep: usize) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            return Ok(kept);
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > keep {
            kept.drain(..kept.len() - keep);
        }
    }
}

/// helm's stderr for an error message: lossy UTF-8, trimmed, the last
/// [`STDERR_IN_ERROR`] bytes, on one line per message line.
pub(crate) fn error_text(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        return "helm printed no error message".to_owned();
    }
    if text.len() <= STDERR_IN_ERROR {
        return text.to_owned();
    }
    let mut start = text.len() - STDERR_IN_ERROR;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}

fn exit_text(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "unknown exit".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn head_reader_bounds_and_drains() {
        let data = vec![7u8; 200_000];
        let (kept, overflow) = read_head(&data[..], 100_000).await.unwrap();
        assert!(overflow);
        assert!(kept.len() <= 100_000);
        let (kept, overflow) = read_head(&data[..], 200_000).await.unwrap();
        assert!(!overflow);
        assert_eq!(kept.len(), 200_000);
    }

    #[tokio::test]
    async fn tail_reader_keeps_the_end() {
        let mut data = vec![b'x'; 100_000];
        data.extend_from_slice(b"Error: the end");
        let kept = read_tail(&data[..], 1000).await.unwrap();
        assert_eq!(kept.len(), 1000);
        assert!(kept.ends_with(b"Error: the end"));
    }

    #[test]
    fn error_text_is_trimmed_and_bounded() {
        assert_eq!(error_text(b"  Error: boom\n"), "Error: boom");
        assert_eq!(error_text(b"\n"), "helm printed no error message");
        let mut long = "é".repeat(5000).into_bytes();
        long.extend_from_slice(b"\nError: last line");
        let text = error_text(&long);
        assert!(text.len() <= STDERR_IN_ERROR + 3);
        assert!(text.starts_with("..."));
        assert!(text.ends_with("Error: last line"));
    }
}
