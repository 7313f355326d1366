//! Mocked-API tests of the prune executor (kube's tower-test pattern): a small in-memory API
//! server holding the planned objects, recording every request. They pin that nothing is
//! deleted for a refused plan, for a client dry run, or for an object that is not the old
//! revision's; that server dry run sends `dryRun=All`; and that a 403 midway stops, reports,
//! and a re-run finishes the job.

use crate::common::fixture;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use rev_shared::RevError;
use rev_shared::analysis::analyze;
use rev_shared::client::Cluster;
use rev_shared::exec::prune::{LiveState, PruneSettings, execute, inspect};
use rev_shared::flags::DryRun;
use rev_shared::plan::prune::{PruneOptions, PrunePlan, PruneStep, plan_prune};
use rev_shared::revision::RevisionName;
use rev_shared::snapshot::Snapshot;
use rev_shared::snapshot::dump::read_dump_str;
use rev_shared::snapshot::helm::encode_release_payload;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    body: String,
}

#[derive(Default)]
struct FakeApi {
    /// Objects by API path (`/api/v1/namespaces/ns/services/name`).
    objects: BTreeMap<String, Value>,
    /// Paths whose DELETE answers 403.
    forbidden: BTreeSet<String>,
    seen: Vec<Seen>,
}

fn resources_of(group_version: &str) -> Value {
    let r = |name: &str, kind: &str, namespaced: bool| {
        json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
               "verbs": ["get", "list", "delete", "update"]})
    };
    let resources = match group_version {
        "v1" => vec![
            r("services", "Service", true),
            r("serviceaccounts", "ServiceAccount", true),
            r("configmaps", "ConfigMap", true),
            r("secrets", "Secret", true),
            r("pods", "Pod", true),
        ],
        "apps/v1" => vec![
            r("deployments", "Deployment", true),
            r("replicasets", "ReplicaSet", true),
        ],
        "autoscaling/v2" => vec![r(
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            true,
        )],
        "rbac.authorization.k8s.io/v1" => vec![
            r("roles", "Role", true),
            r("rolebindings", "RoleBinding", true),
            r("clusterroles", "ClusterRole", false),
            r("clusterrolebindings", "ClusterRoleBinding", false),
        ],
        "admissionregistration.k8s.io/v1" => vec![
            r(
                "mutatingwebhookconfigurations",
                "MutatingWebhookConfiguration",
                false,
            ),
            r(
                "validatingwebhookconfigurations",
                "ValidatingWebhookConfiguration",
                false,
            ),
        ],
        _ => vec![],
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message})
}

fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items})
}

impl FakeApi {
    fn respond(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        if method == "GET" {
            if let Some(gv) = path.strip_prefix("/api/").filter(|p| !p.contains('/')) {
                return (StatusCode::OK, resources_of(gv));
            }
            if let Some(gv) = path.strip_prefix("/apis/")
                && gv.matches('/').count() == 1
            {
                return (StatusCode::OK, resources_of(gv));
            }
            if let Some(obj) = self.objects.get(path) {
                return (StatusCode::OK, obj.clone());
            }
            // A watch: nothing happens while it is open (the stream just ends).
            if query.contains("watch=true") {
                return (StatusCode::OK, Value::Null);
            }
            // A list: every object under this collection path matching the label selector
            // (Helm records) and `metadata.name` field selector (waits for deletion).
            let is_list = path.ends_with("/secrets")
                || path.ends_with("/pods")
                || path.ends_with("/replicasets")
                || query.contains("fieldSelector=");
            if is_list {
                let decode = |s: &str| s.replace("%3D", "=").replace("%2C", ",");
                let param = |name: &str| {
                    query
                        .split('&')
                        .find_map(|q| q.strip_prefix(name))
                        .map(decode)
                        .unwrap_or_default()
                };
                let (wanted, fields) = (param("labelSelector="), param("fieldSelector="));
                let name = fields.strip_prefix("metadata.name=").map(str::to_string);
                let items = self
                    .objects
                    .iter()
                    .filter(|(p, _)| p.starts_with(&format!("{path}/")))
                    .filter(|(_, o)| {
                        wanted.split(',').filter(|w| !w.is_empty()).all(|w| {
                            let (k, v) = w.split_once('=').unwrap_or((w, ""));
                            o["metadata"]["labels"][k].as_str() == Some(v)
                        })
                    })
                    .filter(|(_, o)| {
                        name.as_deref()
                            .is_none_or(|n| o["metadata"]["name"].as_str() == Some(n))
                    })
                    .map(|(_, o)| o.clone())
                    .collect();
                return (StatusCode::OK, list(items));
            }
            return (StatusCode::NOT_FOUND, status(404, "NotFound", "not found"));
        }
        if method == "DELETE" {
            if self.forbidden.contains(path) {
                return (
                    StatusCode::FORBIDDEN,
                    status(403, "Forbidden", "user cannot delete"),
                );
            }
            let dry_run = body.contains("\"All\"");
            return match if dry_run {
                self.objects.get(path).cloned()
            } else {
                self.objects.remove(path)
            } {
                Some(_) => (
                    StatusCode::OK,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                ),
                None => (StatusCode::NOT_FOUND, status(404, "NotFound", "not found")),
            };
        }
        if method == "PUT" {
            let obj: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            if !query.contains("dryRun=All") {
                self.objects.insert(path.to_string(), obj.clone());
            }
            return (StatusCode::OK, obj);
        }
        (
            StatusCode::METHOD_NOT_ALLOWED,
            status(405, "MethodNotAllowed", method),
        )
    }
}

fn fake_client(api: Arc<Mutex<FakeApi>>) -> Cluster {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().to_string();
            let path = request.uri().path().to_string();
            let query = request.uri().query().unwrap_or_default().to_string();
            let body = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let body = String::from_utf8_lossy(&body).into_owned();
            let (code, answer) = {
                let mut api = api.lock().unwrap();
                api.seen.push(Seen {
                    method: method.clone(),
                    path: path.clone(),
                    query: query.clone(),
                    body: body.clone(),
                });
                api.respond(&method, &path, &query, &body)
            };
            let body = match answer {
                Value::Null => Body::empty(),
                answer => Body::from(serde_json::to_vec(&answer).unwrap()),
            };
            send.send_response(Response::builder().status(code).body(body).unwrap());
        }
    });
    Cluster::from_client(Client::new(service, "default"), "https://mock")
}

// --- the cluster: the fixture mesh, its 1-19 plan, and the plan's objects in the fake API ---

fn helm_records() -> Vec<(String, String, Value)> {
    let doc: Value = serde_saphyr::from_str(&fixture("prune-helm-releases.yaml")).unwrap();
    doc["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["namespace"].as_str().unwrap().to_string(),
                r.clone(),
            )
        })
        .collect()
}

fn record_secret(name: &str, ns: &str, release: &Value) -> Value {
    use base64::Engine;
    let helm_text = String::from_utf8(encode_release_payload(release, true)).unwrap();
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": format!("sh.helm.release.v1.{name}.v1"), "namespace": ns, "uid": format!("uid-record-{name}"),
                     "resourceVersion": "7",
                     "labels": {"owner": "helm", "name": name, "status": "deployed", "version": "1"}},
        "data": {"release": base64::engine::general_purpose::STANDARD.encode(helm_text)},
    })
}

fn snapshot() -> Snapshot {
    let mut s = read_dump_str(&fixture("prune-after-step-3.yaml")).unwrap();
    for (name, ns, release) in helm_records() {
        s.ingest_secret(serde_json::from_value(record_secret(&name, &ns, &release)).unwrap());
    }
    s.normalize();
    s
}

fn plan_1_19(s: &Snapshot) -> PrunePlan {
    plan_prune(
        s,
        &analyze(s),
        &RevisionName::parse("1-19").unwrap(),
        // Each gateway of the fixture has its own address: clients moved (item 8 is planned,
        // and tested, in prune.rs).
        &PruneOptions {
            allow_address_change: true,
            ..PruneOptions::default()
        },
    )
    .unwrap()
}

fn object_path(api_version: &str, plural: &str, ns: Option<&str>, name: &str) -> String {
    let base = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    match ns {
        Some(ns) => format!("{base}/namespaces/{ns}/{plural}/{name}"),
        None => format!("{base}/{plural}/{name}"),
    }
}

fn plural(kind: &str) -> String {
    match kind {
        "HorizontalPodAutoscaler" => "horizontalpodautoscalers".into(),
        other => format!("{}s", other.to_lowercase()),
    }
}

/// The fake API holding every object of the 1-19 plan as Helm created it, and the records.
fn cluster_with(plan: &PrunePlan) -> FakeApi {
    let mut api = FakeApi::default();
    for step in &plan.steps {
        let PruneStep::HelmRelease(r) = step else {
            continue;
        };
        for o in r.delete.iter().chain(&r.kept) {
            let mut obj = json!({
                "apiVersion": o.api_version, "kind": o.kind,
                "metadata": {"name": o.name, "uid": format!("uid-{}-{}", o.kind, o.name),
                             "labels": {"istio.io/rev": "1-19"},
                             "annotations": {"meta.helm.sh/release-name": r.name, "meta.helm.sh/release-namespace": r.namespace}},
            });
            if let Some(ns) = &o.namespace {
                obj["metadata"]["namespace"] = ns.clone().into();
            }
            api.objects.insert(
                object_path(
                    &o.api_version,
                    &plural(&o.kind),
                    o.namespace.as_deref(),
                    &o.name,
                ),
                obj,
            );
        }
    }
    for (name, ns, release) in helm_records() {
        api.objects.insert(
            object_path(
                "v1",
                "secrets",
                Some(&ns),
                &format!("sh.helm.release.v1.{name}.v1"),
            ),
            record_secret(&name, &ns, &release),
        );
    }
    api
}

fn settings(dry_run: DryRun) -> PruneSettings {
    PruneSettings {
        dry_run,
        timeout: Duration::from_secs(5),
        connection: Default::default(),
    }
}

fn mutations(api: &Arc<Mutex<FakeApi>>) -> Vec<Seen> {
    api.lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| s.method != "GET")
        .cloned()
        .collect()
}

// --- tests ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_refused_plan_sends_no_deleting_request() {
    let mut s = snapshot();
    s.namespaces
        .iter_mut()
        .find(|n| n.name == "bookinfo")
        .unwrap()
        .labels = [("istio.io/rev".to_string(), "1-19".to_string())].into();
    let plan = plan_1_19(&s);
    assert!(plan.refused());
    let api = Arc::new(Mutex::new(cluster_with(&plan)));
    let client = fake_client(api.clone());
    let inspection = inspect(&client, &plan).await.unwrap();
    let report = execute(
        &client,
        &plan,
        &inspection,
        &settings(DryRun::None),
        &|_| {},
        &|| false,
    )
    .await;
    assert!(matches!(report.failure, Some(RevError::Refused(_))));
    assert!(mutations(&api).is_empty(), "{:?}", mutations(&api));
}

#[tokio::test]
async fn a_client_dry_run_only_reads() {
    // `--dry-run=client` stops after the plan and its inspection: both only GET.
    let plan = plan_1_19(&snapshot());
    let api = Arc::new(Mutex::new(cluster_with(&plan)));
    let client = fake_client(api.clone());
    let inspection = inspect(&client, &plan).await.unwrap();
    assert_eq!(inspection.to_delete(), plan.objects().count());
    assert!(mutations(&api).is_empty());
}

#[tokio::test]
async fn an_object_not_owned_by_the_old_revision_is_never_deleted() {
    let plan = plan_1_19(&snapshot());
    let mut fake = cluster_with(&plan);
    // The old release's ConfigMap name now holds an object of 1-20 (re-created by its owner).
    let adopted = object_path("v1", "configmaps", Some("istio-system"), "istio-1-19");
    let obj = fake.objects.get_mut(&adopted).unwrap();
    obj["metadata"]["labels"]["istio.io/rev"] = "1-20".into();
    obj["metadata"]["annotations"]["meta.helm.sh/release-name"] = "istiod-1-20".into();
    let api = Arc::new(Mutex::new(fake));
    let client = fake_client(api.clone());
    let inspection = inspect(&client, &plan).await.unwrap();
    let state = inspection
        .steps
        .iter()
        .flatten()
        .find(|o| o.key.name == "istio-1-19")
        .unwrap();
    assert_eq!(
        state.state,
        LiveState::NotOwned("labelled istio.io/rev=1-20".into())
    );
    let report = execute(
        &client,
        &plan,
        &inspection,
        &settings(DryRun::None),
        &|_| {},
        &|| false,
    )
    .await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert!(
        !mutations(&api)
            .iter()
            .any(|m| m.method == "DELETE" && m.path == adopted)
    );
    assert!(api.lock().unwrap().objects.contains_key(&adopted));
    assert!(report.left_alone.iter().any(|l| l.contains("istio-1-19")));
}

#[tokio::test]
async fn server_dry_run_sends_every_change_with_dry_run_all() {
    let plan = plan_1_19(&snapshot());
    let api = Arc::new(Mutex::new(cluster_with(&plan)));
    let before = api.lock().unwrap().objects.clone();
    let client = fake_client(api.clone());
    let inspection = inspect(&client, &plan).await.unwrap();
    let report = execute(
        &client,
        &plan,
        &inspection,
        &settings(DryRun::Server),
        &|_| {},
        &|| false,
    )
    .await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    let changes = mutations(&api);
    assert!(!changes.is_empty());
    for m in &changes {
        match m.method.as_str() {
            "DELETE" => assert!(m.body.contains(r#""dryRun":["All"]"#), "{m:?}"),
            "PUT" => assert!(m.query.contains("dryRun=All"), "{m:?}"),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(api.lock().unwrap().objects, before, "nothing stored");
}

#[tokio::test]
async fn uninstall_marks_uninstalling_deletes_in_order_keeps_keep_then_purges_records() {
    let plan = plan_1_19(&snapshot());
    let api = Arc::new(Mutex::new(cluster_with(&plan)));
    let client = fake_client(api.clone());
    let inspection = inspect(&client, &plan).await.unwrap();
    let report = execute(
        &client,
        &plan,
        &inspection,
        &settings(DryRun::None),
        &|_| {},
        &|| false,
    )
    .await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    let istiod: Vec<Seen> = mutations(&api)
        .into_iter()
        .filter(|m| {
            m.path.contains("istiod-1-19")
                || m.path.contains("-1-19-istio-system")
                || m.path.ends_with("istio-1-19")
                || m.path.ends_with("injector-1-19")
        })
        .collect();
    let order: Vec<String> = istiod
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m.method,
                m.path.rsplit('/').nth(1).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        order.first().map(String::as_str),
        Some("PUT secrets"),
        "marked uninstalling first: {order:?}"
    );
    assert_eq!(
        order.last().map(String::as_str),
        Some("DELETE secrets"),
        "records purged last: {order:?}"
    );
    let put = &istiod[0];
    assert!(
        put.body.contains(r#""status":"uninstalling""#),
        "{}",
        put.body
    );
    let fake = api.lock().unwrap();
    assert!(
        fake.objects
            .keys()
            .any(|p| p.ends_with("/configmaps/istiod-1-19-user-config")),
        "keep stays"
    );
    assert!(
        !fake
            .objects
            .keys()
            .any(|p| p.contains("sh.helm.release.v1.istiod-1-19")),
        "records gone"
    );
    assert!(
        fake.objects
            .keys()
            .any(|p| p.contains("sh.helm.release.v1.istiod-1-20")),
        "1-20 untouched"
    );
    assert_eq!(report.releases_uninstalled.len(), 3);
}

#[tokio::test]
async fn a_403_midway_stops_reports_and_a_rerun_finishes() {
    let plan = plan_1_19(&snapshot());
    let mut fake = cluster_with(&plan);
    let blocked = object_path(
        "rbac.authorization.k8s.io/v1",
        "clusterroles",
        None,
        "istiod-clusterrole-1-19-istio-system",
    );
    fake.forbidden.insert(blocked.clone());
    let api = Arc::new(Mutex::new(fake));
    let client = fake_client(api.clone());

    let inspection = inspect(&client, &plan).await.unwrap();
    let report = execute(
        &client,
        &plan,
        &inspection,
        &settings(DryRun::None),
        &|_| {},
        &|| false,
    )
    .await;
    let err = report.failure.as_ref().expect("stops on 403");
    assert!(matches!(err, RevError::Forbidden { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("delete clusterroles.rbac.authorization.k8s.io"),
        "{err}"
    );
    assert!(
        report
            .deleted
            .iter()
            .any(|d| d == "Deployment istio-system/istiod-1-19"),
        "{:?}",
        report.deleted
    );
    assert!(
        report
            .not_done
            .iter()
            .any(|d| d == "ClusterRole istiod-clusterrole-1-19-istio-system"),
        "{:?}",
        report.not_done
    );
    assert!(
        report
            .not_done
            .iter()
            .any(|d| d.contains("Helm release istio-system/istiod-1-19"))
    );
    {
        let fake = api.lock().unwrap();
        let records_left = fake
            .objects
            .keys()
            .any(|p| p.contains("sh.helm.release.v1.istiod-1-19"));
        assert!(
            records_left,
            "the release stays listed (uninstalling) so a re-run finds it"
        );
        let last = fake.seen.iter().rfind(|s| s.method != "GET").unwrap();
        assert_eq!(last.path, blocked, "nothing after the failure");
    }

    // Permission granted: the same plan, re-inspected, finishes the job.
    api.lock().unwrap().forbidden.clear();
    let inspection = inspect(&client, &plan).await.unwrap();
    assert!(
        inspection
            .steps
            .iter()
            .flatten()
            .any(|o| o.state == LiveState::Gone)
    );
    let report = execute(
        &client,
        &plan,
        &inspection,
        &settings(DryRun::None),
        &|_| {},
        &|| false,
    )
    .await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    let fake = api.lock().unwrap();
    let left: Vec<&String> = fake
        .objects
        .keys()
        .filter(|p| p.contains("1-19") && !p.ends_with("istiod-1-19-user-config"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// istio-cni and ztunnel (DOMAIN §1): installed by Helm with revision 1-19 and by istioctl
/// labelled 1-19, all present in the fake API; a forced prune of 1-19 sends no request that
/// changes any of them.
#[tokio::test]
async fn a_forced_prune_never_deletes_a_cni_or_ztunnel_object() {
    let mut s = read_dump_str(&format!(
        "{}\n---\n{}",
        fixture("prune-after-step-3.yaml"),
        fixture("prune-istioctl-cni-and-ztunnel.yaml")
    ))
    .unwrap();
    let doc: Value = serde_saphyr::from_str(&fixture("prune-helm-cni-and-ztunnel.yaml")).unwrap();
    let singletons: Vec<(String, String, Value)> = doc["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let (name, ns) = (
                r["name"].as_str().unwrap(),
                r["namespace"].as_str().unwrap(),
            );
            (name.to_string(), ns.to_string(), r.clone())
        })
        .collect();
    for (name, ns, release) in helm_records().into_iter().chain(singletons.clone()) {
        s.ingest_secret(serde_json::from_value(record_secret(&name, &ns, &release)).unwrap());
    }
    s.normalize();
    let plan = plan_prune(
        &s,
        &analyze(&s),
        &RevisionName::parse("1-19").unwrap(),
        &PruneOptions {
            force: true,
            allow_address_change: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!plan.refused(), "forced past the ztunnel blocker");

    let mut fake = cluster_with(&plan);
    let mut singleton_paths = Vec::new();
    for (name, ns, release) in &singletons {
        let record = format!("sh.helm.release.v1.{name}.v1");
        let path = object_path("v1", "secrets", Some(ns), &record);
        fake.objects
            .insert(path.clone(), record_secret(name, ns, release));
        singleton_paths.push(path);
    }
    let istioctl = [
        (
            "apps/v1",
            "daemonsets",
            "kube-system",
            "istio-cni-node",
            "Cni",
        ),
        ("v1", "configmaps", "kube-system", "istio-cni-config", "Cni"),
        (
            "apps/v1",
            "daemonsets",
            "istio-system",
            "ztunnel",
            "Ztunnel",
        ),
    ];
    for (api_version, resource, ns, name, component) in istioctl {
        let path = object_path(api_version, resource, Some(ns), name);
        fake.objects.insert(
            path.clone(),
            json!({"apiVersion": api_version, "metadata": {"name": name, "namespace": ns,
                   "labels": {"istio.io/rev": "1-19", "operator.istio.io/component": component}}}),
        );
        singleton_paths.push(path);
    }
    let api = Arc::new(Mutex::new(fake));
    let client = fake_client(api.clone());
    let inspection = inspect(&client, &plan).await.unwrap();
    let report = execute(
        &client,
        &plan,
        &inspection,
        &settings(DryRun::None),
        &|_| {},
        &|| false,
    )
    .await;
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(
        report.releases_uninstalled.len(),
        3,
        "the old revision's own"
    );
    let touched: Vec<String> = mutations(&api)
        .into_iter()
        .filter(|m| m.path.contains("cni") || m.path.contains("ztunnel"))
        .map(|m| format!("{} {}", m.method, m.path))
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
    let fake = api.lock().unwrap();
    for path in &singleton_paths {
        assert!(fake.objects.contains_key(path), "{path} still there");
    }
}
