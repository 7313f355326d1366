//! A cluster's state as the analysis needs it: compact, typed, and the same whether it was read
//! from the API (`live`) or from a saved dump (`dump`).
//!
//! Every object is reduced to a summary as soon as it is read (`ingest`), so memory grows with
//! the number of objects, not with their full specs: 50,000 pods cost a few hundred bytes each.

pub mod admission;
pub mod dump;
mod dump_json;
pub mod helm;
pub mod ingest;
pub mod live;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;

pub use helm::HelmRelease;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub namespaces: Vec<NamespaceInfo>,
    pub pods: Vec<PodInfo>,
    pub workloads: Vec<WorkloadInfo>,
    /// ReplicaSet → owning Deployment, to attribute pods to Deployments.
    pub replica_set_owners: BTreeMap<(String, String), OwnerRef>,
    pub services: Vec<ServiceInfo>,
    pub mutating_webhooks: Vec<WebhookConfigInfo>,
    pub validating_webhooks: Vec<WebhookConfigInfo>,
    pub helm_releases: Vec<HelmRelease>,
    pub config_objects: Vec<ConfigObject>,
    /// Objects owned by a label-installed revision (istioctl/operator), for prune.
    pub operator_objects: Vec<ObjectRef>,
    /// Each revision's injector configuration (`istio-sidecar-injector-<rev>` ConfigMaps).
    pub injector_configs: Vec<InjectorConfigInfo>,
    /// Pods in phase Succeeded or Failed (completed Jobs, evicted pods), per namespace: they
    /// run nothing, so they are counted here and kept out of `pods` (DOMAIN §3).
    pub finished_pods: BTreeMap<String, usize>,
    /// What the cluster's admission chain answered for workload templates
    /// (`rev-inventory --check-injection`), compared with the analysis.
    pub admission: Vec<admission::AdmissionCheck>,
    /// Remote secrets (`istio/multiCluster=true`): clusters whose proxies this cluster's istiod
    /// may serve (read for `rev-prune`).
    pub remote_secrets: Vec<RemoteSecretInfo>,
    /// Kinds that could not be read, with why; the analysis goes on without them.
    pub warnings: Vec<ReadWarning>,
    /// Kubernetes objects read from dumps, of any kind: a dump with none is refused.
    pub dump_objects: usize,
}

/// A remote secret, from its metadata only (its data is another cluster's credentials).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RemoteSecretInfo {
    pub namespace: String,
    pub name: String,
    /// The remote cluster's name: the `networking.istio.io/cluster` annotation, else the name
    /// after `istio-remote-secret-`.
    pub cluster: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceInfo {
    pub name: String,
    pub labels: Labels,
    pub resource_version: Option<String>,
    pub annotations: Labels,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
}

/// What a pod says about its sidecar (DOMAIN §3), strongest signal first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", content = "value", rename_all = "kebab-case")]
pub enum SidecarEvidence {
    /// `revision` of the `sidecar.istio.io/status` annotation (empty means `default`).
    StatusAnnotation(String),
    /// The `istio.io/rev` annotation the injector writes.
    RevAnnotation(String),
    /// `istiod-<rev>.istio-system.svc` in the proxy's PROXY_CONFIG discoveryAddress.
    DiscoveryAddress(String),
    /// Only the proxy image is known: its tag (a version, or not).
    ProxyImage(String),
    /// The spec was read and holds no istio-proxy container.
    NoSidecar,
    /// Only metadata was read and it carries no injection annotation.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    /// All its labels: webhook objectSelectors and the injector's never/always selectors may
    /// name any key.
    pub labels: Labels,
    /// The `sidecar.istio.io/inject` annotation (the injector reads it when the label is absent).
    pub inject_annotation: Option<String>,
    /// `spec.hostNetwork`. A metadata-only read leaves it false: a pod showing injection
    /// annotations was injected, so it is not host-network, and the live reader fetches the
    /// spec of the others wherever a sidecar is expected.
    pub host_network: bool,
    pub owner: Option<OwnerRef>,
    pub sidecar: SidecarEvidence,
    /// Ready condition, when known (full reads only).
    pub ready: Option<bool>,
    pub terminating: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }
    /// The resource name kubectl uses (`kubectl rollout undo deployment/x`).
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
        }
    }
    pub fn parse(input: &str) -> Option<Self> {
        match input.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => Some(Self::Deployment),
            "statefulset" | "statefulsets" | "sts" => Some(Self::StatefulSet),
            "daemonset" | "daemonsets" | "ds" => Some(Self::DaemonSet),
            _ => None,
        }
    }

    /// `parse` as a clap value parser (`--kind`), with kubectl's names in the error.
    pub fn parse_arg(input: &str) -> Result<Self, String> {
        Self::parse(input)
            .ok_or_else(|| format!("{input:?}: expected deployment, statefulset or daemonset"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadInfo {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    /// Helm's ownership annotation, when a release manages it.
    pub helm_release: Option<String>,
    /// All pod template labels (webhook objectSelectors may name any key).
    pub template_labels: Labels,
    pub template_annotations: Labels,
    /// The pod template's `spec.hostNetwork`: Istio never injects those pods.
    pub host_network: bool,
    pub generation: Option<i64>,
    pub resource_version: Option<String>,
    pub status: RolloutStatus,
    pub paused: bool,
    /// StatefulSet/DaemonSet `updateStrategy.type` (`OnDelete` never rolls by itself).
    pub update_strategy: Option<String>,
    /// Images by container name (istiod's `discovery`, the gateway's `istio-proxy`).
    pub images: BTreeMap<String, String>,
}

/// The status fields kubectl's rollout rules read (DOMAIN §8), per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RolloutStatus {
    pub observed_generation: Option<i64>,
    /// Desired replicas (Deployment/StatefulSet spec.replicas; DaemonSet desiredNumberScheduled).
    pub desired: i32,
    pub replicas: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub current_revision: Option<String>,
    pub update_revision: Option<String>,
    /// `Progressing` condition reason == ProgressDeadlineExceeded.
    pub progress_deadline_exceeded: bool,
    /// StatefulSet `spec.updateStrategy.rollingUpdate.partition`, when `rollingUpdate` is set
    /// (the API server sets it, partition 0): kubectl then judges the rollout by it, and the
    /// controller leaves the pods below it on their old template.
    pub partition: Option<i32>,
    /// StatefulSet `spec.ordinals.start`: the first pod is `<name>-<start>`.
    pub first_ordinal: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceInfo {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub service_type: Option<String>,
    /// `status.loadBalancer.ingress[]`: each entry's `ip`, else its `hostname`.
    pub load_balancer: Vec<String>,
    /// `spec.externalIPs`: addresses nodes accept for it, as clients may be pointed at them.
    pub external_ips: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookConfigInfo {
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub resource_version: Option<String>,
    pub helm_release: Option<String>,
    pub webhooks: Vec<WebhookInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookInfo {
    pub name: String,
    /// `namespace/name` of the service it calls, if any.
    pub service: Option<(String, String)>,
    /// The service's path (`/inject`), when it calls a service.
    pub service_path: Option<String>,
    pub url: Option<String>,
    pub namespace_selector: Option<LabelSelector>,
    pub object_selector: Option<LabelSelector>,
    /// Its rules cover CREATE of core/v1 `pods`, by the API server's matching
    /// (`exactOrWildcard`, `res/sub` with `*`, scope).
    pub matches_pod_create: bool,
    /// `reinvocationPolicy: IfNeeded` (mutating webhooks; default Never).
    pub reinvoke_if_needed: bool,
    /// `failurePolicy: Ignore` (default Fail): a failed call lets the object through unchanged.
    pub failure_ignored: bool,
    /// `matchConditions` (CEL): not evaluated here; the analysis treats them as matching.
    pub match_conditions: usize,
}

/// A revision's injector configuration: the `config` key of its `istio-sidecar-injector[-<rev>]`
/// ConfigMap, the part `injectRequired` reads (DOMAIN §2 rule 5).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InjectorConfigInfo {
    pub namespace: String,
    pub name: String,
    /// The revision it configures (`istio.io/rev`; `default` for a revision-less install).
    pub revision: String,
    /// `policy`: `enabled` (inject unless opted out) or `disabled` (only when opted in).
    pub policy: Option<String>,
    pub never_inject_selector: Vec<LabelSelector>,
    pub always_inject_selector: Vec<LabelSelector>,
    /// Why `config` could not be read, when it could not (the defaults then apply).
    pub error: Option<String>,
}

/// An Istio config object pinned to a revision by `istio.io/rev` (DOMAIN §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigObject {
    /// `group/version`: the group tells Istio config (`*.istio.io`) from Gateway API gateways.
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub revision: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub labels: Labels,
    /// `namespace/name` of the Helm release that manages it (`meta.helm.sh/release-*`).
    pub helm_release: Option<String>,
}

/// A kind that could not be read: named by verb and resource, as RBAC names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadWarning {
    pub verb: String,
    pub resource: String,
    pub message: String,
}

impl Snapshot {
    pub fn namespace(&self, name: &str) -> Option<&NamespaceInfo> {
        self.namespaces.iter().find(|n| n.name == name)
    }

    /// The named namespaces, or the error naming every one the snapshot does not hold.
    pub fn named_namespaces<'a>(
        &'a self,
        names: &[String],
    ) -> Result<Vec<&'a NamespaceInfo>, crate::error::RevError> {
        let missing: Vec<String> = names
            .iter()
            .filter(|n| self.namespace(n).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(crate::error::RevError::UnknownNamespaces { names: missing });
        }
        Ok(names.iter().filter_map(|n| self.namespace(n)).collect())
    }

    /// Sorts every list, so output is stable whatever order the API or dump gave.
    pub fn normalize(&mut self) {
        self.namespaces.sort_by(|a, b| a.name.cmp(&b.name));
        self.pods
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self.workloads
            .sort_by(|a, b| (&a.namespace, a.kind, &a.name).cmp(&(&b.namespace, b.kind, &b.name)));
        self.services
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self.mutating_webhooks.sort_by(|a, b| a.name.cmp(&b.name));
        self.validating_webhooks.sort_by(|a, b| a.name.cmp(&b.name));
        self.helm_releases
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self.config_objects.sort_by(|a, b| {
            (&a.namespace, &a.kind, &a.name).cmp(&(&b.namespace, &b.kind, &b.name))
        });
        self.operator_objects.sort();
        self.injector_configs
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    }
}
