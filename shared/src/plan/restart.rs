//! Planning `kubectl rev-restart` (upgrade guide steps 3.7–3.8): which workloads to restart, in
//! which order, and which are left alone and why. Drift comes from the analysis — one
//! definition, shared with the inventory. Pure.

use serde::Serialize;

use crate::analysis::{Analysis, RestartExclusion};
use crate::selector::Selector;
use crate::snapshot::{Snapshot, WorkloadKind};

#[derive(Debug, Clone, Default)]
pub struct RestartRequest {
    /// Namespaces to consider; `None`: all.
    pub namespaces: Option<Vec<String>>,
    /// Every injected workload, not only drifted ones.
    pub all: bool,
    /// Only these kinds (empty: all three).
    pub kinds: Vec<WorkloadKind>,
    /// Only workloads whose labels match.
    pub selector: Option<Selector>,
    /// `--ondelete=delete-pods`: restart OnDelete StatefulSets by deleting their pods one by one.
    pub delete_ondelete_pods: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartMethod {
    /// `kubectl rollout restart`: the restartedAt annotation on the pod template.
    RolloutRestart,
    /// OnDelete StatefulSet: delete each pod, wait for its injected replacement.
    DeletePods,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartItem {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// The revision its new pods must carry.
    pub target_revision: Option<String>,
    pub pods: usize,
    pub drifted_pods: usize,
    pub method: RestartMethod,
}

/// Why a drifted workload (or pod) is not restarted by this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// istiod: it moves by installing a new revision, never by a restart.
    ControlPlane,
    /// A revisioned gateway: it moves by installing a new Helm release.
    Gateway,
    /// A paused Deployment: kubectl refuses to restart it.
    Paused,
    /// `updateStrategy: OnDelete` never rolls by itself (`--ondelete=delete-pods` does it).
    OnDelete,
    /// No Deployment, StatefulSet or DaemonSet owns the pod.
    NoOwner,
}

impl SkipReason {
    /// Whether the user must act for the namespace to stop drifting (istiod and gateways move
    /// by other steps of the upgrade, not by the user's hand here).
    pub fn needs_user(self) -> bool {
        matches!(
            self,
            SkipReason::Paused | SkipReason::OnDelete | SkipReason::NoOwner
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// `deployment`, `statefulset`, `daemonset` or `pod`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartPlan {
    pub items: Vec<RestartItem>,
    pub skipped: Vec<Skipped>,
}

impl RestartPlan {
    /// Drift this run cannot remove: the user must act (resume, delete pods, recreate).
    pub fn leaves_work(&self) -> bool {
        self.skipped.iter().any(|s| s.reason.needs_user())
    }
}

pub fn plan_restart(
    snapshot: &Snapshot,
    analysis: &Analysis,
    request: &RestartRequest,
) -> RestartPlan {
    let in_scope = |ns: &str| {
        request
            .namespaces
            .as_ref()
            .is_none_or(|list| list.iter().any(|n| n == ns))
    };
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    for w in &analysis.workloads {
        if !in_scope(&w.namespace) {
            continue;
        }
        if !request.kinds.is_empty() && !request.kinds.contains(&w.kind) {
            continue;
        }
        if let Some(sel) = &request.selector {
            let labels = snapshot
                .workloads
                .iter()
                .find(|s| s.kind == w.kind && s.namespace == w.namespace && s.name == w.name)
                .map(|s| &s.labels);
            if !labels.is_some_and(|l| sel.matches(l)) {
                continue;
            }
        }
        let wanted = if request.all {
            w.injected
        } else {
            w.is_drifted()
        };
        if !wanted {
            continue;
        }
        let skip = |reason| Skipped {
            kind: w.kind.resource().to_string(),
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            reason,
        };
        if let Some(exclusion) = w.exclusion {
            skipped.push(skip(match exclusion {
                RestartExclusion::ControlPlane => SkipReason::ControlPlane,
                RestartExclusion::Gateway => SkipReason::Gateway,
            }));
            continue;
        }
        if w.paused {
            skipped.push(skip(SkipReason::Paused));
            continue;
        }
        let method = if w.on_delete {
            if !request.delete_ondelete_pods {
                skipped.push(skip(SkipReason::OnDelete));
                continue;
            }
            RestartMethod::DeletePods
        } else {
            RestartMethod::RolloutRestart
        };
        items.push(RestartItem {
            kind: w.kind,
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            target_revision: w.expected.clone(),
            pods: w.pods,
            drifted_pods: w.drifted_pods,
            method,
        });
    }
    // Drifted pods no workload can restart: bare pods, ReplicaSets without a Deployment, Jobs.
    for pod in &analysis.pods {
        if pod.workload.is_none() && pod.drift.needs_restart() && in_scope(&pod.namespace) {
            skipped.push(Skipped {
                kind: "pod".into(),
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                reason: SkipReason::NoOwner,
            });
        }
    }
    items.sort_by(|a, b| (&a.namespace, a.kind, &a.name).cmp(&(&b.namespace, b.kind, &b.name)));
    RestartPlan { items, skipped }
}
