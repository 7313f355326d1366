//! Harness for the end-to-end suite: a fresh local control plane (tests/cluster) per test
//! binary, and helpers that run kubectl, helm and the plugins exactly as users do — the plugins
//! through kubectl's own plugin lookup, from a PATH that holds only the built executables.
//!
//! The suite's tests are `#[ignore]`d so `cargo test --workspace` stays offline; run them with
//! `make e2e` (which builds first) or `cargo test -p rev-e2e -- --ignored --test-threads=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const OLD_REV: &str = "1-30";
pub const NEW_REV: &str = "1-31";

pub const PLUGINS: [&str; 6] = [
    "kubectl-rev_inventory",
    "kubectl-rev_relabel",
    "kubectl-rev_restart",
    "kubectl-rev_prune",
    "kubectl-rev_probe",
    "kubectl-rev_plan",
];

pub struct Cluster {
    pub root: PathBuf,
    pub kubeconfig: PathBuf,
    pub limited_kubeconfig: PathBuf,
    /// kubectl and helm built by tests/cluster/build.sh.
    pub tools: PathBuf,
    /// Only the plugin executables (cargo's `.d` files beside them make kubectl warn).
    pub plugins: PathBuf,
    /// The cluster's state dir (tests/cluster/.state unless `fresh_in` named another).
    pub state: PathBuf,
}

/// The repository checkout the tests run from.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Runs a tests/cluster script against the cluster of `state` (REV_CLUSTER_STATE), or the
/// default one.
fn run_script_in(root: &Path, state: Option<&Path>, args: &[&str]) -> String {
    let mut cmd = Command::new("bash");
    cmd.args(args).current_dir(root);
    if let Some(state) = state {
        cmd.env("REV_CLUSTER_STATE", state);
    }
    let out = cmd.output().expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bash {args:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A plugin executable as `cargo test --workspace` built it (no cluster needed to run it).
pub fn built_plugin(plugin: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let built = target.join("debug").join(plugin);
    assert!(
        built.exists(),
        "{} is not built: run `cargo test --workspace` (it builds every plugin)",
        built.display()
    );
    built
}

/// Copies the built plugin executables into a directory of their own.
pub fn plugin_dir(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dir = target.join("e2e-plugins");
    std::fs::create_dir_all(&dir).expect("plugin dir");
    for plugin in PLUGINS {
        let built = target.join("debug").join(plugin);
        assert!(
            built.exists(),
            "{} is not built: run `cargo build --workspace` first (make e2e does)",
            built.display()
        );
        std::fs::copy(&built, dir.join(plugin)).expect("copy plugin");
    }
    dir
}

impl Cluster {
    /// A fresh cluster with the old revision, its gateways and Bookinfo (guide step 1 state).
    pub fn fresh() -> Cluster {
        Self::fresh_at(None)
    }

    /// Like [`Cluster::fresh`], in a state dir of its own (e.g. `/tmp/prune-cluster`), so test
    /// binaries run by different people do not stop each other's clusters.
    pub fn fresh_in(state: &Path) -> Cluster {
        Self::fresh_at(Some(state))
    }

    fn fresh_at(state_dir: Option<&Path>) -> Cluster {
        let root = repo_root();
        let script = |args: &[&str]| run_script_in(&root, state_dir, args);
        script(&["tests/cluster/build.sh"]);
        script(&["tests/cluster/cluster.sh", "down"]);
        script(&["tests/cluster/cluster.sh", "up"]);
        script(&["tests/cluster/scenario.sh", "old"]);
        script(&["tests/cluster/scenario.sh", "bookinfo"]);
        let env = script(&["tests/cluster/cluster.sh", "env"]);
        let tools = env
            .lines()
            .find_map(|l| l.strip_prefix("export REV_CLUSTER_BIN="))
            .map(|v| PathBuf::from(v.trim_matches(['"', '\''])))
            .expect("cluster.sh env prints REV_CLUSTER_BIN");
        let state = state_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| root.join("tests/cluster/.state"));
        Cluster {
            kubeconfig: state.join("admin.kubeconfig"),
            limited_kubeconfig: state.join("limited.kubeconfig"),
            plugins: plugin_dir(&root),
            tools,
            root,
            state,
        }
    }

    /// Guide steps 2–3: the new revision's istiod and gateways, by real helm.
    pub fn install_new_revision(&self) {
        run_script_in(
            &self.root,
            Some(&self.state),
            &["tests/cluster/scenario.sh", "new"],
        );
    }

    /// `kubectl rollout restart` + `rollout status` of every Deployment of `namespace`, one by one.
    pub fn restart_all_deployments(&self, namespace: &str) {
        let deployments = self.get_json(&["deployments", "-n", namespace]);
        for d in deployments["items"].as_array().into_iter().flatten() {
            let name = format!(
                "deployment/{}",
                d["metadata"]["name"].as_str().unwrap_or_default()
            );
            self.kubectl_ok(&["rollout", "restart", "-n", namespace, &name]);
            self.kubectl_ok(&[
                "rollout",
                "status",
                "-n",
                namespace,
                &name,
                "--timeout=120s",
            ]);
        }
    }

    /// Guide steps 3–4 done by hand, so only what a test adds still holds the old revision:
    /// bookinfo on the new revision, every pod restarted, the base release's default revision and
    /// the `default` tag moved.
    pub fn finish_the_upgrade_by_hand(&self) {
        let label = format!("istio.io/rev={NEW_REV}");
        self.kubectl_ok(&["label", "ns", "bookinfo", &label, "--overwrite"]);
        self.restart_all_deployments("bookinfo");
        self.move_default_revision_and_tag();
    }

    /// Guide step 4 by hand, as an operator would: the base release's defaultRevision (and its
    /// validator) to the new revision, and the `default` tag re-rendered from the new
    /// revision's chart (as scenario.sh renders it for the old one).
    pub fn move_default_revision_and_tag(&self) {
        let charts = self.tools.parent().expect("cache dir").join("charts");
        let ports = std::fs::read_to_string(self.state.join("ports.env")).expect("ports.env");
        let injector_port = ports
            .lines()
            .find_map(|l| l.strip_prefix("INJECTOR_PORT="))
            .expect("INJECTOR_PORT")
            .trim_matches('"')
            .to_string();
        self.helm_ok(&[
            "upgrade",
            "istio-base",
            &charts.join(OLD_REV).join("base").display().to_string(),
            "-n",
            "istio-system",
            "--reuse-values",
            "--wait",
            "--set",
            &format!("defaultRevision={NEW_REV}"),
            "--set",
            &format!("base.validationURL=https://127.0.0.1:{injector_port}/validate/{NEW_REV}"),
        ]);
        let tag = self.helm_ok(&[
            "template",
            &format!("istiod-{NEW_REV}"),
            &charts.join(NEW_REV).join("istiod").display().to_string(),
            "-n",
            "istio-system",
            "-f",
            &self
                .state
                .join(format!("values/istiod-{NEW_REV}.yaml"))
                .display()
                .to_string(),
            "--set",
            "revisionTags={default}",
            "-s",
            "templates/revision-tags-mwc.yaml",
        ]);
        let tag_file = self.state.join("default-tag.yaml");
        std::fs::write(&tag_file, tag).expect("write tag");
        self.kubectl_ok(&["apply", "-f", &tag_file.display().to_string()]);
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        let path = format!(
            "{}:{}:/usr/bin:/bin",
            self.plugins.display(),
            self.tools.display()
        );
        cmd.env("PATH", path)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("NO_COLOR", "1")
            .env_remove("KUBECTL_PLUGINS_PATH")
            .current_dir(&self.root);
        cmd
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.command(&self.tools.join("kubectl").display().to_string())
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn helm_ok(&self, args: &[&str]) -> String {
        let out = self
            .command(&self.tools.join("helm").display().to_string())
            .args(args)
            .output()
            .expect("helm runs");
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl rev-<name> args…`, found by kubectl's plugin lookup. No stdin: like CI.
    pub fn plugin(&self, name: &str, args: &[&str]) -> Output {
        let mut all = vec![name];
        all.extend_from_slice(args);
        self.command(&self.tools.join("kubectl").display().to_string())
            .args(&all)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("kubectl plugin runs")
    }

    /// A plugin with another KUBECONFIG (e.g. several files, for multi-context runs).
    pub fn plugin_with_kubeconfig(&self, name: &str, args: &[&str], kubeconfig: &str) -> Output {
        let mut all = vec![name];
        all.extend_from_slice(args);
        self.command(&self.tools.join("kubectl").display().to_string())
            .env("KUBECONFIG", kubeconfig)
            .args(&all)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("kubectl plugin runs")
    }

    /// JSON of `kubectl get … -o json`.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&all)).expect("kubectl JSON")
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("config");
        kube::Client::try_from(config).expect("client")
    }
}

/// stdout and stderr of a command, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Sidecar revision of each Bookinfo pod, from the real API (annotation the injector wrote).
pub fn pod_revisions(cluster: &Cluster, namespace: &str) -> Vec<(String, String)> {
    let pods = cluster.get_json(&["pods", "-n", namespace]);
    let mut out: Vec<(String, String)> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let status = p["metadata"]["annotations"]["sidecar.istio.io/status"]
                .as_str()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                .and_then(|v| v["revision"].as_str().map(str::to_string))
                .unwrap_or_else(|| "none".into());
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                status,
            )
        })
        .collect();
    out.sort();
    out
}
