//! Values carry-over (guide 2.4, 3.1, 3.3): a new revision's release gets the user values of the
//! old revision's release (its Helm record's `config`), with what names the revision changed.
//! Pure; `kubectl rev-plan --values-dir` writes the results.

use serde::Serialize;
use serde_json::Value;

use crate::revision::IstioVersion;
use crate::snapshot::HelmRelease;

/// One changed value, by its dotted path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueChange {
    pub path: String,
    /// The old value as JSON; `None` when the new release adds it.
    pub old: Option<String>,
    /// The new value as JSON; `None` when the new release drops it.
    pub new: Option<String>,
    pub why: String,
}

/// A new release's values, carried over from an old release.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CarriedValues {
    pub release: String,
    pub namespace: String,
    /// `istiod` or `gateway`.
    pub chart: String,
    pub from_release: String,
    pub values: Value,
    pub changes: Vec<ValueChange>,
}

/// The old release's name with its revision replaced (`istio-ingressgateway-1-30` →
/// `istio-ingressgateway-1-31`), or NEW appended when the name does not carry it.
pub fn renamed(name: &str, old: &str, new: &str) -> String {
    let replaced = replace_revision_token(name, old, new);
    if replaced != name {
        replaced
    } else {
        format!("{name}-{new}")
    }
}

/// Replaces `old` where it stands as a whole token (not inside a longer name or version):
/// `https://injector/inject/1-30` and `istiod-1-30` change, `11-300` does not.
fn replace_revision_token(text: &str, old: &str, new: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut prev: Option<char> = None;
    while let Some(at) = rest.find(old) {
        let before = rest[..at].chars().next_back().or(prev);
        let after = rest[at + old.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_none_or(|c| !is_word(c)) && after.is_none_or(|c| !is_word(c)) {
            out.push_str(new);
        } else {
            out.push_str(old);
        }
        prev = old.chars().next_back();
        rest = &rest[at + old.len()..];
    }
    out.push_str(rest);
    out
}

fn json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The new release's values: the old user values with `revision` set to NEW, `revisionTags`
/// dropped (tags move with `rev-relabel --tag`: a second release declaring the same tag's
/// webhook would fail Helm's ownership check), the image `tag` set to the new version (its
/// suffix kept; dropped when the version is unknown, so the chart's own applies) and every
/// other mention of the old revision (URLs, names) pointed at NEW.
pub fn carry_over(
    release: &HelmRelease,
    old: &str,
    new: &str,
    version: Option<&str>,
) -> CarriedValues {
    let mut values = match &release.values {
        Value::Object(map) => Value::Object(map.clone()),
        _ => Value::Object(Default::default()),
    };
    let mut changes = Vec::new();
    if let Value::Object(map) = &mut values {
        let previous = map.insert("revision".into(), Value::String(new.into()));
        changes.push(ValueChange {
            path: "revision".into(),
            old: previous.as_ref().map(json),
            new: Some(json(&Value::String(new.into()))),
            why: "the new revision".into(),
        });
        if let Some(tags) = map.remove("revisionTags") {
            changes.push(ValueChange {
                path: "revisionTags".into(),
                old: Some(json(&tags)),
                new: None,
                why: "tags move with `kubectl rev-relabel --tag`".into(),
            });
        }
    }
    for path in [&["global", "tag"][..], &["tag"][..]] {
        retag(&mut values, path, version, &mut changes);
    }
    rename_mentions(&mut values, String::new(), old, new, &mut changes);
    CarriedValues {
        release: renamed(&release.name, old, new),
        namespace: release.namespace.clone(),
        chart: release.chart.clone(),
        from_release: release.name.clone(),
        values,
        changes,
    }
}

fn retag(values: &mut Value, path: &[&str], version: Option<&str>, changes: &mut Vec<ValueChange>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = values;
    for key in parents {
        match node.get_mut(*key) {
            Some(child) => node = child,
            None => return,
        }
    }
    let Value::Object(map) = node else { return };
    let Some(current) = map.get(*last).cloned() else {
        return;
    };
    let text = match &current {
        Value::String(s) => s.clone(),
        other => json(other),
    };
    let dotted = path.join(".");
    match (
        IstioVersion::parse(&text),
        version.and_then(IstioVersion::parse),
    ) {
        (Some(old_version), Some(mut new_version)) => {
            // Keep the build flavour (`-solo`, `-distroless`) of the old tag.
            if new_version.suffix.is_none() {
                new_version.suffix = old_version.suffix.clone();
            }
            let new_tag = Value::String(new_version.to_string());
            changes.push(ValueChange {
                path: dotted,
                old: Some(json(&current)),
                new: Some(json(&new_tag)),
                why: "the new version's images".into(),
            });
            map.insert((*last).to_string(), new_tag);
        }
        (Some(_), None) => {
            map.remove(*last);
            changes.push(ValueChange {
                path: dotted,
                old: Some(json(&current)),
                new: None,
                why: "new version unknown (--version): the chart's own image tag applies".into(),
            });
        }
        // A digest or a custom tag: the user's choice, left alone.
        (None, _) => {}
    }
}

fn rename_mentions(
    value: &mut Value,
    path: String,
    old: &str,
    new: &str,
    changes: &mut Vec<ValueChange>,
) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if path.is_empty() && key == "revision" {
                    continue;
                }
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                rename_mentions(child, child_path, old, new, changes);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                rename_mentions(item, format!("{path}[{i}]"), old, new, changes);
            }
        }
        Value::String(text) => {
            let replaced = replace_revision_token(text, old, new);
            if replaced != *text {
                changes.push(ValueChange {
                    path,
                    old: Some(json(&Value::String(text.clone()))),
                    new: Some(json(&Value::String(replaced.clone()))),
                    why: format!("named the old revision {old}"),
                });
                *text = replaced;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_tokens_change_only_where_they_stand_alone() {
        assert_eq!(
            replace_revision_token("istiod-1-30", "1-30", "1-31"),
            "istiod-1-31"
        );
        assert_eq!(
            replace_revision_token("https://x:9443/inject/1-30", "1-30", "1-31"),
            "https://x:9443/inject/1-31"
        );
        assert_eq!(replace_revision_token("11-300", "1-30", "1-31"), "11-300");
        assert_eq!(replace_revision_token("1.30.0", "1-30", "1-31"), "1.30.0");
        assert_eq!(
            renamed("istio-ingress", "1-30", "1-31"),
            "istio-ingress-1-31"
        );
    }
}
