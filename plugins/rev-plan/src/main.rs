//! `kubectl rev-plan NEW`: the whole canary upgrade of this mesh to revision NEW, as a runbook
//! whose every step carries its commands and its status now (upgrade guide steps 1-6).
//! Read-only: it writes nothing to the cluster; `--values-dir` writes local values files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rev_shared::RevError;
use rev_shared::command::runbook::{RunbookArgs, runbook};
use rev_shared::flags::{ConnectionFlags, DumpFlags, VerbosityFlags};
use rev_shared::output::io::Io;
use rev_shared::output::plan::PlanFormat;
use rev_shared::revision::RevisionName;
use rev_shared::view::{ClusterView, Extras, Scope};

/// The upgrade of an Istio mesh to revision NEW as a runbook: each step of the upgrade guide
/// with its exact commands and whether it is done, next, pending or blocked (and why).
#[derive(Parser, Debug)]
// `--version` is the plugin's own, as in every plugin of the suite; the Istio version to
// install is `--istio-version`.
#[command(name = "kubectl rev-plan", bin_name = "kubectl rev-plan", version)]
#[command(
    after_help = "Examples:\n  kubectl rev-plan 1-31 --istio-version 1.31.0\n  kubectl rev-plan 1-31 --istio-version 1.31.0 --values-dir values/\n  kubectl rev-plan 1-31 -o sh > upgrade.sh && bash upgrade.sh\n  kubectl rev-plan 1-31 --from-file mesh-dump.yaml -o json\n\nExit codes: 0 ok, 1 error, 2 usage (1 on Windows)."
)]
struct Cli {
    /// The revision to upgrade to (e.g. 1-31)
    #[arg(value_name = "NEW_REVISION", value_parser = RevisionName::parse)]
    new: RevisionName,

    /// The Istio version NEW installs (chart and images), e.g. 1.31.0
    #[arg(long, value_name = "X.Y.Z")]
    istio_version: Option<String>,

    /// Where the Istio charts come from: a Helm repository name or a directory holding
    /// base/, istiod/ and gateway/
    #[arg(long, value_name = "REPO|DIR", default_value = "istio")]
    charts: String,

    /// Write one values file per new release (istiod-NEW, one per gateway) into DIR, carried
    /// over from the old releases' user values, and show what changed
    #[arg(long, value_name = "DIR")]
    values_dir: Option<PathBuf>,

    /// Output format: json or sh (default: text)
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    output: Option<PlanFormat>,

    /// Plan every context of the kubeconfig (multi-cluster meshes, upgrade step 6)
    #[arg(long, conflicts_with = "contexts")]
    all_contexts: bool,

    #[command(flatten)]
    connection: ConnectionFlags,
    #[command(flatten)]
    verbosity: VerbosityFlags,
    #[command(flatten)]
    dumps: DumpFlags,
}

fn main() -> ExitCode {
    rev_shared::cli::run(run)
}

async fn run(cli: Cli, io: &mut Io) -> Result<(), RevError> {
    let (views, named_contexts) = ClusterView::observe_for_reading(
        &cli.connection,
        cli.all_contexts,
        &cli.dumps,
        cli.verbosity.level,
        &Scope::All,
        Extras::default(),
    )
    .await?;
    let args = RunbookArgs {
        new: cli.new,
        istio_version: cli.istio_version,
        charts: cli.charts,
        values_dir: cli.values_dir,
        format: cli.output.unwrap_or_default(),
    };
    runbook(&views, named_contexts, &args, io)
}
