//! Istio gateways (the `gateway` chart's Deployments): found by their injection template, their
//! revision read from the pod template (DOMAIN §1). Pure.

use serde::Serialize;

use std::collections::BTreeMap;

use crate::keys;
use crate::snapshot::{ServiceInfo, Snapshot, WorkloadInfo};

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
/// The one rule: the live reader uses it too, to keep gateways outside a `-n` scope.
pub fn is_gateway(w: &WorkloadInfo) -> bool {
    w.template_annotations
        .get(keys::INJECT_TEMPLATES)
        .is_some_and(|t| t.split(',').any(|t| t.trim() == "gateway"))
        || w.images
            .get(keys::PROXY_CONTAINER)
            .is_some_and(|i| i == "auto")
}

/// The revision a gateway was installed with (the chart's `revision` value, on its pod
/// template); `None` for a gateway installed without one, which the default revision injects.
pub fn installed_revision(w: &WorkloadInfo) -> Option<String> {
    w.template_labels
        .get(keys::REV)
        .or_else(|| w.labels.get(keys::REV))
        .cloned()
}

pub fn gateways(snapshot: &Snapshot) -> Vec<GatewayInfo> {
    let services: BTreeMap<(&str, &str), &ServiceInfo> = snapshot
        .services
        .iter()
        .map(|s| ((s.namespace.as_str(), s.name.as_str()), s))
        .collect();
    snapshot
        .workloads
        .iter()
        .filter(|w| is_gateway(w))
        .map(|w| {
            let service = services
                .get(&(w.namespace.as_str(), w.name.as_str()))
                .copied();
            GatewayInfo {
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                revision: installed_revision(w),
                ready: w.status.ready,
                desired: w.status.desired,
                helm_release: w.helm_release.clone(),
                service_type: service.and_then(|s| s.service_type.clone()),
                addresses: service.map(|s| s.load_balancer.clone()).unwrap_or_default(),
            }
        })
        .collect()
}
