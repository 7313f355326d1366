//! The probe's flags: one clap `Args` group that `kubectl rev-probe` flattens, and that
//! `kubectl rev-restart --probe` flattens too, so both spell every option the same way.
//!
//! Names never clash with the flags of the commands that flatten this group: the API-server
//! connection already owns `--insecure-skip-tls-verify` and `--request-timeout`, and rev-restart
//! owns `--timeout` (per rollout), so the probe's own TLS switch and per-request timeout carry a
//! `probe-` prefix. That also says which connection each one loosens.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::flags::parse_kubectl_duration;

/// Which HTTP version the probe speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum HttpVersion {
    /// HTTP/2 when TLS negotiates it (ALPN), else HTTP/1.1
    #[default]
    Auto,
    /// HTTP/1.1 only
    #[value(name = "1.1")]
    Http1,
    /// HTTP/2 only (prior knowledge on plain http://, ALPN h2 over TLS)
    #[value(name = "2")]
    Http2,
}

/// Traffic validation during the upgrade (guide steps 1.7 and 4).
#[derive(Args, Debug, Clone)]
pub struct ProbeFlags {
    /// URL to send requests to (repeatable: requests go round-robin)
    #[arg(long = "url", value_name = "URL", help_heading = "Probe target")]
    pub urls: Vec<String>,

    /// Probe a gateway Service through its load-balancer address: NAMESPACE/NAME
    #[arg(
        long,
        value_name = "NS/NAME",
        conflicts_with = "urls",
        help_heading = "Probe target"
    )]
    pub gateway: Option<String>,

    /// Port-forward to a ready pod of a Service: svc/NAME:PORT (namespace from -n)
    #[arg(
        long,
        value_name = "svc/NAME:PORT",
        conflicts_with_all = ["urls", "gateway"],
        help_heading = "Probe target"
    )]
    pub port_forward: Option<String>,

    /// Host header and TLS server name (SNI) to send, e.g. the gateway's virtual host
    #[arg(long, value_name = "HOST", help_heading = "Probe target")]
    pub host: Option<String>,

    /// Path (and query) requested with --gateway or --port-forward
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/",
        help_heading = "Probe target"
    )]
    pub path: String,

    /// HTTP method
    #[arg(
        short = 'X',
        long = "method",
        value_name = "METHOD",
        default_value = "GET",
        help_heading = "Probe target"
    )]
    pub method: String,

    /// Request header "Name: value" (repeatable)
    #[arg(
        short = 'H',
        long = "header",
        value_name = "HEADER",
        help_heading = "Probe target"
    )]
    pub headers: Vec<String>,

    /// Request body; @FILE reads it from a file
    #[arg(long, value_name = "BODY", help_heading = "Probe target")]
    pub body: Option<String>,

    /// CA certificate(s) (PEM) to verify the target's TLS certificate with, instead of the system's
    #[arg(long, value_name = "PATH", help_heading = "Probe target")]
    pub cacert: Option<PathBuf>,

    /// Do not verify the target's TLS certificate (insecure; the API server's is still verified)
    #[arg(long, help_heading = "Probe target")]
    pub probe_insecure_skip_tls_verify: bool,

    /// HTTP version: auto, 1.1 or 2
    #[arg(
        long,
        value_enum,
        value_name = "VERSION",
        default_value = "auto",
        help_heading = "Probe target"
    )]
    pub http_version: HttpVersion,

    /// Requests per second, sent on schedule whether or not earlier ones returned (N or N/DURATION, e.g. 10/1s)
    #[arg(long, value_name = "RATE", default_value = "50", value_parser = parse_rate, help_heading = "Probe load")]
    pub rate: f64,

    /// How long to send (0 or unset: until Ctrl-C, or for rev-restart the whole run)
    #[arg(long, value_name = "DURATION", value_parser = parse_kubectl_duration, help_heading = "Probe load")]
    pub duration: Option<Duration>,

    /// How long one request may take before it counts as an error
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_kubectl_duration, help_heading = "Probe load")]
    pub probe_timeout: Duration,

    /// Most requests in flight at once; past it requests are sent late, counted and reported
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Probe load")]
    pub max_in_flight: u32,

    /// Fail when more than this share of requests fail (rev-restart: while any one workload rolls): 0.01 or 1%
    #[arg(long, value_name = "RATIO", value_parser = parse_ratio, help_heading = "Probe gates")]
    pub max_error_rate: Option<f64>,

    /// Fail when the 99th percentile latency exceeds this (rev-restart: while any one workload rolls), e.g. 500ms
    #[arg(long, value_name = "DURATION", value_parser = parse_kubectl_duration, help_heading = "Probe gates")]
    pub max_p99: Option<Duration>,

    /// Save the report (vegeta's JSON fields) to FILE, as a baseline for --compare
    #[arg(long, value_name = "FILE", help_heading = "Probe report")]
    pub save: Option<PathBuf>,

    /// Compare this run with a report saved by --save (the guide's before/after)
    #[arg(long, value_name = "FILE", help_heading = "Probe report")]
    pub compare: Option<PathBuf>,

    /// Write a latency chart: FILE.html (a self-contained page) or FILE.svg (the chart alone)
    #[arg(long, value_name = "FILE", help_heading = "Probe report")]
    pub plot: Option<PathBuf>,
}

impl ProbeFlags {
    /// Whether a target was named, i.e. whether to probe at all (rev-restart probes only then).
    pub fn target_given(&self) -> bool {
        !self.urls.is_empty() || self.gateway.is_some() || self.port_forward.is_some()
    }
}

/// vegeta's `-rate` syntax: `N` per second, or `N/DURATION` (`10/1s`, `600/1m`).
pub fn parse_rate(input: &str) -> Result<f64, String> {
    let (count, per) = match input.split_once('/') {
        Some((count, per)) => {
            let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
                parse_kubectl_duration(per)?
            } else {
                parse_kubectl_duration(&format!("1{per}"))?
            };
            (count, per)
        }
        None => (input, Duration::from_secs(1)),
    };
    let count: f64 = count
        .trim()
        .parse()
        .map_err(|_| format!("{input:?}: expected a number of requests, e.g. 50 or 10/1s"))?;
    if !count.is_finite() || count <= 0.0 || per.is_zero() {
        return Err(format!("{input:?}: the rate must be above zero"));
    }
    Ok(count / per.as_secs_f64())
}

/// A ratio as `0.01` or `1%`.
pub fn parse_ratio(input: &str) -> Result<f64, String> {
    let value = match input.trim().strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => input.trim().parse::<f64>(),
    }
    .map_err(|_| format!("{input:?}: expected a ratio such as 0.01 or 1%"))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!(
            "{input:?}: a ratio is between 0 and 1 (0% and 100%)"
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// rev-restart's own flags beside the probe group: clap's debug assertions reject any
    /// name both define (`--timeout`, `--insecure-skip-tls-verify`, `-o`, ...).
    #[derive(Parser)]
    struct RestartLike {
        #[arg(long)]
        timeout: Option<String>,
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        #[arg(short = 'l', long)]
        selector: Option<String>,
        #[command(flatten)]
        mutation: crate::flags::MutationFlags,
        #[command(flatten)]
        connection: crate::flags::ConnectionFlags,
        #[command(flatten)]
        verbosity: crate::flags::VerbosityFlags,
        #[command(flatten)]
        probe: ProbeFlags,
    }

    #[test]
    fn the_probe_group_flattens_beside_restart_and_connection_flags() {
        RestartLike::command().debug_assert();
        let cli = RestartLike::parse_from([
            "rev-restart",
            "--timeout",
            "5m",
            "--insecure-skip-tls-verify",
            "--url",
            "http://127.0.0.1:8080/",
            "--probe-timeout",
            "2s",
            "--max-error-rate",
            "1%",
        ]);
        assert!(cli.probe.target_given());
        assert!(cli.connection.insecure_skip_tls_verify);
        assert!(!cli.probe.probe_insecure_skip_tls_verify);
        assert_eq!(cli.probe.probe_timeout, Duration::from_secs(2));
        assert_eq!(cli.probe.max_error_rate, Some(0.01));
    }

    #[test]
    fn rates_read_like_vegeta() {
        assert_eq!(parse_rate("50"), Ok(50.0));
        assert_eq!(parse_rate("10/1s"), Ok(10.0));
        assert_eq!(parse_rate("600/1m"), Ok(10.0));
        assert_eq!(parse_rate("5/s"), Ok(5.0));
        assert_eq!(parse_rate("1/500ms"), Ok(2.0));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10/0s").is_err());
    }

    #[test]
    fn ratios_take_fractions_or_percents() {
        assert_eq!(parse_ratio("0.01"), Ok(0.01));
        assert_eq!(parse_ratio("1%"), Ok(0.01));
        assert_eq!(parse_ratio("0"), Ok(0.0));
        assert!(parse_ratio("101%").is_err());
        assert!(parse_ratio("-0.1").is_err());
    }
}
