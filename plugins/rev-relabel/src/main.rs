//! `kubectl rev-relabel`: move namespaces to a new Istio revision (upgrade guide step 3.6), one
//! guarded patch per namespace, after preflight checks, a printed plan and confirmation.

use std::process::ExitCode;

use clap::Parser;
use rev_shared::RevError;
use rev_shared::command::relabel::{Relabel, RetargetTag};
use rev_shared::driver::drive;
use rev_shared::flags::{ConnectionFlags, DumpFlags, MutationFlags, ScopeFlags, VerbosityFlags};
use rev_shared::output::io::Io;
use rev_shared::plan::relabel::{
    Targets, plan_relabel, plan_tag, plan_undo, recorded_tag_revision,
};
use rev_shared::revision::RevisionName;
use rev_shared::selector::Selector;
use rev_shared::view::{ClusterView, Extras, Scope};

/// Move namespaces to an Istio revision (or tag): sets istio.io/rev, removes istio-injection,
/// in one patch per namespace guarded by its resourceVersion. Undo with --undo.
#[derive(Parser, Debug)]
#[command(
    name = "kubectl rev-relabel",
    bin_name = "kubectl rev-relabel",
    version
)]
#[command(
    override_usage = "kubectl rev-relabel NAMESPACE... REVISION [flags]\n       kubectl rev-relabel --from OLD [-A] REVISION [flags]\n       kubectl rev-relabel -l SELECTOR REVISION [flags]\n       kubectl rev-relabel --undo NAMESPACE... [flags]\n       kubectl rev-relabel --tag TAG REVISION [flags]   (--undo --tag TAG to go back)"
)]
#[command(
    after_help = "Examples:\n  kubectl rev-relabel bookinfo 1-20 --dry-run=client\n  kubectl rev-relabel --from 1-19 -A 1-20 --yes\n  kubectl rev-relabel --undo bookinfo\n  kubectl rev-relabel --tag default 1-20 --yes\n\nExit codes: 0 done or nothing to do, 1 error or refused, 2 usage."
)]
struct Cli {
    /// Namespaces, then the revision or tag to move them to (with --undo: namespaces only)
    #[arg(value_name = "NAMESPACE... REVISION")]
    args: Vec<String>,

    /// Every namespace whose effective revision is OLD
    #[arg(long, value_name = "OLD", value_parser = RevisionName::parse, conflicts_with = "selector")]
    from: Option<RevisionName>,

    /// Restore the labels a previous relabel replaced (recorded on each namespace)
    #[arg(long, conflicts_with = "from")]
    undo: bool,

    /// Proceed despite failed preflight checks
    #[arg(long)]
    force: bool,

    /// Repoint this revision tag to REVISION instead of relabelling namespaces (like
    /// `istioctl tag set TAG --revision REVISION --overwrite`); `default` also moves
    /// istiod-default-validator
    #[arg(long, value_name = "TAG", value_parser = RevisionName::parse, conflicts_with_all = ["from", "selector"])]
    tag: Option<RevisionName>,

    /// Field manager recorded for the change
    #[arg(long, default_value = "kubectl-rev-relabel")]
    field_manager: String,

    #[command(flatten)]
    scope: ScopeFlags,
    #[command(flatten)]
    dumps: DumpFlags,
    #[command(flatten)]
    mutation: MutationFlags,
    #[command(flatten)]
    connection: ConnectionFlags,
    #[command(flatten)]
    verbosity: VerbosityFlags,
}

/// What the command line asks for, checked before connecting: a typo costs no round trip.
enum Request {
    Move(Targets, RevisionName),
    Undo(Vec<String>),
    Tag(RevisionName, Option<RevisionName>),
}

fn main() -> ExitCode {
    rev_shared::cli::run(run)
}

async fn run(mut cli: Cli, io: &mut Io) -> Result<(), RevError> {
    let request = cli.request()?;
    let scope = match &request {
        Request::Move(Targets::Names(names), _) | Request::Undo(names) => {
            Scope::Named(names.clone())
        }
        _ => Scope::All,
    };
    let (level, extras) = (cli.verbosity.level, Extras::default());
    let view = ClusterView::for_command(
        &cli.connection,
        level,
        &cli.dumps,
        &mut cli.mutation,
        &scope,
        extras,
    )
    .await?;
    let (snapshot, analysis, cluster) = (&view.snapshot, &view.analysis, view.cluster.as_ref());
    let field_manager = cli.field_manager.clone();
    let plan = match request {
        Request::Tag(tag, revision) => {
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
                force: cli.force,
                field_manager,
            };
            return drive(&command, &cli.mutation, io).await;
        }
        Request::Undo(names) => plan_undo(snapshot, analysis, &names)?,
        Request::Move(targets, revision) => plan_relabel(snapshot, analysis, &targets, &revision)?,
    };
    let command = Relabel {
        cluster,
        plan,
        force: cli.force,
        field_manager,
    };
    drive(&command, &cli.mutation, io).await
}

impl Cli {
    fn request(&self) -> Result<Request, RevError> {
        let usage = |message: &str| Err(RevError::Usage(message.into()));
        if let Some(tag) = &self.tag {
            return match (self.undo, self.args.as_slice()) {
                (true, []) => Ok(Request::Tag(tag.clone(), None)),
                (false, [revision]) => Ok(Request::Tag(
                    tag.clone(),
                    Some(RevisionName::parse(revision)?),
                )),
                _ => usage(
                    "--tag TAG takes exactly one REVISION (kubectl rev-relabel --tag prod 1-20), or none with --undo",
                ),
            };
        }
        if self.undo {
            if self.args.is_empty() {
                return usage("--undo needs the namespaces to restore");
            }
            return Ok(Request::Undo(self.args.clone()));
        }
        let Some((revision, namespaces)) = self.args.split_last() else {
            return usage("missing REVISION: kubectl rev-relabel NAMESPACE... REVISION");
        };
        let revision = RevisionName::parse(revision)?;
        let targets = match (&self.from, &self.scope.selector, namespaces.is_empty()) {
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
        if self.scope.all_namespaces && !matches!(targets, Targets::From(_)) {
            return usage("-A goes with --from OLD");
        }
        Ok(Request::Move(targets, revision))
    }
}
