//! Is this rollout done? kubectl's `rollout status` rules (DOMAIN §8), per kind. Pure.

use serde::Serialize;

use crate::snapshot::{RolloutStatus, WorkloadKind};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "kebab-case")]
pub enum RolloutState {
    Complete,
    /// Still rolling: what kubectl would print while waiting.
    Progressing(String),
    /// Will not finish by itself (ProgressDeadlineExceeded).
    Failed(String),
}

pub fn rollout_state(
    kind: WorkloadKind,
    generation: Option<i64>,
    status: &RolloutStatus,
    on_delete: bool,
) -> RolloutState {
    let observed = status.observed_generation.unwrap_or(0);
    if generation.is_some_and(|g| observed < g) {
        return RolloutState::Progressing(
            "waiting for the controller to observe the update".into(),
        );
    }
    match kind {
        WorkloadKind::Deployment => deployment_state(status),
        WorkloadKind::StatefulSet => stateful_set_state(status, on_delete),
        WorkloadKind::DaemonSet => daemon_set_state(status),
    }
}

/// kubectl's `DeploymentStatusViewer`.
fn deployment_state(status: &RolloutStatus) -> RolloutState {
    if status.progress_deadline_exceeded {
        return RolloutState::Failed(
            "ProgressDeadlineExceeded: the rollout stopped making progress".into(),
        );
    }
    if status.updated < status.desired {
        return RolloutState::Progressing(format!(
            "{} of {} updated replicas are available",
            status.updated, status.desired
        ));
    }
    if status.replicas > status.updated {
        return RolloutState::Progressing(format!(
            "{} old replicas are pending termination",
            status.replicas - status.updated
        ));
    }
    if status.available < status.updated {
        return RolloutState::Progressing(format!(
            "{} of {} updated replicas are available",
            status.available, status.updated
        ));
    }
    RolloutState::Complete
}

/// kubectl's `StatefulSetStatusViewer`; an OnDelete StatefulSet has no rollout to wait for.
fn stateful_set_state(status: &RolloutStatus, on_delete: bool) -> RolloutState {
    if on_delete {
        return RolloutState::Complete;
    }
    if status.ready < status.desired {
        return RolloutState::Progressing(format!(
            "{} of {} pods are ready",
            status.ready, status.desired
        ));
    }
    // With `rollingUpdate` set (the API server defaults it), kubectl judges by the
    // partition: the pods below it stay on the old template by design.
    if let Some(partition) = status.partition {
        let to_update = (status.desired - partition).max(0);
        if status.updated < to_update {
            return RolloutState::Progressing(format!(
                "partitioned roll out: {} of {to_update} new pods have been updated",
                status.updated
            ));
        }
        return RolloutState::Complete;
    }
    if status.update_revision.is_some() && status.update_revision != status.current_revision {
        return RolloutState::Progressing(format!(
            "{} of {} pods updated to the new revision",
            status.updated, status.desired
        ));
    }
    RolloutState::Complete
}

/// kubectl's `DaemonSetStatusViewer`.
fn daemon_set_state(status: &RolloutStatus) -> RolloutState {
    if status.updated < status.desired {
        return RolloutState::Progressing(format!(
            "{} of {} updated pods are scheduled",
            status.updated, status.desired
        ));
    }
    if status.available < status.desired {
        return RolloutState::Progressing(format!(
            "{} of {} updated pods are available",
            status.available, status.desired
        ));
    }
    RolloutState::Complete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(desired: i32, replicas: i32, updated: i32, available: i32) -> RolloutStatus {
        RolloutStatus {
            observed_generation: Some(2),
            desired,
            replicas,
            updated,
            ready: available,
            available,
            ..Default::default()
        }
    }

    #[test]
    fn deployment_rules_follow_kubectl() {
        use RolloutState::*;
        let d = WorkloadKind::Deployment;
        assert!(
            matches!(
                rollout_state(d, Some(3), &status(2, 2, 2, 2), false),
                Progressing(_)
            ),
            "generation not observed"
        );
        assert!(matches!(
            rollout_state(d, Some(2), &status(2, 3, 1, 2), false),
            Progressing(_)
        ));
        assert!(
            matches!(rollout_state(d, Some(2), &status(2, 3, 2, 2), false), Progressing(m) if m.contains("old replicas"))
        );
        assert!(matches!(
            rollout_state(d, Some(2), &status(2, 2, 2, 1), false),
            Progressing(_)
        ));
        assert_eq!(
            rollout_state(d, Some(2), &status(2, 2, 2, 2), false),
            Complete
        );
        let mut stuck = status(2, 3, 1, 2);
        stuck.progress_deadline_exceeded = true;
        assert!(matches!(
            rollout_state(d, Some(2), &stuck, false),
            Failed(_)
        ));
    }

    #[test]
    fn statefulset_waits_for_update_revision() {
        let mut s = status(2, 2, 1, 2);
        s.current_revision = Some("web-1".into());
        s.update_revision = Some("web-2".into());
        assert!(matches!(
            rollout_state(WorkloadKind::StatefulSet, Some(2), &s, false),
            RolloutState::Progressing(_)
        ));
        s.current_revision = Some("web-2".into());
        assert_eq!(
            rollout_state(WorkloadKind::StatefulSet, Some(2), &s, false),
            RolloutState::Complete
        );
    }

    #[test]
    fn statefulset_with_a_partition_is_done_once_the_ordinals_above_it_are_updated() {
        // kubectl: ready >= replicas, then updatedReplicas >= replicas - partition; the
        // revisions never converge while pods stay below the partition.
        let mut s = status(5, 5, 2, 5);
        s.current_revision = Some("web-1".into());
        s.update_revision = Some("web-2".into());
        s.partition = Some(2);
        assert!(matches!(
            rollout_state(WorkloadKind::StatefulSet, Some(2), &s, false),
            RolloutState::Progressing(m) if m.contains("2 of 3")
        ));
        s.updated = 3;
        assert_eq!(
            rollout_state(WorkloadKind::StatefulSet, Some(2), &s, false),
            RolloutState::Complete
        );
        s.ready = 4;
        assert!(matches!(
            rollout_state(WorkloadKind::StatefulSet, Some(2), &s, false),
            RolloutState::Progressing(m) if m.contains("4 of 5 pods are ready")
        ));
    }

    #[test]
    fn statefulset_with_partition_zero_needs_every_pod_updated() {
        let mut s = status(3, 3, 2, 3);
        s.partition = Some(0);
        assert!(matches!(
            rollout_state(WorkloadKind::StatefulSet, Some(2), &s, false),
            RolloutState::Progressing(_)
        ));
        s.updated = 3;
        assert_eq!(
            rollout_state(WorkloadKind::StatefulSet, Some(2), &s, false),
            RolloutState::Complete
        );
    }

    #[test]
    fn daemonset_needs_every_node_updated_and_available() {
        assert!(matches!(
            rollout_state(WorkloadKind::DaemonSet, Some(2), &status(3, 3, 2, 3), false),
            RolloutState::Progressing(_)
        ));
        assert_eq!(
            rollout_state(WorkloadKind::DaemonSet, Some(2), &status(3, 3, 3, 3), false),
            RolloutState::Complete
        );
    }
}
