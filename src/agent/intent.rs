//! The write-ahead journal: before every helm call that changes a release the
//! agent records what it is about to do in `status.inFlight` (release,
//! operation, revision before, target fingerprint, sequence, start time,
//! holder), and removes it once the call and its health check ended. The
//! status write that records an intent carries everything the reconcile knows
//! so far, the accepted sequence first among it, so a kill at any point
//! leaves the anti-rollback floor and the interrupted operation on record.
//!
//! [`Journal`] is the small trait the executor and the repair talk to;
//! [`StatusJournal`] writes the subscription's status, [`MemoryJournal`] keeps
//! the intents in memory for unit tests.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use kube::Api;

use crate::crd::{ChannelSubscription, ChannelSubscriptionStatus, Intent};

/// Why an intent could not be recorded.
#[derive(Debug, thiserror::Error)]
#[error("cannot record the operation on {release} in the status of {subscription}")]
pub struct JournalError {
    /// `namespace/name` of the subscription.
    pub subscription: String,
    /// `namespace/release`.
    pub release: String,
    /// Why.
    #[source]
    pub source: kube::Error,
}

/// Where intents are recorded.
pub trait Journal: Send + Sync {
    /// Records `intent` (replacing one for the same release) before the operation starts.
    fn begin(&self, intent: Intent) -> BoxFuture<'_, Result<(), JournalError>>;
    /// Removes the intent of `namespace/release` once its operation ended.
    fn end<'a>(
        &'a self,
        namespace: &'a str,
        release: &'a str,
    ) -> BoxFuture<'a, Result<(), JournalError>>;
}

fn replace(in_flight: &mut Vec<Intent>, intent: Intent) {
    in_flight.retain(|i| !(i.namespace == intent.namespace && i.release == intent.release));
    in_flight.push(intent);
}

/// Records intents in the subscription's status (server-side apply of the
/// whole status, the same field manager as the reconcile's final write).
pub struct StatusJournal {
    api: Api<ChannelSubscription>,
    name: String,
    subscription: String,
    status: tokio::sync::Mutex<ChannelSubscriptionStatus>,
}

impl StatusJournal {
    /// Starts from `status` as the reconcile has it now (accepted sequence recorded).
    pub fn new(
        api: Api<ChannelSubscription>,
        namespace: &str,
        name: &str,
        status: ChannelSubscriptionStatus,
    ) -> Self {
        Self {
            api,
            name: name.to_owned(),
            subscription: format!("{namespace}/{name}"),
            status: tokio::sync::Mutex::new(status),
        }
    }

    /// Writes the status once as it is (the accepted sequence before the first change).
    pub async fn flush(&self) -> Result<(), kube::Error> {
        let status = self.status.lock().await;
        super::status::write_status(&self.api, &self.name, &status).await
    }

    /// The intents still recorded.
    pub async fn in_flight(&self) -> Vec<Intent> {
        self.status.lock().await.in_flight.clone()
    }

    async fn change(
        &self,
        release: String,
        f: impl FnOnce(&mut Vec<Intent>),
    ) -> Result<(), JournalError> {
        let mut status = self.status.lock().await;
        // Memory follows the cluster: a write that failed changes neither.
        let mut next = status.clone();
        f(&mut next.in_flight);
        super::status::write_status(&self.api, &self.name, &next)
            .await
            .map_err(|source| JournalError {
                subscription: self.subscription.clone(),
                release,
                source,
            })?;
        *status = next;
        Ok(())
    }
}

impl Journal for StatusJournal {
    fn begin(&self, intent: Intent) -> BoxFuture<'_, Result<(), JournalError>> {
        Box::pin(async move {
            let release = format!("{}/{}", intent.namespace, intent.release);
            self.change(release, |v| replace(v, intent)).await
        })
    }

    fn end<'a>(
        &'a self,
        namespace: &'a str,
        release: &'a str,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            self.change(format!("{namespace}/{release}"), |v| {
                v.retain(|i| !(i.namespace == namespace && i.release == release));
            })
            .await
        })
    }
}

/// Intents in memory (unit tests, and `Executor`s run without a cluster).
#[derive(Debug, Default, Clone)]
pub struct MemoryJournal {
    /// What is recorded now.
    pub in_flight: Arc<Mutex<Vec<Intent>>>,
    /// Every intent ever begun, in order.
    pub begun: Arc<Mutex<Vec<Intent>>>,
}

impl MemoryJournal {
    /// A copy of the intents recorded now.
    pub fn current(&self) -> Vec<Intent> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Journal for MemoryJournal {
    fn begin(&self, intent: Intent) -> BoxFuture<'_, Result<(), JournalError>> {
        self.begun
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(intent.clone());
        replace(
            &mut self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            intent,
        );
        Box::pin(async { Ok(()) })
    }

    fn end<'a>(
        &'a self,
        namespace: &'a str,
        release: &'a str,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|i| !(i.namespace == namespace && i.release == release));
        Box::pin(async { Ok(()) })
    }
}

/// This agent's name in intents: the pod's name when it runs in one
/// (`POD_NAME`, set by the chart), else host and process id.
pub fn holder() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}-{}", std::process::id())
}
