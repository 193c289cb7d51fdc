//! Leader election: any number of agent replicas serve a namespace, exactly
//! one acts.
//!
//! The replicas compete for a `coordination.k8s.io/v1` Lease in the served
//! namespace through `kube-lease-manager` (it creates the Lease, renews it
//! `grace` before it expires and takes over a Lease that expired; a Lease
//! released on SIGTERM is taken at the next read, by a fresh manager). This
//! module turns its verdict into the [`Gate`]: a replica leads only while the
//! manager says so **and** the Lease as last read from the API server names
//! it with a renewal that has not expired by this replica's clock. So a leader
//! that cannot renew (API server unreachable, a stuck request) closes its gate
//! before another replica may take the Lease, and the executor's
//! [`Gate::may_mutate`] check stops it before its next helm call (fencing).
//!
//! A follower reconciles nothing: the controller hands it every change of a
//! subscription, and [`observe`] copies the subscription's `.status` (written
//! by the leader) into the web UI's view and the metrics. When a replica gains
//! the Lease, [`Leadership::gained`] makes the controller reconcile every
//! subscription at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::Stream;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::controller::Action;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use serde::Serialize;
use tokio::sync::watch;

use super::Context;
use super::gate::Gate;
use super::view::SpecSummary;
use crate::crd::ChannelSubscription;
use crate::metrics::{CheckReport, Metrics};

/// The Lease's name unless `--lease-name` says otherwise.
pub const DEFAULT_LEASE_NAME: &str = "coxswain-agent";

/// The Lease's duration unless `--lease-duration` says otherwise.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);

/// The shortest Lease duration: the holder renews `grace` (a third of it, at
/// least 1 s) before it expires, and the grace must be shorter than the duration.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(2);

/// Why leader election cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The duration is too short (or not whole seconds, which the Lease counts in).
    #[error(
        "a lease duration of {0:?} is too short: the Lease counts whole seconds and needs at least 2s"
    )]
    Duration(Duration),
    /// The identity is empty.
    #[error("the leader election identity is empty (set POD_NAME)")]
    Identity,
    /// The Lease could not be read or created.
    #[error("cannot read or create the Lease {namespace}/{name}")]
    Lease {
        /// The Lease's namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: LeaseManagerError,
    },
}

/// How the replicas elect their leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The Lease's name (in the served namespace).
    pub lease_name: String,
    /// How long a renewal holds, in whole seconds.
    pub duration: Duration,
    /// This replica's identity: the holder identity the Lease shows.
    pub identity: String,
}

impl Config {
    /// A checked configuration; the duration is rounded down to whole seconds.
    pub fn new(lease_name: &str, duration: Duration, identity: &str) -> Result<Self, LeaderError> {
        let duration = Duration::from_secs(duration.as_secs());
        if duration < MIN_LEASE_DURATION {
            return Err(LeaderError::Duration(duration));
        }
        if identity.trim().is_empty() {
            return Err(LeaderError::Identity);
        }
        Ok(Self {
            lease_name: lease_name.to_owned(),
            duration,
            identity: identity.to_owned(),
        })
    }

    /// How long before the Lease expires the holder renews it: a third of the
    /// duration, at least 1 s (and always shorter than the duration).
    pub fn grace(&self) -> Duration {
        Duration::from_secs((self.duration.as_secs() / 3).max(1))
    }

    /// How often the Lease is read to see who holds it: a fifth of the
    /// duration (so a renewal is seen well within the grace), at least 0.5 s.
    pub fn poll(&self) -> Duration {
        (self.duration / 5).max(Duration::from_millis(500))
    }
}

/// This replica's identity: `POD_NAME` when set (the Downward API), else
/// `<hostname>-<pid>`.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.trim().is_empty()
    {
        return pod;
    }
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!("{host}-{}", std::process::id())
}

/// Who leads, as the web UI, `/api/v1/status`, `/readyz` and the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderView {
    /// Whether leader election runs (off: this replica always acts).
    pub election: bool,
    /// Whether this replica acts.
    pub leading: bool,
    /// This replica's identity (with election).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The Lease's holder, while its renewal has not expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// `namespace/name` of the Lease (with election).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
}

impl Default for LeaderView {
    /// No election: this replica acts.
    fn default() -> Self {
        Self {
            election: false,
            leading: true,
            identity: None,
            holder: None,
            lease: None,
        }
    }
}

impl LeaderView {
    /// One sentence: `leader (this replica, agent-0)`, `follower; leader is
    /// agent-1`, `follower; no leader yet`; `None` without election.
    pub fn sentence(&self) -> Option<String> {
        if !self.election {
            return None;
        }
        let me = self.identity.as_deref().unwrap_or("?");
        Some(match (&self.holder, self.leading) {
            (_, true) => format!("leader (this replica, {me})"),
            (Some(holder), false) if holder != me => {
                format!("follower ({me}); leader is {holder}")
            }
            _ => format!("follower ({me}); no leader yet"),
        })
    }
}

/// The shared, observable [`LeaderView`] of this replica.
#[derive(Debug, Clone)]
pub struct Leadership {
    tx: Arc<watch::Sender<LeaderView>>,
}

impl Default for Leadership {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(LeaderView::default())),
        }
    }
}

impl Leadership {
    /// What is known now.
    pub fn view(&self) -> LeaderView {
        self.tx.borrow().clone()
    }

    /// Replaces the view (only when it changed, so watchers wake on changes).
    pub fn set(&self, view: LeaderView) {
        self.tx.send_if_modified(|v| {
            let changed = *v != view;
            *v = view;
            changed
        });
    }

    /// Yields once each time this replica starts leading.
    pub fn gained(&self) -> impl Stream<Item = ()> + Send + 'static {
        let rx = self.tx.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            loop {
                rx.changed().await.ok()?;
                if rx.borrow_and_update().leading {
                    return Some(((), rx));
                }
            }
        })
    }
}

/// The Lease as last read from the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// `spec.holderIdentity`.
    pub holder: Option<String>,
    /// `spec.renewTime` (else `acquireTime`).
    pub renewed: Option<SystemTime>,
    /// `spec.leaseDurationSeconds`.
    pub duration: Duration,
}

impl Observed {
    /// What `lease` says; `fallback` is the duration when it names none.
    pub fn of(lease: &Lease, fallback: Duration) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(fallback, Duration::from_secs);
        Self {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            renewed: spec
                .renew_time
                .or(spec.acquire_time)
                .map(|t| SystemTime::from(t.0)),
            duration,
        }
    }

    /// When the last renewal stops holding.
    pub fn expiry(&self) -> Option<SystemTime> {
        self.renewed?.checked_add(self.duration)
    }

    /// The holder, while its last renewal holds at `now`.
    pub fn holder_at(&self, now: SystemTime) -> Option<&str> {
        let until = self.expiry()?;
        (now < until).then_some(self.holder.as_deref()).flatten()
    }
}

/// Whether this replica leads at `now`: the lease manager says so and the
/// Lease, as last read, names `identity` with a renewal that still holds.
pub fn leads(
    manager_says: bool,
    observed: Option<&Observed>,
    identity: &str,
    now: SystemTime,
) -> bool {
    manager_says && observed.and_then(|o| o.holder_at(now)) == Some(identity)
}

/// The running election; [`Election::stop`] gives the Lease up.
#[derive(Debug)]
pub struct Election {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Election {
    /// Stops acting, releases the Lease (so another replica takes over at
    /// once, not after it expires) and waits for that, at most 5 s.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            tracing::warn!("the leader Lease was not released within 5s; it expires by itself");
        }
    }
}

/// Starts leader election: closes `gate` at once (this replica follows until
/// it holds the Lease), creates the Lease if it does not exist, and returns the
/// task that opens and closes the gate from then on. The task also stops
/// (and releases the Lease) when the gate is stopped (SIGTERM).
pub async fn elect(
    client: Client,
    namespace: &str,
    config: Config,
    gate: Gate,
    leadership: Leadership,
    metrics: Arc<Metrics>,
) -> Result<Election, LeaderError> {
    let base = LeaderView {
        election: true,
        leading: false,
        identity: Some(config.identity.clone()),
        holder: None,
        lease: Some(format!("{namespace}/{}", config.lease_name)),
    };
    gate.set_leading(false);
    metrics.set_leader(false);
    leadership.set(base.clone());
    let manager = Manager::start(&client, namespace, &config)
        .await
        .map_err(|source| LeaderError::Lease {
            namespace: namespace.to_owned(),
            name: config.lease_name.clone(),
            source,
        })?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let (stop, stop_rx) = watch::channel(false);
    tracing::info!(
        lease = %format!("{namespace}/{}", config.lease_name),
        identity = %config.identity,
        duration = ?config.duration,
        "leader election started; following until this replica holds the lease"
    );
    let mut follower = Follower {
        client,
        namespace: namespace.to_owned(),
        config,
        leases,
        gate,
        leadership,
        metrics,
        base,
        observed: None,
    };
    let task = tokio::spawn(async move {
        let manager = follower.run(manager, stop_rx).await;
        // Ending the manager releases the Lease if this replica holds it.
        if manager.end().await {
            tracing::info!("leader lease released");
        }
    });
    Ok(Election { stop, task })
}

/// A running `kube-lease-manager` (its `watch()` task): it takes the Lease
/// when it is free or expired, renews it while held, and says whether this
/// replica holds it. Idle (no task) when it could not start again.
struct Manager {
    says: watch::Receiver<bool>,
    task: Option<tokio::task::JoinHandle<kube_lease_manager::Result<LeaseManager>>>,
    /// Keeps an idle manager's channel open.
    _idle: Option<watch::Sender<bool>>,
}

impl Manager {
    async fn start(
        client: &Client,
        namespace: &str,
        config: &Config,
    ) -> Result<Self, LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client.clone(), &config.lease_name)
            .with_namespace(namespace)
            .with_identity(&config.identity)
            .with_duration(config.duration.as_secs())
            .with_grace(config.grace().as_secs())
            .build()
            .await?;
        let (says, task) = manager.watch().await;
        Ok(Self {
            says,
            task: Some(task),
            _idle: None,
        })
    }

    /// A manager that holds nothing and does nothing.
    fn idle() -> Self {
        let (tx, says) = watch::channel(false);
        Self {
            says,
            task: None,
            _idle: Some(tx),
        }
    }

    /// Whether it runs.
    fn runs(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops a manager that holds nothing without letting it "release" the
    /// Lease on its way out: its release is a patch without a precondition,
    /// which could clear the lock another replica has just taken.
    fn abandon(self) {
        if let Some(task) = self.task {
            task.abort();
        }
    }

    /// Closes its channel, so it releases the Lease if it holds it, and waits
    /// for that (at most 5 s); whether it ended cleanly.
    async fn end(self) -> bool {
        drop(self.says);
        let Some(task) = self.task else {
            return false;
        };
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => true,
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %e, "cannot release the leader lease; it expires by itself");
                false
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the lease manager task failed");
                false
            }
            Err(_) => {
                tracing::warn!("the lease manager did not end within 5s");
                false
            }
        }
    }
}

/// What wakes the loop.
enum Event {
    /// Time to read the Lease (a poll, or the manager changed its mind).
    Read,
    /// The Lease as last read has just expired.
    Expired,
    /// The lease manager's task ended.
    ManagerGone,
    /// SIGTERM or [`Election::stop`].
    Stop,
}

/// The loop that keeps the gate, the view and the metric in line with the Lease.
struct Follower {
    client: Client,
    namespace: String,
    config: Config,
    leases: Api<Lease>,
    gate: Gate,
    leadership: Leadership,
    metrics: Arc<Metrics>,
    base: LeaderView,
    observed: Option<Observed>,
}

impl Follower {
    /// Runs until stopped; returns the manager, for the caller to end it.
    async fn run(&mut self, mut manager: Manager, mut stop: watch::Receiver<bool>) -> Manager {
        let mut tick = tokio::time::interval(self.config.poll());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let gate = self.gate.clone();
        let stopping = gate.stopping();
        tokio::pin!(stopping);
        loop {
            // While this replica leads, the gate closes the moment its Lease
            // expires by the local clock, not at the next read.
            let expires_in = self
                .gate
                .is_leading()
                .then(|| self.observed.as_ref().and_then(Observed::expiry))
                .flatten()
                .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default());
            let event = tokio::select! {
                changed = manager.says.changed() => if changed.is_ok() { Event::Read } else { Event::ManagerGone },
                _ = tick.tick() => Event::Read,
                () = tokio::time::sleep(expires_in.unwrap_or_default()), if expires_in.is_some() => Event::Expired,
                // A stop, or the Election dropped.
                _ = stop.wait_for(|s| *s) => Event::Stop,
                () = &mut stopping => Event::Stop,
            };
            let before = self.observed.as_ref().and_then(|o| o.holder.clone());
            match event {
                Event::Read => self.read().await,
                Event::Expired => {}
                Event::ManagerGone => {
                    tracing::warn!("the lease manager stopped; starting it again");
                    manager = self.restart(manager).await;
                }
                Event::Stop => break,
            }
            let released = before.is_some_and(|h| h != self.config.identity)
                && self.observed.as_ref().is_some_and(|o| o.holder.is_none());
            if matches!(event, Event::Read) && (!manager.runs() || released) {
                // The leader released the Lease (SIGTERM): the manager sleeps
                // until the old renewal would have expired, a new one takes
                // the free Lease at once. Or the manager is not running.
                manager = self.restart(manager).await;
            }
            let manager_says = *manager.says.borrow();
            self.apply(manager_says);
        }
        self.apply(false);
        manager
    }

    /// Ends `old`, which holds nothing, and starts a new manager (idle when
    /// that fails: the next read tries again).
    async fn restart(&mut self, old: Manager) -> Manager {
        if old.runs() && *old.says.borrow() {
            return old;
        }
        old.abandon();
        match Manager::start(&self.client, &self.namespace, &self.config).await {
            Ok(new) => new,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the lease manager; trying again at the next read");
                Manager::idle()
            }
        }
    }

    /// Reads the Lease (waiting at most a poll period); an error keeps the
    /// last observation, which ages.
    async fn read(&mut self) {
        let get = self.leases.get_opt(&self.config.lease_name);
        match tokio::time::timeout(self.config.poll(), get).await {
            Ok(Ok(lease)) => {
                self.observed = lease.map(|l| Observed::of(&l, self.config.duration));
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "cannot read the leader lease"),
            Err(_) => tracing::debug!("reading the leader lease timed out"),
        }
    }

    fn apply(&mut self, manager_says: bool) {
        let now = SystemTime::now();
        let leading = leads(
            manager_says,
            self.observed.as_ref(),
            &self.config.identity,
            now,
        );
        if leading != self.gate.is_leading() {
            if leading {
                tracing::info!(identity = %self.config.identity, "this replica leads: it acts from now on");
            } else {
                tracing::warn!(identity = %self.config.identity, "this replica no longer leads: it stops before its next change and follows");
            }
        }
        self.gate.set_leading(leading);
        self.metrics.set_leader(leading);
        let holder = self
            .observed
            .as_ref()
            .and_then(|o| o.holder_at(now))
            .map(str::to_owned);
        if !leading && holder.as_deref() != self.leadership.view().holder.as_deref() {
            tracing::info!(
                leader = holder.as_deref().unwrap_or("none"),
                "leader lease holder"
            );
        }
        self.leadership.set(LeaderView {
            leading,
            holder,
            ..self.base.clone()
        });
    }
}

/// A follower's reconcile: nothing is checked or changed; the subscription's
/// status, as the leader wrote it, goes into the web UI's view and the
/// metrics. The controller calls it again on the next change.
pub(super) async fn observe(ctx: &Context, key: &str, sub: &ChannelSubscription) -> Action {
    let status = sub.status.clone();
    {
        let mut state = ctx.state.inner.write().await;
        let entry = state.entry(key.to_owned()).or_default();
        entry.view.spec = Some(SpecSummary::of(sub));
        entry.view.status = status.clone();
        entry.view.running = None;
        entry.view.next_check = None;
        entry.message = status
            .as_ref()
            .and_then(|s| s.last_check.as_ref())
            .map(|c| format!("{key}: {} (as the leader reported it)", c.message))
            .unwrap_or_default();
        // Should this replica lead later, it checks at once.
        entry.seen = None;
        entry.due = None;
    }
    if let Some(status) = &status {
        ctx.metrics.status_observed(&CheckReport {
            subscription: key,
            channel: &sub.spec.channel,
            interval: sub.spec.interval.to_std(),
            status,
            index_times: None,
            charts: &Default::default(),
        });
    }
    Action::await_change()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: Option<&str>, renewed: SystemTime, seconds: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                renew_time: Some(MicroTime(
                    k8s_openapi::jiff::Timestamp::try_from(renewed).expect("a test time"),
                )),
                lease_duration_seconds: Some(seconds),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn config_checks_the_duration_and_derives_grace_and_poll() {
        let c = Config::new("l", Duration::from_secs(15), "a").expect("valid");
        assert_eq!(c.grace(), Duration::from_secs(5));
        assert_eq!(c.poll(), Duration::from_secs(3));
        let c = Config::new("l", Duration::from_millis(6900), "a").expect("valid");
        assert_eq!(c.duration, Duration::from_secs(6));
        assert_eq!(c.grace(), Duration::from_secs(2));
        assert!(c.grace() < c.duration && c.poll() < c.grace());
        let c = Config::new("l", Duration::from_secs(2), "a").expect("valid");
        assert_eq!(c.grace(), Duration::from_secs(1));
        assert_eq!(c.poll(), Duration::from_millis(500));
        assert!(matches!(
            Config::new("l", Duration::from_millis(1999), "a"),
            Err(LeaderError::Duration(_))
        ));
        assert!(matches!(
            Config::new("l", Duration::from_secs(15), " "),
            Err(LeaderError::Identity)
        ));
    }

    #[test]
    fn a_lease_leads_only_while_its_renewal_holds() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let o = Observed::of(&lease(Some("a"), t0, 6), Duration::from_secs(15));
        assert_eq!(o.duration, Duration::from_secs(6));
        assert_eq!(o.expiry(), Some(t0 + Duration::from_secs(6)));
        assert_eq!(o.holder_at(t0 + Duration::from_secs(5)), Some("a"));
        assert_eq!(o.holder_at(t0 + Duration::from_secs(6)), None);
        assert!(leads(true, Some(&o), "a", t0 + Duration::from_secs(1)));
        // The manager's word alone is not enough, nor the Lease's alone.
        assert!(!leads(false, Some(&o), "a", t0 + Duration::from_secs(1)));
        assert!(!leads(true, None, "a", t0));
        assert!(!leads(true, Some(&o), "b", t0 + Duration::from_secs(1)));
        // A leader that could not renew stops leading when its lease expires,
        // before another replica may take it over.
        assert!(!leads(true, Some(&o), "a", t0 + Duration::from_secs(7)));
        // A released Lease has no holder.
        let free = Observed::of(&lease(None, t0, 6), Duration::from_secs(15));
        assert_eq!(free.holder_at(t0), None);
        // Without a duration the configured one counts.
        let mut l = lease(Some("a"), t0, 6);
        if let Some(s) = l.spec.as_mut() {
            s.lease_duration_seconds = None;
        }
        let o = Observed::of(&l, Duration::from_secs(15));
        assert_eq!(o.holder_at(t0 + Duration::from_secs(14)), Some("a"));
    }

    #[test]
    fn the_sentence_says_who_leads() {
        assert_eq!(LeaderView::default().sentence(), None);
        let mut v = LeaderView {
            election: true,
            leading: false,
            identity: Some("agent-0".to_owned()),
            holder: Some("agent-1".to_owned()),
            lease: Some("ns/coxswain-agent".to_owned()),
        };
        assert_eq!(
            v.sentence().as_deref(),
            Some("follower (agent-0); leader is agent-1")
        );
        v.holder = None;
        assert_eq!(
            v.sentence().as_deref(),
            Some("follower (agent-0); no leader yet")
        );
        v.leading = true;
        v.holder = Some("agent-0".to_owned());
        assert_eq!(
            v.sentence().as_deref(),
            Some("leader (this replica, agent-0)")
        );
    }

    #[tokio::test]
    async fn gained_yields_when_leading_starts() {
        use futures::StreamExt as _;
        let l = Leadership::default();
        let follower = LeaderView {
            election: true,
            leading: false,
            ..LeaderView::default()
        };
        l.set(follower.clone());
        let mut gained = Box::pin(l.gained());
        let early = tokio::time::timeout(Duration::from_millis(50), gained.next()).await;
        assert!(early.is_err(), "not while following");
        l.set(LeaderView {
            leading: true,
            ..follower.clone()
        });
        let got = tokio::time::timeout(Duration::from_secs(5), gained.next()).await;
        assert_eq!(got.ok().flatten(), Some(()));
    }
}
