//! What `kubectl rev-prune` shows: the plan (with what was found live), the blockers with
//! their fixes, the report of what was done, and what remains of the mesh.

use std::fmt::Write;

use super::table;
use crate::analysis::Analysis;
use crate::exec::prune::{Inspection, LiveState, PruneReport};
use crate::plan::prune::{PrunePlan, PruneStep, UninstallMethod};
use crate::snapshot::Snapshot;

fn action(state: Option<&LiveState>) -> (&'static str, String) {
    match state {
        None | Some(LiveState::Present) => ("delete", String::new()),
        Some(LiveState::Gone) => ("gone", "already deleted".into()),
        Some(LiveState::NotOwned(why)) => ("skip", format!("left alone: {why}")),
        Some(LiveState::NotServed) => ("gone", "kind not served by this cluster".into()),
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

/// The plan, step by step, in the order it runs.
pub fn render_plan(plan: &PrunePlan, inspection: Option<&Inspection>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan: prune revision {}{}",
        plan.revision,
        plan.successor
            .as_deref()
            .map(|s| format!(" (the mesh stays on {s})"))
            .unwrap_or_default()
    );
    if plan.steps.is_empty() {
        let _ = writeln!(out, "\nNothing of {} is left to delete.", plan.revision);
    }
    let (mut objects, mut releases) = (0, 0);
    for (i, step) in plan.steps.iter().enumerate() {
        let states = inspection.map(|ins| &ins.steps[i]);
        let mut rows = Vec::new();
        for (j, key) in step.objects().iter().enumerate() {
            let state = states.and_then(|s| s.get(j)).map(|o| &o.state);
            let (verb, note) = action(state);
            if verb == "delete" {
                objects += 1;
            }
            let shown = states.and_then(|s| s.get(j)).map(|o| &o.key).unwrap_or(key);
            rows.push(vec![
                verb.to_string(),
                shown.kind.clone(),
                shown.namespace.clone().unwrap_or_default(),
                shown.name.clone(),
                // A blank, not `<none>`: most rows have no note.
                if note.is_empty() { " ".into() } else { note },
            ]);
        }
        match step {
            PruneStep::HelmRelease(r) => {
                releases += 1;
                let how = match &r.method {
                    UninstallMethod::Native => {
                        "uninstalled natively (Helm's order and semantics)".to_string()
                    }
                    UninstallMethod::HelmBinary { path } => format!(
                        "uninstalled by {path} (its delete hooks need Helm: {})",
                        r.delete_hooks.join("; ")
                    ),
                };
                let _ = writeln!(
                    out,
                    "\n{}. {} Helm release {}/{} (chart {}-{}, {}): {how}",
                    i + 1,
                    r.component.as_str(),
                    r.namespace,
                    r.name,
                    r.chart,
                    r.chart_version,
                    r.status,
                );
                for kept in &r.kept {
                    rows.push(vec![
                        "keep".into(),
                        kept.kind.clone(),
                        kept.namespace.clone().unwrap_or_default(),
                        kept.name.clone(),
                        "helm.sh/resource-policy: keep".into(),
                    ]);
                }
            }
            PruneStep::Objects(o) => {
                let _ = writeln!(
                    out,
                    "\n{}. {} of {} installed without Helm (labelled istio.io/rev={} or named for it)",
                    i + 1,
                    o.component.as_str(),
                    plan.revision,
                    plan.revision
                );
            }
        }
        out.push_str(&indent(
            &table(
                &["action", "kind", "namespace", "name", "note"],
                rows,
                false,
            ),
            "   ",
        ));
        if let PruneStep::HelmRelease(r) = step {
            let records = inspection
                .map(|ins| ins.records[i].join(", "))
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| format!("sh.helm.release.v1.{}.v*", r.name));
            let _ = writeln!(
                out,
                "   then delete its release records ({records}): `helm ls` stops listing it"
            );
        }
    }
    if !plan.steps.is_empty() {
        let _ = writeln!(
            out,
            "\n{objects} object(s) and {releases} Helm release(s) to delete, in this order."
        );
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

/// Every blocker with its fix; empty when there is none.
pub fn render_blockers(plan: &PrunePlan) -> String {
    if plan.blockers.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let forced = plan.force && plan.blockers.iter().all(|b| b.forceable);
    let _ = writeln!(
        out,
        "\n{} {} is still in use or cannot be removed safely ({} blocker(s)){}:",
        if forced {
            "Overridden by --force:"
        } else {
            "Refused:"
        },
        plan.revision,
        plan.blockers.len(),
        if forced { "" } else { "; nothing was deleted" }
    );
    for b in &plan.blockers {
        let _ = writeln!(out, "  - {}: {}", b.subject, b.message);
        let _ = writeln!(
            out,
            "      fix: {}{}",
            b.fix,
            if b.forceable {
                ""
            } else {
                "   (--force cannot override this)"
            }
        );
    }
    if !forced && plan.blockers.iter().all(|b| b.forceable) {
        let _ = writeln!(
            out,
            "Fix them and re-run; --force deletes anyway (and cuts whatever still uses {}).",
            plan.revision
        );
    }
    out
}

/// What was done; on failure, also what was not.
pub fn render_report(report: &PruneReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} {} object(s); {} Helm release(s) uninstalled{}.",
        if report.server_dry_run {
            "Server dry run (nothing stored): would delete"
        } else {
            "Deleted"
        },
        report.deleted.len(),
        report.releases_uninstalled.len(),
        report
            .pods_gone_after
            .map(|d| format!("; their pods were gone after {:.1}s", d.as_secs_f64()))
            .unwrap_or_default()
    );
    if !report.already_gone.is_empty() {
        let _ = writeln!(out, "Already gone: {}", report.already_gone.join(", "));
    }
    for left in &report.left_alone {
        let _ = writeln!(out, "Left alone: {left}");
    }
    if report.failure.is_some() && !report.not_done.is_empty() {
        let _ = writeln!(
            out,
            "Deleted before the failure: {}",
            list_or_none(&report.deleted)
        );
        let _ = writeln!(out, "NOT deleted: {}", list_or_none(&report.not_done));
    }
    out
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The mesh after the prune: revisions, gateways and Istio Helm releases (the guide's closing
/// `kubectl get pods -n istio-system`, in one view).
pub fn render_remains(analysis: &Analysis, snapshot: &Snapshot) -> String {
    let cp = &analysis.control_plane;
    let mut out = String::from("\nWhat remains of the mesh:\n");
    let rows = cp
        .revisions
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.version.clone().unwrap_or_default(),
                r.istiod
                    .as_ref()
                    .map(|i| format!("{}/{}", i.namespace, i.name))
                    .unwrap_or_default(),
                r.istiod
                    .as_ref()
                    .map(|i| format!("{}/{}", i.ready, i.desired))
                    .unwrap_or_default(),
                r.tags.join(","),
                if r.is_default {
                    "yes".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    out.push_str(&table(
        &["revision", "version", "istiod", "ready", "tags", "default"],
        rows,
        false,
    ));
    if !analysis.gateways.is_empty() {
        out.push('\n');
        let rows = analysis
            .gateways
            .iter()
            .map(|g| {
                vec![
                    g.namespace.clone(),
                    g.name.clone(),
                    g.revision.clone().unwrap_or_default(),
                    format!("{}/{}", g.ready, g.desired),
                    g.addresses.join(","),
                ]
            })
            .collect();
        out.push_str(&table(
            &["namespace", "gateway", "revision", "ready", "address"],
            rows,
            false,
        ));
    }
    let releases: Vec<Vec<String>> = snapshot
        .helm_releases
        .iter()
        .filter(|r| r.is_istio_chart())
        .map(|r| {
            vec![
                r.namespace.clone(),
                r.name.clone(),
                format!("{}-{}", r.chart, r.chart_version),
                r.status.clone(),
            ]
        })
        .collect();
    if !releases.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &["namespace", "helm release", "chart", "status"],
            releases,
            false,
        ));
    }
    out
}
