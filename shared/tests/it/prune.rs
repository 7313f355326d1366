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
    add_helm_releases_of(snapshot, "prune-helm-releases.yaml")
}

/// The Helm records of a `releases:` fixture, stored and read back as Helm's Secrets.
fn add_helm_releases_of(snapshot: &mut Snapshot, name: &str) {
    let doc: serde_json::Value = serde_saphyr::from_str(&fixture(name)).expect("fixture parses");
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

/// The base mesh gives each gateway its own load-balancer address, as clouds do, so pruning
/// 1-19 takes 203.0.113.10 and .11 away: every test but the address ones plans as after DNS
/// and clients moved (`--allow-address-change`), and changes only the one thing it is about.
fn plan(snapshot: &Snapshot, revision: &str) -> PrunePlan {
    plan_with(snapshot, revision, &clients_moved())
}

fn clients_moved() -> PruneOptions {
    PruneOptions {
        allow_address_change: true,
        ..PruneOptions::default()
    }
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
fn helm_4_uninstall_order_deletes_webhook_configurations_first() {
    let p = plan(&mesh(&[]), "1-19");
    let istiod = p.releases().find(|r| r.name == "istiod-1-19").unwrap();
    let kinds: Vec<&str> = istiod.delete.iter().map(|o| o.kind.as_str()).collect();
    // Validation before mutation, then the rest: no failurePolicy=Fail webhook is left
    // pointing at a deleted istiod.
    assert_eq!(
        kinds,
        [
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
            "Service",
            "HorizontalPodAutoscaler",
            "Deployment",
            "ClusterRoleBinding",
            "ClusterRole",
            "ConfigMap",
            "ConfigMap",
            "ServiceAccount",
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
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
            "Service",
            "Namespace",
            "EnvoyFilter",
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
fn any_resource_policy_value_leaves_the_object_in_place_as_helm_does() {
    // Helm trims and lower-cases the value; `keep` keeps, and any other value drops the object
    // from the delete list too (pkg/action/resource_policy.go).
    for value in ["keep", " Keep ", "KEEP", "delete", ""] {
        let mut s = mesh(&[]);
        let istiod = s
            .helm_releases
            .iter_mut()
            .find(|r| r.name == "istiod-1-19")
            .unwrap();
        istiod.manifest = istiod.manifest.replace(
            "annotations: {helm.sh/resource-policy: keep}",
            &format!("annotations: {{helm.sh/resource-policy: \"{value}\"}}"),
        );
        assert!(istiod.manifest.contains(&format!("\"{value}\"")), "{value}");
        let p = plan(&s, "1-19");
        let istiod = p.releases().find(|r| r.name == "istiod-1-19").unwrap();
        let kept: Vec<&str> = istiod.kept.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(kept, ["istiod-1-19-user-config"], "policy {value:?}");
        assert!(
            istiod
                .delete
                .iter()
                .all(|o| o.name != "istiod-1-19-user-config"),
            "policy {value:?} must not delete"
        );
    }
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
                    // Helm 4's order here too: the webhooks first.
                    "ValidatingWebhookConfiguration istio-validator-1-18-istio-system".to_string(),
                    "MutatingWebhookConfiguration istio-sidecar-injector-1-18".to_string(),
                    "ClusterRoleBinding istiod-clusterrole-1-18-istio-system".to_string(),
                    "ClusterRole istiod-clusterrole-1-18-istio-system".to_string(),
                    "ConfigMap istio-system/istio-sidecar-injector-1-18".to_string(),
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

/// Issue 11 item 8: the base mesh as clouds leave it, each gateway Service with an address of
/// its own. Pruning 1-19 deletes the old gateways' Services, and with them 203.0.113.10 and
/// .11, where clients and DNS still point.
#[test]
fn an_address_no_remaining_service_holds_blocks_naming_it_and_the_new_gateways_address() {
    let p = plan_with(&mesh(&[]), "1-19", &PruneOptions::default());
    assert_eq!(
        reasons(&p),
        [
            (
                BlockerReason::AddressWouldDisappear,
                "service/istio-eastwest/istio-eastwestgateway-1-19".into()
            ),
            (
                BlockerReason::AddressWouldDisappear,
                "service/istio-ingress/istio-ingressgateway-1-19".into()
            ),
        ]
    );
    assert!(p.refused());
    let (m, f) = (message(&p, 1), fix(&p, 1));
    assert!(
        m.contains("removes address 203.0.113.10")
            && m.contains("istio-ingressgateway-1-20 (1-20) has 203.0.113.20"),
        "{m}"
    );
    assert!(
        f.contains("point DNS and clients at 203.0.113.20")
            && f.contains("kubectl rev-probe --gateway istio-ingress/istio-ingressgateway-1-20")
            && f.ends_with("kubectl rev-prune 1-19 --allow-address-change"),
        "{f}"
    );
}

#[test]
fn force_does_not_lift_an_address_blocker_and_allow_address_change_lifts_only_that() {
    let mut s = mesh(&[]);
    set_namespace_labels(&mut s, "bookinfo", &[("istio.io/rev", "1-19")]);
    let forced = PruneOptions {
        force: true,
        ..PruneOptions::default()
    };
    let p = plan_with(&s, "1-19", &forced);
    assert!(p.refused(), "--force alone does not cut an address");
    let unforceable: Vec<BlockerReason> = p
        .blockers
        .iter()
        .filter(|b| !b.forceable)
        .map(|b| b.reason())
        .collect();
    assert_eq!(unforceable, [BlockerReason::AddressWouldDisappear; 2]);

    let moved = plan_with(&s, "1-19", &clients_moved());
    assert_eq!(
        reasons(&moved),
        [(
            BlockerReason::NamespaceSelectsRevision,
            "namespace/bookinfo".into()
        )],
        "--allow-address-change answers for the addresses, not for the namespace"
    );
    assert!(moved.refused());
    let both = PruneOptions {
        force: true,
        ..clients_moved()
    };
    assert!(!plan_with(&s, "1-19", &both).refused());
}

#[test]
fn the_plan_shows_per_gateway_which_addresses_go_and_which_stay() {
    let p = plan_with(&mesh(&[]), "1-19", &PruneOptions::default());
    let shown: Vec<(String, Option<String>, bool, String, bool)> = p
        .addresses
        .iter()
        .flat_map(|g| {
            g.services.iter().flat_map(move |svc| {
                svc.addresses.iter().map(move |a| {
                    (
                        format!("{}/{}", g.namespace, g.gateway),
                        g.revision.clone(),
                        svc.deleted,
                        a.address.clone(),
                        a.survives,
                    )
                })
            })
        })
        .collect();
    let row = |gw: &str, rev: &str, deleted: bool, address: &str, survives: bool| {
        (
            gw.to_string(),
            Some(rev.to_string()),
            deleted,
            address.to_string(),
            survives,
        )
    };
    assert_eq!(
        shown,
        [
            row(
                "istio-eastwest/istio-eastwestgateway-1-19",
                "1-19",
                true,
                "203.0.113.11",
                false
            ),
            row(
                "istio-eastwest/istio-eastwestgateway-1-20",
                "1-20",
                false,
                "203.0.113.21",
                true
            ),
            row(
                "istio-ingress/istio-ingressgateway-1-19",
                "1-19",
                true,
                "203.0.113.10",
                false
            ),
            row(
                "istio-ingress/istio-ingressgateway-1-20",
                "1-20",
                false,
                "203.0.113.20",
                true
            ),
        ]
    );
}

#[test]
fn an_address_a_remaining_service_shares_stays_and_blocks_nothing() {
    let p = plan_with(
        &mesh(&["prune-stable-gateway-services.yaml"]),
        "1-19",
        &PruneOptions::default(),
    );
    assert_eq!(reasons(&p), []);
    let old_ingress = p
        .addresses
        .iter()
        .find(|g| g.gateway == "istio-ingressgateway-1-19")
        .unwrap();
    let address = &old_ingress.services[0].addresses[0];
    assert_eq!(address.address, "203.0.113.10");
    assert!(address.survives);
    assert_eq!(address.also_held_by, ["istio-ingress/istio-ingressgateway"]);
}

#[test]
fn external_ips_are_addresses_clients_use_too() {
    let mut s = mesh(&[]);
    let old = s
        .services
        .iter_mut()
        .find(|svc| svc.name == "istio-ingressgateway-1-19")
        .unwrap();
    old.load_balancer.clear();
    old.external_ips = vec!["198.51.100.7".into()];
    let p = plan_with(&s, "1-19", &PruneOptions::default());
    let ingress = p
        .blockers
        .iter()
        .position(|b| b.subject == "service/istio-ingress/istio-ingressgateway-1-19")
        .expect("an address blocker for the old ingress Service");
    assert!(message(&p, ingress).contains("removes address 198.51.100.7"));
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
        allow_address_change: true,
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
        allow_address_change: true,
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
            allow_address_change: true,
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

/// Without permission to read Secrets (Helm's records), nothing of OLD can be proved unused:
/// the plan refuses naming the verb and resource, and `--force` does not get past it.
#[test]
fn a_kind_that_could_not_be_read_blocks_prune_even_with_force() {
    let mut snapshot = mesh(&[]);
    snapshot.helm_releases.clear();
    snapshot.warnings.push(rev_shared::snapshot::ReadWarning {
        verb: "list".into(),
        resource: "secrets".into(),
        message: "secrets is forbidden: User \"dev\" cannot list resource \"secrets\"".into(),
    });
    let plan = plan_with(
        &snapshot,
        "1-19",
        &PruneOptions {
            force: true,
            ..clients_moved()
        },
    );
    let blocker = plan
        .blockers
        .iter()
        .find(|b| b.reason() == BlockerReason::CannotVerify)
        .expect("a cannot-verify blocker");
    assert!(
        !blocker.forceable,
        "--force must not get past what was not read"
    );
    let (text, _fix) = blocker_text(blocker, &plan);
    assert!(text.contains("list") && text.contains("secrets"), "{text}");
    assert!(plan.refused(), "refused even with --force");
}

// --- cluster singletons (DOMAIN §1) ----------------------------------------------------------

fn names_planned(plan: &PrunePlan) -> Vec<String> {
    plan.objects().map(ObjectKey::display).collect()
}

#[test]
fn helm_installed_cni_and_ztunnel_are_never_the_old_revisions() {
    let mut s = mesh(&[]);
    add_helm_releases_of(&mut s, "prune-helm-cni-and-ztunnel.yaml");
    for chart in ["cni", "ztunnel"] {
        let release = s.helm_releases.iter().find(|r| r.chart == chart).unwrap();
        assert_eq!(release.revision_value.as_deref(), Some("1-19"));
        assert_eq!(
            release_ownership(release),
            ReleaseOwnership::ClusterSingleton
        );
    }
    let p = plan_with(
        &s,
        "1-19",
        &PruneOptions {
            force: true,
            ..clients_moved()
        },
    );
    assert_eq!(
        release_steps(&p),
        [
            "istio-eastwest/istio-eastwestgateway-1-19",
            "istio-ingress/istio-ingressgateway-1-19",
            "istio-system/istiod-1-19",
        ],
        "neither istio-cni nor ztunnel is uninstalled"
    );
    let planned = names_planned(&p);
    assert!(
        planned
            .iter()
            .all(|n| !n.contains("cni") && !n.contains("ztunnel")),
        "{planned:?}"
    );
}

#[test]
fn ztunnel_on_the_old_revision_blocks_until_upgraded_to_the_new_one() {
    let mut s = mesh(&[]);
    add_helm_releases_of(&mut s, "prune-helm-cni-and-ztunnel.yaml");
    let p = plan(&s, "1-19");
    assert_eq!(
        reasons(&p),
        [(
            BlockerReason::ZtunnelUsesRevision,
            "helmrelease/istio-system/ztunnel".to_string()
        )],
        "the cni chart's revision value blocks nothing: it only labels"
    );
    assert!(p.refused());
    assert!(
        message(&p, 0).contains("1-19's istiod"),
        "{}",
        message(&p, 0)
    );
    let fix = fix(&p, 0);
    assert_eq!(
        fix,
        "helm upgrade ztunnel istio/ztunnel -n istio-system --version 1.19.3 --reuse-values --set revision=1-20"
    );
    // The fix, as Helm records it: the new revision value.
    let ztunnel = s
        .helm_releases
        .iter_mut()
        .find(|r| r.chart == "ztunnel")
        .unwrap();
    assert!(fix.ends_with("--set revision=1-20"));
    ztunnel.revision_value = Some("1-20".into());
    let p = plan(&s, "1-19");
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    assert!(!p.refused());
}

#[test]
fn istioctl_installed_cni_and_ztunnel_are_never_the_old_revisions() {
    let s = mesh(&["prune-istioctl-cni-and-ztunnel.yaml"]);
    assert_eq!(
        s.operator_objects
            .iter()
            .filter(
                |o| o.labels.get("istio.io/rev").map(String::as_str) == Some("1-19")
                    && o.labels.contains_key("operator.istio.io/component")
                    && o.helm_release.is_none()
            )
            .count(),
        3,
        "read as revision objects, like any istioctl component"
    );
    let p = plan(&s, "1-19");
    let planned = names_planned(&p);
    assert!(
        planned
            .iter()
            .all(|n| !n.contains("cni") && !n.contains("ztunnel")),
        "{planned:?}"
    );
    assert!(
        p.steps
            .iter()
            .all(|s| matches!(s, PruneStep::HelmRelease(_)))
    );
}

#[test]
fn an_istioctl_ztunnel_on_the_old_revision_blocks_until_it_names_the_new_one() {
    let mut s = mesh(&["prune-istioctl-ztunnel-on-old.yaml"]);
    let p = plan(&s, "1-19");
    assert_eq!(
        reasons(&p),
        [(
            BlockerReason::ZtunnelUsesRevision,
            "daemonset/istio-system/ztunnel".to_string()
        )]
    );
    assert!(p.refused(), "not forced past: it is in use");
    assert!(
        message(&p, 0).contains("1-19's istiod"),
        "{}",
        message(&p, 0)
    );
    assert!(fix(&p, 0).contains("--set revision=1-20"), "{}", fix(&p, 0));
    assert!(
        names_planned(&p).iter().all(|n| !n.contains("ztunnel")),
        "never deleted"
    );
    // Re-rendered with the new revision: nothing holds 1-19 any more.
    let ztunnel = s
        .workloads
        .iter_mut()
        .find(|w| w.name == "ztunnel")
        .unwrap();
    ztunnel
        .template_annotations
        .insert("istio.io/rev".into(), "1-20".into());
    assert_eq!(reasons(&plan(&s, "1-19")), []);
}

#[test]
fn a_live_cluster_singleton_is_left_alone_even_if_a_plan_lists_it() {
    let p = plan(&mesh(&[]), "1-19");
    let step = p
        .steps
        .iter()
        .find(|s| matches!(s, PruneStep::HelmRelease(r) if r.name == "istiod-1-19"))
        .unwrap();
    let labels: Labels = [
        ("istio.io/rev".to_string(), "1-19".to_string()),
        ("operator.istio.io/component".to_string(), "Cni".to_string()),
    ]
    .into();
    let annotations: Labels = [
        (
            "meta.helm.sh/release-name".to_string(),
            "istiod-1-19".to_string(),
        ),
        (
            "meta.helm.sh/release-namespace".to_string(),
            "istio-system".to_string(),
        ),
    ]
    .into();
    assert_eq!(
        live_object_not_owned(step, "1-19", &labels, &annotations).as_deref(),
        Some("a cluster singleton (istio-cni or ztunnel), upgraded in place")
    );
}

// --- config pinned to the old revision (DOMAIN §4) -------------------------------------------

/// Carries out a `kubectl label <resource> <name> -n <ns> istio.io/rev=<rev> --overwrite` fix on
/// the snapshot, as the API server would: the one object it names gets the new label.
fn apply_label_fix(snapshot: &mut Snapshot, fix: &str) {
    let words: Vec<&str> = fix.split_whitespace().collect();
    let [
        "kubectl",
        "label",
        resource,
        name,
        "-n",
        namespace,
        label,
        "--overwrite",
    ] = words[..]
    else {
        panic!("not a kubectl label fix: {fix}");
    };
    let revision = label
        .strip_prefix("istio.io/rev=")
        .expect("sets istio.io/rev");
    let (kind, group) = resource.split_once('.').expect("kind.group");
    let mut matched = 0;
    for c in snapshot.config_objects.iter_mut().filter(|c| {
        c.name == name
            && c.namespace == namespace
            && c.kind.to_ascii_lowercase() == kind
            && c.api_version.split('/').next() == Some(group)
    }) {
        c.revision = revision.to_string();
        matched += 1;
    }
    assert_eq!(matched, 1, "{fix} names exactly one object");
}

#[test]
fn config_pinned_to_the_old_revision_blocks_with_a_relabel_that_clears_it() {
    let mut s = mesh(&["prune-pinned-config.yaml"]);
    let p = plan(&s, "1-19");
    assert_eq!(
        reasons(&p),
        [
            (
                BlockerReason::ConfigPinnedToRevision,
                "authorizationpolicy.security.istio.io/bookinfo/deny-all".to_string()
            ),
            (
                BlockerReason::ConfigPinnedToRevision,
                "gateway.gateway.networking.k8s.io/bookinfo/bookinfo-gateway".to_string()
            ),
            (
                BlockerReason::ConfigPinnedToRevision,
                "peerauthentication.security.istio.io/istio-system/strict-mtls".to_string()
            ),
        ],
        "tag-labelled, other-revision and unlabelled config blocks nothing"
    );
    assert!(p.refused());
    assert_eq!(
        message(&p, 0),
        "AuthorizationPolicy labelled istio.io/rev=1-19: once 1-19 is gone no istiod loads it, so its rules (a DENY too) stop being enforced"
    );
    assert_eq!(
        fix(&p, 0),
        "kubectl label authorizationpolicy.security.istio.io deny-all -n bookinfo istio.io/rev=1-20 --overwrite"
    );
    let fixes: Vec<String> = (0..p.blockers.len()).map(|i| fix(&p, i)).collect();
    for fix in &fixes {
        apply_label_fix(&mut s, fix);
    }
    let p = plan(&s, "1-19");
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
    assert!(!p.refused());
}

#[test]
fn a_gateway_api_gateway_reaching_the_old_revision_through_a_tag_blocks() {
    let mut s = mesh(&["prune-pinned-config.yaml"]);
    // `default` moves back to 1-19: the Gateway labelled with it is 1-19's again; the Telemetry
    // labelled `default` still is no istiod's (Istio config resolves no tags).
    relabel_webhook(&mut s, "istio-revision-tag-default", "1-19");
    let p = plan(&s, "1-19");
    let subjects: Vec<String> = reasons(&p)
        .into_iter()
        .filter(|(r, _)| *r == BlockerReason::ConfigPinnedToRevision)
        .map(|(_, s)| s)
        .collect();
    assert!(
        subjects.contains(&"gateway.gateway.networking.k8s.io/bookinfo/edge".to_string()),
        "{subjects:?}"
    );
    assert!(!subjects.iter().any(|s| s.contains("access-logs")));
    let edge = p
        .blockers
        .iter()
        .position(|b| b.subject.ends_with("/edge"))
        .unwrap();
    assert!(message(&p, edge).contains("istio.io/rev=default, which points at 1-19"));
}

#[test]
fn a_config_kind_that_cannot_be_listed_blocks_as_unverifiable() {
    let mut s = mesh(&[]);
    s.warnings.push(rev_shared::snapshot::ReadWarning {
        verb: "list".into(),
        resource: "authorizationpolicies.security.istio.io".into(),
        message: "forbidden".into(),
    });
    let p = plan(&s, "1-19");
    assert_eq!(
        reasons(&p),
        [(
            BlockerReason::CannotVerify,
            "authorizationpolicies.security.istio.io".to_string()
        )]
    );
}

// --- Gateway API gateways and waypoints (DOMAIN §1) ------------------------------------------

#[test]
fn a_gateway_api_gateway_rendered_by_the_old_revision_blocks_with_its_relabel() {
    let mut s = mesh(&["prune-gateway-api-gateway.yaml"]);
    let a = analyze(&s);
    let edge = a.gateways.iter().find(|g| g.name == "edge-istio").unwrap();
    assert_eq!(edge.gateway_api.as_deref(), Some("edge"));
    assert_eq!(edge.revision.as_deref(), Some("1-19"), "its pod annotation");
    let p = plan(&s, "1-19");
    assert_eq!(
        reasons(&p),
        [(
            BlockerReason::GatewayApiGatewayOnRevision,
            "gateway.gateway.networking.k8s.io/istio-ingress/edge".to_string()
        )],
        "the Gateway's pods, not pods to restart"
    );
    let fix = fix(&p, 0);
    assert!(!fix.contains("rev-restart"), "{fix}");
    let command = fix.split("   (").next().unwrap();
    assert_eq!(
        command,
        "kubectl label gateway.gateway.networking.k8s.io edge -n istio-ingress istio.io/rev=1-20 --overwrite"
    );
    // The fix as the cluster carries it out: the unlabelled Gateway gets the label (so it is
    // now read as pinned config), then 1-20's istiod re-renders its pod.
    let label = command.split_whitespace().nth(6).unwrap();
    s.config_objects.push(rev_shared::snapshot::ConfigObject {
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: "Gateway".into(),
        namespace: "istio-ingress".into(),
        name: "edge".into(),
        revision: label.strip_prefix("istio.io/rev=").unwrap().into(),
    });
    for pod in s
        .pods
        .iter_mut()
        .filter(|p| p.name.starts_with("edge-istio"))
    {
        pod.sidecar = SidecarEvidence::RevAnnotation("1-20".into());
    }
    let p = plan(&s, "1-19");
    assert!(p.blockers.is_empty(), "{:#?}", p.blockers);
}

#[test]
fn a_gateway_api_gateway_labelled_for_the_old_revision_blocks_once() {
    let mut s = mesh(&["prune-gateway-api-gateway.yaml"]);
    s.config_objects.push(rev_shared::snapshot::ConfigObject {
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: "Gateway".into(),
        namespace: "istio-ingress".into(),
        name: "edge".into(),
        revision: "1-19".into(),
    });
    let p = plan(&s, "1-19");
    assert_eq!(
        reasons(&p),
        [(
            BlockerReason::ConfigPinnedToRevision,
            "gateway.gateway.networking.k8s.io/istio-ingress/edge".to_string()
        )],
        "its pods are that blocker's"
    );
}
