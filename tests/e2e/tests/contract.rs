//! The contract every plugin keeps with scripts, checked on the built executables (no cluster):
//! the same bad input gives the same exit code and the same shape of message everywhere, and a
//! reader that closes the pipe early is not an error.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rev_e2e::PLUGINS;

fn executable(plugin: &str) -> PathBuf {
    rev_e2e::built_plugin(plugin)
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
        .display()
        .to_string()
}

fn run(plugin: &str, args: &[&str]) -> Output {
    Command::new(executable(plugin))
        .args(args)
        // No kubeconfig of the machine running the tests leaks in.
        .env("KUBECONFIG", "/nonexistent/rev-contract-kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::null())
        .output()
        .expect("the plugin runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_unknown_flag_is_a_usage_error_with_usage_in_every_plugin() {
    for plugin in PLUGINS {
        let out = run(plugin, &["--no-such-flag"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{plugin}: {err}");
        assert!(err.contains("Usage: kubectl rev-"), "{plugin}: {err}");
        assert!(
            out.stdout.is_empty(),
            "{plugin}: usage errors keep stdout clean"
        );
    }
}

#[test]
fn an_unreachable_api_server_exits_1_naming_the_server_and_what_to_do() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let server = "https://127.0.0.1:1";
    for plugin in PLUGINS {
        let mut args = vec!["--server", server, "--request-timeout", "5s"];
        match plugin {
            "kubectl-rev_relabel" => args.extend(["bookinfo", "1-20", "--yes"]),
            "kubectl-rev_prune" => args.extend(["1-19", "--yes"]),
            "kubectl-rev_restart" => args.extend(["--yes"]),
            "kubectl-rev_plan" => args.extend(["1-31"]),
            // Only a target read through the API makes rev-probe connect.
            "kubectl-rev_probe" => args.extend(["--gateway", "istio-ingress/gw"]),
            _ => {}
        }
        let out = run(plugin, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{plugin}: {err}");
        assert!(
            err.contains(&format!("error: cannot reach the API server {server}")),
            "{plugin}: {err}"
        );
        assert!(err.contains("  hint: "), "{plugin}: {err}");
        assert!(!err.contains("panicked"), "{plugin}: {err}");
        assert!(out.stdout.is_empty(), "{plugin}: nothing on stdout");
    }
}

#[test]
fn a_malformed_revision_is_a_usage_error_in_every_plugin_that_takes_one() {
    let dump = fixture("bookinfo-mid-upgrade.yaml");
    for (plugin, args) in [
        ("kubectl-rev_relabel", vec!["bookinfo", "1.20"]),
        ("kubectl-rev_prune", vec!["1.19"]),
        ("kubectl-rev_plan", vec!["1.31"]),
    ] {
        let mut args = args;
        args.extend(["--from-file", &dump]);
        let out = run(plugin, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{plugin}: {err}");
        assert!(err.contains("\"1."), "{plugin} names the input: {err}");
    }
}

/// `kubectl rev-inventory -o json | head -c 1`: the reader goes away mid-output; the plugin
/// stops quietly with 0, as ripgrep does, instead of panicking.
#[test]
fn a_closed_pipe_ends_quietly_with_status_0() {
    closed_pipe_ends_quietly(&executable("kubectl-rev_inventory"));
}

/// The same on release code generation, where a panic aborts (`panic = "abort"`): the
/// `fastbuild` profile (the release profile without LTO), which `make e2e` builds.
#[test]
#[ignore = "e2e: needs `cargo build --profile fastbuild -p rev-inventory` (make e2e builds it)"]
fn a_closed_pipe_ends_quietly_with_status_0_on_the_release_profile() {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| rev_e2e::repo_root().join("target"));
    let built = target.join("fastbuild").join("kubectl-rev_inventory");
    assert!(
        built.exists(),
        "{} is not built: cargo build --profile fastbuild -p rev-inventory",
        built.display()
    );
    closed_pipe_ends_quietly(&built);
}

fn closed_pipe_ends_quietly(inventory: &Path) {
    // Far more output than a pipe buffers (64 KiB), so the writes after `head` leaves do fail.
    let items: Vec<String> = (0..4000)
        .map(|i| {
            format!(
                r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"team-{i:04}","labels":{{"istio.io/rev":"1-19"}}}}}}"#
            )
        })
        .collect();
    let dump = std::env::temp_dir().join(format!("rev-contract-{}.json", std::process::id()));
    std::fs::write(
        &dump,
        format!(
            r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#,
            items.join(",")
        ),
    )
    .expect("write the dump");
    let fixture = dump.display().to_string();
    for args in [
        vec!["-o", "json", "--from-file", &fixture],
        vec!["--from-file", &fixture],
    ] {
        let mut child = Command::new(inventory)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rev-inventory runs");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut first = [0u8; 1];
        stdout.read_exact(&mut first).expect("some output");
        drop(stdout);
        let out = child.wait_with_output().expect("it ends");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("error"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_file(&dump);
}

/// A table's header: two or more words, every one upper case (`NAMESPACE   PODS BY SIDECAR`),
/// or a section title (`REVISIONS`).
fn is_header(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    !words.is_empty()
        && words.iter().all(|w| {
            w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || "./-_".contains(c))
        })
}

/// A line with its column padding collapsed: header widths change the padding, not the cells.
fn cells(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One offline run of each plugin that has something to show: (plugin, its arguments).
fn offline_runs() -> Vec<(&'static str, Vec<String>)> {
    let from = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .flat_map(|n| ["--from-file".to_string(), fixture(n)])
            .collect()
    };
    let with = |args: &[&str], files: &[&str]| -> Vec<String> {
        args.iter()
            .map(|a| a.to_string())
            .chain(from(files))
            .collect()
    };
    let control_plane = "control-plane-1-19-and-1-20.yaml";
    vec![
        (
            "kubectl-rev_inventory",
            with(&[], &[control_plane, "bookinfo-mid-upgrade.yaml"]),
        ),
        (
            "kubectl-rev_relabel",
            with(
                &["rev-label", "1-19"],
                &[control_plane, "injection-precedence.yaml"],
            ),
        ),
        (
            "kubectl-rev_restart",
            with(
                &["ledger", "nodes", "--ondelete=delete-pods"],
                &[
                    control_plane,
                    "statefulset-partition.yaml",
                    "ondelete-daemonset.yaml",
                ],
            ),
        ),
        (
            // --force past the overridable blockers, so the plan is shown whole.
            "kubectl-rev_prune",
            with(
                &["1-19", "--force"],
                &[control_plane, "bookinfo-mid-upgrade.yaml"],
            ),
        ),
        (
            "kubectl-rev_plan",
            with(
                &["1-31"],
                &["runbook-1-30-installed.yaml", "runbook-apps-on-1-30.yaml"],
            ),
        ),
    ]
}

/// The `-o` values each plugin offers (besides its default) and whether it takes
/// `--no-headers`. rev-probe's `-o json` needs a live target: its own CLI tests run it.
fn offered(plugin: &str) -> (&'static [&'static str], bool) {
    match plugin {
        "kubectl-rev_inventory" => (&["wide", "json", "yaml", "name"], true),
        "kubectl-rev_plan" => (&["json", "sh"], false),
        "kubectl-rev_probe" => (&["text", "json"], false),
        _ => (&["json", "yaml", "name"], true),
    }
}

/// Every `-o` value and `--no-headers` a plugin offers does what it says, on a plan or report
/// read from fixture dumps (mutating plugins plan only: --dry-run=client).
#[test]
fn every_output_format_a_plugin_offers_is_honoured() {
    for (plugin, args) in offline_runs() {
        let run_with = |extra: &[&str]| {
            let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
            all.extend(extra);
            let out = run(plugin, &all);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{plugin} {extra:?}: {}",
                stderr(&out)
            );
            stdout(&out)
        };
        let default = run_with(&[]);
        let (formats, no_headers) = offered(plugin);
        for format in formats {
            let text = run_with(&["-o", format]);
            let what = format!("{plugin} -o {format}");
            match *format {
                "json" => {
                    let doc: serde_json::Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
                    assert!(doc["apiVersion"].is_string(), "{what}: {doc}");
                    assert!(doc["kind"].is_string(), "{what}: {doc}");
                }
                "yaml" => {
                    let doc: serde_json::Value = serde_saphyr::from_str(&text)
                        .unwrap_or_else(|e| panic!("{what}: not YAML ({e}): {text}"));
                    assert!(doc["apiVersion"].is_string(), "{what}: {doc}");
                    let json = run_with(&["-o", "json"]);
                    let same: serde_json::Value =
                        serde_json::from_str(&json).expect("-o json parses");
                    assert_eq!(doc, same, "{what}: the same document as -o json");
                }
                "name" => {
                    // kubectl's form: `kind[.group]/name` (`deployment.apps/x`,
                    // `mutatingwebhookconfiguration.admissionregistration.k8s.io/x`).
                    let lines: Vec<&str> = text.lines().collect();
                    assert!(!lines.is_empty(), "{what}: names something");
                    for line in lines {
                        let (kind, name) = line.split_once('/').unwrap_or_default();
                        let workload = ["deployment", "statefulset", "daemonset", "replicaset"]
                            .iter()
                            .any(|k| kind.split('.').next() == Some(k));
                        assert!(
                            !workload || kind.ends_with(".apps"),
                            "{what}: {line:?} lacks its group, as kubectl prints it"
                        );
                        assert!(
                            !kind.is_empty()
                                && kind.chars().all(|c| {
                                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.'
                                })
                                && !name.is_empty()
                                && !name.contains(char::is_whitespace),
                            "{what}: {line:?} is not kind/name"
                        );
                    }
                }
                "wide" => {
                    let columns = |text: &str| {
                        text.lines()
                            .find(|l| is_header(l) && l.split_whitespace().count() > 1)
                            .map_or(0, |l| l.split_whitespace().count())
                    };
                    assert!(
                        columns(&text) > columns(&default),
                        "{what}: more columns than the default tables:\n{text}"
                    );
                }
                "sh" => {
                    assert!(text.starts_with("#!/usr/bin/env bash\n"), "{what}: {text}");
                    let syntax = Command::new("bash")
                        .args(["-n", "-c", &text])
                        .output()
                        .expect("bash runs");
                    assert!(syntax.status.success(), "{what}: {}", stderr(&syntax));
                }
                other => panic!("{what}: no check for -o {other}"),
            }
        }
        if no_headers {
            let bare = run_with(&["--no-headers"]);
            assert!(
                default.lines().any(is_header),
                "{plugin}: its default output has headers to drop:\n{default}"
            );
            assert!(
                !bare.lines().any(is_header),
                "{plugin} --no-headers still prints a header:\n{bare}"
            );
            let rows = |text: &str| -> Vec<String> {
                text.lines()
                    .filter(|l| !is_header(l) && !l.trim().is_empty())
                    .map(cells)
                    .collect()
            };
            assert_eq!(rows(&bare), rows(&default), "{plugin}: the same rows");
        }
    }
}

/// A format or flag a plugin does not offer is a usage error from clap: exit 2, the error and
/// where to look on stderr, nothing read and nothing on stdout.
#[test]
fn an_output_flag_a_plugin_does_not_offer_is_a_usage_error() {
    let dump = fixture("bookinfo-mid-upgrade.yaml");
    for (plugin, args, flag) in [
        ("kubectl-rev_inventory", vec![], vec!["-o", "sh"]),
        (
            "kubectl-rev_relabel",
            vec!["bookinfo", "1-20"],
            vec!["-o", "wide"],
        ),
        (
            "kubectl-rev_relabel",
            vec!["bookinfo", "1-20"],
            vec!["-o", "sh"],
        ),
        ("kubectl-rev_restart", vec!["bookinfo"], vec!["-o", "wide"]),
        ("kubectl-rev_prune", vec!["1-19"], vec!["-o", "wide"]),
        ("kubectl-rev_plan", vec!["1-31"], vec!["-o", "name"]),
        ("kubectl-rev_plan", vec!["1-31"], vec!["-o", "yaml"]),
        ("kubectl-rev_plan", vec!["1-31"], vec!["--no-headers"]),
        (
            "kubectl-rev_probe",
            vec!["--url", "http://127.0.0.1:1/"],
            vec!["-o", "yaml"],
        ),
        (
            "kubectl-rev_probe",
            vec!["--url", "http://127.0.0.1:1/"],
            vec!["--no-headers"],
        ),
    ] {
        let mut all = args;
        all.extend(&flag);
        if plugin != "kubectl-rev_probe" {
            all.extend(["--from-file", &dump]);
        }
        let out = run(plugin, &all);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{plugin} {flag:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains("For more information, try '--help'"),
            "{plugin} {flag:?}: clap's usage error: {err}"
        );
        assert!(
            out.stdout.is_empty(),
            "{plugin} {flag:?}: stdout stays clean"
        );
    }
}
