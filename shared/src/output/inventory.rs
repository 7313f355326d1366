//! The inventory report: the versioned JSON/YAML document (the suite's composition interface)
//! and its kubectl-style tables.
//!
//! Schema `inventory.kubectl-rev.dev/v1alpha1` (documented in README "JSON schema"): fields are
//! only ever added within a version; renaming or removing one bumps it.

use std::collections::BTreeMap;

use owo_colors::OwoColorize;
use serde::Serialize;

use super::table;
use crate::analysis::{
    Analysis, Finding, GatewayInfo, NamespaceStatus, PinnedConfig, Severity, TagInfo,
    WorkloadStatus,
    revisions::{DefaultValidator, RevisionInfo},
};
use crate::snapshot::ReadWarning;

pub const API_VERSION: &str = "inventory.kubectl-rev.dev/v1alpha1";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub clusters: Vec<ClusterInventory>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInventory {
    /// The kubeconfig context, or the dump file.
    pub cluster: String,
    pub revisions: Vec<RevisionInfo>,
    pub tags: Vec<TagInfo>,
    pub default_revision: Option<String>,
    pub default_validator: Option<DefaultValidator>,
    pub gateways: Vec<GatewayInfo>,
    pub namespaces: Vec<NamespaceStatus>,
    /// Injected workloads (and any drifted one) with their sidecar revisions.
    pub workloads: Vec<WorkloadStatus>,
    pub pinned_config: Vec<PinnedConfig>,
    pub findings: Vec<Finding>,
    /// What could not be read (e.g. RBAC), so the report is partial.
    pub warnings: Vec<ReadWarning>,
}

impl ClusterInventory {
    pub fn new(cluster: String, analysis: Analysis, warnings: Vec<ReadWarning>) -> Self {
        let Analysis {
            control_plane,
            gateways,
            namespaces,
            workloads,
            pinned_config,
            findings,
            ..
        } = analysis;
        ClusterInventory {
            cluster,
            revisions: control_plane.revisions,
            tags: control_plane.tags,
            default_revision: control_plane.default_revision,
            default_validator: control_plane.default_validator,
            gateways,
            namespaces,
            workloads: workloads
                .into_iter()
                .filter(|w| w.injected || w.is_drifted())
                .collect(),
            pinned_config,
            findings,
            warnings,
        }
    }
}

impl InventoryReport {
    pub fn new(clusters: Vec<ClusterInventory>) -> Self {
        Self {
            api_version: API_VERSION,
            kind: "Inventory",
            clusters,
        }
    }

    pub fn worst_severity(&self) -> Option<Severity> {
        self.clusters
            .iter()
            .flat_map(|c| c.findings.iter().map(|f| f.severity))
            .max()
    }
}

fn counts(map: &BTreeMap<String, usize>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// A titled table: title, headers, rows.
type Section<'a> = (&'a str, Vec<&'a str>, Vec<Vec<String>>);

pub struct TableOptions {
    pub wide: bool,
    pub no_headers: bool,
    pub color: bool,
}

/// Renders the sections as kubectl-style tables, each under its title. With several clusters
/// every row starts with a CLUSTER column.
pub fn render_tables(report: &InventoryReport, opts: &TableOptions) -> String {
    let multi = report.clusters.len() > 1;
    let mut sections: Vec<Section> = Vec::new();

    let mut rev_rows = Vec::new();
    let mut gw_rows = Vec::new();
    let mut ns_rows = Vec::new();
    let mut cfg_rows = Vec::new();
    let mut finding_rows = Vec::new();
    let mut warning_rows = Vec::new();
    for c in &report.clusters {
        let prefix = |mut row: Vec<String>| {
            if multi {
                row.insert(0, c.cluster.clone());
            }
            row
        };
        for r in &c.revisions {
            let mut tags = r.tags.clone();
            if r.is_default && !tags.iter().any(|t| t == "default") {
                tags.insert(0, "(default)".into());
            }
            let mut row = vec![
                r.name.clone(),
                opt(&r.version),
                r.istiod
                    .as_ref()
                    .map(|i| format!("{}/{}", i.ready, i.desired))
                    .unwrap_or_else(|| "missing".into()),
                tags.join(","),
                opt(&r.helm_release),
            ];
            if opts.wide {
                row.push(r.injector_webhooks.join(","));
            } else {
                row.push(r.injector_webhooks.len().to_string());
            }
            rev_rows.push(prefix(row));
        }
        for t in &c.tags {
            if !t.revision_installed {
                rev_rows.push(prefix(vec![
                    format!("tag {} → {}", t.name, t.revision),
                    String::new(),
                    "missing".into(),
                    t.name.clone(),
                    String::new(),
                    t.webhook.clone(),
                ]));
            }
        }
        for g in &c.gateways {
            let mut row = vec![
                g.namespace.clone(),
                g.name.clone(),
                opt(&g.revision),
                format!("{}/{}", g.ready, g.desired),
                opt(&g.helm_release),
                g.addresses.join(","),
            ];
            if opts.wide {
                row.push(opt(&g.service_type));
            }
            gw_rows.push(prefix(row));
        }
        for n in &c.namespaces {
            let mut row = vec![
                n.name.clone(),
                opt(&n.rev_label),
                opt(&n.injection_label),
                n.effective.display(),
                counts(&n.pods_by_revision),
                n.pods_needing_restart.to_string(),
            ];
            if opts.wide {
                row.push(
                    c.workloads
                        .iter()
                        .filter(|w| {
                            w.namespace == n.name && w.is_drifted() && w.exclusion.is_none()
                        })
                        .map(|w| format!("{}/{}", w.kind.resource(), w.name))
                        .collect::<Vec<_>>()
                        .join(","),
                );
                // Why it resolves so: the webhook whose injector decides.
                row.push(
                    n.effective
                        .webhook
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                );
            }
            ns_rows.push(prefix(row));
        }
        for p in &c.pinned_config {
            cfg_rows.push(prefix(vec![
                p.namespace.clone(),
                p.kind.clone(),
                p.name.clone(),
                p.revision.clone(),
                if p.revision_installed { "yes" } else { "no" }.into(),
            ]));
        }
        for f in &c.findings {
            let severity = match (opts.color, f.severity) {
                (true, Severity::Error) => f.severity.as_str().red().to_string(),
                (true, Severity::Warning) => f.severity.as_str().yellow().to_string(),
                _ => f.severity.as_str().to_string(),
            };
            let mut row = vec![
                severity,
                f.code.to_string(),
                f.subject.clone(),
                f.message.clone(),
            ];
            if opts.wide {
                row.push(f.hint.clone());
            }
            finding_rows.push(prefix(row));
        }
        for w in &c.warnings {
            warning_rows.push(prefix(vec![
                w.verb.clone(),
                w.resource.clone(),
                w.message.clone(),
            ]));
        }
    }

    let mut rev_headers = vec!["revision", "version", "istiod", "tags", "helm release"];
    rev_headers.push(if opts.wide {
        "injector webhooks"
    } else {
        "webhooks"
    });
    sections.push(("REVISIONS", rev_headers, rev_rows));
    let mut gw_headers = vec![
        "namespace",
        "name",
        "revision",
        "ready",
        "helm release",
        "address",
    ];
    if opts.wide {
        gw_headers.push("service type");
    }
    sections.push(("GATEWAYS", gw_headers, gw_rows));
    let mut ns_headers = vec![
        "namespace",
        "istio.io/rev",
        "istio-injection",
        "effective",
        "pods by sidecar",
        "need restart",
    ];
    if opts.wide {
        ns_headers.extend(["drifted workloads", "webhook"]);
    }
    sections.push(("NAMESPACES", ns_headers, ns_rows));
    sections.push((
        "PINNED CONFIG",
        vec!["namespace", "kind", "name", "revision", "installed"],
        cfg_rows,
    ));
    let mut f_headers = vec!["severity", "code", "subject", "message"];
    if opts.wide {
        f_headers.push("fix");
    }
    sections.push(("FINDINGS", f_headers, finding_rows));
    sections.push((
        "WARNINGS",
        vec!["verb", "resource", "message"],
        warning_rows,
    ));

    let mut out = String::new();
    for (title, mut headers, rows) in sections {
        if rows.is_empty() && matches!(title, "PINNED CONFIG" | "WARNINGS" | "GATEWAYS") {
            continue;
        }
        if multi {
            headers.insert(0, "cluster");
        }
        if !out.is_empty() {
            out.push('\n');
        }
        if !opts.no_headers {
            out.push_str(title);
            out.push('\n');
        }
        if rows.is_empty() {
            out.push_str(if title == "FINDINGS" {
                "No findings.\n"
            } else {
                "None.\n"
            });
            continue;
        }
        out.push_str(&table(&headers, rows, opts.no_headers));
    }
    out
}

/// `-o name`: one `kind/name` per namespace whose pods need a restart — what scripts feed to
/// rev-restart.
pub fn render_names(report: &InventoryReport) -> String {
    let mut out = String::new();
    for c in &report.clusters {
        for n in c.namespaces.iter().filter(|n| n.pods_needing_restart > 0) {
            out.push_str(&format!("namespace/{}\n", n.name));
        }
    }
    out
}
