//! Reads a snapshot from a saved `kubectl get … -o json|yaml` dump: a `List`, a single object,
//! or multi-document YAML. Support bundles and CLI fixtures come in this way.
//!
//! JSON is parsed from the dump's bytes in place: each item of a List is decoded straight from
//! its own text into what the snapshot keeps (`dump_json`), summarised and dropped before the
//! next, so no tree of 50,000 pods is ever built.

use std::fmt;
use std::path::Path;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use kube::api::DynamicObject;
use serde::Deserializer;
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::Snapshot;
use super::dump_json::{SlimObject, SlimPod, ingest_raw};
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
    // Read whole and parsed in place: a slice parses several times faster than a reader, and
    // each List item is decoded from its own bytes (`dump_json`); peak memory stays near the
    // dump's size.
    let bytes = std::fs::read(path).map_err(io_err)?;
    let mut snapshot = Snapshot::default();
    read_bytes(&bytes, &mut snapshot).map_err(err)?;
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
    read_bytes(text.as_bytes(), &mut snapshot)?;
    snapshot.normalize();
    Ok(snapshot)
}

/// JSON starts with `{`, anything else is YAML.
fn read_bytes(bytes: &[u8], snapshot: &mut Snapshot) -> Result<(), String> {
    if bytes.trim_ascii_start().first() == Some(&b'{') {
        read_json(bytes, snapshot)
    } else {
        read_yaml_documents(bytes, snapshot)
    }
}

fn read_json(bytes: &[u8], snapshot: &mut Snapshot) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // Several JSON documents may follow each other (`kubectl get a -o json; kubectl get b …`);
    // an end of input inside one is an error, between them it is the end.
    while de.end().is_err() {
        TopLevel(snapshot)
            .deserialize(&mut de)
            .map_err(|e| format!("invalid JSON: {e}"))?;
    }
    Ok(())
}

fn read_yaml_documents(bytes: &[u8], snapshot: &mut Snapshot) -> Result<(), String> {
    let mut reader = bytes;
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
    let Value::Object(fields) = &value else {
        return Err(format!(
            "found {} where a Kubernetes object or List was expected",
            describe(&value)
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
    if !is_list {
        snapshot.dump_objects += 1;
    }
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    if kind == "List" || kind.is_empty() {
        if let Some(Value::Array(items)) = value.get("items").cloned() {
            for item in items {
                ingest_value(snapshot, item)?;
            }
        }
        return Ok(());
    }
    ingest_object(snapshot, &api_version, &kind, &name, &value)
}

/// Where an object's typed form is decoded from: the parsed tree (YAML, nested Lists) or the
/// item's raw JSON text (`dump_json`, without building a tree).
pub(super) trait ObjectSource {
    fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error>;
}

impl ObjectSource for Value {
    fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(self)
    }
}

/// Adds one object of a known kind to the snapshot (unknown kinds are ignored).
pub(super) fn ingest_object(
    snapshot: &mut Snapshot,
    api_version: &str,
    kind: &str,
    name: &str,
    source: &(impl ObjectSource + ?Sized),
) -> Result<(), String> {
    let bad = |e: serde_json::Error| format!("{kind} {name}: {e}");
    if super::ingest::REVISION_OBJECT_KINDS
        .iter()
        .any(|(_, _, k, _, _)| *k == kind)
    {
        let object: SlimObject = source.decode().map_err(bad)?;
        snapshot.ingest_revision_object(api_version, kind, &object.metadata.into());
    }
    match kind {
        "Namespace" => snapshot.ingest_namespace(source.decode::<Namespace>().map_err(bad)?),
        "Pod" => snapshot.ingest_pod(source.decode::<SlimPod>().map_err(bad)?.into()),
        "ReplicaSet" => {
            let rs: SlimObject = source.decode().map_err(bad)?;
            snapshot.ingest_replica_set_metadata(&rs.metadata.into())
        }
        "Deployment" => snapshot.ingest_deployment(source.decode::<Deployment>().map_err(bad)?),
        "StatefulSet" => snapshot.ingest_stateful_set(source.decode::<StatefulSet>().map_err(bad)?),
        "DaemonSet" => snapshot.ingest_daemon_set(source.decode::<DaemonSet>().map_err(bad)?),
        "Service" => snapshot.ingest_service(source.decode::<Service>().map_err(bad)?),
        "Secret" => snapshot.ingest_secret(source.decode::<Secret>().map_err(bad)?),
        "ConfigMap" => snapshot.ingest_config_map(source.decode::<ConfigMap>().map_err(bad)?),
        "MutatingWebhookConfiguration" => snapshot.ingest_mutating_webhook(
            source
                .decode::<MutatingWebhookConfiguration>()
                .map_err(bad)?,
        ),
        "ValidatingWebhookConfiguration" => snapshot.ingest_validating_webhook(
            source
                .decode::<ValidatingWebhookConfiguration>()
                .map_err(bad)?,
        ),
        _ if api_version.contains('/')
            && api_version
                .split('/')
                .next()
                .is_some_and(|g| super::ingest::is_revision_config(g, kind)) =>
        {
            snapshot.ingest_config_object(&source.decode::<DynamicObject>().map_err(bad)?)
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
        // Borrowed from the dump's bytes: the parser only finds where each item ends.
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            ingest_raw(self.0, item).map_err(serde::de::Error::custom)?;
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
