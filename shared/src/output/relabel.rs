//! How relabel plans (namespaces, undo, tags) and their results read: before → after per
//! namespace, what will need a restart, what stays ignored or pinned, each blocker with the
//! command that clears it.

use std::fmt::Write;

use serde::Serialize;

use super::table;
use crate::exec::relabel::{ChangeOutcome, ChangeResult};
use crate::flags::DryRun;
use crate::plan::relabel::{
    ManagedLabels, NamespaceChange, RelabelBlocker, RelabelPlan, RelabelWarning, TagPlan,
};

pub const API_VERSION: &str = "relabel.kubectl-rev.dev/v1alpha1";

fn label_text(labels: &ManagedLabels, key: &str) -> String {
    labels
        .get(key)
        .cloned()
        .flatten()
        .unwrap_or_else(|| "-".into())
}

fn labels_text(labels: &ManagedLabels) -> String {
    format!(
        "istio.io/rev={} istio-injection={}",
        label_text(labels, "istio.io/rev"),
        label_text(labels, "istio-injection")
    )
}

fn target_text(plan: &RelabelPlan) -> String {
    let Some(target) = &plan.target else {
        return "the labels recorded by the last relabel".into();
    };
    let revision = match (&plan.target_revision, &plan.via_tag) {
        (Some(r), Some(tag)) => format!("istio.io/rev={target} (tag {tag} → revision {r})"),
        (Some(r), None) => format!("istio.io/rev={r}"),
        (None, _) => format!("istio.io/rev={target} (not installed)"),
    };
    match &plan.target_version {
        Some(v) => format!("{revision}, version {v}"),
        None => revision,
    }
}

fn restarts_text(change: &NamespaceChange) -> String {
    change
        .restarts
        .iter()
        .map(|r| {
            let subject = match (&r.workload, &r.pod) {
                (Some(w), _) => format!("{}/{}", w.kind.resource(), w.name),
                (None, Some(pod)) => format!("pod/{pod} (no restartable owner)"),
                (None, None) => "pods".into(),
            };
            format!(
                "{subject} ({} pod{})",
                r.pods,
                if r.pods == 1 { "" } else { "s" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render_plan(plan: &RelabelPlan, no_headers: bool) -> String {
    let mut out = String::new();
    let verb = if plan.target.is_some() {
        "relabel"
    } else {
        "restore"
    };
    let _ = writeln!(
        out,
        "Plan: {verb} {} namespace(s) to {}",
        plan.changes.len(),
        target_text(plan)
    );
    if !plan.changes.is_empty() {
        out.push_str(&changes_table(&plan.changes, no_headers));
    }
    for c in &plan.changes {
        push_change_notes(&mut out, c);
    }
    if !plan.unchanged.is_empty() {
        let why = match &plan.target {
            Some(target) => format!("already on {target}"),
            None => "no relabel record".into(),
        };
        let _ = writeln!(out, "Unchanged ({why}): {}", plan.unchanged.join(", "));
    }
    push_checks(&mut out, &plan.warnings, &plan.blockers);
    out
}

/// Each namespace's labels before → after, the revision that then injects, pods to restart.
fn changes_table(changes: &[NamespaceChange], no_headers: bool) -> String {
    let rows = changes
        .iter()
        .map(|c| {
            vec![
                c.namespace.clone(),
                labels_text(&c.before),
                labels_text(&c.after),
                c.revision_after.clone().unwrap_or_else(|| "none".into()),
                c.pods_to_restart.to_string(),
            ]
        })
        .collect();
    table(
        &["namespace", "before", "after", "injects", "pods to restart"],
        rows,
        no_headers,
    )
}

/// What a namespace's move leaves to do or to know: restarts, ignored pod labels, pinned config.
fn push_change_notes(out: &mut String, c: &NamespaceChange) {
    if !c.restarts.is_empty() {
        let _ = writeln!(
            out,
            "  {}: then drifted, to restart with `kubectl rev-restart -n {}`: {}",
            c.namespace,
            c.namespace,
            restarts_text(c)
        );
    }
    if !c.ignored_pod_labels.is_empty() {
        let labels: Vec<String> = c
            .ignored_pod_labels
            .iter()
            .map(|l| format!("pod/{} istio.io/rev={}", l.pod, l.value))
            .collect();
        let _ = writeln!(
            out,
            "  {}: pod-level labels that stay ignored (the namespace label decides): {}",
            c.namespace,
            labels.join(", ")
        );
    }
    if !c.pinned_config.is_empty() {
        let pinned: Vec<String> = c
            .pinned_config
            .iter()
            .map(|p| {
                format!(
                    "{}/{} (istio.io/rev={})",
                    p.kind.to_ascii_lowercase(),
                    p.name,
                    p.revision
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "  {}: config pinned to another revision, which stops applying to these pods: {}",
            c.namespace,
            pinned.join(", ")
        );
    }
}

fn warning_text(w: &RelabelWarning) -> String {
    match w {
        RelabelWarning::SkipsMinor { subject, from, to } => format!(
            "{subject}: {from} → {to} skips a minor version (allowed for canary upgrades; the guide moves one at a time)"
        ),
        RelabelWarning::RollingBack { subject, from, to } => format!(
            "{subject}: {from} → {to} rolls back to an older revision (the canary upgrade's way out; its pods move back once restarted)"
        ),
        RelabelWarning::NoEffect { subject, why } => format!(
            "{subject}: the new labels inject nothing there ({why}); its pods will run without a sidecar"
        ),
    }
}

/// A blocker's message and the command (or step) that clears it.
pub fn blocker_text(b: &RelabelBlocker) -> (String, String) {
    match b {
        RelabelBlocker::NotInstalled { target, installed } => (
            format!(
                "{target} is neither an installed revision nor a tag (installed: {})",
                if installed.is_empty() {
                    "none".into()
                } else {
                    installed.join(", ")
                }
            ),
            format!(
                "install istiod revision {target} first (upgrade guide step 2), or pick an installed one"
            ),
        ),
        RelabelBlocker::TagTargetMissing { tag, revision } => (
            format!("tag {tag} points at revision {revision}, which is not installed"),
            format!("kubectl rev-relabel --tag {tag} <installed revision>"),
        ),
        RelabelBlocker::TargetIsATag { target } => (
            format!("{target} is a tag; a tag points at a revision, not at another tag"),
            "name the revision the tag should point at".into(),
        ),
        RelabelBlocker::IstiodNotReady {
            namespace,
            name,
            ready,
            desired,
            ..
        } => (
            format!("{namespace}/{name} has no ready replica ({ready}/{desired})"),
            format!("kubectl -n {namespace} rollout status deployment/{name}"),
        ),
        RelabelBlocker::NoIstiod { revision } => (
            format!("revision {revision} has no istiod Deployment"),
            format!("install istiod revision {revision} (upgrade guide step 2)"),
        ),
        RelabelBlocker::NoInjector { revision } => (
            format!(
                "revision {revision} has no injector webhook: pods would start without sidecar"
            ),
            format!("check the istio-sidecar-injector-{revision} MutatingWebhookConfiguration"),
        ),
        RelabelBlocker::SkipTooLarge { subject, from, to } => (
            format!(
                "{subject}: {from} → {to} is more than the two minor versions a canary upgrade allows"
            ),
            "upgrade through the intermediate minor versions, one revision at a time".into(),
        ),
    }
}

/// Preflight results, the same for every relabel plan: warnings, then each blocker with its fix.
fn push_checks(out: &mut String, warnings: &[RelabelWarning], blockers: &[RelabelBlocker]) {
    for w in warnings {
        let _ = writeln!(out, "warning: {}", warning_text(w));
    }
    for b in blockers {
        let (message, fix) = blocker_text(b);
        let _ = writeln!(out, "blocked: {message}\n  fix: {fix}");
    }
}

pub fn question(plan: &RelabelPlan) -> String {
    match plan.target {
        Some(_) => format!("Relabel {} namespace(s)?", plan.changes.len()),
        None => format!(
            "Restore the recorded labels of {} namespace(s)?",
            plan.changes.len()
        ),
    }
}

pub fn plan_names(plan: &RelabelPlan) -> Vec<String> {
    plan.changes
        .iter()
        .map(|c| format!("namespace/{}", c.namespace))
        .collect()
}

/// What a relabel (or undo) run did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelabelReport {
    pub target: Option<String>,
    pub target_revision: Option<String>,
    pub changed: Vec<ChangeOutcome>,
    pub unchanged: Vec<String>,
}

pub fn render_report(report: &RelabelReport, dry_run: DryRun) -> String {
    let suffix = match dry_run {
        DryRun::Server => " (server dry run)",
        _ => "",
    };
    let mut out = String::new();
    for o in &report.changed {
        let verb = match o.result {
            ChangeResult::Restored => "restored",
            ChangeResult::Unchanged => "unchanged",
            ChangeResult::Relabelled | ChangeResult::ServerDryRun => "relabelled",
        };
        let _ = writeln!(out, "namespace/{} {verb}{suffix}", o.namespace);
    }
    for n in &report.unchanged {
        let _ = writeln!(out, "namespace/{n} unchanged");
    }
    out
}

pub fn report_names(report: &RelabelReport) -> Vec<String> {
    report
        .changed
        .iter()
        .filter(|o| o.result != ChangeResult::Unchanged)
        .map(|o| format!("namespace/{}", o.namespace))
        .collect()
}

/// After a real relabel, the restarts it calls for.
pub fn relabel_next_steps(report: &RelabelReport) -> Vec<String> {
    let moved: Vec<&str> = report
        .changed
        .iter()
        .filter(|o| matches!(o.result, ChangeResult::Relabelled | ChangeResult::Restored))
        .map(|o| o.namespace.as_str())
        .collect();
    if moved.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "restart the drifted workloads one at a time: kubectl rev-restart {}",
        moved.join(" ")
    )]
}

pub fn render_tag_plan(plan: &TagPlan) -> String {
    let mut out = format!(
        "Plan: repoint tag {} from {} to {} ({} takes the client configuration of {})\n",
        plan.tag, plan.from_revision, plan.to_revision, plan.webhook, plan.injector
    );
    if let Some((validator, source)) = &plan.validator {
        let _ = writeln!(out, "  and {validator} takes that of {source}");
    }
    if let Some((namespace, service)) = &plan.service {
        let _ = writeln!(
            out,
            "  and Service {namespace}/{service} selects istiod of {} (istiod's tag watcher reads both)",
            plan.to_revision
        );
    }
    if plan.unchanged {
        let _ = writeln!(
            out,
            "  tag {} already points at {}",
            plan.tag, plan.to_revision
        );
    } else if plan.namespaces.is_empty() {
        out.push_str("  no namespace selects this tag\n");
    } else {
        let _ = writeln!(
            out,
            "  namespaces that move with it: {} ({} pod(s) then need a restart: kubectl rev-restart {})",
            plan.namespaces.join(", "),
            plan.pods_to_restart,
            plan.namespaces.join(" ")
        );
    }
    push_checks(&mut out, &plan.warnings, &plan.blockers);
    out
}

pub fn tag_question(plan: &TagPlan) -> String {
    format!("Repoint tag {} to {}?", plan.tag, plan.to_revision)
}

/// What a tag retarget did: the objects replaced.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagReport {
    pub tag: String,
    pub target_revision: String,
    pub changed: Vec<String>,
}

pub fn tag_plan_names(plan: &TagPlan) -> Vec<String> {
    let webhooks = "admissionregistration.k8s.io/v1";
    let mut names = vec![super::object_name(
        webhooks,
        "MutatingWebhookConfiguration",
        &plan.webhook,
    )];
    if let Some((validator, _)) = &plan.validator {
        names.push(super::object_name(
            webhooks,
            "ValidatingWebhookConfiguration",
            validator,
        ));
    }
    if let Some((_, service)) = &plan.service {
        names.push(super::object_name("v1", "Service", service));
    }
    names
}

pub fn render_tag_report(report: &TagReport, dry_run: DryRun) -> String {
    let suffix = if dry_run == DryRun::Server {
        " (server dry run)"
    } else {
        ""
    };
    report
        .changed
        .iter()
        .map(|o| format!("{o} retargeted to {}{suffix}\n", report.target_revision))
        .collect()
}

pub fn tag_next_steps(plan: &TagPlan) -> Vec<String> {
    if plan.namespaces.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "restart the workloads of the namespaces that moved: kubectl rev-restart {}",
        plan.namespaces.join(" ")
    )]
}
