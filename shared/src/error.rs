//! The suite's errors. Each keeps its cause (`#[source]`), knows its exit code and the hint
//! that says what to do next; `cli::run` prints them the same way in every plugin:
//!
//! ```text
//! error: cannot reach the API server https://127.0.0.1:6443/ (list namespaces)
//!   cause: client error (Connect): tcp connect error: Connection refused (os error 111)
//!   hint: check the cluster is up and --server/--context point at it
//! ```

use std::fmt;

use thiserror::Error;

/// Exit codes, the same in every plugin (README "Exit codes" is tested against these).
pub mod exit {
    /// Done, or nothing to do.
    pub const SUCCESS: u8 = 0;
    /// An error, or a refused plan: nothing (more) was changed.
    pub const FAILURE: u8 = 1;
    /// The command line is wrong (clap's own code): nothing was read or changed.
    pub const USAGE: u8 = 2;
    /// A check crossed its threshold: `rev-inventory --fail-on` found a finding at or above
    /// it, or `rev-probe` breached a gate (`--max-error-rate`, `--max-p99`).
    pub const FINDINGS: u8 = 3;
    /// The run did all it may do by itself, and work remains that needs the user (a paused
    /// Deployment, an OnDelete StatefulSet, a bare pod).
    pub const WORK_REMAINS: u8 = 4;
    /// Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;

    /// Every code, for the README's table (a test keeps the two in step).
    pub const ALL: [u8; 6] = [SUCCESS, FAILURE, USAGE, FINDINGS, WORK_REMAINS, INTERRUPTED];
}

/// What the suite was doing when the API server answered: `list pods in bookinfo`. RBAC names
/// a permission by verb and resource, so errors do too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub verb: String,
    pub resource: String,
    /// ` in bookinfo`, ` (namespace/bookinfo)`, or empty.
    pub scope: String,
}

impl Action {
    pub fn new(verb: &str, resource: &str) -> Self {
        Self {
            verb: verb.to_string(),
            resource: resource.to_string(),
            scope: String::new(),
        }
    }

    /// The namespace it concerns.
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.scope = format!(" in {namespace}");
        self
    }

    /// The object it concerns (`deployment/reviews-v1 in bookinfo`).
    pub fn object(mut self, name: &str, namespace: Option<&str>) -> Self {
        self.scope = match namespace {
            Some(ns) => format!(" {name} in {ns}"),
            None => format!(" {name}"),
        };
        self
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}{}", self.verb, self.resource, self.scope)
    }
}

/// Why a plan was not carried out although nothing went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Preflight checks failed; `--force` overrides those that are `forceable`.
    Blocked { blockers: usize, forceable: bool },
    /// No terminal to ask on, and no `--yes`.
    NoTerminal,
    /// The user answered no.
    NotConfirmed,
    /// The plan cannot be carried out by this tool, only by hand.
    ByHand(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Blocked { blockers, .. } => write!(
                f,
                "{blockers} preflight check(s) failed (listed above); nothing was changed"
            ),
            Refusal::NoTerminal => f.write_str("no terminal to confirm on; nothing was changed"),
            Refusal::NotConfirmed => f.write_str("not confirmed; nothing was changed"),
            Refusal::ByHand(why) => f.write_str(why),
        }
    }
}

#[derive(Debug, Error)]
pub enum RevError {
    /// A usage error found after parsing (printed by clap, with usage, exit 2).
    #[error("{0}")]
    Usage(String),

    #[error("invalid revision or tag name {input:?}: {why}")]
    InvalidName { input: String, why: &'static str },

    #[error("cannot load kubeconfig: {message}")]
    Kubeconfig {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    #[error("context {name:?} not found in kubeconfig (known: {known})")]
    UnknownContext { name: String, known: String },

    #[error("cannot reach the API server {server} ({action})")]
    Unreachable {
        server: String,
        action: Action,
        #[source]
        source: Box<kube::Error>,
    },

    #[error("forbidden: cannot {action}")]
    Forbidden {
        action: Action,
        #[source]
        source: Box<kube::Error>,
    },

    #[error("cannot {action}: the API server answered {code}")]
    Api {
        action: Action,
        code: u16,
        #[source]
        source: Box<kube::Error>,
    },

    #[error("cannot {action}: it kept changing under us ({attempts} attempts)")]
    Conflict { action: Action, attempts: usize },

    #[error("cannot read {path}: {message}")]
    Dump {
        path: String,
        message: String,
        #[source]
        source: Option<std::io::Error>,
    },

    #[error("namespace(s) not found: {}", names.join(", "))]
    UnknownNamespaces { names: Vec<String> },

    #[error(
        "revision {revision:?} is not installed: nothing belongs to it{}",
        if installed.is_empty() { String::new() } else { format!(" (installed: {})", installed.join(", ")) }
    )]
    UnknownRevision {
        revision: String,
        installed: Vec<String>,
        tag_target: Option<String>,
    },

    #[error("tag {tag:?} does not exist (tags: {})", if tags.is_empty() { "none".to_string() } else { tags.join(", ") })]
    UnknownTag { tag: String, tags: Vec<String> },

    /// Data found in the cluster that cannot be what it claims (a record, an annotation).
    #[error("{what} is not valid: {why}")]
    InvalidData { what: String, why: String },

    #[error("refused: {0}")]
    Refused(Refusal),

    #[error("{failed} workload(s) failed (see above)")]
    WorkloadsFailed { failed: usize },

    #[error("stopped: {cause}")]
    Stopped {
        /// The command that carries on from what is left.
        resume: String,
        #[source]
        cause: Box<RevError>,
    },

    #[error("after the prune these objects of {revision} still exist: {}", left.join(", "))]
    PruneIncomplete { revision: String, left: Vec<String> },

    #[error(
        "after {seconds}s these deleted workloads still have pods terminating: {}",
        workloads.join(", ")
    )]
    PodsStillTerminating {
        seconds: u64,
        workloads: Vec<String>,
    },

    #[error("{command} failed: {stderr}")]
    Helm { command: String, stderr: String },

    #[error("cannot run {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot encode the {format} document")]
    Encode {
        format: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Writing the output failed (a closed pipe is not an error: see [`RevError::is_broken_pipe`]).
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),

    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),

    #[error("interrupted")]
    Interrupted,

    #[error("work remains that needs you (listed above)")]
    WorkRemains,

    #[error("findings at or above {threshold} severity")]
    FailOn { threshold: String },

    /// The probe's target cannot be probed as asked (no address, no ready pod, no port).
    #[error("cannot probe {target}: {why}")]
    ProbeTarget {
        target: String,
        why: String,
        hint: Option<String>,
    },

    /// A local file or socket the command needs (`--save`, `--plot`, a port-forward listener).
    #[error("cannot {what}")]
    Local {
        what: String,
        hint: Option<&'static str>,
        #[source]
        source: std::io::Error,
    },

    #[error("another run holds {scope}: {holder}{}", renewed.as_ref().map(|t| format!(" (last seen {t})")).unwrap_or_default())]
    Locked {
        scope: String,
        holder: String,
        renewed: Option<String>,
    },

    #[error("cannot set up TLS")]
    Tls(#[source] rustls::Error),

    #[error("traffic to {target} breached {} gate(s): {}", breaches.len(), breaches.join("; "))]
    GatesBreached {
        target: String,
        breaches: Vec<String>,
    },

    /// `rev-restart --probe`: traffic breached a gate while these workloads rolled (exit 1, like
    /// a failed workload: the run stopped there, or went on under `--continue-on-error`).
    #[error("traffic to {target} breached a gate while {} rolled: {}", workloads.join(", "), breaches.join("; "))]
    RolloutGatesBreached {
        target: String,
        /// `deployment/reviews-v1 in bookinfo`, each workload blamed.
        workloads: Vec<String>,
        breaches: Vec<String>,
        /// `kubectl rollout undo …` for each workload blamed.
        undo: Vec<String>,
        went_on: bool,
    },
}

impl RevError {
    /// The exit code (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            RevError::Usage(_) | RevError::InvalidName { .. } => exit::USAGE,
            RevError::FailOn { .. } | RevError::GatesBreached { .. } => exit::FINDINGS,
            RevError::WorkRemains => exit::WORK_REMAINS,
            RevError::Interrupted => exit::INTERRUPTED,
            RevError::Stopped { cause, .. } => cause.exit_code(),
            _ if self.is_broken_pipe() => exit::SUCCESS,
            _ => exit::FAILURE,
        }
    }

    /// `kubectl rev-inventory -o json | head -1` closes the pipe early: normal use, not an
    /// error (ripgrep's rule).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, RevError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// A kube error, classified: 403 names the permission missing, other API answers their
    /// code, anything else is a connection problem with `server`.
    pub fn api(server: &str, action: Action, source: kube::Error) -> Self {
        let source = Box::new(source);
        match &*source {
            kube::Error::Api(status) if status.code == 403 => {
                RevError::Forbidden { action, source }
            }
            kube::Error::Api(status) => RevError::Api {
                action,
                code: status.code,
                source,
            },
            _ => RevError::Unreachable {
                server: server.to_string(),
                action,
                source,
            },
        }
    }

    /// The status code of an API answer behind this error, if it was one.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            RevError::Forbidden { .. } => Some(403),
            RevError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// What to do next, printed under the error.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            RevError::Usage(_) => return None,
            RevError::InvalidName { .. } => return None,
            RevError::Kubeconfig { .. } => "check --kubeconfig / $KUBECONFIG, or run `kubectl config view` to see what kubectl reads".into(),
            RevError::UnknownContext { .. } => "`kubectl config get-contexts` lists them".into(),
            RevError::Unreachable { .. } => "check the cluster is up and --server/--context point at it; --request-timeout bounds the wait".into(),
            RevError::Forbidden { action, .. } => format!(
                "ask for RBAC that allows `{}` on `{}`; `kubectl auth can-i {} {}` checks it",
                action.verb, action.resource, action.verb, action.resource
            ),
            RevError::Api { code: 409, .. } | RevError::Conflict { .. } => {
                "someone else changed it meanwhile: re-run to plan from its current state".into()
            }
            RevError::Api { .. } => return None,
            RevError::Dump { .. } => "give a file saved with `kubectl get … -o yaml` or `-o json`".into(),
            RevError::UnknownNamespaces { .. } => "`kubectl get namespaces` lists them".into(),
            RevError::UnknownRevision { revision, tag_target, .. } => match tag_target {
                Some(target) => format!("{revision} is a revision tag pointing at {target}; prune revisions, not tags (`kubectl rev-inventory` lists both)"),
                None => "`kubectl rev-inventory` lists the installed revisions; if you pruned it already, nothing is left to do".into(),
            },
            RevError::UnknownTag { tag, .. } => format!(
                "create it with `istioctl tag set {tag} --revision <revision>`; `kubectl rev-inventory` lists the tags"
            ),
            RevError::InvalidData { .. } => "fix or remove it by hand, then re-run".into(),
            RevError::Refused(Refusal::Blocked { forceable: true, .. }) => {
                "fix them (each lists its fix), or re-run with --force to override".into()
            }
            RevError::Refused(Refusal::NoTerminal) => {
                "re-run with --yes to proceed, or --dry-run=client to only see the plan".into()
            }
            RevError::Refused(_) => return None,
            RevError::WorkloadsFailed { .. } => {
                "re-run to resume: workloads already moved are no longer drifted".into()
            }
            RevError::Stopped { resume, .. } => {
                format!("once that is fixed, re-run `{resume}`: it carries on from what is left")
            }
            RevError::PruneIncomplete { revision, .. } => format!(
                "re-run `kubectl rev-prune {revision}`; if they come back, something re-creates them"
            ),
            RevError::PodsStillTerminating { .. } => {
                "everything was deleted; `kubectl get pods -n <namespace>` follows the pods, and a re-run with a longer --timeout waits again".into()
            }
            RevError::Helm { .. } | RevError::Spawn { .. } => {
                "run the helm command yourself, then re-run".into()
            }
            RevError::WorkRemains => "each item above names the command that moves it".into(),
            RevError::ProbeTarget { hint, .. } => return hint.clone(),
            RevError::Locked { .. } => format!(
                "wait for it to finish (a run that died frees its lock {}s after its last renewal), or re-run with --break-lock if it is gone",
                crate::exec::lock::LEASE_SECONDS
            ),
            RevError::Local { hint, .. } => return hint.map(str::to_string),
            RevError::GatesBreached { .. } => {
                "`--save` keeps the report and `--plot` shows when it happened".into()
            }
            RevError::RolloutGatesBreached { undo, went_on, .. } => format!(
                "{}if its new pods are to blame, roll back with `{}`; once traffic is healthy, re-run to resume (workloads already moved are no longer drifted)",
                if *went_on {
                    "the run went on (--continue-on-error); "
                } else {
                    "the workloads after it were not restarted; "
                },
                undo.join("`, `")
            ),
            RevError::Encode { .. }
            | RevError::Tls(_)
            | RevError::Output(_)
            | RevError::Runtime(_)
            | RevError::Interrupted
            | RevError::FailOn { .. } => return None,
        })
    }
}

/// The message of an error and all its sources, as one line: kube's top-level messages alone
/// ("ServiceError: client error (Connect)") hide the useful part.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = inner.source();
    }
    out
}

/// The causes of an error (its sources), each once, as one line; `None` when it has none.
pub fn causes(err: &dyn std::error::Error) -> Option<String> {
    let first = err.source()?;
    Some(error_chain(first))
}

pub type Result<T, E = RevError> = std::result::Result<T, E>;
