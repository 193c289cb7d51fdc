//! A real OCI registry on loopback (`registry serve`, the CNCF distribution
//! binary at `COXSWAIN_TEST_REGISTRY`), over plain HTTP or over TLS with a
//! private CA made by the real `openssl` for the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running `registry serve`, killed by pid on drop.
pub struct Registry {
    child: std::process::Child,
    /// `127.0.0.1:<port>`.
    pub host: String,
    _dir: tempfile::TempDir,
}

/// A private CA and a server certificate it signed for `127.0.0.1`.
pub struct TestCa {
    /// The CA's certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's key (PEM).
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// A CA named `name` in `dir`, and a certificate for `IP:127.0.0.1` it signed.
    pub fn new(dir: &Path, name: &str) -> Self {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let (ca, ca_key) = (format!("{name}-ca.pem"), format!("{name}-ca.key"));
        let (cert, key, csr) = (
            format!("{name}-server.pem"),
            format!("{name}-server.key"),
            format!("{name}-server.csr"),
        );
        let subject = format!("/CN=coxswain test CA {name}");
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend([
            "-keyout", &ca_key, "-out", &ca, "-days", "2", "-subj", &subject,
        ]);
        openssl(dir, &args);
        let mut args = vec!["req"];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"]);
        openssl(dir, &args);
        let ext = format!("{name}-ext.cnf");
        std::fs::write(
            dir.join(&ext),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        Self {
            ca: dir.join(ca),
            cert: dir.join(cert),
            key: dir.join(key),
        }
    }
}

impl Registry {
    /// Starts a registry on a free loopback port: plain HTTP, or TLS with `tls`.
    pub fn start(tls: Option<&TestCa>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.path().join("storage").display()
        );
        if let Some(ca) = tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                ca.cert.display(),
                ca.key.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let binary = std::env::var_os("COXSWAIN_TEST_REGISTRY")
            .filter(|v| !v.is_empty())
            .expect(
                "COXSWAIN_TEST_REGISTRY must name the registry binary (cargo xtask test sets it)",
            );
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
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
        while std::net::TcpStream::connect(&registry.host).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the registry did not listen on {} within 30s",
                registry.host
            );
            std::thread::sleep(Duration::from_millis(100));
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

/// `crane ARGS --insecure` (plain HTTP on loopback, `COXSWAIN_TEST_CRANE`); stdout, or
/// stderr as the error.
pub fn crane(args: &[&str]) -> Result<Vec<u8>, String> {
    let crane = match std::env::var_os("COXSWAIN_TEST_CRANE") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!("COXSWAIN_TEST_CRANE is not set: run the tests with `cargo xtask test`"),
    };
    let out = Command::new(crane)
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
