//! `kubectl rev-plan`: the whole canary upgrade of one cluster, from what it holds now to a new
//! revision, as numbered steps following the upgrade guide, each with its exact commands and its
//! status now, so re-running it says where the upgrade stands. Pure: a function of the snapshot
//! and its analysis; the wording lives in `output::plan`.

pub mod values;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::analysis::{Analysis, FindingCode, InjectionMode, Severity};
use crate::plan::prune::{PruneOptions, plan_prune};
use crate::revision::{DEFAULT_REVISION, IstioVersion, RevisionName, minor_distance};
use crate::snapshot::Snapshot;

pub use values::{CarriedValues, ValueChange, carry_over};

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct RunbookRequest {
    pub new: RevisionName,
    /// The Istio version (chart and images) NEW installs, when given (`--version`).
    pub version: Option<String>,
    /// Where the Istio charts come from: a Helm repository name (`istio`) or a directory.
    pub charts: String,
    /// The directory the values files are (or will be) written to.
    pub values_dir: String,
    /// The kubeconfig context the commands must name, when one was named.
    pub context: Option<String>,
}

/// A step's status now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum StepStatus {
    /// The cluster shows it done.
    Done,
    /// The first step not done: what to run now.
    Next,
    /// Waits for an earlier step.
    Pending,
    /// The first step not done, and it may not go ahead yet.
    Blocked { reason: String },
}

impl StepStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            StepStatus::Done => "done",
            StepStatus::Next => "next",
            StepStatus::Pending => "pending",
            StepStatus::Blocked { .. } => "blocked",
        }
    }
}

/// What a step is, for scripts reading the JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// A finding that must be fixed before the upgrade goes on.
    Fix,
    InstallControlPlane,
    InstallGateway,
    Relabel,
    MoveTag,
    Restart,
    Probe,
    MoveDefaultTag,
    RestartGateway,
    Prune,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub number: usize,
    /// The cluster it runs against (context name, or the dump files).
    pub cluster: String,
    pub kind: StepKind,
    /// The upgrade guide's step it follows (`2.5`, `3.6`).
    pub guide: &'static str,
    pub title: String,
    /// Shell commands, in order; empty for fixes done by hand.
    pub commands: Vec<String>,
    /// What the cluster shows about it now (counts, what is left).
    pub detail: Option<String>,
    /// It changes the cluster (the `-o sh` script pauses before it).
    pub mutating: bool,
    pub status: StepStatus,
}

/// How a cluster takes part in the mesh, from what it holds (DOMAIN §1): a primary runs an
/// istiod; a remote has a revision's injector webhooks but no istiod of its own (they reach the
/// primary's, through its east-west gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterRole {
    Primary,
    Remote,
}

/// The multi-cluster model, from the roles of the clusters read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeshModel {
    SingleCluster,
    /// An istiod in every cluster: each upgrades on its own, one cluster after the other.
    MultiPrimary,
    /// Remotes served by a primary's istiod: the primary's NEW comes before any remote moves,
    /// and the primary's OLD goes only after every remote left it.
    PrimaryRemote,
}

/// One cluster's part of the upgrade.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPlan {
    /// The context name, or the dump files.
    pub name: String,
    pub role: ClusterRole,
    /// The revisions being left (every installed revision but NEW).
    pub old: Vec<String>,
    /// The version NEW installs, when known (`--version`, or what NEW runs).
    pub version: Option<String>,
    /// The values files of its new releases, carried over from the old ones.
    #[serde(skip)]
    pub values: Vec<CarriedValues>,
}

/// The upgrade of every cluster read, as one ordered runbook.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePlan {
    pub new: String,
    pub model: MeshModel,
    pub clusters: Vec<ClusterPlan>,
    pub steps: Vec<Step>,
}

impl UpgradePlan {
    /// The step to run now, if any is left.
    pub fn current(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.status != StepStatus::Done)
    }

    pub fn is_done(&self) -> bool {
        self.current().is_none()
    }

    pub fn values(&self) -> impl Iterator<Item = &CarriedValues> {
        self.clusters.iter().flat_map(|c| &c.values)
    }
}

/// One cluster as read, and how its commands must name it.
pub struct ClusterInput<'a> {
    pub name: String,
    pub snapshot: &'a Snapshot,
    pub analysis: &'a Analysis,
    pub request: RunbookRequest,
}

/// Findings that make the upgrade unsafe to go on with: each becomes a step of its own, first.
/// Drift is what the restart steps fix, and a pod's ignored label only informs.
fn must_fix_first(code: FindingCode, severity: Severity, role: ClusterRole) -> bool {
    match code {
        FindingCode::WorkloadDrifted | FindingCode::PodRevLabelIgnored => false,
        // A remote's injectors call the primary's istiod: none of its own is the model.
        FindingCode::InjectorWithoutIstiod if role == ClusterRole::Remote => false,
        FindingCode::LegacyLabelOverridesRev
        | FindingCode::RevisionSkew
        | FindingCode::ConfigPinnedToDepartingRevision => true,
        _ => severity == Severity::Error,
    }
}

/// A step before statuses are assigned: done, or not done (with what blocks it, if anything).
struct Draft {
    kind: StepKind,
    /// Where it falls in a multi-cluster order: fixes, installs, data plane, defaults, prune.
    phase: u8,
    guide: &'static str,
    title: String,
    commands: Vec<String>,
    detail: Option<String>,
    mutating: bool,
    done: bool,
    blocked_by: Option<String>,
}

impl Draft {
    fn new(kind: StepKind, guide: &'static str, title: String) -> Self {
        let phase = match kind {
            StepKind::Fix => 0,
            StepKind::InstallControlPlane | StepKind::InstallGateway => 1,
            StepKind::Relabel | StepKind::MoveTag | StepKind::Restart | StepKind::Probe => 2,
            StepKind::MoveDefaultTag | StepKind::RestartGateway => 3,
            StepKind::Prune => 4,
        };
        Self {
            kind,
            phase,
            guide,
            title,
            commands: Vec::new(),
            detail: None,
            mutating: true,
            done: false,
            blocked_by: None,
        }
    }
}

struct Planner<'a> {
    snapshot: &'a Snapshot,
    analysis: &'a Analysis,
    request: &'a RunbookRequest,
    new: &'a str,
    old: Vec<String>,
    version: Option<String>,
    role: ClusterRole,
}

/// A primary runs an istiod; a cluster whose revisions are all injectors without one is a remote.
pub fn role_of(analysis: &Analysis) -> ClusterRole {
    let revisions = &analysis.control_plane.revisions;
    let remote = !revisions.is_empty()
        && revisions.iter().all(|r| r.istiod.is_none())
        && revisions.iter().any(|r| !r.injector_webhooks.is_empty());
    if remote {
        ClusterRole::Remote
    } else {
        ClusterRole::Primary
    }
}

/// The upgrade of every cluster read, ordered so that no proxy ever points at a control plane
/// that is gone (guide step 6).
pub fn plan_upgrade(inputs: &[ClusterInput<'_>]) -> UpgradePlan {
    let new = inputs
        .first()
        .map(|i| i.request.new.as_str().to_string())
        .unwrap_or_default();
    let mut clusters = Vec::new();
    let mut per_cluster: Vec<(ClusterRole, Vec<(String, Draft)>)> = Vec::new();
    for input in inputs {
        let (plan, drafts) = cluster_drafts(input);
        let role = plan.role;
        let name = plan.name.clone();
        clusters.push(plan);
        per_cluster.push((
            role,
            drafts.into_iter().map(|d| (name.clone(), d)).collect(),
        ));
    }
    let roles: Vec<ClusterRole> = per_cluster.iter().map(|(r, _)| *r).collect();
    let model = match (roles.len(), roles.contains(&ClusterRole::Remote)) {
        (0 | 1, _) => MeshModel::SingleCluster,
        (_, false) => MeshModel::MultiPrimary,
        (_, true) => MeshModel::PrimaryRemote,
    };
    let ordered = match model {
        MeshModel::SingleCluster | MeshModel::MultiPrimary => {
            per_cluster.into_iter().flat_map(|(_, d)| d).collect()
        }
        MeshModel::PrimaryRemote => primary_remote_order(per_cluster),
    };
    UpgradePlan {
        new,
        model,
        clusters,
        steps: statuses(ordered),
    }
}

/// Phase by phase, primaries first (a remote's NEW needs the primary's istiod-NEW), except the
/// prunes: every remote leaves OLD before a primary removes the istiod it was served by.
fn primary_remote_order(
    per_cluster: Vec<(ClusterRole, Vec<(String, Draft)>)>,
) -> Vec<(String, Draft)> {
    let mut slots: Vec<(u8, u8, usize, (String, Draft))> = Vec::new();
    for (role, drafts) in per_cluster {
        for (i, item) in drafts.into_iter().enumerate() {
            let phase = item.1.phase;
            let role_rank = match (phase, role) {
                (4, ClusterRole::Remote) | (0..=3, ClusterRole::Primary) => 0,
                _ => 1,
            };
            slots.push((phase, role_rank, i, item));
        }
    }
    // Stable: clusters keep the order they were named in within a phase and role.
    slots.sort_by_key(|(phase, role_rank, _, _)| (*phase, *role_rank));
    slots.into_iter().map(|(_, _, _, item)| item).collect()
}

fn cluster_drafts(input: &ClusterInput<'_>) -> (ClusterPlan, Vec<Draft>) {
    let (snapshot, analysis, request) = (input.snapshot, input.analysis, &input.request);
    let new = request.new.as_str();
    let cp = &analysis.control_plane;
    let old: Vec<String> = cp
        .revisions
        .iter()
        .filter(|r| r.name != new)
        .map(|r| r.name.clone())
        .collect();
    let version = request.version.clone().or_else(|| {
        cp.revision(new)
            .and_then(|r| r.version.clone())
            .filter(|v| IstioVersion::parse(v).is_some())
    });
    let planner = Planner {
        snapshot,
        analysis,
        request,
        new,
        old,
        version,
        role: role_of(analysis),
    };
    let values = planner.carried_values();
    let mut drafts = planner.fixes();
    drafts.push(planner.install_control_plane(&values));
    drafts.extend(planner.install_gateways(&values));
    drafts.extend(planner.relabel());
    drafts.extend(planner.move_tags());
    drafts.extend(planner.restarts(false));
    if planner.role == ClusterRole::Primary {
        drafts.push(planner.probe());
    }
    drafts.push(planner.move_default_tag());
    drafts.extend(planner.restarts(true));
    drafts.extend(planner.restart_revisionless_gateways());
    drafts.extend(planner.prunes());
    let plan = ClusterPlan {
        name: input.name.clone(),
        role: planner.role,
        old: planner.old.clone(),
        version: planner.version.clone(),
        values,
    };
    (plan, drafts)
}

/// Done steps are done; the first other step is next (or blocked, with its reason); the rest
/// wait for it. A later step's own blocker shows only once it is the frontier: until then the
/// earlier steps are what stands in its way.
fn statuses(drafts: Vec<(String, Draft)>) -> Vec<Step> {
    let mut frontier_seen = false;
    drafts
        .into_iter()
        .enumerate()
        .map(|(i, (cluster, d))| {
            let status = if d.done {
                StepStatus::Done
            } else if frontier_seen {
                StepStatus::Pending
            } else {
                frontier_seen = true;
                match d.blocked_by {
                    Some(reason) => StepStatus::Blocked { reason },
                    None => StepStatus::Next,
                }
            };
            Step {
                number: i + 1,
                cluster,
                kind: d.kind,
                guide: d.guide,
                title: d.title,
                commands: d.commands,
                detail: d.detail,
                mutating: d.mutating,
                status,
            }
        })
        .collect()
}

/// `'text'` when the shell would split or expand it, else as is; a word holding a `${VAR}`
/// placeholder (the version, the gateway address) is double-quoted so the variable expands.
pub fn shell_quote(word: &str) -> String {
    if word.contains("${") && !word.contains(['"', '\\', '`']) {
        return format!("\"{word}\"");
    }
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

impl Planner<'_> {
    fn old_list(&self) -> String {
        match self.old.as_slice() {
            [] => "the old revision".to_string(),
            old => old.join(", "),
        }
    }

    fn is_old(&self, revision: &str) -> bool {
        self.old.iter().any(|o| o == revision)
    }

    /// `kubectl rev-* ARGS [--context C]`.
    fn rev(&self, plugin: &str, args: &[&str]) -> String {
        let mut words = vec!["kubectl".to_string(), format!("rev-{plugin}")];
        words.extend(args.iter().map(|a| shell_quote(a)));
        if let Some(context) = &self.request.context {
            words.push("--context".into());
            words.push(shell_quote(context));
        }
        words.join(" ")
    }

    fn kubectl(&self, args: &[&str]) -> String {
        self.tool_command("kubectl", args, "--context")
    }

    fn helm(&self, args: &[&str]) -> String {
        self.tool_command("helm", args, "--kube-context")
    }

    fn tool_command(&self, tool: &str, args: &[&str], context_flag: &str) -> String {
        let mut words = vec![tool.to_string()];
        words.extend(args.iter().map(|a| shell_quote(a)));
        if let Some(context) = &self.request.context {
            words.push(context_flag.into());
            words.push(shell_quote(context));
        }
        words.join(" ")
    }

    fn chart(&self, name: &str) -> String {
        format!("{}/{}", self.request.charts.trim_end_matches('/'), name)
    }

    /// `--version X` for charts from a repository; a chart directory has one version.
    fn version_args(&self) -> Vec<String> {
        let from_repo = !self.request.charts.contains('/') && !self.request.charts.starts_with('.');
        match (&self.version, from_repo) {
            (Some(v), true) => vec!["--version".into(), v.clone()],
            (None, true) => vec!["--version".into(), "${ISTIO_VERSION}".into()],
            (_, false) => Vec::new(),
        }
    }

    fn values_file(&self, release: &str) -> String {
        format!(
            "{}/{release}.yaml",
            self.request.values_dir.trim_end_matches('/')
        )
    }

    fn fixes(&self) -> Vec<Draft> {
        let mut drafts: Vec<Draft> = self
            .analysis
            .findings
            .iter()
            .filter(|f| must_fix_first(f.code, f.severity, self.role))
            .map(|f| {
                let mut d = Draft::new(
                    StepKind::Fix,
                    "1",
                    format!("Fix {} ({}): {}", f.subject, f.code, f.message),
                );
                d.detail = Some(f.hint.clone());
                d
            })
            .collect();
        // Skew against NEW itself: the policy allows at most two minors per canary (DOMAIN §5).
        if let Some(new_version) = self.version.as_deref().and_then(IstioVersion::parse) {
            for rev in &self.analysis.control_plane.revisions {
                let Some(old_version) = rev.version.as_deref().and_then(IstioVersion::parse) else {
                    continue;
                };
                if rev.name == self.new {
                    continue;
                }
                let distance = minor_distance(
                    (old_version.major, old_version.minor),
                    (new_version.major, new_version.minor),
                );
                let too_far = distance.is_none_or(|d| d > 2);
                let behind =
                    (new_version.major, new_version.minor) < (old_version.major, old_version.minor);
                if too_far || behind {
                    let mut d = Draft::new(
                        StepKind::Fix,
                        "1",
                        format!(
                            "Fix the target: {} runs {old_version}, {new_version} is {}",
                            rev.name,
                            if behind {
                                "older (the control plane may never be behind its proxies)"
                            } else {
                                "more than two minor versions ahead (canary upgrade policy)"
                            }
                        ),
                    );
                    d.detail = Some(
                        "upgrade through each intermediate minor version, one revision at a time"
                            .into(),
                    );
                    d.blocked_by = Some("the skip policy forbids this jump".into());
                    drafts.push(d);
                }
            }
        }
        drafts
    }

    fn carried_values(&self) -> Vec<CarriedValues> {
        let mut out = Vec::new();
        let Some(old) = self.old.last() else {
            return out;
        };
        for release in &self.snapshot.helm_releases {
            if release.status != "deployed" {
                continue;
            }
            let belongs = release.revision_value.as_deref() == Some(old.as_str());
            if !belongs
                || !matches!(
                    release.chart.as_str(),
                    "istiod" | "istiod-remote" | "gateway"
                )
            {
                continue;
            }
            out.push(carry_over(release, old, self.new, self.version.as_deref()));
        }
        out
    }

    fn install_control_plane(&self, values: &[CarriedValues]) -> Draft {
        let release = format!("istiod-{}", self.new);
        let mut d = Draft::new(
            StepKind::InstallControlPlane,
            "2.3-2.5",
            format!("Install {release} beside {}", self.old_list()),
        );
        let version = self.version_args();
        let version: Vec<&str> = version.iter().map(String::as_str).collect();
        let base = self.chart("base");
        let mut template = vec!["template", "istio-base", base.as_str()];
        template.extend(&version);
        template.extend(["-n", "istio-system", "-s", "templates/crds.yaml"]);
        // CRDs move first (guide 2.3); Helm never upgrades CRDs of an installed release.
        d.commands.push(format!(
            "{} | {}",
            self.tool_command("helm", &template, "--kube-context"),
            self.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", "-"])
        ));
        let chart = self.chart("istiod");
        let file = self.values_file(&release);
        let mut install = vec!["upgrade", "--install", release.as_str(), chart.as_str()];
        install.extend(&version);
        install.extend(["-n", "istio-system", "--wait", "-f", file.as_str()]);
        d.commands.push(self.helm(&install));
        let carried = values.iter().find(|v| v.chart.starts_with("istiod"));
        if self.role == ClusterRole::Remote {
            d.title = format!(
                "Install {release}'s remote configuration (injector served by the primary's istiod-{})",
                self.new
            );
            d.done = self.new_ready();
            d.detail = Some(match (d.done, carried) {
                (true, _) => format!("injector of {} installed", self.new),
                (false, Some(v)) => format!("values carried over from {}", v.from_release),
                (false, None) => format!("write {file} by hand (profile remote)"),
            });
            return d;
        }
        d.detail = Some(match carried {
            Some(v) => format!("values carried over from {}", v.from_release),
            None => format!(
                "no istiod release of {} to carry values from: write {file} by hand",
                self.old_list()
            ),
        });
        match self.analysis.control_plane.revision(self.new) {
            Some(rev) => match &rev.istiod {
                Some(istiod) if istiod.ready > 0 => {
                    d.done = true;
                    d.detail = Some(format!(
                        "{} {}/{} ready{}",
                        istiod.name,
                        istiod.ready,
                        istiod.desired,
                        rev.version
                            .as_ref()
                            .map(|v| format!(", version {v}"))
                            .unwrap_or_default()
                    ));
                }
                Some(istiod) => {
                    d.blocked_by = Some(format!(
                        "{} is installed but has no ready replica ({}/{}): see its pods' events",
                        istiod.name, istiod.ready, istiod.desired
                    ));
                }
                None => {}
            },
            None if self.version.is_none() => {
                d.detail = Some(format!(
                    "{}; set ISTIO_VERSION (or pass --version) to the Istio version {} runs",
                    d.detail.take().unwrap_or_default(),
                    self.new
                ));
            }
            None => {}
        }
        d
    }

    /// One new release per gateway of the old revision (guide 3.1-3.4): revisioned gateways
    /// move by a new release beside the old one, never in place.
    fn install_gateways(&self, values: &[CarriedValues]) -> Vec<Draft> {
        let gateways = &self.analysis.gateways;
        let mut drafts = Vec::new();
        let mut seen = BTreeSet::new();
        for gw in gateways {
            let Some(rev) = gw.revision.as_deref().filter(|r| self.is_old(r)) else {
                continue;
            };
            let old_release = gw.helm_release.clone().unwrap_or_else(|| gw.name.clone());
            let release = values::renamed(&old_release, rev, self.new);
            if !seen.insert((gw.namespace.clone(), release.clone())) {
                continue;
            }
            let mut d = Draft::new(
                StepKind::InstallGateway,
                "3.1-3.4",
                format!(
                    "Install gateway {}/{release} beside {old_release}",
                    gw.namespace
                ),
            );
            let chart = self.chart("gateway");
            let file = self.values_file(&release);
            let version = self.version_args();
            let mut install = vec!["upgrade", "--install", release.as_str(), chart.as_str()];
            install.extend(version.iter().map(String::as_str));
            install.extend(["-n", gw.namespace.as_str(), "--wait", "-f", file.as_str()]);
            d.commands.push(self.helm(&install));
            let carried = values
                .iter()
                .any(|v| v.namespace == gw.namespace && v.release == release);
            d.detail = Some(if carried {
                format!("values carried over from {old_release}")
            } else {
                format!(
                    "no Helm record of {old_release} to carry values from: write {file} by hand"
                )
            });
            let new_gateway = gateways.iter().find(|g| {
                g.namespace == gw.namespace
                    && g.revision.as_deref() == Some(self.new)
                    && (g.helm_release.as_deref() == Some(release.as_str()) || g.name == release)
            });
            if let Some(g) = new_gateway {
                d.done = g.ready > 0;
                d.detail = Some(format!(
                    "{} {}/{} ready, address {}",
                    g.name,
                    g.ready,
                    g.desired,
                    if g.addresses.is_empty() {
                        "<pending>".to_string()
                    } else {
                        g.addresses.join(",")
                    }
                ));
            }
            if !self.new_ready() {
                d.blocked_by = Some(format!("istiod-{} is not ready yet", self.new));
            }
            drafts.push(d);
        }
        drafts
    }

    /// NEW can serve this cluster's pods: its istiod is ready (a remote: its injector is
    /// installed; the primary's istiod comes earlier in the order).
    fn new_ready(&self) -> bool {
        let Some(rev) = self.analysis.control_plane.revision(self.new) else {
            return false;
        };
        match self.role {
            ClusterRole::Primary => rev.istiod.as_ref().is_some_and(|i| i.ready > 0),
            ClusterRole::Remote => !rev.injector_webhooks.is_empty(),
        }
    }

    /// Namespaces labelled `istio.io/rev=<old revision>` (not a tag): moved by one relabel.
    /// Namespaces on a tag move with the tag; legacy-labelled ones with the default tag.
    fn relabel(&self) -> Option<Draft> {
        let mut left = Vec::new();
        let mut moved = Vec::new();
        for ns in &self.analysis.namespaces {
            if ns.effective.mode != InjectionMode::RevisionLabel || ns.effective.via_tag.is_some() {
                continue;
            }
            match ns.rev_label.as_deref() {
                Some(r) if self.is_old(r) => left.push(ns.name.as_str()),
                Some(r) if r == self.new => moved.push(ns.name.as_str()),
                _ => {}
            }
        }
        if left.is_empty() && moved.is_empty() {
            return None;
        }
        let names = if left.is_empty() { &moved } else { &left };
        let mut d = Draft::new(
            StepKind::Relabel,
            "3.6",
            format!("Move namespaces to {}: {}", self.new, names.join(", ")),
        );
        let mut args: Vec<&str> = names.clone();
        args.push(self.new);
        d.commands.push(self.rev("relabel", &args));
        d.done = left.is_empty();
        d.detail = Some(if d.done {
            format!("{} labelled istio.io/rev={}", moved.join(", "), self.new)
        } else {
            format!(
                "{} namespace(s) still labelled for {}",
                left.len(),
                self.old_list()
            )
        });
        if !d.done && !self.new_ready() {
            d.blocked_by = Some(format!(
                "istiod-{} is not ready: new pods there would start without a sidecar",
                self.new
            ));
        }
        Some(d)
    }

    /// Tags other than `default` that namespaces use: each moves in one retarget.
    fn move_tags(&self) -> Vec<Draft> {
        let cp = &self.analysis.control_plane;
        cp.tags
            .iter()
            .filter(|t| t.name != DEFAULT_REVISION)
            .filter(|t| self.is_old(&t.revision) || t.revision == self.new)
            .map(|t| {
                let mut d = Draft::new(
                    StepKind::MoveTag,
                    "3.6",
                    format!("Move tag {} to {}", t.name, self.new),
                );
                d.commands
                    .push(self.rev("relabel", &["--tag", &t.name, self.new]));
                d.done = t.revision == self.new;
                let users: Vec<&str> = self
                    .analysis
                    .namespaces
                    .iter()
                    .filter(|n| n.effective.via_tag.as_deref() == Some(t.name.as_str()))
                    .map(|n| n.name.as_str())
                    .collect();
                d.detail = Some(format!(
                    "points at {}; namespaces on it: {}",
                    t.revision,
                    if users.is_empty() {
                        "none".to_string()
                    } else {
                        users.join(", ")
                    }
                ));
                if !d.done && !self.new_ready() {
                    d.blocked_by = Some(format!("istiod-{} is not ready", self.new));
                }
                d
            })
            .collect()
    }

    /// Does this namespace follow the default tag (legacy label, or `istio.io/rev=default`)?
    fn follows_default(&self, ns: &crate::analysis::NamespaceStatus) -> bool {
        ns.effective.mode == InjectionMode::LegacyLabel
            || ns.effective.via_tag.as_deref() == Some(DEFAULT_REVISION)
    }

    /// One restart per namespace whose pods must move: those the relabel and tag moves cover
    /// (`after_default` false), or those that follow the default tag (true).
    fn restarts(&self, after_default: bool) -> Vec<Draft> {
        let mut drafts = Vec::new();
        for ns in &self.analysis.namespaces {
            if self.follows_default(ns) != after_default {
                continue;
            }
            let selects = ns.effective.selector.is_some();
            let on_old = ns.pods_by_revision.keys().any(|r| self.is_old(r));
            let target_old_or_new = ns
                .effective
                .revision
                .as_deref()
                .is_some_and(|r| self.is_old(r) || r == self.new);
            // Only labelled namespaces: gateway namespaces carry no injection label, their
            // pods move by new releases.
            if !(selects && target_old_or_new) {
                continue;
            }
            let on_new = ns.effective.revision.as_deref() == Some(self.new);
            let old_pods: usize = ns
                .pods_by_revision
                .iter()
                .filter(|(r, _)| self.is_old(r))
                .map(|(_, n)| n)
                .sum();
            let pods: usize = ns.pods_by_revision.values().sum();
            if pods == 0 && !on_old {
                continue;
            }
            let mut d = Draft::new(
                StepKind::Restart,
                if after_default { "5" } else { "3.7-3.8" },
                format!("Restart the workloads of {} onto {}", ns.name, self.new),
            );
            if after_default {
                d.phase = 3;
            }
            d.commands.push(self.rev("restart", &[ns.name.as_str()]));
            d.done = on_new && ns.pods_needing_restart == 0 && old_pods == 0;
            d.detail = Some(if on_new {
                format!(
                    "{} of {pods} pod(s) to restart",
                    ns.pods_needing_restart.max(old_pods)
                )
            } else {
                format!(
                    "{old_pods} of {pods} pod(s) on {} to restart once relabelled",
                    self.old_list()
                )
            });
            if !d.done && !on_new {
                d.blocked_by = Some(format!(
                    "{} still selects {}: move it first",
                    ns.name,
                    ns.effective.display()
                ));
            }
            drafts.push(d);
        }
        drafts
    }

    fn probe(&self) -> Draft {
        let mut d = Draft::new(
            StepKind::Probe,
            "4",
            format!("Validate traffic through the {} gateways", self.new),
        );
        d.mutating = false;
        // The NEW ingress gateways, installed or still to install (release name = Service name).
        // East-west gateways carry mTLS between clusters, not HTTP a probe could judge.
        let mut targets: BTreeSet<(String, String)> = BTreeSet::new();
        for g in &self.analysis.gateways {
            let name = match g.revision.as_deref() {
                Some(r) if r == self.new => g.name.clone(),
                Some(r) if self.is_old(r) => {
                    values::renamed(g.helm_release.as_deref().unwrap_or(&g.name), r, self.new)
                }
                _ => continue,
            };
            if !name.contains("eastwest") {
                targets.insert((g.namespace.clone(), name));
            }
        }
        for (namespace, name) in &targets {
            let target = format!("{namespace}/{name}");
            d.commands.push(self.rev(
                "probe",
                &[
                    "--gateway",
                    &target,
                    "--duration",
                    "1m",
                    "--max-error-rate",
                    "0",
                ],
            ));
        }
        if d.commands.is_empty() {
            d.commands.push(self.rev(
                "probe",
                &[
                    "--url",
                    "http://${INGRESS_GW_IP}/productpage",
                    "--duration",
                    "1m",
                    "--max-error-rate",
                    "0",
                ],
            ));
        }
        // A probe leaves nothing in the cluster: it counts as done once the upgrade went past
        // it (the default tag moved, or OLD is gone).
        let default_moved =
            self.analysis.control_plane.default_revision.as_deref() == Some(self.new);
        d.done = default_moved || self.old.is_empty();
        d.detail = Some(if d.done {
            "the upgrade went past it (the cluster keeps no record of a probe)".into()
        } else {
            "gates: no failed request; run it while the restarts roll (or rev-restart --probe)"
                .into()
        });
        d
    }

    fn move_default_tag(&self) -> Draft {
        let cp = &self.analysis.control_plane;
        let mut d = Draft::new(
            StepKind::MoveDefaultTag,
            "5",
            format!(
                "Move the default tag and istiod-default-validator to {}",
                self.new
            ),
        );
        d.commands
            .push(self.rev("relabel", &["--tag", DEFAULT_REVISION, self.new]));
        let tag = cp.tag(DEFAULT_REVISION).map(|t| t.revision.as_str());
        let validator = cp
            .default_validator
            .as_ref()
            .and_then(|v| v.revision.as_deref());
        let tag_ok = tag.is_none_or(|t| t == self.new);
        let validator_ok = validator.is_none_or(|v| v == self.new);
        d.done = (tag_ok && validator_ok)
            || (tag.is_none() && validator.is_none() && self.old.is_empty());
        d.detail = Some(format!(
            "default tag → {}, istiod-default-validator → {}",
            tag.unwrap_or("<none>"),
            validator.unwrap_or("<none>")
        ));
        if !d.done && !self.new_ready() {
            d.blocked_by = Some(format!("istiod-{} is not ready", self.new));
        }
        d
    }

    /// Gateways installed without a revision follow the default tag: a rollout restart moves
    /// them once it points at NEW (DOMAIN §1).
    fn restart_revisionless_gateways(&self) -> Vec<Draft> {
        self.analysis
            .gateways
            .iter()
            .filter(|g| g.revision.is_none())
            .filter_map(|g| {
                let w = self
                    .analysis
                    .workloads
                    .iter()
                    .find(|w| w.namespace == g.namespace && w.name == g.name)?;
                let old_pods: usize = w
                    .pods_by_revision
                    .iter()
                    .filter(|(r, _)| self.is_old(r))
                    .map(|(_, n)| n)
                    .sum();
                let mut d = Draft::new(
                    StepKind::RestartGateway,
                    "5",
                    format!(
                        "Restart gateway {}/{} in place onto {}",
                        g.namespace, g.name, self.new
                    ),
                );
                let target = format!("deployment/{}", g.name);
                d.commands
                    .push(self.kubectl(&["rollout", "restart", &target, "-n", &g.namespace]));
                d.commands
                    .push(self.kubectl(&["rollout", "status", &target, "-n", &g.namespace]));
                d.done = old_pods == 0 && w.drifted_pods == 0;
                d.detail = Some(format!(
                    "{old_pods} of {} pod(s) on {}",
                    w.pods,
                    self.old_list()
                ));
                Some(d)
            })
            .collect()
    }

    fn prunes(&self) -> Vec<Draft> {
        let options = PruneOptions {
            force: false,
            allow_address_change: false,
            // rev-prune runs helm for releases with delete hooks; the runbook assumes it is there.
            helm_binary: Some("helm".into()),
        };
        let mut drafts: Vec<Draft> = self
            .old
            .iter()
            .map(|old| {
                let mut d = Draft::new(StepKind::Prune, "5", format!("Remove revision {old}"));
                d.commands.push(self.rev("prune", &[old.as_str()]));
                let name = RevisionName::parse(old);
                let plan = name
                    .ok()
                    .and_then(|n| plan_prune(self.snapshot, self.analysis, &n, &options).ok());
                match plan {
                    Some(plan) if !plan.blockers.is_empty() => {
                        // rev-prune's own wording, so both commands name a blocker alike.
                        let (reasons, fixes): (Vec<String>, Vec<String>) = plan
                            .blockers
                            .iter()
                            .map(|b| crate::output::prune::blocker_text(b, &plan))
                            .unzip();
                        d.blocked_by = Some(reasons.join("; "));
                        d.detail = Some(format!(
                            "{} blocker(s); fix: {}",
                            plan.blockers.len(),
                            fixes.join("; ")
                        ));
                    }
                    Some(plan) => {
                        d.detail = Some(format!(
                            "{} release(s) and object group(s) to remove",
                            plan.steps.len()
                        ));
                    }
                    None => {}
                }
                d
            })
            .collect();
        if self.old.is_empty() {
            let mut d = Draft::new(StepKind::Prune, "5", "Remove the old revision".into());
            d.done = self.analysis.control_plane.revision(self.new).is_some();
            d.detail = Some(if d.done {
                format!("{} is the only revision installed", self.new)
            } else {
                format!(
                    "no revision installed: this cluster has no Istio to upgrade to {}",
                    self.new
                )
            });
            if !d.done {
                d.blocked_by = Some("no Istio revision is installed here".into());
            }
            drafts.push(d);
        }
        drafts
    }
}
