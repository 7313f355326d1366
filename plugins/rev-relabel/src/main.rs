//! `kubectl rev-relabel`: move namespaces to a new Istio revision (upgrade guide step 3.6), one
//! guarded patch per namespace, after preflight checks, a printed plan and confirmation.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use rev_shared::RevError;
use rev_shared::analysis::analyze;
use rev_shared::client::connect;
use rev_shared::exec::{patch_params, post_params, relabel};
use rev_shared::flags::{
    ConnectionFlags, DryRun, MutationFlags, OutputFlags, OutputFormat, ScopeFlags, VerbosityFlags,
};
use rev_shared::output::prompt::confirm;
use rev_shared::output::relabel::{
    API_VERSION, RelabelReport, render_names, render_plan, render_tag_plan,
};
use rev_shared::output::{to_json, to_yaml};
use rev_shared::plan::relabel::{
    BlockerKind, PREVIOUS_LABELS, PREVIOUS_REVISION, Targets, plan_relabel, plan_tag,
};
use rev_shared::revision::RevisionName;
use rev_shared::selector::Selector;
use rev_shared::snapshot::live::{NamespaceScope, ReadCounter, read_snapshot};

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
    #[arg(long, value_name = "OLD", conflicts_with = "selector")]
    from: Option<String>,

    /// Restore the labels a previous relabel replaced (recorded on each namespace)
    #[arg(long, conflicts_with_all = ["from", "force"])]
    undo: bool,

    /// Proceed despite failed preflight checks
    #[arg(long)]
    force: bool,

    /// Repoint this revision tag to REVISION instead of relabelling namespaces (like
    /// `istioctl tag set TAG --revision REVISION --overwrite`); `default` also moves
    /// istiod-default-validator
    #[arg(long, value_name = "TAG", conflicts_with_all = ["from", "selector"])]
    tag: Option<String>,

    /// Field manager recorded for the change
    #[arg(long, default_value = "kubectl-rev-relabel")]
    field_manager: String,

    #[command(flatten)]
    scope: ScopeFlags,
    #[command(flatten)]
    mutation: MutationFlags,
    #[command(flatten)]
    output: OutputFlags,
    #[command(flatten)]
    connection: ConnectionFlags,
    #[command(flatten)]
    verbosity: VerbosityFlags,
}

fn main() -> ExitCode {
    rev_shared::cli::run(run(rev_shared::meta::parse::<Cli>()))
}

/// Human output goes to stdout; with -o json|yaml|name the document owns stdout and the plan
/// goes to stderr.
fn say(machine: bool, text: &str) {
    if machine {
        eprint!("{text}");
    } else {
        print!("{text}");
        let _ = std::io::stdout().flush();
    }
}

async fn run(cli: Cli) -> Result<ExitCode, RevError> {
    let machine = matches!(
        cli.output.format(),
        OutputFormat::Json | OutputFormat::Yaml | OutputFormat::Name
    );
    if let Some(tag) = &cli.tag {
        return run_tag(&cli, tag, machine).await;
    }
    let (targets, revision) = parse_targets(&cli)?;
    let conn = connect(&cli.connection, cli.verbosity.level).await?;
    let scope = match &targets {
        Targets::Names(names) => NamespaceScope::Only(names.clone()),
        _ => NamespaceScope::All,
    };
    let snapshot = read_snapshot(&conn.client, &scope, &ReadCounter::default())
        .await
        .map_err(|e| e.with_server(&conn.server))?;
    let analysis = analyze(&snapshot);
    let params = patch_params(&cli.field_manager, cli.mutation.dry_run);

    if cli.undo {
        let Targets::Names(names) = &targets else {
            return Err(RevError::Usage(
                "--undo takes the namespaces to restore".into(),
            ));
        };
        let namespaces: Vec<_> = names
            .iter()
            .filter_map(|n| snapshot.namespace(n))
            .cloned()
            .collect();
        let (recorded, missing): (Vec<_>, Vec<_>) = namespaces
            .into_iter()
            .partition(|n| n.annotations.contains_key(PREVIOUS_LABELS));
        for n in &missing {
            say(
                machine,
                &format!(
                    "namespace/{} has no relabel record ({PREVIOUS_LABELS}): unchanged\n",
                    n.name
                ),
            );
        }
        if recorded.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        say(
            machine,
            &format!(
                "Plan: restore the labels recorded on {}\n",
                recorded
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        if cli.mutation.dry_run == DryRun::Client {
            say(machine, "dry run (client): nothing was sent\n");
            return Ok(ExitCode::SUCCESS);
        }
        if cli.mutation.dry_run == DryRun::None {
            confirm("Restore these labels?", cli.mutation.yes)?;
        }
        let (done, err) =
            relabel::undo(&conn.client, &recorded, &params, cli.mutation.dry_run).await;
        return finish(&cli, "", None, &done, &[], err);
    }

    let revision =
        revision.ok_or_else(|| RevError::Usage("the last argument must be the revision".into()))?;
    let plan = plan_relabel(&snapshot, &analysis, &targets, &revision)
        .map_err(|names| RevError::UnknownNamespaces { names })?;
    say(machine, &render_plan(&plan));
    if cli.mutation.dry_run == DryRun::Client
        && !plan.is_refused(cli.force)
        && !plan.changes.is_empty()
    {
        say(machine, "dry run (client): nothing was sent\n");
    }
    let yes = cli.mutation.yes;
    let run = relabel::execute(
        &conn.client,
        &plan,
        cli.force,
        &cli.field_manager,
        cli.mutation.dry_run,
        |question| confirm(question, yes),
    )
    .await?;
    finish(
        &cli,
        &plan.target,
        plan.target_revision.as_deref(),
        &run.changed,
        &plan.unchanged,
        run.error,
    )
}

fn finish(
    cli: &Cli,
    target: &str,
    target_revision: Option<&str>,
    done: &[relabel::ChangeOutcome],
    unchanged: &[String],
    err: Option<RevError>,
) -> Result<ExitCode, RevError> {
    let dry_run = cli.mutation.dry_run.as_str();
    match cli.output.format() {
        OutputFormat::Json | OutputFormat::Yaml => {
            let report = RelabelReport {
                api_version: API_VERSION,
                kind: "RelabelResult",
                dry_run,
                target,
                target_revision,
                changed: done.to_vec(),
                unchanged,
            };
            let text = if cli.output.format() == OutputFormat::Json {
                to_json(&report)?
            } else {
                to_yaml(&report)?
            };
            print!("{text}");
        }
        OutputFormat::Name => print!("{}", render_names(done)),
        _ => {
            let suffix = match cli.mutation.dry_run {
                DryRun::None => "",
                DryRun::Client => " (dry run)",
                DryRun::Server => " (server dry run)",
            };
            for o in done {
                let verb = match o.result {
                    relabel::ChangeResult::Restored => "restored",
                    relabel::ChangeResult::Unchanged => "unchanged",
                    _ => "relabelled",
                };
                println!("namespace/{} {verb}{suffix}", o.namespace);
            }
            for n in unchanged {
                println!("namespace/{n} unchanged");
            }
        }
    }
    if let Some(err) = err {
        return Err(err);
    }
    let moved: Vec<&str> = done
        .iter()
        .filter(|o| matches!(o.result, relabel::ChangeResult::Relabelled))
        .map(|o| o.namespace.as_str())
        .collect();
    if !moved.is_empty() && cli.mutation.dry_run == DryRun::None {
        eprintln!(
            "next: restart the drifted workloads one at a time: kubectl rev-restart {}",
            moved.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--tag TAG REVISION` (or `--undo --tag TAG`): repoint a revision tag.
async fn run_tag(cli: &Cli, tag: &str, machine: bool) -> Result<ExitCode, RevError> {
    let tag = RevisionName::parse(tag)?;
    // Arguments are checked before connecting: a typo costs no round trip.
    let given = match (cli.undo, cli.args.as_slice()) {
        (true, []) => None,
        (false, [revision]) => Some(RevisionName::parse(revision)?),
        _ => {
            return Err(RevError::Usage(
                "--tag TAG takes exactly one REVISION (kubectl rev-relabel --tag prod 1-20), or none with --undo".into(),
            ));
        }
    };
    let conn = connect(&cli.connection, cli.verbosity.level).await?;
    let snapshot = read_snapshot(&conn.client, &NamespaceScope::All, &ReadCounter::default())
        .await
        .map_err(|e| e.with_server(&conn.server))?;
    let analysis = analyze(&snapshot);
    let revision = match given {
        Some(revision) => revision,
        None => {
            let recorded = snapshot
                .mutating_webhooks
                .iter()
                .find(|m| m.labels.get("istio.io/tag").map(String::as_str) == Some(tag.as_str()))
                .and_then(|m| m.annotations.get(PREVIOUS_REVISION).cloned());
            match recorded {
                Some(previous) if !previous.is_empty() => RevisionName::parse(&previous)?,
                _ => {
                    say(
                        machine,
                        &format!(
                            "tag {tag} has no relabel record ({PREVIOUS_REVISION}): unchanged\n"
                        ),
                    );
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    let mut plan = plan_tag(&snapshot, &analysis, tag.as_str(), &revision)
        .map_err(|reason| RevError::Refused { reason })?;
    if cli.undo {
        // Going back to where the tag pointed before is the point of undo, not a downgrade.
        plan.blockers
            .retain(|b| b.kind != BlockerKind::SkipTooLarge);
    }
    say(machine, &render_tag_plan(&plan));
    if !cli.force && !plan.blockers.is_empty() {
        return Err(RevError::Refused {
            reason: format!(
                "{} preflight check(s) failed (listed above); nothing was changed. --force overrides them.",
                plan.blockers.len()
            ),
        });
    }
    if plan.unchanged {
        say(
            machine,
            &format!(
                "tag {} already points at {}: unchanged\n",
                plan.tag, plan.to_revision
            ),
        );
        return Ok(ExitCode::SUCCESS);
    }
    if cli.mutation.dry_run == DryRun::Client {
        say(machine, "dry run (client): nothing was sent\n");
        return Ok(ExitCode::SUCCESS);
    }
    if cli.mutation.dry_run == DryRun::None {
        confirm(
            &format!("Repoint tag {} to {}?", plan.tag, plan.to_revision),
            cli.mutation.yes,
        )?;
    }
    let changed = relabel::apply_tag(
        &conn.client,
        &plan,
        &post_params(&cli.field_manager, cli.mutation.dry_run),
    )
    .await?;
    let suffix = if cli.mutation.dry_run == DryRun::Server {
        " (server dry run)"
    } else {
        ""
    };
    for object in &changed {
        println!("{object} retargeted to {}{suffix}", plan.to_revision);
    }
    if !plan.namespaces.is_empty() && cli.mutation.dry_run == DryRun::None {
        eprintln!(
            "next: restart the workloads of the namespaces that moved: kubectl rev-restart {}",
            plan.namespaces.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_targets(cli: &Cli) -> Result<(Targets, Option<RevisionName>), RevError> {
    let mut args = cli.args.clone();
    if cli.undo {
        if args.is_empty() {
            return Err(RevError::Usage(
                "--undo needs the namespaces to restore".into(),
            ));
        }
        return Ok((Targets::Names(args), None));
    }
    let revision = args.pop().ok_or_else(|| {
        RevError::Usage("missing REVISION: kubectl rev-relabel NAMESPACE... REVISION".into())
    })?;
    let revision = RevisionName::parse(&revision)?;
    let targets = match (&cli.from, &cli.scope.selector, args.is_empty()) {
        (Some(old), None, true) => Targets::From(RevisionName::parse(old)?.to_string()),
        (None, Some(sel), true) => Targets::Selector(Selector::parse(sel)?),
        (None, None, false) => Targets::Names(args),
        (None, None, true) => {
            return Err(RevError::Usage(
                "name the namespaces (kubectl rev-relabel bookinfo 1-20), or use --from OLD or -l SELECTOR".into(),
            ));
        }
        _ => {
            return Err(RevError::Usage(
                "give namespaces, --from or -l, not several".into(),
            ));
        }
    };
    if cli.scope.all_namespaces && !matches!(targets, Targets::From(_)) {
        return Err(RevError::Usage("-A goes with --from OLD".into()));
    }
    Ok((targets, Some(revision)))
}
