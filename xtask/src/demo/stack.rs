//! The cluster part of `cargo xtask demo`: a loopback cluster follows the served
//! channel. The agent installs the stack in dependency order, upgrades only what an
//! update changes, and rolls back a broken update; each step checks what it shows and
//! fails the demo when it did not happen, so the demo doubles as a smoke test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::{Demo, heading, path_str};
use crate::tools::Tools;

/// The demo cluster's name (`cargo xtask cluster down --name demo` removes it).
pub const CLUSTER: &str = "demo";
/// The namespace of the subscription (the agent serves one namespace).
pub(crate) const NAMESPACE: &str = "coxswain";
/// The subscription's name.
pub(crate) const SUBSCRIPTION: &str = "stack";
/// The stack's releases in dependency order, with their namespaces (testdata's stable spec).
pub(crate) const ORDER: &[(&str, &str)] = &[
    ("certs", "cert-system"),
    ("ingress", "ingress-system"),
    ("sso", "sso-system"),
    ("wiki", "wiki"),
    ("files", "files"),
];

/// `kubectl` arguments that wait until the ChannelSubscription CRD is served.
pub const WAIT_FOR_CRD: [&str; 4] = [
    "wait",
    "--for=condition=Established",
    "crd/channelsubscriptions.coxswain.dev",
    "--timeout=30s",
];

/// What the cluster steps share besides [`Demo`].
pub struct Stack<'a> {
    demo: &'a Demo,
    /// The cluster's tools (kubectl, helm 4).
    pub tools: Tools,
    /// The demo cluster's kubeconfig.
    pub kubeconfig: PathBuf,
    /// The served site's base URL.
    url: String,
    /// Checks that passed, for the closing summary.
    pub passed: Vec<String>,
    /// The subscription's `spec.interval`.
    pub interval: &'static str,
}

/// Starts the cluster `demo` and returns the shared state.
pub fn start<'a>(demo: &'a Demo, url: &str) -> Result<Stack<'a>> {
    start_named(demo, url, CLUSTER)
}

/// Starts the loopback cluster `name` and returns the shared state.
pub fn start_named<'a>(demo: &'a Demo, url: &str, name: &str) -> Result<Stack<'a>> {
    heading(&format!(
        "start a loopback Kubernetes cluster (`cargo xtask cluster up --name {name}`)"
    ));
    let tools = crate::tools::ensure()?;
    let kubeconfig = crate::cluster::up(name, &tools)?;
    println!("  the commands below run with");
    println!("    KUBECONFIG={}", kubeconfig.display());
    println!("    HELM={}  (helm 4)", tools.helm4.display());
    println!("    DEMO={}", demo.work.display());
    Ok(Stack {
        demo,
        tools,
        kubeconfig,
        url: url.to_owned(),
        passed: Vec::new(),
        interval: "5m",
    })
}

/// A finished command: exit code and output.
pub(crate) struct Ran {
    pub code: i32,
    pub stdout: String,
}

impl Stack<'_> {
    /// The display form of an argument: long paths abbreviated to the variables printed at start.
    pub(crate) fn shorten(&self, arg: &str) -> String {
        let mut s = arg.to_owned();
        for (path, var) in [
            (&self.kubeconfig, "$KUBECONFIG"),
            (&self.tools.helm4, "$HELM"),
            (&self.demo.work, "$DEMO"),
            (&self.demo.root, "."),
        ] {
            if let Some(p) = path.to_str() {
                s = s.replace(p, var);
            }
        }
        s
    }

    /// Runs `program` (shown as `label`), echoing the command and its output indented.
    /// Output is echoed only when `echo`; the caller checks the exit code.
    pub(crate) fn run(
        &self,
        label: &str,
        program: &Path,
        args: &[&str],
        echo: bool,
    ) -> Result<Ran> {
        let shown: Vec<String> = args.iter().map(|a| self.shorten(a)).collect();
        if echo {
            println!("$ {label} {}", shown.join(" "));
        }
        let output = Command::new(program)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", program.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let code = output.status.code().unwrap_or(-1);
        if echo || code != 0 {
            for line in stdout.lines().chain(stderr.lines()) {
                println!("  {}", self.shorten(super::without_timestamp(line)));
            }
        }
        Ok(Ran { code, stdout })
    }

    /// Like [`Self::run`], failing on a non-zero exit.
    pub(crate) fn must(
        &self,
        label: &str,
        program: &Path,
        args: &[&str],
        echo: bool,
    ) -> Result<String> {
        let ran = self.run(label, program, args, echo)?;
        if ran.code != 0 {
            bail!("{label} {} failed (exit {})", args.join(" "), ran.code);
        }
        Ok(ran.stdout)
    }

    pub(crate) fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.must("kubectl", &self.tools.kubectl, args, true)
    }

    pub(crate) fn helm(&self, args: &[&str]) -> Result<String> {
        self.must("helm", &self.tools.helm4, args, true)
    }

    /// The coxswain binary the demo built.
    pub(crate) fn coxswain_binary(&self) -> &Path {
        &self.demo.coxswain
    }

    pub(crate) fn pass(&mut self, what: String) {
        println!("  ok: {what}");
        self.passed.push(what);
    }

    /// Applies the CRD, creates the namespace, the trust-root ConfigMap and the subscription.
    pub fn subscribe(&mut self) -> Result<()> {
        heading("install the ChannelSubscription CRD");
        let crds = self.demo.root.join("charts/coxswain/crds");
        self.kubectl(&["apply", "--server-side", "-f", path_str(&crds)?])?;
        self.kubectl(&WAIT_FOR_CRD)?;

        heading("give the cluster the trust root and subscribe it to the channel");
        self.kubectl(&["create", "namespace", NAMESPACE])?;
        let from_file = format!("--from-file=root.json={}", path_str(&self.demo.trust())?);
        self.kubectl(&[
            "create",
            "configmap",
            "coxswain-trust",
            "--namespace",
            NAMESPACE,
            &from_file,
        ])?;
        let subscription = format!(
            "apiVersion: coxswain.dev/v1alpha1\n\
             kind: ChannelSubscription\n\
             metadata:\n  name: {SUBSCRIPTION}\n  namespace: {NAMESPACE}\n\
             spec:\n  server: {}\n  channel: {}\n\
             \x20 trustRef: {{kind: ConfigMap, name: coxswain-trust, key: root.json}}\n\
             \x20 interval: {}\n  healthTimeout: 2m\n  rollbackPolicy: release\n",
            self.url, self.demo.channel, self.interval
        );
        let file = self.demo.work.join("subscription.yaml");
        std::fs::write(&file, &subscription)
            .with_context(|| format!("writing {}", file.display()))?;
        println!("$ cat $DEMO/subscription.yaml");
        for line in subscription.lines() {
            println!("  {line}");
        }
        self.kubectl(&["apply", "-f", path_str(&file)?])?;
        Ok(())
    }

    /// `coxswain agent` with this cluster's kubeconfig, namespace, helm and cache, then `mode`.
    pub(crate) fn agent_args(&self, mode: &[&str]) -> Result<Vec<String>> {
        let cache = self.demo.work.join("agent-cache");
        let mut args: Vec<String> = [
            "agent",
            "--kubeconfig",
            path_str(&self.kubeconfig)?,
            "--namespace",
            NAMESPACE,
            "--helm",
            path_str(&self.tools.helm4)?,
            "--cache-dir",
            path_str(&cache)?,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(mode.iter().map(|s| (*s).to_owned()));
        Ok(args)
    }

    /// `coxswain agent --once`; fails unless it exits with `expected`.
    fn agent_once(&mut self, expected: i32, meaning: &str) -> Result<()> {
        let args = self.agent_args(&["--once"])?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = self.run("coxswain", &self.demo.coxswain, &args, true)?;
        println!("  (exit code {})", ran.code);
        if ran.code != expected {
            bail!(
                "coxswain agent --once exited {} where {expected} ({meaning}) was expected",
                ran.code
            );
        }
        self.pass(format!("agent --once exited {expected}: {meaning}"));
        Ok(())
    }

    /// The releases as helm lists them: name -> (revision, chart, status, updated).
    pub(crate) fn releases(&self) -> Result<BTreeMap<String, HelmRelease>> {
        let json = self.must(
            "helm",
            &self.tools.helm4,
            &["list", "--all-namespaces", "--output", "json"],
            false,
        )?;
        let list: Vec<Value> = serde_json::from_str(&json).context("parsing helm list")?;
        let mut out = BTreeMap::new();
        for r in list {
            let field = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            let revision = match &r["revision"] {
                Value::String(s) => s.parse().unwrap_or(0),
                v => v.as_u64().unwrap_or(0),
            };
            out.insert(
                field("name"),
                HelmRelease {
                    revision,
                    chart: field("chart"),
                    status: field("status"),
                    updated: field("updated"),
                },
            );
        }
        Ok(out)
    }

    /// The subscription as JSON (status included).
    pub(crate) fn subscription(&self) -> Result<Value> {
        let json = self.must(
            "kubectl",
            &self.tools.kubectl,
            &[
                "get",
                "channelsubscription",
                SUBSCRIPTION,
                "--namespace",
                NAMESPACE,
                "--output",
                "json",
            ],
            false,
        )?;
        serde_json::from_str(&json).context("parsing the subscription")
    }

    /// `kubectl describe` of the subscription, its long `History:` list elided
    /// (the Events at the end tell the same story).
    fn describe(&self) -> Result<()> {
        let args = [
            "describe",
            "channelsubscription",
            SUBSCRIPTION,
            "--namespace",
            NAMESPACE,
        ];
        println!("$ kubectl {}", args.join(" "));
        let text = self.must("kubectl", &self.tools.kubectl, &args, false)?;
        let mut elided = None;
        for line in text.lines() {
            let indent = line.len() - line.trim_start().len();
            match elided {
                Some((at, n)) if indent > at => {
                    elided = Some((at, n + 1));
                    continue;
                }
                Some((_, n)) => {
                    println!("        ... ({n} lines of status.history elided)");
                    elided = None;
                }
                None => {}
            }
            println!("  {line}");
            if line.trim() == "History:" {
                elided = Some((indent, 0));
            }
        }
        Ok(())
    }

    fn show_state(&self) -> Result<()> {
        self.kubectl(&["get", "channelsubscriptions", "--namespace", NAMESPACE])?;
        self.helm(&["list", "--all-namespaces"])?;
        Ok(())
    }

    /// Sequence 1: a fresh install of the whole stack in dependency order.
    pub fn install(&mut self) -> Result<()> {
        heading("run the agent once: it installs the stack in dependency order");
        self.agent_once(0, "every release is at its desired state")?;
        heading("what the cluster runs now");
        self.show_state()?;
        let releases = self.releases()?;
        let mut times = Vec::new();
        for (name, _) in ORDER {
            let r = releases
                .get(*name)
                .with_context(|| format!("release {name} was not installed"))?;
            ensure!(
                r.status == "deployed" && r.revision == 1,
                "release {name} is {} at revision {}, expected deployed at 1",
                r.status,
                r.revision
            );
            times.push((*name, seconds_of_day(&r.updated)?));
        }
        // certs -> ingress -> sso -> {wiki, files}: each layer after the one before.
        for pair in times[..4].windows(2) {
            ensure!(
                pair[0].1 <= pair[1].1,
                "{} was installed before its dependency {}",
                pair[1].0,
                pair[0].0
            );
        }
        ensure!(
            times[2].1 <= times[4].1,
            "files was installed before its dependency sso"
        );
        self.pass(
            "5 releases deployed at revision 1, in the order certs, ingress, sso, then wiki and files (helm's install times)".to_owned(),
        );
        Ok(())
    }

    /// Sequence 2: wiki moves to the next chart version; nothing else changes.
    pub fn update(&mut self) -> Result<()> {
        heading("publish an update (sequence 2): wiki moves to chart 1.1.0, image 2.5.301");
        let spec = self.write_spec("update", &[], &update_edits())?;
        self.publish(&spec, 2)?;
        heading("run the agent again: only wiki is upgraded");
        let before = self.releases()?;
        self.agent_once(0, "every release is at its desired state")?;
        self.show_state()?;
        let after = self.releases()?;
        for (name, _) in ORDER {
            let (b, a) = (&before[*name], &after[*name]);
            if *name == "wiki" {
                ensure!(
                    a.revision == b.revision + 1
                        && a.chart == "wiki-1.1.0"
                        && a.status == "deployed",
                    "wiki was not upgraded to wiki-1.1.0: revision {} -> {}, chart {}, status {}",
                    b.revision,
                    a.revision,
                    a.chart,
                    a.status
                );
            } else {
                ensure!(
                    a.revision == b.revision,
                    "{name} was touched by an update that did not change it (revision {} -> {})",
                    b.revision,
                    a.revision
                );
            }
        }
        self.pass(
            "wiki upgraded to chart 1.1.0 (revision 2); the other 4 releases untouched".to_owned(),
        );
        Ok(())
    }

    /// Sequence 3: sso's image is `broken`; the agent rolls it back and skips its dependents.
    pub fn broken(&mut self) -> Result<()> {
        heading(
            "publish a broken update (sequence 3): sso gets the image tag `broken`, health timeout 20s",
        );
        let spec = self.write_spec("broken", &update_edits(), &broken_edits())?;
        self.publish(&spec, 3)?;
        heading("run the agent again: sso fails its health check and is rolled back");
        let before = self.releases()?;
        self.agent_once(2, "something was rolled back")?;

        heading("what an administrator looks at");
        self.show_state()?;
        self.helm(&["history", "sso", "--namespace", "sso-system"])?;
        self.describe()?;

        let after = self.releases()?;
        let sso = &after["sso"];
        ensure!(
            sso.revision == before["sso"].revision + 2 && sso.status == "deployed",
            "sso was not upgraded and rolled back: revision {} -> {}, status {}",
            before["sso"].revision,
            sso.revision,
            sso.status
        );
        let history = self.must(
            "helm",
            &self.tools.helm4,
            &[
                "history",
                "sso",
                "--namespace",
                "sso-system",
                "--output",
                "json",
            ],
            false,
        )?;
        let history: Vec<Value> = serde_json::from_str(&history).context("parsing helm history")?;
        let last = history.last().context("sso has no history")?;
        let expected = format!("Rollback to {}", before["sso"].revision);
        ensure!(
            last["description"] == expected.as_str(),
            "sso's last revision says {}, expected {expected:?}",
            last["description"]
        );
        for name in ["wiki", "files", "certs", "ingress"] {
            ensure!(
                after[name].revision == before[name].revision,
                "{name} changed during the broken update (revision {} -> {})",
                before[name].revision,
                after[name].revision
            );
        }
        let sub = self.subscription()?;
        let status = &sub["status"];
        ensure!(
            status["failedSequence"]["sequence"] == 3,
            "status.failedSequence does not name sequence 3: {}",
            status["failedSequence"]
        );
        let sso_state = status["releases"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == "sso"))
            .map(|r| r["state"].clone())
            .unwrap_or(Value::Null);
        ensure!(
            sso_state == "rolledBack",
            "status says sso is {sso_state}, expected rolledBack"
        );
        let events = self.must(
            "kubectl",
            &self.tools.kubectl,
            &[
                "get",
                "events",
                "--namespace",
                NAMESPACE,
                "--field-selector",
                "involvedObject.kind=ChannelSubscription",
                "--output",
                "json",
            ],
            false,
        )?;
        let events: Value = serde_json::from_str(&events).context("parsing the events")?;
        let reasons: Vec<&str> = events["items"]
            .as_array()
            .map(|items| items.iter().filter_map(|e| e["reason"].as_str()).collect())
            .unwrap_or_default();
        for reason in ["UpgradeFailed", "RolledBack"] {
            ensure!(
                reasons.contains(&reason),
                "no {reason} Event on the subscription (reasons seen: {reasons:?})"
            );
        }
        self.pass(format!(
            "sso upgraded, failed its health check, rolled back ({expected:?}); status: failedSequence 3, sso rolledBack; Events UpgradeFailed and RolledBack; the other releases untouched"
        ));
        Ok(())
    }

    /// Writes testdata's spec with absolute paths, `earlier` and `edits` (release, from,
    /// to) applied; prints `edits`, the change from the previous sequence.
    pub(crate) fn write_spec(
        &self,
        name: &str,
        earlier: &[(&str, &str, &str)],
        edits: &[(&str, &str, &str)],
    ) -> Result<PathBuf> {
        let source = self
            .demo
            .root
            .join("testdata/channels")
            .join(format!("{}.yaml", self.demo.channel));
        let text = std::fs::read_to_string(&source)
            .with_context(|| format!("reading {}", source.display()))?;
        let testdata = path_str(&self.demo.root.join("testdata"))?.to_owned();
        let mut text = text
            .replace("path: ../", &format!("path: {testdata}/"))
            .replace(
                "valuesFile: values/",
                &format!("valuesFile: {testdata}/channels/values/"),
            );
        for (release, from, to) in earlier {
            text = edit_release(&text, release, from, to)?;
        }
        println!("  the spec changes from the previous sequence:");
        for (release, from, to) in edits {
            text = edit_release(&text, release, from, to)?;
            println!("    {release}: {from}  ->  {}", to.replace("\n     ", ""));
        }
        let path = self.demo.work.join(format!("{name}.yaml"));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    pub(crate) fn publish(&self, spec: &Path, sequence: u64) -> Result<()> {
        super::coxswain(
            self.demo,
            &[
                "publish",
                "--spec",
                path_str(spec)?,
                "--key",
                path_str(&self.demo.keys().join("channel.key"))?,
                "--out",
                path_str(&self.demo.site())?,
                "--sequence",
                &sequence.to_string(),
            ],
        )?;
        Ok(())
    }
}

/// One release as `helm list` reports it.
pub(crate) struct HelmRelease {
    pub revision: u64,
    pub chart: String,
    pub status: String,
    pub updated: String,
}

/// The update: wiki to the next chart (testdata/charts-next) and app version.
fn update_edits() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("wiki", "/charts/wiki", "/charts-next/wiki"),
        ("wiki", "tag: \"2.5.300\"", "tag: \"2.5.301\""),
    ]
}

/// The broken update: sso's workload never becomes ready (its migration hook keeps a
/// good image, so the hook passes and the Deployment is what fails).
fn broken_edits() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        (
            "sso",
            "image: {tag: \"24.0.5\"}",
            "image: {tag: \"broken\"}\n      migration: {image: {tag: \"24.0.5\"}}",
        ),
        ("sso", "timeout: 3m", "timeout: 20s"),
    ]
}

/// Replaces `from` by `to` inside the `- name: <release>` block of a spec, exactly once.
pub(crate) fn edit_release(text: &str, release: &str, from: &str, to: &str) -> Result<String> {
    let marker = format!("  - name: {release}\n");
    let start = text
        .find(&marker)
        .with_context(|| format!("the spec has no release {release}"))?;
    let end = text[start + marker.len()..]
        .find("  - name: ")
        .map_or(text.len(), |i| start + marker.len() + i);
    let block = &text[start..end];
    ensure!(
        block.matches(from).count() == 1,
        "release {release} in the spec does not contain {from:?} exactly once"
    );
    Ok(format!(
        "{}{}{}",
        &text[..start],
        block.replacen(from, to, 1),
        &text[end..]
    ))
}

/// Seconds since midnight from helm's `updated` (`2026-11-26 04:30:01.123 +0000 UTC`);
/// the releases of one demo run share a date.
fn seconds_of_day(updated: &str) -> Result<f64> {
    let time = updated
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("helm's updated time {updated:?} has no time of day"))?;
    let mut parts = time.split(':');
    let mut total = 0.0;
    for scale in [3600.0, 60.0, 1.0] {
        let part: f64 = parts
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("cannot read the time of day in {updated:?}"))?;
        total += part * scale;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "releases:\n  - name: sso\n    health: {timeout: 3m}\n  - name: files\n    health: {timeout: 3m}\n";

    #[test]
    fn edits_stay_inside_their_release() {
        let out = edit_release(SPEC, "files", "3m", "20s").unwrap();
        assert!(out.contains("sso\n    health: {timeout: 3m}"));
        assert!(out.contains("files\n    health: {timeout: 20s}"));
        assert!(edit_release(SPEC, "wiki", "3m", "20s").is_err());
        assert!(edit_release(SPEC, "sso", "4m", "20s").is_err());
    }

    #[test]
    fn helm_times_order() {
        let a = seconds_of_day("2026-11-26 04:30:01.5 +0000 UTC").unwrap();
        let b = seconds_of_day("2026-11-26 04:30:01.45 +0000 UTC").unwrap();
        assert!(b < a);
        assert!(seconds_of_day("garbage").is_err());
    }
}
