//! Fixture tests of the prune plan (pure): which releases and objects belong to the old
//! revision, Helm's uninstall order and `keep`, and every interlock. The cluster is
//! tests/fixtures/prune-after-step-3.yaml (nothing uses 1-19 any more) with the Helm records of
//! prune-helm-releases.yaml; each test changes the one thing it is about.

use crate::common::fixture;

use rev_shared::analysis::analyze;
use rev_shared::output::prune::blocker_text;
use rev_shared::plan::prune::{
    BlockerReason, Component, ObjectKey, PruneOptions, PrunePlan, PruneStep, ReleaseOwnership,
    UninstallMethod, live_object_not_owned, plan_prune, release_ownership, sort_for_uninstall,
};
use rev_shared::revision::RevisionName;
use rev_shared::snapshot::dump::read_dump_str;
use rev_shared::snapshot::helm::HelmHook;
use rev_shared::snapshot::helm::encode_release_payload;
use rev_shared::snapshot::{Labels, PodInfo, SidecarEvidence, Snapshot};

/// The Helm records of prune-helm-releases.yaml, each encoded as Helm stores it and read back
/// through the snapshot's Secret decoder.
fn add_helm_releases(snapshot: &mut Snapshot) {
    let doc: serde_json::Value =
        serde_saphyr::from_str(&fixture("prune-helm-releases.yaml")).expect("fixture parses");
    for release in doc["releases"].as_array().expect("releases") {
        let name = release["name"].as_str().unwrap();
        let secret = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {
                "name": format!("sh.helm.release.v1.{name}.v1"),
                "namespace": release["namespace"],
                "labels": {"owner": "helm", "name": name, "status": "deployed", "version": "1"},
            },
            "data": {"release": String::from_utf8(encode_release_payload(release, true)).unwrap()},
        });
        // `data` in a dump is the API's base64 of Helm's base64 text.
        let mut secret = secret;
        let helm_text = secret["data"]["release"].as_str().unwrap().to_string();
        secret["data"]["release"] = base64_of(&helm_text).into();
        snapshot.ingest_secret(serde_json::from_value(secret).unwrap());
    }
    snapshot.normalize();
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn mesh(extra: &[&str]) -> Snapshot {
    let mut text = fixture("prune-after-step-3.yaml");
    for f in extra {
        text.push_str("\n---\n");
        text.push_str(&fixture(f));
    }
    let mut snapshot = read_dump_str(&text).expect("fixture parses");
    add_helm_releases(&mut snapshot);
    snapshot
}

fn plan(snapshot: &Snapshot, revision: &str) -> PrunePlan {
    plan_with(snapshot, revision, &PruneOptions::default())
}

fn plan_with(snapshot: &Snapshot, revision: &str, options: &PruneOptions) -> PrunePlan {
    plan_prune(
        snapshot,
        &analyze(snapshot),
        &RevisionName::parse(revision).unwrap(),
        options,
    )
    .expect("plans")
}

fn release_steps(plan: &PrunePlan) -> Vec<String> {
    plan.releases()
        .map(|r| format!("{}/{}", r.namespace, r.name))
        .collect()
}

fn reasons(plan: &PrunePlan) -> Vec<(BlockerReason, String)> {
    plan.blockers
        .iter()
        .map(|b| (b.reason(), b.subject.clone()))
        .collect()
}

/// The fix of blocker `i`, as users read it.
fn fix(plan: &PrunePlan, i: usize) -> String {
    blocker_text(&plan.blockers[i], plan).1
}

/// The message of blocker `i`, as users read it.
fn message(plan: &PrunePlan, i: usize) -> String {
    blocker_text(&plan.blockers[i], plan).0
}

fn set_namespace_labels(snapshot: &mut Snapshot, ns: &str, labels: &[(&str, &str)]) {
    let namespace = snapshot
        .namespaces
        .iter_mut()
        .find(|n| n.name == ns)
        .unwrap();
    namespace.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
}

fn relabel_webhook(snapshot: &mut Snapshot, name: &str, rev: &str) {
    for w in snapshot
        .mutating_webhooks
        .iter_mut()
        .chain(snapshot.validating_webhooks.iter_mut())
        .filter(|w| w.name == name)
    {
        w.labels.insert("istio.io/rev".into(), rev.into());
    }
}

// --- ownership ---------------------------------------------------------------------------

#[test]
fn the_old_revisions_helm_releases_in_every_namespace_gateways_first() {
    let p = plan(&mesh(&[]), "1-19");
    assert_eq!(
        release_steps(&p),
        [
            "istio-eastwest/istio-eastwestgateway-1-19",
            "istio-ingress/istio-ingressgateway-1-19",
            "istio-system/istiod-1-19",
        ]
    );
    let components: Vec<Component> = p.steps.iter().map(PruneStep::component).collect();
    assert_eq!(
        components,
        [
            Component::Gateway,
            Component::Gateway,
            Component::ControlPlane
        ]
    );
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    assert!(!p.refused());
    assert_eq!(p.successor.as_deref(), Some("1-20"));
    assert!(
        p.objects().all(|o| !o.name.contains("1-20")),
        "nothing of 1-20 is planned"
    );
}

#[test]
fn a_release_without_revision_value_belongs_to_the_revision_its_manifest_names() {
    let s = mesh(&[]);
    let eastwest = s
        .helm_releases
        .iter()
        .find(|r| r.name == "istio-eastwestgateway-1-19")
        .unwrap();
    assert_eq!(eastwest.revision_value, None);
    assert_eq!(
        release_ownership(eastwest),
        ReleaseOwnership::Revision("1-19".into())
    );
}

#[test]
fn the_base_chart_belongs_to_no_revision_and_is_never_pruned() {
    let s = mesh(&[]);
    let base = s.helm_releases.iter().find(|r| r.chart == "base").unwrap();
    assert_eq!(release_ownership(base), ReleaseOwnership::NotRevisioned);
    // Its default validator is labelled istio.io/rev=1-20, yet pruning 1-20 never plans it.
    let p = plan(&s, "1-20");
    assert!(!release_steps(&p).iter().any(|r| r.contains("istio-base")));
    assert!(p.objects().all(|o| o.name != "istiod-default-validator"));
}

#[test]
fn helm_uninstall_order_with_webhook_configurations_last() {
    let p = plan(&mesh(&[]), "1-19");
    let istiod = p.releases().find(|r| r.name == "istiod-1-19").unwrap();
    let kinds: Vec<&str> = istiod.delete.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Service",
            "HorizontalPodAutoscaler",
            "Deployment",
            "ClusterRoleBinding",
            "ClusterRole",
            "ConfigMap",
            "ConfigMap",
            "ServiceAccount",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ]
    );
    // Same kind: manifest order kept.
    let config_maps: Vec<&str> = istiod
        .delete
        .iter()
        .filter(|o| o.kind == "ConfigMap")
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(config_maps, ["istio-1-19", "istio-sidecar-injector-1-19"]);
    // Cluster-scoped objects carry no namespace; namespaced ones the release's.
    assert!(istiod.delete.iter().all(|o| match o.kind.as_str() {
        "ClusterRole"
        | "ClusterRoleBinding"
        | "MutatingWebhookConfiguration"
        | "ValidatingWebhookConfiguration" => o.namespace.is_none(),
        _ => o.namespace.as_deref() == Some("istio-system"),
    }));
}

#[test]
fn unknown_kinds_go_last_alphabetically() {
    let key = |kind: &str| ObjectKey {
        api_version: "x/v1".into(),
        kind: kind.into(),
        namespace: None,
        name: kind.to_lowercase(),
    };
    let mut objects = vec![
        key("ZKind"),
        key("ValidatingWebhookConfiguration"),
        key("Namespace"),
        key("EnvoyFilter"),
        key("Service"),
        key("MutatingWebhookConfiguration"),
    ];
    sort_for_uninstall(&mut objects);
    let kinds: Vec<&str> = objects.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Service",
            "Namespace",
            "EnvoyFilter",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "ZKind",
        ]
    );
}

#[test]
fn objects_annotated_keep_are_left_in_place() {
    let p = plan(&mesh(&[]), "1-19");
    let istiod = p.releases().find(|r| r.name == "istiod-1-19").unwrap();
    let kept: Vec<&str> = istiod.kept.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(kept, ["istiod-1-19-user-config"]);
    assert!(
        istiod
            .delete
            .iter()
            .all(|o| o.name != "istiod-1-19-user-config")
    );
}

#[test]
fn a_revision_installed_without_helm_is_found_by_its_labels_and_names() {
    let p = plan(&mesh(&["prune-istioctl-installed.yaml"]), "1-18");
    assert_eq!(release_steps(&p), Vec::<String>::new());
    let steps: Vec<(Component, Vec<String>)> = p
        .steps
        .iter()
        .map(|s| {
            (
                s.component(),
                s.objects().iter().map(ObjectKey::display).collect(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (
                Component::Gateway,
                vec!["Deployment istio-ingress/istio-ingressgateway".to_string()]
            ),
            (
                Component::ControlPlane,
                vec![
                    "Service istio-system/istiod-1-18".to_string(),
                    "Deployment istio-system/istiod-1-18".to_string(),
                    "ConfigMap istio-system/istio-1-18".to_string(),
                ]
            ),
            (
                Component::Leftover,
                vec![
                    "ClusterRoleBinding istiod-clusterrole-1-18-istio-system".to_string(),
                    "ClusterRole istiod-clusterrole-1-18-istio-system".to_string(),
                    "ConfigMap istio-system/istio-sidecar-injector-1-18".to_string(),
                    "MutatingWebhookConfiguration istio-sidecar-injector-1-18".to_string(),
                    "ValidatingWebhookConfiguration istio-validator-1-18-istio-system".to_string(),
                ]
            ),
        ]
    );
    // The canary tag is an interlock, not a deletion.
    assert!(reasons(&p).contains(&(BlockerReason::TagPointsAtRevision, "tag/canary".into())));
}

// --- interlocks ----------------------------------------------------------------------------

#[test]
fn a_namespace_still_labelled_for_the_old_revision_blocks() {
    let mut s = mesh(&[]);
    set_namespace_labels(&mut s, "bookinfo", &[("istio.io/rev", "1-19")]);
    let p = plan(&s, "1-19");
    assert_eq!(
        reasons(&p),
        [(
            BlockerReason::NamespaceSelectsRevision,
            "namespace/bookinfo".into()
        )]
    );
    assert!(p.refused());
    assert!(
        fix(&p, 0).contains("kubectl label namespace bookinfo istio.io/rev=1-20 --overwrite"),
        "{}",
        fix(&p, 0)
    );
}

#[test]
fn a_namespace_reaching_the_old_revision_through_a_tag_blocks() {
    let mut s = mesh(&[]);
    relabel_webhook(&mut s, "istio-revision-tag-default", "1-19");
    set_namespace_labels(&mut s, "bookinfo", &[("istio-injection", "enabled")]);
    let p = plan(&s, "1-19");
    let r = reasons(&p);
    assert!(r.contains(&(
        BlockerReason::NamespaceSelectsRevision,
        "namespace/bookinfo".into()
    )));
    assert!(r.contains(&(BlockerReason::TagPointsAtRevision, "tag/default".into())));
    let ns = p
        .blockers
        .iter()
        .position(|b| b.reason() == BlockerReason::NamespaceSelectsRevision)
        .unwrap();
    let text = message(&p, ns);
    assert!(text.contains("istio-injection=enabled"), "{text}");
}

#[test]
fn pods_still_on_the_old_revision_block_listed_by_namespace() {
    let mut s = mesh(&[]);
    for name in ["reviews-v1-a", "reviews-v2-b"] {
        s.pods.push(PodInfo {
            namespace: "bookinfo".into(),
            name: name.into(),
            labels: Labels::new(),
            inject_annotation: None,
            host_network: false,
            owner: None,
            sidecar: SidecarEvidence::StatusAnnotation("1-19".into()),
            ready: Some(true),
            terminating: false,
        });
    }
    let p = plan(&s, "1-19");
    assert_eq!(
        reasons(&p),
        [(BlockerReason::PodsRunRevision, "namespace/bookinfo".into())],
        "the old gateway's own pod goes with it and blocks nothing"
    );
    assert!(
        message(&p, 0).contains("2 pod(s) still run 1-19 sidecars: reviews-v1-a, reviews-v2-b")
    );
    assert_eq!(
        fix(&p, 0).split_whitespace().take(4).collect::<Vec<_>>(),
        ["kubectl", "rev-restart", "-n", "bookinfo"]
    );
}

#[test]
fn the_default_tag_and_default_validator_pointing_at_the_old_revision_block() {
    let mut s = mesh(&[]);
    relabel_webhook(&mut s, "istio-revision-tag-default", "1-19");
    relabel_webhook(&mut s, "istiod-default-validator", "1-19");
    let p = plan(&s, "1-19");
    assert_eq!(
        reasons(&p),
        [
            (BlockerReason::TagPointsAtRevision, "tag/default".into()),
            (
                BlockerReason::DefaultValidatorPointsAtRevision,
                "validatingwebhookconfiguration/istiod-default-validator".into()
            ),
        ]
    );
    assert!(
        fix(&p, 1).starts_with("helm upgrade istio-base"),
        "{}",
        fix(&p, 1)
    );
}

#[test]
fn an_old_gateway_still_serving_while_the_new_one_has_no_address_blocks_naming_both() {
    let mut s = mesh(&[]);
    s.services
        .iter_mut()
        .find(|svc| svc.name == "istio-ingressgateway-1-20")
        .unwrap()
        .load_balancer
        .clear();
    let p = plan(&s, "1-19");
    assert_eq!(
        reasons(&p),
        [(
            BlockerReason::GatewayStillServing,
            "gateway/istio-ingress/istio-ingressgateway-1-19".into()
        )]
    );
    let m = &message(&p, 0);
    assert!(
        m.contains("203.0.113.10")
            && m.contains("istio-ingressgateway-1-20 (1-20) has no load-balancer address"),
        "{m}"
    );
}

#[test]
fn the_only_installed_revision_is_not_pruned() {
    let mut s = mesh(&[]);
    s.workloads.retain(|w| w.name != "istiod-1-20");
    s.mutating_webhooks.retain(|w| !w.name.ends_with("1-20"));
    s.helm_releases.retain(|r| !r.name.ends_with("1-20"));
    relabel_webhook(&mut s, "istio-revision-tag-default", "1-19");
    relabel_webhook(&mut s, "istiod-default-validator", "1-19");
    set_namespace_labels(&mut s, "bookinfo", &[]);
    let p = plan(&s, "1-19");
    assert!(reasons(&p).contains(&(BlockerReason::OnlyRevision, "revision/1-19".into())));
    assert_eq!(p.successor, None);
}

#[test]
fn delete_hooks_need_helm_and_force_cannot_override_that() {
    let mut s = mesh(&[]);
    s.helm_releases
        .iter_mut()
        .find(|r| r.name == "istiod-1-19")
        .unwrap()
        .hooks
        .push(HelmHook {
            name: "cleanup".into(),
            kind: "Job".into(),
            events: vec!["pre-delete".into()],
        });
    let forced = PruneOptions {
        force: true,
        helm_binary: None,
    };
    let p = plan_with(&s, "1-19", &forced);
    assert_eq!(
        reasons(&p),
        [(
            BlockerReason::DeleteHooksNeedHelm,
            "helmrelease/istio-system/istiod-1-19".into()
        )]
    );
    assert!(p.refused(), "--force does not run hooks");
    assert!(fix(&p, 0).starts_with("helm uninstall istiod-1-19 -n istio-system"));

    let with_helm = PruneOptions {
        force: false,
        helm_binary: Some("/usr/local/bin/helm".into()),
    };
    let p = plan_with(&s, "1-19", &with_helm);
    assert!(p.blockers.is_empty());
    let istiod = p.releases().find(|r| r.name == "istiod-1-19").unwrap();
    assert_eq!(
        istiod.method,
        UninstallMethod::HelmBinary {
            path: "/usr/local/bin/helm".into()
        }
    );
}

#[test]
fn force_overrides_usage_interlocks() {
    let mut s = mesh(&[]);
    set_namespace_labels(&mut s, "bookinfo", &[("istio.io/rev", "1-19")]);
    let p = plan_with(
        &s,
        "1-19",
        &PruneOptions {
            force: true,
            helm_binary: None,
        },
    );
    assert_eq!(p.blockers.len(), 1);
    assert!(!p.refused());
}

#[test]
fn a_revision_with_nothing_left_plans_nothing_and_a_tag_is_an_error() {
    let s = mesh(&[]);
    let p = plan(&s, "1-17");
    assert!(p.is_empty() && !p.refused(), "{:?}", p.blockers);
    assert_eq!(p.installed, ["1-19", "1-20"]);

    let err = plan_prune(
        &s,
        &analyze(&s),
        &RevisionName::parse("default").unwrap(),
        &PruneOptions::default(),
    )
    .unwrap_err();
    let hint = err.hint().unwrap_or_default();
    assert!(
        hint.contains("default is a revision tag pointing at 1-20"),
        "{hint}"
    );
}

// --- the live check the executor makes on each object before deleting it --------------------

#[test]
fn a_live_object_must_still_be_the_releases_and_the_revisions() {
    let p = plan(&mesh(&[]), "1-19");
    let istiod = p
        .steps
        .iter()
        .find(|s| matches!(s, PruneStep::HelmRelease(r) if r.name == "istiod-1-19"))
        .unwrap();
    let labels = |rev: &str| -> Labels { [("istio.io/rev".to_string(), rev.to_string())].into() };
    let helm = |name: &str| -> Labels {
        [
            ("meta.helm.sh/release-name".to_string(), name.to_string()),
            (
                "meta.helm.sh/release-namespace".to_string(),
                "istio-system".to_string(),
            ),
        ]
        .into()
    };
    assert_eq!(
        live_object_not_owned(istiod, "1-19", &labels("1-19"), &helm("istiod-1-19")),
        None
    );
    assert_eq!(
        live_object_not_owned(istiod, "1-19", &labels("1-20"), &helm("istiod-1-19")).as_deref(),
        Some("labelled istio.io/rev=1-20")
    );
    assert_eq!(
        live_object_not_owned(istiod, "1-19", &labels("1-19"), &helm("istiod-1-20")).as_deref(),
        Some("managed by Helm release istio-system/istiod-1-20")
    );
    assert!(live_object_not_owned(istiod, "1-19", &Labels::new(), &Labels::new()).is_some());
}
