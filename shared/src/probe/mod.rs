//! `kubectl rev-probe`: traffic validation during the upgrade (guide steps 1.7 and 4), and the
//! probe `kubectl rev-restart --probe` runs while it restarts workloads.
//!
//! flags ([`flags`]) → target ([`target`], through the API for `--gateway`/`--port-forward`)
//! → load ([`engine`], open model) over [`http`] → figures ([`report`], vegeta's) → gates
//! ([`gates`]) → live view ([`live`]), report, `--save`/`--compare`, `--plot` ([`plot`]).
//!
//! For the restart executor:
//!
//! ```ignore
//! let session = probe::ProbeSession::start(&flags, Some(&cluster), &cluster.namespace).await?;
//! for workload in plan {
//!     let window = session.probe.rollout_started("deployment/bookinfo/reviews-v1");
//!     // … restart and wait …
//!     let traffic = session.probe.rollout_finished(window).await; // marks, settled figures
//!     // traffic.figures: the summary row and -o json; traffic.breaches non-empty: stop, blame, undo
//! }
//! let run = session.finish(&flags).await?;                   // writes --save and --plot
//! ```

pub mod engine;
pub mod flags;
pub mod gates;
pub mod http;
pub mod live;
pub mod plot;
pub mod report;
pub mod rollout;
pub mod target;

use std::io::IsTerminal;
use std::path::Path;

use serde::Serialize;

pub use engine::{LoadOptions, Mark, Probe, ProbeRun};
pub use flags::ProbeFlags;
pub use gates::{GateBreach, Gates};
pub use report::Report;
pub use rollout::{ProbeIntent, RolloutTraffic, RolloutWindow};

use self::http::{ClientOptions, ProbeClient, RequestTemplate};
use self::target::{ResolvedTarget, TargetSpec};
use crate::client::Cluster;
use crate::error::RevError;
use crate::output::io::Io;

impl ProbeFlags {
    pub fn gates(&self) -> Gates {
        Gates {
            max_error_rate: self.max_error_rate,
            max_p99: self.max_p99,
        }
    }

    pub fn load(&self) -> LoadOptions {
        LoadOptions {
            rate: self.rate,
            duration: self.duration.filter(|d| !d.is_zero()),
            max_in_flight: self.max_in_flight,
        }
    }

    /// Checks what can be checked before anything is sent: the target's form, the request, the
    /// output files' extensions.
    pub fn validate(&self, namespace: &str) -> Result<TargetSpec, RevError> {
        if let Some(plot) = &self.plot {
            plot_kind(plot)?;
        }
        TargetSpec::from_flags(self, namespace)
    }
}

enum PlotKind {
    Html,
    Svg,
}

fn plot_kind(path: &Path) -> Result<PlotKind, RevError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => Ok(PlotKind::Html),
        Some("svg") => Ok(PlotKind::Svg),
        _ => Err(RevError::Usage(format!(
            "--plot {}: name a .html file (page with the report) or a .svg file (the chart alone)",
            path.display()
        ))),
    }
}

/// A probe running against a resolved target (the port-forward, if any, lives as long).
pub struct ProbeSession {
    pub probe: Probe,
    pub target: ResolvedTarget,
}

impl ProbeSession {
    /// Resolves the target (through `cluster` for `--gateway`/`--port-forward`) and starts
    /// sending at once.
    pub async fn start(
        flags: &ProbeFlags,
        cluster: Option<&Cluster>,
        namespace: &str,
    ) -> Result<ProbeSession, RevError> {
        let spec = flags.validate(namespace)?;
        let target = target::resolve(&spec, flags, cluster).await?;
        let template = RequestTemplate::new(
            &flags.method,
            target.endpoints.clone(),
            &flags.headers,
            flags.host.as_deref(),
            flags.body.as_deref(),
        )?;
        let options = ClientOptions {
            version: flags.http_version,
            cacert: flags.cacert.clone(),
            insecure_skip_tls_verify: flags.probe_insecure_skip_tls_verify,
            connect_timeout: None,
        };
        let client = ProbeClient::new(template, &options, flags.probe_timeout)?;
        Ok(ProbeSession {
            probe: Probe::start(client, flags.load(), flags.gates()),
            target,
        })
    }

    /// Stops the probe, waits for the last answers, writes `--save` and `--plot`.
    pub async fn finish(self, flags: &ProbeFlags) -> Result<ProbeRun, RevError> {
        let run = self.probe.stop().await;
        write_outputs(&run, flags, &self.target.description)?;
        Ok(run)
    }
}

fn encode_error(source: serde_json::Error) -> RevError {
    RevError::Encode {
        format: "JSON",
        source: Box::new(source),
    }
}

fn write_file(path: &Path, text: &str, what: &str) -> Result<(), RevError> {
    std::fs::write(path, text).map_err(|source| RevError::Local {
        what: format!("write {what} to {}", path.display()),
        hint: Some("check the directory exists and is writable"),
        source,
    })
}

fn write_outputs(run: &ProbeRun, flags: &ProbeFlags, description: &str) -> Result<(), RevError> {
    if let Some(path) = &flags.save {
        let json = crate::output::to_json(&run.report)?;
        write_file(path, &json, "the report (--save)")?;
    }
    if let Some(path) = &flags.plot {
        let title = format!("rev-probe: {description}");
        let text = match plot_kind(path)? {
            PlotKind::Html => plot::render_html(run, &title),
            PlotKind::Svg => plot::render_svg(run, &title),
        };
        write_file(path, &text, "the plot (--plot)")?;
    }
    Ok(())
}

/// Reads a report saved by `--save` (or vegeta's own `vegeta report -type=json`).
pub fn read_baseline(path: &Path) -> Result<Report, RevError> {
    let text = std::fs::read_to_string(path).map_err(|e| RevError::Dump {
        path: path.display().to_string(),
        message: "--compare reads a report saved with --save".into(),
        source: Some(e),
    })?;
    serde_json::from_str(&text).map_err(|e| RevError::Dump {
        path: path.display().to_string(),
        message: format!("not a probe report: {e} (--compare reads a report saved with --save)"),
        source: None,
    })
}

/// A window's figures in brief, for a restart summary row and its `-o json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowFigures {
    pub requests: u64,
    pub success: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
}

impl From<&Report> for WindowFigures {
    fn from(report: &Report) -> WindowFigures {
        let ms = |ns: u64| (ns as f64 / 1e4).round() / 100.0;
        WindowFigures {
            requests: report.requests,
            success: report.success,
            p50_ms: ms(report.latencies.p50),
            p99_ms: ms(report.latencies.p99),
            max_ms: ms(report.latencies.max),
            errors: report.error_counts.values().sum(),
        }
    }
}

impl WindowFigures {
    /// One table cell: `120 req, 100.00% ok, p99 3.2ms`.
    pub fn brief(&self) -> String {
        if self.requests == 0 {
            return "no requests".to_string();
        }
        format!(
            "{} req, {:.2}% ok, p99 {}",
            self.requests,
            self.success * 100.0,
            report::go_duration(report::vegeta_round((self.p99_ms * 1e6) as u64))
        )
    }
}

/// How `kubectl rev-probe` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// vegeta's text report.
    Text,
    /// vegeta's JSON report (field for field) plus rev-probe's additions.
    Json,
}

/// `kubectl rev-probe` from flags to exit code: start, show the live view once a second until
/// the duration ends or Ctrl-C, then the report, the comparison and the gates.
pub async fn run_command(
    flags: &ProbeFlags,
    cluster: Option<&Cluster>,
    namespace: &str,
    format: ReportFormat,
    io: &mut Io,
) -> Result<(), RevError> {
    let baseline = flags.compare.as_deref().map(read_baseline).transpose()?;
    let session = ProbeSession::start(flags, cluster, namespace).await?;
    io.err(&format!(
        "probing {} at {}/s{} (Ctrl-C stops and reports)\n",
        session.target.description,
        trim_rate(flags.rate),
        match flags.load().duration {
            Some(d) => format!(" for {}", report::go_duration(d.as_nanos() as u64)),
            None => String::new(),
        }
    ));
    if show_until_done(&session).await {
        io.err("stopping: waiting for the requests in flight (Ctrl-C again stops now)\n");
        tokio::spawn(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        });
    }
    let description = session.target.description.clone();
    let run = session.finish(flags).await?;
    if let Some(warning) = rate_not_held(flags, &run.report) {
        io.err(&warning);
    }
    match format {
        ReportFormat::Text => {
            io.out(&run.report.render_text())?;
            if let Some(baseline) = &baseline {
                io.out("\n")?;
                io.out(&report::render_comparison(baseline, &run.report))?;
            }
        }
        ReportFormat::Json => {
            let json = serde_json::to_string(&run.report).map_err(encode_error)?;
            io.out(&(json + "\n"))?;
            if let Some(baseline) = &baseline {
                io.err(&report::render_comparison(baseline, &run.report));
            }
        }
    }
    let breaches = flags.gates().check(&run.report);
    if !breaches.is_empty() {
        return Err(RevError::GatesBreached {
            target: description,
            breaches: breaches.iter().map(ToString::to_string).collect(),
        });
    }
    Ok(())
}

/// The live view on stderr once a second until the load ends; `true` when Ctrl-C ended it,
/// which is how an unbounded run ends (as with vegeta): it reports, it is not a failure.
async fn show_until_done(session: &ProbeSession) -> bool {
    let mut live = live::LiveView::new(std::io::stderr().is_terminal());
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.tick().await;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let finished = session.probe.sending_finished();
    tokio::pin!(finished);
    let interrupted = loop {
        tokio::select! {
            _ = tick.tick() => {
                let line = live.tick(&session.probe);
                live.show(&line);
            }
            _ = &mut finished => break false,
            _ = &mut ctrl_c => break true,
        }
    };
    live.finish();
    interrupted
}

/// A warning when fewer than 95 % of the asked rate went out, saying whether the in-flight
/// limit or this machine held it back.
fn rate_not_held(flags: &ProbeFlags, report: &Report) -> Option<String> {
    if report.rate >= flags.rate * 0.95 || report.requests < 2 {
        return None;
    }
    let why = if report.late > 0 {
        format!(
            "; {} request(s) waited for one of --max-in-flight {} slots",
            report.late, flags.max_in_flight
        )
    } else {
        " (this machine could not send faster)".to_string()
    };
    Some(format!(
        "warning: the rate was not held: {:.2}/s sent of {}/s asked{why}\n",
        report.rate,
        trim_rate(flags.rate)
    ))
}

fn trim_rate(rate: f64) -> String {
    if rate.fract() == 0.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.2}")
    }
}
