//! The gate every operation that changes a release passes first: the agent
//! is not stopping and, with leader election, still holds the lease.
//!
//! SIGTERM closes the gate ([`Gate::stop`]): no new operation starts, the
//! running helm call is never killed by choice, and its health check may run
//! until the grace period ends ([`Gate::grace_over`]); an unconfirmed check is
//! left to the next start (the write-ahead intent says what to check).
//! Leader election opens and closes the gate with [`Gate::set_leading`]; the
//! executor asks [`Gate::may_mutate`] right before each mutating helm call
//! (fencing), so a replica that lost its lease stops before the next call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// Why the gate is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Closed {
    /// SIGTERM (or ctrl-c) arrived.
    #[error("the agent is stopping")]
    Stopping,
    /// Another replica holds the lease.
    #[error("this replica does not hold the leader lease")]
    NotLeader,
}

#[derive(Debug)]
struct Inner {
    leading: AtomicBool,
    /// `false` running, `true` stopping.
    stopping: watch::Sender<bool>,
    /// `true` once the grace period after the stop is over.
    grace_over: watch::Sender<bool>,
}

/// Shared by the controller, the executor and the leader election.
#[derive(Debug, Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// Open: leading (no election), not stopping.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                leading: AtomicBool::new(true),
                stopping: watch::Sender::new(false),
                grace_over: watch::Sender::new(false),
            }),
        }
    }

    /// Whether an operation that changes a release may start now.
    pub fn may_mutate(&self) -> Result<(), Closed> {
        if *self.inner.stopping.borrow() {
            Err(Closed::Stopping)
        } else if !self.is_leading() {
            Err(Closed::NotLeader)
        } else {
            Ok(())
        }
    }

    /// Leader election's verdict.
    pub fn set_leading(&self, leading: bool) {
        self.inner.leading.store(leading, Ordering::SeqCst);
    }

    /// Whether this replica acts.
    pub fn is_leading(&self) -> bool {
        self.inner.leading.load(Ordering::SeqCst)
    }

    /// Closes the gate for good; after `grace` the running health checks end
    /// unconfirmed. Returns at once.
    pub fn stop(&self, grace: Duration) {
        if self.inner.stopping.send_replace(true) {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            inner.grace_over.send_replace(true);
        });
    }

    /// Whether [`Gate::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        *self.inner.stopping.borrow()
    }

    /// Resolves when the agent is asked to stop.
    pub async fn stopping(&self) {
        let mut rx = self.inner.stopping.subscribe();
        // The sender lives in `inner`, which `self` keeps alive.
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Resolves when the grace period after a stop is over: a health check
    /// still running then ends unconfirmed.
    pub async fn grace_over(&self) {
        let mut rx = self.inner.grace_over.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_closes_the_gate_and_the_grace_ends_later() {
        let gate = Gate::new();
        assert_eq!(gate.may_mutate(), Ok(()));
        gate.set_leading(false);
        assert_eq!(gate.may_mutate(), Err(Closed::NotLeader));
        gate.set_leading(true);
        gate.stop(Duration::from_millis(50));
        assert_eq!(gate.may_mutate(), Err(Closed::Stopping));
        gate.stopping().await;
        let over = tokio::time::timeout(Duration::from_secs(5), gate.grace_over()).await;
        assert!(over.is_ok(), "the grace period ends");
        // A second stop changes nothing.
        gate.stop(Duration::from_secs(3600));
        gate.grace_over().await;
    }

    #[tokio::test]
    async fn grace_is_not_over_before_a_stop() {
        let gate = Gate::new();
        let early = tokio::time::timeout(Duration::from_millis(50), gate.grace_over()).await;
        assert!(early.is_err());
    }
}
