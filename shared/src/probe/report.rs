//! The probe's figures, computed from recorded samples: vegeta's report, field for field, so the
//! guide's step 4 reads the same and tooling that parses `vegeta report -type=json` reads ours.
//!
//! Durations in JSON are integer nanoseconds and timestamps RFC 3339, as Go encodes
//! `time.Duration` and `time.Time`. Fields vegeta lacks (`error_counts`, `late`, `target_rate`)
//! are additions a vegeta reader ignores.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// One request's outcome. `seq` is its place in the schedule (vegeta's `seq`); `sent_ns` the
/// offset of its send instant from the probe's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    pub seq: u64,
    pub sent_ns: u64,
    pub latency_ns: u64,
    pub bytes_in: u64,
    /// 0 when no response came back (vegeta's convention).
    pub status: u16,
    /// Index + 1 into the recording's error texts; 0 when the request succeeded.
    pub error: u32,
}

impl Sample {
    /// vegeta's success: a response with a 2xx or 3xx status.
    pub fn succeeded(&self) -> bool {
        (200..400).contains(&self.status)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMetrics {
    pub total: u64,
    pub mean: u64,
    #[serde(rename = "50th")]
    pub p50: u64,
    #[serde(rename = "90th")]
    pub p90: u64,
    #[serde(rename = "95th")]
    pub p95: u64,
    #[serde(rename = "99th")]
    pub p99: u64,
    pub max: u64,
    pub min: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ByteMetrics {
    pub total: u64,
    pub mean: f64,
}

/// vegeta's `Metrics`, plus the counts it lacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub latencies: LatencyMetrics,
    pub bytes_in: ByteMetrics,
    pub bytes_out: ByteMetrics,
    pub earliest: Timestamp,
    pub latest: Timestamp,
    pub end: Timestamp,
    /// Nanoseconds from the first request sent to the last.
    pub duration: u64,
    /// Nanoseconds from the last request sent to the last response.
    pub wait: u64,
    pub requests: u64,
    /// Requests sent per second.
    pub rate: f64,
    /// Successful requests per second, waiting included.
    pub throughput: f64,
    /// Share of requests answered 2xx/3xx, 0 to 1.
    pub success: f64,
    pub status_codes: BTreeMap<String, u64>,
    /// Each distinct error once, in order of first appearance (vegeta's error set).
    pub errors: Vec<String>,
    /// How often each error happened.
    #[serde(default)]
    pub error_counts: BTreeMap<String, u64>,
    /// Requests sent after their scheduled instant because --max-in-flight were outstanding.
    #[serde(default)]
    pub late: u64,
    /// The rate asked for (--rate), to tell a rate that was not held from one never asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
}

/// Latencies are recorded in microseconds, 1 µs to 1 h, to 3 significant digits.
fn latency_histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).ok()
}

impl Report {
    /// The figures of `samples`, a run that started at `started_at`; `errors` names the
    /// samples' error indexes.
    pub fn from_samples<'a>(
        samples: impl IntoIterator<Item = &'a Sample>,
        errors: &[String],
        started_at: Timestamp,
        bytes_out_per_request: u64,
    ) -> Report {
        let mut tally = Tally::new();
        for sample in samples {
            tally.add(sample, errors);
        }
        tally.into_report(started_at, bytes_out_per_request)
    }

    /// A run that sent nothing: zero figures, every timestamp the start.
    fn empty(started_at: Timestamp, tally: Tally) -> Report {
        Report {
            latencies: LatencyMetrics::default(),
            bytes_in: ByteMetrics::default(),
            bytes_out: ByteMetrics::default(),
            earliest: started_at,
            latest: started_at,
            end: started_at,
            duration: 0,
            wait: 0,
            requests: 0,
            rate: 0.0,
            throughput: 0.0,
            success: 0.0,
            status_codes: tally.status_codes,
            errors: Vec::new(),
            error_counts: tally.error_counts,
            late: 0,
            target_rate: None,
        }
    }

    /// Share of requests that failed, 0 to 1.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            1.0 - self.success
        }
    }

    pub fn p99(&self) -> Duration {
        Duration::from_nanos(self.latencies.p99)
    }

    /// vegeta's text report (`vegeta report`), line for line, plus a line for late requests.
    pub fn render_text(&self) -> String {
        let rows = self.text_rows();
        let name_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0) + 2;
        let bracket_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0) + 2;
        let mut out = String::new();
        for (name, bracket, value) in rows {
            let _ = writeln!(
                out,
                "{name:<name_width$}{bracket:<bracket_width$}{}",
                value.trim_end()
            );
        }
        out.push_str("Error Set:\n");
        for error in &self.errors {
            let count = self.error_counts.get(error).copied().unwrap_or(0);
            let _ = writeln!(out, "{error} (x{count})");
        }
        out
    }

    /// The report's lines: name, what the bracket lists, the figures.
    fn text_rows(&self) -> Vec<(&'static str, &'static str, String)> {
        let l = &self.latencies;
        let d = |ns: u64| go_duration(vegeta_round(ns));
        let mut rows = vec![
            (
                "Requests",
                "[total, rate, throughput]",
                format!(
                    "{}, {:.2}, {:.2}",
                    self.requests, self.rate, self.throughput
                ),
            ),
            (
                "Duration",
                "[total, attack, wait]",
                format!(
                    "{}, {}, {}",
                    d(self.duration + self.wait),
                    d(self.duration),
                    d(self.wait)
                ),
            ),
            (
                "Latencies",
                "[min, mean, 50, 90, 95, 99, max]",
                format!(
                    "{}, {}, {}, {}, {}, {}, {}",
                    d(l.min),
                    d(l.mean),
                    d(l.p50),
                    d(l.p90),
                    d(l.p95),
                    d(l.p99),
                    d(l.max)
                ),
            ),
            (
                "Bytes In",
                "[total, mean]",
                format!("{}, {:.2}", self.bytes_in.total, self.bytes_in.mean),
            ),
            (
                "Bytes Out",
                "[total, mean]",
                format!("{}, {:.2}", self.bytes_out.total, self.bytes_out.mean),
            ),
            (
                "Success",
                "[ratio]",
                format!("{:.2}%", self.success * 100.0),
            ),
            (
                "Status Codes",
                "[code:count]",
                self.status_codes
                    .iter()
                    .map(|(code, count)| format!("{code}:{count}  "))
                    .collect::<String>(),
            ),
        ];
        if self.late > 0 {
            rows.push((
                "Late",
                "[sent late, max in flight]",
                format!("{} (requests waited for a free slot)", self.late),
            ));
        }
        rows
    }
}

/// Running totals over the samples, taken in one pass.
struct Tally {
    histogram: Option<Histogram<u64>>,
    latencies: LatencyMetrics,
    requests: u64,
    succeeded: u64,
    bytes_in: u64,
    /// Send offsets of the first and last request, and the last response's end.
    earliest: u64,
    latest: u64,
    end: u64,
    status_codes: BTreeMap<String, u64>,
    error_counts: BTreeMap<String, u64>,
    error_order: Vec<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            histogram: latency_histogram(),
            latencies: LatencyMetrics {
                min: u64::MAX,
                ..LatencyMetrics::default()
            },
            requests: 0,
            succeeded: 0,
            bytes_in: 0,
            earliest: u64::MAX,
            latest: 0,
            end: 0,
            status_codes: BTreeMap::new(),
            error_counts: BTreeMap::new(),
            error_order: Vec::new(),
        }
    }

    fn add(&mut self, sample: &Sample, errors: &[String]) {
        self.requests += 1;
        self.succeeded += u64::from(sample.succeeded());
        self.bytes_in += sample.bytes_in;
        *self
            .status_codes
            .entry(sample.status.to_string())
            .or_insert(0) += 1;
        self.latencies.total += sample.latency_ns;
        self.latencies.min = self.latencies.min.min(sample.latency_ns);
        self.latencies.max = self.latencies.max.max(sample.latency_ns);
        if let Some(h) = self.histogram.as_mut() {
            h.saturating_record((sample.latency_ns / 1_000).max(1));
        }
        self.earliest = self.earliest.min(sample.sent_ns);
        self.latest = self.latest.max(sample.sent_ns);
        self.end = self.end.max(sample.sent_ns + sample.latency_ns);
        if let Some(text) = (sample.error as usize)
            .checked_sub(1)
            .and_then(|i| errors.get(i))
        {
            let count = self.error_counts.entry(text.clone()).or_insert(0);
            if *count == 0 {
                self.error_order.push(text.clone());
            }
            *count += 1;
        }
    }

    /// The latency quantiles and mean, from the histogram.
    fn finish_latencies(&mut self) {
        let histogram = &self.histogram;
        let (min, max) = (self.latencies.min, self.latencies.max);
        let quantile = |q: f64| {
            histogram
                .as_ref()
                .map_or(0, |h| h.value_at_quantile(q).saturating_mul(1_000))
                // The histogram's bucket edge can pass the true extremes; never report past them.
                .clamp(min, max)
        };
        self.latencies.p50 = quantile(0.50);
        self.latencies.p90 = quantile(0.90);
        self.latencies.p95 = quantile(0.95);
        self.latencies.p99 = quantile(0.99);
        self.latencies.mean = self.latencies.total / self.requests.max(1);
    }

    fn into_report(mut self, started_at: Timestamp, bytes_out_per_request: u64) -> Report {
        if self.requests == 0 {
            return Report::empty(started_at, self);
        }
        self.finish_latencies();
        let at = |offset_ns: u64| {
            started_at
                .checked_add(SignedDuration::from_nanos(
                    i64::try_from(offset_ns).unwrap_or(i64::MAX),
                ))
                .unwrap_or(started_at)
        };
        let requests = self.requests;
        let duration = self.latest - self.earliest;
        let wait = self.end - self.latest;
        let (rate, throughput) = if duration > 0 {
            (
                requests as f64 / (duration as f64 / 1e9),
                self.succeeded as f64 / ((duration + wait) as f64 / 1e9),
            )
        } else {
            (requests as f64, self.succeeded as f64)
        };
        let bytes_out = bytes_out_per_request * requests;
        Report {
            latencies: self.latencies,
            bytes_in: ByteMetrics {
                total: self.bytes_in,
                mean: self.bytes_in as f64 / requests as f64,
            },
            bytes_out: ByteMetrics {
                total: bytes_out,
                mean: bytes_out as f64 / requests as f64,
            },
            earliest: at(self.earliest),
            latest: at(self.latest),
            end: at(self.end),
            duration,
            wait,
            requests,
            rate,
            throughput,
            success: self.succeeded as f64 / requests as f64,
            status_codes: self.status_codes,
            errors: self.error_order,
            error_counts: self.error_counts,
            late: 0,
            target_rate: None,
        }
    }
}

/// vegeta's `round`: to the next finer unit than the value's own (1.2345678s → 1.235s).
pub fn vegeta_round(ns: u64) -> u64 {
    const UNITS: [u64; 6] = [
        3_600_000_000_000,
        60_000_000_000,
        1_000_000_000,
        1_000_000,
        1_000,
        1,
    ];
    for (i, unit) in UNITS.iter().enumerate() {
        if ns >= *unit && i < UNITS.len() - 1 {
            let step = UNITS[i + 1];
            return (ns + step / 2) / step * step;
        }
    }
    ns
}

/// Go's `time.Duration.String()`: `0s`, `850ns`, `85.286µs`, `26.776ms`, `1.212s`, `15m0s`.
pub fn go_duration(ns: u64) -> String {
    fn with_fraction(value: u64, unit: u64, suffix: &str) -> String {
        let whole = value / unit;
        let fraction = value % unit;
        if fraction == 0 {
            return format!("{whole}{suffix}");
        }
        let digits = unit.ilog10() as usize;
        let text = format!("{fraction:0digits$}");
        format!("{whole}.{}{suffix}", text.trim_end_matches('0'))
    }
    match ns {
        0 => "0s".to_string(),
        1..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => with_fraction(ns, 1_000, "µs"),
        1_000_000..1_000_000_000 => with_fraction(ns, 1_000_000, "ms"),
        _ => {
            let hours = ns / 3_600_000_000_000;
            let minutes = ns / 60_000_000_000 % 60;
            let seconds = with_fraction(ns % 60_000_000_000, 1_000_000_000, "s");
            match (hours, minutes) {
                (0, 0) => seconds,
                (0, m) => format!("{m}m{seconds}"),
                (h, m) => format!("{h}h{m}m{seconds}"),
            }
        }
    }
}

/// A run against a saved baseline (`--compare`): one line per figure, before → after.
pub fn render_comparison(baseline: &Report, current: &Report) -> String {
    let d = |ns: u64| go_duration(vegeta_round(ns));
    let rows: Vec<(&str, String, String, String)> = vec![
        (
            "requests",
            baseline.requests.to_string(),
            current.requests.to_string(),
            signed(current.requests as f64 - baseline.requests as f64, ""),
        ),
        (
            "rate",
            format!("{:.2}/s", baseline.rate),
            format!("{:.2}/s", current.rate),
            signed(current.rate - baseline.rate, "/s"),
        ),
        (
            "success",
            format!("{:.2}%", baseline.success * 100.0),
            format!("{:.2}%", current.success * 100.0),
            signed((current.success - baseline.success) * 100.0, " pts"),
        ),
        latency_row("p50", baseline.latencies.p50, current.latencies.p50, &d),
        latency_row("p90", baseline.latencies.p90, current.latencies.p90, &d),
        latency_row("p95", baseline.latencies.p95, current.latencies.p95, &d),
        latency_row("p99", baseline.latencies.p99, current.latencies.p99, &d),
        latency_row("max", baseline.latencies.max, current.latencies.max, &d),
    ];
    let mut out = String::from("COMPARED WITH BASELINE\n");
    let _ = writeln!(
        out,
        "{:<10}{:<14}{:<14}CHANGE",
        "FIGURE", "BASELINE", "THIS RUN"
    );
    for (name, before, after, change) in rows {
        let _ = writeln!(out, "{name:<10}{before:<14}{after:<14}{change}");
    }
    out
}

fn latency_row<'a>(
    name: &'a str,
    before: u64,
    after: u64,
    d: &dyn Fn(u64) -> String,
) -> (&'a str, String, String, String) {
    let change = if before == 0 {
        "n/a".to_string()
    } else {
        let ratio = after as f64 / before as f64;
        format!("x{ratio:.2}")
    };
    (name, d(before), d(after), change)
}

fn signed(delta: f64, unit: &str) -> String {
    if delta.abs() < 0.005 {
        format!("±0{unit}")
    } else if delta > 0.0 {
        format!("+{delta:.2}{unit}")
    } else {
        format!("{delta:.2}{unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(sent_ms: u64, latency_ms: u64, status: u16) -> Sample {
        Sample {
            seq: sent_ms,
            sent_ns: sent_ms * 1_000_000,
            latency_ns: latency_ms * 1_000_000,
            bytes_in: 3,
            status,
            error: u32::from(status != 200),
        }
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(850), "850ns");
        assert_eq!(go_duration(85_286), "85.286µs");
        assert_eq!(go_duration(26_776_000), "26.776ms");
        assert_eq!(go_duration(1_212_000_000), "1.212s");
        assert_eq!(go_duration(900_000_000_000), "15m0s");
        assert_eq!(go_duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(go_duration(vegeta_round(26_776_499)), "26.776ms");
        assert_eq!(go_duration(vegeta_round(1_212_345_678)), "1.212s");
    }

    #[test]
    fn figures_follow_vegeta_definitions() {
        let errors = vec!["503 Service Unavailable".to_string()];
        let samples = [
            sample(0, 10, 200),
            sample(100, 20, 200),
            sample(200, 30, 503),
            sample(300, 40, 200),
        ];
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let r = Report::from_samples(&samples, &errors, start, 5);
        assert_eq!(r.requests, 4);
        assert_eq!(r.success, 0.75);
        assert_eq!(r.duration, 300_000_000);
        assert_eq!(r.wait, 40_000_000);
        assert!((r.rate - 4.0 / 0.3).abs() < 1e-9);
        assert!((r.throughput - 3.0 / 0.34).abs() < 1e-9);
        assert_eq!(r.latencies.min, 10_000_000);
        assert_eq!(r.latencies.max, 40_000_000);
        assert_eq!(r.latencies.mean, 25_000_000);
        assert_eq!(r.status_codes["503"], 1);
        assert_eq!(r.errors, errors);
        assert_eq!(r.error_counts["503 Service Unavailable"], 1);
        assert_eq!(r.bytes_out.total, 20);
        assert_eq!(r.end.to_string(), "2026-01-01T00:00:00.34Z");
    }

    #[test]
    fn json_uses_vegeta_field_names() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let r = Report::from_samples(&[sample(0, 10, 200)], &[], start, 0);
        let json = serde_json::to_value(&r).unwrap();
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
            assert!(json.get(field).is_some(), "{field} missing from {json}");
        }
        for field in [
            "total", "mean", "50th", "90th", "95th", "99th", "max", "min",
        ] {
            assert!(json["latencies"].get(field).is_some(), "latencies.{field}");
        }
        assert_eq!(json["latencies"]["max"], 10_000_000);
    }
}
