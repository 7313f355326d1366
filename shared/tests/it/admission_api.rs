//! Mocked-API tests of the admission oracle: the dry-run create it sends (never a real one),
//! how it reads the answer, and a 403 on `create pods` turned into a warning.

use http::StatusCode;
use rev_shared::analysis::analyze;
use rev_shared::snapshot::WorkloadKind;
use rev_shared::snapshot::admission::{
    AdmissionAnswer, TemplateRef, admission_preflight, check_injection,
};
use serde_json::{Value, json};

use crate::common::{Responder, Seen, load, mock};

fn reviews() -> TemplateRef {
    TemplateRef {
        kind: WorkloadKind::Deployment,
        namespace: "bookinfo".into(),
        name: "reviews-v1".into(),
    }
}

fn deployment(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "version": "v1"}, "annotations": {"team": "books"}},
                "spec": {"containers": [{"name": "app", "image": "example/app:1"}]}
            }
        }
    })
}

/// The pod the API server returns from the admission chain: the request's, injected by `rev`.
fn admitted(request: &Value, rev: &str) -> Value {
    let mut pod = request.clone();
    pod["metadata"]["name"] = json!("reviews-v1-x7k2p");
    pod["metadata"]["annotations"]["sidecar.istio.io/status"] = json!(format!(
        "{{\"containers\":[\"istio-proxy\"],\"revision\":\"{rev}\"}}"
    ));
    pod
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message})
}

/// GETs of workloads answer their template; POSTs of pods answer `on_create`, and a POST
/// without `dryRun=All` is answered 500 so a real create can never pass unnoticed.
fn api(on_create: fn(&Value) -> (StatusCode, Value)) -> Responder {
    Box::new(move |req: &Seen, _| {
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["apis", "apps", "v1", "namespaces", ns, "deployments", name]) => {
                (StatusCode::OK, deployment(ns, name))
            }
            ("POST", ["api", "v1", "namespaces", _, "pods"]) if req.uri.contains("dryRun=All") => {
                on_create(&req.body)
            }
            ("POST", ..) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                status(500, "InternalError", "a real create reached the API server"),
            ),
            _ => (StatusCode::NOT_FOUND, status(404, "NotFound", "not found")),
        }
    })
}

#[tokio::test]
async fn the_template_is_sent_as_a_dry_run_pod_and_its_sidecar_read_back() {
    let (client, seen) = mock(api(|body| (StatusCode::CREATED, admitted(body, "1-31"))));
    let result = admission_preflight(&client, &[(reviews(), Some("1-31".into()))], 4).await;
    assert!(result.all_passed(), "{result:?}");
    assert_eq!(
        result.verdicts[0].answer,
        AdmissionAnswer::Injected {
            revision: "1-31".into()
        }
    );
    let seen = seen.lock().unwrap();
    let creates: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
    assert_eq!(creates.len(), 1);
    let create = creates[0];
    assert_eq!(create.path, "/api/v1/namespaces/bookinfo/pods");
    assert!(create.uri.contains("dryRun=All"), "{}", create.uri);
    let pod = &create.body;
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["metadata"]["generateName"], "reviews-v1-");
    assert_eq!(pod["metadata"]["labels"]["app"], "reviews-v1");
    assert_eq!(pod["metadata"]["annotations"]["team"], "books");
    assert_eq!(pod["spec"]["containers"][0]["name"], "app");
    assert!(
        seen.iter().all(|s| s.method == "GET" || s.method == "POST"),
        "nothing else is touched"
    );
}

#[tokio::test]
async fn another_revision_or_a_failing_webhook_is_a_refusal_naming_it() {
    let (client, _) = mock(api(|body| (StatusCode::CREATED, admitted(body, "1-30"))));
    let result = admission_preflight(&client, &[(reviews(), Some("1-31".into()))], 4).await;
    let refusal = result.verdicts[0].refusal.as_deref().unwrap_or_default();
    assert!(
        refusal.contains("a sidecar of 1-30") && refusal.contains("1-31"),
        "{refusal}"
    );

    let (client, _) = mock(api(|_| {
        (
            StatusCode::BAD_REQUEST,
            status(
                400,
                "BadRequest",
                "admission webhook \"rev.namespace.sidecar-injector.istio.io\" denied the request: rev-test-injector: no istiod serves revision \"1-31\"",
            ),
        )
    }));
    let result = admission_preflight(&client, &[(reviews(), Some("1-31".into()))], 4).await;
    let refusal = result.verdicts[0].refusal.as_deref().unwrap_or_default();
    assert!(
        refusal.contains("webhook call failed") && refusal.contains("no istiod serves"),
        "{refusal}"
    );
}

#[tokio::test]
async fn a_403_on_create_pods_is_a_warning_never_a_pass() {
    let (client, _) = mock(api(|_| {
        (
            StatusCode::FORBIDDEN,
            status(
                403,
                "Forbidden",
                "pods is forbidden: User \"limited-user\" cannot create resource \"pods\" in API group \"\" in the namespace \"bookinfo\"",
            ),
        )
    }));
    let result = admission_preflight(&client, &[(reviews(), Some("1-31".into()))], 4).await;
    assert!(matches!(
        result.verdicts[0].answer,
        AdmissionAnswer::Forbidden { .. }
    ));
    assert_eq!(result.verdicts[0].refusal, None);
    assert_eq!(result.warnings.len(), 1);
    let w = &result.warnings[0];
    assert_eq!((w.verb.as_str(), w.resource.as_str()), ("create", "pods"));
    assert!(w.message.contains("not checked"), "{}", w.message);
}

#[tokio::test]
async fn inventory_check_turns_a_disagreement_into_an_error_finding() {
    // bookinfo's workloads should get 1-20; the cluster answers with no sidecar at all.
    let mut snapshot = load(&[
        "control-plane-1-19-and-1-20.yaml",
        "bookinfo-mid-upgrade.yaml",
    ]);
    let (client, seen) = mock(api(|body| (StatusCode::CREATED, body.clone())));
    check_injection(&client, &mut snapshot).await;
    let checked = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == "POST")
        .count();
    assert!(checked > 0);
    assert_eq!(snapshot.admission.len(), checked);
    let a = analyze(&snapshot);
    let finding = a
        .findings
        .iter()
        .find(|f| {
            f.code == "analysis-disagrees-with-admission"
                && f.subject == "deployment/bookinfo/reviews-v1"
        })
        .expect("finding for reviews-v1");
    assert_eq!(finding.severity, rev_shared::analysis::Severity::Error);
    assert!(
        finding.message.contains("a sidecar of 1-20") && finding.message.contains("no sidecar"),
        "{}",
        finding.message
    );
}
