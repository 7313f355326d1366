//! Words of `rev-prune` across clusters: which cluster each part of the plan runs on, what one
//! cluster's use of OLD means for another's, and the single-context warning.

use std::fmt::Write as _;

use crate::output::prune::blocker_text;
use crate::plan::prune_clusters::{ClusterPrune, ClustersPrunePlan, RemotesMayDepend};
use crate::runbook::ClusterRole;

/// The heading of one cluster's part: every deletion below it happens on that context.
pub fn cluster_heading(part: &ClusterPrune) -> String {
    let role = match part.role {
        ClusterRole::Primary => "primary",
        ClusterRole::Remote => "remote: no istiod of its own, its injectors call a primary's",
    };
    let fixes = match part.plan.blockers.is_empty() {
        true => String::new(),
        false => format!("; run its fixes with --context {}", part.cluster),
    };
    format!(
        "=== context {} ({role}){fixes}: deletions below are on this cluster\n",
        part.cluster
    )
}

/// A remote's use of OLD, as a blocker of OLD on the primary that serves it.
pub fn render_cross_blockers(plan: &ClustersPrunePlan) -> String {
    if plan.cross_cluster_blockers.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "Across clusters: {} on a primary serves its remotes until they left it ({} blocker(s)):\n",
        plan.revision,
        plan.cross_cluster_blockers.len()
    );
    for cross in &plan.cross_cluster_blockers {
        let remote_plan = plan
            .clusters
            .iter()
            .find(|c| c.cluster == cross.remote)
            .map(|c| &c.plan);
        let (message, fix) = match remote_plan {
            Some(p) => blocker_text(&cross.blocker, p),
            None => (String::new(), String::new()),
        };
        let _ = writeln!(
            out,
            "  - context {}: {} blocks removing {} on context {}: {message}",
            cross.remote, cross.blocker.subject, plan.revision, cross.primary
        );
        let _ = writeln!(out, "      fix (with --context {}): {fix}", cross.remote);
    }
    out
}

/// Pruning OLD on one cluster whose istiod-OLD reads other clusters: name them, and say how
/// to prune seeing them too.
pub fn render_remotes_warning(warning: &RemotesMayDepend, context: &str) -> String {
    let clusters: Vec<String> = warning
        .remote_secrets
        .iter()
        .map(|s| format!("{} (secret {}/{})", s.cluster, s.namespace, s.name))
        .collect();
    format!(
        "warning: {} ({}) reads other clusters through remote secrets: {}. Their proxies may be injected and configured by it, which this cluster alone cannot show.\n  Pass their contexts too, and the prune refuses while any of them still uses {}: kubectl rev-prune {} --context {context} --context <their context>...\n",
        warning.istiod,
        warning.revision,
        clusters.join(", "),
        warning.revision,
        warning.revision,
    )
}
