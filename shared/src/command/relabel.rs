//! `kubectl rev-relabel`: namespaces (and their undo), and revision tags.

use crate::client::Cluster;
use crate::driver::{End, ExecContext, Execution, Mutation};
use crate::error::Refusal;
use crate::exec::relabel::{apply, apply_tag};
use crate::exec::{patch_params, post_params};
use crate::output::relabel as words;
use crate::output::relabel::{RelabelReport, TagReport};
use crate::plan::relabel::{RelabelPlan, TagPlan};
use crate::view::connected;

/// Moves namespaces to a revision, or restores what a relabel recorded (`--undo`).
pub struct Relabel<'a> {
    /// `None` when planned from a dump: then it only plans.
    pub cluster: Option<&'a Cluster>,
    pub plan: RelabelPlan,
    pub force: bool,
    pub field_manager: String,
}

impl Mutation for Relabel<'_> {
    type Plan = RelabelPlan;
    type Report = RelabelReport;
    const API_VERSION: &'static str = words::API_VERSION;
    const PLAN_KIND: &'static str = "RelabelPlan";
    const REPORT_KIND: &'static str = "RelabelResult";

    fn plan(&self) -> &RelabelPlan {
        &self.plan
    }

    fn render_plan(&self, no_headers: bool) -> String {
        words::render_plan(&self.plan, no_headers)
    }

    fn refusal(&self) -> Option<Refusal> {
        self.plan
            .is_refused(self.force)
            .then_some(Refusal::Blocked {
                blockers: self.plan.blockers.len(),
                forceable: true,
            })
    }

    fn is_empty(&self) -> bool {
        self.plan.changes.is_empty()
    }

    fn question(&self) -> String {
        words::question(&self.plan)
    }

    fn plan_names(&self) -> Vec<String> {
        words::plan_names(&self.plan)
    }

    async fn execute(&self, ctx: &ExecContext) -> Execution<RelabelReport> {
        let params = patch_params(&self.field_manager, ctx.dry_run);
        let (changed, error) = match connected(self.cluster) {
            Ok(cluster) => {
                apply(cluster, &self.plan.changes, &params, || {
                    ctx.stop_requested()
                })
                .await
            }
            Err(e) => (Vec::new(), Some(e)),
        };
        let interrupted = changed.len() < self.plan.changes.len() && error.is_none();
        Execution {
            report: RelabelReport {
                target: self.plan.target.clone(),
                target_revision: self.plan.target_revision.clone(),
                changed,
                unchanged: self.plan.unchanged.clone(),
            },
            end: match error {
                Some(e) => End::Failed(e),
                None if interrupted => End::Interrupted,
                None => End::Done,
            },
        }
    }

    fn render_report(&self, report: &RelabelReport, ctx: &ExecContext, _: bool) -> String {
        words::render_report(report, ctx.dry_run)
    }

    fn report_names(&self, report: &RelabelReport) -> Vec<String> {
        words::report_names(report)
    }

    fn next_steps(&self, report: &RelabelReport) -> Vec<String> {
        words::relabel_next_steps(report)
    }

    fn nothing_done(&self) -> RelabelReport {
        RelabelReport {
            target: self.plan.target.clone(),
            target_revision: self.plan.target_revision.clone(),
            changed: Vec::new(),
            unchanged: self.plan.unchanged.clone(),
        }
    }
}

/// Repoints a revision tag (and, for `default`, the default validator).
pub struct RetargetTag<'a> {
    /// `None` when planned from a dump: then it only plans.
    pub cluster: Option<&'a Cluster>,
    pub plan: TagPlan,
    pub force: bool,
    pub field_manager: String,
}

impl Mutation for RetargetTag<'_> {
    type Plan = TagPlan;
    type Report = TagReport;
    const API_VERSION: &'static str = words::API_VERSION;
    const PLAN_KIND: &'static str = "TagPlan";
    const REPORT_KIND: &'static str = "TagResult";

    fn plan(&self) -> &TagPlan {
        &self.plan
    }

    fn render_plan(&self, _: bool) -> String {
        words::render_tag_plan(&self.plan)
    }

    fn refusal(&self) -> Option<Refusal> {
        self.plan
            .is_refused(self.force)
            .then_some(Refusal::Blocked {
                blockers: self.plan.blockers.len(),
                forceable: true,
            })
    }

    fn is_empty(&self) -> bool {
        self.plan.unchanged
    }

    fn question(&self) -> String {
        words::tag_question(&self.plan)
    }

    fn plan_names(&self) -> Vec<String> {
        words::tag_plan_names(&self.plan)
    }

    async fn execute(&self, ctx: &ExecContext) -> Execution<TagReport> {
        let params = post_params(&self.field_manager, ctx.dry_run);
        let result = match connected(self.cluster) {
            Ok(cluster) => apply_tag(cluster, &self.plan, &params).await,
            Err(e) => Err(e),
        };
        let (changed, end) = match result {
            Ok(changed) => (changed, End::Done),
            Err(e) => (Vec::new(), End::Failed(e)),
        };
        Execution {
            report: TagReport {
                tag: self.plan.tag.clone(),
                target_revision: self.plan.to_revision.clone(),
                changed,
            },
            end,
        }
    }

    fn render_report(&self, report: &TagReport, ctx: &ExecContext, _: bool) -> String {
        words::render_tag_report(report, ctx.dry_run)
    }

    fn report_names(&self, report: &TagReport) -> Vec<String> {
        report.changed.clone()
    }

    fn next_steps(&self, _: &TagReport) -> Vec<String> {
        words::tag_next_steps(&self.plan)
    }

    fn nothing_done(&self) -> TagReport {
        TagReport {
            tag: self.plan.tag.clone(),
            target_revision: self.plan.to_revision.clone(),
            changed: Vec::new(),
        }
    }
}
