//! Fixture tests of the prune across clusters (pure): a primary that moved everything to 1-31
//! (runbook fixtures) and its remote, whose 1-30 injectors call the primary's istiod-1-30.

use crate::common::load;

use rev_shared::analysis::analyze;
use rev_shared::output::prune_clusters::{render_cross_blockers, render_remotes_warning};
use rev_shared::plan::prune::{Blocker, BlockerReason, PruneOptions, PruneStep};
use rev_shared::plan::prune_clusters::{
    ClusterRead, ClustersPrunePlan, plan_prune_clusters, remotes_may_depend,
};
use rev_shared::revision::RevisionName;
use rev_shared::runbook::ClusterRole;
use rev_shared::snapshot::Snapshot;

/// The primary after guide steps 2-5: istiod-1-30 still installed, nothing uses it here.
const PRIMARY: &[&str] = &[
    "runbook-1-30-installed.yaml",
    "runbook-1-31-installed.yaml",
    "runbook-default-tag-1-31.yaml",
    "runbook-apps-on-1-31.yaml",
    "prune-remote-secret.yaml",
];
/// The remote with both injectors; namespace payments, its pods and its default tag on 1-30.
const REMOTE_ON_OLD: &[&str] = &[
    "runbook-remote-on-1-30.yaml",
    "runbook-remote-1-31-installed.yaml",
];
const REMOTE_MOVED: &[&str] = &["prune-remote-moved-to-1-31.yaml"];

fn old() -> RevisionName {
    RevisionName::parse("1-30").expect("revision")
}

fn options() -> PruneOptions {
    PruneOptions {
        force: false,
        allow_address_change: false,
        helm_binary: Some("helm".into()),
    }
}

fn plan(clusters: &[(&str, &[&str])]) -> ClustersPrunePlan {
    let snapshots: Vec<Snapshot> = clusters.iter().map(|(_, files)| load(files)).collect();
    let analyses: Vec<_> = snapshots.iter().map(analyze).collect();
    let reads: Vec<ClusterRead<'_>> = clusters
        .iter()
        .zip(snapshots.iter().zip(&analyses))
        .map(|((name, _), (snapshot, analysis))| ClusterRead {
            name,
            snapshot,
            analysis,
        })
        .collect();
    plan_prune_clusters(&reads, &old(), &options()).expect("plans")
}

fn part<'a>(
    plan: &'a ClustersPrunePlan,
    cluster: &str,
) -> &'a rev_shared::plan::prune_clusters::ClusterPrune {
    plan.clusters
        .iter()
        .find(|c| c.cluster == cluster)
        .unwrap_or_else(|| panic!("no part for {cluster}"))
}

#[test]
fn the_primary_alone_would_prune_1_30() {
    let plan = plan(&[("primary", PRIMARY)]);
    let primary = part(&plan, "primary");
    assert_eq!(primary.role, ClusterRole::Primary);
    assert!(
        primary.plan.blockers.is_empty(),
        "{:#?}",
        primary.plan.blockers
    );
    assert!(!plan.refused());
    assert!(
        primary.plan.releases().any(|r| r.name == "istiod-1-30"),
        "{:#?}",
        primary.plan.steps
    );
}

#[test]
fn a_remote_still_on_1_30_blocks_the_primarys_prune_naming_the_remote_and_its_namespace() {
    let plan = plan(&[("primary", PRIMARY), ("remote", REMOTE_ON_OLD)]);
    assert!(
        plan.refused(),
        "the primary's istiod-1-30 still serves the remote"
    );
    assert!(part(&plan, "primary").plan.blockers.is_empty());
    assert_eq!(part(&plan, "remote").role, ClusterRole::Remote);

    let payments = plan
        .cross_cluster_blockers
        .iter()
        .find(|b| b.blocker.reason() == BlockerReason::NamespaceSelectsRevision)
        .expect("the remote's namespace blocks the primary");
    assert_eq!(payments.primary, "primary");
    assert_eq!(payments.remote, "remote");
    assert!(matches!(
        &payments.blocker.blocker,
        Blocker::NamespaceSelectsRevision { namespace, .. } if namespace == "payments"
    ));
    let reasons: Vec<BlockerReason> = plan
        .cross_cluster_blockers
        .iter()
        .map(|b| b.blocker.reason())
        .collect();
    assert!(
        reasons.contains(&BlockerReason::PodsRunRevision),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&BlockerReason::TagPointsAtRevision),
        "{reasons:?}"
    );

    let text = render_cross_blockers(&plan);
    assert!(
        text.contains("context remote: namespace/payments blocks removing 1-30 on context primary"),
        "{text}"
    );
    assert!(
        text.contains("fix (with --context remote): kubectl rev-relabel payments 1-31"),
        "{text}"
    );
}

#[test]
fn once_the_remote_moved_both_clusters_are_pruned_the_remote_first() {
    let plan = plan(&[("primary", PRIMARY), ("remote", REMOTE_MOVED)]);
    assert!(
        !plan.refused(),
        "{:#?}",
        plan.blockers().collect::<Vec<_>>()
    );
    assert!(plan.cross_cluster_blockers.is_empty());
    let order: Vec<&str> = plan.clusters.iter().map(|c| c.cluster.as_str()).collect();
    assert_eq!(order, ["remote", "primary"], "the remote leaves 1-30 first");
    // The remote's 1-30 injector goes with the primary's istiod-1-30: left behind it would
    // call an istiod that is gone.
    let remote_objects: Vec<String> = part(&plan, "remote")
        .plan
        .objects()
        .map(|o| format!("{}/{}", o.kind, o.name))
        .collect();
    assert!(
        remote_objects.contains(&"MutatingWebhookConfiguration/istio-sidecar-injector-1-30".into()),
        "{remote_objects:?}"
    );
    assert!(
        part(&plan, "primary")
            .plan
            .steps
            .iter()
            .any(|s| matches!(s, PruneStep::HelmRelease(r) if r.name == "istiod-1-30"))
    );
}

#[test]
fn a_remote_does_not_block_a_primary_that_never_ran_its_revision() {
    // A second primary (multi-primary) with its own istiod-1-30: the remote's use of 1-30 is
    // put on every primary that runs istiod-1-30, and on no cluster without one.
    let plan = plan(&[
        ("east", PRIMARY),
        ("west", &["runbook-1-31-only.yaml"]),
        ("remote", REMOTE_ON_OLD),
    ]);
    assert!(
        plan.cross_cluster_blockers
            .iter()
            .all(|b| b.primary == "east"),
        "{:#?}",
        plan.cross_cluster_blockers
    );
    assert!(!plan.cross_cluster_blockers.is_empty());
}

#[test]
fn a_single_primary_with_remote_secrets_warns_and_names_the_remote() {
    let snapshot = load(PRIMARY);
    let analysis = analyze(&snapshot);
    let warning = remotes_may_depend(&snapshot, &analysis, &old()).expect("warns");
    assert_eq!(warning.istiod, "istio-system/istiod-1-30");
    let clusters: Vec<&str> = warning
        .remote_secrets
        .iter()
        .map(|s| s.cluster.as_str())
        .collect();
    assert_eq!(clusters, ["remote"]);
    let text = render_remotes_warning(&warning, "primary");
    assert!(
        text.contains("remote (secret istio-system/istio-remote-secret-remote)"),
        "{text}"
    );
    assert!(
        text.contains("kubectl rev-prune 1-30 --context primary --context <their context>"),
        "{text}"
    );
}

#[test]
fn no_warning_without_remote_secrets_or_without_the_revisions_istiod() {
    let without_secret = load(&PRIMARY[..PRIMARY.len() - 1]);
    assert_eq!(
        remotes_may_depend(&without_secret, &analyze(&without_secret), &old()),
        None
    );
    // The remote's own view: 1-30 has no istiod there, so nothing of it serves others.
    let remote = load(REMOTE_ON_OLD);
    assert_eq!(remotes_may_depend(&remote, &analyze(&remote), &old()), None);
}

#[test]
fn a_remote_relabels_onto_a_revision_whose_istiod_runs_on_the_primary() {
    use rev_shared::plan::relabel::{Targets, plan_relabel};
    let remote = load(REMOTE_ON_OLD);
    let analysis = analyze(&remote);
    let new = RevisionName::parse("1-31").expect("revision");
    let plan = plan_relabel(
        &remote,
        &analysis,
        &Targets::Names(vec!["payments".into()]),
        &new,
    )
    .expect("plans");
    assert!(plan.blockers.is_empty(), "{:#?}", plan.blockers);
    // Without the 1-31 injector there is nothing to move to, remote or not.
    let without = load(&REMOTE_ON_OLD[..1]);
    let refused = plan_relabel(
        &without,
        &analyze(&without),
        &Targets::Names(vec!["payments".into()]),
        &new,
    )
    .expect("plans");
    assert!(!refused.blockers.is_empty());
}

/// The plan as people read it (`rev-prune 1-30 --context primary --context remote`, planned
/// without a cluster): each part under its context, remotes first, and the remote's use of
/// 1-30 named again as what holds the primary back.
fn rendered(plan: ClustersPrunePlan) -> String {
    use rev_shared::command::prune::Prune;
    use rev_shared::command::prune_clusters::PruneClusters;
    use rev_shared::driver::Mutation;
    use rev_shared::exec::prune::PruneSettings;
    let prunes = plan
        .clusters
        .iter()
        .map(|part| Prune {
            plan: part.plan.clone(),
            live: None,
            options: options(),
            settings: PruneSettings {
                dry_run: rev_shared::flags::DryRun::Client,
                timeout: std::time::Duration::from_secs(300),
                connection: Default::default(),
            },
        })
        .collect();
    let command = PruneClusters {
        plan,
        prunes,
        break_lock: false,
    };
    command.render_plan(false)
}

#[test]
fn the_refused_plan_names_each_cluster_and_what_holds_the_primary_back() {
    let plan = plan(&[("primary", PRIMARY), ("remote", REMOTE_ON_OLD)]);
    insta::assert_snapshot!(rendered(plan));
}

#[test]
fn the_plan_once_the_remote_moved_says_which_cluster_each_deletion_is_on() {
    let plan = plan(&[("primary", PRIMARY), ("remote", REMOTE_MOVED)]);
    insta::assert_snapshot!(rendered(plan));
}
