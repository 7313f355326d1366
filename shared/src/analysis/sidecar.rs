//! Which revision a running pod's sidecar belongs to (DOMAIN §3), and whether that differs from
//! what injection would give it now (drift). Pure.

use serde::Serialize;

use super::injection::EffectiveRevision;
use super::revisions::ControlPlane;
use crate::revision::IstioVersion;
use crate::snapshot::SidecarEvidence;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "revision", rename_all = "kebab-case")]
pub enum SidecarRevision {
    /// Injected by this revision (never a tag name: the injector writes its own revision).
    Revision(String),
    /// A proxy whose revision cannot be told: only its image tag is known.
    UnknownRevision(String),
    /// No sidecar.
    None,
    /// Not known (metadata-only read without injection annotations, spec not read).
    Unknown,
}

impl SidecarRevision {
    pub fn key(&self) -> String {
        match self {
            SidecarRevision::Revision(r) => r.clone(),
            SidecarRevision::UnknownRevision(tag) => format!("?{tag}"),
            SidecarRevision::None => "none".into(),
            SidecarRevision::Unknown => "unknown".into(),
        }
    }

    pub fn revision(&self) -> Option<&str> {
        match self {
            SidecarRevision::Revision(r) => Some(r),
            _ => None,
        }
    }
}

pub fn sidecar_revision(evidence: &SidecarEvidence, cp: &ControlPlane) -> SidecarRevision {
    match evidence {
        SidecarEvidence::StatusAnnotation(rev)
        | SidecarEvidence::RevAnnotation(rev)
        | SidecarEvidence::DiscoveryAddress(rev) => SidecarRevision::Revision(rev.clone()),
        SidecarEvidence::ProxyImage(tag) => IstioVersion::parse(tag)
            .and_then(|v| cp.revision_for_version(&v).map(str::to_string))
            .map(SidecarRevision::Revision)
            .unwrap_or_else(|| SidecarRevision::UnknownRevision(tag.clone())),
        SidecarEvidence::NoSidecar => SidecarRevision::None,
        SidecarEvidence::Unknown => SidecarRevision::Unknown,
    }
}

/// How a pod's sidecar compares with what it would get if restarted now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "drift", rename_all = "kebab-case")]
pub enum PodDrift {
    /// Nothing to do.
    InSync,
    /// Has a sidecar of another revision: a restart moves it to `to`.
    RevisionChanged { from: String, to: String },
    /// Should have a sidecar and has none (started before the label, or injection failed).
    MissingSidecar { to: String },
    /// Has a sidecar its namespace no longer asks for: a restart removes it.
    SidecarNotWanted { from: String },
    /// Its target selects nothing installed, or its sidecar cannot be identified.
    Undetermined,
}

impl PodDrift {
    pub fn needs_restart(&self) -> bool {
        matches!(
            self,
            PodDrift::RevisionChanged { .. } | PodDrift::MissingSidecar { .. }
        )
    }
}

pub fn pod_drift(actual: &SidecarRevision, expected: &EffectiveRevision) -> PodDrift {
    match (actual, &expected.revision) {
        (SidecarRevision::Unknown | SidecarRevision::UnknownRevision(_), _) => {
            PodDrift::Undetermined
        }
        (_, None) if expected.is_unresolved() => PodDrift::Undetermined,
        (SidecarRevision::Revision(from), Some(to)) if from != to => PodDrift::RevisionChanged {
            from: from.clone(),
            to: to.clone(),
        },
        (SidecarRevision::Revision(_), Some(_)) => PodDrift::InSync,
        (SidecarRevision::None, Some(to)) => PodDrift::MissingSidecar { to: to.clone() },
        (SidecarRevision::Revision(from), None) => {
            PodDrift::SidecarNotWanted { from: from.clone() }
        }
        (SidecarRevision::None, None) => PodDrift::InSync,
    }
}
