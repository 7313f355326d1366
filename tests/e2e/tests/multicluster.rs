//! Two local control planes side by side (tests/cluster, one state dir and one name each): a
//! primary running istiod-1-30 and istiod-1-31, and a remote with no istiod of its own whose
//! 1-30/1-31 injector webhooks call the primary's injector by URL (istio's remote profile,
//! `istiodRemote.injectionURL`). One kubeconfig holds both contexts. rev-plan orders the steps
//! across the clusters; rev-prune refuses to remove 1-30 while the remote still uses it, and
//! removes it on both once the remote moved. rev-plan's `-o sh` script walks both clusters.

use std::path::{Path, PathBuf};
use std::process::Command;

use rev_e2e::{Cluster, NEW_REV, OLD_REV, plugin_dir, pod_revisions, show};

/// This binary's clusters: state dirs of their own, so other checkouts' clusters are untouched.
const PRIMARY_STATE: &str = "/tmp/multi-e2e-primary";
const REMOTE_STATE: &str = "/tmp/multi-e2e-remote";
/// The script walk's clusters (the tests may run concurrently).
const WALK_PRIMARY_STATE: &str = "/tmp/multi-e2e-walk-primary";
const WALK_REMOTE_STATE: &str = "/tmp/multi-e2e-walk-remote";
/// Context names in the merged kubeconfig (cluster.sh names them `$REV_CLUSTER_NAME-admin`).
const PRIMARY: &str = "primary-admin";
const REMOTE: &str = "remote-admin";

/// Stops both instances when the test ends, passed or failed: a failed assertion must not leave
/// two control planes running on a shared machine.
struct DownOnDrop {
    root: PathBuf,
    instances: [(&'static str, &'static str); 2],
}

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        for (state, name) in self.instances {
            let _ = Command::new("bash")
                .args(["tests/cluster/cluster.sh", "down"])
                .current_dir(&self.root)
                .env("REV_CLUSTER_STATE", state)
                .env("REV_CLUSTER_NAME", name)
                .output();
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A tests/cluster script for the instance in `state`, named `name`; returns stdout.
fn script(root: &Path, state: &str, name: &str, args: &[&str]) -> String {
    let out = Command::new("bash")
        .args(args)
        .current_dir(root)
        .env("REV_CLUSTER_STATE", state)
        .env("REV_CLUSTER_NAME", name)
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "bash {args:?}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh instance, up and empty.
fn instance(root: &Path, state: &str, name: &str) -> Cluster {
    script(root, state, name, &["tests/cluster/build.sh"]);
    script(root, state, name, &["tests/cluster/cluster.sh", "down"]);
    script(root, state, name, &["tests/cluster/cluster.sh", "up"]);
    let env = script(root, state, name, &["tests/cluster/cluster.sh", "env"]);
    let tools = env
        .lines()
        .find_map(|l| l.strip_prefix("export REV_CLUSTER_BIN="))
        .map(|v| PathBuf::from(v.trim_matches(['"', '\''])))
        .expect("cluster.sh env prints REV_CLUSTER_BIN");
    let state = PathBuf::from(state);
    Cluster {
        kubeconfig: state.join("admin.kubeconfig"),
        limited_kubeconfig: state.join("limited.kubeconfig"),
        plugins: plugin_dir(root),
        tools,
        root: root.to_path_buf(),
        state,
    }
}

fn injector_port(c: &Cluster) -> String {
    let ports = std::fs::read_to_string(c.state.join("ports.env")).expect("ports.env");
    ports
        .lines()
        .find_map(|l| l.strip_prefix("INJECTOR_PORT="))
        .expect("INJECTOR_PORT")
        .trim_matches('"')
        .to_string()
}

/// The remote's part of a revision, as istio's remote profile installs it: the injector and
/// validator webhooks only, calling the primary's injector (its CA, its address).
fn install_remote_revision(remote: &Cluster, primary: &Cluster, rev: &str) {
    let ca = Command::new("base64")
        .arg("-w0")
        .arg(primary.state.join("pki/ca.crt"))
        .output()
        .expect("base64 runs");
    assert!(ca.status.success(), "{}", show(&ca));
    let ca = String::from_utf8_lossy(&ca.stdout).into_owned();
    let url = format!("https://127.0.0.1:{}", injector_port(primary));
    let values = remote.state.join(format!("remote-istiod-{rev}.yaml"));
    std::fs::write(
        &values,
        format!(
            "profile: remote\nrevision: \"{rev}\"\nistiodRemote:\n  injectionURL: {url}/inject/{rev}\n  injectionCABundle: {ca}\nbase:\n  validationURL: {url}/validate/{rev}\n  validationCABundle: {ca}\n"
        ),
    )
    .expect("values");
    let chart = remote
        .tools
        .parent()
        .expect("cache dir")
        .join("charts")
        .join(rev)
        .join("istiod");
    remote.helm_ok(&[
        "install",
        &format!("istiod-{rev}"),
        &chart.display().to_string(),
        "-n",
        "istio-system",
        "--create-namespace",
        "--wait",
        "-f",
        &values.display().to_string(),
    ]);
}

/// `kubectl config view --flatten` of both admin kubeconfigs: one file, two contexts.
fn merged_kubeconfig(primary: &Cluster, remote: &Cluster) -> PathBuf {
    let out = Command::new(primary.tools.join("kubectl"))
        .args(["config", "view", "--flatten"])
        .env(
            "KUBECONFIG",
            format!(
                "{}:{}",
                primary.kubeconfig.display(),
                remote.kubeconfig.display()
            ),
        )
        .output()
        .expect("kubectl runs");
    assert!(out.status.success(), "{}", show(&out));
    let path = primary.state.join("mesh.kubeconfig");
    std::fs::write(&path, &out.stdout).expect("write kubeconfig");
    path
}

/// Guide step 1 on two clusters: the primary with 1-30 (istiod, default tag, gateways) and a
/// remote secret naming the remote; the remote with 1-30's remote configuration and namespace
/// payments on 1-30, whose pods the primary's injector injected.
fn mesh_on_1_30(root: &Path, primary_state: &str, remote_state: &str) -> (Cluster, Cluster) {
    let primary = instance(root, primary_state, "primary");
    let remote = instance(root, remote_state, "remote");
    script(
        root,
        primary_state,
        "primary",
        &["tests/cluster/scenario.sh", "old"],
    );
    install_remote_revision(&remote, &primary, OLD_REV);
    remote.kubectl_ok(&["create", "namespace", "payments"]);
    remote.kubectl_ok(&[
        "label",
        "namespace",
        "payments",
        &format!("istio.io/rev={OLD_REV}"),
    ]);
    remote.kubectl_ok(&[
        "create",
        "deployment",
        "api",
        "-n",
        "payments",
        "--image",
        "registry.example/api:1",
        "--replicas",
        "2",
    ]);
    remote.kubectl_ok(&[
        "wait",
        "-n",
        "payments",
        "--for=condition=Available",
        "deployment/api",
        "--timeout=120s",
    ]);
    assert_eq!(
        revisions(&remote, "payments"),
        [OLD_REV, OLD_REV],
        "the primary's injector injected the remote's pods"
    );
    let secret = primary.state.join("remote-secret.yaml");
    std::fs::write(
        &secret,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: istio-remote-secret-remote\n  namespace: istio-system\n  labels: {istio/multiCluster: \"true\"}\n  annotations: {networking.istio.io/cluster: remote}\nstringData:\n  remote: placeholder\n",
    )
    .expect("secret");
    primary.kubectl_ok(&["apply", "-f", &secret.display().to_string()]);
    (primary, remote)
}

/// The sidecar revision of each pod of a namespace.
fn revisions(c: &Cluster, namespace: &str) -> Vec<String> {
    pod_revisions(c, namespace)
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
#[ignore = "needs the local control plane (tests/cluster): run `make e2e`"]
fn a_prune_across_two_clusters_waits_for_the_remote_to_leave_the_primarys_old_revision() {
    let root = repo_root();
    let _down = DownOnDrop {
        root: root.clone(),
        instances: [(PRIMARY_STATE, "primary"), (REMOTE_STATE, "remote")],
    };
    let started = std::time::Instant::now();
    let (primary, remote) = mesh_on_1_30(&root, PRIMARY_STATE, REMOTE_STATE);
    script(
        &root,
        PRIMARY_STATE,
        "primary",
        &["tests/cluster/scenario.sh", "new"],
    );
    install_remote_revision(&remote, &primary, NEW_REV);
    // The primary's own data plane is off 1-30 (guide step 5 there): the default tag and
    // validator moved; the primary knows the remote through its remote secret.
    let primary_only = primary.plugin("rev-relabel", &["--tag", "default", NEW_REV, "--yes"]);
    assert!(primary_only.status.success(), "{}", show(&primary_only));
    eprintln!("two clusters set up in {:.1?}", started.elapsed());

    let kubeconfig = merged_kubeconfig(&primary, &remote);
    let kubeconfig = kubeconfig.display().to_string();
    let both = ["--context", PRIMARY, "--context", REMOTE];
    let run = |plugin: &str, args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&both);
        primary.plugin_with_kubeconfig(plugin, &all, &kubeconfig)
    };

    // rev-plan: the remote moves before the primary's 1-30 goes.
    let plan = run("rev-plan", &[NEW_REV, "-o", "json"]);
    assert!(plan.status.success(), "{}", show(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");
    assert_eq!(plan["model"], "primary-remote", "{plan:#}");
    let steps = plan["steps"].as_array().expect("steps");
    let position = |cluster: &str, kind: &str| {
        steps
            .iter()
            .position(|s| s["cluster"] == cluster && s["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} step of {cluster}: {plan:#}"))
    };
    assert!(position(PRIMARY, "install-control-plane") < position(REMOTE, "relabel"));
    assert!(position(REMOTE, "relabel") < position(PRIMARY, "prune"));
    assert!(position(REMOTE, "prune") < position(PRIMARY, "prune"));

    // The primary alone would prune; it warns that its 1-30 reads another cluster.
    let alone = primary.plugin_with_kubeconfig(
        "rev-prune",
        &[OLD_REV, "--context", PRIMARY, "--dry-run=client"],
        &kubeconfig,
    );
    assert!(alone.status.success(), "{}", show(&alone));
    assert!(
        text(&alone).contains(
            "istio-system/istiod-1-30 (1-30) reads other clusters through remote secrets: remote (secret istio-system/istio-remote-secret-remote)"
        ),
        "{}",
        show(&alone)
    );

    // Both: refused while the remote's namespace and pods are on 1-30; nothing deleted.
    let refused = run("rev-prune", &[OLD_REV, "--yes"]);
    assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
    let said = text(&refused);
    assert!(
        said.contains(&format!(
            "context {REMOTE}: namespace/payments blocks removing {OLD_REV} on context {PRIMARY}"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "fix (with --context {REMOTE}): kubectl rev-relabel payments {NEW_REV}"
        )),
        "{said}"
    );
    primary.kubectl_ok(&[
        "get",
        "deployment",
        &format!("istiod-{OLD_REV}"),
        "-n",
        "istio-system",
    ]);

    // The remote moves: relabel, then restart onto 1-31 (injected by the primary's injector).
    let on_remote = |plugin: &str, args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&["--context", REMOTE, "--yes"]);
        let out = primary.plugin_with_kubeconfig(plugin, &all, &kubeconfig);
        assert!(out.status.success(), "{plugin}: {}", show(&out));
    };
    on_remote("rev-relabel", &["payments", NEW_REV]);
    on_remote("rev-restart", &["payments"]);
    assert_eq!(revisions(&remote, "payments"), [NEW_REV, NEW_REV]);

    let pruned = run("rev-prune", &[OLD_REV, "--yes"]);
    assert!(pruned.status.success(), "{}", show(&pruned));
    let said = text(&pruned);
    let remote_at = said.find(&format!("=== context {REMOTE}"));
    let primary_at = said.find(&format!("=== context {PRIMARY}"));
    assert!(
        matches!((remote_at, primary_at), (Some(r), Some(p)) if r < p),
        "the plan names each cluster, the remote first: {said}"
    );
    // Through the API: 1-30 is gone from both clusters, 1-31 serves both.
    let gone = primary.kubectl(&[
        "get",
        "deployment",
        &format!("istiod-{OLD_REV}"),
        "-n",
        "istio-system",
    ]);
    assert!(
        !gone.status.success(),
        "istiod-{OLD_REV} still on the primary"
    );
    let injector = format!("istio-sidecar-injector-{OLD_REV}");
    let remote_old = remote.kubectl(&["get", "mutatingwebhookconfiguration", &injector]);
    assert!(
        !remote_old.status.success(),
        "{injector} still on the remote: it would call an istiod that is gone"
    );
    remote.kubectl_ok(&[
        "get",
        "mutatingwebhookconfiguration",
        &format!("istio-sidecar-injector-{NEW_REV}"),
    ]);
    let after = run("rev-plan", &[NEW_REV]);
    assert!(after.status.success(), "{}", show(&after));
    assert!(
        String::from_utf8_lossy(&after.stdout).contains("Every step is done."),
        "{}",
        show(&after)
    );
    eprintln!("whole test in {:.1?}", started.elapsed());
}

/// The extracted Istio charts of tests/cluster/lib.sh (`$CHARTS`), and NEW's image tag.
fn charts_and_new_tag(root: &Path) -> (PathBuf, String) {
    let out = Command::new("bash")
        .args([
            "-c",
            ". tests/cluster/lib.sh && printf '%s\\n%s' \"$CHARTS\" \"$NEW_TAG\"",
        ])
        .current_dir(root)
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (charts, tag) = text.split_once('\n').expect("two lines");
    (PathBuf::from(charts), tag.to_string())
}

#[test]
#[ignore = "needs the local control plane (tests/cluster): run `make e2e`"]
fn the_plan_script_walks_both_clusters_and_the_plan_then_reports_every_step_done() {
    let root = repo_root();
    let _down = DownOnDrop {
        root: root.clone(),
        instances: [
            (WALK_PRIMARY_STATE, "primary"),
            (WALK_REMOTE_STATE, "remote"),
        ],
    };
    let started = std::time::Instant::now();
    let (primary, remote) = mesh_on_1_30(&root, WALK_PRIMARY_STATE, WALK_REMOTE_STATE);
    let kubeconfig = merged_kubeconfig(&primary, &remote);
    let work = primary.state.join("walk");
    let stubs = work.join("stubs");
    std::fs::create_dir_all(&stubs).expect("work dir");
    // Nothing routes the local gateways' addresses: the probe step runs a stand-in that records
    // its arguments (rev-probe has its own e2e).
    let probe_log = work.join("probe.log");
    let stub = stubs.join("kubectl-rev_probe");
    std::fs::write(
        &stub,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", probe_log.display()),
    )
    .expect("stub");
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let (charts, version) = charts_and_new_tag(&root);
    let charts = charts.join(NEW_REV).display().to_string();
    let values = work.join("values").display().to_string();
    let tool = |program: &str| {
        let mut cmd = Command::new(program);
        cmd.env(
            "PATH",
            format!(
                "{}:{}:{}:/usr/bin:/bin",
                stubs.display(),
                primary.plugins.display(),
                primary.tools.display()
            ),
        )
        .env("KUBECONFIG", &kubeconfig)
        .env("NO_COLOR", "1")
        .env("HELM_CONFIG_HOME", work.join("helm/config"))
        .env("HELM_CACHE_HOME", work.join("helm/cache"))
        .env("HELM_DATA_HOME", work.join("helm/data"))
        .env_remove("KUBECTL_PLUGINS_PATH")
        .current_dir(&work)
        .stdin(std::process::Stdio::null());
        cmd
    };
    let plan = |format: &[&str]| {
        let mut args = vec![
            "rev-plan",
            NEW_REV,
            "--istio-version",
            version.as_str(),
            "--charts",
            charts.as_str(),
            "--values-dir",
            values.as_str(),
            "--context",
            PRIMARY,
            "--context",
            REMOTE,
        ];
        args.extend_from_slice(format);
        let out = tool("kubectl").args(&args).output().expect("kubectl runs");
        assert!(out.status.success(), "{}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let script = plan(&["-o", "sh"]);
    let script_path = work.join("upgrade.sh");
    std::fs::write(&script_path, &script).expect("script");
    let walked = std::time::Instant::now();
    let ran = tool("bash")
        .arg(&script_path)
        .arg("--yes")
        .output()
        .expect("bash runs");
    assert!(
        ran.status.success(),
        "script failed:\n{script}\n{}",
        show(&ran)
    );
    eprintln!(
        "the -o sh script walked both clusters in {:.1?}",
        walked.elapsed()
    );

    // Through the API: the remote's pods on 1-31 (injected by the primary's injector), 1-30
    // gone from both clusters.
    assert_eq!(revisions(&remote, "payments"), [NEW_REV, NEW_REV]);
    let old_istiod = primary.kubectl(&[
        "get",
        "deployment",
        &format!("istiod-{OLD_REV}"),
        "-n",
        "istio-system",
    ]);
    assert!(!old_istiod.status.success(), "istiod-{OLD_REV} still there");
    let old_injector = remote.kubectl(&[
        "get",
        "mutatingwebhookconfiguration",
        &format!("istio-sidecar-injector-{OLD_REV}"),
    ]);
    assert!(
        !old_injector.status.success(),
        "the remote's 1-30 injector is still there"
    );

    let after = plan(&[]);
    assert!(after.contains("Every step is done."), "{after}");
    eprintln!("whole walk in {:.1?}", started.elapsed());
}
