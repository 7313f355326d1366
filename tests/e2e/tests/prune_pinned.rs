//! `kubectl rev-prune` against what real meshes hold beside a revision (issue 10), on the real
//! local control plane with real Helm and the real Istio charts: the `cni` chart of the old
//! revision's Istio module installed with `revision=OLD` (a cluster singleton, never pruned,
//! although it labels everything `istio.io/rev=OLD`), and an AuthorizationPolicy and a
//! PeerAuthentication pinned to OLD (once OLD is gone no istiod enforces them). The prune
//! refuses naming both policies; the fix commands it prints, run as printed, clear it; then it
//! prunes, and the istio-cni DaemonSet is untouched before and after. A Gateway API `Gateway`
//! pinned to OLD (on the real Gateway API CRDs, of the version the Istio module requires) blocks
//! the same way until its label is moved, and so does the real ztunnel chart applied without
//! Helm (as istioctl installs it) while its revision is OLD; it is upgraded in place, never pruned.
//!
//! Runs on a fresh cluster of its own: $REV_PRUNE_PINNED_E2E_STATE names its state dir (default
//! tests/cluster/.state, like the other e2e binaries, which run one after another).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rev_e2e::{Cluster, NEW_REV, OLD_REV, show};
use serde_json::Value;

fn fresh_cluster() -> Cluster {
    match std::env::var_os("REV_PRUNE_PINNED_E2E_STATE") {
        Some(state) => Cluster::fresh_in(&PathBuf::from(state)),
        None => Cluster::fresh(),
    }
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `KEY=value` of tests/cluster/versions.env, the one place the cluster's versions live.
fn pinned_version(root: &Path, key: &str) -> String {
    let env = std::fs::read_to_string(root.join("tests/cluster/versions.env")).expect("versions");
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("{key} in tests/cluster/versions.env"))
}

/// A Go module's directory in Go's module cache (downloaded on first use, through the module
/// proxy like every pinned tool of the cluster).
fn module_dir(c: &Cluster, module: &str) -> PathBuf {
    let scratch = c.state.join("go-mod-download");
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let out = Command::new("go")
        .args(["mod", "download", "-json", module])
        .env("GO111MODULE", "on")
        .env("GOFLAGS", "-mod=mod")
        .current_dir(&scratch)
        .output()
        .expect("go runs");
    assert!(
        out.status.success(),
        "go mod download {module}: {}",
        show(&out)
    );
    let info: Value = serde_json::from_slice(&out.stdout).expect("go mod download JSON");
    PathBuf::from(info["Dir"].as_str().expect("module Dir"))
}

/// The old revision's Istio module (the one build.sh extracts the charts from).
fn istio_old_module(c: &Cluster) -> PathBuf {
    let module = pinned_version(&c.root, "ISTIO_OLD_MODULE");
    module_dir(c, &format!("istio.io/istio@{module}"))
}

/// The standard Gateway API CRDs of the version the old Istio module itself requires
/// (`sigs.k8s.io/gateway-api` in its go.mod): pinned by the Istio pin, nothing to keep in step.
fn gateway_api_crds(c: &Cluster) -> PathBuf {
    let go_mod = std::fs::read_to_string(istio_old_module(c).join("go.mod")).expect("istio go.mod");
    let version = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("sigs.k8s.io/gateway-api "))
        .map(|v| v.split_whitespace().next().unwrap_or(v).to_string())
        .expect("sigs.k8s.io/gateway-api in istio's go.mod");
    module_dir(c, &format!("sigs.k8s.io/gateway-api@{version}")).join("config/crd/standard")
}

/// The real `cni` chart of the old revision's Istio module (the module build.sh extracts the
/// other charts from; already in Go's module cache), stamped with the old version as Istio's
/// release builder does, copied into the cluster's state dir.
fn cni_chart(c: &Cluster) -> PathBuf {
    let tag = pinned_version(&c.root, "OLD_TAG");
    let dir = istio_old_module(c);
    let source = dir.join("manifests/charts/istio-cni");
    let chart = c.state.join("charts/cni");
    let _ = std::fs::remove_dir_all(&chart);
    std::fs::create_dir_all(chart.parent().expect("parent")).expect("charts dir");
    let copied = Command::new("cp")
        .args([
            "-R",
            &source.display().to_string(),
            &chart.display().to_string(),
        ])
        .status()
        .expect("cp runs");
    assert!(copied.success(), "copy {}", source.display());
    let _ = Command::new("chmod")
        .args(["-R", "u+w", &chart.display().to_string()])
        .status();
    let manifest = chart.join("Chart.yaml");
    let stamped: String = std::fs::read_to_string(&manifest)
        .expect("Chart.yaml")
        .lines()
        .map(|l| {
            if l.starts_with("version:") {
                format!("version: {tag}\n")
            } else if l.starts_with("appVersion:") {
                format!("appVersion: {tag}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&manifest, stamped).expect("stamp Chart.yaml");
    chart
}

/// The real `ztunnel` chart rendered with `revision` and applied without a Helm release, as
/// istioctl installs it (istioctl renders the same chart): objects with no Helm record.
fn apply_ztunnel_outside_helm(c: &Cluster, revision: &str) {
    let chart = istio_old_module(c).join("manifests/charts/ztunnel");
    let rendered = c.helm_ok(&[
        "template",
        "ztunnel",
        &chart.display().to_string(),
        "-n",
        "istio-system",
        "--set",
        &format!("revision={revision}"),
    ]);
    let file = c.state.join(format!("ztunnel-{revision}.yaml"));
    std::fs::write(&file, rendered).expect("write ztunnel");
    c.kubectl_ok(&["apply", "-f", &file.display().to_string()]);
    c.kubectl_ok(&[
        "rollout",
        "status",
        "daemonset/ztunnel",
        "-n",
        "istio-system",
        "--timeout=120s",
    ]);
}

/// The istio-cni DaemonSet as stored, without what controllers write (`status`).
fn cni_daemon_set(c: &Cluster) -> Value {
    let mut ds = c.get_json(&["daemonset", "istio-cni-node", "-n", "istio-system"]);
    if let Some(o) = ds.as_object_mut() {
        o.remove("status");
    }
    ds
}

const PINNED_POLICIES: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-all
  namespace: bookinfo
  labels: {istio.io/rev: OLD}
spec:
  action: DENY
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: strict
  namespace: bookinfo
  labels: {istio.io/rev: OLD}
spec:
  mtls: {mode: STRICT}
"#;

/// A Gateway API `Gateway` pinned to the old revision, and the Deployment the old istiod's
/// gateway controller renders for it (its naming, labels and pod annotation; no istiod runs
/// here, so the test writes what it would).
const PINNED_GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
  namespace: bookinfo
  labels: {istio.io/rev: OLD}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: edge-istio
  namespace: bookinfo
  labels:
    gateway.istio.io/managed: istio.io-gateway-controller
    gateway.networking.k8s.io/gateway-name: edge
    gateway.networking.k8s.io/gateway-class-name: istio
spec:
  selector: {matchLabels: {gateway.networking.k8s.io/gateway-name: edge}}
  template:
    metadata:
      labels:
        sidecar.istio.io/inject: "false"
        gateway.networking.k8s.io/gateway-name: edge
        gateway.istio.io/managed: istio.io-gateway-controller
      annotations: {istio.io/rev: OLD}
    spec:
      containers: [{name: istio-proxy, image: docker.io/istio/proxyv2:OLD}]
"#;

#[test]
#[ignore = "needs the local cluster (tests/cluster); run with --ignored"]
fn pinned_policies_block_the_prune_until_relabelled_and_istio_cni_is_never_touched() {
    let started = Instant::now();
    let c = fresh_cluster();
    c.install_new_revision();

    // The real cni chart, installed as the docs install it, with the old revision's value.
    let chart = cni_chart(&c);
    c.helm_ok(&[
        "install",
        "istio-cni",
        &chart.display().to_string(),
        "-n",
        "istio-system",
        "--wait",
        "--timeout",
        "180s",
        "--set",
        &format!("revision={OLD_REV}"),
        "--set",
        &format!("global.tag={}", pinned_version(&c.root, "OLD_TAG")),
    ]);
    let cni_before = cni_daemon_set(&c);
    assert_eq!(
        cni_before["metadata"]["labels"]["istio.io/rev"].as_str(),
        Some(OLD_REV),
        "the cni chart labels itself with the revision value"
    );

    let policies = c.state.join("pinned-policies.yaml");
    std::fs::write(&policies, PINNED_POLICIES.replace("OLD", OLD_REV)).expect("write policies");
    c.kubectl_ok(&["apply", "-f", &policies.display().to_string()]);

    // The real Gateway API CRDs (server-side: their annotations would outgrow client-side
    // apply's), then a Gateway pinned to the old revision with its rendered gateway.
    let crds = gateway_api_crds(&c);
    c.kubectl_ok(&["apply", "--server-side", "-f", &crds.display().to_string()]);
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/gateways.gateway.networking.k8s.io",
        "--timeout=60s",
    ]);
    let gateway = c.state.join("pinned-gateway.yaml");
    std::fs::write(&gateway, PINNED_GATEWAY.replace("OLD", OLD_REV)).expect("write gateway");
    c.kubectl_ok(&["apply", "-f", &gateway.display().to_string()]);
    c.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/edge-istio",
        "-n",
        "bookinfo",
        "--timeout=120s",
    ]);
    apply_ztunnel_outside_helm(&c, OLD_REV);
    c.finish_the_upgrade_by_hand();

    // Only the pinned policies and ztunnel hold the old revision now.
    let refused = c.plugin("rev-prune", &[OLD_REV, "--yes"]);
    assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
    let text = stdout(&refused);
    assert!(text.contains("(4 blocker(s))"), "{}", show(&refused));
    for subject in [
        "authorizationpolicy.security.istio.io/bookinfo/deny-all",
        "peerauthentication.security.istio.io/bookinfo/strict",
        "gateway.gateway.networking.k8s.io/bookinfo/edge",
        "daemonset/istio-system/ztunnel",
    ] {
        assert!(text.contains(subject), "{subject} named:\n{text}");
    }
    assert!(!text.contains("istio-cni"), "cni is no blocker:\n{text}");
    assert_eq!(
        cni_daemon_set(&c),
        cni_before,
        "a refused prune touches no cni object"
    );

    // The label fixes, run exactly as printed; ztunnel's is a re-install with the new revision.
    let fixes: Vec<Vec<String>> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("fix: "))
        .filter(|fix| !fix.contains(&format!("--set revision={NEW_REV}")))
        .map(|fix| fix.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(fixes.len(), 3, "{text}");
    apply_ztunnel_outside_helm(&c, NEW_REV);
    for fix in &fixes {
        assert_eq!(fix[..2], ["kubectl", "label"], "{fix:?}");
        let args: Vec<&str> = fix[1..].iter().map(String::as_str).collect();
        c.kubectl_ok(&args);
    }
    // The Gateway now names the new revision, whose istiod re-renders its Deployment; no
    // istiod runs here, so the test does that controller's part.
    let rendered = format!(
        r#"{{"spec":{{"template":{{"metadata":{{"annotations":{{"istio.io/rev":"{NEW_REV}"}}}}}}}}}}"#
    );
    c.kubectl_ok(&[
        "patch",
        "deployment/edge-istio",
        "-n",
        "bookinfo",
        "--type=merge",
        "-p",
        &rendered,
    ]);
    c.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/edge-istio",
        "-n",
        "bookinfo",
        "--timeout=120s",
    ]);

    let pruned = c.plugin("rev-prune", &[OLD_REV, "--yes", "--timeout=2m"]);
    assert!(pruned.status.success(), "{}", show(&pruned));
    let text = stdout(&pruned);
    assert!(
        text.contains(&format!("Revision {OLD_REV} is gone.")),
        "{text}"
    );
    assert!(
        !text.contains("istio-cni-node"),
        "cni is not in the plan:\n{text}"
    );

    assert_eq!(
        cni_daemon_set(&c),
        cni_before,
        "istio-cni untouched by the prune"
    );
    let releases = c.helm_ok(&["ls", "-n", "istio-system", "-q"]);
    assert!(releases.lines().any(|r| r == "istio-cni"), "{releases}");
    let ztunnel = c.get_json(&["daemonset", "ztunnel", "-n", "istio-system"]);
    assert_eq!(
        ztunnel["spec"]["template"]["metadata"]["annotations"]["istio.io/rev"].as_str(),
        Some(NEW_REV),
        "ztunnel upgraded in place, not pruned"
    );
    for policy in [
        "authorizationpolicy/deny-all",
        "peerauthentication/strict",
        "gateway.gateway.networking.k8s.io/edge",
    ] {
        let obj = c.get_json(&[policy, "-n", "bookinfo"]);
        assert_eq!(
            obj["metadata"]["labels"]["istio.io/rev"].as_str(),
            Some(NEW_REV),
            "{policy} pinned to the new revision, not deleted"
        );
    }
    eprintln!(
        "prune_pinned e2e took {:.0}s",
        started.elapsed().as_secs_f64()
    );
}
