//! Pure analysis of a snapshot: revisions, effective revisions, sidecar revisions, drift,
//! gateways, pinned config and findings. No I/O: everything here is tested on fixtures.

pub mod findings;
pub mod gateway;
pub mod injection;
pub mod revisions;
pub mod rollout;
pub mod sidecar;

use std::collections::BTreeMap;

use serde::Serialize;

pub use findings::{Finding, Severity};
pub use gateway::GatewayInfo;
pub use injection::{EffectiveRevision, InjectionMode};
pub use revisions::{ControlPlane, Resolution, RevisionInfo, TagInfo};
pub use sidecar::{PodDrift, SidecarRevision};

use crate::keys;
use crate::snapshot::{OwnerRef, PodInfo, Snapshot, WorkloadInfo, WorkloadKind};

/// One namespace's place in the upgrade.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceStatus {
    pub name: String,
    pub rev_label: Option<String>,
    pub injection_label: Option<String>,
    pub effective: EffectiveRevision,
    /// Pods per sidecar revision (`none`, `unknown`, `?<tag>` for unidentified proxies).
    pub pods_by_revision: BTreeMap<String, usize>,
    pub pods_needing_restart: usize,
}

/// A pod with its sidecar and drift, and the workload that would restart it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    pub namespace: String,
    pub name: String,
    pub sidecar: SidecarRevision,
    pub expected: Option<String>,
    pub drift: PodDrift,
    pub workload: Option<WorkloadRef>,
    /// The pod's own `istio.io/rev` label, when the namespace label overrides it.
    pub ignored_rev_label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

/// Why a workload is left alone by rev-restart even when drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartExclusion {
    /// istiod: the control plane moves by installing a new revision.
    ControlPlane,
    /// Gateways move by new Helm releases (upgrade guide step 3).
    Gateway,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// The revision its pods would get now, from its namespace and pod template labels.
    pub expected: Option<String>,
    pub pods_by_revision: BTreeMap<String, usize>,
    pub pods: usize,
    pub drifted_pods: usize,
    pub injected: bool,
    pub exclusion: Option<RestartExclusion>,
    pub paused: bool,
    pub on_delete: bool,
}

impl WorkloadStatus {
    pub fn is_drifted(&self) -> bool {
        self.drifted_pods > 0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PinnedConfig {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub revision: String,
    pub revision_installed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    pub control_plane: ControlPlane,
    pub gateways: Vec<GatewayInfo>,
    pub namespaces: Vec<NamespaceStatus>,
    pub workloads: Vec<WorkloadStatus>,
    pub pods: Vec<PodStatus>,
    pub pinned_config: Vec<PinnedConfig>,
    pub findings: Vec<Finding>,
}

impl Analysis {
    /// Keeps only what concerns the given namespaces (`-n`/`-l`); the control plane, tags and
    /// cluster-wide findings stay, since revisions are cluster-wide.
    pub fn retain_namespaces(&mut self, keep: impl Fn(&str) -> bool) {
        self.namespaces.retain(|n| keep(&n.name));
        self.workloads.retain(|w| keep(&w.namespace));
        self.pods.retain(|p| keep(&p.namespace));
        self.pinned_config.retain(|c| keep(&c.namespace));
        self.findings
            .retain(|f| f.namespace.as_deref().is_none_or(&keep));
    }
}

/// The workload that owns a pod: ReplicaSet → Deployment, or a StatefulSet/DaemonSet.
pub fn owning_workload(pod: &PodInfo, snapshot: &Snapshot) -> Option<WorkloadRef> {
    let OwnerRef { kind, name } = pod.owner.as_ref()?;
    let (kind, name) = match kind.as_str() {
        "ReplicaSet" => {
            let owner = snapshot
                .replica_set_owners
                .get(&(pod.namespace.clone(), name.clone()))?;
            (WorkloadKind::Deployment, owner.name.clone())
        }
        "StatefulSet" => (WorkloadKind::StatefulSet, name.clone()),
        "DaemonSet" => (WorkloadKind::DaemonSet, name.clone()),
        _ => return None,
    };
    Some(WorkloadRef {
        kind,
        namespace: pod.namespace.clone(),
        name,
    })
}

pub fn analyze(snapshot: &Snapshot) -> Analysis {
    let cp = ControlPlane::from_snapshot(snapshot);

    let effective: BTreeMap<&str, EffectiveRevision> = snapshot
        .namespaces
        .iter()
        .map(|ns| (ns.name.as_str(), injection::namespace_revision(ns, &cp)))
        .collect();
    let unlabelled = EffectiveRevision {
        mode: InjectionMode::PodLevel,
        selector: None,
        revision: None,
        via_tag: None,
    };
    let ns_effective = |ns: &str| effective.get(ns).unwrap_or(&unlabelled);

    let pods: Vec<PodStatus> = snapshot
        .pods
        .iter()
        .filter(|p| !p.terminating)
        .map(|pod| {
            let ns = ns_effective(&pod.namespace);
            let expected = injection::pod_expected_revision(ns, &pod.labels, &cp);
            let sidecar = sidecar::sidecar_revision(&pod.sidecar, &cp);
            PodStatus {
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                drift: sidecar::pod_drift(&sidecar, &expected),
                sidecar,
                expected: expected.revision.clone(),
                workload: owning_workload(pod, snapshot),
                ignored_rev_label: injection::ignored_pod_rev_label(ns, &pod.labels)
                    .map(str::to_string),
            }
        })
        .collect();

    let namespaces = snapshot
        .namespaces
        .iter()
        .map(|ns| {
            let mut pods_by_revision = BTreeMap::new();
            let mut pods_needing_restart = 0;
            for pod in pods.iter().filter(|p| p.namespace == ns.name) {
                *pods_by_revision.entry(pod.sidecar.key()).or_insert(0) += 1;
                if pod.drift.needs_restart() {
                    pods_needing_restart += 1;
                }
            }
            NamespaceStatus {
                name: ns.name.clone(),
                rev_label: ns.labels.get(keys::REV).cloned(),
                injection_label: ns.labels.get(keys::INJECTION).cloned(),
                effective: ns_effective(&ns.name).clone(),
                pods_by_revision,
                pods_needing_restart,
            }
        })
        .collect();

    let mut pods_of: BTreeMap<WorkloadRef, Vec<&PodStatus>> = BTreeMap::new();
    for pod in &pods {
        if let Some(w) = &pod.workload {
            pods_of.entry(w.clone()).or_default().push(pod);
        }
    }
    let workloads = snapshot
        .workloads
        .iter()
        .map(|w| workload_status(w, &pods_of, ns_effective(&w.namespace), &cp))
        .collect();

    let pinned_config = snapshot
        .config_objects
        .iter()
        .map(|c| PinnedConfig {
            kind: c.kind.clone(),
            namespace: c.namespace.clone(),
            name: c.name.clone(),
            revision: c.revision.clone(),
            revision_installed: cp.revision(&c.revision).is_some(),
        })
        .collect();

    let mut analysis = Analysis {
        gateways: gateway::gateways(snapshot),
        control_plane: cp,
        namespaces,
        workloads,
        pods,
        pinned_config,
        findings: Vec::new(),
    };
    analysis.findings = findings::findings(&analysis);
    analysis
}

fn workload_status(
    w: &WorkloadInfo,
    pods_of: &BTreeMap<WorkloadRef, Vec<&PodStatus>>,
    ns: &EffectiveRevision,
    cp: &ControlPlane,
) -> WorkloadStatus {
    let key = WorkloadRef {
        kind: w.kind,
        namespace: w.namespace.clone(),
        name: w.name.clone(),
    };
    let pods = pods_of.get(&key).map(Vec::as_slice).unwrap_or_default();
    let mut pods_by_revision = BTreeMap::new();
    for p in pods {
        *pods_by_revision.entry(p.sidecar.key()).or_insert(0) += 1;
    }
    let expected = injection::pod_expected_revision(ns, &w.template_labels, cp);
    let exclusion = if revisions::is_istiod(w) {
        Some(RestartExclusion::ControlPlane)
    } else if gateway::is_gateway(w) {
        Some(RestartExclusion::Gateway)
    } else {
        None
    };
    WorkloadStatus {
        kind: w.kind,
        namespace: w.namespace.clone(),
        name: w.name.clone(),
        expected: expected.revision.clone(),
        injected: pods.iter().any(|p| p.sidecar.revision().is_some())
            || expected.revision.is_some(),
        pods: pods.len(),
        drifted_pods: pods.iter().filter(|p| p.drift.needs_restart()).count(),
        pods_by_revision,
        exclusion,
        paused: w.paused,
        on_delete: w.update_strategy.as_deref() == Some("OnDelete"),
    }
}
