//! `kubectl rev-restart`: drifted workloads restarted one at a time, each verified.

use crate::analysis::ControlPlane;
use crate::client::Cluster;
use crate::driver::{End, ExecContext, Execution, Mutation};
use crate::error::{Refusal, RevError};
use crate::exec::restart::{RestartOptions, RestartResult, run_plan};
use crate::output::progress::RestartBar;
use crate::output::restart as words;
use crate::output::restart::RestartReport;
use crate::plan::restart::RestartPlan;
use crate::view::connected;

pub struct Restart<'a> {
    /// `None` when planned from a dump: then it only plans.
    pub cluster: Option<&'a Cluster>,
    pub plan: RestartPlan,
    pub control_plane: ControlPlane,
    pub options: RestartOptions,
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
        words::render_plan(&self.plan, no_headers)
    }

    fn refusal(&self) -> Option<Refusal> {
        None
    }

    fn is_empty(&self) -> bool {
        self.plan.items.is_empty()
    }

    fn leaves_work(&self) -> bool {
        self.plan.leaves_work()
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
        let cluster = match connected(self.cluster) {
            Ok(cluster) => cluster,
            Err(e) => {
                return Execution {
                    report: self.nothing_done(),
                    end: End::Failed(e),
                };
            }
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
        )
        .await;
        bar.clear();
        let failed = outcomes
            .iter()
            .filter(|o| {
                !matches!(
                    o.result,
                    RestartResult::Restarted | RestartResult::ServerDryRun | RestartResult::NotRun
                )
            })
            .count();
        let end = if ctx.stop_requested() {
            End::Interrupted
        } else if failed > 0 {
            End::Failed(RevError::WorkloadsFailed { failed })
        } else {
            End::Done
        };
        Execution {
            report: RestartReport {
                workloads: outcomes,
                skipped: words::skipped_report(&self.plan.skipped),
            },
            end,
        }
    }

    fn render_report(&self, report: &RestartReport, _: &ExecContext, no_headers: bool) -> String {
        words::render_summary(report, no_headers)
    }

    fn report_names(&self, report: &RestartReport) -> Vec<String> {
        words::report_names(report)
    }

    fn nothing_done(&self) -> RestartReport {
        RestartReport {
            workloads: Vec::new(),
            skipped: words::skipped_report(&self.plan.skipped),
        }
    }
}
