//! What `kubectl rev-prune OLD` would remove, and why it may not (upgrade guide step 5). Pure:
//! this is the one place that decides "does this Helm release / object belong to revision X?"
//! and "is anything still using X?".
//!
//! Ownership is proven, never guessed: a Helm release of an Istio chart (not `base`) whose
//! `revision` value, or failing that every `istio.io/rev` label of its manifest, names OLD; and,
//! for revisions installed without Helm (istioctl/operator), objects labelled `istio.io/rev=OLD`
//! with `operator.istio.io/component`, plus the revision's own webhooks, ConfigMaps and cluster
//! roles. Tags and `istiod-default-validator` are interlocks, never deleted (DOMAIN §6, §7).

use std::collections::{BTreeMap, BTreeSet};

use kube::api::DynamicObject;
use serde::Serialize;

use crate::analysis::revisions::is_ztunnel;
use crate::analysis::{Analysis, InjectionMode, SidecarRevision};
use crate::error::RevError;
use crate::keys;
use crate::revision::RevisionName;
use crate::snapshot::{HelmRelease, Labels, ObjectRef, ServiceInfo, Snapshot, WorkloadKind};

/// Helm 4's `UninstallOrder` (pkg/release/v1/util/kind_sorter.go): kinds earlier in the list
/// are deleted first; kinds not in it go last, sorted by kind name, keeping manifest order
/// within a kind. Helm 4 puts the webhook configurations first ("remove validation before
/// mutation"; Helm 3 left them last as unknown kinds): for Istio that closes the window where a
/// `failurePolicy: Fail` webhook still points at an istiod already deleted (DOMAIN §6).
const UNINSTALL_ORDER: &[&str] = &[
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "Ingress",
    "IngressClass",
    "Service",
    "CronJob",
    "Job",
    "StatefulSet",
    "HorizontalPodAutoscaler",
    "Deployment",
    "ReplicaSet",
    "ReplicationController",
    "Pod",
    "DaemonSet",
    "RoleBindingList",
    "RoleBinding",
    "RoleList",
    "Role",
    "ClusterRoleBindingList",
    "ClusterRoleBinding",
    "ClusterRoleList",
    "ClusterRole",
    "CustomResourceDefinition",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "StorageClass",
    "ConfigMap",
    "SecretList",
    "Secret",
    "ServiceAccount",
    "PodDisruptionBudget",
    "PodSecurityPolicy",
    "LimitRange",
    "ResourceQuota",
    "NetworkPolicy",
    "Namespace",
    "PriorityClass",
];

/// Kinds known to be cluster-scoped, for showing the plan before discovery; the executor asks
/// the API server (discovery) and that answer wins.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "PersistentVolume",
    "PriorityClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
];

/// Cluster roles (and their bindings) the istiod chart names `<prefix>-<rev>-<namespace>`
/// without an `istio.io/rev` label: proven to be the revision's by their exact name.
const ISTIOD_CLUSTER_ROLE_PREFIXES: &[&str] = &[
    "istiod-clusterrole",
    "istiod-gateway-controller",
    "istio-reader-clusterrole",
];

/// Charts of cluster singletons: one per cluster, upgraded in place even with revisions, never
/// removed with one (DOMAIN §1). The cni chart labels itself `istio.io/rev=default` without a
/// revision value, so labels prove nothing here.
pub const SINGLETON_CHARTS: &[&str] = &["cni", "ztunnel"];

/// `operator.istio.io/component` values of the singletons istioctl installs.
pub const SINGLETON_COMPONENTS: &[&str] = &["Cni", "Ztunnel"];

/// Helm orders by kind, stably; unknown kinds last, alphabetically among themselves.
pub fn uninstall_rank(kind: &str) -> (usize, &str) {
    match UNINSTALL_ORDER.iter().position(|k| *k == kind) {
        Some(i) => (i, ""),
        None => (UNINSTALL_ORDER.len(), kind),
    }
}

pub fn sort_for_uninstall(objects: &mut [ObjectKey]) {
    objects.sort_by(|a, b| uninstall_rank(&a.kind).cmp(&uninstall_rank(&b.kind)));
}

/// One Kubernetes object, as a manifest or a label names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped objects (as far as the plan knows; see [`CLUSTER_SCOPED`]).
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    /// `Deployment istio-system/istiod-1-20`, `ClusterRole istiod-clusterrole-1-20`.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// (group, version) of `apiVersion`; the core group is `""`.
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version.as_str()),
        }
    }

    pub fn is_workload(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "Deployment" | "StatefulSet" | "DaemonSet"
        )
    }
}

/// Removal order: gateways first (their pods are data plane still running on OLD's istiod),
/// then the control plane, then whatever else OLD left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    Gateway,
    ControlPlane,
    Leftover,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Gateway => "gateway",
            Component::ControlPlane => "control plane",
            Component::Leftover => "leftovers",
        }
    }

    fn of_chart(chart: &str) -> Self {
        match chart {
            "gateway" | "gateways" => Component::Gateway,
            "istiod" | "istiod-remote" => Component::ControlPlane,
            _ => Component::Leftover,
        }
    }

    /// `operator.istio.io/component` values of istioctl/operator installs.
    fn of_operator_label(value: Option<&str>) -> Self {
        match value {
            Some("IngressGateways" | "EgressGateways") => Component::Gateway,
            Some("Pilot") => Component::ControlPlane,
            _ => Component::Leftover,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum UninstallMethod {
    /// Helm's uninstall carried out here: mark uninstalling, delete the manifest's objects in
    /// UninstallOrder (keeping `keep`), delete every release record.
    Native,
    /// The release has delete hooks, which only Helm can run: the `helm` binary does it.
    HelmBinary { path: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRemoval {
    pub name: String,
    pub namespace: String,
    pub chart: String,
    pub chart_version: String,
    pub status: String,
    pub component: Component,
    pub method: UninstallMethod,
    /// The manifest's objects, in Helm's uninstall order, `keep` ones excluded.
    pub delete: Vec<ObjectKey>,
    /// Objects annotated `helm.sh/resource-policy`: left in place, as Helm does. Helm trims and
    /// lower-cases the value; `keep` keeps, and any other value leaves the object out of both
    /// the kept and the deleted lists (pkg/action/resource_policy.go), so it stays too.
    pub kept: Vec<ObjectKey>,
    pub delete_hooks: Vec<String>,
}

impl ReleaseRemoval {
    /// `helm uninstall <name> -n <ns>`: what to run by hand when this tool cannot.
    pub fn helm_command(&self) -> String {
        format!("helm uninstall {} -n {}", self.name, self.namespace)
    }
}

/// Objects of a revision installed without Helm, one component at a time.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelledRemoval {
    pub component: Component,
    pub delete: Vec<ObjectKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum PruneStep {
    HelmRelease(ReleaseRemoval),
    Objects(LabelledRemoval),
}

impl PruneStep {
    pub fn component(&self) -> Component {
        match self {
            PruneStep::HelmRelease(r) => r.component,
            PruneStep::Objects(o) => o.component,
        }
    }

    pub fn objects(&self) -> &[ObjectKey] {
        match self {
            PruneStep::HelmRelease(r) => &r.delete,
            PruneStep::Objects(o) => &o.delete,
        }
    }
}

/// Why the prune may not go ahead (the order blockers are listed in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockerReason {
    NamespaceSelectsRevision,
    WorkloadSelectsRevision,
    PodsRunRevision,
    TagPointsAtRevision,
    DefaultValidatorPointsAtRevision,
    GatewayStillServing,
    /// Overridden by `--allow-address-change` alone, never by `--force`.
    AddressWouldDisappear,
    OnlyRevision,
    HelmOperationPending,
    CannotVerify,
    /// Not overridable: a release whose delete hooks only Helm can run, and no helm on PATH.
    DeleteHooksNeedHelm,
    /// Not overridable: a release record whose manifest cannot be read.
    UnreadableRelease,
    ZtunnelUsesRevision,
    ConfigPinnedToRevision,
    GatewayApiGatewayOnRevision,
}

/// How a namespace's label selects the revision being pruned (DOMAIN §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "kebab-case")]
pub enum Selection {
    /// `istio-injection=enabled`: the default revision injects.
    LegacyLabel,
    /// `istio.io/rev=<tag>`, and the tag points at the revision.
    Tag { tag: String },
    /// `istio.io/rev=<revision>`.
    RevisionLabel,
}

/// Another revision's gateway in the same namespace, for the "still serving" blocker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OtherGateway {
    pub name: String,
    pub revision: Option<String>,
    pub has_address: bool,
}

/// A gateway Service the prune leaves, with its external addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressHolder {
    pub service: String,
    /// The gateway (its Deployment) the Service belongs to, and that gateway's revision.
    pub gateway: String,
    pub revision: Option<String>,
    pub addresses: Vec<String>,
}

/// Where a Service's external address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressSource {
    /// `status.loadBalancer.ingress[]` (`ip`, else `hostname`): the cloud's load balancer.
    LoadBalancer,
    /// `spec.externalIPs`.
    ExternalIp,
}

/// One external address of a Service, and whether clients can still reach the mesh on it after
/// the prune.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalAddress {
    pub address: String,
    pub source: AddressSource,
    /// `namespace/name` of the other Services left after the prune that hold it too.
    pub also_held_by: Vec<String>,
    /// False: the prune deletes the Service and nothing left holds the address.
    pub survives: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAddresses {
    pub name: String,
    /// The prune deletes this Service.
    pub deleted: bool,
    pub addresses: Vec<ExternalAddress>,
}

/// A gateway's Services and their external addresses: which survive the prune and which go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayAddresses {
    pub namespace: String,
    /// The gateway Deployment (the gateway chart names its Service after it); for a Service of
    /// no gateway, the Service itself.
    pub gateway: String,
    pub revision: Option<String>,
    /// The prune deletes this gateway.
    pub deleted: bool,
    pub services: Vec<ServiceAddresses>,
}

/// What blocks the prune, with the facts its message and fix are written from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Blocker {
    #[serde(rename_all = "camelCase")]
    NamespaceSelectsRevision {
        namespace: String,
        selection: Selection,
    },
    #[serde(rename_all = "camelCase")]
    WorkloadSelectsRevision {
        kind: WorkloadKind,
        namespace: String,
        name: String,
    },
    #[serde(rename_all = "camelCase")]
    PodsRunRevision {
        namespace: String,
        pods: Vec<String>,
    },
    #[serde(rename_all = "camelCase")]
    TagPointsAtRevision {
        tag: String,
        webhook: String,
    },
    #[serde(rename_all = "camelCase")]
    DefaultValidatorPointsAtRevision {
        validator: String,
        /// The `base` release that owns it, if Helm does: its `defaultRevision` moves it.
        base_release: Option<(String, String)>,
    },
    #[serde(rename_all = "camelCase")]
    GatewayStillServing {
        namespace: String,
        name: String,
        addresses: Vec<String>,
        others: Vec<OtherGateway>,
    },
    /// A Service the prune deletes holds external addresses no Service it leaves holds: the
    /// clients and DNS records pointing at them lose the mesh (issue 11 item 8).
    #[serde(rename_all = "camelCase")]
    AddressWouldDisappear {
        namespace: String,
        service: String,
        /// The addresses that go with it.
        addresses: Vec<String>,
        /// The Services of other gateways in its namespace that keep an address: where clients
        /// move to.
        successors: Vec<AddressHolder>,
    },
    OnlyRevision,
    #[serde(rename_all = "camelCase")]
    HelmOperationPending {
        namespace: String,
        release: String,
        status: String,
    },
    #[serde(rename_all = "camelCase")]
    CannotVerify {
        verb: String,
        resource: String,
        message: String,
    },
    #[serde(rename_all = "camelCase")]
    DeleteHooksNeedHelm {
        namespace: String,
        release: String,
        hooks: Vec<String>,
    },
    #[serde(rename_all = "camelCase")]
    UnreadableRelease {
        namespace: String,
        release: String,
        why: String,
    },
    /// ztunnel's `revision` value names OLD: it gets its certificates and config from OLD's
    /// istiod, and it is upgraded in place, never pruned.
    #[serde(rename_all = "camelCase")]
    ZtunnelUsesRevision {
        namespace: String,
        release: String,
        chart_version: String,
    },
    /// The same for a ztunnel no Helm release manages (istioctl renders the same chart): its
    /// pod template's `istio.io/rev` (or its own label) names OLD.
    #[serde(rename_all = "camelCase")]
    ZtunnelDaemonSetUsesRevision {
        namespace: String,
        name: String,
    },
    /// Config pinned to OLD (DOMAIN §4): once OLD's istiod is gone no istiod loads it, so a
    /// pinned DENY AuthorizationPolicy or STRICT PeerAuthentication silently stops enforcing.
    /// A Gateway API gateway whose label (or tag) resolves to OLD loses its controller.
    #[serde(rename_all = "camelCase")]
    ConfigPinnedToRevision {
        /// kubectl's resource argument: `authorizationpolicy.security.istio.io`.
        resource: String,
        kind: String,
        namespace: String,
        name: String,
        /// The label's value: OLD, or a tag pointing at OLD (Gateway API gateways only).
        label: String,
    },
    /// Pods istiod OLD rendered for a Gateway API `Gateway` (or waypoint) whose own label does
    /// not name OLD (unlabelled: its namespace or the default revision decides). They move when
    /// the Gateway is relabelled; a restart would only re-render them from OLD again.
    #[serde(rename_all = "camelCase")]
    GatewayApiGatewayOnRevision {
        namespace: String,
        gateway: String,
        deployment: String,
        pods: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneBlocker {
    /// What it is about: `namespace/bookinfo`, `tag/prod`, `helmrelease/istio-system/x`.
    pub subject: String,
    #[serde(flatten)]
    pub blocker: Blocker,
    /// `--force` may override it; hooks, unreadable releases and unreadable kinds cannot be
    /// forced.
    pub forceable: bool,
}

impl PruneBlocker {
    pub fn reason(&self) -> BlockerReason {
        match &self.blocker {
            Blocker::NamespaceSelectsRevision { .. } => BlockerReason::NamespaceSelectsRevision,
            Blocker::WorkloadSelectsRevision { .. } => BlockerReason::WorkloadSelectsRevision,
            Blocker::PodsRunRevision { .. } => BlockerReason::PodsRunRevision,
            Blocker::TagPointsAtRevision { .. } => BlockerReason::TagPointsAtRevision,
            Blocker::DefaultValidatorPointsAtRevision { .. } => {
                BlockerReason::DefaultValidatorPointsAtRevision
            }
            Blocker::GatewayStillServing { .. } => BlockerReason::GatewayStillServing,
            Blocker::AddressWouldDisappear { .. } => BlockerReason::AddressWouldDisappear,
            Blocker::OnlyRevision => BlockerReason::OnlyRevision,
            Blocker::HelmOperationPending { .. } => BlockerReason::HelmOperationPending,
            Blocker::CannotVerify { .. } => BlockerReason::CannotVerify,
            Blocker::DeleteHooksNeedHelm { .. } => BlockerReason::DeleteHooksNeedHelm,
            Blocker::UnreadableRelease { .. } => BlockerReason::UnreadableRelease,
            Blocker::ZtunnelUsesRevision { .. } | Blocker::ZtunnelDaemonSetUsesRevision { .. } => {
                BlockerReason::ZtunnelUsesRevision
            }
            Blocker::ConfigPinnedToRevision { .. } => BlockerReason::ConfigPinnedToRevision,
            Blocker::GatewayApiGatewayOnRevision { .. } => {
                BlockerReason::GatewayApiGatewayOnRevision
            }
        }
    }
}

/// What the plan says but does not refuse for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum PruneWarning {
    /// A release whose manifest names several revisions and no `revision` value decides.
    #[serde(rename_all = "camelCase")]
    AmbiguousRelease {
        namespace: String,
        release: String,
        revisions: Vec<String>,
    },
    /// Proxies whose revision only an image tag tells.
    #[serde(rename_all = "camelCase")]
    UnidentifiedProxies { namespace: String, pods: usize },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrunePlan {
    pub revision: String,
    /// The revisions installed now (OLD included, while it is).
    pub installed: Vec<String>,
    /// The revision the fixes point at: the newest other installed revision.
    pub successor: Option<String>,
    pub steps: Vec<PruneStep>,
    pub blockers: Vec<PruneBlocker>,
    pub warnings: Vec<PruneWarning>,
    /// Per gateway in the namespaces where the prune deletes a Service holding an external
    /// address: every Service there with one, and whether each address survives.
    pub addresses: Vec<GatewayAddresses>,
    pub force: bool,
    /// `--allow-address-change`: the user moved clients off the addresses that go.
    pub allow_address_change: bool,
}

impl PrunePlan {
    /// Refused: a blocker `--force` cannot override, or any blocker without `--force`.
    pub fn refused(&self) -> bool {
        self.blockers.iter().any(|b| !b.forceable || !self.force)
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Every object the plan may delete (the only ones the executor may touch).
    pub fn objects(&self) -> impl Iterator<Item = &ObjectKey> {
        self.steps.iter().flat_map(|s| s.objects().iter())
    }

    pub fn releases(&self) -> impl Iterator<Item = &ReleaseRemoval> {
        self.steps.iter().filter_map(|s| match s {
            PruneStep::HelmRelease(r) => Some(r),
            PruneStep::Objects(_) => None,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    pub force: bool,
    /// `--allow-address-change`: lifts the blocker for addresses that disappear, and only that
    /// one (`--force` does not: one flag per decision).
    pub allow_address_change: bool,
    /// Path of a `helm` executable on PATH, if any (found by the caller: lookup is I/O).
    pub helm_binary: Option<String>,
}

/// What a Helm release's records say about the revision it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOwnership {
    /// Not an Istio per-revision chart (`base`, or not Istio's): never pruned.
    NotRevisioned,
    /// `cni` or `ztunnel`: a cluster singleton, never pruned whatever its values and labels.
    ClusterSingleton,
    Revision(String),
    /// Its manifest carries several `istio.io/rev` values and no `revision` value decides.
    Ambiguous(Vec<String>),
}

/// Parses a Helm manifest (multi-document YAML) into objects; empty documents are skipped.
pub fn parse_manifest(manifest: &str) -> Result<Vec<DynamicObject>, String> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(manifest).map_err(|e| format!("invalid YAML: {e}"))?;
    docs.into_iter()
        .filter(|d| d.is_object())
        .map(|d| {
            serde_json::from_value::<DynamicObject>(d).map_err(|e| format!("not an object: {e}"))
        })
        .collect()
}

fn rev_labels_of(obj: &DynamicObject) -> impl Iterator<Item = &str> {
    let own = obj.metadata.labels.as_ref().and_then(|l| l.get(keys::REV));
    let template = obj
        .data
        .pointer("/spec/template/metadata/labels")
        .and_then(|l| l.get(keys::REV))
        .and_then(|v| v.as_str());
    own.map(String::as_str).into_iter().chain(template)
}

/// Does this release belong to a revision, and which (DOMAIN §1, §6)?
pub fn release_ownership(release: &HelmRelease) -> ReleaseOwnership {
    if !release.is_istio_chart() || release.chart == "base" {
        return ReleaseOwnership::NotRevisioned;
    }
    if SINGLETON_CHARTS.contains(&release.chart.as_str()) {
        return ReleaseOwnership::ClusterSingleton;
    }
    if let Some(rev) = release.revision_value.as_deref().filter(|r| !r.is_empty()) {
        return ReleaseOwnership::Revision(rev.to_string());
    }
    let Ok(objects) = parse_manifest(&release.manifest) else {
        return ReleaseOwnership::NotRevisioned;
    };
    let revs: BTreeSet<&str> = objects.iter().flat_map(rev_labels_of).collect();
    let mut revs = revs.into_iter();
    match (revs.next(), revs.next()) {
        (None, _) => ReleaseOwnership::NotRevisioned,
        (Some(one), None) => ReleaseOwnership::Revision(one.to_string()),
        (Some(a), Some(b)) => {
            let mut all = vec![a.to_string(), b.to_string()];
            all.extend(revs.map(str::to_string));
            ReleaseOwnership::Ambiguous(all)
        }
    }
}

/// The manifest's objects for deletion and the `keep` ones, namespaced by the release's
/// namespace where the manifest leaves it out (as Helm does).
fn manifest_objects(release: &HelmRelease) -> Result<(Vec<ObjectKey>, Vec<ObjectKey>), String> {
    let mut delete = Vec::new();
    let mut kept = Vec::new();
    for obj in parse_manifest(&release.manifest)? {
        let Some(types) = obj.types.as_ref() else {
            return Err("a document has no apiVersion/kind".into());
        };
        let Some(name) = obj.metadata.name.clone() else {
            return Err(format!("a {} has no name", types.kind));
        };
        let namespace = if CLUSTER_SCOPED.contains(&types.kind.as_str()) {
            None
        } else {
            Some(
                obj.metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| release.namespace.clone()),
            )
        };
        let key = ObjectKey {
            api_version: types.api_version.clone(),
            kind: types.kind.clone(),
            namespace,
            name,
        };
        let policy = obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(keys::RESOURCE_POLICY));
        if policy.is_some() {
            kept.push(key);
        } else {
            delete.push(key);
        }
    }
    sort_for_uninstall(&mut delete);
    Ok((delete, kept))
}

fn is_delete_hook(events: &[String]) -> bool {
    events
        .iter()
        .any(|e| e == "pre-delete" || e == "post-delete")
}

/// Does a label-installed object belong to `revision`? Helm-managed objects are the releases'
/// business; tag webhooks and the default validator are interlocks, never deleted.
pub fn labelled_object_component(
    obj: &ObjectRef,
    revision: &str,
    istiod_namespace: &str,
) -> Option<Component> {
    if obj.helm_release.is_some()
        || obj.labels.contains_key(keys::TAG)
        || obj.name == keys::DEFAULT_VALIDATOR
        || is_cluster_singleton(&obj.labels)
    {
        return None;
    }
    let rev = obj.labels.get(keys::REV).map(String::as_str);
    let component = obj.labels.get(keys::OPERATOR_COMPONENT).map(String::as_str);
    if rev == Some(revision) && component.is_some() {
        return Some(Component::of_operator_label(component));
    }
    let own_name = match obj.kind.as_str() {
        "MutatingWebhookConfiguration" => {
            obj.name == format!("istio-sidecar-injector-{revision}")
                || obj
                    .name
                    .starts_with(&format!("istio-sidecar-injector-{revision}-"))
        }
        "ValidatingWebhookConfiguration" => {
            obj.name == format!("istio-validator-{revision}-{istiod_namespace}")
        }
        "ConfigMap" => [
            format!("istio-{revision}"),
            format!("istio-sidecar-injector-{revision}"),
            format!("values-{revision}"),
        ]
        .contains(&obj.name),
        "ClusterRole" | "ClusterRoleBinding" => ISTIOD_CLUSTER_ROLE_PREFIXES
            .iter()
            .any(|p| obj.name == format!("{p}-{revision}-{istiod_namespace}")),
        _ => false,
    };
    // A name that matches but a label that names another revision is not proof.
    (own_name && rev.is_none_or(|r| r == revision)).then_some(Component::Leftover)
}

/// istioctl's CNI and ztunnel components, whatever their `istio.io/rev` says (DOMAIN §1).
pub fn is_cluster_singleton(labels: &Labels) -> bool {
    labels
        .get(keys::OPERATOR_COMPONENT)
        .is_some_and(|c| SINGLETON_COMPONENTS.contains(&c.as_str()))
}

/// Why an object found live must be left alone although the plan lists it (checked by the
/// executor on each object just before deleting it). `None`: it may be deleted.
pub fn live_object_not_owned(
    step: &PruneStep,
    revision: &str,
    labels: &Labels,
    annotations: &Labels,
) -> Option<String> {
    if let Some(other) = labels.get(keys::REV).filter(|r| r.as_str() != revision) {
        return Some(format!("labelled istio.io/rev={other}"));
    }
    if labels.contains_key(keys::TAG) {
        return Some("a revision tag".into());
    }
    if is_cluster_singleton(labels) {
        return Some("a cluster singleton (istio-cni or ztunnel), upgraded in place".into());
    }
    let release = annotations.get(keys::HELM_RELEASE_NAME);
    let release_ns = annotations.get(keys::HELM_RELEASE_NAMESPACE);
    match step {
        PruneStep::HelmRelease(r) => {
            if release != Some(&r.name) || release_ns != Some(&r.namespace) {
                return Some(match (release, release_ns) {
                    (Some(name), Some(ns)) => format!("managed by Helm release {ns}/{name}"),
                    _ => format!("not annotated as part of Helm release {}", r.name),
                });
            }
        }
        PruneStep::Objects(_) => {
            // Planned from labels: a live object that a Helm release has since adopted is
            // that release's business.
            if let Some(name) = release {
                return Some(format!("managed by Helm release {name}"));
            }
        }
    }
    None
}

/// The newest installed revision other than `revision`: what the fixes point at.
fn successor(analysis: &Analysis, revision: &str) -> Option<String> {
    let cp = &analysis.control_plane;
    cp.revisions
        .iter()
        .filter(|r| r.name != revision)
        .max_by_key(|r| {
            (
                cp.version_of(&r.name).map(|v| (v.major, v.minor, v.patch)),
                r.name.clone(),
            )
        })
        .map(|r| r.name.clone())
}

/// What a prune plan is built up in: steps, blockers and warnings, for the revision `old`.
struct Planner<'a> {
    snapshot: &'a Snapshot,
    analysis: &'a Analysis,
    options: &'a PruneOptions,
    old: &'a str,
    steps: Vec<PruneStep>,
    blockers: Vec<PruneBlocker>,
    warnings: Vec<PruneWarning>,
}

impl<'a> Planner<'a> {
    fn block(&mut self, subject: String, blocker: Blocker) {
        // What could not be read cannot be proved unused: no --force past it.
        // An address that goes is its own decision: `--allow-address-change`, never `--force`.
        let forceable = !matches!(
            blocker,
            Blocker::DeleteHooksNeedHelm { .. }
                | Blocker::UnreadableRelease { .. }
                | Blocker::CannotVerify { .. }
                | Blocker::AddressWouldDisappear { .. }
        );
        self.blockers.push(PruneBlocker {
            subject,
            blocker,
            forceable,
        });
    }

    /// The Helm releases of the revision, one step each, in component order.
    fn releases(&mut self) {
        let (snapshot, old) = (self.snapshot, self.old);
        let mut releases: Vec<&HelmRelease> = snapshot
            .helm_releases
            .iter()
            .filter(|r| r.status != "uninstalled")
            .collect();
        releases.sort_by_key(|r| {
            (
                Component::of_chart(&r.chart),
                r.namespace.clone(),
                r.name.clone(),
            )
        });
        for release in releases {
            match release_ownership(release) {
                ReleaseOwnership::Revision(rev) if rev == old => self.release(release),
                ReleaseOwnership::ClusterSingleton
                    if release.chart == "ztunnel"
                        && release.revision_value.as_deref() == Some(old) =>
                {
                    let blocker = Blocker::ZtunnelUsesRevision {
                        namespace: release.namespace.clone(),
                        release: release.name.clone(),
                        chart_version: release.chart_version.clone(),
                    };
                    let subject = format!("helmrelease/{}/{}", release.namespace, release.name);
                    self.block(subject, blocker);
                }
                ReleaseOwnership::Ambiguous(revisions) if revisions.iter().any(|r| r == old) => {
                    self.warnings.push(PruneWarning::AmbiguousRelease {
                        namespace: release.namespace.clone(),
                        release: release.name.clone(),
                        revisions,
                    });
                }
                _ => {}
            }
        }
    }

    fn release(&mut self, release: &HelmRelease) {
        let options = self.options;
        let subject = format!("helmrelease/{}/{}", release.namespace, release.name);
        let (namespace, name) = (release.namespace.clone(), release.name.clone());
        let (delete, kept) = match manifest_objects(release) {
            Ok(objects) => objects,
            Err(why) => {
                let blocker = Blocker::UnreadableRelease {
                    namespace,
                    release: name,
                    why,
                };
                return self.block(subject, blocker);
            }
        };
        let delete_hooks: Vec<String> = release
            .hooks
            .iter()
            .filter(|h| is_delete_hook(&h.events))
            .map(|h| format!("{} {} ({})", h.kind, h.name, h.events.join(",")))
            .collect();
        let method = match (&options.helm_binary, delete_hooks.is_empty()) {
            (_, true) => UninstallMethod::Native,
            (Some(path), false) => UninstallMethod::HelmBinary { path: path.clone() },
            (None, false) => {
                let blocker = Blocker::DeleteHooksNeedHelm {
                    namespace: namespace.clone(),
                    release: name.clone(),
                    hooks: delete_hooks.clone(),
                };
                self.block(subject.clone(), blocker);
                UninstallMethod::Native
            }
        };
        if release.status.starts_with("pending-") {
            let blocker = Blocker::HelmOperationPending {
                namespace: namespace.clone(),
                release: name.clone(),
                status: release.status.clone(),
            };
            self.block(subject, blocker);
        }
        self.steps.push(PruneStep::HelmRelease(ReleaseRemoval {
            name,
            namespace,
            chart: release.chart.clone(),
            chart_version: release.chart_version.clone(),
            status: release.status.clone(),
            component: Component::of_chart(&release.chart),
            method,
            delete,
            kept,
            delete_hooks,
        }));
    }

    /// Objects of a revision installed without Helm (and not in one of its releases).
    fn labelled_objects(&mut self) {
        let (analysis, snapshot, old) = (self.analysis, self.snapshot, self.old);
        let in_releases: BTreeSet<&ObjectKey> = self
            .steps
            .iter()
            .filter_map(|s| match s {
                PruneStep::HelmRelease(r) => Some(r.delete.iter().chain(&r.kept)),
                PruneStep::Objects(_) => None,
            })
            .flatten()
            .collect();
        let istiod_namespace = analysis
            .control_plane
            .revision(old)
            .and_then(|r| r.istiod.as_ref())
            .map(|i| i.namespace.clone())
            .unwrap_or_else(|| "istio-system".into());
        let mut labelled: BTreeMap<Component, Vec<ObjectKey>> = BTreeMap::new();
        for obj in &snapshot.operator_objects {
            let Some(component) = labelled_object_component(obj, old, &istiod_namespace) else {
                continue;
            };
            let key = ObjectKey {
                api_version: obj.api_version.clone(),
                kind: obj.kind.clone(),
                namespace: obj.namespace.clone(),
                name: obj.name.clone(),
            };
            if !in_releases.contains(&key) {
                labelled.entry(component).or_default().push(key);
            }
        }
        for (component, mut delete) in labelled {
            delete.sort();
            delete.dedup();
            sort_for_uninstall(&mut delete);
            self.steps
                .push(PruneStep::Objects(LabelledRemoval { component, delete }));
        }
        self.steps.sort_by_key(PruneStep::component);
    }

    /// Workloads this prune removes, as `(kind, namespace, name)`.
    fn removed_workloads(&self) -> BTreeSet<(String, String, String)> {
        self.steps
            .iter()
            .flat_map(|s| s.objects())
            .filter(|o| o.is_workload())
            .map(|o| {
                (
                    o.kind.clone(),
                    o.namespace.clone().unwrap_or_default(),
                    o.name.clone(),
                )
            })
            .collect()
    }

    /// Reads the interlocks depend on: if they were denied, nothing can be proven unused.
    fn unreadable(&mut self) {
        let snapshot = self.snapshot;
        const NEEDED: [&str; 8] = [
            crate::snapshot::live::DISCOVERY_PATH,
            "namespaces",
            "pods",
            "mutatingwebhookconfigurations",
            "validatingwebhookconfigurations",
            "secrets",
            "deployments",
            "services",
        ];
        for w in &snapshot.warnings {
            // Pinned config blocks too: a kind that cannot be listed cannot be proven free of it.
            let config_kind = w.resource.split_once('.').is_some_and(|(plural, group)| {
                crate::snapshot::ingest::is_revision_config(group, "")
                    || (group == keys::GATEWAY_API_GROUP && plural == "gateways")
            });
            let needed = config_kind
                || NEEDED
                    .iter()
                    .any(|n| w.resource == *n || w.resource.starts_with(&format!("{n}.")));
            if needed {
                let blocker = Blocker::CannotVerify {
                    verb: w.verb.clone(),
                    resource: w.resource.clone(),
                    message: w.message.clone(),
                };
                self.block(w.resource.clone(), blocker);
            }
        }
    }

    /// Namespaces whose new pods would be injected by OLD (DOMAIN §2); returns them.
    fn namespaces(&mut self) -> BTreeSet<String> {
        let (analysis, old) = (self.analysis, self.old);
        let mut selecting = BTreeSet::new();
        for ns in &analysis.namespaces {
            if namespace_target(ns, analysis).as_deref() != Some(old) {
                continue;
            }
            selecting.insert(ns.name.clone());
            let selection = match (ns.effective.mode, &ns.effective.via_tag) {
                (InjectionMode::LegacyLabel, _) => Selection::LegacyLabel,
                (_, Some(tag)) => Selection::Tag { tag: tag.clone() },
                _ => Selection::RevisionLabel,
            };
            let blocker = Blocker::NamespaceSelectsRevision {
                namespace: ns.name.clone(),
                selection,
            };
            self.block(format!("namespace/{}", ns.name), blocker);
        }
        selecting
    }

    /// Workloads whose own pod template selects OLD, in namespaces that let pods choose.
    fn workloads(
        &mut self,
        selecting: &BTreeSet<String>,
        removed: &BTreeSet<(String, String, String)>,
    ) {
        let (analysis, old) = (self.analysis, self.old);
        for w in &analysis.workloads {
            let key = (
                w.kind.as_str().to_string(),
                w.namespace.clone(),
                w.name.clone(),
            );
            if w.expected.as_deref() != Some(old)
                || selecting.contains(&w.namespace)
                || removed.contains(&key)
            {
                continue;
            }
            let blocker = Blocker::WorkloadSelectsRevision {
                kind: w.kind,
                namespace: w.namespace.clone(),
                name: w.name.clone(),
            };
            self.block(
                format!("{}/{}/{}", w.kind.resource(), w.namespace, w.name),
                blocker,
            );
        }
    }

    /// Pods whose sidecar talks to OLD's istiod (DOMAIN §3), except the pods this prune removes.
    /// Pods of Gateway API gateways are the Gateway's business: blocked once, by the Gateway.
    /// ztunnel's pods carry its chart's `istio.io/rev` annotation but no sidecar: its revision
    /// blocks once, as ztunnel, and no restart moves them.
    fn pods(&mut self, removed: &BTreeSet<(String, String, String)>) {
        let PodsOnOld {
            by_gateway,
            by_namespace,
            unidentified,
        } = pods_on_old(self.analysis, self.old, removed);
        for (namespace, pods) in by_namespace {
            let blocker = Blocker::PodsRunRevision {
                namespace: namespace.to_string(),
                pods,
            };
            self.block(format!("namespace/{namespace}"), blocker);
        }
        for ((namespace, gateway, deployment), pods) in by_gateway {
            let subject = format!(
                "{}.{}/{namespace}/{gateway}",
                "gateway",
                keys::GATEWAY_API_GROUP
            );
            if self.blockers.iter().any(|b| b.subject == subject) {
                continue; // its own label pins it to OLD: that blocker's fix moves these pods.
            }
            let blocker = Blocker::GatewayApiGatewayOnRevision {
                namespace: namespace.to_string(),
                gateway: gateway.to_string(),
                deployment: deployment.to_string(),
                pods,
            };
            self.block(subject, blocker);
        }
        for (namespace, pods) in unidentified {
            self.warnings.push(PruneWarning::UnidentifiedProxies {
                namespace: namespace.to_string(),
                pods,
            });
        }
    }

    /// Tags and the default validator still pointing at OLD (istio/istio #35590, #43227, #60596).
    /// A ztunnel outside Helm (istioctl) that OLD's istiod still serves: upgraded in place, so
    /// OLD must stay until it names the new revision (Helm-managed ones: `releases`).
    fn ztunnel_without_helm(&mut self) {
        let (snapshot, old) = (self.snapshot, self.old);
        for w in &snapshot.workloads {
            let ztunnel = w.helm_release.is_none() && is_ztunnel(w);
            let revision = w
                .template_annotations
                .get(keys::REV)
                .or_else(|| w.labels.get(keys::REV));
            if ztunnel && revision.map(String::as_str) == Some(old) {
                let blocker = Blocker::ZtunnelDaemonSetUsesRevision {
                    namespace: w.namespace.clone(),
                    name: w.name.clone(),
                };
                self.block(format!("daemonset/{}/{}", w.namespace, w.name), blocker);
            }
        }
    }

    fn tags_and_validator(&mut self) {
        let (analysis, snapshot, old) = (self.analysis, self.snapshot, self.old);
        let cp = &analysis.control_plane;
        for tag in cp.tags.iter().filter(|t| t.revision == old) {
            let blocker = Blocker::TagPointsAtRevision {
                tag: tag.name.clone(),
                webhook: tag.webhook.clone(),
            };
            self.block(format!("tag/{}", tag.name), blocker);
        }
        if let Some(v) = &cp.default_validator
            && v.revision.as_deref() == Some(old)
        {
            let base_release = snapshot
                .helm_releases
                .iter()
                .find(|r| r.chart == "base" && r.status != "uninstalled")
                .map(|b| (b.namespace.clone(), b.name.clone()));
            let blocker = Blocker::DefaultValidatorPointsAtRevision {
                validator: v.name.clone(),
                base_release,
            };
            self.block(
                format!("validatingwebhookconfiguration/{}", v.name),
                blocker,
            );
        }
    }

    /// Gateways: the old one still has the address clients use, and no other revision's does.
    fn gateways(&mut self, removed: &BTreeSet<(String, String, String)>) {
        let (analysis, old) = (self.analysis, self.old);
        let gateways = &analysis.gateways;
        for g in gateways.iter().filter(|g| {
            g.revision.as_deref() == Some(old)
                && !g.addresses.is_empty()
                && removed.contains(&("Deployment".into(), g.namespace.clone(), g.name.clone()))
        }) {
            let others: Vec<OtherGateway> = gateways
                .iter()
                .filter(|o| o.namespace == g.namespace && o.revision.as_deref() != Some(old))
                .map(|o| OtherGateway {
                    name: o.name.clone(),
                    revision: o.revision.clone(),
                    has_address: !o.addresses.is_empty(),
                })
                .collect();
            if others.iter().any(|o| o.has_address) {
                continue;
            }
            let blocker = Blocker::GatewayStillServing {
                namespace: g.namespace.clone(),
                name: g.name.clone(),
                addresses: g.addresses.clone(),
                others,
            };
            self.block(format!("gateway/{}/{}", g.namespace, g.name), blocker);
        }
    }

    /// The external addresses of the Services this prune deletes, per gateway, beside those of
    /// the Services it leaves in the same namespaces. Clients and DNS point at addresses, not
    /// at revisions: one that no remaining Service holds is cut, whatever else serves, so it is
    /// a blocker until the user says clients have moved (`--allow-address-change`).
    fn addresses(&mut self) -> Vec<GatewayAddresses> {
        let deleted: BTreeSet<(&str, &str)> = self
            .steps
            .iter()
            .flat_map(|s| s.objects())
            .filter(|o| o.kind == "Service")
            .filter_map(|o| Some((o.namespace.as_deref()?, o.name.as_str())))
            .collect();
        let groups = address_groups(self.snapshot, self.analysis, &deleted);
        if !self.options.allow_address_change {
            self.block_disappearing_addresses(&groups);
        }
        groups
    }

    /// One `AddressWouldDisappear` per deleted Service with an address no remaining Service
    /// holds, naming what survives in its namespace.
    fn block_disappearing_addresses(&mut self, groups: &[GatewayAddresses]) {
        for g in groups {
            for s in g.services.iter().filter(|s| s.deleted) {
                let going: Vec<String> = s
                    .addresses
                    .iter()
                    .filter(|a| !a.survives)
                    .map(|a| a.address.clone())
                    .collect();
                if going.is_empty() {
                    continue;
                }
                let successors = groups
                    .iter()
                    .filter(|o| o.namespace == g.namespace && !o.deleted)
                    .flat_map(|o| {
                        o.services.iter().map(|os| AddressHolder {
                            service: os.name.clone(),
                            gateway: o.gateway.clone(),
                            revision: o.revision.clone(),
                            addresses: os.addresses.iter().map(|a| a.address.clone()).collect(),
                        })
                    })
                    .collect();
                let blocker = Blocker::AddressWouldDisappear {
                    namespace: g.namespace.clone(),
                    service: s.name.clone(),
                    addresses: going,
                    successors,
                };
                self.block(format!("service/{}/{}", g.namespace, s.name), blocker);
            }
        }
    }

    /// Config pinned to OLD stops applying once OLD is gone (DOMAIN §4): a blocker, never
    /// deleted. Istio config labelled with a tag is loaded by no istiod before or after: a
    /// finding of the inventory, not this prune's business.
    fn pinned_config(&mut self) {
        let (analysis, old) = (self.analysis, self.old);
        for c in &analysis.pinned_config {
            if c.pinned_revision.as_deref() != Some(old) {
                continue;
            }
            let resource = c.kubectl_resource();
            let subject = format!("{resource}/{}/{}", c.namespace, c.name);
            let blocker = Blocker::ConfigPinnedToRevision {
                resource,
                kind: c.kind.clone(),
                namespace: c.namespace.clone(),
                name: c.name.clone(),
                label: c.revision.clone(),
            };
            self.block(subject, blocker);
        }
    }
}

pub fn plan_prune(
    snapshot: &Snapshot,
    analysis: &Analysis,
    revision: &RevisionName,
    options: &PruneOptions,
) -> Result<PrunePlan, RevError> {
    let old = revision.as_str();
    let cp = &analysis.control_plane;
    let mut planner = Planner {
        snapshot,
        analysis,
        options,
        old,
        steps: Vec::new(),
        blockers: Vec::new(),
        warnings: Vec::new(),
    };
    planner.releases();
    planner.labelled_objects();
    let gone = planner.steps.is_empty() && cp.revision(old).is_none();
    if gone && let Some(tag) = cp.tag(old) {
        // Pruning a tag by mistake would move nothing; say what it is instead.
        return Err(RevError::UnknownRevision {
            revision: old.to_string(),
            installed: cp.revisions.iter().map(|r| r.name.clone()).collect(),
            tag_target: Some(tag.revision.clone()),
        });
    }
    let removed = planner.removed_workloads();
    planner.unreadable();
    let selecting = planner.namespaces();
    planner.workloads(&selecting, &removed);
    planner.pinned_config();
    planner.pods(&removed);
    planner.tags_and_validator();
    planner.ztunnel_without_helm();
    planner.gateways(&removed);
    let addresses = planner.addresses();
    let successor = successor(analysis, old);
    if successor.is_none() && !gone {
        planner.block(format!("revision/{old}"), Blocker::OnlyRevision);
    }
    let Planner {
        steps,
        mut blockers,
        warnings,
        ..
    } = planner;
    blockers.sort_by(|a, b| (a.reason(), &a.subject).cmp(&(b.reason(), &b.subject)));
    Ok(PrunePlan {
        revision: old.to_string(),
        installed: cp.revisions.iter().map(|r| r.name.clone()).collect(),
        successor,
        steps,
        blockers,
        warnings,
        addresses,
        force: options.force,
        allow_address_change: options.allow_address_change,
    })
}

/// The revision a namespace's label points at, even when that revision's injector is already
/// gone (an interrupted prune): the label still selects it.
fn namespace_target(ns: &crate::analysis::NamespaceStatus, analysis: &Analysis) -> Option<String> {
    if let Some(rev) = &ns.effective.revision {
        return Some(rev.clone());
    }
    let selector = ns.effective.selector.as_deref()?;
    match analysis.control_plane.resolve(selector).revision() {
        Some(rev) => Some(rev.to_string()),
        None => Some(selector.to_string()),
    }
}

/// A Service's external addresses, each once: load-balancer ingress first, then externalIPs.
fn external_addresses(s: &ServiceInfo) -> Vec<(String, AddressSource)> {
    let mut all: Vec<(String, AddressSource)> = s
        .load_balancer
        .iter()
        .map(|a| (a.clone(), AddressSource::LoadBalancer))
        .chain(
            s.external_ips
                .iter()
                .map(|a| (a.clone(), AddressSource::ExternalIp)),
        )
        .collect();
    let mut seen = BTreeSet::new();
    all.retain(|(a, _)| seen.insert(a.clone()));
    all
}

/// Per gateway Service, in every namespace where a deleted Service had an external address:
/// its addresses, who else holds each once `deleted` are gone, and whether it survives.
fn address_groups(
    snapshot: &Snapshot,
    analysis: &Analysis,
    deleted: &BTreeSet<(&str, &str)>,
) -> Vec<GatewayAddresses> {
    let is_deleted = |s: &ServiceInfo| deleted.contains(&(s.namespace.as_str(), s.name.as_str()));
    // Who holds each address once the prune is done.
    let mut held_after: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in snapshot.services.iter().filter(|s| !is_deleted(s)) {
        for (address, _) in external_addresses(s) {
            held_after
                .entry(address)
                .or_default()
                .push(format!("{}/{}", s.namespace, s.name));
        }
    }
    let namespaces: BTreeSet<&str> = snapshot
        .services
        .iter()
        .filter(|s| is_deleted(s) && !external_addresses(s).is_empty())
        .map(|s| s.namespace.as_str())
        .collect();
    let mut groups: BTreeMap<(String, String), GatewayAddresses> = BTreeMap::new();
    for s in snapshot
        .services
        .iter()
        .filter(|s| namespaces.contains(s.namespace.as_str()))
    {
        let own = format!("{}/{}", s.namespace, s.name);
        let addresses: Vec<ExternalAddress> = external_addresses(s)
            .into_iter()
            .map(|(address, source)| {
                let also_held_by: Vec<String> = held_after
                    .get(&address)
                    .into_iter()
                    .flatten()
                    .filter(|h| **h != own)
                    .cloned()
                    .collect();
                let survives = !is_deleted(s) || !also_held_by.is_empty();
                ExternalAddress {
                    address,
                    source,
                    also_held_by,
                    survives,
                }
            })
            .collect();
        if addresses.is_empty() {
            continue;
        }
        let gateway = analysis
            .gateways
            .iter()
            .find(|g| g.namespace == s.namespace && g.name == s.name);
        let group = groups
            .entry((s.namespace.clone(), s.name.clone()))
            .or_insert_with(|| GatewayAddresses {
                namespace: s.namespace.clone(),
                gateway: gateway.map_or(s.name.clone(), |g| g.name.clone()),
                revision: gateway.and_then(|g| g.revision.clone()),
                deleted: is_deleted(s),
                services: Vec::new(),
            });
        group.services.push(ServiceAddresses {
            name: s.name.clone(),
            deleted: is_deleted(s),
            addresses,
        });
    }
    groups.into_values().collect()
}

/// Live pods still on OLD once the prune's own deletions are done, grouped as the blockers
/// name them. ztunnel's pods are not among them: the analysis gives them no sidecar (they block
/// once, as ztunnel).
struct PodsOnOld<'a> {
    /// Pods of a Deployment istiod rendered for a Gateway API Gateway:
    /// (namespace, Gateway, Deployment) → pods.
    by_gateway: BTreeMap<(&'a str, &'a str, &'a str), Vec<String>>,
    by_namespace: BTreeMap<&'a str, Vec<String>>,
    /// Proxies whose revision cannot be told, per namespace.
    unidentified: BTreeMap<&'a str, usize>,
}

fn pods_on_old<'a>(
    analysis: &'a Analysis,
    old: &str,
    removed: &BTreeSet<(String, String, String)>,
) -> PodsOnOld<'a> {
    let rendered: BTreeMap<(&str, &str), &str> = analysis
        .gateways
        .iter()
        .filter_map(|g| {
            let gateway = g.gateway_api.as_deref()?;
            Some(((g.namespace.as_str(), g.name.as_str()), gateway))
        })
        .collect();
    let mut found = PodsOnOld {
        by_gateway: BTreeMap::new(),
        by_namespace: BTreeMap::new(),
        unidentified: BTreeMap::new(),
    };
    for pod in &analysis.pods {
        let removed_with_workload = pod.workload.as_ref().is_some_and(|w| {
            removed.contains(&(
                w.kind.as_str().to_string(),
                w.namespace.clone(),
                w.name.clone(),
            ))
        });
        if removed_with_workload {
            continue;
        }
        let gateway = pod.workload.as_ref().and_then(|w| {
            let key = (w.namespace.as_str(), w.name.as_str());
            (w.kind == WorkloadKind::Deployment)
                .then(|| rendered.get(&key).map(|g| (key.0, *g, key.1)))
                .flatten()
        });
        if let (Some(key), Some(rev)) = (gateway, pod.sidecar.revision())
            && rev == old
        {
            found
                .by_gateway
                .entry(key)
                .or_default()
                .push(pod.name.clone());
            continue;
        }
        match &pod.sidecar {
            SidecarRevision::Revision(r) if r == old => found
                .by_namespace
                .entry(&pod.namespace)
                .or_default()
                .push(pod.name.clone()),
            SidecarRevision::UnknownRevision(_) => {
                *found.unidentified.entry(&pod.namespace).or_default() += 1
            }
            _ => {}
        }
    }
    found
}
