//! Chart and image sources on loopback for the maintainers' tools: charts packed by
//! coxswain, pushed by the real `helm push`, indexed by `helm repo index`, served over
//! real HTTP; images pushed by the real `crane`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use coxswain::chart::{ArchiveLimits, pack_dir};

use super::registry::crane;

pub fn helm() -> PathBuf {
    match std::env::var_os("COXSWAIN_TEST_HELM") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!("COXSWAIN_TEST_HELM is not set: run the tests with `cargo xtask test`"),
    }
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Packs a chart `name` `version` (with `appVersion` and release notes) into `out`.
pub fn chart(work: &Path, out: &Path, name: &str, version: &str, app: &str) -> PathBuf {
    let dir = work
        .join("src")
        .join(format!("{name}-{version}"))
        .join(name);
    write(
        &dir.join("Chart.yaml"),
        &format!(
            "apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"{app}\"\nannotations:\n  artifacthub.io/changes: |\n    - kind: changed\n      description: {name} {version} notes\n"
        ),
    );
    write(
        &dir.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
    );
    let packed = pack_dir(&dir, &ArchiveLimits::default()).unwrap();
    std::fs::create_dir_all(out).unwrap();
    let tgz = out.join(format!("{name}-{version}.tgz"));
    std::fs::write(&tgz, packed.bytes).unwrap();
    tgz
}

pub fn helm_ok(args: &[&str], home: &Path) {
    helm_stdout(args, home);
}

/// Runs the real helm with its homes in `home`; its stdout (fails the test on an error).
pub fn helm_stdout(args: &[&str], home: &Path) -> String {
    let out = Command::new(helm())
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pushes an image whose one layer holds `content`, so every tag has its own digest.
pub fn push_image(work: &Path, reference: &str, content: &str) {
    let layer = work.join(format!("layer-{}.tar", reference.replace(['/', ':'], "_")));
    let mut builder = tar::Builder::new(std::fs::File::create(&layer).unwrap());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, "version.txt", content.as_bytes())
        .unwrap();
    builder.finish().unwrap();
    crane(&["append", "-f", layer.to_str().unwrap(), "-t", reference])
        .unwrap_or_else(|e| panic!("crane append {reference}: {e}"));
}

pub fn digest(reference: &str) -> String {
    String::from_utf8(crane(&["digest", reference]).unwrap())
        .unwrap()
        .trim()
        .to_owned()
}

/// Serves the files of `dir` over real HTTP on loopback; returns the base URL.
pub async fn serve_dir(dir: PathBuf) -> String {
    async fn file(
        State(dir): State<Arc<PathBuf>>,
        axum::extract::Path(name): axum::extract::Path<String>,
    ) -> Response {
        match std::fs::read(dir.join(name.replace('/', ""))) {
            Ok(bytes) => bytes.into_response(),
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let app = Router::new()
        .route("/{name}", get(file))
        .with_state(Arc::new(dir));
    spawn(app).await
}

pub async fn spawn(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
