//! The one mutation driver every mutating command runs through (kubectl's Complete → Validate
//! → Run, once): plan → refuse? → nothing to do? → client dry-run → confirm → execute →
//! report. A command is a type implementing [`Mutation`]; it decides what its plan and report
//! say (wording lives in `output/`), the driver decides when each is shown and what is sent.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::error::{Refusal, RevError, exit};
use crate::flags::{DryRun, MutationFlags, ResultFormat};
use crate::output::io::Io;
use crate::output::{prompt, to_json, to_yaml};

/// What a mutating command is, to the driver.
pub trait Mutation {
    /// The typed plan: references and counts, no prose; `-o json|yaml` with `--dry-run=client`
    /// prints it as a versioned document.
    type Plan: Serialize;
    /// What was done.
    type Report: Serialize;

    /// The documents' `apiVersion` (e.g. `relabel.kubectl-rev.dev/v1alpha1`).
    const API_VERSION: &'static str;
    /// The plan document's `kind` (e.g. `RelabelPlan`).
    const PLAN_KIND: &'static str;
    /// The report document's `kind` (e.g. `RelabelResult`).
    const REPORT_KIND: &'static str;

    fn plan(&self) -> &Self::Plan;
    /// The plan as people read it, blockers and their fixes included.
    fn render_plan(&self, no_headers: bool) -> String;
    /// `Some` when the plan must not be carried out.
    fn refusal(&self) -> Option<Refusal>;
    /// Nothing to change.
    fn is_empty(&self) -> bool;
    /// The plan lists drift it may not remove by itself (the user must act): the run ends
    /// with [`exit::WORK_REMAINS`] even when everything else went well.
    fn leaves_work(&self) -> bool {
        false
    }
    /// The confirmation question (default answer: no).
    fn question(&self) -> String;
    /// `kind/name` of each object the plan changes (`-o name` under `--dry-run=client`).
    fn plan_names(&self) -> Vec<String>;
    /// Carries the plan out; `DryRun::Server` sends every change with `dryRun=All`. Ctrl-C
    /// asks to stop: `ctx.stop_requested()` is checked between steps.
    fn execute(&self, ctx: &ExecContext) -> impl Future<Output = Execution<Self::Report>>;
    /// The report as people read it.
    fn render_report(&self, report: &Self::Report, ctx: &ExecContext, no_headers: bool) -> String;
    /// `kind/name` of each object changed (`-o name`).
    fn report_names(&self, report: &Self::Report) -> Vec<String>;
    /// The report of a plan with nothing to do (scripts still get their document).
    fn nothing_done(&self) -> Self::Report;
    /// What to run next (printed on stderr after a successful, real run).
    fn next_steps(&self, _report: &Self::Report) -> Vec<String> {
        Vec::new()
    }
}

/// The outcome of carrying out a plan: the report of what was done, and how it ended.
pub struct Execution<R> {
    pub report: R,
    pub end: End,
}

pub enum End {
    Done,
    /// Ctrl-C: stopped between steps; a re-run carries on.
    Interrupted,
    /// Stopped by an error; the report says what was done before it.
    Failed(RevError),
}

/// What the executor may read while it runs.
pub struct ExecContext {
    pub dry_run: DryRun,
    stop: Arc<AtomicUsize>,
}

impl ExecContext {
    /// A context nobody interrupts (tests).
    pub fn new(dry_run: DryRun) -> Self {
        Self {
            dry_run,
            stop: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Ctrl-C was pressed: finish the step under way, start no other.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst) > 0
    }

    /// Asks the run to stop, as Ctrl-C does (tests).
    pub fn request_stop(&self) {
        self.stop.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a, T: Serialize> {
    api_version: &'static str,
    kind: &'static str,
    dry_run: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

fn document<T: Serialize>(
    format: ResultFormat,
    api_version: &'static str,
    kind: &'static str,
    dry_run: DryRun,
    body: &T,
) -> Result<String, RevError> {
    let doc = Document {
        api_version,
        kind,
        dry_run: dry_run.as_str(),
        body,
    };
    match format {
        ResultFormat::Yaml => to_yaml(&doc),
        _ => to_json(&doc),
    }
}

fn lines(names: Vec<String>) -> String {
    names.into_iter().map(|n| n + "\n").collect()
}

/// Runs a command through the one path every mutation takes.
pub async fn drive<M: Mutation>(
    command: &M,
    options: &MutationFlags,
    io: &mut Io,
) -> Result<(), RevError> {
    show_plan(command, options, io)?;
    if let Some(refusal) = command.refusal() {
        return Err(RevError::Refused(refusal));
    }
    if command.is_empty() {
        let ctx = ExecContext::new(options.dry_run);
        show_report(command, options, &ctx, &command.nothing_done(), io)?;
        // Nothing to do, but maybe something only the user can do.
        if command.leaves_work() && options.dry_run != DryRun::Client {
            return Err(RevError::WorkRemains);
        }
        return Ok(());
    }
    if options.dry_run == DryRun::Client {
        if options.output.format() == ResultFormat::Name {
            io.out(&lines(command.plan_names()))?;
        }
        io.err("dry run (client): nothing was sent\n");
        return Ok(());
    }
    // The plan must be on screen before the question.
    io.flush()?;
    if options.dry_run == DryRun::None && !options.yes {
        prompt::confirm(&command.question(), io)?;
    }
    let ctx = ExecContext::new(options.dry_run);
    let execution = execute_with_ctrl_c(command, &ctx).await;
    show_report(command, options, &ctx, &execution.report, io)?;
    match execution.end {
        End::Done if command.leaves_work() => Err(RevError::WorkRemains),
        End::Done => {
            if options.dry_run == DryRun::None {
                for step in command.next_steps(&execution.report) {
                    io.err(&format!("next: {step}\n"));
                }
            }
            Ok(())
        }
        End::Interrupted => Err(RevError::Interrupted),
        End::Failed(error) => Err(error),
    }
}

/// The plan: a document under client dry-run with `-o json|yaml`, else text (on stderr when
/// stdout carries a document or names).
fn show_plan<M: Mutation>(
    command: &M,
    options: &MutationFlags,
    io: &mut Io,
) -> Result<(), RevError> {
    let format = options.output.format();
    if options.dry_run == DryRun::Client
        && matches!(format, ResultFormat::Json | ResultFormat::Yaml)
    {
        let plan = document(
            format,
            M::API_VERSION,
            M::PLAN_KIND,
            options.dry_run,
            command.plan(),
        )?;
        return io.out(&plan);
    }
    io.say(
        format != ResultFormat::Table,
        &command.render_plan(options.output.no_headers),
    )
}

/// Carries the plan out; Ctrl-C asks it to stop between steps, twice stops at once.
async fn execute_with_ctrl_c<M: Mutation>(command: &M, ctx: &ExecContext) -> Execution<M::Report> {
    let stop = ctx.stop.clone();
    let ctrl_c = tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if stop.fetch_add(1, Ordering::SeqCst) >= 1 {
                eprintln!(
                    "\ninterrupted again: stopping now (what was started keeps going by itself; a re-run carries on)"
                );
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
            eprintln!(
                "\ninterrupt: finishing the step under way, then stopping (Ctrl-C again to stop now)"
            );
        }
    });
    let execution = command.execute(ctx).await;
    ctrl_c.abort();
    execution
}

fn show_report<M: Mutation>(
    command: &M,
    options: &MutationFlags,
    ctx: &ExecContext,
    report: &M::Report,
    io: &mut Io,
) -> Result<(), RevError> {
    match options.output.format() {
        format @ (ResultFormat::Json | ResultFormat::Yaml) => io.out(&document(
            format,
            M::API_VERSION,
            M::REPORT_KIND,
            options.dry_run,
            report,
        )?),
        ResultFormat::Name => io.out(&lines(command.report_names(report))),
        ResultFormat::Table => {
            io.out(&command.render_report(report, ctx, options.output.no_headers))
        }
    }
}
