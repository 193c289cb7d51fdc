//! `coxswain serve` as a process: it prints the bound address, serves the site, logs each
//! request, and exits cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coxswain::site::{SitePath, SiteWriter};

#[test]
fn serve_prints_its_address_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    SiteWriter::new(dir.path())
        .write(&SitePath::index("stable").unwrap(), b"{\"sequence\":1}")
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_coxswain"))
        .args(["serve", "--dir"])
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("COXSWAIN_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = runtime.block_on(async {
        let response = reqwest::get(format!("{url}/channels/stable/index.json"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("etag"));
        response.bytes().await.unwrap()
    });
    assert_eq!(&body[..], b"{\"sequence\":1}");

    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve did not stop within 10s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("path=/channels/stable/index.json") && stderr.contains("status=200"),
        "no access log line in {stderr:?}"
    );
}

#[test]
fn serve_flags_set_the_header_timeout_and_refuse_a_zero_cap() {
    let dir = tempfile::tempdir().unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_coxswain"))
        .args(["serve", "--max-connections", "0", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--max-connections"), "{stderr}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_coxswain"))
        .args([
            "serve",
            "--header-timeout",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();
    // An idle connection is closed by the server (read returns 0) well within 30 s.
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 16];
    let read = idle.read(&mut buf);
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
