//! Issue 11 item 8 on the real local control plane: an old gateway's LoadBalancer Service and
//! a new one's, each with an address of its own, as a cloud gives them. `rev-prune OLD --yes`
//! refuses naming both addresses and deletes nothing (with `--force` too); with
//! `--allow-address-change` it prunes.
//!
//! There is no cloud controller here: kwok's `service-load-balancer` stage (tests/cluster)
//! gives every LoadBalancer Service `127.0.0.1` once, only while it has no ingress. The test
//! writes the addresses itself through the `status` subresource, as a cloud controller does,
//! and the stage leaves them alone. The east-west gateways keep their shared `127.0.0.1`: an
//! address another Service still holds stays, and blocks nothing.
//!
//! Runs on a fresh cluster of its own: $REV_PRUNE_ADDRESS_E2E_STATE names its state dir
//! (default tests/cluster/.state, like the other e2e binaries, which run one after another).

use std::path::PathBuf;
use std::time::Instant;

use rev_e2e::{Cluster, NEW_REV, OLD_REV, show};

const OLD_ADDRESS: &str = "203.0.113.30";
const NEW_ADDRESS: &str = "203.0.113.31";

fn fresh_cluster() -> Cluster {
    match std::env::var_os("REV_PRUNE_ADDRESS_E2E_STATE") {
        Some(state) => Cluster::fresh_in(&PathBuf::from(state)),
        None => Cluster::fresh(),
    }
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sets a Service's load-balancer address as a cloud controller would: on `status`.
fn set_load_balancer_ip(c: &Cluster, namespace: &str, service: &str, ip: &str) {
    let patch = format!(r#"{{"status":{{"loadBalancer":{{"ingress":[{{"ip":"{ip}"}}]}}}}}}"#);
    c.kubectl_ok(&[
        "patch",
        "service",
        service,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ]);
    let svc = c.get_json(&["service", service, "-n", namespace]);
    assert_eq!(
        svc["status"]["loadBalancer"]["ingress"][0]["ip"].as_str(),
        Some(ip),
        "{namespace}/{service} keeps the address written to its status"
    );
}

fn old_releases(c: &Cluster) -> Vec<String> {
    let all = c.helm_ok(&["ls", "-A", "-q"]);
    all.lines()
        .filter(|r| r.ends_with(OLD_REV))
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "needs the local cluster (tests/cluster); run with --ignored"]
fn an_address_that_would_disappear_refuses_the_prune_until_allowed() {
    let started = Instant::now();
    let c = fresh_cluster();
    c.install_new_revision();
    c.finish_the_upgrade_by_hand();
    let old_gateway = format!("istio-ingressgateway-{OLD_REV}");
    let new_gateway = format!("istio-ingressgateway-{NEW_REV}");
    set_load_balancer_ip(&c, "istio-ingress", &old_gateway, OLD_ADDRESS);
    set_load_balancer_ip(&c, "istio-ingress", &new_gateway, NEW_ADDRESS);
    let releases_before = old_releases(&c);
    assert_eq!(releases_before.len(), 3, "{releases_before:?}");

    for force in [false, true] {
        let mut args = vec![OLD_REV, "--yes"];
        if force {
            args.push("--force");
        }
        let refused = c.plugin("rev-prune", &args);
        assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
        let text = stdout(&refused);
        assert!(text.contains("(1 blocker(s))"), "{}", show(&refused));
        let blocker = text
            .lines()
            .find(|l| l.contains(&format!("service/istio-ingress/{old_gateway}:")))
            .unwrap_or_else(|| panic!("the address blocker:\n{text}"));
        assert!(
            blocker.contains(OLD_ADDRESS) && blocker.contains(NEW_ADDRESS),
            "names the address that goes and the new one: {blocker}"
        );
        assert!(
            text.contains(&format!(
                "kubectl rev-prune {OLD_REV} --allow-address-change"
            )),
            "{text}"
        );
        assert!(
            text.contains("127.0.0.1") && text.contains("stays: also held by"),
            "the east-west address another Service holds stays:\n{text}"
        );
        assert_eq!(old_releases(&c), releases_before, "nothing deleted");
        c.kubectl_ok(&["get", "service", &old_gateway, "-n", "istio-ingress"]);
    }

    let pruned = c.plugin(
        "rev-prune",
        &[OLD_REV, "--yes", "--allow-address-change", "--timeout=2m"],
    );
    assert!(pruned.status.success(), "{}", show(&pruned));
    let text = stdout(&pruned);
    assert!(
        text.contains(&format!("Revision {OLD_REV} is gone.")),
        "{text}"
    );
    assert!(old_releases(&c).is_empty(), "{:?}", old_releases(&c));
    let gone = c.kubectl(&["get", "service", &old_gateway, "-n", "istio-ingress"]);
    assert!(!gone.status.success(), "the old Service is deleted");
    let kept = c.get_json(&["service", &new_gateway, "-n", "istio-ingress"]);
    assert_eq!(
        kept["status"]["loadBalancer"]["ingress"][0]["ip"].as_str(),
        Some(NEW_ADDRESS)
    );
    eprintln!(
        "prune_address e2e took {:.0}s",
        started.elapsed().as_secs_f64()
    );
}
