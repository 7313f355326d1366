//! `kubectl rev-restart`: restart the workloads whose sidecars are on another revision than their
//! namespace selects, one at a time, wait for each rollout by kubectl's rules and verify the new
//! pods' sidecars (upgrade guide steps 3.7–3.8).

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, ValueEnum};
use rev_shared::RevError;
use rev_shared::client::current_namespace;
use rev_shared::command::restart::{RestartProbe, RestartRun, restart};
use rev_shared::exec::restart::RestartOptions;
use rev_shared::flags::{
    ConnectionFlags, DumpFlags, MutationFlags, VerbosityFlags, parse_kubectl_duration,
};
use rev_shared::output::io::Io;
use rev_shared::plan::restart::RestartRequest;
use rev_shared::probe::ProbeFlags;
use rev_shared::selector::Selector;
use rev_shared::snapshot::WorkloadKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnDelete {
    /// Report OnDelete StatefulSets and DaemonSets, do not touch them
    Skip,
    /// Delete their pods one by one, waiting for each injected replacement
    DeletePods,
}

/// `--probe`: rev-probe's options, spelled the same, for traffic measured through the run.
#[derive(Args, Debug)]
struct ProbeOption {
    /// Send steady traffic to a target from the first restart to the last; each workload's row
    /// gets the figures of its rollout, and a gate breached while it rolls stops the run
    #[arg(long, requires = "probe_target", help_heading = "Probe target")]
    probe: bool,

    #[command(flatten)]
    flags: ProbeFlags,
}

/// Restart drifted workloads one at a time and verify their new sidecars.
#[derive(Parser, Debug)]
// --probe needs a target; the probe's options need --probe (none is taken silently).
// The probe spans the whole run, so --duration is refused; hidden from this command's help.
#[command(mut_arg("duration", |arg| arg.hide(true)))]
#[command(group(ArgGroup::new("probe_target").args(["urls", "gateway", "port_forward"])))]
#[command(group(
    ArgGroup::new("probe_options")
        .multiple(true)
        .requires("probe")
        .args([
            "urls", "gateway", "port_forward", "host", "path", "method", "headers", "body",
            "cacert", "probe_insecure_skip_tls_verify", "http_version", "rate", "duration",
            "probe_timeout", "max_in_flight", "max_error_rate", "max_p99", "save", "compare",
            "plot",
        ])
))]
#[command(
    name = "kubectl rev-restart",
    bin_name = "kubectl rev-restart",
    version
)]
#[command(
    after_help = "Examples:\n  kubectl rev-restart -n bookinfo --dry-run=client\n  kubectl rev-restart bookinfo reviews --yes\n  kubectl rev-restart -A --kind deployment -o json --yes\n  kubectl rev-restart bookinfo --probe --gateway istio-ingress/istio-ingressgateway-1-31 --path /productpage --max-error-rate 1% --yes\n\nCtrl-C once: finish the current workload, print the summary, exit 130; twice: stop now.\nExit codes: 0 done or nothing to do, 1 a workload failed or refused, or traffic breached a --probe gate while it rolled, 2 usage, 4 drift remains that needs you (paused, OnDelete, partition, bare pods), 130 interrupted."
)]
struct Cli {
    /// Namespaces to restart in (default: -n, else the context's namespace)
    #[arg(value_name = "NAMESPACE")]
    namespaces: Vec<String>,

    /// Every namespace
    #[arg(short = 'A', long)]
    all_namespaces: bool,

    /// Every injected workload, not only the drifted ones
    #[arg(long)]
    all: bool,

    /// Only these kinds (deployment, statefulset, daemonset; repeatable or comma-separated)
    #[arg(long, value_delimiter = ',', value_parser = WorkloadKind::parse_arg)]
    kind: Vec<WorkloadKind>,

    /// Only workloads whose labels match
    #[arg(short = 'l', long, value_name = "SELECTOR", value_parser = Selector::parse)]
    selector: Option<Selector>,

    /// How many workloads may roll at once
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    max_parallel: u16,

    /// How long each workload's rollout may take
    #[arg(long, default_value = "5m", value_parser = parse_kubectl_duration)]
    timeout: Duration,

    /// Wait this long between workloads
    #[arg(long, value_parser = parse_kubectl_duration)]
    pause: Option<Duration>,

    /// Also restart gateways installed without a revision (the default revision injects them;
    /// they are upgraded in place). Gateways of a revision move by a new Helm release instead
    #[arg(long)]
    gateways: bool,

    /// What to do with OnDelete StatefulSets and DaemonSets
    #[arg(long, value_enum, default_value = "skip")]
    ondelete: OnDelete,

    /// Go on with the next workload after a failure (and past workloads the admission check
    /// refuses)
    #[arg(long)]
    continue_on_error: bool,

    /// Skip the preflight that asks the cluster (a dryRun=All pod create per workload) whether
    /// each restart would give its pods the target revision
    #[arg(long)]
    no_admission_check: bool,

    /// Field manager recorded for the restart
    #[arg(long, default_value = "kubectl-rev-restart")]
    field_manager: String,

    #[command(flatten)]
    probe: ProbeOption,

    #[command(flatten)]
    dumps: DumpFlags,
    #[command(flatten)]
    mutation: MutationFlags,
    #[command(flatten)]
    connection: ConnectionFlags,
    #[command(flatten)]
    verbosity: VerbosityFlags,
}

fn main() -> ExitCode {
    rev_shared::cli::run(run)
}

async fn run(mut cli: Cli, io: &mut Io) -> Result<(), RevError> {
    let namespaces = match (cli.all_namespaces, cli.namespaces.is_empty()) {
        (true, _) => None,
        (false, false) => Some(cli.namespaces.clone()),
        (false, true) => Some(vec![current_namespace(&cli.connection, &cli.dumps)?]),
    };
    let probe = match cli.probe.probe {
        true => {
            let namespace = current_namespace(&cli.connection, &cli.dumps)?;
            Some(RestartProbe::from_flags(&cli.probe.flags, namespace)?)
        }
        false => None,
    };
    let run = RestartRun {
        request: RestartRequest {
            namespaces,
            all: cli.all,
            kinds: cli.kind.clone(),
            selector: cli.selector.clone(),
            gateways: cli.gateways,
            delete_ondelete_pods: cli.ondelete == OnDelete::DeletePods,
        },
        options: RestartOptions {
            field_manager: cli.field_manager.clone(),
            dry_run: cli.mutation.dry_run,
            timeout: cli.timeout,
            pause: cli.pause,
            max_parallel: usize::from(cli.max_parallel),
            continue_on_error: cli.continue_on_error,
        },
        probe,
        admission_check: !cli.no_admission_check,
    };
    let level = cli.verbosity.level;
    restart(
        run,
        &cli.connection,
        level,
        &cli.dumps,
        &mut cli.mutation,
        io,
    )
    .await
}
