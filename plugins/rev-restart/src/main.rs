//! `kubectl rev-restart`: restart the workloads whose sidecars are on another revision than their
//! namespace selects, one at a time, wait for each rollout by kubectl's rules and verify the new
//! pods' sidecars (upgrade guide steps 3.7–3.8).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use rev_shared::RevError;
use rev_shared::analysis::analyze;
use rev_shared::client::connect;
use rev_shared::exec::restart::{RestartOptions, RestartResult, StopFlag, run_plan};
use rev_shared::flags::{
    ConnectionFlags, DryRun, MutationFlags, OutputFlags, OutputFormat, VerbosityFlags,
    parse_kubectl_duration,
};
use rev_shared::output::progress::RestartBar;
use rev_shared::output::prompt::confirm;
use rev_shared::output::restart::{API_VERSION, RestartReport, render_plan, render_summary};
use rev_shared::output::{to_json, to_yaml};
use rev_shared::plan::restart::{RestartRequest, plan_restart};
use rev_shared::selector::Selector;
use rev_shared::snapshot::WorkloadKind;
use rev_shared::snapshot::live::{NamespaceScope, ReadCounter, read_snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnDelete {
    /// Report OnDelete StatefulSets, do not touch them
    Skip,
    /// Delete their pods one by one, waiting for each injected replacement
    DeletePods,
}

/// Restart drifted workloads one at a time and verify their new sidecars.
#[derive(Parser, Debug)]
#[command(
    name = "kubectl rev-restart",
    bin_name = "kubectl rev-restart",
    version
)]
#[command(
    after_help = "Examples:\n  kubectl rev-restart -n bookinfo --dry-run=client\n  kubectl rev-restart bookinfo reviews --yes\n  kubectl rev-restart -A --kind deployment -o json --yes\n\nCtrl-C once: finish the current workload, print the summary, exit 130; twice: stop now.\nExit codes: 0 done or nothing to do, 1 a workload failed or refused, 2 usage, 130 interrupted."
)]
struct Cli {
    /// Namespaces to restart in (default: -n, else the context's namespace)
    #[arg(value_name = "NAMESPACE")]
    namespaces: Vec<String>,

    /// Every namespace
    #[arg(short = 'A', long)]
    all_namespaces: bool,

    /// Every injected workload, not only the drifted ones
    #[arg(long)]
    all: bool,

    /// Only these kinds (deployment, statefulset, daemonset; repeatable or comma-separated)
    #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
    kind: Vec<WorkloadKind>,

    /// Only workloads whose labels match
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,

    /// How many workloads may roll at once
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    max_parallel: u16,

    /// How long each workload's rollout may take
    #[arg(long, default_value = "5m", value_parser = parse_kubectl_duration)]
    timeout: Duration,

    /// Wait this long between workloads
    #[arg(long, value_parser = parse_kubectl_duration)]
    pause: Option<Duration>,

    /// What to do with OnDelete StatefulSets
    #[arg(long, value_enum, default_value = "skip")]
    ondelete: OnDelete,

    /// Go on with the next workload after a failure
    #[arg(long)]
    continue_on_error: bool,

    /// Field manager recorded for the restart
    #[arg(long, default_value = "kubectl-rev-restart")]
    field_manager: String,

    #[command(flatten)]
    mutation: MutationFlags,
    #[command(flatten)]
    output: OutputFlags,
    #[command(flatten)]
    connection: ConnectionFlags,
    #[command(flatten)]
    verbosity: VerbosityFlags,
}

fn parse_kind(input: &str) -> Result<WorkloadKind, String> {
    WorkloadKind::parse(input)
        .ok_or_else(|| format!("{input:?}: expected deployment, statefulset or daemonset"))
}

fn main() -> ExitCode {
    rev_shared::cli::run(run(rev_shared::meta::parse::<Cli>()))
}

async fn run(cli: Cli) -> Result<ExitCode, RevError> {
    let machine = matches!(cli.output.format(), OutputFormat::Json | OutputFormat::Yaml);
    let selector = cli.selector.as_deref().map(Selector::parse).transpose()?;
    let conn = connect(&cli.connection, cli.verbosity.level).await?;
    let namespaces = if cli.all_namespaces {
        None
    } else if !cli.namespaces.is_empty() {
        Some(cli.namespaces.clone())
    } else {
        Some(vec![conn.namespace.clone()])
    };
    let scope = namespaces
        .clone()
        .map_or(NamespaceScope::All, NamespaceScope::Only);
    let snapshot = read_snapshot(&conn.client, &scope, &ReadCounter::default())
        .await
        .map_err(|e| e.with_server(&conn.server))?;
    let analysis = analyze(&snapshot);
    let request = RestartRequest {
        namespaces,
        all: cli.all,
        kinds: cli.kind.clone(),
        selector,
        delete_ondelete_pods: cli.ondelete == OnDelete::DeletePods,
    };
    let plan = plan_restart(&snapshot, &analysis, &request);
    let plan_text = render_plan(&plan);
    if machine {
        eprint!("{plan_text}");
    } else {
        print!("{plan_text}");
    }
    if plan.items.is_empty() {
        return report(&cli, &[], machine).map(|_| ExitCode::SUCCESS);
    }
    if cli.mutation.dry_run == DryRun::Client {
        eprintln!("dry run (client): nothing was sent");
        return Ok(ExitCode::SUCCESS);
    }
    if cli.mutation.dry_run == DryRun::None {
        confirm(
            &format!(
                "Restart {} workload(s), {} at a time?",
                plan.items.len(),
                cli.max_parallel
            ),
            cli.mutation.yes,
        )?;
    }

    let stop = StopFlag::default();
    let ctrl_c = stop.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if ctrl_c.request() >= 2 {
                eprintln!(
                    "\ninterrupted again: stopping now (the workload being restarted keeps rolling by itself)"
                );
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupt: finishing the current workload, then stopping (Ctrl-C again to stop now)"
            );
        }
    });
    let options = RestartOptions {
        field_manager: cli.field_manager.clone(),
        dry_run: cli.mutation.dry_run,
        timeout: cli.timeout,
        pause: cli.pause,
    };
    let bar = RestartBar::new(plan.items.len());
    let outcomes = run_plan(
        &conn.client,
        &plan.items,
        &analysis.control_plane,
        &options,
        usize::from(cli.max_parallel),
        cli.continue_on_error,
        &stop,
        &bar,
    )
    .await;
    bar.clear();
    report(&cli, &outcomes, machine)?;

    let failed = outcomes
        .iter()
        .filter(|o| {
            !matches!(
                o.result,
                RestartResult::Restarted | RestartResult::ServerDryRun | RestartResult::NotRun
            )
        })
        .count();
    if stop.requested() {
        return Err(RevError::Interrupted);
    }
    if failed > 0 {
        return Err(RevError::Failed(format!(
            "{failed} workload(s) failed (see above); re-run to resume: migrated workloads are no longer drifted"
        )));
    }
    Ok(ExitCode::SUCCESS)
}

fn report(
    cli: &Cli,
    outcomes: &[rev_shared::exec::restart::WorkloadOutcome],
    machine: bool,
) -> Result<(), RevError> {
    let dry_run = cli.mutation.dry_run.as_str();
    let doc = RestartReport {
        api_version: API_VERSION,
        kind: "RestartResult",
        dry_run,
        workloads: outcomes.to_vec(),
    };
    match cli.output.format() {
        OutputFormat::Json => print!("{}", to_json(&doc)?),
        OutputFormat::Yaml => print!("{}", to_yaml(&doc)?),
        _ if !machine && !outcomes.is_empty() => print!("{}", render_summary(outcomes)),
        _ => {}
    }
    Ok(())
}
