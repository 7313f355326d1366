//! Pure conversions from API objects to the snapshot's summaries. Both the live reader and the
//! dump reader feed objects through here, one at a time, so there is one definition of what is
//! kept.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Pod, PodSpec, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::DynamicObject;

use super::helm::decode_release_secret;
use super::{
    ConfigObject, InjectorConfigInfo, Labels, NamespaceInfo, OwnerRef, PodInfo, RolloutStatus,
    ServiceInfo, SidecarEvidence, Snapshot, WebhookConfigInfo, WebhookInfo, WorkloadInfo,
    WorkloadKind,
};
use crate::keys;

fn labels(meta: &ObjectMeta) -> Labels {
    meta.labels.clone().unwrap_or_default()
}

fn annotations(meta: &ObjectMeta) -> Labels {
    meta.annotations.clone().unwrap_or_default()
}

fn name(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn namespace(meta: &ObjectMeta) -> String {
    meta.namespace.clone().unwrap_or_default()
}

/// The controller owner (the one `kubectl` follows), else the first owner.
fn controller(owners: Option<&Vec<OwnerReference>>) -> Option<OwnerRef> {
    let owners = owners?;
    let owner = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or(owners.first())?;
    Some(OwnerRef {
        kind: owner.kind.clone(),
        name: owner.name.clone(),
    })
}

/// Only the wanted keys of a label or annotation map, without cloning the rest.
fn keep(map: Option<&Labels>, wanted: &[&str]) -> Labels {
    let Some(map) = map else {
        return Labels::new();
    };
    wanted
        .iter()
        .filter_map(|k| map.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// Pods that run nothing (DOMAIN §3): a completed Job's or an evicted pod keeps its
/// annotations, but it is never drift, never a prune blocker, never a failed verification.
pub fn is_finished_phase(phase: Option<&str>) -> bool {
    matches!(phase, Some("Succeeded" | "Failed"))
}

/// The live reader's field selectors: live pods for the analysis, finished ones to count.
pub const LIVE_POD_FIELDS: &str = "status.phase!=Succeeded,status.phase!=Failed";
pub const FINISHED_POD_FIELDS: &str =
    "status.phase!=Pending,status.phase!=Running,status.phase!=Unknown";

fn annotation(meta: &ObjectMeta, key: &str) -> Option<String> {
    meta.annotations.as_ref()?.get(key).cloned()
}

/// Sidecar evidence from annotations alone (DOMAIN §3, signals 1–2).
pub fn sidecar_from_annotations(annotations: Option<&Labels>) -> Option<SidecarEvidence> {
    let annotations = annotations?;
    if let Some(status) = annotations.get(keys::SIDECAR_STATUS)
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(status)
    {
        let revision = value
            .get("revision")
            .and_then(|r| r.as_str())
            .unwrap_or_default();
        let revision = if revision.is_empty() {
            crate::revision::DEFAULT_REVISION
        } else {
            revision
        };
        return Some(SidecarEvidence::StatusAnnotation(revision.to_string()));
    }
    annotations
        .get(keys::REV)
        .map(|rev| SidecarEvidence::RevAnnotation(rev.clone()))
}

/// The `istio-proxy` container: a regular container or, for native sidecars, an init
/// container (which has `restartPolicy: Always`). Matched by name: `istio-init` shares the image.
pub fn proxy_container(spec: &PodSpec) -> Option<&Container> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == keys::PROXY_CONTAINER)
}

/// Sidecar evidence from the pod spec (DOMAIN §3, signals 3–4).
pub fn sidecar_from_spec(spec: &PodSpec) -> SidecarEvidence {
    let Some(proxy) = proxy_container(spec) else {
        return SidecarEvidence::NoSidecar;
    };
    let discovery = proxy
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "PROXY_CONFIG")
        .and_then(|e| e.value.as_deref())
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
        .and_then(|v| v.get("discoveryAddress")?.as_str().map(str::to_string));
    if let Some(address) = discovery
        && let Some(rev) = revision_from_discovery_address(&address)
    {
        return SidecarEvidence::DiscoveryAddress(rev);
    }
    let tag = proxy
        .image
        .as_deref()
        .and_then(|image| {
            if image.contains('@') {
                return None;
            }
            image.rsplit('/').next()?.split_once(':').map(|(_, t)| t)
        })
        .unwrap_or("unknown");
    SidecarEvidence::ProxyImage(tag.to_string())
}

/// `istiod-1-20.istio-system.svc:15012` → `1-20`; `istiod.istio-system.svc:15012` → `default`.
pub fn revision_from_discovery_address(address: &str) -> Option<String> {
    let host = address.split(['.', ':']).next()?;
    if host == "istiod" {
        return Some(crate::revision::DEFAULT_REVISION.to_string());
    }
    host.strip_prefix("istiod-").map(str::to_string)
}

fn pod_ready(pod: &Pod) -> Option<bool> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    Some(
        conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
    )
}

impl Snapshot {
    pub fn ingest_namespace(&mut self, ns: Namespace) {
        self.namespaces.push(NamespaceInfo {
            name: name(&ns.metadata),
            labels: labels(&ns.metadata),
            annotations: annotations(&ns.metadata),
            resource_version: ns.metadata.resource_version.clone(),
        });
    }

    /// A full pod: every signal of DOMAIN §3 is available. A finished pod (Succeeded or
    /// Failed) is only counted: dumps and verification reads see them, and they run nothing.
    pub fn ingest_pod(&mut self, pod: Pod) {
        let meta = &pod.metadata;
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if is_finished_phase(phase) {
            self.count_finished_pod(meta);
            return;
        }
        let sidecar = sidecar_from_annotations(meta.annotations.as_ref()).unwrap_or_else(|| {
            pod.spec
                .as_ref()
                .map(sidecar_from_spec)
                .unwrap_or(SidecarEvidence::Unknown)
        });
        self.pods.push(PodInfo {
            namespace: namespace(meta),
            name: name(meta),
            labels: labels(meta),
            inject_annotation: annotation(meta, keys::INJECT),
            host_network: pod
                .spec
                .as_ref()
                .and_then(|s| s.host_network)
                .unwrap_or(false),
            owner: controller(meta.owner_references.as_ref()),
            sidecar,
            ready: pod_ready(&pod),
            terminating: meta.deletion_timestamp.is_some(),
        });
    }

    /// A live pod read metadata-only (the reader's field selector leaves finished ones out):
    /// annotations are the only sidecar signal.
    pub fn ingest_pod_metadata(&mut self, meta: &ObjectMeta) {
        self.pods.push(PodInfo {
            namespace: namespace(meta),
            name: name(meta),
            labels: labels(meta),
            inject_annotation: annotation(meta, keys::INJECT),
            host_network: false,
            owner: controller(meta.owner_references.as_ref()),
            sidecar: sidecar_from_annotations(meta.annotations.as_ref())
                .unwrap_or(SidecarEvidence::Unknown),
            ready: None,
            terminating: meta.deletion_timestamp.is_some(),
        });
    }

    /// A pod in phase Succeeded or Failed, counted for the report.
    pub fn count_finished_pod(&mut self, meta: &ObjectMeta) {
        *self.finished_pods.entry(namespace(meta)).or_insert(0) += 1;
    }

    pub fn ingest_replica_set_metadata(&mut self, meta: &ObjectMeta) {
        if let Some(owner) = controller(meta.owner_references.as_ref())
            && owner.kind == "Deployment"
        {
            self.replica_set_owners
                .insert((namespace(meta), name(meta)), owner);
        }
    }

    pub fn ingest_deployment(&mut self, d: Deployment) {
        let spec = d.spec.unwrap_or_default();
        let status = d.status.unwrap_or_default();
        let progress_deadline_exceeded = status.conditions.iter().flatten().any(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
        let rollout = RolloutStatus {
            observed_generation: status.observed_generation,
            desired: spec.replicas.unwrap_or(1),
            replicas: status.replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            current_revision: None,
            update_revision: None,
            progress_deadline_exceeded,
            ..Default::default()
        };
        self.push_workload(
            WorkloadKind::Deployment,
            &d.metadata,
            &spec.template.metadata,
            spec.template.spec.as_ref(),
            rollout,
            spec.paused.unwrap_or(false),
            None,
        );
    }

    pub fn ingest_stateful_set(&mut self, s: StatefulSet) {
        let spec = s.spec.unwrap_or_default();
        let status = s.status.unwrap_or_default();
        let rollout = RolloutStatus {
            observed_generation: status.observed_generation,
            desired: spec.replicas.unwrap_or(1),
            replicas: status.replicas,
            updated: status.updated_replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            current_revision: status.current_revision.clone(),
            update_revision: status.update_revision.clone(),
            progress_deadline_exceeded: false,
            partition: spec
                .update_strategy
                .as_ref()
                .and_then(|s| s.rolling_update.as_ref())
                .map(|r| r.partition.unwrap_or(0)),
            first_ordinal: spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0),
        };
        let strategy = spec.update_strategy.as_ref().and_then(|s| s.type_.clone());
        self.push_workload(
            WorkloadKind::StatefulSet,
            &s.metadata,
            &spec.template.metadata,
            spec.template.spec.as_ref(),
            rollout,
            false,
            strategy,
        );
    }

    pub fn ingest_daemon_set(&mut self, d: DaemonSet) {
        let spec = d.spec.unwrap_or_default();
        let status = d.status.unwrap_or_default();
        let rollout = RolloutStatus {
            observed_generation: status.observed_generation,
            desired: status.desired_number_scheduled,
            replicas: status.current_number_scheduled,
            updated: status.updated_number_scheduled.unwrap_or(0),
            ready: status.number_ready,
            available: status.number_available.unwrap_or(0),
            ..Default::default()
        };
        let strategy = spec.update_strategy.as_ref().and_then(|s| s.type_.clone());
        self.push_workload(
            WorkloadKind::DaemonSet,
            &d.metadata,
            &spec.template.metadata,
            spec.template.spec.as_ref(),
            rollout,
            false,
            strategy,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn push_workload(
        &mut self,
        kind: WorkloadKind,
        meta: &ObjectMeta,
        template_meta: &Option<ObjectMeta>,
        template_spec: Option<&PodSpec>,
        status: RolloutStatus,
        paused: bool,
        update_strategy: Option<String>,
    ) {
        let empty = ObjectMeta::default();
        let template_meta = template_meta.as_ref().unwrap_or(&empty);
        let images: BTreeMap<String, String> = template_spec
            .map(|spec| {
                spec.containers
                    .iter()
                    .chain(spec.init_containers.iter().flatten())
                    .filter_map(|c| Some((c.name.clone(), c.image.clone()?)))
                    .collect()
            })
            .unwrap_or_default();
        self.workloads.push(WorkloadInfo {
            kind,
            namespace: namespace(meta),
            name: name(meta),
            labels: labels(meta),
            helm_release: annotation(meta, keys::HELM_RELEASE_NAME),
            template_labels: labels(template_meta),
            template_annotations: keep(
                template_meta.annotations.as_ref(),
                // REV: the revision istiod rendered a Gateway API gateway for (DOMAIN §1).
                &[
                    keys::INJECT_TEMPLATES,
                    keys::INJECT,
                    keys::RESTARTED_AT,
                    keys::REV,
                ],
            ),
            host_network: template_spec.and_then(|s| s.host_network).unwrap_or(false),
            generation: meta.generation,
            resource_version: meta.resource_version.clone(),
            status,
            paused,
            update_strategy,
            images,
        });
    }

    pub fn ingest_service(&mut self, svc: Service) {
        let load_balancer = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .map(|ingress| {
                ingress
                    .iter()
                    .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
                    .collect()
            })
            .unwrap_or_default();
        self.services.push(ServiceInfo {
            namespace: namespace(&svc.metadata),
            name: name(&svc.metadata),
            labels: labels(&svc.metadata),
            service_type: svc.spec.as_ref().and_then(|s| s.type_.clone()),
            load_balancer,
            external_ips: svc.spec.and_then(|s| s.external_ips).unwrap_or_default(),
        });
    }

    pub fn ingest_mutating_webhook(&mut self, mwc: MutatingWebhookConfiguration) {
        let webhooks = mwc
            .webhooks
            .into_iter()
            .flatten()
            .map(|w| WebhookInfo {
                reinvoke_if_needed: w.reinvocation_policy.as_deref() == Some("IfNeeded"),
                failure_ignored: w.failure_policy.as_deref() == Some("Ignore"),
                matches_pod_create: rules_match_pod_create(w.rules.as_deref()),
                match_conditions: w.match_conditions.as_ref().map_or(0, Vec::len),
                ..webhook_info(
                    w.name,
                    w.client_config,
                    w.namespace_selector,
                    w.object_selector,
                )
            })
            .collect();
        self.mutating_webhooks
            .push(webhook_config(&mwc.metadata, webhooks));
    }

    pub fn ingest_validating_webhook(&mut self, vwc: ValidatingWebhookConfiguration) {
        let webhooks = vwc
            .webhooks
            .into_iter()
            .flatten()
            .map(|w| WebhookInfo {
                failure_ignored: w.failure_policy.as_deref() == Some("Ignore"),
                matches_pod_create: rules_match_pod_create(w.rules.as_deref()),
                match_conditions: w.match_conditions.as_ref().map_or(0, Vec::len),
                ..webhook_info(
                    w.name,
                    w.client_config,
                    w.namespace_selector,
                    w.object_selector,
                )
            })
            .collect();
        self.validating_webhooks
            .push(webhook_config(&vwc.metadata, webhooks));
    }

    /// A ConfigMap: kept only when it is a revision's injector configuration
    /// (`istio-sidecar-injector[-<rev>]`), reduced to what `injectRequired` reads.
    pub fn ingest_config_map(&mut self, cm: ConfigMap) {
        let meta = &cm.metadata;
        let name = name(meta);
        let Some(suffix) = name.strip_prefix(INJECTOR_CONFIG_MAP) else {
            return;
        };
        let revision = meta
            .labels
            .as_ref()
            .and_then(|l| l.get(keys::REV))
            .filter(|r| !r.is_empty())
            .cloned()
            .or_else(|| suffix.strip_prefix('-').map(str::to_string))
            .unwrap_or_else(|| crate::revision::DEFAULT_REVISION.to_string());
        let config = cm.data.as_ref().and_then(|d| d.get("config"));
        let parsed = match config {
            Some(text) => serde_saphyr::from_str::<InjectorConfigText>(text)
                .map_err(|e| format!("its `config` is not valid YAML: {e}")),
            None => Err("it has no `config` key".to_string()),
        };
        let (config, error) = match parsed {
            Ok(config) => (config, None),
            Err(e) => (InjectorConfigText::default(), Some(e)),
        };
        self.injector_configs.push(InjectorConfigInfo {
            namespace: namespace(meta),
            name,
            revision,
            policy: config.policy,
            never_inject_selector: config.never_inject_selector.unwrap_or_default(),
            always_inject_selector: config.always_inject_selector.unwrap_or_default(),
            error,
        });
    }

    /// Helm release Secrets; other Secrets are ignored. Only the newest record of each release
    /// is kept (older ones are history).
    pub fn ingest_secret(&mut self, secret: Secret) {
        if labels(&secret.metadata)
            .get(keys::MULTI_CLUSTER_SECRET)
            .map(String::as_str)
            == Some("true")
        {
            self.ingest_remote_secret(&secret.metadata);
            return;
        }
        if secret.type_.as_deref() != Some("helm.sh/release.v1") {
            return;
        }
        match decode_release_secret(&secret) {
            Ok(release) => {
                if let Some(existing) = self
                    .helm_releases
                    .iter_mut()
                    .find(|r| r.name == release.name && r.namespace == release.namespace)
                {
                    if release.version > existing.version {
                        *existing = release;
                    }
                } else {
                    self.helm_releases.push(release);
                }
            }
            Err(message) => self.warnings.push(super::ReadWarning {
                verb: "decode".into(),
                resource: format!(
                    "secret {}/{}",
                    namespace(&secret.metadata),
                    name(&secret.metadata)
                ),
                message,
            }),
        }
    }

    /// An Istio config object (or a Gateway API gateway); kept only when pinned to a revision.
    pub fn ingest_config_object(&mut self, obj: &DynamicObject) {
        let (api_version, kind) = obj
            .types
            .as_ref()
            .map(|t| (t.api_version.as_str(), t.kind.as_str()))
            .unwrap_or_default();
        self.ingest_config_metadata(api_version, kind, &obj.metadata);
    }

    /// The same from a metadata-only list, which names the kind once for all its items.
    pub fn ingest_config_metadata(&mut self, api_version: &str, kind: &str, meta: &ObjectMeta) {
        let Some(revision) = meta.labels.as_ref().and_then(|l| l.get(keys::REV)) else {
            return;
        };
        self.config_objects.push(ConfigObject {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace(meta),
            name: name(meta),
            revision: revision.clone(),
        });
    }
}

/// Is `(group, kind)` config that istiod filters by `istio.io/rev` (DOMAIN §4)? Every kind of a
/// group ending in `istio.io`, and Gateway API `Gateway`s. Live reading finds these kinds by
/// discovery, dump reading by each object's apiVersion: the same rule for both.
pub fn is_revision_config(group: &str, kind: &str) -> bool {
    group == "istio.io"
        || group.ends_with(".istio.io")
        || (group == keys::GATEWAY_API_GROUP && kind == "Gateway")
}

/// Kinds an istioctl/operator install of a revision creates (DOMAIN §7), read for prune:
/// `(group, version, kind, plural, namespaced)`.
pub const REVISION_OBJECT_KINDS: &[(&str, &str, &str, &str, bool)] = &[
    ("apps", "v1", "Deployment", "deployments", true),
    ("apps", "v1", "DaemonSet", "daemonsets", true),
    ("", "v1", "Service", "services", true),
    ("", "v1", "ServiceAccount", "serviceaccounts", true),
    ("", "v1", "ConfigMap", "configmaps", true),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
    ),
];

impl Snapshot {
    /// A remote secret (`istio/multiCluster=true`), from its metadata.
    pub fn ingest_remote_secret(&mut self, meta: &ObjectMeta) {
        let name = name(meta);
        let cluster = annotation(meta, keys::CLUSTER_NAME_ANNOTATION)
            .or_else(|| {
                name.strip_prefix("istio-remote-secret-")
                    .map(str::to_string)
            })
            .unwrap_or_else(|| name.clone());
        self.remote_secrets.push(super::RemoteSecretInfo {
            namespace: namespace(meta),
            name,
            cluster,
        });
    }

    /// An object that may belong to a revision installed without Helm: labelled `istio.io/rev`,
    /// or an Istio cluster role (the istiod chart does not label those). Prune decides.
    pub fn ingest_revision_object(&mut self, api_version: &str, kind: &str, meta: &ObjectMeta) {
        let labels = labels(meta);
        let name = name(meta);
        let cluster_role = matches!(kind, "ClusterRole" | "ClusterRoleBinding");
        let istio_cluster_role = cluster_role && name.starts_with("istio");
        if !(labels.contains_key(keys::REV) || istio_cluster_role) {
            return;
        }
        let helm_release = annotation(meta, keys::HELM_RELEASE_NAME).map(|release| {
            let ns = annotation(meta, keys::HELM_RELEASE_NAMESPACE).unwrap_or_default();
            format!("{ns}/{release}")
        });
        self.operator_objects.push(super::ObjectRef {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: meta.namespace.clone(),
            name,
            labels,
            helm_release,
        });
    }
}

/// The name every revision's injector ConfigMap starts with (`istio-sidecar-injector-<rev>`).
pub const INJECTOR_CONFIG_MAP: &str = "istio-sidecar-injector";

/// The part of the injector's `config` that decides whether to inject (istio
/// `pkg/kube/inject.Config`); templates and the rest are skipped.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct InjectorConfigText {
    policy: Option<String>,
    never_inject_selector: Option<Vec<LabelSelector>>,
    always_inject_selector: Option<Vec<LabelSelector>>,
}

fn webhook_info(
    name: String,
    client: WebhookClientConfig,
    namespace_selector: Option<LabelSelector>,
    object_selector: Option<LabelSelector>,
) -> WebhookInfo {
    let (service, service_path) = match client.service {
        Some(s) => (Some((s.namespace, s.name)), s.path),
        None => (None, None),
    };
    WebhookInfo {
        name,
        service,
        service_path,
        url: client.url,
        namespace_selector,
        object_selector,
        matches_pod_create: false,
        reinvoke_if_needed: false,
        failure_ignored: false,
        match_conditions: 0,
    }
}

/// Whether any rule covers CREATE of core/v1 `pods`, as the API server matches rules
/// (`k8s.io/apiserver` `rules.Matcher`): `*` wildcards, `resource/subresource` with `*`, and
/// a scope of `*` or `Namespaced`. No rules: the webhook is never called.
pub fn rules_match_pod_create(rules: Option<&[RuleWithOperations]>) -> bool {
    let any = |items: Option<&Vec<String>>, wanted: &str| {
        items.into_iter().flatten().any(|i| i == "*" || i == wanted)
    };
    rules.into_iter().flatten().any(|rule| {
        let scope = matches!(rule.scope.as_deref(), None | Some("*") | Some("Namespaced"));
        let resource = rule.resources.iter().flatten().any(|r| {
            let (res, sub) = r.split_once('/').unwrap_or((r, ""));
            (res == "*" || res == "pods") && (sub == "*" || sub.is_empty())
        });
        scope
            && any(rule.operations.as_ref(), "CREATE")
            && any(rule.api_groups.as_ref(), "")
            && any(rule.api_versions.as_ref(), "v1")
            && resource
    })
}

fn webhook_config(meta: &ObjectMeta, webhooks: Vec<WebhookInfo>) -> WebhookConfigInfo {
    WebhookConfigInfo {
        name: name(meta),
        labels: labels(meta),
        // The relabel record lets `--undo --tag` find where a tag pointed before.
        annotations: keep(
            meta.annotations.as_ref(),
            &[keys::HELM_RELEASE_NAME, keys::PREVIOUS_REVISION],
        ),
        resource_version: meta.resource_version.clone(),
        helm_release: annotation(meta, keys::HELM_RELEASE_NAME),
        webhooks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_address_names_the_revision() {
        assert_eq!(
            revision_from_discovery_address("istiod-1-20.istio-system.svc:15012").as_deref(),
            Some("1-20")
        );
        assert_eq!(
            revision_from_discovery_address("istiod.istio-system.svc:15012").as_deref(),
            Some("default")
        );
        assert_eq!(revision_from_discovery_address("pilot:15010"), None);
    }

    #[test]
    fn empty_status_revision_means_default() {
        let mut a = Labels::new();
        a.insert(
            keys::SIDECAR_STATUS.into(),
            r#"{"containers":["istio-proxy"],"revision":""}"#.into(),
        );
        assert_eq!(
            sidecar_from_annotations(Some(&a)),
            Some(SidecarEvidence::StatusAnnotation("default".into()))
        );
    }
}
