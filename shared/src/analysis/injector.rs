//! What Istio's injector itself decides once a webhook called it: `injectRequired`
//! (istio `pkg/kube/inject/inject.go`, DOMAIN §2 rule 5), for the revision that answers, with
//! that revision's `istio-sidecar-injector-<rev>` configuration. Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use super::revisions::ControlPlane;
use crate::keys;
use crate::selector::Selector;
use crate::snapshot::{InjectorConfigInfo, Labels};

/// Namespaces the injector never injects (`inject.IgnoredNamespaces`).
pub const IGNORED_NAMESPACES: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

/// What `injectRequired` reads of a pod (or of a workload's pod template).
#[derive(Debug, Clone, Copy)]
pub struct PodFacts<'a> {
    pub labels: &'a Labels,
    /// The `sidecar.istio.io/inject` annotation.
    pub inject_annotation: Option<&'a str>,
    pub host_network: bool,
}

impl<'a> PodFacts<'a> {
    /// A pod with no labels, no annotation and no host network: what a namespace alone gives.
    pub fn plain(empty: &'a Labels) -> Self {
        Self {
            labels: empty,
            inject_annotation: None,
            host_network: false,
        }
    }
}

/// How `sidecar.istio.io/inject` values are read. Istio 1.27 (istio/istio#56737) made it
/// strict; before, any non-empty value other than y/yes/true/on (any case) meant "no".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueParsing {
    /// Istio ≤ 1.26.
    Lenient,
    /// Istio ≥ 1.27: only `true` and `false` count; anything else falls back to the policy.
    Strict,
}

/// Why a pod gets no sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum NoSidecar {
    /// No injector webhook matches the namespace and pod labels.
    NoWebhook,
    /// The matching webhook calls a revision that is not installed: the call fails, and with
    /// `failurePolicy: Fail` pods are refused.
    RevisionNotInstalled { revision: String },
    /// `hostNetwork: true`: the injector never touches those.
    HostNetwork,
    /// kube-system, kube-public, kube-node-lease, local-path-storage.
    SystemNamespace,
    /// `sidecar.istio.io/inject` says no (`via`: label or annotation; the label wins).
    OptedOut { via: &'static str, value: String },
    /// The injector configuration's `neverInjectSelector` matches the pod's labels.
    NeverInjectSelector,
    /// The injector configuration's `policy: disabled`, and the pod does not opt in.
    PolicyDisabled,
    /// The injector configuration has no valid `policy`: Istio then injects nothing.
    InvalidPolicy { policy: String },
}

impl NoSidecar {
    /// Short text for tables: why nothing is injected.
    pub fn describe(&self) -> String {
        match self {
            NoSidecar::NoWebhook => "no injector webhook matches".into(),
            NoSidecar::RevisionNotInstalled { revision } => {
                format!("its webhook calls {revision}, which is not installed")
            }
            NoSidecar::HostNetwork => "hostNetwork".into(),
            NoSidecar::SystemNamespace => "system namespace".into(),
            NoSidecar::OptedOut { via, value } => format!("{} {via} {value:?}", keys::INJECT),
            NoSidecar::NeverInjectSelector => "neverInjectSelector".into(),
            NoSidecar::PolicyDisabled => "injection policy disabled".into(),
            NoSidecar::InvalidPolicy { policy } => format!("invalid injection policy {policy:?}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Enabled,
    Disabled,
}

/// One revision's `injectRequired`.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectorRules {
    policy: Result<Policy, String>,
    never_inject: Vec<Selector>,
    always_inject: Vec<Selector>,
    parsing: ValueParsing,
}

impl InjectorRules {
    /// The rules of a revision with the chart's defaults (`policy: enabled`, no selectors):
    /// what applies when its configuration was not read.
    pub fn defaults(parsing: ValueParsing) -> Self {
        Self {
            policy: Ok(Policy::Enabled),
            never_inject: Vec::new(),
            always_inject: Vec::new(),
            parsing,
        }
    }

    pub fn from_config(config: &InjectorConfigInfo, parsing: ValueParsing) -> Self {
        // Istio skips a selector it cannot convert (with a warning), and an empty one.
        let selectors =
            |list: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector]| {
                list.iter()
                    .filter_map(|s| Selector::from_label_selector(s).ok())
                    .filter(|s| !s.selects_all())
                    .collect()
            };
        let policy = match config.policy.as_deref() {
            Some("enabled") => Ok(Policy::Enabled),
            Some("disabled") => Ok(Policy::Disabled),
            // A `config` that could not be read: istiod keeps serving its last good one, which
            // the chart writes with policy enabled.
            None if config.error.is_some() => Ok(Policy::Enabled),
            other => Err(other.unwrap_or_default().to_string()),
        };
        Self {
            policy,
            never_inject: selectors(&config.never_inject_selector),
            always_inject: selectors(&config.always_inject_selector),
            parsing,
        }
    }

    /// `injectRequired`: `Ok` when the injector injects this pod in `namespace`.
    pub fn inject_required(&self, namespace: &str, pod: &PodFacts) -> Result<(), NoSidecar> {
        if pod.host_network {
            return Err(NoSidecar::HostNetwork);
        }
        if IGNORED_NAMESPACES.contains(&namespace) {
            return Err(NoSidecar::SystemNamespace);
        }
        // The label is the newer API: present (even empty), it wins over the annotation.
        let (value, via) = match pod.labels.get(keys::INJECT) {
            Some(label) => (label.as_str(), "label"),
            None => (pod.inject_annotation.unwrap_or_default(), "annotation"),
        };
        let explicit = match (self.parsing, value) {
            (_, "") => None,
            (ValueParsing::Strict, "true") => Some(true),
            (ValueParsing::Strict, "false") => Some(false),
            (ValueParsing::Strict, _) => None,
            (ValueParsing::Lenient, v) => Some(matches!(
                v.to_ascii_lowercase().as_str(),
                "y" | "yes" | "true" | "on"
            )),
        };
        // No usable value: the configuration's selectors, neverInjectSelector first.
        let (explicit, by_selector) = match explicit {
            Some(inject) => (Some(inject), false),
            None if self.never_inject.iter().any(|s| s.matches(pod.labels)) => (Some(false), true),
            None if self.always_inject.iter().any(|s| s.matches(pod.labels)) => (Some(true), true),
            None => (None, false),
        };
        match (&self.policy, explicit) {
            (Err(policy), _) => Err(NoSidecar::InvalidPolicy {
                policy: policy.clone(),
            }),
            (Ok(_), Some(true)) => Ok(()),
            (Ok(_), Some(false)) if by_selector => Err(NoSidecar::NeverInjectSelector),
            (Ok(_), Some(false)) => Err(NoSidecar::OptedOut {
                via,
                value: value.to_string(),
            }),
            (Ok(Policy::Enabled), None) => Ok(()),
            (Ok(Policy::Disabled), None) => Err(NoSidecar::PolicyDisabled),
        }
    }
}

/// Each revision's rules: its configuration where one was read, the defaults otherwise; the
/// value parsing by the revision's Istio version (unknown: the current, strict one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InjectorRulesByRevision {
    by_revision: BTreeMap<String, InjectorRules>,
    parsing: BTreeMap<String, ValueParsing>,
}

pub fn value_parsing(revision: &str, cp: &ControlPlane) -> ValueParsing {
    match cp.version_of(revision) {
        Some(v) if v.major == 1 && v.minor <= 26 => ValueParsing::Lenient,
        Some(v) if v.major < 1 => ValueParsing::Lenient,
        _ => ValueParsing::Strict,
    }
}

impl InjectorRulesByRevision {
    pub fn new(configs: &[InjectorConfigInfo], cp: &ControlPlane) -> Self {
        let parsing: BTreeMap<String, ValueParsing> = cp
            .revisions
            .iter()
            .map(|r| (r.name.clone(), value_parsing(&r.name, cp)))
            .collect();
        let by_revision = configs
            .iter()
            .map(|c| {
                let p = parsing
                    .get(&c.revision)
                    .copied()
                    .unwrap_or(ValueParsing::Strict);
                (c.revision.clone(), InjectorRules::from_config(c, p))
            })
            .collect();
        Self {
            by_revision,
            parsing,
        }
    }

    pub fn inject_required(
        &self,
        revision: &str,
        namespace: &str,
        pod: &PodFacts,
    ) -> Result<(), NoSidecar> {
        match self.by_revision.get(revision) {
            Some(rules) => rules.inject_required(namespace, pod),
            None => InjectorRules::defaults(
                self.parsing
                    .get(revision)
                    .copied()
                    .unwrap_or(ValueParsing::Strict),
            )
            .inject_required(namespace, pod),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn decide(parsing: ValueParsing, label: Option<&str>, annotation: Option<&str>) -> bool {
        let l = label.map_or_else(Labels::new, |v| labels(&[(keys::INJECT, v)]));
        let pod = PodFacts {
            labels: &l,
            inject_annotation: annotation,
            host_network: false,
        };
        InjectorRules::defaults(parsing)
            .inject_required("apps", &pod)
            .is_ok()
    }

    #[test]
    fn value_parsing_changed_in_1_27() {
        use ValueParsing::*;
        // (value, ≤1.26 injects, ≥1.27 injects) with policy enabled.
        for (value, lenient, strict) in [
            ("true", true, true),
            ("false", false, false),
            ("yes", true, true),
            ("no", false, true),
            ("False", false, true),
            ("TRUE", true, true),
            ("off", false, true),
            ("", true, true),
        ] {
            assert_eq!(
                decide(Lenient, Some(value), None),
                lenient,
                "{value:?} ≤1.26"
            );
            assert_eq!(decide(Strict, Some(value), None), strict, "{value:?} ≥1.27");
        }
    }

    #[test]
    fn label_wins_over_annotation_even_when_empty() {
        use ValueParsing::Strict;
        assert!(!decide(Strict, None, Some("false")));
        assert!(decide(Strict, Some("true"), Some("false")));
        assert!(!decide(Strict, Some("false"), Some("true")));
        assert!(
            decide(Strict, Some(""), Some("false")),
            "label present, empty"
        );
    }

    #[test]
    fn host_network_and_system_namespaces_are_never_injected() {
        let empty = Labels::new();
        let rules = InjectorRules::defaults(ValueParsing::Strict);
        let host = PodFacts {
            host_network: true,
            ..PodFacts::plain(&empty)
        };
        assert_eq!(
            rules.inject_required("apps", &host),
            Err(NoSidecar::HostNetwork)
        );
        assert_eq!(
            rules.inject_required("kube-system", &PodFacts::plain(&empty)),
            Err(NoSidecar::SystemNamespace)
        );
    }
}
