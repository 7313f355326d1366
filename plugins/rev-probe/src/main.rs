//! `kubectl rev-probe`: send steady traffic to the mesh's ingress during the upgrade and report
//! what it got, as the guide's vegeta run does (steps 1.7 and 4), with SLO gates.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use rev_shared::RevError;
use rev_shared::client::connect;
use rev_shared::flags::{ConnectionFlags, VerbosityFlags};
use rev_shared::output::io::Io;
use rev_shared::probe::{ProbeFlags, ReportFormat, run_command};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// vegeta's text report
    Text,
    /// vegeta's JSON report (same field names), plus error counts and late requests
    Json,
}

/// Send requests at a constant rate and report latencies, success and errors.
#[derive(Parser, Debug)]
#[command(name = "kubectl rev-probe", bin_name = "kubectl rev-probe", version)]
#[command(
    after_help = "Examples:\n  kubectl rev-probe --url http://$GW/productpage --rate 10 --duration 15m --save before.json\n  kubectl rev-probe --gateway istio-ingress/ingressgateway --host shop.example --path /cart\n  kubectl rev-probe --port-forward svc/productpage:9080 -n bookinfo --max-error-rate 0\n  kubectl rev-probe --url http://$GW/ --duration 1m --compare before.json --plot after.html\n\nRequests are sent on schedule whether or not earlier ones returned (an open model, like vegeta's\nattack): a stall shows in the latencies, not as a lower rate. Latency is measured from the\ninstant each request is sent. Without --duration the probe runs until Ctrl-C, then reports.\nExit codes: 0 done, 1 an error, 2 usage, 3 a gate (--max-error-rate, --max-p99) was breached."
)]
struct Cli {
    #[command(flatten)]
    probe: ProbeFlags,

    /// Report format
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    output: Output,

    #[command(flatten)]
    connection: ConnectionFlags,
    #[command(flatten)]
    verbosity: VerbosityFlags,
}

fn main() -> ExitCode {
    rev_shared::cli::run(run)
}

async fn run(cli: Cli, io: &mut Io) -> Result<(), RevError> {
    let format = match cli.output {
        Output::Text => ReportFormat::Text,
        Output::Json => ReportFormat::Json,
    };
    // Only --gateway and --port-forward read the cluster; a plain --url needs no kubeconfig.
    if !cli.probe.validate("")?.needs_api() {
        return run_command(&cli.probe, None, "", format, io).await;
    }
    let cluster = connect(&cli.connection, cli.verbosity.level).await?;
    run_command(&cli.probe, Some(&cluster), &cluster.namespace, format, io).await
}
