//! Whether istiod would inject a pod at all: Istio's `injectRequired`
//! (`pkg/kube/inject/inject.go`), step by step, for the revision this request is for, with that
//! revision's `istio-sidecar-injector-<rev>` configuration. Written from Istio's source on its
//! own (not shared with the plugins' analysis), so the injection matrix compares two
//! independent readings of the same rules.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use serde::Deserialize;

/// `inject.IgnoredNamespaces`.
const IGNORED_NAMESPACES: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];
const INJECT: &str = "sidecar.istio.io/inject";

/// The fields of the injector ConfigMap's `config` that `injectRequired` reads
/// (`inject.Config`). A missing `policy` is Istio's "illegal value": nothing is injected.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    #[serde(default)]
    pub policy: String,
    #[serde(default)]
    pub never_inject_selector: Vec<LabelSelector>,
    #[serde(default)]
    pub always_inject_selector: Vec<LabelSelector>,
}

impl Config {
    /// What the istiod chart writes by default.
    pub fn chart_default() -> Self {
        Self {
            policy: "enabled".into(),
            ..Default::default()
        }
    }
}

/// `(major, minor)` of a proxy image tag (`docker.io/istio/proxyv2:1.30.0` → `(1, 30)`).
pub fn version_of_image(image: &str) -> Option<(u32, u32)> {
    let tag = image.rsplit('/').next()?.split_once(':')?.1;
    let mut parts = tag.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Istio 1.27 (istio/istio#56737) accepts only `true`/`false`; before, a yaml-ish boolean.
pub fn strict_values(version: Option<(u32, u32)>) -> bool {
    version.is_none_or(|v| v >= (1, 27))
}

/// `metav1.LabelSelectorAsSelector`, `None` where it fails (Istio logs and skips those).
fn as_selector(selector: &LabelSelector) -> Option<Selector> {
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.as_ref().map_or(0, Vec::len);
        let valid = match requirement.operator.as_str() {
            "In" | "NotIn" => values > 0,
            "Exists" | "DoesNotExist" => values == 0,
            _ => false,
        };
        if !valid {
            return None;
        }
    }
    Selector::try_from(selector.clone()).ok()
}

/// `injectRequired(IgnoredNamespaces, config, &pod.Spec, pod.ObjectMeta)`, with the namespace
/// of the admission request (istiod fills it in when the pod has none).
pub fn inject_required(config: &Config, strict: bool, namespace: &str, pod: &Pod) -> bool {
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    if host_network {
        return false;
    }
    if IGNORED_NAMESPACES.contains(&namespace) {
        return false;
    }
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);

    let mut object_selector = annotations.get(INJECT).cloned().unwrap_or_default();
    if let Some(label) = labels.get(INJECT) {
        // The label is the new API; if both are present the label wins.
        object_selector = label.clone();
    }
    let (mut use_default, mut inject) = (false, false);
    if strict {
        match object_selector.as_str() {
            "true" => inject = true,
            "false" => inject = false,
            "" => use_default = true,
            _ => use_default = true,
        }
    } else {
        match object_selector.to_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => inject = true,
            "" => use_default = true,
            _ => {}
        }
    }

    if use_default {
        for never in &config.never_inject_selector {
            if let Some(selector) = as_selector(never)
                && !selector.selects_all()
                && selector.matches(labels)
            {
                inject = false;
                use_default = false;
                break;
            }
        }
    }
    if use_default {
        for always in &config.always_inject_selector {
            if let Some(selector) = as_selector(always)
                && !selector.selects_all()
                && selector.matches(labels)
            {
                inject = true;
                use_default = false;
                break;
            }
        }
    }

    match config.policy.as_str() {
        "disabled" => !use_default && inject,
        "enabled" => use_default || inject,
        // "Illegal value for autoInject … Auto injection disabled!"
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: serde_json::Value, annotations: serde_json::Value, host: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": {"hostNetwork": host, "containers": [{"name": "a", "image": "a"}]}
        }))
        .unwrap()
    }

    #[test]
    fn refusals_follow_istio() {
        let config = Config::chart_default();
        let plain = pod(json!({}), json!({}), false);
        assert!(inject_required(&config, true, "apps", &plain));
        assert!(!inject_required(&config, true, "kube-system", &plain));
        assert!(!inject_required(
            &config,
            true,
            "apps",
            &pod(json!({}), json!({}), true)
        ));
        let annotated = pod(json!({}), json!({INJECT: "false"}), false);
        assert!(!inject_required(&config, true, "apps", &annotated));
        let label_wins = pod(json!({INJECT: "true"}), json!({INJECT: "false"}), false);
        assert!(inject_required(&config, true, "apps", &label_wins));
        let no = pod(json!({INJECT: "no"}), json!({}), false);
        assert!(
            inject_required(&config, true, "apps", &no),
            "1.27+: invalid → policy"
        );
        assert!(
            !inject_required(&config, false, "apps", &no),
            "≤1.26: anything else is no"
        );
    }

    #[test]
    fn configuration_selectors_and_policy() {
        let config: Config = serde_saphyr::from_str(
            "policy: disabled\nneverInjectSelector:\n- matchLabels: {batch: \"true\"}\nalwaysInjectSelector:\n- matchExpressions:\n  - {key: mesh, operator: Exists}\ntemplates: {sidecar: ignored}\n",
        )
        .unwrap();
        assert!(!inject_required(
            &config,
            true,
            "apps",
            &pod(json!({}), json!({}), false)
        ));
        assert!(inject_required(
            &config,
            true,
            "apps",
            &pod(json!({"mesh": "x"}), json!({}), false)
        ));
        assert!(!inject_required(
            &config,
            true,
            "apps",
            &pod(json!({"mesh": "x", "batch": "true"}), json!({}), false)
        ));
        assert_eq!(
            version_of_image("docker.io/istio/proxyv2:1.31.0-dev"),
            Some((1, 31))
        );
        assert!(!strict_values(Some((1, 26))));
    }
}
