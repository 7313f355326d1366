//! Which revisions are installed, their versions and readiness, the tags that point at them,
//! the default revision and where `istiod-default-validator` points (DOMAIN §1). Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::keys;
use crate::revision::{DEFAULT_REVISION, IstioVersion};
use crate::snapshot::{Snapshot, WebhookConfigInfo, WorkloadInfo, WorkloadKind};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionInfo {
    pub name: String,
    /// From istiod's `discovery` image tag, else the Helm chart's appVersion.
    pub version: Option<String>,
    pub istiod: Option<IstiodStatus>,
    pub injector_webhooks: Vec<String>,
    pub helm_release: Option<String>,
    pub tags: Vec<String>,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IstiodStatus {
    pub namespace: String,
    pub name: String,
    pub ready: i32,
    pub desired: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagInfo {
    pub name: String,
    pub revision: String,
    pub webhook: String,
    pub revision_installed: bool,
    /// Its Service `istiod-revision-tag-<tag>` (Istio >= 1.28), when there is one: istiod's
    /// tag watcher reads it as well as the webhooks, so both must point at one revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<TagService>,
}

/// A revision tag's Service (`istiod-revision-tag-<tag>`, labelled `istio.io/tag`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagService {
    pub tag: String,
    pub namespace: String,
    pub name: String,
    /// Its `istio.io/rev` label.
    pub revision: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultValidator {
    pub name: String,
    /// The revision whose istiod it calls.
    pub revision: Option<String>,
    pub revision_installed: bool,
}

/// The control plane as the analysis sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlane {
    pub revisions: Vec<RevisionInfo>,
    pub tags: Vec<TagInfo>,
    pub default_revision: Option<String>,
    pub default_validator: Option<DefaultValidator>,
    /// Tag Services whose tag has no webhook configuration.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tag_services_without_webhook: Vec<TagService>,
}

/// How an `istio.io/rev` value resolves (DOMAIN §2: tags resolve through the tag MWC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Revision(String),
    Tag {
        tag: String,
        revision: String,
    },
    /// Neither an installed revision nor a tag: pods start without sidecar.
    Missing,
}

impl Resolution {
    pub fn revision(&self) -> Option<&str> {
        match self {
            Resolution::Revision(r) | Resolution::Tag { revision: r, .. } => Some(r),
            Resolution::Missing => None,
        }
    }
}

pub fn is_istiod(w: &WorkloadInfo) -> bool {
    w.kind == WorkloadKind::Deployment && w.labels.get("app").is_some_and(|a| a == "istiod")
}

/// ztunnel's DaemonSet, however installed: istioctl's component label, the chart's name label
/// (since Istio 1.23), or the pod template's `app: ztunnel`, the chart's selector since its first
/// version (before 1.23 the DaemonSet itself had no labels). A node proxy, not a sidecar: its pods
/// carry the chart's `istio.io/rev` annotation and a container named `istio-proxy`, yet no
/// injector touched them.
pub fn is_ztunnel(w: &WorkloadInfo) -> bool {
    let is = |labels: &BTreeMap<String, String>, key: &str, value: &str| {
        labels.get(key).map(String::as_str) == Some(value)
    };
    w.kind == WorkloadKind::DaemonSet
        && (is(&w.labels, keys::OPERATOR_COMPONENT, "Ztunnel")
            || is(&w.labels, keys::APP_NAME, "ztunnel")
            || is(&w.template_labels, "app", "ztunnel"))
}

fn revision_label(labels: &BTreeMap<String, String>) -> String {
    labels
        .get(keys::REV)
        .filter(|r| !r.is_empty())
        .cloned()
        .unwrap_or_else(|| DEFAULT_REVISION.to_string())
}

/// An injector MWC of a revision (not a tag's).
pub fn is_injector(mwc: &WebhookConfigInfo) -> bool {
    !mwc.labels.contains_key(keys::TAG)
        && (mwc
            .labels
            .get("app")
            .is_some_and(|a| a == "sidecar-injector")
            || mwc.name.starts_with("istio-sidecar-injector"))
}

pub fn is_tag_webhook(mwc: &WebhookConfigInfo) -> bool {
    mwc.labels.contains_key(keys::TAG)
}

/// The tag Services (DOMAIN §1): labelled `istio.io/tag`, pointing at `istio.io/rev`.
fn tag_services(snapshot: &Snapshot) -> Vec<TagService> {
    snapshot
        .services
        .iter()
        .filter_map(|s| {
            Some(TagService {
                tag: s.labels.get(keys::TAG)?.clone(),
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                revision: revision_label(&s.labels),
            })
        })
        .collect()
}

/// The default revision's injector carries the webhooks for `istio-injection=enabled` and
/// `sidecar.istio.io/inject=true` without revision (DOMAIN §2).
fn has_default_webhooks(mwc: &WebhookConfigInfo) -> bool {
    mwc.webhooks.iter().any(|w| {
        w.name.starts_with("namespace.sidecar-injector")
            || w.name.starts_with("object.sidecar-injector")
    })
}

/// The revision named `name`, added (with nothing known yet) the first time it is seen.
fn revision_entry<'a>(
    revisions: &'a mut BTreeMap<String, RevisionInfo>,
    name: &str,
) -> &'a mut RevisionInfo {
    revisions
        .entry(name.to_string())
        .or_insert_with(|| RevisionInfo {
            name: name.to_string(),
            version: None,
            istiod: None,
            injector_webhooks: Vec::new(),
            helm_release: None,
            tags: Vec::new(),
            is_default: false,
        })
}

/// Every revision any of its parts shows: an istiod, an injector webhook, an istiod release.
fn installed_revisions(snapshot: &Snapshot) -> BTreeMap<String, RevisionInfo> {
    let mut revisions: BTreeMap<String, RevisionInfo> = BTreeMap::new();
    for w in snapshot.workloads.iter().filter(|w| is_istiod(w)) {
        let rev = revision_entry(&mut revisions, &revision_label(&w.labels));
        rev.version = w
            .images
            .get("discovery")
            .and_then(|image| IstioVersion::from_image(image))
            .map(|v| v.to_string());
        rev.istiod = Some(IstiodStatus {
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            ready: w.status.ready,
            desired: w.status.desired,
        });
    }
    for mwc in snapshot.mutating_webhooks.iter().filter(|m| is_injector(m)) {
        revision_entry(&mut revisions, &revision_label(&mwc.labels))
            .injector_webhooks
            .push(mwc.name.clone());
    }
    for release in snapshot
        .helm_releases
        .iter()
        .filter(|r| r.chart == "istiod" && r.status != "uninstalling")
    {
        let name = release
            .revision_value
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| DEFAULT_REVISION.to_string());
        let rev = revision_entry(&mut revisions, &name);
        rev.helm_release = Some(format!("{}/{}", release.namespace, release.name));
        if rev.version.is_none() {
            rev.version = release
                .app_version
                .as_deref()
                .and_then(IstioVersion::parse)
                .map(|v| v.to_string());
        }
    }
    revisions
}

/// The revision tags (by name), each with its Service; Services naming no tag webhook apart.
/// Each installed revision learns its tags.
fn revision_tags(
    snapshot: &Snapshot,
    revisions: &mut BTreeMap<String, RevisionInfo>,
) -> (Vec<TagInfo>, Vec<TagService>) {
    let mut tags: Vec<TagInfo> = snapshot
        .mutating_webhooks
        .iter()
        .filter(|m| is_tag_webhook(m))
        .filter_map(|m| {
            Some(TagInfo {
                name: m.labels.get(keys::TAG)?.clone(),
                revision: revision_label(&m.labels),
                webhook: m.name.clone(),
                revision_installed: false,
                service: None,
            })
        })
        .collect();
    tags.sort_by(|a, b| a.name.cmp(&b.name));
    let mut tag_services_without_webhook = Vec::new();
    for service in tag_services(snapshot) {
        match tags.iter_mut().find(|t| t.name == service.tag) {
            Some(tag) => tag.service = Some(service),
            None => tag_services_without_webhook.push(service),
        }
    }
    for tag in &mut tags {
        tag.revision_installed = revisions.contains_key(&tag.revision);
        if let Some(rev) = revisions.get_mut(&tag.revision) {
            rev.tags.push(tag.name.clone());
        }
    }
    (tags, tag_services_without_webhook)
}

/// The revision that injects `istio-injection=enabled`: the `default` tag's, else the injector
/// carrying the revisionless webhooks, else a revision named `default`.
fn default_revision(
    snapshot: &Snapshot,
    tags: &[TagInfo],
    revisions: &BTreeMap<String, RevisionInfo>,
) -> Option<String> {
    tags.iter()
        .find(|t| t.name == DEFAULT_REVISION)
        .map(|t| t.revision.clone())
        .or_else(|| {
            snapshot
                .mutating_webhooks
                .iter()
                .find(|m| is_injector(m) && has_default_webhooks(m))
                .map(|m| revision_label(&m.labels))
        })
        .or_else(|| {
            revisions
                .contains_key(DEFAULT_REVISION)
                .then(|| DEFAULT_REVISION.to_string())
        })
}

/// `istiod-default-validator` and the revision it calls (its label, else its service name).
fn default_validator(
    snapshot: &Snapshot,
    revisions: &BTreeMap<String, RevisionInfo>,
) -> Option<DefaultValidator> {
    snapshot
        .validating_webhooks
        .iter()
        .find(|v| v.name == keys::DEFAULT_VALIDATOR)
        .map(|v| {
            let revision = v.labels.get(keys::REV).cloned().or_else(|| {
                v.webhooks.iter().find_map(|w| {
                    let (_, service) = w.service.as_ref()?;
                    if service == "istiod" {
                        Some(DEFAULT_REVISION.to_string())
                    } else {
                        service.strip_prefix("istiod-").map(str::to_string)
                    }
                })
            });
            DefaultValidator {
                name: v.name.clone(),
                revision_installed: revision.as_ref().is_some_and(|r| revisions.contains_key(r)),
                revision,
            }
        })
}

impl ControlPlane {
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        let mut revisions = installed_revisions(snapshot);
        let (tags, tag_services_without_webhook) = revision_tags(snapshot, &mut revisions);
        let default_revision = default_revision(snapshot, &tags, &revisions);
        if let Some(default) = &default_revision
            && let Some(rev) = revisions.get_mut(default)
        {
            rev.is_default = true;
        }
        let default_validator = default_validator(snapshot, &revisions);
        ControlPlane {
            revisions: revisions.into_values().collect(),
            tags,
            default_revision,
            default_validator,
            tag_services_without_webhook,
        }
    }

    pub fn revision(&self, name: &str) -> Option<&RevisionInfo> {
        self.revisions.iter().find(|r| r.name == name)
    }

    pub fn tag(&self, name: &str) -> Option<&TagInfo> {
        self.tags.iter().find(|t| t.name == name)
    }

    /// Resolves an `istio.io/rev` value. A revision wins over a tag of the same name.
    pub fn resolve(&self, value: &str) -> Resolution {
        if self.revision(value).is_some() {
            return Resolution::Revision(value.to_string());
        }
        if let Some(tag) = self.tag(value) {
            return Resolution::Tag {
                tag: tag.name.clone(),
                revision: tag.revision.clone(),
            };
        }
        Resolution::Missing
    }

    /// Whether pods selecting `value` would be injected: a revision with an injector webhook,
    /// or a tag (its own webhook injects) whose revision is installed.
    pub fn has_injector(&self, value: &str) -> bool {
        if let Some(rev) = self.revision(value) {
            return !rev.injector_webhooks.is_empty();
        }
        self.tag(value).is_some_and(|t| t.revision_installed)
    }

    /// The installed revision running a given version (same major.minor), for pods whose only
    /// evidence is the proxy image tag.
    pub fn revision_for_version(&self, version: &IstioVersion) -> Option<&str> {
        let mut matching = self.revisions.iter().filter(|r| {
            r.version
                .as_deref()
                .and_then(IstioVersion::parse)
                .is_some_and(|v| v.same_minor(version))
        });
        let first = matching.next()?;
        // Two revisions of the same minor: the image alone cannot tell them apart.
        matching.next().is_none().then_some(first.name.as_str())
    }

    pub fn version_of(&self, revision: &str) -> Option<IstioVersion> {
        self.revision(revision)?
            .version
            .as_deref()
            .and_then(IstioVersion::parse)
            .or_else(|| {
                crate::revision::RevisionName::parse(revision)
                    .ok()?
                    .as_minor_version()
                    .map(|(major, minor)| IstioVersion {
                        major,
                        minor,
                        patch: None,
                        suffix: None,
                    })
            })
    }
}
