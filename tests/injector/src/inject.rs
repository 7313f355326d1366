//! Builds the JSON Patch that turns a pod into one injected by a given Istio revision.
//!
//! Only what the kubectl-rev plugins read has to be faithful (DOMAIN §3): the
//! `sidecar.istio.io/status` and `istio.io/rev` annotations, the `istio-proxy` container with
//! the revision's proxy image, and `discoveryAddress` in its `PROXY_CONFIG`. The rest is a
//! plausible subset of Istio's sidecar template, enough for the pod to look real.

use std::collections::BTreeMap;

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

/// The JSON Patch operations for `pod`; empty when it must be left alone.
pub fn patch(pod: &Pod, rev: &str, image: &str) -> Vec<Value> {
    let annotations = pod.metadata.annotations.as_ref();
    let annotation = |k: &str| annotations.and_then(|a| a.get(k)).map(String::as_str);
    // Istio never injects twice (the webhooks may be reinvoked, or two may match), skips
    // host-network pods, and honours the opt-out annotation as well as the label.
    let Some(spec) = pod.spec.as_ref() else {
        return vec![];
    };
    if annotation(STATUS_ANNOTATION).is_some()
        || annotation("sidecar.istio.io/inject") == Some("false")
        || spec.host_network == Some(true)
    {
        return vec![];
    }
    let gateway = annotation(TEMPLATES_ANNOTATION) == Some("gateway");
    let proxy_config = json!({"name": "PROXY_CONFIG", "value": proxy_config(rev)});
    let mut ops = Vec::new();

    let status = if gateway {
        // The gateway chart ships its own `istio-proxy` container with `image: auto`; the
        // gateway template fills it in rather than adding a sidecar.
        let Some(i) = spec.containers.iter().position(|c| c.name == PROXY) else {
            return vec![];
        };
        ops.push(
            json!({"op": "replace", "path": format!("/spec/containers/{i}/image"), "value": image}),
        );
        let env_path = format!("/spec/containers/{i}/env");
        append(
            &mut ops,
            &env_path,
            spec.containers[i].env.is_some(),
            vec![proxy_config],
            false,
        );
        status_json(None, &[], rev)
    } else {
        // istio-init goes first, as Istio's template puts it: it must run before app init containers.
        append(
            &mut ops,
            "/spec/initContainers",
            spec.init_containers.is_some(),
            vec![init_container(image)],
            true,
        );
        append(
            &mut ops,
            "/spec/containers",
            true,
            vec![proxy_container(image, proxy_config)],
            false,
        );
        append(
            &mut ops,
            "/spec/volumes",
            spec.volumes.is_some(),
            volumes(),
            false,
        );
        status_json(Some(&[INIT]), &VOLUMES, rev)
    };

    let labels = pod.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).cloned();
    let canonical_name = label("app.kubernetes.io/name")
        .or_else(|| label("app"))
        .or_else(|| {
            pod.metadata
                .generate_name
                .as_ref()
                .map(|g| g.trim_end_matches('-').to_owned())
        })
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    let canonical_rev = label("app.kubernetes.io/version")
        .or_else(|| label("version"))
        .unwrap_or_else(|| "latest".into());
    merge_map(
        &mut ops,
        "/metadata/labels",
        labels,
        [
            ("security.istio.io/tlsMode", "istio".to_owned()),
            ("service.istio.io/canonical-name", canonical_name),
            ("service.istio.io/canonical-revision", canonical_rev),
        ],
    );
    let mut new_annotations = vec![
        (STATUS_ANNOTATION, status),
        ("istio.io/rev", rev.to_owned()),
    ];
    if !gateway && let Some(first) = spec.containers.first() {
        new_annotations.push((
            "kubectl.kubernetes.io/default-container",
            first.name.clone(),
        ));
    }
    merge_map(
        &mut ops,
        "/metadata/annotations",
        annotations,
        new_annotations,
    );
    ops
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
    let list = |v: Option<&[&str]>| serde_json::to_string(&v).expect("strings serialize");
    format!(
        r#"{{"initContainers":{},"containers":["{PROXY}"],"volumes":{},"imagePullSecrets":null,"revision":{}}}"#,
        list(init),
        list(Some(volumes)),
        Value::from(if rev.is_empty() { "default" } else { rev }),
    )
}

/// Adds `items` to the array at `path`, creating it when the pod has none (JSON Patch cannot
/// append to a missing array).
fn append(ops: &mut Vec<Value>, path: &str, exists: bool, items: Vec<Value>, front: bool) {
    if !exists {
        ops.push(json!({"op": "add", "path": path, "value": items}));
        return;
    }
    // Inserting each at 0 in reverse keeps their order at the front.
    let mut items = items;
    if front {
        items.reverse();
    }
    for item in items {
        let at = if front { "0" } else { "-" };
        ops.push(json!({"op": "add", "path": format!("{path}/{at}"), "value": item}));
    }
}

/// Sets keys in a string map, creating the map when absent; `add` replaces existing keys.
fn merge_map<'a>(
    ops: &mut Vec<Value>,
    path: &str,
    existing: Option<&BTreeMap<String, String>>,
    entries: impl IntoIterator<Item = (&'a str, String)>,
) {
    match existing {
        None => {
            let map: serde_json::Map<String, Value> = entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::from(v)))
                .collect();
            ops.push(json!({"op": "add", "path": path, "value": map}));
        }
        Some(_) => {
            for (k, v) in entries {
                // RFC 6901 escaping: annotation keys contain '/'.
                let key = k.replace('~', "~0").replace('/', "~1");
                ops.push(json!({"op": "add", "path": format!("{path}/{key}"), "value": v}));
            }
        }
    }
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
        let _: Pod = serde_json::from_value(out.clone()).unwrap();
        // Second pass (reinvocation, or a second matching webhook): nothing more.
        assert!(patch(&serde_json::from_value(out).unwrap(), "1-31", IMAGE).is_empty());
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

    #[test]
    fn opted_out_and_host_network_pods_are_left_alone() {
        let opted_out = pod(json!({
            "metadata": {"annotations": {"sidecar.istio.io/inject": "false"}},
            "spec": {"containers": [{"name": "a", "image": "a"}]}
        }));
        let host = pod(
            json!({"spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "a"}]}}),
        );
        assert!(patch(&opted_out, "1-30", IMAGE).is_empty());
        assert!(patch(&host, "1-30", IMAGE).is_empty());
    }
}
