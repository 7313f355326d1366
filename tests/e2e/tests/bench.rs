//! `make bench` works (issue 12): the live benchmark at its small scale (400 namespaces, 2,000
//! Deployments, 10,000 pods on its own local cluster), one run of each variant. Only that the
//! script produces every figure is checked: timings are the benchmark's business, never a
//! test's.

use std::process::Command;

use serde_json::Value;

#[test]
#[ignore = "e2e: builds and populates its own local control plane (several minutes)"]
fn the_live_benchmark_produces_every_figure_at_the_small_scale() {
    let root = rev_e2e::repo_root();
    let status = Command::new("python3")
        .arg(root.join("tests/bench/live.py"))
        .args([
            "--scale",
            "small",
            "--runs",
            "1",
            "--restart-workloads",
            "10",
            "--plugins",
        ])
        .arg(rev_e2e::plugin_dir(&root))
        .current_dir(&root)
        .status()
        .expect("python3 runs the benchmark");
    assert!(status.success(), "tests/bench/live.py failed: {status}");

    let path = root.join("target/bench/live-small.json");
    let text = std::fs::read_to_string(&path).expect("the benchmark writes its results");
    let results: Value = serde_json::from_str(&text).expect("results are JSON");
    assert_eq!(results["scale"]["pods"], 10_000);
    for variant in ["inventory", "pipeline", "floor", "restart-ns"] {
        for figure in [
            "wall_min",
            "wall_median",
            "wall_max",
            "peak_mib",
            "requests",
            "served_mb",
        ] {
            let value = results[variant][figure].as_f64();
            assert!(
                value.is_some_and(|v| v > 0.0),
                "{variant}.{figure} missing or zero: {}",
                results[variant]
            );
        }
    }
    for ratio in [
        "inventory/pipeline wall",
        "inventory/pipeline memory",
        "inventory/floor wall",
    ] {
        assert!(results["ratios"][ratio].as_f64().is_some(), "ratio {ratio}");
    }
    for parallel in ["parallel_1", "parallel_4"] {
        let run = &results["restart_overhead"][parallel];
        assert_eq!(run["workloads"], 10, "{parallel}: {run}");
        assert_eq!(
            run["restarted"], 10,
            "{parallel}: every drifted Deployment restarted"
        );
    }
    // The namespaced command read one namespace's pods, not the cluster's.
    let restart_uris = results["restart_ns_uris"]
        .as_array()
        .expect("restart-ns requests");
    assert!(
        restart_uris.iter().filter_map(Value::as_str).all(|u| {
            let path = u.split('?').next().unwrap_or(u);
            !(path == "/api/v1/pods" || path == "/apis/apps/v1/replicasets")
        }),
        "rev-restart <ns> listed pods or ReplicaSets cluster-wide: {restart_uris:?}"
    );
}
