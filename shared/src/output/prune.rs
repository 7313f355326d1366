//! What `kubectl rev-prune` shows: the plan (with what was found live), the blockers with
//! their fixes, the report of what was done, and what remains of the mesh.

use std::fmt::Write;

use super::table;
use crate::analysis::Analysis;
use crate::exec::prune::{InspectedObject, Inspection, LiveState, PruneReport};
use crate::plan::prune::{
    AddressHolder, AddressSource, Blocker, BlockerReason, ObjectKey, OtherGateway, PruneBlocker,
    PrunePlan, PruneStep, PruneWarning, Selection, UninstallMethod,
};
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

pub const API_VERSION: &str = "prune.kubectl-rev.dev/v1alpha1";

/// The plan, step by step, in the order it runs.
pub fn render_plan(plan: &PrunePlan, inspection: Option<&Inspection>, no_headers: bool) -> String {
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
        let _ = writeln!(
            out,
            "\nNothing of {} is left to delete (installed revisions: {}).",
            plan.revision,
            if plan.installed.is_empty() {
                "none".to_string()
            } else {
                plan.installed.join(", ")
            }
        );
    }
    let mut objects = 0;
    for (i, step) in plan.steps.iter().enumerate() {
        let inspected = inspection.map(|ins| (ins.steps[i].as_slice(), ins.records[i].as_slice()));
        objects += render_step(&mut out, plan, i, step, inspected, no_headers);
    }
    if !plan.steps.is_empty() {
        let _ = writeln!(
            out,
            "\n{objects} object(s) and {} Helm release(s) to delete, in this order.",
            plan.releases().count()
        );
    }
    out.push_str(&render_addresses(plan, no_headers));
    for w in &plan.warnings {
        let _ = writeln!(out, "warning: {}", warning_text(w, plan));
    }
    out
}

/// Per gateway, the external addresses of its Services and whether each survives the prune:
/// clients and DNS records point at addresses, so this is what they will notice.
fn render_addresses(plan: &PrunePlan, no_headers: bool) -> String {
    if plan.addresses.is_empty() {
        return String::new();
    }
    let mut rows = Vec::new();
    for g in &plan.addresses {
        for s in &g.services {
            for a in &s.addresses {
                let after = match (s.deleted, a.survives) {
                    (false, _) => "stays".to_string(),
                    (true, true) => format!("stays: also held by {}", a.also_held_by.join(", ")),
                    (true, false) if plan.allow_address_change => {
                        "GOES (--allow-address-change)".to_string()
                    }
                    (true, false) => "GOES: no Service left holds it".to_string(),
                };
                rows.push(vec![
                    format!("{}/{}", g.namespace, g.gateway),
                    g.revision.clone().unwrap_or_else(|| "<none>".into()),
                    format!("{}{}", s.name, if s.deleted { " (deleted)" } else { "" }),
                    a.address.clone(),
                    match a.source {
                        AddressSource::LoadBalancer => "load balancer",
                        AddressSource::ExternalIp => "externalIPs",
                    }
                    .to_string(),
                    after,
                ]);
            }
        }
    }
    let headers = [
        "gateway",
        "revision",
        "service",
        "address",
        "from",
        "after the prune",
    ];
    format!(
        "\nExternal addresses (clients and DNS reach the mesh on these):\n{}",
        indent(&table(&headers, rows, no_headers), "   ")
    )
}

/// One step: its heading, a row per object (with what was found live), its release records.
/// Returns how many objects it deletes.
fn render_step(
    out: &mut String,
    plan: &PrunePlan,
    i: usize,
    step: &PruneStep,
    inspected: Option<(&[InspectedObject], &[String])>,
    no_headers: bool,
) -> usize {
    let mut deletes = 0;
    let mut rows = Vec::new();
    for (j, key) in step.objects().iter().enumerate() {
        let found = inspected.and_then(|(objects, _)| objects.get(j));
        let (verb, note) = action(found.map(|o| &o.state));
        deletes += usize::from(verb == "delete");
        let shown = found.map(|o| &o.key).unwrap_or(key);
        // A blank, not `<none>`: most rows have no note.
        let note = if note.is_empty() { " ".into() } else { note };
        rows.push(object_row(verb, shown, note));
    }
    match step {
        PruneStep::HelmRelease(r) => {
            let how = match &r.method {
                UninstallMethod::Native => {
                    "uninstalled natively in Helm 4's order (webhook configurations first: none outlives its istiod)".to_string()
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
            rows.extend(
                r.kept.iter().map(|k| {
                    object_row("keep", k, "helm.sh/resource-policy: Helm leaves it".into())
                }),
            );
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
    let headers = ["action", "kind", "namespace", "name", "note"];
    out.push_str(&indent(&table(&headers, rows, no_headers), "   "));
    if let PruneStep::HelmRelease(r) = step {
        let records = inspected
            .map(|(_, records)| records.join(", "))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| format!("sh.helm.release.v1.{}.v*", r.name));
        let _ = writeln!(
            out,
            "   then delete its release records ({records}): `helm ls` stops listing it"
        );
    }
    deletes
}

fn object_row(verb: &str, key: &ObjectKey, note: String) -> Vec<String> {
    vec![
        verb.to_string(),
        key.kind.clone(),
        key.namespace.clone().unwrap_or_default(),
        key.name.clone(),
        note,
    ]
}

fn warning_text(w: &PruneWarning, plan: &PrunePlan) -> String {
    let old = &plan.revision;
    match w {
        PruneWarning::AmbiguousRelease {
            namespace,
            release,
            revisions,
        } => format!(
            "Helm release {namespace}/{release} carries istio.io/rev {} and no `revision` value: not proven to be {old}'s, left alone",
            revisions.join(", ")
        ),
        PruneWarning::UnidentifiedProxies { namespace, pods } => format!(
            "{pods} pod(s) in {namespace} run a proxy whose revision cannot be told (image tag only): check they are not on {old}"
        ),
    }
}

/// The revision the fixes point at.
fn next(plan: &PrunePlan) -> &str {
    plan.successor.as_deref().unwrap_or("<new revision>")
}

/// A blocker's message and the command (or step) that clears it.
pub fn blocker_text(b: &PruneBlocker, plan: &PrunePlan) -> (String, String) {
    let (old, next) = (plan.revision.as_str(), next(plan));
    match &b.blocker {
        Blocker::NamespaceSelectsRevision {
            namespace,
            selection,
        } => namespace_text(namespace, selection, old, next),
        Blocker::WorkloadSelectsRevision { kind, namespace, name } => (
            format!("its pod template selects istio.io/rev={old}: new pods would start without sidecar"),
            format!(
                "set istio.io/rev={next} in its pod template (kubectl -n {namespace} edit {} {name})",
                kind.resource()
            ),
        ),
        Blocker::PodsRunRevision { namespace, pods } => pods_text(namespace, pods, old),
        Blocker::TagPointsAtRevision { tag, webhook } => (
            format!("revision tag {tag} ({webhook}) points at {old}: namespaces using it would lose injection"),
            format!("kubectl rev-relabel --tag {tag} {next}   (or: istioctl tag set {tag} --revision {next} --overwrite)"),
        ),
        Blocker::DefaultValidatorPointsAtRevision { validator, base_release } => (
            format!("{validator} calls {old}'s istiod: once it is gone every apply of Istio config fails"),
            match base_release {
                Some((namespace, name)) => format!(
                    "helm upgrade {name} <istio base chart> -n {namespace} --reuse-values --set defaultRevision={next}"
                ),
                None => format!("istioctl tag set default --revision {next} --overwrite"),
            },
        ),
        Blocker::GatewayStillServing {
            namespace,
            name,
            addresses,
            others,
        } => gateway_text(namespace, name, addresses, others, next),
        Blocker::AddressWouldDisappear {
            namespace,
            service,
            addresses,
            successors,
        } => address_text(namespace, service, addresses, successors, old, next),
        Blocker::OnlyRevision => (
            format!("{old} is the only installed revision: pruning it removes the mesh's control plane"),
            "install the new revision first (upgrade guide step 2), or use `istioctl uninstall --purge` to remove Istio".into(),
        ),
        Blocker::HelmOperationPending { namespace, release, status } => (
            format!("is {status}: a Helm operation may still be running"),
            format!("wait for it, or `helm rollback {release} -n {namespace}`; then re-run"),
        ),
        Blocker::CannotVerify { verb, resource, message } => (
            format!("cannot {verb} {resource} ({message}): whether {old} is still used cannot be checked"),
            format!("kubectl auth can-i {verb} {resource}   (run as someone who can)"),
        ),
        Blocker::DeleteHooksNeedHelm { namespace, release, hooks } => (
            format!("has delete hooks ({}) that only Helm runs, and no `helm` is on PATH", hooks.join("; ")),
            format!("helm uninstall {release} -n {namespace}   (then re-run kubectl rev-prune {old})"),
        ),
        Blocker::UnreadableRelease { namespace, release, why } => (
            format!("its manifest cannot be read ({why}), so its objects are unknown"),
            format!("helm uninstall {release} -n {namespace}"),
        ),
        Blocker::ConfigPinnedToRevision { resource, kind, namespace, name, label } => {
            config_pinned_text(resource, kind, namespace, name, label, old, next)
        }
        Blocker::GatewayApiGatewayOnRevision { namespace, gateway, deployment, pods } => {
            gateway_api_text(namespace, gateway, deployment, pods.len(), old, next)
        }
        Blocker::ZtunnelUsesRevision { namespace, release, chart_version } => (
            format!("ztunnel's revision value is {old}: it gets its certificates and config from {old}'s istiod"),
            format!(
                "helm upgrade {release} istio/ztunnel -n {namespace} --version {chart_version} --reuse-values --set revision={next}"
            ),
        ),
        Blocker::ZtunnelDaemonSetUsesRevision { namespace, name } => (
            format!("ztunnel ({namespace}/{name}, outside Helm) is on revision {old}: it gets its certificates and config from {old}'s istiod"),
            format!(
                "re-run the install that made it with revision {next} (istioctl: `istioctl install -f <your IstioOperator> --set revision={next}`); ztunnel is upgraded in place, then prune {old}"
            ),
        ),
    }
}

fn config_pinned_text(
    resource: &str,
    kind: &str,
    namespace: &str,
    name: &str,
    label: &str,
    old: &str,
    next: &str,
) -> (String, String) {
    let message = if label == old {
        let lost = match kind {
            "AuthorizationPolicy" => "its rules (a DENY too) stop being enforced",
            "PeerAuthentication" => "its mTLS mode (STRICT too) stops being enforced",
            _ => "it stops applying",
        };
        format!(
            "{kind} labelled istio.io/rev={old}: once {old} is gone no istiod loads it, so {lost}"
        )
    } else {
        format!(
            "{kind} labelled istio.io/rev={label}, which points at {old}: once {old} is gone no istiod controls it"
        )
    };
    let fix =
        format!("kubectl label {resource} {name} -n {namespace} istio.io/rev={next} --overwrite");
    (message, fix)
}

fn gateway_api_text(
    namespace: &str,
    gateway: &str,
    deployment: &str,
    pods: usize,
    old: &str,
    next: &str,
) -> (String, String) {
    (
        format!(
            "Gateway API gateway {gateway} is rendered by {old}'s istiod ({deployment}: {pods} pod(s)): once {old} is gone nothing manages it; a restart would not move it"
        ),
        format!(
            "kubectl label gateway.{} {gateway} -n {namespace} istio.io/rev={next} --overwrite   ({next}'s istiod re-renders it)",
            crate::keys::GATEWAY_API_GROUP
        ),
    )
}

fn namespace_text(
    namespace: &str,
    selection: &Selection,
    old: &str,
    next: &str,
) -> (String, String) {
    match selection {
        Selection::LegacyLabel => (
            format!("istio-injection=enabled: the default revision ({old}) injects its new pods"),
            format!("move the default tag first: kubectl rev-relabel --tag default {next}"),
        ),
        Selection::Tag { tag } => (
            format!(
                "istio.io/rev={tag}, and tag {tag} points at {old}: new pods would start without sidecar"
            ),
            format!(
                "kubectl rev-relabel --tag {tag} {next}   (or relabel: kubectl label namespace {namespace} istio.io/rev={next} --overwrite)"
            ),
        ),
        Selection::RevisionLabel => (
            format!("istio.io/rev={old}: new pods would start without sidecar once {old} is gone"),
            format!(
                "kubectl rev-relabel {namespace} {next}   (or: kubectl label namespace {namespace} istio.io/rev={next} --overwrite)"
            ),
        ),
    }
}

fn pods_text(namespace: &str, pods: &[String], old: &str) -> (String, String) {
    let shown: Vec<&str> = pods.iter().take(5).map(String::as_str).collect();
    let more = pods.len().saturating_sub(shown.len());
    (
        format!(
            "{} pod(s) still run {old} sidecars: {}{}",
            pods.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ),
        format!(
            "kubectl rev-restart -n {namespace} --gateways   (or kubectl rollout restart each workload)"
        ),
    )
}

fn gateway_text(
    namespace: &str,
    name: &str,
    addresses: &[String],
    others: &[OtherGateway],
    next: &str,
) -> (String, String) {
    let successors = if others.is_empty() {
        format!("no gateway of another revision exists in {namespace}")
    } else {
        others
            .iter()
            .map(|o| {
                format!(
                    "{} ({}) has no load-balancer address",
                    o.name,
                    o.revision.as_deref().unwrap_or("no revision")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    (
        format!(
            "{name} still has load-balancer address {} and {successors}: deleting it cuts that traffic",
            addresses.join(",")
        ),
        format!(
            "install the {next} gateway (upgrade guide step 3) and wait for its Service address: kubectl get svc -n {namespace}"
        ),
    )
}

fn address_text(
    namespace: &str,
    service: &str,
    addresses: &[String],
    successors: &[AddressHolder],
    old: &str,
    next: &str,
) -> (String, String) {
    let going = addresses.join(", ");
    let rerun = format!("kubectl rev-prune {old} --allow-address-change");
    let new_address = successors
        .iter()
        .find(|s| s.revision.as_deref() == Some(next))
        .or_else(|| successors.first());
    match new_address {
        Some(new) => (
            format!(
                "deleting {service} removes address {going}, which no Service left holds: clients and DNS records still pointing there lose the mesh; gateway {} ({}) has {}",
                new.gateway,
                new.revision.as_deref().unwrap_or("no revision"),
                new.addresses.join(", ")
            ),
            format!(
                "point DNS and clients at {}, check it serves (kubectl rev-probe --gateway {namespace}/{} --duration 30s --max-error-rate 0); then re-run: {rerun}",
                new.addresses.join(", "),
                new.gateway
            ),
        ),
        None => (
            format!(
                "deleting {service} removes address {going}, which no Service left holds, and no other gateway in {namespace} has an address: clients lose the mesh"
            ),
            format!(
                "install the {next} gateway (upgrade guide step 3), wait for its address (kubectl get svc -n {namespace}), point DNS and clients at it, check it serves (kubectl rev-probe --gateway {namespace}/<new gateway>); then re-run: {rerun}"
            ),
        ),
    }
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
        let (message, fix) = blocker_text(b, plan);
        let _ = writeln!(out, "  - {}: {message}", b.subject);
        let _ = writeln!(
            out,
            "      fix: {fix}{}",
            match (b.forceable, b.reason()) {
                (true, _) => "",
                (false, BlockerReason::AddressWouldDisappear) => {
                    "   (--force does not override this: --allow-address-change does, and only this)"
                }
                (false, _) => "   (--force cannot override this)",
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
    let touched = !(report.deleted.is_empty()
        && report.already_gone.is_empty()
        && report.left_alone.is_empty()
        && report.releases_uninstalled.is_empty()
        && report.not_done.is_empty());
    if !touched {
        if report.gone {
            let _ = writeln!(out, "\nRevision {} is gone.", report.revision);
        }
        return out;
    }
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
    if !report.not_done.is_empty() {
        let _ = writeln!(
            out,
            "Deleted before the failure: {}",
            list_or_none(&report.deleted)
        );
        let _ = writeln!(out, "NOT deleted: {}", list_or_none(&report.not_done));
    }
    if let Some(mesh) = &report.mesh_after {
        out.push_str(mesh);
    }
    if report.gone {
        let _ = writeln!(out, "\nRevision {} is gone.", report.revision);
    }
    out
}

pub fn question(plan: &PrunePlan, inspection: Option<&Inspection>) -> String {
    let objects = inspection
        .map(Inspection::to_delete)
        .unwrap_or_else(|| plan.objects().count());
    format!(
        "Delete {objects} object(s) and {} Helm release(s) of revision {}?",
        plan.releases().count(),
        plan.revision
    )
}

/// `kind/namespace/name` of every object the plan deletes.
pub fn plan_names(plan: &PrunePlan) -> Vec<String> {
    plan.objects()
        .map(|o| super::object_name(&o.api_version, &o.kind, &o.name))
        .collect()
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
