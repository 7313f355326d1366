//! The suite's errors. Each knows its exit code and says what to do next.
//!
//! Exit codes (documented in README): 0 success; 1 any error or refusal (the only failing code
//! Windows preserves, DOMAIN §8); 2 usage errors (clap); 3 `--fail-on` threshold reached;
//! 130 interrupted.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RevError {
    #[error("invalid revision {input:?}: {why}")]
    InvalidRevision { input: String, why: &'static str },

    #[error(
        "cannot load kubeconfig: {message}\n  hint: check --kubeconfig / $KUBECONFIG, or run `kubectl config view` to see what kubectl reads"
    )]
    Kubeconfig { message: String },

    #[error(
        "context {name:?} not found in kubeconfig (known: {known})\n  hint: `kubectl config get-contexts` lists them"
    )]
    UnknownContext { name: String, known: String },

    #[error(
        "cannot reach the API server {server}: {message}\n  hint: check the cluster is up and --server/--context point at it; --request-timeout bounds the wait"
    )]
    Unreachable { server: String, message: String },

    #[error(
        "forbidden: cannot {verb} {resource}{scope}: {message}\n  hint: ask for RBAC that allows `{verb}` on `{resource}`, or check with `kubectl auth can-i {verb} {resource}`"
    )]
    Forbidden {
        verb: String,
        resource: String,
        scope: String,
        message: String,
    },

    #[error("{context}: the API server answered {code}: {message}")]
    Api {
        context: String,
        code: u16,
        message: String,
    },

    #[error("cannot read {path}: {message}")]
    Dump { path: String, message: String },

    #[error("namespace(s) not found: {}\n  hint: `kubectl get namespaces` lists them", names.join(", "))]
    UnknownNamespaces { names: Vec<String> },

    #[error("{0}")]
    Usage(String),

    #[error(
        "revision {revision:?} is not installed: nothing belongs to it{}\n  hint: {}",
        if installed.is_empty() { String::new() } else { format!(" (installed: {})", installed.join(", ")) },
        match tag_target {
            Some(target) => format!("{revision} is a revision tag pointing at {target}; prune revisions, not tags (`kubectl rev-inventory` lists both)"),
            None => "`kubectl rev-inventory` lists the installed revisions; if you pruned it already, nothing is left to do".to_string(),
        }
    )]
    UnknownRevision {
        revision: String,
        installed: Vec<String>,
        tag_target: Option<String>,
    },

    #[error("refused: {reason}")]
    Refused { reason: String },

    #[error("{0}")]
    Failed(String),

    #[error("interrupted")]
    Interrupted,

    #[error("findings at or above {threshold} severity")]
    FailOn { threshold: String },
}

impl RevError {
    /// Names the server in a connection error raised where only the client was known.
    pub fn with_server(self, url: &str) -> Self {
        match self {
            RevError::Unreachable { message, .. } => RevError::Unreachable {
                server: url.to_string(),
                message,
            },
            other => other,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            RevError::Usage(_) => 2,
            RevError::FailOn { .. } => 3,
            RevError::Interrupted => 130,
            _ => 1,
        }
    }

    /// Turns a kube error into one that names what was being done, and for 403s the verb and
    /// resource the user lacks.
    pub fn from_kube(err: kube::Error, verb: &str, resource: &str, scope: &str) -> Self {
        match err {
            kube::Error::Api(status) if status.code == 403 => RevError::Forbidden {
                verb: verb.to_string(),
                resource: resource.to_string(),
                scope: scope.to_string(),
                message: status.message,
            },
            kube::Error::Api(status) => RevError::Api {
                context: format!("{verb} {resource}{scope}"),
                code: status.code,
                message: status.message,
            },
            other => RevError::Unreachable {
                server: String::new(),
                message: format!("{verb} {resource}{scope}: {}", error_chain(&other)),
            },
        }
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

pub type Result<T, E = RevError> = std::result::Result<T, E>;
