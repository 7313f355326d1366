//! SLO gates: limits on the error rate and the 99th percentile latency. A breach names the
//! gate, its limit and what was measured, in words a user can act on.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::report::{Report, go_duration, vegeta_round};

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gates {
    /// Largest acceptable share of failed requests, 0 to 1.
    pub max_error_rate: Option<f64>,
    pub max_p99: Option<Duration>,
}

/// One gate a set of figures did not pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GateBreach {
    /// The flag that set the gate: `max-error-rate` or `max-p99`.
    pub gate: &'static str,
    pub limit: String,
    pub observed: String,
    /// How many requests the figures cover.
    pub requests: u64,
}

impl fmt::Display for GateBreach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.gate {
            "max-error-rate" => "error rate",
            _ => "p99 latency",
        };
        write!(
            f,
            "{what} {} over {} request(s) is above --{} {}",
            self.observed, self.requests, self.gate, self.limit
        )
    }
}

impl Gates {
    pub fn is_empty(&self) -> bool {
        self.max_error_rate.is_none() && self.max_p99.is_none()
    }

    /// The gates `report` breaches; none when it covers no request (nothing was measured).
    pub fn check(&self, report: &Report) -> Vec<GateBreach> {
        let mut breaches = Vec::new();
        if report.requests == 0 {
            return breaches;
        }
        if let Some(limit) = self.max_error_rate {
            let observed = report.error_rate();
            if observed > limit {
                let failed =
                    report.requests - (report.success * report.requests as f64).round() as u64;
                breaches.push(GateBreach {
                    gate: "max-error-rate",
                    limit: percent(limit),
                    observed: format!("{} ({failed} failed)", percent(observed)),
                    requests: report.requests,
                });
            }
        }
        if let Some(limit) = self.max_p99
            && report.p99() > limit
        {
            breaches.push(GateBreach {
                gate: "max-p99",
                limit: go_duration(limit.as_nanos() as u64),
                observed: go_duration(vegeta_round(report.latencies.p99)),
                requests: report.requests,
            });
        }
        breaches
    }
}

fn percent(ratio: f64) -> String {
    format!("{:.2}%", ratio * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::report::Sample;

    fn report(statuses: &[u16], latency_ms: u64) -> Report {
        let samples: Vec<Sample> = statuses
            .iter()
            .enumerate()
            .map(|(i, &status)| Sample {
                seq: i as u64,
                sent_ns: i as u64 * 1_000_000,
                latency_ns: latency_ms * 1_000_000,
                bytes_in: 0,
                status,
                error: 0,
            })
            .collect();
        Report::from_samples(&samples, &[], jiff::Timestamp::UNIX_EPOCH, 0)
    }

    #[test]
    fn error_rate_gate_fires_only_above_its_limit() {
        let gates = Gates {
            max_error_rate: Some(0.25),
            max_p99: None,
        };
        assert!(gates.check(&report(&[200, 200, 200, 503], 1)).is_empty());
        let breaches = gates.check(&report(&[200, 503, 200, 503], 1));
        assert_eq!(breaches.len(), 1);
        assert_eq!(
            breaches[0].to_string(),
            "error rate 50.00% (2 failed) over 4 request(s) is above --max-error-rate 25.00%"
        );
    }

    #[test]
    fn p99_gate_names_the_measured_latency() {
        let gates = Gates {
            max_error_rate: None,
            max_p99: Some(Duration::from_millis(500)),
        };
        assert!(gates.check(&report(&[200; 10], 100)).is_empty());
        let breaches = gates.check(&report(&[200; 10], 1200));
        assert_eq!(
            breaches[0].to_string(),
            "p99 latency 1.2s over 10 request(s) is above --max-p99 500ms"
        );
    }

    #[test]
    fn no_requests_breach_nothing() {
        let gates = Gates {
            max_error_rate: Some(0.0),
            max_p99: Some(Duration::ZERO),
        };
        assert!(gates.check(&report(&[], 1)).is_empty());
    }
}
