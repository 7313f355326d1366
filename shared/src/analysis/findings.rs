//! Findings: problems an upgrade must not carry forward, each with a stable code, a severity
//! and a one-line fix. The codes are part of the JSON interface: never renumber or reuse them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::injection::InjectionMode;
use super::{Analysis, RestartExclusion, SidecarRevision};
use crate::revision::{IstioVersion, minor_distance};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    /// The namespace it concerns, for namespaced subjects (scoping with -n/-l keeps these).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What it is about: `namespace/bookinfo`, `tag/prod`, `deployment/bookinfo/reviews-v1`.
    pub subject: String,
    pub message: String,
    pub hint: String,
}

/// Every code, with its severity and meaning, for the documentation and the tests.
pub const CODES: &[(&str, Severity, &str)] = &[
    (
        "legacy-label-overrides-rev",
        Severity::Warning,
        "namespace has both istio-injection and istio.io/rev; the legacy label wins",
    ),
    (
        "target-has-no-injector",
        Severity::Error,
        "namespace selects a revision or tag with no injector: new pods start without sidecar",
    ),
    (
        "sidecar-revision-not-installed",
        Severity::Error,
        "pods run sidecars of a revision that is no longer installed",
    ),
    (
        "workload-drifted",
        Severity::Warning,
        "workload's pods run another revision than their namespace selects: restart it",
    ),
    (
        "gateway-drifted",
        Severity::Warning,
        "gateway installed without a revision runs another revision than the default injects: restart it (upgraded in place)",
    ),
    (
        "tag-service-disagrees",
        Severity::Error,
        "a revision tag's webhooks and its Service istiod-revision-tag-<tag> point at different revisions (or the Service has no webhooks)",
    ),
    (
        "tag-target-missing",
        Severity::Error,
        "revision tag points at a revision that is not installed",
    ),
    (
        "default-validator-target-missing",
        Severity::Error,
        "istiod-default-validator points at a revision that is not installed: Istio config applies fail",
    ),
    (
        "pod-rev-label-ignored",
        Severity::Warning,
        "pod-level istio.io/rev is ignored because the namespace is labelled",
    ),
    (
        "config-pinned-to-departing-revision",
        Severity::Warning,
        "config pinned to a revision its namespace is leaving (or no namespace uses) stops applying",
    ),
    (
        "config-pinned-to-tag",
        Severity::Error,
        "Istio config labelled istio.io/rev=<tag>: istiod resolves no tags for config, so no istiod applies it",
    ),
    (
        "revision-skew",
        Severity::Warning,
        "installed revisions are more minor versions apart than the upgrade policy allows",
    ),
    (
        "injector-without-istiod",
        Severity::Error,
        "injector webhook whose istiod is missing: injection fails for its pods",
    ),
    (
        "istiod-not-ready",
        Severity::Error,
        "istiod has no ready replica: injection and config for its revision fail",
    ),
    (
        "analysis-disagrees-with-admission",
        Severity::Error,
        "a dry-run create of the workload's pod template (the cluster's real admission chain) gives another sidecar than the analysis expects",
    ),
];

pub(super) fn finding(
    code: &'static str,
    severity: Severity,
    subject: String,
    message: String,
    hint: String,
) -> Finding {
    // Subjects are `kind/name` or `kind/namespace/name`; `namespace/<ns>` names one itself.
    let parts: Vec<&str> = subject.split('/').collect();
    let namespace = match parts.as_slice() {
        ["namespace", ns] => Some(ns.to_string()),
        [_, ns, _] => Some(ns.to_string()),
        _ => None,
    };
    Finding {
        code,
        severity,
        namespace,
        subject,
        message,
        hint,
    }
}

pub fn findings(analysis: &Analysis) -> Vec<Finding> {
    let cp = &analysis.control_plane;
    let mut out = Vec::new();

    for ns in &analysis.namespaces {
        if ns.injection_label.as_deref() == Some("enabled") && ns.rev_label.is_some() {
            out.push(finding(
                "legacy-label-overrides-rev",
                Severity::Warning,
                format!("namespace/{}", ns.name),
                format!(
                    "istio-injection=enabled overrides istio.io/rev={}: the default revision ({}) injects",
                    ns.rev_label.as_deref().unwrap_or_default(),
                    ns.effective.revision.as_deref().unwrap_or("none"),
                ),
                format!("kubectl label namespace {} istio-injection-", ns.name),
            ));
        }
        if ns.effective.is_unresolved()
            && matches!(
                ns.effective.mode,
                InjectionMode::LegacyLabel | InjectionMode::RevisionLabel
            )
        {
            let selector = ns.effective.selector.clone().unwrap_or_default();
            out.push(finding(
                "target-has-no-injector",
                Severity::Error,
                format!("namespace/{}", ns.name),
                format!("selects {selector:?}, which no installed revision or tag injects: new pods start without sidecar"),
                format!("kubectl rev-relabel {} <installed revision>", ns.name),
            ));
        }
    }

    let mut orphaned: BTreeMap<(String, String), usize> = BTreeMap::new();
    for pod in &analysis.pods {
        if let SidecarRevision::Revision(rev) = &pod.sidecar
            && cp.revision(rev).is_none()
        {
            *orphaned
                .entry((pod.namespace.clone(), rev.clone()))
                .or_insert(0) += 1;
        }
    }
    for ((ns, rev), count) in orphaned {
        out.push(finding(
            "sidecar-revision-not-installed",
            Severity::Error,
            format!("namespace/{ns}"),
            format!("{count} pod(s) run sidecars of revision {rev}, which is not installed"),
            format!("kubectl rev-restart -n {ns}"),
        ));
    }

    for w in analysis
        .workloads
        .iter()
        .filter(|w| w.is_drifted() && w.exclusion.is_none())
    {
        out.push(finding(
            "workload-drifted",
            Severity::Warning,
            format!("{}/{}/{}", w.kind.resource(), w.namespace, w.name),
            format!(
                "{} of {} pod(s) not on {}",
                w.drifted_pods,
                w.pods,
                w.expected.as_deref().unwrap_or("<none>")
            ),
            format!("kubectl rev-restart -n {} --kind {} -l <selector> (or all: kubectl rev-restart -n {})", w.namespace, w.kind.resource(), w.namespace),
        ));
    }

    // Gateways installed without a revision follow the default: a restart is their upgrade.
    for w in analysis
        .workloads
        .iter()
        .filter(|w| w.is_drifted() && w.exclusion == Some(RestartExclusion::RevisionlessGateway))
    {
        out.push(finding(
            "gateway-drifted",
            Severity::Warning,
            format!("{}/{}/{}", w.kind.resource(), w.namespace, w.name),
            format!(
                "gateway installed without a revision: {} of {} pod(s) not on {}",
                w.drifted_pods,
                w.pods,
                w.expected.as_deref().unwrap_or("<none>")
            ),
            format!("kubectl rev-restart {} --gateways", w.namespace),
        ));
    }

    // istiod's tag watcher reads the tag's webhooks and its Service (Istio >= 1.28, DOMAIN §1).
    for tag in &cp.tags {
        if let Some(service) = tag.service.as_ref().filter(|s| s.revision != tag.revision) {
            out.push(finding(
                "tag-service-disagrees",
                Severity::Error,
                format!("tag/{}", tag.name),
                format!(
                    "tag {}: its webhooks ({}) point at {}, its Service {}/{} at {}",
                    tag.name,
                    tag.webhook,
                    tag.revision,
                    service.namespace,
                    service.name,
                    service.revision
                ),
                format!(
                    "kubectl rev-relabel --tag {} <revision>   (moves both)",
                    tag.name
                ),
            ));
        }
    }
    for service in &cp.tag_services_without_webhook {
        out.push(finding(
            "tag-service-disagrees",
            Severity::Error,
            format!("tag/{}", service.tag),
            format!(
                "Service {}/{} names tag {} (at {}), which has no webhook configuration",
                service.namespace, service.name, service.tag, service.revision
            ),
            format!(
                "istioctl tag set {} --revision {} (or delete the Service: kubectl delete service {} -n {})",
                service.tag, service.revision, service.name, service.namespace
            ),
        ));
    }

    for tag in cp.tags.iter().filter(|t| !t.revision_installed) {
        out.push(finding(
            "tag-target-missing",
            Severity::Error,
            format!("tag/{}", tag.name),
            format!(
                "tag {} points at revision {}, which is not installed",
                tag.name, tag.revision
            ),
            format!(
                "kubectl rev-relabel --tag {} <installed revision>",
                tag.name
            ),
        ));
    }

    if let Some(v) = &cp.default_validator
        && !v.revision_installed
    {
        out.push(finding(
            "default-validator-target-missing",
            Severity::Error,
            format!("validatingwebhookconfiguration/{}", v.name),
            format!(
                "points at revision {}, which is not installed: every apply of Istio config fails",
                v.revision.as_deref().unwrap_or("<unknown>")
            ),
            "kubectl rev-relabel --tag default <installed revision>".into(),
        ));
    }

    let mut ignored: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for pod in &analysis.pods {
        if let Some(label) = &pod.ignored_rev_label {
            ignored
                .entry(pod.namespace.as_str())
                .or_default()
                .insert(label);
        }
    }
    for (ns, labels) in ignored {
        out.push(finding(
            "pod-rev-label-ignored",
            Severity::Warning,
            format!("namespace/{ns}"),
            format!(
                "pod label istio.io/rev={} is ignored: the namespace label decides",
                labels.into_iter().collect::<Vec<_>>().join(",")
            ),
            "remove the pod-level label, or the namespace label if pods should choose".into(),
        ));
    }

    let targeted: BTreeSet<&str> = analysis
        .namespaces
        .iter()
        .filter_map(|n| n.effective.revision.as_deref())
        .collect();
    let namespace_revision: BTreeMap<&str, Option<&str>> = analysis
        .namespaces
        .iter()
        .map(|n| (n.name.as_str(), n.effective.revision.as_deref()))
        .collect();
    for c in &analysis.pinned_config {
        let ns_revision = namespace_revision
            .get(c.namespace.as_str())
            .copied()
            .flatten();
        if c.pinned_to_tag(cp) {
            out.push(finding(
                "config-pinned-to-tag",
                Severity::Error,
                format!("{}/{}/{}", c.kubectl_resource(), c.namespace, c.name),
                format!(
                    "labelled istio.io/rev={} (a tag): no istiod loads it, so it is not enforced",
                    c.revision
                ),
                format!(
                    "kubectl label {} {} -n {} istio.io/rev={} --overwrite   (the revision the tag points at)",
                    c.kubectl_resource(),
                    c.name,
                    c.namespace,
                    cp.resolve(&c.revision).revision().unwrap_or("<revision>")
                ),
            ));
            continue;
        }
        let pinned = c.pinned_revision.as_deref().unwrap_or(&c.revision);
        let departing = match ns_revision {
            Some(now) => now != pinned,
            // Root-namespace config applies mesh-wide: departing once no namespace uses it.
            None => !targeted.contains(pinned),
        };
        if departing || !c.revision_installed {
            out.push(finding(
                "config-pinned-to-departing-revision",
                Severity::Warning,
                format!("{}/{}/{}", c.kind.to_ascii_lowercase(), c.namespace, c.name),
                format!(
                    "pinned to istio.io/rev={} but {}",
                    c.revision,
                    match ns_revision {
                        Some(now) => format!("namespace {} is on {now}", c.namespace),
                        None => "no namespace selects that revision".into(),
                    }
                ),
                format!(
                    "create a copy labelled for the new revision before moving workloads ({})",
                    c.name
                ),
            ));
        }
    }

    let versions: Vec<(&str, IstioVersion)> = cp
        .revisions
        .iter()
        .filter_map(|r| Some((r.name.as_str(), IstioVersion::parse(r.version.as_deref()?)?)))
        .collect();
    for (i, (a, va)) in versions.iter().enumerate() {
        for (b, vb) in &versions[i + 1..] {
            let Some(distance) = minor_distance((va.major, va.minor), (vb.major, vb.minor)) else {
                continue;
            };
            if distance >= 2 {
                out.push(finding(
                    "revision-skew",
                    if distance > 2 { Severity::Error } else { Severity::Warning },
                    format!("revision/{a}"),
                    format!("{a} ({va}) and {b} ({vb}) are {distance} minor versions apart"),
                    "upgrade one minor version at a time (the guide's rule; two at most for canaries)".into(),
                ));
            }
        }
    }

    for rev in &cp.revisions {
        if !rev.injector_webhooks.is_empty() && rev.istiod.is_none() {
            out.push(finding(
                "injector-without-istiod",
                Severity::Error,
                format!("revision/{}", rev.name),
                format!(
                    "injector webhook(s) {} call an istiod that is not running",
                    rev.injector_webhooks.join(", ")
                ),
                format!(
                    "reinstall istiod-{} or remove its webhook (kubectl rev-prune {})",
                    rev.name, rev.name
                ),
            ));
        }
        if let Some(istiod) = &rev.istiod
            && istiod.ready == 0
            && istiod.desired > 0
        {
            out.push(finding(
                "istiod-not-ready",
                Severity::Error,
                format!("revision/{}", rev.name),
                format!(
                    "{}/{} has 0 of {} replicas ready",
                    istiod.namespace, istiod.name, istiod.desired
                ),
                format!(
                    "kubectl -n {} describe deployment {}",
                    istiod.namespace, istiod.name
                ),
            ));
        }
    }

    sort(&mut out);
    out
}

/// Worst first, then by code and subject: the order every report shows.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.code.cmp(b.code))
            .then(a.subject.cmp(&b.subject))
    });
}
