//! Why a rollout is stuck, in the words the cluster used: the newest Warning event of the
//! object that creates the workload's new pods (a Deployment's newest ReplicaSet; a
//! StatefulSet or DaemonSet creates its pods itself) and of those pods. This is what the
//! bottom of `kubectl describe` shows, e.g. `FailedCreate: … admission webhook "…" denied the
//! request: …` when an injector refuses every pod. Read only after a rollout failed or timed
//! out; best effort: a read that fails leaves the report as it was.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};
use kube::core::{Expression, Selector};
use serde::Serialize;

use crate::client::Cluster;
use crate::plan::restart::RestartItem;
use crate::snapshot::WorkloadKind;

/// `deployment.kubernetes.io/revision`: the Deployment controller numbers its ReplicaSets.
const DEPLOYMENT_REVISION: &str = "deployment.kubernetes.io/revision";
/// The label that ties a Deployment's pods to their ReplicaSet.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Pods whose events are read, at most: enough to find the one that shows why.
const PODS_READ: usize = 20;

/// A Warning event that says why a rollout does not progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutEvent {
    /// `replicaset/details-v1-5c8f`, `pod/details-v1-5c8f-x2x7z`, `statefulset/db`.
    pub object: String,
    pub reason: String,
    pub message: String,
    /// How many times the cluster saw it (events are aggregated).
    pub count: i32,
}

impl RolloutEvent {
    /// `replicaset/details-v1-5c8f: FailedCreate (x4): Error creating: …`
    pub fn describe(&self) -> String {
        let times = if self.count > 1 {
            format!(" (x{})", self.count)
        } else {
            String::new()
        };
        format!("{}: {}{times}: {}", self.object, self.reason, self.message)
    }
}

/// The newest Warning event of the workload's newest pod creator and of its pods, if any.
pub async fn stuck_rollout_event(
    cluster: &Cluster,
    item: &RestartItem,
    selector: Option<&LabelSelector>,
) -> Option<RolloutEvent> {
    let (client, kind) = (&cluster.client, item.kind);
    let (namespace, name) = (item.namespace.as_str(), item.name.as_str());
    let mut pod_selector = selector.cloned().and_then(|s| Selector::try_from(s).ok());
    let creator = match kind {
        WorkloadKind::Deployment => {
            let rs = newest_replica_set(cluster, namespace, name, pod_selector.as_ref()).await?;
            let hash = rs
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(POD_TEMPLATE_HASH))
                .cloned();
            if let (Some(sel), Some(hash)) = (pod_selector.as_mut(), hash) {
                sel.extend([Expression::Equal(POD_TEMPLATE_HASH.into(), hash)]);
            }
            ("ReplicaSet", rs.metadata.name.unwrap_or_default())
        }
        WorkloadKind::StatefulSet => ("StatefulSet", name.to_string()),
        WorkloadKind::DaemonSet => ("DaemonSet", name.to_string()),
    };
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let of_creator = ListParams::default().fields(&format!(
        "involvedObject.kind={},involvedObject.name={},type=Warning",
        creator.0, creator.1
    ));
    let mut found: Vec<Event> = events.list(&of_creator).await.ok()?.items;
    if let Some(sel) = pod_selector {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let listed = pods
            .list_metadata(&ListParams::default().labels_from(&sel))
            .await;
        let names: Vec<String> = listed
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|p| p.metadata.name)
                    .collect()
            })
            .unwrap_or_default();
        let names = &names[..names.len().min(PODS_READ)];
        if !names.is_empty() {
            let of_pods = ListParams::default().fields("involvedObject.kind=Pod,type=Warning");
            if let Ok(list) = events.list(&of_pods).await {
                found.extend(list.items.into_iter().filter(|e| {
                    e.involved_object
                        .name
                        .as_ref()
                        .is_some_and(|n| names.contains(n))
                }));
            }
        }
    }
    found
        .into_iter()
        .max_by_key(last_seen)
        .map(|e| RolloutEvent {
            object: format!(
                "{}/{}",
                e.involved_object
                    .kind
                    .as_deref()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                e.involved_object.name.as_deref().unwrap_or_default()
            ),
            reason: e.reason.unwrap_or_default(),
            message: e.message.unwrap_or_default().trim().to_string(),
            count: e.count.unwrap_or(1),
        })
}

/// When an event was last seen: `lastTimestamp`, else `eventTime` (events.k8s.io writers),
/// else when it was stored.
fn last_seen(e: &Event) -> Option<jiff::Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The Deployment's ReplicaSet with the highest revision number: the one making new pods.
async fn newest_replica_set(
    cluster: &Cluster,
    namespace: &str,
    deployment: &str,
    selector: Option<&Selector>,
) -> Option<ReplicaSet> {
    let api: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), namespace);
    let params = match selector {
        Some(sel) => ListParams::default().labels_from(sel),
        None => ListParams::default(),
    };
    let owned = api
        .list(&params)
        .await
        .ok()?
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata.owner_references.iter().flatten().any(|o| {
                o.kind == "Deployment" && o.name == deployment && o.controller == Some(true)
            })
        });
    owned.max_by_key(|rs| {
        rs.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DEPLOYMENT_REVISION))
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    })
}
