//! `kubectl rev-restart` on the update strategies that do not simply roll (issue 10), end to end
//! on a fresh local control plane: the real StatefulSet and DaemonSet controllers, the real
//! API server calling the charts' injection webhooks.
//!
//! - A StatefulSet with `rollingUpdate.partition: 1`: the restart is done by kubectl's partition
//!   rule (not a timeout), replaces only the ordinals at or above the partition, and reports the
//!   pod below it as still drifted, with the commands that move it (exit 4: work for the user).
//! - An `OnDelete` DaemonSet: `--ondelete=delete-pods` deletes its pods one at a time, each
//!   replacement Ready and injected by the new revision before the next deletion.
//! - Revision tags are also Services (Istio >= 1.28): `rev-relabel --tag default` moves the
//!   chart-rendered `istiod-revision-tag-default` with the webhooks, and `--undo` moves both back.
//! - A gateway installed without a revision (the real gateway chart): once the default tag
//!   moves it is drifted; `rev-restart` names `--gateways`, which restarts it onto the new
//!   revision, while revisioned gateways stay excluded.
//!
//! Its own cluster: $REV_RESTART_E2E_STATE names the state dir (default: the suite's), so a
//! developer can run it beside another cluster.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rev_e2e::{Cluster, NEW_REV, OLD_REV, pod_revisions, show};
use serde_json::Value;

const NS: &str = "ledger";

fn fresh_cluster() -> Cluster {
    match std::env::var_os("REV_RESTART_E2E_STATE") {
        Some(state) => Cluster::fresh_in(&PathBuf::from(state)),
        None => Cluster::fresh(),
    }
}

fn workloads() -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: journal
  namespace: {NS}
spec:
  replicas: 3
  serviceName: journal
  podManagementPolicy: Parallel
  selector:
    matchLabels: {{app: journal}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {{partition: 1}}
  template:
    metadata:
      labels: {{app: journal}}
    spec:
      containers:
        - {{name: app, image: "registry.invalid/journal:1"}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
  namespace: {NS}
spec:
  selector:
    matchLabels: {{app: node-agent}}
  updateStrategy:
    type: OnDelete
  template:
    metadata:
      labels: {{app: node-agent}}
    spec:
      containers:
        - {{name: app, image: "registry.invalid/node-agent:1"}}
"#
    )
}

/// Live pods of `app`, with their uid and whether they are Ready.
fn pods_of(c: &Cluster, app: &str) -> Vec<(String, String, bool)> {
    let pods = c.get_json(&["pods", "-n", NS, "-l", &format!("app={app}")]);
    let mut out: Vec<_> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let ready = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                ready,
            )
        })
        .collect();
    out.sort();
    out
}

fn wait_ready(c: &Cluster, app: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pods = pods_of(c, app);
        if pods.len() == count && pods.iter().all(|p| p.2) {
            return;
        }
        assert!(Instant::now() < deadline, "{app}: pods not Ready: {pods:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn revisions(c: &Cluster, prefix: &str) -> Vec<(String, String)> {
    pod_revisions(c, NS)
        .into_iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .collect()
}

fn generation(c: &Cluster, what: &str) -> i64 {
    c.get_json(&[what, "-n", NS])["metadata"]["generation"]
        .as_i64()
        .unwrap_or_default()
}

/// `kubectl get pods -w` on `app`'s pods, recording every watch event. Its output is drained
/// as it comes: a pipe holds 64 KiB, and a blocked kubectl would stop watching.
struct PodWatch {
    child: std::process::Child,
    output: std::thread::JoinHandle<Vec<u8>>,
}

fn watch_pods(c: &Cluster, app: &str) -> PodWatch {
    let mut child = std::process::Command::new(c.tools.join("kubectl"))
        .env("KUBECONFIG", &c.kubeconfig)
        .args(["get", "pods", "-n", NS, "-l", &format!("app={app}")])
        .args(["-w", "--output-watch-events", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl watch starts");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let output = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut bytes);
        bytes
    });
    // The watch is established once kubectl has listed: give it that moment.
    std::thread::sleep(Duration::from_secs(2));
    PodWatch { child, output }
}

fn events_of(mut watch: PodWatch) -> Vec<Value> {
    let _ = watch.child.kill();
    let _ = watch.child.wait();
    let bytes = watch.output.join().unwrap_or_default();
    serde_json::Deserializer::from_slice(&bytes)
        .into_iter::<Value>()
        .filter_map(Result::ok)
        .collect()
}

/// The watch events as steps: `deleted` when an old pod is first seen terminating (or gone),
/// `ready` when a new pod is first seen Ready.
fn step_order(events: &[Value], before: &[(String, String, bool)]) -> Vec<&'static str> {
    let mut seen = std::collections::BTreeSet::new();
    let mut steps = Vec::new();
    for event in events {
        let pod = &event["object"];
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let old = before.iter().any(|b| b.1 == uid);
        let step = if old {
            (event["type"] == "DELETED" || !pod["metadata"]["deletionTimestamp"].is_null())
                .then_some("deleted")
        } else {
            pod["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
                .then_some("ready")
        };
        if let Some(step) = step
            && seen.insert(uid)
        {
            steps.push(step);
        }
    }
    steps
}

#[test]
#[ignore = "needs the local control plane (tests/cluster): run `make e2e`"]
fn restart_strategies_end_to_end() {
    let started = Instant::now();
    let c = fresh_cluster();
    c.install_new_revision();
    partitioned_statefulset_and_ondelete_daemonset_restart_as_kubectl_would(&c);
    revisionless_gateway_moves_with_the_default_by_gateways(&c);
    eprintln!(
        "restart strategies e2e: {:.0}s",
        started.elapsed().as_secs_f64()
    );
}

fn partitioned_statefulset_and_ondelete_daemonset_restart_as_kubectl_would(c: &Cluster) {
    c.kubectl_ok(&["create", "namespace", NS]);
    c.kubectl_ok(&["label", "namespace", NS, &format!("istio.io/rev={OLD_REV}")]);
    let manifest = c.state.join("restart-strategies.yaml");
    std::fs::write(&manifest, workloads()).expect("write manifest");
    c.kubectl_ok(&["apply", "-f", &manifest.display().to_string()]);
    wait_ready(c, "journal", 3);
    wait_ready(c, "node-agent", 3);
    let old = |names: &[&str]| -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| (n.to_string(), OLD_REV.to_string()))
            .collect()
    };
    assert_eq!(
        revisions(c, "journal"),
        old(&["journal-0", "journal-1", "journal-2"])
    );
    let agents_before = pods_of(c, "node-agent");

    // Guide step 3: the namespace moves to the new revision (plain kubectl).
    c.kubectl_ok(&[
        "label",
        "namespace",
        NS,
        &format!("istio.io/rev={NEW_REV}"),
        "--overwrite",
    ]);

    // The plan says which ordinal the partition keeps, before anything happens.
    let plan = c.plugin(
        "rev-restart",
        &[NS, "--ondelete=delete-pods", "--dry-run=client"],
    );
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan_text
            .contains("statefulset/journal: partition 1 keeps journal-0 on their current sidecar"),
        "{}",
        show(&plan)
    );

    let watcher = watch_pods(c, "node-agent");
    let out = c.plugin(
        "rev-restart",
        &[
            NS,
            "--ondelete=delete-pods",
            "--timeout=2m",
            "--yes",
            "-o",
            "json",
        ],
    );
    // Done by the partition rule: no timeout, no failure; the kept pod is work left for the
    // user (exit 4), named with its fixes.
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    let outcome = |name: &str| -> Value {
        report["workloads"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| w["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {report}"))
    };
    let journal = outcome("journal");
    assert_eq!(journal["result"], "restarted", "{report}");
    assert_eq!(journal["podsVerified"], 2, "{report}");
    assert_eq!(journal["leftDrifted"], serde_json::json!(["journal-0"]));
    let kept = report["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["reason"] == "partition")
        .unwrap_or_else(|| panic!("no partition skip in {report}"));
    assert_eq!(kept["pods"], serde_json::json!(["journal-0"]));
    assert!(
        kept["fix"]
            .as_str()
            .is_some_and(|f| f.contains("kubectl delete pod journal-0 -n ledger")),
        "{kept}"
    );
    let agent = outcome("node-agent");
    assert_eq!(agent["result"], "restarted", "{report}");
    assert_eq!(agent["podsVerified"], 3, "{report}");

    // From the API: the ordinals above the partition run the new sidecar, the one below it
    // still the old; every DaemonSet pod is a new pod with the new sidecar.
    assert_eq!(
        revisions(c, "journal"),
        vec![
            ("journal-0".to_string(), OLD_REV.to_string()),
            ("journal-1".to_string(), NEW_REV.to_string()),
            ("journal-2".to_string(), NEW_REV.to_string()),
        ]
    );
    let agents_after = pods_of(c, "node-agent");
    assert_eq!(agents_after.len(), 3, "{agents_after:?}");
    assert!(
        agents_after
            .iter()
            .all(|(_, uid, ready)| *ready && !agents_before.iter().any(|b| &b.1 == uid)),
        "before {agents_before:?}, after {agents_after:?}"
    );
    assert!(
        revisions(c, "node-agent")
            .iter()
            .all(|(_, rev)| rev == NEW_REV),
        "{:?}",
        revisions(c, "node-agent")
    );

    // One at a time, from the API's own watch: every deletion of an old pod came after the
    // replacement of the previous one was Ready.
    let order = step_order(&events_of(watcher), &agents_before);
    assert_eq!(
        order,
        ["deleted", "ready", "deleted", "ready", "deleted", "ready"],
        "DaemonSet pods were not replaced one at a time"
    );

    // A second run restarts nothing: only drift below the partition is left, and it is named.
    let journal_generation = generation(c, "statefulset/journal");
    let again = c.plugin("rev-restart", &[NS, "--ondelete=delete-pods", "--yes"]);
    assert_eq!(again.status.code(), Some(4), "{}", show(&again));
    let again_text = String::from_utf8_lossy(&again.stdout);
    assert!(
        again_text.contains("Nothing to restart"),
        "{}",
        show(&again)
    );
    assert!(again_text.contains("journal-0"), "{}", show(&again));
    assert_eq!(generation(c, "statefulset/journal"), journal_generation);
}

/// The `default` tag's Service (Istio >= 1.28), as the istiod chart renders it with
/// `revisionTags={default}`: `rev-relabel --tag` moves it with the webhooks, `--undo` moves both
/// back; then the tag is moved for good.
fn tag_service_moves_with_the_tag_and_back(c: &Cluster) {
    let chart = c
        .tools
        .parent()
        .expect("cache dir")
        .join("charts")
        .join(OLD_REV)
        .join("istiod");
    let rendered = c.helm_ok(&[
        "template",
        &format!("istiod-{OLD_REV}"),
        &chart.display().to_string(),
        "-n",
        "istio-system",
        "--set",
        &format!("revision={OLD_REV}"),
        "--set",
        "revisionTags={default}",
        "-s",
        "templates/revision-tags-svc.yaml",
    ]);
    let file = c.state.join("tag-service.yaml");
    std::fs::write(&file, rendered).expect("write tag Service");
    c.kubectl_ok(&["apply", "-f", &file.display().to_string()]);
    let service_revision = || -> (String, String) {
        let svc = c.get_json(&[
            "service",
            "istiod-revision-tag-default",
            "-n",
            "istio-system",
        ]);
        (
            svc["metadata"]["labels"]["istio.io/rev"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            svc["spec"]["selector"]["istio.io/rev"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    let both = |rev: &str| (rev.to_string(), rev.to_string());
    let agree = |what: &str| {
        let inventory = c.plugin("rev-inventory", &["-A", "-o", "json"]);
        assert!(
            !String::from_utf8_lossy(&inventory.stdout).contains("tag-service-disagrees"),
            "{what}: {}",
            show(&inventory)
        );
    };
    assert_eq!(service_revision(), both(OLD_REV));
    agree("before");

    let tag = c.plugin("rev-relabel", &["--tag", "default", NEW_REV, "--yes"]);
    assert!(tag.status.success(), "{}", show(&tag));
    assert!(
        String::from_utf8_lossy(&tag.stdout).contains("service/istiod-revision-tag-default"),
        "{}",
        show(&tag)
    );
    assert_eq!(service_revision(), both(NEW_REV));
    agree("after the retarget");

    let undo = c.plugin("rev-relabel", &["--undo", "--tag", "default", "--yes"]);
    assert!(undo.status.success(), "{}", show(&undo));
    assert_eq!(service_revision(), both(OLD_REV));
    agree("after the undo");

    let tag = c.plugin("rev-relabel", &["--tag", "default", NEW_REV, "--yes"]);
    assert!(tag.status.success(), "{}", show(&tag));
    assert_eq!(service_revision(), both(NEW_REV));
}

/// The real gateway chart without `revision`: its pods ask for injection with
/// `sidecar.istio.io/inject=true`, so the `default` tag's webhook injects them.
fn revisionless_gateway_moves_with_the_default_by_gateways(c: &Cluster) {
    const GW_NS: &str = "gw-plain";
    let chart = c
        .tools
        .parent()
        .expect("cache dir")
        .join("charts")
        .join(OLD_REV)
        .join("gateway");
    c.helm_ok(&[
        "install",
        "plain-gateway",
        &chart.display().to_string(),
        "-n",
        GW_NS,
        "--create-namespace",
        "--set",
        "service.type=ClusterIP",
        "--wait",
        "--timeout",
        "2m",
    ]);
    let sidecars = || -> Vec<String> {
        pod_revisions(c, GW_NS)
            .into_iter()
            .map(|(_, rev)| rev)
            .collect()
    };
    assert_eq!(sidecars(), [OLD_REV]);

    // Guide step 3: the default tag moves to the new revision — its webhooks and its Service.
    tag_service_moves_with_the_tag_and_back(c);

    let inventory = c.plugin("rev-inventory", &["-n", GW_NS, "-o", "json"]);
    assert!(
        String::from_utf8_lossy(&inventory.stdout).contains("gateway-drifted"),
        "{}",
        show(&inventory)
    );
    // Not without asking: it is left alone, named with the command that moves it.
    let plain = c.plugin("rev-restart", &[GW_NS, "--yes"]);
    assert_eq!(plain.status.code(), Some(4), "{}", show(&plain));
    assert!(
        String::from_utf8_lossy(&plain.stdout).contains("kubectl rev-restart gw-plain --gateways"),
        "{}",
        show(&plain)
    );
    assert_eq!(sidecars(), [OLD_REV]);

    let out = c.plugin("rev-restart", &[GW_NS, "--gateways", "--yes", "-o", "json"]);
    assert!(out.status.success(), "{}", show(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    assert_eq!(report["workloads"][0]["name"], "plain-gateway", "{report}");
    assert_eq!(report["workloads"][0]["result"], "restarted", "{report}");
    assert_eq!(sidecars(), [NEW_REV]);

    // Revisioned gateways move by a new Helm release, never by --gateways.
    let revisioned = c.plugin(
        "rev-restart",
        &["istio-ingress", "--all", "--gateways", "--dry-run=client"],
    );
    let text = String::from_utf8_lossy(&revisioned.stdout);
    assert!(
        text.contains("Nothing to restart")
            && text.contains(&format!(
                "istio-ingressgateway-{OLD_REV}: Istio gateway of a revision"
            )),
        "{}",
        show(&revisioned)
    );
}
