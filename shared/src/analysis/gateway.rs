//! Istio gateways: the `gateway` chart's Deployments, found by their injection template, and
//! what istiod's deployment controller renders for Gateway API `Gateway`s and waypoints; their
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
    /// The Gateway API `Gateway` (or waypoint) istiod renders it for: it moves when that
    /// Gateway's `istio.io/rev` (or its namespace's) changes, never by a restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_api: Option<String>,
}

/// The Gateway API `Gateway` this Deployment was rendered for by istiod, if it was: marked
/// `gateway.istio.io/managed: istio.io-…`, its pods annotated (not labelled) `istio.io/rev`,
/// `sidecar.istio.io/inject=false`, no sidecar status.
pub fn gateway_api_gateway(w: &WorkloadInfo) -> Option<&str> {
    let managed = w
        .labels
        .get(keys::GATEWAY_MANAGED)
        .is_some_and(|m| m.starts_with("istio.io-"));
    if !managed {
        return None;
    }
    w.labels
        .get(keys::GATEWAY_NAME)
        .or_else(|| w.template_labels.get(keys::GATEWAY_NAME))
        .map(String::as_str)
}

/// A gateway's pods are injected with the `gateway` template; the chart marks the pod template
/// so (and gives its proxy container the image `auto`). The Deployment may lack `istio.io/rev`.
/// The one rule: the live reader uses it too, to keep gateways outside a `-n` scope.
pub fn is_gateway(w: &WorkloadInfo) -> bool {
    gateway_api_gateway(w).is_some()
        || w.template_annotations
            .get(keys::INJECT_TEMPLATES)
            .is_some_and(|t| t.split(',').any(|t| t.trim() == "gateway"))
        || w.images
            .get(keys::PROXY_CONTAINER)
            .is_some_and(|i| i == "auto")
}

/// The revision a gateway was installed with (the chart's `revision` value, on its pod
/// template); `None` for a gateway installed without one, which the default revision injects.
pub fn installed_revision(w: &WorkloadInfo) -> Option<String> {
    // Rendered gateways (Gateway API, waypoints) carry the revision as a pod annotation, chart
    // gateways as a pod label.
    w.template_labels
        .get(keys::REV)
        .or_else(|| w.template_annotations.get(keys::REV))
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
                gateway_api: gateway_api_gateway(w).map(str::to_string),
            }
        })
        .collect()
}
