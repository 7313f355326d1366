//! kubectl-compatible flags, one clap `Args` struct per concern, flattened into every plugin.
//!
//! kubectl parses no flags for plugins (DOMAIN §8): each binary implements these itself, with
//! kubectl's names, short forms and meanings, so muscle memory and scripts carry over.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Connection flags, as `kubectl options` lists them.
#[derive(Args, Debug, Clone, Default)]
pub struct ConnectionFlags {
    /// Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)
    #[arg(long, value_name = "PATH", global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use. rev-inventory, rev-plan and rev-prune accept it several
    /// times (one cluster each)
    #[arg(long = "context", value_name = "NAME", global = true)]
    pub contexts: Vec<String>,

    /// The kubeconfig cluster to use
    #[arg(long, value_name = "NAME", global = true)]
    pub cluster: Option<String>,

    /// The kubeconfig user to use
    #[arg(long, value_name = "NAME", global = true)]
    pub user: Option<String>,

    /// The namespace scope for this request (default: the context's namespace)
    #[arg(short = 'n', long, value_name = "NAME", global = true)]
    pub namespace: Option<String>,

    /// The address and port of the Kubernetes API server
    #[arg(short = 's', long, value_name = "URL", global = true)]
    pub server: Option<String>,

    /// Bearer token for authentication to the API server
    #[arg(long, value_name = "TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,

    /// Username to impersonate for the operation
    #[arg(long = "as", value_name = "USER", global = true)]
    pub as_user: Option<String>,

    /// Group to impersonate for the operation (repeatable)
    #[arg(long = "as-group", value_name = "GROUP", global = true)]
    pub as_groups: Vec<String>,

    /// UID to impersonate for the operation
    #[arg(long = "as-uid", value_name = "UID", global = true)]
    pub as_uid: Option<String>,

    /// Path to a cert file for the certificate authority
    #[arg(long, value_name = "PATH", global = true)]
    pub certificate_authority: Option<PathBuf>,

    /// Path to a client certificate file for TLS
    #[arg(long, value_name = "PATH", global = true)]
    pub client_certificate: Option<PathBuf>,

    /// Path to a client key file for TLS
    #[arg(long, value_name = "PATH", global = true)]
    pub client_key: Option<PathBuf>,

    /// Do not verify the server's certificate (insecure)
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,

    /// Server name to use for server certificate validation
    #[arg(long, value_name = "NAME", global = true)]
    pub tls_server_name: Option<String>,

    /// How long to wait for a single request before giving up (e.g. 10s, 1m; 0 = no limit)
    #[arg(long, value_name = "DURATION", value_parser = parse_kubectl_duration, global = true)]
    pub request_timeout: Option<Duration>,
}

/// Saved `kubectl get … -o yaml|json` dumps to read instead of a live cluster.
#[derive(Args, Debug, Clone, Default)]
pub struct DumpFlags {
    /// Read saved `kubectl get … -o yaml|json` dumps instead of a cluster (repeatable: the files
    /// are read as one cluster); mutating commands then only plan (--dry-run=client)
    #[arg(long, value_name = "DUMP")]
    pub from_file: Vec<PathBuf>,
}

/// Namespace scope flags for reading commands.
#[derive(Args, Debug, Clone, Default)]
pub struct ScopeFlags {
    /// Every namespace, not only the current one
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    /// Label selector on namespaces (e.g. -l team=payments)
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
}

/// `-o` of the read-only inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// kubectl-style tables (the default)
    #[default]
    #[value(skip)]
    Table,
    /// Tables with more columns
    Wide,
    /// The versioned JSON document (stable interface for scripts)
    Json,
    /// The same document as YAML
    Yaml,
    /// kind/name of each object, one per line
    Name,
}

#[derive(Args, Debug, Clone, Copy, Default)]
pub struct OutputFlags {
    /// Output format: wide, json, yaml or name (default: tables)
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    /// Do not print table headers (or section titles)
    #[arg(long)]
    pub no_headers: bool,
}

impl OutputFlags {
    pub fn format(&self) -> OutputFormat {
        self.output.unwrap_or_default()
    }
}

/// `-o` of the mutating commands: their plan and report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ResultFormat {
    /// The plan and the report as text (the default)
    #[default]
    #[value(skip)]
    Table,
    /// The versioned JSON report (the plan, with --dry-run=client); text goes to stderr
    Json,
    /// The same document as YAML
    Yaml,
    /// kind/name of each object changed (or, with --dry-run=client, to change)
    Name,
}

#[derive(Args, Debug, Clone, Copy, Default)]
pub struct MutationOutput {
    /// Output format: json, yaml or name (default: text)
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    pub output: Option<ResultFormat>,

    /// Do not print table headers
    #[arg(long)]
    pub no_headers: bool,
}

impl MutationOutput {
    pub fn format(&self) -> ResultFormat {
        self.output.unwrap_or_default()
    }
}

/// `-v N` / `--v=N`, as kubectl: 6 logs every API request (method, URL, status, duration).
#[derive(Args, Debug, Clone, Default)]
pub struct VerbosityFlags {
    /// Log verbosity; 6 or more logs each API request to stderr
    #[arg(
        short = 'v',
        long = "v",
        value_name = "LEVEL",
        default_value_t = 0,
        global = true
    )]
    pub level: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DryRun {
    /// Really change the cluster
    #[default]
    None,
    /// Print the plan only; send nothing that changes the cluster
    Client,
    /// Send every change with dryRun=All: the API server validates and admits, stores nothing
    Server,
}

impl DryRun {
    /// The mode as the flag spells it, for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DryRun::None => "none",
            DryRun::Client => "client",
            DryRun::Server => "server",
        }
    }
}

/// Flags every mutating plugin shares (plan → confirm → execute).
#[derive(Args, Debug, Clone, Default)]
pub struct MutationFlags {
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// none, client (plan only) or server (sent with dryRun=All)
    #[arg(long, value_enum, value_name = "MODE", default_value = "none", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: DryRun,

    /// Take over the run lock another run holds (one mutating run at a time per namespace, or
    /// per cluster for prune and tags); only when that run is gone
    #[arg(long)]
    pub break_lock: bool,

    #[command(flatten)]
    pub output: MutationOutput,
}

/// kubectl's duration syntax for --request-timeout: a bare number is seconds, otherwise Go
/// duration units (`1m30s`, `500ms`).
pub fn parse_kubectl_duration(input: &str) -> Result<Duration, String> {
    let input = input.trim();
    if let Ok(secs) = input.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = input;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{input:?}: missing unit (use s, m, h or ms)"))?;
        if digits == 0 {
            return Err(format!("{input:?}: expected a number"));
        }
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{input:?}: bad number"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            other => {
                return Err(format!(
                    "{input:?}: unknown unit {other:?} (use s, m, h or ms)"
                ));
            }
        };
        total += Duration::from_secs_f64(seconds);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_kubectl() {
        assert_eq!(parse_kubectl_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_kubectl_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse_kubectl_duration("500ms"),
            Ok(Duration::from_millis(500))
        );
        assert!(parse_kubectl_duration("5x").is_err());
        assert!(parse_kubectl_duration("s").is_err());
        assert!(parse_kubectl_duration("").is_err());
    }
}
