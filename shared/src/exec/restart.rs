//! Carrying out a restart plan: restart a workload as `kubectl rollout restart` does, watch it
//! until kubectl would call the rollout complete (no sleeping), then check every new pod carries
//! a sidecar of the target revision. One workload at a time unless asked otherwise.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Resource;
use kube::api::{Api, ListParams, Patch, PatchParams, Preconditions};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::analysis::ControlPlane;
use crate::analysis::rollout::{RolloutState, rollout_state};
use crate::analysis::sidecar::{SidecarRevision, sidecar_revision};
use crate::client::Cluster;
use crate::error::{Action, RevError};
use crate::flags::DryRun;
use crate::keys;
use crate::plan::restart::{RestartItem, RestartMethod};
use crate::probe::{GateBreach, Probe, WindowFigures};
use crate::snapshot::ingest::LIVE_POD_FIELDS;
use crate::snapshot::{Snapshot, WorkloadInfo, WorkloadKind};

#[derive(Debug, Clone)]
pub struct RestartOptions {
    pub field_manager: String,
    pub dry_run: DryRun,
    /// Per workload.
    pub timeout: Duration,
    /// Between workloads.
    pub pause: Option<Duration>,
    /// How many workloads may roll at once.
    pub max_parallel: usize,
    /// Go on with the next workload after a failure.
    pub continue_on_error: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartResult {
    Restarted,
    ServerDryRun,
    RolloutFailed,
    TimedOut,
    VerificationFailed,
    Error,
    /// Not started: stopped by an earlier failure or Ctrl-C.
    NotRun,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadOutcome {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub result: RestartResult,
    pub rollout_seconds: f64,
    pub pods_verified: usize,
    /// Pods a StatefulSet's partition kept on another sidecar than the target: still drifted,
    /// by design of the partition (not a failure).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_drifted: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why a failed or timed-out rollout did not progress: the cluster's newest Warning event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<super::diagnose::RolloutEvent>,
    /// How to go back, for failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
    /// When the restart was sent and when the rollout was seen complete (RFC 3339), so runs can
    /// be checked for overlap.
    pub started_at: String,
    pub finished_at: String,
    /// `--probe`: the figures of the requests sent while it rolled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<WindowFigures>,
    /// `--probe`: the gates those figures breach; the run stops after this workload unless
    /// `--continue-on-error`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gate_breaches: Vec<GateBreach>,
}

/// What the executor reports while it works (a bar on a terminal, lines otherwise).
pub trait RestartProgress: Send + Sync {
    fn started(&self, item: &RestartItem);
    fn waiting(&self, item: &RestartItem, ready: i32, desired: i32, detail: &str);
    fn finished(&self, outcome: &WorkloadOutcome);
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

fn to_info<K>(kind: WorkloadKind, obj: K) -> Option<WorkloadInfo>
where
    K: Clone + Into<AnyWorkload>,
{
    let mut s = Snapshot::default();
    match obj.into() {
        AnyWorkload::Deployment(d) => s.ingest_deployment(*d),
        AnyWorkload::StatefulSet(st) => s.ingest_stateful_set(*st),
        AnyWorkload::DaemonSet(ds) => s.ingest_daemon_set(*ds),
    }
    s.workloads.pop().filter(|w| w.kind == kind)
}

/// The three restartable kinds, to share one code path.
pub enum AnyWorkload {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    DaemonSet(Box<DaemonSet>),
}
impl From<Deployment> for AnyWorkload {
    fn from(d: Deployment) -> Self {
        AnyWorkload::Deployment(Box::new(d))
    }
}
impl From<StatefulSet> for AnyWorkload {
    fn from(s: StatefulSet) -> Self {
        AnyWorkload::StatefulSet(Box::new(s))
    }
}
impl From<DaemonSet> for AnyWorkload {
    fn from(d: DaemonSet) -> Self {
        AnyWorkload::DaemonSet(Box::new(d))
    }
}

fn selector_of(obj: &AnyWorkload) -> Option<LabelSelector> {
    match obj {
        AnyWorkload::Deployment(d) => d.spec.as_ref().map(|s| s.selector.clone()),
        AnyWorkload::StatefulSet(s) => s.spec.as_ref().map(|s| s.selector.clone()),
        AnyWorkload::DaemonSet(d) => d.spec.as_ref().map(|s| s.selector.clone()),
    }
}

/// `matchLabels` + `matchExpressions` as a label selector string for a list call.
fn selector_string(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

/// The restart patch of `kubectl rollout restart`.
pub fn restart_patch(at: &str) -> serde_json::Value {
    json!({"spec": {"template": {"metadata": {"annotations": {keys::RESTARTED_AT: at}}}}})
}

/// What restarting and watching a workload needs of its type (Deployment, StatefulSet,
/// DaemonSet): one name for the bounds every rollout helper shares.
trait RolloutWorkload:
    Resource<DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Serialize
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
    + Into<AnyWorkload>
{
}

impl<K> RolloutWorkload for K where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
        + Into<AnyWorkload>
{
}

/// Restarts one workload and waits for its rollout; returns the selector of its pods.
async fn restart_and_wait<K>(
    cluster: &Cluster,
    api: Api<K>,
    item: &RestartItem,
    opts: &RestartOptions,
    progress: &dyn RestartProgress,
) -> Result<Rolled, RevError>
where
    K: RolloutWorkload,
{
    let Some(rolling) = start_rollout(cluster, &api, item, opts, progress).await? else {
        return Ok((RestartResult::ServerDryRun, None, String::new()));
    };
    let generation = rolling.meta().generation;
    let selector = selector_of(&rolling.into());
    let (result, detail) = wait_for_rollout(api, item, generation, opts, progress).await;
    Ok((result, selector, detail))
}

/// Patches the restart annotation, or finds a rollout already under way (a run stopped by
/// Ctrl-C, or kubectl's own), which replaces every pod with one the webhooks inject now: that
/// one is waited for rather than restarted a second time. `None` under `--dry-run=server`.
async fn start_rollout<K>(
    cluster: &Cluster,
    api: &Api<K>,
    item: &RestartItem,
    opts: &RestartOptions,
    progress: &dyn RestartProgress,
) -> Result<Option<K>, RevError>
where
    K: RolloutWorkload,
{
    let resource = format!("{}s.apps", item.kind.resource());
    let action = Action::new("patch", &resource).object(&item.name, Some(&item.namespace));
    let mut params = PatchParams {
        field_manager: Some(opts.field_manager.clone()),
        ..Default::default()
    };
    if opts.dry_run == DryRun::Server {
        params = params.dry_run();
    }
    let current = api.get(&item.name).await.map_err(
        cluster.error(Action::new("get", &resource).object(&item.name, Some(&item.namespace))),
    )?;
    let under_way = opts.dry_run == DryRun::None
        && to_info(item.kind, current.clone()).is_some_and(|info| {
            matches!(
                rollout_state(item.kind, info.generation, &info.status, false),
                RolloutState::Progressing(_)
            )
        });
    if under_way {
        progress.waiting(item, 0, 0, "a rollout is already under way: waiting for it");
        return Ok(Some(current));
    }
    let patch = Patch::Merge(restart_patch(&now_rfc3339()));
    let patched = api
        .patch(&item.name, &params, &patch)
        .await
        .map_err(cluster.error(action))?;
    Ok((opts.dry_run != DryRun::Server).then_some(patched))
}

/// Waits until the rollout of `generation` completes or fails. Only --timeout or a real
/// rollout failure ends the wait: the watch resumes by itself after a dropped connection or a
/// watch error.
async fn wait_for_rollout<K>(
    api: Api<K>,
    item: &RestartItem,
    generation: Option<i64>,
    opts: &RestartOptions,
    progress: &dyn RestartProgress,
) -> (RestartResult, String)
where
    K: RolloutWorkload,
{
    let mut outcome: Option<(RestartResult, String)> = None;
    let finished = super::wait_until(api, &item.name, opts.timeout, |obj: Option<&K>| {
        let Some(info) = obj.cloned().and_then(|o| to_info(item.kind, o)) else {
            outcome = Some((RestartResult::Error, "the workload was deleted".into()));
            return true;
        };
        // The watch may first replay the object as it was before our patch.
        match rollout_state(
            item.kind,
            generation.max(info.generation),
            &info.status,
            false,
        ) {
            RolloutState::Complete => outcome = Some((RestartResult::Restarted, String::new())),
            RolloutState::Failed(why) => outcome = Some((RestartResult::RolloutFailed, why)),
            RolloutState::Progressing(detail) => {
                progress.waiting(item, info.status.ready, info.status.desired, &detail)
            }
        }
        outcome.is_some()
    })
    .await;
    match outcome {
        Some(done) if finished => done,
        _ => (
            RestartResult::TimedOut,
            format!(
                "rollout not complete after {}s (--timeout)",
                opts.timeout.as_secs()
            ),
        ),
    }
}

/// What a pod's sidecar is, by the same rules as the analysis (`None`: the pod has finished).
fn sidecar_of(pod: Pod, cp: &ControlPlane) -> Option<(String, SidecarRevision)> {
    let mut snapshot = Snapshot::default();
    snapshot.ingest_pod(pod);
    let pod = snapshot.pods.pop()?;
    Some((pod.name.clone(), sidecar_revision(&pod.sidecar, cp)))
}

/// Why a pod does not carry the target sidecar, if it does not.
fn sidecar_problem(pod: &str, actual: &SidecarRevision, target: Option<&str>) -> Option<String> {
    match (actual, target) {
        (SidecarRevision::Revision(r), Some(t)) if r == t => None,
        (SidecarRevision::None, None) => None,
        (SidecarRevision::None, Some(t)) => Some(format!(
            "pod {pod} has no sidecar: injection by {t} did not happen (check the namespace labels and the istio-sidecar-injector-{t} webhook)"
        )),
        (other, t) => Some(format!(
            "pod {pod} runs sidecar {} instead of {}",
            other.key(),
            t.unwrap_or("none")
        )),
    }
}

/// What verification found: pods on the target sidecar, problems, and the pods the partition
/// kept on another sidecar.
struct Verified {
    verified: usize,
    problems: Vec<String>,
    left_drifted: Vec<String>,
}

/// Every current pod of the workload must carry a sidecar of the target revision, except those
/// a StatefulSet partition keeps on their old template.
async fn verify_pods(
    cluster: &Cluster,
    item: &RestartItem,
    selector: &LabelSelector,
    cp: &ControlPlane,
) -> Result<Verified, RevError> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &item.namespace);
    let list = pods
        .list(
            &ListParams::default()
                .labels(&selector_string(selector))
                .fields(LIVE_POD_FIELDS),
        )
        .await
        .map_err(cluster.error(Action::new("list", "pods").in_namespace(&item.namespace)))?;
    let mut found = Verified {
        verified: 0,
        problems: Vec::new(),
        left_drifted: Vec::new(),
    };
    for pod in list.items {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some((name, actual)) = sidecar_of(pod, cp) else {
            continue;
        };
        match sidecar_problem(&name, &actual, item.target_revision.as_deref()) {
            None => found.verified += 1,
            Some(_) if item.held_back.contains(&name) => found.left_drifted.push(name),
            Some(problem) => found.problems.push(problem),
        }
    }
    Ok(found)
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn is_owned_by(pod: &Pod, owner_uid: &str) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == owner_uid)
}

/// The StatefulSet ordinal of a pod (`<name>-<ordinal>`), to delete in the controller's order.
fn ordinal(pod: &Pod) -> i64 {
    pod.metadata
        .name
        .as_deref()
        .and_then(|n| n.rsplit_once('-'))
        .and_then(|(_, o)| o.parse().ok())
        .unwrap_or(-1)
}

/// Watches the pods matching `params` until one satisfies `found`, or `timeout` passes. The
/// watch resumes after a dropped connection, like [`super::wait_until`].
async fn wait_for_pod(
    api: Api<Pod>,
    config: kube::runtime::watcher::Config,
    timeout: Duration,
    found: impl Fn(&Pod) -> bool,
) -> Option<Pod> {
    use kube::runtime::{WatchStreamExt, watcher};
    let mut pods = watcher(api, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let wait = async {
        while let Some(event) = pods.next().await {
            // The stream has already backed off after an error; it re-lists by itself.
            if let Ok(pod) = event
                && found(&pod)
            {
                return Some(pod);
            }
        }
        None
    };
    tokio::time::timeout(timeout, wait).await.ok().flatten()
}

/// OnDelete StatefulSet or DaemonSet: delete each pod not yet on the target sidecar, one at a
/// time, and wait for its replacement (a StatefulSet's keeps the name, a DaemonSet's lands on
/// the same node) to be Ready and injected by the target revision before the next one. The
/// first replacement without the right sidecar stops the run: the others keep serving.
async fn delete_pods_one_by_one(
    cluster: &Cluster,
    item: &RestartItem,
    owner: &OwnerPods,
    cp: &ControlPlane,
    opts: &RestartOptions,
    progress: &dyn RestartProgress,
) -> Result<(RestartResult, String), RevError> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &item.namespace);
    let labels = selector_string(&owner.selector);
    let (victims, known_uids) = pods_to_replace(cluster, &pods, &labels, item, owner, cp).await?;
    let total = victims.len() as i32;
    for (i, pod) in victims.iter().enumerate() {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut params = crate::exec::delete_params(opts.dry_run);
        // Never delete a replacement that took the name meanwhile.
        params.preconditions = Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        });
        pods.delete(&name, &params).await.map_err(
            cluster.error(Action::new("delete", "pods").object(&name, Some(&item.namespace))),
        )?;
        if opts.dry_run == DryRun::Server {
            continue;
        }
        let waiting = format!("waiting for the replacement of {name}");
        progress.waiting(item, i as i32, total, &waiting);
        let config = kube::runtime::watcher::Config::default().labels(&labels);
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let config = match (item.kind, node) {
            (WorkloadKind::StatefulSet, _) => config.fields(&format!("metadata.name={name}")),
            (_, Some(node)) => config.fields(&format!("spec.nodeName={node}")),
            (_, None) => config,
        };
        let replacement = wait_for_pod(pods.clone(), config, opts.timeout, |p| {
            is_owned_by(p, &owner.uid)
                && p.metadata
                    .uid
                    .as_ref()
                    .is_some_and(|uid| !known_uids.contains(uid))
                && p.metadata.deletion_timestamp.is_none()
                && is_ready(p)
        })
        .await;
        let Some(replacement) = replacement else {
            let why = format!(
                "no Ready replacement for pod {name} after {}s (--timeout)",
                opts.timeout.as_secs()
            );
            return Ok((RestartResult::TimedOut, why));
        };
        if let Some((new_name, actual)) = sidecar_of(replacement, cp)
            && let Some(problem) =
                sidecar_problem(&new_name, &actual, item.target_revision.as_deref())
        {
            return Ok((RestartResult::VerificationFailed, problem));
        }
    }
    if opts.dry_run == DryRun::Server {
        return Ok((RestartResult::ServerDryRun, String::new()));
    }
    Ok((RestartResult::Restarted, String::new()))
}

/// The workload's live pods that do not run the target sidecar, in the order to delete them
/// (a StatefulSet's own: highest ordinal first), and the uids of every pod seen now, so a
/// replacement is told from a pod that was already there.
async fn pods_to_replace(
    cluster: &Cluster,
    pods: &Api<Pod>,
    labels: &str,
    item: &RestartItem,
    owner: &OwnerPods,
    cp: &ControlPlane,
) -> Result<(Vec<Pod>, Vec<String>), RevError> {
    let params = ListParams::default().labels(labels).fields(LIVE_POD_FIELDS);
    let list = pods
        .list(&params)
        .await
        .map_err(cluster.error(Action::new("list", "pods").in_namespace(&item.namespace)))?;
    let known_uids: Vec<String> = list
        .items
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    let mut victims: Vec<Pod> = list
        .items
        .into_iter()
        .filter(|p| is_owned_by(p, &owner.uid) && p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            sidecar_of(p.clone(), cp).is_some_and(|(name, actual)| {
                sidecar_problem(&name, &actual, item.target_revision.as_deref()).is_some()
            })
        })
        .collect();
    match item.kind {
        WorkloadKind::StatefulSet => victims.sort_by_key(|p| std::cmp::Reverse(ordinal(p))),
        _ => victims.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name)),
    }
    Ok((victims, known_uids))
}

/// The pods of a workload: its selector, and its uid (the pods' controller owner reference).
struct OwnerPods {
    selector: LabelSelector,
    uid: String,
}

/// Reads a workload for its pod selector and uid.
async fn owner_pods<K>(cluster: &Cluster, item: &RestartItem) -> Result<OwnerPods, RevError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Into<AnyWorkload>,
    <K as Resource>::DynamicType: Default,
{
    let ns = &item.namespace;
    let resource = format!("{}s.apps", item.kind.resource());
    let obj = Api::<K>::namespaced(cluster.client.clone(), ns)
        .get(&item.name)
        .await
        .map_err(cluster.error(Action::new("get", &resource).object(&item.name, Some(ns))))?;
    let uid = obj.meta().uid.clone();
    let selector = selector_of(&obj.into());
    match (selector, uid) {
        (Some(selector), Some(uid)) => Ok(OwnerPods { selector, uid }),
        _ => Err(RevError::InvalidData {
            what: format!("{} {ns}/{}", item.kind.resource(), item.name),
            why: "it has no pod selector or uid".into(),
        }),
    }
}

pub fn undo_command(item: &RestartItem) -> String {
    format!(
        "kubectl rollout undo {}/{} -n {}",
        item.kind.resource(),
        item.name,
        item.namespace
    )
}

/// How a workload's rollout went: the result, its pod selector (for verification) and what
/// kubectl would print about it.
type Rolled = (RestartResult, Option<LabelSelector>, String);

/// Restarts one workload the way its plan says, and waits for it.
async fn roll(
    cluster: &Cluster,
    item: &RestartItem,
    cp: &ControlPlane,
    opts: &RestartOptions,
    progress: &dyn RestartProgress,
) -> Result<Rolled, RevError> {
    let (client, ns) = (&cluster.client, &item.namespace);
    match (item.kind, item.method) {
        (kind, RestartMethod::DeletePods) => {
            let owner = match kind {
                WorkloadKind::StatefulSet => owner_pods::<StatefulSet>(cluster, item).await?,
                WorkloadKind::DaemonSet => owner_pods::<DaemonSet>(cluster, item).await?,
                WorkloadKind::Deployment => owner_pods::<Deployment>(cluster, item).await?,
            };
            let (result, detail) =
                delete_pods_one_by_one(cluster, item, &owner, cp, opts, progress).await?;
            Ok((result, Some(owner.selector), detail))
        }
        (WorkloadKind::Deployment, _) => {
            let api = Api::<Deployment>::namespaced(client.clone(), ns);
            restart_and_wait(cluster, api, item, opts, progress).await
        }
        (WorkloadKind::StatefulSet, _) => {
            let api = Api::<StatefulSet>::namespaced(client.clone(), ns);
            restart_and_wait(cluster, api, item, opts, progress).await
        }
        (WorkloadKind::DaemonSet, _) => {
            let api = Api::<DaemonSet>::namespaced(client.clone(), ns);
            restart_and_wait(cluster, api, item, opts, progress).await
        }
    }
}

/// Restarts one workload end to end: restart, wait, verify.
pub async fn restart_one(
    cluster: &Cluster,
    item: &RestartItem,
    cp: &ControlPlane,
    opts: &RestartOptions,
    progress: &dyn RestartProgress,
) -> WorkloadOutcome {
    let started = Instant::now();
    let mut outcome = not_run(item);
    outcome.result = RestartResult::Error;
    outcome.started_at = now_rfc3339();
    progress.started(item);
    let rolled = roll(cluster, item, cp, opts, progress).await;
    outcome.rollout_seconds = started.elapsed().as_secs_f64();
    match rolled {
        Err(e) => outcome.message = Some(e.to_string()),
        Ok((RestartResult::Restarted, Some(selector), _)) => {
            match verify_pods(cluster, item, &selector, cp).await {
                Ok(Verified {
                    verified,
                    problems,
                    left_drifted,
                }) => {
                    outcome.pods_verified = verified;
                    outcome.left_drifted = left_drifted;
                    outcome.result = if problems.is_empty() {
                        RestartResult::Restarted
                    } else {
                        outcome.message = Some(problems.join("; "));
                        RestartResult::VerificationFailed
                    };
                }
                Err(e) => outcome.message = Some(e.to_string()),
            }
        }
        Ok((result, selector, detail)) => {
            if matches!(
                result,
                RestartResult::RolloutFailed | RestartResult::TimedOut
            ) {
                let why = super::diagnose::stuck_rollout_event(cluster, item, selector.as_ref());
                outcome.cause = why.await;
            }
            outcome.result = result;
            outcome.message = (!detail.is_empty()).then_some(detail);
        }
    }
    if !matches!(
        outcome.result,
        RestartResult::Restarted | RestartResult::ServerDryRun
    ) {
        outcome.undo = Some(undo_command(item));
    }
    outcome.finished_at = now_rfc3339();
    progress.finished(&outcome);
    outcome
}

/// Runs the plan: `max_parallel` workloads at a time (1: strictly one after another), stopping
/// at the first failure unless `continue_on_error`, and after the current ones on Ctrl-C. With
/// a `probe` (`--probe`), each workload's rollout is a window of traffic: its figures go in its
/// outcome, and a gate breached in it stops the run like a failure.
pub async fn run_plan(
    cluster: &Cluster,
    items: &[RestartItem],
    cp: &ControlPlane,
    opts: &RestartOptions,
    stop: &dyn Fn() -> bool,
    progress: &dyn RestartProgress,
    probe: Option<&Probe>,
) -> Vec<WorkloadOutcome> {
    run_in_order(items, opts, stop, probe, |item| {
        restart_one(cluster, item, cp, opts, progress)
    })
    .await
}

/// The order, halting and probing of [`run_plan`], with the restart of one workload given as
/// `restart` (tests drive it without a cluster).
pub async fn run_in_order<'a, R, F>(
    items: &'a [RestartItem],
    opts: &RestartOptions,
    stop: &dyn Fn() -> bool,
    probe: Option<&Probe>,
    restart: R,
) -> Vec<WorkloadOutcome>
where
    R: Fn(&'a RestartItem) -> F,
    F: Future<Output = WorkloadOutcome>,
{
    let (max_parallel, continue_on_error) = (opts.max_parallel, opts.continue_on_error);
    let halting = Arc::new(AtomicUsize::new(0));
    let restart = &restart;
    // Outcomes come back as workloads finish; report them in plan order.
    futures::stream::iter(items.iter().enumerate())
        .map(|(i, item)| {
            let halting = halting.clone();
            async move {
                let halted = stop() || (!continue_on_error && halting.load(Ordering::SeqCst) > 0);
                if halted {
                    return (i, not_run(item));
                }
                if i > 0
                    && let Some(pause) = opts.pause
                {
                    tokio::time::sleep(pause).await;
                }
                let subject = format!("{}/{}/{}", item.kind.resource(), item.namespace, item.name);
                let window = probe.map(|p| p.rollout_started(&subject));
                let mut outcome = restart(item).await;
                if let (Some(probe), Some(window)) = (probe, window) {
                    let traffic = probe.rollout_finished(window).await;
                    outcome.probe = Some(traffic.figures);
                    if !traffic.breaches.is_empty() {
                        outcome.gate_breaches = traffic.breaches;
                        outcome.undo.get_or_insert_with(|| undo_command(item));
                    }
                }
                let failed = !matches!(
                    outcome.result,
                    RestartResult::Restarted | RestartResult::ServerDryRun
                );
                if failed || !outcome.gate_breaches.is_empty() {
                    halting.fetch_add(1, Ordering::SeqCst);
                }
                (i, outcome)
            }
        })
        .buffer_unordered(max_parallel.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .collect()
}

fn not_run(item: &RestartItem) -> WorkloadOutcome {
    WorkloadOutcome {
        kind: item.kind,
        namespace: item.namespace.clone(),
        name: item.name.clone(),
        result: RestartResult::NotRun,
        rollout_seconds: 0.0,
        pods_verified: 0,
        left_drifted: Vec::new(),
        message: None,
        cause: None,
        undo: None,
        started_at: String::new(),
        finished_at: String::new(),
        probe: None,
        gate_breaches: Vec::new(),
    }
}
