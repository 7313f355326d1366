//! Kubernetes label selectors: one implementation for `-l`, webhook `namespaceSelector` /
//! `objectSelector` and the injector's `neverInjectSelector` / `alwaysInjectSelector`.
//! Matching is kube's (`kube::core::Selector`); this module adds the textual `-l` syntax and
//! the validation the API server applies to a `metav1.LabelSelector`. Pure.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Expression, SelectorExt};

use crate::error::RevError;
use crate::snapshot::Labels;

/// A label selector: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(kube::core::Selector);

impl Selector {
    /// Parses kubectl's `-l` syntax: `app=x,tier!=db,env in (a,b),!legacy,team`.
    pub fn parse(input: &str) -> Result<Self, RevError> {
        let bad = |why: &str| RevError::Usage(format!("invalid label selector {input:?}: {why}"));
        let mut expressions = Vec::new();
        for part in split_top_level(input) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let expression = if let Some(key) = part.strip_prefix('!') {
                Expression::DoesNotExist(key.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                Expression::NotEqual(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Expression::Equal(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Expression::NotIn(
                    k.trim().into(),
                    set_values(rest).ok_or_else(|| bad("expected (a,b)"))?,
                )
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Expression::In(
                    k.trim().into(),
                    set_values(rest).ok_or_else(|| bad("expected (a,b)"))?,
                )
            } else {
                Expression::Exists(part.to_string())
            };
            let key = match &expression {
                Expression::Equal(k, _)
                | Expression::NotEqual(k, _)
                | Expression::In(k, _)
                | Expression::NotIn(k, _)
                | Expression::Exists(k)
                | Expression::DoesNotExist(k) => k,
            };
            if key.is_empty() || key.contains(char::is_whitespace) {
                return Err(bad("a key is empty or has spaces"));
            }
            expressions.push(expression);
        }
        Ok(Self(expressions.into_iter().collect()))
    }

    /// A `metav1.LabelSelector`, refused where apimachinery's `LabelSelectorAsSelector`
    /// refuses it (an unknown operator, `In`/`NotIn` without values, `Exists`/`DoesNotExist`
    /// with values). An absent selector is `None` at the call site: for webhooks it matches
    /// everything.
    pub fn from_label_selector(selector: &LabelSelector) -> Result<Self, String> {
        let mut expressions: Vec<Expression> = selector
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| Expression::Equal(k.clone(), v.clone()))
            .collect();
        for requirement in selector.match_expressions.iter().flatten() {
            let key = requirement.key.clone();
            let values: BTreeSet<String> = requirement.values.iter().flatten().cloned().collect();
            let expression = match requirement.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(format!(
                        "{key}: operator {} needs values",
                        requirement.operator
                    ));
                }
                "In" => Expression::In(key, values),
                "NotIn" => Expression::NotIn(key, values),
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(format!(
                        "{key}: operator {} takes no values",
                        requirement.operator
                    ));
                }
                "Exists" => Expression::Exists(key),
                "DoesNotExist" => Expression::DoesNotExist(key),
                other => return Err(format!("{key}: unknown operator {other:?}")),
            };
            expressions.push(expression);
        }
        Ok(Self(expressions.into_iter().collect()))
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.matches(labels)
    }

    /// No requirement at all: matches every object (and, for Istio's inject selectors,
    /// is ignored: `!selector.Empty()` in `injectRequired`).
    pub fn selects_all(&self) -> bool {
        self.0.selects_all()
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

fn split_top_level(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    parts
}

fn set_values(rest: &str) -> Option<BTreeSet<String>> {
    let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn textual_selectors_match_like_kubectl() {
        let l = labels(&[("app", "reviews"), ("version", "v2")]);
        for (sel, want) in [
            ("app=reviews", true),
            ("app==reviews,version!=v1", true),
            ("version in (v1,v2)", true),
            ("version notin (v2)", false),
            ("!legacy", true),
            ("app", true),
            ("team", false),
            ("", true),
        ] {
            assert_eq!(Selector::parse(sel).unwrap().matches(&l), want, "{sel}");
        }
        assert!(Selector::parse("a b=c").is_err());
    }

    fn requirement(key: &str, op: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn label_selectors_combine_match_labels_and_expressions() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("istio.io/rev", "1-20")])),
            match_expressions: Some(vec![
                requirement("istio-injection", "DoesNotExist", None),
                requirement("sidecar.istio.io/inject", "NotIn", Some(&["false"])),
            ]),
        };
        let s = Selector::from_label_selector(&selector).unwrap();
        assert!(s.matches(&labels(&[("istio.io/rev", "1-20")])));
        assert!(!s.matches(&labels(&[("istio.io/rev", "1-21")])));
        assert!(!s.matches(&labels(&[
            ("istio.io/rev", "1-20"),
            ("istio-injection", "enabled")
        ])));
        assert!(!s.matches(&labels(&[
            ("istio.io/rev", "1-20"),
            ("sidecar.istio.io/inject", "false")
        ])));
        assert!(
            Selector::from_label_selector(&LabelSelector::default())
                .unwrap()
                .selects_all()
        );
    }

    #[test]
    fn invalid_label_selectors_are_refused_like_apimachinery() {
        for bad in [
            requirement("a", "In", Some(&[])),
            requirement("a", "NotIn", None),
            requirement("a", "Exists", Some(&["x"])),
            requirement("a", "Matches", Some(&["x"])),
        ] {
            let selector = LabelSelector {
                match_expressions: Some(vec![bad.clone()]),
                ..Default::default()
            };
            assert!(Selector::from_label_selector(&selector).is_err(), "{bad:?}");
        }
    }
}
