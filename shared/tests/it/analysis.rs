//! Fixture tests of the pure analysis: each fixture under tests/fixtures/ shows one situation
//! in `kubectl get -o yaml` form, and each test asserts the one thing it is about.

use crate::common::load;

use std::collections::BTreeSet;

use rev_shared::analysis::{
    Analysis, FindingCode, InjectionMode, PodDrift, SidecarRevision, analyze,
};
use rev_shared::snapshot::WorkloadKind;
use rev_shared::snapshot::admission::{AdmissionAnswer, AdmissionCheck};

const CONTROL_PLANE: &str = "control-plane-1-19-and-1-20.yaml";

fn analysis_of(files: &[&str]) -> Analysis {
    analyze(&load(files))
}

fn effective(a: &Analysis, ns: &str) -> (InjectionMode, Option<String>) {
    let n = a
        .namespaces
        .iter()
        .find(|n| n.name == ns)
        .unwrap_or_else(|| panic!("no namespace {ns}"));
    (n.effective.mode, n.effective.revision.clone())
}

fn pod<'a>(a: &'a Analysis, ns: &str, name: &str) -> &'a rev_shared::analysis::PodStatus {
    a.pods
        .iter()
        .find(|p| p.namespace == ns && p.name == name)
        .unwrap_or_else(|| panic!("no pod {ns}/{name}"))
}

fn codes(a: &Analysis) -> BTreeSet<&'static str> {
    a.findings.iter().map(|f| f.code.as_str()).collect()
}

fn has_finding(a: &Analysis, code: &str, subject: &str) -> bool {
    a.findings
        .iter()
        .any(|f| f.code == code && f.subject == subject)
}

fn rev(r: &str) -> Option<String> {
    Some(r.to_string())
}

#[test]
fn control_plane_lists_both_revisions_with_versions_and_default() {
    let a = analysis_of(&[CONTROL_PLANE]);
    let cp = &a.control_plane;
    let names: Vec<_> = cp.revisions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["1-19", "1-20"]);
    assert_eq!(cp.revisions[0].version.as_deref(), Some("1.19.3-solo"));
    assert_eq!(
        cp.revisions[1]
            .istiod
            .as_ref()
            .map(|i| (i.ready, i.desired)),
        Some((2, 2))
    );
    assert_eq!(
        cp.default_revision.as_deref(),
        Some("1-19"),
        "1-19 carries the default webhooks"
    );
    let validator = cp.default_validator.as_ref().unwrap();
    assert_eq!(validator.revision.as_deref(), Some("1-19"));
    assert!(validator.revision_installed);
    assert!(a.findings.is_empty(), "{:?}", a.findings);
}

#[test]
fn legacy_label_beats_revision_label() {
    let a = analysis_of(&[CONTROL_PLANE, "injection-precedence.yaml"]);
    assert_eq!(
        effective(&a, "legacy-wins"),
        (InjectionMode::LegacyLabel, rev("1-19"))
    );
    assert!(has_finding(
        &a,
        "legacy-label-overrides-rev",
        "namespace/legacy-wins"
    ));
}

#[test]
fn injection_disabled_wins_over_everything() {
    let a = analysis_of(&[CONTROL_PLANE, "injection-precedence.yaml"]);
    assert_eq!(
        effective(&a, "injection-disabled"),
        (InjectionMode::Disabled, None)
    );
    let web = a
        .pods
        .iter()
        .find(|p| p.namespace == "injection-disabled")
        .unwrap();
    assert_eq!(web.drift, PodDrift::InSync);
}

#[test]
fn revision_label_selects_revision_and_ignores_pod_label() {
    let a = analysis_of(&[CONTROL_PLANE, "injection-precedence.yaml"]);
    assert_eq!(
        effective(&a, "rev-label"),
        (InjectionMode::RevisionLabel, rev("1-20"))
    );
    let pinned = pod(&a, "rev-label", "pinned-by-pod");
    assert_eq!(pinned.expected, rev("1-20"));
    assert_eq!(pinned.ignored_rev_label, rev("1-19"));
    assert!(has_finding(
        &a,
        "pod-rev-label-ignored",
        "namespace/rev-label"
    ));
}

#[test]
fn pod_opt_out_is_never_injected() {
    let a = analysis_of(&[CONTROL_PLANE, "injection-precedence.yaml"]);
    let p = pod(&a, "rev-label", "opted-out");
    assert_eq!(p.expected, None);
    assert_eq!(p.drift, PodDrift::InSync);
}

#[test]
fn unlabelled_namespace_lets_pod_labels_decide() {
    let a = analysis_of(&[CONTROL_PLANE, "injection-precedence.yaml"]);
    assert_eq!(effective(&a, "pod-level"), (InjectionMode::PodLevel, None));
    assert_eq!(pod(&a, "pod-level", "asks-1-20").expected, rev("1-20"));
    assert_eq!(pod(&a, "pod-level", "asks-default").expected, rev("1-19"));
    assert_eq!(pod(&a, "pod-level", "asks-nothing").expected, None);
    assert_eq!(
        pod(&a, "pod-level", "asks-1-20").drift,
        PodDrift::MissingSidecar { to: "1-20".into() }
    );
}

#[test]
fn ambient_namespaces_have_nothing_to_restart() {
    let a = analysis_of(&[CONTROL_PLANE, "injection-precedence.yaml"]);
    assert_eq!(effective(&a, "ambient"), (InjectionMode::Ambient, None));
    assert_eq!(
        pod(&a, "ambient", "ztunnel-captured").drift,
        PodDrift::InSync
    );
}

#[test]
fn namespace_selecting_nothing_installed_is_an_error() {
    let a = analysis_of(&[CONTROL_PLANE, "injection-precedence.yaml"]);
    assert_eq!(
        effective(&a, "not-installed"),
        (InjectionMode::RevisionLabel, None)
    );
    assert!(has_finding(
        &a,
        "target-has-no-injector",
        "namespace/not-installed"
    ));
    assert_eq!(
        pod(&a, "not-installed", "orphan-target").drift,
        PodDrift::Undetermined
    );
}

#[test]
fn sidecar_signals_in_order_of_reliability() {
    let a = analysis_of(&[CONTROL_PLANE, "sidecar-signals.yaml"]);
    let sidecar = |name: &str| pod(&a, "signals", name).sidecar.clone();
    let r = |s: &str| SidecarRevision::Revision(s.into());
    assert_eq!(
        sidecar("status-annotation"),
        r("1-19"),
        "status annotation beats the rev annotation"
    );
    assert_eq!(
        sidecar("rev-annotation"),
        r("1-19"),
        "rev annotation beats the image tag"
    );
    assert_eq!(
        sidecar("discovery-address"),
        r("1-19"),
        "discoveryAddress beats the image tag"
    );
    assert_eq!(
        sidecar("image-tag-only"),
        r("1-19"),
        "1.19.3-solo maps to the revision running 1.19"
    );
    assert_eq!(
        sidecar("native-sidecar"),
        r("1-20"),
        "native sidecar init container counts"
    );
    assert_eq!(sidecar("istio-init-only"), SidecarRevision::None);
    assert_eq!(
        sidecar("digest-image"),
        SidecarRevision::UnknownRevision("unknown".into())
    );
    assert_eq!(sidecar("label-is-not-evidence"), SidecarRevision::None);
    assert_eq!(
        sidecar("canonical-revision-is-app-version"),
        SidecarRevision::None
    );
    assert_eq!(
        pod(&a, "signals", "image-tag-only").drift,
        PodDrift::RevisionChanged {
            from: "1-19".into(),
            to: "1-20".into()
        }
    );
}

#[test]
fn tags_resolve_to_their_revision() {
    let a = analysis_of(&[CONTROL_PLANE, "revision-tags.yaml"]);
    let n = a.namespaces.iter().find(|n| n.name == "on-prod").unwrap();
    assert_eq!(n.effective.revision, rev("1-20"));
    assert_eq!(n.effective.via_tag, rev("prod"));
    assert_eq!(n.effective.display(), "1-20 (tag prod)");
    assert_eq!(n.pods_needing_restart, 1, "the 1-19 pod must move to 1-20");
    let r20 = a.control_plane.revision("1-20").unwrap();
    assert_eq!(r20.tags, ["prod"]);
}

#[test]
fn tag_pointing_at_missing_revision_is_an_error() {
    let a = analysis_of(&[CONTROL_PLANE, "revision-tags.yaml"]);
    assert!(has_finding(&a, "tag-target-missing", "tag/canary"));
    assert_eq!(
        effective(&a, "on-canary"),
        (InjectionMode::RevisionLabel, None)
    );
    assert!(has_finding(
        &a,
        "target-has-no-injector",
        "namespace/on-canary"
    ));
}

#[test]
fn default_tag_is_the_default_revision_even_when_its_webhooks_lose() {
    let a = analysis_of(&[CONTROL_PLANE, "two-injectors-match-last-by-name-wins.yaml"]);
    assert_eq!(a.control_plane.default_revision.as_deref(), Some("1-20"));
    // Which revision legacy namespaces get is the webhooks' answer (see injection.rs).
    assert_eq!(
        effective(&a, "legacy"),
        (InjectionMode::LegacyLabel, rev("1-19"))
    );
}

#[test]
fn early_prune_leftovers_are_errors() {
    let a = analysis_of(&["pruned-too-early.yaml"]);
    let found = codes(&a);
    for code in [
        "default-validator-target-missing",
        "sidecar-revision-not-installed",
        "injector-without-istiod",
        "istiod-not-ready",
    ] {
        assert!(found.contains(code), "{code} missing from {found:?}");
    }
    assert!(has_finding(&a, "injector-without-istiod", "revision/1-18"));
}

#[test]
fn revision_skew_warns_at_two_and_errors_beyond() {
    use rev_shared::analysis::Severity;
    let a = analysis_of(&["revision-skew.yaml"]);
    let skew: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.code == "revision-skew")
        .collect();
    assert_eq!(skew.len(), 2, "{skew:?}");
    assert!(
        skew.iter()
            .any(|f| f.severity == Severity::Error && f.message.contains("1-17"))
    );
    assert!(skew.iter().any(|f| f.severity == Severity::Warning
        && f.message.contains("1-18")
        && f.message.contains("1-20")));
}

#[test]
fn helm_records_decode_gzip_and_plain_and_keep_the_newest() {
    let s = load(&["helm-releases.yaml"]);
    let names: Vec<_> = s
        .helm_releases
        .iter()
        .map(|r| (r.name.as_str(), r.version))
        .collect();
    assert_eq!(
        names,
        [
            ("istio-ingressgateway-1-19", 1),
            ("istio-base", 1),
            ("istiod-1-19", 2)
        ]
    );
    let gw = &s.helm_releases[0];
    assert_eq!(
        (gw.chart.as_str(), gw.revision_value.as_deref()),
        ("gateway", Some("1-19"))
    );
    assert!(gw.manifest.contains("istio-ingressgateway-1-19"));
    let a = analyze(&s);
    assert_eq!(
        a.control_plane
            .revision("1-19")
            .and_then(|r| r.helm_release.as_deref()),
        Some("istio-system/istiod-1-19")
    );
    assert!(
        a.control_plane.revision("default").is_none(),
        "the base chart owns no revision"
    );
}

#[test]
fn config_pinned_to_departing_revision_is_flagged() {
    let a = analysis_of(&[CONTROL_PLANE, "pinned-config.yaml"]);
    assert!(has_finding(
        &a,
        "config-pinned-to-departing-revision",
        "envoyfilter/bookinfo/ratings-lua"
    ));
    assert!(has_finding(
        &a,
        "config-pinned-to-departing-revision",
        "envoyfilter/istio-system/mesh-wide-gzip"
    ));
    assert!(!has_finding(
        &a,
        "config-pinned-to-departing-revision",
        "envoyfilter/bookinfo/reviews-tap"
    ));
    assert_eq!(
        a.pinned_config.len(),
        3,
        "unlabelled filters are not pinned"
    );
}

#[test]
fn workload_drift_is_per_workload() {
    let a = analysis_of(&[CONTROL_PLANE, "revision-tags.yaml"]);
    let web = a
        .workloads
        .iter()
        .find(|w| w.namespace == "on-prod" && w.name == "web")
        .unwrap();
    assert_eq!((web.pods, web.drifted_pods), (2, 1));
    assert!(has_finding(
        &a,
        "workload-drifted",
        "deployment/on-prod/web"
    ));
}

#[test]
fn istio_config_labelled_with_a_tag_is_pinned_revision_no_istiod() {
    let a = analysis_of(&["prune-after-step-3.yaml", "prune-pinned-config.yaml"]);
    assert!(has_finding(
        &a,
        "config-pinned-to-tag",
        "telemetry.telemetry.istio.io/bookinfo/access-logs"
    ));
    // A Gateway API gateway resolves the same tag: pinned to 1-20 through it, no finding.
    let edge = a.pinned_config.iter().find(|c| c.name == "edge").unwrap();
    assert_eq!(edge.pinned_revision.as_deref(), Some("1-20"));
    let telemetry = a
        .pinned_config
        .iter()
        .find(|c| c.name == "access-logs")
        .unwrap();
    assert_eq!(telemetry.pinned_revision, None);
    assert!(
        a.findings
            .iter()
            .filter(|f| f.code == "config-pinned-to-tag")
            .count()
            == 1
    );
}

/// Every finding code is produced by at least one fixture: none is dead.
#[test]
fn every_finding_code_is_covered_by_a_fixture_with_a_documented_severity() {
    let mut analyses: Vec<Analysis> = [
        &[CONTROL_PLANE, "injection-precedence.yaml"][..],
        &[CONTROL_PLANE, "revision-tags.yaml"],
        &["pruned-too-early.yaml"],
        &["revision-skew.yaml"],
        &[CONTROL_PLANE, "pinned-config.yaml"],
        &["prune-after-step-3.yaml", "prune-pinned-config.yaml"],
        &[
            "default-tag-deactivates-revisionless-injector.yaml",
            "revisionless-gateway-after-default-moved.yaml",
        ],
        &[
            CONTROL_PLANE,
            "revision-tags.yaml",
            "revision-tag-services.yaml",
        ],
    ]
    .into_iter()
    .map(analysis_of)
    .collect();
    // The admission comparison needs the cluster's answer, which no dump holds.
    let mut snapshot = load(&[CONTROL_PLANE, "revision-tags.yaml"]);
    snapshot.admission.push(AdmissionCheck {
        kind: WorkloadKind::Deployment,
        namespace: "on-prod".into(),
        name: "web".into(),
        answer: AdmissionAnswer::NoSidecar,
    });
    analyses.push(analyze(&snapshot));
    let mut seen = BTreeSet::new();
    for f in analyses.iter().flat_map(|a| &a.findings) {
        seen.insert(f.code.as_str());
        assert!(
            f.code.severities().contains(&f.severity),
            "{} is {:?}, which FindingCode (and the README) do not list: {f:?}",
            f.code,
            f.severity
        );
    }
    for code in FindingCode::ALL {
        assert!(seen.contains(code.as_str()), "no fixture produces {code}");
    }
}

#[test]
fn tag_services_that_disagree_with_their_webhooks_are_findings() {
    let a = analysis_of(&[
        CONTROL_PLANE,
        "revision-tags.yaml",
        "revision-tag-services.yaml",
    ]);
    let prod = a.control_plane.tag("prod").unwrap();
    assert_eq!(
        prod.service
            .as_ref()
            .map(|s| (s.name.as_str(), s.revision.as_str())),
        Some(("istiod-revision-tag-prod", "1-19"))
    );
    assert!(a.control_plane.tag("canary").unwrap().service.is_none());
    let disagreements: Vec<&str> = a
        .findings
        .iter()
        .filter(|f| f.code == "tag-service-disagrees")
        .map(|f| f.subject.as_str())
        .collect();
    assert_eq!(disagreements, ["tag/prod", "tag/stale"]);
    // Without tag Services (Istio < 1.28) nothing is reported.
    let before = analysis_of(&[CONTROL_PLANE, "revision-tags.yaml"]);
    assert!(!codes(&before).contains("tag-service-disagrees"));
}

#[test]
fn ztunnel_pods_are_node_proxies_not_sidecars_of_their_revision() {
    // Its pods carry the chart's `istio.io/rev` annotation and a container named istio-proxy,
    // which read alone would say "a sidecar of 1-19".
    let a = analysis_of(&[CONTROL_PLANE, "prune-istioctl-ztunnel-on-old.yaml"]);
    let ztunnel = pod(&a, "istio-system", "ztunnel-k4w2p");
    assert_eq!(ztunnel.sidecar, SidecarRevision::None);
    assert_eq!(ztunnel.drift, PodDrift::InSync, "never restarted for drift");
    assert!(
        !codes(&a).contains("sidecar-revision-not-installed"),
        "{:?}",
        codes(&a)
    );
}

#[test]
fn ztunnel_of_a_chart_before_1_23_is_known_by_its_pod_template() {
    // No DaemonSet labels at all (Helm's values `labels: {}`), only the selector's `app: ztunnel`.
    let a = analysis_of(&[CONTROL_PLANE, "ztunnel-helm-pre-1-23-unlabelled.yaml"]);
    let ztunnel = pod(&a, "istio-system", "ztunnel-7x2rq");
    assert_eq!(ztunnel.sidecar, SidecarRevision::None);
    assert!(
        !codes(&a).contains("sidecar-revision-not-installed"),
        "{:?}",
        codes(&a)
    );
}
