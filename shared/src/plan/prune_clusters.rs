//! `rev-prune OLD` across the clusters of one mesh (upgrade guide step 6). A remote has OLD's
//! injector webhooks but no istiod: its pods are injected and configured by a primary's
//! istiod-OLD. So whatever a remote still runs on OLD blocks removing OLD on the primary, and
//! the clusters are pruned together: every remote first, the primaries last, and nothing at all
//! while any blocker remains.

use serde::Serialize;

use crate::analysis::Analysis;
use crate::error::RevError;
use crate::plan::prune::{BlockerReason, PruneBlocker, PruneOptions, PrunePlan, plan_prune};
use crate::revision::RevisionName;
use crate::runbook::{ClusterRole, role_of};
use crate::snapshot::{RemoteSecretInfo, Snapshot};

/// One cluster as read, named as its commands must name it (the context).
pub struct ClusterRead<'a> {
    pub name: &'a str,
    pub snapshot: &'a Snapshot,
    pub analysis: &'a Analysis,
}

/// One cluster's part of the prune.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPrune {
    /// The context.
    pub cluster: String,
    pub role: ClusterRole,
    /// What is deleted on this cluster, and what blocks it there.
    pub plan: PrunePlan,
}

/// Something a remote still runs on OLD, which the primary's istiod-OLD serves: it blocks
/// removing OLD on the primary, not only on the remote.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossClusterBlocker {
    /// The context whose istiod-OLD would go.
    pub primary: String,
    /// The context that still uses it.
    pub remote: String,
    /// The remote's own blocker (its fix is run with `--context <remote>`).
    pub blocker: PruneBlocker,
}

/// The prune of OLD on every cluster read, in the order it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClustersPrunePlan {
    pub revision: String,
    /// Remotes first, then primaries; each in the order its context was named.
    pub clusters: Vec<ClusterPrune>,
    pub cross_cluster_blockers: Vec<CrossClusterBlocker>,
    pub force: bool,
}

impl ClustersPrunePlan {
    /// Every blocker of every cluster: one is enough to refuse the whole run (a cross-cluster
    /// blocker is a remote's blocker, counted once).
    pub fn blockers(&self) -> impl Iterator<Item = &PruneBlocker> {
        self.clusters.iter().flat_map(|c| &c.plan.blockers)
    }

    pub fn refused(&self) -> bool {
        self.clusters.iter().any(|c| c.plan.refused())
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.iter().all(|c| c.plan.is_empty())
    }
}

/// Blockers that exist because the remote's pods, namespaces, tags or gateways still reach the
/// primary's istiod-OLD. The others (a pending Helm operation, unreadable records, OLD being the
/// remote's only revision) are the remote's own business; they still refuse the whole run.
fn uses_serving_istiod(reason: BlockerReason) -> bool {
    !matches!(
        reason,
        BlockerReason::OnlyRevision
            | BlockerReason::HelmOperationPending
            | BlockerReason::CannotVerify
            | BlockerReason::DeleteHooksNeedHelm
            | BlockerReason::UnreadableRelease
    )
}

/// Plans the prune of `revision` on every cluster, with the blockers one cluster puts on another.
pub fn plan_prune_clusters(
    clusters: &[ClusterRead<'_>],
    revision: &RevisionName,
    options: &PruneOptions,
) -> Result<ClustersPrunePlan, RevError> {
    let mut parts = Vec::new();
    for read in clusters {
        parts.push(ClusterPrune {
            cluster: read.name.to_string(),
            role: role_of(read.analysis),
            plan: plan_prune(read.snapshot, read.analysis, revision, options)?,
        });
    }
    let old = revision.as_str();
    let serving: Vec<&str> = clusters
        .iter()
        .zip(&parts)
        .filter(|(read, part)| {
            part.role == ClusterRole::Primary
                && read
                    .analysis
                    .control_plane
                    .revision(old)
                    .is_some_and(|r| r.istiod.is_some())
        })
        .map(|(read, _)| read.name)
        .collect();
    let mut cross_cluster_blockers = Vec::new();
    for part in parts.iter().filter(|p| p.role == ClusterRole::Remote) {
        for blocker in &part.plan.blockers {
            if !uses_serving_istiod(blocker.reason()) {
                continue;
            }
            for primary in &serving {
                cross_cluster_blockers.push(CrossClusterBlocker {
                    primary: primary.to_string(),
                    remote: part.cluster.clone(),
                    blocker: blocker.clone(),
                });
            }
        }
    }
    // Remotes leave OLD before the istiod that served them goes (stable: named order kept).
    parts.sort_by_key(|p| p.role != ClusterRole::Remote);
    Ok(ClustersPrunePlan {
        revision: old.to_string(),
        clusters: parts,
        cross_cluster_blockers,
        force: options.force,
    })
}

/// istiod-OLD on this cluster may serve other clusters: it holds remote secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemotesMayDepend {
    pub revision: String,
    /// istiod-OLD, `namespace/name`.
    pub istiod: String,
    pub remote_secrets: Vec<RemoteSecretInfo>,
}

/// When one cluster is read: does its istiod-OLD read other clusters? istiod watches the
/// secrets labelled `istio/multiCluster=true` in its own namespace (`istioctl
/// create-remote-secret`); their clusters' proxies may be injected and configured by it, and a
/// prune seen from this cluster alone cannot tell.
pub fn remotes_may_depend(
    snapshot: &Snapshot,
    analysis: &Analysis,
    revision: &RevisionName,
) -> Option<RemotesMayDepend> {
    let istiod = analysis
        .control_plane
        .revision(revision.as_str())?
        .istiod
        .as_ref()?;
    let mut remote_secrets: Vec<RemoteSecretInfo> = snapshot
        .remote_secrets
        .iter()
        .filter(|s| s.namespace == istiod.namespace)
        .cloned()
        .collect();
    if remote_secrets.is_empty() {
        return None;
    }
    remote_secrets.sort();
    remote_secrets.dedup();
    Some(RemotesMayDepend {
        revision: revision.as_str().to_string(),
        istiod: format!("{}/{}", istiod.namespace, istiod.name),
        remote_secrets,
    })
}
