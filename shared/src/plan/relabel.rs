//! Planning `kubectl rev-relabel` (upgrade guide step 3.6): which namespaces move to which
//! revision, in one guarded patch each, and the preflight checks that refuse an unsafe move.
//! Pure: built from a snapshot and its analysis.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::analysis::{Analysis, Resolution};
use crate::revision::{IstioVersion, RevisionName, SkipVerdict, skip_verdict};
use crate::selector::Selector;
use crate::snapshot::{Labels, NamespaceInfo, Snapshot, keys};

/// The annotation (under a domain the project owns) recording the labels a relabel replaced,
/// as JSON `{"istio.io/rev": "1-19", "istio-injection": null}` (null: the label was absent).
pub const PREVIOUS_LABELS: &str = "relabel.kubectl-rev.dev/previous-labels";

/// The labels relabel owns on a namespace.
pub const MANAGED_LABELS: [&str; 2] = [keys::REV, keys::INJECTION];

#[derive(Debug, Clone)]
pub enum Targets {
    /// Namespaces named on the command line.
    Names(Vec<String>),
    /// Every namespace whose effective revision is this one (`--from`).
    From(String),
    /// Namespaces matching a label selector (`-l`).
    Selector(Selector),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockerKind {
    RevisionNotInstalled,
    IstiodNotReady,
    NoInjector,
    SkipTooLarge,
}

/// A reason to refuse; `--force` overrides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    pub kind: BlockerKind,
    pub message: String,
    pub fix: String,
}

/// The change to one namespace's labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceChange {
    pub namespace: String,
    /// Guards the patch: a concurrent edit makes the API server answer 409 Conflict.
    pub resource_version: Option<String>,
    /// `istio.io/rev` and `istio-injection` before and after (`None`: absent).
    pub before: BTreeMap<String, Option<String>>,
    pub after: BTreeMap<String, Option<String>>,
    /// Workloads whose pods will then run another revision than the namespace selects.
    pub workloads_to_restart: Vec<String>,
    pub pods_to_restart: usize,
    /// Pod-level `istio.io/rev` labels that stay ignored under a namespace label.
    pub ignored_pod_labels: Vec<String>,
    /// Config pinned to the revision the namespace leaves (it stops applying there).
    pub pinned_config: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelabelPlan {
    /// The label value to set: a revision or a tag.
    pub target: String,
    /// The revision it resolves to, when installed.
    pub target_revision: Option<String>,
    pub target_version: Option<String>,
    pub via_tag: Option<String>,
    pub changes: Vec<NamespaceChange>,
    /// Already on the target: nothing to do.
    pub unchanged: Vec<String>,
    pub blockers: Vec<Blocker>,
    pub warnings: Vec<String>,
}

impl RelabelPlan {
    pub fn is_refused(&self, force: bool) -> bool {
        !force && !self.blockers.is_empty()
    }
}

fn managed(labels: &Labels) -> BTreeMap<String, Option<String>> {
    MANAGED_LABELS
        .iter()
        .map(|k| (k.to_string(), labels.get(*k).cloned()))
        .collect()
}

/// Picks the target namespaces; names that do not exist are returned as the error.
pub fn select_namespaces<'a>(
    snapshot: &'a Snapshot,
    analysis: &Analysis,
    targets: &Targets,
) -> Result<Vec<&'a NamespaceInfo>, Vec<String>> {
    match targets {
        Targets::Names(names) => {
            let missing: Vec<String> = names
                .iter()
                .filter(|n| snapshot.namespace(n).is_none())
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(missing);
            }
            Ok(names.iter().filter_map(|n| snapshot.namespace(n)).collect())
        }
        Targets::From(old) => {
            let resolved = analysis.control_plane.resolve(old);
            let old_revision = resolved.revision().unwrap_or(old);
            Ok(snapshot
                .namespaces
                .iter()
                .filter(|ns| {
                    analysis.namespaces.iter().any(|s| {
                        s.name == ns.name && s.effective.revision.as_deref() == Some(old_revision)
                    })
                })
                .collect())
        }
        Targets::Selector(sel) => Ok(snapshot
            .namespaces
            .iter()
            .filter(|ns| sel.matches(&ns.labels))
            .collect()),
    }
}

/// The preflight checks of the target itself (installed, ready, injecting).
fn target_blockers(
    analysis: &Analysis,
    target: &str,
) -> (Option<String>, Option<String>, Vec<Blocker>) {
    let cp = &analysis.control_plane;
    let mut blockers = Vec::new();
    let (revision, via_tag) = match cp.resolve(target) {
        Resolution::Revision(r) => (Some(r), None),
        Resolution::Tag { tag, revision } => (Some(revision), Some(tag)),
        Resolution::Missing => {
            let installed: Vec<_> = cp.revisions.iter().map(|r| r.name.as_str()).collect();
            blockers.push(Blocker {
                kind: BlockerKind::RevisionNotInstalled,
                message: format!("{target} is neither an installed revision nor a tag (installed: {})", if installed.is_empty() { "none".into() } else { installed.join(", ") }),
                fix: format!("install istiod revision {target} first (upgrade guide step 2), or pick an installed one"),
            });
            (None, None)
        }
    };
    if let Some(rev) = revision.as_deref() {
        match cp.revision(rev) {
            None => blockers.push(Blocker {
                kind: BlockerKind::RevisionNotInstalled,
                message: format!("tag {target} points at revision {rev}, which is not installed"),
                fix: format!("kubectl rev-relabel --tag {target} <installed revision>"),
            }),
            Some(info) => {
                match &info.istiod {
                    Some(istiod) if istiod.ready > 0 => {}
                    Some(istiod) => blockers.push(Blocker {
                        kind: BlockerKind::IstiodNotReady,
                        message: format!(
                            "{}/{} has no ready replica ({}/{})",
                            istiod.namespace, istiod.name, istiod.ready, istiod.desired
                        ),
                        fix: format!(
                            "kubectl -n {} rollout status deployment/{}",
                            istiod.namespace, istiod.name
                        ),
                    }),
                    None => blockers.push(Blocker {
                        kind: BlockerKind::IstiodNotReady,
                        message: format!("revision {rev} has no istiod Deployment"),
                        fix: format!("install istiod revision {rev} (upgrade guide step 2)"),
                    }),
                }
                if !cp.has_injector(target) {
                    blockers.push(Blocker {
                        kind: BlockerKind::NoInjector,
                        message: format!("revision {rev} has no injector webhook: pods would start without sidecar"),
                        fix: format!("check the istio-sidecar-injector-{rev} MutatingWebhookConfiguration"),
                    });
                }
            }
        }
    }
    (revision, via_tag, blockers)
}

pub fn plan_relabel(
    snapshot: &Snapshot,
    analysis: &Analysis,
    targets: &Targets,
    target: &RevisionName,
) -> Result<RelabelPlan, Vec<String>> {
    let namespaces = select_namespaces(snapshot, analysis, targets)?;
    let target = target.as_str();
    let (target_revision, via_tag, mut blockers) = target_blockers(analysis, target);
    let target_version = target_revision
        .as_deref()
        .and_then(|r| analysis.control_plane.version_of(r));
    let mut warnings = Vec::new();
    let mut changes = Vec::new();
    let mut unchanged = Vec::new();

    for ns in namespaces {
        let before = managed(&ns.labels);
        let mut after = before.clone();
        after.insert(keys::REV.into(), Some(target.to_string()));
        after.insert(keys::INJECTION.into(), None);
        if before == after {
            unchanged.push(ns.name.clone());
            continue;
        }
        let status = analysis.namespaces.iter().find(|s| s.name == ns.name);
        // What the namespace selects now; when that revision has no injector any more, its
        // name still tells the version it is leaving.
        let current = status.and_then(|s| {
            s.effective.revision.clone().or_else(|| {
                let selector = s.effective.selector.as_deref()?;
                let resolved = analysis.control_plane.resolve(selector);
                Some(resolved.revision().unwrap_or(selector).to_string())
            })
        });

        if let (Some(from), Some(to)) = (
            current
                .as_deref()
                .and_then(|r| analysis.control_plane.version_of(r)),
            target_version.as_ref(),
        ) {
            match skip_verdict((from.major, from.minor), (to.major, to.minor)) {
                SkipVerdict::Fine => {}
                SkipVerdict::Warn => warnings.push(format!(
                    "{}: {} → {} skips a minor version (allowed for canary upgrades; the guide moves one at a time)",
                    ns.name, version_text(&from), version_text(to)
                )),
                SkipVerdict::Refuse => blockers.push(Blocker {
                    kind: BlockerKind::SkipTooLarge,
                    message: format!("{}: {} → {} is more than the two minor versions a canary upgrade allows (or goes backwards)", ns.name, version_text(&from), version_text(to)),
                    fix: "upgrade through the intermediate minor versions, one revision at a time".into(),
                }),
            }
        }

        // What the namespace's pods look like once the label says `target`.
        let mut workloads: BTreeMap<String, usize> = BTreeMap::new();
        let mut pods_to_restart = 0;
        let mut ignored = Vec::new();
        let labels_after = crate::analysis::injection::labels_after_relabel(&ns.labels, target);
        for pod in analysis.pods.iter().filter(|p| p.namespace == ns.name) {
            let raw = snapshot
                .pods
                .iter()
                .find(|p| p.namespace == pod.namespace && p.name == pod.name);
            // The webhooks and injector rules, evaluated on the labels the namespace will have.
            let needs = raw.is_some_and(|p| {
                let expected = analysis.pod_expected_with_namespace_labels(p, &labels_after);
                crate::analysis::sidecar::pod_drift(&pod.sidecar, &expected).needs_restart()
            });
            if needs {
                pods_to_restart += 1;
                let key = pod
                    .workload
                    .as_ref()
                    .map(|w| format!("{}/{}", w.kind.resource(), w.name))
                    .unwrap_or_else(|| format!("pod/{} (no restartable owner)", pod.name));
                *workloads.entry(key).or_insert(0) += 1;
            }
            if let Some(label) = raw.and_then(|p| p.labels.get(keys::REV))
                && label != target
            {
                ignored.push(format!("pod/{} istio.io/rev={label}", pod.name));
            }
        }
        let pinned_config = analysis
            .pinned_config
            .iter()
            .filter(|c| c.namespace == ns.name)
            .filter(|c| {
                let pinned = analysis.control_plane.resolve(&c.revision);
                pinned.revision().unwrap_or(&c.revision)
                    != target_revision.as_deref().unwrap_or(target)
            })
            .map(|c| {
                format!(
                    "{}/{} (istio.io/rev={})",
                    c.kind.to_ascii_lowercase(),
                    c.name,
                    c.revision
                )
            })
            .collect();

        changes.push(NamespaceChange {
            namespace: ns.name.clone(),
            resource_version: ns.resource_version.clone(),
            before,
            after,
            workloads_to_restart: workloads
                .into_iter()
                .map(|(w, n)| format!("{w} ({n} pod{})", if n == 1 { "" } else { "s" }))
                .collect(),
            pods_to_restart,
            ignored_pod_labels: ignored,
            pinned_config,
        });
    }
    blockers.dedup();
    Ok(RelabelPlan {
        target: target.to_string(),
        target_version: target_version.as_ref().map(|v| v.to_string()),
        target_revision,
        via_tag,
        changes,
        unchanged,
        blockers,
        warnings,
    })
}

fn version_text(v: &IstioVersion) -> String {
    v.to_string()
}

/// The single merge patch for one namespace: set the revision label, remove the legacy label,
/// record what was replaced, all guarded by the resourceVersion it was planned from.
pub fn relabel_patch(change: &NamespaceChange) -> Value {
    let mut labels = serde_json::Map::new();
    for (k, v) in &change.after {
        labels.insert(
            k.clone(),
            v.clone().map(Value::String).unwrap_or(Value::Null),
        );
    }
    let previous = serde_json::to_string(&change.before).unwrap_or_default();
    json!({
        "metadata": {
            "resourceVersion": change.resource_version,
            "labels": labels,
            "annotations": { PREVIOUS_LABELS: previous },
        }
    })
}

/// The undo of a relabel: the labels recorded in the annotation, restored exactly, and the
/// annotation removed. `None` when the namespace carries no record.
pub fn undo_patch(ns: &NamespaceInfo) -> Result<Option<Value>, String> {
    let Some(recorded) = ns.annotations.get(PREVIOUS_LABELS) else {
        return Ok(None);
    };
    let previous: BTreeMap<String, Option<String>> =
        serde_json::from_str(recorded).map_err(|e| {
            format!(
                "namespace {}: annotation {PREVIOUS_LABELS} is not valid: {e}",
                ns.name
            )
        })?;
    let mut labels = serde_json::Map::new();
    for key in MANAGED_LABELS {
        let value = previous.get(key).cloned().flatten();
        labels.insert(
            key.to_string(),
            value.map(Value::String).unwrap_or(Value::Null),
        );
    }
    Ok(Some(json!({
        "metadata": {
            "resourceVersion": ns.resource_version,
            "labels": labels,
            "annotations": { PREVIOUS_LABELS: Value::Null },
        }
    })))
}

/// Re-plans one namespace after a 409 Conflict, from its freshly read state: the new
/// resourceVersion and labels; `None` when it is now already on the target.
pub fn replan_change(
    change: &NamespaceChange,
    fresh: &NamespaceInfo,
    target: &str,
) -> Option<NamespaceChange> {
    let before = managed(&fresh.labels);
    let mut after = before.clone();
    after.insert(keys::REV.into(), Some(target.to_string()));
    after.insert(keys::INJECTION.into(), None);
    if before == after {
        return None;
    }
    Some(NamespaceChange {
        resource_version: fresh.resource_version.clone(),
        before,
        after,
        ..change.clone()
    })
}

/// The annotation on a tag's webhook configuration recording the revision it pointed at
/// before a retarget, for `--undo --tag`.
pub const PREVIOUS_REVISION: &str = "relabel.kubectl-rev.dev/previous-revision";

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
    pub unchanged: bool,
    pub blockers: Vec<Blocker>,
    pub warnings: Vec<String>,
}

pub fn plan_tag(
    snapshot: &Snapshot,
    analysis: &Analysis,
    tag: &str,
    target: &RevisionName,
) -> Result<TagPlan, String> {
    let cp = &analysis.control_plane;
    let info = cp
        .tag(tag)
        .ok_or_else(|| format!("tag {tag:?} does not exist (tags: {}); create it with `istioctl tag set {tag} --revision {target}`", {
            let names: Vec<_> = cp.tags.iter().map(|t| t.name.as_str()).collect();
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        }))?;
    let to = target.as_str();
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    if cp.tag(to).is_some() && cp.revision(to).is_none() {
        blockers.push(Blocker {
            kind: BlockerKind::RevisionNotInstalled,
            message: format!("{to} is a tag; a tag points at a revision, not at another tag"),
            fix: "name the revision the tag should point at".into(),
        });
    }
    let (_, _, target_blockers) = target_blockers(analysis, to);
    blockers.extend(target_blockers);
    if let (Some(from), Some(into)) = (cp.version_of(&info.revision), cp.version_of(to)) {
        match skip_verdict((from.major, from.minor), (into.major, into.minor)) {
            SkipVerdict::Fine => {}
            SkipVerdict::Warn => {
                warnings.push(format!("tag {tag}: {from} → {into} skips a minor version"))
            }
            SkipVerdict::Refuse => blockers.push(Blocker {
                kind: BlockerKind::SkipTooLarge,
                message: format!(
                    "tag {tag}: {from} → {into} is more than two minor versions (or backwards)"
                ),
                fix: "move through the intermediate revisions".into(),
            }),
        }
    }
    let injector = snapshot
        .mutating_webhooks
        .iter()
        .find(|m| {
            crate::analysis::revisions::is_injector(m)
                && m.labels.get(keys::REV).map(String::as_str) == Some(to)
        })
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let namespaces: Vec<String> = analysis
        .namespaces
        .iter()
        .filter(|n| {
            n.effective.via_tag.as_deref() == Some(tag)
                || (tag == crate::revision::DEFAULT_REVISION
                    && n.effective.mode == crate::analysis::InjectionMode::LegacyLabel)
        })
        .map(|n| n.name.clone())
        .collect();
    let pods_to_restart = analysis
        .pods
        .iter()
        .filter(|p| namespaces.contains(&p.namespace))
        .filter(|p| p.sidecar.revision().is_some_and(|r| r != to))
        .count();
    let validator = (tag == crate::revision::DEFAULT_REVISION)
        .then(|| {
            let revision_validator = snapshot.validating_webhooks.iter().find(|v| {
                v.name != "istiod-default-validator"
                    && v.labels.get(keys::REV).map(String::as_str) == Some(to)
            })?;
            snapshot
                .validating_webhooks
                .iter()
                .any(|v| v.name == "istiod-default-validator")
                .then(|| {
                    (
                        "istiod-default-validator".to_string(),
                        revision_validator.name.clone(),
                    )
                })
        })
        .flatten();
    Ok(TagPlan {
        tag: tag.to_string(),
        webhook: info.webhook.clone(),
        from_revision: info.revision.clone(),
        to_revision: to.to_string(),
        injector,
        unchanged: info.revision == to,
        namespaces,
        pods_to_restart,
        validator,
        blockers,
        warnings,
    })
}

/// Relabels a retargeted webhook configuration to `revision`, recording the one it leaves.
fn point_at_revision(
    meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    revision: &str,
) {
    let labels = meta.labels.get_or_insert_with(Default::default);
    let previous = labels
        .insert(keys::REV.into(), revision.into())
        .unwrap_or_default();
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(PREVIOUS_REVISION.into(), previous);
}

/// The tag's webhooks, pointed at another revision: each keeps its name, selectors (the tag's
/// matchers), rules and policies, and takes the client configuration (URL or service, path,
/// CA bundle) of the revision's own injector — what `istioctl tag set --overwrite` produces.
pub fn retarget_tag_webhooks(
    tag: &k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration,
    injector: &k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration,
    revision: &str,
) -> Result<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration, String> {
    let source = injector.webhooks.as_deref().unwrap_or_default();
    let first = source.first().ok_or_else(|| {
        format!(
            "{} has no webhooks to copy",
            injector.metadata.name.as_deref().unwrap_or("injector")
        )
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

/// `istiod-default-validator` pointed at a revision's validator (the `default` tag moves it too).
pub fn retarget_default_validator(
    validator: &k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
    revision_validator: &k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
    revision: &str,
) -> Result<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration, String> {
    let first = revision_validator
        .webhooks
        .as_deref()
        .unwrap_or_default()
        .first()
        .ok_or("the revision's validator has no webhooks to copy")?
        .client_config
        .clone();
    let mut out = validator.clone();
    point_at_revision(&mut out.metadata, revision);
    for webhook in out.webhooks.iter_mut().flatten() {
        webhook.client_config = first.clone();
    }
    Ok(out)
}
