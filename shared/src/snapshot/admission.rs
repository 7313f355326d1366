//! Asking the cluster itself which sidecar a pod template gets: a dry-run create (`dryRun=All`)
//! runs the real admission chain — every matching mutating webhook, Istio's injectors declare
//! `sideEffects: None` — and returns the pod as it would be stored, with the real
//! `sidecar.istio.io/status` (DOMAIN §2). Nothing is persisted.

use serde::Serialize;

use super::WorkloadKind;

/// What the admission chain did with a pod template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "kebab-case")]
pub enum AdmissionAnswer {
    /// Admitted with a sidecar injected by this revision.
    Injected { revision: String },
    /// Admitted with a proxy whose revision the response does not tell (only its image tag).
    UnidentifiedSidecar { image_tag: String },
    /// Admitted without a sidecar.
    NoSidecar,
    /// A webhook denied the pod, or could not be called and its failurePolicy is Fail: pods of
    /// this template cannot be created now. The API server's message.
    WebhookFailed { message: String },
    /// Not allowed to `create pods` here: the check was skipped (a warning, never a pass).
    Forbidden { message: String },
    /// The check could not be made (invalid template, quota, connection): the message.
    Failed { message: String },
}

impl AdmissionAnswer {
    /// Short text for findings and refusals: `1-31`, `no sidecar`, `webhook failed: …`.
    pub fn describe(&self) -> String {
        match self {
            AdmissionAnswer::Injected { revision } => format!("a sidecar of {revision}"),
            AdmissionAnswer::UnidentifiedSidecar { image_tag } => {
                format!("a sidecar of unknown revision (image tag {image_tag})")
            }
            AdmissionAnswer::NoSidecar => "no sidecar".into(),
            AdmissionAnswer::WebhookFailed { message } => {
                format!("the admission webhook call failed: {message}")
            }
            AdmissionAnswer::Forbidden { message } => {
                format!("not checked (cannot create pods: {message})")
            }
            AdmissionAnswer::Failed { message } => format!("not checked ({message})"),
        }
    }
}

/// One workload's pod template and what a dry-run create of it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionCheck {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub answer: AdmissionAnswer,
}
