//! Mocked-API tests of the live reader (kube's tower-test pattern): they pin which requests the
//! snapshot makes — pagination followed, pods metadata-only, a 403 turned into a warning.

use http::StatusCode;
use rev_shared::client::Cluster;
use rev_shared::snapshot::live::{NamespaceScope, ReadCounter, read_snapshot};
use serde_json::{Value, json};

use crate::common::{Seen, mock};

/// The mock API answering with `standard_responses`.
fn mock_api(
    respond: fn(&str, &str) -> (StatusCode, Value),
) -> (kube::Client, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
    mock(Box::new(move |req: &Seen, _| respond(&req.path, &req.uri)))
}

fn list(items: Vec<Value>, cont: Option<&str>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"continue": cont.unwrap_or("")}, "items": items})
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message})
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn standard_responses(path: &str, uri: &str) -> (StatusCode, Value) {
    match path {
        "/api/v1/namespaces" if uri.contains("continue=page-2") => {
            (StatusCode::OK, list(vec![namespace("bookinfo")], None))
        }
        "/api/v1/namespaces" => (
            StatusCode::OK,
            list(vec![namespace("default")], Some("page-2")),
        ),
        "/api/v1/pods" => (
            StatusCode::OK,
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {}, "items": [
                {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {
                    "name": "details-v1-abc", "namespace": "bookinfo",
                    "annotations": {"sidecar.istio.io/status": "{\"revision\":\"1-20\"}"}}}
            ]}),
        ),
        "/api/v1/secrets" => (
            StatusCode::FORBIDDEN,
            status(
                403,
                "Forbidden",
                "secrets is forbidden: User \"jane\" cannot list resource \"secrets\" in API group \"\" at the cluster scope",
            ),
        ),
        // Aggregated discovery: no Istio CRD installed, so no Istio group is served.
        "/apis" => (
            StatusCode::OK,
            json!({"apiVersion": "apidiscovery.k8s.io/v2", "kind": "APIGroupDiscoveryList",
                   "metadata": {}, "items": [{"metadata": {"name": "apps"}, "versions": [
                       {"version": "v1", "resources": [{"resource": "deployments",
                        "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                        "scope": "Namespaced", "verbs": ["list"]}]}]}]}),
        ),
        p if p.starts_with("/apis/") && p.contains("istio.io") => (
            StatusCode::NOT_FOUND,
            status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        ),
        _ => (StatusCode::OK, list(vec![], None)),
    }
}

#[tokio::test]
async fn pagination_is_followed_to_the_last_page() {
    let (client, seen) = mock_api(standard_responses);
    let snapshot = read_snapshot(
        &Cluster::from_client(client, "https://mock"),
        &NamespaceScope::All,
        &ReadCounter::default(),
    )
    .await
    .unwrap();
    let names: Vec<_> = snapshot
        .namespaces
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(names, ["bookinfo", "default"]);
    let ns_requests: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.uri.starts_with("/api/v1/namespaces?"))
        .map(|s| s.uri.clone())
        .collect();
    assert_eq!(ns_requests.len(), 2, "{ns_requests:?}");
    assert!(ns_requests.iter().all(|u| u.contains("limit=500")));
    assert!(ns_requests[1].contains("continue=page-2"));
}

#[tokio::test]
async fn pods_and_replicasets_are_listed_metadata_only() {
    let (client, seen) = mock_api(standard_responses);
    let snapshot = read_snapshot(
        &Cluster::from_client(client, "https://mock"),
        &NamespaceScope::All,
        &ReadCounter::default(),
    )
    .await
    .unwrap();
    assert_eq!(snapshot.pods.len(), 1);
    let seen = seen.lock().unwrap();
    for path in ["/api/v1/pods?", "/apis/apps/v1/replicasets?"] {
        let req = seen.iter().find(|s| s.uri.starts_with(path)).unwrap();
        assert!(
            req.accept.contains("as=PartialObjectMetadataList"),
            "{path} asked for {:?}",
            req.accept
        );
    }
    let deployments = seen
        .iter()
        .find(|s| s.uri.starts_with("/apis/apps/v1/deployments?"))
        .unwrap();
    assert!(
        !deployments.accept.contains("PartialObjectMetadata"),
        "workloads need their spec"
    );
    assert!(
        seen.iter().all(|s| s.method == "GET"),
        "reading never writes"
    );
}

#[tokio::test]
async fn forbidden_secrets_become_a_warning_naming_verb_and_resource() {
    let (client, seen) = mock_api(standard_responses);
    let snapshot = read_snapshot(
        &Cluster::from_client(client, "https://mock"),
        &NamespaceScope::All,
        &ReadCounter::default(),
    )
    .await
    .unwrap();
    assert_eq!(snapshot.warnings.len(), 1, "{:?}", snapshot.warnings);
    let w = &snapshot.warnings[0];
    assert_eq!((w.verb.as_str(), w.resource.as_str()), ("list", "secrets"));
    assert!(w.message.contains("forbidden"));
    let secrets = seen
        .lock()
        .unwrap()
        .iter()
        .find(|s| s.uri.starts_with("/api/v1/secrets?"))
        .cloned()
        .unwrap();
    assert!(
        secrets.uri.contains("labelSelector=owner%3Dhelm"),
        "only Helm's Secrets: {}",
        secrets.uri
    );
}

#[tokio::test]
async fn absent_istio_crds_are_skipped_quietly() {
    let (client, seen) = mock_api(standard_responses);
    let snapshot = read_snapshot(
        &Cluster::from_client(client, "https://mock"),
        &NamespaceScope::All,
        &ReadCounter::default(),
    )
    .await
    .unwrap();
    assert!(
        snapshot
            .warnings
            .iter()
            .all(|w| !w.resource.contains("istio.io"))
    );
    // Discovery says which config kinds exist: none here, so none is asked for.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.iter().filter(|s| s.path == "/apis").count(), 1);
    assert!(
        !seen.iter().any(|s| s.path.contains("istio.io")),
        "no list of a kind the cluster does not serve"
    );
}

#[tokio::test]
async fn a_server_without_aggregated_discovery_is_said_not_guessed() {
    // An API server that ignores the aggregated Accept answers a plain APIGroupList.
    let (client, _) = mock_api(|path, uri| match path {
        "/apis" => (
            StatusCode::OK,
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{"name": "apps"}]}),
        ),
        _ => standard_responses(path, uri),
    });
    let snapshot = read_snapshot(
        &Cluster::from_client(client, "https://mock"),
        &NamespaceScope::All,
        &ReadCounter::default(),
    )
    .await
    .unwrap();
    assert!(
        snapshot
            .warnings
            .iter()
            .any(|w| w.verb == "get" && w.resource == "/apis"),
        "{:?}",
        snapshot.warnings
    );
}

#[tokio::test]
async fn scoped_read_lists_only_those_namespaces_and_rejects_unknown_ones() {
    let (client, seen) = mock_api(standard_responses);
    let err = read_snapshot(
        &Cluster::from_client(client, "https://mock"),
        &NamespaceScope::Only(vec!["bookinfo".into(), "nope".into()]),
        &ReadCounter::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter()
            .any(|s| s.uri.starts_with("/api/v1/namespaces/bookinfo/pods?"))
    );
    assert!(!seen.iter().any(|s| s.uri.starts_with("/api/v1/pods?")));
}

/// A request's query, percent-decoded (`fieldSelector=status.phase!=Succeeded,…`).
fn decoded(uri: &str) -> String {
    let bytes = uri.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                let hex = std::str::from_utf8(hex).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn pod_metadata(name: &str, revision: &str) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {
        "name": name, "namespace": "bookinfo",
        "annotations": {"sidecar.istio.io/status": format!("{{\"revision\":\"{revision}\"}}")}}})
}

/// The API server applies the field selectors: live pods for one, finished ones for the other.
fn phase_aware_responses(path: &str, uri: &str) -> (StatusCode, Value) {
    let query = decoded(uri);
    match path {
        "/api/v1/pods"
            if query.contains("fieldSelector=status.phase!=Succeeded,status.phase!=Failed") =>
        {
            (
                StatusCode::OK,
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {},
                   "items": [pod_metadata("details-v1-abc", "1-20")]}),
            )
        }
        "/api/v1/pods"
            if query.contains(
                "fieldSelector=status.phase!=Pending,status.phase!=Running,status.phase!=Unknown",
            ) =>
        {
            (
                StatusCode::OK,
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {},
                   "items": [pod_metadata("details-v1-evicted", "1-19"), pod_metadata("report-28x7q", "1-19")]}),
            )
        }
        "/api/v1/pods" => (
            StatusCode::BAD_REQUEST,
            status(
                400,
                "BadRequest",
                "every pod list must carry a phase field selector",
            ),
        ),
        _ => standard_responses(path, uri),
    }
}

#[tokio::test]
async fn pods_are_listed_live_only_and_finished_ones_only_counted() {
    let (client, seen) = mock_api(phase_aware_responses);
    let snapshot = read_snapshot(
        &Cluster::from_client(client, "https://mock"),
        &NamespaceScope::All,
        &ReadCounter::default(),
    )
    .await
    .unwrap();
    let names: Vec<&str> = snapshot.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["details-v1-abc"], "finished pods never become pods");
    assert_eq!(snapshot.finished_pods.get("bookinfo"), Some(&2));
    let seen = seen.lock().unwrap();
    let pod_lists: Vec<&Seen> = seen.iter().filter(|s| s.path == "/api/v1/pods").collect();
    assert_eq!(pod_lists.len(), 2, "one live list, one count");
    assert!(
        pod_lists
            .iter()
            .all(|s| s.accept.contains("as=PartialObjectMetadataList")),
        "both metadata-only"
    );
}

#[tokio::test]
async fn injector_configmaps_are_read_by_their_revision_label() {
    let (client, seen) = mock_api(standard_responses);
    read_snapshot(
        &Cluster::from_client(client, "https://mock"),
        &NamespaceScope::All,
        &ReadCounter::default(),
    )
    .await
    .unwrap();
    let seen = seen.lock().unwrap();
    let configmaps = seen
        .iter()
        .find(|s| s.path == "/api/v1/configmaps")
        .expect("configmaps listed");
    assert!(
        decoded(&configmaps.uri).contains("labelSelector=istio.io/rev"),
        "{}",
        configmaps.uri
    );
}

/// `rev-prune` reads every Service holding an external address (issue 11 item 8): a shared
/// address may be held by a Service anywhere. Those without one are not kept.
fn addressed_services(path: &str, uri: &str) -> (StatusCode, Value) {
    let service = |name: &str, spec: Value, status: Value| {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": "istio-ingress"},
               "spec": spec, "status": status})
    };
    match path {
        "/api/v1/services" if !uri.contains("labelSelector") => (
            StatusCode::OK,
            list(
                vec![
                    service(
                        "cloud-lb",
                        json!({"type": "LoadBalancer"}),
                        json!({"loadBalancer": {"ingress": [{"hostname": "a1.elb.example.com"}]}}),
                    ),
                    service(
                        "external-ip",
                        json!({"type": "ClusterIP", "externalIPs": ["198.51.100.7"]}),
                        json!({}),
                    ),
                    service("internal", json!({"type": "ClusterIP"}), json!({})),
                ],
                None,
            ),
        ),
        _ => (StatusCode::OK, list(vec![], None)),
    }
}

#[tokio::test]
async fn prune_reads_every_service_holding_an_external_address() {
    use rev_shared::snapshot::live::read_revision_objects;
    let (client, seen) = mock_api(addressed_services);
    let mut snapshot = rev_shared::snapshot::Snapshot::default();
    read_revision_objects(
        &Cluster::from_client(client, "https://mock"),
        &mut snapshot,
        &ReadCounter::default(),
    )
    .await
    .unwrap();
    let held: Vec<(&str, &[String], &[String])> = snapshot
        .services
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.load_balancer.as_slice(),
                s.external_ips.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        held,
        [
            ("cloud-lb", &["a1.elb.example.com".to_string()][..], &[][..]),
            ("external-ip", &[][..], &["198.51.100.7".to_string()][..]),
        ]
    );
    let all_services = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.path == "/api/v1/services" && !s.uri.contains("labelSelector"))
        .count();
    assert_eq!(all_services, 1, "one cluster-wide list");
}

#[tokio::test]
async fn services_that_cannot_be_listed_become_a_warning_for_prune_to_refuse_on() {
    use rev_shared::snapshot::live::read_revision_objects;
    let (client, _) = mock_api(|path, uri| match path {
        "/api/v1/services" if !uri.contains("labelSelector") => (
            StatusCode::FORBIDDEN,
            status(403, "Forbidden", "services is forbidden"),
        ),
        _ => (StatusCode::OK, list(vec![], None)),
    });
    let mut snapshot = rev_shared::snapshot::Snapshot::default();
    read_revision_objects(
        &Cluster::from_client(client, "https://mock"),
        &mut snapshot,
        &ReadCounter::default(),
    )
    .await
    .unwrap();
    let warnings: Vec<(&str, &str)> = snapshot
        .warnings
        .iter()
        .map(|w| (w.verb.as_str(), w.resource.as_str()))
        .collect();
    assert_eq!(warnings, [("list", "services")]);
}
