//! Carrying out relabel plans: one merge patch per namespace guarded by the resourceVersion it
//! was planned from; on 409 Conflict the namespace is re-read and re-planned (bounded, with
//! backoff), so a concurrent edit is never overwritten. Tags are replaced the same way.

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::Serialize;

use super::retry_on_conflict;
use crate::client::Cluster;
use crate::error::{Action, RevError};
use crate::plan::relabel::{
    ChangeKind, NamespaceChange, TagPlan, relabel_patch, replan_change, retarget_default_validator,
    retarget_tag_service, retarget_tag_webhooks,
};
use crate::snapshot::{NamespaceInfo, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

fn fresh_info(ns: Namespace) -> Option<NamespaceInfo> {
    let mut s = Snapshot::default();
    s.ingest_namespace(ns);
    s.namespaces.pop()
}

fn namespace_action(verb: &str, name: &str) -> Action {
    Action::new(verb, "namespaces").object(name, None)
}

/// Changes one namespace. A conflict means someone changed it since it was read: re-read,
/// re-plan from what is there now (it may need nothing any more), try again.
async fn change_one(
    cluster: &Cluster,
    change: &NamespaceChange,
    params: &PatchParams,
) -> Result<ChangeResult, RevError> {
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let name = change.namespace.as_str();
    let mut current = change.clone();
    retry_on_conflict(namespace_action("patch", name), async |attempt| {
        if attempt > 0 {
            let fresh = api
                .get(name)
                .await
                .map_err(cluster.error(namespace_action("get", name)))?;
            let replanned = match fresh_info(fresh) {
                Some(fresh) => replan_change(&current, &fresh)?,
                None => None,
            };
            match replanned {
                Some(next) => current = next,
                None => return Ok(ChangeResult::Unchanged),
            }
        }
        api.patch(name, params, &Patch::Merge(relabel_patch(&current)))
            .await
            .map_err(cluster.error(namespace_action("patch", name)))?;
        Ok(match (params.dry_run, current.kind) {
            (true, _) => ChangeResult::ServerDryRun,
            (false, ChangeKind::Relabel) => ChangeResult::Relabelled,
            (false, ChangeKind::Restore) => ChangeResult::Restored,
        })
    })
    .await
}

/// Applies the changes in order, stopping at the first failure or when `stop` says so;
/// returns what was done with the error that stopped it.
pub async fn apply(
    cluster: &Cluster,
    changes: &[NamespaceChange],
    params: &PatchParams,
    stop: impl Fn() -> bool,
) -> (Vec<ChangeOutcome>, Option<RevError>) {
    let mut done = Vec::new();
    for change in changes {
        if stop() {
            break;
        }
        match change_one(cluster, change, params).await {
            Ok(result) => done.push(ChangeOutcome {
                namespace: change.namespace.clone(),
                result,
            }),
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

fn webhook_action(verb: &str, resource: &str, name: &str) -> Action {
    Action::new(verb, resource).object(name, None)
}

/// Repoints a tag: its MutatingWebhookConfiguration (and, for `default`,
/// `istiod-default-validator`) replaced with the retargeted object, guarded by the
/// resourceVersion it was read at; a concurrent edit (409) means read and transform again.
/// Returns the objects changed, as `kind/name`.
pub async fn apply_tag(
    cluster: &Cluster,
    plan: &TagPlan,
    params: &PostParams,
) -> Result<Vec<String>, RevError> {
    const MWC: &str = "mutatingwebhookconfigurations.admissionregistration.k8s.io";
    const VWC: &str = "validatingwebhookconfigurations.admissionregistration.k8s.io";
    let mwcs: Api<MutatingWebhookConfiguration> = Api::all(cluster.client.clone());
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(cluster.client.clone());
    let mut changed = Vec::new();
    retry_on_conflict(webhook_action("update", MWC, &plan.webhook), async |_| {
        let tag = mwcs
            .get(&plan.webhook)
            .await
            .map_err(cluster.error(webhook_action("get", MWC, &plan.webhook)))?;
        let injector = mwcs
            .get(&plan.injector)
            .await
            .map_err(cluster.error(webhook_action("get", MWC, &plan.injector)))?;
        let desired = retarget_tag_webhooks(&tag, &injector, &plan.to_revision)?;
        mwcs.replace(&plan.webhook, params, &desired)
            .await
            .map_err(cluster.error(webhook_action("update", MWC, &plan.webhook)))?;
        Ok(())
    })
    .await?;
    changed.push(format!("mutatingwebhookconfiguration/{}", plan.webhook));
    // The tag's Service: istiod's tag watcher reads it with the webhooks (Istio >= 1.28).
    if let Some((namespace, name)) = &plan.service {
        let services: Api<Service> = Api::namespaced(cluster.client.clone(), namespace);
        let action = |verb: &str| Action::new(verb, "services").object(name, Some(namespace));
        retry_on_conflict(action("update"), async |_| {
            let current = services
                .get(name)
                .await
                .map_err(cluster.error(action("get")))?;
            let desired = retarget_tag_service(&current, &plan.to_revision)?;
            services
                .replace(name, params, &desired)
                .await
                .map_err(cluster.error(action("update")))?;
            Ok(())
        })
        .await?;
        changed.push(format!("service/{name}"));
    }
    if let Some((default_validator, revision_validator)) = &plan.validator {
        retry_on_conflict(
            webhook_action("update", VWC, default_validator),
            async |_| {
                let current = vwcs
                    .get(default_validator)
                    .await
                    .map_err(cluster.error(webhook_action("get", VWC, default_validator)))?;
                let source = vwcs
                    .get(revision_validator)
                    .await
                    .map_err(cluster.error(webhook_action("get", VWC, revision_validator)))?;
                let desired = retarget_default_validator(&current, &source, &plan.to_revision)?;
                vwcs.replace(default_validator, params, &desired)
                    .await
                    .map_err(cluster.error(webhook_action("update", VWC, default_validator)))?;
                Ok(())
            },
        )
        .await?;
        changed.push(format!(
            "validatingwebhookconfiguration/{default_validator}"
        ));
    }
    Ok(changed)
}
