//! The local control plane itself: Istio's own webhooks, evaluated by the real API server, decide
//! which revision injects a pod (smoke.sh), a crashed cluster does not block the next `up`, and
//! `down` leaves no process and no listening port behind.

use std::process::Command;

use rev_e2e::Cluster;

fn bash(c: &Cluster, args: &[&str]) -> (bool, String) {
    let out = Command::new("bash")
        .args(args)
        .current_dir(&c.root)
        .env("REV_CLUSTER_STATE", &c.state)
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Processes whose command line names this cluster's state dir (how cluster.sh tells its own).
fn our_processes(c: &Cluster) -> Vec<String> {
    let needle = format!("{}/", c.state.display());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|cmd| cmd.contains(&needle))
        .collect()
}

fn listening(port: &str) -> bool {
    let out = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .expect("ss runs");
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

fn ports(c: &Cluster) -> Vec<String> {
    std::fs::read_to_string(c.state.join("ports.env"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(_, v)| v.trim().to_string()))
        .collect()
}

#[test]
#[ignore = "needs the local control plane (tests/cluster): run `make e2e`"]
fn webhooks_decide_injection_and_the_cluster_survives_a_crash() {
    let c = Cluster::fresh();
    c.install_new_revision();

    // smoke.sh: Bookinfo injected by the old revision, relabel + rollout restart gives the new
    // one, and a namespace with both istio-injection=enabled and istio.io/rev gets the default
    // revision's sidecar — all decided by the charts' webhooks in the real API server.
    let (ok, text) = bash(&c, &["tests/cluster/smoke.sh"]);
    assert!(ok && text.contains(", 0 failed"), "{text}");

    // Simulate a crash: kill -9 every process the cluster started; `up` must work again.
    let pids: Vec<String> = std::fs::read_dir(c.state.join("pids"))
        .expect("pid dir")
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|p| p.trim().to_string())
        .collect();
    assert!(pids.len() >= 6, "{pids:?}");
    let status = Command::new("kill")
        .arg("-9")
        .args(&pids)
        .status()
        .expect("kill runs");
    assert!(status.success());
    let (ok, text) = bash(&c, &["tests/cluster/cluster.sh", "up"]);
    assert!(ok, "up after a crash: {text}");
    let nodes = c.kubectl_ok(&["get", "nodes", "--no-headers"]);
    assert_eq!(
        nodes.lines().filter(|l| l.contains(" Ready ")).count(),
        3,
        "{nodes}"
    );

    // `down` stops exactly what it started and frees every port.
    let used = ports(&c);
    assert!(!used.is_empty());
    let (ok, text) = bash(&c, &["tests/cluster/cluster.sh", "down"]);
    assert!(ok, "{text}");
    assert_eq!(our_processes(&c), Vec::<String>::new());
    for port in used {
        assert!(!listening(&port), "port {port} still listening after down");
    }
    assert!(!c.state.exists(), "state dir removed");
}
