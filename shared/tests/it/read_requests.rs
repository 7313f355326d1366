//! The regression guard for reading at production scale (issue 12), without a clock: for a mocked
//! cluster of N namespaces, exactly which requests the live reader sends — one request per page
//! of each kind, every list paginated at `PAGE_SIZE`, pods and ReplicaSets metadata-only, and
//! the label and field selectors that keep the server from sending what the analysis drops.
//!
//! What the reader lists is one table, [`inventory_lists`]: a new selector or a new kind is a
//! one-line change there, and every test below follows it.

use std::collections::BTreeMap;

use http::StatusCode;
use rev_shared::snapshot::ingest::{FINISHED_POD_FIELDS, LIVE_POD_FIELDS};
use rev_shared::snapshot::live::{NamespaceScope, PAGE_SIZE, ReadCounter, read_snapshot};
use serde_json::{Value, json};

use crate::common::{Seen, mock};

/// A mesh shaped like the benchmark's (tests/bench/live.sh), small enough for a unit test and
/// large enough that namespaces, pods, ReplicaSets and Deployments each take several pages.
#[derive(Debug, Clone, Copy)]
struct FakeMesh {
    namespaces: usize,
    deployments_per_namespace: usize,
    pods_per_deployment: usize,
}

const MESH: FakeMesh = FakeMesh {
    namespaces: 600,
    deployments_per_namespace: 2,
    pods_per_deployment: 3,
};

const CONTROL_PLANE: &str = "istio-system";
const GATEWAY_NAMESPACE: &str = "istio-ingress";
/// istiod-1-30, istiod-1-31 and one gateway per revision.
const ISTIO_DEPLOYMENTS: [(&str, &str); 4] = [
    (CONTROL_PLANE, "istiod-1-30"),
    (CONTROL_PLANE, "istiod-1-31"),
    (GATEWAY_NAMESPACE, "istio-ingressgateway-1-30"),
    (GATEWAY_NAMESPACE, "istio-ingressgateway-1-31"),
];
const GATEWAYS: usize = 2;

/// One collection the reader lists: which objects, how they are asked for, and how many the
/// fake mesh holds there.
#[derive(Debug, Clone)]
struct Listed {
    path: String,
    metadata_only: bool,
    label_selector: Option<&'static str>,
    field_selector: Option<&'static str>,
    objects: usize,
}

impl Listed {
    fn new(path: impl Into<String>, objects: usize) -> Listed {
        Listed {
            path: path.into(),
            metadata_only: false,
            label_selector: None,
            field_selector: None,
            objects,
        }
    }
    fn metadata_only(mut self) -> Listed {
        self.metadata_only = true;
        self
    }
    fn labels(mut self, selector: &'static str) -> Listed {
        self.label_selector = Some(selector);
        self
    }
    fn fields(mut self, selector: &'static str) -> Listed {
        self.field_selector = Some(selector);
        self
    }
    /// One request per page; an empty collection still takes one.
    fn pages(&self) -> usize {
        self.objects.div_ceil(PAGE_SIZE as usize).max(1)
    }
}

/// Every list the reader sends for `mesh`, read cluster-wide or in one namespace.
fn inventory_lists(mesh: FakeMesh, only: Option<&str>) -> Vec<Listed> {
    let namespaced = |resource: &str, per_namespace: usize| match only {
        Some(ns) => Listed::new(namespaced_path(resource, ns), per_namespace),
        None => Listed::new(resource, per_namespace * mesh.namespaces),
    };
    let deployments = mesh.deployments_per_namespace;
    let pods = deployments * mesh.pods_per_deployment;
    vec![
        Listed::new("/api/v1/namespaces", mesh.namespaces + 2),
        // Only live pods run sidecars (DOMAIN §3); finished ones are only counted, and the
        // server sends just those (none in this mesh: one empty page).
        namespaced("/api/v1/pods", pods)
            .metadata_only()
            .fields(LIVE_POD_FIELDS),
        namespaced("/api/v1/pods", 0)
            .metadata_only()
            .fields(FINISHED_POD_FIELDS),
        namespaced("/apis/apps/v1/replicasets", deployments).metadata_only(),
    ]
    .into_iter()
    .chain(deployment_lists(mesh, only))
    .chain([
        namespaced("/apis/apps/v1/statefulsets", 0),
        namespaced("/apis/apps/v1/daemonsets", 0),
        Listed::new(
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
            2,
        ),
        Listed::new(
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
            2,
        ),
        Listed::new("/api/v1/secrets", 0).labels("owner=helm"),
        // The injectors' own rules (neverInjectSelector, ...), one ConfigMap per revision.
        Listed::new("/api/v1/configmaps", 0).labels("istio.io/rev"),
        // Revision tags' Services (Istio >= 1.28), compared with the tag webhooks.
        Listed::new("/api/v1/services", 0).labels("istio.io/tag"),
    ])
    .chain(config_lists())
    .collect()
}

/// Every Deployment of the cluster when unscoped (only a full read tells a gateway, by its pod
/// template, from an app); scoped, the namespace's own and, elsewhere, one list per label that
/// Istio's control plane Deployments carry: istiod and the gateways live outside the scope.
fn deployment_lists(mesh: FakeMesh, only: Option<&str>) -> Vec<Listed> {
    let path = "/apis/apps/v1/deployments";
    let apps = mesh.deployments_per_namespace;
    match only {
        None => vec![Listed::new(
            path,
            apps * mesh.namespaces + ISTIO_DEPLOYMENTS.len(),
        )],
        Some(ns) => std::iter::once(Listed::new(namespaced_path(path, ns), apps))
            .chain(CONTROL_PLANE_LABELS.map(|selector| {
                let matching = (0..ISTIO_DEPLOYMENTS.len())
                    .filter(|i| labels_match(&istio_deployment(*i), selector))
                    .count();
                Listed::new(path, matching).labels(selector)
            }))
            .collect(),
    }
}

/// What a scoped read selects Deployments outside its namespaces by.
const CONTROL_PLANE_LABELS: [&str; 4] = [
    "istio.io/rev",
    "app=istiod",
    "istio",
    "gateway.istio.io/managed",
];

/// The revision config kinds the fake cluster serves (its aggregated discovery, [`discovery`]):
/// `(group, version, resource)`. Each is listed once, at the first version of its group that
/// serves it, metadata-only and only what is labelled `istio.io/rev` (DOMAIN §4).
const CONFIG_KINDS: [(&str, &str, &str, &str); 16] = [
    (
        "extensions.istio.io",
        "v1alpha1",
        "wasmplugins",
        "WasmPlugin",
    ),
    ("gateway.networking.k8s.io", "v1", "gateways", "Gateway"),
    (
        "networking.istio.io",
        "v1",
        "destinationrules",
        "DestinationRule",
    ),
    ("networking.istio.io", "v1", "gateways", "Gateway"),
    (
        "networking.istio.io",
        "v1",
        "serviceentries",
        "ServiceEntry",
    ),
    ("networking.istio.io", "v1", "sidecars", "Sidecar"),
    (
        "networking.istio.io",
        "v1",
        "virtualservices",
        "VirtualService",
    ),
    (
        "networking.istio.io",
        "v1",
        "workloadentries",
        "WorkloadEntry",
    ),
    (
        "networking.istio.io",
        "v1",
        "workloadgroups",
        "WorkloadGroup",
    ),
    // Served only at older versions: found there, not skipped.
    (
        "networking.istio.io",
        "v1alpha3",
        "envoyfilters",
        "EnvoyFilter",
    ),
    (
        "networking.istio.io",
        "v1beta1",
        "proxyconfigs",
        "ProxyConfig",
    ),
    (
        "security.istio.io",
        "v1",
        "authorizationpolicies",
        "AuthorizationPolicy",
    ),
    (
        "security.istio.io",
        "v1",
        "peerauthentications",
        "PeerAuthentication",
    ),
    (
        "security.istio.io",
        "v1",
        "requestauthentications",
        "RequestAuthentication",
    ),
    ("telemetry.istio.io", "v1", "telemetries", "Telemetry"),
    // A group that merely ends in the same letters is no Istio group.
    ("notistio.io", "v1", "widgets", "Widget"),
];

fn config_lists() -> Vec<Listed> {
    CONFIG_KINDS
        .iter()
        .filter(|(group, ..)| *group != "notistio.io")
        .map(|(group, version, resource, _)| {
            Listed::new(format!("/apis/{group}/{version}/{resource}"), 0)
                .metadata_only()
                .labels("istio.io/rev")
        })
        .collect()
}

/// Aggregated discovery (apidiscovery.k8s.io/v2) of the fake cluster: every version of each
/// group, preferred first, as the API server sends it. networking.istio.io's older versions
/// repeat the v1 kinds and add the ones v1 lacks; apps and Gateway API's other kinds are not
/// revision config.
fn discovery() -> Value {
    let resource = |plural: &str, kind: &str, group: &str, version: &str| {
        json!({"resource": plural, "scope": "Namespaced", "verbs": ["get", "list", "watch"],
               "responseKind": {"group": group, "version": version, "kind": kind}})
    };
    let mut groups: BTreeMap<&str, Vec<(&str, Vec<Value>)>> = BTreeMap::new();
    let mut add = |group: &'static str, version: &'static str, plural: &str, kind: &str| {
        let versions = groups.entry(group).or_default();
        let at = match versions.iter().position(|(v, _)| *v == version) {
            Some(at) => at,
            None => {
                versions.push((version, Vec::new()));
                versions.len() - 1
            }
        };
        versions[at].1.push(resource(plural, kind, group, version));
    };
    add("apps", "v1", "deployments", "Deployment");
    for (group, version, plural, kind) in CONFIG_KINDS {
        add(group, version, plural, kind);
    }
    for plural_kind in [
        ("virtualservices", "VirtualService"),
        ("sidecars", "Sidecar"),
    ] {
        add(
            "networking.istio.io",
            "v1alpha3",
            plural_kind.0,
            plural_kind.1,
        );
        add(
            "networking.istio.io",
            "v1beta1",
            plural_kind.0,
            plural_kind.1,
        );
    }
    add("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute");
    add(
        "gateway.networking.k8s.io",
        "v1",
        "gatewayclasses",
        "GatewayClass",
    );
    let items: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|(version, resources)| {
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({"apiVersion": "apidiscovery.k8s.io/v2", "kind": "APIGroupDiscoveryList",
           "metadata": {}, "items": items})
}

/// The one discovery request: `GET /apis` asking for the aggregated document.
fn is_discovery(seen: &Seen) -> bool {
    seen.path == "/apis"
}

fn namespaced_path(collection: &str, namespace: &str) -> String {
    // /api/v1/pods → /api/v1/namespaces/<ns>/pods; /apis/apps/v1/x → /apis/apps/v1/namespaces/<ns>/x
    match collection.rsplit_once('/') {
        Some((group_version, resource)) => {
            format!("{group_version}/namespaces/{namespace}/{resource}")
        }
        None => collection.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The fake API server: every collection above, paginated as the API server paginates.

fn namespace_name(i: usize) -> String {
    format!("ns-{i:04}")
}

/// The namespaces' names in the order the API server lists them (by name).
fn namespace_names(mesh: FakeMesh) -> Vec<String> {
    let mut names: Vec<String> = (0..mesh.namespaces).map(namespace_name).collect();
    names.extend([CONTROL_PLANE.to_string(), GATEWAY_NAMESPACE.to_string()]);
    names.sort();
    names
}

fn namespace(name: &str, i: usize) -> Value {
    // Half the mesh already moved to the new revision: drift, as in the benchmark.
    let rev = if i.is_multiple_of(2) { "1-30" } else { "1-31" };
    let labels = if name.starts_with("ns-") {
        json!({"istio.io/rev": rev})
    } else {
        json!({})
    };
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "resourceVersion": "1", "labels": labels}})
}

fn app_pod(mesh: FakeMesh, i: usize) -> Value {
    let per_ns = mesh.deployments_per_namespace * mesh.pods_per_deployment;
    let ns = namespace_name(i / per_ns);
    let deployment = (i % per_ns) / mesh.pods_per_deployment;
    let status = json!({"revision": "1-30"}).to_string();
    // As a server sends it: managedFields too, which the reader skips.
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {
        "name": format!("app-{deployment}-7d4b9c-{i}"), "namespace": ns,
        "generateName": format!("app-{deployment}-7d4b9c-"), "uid": format!("pod-{i}"),
        "resourceVersion": "7", "creationTimestamp": "2026-11-27T10:00:00Z",
        "labels": {"app": format!("app-{deployment}")},
        "annotations": {"sidecar.istio.io/status": status},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": true,
                             "name": format!("app-{deployment}-7d4b9c"), "uid": format!("rs-{i}")}],
        "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                           "apiVersion": "v1", "time": "2026-11-27T10:00:00Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}]}})
}

fn app_replica_set(mesh: FakeMesh, i: usize) -> Value {
    let ns = namespace_name(i / mesh.deployments_per_namespace);
    let deployment = i % mesh.deployments_per_namespace;
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {
        "name": format!("app-{deployment}-7d4b9c"), "namespace": ns,
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "controller": true,
                             "name": format!("app-{deployment}"), "uid": format!("d-{i}")}]}})
}

fn deployment(namespace: &str, name: &str, labels: Value, template_annotations: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "generation": 1, "labels": labels},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}, "annotations": template_annotations},
                              "spec": {"containers": [{"name": "app", "image": "app:1"}]}}},
        "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                   "readyReplicas": 3, "availableReplicas": 3}})
}

fn any_deployment(mesh: FakeMesh, i: usize) -> Value {
    let apps = mesh.namespaces * mesh.deployments_per_namespace;
    if i < apps {
        let ns = namespace_name(i / mesh.deployments_per_namespace);
        let name = format!("app-{}", i % mesh.deployments_per_namespace);
        return deployment(&ns, &name, json!({"app": name}), json!({}));
    }
    istio_deployment(i - apps)
}

/// istiod labelled as its chart labels it, the gateways as theirs (`istio`, no `istio.io/rev`
/// on the Deployment: their revision is on the pod template).
fn istio_deployment(i: usize) -> Value {
    let (ns, name) = ISTIO_DEPLOYMENTS[i];
    if ns == GATEWAY_NAMESPACE {
        let labels = json!({"app": name, "istio": "ingressgateway"});
        deployment(
            ns,
            name,
            labels,
            json!({"inject.istio.io/templates": "gateway"}),
        )
    } else {
        let rev = name.trim_start_matches("istiod-");
        let labels = json!({"app": "istiod", "istio.io/rev": rev});
        deployment(ns, name, labels, json!({}))
    }
}

/// The two selector forms the reader sends: `key` (exists) and `key=value`.
fn labels_match(object: &Value, selector: &str) -> bool {
    let labels = &object["metadata"]["labels"];
    match selector.split_once('=') {
        Some((key, value)) => labels[key] == value,
        None => !labels[selector].is_null(),
    }
}

fn webhook_configuration(kind: &str, name: &str, rev: &str) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
        "metadata": {"name": name, "labels": {"istio.io/rev": rev}}, "webhooks": []})
}

/// A collection as served: how many objects, and the i-th of them.
type Collection = (usize, Box<dyn Fn(usize) -> Value>);

/// The objects of one collection path, or None for a path this fake cluster does not serve.
fn collection(mesh: FakeMesh, path: &str) -> Option<Collection> {
    let (in_namespace, resource) = match path.split_once("/namespaces/") {
        Some((_, rest)) => match rest.split_once('/') {
            Some((ns, resource)) => (Some(ns.to_string()), resource.to_string()),
            None => return None,
        },
        None => (None, path.rsplit('/').next()?.to_string()),
    };
    let per_ns_pods = mesh.deployments_per_namespace * mesh.pods_per_deployment;
    // A namespaced list of an app namespace is the slice of the cluster-wide one.
    let app_index = in_namespace.as_deref().map(|ns| {
        ns.strip_prefix("ns-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n < mesh.namespaces)
    });
    let slice = |per_ns: usize, total: usize| match app_index {
        None => (0, total),
        Some(Some(n)) => (n * per_ns, per_ns),
        Some(None) => (0, 0),
    };
    let list: Collection = match resource.as_str() {
        "namespaces" if in_namespace.is_none() => {
            let names = namespace_names(mesh);
            (names.len(), Box::new(move |i| namespace(&names[i], i)))
        }
        "pods" => {
            let (first, count) = slice(per_ns_pods, per_ns_pods * mesh.namespaces);
            (count, Box::new(move |i| app_pod(mesh, first + i)))
        }
        "replicasets" => {
            let per_ns = mesh.deployments_per_namespace;
            let (first, count) = slice(per_ns, per_ns * mesh.namespaces);
            (count, Box::new(move |i| app_replica_set(mesh, first + i)))
        }
        "deployments" if in_namespace.is_some() => {
            let per_ns = mesh.deployments_per_namespace;
            let (first, count) = slice(per_ns, per_ns * mesh.namespaces);
            (count, Box::new(move |i| any_deployment(mesh, first + i)))
        }
        "deployments" => (
            mesh.namespaces * mesh.deployments_per_namespace + ISTIO_DEPLOYMENTS.len(),
            Box::new(move |i| any_deployment(mesh, i)),
        ),
        "statefulsets" | "daemonsets" | "secrets" | "configmaps" => (0, Box::new(|_| Value::Null)),
        config if CONFIG_KINDS.iter().any(|(.., plural, _)| *plural == config) => {
            (0, Box::new(|_| Value::Null))
        }
        "mutatingwebhookconfigurations" => (
            2,
            Box::new(|i| {
                let rev = ["1-30", "1-31"][i];
                webhook_configuration(
                    "MutatingWebhookConfiguration",
                    &format!("istio-sidecar-injector-{rev}"),
                    rev,
                )
            }),
        ),
        "validatingwebhookconfigurations" => (
            2,
            Box::new(|i| {
                let rev = ["1-30", "1-31"][i];
                webhook_configuration(
                    "ValidatingWebhookConfiguration",
                    &format!("istio-validator-{rev}-istio-system"),
                    rev,
                )
            }),
        ),
        _ => return None,
    };
    Some(list)
}

fn query(uri: &str) -> BTreeMap<String, String> {
    let query = uri.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// Serves `mesh`: lists paginated by `limit`/`continue` (the token is the next offset), a GET of
/// a gateway's Service answered with that Service, anything else 404.
fn serve(mesh: FakeMesh, seen: &Seen) -> (StatusCode, Value) {
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                           "reason": "NotFound", "message": format!("{} not served by the fake mesh", seen.path)});
    if is_discovery(seen) {
        assert!(
            seen.accept.contains("as=APIGroupDiscoveryList"),
            "aggregated discovery: {}",
            seen.accept
        );
        return (StatusCode::OK, discovery());
    }
    if let Some(name) = seen
        .path
        .strip_prefix(&format!("/api/v1/namespaces/{GATEWAY_NAMESPACE}/services/"))
    {
        return (
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": GATEWAY_NAMESPACE},
                   "spec": {"type": "LoadBalancer"}}),
        );
    }
    let Some((mut total, mut item)) = collection(mesh, &seen.path) else {
        return (StatusCode::NOT_FOUND, not_found);
    };
    let params = query(&seen.uri);
    if let Some(selector) = params
        .get("labelSelector")
        .filter(|_| seen.path.ends_with("/deployments"))
    {
        let matching: Vec<Value> = (0..total)
            .map(&item)
            .filter(|d| labels_match(d, selector))
            .collect();
        total = matching.len();
        item = Box::new(move |i| matching[i].clone());
    }
    if params.get("fieldSelector").map(String::as_str) == Some(FINISHED_POD_FIELDS) {
        total = 0;
    }
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(total.max(1));
    let offset = params
        .get("continue")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let end = (offset + limit).min(total);
    let items: Vec<Value> = (offset..end).map(item).collect();
    let next = if end < total {
        end.to_string()
    } else {
        String::new()
    };
    let list_kind = if seen.accept.contains("as=PartialObjectMetadataList") {
        json!(["meta.k8s.io/v1", "PartialObjectMetadataList"])
    } else {
        json!(["v1", "List"])
    };
    // An empty list comes as `"items": null` from a real API server (a nil Go slice).
    let items = if items.is_empty() {
        Value::Null
    } else {
        Value::Array(items)
    };
    (
        StatusCode::OK,
        json!({"apiVersion": list_kind[0], "kind": list_kind[1],
               "metadata": {"resourceVersion": "42", "continue": next}, "items": items}),
    )
}

async fn read(scope: NamespaceScope) -> Vec<Seen> {
    let (client, seen) = mock(Box::new(|req: &Seen, _| serve(MESH, req)));
    read_snapshot(
        &rev_shared::client::Cluster::from_client(client, "https://mock"),
        &scope,
        &ReadCounter::default(),
    )
    .await
    .expect("the fake mesh reads without error");
    seen.lock().expect("no test thread panicked").clone()
}

/// The requests sent to one collection.
fn sent_to<'a>(seen: &'a [Seen], path: &str) -> Vec<&'a Seen> {
    seen.iter().filter(|s| s.path == path).collect()
}

/// The requests of one list of the table (a path, and the selectors that tell the live pods'
/// list from the finished ones', or one label-selected list of Deployments from another).
fn sent_for<'a>(seen: &'a [Seen], listed: &Listed) -> Vec<&'a Seen> {
    seen.iter()
        .filter(|s| {
            let params = query(&s.uri);
            s.path == listed.path
                && params.get("fieldSelector").map(String::as_str) == listed.field_selector
                && params.get("labelSelector").map(String::as_str) == listed.label_selector
        })
        .collect()
}

fn assert_listed_as_table_says(seen: &[Seen], lists: &[Listed]) {
    for listed in lists {
        let requests = sent_for(seen, listed);
        assert_eq!(
            requests.len(),
            listed.pages(),
            "{}: {} objects at {PAGE_SIZE} a page",
            listed.path,
            listed.objects
        );
        for (page, request) in requests.iter().enumerate() {
            let params = query(&request.uri);
            assert_eq!(request.method, "GET", "{}", request.uri);
            assert_eq!(
                params.get("limit").map(String::as_str),
                Some(PAGE_SIZE.to_string().as_str()),
                "every list is paginated: {}",
                request.uri
            );
            let expected_continue = (page > 0).then(|| (page * PAGE_SIZE as usize).to_string());
            assert_eq!(
                params.get("continue"),
                expected_continue.as_ref(),
                "pages are followed in order: {}",
                request.uri
            );
            assert!(
                !params.contains_key("resourceVersion"),
                "a consistent read (no resourceVersion): {}",
                request.uri
            );
            assert_eq!(
                request.accept.contains("as=PartialObjectMetadataList"),
                listed.metadata_only,
                "{} asked for {:?}",
                request.uri,
                request.accept
            );
            assert_eq!(
                params.get("labelSelector").map(String::as_str),
                listed.label_selector,
                "{}",
                request.uri
            );
            assert_eq!(
                params.get("fieldSelector").map(String::as_str),
                listed.field_selector,
                "{}",
                request.uri
            );
        }
    }
}

fn gateway_service_gets(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter()
        .filter(|s| s.path.contains("/services/"))
        .collect()
}

#[tokio::test]
async fn inventory_of_the_whole_mesh_sends_one_request_per_page_of_each_kind() {
    let seen = read(NamespaceScope::All).await;
    let lists = inventory_lists(MESH, None);
    assert_listed_as_table_says(&seen, &lists);

    let unexpected: Vec<&str> = seen
        .iter()
        .filter(|s| {
            !lists.iter().any(|l| l.path == s.path)
                && !s.path.contains("/services/")
                && !is_discovery(s)
        })
        .map(|s| s.uri.as_str())
        .collect();
    assert_eq!(
        seen.iter().filter(|s| is_discovery(s)).count(),
        1,
        "one discovery request finds every config kind"
    );
    assert!(
        unexpected.is_empty(),
        "requests outside the table: {unexpected:?}"
    );
    assert_eq!(
        gateway_service_gets(&seen).len(),
        GATEWAYS,
        "one GET per gateway's Service"
    );

    // The bound: requests ≤ Σ over kinds of ceil(objects ÷ page size), plus the gateways
    // and the one discovery request.
    let pages: usize = lists.iter().map(Listed::pages).sum();
    assert_eq!(seen.len(), pages + GATEWAYS + 1);
    // 3,600 live pods (and one empty page of finished ones), 1,200 ReplicaSets, 1,204
    // Deployments and 602 namespaces at 500 a page; seven kinds and fifteen config kinds of one
    // page each.
    assert_eq!(pages, 8 + 1 + 3 + 3 + 2 + 7 + 15);
}

#[tokio::test]
async fn a_namespaced_read_lists_that_namespace_and_the_cluster_wide_objects_once() {
    let seen = read(NamespaceScope::Only(vec!["ns-0007".into()])).await;
    let lists = inventory_lists(MESH, Some("ns-0007"));
    assert_listed_as_table_says(&seen, &lists);

    for resource in ["pods", "replicasets", "statefulsets", "daemonsets"] {
        assert!(
            !seen
                .iter()
                .any(|s| s.path.ends_with(&format!("/v1/{resource}"))),
            "{resource} of other namespaces were listed"
        );
    }
    // istiod and the gateways outside the namespace are found by their labels: one small page
    // per label, not the cluster's 1,204 Deployments in three pages.
    let elsewhere = sent_to(&seen, "/apis/apps/v1/deployments");
    assert_eq!(elsewhere.len(), CONTROL_PLANE_LABELS.len());
    assert!(
        elsewhere
            .iter()
            .all(|s| query(&s.uri).contains_key("labelSelector"))
    );
    let pages: usize = lists.iter().map(Listed::pages).sum();
    assert_eq!(seen.len(), pages + GATEWAYS + 1);
}

#[tokio::test]
async fn the_number_of_requests_grows_with_pages_not_with_namespaces() {
    // Twice the namespaces: the same kinds, each with twice the pages (rounded up), no request
    // per namespace.
    let small = inventory_lists(MESH, None);
    let double = FakeMesh {
        namespaces: MESH.namespaces * 2,
        ..MESH
    };
    let (client, seen) = mock(Box::new(move |req: &Seen, _| serve(double, req)));
    read_snapshot(
        &rev_shared::client::Cluster::from_client(client, "https://mock"),
        &NamespaceScope::All,
        &ReadCounter::default(),
    )
    .await
    .expect("the fake mesh reads without error");
    let seen = seen.lock().expect("no test thread panicked").clone();
    let large = inventory_lists(double, None);
    assert_listed_as_table_says(&seen, &large);
    assert_eq!(small.len(), large.len(), "same kinds");
    let pages = |lists: &[Listed]| lists.iter().map(Listed::pages).sum::<usize>();
    assert!(pages(&large) < 2 * pages(&small));
    assert_eq!(seen.len(), pages(&large) + GATEWAYS + 1);
}

#[tokio::test]
async fn metadata_pages_keep_what_the_analysis_reads_and_skip_managed_fields() {
    let (client, _seen) = mock(Box::new(|req: &Seen, _| serve(MESH, req)));
    let snapshot = read_snapshot(
        &rev_shared::client::Cluster::from_client(client, "https://mock"),
        &NamespaceScope::All,
        &ReadCounter::default(),
    )
    .await
    .expect("the fake mesh reads without error");
    let apps: Vec<_> = snapshot
        .pods
        .iter()
        .filter(|p| p.name.starts_with("app-"))
        .collect();
    assert_eq!(
        apps.len(),
        MESH.namespaces * MESH.deployments_per_namespace * MESH.pods_per_deployment
    );
    let pod = apps[0];
    assert_eq!(pod.labels.get("app").map(String::as_str), Some("app-0"));
    assert_eq!(
        pod.sidecar,
        rev_shared::snapshot::SidecarEvidence::StatusAnnotation("1-30".into())
    );
    let owner = pod.owner.as_ref().expect("its ReplicaSet");
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("ReplicaSet", "app-0-7d4b9c")
    );
}
