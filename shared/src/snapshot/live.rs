//! Reads a snapshot from the API server: every list paginated, pods and ReplicaSets
//! metadata-only, kinds fetched concurrently. A kind the user may not read becomes a warning
//! naming the verb and resource; an Istio CRD that is not installed is skipped quietly.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::join_all;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta, OwnerReference, Time};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, ObjectList};
use kube::{Client, Resource};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use kube::core::discovery::v2::APIGroupDiscoveryList;

use super::ingest::{FINISHED_POD_FIELDS, LIVE_POD_FIELDS, is_revision_config};
use super::{Labels, ReadWarning, SidecarEvidence, Snapshot};
use crate::client::Cluster;
use crate::error::{Action, RevError};
use crate::keys;

/// Page size for every list: large enough to keep round trips few, small enough that one
/// page of full objects stays a few megabytes.
pub const PAGE_SIZE: u32 = 500;

/// Which namespaces' pods and workloads to read. Cluster-scoped Istio objects (webhooks,
/// istiod, Helm releases) are always read whole: revisions are cluster-wide.
#[derive(Debug, Clone, Default)]
pub enum NamespaceScope {
    #[default]
    All,
    Only(Vec<String>),
}

/// Counts objects read, for the spinner.
#[derive(Debug, Clone, Default)]
pub struct ReadCounter(Arc<AtomicUsize>);

impl ReadCounter {
    pub fn add(&self, n: usize) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// The kinds of revision config this cluster serves (DOMAIN §4, [`is_revision_config`]): from
/// aggregated discovery, each resource at the first version of its group's preference order
/// that serves it with `list` (a group's versions differ: networking.istio.io serves EnvoyFilter
/// only as v1alpha3). Subresources never appear as resources here.
pub fn revision_config_kinds(discovery: &APIGroupDiscoveryList) -> Vec<ApiResource> {
    let mut kinds: Vec<ApiResource> = Vec::new();
    for group in &discovery.items {
        let group_name = group
            .metadata
            .as_ref()
            .and_then(|m| m.name.as_deref())
            .unwrap_or_default();
        for version in &group.versions {
            let Some(version_name) = version.version.as_deref() else {
                continue;
            };
            for resource in &version.resources {
                let (Some(plural), Some(kind)) = (
                    resource.resource.as_deref(),
                    resource
                        .response_kind
                        .as_ref()
                        .and_then(|k| k.kind.as_deref()),
                ) else {
                    continue;
                };
                let listable = resource.verbs.iter().any(|v| v == "list");
                let seen = kinds
                    .iter()
                    .any(|k| k.group == group_name && k.plural == plural);
                if listable && !seen && is_revision_config(group_name, kind) {
                    kinds.push(ApiResource::from_gvk_with_plural(
                        &GroupVersionKind::gvk(group_name, version_name, kind),
                        plural,
                    ));
                }
            }
        }
    }
    kinds.sort_by(|a, b| (&a.group, &a.plural).cmp(&(&b.group, &b.plural)));
    kinds
}

/// Reads every kind of revision config, metadata-only and labelled `istio.io/rev` (the only
/// ones that matter, and few): one discovery request, then the lists concurrently.
async fn read_revision_config(
    cluster: &Cluster,
    counter: &ReadCounter,
) -> Result<Vec<ReadOutcome>, RevError> {
    let (client, server) = (&cluster.client, cluster.server.as_str());
    let discovery = match client.list_api_groups_aggregated().await {
        Ok(discovery) => discovery,
        Err(e) => return Ok(vec![classify(server, e, "get", DISCOVERY_PATH)?]),
    };
    if discovery.items.is_empty() {
        // Every API server serves groups: an empty answer is a server that ignored the
        // aggregated-discovery Accept. Not knowing the kinds is said, never guessed.
        return Ok(vec![ReadOutcome::Denied(ReadWarning {
            verb: "get".into(),
            resource: DISCOVERY_PATH.into(),
            message: "no aggregated discovery (apidiscovery.k8s.io/v2) answer: the Istio config kinds are unknown".into(),
        })]);
    }
    let rev_params = ListParams::default().labels(keys::REV);
    let reads = join_all(
        revision_config_kinds(&discovery)
            .into_iter()
            .map(|resource| {
                let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
                let rev_params = rev_params.clone();
                async move {
                    let mut snap = Snapshot::default();
                    let result = list_metadata_pages(&api, &rev_params, counter, |meta| {
                        snap.ingest_config_metadata(&resource.api_version, &resource.kind, meta)
                    })
                    .await;
                    match result {
                        Ok(()) => Ok(ReadOutcome::Done(Box::new(snap))),
                        Err(e) => {
                            let name = format!("{}.{}", resource.plural, resource.group);
                            classify(server, e, "list", &name)
                        }
                    }
                }
            }),
    )
    .await;
    reads.into_iter().collect()
}

/// The aggregated discovery document, as RBAC names it (`kubectl auth can-i get /apis`).
pub const DISCOVERY_PATH: &str = "/apis";

enum ReadOutcome {
    Done(Box<Snapshot>),
    /// Not allowed (403): reported, the rest goes on.
    Denied(ReadWarning),
    /// The kind is not served (an absent CRD): skipped quietly.
    Absent,
}

/// Lists every page of a kind, handing each item to `each` as it arrives.
async fn list_pages<K>(
    api: &Api<K>,
    params: &ListParams,
    counter: &ReadCounter,
    mut each: impl FnMut(K),
) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut params = params.clone().limit(PAGE_SIZE);
    loop {
        let page: ObjectList<K> = api.list(&params).await?;
        counter.add(page.items.len());
        let next = page.metadata.continue_.clone();
        page.items.into_iter().for_each(&mut each);
        match next {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(()),
        }
    }
}

/// Metadata-only list (`application/json;as=PartialObjectMetadataList`), every page, each
/// decoded without `managedFields` ([`LeanMetadataPage`]).
async fn list_metadata_pages<K>(
    api: &Api<K>,
    params: &ListParams,
    counter: &ReadCounter,
    mut each: impl FnMut(&ObjectMeta),
) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let client = api.clone().into_client();
    let request = kube::core::Request::new(api.resource_url());
    let mut params = params.clone().limit(PAGE_SIZE);
    loop {
        // The request `Api::list_metadata` sends; only the decoding differs.
        let mut req = request
            .list_metadata(&params)
            .map_err(kube::Error::BuildRequest)?;
        req.extensions_mut().insert("list_metadata");
        let page: LeanMetadataPage = client.request(req).await?;
        let items = page.items.unwrap_or_default();
        counter.add(items.len());
        for item in items {
            each(&item.metadata.into());
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(()),
        }
    }
}

/// A page of a metadata-only list as this crate reads it. The server sends every object's
/// `managedFields` (a pod's are often larger than the rest of its metadata) and nothing here
/// reads them: k8s-openapi's `ObjectMeta` would build each as a JSON tree, which made allocation
/// half of `rev-inventory`'s CPU at 50,000 pods (`perf`, README). Unknown fields are skipped
/// while parsing, without allocating.
#[derive(Deserialize)]
struct LeanMetadataPage {
    metadata: ListMeta,
    /// `null` when the list is empty (the server's nil slice).
    items: Option<Vec<LeanMetadataItem>>,
}

#[derive(Deserialize)]
struct LeanMetadataItem {
    metadata: LeanObjectMeta,
}

/// `ObjectMeta` without `managedFields`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanObjectMeta {
    name: Option<String>,
    generate_name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    labels: Option<Labels>,
    annotations: Option<Labels>,
    owner_references: Option<Vec<OwnerReference>>,
    finalizers: Option<Vec<String>>,
}

impl From<LeanObjectMeta> for ObjectMeta {
    fn from(m: LeanObjectMeta) -> Self {
        ObjectMeta {
            name: m.name,
            generate_name: m.generate_name,
            namespace: m.namespace,
            uid: m.uid,
            resource_version: m.resource_version,
            generation: m.generation,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            deletion_grace_period_seconds: m.deletion_grace_period_seconds,
            labels: m.labels,
            annotations: m.annotations,
            owner_references: m.owner_references,
            finalizers: m.finalizers,
            managed_fields: None,
            self_link: None,
        }
    }
}

/// A failed read: 403 becomes a warning (the rest goes on, the report says what is missing),
/// 404 means the kind is not served (an absent CRD), anything else is an error naming `server`.
fn classify(
    server: &str,
    err: kube::Error,
    verb: &str,
    resource: &str,
) -> Result<ReadOutcome, RevError> {
    match err {
        kube::Error::Api(status) if status.code == 403 => Ok(ReadOutcome::Denied(ReadWarning {
            verb: verb.into(),
            resource: resource.into(),
            message: status.message,
        })),
        kube::Error::Api(status) if status.code == 404 => Ok(ReadOutcome::Absent),
        other => Err(RevError::api(server, Action::new(verb, resource), other)),
    }
}

fn apis_for<K>(client: &Client, scope: &NamespaceScope) -> Vec<Api<K>>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    match scope {
        NamespaceScope::All => vec![Api::all(client.clone())],
        NamespaceScope::Only(namespaces) => namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect(),
    }
}

/// Reads everything the analysis needs: one read per kind, run concurrently, then joined.
pub async fn read_snapshot(
    cluster: &Cluster,
    scope: &NamespaceScope,
    counter: &ReadCounter,
) -> Result<Snapshot, RevError> {
    let reader = KindReader {
        client: &cluster.client,
        server: cluster.server.as_str(),
        scope,
        counter,
    };
    let (namespaces, pods, replica_sets, deployments, stateful_sets, daemon_sets) = futures::join!(
        reader.namespaces(),
        reader.pods(),
        reader.replica_sets(),
        reader.deployments(),
        reader.stateful_sets(),
        reader.daemon_sets()
    );
    let (mutating, validating, injector_configs, secrets, tag_services, config) = futures::join!(
        reader.mutating_webhooks(),
        reader.validating_webhooks(),
        reader.injector_configs(),
        reader.helm_secrets(),
        reader.tag_services(),
        read_revision_config(cluster, counter)
    );

    let mut snapshot = Snapshot::default();
    for outcome in [
        namespaces?,
        pods?,
        replica_sets?,
        deployments?,
        stateful_sets?,
        daemon_sets?,
        mutating?,
        validating?,
        injector_configs?,
        secrets?,
        tag_services?,
    ]
    .into_iter()
    .chain(config?)
    {
        match outcome {
            ReadOutcome::Done(part) => snapshot.merge(*part),
            ReadOutcome::Denied(w) => snapshot.warnings.push(w),
            ReadOutcome::Absent => {}
        }
    }
    refuse_unknown_namespaces(scope, &snapshot)?;

    read_pod_specs_where_needed(cluster, &mut snapshot, counter).await?;
    read_gateway_services(cluster, &mut snapshot, counter).await?;
    snapshot.normalize();
    Ok(snapshot)
}

/// `-n` naming a namespace the cluster does not have is an error, unless namespaces could not
/// be read at all (then the warning says so).
fn refuse_unknown_namespaces(scope: &NamespaceScope, snapshot: &Snapshot) -> Result<(), RevError> {
    let NamespaceScope::Only(wanted) = scope else {
        return Ok(());
    };
    let missing: Vec<String> = wanted
        .iter()
        .filter(|w| snapshot.namespace(w).is_none())
        .cloned()
        .collect();
    if !missing.is_empty() && !snapshot.warnings.iter().any(|w| w.resource == "namespaces") {
        return Err(RevError::UnknownNamespaces { names: missing });
    }
    Ok(())
}

/// Labels that Istio's control plane Deployments carry, one list each when a command is scoped
/// to namespaces: the charts' istiod (`app=istiod`, `istio.io/rev`) and gateways (`istio`, their
/// selector label), and what istiod renders for Gateway API Gateways and waypoints. A gateway
/// outside the scope with none of them is not seen by a scoped run; an unscoped run reads every
/// Deployment and finds it by its pod template (`analysis::gateway::is_gateway`).
const CONTROL_PLANE_DEPLOYMENT_LABELS: [&str; 4] =
    [keys::REV, "app=istiod", "istio", keys::GATEWAY_MANAGED];

/// One read per kind, each into a partial snapshot.
struct KindReader<'a> {
    client: &'a Client,
    server: &'a str,
    scope: &'a NamespaceScope,
    counter: &'a ReadCounter,
}

type KindRead = Result<ReadOutcome, RevError>;

impl KindReader<'_> {
    /// Every page of one kind from `apis`, each object summarised by `ingest`.
    async fn read<K>(
        &self,
        apis: Vec<Api<K>>,
        params: ListParams,
        resource: &str,
        mut ingest: impl FnMut(&mut Snapshot, K),
    ) -> KindRead
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let mut snap = Snapshot::default();
        for api in apis {
            let read = list_pages(&api, &params, self.counter, |item| ingest(&mut snap, item));
            if let Err(e) = read.await {
                return classify(self.server, e, "list", resource);
            }
        }
        Ok(ReadOutcome::Done(Box::new(snap)))
    }

    /// A cluster-scoped kind, or a namespaced one across every namespace.
    async fn read_everywhere<K>(
        &self,
        resource: &str,
        params: ListParams,
        ingest: impl FnMut(&mut Snapshot, K),
    ) -> KindRead
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
        <K as Resource>::DynamicType: Default,
    {
        let apis = vec![Api::all(self.client.clone())];
        self.read(apis, params, resource, ingest).await
    }

    /// A namespaced kind in the namespaces in scope.
    async fn read_in_scope<K>(
        &self,
        resource: &str,
        ingest: impl FnMut(&mut Snapshot, K),
    ) -> KindRead
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        <K as Resource>::DynamicType: Default,
    {
        let apis = apis_for::<K>(self.client, self.scope);
        self.read(apis, ListParams::default(), resource, ingest)
            .await
    }

    async fn namespaces(&self) -> KindRead {
        let everything = ListParams::default();
        self.read_everywhere("namespaces", everything, Snapshot::ingest_namespace)
            .await
    }

    /// Only live pods run sidecars (DOMAIN §3): the API server leaves Succeeded and Failed ones
    /// out; a second list only counts them, for the report.
    async fn pods(&self) -> KindRead {
        let live_pods = ListParams::default().fields(LIVE_POD_FIELDS);
        let finished_pods = ListParams::default().fields(FINISHED_POD_FIELDS);
        let mut snap = Snapshot::default();
        for api in apis_for::<Pod>(self.client, self.scope) {
            if let Err(e) = list_metadata_pages(&api, &live_pods, self.counter, |meta| {
                snap.ingest_pod_metadata(meta)
            })
            .await
            {
                return classify(self.server, e, "list", "pods");
            }
            if let Err(e) = list_metadata_pages(&api, &finished_pods, self.counter, |meta| {
                snap.count_finished_pod(meta)
            })
            .await
            {
                return classify(self.server, e, "list", "pods");
            }
        }
        Ok(ReadOutcome::Done(Box::new(snap)))
    }

    async fn replica_sets(&self) -> KindRead {
        let mut snap = Snapshot::default();
        for api in apis_for::<ReplicaSet>(self.client, self.scope) {
            if let Err(e) =
                list_metadata_pages(&api, &ListParams::default(), self.counter, |meta| {
                    snap.ingest_replica_set_metadata(meta)
                })
                .await
            {
                return classify(self.server, e, "list", "replicasets.apps");
            }
        }
        Ok(ReadOutcome::Done(Box::new(snap)))
    }

    /// istiod and gateways may live outside the scoped namespaces. Scoped, a command reads its
    /// namespaces' Deployments and, elsewhere, only those carrying a label Istio's control plane
    /// Deployments carry ([`CONTROL_PLANE_DEPLOYMENT_LABELS`]), keeping the ones the analysis
    /// calls Istio's: not every Deployment of the cluster for one namespace.
    async fn deployments(&self) -> KindRead {
        let resource = "deployments.apps";
        if matches!(self.scope, NamespaceScope::All) {
            let everything = ListParams::default();
            return self
                .read_everywhere(resource, everything, Snapshot::ingest_deployment)
                .await;
        }
        let mut snap = match self
            .read_in_scope(resource, Snapshot::ingest_deployment)
            .await?
        {
            ReadOutcome::Done(snap) => *snap,
            other => return Ok(other),
        };
        let mut seen = std::collections::BTreeSet::new();
        for selector in CONTROL_PLANE_DEPLOYMENT_LABELS {
            let params = ListParams::default().labels(selector);
            let read = self.read_everywhere(resource, params, |part, d: Deployment| {
                let key = (d.metadata.namespace.clone(), d.metadata.name.clone());
                if in_scope(self.scope, key.0.as_deref()) || !seen.insert(key) {
                    return;
                }
                part.ingest_deployment(d);
                if part
                    .workloads
                    .last()
                    .is_some_and(|w| !crate::analysis::is_control_plane_workload(w))
                {
                    part.workloads.pop();
                }
            });
            match read.await? {
                ReadOutcome::Done(part) => snap.merge(*part),
                other => return Ok(other),
            }
        }
        Ok(ReadOutcome::Done(Box::new(snap)))
    }

    async fn stateful_sets(&self) -> KindRead {
        self.read_in_scope("statefulsets.apps", Snapshot::ingest_stateful_set)
            .await
    }

    async fn daemon_sets(&self) -> KindRead {
        self.read_in_scope("daemonsets.apps", Snapshot::ingest_daemon_set)
            .await
    }

    async fn mutating_webhooks(&self) -> KindRead {
        let resource = "mutatingwebhookconfigurations.admissionregistration.k8s.io";
        let ingest = Snapshot::ingest_mutating_webhook;
        self.read_everywhere(resource, ListParams::default(), ingest)
            .await
    }

    async fn validating_webhooks(&self) -> KindRead {
        let resource = "validatingwebhookconfigurations.admissionregistration.k8s.io";
        let ingest = Snapshot::ingest_validating_webhook;
        self.read_everywhere(resource, ListParams::default(), ingest)
            .await
    }

    /// Each revision's injector configuration (policy, never/alwaysInjectSelector). Istio labels
    /// them istio.io/rev; the other ConfigMaps so labelled are few (mesh config).
    async fn injector_configs(&self) -> KindRead {
        let params = ListParams::default().labels(keys::REV);
        self.read_everywhere("configmaps", params, Snapshot::ingest_config_map)
            .await
    }

    /// Helm's release records (DOMAIN §6).
    async fn helm_secrets(&self) -> KindRead {
        let params = ListParams::default().labels("owner=helm");
        self.read_everywhere("secrets", params, Snapshot::ingest_secret)
            .await
    }

    /// Revision tags' Services (Istio >= 1.28): istiod's tag watcher reads them with the tag
    /// webhooks, so the analysis compares the two (DOMAIN §1).
    async fn tag_services(&self) -> KindRead {
        let params = ListParams::default().labels(keys::TAG);
        self.read_everywhere("services", params, Snapshot::ingest_service)
            .await
    }
}

fn in_scope(scope: &NamespaceScope, namespace: Option<&str>) -> bool {
    match scope {
        NamespaceScope::All => true,
        NamespaceScope::Only(list) => namespace.is_some_and(|ns| list.iter().any(|l| l == ns)),
    }
}

/// Pods read metadata-only whose annotations say nothing, where the webhooks would inject
/// them, are re-read with their spec (DOMAIN §3 signals 3–4, and `hostNetwork`, which the
/// injector honours) — one namespace and one page at a time, so memory stays flat.
async fn read_pod_specs_where_needed(
    cluster: &Cluster,
    snapshot: &mut Snapshot,
    counter: &ReadCounter,
) -> Result<(), RevError> {
    let client = &cluster.client;
    let cp = crate::analysis::ControlPlane::from_snapshot(snapshot);
    let model = crate::analysis::InjectionModel::new(snapshot, &cp);
    let namespace_labels: HashMap<&str, crate::analysis::NamespaceLabels> = snapshot
        .namespaces
        .iter()
        .map(|ns| {
            (
                ns.name.as_str(),
                crate::analysis::NamespaceLabels::new(&ns.name, &ns.labels),
            )
        })
        .collect();
    let unlabelled = Labels::new();
    let namespaces: BTreeSet<String> = snapshot
        .pods
        .iter()
        .filter(|p| p.sidecar == SidecarEvidence::Unknown)
        .filter(|p| {
            let fallback;
            let labels = match namespace_labels.get(p.namespace.as_str()) {
                Some(labels) => labels,
                None => {
                    fallback = crate::analysis::NamespaceLabels::new(&p.namespace, &unlabelled);
                    &fallback
                }
            };
            model
                .pod_expected_revision(labels, &crate::analysis::pod_facts(p))
                .revision
                .is_some()
        })
        .map(|p| p.namespace.clone())
        .collect();
    let live_pods = ListParams::default().fields(LIVE_POD_FIELDS);
    for ns in namespaces {
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let mut full = Snapshot::default();
        if let Err(e) = list_pages(&api, &live_pods, counter, |p| full.ingest_pod(p)).await {
            match classify(&cluster.server, e, "list", "pods")? {
                ReadOutcome::Denied(w) => {
                    snapshot.warnings.push(w);
                    continue;
                }
                _ => continue,
            }
        }
        let mut by_name: HashMap<String, super::PodInfo> =
            full.pods.into_iter().map(|p| (p.name.clone(), p)).collect();
        for known in snapshot.pods.iter_mut().filter(|p| p.namespace == ns) {
            if let Some(pod) = by_name.remove(&known.name) {
                *known = pod;
            }
        }
    }
    Ok(())
}

/// The Service of each gateway (same name as its Deployment, as the gateway chart makes it),
/// for its load-balancer address.
async fn read_gateway_services(
    cluster: &Cluster,
    snapshot: &mut Snapshot,
    counter: &ReadCounter,
) -> Result<(), RevError> {
    let client = &cluster.client;
    let gateways: Vec<(String, String)> = snapshot
        .workloads
        .iter()
        .filter(|w| crate::analysis::gateway::is_gateway(w))
        .map(|w| (w.namespace.clone(), w.name.clone()))
        .collect();
    let fetched = join_all(gateways.iter().map(|(ns, name)| async move {
        Api::<Service>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await
    }))
    .await;
    for result in fetched {
        match result {
            Ok(Some(svc)) => {
                counter.add(1);
                snapshot.ingest_service(svc)
            }
            Ok(None) => {}
            Err(e) => {
                if let ReadOutcome::Denied(w) = classify(&cluster.server, e, "get", "services")? {
                    snapshot.warnings.push(w);
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Names of the namespaces a `-l` selector picks.
pub async fn namespaces_matching(
    cluster: &Cluster,
    selector: &crate::selector::Selector,
) -> Result<Vec<String>, RevError> {
    let mut names = Vec::new();
    let api = Api::<Namespace>::all(cluster.client.clone());
    list_metadata_pages(
        &api,
        &ListParams::default(),
        &ReadCounter::default(),
        |meta| {
            if selector.matches(meta.labels.as_ref().unwrap_or(&Default::default())) {
                names.extend(meta.name.clone());
            }
        },
    )
    .await
    .map_err(cluster.error(Action::new("list", "namespaces")))?;
    Ok(names)
}

impl Snapshot {
    /// Appends another partial snapshot (one kind's read) to this one.
    pub fn merge(&mut self, other: Snapshot) {
        self.namespaces.extend(other.namespaces);
        self.pods.extend(other.pods);
        self.workloads.extend(other.workloads);
        self.replica_set_owners.extend(other.replica_set_owners);
        self.services.extend(other.services);
        self.mutating_webhooks.extend(other.mutating_webhooks);
        self.validating_webhooks.extend(other.validating_webhooks);
        self.helm_releases.extend(other.helm_releases);
        self.config_objects.extend(other.config_objects);
        self.operator_objects.extend(other.operator_objects);
        self.injector_configs.extend(other.injector_configs);
        for (namespace, count) in other.finished_pods {
            *self.finished_pods.entry(namespace).or_insert(0) += count;
        }
        self.admission.extend(other.admission);
        self.remote_secrets.extend(other.remote_secrets);
        self.warnings.extend(other.warnings);
        self.dump_objects += other.dump_objects;
    }
}

/// Reads the objects a revision installed without Helm may have left (for `rev-prune`):
/// metadata only, labelled `istio.io/rev`, plus Istio's cluster roles, which carry no label.
/// Separate from [`read_snapshot`] so the read-only plugins do not pay for it.
pub async fn read_revision_objects(
    cluster: &Cluster,
    snapshot: &mut Snapshot,
    counter: &ReadCounter,
) -> Result<(), RevError> {
    let (client, server) = (&cluster.client, cluster.server.as_str());
    use super::ingest::REVISION_OBJECT_KINDS;
    let reads = join_all(REVISION_OBJECT_KINDS.iter().map(
        |(group, version, kind, plural, _)| async move {
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(group, version, kind),
                plural,
            );
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let params = if matches!(*kind, "ClusterRole" | "ClusterRoleBinding") {
                ListParams::default()
            } else {
                ListParams::default().labels(keys::REV)
            };
            let mut part = Snapshot::default();
            let result = list_metadata_pages(&api, &params, counter, |meta| {
                part.ingest_revision_object(&resource.api_version, kind, meta)
            })
            .await;
            let resource_name = if group.is_empty() {
                plural.to_string()
            } else {
                format!("{plural}.{group}")
            };
            match result {
                Ok(()) => Ok(ReadOutcome::Done(Box::new(part))),
                Err(e) => classify(server, e, "list", &resource_name),
            }
        },
    ))
    .await;
    let remote_secrets = read_remote_secrets(cluster, counter).await;
    for outcome in reads.into_iter().chain([remote_secrets]) {
        match outcome? {
            ReadOutcome::Done(part) => snapshot.merge(*part),
            ReadOutcome::Denied(w) => snapshot.warnings.push(w),
            ReadOutcome::Absent => {}
        }
    }
    snapshot.remote_secrets.sort();
    snapshot.operator_objects.sort();
    snapshot.operator_objects.dedup();
    read_addressed_services(cluster, snapshot, counter).await
}

/// Every Service holding an external address (a load-balancer ingress or `spec.externalIPs`),
/// for `rev-prune`: the address of a Service it deletes is cut unless a Service it leaves holds
/// it too, and a shared address may be held anywhere. Services without one are not kept.
async fn read_addressed_services(
    cluster: &Cluster,
    snapshot: &mut Snapshot,
    counter: &ReadCounter,
) -> Result<(), RevError> {
    let api = Api::<Service>::all(cluster.client.clone());
    let mut part = Snapshot::default();
    let listed = list_pages(&api, &ListParams::default(), counter, |svc| {
        part.ingest_service(svc)
    })
    .await;
    if let Err(e) = listed {
        if let ReadOutcome::Denied(w) = classify(&cluster.server, e, "list", "services")? {
            snapshot.warnings.push(w);
        }
        return Ok(());
    }
    let known: BTreeSet<(String, String)> = snapshot
        .services
        .iter()
        .map(|s| (s.namespace.clone(), s.name.clone()))
        .collect();
    snapshot
        .services
        .extend(part.services.into_iter().filter(|s| {
            (!s.load_balancer.is_empty() || !s.external_ips.is_empty())
                && !known.contains(&(s.namespace.clone(), s.name.clone()))
        }));
    snapshot.normalize();
    Ok(())
}

/// Remote secrets, metadata only: which clusters this cluster's istiod may serve is all prune
/// needs, never their credentials.
async fn read_remote_secrets(
    cluster: &Cluster,
    counter: &ReadCounter,
) -> Result<ReadOutcome, RevError> {
    let api: Api<Secret> = Api::all(cluster.client.clone());
    let params = ListParams::default().labels(&format!("{}=true", keys::MULTI_CLUSTER_SECRET));
    let mut part = Snapshot::default();
    match list_metadata_pages(&api, &params, counter, |meta| {
        part.ingest_remote_secret(meta)
    })
    .await
    {
        Ok(()) => Ok(ReadOutcome::Done(Box::new(part))),
        Err(e) => classify(cluster.server.as_str(), e, "list", "secrets"),
    }
}
