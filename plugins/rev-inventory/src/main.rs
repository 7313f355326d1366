//! `kubectl rev-inventory`: what runs, and which revision each namespace, workload, gateway,
//! tag and filter is on (upgrade guide step 1). Read-only.

use std::process::ExitCode;

use clap::Parser;
use rev_shared::RevError;
use rev_shared::analysis::Severity;
use rev_shared::flags::{ConnectionFlags, DumpFlags, OutputFlags, ScopeFlags, VerbosityFlags};
use rev_shared::output::inventory::{InventoryReport, render};
use rev_shared::output::io::Io;
use rev_shared::selector::Selector;
use rev_shared::view::{ClusterView, Extras, Scope};

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

    /// Also ask the cluster: dry-run create each injected or drifted workload's pod template
    /// (needs `create pods`; nothing is stored) and report every disagreement with the analysis
    #[arg(long, conflicts_with = "from_file")]
    check_injection: bool,

    #[command(flatten)]
    dumps: DumpFlags,
}

fn main() -> ExitCode {
    rev_shared::cli::run(run)
}

async fn run(cli: Cli, io: &mut Io) -> Result<(), RevError> {
    // Mesh-wide by default (revisions are cluster-wide); -n or -l narrow the namespaces shown.
    let scope = match (&cli.scope.selector, &cli.connection.namespace) {
        (Some(selector), _) => Scope::Selected(Selector::parse(selector)?),
        (None, Some(ns)) if !cli.scope.all_namespaces => Scope::Named(vec![ns.clone()]),
        _ => Scope::All,
    };
    let extras = Extras {
        check_injection: cli.check_injection,
        ..Extras::default()
    };
    let (views, _) = ClusterView::observe_for_reading(
        &cli.connection,
        cli.all_contexts,
        &cli.dumps,
        cli.verbosity.level,
        &scope,
        extras,
    )
    .await?;
    let report = InventoryReport::from_views(views);
    io.out(&render(
        &report,
        cli.output.format(),
        cli.output.no_headers,
    )?)?;
    match (cli.fail_on, report.worst_severity()) {
        (Some(threshold), Some(worst)) if worst >= threshold => Err(RevError::FailOn {
            threshold: threshold.as_str().into(),
        }),
        _ => Ok(()),
    }
}
