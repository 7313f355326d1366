//! Mocked-API tests of the restart executor's rollout wait and its diagnosis (issue 11 items 2
//! and 9): the watch survives a 500, a dropped connection and a `410 Gone` mid-rollout and the
//! workload still succeeds; a stuck rollout is explained by the newest Warning event of the
//! new ReplicaSet and its pods, read with `involvedObject` field selectors.

use http::StatusCode;
use serde_json::{Value, json};

use crate::common::{Seen, mock};
use rev_shared::analysis::ControlPlane;
use rev_shared::client::Cluster;
use rev_shared::exec::diagnose::stuck_rollout_event;
use rev_shared::exec::restart::{
    RestartOptions, RestartProgress, RestartResult, WorkloadOutcome, restart_one,
};
use rev_shared::flags::DryRun;
use rev_shared::plan::restart::{RestartItem, RestartMethod};
use rev_shared::snapshot::{Snapshot, WorkloadKind};

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/bookinfo/deployments";

fn details_v1() -> RestartItem {
    RestartItem {
        kind: WorkloadKind::Deployment,
        namespace: "bookinfo".into(),
        name: "details-v1".into(),
        target_revision: Some("1-31".into()),
        pods: 1,
        drifted_pods: 1,
        method: RestartMethod::RolloutRestart,
        partition: None,
        held_back: Vec::new(),
    }
}

/// details-v1 at `generation`, as its controller reported it last.
fn deployment(generation: i64, observed: i64, updated: i32, available: i32, rv: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "details-v1", "namespace": "bookinfo", "uid": "d1",
                     "generation": generation, "resourceVersion": rv},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "details"}},
                 "template": {"metadata": {"labels": {"app": "details"}},
                              "spec": {"containers": [{"name": "details", "image": "details"}]}}},
        "status": {"observedGeneration": observed, "replicas": 1, "updatedReplicas": updated,
                   "readyReplicas": available, "availableReplicas": available}
    })
}

fn list(kind: &str, rv: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": rv}, "items": items})
}

fn status(code: u16, reason: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code,
           "reason": reason, "message": format!("mock {reason}")})
}

struct Quiet;
impl RestartProgress for Quiet {
    fn started(&self, _: &RestartItem) {}
    fn waiting(&self, _: &RestartItem, _: i32, _: i32, _: &str) {}
    fn finished(&self, _: &WorkloadOutcome) {}
}

fn options() -> RestartOptions {
    RestartOptions {
        field_manager: "kubectl-rev".into(),
        dry_run: DryRun::None,
        timeout: std::time::Duration::from_secs(60),
        pause: None,
        max_parallel: 1,
        continue_on_error: false,
    }
}

fn is_watch(seen: &Seen) -> bool {
    seen.uri.contains("watch=true")
}

/// The rollout as the watch sees it: the first watch fails with a 500; the second delivers a
/// progressing update and then the connection drops; the third gets `410 Gone` (its
/// resourceVersion compacted away), so the watcher lists again; the fourth sees it complete.
fn flaky_rollout(
    seen: &Seen,
    _: usize,
    lists: &mut usize,
    watches: &mut usize,
) -> (StatusCode, Value) {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "details-v1-new-abc", "namespace": "bookinfo",
                     "labels": {"app": "details"},
                     "annotations": {"sidecar.istio.io/status":
                         "{\"containers\":[\"istio-proxy\"],\"revision\":\"1-31\"}"}},
        "status": {"phase": "Running"}
    });
    match (seen.method.as_str(), seen.path.as_str()) {
        ("GET", p) if p == format!("{DEPLOYMENT}/details-v1") => {
            (StatusCode::OK, deployment(1, 1, 1, 1, "9"))
        }
        ("PATCH", _) => (StatusCode::OK, deployment(2, 1, 0, 1, "10")),
        ("GET", DEPLOYMENT) if is_watch(seen) => {
            *watches += 1;
            match *watches {
                1 => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    status(500, "InternalError"),
                ),
                2 => (
                    StatusCode::OK,
                    json!({"type": "MODIFIED", "object": deployment(2, 2, 1, 0, "11")}),
                ),
                3 => (
                    StatusCode::OK,
                    json!({"type": "ERROR", "object": status(410, "Expired")}),
                ),
                _ => (
                    StatusCode::OK,
                    json!({"type": "MODIFIED", "object": deployment(2, 2, 1, 1, "13")}),
                ),
            }
        }
        ("GET", DEPLOYMENT) => {
            *lists += 1;
            let rv = if *lists == 1 { "10" } else { "12" };
            let current = if *lists == 1 {
                deployment(2, 1, 0, 1, "10")
            } else {
                deployment(2, 2, 1, 0, "12")
            };
            (StatusCode::OK, list("DeploymentList", rv, vec![current]))
        }
        ("GET", "/api/v1/namespaces/bookinfo/pods") => {
            (StatusCode::OK, list("PodList", "20", vec![pod]))
        }
        _ => (StatusCode::NOT_FOUND, status(404, "NotFound")),
    }
}

#[tokio::test]
async fn the_rollout_watch_resumes_after_a_500_a_dropped_connection_and_410_gone() {
    let counts = std::sync::Mutex::new((0usize, 0usize));
    let (client, seen) = mock(Box::new(move |req, n| {
        let mut c = counts.lock().unwrap();
        let (lists, watches) = &mut *c;
        flaky_rollout(req, n, lists, watches)
    }));
    let cluster = Cluster::from_client(client, "https://mock");
    let cp = ControlPlane::from_snapshot(&Snapshot::default());
    let outcome = restart_one(&cluster, &details_v1(), &cp, &options(), &Quiet).await;

    assert_eq!(outcome.result, RestartResult::Restarted, "{outcome:?}");
    assert_eq!(outcome.pods_verified, 1);
    assert_eq!(outcome.message, None);
    let seen = seen.lock().unwrap();
    let watches: Vec<&Seen> = seen.iter().filter(|s| is_watch(s)).collect();
    let lists = seen
        .iter()
        .filter(|s| s.path == DEPLOYMENT && !is_watch(s))
        .count();
    assert_eq!(watches.len(), 4, "three watch failures, each resumed");
    assert_eq!(
        lists, 2,
        "410 Gone re-lists; a 500 or a dropped connection does not"
    );
    // After the 500 and after the drop, the watch resumes where it was, not from scratch.
    assert!(
        watches[1].uri.contains("resourceVersion=10"),
        "{}",
        watches[1].uri
    );
    assert!(
        watches[2].uri.contains("resourceVersion=11"),
        "{}",
        watches[2].uri
    );
    assert!(
        watches[3].uri.contains("resourceVersion=12"),
        "{}",
        watches[3].uri
    );
}

fn replica_set(name: &str, revision: &str, hash: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "bookinfo",
                     "labels": {"app": "details", "pod-template-hash": hash},
                     "annotations": {"deployment.kubernetes.io/revision": revision},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": "details-v1", "uid": "d1", "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": "details"}}}
    })
}

fn event(kind: &str, name: &str, reason: &str, message: &str, last: &str, count: i32) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{reason}"), "namespace": "bookinfo"},
        "involvedObject": {"kind": kind, "name": name, "namespace": "bookinfo"},
        "type": "Warning", "reason": reason, "message": message,
        "lastTimestamp": last, "count": count
    })
}

const DENIAL: &str = "Error creating: admission webhook \"rev.namespace.sidecar-injector.istio.io\" denied the request: no istiod serves revision \"1-31\"";

#[tokio::test]
async fn a_stuck_rollout_is_explained_by_the_newest_warning_of_its_new_replica_set_and_pods() {
    let (client, seen) = mock(Box::new(|req, _| {
        let query = req.uri.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let query = query.replace("%3D", "=").replace("%2C", ",");
        match req.path.as_str() {
            "/apis/apps/v1/namespaces/bookinfo/replicasets" => (
                StatusCode::OK,
                list(
                    "ReplicaSetList",
                    "5",
                    vec![
                        replica_set("details-v1-old", "1", "old"),
                        replica_set("details-v1-new", "2", "new"),
                    ],
                ),
            ),
            "/api/v1/namespaces/bookinfo/events"
                if query.contains("involvedObject.kind=ReplicaSet") =>
            {
                (
                    StatusCode::OK,
                    list(
                        "EventList",
                        "6",
                        vec![event(
                            "ReplicaSet",
                            "details-v1-new",
                            "FailedCreate",
                            DENIAL,
                            "2026-11-27T10:00:05Z",
                            4,
                        )],
                    ),
                )
            }
            "/api/v1/namespaces/bookinfo/events" => (
                StatusCode::OK,
                list(
                    "EventList",
                    "6",
                    vec![
                        event(
                            "Pod",
                            "details-v1-new-abc",
                            "BackOff",
                            "Back-off restarting",
                            "2026-11-27T10:00:01Z",
                            2,
                        ),
                        // Newer, but another workload's pod: not this rollout's business.
                        event(
                            "Pod",
                            "reviews-v1-xyz",
                            "Unhealthy",
                            "Readiness probe failed",
                            "2026-11-27T10:00:09Z",
                            1,
                        ),
                    ],
                ),
            ),
            "/api/v1/namespaces/bookinfo/pods" => (
                StatusCode::OK,
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                       "metadata": {"resourceVersion": "7"},
                       "items": [{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                                  "metadata": {"name": "details-v1-new-abc", "namespace": "bookinfo"}}]}),
            ),
            _ => (StatusCode::NOT_FOUND, status(404, "NotFound")),
        }
    }));
    let cluster = Cluster::from_client(client, "https://mock");
    let selector = serde_json::from_value(json!({"matchLabels": {"app": "details"}})).unwrap();
    let cause = stuck_rollout_event(&cluster, &details_v1(), Some(&selector))
        .await
        .expect("a warning explains it");

    assert_eq!(cause.object, "replicaset/details-v1-new");
    assert_eq!(cause.reason, "FailedCreate");
    assert_eq!(cause.message, DENIAL);
    assert_eq!(
        cause.describe(),
        format!("replicaset/details-v1-new: FailedCreate (x4): {DENIAL}")
    );
    let queries: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.uri.replace("%3D", "=").replace("%2C", ","))
        .collect();
    assert!(queries.iter().any(|q| q.contains(
        "fieldSelector=involvedObject.kind=ReplicaSet,involvedObject.name=details-v1-new,type=Warning"
    )), "{queries:#?}");
    assert!(
        queries
            .iter()
            .any(|q| q.contains("/pods?") && q.contains("pod-template-hash=new")),
        "only the new ReplicaSet's pods: {queries:#?}"
    );
}

/// What the user reads when the first rollout timed out: the result, why (the cluster's
/// event), and how to roll back.
#[test]
fn the_summary_of_a_stuck_rollout_shows_why_under_it() {
    use rev_shared::exec::diagnose::RolloutEvent;
    use rev_shared::output::restart::{RestartReport, render_summary};
    let outcome = WorkloadOutcome {
        kind: WorkloadKind::Deployment,
        namespace: "bookinfo".into(),
        name: "details-v1".into(),
        result: RestartResult::TimedOut,
        rollout_seconds: 8.0,
        pods_verified: 0,
        left_drifted: Vec::new(),
        message: Some("rollout not complete after 8s (--timeout)".into()),
        cause: Some(RolloutEvent {
            object: "replicaset/details-v1-new".into(),
            reason: "FailedCreate".into(),
            message: DENIAL.into(),
            count: 4,
        }),
        probe: None,
        gate_breaches: Vec::new(),
        undo: Some("kubectl rollout undo deployment/details-v1 -n bookinfo".into()),
        started_at: String::new(),
        finished_at: String::new(),
    };
    let report = RestartReport {
        workloads: vec![outcome],
        skipped: Vec::new(),
        probe: None,
    };
    insta::assert_snapshot!(render_summary(&report, false));
}
