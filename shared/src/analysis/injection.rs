//! Which revision injects a new pod (DOMAIN §2): the cluster's mutating webhooks evaluated as
//! the API server does (`webhooks`), then the answering injector's own `injectRequired`
//! (`injector`). This is the one place that decides it; inventory, relabel, restart and prune
//! all ask here. Pure.

use serde::Serialize;

use super::injector::{InjectorRulesByRevision, NoSidecar, PodFacts};
use super::revisions::ControlPlane;
use super::webhooks::{AdmissionChain, InjectorAnswer, WebhookRef, namespace_selector_labels};
use crate::keys;
use crate::revision::DEFAULT_REVISION;
use crate::snapshot::{Labels, Snapshot};

/// Which injection labels a namespace carries: what it asks for (the webhooks decide what it
/// gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InjectionMode {
    /// `istio-injection=enabled`: the default revision's webhooks match, whatever
    /// `istio.io/rev` says.
    LegacyLabel,
    /// `istio.io/rev=X` (and no `istio-injection`).
    RevisionLabel,
    /// `istio-injection` set to anything but `enabled`: no stock webhook matches.
    Disabled,
    /// `istio.io/dataplane-mode=ambient` and no injection label: no sidecar by namespace, but
    /// pod-level opt-ins still get one (no webhook looks at the dataplane mode).
    Ambient,
    /// No namespace label: each pod's own labels decide.
    PodLevel,
}

/// The revision a namespace's (or a pod's, or a pod template's) new pods get, with how it was
/// decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveRevision {
    pub mode: InjectionMode,
    /// The label value that asks for a revision (`default` for the legacy label and
    /// `sidecar.istio.io/inject=true`), if any.
    pub selector: Option<String>,
    /// The installed revision whose sidecar the pod gets; `None` when it gets none.
    pub revision: Option<String>,
    /// The tag the deciding webhook stands for, if any.
    pub via_tag: Option<String>,
    /// The webhook (configuration and name) whose injector decides: the last one called that
    /// injects, else the last one that declined.
    pub webhook: Option<WebhookRef>,
    /// Why there is no sidecar, when there is none.
    pub no_sidecar: Option<NoSidecar>,
}

impl EffectiveRevision {
    /// A label asks for a revision that nothing installed delivers: pods start without sidecar
    /// (or, with `failurePolicy: Fail`, are refused).
    pub fn is_unresolved(&self) -> bool {
        self.selector.is_some()
            && self.revision.is_none()
            && matches!(
                self.no_sidecar,
                Some(NoSidecar::NoWebhook | NoSidecar::RevisionNotInstalled { .. })
            )
    }

    /// Short text for tables: `1-20`, `1-20 (tag prod)`, `1-19 (istio-injection)`, `<none>`.
    pub fn display(&self) -> String {
        if let Some(r) = &self.revision {
            return match (self.mode, &self.via_tag) {
                (InjectionMode::LegacyLabel, _) => format!("{r} (istio-injection)"),
                (_, Some(tag)) => format!("{r} (tag {tag})"),
                _ => r.clone(),
            };
        }
        match (&self.selector, self.mode, &self.no_sidecar) {
            (Some(selector), ..) if self.is_unresolved() => format!("{selector} (not installed)"),
            (_, InjectionMode::Disabled, _) => "disabled".into(),
            (_, InjectionMode::Ambient, _) => "ambient".into(),
            (_, _, Some(NoSidecar::NoWebhook) | None) => "<none>".into(),
            (_, _, Some(why)) => format!("<none> ({})", why.describe()),
        }
    }
}

/// The namespace side of an evaluation: its name and its labels as namespaceSelectors see them.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceLabels {
    pub name: String,
    labels: Labels,
}

impl NamespaceLabels {
    pub fn new(name: &str, labels: &Labels) -> Self {
        Self {
            name: name.to_string(),
            labels: namespace_selector_labels(name, labels),
        }
    }

    pub fn labels(&self) -> &Labels {
        &self.labels
    }
}

/// What the namespace labels ask for (DOMAIN §2 rules 1–4, 6), before any webhook runs.
fn mode_of(labels: &Labels) -> InjectionMode {
    match labels.get(keys::INJECTION).map(String::as_str) {
        Some("enabled") => InjectionMode::LegacyLabel,
        Some(_) => InjectionMode::Disabled,
        None if labels.contains_key(keys::REV) => InjectionMode::RevisionLabel,
        None if labels
            .get(keys::DATAPLANE_MODE)
            .is_some_and(|m| m == "ambient") =>
        {
            InjectionMode::Ambient
        }
        None => InjectionMode::PodLevel,
    }
}

/// The label value that asks for a revision, if any: the namespace's, else (when the
/// namespace has neither label) the pod's `istio.io/rev`, else its `inject=true`. Only used to
/// tell "asked for something not installed" from "asked for nothing".
fn asked_for(mode: InjectionMode, namespace: &Labels, pod: &PodFacts) -> Option<String> {
    // Every stock webhook's objectSelector excludes this label value: such a pod asks for
    // nothing, whatever its namespace says.
    if pod.labels.get(keys::INJECT).map(String::as_str) == Some("false") {
        return None;
    }
    match mode {
        InjectionMode::LegacyLabel => Some(DEFAULT_REVISION.to_string()),
        InjectionMode::RevisionLabel => namespace.get(keys::REV).cloned(),
        InjectionMode::Disabled => None,
        InjectionMode::Ambient | InjectionMode::PodLevel => {
            pod.labels.get(keys::REV).cloned().or_else(|| {
                (pod.labels.get(keys::INJECT).map(String::as_str) == Some("true"))
                    .then(|| DEFAULT_REVISION.to_string())
            })
        }
    }
}

/// Everything that decides injection in one cluster: its webhooks, each revision's injector
/// rules and which revisions are installed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InjectionModel {
    chain: AdmissionChain,
    rules: InjectorRulesByRevision,
    installed: std::collections::BTreeSet<String>,
}

impl InjectionModel {
    pub fn new(snapshot: &Snapshot, cp: &ControlPlane) -> Self {
        Self {
            chain: AdmissionChain::new(&snapshot.mutating_webhooks, cp),
            rules: InjectorRulesByRevision::new(&snapshot.injector_configs, cp),
            installed: cp.revisions.iter().map(|r| r.name.clone()).collect(),
        }
    }

    /// What a pod with no labels gets in this namespace: the namespace's effective revision.
    pub fn namespace_effective_revision(&self, namespace: &NamespaceLabels) -> EffectiveRevision {
        let empty = Labels::new();
        self.pod_expected_revision(namespace, &PodFacts::plain(&empty))
    }

    /// The revision a pod (or pod template) created now in `namespace` would run.
    pub fn pod_expected_revision(
        &self,
        namespace: &NamespaceLabels,
        pod: &PodFacts,
    ) -> EffectiveRevision {
        let mode = mode_of(namespace.labels());
        let selector = asked_for(mode, namespace.labels(), pod);
        let dispatch = self
            .chain
            .dispatch(namespace.labels(), pod.labels, |injector| {
                if !self.installed.contains(&injector.revision) {
                    return InjectorAnswer::CallFails;
                }
                match self
                    .rules
                    .inject_required(&injector.revision, &namespace.name, pod)
                {
                    Ok(()) => InjectorAnswer::Inject,
                    Err(why) => InjectorAnswer::Decline(why),
                }
            });
        let mut effective = EffectiveRevision {
            mode,
            selector,
            revision: None,
            via_tag: None,
            webhook: None,
            no_sidecar: None,
        };
        if let Some((webhook, injector)) = dispatch.denied.or(dispatch.failed_open)
            && dispatch.sidecar.is_none()
        {
            effective.no_sidecar = Some(NoSidecar::RevisionNotInstalled {
                revision: injector.revision,
            });
            effective.via_tag = injector.tag;
            effective.webhook = Some(webhook);
        } else if let Some((webhook, injector)) = dispatch.sidecar {
            effective.revision = Some(injector.revision);
            effective.via_tag = injector.tag;
            effective.webhook = Some(webhook);
        } else if let Some((webhook, injector, why)) = dispatch.declined {
            effective.no_sidecar = Some(why);
            effective.via_tag = injector.tag;
            effective.webhook = Some(webhook);
        } else {
            effective.no_sidecar = Some(NoSidecar::NoWebhook);
        }
        effective
    }
}

/// A pod-level `istio.io/rev` that the namespace's label overrides (DOMAIN §2 rule 3): the
/// stock `rev.object` webhooks only match in namespaces without injection labels.
pub fn ignored_pod_rev_label<'a>(
    namespace: &EffectiveRevision,
    pod_labels: &'a Labels,
) -> Option<&'a str> {
    let pod_rev = pod_labels.get(keys::REV)?;
    match namespace.mode {
        InjectionMode::LegacyLabel | InjectionMode::RevisionLabel
            if namespace.selector.as_deref() != Some(pod_rev.as_str()) =>
        {
            Some(pod_rev)
        }
        _ => None,
    }
}
