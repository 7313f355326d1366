//! Fixture tests of the mutating plans: what rev-restart selects and skips, and what rev-relabel
//! changes or refuses. Pure: no cluster.

use crate::common::load;
use rev_shared::snapshot::Snapshot;

use rev_shared::analysis::analyze;
use rev_shared::plan::relabel::{
    ChangeKind, RelabelBlocker, Targets, plan_relabel, plan_undo, relabel_patch,
};
use rev_shared::plan::restart::{RestartMethod, RestartRequest, plan_restart};
use rev_shared::revision::RevisionName;
use rev_shared::snapshot::WorkloadKind;

fn selection() -> Snapshot {
    load(&["control-plane-1-19-and-1-20.yaml", "restart-selection.yaml"])
}

fn selected(request: &RestartRequest) -> (Vec<String>, Vec<(String, String)>) {
    let s = selection();
    let plan = plan_restart(&s, &analyze(&s), request);
    (
        plan.items
            .iter()
            .map(|i| format!("{}/{}/{}", i.kind.resource(), i.namespace, i.name))
            .collect(),
        plan.skipped
            .iter()
            .map(|s| {
                let (message, fix) = rev_shared::output::restart::skip_text(s);
                (
                    format!("{}/{}/{}", s.kind, s.namespace, s.name),
                    format!("{message}; {fix}"),
                )
            })
            .collect(),
    )
}

fn skip_reason<'a>(skipped: &'a [(String, String)], subject: &str) -> &'a str {
    skipped
        .iter()
        .find(|(s, _)| s == subject)
        .map(|(_, r)| r.as_str())
        .unwrap_or_else(|| panic!("{subject} not skipped: {skipped:?}"))
}

#[test]
fn restart_selects_only_drifted_restartable_workloads() {
    let (items, _) = selected(&RestartRequest::default());
    assert_eq!(
        items,
        [
            "deployment/shop/cart",
            "deployment/shop/native",
            "statefulset/shop/sessions",
            "daemonset/shop/log-agent",
            "deployment/tagged/web",
        ]
    );
}

#[test]
fn native_sidecar_pods_count_as_drifted() {
    let (items, _) = selected(&RestartRequest::default());
    assert!(items.contains(&"deployment/shop/native".to_string()));
}

#[test]
fn gateways_and_istiod_are_never_restarted() {
    let (items, skipped) = selected(&RestartRequest::default());
    assert!(
        !items
            .iter()
            .any(|i| i.contains("gateway") || i.contains("istiod"))
    );
    assert!(
        skip_reason(
            &skipped,
            "deployment/istio-ingress/istio-ingressgateway-1-20"
        )
        .contains("Helm release")
    );
    assert!(skip_reason(&skipped, "deployment/istio-system/istiod-1-21").contains("control plane"));
}

#[test]
fn paused_deployments_are_skipped_with_the_resume_command() {
    let (_, skipped) = selected(&RestartRequest::default());
    assert!(
        skip_reason(&skipped, "deployment/shop/checkout")
            .contains("kubectl rollout resume deployment/checkout -n shop")
    );
}

#[test]
fn ondelete_statefulsets_are_reported_unless_asked_to_delete_pods() {
    let (items, skipped) = selected(&RestartRequest::default());
    assert!(!items.contains(&"statefulset/shop/orders-db".to_string()));
    assert!(skip_reason(&skipped, "statefulset/shop/orders-db").contains("--ondelete=delete-pods"));
    let s = selection();
    let plan = plan_restart(
        &s,
        &analyze(&s),
        &RestartRequest {
            delete_ondelete_pods: true,
            ..Default::default()
        },
    );
    let orders = plan.items.iter().find(|i| i.name == "orders-db").unwrap();
    assert_eq!(orders.method, RestartMethod::DeletePods);
}

#[test]
fn bare_pods_and_ownerless_replicasets_are_reported_not_touched() {
    let (items, skipped) = selected(&RestartRequest::default());
    assert!(
        !items
            .iter()
            .any(|i| i.contains("debug-shell") || i.contains("legacy"))
    );
    assert!(skip_reason(&skipped, "pod/shop/debug-shell").contains("only recreating it moves it"));
    assert!(
        skip_reason(&skipped, "pod/shop/legacy-rs-abcde").contains("only recreating it moves it")
    );
}

#[test]
fn tags_give_the_target_revision() {
    let s = selection();
    let plan = plan_restart(&s, &analyze(&s), &RestartRequest::default());
    let web = plan.items.iter().find(|i| i.namespace == "tagged").unwrap();
    assert_eq!(web.target_revision.as_deref(), Some("1-20"));
}

#[test]
fn all_adds_in_sync_injected_workloads_and_filters_narrow() {
    let (items, _) = selected(&RestartRequest {
        all: true,
        ..Default::default()
    });
    assert!(items.contains(&"deployment/shop/catalog".to_string()));
    let (items, _) = selected(&RestartRequest {
        kinds: vec![WorkloadKind::StatefulSet],
        namespaces: Some(vec!["shop".into()]),
        ..Default::default()
    });
    assert_eq!(items, ["statefulset/shop/sessions"]);
    let (items, _) = selected(&RestartRequest {
        selector: Some(rev_shared::selector::Selector::parse("app=cart").unwrap()),
        ..Default::default()
    });
    assert_eq!(items, ["deployment/shop/cart"]);
}

/// The relabel plan for named namespaces (which must exist).
fn relabel_names(
    s: &Snapshot,
    a: &rev_shared::analysis::Analysis,
    namespaces: &[&str],
    target: &str,
) -> rev_shared::plan::relabel::RelabelPlan {
    let names = namespaces.iter().map(|n| n.to_string()).collect();
    plan_relabel(s, a, &Targets::Names(names), &rev(target)).unwrap()
}

fn rev(r: &str) -> RevisionName {
    RevisionName::parse(r).unwrap()
}

#[test]
fn relabel_plans_one_change_with_before_after_and_what_drifts() {
    let s = load(&[
        "control-plane-1-19-and-1-20.yaml",
        "injection-precedence.yaml",
        "pinned-config.yaml",
    ]);
    let a = analyze(&s);
    let plan = relabel_names(&s, &a, &["legacy-wins"], "1-20");
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    let c = &plan.changes[0];
    assert_eq!(c.before["istio-injection"].as_deref(), Some("enabled"));
    assert_eq!(
        c.after["istio-injection"], None,
        "the legacy label is removed"
    );
    assert_eq!(c.after["istio.io/rev"].as_deref(), Some("1-20"));
    let restarts: Vec<_> = c
        .restarts
        .iter()
        .map(|r| (r.workload.as_ref().map(|w| w.name.as_str()), r.pods))
        .collect();
    assert_eq!(restarts, [(Some("web"), 1)]);
    let patch = relabel_patch(c);
    assert_eq!(
        patch["metadata"]["labels"]["istio-injection"],
        serde_json::Value::Null
    );
    assert_eq!(
        patch["metadata"]["resourceVersion"],
        serde_json::Value::Null,
        "fixture has none"
    );
    assert!(
        patch["metadata"]["annotations"][rev_shared::keys::PREVIOUS_LABELS]
            .as_str()
            .unwrap()
            .contains("enabled")
    );
}

#[test]
fn relabel_reports_pinned_config_and_ignored_pod_labels() {
    let s = load(&[
        "control-plane-1-19-and-1-20.yaml",
        "injection-precedence.yaml",
        "pinned-config.yaml",
    ]);
    let a = analyze(&s);
    let plan = relabel_names(&s, &a, &["bookinfo", "rev-label"], "1-20");
    assert_eq!(
        plan.unchanged,
        ["bookinfo", "rev-label"],
        "already on 1-20: nothing to do"
    );
    let plan = relabel_names(&s, &a, &["rev-label"], "1-19");
    let c = &plan.changes[0];
    assert!(
        c.ignored_pod_labels.is_empty(),
        "pod label 1-19 now matches"
    );
    let plan = relabel_names(&s, &a, &["bookinfo"], "1-19");
    assert!(
        plan.changes[0]
            .pinned_config
            .iter()
            .any(|p| p.name == "reviews-tap"),
        "{:?}",
        plan.changes[0].pinned_config
    );
}

#[test]
fn relabel_refuses_unknown_revision_and_names_unknown_namespaces() {
    let s = load(&[
        "control-plane-1-19-and-1-20.yaml",
        "injection-precedence.yaml",
    ]);
    let a = analyze(&s);
    let plan = relabel_names(&s, &a, &["pod-level"], "1-21");
    assert!(
        matches!(&plan.blockers[0], RelabelBlocker::NotInstalled { target, .. } if target == "1-21"),
        "{:?}",
        plan.blockers
    );
    assert!(plan.is_refused(false) && !plan.is_refused(true));
    let missing = plan_relabel(
        &s,
        &a,
        &Targets::Names(vec!["nope".into(), "pod-level".into()]),
        &rev("1-20"),
    )
    .unwrap_err();
    assert!(
        matches!(&missing, rev_shared::RevError::UnknownNamespaces { names } if names == &["nope"]),
        "{missing}"
    );
}

#[test]
fn relabel_refuses_istiod_without_ready_replica() {
    let s = load(&["pruned-too-early.yaml"]);
    let plan = plan_relabel(
        &s,
        &analyze(&s),
        &Targets::Names(vec!["bookinfo".into()]),
        &rev("1-20"),
    )
    .unwrap();
    assert!(
        plan.blockers
            .iter()
            .any(|b| matches!(b, RelabelBlocker::IstiodNotReady { .. })),
        "{:?}",
        plan.blockers
    );
}

#[test]
fn relabel_skip_policy_warns_at_two_minors_and_refuses_three() {
    let mut s = load(&["revision-skew.yaml", "control-plane-1-19-and-1-20.yaml"]);
    let mut add_ns = |name: &str, rev: &str| {
        s.namespaces.push(rev_shared::snapshot::NamespaceInfo {
            name: name.into(),
            labels: [("istio.io/rev".to_string(), rev.to_string())].into(),
            annotations: Default::default(),
            resource_version: Some("7".into()),
        })
    };
    add_ns("on-1-17", "1-17");
    add_ns("on-1-18", "1-18");
    let a = analyze(&s);
    let three = relabel_names(&s, &a, &["on-1-17"], "1-20");
    assert!(
        three
            .blockers
            .iter()
            .any(|b| matches!(b, RelabelBlocker::SkipTooLarge { .. })),
        "{:?}",
        three.blockers
    );
    let two = relabel_names(&s, &a, &["on-1-18"], "1-20");
    assert!(two.blockers.is_empty(), "{:?}", two.blockers);
    assert_eq!(two.warnings.len(), 1);
}

#[test]
fn relabel_from_selects_every_namespace_on_the_old_revision() {
    let s = load(&[
        "control-plane-1-19-and-1-20.yaml",
        "injection-precedence.yaml",
    ]);
    let plan = plan_relabel(
        &s,
        &analyze(&s),
        &Targets::From("1-19".into()),
        &rev("1-20"),
    )
    .unwrap();
    let names: Vec<_> = plan.changes.iter().map(|c| c.namespace.as_str()).collect();
    assert_eq!(
        names,
        ["legacy-wins"],
        "only the namespace whose effective revision is 1-19"
    );
}

#[test]
fn undo_restores_exactly_what_was_recorded() {
    let mut s = load(&["control-plane-1-19-and-1-20.yaml"]);
    s.namespaces.push(rev_shared::snapshot::NamespaceInfo {
        name: "bookinfo".into(),
        labels: [("istio.io/rev".to_string(), "1-20".to_string())].into(),
        annotations: [(
            rev_shared::keys::PREVIOUS_LABELS.to_string(),
            r#"{"istio-injection":"enabled","istio.io/rev":"1-19"}"#.to_string(),
        )]
        .into(),
        resource_version: Some("42".into()),
    });
    let plan = plan_undo(&s, &analyze(&s), &["bookinfo".into()]).unwrap();
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    let change = &plan.changes[0];
    assert_eq!(change.kind, ChangeKind::Restore);
    let patch = relabel_patch(change);
    assert_eq!(patch["metadata"]["labels"]["istio-injection"], "enabled");
    assert_eq!(patch["metadata"]["labels"]["istio.io/rev"], "1-19");
    assert_eq!(
        patch["metadata"]["annotations"][rev_shared::keys::PREVIOUS_LABELS],
        serde_json::Value::Null
    );
    assert_eq!(patch["metadata"]["resourceVersion"], "42");
}

#[test]
fn undo_to_a_revision_that_is_gone_is_refused_like_any_relabel() {
    let mut s = load(&["control-plane-1-19-and-1-20.yaml"]);
    s.namespaces.push(rev_shared::snapshot::NamespaceInfo {
        name: "bookinfo".into(),
        labels: [("istio.io/rev".to_string(), "1-20".to_string())].into(),
        annotations: [(
            rev_shared::keys::PREVIOUS_LABELS.to_string(),
            r#"{"istio-injection":null,"istio.io/rev":"1-18"}"#.to_string(),
        )]
        .into(),
        resource_version: Some("42".into()),
    });
    let plan = plan_undo(&s, &analyze(&s), &["bookinfo".into()]).unwrap();
    assert!(
        plan.blockers
            .iter()
            .any(|b| matches!(b, RelabelBlocker::NotInstalled { target, .. } if target == "1-18")),
        "{:?}",
        plan.blockers
    );
    assert!(plan.is_refused(false));
}

#[test]
fn retargeted_tag_keeps_its_matchers_and_takes_the_revisions_client_config() {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    use rev_shared::keys::PREVIOUS_REVISION;
    use rev_shared::plan::relabel::retarget_tag_webhooks;
    let tag: MutatingWebhookConfiguration = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "istio-revision-tag-prod", "resourceVersion": "9",
                     "labels": {"istio.io/tag": "prod", "istio.io/rev": "1-19", "app": "sidecar-injector"}},
        "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                      "clientConfig": {"service": {"name": "istiod-1-19", "namespace": "istio-system", "path": "/inject"}},
                      "namespaceSelector": {"matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": ["prod"]}]}}]
    }))
    .unwrap();
    let injector: MutatingWebhookConfiguration = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "istio-sidecar-injector-1-20", "labels": {"istio.io/rev": "1-20"}},
        "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                      "clientConfig": {"service": {"name": "istiod-1-20", "namespace": "istio-system", "path": "/inject/cluster/k/net/n"}, "caBundle": "Q0E="},
                      "namespaceSelector": {"matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": ["1-20"]}]}}]
    }))
    .unwrap();
    let out = retarget_tag_webhooks(&tag, &injector, "1-20").unwrap();
    let labels = out.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["istio.io/rev"], "1-20");
    assert_eq!(labels["istio.io/tag"], "prod", "the tag's own labels stay");
    assert_eq!(
        out.metadata.annotations.as_ref().unwrap()[PREVIOUS_REVISION],
        "1-19"
    );
    assert_eq!(
        out.metadata.resource_version.as_deref(),
        Some("9"),
        "the replace is guarded"
    );
    let w = &out.webhooks.as_ref().unwrap()[0];
    assert_eq!(
        w.client_config.service.as_ref().unwrap().name,
        "istiod-1-20"
    );
    assert_eq!(
        w.client_config.ca_bundle.as_ref().map(|b| b.0.clone()),
        Some(b"CA".to_vec())
    );
    let selector = w
        .namespace_selector
        .as_ref()
        .unwrap()
        .match_expressions
        .as_ref()
        .unwrap();
    assert_eq!(
        selector[0].values.as_deref(),
        Some(&["prod".to_string()][..]),
        "the tag's matchers stay"
    );
}

#[test]
fn relabelling_a_namespace_istio_never_injects_warns_that_it_has_no_effect() {
    let s = load(&[
        "control-plane-1-19-and-1-20.yaml",
        "labelled-kube-system.yaml",
    ]);
    let plan = plan_relabel(
        &s,
        &analyze(&s),
        &Targets::Names(vec!["kube-system".into()]),
        &rev("1-20"),
    )
    .unwrap();
    assert!(plan.blockers.is_empty(), "{:?}", plan.blockers);
    assert_eq!(
        plan.changes.len(),
        1,
        "allowed: it is the user's namespace to label"
    );
    assert!(
        plan.warnings.iter().any(|w| matches!(
            w,
            rev_shared::plan::relabel::RelabelWarning::NoEffect { subject, .. }
                if subject == "namespace/kube-system"
        )),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn relabel_lists_the_pinned_config_of_every_kind_in_the_namespaces_it_moves() {
    let s = load(&["prune-after-step-3.yaml", "prune-pinned-config.yaml"]);
    let a = analyze(&s);
    // Rolling bookinfo back to 1-19: what is pinned to 1-20 (directly or, for a Gateway API
    // gateway, through the `default` tag) stops applying to it; what is labelled with a tag
    // name applies nowhere; what is pinned to 1-19 starts applying and is not listed.
    let plan = relabel_names(&s, &a, &["bookinfo"], "1-19");
    let mut listed: Vec<String> = plan.changes[0]
        .pinned_config
        .iter()
        .map(|p| format!("{} {} {}", p.kind, p.name, p.revision))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "Gateway edge default",
            "Telemetry access-logs default",
            "VirtualService reviews 1-20",
        ]
    );
}

fn partitioned() -> (Snapshot, rev_shared::plan::restart::RestartPlan) {
    let s = load(&[
        "control-plane-1-19-and-1-20.yaml",
        "statefulset-partition.yaml",
    ]);
    let plan = plan_restart(&s, &analyze(&s), &RestartRequest::default());
    (s, plan)
}

#[test]
fn a_partition_restarts_only_the_pods_above_it_and_names_those_it_keeps() {
    let (_, plan) = partitioned();
    let journal = plan
        .items
        .iter()
        .find(|i| i.name == "journal")
        .expect("journal is restarted");
    assert_eq!(journal.method, RestartMethod::RolloutRestart);
    assert_eq!(journal.partition, Some(2));
    assert_eq!(journal.held_back, ["journal-0", "journal-1"]);
    let kept = plan
        .skipped
        .iter()
        .find(|s| s.name == "journal")
        .expect("journal's kept pods are reported");
    assert_eq!(kept.pods, ["journal-0", "journal-1"]);
    let (message, fix) = rev_shared::output::restart::skip_text(kept);
    assert!(message.contains("partition 2"), "{message}");
    assert!(
        fix.contains("kubectl delete pod journal-0 -n ledger"),
        "{fix}"
    );
    assert!(
        fix.contains("kubectl patch statefulset journal -n ledger"),
        "{fix}"
    );
    assert!(plan.leaves_work(), "drift below a partition needs the user");
}

#[test]
fn a_partition_covering_every_replica_is_not_restarted() {
    let (_, plan) = partitioned();
    assert!(!plan.items.iter().any(|i| i.name == "archive"));
    let kept = plan.skipped.iter().find(|s| s.name == "archive").unwrap();
    assert_eq!(kept.pods, ["archive-0", "archive-1"]);
}

#[test]
fn drift_only_below_the_partition_is_reported_not_restarted_again() {
    let (_, plan) = partitioned();
    assert!(!plan.items.iter().any(|i| i.name == "audit"));
    let kept = plan.skipped.iter().find(|s| s.name == "audit").unwrap();
    assert_eq!(kept.pods, ["audit-0"]);
}

#[test]
fn ondelete_daemonsets_delete_their_pods_only_when_asked() {
    let s = load(&[
        "control-plane-1-19-and-1-20.yaml",
        "ondelete-daemonset.yaml",
    ]);
    let a = analyze(&s);
    let plan = plan_restart(&s, &a, &RestartRequest::default());
    assert!(plan.items.is_empty());
    let (_, fix) = rev_shared::output::restart::skip_text(&plan.skipped[0]);
    assert_eq!(plan.skipped[0].kind, "daemonset");
    assert!(fix.contains("--ondelete=delete-pods"), "{fix}");
    let plan = plan_restart(
        &s,
        &a,
        &RestartRequest {
            delete_ondelete_pods: true,
            ..Default::default()
        },
    );
    let agent = &plan.items[0];
    assert_eq!(
        (
            agent.kind,
            agent.name.as_str(),
            agent.method,
            agent.drifted_pods
        ),
        (
            WorkloadKind::DaemonSet,
            "node-agent",
            RestartMethod::DeletePods,
            2
        )
    );
}

fn revisionless_gateway() -> Snapshot {
    load(&[
        "default-tag-deactivates-revisionless-injector.yaml",
        "revisionless-gateway-after-default-moved.yaml",
    ])
}

#[test]
fn a_gateway_installed_without_a_revision_is_drifted_once_the_default_moves() {
    let s = revisionless_gateway();
    let a = analyze(&s);
    let gw = a
        .workloads
        .iter()
        .find(|w| w.name == "istio-ingressgateway")
        .unwrap();
    assert_eq!((gw.expected.as_deref(), gw.drifted_pods), (Some("1-20"), 1));
    let finding = a
        .findings
        .iter()
        .find(|f| f.code == "gateway-drifted")
        .expect("the inventory names the drifted gateway");
    assert_eq!(finding.hint, "kubectl rev-restart istio-ingress --gateways");
}

#[test]
fn revisionless_gateways_are_restarted_only_with_gateways() {
    let s = revisionless_gateway();
    let a = analyze(&s);
    let plan = plan_restart(&s, &a, &RestartRequest::default());
    assert!(plan.items.is_empty());
    let (_, fix) = rev_shared::output::restart::skip_text(&plan.skipped[0]);
    assert_eq!(fix, "kubectl rev-restart istio-ingress --gateways");
    assert!(plan.leaves_work());
    let plan = plan_restart(
        &s,
        &a,
        &RestartRequest {
            gateways: true,
            ..Default::default()
        },
    );
    let gw = &plan.items[0];
    assert_eq!(
        (gw.name.as_str(), gw.target_revision.as_deref(), gw.method),
        (
            "istio-ingressgateway",
            Some("1-20"),
            RestartMethod::RolloutRestart
        )
    );
    assert!(
        !plan
            .skipped
            .iter()
            .any(|s| s.name == "istio-ingressgateway")
    );
}

#[test]
fn revisioned_gateways_stay_excluded_even_with_gateways() {
    let s = selection();
    let plan = plan_restart(
        &s,
        &analyze(&s),
        &RestartRequest {
            gateways: true,
            ..Default::default()
        },
    );
    assert!(!plan.items.iter().any(|i| i.name.contains("gateway")));
    assert!(
        plan.skipped
            .iter()
            .any(|s| s.name == "istio-ingressgateway-1-20")
    );
}
