//! Builds the JSON Patch that turns a pod into one injected by a given Istio revision.
//!
//! Only what the kubectl-rev plugins read has to be faithful (DOMAIN §3): the
//! `sidecar.istio.io/status` and `istio.io/rev` annotations, the `istio-proxy` container with
//! the revision's proxy image, and `discoveryAddress` in its `PROXY_CONFIG`. The rest is a
//! plausible subset of Istio's sidecar template, enough for the pod to look real.

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

pub const STATUS_ANNOTATION: &str = "sidecar.istio.io/status";
const TEMPLATES_ANNOTATION: &str = "inject.istio.io/templates";
const PROXY: &str = "istio-proxy";
const INIT: &str = "istio-init";
const VOLUMES: [&str; 5] = [
    "istio-envoy",
    "istio-data",
    "istio-podinfo",
    "istio-token",
    "istiod-ca-cert",
];

/// The JSON Patch that injects `pod` with revision `rev`'s sidecar. A pod injected before (by
/// another matching webhook, or a reinvocation) is first stripped of the containers its
/// `sidecar.istio.io/status` lists, as Istio's `stripPod` does, then injected again: so the
/// last injector called decides the sidecar. Whether to inject at all is `policy`'s question.
pub fn patch(pod: &Pod, rev: &str, image: &str) -> Vec<Value> {
    let Ok(original) = serde_json::to_value(pod) else {
        return vec![];
    };
    let mut doc = original.clone();
    let gateway = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TEMPLATES_ANNOTATION))
        .is_some_and(|t| t.split(',').any(|t| t.trim() == "gateway"));
    if !gateway {
        strip(&mut doc);
    }
    if !inject(&mut doc, rev, image, gateway) {
        return vec![];
    }
    serde_json::to_value(json_patch::diff(&original, &doc))
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// Istio's `stripPod`: removes the containers and init containers a previous injection listed
/// in `sidecar.istio.io/status`, and that annotation.
fn strip(doc: &mut Value) {
    let Some(status) = doc
        .pointer(&format!(
            "/metadata/annotations/{}",
            STATUS_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return;
    };
    for (list, path) in [
        ("containers", "/spec/containers"),
        ("initContainers", "/spec/initContainers"),
    ] {
        let names: Vec<String> = status[list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect();
        if let Some(items) = doc.pointer_mut(path).and_then(Value::as_array_mut) {
            items.retain(|c| {
                !c["name"]
                    .as_str()
                    .is_some_and(|n| names.iter().any(|x| x == n))
            });
        }
    }
    if let Some(annotations) = doc
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(STATUS_ANNOTATION);
    }
}

/// Adds `rev`'s sidecar to a (stripped) pod document; false when there is nothing to do.
fn inject(doc: &mut Value, rev: &str, image: &str, gateway: bool) -> bool {
    let proxy_config = json!({"name": "PROXY_CONFIG", "value": proxy_config(rev)});
    let status = if gateway {
        // The gateway chart ships its own `istio-proxy` container with `image: auto`; the
        // gateway template fills it in rather than adding a sidecar.
        let Some(proxy) = doc
            .pointer_mut("/spec/containers")
            .and_then(Value::as_array_mut)
            .and_then(|cs| cs.iter_mut().find(|c| c["name"] == PROXY))
        else {
            return false;
        };
        proxy["image"] = Value::from(image);
        let env = proxy
            .as_object_mut()
            .map(|o| o.entry("env").or_insert_with(|| json!([])));
        if let Some(Value::Array(env)) = env {
            env.retain(|e| e["name"] != "PROXY_CONFIG");
            env.push(proxy_config);
        }
        status_json(None, &[], rev)
    } else {
        let Some(spec) = doc.get_mut("spec").and_then(Value::as_object_mut) else {
            return false;
        };
        // istio-init goes first, as Istio's template puts it: it must run before app init containers.
        with_array(spec, "initContainers", |c| {
            c.insert(0, init_container(image))
        });
        with_array(spec, "containers", |c| {
            c.push(proxy_container(image, proxy_config))
        });
        with_array(spec, "volumes", |existing| {
            for volume in volumes() {
                // Strategic merge by name: a re-injection keeps one of each.
                if !existing.iter().any(|v| v["name"] == volume["name"]) {
                    existing.push(volume);
                }
            }
        });
        status_json(Some(&[INIT]), &VOLUMES, rev)
    };

    let label = |doc: &Value, k: &str| doc["metadata"]["labels"][k].as_str().map(str::to_owned);
    let canonical_name = label(doc, "app.kubernetes.io/name")
        .or_else(|| label(doc, "app"))
        .or_else(|| {
            doc["metadata"]["generateName"]
                .as_str()
                .map(|g| g.trim_end_matches('-').to_owned())
        })
        .unwrap_or_else(|| {
            doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        });
    let canonical_rev = label(doc, "app.kubernetes.io/version")
        .or_else(|| label(doc, "version"))
        .unwrap_or_else(|| "latest".into());
    let first_container = doc["spec"]["containers"][0]["name"]
        .as_str()
        .map(str::to_owned);
    let Some(metadata) = doc.get_mut("metadata").and_then(Value::as_object_mut) else {
        return false;
    };
    set_entries(
        metadata,
        "labels",
        [
            ("security.istio.io/tlsMode", "istio".to_owned()),
            ("service.istio.io/canonical-name", canonical_name),
            ("service.istio.io/canonical-revision", canonical_rev),
        ],
    );
    let mut annotations = vec![
        (STATUS_ANNOTATION, status),
        ("istio.io/rev", rev.to_owned()),
    ];
    if !gateway && let Some(first) = first_container {
        annotations.push(("kubectl.kubernetes.io/default-container", first));
    }
    set_entries(metadata, "annotations", annotations);
    true
}

/// Edits the array at `key`, created when absent (or not an array).
fn with_array(
    object: &mut serde_json::Map<String, Value>,
    key: &str,
    edit: impl FnOnce(&mut Vec<Value>),
) {
    let mut items = match object.remove(key) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    edit(&mut items);
    object.insert(key.to_owned(), Value::Array(items));
}

/// Sets string entries of the map at `key`, created when absent (or not a map).
fn set_entries(
    object: &mut serde_json::Map<String, Value>,
    key: &str,
    entries: impl IntoIterator<Item = (&'static str, String)>,
) {
    let mut map = match object.remove(key) {
        Some(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    for (k, v) in entries {
        map.insert(k.to_owned(), Value::from(v));
    }
    object.insert(key.to_owned(), Value::Object(map));
}

/// Where the revision's sidecars find their istiod (DOMAIN §3, signal 3).
fn proxy_config(rev: &str) -> String {
    let svc = if rev.is_empty() || rev == "default" {
        "istiod".to_owned()
    } else {
        format!("istiod-{rev}")
    };
    json!({"discoveryAddress": format!("{svc}.istio-system.svc:15012")}).to_string()
}

/// `sidecar.istio.io/status`, with Istio's field order (initContainers, containers, volumes,
/// imagePullSecrets, revision); serde_json's map would sort the keys, so it is built by hand.
fn status_json(init: Option<&[&str]>, volumes: &[&str], rev: &str) -> String {
    let list = |v: Option<&[&str]>| serde_json::to_string(&v).unwrap_or_else(|_| "null".into());
    format!(
        r#"{{"initContainers":{},"containers":["{PROXY}"],"volumes":{},"imagePullSecrets":null,"revision":{}}}"#,
        list(init),
        list(Some(volumes)),
        Value::from(if rev.is_empty() { "default" } else { rev }),
    )
}

fn init_container(image: &str) -> Value {
    json!({
        "name": INIT,
        "image": image,
        "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
                 "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020", "--log_output_level=default:info"],
        "resources": {"requests": {"cpu": "10m", "memory": "40Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
            "runAsGroup": 0, "runAsNonRoot": false, "runAsUser": 0
        }
    })
}

fn proxy_container(image: &str, proxy_config: Value) -> Value {
    let mounts: Vec<Value> = VOLUMES
        .iter()
        .map(|v| json!({"name": v, "mountPath": format!("/var/run/secrets/{v}")}))
        .collect();
    json!({
        "name": PROXY,
        "image": image,
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                 "--proxyLogLevel=warning", "--log_output_level=default:info"],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "env": [
            proxy_config,
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"}
        ],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}, "periodSeconds": 15},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": false, "runAsUser": 1337, "runAsGroup": 1337},
        "volumeMounts": mounts
    })
}

fn volumes() -> Vec<Value> {
    vec![
        json!({"name": "istio-envoy", "emptyDir": {"medium": "Memory"}}),
        json!({"name": "istio-data", "emptyDir": {}}),
        json!({"name": "istio-podinfo", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}
        ]}}),
        json!({"name": "istio-token", "projected": {"sources": [
            {"serviceAccountToken": {"audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}
        ]}}),
        json!({"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}}),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "docker.io/istio/proxyv2:1.30.0";

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn apply(p: &Pod, ops: Vec<Value>) -> Value {
        let mut doc = serde_json::to_value(p).unwrap();
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
        doc
    }

    #[test]
    fn sidecar_carries_the_revision_everywhere_the_plugins_look() {
        let p = pod(json!({
            "metadata": {"generateName": "details-v1-5f4d-", "labels": {"app": "details", "version": "v1"}},
            "spec": {"containers": [{"name": "details", "image": "bookinfo/details:1"}]}
        }));
        let out = apply(&p, patch(&p, "1-30", IMAGE));
        let ann = &out["metadata"]["annotations"];
        assert_eq!(ann["istio.io/rev"], "1-30");
        let status: Value = serde_json::from_str(ann[STATUS_ANNOTATION].as_str().unwrap()).unwrap();
        assert_eq!(status["revision"], "1-30");
        assert_eq!(status["initContainers"], json!(["istio-init"]));
        assert_eq!(status["containers"], json!(["istio-proxy"]));
        assert!(
            ann[STATUS_ANNOTATION]
                .as_str()
                .unwrap()
                .starts_with(r#"{"initContainers":"#)
        );
        let containers = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[1]["name"], "istio-proxy");
        assert_eq!(containers[1]["image"], IMAGE);
        let cfg: Value =
            serde_json::from_str(containers[1]["env"][0]["value"].as_str().unwrap()).unwrap();
        assert_eq!(
            cfg["discoveryAddress"],
            "istiod-1-30.istio-system.svc:15012"
        );
        assert_eq!(out["spec"]["initContainers"][0]["name"], "istio-init");
        assert_eq!(
            out["spec"]["volumes"].as_array().unwrap().len(),
            VOLUMES.len()
        );
        assert_eq!(
            out["metadata"]["labels"]["service.istio.io/canonical-name"],
            "details"
        );
        assert_eq!(
            out["metadata"]["labels"]["service.istio.io/canonical-revision"],
            "v1"
        );
        // The result must still be a valid Pod.
        let injected: Pod = serde_json::from_value(out.clone()).unwrap();
        // Another matching webhook (or a reinvocation) strips and re-injects: the last wins,
        // with one sidecar, one istio-init and one set of Istio volumes.
        let again = apply(&injected, patch(&injected, "1-31", IMAGE));
        assert_eq!(again["metadata"]["annotations"]["istio.io/rev"], "1-31");
        let status: Value = serde_json::from_str(
            again["metadata"]["annotations"][STATUS_ANNOTATION]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(status["revision"], "1-31");
        let names = |list: &str| -> Vec<String> {
            again["spec"][list]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names("containers"), ["details", "istio-proxy"]);
        assert_eq!(names("initContainers"), ["istio-init"]);
        assert_eq!(names("volumes").len(), VOLUMES.len());
        let cfg: Value = serde_json::from_str(
            again["spec"]["containers"][1]["env"][0]["value"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            cfg["discoveryAddress"],
            "istiod-1-31.istio-system.svc:15012"
        );
    }

    #[test]
    fn existing_init_containers_and_volumes_are_kept_after_istio_init() {
        let p = pod(json!({
            "metadata": {"name": "x", "annotations": {"a/b": "c"}},
            "spec": {
                "initContainers": [{"name": "setup", "image": "busybox"}],
                "containers": [{"name": "app", "image": "app"}],
                "volumes": [{"name": "data", "emptyDir": {}}]
            }
        }));
        let out = apply(&p, patch(&p, "1-31", "docker.io/istio/proxyv2:1.31.0-dev"));
        let inits: Vec<&str> = out["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(inits, ["istio-init", "setup"]);
        assert_eq!(out["spec"]["volumes"][0]["name"], "data");
        assert_eq!(out["metadata"]["annotations"]["a/b"], "c");
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"],
            "app"
        );
    }

    #[test]
    fn gateway_gets_its_image_filled_in_but_no_sidecar() {
        let p = pod(json!({
            "metadata": {"name": "gw", "annotations": {TEMPLATES_ANNOTATION: "gateway"}},
            "spec": {"containers": [{"name": "istio-proxy", "image": "auto"}]}
        }));
        let out = apply(&p, patch(&p, "1-30", IMAGE));
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
        assert_eq!(out["spec"]["containers"][0]["image"], IMAGE);
        assert!(out["spec"].get("initContainers").is_none());
        let status: Value = serde_json::from_str(
            out["metadata"]["annotations"][STATUS_ANNOTATION]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(status["initContainers"], Value::Null);
        assert_eq!(status["revision"], "1-30");
    }
}
