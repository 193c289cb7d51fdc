//! `cargo xtask cluster up|down|status|stop-component|start-component`: a real
//! Kubernetes control plane on loopback (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler) with KWOK standing in for the
//! kubelets of a few fake nodes. One component of a running cluster can be
//! stopped and started again with the same command line (fault tests: an API
//! server outage).
//!
//! Everything a cluster owns lives in `<cache>/clusters/<name>/`:
//!
//! ```text
//! kubeconfig            admin credentials (O=system:masters), embedded
//! pki/                  ca.crt ca.key admin.crt admin.key sa.key sa.pub (0600)
//! ports                 component=port lines, for `cluster status`
//! kwok.yaml nodes.yaml  KWOK stages and the fake Node objects
//! data/etcd/            etcd's data (run with --unsafe-no-fsync)
//! logs/<component>.log  stdout and stderr of each component (appended to on a restart)
//! pids/<component>      the pid `down` stops, after checking it is still ours
//! cmdlines/<component>  the program and its arguments, one per line, for `start-component`
//! ```

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::paths;
use crate::tools::{self, Tools};

/// Name of the cluster `cluster up` starts when none is given.
pub const DEFAULT_NAME: &str = "coxswain";

/// KWOK stages: pod readiness conventions keyed on image tags (testdata/README.md).
const KWOK_STAGES: &str = include_str!("../testcluster/kwok-stages.yaml");

/// Fake nodes KWOK manages; two so that anti-affinity and spreading can schedule.
const NODES: [&str; 2] = ["kwok-node-0", "kwok-node-1"];

/// Components in start order; `down` stops them in reverse.
const COMPONENTS: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

/// How long one phase of `up` may take before the start counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// `cargo xtask cluster ...`
#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Start a cluster; the last stdout line is `export KUBECONFIG=<path>`.
    Up {
        /// Cluster name (several clusters can run side by side).
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
    },
    /// Stop every process of a cluster by its recorded pid and remove its state.
    Down {
        /// Cluster name.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
    },
    /// Show which components run, their ports and the kubeconfig; exit 1 unless all run.
    Status {
        /// Cluster name.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
    },
    /// Stop one component of a running cluster by its recorded pid (SIGTERM,
    /// SIGKILL after 10s), keeping its state for `start-component`.
    StopComponent {
        /// Cluster name.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
        /// The component to stop.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(COMPONENTS))]
        component: String,
        /// SIGKILL at once (a crash) instead of SIGTERM (a graceful stop).
        #[arg(long)]
        kill: bool,
    },
    /// Start a stopped component again with the command line it was first
    /// started with (same flags, ports, certificates and data); for
    /// kube-apiserver, wait until /readyz answers.
    StartComponent {
        /// Cluster name.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
        /// The component to start.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(COMPONENTS))]
        component: String,
    },
}

/// Entry point of `cargo xtask cluster`.
pub fn run(command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Up { name } => {
            let tools = tools::ensure()?;
            let kubeconfig = up(&name, &tools)?;
            println!("export KUBECONFIG={}", kubeconfig.display());
            Ok(())
        }
        ClusterCommand::Down { name } => down(&name),
        ClusterCommand::Status { name } => status(&name),
        ClusterCommand::StopComponent {
            name,
            component,
            kill,
        } => stop_component(&name, &component, kill),
        ClusterCommand::StartComponent { name, component } => {
            let tools = tools::ensure()?;
            start_component(&name, &component, &tools)
        }
    }
}

/// A cluster's state directory and what can be done with it.
struct Cluster {
    name: String,
    dir: PathBuf,
}

impl Cluster {
    fn open(name: &str) -> Result<Self> {
        let valid = !name.is_empty()
            && name.len() <= 40
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if !valid {
            bail!(
                "invalid cluster name {name:?}: use 1-40 lowercase letters, digits and '-', not starting with '-'"
            );
        }
        let dir = paths::cache_root()?.join("clusters").join(name);
        Ok(Self {
            name: name.to_owned(),
            dir,
        })
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    fn pki(&self, file: &str) -> String {
        self.dir.join("pki").join(file).display().to_string()
    }

    fn log_path(&self, component: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{component}.log"))
    }

    fn pid_path(&self, component: &str) -> PathBuf {
        self.dir.join("pids").join(component)
    }

    /// The recorded pid of `component` if that process is alive and still ours:
    /// its command line names this cluster's directory, so a recycled pid is never
    /// mistaken for a component.
    fn live_pid(&self, component: &str) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.pid_path(component))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The state letter follows the parenthesised command name; Z is a zombie.
        let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
        if state == 'Z' || state == 'X' {
            return None;
        }
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let needle = self.dir.as_os_str().as_encoded_bytes();
        cmdline
            .windows(needle.len())
            .any(|w| w == needle)
            .then_some(pid)
    }

    fn running(&self) -> Vec<(&'static str, Option<u32>)> {
        COMPONENTS.iter().map(|c| (*c, self.live_pid(c))).collect()
    }

    fn cmdline_path(&self, component: &str) -> PathBuf {
        self.dir.join("cmdlines").join(component)
    }

    /// Start `component` for the first time and record its command line, so
    /// `start-component` can start it again exactly so.
    fn spawn(&self, tools: &Tools, component: &str, args: &[String]) -> Result<u32> {
        let mut argv = vec![
            tools.control_plane.display().to_string(),
            component.to_owned(),
        ];
        argv.extend(args.iter().cloned());
        if let Some(arg) = argv.iter().find(|a| a.contains('\n')) {
            bail!("{component}: argument {arg:?} contains a newline and cannot be recorded");
        }
        let path = self.cmdline_path(component);
        write(&path, &format!("{}\n", argv.join("\n")))?;
        self.launch(component, &argv, false)
    }

    /// Run `argv` as `component` in a process group of its own, its output in
    /// its log (appended to when `append`), and record its pid.
    fn launch(&self, component: &str, argv: &[String], append: bool) -> Result<u32> {
        let Some((program, args)) = argv.split_first() else {
            bail!("{component}: empty command line");
        };
        let log_path = self.log_path(component);
        let log = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&log_path)
            .with_context(|| format!("open the log file {}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("reopen the log file {}", log_path.display()))?;
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new(program)
                .args(args)
                .current_dir(&self.dir)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err),
            // Its own process group: Ctrl-C on `cluster up` must not reach the
            // components, which outlive the xtask process.
            0,
        )
        .spawn()
        .with_context(|| format!("start {component} ({program})"))?;
        let pid = child.id();
        let pid_path = self.pid_path(component);
        fs::write(&pid_path, format!("{pid}\n"))
            .with_context(|| format!("record the pid in {}", pid_path.display()))?;
        // spawn() returns while the kernel may still be setting up the new
        // program's arguments (/proc/<pid>/cmdline reads empty): wait for them, or
        // live_pid would take the component for dead.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.live_pid(component).is_none() && Instant::now() < deadline {
            sleep(Duration::from_millis(5));
        }
        Ok(pid)
    }

    fn kubectl(&self, tools: &Tools, args: &[&str]) -> Result<Output> {
        Command::new(&tools.kubectl)
            .arg(format!("--kubeconfig={}", self.kubeconfig().display()))
            .arg("--request-timeout=5s")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run kubectl {}", args.join(" ")))
    }

    /// Poll `probe` until it holds; fail at once when a `watched` component dies,
    /// with the tail of its log.
    fn wait_until(
        &self,
        what: &str,
        watched: &[&str],
        mut probe: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        let started = Instant::now();
        loop {
            for component in watched {
                if self.live_pid(component).is_none() {
                    bail!(
                        "{component} of cluster {} exited while waiting for {what}; last lines of {}:\n{}",
                        self.name,
                        self.log_path(component).display(),
                        self.log_tail(component)
                    );
                }
            }
            if probe()? {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                let tails: Vec<String> = watched
                    .iter()
                    .map(|c| format!("--- {}:\n{}", self.log_path(c).display(), self.log_tail(c)))
                    .collect();
                bail!(
                    "cluster {}: {what} not reached within {}s; last log lines:\n{}",
                    self.name,
                    START_TIMEOUT.as_secs(),
                    tails.join("\n")
                );
            }
            sleep(Duration::from_millis(250));
        }
    }

    fn log_tail(&self, component: &str) -> String {
        let path = self.log_path(component);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(30)..].join("\n")
            }
            Err(err) => format!("(cannot read {}: {err})", path.display()),
        }
    }

    /// SIGTERM every live component in reverse start order, SIGKILL what is left
    /// after 10s. Returns the components that were stopped.
    fn stop_all(&self) -> Vec<&'static str> {
        COMPONENTS
            .iter()
            .rev()
            .filter(|component| self.stop(component, false))
            .copied()
            .collect()
    }

    /// Stop `component` if it runs: SIGTERM (SIGKILL at once when `kill`),
    /// SIGKILL after 10s. Returns whether it was running.
    fn stop(&self, component: &str, kill: bool) -> bool {
        let Some(pid) = self.live_pid(component) else {
            return false;
        };
        if !kill {
            signal(pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.live_pid(component).is_some() && Instant::now() < deadline {
                sleep(Duration::from_millis(100));
            }
        }
        if self.live_pid(component).is_some() {
            signal(pid, libc::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.live_pid(component).is_some() && Instant::now() < deadline {
                sleep(Duration::from_millis(50));
            }
        }
        true
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and has no memory effects; the pid was
    // checked (live_pid) to be one of this cluster's components just before.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Free loopback ports, all held open at once so they are distinct.
pub(crate) fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("bind a free loopback port"))
        .collect::<Result<_>>()?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .context("read the address of a bound port")?
            .port();
    }
    Ok(ports)
}

/// Start cluster `name` (restarting it if half of it runs) and return the path
/// of its kubeconfig. When it already runs and answers, nothing is restarted.
pub fn up(name: &str, tools: &Tools) -> Result<PathBuf> {
    up_with(name, tools, false)
}

/// The API server's audit policy of an audited cluster: one event per request
/// (when its response completes, or starts for a watch), metadata only, so no
/// request or response body (no Secret's content) reaches the log.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\n\
omitStages: [RequestReceived]\nrules:\n  - level: Metadata\n";

/// Where an audited cluster's API server writes its audit log (JSON lines).
pub fn audit_log(name: &str) -> Result<PathBuf> {
    Ok(Cluster::open(name)?.dir.join("logs").join("audit.log"))
}

/// Like [`up`]; with `audit`, the API server writes an audit log of every request
/// ([`audit_log`]), which `cargo xtask bench --compare` counts. A running cluster is
/// taken as it is.
pub fn up_with(name: &str, tools: &Tools, audit: bool) -> Result<PathBuf> {
    let cluster = Cluster::open(name)?;
    let started = Instant::now();
    let running = cluster.running();
    if running.iter().all(|(_, pid)| pid.is_some()) && api_ready(&cluster, tools) {
        eprintln!("cluster {name} is already running");
        return Ok(cluster.kubeconfig());
    }
    if running.iter().any(|(_, pid)| pid.is_some()) {
        eprintln!("cluster {name} is partly running; restarting it");
        cluster.stop_all();
    }
    if cluster.dir.exists() {
        fs::remove_dir_all(&cluster.dir)
            .with_context(|| format!("remove the old state {}", cluster.dir.display()))?;
    }
    for sub in ["pki", "logs", "pids", "cmdlines", "data"] {
        let dir = cluster.dir.join(sub);
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let result = start(&cluster, tools, audit);
    match result {
        Ok(()) => {
            eprintln!(
                "cluster {name} (Kubernetes {}) up in {:.1}s; state in {}",
                tools::KUBERNETES_VERSION,
                started.elapsed().as_secs_f64(),
                cluster.dir.display()
            );
            Ok(cluster.kubeconfig())
        }
        Err(err) => {
            let stopped = cluster.stop_all();
            Err(err.context(format!(
                "starting cluster {name} failed (stopped {}); logs kept in {}, \
                 `cargo xtask cluster down --name {name}` removes them",
                if stopped.is_empty() {
                    "nothing".to_owned()
                } else {
                    stopped.join(", ")
                },
                cluster.dir.join("logs").display()
            )))
        }
    }
}

fn api_ready(cluster: &Cluster, tools: &Tools) -> bool {
    cluster
        .kubectl(tools, &["get", "--raw", "/readyz"])
        .map(|out| out.status.success())
        .unwrap_or(false)
}

fn start(cluster: &Cluster, tools: &Tools, audit: bool) -> Result<()> {
    let [
        etcd_client,
        etcd_peer,
        apiserver,
        controller_manager,
        scheduler,
        kwok,
    ] = free_ports::<6>()?;
    let ports = format!(
        "etcd={etcd_client}\netcd-peer={etcd_peer}\nkube-apiserver={apiserver}\n\
         kube-controller-manager={controller_manager}\nkube-scheduler={scheduler}\nkwok={kwok}\n"
    );
    write(&cluster.dir.join("ports"), &ports)?;

    let pki = Command::new(&tools.control_plane)
        .arg("pki")
        .arg(format!("--dir={}", cluster.dir.join("pki").display()))
        .arg(format!("--server=https://127.0.0.1:{apiserver}"))
        .arg(format!("--cluster={}", cluster.name))
        .output()
        .context("run control-plane pki")?;
    if !pki.status.success() {
        bail!(
            "generating the PKI failed ({}): {}",
            pki.status,
            String::from_utf8_lossy(&pki.stderr).trim()
        );
    }
    let generated = cluster.dir.join("pki").join("kubeconfig");
    fs::rename(&generated, cluster.kubeconfig()).with_context(|| {
        format!(
            "move {} to {}",
            generated.display(),
            cluster.kubeconfig().display()
        )
    })?;
    let kubeconfig = cluster.kubeconfig().display().to_string();

    let peer_url = format!("http://127.0.0.1:{etcd_peer}");
    let client_url = format!("http://127.0.0.1:{etcd_client}");
    cluster.spawn(
        tools,
        "etcd",
        &[
            format!("--name={}", cluster.name),
            format!("--data-dir={}", cluster.dir.join("data/etcd").display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster={}={peer_url}", cluster.name),
            "--initial-cluster-state=new".into(),
            // Test data is thrown away: durability only costs time.
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ],
    )?;

    let tls = [
        format!("--tls-cert-file={}", cluster.pki("admin.crt")),
        format!("--tls-private-key-file={}", cluster.pki("admin.key")),
    ];
    let mut apiserver_args = vec![
        format!("--etcd-servers={client_url}"),
        "--etcd-prefix=/registry".into(),
        "--allow-privileged=true".into(),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        // The `kubernetes` Service cannot point at a loopback address, and
        // nothing in the fake pods talks to it.
        "--endpoint-reconciler-type=none".into(),
        format!("--secure-port={apiserver}"),
        format!("--client-ca-file={}", cluster.pki("ca.crt")),
        format!("--service-account-key-file={}", cluster.pki("sa.pub")),
        format!(
            "--service-account-signing-key-file={}",
            cluster.pki("sa.key")
        ),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        // Room for a Service per release of a 1,000-release stack (bench --compare).
        "--service-cluster-ip-range=10.0.0.0/16".into(),
        "--authorization-mode=Node,RBAC".into(),
        format!("--cert-dir={}", cluster.dir.join("pki").display()),
        "--profiling=false".into(),
    ];
    apiserver_args.extend(tls.iter().cloned());
    if audit {
        let policy = cluster.dir.join("audit-policy.yaml");
        write(&policy, AUDIT_POLICY)?;
        apiserver_args.extend([
            format!("--audit-policy-file={}", policy.display()),
            format!(
                "--audit-log-path={}",
                cluster.dir.join("logs").join("audit.log").display()
            ),
            "--audit-log-format=json".into(),
            "--audit-log-mode=blocking".into(),
            // Kept whole: the benchmark reads it from an offset.
            "--audit-log-maxsize=0".into(),
        ]);
    }
    cluster.spawn(tools, "kube-apiserver", &apiserver_args)?;
    cluster.wait_until(
        "the API server's /readyz",
        &["etcd", "kube-apiserver"],
        || Ok(api_ready(cluster, tools)),
    )?;

    let delegated = [
        format!("--kubeconfig={kubeconfig}"),
        format!("--authentication-kubeconfig={kubeconfig}"),
        format!("--authorization-kubeconfig={kubeconfig}"),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics".into(),
    ];
    let mut cm_args: Vec<String> = delegated.to_vec();
    cm_args.extend(tls.iter().cloned());
    cm_args.extend([
        format!("--secure-port={controller_manager}"),
        format!("--root-ca-file={}", cluster.pki("ca.crt")),
        format!(
            "--service-account-private-key-file={}",
            cluster.pki("sa.key")
        ),
        format!("--cluster-signing-cert-file={}", cluster.pki("ca.crt")),
        format!("--cluster-signing-key-file={}", cluster.pki("ca.key")),
        // Default 50s: after an API server outage of half a minute (a fault
        // test, `stop-component`) the node lifecycle controller would find the
        // KWOK leases older than that before it sees them renewed, mark the
        // nodes NotReady and their pods not Ready, which KWOK never undoes.
        "--node-monitor-grace-period=2m".into(),
    ]);
    cluster.spawn(tools, "kube-controller-manager", &cm_args)?;

    let mut scheduler_args: Vec<String> = delegated.to_vec();
    scheduler_args.extend(tls.iter().cloned());
    scheduler_args.push(format!("--secure-port={scheduler}"));
    cluster.spawn(tools, "kube-scheduler", &scheduler_args)?;

    let stages_path = cluster.dir.join("kwok.yaml");
    write(&stages_path, KWOK_STAGES)?;
    cluster.spawn(
        tools,
        "kwok",
        &[
            format!("--kubeconfig={kubeconfig}"),
            format!("--config={}", stages_path.display()),
            "--manage-all-nodes=true".into(),
            // KWOK renews a node's lease every quarter of its duration; the controller
            // manager marks a node NotReady (and its pods not Ready, which KWOK never
            // undoes) after 50s without a renewal, so a quarter must stay well below 50s.
            "--node-lease-duration-seconds=40".into(),
            format!("--server-address=127.0.0.1:{kwok}"),
            // Room for many pods; clear of the Service range 10.0.0.0/16.
            "--cidr=10.128.0.1/14".into(),
        ],
    )?;

    let nodes_path = cluster.dir.join("nodes.yaml");
    write(&nodes_path, &nodes_yaml())?;
    let all = &COMPONENTS[..];
    cluster.wait_until("the fake nodes to be created", all, || {
        let out = cluster.kubectl(tools, &["apply", "-f", &nodes_path.display().to_string()])?;
        Ok(out.status.success())
    })?;
    cluster.wait_until("KWOK to make the fake nodes Ready", all, || {
        let out = cluster.kubectl(
            tools,
            &[
                "get",
                "nodes",
                "-o",
                r#"jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
            ],
        )?;
        let ready = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.trim() == "True")
            .count();
        Ok(out.status.success() && ready == NODES.len())
    })?;
    for (component, port) in [
        ("kube-controller-manager", controller_manager),
        ("kube-scheduler", scheduler),
    ] {
        let server = format!("--server=https://127.0.0.1:{port}");
        cluster.wait_until(&format!("{component}'s /healthz"), all, || {
            let out = cluster.kubectl(tools, &[&server, "get", "--raw", "/healthz"])?;
            Ok(out.status.success())
        })?;
    }
    // Pods are rejected until the controller manager has created the namespace's
    // ServiceAccount; tests start right after `up`.
    cluster.wait_until("the default ServiceAccount", all, || {
        let out = cluster.kubectl(
            tools,
            &["get", "serviceaccount", "default", "-n", "default"],
        )?;
        Ok(out.status.success())
    })?;
    Ok(())
}

fn nodes_yaml() -> String {
    // No `kwok.x-k8s.io/node=fake:NoSchedule` taint: chart pods must schedule
    // without tolerations.
    NODES
        .iter()
        .map(|node| {
            format!(
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: {node}\n  labels:\n    \
                 type: kwok\n    kubernetes.io/hostname: {node}\n    kubernetes.io/os: linux\n    \
                 kubernetes.io/arch: amd64\n    node-role.kubernetes.io/agent: \"\"\n  \
                 annotations:\n    kwok.x-k8s.io/node: fake\n    \
                 node.alpha.kubernetes.io/ttl: \"0\"\nspec: {{}}\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn write(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).with_context(|| format!("write {}", path.display()))
}

/// Stop cluster `name` by its recorded pids and remove its state directory.
pub fn down(name: &str) -> Result<()> {
    let cluster = Cluster::open(name)?;
    if !cluster.dir.exists() {
        eprintln!(
            "cluster {name} is not running (no {})",
            cluster.dir.display()
        );
        return Ok(());
    }
    let stopped = cluster.stop_all();
    let left: Vec<&str> = cluster
        .running()
        .into_iter()
        .filter_map(|(c, pid)| pid.map(|_| c))
        .collect();
    if !left.is_empty() {
        bail!(
            "cluster {name}: {} still running after SIGKILL; state kept in {}",
            left.join(", "),
            cluster.dir.display()
        );
    }
    fs::remove_dir_all(&cluster.dir)
        .with_context(|| format!("remove {}", cluster.dir.display()))?;
    eprintln!(
        "cluster {name} down (stopped {})",
        if stopped.is_empty() {
            "nothing".to_owned()
        } else {
            stopped.join(", ")
        }
    );
    Ok(())
}

/// Stop one component of running cluster `name`; its state stays for
/// [`start_component`].
pub fn stop_component(name: &str, component: &str, kill: bool) -> Result<()> {
    let cluster = Cluster::open(name)?;
    let started = Instant::now();
    let Some(pid) = cluster.live_pid(component) else {
        bail!(
            "{component} of cluster {name} is not running (see `cargo xtask cluster status --name {name}`)"
        );
    };
    cluster.stop(component, kill);
    if let Some(pid) = cluster.live_pid(component) {
        bail!("{component} of cluster {name} (pid {pid}) still runs after SIGKILL");
    }
    eprintln!(
        "cluster {name}: {component} (pid {pid}) stopped with {} in {:.1}s",
        if kill { "SIGKILL" } else { "SIGTERM" },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Start a stopped component of cluster `name` again with its recorded
/// command line; for kube-apiserver, wait until /readyz answers.
pub fn start_component(name: &str, component: &str, tools: &Tools) -> Result<()> {
    let cluster = Cluster::open(name)?;
    let started = Instant::now();
    if let Some(pid) = cluster.live_pid(component) {
        bail!("{component} of cluster {name} already runs (pid {pid})");
    }
    let path = cluster.cmdline_path(component);
    let recorded = fs::read_to_string(&path).with_context(|| {
        format!(
            "read the command line of {component} from {}; a cluster started by an older \
             xtask has none: `cargo xtask cluster down --name {name}` and `up` again",
            path.display()
        )
    })?;
    let argv: Vec<String> = recorded.lines().map(str::to_owned).collect();
    let program = argv.first().map(PathBuf::from).unwrap_or_default();
    if !program.is_file() {
        bail!(
            "{component} of cluster {name} was started by {}, which no longer exists \
             (the tools were rebuilt): `cargo xtask cluster down --name {name}` and `up` again",
            program.display()
        );
    }
    let log_path = cluster.log_path(component);
    let marker = "--- restarted by `cargo xtask cluster start-component`\n";
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log_path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, marker.as_bytes()))
        .with_context(|| format!("append to {}", log_path.display()))?;
    let pid = cluster.launch(component, &argv, true)?;
    if component == "kube-apiserver" {
        cluster.wait_until("the API server's /readyz", &["etcd", component], || {
            Ok(api_ready(&cluster, tools))
        })?;
    } else {
        cluster.wait_until(&format!("{component} to start"), &[component], || Ok(true))?;
    }
    eprintln!(
        "cluster {name}: {component} started again (pid {pid}) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn status(name: &str) -> Result<()> {
    let cluster = Cluster::open(name)?;
    let ports = fs::read_to_string(cluster.dir.join("ports")).unwrap_or_default();
    let port_of = |component: &str| {
        ports
            .lines()
            .find_map(|l| l.strip_prefix(component)?.strip_prefix('='))
            .unwrap_or("?")
            .to_owned()
    };
    let running = cluster.running();
    for (component, pid) in &running {
        match pid {
            Some(pid) => println!(
                "{component:<24} running  pid {pid:<8} port {}",
                port_of(component)
            ),
            None => println!("{component:<24} stopped"),
        }
    }
    println!("state      {}", cluster.dir.display());
    println!("kubeconfig {}", cluster.kubeconfig().display());
    let down: Vec<&str> = running
        .iter()
        .filter_map(|(c, pid)| pid.is_none().then_some(*c))
        .collect();
    if !down.is_empty() {
        bail!(
            "cluster {name} is not running ({} stopped)",
            down.join(", ")
        );
    }
    Ok(())
}
