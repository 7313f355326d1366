//! CLI tests that need no cluster: help text and usage errors, snapshot-tested (insta). The
//! behaviour against a real API server is in tests/e2e.

use assert_cmd::Command;

fn relabel(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("kubectl-rev_relabel")
        .expect("built")
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent")
        .output()
        .expect("runs")
}

#[test]
fn help_reads_as_a_kubectl_command() {
    let out = relabel(&["--help"]);
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn usage_errors_say_what_to_type_and_exit_2() {
    for (args, expected) in [
        (&[][..], "missing REVISION"),
        (&["1-20"][..], "name the namespaces"),
        (&["bookinfo", "1-20", "--from", "1-19"][..], "not several"),
        (&["bookinfo", "1-20", "-A"][..], "-A goes with --from"),
        (&["--tag", "prod"][..], "exactly one REVISION"),
    ] {
        let out = relabel(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn malformed_revision_is_refused_before_any_connection() {
    let out = relabel(&["bookinfo", "1.20"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a malformed name is a usage error"
    );
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stderr));
}
