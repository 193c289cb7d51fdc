//! The world of the agent's end-to-end tests (`tests/e2e_agent.rs`,
//! `tests/e2e_observe.rs`): keys and a trust root, a channel spec whose releases
//! live in namespaces of their own, a site published by the real `coxswain
//! publish` and served by a real `coxswain serve`, and a ChannelSubscription.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use coxswain::crd::{ChannelSubscription, ChannelSubscriptionSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::Value;

use super::cluster::{TestNamespace, client, helm4, kubeconfig_path, kubectl};
use super::{repo, test_key_file, testdata};

/// The agent binary under test.
pub fn coxswain() -> PathBuf {
    // A measurement may run the tests against another build (the static release build
    // of the image); by default, the binary of this test build.
    match std::env::var_os("COXSWAIN_TEST_COXSWAIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_coxswain")),
    }
}

/// Runs the coxswain binary; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(coxswain())
        .args(args)
        .env("COXSWAIN_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `coxswain serve`, stopped by pid on drop.
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
}

impl Server {
    /// Serves `dir` on `listen`, its access log at [`access_log_of`]`(dir)`.
    pub fn start(dir: &Path, listen: &str) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(coxswain())
            .args(["serve", "--dir"])
            .arg(dir)
            .args(["--listen", listen])
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(access_log_of(dir)).unwrap(),
            ))
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve printed {line:?}"))
            .trim_end_matches('/')
            .to_owned();
        Self { child, url }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// Stops the server (it can be started again on the same address).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where a server of `dir` writes its access log (one line per request).
pub fn access_log_of(dir: &Path) -> PathBuf {
    dir.with_extension("access.log")
}

/// The releases of the testdata stack, in their dependency layers.
pub const STACK: [&str; 5] = ["certs", "ingress", "sso", "wiki", "files"];

/// One test's world: keys, trust root, a channel spec with its own release
/// namespaces, a site served by `coxswain serve`, and a subscription.
pub struct World {
    /// Keys, trust root, specs, the site and the agent's cache.
    pub dir: tempfile::TempDir,
    /// A client of the test cluster.
    pub client: Client,
    /// The subscription's namespace.
    pub ns: TestNamespace,
    /// One namespace per release.
    pub release_ns: BTreeMap<&'static str, TestNamespace>,
    /// The update site's server.
    pub server: Server,
    /// The channel signing key.
    pub key: PathBuf,
    /// The last sequence published.
    pub sequence: u64,
    /// The helm binary the agent and the assertions use.
    pub helm: PathBuf,
}

impl World {
    /// Makes the subscription's namespace and one per release, the trust root
    /// (in ConfigMap `trust`), and serves an empty site: [`World::publish`] and
    /// [`World::subscribe`] follow.
    pub async fn new(prefix: &str, releases: &[&'static str]) -> Self {
        let client = client().await;
        apply_crd().await;
        let ns = TestNamespace::create(&client, prefix).await;
        let mut release_ns = BTreeMap::new();
        for r in releases {
            release_ns.insert(
                *r,
                TestNamespace::create(&client, &format!("{prefix}-{r}")).await,
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let root = test_key_file(dir.path(), "test-root-1");
        let key = test_key_file(dir.path(), "test-channel-1");
        let trust = dir.path().join("trust.json");
        let (code, _, err) = run(&[
            "trust",
            "init",
            "--root-key",
            root.to_str().unwrap(),
            "--channel-key",
            testdata("keys/test-channel-1.pub").to_str().unwrap(),
            "--out",
            trust.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        std::fs::create_dir_all(dir.path().join("site")).unwrap();
        let server = Server::start(&dir.path().join("site"), "127.0.0.1:0");
        create_config_map(
            &client,
            &ns.name,
            "trust",
            "root.json",
            &std::fs::read_to_string(&trust).unwrap(),
        )
        .await;
        Self {
            dir,
            client,
            ns,
            release_ns,
            server,
            key,
            sequence: 0,
            helm: helm4(),
        }
    }

    /// A copy of the next wiki chart (`testdata/charts-next/wiki`, 1.1.0) as
    /// `version`, in a directory of its own named `wiki` (as a chart's must be).
    pub fn wiki_as(&self, version: &str) -> PathBuf {
        let dir = self.dir.path().join(format!("wiki-{version}")).join("wiki");
        super::copy_tree(&testdata("charts-next/wiki"), &dir);
        let chart_yaml = dir.join("Chart.yaml");
        let text = std::fs::read_to_string(&chart_yaml).unwrap();
        let bumped = text.replacen("version: 1.1.0", &format!("version: {version}"), 1);
        std::fs::write(&chart_yaml, bumped).unwrap();
        dir
    }

    /// The namespace of `release`.
    pub fn rns(&self, release: &str) -> &str {
        &self.release_ns[release].name
    }

    /// The stable spec with this world's namespaces, absolute paths, only
    /// `releases`, and `edit` applied to each release's YAML mapping.
    pub fn spec(&self, channel: &str, edit: impl Fn(&str, &mut Value)) -> PathBuf {
        self.spec_from("channels/stable.yaml", channel, edit)
    }

    /// [`World::spec`] from another spec under testdata (`rel`, e.g. `channels/real-charts.yaml`).
    pub fn spec_from(&self, rel: &str, channel: &str, edit: impl Fn(&str, &mut Value)) -> PathBuf {
        let file = testdata(rel);
        let base = file.parent().unwrap().to_path_buf();
        let text = std::fs::read_to_string(&file).unwrap();
        let mut doc: Value = serde_saphyr::from_str(&text).unwrap();
        doc["channel"] = channel.into();
        let releases = doc["releases"].as_array_mut().unwrap();
        releases.retain(|r| self.release_ns.contains_key(r["name"].as_str().unwrap()));
        for r in releases.iter_mut() {
            let name = r["name"].as_str().unwrap().to_owned();
            r["namespace"] = self.rns(&name).into();
            let path = r["chart"]["path"].as_str().unwrap().to_owned();
            r["chart"]["path"] = base.join(path).to_str().unwrap().into();
            if let Some(vf) = r
                .get("valuesFile")
                .and_then(Value::as_str)
                .map(str::to_owned)
            {
                r["valuesFile"] = base.join(vf).to_str().unwrap().into();
            }
            if let Some(deps) = r.get_mut("dependsOn").and_then(Value::as_array_mut) {
                let keep: Vec<Value> = deps
                    .iter()
                    .filter(|d| self.release_ns.contains_key(d.as_str().unwrap()))
                    .cloned()
                    .collect();
                *deps = keep;
            }
            edit(&name, r);
        }
        let path = self.dir.path().join(format!("{channel}-spec.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        path
    }

    /// Publishes the next sequence of `spec` into `site` (default: the served one).
    pub fn publish_to(&mut self, spec: &Path, site: &Path, sequence: u64) {
        let (code, _, err) = run(&[
            "publish",
            "--spec",
            spec.to_str().unwrap(),
            "--key",
            self.key.to_str().unwrap(),
            "--out",
            site.to_str().unwrap(),
            "--sequence",
            &sequence.to_string(),
        ]);
        assert_eq!(code, 0, "publish failed: {err}");
    }

    /// Publishes the next sequence of the stable spec with `edit` applied; returns it.
    pub fn publish(&mut self, edit: impl Fn(&str, &mut Value)) -> u64 {
        self.publish_from("channels/stable.yaml", edit)
    }

    /// [`World::publish`] of another spec under testdata, into the stable channel.
    pub fn publish_from(&mut self, rel: &str, edit: impl Fn(&str, &mut Value)) -> u64 {
        self.sequence += 1;
        let spec = self.spec_from(rel, "stable", edit);
        let site = self.site();
        self.publish_to(&spec, &site, self.sequence);
        self.sequence
    }

    /// Publishes the next sequence of the stable spec (with `edit`) into a
    /// copy of the served site, which stays as it was: a publish not (yet)
    /// visible. Returns the sequence and the copy; copy it over
    /// [`World::site`] to make it visible.
    pub fn publish_staged(&mut self, edit: impl Fn(&str, &mut Value)) -> (u64, PathBuf) {
        self.sequence += 1;
        let spec = self.spec("stable", edit);
        let staged = self.dir.path().join(format!("site-{}", self.sequence));
        super::copy_tree(&self.site(), &staged);
        self.publish_to(&spec, &staged, self.sequence);
        (self.sequence, staged)
    }

    /// The directory `coxswain serve` serves.
    pub fn site(&self) -> PathBuf {
        self.dir.path().join("site")
    }

    /// Creates the subscription `stack` to the served stable channel, with `tweak` applied.
    pub async fn subscribe(&self, tweak: impl FnOnce(&mut ChannelSubscriptionSpec)) {
        let mut spec: ChannelSubscriptionSpec = serde_json::from_value(serde_json::json!({
            "server": self.server.url,
            "channel": "stable",
            "trustRef": {"kind": "ConfigMap", "name": "trust", "key": "root.json"},
        }))
        .unwrap();
        tweak(&mut spec);
        let sub = ChannelSubscription::new("stack", spec);
        self.subs()
            .create(&PostParams::default(), &sub)
            .await
            .unwrap();
    }

    /// The subscriptions of this world's namespace.
    pub fn subs(&self) -> Api<ChannelSubscription> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    /// Merge-patches the spec of `stack`.
    pub async fn patch_spec(&self, patch: Value) {
        self.subs()
            .patch(
                "stack",
                &PatchParams::default(),
                &Patch::Merge(&serde_json::json!({"spec": patch})),
            )
            .await
            .unwrap();
    }

    /// `coxswain agent --once`; returns (exit code, stdout, stderr).
    pub fn agent_once(&self) -> (i32, String, String) {
        self.agent_once_with(&[])
    }

    /// `coxswain agent --once` with `extra` flags; returns (exit code, stdout, stderr).
    pub fn agent_once_with(&self, extra: &[&str]) -> (i32, String, String) {
        self.agent_once_as(&kubeconfig_path(), extra)
    }

    /// [`World::agent_once_with`] with the credentials of `kubeconfig`.
    pub fn agent_once_as(&self, kubeconfig: &Path, extra: &[&str]) -> (i32, String, String) {
        let helm = self.helm.clone();
        let cache = self.cache_dir();
        let mut args = vec![
            "agent",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--namespace",
            &self.ns.name,
            "--helm",
            helm.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
            "--once",
        ];
        args.extend_from_slice(extra);
        run(&args)
    }

    /// The agent's `--cache-dir` (chart archives under `charts/`).
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The status of `stack`, as JSON.
    pub async fn status(&self) -> Value {
        let sub = self.subs().get("stack").await.unwrap();
        serde_json::to_value(sub.status.unwrap_or_default()).unwrap()
    }

    /// `helm history -o json` of a release.
    pub fn history(&self, release: &str) -> Vec<Value> {
        let out = succeed(
            std::process::Command::new(&self.helm)
                .args([
                    "history",
                    release,
                    "-o",
                    "json",
                    "--namespace",
                    self.rns(release),
                ])
                .arg("--kubeconfig")
                .arg(kubeconfig_path()),
        );
        serde_json::from_slice(&out).unwrap()
    }

    /// The latest revision of each release.
    pub fn revisions(&self) -> BTreeMap<String, u64> {
        self.release_ns
            .keys()
            .map(|r| {
                let h = self.history(r);
                (
                    r.to_string(),
                    h.last().unwrap()["revision"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// Event reason and note pairs on the subscription.
    pub async fn events(&self) -> Vec<(String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &self.ns.name);
        let list = api.list(&Default::default()).await.unwrap();
        list.items
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }
}

/// Runs a command that must succeed; returns its stdout.
pub fn succeed(cmd: &mut std::process::Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Creates ConfigMap `name` in `ns` with one key.
pub async fn create_config_map(client: &Client, ns: &str, name: &str, key: &str, text: &str) {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(key.to_owned(), text.to_owned())])),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
}

/// Applies the ChannelSubscription CRD (server-side, so parallel tests agree) and waits until it is served.
pub async fn apply_crd() {
    let path = repo().join("charts/coxswain/crds/channelsubscriptions.yaml");
    succeed(
        std::process::Command::new(kubectl())
            .arg(format!("--kubeconfig={}", kubeconfig_path().display()))
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(&path),
    );
    succeed(
        std::process::Command::new(kubectl())
            .arg(format!("--kubeconfig={}", kubeconfig_path().display()))
            .args([
                "wait",
                "--for=condition=Established",
                "crd/channelsubscriptions.coxswain.dev",
                "--timeout=30s",
            ]),
    );
}

/// Sets the value at `pointer` (a path of keys), creating the mappings on the way.
pub fn set(r: &mut Value, pointer: &[&str], value: Value) {
    let mut cur = r;
    for key in &pointer[..pointer.len() - 1] {
        if cur.get(*key).is_none() {
            cur[*key] = serde_json::json!({});
        }
        cur = &mut cur[*key];
    }
    cur[pointer[pointer.len() - 1]] = value;
}

/// Edits sso's entry of a spec so that its upgrade fails the health check
/// within 20s: the KWOK stage `broken` keeps the new pods running but never
/// Ready, while the schema migration hook keeps a good image and passes.
pub fn break_sso(r: &mut Value) {
    set(r, &["values", "image", "tag"], "broken".into());
    set(r, &["values", "migration", "image", "tag"], "24.0.5".into());
    set(r, &["health", "timeout"], "20s".into());
}

/// Status, reason and message of condition `type_`.
pub fn condition(status: &Value, type_: &str) -> (String, String, String) {
    let c = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no condition {type_} in {status}"));
    (
        c["status"].as_str().unwrap().to_owned(),
        c["reason"].as_str().unwrap().to_owned(),
        c["message"].as_str().unwrap().to_owned(),
    )
}

/// Release `name` of a status.
pub fn release<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no release {name} in {status}"))
}

/// When a helm history entry was updated.
pub fn updated(entry: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        entry["updated"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

/// How long a controller may take to log the address of its web server.
const AGENT_START: std::time::Duration = std::time::Duration::from_secs(60);

/// A `coxswain agent` controller process (`--log-format json --listen
/// 127.0.0.1:0`), its stderr collected; stopped by pid on drop.
pub struct Agent {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT` of its web UI, /api/v1/status and /metrics.
    pub url: String,
    logs: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Agent {
    /// The JSON log lines so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// SIGKILL (no chance to release anything), then waits for the exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id (to read its memory in /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited (it never should by itself).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// SIGTERM, then waits for the exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let pid = rustix::process::Pid::from_child(&self.child);
        if self.child.try_wait().unwrap().is_none() {
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        }
        self.child.wait().unwrap().success()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl World {
    /// Starts the agent as a controller of this world's namespace and waits
    /// until it logs where its web server listens.
    pub fn start_agent(&self) -> Agent {
        self.start_agent_with(&[], &[])
    }

    /// [`World::start_agent`] with more arguments and environment variables.
    pub fn start_agent_with(&self, args: &[&str], env: &[(&str, &str)]) -> Agent {
        self.start_agent_as(&kubeconfig_path(), args, env)
    }

    /// [`World::start_agent_with`] with the credentials of `kubeconfig`.
    pub fn start_agent_as(&self, kubeconfig: &Path, args: &[&str], env: &[(&str, &str)]) -> Agent {
        use std::io::BufRead;
        let mut child = std::process::Command::new(coxswain())
            .args(["agent", "--log-format", "json", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespace", &self.ns.name, "--helm"])
            .arg(&self.helm)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["fields"]["message"] == "web UI and /metrics listening"
                    && let Some(addr) = v["fields"]["address"].as_str()
                {
                    let _ = tx.send(addr.to_owned());
                }
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let addr = match rx.recv_timeout(AGENT_START) {
            Ok(addr) => addr,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the agent did not log its web server's address within {}s ({e}); its log:\n{}",
                    AGENT_START.as_secs(),
                    logs.lock().unwrap()
                );
            }
        };
        Agent {
            child,
            url: format!("http://{addr}"),
            logs,
        }
    }
}
