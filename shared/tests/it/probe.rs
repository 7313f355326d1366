//! rev-probe against a real loopback HTTP server (tests/probe-target) that counts what it
//! receives and fails or stalls on command: nothing sent goes unreported, the rate is held on
//! schedule through a stall, the stall shows in p99, gates fire, and the restart executor's API
//! (marks, windows, plot markers) works. Then target resolution: pure choices on fixtures, and
//! the API requests --gateway and --port-forward make, against the recording mock.

use std::time::Duration;

use clap::Parser;
use http::StatusCode;
use serde_json::{Value, json};

use rev_shared::client::Cluster;
use rev_shared::probe::flags::ProbeFlags;
use rev_shared::probe::http::{ClientOptions, ProbeClient, RequestTemplate};
use rev_shared::probe::target::{
    ForwardChoice, ServicePort, TargetSpec, forward_choice, gateway_address, url_endpoints,
};
use rev_shared::probe::{Gates, LoadOptions, Probe, ProbeSession, WindowFigures, plot};
use rev_test_probe_target::ProbeTarget;

use crate::common::{fixture, mock};

#[derive(Parser)]
struct Wrap {
    #[command(flatten)]
    probe: ProbeFlags,
}

fn flags(args: &[&str]) -> ProbeFlags {
    Wrap::parse_from(std::iter::once("rev-probe").chain(args.iter().copied())).probe
}

fn client_for(url: &str) -> ProbeClient {
    let endpoints = url_endpoints(&[url.parse().unwrap()], None).unwrap();
    let template = RequestTemplate::new("GET", endpoints, &[], None, None).unwrap();
    ProbeClient::new(template, &ClientOptions::default(), Duration::from_secs(5)).unwrap()
}

fn load(rate: f64, seconds: f64) -> LoadOptions {
    LoadOptions {
        rate,
        duration: Some(Duration::from_secs_f64(seconds)),
        max_in_flight: 10_000,
    }
}

/// How far behind its due instant (`seq / rate`) the latest-sent request went out.
fn worst_send_lag(run: &rev_shared::probe::ProbeRun, rate: f64) -> Duration {
    run.samples
        .iter()
        .map(|s| {
            let due = (s.seq as f64 * 1e9 / rate) as u64;
            Duration::from_nanos(s.sent_ns.saturating_sub(due))
        })
        .max()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_200_per_second_for_10_seconds_2000_are_sent_and_the_server_counts_each() {
    let target = ProbeTarget::start().await.unwrap();
    let probe = Probe::start(
        client_for(&target.url()),
        load(200.0, 10.0),
        Gates::default(),
    );
    probe.sending_finished().await;
    let run = probe.stop().await;

    assert!(
        (1980..=2020).contains(&run.report.requests),
        "sent {} (want 2,000 ± 1 %)",
        run.report.requests
    );
    assert_eq!(
        target.received(),
        run.report.requests,
        "the server's count is the probe's"
    );
    assert_eq!(
        run.report.status_codes.get("200"),
        Some(&run.report.requests)
    );
    assert_eq!(run.report.success, 1.0);
    assert_eq!(run.report.late, 0);
    assert!(
        (run.report.rate - 200.0).abs() < 6.0,
        "rate {}",
        run.report.rate
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_second_stall_shows_in_p99_while_requests_stay_on_schedule() {
    let target = ProbeTarget::start().await.unwrap();
    let probe = Probe::start(
        client_for(&target.url()),
        load(200.0, 4.0),
        Gates::default(),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    target.stall_for(Duration::from_secs(1));
    probe.sending_finished().await;
    let run = probe.stop().await;

    assert!(
        (792..=808).contains(&run.report.requests),
        "sent {}",
        run.report.requests
    );
    assert_eq!(target.received(), run.report.requests);
    // A quarter of the requests arrived during the stall; the first of them waited ~1 s.
    assert!(
        run.report.latencies.p99 >= 800_000_000,
        "p99 {}",
        run.report.latencies.p99
    );
    assert!(
        run.report.latencies.max >= 900_000_000,
        "max {}",
        run.report.latencies.max
    );
    // The stall did not hold the schedule back: every request left near its due instant.
    let lag = worst_send_lag(&run, 200.0);
    assert!(
        lag < Duration::from_millis(250),
        "a request went out {lag:?} late"
    );
    assert_eq!(run.report.late, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_counted_exactly_and_breach_the_error_rate_gate() {
    let target = ProbeTarget::start().await.unwrap();
    target.fail_fraction(0.2);
    let gates = Gates {
        max_error_rate: Some(0.05),
        max_p99: None,
    };
    let probe = Probe::start(client_for(&target.url()), load(100.0, 2.0), gates);
    probe.sending_finished().await;
    let run = probe.stop().await;

    assert_eq!(run.report.status_codes.get("503"), Some(&target.failed()));
    assert_eq!(
        run.report.error_counts["503 Service Unavailable"],
        target.failed()
    );
    assert_eq!(run.report.errors, ["503 Service Unavailable"]);
    assert_eq!(target.failed(), run.report.requests / 5);
    let breaches = gates.check(&run.report);
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(breaches[0].gate, "max-error-rate");
    assert!(
        breaches[0].observed.starts_with("20.00%"),
        "{}",
        breaches[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_in_flight_bound_requests_are_sent_late_and_counted() {
    let target = ProbeTarget::start().await.unwrap();
    target.stall_for(Duration::from_millis(600));
    let bounded = LoadOptions {
        max_in_flight: 5,
        ..load(100.0, 1.0)
    };
    let probe = Probe::start(client_for(&target.url()), bounded, Gates::default());
    probe.sending_finished().await;
    let run = probe.stop().await;

    // Five requests hold every slot for the stall; the rest wait and go out late, then catch up.
    assert!(run.report.late > 0, "late {}", run.report.late);
    assert_eq!(
        run.report.requests, 100,
        "the schedule catches up: nothing is dropped"
    );
    assert_eq!(target.received(), 100);
}

/// What rev-restart --probe does per workload: mark the rollout's start and end, read the
/// settled figures of exactly the requests sent in between, check the gates on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_delimit_windows_and_appear_on_the_plot() {
    let target = ProbeTarget::start().await.unwrap();
    let gates = Gates {
        max_error_rate: Some(0.0),
        max_p99: None,
    };
    let probe = Probe::start(client_for(&target.url()), load(100.0, 10.0), gates);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = probe.mark("restart deployment/bookinfo/details-v1 started");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first_done = probe.mark("restart deployment/bookinfo/details-v1 finished");
    // Settled before the backend breaks: a window is the requests *sent* in it, and the last of
    // them may still be on its way.
    let healthy = probe.settled_figures_between(&first, &first_done).await;
    target.fail_fraction(1.0);
    let second = probe.mark("restart deployment/bookinfo/reviews-v1 started");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second_done = probe.mark("restart deployment/bookinfo/reviews-v1 finished");
    target.fail_fraction(0.0);

    let broken = probe.settled_figures_between(&second, &second_done).await;
    assert!(probe.gates().check(&healthy).is_empty(), "{healthy:?}");
    assert_eq!(healthy.requests, first_done.seq - first.seq);
    assert!(healthy.requests >= 20, "{}", healthy.requests);
    assert_eq!(broken.success, 0.0);
    assert_eq!(probe.gates().check(&broken)[0].gate, "max-error-rate");
    let row = WindowFigures::from(&broken);
    assert_eq!(row.errors, broken.requests);
    assert!(row.brief().contains("0.00% ok"), "{}", row.brief());

    let run = probe.stop().await;
    assert!(run.report.requests < 1000, "stop ends the run early");
    assert_eq!(run.marks.len(), 4);
    let svg = plot::render_svg(&run, "restart");
    assert_eq!(svg.matches(r#"<g class="event">"#).count(), 4);
    assert!(svg.contains("restart deployment/bookinfo/reviews-v1 started"));
    assert!(svg.contains(r#"<path class="latency-p99""#));
    assert!(svg.contains(r#"class="error-mark""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_and_host_override_reach_the_server() {
    let target = ProbeTarget::start().await.unwrap();
    let flags = flags(&[
        "--url",
        &format!("{}/productpage", target.url()),
        "--host",
        "bookinfo.example.com",
        "--http-version",
        "2",
        "--rate",
        "50",
        "--duration",
        "1s",
    ]);
    let session = ProbeSession::start(&flags, None, "default").await.unwrap();
    session.probe.sending_finished().await;
    let run = session.finish(&flags).await.unwrap();
    assert_eq!(run.report.success, 1.0, "{:?}", run.report.errors);
    assert_eq!(target.received(), run.report.requests);
    assert_eq!(target.last_host().as_deref(), Some("bookinfo.example.com"));
}

#[test]
fn target_flags_are_checked_before_anything_is_sent() {
    let spec = |args: &[&str]| TargetSpec::from_flags(&flags(args), "bookinfo");
    assert_eq!(
        spec(&["--port-forward", "svc/productpage:9080"]).unwrap(),
        TargetSpec::PortForward {
            namespace: "bookinfo".into(),
            service: "productpage".into(),
            port: ServicePort::Number(9080),
        }
    );
    assert_eq!(
        spec(&["--gateway", "istio-ingress/gw"]).unwrap(),
        TargetSpec::Gateway {
            namespace: "istio-ingress".into(),
            name: "gw".into(),
        }
    );
    for (args, expected) in [
        (&[][..], "no probe target"),
        (&["--gateway", "gw"][..], "expected NAMESPACE/NAME"),
        (
            &["--port-forward", "productpage:9080"][..],
            "expected svc/NAME:PORT",
        ),
        (
            &["--url", "localhost:8080"][..],
            "absolute http:// or https:// URL",
        ),
    ] {
        let err = spec(args).unwrap_err().to_string();
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

fn yaml_docs(name: &str) -> Vec<Value> {
    fixture(name)
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str::<Value>(doc).unwrap())
        .collect()
}

#[test]
fn gateway_address_is_the_load_balancer_and_its_http2_port() {
    let svc =
        serde_json::from_value(yaml_docs("probe-ingress-gateway-service.yaml")[0].clone()).unwrap();
    let address = gateway_address(&svc).unwrap();
    assert_eq!(
        (address.scheme, address.host.as_str(), address.port),
        ("http", "203.0.113.10", 80)
    );

    let pending =
        serde_json::from_value(yaml_docs("probe-gateway-pending-load-balancer.yaml")[0].clone())
            .unwrap();
    let err = gateway_address(&pending).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("has no load-balancer address"), "{text}");
    let hint = err.hint().unwrap_or_default();
    assert!(
        hint.contains("--port-forward svc/istio-ingressgateway-1-31:PORT -n istio-ingress"),
        "{hint}"
    );
}

#[test]
fn port_forward_picks_a_ready_pod_and_resolves_a_named_target_port() {
    let docs = yaml_docs("probe-port-forward-named-target-port.yaml");
    let svc = serde_json::from_value(docs[0].clone()).unwrap();
    let pods: Vec<_> = docs[1..]
        .iter()
        .map(|d| serde_json::from_value(d.clone()).unwrap())
        .collect();
    assert_eq!(
        forward_choice(&svc, &pods, &ServicePort::Number(9080)).unwrap(),
        ForwardChoice {
            pod: "productpage-v1-ready".into(),
            container_port: 9081,
        }
    );
    assert_eq!(
        forward_choice(&svc, &pods, &ServicePort::Name("http".into()))
            .unwrap()
            .container_port,
        9081
    );
    let err = forward_choice(&svc, &pods, &ServicePort::Number(80))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has no port 80 (it has: 9080 (http))"),
        "{err}"
    );
    let err = forward_choice(&svc, &pods[..2], &ServicePort::Number(9080))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2 pod(s) match its selector, none Ready"),
        "{err}"
    );
}

/// --gateway reads the Service through the API and probes its load-balancer address: here the
/// mock API's Service points at the loopback target, so the whole path is exercised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_target_is_read_from_the_api_and_probed_with_the_virtual_host() {
    let target = ProbeTarget::start().await.unwrap();
    let mut svc = yaml_docs("probe-ingress-gateway-service.yaml")[0].clone();
    svc["status"]["loadBalancer"]["ingress"][0]["ip"] = json!("127.0.0.1");
    svc["spec"]["ports"][1]["port"] = json!(target.addr().port());
    let (client, seen) = mock(Box::new(move |_, _| (StatusCode::OK, svc.clone())));
    let flags = flags(&[
        "--gateway",
        "istio-ingress/istio-ingressgateway-1-31",
        "--host",
        "bookinfo.example.com",
        "--path",
        "/productpage",
        "--rate",
        "50",
        "--duration",
        "500ms",
    ]);
    let cluster = Cluster::from_client(client, "https://mock");
    let session = ProbeSession::start(&flags, Some(&cluster), "default")
        .await
        .unwrap();
    assert_eq!(
        session.target.description,
        format!(
            "gateway istio-ingress/istio-ingressgateway-1-31 at http://127.0.0.1:{}/productpage",
            target.addr().port()
        )
    );
    session.probe.sending_finished().await;
    let run = session.finish(&flags).await.unwrap();
    assert_eq!(run.report.success, 1.0, "{:?}", run.report.errors);
    assert_eq!(target.received(), run.report.requests);
    assert_eq!(target.last_host().as_deref(), Some("bookinfo.example.com"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        (
            "GET",
            "/api/v1/namespaces/istio-ingress/services/istio-ingressgateway-1-31"
        )
    );
}

/// --port-forward: the local cluster has no kubelet, so no port-forward can complete there; the
/// mock pins what it asks the API: the Service, its ready pods by selector, then a port-forward
/// upgrade to the chosen pod's resolved port for each probe connection. The mock refuses the
/// upgrade, and the probe reports those requests as errors instead of losing them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_asks_for_the_service_its_pods_and_a_forward_to_the_ready_one() {
    let docs = yaml_docs("probe-port-forward-named-target-port.yaml");
    let svc = docs[0].clone();
    let pod_list = json!({
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {},
        "items": docs[1..].to_vec(),
    });
    let (client, seen) = mock(Box::new(move |req, _| {
        if req.path.ends_with("/services/productpage") {
            (StatusCode::OK, svc.clone())
        } else if req.path.ends_with("/pods") {
            (StatusCode::OK, pod_list.clone())
        } else {
            (
                StatusCode::BAD_REQUEST,
                json!({"kind": "Status", "code": 400, "message": "upgrade refused by the mock"}),
            )
        }
    }));
    let flags = flags(&[
        "--port-forward",
        "svc/productpage:9080",
        "--rate",
        "20",
        "--duration",
        "200ms",
        "--probe-timeout",
        "2s",
    ]);
    let cluster = Cluster::from_client(client, "https://mock");
    let session = ProbeSession::start(&flags, Some(&cluster), "bookinfo")
        .await
        .unwrap();
    assert_eq!(
        session.target.description,
        "svc/productpage in bookinfo via pod productpage-v1-ready port 9081 (port-forward)"
    );
    session.probe.sending_finished().await;
    let run = session.finish(&flags).await.unwrap();
    assert_eq!(run.report.requests, 4);
    assert_eq!(
        run.report.success, 0.0,
        "no forward, no success: reported, not lost"
    );

    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[0].path,
        "/api/v1/namespaces/bookinfo/services/productpage"
    );
    assert_eq!(
        seen[1].uri,
        "/api/v1/namespaces/bookinfo/pods?&labelSelector=app%3Dproductpage"
    );
    let forwards: Vec<&str> = seen[2..].iter().map(|s| s.uri.as_str()).collect();
    assert!(!forwards.is_empty());
    assert!(
        forwards.iter().all(|uri| *uri
            == "/api/v1/namespaces/bookinfo/pods/productpage-v1-ready/portforward?&ports=9081"),
        "{forwards:?}"
    );
}

async fn run_flags(args: &[&str]) -> rev_shared::probe::Report {
    let flags = flags(args);
    let session = ProbeSession::start(&flags, None, "default").await.unwrap();
    session.probe.sending_finished().await;
    session.finish(&flags).await.unwrap().report
}

/// TLS is verified by default: a self-signed target fails every request, naming the
/// certificate; trusting its CA with --cacert, or --probe-insecure-skip-tls-verify, gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_unless_told_otherwise() {
    let (target, ca_pem) = ProbeTarget::start_tls().await.unwrap();
    let ca = std::env::temp_dir().join(format!("rev-probe-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, ca_pem).unwrap();
    let url = format!("https://localhost:{}/", target.addr().port());
    let load = ["--url", url.as_str(), "--rate", "20", "--duration", "250ms"];

    let untrusted = run_flags(&load).await;
    assert_eq!(untrusted.success, 0.0);
    assert!(
        untrusted.errors[0].contains("certificate"),
        "{:?}",
        untrusted.errors
    );
    assert_eq!(target.received(), 0);

    let ca_arg = ca.display().to_string();
    let trusted = run_flags(&[&load[..], &["--cacert", &ca_arg]].concat()).await;
    assert_eq!(trusted.success, 1.0, "{:?}", trusted.errors);
    let skipped = run_flags(&[&load[..], &["--probe-insecure-skip-tls-verify"]].concat()).await;
    assert_eq!(skipped.success, 1.0, "{:?}", skipped.errors);
    assert_eq!(target.received(), trusted.requests + skipped.requests);
    let _ = std::fs::remove_file(&ca);
}
