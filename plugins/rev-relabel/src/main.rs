//! `kubectl rev-relabel`: move namespaces to a new Istio revision (upgrade guide step 3.6), one
//! guarded patch per namespace, after preflight checks, a printed plan and confirmation.

use std::process::ExitCode;

use clap::Parser;
use rev_shared::RevError;
use rev_shared::command::relabel::{RelabelArgs, RelabelRequest, relabel};
use rev_shared::flags::{ConnectionFlags, DumpFlags, MutationFlags, ScopeFlags, VerbosityFlags};
use rev_shared::output::io::Io;
use rev_shared::revision::RevisionName;
use rev_shared::view::{ClusterView, Extras};

/// Move namespaces to an Istio revision (or tag): sets istio.io/rev, removes istio-injection,
/// in one patch per namespace guarded by its resourceVersion. Undo with --undo.
#[derive(Parser, Debug)]
#[command(
    name = "kubectl rev-relabel",
    bin_name = "kubectl rev-relabel",
    version
)]
#[command(
    override_usage = "kubectl rev-relabel NAMESPACE... REVISION [flags]\n       kubectl rev-relabel --from OLD [-A] REVISION [flags]\n       kubectl rev-relabel -l SELECTOR REVISION [flags]\n       kubectl rev-relabel --undo NAMESPACE... [flags]\n       kubectl rev-relabel --tag TAG REVISION [flags]   (--undo --tag TAG to go back)"
)]
#[command(
    after_help = "Examples:\n  kubectl rev-relabel bookinfo 1-20 --dry-run=client\n  kubectl rev-relabel --from 1-19 -A 1-20 --yes\n  kubectl rev-relabel --undo bookinfo\n  kubectl rev-relabel --tag default 1-20 --yes\n\nExit codes: 0 done or nothing to do, 1 error or refused, 2 usage."
)]
struct Cli {
    /// Namespaces, then the revision or tag to move them to (with --undo: namespaces only)
    #[arg(value_name = "NAMESPACE... REVISION")]
    args: Vec<String>,

    /// Every namespace whose effective revision is OLD
    #[arg(long, value_name = "OLD", value_parser = RevisionName::parse, conflicts_with = "selector")]
    from: Option<RevisionName>,

    /// Restore the labels a previous relabel replaced (recorded on each namespace)
    #[arg(long, conflicts_with = "from")]
    undo: bool,

    /// Proceed despite failed preflight checks
    #[arg(long)]
    force: bool,

    /// Repoint this revision tag to REVISION instead of relabelling namespaces (like
    /// `istioctl tag set TAG --revision REVISION --overwrite`); `default` also moves
    /// istiod-default-validator
    #[arg(long, value_name = "TAG", value_parser = RevisionName::parse, conflicts_with_all = ["from", "selector"])]
    tag: Option<RevisionName>,

    /// Field manager recorded for the change
    #[arg(long, default_value = "kubectl-rev-relabel")]
    field_manager: String,

    #[command(flatten)]
    scope: ScopeFlags,
    #[command(flatten)]
    dumps: DumpFlags,
    #[command(flatten)]
    mutation: MutationFlags,
    #[command(flatten)]
    connection: ConnectionFlags,
    #[command(flatten)]
    verbosity: VerbosityFlags,
}

fn main() -> ExitCode {
    rev_shared::cli::run(run)
}

async fn run(mut cli: Cli, io: &mut Io) -> Result<(), RevError> {
    let request = RelabelRequest::from_args(&RelabelArgs {
        args: &cli.args,
        undo: cli.undo,
        tag: cli.tag.as_ref(),
        from: cli.from.as_ref(),
        selector: cli.scope.selector.as_deref(),
        all_namespaces: cli.scope.all_namespaces,
    })?;
    let (level, extras) = (cli.verbosity.level, Extras::default());
    let view = ClusterView::for_command(
        &cli.connection,
        level,
        &cli.dumps,
        &mut cli.mutation,
        &request.scope(),
        extras,
    )
    .await?;
    let field_manager = cli.field_manager.clone();
    relabel(&view, request, cli.force, field_manager, &cli.mutation, io).await
}
