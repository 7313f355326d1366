//! rev-probe as users run it, against the loopback test target: help and usage errors
//! (snapshot-tested), the report on stdout, gates that exit 3 with the figures, vegeta's JSON
//! fields, --save then --compare, --plot.

use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use rev_test_probe_target::ProbeTarget;
use serde_json::Value;

fn probe_command(args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("kubectl-rev_probe").expect("built");
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent");
    cmd
}

fn probe(args: &[&str]) -> Output {
    probe_command(args).output().expect("runs")
}

/// Runs the probe in a blocking thread so the in-process target keeps serving.
async fn probe_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        probe(&args)
    })
    .await
    .expect("probe thread")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_reads_as_a_kubectl_command() {
    let out = probe(&["--help"]);
    assert!(out.status.success());
    insta::assert_snapshot!(text(&out.stdout));
}

#[test]
fn bad_flags_are_usage_errors_before_anything_is_sent() {
    for (args, expected) in [
        (&[][..], "no probe target"),
        (&["--gateway", "gw"][..], "expected NAMESPACE/NAME"),
        (
            &["--url", "http://127.0.0.1:1/", "--rate", "0"][..],
            "the rate must be above zero",
        ),
        (
            &["--url", "http://127.0.0.1:1/", "--max-error-rate", "150%"][..],
            "between 0 and 1",
        ),
        (
            &["--url", "http://127.0.0.1:1/", "--plot", "chart.png"][..],
            "name a .html file",
        ),
        (
            &["--url", "http://127.0.0.1:1/", "-o", "yaml"][..],
            "invalid value 'yaml'",
        ),
        (
            &["--url", "http://x/", "--gateway", "a/b"][..],
            "cannot be used with",
        ),
    ] {
        let out = probe(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_run_prints_vegetas_report_and_exits_0() {
    let target = ProbeTarget::start().await.unwrap();
    let out = probe_async(vec![
        "--url".into(),
        format!("{}/productpage", target.url()),
        "--rate".into(),
        "50".into(),
        "--duration".into(),
        "1s".into(),
        "--max-error-rate".into(),
        "0".into(),
        "--max-p99".into(),
        "1s".into(),
    ])
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("Requests      [total, rate, throughput]         50, "),
        "{stdout}"
    );
    assert!(
        stdout.contains("Success       [ratio]                           100.00%"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Status Codes  [code:count]                      200:50\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("Error Set:\n"), "{stdout}");
    assert_eq!(target.received(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_rate_breach_exits_3_with_the_figures() {
    let target = ProbeTarget::start().await.unwrap();
    target.fail_fraction(0.5);
    let out = probe_async(vec![
        "--url".into(),
        target.url(),
        "--rate".into(),
        "40".into(),
        "--duration".into(),
        "1s".into(),
        "--max-error-rate".into(),
        "1%".into(),
    ])
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("200:20  503:20"), "{stdout}");
    assert!(stdout.contains("503 Service Unavailable (x20)"), "{stdout}");
    assert!(
        stderr.contains(
            "error rate 50.00% (20 failed) over 40 request(s) is above --max-error-rate 1.00%"
        ),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_breaches_the_p99_gate_and_exits_3() {
    let target = ProbeTarget::start().await.unwrap();
    let args = vec![
        "--url".into(),
        target.url(),
        "--rate".into(),
        "100".into(),
        "--duration".into(),
        "2s".into(),
        "--max-p99".into(),
        "300ms".into(),
    ];
    let run = tokio::spawn(probe_async(args));
    tokio::time::sleep(Duration::from_millis(500)).await;
    target.stall_for(Duration::from_secs(1));
    let out = run.await.unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{}{stderr}", text(&out.stdout));
    assert!(stderr.contains("is above --max-p99 300ms"), "{stderr}");
    assert_eq!(target.received(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_has_vegetas_fields_and_save_then_compare_reads_it_back() {
    let target = ProbeTarget::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("rev-probe-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("before.json");
    let plot = dir.join("after.html");
    let out = probe_async(vec![
        "--url".into(),
        target.url(),
        "--rate".into(),
        "20".into(),
        "--duration".into(),
        "1s".into(),
        "-o".into(),
        "json".into(),
        "--save".into(),
        saved.display().to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    for field in [
        "latencies",
        "bytes_in",
        "bytes_out",
        "earliest",
        "latest",
        "end",
        "duration",
        "wait",
        "requests",
        "rate",
        "throughput",
        "success",
        "status_codes",
        "errors",
    ] {
        assert!(report.get(field).is_some(), "{field}: {report}");
    }
    assert_eq!(report["requests"], 20);
    assert_eq!(report["status_codes"]["200"], 20);
    let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(on_disk, report);

    target.fail_fraction(0.25);
    let out = probe_async(vec![
        "--url".into(),
        target.url(),
        "--rate".into(),
        "20".into(),
        "--duration".into(),
        "1s".into(),
        "--compare".into(),
        saved.display().to_string(),
        "--plot".into(),
        plot.display().to_string(),
    ])
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("COMPARED WITH BASELINE"), "{stdout}");
    assert!(
        stdout.contains("success   100.00%       75.00%        -25.00 pts"),
        "{stdout}"
    );
    let page = std::fs::read_to_string(&plot).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(r#"<path class="latency-p99""#));
    assert!(!page.contains("<script"), "self-contained, no scripts");
    let _ = std::fs::remove_dir_all(&dir);
}
