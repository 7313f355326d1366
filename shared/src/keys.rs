//! Domain names in one place: the label and annotation keys Istio, Helm and kubectl use
//! (DOMAIN §1–§3, §6, §8), the names of well-known objects, and the annotations this suite writes.

// Istio (DOMAIN §1–§4).
pub const REV: &str = "istio.io/rev";
pub const TAG: &str = "istio.io/tag";
pub const INJECTION: &str = "istio-injection";
pub const INJECT: &str = "sidecar.istio.io/inject";
pub const DATAPLANE_MODE: &str = "istio.io/dataplane-mode";
pub const SIDECAR_STATUS: &str = "sidecar.istio.io/status";
pub const INJECT_TEMPLATES: &str = "inject.istio.io/templates";
pub const OPERATOR_COMPONENT: &str = "operator.istio.io/component";
/// Kubernetes' recommended name label; Istio's charts set it (`ztunnel`, `istiod`, …).
pub const APP_NAME: &str = "app.kubernetes.io/name";
/// The sidecar container's name (also the gateway chart's proxy container).
pub const PROXY_CONTAINER: &str = "istio-proxy";
/// The ValidatingWebhookConfiguration that follows the default revision.
pub const DEFAULT_VALIDATOR: &str = "istiod-default-validator";
/// Gateway API: its `Gateway`s pick their istiod by `istio.io/rev` too (DOMAIN §4).
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";
/// On what istiod's deployment controller renders for a Gateway API `Gateway` or a waypoint:
/// `istio.io-gateway-controller`, `istio.io-mesh-controller` (istio-discovery
/// files/kube-gateway.yaml, waypoint.yaml).
pub const GATEWAY_MANAGED: &str = "gateway.istio.io/managed";
/// The `Gateway` a rendered Deployment belongs to.
pub const GATEWAY_NAME: &str = "gateway.networking.k8s.io/gateway-name";
/// On a remote secret (`istioctl create-remote-secret`): istiod reads the cluster's API server
/// through it, so its proxies may be served by this cluster's istiod.
pub const MULTI_CLUSTER_SECRET: &str = "istio/multiCluster";
/// The remote secret's cluster name (its data key; the annotation carries the same name).
pub const CLUSTER_NAME_ANNOTATION: &str = "networking.istio.io/cluster";

// Helm (DOMAIN §6).
pub const HELM_RELEASE_NAME: &str = "meta.helm.sh/release-name";
pub const HELM_RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";
/// Makes `helm uninstall` leave an object in place.
pub const RESOURCE_POLICY: &str = "helm.sh/resource-policy";

// kubectl (DOMAIN §8).
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

// Written by this suite, under a domain the project owns.
/// On a namespace: the labels a relabel replaced, as JSON
/// `{"istio.io/rev": "1-19", "istio-injection": null}` (null: the label was absent).
pub const PREVIOUS_LABELS: &str = "relabel.kubectl-rev.dev/previous-labels";
/// On a tag's webhook configuration: the revision it pointed at before a retarget.
pub const PREVIOUS_REVISION: &str = "relabel.kubectl-rev.dev/previous-revision";
