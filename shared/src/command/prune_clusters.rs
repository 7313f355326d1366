//! `kubectl rev-prune OLD --context A --context B…` (or `--all-contexts`): one prune per
//! cluster, planned together (a remote's use of OLD blocks the primary's prune), carried out
//! remotes first, each cluster as `rev-prune OLD --context C` would, and each under its own run
//! lock.

use std::time::Duration;

use serde::Serialize;

use crate::driver::{End, ExecContext, Execution, Mutation, drive};
use crate::error::{Refusal, RevError};
use crate::exec::lock::{self, RunLock};
use crate::exec::prune::PruneReport;
use crate::exec::prune::{PruneSettings, inspect};
use crate::flags::DryRun;
use crate::flags::{ConnectionFlags, DumpFlags, MutationFlags};
use crate::output::io::Io;
use crate::output::prune as words;
use crate::output::prune_clusters as cluster_words;
use crate::plan::prune::PruneOptions;
use crate::plan::prune_clusters::ClustersPrunePlan;
use crate::plan::prune_clusters::{ClusterRead, plan_prune_clusters};
use crate::revision::RevisionName;
use crate::view::{ClusterView, Scope};

use super::prune::Prune;

pub struct PruneClusters<'a> {
    pub plan: ClustersPrunePlan,
    /// One single-cluster prune per part of the plan, in the same order.
    pub prunes: Vec<Prune<'a>>,
    /// `--break-lock`: each cluster's lock is taken when its turn comes.
    pub break_lock: bool,
}

/// What was done on one cluster.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPruneReport {
    pub cluster: String,
    #[serde(flatten)]
    pub report: PruneReport,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClustersPruneReport {
    pub revision: String,
    pub clusters: Vec<ClusterPruneReport>,
}

impl PruneClusters<'_> {
    fn parts(
        &self,
    ) -> impl Iterator<Item = (&crate::plan::prune_clusters::ClusterPrune, &Prune<'_>)> {
        self.plan.clusters.iter().zip(&self.prunes)
    }

    /// Takes the cluster lock of the cluster about to be pruned (the driver locks one cluster;
    /// here each has its own Lease).
    async fn lock(&self, prune: &Prune<'_>) -> Result<Option<RunLock>, RevError> {
        let Some(request) = prune.lock() else {
            return Ok(None);
        };
        // Lock messages (who holds it, a missing RBAC) go to stderr, as the driver's do.
        let mut io = Io::capture(Box::new(std::io::sink()), Box::new(std::io::stderr()));
        lock::acquire(request, self.break_lock, &mut io).await
    }
}

impl PruneClusters<'_> {
    /// The same prune, over the same contexts.
    fn resume(&self) -> String {
        let contexts: Vec<String> = self
            .plan
            .clusters
            .iter()
            .map(|c| format!("--context {}", c.cluster))
            .collect();
        format!(
            "kubectl rev-prune {} {}",
            self.plan.revision,
            contexts.join(" ")
        )
    }
}

impl Mutation for PruneClusters<'_> {
    type Plan = ClustersPrunePlan;
    type Report = ClustersPruneReport;
    const API_VERSION: &'static str = words::API_VERSION;
    const PLAN_KIND: &'static str = "ClustersPrunePlan";
    const REPORT_KIND: &'static str = "ClustersPruneResult";

    fn plan(&self) -> &ClustersPrunePlan {
        &self.plan
    }

    fn render_plan(&self, no_headers: bool) -> String {
        let mut text = String::new();
        for (part, prune) in self.parts() {
            text.push_str(&cluster_words::cluster_heading(part));
            text.push_str(&prune.render_plan(no_headers));
            text.push('\n');
        }
        text.push_str(&cluster_words::render_cross_blockers(&self.plan));
        text
    }

    fn refusal(&self) -> Option<Refusal> {
        self.plan.refused().then(|| Refusal::Blocked {
            blockers: self.plan.blockers().count(),
            forceable: self.plan.blockers().all(|b| b.forceable),
        })
    }

    fn is_empty(&self) -> bool {
        self.plan.is_empty()
    }

    fn question(&self) -> String {
        let parts: Vec<String> = self
            .parts()
            .filter(|(part, _)| !part.plan.is_empty())
            .map(|(part, prune)| format!("on {}: {}", part.cluster, prune.question()))
            .collect();
        parts.join("\n")
    }

    fn plan_names(&self) -> Vec<String> {
        self.parts()
            .flat_map(|(part, prune)| {
                prune
                    .plan_names()
                    .into_iter()
                    .map(move |n| format!("{}: {n}", part.cluster))
            })
            .collect()
    }

    async fn execute(&self, ctx: &ExecContext) -> Execution<ClustersPruneReport> {
        let mut report = self.nothing_done();
        for (part, prune) in self.parts() {
            if part.plan.is_empty() {
                continue;
            }
            if ctx.stop_requested() {
                return Execution {
                    report,
                    end: End::Interrupted,
                };
            }
            let lock = match ctx.dry_run {
                DryRun::None => match self.lock(prune).await {
                    Ok(lock) => lock,
                    Err(e) => {
                        return Execution {
                            report,
                            end: End::Failed(e),
                        };
                    }
                },
                _ => None,
            };
            eprintln!("context {}:", part.cluster);
            let execution = prune.execute(ctx).await;
            if let Some(lock) = lock {
                lock.release().await;
            }
            report.clusters.push(ClusterPruneReport {
                cluster: part.cluster.clone(),
                report: execution.report,
            });
            let end = match execution.end {
                End::Done => continue,
                // A re-run must see every cluster again, not only the one that stopped.
                End::Failed(RevError::Stopped { cause, .. }) => End::Failed(RevError::Stopped {
                    resume: self.resume(),
                    cause,
                }),
                other => other,
            };
            return Execution { report, end };
        }
        Execution {
            report,
            end: End::Done,
        }
    }

    fn render_report(&self, report: &ClustersPruneReport, ctx: &ExecContext, no: bool) -> String {
        let mut text = String::new();
        for (cluster, prune) in report.clusters.iter().filter_map(|done| {
            self.parts()
                .find(|(part, _)| part.cluster == done.cluster)
                .map(|(_, prune)| (done, prune))
        }) {
            text.push_str(&format!("=== context {}\n", cluster.cluster));
            text.push_str(&prune.render_report(&cluster.report, ctx, no));
        }
        text
    }

    fn report_names(&self, report: &ClustersPruneReport) -> Vec<String> {
        report
            .clusters
            .iter()
            .flat_map(|c| {
                // Several clusters' objects: each line names its context first.
                c.report.deleted_keys.iter().map(move |k| {
                    let name = crate::output::object_name(&k.api_version, &k.kind, &k.name);
                    format!("{}: {name}", c.cluster)
                })
            })
            .collect()
    }

    fn nothing_done(&self) -> ClustersPruneReport {
        ClustersPruneReport {
            revision: self.plan.revision.clone(),
            clusters: Vec::new(),
        }
    }
}

/// What `kubectl rev-prune` was asked for several clusters, flags parsed.
pub struct ClustersRequest<'a> {
    pub revision: &'a RevisionName,
    pub options: PruneOptions,
    pub all_contexts: bool,
    pub timeout: Duration,
    /// `-v` level for the reads.
    pub level: u8,
}

/// Several clusters: read together, planned together (a remote still on OLD blocks the
/// primary's prune), pruned remotes first.
pub async fn prune_across_clusters(
    request: ClustersRequest<'_>,
    connection: &ConnectionFlags,
    dumps: &DumpFlags,
    mutation: &MutationFlags,
    io: &mut Io,
) -> Result<(), RevError> {
    let (views, _) = ClusterView::observe_for_reading(
        connection,
        request.all_contexts,
        dumps,
        request.level,
        &Scope::All,
        super::prune::extras(),
    )
    .await?;
    let options = request.options;
    let reads: Vec<ClusterRead<'_>> = views
        .iter()
        .map(|v| ClusterRead {
            name: &v.name,
            snapshot: &v.snapshot,
            analysis: &v.analysis,
        })
        .collect();
    let plan = plan_prune_clusters(&reads, request.revision, &options)?;
    let mut prunes = Vec::new();
    for part in &plan.clusters {
        let cluster = views
            .iter()
            .find(|v| v.name == part.cluster)
            .map(ClusterView::cluster)
            .transpose()?;
        let live = match cluster {
            Some(cluster) => Some((cluster, inspect(cluster, &part.plan).await?)),
            None => None,
        };
        prunes.push(Prune {
            plan: part.plan.clone(),
            live,
            options: options.clone(),
            settings: PruneSettings {
                dry_run: mutation.dry_run,
                timeout: request.timeout,
                // helm must reach this cluster: its context only.
                connection: ConnectionFlags {
                    contexts: vec![part.cluster.clone()],
                    ..connection.clone()
                },
            },
        });
    }
    let command = PruneClusters {
        plan,
        prunes,
        break_lock: mutation.break_lock,
    };
    drive(&command, mutation, io).await
}
