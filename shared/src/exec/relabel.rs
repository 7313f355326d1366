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
