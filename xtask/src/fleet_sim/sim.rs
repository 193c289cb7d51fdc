//! The event loop: simulated time in seconds, no sleeps. Each cluster's agent
//! checks the channel on its jittered interval and decides with the project's
//! real planner (`coxswain::plan::plan`, which consults the rollout gate);
//! the maintainers publish real `ChannelIndex` values, watch the outcome
//! reports of the first wave and pause the rollout when too many fail.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use anyhow::{Context as _, Result, bail};
use coxswain::format::index::{ChannelIndexKind, Health};
use coxswain::format::{
    ApiVersion, ChannelIndex, Document as _, IndexChart, IndexRelease, Sha256Digest, Timestamp,
};
use coxswain::helm::ReleaseStatus;
use coxswain::plan::{Action, InstalledRelease, Plan, RolloutSettings, Settings, SkipReason, plan};
use coxswain::publish::rollout_since;
use coxswain::rollout::{Duration, Gate, Maintenance, Rollout, Wave, fleet_position, wave_of};
use rand_core::{Rng as _, SeedableRng as _};
use rand_pcg::Pcg64;
use serde_json::{Map, Value, json};

use super::fleet::{Cluster, unit};

/// The simulation starts on Monday 2026-11-30 00:00 UTC.
pub const START_UNIX: i64 = 1_795_996_800;
/// The new release is published at 14:00 UTC on the first day (afternoon in
/// Europe, morning in the Americas): the origin of every figure.
pub const RELEASE_AT: i64 = 14 * HOUR;
/// The maintainers re-publish daily (expiry refresh): a new sequence with the
/// same entries, which must not restart the waves.
pub const REFRESH_EVERY: i64 = 24 * HOUR;
/// The maintainers pause when this share of the first wave's reports failed ...
pub const PAUSE_RATIO: f64 = 0.25;
/// ... and at least this many reports came in.
pub const PAUSE_MIN_REPORTS: usize = 10;
/// How long the maintainers take from the threshold to the paused index.
pub const REACTION: i64 = HOUR;
/// After the pause, the fixed release is published this much later.
pub const FIX_AFTER_PAUSE: i64 = 24 * HOUR;
/// The subscription's health timeout (the agent's default); the planner asks the gate
/// for room for helm's timeout (the same), its grace and the health check.
pub const HEALTH_TIMEOUT: Duration = Duration::from_mins(5);
/// A failing health check runs into its timeout, then the agent rolls back.
const FAILED_UPGRADE_SECS: i64 = 10 * 60 + 60;

const HOUR: i64 = 3600;
const CHANNEL: &str = "stable";
const SUBSCRIPTION: &str = "coxswain/stack";
/// The release that changes; `certs` below it stays.
const WEB: &str = "web";
const OLD: &str = "1.0.0";
const NEW: &str = "1.1.0";
const FIX: &str = "1.1.1";

/// The example: 5 % at once, 25 % after a day, everyone after three days.
pub fn waves() -> Vec<Wave> {
    [(5, 0), (25, 24), (100, 72)]
        .into_iter()
        .map(|(percent, hours)| Wave {
            percent,
            after: Duration::from_secs(hours * 3600),
        })
        .collect()
}

/// What is simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// The new release fails its health check on most clusters.
    pub bad_release: bool,
    /// The channel stages the release in waves.
    pub waves: bool,
    /// Simulated days after the start.
    pub days: u32,
    /// Run the planner at every check, even when nothing it reads changed
    /// (tests compare the two; the default skips such checks).
    pub exhaustive: bool,
}

/// What a run found. Times are hours after [`RELEASE_AT`].
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Hours until 50 / 90 / 99 % of the clusters ran the target (the release,
    /// or with a bad release the fix); `None`: not within the simulated days.
    pub t50: Option<f64>,
    pub t90: Option<f64>,
    pub t99: Option<f64>,
    /// Clusters that started an upgrade to the bad release.
    pub applied_bad: usize,
    /// Clusters left with a failed or unhealthy release at the end.
    pub broken: usize,
    /// When the maintainers published the pause (hours), if they did.
    pub paused_at: Option<f64>,
    /// When the fix was published (hours), if it was.
    pub fix_at: Option<f64>,
    /// Hours at which each cluster reached the target, sorted.
    pub updated: Vec<f64>,
    /// Hours at which each cluster that applied the bad release started it, sorted.
    pub bad_started: Vec<f64>,
    /// Agent checks simulated and planner runs made.
    pub checks: u64,
    pub plans: u64,
    /// Upgrades started, and how many failed (and were rolled back).
    pub upgrades: u64,
    pub rollbacks: u64,
    /// Every upgrade start: (cluster index, seconds after the start, version).
    pub starts: Vec<(usize, i64, String)>,
    /// Planner runs whose change the rollout gate held, by what held it.
    pub waits: std::collections::BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The maintainers publish (index into their schedule).
    Publish(usize),
    /// A cluster's agent checks the channel.
    Check(usize),
    /// A cluster's upgrade ends (health checked, rolled back if it failed).
    Done(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publication {
    /// Sequence 1: what every cluster runs at the start.
    Initial,
    /// The new release.
    Release,
    /// The same entries again (expiry refresh).
    Refresh,
    /// The same entries with the rollout paused.
    Pause,
    /// The fixed release, rollout running again.
    Fix,
}

/// The maintainers: what they published, what they learnt from reports.
struct Maintainers {
    waves: bool,
    indexes: Vec<ChannelIndex>,
    schedule: Vec<(i64, Publication)>,
    web: String,
    paused: bool,
    /// First-wave reports about the new release: (finished, failed).
    reports: (usize, usize),
    pause_planned: bool,
}

impl Maintainers {
    fn current(&self) -> Option<&ChannelIndex> {
        self.indexes.last()
    }

    fn publish(&mut self, at: i64, what: Publication) -> Result<()> {
        match what {
            Publication::Initial => self.web = OLD.to_owned(),
            Publication::Release => self.web = NEW.to_owned(),
            Publication::Refresh => {}
            Publication::Pause => self.paused = true,
            Publication::Fix => {
                self.web = FIX.to_owned();
                self.paused = false;
            }
        }
        let rollout = match (self.waves, self.paused) {
            (true, paused) => Some(Rollout {
                waves: waves(),
                paused,
            }),
            // Without waves the maintainers pause with a rollout of no waves.
            (false, true) => Some(Rollout {
                waves: Vec::new(),
                paused: true,
            }),
            (false, false) => None,
        };
        let published = timestamp(at)?;
        let sequence = self.indexes.len() as u64 + 1;
        let mut releases = vec![
            entry(
                "certs",
                "certs",
                "1.4.0",
                &[],
                json!({"issuer": "letsencrypt"}),
            ),
            entry(WEB, WEB, &self.web, &["certs"], json!({"replicas": 2})),
        ];
        // Each entry's rollout start, as publish carries it: kept while the entry is
        // unchanged, so the daily re-publish and the pause do not restart the waves.
        if let Some(prior) = self.indexes.last() {
            for r in &mut releases {
                let before = prior.releases.iter().find(|p| p.name == r.name);
                r.since = rollout_since(before, prior.published, r);
            }
        }
        let index = ChannelIndex {
            api_version: ApiVersion::V1,
            kind: ChannelIndexKind::ChannelIndex,
            channel: CHANNEL.to_owned(),
            sequence,
            published,
            expires: timestamp(at + 7 * 24 * HOUR)?,
            releases,
            withdrawn: Vec::new(),
            rollout,
        };
        index
            .validate()
            .with_context(|| format!("the simulated index {sequence} is not valid"))?;
        self.indexes.push(index);
        Ok(())
    }
}

fn entry(name: &str, namespace: &str, version: &str, deps: &[&str], values: Value) -> IndexRelease {
    let digest = Sha256Digest::of(format!("{name}-{version}.tgz").as_bytes());
    let values: Map<String, Value> = match values {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    IndexRelease {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        chart: IndexChart {
            name: name.to_owned(),
            version: version.to_owned(),
            url: format!("../../charts/sha256-{}.tgz", digest.hex()),
            digest,
            size: 4096,
        },
        values,
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
        health: Health::default(),
        upgrade_from: None,
        crds: None,
        backup: None,
        previous: Vec::new(),
        urgency: None,
        since: None,
        requires_approval: false,
    }
}

fn timestamp(at: i64) -> Result<Timestamp> {
    Timestamp::from_unix(START_UNIX + at).with_context(|| format!("time {at} s out of range"))
}

/// One cluster's agent and what helm knows there.
struct Agent {
    rng: Pcg64,
    /// The cluster's place in the fleet for this channel, and its maintenance settings.
    position: u32,
    maintenance: Option<Maintenance>,
    installed: Vec<InstalledRelease>,
    /// `status.failedSequence`: not retried until a newer sequence.
    failed_sequence: Option<u64>,
    /// The upgrade under way: (sequence, actions, whether it fails).
    running: Option<(u64, Vec<Action>, bool)>,
    /// What the last planner run depended on: the sequence, and until when its
    /// answer holds (`None`: until the next sequence).
    settled: Option<(u64, Option<i64>)>,
    updated_at: Option<i64>,
    bad_started_at: Option<i64>,
}

impl Agent {
    fn web_version(&self) -> Option<&str> {
        self.installed
            .iter()
            .find(|r| r.name == WEB)
            .map(|r| r.chart_version.as_str())
    }

    /// Left failed or unhealthy: a release helm does not call deployed, or the
    /// bad release running where its health check fails.
    fn broken(&self, cluster: &Cluster, scenario: Scenario) -> bool {
        let failed = self
            .installed
            .iter()
            .any(|r| r.status != ReleaseStatus::Deployed);
        let bad_running =
            scenario.bad_release && cluster.bad_fails && self.web_version() == Some(NEW);
        failed || bad_running
    }

    fn jitter(&mut self, interval: u64) -> i64 {
        // The agent waits its interval plus up to a tenth of it.
        (interval + self.rng.next_u64() % (interval / 10).max(1)) as i64
    }
}

/// The subscription's settings as the agent resolves them, with the rollout gate's
/// inputs: the time, the cluster's place and ring, its maintenance windows.
fn settings(cluster: &Cluster, agent: &Agent, now: i64) -> Result<Settings> {
    Ok(Settings {
        subscription: SUBSCRIPTION.to_owned(),
        rollout: Some(RolloutSettings {
            now: timestamp(now)?,
            position: agent.position,
            ring: cluster.ring,
            maintenance: agent.maintenance.clone(),
            default_health_timeout: HEALTH_TIMEOUT,
        }),
        ..Settings::default()
    })
}

/// Applies the actions of a plan as the executor would, all succeeding.
fn apply(installed: &mut Vec<InstalledRelease>, actions: &[Action]) {
    for action in actions {
        match installed
            .iter_mut()
            .find(|r| r.name == action.release && r.namespace == action.namespace)
        {
            Some(r) => {
                r.chart_version = action.target.chart.version.clone();
                r.revision += 1;
                r.fingerprint = Some(action.fingerprint.clone());
                r.status = ReleaseStatus::Deployed;
            }
            None => installed.push(InstalledRelease {
                name: action.release.clone(),
                namespace: action.namespace.clone(),
                chart_name: action.target.chart.name.clone(),
                chart_version: action.target.chart.version.clone(),
                status: ReleaseStatus::Deployed,
                revision: 1,
                fingerprint: Some(action.fingerprint.clone()),
                owner: Some(SUBSCRIPTION.to_owned()),
            }),
        }
    }
}

/// A failed upgrade of `failed`: helm made a revision, health failed, the
/// agent rolled back to the one before (a new revision with the old state).
fn roll_back(installed: &mut [InstalledRelease], failed: &Action) {
    if let Some(r) = installed
        .iter_mut()
        .find(|r| r.name == failed.release && r.namespace == failed.namespace)
    {
        r.revision += 2;
        r.status = ReleaseStatus::Deployed;
    }
}

fn hours(secs: i64) -> f64 {
    (secs - RELEASE_AT) as f64 / HOUR as f64
}

/// Hours until `share` of `total` clusters reached the target.
fn quantile(sorted: &[f64], total: usize, share: f64) -> Option<f64> {
    let needed = (share * total as f64).ceil() as usize;
    needed.checked_sub(1).and_then(|i| sorted.get(i)).copied()
}

/// Runs one scenario over `fleet`.
pub fn run(fleet: &[Cluster], scenario: Scenario) -> Result<Outcome> {
    if fleet.is_empty() {
        bail!("the fleet is empty: simulate at least one cluster");
    }
    let end = i64::from(scenario.days) * 24 * HOUR;
    let mut maintainers = Maintainers {
        waves: scenario.waves,
        indexes: Vec::new(),
        schedule: vec![
            (0, Publication::Initial),
            (RELEASE_AT, Publication::Release),
        ],
        web: OLD.to_owned(),
        paused: false,
        reports: (0, 0),
        pause_planned: false,
    };
    let mut at = RELEASE_AT + REFRESH_EVERY;
    while at < end {
        maintainers.schedule.push((at, Publication::Refresh));
        at += REFRESH_EVERY;
    }
    // Sequence 1, and every cluster installed from it by the planner.
    maintainers.publish(0, Publication::Initial)?;
    let first = maintainers
        .current()
        .context("no index after the first publish")?
        .clone();
    // The initial install, before any window or rollout.
    let install = Settings {
        subscription: SUBSCRIPTION.to_owned(),
        ..Settings::default()
    };
    let initial = plan(&first, &install, &[]).context("planning the initial install")?;
    let mut base = Vec::new();
    apply(&mut base, &initial.actions().cloned().collect::<Vec<_>>());

    let mut agents: Vec<Agent> = fleet
        .iter()
        .map(|c| Agent {
            rng: Pcg64::seed_from_u64(c.stream),
            position: fleet_position(&c.uid, CHANNEL),
            maintenance: c.maintenance(),
            installed: base.clone(),
            failed_sequence: None,
            running: None,
            settled: None,
            updated_at: None,
            bad_started_at: None,
        })
        .collect();

    let mut order = 0u64;
    let mut queue: BinaryHeap<Reverse<(i64, u64, Event)>> = BinaryHeap::new();
    let mut push = |queue: &mut BinaryHeap<_>, at: i64, event: Event| {
        order += 1;
        queue.push(Reverse((at, order, event)));
    };
    for (i, (at, _)) in maintainers.schedule.iter().enumerate().skip(1) {
        push(&mut queue, *at, Event::Publish(i));
    }
    for (i, (cluster, agent)) in fleet.iter().zip(&mut agents).enumerate() {
        let phase = (agent.rng.next_u64() % cluster.interval) as i64;
        push(&mut queue, phase, Event::Check(i));
    }

    let mut outcome = Outcome {
        t50: None,
        t90: None,
        t99: None,
        applied_bad: 0,
        broken: 0,
        paused_at: None,
        fix_at: None,
        updated: Vec::new(),
        bad_started: Vec::new(),
        checks: 0,
        plans: 0,
        upgrades: 0,
        rollbacks: 0,
        starts: Vec::new(),
        waits: Default::default(),
    };
    while let Some(Reverse((now, _, event))) = queue.pop() {
        if now >= end {
            break;
        }
        match event {
            Event::Publish(i) => {
                let what = maintainers.schedule[i].1;
                maintainers.publish(now, what)?;
                match what {
                    Publication::Pause => outcome.paused_at = Some(hours(now)),
                    Publication::Fix => outcome.fix_at = Some(hours(now)),
                    _ => {}
                }
            }
            Event::Check(c) => {
                outcome.checks += 1;
                let cluster = &fleet[c];
                let agent = &mut agents[c];
                let index = maintainers.current().context("no index published")?;
                let fresh = match agent.settled {
                    Some((sequence, until)) => {
                        sequence != index.sequence || until.is_some_and(|u| now >= u)
                    }
                    None => true,
                };
                if !fresh && !scenario.exhaustive {
                    let mut next = now + agent.jitter(cluster.interval);
                    if let Some((_, Some(wake))) = agent.settled {
                        next = next.min(wake.max(now) + 1);
                    }
                    push(&mut queue, next, Event::Check(c));
                    continue;
                }
                outcome.plans += 1;
                let decided: Plan = plan(index, &settings(cluster, agent, now)?, &agent.installed)
                    .with_context(|| format!("planning cluster {}", cluster.uid))?;
                for skipped in &decided.skipped {
                    if let SkipReason::Waiting(why) = &skipped.why {
                        *outcome.waits.entry(why.kind.label()).or_default() += 1;
                    }
                }
                let failed_here = agent.failed_sequence.is_some_and(|f| f >= index.sequence);
                if decided.is_noop() || failed_here {
                    // The planner's `wake`: when a release that waits may start; the
                    // agent checks again then if that comes before its next poll.
                    let wake = decided
                        .wake
                        .filter(|_| !failed_here)
                        .map(|t| t.datetime().unix_timestamp() - START_UNIX);
                    agent.settled = Some((index.sequence, wake));
                    let mut next = now + agent.jitter(cluster.interval);
                    if let Some(w) = wake {
                        next = next.min(w.max(now) + 1);
                    }
                    push(&mut queue, next, Event::Check(c));
                    continue;
                }
                // The executor runs the actions in order; each passes the rollout gate
                // again right before it starts (its start gate), as the agent's does.
                let mut started: Vec<Action> = Vec::new();
                let mut fails = false;
                let mut duration = 0i64;
                for action in decided.actions() {
                    let at = now + duration;
                    if let Some(g) = &action.start_gate
                        && let Gate::Wait(why) = g.check(timestamp(at)?)
                    {
                        *outcome.waits.entry(why.kind.label()).or_default() += 1;
                        break;
                    }
                    let version = action.target.chart.version.as_str();
                    outcome.starts.push((c, at, version.to_owned()));
                    outcome.upgrades += 1;
                    started.push(action.clone());
                    let bad = scenario.bad_release && action.release == WEB && version == NEW;
                    if bad && agent.bad_started_at.is_none() {
                        agent.bad_started_at = Some(at);
                    }
                    fails = if bad {
                        cluster.bad_fails
                    } else {
                        unit(&mut agent.rng) < cluster.fail_probability
                    };
                    if fails {
                        duration += FAILED_UPGRADE_SECS;
                        break;
                    }
                    duration += cluster.upgrade_secs as i64;
                }
                // Only what started: a failure stops the rest.
                agent.running = Some((index.sequence, started, fails));
                agent.settled = None;
                push(&mut queue, now + duration, Event::Done(c));
            }
            Event::Done(c) => {
                let cluster = &fleet[c];
                let agent = &mut agents[c];
                let Some((sequence, actions, fails)) = agent.running.take() else {
                    continue;
                };
                if fails {
                    // The actions before the last succeeded; the last failed and was rolled back.
                    if let Some((failed, done)) = actions.split_last() {
                        apply(&mut agent.installed, done);
                        roll_back(&mut agent.installed, failed);
                    }
                    agent.failed_sequence = Some(sequence);
                    outcome.rollbacks += 1;
                } else {
                    apply(&mut agent.installed, &actions);
                    agent.failed_sequence = None;
                }
                let touched_new = actions
                    .iter()
                    .any(|a| a.release == WEB && a.target.chart.version == NEW);
                if touched_new && first_wave(agent.position, cluster, scenario) {
                    maintainers.reports.0 += 1;
                    maintainers.reports.1 += usize::from(fails);
                    let (finished, failed) = maintainers.reports;
                    if !maintainers.pause_planned
                        && finished >= PAUSE_MIN_REPORTS
                        && failed as f64 / finished as f64 >= PAUSE_RATIO
                    {
                        maintainers.pause_planned = true;
                        let pause = now + REACTION;
                        let fix = pause + FIX_AFTER_PAUSE;
                        maintainers.schedule.push((pause, Publication::Pause));
                        push(
                            &mut queue,
                            pause,
                            Event::Publish(maintainers.schedule.len() - 1),
                        );
                        maintainers.schedule.push((fix, Publication::Fix));
                        push(
                            &mut queue,
                            fix,
                            Event::Publish(maintainers.schedule.len() - 1),
                        );
                    }
                }
                let target = if scenario.bad_release { FIX } else { NEW };
                if agent.updated_at.is_none() && agent.web_version() == Some(target) {
                    agent.updated_at = Some(now);
                }
                let next = now + agent.jitter(cluster.interval);
                push(&mut queue, next, Event::Check(c));
            }
        }
    }

    let mut updated: Vec<f64> = agents
        .iter()
        .filter_map(|a| a.updated_at)
        .map(hours)
        .collect();
    updated.sort_by(f64::total_cmp);
    let mut bad_started: Vec<f64> = agents
        .iter()
        .filter_map(|a| a.bad_started_at)
        .map(hours)
        .collect();
    bad_started.sort_by(f64::total_cmp);
    outcome.t50 = quantile(&updated, fleet.len(), 0.5);
    outcome.t90 = quantile(&updated, fleet.len(), 0.9);
    outcome.t99 = quantile(&updated, fleet.len(), 0.99);
    outcome.applied_bad = bad_started.len();
    outcome.broken = fleet
        .iter()
        .zip(&agents)
        .filter(|(c, a)| a.running.is_none() && a.broken(c, scenario))
        .count();
    outcome.updated = updated;
    outcome.bad_started = bad_started;
    Ok(outcome)
}

/// Whether `cluster` belongs to the first wave (the canaries); without waves the whole
/// fleet is one wave.
fn first_wave(position: u32, cluster: &Cluster, scenario: Scenario) -> bool {
    let rollout = Rollout {
        waves: if scenario.waves { waves() } else { Vec::new() },
        paused: false,
    };
    wave_of(&rollout, position, cluster.ring) == 0
}

#[cfg(test)]
mod tests {
    use super::super::fleet::{WindowKind, generate};
    use super::*;

    fn scenario(bad_release: bool, waves: bool) -> Scenario {
        Scenario {
            bad_release,
            waves,
            days: 7,
            exhaustive: false,
        }
    }

    /// The same clusters with no window and no freeze.
    fn anytime(mut fleet: Vec<Cluster>) -> Vec<Cluster> {
        for c in &mut fleet {
            c.window = WindowKind::None;
            c.freeze = false;
        }
        fleet
    }

    #[test]
    fn the_simulation_starts_on_a_monday_at_midnight_utc() {
        let t = jiff::Timestamp::from_second(START_UNIX)
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC);
        assert_eq!(t.weekday(), jiff::civil::Weekday::Monday);
        assert_eq!((t.hour(), t.minute(), t.second()), (0, 0, 0));
        assert_eq!(
            timestamp(RELEASE_AT).unwrap().to_string(),
            "2026-11-30T14:00:00Z"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_outcome() {
        let a = run(&generate(200, 11), scenario(true, true)).unwrap();
        let b = run(&generate(200, 11), scenario(true, true)).unwrap();
        assert_eq!(a, b);
        let c = run(&generate(200, 12), scenario(true, true)).unwrap();
        assert_ne!(a.starts, c.starts, "another seed, another run");
    }

    #[test]
    fn without_waves_or_windows_a_bad_release_reaches_nearly_every_cluster_and_none_stays_broken() {
        let fleet = anytime(generate(300, 5));
        let o = run(&fleet, scenario(true, false)).unwrap();
        assert!(o.applied_bad >= 285, "{}", o.applied_bad);
        assert_eq!(o.broken, 0);
        let fails = fleet.iter().filter(|c| c.bad_fails).count() as u64;
        assert!(
            o.rollbacks * 100 >= fails * 95,
            "{} rollbacks, {fails} failing clusters",
            o.rollbacks
        );
        assert!(o.paused_at.is_some(), "the maintainers pause");
        assert!(o.fix_at.is_some(), "and publish a fix");
        assert!(o.t99.is_some(), "the fix reaches the fleet: {o:?}");
    }

    #[test]
    fn a_good_release_reaches_the_fleet_without_a_pause() {
        let o = run(&generate(300, 5), scenario(false, false)).unwrap();
        assert_eq!(o.applied_bad, 0);
        assert_eq!(o.broken, 0);
        assert_eq!(o.paused_at, None);
        assert_eq!(o.updated.len(), 300, "every cluster runs it within 7 days");
        let t50 = o.t50.unwrap();
        assert!(t50 > 0.0 && t50 < o.t99.unwrap(), "{o:?}");
    }

    #[test]
    fn with_waves_a_bad_release_stops_at_the_canaries() {
        let fleet = generate(1000, 21);
        let waves = run(&fleet, scenario(true, true)).unwrap();
        let canaries = fleet
            .iter()
            .filter(|c| first_wave(fleet_position(&c.uid, CHANNEL), c, scenario(true, true)))
            .count();
        assert!((40..=90).contains(&canaries), "{canaries} canaries");
        assert!(waves.applied_bad > 0, "the canaries found it");
        for (c, _, version) in &waves.starts {
            let cluster = &fleet[*c];
            if version == NEW {
                assert!(
                    first_wave(
                        fleet_position(&cluster.uid, CHANNEL),
                        cluster,
                        scenario(true, true)
                    ),
                    "{} applied the bad release outside the first wave",
                    cluster.uid
                );
            }
        }
        assert!(
            waves.applied_bad <= canaries,
            "only canaries applied it: {} of {canaries}",
            waves.applied_bad
        );
        assert_eq!(waves.broken, 0);
        assert!(waves.paused_at.unwrap() < 24.0, "{waves:?}");
        assert!(
            waves.waits.get("paused").is_some_and(|n| *n > 0),
            "{:?}",
            waves.waits
        );
        // The same fleet with every window removed and no waves: nearly all of it
        // applies the bad release before the pause lands.
        let flat = run(&anytime(fleet.clone()), scenario(true, false)).unwrap();
        assert!(flat.applied_bad >= 900, "{}", flat.applied_bad);
        assert_eq!(flat.broken, 0);
        assert!(flat.applied_bad > 10 * waves.applied_bad);
    }

    /// The second of the day and the weekday at `at` in `zone`, read with
    /// jiff directly (not through the gate under test).
    fn local(zone: &str, at: i64) -> (i64, jiff::civil::Weekday) {
        let tz = jiff::tz::TimeZoneDatabase::bundled().get(zone).unwrap();
        let t = jiff::Timestamp::from_second(START_UNIX + at)
            .unwrap()
            .to_zoned(tz);
        let second = (i64::from(t.hour()) * 60 + i64::from(t.minute())) * 60;
        (second + i64::from(t.second()), t.weekday())
    }

    #[test]
    fn upgrades_start_only_inside_windows_that_fit_them_and_outside_freezes() {
        use jiff::civil::Weekday::{Saturday, Sunday, Thursday, Tuesday, Wednesday};
        let fleet = generate(400, 4);
        let o = run(&fleet, scenario(false, true)).unwrap();
        assert!(o.starts.len() >= 300, "{}", o.starts.len());
        // What the planner asks room for: helm's timeout, its grace, the health check.
        let needs = (2 * HEALTH_TIMEOUT.as_secs() + coxswain::plan::HELM_GRACE.as_secs()) as i64;
        let mut checked = 0;
        for (c, at, _) in &o.starts {
            let cluster = &fleet[*c];
            if cluster.freeze {
                assert!(
                    !(2 * 86_400 - needs..4 * 86_400).contains(at),
                    "{} in its freeze, or too close to it",
                    cluster.uid
                );
            }
            let (second, day) = local(cluster.zone, *at);
            let fits = |days: &[jiff::civil::Weekday], from: i64, hours: i64| {
                days.contains(&day)
                    && second >= from * 3600
                    && second + needs <= (from + hours) * 3600
            };
            let inside = match cluster.window {
                WindowKind::None => continue,
                WindowKind::Nightly { start_hour } => fits(&[day], i64::from(start_hour), 4),
                WindowKind::Weekend => fits(&[Saturday, Sunday], 8, 10),
                WindowKind::OfficeHours => fits(&[Tuesday, Wednesday, Thursday], 10, 6),
            };
            assert!(
                inside,
                "{} started at local second {second} on {day:?} outside {:?}",
                cluster.uid, cluster.window
            );
            checked += 1;
        }
        assert!(checked > 200, "{checked}");
    }

    #[test]
    fn weekend_windows_hold_a_release_until_saturday() {
        let mut fleet = anytime(generate(300, 8));
        let anytime = run(&fleet, scenario(false, false)).unwrap();
        for c in &mut fleet {
            c.window = WindowKind::Weekend;
        }
        let weekend = run(&fleet, scenario(false, false)).unwrap();
        assert!(anytime.t50.unwrap() < 2.0, "{:?}", anytime.t50);
        // Saturday 08:00 comes first in Sydney: Friday 21:00 UTC, 103 h after the release.
        let first = weekend
            .starts
            .iter()
            .map(|s| hours(s.1))
            .fold(f64::MAX, f64::min);
        assert!(first >= 103.0, "{first}");
        assert!(weekend.t50.unwrap() > 103.0, "{:?}", weekend.t50);
        assert!(
            weekend.updated.len() >= 295,
            "nearly all of it by Sunday: {}",
            weekend.updated.len()
        );
    }

    #[test]
    fn daily_republishing_does_not_restart_the_waves() {
        let o = run(&generate(300, 6), scenario(false, true)).unwrap();
        // Six re-publishes after the release; the last wave opens at 72 h all the same.
        assert!(o.updated.len() >= 285, "{} of 300 updated", o.updated.len());
        let after_72 = o.updated.iter().filter(|h| **h >= 72.0).count();
        let before_72 = o.updated.len() - after_72;
        assert!(
            after_72 > 150,
            "the last wave (75 %) comes at 72 h: {after_72}"
        );
        assert!(
            before_72 < 120,
            "the first two waves (25 %) before: {before_72}"
        );
    }

    #[test]
    fn skipping_checks_that_cannot_change_the_answer_changes_nothing() {
        let fleet = generate(40, 9);
        for (bad, waves) in [(true, true), (false, true), (true, false)] {
            let quick = run(&fleet, scenario(bad, waves)).unwrap();
            let full = run(
                &fleet,
                Scenario {
                    exhaustive: true,
                    ..scenario(bad, waves)
                },
            )
            .unwrap();
            assert!(
                full.plans > quick.plans * 10,
                "{} vs {}",
                full.plans,
                quick.plans
            );
            assert_eq!(quick.starts, full.starts, "bad {bad}, waves {waves}");
            assert_eq!(quick.updated, full.updated);
        }
    }
}
