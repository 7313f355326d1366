//! `kubectl rev-restart`: drifted workloads restarted one at a time, each verified.

use crate::analysis::ControlPlane;
use crate::client::Cluster;
use crate::driver::{End, ExecContext, Execution, Mutation, drive};
use crate::error::{Refusal, RevError};
use crate::exec::lock::{LockRequest, LockScope};
use crate::exec::restart::{RestartOptions, RestartResult, WorkloadOutcome, run_plan};
use crate::flags::{ConnectionFlags, DryRun, DumpFlags, MutationFlags};
use crate::output::io::Io;
use crate::output::progress::RestartBar;
use crate::output::restart as words;
use crate::output::restart::{ProbeSummary, RestartReport};
use crate::plan::restart::{RestartPlan, RestartRequest};
use crate::probe::report::render_comparison;
use crate::probe::{ProbeFlags, ProbeIntent, ProbeSession, Report, WindowFigures};
use crate::view::{ClusterView, Extras, Scope, connected};

pub struct Restart<'a> {
    /// `None` when planned from a dump: then it only plans.
    pub cluster: Option<&'a Cluster>,
    pub plan: RestartPlan,
    pub control_plane: ControlPlane,
    pub options: RestartOptions,
    /// `--probe`: traffic measured for the whole run, each rollout blamed for its own window.
    pub probe: Option<RestartProbe>,
}

/// The probe of a `--probe` run: started after the confirmation, before the first workload
/// (never under a dry run), finished after the last.
pub struct RestartProbe {
    pub flags: ProbeFlags,
    /// What the plan says will be probed (checked before anything is asked or sent).
    pub intent: ProbeIntent,
    /// For `--port-forward` (-n, else the context's namespace).
    pub namespace: String,
    /// `--compare`: the saved report the whole run is compared with.
    pub baseline: Option<Report>,
}

impl RestartProbe {
    /// Checked before anything is read: a wrong probe flag changes nothing.
    pub fn from_flags(flags: &ProbeFlags, namespace: String) -> Result<RestartProbe, RevError> {
        Ok(RestartProbe {
            intent: flags.restart_intent(&namespace)?,
            baseline: flags
                .compare
                .as_deref()
                .map(crate::probe::read_baseline)
                .transpose()?,
            flags: flags.clone(),
            namespace,
        })
    }
}

/// A whole `rev-restart` run as the command line asks it.
pub struct RestartRun {
    pub request: RestartRequest,
    pub options: RestartOptions,
    pub probe: Option<RestartProbe>,
    /// Unless `--no-admission-check`: a dry-run create of each planned workload's pod.
    pub admission_check: bool,
}

/// Reads the request's namespaces (the whole cluster with `-A`), plans, and drives the restart.
pub async fn restart(
    mut run: RestartRun,
    connection: &ConnectionFlags,
    level: u8,
    dumps: &DumpFlags,
    mutation: &mut MutationFlags,
    io: &mut Io,
) -> Result<(), RevError> {
    let scope = run
        .request
        .namespaces
        .clone()
        .map_or(Scope::All, Scope::Named);
    let view = ClusterView::for_command(
        connection,
        level,
        dumps,
        mutation,
        &scope,
        Extras::default(),
    )
    .await?;
    let plan = plan_with_admission(&view, &run.request, run.admission_check).await;
    // Reading a dump turns the run into a client dry run: the options follow.
    run.options.dry_run = mutation.dry_run;
    let command = Restart {
        cluster: view.cluster.as_ref(),
        plan,
        control_plane: view.analysis.control_plane.clone(),
        options: run.options,
        probe: run.probe,
    };
    drive(&command, mutation, io).await
}

/// The restart plan of `request`, and, on a live cluster unless `--no-admission-check`, what
/// the cluster's webhooks would give each planned workload's new pods.
async fn plan_with_admission(
    view: &ClusterView,
    request: &RestartRequest,
    admission_check: bool,
) -> RestartPlan {
    let mut plan = crate::plan::restart::plan_restart(&view.snapshot, &view.analysis, request);
    if let Some(cluster) = &view.cluster
        && admission_check
        && !plan.items.is_empty()
    {
        plan.admission = Some(admission_preflight(&cluster.client, &plan.items).await);
    }
    plan
}

impl Mutation for Restart<'_> {
    type Plan = RestartPlan;
    type Report = RestartReport;
    const API_VERSION: &'static str = words::API_VERSION;
    const PLAN_KIND: &'static str = "RestartPlan";
    const REPORT_KIND: &'static str = "RestartResult";

    fn plan(&self) -> &RestartPlan {
        &self.plan
    }

    fn render_plan(&self, no_headers: bool) -> String {
        let mut text = words::render_plan(&self.plan, no_headers);
        if let Some(probe) = &self.probe
            && !self.plan.items.is_empty()
        {
            text.push_str(&words::render_probe_intent(
                &probe.intent,
                self.options.continue_on_error,
            ));
        }
        text
    }

    fn refusal(&self) -> Option<Refusal> {
        // No workload is restarted while any would not reach its target, unless the user
        // asked to go on past failures.
        let refused = self.plan.refused_by_admission();
        (refused > 0 && !self.options.continue_on_error).then_some(Refusal::Blocked {
            blockers: refused,
            forceable: false,
        })
    }

    fn is_empty(&self) -> bool {
        self.plan.items.is_empty()
    }

    fn leaves_work(&self) -> bool {
        self.plan.leaves_work()
    }

    fn lock(&self) -> Option<LockRequest<'_>> {
        let mut namespaces: Vec<String> = self
            .plan
            .items
            .iter()
            .map(|i| i.namespace.clone())
            .collect();
        namespaces.sort();
        namespaces.dedup();
        Some(LockRequest {
            cluster: self.cluster?,
            scope: LockScope::Namespaces(namespaces),
            command: "rev-restart".into(),
        })
    }

    fn question(&self) -> String {
        words::question(&self.plan, self.options.max_parallel)
    }

    fn plan_names(&self) -> Vec<String> {
        words::plan_names(&self.plan)
    }

    async fn execute(&self, ctx: &ExecContext) -> Execution<RestartReport> {
        let options = RestartOptions {
            dry_run: ctx.dry_run,
            ..self.options.clone()
        };
        let failed_before_any = |e| Execution {
            report: self.nothing_done(),
            end: End::Failed(e),
        };
        let cluster = match connected(self.cluster) {
            Ok(cluster) => cluster,
            Err(e) => return failed_before_any(e),
        };
        // After the confirmation, before the first workload: the baseline traffic of the run.
        let session = match (&self.probe, ctx.dry_run) {
            (Some(probe), DryRun::None) => {
                match ProbeSession::start(&probe.flags, Some(cluster), &probe.namespace).await {
                    Ok(session) => Some(session),
                    Err(e) => return failed_before_any(e),
                }
            }
            _ => None,
        };
        let bar = RestartBar::new(self.plan.items.len());
        let stop = || ctx.stop_requested();
        let outcomes = run_plan(
            cluster,
            &self.plan.items,
            &self.control_plane,
            &options,
            &stop,
            &bar,
            session.as_ref().map(|s| &s.probe),
        )
        .await;
        bar.clear();
        let (probe, probe_error) = self.finish_probe(session).await;
        let end = self.end_of_run(ctx, &outcomes, probe.as_ref(), probe_error);
        Execution {
            report: RestartReport {
                workloads: outcomes,
                skipped: words::skipped_report(&self.plan.skipped),
                probe,
            },
            end,
        }
    }

    fn render_report(&self, report: &RestartReport, _: &ExecContext, no_headers: bool) -> String {
        let mut text = words::render_summary(report, no_headers);
        if let (Some(summary), Some(baseline)) = (
            &report.probe,
            self.probe.as_ref().and_then(|p| p.baseline.as_ref()),
        ) {
            text.push_str(&render_comparison(baseline, &summary.report));
        }
        text
    }

    fn report_names(&self, report: &RestartReport) -> Vec<String> {
        words::report_names(report)
    }

    fn nothing_done(&self) -> RestartReport {
        RestartReport {
            workloads: Vec::new(),
            skipped: words::skipped_report(&self.plan.skipped),
            probe: None,
        }
    }
}

/// Asks the cluster, before anything is restarted, what each planned workload's new pods would
/// get: a `dryRun=All` create of its template runs the real webhooks and injector.
pub async fn admission_preflight(
    client: &kube::Client,
    items: &[crate::plan::restart::RestartItem],
) -> crate::analysis::admission::AdmissionPreflight {
    let workloads: Vec<_> = items
        .iter()
        .map(|i| {
            (
                crate::snapshot::admission::TemplateRef {
                    kind: i.kind,
                    namespace: i.namespace.clone(),
                    name: i.name.clone(),
                },
                i.target_revision.clone(),
            )
        })
        .collect();
    crate::snapshot::admission::admission_preflight(
        client,
        &workloads,
        crate::snapshot::admission::CONCURRENCY,
    )
    .await
}

impl Restart<'_> {
    /// The probe's whole-run figures, or why it could not report.
    async fn finish_probe(
        &self,
        session: Option<ProbeSession>,
    ) -> (Option<ProbeSummary>, Option<RevError>) {
        let (Some(session), Some(probe)) = (session, &self.probe) else {
            return (None, None);
        };
        let target = session.target.description.clone();
        match session.finish(&probe.flags).await {
            Ok(run) => {
                let summary = ProbeSummary {
                    target,
                    figures: WindowFigures::from(&run.report),
                    report: run.report,
                };
                (Some(summary), None)
            }
            Err(e) => (None, Some(e)),
        }
    }

    /// How the run ends: Ctrl-C, then a gate breached during a rollout (blaming it), then failed
    /// workloads, then a probe that could not report.
    fn end_of_run(
        &self,
        ctx: &ExecContext,
        outcomes: &[WorkloadOutcome],
        probe: Option<&ProbeSummary>,
        probe_error: Option<RevError>,
    ) -> End {
        let failed = outcomes
            .iter()
            .filter(|o| {
                !matches!(
                    o.result,
                    RestartResult::Restarted | RestartResult::ServerDryRun | RestartResult::NotRun
                )
            })
            .count();
        let blamed: Vec<_> = outcomes
            .iter()
            .filter(|o| !o.gate_breaches.is_empty())
            .collect();
        if ctx.stop_requested() {
            End::Interrupted
        } else if !blamed.is_empty() {
            End::Failed(RevError::RolloutGatesBreached {
                target: probe.map(|p| p.target.clone()).unwrap_or_default(),
                workloads: blamed
                    .iter()
                    .map(|o| format!("{}/{} in {}", o.kind.resource(), o.name, o.namespace))
                    .collect(),
                breaches: blamed
                    .iter()
                    .flat_map(|o| o.gate_breaches.iter().map(ToString::to_string))
                    .collect(),
                undo: blamed.iter().filter_map(|o| o.undo.clone()).collect(),
                went_on: self.options.continue_on_error,
            })
        } else if failed > 0 {
            End::Failed(RevError::WorkloadsFailed { failed })
        } else if let Some(e) = probe_error {
            End::Failed(e)
        } else {
            End::Done
        }
    }
}
