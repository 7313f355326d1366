//! CLI tests: `kubectl rev-prune` as users run it, planning from fixture dumps
//! (`--from-file`), its plan and refusal text snapshot-tested (insta) so every change to what
//! users see shows up in review. What it does to a live cluster is tested in
//! shared/tests/it/prune_api.rs (mocked API) and tests/e2e/tests/prune.rs (real cluster).

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;
use base64::Engine;
use rev_shared::snapshot::helm::encode_release_payload;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures")).join(name)
}

fn prune(args: &[&str]) -> Output {
    Command::cargo_bin("kubectl-rev_prune")
        .expect("binary built")
        .args(args)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        // No helm on PATH: the plan must not depend on the machine running the tests.
        .env("PATH", "/nonexistent")
        .output()
        .expect("runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// prune-after-step-3.yaml plus the Helm records of prune-helm-releases.yaml as the release
/// Secrets `kubectl get secret -o yaml` would show, in one dump file.
fn after_step_3_dump() -> PathBuf {
    let releases: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(fixture("prune-helm-releases.yaml")).unwrap(),
    )
    .unwrap();
    let mut text = std::fs::read_to_string(fixture("prune-after-step-3.yaml")).unwrap();
    for r in releases["releases"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let helm_text = String::from_utf8(encode_release_payload(r, true)).unwrap();
        let secret = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": format!("sh.helm.release.v1.{name}.v1"), "namespace": r["namespace"],
                         "labels": {"owner": "helm", "name": name, "status": "deployed", "version": "1"}},
            "data": {"release": base64::engine::general_purpose::STANDARD.encode(helm_text)},
        });
        text.push_str("\n---\n");
        text.push_str(&serde_json::to_string(&secret).unwrap());
        text.push('\n');
    }
    // One file per call: the tests of this binary run in parallel and each removes its own.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("rev-prune-cli-{}-{n}.yaml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn help_reads_as_a_kubectl_command() {
    let out = prune(&["--help"]);
    assert!(out.status.success());
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn plan_after_step_3_lists_releases_in_order_with_kept_objects() {
    let dump = after_step_3_dump();
    // Each gateway has its own address (as clouds give): the plan runs as after clients moved.
    let out = prune(&[
        "1-19",
        "--allow-address-change",
        "--from-file",
        &dump.display().to_string(),
    ]);
    let _ = std::fs::remove_file(&dump);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "dry run (client): nothing was sent\n");
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn an_address_that_would_disappear_is_refused_naming_old_and_new_even_with_force() {
    let dump = after_step_3_dump();
    let out = prune(&[
        "1-19",
        "--force",
        "--from-file",
        &dump.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: refused: 2 preflight check(s) failed (listed above); nothing was changed\n"
    );
    let text = stdout(&out);
    insta::assert_snapshot!(text);

    let json = prune(&[
        "1-19",
        "-o",
        "json",
        "--from-file",
        &dump.display().to_string(),
    ]);
    let _ = std::fs::remove_file(&dump);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("a JSON plan");
    let blocker = &doc["blockers"][1];
    assert_eq!(blocker["reason"], "address-would-disappear");
    assert_eq!(blocker["addresses"], serde_json::json!(["203.0.113.10"]));
    assert_eq!(
        blocker["successors"][0]["addresses"],
        serde_json::json!(["203.0.113.20"])
    );
    assert_eq!(blocker["forceable"], false);
    let old = &doc["addresses"][2];
    assert_eq!(old["gateway"], "istio-ingressgateway-1-19");
    assert_eq!(old["services"][0]["addresses"][0]["survives"], false);
}

#[test]
fn refusal_mid_upgrade_lists_every_blocker_with_its_fix() {
    let out = prune(&[
        "1-19",
        "--from-file",
        &fixture("control-plane-1-19-and-1-20.yaml")
            .display()
            .to_string(),
        "--from-file",
        &fixture("bookinfo-mid-upgrade.yaml").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: refused: 4 preflight check(s) failed (listed above); nothing was changed\n  \
         hint: fix them (each lists its fix), or re-run with --force to override\n"
    );
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
    insta::with_settings!({filters => vec![(root, "[fixtures]")]}, {
        insta::assert_snapshot!(stdout(&out));
    });
}

#[test]
fn pruning_the_revision_namespaces_use_is_refused() {
    let dump = after_step_3_dump();
    let out = prune(&["1-20", "--from-file", &dump.display().to_string()]);
    let _ = std::fs::remove_file(&dump);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    for blocker in [
        "namespace/bookinfo: istio.io/rev=1-20",
        "tag/default",
        "validatingwebhookconfiguration/istiod-default-validator",
    ] {
        assert!(text.contains(blocker), "{blocker} missing from:\n{text}");
    }
}

#[test]
fn a_revision_with_nothing_left_is_nothing_to_do_naming_the_installed_ones() {
    // Re-running a prune that succeeded (or naming a revision never installed) changes nothing
    // and says what is installed: exit 0, as for any removal already done.
    let dump = after_step_3_dump();
    let out = prune(&["1-17", "--from-file", &dump.display().to_string()]);
    let _ = std::fs::remove_file(&dump);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn pruning_a_tag_is_an_error_naming_its_revision() {
    let out = prune(&[
        "prod",
        "--from-file",
        &fixture("control-plane-1-19-and-1-20.yaml")
            .display()
            .to_string(),
        "--from-file",
        &fixture("revision-tags.yaml").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("revision tag pointing at"), "{err}");
}

#[test]
fn malformed_revision_is_a_usage_error_saying_how_to_write_it() {
    let out = prune(&["1.19"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("use 1-20, not 1.20"), "{err}");
}

#[test]
fn server_dry_run_of_a_dump_is_a_usage_error() {
    let out = prune(&["1-19", "--from-file", "x.yaml", "--dry-run=server"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--from-file only plans"));
}
