//! Fixture tests of injection truth (DOMAIN §2–§3): the webhooks evaluated as the API server
//! does, then the injector's own rules, and only live pods. One situation per fixture; each test
//! asserts what a user of the inventory, restart or prune would notice.

use crate::common::load;

use rev_shared::analysis::{
    Analysis, EffectiveRevision, InjectionMode, NoSidecar, PodDrift, PodStatus, WorkloadStatus,
    analyze,
};
use rev_shared::plan::restart::{RestartRequest, plan_restart};

const CONTROL_PLANE: &str = "control-plane-1-19-and-1-20.yaml";

fn namespace<'a>(a: &'a Analysis, name: &str) -> &'a EffectiveRevision {
    &a.namespaces
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no namespace {name}"))
        .effective
}

fn pod<'a>(a: &'a Analysis, ns: &str, name: &str) -> &'a PodStatus {
    a.pods
        .iter()
        .find(|p| p.namespace == ns && p.name == name)
        .unwrap_or_else(|| panic!("no pod {ns}/{name}"))
}

fn workload<'a>(a: &'a Analysis, ns: &str, name: &str) -> &'a WorkloadStatus {
    a.workloads
        .iter()
        .find(|w| w.namespace == ns && w.name == name)
        .unwrap_or_else(|| panic!("no workload {ns}/{name}"))
}

fn webhook(e: &EffectiveRevision) -> String {
    e.webhook
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn rev(r: &str) -> Option<String> {
    Some(r.to_string())
}

#[test]
fn default_tag_deactivates_the_revisionless_injector() {
    let a = analyze(&load(&[
        "default-tag-deactivates-revisionless-injector.yaml",
    ]));
    let legacy = namespace(&a, "legacy");
    assert_eq!(legacy.revision, rev("1-20"));
    assert_eq!(
        webhook(legacy),
        "istio-revision-tag-default/namespace.sidecar-injector.istio.io"
    );
    // `default` is an installed revision name here too (the old istiod); only the selectors
    // tell that its injector no longer answers.
    let by_label = namespace(&a, "rev-default");
    assert_eq!(
        (by_label.revision.as_deref(), by_label.via_tag.as_deref()),
        (Some("1-20"), Some("default"))
    );
    assert_eq!(pod(&a, "pod-level", "asks-default").expected, rev("1-20"));
    assert_eq!(
        pod(&a, "rev-default", "web").drift,
        PodDrift::RevisionChanged {
            from: "default".into(),
            to: "1-20".into()
        }
    );
}

#[test]
fn two_injectors_match_and_the_last_by_name_wins() {
    let a = analyze(&load(&[
        CONTROL_PLANE,
        "two-injectors-match-last-by-name-wins.yaml",
    ]));
    let legacy = namespace(&a, "legacy");
    assert_eq!(legacy.mode, InjectionMode::LegacyLabel);
    assert_eq!(
        legacy.revision,
        rev("1-19"),
        "istio-sidecar-injector-1-19 is called after istio-revision-tag-default and re-injects"
    );
    assert_eq!(
        webhook(legacy),
        "istio-sidecar-injector-1-19/namespace.sidecar-injector.istio.io"
    );
}

#[test]
fn a_hand_edited_webhook_selector_is_evaluated() {
    let a = analyze(&load(&[CONTROL_PLANE, "hand-edited-webhook-selector.yaml"]));
    let team_a = namespace(&a, "team-a");
    assert_eq!(team_a.revision, rev("1-20"));
    assert_eq!(
        webhook(team_a),
        "mesh-team-injector/team.sidecar-injector.istio.io"
    );
    assert_eq!(team_a.display(), "1-20");
    assert_eq!(
        pod(&a, "team-a", "api").drift,
        PodDrift::MissingSidecar { to: "1-20".into() }
    );
    assert_eq!(namespace(&a, "team-b").revision, None);
}

#[test]
fn a_template_annotation_opt_out_is_never_to_restart() {
    let snapshot = load(&[CONTROL_PLANE, "template-annotation-opts-out.yaml"]);
    let a = analyze(&snapshot);
    let reporter = workload(&a, "batch", "reporter");
    assert_eq!(reporter.expected, None);
    assert_eq!(
        reporter.no_sidecar,
        Some(NoSidecar::OptedOut {
            via: "annotation",
            value: "false".into()
        })
    );
    assert!(!reporter.is_drifted());
    let plan = plan_restart(&snapshot, &a, &RestartRequest::default());
    let names: Vec<&str> = plan.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["web"],
        "web moves to 1-20; reporter would get no sidecar"
    );
}

#[test]
fn a_host_network_daemonset_is_never_injected() {
    let a = analyze(&load(&[CONTROL_PLANE, "host-network-daemonset.yaml"]));
    let exporter = workload(&a, "monitoring", "node-exporter");
    assert_eq!(
        (exporter.expected.as_deref(), exporter.no_sidecar.as_ref()),
        (None, Some(&NoSidecar::HostNetwork))
    );
    assert!(!exporter.is_drifted());
    assert_eq!(
        pod(&a, "monitoring", "node-exporter-abcde").drift,
        PodDrift::InSync
    );
    assert_eq!(namespace(&a, "monitoring").revision, rev("1-20"));
}

#[test]
fn a_labelled_kube_system_is_still_ignored_by_the_injector() {
    let a = analyze(&load(&[CONTROL_PLANE, "labelled-kube-system.yaml"]));
    let kube_system = namespace(&a, "kube-system");
    assert_eq!(kube_system.revision, None);
    assert_eq!(kube_system.no_sidecar, Some(NoSidecar::SystemNamespace));
    assert_eq!(kube_system.display(), "<none> (system namespace)");
    assert_eq!(
        pod(&a, "kube-system", "coredns-6f6b-x1").drift,
        PodDrift::InSync
    );
    assert!(
        !a.findings
            .iter()
            .any(|f| f.subject == "namespace/kube-system"),
        "{:?}",
        a.findings
    );
}

#[test]
fn evicted_and_completed_pods_are_counted_but_never_drift_nor_block_prune() {
    let snapshot = load(&[CONTROL_PLANE, "finished-pods-with-old-sidecars.yaml"]);
    assert_eq!(snapshot.finished_pods.get("jobs"), Some(&2));
    let a = analyze(&snapshot);
    let jobs = a.namespaces.iter().find(|n| n.name == "jobs").unwrap();
    assert_eq!(jobs.finished_pods, 2);
    assert_eq!(jobs.pods_needing_restart, 0);
    assert_eq!(
        jobs.pods_by_revision,
        [("1-20".to_string(), 1)].into_iter().collect()
    );
    assert!(!workload(&a, "jobs", "api").is_drifted());
    let plan = rev_shared::plan::prune::plan_prune(
        &snapshot,
        &a,
        &rev_shared::revision::RevisionName::parse("1-19").unwrap(),
        &Default::default(),
    )
    .unwrap();
    assert!(
        !plan.blockers.iter().any(|b| b.subject == "namespace/jobs"),
        "{:?}",
        plan.blockers
    );
}

#[test]
fn an_ambient_namespace_still_injects_pods_that_ask() {
    let a = analyze(&load(&[CONTROL_PLANE, "ambient-pod-opt-in.yaml"]));
    assert_eq!(namespace(&a, "mesh-apps").display(), "ambient");
    assert_eq!(pod(&a, "mesh-apps", "captured").drift, PodDrift::InSync);
    let opted_in = pod(&a, "mesh-apps", "opted-in");
    assert_eq!(opted_in.expected, rev("1-20"));
    assert_eq!(
        opted_in.drift,
        PodDrift::MissingSidecar { to: "1-20".into() }
    );
}

#[test]
fn never_inject_selector_of_the_revision_config_wins_over_the_namespace() {
    let snapshot = load(&[CONTROL_PLANE, "never-inject-selector.yaml"]);
    assert_eq!(snapshot.injector_configs.len(), 1);
    let a = analyze(&snapshot);
    let migrate = pod(&a, "batch", "migrate-9kq2x");
    assert_eq!(
        (migrate.expected.as_deref(), &migrate.drift),
        (None, &PodDrift::InSync)
    );
    assert_eq!(
        pod(&a, "batch", "migrate-asks-8x1z2").expected,
        rev("1-20"),
        "an explicit inject=true is read before the selectors"
    );
    assert_eq!(
        pod(&a, "batch", "web").drift,
        PodDrift::MissingSidecar { to: "1-20".into() }
    );
}

#[test]
fn inject_values_are_read_by_the_revisions_istio_version() {
    let a = analyze(&load(&["inject-value-parsing-1-26-vs-1-27.yaml"]));
    for (name, on_1_26, on_1_27) in [
        ("label-no", None, Some("1-27")),
        ("label-capital-false", None, Some("1-27")),
        ("annotation-off", None, Some("1-27")),
        ("annotation-false", None, None),
        ("label-yes", Some("1-26"), Some("1-27")),
    ] {
        assert_eq!(
            pod(&a, "on-1-26", name).expected.as_deref(),
            on_1_26,
            "{name} on 1.26"
        );
        assert_eq!(
            pod(&a, "on-1-27", name).expected.as_deref(),
            on_1_27,
            "{name} on 1.27"
        );
    }
}
