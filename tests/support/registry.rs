//! A real OCI registry (CNCF distribution, `COXSWAIN_TEST_REGISTRY`) on loopback, and the
//! real `crane` (`COXSWAIN_TEST_CRANE`) to fill it.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_path(name: &str) -> PathBuf {
    match std::env::var_os(name) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!(
            "{name} is not set: run the tests with `cargo xtask test` (or set it to the tool's path)"
        ),
    }
}

/// A running `registry serve`, killed by pid on drop.
pub struct Registry {
    child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry with empty storage and waits until it answers.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new(env_path("COXSWAIN_TEST_REGISTRY"))
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let registry = Self {
            child,
            host,
            _dir: dir,
        };
        let started = Instant::now();
        while crane(&["catalog", &registry.host]).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the registry did not answer on {} within 30s",
                registry.host
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `crane ARGS --insecure` (plain HTTP on loopback); stdout, or stderr as the error.
pub fn crane(args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new(env_path("COXSWAIN_TEST_CRANE"))
        .args(args)
        .arg("--insecure")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
