//! Chart sources as they exist in the field, against real servers on
//! loopback: OCI registries (the CNCF distribution `registry serve` at
//! `COXSWAIN_TEST_REGISTRY`, pushed to and pulled from with the real helm 4)
//! over plain HTTP and over TLS with a private CA the real `openssl` makes.
//! Each failure asserts the message that names the spec field to set.
//!
//! Run with `cargo xtask e2e` (which builds the registry).

mod support;

use std::path::{Path, PathBuf};

use coxswain::format::Timestamp;
use coxswain::publish::{PublishOptions, publish};
use ed25519_dalek::SigningKey;
use support::cluster::helm4;
use support::registry::{Registry, TestCa};
use support::testdata;

/// Runs helm 4 with `args`, which must succeed.
fn helm(args: &[&std::ffi::OsStr]) {
    let out = std::process::Command::new(helm4())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `helm package` of the widgets test chart into `dir`.
fn packaged_chart(dir: &Path) -> PathBuf {
    let chart = testdata("charts/widgets");
    helm(&[
        "package".as_ref(),
        chart.as_ref(),
        "--destination".as_ref(),
        dir.as_ref(),
    ]);
    dir.join("widgets-1.0.0.tgz")
}

/// `helm push` of `chart` to `oci://<host>/charts` with `flags`.
fn push(chart: &Path, host: &str, flags: &[&str]) {
    let target = format!("oci://{host}/charts");
    let mut args: Vec<&std::ffi::OsStr> = vec!["push".as_ref(), chart.as_ref(), target.as_ref()];
    args.extend(flags.iter().map(std::ffi::OsStr::new));
    helm(&args);
}

/// Publishes a spec with the one release `widgets` from `oci://<host>/charts/widgets`
/// with `extra` YAML in its `oci` mapping, into a fresh site under `dir`.
async fn publish_oci(dir: &Path, host: &str, extra: &str) -> Result<(), String> {
    let source = format!("oci: {{ref: \"oci://{host}/charts/widgets\", version: 1.0.0{extra}}}");
    publish_source(dir, &source).await
}

/// Publishes a spec with the one release `widgets` whose chart is `source` (a
/// flow mapping entry), into a fresh site under `dir`; the error chain on refusal.
async fn publish_source(dir: &Path, source: &str) -> Result<(), String> {
    let spec = dir.join("spec.yaml");
    std::fs::write(
        &spec,
        format!(
            "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: stable\nreleases:\n  \
             - name: widgets\n    namespace: widgets\n    chart:\n      {source}\n"
        ),
    )
    .unwrap();
    let site = tempfile::tempdir_in(dir).unwrap();
    let mut opts = PublishOptions::new(
        spec,
        vec![SigningKey::from_bytes(&[7; 32])],
        site.path().to_path_buf(),
        Timestamp::from_unix(1_800_000_000).unwrap(),
    );
    opts.sequence = Some(1);
    opts.helm = helm4();
    match publish(&opts).await {
        Ok(report) => {
            assert_eq!(report.releases[0].version, "1.0.0");
            assert!(site.path().join("channels/stable/index.json").is_file());
            Ok(())
        }
        Err(e) => {
            assert!(
                !site.path().join("channels").exists(),
                "nothing is written on a refusal"
            );
            Err(support::chain(&e))
        }
    }
}

#[tokio::test]
async fn oci_over_plain_http_needs_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let chart = packaged_chart(dir.path());
    let registry = Registry::start(None);
    push(&chart, &registry.host, &["--plain-http"]);

    publish_oci(dir.path(), &registry.host, ", plainHttp: true")
        .await
        .unwrap();
    let err = publish_oci(dir.path(), &registry.host, "")
        .await
        .unwrap_err();
    assert!(
        err.contains("release `widgets`: `")
            && err.contains("the registry speaks plain HTTP: set `chart.oci.plainHttp: true`"),
        "{err}"
    );
}

#[tokio::test]
async fn oci_with_a_private_ca_needs_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let chart = packaged_chart(dir.path());
    let ca = TestCa::new(dir.path(), "registry");
    let other = TestCa::new(dir.path(), "other");
    let registry = Registry::start(Some(&ca));
    push(
        &chart,
        &registry.host,
        &["--ca-file", ca.ca.to_str().unwrap()],
    );

    // caFile is relative to the spec, which lies in `dir`.
    publish_oci(dir.path(), &registry.host, ", caFile: registry-ca.pem")
        .await
        .unwrap();
    let err = publish_oci(dir.path(), &registry.host, "")
        .await
        .unwrap_err();
    assert!(
        err.contains("the registry's TLS certificate is not trusted: set `chart.oci.caFile`"),
        "{err}"
    );
    assert!(other.ca.is_file());
    let err = publish_oci(dir.path(), &registry.host, ", caFile: other-ca.pem")
        .await
        .unwrap_err();
    assert!(
        err.contains("does not verify against `chart.oci.caFile`"),
        "{err}"
    );
    let err = publish_oci(dir.path(), &registry.host, ", caFile: missing.pem")
        .await
        .unwrap_err();
    assert!(
        err.contains("chart.oci.caFile: ") && err.contains("missing.pem"),
        "{err}"
    );
    // HTTP to a registry that speaks HTTPS.
    let err = publish_oci(dir.path(), &registry.host, ", plainHttp: true")
        .await
        .unwrap_err();
    assert!(err.contains("remove `chart.oci.plainHttp`"), "{err}");
}

/// A Helm repository: `index.yaml` listing widgets 1.0.0 at a relative URL,
/// and the chart, in `dir/repo`.
fn helm_repository(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    packaged_chart(&repo);
    helm(&["repo".as_ref(), "index".as_ref(), repo.as_ref()]);
    repo
}

/// Serves `root` over plain HTTP on loopback, answering 401 unless the request
/// carries basic auth `coxswain:s3cret`; the base URL.
async fn serve_with_basic_auth(root: PathBuf) -> String {
    use axum::http::{HeaderMap, StatusCode, Uri, header};
    let handler = move |headers: HeaderMap, uri: Uri| {
        let root = root.clone();
        async move {
            let expected = "Basic Y294c3dhaW46czNjcmV0"; // coxswain:s3cret
            if headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                != Some(expected)
            {
                return Err(StatusCode::UNAUTHORIZED);
            }
            let name = uri.path().trim_start_matches("/charts/");
            if name.contains('/') || name.contains("..") {
                return Err(StatusCode::NOT_FOUND);
            }
            std::fs::read(root.join(name)).map_err(|_| StatusCode::NOT_FOUND)
        }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/charts")
}

/// Publishes widgets 1.0.0 from the repository at `url` with `extra` YAML in
/// its `repo` mapping, into a fresh site under `dir`.
async fn publish_repo(dir: &Path, url: &str, extra: &str) -> Result<(), String> {
    let source = format!("repo: {{url: \"{url}\", name: widgets, version: 1.0.0{extra}}}");
    publish_source(dir, &source).await
}

#[tokio::test]
async fn a_helm_repository_with_basic_auth_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let repo = helm_repository(dir.path());
    let url = serve_with_basic_auth(repo).await;
    // SAFETY: only this test reads or writes these variables, and std serialises
    // set_var with its own reads of the environment (helm is spawned with a copy).
    unsafe {
        std::env::set_var("E2E_SOURCES_REPO_USER", "coxswain");
        std::env::set_var("E2E_SOURCES_REPO_PASSWORD", "s3cret");
        std::env::set_var("E2E_SOURCES_REPO_WRONG", "guess");
    }
    let auth =
        ", auth: {usernameEnv: E2E_SOURCES_REPO_USER, passwordEnv: E2E_SOURCES_REPO_PASSWORD}";
    publish_repo(dir.path(), &url, auth).await.unwrap();

    let err = publish_repo(dir.path(), &url, "").await.unwrap_err();
    assert!(
        err.contains("401")
            && err.contains("the repository asks for credentials: set `chart.repo.auth`"),
        "{err}"
    );
    let wrong = ", auth: {usernameEnv: E2E_SOURCES_REPO_USER, passwordEnv: E2E_SOURCES_REPO_WRONG}";
    let err = publish_repo(dir.path(), &url, wrong).await.unwrap_err();
    assert!(
        err.contains(
            "the repository refused the credentials from $E2E_SOURCES_REPO_USER and $E2E_SOURCES_REPO_WRONG"
        ),
        "{err}"
    );
    assert!(!err.contains("guess") && !err.contains("s3cret"), "{err}");
    let unset = ", auth: {usernameEnv: E2E_SOURCES_REPO_USER, passwordEnv: E2E_SOURCES_REPO_UNSET}";
    let err = publish_repo(dir.path(), &url, unset).await.unwrap_err();
    assert!(
        err.contains(
            "chart.repo.auth.passwordEnv: the environment variable E2E_SOURCES_REPO_UNSET is not set"
        ),
        "{err}"
    );
}

/// `openssl s_server -WWW`: a real TLS web server serving the files of `root`,
/// with the certificate of `ca`; killed on drop.
struct TlsFiles {
    child: std::process::Child,
    url: String,
}

impl TlsFiles {
    fn start(root: &Path, ca: &TestCa) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("openssl")
            .args(["s_server", "-WWW", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&ca.cert)
            .arg("-key")
            .arg(&ca.key)
            .current_dir(root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < std::time::Duration::from_secs(20));
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("https://127.0.0.1:{port}"),
        }
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_helm_repository_with_a_private_ca_needs_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let repo = helm_repository(dir.path());
    let ca = TestCa::new(dir.path(), "repo");
    let server = TlsFiles::start(&repo, &ca);

    publish_repo(dir.path(), &server.url, ", caFile: repo-ca.pem")
        .await
        .unwrap();
    let err = publish_repo(dir.path(), &server.url, "").await.unwrap_err();
    assert!(
        err.contains("the repository's TLS certificate is not trusted: set `chart.repo.caFile`"),
        "{err}"
    );
    let err = publish_repo(dir.path(), &server.url, ", caFile: missing.pem")
        .await
        .unwrap_err();
    assert!(
        err.contains("chart.repo.caFile: ") && err.contains("missing.pem"),
        "{err}"
    );
}
