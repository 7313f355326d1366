//! Carries out a prune plan: looks at each planned object first (kind by discovery, ownership
//! checked on the live object), then deletes in the plan's order, stopping at the first
//! failure with a report of what was and was not deleted. A re-run plans from what is left.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Preconditions, PropagationPolicy,
};
use kube::discovery::Scope;
use serde::Serialize;

use super::helm;
use crate::client::Cluster;
use crate::error::{Action, Refusal, RevError};
use crate::flags::{ConnectionFlags, DryRun};
use crate::plan::prune::{
    ObjectKey, PrunePlan, PruneStep, ReleaseRemoval, UninstallMethod, live_object_not_owned,
};

/// What was found for a planned object just before acting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "detail")]
pub enum LiveState {
    /// Exists and is proven the revision's: will be deleted (uid precondition).
    Present,
    /// Already gone (an earlier, interrupted run).
    Gone,
    /// Exists but is not proven the revision's: left alone, with why.
    NotOwned(String),
    /// The API server does not serve this kind: no such object can exist.
    NotServed,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectedObject {
    pub key: ObjectKey,
    pub state: LiveState,
    #[serde(skip)]
    resource: Option<ApiResource>,
    #[serde(skip)]
    namespaced: bool,
    #[serde(skip)]
    uid: Option<String>,
}

impl InspectedObject {
    fn effective_namespace(&self) -> Option<&str> {
        if self.namespaced {
            self.key.namespace.as_deref()
        } else {
            None
        }
    }
}

/// The plan as found live: one entry per step, objects in the plan's order, and each Helm
/// release's record Secrets.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    pub steps: Vec<Vec<InspectedObject>>,
    /// Record Secret names per step (Helm releases only).
    pub records: Vec<Vec<String>>,
    #[serde(skip)]
    record_secrets: Vec<Vec<Secret>>,
}

impl Inspection {
    pub fn to_delete(&self) -> usize {
        self.steps
            .iter()
            .flatten()
            .filter(|o| o.state == LiveState::Present)
            .count()
    }
}

type Discovered = Option<(ApiResource, bool)>;

async fn discover(
    cluster: &Cluster,
    cache: &mut HashMap<(String, String), Discovered>,
    key: &ObjectKey,
) -> Result<Discovered, RevError> {
    let cache_key = (key.api_version.clone(), key.kind.clone());
    if let Some(found) = cache.get(&cache_key) {
        return Ok(found.clone());
    }
    let (group, version) = key.group_version();
    let gvk = GroupVersionKind::gvk(group, version, &key.kind);
    let found = match kube::discovery::pinned_kind(&cluster.client, &gvk).await {
        Ok((resource, caps)) => Some((resource, caps.scope == Scope::Namespaced)),
        Err(kube::Error::Api(status)) if status.code == 404 => None,
        Err(kube::Error::Discovery(_)) => None,
        Err(e) => {
            return Err(cluster.error(Action::new(
                "get",
                &format!("discovery of {}", key.api_version),
            ))(e));
        }
    };
    cache.insert(cache_key, found.clone());
    Ok(found)
}

fn resource_name(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

fn dynamic_api(cluster: &Cluster, resource: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(cluster.client.clone(), ns, resource),
        None => Api::all_with(cluster.client.clone(), resource),
    }
}

/// Looks at every planned object: reads only, so a refused or dry-run plan can show it.
pub async fn inspect(cluster: &Cluster, plan: &PrunePlan) -> Result<Inspection, RevError> {
    let mut cache = HashMap::new();
    let mut steps = Vec::new();
    let mut records = Vec::new();
    let mut record_secrets = Vec::new();
    for step in &plan.steps {
        let mut objects = Vec::new();
        for key in step.objects() {
            let mut inspected = InspectedObject {
                key: key.clone(),
                state: LiveState::NotServed,
                resource: None,
                namespaced: key.namespace.is_some(),
                uid: None,
            };
            if let Some((resource, namespaced)) = discover(cluster, &mut cache, key).await? {
                inspected.namespaced = namespaced;
                if namespaced && inspected.key.namespace.is_none() {
                    // A namespaced kind the plan did not know: Helm puts it in the release's
                    // namespace; the plan only lists releases' objects with theirs.
                    if let PruneStep::HelmRelease(r) = step {
                        inspected.key.namespace = Some(r.namespace.clone());
                    }
                }
                let ns = inspected.effective_namespace().map(str::to_string);
                let api = dynamic_api(cluster, &resource, ns.as_deref());
                let live = api.get_opt(&key.name).await.map_err(cluster.error(
                    Action::new("get", &resource_name(&resource)).object(&key.name, ns.as_deref()),
                ))?;
                inspected.state = match live {
                    None => LiveState::Gone,
                    Some(obj) => {
                        let labels = obj.metadata.labels.clone().unwrap_or_default();
                        let annotations = obj.metadata.annotations.clone().unwrap_or_default();
                        match live_object_not_owned(step, &plan.revision, &labels, &annotations) {
                            Some(why) => LiveState::NotOwned(why),
                            None => {
                                inspected.uid = obj.metadata.uid.clone();
                                LiveState::Present
                            }
                        }
                    }
                };
                inspected.resource = Some(resource);
            }
            objects.push(inspected);
        }
        let secrets = match step {
            PruneStep::HelmRelease(r) => helm::list_records(cluster, &r.namespace, &r.name).await?,
            PruneStep::Objects(_) => Vec::new(),
        };
        records.push(
            secrets
                .iter()
                .filter_map(|s| s.metadata.name.clone())
                .collect(),
        );
        record_secrets.push(secrets);
        steps.push(objects);
    }
    Ok(Inspection {
        steps,
        records,
        record_secrets,
    })
}

#[derive(Debug, Clone)]
pub struct PruneSettings {
    pub dry_run: DryRun,
    /// How long to wait for the deleted workloads' pods to go (and for `helm uninstall`).
    pub timeout: Duration,
    /// For the `helm` binary, which must reach the same cluster as the same user.
    pub connection: ConnectionFlags,
}

/// What happened, step by step; on failure, what was not done.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    pub revision: String,
    pub deleted: Vec<String>,
    /// The same objects, for `-o name`.
    #[serde(skip)]
    pub deleted_keys: Vec<ObjectKey>,
    pub already_gone: Vec<String>,
    pub left_alone: Vec<String>,
    pub releases_uninstalled: Vec<String>,
    pub not_done: Vec<String>,
    #[serde(skip)]
    pub failure: Option<RevError>,
    pub pods_gone_after: Option<Duration>,
    /// Sent with dryRun=All: nothing was stored.
    pub server_dry_run: bool,
    /// Read again afterwards: nothing of the revision is left.
    pub gone: bool,
    /// What the mesh runs afterwards, as shown to people.
    #[serde(skip)]
    pub mesh_after: Option<String>,
}

/// Carries out the plan, step by step: stops at the first error (or between steps when `stop`
/// says so) and reports the rest as not done. A refused plan never reaches the API.
pub async fn execute(
    cluster: &Cluster,
    plan: &PrunePlan,
    inspection: &Inspection,
    settings: &PruneSettings,
    progress: &dyn Fn(&str),
    stop: &dyn Fn() -> bool,
) -> PruneReport {
    let mut pruner = Pruner {
        cluster,
        settings,
        progress,
        report: PruneReport {
            revision: plan.revision.clone(),
            server_dry_run: settings.dry_run == DryRun::Server,
            ..Default::default()
        },
        workloads: Vec::new(),
    };
    if plan.refused() {
        pruner.report.failure = Some(RevError::Refused(Refusal::Blocked {
            blockers: plan.blockers.len(),
            forceable: plan.blockers.iter().all(|b| b.forceable),
        }));
        return pruner.report;
    }
    for (index, step) in plan.steps.iter().enumerate() {
        let result = if stop() {
            Err(RevError::Interrupted)
        } else {
            pruner.step(step, index, inspection).await
        };
        if let Err(err) = result {
            pruner.not_done(plan, inspection, index);
            pruner.report.failure = Some(err);
            return pruner.report;
        }
    }
    pruner.wait_for_workloads().await;
    pruner.report
}

/// One prune run's state: what was deleted so far, and the workloads to wait for.
struct Pruner<'a> {
    cluster: &'a Cluster,
    settings: &'a PruneSettings,
    progress: &'a dyn Fn(&str),
    report: PruneReport,
    workloads: Vec<DeletedWorkload>,
}

impl Pruner<'_> {
    fn suffix(&self) -> &'static str {
        if self.settings.dry_run == DryRun::Server {
            " (server dry run)"
        } else {
            ""
        }
    }

    async fn step(
        &mut self,
        step: &PruneStep,
        index: usize,
        inspection: &Inspection,
    ) -> Result<(), RevError> {
        let objects = &inspection.steps[index];
        let PruneStep::HelmRelease(release) = step else {
            return self.delete_objects(objects).await;
        };
        match &release.method {
            UninstallMethod::HelmBinary { path } => {
                self.helm_binary(release, path, objects).await?
            }
            UninstallMethod::Native => {
                // Helm's order: mark uninstalling → delete the objects → purge the records.
                let records = &inspection.record_secrets[index];
                if let Some(newest) = records.last() {
                    helm::mark_uninstalling(self.cluster, newest, self.settings.dry_run).await?;
                }
                self.delete_objects(objects).await?;
                helm::delete_records(self.cluster, records, self.settings.dry_run).await?;
            }
        }
        let shown = format!("{}/{}", release.namespace, release.name);
        (self.progress)(&format!("release {shown} uninstalled{}", self.suffix()));
        self.report.releases_uninstalled.push(shown);
        Ok(())
    }

    /// A release with delete hooks goes through `helm uninstall`, which deletes everything its
    /// manifest lists: refused when some of that is no longer the release's.
    async fn helm_binary(
        &mut self,
        release: &ReleaseRemoval,
        path: &str,
        objects: &[InspectedObject],
    ) -> Result<(), RevError> {
        if objects
            .iter()
            .any(|o| matches!(o.state, LiveState::NotOwned(_)))
        {
            return Err(RevError::Refused(Refusal::ByHand(format!(
                "helm uninstall {} would also delete objects this release no longer owns (see the plan): uninstall it by hand after checking them",
                release.name
            ))));
        }
        (self.progress)(&format!(
            "running helm uninstall {} -n {} (it has delete hooks)",
            release.name, release.namespace
        ));
        helm::run_helm_uninstall(
            std::path::Path::new(path),
            &release.name,
            &release.namespace,
            &self.settings.connection,
            self.settings.timeout,
            self.settings.dry_run,
        )
        .await?;
        self.report
            .deleted
            .extend(objects.iter().map(|o| o.key.display()));
        Ok(())
    }

    async fn delete_objects(&mut self, objects: &[InspectedObject]) -> Result<(), RevError> {
        for object in objects {
            let shown = object.key.display();
            match (&object.state, &object.resource) {
                (LiveState::Present, Some(resource)) => self.delete(object, resource).await?,
                (LiveState::NotOwned(why), _) => {
                    self.report.left_alone.push(format!("{shown}: {why}"))
                }
                _ => self.report.already_gone.push(shown),
            }
        }
        Ok(())
    }

    /// Deletes one object, guarded by the uid it was checked at.
    async fn delete(
        &mut self,
        object: &InspectedObject,
        resource: &ApiResource,
    ) -> Result<(), RevError> {
        let shown = object.key.display();
        let ns = object.effective_namespace();
        let api = dynamic_api(self.cluster, resource, ns);
        let mut params = super::delete_params(self.settings.dry_run);
        params.preconditions = object.uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        });
        if object.key.is_workload() {
            // Foreground: the workload stays (with its foregroundDeletion finalizer) until the
            // garbage collector has removed its ReplicaSets and pods, so waiting for it to be
            // gone is waiting for its pods to be gone.
            params.propagation_policy = Some(PropagationPolicy::Foreground);
        }
        match api.delete(&object.key.name, &params).await {
            Ok(_) => {
                (self.progress)(&format!("deleted {shown}{}", self.suffix()));
                if object.key.is_workload() {
                    self.workloads.push(DeletedWorkload {
                        api,
                        name: object.key.name.clone(),
                        uid: object.uid.clone(),
                        shown: shown.clone(),
                    });
                }
                self.report.deleted.push(shown);
                self.report.deleted_keys.push(object.key.clone());
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                self.report.already_gone.push(shown)
            }
            // The uid precondition failed: the object was replaced since it was checked.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                self.report.left_alone.push(format!(
                    "{shown}: replaced since it was checked ({}); re-run to re-check it",
                    status.message
                ))
            }
            Err(e) => {
                let action =
                    Action::new("delete", &resource_name(resource)).object(&object.key.name, ns);
                return Err(self.cluster.error(action)(e));
            }
        }
        Ok(())
    }

    /// After a failure at step `index`: everything from there on, as not done.
    fn not_done(&mut self, plan: &PrunePlan, inspection: &Inspection, index: usize) {
        for o in inspection.steps[index..].iter().flatten() {
            let shown = o.key.display();
            if o.state == LiveState::Present && !self.report.deleted.contains(&shown) {
                self.report.not_done.push(shown);
            }
        }
        for later in &plan.steps[index..] {
            if let PruneStep::HelmRelease(r) = later {
                self.report.not_done.push(format!(
                    "Helm release {}/{} (its records)",
                    r.namespace, r.name
                ));
            }
        }
    }

    async fn wait_for_workloads(&mut self) {
        if self.settings.dry_run != DryRun::None || self.workloads.is_empty() {
            return;
        }
        match wait_for_workloads_gone(&self.workloads, self.settings.timeout, self.progress).await {
            Ok(took) => self.report.pods_gone_after = Some(took),
            Err(err) => self.report.failure = Some(err),
        }
    }
}

struct DeletedWorkload {
    api: Api<DynamicObject>,
    name: String,
    uid: Option<String>,
    shown: String,
}

/// Waits until every deleted workload is gone: deleted in the foreground, each disappears only
/// once the garbage collector removed its pods.
async fn wait_for_workloads_gone(
    workloads: &[DeletedWorkload],
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<Duration, RevError> {
    let started = Instant::now();
    progress(&format!(
        "waiting up to {}s for the deleted workloads' pods to go",
        timeout.as_secs()
    ));
    let mut remaining = Vec::new();
    for w in workloads {
        let left = timeout.saturating_sub(started.elapsed());
        let gone = super::wait_until(w.api.clone(), &w.name, left, |obj| {
            obj.is_none_or(|o| o.metadata.uid != w.uid)
        })
        .await;
        if !gone {
            remaining.push(w.shown.clone());
        }
    }
    if remaining.is_empty() {
        Ok(started.elapsed())
    } else {
        Err(RevError::PodsStillTerminating {
            seconds: timeout.as_secs(),
            workloads: remaining,
        })
    }
}
