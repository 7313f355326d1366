//! The load engine: an open model at a constant rate, like `vegeta attack`.
//!
//! Request `i` is due at `start + i / rate`, fixed when the run starts; each is sent in its own
//! task the moment it is due, whether or not earlier ones returned, so a stalled backend shows
//! up in latencies instead of silently lowering the rate (no coordinated omission). At most
//! `max_in_flight` are outstanding: when that bound is reached the next request waits for a
//! free slot and is sent late, then the schedule catches up at once, as vegeta's pacer does
//! when its `-max-workers` are busy. Unlike vegeta, each late request is counted (`late`) and
//! the first one is announced.
//!
//! Latency is measured as vegeta measures it: from the instant the request is actually sent to
//! the end of its response body. The schedule is kept by sending, not by measuring from the
//! due instant; when requests are sent late, the `late` count says so.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::gates::{GateBreach, Gates};
use super::http::ProbeClient;
use super::report::{Report, Sample};

/// How the load is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadOptions {
    /// Requests per second.
    pub rate: f64,
    /// Stop sending after this long; `None` runs until [`Probe::stop`].
    pub duration: Option<Duration>,
    pub max_in_flight: u32,
}

/// A named instant on the probe's time axis, e.g. "deployment/bookinfo/reviews-v1 started".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mark {
    /// Offset from the probe's start, in nanoseconds.
    pub at_ns: u64,
    /// The schedule position of the first request sent after the mark: windows between marks
    /// are exact sets of requests, whatever order their answers came back in.
    pub seq: u64,
    pub label: String,
}

impl Mark {
    /// The probe's start.
    pub fn start() -> Mark {
        Mark {
            at_ns: 0,
            seq: 0,
            label: String::new(),
        }
    }
}

/// Everything recorded so far; the engine's tasks append, readers take windows.
#[derive(Debug, Default)]
struct Recording {
    samples: Vec<Sample>,
    errors: Vec<String>,
    error_index: HashMap<String, u32>,
    marks: Vec<Mark>,
}

impl Recording {
    fn record(&mut self, mut sample: Sample, error: Option<String>) {
        if let Some(text) = error {
            let next = self.errors.len() as u32 + 1;
            let index = *self.error_index.entry(text.clone()).or_insert(next);
            if index == next {
                self.errors.push(text);
            }
            sample.error = index;
        }
        self.samples.push(sample);
    }
}

struct Shared {
    started: Instant,
    started_at: Timestamp,
    recording: Mutex<Recording>,
    sent: AtomicU64,
    late: AtomicU64,
    late_announced: AtomicBool,
    bytes_out_per_request: u64,
    target_rate: f64,
}

impl Shared {
    fn recording(&self) -> MutexGuard<'_, Recording> {
        // A panicking recorder cannot leave a half-written sample behind (push is atomic to
        // readers), so a poisoned lock's data is still good.
        self.recording.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }
}

/// A probe running in the background. Start it, mark events, read windows, stop it.
///
/// ```ignore
/// let probe = Probe::start(client, load, gates);
/// let started = probe.mark("deployment/bookinfo/reviews-v1 started");
/// // … the rollout …
/// probe.mark("deployment/bookinfo/reviews-v1 finished");
/// let during = probe.figures_since(&started);
/// if let Some(breach) = probe.gates().check(&during).first() { /* stop, blame, undo */ }
/// let run = probe.stop().await; // final report, marks and samples for --plot
/// ```
pub struct Probe {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    scheduler: JoinHandle<()>,
    done: watch::Receiver<bool>,
    slots: Arc<Semaphore>,
    load: LoadOptions,
    gates: Gates,
    timeout: Duration,
}

/// A finished probe run: the final report, the marks, and every sample (for `--plot`).
#[derive(Debug, Clone)]
pub struct ProbeRun {
    pub report: Report,
    pub marks: Vec<Mark>,
    pub samples: Vec<Sample>,
    pub errors: Vec<String>,
    pub started_at: Timestamp,
    /// When sending stopped, in nanoseconds from the start.
    pub stopped_ns: u64,
}

impl ProbeRun {
    /// The figures of requests sent between two marks (or to the end).
    pub fn figures_between(&self, from: &Mark, to: Option<&Mark>) -> Report {
        let end = to.map_or(u64::MAX, |m| m.seq);
        Report::from_samples(
            self.samples
                .iter()
                .filter(|s| s.seq >= from.seq && s.seq < end),
            &self.errors,
            self.started_at,
            self.report.bytes_out.total / self.report.requests.max(1),
        )
    }
}

impl Probe {
    /// Starts sending at once; runs until the load's duration ends or [`Probe::stop`].
    pub fn start(client: ProbeClient, load: LoadOptions, gates: Gates) -> Probe {
        let shared = Arc::new(Shared {
            started: Instant::now(),
            started_at: Timestamp::now(),
            recording: Mutex::new(Recording::default()),
            sent: AtomicU64::new(0),
            late: AtomicU64::new(0),
            late_announced: AtomicBool::new(false),
            bytes_out_per_request: client.template().body.len() as u64,
            target_rate: load.rate,
        });
        let (stop, stopped) = watch::channel(false);
        let (done_tx, done) = watch::channel(false);
        let slots = Arc::new(Semaphore::new(load.max_in_flight as usize));
        let timeout = client.timeout();
        let scheduler = tokio::spawn({
            let (shared, slots) = (shared.clone(), slots.clone());
            async move {
                schedule(client, load, shared, slots, stopped).await;
                let _ = done_tx.send(true);
            }
        });
        Probe {
            shared,
            stop,
            scheduler,
            done,
            slots,
            load,
            gates,
            timeout,
        }
    }

    pub fn load(&self) -> LoadOptions {
        self.load
    }

    pub fn gates(&self) -> &Gates {
        &self.gates
    }

    /// Time since the probe started.
    pub fn elapsed(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// Requests sent so far (answered or not).
    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::SeqCst)
    }

    /// Requests sent late so far because `max_in_flight` were outstanding.
    pub fn late(&self) -> u64 {
        self.shared.late.load(Ordering::SeqCst)
    }

    /// Puts a named event on the time axis (drawn by `--plot`) and returns it, to read the
    /// figures since then.
    pub fn mark(&self, label: impl Into<String>) -> Mark {
        let mark = Mark {
            at_ns: self.shared.now_ns(),
            seq: self.shared.sent.load(Ordering::SeqCst),
            label: label.into(),
        };
        self.shared.recording().marks.push(mark.clone());
        mark
    }

    /// The figures of the requests sent since `mark` that have been answered (or timed out).
    pub fn figures_since(&self, mark: &Mark) -> Report {
        self.window(mark.seq, u64::MAX).0
    }

    /// The figures of every request sent between `from` and `to`, once all of them have been
    /// answered or have timed out: what a workload's rollout did to traffic.
    pub async fn settled_figures_between(&self, from: &Mark, to: &Mark) -> Report {
        let expected = to.seq.saturating_sub(from.seq);
        let deadline = Instant::now() + self.timeout + Duration::from_secs(1);
        loop {
            let (report, answered) = self.window(from.seq, to.seq);
            if answered >= expected || Instant::now() >= deadline {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn window(&self, from_seq: u64, to_seq: u64) -> (Report, u64) {
        let recording = self.shared.recording();
        let mut answered = 0;
        let mut report = Report::from_samples(
            recording
                .samples
                .iter()
                .filter(|s| s.seq >= from_seq && s.seq < to_seq)
                .inspect(|_| answered += 1),
            &recording.errors,
            self.shared.started_at,
            self.shared.bytes_out_per_request,
        );
        report.target_rate = Some(self.shared.target_rate);
        (report, answered)
    }

    /// The figures of everything answered so far.
    pub fn figures(&self) -> Report {
        self.figures_since(&Mark::start())
    }

    /// Gate breaches in the requests sent since `mark`.
    pub fn breaches_since(&self, mark: &Mark) -> Vec<GateBreach> {
        self.gates.check(&self.figures_since(mark))
    }

    /// Samples recorded after the first `from` ones (the live view reads only what is new).
    pub fn samples_from(&self, from: usize) -> Vec<Sample> {
        self.shared
            .recording()
            .samples
            .get(from..)
            .map(<[Sample]>::to_vec)
            .unwrap_or_default()
    }

    /// Resolves when the scheduler has sent its last request (the duration is over).
    pub async fn sending_finished(&self) {
        let mut done = self.done.clone();
        let _ = done.wait_for(|finished| *finished).await;
    }

    /// Stops sending, waits for the requests in flight (each at most its timeout), and returns
    /// the run.
    pub async fn stop(self) -> ProbeRun {
        let _ = self.stop.send(true);
        self.sending_finished().await;
        self.scheduler.abort();
        let stopped_ns = self.shared.now_ns();
        // Every outstanding request holds a slot; having them all back means all have answered.
        let all = self.load.max_in_flight;
        let _ = tokio::time::timeout(
            self.timeout + Duration::from_secs(1),
            self.slots.acquire_many(all),
        )
        .await;
        let recording = std::mem::take(&mut *self.shared.recording());
        let mut report = Report::from_samples(
            &recording.samples,
            &recording.errors,
            self.shared.started_at,
            self.shared.bytes_out_per_request,
        );
        report.late = self.late();
        report.target_rate = Some(self.shared.target_rate);
        ProbeRun {
            report,
            marks: recording.marks,
            samples: recording.samples,
            errors: recording.errors,
            started_at: self.shared.started_at,
            stopped_ns,
        }
    }
}

async fn schedule(
    client: ProbeClient,
    load: LoadOptions,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    mut stopped: watch::Receiver<bool>,
) {
    let interval_ns = 1e9 / load.rate;
    let limit_ns = load
        .duration
        .filter(|d| !d.is_zero())
        .map(|d| d.as_nanos() as f64);
    let mut n: u64 = 0;
    loop {
        let due_ns = n as f64 * interval_ns;
        if limit_ns.is_some_and(|limit| due_ns >= limit) || *stopped.borrow() {
            return;
        }
        let due = shared.started + Duration::from_nanos(due_ns as u64);
        if Instant::now() < due {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = stopped.changed() => return,
            }
        }
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                shared.late.fetch_add(1, Ordering::SeqCst);
                if !shared.late_announced.swap(true, Ordering::SeqCst) {
                    eprintln!(
                        "warning: {} requests in flight (--max-in-flight): further requests wait for a free slot and are sent late; the report counts them as late",
                        load.max_in_flight
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => return,
                    },
                    _ = stopped.changed() => return,
                }
            }
        };
        shared.sent.fetch_add(1, Ordering::SeqCst);
        let client = client.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let sent_ns = shared.now_ns();
            let outcome = client.send(n).await;
            let latency_ns = shared.now_ns().saturating_sub(sent_ns);
            shared.recording().record(
                Sample {
                    seq: n,
                    sent_ns,
                    latency_ns,
                    bytes_in: outcome.bytes_in,
                    status: outcome.status,
                    error: 0,
                },
                outcome.error,
            );
            drop(slot);
        });
        n += 1;
    }
}
