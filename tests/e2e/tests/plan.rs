//! `kubectl rev-plan` on the local control plane: the runbook it prints for the guide's starting
//! point, the values files it writes rendered by the real helm against the real 1-31 charts, and
//! its `-o sh` script walking the whole upgrade until rev-plan reports every step done.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rev_e2e::{Cluster, NEW_REV, OLD_REV, show};

/// The state dir of this binary's cluster: its own, so other checkouts' clusters are untouched.
const STATE: &str = "/tmp/plan-e2e-cluster";

/// `$CHARTS` of tests/cluster/lib.sh: the extracted Istio charts, one directory per revision.
fn charts(root: &Path) -> PathBuf {
    let out = Command::new("bash")
        .args(["-c", ". tests/cluster/lib.sh && printf %s \"$CHARTS\""])
        .current_dir(root)
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{}", show(&out));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The version of NEW's images (versions.env `NEW_TAG`), as the scenario installs them.
fn new_tag(root: &Path) -> String {
    let out = Command::new("bash")
        .args([
            "-c",
            ". tests/cluster/versions.env && printf %s \"$NEW_TAG\"",
        ])
        .current_dir(root)
        .output()
        .expect("bash runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A program run with the cluster's tools and plugins first on PATH, preceded by `first`.
fn tool(c: &Cluster, first: &Path, work: &Path, program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env(
        "PATH",
        format!(
            "{}:{}:{}:/usr/bin:/bin",
            first.display(),
            c.plugins.display(),
            c.tools.display()
        ),
    )
    .env("KUBECONFIG", &c.kubeconfig)
    .env("NO_COLOR", "1")
    .env("HELM_CONFIG_HOME", work.join("helm/config"))
    .env("HELM_CACHE_HOME", work.join("helm/cache"))
    .env("HELM_DATA_HOME", work.join("helm/data"))
    .env_remove("KUBECTL_PLUGINS_PATH")
    .current_dir(work)
    .stdin(std::process::Stdio::null());
    cmd
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs the local control plane (tests/cluster): run `make e2e`"]
fn the_plan_script_walks_the_whole_upgrade_and_the_plan_then_reports_every_step_done() {
    let c = Cluster::fresh_in(Path::new(STATE));
    let work = std::env::temp_dir().join(format!("rev-plan-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let stubs = work.join("stubs");
    std::fs::create_dir_all(&stubs).expect("work dir");
    // Nothing routes the local cluster's gateway addresses (README of tests/cluster): the probe
    // step runs a stand-in that records its arguments; rev-probe has its own e2e.
    let probe_log = work.join("probe.log");
    let stub = stubs.join("kubectl-rev_probe");
    std::fs::write(
        &stub,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", probe_log.display()),
    )
    .expect("stub");
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");

    let charts_dir = charts(&c.root).join(NEW_REV);
    let charts_arg = charts_dir.display().to_string();
    let version = new_tag(&c.root);
    let values = work.join("values");
    let values_arg = values.display().to_string();
    let plan = |extra: &[&str]| {
        let mut args = vec![
            "rev-plan",
            NEW_REV,
            "--istio-version",
            version.as_str(),
            "--charts",
            charts_arg.as_str(),
            "--values-dir",
            values_arg.as_str(),
        ];
        args.extend_from_slice(extra);
        let out = tool(&c, &stubs, &work, "kubectl")
            .args(&args)
            .output()
            .expect("kubectl runs");
        assert!(out.status.success(), "{}", show(&out));
        out
    };

    // Guide step 1's cluster: installing NEW is next, everything else waits.
    let before = stdout(&plan(&[]));
    assert!(before.contains("Now: step 1 of"), "{before}");
    assert!(
        before.contains(&format!(
            "[next]     Install istiod-{NEW_REV} beside {OLD_REV}"
        )),
        "{before}"
    );
    assert!(before.contains("VALUES CARRIED OVER"), "{before}");

    // The values file renders with the real helm and the real chart: istiod-NEW, with the old
    // release's injector CA carried over and its URL pointed at NEW.
    let istiod_values = values.join(format!("istiod-{NEW_REV}.yaml"));
    let old_values = c.helm_ok(&[
        "get",
        "values",
        &format!("istiod-{OLD_REV}"),
        "-n",
        "istio-system",
        "-o",
        "json",
    ]);
    let old_values: serde_json::Value = serde_json::from_str(&old_values).expect("helm JSON");
    let ca = old_values["istiodRemote"]["injectionCABundle"]
        .as_str()
        .expect("the scenario sets an injection CA");
    let rendered = tool(&c, &stubs, &work, "helm")
        .args([
            "template",
            &format!("istiod-{NEW_REV}"),
            &format!("{charts_arg}/istiod"),
            "-n",
            "istio-system",
            "-f",
        ])
        .arg(&istiod_values)
        .output()
        .expect("helm runs");
    assert!(rendered.status.success(), "{}", show(&rendered));
    let rendered = stdout(&rendered);
    assert!(
        rendered.contains(&format!("name: istiod-{NEW_REV}\n")),
        "no istiod-{NEW_REV} Deployment"
    );
    assert!(
        rendered.contains(&format!("/inject/{NEW_REV}")),
        "injection URL not moved to {NEW_REV}"
    );
    assert!(
        !rendered.contains(&format!("/inject/{OLD_REV}")),
        "injection URL still on {OLD_REV}"
    );
    assert!(rendered.contains(ca), "carried injection CA missing");
    assert!(
        rendered.contains(&format!("pilot:{version}")),
        "image not {version}"
    );

    // The script of the pending steps, every pause answered.
    let script = stdout(&plan(&["-o", "sh"]));
    let script_path = work.join("upgrade.sh");
    std::fs::write(&script_path, &script).expect("script");
    let started = std::time::Instant::now();
    let ran = tool(&c, &stubs, &work, "bash")
        .arg(&script_path)
        .arg("--yes")
        .output()
        .expect("bash runs");
    assert!(
        ran.status.success(),
        "script failed:\n{script}\n{}",
        show(&ran)
    );
    eprintln!("the -o sh script ran in {:.1?}", started.elapsed());

    // What the cluster shows now, through the API: bookinfo on NEW, OLD gone.
    let ns = c.get_json(&["namespace", "bookinfo"]);
    assert_eq!(ns["metadata"]["labels"]["istio.io/rev"], NEW_REV);
    let old_istiod = c.kubectl(&[
        "get",
        "deployment",
        &format!("istiod-{OLD_REV}"),
        "-n",
        "istio-system",
    ]);
    assert!(!old_istiod.status.success(), "istiod-{OLD_REV} still there");
    let probes = std::fs::read_to_string(&probe_log).expect("the probe step ran");
    assert!(
        probes.contains(&format!(
            "--gateway istio-ingress/istio-ingressgateway-{NEW_REV}"
        )),
        "{probes}"
    );

    let after = stdout(&plan(&[]));
    assert!(after.contains("Every step is done."), "{after}");
    let _ = std::fs::remove_dir_all(&work);
    let _ = Command::new("bash")
        .args(["tests/cluster/cluster.sh", "down"])
        .env("REV_CLUSTER_STATE", STATE)
        .current_dir(&c.root)
        .output();
}
