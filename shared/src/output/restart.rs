//! How a restart plan and its outcome are shown.

use serde::Serialize;

use super::table;
use crate::exec::restart::{RestartResult, WorkloadOutcome};
use crate::plan::restart::{RestartMethod, RestartPlan};

pub const API_VERSION: &str = "restart.kubectl-rev.dev/v1alpha1";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub dry_run: &'static str,
    pub workloads: Vec<WorkloadOutcome>,
}

pub fn render_plan(plan: &RestartPlan) -> String {
    let mut out = String::new();
    if plan.items.is_empty() {
        out.push_str(
            "Nothing to restart: no workload in scope is drifted from its namespace's revision.\n",
        );
    } else {
        out.push_str(&format!(
            "Plan: restart {} workload(s), in this order:\n",
            plan.items.len()
        ));
        let rows = plan
            .items
            .iter()
            .map(|i| {
                vec![
                    i.namespace.clone(),
                    format!("{}/{}", i.kind.resource(), i.name),
                    format!("{}/{}", i.drifted_pods, i.pods),
                    i.target_revision.clone().unwrap_or_default(),
                    match i.method {
                        RestartMethod::RolloutRestart => "rollout restart".into(),
                        RestartMethod::DeletePods => "delete pods one by one".into(),
                    },
                ]
            })
            .collect();
        out.push_str(&table(
            &["namespace", "workload", "drifted pods", "target", "method"],
            rows,
            false,
        ));
    }
    for s in &plan.skipped {
        out.push_str(&format!("skipped: {}: {}\n", s.subject, s.reason));
    }
    out
}

pub fn render_summary(outcomes: &[WorkloadOutcome]) -> String {
    let rows = outcomes
        .iter()
        .map(|o| {
            vec![
                o.namespace.clone(),
                format!("{}/{}", o.kind.resource(), o.name),
                serde_json::to_value(o.result)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                format!("{:.1}", o.rollout_seconds),
                o.pods_verified.to_string(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "namespace",
            "workload",
            "result",
            "seconds",
            "pods verified",
        ],
        rows,
        false,
    );
    for o in outcomes {
        if let Some(message) = &o.message {
            out.push_str(&format!("{}/{}: {message}\n", o.kind.resource(), o.name));
        }
        if let Some(undo) = &o.undo
            && o.result != RestartResult::NotRun
        {
            out.push_str(&format!("  to roll back: {undo}\n"));
        }
    }
    out
}
