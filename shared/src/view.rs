//! One view of a cluster: connect → read → analyse, as one call. Every plugin starts here, so
//! connection errors, read warnings and the namespaces in scope mean the same in all of them.

use std::path::PathBuf;

use crate::analysis::{Analysis, analyze};
use crate::client::{Cluster, connect, connect_all};
use crate::error::RevError;
use crate::flags::{ConnectionFlags, DryRun, DumpFlags, MutationFlags};
use crate::selector::Selector;
use crate::snapshot::Snapshot;
use crate::snapshot::admission::check_injection;
use crate::snapshot::dump::read_dumps;
use crate::snapshot::live::{
    NamespaceScope, ReadCounter, namespaces_matching, read_revision_objects, read_snapshot,
};

/// Which namespaces a command looks at. Cluster-scoped Istio objects (webhooks, istiod, tags,
/// Helm releases) are always read whole: revisions are cluster-wide.
#[derive(Debug, Clone, Default)]
pub enum Scope {
    /// Every namespace.
    #[default]
    All,
    /// These namespaces (each must exist).
    Named(Vec<String>),
    /// The namespaces whose labels match (`-l`).
    Selected(Selector),
}

/// What to read besides what the analysis always needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    /// Objects a revision installed without Helm may have left (`rev-prune`).
    pub revision_objects: bool,
    /// Ask the admission chain about each injected or drifted workload (`--check-injection`).
    pub check_injection: bool,
}

/// A cluster as read and analysed; `cluster` is `None` for a dump.
pub struct ClusterView {
    pub cluster: Option<Cluster>,
    /// The context name, or the dump files.
    pub name: String,
    pub snapshot: Snapshot,
    pub analysis: Analysis,
    /// The namespaces in scope (`None`: all), after `-n`/`-l`.
    pub namespaces: Option<Vec<String>>,
}

impl ClusterView {
    /// What a mutating command plans from: the dumps when given (then it only plans: client
    /// dry-run; a server dry-run needs a server), else the cluster the flags name.
    pub async fn for_command(
        connection: &ConnectionFlags,
        verbosity: u8,
        dumps: &DumpFlags,
        mutation: &mut MutationFlags,
        scope: &Scope,
        extras: Extras,
    ) -> Result<Self, RevError> {
        if dumps.from_file.is_empty() {
            let counter = ReadCounter::default();
            return Self::observe(connection, verbosity, scope, extras, &counter).await;
        }
        if mutation.dry_run == DryRun::Server {
            return Err(RevError::Usage(
                "--from-file only plans (a dump has no API server to dry-run against): use --dry-run=client or drop --from-file".into(),
            ));
        }
        mutation.dry_run = DryRun::Client;
        Self::from_dumps(&dumps.from_file, scope)
    }

    /// Connects with the flags (one `--context` at most), reads and analyses.
    pub async fn observe(
        flags: &ConnectionFlags,
        verbosity: u8,
        scope: &Scope,
        extras: Extras,
        counter: &ReadCounter,
    ) -> Result<Self, RevError> {
        let cluster = connect(flags, verbosity).await?;
        Self::read(cluster, scope, extras, counter).await
    }

    /// Every cluster the flags name (each `--context`, else the current one), read concurrently.
    pub async fn observe_all(
        flags: &ConnectionFlags,
        contexts: &[String],
        verbosity: u8,
        scope: &Scope,
        extras: Extras,
        counter: &ReadCounter,
    ) -> Result<Vec<Self>, RevError> {
        let clusters = connect_all(flags, contexts, verbosity).await?;
        futures::future::try_join_all(
            clusters
                .into_iter()
                .map(|cluster| Self::read(cluster, scope, extras, counter)),
        )
        .await
    }

    /// What a read-only command looks at: the dumps of `--from-file` read as one cluster, else
    /// each `--context` (every context with `all_contexts`; none named: the current one), read
    /// concurrently under a spinner. Also says whether contexts were named.
    pub async fn observe_for_reading(
        flags: &ConnectionFlags,
        all_contexts: bool,
        dumps: &DumpFlags,
        verbosity: u8,
        scope: &Scope,
        extras: Extras,
    ) -> Result<(Vec<Self>, bool), RevError> {
        if !dumps.from_file.is_empty() {
            return Ok((vec![Self::from_dumps(&dumps.from_file, scope)?], false));
        }
        let contexts = match all_contexts {
            true => crate::client::all_contexts(flags)?,
            false => flags.contexts.clone(),
        };
        let counter = ReadCounter::default();
        let spinner = crate::output::progress::ReadSpinner::start("reading cluster", &counter);
        let views = Self::observe_all(flags, &contexts, verbosity, scope, extras, &counter).await;
        spinner.finish();
        Ok((views?, !contexts.is_empty()))
    }

    /// Reads and analyses one connected cluster.
    pub async fn read(
        cluster: Cluster,
        scope: &Scope,
        extras: Extras,
        counter: &ReadCounter,
    ) -> Result<Self, RevError> {
        let namespaces = match scope {
            Scope::All => None,
            Scope::Named(names) => Some(names.clone()),
            Scope::Selected(selector) => Some(namespaces_matching(&cluster, selector).await?),
        };
        let read_scope = namespaces
            .clone()
            .map_or(NamespaceScope::All, NamespaceScope::Only);
        let mut snapshot = read_snapshot(&cluster, &read_scope, counter).await?;
        if extras.revision_objects {
            read_revision_objects(&cluster, &mut snapshot, counter).await?;
        }
        if extras.check_injection {
            check_injection(&cluster.client, &mut snapshot).await;
        }
        Ok(Self::analysed(
            cluster.name.clone(),
            Some(cluster),
            snapshot,
            namespaces,
        ))
    }

    /// Saved `kubectl get … -o yaml|json` dumps, read as one cluster.
    pub fn from_dumps(paths: &[PathBuf], scope: &Scope) -> Result<Self, RevError> {
        let snapshot = read_dumps(paths)?;
        let namespaces = match scope {
            Scope::All => None,
            Scope::Named(names) => {
                snapshot.named_namespaces(names)?;
                Some(names.clone())
            }
            Scope::Selected(selector) => Some(
                snapshot
                    .namespaces
                    .iter()
                    .filter(|n| selector.matches(&n.labels))
                    .map(|n| n.name.clone())
                    .collect(),
            ),
        };
        let name = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",");
        Ok(Self::analysed(name, None, snapshot, namespaces))
    }

    fn analysed(
        name: String,
        cluster: Option<Cluster>,
        snapshot: Snapshot,
        namespaces: Option<Vec<String>>,
    ) -> Self {
        let analysis = analyze(&snapshot);
        Self {
            cluster,
            name,
            snapshot,
            analysis,
            namespaces,
        }
    }

    /// The analysis narrowed to the namespaces in scope (the control plane, tags and
    /// cluster-wide findings stay: revisions are cluster-wide).
    pub fn scoped_analysis(&self) -> Analysis {
        let mut analysis = self.analysis.clone();
        if let Some(scope) = &self.namespaces {
            analysis.retain_namespaces(|ns| scope.iter().any(|s| s == ns));
        }
        analysis
    }

    /// The connected cluster; a dump has none, and commands that act need one.
    pub fn cluster(&self) -> Result<&Cluster, RevError> {
        connected(self.cluster.as_ref())
    }
}

/// The cluster a command acts on: a plan read from a dump has none.
pub fn connected(cluster: Option<&Cluster>) -> Result<&Cluster, RevError> {
    cluster.ok_or_else(no_cluster)
}

/// What acting on a plan read from a dump is.
pub fn no_cluster() -> RevError {
    RevError::Usage("this needs a cluster: --from-file only plans (--dry-run=client)".into())
}
