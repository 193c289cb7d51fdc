//! End-to-end tests of what users look at: the agent's `/metrics` scraped by a
//! real Prometheus (Debian's `prometheus`) that also evaluates the chart's alert
//! rules and answers the dashboard's queries, and the web UI driven in Debian's
//! `chromium` through `chromedriver` — while the agent, running as a controller
//! process, installs, upgrades and rolls back releases with the real helm 4 on
//! the loopback cluster with KWOK nodes.
//!
//! The binaries come from `COXSWAIN_TEST_PROMETHEUS`, `COXSWAIN_TEST_CHROMIUM`
//! and `COXSWAIN_TEST_CHROMEDRIVER`, which `cargo xtask e2e` sets; a test started
//! without them fails and says so. The browser test overwrites the screenshots
//! `docs/img/ui-*.png` that the README shows. Failure cases use 20s health timeouts.
//!
//! Run with `cargo xtask e2e`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::{Value, json};
use support::cluster::{unique_name, wait_for};
use support::world::{World, break_sso, create_config_map, release, set};
use support::{repo, testdata};

/// How long a scenario step (an install, an upgrade, a rollback after a 20s
/// health timeout) may take on a busy 2-core machine.
const STEP: Duration = Duration::from_secs(90);

/// How long Prometheus may take to scrape and evaluate what the agent did.
const SCRAPE: Duration = Duration::from_secs(30);

/// How long a server process may take to answer after it started.
const START: Duration = Duration::from_secs(30);

/// A binary from environment variable `var` (set by `cargo xtask e2e`).
fn binary(var: &str) -> PathBuf {
    let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
        panic!(
            "{var} is not set: run the e2e tests with `cargo xtask e2e`, which installs \
             Debian's prometheus, chromium and chromium-driver when missing and sets it"
        );
    };
    let path = PathBuf::from(value);
    assert!(
        path.is_file(),
        "{var}={} does not name a file: run the e2e tests with `cargo xtask e2e`",
        path.display()
    );
    path
}

/// A child process stopped by pid (with its descendants) on drop.
struct Process {
    child: Child,
    name: &'static str,
    log: PathBuf,
}

impl Process {
    /// Starts `cmd` with stdout and stderr in the file `log`.
    fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Self {
        let file = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Self {
            child,
            name,
            log: log.to_owned(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test when the process has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}); its log:\n{}", self.name, self.log());
        }
    }

    /// Polls `url` until it answers 200 with a body that satisfies `ready`;
    /// fails when the process exits or after [`START`].
    async fn wait_serving(&mut self, url: &str, ready: impl Fn(&[u8]) -> bool) {
        let http = reqwest::Client::new();
        let started = std::time::Instant::now();
        loop {
            self.assert_running();
            if let Ok(r) = http.get(url).send().await
                && r.status().is_success()
                && let Ok(body) = r.bytes().await
                && ready(&body)
            {
                return;
            }
            assert!(
                started.elapsed() < START,
                "{} does not answer {url} after {}s; its log:\n{}",
                self.name,
                START.as_secs(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // chromedriver leaves the browser it started running when it is killed.
        let pid = self.child.id();
        for descendant in descendants(pid) {
            if let Some(p) = rustix::process::Pid::from_raw(descendant as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pids of the processes below `pid`, from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(child);
                todo.push(child);
            }
        }
    }
    out
}

/// Polls the subscription `stack` until `done` holds for its status (as JSON).
async fn wait_status(w: &World, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let subs = w.subs();
    wait_for(what, STEP, || {
        let subs = subs.clone();
        let done = &done;
        async move {
            let sub = subs.get("stack").await.ok()?;
            let status = serde_json::to_value(sub.status?).ok()?;
            done(&status).then_some(status)
        }
    })
    .await
}

/// Waits until sequence `sequence` failed and sso was rolled back; returns the status.
async fn wait_rolled_back(w: &World, sequence: u64) -> Value {
    wait_status(w, &format!("sequence {sequence} rolled back"), |s| {
        s["failedSequence"]["sequence"] == sequence
            && s["releases"].as_array().is_some_and(|rs| {
                rs.iter()
                    .any(|r| r["name"] == "sso" && r["state"] == "rolledBack")
            })
    })
    .await
}

/// The status's Ready condition is True.
fn ready(status: &Value) -> bool {
    status["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The chart version of a testdata chart.
fn chart_version(chart: &str) -> String {
    let text = std::fs::read_to_string(testdata(&format!("charts/{chart}/Chart.yaml"))).unwrap();
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    doc["version"].as_str().unwrap().to_owned()
}

/// A body fetched with a plain GET that must answer 200.
async fn get(http: &reqwest::Client, url: &str) -> String {
    let response = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "GET {url}: {status}\n{body}");
    body
}

// --- Prometheus ------------------------------------------------------------

/// The chart's PrometheusRule; its `spec` is a plain Prometheus rule file.
fn rule_file() -> Value {
    let path = repo().join("charts/coxswain/monitoring/prometheusrule.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// A Prometheus server scraping one target every second with the chart's alert
/// rules loaded, its data in a temporary directory; stopped by pid on drop.
struct Prometheus {
    process: Process,
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(target: &str) -> Self {
        let bin = binary("COXSWAIN_TEST_PROMETHEUS");
        let dir = tempfile::tempdir().unwrap();
        // The PrometheusRule's spec is a plain rule file; JSON is YAML.
        let rules = dir.path().join("rules.json");
        std::fs::write(
            &rules,
            serde_json::to_vec_pretty(&rule_file()["spec"]).unwrap(),
        )
        .unwrap();
        let config = json!({
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [rules],
            "scrape_configs": [{
                "job_name": "coxswain",
                "static_configs": [{"targets": [target]}],
            }],
        });
        let config_file = dir.path().join("prometheus.json");
        std::fs::write(&config_file, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let port = support::free_port();
        let log = dir.path().join("prometheus.log");
        let mut process = Process::spawn(
            "prometheus",
            Command::new(&bin)
                .arg(format!("--config.file={}", config_file.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}")),
            &log,
        );
        let url = format!("http://127.0.0.1:{port}");
        process
            .wait_serving(&format!("{url}/-/ready"), |_| true)
            .await;
        let http = reqwest::Client::new();
        Self {
            process,
            url,
            http,
            _dir: dir,
        }
    }

    /// `/api/v1/query`: the `data` of a successful answer, or the error Prometheus gave.
    async fn try_query(&self, promql: &str) -> Result<Value, String> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.url),
            &[("query", promql)],
        )
        .unwrap();
        let response = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        let body: Value =
            serde_json::from_slice(&response.bytes().await.map_err(|e| e.to_string())?)
                .map_err(|e| format!("not JSON: {e}"))?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"].clone())
    }

    /// The samples of an instant vector query (fails the test on a query error).
    async fn vector(&self, promql: &str) -> Vec<Value> {
        let data = self
            .try_query(promql)
            .await
            .unwrap_or_else(|e| panic!("query {promql} failed: {e}"));
        assert_eq!(data["resultType"], "vector", "{promql}: {data}");
        data["result"].as_array().unwrap().clone()
    }

    /// Polls `promql` until its samples satisfy `done`; fails with the last answer
    /// and Prometheus's log after [`SCRAPE`].
    async fn wait(
        &mut self,
        what: &str,
        promql: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let started = std::time::Instant::now();
        loop {
            self.process.assert_running();
            let samples = self.vector(promql).await;
            if done(&samples) {
                return samples;
            }
            assert!(
                started.elapsed() < SCRAPE,
                "{what}: `{promql}` answered {samples:?} for {}s",
                SCRAPE.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The value of a sample.
fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

/// Exactly one sample, and its value satisfies `ok`.
fn one(ok: impl Fn(f64) -> bool) -> impl Fn(&[Value]) -> bool {
    move |s| s.len() == 1 && ok(value(&s[0]))
}

/// Every query of the dashboard with the Grafana variables filled in as an
/// "All" selection would: `(panel title, query)`.
fn dashboard_queries() -> Vec<(String, String)> {
    let path = repo().join("charts/coxswain/dashboards/coxswain.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push((
                        p["title"].as_str().unwrap_or("").to_owned(),
                        expr.to_owned(),
                    ));
                }
            }
            walk(p["panels"].as_array().map_or(&[], Vec::as_slice), out);
        }
    }
    let mut out = Vec::new();
    walk(doc["panels"].as_array().unwrap(), &mut out);
    assert!(!out.is_empty(), "no query in {}", path.display());
    out.into_iter()
        .map(|(title, expr)| (title, fill_grafana_variables(&expr)))
        .collect()
}

/// Substitutes the Grafana variables the dashboard uses; fails on any other.
fn fill_grafana_variables(expr: &str) -> String {
    let mut out = expr.to_owned();
    for (name, value) in [
        // Longer than the whole scenario, so a panel's increase() covers all of it.
        ("__rate_interval", "5m"),
        ("__interval_ms", "15000"),
        ("__interval", "15s"),
        ("__range", "5m"),
        ("subscription", ".*"),
        ("channel", ".*"),
    ] {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    let bytes = out.as_bytes();
    let unknown = bytes
        .windows(2)
        .any(|w| w[0] == b'$' && (w[1].is_ascii_alphabetic() || w[1] == b'_' || w[1] == b'{'));
    assert!(
        !unknown,
        "a Grafana variable this test does not know in {expr}"
    );
    out
}

/// Install, an upgrade that succeeds, and a broken upgrade that is rolled back,
/// scraped by a real Prometheus: the series, the alert rules and the dashboard.
#[tokio::test]
async fn prometheus_scrapes_an_upgrade_and_a_rollback() {
    // Fail before the cluster work when the binary is missing.
    binary("COXSWAIN_TEST_PROMETHEUS");
    let mut w = World::new("ob-prom", &["certs", "sso"]).await;
    w.publish(|_, _| {});
    w.subscribe(|s| s.interval = coxswain::duration::Duration::from_secs(3))
        .await;
    let mut agent = w.start_agent();
    let target = agent.url.trim_start_matches("http://").to_owned();
    let mut prom = Prometheus::start(&target).await;

    wait_status(&w, "sequence 1 installed", |s| {
        s["acceptedSequence"] == 1 && ready(s)
    })
    .await;
    let seq = w.publish(|name, r| {
        if name == "certs" {
            set(r, &["values", "logLevel"], 3.into());
        }
    });
    assert_eq!(seq, 2);
    wait_status(&w, "sequence 2 applied", |s| {
        s["acceptedSequence"] == 2 && ready(s)
    })
    .await;
    let seq = w.publish(|name, r| match name {
        "certs" => set(r, &["values", "logLevel"], 3.into()),
        "sso" => break_sso(r),
        _ => {}
    });
    assert_eq!(seq, 3);
    let status = wait_rolled_back(&w, 3).await;
    assert_eq!(release(&status, "sso")["revision"], 3, "{status}");
    let sub = format!("{}/stack", w.ns.name);

    // The scrape itself, and the series of what happened.
    prom.wait(
        "the agent is scraped",
        r#"up{job="coxswain"}"#,
        one(|v| v == 1.0),
    )
    .await;
    let sel = format!(r#"subscription="{sub}",channel="stable""#);
    let sso = format!(r#"subscription="{sub}",release="sso""#);
    let certs = format!(r#"subscription="{sub}",release="certs""#);
    // Each query filters by the value it expects: one sample means it holds.
    for (what, promql) in [
        (
            "accepted sequence 3",
            format!("coxswain_accepted_sequence{{{sel}}} == 3"),
        ),
        (
            "failed sequence 3",
            format!("coxswain_failed_sequence{{{sel}}} == 3"),
        ),
        (
            "sso rolled back",
            format!(r#"coxswain_release_state{{{sso},state="rolledBack"}} == 1"#),
        ),
        (
            "sso at helm revision 3",
            format!("coxswain_release_revision{{{sso}}} == 3"),
        ),
        (
            "a failed sso upgrade",
            format!(r#"coxswain_upgrades_total{{{sso},operation="upgrade",result="failed"}} >= 1"#),
        ),
        (
            "a succeeded certs upgrade",
            format!(
                r#"coxswain_upgrades_total{{{certs},operation="upgrade",result="succeeded"}} >= 1"#
            ),
        ),
        (
            "a succeeded sso rollback",
            format!(
                r#"coxswain_rollbacks_total{{{sso},operation="rollback",result="succeeded"}} >= 1"#
            ),
        ),
        (
            "upgrades timed",
            format!(r#"sum(coxswain_upgrade_duration_seconds_count{{subscription="{sub}"}}) > 0"#),
        ),
        (
            "health checks timed",
            format!(
                r#"sum(coxswain_health_check_duration_seconds_count{{subscription="{sub}"}}) > 0"#
            ),
        ),
        (
            "an unhealthy sso health check",
            format!(
                r#"coxswain_health_check_duration_seconds_count{{{sso},result="unhealthy"}} >= 1"#
            ),
        ),
        (
            "helm rollback invoked",
            r#"sum(coxswain_helm_invocations_total{command="rollback",result="succeeded"}) >= 1"#
                .to_owned(),
        ),
        (
            "the index expires in more than a day",
            format!("coxswain_index_expiry_timestamp_seconds{{{sel}}} - time() > 86400"),
        ),
    ] {
        prom.wait(what, &promql, |s| s.len() == 1).await;
    }
    prom.wait(
        "sso is in no other state",
        &format!(r#"coxswain_release_state{{{sso},state!="rolledBack"}} == 1"#),
        |s| s.is_empty(),
    )
    .await;
    let info = prom
        .wait(
            "certs' release info",
            &format!(r#"coxswain_release_info{{{sel},release="certs"}}"#),
            one(|v| v == 1.0),
        )
        .await;
    let labels = &info[0]["metric"];
    assert_eq!(labels["version"], chart_version("certs"), "{info:?}");
    assert_eq!(labels["chart"], "certs", "{info:?}");
    assert_eq!(labels["namespace"], w.rns("certs"), "{info:?}");

    // The alert rules: the rollback alert is pending or firing, the others are quiet.
    let rolled_back = prom
        .wait(
            "the rollback alert",
            r#"ALERTS{alertname="CoxswainUpgradeRolledBack",release="sso"}"#,
            |s| !s.is_empty(),
        )
        .await;
    for sample in &rolled_back {
        let state = sample["metric"]["alertstate"].as_str().unwrap();
        assert!(matches!(state, "pending" | "firing"), "{sample}");
        assert_eq!(sample["metric"]["severity"], "warning", "{sample}");
        assert_eq!(sample["metric"]["subscription"], sub.as_str(), "{sample}");
    }
    for quiet in [
        "CoxswainVerificationFailing",
        "CoxswainIndexExpiringSoon",
        "CoxswainRollbackFailed",
        "CoxswainAgentDown",
        "CoxswainMetricsAbsent",
    ] {
        let fired = prom
            .vector(&format!(r#"ALERTS{{alertname="{quiet}"}}"#))
            .await;
        assert!(fired.is_empty(), "{quiet} is active: {fired:?}");
    }
    // Every rule of the file is loaded and evaluates without an error.
    let names: Vec<String> = rule_file()["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| r["alert"].as_str().unwrap().to_owned())
        .collect();
    let rules = get(&prom.http, &format!("{}/api/v1/rules", prom.url)).await;
    let rules: Value = serde_json::from_str(&rules).unwrap();
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(loaded.len(), names.len(), "{rules}");
    for rule in loaded {
        assert!(names.iter().any(|n| rule["name"] == n.as_str()), "{rule}");
        assert_eq!(rule["health"], "ok", "{rule}");
    }

    // Every dashboard query is valid PromQL for this Prometheus; the panels of
    // the accepted sequence, the release versions and the rollbacks show data.
    let queries = dashboard_queries();
    let mut failed = Vec::new();
    for (title, expr) in &queries {
        if let Err(e) = prom.try_query(expr).await {
            failed.push(format!("{title}: {expr}: {e}"));
        }
    }
    assert!(
        failed.is_empty(),
        "dashboard queries refused:\n{}",
        failed.join("\n")
    );
    let panel = |title: &str| -> Vec<&String> {
        let found: Vec<&String> = queries
            .iter()
            .filter(|(t, _)| t == title)
            .map(|(_, e)| e)
            .collect();
        assert!(
            !found.is_empty(),
            "no dashboard panel titled {title:?}; panels: {:?}",
            queries.iter().map(|(t, _)| t).collect::<Vec<_>>()
        );
        found
    };
    let certs_version = chart_version("certs");
    for expr in panel("Accepted sequence") {
        prom.wait("the accepted sequence panel", expr, |s| {
            s.iter()
                .any(|s| s["metric"]["subscription"] == sub.as_str() && value(s) == 3.0)
        })
        .await;
    }
    for expr in panel("Versions in the fleet") {
        prom.wait("the release versions panel", expr, |s| {
            s.iter().any(|s| {
                s["metric"]["release"] == "certs"
                    && s["metric"]["version"] == certs_version.as_str()
            })
        })
        .await;
    }
    // The rollback counters of a release exist at 0 from its first check, so the
    // panel's increase() counts sso's first rollback.
    for expr in panel("Rollbacks") {
        prom.wait("the rollbacks panel showing sso's rollback", expr, |s| {
            s.iter().any(|s| {
                s["metric"]["release"] == "sso"
                    && s["metric"]["operation"] == "rollback"
                    && s["metric"]["result"] == "succeeded"
                    && value(s) > 0.0
            })
        })
        .await;
    }

    assert!(
        agent.stop(),
        "the agent did not exit 0 on SIGTERM:\n{}",
        agent.logs()
    );
    drop(prom);
}

// --- the browser -----------------------------------------------------------

/// chromedriver on a free port with a WebDriver session of Debian's chromium;
/// chromedriver and the browser are stopped by pid on drop.
struct Chrome {
    browser: Option<Browser>,
    _driver: Process,
    _profile: tempfile::TempDir,
}

impl Chrome {
    async fn start() -> Self {
        let chromium = binary("COXSWAIN_TEST_CHROMIUM");
        let chromedriver = binary("COXSWAIN_TEST_CHROMEDRIVER");
        let profile = tempfile::tempdir().unwrap();
        let port = support::free_port();
        let log = profile.path().join("chromedriver.log");
        let mut driver = Process::spawn(
            "chromedriver",
            Command::new(&chromedriver).arg(format!("--port={port}")),
            &log,
        );
        let url = format!("http://127.0.0.1:{port}");
        driver
            .wait_serving(&format!("{url}/status"), |body| {
                serde_json::from_slice::<Value>(body).is_ok_and(|v| v["value"]["ready"] == true)
            })
            .await;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().join("profile").display()),
                ],
            }),
        );
        let browser = ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps)
            .connect(&url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no WebDriver session from {url}: {e}; chromedriver's log:\n{}",
                    driver.log()
                )
            });
        Self {
            browser: Some(browser),
            _driver: driver,
            _profile: profile,
        }
    }

    fn browser(&self) -> &Browser {
        self.browser.as_ref().unwrap()
    }

    /// Ends the session: chromedriver closes the browser.
    async fn close(mut self) {
        if let Some(b) = self.browser.take() {
            b.close().await.unwrap();
        }
    }
}

/// The visible text of the element `css` of the current page.
async fn text(b: &Browser, css: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .text()
        .await
        .unwrap()
}

/// The visible text of the cells of each body row of the tables matching `css`.
async fn rows(b: &Browser, css: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for tr in b
        .find_all(Locator::Css(&format!("{css} tbody tr")))
        .await
        .unwrap()
    {
        let mut cells = Vec::new();
        for td in tr.find_all(Locator::Css("td")).await.unwrap() {
            cells.push(td.text().await.unwrap().replace('\n', " "));
        }
        out.push(cells);
    }
    out
}

/// The row whose cell `column` names `release` (the namespace follows the name).
fn row<'a>(rows: &'a [Vec<String>], column: usize, release: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.get(column).and_then(|c| c.split(' ').next()) == Some(release))
        .unwrap_or_else(|| panic!("no row for {release} in {rows:#?}"))
}

/// Saves a screenshot of the viewport as docs/img/NAME.png.
async fn screenshot(b: &Browser, name: &str) {
    let png = b.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    let dir = repo().join("docs/img");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// An install, a pin, a hold and cluster values, then a broken upgrade rolled
/// back, seen in chromium: the overview while the plan runs and after, a
/// release's timeline, the preview; the cluster values appear nowhere.
#[tokio::test]
async fn browser_shows_overview_release_timeline_and_preview() {
    binary("COXSWAIN_TEST_CHROMIUM");
    binary("COXSWAIN_TEST_CHROMEDRIVER");
    let mut w = World::new("ob-ui", &["certs", "sso", "wiki"]).await;
    let certs_version = chart_version("certs");
    // Cluster values for certs, from a ConfigMap and a Secret, each with a marker.
    let cm_marker = unique_name("cm-marker-value");
    let secret_marker = unique_name("secret-marker-value");
    create_config_map(
        &w.client,
        &w.ns.name,
        "certs-values",
        "values.yaml",
        &format!("clusterNote: {cm_marker}\n"),
    )
    .await;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("certs-secrets".into()),
            ..Default::default()
        },
        string_data: Some(
            [(
                "values.yaml".to_owned(),
                format!("clusterToken: {secret_marker}\n"),
            )]
            .into(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(w.client.clone(), &w.ns.name)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    w.publish(|_, _| {});
    let pin = certs_version.clone();
    w.subscribe(move |s| {
        s.interval = coxswain::duration::Duration::from_secs(3);
        s.pins.insert("certs".into(), pin);
        s.values.insert(
            "certs".into(),
            serde_json::from_value(json!({"valuesFrom": [
                {"kind": "ConfigMap", "name": "certs-values", "key": "values.yaml"},
                {"kind": "Secret", "name": "certs-secrets", "key": "values.yaml"},
            ]}))
            .unwrap(),
        );
    })
    .await;
    let mut agent = w.start_agent();
    let chrome = Chrome::start().await;
    let b = chrome.browser();
    let http = reqwest::Client::new();

    wait_status(&w, "sequence 1 installed", |s| {
        s["acceptedSequence"] == 1 && ready(s)
    })
    .await;
    // The values reached helm: their absence from the UI below means something.
    let values = support::world::succeed(
        Command::new(&w.helm)
            .args([
                "get",
                "values",
                "certs",
                "-o",
                "json",
                "--namespace",
                w.rns("certs"),
            ])
            .arg("--kubeconfig")
            .arg(support::cluster::kubeconfig_path()),
    );
    let values = String::from_utf8(values).unwrap();
    assert!(
        values.contains(&cm_marker) && values.contains(&secret_marker),
        "{values}"
    );

    w.patch_spec(json!({"holds": ["wiki"]})).await;
    wait_status(&w, "wiki held", |s| {
        s["releases"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| r["name"] == "wiki" && r["held"] == true))
    })
    .await;
    let seq = w.publish(|name, r| match name {
        "sso" => break_sso(r),
        "wiki" => set(r, &["values", "image", "tag"], "2.5.301".into()),
        _ => {}
    });
    assert_eq!(seq, 2);

    // While sso's health check waits: the overview says so and refreshes itself.
    let api = format!("{}/api/v1/status", agent.url);
    wait_for("sequence 2 being applied", STEP, || async {
        let doc: Value = serde_json::from_str(&get(&http, &api).await).ok()?;
        let running = &doc["subscriptions"][0]["running"];
        (running["sequence"] == 2
            && running["activity"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|a| a["release"].as_str().is_some_and(|r| r.ends_with("/sso")))
            }))
        .then_some(())
    })
    .await;
    b.goto(&format!("{}/", agent.url)).await.unwrap();
    let running = text(b, "main").await;
    assert!(running.contains("Applying sequence 2"), "{running}");
    b.find(Locator::Css(r#"meta[http-equiv="refresh"]"#))
        .await
        .expect("a page of a running plan refreshes itself");
    screenshot(b, "ui-running").await;

    let status = wait_rolled_back(&w, 2).await;
    // The agent's own view catches up with the status it wrote.
    let doc: Value = wait_for("the plan finished", STEP, || async {
        let doc: Value = serde_json::from_str(&get(&http, &api).await).ok()?;
        doc["subscriptions"][0]["running"].is_null().then_some(doc)
    })
    .await;
    // The failed run's plan waits at once (it never says `applied`).
    assert_eq!(
        doc["subscriptions"][0]["preview"]["state"]["state"], "waiting",
        "{}",
        doc["subscriptions"][0]["preview"]
    );

    // The overview: every release with version, revision and state; the failed sequence.
    b.goto(&format!("{}/", agent.url)).await.unwrap();
    assert!(
        b.find(Locator::Css(r#"meta[http-equiv="refresh"]"#))
            .await
            .is_err(),
        "an idle page must not refresh itself"
    );
    let main = text(b, "main").await;
    let releases = rows(b, "section.sub table").await;
    // Release | Version | Revision | State | Since | Reason, as the status says.
    for r in ["certs", "sso", "wiki"] {
        let st = release(&status, r);
        let cells = row(&releases, 0, r);
        assert_eq!(cells.len(), 6, "{cells:?}");
        assert!(cells[0].contains(w.rns(r)), "{cells:?}");
        assert_eq!(cells[1], st["version"].as_str().unwrap(), "{cells:?}");
        assert_eq!(cells[2], st["revision"].to_string(), "{cells:?}");
        assert!(
            cells[3].starts_with(st["state"].as_str().unwrap()),
            "{cells:?}"
        );
    }
    let sso = row(&releases, 0, "sso");
    assert_eq!(
        (sso[2].as_str(), sso[3].as_str()),
        ("3", "rolledBack"),
        "{sso:?}"
    );
    assert!(
        sso[5].contains("Rollback") || sso[5].contains("rolled back"),
        "{sso:?}"
    );
    assert_eq!(
        row(&releases, 0, "certs")[3],
        "upToDate pinned",
        "{releases:?}"
    );
    assert!(
        row(&releases, 0, "wiki")[3].ends_with("held"),
        "{releases:?}"
    );
    let reason = status["failedSequence"]["reason"].as_str().unwrap();
    assert!(reason.contains("sso"), "{reason}");
    let failed = text(b, "dd.notice").await;
    assert!(failed.starts_with("2 failed"), "{failed}");
    assert!(failed.contains(reason), "{failed}");
    assert!(main.contains("Plan for sequence 2"), "{main}");
    screenshot(b, "ui-overview").await;

    // The release page: the failed upgrade with its health objects, the rollback.
    b.find(Locator::LinkText("sso"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let url = b.current_url().await.unwrap();
    assert_eq!(url.path(), "/subscriptions/stack/releases/sso");
    let h1 = text(b, "h1").await;
    assert_eq!(h1, "Release sso");
    let items = b.find_all(Locator::Css("ol.timeline > li")).await.unwrap();
    let mut timeline = Vec::new();
    for li in &items {
        timeline.push((
            li.attr("class").await.unwrap().unwrap_or_default(),
            li.text().await.unwrap(),
        ));
    }
    let upgrade = timeline
        .iter()
        .find(|(class, t)| class == "failed" && t.contains("upgrade") && t.contains("sequence 2"))
        .unwrap_or_else(|| panic!("no failed upgrade of sequence 2 in {timeline:#?}"));
    assert!(upgrade.1.contains("not healthy"), "{}", upgrade.1);
    let objects = rows(b, "ol.timeline > li.failed details table").await;
    // Object | State | Reason
    let server = objects
        .iter()
        .find(|o| o[0] == format!("Deployment/{}/sso-server", w.rns("sso")))
        .unwrap_or_else(|| panic!("no sso-server Deployment in {objects:#?}"));
    assert_eq!(server.len(), 3, "{server:?}");
    assert_eq!(server[1], "not ready", "{server:?}");
    assert!(server[2].contains("readiness probe failing"), "{server:?}");
    let rollback = timeline
        .iter()
        .find(|(_, t)| t.contains("rollback") && t.contains("Rollback reason:"))
        .unwrap_or_else(|| panic!("no rollback in {timeline:#?}"));
    assert!(rollback.1.contains("helm revision 2 → 3"), "{}", rollback.1);
    assert!(rollback.1.contains("succeeded"), "{}", rollback.1);
    assert!(
        rollback
            .1
            .contains("Rollback reason: upgrade to 2.3.0 failed; rolled back to revision 1"),
        "{}",
        rollback.1
    );
    let install = timeline
        .iter()
        .find(|(_, t)| t.contains("install") && t.contains("sequence 1"));
    assert!(install.is_some(), "no install in {timeline:#?}");
    screenshot(b, "ui-release").await;

    // The failed run leaves its plan waiting (and every later check says so too).
    wait_for("the plan of sequence 2 waiting", STEP, || async {
        let doc: Value = serde_json::from_str(&get(&http, &api).await).ok()?;
        let preview = &doc["subscriptions"][0]["preview"];
        (preview["sequence"] == 2 && preview["state"]["state"] == "waiting").then_some(())
    })
    .await;

    // Back to the overview, on to the plan of the failed sequence.
    b.back().await.unwrap();
    assert_eq!(b.current_url().await.unwrap().path(), "/");
    b.find(Locator::LinkText("Plan for sequence 2"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        b.current_url().await.unwrap().path(),
        "/subscriptions/stack/preview"
    );
    let main = text(b, "main").await;
    assert!(main.contains("waiting"), "{main}");
    assert!(main.contains("Not applied:"), "{main}");
    let plan = rows(b, "main table").await;
    // Layer | Release | Action | Version | Why
    let action = |r: &str| row(&plan, 1, r)[2].clone();
    assert_eq!(action("sso"), "upgrade", "{plan:#?}");
    assert_eq!(action("wiki"), "skip held", "{plan:#?}");
    assert_eq!(action("certs"), "unchanged pinned", "{plan:#?}");
    assert_eq!(row(&plan, 1, "sso")[0], "1", "{plan:#?}");
    screenshot(b, "ui-preview").await;

    // The cluster values are in no page, in the JSON and in the metrics.
    let mut urls: Vec<String> = [
        "/",
        "/subscriptions/stack",
        "/subscriptions/stack/preview",
        "/api/v1/status",
        "/metrics",
    ]
    .iter()
    .map(|p| format!("{}{p}", agent.url))
    .collect();
    for r in ["certs", "sso", "wiki"] {
        urls.push(format!("{}/subscriptions/stack/releases/{r}", agent.url));
    }
    for url in &urls {
        let body = get(&http, url).await;
        for marker in [&cm_marker, &secret_marker] {
            assert!(
                !body.contains(marker.as_str()),
                "{url} shows the cluster values ({marker})"
            );
        }
    }
    // The subscription page names the release with cluster values, not the values.
    let page = get(&http, &format!("{}/subscriptions/stack", agent.url)).await;
    assert!(page.contains("contents are never shown"), "{page}");

    chrome.close().await;
    assert!(
        agent.stop(),
        "the agent did not exit 0 on SIGTERM:\n{}",
        agent.logs()
    );
}
