//! `kubectl rev-relabel`: namespaces (and their undo), and revision tags.

use crate::client::Cluster;
use crate::driver::{End, ExecContext, Execution, Mutation, drive};
use crate::error::{Refusal, RevError};
use crate::exec::lock::{LockRequest, LockScope};
use crate::exec::relabel::{apply, apply_tag};
use crate::exec::{patch_params, post_params};
use crate::flags::MutationFlags;
use crate::output::io::Io;
use crate::output::relabel as words;
use crate::output::relabel::{RelabelReport, TagReport};
use crate::plan::relabel::{
    RelabelPlan, TagPlan, Targets, plan_relabel, plan_tag, plan_undo, recorded_tag_revision,
};
use crate::revision::RevisionName;
use crate::selector::Selector;
use crate::view::{ClusterView, Scope, connected};

/// Moves namespaces to a revision, or restores what a relabel recorded (`--undo`).
pub struct Relabel<'a> {
    /// `None` when planned from a dump: then it only plans.
    pub cluster: Option<&'a Cluster>,
    pub plan: RelabelPlan,
    pub force: bool,
    pub field_manager: String,
}

impl Mutation for Relabel<'_> {
    fn lock(&self) -> Option<LockRequest<'_>> {
        Some(LockRequest {
            cluster: self.cluster?,
            scope: LockScope::Namespaces(
                self.plan
                    .changes
                    .iter()
                    .map(|c| c.namespace.clone())
                    .collect(),
            ),
            command: "rev-relabel".into(),
        })
    }

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
    fn lock(&self) -> Option<LockRequest<'_>> {
        Some(LockRequest {
            cluster: self.cluster?,
            scope: LockScope::Cluster,
            command: format!("rev-relabel --tag {}", self.plan.tag),
        })
    }

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

/// What `kubectl rev-relabel`'s command line asks for, checked before connecting: a typo costs no
/// round trip.
#[derive(Debug, Clone)]
pub enum RelabelRequest {
    /// Namespaces (by name, `--from OLD` or `-l`) to a revision.
    Move(Targets, RevisionName),
    /// `--undo NAMESPACE...`: the labels a previous relabel replaced.
    Undo(Vec<String>),
    /// `--tag TAG REVISION` (or `--undo --tag TAG`: its recorded previous revision).
    Tag(RevisionName, Option<RevisionName>),
}

/// The command line's words, as clap parsed them.
pub struct RelabelArgs<'a> {
    /// `NAMESPACE... REVISION` (with --undo: namespaces only; with --tag: the revision).
    pub args: &'a [String],
    pub undo: bool,
    pub tag: Option<&'a RevisionName>,
    pub from: Option<&'a RevisionName>,
    pub selector: Option<&'a str>,
    pub all_namespaces: bool,
}

impl RelabelRequest {
    pub fn from_args(a: &RelabelArgs) -> Result<RelabelRequest, RevError> {
        let usage = |message: &str| Err(RevError::Usage(message.into()));
        if let Some(tag) = a.tag {
            return match (a.undo, a.args) {
                (true, []) => Ok(RelabelRequest::Tag(tag.clone(), None)),
                (false, [revision]) => Ok(RelabelRequest::Tag(
                    tag.clone(),
                    Some(RevisionName::parse(revision)?),
                )),
                _ => usage(
                    "--tag TAG takes exactly one REVISION (kubectl rev-relabel --tag prod 1-20), or none with --undo",
                ),
            };
        }
        if a.undo {
            if a.args.is_empty() {
                return usage("--undo needs the namespaces to restore");
            }
            return Ok(RelabelRequest::Undo(a.args.to_vec()));
        }
        let Some((revision, namespaces)) = a.args.split_last() else {
            return usage("missing REVISION: kubectl rev-relabel NAMESPACE... REVISION");
        };
        let revision = RevisionName::parse(revision)?;
        let targets = match (a.from, a.selector, namespaces.is_empty()) {
            (Some(old), None, true) => Targets::From(old.to_string()),
            (None, Some(sel), true) => Targets::Selector(Selector::parse(sel)?),
            (None, None, false) => Targets::Names(namespaces.to_vec()),
            (None, None, true) => {
                return usage(
                    "name the namespaces (kubectl rev-relabel bookinfo 1-20), or use --from OLD or -l SELECTOR",
                );
            }
            _ => return usage("give namespaces, --from or -l, not several"),
        };
        if a.all_namespaces && !matches!(targets, Targets::From(_)) {
            return usage("-A goes with --from OLD");
        }
        Ok(RelabelRequest::Move(targets, revision))
    }

    /// The namespaces the command reads: those it names, else every one.
    pub fn scope(&self) -> Scope {
        match self {
            RelabelRequest::Move(Targets::Names(names), _) | RelabelRequest::Undo(names) => {
                Scope::Named(names.clone())
            }
            _ => Scope::All,
        }
    }
}

/// Plans `request` on `view` and drives it: a namespace relabel, an undo, or a tag retarget.
pub async fn relabel(
    view: &ClusterView,
    request: RelabelRequest,
    force: bool,
    field_manager: String,
    mutation: &MutationFlags,
    io: &mut Io,
) -> Result<(), RevError> {
    let (snapshot, analysis, cluster) = (&view.snapshot, &view.analysis, view.cluster.as_ref());
    let plan = match request {
        RelabelRequest::Tag(tag, revision) => {
            let revision = match revision {
                Some(revision) => revision,
                None => match recorded_tag_revision(snapshot, tag.as_str()) {
                    Some(previous) => RevisionName::parse(&previous)?,
                    None => {
                        io.err(&format!("tag {tag} has no relabel record: unchanged\n"));
                        return Ok(());
                    }
                },
            };
            let plan = plan_tag(snapshot, analysis, tag.as_str(), &revision)?;
            let command = RetargetTag {
                cluster,
                plan,
                force,
                field_manager,
            };
            return drive(&command, mutation, io).await;
        }
        RelabelRequest::Undo(names) => plan_undo(snapshot, analysis, &names)?,
        RelabelRequest::Move(targets, revision) => {
            plan_relabel(snapshot, analysis, &targets, &revision)?
        }
    };
    let command = Relabel {
        cluster,
        plan,
        force,
        field_manager,
    };
    drive(&command, mutation, io).await
}
