//! The analysis checked against the cluster's own answer: what a dry-run create of a pod
//! template got from the real admission chain (`snapshot::admission`) compared with the
//! revision the analysis expects. Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use super::findings::{Finding, FindingCode, finding};
use super::{Analysis, NoSidecar};
use crate::snapshot::admission::{AdmissionAnswer, AdmissionCheck};
use crate::snapshot::{ReadWarning, WorkloadKind};

/// How the cluster's answer compares with the analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum AdmissionVerdict {
    /// The cluster does what the analysis expects.
    Agrees,
    /// The cluster does something else: both answers, for the user.
    Disagrees { expected: String, admission: String },
    /// No answer to compare (not allowed to create pods, or the request failed): a warning,
    /// never a pass.
    Unchecked { warning: ReadWarning },
}

/// Text for an expected revision: `1-31`, or `no sidecar`.
pub fn describe_expected(expected: Option<&str>) -> String {
    match expected {
        Some(revision) => format!("a sidecar of {revision}"),
        None => "no sidecar".into(),
    }
}

/// Compares one answer with the expected revision. `expects_refusal`: the analysis knows the
/// webhook calls a revision that is not installed, so a failing call is what it expects.
pub fn judge(
    expected: Option<&str>,
    expects_refusal: bool,
    subject: &str,
    answer: &AdmissionAnswer,
) -> AdmissionVerdict {
    let agrees = match answer {
        AdmissionAnswer::Injected { revision } => expected == Some(revision.as_str()),
        AdmissionAnswer::UnidentifiedSidecar { .. } => false,
        AdmissionAnswer::NoSidecar => expected.is_none() && !expects_refusal,
        AdmissionAnswer::WebhookFailed { .. } => expected.is_none() && expects_refusal,
        AdmissionAnswer::Forbidden { message } | AdmissionAnswer::Failed { message } => {
            return AdmissionVerdict::Unchecked {
                warning: ReadWarning {
                    verb: "create".into(),
                    resource: "pods".into(),
                    message: format!("dry-run of {subject}'s pod template not checked: {message}"),
                },
            };
        }
    };
    if agrees {
        return AdmissionVerdict::Agrees;
    }
    AdmissionVerdict::Disagrees {
        expected: if expects_refusal {
            "a failing webhook call (its revision is not installed)".into()
        } else {
            describe_expected(expected)
        },
        admission: answer.describe(),
    }
}

/// `analysis-disagrees-with-admission` findings for the checked workloads (and warnings for
/// those that could not be checked go to the caller through [`unchecked`]).
pub fn disagreements(analysis: &Analysis, checks: &[AdmissionCheck]) -> Vec<Finding> {
    let workloads: BTreeMap<(WorkloadKind, &str, &str), &super::WorkloadStatus> = analysis
        .workloads
        .iter()
        .map(|w| ((w.kind, w.namespace.as_str(), w.name.as_str()), w))
        .collect();
    checks
        .iter()
        .filter_map(|check| {
            let w = workloads.get(&(check.kind, check.namespace.as_str(), check.name.as_str()))?;
            let subject = format!("{}/{}/{}", w.kind.resource(), w.namespace, w.name);
            let expects_refusal = matches!(
                w.no_sidecar,
                Some(NoSidecar::RevisionNotInstalled { .. })
            );
            match judge(w.expected.as_deref(), expects_refusal, &subject, &check.answer) {
                AdmissionVerdict::Disagrees {
                    expected,
                    admission,
                } => Some(finding(
                    FindingCode::AnalysisDisagreesWithAdmission,
                    subject,
                    format!("the analysis expects {expected}; a dry-run create got {admission}"),
                    format!(
                        "trust the cluster's answer; compare `kubectl get mutatingwebhookconfigurations -o yaml` with `kubectl -n {} get {} {} -o yaml` and report what the analysis missed",
                        w.namespace,
                        w.kind.resource(),
                        w.name
                    ),
                )),
                _ => None,
            }
        })
        .collect()
}

/// The checks that got no answer to compare, as warnings (one per distinct message).
pub fn unchecked(checks: &[AdmissionCheck]) -> Vec<ReadWarning> {
    let mut out: Vec<ReadWarning> = Vec::new();
    for check in checks {
        let subject = format!(
            "{}/{}/{}",
            check.kind.resource(),
            check.namespace,
            check.name
        );
        if let AdmissionVerdict::Unchecked { warning } = judge(None, false, &subject, &check.answer)
            && !out.iter().any(|w| w.message == warning.message)
        {
            out.push(warning);
        }
    }
    out
}

/// One workload of a restart plan, checked before anything restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreflightVerdict {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// The revision its new pods must carry.
    pub target: Option<String>,
    pub answer: AdmissionAnswer,
    /// Why it must not be restarted, when the cluster would not give it the target.
    pub refusal: Option<String>,
}

/// rev-restart's admission preflight: per workload, whether the cluster would give its new pods
/// the target revision, and the warnings for what could not be checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionPreflight {
    pub verdicts: Vec<PreflightVerdict>,
    pub warnings: Vec<ReadWarning>,
}

impl AdmissionPreflight {
    /// Workloads whose restart would not give the target (each with its reason).
    pub fn refused(&self) -> impl Iterator<Item = &PreflightVerdict> {
        self.verdicts.iter().filter(|v| v.refusal.is_some())
    }

    pub fn all_passed(&self) -> bool {
        self.refused().next().is_none()
    }
}

/// Judges each check against the target revision it must reach.
pub fn preflight(checks: &[(AdmissionCheck, Option<String>)]) -> AdmissionPreflight {
    let mut out = AdmissionPreflight::default();
    for (check, target) in checks {
        let subject = format!(
            "{}/{}/{}",
            check.kind.resource(),
            check.namespace,
            check.name
        );
        let refusal = match judge(target.as_deref(), false, &subject, &check.answer) {
            AdmissionVerdict::Agrees => None,
            AdmissionVerdict::Disagrees {
                expected,
                admission,
            } => Some(format!(
                "its new pods would get {admission}, not {expected}"
            )),
            AdmissionVerdict::Unchecked { warning } => {
                if !out.warnings.iter().any(|w| w.message == warning.message) {
                    out.warnings.push(warning);
                }
                None
            }
        };
        out.verdicts.push(PreflightVerdict {
            kind: check.kind,
            namespace: check.namespace.clone(),
            name: check.name.clone(),
            target: target.clone(),
            answer: check.answer.clone(),
            refusal,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(answer: AdmissionAnswer) -> AdmissionCheck {
        AdmissionCheck {
            kind: WorkloadKind::Deployment,
            namespace: "bookinfo".into(),
            name: "reviews-v1".into(),
            answer,
        }
    }

    #[test]
    fn preflight_refuses_every_answer_but_the_target_and_warns_when_unchecked() {
        let target = Some("1-31".to_string());
        let result = preflight(&[
            (
                check(AdmissionAnswer::Injected {
                    revision: "1-31".into(),
                }),
                target.clone(),
            ),
            (check(AdmissionAnswer::NoSidecar), target.clone()),
            (
                check(AdmissionAnswer::Injected {
                    revision: "1-30".into(),
                }),
                target.clone(),
            ),
            (
                check(AdmissionAnswer::WebhookFailed {
                    message: "admission webhook \"x\" denied the request: no".into(),
                }),
                target.clone(),
            ),
            (
                check(AdmissionAnswer::Forbidden {
                    message: "pods is forbidden".into(),
                }),
                target.clone(),
            ),
        ]);
        let reasons: Vec<Option<&str>> = result
            .verdicts
            .iter()
            .map(|v| v.refusal.as_deref())
            .collect();
        assert_eq!(reasons[0], None);
        assert_eq!(
            reasons[1],
            Some("its new pods would get no sidecar, not a sidecar of 1-31")
        );
        assert!(reasons[2].is_some_and(|r| r.contains("a sidecar of 1-30")));
        assert!(reasons[3].is_some_and(|r| r.contains("denied the request: no")));
        assert_eq!(reasons[4], None, "a 403 is not a refusal…");
        assert_eq!(result.warnings.len(), 1, "…but a warning");
        assert_eq!(
            (
                result.warnings[0].verb.as_str(),
                result.warnings[0].resource.as_str()
            ),
            ("create", "pods")
        );
        assert!(!result.all_passed());
    }
}
