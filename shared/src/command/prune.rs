//! `kubectl rev-prune OLD`: the old revision's releases and objects, removed once nothing uses
//! it, then the cluster read again to prove it is gone.

use super::prune_clusters::{ClustersRequest, prune_across_clusters};
use crate::client::Cluster;
use crate::driver::{End, ExecContext, Execution, Mutation, drive};
use crate::error::{Refusal, RevError};
use crate::exec::lock::{LockRequest, LockScope};
use crate::exec::prune::{Inspection, LiveState, PruneReport, PruneSettings, execute, inspect};
use crate::flags::{ConnectionFlags, DumpFlags, MutationFlags};
use crate::output::io::Io;
use crate::output::prune as words;
use crate::output::prune_clusters::render_remotes_warning;
use crate::plan::prune::{PruneOptions, PrunePlan, PruneStep, plan_prune};
use crate::plan::prune_clusters::remotes_may_depend;
use crate::revision::RevisionName;
use crate::snapshot::live::ReadCounter;
use crate::view::{ClusterView, Extras, Scope, no_cluster};

pub struct Prune<'a> {
    pub plan: PrunePlan,
    /// The cluster, and each planned object as found there; `None` when planned from a dump:
    /// then it only plans.
    pub live: Option<(&'a Cluster, Inspection)>,
    pub options: PruneOptions,
    pub settings: PruneSettings,
}

impl Mutation for Prune<'_> {
    fn lock(&self) -> Option<LockRequest<'_>> {
        let (cluster, _) = self.live.as_ref()?;
        Some(LockRequest {
            cluster,
            scope: LockScope::Cluster,
            command: format!("rev-prune {}", self.plan.revision),
        })
    }

    type Plan = PrunePlan;
    type Report = PruneReport;
    const API_VERSION: &'static str = words::API_VERSION;
    const PLAN_KIND: &'static str = "PrunePlan";
    const REPORT_KIND: &'static str = "PruneResult";

    fn plan(&self) -> &PrunePlan {
        &self.plan
    }

    fn render_plan(&self, no_headers: bool) -> String {
        let mut text =
            words::render_plan(&self.plan, self.live.as_ref().map(|(_, i)| i), no_headers);
        text.push_str(&words::render_blockers(&self.plan));
        text
    }

    fn refusal(&self) -> Option<Refusal> {
        self.plan.refused().then(|| Refusal::Blocked {
            blockers: self.plan.blockers.len(),
            forceable: self.plan.blockers.iter().all(|b| b.forceable),
        })
    }

    fn is_empty(&self) -> bool {
        self.plan.is_empty()
    }

    fn question(&self) -> String {
        words::question(&self.plan, self.live.as_ref().map(|(_, i)| i))
    }

    fn plan_names(&self) -> Vec<String> {
        words::plan_names(&self.plan)
    }

    async fn execute(&self, ctx: &ExecContext) -> Execution<PruneReport> {
        let (cluster, inspection) = match &self.live {
            Some((cluster, inspection)) => (*cluster, inspection),
            None => {
                return Execution {
                    report: self.nothing_done(),
                    end: End::Failed(no_cluster()),
                };
            }
        };
        let settings = PruneSettings {
            dry_run: ctx.dry_run,
            ..self.settings.clone()
        };
        let progress = |line: &str| eprintln!("{line}");
        let stop = || ctx.stop_requested();
        let mut report =
            execute(cluster, &self.plan, inspection, &settings, &progress, &stop).await;
        let resume = format!("kubectl rev-prune {}", self.plan.revision);
        if let Some(RevError::Interrupted) = report.failure {
            report.failure = None;
            return Execution {
                report,
                end: End::Interrupted,
            };
        }
        if let Some(cause) = report.failure.take() {
            return Execution {
                report,
                end: End::Failed(RevError::Stopped {
                    resume,
                    cause: Box::new(cause),
                }),
            };
        }
        if settings.dry_run != crate::flags::DryRun::None {
            return Execution {
                report,
                end: End::Done,
            };
        }
        let end = match self.verify(cluster, &mut report).await {
            Ok(()) => End::Done,
            Err(e) => End::Failed(e),
        };
        Execution { report, end }
    }

    fn render_report(&self, report: &PruneReport, _: &ExecContext, _: bool) -> String {
        words::render_report(report)
    }

    fn report_names(&self, report: &PruneReport) -> Vec<String> {
        report
            .deleted_keys
            .iter()
            .map(|k| crate::output::object_name(&k.api_version, &k.kind, &k.name))
            .collect()
    }

    fn nothing_done(&self) -> PruneReport {
        PruneReport {
            revision: self.plan.revision.clone(),
            ..Default::default()
        }
    }
}

/// A whole `rev-prune` run: across clusters with `--all-contexts` or several `--context`,
/// else the one cluster (or dump) the flags name.
pub async fn prune(
    request: ClustersRequest<'_>,
    connection: &ConnectionFlags,
    dumps: &DumpFlags,
    mutation: &mut MutationFlags,
    io: &mut Io,
) -> Result<(), RevError> {
    if request.all_contexts || connection.contexts.len() > 1 {
        return prune_across_clusters(request, connection, dumps, mutation, io).await;
    }
    let view = ClusterView::for_command(
        connection,
        request.level,
        dumps,
        mutation,
        &Scope::All,
        extras(),
    )
    .await?;
    let plan = plan_prune(
        &view.snapshot,
        &view.analysis,
        request.revision,
        &request.options,
    )?;
    if let Some(warning) = remotes_may_depend(&view.snapshot, &view.analysis, request.revision) {
        io.err(&render_remotes_warning(&warning, &view.name));
    }
    let live = match &view.cluster {
        Some(cluster) => Some((cluster, inspect(cluster, &plan).await?)),
        None => None,
    };
    let command = Prune {
        plan,
        live,
        options: request.options,
        settings: PruneSettings {
            dry_run: mutation.dry_run,
            timeout: request.timeout,
            connection: connection.clone(),
        },
    };
    drive(&command, mutation, io).await
}

/// What a prune reads beyond the inventory: the objects a revision installed without Helm.
pub fn extras() -> Extras {
    Extras {
        revision_objects: true,
        ..Extras::default()
    }
}

impl Prune<'_> {
    /// Reads the cluster again: nothing of the revision may remain but what Helm's `keep` or
    /// the ownership checks left on purpose; records what the mesh runs now.
    async fn verify(&self, cluster: &Cluster, report: &mut PruneReport) -> Result<(), RevError> {
        let view = ClusterView::read(
            cluster.clone(),
            &Scope::All,
            extras(),
            &ReadCounter::default(),
        )
        .await?;
        report.mesh_after = Some(words::render_remains(&view.analysis, &view.snapshot));
        let revision = RevisionName::parse(&self.plan.revision)?;
        let left = match plan_prune(&view.snapshot, &view.analysis, &revision, &self.options) {
            Err(e) => return Err(e),
            Ok(plan) => {
                let inspection = inspect(cluster, &plan).await?;
                let mut left: Vec<String> = inspection
                    .steps
                    .iter()
                    .flatten()
                    .filter(|o| o.state == LiveState::Present)
                    .map(|o| o.key.display())
                    .collect();
                left.extend(plan.steps.iter().zip(&inspection.records).filter_map(
                    |(step, records)| match step {
                        PruneStep::HelmRelease(r) if !records.is_empty() => {
                            Some(format!("Helm release {}/{}", r.namespace, r.name))
                        }
                        _ => None,
                    },
                ));
                left
            }
        };
        report.gone = left.is_empty();
        if left.is_empty() {
            Ok(())
        } else {
            Err(RevError::PruneIncomplete {
                revision: self.plan.revision.clone(),
                left,
            })
        }
    }
}
