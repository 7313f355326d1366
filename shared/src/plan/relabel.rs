//! Planning `kubectl rev-relabel` (upgrade guide step 3.6): which namespaces move to which
//! revision, in one guarded patch each, and the preflight checks that refuse an unsafe move.
//! An undo is planned the same way (the labels it writes are checked like any others), and so
//! is repointing a tag. Pure: built from a snapshot and its analysis; typed, no prose (the
//! wording is in `output::relabel`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::{Value, json};

use crate::analysis::injection::ignored_pod_rev_label;
use crate::analysis::sidecar::pod_drift;
use crate::analysis::{
    Analysis, InjectionMode, NamespaceLabels, PodStatus, Resolution, WorkloadRef, pod_facts,
};
use crate::error::RevError;
use crate::keys;
use crate::revision::{DEFAULT_REVISION, RevisionName, SkipVerdict, skip_verdict};
use crate::selector::Selector;
use crate::snapshot::{Labels, NamespaceInfo, PodInfo, Snapshot};

/// The labels relabel owns on a namespace.
pub const MANAGED_LABELS: [&str; 2] = [keys::REV, keys::INJECTION];

/// `istio.io/rev` and `istio-injection` of a namespace (`None`: absent).
pub type ManagedLabels = BTreeMap<String, Option<String>>;

#[derive(Debug, Clone)]
pub enum Targets {
    /// Namespaces named on the command line.
    Names(Vec<String>),
    /// Every namespace whose effective revision is this one (`--from`).
    From(String),
    /// Namespaces matching a label selector (`-l`).
    Selector(Selector),
}

/// A reason to refuse; `--force` overrides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum RelabelBlocker {
    /// Neither an installed revision nor a tag.
    #[serde(rename_all = "camelCase")]
    NotInstalled {
        target: String,
        installed: Vec<String>,
    },
    /// A tag whose revision is not installed.
    #[serde(rename_all = "camelCase")]
    TagTargetMissing { tag: String, revision: String },
    /// A tag cannot point at another tag.
    #[serde(rename_all = "camelCase")]
    TargetIsATag { target: String },
    #[serde(rename_all = "camelCase")]
    IstiodNotReady {
        revision: String,
        namespace: String,
        name: String,
        ready: i32,
        desired: i32,
    },
    #[serde(rename_all = "camelCase")]
    NoIstiod { revision: String },
    /// No injector webhook: pods would start without a sidecar.
    #[serde(rename_all = "camelCase")]
    NoInjector { revision: String },
    /// More than two minor versions forward, or across majors (DOMAIN §5).
    #[serde(rename_all = "camelCase")]
    SkipTooLarge {
        subject: String,
        from: String,
        to: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum RelabelWarning {
    /// Two minors forward: allowed for canary upgrades, the guide moves one at a time.
    #[serde(rename_all = "camelCase")]
    SkipsMinor {
        subject: String,
        from: String,
        to: String,
    },
    /// Back to an older revision: the canary upgrade's normal exit.
    #[serde(rename_all = "camelCase")]
    RollingBack {
        subject: String,
        from: String,
        to: String,
    },
    /// The new labels inject nothing there (kube-system, a namespace the webhooks skip): the
    /// relabel is allowed but has no effect on its pods.
    #[serde(rename_all = "camelCase")]
    NoEffect { subject: String, why: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Set the target labels, recording the ones replaced.
    Relabel,
    /// Restore the labels a previous relabel recorded, removing the record.
    Restore,
}

/// Pods that will run another revision than their namespace selects once it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartNeed {
    /// The workload that restarts them; `None` for pods no workload owns.
    pub workload: Option<WorkloadRef>,
    /// The pod, when no workload owns it.
    pub pod: Option<String>,
    pub pods: usize,
}

/// A pod-level `istio.io/rev` that the namespace label keeps overriding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredPodLabel {
    pub pod: String,
    pub value: String,
}

/// Config pinned (`istio.io/rev`) to a revision the namespace no longer selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinnedConfigRef {
    pub kind: String,
    pub name: String,
    pub revision: String,
}

/// The change to one namespace's labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceChange {
    pub namespace: String,
    pub kind: ChangeKind,
    /// Guards the patch: a concurrent edit makes the API server answer 409 Conflict.
    pub resource_version: Option<String>,
    pub before: ManagedLabels,
    pub after: ManagedLabels,
    /// The revision new pods get once the labels are `after` (`None`: no sidecar).
    pub revision_after: Option<String>,
    pub restarts: Vec<RestartNeed>,
    pub pods_to_restart: usize,
    pub ignored_pod_labels: Vec<IgnoredPodLabel>,
    pub pinned_config: Vec<PinnedConfigRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelabelPlan {
    /// The label value to set (a revision or a tag); `None` for an undo.
    pub target: Option<String>,
    /// The revision it resolves to, when installed.
    pub target_revision: Option<String>,
    pub target_version: Option<String>,
    pub via_tag: Option<String>,
    pub changes: Vec<NamespaceChange>,
    /// Already on the target (or, for an undo, with no record): nothing to do.
    pub unchanged: Vec<String>,
    pub blockers: Vec<RelabelBlocker>,
    pub warnings: Vec<RelabelWarning>,
}

impl RelabelPlan {
    pub fn is_refused(&self, force: bool) -> bool {
        !force && !self.blockers.is_empty()
    }
}

fn managed(labels: &Labels) -> ManagedLabels {
    MANAGED_LABELS
        .iter()
        .map(|k| (k.to_string(), labels.get(*k).cloned()))
        .collect()
}

/// The labels after moving to `target`: `istio.io/rev` set, the legacy label removed.
fn relabelled(before: &ManagedLabels, target: &str) -> ManagedLabels {
    let mut after = before.clone();
    after.insert(keys::REV.into(), Some(target.to_string()));
    after.insert(keys::INJECTION.into(), None);
    after
}

/// The labels a previous relabel recorded on the namespace (`None`: no record).
pub fn recorded_labels(ns: &NamespaceInfo) -> Result<Option<ManagedLabels>, RevError> {
    let Some(recorded) = ns.annotations.get(keys::PREVIOUS_LABELS) else {
        return Ok(None);
    };
    let previous: ManagedLabels =
        serde_json::from_str(recorded).map_err(|e| RevError::InvalidData {
            what: format!(
                "annotation {} on namespace {}",
                keys::PREVIOUS_LABELS,
                ns.name
            ),
            why: e.to_string(),
        })?;
    Ok(Some(
        MANAGED_LABELS
            .iter()
            .map(|k| (k.to_string(), previous.get(*k).cloned().flatten()))
            .collect(),
    ))
}

/// The labels a namespace has with its managed labels replaced by `after`.
fn with_managed(labels: &Labels, after: &ManagedLabels) -> Labels {
    let mut out = labels.clone();
    for (k, v) in after {
        match v {
            Some(v) => out.insert(k.clone(), v.clone()),
            None => out.remove(k),
        };
    }
    out
}

/// Picks the target namespaces; names that do not exist are an error naming them.
pub fn select_namespaces<'a>(
    snapshot: &'a Snapshot,
    analysis: &Analysis,
    targets: &Targets,
) -> Result<Vec<&'a NamespaceInfo>, RevError> {
    match targets {
        Targets::Names(names) => snapshot.named_namespaces(names),
        Targets::From(old) => {
            let resolved = analysis.control_plane.resolve(old);
            let old_revision = resolved.revision().unwrap_or(old);
            let on_old: BTreeSet<&str> = analysis
                .namespaces
                .iter()
                .filter(|s| s.effective.revision.as_deref() == Some(old_revision))
                .map(|s| s.name.as_str())
                .collect();
            Ok(snapshot
                .namespaces
                .iter()
                .filter(|ns| on_old.contains(ns.name.as_str()))
                .collect())
        }
        Targets::Selector(sel) => Ok(snapshot
            .namespaces
            .iter()
            .filter(|ns| sel.matches(&ns.labels))
            .collect()),
    }
}

/// The preflight checks of a label value itself: it resolves to an installed revision whose
/// istiod is ready and whose injector exists. Returns the revision and the tag it went through.
fn check_target(
    analysis: &Analysis,
    target: &str,
    blockers: &mut Vec<RelabelBlocker>,
) -> (Option<String>, Option<String>) {
    let cp = &analysis.control_plane;
    let (revision, via_tag) = match cp.resolve(target) {
        Resolution::Revision(r) => (r, None),
        Resolution::Tag { tag, revision } => (revision, Some(tag)),
        Resolution::Missing => {
            blockers.push(RelabelBlocker::NotInstalled {
                target: target.to_string(),
                installed: cp.revisions.iter().map(|r| r.name.clone()).collect(),
            });
            return (None, None);
        }
    };
    let Some(info) = cp.revision(&revision) else {
        blockers.push(RelabelBlocker::TagTargetMissing {
            tag: target.to_string(),
            revision,
        });
        return (None, via_tag);
    };
    match &info.istiod {
        Some(istiod) if istiod.ready > 0 => {}
        Some(istiod) => blockers.push(RelabelBlocker::IstiodNotReady {
            revision: revision.clone(),
            namespace: istiod.namespace.clone(),
            name: istiod.name.clone(),
            ready: istiod.ready,
            desired: istiod.desired,
        }),
        // A remote (primary-remote) has no istiod of its own: its injector, checked below,
        // calls the primary's.
        None if crate::runbook::role_of(analysis) == crate::runbook::ClusterRole::Remote => {}
        None => blockers.push(RelabelBlocker::NoIstiod {
            revision: revision.clone(),
        }),
    }
    if !cp.has_injector(target) {
        blockers.push(RelabelBlocker::NoInjector {
            revision: revision.clone(),
        });
    }
    (Some(revision), via_tag)
}

/// DOMAIN §5 for a move of `subject` from one revision to another: forward by the skip
/// policy, backward allowed (a rollback) with a note.
fn check_skip(
    analysis: &Analysis,
    subject: &str,
    from: Option<&str>,
    to: Option<&str>,
    blockers: &mut Vec<RelabelBlocker>,
    warnings: &mut Vec<RelabelWarning>,
) {
    let cp = &analysis.control_plane;
    let (Some(from), Some(to)) = (
        from.and_then(|r| cp.version_of(r)),
        to.and_then(|r| cp.version_of(r)),
    ) else {
        return;
    };
    let (subject, from_text, to_text) = (subject.to_string(), from.to_string(), to.to_string());
    match skip_verdict((from.major, from.minor), (to.major, to.minor)) {
        SkipVerdict::Fine => {}
        SkipVerdict::Warn => warnings.push(RelabelWarning::SkipsMinor {
            subject,
            from: from_text,
            to: to_text,
        }),
        SkipVerdict::Back => warnings.push(RelabelWarning::RollingBack {
            subject,
            from: from_text,
            to: to_text,
        }),
        SkipVerdict::Refuse => blockers.push(RelabelBlocker::SkipTooLarge {
            subject,
            from: from_text,
            to: to_text,
        }),
    }
}

/// What a namespace selects now; when that revision has no injector any more, its name still
/// tells the version it is leaving.
fn current_revision(analysis: &Analysis, namespace: &str) -> Option<String> {
    let status = analysis.namespaces.iter().find(|s| s.name == namespace)?;
    status.effective.revision.clone().or_else(|| {
        let selector = status.effective.selector.as_deref()?;
        let resolved = analysis.control_plane.resolve(selector);
        Some(resolved.revision().unwrap_or(selector).to_string())
    })
}

/// Each namespace's pods with their analysis, joined once, so planning needs no namespace ×
/// pod or pod × pod scans.
struct PodIndex<'a> {
    by_namespace: HashMap<&'a str, Vec<(&'a PodInfo, &'a PodStatus)>>,
}

impl<'a> PodIndex<'a> {
    fn new(snapshot: &'a Snapshot, analysis: &'a Analysis) -> Self {
        let raw: HashMap<(&str, &str), &PodInfo> = snapshot
            .pods
            .iter()
            .map(|p| ((p.namespace.as_str(), p.name.as_str()), p))
            .collect();
        let mut by_namespace: HashMap<&str, Vec<(&PodInfo, &PodStatus)>> = HashMap::new();
        for status in &analysis.pods {
            if let Some(pod) = raw.get(&(status.namespace.as_str(), status.name.as_str())) {
                by_namespace
                    .entry(&status.namespace)
                    .or_default()
                    .push((pod, status));
            }
        }
        Self { by_namespace }
    }
}

/// One namespace's change, with what it means for its pods once its labels are `after`.
fn plan_change(
    ns: &NamespaceInfo,
    kind: ChangeKind,
    after: ManagedLabels,
    analysis: &Analysis,
    pods: &PodIndex,
) -> NamespaceChange {
    // The same webhooks and injector rules as the analysis, on the labels it will have.
    let labels_after = NamespaceLabels::new(&ns.name, &with_managed(&ns.labels, &after));
    let effective_after = analysis
        .injection
        .namespace_effective_revision(&labels_after);
    let mut restarts: BTreeMap<(Option<WorkloadRef>, Option<String>), usize> = BTreeMap::new();
    let mut ignored = Vec::new();
    for (pod, status) in pods
        .by_namespace
        .get(ns.name.as_str())
        .into_iter()
        .flatten()
    {
        let expected = analysis
            .injection
            .pod_expected_revision(&labels_after, &pod_facts(pod));
        if pod_drift(&status.sidecar, &expected).needs_restart() {
            let key = match &status.workload {
                Some(w) => (Some(w.clone()), None),
                None => (None, Some(pod.name.clone())),
            };
            *restarts.entry(key).or_insert(0) += 1;
        }
        if let Some(value) = ignored_pod_rev_label(&effective_after, &pod.labels) {
            ignored.push(IgnoredPodLabel {
                pod: pod.name.clone(),
                value: value.to_string(),
            });
        }
    }
    let revision_after = effective_after.revision.clone();
    let leaving_for = revision_after
        .clone()
        .or_else(|| effective_after.selector.clone());
    let pinned_config = analysis
        .pinned_config
        .iter()
        .filter(|c| c.namespace == ns.name)
        // Istio config labelled with a tag name is loaded by no istiod: listed whatever moves.
        .filter(|c| {
            c.pinned_revision.is_none() || c.pinned_revision.as_deref() != leaving_for.as_deref()
        })
        .map(|c| PinnedConfigRef {
            kind: c.kind.clone(),
            name: c.name.clone(),
            revision: c.revision.clone(),
        })
        .collect();
    NamespaceChange {
        namespace: ns.name.clone(),
        kind,
        resource_version: ns.resource_version.clone(),
        before: managed(&ns.labels),
        pods_to_restart: restarts.values().sum(),
        restarts: restarts
            .into_iter()
            .map(|((workload, pod), pods)| RestartNeed {
                workload,
                pod,
                pods,
            })
            .collect(),
        after,
        revision_after,
        ignored_pod_labels: ignored,
        pinned_config,
    }
}

pub fn plan_relabel(
    snapshot: &Snapshot,
    analysis: &Analysis,
    targets: &Targets,
    target: &RevisionName,
) -> Result<RelabelPlan, RevError> {
    let namespaces = select_namespaces(snapshot, analysis, targets)?;
    let target = target.as_str();
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    let (target_revision, via_tag) = check_target(analysis, target, &mut blockers);
    let pods = PodIndex::new(snapshot, analysis);
    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    for ns in namespaces {
        let before = managed(&ns.labels);
        let after = relabelled(&before, target);
        if before == after {
            unchanged.push(ns.name.clone());
            continue;
        }
        let from = current_revision(analysis, &ns.name);
        check_skip(
            analysis,
            &ns.name,
            from.as_deref(),
            target_revision.as_deref(),
            &mut blockers,
            &mut warnings,
        );
        if target_revision.is_some() {
            let effective = analysis
                .injection
                .namespace_effective_revision(&NamespaceLabels::new(
                    &ns.name,
                    &with_managed(&ns.labels, &after),
                ));
            if effective.revision.is_none() {
                warnings.push(RelabelWarning::NoEffect {
                    subject: format!("namespace/{}", ns.name),
                    why: effective
                        .no_sidecar
                        .map(|n| n.describe())
                        .unwrap_or_else(|| "no injector answers for it".into()),
                });
            }
        }
        changes.push(plan_change(ns, ChangeKind::Relabel, after, analysis, &pods));
    }
    blockers.dedup();
    Ok(RelabelPlan {
        target: Some(target.to_string()),
        target_version: target_revision
            .as_deref()
            .and_then(|r| analysis.control_plane.version_of(r))
            .map(|v| v.to_string()),
        target_revision,
        via_tag,
        changes,
        unchanged,
        blockers,
        warnings,
    })
}

/// The undo of a relabel is a relabel like any other: the labels recorded on each namespace,
/// with the same preflight on what they select (a revision pruned since is refused).
pub fn plan_undo(
    snapshot: &Snapshot,
    analysis: &Analysis,
    names: &[String],
) -> Result<RelabelPlan, RevError> {
    let namespaces = select_namespaces(snapshot, analysis, &Targets::Names(names.to_vec()))?;
    let pods = PodIndex::new(snapshot, analysis);
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    let mut checked = BTreeSet::new();
    for ns in namespaces {
        let Some(after) = recorded_labels(ns)? else {
            unchanged.push(ns.name.clone());
            continue;
        };
        let effective = analysis
            .injection
            .namespace_effective_revision(&NamespaceLabels::new(
                &ns.name,
                &with_managed(&ns.labels, &after),
            ));
        // Only labels that select something are checked: restoring "no injection" is safe.
        let selects = matches!(
            effective.mode,
            InjectionMode::LegacyLabel | InjectionMode::RevisionLabel
        );
        let mut revision_after = effective.revision.clone();
        // The webhooks' answer when they inject; else what the labels ask for, which then
        // fails the check (not installed, or no injector).
        let target = effective
            .revision
            .as_deref()
            .or(effective.selector.as_deref());
        if selects && let Some(target) = target {
            let mut found = Vec::new();
            let (revision, _) = check_target(analysis, target, &mut found);
            if checked.insert(target.to_string()) {
                blockers.extend(found);
            }
            revision_after = revision_after.or(revision);
        }
        check_skip(
            analysis,
            &ns.name,
            current_revision(analysis, &ns.name).as_deref(),
            revision_after.as_deref(),
            &mut blockers,
            &mut warnings,
        );
        changes.push(plan_change(ns, ChangeKind::Restore, after, analysis, &pods));
    }
    blockers.dedup();
    Ok(RelabelPlan {
        target: None,
        target_revision: None,
        target_version: None,
        via_tag: None,
        changes,
        unchanged,
        blockers,
        warnings,
    })
}

/// The single merge patch for one namespace, guarded by the resourceVersion it was planned
/// from: a relabel sets the labels and records what it replaced; a restore sets the recorded
/// labels and removes the record.
pub fn relabel_patch(change: &NamespaceChange) -> Value {
    let labels: serde_json::Map<String, Value> = change
        .after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.clone().map(Value::String).unwrap_or(Value::Null),
            )
        })
        .collect();
    let record = match change.kind {
        ChangeKind::Relabel => {
            Value::String(serde_json::to_string(&change.before).unwrap_or_default())
        }
        ChangeKind::Restore => Value::Null,
    };
    json!({
        "metadata": {
            "resourceVersion": change.resource_version,
            "labels": labels,
            "annotations": { keys::PREVIOUS_LABELS: record },
        }
    })
}

/// Re-plans one namespace after a 409 Conflict, from its freshly read state: the new
/// resourceVersion and labels (a restore re-reads the record); `None` when nothing is left
/// to do (already on the target, or the record is gone).
pub fn replan_change(
    change: &NamespaceChange,
    fresh: &NamespaceInfo,
) -> Result<Option<NamespaceChange>, RevError> {
    let before = managed(&fresh.labels);
    let after = match change.kind {
        ChangeKind::Relabel => {
            let target = change
                .after
                .get(keys::REV)
                .cloned()
                .flatten()
                .unwrap_or_default();
            relabelled(&before, &target)
        }
        ChangeKind::Restore => match recorded_labels(fresh)? {
            Some(recorded) => recorded,
            None => return Ok(None),
        },
    };
    if change.kind == ChangeKind::Relabel && before == after {
        return Ok(None);
    }
    Ok(Some(NamespaceChange {
        resource_version: fresh.resource_version.clone(),
        before,
        after,
        ..change.clone()
    }))
}

/// Repointing a revision tag (`istioctl tag set TAG --revision REV --overwrite`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagPlan {
    pub tag: String,
    pub webhook: String,
    pub from_revision: String,
    pub to_revision: String,
    /// The target revision's injector configuration, whose clientConfig the tag takes.
    pub injector: String,
    /// Namespaces whose effective revision moves with the tag.
    pub namespaces: Vec<String>,
    pub pods_to_restart: usize,
    /// For the `default` tag: `istiod-default-validator` and the revision validator it copies.
    pub validator: Option<(String, String)>,
    /// The tag's Service `istiod-revision-tag-<tag>` (Istio >= 1.28) as `(namespace, name)`:
    /// istiod's tag watcher reads it too, so it moves with the webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<(String, String)>,
    pub unchanged: bool,
    pub blockers: Vec<RelabelBlocker>,
    pub warnings: Vec<RelabelWarning>,
}

impl TagPlan {
    pub fn is_refused(&self, force: bool) -> bool {
        !force && !self.blockers.is_empty()
    }
}

/// Where `--undo --tag` goes: the revision recorded on the tag's webhook configuration.
pub fn recorded_tag_revision(snapshot: &Snapshot, tag: &str) -> Option<String> {
    snapshot
        .mutating_webhooks
        .iter()
        .find(|m| m.labels.get(keys::TAG).map(String::as_str) == Some(tag))
        .and_then(|m| m.annotations.get(keys::PREVIOUS_REVISION).cloned())
        .filter(|r| !r.is_empty())
}

pub fn plan_tag(
    snapshot: &Snapshot,
    analysis: &Analysis,
    tag: &str,
    target: &RevisionName,
) -> Result<TagPlan, RevError> {
    let cp = &analysis.control_plane;
    let info = cp.tag(tag).ok_or_else(|| RevError::UnknownTag {
        tag: tag.to_string(),
        tags: cp.tags.iter().map(|t| t.name.clone()).collect(),
    })?;
    let to = target.as_str();
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    if cp.tag(to).is_some() && cp.revision(to).is_none() {
        blockers.push(RelabelBlocker::TargetIsATag {
            target: to.to_string(),
        });
    } else {
        check_target(analysis, to, &mut blockers);
    }
    check_skip(
        analysis,
        &format!("tag {tag}"),
        Some(&info.revision),
        Some(to),
        &mut blockers,
        &mut warnings,
    );
    let namespaces = namespaces_on_tag(analysis, tag);
    Ok(TagPlan {
        tag: tag.to_string(),
        webhook: info.webhook.clone(),
        from_revision: info.revision.clone(),
        to_revision: to.to_string(),
        injector: injector_of(snapshot, to),
        service: info
            .service
            .as_ref()
            .map(|s| (s.namespace.clone(), s.name.clone())),
        // A Service left behind by an earlier retarget is still work to do.
        unchanged: info.revision == to && info.service.as_ref().is_none_or(|s| s.revision == to),
        pods_to_restart: pods_leaving(analysis, &namespaces, to),
        namespaces,
        validator: (tag == DEFAULT_REVISION)
            .then(|| default_validator_move(snapshot, to))
            .flatten(),
        blockers,
        warnings,
    })
}

/// The injector webhook configuration of `revision` (empty when it has none).
fn injector_of(snapshot: &Snapshot, revision: &str) -> String {
    snapshot
        .mutating_webhooks
        .iter()
        .find(|m| {
            crate::analysis::revisions::is_injector(m)
                && m.labels.get(keys::REV).map(String::as_str) == Some(revision)
        })
        .map(|m| m.name.clone())
        .unwrap_or_default()
}

/// The namespaces that move with the tag: on it by label, or (for `default`) by the legacy
/// `istio-injection=enabled`.
fn namespaces_on_tag(analysis: &Analysis, tag: &str) -> Vec<String> {
    analysis
        .namespaces
        .iter()
        .filter(|n| {
            n.effective.via_tag.as_deref() == Some(tag)
                || (tag == DEFAULT_REVISION && n.effective.mode == InjectionMode::LegacyLabel)
        })
        .map(|n| n.name.clone())
        .collect()
}

/// Pods in `namespaces` whose sidecar is not `to`'s: they need a restart after the move.
fn pods_leaving(analysis: &Analysis, namespaces: &[String], to: &str) -> usize {
    let moving: BTreeSet<&str> = namespaces.iter().map(String::as_str).collect();
    analysis
        .pods
        .iter()
        .filter(|p| moving.contains(p.namespace.as_str()))
        .filter(|p| p.sidecar.revision().is_some_and(|r| r != to))
        .count()
}

/// Moving the default tag moves the default validator too: (the default validator, the
/// revision's own validator it takes its webhooks from), when both exist.
fn default_validator_move(snapshot: &Snapshot, to: &str) -> Option<(String, String)> {
    let revision_validator = snapshot.validating_webhooks.iter().find(|v| {
        v.name != keys::DEFAULT_VALIDATOR && v.labels.get(keys::REV).map(String::as_str) == Some(to)
    })?;
    snapshot
        .validating_webhooks
        .iter()
        .any(|v| v.name == keys::DEFAULT_VALIDATOR)
        .then(|| {
            (
                keys::DEFAULT_VALIDATOR.to_string(),
                revision_validator.name.clone(),
            )
        })
}

/// Relabels a retargeted webhook configuration to `revision`, recording the one it leaves.
fn point_at_revision(meta: &mut ObjectMeta, revision: &str) {
    let labels = meta.labels.get_or_insert_with(Default::default);
    let previous = labels
        .insert(keys::REV.into(), revision.into())
        .unwrap_or_default();
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(keys::PREVIOUS_REVISION.into(), previous);
}

/// The tag's webhooks, pointed at another revision: each keeps its name, selectors (the tag's
/// matchers), rules and policies, and takes the client configuration (URL or service, path,
/// CA bundle) of the revision's own injector — what `istioctl tag set --overwrite` produces.
pub fn retarget_tag_webhooks(
    tag: &MutatingWebhookConfiguration,
    injector: &MutatingWebhookConfiguration,
    revision: &str,
) -> Result<MutatingWebhookConfiguration, RevError> {
    let source = injector.webhooks.as_deref().unwrap_or_default();
    let first = source.first().ok_or_else(|| RevError::InvalidData {
        what: format!(
            "mutatingwebhookconfiguration {}",
            injector.metadata.name.as_deref().unwrap_or("injector")
        ),
        why: "it has no webhooks whose client configuration a tag could take".into(),
    })?;
    let mut out = tag.clone();
    point_at_revision(&mut out.metadata, revision);
    for webhook in out.webhooks.iter_mut().flatten() {
        let same = source
            .iter()
            .find(|w| w.name == webhook.name)
            .unwrap_or(first);
        webhook.client_config = same.client_config.clone();
    }
    Ok(out)
}

/// A tag's Service pointed at another revision, as the istiod chart renders it for that
/// revision: label `istio.io/rev` (the previous value recorded, as on the webhooks) and the
/// selector of that revision's istiod (`istio: pilot` for a revision-less one).
pub fn retarget_tag_service(service: &Service, revision: &str) -> Result<Service, RevError> {
    let mut out = service.clone();
    point_at_revision(&mut out.metadata, revision);
    let spec = out.spec.as_mut().ok_or_else(|| RevError::InvalidData {
        what: format!(
            "service {}",
            service.metadata.name.as_deref().unwrap_or_default()
        ),
        why: "it has no spec to point at an istiod".into(),
    })?;
    let selector = spec.selector.get_or_insert_with(Default::default);
    if revision == DEFAULT_REVISION {
        selector.remove(keys::REV);
        selector.insert("istio".into(), "pilot".into());
    } else {
        selector.remove("istio");
        selector.insert(keys::REV.into(), revision.into());
    }
    Ok(out)
}

/// `istiod-default-validator` pointed at a revision's validator (the `default` tag moves it too).
pub fn retarget_default_validator(
    validator: &ValidatingWebhookConfiguration,
    revision_validator: &ValidatingWebhookConfiguration,
    revision: &str,
) -> Result<ValidatingWebhookConfiguration, RevError> {
    let first = revision_validator
        .webhooks
        .as_deref()
        .unwrap_or_default()
        .first()
        .ok_or_else(|| RevError::InvalidData {
            what: format!(
                "validatingwebhookconfiguration {}",
                revision_validator
                    .metadata
                    .name
                    .as_deref()
                    .unwrap_or("validator")
            ),
            why: "it has no webhooks whose client configuration the default validator could take"
                .into(),
        })?
        .client_config
        .clone();
    let mut out = validator.clone();
    point_at_revision(&mut out.metadata, revision);
    for webhook in out.webhooks.iter_mut().flatten() {
        webhook.client_config = first.clone();
    }
    Ok(out)
}
