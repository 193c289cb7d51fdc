//! The cluster agent: one process serving every `ChannelSubscription` of its
//! namespace. Each reconcile pulls the channel's signed index, verifies it,
//! plans against what helm reports, upgrades in dependency order with health
//! checks and rollbacks, and reports through the status, Events and logs.
//!
//! - [`fetch`]: index, signatures, trust roots and charts (conditional GET,
//!   retries, content-addressed chart cache);
//! - [`installed`]: helm's view of the installed releases and fingerprints;
//! - [`executor`]: runs a plan (upgrade, health, test, rollback);
//! - [`status`]: the status, conditions and `--once` verdict (pure), and the
//!   server-side apply that writes it;
//! - [`events`]: Kubernetes Events;
//! - [`reconcile`]: one reconcile of one subscription, tying them together;
//! - [`gate`]: the check before every change (stopping, leadership);
//! - [`leader`]: leader election with a Lease, and what a follower shows;
//! - [`view`]: what the web UI and `/api/v1/status` show (the preview of the
//!   plan, a running plan's activity, health checks object by object).
//!
//!
//! The zone also holds what only the agent uses: [`plan`] (the pure planner),
//! [`helm`] (the Helm CLI shim and helm's release storage), [`health`] (the
//! health rules and their runner), [`crd`] (the `ChannelSubscription` type),
//! [`metrics`] and [`ui`].
//!
//! [`Context`] is shared by every reconcile; its [`AgentState`] is what the web
//! UI reads, and its [`Metrics`] what `/metrics` exposes (they only read).

pub mod backup;
pub mod crd;
pub mod crds;
pub mod diff;
pub mod events;
pub mod executor;
pub mod fetch;
pub mod gate;
pub mod health;
pub mod helm;
pub mod installed;
pub mod intent;
pub mod leader;
pub mod metrics;
pub mod observe;
pub mod ops;
pub mod plan;
pub mod reconcile;
pub mod repair;
pub mod restore;
pub mod schedule;
pub mod status;
pub mod ui;
pub mod view;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio::sync::RwLock;

use crate::crd::ChannelSubscription;
use crate::format::Timestamp;
use crate::health::HealthCheck;
use crate::helm::HelmCli;
use crate::metrics::Metrics;

pub use reconcile::Outcome;
pub use status::Verdict;

/// Why the agent could not do its job (a single reconcile's problems with the
/// channel are reported in the status, not here).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The status could not be written.
    #[error("cannot write the status of {subscription}")]
    WriteStatus {
        /// `namespace/name`.
        subscription: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// Subscriptions could not be listed.
    #[error("cannot list ChannelSubscriptions in namespace {namespace}")]
    List {
        /// The namespace.
        namespace: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// `--once` found nothing to do.
    #[error("no ChannelSubscription in namespace {namespace}")]
    NoSubscription {
        /// The namespace.
        namespace: String,
    },
}

/// What the agent knows about one subscription, for the UI and metrics.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionState {
    /// When the last reconcile finished.
    pub last_run: Option<Timestamp>,
    /// Its verdict.
    pub verdict: Option<Verdict>,
    /// Its sentence.
    pub message: String,
    /// The sequence it looked at.
    pub sequence: Option<u64>,
    /// How many reconciles ran.
    pub reconciles: u64,
    /// How many of them failed to write a status or list.
    pub errors: u64,
    /// What the last run saw of what an admin changes (to tell a real change
    /// from the agent's own status write).
    seen: Option<Seen>,
    /// What the web UI shows.
    pub view: view::View,
    /// When the next check is due.
    due: Option<Instant>,
}

/// Whether the agent can serve: `Err` says why not (yet).
pub type Readiness = Result<(), String>;

/// Shared, read-mostly state of the agent: per subscription (`namespace/name`).
#[derive(Debug, Clone)]
pub struct AgentState {
    inner: Arc<RwLock<BTreeMap<String, SubscriptionState>>>,
    ready: Arc<std::sync::RwLock<Readiness>>,
    leader: leader::Leadership,
}

impl Default for AgentState {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            ready: Arc::new(std::sync::RwLock::new(Err(
                "the agent has not reached the Kubernetes API yet".to_owned(),
            ))),
            leader: leader::Leadership::default(),
        }
    }
}

impl AgentState {
    /// A copy of every subscription's state.
    pub async fn snapshot(&self) -> BTreeMap<String, SubscriptionState> {
        self.inner.read().await.clone()
    }

    /// Changes one subscription's view.
    pub async fn update_view(&self, key: &str, f: impl FnOnce(&mut view::View)) {
        let mut state = self.inner.write().await;
        f(&mut state.entry(key.to_owned()).or_default().view);
    }

    /// Adds a line to the running plan of a subscription, if one runs.
    pub async fn push_activity(
        &self,
        key: &str,
        release: Option<String>,
        message: String,
        done: bool,
    ) {
        self.update_view(key, |v| {
            if let Some(r) = v.running.as_mut() {
                r.push(view::Activity {
                    at: Timestamp::now(),
                    release,
                    message,
                    done,
                });
            }
        })
        .await;
    }

    /// Forgets subscriptions that no longer exist; returns their keys.
    pub async fn retain(&self, keys: &std::collections::BTreeSet<String>) -> Vec<String> {
        let mut state = self.inner.write().await;
        let gone: Vec<String> = state
            .keys()
            .filter(|k| !keys.contains(*k))
            .cloned()
            .collect();
        for key in &gone {
            state.remove(key);
        }
        gone
    }

    /// Whether the agent is ready (`/readyz`).
    pub fn readiness(&self) -> Readiness {
        match self.ready.read() {
            Ok(r) => r.clone(),
            Err(_) => Err("readiness lock poisoned".to_owned()),
        }
    }

    /// Who leads (leader election).
    pub fn leader(&self) -> &leader::Leadership {
        &self.leader
    }

    /// Sets the readiness.
    pub fn set_readiness(&self, readiness: Readiness) {
        if let Ok(mut r) = self.ready.write() {
            *r = readiness;
        }
    }
}

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// The helm binary.
    pub helm: HelmCli,
    /// The health checker.
    pub health: HealthCheck,
    /// The channel and chart fetcher (remembers ETags).
    pub fetcher: fetch::Fetcher,
    /// Events.
    pub events: events::Events,
    /// Where helm keeps its release records (Secrets or ConfigMaps).
    pub driver: crate::helm::storage::Driver,
    /// helm's release records decoded so far (what is installed is read
    /// from them, not from helm).
    pub records: installed::RecordCache,
    /// The namespace served.
    pub namespace: String,
    /// What the UI reads.
    pub state: AgentState,
    /// What `/metrics` exposes.
    pub metrics: Arc<Metrics>,
    /// Closed on SIGTERM or a lost lease: no new operation starts.
    pub gate: gate::Gate,
    /// This agent's identity in write-ahead intents ([`intent::holder`]).
    pub holder: String,
    /// How long a release stuck `pending-*` by an operation coxswain did not
    /// start is left alone before the agent repairs it.
    pub stuck_grace: Duration,
    /// Operations whose history entry a failed status write lost, per
    /// subscription: the next write that gets through records them.
    pub unwritten: UnwrittenHistory,
    /// The release the agent runs from (`--agent-release`): updated last.
    pub agent_release: Option<plan::ReleaseId>,
    /// The cluster's identity for staged rollouts (the `kube-system` namespace UID),
    /// read once, when a channel with waves first needs it.
    pub cluster_uid: tokio::sync::OnceCell<String>,
}

/// History entries waiting for a status write that gets through (an API
/// server outage fails the write that ends a check; the operations happened
/// and must not vanish from `status.history`). In memory: a killed agent
/// loses them, and its next start repairs from the write-ahead intents.
#[derive(Debug, Default)]
pub struct UnwrittenHistory(
    std::sync::Mutex<std::collections::HashMap<String, Vec<crd::Operation>>>,
);

impl UnwrittenHistory {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<crd::Operation>>> {
        // Plain data: a panic elsewhere while holding the lock leaves it usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes what waits for `subscription`.
    pub fn take(&self, subscription: &str) -> Vec<crd::Operation> {
        self.lock().remove(subscription).unwrap_or_default()
    }

    /// Keeps `operations` of `subscription` for its next status write.
    pub fn keep(&self, subscription: &str, operations: Vec<crd::Operation>) {
        if !operations.is_empty() {
            self.lock().insert(subscription.to_owned(), operations);
        }
    }
}

/// Default of [`Context::stuck_grace`]: longer than any helm call coxswain
/// makes by default (health timeout 5m plus helm's grace), so a live
/// operation of another tool is not taken for a killed one.
pub const DEFAULT_STUCK_GRACE: Duration = Duration::from_secs(15 * 60);

impl Context {
    /// The cluster's identity: the UID of the `kube-system` namespace (it lives as
    /// long as the cluster; other fleet updaters use it too). Read once per agent.
    pub async fn cluster_uid(&self) -> Result<&str, kube::Error> {
        self.cluster_uid
            .get_or_try_init(|| async {
                let api: kube::Api<k8s_openapi::api::core::v1::Namespace> =
                    kube::Api::all(self.client.clone());
                let ns = api.get("kube-system").await?;
                Ok(ns.metadata.uid.unwrap_or_default())
            })
            .await
            .map(String::as_str)
    }

    /// helm's release records, as [`installed::read_installed`] reads them.
    pub fn records(&self) -> installed::Records<'_> {
        installed::Records {
            client: &self.client,
            driver: self.driver,
            cache: &self.records,
        }
    }

    async fn record(
        &self,
        key: &str,
        sub: &ChannelSubscription,
        result: &Result<Outcome, AgentError>,
        next: Duration,
    ) {
        let mut state = self.state.inner.write().await;
        let entry = state.entry(key.to_owned()).or_default();
        entry.reconciles += 1;
        entry.last_run = Some(Timestamp::now());
        entry.seen = Some(Seen::of(sub));
        entry.due = Some(Instant::now() + next);
        entry.view.next_check =
            Timestamp::now().checked_add(crate::duration::Duration::from_secs(next.as_secs()));
        match result {
            Ok(o) => {
                entry.verdict = Some(o.verdict);
                entry.message = o.message.clone();
                entry.sequence = o.sequence;
            }
            Err(e) => {
                entry.errors += 1;
                entry.verdict = Some(Verdict::Error);
                entry.message = crate::site_verify::describe(e);
            }
        }
    }

    /// When the subscription is not due and nothing an admin changed (spec,
    /// retry annotation) is new: how long until it is due.
    async fn not_due(&self, key: &str, sub: &ChannelSubscription) -> Option<Duration> {
        let state = self.state.inner.read().await;
        let entry = state.get(key)?;
        if entry.seen.as_ref() != Some(&Seen::of(sub)) {
            return None;
        }
        let left = entry.due?.checked_duration_since(Instant::now())?;
        (!left.is_zero()).then_some(left)
    }
}

/// What an admin changes that starts a check at once: the spec (its
/// generation), the retry annotation and the approve annotation (an approval
/// must not wait for the next interval; annotations do not move the generation).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    generation: Option<i64>,
    retry: Option<String>,
    approve: Option<String>,
}

impl Seen {
    fn of(sub: &ChannelSubscription) -> Self {
        Self {
            generation: sub.metadata.generation,
            retry: sub.pending_retry().map(str::to_owned),
            approve: sub
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(crd::APPROVE_ANNOTATION))
                .cloned(),
        }
    }
}

/// Creates `dir` as a private (0700) directory and empties it: the values
/// files helm reads (0600, possibly secrets) live there, and a killed agent's
/// leftovers go at the next start.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // Files only: nothing else is ever put there, and a directory is not followed.
        if entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(dir.to_path_buf())
}

/// How soon a subscription with a release between two `upgradeFrom` hops is checked again.
const PROGRESS_RECHECK: Duration = Duration::from_secs(10);

/// The interval plus up to a tenth of random jitter, so clusters do not poll in lockstep.
pub fn with_jitter(interval: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    let spread = interval.as_millis() as u64 / 10;
    if spread == 0 || getrandom::fill(&mut bytes).is_err() {
        return interval;
    }
    interval + Duration::from_millis(u64::from_le_bytes(bytes) % spread)
}

async fn reconcile_arc(
    sub: Arc<ChannelSubscription>,
    ctx: Arc<Context>,
) -> Result<Action, AgentError> {
    let key = format!("{}/{}", sub.namespace().unwrap_or_default(), sub.name_any());
    if !ctx.gate.is_leading() {
        return Ok(leader::observe(&ctx, &key, &sub).await);
    }
    if let Some(left) = ctx.not_due(&key, &sub).await {
        return Ok(Action::requeue(left));
    }
    let result = reconcile::reconcile(&ctx, &sub).await;
    // A release stepping through upgradeFrom takes its next hop soon, not an
    // interval later; a failed reconcile (API server unreachable, status not
    // written) is due again when error_policy requeues it, or `not_due` would
    // turn that retry away until the interval has passed.
    let next = match &result {
        Ok(o) if o.verdict == Verdict::Progressing => PROGRESS_RECHECK,
        Ok(o) => {
            let poll = with_jitter(sub.spec.interval.to_std());
            // A wave or window that opens before the next poll wakes the check then.
            match o.wake {
                Some(at) => {
                    let left = at.datetime() - crate::format::Timestamp::now().datetime();
                    let left = Duration::from_secs(left.whole_seconds().max(1).unsigned_abs());
                    poll.min(left + Duration::from_secs(1))
                }
                None => poll,
            }
        }
        Err(_) => ERROR_RETRY,
    };
    ctx.record(&key, &sub, &result, next).await;
    match result {
        Ok(_) => Ok(Action::requeue(next)),
        Err(e) => Err(e),
    }
}

/// How soon a reconcile that failed (its status could not be written) runs again.
const ERROR_RETRY: Duration = Duration::from_secs(30);

fn error_policy(_sub: Arc<ChannelSubscription>, error: &AgentError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %crate::site_verify::describe(error), retry_seconds = ERROR_RETRY.as_secs(), "reconcile failed; retrying");
    Action::requeue(ERROR_RETRY)
}

/// Default grace period after SIGTERM: the running helm call and its health
/// check get this long before the agent records what it knows and exits;
/// shorter than a pod's default `terminationGracePeriodSeconds` (30 s).
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(20);

/// Resolves at the first SIGTERM or ctrl-c, after closing the gate (no new
/// operation starts; the running health check ends unconfirmed after
/// `grace`). Later signals are logged and change nothing: a running helm
/// call is never killed by choice.
pub async fn stop_signal(gate: gate::Gate, grace: Duration) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    next_signal(term.as_mut()).await;
    tracing::info!(
        grace_seconds = grace.as_secs(),
        "stopping: no new operation starts; the running one finishes or is recorded for the next start"
    );
    gate.stop(grace);
    tokio::spawn(async move {
        loop {
            next_signal(term.as_mut()).await;
            tracing::warn!("already stopping; a running helm call is never killed by choice");
        }
    });
}

/// The next SIGTERM (when it can be listened to) or ctrl-c.
async fn next_signal(term: Option<&mut tokio::signal::unix::Signal>) {
    match term {
        Some(t) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Serves every subscription of the namespace until SIGTERM or ctrl-c.
pub async fn run(ctx: Arc<Context>, stop_grace: Duration) {
    let api: Api<ChannelSubscription> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    tracing::info!(namespace = %ctx.namespace, helm = %ctx.helm.version(), "agent started");
    tokio::spawn(watch_readiness(
        api.clone(),
        ctx.state.clone(),
        ctx.metrics.clone(),
    ));
    Controller::new(api, watcher::Config::default())
        .reconcile_all_on(ctx.state.leader().gained())
        .graceful_shutdown_on(stop_signal(ctx.gate.clone(), stop_grace))
        .run(reconcile_arc, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller");
            }
        })
        .await;
    tracing::info!("agent stopped");
}

/// How often `/readyz` asks the API server (one list of this namespace's subscriptions).
const READINESS_RECHECK: Duration = Duration::from_secs(30);

/// Keeps `/readyz` true while the API server answers a list of subscriptions
/// (checked every [`READINESS_RECHECK`]), and forgets subscriptions that were
/// deleted, in the UI and the metrics.
async fn watch_readiness(api: Api<ChannelSubscription>, state: AgentState, metrics: Arc<Metrics>) {
    loop {
        match api.list(&Default::default()).await {
            Ok(list) => {
                state.set_readiness(Ok(()));
                let keys = list
                    .items
                    .iter()
                    .map(|s| format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any()))
                    .collect();
                for gone in state.retain(&keys).await {
                    metrics.forget(&gone);
                }
            }
            Err(e) => state.set_readiness(Err(format!(
                "cannot list ChannelSubscriptions: {}",
                crate::site_verify::describe(&e)
            ))),
        }
        tokio::time::sleep(READINESS_RECHECK).await;
    }
}

/// One reconcile of every subscription of the namespace, oldest first; the
/// outcomes, or an error when there is none or they cannot be listed.
pub async fn run_once(ctx: &Context) -> Result<Vec<Result<Outcome, AgentError>>, AgentError> {
    let api: Api<ChannelSubscription> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let list = api
        .list(&Default::default())
        .await
        .map_err(|source| AgentError::List {
            namespace: ctx.namespace.clone(),
            source,
        })?;
    if list.items.is_empty() {
        return Err(AgentError::NoSubscription {
            namespace: ctx.namespace.clone(),
        });
    }
    let mut subs = list.items;
    // Oldest first: a release two subscriptions name belongs to the older one,
    // which must have reported it before the younger one looks.
    subs.sort_by_key(|s| {
        (
            s.metadata.creation_timestamp.clone().map(|t| t.0),
            s.name_any(),
        )
    });
    let mut out = Vec::new();
    for sub in &subs {
        let key = format!("{}/{}", ctx.namespace, sub.name_any());
        let result = reconcile::reconcile(ctx, sub).await;
        ctx.record(&key, sub, &result, sub.spec.interval.to_std())
            .await;
        out.push(result);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_is_0700_and_emptied() {
        use std::os::unix::fs::PermissionsExt as _;
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("values");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("left-by-a-killed-agent.yaml"), "password: x").unwrap();
        let got = private_dir(&dir).unwrap();
        assert_eq!(std::fs::read_dir(&got).unwrap().count(), 0);
        let mode = std::fs::metadata(&got).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn jitter_stays_within_a_tenth() {
        let base = Duration::from_secs(300);
        for _ in 0..100 {
            let d = with_jitter(base);
            assert!(d >= base && d < base + Duration::from_secs(30), "{d:?}");
        }
        assert_eq!(with_jitter(Duration::ZERO), Duration::ZERO);
    }
}
