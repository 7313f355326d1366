//! Which revision injects a new pod: the precedence rules of DOMAIN §2. This is the one place
//! that decides it; relabel, restart and prune all ask here. Pure.

use serde::Serialize;

use super::revisions::{ControlPlane, Resolution};
use crate::keys;
use crate::revision::DEFAULT_REVISION;
use crate::snapshot::{Labels, NamespaceInfo};

/// Why a namespace's pods get (or do not get) a sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InjectionMode {
    /// `istio-injection=enabled`: the default revision injects, whatever `istio.io/rev` says.
    LegacyLabel,
    /// `istio.io/rev=X` (and no `istio-injection`).
    RevisionLabel,
    /// `istio-injection` set to anything but `enabled`: no webhook matches.
    Disabled,
    /// `istio.io/dataplane-mode=ambient`: no sidecars.
    Ambient,
    /// No namespace label: each pod's own labels decide.
    PodLevel,
}

/// The revision a namespace's new pods get, with how it was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveRevision {
    pub mode: InjectionMode,
    /// The label value that selects it (`default` for the legacy label).
    pub selector: Option<String>,
    /// The installed revision that injects, once tags are resolved; `None` when nothing would.
    pub revision: Option<String>,
    /// The tag it went through, if any.
    pub via_tag: Option<String>,
}

impl EffectiveRevision {
    fn none(mode: InjectionMode) -> Self {
        Self {
            mode,
            selector: None,
            revision: None,
            via_tag: None,
        }
    }

    /// A label selects something that would not inject: pods start without sidecar.
    pub fn is_unresolved(&self) -> bool {
        self.selector.is_some() && self.revision.is_none()
    }

    /// Short text for tables: `1-20`, `1-20 (tag prod)`, `1-19 (istio-injection)`, `<none>`.
    pub fn display(&self) -> String {
        match (self.mode, &self.revision, &self.via_tag, &self.selector) {
            (InjectionMode::Disabled, ..) => "disabled".into(),
            (InjectionMode::Ambient, ..) => "ambient".into(),
            (InjectionMode::PodLevel, ..) => "<none>".into(),
            (_, None, _, Some(selector)) => format!("{selector} (not installed)"),
            (InjectionMode::LegacyLabel, Some(r), ..) => format!("{r} (istio-injection)"),
            (_, Some(r), Some(tag), _) => format!("{r} (tag {tag})"),
            (_, Some(r), None, _) => r.clone(),
            (_, None, _, None) => "<none>".into(),
        }
    }
}

/// What a resolution of `value` means, as an effective revision.
fn resolved(mode: InjectionMode, value: &str, cp: &ControlPlane) -> EffectiveRevision {
    let resolution = cp.resolve(value);
    let injects = cp.has_injector(value);
    EffectiveRevision {
        mode,
        selector: Some(value.to_string()),
        revision: injects
            .then(|| resolution.revision().map(str::to_string))
            .flatten(),
        via_tag: match resolution {
            Resolution::Tag { tag, .. } => Some(tag),
            _ => None,
        },
    }
}

/// The legacy label and `sidecar.istio.io/inject=true` both mean "the default revision":
/// the `default` tag if there is one, else the revision that carries the default webhooks.
fn default_target(mode: InjectionMode, cp: &ControlPlane) -> EffectiveRevision {
    if cp.tag(DEFAULT_REVISION).is_some() {
        return resolved(mode, DEFAULT_REVISION, cp);
    }
    match &cp.default_revision {
        Some(default) => resolved(mode, default, cp),
        None => EffectiveRevision {
            mode,
            selector: Some(DEFAULT_REVISION.to_string()),
            revision: None,
            via_tag: None,
        },
    }
}

/// DOMAIN §2 rules 1, 2, 3 and 6 for a namespace, from its labels.
pub fn namespace_effective_revision(labels: &Labels, cp: &ControlPlane) -> EffectiveRevision {
    match labels.get(keys::INJECTION).map(String::as_str) {
        Some("enabled") => return default_target(InjectionMode::LegacyLabel, cp),
        Some(_) => return EffectiveRevision::none(InjectionMode::Disabled),
        None => {}
    }
    if let Some(rev) = labels.get(keys::REV) {
        return resolved(InjectionMode::RevisionLabel, rev, cp);
    }
    if labels
        .get(keys::DATAPLANE_MODE)
        .is_some_and(|m| m == "ambient")
    {
        return EffectiveRevision::none(InjectionMode::Ambient);
    }
    EffectiveRevision::none(InjectionMode::PodLevel)
}

pub fn namespace_revision(ns: &NamespaceInfo, cp: &ControlPlane) -> EffectiveRevision {
    namespace_effective_revision(&ns.labels, cp)
}

/// The revision a pod created now would be injected by (DOMAIN §2 rules 3–5): the namespace
/// decides when it is labelled; otherwise the pod's own labels.
pub fn pod_expected_revision(
    namespace: &EffectiveRevision,
    pod_labels: &Labels,
    cp: &ControlPlane,
) -> EffectiveRevision {
    let opted_out = pod_labels.get(keys::INJECT).is_some_and(|v| v == "false");
    match namespace.mode {
        InjectionMode::Disabled | InjectionMode::Ambient => namespace.clone(),
        _ if opted_out => EffectiveRevision::none(namespace.mode),
        InjectionMode::LegacyLabel | InjectionMode::RevisionLabel => namespace.clone(),
        InjectionMode::PodLevel => {
            if let Some(rev) = pod_labels.get(keys::REV) {
                resolved(InjectionMode::PodLevel, rev, cp)
            } else if pod_labels.get(keys::INJECT).is_some_and(|v| v == "true") {
                default_target(InjectionMode::PodLevel, cp)
            } else {
                EffectiveRevision::none(InjectionMode::PodLevel)
            }
        }
    }
}

/// A pod-level `istio.io/rev` that the namespace's label overrides (DOMAIN §2 rule 3).
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
