//! Carrying out a relabel plan: one guarded merge patch per namespace; on 409 Conflict the
//! namespace is re-read and re-planned (bounded), so a concurrent edit is never overwritten.

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, Patch};
use serde::Serialize;

use crate::error::RevError;
use crate::flags::DryRun;
use crate::plan::relabel::{NamespaceChange, relabel_patch, replan_change, undo_patch};
use crate::snapshot::Snapshot;

/// Re-reads after a conflict at most this many times before giving up on a namespace.
const MAX_CONFLICT_RETRIES: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeResult {
    Relabelled,
    /// Sent with dryRun=All: admitted and validated, not stored.
    ServerDryRun,
    /// Found already on target when re-read after a conflict.
    Unchanged,
    Restored,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeOutcome {
    pub namespace: String,
    pub result: ChangeResult,
}

fn fresh_info(ns: Namespace) -> crate::snapshot::NamespaceInfo {
    let mut s = Snapshot::default();
    s.ingest_namespace(ns);
    s.namespaces.remove(0)
}

/// Applies the changes in order; stops at the first failure, returning what was done so far
/// with the error.
pub async fn apply(
    client: &Client,
    changes: &[NamespaceChange],
    target: &str,
    params: &kube::api::PatchParams,
    dry_run: DryRun,
) -> (Vec<ChangeOutcome>, Option<RevError>) {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut done = Vec::new();
    for change in changes {
        let mut current = change.clone();
        let mut attempt = 0;
        loop {
            match api
                .patch(
                    &current.namespace,
                    params,
                    &Patch::Merge(relabel_patch(&current)),
                )
                .await
            {
                Ok(_) => {
                    done.push(ChangeOutcome {
                        namespace: current.namespace.clone(),
                        result: if dry_run == DryRun::Server {
                            ChangeResult::ServerDryRun
                        } else {
                            ChangeResult::Relabelled
                        },
                    });
                    break;
                }
                Err(kube::Error::Api(status))
                    if status.code == 409 && attempt < MAX_CONFLICT_RETRIES =>
                {
                    attempt += 1;
                    let fresh = match api.get(&current.namespace).await {
                        Ok(ns) => fresh_info(ns),
                        Err(e) => {
                            return (
                                done,
                                Some(RevError::from_kube(
                                    e,
                                    "get",
                                    "namespaces",
                                    &format!(" ({})", current.namespace),
                                )),
                            );
                        }
                    };
                    match replan_change(&current, &fresh, target) {
                        Some(next) => current = next,
                        None => {
                            done.push(ChangeOutcome {
                                namespace: current.namespace.clone(),
                                result: ChangeResult::Unchanged,
                            });
                            break;
                        }
                    }
                }
                Err(e) => {
                    return (
                        done,
                        Some(RevError::from_kube(
                            e,
                            "patch",
                            "namespaces",
                            &format!(" (namespace {})", current.namespace),
                        )),
                    );
                }
            }
        }
    }
    (done, None)
}

/// Restores the labels recorded by a previous relabel, namespace by namespace.
pub async fn undo(
    client: &Client,
    namespaces: &[crate::snapshot::NamespaceInfo],
    params: &kube::api::PatchParams,
    dry_run: DryRun,
) -> (Vec<ChangeOutcome>, Option<RevError>) {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut done = Vec::new();
    for ns in namespaces {
        let patch = match undo_patch(ns) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(message) => return (done, Some(RevError::Failed(message))),
        };
        if let Err(e) = api.patch(&ns.name, params, &Patch::Merge(patch)).await {
            let err = match e {
                kube::Error::Api(s) if s.code == 409 => RevError::Failed(format!(
                    "namespace {} changed since it was read; nothing was restored there. Re-run the undo.",
                    ns.name
                )),
                other => RevError::from_kube(
                    other,
                    "patch",
                    "namespaces",
                    &format!(" (namespace {})", ns.name),
                ),
            };
            return (done, Some(err));
        }
        done.push(ChangeOutcome {
            namespace: ns.name.clone(),
            result: if dry_run == DryRun::Server {
                ChangeResult::ServerDryRun
            } else {
                ChangeResult::Restored
            },
        });
    }
    (done, None)
}

/// Repoints a tag: its MutatingWebhookConfiguration (and, for `default`,
/// `istiod-default-validator`) replaced with the retargeted object, guarded by the
/// resourceVersion it was read at; a concurrent edit (409) means read and transform again.
pub async fn apply_tag(
    client: &Client,
    plan: &crate::plan::relabel::TagPlan,
    params: &kube::api::PostParams,
) -> Result<Vec<String>, RevError> {
    use crate::plan::relabel::{retarget_default_validator, retarget_tag_webhooks};
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
    };
    let mwcs: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let forbidden = |verb: &str, resource: &str, name: &str| {
        let (verb, resource, name) = (verb.to_string(), resource.to_string(), name.to_string());
        move |e| RevError::from_kube(e, &verb, &resource, &format!(" ({name})"))
    };
    let mut changed = Vec::new();
    for attempt in 0..=MAX_CONFLICT_RETRIES {
        let tag = mwcs.get(&plan.webhook).await.map_err(forbidden(
            "get",
            "mutatingwebhookconfigurations",
            &plan.webhook,
        ))?;
        let injector = mwcs.get(&plan.injector).await.map_err(forbidden(
            "get",
            "mutatingwebhookconfigurations",
            &plan.injector,
        ))?;
        let desired =
            retarget_tag_webhooks(&tag, &injector, &plan.to_revision).map_err(RevError::Failed)?;
        match mwcs.replace(&plan.webhook, params, &desired).await {
            Ok(_) => {
                changed.push(format!("mutatingwebhookconfiguration/{}", plan.webhook));
                break;
            }
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < MAX_CONFLICT_RETRIES => continue,
            Err(e) => {
                return Err(forbidden(
                    "update",
                    "mutatingwebhookconfigurations",
                    &plan.webhook,
                )(e));
            }
        }
    }
    if let Some((default_validator, revision_validator)) = &plan.validator {
        for attempt in 0..=MAX_CONFLICT_RETRIES {
            let current = vwcs.get(default_validator).await.map_err(forbidden(
                "get",
                "validatingwebhookconfigurations",
                default_validator,
            ))?;
            let source = vwcs.get(revision_validator).await.map_err(forbidden(
                "get",
                "validatingwebhookconfigurations",
                revision_validator,
            ))?;
            let desired = retarget_default_validator(&current, &source, &plan.to_revision)
                .map_err(RevError::Failed)?;
            match vwcs.replace(default_validator, params, &desired).await {
                Ok(_) => {
                    changed.push(format!(
                        "validatingwebhookconfiguration/{default_validator}"
                    ));
                    break;
                }
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < MAX_CONFLICT_RETRIES => {
                    continue;
                }
                Err(e) => {
                    return Err(forbidden(
                        "update",
                        "validatingwebhookconfigurations",
                        default_validator,
                    )(e));
                }
            }
        }
    }
    Ok(changed)
}

/// What a relabel run did: the namespaces changed (or, under client dry-run, that would be),
/// and the error that stopped it, if any.
pub struct RelabelRun {
    pub changed: Vec<ChangeOutcome>,
    pub error: Option<RevError>,
}

/// Carries out a relabel plan the way every mutating command does: a refused plan sends
/// nothing; client dry-run sends nothing; otherwise confirm (unless server dry-run), then patch.
pub async fn execute(
    client: &Client,
    plan: &crate::plan::relabel::RelabelPlan,
    force: bool,
    field_manager: &str,
    dry_run: DryRun,
    confirm: impl FnOnce(&str) -> Result<(), RevError>,
) -> Result<RelabelRun, RevError> {
    if plan.is_refused(force) {
        return Err(RevError::Refused {
            reason: format!(
                "{} preflight check(s) failed (listed above); nothing was changed. --force overrides them.",
                plan.blockers.len()
            ),
        });
    }
    if plan.changes.is_empty() {
        return Ok(RelabelRun {
            changed: Vec::new(),
            error: None,
        });
    }
    if dry_run == DryRun::Client {
        let changed = plan
            .changes
            .iter()
            .map(|c| ChangeOutcome {
                namespace: c.namespace.clone(),
                result: ChangeResult::Relabelled,
            })
            .collect();
        return Ok(RelabelRun {
            changed,
            error: None,
        });
    }
    if dry_run == DryRun::None {
        confirm(&format!("Relabel {} namespace(s)?", plan.changes.len()))?;
    }
    let params = crate::exec::patch_params(field_manager, dry_run);
    let (changed, error) = apply(client, &plan.changes, &plan.target, &params, dry_run).await;
    Ok(RelabelRun { changed, error })
}
