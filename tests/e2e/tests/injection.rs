//! Injection truth on the real local control plane (issue 9).
//!
//! The matrix: namespaces × bare pods covering every combination of namespace
//! `istio-injection` (absent / enabled / disabled), namespace `istio.io/rev` (absent / old / new /
//! the `default` tag / a revision that is not installed), pod label `istio.io/rev` (absent / old /
//! new), pod label and annotation `sidecar.istio.io/inject` (absent / true / false) and
//! hostNetwork, plus a deactivated revision-less injector (as `istioctl tag set default` leaves
//! it), two overlapping injectors (the last by name wins) and an `IfNeeded` one (reinvoked).
//! For every pod, three answers must agree: the static analysis (the plugins' snapshot read +
//! analysis), the sidecar the real API server's webhooks and the injector actually gave it, and
//! a dry-run create of the same pod (the admission oracle).
//!
//! Then, in Bookinfo: an evicted pod and a completed Job pod carrying old sidecars do not stop a
//! restart run from verifying every live pod, nor block prune.
//!
//! Runs on the default local cluster like the other e2e binaries; $REV_INJECT_E2E_STATE names
//! another state dir.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use rev_e2e::{Cluster, NEW_REV, OLD_REV, pod_revisions, show};
use rev_shared::analysis::analyze;
use rev_shared::snapshot::admission::{AdmissionAnswer, answer_of, dry_run_pod};
use rev_shared::snapshot::live::{NamespaceScope, ReadCounter, read_snapshot};
use serde_json::{Value, json};

/// Nothing schedules these pods: admission is all the matrix needs, and kwok's three nodes
/// stay free for Bookinfo.
const NO_SCHEDULER: &str = "injection-matrix-unscheduled";
const MATRIX_LABEL: &str = "matrix.kubectl-rev.dev/case";
const UNINSTALLED: &str = "1-29";

fn fresh_cluster() -> Cluster {
    match std::env::var_os("REV_INJECT_E2E_STATE") {
        Some(state) => Cluster::fresh_in(&PathBuf::from(state)),
        None => Cluster::fresh(),
    }
}

fn injector_url(c: &Cluster) -> String {
    let ports = std::fs::read_to_string(c.state.join("ports.env")).expect("ports.env");
    let port = ports
        .lines()
        .find_map(|l| l.strip_prefix("INJECTOR_PORT="))
        .expect("INJECTOR_PORT in ports.env");
    format!("https://127.0.0.1:{}", port.trim())
}

/// An injector configuration as the istiod chart renders one webhook of it, by URL like the
/// local cluster's (the API server trusts the test CA for webhooks without caBundle).
fn injector_config(
    name: &str,
    revision: &str,
    url: &str,
    webhooks: &[(&str, Value, Value)],
    reinvocation: &str,
) -> MutatingWebhookConfiguration {
    let webhooks: Vec<Value> = webhooks
        .iter()
        .map(|(prefix, namespace_selector, object_selector)| {
            json!({
                "name": format!("{prefix}sidecar-injector.istio.io"),
                "clientConfig": {"url": format!("{url}/inject/{revision}")},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "namespaceSelector": namespace_selector,
                "objectSelector": object_selector,
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "failurePolicy": "Fail",
                "reinvocationPolicy": reinvocation,
            })
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app": "sidecar-injector", "istio.io/rev": revision}},
        "webhooks": webhooks,
    }))
    .expect("webhook configuration")
}

/// The extra injectors: the revision-less one deactivated (its four webhooks given
/// `istio.io/deactivated=never-match`; were it called, /inject/default is served by no istiod and
/// the pod would be refused), and two pairs matching namespaces by a label of their own.
fn extra_injectors(url: &str) -> Vec<MutatingWebhookConfiguration> {
    let never = json!({"matchLabels": {"istio.io/deactivated": "never-match"}});
    let by_label = |key: &str| json!({"matchLabels": {key: "true"}});
    let not_opted_out = json!({"matchExpressions": [{"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}]});
    let deactivated: Vec<(&str, Value, Value)> =
        ["rev.namespace.", "rev.object.", "namespace.", "object."]
            .into_iter()
            .map(|p| (p, never.clone(), never.clone()))
            .collect();
    vec![
        injector_config(
            "istio-sidecar-injector",
            "default",
            url,
            &deactivated,
            "Never",
        ),
        injector_config(
            "istio-sidecar-injector-overlap-a",
            NEW_REV,
            url,
            &[(
                "overlap.",
                by_label("matrix.kubectl-rev.dev/overlap"),
                not_opted_out.clone(),
            )],
            "Never",
        ),
        injector_config(
            "istio-sidecar-injector-overlap-b",
            OLD_REV,
            url,
            &[(
                "overlap.",
                by_label("matrix.kubectl-rev.dev/overlap"),
                not_opted_out.clone(),
            )],
            "Never",
        ),
        injector_config(
            "istio-sidecar-injector-reinvoke-a",
            NEW_REV,
            url,
            &[(
                "reinvoke.",
                by_label("matrix.kubectl-rev.dev/reinvoke"),
                not_opted_out.clone(),
            )],
            "IfNeeded",
        ),
        injector_config(
            "istio-sidecar-injector-reinvoke-b",
            OLD_REV,
            url,
            &[(
                "reinvoke.",
                by_label("matrix.kubectl-rev.dev/reinvoke"),
                not_opted_out,
            )],
            "Never",
        ),
    ]
}

/// One pod of the matrix.
struct Case {
    namespace: String,
    pod: Pod,
}

fn value_name(v: Option<&str>) -> String {
    match v {
        None => "none".into(),
        // Names are lower case: `False` must not collide with `false`.
        Some(v) if v.chars().any(char::is_uppercase) => format!("u{}", v.to_lowercase()),
        Some(v) => v.into(),
    }
}

fn matrix_pod(
    namespace: &str,
    rev: Option<&str>,
    label: Option<&str>,
    annotation: Option<&str>,
    host: bool,
) -> Case {
    let name = format!(
        "p-{}-l{}-a{}-{}",
        value_name(rev),
        value_name(label),
        value_name(annotation),
        if host { "host" } else { "pod" }
    );
    let mut labels = serde_json::Map::new();
    labels.insert(MATRIX_LABEL.into(), json!("pod"));
    if let Some(r) = rev {
        labels.insert("istio.io/rev".into(), json!(r));
    }
    if let Some(v) = label {
        labels.insert("sidecar.istio.io/inject".into(), json!(v));
    }
    let mut annotations = serde_json::Map::new();
    if let Some(v) = annotation {
        annotations.insert("sidecar.istio.io/inject".into(), json!(v));
    }
    let pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
        "spec": {
            "schedulerName": NO_SCHEDULER,
            "hostNetwork": host,
            "containers": [{"name": "app", "image": "registry.example/app:1"}],
        },
    }))
    .expect("pod");
    Case {
        namespace: namespace.to_string(),
        pod,
    }
}

/// A namespace of the matrix: its name and labels.
type MatrixNamespace = (String, BTreeMap<String, String>);

/// The namespaces and their pods.
fn matrix() -> (Vec<MatrixNamespace>, Vec<Case>) {
    let mut namespaces = Vec::new();
    let mut cases = Vec::new();
    let injection = [None, Some("enabled"), Some("disabled")];
    let revs = [
        None,
        Some(OLD_REV),
        Some(NEW_REV),
        Some("default"),
        Some(UNINSTALLED),
    ];
    let pod_revs = [None, Some(OLD_REV), Some(NEW_REV)];
    let values = [None, Some("true"), Some("false")];
    for inj in injection {
        for rev in revs {
            let name = format!("m-{}-{}", value_name(inj), value_name(rev));
            let mut labels = BTreeMap::new();
            if let Some(v) = inj {
                labels.insert("istio-injection".to_string(), v.to_string());
            }
            if let Some(r) = rev {
                labels.insert("istio.io/rev".to_string(), r.to_string());
            }
            namespaces.push((name.clone(), labels));
            for pod_rev in pod_revs {
                for label in values {
                    for annotation in values {
                        for host in [false, true] {
                            cases.push(matrix_pod(&name, pod_rev, label, annotation, host));
                        }
                    }
                }
            }
        }
    }
    // Values only strict parsing (Istio >= 1.27, both revisions here) reads as "not set".
    for (label, annotation) in [
        (Some("yes"), None),
        (Some("False"), None),
        (None, Some("no")),
    ] {
        cases.push(matrix_pod("m-none-1-31", None, label, annotation, false));
    }
    for key in ["overlap", "reinvoke"] {
        let name = format!("m-{key}");
        namespaces.push((
            name.clone(),
            [(format!("matrix.kubectl-rev.dev/{key}"), "true".to_string())].into(),
        ));
        cases.push(matrix_pod(&name, None, None, None, false));
        cases.push(matrix_pod(&name, None, Some("false"), None, false));
        cases.push(matrix_pod(&name, None, None, None, true));
    }
    (namespaces, cases)
}

fn answer_revision(answer: &AdmissionAnswer) -> String {
    match answer {
        AdmissionAnswer::Injected { revision } => revision.clone(),
        AdmissionAnswer::NoSidecar => "none".into(),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs the local control plane (tests/cluster): run `make e2e`"]
async fn injection_matrix_and_finished_pods() {
    let t0 = Instant::now();
    let c = fresh_cluster();
    c.install_new_revision();
    let client = c.client().await;
    let started = Instant::now();
    println!(
        "cluster with both revisions and Bookinfo in {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    // The extra injectors, then the namespaces and pods, created through the real admission
    // chain (8 at a time).
    let url = injector_url(&c);
    let webhooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    for config in extra_injectors(&url) {
        webhooks
            .create(&PostParams::default(), &config)
            .await
            .expect("create webhook configuration");
    }
    let (namespaces, cases) = matrix();
    let ns_api: Api<Namespace> = Api::all(client.clone());
    for (name, labels) in &namespaces {
        let mut all = labels.clone();
        all.insert(MATRIX_LABEL.into(), "namespace".into());
        let ns: Namespace = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": all}}),
        )
        .expect("namespace");
        ns_api
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
    }
    let created: Vec<(String, String, AdmissionAnswer, AdmissionAnswer)> =
        futures::stream::iter(cases.iter().map(|case| {
            let client = client.clone();
            async move {
                let name = case.pod.metadata.name.clone().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(client.clone(), &case.namespace);
                // The dry run first: afterwards the name is taken.
                let dry_run = dry_run_pod(&client, &case.pod).await;
                let actual = match api.create(&PostParams::default(), &case.pod).await {
                    Ok(pod) => answer_of(&pod),
                    Err(e) => AdmissionAnswer::Failed {
                        message: e.to_string(),
                    },
                };
                (case.namespace.clone(), name, actual, dry_run)
            }
        }))
        .buffer_unordered(8)
        .collect()
        .await;
    let created_in = started.elapsed();

    // The static analysis of the same cluster, read as rev-inventory reads it.
    let cluster = rev_shared::client::Cluster::from_client(client.clone(), "local control plane");
    let snapshot = read_snapshot(&cluster, &NamespaceScope::All, &ReadCounter::default())
        .await
        .expect("read snapshot");
    let analysis = analyze(&snapshot);
    let expected: BTreeMap<(&str, &str), String> = analysis
        .pods
        .iter()
        .map(|p| {
            (
                (p.namespace.as_str(), p.name.as_str()),
                p.expected.clone().unwrap_or_else(|| "none".into()),
            )
        })
        .collect();

    let mut disagreements = Vec::new();
    let mut by_revision: BTreeMap<String, usize> = BTreeMap::new();
    for (namespace, name, actual, dry_run) in &created {
        let stat = expected
            .get(&(namespace.as_str(), name.as_str()))
            .cloned()
            .unwrap_or_else(|| "(not in the analysis)".into());
        let (actual, dry_run) = (answer_revision(actual), answer_revision(dry_run));
        if stat != actual || actual != dry_run {
            disagreements.push(format!(
                "{namespace}/{name}: analysis {stat}, cluster {actual}, dry-run {dry_run}"
            ));
        }
        *by_revision.entry(actual).or_default() += 1;
    }
    println!(
        "injection matrix: {} pods in {} namespaces, sidecars {by_revision:?}, {} disagreements (created and dry-run in {:.1}s, {:.1}s in all)",
        created.len(),
        namespaces.len(),
        disagreements.len(),
        created_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        disagreements.is_empty(),
        "{} of {} pods disagree:\n{}",
        disagreements.len(),
        created.len(),
        disagreements.join("\n")
    );
    // The matrix covers every outcome: both revisions, no sidecar, last-wins and reinvocation.
    for revision in [OLD_REV, NEW_REV, "none"] {
        assert!(
            by_revision.get(revision).is_some_and(|n| *n > 0),
            "{by_revision:?}"
        );
    }
    assert_eq!(
        expected
            .get(&("m-overlap", "p-none-lnone-anone-pod"))
            .map(String::as_str),
        Some(OLD_REV),
        "overlap-b is called after overlap-a"
    );
    assert_eq!(
        expected
            .get(&("m-reinvoke", "p-none-lnone-anone-pod"))
            .map(String::as_str),
        Some(NEW_REV),
        "reinvoke-a (IfNeeded) is called again after reinvoke-b changed the pod"
    );

    // The matrix leaves; the finished pods' part works on Bookinfo alone.
    for (name, _) in &namespaces {
        c.kubectl_ok(&["delete", "namespace", name, "--wait=false"]);
    }
    for config in extra_injectors(&url) {
        let name = config.metadata.name.unwrap_or_default();
        c.kubectl_ok(&["delete", "mutatingwebhookconfiguration", &name]);
    }
    for (name, _) in &namespaces {
        c.kubectl_ok(&[
            "wait",
            "--for=delete",
            &format!("namespace/{name}"),
            "--timeout=120s",
        ]);
    }
    let finished_part = Instant::now();
    finished_pods_neither_fail_a_restart_nor_block_prune(&c, &client).await;
    println!(
        "finished pods: restart, inventory and prune checks in {:.1}s; whole test {:.1}s",
        finished_part.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}

/// Sets a pod's phase through its status subresource, as the kubelet does when a container
/// exits (Succeeded) or the pod is evicted (Failed); kwok does not manage unscheduled pods.
async fn set_phase(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    phase: &str,
    reason: Option<&str>,
) {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut status = json!({"phase": phase});
    if let Some(reason) = reason {
        status["reason"] = json!(reason);
        status["message"] = json!("The node was low on resource: memory.");
    }
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap_or_else(|e| panic!("patch status of {namespace}/{name}: {e}"));
}

async fn finished_pods_neither_fail_a_restart_nor_block_prune(c: &Cluster, client: &kube::Client) {
    // Both get the old revision's sidecar now (bookinfo is on the old revision).
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "nightly-report", "namespace": "bookinfo"},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "schedulerName": NO_SCHEDULER,
            "restartPolicy": "Never",
            "containers": [{"name": "report", "image": "registry.example/report:1"}],
        }}},
    }))
    .expect("job");
    Api::<Job>::namespaced(client.clone(), "bookinfo")
        .create(&PostParams::default(), &job)
        .await
        .expect("create the Job");
    let evicted: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "details-v1-evicted", "namespace": "bookinfo", "labels": {"app": "details-evicted"}},
        "spec": {"schedulerName": NO_SCHEDULER, "containers": [{"name": "details", "image": "registry.example/details:1"}]},
    }))
    .expect("pod");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bookinfo");
    pods.create(&PostParams::default(), &evicted)
        .await
        .expect("create the pod to evict");
    set_phase(
        client,
        "bookinfo",
        "details-v1-evicted",
        "Failed",
        Some("Evicted"),
    )
    .await;
    // Now it carries details-v1's labels: the restart's verification lists it by that selector
    // (a ReplicaSet never adopts an inactive pod).
    c.kubectl_ok(&[
        "label",
        "pod",
        "details-v1-evicted",
        "-n",
        "bookinfo",
        "app=details",
        "version=v1",
        "--overwrite",
    ]);

    let job_pod = wait_for_job_pod(c).await;
    set_phase(client, "bookinfo", &job_pod, "Succeeded", None).await;
    let finished = pod_revisions(c, "bookinfo");
    for name in ["details-v1-evicted", job_pod.as_str()] {
        assert!(
            finished.iter().any(|(n, r)| n == name && r == OLD_REV),
            "{name} carries an old sidecar: {finished:?}"
        );
    }

    let relabel = c.plugin("rev-relabel", &["bookinfo", NEW_REV, "--yes"]);
    assert!(relabel.status.success(), "{}", show(&relabel));
    let restart = c.plugin("rev-restart", &["-n", "bookinfo", "--yes", "-o", "json"]);
    assert!(restart.status.success(), "{}", show(&restart));
    let report: Value = serde_json::from_slice(&restart.stdout).expect("restart JSON");
    let workloads = report["workloads"].as_array().cloned().unwrap_or_default();
    assert_eq!(workloads.len(), 6, "{report}");
    assert!(
        workloads
            .iter()
            .all(|w| w["result"] == "restarted" && w["podsVerified"] == 1),
        "every live pod verified, the evicted one ignored: {report}"
    );

    // Inventory: the finished pods are counted apart and nothing needs a restart; the cluster's
    // admission chain agrees with the analysis for every workload.
    let inventory = c.plugin(
        "rev-inventory",
        &["-n", "bookinfo", "--check-injection", "-o", "json"],
    );
    assert!(inventory.status.success(), "{}", show(&inventory));
    let doc: Value = serde_json::from_slice(&inventory.stdout).expect("inventory JSON");
    let bookinfo = &doc["clusters"][0]["namespaces"][0];
    assert_eq!(bookinfo["finishedPods"], 2, "{bookinfo}");
    assert_eq!(bookinfo["podsNeedingRestart"], 0, "{bookinfo}");
    let findings = doc["clusters"][0]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !findings
            .iter()
            .any(|f| f["code"] == "analysis-disagrees-with-admission"),
        "{findings:?}"
    );

    // Prune is not blocked by them once the default tag moved too.
    let tag = c.plugin("rev-relabel", &["--tag", "default", NEW_REV, "--yes"]);
    assert!(tag.status.success(), "{}", show(&tag));
    let prune = c.plugin("rev-prune", &[OLD_REV, "--dry-run=client"]);
    assert!(prune.status.success(), "prune refused: {}", show(&prune));
    let text = String::from_utf8_lossy(&prune.stdout);
    assert!(!text.contains("bookinfo"), "no blocker in bookinfo: {text}");
}

async fn wait_for_job_pod(c: &Cluster) -> String {
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let pods = c.get_json(&["pods", "-n", "bookinfo", "-l", "job-name=nightly-report"]);
        if let Some(name) = pods["items"][0]["metadata"]["name"].as_str() {
            return name.to_string();
        }
        assert!(Instant::now() < deadline, "the Job made no pod");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
