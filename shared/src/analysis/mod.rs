//! Pure analysis of a snapshot: revisions, effective revisions, sidecar revisions, drift,
//! gateways, pinned config and findings. No I/O: everything here is tested on fixtures.

pub mod admission;
pub mod findings;
pub mod gateway;
pub mod injection;
pub mod injector;
pub mod revisions;
pub mod rollout;
pub mod sidecar;
pub mod webhooks;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use findings::{Finding, FindingCode, Severity};
pub use gateway::GatewayInfo;
pub use injection::{EffectiveRevision, InjectionMode, InjectionModel, NamespaceLabels};
pub use injector::{NoSidecar, PodFacts};
pub use revisions::{ControlPlane, Resolution, RevisionInfo, TagInfo};
pub use sidecar::{PodDrift, SidecarRevision};
pub use webhooks::WebhookRef;

use crate::keys;
use crate::snapshot::{Labels, OwnerRef, PodInfo, Snapshot, WorkloadInfo, WorkloadKind};

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
    /// Pods in phase Succeeded or Failed: they run nothing and are left out of every count.
    pub finished_pods: usize,
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

impl WorkloadRef {
    pub fn of(w: &WorkloadInfo) -> Self {
        WorkloadRef {
            kind: w.kind,
            namespace: w.namespace.clone(),
            name: w.name.clone(),
        }
    }
}

/// Why a workload is left alone by rev-restart even when drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartExclusion {
    /// istiod: the control plane moves by installing a new revision.
    ControlPlane,
    /// Gateways move by new Helm releases (upgrade guide step 3).
    Gateway,
    /// A gateway installed without a revision: the default revision (or tag) injects it and it
    /// is upgraded in place, by a restart once the default moves (`rev-restart --gateways`).
    RevisionlessGateway,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// The revision its pods would get now, from its namespace and pod template labels.
    pub expected: Option<String>,
    /// Why its new pods would get no sidecar (a template opt-out, hostNetwork, …), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_sidecar: Option<NoSidecar>,
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
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub revision: String,
    pub revision_installed: bool,
    /// The revision it is pinned to (DOMAIN §4): the label's value, installed or not, or for a
    /// Gateway API gateway the revision its tag points at. `None`: Istio config labelled with a
    /// tag name, which no istiod loads.
    pub pinned_revision: Option<String>,
}

impl PinnedConfig {
    pub fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map(|(group, _)| group)
            .unwrap_or_default()
    }

    /// Gateway API gateways resolve `istio.io/rev` through tags; Istio config does not.
    pub fn resolves_tags(&self) -> bool {
        self.group() == crate::keys::GATEWAY_API_GROUP
    }

    /// What kubectl takes as its resource argument, unambiguous across groups (Istio's
    /// `Gateway` and Gateway API's share a kind): `authorizationpolicy.security.istio.io`.
    pub fn kubectl_resource(&self) -> String {
        format!("{}.{}", self.kind.to_ascii_lowercase(), self.group())
    }

    /// Labelled with a tag's name, which no istiod resolves for Istio config.
    pub fn pinned_to_tag(&self, cp: &ControlPlane) -> bool {
        !self.resolves_tags()
            && matches!(
                cp.resolve(&self.revision),
                revisions::Resolution::Tag { .. }
            )
    }
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
    /// The webhooks and injector rules behind every `expected`, to evaluate other labels (a
    /// relabel's) the same way.
    #[serde(skip)]
    pub injection: InjectionModel,
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

/// istiod or a gateway: Istio's own workloads, read even outside a `-n` scope and never
/// restarted (one rule, shared with the live reader).
pub fn is_control_plane_workload(w: &WorkloadInfo) -> bool {
    revisions::is_istiod(w) || gateway::is_gateway(w)
}

/// What the injector reads of a pod.
pub fn pod_facts(pod: &PodInfo) -> PodFacts<'_> {
    PodFacts {
        labels: &pod.labels,
        inject_annotation: pod.inject_annotation.as_deref(),
        host_network: pod.host_network,
    }
}

/// What the injector reads of a workload's pod template.
pub fn template_facts(w: &WorkloadInfo) -> PodFacts<'_> {
    PodFacts {
        labels: &w.template_labels,
        inject_annotation: w.template_annotations.get(keys::INJECT).map(String::as_str),
        host_network: w.host_network,
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
    let model = InjectionModel::new(snapshot, &cp);
    let contexts = NamespaceContexts::new(snapshot, &model);
    let template_expected = template_expectations(snapshot, &model, &contexts);
    let pods = pod_statuses(snapshot, &cp, &model, &contexts, &template_expected);
    let namespaces = namespace_statuses(snapshot, &contexts, &pods);
    let workloads = workload_statuses(snapshot, &pods, &template_expected);
    let pinned_config = pinned_config(snapshot, &cp);

    let mut analysis = Analysis {
        gateways: gateway::gateways(snapshot),
        control_plane: cp,
        namespaces,
        workloads,
        pods,
        pinned_config,
        findings: Vec::new(),
        injection: model,
    };
    analysis.findings = findings::findings(&analysis);
    analysis
        .findings
        .extend(admission::disagreements(&analysis, &snapshot.admission));
    findings::sort(&mut analysis.findings);
    analysis
}

/// Each namespace once: its labels as selectors see them and its effective revision.
struct NamespaceContexts<'a> {
    model: &'a InjectionModel,
    known: BTreeMap<&'a str, (NamespaceLabels, EffectiveRevision)>,
}

impl<'a> NamespaceContexts<'a> {
    fn new(snapshot: &'a Snapshot, model: &'a InjectionModel) -> Self {
        let known = snapshot
            .namespaces
            .iter()
            .map(|ns| {
                let labels = NamespaceLabels::new(&ns.name, &ns.labels);
                let effective = model.namespace_effective_revision(&labels);
                (ns.name.as_str(), (labels, effective))
            })
            .collect();
        NamespaceContexts { model, known }
    }

    /// A namespace the read could not see (RBAC) is judged as unlabelled.
    fn get(&self, name: &str) -> Cow<'_, (NamespaceLabels, EffectiveRevision)> {
        match self.known.get(name) {
            Some(found) => Cow::Borrowed(found),
            None => {
                let labels = NamespaceLabels::new(name, &Labels::new());
                let effective = self.model.namespace_effective_revision(&labels);
                Cow::Owned((labels, effective))
            }
        }
    }
}

/// What each workload's pod template gets: a restart recreates its pods from the template,
/// so that (not the pod's own, possibly older, labels) is what its pods are judged against.
fn template_expectations(
    snapshot: &Snapshot,
    model: &InjectionModel,
    contexts: &NamespaceContexts,
) -> BTreeMap<WorkloadRef, EffectiveRevision> {
    snapshot
        .workloads
        .iter()
        .map(|w| {
            let context = contexts.get(&w.namespace);
            (
                WorkloadRef::of(w),
                model.pod_expected_revision(&context.0, &template_facts(w)),
            )
        })
        .collect()
}

/// Every live pod: its sidecar revision, the revision it should have, and the drift between.
fn pod_statuses(
    snapshot: &Snapshot,
    cp: &ControlPlane,
    model: &InjectionModel,
    contexts: &NamespaceContexts,
    template_expected: &BTreeMap<WorkloadRef, EffectiveRevision>,
) -> Vec<PodStatus> {
    let ztunnels: BTreeSet<WorkloadRef> = snapshot
        .workloads
        .iter()
        .filter(|w| revisions::is_ztunnel(w))
        .map(WorkloadRef::of)
        .collect();
    snapshot
        .pods
        .iter()
        .filter(|p| !p.terminating)
        .map(|pod| {
            let workload = owning_workload(pod, snapshot);
            let context = contexts.get(&pod.namespace);
            let (labels, ns) = context.as_ref();
            let own;
            let expected = match workload.as_ref().and_then(|w| template_expected.get(w)) {
                Some(from_template) => from_template,
                None => {
                    own = model.pod_expected_revision(labels, &pod_facts(pod));
                    &own
                }
            };
            // ztunnel's pods look like proxies of its revision, but they are node proxies.
            let sidecar = match workload.as_ref().is_some_and(|w| ztunnels.contains(w)) {
                true => SidecarRevision::None,
                false => sidecar::sidecar_revision(&pod.sidecar, cp),
            };
            PodStatus {
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                drift: sidecar::pod_drift(&sidecar, expected),
                sidecar,
                expected: expected.revision.clone(),
                workload,
                ignored_rev_label: injection::ignored_pod_rev_label(ns, &pod.labels)
                    .map(str::to_string),
            }
        })
        .collect()
}

/// Each namespace's labels, effective revision and pod counts (one pass over the pods).
fn namespace_statuses(
    snapshot: &Snapshot,
    contexts: &NamespaceContexts,
    pods: &[PodStatus],
) -> Vec<NamespaceStatus> {
    let mut per_namespace: BTreeMap<&str, (BTreeMap<String, usize>, usize)> = BTreeMap::new();
    for pod in pods {
        let (by_revision, needing_restart) = per_namespace.entry(&pod.namespace).or_default();
        *by_revision.entry(pod.sidecar.key()).or_insert(0) += 1;
        if pod.drift.needs_restart() {
            *needing_restart += 1;
        }
    }
    snapshot
        .namespaces
        .iter()
        .map(|ns| {
            let (pods_by_revision, pods_needing_restart) =
                per_namespace.remove(ns.name.as_str()).unwrap_or_default();
            NamespaceStatus {
                name: ns.name.clone(),
                rev_label: ns.labels.get(keys::REV).cloned(),
                injection_label: ns.labels.get(keys::INJECTION).cloned(),
                effective: contexts.get(&ns.name).1.clone(),
                pods_by_revision,
                pods_needing_restart,
                finished_pods: snapshot.finished_pods.get(&ns.name).copied().unwrap_or(0),
            }
        })
        .collect()
}

/// Each workload with its pods (grouped once) and the revision its template gets.
fn workload_statuses(
    snapshot: &Snapshot,
    pods: &[PodStatus],
    template_expected: &BTreeMap<WorkloadRef, EffectiveRevision>,
) -> Vec<WorkloadStatus> {
    let mut pods_of: BTreeMap<WorkloadRef, Vec<&PodStatus>> = BTreeMap::new();
    for pod in pods {
        if let Some(w) = &pod.workload {
            pods_of.entry(w.clone()).or_default().push(pod);
        }
    }
    snapshot
        .workloads
        .iter()
        .filter_map(|w| {
            let expected = template_expected.get(&WorkloadRef::of(w))?;
            Some(workload_status(w, &pods_of, expected))
        })
        .collect()
}

/// Istio config labelled `istio.io/rev`, with the revision it is really pinned to.
fn pinned_config(snapshot: &Snapshot, cp: &ControlPlane) -> Vec<PinnedConfig> {
    snapshot
        .config_objects
        .iter()
        .map(|c| {
            let mut pinned = PinnedConfig {
                api_version: c.api_version.clone(),
                kind: c.kind.clone(),
                namespace: c.namespace.clone(),
                name: c.name.clone(),
                revision: c.revision.clone(),
                revision_installed: cp.revision(&c.revision).is_some(),
                pinned_revision: None,
            };
            pinned.pinned_revision = match cp.resolve(&c.revision) {
                _ if pinned.pinned_to_tag(cp) => None,
                revisions::Resolution::Missing => Some(c.revision.clone()),
                resolved => resolved.revision().map(str::to_string),
            };
            pinned
        })
        .collect()
}

fn workload_status(
    w: &WorkloadInfo,
    pods_of: &BTreeMap<WorkloadRef, Vec<&PodStatus>>,
    expected: &EffectiveRevision,
) -> WorkloadStatus {
    let pods = pods_of
        .get(&WorkloadRef::of(w))
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut pods_by_revision = BTreeMap::new();
    for p in pods {
        *pods_by_revision.entry(p.sidecar.key()).or_insert(0) += 1;
    }
    let exclusion = if revisions::is_istiod(w) {
        Some(RestartExclusion::ControlPlane)
    } else if gateway::is_gateway(w) {
        Some(match gateway::installed_revision(w) {
            Some(_) => RestartExclusion::Gateway,
            None => RestartExclusion::RevisionlessGateway,
        })
    } else {
        None
    };
    WorkloadStatus {
        kind: w.kind,
        namespace: w.namespace.clone(),
        name: w.name.clone(),
        expected: expected.revision.clone(),
        no_sidecar: expected.no_sidecar.clone(),
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
