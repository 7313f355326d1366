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

/// The probe's options are rev-probe's, behind `--probe`: none is taken without it, `--probe`
/// needs a target, and `--duration` is refused (the probe spans the whole run).
#[test]
fn probe_flags_need_probe_and_probe_needs_a_target() {
    for (args, expected) in [
        (
            &["--probe"][..],
            "--url <URL>|--gateway <NS/NAME>|--port-forward",
        ),
        (&["--url", "http://127.0.0.1:9/"][..], "--probe"),
        (&["--rate", "10"][..], "--probe"),
        (&["--max-error-rate", "1%"][..], "--probe"),
        (
            &[
                "--probe",
                "--url",
                "http://127.0.0.1:9/",
                "--duration",
                "1m",
            ][..],
            "--duration does not apply to rev-restart --probe",
        ),
        (
            &[
                "--probe",
                "--url",
                "http://127.0.0.1:9/",
                "--gateway",
                "a/b",
            ][..],
            "cannot be used with",
        ),
        (&["--probe", "--url", "not a url"][..], "--url"),
    ] {
        let mut all = vec!["-n", "bookinfo"];
        all.extend_from_slice(args);
        let out = restart(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// The plan of a `--probe` run says what is probed, at what rate, and what stops the run;
/// a client dry run sends nothing to the target.
#[test]
fn plan_with_probe_names_the_target_and_its_gates() {
    let out = restart(&[
        "bookinfo",
        "--dry-run=client",
        "--from-file",
        &fixture("control-plane-1-19-and-1-20.yaml"),
        "--from-file",
        &fixture("bookinfo-mid-upgrade.yaml"),
        "--probe",
        "--url",
        "http://127.0.0.1:9/productpage",
        "--rate",
        "20",
        "--max-error-rate",
        "1%",
        "--max-p99",
        "500ms",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!(stdout);
}
