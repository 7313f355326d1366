//! Progress on stderr: a spinner or bar on a terminal, plain timestamped lines otherwise, so
//! stdout stays clean for `-o json` pipelines.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::snapshot::live::ReadCounter;

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A spinner counting objects read, shown only when stderr is a terminal.
pub struct ReadSpinner {
    bar: Option<ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ReadSpinner {
    pub fn start(label: &str, counter: &ReadCounter) -> Self {
        if !stderr_is_terminal() {
            return Self {
                bar: None,
                task: None,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        let (bar2, counter2, label) = (bar.clone(), counter.clone(), label.to_string());
        let task = tokio::spawn(async move {
            loop {
                bar2.set_message(format!("{label}: {} objects read", counter2.get()));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self {
            bar: Some(bar),
            task: Some(task),
        }
    }

    pub fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A plain progress line for non-terminal stderr: `2026-11-26T14:00:00Z message`.
pub fn log_line(message: &str) {
    eprintln!(
        "{} {message}",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ")
    );
}

/// Restart progress: a bar with the current workload and its ready/desired pods on a terminal,
/// plain timestamped lines otherwise. Always on stderr.
pub struct RestartBar {
    bar: Option<ProgressBar>,
    /// Plain mode prints a line only when the state changes, not on every watch event.
    last_line: std::sync::Mutex<String>,
}

impl RestartBar {
    pub fn new(total: usize) -> Self {
        if !stderr_is_terminal() {
            return Self {
                bar: None,
                last_line: Default::default(),
            };
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            bar: Some(bar),
            last_line: Default::default(),
        }
    }

    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl crate::exec::restart::RestartProgress for RestartBar {
    fn started(&self, item: &crate::plan::restart::RestartItem) {
        let text = format!(
            "restarting {}/{} -n {}",
            item.kind.resource(),
            item.name,
            item.namespace
        );
        match &self.bar {
            Some(bar) => bar.set_message(text),
            None => log_line(&text),
        }
    }

    fn waiting(
        &self,
        item: &crate::plan::restart::RestartItem,
        ready: i32,
        desired: i32,
        detail: &str,
    ) {
        let text = format!(
            "{}/{}: {ready}/{desired} ready — {detail}",
            item.kind.resource(),
            item.name
        );
        match &self.bar {
            Some(bar) => bar.set_message(text),
            None => {
                if let Ok(mut last) = self.last_line.lock()
                    && *last != text
                {
                    log_line(&text);
                    *last = text;
                }
            }
        }
    }

    fn finished(&self, o: &crate::exec::restart::WorkloadOutcome) {
        let text = format!(
            "{}/{} -n {}: {:?} in {:.1}s, {} pod(s) verified{}",
            o.kind.resource(),
            o.name,
            o.namespace,
            o.result,
            o.rollout_seconds,
            o.pods_verified,
            o.message
                .as_deref()
                .map(|m| format!(" — {m}"))
                .unwrap_or_default()
        );
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.println(text);
            }
            None => log_line(&text),
        }
    }
}
