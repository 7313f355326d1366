//! The upgrade guide, end to end, on a real API server with real controllers, real Helm and the
//! real Istio charts: the plugins run through kubectl's own plugin lookup, and every step's
//! cluster state is asserted through the API (kubectl get), not through the plugins' output.

use std::collections::BTreeMap;

use rev_e2e::{Cluster, NEW_REV, OLD_REV, PLUGINS, pod_revisions, show};
use serde_json::Value;

const BOOKINFO: [&str; 6] = [
    "details-v1",
    "productpage-v1",
    "ratings-v1",
    "reviews-v1",
    "reviews-v2",
    "reviews-v3",
];

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", show(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", show(out)))
}

fn namespace_state(c: &Cluster, name: &str) -> (BTreeMap<String, String>, String) {
    let ns = c.get_json(&["namespace", name]);
    let labels = ns["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    (
        labels,
        ns["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn revisions_of(c: &Cluster) -> Vec<String> {
    pod_revisions(c, "bookinfo")
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

fn generations(c: &Cluster) -> Vec<i64> {
    BOOKINFO
        .iter()
        .map(|d| {
            c.get_json(&["deployment", d, "-n", "bookinfo"])["metadata"]["generation"]
                .as_i64()
                .unwrap_or(0)
        })
        .collect()
}

#[test]
#[ignore = "needs the local control plane (tests/cluster): run `make e2e`"]
fn upgrade_guide_end_to_end() {
    // $REV_GUIDE_E2E_STATE: a state dir of its own, beside other checkouts' clusters.
    let c = match std::env::var_os("REV_GUIDE_E2E_STATE") {
        Some(state) => Cluster::fresh_in(std::path::Path::new(&state)),
        None => Cluster::fresh(),
    };

    // The plugins are found by kubectl itself, with no warning.
    let list = c.kubectl(&["plugin", "list"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    for p in PLUGINS {
        assert!(
            listed.contains(p),
            "kubectl plugin list misses {p}: {}",
            show(&list)
        );
    }
    assert!(
        !String::from_utf8_lossy(&list.stderr).contains("warning"),
        "{}",
        show(&list)
    );

    step1_inventory_of_the_old_revision(&c);
    c.install_new_revision();
    step3_inventory_shows_both_revisions(&c);
    step3_relabel_refusals_change_nothing(&c);
    step3_relabel_moves_bookinfo_and_undo_restores_it(&c);
    step3_restart_stops_at_the_first_failure_with_the_undo_command(&c);
    step3_restart_moves_every_pod_one_at_a_time(&c);
    step3_default_tag_moves_legacy_namespaces(&c);
    step5_prune_removes_the_old_revision(&c);
}

fn step1_inventory_of_the_old_revision(c: &Cluster) {
    let inv = json_of(&c.plugin("rev-inventory", &["-o", "json"]));
    let cluster = &inv["clusters"][0];
    let revs: Vec<_> = cluster["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(revs, [OLD_REV]);
    assert_eq!(cluster["defaultRevision"], OLD_REV);
    // The cluster agrees: every Bookinfo pod carries the old revision's sidecar.
    assert_eq!(revisions_of(c), vec![OLD_REV.to_string(); 6]);
    let gateways = cluster["gateways"].as_array().unwrap();
    assert_eq!(
        gateways.len(),
        2,
        "ingress and east-west gateways of {OLD_REV}"
    );

    // Two contexts in one run (multi-cluster meshes): here the same cluster as admin and as a
    // user who may not read Secrets — that user's report is partial, with a warning naming the
    // verb and resource instead of a failure.
    let both = format!(
        "{}:{}",
        c.kubeconfig.display(),
        c.limited_kubeconfig.display()
    );
    let two_contexts = [
        "--context",
        "rev-test-admin",
        "--context",
        "rev-test-limited",
    ];
    let inv = json_of(&c.plugin_with_kubeconfig(
        "rev-inventory",
        &[&two_contexts[..], &["-o", "json"]].concat(),
        &both,
    ));
    let clusters = inv["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 2);
    assert_eq!(clusters[0]["cluster"], "rev-test-admin");
    assert!(clusters[0]["warnings"].as_array().unwrap().is_empty());
    let warnings = clusters[1]["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w["verb"] == "list" && w["resource"] == "secrets"),
        "{warnings:?}"
    );
    assert!(
        clusters[1]["revisions"][0]["helmRelease"].is_null(),
        "Helm records were not readable"
    );
    let table = c.plugin_with_kubeconfig("rev-inventory", &two_contexts, &both);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("CLUSTER"),
        "{}",
        show(&table)
    );
}

fn step3_inventory_shows_both_revisions(c: &Cluster) {
    let inv = json_of(&c.plugin("rev-inventory", &["-o", "json"]));
    let cluster = &inv["clusters"][0];
    let revs: Vec<_> = cluster["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(revs, [OLD_REV, NEW_REV]);
    let releases = c.helm_ok(&["ls", "-A", "-q"]);
    for r in [
        format!("istiod-{NEW_REV}"),
        format!("istio-ingressgateway-{NEW_REV}"),
        format!("istio-eastwestgateway-{NEW_REV}"),
    ] {
        assert!(
            releases.lines().any(|l| l == r),
            "helm ls misses {r}: {releases}"
        );
    }
}

fn step3_relabel_refusals_change_nothing(c: &Cluster) {
    let before = namespace_state(c, "bookinfo");
    // (arguments, exit code, what the output says)
    let refusals: [(&[&str], i32, &str); 6] = [
        (
            &["bookinfo", "1-99", "--yes"],
            1,
            "neither an installed revision nor a tag",
        ),
        (&["bookinfo", "1.31", "--yes"], 2, "invalid revision"),
        (
            &["nope", NEW_REV, "--yes"],
            1,
            "namespace(s) not found: nope",
        ),
        (&["bookinfo", NEW_REV], 1, "no terminal to confirm on"),
        (&["bookinfo", NEW_REV, "--dry-run=client"], 0, ""),
        (&["bookinfo", NEW_REV, "--dry-run=server"], 0, ""),
    ];
    for (args, code, message) in refusals {
        let out = c.plugin("rev-relabel", args);
        // The plan (with its blockers) is on stdout, the error on stderr.
        let err = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", show(&out));
        if !message.is_empty() {
            assert!(
                err.contains(message),
                "{args:?} should say {message:?}: {}",
                show(&out)
            );
        }
        assert_eq!(
            namespace_state(c, "bookinfo"),
            before,
            "{args:?} changed the namespace"
        );
    }
    step3_a_namespace_another_run_holds_is_refused(c, &before);
    // RBAC: a user who may read but not patch namespaces is told which verb on which resource.
    let kc = c.limited_kubeconfig.display().to_string();
    let out = c.plugin(
        "rev-relabel",
        &["bookinfo", NEW_REV, "--yes", "--kubeconfig", &kc],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot patch namespaces"),
        "{}",
        show(&out)
    );
    assert_eq!(namespace_state(c, "bookinfo"), before);
}

/// Another run holds bookinfo's Lease (renewed just now, as a running one does): a second run is
/// refused naming it and changes nothing; once that run gave it back, the next run goes ahead
/// and gives it back in turn.
fn step3_a_namespace_another_run_holds_is_refused(
    c: &Cluster,
    before: &(BTreeMap<String, String>, String),
) {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let lease = format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: kubectl-rev\n  namespace: bookinfo\n  labels: {{app.kubernetes.io/managed-by: kubectl-rev}}\nspec:\n  holderIdentity: rev-restart by bob@ci (pid 7)\n  leaseDurationSeconds: 30\n  renewTime: \"{now}\"\n"
    );
    let file = c.state.join("held-lease.yaml");
    std::fs::write(&file, lease).expect("write the lease");
    c.kubectl_ok(&["apply", "-f", &file.display().to_string()]);

    let out = c.plugin("rev-relabel", &["bookinfo", NEW_REV, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another run holds namespace bookinfo: rev-restart by bob@ci (pid 7)"),
        "{}",
        show(&out)
    );
    assert!(err.contains("--break-lock"), "{}", show(&out));
    assert_eq!(
        &namespace_state(c, "bookinfo"),
        before,
        "a refused run changed bookinfo"
    );

    // That run ended: its Lease has no holder. A dry run on the server takes no lock at all.
    c.kubectl_ok(&[
        "patch",
        "lease",
        "kubectl-rev",
        "-n",
        "bookinfo",
        "--type=merge",
        "-p",
        r#"{"spec":{"holderIdentity":null,"renewTime":null}}"#,
    ]);
    let out = c.plugin("rev-relabel", &["bookinfo", NEW_REV, "--dry-run=server"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(&namespace_state(c, "bookinfo"), before);
    assert_eq!(lease_holder(c, "bookinfo"), "", "given back");
}

/// Who holds the suite's run lock of `namespace` now ("" once given back).
fn lease_holder(c: &Cluster, namespace: &str) -> String {
    c.kubectl_ok(&[
        "get",
        "lease",
        "kubectl-rev",
        "-n",
        namespace,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
    .trim()
    .to_string()
}

fn step3_relabel_moves_bookinfo_and_undo_restores_it(c: &Cluster) {
    // Start from the legacy label too, so undo has something non-trivial to restore.
    c.kubectl_ok(&[
        "label",
        "namespace",
        "bookinfo",
        "istio-injection=enabled",
        "team=books",
    ]);
    let (original, _) = namespace_state(c, "bookinfo");

    let out = c.plugin("rev-relabel", &["bookinfo", NEW_REV, "--yes"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("kubectl rev-restart bookinfo"),
        "next step printed"
    );
    let (labels, rv) = namespace_state(c, "bookinfo");
    assert_eq!(
        labels.get("istio.io/rev").map(String::as_str),
        Some(NEW_REV)
    );
    assert!(
        !labels.contains_key("istio-injection"),
        "legacy label removed: {labels:?}"
    );
    assert_eq!(
        labels.get("team").map(String::as_str),
        Some("books"),
        "other labels untouched"
    );
    assert_eq!(
        lease_holder(c, "bookinfo"),
        "",
        "the run gave its lock back"
    );

    // A second run changes nothing.
    let again = c.plugin("rev-relabel", &["bookinfo", NEW_REV, "--yes"]);
    assert!(
        again.status.success() && String::from_utf8_lossy(&again.stdout).contains("unchanged"),
        "{}",
        show(&again)
    );
    assert_eq!(
        namespace_state(c, "bookinfo").1,
        rv,
        "second run wrote nothing"
    );

    // Inventory now shows the drift: six pods to restart.
    let inv = json_of(&c.plugin("rev-inventory", &["-n", "bookinfo", "-o", "json"]));
    assert_eq!(inv["clusters"][0]["namespaces"][0]["podsNeedingRestart"], 6);

    // Undo restores exactly what was replaced; then move again for the rest of the guide.
    let undo = c.plugin("rev-relabel", &["--undo", "bookinfo", "--yes"]);
    assert!(undo.status.success(), "{}", show(&undo));
    assert_eq!(namespace_state(c, "bookinfo").0, original);
    let redo = c.plugin("rev-relabel", &["bookinfo", NEW_REV, "--yes"]);
    assert!(redo.status.success(), "{}", show(&redo));
}

fn step3_restart_moves_every_pod_one_at_a_time(c: &Cluster) {
    let report = json_of(&c.plugin("rev-restart", &["-n", "bookinfo", "--yes", "-o", "json"]));
    let workloads = report["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 6);
    assert!(
        workloads
            .iter()
            .all(|w| w["result"] == "restarted" && w["podsVerified"] == 1),
        "{report}"
    );

    // Every Bookinfo pod now runs the new revision's sidecar (from the API).
    assert_eq!(revisions_of(c), vec![NEW_REV.to_string(); 6]);

    // One at a time: each restart was sent after the previous rollout completed — the plugin's
    // timings, checked against the restartedAt each Deployment carries in the cluster.
    let mut previous_finish = String::new();
    for w in workloads {
        let name = w["name"].as_str().unwrap();
        let d = c.get_json(&["deployment", name, "-n", "bookinfo"]);
        let restarted_at =
            d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} has no restartedAt"))
                .to_string();
        let started = w["startedAt"].as_str().unwrap().to_string();
        let finished = w["finishedAt"].as_str().unwrap().to_string();
        // details-v1's rollout was left under way by the failure step above: the run waited for
        // it instead of restarting it a second time, so its restartedAt is that step's.
        let waited_for_earlier_rollout = name == "details-v1" && restarted_at < started;
        assert!(
            (restarted_at >= started || waited_for_earlier_rollout) && restarted_at <= finished,
            "{name}: restartedAt {restarted_at} outside {started}..{finished}"
        );
        assert!(
            restarted_at >= previous_finish,
            "{name} restarted at {restarted_at}, before the previous rollout finished at {previous_finish}"
        );
        previous_finish = finished;
    }

    // A second run has nothing to do and rolls nothing.
    let generations_before = generations(c);
    let again = c.plugin("rev-restart", &["-n", "bookinfo", "--yes"]);
    assert!(again.status.success(), "{}", show(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("Nothing to restart"),
        "{}",
        show(&again)
    );
    assert_eq!(generations(c), generations_before);
}

/// Retargeting the `default` tag: a namespace on the legacy label gets the new revision's
/// sidecar after a restart — decided by the real API server evaluating the regenerated webhooks.
fn step3_default_tag_moves_legacy_namespaces(c: &Cluster) {
    c.kubectl_ok(&["create", "namespace", "legacy-apps"]);
    c.kubectl_ok(&[
        "label",
        "namespace",
        "legacy-apps",
        "istio-injection=enabled",
    ]);
    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=registry.example/web:1",
        "-n",
        "legacy-apps",
    ]);
    c.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        "legacy-apps",
        "--timeout=120s",
    ]);
    assert_eq!(
        pod_revisions(c, "legacy-apps")
            .into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<_>>(),
        [OLD_REV]
    );

    let out = c.plugin("rev-relabel", &["--tag", "default", NEW_REV, "--yes"]);
    assert!(out.status.success(), "{}", show(&out));
    let tag = c.get_json(&["mutatingwebhookconfiguration", "istio-revision-tag-default"]);
    assert_eq!(tag["metadata"]["labels"]["istio.io/rev"], NEW_REV);
    let validator = c.get_json(&["validatingwebhookconfiguration", "istiod-default-validator"]);
    assert_eq!(validator["metadata"]["labels"]["istio.io/rev"], NEW_REV);

    let restart = c.plugin("rev-restart", &["legacy-apps", "--yes"]);
    assert!(restart.status.success(), "{}", show(&restart));
    assert_eq!(
        pod_revisions(c, "legacy-apps")
            .into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<_>>(),
        [NEW_REV]
    );
}

/// Step 5: with nothing left on the old revision, prune removes its releases; `helm ls -A` lists
/// only the new revision's releases and base, and the workloads keep their sidecars.
fn step5_prune_removes_the_old_revision(c: &Cluster) {
    let out = c.plugin("rev-prune", &[OLD_REV, "--yes"]);
    assert!(out.status.success(), "{}", show(&out));
    let mut releases: Vec<String> = c
        .helm_ok(&["ls", "-A", "-q"])
        .lines()
        .map(str::to_string)
        .collect();
    releases.sort();
    let mut expected = vec![
        "istio-base".to_string(),
        format!("istio-eastwestgateway-{NEW_REV}"),
        format!("istio-ingressgateway-{NEW_REV}"),
        format!("istiod-{NEW_REV}"),
    ];
    expected.sort();
    assert_eq!(releases, expected);
    let old_istiod = c.kubectl(&[
        "get",
        "deployment",
        &format!("istiod-{OLD_REV}"),
        "-n",
        "istio-system",
    ]);
    assert!(!old_istiod.status.success(), "istiod-{OLD_REV} is gone");
    assert_eq!(revisions_of(c), vec![NEW_REV.to_string(); 6]);
    let inv = json_of(&c.plugin("rev-inventory", &["-o", "json"]));
    let revs: Vec<_> = inv["clusters"][0]["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(revs, [NEW_REV]);
}

/// With the new revision's injector refusing every pod (its istiod "down"), the admission
/// preflight refuses the run up front; past it, the first rollout cannot finish: rev-restart
/// stops there, says how to roll back, and leaves the other workloads alone. Once injection works again, the normal restart step below resumes the job.
fn step3_restart_stops_at_the_first_failure_with_the_undo_command(c: &Cluster) {
    let revisions_file = c.state.join("injector-revisions");
    let original = std::fs::read_to_string(&revisions_file).expect("injector revisions");
    let without_new: String = original
        .lines()
        .filter(|l| !l.starts_with(&format!("{NEW_REV}=")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&revisions_file, without_new).expect("write injector revisions");
    let generations_before = generations(c);

    // Asked first, the cluster says no: a dryRun=All create of each template goes through the
    // real webhooks, the refusal is named, and nothing is restarted.
    let refused = c.plugin("rev-restart", &["bookinfo", "--yes"]);
    assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
    let plan = String::from_utf8_lossy(&refused.stdout);
    assert!(
        plan.contains(
            "The cluster's admission chain (a dryRun=All create of each template) refuses"
        ),
        "{}",
        show(&refused)
    );
    assert!(
        plan.contains("deployment/details-v1 in bookinfo"),
        "{}",
        show(&refused)
    );
    assert_eq!(generations(c), generations_before, "nothing restarted");

    // Past the check (--no-admission-check), the first rollout cannot finish: it stops there.
    let out = c.plugin(
        "rev-restart",
        &[
            "bookinfo",
            "--yes",
            "--timeout",
            "8s",
            "-o",
            "json",
            "--no-admission-check",
        ],
    );
    std::fs::write(&revisions_file, &original).expect("restore injector revisions");

    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON summary even on failure");
    let results: Vec<&str> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["result"].as_str().unwrap())
        .collect();
    assert_eq!(results[0], "timed-out", "{report}");
    assert!(
        results[1..].iter().all(|r| *r == "not-run"),
        "stops at the first failure: {results:?}"
    );
    assert_eq!(
        report["workloads"][0]["undo"],
        "kubectl rollout undo deployment/details-v1 -n bookinfo"
    );
    // Why it is stuck, in the cluster's words: the new ReplicaSet's FailedCreate event carrying
    // the webhook's denial (issue 11 item 9).
    let cause = &report["workloads"][0]["cause"];
    assert_eq!(cause["reason"], "FailedCreate", "{report}");
    assert!(
        cause["object"]
            .as_str()
            .is_some_and(|o| o.starts_with("replicaset/details-v1-")),
        "{report}"
    );
    let denial = cause["message"].as_str().unwrap_or_default();
    assert!(
        denial.contains("denied the request")
            && denial.contains(&format!("no istiod serves revision \"{NEW_REV}\"")),
        "{report}"
    );
    let generations_after = generations(c);
    assert_eq!(
        generations_after[1..],
        generations_before[1..],
        "only the first workload was touched"
    );
}
