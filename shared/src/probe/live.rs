//! The live view: once a second, the last second's rate, success and p50/p99. On a terminal it
//! is one line redrawn in place, with a sparkline of the recent p99s; otherwise (a log, a
//! pipe) one plain line per second with no escape codes.

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use super::engine::Probe;
use super::report::{Report, go_duration, vegeta_round};

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Seconds of history in the sparkline.
const HISTORY: usize = 30;

/// State of the live view between ticks.
pub struct LiveView {
    terminal: bool,
    seen_samples: usize,
    seen_sent: u64,
    p99_history: VecDeque<u64>,
}

impl LiveView {
    pub fn new(terminal: bool) -> LiveView {
        LiveView {
            terminal,
            seen_samples: 0,
            seen_sent: 0,
            p99_history: VecDeque::with_capacity(HISTORY),
        }
    }

    /// Reads what happened since the last tick and returns the line to show.
    pub fn tick(&mut self, probe: &Probe) -> String {
        let new = probe.samples_from(self.seen_samples);
        self.seen_samples += new.len();
        let sent = probe.sent();
        let sent_now = sent - self.seen_sent;
        self.seen_sent = sent;
        let second = Report::from_samples(&new, &[], jiff::Timestamp::UNIX_EPOCH, 0);
        if self.p99_history.len() == HISTORY {
            self.p99_history.pop_front();
        }
        self.p99_history.push_back(second.latencies.p99);
        let line = self.line(probe.elapsed(), sent, sent_now, &second);
        if self.terminal {
            format!("{line}  {}", sparkline(&self.p99_history))
        } else {
            line
        }
    }

    fn line(&self, elapsed: Duration, sent: u64, sent_now: u64, second: &Report) -> String {
        let d = |ns: u64| go_duration(vegeta_round(ns));
        let success = if second.requests == 0 {
            "-".to_string()
        } else {
            format!("{:.2}%", second.success * 100.0)
        };
        format!(
            "{:>5}s  sent {sent:<8} rate {sent_now:>6}/s  success {success:>7}  p50 {:<9} p99 {:<9}",
            elapsed.as_secs(),
            d(second.latencies.p50),
            d(second.latencies.p99),
        )
        .trim_end()
        .to_string()
    }

    /// Shows `line` on stderr: in place on a terminal, appended otherwise.
    pub fn show(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    /// Leaves the terminal line clean before the report is printed.
    pub fn finish(&self) {
        if self.terminal {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

/// One block per value, scaled to the largest; empty seconds (0) are the lowest block.
pub fn sparkline(values: &VecDeque<u64>) -> String {
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    values
        .iter()
        .map(|&v| SPARK[((v as u128 * 7 + max as u128 / 2) / max as u128).min(7) as usize])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_largest_value() {
        let values: VecDeque<u64> = [0, 10, 50, 100].into_iter().collect();
        assert_eq!(sparkline(&values), "▁▂▅█");
        assert_eq!(sparkline(&VecDeque::new()), "");
    }
}
