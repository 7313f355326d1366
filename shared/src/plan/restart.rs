//! Planning `kubectl rev-restart` (upgrade guide steps 3.7–3.8): which workloads to restart, in
//! which order, and which are left alone and why. Drift comes from the analysis — one
//! definition, shared with the inventory. Pure.

use crate::analysis::admission::AdmissionPreflight;
use serde::Serialize;

use crate::analysis::{Analysis, RestartExclusion, WorkloadStatus};
use crate::selector::Selector;
use crate::snapshot::{Snapshot, WorkloadInfo, WorkloadKind};

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
    /// `--gateways`: also restart gateways installed without a revision (upgraded in place).
    pub gateways: bool,
    /// `--ondelete=delete-pods`: restart OnDelete StatefulSets and DaemonSets by deleting their
    /// pods one by one.
    pub delete_ondelete_pods: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartMethod {
    /// `kubectl rollout restart`: the restartedAt annotation on the pod template.
    RolloutRestart,
    /// OnDelete StatefulSet or DaemonSet: delete each pod, wait for its injected replacement.
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
    /// StatefulSet `rollingUpdate.partition` above 0: the controller replaces only the ordinals
    /// at or above it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// The pods below the partition: the rollout leaves them on their current sidecar, so they
    /// are neither waited for nor verified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<String>,
}

/// Why a drifted workload (or pod) is not restarted by this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// istiod: it moves by installing a new revision, never by a restart.
    ControlPlane,
    /// A revisioned gateway: it moves by installing a new Helm release.
    Gateway,
    /// A gateway installed without a revision: restarted only with `--gateways`.
    RevisionlessGateway,
    /// A paused Deployment: kubectl refuses to restart it.
    Paused,
    /// `updateStrategy: OnDelete` never rolls by itself (`--ondelete=delete-pods` does it).
    OnDelete,
    /// A StatefulSet's `rollingUpdate.partition` keeps these drifted pods on the old sidecar.
    Partition,
    /// No Deployment, StatefulSet or DaemonSet owns the pod.
    NoOwner,
}

impl SkipReason {
    /// Whether the user must act for the namespace to stop drifting (istiod and gateways move
    /// by other steps of the upgrade, not by the user's hand here).
    pub fn needs_user(self) -> bool {
        matches!(
            self,
            SkipReason::Paused
                | SkipReason::OnDelete
                | SkipReason::Partition
                | SkipReason::RevisionlessGateway
                | SkipReason::NoOwner
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
    /// The partition, for [`SkipReason::Partition`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// The drifted pods it leaves behind, for [`SkipReason::Partition`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartPlan {
    pub items: Vec<RestartItem>,
    pub skipped: Vec<Skipped>,
    /// What the cluster's admission chain answered for each template (a `dryRun=All` create),
    /// when asked: the preflight that refuses a restart which would not reach the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission: Option<AdmissionPreflight>,
}

impl RestartPlan {
    /// Workloads the admission check says would not reach their target.
    pub fn refused_by_admission(&self) -> usize {
        self.admission.as_ref().map_or(0, |a| a.refused().count())
    }

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
    let mut plan = RestartPlan {
        items: Vec::new(),
        skipped: Vec::new(),
        admission: None,
    };
    for w in &analysis.workloads {
        let info = snapshot
            .workloads
            .iter()
            .find(|s| s.kind == w.kind && s.namespace == w.namespace && s.name == w.name);
        if !request.selects(w, info) {
            continue;
        }
        let (item, skipped) = decide(w, info, analysis, request);
        plan.items.extend(item);
        plan.skipped.extend(skipped);
    }
    // Drifted pods no workload can restart: bare pods, ReplicaSets without a Deployment, Jobs.
    for pod in &analysis.pods {
        if pod.workload.is_none() && pod.drift.needs_restart() && request.in_scope(&pod.namespace) {
            plan.skipped.push(Skipped {
                kind: "pod".into(),
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                reason: SkipReason::NoOwner,
                partition: None,
                pods: Vec::new(),
            });
        }
    }
    plan.items
        .sort_by(|a, b| (&a.namespace, a.kind, &a.name).cmp(&(&b.namespace, b.kind, &b.name)));
    plan
}

impl RestartRequest {
    fn in_scope(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|list| list.iter().any(|n| n == namespace))
    }

    /// The workloads the user asked about: namespace, kind, selector, and drifted (or, with
    /// `--all`, injected).
    fn selects(&self, w: &WorkloadStatus, info: Option<&WorkloadInfo>) -> bool {
        let kind_asked = self.kinds.is_empty() || self.kinds.contains(&w.kind);
        let labels_match = self
            .selector
            .as_ref()
            .is_none_or(|sel| info.is_some_and(|i| sel.matches(&i.labels)));
        let wanted = if self.all { w.injected } else { w.is_drifted() };
        self.in_scope(&w.namespace) && kind_asked && labels_match && wanted
    }
}

/// What becomes of one selected workload: restarted (and how), skipped with the reason the user
/// sees, or left out (nothing to move).
fn decide(
    w: &WorkloadStatus,
    info: Option<&WorkloadInfo>,
    analysis: &Analysis,
    request: &RestartRequest,
) -> (Option<RestartItem>, Vec<Skipped>) {
    let skip = |reason| Skipped {
        kind: w.kind.resource().to_string(),
        namespace: w.namespace.clone(),
        name: w.name.clone(),
        reason,
        partition: None,
        pods: Vec::new(),
    };
    let exclusion = match w.exclusion {
        // Upgraded in place: a restart is its upgrade, asked for by name.
        Some(RestartExclusion::RevisionlessGateway) if request.gateways => None,
        // In sync (listed by --all): nothing for the user to move.
        Some(RestartExclusion::RevisionlessGateway) if !w.is_drifted() => return (None, vec![]),
        other => other,
    };
    if let Some(exclusion) = exclusion {
        let reason = match exclusion {
            RestartExclusion::ControlPlane => SkipReason::ControlPlane,
            RestartExclusion::Gateway => SkipReason::Gateway,
            RestartExclusion::RevisionlessGateway => SkipReason::RevisionlessGateway,
        };
        return (None, vec![skip(reason)]);
    }
    if w.paused {
        return (None, vec![skip(SkipReason::Paused)]);
    }
    let method = match (w.on_delete, request.delete_ondelete_pods) {
        (true, false) => return (None, vec![skip(SkipReason::OnDelete)]),
        (true, true) => RestartMethod::DeletePods,
        (false, _) => RestartMethod::RolloutRestart,
    };
    let held = match info {
        Some(info) if method == RestartMethod::RolloutRestart => {
            held_back_by_partition(info, analysis)
        }
        _ => None,
    };
    let mut skipped = Vec::new();
    if let Some(held) = &held {
        if !held.drifted.is_empty() {
            skipped.push(Skipped {
                partition: Some(held.partition),
                pods: held.drifted.clone(),
                ..skip(SkipReason::Partition)
            });
        }
        // A restart that would replace no drifted pod only churns the in-sync ones.
        let moves_drift = w.drifted_pods > held.drifted.len();
        if held.replaces_none || !(moves_drift || request.all) {
            return (None, skipped);
        }
    }
    let (partition, held_back) = held.map_or((None, Vec::new()), |h| (Some(h.partition), h.pods));
    let item = RestartItem {
        kind: w.kind,
        namespace: w.namespace.clone(),
        name: w.name.clone(),
        target_revision: w.expected.clone(),
        pods: w.pods,
        drifted_pods: w.drifted_pods,
        method,
        partition,
        held_back,
    };
    (Some(item), skipped)
}

/// The pods a StatefulSet's partition keeps on their current template.
struct HeldBack {
    partition: i32,
    /// Every pod below the partition (`<name>-<ordinal>`).
    pods: Vec<String>,
    /// Those of them whose sidecar drifted.
    drifted: Vec<String>,
    /// The partition covers every replica: a restart would replace no pod.
    replaces_none: bool,
}

/// The StatefulSet controller only replaces ordinals at or above `partition` (counted from
/// `ordinals.start`); the others keep the old template, and so the old sidecar.
fn held_back_by_partition(info: &WorkloadInfo, analysis: &Analysis) -> Option<HeldBack> {
    let partition = info.status.partition.filter(|p| *p > 0)?;
    if info.kind != WorkloadKind::StatefulSet {
        return None;
    }
    let first = info.status.first_ordinal;
    let kept = partition.min(info.status.desired.max(0));
    let pods: Vec<String> = (first..first + kept)
        .map(|ordinal| format!("{}-{ordinal}", info.name))
        .collect();
    let drifted = analysis
        .pods
        .iter()
        .filter(|p| {
            p.namespace == info.namespace
                && p.drift.needs_restart()
                && p.workload
                    .as_ref()
                    .is_some_and(|w| w.kind == WorkloadKind::StatefulSet && w.name == info.name)
                && pods.contains(&p.name)
        })
        .map(|p| p.name.clone())
        .collect();
    Some(HeldBack {
        partition,
        pods,
        drifted,
        replaces_none: partition >= info.status.desired,
    })
}
