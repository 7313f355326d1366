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
        let mut child = Command::new(executable("kubectl-rev_inventory"))
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
