//! What every plugin says about itself, checked on the built executables (no cluster):
//! `--version` in kubectl's plugin style, `--completion SHELL` for the four shells, the man
//! page, and kubectl's plugin-completion hook (`kubectl_complete-rev_*`, a link to the plugin)
//! answering in cobra's `__complete` format. The hook against a real cluster is proved in
//! krew.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rev_e2e::PLUGINS;

fn executable(plugin: &str) -> PathBuf {
    rev_e2e::built_plugin(plugin)
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        // Nothing of the machine's kubeconfig leaks in: completion must not need a cluster.
        .env("KUBECONFIG", "/nonexistent/rev-meta-kubeconfig")
        .env_remove("KUBECTL_REV_COMPLETE")
        .stdin(Stdio::null())
        .output()
        .expect("the plugin runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl-rev_inventory` → `rev-inventory`, the name users type after `kubectl`.
fn plugin_name(exe: &str) -> String {
    exe.trim_start_matches("kubectl-").replacen('_', "-", 1)
}

#[test]
fn version_names_version_commit_build_date_and_platform_in_every_plugin() {
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    for exe in PLUGINS {
        let out = run(&executable(exe), &["--version"]);
        assert!(out.status.success(), "{exe}: {out:?}");
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.first().copied(),
            Some(format!("kubectl {} {version}", plugin_name(exe)).as_str()),
            "{exe}: {text}"
        );
        for (line, key) in lines[1..].iter().zip(["commit: ", "built:  ", "target: "]) {
            assert!(line.starts_with(key), "{exe}: {text}");
        }
        assert_eq!(lines.len(), 4, "{exe}: {text}");
        // -V is the version alone, for scripts.
        let short = stdout(&run(&executable(exe), &["-V"]));
        assert_eq!(short, format!("kubectl {} {version}\n", plugin_name(exe)));
    }
}

#[test]
fn completion_scripts_for_bash_zsh_fish_and_powershell_name_the_executable() {
    for exe in PLUGINS {
        for shell in ["bash", "zsh", "fish", "powershell"] {
            let out = run(&executable(exe), &["--completion", shell]);
            assert!(out.status.success(), "{exe} {shell}: {out:?}");
            let script = stdout(&out);
            assert!(script.contains(exe), "{exe} {shell}: {script}");
            assert!(
                script.contains("KUBECTL_REV_COMPLETE"),
                "{exe} {shell}: the script calls the plugin back: {script}"
            );
        }
        let out = run(&executable(exe), &["--completion", "tcsh"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{exe}: unknown shells are usage errors"
        );
    }
}

#[test]
fn every_plugin_renders_its_man_page() {
    for exe in PLUGINS {
        let out = run(&executable(exe), &["--generate-man"]);
        assert!(out.status.success(), "{exe}: {out:?}");
        let page = stdout(&out);
        assert!(page.contains(&format!("\n.TH {exe} 1 ")), "{exe}: {page}");
        assert!(page.contains(".SH SYNOPSIS"), "{exe}: {page}");
    }
}

/// kubectl (≥ 1.26) runs `kubectl_complete-rev_inventory -o ""` for `kubectl rev-inventory -o
/// <TAB>` and reads cobra's format: candidates, then `:<directive>`.
#[test]
fn the_kubectl_hook_answers_in_cobras_format_without_a_cluster() {
    let dir = std::env::temp_dir().join(format!("rev-meta-hook-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let hook = dir.join("kubectl_complete-rev_inventory");
    std::os::unix::fs::symlink(executable("kubectl-rev_inventory"), &hook).expect("link");

    let out = run(&hook, &["-o", ""]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let values: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(l))
        .collect();
    // No file names after -o (bit 4, ShellCompDirectiveNoFileComp).
    assert_eq!(values, ["wide", "json", "yaml", "name", ":4"], "{text}");

    // Namespaces come from the cluster; with none reachable the answer is empty, never an error.
    let out = run(&hook, &["-n", ""]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), ":4\n");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
