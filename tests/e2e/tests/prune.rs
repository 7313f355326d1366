//! `kubectl rev-prune` end to end (upgrade guide step 5) on the real local control plane, with
//! real Helm and the real Istio charts: it refuses while anything uses the old revision and
//! deletes nothing; once the step-3 flow is done (with plain kubectl) and the default tag and
//! validator moved, it removes exactly the old releases, leaving every new-revision object
//! byte-for-byte (resourceVersion included) as it was.
//!
//! Runs on the default local cluster, like the other e2e binaries (they run one after another);
//! $REV_PRUNE_E2E_STATE names another state dir, so a developer can run it beside another
//! cluster without stopping that one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use rev_e2e::{Cluster, NEW_REV, OLD_REV, show};
use serde_json::Value;

fn fresh_cluster() -> Cluster {
    match std::env::var_os("REV_PRUNE_E2E_STATE") {
        Some(state) => Cluster::fresh_in(&PathBuf::from(state)),
        None => Cluster::fresh(),
    }
}

fn helm(c: &Cluster, args: &[&str]) -> String {
    c.helm_ok(args)
}

fn release_names(c: &Cluster) -> Vec<String> {
    let out = helm(c, &["ls", "-A", "-a", "-o", "json"]);
    let list: Value = serde_json::from_str(&out).expect("helm ls JSON");
    let mut names: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

/// Every object of a revision: labelled `istio.io/rev=<rev>`, the istiod chart's unlabelled
/// cluster roles, and every object of its releases' manifests; keyed `Kind/ns/name`, whole.
fn dump_revision(c: &Cluster, rev: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut add = |list: Value| {
        let items = match list.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => vec![list],
        };
        for item in items {
            let key = format!(
                "{}/{}/{}",
                item["kind"].as_str().unwrap_or_default(),
                item["metadata"]["namespace"].as_str().unwrap_or_default(),
                item["metadata"]["name"].as_str().unwrap_or_default()
            );
            out.insert(key, item);
        }
    };
    let selector = format!("istio.io/rev={rev}");
    for kind in [
        "deployments",
        "services",
        "serviceaccounts",
        "configmaps",
        "horizontalpodautoscalers",
        "poddisruptionbudgets",
        "roles",
        "rolebindings",
    ] {
        add(c.get_json(&[kind, "-A", "-l", &selector]));
    }
    for kind in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "clusterroles",
        "clusterrolebindings",
    ] {
        let all = c.get_json(&[kind]);
        for item in all["items"].as_array().into_iter().flatten() {
            let name = item["metadata"]["name"].as_str().unwrap_or_default();
            let labelled = item["metadata"]["labels"]["istio.io/rev"].as_str() == Some(rev);
            if labelled || name.contains(&format!("-{rev}-")) || name.ends_with(&format!("-{rev}"))
            {
                add(item.clone());
            }
        }
    }
    for (release, ns) in [
        (format!("istiod-{rev}"), "istio-system"),
        (format!("istio-ingressgateway-{rev}"), "istio-ingress"),
        (format!("istio-eastwestgateway-{rev}"), "istio-eastwest"),
    ] {
        let manifest = helm(c, &["get", "manifest", &release, "-n", ns]);
        let file = c.state.join(format!("manifest-{release}.yaml"));
        std::fs::write(&file, manifest).expect("write manifest");
        add(c.get_json(&["-f", &file.display().to_string()]));
    }
    out
}

/// Asserts nothing was written to any object of `before`: each still exists, byte for byte,
/// resourceVersion included — except that controllers may have written its `status` (the HPA
/// controller rewrites HPAs' conditions every few seconds here, metrics being absent); then the
/// object without `status` and resourceVersion must still be byte for byte the same.
fn assert_unchanged(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>, what: &str) {
    let without_status = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("status");
        }
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        v
    };
    let mut changed = Vec::new();
    for (key, old) in before {
        match after.get(key) {
            None => changed.push(format!("{key}: deleted")),
            Some(new) if new == old => {}
            Some(new)
                if new.get("status") != old.get("status")
                    && without_status(new) == without_status(old) => {}
            Some(_) => changed.push(format!("{key}: changed")),
        }
    }
    assert!(changed.is_empty(), "{what}: {changed:?}");
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn restart(c: &Cluster, deployment: &str) {
    c.kubectl_ok(&[
        "rollout",
        "restart",
        "-n",
        "bookinfo",
        &format!("deployment/{deployment}"),
    ]);
    c.kubectl_ok(&[
        "rollout",
        "status",
        "-n",
        "bookinfo",
        &format!("deployment/{deployment}"),
        "--timeout=120s",
    ]);
}

#[test]
#[ignore = "needs the local cluster (tests/cluster); run with --ignored"]
fn prune_refuses_while_used_then_removes_exactly_the_old_revision() {
    let c = fresh_cluster();
    c.install_new_revision();
    let all_releases = release_names(&c);
    assert_eq!(all_releases.len(), 7, "{all_releases:?}");

    // Step 3, half done: namespace relabelled, only some workloads restarted.
    c.kubectl_ok(&[
        "label",
        "ns",
        "bookinfo",
        &format!("istio.io/rev={NEW_REV}"),
        "--overwrite",
    ]);
    let deployments: Vec<String> = c.get_json(&["deployments", "-n", "bookinfo"])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(deployments.len(), 6);
    for d in &deployments[..3] {
        restart(&c, d);
    }
    let old_before = dump_revision(&c, OLD_REV);
    let refused = c.plugin("rev-prune", &[OLD_REV, "--yes"]);
    assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
    let text = stdout(&refused);
    assert!(
        text.contains("namespace/bookinfo: 3 pod(s) still run 1-30 sidecars"),
        "{}",
        show(&refused)
    );
    assert!(text.contains("tag/default"), "{text}");
    assert!(
        text.contains("validatingwebhookconfiguration/istiod-default-validator"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("nothing was changed"));
    assert_eq!(
        release_names(&c),
        all_releases,
        "a refused prune deletes nothing"
    );
    assert_unchanged(
        &old_before,
        &dump_revision(&c, OLD_REV),
        "a refused prune writes nothing",
    );

    // Step 3 finished: now only the default tag and the default validator hold 1-30.
    for d in &deployments[3..] {
        restart(&c, d);
    }
    let refused = c.plugin("rev-prune", &[OLD_REV, "--yes"]);
    assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
    let text = stdout(&refused);
    assert!(text.contains("(2 blocker(s))"), "{text}");
    assert!(text.contains("tag/default: revision tag default"), "{text}");
    assert!(
        text.contains("fix: helm upgrade istio-base <istio base chart> -n istio-system --reuse-values --set defaultRevision=1-31"),
        "{text}"
    );

    // Move them as an operator would.
    c.move_default_revision_and_tag();

    // Bad input on a live cluster: no terminal and no --yes; the revision namespaces use.
    let no_tty = c.plugin("rev-prune", &[OLD_REV]);
    assert_eq!(no_tty.status.code(), Some(1), "{}", show(&no_tty));
    let err = String::from_utf8_lossy(&no_tty.stderr);
    assert!(
        err.contains("no terminal to confirm on") && err.contains("re-run with --yes"),
        "{}",
        show(&no_tty)
    );
    let in_use = c.plugin("rev-prune", &[NEW_REV, "--yes"]);
    assert_eq!(in_use.status.code(), Some(1), "{}", show(&in_use));
    assert!(
        stdout(&in_use).contains("namespace/bookinfo: istio.io/rev=1-31"),
        "{}",
        show(&in_use)
    );
    assert_eq!(release_names(&c), all_releases, "refusals delete nothing");

    // Prune: every 1-31 object untouched, byte for byte.
    let new_before = dump_revision(&c, NEW_REV);
    assert!(new_before.len() >= 25, "{:?}", new_before.keys());
    let started = Instant::now();
    let pruned = c.plugin("rev-prune", &[OLD_REV, "--yes", "--timeout=2m"]);
    let took = started.elapsed();
    assert!(pruned.status.success(), "{}", show(&pruned));
    eprintln!(
        "kubectl rev-prune {OLD_REV} --yes took {:.1}s",
        took.as_secs_f64()
    );
    let text = stdout(&pruned);
    assert!(text.contains("Revision 1-30 is gone."), "{text}");
    assert!(text.contains("What remains of the mesh:"), "{text}");

    assert_eq!(
        release_names(&c),
        vec![
            "istio-base".to_string(),
            format!("istio-eastwestgateway-{NEW_REV}"),
            format!("istio-ingressgateway-{NEW_REV}"),
            format!("istiod-{NEW_REV}"),
        ],
        "helm ls -A lists only the new releases and base"
    );
    let new_after = dump_revision(&c, NEW_REV);
    assert_unchanged(&new_before, &new_after, "every 1-31 object is as it was");
    assert_eq!(new_after.len(), new_before.len());
    let leftovers: Vec<String> = c
        .kubectl_ok(&["get", "deploy,svc,cm,sa,role,rolebinding,hpa", "-A", "-o", "name"])
        .lines()
        .chain(c.kubectl_ok(&["get", "clusterroles,clusterrolebindings,mutatingwebhookconfigurations,validatingwebhookconfigurations", "-o", "name"]).lines())
        .filter(|l| l.contains(OLD_REV))
        .map(str::to_string)
        .collect();
    assert!(leftovers.is_empty(), "left of {OLD_REV}: {leftovers:?}");
    let pods = c.get_json(&["pods", "-A"]);
    let old_pods: Vec<&str> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .filter(|n| n.contains(OLD_REV))
        .collect();
    assert!(old_pods.is_empty(), "{old_pods:?}");

    // Once gone, a re-run has nothing to do: exit 0, naming what is installed.
    let again = c.plugin("rev-prune", &[OLD_REV, "--yes"]);
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    assert!(
        stdout(&again).contains(&format!(
            "Nothing of {OLD_REV} is left to delete (installed revisions: {NEW_REV})"
        )),
        "{}",
        show(&again)
    );
}
