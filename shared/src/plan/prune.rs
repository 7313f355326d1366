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

use crate::analysis::{Analysis, InjectionMode, SidecarRevision};
use crate::error::RevError;
use crate::revision::RevisionName;
use crate::snapshot::{HelmRelease, Labels, ObjectRef, Snapshot, keys};

/// Annotation that makes `helm uninstall` leave an object in place (DOMAIN §6).
pub const RESOURCE_POLICY: &str = "helm.sh/resource-policy";
pub const DEFAULT_VALIDATOR: &str = "istiod-default-validator";

/// Helm's `UninstallOrder` (pkg/releaseutil/kind_sorter.go, Helm 3.19): kinds earlier in the
/// list are deleted first; kinds not in it (webhook configurations included) go last, sorted by
/// kind name, keeping manifest order within a kind.
const UNINSTALL_ORDER: &[&str] = &[
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
    /// Objects annotated `helm.sh/resource-policy: keep`: left in place, as Helm does.
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

/// Why the prune may not go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockerReason {
    NamespaceSelectsRevision,
    WorkloadSelectsRevision,
    PodsRunRevision,
    TagPointsAtRevision,
    DefaultValidatorPointsAtRevision,
    GatewayStillServing,
    OnlyRevision,
    HelmOperationPending,
    CannotVerify,
    /// Not overridable: a release whose delete hooks only Helm can run, and no helm on PATH.
    DeleteHooksNeedHelm,
    /// Not overridable: a release record whose manifest cannot be read.
    UnreadableRelease,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneBlocker {
    pub reason: BlockerReason,
    pub subject: String,
    pub message: String,
    /// The command (or step) that clears it.
    pub fix: String,
    /// `--force` may override it; hooks and unreadable releases cannot be forced.
    pub forceable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrunePlan {
    pub revision: String,
    /// The revision the fixes point at: the newest other installed revision.
    pub successor: Option<String>,
    pub steps: Vec<PruneStep>,
    pub blockers: Vec<PruneBlocker>,
    pub warnings: Vec<String>,
    pub force: bool,
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
    /// Path of a `helm` executable on PATH, if any (found by the caller: lookup is I/O).
    pub helm_binary: Option<String>,
}

/// What a Helm release's records say about the revision it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOwnership {
    /// Not an Istio per-revision chart (`base`, or not Istio's): never pruned.
    NotRevisioned,
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
        let keep = obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RESOURCE_POLICY))
            .is_some_and(|p| p.trim() == "keep");
        if keep {
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
        || obj.name == DEFAULT_VALIDATOR
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

pub fn plan_prune(
    snapshot: &Snapshot,
    analysis: &Analysis,
    revision: &RevisionName,
    options: &PruneOptions,
) -> Result<PrunePlan, RevError> {
    let old = revision.as_str();
    let cp = &analysis.control_plane;
    let successor = successor(analysis, old);
    let next = successor.clone().unwrap_or_else(|| "<new revision>".into());
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    let mut steps = Vec::new();

    // Helm releases of the revision.
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
    let mut in_releases: BTreeSet<ObjectKey> = BTreeSet::new();
    for release in releases {
        match release_ownership(release) {
            ReleaseOwnership::Revision(rev) if rev == old => {}
            ReleaseOwnership::Ambiguous(revs) if revs.iter().any(|r| r == old) => {
                warnings.push(format!(
                    "Helm release {}/{} carries istio.io/rev {} and no `revision` value: not proven to be {old}'s, left alone",
                    release.namespace,
                    release.name,
                    revs.join(", ")
                ));
                continue;
            }
            _ => continue,
        }
        let subject = format!("helmrelease/{}/{}", release.namespace, release.name);
        let (delete, kept) = match manifest_objects(release) {
            Ok(objects) => objects,
            Err(why) => {
                blockers.push(PruneBlocker {
                    reason: BlockerReason::UnreadableRelease,
                    subject,
                    message: format!(
                        "its manifest cannot be read ({why}), so its objects are unknown"
                    ),
                    fix: format!("helm uninstall {} -n {}", release.name, release.namespace),
                    forceable: false,
                });
                continue;
            }
        };
        in_releases.extend(delete.iter().cloned());
        in_releases.extend(kept.iter().cloned());
        let delete_hooks: Vec<String> = release
            .hooks
            .iter()
            .filter(|h| is_delete_hook(&h.events))
            .map(|h| format!("{} {} ({})", h.kind, h.name, h.events.join(",")))
            .collect();
        let method = if delete_hooks.is_empty() {
            UninstallMethod::Native
        } else if let Some(path) = &options.helm_binary {
            UninstallMethod::HelmBinary { path: path.clone() }
        } else {
            blockers.push(PruneBlocker {
                reason: BlockerReason::DeleteHooksNeedHelm,
                subject: subject.clone(),
                message: format!(
                    "has delete hooks ({}) that only Helm runs, and no `helm` is on PATH",
                    delete_hooks.join("; ")
                ),
                fix: format!(
                    "helm uninstall {} -n {}   (then re-run kubectl rev-prune {old})",
                    release.name, release.namespace
                ),
                forceable: false,
            });
            UninstallMethod::Native
        };
        if release.status.starts_with("pending-") {
            blockers.push(PruneBlocker {
                reason: BlockerReason::HelmOperationPending,
                subject: subject.clone(),
                message: format!(
                    "is {}: a Helm operation may still be running",
                    release.status
                ),
                fix: format!(
                    "wait for it, or `helm rollback {} -n {}`; then re-run",
                    release.name, release.namespace
                ),
                forceable: true,
            });
        }
        steps.push(PruneStep::HelmRelease(ReleaseRemoval {
            name: release.name.clone(),
            namespace: release.namespace.clone(),
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

    // Objects of a revision installed without Helm.
    let istiod_namespace = cp
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
        steps.push(PruneStep::Objects(LabelledRemoval { component, delete }));
    }
    steps.sort_by_key(PruneStep::component);

    if steps.is_empty() && cp.revision(old).is_none() {
        let installed: Vec<String> = cp.revisions.iter().map(|r| r.name.clone()).collect();
        return Err(RevError::UnknownRevision {
            revision: old.to_string(),
            installed,
            tag_target: cp.tag(old).map(|t| t.revision.clone()),
        });
    }

    interlocks(
        snapshot,
        analysis,
        old,
        &next,
        &steps,
        &mut blockers,
        &mut warnings,
    );
    if successor.is_none() {
        blockers.push(PruneBlocker {
            reason: BlockerReason::OnlyRevision,
            subject: format!("revision/{old}"),
            message: format!("{old} is the only installed revision: pruning it removes the mesh's control plane"),
            fix: "install the new revision first (upgrade guide step 2), or use `istioctl uninstall --purge` to remove Istio".into(),
            forceable: true,
        });
    }
    blockers.sort_by(|a, b| (a.reason, &a.subject).cmp(&(b.reason, &b.subject)));

    Ok(PrunePlan {
        revision: old.to_string(),
        successor,
        steps,
        blockers,
        warnings,
        force: options.force,
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

#[allow(clippy::too_many_arguments)]
fn interlocks(
    snapshot: &Snapshot,
    analysis: &Analysis,
    old: &str,
    next: &str,
    steps: &[PruneStep],
    blockers: &mut Vec<PruneBlocker>,
    warnings: &mut Vec<String>,
) {
    let cp = &analysis.control_plane;

    // Reads the interlocks depend on: if they were denied, nothing can be proven unused.
    for w in &snapshot.warnings {
        let needed = [
            "namespaces",
            "pods",
            "mutatingwebhookconfigurations",
            "validatingwebhookconfigurations",
            "secrets",
            "deployments",
            "services",
        ];
        if needed
            .iter()
            .any(|n| w.resource == *n || w.resource.starts_with(&format!("{n}.")))
        {
            blockers.push(PruneBlocker {
                reason: BlockerReason::CannotVerify,
                subject: w.resource.clone(),
                message: format!(
                    "cannot {} {} ({}): whether {old} is still used cannot be checked",
                    w.verb, w.resource, w.message
                ),
                fix: format!(
                    "kubectl auth can-i {} {}   (run as someone who can)",
                    w.verb, w.resource
                ),
                forceable: true,
            });
        }
    }

    // Namespaces whose new pods would be injected by OLD (DOMAIN §2).
    let mut blocked_namespaces = BTreeSet::new();
    for ns in &analysis.namespaces {
        if namespace_target(ns, analysis).as_deref() != Some(old) {
            continue;
        }
        blocked_namespaces.insert(ns.name.clone());
        let (message, fix) = match (ns.effective.mode, &ns.effective.via_tag) {
            (InjectionMode::LegacyLabel, _) => (
                format!(
                    "istio-injection=enabled: the default revision ({old}) injects its new pods"
                ),
                format!("move the default tag first: kubectl rev-relabel --tag default {next}"),
            ),
            (_, Some(tag)) => (
                format!(
                    "istio.io/rev={tag}, and tag {tag} points at {old}: new pods would start without sidecar"
                ),
                format!(
                    "kubectl rev-relabel --tag {tag} {next}   (or relabel: kubectl label namespace {} istio.io/rev={next} --overwrite)",
                    ns.name
                ),
            ),
            _ => (
                format!(
                    "istio.io/rev={old}: new pods would start without sidecar once {old} is gone"
                ),
                format!(
                    "kubectl rev-relabel {} {next}   (or: kubectl label namespace {} istio.io/rev={next} --overwrite)",
                    ns.name, ns.name
                ),
            ),
        };
        blockers.push(PruneBlocker {
            reason: BlockerReason::NamespaceSelectsRevision,
            subject: format!("namespace/{}", ns.name),
            message,
            fix,
            forceable: true,
        });
    }

    // Workloads whose own pod template selects OLD, in namespaces that let pods choose.
    let removed: BTreeSet<(String, String, String)> = steps
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
        .collect();
    let is_removed = |kind: &str, ns: &str, name: &str| {
        removed.contains(&(kind.to_string(), ns.to_string(), name.to_string()))
    };
    for w in &analysis.workloads {
        if w.expected.as_deref() != Some(old)
            || blocked_namespaces.contains(&w.namespace)
            || is_removed(w.kind.as_str(), &w.namespace, &w.name)
        {
            continue;
        }
        blockers.push(PruneBlocker {
            reason: BlockerReason::WorkloadSelectsRevision,
            subject: format!("{}/{}/{}", w.kind.resource(), w.namespace, w.name),
            message: format!(
                "its pod template selects istio.io/rev={old}: new pods would start without sidecar"
            ),
            fix: format!(
                "set istio.io/rev={next} in its pod template (kubectl -n {} edit {} {})",
                w.namespace,
                w.kind.resource(),
                w.name
            ),
            forceable: true,
        });
    }

    // Pods whose sidecar talks to OLD's istiod (DOMAIN §3), except the pods this prune removes.
    let mut by_namespace: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut unknown: BTreeMap<&str, usize> = BTreeMap::new();
    for pod in &analysis.pods {
        if pod
            .workload
            .as_ref()
            .is_some_and(|w| is_removed(w.kind.as_str(), &w.namespace, &w.name))
        {
            continue;
        }
        match &pod.sidecar {
            SidecarRevision::Revision(r) if r == old => by_namespace
                .entry(&pod.namespace)
                .or_default()
                .push(&pod.name),
            SidecarRevision::UnknownRevision(_) => *unknown.entry(&pod.namespace).or_default() += 1,
            _ => {}
        }
    }
    for (ns, pods) in by_namespace {
        let shown: Vec<&str> = pods.iter().take(5).copied().collect();
        let more = pods.len().saturating_sub(shown.len());
        blockers.push(PruneBlocker {
            reason: BlockerReason::PodsRunRevision,
            subject: format!("namespace/{ns}"),
            message: format!(
                "{} pod(s) still run {old} sidecars: {}{}",
                pods.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
            fix: format!(
                "kubectl rev-restart -n {ns}   (or kubectl rollout restart each workload)"
            ),
            forceable: true,
        });
    }
    for (ns, count) in unknown {
        warnings.push(format!(
            "{count} pod(s) in {ns} run a proxy whose revision cannot be told (image tag only): check they are not on {old}"
        ));
    }

    // Tags and the default validator (istio/istio #35590, #43227, #60596).
    for tag in cp.tags.iter().filter(|t| t.revision == old) {
        blockers.push(PruneBlocker {
            reason: BlockerReason::TagPointsAtRevision,
            subject: format!("tag/{}", tag.name),
            message: format!(
                "revision tag {} ({}) points at {old}: namespaces using it would lose injection",
                tag.name, tag.webhook
            ),
            fix: format!(
                "kubectl rev-relabel --tag {} {next}   (or: istioctl tag set {} --revision {next} --overwrite)",
                tag.name, tag.name
            ),
            forceable: true,
        });
    }
    if let Some(v) = &cp.default_validator
        && v.revision.as_deref() == Some(old)
    {
        let base = snapshot
            .helm_releases
            .iter()
            .find(|r| r.chart == "base" && r.status != "uninstalled");
        let fix = match base {
            Some(b) => format!(
                "helm upgrade {} <istio base chart> -n {} --reuse-values --set defaultRevision={next}",
                b.name, b.namespace
            ),
            None => format!("istioctl tag set default --revision {next} --overwrite"),
        };
        blockers.push(PruneBlocker {
            reason: BlockerReason::DefaultValidatorPointsAtRevision,
            subject: format!("validatingwebhookconfiguration/{}", v.name),
            message: format!(
                "{} calls {old}'s istiod: once it is gone every apply of Istio config fails",
                v.name
            ),
            fix,
            forceable: true,
        });
    }

    // Gateways: the old one still has the address clients use, and no other revision's does.
    let removed_gateways: Vec<_> = analysis
        .gateways
        .iter()
        .filter(|g| {
            g.revision.as_deref() == Some(old) && is_removed("Deployment", &g.namespace, &g.name)
        })
        .collect();
    for g in removed_gateways {
        if g.addresses.is_empty() {
            continue;
        }
        let others: Vec<_> = analysis
            .gateways
            .iter()
            .filter(|o| o.namespace == g.namespace && o.revision.as_deref() != Some(old))
            .collect();
        if others.iter().any(|o| !o.addresses.is_empty()) {
            continue;
        }
        let successor_text = if others.is_empty() {
            format!("no gateway of another revision exists in {}", g.namespace)
        } else {
            others
                .iter()
                .map(|o| {
                    format!(
                        "{} ({}) has no load-balancer address",
                        o.name,
                        o.revision.as_deref().unwrap_or("no revision")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        blockers.push(PruneBlocker {
            reason: BlockerReason::GatewayStillServing,
            subject: format!("gateway/{}/{}", g.namespace, g.name),
            message: format!(
                "{} still has load-balancer address {} and {successor_text}: deleting it cuts that traffic",
                g.name,
                g.addresses.join(",")
            ),
            fix: format!(
                "install the {next} gateway (upgrade guide step 3) and wait for its Service address: kubectl get svc -n {}",
                g.namespace
            ),
            forceable: true,
        });
    }

    // Config pinned to OLD stops applying (DOMAIN §4): said, not deleted.
    for c in analysis.pinned_config.iter().filter(|c| c.revision == old) {
        warnings.push(format!(
            "{} {}/{} is pinned to istio.io/rev={old} and stops applying: relabel it for {next} or delete it",
            c.kind, c.namespace, c.name
        ));
    }
}
