//! CLI tests: `kubectl rev-plan` as users run it, on fixture dumps; what it prints is
//! snapshot-tested (insta), so every change to the runbook's wording shows up in review.

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;

fn fixture(name: &str) -> String {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"))
        .join(name)
        .display()
        .to_string()
}

/// Istio 1-30 and 1-31 installed, bookinfo moved to 1-31, shop still on 1-30, the default tag
/// on 1-30: halfway through guide step 3.
const HALF_MOVED: [&str; 4] = [
    "runbook-1-30-installed.yaml",
    "runbook-1-31-installed.yaml",
    "runbook-default-tag-1-30.yaml",
    "runbook-apps-half-moved.yaml",
];

fn plan(files: &[&str], extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec!["1-31".into()];
    for f in files {
        args.push("--from-file".into());
        args.push(fixture(f));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::cargo_bin("kubectl-rev_plan")
        .expect("binary built")
        .args(&args)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fixture paths differ between machines: name them by file only.
fn without_paths(text: &str) -> String {
    text.replace(&fixture(""), "")
}

#[test]
fn half_moved_runbook_as_text() {
    let out = plan(&HALF_MOVED, &["--istio-version", "1.31.0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    insta::assert_snapshot!(without_paths(&stdout(&out)));
}

#[test]
fn before_the_upgrade_runbook_as_text() {
    let out = plan(
        &[
            "runbook-1-30-installed.yaml",
            "runbook-default-tag-1-30.yaml",
            "runbook-apps-on-1-30.yaml",
        ],
        &["--istio-version", "1.31.0"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    insta::assert_snapshot!(without_paths(&stdout(&out)));
}

#[test]
fn pruned_cluster_says_every_step_is_done() {
    let out = plan(
        &[
            "runbook-1-31-only.yaml",
            "runbook-default-tag-1-31.yaml",
            "runbook-apps-on-1-31.yaml",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Every step is done."), "{text}");
    assert!(
        !text.contains("[next]") && !text.contains("[pending]"),
        "{text}"
    );
}

#[test]
fn json_is_a_versioned_document_with_every_step() {
    let out = plan(&HALF_MOVED, &["--istio-version", "1.31.0", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["apiVersion"], "plan.kubectl-rev.dev/v1alpha1");
    assert_eq!(doc["kind"], "UpgradePlan");
    assert_eq!(doc["model"], "single-cluster");
    let steps = doc["steps"].as_array().expect("steps");
    let relabel = steps
        .iter()
        .find(|s| s["kind"] == "relabel")
        .expect("relabel step");
    assert_eq!(relabel["status"]["state"], "next");
    assert_eq!(relabel["commands"][0], "kubectl rev-relabel shop 1-31");
    insta::assert_snapshot!(without_paths(&stdout(&out)));
}

#[test]
fn sh_is_a_script_of_the_pending_steps_pausing_before_each_change() {
    let out = plan(&HALF_MOVED, &["--istio-version", "1.31.0", "-o", "sh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let script = stdout(&out);
    assert!(script.starts_with("#!/usr/bin/env bash\n"), "{script}");
    assert!(script.contains("set -euo pipefail"), "{script}");
    // Done steps are left out; each mutating step is preceded by its pause.
    assert!(
        !script.contains("helm upgrade --install istiod-1-31"),
        "{script}"
    );
    let lines: Vec<&str> = script.lines().collect();
    let relabel = lines
        .iter()
        .position(|l| *l == "kubectl rev-relabel shop 1-31 --yes")
        .expect("relabel command");
    assert!(
        lines[relabel - 1].starts_with("confirm 'step 3 ("),
        "{script}"
    );
    insta::assert_snapshot!(without_paths(&script));
}

#[test]
fn values_dir_writes_one_file_per_new_release_and_shows_the_diff() {
    let dir = std::env::temp_dir().join(format!("rev-plan-values-{}", std::process::id()));
    let out = plan(
        &[
            "runbook-1-30-installed.yaml",
            "runbook-default-tag-1-30.yaml",
            "runbook-apps-on-1-30.yaml",
        ],
        &[
            "--istio-version",
            "1.31.0",
            "--values-dir",
            &dir.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let istiod = std::fs::read_to_string(dir.join("istiod-1-31.yaml")).expect("istiod values");
    assert!(istiod.contains("revision: 1-31"), "{istiod}");
    assert!(istiod.contains("cpu: 750m"), "{istiod}");
    let gateway = std::fs::read_to_string(dir.join("istio-ingressgateway-1-31.yaml"))
        .expect("gateway values");
    assert!(gateway.contains("revision: 1-31"), "{gateway}");
    let text = stdout(&out).replace(&dir.display().to_string(), "DIR");
    let diff = &text[text.find("VALUES CARRIED OVER").expect("diff shown")..];
    insta::assert_snapshot!(diff);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_malformed_revision_is_a_usage_error() {
    let out = Command::cargo_bin("kubectl-rev_plan")
        .expect("binary built")
        .args([
            "1.31",
            "--from-file",
            &fixture("runbook-1-30-installed.yaml"),
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
