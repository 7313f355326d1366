//! `kubectl rev-restart --probe` end to end on a fresh local control plane (issue 13 item 2):
//! three drifted Deployments restarted one at a time while the probe sends traffic to a
//! loopback target (tests/probe-target, in this process). Once the second Deployment's restart
//! reaches the API server (its `kubectl.kubernetes.io/restartedAt` appears), the target fails
//! half its requests: the run stops after that rollout, blames it, prints its
//! `kubectl rollout undo` command, exits 1, and never restarts the third.
//!
//! The Deployments have `minReadySeconds: 8`, so each rollout lasts a few seconds as on a real
//! cluster (kwok marks pods Ready at once): the test can see the second restart begin and fail
//! the target while that rollout is still under way.
//!
//! Its own cluster: $REV_RESTART_PROBE_E2E_STATE names the state dir (default: the suite's), so
//! a developer can run it beside another cluster.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rev_e2e::{Cluster, NEW_REV, OLD_REV, pod_revisions, show};
use rev_test_probe_target::ProbeTarget;
use serde_json::Value;

const NS: &str = "canary";
const WORKLOADS: [&str; 3] = ["first", "second", "third"];

fn fresh_cluster() -> Cluster {
    match std::env::var_os("REV_RESTART_PROBE_E2E_STATE") {
        Some(state) => Cluster::fresh_in(&PathBuf::from(state)),
        None => Cluster::fresh(),
    }
}

fn deployments() -> String {
    WORKLOADS
        .iter()
        .map(|name| {
            format!(
                r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {NS}
spec:
  replicas: 1
  minReadySeconds: 8
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - {{name: app, image: "registry.invalid/{name}:1"}}
"#
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn deployment(c: &Cluster, name: &str) -> Value {
    c.get_json(&["deployment", name, "-n", NS])
}

fn restarted_at(d: &Value) -> Option<String> {
    d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .map(str::to_string)
}

fn wait_available(c: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = WORKLOADS.iter().all(|name| {
            let d = deployment(c, name);
            d["status"]["availableReplicas"].as_i64() == Some(1)
                && d["status"]["updatedReplicas"].as_i64() == Some(1)
                && d["status"]["replicas"].as_i64() == Some(1)
        });
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Deployments in {NS} not available"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
#[ignore = "needs the local control plane (tests/cluster): run `make e2e`"]
fn restart_probe_end_to_end() {
    let started = Instant::now();
    let c = fresh_cluster();
    c.install_new_revision();
    a_gate_breached_while_the_second_rolls_stops_the_run_and_blames_it(&c);
    eprintln!(
        "restart --probe e2e: {:.0}s",
        started.elapsed().as_secs_f64()
    );
}

fn a_gate_breached_while_the_second_rolls_stops_the_run_and_blames_it(c: &Cluster) {
    c.kubectl_ok(&["create", "namespace", NS]);
    c.kubectl_ok(&["label", "namespace", NS, &format!("istio.io/rev={OLD_REV}")]);
    let manifest = c.state.join("restart-probe.yaml");
    std::fs::write(&manifest, deployments()).expect("write manifest");
    c.kubectl_ok(&["apply", "-f", &manifest.display().to_string()]);
    wait_available(c);
    assert!(
        pod_revisions(c, NS).iter().all(|(_, rev)| rev == OLD_REV),
        "{:?}",
        pod_revisions(c, NS)
    );
    // Guide step 3: the namespace moves to the new revision; the three are now drifted.
    c.kubectl_ok(&[
        "label",
        "namespace",
        NS,
        &format!("istio.io/rev={NEW_REV}"),
        "--overwrite",
    ]);
    let third_generation = deployment(c, "third")["metadata"]["generation"].as_i64();

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let target = runtime
        .block_on(ProbeTarget::start())
        .expect("probe target");
    let url = format!("{}/", target.url());
    let plot = c.state.join("restart-probe.html");
    let plot_arg = plot.display().to_string();
    let args = [
        NS,
        "--probe",
        "--url",
        &url,
        "--rate",
        "100",
        "--max-error-rate",
        "0.05",
        "--plot",
        &plot_arg,
        "--yes",
        "-o",
        "json",
    ];

    let (out, failed_at) = std::thread::scope(|scope| {
        let run = scope.spawn(|| c.plugin("rev-restart", &args));
        // The second restart has reached the API server: from now on half the requests fail.
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut failed_at = None;
        while !run.is_finished() && Instant::now() < deadline {
            if restarted_at(&deployment(c, "second")).is_some() {
                target.fail_fraction(0.5);
                failed_at = Some(Instant::now());
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (run.join().expect("rev-restart ran"), failed_at)
    });
    assert!(
        failed_at.is_some(),
        "the second Deployment was never restarted: {}",
        show(&out)
    );

    // Exit 1: the run stopped on the gate, naming the workload blamed and its undo command.
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "breached a gate while deployment/second in {NS} rolled"
        )) && stderr.contains("--max-error-rate 5.00%"),
        "{}",
        show(&out)
    );
    let undo = format!("kubectl rollout undo deployment/second -n {NS}");
    assert!(stderr.contains(&undo), "{}", show(&out));

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
    // The first rolled on healthy traffic, and carries its figures.
    let first = outcome("first");
    assert_eq!(first["result"], "restarted", "{report}");
    assert!(first["probe"]["requests"].as_u64() > Some(0), "{first}");
    assert_eq!(first["probe"]["success"], 1.0, "{first}");
    assert!(first.get("gateBreaches").is_none(), "{first}");
    // The second rolled (its pods are on the new revision) while traffic failed: blamed.
    let second = outcome("second");
    assert_eq!(second["result"], "restarted", "{report}");
    assert_eq!(
        second["gateBreaches"][0]["gate"], "max-error-rate",
        "{second}"
    );
    assert!(second["probe"]["errors"].as_u64() > Some(0), "{second}");
    assert_eq!(second["undo"], undo.as_str(), "{second}");
    // The third was never touched: not run, no restartedAt, same generation.
    assert_eq!(outcome("third")["result"], "not-run", "{report}");
    let third = deployment(c, "third");
    assert_eq!(restarted_at(&third), None, "{third}");
    assert_eq!(third["metadata"]["generation"].as_i64(), third_generation);
    assert!(
        pod_revisions(c, NS)
            .iter()
            .filter(|(pod, _)| pod.starts_with("third-"))
            .all(|(_, rev)| rev == OLD_REV),
        "{:?}",
        pod_revisions(c, NS)
    );
    // The whole run's figures, and its plot with each rollout's start and finish marks.
    assert!(
        report["probe"]["figures"]["requests"].as_u64() > Some(0),
        "{report}"
    );
    let page = std::fs::read_to_string(&plot).expect("--plot wrote the page");
    for mark in [
        "restart deployment/canary/first started",
        "restart deployment/canary/second finished",
    ] {
        assert!(page.contains(mark), "{mark} not on the plot");
    }
    assert!(
        !page.contains("deployment/canary/third"),
        "third never rolled"
    );
}
