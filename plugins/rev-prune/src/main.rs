//! `kubectl rev-prune OLD_REVISION`: remove the old revision's control plane and gateways, only
//! when nothing uses it any more (upgrade guide step 5).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rev_shared::RevError;
use rev_shared::command::prune::Prune;
use rev_shared::driver::drive;
use rev_shared::exec::helm::find_helm_on_path;
use rev_shared::exec::prune::{PruneSettings, inspect};
use rev_shared::flags::{
    ConnectionFlags, DryRun, MutationFlags, VerbosityFlags, parse_kubectl_duration,
};
use rev_shared::output::io::Io;
use rev_shared::plan::prune::{PruneOptions, plan_prune};
use rev_shared::revision::RevisionName;
use rev_shared::snapshot::live::ReadCounter;
use rev_shared::view::{ClusterView, Extras, Scope};

/// Remove an Istio revision (its Helm releases and objects) once nothing uses it: refuses while
/// namespaces, pods, tags, the default validator or a serving gateway still depend on it.
#[derive(Parser, Debug)]
#[command(name = "kubectl rev-prune", bin_name = "kubectl rev-prune", version)]
#[command(
    after_help = "Examples:\n  kubectl rev-prune 1-30 --dry-run=client\n  kubectl rev-prune 1-30 --yes\n  kubectl rev-prune 1-30 --dry-run=server --yes\n  kubectl rev-prune 1-30 --from-file cluster-dump.yaml\n\nInterrupted or stopped midway, run the same command again: it plans from what is left.\nExit codes: 0 pruned or nothing left, 1 refused or failed, 2 usage."
)]
struct Cli {
    /// The revision to remove (e.g. 1-30)
    #[arg(value_name = "OLD_REVISION", value_parser = RevisionName::parse)]
    revision: RevisionName,

    /// Delete even though interlocks refuse (cuts whatever still uses the revision)
    #[arg(long)]
    force: bool,

    /// How long to wait for the deleted workloads' pods to go
    #[arg(long, default_value = "5m", value_parser = parse_kubectl_duration)]
    timeout: Duration,

    /// Plan against saved `kubectl get … -o yaml|json` dumps instead of a cluster (implies
    /// --dry-run=client; repeatable)
    #[arg(long, value_name = "DUMP")]
    from_file: Vec<PathBuf>,

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
    let options = PruneOptions {
        force: cli.force,
        helm_binary: find_helm_on_path().map(|p| p.display().to_string()),
    };
    let view = if cli.from_file.is_empty() {
        let extras = Extras {
            revision_objects: true,
        };
        ClusterView::observe(
            &cli.connection,
            cli.verbosity.level,
            &Scope::All,
            extras,
            &ReadCounter::default(),
        )
        .await?
    } else if cli.mutation.dry_run == DryRun::Server {
        return Err(RevError::Usage(
            "--from-file only plans (a dump has no API server to dry-run against): use --dry-run=client or drop --from-file".into(),
        ));
    } else {
        cli.mutation.dry_run = DryRun::Client;
        ClusterView::from_dumps(&cli.from_file, &Scope::All)?
    };
    let plan = plan_prune(&view.snapshot, &view.analysis, &cli.revision, &options)?;
    let inspection = match &view.cluster {
        Some(cluster) => Some(inspect(cluster, &plan).await?),
        None => None,
    };
    let command = Prune {
        cluster: view.cluster.as_ref(),
        plan,
        inspection,
        options,
        settings: PruneSettings {
            dry_run: cli.mutation.dry_run,
            timeout: cli.timeout,
            connection: cli.connection.clone(),
        },
    };
    drive(&command, &cli.mutation, io).await
}
