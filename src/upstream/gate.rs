//! `coxswain gate`: a published channel applied to a test cluster the way a subscribed
//! cluster applies it, then every release's `helm test`, with a verdict per release
//! (text, JUnit XML) and, when everything passed, a signed [`GateRecord`] for that
//! exact index.
//!
//! The channel is verified first (trust chain, signatures, every chart). The gate then
//! makes sure the test cluster is subscribed (the trust anchor in a ConfigMap and a
//! `ChannelSubscription`, applied server-side so a rerun changes nothing), runs the
//! agent once as a child process (`coxswain agent --once`, the same binary), reads the
//! subscription's status, and runs `helm test` for every release the agent left at the
//! channel's desired state. It passes only when the agent accepted the verified
//! sequence, every release is up to date and every `helm test` passed.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::crd::ChannelSubscription;
use crate::format::gate::GateRecordKind;
use crate::format::{ApiVersion, GateRecord, GateRelease, Sha256Digest, Timestamp};
use crate::helm::{HelmCli, HelmConfig, TestOptions};
use crate::site::Site;
use crate::site_verify::{SiteVerifyOptions, describe, verify_site};

/// The field manager of what the gate applies.
pub const FIELD_MANAGER: &str = "coxswain-gate";

/// What a gate run needs.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// The site's http(s) URL, as the test cluster's agent reads it.
    pub site: String,
    /// The channel.
    pub channel: String,
    /// The trust root the test cluster is installed with.
    pub trust: Vec<u8>,
    /// Where the trust root came from (for messages).
    pub trust_origin: String,
    /// The test cluster's namespace for the subscription (created when missing).
    pub namespace: String,
    /// The subscription's name (the trust ConfigMap is `<name>-trust`).
    pub name: String,
    /// The kubeconfig of the test cluster (else the environment's).
    pub kubeconfig: Option<PathBuf>,
    /// The helm binary.
    pub helm: PathBuf,
    /// The coxswain binary that runs `agent --once`.
    pub agent: PathBuf,
    /// The agent's chart cache.
    pub cache_dir: PathBuf,
    /// Time allowed for the agent's run.
    pub agent_timeout: Duration,
    /// Time allowed for each release's `helm test`.
    pub test_timeout: Duration,
}

/// Why a gate could not run (a failed gate is a [`GateReport`] that did not pass).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The channel did not verify.
    #[error("channel {channel} on {site} does not verify: {reason}")]
    Verify {
        /// The channel.
        channel: String,
        /// The site.
        site: String,
        /// Why.
        reason: String,
    },
    /// The test cluster refused or could not be reached.
    #[error("test cluster: {0}")]
    Cluster(String),
    /// The agent could not be run.
    #[error("cannot run the agent: {0}")]
    Agent(String),
}

/// One release's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseVerdict {
    /// The release.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The chart version the index offers.
    pub version: String,
    /// Its state in the subscription's status (`upToDate`, `rolledBack`, …).
    pub state: String,
    /// Why it is not up to date, from the status.
    pub message: String,
    /// `helm test`: `None` when not run (the release was not up to date).
    pub test: Option<Result<(), String>>,
}

impl ReleaseVerdict {
    /// Up to date and `helm test` passed.
    pub fn passed(&self) -> bool {
        self.state == "upToDate" && matches!(self.test, Some(Ok(())))
    }

    /// Why it failed, for people.
    pub fn failure(&self) -> Option<String> {
        if self.passed() {
            return None;
        }
        Some(match (&self.test, self.state.as_str()) {
            (Some(Err(e)), _) => format!("helm test failed: {e}"),
            (_, "upToDate") => "helm test did not run".to_owned(),
            (_, state) if self.message.is_empty() => format!("state {state}"),
            (_, state) => format!("state {state}: {}", self.message),
        })
    }
}

/// A gate run's outcome.
#[derive(Debug, Clone)]
pub struct GateReport {
    /// The channel.
    pub channel: String,
    /// The verified index's sequence.
    pub sequence: u64,
    /// The verified index's digest.
    pub index: Sha256Digest,
    /// The sequence the agent accepted (the status's `acceptedSequence`).
    pub accepted: Option<u64>,
    /// The agent's exit code.
    pub agent_exit: i32,
    /// The agent's standard error, for the JUnit report.
    pub agent_log: String,
    /// Per release, in index order.
    pub releases: Vec<ReleaseVerdict>,
}

impl GateReport {
    /// The agent accepted the verified sequence and every release passed.
    pub fn passed(&self) -> bool {
        self.accepted == Some(self.sequence)
            && !self.releases.is_empty()
            && self.releases.iter().all(ReleaseVerdict::passed)
    }

    /// One line per release, then the verdict.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for r in &self.releases {
            match r.failure() {
                None => out.push_str(&format!(
                    "ok    {} {} ({})\n",
                    r.name, r.version, r.namespace
                )),
                Some(why) => out.push_str(&format!(
                    "FAIL  {} {} ({}): {why}\n",
                    r.name, r.version, r.namespace
                )),
            }
        }
        if self.accepted != Some(self.sequence) {
            out.push_str(&format!(
                "the agent accepted {}, not {}#{}\n",
                self.accepted
                    .map_or_else(|| "no sequence".to_owned(), |s| format!("sequence {s}")),
                self.channel,
                self.sequence
            ));
        }
        let failed = self.releases.iter().filter(|r| !r.passed()).count();
        out.push_str(&format!(
            "gate {}#{} ({}): {}\n",
            self.channel,
            self.sequence,
            self.index,
            if self.passed() {
                format!("passed, {} release(s)", self.releases.len())
            } else {
                format!("FAILED, {failed} of {} release(s)", self.releases.len())
            }
        ));
        out
    }

    /// JUnit XML: one test suite, one test case per release.
    pub fn junit(&self) -> String {
        let failures = self.releases.iter().filter(|r| !r.passed()).count();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!(
            "<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">\n",
            xml(&format!("coxswain gate {}#{}", self.channel, self.sequence)),
            self.releases.len()
        ));
        for r in &self.releases {
            out.push_str(&format!(
                "  <testcase classname=\"{}\" name=\"{}\">",
                xml(&self.channel),
                xml(&format!("{} {}", r.name, r.version))
            ));
            if let Some(why) = r.failure() {
                out.push_str(&format!(
                    "\n    <failure message=\"{}\">{}</failure>\n  ",
                    xml(&crate::bounded::bounded(&why, 500)),
                    xml(&why)
                ));
            }
            out.push_str("</testcase>\n");
        }
        out.push_str(&format!(
            "  <system-err>{}</system-err>\n</testsuite>\n",
            xml(&self.agent_log)
        ));
        out
    }

    /// The record a CI signs when the gate passed.
    pub fn record(&self, checked: Timestamp) -> GateRecord {
        GateRecord {
            api_version: ApiVersion::V1,
            kind: GateRecordKind::GateRecord,
            channel: self.channel.clone(),
            sequence: self.sequence,
            index: self.index,
            passed: self.passed(),
            checked,
            releases: self
                .releases
                .iter()
                .map(|r| GateRelease {
                    name: r.name.clone(),
                    version: r.version.clone(),
                    passed: r.passed(),
                })
                .collect(),
        }
    }
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot hold.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// Runs the gate; see the module documentation.
pub async fn gate(opts: &GateOptions) -> Result<GateReport, GateError> {
    // 1. The channel verifies, as the test cluster's agent will check it.
    let verify_err = |reason: String| GateError::Verify {
        channel: opts.channel.clone(),
        site: opts.site.clone(),
        reason,
    };
    if !(opts.site.starts_with("http://") || opts.site.starts_with("https://")) {
        return Err(verify_err(
            "the gate needs the site's http(s) URL, which the agent reads (serve a directory with `coxswain serve`)".to_owned(),
        ));
    }
    let site = Site::open(&opts.site, crate::site::Limits::default())
        .map_err(|e| verify_err(describe(&e)))?;
    let verify = SiteVerifyOptions {
        anchor: opts.trust.clone(),
        anchor_origin: opts.trust_origin.clone(),
        channel: opts.channel.clone(),
        min_sequence: 0,
        now: Timestamp::now(),
        archive_limits: crate::chart::ArchiveLimits::default(),
        deadline: crate::site_verify::DEFAULT_VERIFY_DEADLINE,
    };
    let report = verify_site(&site, &verify)
        .await
        .map_err(|e| verify_err(describe(&e)))?;
    if !report.is_ok() {
        return Err(verify_err(report.render()));
    }
    let index = report.index.verified.index().clone();
    let digest = report.index.verified.digest();

    // 2. The test cluster is subscribed.
    let client = client(opts).await?;
    let cluster = |what: &str, e: kube::Error| GateError::Cluster(format!("{what}: {e}"));
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            &opts.namespace,
            &apply,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": opts.namespace}})),
        )
        .await
        .map_err(|e| cluster(&format!("namespace {}", opts.namespace), e))?;
    let trust_text = String::from_utf8(opts.trust.clone())
        .map_err(|_| GateError::Cluster(format!("{} is not UTF-8", opts.trust_origin)))?;
    let trust_name = format!("{}-trust", opts.name);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &opts.namespace);
    config_maps
        .patch(
            &trust_name,
            &apply,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": trust_name},
                "data": {"root.json": trust_text},
            })),
        )
        .await
        .map_err(|e| cluster(&format!("ConfigMap {}/{trust_name}", opts.namespace), e))?;
    let subs: Api<ChannelSubscription> = Api::namespaced(client.clone(), &opts.namespace);
    subs.patch(
        &opts.name,
        &apply,
        &Patch::Apply(json!({
            "apiVersion": ChannelSubscription::api_version(&()),
            "kind": ChannelSubscription::kind(&()),
            "metadata": {"name": opts.name},
            "spec": {
                "server": opts.site,
                "channel": opts.channel,
                "trustRef": {"kind": "ConfigMap", "name": trust_name, "key": "root.json"},
            },
        })),
    )
    .await
    .map_err(|e| {
        cluster(
            &format!("ChannelSubscription {}/{}", opts.namespace, opts.name),
            e,
        )
    })?;

    // 3. The agent, once, as a subscribed cluster runs it.
    let (agent_exit, agent_log) = run_agent(opts).await?;

    // 4. What the agent left, per release; helm test for what is up to date.
    let sub = subs.get(&opts.name).await.map_err(|e| {
        cluster(
            &format!("ChannelSubscription {}/{}", opts.namespace, opts.name),
            e,
        )
    })?;
    let status = sub.status.unwrap_or_default();
    let status = serde_json::to_value(&status).unwrap_or_default();
    let accepted = status["acceptedSequence"].as_u64();
    let helm = HelmCli::detect(HelmConfig {
        binary: opts.helm.clone(),
        kubeconfig: opts.kubeconfig.clone(),
        ..HelmConfig::default()
    })
    .await
    .map_err(|e| GateError::Agent(format!("helm: {e}")))?;
    let mut releases = Vec::with_capacity(index.releases.len());
    for entry in &index.releases {
        let found = status["releases"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == entry.name.as_str()));
        let state = found
            .and_then(|r| r["state"].as_str())
            .unwrap_or("unknown")
            .to_owned();
        let message = found
            .and_then(|r| r["message"].as_str())
            .unwrap_or_default()
            .to_owned();
        let test = if state == "upToDate" {
            let options = TestOptions {
                timeout: opts.test_timeout,
                logs: false,
            };
            Some(
                helm.test(&entry.name, &entry.namespace, &options)
                    .await
                    .map(drop)
                    .map_err(|e| describe(&e)),
            )
        } else {
            None
        };
        releases.push(ReleaseVerdict {
            name: entry.name.clone(),
            namespace: entry.namespace.clone(),
            version: entry.chart.version.clone(),
            state,
            message,
            test,
        });
    }
    Ok(GateReport {
        channel: index.channel.clone(),
        sequence: index.sequence,
        index: digest,
        accepted,
        agent_exit,
        agent_log,
        releases,
    })
}

async fn client(opts: &GateOptions) -> Result<kube::Client, GateError> {
    let fail = |e: String| GateError::Cluster(e);
    let config = match &opts.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| fail(format!("kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|e| fail(format!("kubeconfig {}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| fail(format!("no kubeconfig: {e}")))?,
    };
    kube::Client::try_from(config).map_err(|e| fail(e.to_string()))
}

/// `coxswain agent --once` as a child: its exit code and (bounded) standard error.
async fn run_agent(opts: &GateOptions) -> Result<(i32, String), GateError> {
    let mut command = tokio::process::Command::new(&opts.agent);
    command
        .arg("agent")
        .arg("--once")
        .args(["--namespace", &opts.namespace])
        .arg("--helm")
        .arg(&opts.helm)
        .arg("--cache-dir")
        .arg(&opts.cache_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(k) = &opts.kubeconfig {
        command.arg("--kubeconfig").arg(k);
    }
    let child = command
        .spawn()
        .map_err(|e| GateError::Agent(format!("{}: {e}", opts.agent.display())))?;
    let output = tokio::time::timeout(opts.agent_timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            GateError::Agent(format!(
                "agent --once did not finish within {}s",
                opts.agent_timeout.as_secs()
            ))
        })?
        .map_err(|e| GateError::Agent(e.to_string()))?;
    let mut log = String::from_utf8_lossy(&output.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&output.stderr));
    // The tail is what explains a failure.
    let keep = 64 * 1024;
    if log.len() > keep {
        let mut cut = log.len() - keep;
        while !log.is_char_boundary(cut) {
            cut += 1;
        }
        log = format!("… {cut} bytes left out …\n{}", &log[cut..]);
    }
    Ok((output.status.code().unwrap_or(-1), log))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(name: &str, state: &str, test: Option<Result<(), String>>) -> ReleaseVerdict {
        ReleaseVerdict {
            name: name.into(),
            namespace: "ns".into(),
            version: "1.0.0".into(),
            state: state.into(),
            message: if state == "rolledBack" {
                "pods never ready".into()
            } else {
                String::new()
            },
            test,
        }
    }

    fn report(releases: Vec<ReleaseVerdict>, accepted: Option<u64>) -> GateReport {
        GateReport {
            channel: "beta".into(),
            sequence: 7,
            index: Sha256Digest::of(b"index"),
            accepted,
            agent_exit: 0,
            agent_log: "log <with> & \u{1} control".into(),
            releases,
        }
    }

    #[test]
    fn passes_only_when_every_release_is_up_to_date_and_tested_at_the_sequence() {
        let ok = || verdict("a", "upToDate", Some(Ok(())));
        assert!(report(vec![ok(), ok()], Some(7)).passed());
        assert!(!report(vec![ok()], Some(6)).passed(), "another sequence");
        assert!(!report(vec![], Some(7)).passed(), "nothing gated");
        assert!(!report(vec![ok(), verdict("b", "rolledBack", None)], Some(7)).passed());
        assert!(
            !report(
                vec![verdict("b", "upToDate", Some(Err("x".into())))],
                Some(7)
            )
            .passed()
        );
        assert!(!report(vec![verdict("b", "upToDate", None)], Some(7)).passed());
    }

    #[test]
    fn junit_names_each_failure_and_escapes_text() {
        let r = report(
            vec![
                verdict("web", "upToDate", Some(Ok(()))),
                verdict("sso", "rolledBack", None),
                verdict(
                    "wiki",
                    "upToDate",
                    Some(Err("pod \"wiki-test\" failed".into())),
                ),
            ],
            Some(7),
        );
        let x = r.junit();
        assert!(
            x.contains("<testsuite name=\"coxswain gate beta#7\" tests=\"3\" failures=\"2\">"),
            "{x}"
        );
        assert!(
            x.contains("<testcase classname=\"beta\" name=\"web 1.0.0\"></testcase>"),
            "{x}"
        );
        assert!(
            x.contains("<failure message=\"state rolledBack: pods never ready\">"),
            "{x}"
        );
        assert!(
            x.contains("helm test failed: pod &quot;wiki-test&quot; failed"),
            "{x}"
        );
        assert!(
            x.contains("<system-err>log &lt;with&gt; &amp;  control</system-err>"),
            "{x}"
        );
        let text = r.text();
        assert!(
            text.contains("FAIL  sso 1.0.0 (ns): state rolledBack: pods never ready"),
            "{text}"
        );
        assert!(text.ends_with("FAILED, 2 of 3 release(s)\n"), "{text}");
        let record = r.record(Timestamp::from_unix(1_800_000_000).unwrap());
        assert!(!record.passed);
        assert_eq!(record.releases.iter().filter(|r| r.passed).count(), 1);
    }
}
