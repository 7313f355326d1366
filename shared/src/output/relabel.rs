//! How a relabel plan and its result are shown: the plan as text (before → after per namespace,
//! what will need a restart, what stays ignored or pinned), the result as a versioned document.

use serde::Serialize;

use super::table;
use crate::exec::relabel::ChangeOutcome;
use crate::plan::relabel::RelabelPlan;

pub const API_VERSION: &str = "relabel.kubectl-rev.dev/v1alpha1";

fn label_text(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

pub fn render_plan(plan: &RelabelPlan) -> String {
    let mut out = String::new();
    let target = match (&plan.target_revision, &plan.via_tag) {
        (Some(r), Some(tag)) => format!("istio.io/rev={} (tag {tag} → revision {r})", plan.target),
        (Some(r), None) => format!("istio.io/rev={r}"),
        (None, _) => format!("istio.io/rev={} (not installed)", plan.target),
    };
    let version = plan
        .target_version
        .as_deref()
        .map(|v| format!(", version {v}"))
        .unwrap_or_default();
    out.push_str(&format!(
        "Plan: relabel {} namespace(s) to {target}{version}\n",
        plan.changes.len()
    ));
    if !plan.changes.is_empty() {
        let rows = plan
            .changes
            .iter()
            .map(|c| {
                vec![
                    c.namespace.clone(),
                    format!(
                        "istio.io/rev={} istio-injection={}",
                        label_text(&c.before["istio.io/rev"]),
                        label_text(&c.before["istio-injection"])
                    ),
                    format!(
                        "istio.io/rev={} istio-injection={}",
                        label_text(&c.after["istio.io/rev"]),
                        label_text(&c.after["istio-injection"])
                    ),
                    c.pods_to_restart.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["namespace", "before", "after", "pods to restart"],
            rows,
            false,
        ));
    }
    for c in &plan.changes {
        if !c.workloads_to_restart.is_empty() {
            out.push_str(&format!(
                "  {}: then drifted, to restart with `kubectl rev-restart -n {}`: {}\n",
                c.namespace,
                c.namespace,
                c.workloads_to_restart.join(", ")
            ));
        }
        if !c.ignored_pod_labels.is_empty() {
            out.push_str(&format!(
                "  {}: pod-level labels that stay ignored (the namespace label decides): {}\n",
                c.namespace,
                c.ignored_pod_labels.join(", ")
            ));
        }
        if !c.pinned_config.is_empty() {
            out.push_str(&format!(
                "  {}: config pinned to another revision, which stops applying to these pods: {}\n",
                c.namespace,
                c.pinned_config.join(", ")
            ));
        }
    }
    if !plan.unchanged.is_empty() {
        out.push_str(&format!(
            "Unchanged (already on {}): {}\n",
            plan.target,
            plan.unchanged.join(", ")
        ));
    }
    push_checks(&mut out, &plan.warnings, &plan.blockers);
    out
}

/// Preflight results, the same for namespace and tag plans: warnings, then each blocker with
/// its fix.
fn push_checks(out: &mut String, warnings: &[String], blockers: &[crate::plan::relabel::Blocker]) {
    for w in warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    for b in blockers {
        out.push_str(&format!("blocked: {}\n  fix: {}\n", b.message, b.fix));
    }
}

pub fn render_tag_plan(plan: &crate::plan::relabel::TagPlan) -> String {
    let mut out = format!(
        "Plan: repoint tag {} from {} to {} ({} takes the client configuration of {})\n",
        plan.tag, plan.from_revision, plan.to_revision, plan.webhook, plan.injector
    );
    if let Some((validator, source)) = &plan.validator {
        out.push_str(&format!("  and {validator} takes that of {source}\n"));
    }
    if plan.namespaces.is_empty() {
        out.push_str("  no namespace selects this tag\n");
    } else {
        out.push_str(&format!(
            "  namespaces that move with it: {} ({} pod(s) then need a restart: kubectl rev-restart {})\n",
            plan.namespaces.join(", "),
            plan.pods_to_restart,
            plan.namespaces.join(" ")
        ));
    }
    push_checks(&mut out, &plan.warnings, &plan.blockers);
    out
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelabelReport<'a> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub dry_run: &'static str,
    pub target: &'a str,
    pub target_revision: Option<&'a str>,
    pub changed: Vec<ChangeOutcome>,
    pub unchanged: &'a [String],
}

/// `-o name`: the namespaces changed (or that would be).
pub fn render_names(outcomes: &[ChangeOutcome]) -> String {
    outcomes
        .iter()
        .map(|o| format!("namespace/{}\n", o.namespace))
        .collect()
}
