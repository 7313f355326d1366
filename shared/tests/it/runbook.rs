//! `kubectl rev-plan`'s runbook on fixtures: one cluster at each stage of the upgrade, the
//! status of every step, and the values carried over to the new releases.

use rev_shared::analysis::analyze;
use rev_shared::revision::RevisionName;
use rev_shared::runbook::{
    ClusterInput, RunbookRequest, StepKind, StepStatus, UpgradePlan, plan_upgrade,
};
use rev_shared::snapshot::Snapshot;

use crate::common::load;

const OLD: &str = "runbook-1-30-installed.yaml";
const NEW: &str = "runbook-1-31-installed.yaml";
const TAG_OLD: &str = "runbook-default-tag-1-30.yaml";
const TAG_NEW: &str = "runbook-default-tag-1-31.yaml";

fn request(version: Option<&str>) -> RunbookRequest {
    RunbookRequest {
        new: RevisionName::parse("1-31").expect("valid"),
        version: version.map(str::to_string),
        charts: "istio".into(),
        values_dir: "values".into(),
        context: None,
    }
}

fn plan_of(snapshot: &Snapshot, version: Option<&str>) -> UpgradePlan {
    let analysis = analyze(snapshot);
    plan_upgrade(&[ClusterInput {
        name: "test".into(),
        snapshot,
        analysis: &analysis,
        request: request(version),
    }])
}

fn plan(files: &[&str]) -> UpgradePlan {
    plan_of(&load(files), Some("1.31.0"))
}

/// Each step as `kind status`, the way a reader scans the runbook.
fn outline(rb: &UpgradePlan) -> Vec<String> {
    rb.steps
        .iter()
        .map(|s| format!("{:?} {}", s.kind, s.status.as_str()))
        .collect()
}

fn step(rb: &UpgradePlan, kind: StepKind) -> &rev_shared::runbook::Step {
    rb.steps
        .iter()
        .find(|s| s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} step in {:#?}", rb.steps))
}

#[test]
fn before_the_upgrade_installing_new_is_next_and_everything_else_waits() {
    let rb = plan(&[OLD, TAG_OLD, "runbook-apps-on-1-30.yaml"]);
    assert_eq!(rb.clusters[0].old, vec!["1-30"]);
    assert_eq!(
        outline(&rb),
        [
            "InstallControlPlane next",
            "InstallGateway pending",
            "Relabel pending",
            "Restart pending",
            "Restart pending",
            "Probe pending",
            "MoveDefaultTag pending",
            "Prune pending",
        ]
    );
    let install = step(&rb, StepKind::InstallControlPlane);
    assert!(install.commands[0].contains("helm template istio-base istio/base --version 1.31.0"));
    assert_eq!(
        install.commands[1],
        "helm upgrade --install istiod-1-31 istio/istiod --version 1.31.0 -n istio-system --wait -f values/istiod-1-31.yaml"
    );
    assert_eq!(
        step(&rb, StepKind::Relabel).commands,
        ["kubectl rev-relabel bookinfo shop 1-31"]
    );
}

#[test]
fn with_new_installed_the_relabel_is_next() {
    let rb = plan(&[OLD, NEW, TAG_OLD, "runbook-apps-on-1-30.yaml"]);
    assert_eq!(
        outline(&rb)[..4],
        [
            "InstallControlPlane done",
            "InstallGateway done",
            "Relabel next",
            "Restart pending"
        ]
    );
    assert_eq!(
        step(&rb, StepKind::InstallGateway).detail.as_deref(),
        Some("istio-ingressgateway-1-31 1/1 ready, address 203.0.113.31")
    );
}

#[test]
fn half_moved_names_the_namespace_left_and_counts_its_pods() {
    let rb = plan(&[OLD, NEW, TAG_OLD, "runbook-apps-half-moved.yaml"]);
    let relabel = step(&rb, StepKind::Relabel);
    assert_eq!(relabel.status, StepStatus::Next);
    assert_eq!(relabel.commands, ["kubectl rev-relabel shop 1-31"]);
    let restarts: Vec<_> = rb
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Restart)
        .map(|s| (s.title.as_str(), s.status.as_str(), s.detail.as_deref()))
        .collect();
    assert_eq!(
        restarts,
        [
            (
                "Restart the workloads of bookinfo onto 1-31",
                "done",
                Some("0 of 2 pod(s) to restart")
            ),
            (
                "Restart the workloads of shop onto 1-31",
                "pending",
                Some("2 of 2 pod(s) on 1-30 to restart once relabelled")
            ),
        ]
    );
}

#[test]
fn relabelled_but_not_restarted_makes_the_first_restart_next() {
    let rb = plan(&[OLD, NEW, TAG_OLD, "runbook-apps-relabelled.yaml"]);
    let first = rb.current().expect("work left");
    assert_eq!(first.kind, StepKind::Restart);
    assert_eq!(first.status, StepStatus::Next);
    assert_eq!(first.commands, ["kubectl rev-restart bookinfo"]);
    assert_eq!(first.detail.as_deref(), Some("2 of 2 pod(s) to restart"));
}

#[test]
fn all_moved_but_default_tag_on_old_makes_the_tag_move_next_and_the_prune_wait() {
    let rb = plan(&[OLD, NEW, TAG_OLD, "runbook-apps-on-1-31.yaml"]);
    assert_eq!(rb.current().map(|s| s.kind), Some(StepKind::Probe));
    assert_eq!(
        step(&rb, StepKind::MoveDefaultTag).status,
        StepStatus::Pending
    );
    assert_eq!(
        step(&rb, StepKind::MoveDefaultTag).commands,
        ["kubectl rev-relabel --tag default 1-31"]
    );
    assert_eq!(step(&rb, StepKind::Prune).status, StepStatus::Pending);
}

#[test]
fn all_moved_with_the_default_tag_moved_makes_the_prune_next() {
    let rb = plan(&[OLD, NEW, TAG_NEW, "runbook-apps-on-1-31.yaml"]);
    let prune = step(&rb, StepKind::Prune);
    assert_eq!(rb.current(), Some(prune));
    assert_eq!(prune.status, StepStatus::Next, "{prune:#?}");
    assert_eq!(prune.commands, ["kubectl rev-prune 1-30"]);
}

#[test]
fn later_steps_wait_on_the_frontier_instead_of_showing_their_own_blockers() {
    // The default tag moved, but shop was never relabelled nor restarted: its pods keep 1-30.
    let rb = plan(&[OLD, NEW, TAG_NEW, "runbook-apps-half-moved.yaml"]);
    let relabel = step(&rb, StepKind::Relabel);
    assert_eq!(relabel.status, StepStatus::Next);
    // Later steps only wait: the relabel is what stands in their way.
    assert_eq!(step(&rb, StepKind::Prune).status, StepStatus::Pending);
}

#[test]
fn pruned_cluster_reports_every_step_done() {
    let rb = plan(&[
        "runbook-1-31-only.yaml",
        TAG_NEW,
        "runbook-apps-on-1-31.yaml",
    ]);
    assert!(rb.clusters[0].old.is_empty());
    assert!(rb.is_done(), "{:#?}", rb.steps);
    assert_eq!(
        step(&rb, StepKind::Prune).detail.as_deref(),
        Some("1-31 is the only revision installed")
    );
}

#[test]
fn new_installed_but_not_ready_is_fixed_first_and_its_install_is_not_done() {
    let mut snapshot = load(&[OLD, NEW, TAG_OLD, "runbook-apps-on-1-30.yaml"]);
    for w in snapshot
        .workloads
        .iter_mut()
        .filter(|w| w.name == "istiod-1-31")
    {
        w.status.ready = 0;
        w.status.available = 0;
    }
    let rb = plan_of(&snapshot, Some("1.31.0"));
    let first = rb.current().expect("work left");
    assert_eq!(first.kind, StepKind::Fix);
    assert!(first.title.contains("istiod-not-ready"), "{first:#?}");
    let install = step(&rb, StepKind::InstallControlPlane);
    assert_eq!(install.status, StepStatus::Pending);
    // Nothing moves onto a revision whose istiod cannot inject.
    assert_eq!(step(&rb, StepKind::Relabel).status, StepStatus::Pending);
}

#[test]
fn findings_that_must_be_fixed_come_first_with_their_fix() {
    // bookinfo keeps istio-injection=enabled beside istio.io/rev: the legacy label wins.
    let mut snapshot = load(&[OLD, TAG_OLD, "runbook-apps-on-1-30.yaml"]);
    for ns in snapshot
        .namespaces
        .iter_mut()
        .filter(|n| n.name == "bookinfo")
    {
        ns.labels.insert("istio-injection".into(), "enabled".into());
    }
    let rb = plan_of(&snapshot, Some("1.31.0"));
    let first = &rb.steps[0];
    assert_eq!(first.kind, StepKind::Fix);
    assert_eq!(first.status, StepStatus::Next);
    assert!(
        first.title.contains("legacy-label-overrides-rev"),
        "{first:#?}"
    );
    assert!(
        first
            .detail
            .as_deref()
            .is_some_and(|h| h.contains("istio-injection")),
        "{first:#?}"
    );
}

#[test]
fn a_jump_beyond_the_skip_policy_is_blocked() {
    let snapshot = load(&[OLD, TAG_OLD, "runbook-apps-on-1-30.yaml"]);
    let rb = plan_of(&snapshot, Some("1.34.0"));
    let first = rb.current().expect("work left");
    assert_eq!(first.kind, StepKind::Fix);
    assert!(
        matches!(first.status, StepStatus::Blocked { .. }),
        "{first:#?}"
    );
}

#[test]
fn values_carry_over_keeps_user_values_and_changes_revision_tag_and_image() {
    let rb = plan(&[OLD, TAG_OLD, "runbook-apps-on-1-30.yaml"]);
    let istiod = rb
        .values()
        .find(|v| v.release == "istiod-1-31")
        .expect("istiod values");
    assert_eq!(istiod.from_release, "istiod-1-30");
    let v = &istiod.values;
    assert_eq!(v["revision"], "1-31");
    assert_eq!(
        v["pilot"]["resources"]["requests"]["cpu"], "750m",
        "user value kept"
    );
    assert_eq!(v["meshConfig"]["accessLogFile"], "/dev/stdout");
    assert_eq!(
        v["global"]["tag"], "1.31.0-distroless",
        "version changed, flavour kept"
    );
    assert_eq!(
        v["istiodRemote"]["injectionURL"],
        "https://injector.example:9443/inject/1-31"
    );
    let changed: Vec<(&str, Option<&str>, Option<&str>)> = istiod
        .changes
        .iter()
        .map(|c| (c.path.as_str(), c.old.as_deref(), c.new.as_deref()))
        .collect();
    assert_eq!(
        changed,
        [
            ("revision", Some("\"1-30\""), Some("\"1-31\"")),
            (
                "global.tag",
                Some("\"1.30.0-distroless\""),
                Some("\"1.31.0-distroless\"")
            ),
            (
                "istiodRemote.injectionURL",
                Some("\"https://injector.example:9443/inject/1-30\""),
                Some("\"https://injector.example:9443/inject/1-31\"")
            ),
        ]
    );
    let gateway = rb
        .values()
        .find(|v| v.chart == "gateway")
        .expect("gateway values");
    assert_eq!(gateway.release, "istio-ingressgateway-1-31");
    assert_eq!(gateway.namespace, "istio-ingress");
    assert_eq!(gateway.values["labels"]["istio"], "ingressgateway");
    assert_eq!(gateway.values["revision"], "1-31");
}

#[test]
fn without_a_version_the_image_tag_is_dropped_and_the_script_asks_for_it() {
    let snapshot = load(&[OLD, TAG_OLD, "runbook-apps-on-1-30.yaml"]);
    let rb = plan_of(&snapshot, None);
    let istiod = rb
        .values()
        .find(|v| v.chart == "istiod")
        .expect("istiod values");
    assert!(
        istiod.values["global"].get("tag").is_none(),
        "{:#?}",
        istiod.values
    );
    assert_eq!(istiod.values["global"]["hub"], "docker.io/istio");
    let install = step(&rb, StepKind::InstallControlPlane);
    assert!(
        install.commands[1].contains("--version \"${ISTIO_VERSION}\""),
        "{install:#?}"
    );
}

fn mesh(clusters: &[(&str, Vec<&str>)]) -> UpgradePlan {
    let snapshots: Vec<Snapshot> = clusters.iter().map(|(_, files)| load(files)).collect();
    let analyses: Vec<_> = snapshots.iter().map(analyze).collect();
    let inputs: Vec<ClusterInput<'_>> = clusters
        .iter()
        .zip(snapshots.iter().zip(&analyses))
        .map(|((name, _), (snapshot, analysis))| ClusterInput {
            name: name.to_string(),
            snapshot,
            analysis,
            request: RunbookRequest {
                context: Some(name.to_string()),
                ..request(Some("1.31.0"))
            },
        })
        .collect();
    plan_upgrade(&inputs)
}

fn position(rb: &UpgradePlan, cluster: &str, kind: StepKind) -> usize {
    rb.steps
        .iter()
        .position(|s| s.cluster == cluster && s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} step of {cluster}"))
}

const REMOTE: &str = "runbook-remote-on-1-30.yaml";

#[test]
fn primary_remote_installs_the_primary_first_and_prunes_it_last() {
    let rb = mesh(&[
        ("remote", vec![REMOTE]),
        ("primary", vec![OLD, TAG_OLD, "runbook-apps-on-1-30.yaml"]),
    ]);
    assert_eq!(rb.model, rev_shared::runbook::MeshModel::PrimaryRemote);
    let roles: Vec<_> = rb
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("remote", rev_shared::runbook::ClusterRole::Remote),
            ("primary", rev_shared::runbook::ClusterRole::Primary)
        ]
    );
    // The remote's injectors calling the primary's istiod is the model, not a finding to fix.
    assert!(
        rb.steps.iter().all(|s| s.kind != StepKind::Fix),
        "{:#?}",
        rb.steps
    );
    let primary_install = position(&rb, "primary", StepKind::InstallControlPlane);
    let remote_install = position(&rb, "remote", StepKind::InstallControlPlane);
    let remote_relabel = position(&rb, "remote", StepKind::Relabel);
    let remote_prune = position(&rb, "remote", StepKind::Prune);
    let primary_prune = position(&rb, "primary", StepKind::Prune);
    assert!(primary_install < remote_install, "{:#?}", rb.steps);
    assert!(remote_install < remote_relabel);
    assert!(
        remote_prune < primary_prune,
        "the primary's 1-30 serves the remote until it left"
    );
    assert_eq!(rb.current().map(|s| s.cluster.as_str()), Some("primary"));
    assert_eq!(
        rb.steps[remote_relabel].commands,
        ["kubectl rev-relabel payments 1-31 --context remote"]
    );
}

#[test]
fn primary_remote_with_the_primary_moved_waits_on_the_remote_before_pruning() {
    let rb = mesh(&[
        (
            "primary",
            vec![OLD, NEW, TAG_NEW, "runbook-apps-on-1-31.yaml"],
        ),
        ("remote", vec![REMOTE, "runbook-remote-1-31-installed.yaml"]),
    ]);
    let now = rb.current().expect("work left");
    assert_eq!(
        (now.cluster.as_str(), now.kind),
        ("remote", StepKind::Relabel)
    );
    assert_eq!(now.status, StepStatus::Next);
    let primary_prune = &rb.steps[position(&rb, "primary", StepKind::Prune)];
    assert_eq!(primary_prune.status, StepStatus::Pending);
    assert_eq!(
        rb.steps[position(&rb, "remote", StepKind::InstallControlPlane)].status,
        StepStatus::Done
    );
}

#[test]
fn multi_primary_upgrades_one_cluster_after_the_other() {
    let files = vec![OLD, TAG_OLD, "runbook-apps-on-1-30.yaml"];
    let rb = mesh(&[("east", files.clone()), ("west", files)]);
    assert_eq!(rb.model, rev_shared::runbook::MeshModel::MultiPrimary);
    let last_east = rb
        .steps
        .iter()
        .rposition(|s| s.cluster == "east")
        .expect("east");
    let first_west = rb
        .steps
        .iter()
        .position(|s| s.cluster == "west")
        .expect("west");
    assert!(last_east < first_west, "{:#?}", rb.steps);
    assert!(rb.steps[first_west].commands[0].contains("--kube-context west"));
}
