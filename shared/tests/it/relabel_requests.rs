//! Mocked-API tests pinning the exact requests of relabel's executor: one merge patch that sets
//! istio.io/rev and removes istio-injection, guarded by resourceVersion; a 409 leads to a re-read
//! and a re-planned patch; server dry-run sends dryRun=All.

use http::StatusCode;
use rev_shared::client::Cluster;
use rev_shared::command::relabel::Relabel;
use rev_shared::driver::drive;
use rev_shared::exec::{CONFLICT_ATTEMPTS, patch_params, relabel};
use rev_shared::flags::{DryRun, MutationFlags};
use rev_shared::output::io::Io;
use rev_shared::plan::relabel::{ChangeKind, NamespaceChange};
use serde_json::{Value, json};
use std::collections::BTreeMap;

use crate::common::{Responder, Seen, mock, with_free_leases};

fn cluster(client: kube::Client) -> Cluster {
    Cluster::from_client(client, "https://mock")
}

async fn apply(
    client: kube::Client,
    dry_run: DryRun,
) -> (Vec<relabel::ChangeOutcome>, Option<rev_shared::RevError>) {
    apply_change(client, change(), dry_run).await
}

async fn apply_change(
    client: kube::Client,
    change: NamespaceChange,
    dry_run: DryRun,
) -> (Vec<relabel::ChangeOutcome>, Option<rev_shared::RevError>) {
    relabel::apply(
        &cluster(client),
        &[change],
        &patch_params("kubectl-rev-relabel", dry_run),
        || false,
    )
    .await
}

fn namespace(rv: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bookinfo", "resourceVersion": rv, "labels": labels}})
}

fn change() -> NamespaceChange {
    let labels = |rev: &str, inj: Option<&str>| -> BTreeMap<String, Option<String>> {
        [
            ("istio.io/rev".to_string(), Some(rev.to_string())),
            ("istio-injection".to_string(), inj.map(str::to_string)),
        ]
        .into()
    };
    NamespaceChange {
        namespace: "bookinfo".into(),
        kind: ChangeKind::Relabel,
        resource_version: Some("100".into()),
        before: labels("1-19", Some("enabled")),
        after: labels("1-20", None),
        revision_after: Some("1-20".into()),
        restarts: vec![],
        pods_to_restart: 0,
        ignored_pod_labels: vec![],
        pinned_config: vec![],
    }
}

#[tokio::test]
async fn one_guarded_merge_patch_sets_and_removes_in_the_same_request() {
    let (client, seen) = mock(Box::new(|_, _| {
        (
            StatusCode::OK,
            namespace("101", json!({"istio.io/rev": "1-20"})),
        )
    }));
    let (done, err) = apply(client, DryRun::None).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(done.len(), 1);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "exactly one request: {seen:?}");
    let req = &seen[0];
    assert_eq!(req.method, "PATCH");
    assert!(
        req.uri.starts_with("/api/v1/namespaces/bookinfo?"),
        "{}",
        req.uri
    );
    assert!(req.uri.contains("fieldManager=kubectl-rev-relabel"));
    assert!(!req.uri.contains("dryRun"));
    assert_eq!(req.content_type, "application/merge-patch+json");
    assert_eq!(req.body["metadata"]["resourceVersion"], "100");
    assert_eq!(req.body["metadata"]["labels"]["istio.io/rev"], "1-20");
    assert_eq!(
        req.body["metadata"]["labels"]["istio-injection"],
        Value::Null
    );
    assert!(
        req.body["metadata"]["annotations"]["relabel.kubectl-rev.dev/previous-labels"].is_string()
    );
}

#[tokio::test]
async fn conflict_rereads_and_replans_from_the_fresh_object() {
    let (client, seen) = mock(Box::new(|req, n| match (req.method.as_str(), n) {
        ("PATCH", 0) => (
            StatusCode::CONFLICT,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409, "reason": "Conflict", "message": "the object has been modified"}),
        ),
        // Someone added a team label and removed the legacy label meanwhile.
        ("GET", _) => (
            StatusCode::OK,
            namespace("205", json!({"istio.io/rev": "1-19", "team": "books"})),
        ),
        _ => (
            StatusCode::OK,
            namespace("206", json!({"istio.io/rev": "1-20", "team": "books"})),
        ),
    }));
    let (done, err) = apply(client, DryRun::None).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(done.len(), 1);
    let seen = seen.lock().unwrap();
    let methods: Vec<_> = seen.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods, ["PATCH", "GET", "PATCH"]);
    let retry = &seen[2].body;
    assert_eq!(
        retry["metadata"]["resourceVersion"], "205",
        "guarded by the fresh version"
    );
    let recorded: Value = serde_json::from_str(
        retry["metadata"]["annotations"]["relabel.kubectl-rev.dev/previous-labels"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        recorded["istio-injection"],
        Value::Null,
        "re-planned: the legacy label was already gone"
    );
    assert!(
        retry["metadata"]["labels"].get("team").is_none(),
        "labels outside the plan are not touched"
    );
}

#[tokio::test]
async fn conflicts_are_bounded() {
    let (client, seen) = mock(Box::new(|req, _| match req.method.as_str() {
        "PATCH" => (
            StatusCode::CONFLICT,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409, "reason": "Conflict", "message": "modified"}),
        ),
        _ => (
            StatusCode::OK,
            namespace("300", json!({"istio.io/rev": "1-19"})),
        ),
    }));
    let (done, err) = apply(client, DryRun::None).await;
    assert!(done.is_empty());
    let err = err.expect("gives up");
    assert!(err.to_string().contains("kept changing"), "{err}");
    let patches = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "PATCH")
        .count();
    assert_eq!(patches, CONFLICT_ATTEMPTS, "the first try and the re-plans");
}

#[tokio::test]
async fn server_dry_run_sends_dry_run_all() {
    let (client, seen) = mock(Box::new(|_, _| {
        (StatusCode::OK, namespace("100", json!({})))
    }));
    let (done, _) = apply(client, DryRun::Server).await;
    assert_eq!(done[0].result, relabel::ChangeResult::ServerDryRun);
    assert!(seen.lock().unwrap()[0].uri.contains("dryRun=All"));
}

#[tokio::test]
async fn forbidden_patch_names_verb_and_resource() {
    let (client, _) = mock(Box::new(|_, _| {
        (
            StatusCode::FORBIDDEN,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403, "reason": "Forbidden", "message": "namespaces \"bookinfo\" is forbidden: User \"jane\" cannot patch resource \"namespaces\""}),
        )
    }));
    let (done, err) = apply(client, DryRun::None).await;
    assert!(done.is_empty());
    let err = err.unwrap();
    let (text, hint) = (err.to_string(), err.hint().unwrap_or_default());
    assert!(text.contains("cannot patch namespaces"), "{text}");
    assert!(
        hint.contains("kubectl auth can-i patch namespaces"),
        "{hint}"
    );
}

fn fixture_plan(target: &str) -> rev_shared::plan::relabel::RelabelPlan {
    use rev_shared::plan::relabel::{Targets, plan_relabel};
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/");
    let text = [
        "control-plane-1-19-and-1-20.yaml",
        "injection-precedence.yaml",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(format!("{root}{f}")).unwrap())
    .collect::<Vec<_>>()
    .join("\n---\n");
    let snapshot = rev_shared::snapshot::dump::read_dump_str(&text).unwrap();
    let analysis = rev_shared::analysis::analyze(&snapshot);
    let target = rev_shared::revision::RevisionName::parse(target).unwrap();
    plan_relabel(
        &snapshot,
        &analysis,
        &Targets::Names(vec!["legacy-wins".into()]),
        &target,
    )
    .unwrap()
}

fn any_ok() -> Responder {
    with_free_leases(Box::new(|_, _| (StatusCode::OK, namespace("2", json!({})))))
}

fn flags(dry_run: DryRun, yes: bool) -> MutationFlags {
    MutationFlags {
        yes,
        dry_run,
        ..Default::default()
    }
}

/// Runs the plan through the one driver with captured output (no terminal, like CI).
async fn drive_plan(
    client: kube::Client,
    target: &str,
    flags: &MutationFlags,
) -> Result<(), rev_shared::RevError> {
    let cluster = cluster(client);
    let command = Relabel {
        cluster: Some(&cluster),
        plan: fixture_plan(target),
        force: false,
        field_manager: "kubectl-rev-relabel".into(),
    };
    let mut io = Io::capture(Box::new(std::io::sink()), Box::new(std::io::sink()));
    drive(&command, flags, &mut io).await
}

#[tokio::test]
async fn refused_preflight_sends_nothing() {
    let (client, seen) = mock(any_ok());
    let result = drive_plan(client, "1-21", &flags(DryRun::None, true)).await;
    assert!(matches!(result, Err(rev_shared::RevError::Refused(_))));
    assert!(seen.lock().unwrap().is_empty(), "no request at all");
}

#[tokio::test]
async fn client_dry_run_sends_nothing() {
    let (client, seen) = mock(any_ok());
    drive_plan(client, "1-20", &flags(DryRun::Client, false))
        .await
        .expect("a client dry run succeeds without asking");
    assert!(seen.lock().unwrap().is_empty(), "no request at all");
}

#[tokio::test]
async fn no_terminal_and_no_yes_refuses_and_sends_nothing() {
    let (client, seen) = mock(any_ok());
    let result = drive_plan(client, "1-20", &flags(DryRun::None, false)).await;
    assert!(
        matches!(
            result,
            Err(rev_shared::RevError::Refused(
                rev_shared::error::Refusal::NoTerminal
            ))
        ),
        "{result:?}"
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn confirmed_plan_sends_one_patch_per_namespace() {
    let (client, seen) = mock(any_ok());
    drive_plan(client, "1-20", &flags(DryRun::None, true))
        .await
        .expect("relabelled");
    let seen = seen.lock().unwrap();
    let is_lease = |s: &&Seen| s.path.contains("/leases");
    let changes: Vec<&Seen> = seen.iter().filter(|s| !is_lease(s)).collect();
    assert_eq!(
        changes
            .iter()
            .map(|s| s.method.as_str())
            .collect::<Vec<_>>(),
        ["PATCH"]
    );
    assert!(
        changes[0]
            .uri
            .starts_with("/api/v1/namespaces/legacy-wins?")
    );

    // The namespace's run lock is taken before the patch and given back after it, and the
    // cluster's lock is checked (a prune must not be running).
    let lease = "/apis/coordination.k8s.io/v1/namespaces/legacy-wins/leases/kubectl-rev";
    let patch_at = seen
        .iter()
        .position(|s| s.method == "PATCH")
        .expect("patched");
    let created = seen
        .iter()
        .position(|s| s.method == "POST" && s.path == lease.trim_end_matches("/kubectl-rev"))
        .expect("the lease is created");
    let released = seen
        .iter()
        .rposition(|s| s.method == "PUT" && s.path == lease)
        .expect("the lease is given back");
    assert!(created < patch_at && released > patch_at, "{seen:?}");
    assert!(seen.iter().any(|s| s.method == "GET"
        && s.path
            == "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kubectl-rev-cluster"));
}

/// Answers a GET of the namespace's Lease as held by another run, renewed just now.
fn held_by_another_run() -> Responder {
    let free = any_ok();
    Box::new(move |seen: &Seen, n| {
        if seen.method == "GET"
            && seen
                .path
                .ends_with("/namespaces/legacy-wins/leases/kubectl-rev")
        {
            let now = jiff::Timestamp::now().to_string();
            return (
                StatusCode::OK,
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": "kubectl-rev", "namespace": "legacy-wins", "resourceVersion": "7"},
                       "spec": {"holderIdentity": "rev-restart by bob@ci (pid 7)",
                                "leaseDurationSeconds": 30, "renewTime": now}}),
            );
        }
        free(seen, n)
    })
}

#[tokio::test]
async fn a_namespace_another_run_holds_is_refused_naming_the_holder_and_nothing_is_patched() {
    let (client, seen) = mock(held_by_another_run());
    let result = drive_plan(client, "1-20", &flags(DryRun::None, true)).await;
    let err = result.expect_err("locked");
    assert!(
        err.to_string()
            .contains("another run holds namespace legacy-wins: rev-restart by bob@ci (pid 7)"),
        "{err}"
    );
    assert_eq!(err.exit_code(), rev_shared::error::exit::FAILURE);
    assert!(err.hint().unwrap_or_default().contains("--break-lock"));
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter().all(|s| s.method == "GET"),
        "nothing written: {seen:?}"
    );
}

#[tokio::test]
async fn break_lock_takes_over_with_the_resource_version_read() {
    let (client, seen) = mock(held_by_another_run());
    let mut flags = flags(DryRun::None, true);
    flags.break_lock = true;
    drive_plan(client, "1-20", &flags)
        .await
        .expect("relabelled");
    let seen = seen.lock().unwrap();
    let take_over = seen
        .iter()
        .find(|s| s.method == "PUT" && s.path.ends_with("/leases/kubectl-rev"))
        .expect("the lease is taken over");
    assert_eq!(take_over.body["metadata"]["resourceVersion"], "7");
    assert_ne!(
        take_over.body["spec"]["holderIdentity"],
        "rev-restart by bob@ci (pid 7)"
    );
    assert!(seen.iter().any(|s| s.method == "PATCH"));
}

fn webhook_configuration(name: &str, labels: Value, url: &str) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
           "metadata": {"name": name, "resourceVersion": "1", "labels": labels},
           "webhooks": [{"name": "rev.namespace.sidecar-injector.istio.io",
                         "clientConfig": {"url": url}, "admissionReviewVersions": ["v1"],
                         "sideEffects": "None"}]})
}

fn tag_service(resource_version: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "istiod-revision-tag-prod", "namespace": "istio-system",
                        "resourceVersion": resource_version,
                        "labels": {"app": "istiod", "istio.io/rev": "1-19", "istio.io/tag": "prod"}},
           "spec": {"selector": {"app": "istiod", "istio.io/rev": "1-19"},
                    "ports": [{"name": "grpc-xds", "port": 15010}]}})
}

/// A tag retarget moves the tag's Service with its webhooks (Istio >= 1.28: istiod's tag watcher
/// reads both): read, then a replace guarded by the resourceVersion read, with the label and the
/// selector on the new revision; a concurrent edit (409) means read and transform again.
#[tokio::test]
async fn retargeting_a_tag_replaces_its_service_guarded_by_resource_version() {
    use rev_shared::plan::relabel::plan_tag;
    use rev_shared::revision::RevisionName;
    let snapshot = crate::common::load(&[
        "control-plane-1-19-and-1-20.yaml",
        "revision-tags.yaml",
        "revision-tag-services.yaml",
    ]);
    let analysis = rev_shared::analysis::analyze(&snapshot);
    let target = RevisionName::parse("1-20").unwrap();
    let plan = plan_tag(&snapshot, &analysis, "prod", &target).unwrap();
    // The webhooks already point at 1-20; the Service left behind is still work.
    assert!(!plan.unchanged);
    assert_eq!(
        plan.service,
        Some(("istio-system".into(), "istiod-revision-tag-prod".into()))
    );

    let service_path = "/api/v1/namespaces/istio-system/services/istiod-revision-tag-prod";
    let (client, seen) = mock(retarget_api(service_path, move |path, n| {
        if path == service_path {
            tag_service(&format!("{}", 7 + n))
        } else if path.ends_with("/istio-revision-tag-prod") {
            webhook_configuration(
                "istio-revision-tag-prod",
                json!({"istio.io/rev": "1-20", "istio.io/tag": "prod"}),
                "https://injector/inject/1-20",
            )
        } else {
            injector_1_20()
        }
    }));
    let changed = retarget(client, &plan).await;
    assert_eq!(
        changed,
        [
            "mutatingwebhookconfiguration/istio-revision-tag-prod",
            "service/istiod-revision-tag-prod"
        ]
    );
    let seen = seen.lock().unwrap();
    let service_puts: Vec<&Value> = seen
        .iter()
        .filter(|s| s.method == "PUT" && s.path == service_path)
        .map(|s| &s.body)
        .collect();
    assert_eq!(
        service_puts.len(),
        2,
        "one conflict, then the re-read write"
    );
    for (put, resource_version) in service_puts.iter().zip(["7", "8"]) {
        assert_eq!(put["metadata"]["resourceVersion"], resource_version);
        assert_eq!(put["metadata"]["labels"]["istio.io/rev"], "1-20");
        assert_eq!(put["metadata"]["labels"]["istio.io/tag"], "prod");
        assert_eq!(
            put["spec"]["selector"],
            json!({"app": "istiod", "istio.io/rev": "1-20"})
        );
    }
}

fn injector_1_20() -> Value {
    webhook_configuration(
        "istio-sidecar-injector-1-20",
        json!({"istio.io/rev": "1-20"}),
        "https://injector/inject/1-20",
    )
}

/// The API a tag retarget talks to: each GET answered by `read(path, how many times that path
/// was read before)`, the first PUT to `conflicting` refused with a 409 (a concurrent edit),
/// every other write echoed back as stored.
fn retarget_api(
    conflicting: &'static str,
    read: impl Fn(&str, usize) -> Value + Send + 'static,
) -> Responder {
    let reads = std::sync::Mutex::new(BTreeMap::<String, usize>::new());
    let writes = std::sync::atomic::AtomicUsize::new(0);
    Box::new(move |request, _| match request.method.as_str() {
        "GET" => {
            let mut reads = reads.lock().expect("read counts");
            let n = reads.entry(request.path.clone()).or_insert(0);
            *n += 1;
            (StatusCode::OK, read(&request.path, *n - 1))
        }
        "PUT"
            if request.path == conflicting
                && writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 =>
        {
            (StatusCode::CONFLICT, conflict())
        }
        _ => (StatusCode::OK, request.body.clone()),
    })
}

/// Carries out a tag plan against the mock: the objects it reports changed.
async fn retarget(client: kube::Client, plan: &rev_shared::plan::relabel::TagPlan) -> Vec<String> {
    relabel::apply_tag(&cluster(client), plan, &kube::api::PostParams::default())
        .await
        .expect("the retarget succeeds")
}

fn conflict() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
           "reason": "Conflict", "message": "the object has been modified"})
}

/// `--undo` is a guarded write like any relabel: a 409 means re-read, restore what the record
/// says now (another run may have relabelled and re-recorded meanwhile), and try again.
#[tokio::test]
async fn undo_conflict_rereads_the_record_and_restores_what_it_says_now() {
    let recorded_now = r#"{"istio-injection":null,"istio.io/rev":"1-18"}"#;
    let (client, seen) = mock(Box::new(move |req, n| match (req.method.as_str(), n) {
        ("PATCH", 0) => (StatusCode::CONFLICT, conflict()),
        ("GET", _) => {
            let mut fresh = namespace("305", json!({"istio.io/rev": "1-21", "team": "books"}));
            fresh["metadata"]["annotations"] =
                json!({"relabel.kubectl-rev.dev/previous-labels": recorded_now});
            (StatusCode::OK, fresh)
        }
        _ => (
            StatusCode::OK,
            namespace("306", json!({"istio.io/rev": "1-18", "team": "books"})),
        ),
    }));
    let mut undo = change();
    undo.kind = ChangeKind::Restore;
    std::mem::swap(&mut undo.before, &mut undo.after);
    let (done, err) = apply_change(client, undo, DryRun::None).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(done.len(), 1);
    let seen = seen.lock().unwrap();
    let methods: Vec<_> = seen.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods, ["PATCH", "GET", "PATCH"]);
    assert_eq!(seen[0].body["metadata"]["labels"]["istio.io/rev"], "1-19");
    let retry = &seen[2].body;
    assert_eq!(
        retry["metadata"]["resourceVersion"], "305",
        "guarded by the fresh version"
    );
    assert_eq!(
        retry["metadata"]["labels"],
        json!({"istio.io/rev": "1-18", "istio-injection": null}),
        "restores the record read after the conflict"
    );
    assert_eq!(
        retry["metadata"]["annotations"]["relabel.kubectl-rev.dev/previous-labels"],
        Value::Null,
        "and removes the record"
    );
}

/// `--tag`: the tag's webhook configuration is replaced guarded by the resourceVersion read; a
/// concurrent edit (409) means read both configurations again and retarget what is there now.
#[tokio::test]
async fn tag_webhook_conflict_rereads_and_retargets_the_fresh_object() {
    use rev_shared::plan::relabel::plan_tag;
    use rev_shared::revision::RevisionName;
    let snapshot = crate::common::load(&["control-plane-1-19-and-1-20.yaml", "revision-tags.yaml"]);
    let analysis = rev_shared::analysis::analyze(&snapshot);
    let target = RevisionName::parse("1-20").unwrap();
    let plan = plan_tag(&snapshot, &analysis, "prod", &target).unwrap();
    assert_eq!(plan.service, None, "no tag Service in these fixtures");

    let tag_path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istio-revision-tag-prod";
    let (client, seen) = mock(retarget_api(tag_path, move |path, n| {
        if path != tag_path {
            return injector_1_20();
        }
        let mut tag = webhook_configuration(
            "istio-revision-tag-prod",
            json!({"istio.io/rev": "1-19", "istio.io/tag": "prod"}),
            "https://injector/inject/1-19",
        );
        tag["metadata"]["resourceVersion"] = json!(format!("{}", 40 + n));
        tag
    }));
    let changed = retarget(client, &plan).await;
    assert_eq!(
        changed,
        ["mutatingwebhookconfiguration/istio-revision-tag-prod"]
    );
    let seen = seen.lock().unwrap();
    let requests: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| {
            (
                s.method.as_str(),
                s.path.rsplit('/').next().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        requests,
        [
            ("GET", "istio-revision-tag-prod"),
            ("GET", "istio-sidecar-injector-1-20"),
            ("PUT", "istio-revision-tag-prod"),
            ("GET", "istio-revision-tag-prod"),
            ("GET", "istio-sidecar-injector-1-20"),
            ("PUT", "istio-revision-tag-prod"),
        ]
    );
    let puts: Vec<&Value> = seen
        .iter()
        .filter(|s| s.method == "PUT")
        .map(|s| &s.body)
        .collect();
    for (put, resource_version) in puts.iter().zip(["40", "41"]) {
        assert_eq!(put["metadata"]["resourceVersion"], resource_version);
        assert_eq!(put["metadata"]["labels"]["istio.io/rev"], "1-20");
        assert_eq!(put["metadata"]["labels"]["istio.io/tag"], "prod");
        assert_eq!(
            put["webhooks"][0]["clientConfig"]["url"],
            "https://injector/inject/1-20"
        );
    }
}
