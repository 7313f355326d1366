//! Istio gateways (the `gateway` chart's Deployments): found by their injection template, their
//! revision read from the pod template (DOMAIN §1). Pure.

use serde::Serialize;

use crate::keys;
use crate::snapshot::{Snapshot, WorkloadInfo};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayInfo {
    pub namespace: String,
    pub name: String,
    pub revision: Option<String>,
    pub ready: i32,
    pub desired: i32,
    pub helm_release: Option<String>,
    pub service_type: Option<String>,
    pub addresses: Vec<String>,
}

/// A gateway's pods are injected with the `gateway` template; the chart marks the pod template
/// so (and gives its proxy container the image `auto`). The Deployment may lack `istio.io/rev`.
pub fn is_gateway(w: &WorkloadInfo) -> bool {
    w.template_annotations
        .get(keys::INJECT_TEMPLATES)
        .is_some_and(|t| t.split(',').any(|t| t.trim() == "gateway"))
        || w.images
            .get(keys::PROXY_CONTAINER)
            .is_some_and(|i| i == "auto")
}

pub fn gateways(snapshot: &Snapshot) -> Vec<GatewayInfo> {
    snapshot
        .workloads
        .iter()
        .filter(|w| is_gateway(w))
        .map(|w| {
            let service = snapshot
                .services
                .iter()
                .find(|s| s.namespace == w.namespace && s.name == w.name);
            GatewayInfo {
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                revision: w
                    .template_labels
                    .get(keys::REV)
                    .or_else(|| w.labels.get(keys::REV))
                    .cloned(),
                ready: w.status.ready,
                desired: w.status.desired,
                helm_release: w.helm_release.clone(),
                service_type: service.and_then(|s| s.service_type.clone()),
                addresses: service.map(|s| s.load_balancer.clone()).unwrap_or_default(),
            }
        })
        .collect()
}
