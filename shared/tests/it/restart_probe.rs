//! `rev-restart --probe` without a cluster: the executor's loop (order, halting, one traffic
//! window per workload) driven with a stand-in restart, against the loopback target
//! (tests/probe-target) told to fail half its requests once the second workload starts rolling;
//! then the summary and plan wording users read (insta). The real restarts are in
//! tests/e2e/tests/restart_probe.rs.

use std::sync::Mutex;
use std::time::Duration;

use rev_shared::exec::restart::{
    RestartOptions, RestartResult, WorkloadOutcome, run_in_order, undo_command,
};
use rev_shared::flags::DryRun;
use rev_shared::output::restart::{
    ProbeSummary, RestartReport, render_probe_intent, render_summary,
};
use rev_shared::plan::restart::{RestartItem, RestartMethod};
use rev_shared::probe::http::{ClientOptions, ProbeClient, RequestTemplate};
use rev_shared::probe::target::url_endpoints;
use rev_shared::probe::{GateBreach, Gates, LoadOptions, Probe, ProbeIntent, WindowFigures};
use rev_shared::snapshot::WorkloadKind;
use rev_test_probe_target::ProbeTarget;

fn item(name: &str) -> RestartItem {
    RestartItem {
        kind: WorkloadKind::Deployment,
        namespace: "canary".into(),
        name: name.into(),
        target_revision: Some("1-31".into()),
        pods: 1,
        drifted_pods: 1,
        method: RestartMethod::RolloutRestart,
        partition: None,
        held_back: Vec::new(),
    }
}

fn options(continue_on_error: bool) -> RestartOptions {
    RestartOptions {
        field_manager: "kubectl-rev-restart".into(),
        dry_run: DryRun::None,
        timeout: Duration::from_secs(60),
        pause: None,
        max_parallel: 1,
        continue_on_error,
    }
}

fn probe_of(target: &ProbeTarget) -> Probe {
    let url = format!("{}/", target.url()).parse().unwrap();
    let endpoints = url_endpoints(&[url], None).unwrap();
    let template = RequestTemplate::new("GET", endpoints, &[], None, None).unwrap();
    let client =
        ProbeClient::new(template, &ClientOptions::default(), Duration::from_secs(5)).unwrap();
    Probe::start(
        client,
        LoadOptions {
            rate: 200.0,
            duration: None,
            max_in_flight: 10_000,
        },
        Gates {
            max_error_rate: Some(0.05),
            max_p99: None,
        },
    )
}

/// What a successful restart reports; the rollout itself is stood in for by a wait long enough
/// for the probe to send requests in its window.
async fn roll(item: &RestartItem) -> WorkloadOutcome {
    tokio::time::sleep(Duration::from_millis(400)).await;
    WorkloadOutcome {
        kind: item.kind,
        namespace: item.namespace.clone(),
        name: item.name.clone(),
        result: RestartResult::Restarted,
        rollout_seconds: 0.4,
        pods_verified: 1,
        left_drifted: Vec::new(),
        cause: None,
        message: None,
        undo: None,
        started_at: String::new(),
        finished_at: String::new(),
        probe: None,
        gate_breaches: Vec::new(),
    }
}

/// Runs three workloads; the target fails half its requests from the start of the second's
/// rollout on. Returns the outcomes and the names the stand-in restarted.
async fn run_with_failure_at_second(
    continue_on_error: bool,
) -> (Vec<WorkloadOutcome>, Vec<String>) {
    let target = ProbeTarget::start().await.unwrap();
    let probe = probe_of(&target);
    let items = [item("first"), item("second"), item("third")];
    let restarted = Mutex::new(Vec::new());
    let outcomes = run_in_order(
        &items,
        &options(continue_on_error),
        &|| false,
        Some(&probe),
        |item| {
            if let Ok(mut names) = restarted.lock() {
                names.push(item.name.clone());
            }
            if item.name == "second" {
                target.fail_fraction(0.5);
            }
            roll(item)
        },
    )
    .await;
    let run = probe.stop().await;
    // Each window is on the plot's time axis: a start and a finish mark per workload rolled.
    let labels: Vec<&str> = run.marks.iter().map(|m| m.label.as_str()).collect();
    assert!(
        labels.contains(&"restart deployment/canary/second finished"),
        "{labels:?}"
    );
    (outcomes, restarted.into_inner().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_breached_while_the_second_workload_rolls_stops_the_run_before_the_third() {
    let (outcomes, restarted) = run_with_failure_at_second(false).await;

    assert_eq!(restarted, ["first", "second"], "nothing after the breach");
    let [first, second, third] = &outcomes[..] else {
        panic!("three outcomes: {outcomes:?}");
    };
    // The first rolled on healthy traffic: figures, no blame.
    let figures = first.probe.as_ref().expect("first has figures");
    assert!(figures.requests > 0, "{figures:?}");
    assert_eq!((figures.success, figures.errors), (1.0, 0), "{figures:?}");
    assert!(first.gate_breaches.is_empty() && first.undo.is_none());

    // The second is blamed, with its figures and the command that takes it back.
    let figures = second.probe.as_ref().expect("second has figures");
    assert!(figures.errors > 0 && figures.success < 0.95, "{figures:?}");
    assert_eq!(second.result, RestartResult::Restarted, "it did restart");
    assert_eq!(second.gate_breaches.len(), 1, "{:?}", second.gate_breaches);
    assert_eq!(second.gate_breaches[0].gate, "max-error-rate");
    assert_eq!(
        second.undo.as_deref(),
        Some("kubectl rollout undo deployment/second -n canary")
    );

    assert_eq!(third.result, RestartResult::NotRun);
    assert!(third.probe.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_continue_on_error_a_breach_is_recorded_and_the_run_goes_on() {
    let (outcomes, restarted) = run_with_failure_at_second(true).await;

    assert_eq!(restarted, ["first", "second", "third"]);
    let blamed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.gate_breaches.is_empty())
        .map(|o| o.name.as_str())
        .collect();
    // The target keeps failing, so the third's window breaches too.
    assert_eq!(blamed, ["second", "third"]);
    assert!(
        outcomes
            .iter()
            .all(|o| o.result == RestartResult::Restarted)
    );
}

fn figures(requests: u64, errors: u64, p50_ms: f64, p99_ms: f64) -> WindowFigures {
    WindowFigures {
        requests,
        success: (requests - errors) as f64 / requests as f64,
        p50_ms,
        p99_ms,
        max_ms: p99_ms * 2.0,
        errors,
    }
}

fn outcome(name: &str, result: RestartResult, probe: Option<WindowFigures>) -> WorkloadOutcome {
    WorkloadOutcome {
        kind: WorkloadKind::Deployment,
        namespace: "canary".into(),
        name: name.into(),
        result,
        rollout_seconds: if result == RestartResult::NotRun {
            0.0
        } else {
            6.2
        },
        pods_verified: usize::from(result == RestartResult::Restarted),
        left_drifted: Vec::new(),
        cause: None,
        message: None,
        undo: None,
        started_at: String::new(),
        finished_at: String::new(),
        probe,
        gate_breaches: Vec::new(),
    }
}

/// The summary a user reads after a run a gate stopped: each row's traffic, the breach, the
/// workload blamed and its undo command, the whole run's figures.
#[test]
fn summary_shows_each_rollouts_traffic_and_the_workload_blamed() {
    let mut second = outcome(
        "second",
        RestartResult::Restarted,
        Some(figures(620, 301, 0.412, 2.31)),
    );
    second.gate_breaches = vec![GateBreach {
        gate: "max-error-rate",
        limit: "5.00%".into(),
        observed: "48.55% (301 failed)".into(),
        requests: 620,
    }];
    second.undo = Some(undo_command(&item("second")));
    let report = RestartReport {
        workloads: vec![
            outcome(
                "first",
                RestartResult::Restarted,
                Some(figures(612, 0, 0.388, 1.92)),
            ),
            second,
            outcome("third", RestartResult::NotRun, None),
        ],
        skipped: Vec::new(),
        probe: Some(ProbeSummary {
            target: "http://127.0.0.1:40123/".into(),
            figures: figures(1305, 301, 0.401, 2.2),
            report: rev_shared::probe::Report::from_samples(
                &[],
                &[],
                jiff::Timestamp::UNIX_EPOCH,
                0,
            ),
        }),
    };
    insta::assert_snapshot!(render_summary(&report, false));
    // -o json: the same figures, typed, per workload.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["workloads"][1]["probe"]["requests"], 620);
    assert_eq!(json["workloads"][1]["probe"]["p99Ms"], 2.31);
    assert_eq!(
        json["workloads"][1]["gateBreaches"][0]["gate"],
        "max-error-rate"
    );
    assert!(json["workloads"][2].get("probe").is_none());
    assert_eq!(json["probe"]["figures"]["errors"], 301);
}

/// Without --probe the summary is as it was: no traffic columns.
#[test]
fn summary_without_a_probe_has_no_traffic_columns() {
    let report = RestartReport {
        workloads: vec![outcome("first", RestartResult::Restarted, None)],
        skipped: Vec::new(),
        probe: None,
    };
    let text = render_summary(&report, false);
    assert!(!text.contains("p99") && !text.contains("Probe"), "{text}");
}

#[test]
fn the_plan_says_what_is_probed_and_what_stops_the_run() {
    let intent = ProbeIntent {
        target: "gateway istio-ingress/istio-ingressgateway-1-31 (its load-balancer address), path /productpage".into(),
        method: "GET".into(),
        rate: 20.0,
        gates: Gates {
            max_error_rate: Some(0.01),
            max_p99: Some(Duration::from_millis(500)),
        },
    };
    let ungated = ProbeIntent {
        gates: Gates::default(),
        ..intent.clone()
    };
    insta::assert_snapshot!(format!(
        "{}{}{}",
        render_probe_intent(&intent, false),
        render_probe_intent(&intent, true),
        render_probe_intent(&ungated, false)
    ));
}
