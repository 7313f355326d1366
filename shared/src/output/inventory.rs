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
    /// One cluster inventory per view, narrowed to the namespaces in its scope.
    pub fn from_views(views: Vec<crate::view::ClusterView>) -> Self {
        Self::new(
            views
                .into_iter()
                .map(|mut view| {
                    let analysis = view.scoped_analysis();
                    ClusterInventory::new(
                        view.name,
                        analysis,
                        std::mem::take(&mut view.snapshot.warnings),
                    )
                })
                .collect(),
        )
    }

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

pub struct TableOptions {
    pub wide: bool,
    pub no_headers: bool,
    pub color: bool,
}

/// One column of a section: its header, how a cell is written, and whether only `-o wide`
/// shows it.
struct Column<T> {
    header: &'static str,
    cell: fn(&T, &Cells) -> String,
    wide_only: bool,
}

const fn col<T>(header: &'static str, cell: fn(&T, &Cells) -> String) -> Column<T> {
    Column {
        header,
        cell,
        wide_only: false,
    }
}

const fn wide<T>(header: &'static str, cell: fn(&T, &Cells) -> String) -> Column<T> {
    Column {
        header,
        cell,
        wide_only: true,
    }
}

/// What a cell may need besides its row: the cluster's report and the table options.
struct Cells<'a> {
    cluster: &'a ClusterInventory,
    opts: &'a TableOptions,
}

/// A titled table whose rows come from every cluster of the report.
struct Section {
    title: &'static str,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    /// Left out when empty (instead of saying "None.").
    optional: bool,
}

fn section<'a, T>(
    report: &'a InventoryReport,
    opts: &TableOptions,
    title: &'static str,
    columns: &[Column<T>],
    rows_of: impl Fn(&'a ClusterInventory) -> Vec<T>,
    optional: bool,
) -> Section {
    let multi = report.clusters.len() > 1;
    let shown: Vec<&Column<T>> = columns
        .iter()
        .filter(|c| opts.wide || !c.wide_only)
        .collect();
    let mut headers: Vec<&'static str> = shown.iter().map(|c| c.header).collect();
    if multi {
        headers.insert(0, "cluster");
    }
    let mut rows = Vec::new();
    for cluster in &report.clusters {
        let cells = Cells { cluster, opts };
        for item in rows_of(cluster) {
            let mut row: Vec<String> = shown.iter().map(|c| (c.cell)(&item, &cells)).collect();
            if multi {
                row.insert(0, cluster.cluster.clone());
            }
            rows.push(row);
        }
    }
    Section {
        title,
        headers,
        rows,
        optional,
    }
}

/// A revision, or a tag whose revision is missing (shown among the revisions so it stands out).
enum RevisionRow<'a> {
    Installed(&'a RevisionInfo),
    MissingTag(&'a TagInfo),
}

fn revision_section(report: &InventoryReport, opts: &TableOptions) -> Section {
    let columns: [Column<RevisionRow>; 6] = [
        col("revision", |r, _| match r {
            RevisionRow::Installed(r) => r.name.clone(),
            RevisionRow::MissingTag(t) => format!("tag {} → {}", t.name, t.revision),
        }),
        col("version", |r, _| match r {
            RevisionRow::Installed(r) => opt(&r.version),
            RevisionRow::MissingTag(_) => String::new(),
        }),
        col("istiod", |r, _| match r {
            RevisionRow::Installed(r) => r
                .istiod
                .as_ref()
                .map(|i| format!("{}/{}", i.ready, i.desired))
                .unwrap_or_else(|| "missing".into()),
            RevisionRow::MissingTag(_) => "missing".into(),
        }),
        col("tags", |r, _| match r {
            RevisionRow::Installed(r) => {
                let mut tags = r.tags.clone();
                if r.is_default && !tags.iter().any(|t| t == "default") {
                    tags.insert(0, "(default)".into());
                }
                tags.join(",")
            }
            RevisionRow::MissingTag(t) => t.name.clone(),
        }),
        col("helm release", |r, _| match r {
            RevisionRow::Installed(r) => opt(&r.helm_release),
            RevisionRow::MissingTag(_) => String::new(),
        }),
        col("webhooks", |r, cells| match r {
            RevisionRow::Installed(r) if cells.opts.wide => r.injector_webhooks.join(","),
            RevisionRow::Installed(r) => r.injector_webhooks.len().to_string(),
            RevisionRow::MissingTag(t) => t.webhook.clone(),
        }),
    ];
    let mut out = section(
        report,
        opts,
        "REVISIONS",
        &columns,
        |c| {
            let missing = c.tags.iter().filter(|t| !t.revision_installed);
            c.revisions
                .iter()
                .map(RevisionRow::Installed)
                .chain(missing.map(RevisionRow::MissingTag))
                .collect()
        },
        false,
    );
    if opts.wide
        && let Some(h) = out.headers.iter_mut().find(|h| **h == "webhooks")
    {
        *h = "injector webhooks";
    }
    out
}

fn gateway_section(report: &InventoryReport, opts: &TableOptions) -> Section {
    let columns: [Column<&GatewayInfo>; 7] = [
        col("namespace", |g, _| g.namespace.clone()),
        col("name", |g, _| g.name.clone()),
        col("revision", |g, _| opt(&g.revision)),
        col("ready", |g, _| format!("{}/{}", g.ready, g.desired)),
        col("helm release", |g, _| opt(&g.helm_release)),
        col("address", |g, _| g.addresses.join(",")),
        wide("service type", |g, _| opt(&g.service_type)),
    ];
    section(
        report,
        opts,
        "GATEWAYS",
        &columns,
        |c| c.gateways.iter().collect(),
        true,
    )
}

fn namespace_section(report: &InventoryReport, opts: &TableOptions) -> Section {
    let columns: [Column<&NamespaceStatus>; 8] = [
        col("namespace", |n, _| n.name.clone()),
        col("istio.io/rev", |n, _| opt(&n.rev_label)),
        col("istio-injection", |n, _| opt(&n.injection_label)),
        col("effective", |n, _| n.effective.display()),
        col("pods by sidecar", |n, _| counts(&n.pods_by_revision)),
        col("need restart", |n, _| n.pods_needing_restart.to_string()),
        wide("drifted workloads", |n, cells| {
            cells
                .cluster
                .workloads
                .iter()
                .filter(|w| w.namespace == n.name && w.is_drifted() && w.exclusion.is_none())
                .map(|w| format!("{}/{}", w.kind.resource(), w.name))
                .collect::<Vec<_>>()
                .join(",")
        }),
        // Why it resolves so: the webhook (of which configuration) whose injector decides.
        wide("webhook", |n, _| {
            n.effective
                .webhook
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        }),
    ];
    section(
        report,
        opts,
        "NAMESPACES",
        &columns,
        |c| c.namespaces.iter().collect(),
        false,
    )
}

fn pinned_section(report: &InventoryReport, opts: &TableOptions) -> Section {
    let columns: [Column<&PinnedConfig>; 5] = [
        col("namespace", |p, _| p.namespace.clone()),
        col("kind", |p, _| p.kind.clone()),
        col("name", |p, _| p.name.clone()),
        col("revision", |p, _| p.revision.clone()),
        col("installed", |p, _| {
            if p.revision_installed { "yes" } else { "no" }.into()
        }),
    ];
    section(
        report,
        opts,
        "PINNED CONFIG",
        &columns,
        |c| c.pinned_config.iter().collect(),
        true,
    )
}

fn finding_section(report: &InventoryReport, opts: &TableOptions) -> Section {
    let columns: [Column<&Finding>; 5] = [
        col("severity", |f, cells| {
            match (cells.opts.color, f.severity) {
                (true, Severity::Error) => f.severity.as_str().red().to_string(),
                (true, Severity::Warning) => f.severity.as_str().yellow().to_string(),
                _ => f.severity.as_str().to_string(),
            }
        }),
        col("code", |f, _| f.code.to_string()),
        col("subject", |f, _| f.subject.clone()),
        col("message", |f, _| f.message.clone()),
        wide("fix", |f, _| f.hint.clone()),
    ];
    section(
        report,
        opts,
        "FINDINGS",
        &columns,
        |c| c.findings.iter().collect(),
        false,
    )
}

fn warning_section(report: &InventoryReport, opts: &TableOptions) -> Section {
    let columns: [Column<&ReadWarning>; 3] = [
        col("verb", |w, _| w.verb.clone()),
        col("resource", |w, _| w.resource.clone()),
        col("message", |w, _| w.message.clone()),
    ];
    section(
        report,
        opts,
        "WARNINGS",
        &columns,
        |c| c.warnings.iter().collect(),
        true,
    )
}

/// Renders the sections as kubectl-style tables, each under its title. With several clusters
/// every row starts with a CLUSTER column.
pub fn render_tables(report: &InventoryReport, opts: &TableOptions) -> String {
    let sections = [
        revision_section(report, opts),
        gateway_section(report, opts),
        namespace_section(report, opts),
        pinned_section(report, opts),
        finding_section(report, opts),
        warning_section(report, opts),
    ];
    let mut out = String::new();
    for s in sections {
        if s.rows.is_empty() && s.optional {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        if !opts.no_headers {
            out.push_str(s.title);
            out.push('\n');
        }
        if s.rows.is_empty() {
            out.push_str(if s.title == "FINDINGS" {
                "No findings.\n"
            } else {
                "None.\n"
            });
            continue;
        }
        out.push_str(&table(&s.headers, s.rows, opts.no_headers));
    }
    out
}

/// The report in the format asked for.
pub fn render(
    report: &InventoryReport,
    format: crate::flags::OutputFormat,
    no_headers: bool,
) -> Result<String, crate::error::RevError> {
    use crate::flags::OutputFormat;
    Ok(match format {
        OutputFormat::Json => super::to_json(report)?,
        OutputFormat::Yaml => super::to_yaml(report)?,
        OutputFormat::Name => render_names(report),
        format => render_tables(
            report,
            &TableOptions {
                wide: format == OutputFormat::Wide,
                no_headers,
                color: super::color_enabled(),
            },
        ),
    })
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
