//! Helpers the test modules share: fixtures by name, and a recording mock API server (kube's
//! tower-test pair) that answers each request with a closure.

use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use serde_json::Value;

use rev_shared::snapshot::Snapshot;
use rev_shared::snapshot::dump::read_dump_str;

/// The text of `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Several fixtures read as one cluster (multi-document YAML).
pub fn load(files: &[&str]) -> Snapshot {
    let text = files
        .iter()
        .map(|f| fixture(f))
        .collect::<Vec<_>>()
        .join("\n---\n");
    read_dump_str(&text).expect("fixture parses")
}

/// One request as the mock API saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub path: String,
    pub accept: String,
    pub content_type: String,
    pub body: Value,
}

pub type Responder = Box<dyn Fn(&Seen, usize) -> (StatusCode, Value) + Send>;

/// The API server's side of the run lock (coordination.k8s.io Leases), starting with none: a
/// write is stored as sent (a create under its name), a GET returns what is stored or 404, a
/// list is empty. Everything else goes to `rest`.
pub fn with_free_leases(rest: Responder) -> Responder {
    let stored: Mutex<std::collections::BTreeMap<String, Value>> = Mutex::default();
    Box::new(move |seen: &Seen, n| {
        if !seen.path.starts_with("/apis/coordination.k8s.io/") {
            return rest(seen, n);
        }
        let Ok(mut stored) = stored.lock() else {
            return (StatusCode::INTERNAL_SERVER_ERROR, Value::Null);
        };
        match seen.method.as_str() {
            "GET" if seen.path.ends_with("/leases") => (
                StatusCode::OK,
                serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "LeaseList",
                                   "metadata": {"resourceVersion": "1"}, "items": []}),
            ),
            "GET" => match stored.get(&seen.path) {
                Some(lease) => (StatusCode::OK, lease.clone()),
                None => (
                    StatusCode::NOT_FOUND,
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                       "reason": "NotFound", "code": 404, "message": "not found"}),
                ),
            },
            _ => {
                let mut lease = seen.body.clone();
                lease["metadata"]["resourceVersion"] = serde_json::json!(n.to_string());
                let path = match (seen.method.as_str(), lease["metadata"]["name"].as_str()) {
                    ("POST", Some(name)) => format!("{}/{name}", seen.path),
                    _ => seen.path.clone(),
                };
                stored.insert(path, lease.clone());
                (StatusCode::OK, lease)
            }
        }
    })
}

fn header(headers: &http::HeaderMap, name: http::header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Serves every request with `respond` (given the request and its index), recording each.
pub fn mock(respond: Responder) -> (Client, Arc<Mutex<Vec<Seen>>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Some((request, send)) = handle.next_request().await {
            let accept = header(request.headers(), http::header::ACCEPT);
            let content_type = header(request.headers(), http::header::CONTENT_TYPE);
            let method = request.method().to_string();
            let uri = request.uri().to_string();
            let path = request.uri().path().to_string();
            let bytes = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let seen = Seen {
                method,
                uri,
                path,
                accept,
                content_type,
                body,
            };
            let (code, reply) = respond(&seen, n);
            n += 1;
            record.lock().unwrap().push(seen);
            send.send_response(
                Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
        }
    });
    (Client::new(service, "default"), seen)
}
