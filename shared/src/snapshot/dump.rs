//! Reads a snapshot from a saved `kubectl get … -o json|yaml` dump: a `List`, a single object,
//! or multi-document YAML. Support bundles and CLI fixtures come in this way.
//!
//! JSON is streamed: each item of a List is decoded, summarised and dropped before the next,
//! so a dump of 50,000 pods never sits in memory whole.

use std::fmt;
use std::io::{BufReader, Read};
use std::path::Path;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use kube::api::DynamicObject;
use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::Snapshot;
use crate::error::RevError;

pub fn read_dump(path: &Path) -> Result<Snapshot, RevError> {
    let err = |message: String| RevError::Dump {
        path: path.display().to_string(),
        message,
        source: None,
    };
    let io_err = |e: std::io::Error| RevError::Dump {
        path: path.display().to_string(),
        message: "cannot open it".into(),
        source: Some(e),
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut first = [0u8; 1];
    // Peek past whitespace: JSON starts with `{`, anything else is YAML.
    let mut leading = Vec::new();
    loop {
        let n = reader.read(&mut first).map_err(io_err)?;
        if n == 0 || !first[0].is_ascii_whitespace() {
            if n > 0 {
                leading.push(first[0]);
            }
            break;
        }
    }
    let mut snapshot = Snapshot::default();
    let chained = leading.as_slice().chain(reader);
    if leading.first() == Some(&b'{') {
        read_json_stream(chained, &mut snapshot).map_err(err)?;
    } else {
        read_yaml_documents(chained, &mut snapshot).map_err(err)?;
    }
    if snapshot.dump_objects == 0 {
        // An empty file or a failed `kubectl get … > dump` must not pass as a healthy mesh.
        return Err(err(
            "it holds no Kubernetes object (save one with `kubectl get … -o yaml`)".into(),
        ));
    }
    snapshot.normalize();
    Ok(snapshot)
}

/// Reads several dumps as one cluster (e.g. a support bundle split by kind).
pub fn read_dumps(paths: &[impl AsRef<Path>]) -> Result<Snapshot, RevError> {
    let mut snapshot = Snapshot::default();
    for path in paths {
        snapshot.merge(read_dump(path.as_ref())?);
    }
    snapshot.normalize();
    warn_missing_kinds(&mut snapshot);
    Ok(snapshot)
}

/// The kinds without which the analysis cannot tell what injects what: their absence is a
/// warning in the report (and fails `--fail-on`), not a clean bill of health.
fn warn_missing_kinds(snapshot: &mut Snapshot) {
    let missing = [
        (
            "namespaces",
            snapshot.namespaces.is_empty(),
            "the dumps hold no Namespace: which revision each namespace asks for is unknown",
        ),
        (
            "mutatingwebhookconfigurations",
            snapshot.mutating_webhooks.is_empty(),
            "the dumps hold no MutatingWebhookConfiguration: which injector serves what is unknown",
        ),
    ];
    for (resource, absent, message) in missing {
        if absent {
            snapshot.warnings.push(super::ReadWarning {
                verb: "read".into(),
                resource: resource.into(),
                message: message.into(),
            });
        }
    }
}

/// Parses dump text (used by tests and `--from-file -`).
pub fn read_dump_str(text: &str) -> Result<Snapshot, String> {
    let mut snapshot = Snapshot::default();
    if text.trim_start().starts_with('{') {
        read_json_stream(text.as_bytes(), &mut snapshot)?;
    } else {
        read_yaml_documents(text.as_bytes(), &mut snapshot)?;
    }
    snapshot.normalize();
    Ok(snapshot)
}

fn read_json_stream(reader: impl Read, snapshot: &mut Snapshot) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    // Several JSON documents may follow each other (`kubectl get a -o json; kubectl get b …`);
    // an end of input inside one is an error, between them it is the end.
    while de.end().is_err() {
        TopLevel(snapshot)
            .deserialize(&mut de)
            .map_err(|e| format!("invalid JSON: {e}"))?;
    }
    Ok(())
}

fn read_yaml_documents(reader: impl Read, snapshot: &mut Snapshot) -> Result<(), String> {
    let mut reader = reader;
    for doc in serde_saphyr::read::<_, Value>(&mut reader) {
        let doc = doc.map_err(|e| format!("invalid YAML: {e}"))?;
        // `---` at the end (or twice) leaves an empty document: nothing, not an error.
        if !doc.is_null() {
            ingest_value(snapshot, doc)?;
        }
    }
    Ok(())
}

/// Adds one object (or a List of them) to the snapshot, by kind. Unknown kinds are ignored.
pub fn ingest_value(snapshot: &mut Snapshot, value: Value) -> Result<(), String> {
    let is_list = check_object_shape(&value)?;
    if !is_list {
        snapshot.dump_objects += 1;
    }
    let field = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (kind, api_version) = (field("kind"), field("apiVersion"));
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let bad = |e: serde_json::Error| format!("{kind} {name}: {e}");
    if super::ingest::REVISION_OBJECT_KINDS
        .iter()
        .any(|(_, _, k, _, _)| *k == kind)
        && let Some(meta) = value.get("metadata")
    {
        let meta = serde_json::from_value(meta.clone()).map_err(bad)?;
        snapshot.ingest_revision_object(&api_version, &kind, &meta);
    }
    if matches!(kind.as_str(), "List" | "") && value.get("items").is_some() {
        if let Value::Object(mut fields) = value
            && let Some(Value::Array(items)) = fields.remove("items")
        {
            for item in items {
                ingest_value(snapshot, item)?;
            }
        }
        return Ok(());
    }
    ingest_object(snapshot, &kind, &api_version, value).map_err(bad)
}

/// Whether `value` is a List (true) or one object (false); anything else is an error saying
/// what was found instead.
fn check_object_shape(value: &Value) -> Result<bool, String> {
    let Value::Object(fields) = value else {
        return Err(format!(
            "found {} where a Kubernetes object or List was expected",
            describe(value)
        ));
    };
    let is_list = fields.get("items").is_some_and(Value::is_array);
    if !is_list && (!fields.contains_key("apiVersion") || !fields.contains_key("kind")) {
        let mut keys: Vec<&str> = fields.keys().map(String::as_str).take(5).collect();
        keys.sort_unstable();
        return Err(format!(
            "found a mapping without apiVersion and kind (keys: {}): not a Kubernetes object",
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        ));
    }
    Ok(is_list)
}

/// One object of a kind the analysis reads, decoded as its type and summarised.
fn ingest_object(
    snapshot: &mut Snapshot,
    kind: &str,
    api_version: &str,
    value: Value,
) -> Result<(), serde_json::Error> {
    match kind {
        "Namespace" => snapshot.ingest_namespace(serde_json::from_value::<Namespace>(value)?),
        "Pod" => snapshot.ingest_pod(serde_json::from_value::<Pod>(value)?),
        "ReplicaSet" => {
            let rs = serde_json::from_value::<ReplicaSet>(value)?;
            snapshot.ingest_replica_set_metadata(&rs.metadata)
        }
        "Deployment" => snapshot.ingest_deployment(serde_json::from_value::<Deployment>(value)?),
        "StatefulSet" => {
            snapshot.ingest_stateful_set(serde_json::from_value::<StatefulSet>(value)?)
        }
        "DaemonSet" => snapshot.ingest_daemon_set(serde_json::from_value::<DaemonSet>(value)?),
        "Service" => snapshot.ingest_service(serde_json::from_value::<Service>(value)?),
        "Secret" => snapshot.ingest_secret(serde_json::from_value::<Secret>(value)?),
        "ConfigMap" => snapshot.ingest_config_map(serde_json::from_value::<ConfigMap>(value)?),
        "MutatingWebhookConfiguration" => snapshot.ingest_mutating_webhook(
            serde_json::from_value::<MutatingWebhookConfiguration>(value)?,
        ),
        "ValidatingWebhookConfiguration" => {
            snapshot.ingest_validating_webhook(serde_json::from_value::<
                ValidatingWebhookConfiguration,
            >(value)?)
        }
        _ if api_version.contains('/')
            && api_version
                .split('/')
                .next()
                .is_some_and(|g| super::ingest::is_revision_config(g, kind)) =>
        {
            let obj = serde_json::from_value::<DynamicObject>(value)?;
            snapshot.ingest_config_object(&obj)
        }
        _ => {}
    }
    Ok(())
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "an empty document",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "plain text",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// The top level of a JSON document: a List whose `items` are streamed, or one object.
struct TopLevel<'a>(&'a mut Snapshot);

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object or List")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut fields = serde_json::Map::new();
        let mut streamed_items = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                map.next_value_seed(Items(self.0))?;
                streamed_items = true;
            } else if key == "metadata" && streamed_items {
                map.next_value::<IgnoredAny>()?;
            } else {
                fields.insert(key, map.next_value::<Value>()?);
            }
        }
        if !streamed_items {
            ingest_value(self.0, Value::Object(fields)).map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

struct Items<'a>(&'a mut Snapshot);

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of Kubernetes objects")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Value>()? {
            ingest_value(self.0, item).map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_list_and_yaml_documents_read_alike() {
        let json = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bookinfo","labels":{"istio.io/rev":"1-20"}}}
        ],"metadata":{}}"#;
        let yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bookinfo\n  labels:\n    istio.io/rev: 1-20\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ignored\n";
        let a = read_dump_str(json).unwrap();
        let b = read_dump_str(yaml).unwrap();
        assert_eq!(a.namespaces, b.namespaces);
        assert_eq!(a.namespaces[0].labels["istio.io/rev"], "1-20");
    }

    #[test]
    fn broken_dump_is_an_error_naming_the_problem() {
        let err = read_dump_str("{\"kind\": \"List\", \"items\": [").unwrap_err();
        assert!(err.contains("JSON"), "{err}");
        let err = read_dump_str("kind: Pod\nmetadata: [unclosed").unwrap_err();
        assert!(err.contains("YAML"), "{err}");
    }
}
