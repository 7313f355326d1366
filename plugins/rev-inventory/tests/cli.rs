//! CLI tests: the binary as users run it, its output snapshot-tested (insta), so every change to
//! what users see shows up in review.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures")).join(name)
}

/// The Bookinfo-on-two-revisions fixture, halfway through upgrade step 3.
fn mid_upgrade_args() -> Vec<String> {
    [
        "control-plane-1-19-and-1-20.yaml",
        "bookinfo-mid-upgrade.yaml",
    ]
    .iter()
    .flat_map(|f| ["--from-file".to_string(), fixture(f).display().to_string()])
    .collect()
}

fn inventory(args: &[&str]) -> Output {
    Command::cargo_bin("kubectl-rev_inventory")
        .expect("binary built")
        .args(args)
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

fn mid_upgrade(extra: &[&str]) -> Output {
    let mut args = mid_upgrade_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    inventory(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn mid_upgrade_table() {
    let out = mid_upgrade(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "stderr stays clean without a terminal");
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn mid_upgrade_wide_table() {
    let out = mid_upgrade(&["-o", "wide"]);
    assert!(out.status.success());
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn mid_upgrade_json() {
    let out = mid_upgrade(&["-o", "json"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON on stdout");
    assert_eq!(doc["apiVersion"], "inventory.kubectl-rev.dev/v1alpha1");
    let bookinfo = doc["clusters"][0]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "bookinfo")
        .unwrap();
    assert_eq!(bookinfo["podsNeedingRestart"], 3);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
    insta::with_settings!({filters => vec![(root, "[fixtures]")]}, {
        insta::assert_snapshot!(text);
    });
}

#[test]
fn yaml_output_is_the_same_document() {
    let json: serde_json::Value =
        serde_json::from_slice(&mid_upgrade(&["-o", "json"]).stdout).unwrap();
    let yaml = stdout(&mid_upgrade(&["-o", "yaml"]));
    assert!(
        yaml.contains("apiVersion: inventory.kubectl-rev.dev/v1alpha1"),
        "{yaml}"
    );
    assert!(yaml.contains(&format!(
        "podsNeedingRestart: {}",
        json["clusters"][0]["namespaces"][0]["podsNeedingRestart"]
    )));
}

#[test]
fn name_output_lists_namespaces_to_restart() {
    assert_eq!(
        stdout(&mid_upgrade(&["-o", "name"])),
        "namespace/bookinfo\n"
    );
}

#[test]
fn namespace_flag_narrows_the_namespaces_and_their_findings() {
    let out = mid_upgrade(&["-n", "istio-ingress", "--no-headers"]);
    let text = stdout(&out);
    assert!(!text.contains("bookinfo"), "{text}");
    assert!(text.contains("istio-ingress"), "{text}");
    assert!(!text.contains("REVISIONS"), "--no-headers drops titles too");
}

#[test]
fn label_selector_narrows_namespaces() {
    let text = stdout(&mid_upgrade(&["-l", "istio.io/rev=1-20"]));
    let ns_section = text
        .split("NAMESPACES")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    assert!(
        ns_section.contains("bookinfo") && !ns_section.contains("kube-system"),
        "{ns_section}"
    );
}

#[test]
fn unknown_namespace_is_an_error_naming_it() {
    let out = mid_upgrade(&["-n", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(stderr(&out));
}

#[test]
fn fail_on_makes_findings_an_exit_code() {
    assert_eq!(
        mid_upgrade(&["--fail-on", "warning"]).status.code(),
        Some(3)
    );
    assert_eq!(mid_upgrade(&["--fail-on", "error"]).status.code(), Some(0));
    let broken = inventory(&[
        "--from-file",
        fixture("pruned-too-early.yaml").to_str().unwrap(),
        "--fail-on",
        "error",
    ]);
    assert_eq!(broken.status.code(), Some(3));
    assert!(stdout(&broken).contains("default-validator-target-missing"));
}

#[test]
fn help_reads_as_a_kubectl_command() {
    let out = inventory(&["--help"]);
    assert!(out.status.success());
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn malformed_kubeconfig_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("rev-inv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.yaml");
    std::fs::write(&path, "clusters: [this is: not valid").unwrap();
    let out = inventory(&["--kubeconfig", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: cannot load kubeconfig"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"));
}

fn kubeconfig_for(server: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rev-inv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("kc-{}.yaml", server.replace([':', '/', '.'], "_")));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: here\nclusters: [{{name: c, cluster: {{server: \"{server}\"}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: here, context: {{cluster: c, user: u}}}}]\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn unknown_context_lists_the_known_ones() {
    let kc = kubeconfig_for("https://127.0.0.1:9");
    let out = inventory(&[
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--context",
        "prod-east",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("context \"prod-east\" not found") && err.contains("known: here"),
        "{err}"
    );
}

#[test]
fn unreachable_server_fails_fast_with_advice() {
    // Nothing listens on the discard port: the connection is refused at once.
    let kc = kubeconfig_for("https://127.0.0.1:9");
    let started = Instant::now();
    let out = inventory(&[
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--request-timeout",
        "5s",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach the API server") && err.contains("hint:"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A dump step that produced nothing, or the wrong thing, must not pass a CI gate as a clean
/// mesh: each is an error naming the file and what was found.
#[test]
fn a_dump_with_no_kubernetes_object_is_an_error_naming_what_was_found() {
    let dir = std::env::temp_dir().join(format!("rev-inventory-junk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cases = [
        ("empty.yaml", "", "holds no Kubernetes object"),
        ("blank.yaml", "\n\n---\n", "holds no Kubernetes object"),
        ("array.json", "[1, 2]", "found a sequence"),
        ("text.txt", "hello\n", "found plain text"),
        (
            "mapping.yaml",
            "foo: bar\n",
            "found a mapping without apiVersion and kind (keys: foo)",
        ),
        (
            "object.json",
            r#"{"metadata": {"name": "x"}}"#,
            "without apiVersion and kind",
        ),
    ];
    for (name, text, found) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write the dump");
        let path = path.display().to_string();
        let out = inventory(&["--from-file", &path, "--fail-on", "warning"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains(&format!("cannot read {path}")),
            "{name}: {err}"
        );
        assert!(err.contains(found), "{name}: {err}");
        assert!(stdout(&out).is_empty(), "{name}: no report on nothing");
    }
    let out = inventory(&["--from-file", "/dev/null"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Objects, but not the ones the analysis needs: reported, and `--fail-on warning` fails.
#[test]
fn a_dump_without_namespaces_or_webhooks_warns_and_fails_the_gate() {
    let only_bookinfo = fixture("bookinfo-mid-upgrade.yaml").display().to_string();
    let out = inventory(&["--from-file", &only_bookinfo, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let warnings = report["clusters"][0]["warnings"].to_string();
    assert!(
        warnings.contains("no MutatingWebhookConfiguration"),
        "{warnings}"
    );
    let gated = inventory(&["--from-file", &only_bookinfo, "--fail-on", "warning"]);
    assert_eq!(gated.status.code(), Some(3), "{}", stderr(&gated));
}
