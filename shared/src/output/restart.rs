//! How a restart plan and its outcome read: the workloads in order, those left alone with why
//! and the command that moves them, then each workload's result.

use std::fmt::Write;

use serde::Serialize;

use super::table;
use crate::exec::restart::{RestartResult, WorkloadOutcome};
use crate::plan::restart::{RestartMethod, RestartPlan, SkipReason, Skipped};
use crate::probe::report::{go_duration, vegeta_round};
use crate::probe::{ProbeIntent, Report, WindowFigures};

pub const API_VERSION: &str = "restart.kubectl-rev.dev/v1alpha1";

/// What a restart run did, and what it left for the user.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartReport {
    pub workloads: Vec<WorkloadOutcome>,
    pub skipped: Vec<SkippedReport>,
    /// `--probe`: the target and the figures of the whole run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeSummary>,
}

/// The probe of a `--probe` run, over the whole run (each workload's window is in its outcome).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeSummary {
    pub target: String,
    pub figures: WindowFigures,
    /// vegeta's full report of the run, for `--compare` (`--save` writes it).
    #[serde(skip)]
    pub report: Report,
}

/// A workload or pod left alone, with why and what moves it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedReport {
    #[serde(flatten)]
    pub skipped: Skipped,
    pub message: String,
    /// The command that moves it (or the step of the upgrade that does).
    pub fix: String,
}

/// Why it is left alone, and what moves it.
pub fn skip_text(s: &Skipped) -> (String, String) {
    let (ns, name) = (&s.namespace, &s.name);
    match s.reason {
        SkipReason::ControlPlane => (
            "Istio control plane: it moves by installing a new revision, never by a restart".into(),
            "upgrade guide step 2 (install the new istiod revision)".into(),
        ),
        SkipReason::Gateway => (
            "Istio gateway of a revision: it moves by installing a new Helm release".into(),
            "upgrade guide step 3 (install the new revision's gateway)".into(),
        ),
        SkipReason::RevisionlessGateway => (
            "Istio gateway installed without a revision: the default revision injects it, so it is upgraded in place by a restart once the default has moved".into(),
            format!("kubectl rev-restart {ns} --gateways"),
        ),
        SkipReason::Paused => (
            "paused: kubectl refuses to restart paused Deployments".into(),
            format!("kubectl rollout resume deployment/{name} -n {ns}, then re-run"),
        ),
        SkipReason::OnDelete => (
            format!(
                "updateStrategy OnDelete: a {} never rolls by itself",
                s.kind
            ),
            format!("kubectl rev-restart -n {ns} --ondelete=delete-pods"),
        ),
        SkipReason::Partition => {
            let partition = s.partition.unwrap_or_default();
            let pods = s.pods.join(", ");
            let first = s.pods.first().map_or(name.as_str(), String::as_str);
            (
                format!(
                    "rollingUpdate.partition {partition} keeps {pods} on the old sidecar: a restart replaces only the pods after them"
                ),
                format!(
                    "delete them one at a time, waiting for each to be Ready (kubectl delete pod {first} -n {ns}; the StatefulSet recreates it from its current template and the new revision injects it), or lower the partition (kubectl patch statefulset {name} -n {ns} --type merge -p '{{\"spec\":{{\"updateStrategy\":{{\"rollingUpdate\":{{\"partition\":0}}}}}}}}', which also rolls any other pending template change onto them)"
                ),
            )
        }
        SkipReason::NoOwner => (
            "no Deployment, StatefulSet or DaemonSet owns it: only recreating it moves it".into(),
            format!("kubectl delete pod {name} -n {ns} (and create it again)"),
        ),
    }
}

pub fn skipped_report(skipped: &[Skipped]) -> Vec<SkippedReport> {
    skipped
        .iter()
        .map(|s| {
            let (message, fix) = skip_text(s);
            SkippedReport {
                skipped: s.clone(),
                message,
                fix,
            }
        })
        .collect()
}

fn render_skipped(out: &mut String, skipped: &[Skipped]) {
    for s in skipped {
        let (message, fix) = skip_text(s);
        let _ = writeln!(
            out,
            "skipped: {}/{}/{}: {message}\n  to move it: {fix}",
            s.kind, s.namespace, s.name
        );
    }
}

/// The admission check's answers that matter: each refusal with its reason, and what could not
/// be checked.
fn render_admission(plan: &RestartPlan, out: &mut String) {
    let Some(admission) = &plan.admission else {
        return;
    };
    let refused: Vec<_> = admission.refused().collect();
    if !refused.is_empty() {
        let _ = writeln!(
            out,
            "\nThe cluster's admission chain (a dryRun=All create of each template) refuses {} workload(s):",
            refused.len()
        );
        for v in refused {
            let _ = writeln!(
                out,
                "  ✗ {}/{} in {}: {}",
                v.kind.resource(),
                v.name,
                v.namespace,
                v.refusal.as_deref().unwrap_or_default()
            );
        }
        let _ = writeln!(
            out,
            "  fix: make the target revision inject these templates (`kubectl rev-inventory --check-injection` shows why), or skip the check with --no-admission-check"
        );
    }
    for w in &admission.warnings {
        let _ = writeln!(
            out,
            "warning: admission check skipped: cannot {} {}: {}",
            w.verb, w.resource, w.message
        );
    }
}

pub fn render_plan(plan: &RestartPlan, no_headers: bool) -> String {
    let mut out = String::new();
    if plan.items.is_empty() {
        out.push_str(
            "Nothing to restart: no workload in scope is drifted from its namespace's revision.\n",
        );
    } else {
        let _ = writeln!(
            out,
            "Plan: restart {} workload(s), in this order:",
            plan.items.len()
        );
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
            no_headers,
        ));
        for i in plan.items.iter().filter(|i| !i.held_back.is_empty()) {
            let _ = writeln!(
                out,
                "{}/{}: partition {} keeps {} on their current sidecar; only the pods after them are restarted",
                i.kind.resource(),
                i.name,
                i.partition.unwrap_or_default(),
                i.held_back.join(", ")
            );
        }
    }
    render_skipped(&mut out, &plan.skipped);
    render_admission(plan, &mut out);
    out
}

/// What `--probe` will do, under the plan: the target, the rate, and what stops the run.
pub fn render_probe_intent(intent: &ProbeIntent, continue_on_error: bool) -> String {
    let rate = if intent.rate.fract() == 0.0 {
        format!("{:.0}", intent.rate)
    } else {
        format!("{:.2}", intent.rate)
    };
    let mut out = format!(
        "Probe: {rate} {}/s to {}, from the first restart to the last; each workload's figures cover the requests sent while it rolled.\n",
        intent.method, intent.target
    );
    let mut gates = Vec::new();
    if let Some(ratio) = intent.gates.max_error_rate {
        gates.push(format!("error rate above {:.2}%", ratio * 100.0));
    }
    if let Some(p99) = intent.gates.max_p99 {
        gates.push(format!("p99 above {}", go_duration(p99.as_nanos() as u64)));
    }
    let _ = if gates.is_empty() {
        writeln!(
            out,
            "  no gate (--max-error-rate, --max-p99): the figures are reported, nothing stops the run"
        )
    } else if continue_on_error {
        writeln!(
            out,
            "  gates: {}: a breach is reported with the workload blamed and the run goes on (--continue-on-error)",
            gates.join(", ")
        )
    } else {
        writeln!(
            out,
            "  gates: {}: a breach while a workload rolls stops the run before the next one",
            gates.join(", ")
        )
    };
    out
}

pub fn question(plan: &RestartPlan, max_parallel: usize) -> String {
    format!(
        "Restart {} workload(s), {max_parallel} at a time?",
        plan.items.len()
    )
}

fn result_text(result: RestartResult) -> &'static str {
    match result {
        RestartResult::Restarted => "restarted",
        RestartResult::ServerDryRun => "server-dry-run",
        RestartResult::RolloutFailed => "rollout-failed",
        RestartResult::TimedOut => "timed-out",
        RestartResult::VerificationFailed => "verification-failed",
        RestartResult::Error => "error",
        RestartResult::NotRun => "not-run",
    }
}

/// A latency in milliseconds as vegeta prints it (`1.234ms`).
fn latency(ms: f64) -> String {
    go_duration(vegeta_round((ms * 1e6) as u64))
}

/// The traffic columns of a workload's row (`--probe`): requests, success, p50, p99, errors.
fn traffic_cells(figures: Option<&WindowFigures>) -> Vec<String> {
    match figures {
        Some(f) if f.requests > 0 => vec![
            f.requests.to_string(),
            format!("{:.2}%", f.success * 100.0),
            latency(f.p50_ms),
            latency(f.p99_ms),
            f.errors.to_string(),
        ],
        Some(_) => vec!["0".into(), "-".into(), "-".into(), "-".into(), "0".into()],
        // Not rolled (stopped before it): nothing was measured for it.
        None => vec!["-".into(); 5],
    }
}

pub fn render_summary(report: &RestartReport, no_headers: bool) -> String {
    let mut out = if report.workloads.is_empty() {
        String::new()
    } else {
        summary_table(report, no_headers)
    };
    for o in &report.workloads {
        render_workload_notes(&mut out, o);
    }
    if let Some(probe) = &report.probe {
        let f = &probe.figures;
        let _ = writeln!(
            out,
            "Probe, whole run: {} request(s) to {}, {:.2}% success, p50 {}, p99 {}, max {}",
            f.requests,
            probe.target,
            f.success * 100.0,
            latency(f.p50_ms),
            latency(f.p99_ms),
            latency(f.max_ms)
        );
    }
    let needs_user: Vec<Skipped> = report
        .skipped
        .iter()
        .filter(|s| s.skipped.reason.needs_user())
        .map(|s| s.skipped.clone())
        .collect();
    if !needs_user.is_empty() {
        out.push_str("Still drifted, for you to move:\n");
        render_skipped(&mut out, &needs_user);
    }
    out
}

/// One row per workload; with `--probe`, its rollout window's traffic too.
fn summary_table(report: &RestartReport, no_headers: bool) -> String {
    let probed = report.probe.is_some();
    let rows = report
        .workloads
        .iter()
        .map(|o| {
            let mut row = vec![
                o.namespace.clone(),
                format!("{}/{}", o.kind.resource(), o.name),
                result_text(o.result).to_string(),
                format!("{:.1}", o.rollout_seconds),
                o.pods_verified.to_string(),
            ];
            if probed {
                row.extend(traffic_cells(o.probe.as_ref()));
            }
            row
        })
        .collect();
    let mut headers = vec![
        "namespace",
        "workload",
        "result",
        "seconds",
        "pods verified",
    ];
    if probed {
        headers.extend(["requests", "success", "p50", "p99", "errors"]);
    }
    table(&headers, rows, no_headers)
}

/// What the table cannot hold about one workload: its message, the cause of a stuck rollout,
/// gates its rollout breached, pods the partition kept, and how to roll it back.
fn render_workload_notes(out: &mut String, o: &WorkloadOutcome) {
    let workload = format!("{}/{}", o.kind.resource(), o.name);
    if let Some(message) = &o.message {
        let _ = writeln!(out, "{workload}: {message}");
    }
    if let Some(cause) = &o.cause {
        let _ = writeln!(out, "  why: {}", cause.describe());
    }
    for breach in &o.gate_breaches {
        let _ = writeln!(
            out,
            "{workload}: traffic breached a gate while it rolled: {breach}"
        );
    }
    if !o.left_drifted.is_empty() {
        let _ = writeln!(
            out,
            "{workload}: {} still drifted, kept on their sidecar by the partition",
            o.left_drifted.join(", ")
        );
    }
    if let Some(undo) = &o.undo
        && o.result != RestartResult::NotRun
    {
        let _ = writeln!(out, "  to roll back: {undo}");
    }
}

pub fn plan_names(plan: &RestartPlan) -> Vec<String> {
    plan.items
        .iter()
        .map(|i| super::object_name("apps/v1", i.kind.resource(), &i.name))
        .collect()
}

pub fn report_names(report: &RestartReport) -> Vec<String> {
    report
        .workloads
        .iter()
        .filter(|o| {
            matches!(
                o.result,
                RestartResult::Restarted | RestartResult::ServerDryRun
            )
        })
        .map(|o| super::object_name("apps/v1", o.kind.resource(), &o.name))
        .collect()
}
