//! The `--plot` page in a real headless browser (Debian's Chromium): a probe run with restart
//! marks, a failing window and a stall is rendered, screenshotted into a test artifact
//! (`target/tmp/rev-probe-plot.png`, beside the page), and the DOM the browser parsed is checked
//! for the latency series and the restart markers.
//!
//! Installs Debian's `chromium-headless-shell` with apt when no Chromium is on PATH (CI runs as
//! root); `#[ignore]`d with the other slow tests, `make e2e` runs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rev_shared::probe::http::{ClientOptions, ProbeClient, RequestTemplate};
use rev_shared::probe::target::url_endpoints;
use rev_shared::probe::{Gates, LoadOptions, Probe, plot};
use rev_test_probe_target::ProbeTarget;

const BROWSERS: [&str; 3] = ["chromium-headless-shell", "chromium", "chromium-browser"];

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn browser() -> PathBuf {
    if let Some(found) = BROWSERS.iter().find_map(|b| on_path(b)) {
        return found;
    }
    eprintln!("no Chromium on PATH: installing Debian's chromium-headless-shell with apt-get");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "chromium-headless-shell"]),
        "cannot install chromium-headless-shell: run `apt-get install chromium-headless-shell` as root"
    );
    on_path("chromium-headless-shell").expect("chromium-headless-shell installed")
}

fn chromium(browser: &Path, args: &[&str], page: &Path) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs")
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a headless browser (installs it with apt when absent); run with --ignored"]
async fn plot_page_renders_latency_and_restart_markers_in_chromium() {
    let target = ProbeTarget::start().await.unwrap();
    let endpoints = url_endpoints(&[target.url().parse().unwrap()], None).unwrap();
    let template = RequestTemplate::new("GET", endpoints, &[], None, None).unwrap();
    let client =
        ProbeClient::new(template, &ClientOptions::default(), Duration::from_secs(5)).unwrap();
    let load = LoadOptions {
        rate: 100.0,
        duration: Some(Duration::from_secs(6)),
        max_in_flight: 10_000,
    };
    // What rev-restart --probe records: each workload's rollout between two marks.
    let probe = Probe::start(client, load, Gates::default());
    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
    pause(500).await;
    probe.mark("restart deployment/bookinfo/details-v1 started");
    pause(800).await;
    probe.mark("restart deployment/bookinfo/details-v1 finished");
    probe.mark("restart deployment/bookinfo/reviews-v1 started");
    target.stall_for(Duration::from_millis(700));
    pause(1200).await;
    target.fail_fraction(0.3);
    pause(800).await;
    target.fail_fraction(0.0);
    probe.mark("restart deployment/bookinfo/reviews-v1 finished");
    probe.sending_finished().await;
    let run = probe.stop().await;

    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&artifacts).unwrap();
    let page = artifacts.join("rev-probe-plot.html");
    let screenshot = artifacts.join("rev-probe-plot.png");
    std::fs::write(
        &page,
        plot::render_html(&run, "rev-probe: restart of bookinfo"),
    )
    .unwrap();
    let _ = std::fs::remove_file(&screenshot);

    let browser = browser();
    let shot = chromium(
        &browser,
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=1100,1000",
        ],
        &page,
    );
    let png = std::fs::read(&screenshot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&shot.stderr)
        )
    });
    assert_eq!(png_size(&png), (1100, 1000));
    // A blank page compresses to a few KiB; text, axes and three series make far more.
    assert!(
        png.len() > 30_000,
        "screenshot looks empty: {} bytes",
        png.len()
    );

    let dom = chromium(&browser, &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&dom.stdout);
    for series in ["latency-p50", "latency-p99", "latency-max"] {
        let path = dom
            .split(&format!(r#"<path class="{series}""#))
            .nth(1)
            .unwrap_or_else(|| panic!("{series} missing from the rendered DOM"));
        let vertices = path
            .split('"')
            .nth(3)
            .unwrap_or_default()
            .matches('L')
            .count();
        assert!(vertices > 100, "{series} has {vertices} vertices");
    }
    assert_eq!(dom.matches(r#"<g class="event">"#).count(), 4);
    for label in [
        "restart deployment/bookinfo/details-v1 started",
        "restart deployment/bookinfo/reviews-v1 finished",
    ] {
        assert!(dom.contains(label), "{label}");
    }
    assert!(
        dom.contains(r#"class="error-mark""#),
        "failed requests are marked"
    );
    eprintln!("artifact: {}", screenshot.display());
}
