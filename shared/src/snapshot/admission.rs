//! Asking the cluster itself which sidecar a pod template gets: a dry-run create (`dryRun=All`)
//! runs the real admission chain — every matching mutating webhook, Istio's injectors declare
//! `sideEffects: None` — and returns the pod as it would be stored, with the real
//! `sidecar.istio.io/status` (DOMAIN §2). Nothing is persisted.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
use serde::Serialize;

use super::ingest::{sidecar_from_annotations, sidecar_from_spec};
use super::{SidecarEvidence, Snapshot, WorkloadKind};
use crate::analysis::admission::AdmissionPreflight;
use crate::error::error_chain;

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

/// A workload whose pod template is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

/// At most this many dry-run creates in flight: enough to check hundreds of workloads in
/// seconds, few enough not to load the API server or the injectors.
pub const CONCURRENCY: usize = 8;

/// A Pod as the workload's controller would create it from its template: same labels,
/// annotations and spec, a generated name (the dry run stores nothing).
pub fn pod_from_template(reference: &TemplateRef, template: &PodTemplateSpec) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", reference.name)),
            namespace: Some(reference.namespace.clone()),
            labels: meta.labels,
            annotations: meta.annotations,
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// What the admitted pod carries: the injector's status annotation first (DOMAIN §3).
pub fn answer_of(admitted: &Pod) -> AdmissionAnswer {
    let evidence = sidecar_from_annotations(admitted.metadata.annotations.as_ref())
        .or_else(|| admitted.spec.as_ref().map(sidecar_from_spec));
    match evidence {
        Some(
            SidecarEvidence::StatusAnnotation(revision)
            | SidecarEvidence::RevAnnotation(revision)
            | SidecarEvidence::DiscoveryAddress(revision),
        ) => AdmissionAnswer::Injected { revision },
        Some(SidecarEvidence::ProxyImage(image_tag)) => {
            AdmissionAnswer::UnidentifiedSidecar { image_tag }
        }
        Some(SidecarEvidence::NoSidecar | SidecarEvidence::Unknown) | None => {
            AdmissionAnswer::NoSidecar
        }
    }
}

/// Sorts an API error of the dry-run create: RBAC (a warning), a webhook that denied or could
/// not be called (the answer), anything else (no answer).
pub fn answer_of_status(code: u16, message: &str) -> AdmissionAnswer {
    if code == 403 && message.contains("cannot create resource") {
        AdmissionAnswer::Forbidden {
            message: message.to_string(),
        }
    } else if message.contains("admission webhook") || message.contains("failed calling webhook") {
        AdmissionAnswer::WebhookFailed {
            message: message.to_string(),
        }
    } else {
        AdmissionAnswer::Failed {
            message: format!("the API server answered {code}: {message}"),
        }
    }
}

/// Creates `pod` in its namespace with `dryRun=All`: the real admission chain runs, nothing is
/// stored.
pub async fn dry_run_pod(client: &Client, pod: &Pod) -> AdmissionAnswer {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match api.create(&params, pod).await {
        Ok(admitted) => answer_of(&admitted),
        Err(kube::Error::Api(status)) => answer_of_status(status.code, &status.message),
        Err(other) => AdmissionAnswer::Failed {
            message: error_chain(&other),
        },
    }
}

/// The workload's pod template, read now (the snapshot keeps only a summary of it).
async fn template_of(client: &Client, r: &TemplateRef) -> Result<PodTemplateSpec, String> {
    let ns = r.namespace.as_str();
    let got = match r.kind {
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), ns)
            .get(&r.name)
            .await
            .map(|d| d.spec.map(|s| s.template)),
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get(&r.name)
            .await
            .map(|s| s.spec.map(|s| s.template)),
        WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(client.clone(), ns)
            .get(&r.name)
            .await
            .map(|d| d.spec.map(|s| s.template)),
    };
    match got {
        Ok(Some(template)) => Ok(template),
        Ok(None) => Err(format!("{}/{} has no spec", r.kind.resource(), r.name)),
        Err(e) => Err(format!(
            "cannot get {}/{} in {ns}: {}",
            r.kind.resource(),
            r.name,
            error_chain(&e)
        )),
    }
}

/// Dry-run creates each workload's pod template, at most `concurrency` at a time; the answers
/// in the order given.
pub async fn check_templates(
    client: &Client,
    workloads: &[TemplateRef],
    concurrency: usize,
) -> Vec<AdmissionCheck> {
    futures::stream::iter(workloads.iter().map(|r| async move {
        let answer = match template_of(client, r).await {
            Ok(template) => dry_run_pod(client, &pod_from_template(r, &template)).await,
            Err(message) => AdmissionAnswer::Failed { message },
        };
        AdmissionCheck {
            kind: r.kind,
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            answer,
        }
    }))
    .buffered(concurrency.max(1))
    .collect()
    .await
}

/// `rev-inventory --check-injection`: asks the cluster about every injected or drifted
/// workload in the snapshot and keeps the answers in it; the analysis then turns each
/// disagreement into an `analysis-disagrees-with-admission` finding, and what could not be
/// checked (no `create pods`) into a warning.
pub async fn check_injection(client: &Client, snapshot: &mut Snapshot) {
    let analysis = crate::analysis::analyze(snapshot);
    let workloads: Vec<TemplateRef> = analysis
        .workloads
        .iter()
        .filter(|w| w.injected || w.is_drifted())
        .map(|w| TemplateRef {
            kind: w.kind,
            namespace: w.namespace.clone(),
            name: w.name.clone(),
        })
        .collect();
    let checks = check_templates(client, &workloads, CONCURRENCY).await;
    snapshot
        .warnings
        .extend(crate::analysis::admission::unchecked(&checks));
    snapshot.admission = checks;
}

/// rev-restart's preflight: each workload to restart with the revision its new pods must carry.
/// Returns per-workload verdicts (a refusal names why: no sidecar, another revision, the
/// webhook's failure with the API server's message) and warnings for what could not be checked
/// (a 403 on `create pods` is a warning, never a pass).
pub async fn admission_preflight(
    client: &Client,
    workloads: &[(TemplateRef, Option<String>)],
    concurrency: usize,
) -> AdmissionPreflight {
    let refs: Vec<TemplateRef> = workloads.iter().map(|(r, _)| r.clone()).collect();
    let checks = check_templates(client, &refs, concurrency).await;
    let paired: Vec<(AdmissionCheck, Option<String>)> = checks
        .into_iter()
        .zip(workloads.iter().map(|(_, target)| target.clone()))
        .collect();
    crate::analysis::admission::preflight(&paired)
}
