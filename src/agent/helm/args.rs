//! The argument vectors of every helm command coxswain runs, as pure functions
//! of the helm major version and the options.
//!
//! Rules kept here, in one place:
//! - upgrade and rollback never get `--atomic`, `--rollback-on-failure` or a
//!   blocking `--wait`: coxswain runs its own health checks and rollbacks, and
//!   a helm killed while waiting leaves the release stuck in `pending-*`.
//!   Helm 4 gets `--wait=hookOnly` (its default, written out so a changed
//!   default cannot turn waiting on); Helm 3 without `--wait` still waits for
//!   hooks.
//! - values only ever arrive as a file path after `-f`.
//! - `upgrade` always passes `--reset-values`: otherwise helm silently reuses
//!   the previous revision's values whenever the new values are empty.
//! - Helm 4 renamed `--force` to `--force-replace`; Helm 3 `list` needs `--all`
//!   to show pending and superseded releases, Helm 4 shows them by default and
//!   has no `--all`.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use super::{
    HelmMajor, ListScope, RollbackOptions, TemplateOptions, TestOptions, UninstallOptions,
    UpgradeOptions,
};

/// Go's RFC 3339 layout with nanoseconds, for `helm list --time-format`.
const GO_RFC3339_NANO: &str = "2006-01-02T15:04:05.999999999Z07:00";

/// Connection flags added to every command that talks to the cluster.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connection<'a> {
    pub kubeconfig: Option<&'a Path>,
    pub kube_context: Option<&'a str>,
}

struct Argv(Vec<OsString>);

impl Argv {
    fn new(words: &[&str]) -> Self {
        Self(words.iter().map(OsString::from).collect())
    }
    fn push(&mut self, word: impl Into<OsString>) -> &mut Self {
        self.0.push(word.into());
        self
    }
    fn flag(&mut self, on: bool, flag: &str) -> &mut Self {
        if on {
            self.push(flag);
        }
        self
    }
    fn opt(&mut self, flag: &str, value: Option<impl Into<OsString>>) -> &mut Self {
        if let Some(v) = value {
            self.push(flag).push(v);
        }
        self
    }
    fn namespace(&mut self, ns: &str) -> &mut Self {
        self.push("--namespace").push(ns)
    }
    fn timeout(&mut self, t: Duration) -> &mut Self {
        self.push("--timeout").push(go_duration(t))
    }
    fn hook_only_wait(&mut self, major: HelmMajor) -> &mut Self {
        if major == HelmMajor::V4 {
            self.push("--wait=hookOnly");
        }
        self
    }
    fn force(&mut self, major: HelmMajor, on: bool) -> &mut Self {
        let flag = match major {
            HelmMajor::V3 => "--force",
            HelmMajor::V4 => "--force-replace",
        };
        self.flag(on, flag)
    }
    fn connection(mut self, c: &Connection<'_>) -> Vec<OsString> {
        self.opt("--kubeconfig", c.kubeconfig.map(Path::as_os_str));
        self.opt("--kube-context", c.kube_context);
        self.0
    }
}

/// Go parses `300s`; whole seconds, rounded up so a short timeout is never 0 (= helm's "no limit" in places).
pub(crate) fn go_duration(t: Duration) -> String {
    let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
    format!("{}s", secs.max(1))
}

/// A chart path helm cannot mistake for a flag.
fn chart_arg(chart: &Path) -> OsString {
    if chart.as_os_str().to_string_lossy().starts_with('-') {
        Path::new(".").join(chart).into_os_string()
    } else {
        chart.as_os_str().to_owned()
    }
}

pub(crate) fn version() -> Vec<OsString> {
    Argv::new(&["version", "--template", "{{.Version}}"]).0
}

pub(crate) fn upgrade(
    major: HelmMajor,
    conn: &Connection<'_>,
    release: &str,
    namespace: &str,
    chart: &Path,
    values_file: &Path,
    opts: &UpgradeOptions,
) -> Vec<OsString> {
    let mut a = Argv::new(&["upgrade", release]);
    a.push(chart_arg(chart))
        .push("--install")
        .namespace(namespace)
        .push("--reset-values")
        .push("-f")
        .push(values_file)
        .push("--output")
        .push("json")
        .timeout(opts.timeout)
        .hook_only_wait(major)
        .opt("--description", opts.description.as_deref())
        .flag(opts.create_namespace, "--create-namespace")
        .force(major, opts.force)
        .flag(opts.cleanup_on_fail, "--cleanup-on-fail")
        .flag(opts.skip_crds, "--skip-crds")
        .opt("--history-max", opts.history_max.map(|n| n.to_string()));
    a.connection(conn)
}

/// How `helm pull` reaches an OCI registry.
#[derive(Debug, Clone, Default)]
pub(crate) struct PullOptions<'a> {
    /// The registry speaks plain HTTP (`--plain-http`).
    pub plain_http: bool,
    /// The CA bundle for the registry's TLS certificate (`--ca-file`).
    pub ca_file: Option<&'a Path>,
}

/// `helm pull REF --version V --destination DIR`, no cluster involved.
pub(crate) fn pull(
    reference: &str,
    version: &str,
    destination: &Path,
    opts: &PullOptions<'_>,
) -> Vec<OsString> {
    let mut a = Argv::new(&["pull"]);
    // An OCI reference starts with `oci://`, so helm cannot take it for a flag.
    a.push(reference)
        .push("--version")
        .push(version)
        .push("--destination")
        .push(destination)
        .flag(opts.plain_http, "--plain-http")
        .opt("--ca-file", opts.ca_file.map(Path::as_os_str));
    a.0
}

pub(crate) fn rollback(
    major: HelmMajor,
    conn: &Connection<'_>,
    release: &str,
    namespace: &str,
    revision: u32,
    opts: &RollbackOptions,
) -> Vec<OsString> {
    let mut a = Argv::new(&["rollback", release]);
    a.push(revision.to_string())
        .namespace(namespace)
        .timeout(opts.timeout)
        .hook_only_wait(major)
        .force(major, opts.force)
        .flag(opts.cleanup_on_fail, "--cleanup-on-fail")
        .opt("--history-max", opts.history_max.map(|n| n.to_string()));
    if major == HelmMajor::V4 {
        // Helm 3's rollback has no --description; it always writes "Rollback to N".
        a.opt("--description", opts.description.as_deref());
    }
    a.connection(conn)
}

pub(crate) fn uninstall(
    major: HelmMajor,
    conn: &Connection<'_>,
    release: &str,
    namespace: &str,
    opts: &UninstallOptions,
) -> Vec<OsString> {
    let mut a = Argv::new(&["uninstall", release]);
    a.namespace(namespace)
        .timeout(opts.timeout)
        .hook_only_wait(major)
        .flag(opts.keep_history, "--keep-history")
        .flag(opts.ignore_not_found, "--ignore-not-found");
    a.connection(conn)
}

pub(crate) fn history(
    conn: &Connection<'_>,
    release: &str,
    namespace: &str,
    max: u32,
) -> Vec<OsString> {
    let mut a = Argv::new(&["history", release]);
    a.namespace(namespace)
        .push("--output")
        .push("json")
        .push("--max")
        .push(max.to_string());
    a.connection(conn)
}

pub(crate) fn status(
    conn: &Connection<'_>,
    release: &str,
    namespace: &str,
    revision: Option<u32>,
) -> Vec<OsString> {
    let mut a = Argv::new(&["status", release]);
    a.namespace(namespace)
        .push("--output")
        .push("json")
        .opt("--revision", revision.map(|r| r.to_string()));
    a.connection(conn)
}

pub(crate) fn list(major: HelmMajor, conn: &Connection<'_>, scope: &ListScope) -> Vec<OsString> {
    // --max 0 lifts helm's default limit of 256 releases.
    let mut a = Argv::new(&["list", "--output", "json", "--max", "0", "--time-format"]);
    a.push(GO_RFC3339_NANO);
    if major == HelmMajor::V3 {
        a.push("--all");
    }
    match scope {
        ListScope::Namespace(ns) => a.namespace(ns),
        ListScope::AllNamespaces => a.push("--all-namespaces"),
    };
    a.connection(conn)
}

pub(crate) fn get_manifest(
    conn: &Connection<'_>,
    release: &str,
    namespace: &str,
    revision: Option<u32>,
) -> Vec<OsString> {
    let mut a = Argv::new(&["get", "manifest", release]);
    a.namespace(namespace)
        .opt("--revision", revision.map(|r| r.to_string()));
    a.connection(conn)
}

pub(crate) fn test(
    conn: &Connection<'_>,
    release: &str,
    namespace: &str,
    opts: &TestOptions,
) -> Vec<OsString> {
    let mut a = Argv::new(&["test", release]);
    a.namespace(namespace)
        .timeout(opts.timeout)
        .flag(opts.logs, "--logs");
    a.connection(conn)
}

pub(crate) fn template(
    release: &str,
    namespace: &str,
    chart: &Path,
    values_file: &Path,
    opts: &TemplateOptions,
) -> Vec<OsString> {
    let mut a = Argv::new(&["template", release]);
    a.push(chart_arg(chart))
        .namespace(namespace)
        .push("-f")
        .push(values_file)
        .flag(opts.include_crds, "--include-crds")
        .flag(opts.is_upgrade, "--is-upgrade")
        .opt("--kube-version", opts.kube_version.as_deref());
    for api in &opts.api_versions {
        a.push("--api-versions").push(api);
    }
    // template renders offline; it needs no cluster connection.
    a.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(argv: &[OsString]) -> Vec<String> {
        argv.iter()
            .map(|w| w.to_str().unwrap().to_owned())
            .collect()
    }

    fn no_conn() -> Connection<'static> {
        Connection::default()
    }

    const FORBIDDEN: &[&str] = &[
        "--atomic",
        "--rollback-on-failure",
        "--wait",
        "--wait-for-jobs",
        "--set",
        "--set-string",
        "--set-json",
        "--set-file",
        "--values",
        "--reuse-values",
    ];

    fn assert_never_blocks_or_leaks(argv: &[String]) {
        for w in argv {
            for f in FORBIDDEN {
                assert_ne!(w, f, "{argv:?}");
            }
            if let Some(mode) = w.strip_prefix("--wait=") {
                assert_eq!(mode, "hookOnly", "{argv:?}");
            }
            assert!(!w.starts_with("--wait-for"), "{argv:?}");
        }
    }

    /// `helm upgrade wiki /cache/wiki.tgz` in `apps` with `opts`, as words.
    fn wiki_upgrade(major: HelmMajor, opts: &UpgradeOptions) -> Vec<String> {
        words(&upgrade(
            major,
            &no_conn(),
            "wiki",
            "apps",
            Path::new("/cache/wiki.tgz"),
            Path::new("/tmp/values-x.json"),
            opts,
        ))
    }

    #[test]
    fn upgrade_never_waits_rolls_back_or_puts_values_on_the_command_line() {
        let opts = UpgradeOptions {
            description: Some("coxswain stable#1".into()),
            timeout: Duration::from_secs(90),
            create_namespace: true,
            force: true,
            cleanup_on_fail: true,
            skip_crds: false,
            history_max: Some(10),
        };
        for major in [HelmMajor::V3, HelmMajor::V4] {
            let argv = wiki_upgrade(major, &opts);
            assert_never_blocks_or_leaks(&argv);
            assert_eq!(&argv[..3], ["upgrade", "wiki", "/cache/wiki.tgz"]);
            for must in [
                "--install",
                "--reset-values",
                "--create-namespace",
                "--cleanup-on-fail",
            ] {
                assert!(argv.iter().any(|w| w == must), "{must} missing: {argv:?}");
            }
            let after = |flag: &str| {
                let i = argv.iter().position(|w| w == flag).unwrap();
                argv[i + 1].clone()
            };
            assert_eq!(after("-f"), "/tmp/values-x.json");
            assert_eq!(after("--timeout"), "90s");
            assert_eq!(after("--description"), "coxswain stable#1");
            assert_eq!(after("--namespace"), "apps");
            assert_eq!(after("--output"), "json");
            assert_eq!(after("--history-max"), "10");
            // -f is the only way values get in: exactly one file argument.
            assert_eq!(argv.iter().filter(|w| *w == "-f").count(), 1);
            match major {
                HelmMajor::V3 => {
                    assert!(argv.contains(&"--force".to_owned()));
                    assert!(!argv.iter().any(|w| w.starts_with("--wait")));
                }
                HelmMajor::V4 => {
                    assert!(argv.contains(&"--force-replace".to_owned()));
                    assert!(!argv.contains(&"--force".to_owned()));
                    assert!(argv.contains(&"--wait=hookOnly".to_owned()));
                }
            }
        }
    }

    #[test]
    fn skip_crds_is_passed_to_both_majors_when_asked() {
        let opts = UpgradeOptions {
            skip_crds: true,
            ..UpgradeOptions::default()
        };
        for major in [HelmMajor::V3, HelmMajor::V4] {
            let argv = wiki_upgrade(major, &opts);
            assert_eq!(
                argv.iter().filter(|w| *w == "--skip-crds").count(),
                1,
                "{argv:?}"
            );
        }
    }

    #[test]
    fn pull_passes_plain_http_and_the_ca_file_only_when_set() {
        let dest = Path::new("/tmp/pull");
        let plain = words(&pull(
            "oci://r.example/charts/app",
            "1.2.3",
            dest,
            &PullOptions::default(),
        ));
        assert_eq!(
            plain,
            [
                "pull",
                "oci://r.example/charts/app",
                "--version",
                "1.2.3",
                "--destination",
                "/tmp/pull"
            ]
        );
        let http = words(&pull(
            "oci://r.example/charts/app",
            "1.2.3",
            dest,
            &PullOptions {
                plain_http: true,
                ca_file: None,
            },
        ));
        assert_eq!(&http[6..], ["--plain-http"]);
        let ca = words(&pull(
            "oci://r.example/charts/app",
            "1.2.3",
            dest,
            &PullOptions {
                plain_http: false,
                ca_file: Some(Path::new("/ci/ca.pem")),
            },
        ));
        assert_eq!(&ca[6..], ["--ca-file", "/ci/ca.pem"]);
    }

    #[test]
    fn defaults_add_no_optional_flags() {
        let argv = words(&upgrade(
            HelmMajor::V4,
            &no_conn(),
            "wiki",
            "apps",
            Path::new("wiki"),
            Path::new("v.json"),
            &UpgradeOptions::default(),
        ));
        for absent in [
            "--description",
            "--create-namespace",
            "--force-replace",
            "--history-max",
            "--kubeconfig",
        ] {
            assert!(!argv.contains(&absent.to_owned()), "{absent}: {argv:?}");
        }
    }

    #[test]
    fn rollback_and_uninstall_do_not_block() {
        for major in [HelmMajor::V3, HelmMajor::V4] {
            let opts = RollbackOptions {
                description: Some("back".into()),
                ..RollbackOptions::default()
            };
            let argv = words(&rollback(major, &no_conn(), "wiki", "apps", 3, &opts));
            assert_never_blocks_or_leaks(&argv);
            assert_eq!(&argv[..3], ["rollback", "wiki", "3"]);
            assert_eq!(
                argv.contains(&"--description".to_owned()),
                major == HelmMajor::V4
            );
            let argv = words(&uninstall(
                major,
                &no_conn(),
                "wiki",
                "apps",
                &UninstallOptions {
                    ignore_not_found: true,
                    ..UninstallOptions::default()
                },
            ));
            assert_never_blocks_or_leaks(&argv);
            assert!(argv.contains(&"--ignore-not-found".to_owned()));
        }
    }

    #[test]
    fn list_asks_for_every_state_and_parseable_times() {
        let v3 = words(&list(
            HelmMajor::V3,
            &no_conn(),
            &ListScope::Namespace("apps".into()),
        ));
        let v4 = words(&list(HelmMajor::V4, &no_conn(), &ListScope::AllNamespaces));
        assert!(v3.contains(&"--all".to_owned()));
        assert!(!v4.contains(&"--all".to_owned()));
        assert!(v4.contains(&"--all-namespaces".to_owned()));
        for argv in [&v3, &v4] {
            let i = argv.iter().position(|w| w == "--max").unwrap();
            assert_eq!(argv[i + 1], "0");
            assert!(argv.contains(&GO_RFC3339_NANO.to_owned()));
        }
    }

    #[test]
    fn connection_flags_are_appended() {
        let conn = Connection {
            kubeconfig: Some(Path::new("/etc/kube.conf")),
            kube_context: Some("test"),
        };
        let argv = words(&status(&conn, "wiki", "apps", Some(2)));
        assert_eq!(
            argv,
            [
                "status",
                "wiki",
                "--namespace",
                "apps",
                "--output",
                "json",
                "--revision",
                "2",
                "--kubeconfig",
                "/etc/kube.conf",
                "--kube-context",
                "test"
            ]
        );
    }

    #[test]
    fn chart_paths_cannot_become_flags() {
        let argv = words(&template(
            "r",
            "ns",
            Path::new("-evil"),
            Path::new("v.json"),
            &TemplateOptions::default(),
        ));
        assert_eq!(argv[2], "./-evil");
    }

    #[test]
    fn durations_are_whole_seconds_rounded_up() {
        assert_eq!(go_duration(Duration::from_secs(300)), "300s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "2s");
        assert_eq!(go_duration(Duration::ZERO), "1s");
    }
}
