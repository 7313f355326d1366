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
