//! `kubectl rev-inventory`: what runs, and which revision each namespace, workload, gateway,
//! tag and filter is on (upgrade guide step 1). Read-only.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use futures::future::try_join_all;
use rev_shared::RevError;
use rev_shared::analysis::{Severity, analyze};
use rev_shared::client::{all_contexts, connect_all};
use rev_shared::flags::{ConnectionFlags, OutputFlags, OutputFormat, ScopeFlags, VerbosityFlags};
use rev_shared::output::inventory::{self, ClusterInventory, InventoryReport, TableOptions};
use rev_shared::output::{color_enabled, progress::ReadSpinner, to_json, to_yaml};
use rev_shared::selector::Selector;
use rev_shared::snapshot::Snapshot;
use rev_shared::snapshot::dump::read_dumps;
use rev_shared::snapshot::live::{NamespaceScope, ReadCounter, namespaces_matching, read_snapshot};

/// Inventory of an Istio mesh by revision: revisions, tags, gateways, namespaces and the
/// upgrade's progress, with findings that block a safe upgrade.
#[derive(Parser, Debug)]
#[command(
    name = "kubectl rev-inventory",
    bin_name = "kubectl rev-inventory",
    version
)]
#[command(
    after_help = "Examples:\n  kubectl rev-inventory\n  kubectl rev-inventory -n bookinfo -o json\n  kubectl rev-inventory --context east --context west\n  kubectl rev-inventory --from-file support-bundle.yaml --fail-on error\n\nExit codes: 0 ok, 1 error, 2 usage, 3 --fail-on threshold reached (1 on Windows)."
)]
struct Cli {
    #[command(flatten)]
    connection: ConnectionFlags,
    #[command(flatten)]
    scope: ScopeFlags,
    #[command(flatten)]
    output: OutputFlags,
    #[command(flatten)]
    verbosity: VerbosityFlags,

    /// Inventory every context of the kubeconfig (multi-cluster meshes, upgrade step 6)
    #[arg(long, conflicts_with = "contexts")]
    all_contexts: bool,

    /// Exit with code 3 when a finding of this severity or worse exists
    #[arg(long, value_enum, value_name = "SEVERITY")]
    fail_on: Option<Severity>,

    /// Analyse saved `kubectl get … -o yaml|json` dumps instead of a live cluster (repeatable:
    /// the files are read as one cluster)
    #[arg(long, value_name = "DUMP")]
    from_file: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = rev_shared::meta::parse::<Cli>();
    rev_shared::cli::run(run(cli))
}

async fn run(cli: Cli) -> Result<ExitCode, RevError> {
    // The inventory is mesh-wide by default; -n or -l narrow the namespaces shown.
    let selector = cli
        .scope
        .selector
        .as_deref()
        .map(Selector::parse)
        .transpose()?;
    let clusters: Vec<(String, Snapshot, Option<Vec<String>>)> = if !cli.from_file.is_empty() {
        let snapshot = read_dumps(&cli.from_file)?;
        let scope = scope_in(&snapshot, &cli, selector.as_ref())?;
        let name = cli
            .from_file
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>();
        vec![(name.join(","), snapshot, scope)]
    } else {
        {
            let contexts = if cli.all_contexts {
                all_contexts(&cli.connection)?
            } else {
                cli.connection.contexts.clone()
            };
            let connections = connect_all(&cli.connection, &contexts, cli.verbosity.level).await?;
            let counter = ReadCounter::default();
            let spinner = ReadSpinner::start("reading cluster", &counter);
            let reads = try_join_all(connections.iter().map(|conn| {
                let (counter, selector, cli) = (&counter, selector.as_ref(), &cli);
                async move {
                    let scope = match (selector, &cli.connection.namespace) {
                        (Some(sel), _) => Some(
                            namespaces_matching(&conn.client, sel)
                                .await
                                .map_err(|e| e.with_server(&conn.server))?,
                        ),
                        (None, Some(ns)) if !cli.scope.all_namespaces => Some(vec![ns.clone()]),
                        _ => None,
                    };
                    let read_scope = scope
                        .clone()
                        .map_or(NamespaceScope::All, NamespaceScope::Only);
                    let snapshot = read_snapshot(&conn.client, &read_scope, counter)
                        .await
                        .map_err(|e| e.with_server(&conn.server))?;
                    Ok::<_, RevError>((conn.name.clone(), snapshot, scope))
                }
            }))
            .await;
            spinner.finish();
            reads?
        }
    };

    let report = InventoryReport::new(
        clusters
            .into_iter()
            .map(|(name, mut snapshot, scope)| {
                let mut analysis = analyze(&snapshot);
                if let Some(scope) = scope {
                    analysis.retain_namespaces(|ns| scope.iter().any(|s| s == ns));
                }
                ClusterInventory::new(name, analysis, std::mem::take(&mut snapshot.warnings))
            })
            .collect(),
    );

    let text = match cli.output.format() {
        OutputFormat::Json => to_json(&report)?,
        OutputFormat::Yaml => to_yaml(&report)?,
        OutputFormat::Name => inventory::render_names(&report),
        format => inventory::render_tables(
            &report,
            &TableOptions {
                wide: format == OutputFormat::Wide,
                no_headers: cli.output.no_headers,
                color: color_enabled(),
            },
        ),
    };
    print!("{text}");

    match (cli.fail_on, report.worst_severity()) {
        (Some(threshold), Some(worst)) if worst >= threshold => Err(RevError::FailOn {
            threshold: threshold.as_str().into(),
        }),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The namespaces -n/-l pick in a dump (`None`: all).
fn scope_in(
    snapshot: &Snapshot,
    cli: &Cli,
    selector: Option<&Selector>,
) -> Result<Option<Vec<String>>, RevError> {
    if let Some(sel) = selector {
        return Ok(Some(
            snapshot
                .namespaces
                .iter()
                .filter(|n| sel.matches(&n.labels))
                .map(|n| n.name.clone())
                .collect(),
        ));
    }
    match &cli.connection.namespace {
        Some(ns) if !cli.scope.all_namespaces => {
            if snapshot.namespace(ns).is_none() {
                return Err(RevError::UnknownNamespaces {
                    names: vec![ns.clone()],
                });
            }
            Ok(Some(vec![ns.clone()]))
        }
        _ => Ok(None),
    }
}
