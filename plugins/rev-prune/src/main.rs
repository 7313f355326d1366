//! `kubectl rev-prune OLD_REVISION`: remove the old revision's control plane and gateways, only
//! when nothing uses it any more (upgrade guide step 5).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rev_shared::RevError;
use rev_shared::command::prune::prune;
use rev_shared::command::prune_clusters::ClustersRequest;
use rev_shared::exec::helm::find_helm_on_path;
use rev_shared::flags::{
    ConnectionFlags, DumpFlags, MutationFlags, VerbosityFlags, parse_kubectl_duration,
};
use rev_shared::output::io::Io;
use rev_shared::plan::prune::PruneOptions;
use rev_shared::revision::RevisionName;

/// Remove an Istio revision (its Helm releases and objects) once nothing uses it: refuses while
/// namespaces, pods, tags, the default validator or a serving gateway still depend on it.
#[derive(Parser, Debug)]
#[command(name = "kubectl rev-prune", bin_name = "kubectl rev-prune", version)]
#[command(
    after_help = "Examples:\n  kubectl rev-prune 1-30 --dry-run=client\n  kubectl rev-prune 1-30 --yes\n  kubectl rev-prune 1-30 --dry-run=server --yes\n  kubectl rev-prune 1-30 --from-file cluster-dump.yaml\n  kubectl rev-prune 1-30 --context primary --context remote --yes\n\nInterrupted or stopped midway, run the same command again: it plans from what is left.\nExit codes: 0 pruned or nothing left, 1 refused or failed, 2 usage."
)]
struct Cli {
    /// The revision to remove (e.g. 1-30)
    #[arg(value_name = "OLD_REVISION", value_parser = RevisionName::parse)]
    revision: RevisionName,

    /// Delete even though interlocks refuse (cuts whatever still uses the revision); an
    /// address that disappears needs --allow-address-change, not this
    #[arg(long)]
    force: bool,

    /// Delete Services whose external address no remaining Service holds: say so once DNS and
    /// clients use the new gateway's address
    #[arg(long)]
    allow_address_change: bool,

    /// Prune across every context of the kubeconfig (multi-cluster meshes, upgrade step 6);
    /// `--context` may also be given several times
    #[arg(long, conflicts_with_all = ["contexts", "from_file"])]
    all_contexts: bool,

    /// How long to wait for the deleted workloads' pods to go
    #[arg(long, default_value = "5m", value_parser = parse_kubectl_duration)]
    timeout: Duration,

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
    let request = ClustersRequest {
        revision: &cli.revision,
        options: PruneOptions {
            force: cli.force,
            allow_address_change: cli.allow_address_change,
            helm_binary: find_helm_on_path().map(|p| p.display().to_string()),
        },
        all_contexts: cli.all_contexts,
        timeout: cli.timeout,
        level: cli.verbosity.level,
    };
    prune(request, &cli.connection, &cli.dumps, &mut cli.mutation, io).await
}
