//! `dependencies: build` against real parts: a Helm repository served over real HTTP on
//! loopback (indexed by the real `helm repo index`), the real OCI registry
//! (`COXSWAIN_TEST_REGISTRY`, charts pushed by the real `helm push`), a `file://` chart,
//! and a `Chart.lock` written by the real `helm dependency update`. The published archive
//! is read back by the real `helm template`; every refusal names its reason and writes
//! nothing, neither to the site nor into the chart directory.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use coxswain::chart::{ArchiveLimits, ChartArchive, pack_dir};
use coxswain::format::Timestamp;
use coxswain::publish::dependencies::DependencyError;
use coxswain::publish::{PublishError, PublishOptions, publish};
use ed25519_dalek::SigningKey;
use support::registry::Registry;
use support::sources::{chart, helm, helm_ok, helm_stdout, serve_dir, spawn, write};

fn options(spec: &Path, out: &Path) -> PublishOptions {
    let mut opts = PublishOptions::new(
        spec.to_path_buf(),
        vec![SigningKey::from_bytes(&[1; 32])],
        out.to_path_buf(),
        Timestamp::from_unix(1_800_000_000).unwrap(),
    );
    opts.sequence = Some(1);
    opts.helm = helm();
    opts
}

/// Every file below `dir`, by relative path.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    support::snapshot(dir)
}

const CM: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-{{ .Chart.Name }}\n";

/// A chart `app` in `spec_dir/charts/app` declaring `deps` (YAML list items), with
/// the local chart `common` 0.1.0 beside it for `file://../common`.
fn app_chart(spec_dir: &Path, deps: &str) -> PathBuf {
    let app = spec_dir.join("charts/app");
    write(
        &app.join("Chart.yaml"),
        &format!("apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n{deps}"),
    );
    write(&app.join("templates/cm.yaml"), CM);
    let common = spec_dir.join("charts/common");
    write(
        &common.join("Chart.yaml"),
        "apiVersion: v2\nname: common\nversion: 0.1.0\n",
    );
    write(&common.join("templates/cm.yaml"), CM);
    app
}

fn spec(spec_dir: &Path, chart: &str) -> PathBuf {
    let path = spec_dir.join("spec.yaml");
    write(
        &path,
        &format!(
            "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: beta\nreleases:\n  - name: app\n    namespace: app\n    chart: {chart}\n"
        ),
    );
    path
}

/// `helm dependency update` with the homes in `home`: writes Chart.lock (and charts/).
fn helm_dependency_update(dir: &Path, home: &Path) {
    helm_ok(
        &[
            "dependency",
            "update",
            dir.to_str().unwrap(),
            "--plain-http",
        ],
        home,
    );
}

/// Serves `dir` like [`serve_dir`], counting the reads of `index.yaml`.
async fn serve_counting(dir: PathBuf) -> (String, Arc<AtomicUsize>) {
    let reads = Arc::new(AtomicUsize::new(0));
    let counter = reads.clone();
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::get(
            move |axum::extract::Path(name): axum::extract::Path<String>| {
                let (dir, counter) = (dir.clone(), counter.clone());
                async move {
                    if name == "index.yaml" {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    std::fs::read(dir.join(name.replace('/', "")))
                        .map_err(|_| axum::http::StatusCode::NOT_FOUND)
                }
            },
        ),
    );
    (spawn(app).await, reads)
}

/// Chart.yaml of `app` declaring `deps`, locked by the real helm; charts/ removed, as
/// a maintainer commits only the lock.
fn relock(app: &Path, deps: &str, home: &Path) {
    write(
        &app.join("Chart.yaml"),
        &format!("apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n{deps}"),
    );
    helm_dependency_update(app, home);
    std::fs::remove_dir_all(app.join("charts")).unwrap();
}

fn published_archive(site: &Path) -> (Vec<u8>, ChartArchive) {
    let charts = site.join("charts");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&charts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let path = entries.pop().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let archive = ChartArchive::read(&bytes, "published", None, &ArchiveLimits::default()).unwrap();
    (bytes, archive)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_repository_registry_and_file_dependencies_are_built_into_the_published_archive() {
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("helm");
    // A Helm repository: db 1.2.3 and 1.2.4, indexed by helm (digests included).
    let repo = work.path().join("repo");
    chart(work.path(), &repo, "db", "1.2.3", "1");
    chart(work.path(), &repo, "db", "1.2.4", "1");
    chart(work.path(), &repo, "queue", "2.0.0", "1");
    helm_ok(&["repo", "index", repo.to_str().unwrap()], &home);
    let (repo_url, index_reads) = serve_counting(repo.clone()).await;
    // An OCI registry holding cache 0.3.0, pushed by helm.
    let registry = Registry::start(None);
    let cache = chart(work.path(), &work.path().join("oci"), "cache", "0.3.0", "1");
    helm_ok(
        &[
            "push",
            cache.to_str().unwrap(),
            &format!("oci://{}/charts", registry.host),
            "--plain-http",
        ],
        &home,
    );

    let spec_dir = work.path().join("channel");
    let app = app_chart(
        &spec_dir,
        &format!(
            "- name: db\n  version: ~1.2.0\n  repository: {repo_url}\n  condition: db.enabled\n  tags: [backend]\n- name: queue\n  version: 2.0.0\n  repository: {repo_url}\n- name: cache\n  version: 0.3.0\n  repository: oci://{}/charts\n  alias: store\n- name: common\n  version: 0.1.0\n  repository: file://../common\n  import-values: [defaults]\n",
            registry.host
        ),
    );
    // db: an older archive left in charts/ is replaced, as helm replaces it.
    chart(work.path(), &app.join("charts"), "db", "1.2.3", "old");
    helm_dependency_update(&app, &home);
    let lock = std::fs::read_to_string(app.join("Chart.lock")).unwrap();
    assert!(lock.contains("version: 1.2.4"), "{lock}");
    // The maintainer commits Chart.lock, not what helm downloaded.
    std::fs::remove_dir_all(app.join("charts")).unwrap();
    std::fs::create_dir_all(app.join("charts")).unwrap();
    chart(work.path(), &app.join("charts"), "db", "1.2.3", "old");
    let before = snapshot(&spec_dir);

    // Not asked: the missing dependencies are refused, and the message says what to set.
    let site = work.path().join("site");
    let spec_path = spec(&spec_dir, "{path: charts/app}");
    let err = support::chain(&publish(&options(&spec_path, &site)).await.unwrap_err());
    assert!(err.contains("`dependencies: build`"), "{err}");
    assert!(!site.exists());

    let spec_path = spec(&spec_dir, "{path: charts/app, dependencies: build}");
    index_reads.store(0, Ordering::SeqCst);
    let before = {
        let mut b = before;
        b.retain(|(p, _)| p != Path::new("spec.yaml"));
        b
    };
    publish(&options(&spec_path, &site))
        .await
        .unwrap_or_else(|e| panic!("{}", support::chain(&e)));
    assert_eq!(
        index_reads.load(Ordering::SeqCst),
        1,
        "db and queue come from one repository: its index is read once"
    );
    let mut after = snapshot(&spec_dir);
    after.retain(|(p, _)| p != Path::new("spec.yaml"));
    assert!(after == before, "the chart directory was changed");

    let (bytes, archive) = published_archive(&site);
    let subcharts: Vec<&str> = archive
        .files
        .keys()
        .filter(|p| p.starts_with("charts/"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        subcharts,
        [
            "charts/cache-0.3.0.tgz",
            "charts/common-0.1.0.tgz",
            "charts/db-1.2.4.tgz",
            "charts/queue-2.0.0.tgz"
        ]
    );
    // The repository's archive is taken byte for byte.
    assert!(
        archive.files["charts/db-1.2.4.tgz"] == std::fs::read(repo.join("db-1.2.4.tgz")).unwrap()
    );
    let tgz = work.path().join("app-1.0.0.tgz");
    std::fs::write(&tgz, &bytes).unwrap();
    let rendered = helm_stdout(&["template", "rel", tgz.to_str().unwrap()], &home);
    for source in [
        "app/templates/cm.yaml",
        "app/charts/db/templates/cm.yaml",
        "app/charts/store/templates/cm.yaml",
        "app/charts/common/templates/cm.yaml",
        "app/charts/queue/templates/cm.yaml",
    ] {
        assert!(
            rendered.contains(&format!("# Source: {source}")),
            "{source}: {rendered}"
        );
    }
    let listed = helm_stdout(&["dependency", "list", tgz.to_str().unwrap()], &home);
    // helm's own dependency check on the archive: each found at a matching version.
    assert_eq!(
        listed
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with("NAME"))
            .count(),
        4,
        "{listed}"
    );
    assert!(
        !listed.contains("missing") && !listed.contains("wrong version"),
        "{listed}"
    );

    // A second publish of the same input gives the same archive.
    let site2 = work.path().join("site2");
    publish(&options(&spec_path, &site2)).await.unwrap();
    assert!(published_archive(&site2).0 == bytes);

    // A vendored dependency at its locked version is kept, not fetched: with the
    // registry gone, cache 0.3.0 in charts/ is enough.
    drop(registry);
    let vendored = cache.clone();
    std::fs::copy(&vendored, app.join("charts/cache-0.3.0.tgz")).unwrap();
    let site3 = work.path().join("site3");
    publish(&options(&spec_path, &site3))
        .await
        .unwrap_or_else(|e| panic!("{}", support::chain(&e)));
    let (_, kept) = published_archive(&site3);
    assert!(kept.files["charts/cache-0.3.0.tgz"] == std::fs::read(&cache).unwrap());
}

/// The `DependencyError` of a refused publish; asserts nothing was written.
async fn refused(spec_path: &Path, site: &Path) -> DependencyError {
    let err = publish(&options(spec_path, site)).await.unwrap_err();
    assert!(!site.exists(), "nothing is written on refusal");
    match err {
        PublishError::Dependencies { source, .. } => *source,
        other => panic!(
            "expected a dependency error, got {}",
            support::chain(&other)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_names_the_dependency_and_what_to_do() {
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("helm");
    let spec_dir = work.path().join("channel");
    let site = work.path().join("site");
    let app = app_chart(
        &spec_dir,
        "- name: common\n  version: 0.1.0\n  repository: file://../common\n",
    );
    let spec_path = spec(&spec_dir, "{path: charts/app, dependencies: build}");

    // No Chart.lock.
    let err = refused(&spec_path, &site).await;
    assert!(matches!(err, DependencyError::NoLock { .. }), "{err}");
    assert!(
        err.to_string().contains("run `helm dependency update`"),
        "{err}"
    );

    // A lock helm wrote, then Chart.yaml changed: out of sync.
    helm_dependency_update(&app, &home);
    std::fs::remove_dir_all(app.join("charts")).unwrap();
    let chart_yaml = std::fs::read_to_string(app.join("Chart.yaml")).unwrap();
    std::fs::write(
        app.join("Chart.yaml"),
        chart_yaml.replace("version: 0.1.0", "version: ~0.1.0"),
    )
    .unwrap();
    let err = refused(&spec_path, &site).await;
    assert!(matches!(err, DependencyError::OutOfSync { .. }), "{err}");
    assert!(
        err.to_string().contains("Chart.lock is out of sync"),
        "{err}"
    );
    std::fs::write(app.join("Chart.yaml"), &chart_yaml).unwrap();
    publish(&options(&spec_path, &work.path().join("ok")))
        .await
        .unwrap_or_else(|e| panic!("{}", support::chain(&e)));

    // Two dependencies each under the archive cap, together over it.
    let extra = spec_dir.join("charts/extra");
    write(
        &extra.join("Chart.yaml"),
        "apiVersion: v2\nname: extra\nversion: 0.1.0\n",
    );
    write(&extra.join("templates/cm.yaml"), CM);
    relock(
        &app,
        "- name: common\n  version: 0.1.0\n  repository: file://../common\n- name: extra\n  version: 0.1.0\n  repository: file://../extra\n",
        &home,
    );
    let one = pack_dir(&extra, &ArchiveLimits::default())
        .unwrap()
        .bytes
        .len() as u64;
    let mut small = options(&spec_path, &site);
    small.archive_limits.compressed_bytes = one * 3 / 2;
    let err = publish(&small).await.unwrap_err();
    assert!(!site.exists());
    assert!(
        matches!(&err, PublishError::Dependencies { source, .. }
            if matches!(**source, DependencyError::TooLarge { ref dependency, .. } if dependency == "extra")),
        "{}",
        support::chain(&err)
    );

    // A repository named after helm's local repositories.yaml.
    std::fs::write(
        app.join("Chart.yaml"),
        "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: db\n  version: 1.0.0\n  repository: \"@stable\"\n",
    )
    .unwrap();
    let err = refused(&spec_path, &site).await;
    assert!(
        matches!(&err, DependencyError::RepositoryName { dependency, .. } if dependency == "db"),
        "{err}"
    );
    assert!(
        err.to_string().contains("write the repository's URL"),
        "{err}"
    );

    // A file:// dependency outside the spec's tree (the lock in sync with it).
    let outside = work.path().join("elsewhere/common");
    write(
        &outside.join("Chart.yaml"),
        "apiVersion: v2\nname: common\nversion: 0.1.0\n",
    );
    write(&outside.join("templates/cm.yaml"), CM);
    relock(
        &app,
        "- name: common\n  version: 0.1.0\n  repository: file://../../../elsewhere/common\n",
        &home,
    );
    let err = refused(&spec_path, &site).await;
    assert!(
        matches!(&err, DependencyError::LocalChart { dependency, .. } if dependency == "common"),
        "{err}"
    );
    assert!(
        err.to_string().contains("outside the spec's directory"),
        "{err}"
    );

    // A repository whose index digest does not match the archive it serves.
    let repo = work.path().join("repo");
    chart(work.path(), &repo, "db", "1.2.3", "1");
    helm_ok(&["repo", "index", repo.to_str().unwrap()], &home);
    let repo_url = serve_dir(repo.clone()).await;
    relock(
        &app,
        &format!("- name: db\n  version: 1.2.3\n  repository: {repo_url}\n"),
        &home,
    );
    chart(
        work.path(),
        &work.path().join("other"),
        "db",
        "1.2.3",
        "tampered",
    );
    std::fs::copy(
        work.path().join("other/db-1.2.3.tgz"),
        repo.join("db-1.2.3.tgz"),
    )
    .unwrap();
    let err = refused(&spec_path, &site).await;
    assert!(
        matches!(&err, DependencyError::Fetch { dependency, .. } if dependency == "db"),
        "{err}"
    );
    assert!(err.to_string().contains("has sha256"), "{err}");
}
