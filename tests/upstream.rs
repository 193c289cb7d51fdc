//! `coxswain upstream check` against real sources on loopback: a real OCI registry (CNCF
//! distribution) holding images pushed by the real `crane` and charts pushed by the
//! real `helm push`, and a classic Helm repository (an HTTP server serving the
//! `index.yaml` that the real `helm repo index` wrote). A small in-test HTTP server
//! plays a public registry's anonymous token flow (401 + Bearer challenge, token
//! endpoint, paged tag lists) and its hostile variants.
//!
//! Needs `COXSWAIN_TEST_REGISTRY`, `COXSWAIN_TEST_CRANE` and `COXSWAIN_TEST_HELM`
//! (`cargo xtask test` sets them); fails without them.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use support::registry::Registry;
use support::sources::{chart, digest, helm_ok, push_image, serve_dir, spawn, write};
use support::world::run;

fn upstream(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["upstream", "check"];
    all.extend_from_slice(args);
    run(&all)
}

#[tokio::test(flavor = "multi_thread")]
async fn finds_and_writes_newer_charts_and_images_from_a_real_registry_and_repository() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let registry = Registry::start(None);
    let host = registry.host.clone();
    let home = work.join("helm");

    // Images: tags with their own digests, and tags the policies must pass over.
    for tag in ["1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0", "latest"] {
        push_image(work, &format!("{host}/team/app:{tag}"), tag);
    }
    for tag in ["1.0.0-alpine", "2.1.0-alpine", "2.2.0", "3.0.0-alpine-slim"] {
        push_image(work, &format!("{host}/team/worker:{tag}"), tag);
    }
    // OCI charts, pushed by helm.
    for (version, app) in [("1.0.0", "5.0"), ("1.0.1", "5.0.1"), ("1.1.0", "5.1")] {
        let tgz = chart(work, &work.join("oci"), "api", version, app);
        helm_ok(
            &[
                "push",
                tgz.to_str().unwrap(),
                &format!("oci://{host}/charts"),
                "--plain-http",
            ],
            &home,
        );
    }
    // A classic repository: charts and the index.yaml that helm writes for them.
    let repo_dir = work.join("repo");
    for (version, app) in [
        ("4.15.0", "1.15.0"),
        ("4.15.1", "1.15.1"),
        ("4.16.0", "1.16.0"),
        ("5.0.0", "2.0.0"),
    ] {
        chart(work, &repo_dir, "web", version, app);
    }
    let repo_url = serve_dir(repo_dir.clone()).await;
    helm_ok(
        &[
            "repo",
            "index",
            repo_dir.to_str().unwrap(),
            "--url",
            &repo_url,
        ],
        &home,
    );

    let spec_text = format!(
        r#"# The beta channel. Comments, order and quoting must survive an update.
apiVersion: coxswain.dev/v1
kind: ChannelSpec
channel: beta
releases:
  - name: web   # classic repository, default policy (same major)
    namespace: web
    chart:
      repo: {{url: "{repo_url}", name: web, version: 4.15.0}}
    values:
      image:
        repository: {host}/team/app
        tag: "1.0.0"    # bumped by CI
        digest: ""
    update:
      images:
        - repository: {host}/team/app
          tag: image.tag
          digest: image.digest

  - name: api
    namespace: api
    chart:
      oci:
        ref: oci://{host}/charts/api
        version: '1.0.0'
    valuesFile: values/api.yaml
    update:
      chart: patch
      images:
        - repository: {host}/team/worker
          tag: worker.tag
          versions: major
          pattern: '^(\d+\.\d+\.\d+)-alpine$'

  - name: local
    namespace: local
    chart: {{path: charts/local}}
"#
    );
    let values_text =
        "# api's values\nworker:\n  tag: 1.0.0-alpine   # the worker\n  replicas: 2\n";
    let spec = work.join("spec/beta.yaml");
    write(&spec, &spec_text);
    write(&work.join("spec/values/api.yaml"), values_text);
    let spec_arg = spec.to_str().unwrap();

    // Checking only: the findings, as JSON; nothing written.
    let (code, out, err) = upstream(&["--spec", spec_arg, "--format", "json"]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    let findings: Vec<Value> = serde_json::from_str(&out).unwrap();
    let app_digest = digest(&format!("{host}/team/app:1.1.0"));
    let brief: Vec<(String, String, String, String)> = findings
        .iter()
        .map(|f| {
            (
                f["release"].as_str().unwrap().to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
                f["from"].as_str().unwrap().to_owned(),
                f["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())
    };
    assert_eq!(
        brief,
        vec![
            s("web", "chart", "4.15.0", "4.16.0"),
            s("web", "image", "1.0.0", &format!("1.1.0@{app_digest}")),
            s("api", "chart", "1.0.0", "1.0.1"),
            s("api", "image", "1.0.0-alpine", "2.1.0-alpine"),
        ],
        "{out}"
    );
    assert_eq!(
        findings[0]["appVersion"],
        serde_json::json!(["1.15.0", "1.16.0"])
    );
    assert_eq!(
        findings[2]["appVersion"],
        serde_json::json!(["5.0", "5.0.1"])
    );
    assert!(
        findings[0]["notes"]
            .as_str()
            .unwrap()
            .contains("web 4.16.0 notes"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&spec).unwrap(), spec_text);
    assert_eq!(
        std::fs::read_to_string(work.join("spec/values/api.yaml")).unwrap(),
        values_text
    );

    // --write: exactly those scalars change, and a changelog for the pull request.
    let (code, out, err) = upstream(&["--spec", spec_arg, "--write", "--format", "markdown"]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("| web | chart `web` | `4.15.0` | `4.16.0` | 1.15.0 → 1.16.0 |"),
        "{out}"
    );
    assert!(out.contains("| api | image `"), "{out}");
    assert!(out.contains("web 4.16.0 notes"), "{out}");
    let expected = spec_text
        .replace("version: 4.15.0}", "version: 4.16.0}")
        .replace("tag: \"1.0.0\"", "tag: \"1.1.0\"")
        .replace("digest: \"\"", &format!("digest: \"{app_digest}\""))
        .replace("version: '1.0.0'", "version: '1.0.1'");
    assert_eq!(std::fs::read_to_string(&spec).unwrap(), expected);
    assert_eq!(
        std::fs::read_to_string(work.join("spec/values/api.yaml")).unwrap(),
        values_text.replace("1.0.0-alpine", "2.1.0-alpine")
    );
    // The written spec is still a valid spec.
    coxswain::format::spec::ChannelSpec::load(&spec).unwrap();

    // Once written, nothing is new.
    let (code, out, err) = upstream(&["--spec", spec_arg]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("nothing new upstream for 3 release(s)"),
        "{out}"
    );

    // A repository that does not exist: an error naming the registry, and nothing
    // written although another release has an update.
    let broken = expected
        .replace("version: 4.16.0}", "version: 4.15.0}")
        .replace(
            &format!("repository: {host}/team/worker"),
            &format!("repository: {host}/team/gone"),
        );
    write(&spec, &broken);
    let (code, out, err) = upstream(&["--spec", spec_arg, "--write"]);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains(&format!("registry {host}/team/gone: http://{host}/v2/team/gone/tags/list?n=1000: has no such repository or tag (HTTP 404 Not Found)")),
        "{err}"
    );
    assert!(
        err.contains("1 of 3 release(s) could not be checked; nothing was written"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&spec).unwrap(), broken);
}

/// What the token server hands out, and what the registry then accepts.
const TOKEN: &str = "anonymous-pull-token";

#[derive(Clone)]
struct Hub {
    base: Arc<std::sync::OnceLock<String>>,
}

/// A registry that wants a Bearer token, as Docker Hub and GHCR do, and pages its tags.
async fn hub() -> String {
    async fn token(Query(q): Query<BTreeMap<String, String>>) -> Response {
        if q.get("service").map(String::as_str) != Some("hub.test")
            || !q
                .get("scope")
                .is_some_and(|s| s.starts_with("repository:library/") && s.ends_with(":pull"))
        {
            return StatusCode::BAD_REQUEST.into_response();
        }
        axum::Json(serde_json::json!({ "token": TOKEN })).into_response()
    }
    async fn tags(
        State(hub): State<Hub>,
        axum::extract::Path(repo): axum::extract::Path<String>,
        Query(q): Query<BTreeMap<String, String>>,
        headers: HeaderMap,
    ) -> Response {
        let base = hub.base.get().unwrap().clone();
        let authorized = headers
            .get(header::AUTHORIZATION)
            .is_some_and(|v| v == format!("Bearer {TOKEN}").as_str());
        if !authorized {
            let challenge = format!(
                r#"Bearer realm="{base}/token",service="hub.test",scope="repository:library/{repo}:pull""#
            );
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
            )
                .into_response();
        }
        match repo.as_str() {
            // Two pages, linked as the distribution API does.
            "app" => match q.get("last").map(String::as_str) {
                None => (
                    [(
                        header::LINK,
                        "</v2/library/app/tags/list?n=2&last=1.0.1>; rel=\"next\"".to_owned(),
                    )],
                    axum::Json(
                        serde_json::json!({"name": "library/app", "tags": ["1.0.0", "1.0.1"]}),
                    ),
                )
                    .into_response(),
                Some(_) => axum::Json(
                    serde_json::json!({"name": "library/app", "tags": ["1.2.0", "2.0.0"]}),
                )
                .into_response(),
            },
            // A tag list without end.
            "endless" => (
                [(
                    header::LINK,
                    "</v2/library/endless/tags/list?n=1&last=x>; rel=\"next\"".to_owned(),
                )],
                axum::Json(serde_json::json!({"tags": ["1.0.0"]})),
            )
                .into_response(),
            // A tag list larger than the cap.
            "huge" => {
                let tags: Vec<String> = (0..400_000).map(|i| format!("1.0.{i}")).collect();
                axum::Json(serde_json::json!({ "tags": tags })).into_response()
            }
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let state = Hub {
        base: Arc::new(std::sync::OnceLock::new()),
    };
    let app = Router::new()
        .route("/token", get(token))
        .route("/v2/library/{repo}/tags/list", get(tags))
        .with_state(state.clone());
    let base = spawn(app).await;
    state.base.set(base.clone()).unwrap();
    base
}

fn image_spec(dir: &Path, repository: &str) -> PathBuf {
    let path = dir.join(format!("{}.yaml", repository.replace(['/', ':', '.'], "-")));
    write(
        &path,
        &format!(
            "apiVersion: coxswain.dev/v1\nkind: ChannelSpec\nchannel: beta\nreleases:\n  - name: app\n    namespace: app\n    chart: {{path: charts/app}}\n    values: {{image: {{tag: \"1.0.0\"}}}}\n    update:\n      images: [{{repository: \"{repository}\", tag: image.tag}}]\n"
        ),
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn public_registries_token_flow_paging_and_hostile_tag_lists() {
    let dir = tempfile::tempdir().unwrap();
    let base = hub().await;
    let host = base.strip_prefix("http://").unwrap();

    // 401 → anonymous token from the realm → retry; both pages read.
    let spec = image_spec(dir.path(), &format!("{host}/library/app"));
    let (code, out, err) = upstream(&["--spec", spec.to_str().unwrap()]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains(&format!("app: image {host}/library/app 1.0.0 -> 1.2.0")),
        "{out}"
    );

    for (repo, says) in [
        ("endless", "lists more than 50 pages of tags"),
        ("huge", "the response is larger than 4194304 bytes"),
        (
            "missing",
            "has no such repository or tag (HTTP 404 Not Found)",
        ),
    ] {
        let spec = image_spec(dir.path(), &format!("{host}/library/{repo}"));
        let (code, out, err) = upstream(&["--spec", spec.to_str().unwrap()]);
        assert_eq!(code, 1, "{repo}: stdout: {out}\nstderr: {err}");
        assert!(
            err.contains(&format!("registry {host}/library/{repo}")),
            "{repo}: {err}"
        );
        assert!(err.contains(says), "{repo}: {err}");
    }

    // A policy that cannot be followed is refused when the spec is read.
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("tag: image.tag}", "tag: image.tag, versions: newest}");
    write(&bad, &text);
    let (code, _, err) = upstream(&["--spec", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("release `app`: update.images[0].versions: `newest` is neither patch, minor, major nor none"),
        "{err}"
    );
}
