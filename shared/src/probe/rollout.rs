//! What `kubectl rev-restart --probe` asks of the probe: a window of traffic per workload's
//! rollout (marked on the time axis, so `--plot` draws it), its figures, and the gates those
//! figures breach. The restart executor blames a workload for what happened in its own window.

use serde::Serialize;

use super::WindowFigures;
use super::engine::{Mark, Probe};
use super::flags::ProbeFlags;
use super::gates::{GateBreach, Gates};
use super::target::TargetSpec;
use crate::error::RevError;

/// The probe a restart run will run, as its plan shows it (nothing is sent yet).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeIntent {
    /// What is probed, as the flags name it (a gateway's address is read when the run starts).
    pub target: String,
    pub method: String,
    pub rate: f64,
    pub gates: Gates,
}

impl ProbeFlags {
    /// Checks the probe's flags for a restart run and says what it will probe. `--duration`
    /// does not apply: the probe runs from the first restart to the last.
    pub fn restart_intent(&self, namespace: &str) -> Result<ProbeIntent, RevError> {
        if self.duration.is_some() {
            return Err(RevError::Usage(
                "--duration does not apply to rev-restart --probe: the probe runs from the first restart to the last".into(),
            ));
        }
        let spec = self.validate(namespace)?;
        Ok(ProbeIntent {
            target: spec.describe(&self.path),
            method: self.method.clone(),
            rate: self.rate,
            gates: self.gates(),
        })
    }
}

impl TargetSpec {
    /// The target as a user named it, before anything is resolved.
    pub fn describe(&self, path: &str) -> String {
        match self {
            TargetSpec::Urls(urls) => urls
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            TargetSpec::Gateway { namespace, name } => {
                format!("gateway {namespace}/{name} (its load-balancer address), path {path}")
            }
            TargetSpec::PortForward {
                namespace,
                service,
                port,
            } => {
                let port = match port {
                    super::target::ServicePort::Number(n) => n.to_string(),
                    super::target::ServicePort::Name(name) => name.clone(),
                };
                format!("svc/{service}:{port} in {namespace} (port-forward), path {path}")
            }
        }
    }
}

/// A workload's rollout under way, on the probe's time axis.
#[derive(Debug, Clone)]
pub struct RolloutWindow {
    subject: String,
    started: Mark,
}

/// What traffic did while one workload rolled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutTraffic {
    pub figures: WindowFigures,
    /// The gates these figures breach (empty: none, or no gate set).
    pub breaches: Vec<GateBreach>,
}

impl Probe {
    /// Marks the start of `subject`'s rollout (`deployment/bookinfo/reviews-v1`).
    pub fn rollout_started(&self, subject: &str) -> RolloutWindow {
        RolloutWindow {
            subject: subject.to_string(),
            started: self.mark(format!("restart {subject} started")),
        }
    }

    /// Marks its end and reads the figures of every request sent in between, once each has
    /// been answered or has timed out, with the gates they breach.
    pub async fn rollout_finished(&self, window: RolloutWindow) -> RolloutTraffic {
        let finished = self.mark(format!("restart {} finished", window.subject));
        let during = self
            .settled_figures_between(&window.started, &finished)
            .await;
        RolloutTraffic {
            figures: WindowFigures::from(&during),
            breaches: self.gates().check(&during),
        }
    }
}
