//! `kubectl rev-plan`: the runbook of every cluster read, and the carried-over values files it
//! writes with `--values-dir` (the only thing it writes; it changes nothing in a cluster).

use std::path::{Path, PathBuf};

use crate::error::RevError;
use crate::output::io::Io;
use crate::output::plan::{PlanFormat, render, render_values_diff};
use crate::revision::RevisionName;
use crate::runbook::{CarriedValues, ClusterInput, RunbookRequest, UpgradePlan, plan_upgrade};
use crate::view::ClusterView;

/// What the command line asks for.
pub struct RunbookArgs {
    pub new: RevisionName,
    pub istio_version: Option<String>,
    pub charts: String,
    pub values_dir: Option<PathBuf>,
    pub format: PlanFormat,
}

/// Plans the upgrade of every cluster in `views`, prints it in the asked format, and with
/// `--values-dir` writes each new release's values and shows what changed (beside a document
/// or a script on stdout, on stderr).
pub fn runbook(
    views: &[ClusterView],
    named_contexts: bool,
    args: &RunbookArgs,
    io: &mut Io,
) -> Result<(), RevError> {
    let several = views.len() > 1;
    let values_root = args
        .values_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    // Each cluster's values go to a directory of its own when there are several.
    let values_dir = |name: &str| match several {
        true => values_root.join(name),
        false => values_root.clone(),
    };
    let inputs: Vec<ClusterInput<'_>> = views
        .iter()
        .map(|view| ClusterInput {
            name: view.name.clone(),
            snapshot: &view.snapshot,
            analysis: &view.analysis,
            request: RunbookRequest {
                new: args.new.clone(),
                version: args.istio_version.clone(),
                charts: args.charts.clone(),
                values_dir: values_dir(&view.name).display().to_string(),
                context: named_contexts.then(|| view.name.clone()),
            },
        })
        .collect();
    let plan = plan_upgrade(&inputs);
    io.out(&render(&plan, args.format)?)?;
    if args.values_dir.is_some() {
        let diffs = write_all_values(&plan, values_dir)?;
        // The diff belongs with the text; with a document or a script on stdout it goes aside.
        io.say(args.format != PlanFormat::Text, &diffs)?;
    }
    Ok(())
}

/// Every cluster's values files, and what changed in them.
fn write_all_values(
    plan: &UpgradePlan,
    values_dir: impl Fn(&str) -> PathBuf,
) -> Result<String, RevError> {
    let mut diffs = String::new();
    for cluster in &plan.clusters {
        let written = write_values(&values_dir(&cluster.name), &cluster.values)?;
        diffs.push_str(&render_values_diff(&cluster.values, &written));
    }
    Ok(match diffs.is_empty() {
        true => {
            "no old istiod or gateway release with a Helm record: no values to carry over\n".into()
        }
        false => format!("\nVALUES CARRIED OVER\n{diffs}"),
    })
}

fn write_values(dir: &Path, values: &[CarriedValues]) -> Result<Vec<String>, RevError> {
    std::fs::create_dir_all(dir).map_err(|source| RevError::Local {
        what: format!("create the values directory {}", dir.display()),
        hint: Some("pass a --values-dir you can write to"),
        source,
    })?;
    values
        .iter()
        .map(|v| {
            let path = dir.join(format!("{}.yaml", v.release));
            let yaml = serde_saphyr::to_string(&v.values).map_err(|e| RevError::Encode {
                format: "YAML",
                source: Box::new(e),
            })?;
            let text = format!(
                "# {}: values of {} carried over by kubectl rev-plan (revision, tags and image version changed)\n{yaml}",
                v.release, v.from_release
            );
            std::fs::write(&path, text).map_err(|source| RevError::Local {
                what: format!("write {}", path.display()),
                hint: Some("pass a --values-dir you can write to"),
                source,
            })?;
            Ok(path.display().to_string())
        })
        .collect()
}
