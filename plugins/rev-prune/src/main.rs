//! `kubectl rev-prune OLD_REVISION`: remove the old revision's control plane and gateways, only
//! when nothing uses it any more (upgrade guide step 5).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rev_shared::RevError;
use rev_shared::analysis::analyze;
use rev_shared::client::connect;
use rev_shared::exec::helm::find_helm_on_path;
use rev_shared::exec::prune::{Inspection, LiveState, PruneSettings, execute, inspect};
use rev_shared::flags::{
    ConnectionFlags, DryRun, MutationFlags, VerbosityFlags, parse_kubectl_duration,
};
use rev_shared::output::prompt::confirm;
use rev_shared::output::prune::{render_blockers, render_plan, render_remains, render_report};
use rev_shared::plan::prune::{PruneOptions, PrunePlan, plan_prune};
use rev_shared::revision::RevisionName;
use rev_shared::snapshot::Snapshot;
use rev_shared::snapshot::dump::read_dumps;
use rev_shared::snapshot::live::{
    NamespaceScope, ReadCounter, read_revision_objects, read_snapshot,
};

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
    rev_shared::cli::run(run(rev_shared::meta::parse::<Cli>()))
}

async fn run(cli: Cli) -> Result<ExitCode, RevError> {
    let options = PruneOptions {
        force: cli.force,
        helm_binary: find_helm_on_path().map(|p| p.display().to_string()),
    };
    if !cli.from_file.is_empty() {
        if cli.mutation.dry_run == DryRun::Server {
            return Err(RevError::Usage(
                "--from-file only plans (a dump has no API server to dry-run against): use --dry-run=client or drop --from-file".into(),
            ));
        }
        let snapshot = read_dumps(&cli.from_file)?;
        let plan = plan_prune(&snapshot, &analyze(&snapshot), &cli.revision, &options)?;
        show(&plan, None)?;
        eprintln!("dry run (client, from file): nothing was sent");
        return Ok(ExitCode::SUCCESS);
    }

    let conn = connect(&cli.connection, cli.verbosity.level).await?;
    let client = &conn.client;
    let snapshot = read_mesh(client)
        .await
        .map_err(|e| e.with_server(&conn.server))?;
    let plan = plan_prune(&snapshot, &analyze(&snapshot), &cli.revision, &options)?;
    let inspection = inspect(client, &plan).await?;
    show(&plan, Some(&inspection))?;
    if plan.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    match cli.mutation.dry_run {
        DryRun::Client => {
            eprintln!("dry run (client): nothing was sent");
            return Ok(ExitCode::SUCCESS);
        }
        DryRun::None => confirm(
            &format!(
                "Delete {} object(s) and {} Helm release(s) of revision {}?",
                inspection.to_delete(),
                plan.releases().count(),
                plan.revision
            ),
            cli.mutation.yes,
        )?,
        DryRun::Server => {}
    }

    let settings = PruneSettings {
        dry_run: cli.mutation.dry_run,
        timeout: cli.timeout,
        connection: cli.connection.clone(),
    };
    let report = execute(client, &plan, &inspection, &settings, &|line| {
        eprintln!("{line}")
    })
    .await;
    print!("{}", render_report(&report));
    if let Some(err) = report.failure {
        return Err(RevError::Failed(format!(
            "stopped: {err}\n  re-run `kubectl rev-prune {}` once that is fixed: it carries on from what is left",
            plan.revision
        )));
    }
    if cli.mutation.dry_run == DryRun::Server {
        eprintln!("dry run (server): the API server accepted every request; nothing was stored");
        return Ok(ExitCode::SUCCESS);
    }
    verify(client, &cli.revision, &options).await
}

fn show(plan: &PrunePlan, inspection: Option<&Inspection>) -> Result<(), RevError> {
    print!("{}", render_plan(plan, inspection));
    print!("{}", render_blockers(plan));
    if plan.refused() {
        return Err(RevError::Refused {
            reason: format!(
                "{} blocker(s) listed above; nothing was deleted",
                plan.blockers.len()
            ),
        });
    }
    Ok(())
}

async fn read_mesh(client: &kube::Client) -> Result<Snapshot, RevError> {
    let counter = ReadCounter::default();
    let mut snapshot = read_snapshot(client, &NamespaceScope::All, &counter).await?;
    read_revision_objects(client, &mut snapshot, &counter).await?;
    Ok(snapshot)
}

/// Reads the cluster again: nothing of the revision may remain but what Helm's `keep` or the
/// ownership checks left on purpose; then shows what the mesh runs now.
async fn verify(
    client: &kube::Client,
    revision: &RevisionName,
    options: &PruneOptions,
) -> Result<ExitCode, RevError> {
    let snapshot = read_mesh(client).await?;
    let analysis = analyze(&snapshot);
    print!("{}", render_remains(&analysis, &snapshot));
    let left = match plan_prune(&snapshot, &analysis, revision, options) {
        Err(RevError::UnknownRevision { .. }) => Vec::new(),
        Err(other) => return Err(other),
        Ok(plan) => {
            let inspection = inspect(client, &plan).await?;
            let mut left: Vec<String> = inspection
                .steps
                .iter()
                .flatten()
                .filter(|o| o.state == LiveState::Present)
                .map(|o| o.key.display())
                .collect();
            left.extend(
                plan.steps
                    .iter()
                    .zip(&inspection.records)
                    .filter(|(_, records)| !records.is_empty())
                    .map(|(step, _)| match step {
                        rev_shared::plan::prune::PruneStep::HelmRelease(r) => {
                            format!("Helm release {}/{}", r.namespace, r.name)
                        }
                        rev_shared::plan::prune::PruneStep::Objects(_) => String::new(),
                    }),
            );
            left
        }
    };
    if left.is_empty() {
        println!("\nRevision {revision} is gone.");
        Ok(ExitCode::SUCCESS)
    } else {
        Err(RevError::Failed(format!(
            "after the prune these objects of {revision} still exist: {}\n  hint: re-run `kubectl rev-prune {revision}`; if they come back, something re-creates them",
            left.join(", ")
        )))
    }
}
