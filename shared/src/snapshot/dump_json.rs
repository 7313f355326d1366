//! The JSON side of `--from-file`, at memory speed: each item of a List is kept as its raw text
//! (serde_json's `RawValue`: no tree is built), its kind read first, then decoded straight into
//! the typed object — a pod or a ReplicaSet into only the fields the snapshot keeps, so the
//! parser skips their specs instead of allocating them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::value::RawValue;

use super::Snapshot;
use super::dump::{ObjectSource, ingest_object, ingest_value};

impl ObjectSource for RawValue {
    fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.get())
    }
}

/// What decides how an item is read, parsed without touching the rest of it.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "apiVersion", borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: Option<HeadMeta<'a>>,
    #[serde(default)]
    items: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct HeadMeta<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

/// One item of a List: decoded straight from its text when it is a plain object; anything else
/// (a nested List, a mapping that is no Kubernetes object) goes through the tree, which says
/// what is wrong exactly as for YAML.
pub(super) fn ingest_raw(snapshot: &mut Snapshot, raw: &RawValue) -> Result<(), String> {
    let plain = serde_json::from_str::<Head>(raw.get())
        .ok()
        .filter(|h| h.items.is_none());
    let Some(Head {
        api_version: Some(api_version),
        kind: Some(kind),
        metadata,
        ..
    }) = plain
    else {
        let value = serde_json::from_str(raw.get()).map_err(|e| format!("invalid JSON: {e}"))?;
        return ingest_value(snapshot, value);
    };
    let name = metadata.and_then(|m| m.name).unwrap_or(Cow::Borrowed("?"));
    snapshot.dump_objects += 1;
    ingest_object(snapshot, &api_version, &kind, &name, raw)
}

/// A pod as the snapshot reads it (`ingest_pod`): metadata, the containers' names, images and
/// env (the proxy's `PROXY_CONFIG`), `hostNetwork`, phase and conditions. The rest of the
/// spec — volumes, probes, resources, managedFields — is skipped by the parser.
#[derive(Deserialize)]
pub(super) struct SlimPod {
    #[serde(default)]
    metadata: SlimMeta,
    #[serde(default)]
    spec: Option<SlimPodSpec>,
    #[serde(default)]
    status: Option<SlimPodStatus>,
}

/// The metadata the snapshot reads of any object (never managedFields).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct SlimMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    owner_references: Option<Vec<OwnerReference>>,
    #[serde(default)]
    deletion_timestamp: Option<Time>,
}

/// An object of which only the metadata counts (ReplicaSets: their owner).
#[derive(Deserialize)]
pub(super) struct SlimObject {
    #[serde(default)]
    pub metadata: SlimMeta,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimPodSpec {
    #[serde(default)]
    containers: Vec<SlimContainer>,
    #[serde(default)]
    init_containers: Option<Vec<SlimContainer>>,
    #[serde(default)]
    host_network: Option<bool>,
}

#[derive(Deserialize)]
struct SlimContainer {
    name: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    env: Option<Vec<SlimEnv>>,
}

#[derive(Deserialize)]
struct SlimEnv {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct SlimPodStatus {
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    conditions: Option<Vec<SlimCondition>>,
}

#[derive(Deserialize)]
struct SlimCondition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

impl From<SlimMeta> for ObjectMeta {
    fn from(m: SlimMeta) -> ObjectMeta {
        ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            labels: m.labels,
            annotations: m.annotations,
            owner_references: m.owner_references,
            deletion_timestamp: m.deletion_timestamp,
            ..ObjectMeta::default()
        }
    }
}

impl From<SlimContainer> for Container {
    fn from(c: SlimContainer) -> Container {
        Container {
            name: c.name,
            image: c.image,
            env: c.env.map(|env| {
                env.into_iter()
                    .map(|e| EnvVar {
                        name: e.name,
                        value: e.value,
                        value_from: None,
                    })
                    .collect()
            }),
            ..Container::default()
        }
    }
}

impl From<SlimPod> for Pod {
    fn from(p: SlimPod) -> Pod {
        Pod {
            metadata: p.metadata.into(),
            spec: p.spec.map(|s| PodSpec {
                containers: s.containers.into_iter().map(Container::from).collect(),
                init_containers: s
                    .init_containers
                    .map(|c| c.into_iter().map(Container::from).collect()),
                host_network: s.host_network,
                ..PodSpec::default()
            }),
            status: p.status.map(|s| PodStatus {
                phase: s.phase,
                conditions: s.conditions.map(|c| {
                    c.into_iter()
                        .map(|c| PodCondition {
                            type_: c.type_,
                            status: c.status,
                            ..PodCondition::default()
                        })
                        .collect()
                }),
                ..PodStatus::default()
            }),
        }
    }
}
