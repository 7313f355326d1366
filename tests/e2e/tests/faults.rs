//! Issue 11 item 4 on the real local control plane: one mutating run at a time, and a run that
//! outlives a paused API server.
//!
//! - Two `rev-restart bookinfo --yes` at once: the second starts while the first holds the
//!   namespace's Lease; it is refused naming the holder and restarts nothing, and every
//!   workload is restarted exactly once (each Deployment's generation goes up by one).
//! - A restart during which the kube-apiserver process is stopped (SIGSTOP) for a few seconds,
//!   then continued (SIGCONT): requests and the rollout watch stall, then resume; the run
//!   completes every workload, each pod on the revision asked for.
//!
//! Runs on a fresh cluster of its own: $REV_FAULTS_E2E_STATE names its state dir (default
//! tests/cluster/.state, like the other e2e binaries, which run one after another).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rev_e2e::{Cluster, NEW_REV, OLD_REV, pod_revisions, show};
use serde_json::Value;

fn fresh_cluster() -> Cluster {
    match std::env::var_os("REV_FAULTS_E2E_STATE") {
        Some(state) => Cluster::fresh_in(&PathBuf::from(state)),
        None => Cluster::fresh(),
    }
}

/// `kubectl rev-restart args…` started in the background, as a second terminal would.
fn spawn_restart(c: &Cluster, args: &[&str]) -> Child {
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        c.plugins.display(),
        c.tools.display()
    );
    Command::new(c.tools.join("kubectl"))
        .arg("rev-restart")
        .args(args)
        .env("PATH", path)
        .env("KUBECONFIG", &c.kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove("KUBECTL_PLUGINS_PATH")
        .current_dir(&c.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl rev-restart starts")
}

/// Who holds the suite's run lock of `namespace` now ("" when nobody, or no Lease yet).
fn lease_holder(c: &Cluster, namespace: &str) -> String {
    let out = c.kubectl(&[
        "get",
        "lease",
        "kubectl-rev",
        "-n",
        namespace,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until a run holds the namespace's Lease.
fn wait_for_holder(c: &Cluster, namespace: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let holder = lease_holder(c, namespace);
        if !holder.is_empty() {
            return holder;
        }
        assert!(
            Instant::now() < deadline,
            "no run took the Lease of {namespace}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each Bookinfo Deployment's generation, by name.
fn generations(c: &Cluster) -> Vec<(String, i64)> {
    let list = c.get_json(&["deployments", "-n", "bookinfo"]);
    let mut out: Vec<(String, i64)> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                d["metadata"]["generation"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}

fn results(report: &Value) -> Vec<(String, String)> {
    report["workloads"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            (
                w["name"].as_str().unwrap_or_default().to_string(),
                w["result"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn assert_every_pod_on(c: &Cluster, revision: &str) {
    let pods = pod_revisions(c, "bookinfo");
    assert!(!pods.is_empty());
    assert!(
        pods.iter().all(|(_, rev)| rev == revision),
        "every pod on {revision}: {pods:?}"
    );
}

/// The kube-apiserver process of this cluster (tests/cluster records each pid it starts).
fn apiserver_pid(c: &Cluster) -> String {
    let pid = std::fs::read_to_string(c.state.join("pids/kube-apiserver.pid"))
        .expect("the apiserver's pid file");
    let pid = pid.trim().to_string();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "kube-apiserver", "pid {pid} is the apiserver");
    pid
}

fn signal(pid: &str, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, pid])
        .status()
        .expect("kill runs");
    assert!(ok.success(), "kill {sig} {pid}");
}

fn two_runs_at_once_restart_every_workload_once(c: &Cluster) {
    c.kubectl_ok(&[
        "label",
        "namespace",
        "bookinfo",
        &format!("istio.io/rev={NEW_REV}"),
        "--overwrite",
    ]);
    let before = generations(c);
    let first = spawn_restart(c, &["bookinfo", "--yes", "-o", "json", "--timeout", "3m"]);
    let holder = wait_for_holder(c, "bookinfo");
    assert!(holder.starts_with("rev-restart by "), "{holder}");

    let second = spawn_restart(c, &["bookinfo", "--yes", "-o", "json"])
        .wait_with_output()
        .expect("the second run ends");
    let first = first.wait_with_output().expect("the first run ends");
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    assert_eq!(second.status.code(), Some(1), "{}", show(&second));
    let refusal = String::from_utf8_lossy(&second.stderr);
    assert!(
        refusal.contains(&format!("another run holds namespace bookinfo: {holder}")),
        "the refusal names the holder:\n{}",
        show(&second)
    );

    let report: Value = serde_json::from_slice(&first.stdout).expect("the first run's report");
    let done = results(&report);
    assert_eq!(done.len(), before.len(), "{report}");
    assert!(done.iter().all(|(_, r)| r == "restarted"), "{done:?}");
    let after = generations(c);
    for ((name, g0), (_, g1)) in before.iter().zip(&after) {
        assert_eq!(*g1, g0 + 1, "{name} restarted exactly once");
    }
    assert_every_pod_on(c, NEW_REV);
    assert_eq!(lease_holder(c, "bookinfo"), "", "given back");
}

fn a_paused_apiserver_does_not_fail_the_run(c: &Cluster) {
    // Back to the old revision: every workload drifts again.
    c.kubectl_ok(&[
        "label",
        "namespace",
        "bookinfo",
        &format!("istio.io/rev={OLD_REV}"),
        "--overwrite",
    ]);
    let before = generations(c);
    let pid = apiserver_pid(c);
    let mut run = spawn_restart(c, &["bookinfo", "--yes", "-o", "json", "--timeout", "3m"]);
    wait_for_holder(c, "bookinfo");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        matches!(run.try_wait(), Ok(None)),
        "the run is still rolling when the apiserver stops"
    );
    signal(&pid, "-STOP");
    std::thread::sleep(Duration::from_secs(6));
    signal(&pid, "-CONT");

    let out = run.wait_with_output().expect("the run ends");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("the run's report");
    let done = results(&report);
    assert_eq!(done.len(), before.len(), "{report}");
    assert!(done.iter().all(|(_, r)| r == "restarted"), "{done:?}");
    let after = generations(c);
    for ((name, g0), (_, g1)) in before.iter().zip(&after) {
        assert_eq!(*g1, g0 + 1, "{name} restarted exactly once");
    }
    assert_every_pod_on(c, OLD_REV);
}

#[test]
#[ignore = "needs the local cluster (tests/cluster); run with --ignored"]
fn concurrent_runs_and_a_paused_apiserver() {
    let started = Instant::now();
    let c = fresh_cluster();
    c.install_new_revision();
    two_runs_at_once_restart_every_workload_once(&c);
    a_paused_apiserver_does_not_fail_the_run(&c);
    eprintln!("faults e2e took {:.0}s", started.elapsed().as_secs_f64());
}
