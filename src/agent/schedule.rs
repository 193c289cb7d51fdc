//! Runs a dependency graph of jobs, at most `concurrency` at a time: a job
//! starts as soon as its own dependencies ended, not when a whole layer did,
//! so one slow release holds only what depends on it.
//!
//! The scheduler knows nothing of helm: the caller says, through
//! [`Hooks`], whether a job whose dependencies ended may start (or why it is
//! skipped) and whether a finished job counts as done for its dependents.
//! Jobs are considered in the order given (the plan's dependency order), so
//! with one slot the run is the plan's order.

use std::future::Future;

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;

/// Whether a job whose dependencies ended starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Run it.
    Run,
    /// Do not run it; its dependents see it as not done, for this reason
    /// (a clause: "was skipped", "not attempted").
    Skip(&'static str),
}

/// The caller's side of a run.
pub trait Hooks<T> {
    /// What a job's run returns.
    type Output;

    /// Called once per job, when every dependency ended and a slot is free:
    /// `blocker` is the first dependency that did not end done, with the
    /// reason it gave.
    fn admit(&mut self, job: &T, blocker: Option<(&T, &'static str)>) -> Admit;

    /// Called once per job that ran, when it ended: `None` when it is done
    /// (its dependents may run), else why not ("failed", "was not finished").
    fn finished(&mut self, job: &T, output: Self::Output) -> Option<&'static str>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Done,
    NotDone(&'static str),
}

/// Runs `jobs` (in dependency order: `depends_on[i]` lists indices of jobs
/// that job `i` waits for; only earlier ones count, so there is no cycle),
/// at most `concurrency` at once (at least one), through `start`.
pub async fn run<'a, T, H, F, Fut>(
    jobs: &'a [T],
    depends_on: &[Vec<usize>],
    concurrency: usize,
    hooks: &mut H,
    start: F,
) where
    H: Hooks<T>,
    F: Fn(&'a T) -> Fut,
    Fut: Future<Output = H::Output>,
{
    let concurrency = concurrency.max(1);
    let mut state = vec![State::Waiting; jobs.len()];
    let deps = |i: usize| {
        depends_on
            .get(i)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&d| d < i)
    };
    let mut running = FuturesUnordered::new();
    loop {
        // Start (or skip) every job whose dependencies ended, in order, while
        // slots are free. A skip frees its dependents at once, so look again.
        let mut progressed = true;
        while progressed && running.len() < concurrency {
            progressed = false;
            for i in 0..jobs.len() {
                if running.len() >= concurrency {
                    break;
                }
                if state[i] != State::Waiting
                    || deps(i).any(|d| matches!(state[d], State::Waiting | State::Running))
                {
                    continue;
                }
                let blocker = deps(i).find_map(|d| match state[d] {
                    State::NotDone(why) => Some((&jobs[d], why)),
                    _ => None,
                });
                match hooks.admit(&jobs[i], blocker) {
                    Admit::Run => {
                        state[i] = State::Running;
                        let fut = start(&jobs[i]);
                        running.push(async move { (i, fut.await) });
                    }
                    Admit::Skip(why) => {
                        state[i] = State::NotDone(why);
                        progressed = true;
                    }
                }
            }
        }
        let Some((i, output)) = running.next().await else {
            // Nothing runs and nothing more could start: every job ended.
            break;
        };
        state[i] = match hooks.finished(&jobs[i], output) {
            None => State::Done,
            Some(why) => State::NotDone(why),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A fake release: its name, and whether its operation fails.
    #[derive(Debug, Clone)]
    struct Job {
        name: &'static str,
        fails: bool,
    }

    fn job(name: &'static str) -> Job {
        Job { name, fails: false }
    }

    /// Records what the scheduler asked; skips what a not-done dependency blocks.
    #[derive(Default)]
    struct Recorder {
        events: Vec<String>,
        skipped: BTreeMap<&'static str, String>,
    }

    impl Hooks<Job> for Recorder {
        type Output = bool;

        fn admit(&mut self, job: &Job, blocker: Option<(&Job, &'static str)>) -> Admit {
            match blocker {
                Some((dep, why)) => {
                    self.skipped
                        .insert(job.name, format!("waits for `{}`, which {why}", dep.name));
                    Admit::Skip("was skipped")
                }
                None => {
                    self.events.push(format!("start {}", job.name));
                    Admit::Run
                }
            }
        }

        fn finished(&mut self, job: &Job, ok: bool) -> Option<&'static str> {
            self.events.push(format!("end {}", job.name));
            (!ok).then_some("failed")
        }
    }

    /// Operations that count how many run at once and wait until told.
    struct Ops {
        now: AtomicUsize,
        most: AtomicUsize,
        gates: Mutex<BTreeMap<&'static str, tokio::sync::oneshot::Receiver<()>>>,
    }

    impl Ops {
        fn new() -> Self {
            Self {
                now: AtomicUsize::new(0),
                most: AtomicUsize::new(0),
                gates: Mutex::new(BTreeMap::new()),
            }
        }

        /// `name` runs until the returned sender fires.
        fn hold(&self, name: &'static str) -> tokio::sync::oneshot::Sender<()> {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.gates.lock().unwrap().insert(name, rx);
            tx
        }

        async fn op(&self, job: &Job) -> bool {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(n, Ordering::SeqCst);
            let gate = self.gates.lock().unwrap().remove(job.name);
            match gate {
                Some(rx) => {
                    let _ = rx.await;
                }
                None => tokio::task::yield_now().await,
            }
            self.now.fetch_sub(1, Ordering::SeqCst);
            !job.fails
        }
    }

    /// certs -> ingress -> sso -> (wiki, files): the testdata stack.
    fn stack() -> (Vec<Job>, Vec<Vec<usize>>) {
        let jobs = vec![
            job("certs"),
            job("ingress"),
            job("sso"),
            job("wiki"),
            job("files"),
        ];
        (jobs, vec![vec![], vec![0], vec![1], vec![2], vec![2]])
    }

    fn position(events: &[String], what: &str) -> usize {
        events
            .iter()
            .position(|e| e == what)
            .unwrap_or_else(|| panic!("{what} not in {events:?}"))
    }

    /// Runs `jobs` through fresh [`Ops`]: what was recorded, and the most
    /// operations that ran at once.
    async fn run_all(jobs: &[Job], deps: &[Vec<usize>], concurrency: usize) -> (Recorder, usize) {
        let ops = Ops::new();
        let mut rec = Recorder::default();
        run(jobs, deps, concurrency, &mut rec, |j| ops.op(j)).await;
        (rec, ops.most.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn dependencies_end_before_their_dependents_start() {
        let (jobs, deps) = stack();
        let (rec, _) = run_all(&jobs, &deps, 4).await;
        let e = &rec.events;
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                assert!(
                    position(e, &format!("end {}", jobs[d].name))
                        < position(e, &format!("start {}", jobs[i].name)),
                    "{e:?}"
                );
            }
        }
        assert_eq!(e.len(), 10, "{e:?}");
    }

    #[tokio::test]
    async fn one_slot_runs_the_plan_order() {
        let (jobs, deps) = stack();
        let (rec, most) = run_all(&jobs, &deps, 1).await;
        let order: Vec<&str> = rec
            .events
            .iter()
            .filter_map(|e| e.strip_prefix("start "))
            .collect();
        assert_eq!(order, ["certs", "ingress", "sso", "wiki", "files"]);
        assert_eq!(most, 1);
    }

    #[tokio::test]
    async fn never_more_than_concurrency_at_once() {
        let jobs: Vec<Job> = ["a", "b", "c", "d", "e", "f", "g"]
            .into_iter()
            .map(job)
            .collect();
        let deps = vec![vec![]; jobs.len()];
        for concurrency in [1, 2, 3] {
            let (rec, most) = run_all(&jobs, &deps, concurrency).await;
            assert!(most <= concurrency);
            assert_eq!(rec.events.len(), 14);
        }
        // With enough slots, independent jobs do run together.
        let ops = Ops::new();
        let held: Vec<_> = jobs.iter().map(|j| ops.hold(j.name)).collect();
        let mut rec = Recorder::default();
        let all = run(&jobs, &deps, 3, &mut rec, |j| ops.op(j));
        let release = async {
            while ops.now.load(Ordering::SeqCst) < 3 {
                tokio::task::yield_now().await;
            }
            assert_eq!(ops.now.load(Ordering::SeqCst), 3);
            for tx in held {
                let _ = tx.send(());
                tokio::task::yield_now().await;
            }
        };
        tokio::join!(all, release);
        assert_eq!(ops.most.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failure_blocks_only_its_dependents_and_says_why() {
        // certs fails: ingress (its dependent) and sso, wiki, files (theirs)
        // are skipped; `other`, unrelated, runs.
        let mut jobs = stack().0;
        jobs[0].fails = true;
        jobs.push(job("other"));
        let deps = vec![vec![], vec![0], vec![1], vec![2], vec![2], vec![]];
        let (rec, _) = run_all(&jobs, &deps, 2).await;
        assert!(
            rec.events.contains(&"end other".to_owned()),
            "{:?}",
            rec.events
        );
        assert_eq!(rec.skipped["ingress"], "waits for `certs`, which failed");
        assert_eq!(rec.skipped["sso"], "waits for `ingress`, which was skipped");
        assert_eq!(rec.skipped["wiki"], "waits for `sso`, which was skipped");
        assert_eq!(rec.skipped["files"], "waits for `sso`, which was skipped");
        assert!(!rec.events.iter().any(|e| e == "start ingress"));
    }

    #[tokio::test]
    async fn a_slow_release_holds_only_its_dependents() {
        // slow <- after-slow; quick <- after-quick <- last. With layer
        // barriers, after-quick would wait for slow; here the whole quick
        // chain ends while slow still runs.
        let jobs: Vec<Job> = ["slow", "quick", "after-slow", "after-quick", "last"]
            .into_iter()
            .map(job)
            .collect();
        let deps = vec![vec![], vec![], vec![0], vec![1], vec![3]];
        let ops = Ops::new();
        let slow = ops.hold("slow");
        let events = Mutex::new(Vec::new());
        let mut rec = Recorder::default();
        let all = run(&jobs, &deps, 2, &mut rec, |j| {
            events.lock().unwrap().push(j.name);
            ops.op(j)
        });
        let release = async {
            // `last` starts while `slow` is still held.
            tokio::time::timeout(Duration::from_secs(10), async {
                while !events.lock().unwrap().contains(&"last") {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .expect("the quick chain waited for the slow release");
            let _ = slow.send(());
        };
        tokio::join!(all, release);
        let e = &rec.events;
        assert!(position(e, "start last") < position(e, "end slow"), "{e:?}");
        assert!(
            position(e, "end slow") < position(e, "start after-slow"),
            "{e:?}"
        );
    }
}
