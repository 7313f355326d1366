//! The API server's mutating admission dispatch for a pod CREATE, as far as sidecar injection
//! goes (DOMAIN §2; `k8s.io/apiserver` `mutating/dispatcher.go`): configurations sorted by name,
//! webhooks in order; a webhook is called when its rules cover pods CREATE and its
//! `namespaceSelector` (on the namespace's labels) and `objectSelector` (on the pod's labels)
//! match; one reinvocation round calls `reinvocationPolicy: IfNeeded` webhooks again when a
//! later call changed the pod. Istio's injector strips and re-injects an already injected pod,
//! so among the injectors called, the last one that injects decides the sidecar. Pure.

use std::collections::BTreeSet;

use serde::Serialize;

use super::revisions::ControlPlane;
use crate::keys;
use crate::revision::DEFAULT_REVISION;
use crate::selector::Selector;
use crate::snapshot::{Labels, WebhookConfigInfo, WebhookInfo};

/// One webhook of one MutatingWebhookConfiguration: the "why" of an injection decision.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRef {
    pub configuration: String,
    pub webhook: String,
}

impl std::fmt::Display for WebhookRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.configuration, self.webhook)
    }
}

/// The istiod an Istio injector webhook calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injector {
    /// The revision whose istiod answers, i.e. whose sidecar it writes (never a tag name).
    pub revision: String,
    /// The revision tag its configuration stands for (`istio.io/tag`).
    pub tag: Option<String>,
}

/// What an injector does with the pod as it is when called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InjectorAnswer<R> {
    /// Injects (or strips and re-injects) its sidecar.
    Inject,
    /// Admits the pod unchanged (`injectRequired` is false), for this reason.
    Decline(R),
    /// The call fails: no istiod of that revision answers.
    CallFails,
}

/// The outcome of the dispatch for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch<R> {
    /// The sidecar the pod ends with: the last injecting call, and the istiod behind it.
    pub sidecar: Option<(WebhookRef, Injector)>,
    /// The last injector that declined, and why (for a pod that ends without a sidecar).
    pub declined: Option<(WebhookRef, Injector, R)>,
    /// A failing call with `failurePolicy: Fail`: the API server refuses the pod.
    pub denied: Option<(WebhookRef, Injector)>,
    /// A failing call with `failurePolicy: Ignore`: the pod was let through unchanged.
    pub failed_open: Option<(WebhookRef, Injector)>,
}

#[derive(Debug, Clone, PartialEq)]
struct CompiledWebhook {
    reference: WebhookRef,
    /// `None`: absent, matches every namespace. `Err`: not a valid selector, matches none
    /// (the API server refuses to store one; a hand-edited dump may hold it).
    namespace_selector: Option<Result<Selector, String>>,
    object_selector: Option<Result<Selector, String>>,
    reinvoke_if_needed: bool,
    failure_ignored: bool,
    injector: Option<Injector>,
}

fn selector_matches(selector: &Option<Result<Selector, String>>, labels: &Labels) -> bool {
    match selector {
        None => true,
        Some(Ok(s)) => s.matches(labels),
        Some(Err(_)) => false,
    }
}

/// Every mutating webhook that may be called for a pod CREATE, in the API server's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdmissionChain {
    webhooks: Vec<CompiledWebhook>,
}

/// The label every namespace carries (set by the API server since Kubernetes 1.21), which
/// namespaceSelectors may use; fixtures and old dumps may lack it.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A namespace's labels as webhook namespaceSelectors see them.
pub fn namespace_selector_labels(name: &str, labels: &Labels) -> Labels {
    let mut labels = labels.clone();
    labels
        .entry(NAMESPACE_NAME_LABEL.to_string())
        .or_insert_with(|| name.to_string());
    labels
}

impl AdmissionChain {
    pub fn new(configurations: &[WebhookConfigInfo], cp: &ControlPlane) -> Self {
        let mut sorted: Vec<&WebhookConfigInfo> = configurations.iter().collect();
        // The API server's order; a stable sort keeps duplicates (combined dumps) in input order.
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let webhooks = sorted
            .into_iter()
            .flat_map(|config| {
                config
                    .webhooks
                    .iter()
                    .filter(|w| w.matches_pod_create)
                    .map(move |w| CompiledWebhook {
                        reference: WebhookRef {
                            configuration: config.name.clone(),
                            webhook: w.name.clone(),
                        },
                        namespace_selector: w
                            .namespace_selector
                            .as_ref()
                            .map(Selector::from_label_selector),
                        object_selector: w
                            .object_selector
                            .as_ref()
                            .map(Selector::from_label_selector),
                        reinvoke_if_needed: w.reinvoke_if_needed,
                        failure_ignored: w.failure_ignored,
                        injector: istio_injector(config, w, cp),
                    })
            })
            .collect();
        Self { webhooks }
    }

    /// Runs the dispatch for a pod with `pod_labels` in a namespace whose labels (as
    /// [`namespace_selector_labels`] gives them) are `namespace_labels`. `answer` says what
    /// each revision's injector does with this pod.
    pub fn dispatch<R: Clone>(
        &self,
        namespace_labels: &Labels,
        pod_labels: &Labels,
        answer: impl Fn(&Injector) -> InjectorAnswer<R>,
    ) -> Dispatch<R> {
        let mut out = Dispatch {
            sidecar: None,
            declined: None,
            denied: None,
            failed_open: None,
        };
        let called: Vec<(usize, &CompiledWebhook)> = self
            .webhooks
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                selector_matches(&w.namespace_selector, namespace_labels)
                    && selector_matches(&w.object_selector, pod_labels)
            })
            .collect();
        // The API server's reinvocation bookkeeping (`webhookReinvokeContext`).
        let mut previously_invoked: BTreeSet<usize> = BTreeSet::new();
        let mut reinvoke: BTreeSet<usize> = BTreeSet::new();
        let mut should_reinvoke = false;
        for round in 0..2 {
            if round == 1 && !should_reinvoke {
                break;
            }
            for (index, webhook) in &called {
                if round == 1 && !reinvoke.contains(index) {
                    continue;
                }
                let changed = match &webhook.injector {
                    // Other webhooks may mutate the pod too, but not its sidecar: their
                    // changes only make IfNeeded injectors run again, which re-inject the same.
                    None => false,
                    Some(injector) => match answer(injector) {
                        InjectorAnswer::Inject => {
                            let before = out.sidecar.as_ref().map(|(_, i)| i.revision.clone());
                            out.sidecar = Some((webhook.reference.clone(), injector.clone()));
                            before.as_deref() != Some(injector.revision.as_str())
                        }
                        InjectorAnswer::Decline(reason) => {
                            out.declined =
                                Some((webhook.reference.clone(), injector.clone(), reason));
                            false
                        }
                        InjectorAnswer::CallFails if webhook.failure_ignored => {
                            out.failed_open = Some((webhook.reference.clone(), injector.clone()));
                            false
                        }
                        InjectorAnswer::CallFails => {
                            out.denied = Some((webhook.reference.clone(), injector.clone()));
                            out.sidecar = None;
                            return out;
                        }
                    },
                };
                if changed {
                    reinvoke.append(&mut previously_invoked);
                    should_reinvoke = true;
                }
                if webhook.reinvoke_if_needed {
                    previously_invoked.insert(*index);
                }
            }
        }
        out
    }
}

/// An Istio sidecar injector: a webhook of an Istio configuration (labelled `istio.io/rev`,
/// `istio.io/tag` or `app=sidecar-injector`) that calls an istiod's `/inject` endpoint. Its
/// revision is the istiod it calls (`istiod-<rev>`, or `istiod` for `default`) when that names
/// an installed revision, else its configuration's `istio.io/rev` label (webhooks given by URL,
/// `istiod-remote`, tag Services).
fn istio_injector(
    config: &WebhookConfigInfo,
    webhook: &WebhookInfo,
    cp: &ControlPlane,
) -> Option<Injector> {
    let istio_config = config.labels.contains_key(keys::REV)
        || config.labels.contains_key(keys::TAG)
        || config
            .labels
            .get("app")
            .is_some_and(|a| a == "sidecar-injector")
        || webhook.name.ends_with("sidecar-injector.istio.io");
    let calls_inject = webhook
        .service_path
        .as_deref()
        .is_some_and(|p| p.starts_with("/inject"))
        || webhook.url.as_deref().is_some_and(|u| {
            u.split_once("://")
                .map_or(u, |(_, rest)| rest)
                .split_once('/')
                .is_some_and(|(_, path)| path.starts_with("inject"))
        })
        || webhook
            .service
            .as_ref()
            .is_some_and(|(_, name)| name.starts_with("istiod"));
    if !(istio_config && calls_inject) {
        return None;
    }
    let label = config
        .labels
        .get(keys::REV)
        .filter(|r| !r.is_empty())
        .cloned();
    let by_service = webhook.service.as_ref().and_then(|(_, name)| {
        if name == "istiod" {
            return Some(DEFAULT_REVISION.to_string());
        }
        let rev = name.strip_prefix("istiod-")?;
        cp.revision(rev).is_some().then(|| rev.to_string())
    });
    let revision = by_service
        .or(label)
        .unwrap_or_else(|| DEFAULT_REVISION.to_string());
    Some(Injector {
        revision,
        tag: config.labels.get(keys::TAG).cloned(),
    })
}
