//! CLI tests that need no cluster: help text and flag validation, snapshot-tested (insta). The
//! behaviour against a real API server is in tests/e2e.

use assert_cmd::Command;

fn restart(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("kubectl-rev_restart")
        .expect("built")
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent")
        .output()
        .expect("runs")
}

#[test]
fn help_reads_as_a_kubectl_command() {
    let out = restart(&["--help"]);
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn bad_flag_values_are_usage_errors() {
    for (args, expected) in [
        (
            &["--kind", "cronjob"][..],
            "expected deployment, statefulset or daemonset",
        ),
        (&["--max-parallel", "0"][..], "max-parallel"),
        (&["--timeout", "5x"][..], "unknown unit"),
        (&["--ondelete", "maybe"][..], "ondelete"),
    ] {
        let out = restart(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn no_kubeconfig_is_a_clear_error() {
    let out = restart(&["-n", "bookinfo"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: cannot load kubeconfig") && err.contains("hint:"),
        "{err}"
    );
}

fn fixture(name: &str) -> String {
    format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// What a user reads before a restart of partitioned StatefulSets and an OnDelete DaemonSet:
/// which pods the partition keeps on the old sidecar, and the commands that move them.
#[test]
fn plan_names_the_pods_a_partition_keeps_and_deletes_ondelete_daemonset_pods() {
    let (control_plane, partition, daemonset) = (
        fixture("control-plane-1-19-and-1-20.yaml"),
        fixture("statefulset-partition.yaml"),
        fixture("ondelete-daemonset.yaml"),
    );
    let out = restart(&[
        "ledger",
        "nodes",
        "--ondelete=delete-pods",
        "--dry-run=client",
        "--from-file",
        &control_plane,
        "--from-file",
        &partition,
        "--from-file",
        &daemonset,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A client dry run plans only: it exits 0 (the real run exits 4 for the kept pods).
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!(stdout);
}
