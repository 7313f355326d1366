//! Findings: problems an upgrade must not carry forward, each with a stable code, a severity
//! and a one-line fix. The codes are part of the JSON interface: never renumber or reuse them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Serialize, Serializer};

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

/// What a finding is about. Its string is the stable code `-o json` prints and `--fail-on`
/// users script against; the README's table is tested against [`FindingCode::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingCode {
    LegacyLabelOverridesRev,
    TargetHasNoInjector,
    SidecarRevisionNotInstalled,
    WorkloadDrifted,
    GatewayDrifted,
    TagServiceDisagrees,
    TagTargetMissing,
    DefaultValidatorTargetMissing,
    PodRevLabelIgnored,
    ConfigPinnedToDepartingRevision,
    ConfigPinnedToTag,
    RevisionSkew,
    InjectorWithoutIstiod,
    IstiodNotReady,
    AnalysisDisagreesWithAdmission,
}

/// One code's row: its string, the severities it can have (the default first), its meaning.
struct CodeSpec {
    finding: FindingCode,
    code: &'static str,
    severities: &'static [Severity],
    meaning: &'static str,
}

const WARNING: &[Severity] = &[Severity::Warning];
const ERROR: &[Severity] = &[Severity::Error];
const WARNING_OR_ERROR: &[Severity] = &[Severity::Warning, Severity::Error];

/// Every code's row, in [`FindingCode::ALL`]'s order (a test holds them together).
const SPECS: &[CodeSpec] = &[
    CodeSpec {
        finding: FindingCode::LegacyLabelOverridesRev,
        code: "legacy-label-overrides-rev",
        severities: WARNING,
        meaning: "namespace has both istio-injection and istio.io/rev; the legacy label wins",
    },
    CodeSpec {
        finding: FindingCode::TargetHasNoInjector,
        code: "target-has-no-injector",
        severities: ERROR,
        meaning: "namespace selects a revision or tag with no injector: new pods start without sidecar",
    },
    CodeSpec {
        finding: FindingCode::SidecarRevisionNotInstalled,
        code: "sidecar-revision-not-installed",
        severities: ERROR,
        meaning: "pods run sidecars of a revision that is no longer installed",
    },
    CodeSpec {
        finding: FindingCode::WorkloadDrifted,
        code: "workload-drifted",
        severities: WARNING,
        meaning: "workload's pods run another revision than their namespace selects: restart it",
    },
    CodeSpec {
        finding: FindingCode::GatewayDrifted,
        code: "gateway-drifted",
        severities: WARNING,
        meaning: "gateway installed without a revision runs another revision than the default injects: restart it (upgraded in place)",
    },
    CodeSpec {
        finding: FindingCode::TagServiceDisagrees,
        code: "tag-service-disagrees",
        severities: ERROR,
        meaning: "a revision tag's webhooks and its Service istiod-revision-tag-<tag> point at different revisions (or the Service has no webhooks)",
    },
    CodeSpec {
        finding: FindingCode::TagTargetMissing,
        code: "tag-target-missing",
        severities: ERROR,
        meaning: "revision tag points at a revision that is not installed",
    },
    CodeSpec {
        finding: FindingCode::DefaultValidatorTargetMissing,
        code: "default-validator-target-missing",
        severities: ERROR,
        meaning: "istiod-default-validator points at a revision that is not installed: Istio config applies fail",
    },
    CodeSpec {
        finding: FindingCode::PodRevLabelIgnored,
        code: "pod-rev-label-ignored",
        severities: WARNING,
        meaning: "pod-level istio.io/rev is ignored because the namespace is labelled",
    },
    CodeSpec {
        finding: FindingCode::ConfigPinnedToDepartingRevision,
        code: "config-pinned-to-departing-revision",
        severities: WARNING,
        meaning: "config pinned to a revision its namespace is leaving (or no namespace uses) stops applying",
    },
    CodeSpec {
        finding: FindingCode::ConfigPinnedToTag,
        code: "config-pinned-to-tag",
        severities: ERROR,
        meaning: "Istio config labelled istio.io/rev=<tag>: istiod resolves no tags for config, so no istiod applies it",
    },
    // DOMAIN §5: two minor versions apart warns, more is beyond what canaries support.
    CodeSpec {
        finding: FindingCode::RevisionSkew,
        code: "revision-skew",
        severities: WARNING_OR_ERROR,
        meaning: "installed revisions are two minor versions apart (warning) or more (error); the guide upgrades one at a time",
    },
    CodeSpec {
        finding: FindingCode::InjectorWithoutIstiod,
        code: "injector-without-istiod",
        severities: ERROR,
        meaning: "injector webhook whose istiod is missing: injection fails for its pods",
    },
    CodeSpec {
        finding: FindingCode::IstiodNotReady,
        code: "istiod-not-ready",
        severities: ERROR,
        meaning: "istiod has no ready replica: injection and config for its revision fail",
    },
    CodeSpec {
        finding: FindingCode::AnalysisDisagreesWithAdmission,
        code: "analysis-disagrees-with-admission",
        severities: ERROR,
        meaning: "a dry-run create of the workload's pod template (the cluster's real admission chain) gives another sidecar than the analysis expects",
    },
];

impl FindingCode {
    pub const ALL: &'static [FindingCode] = &[
        FindingCode::LegacyLabelOverridesRev,
        FindingCode::TargetHasNoInjector,
        FindingCode::SidecarRevisionNotInstalled,
        FindingCode::WorkloadDrifted,
        FindingCode::GatewayDrifted,
        FindingCode::TagServiceDisagrees,
        FindingCode::TagTargetMissing,
        FindingCode::DefaultValidatorTargetMissing,
        FindingCode::PodRevLabelIgnored,
        FindingCode::ConfigPinnedToDepartingRevision,
        FindingCode::ConfigPinnedToTag,
        FindingCode::RevisionSkew,
        FindingCode::InjectorWithoutIstiod,
        FindingCode::IstiodNotReady,
        FindingCode::AnalysisDisagreesWithAdmission,
    ];

    fn spec(self) -> &'static CodeSpec {
        // In declaration order, so the discriminant is the row.
        let row = &SPECS[self as usize];
        debug_assert_eq!(row.finding, self, "SPECS is out of FindingCode's order");
        row
    }

    /// The stable code, as `-o json` and the tables print it.
    pub fn as_str(self) -> &'static str {
        self.spec().code
    }

    /// The severity a finding of this code has unless it says otherwise.
    pub fn severity(self) -> Severity {
        self.spec().severities[0]
    }

    /// Every severity a finding of this code can have, the default first.
    pub fn severities(self) -> &'static [Severity] {
        self.spec().severities
    }

    /// One line on what it means, for the documentation.
    pub fn meaning(self) -> &'static str {
        self.spec().meaning
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FindingCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Scripts and tests compare codes with their strings.
impl PartialEq<&str> for FindingCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for FindingCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    /// The namespace it concerns, for namespaced subjects (scoping with -n/-l keeps these).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What it is about: `namespace/bookinfo`, `tag/prod`, `deployment/bookinfo/reviews-v1`.
    pub subject: String,
    pub message: String,
    pub hint: String,
}

/// A finding with its code's default severity.
pub(super) fn finding(
    code: FindingCode,
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
        severity: code.severity(),
        namespace,
        subject,
        message,
        hint,
    }
}

/// Every finding of the analysis, worst first.
pub fn findings(analysis: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    namespace_label_findings(analysis, &mut out);
    orphaned_sidecar_findings(analysis, &mut out);
    drift_findings(analysis, &mut out);
    tag_findings(analysis, &mut out);
    default_validator_findings(analysis, &mut out);
    ignored_pod_label_findings(analysis, &mut out);
    pinned_config_findings(analysis, &mut out);
    revision_skew_findings(analysis, &mut out);
    control_plane_health_findings(analysis, &mut out);
    sort(&mut out);
    out
}

/// Namespace labels that do not do what they say: the legacy label winning, or no injector.
fn namespace_label_findings(analysis: &Analysis, out: &mut Vec<Finding>) {
    for ns in &analysis.namespaces {
        if ns.injection_label.as_deref() == Some("enabled") && ns.rev_label.is_some() {
            out.push(finding(
                FindingCode::LegacyLabelOverridesRev,
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
                FindingCode::TargetHasNoInjector,
                format!("namespace/{}", ns.name),
                format!("selects {selector:?}, which no installed revision or tag injects: new pods start without sidecar"),
                format!("kubectl rev-relabel {} <installed revision>", ns.name),
            ));
        }
    }
}

/// Pods whose sidecar revision is gone, counted per namespace and revision.
fn orphaned_sidecar_findings(analysis: &Analysis, out: &mut Vec<Finding>) {
    let cp = &analysis.control_plane;
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
            FindingCode::SidecarRevisionNotInstalled,
            format!("namespace/{ns}"),
            format!("{count} pod(s) run sidecars of revision {rev}, which is not installed"),
            format!("kubectl rev-restart -n {ns}"),
        ));
    }
}

/// Workloads, and gateways installed without a revision, whose pods are not on their revision.
fn drift_findings(analysis: &Analysis, out: &mut Vec<Finding>) {
    for w in analysis
        .workloads
        .iter()
        .filter(|w| w.is_drifted() && w.exclusion.is_none())
    {
        out.push(finding(
            FindingCode::WorkloadDrifted,
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
            FindingCode::GatewayDrifted,
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
}

/// Revision tags: webhooks and Service that disagree, or a target that is not installed.
fn tag_findings(analysis: &Analysis, out: &mut Vec<Finding>) {
    let cp = &analysis.control_plane;
    // istiod's tag watcher reads the tag's webhooks and its Service (Istio >= 1.28, DOMAIN §1).
    for tag in &cp.tags {
        if let Some(service) = tag.service.as_ref().filter(|s| s.revision != tag.revision) {
            out.push(finding(
                FindingCode::TagServiceDisagrees,
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
            FindingCode::TagServiceDisagrees,
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
            FindingCode::TagTargetMissing,
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
}

/// The default validator pointing at a revision that is gone: every config apply fails.
fn default_validator_findings(analysis: &Analysis, out: &mut Vec<Finding>) {
    if let Some(v) = &analysis.control_plane.default_validator
        && !v.revision_installed
    {
        out.push(finding(
            FindingCode::DefaultValidatorTargetMissing,
            format!("validatingwebhookconfiguration/{}", v.name),
            format!(
                "points at revision {}, which is not installed: every apply of Istio config fails",
                v.revision.as_deref().unwrap_or("<unknown>")
            ),
            "kubectl rev-relabel --tag default <installed revision>".into(),
        ));
    }
}

/// Pod-level `istio.io/rev` labels a namespace label overrides, one finding per namespace.
fn ignored_pod_label_findings(analysis: &Analysis, out: &mut Vec<Finding>) {
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
            FindingCode::PodRevLabelIgnored,
            format!("namespace/{ns}"),
            format!(
                "pod label istio.io/rev={} is ignored: the namespace label decides",
                labels.into_iter().collect::<Vec<_>>().join(",")
            ),
            "remove the pod-level label, or the namespace label if pods should choose".into(),
        ));
    }
}

/// Istio config pinned to a tag (loaded by no istiod) or to a revision on its way out.
fn pinned_config_findings(analysis: &Analysis, out: &mut Vec<Finding>) {
    let cp = &analysis.control_plane;
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
                FindingCode::ConfigPinnedToTag,
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
                FindingCode::ConfigPinnedToDepartingRevision,
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
}

/// Installed revisions too many minor versions apart (DOMAIN §5: +2 warns, more is an error).
fn revision_skew_findings(analysis: &Analysis, out: &mut Vec<Finding>) {
    let versions: Vec<(&str, IstioVersion)> = analysis
        .control_plane
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
                let skew = finding(
                    FindingCode::RevisionSkew,
                    format!("revision/{a}"),
                    format!("{a} ({va}) and {b} ({vb}) are {distance} minor versions apart"),
                    "upgrade one minor version at a time (the guide's rule; two at most for canaries)".into(),
                );
                let severity = if distance > 2 {
                    Severity::Error
                } else {
                    skew.severity
                };
                out.push(Finding { severity, ..skew });
            }
        }
    }
}

/// Revisions whose istiod is missing behind its webhooks, or not ready.
fn control_plane_health_findings(analysis: &Analysis, out: &mut Vec<Finding>) {
    for rev in &analysis.control_plane.revisions {
        if !rev.injector_webhooks.is_empty() && rev.istiod.is_none() {
            out.push(finding(
                FindingCode::InjectorWithoutIstiod,
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
                FindingCode::IstiodNotReady,
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
}

/// Worst first, then by code and subject: the order every report shows.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.code.as_str().cmp(b.code.as_str()))
            .then(a.subject.cmp(&b.subject))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_row_in_order() {
        assert_eq!(SPECS.len(), FindingCode::ALL.len());
        for (row, code) in SPECS.iter().zip(FindingCode::ALL) {
            assert_eq!(row.finding, *code, "{}", row.code);
            assert_eq!(code.spec().code, row.code);
        }
    }
}
