//! Kubernetes Events on the subscription: one for every upgrade, rollback,
//! skip and verification failure, so `kubectl describe channelsubscription`
//! tells the story. Publishing never fails a reconcile; a lost Event is logged.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use crate::crd::ChannelSubscription;

/// The `reportingController` of coxswain's Events.
pub const CONTROLLER: &str = "coxswain.dev/agent";

/// Event reasons (CamelCase, stable: alerts match on them).
pub mod reason {
    /// A release was installed and passed its health check.
    pub const INSTALLED: &str = "Installed";
    /// A release was upgraded and passed its health check.
    pub const UPGRADED: &str = "Upgraded";
    /// The CRDs of a release's chart were created or updated before its
    /// install or upgrade (its `crds` policy); the message names them.
    pub const CRDS_APPLIED: &str = "CrdsApplied";
    /// A Velero backup of a release's namespace completed before its upgrade;
    /// the message names the backup.
    pub const BACKED_UP: &str = "BackedUp";
    /// The backup before an upgrade failed or timed out (or Velero is not
    /// installed): the upgrade did not start.
    pub const BACKUP_FAILED: &str = "BackupFailed";
    /// A release whose upgrade was backed up first was rolled back: the
    /// message names the backup and the command that restores it.
    pub const RESTORE_AVAILABLE: &str = "RestoreAvailable";
    /// The backup before a failed upgrade was restored automatically (the
    /// rollback alone left the release unhealthy): the message says how it ended.
    pub const RESTORED: &str = "Restored";
    /// An install or upgrade failed (helm or the health check).
    pub const UPGRADE_FAILED: &str = "UpgradeFailed";
    /// A release was rolled back to the revision noted before its upgrade.
    pub const ROLLED_BACK: &str = "RolledBack";
    /// A failed first install was uninstalled.
    pub const UNINSTALLED: &str = "Uninstalled";
    /// A rollback or uninstall itself failed.
    pub const ROLLBACK_FAILED: &str = "RollbackFailed";
    /// A release was left alone (hold, pin, conflict, dependency, blocked).
    pub const SKIPPED: &str = "Skipped";
    /// A release started waiting for an administrator's approval of its new version.
    pub const AWAITING_APPROVAL: &str = "AwaitingApproval";
    /// The index or a trust root was refused.
    pub const VERIFICATION_FAILED: &str = "VerificationFailed";
    /// The update site could not be reached.
    pub const UNREACHABLE: &str = "Unreachable";
    /// A failed sequence is not retried until a newer one or the retry annotation.
    pub const WAITING: &str = "WaitingForNewerSequence";
    /// A sequence that failed here was withdrawn by the channel's maintainers.
    pub const WITHDRAWN: &str = "SequenceWithdrawn";
    /// A release waits for its rollout wave, a paused rollout or a maintenance window.
    pub const WAITING_FOR_ROLLOUT: &str = "WaitingForRollout";
    /// A release a killed helm or agent left behind was repaired.
    pub const REPAIRED: &str = "Repaired";
    /// Such a repair failed (it is tried again at the next check).
    pub const REPAIR_FAILED: &str = "RepairFailed";
    /// The API server refused the agent (or its helm) a request: its
    /// ServiceAccount lacks a permission; the check stopped before any change.
    pub const FORBIDDEN: &str = "Forbidden";
}

/// What a message that [`permission_refused`] recognizes gets appended.
pub const FORBIDDEN_HINT: &str = "the agent's ServiceAccount lacks this permission: \
     check its RBAC (docs/install.md#rbac); nothing was changed";

/// Whether `message` carries the API server's refusal of a request for lack
/// of permission, as helm and the Kubernetes client pass it on:
/// `<resource> is forbidden: User "<user>" cannot <verb> resource ...`.
pub fn permission_refused(message: &str) -> bool {
    message
        .split(" is forbidden: User \"")
        .nth(1)
        .is_some_and(|rest| rest.contains(" cannot "))
}

/// One Event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Warning or not.
    pub warning: bool,
    /// One of [`reason`].
    pub reason: &'static str,
    /// What the agent was doing (`Upgrade`, `Rollback`, `Verify`, ...).
    pub action: &'static str,
    /// For people; never values or secrets.
    pub message: String,
}

impl Note {
    /// A normal Event.
    pub fn normal(reason: &'static str, action: &'static str, message: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason,
            action,
            message: message.into(),
        }
    }

    /// A warning Event.
    pub fn warning(reason: &'static str, action: &'static str, message: impl Into<String>) -> Self {
        Self {
            warning: true,
            reason,
            action,
            message: message.into(),
        }
    }
}

/// Publishes Events about subscriptions.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    /// A publisher reporting as [`CONTROLLER`] from this host.
    pub fn new(client: Client) -> Self {
        let instance = std::env::var("POD_NAME")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok());
        let reporter = Reporter {
            controller: CONTROLLER.to_owned(),
            instance,
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes `note` about `subscription`.
    pub async fn publish(&self, subscription: &ChannelSubscription, note: &Note) {
        let reference: ObjectReference = subscription.object_ref(&());
        // The Events API caps the note at 1 kB.
        let message = truncate(&note.message, 1000);
        // The Recorder folds Events with the same reason, action and references
        // into one series and keeps the first note, so two different upgrades
        // would read as one. A digest of the note in the related reference keeps
        // different notes apart; repeats of the same note still form a series.
        let digest = crate::format::Sha256Digest::of(message.as_bytes()).hex();
        let related = ObjectReference {
            field_path: Some(format!("note:{}", &digest[..16])),
            ..reference.clone()
        };
        let event = Event {
            type_: if note.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: note.reason.to_owned(),
            note: Some(message),
            action: note.action.to_owned(),
            secondary: Some(related),
        };
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(reason = note.reason, error = %e, "cannot publish an Event");
        }
    }
}

/// At most `max` bytes of `text`, cut at a character boundary, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_permission_is_recognized_in_helm_and_client_messages() {
        // helm list without the Secrets of a release namespace (helm 4.3.1).
        assert!(permission_refused(
            "reading installed releases: helm list for namespace wiki failed (exit code 1): \
             Error: list: failed to list: secrets is forbidden: User \"system:serviceaccount:coxswain:coxswain\" \
             cannot list resource \"secrets\" in API group \"\" in the namespace \"wiki\""
        ));
        // kube-rs' Display of a 403.
        assert!(permission_refused(
            "trust anchor: cannot read ConfigMap coxswain/trust: ApiError: configmaps \"trust\" is \
             forbidden: User \"system:serviceaccount:coxswain:coxswain\" cannot get resource \"configmaps\" \
             in API group \"\" in the namespace \"coxswain\": Forbidden (ErrorResponse { code: 403 })"
        ));
        // Words alone are not a refusal.
        assert!(!permission_refused("the release is forbidden to change"));
        assert!(!permission_refused("is forbidden: User \"x\""));
        assert!(!permission_refused(
            "cannot fetch http://127.0.0.1/index.json: HTTP status 403"
        ));
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate("short", 10), "short");
        let long = "é".repeat(600);
        let cut = truncate(&long, 1000);
        assert!(cut.len() <= 1000, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }
}
