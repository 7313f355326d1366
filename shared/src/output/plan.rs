//! `kubectl rev-plan`'s words: the runbook as text, as a versioned JSON document, and as a
//! shell script of what is left to run.

use serde::Serialize;

use crate::error::RevError;
use crate::runbook::{CarriedValues, MeshModel, StepStatus, UpgradePlan, shell_quote};

pub const API_VERSION: &str = "plan.kubectl-rev.dev/v1alpha1";

/// How `kubectl rev-plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PlanFormat {
    /// The runbook as text (the default)
    #[default]
    #[value(skip)]
    Text,
    /// The versioned runbook document
    Json,
    /// A bash script of the steps not done yet, pausing before each change
    Sh,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanDocument<'a> {
    api_version: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    plan: &'a UpgradePlan,
    /// The values files of the new releases, with their changes.
    values: Vec<&'a CarriedValues>,
}

pub fn render(plan: &UpgradePlan, format: PlanFormat) -> Result<String, RevError> {
    match format {
        PlanFormat::Text => Ok(render_text(plan)),
        PlanFormat::Json => crate::output::to_json(&PlanDocument {
            api_version: API_VERSION,
            kind: "UpgradePlan",
            plan,
            values: plan.values().collect(),
        }),
        PlanFormat::Sh => Ok(render_script(plan)),
    }
}

fn status_cell(status: &StepStatus) -> String {
    format!("[{}]", status.as_str())
}

pub fn render_text(plan: &UpgradePlan) -> String {
    let mut out = String::new();
    let several = plan.clusters.len() > 1;
    for cluster in &plan.clusters {
        let old = if cluster.old.is_empty() {
            "<none>".to_string()
        } else {
            cluster.old.join(", ")
        };
        out.push_str(&format!(
            "UPGRADE {old} → {}{} ({}{})\n",
            plan.new,
            cluster
                .version
                .as_ref()
                .map(|v| format!(" ({v})"))
                .unwrap_or_default(),
            cluster.name,
            if several {
                format!(", {}", role_name(cluster.role))
            } else {
                String::new()
            }
        ));
    }
    match plan.model {
        MeshModel::SingleCluster => {}
        MeshModel::MultiPrimary => out.push_str(
            "Multi-primary: every cluster runs its own istiod; one cluster after the other.\n",
        ),
        MeshModel::PrimaryRemote => out.push_str(
            "Primary-remote: the primaries' NEW before any remote moves; their OLD only after every remote left it.\n",
        ),
    }
    match plan.current() {
        None => out.push_str("Every step is done.\n"),
        Some(step) => out.push_str(&format!(
            "Now: step {} of {}, {}.\n",
            step.number,
            plan.steps.len(),
            step.status.as_str()
        )),
    }
    out.push('\n');
    for step in &plan.steps {
        let cluster = if several {
            format!("[{}] ", step.cluster)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{:>2}. {:<10} {cluster}{}   (guide {})\n",
            step.number,
            status_cell(&step.status),
            step.title,
            step.guide
        ));
        if let StepStatus::Blocked { reason } = &step.status {
            out.push_str(&format!("               blocked: {reason}\n"));
        }
        if let Some(detail) = &step.detail {
            out.push_str(&format!("               {detail}\n"));
        }
        if step.status != StepStatus::Done {
            for command in &step.commands {
                out.push_str(&format!("               $ {command}\n"));
            }
        }
    }
    out
}

fn role_name(role: crate::runbook::ClusterRole) -> &'static str {
    match role {
        crate::runbook::ClusterRole::Primary => "primary",
        crate::runbook::ClusterRole::Remote => "remote",
    }
}

/// The values carried over, per file: what changed against the old release.
pub fn render_values_diff(values: &[CarriedValues], written: &[String]) -> String {
    let mut out = String::new();
    for (v, path) in values.iter().zip(written) {
        out.push_str(&format!(
            "{path}: {} ({}) from {}\n",
            v.release, v.chart, v.from_release
        ));
        for c in &v.changes {
            match (&c.old, &c.new) {
                (Some(old), Some(new)) => {
                    out.push_str(&format!("  ~ {}: {old} → {new}   ({})\n", c.path, c.why))
                }
                (Some(old), None) => {
                    out.push_str(&format!("  - {}: {old}   ({})\n", c.path, c.why))
                }
                (None, Some(new)) => {
                    out.push_str(&format!("  + {}: {new}   ({})\n", c.path, c.why))
                }
                (None, None) => {}
            }
        }
    }
    out
}

/// A bash script of every step not done, in order, each mutating step behind a confirmation
/// (`--yes` answers them all). Fixes done by hand stop the script: it cannot do them.
pub fn render_script(plan: &UpgradePlan) -> String {
    let mut out = String::from(
        "#!/usr/bin/env bash\n\
         # Generated by kubectl rev-plan: the steps not done yet. Re-run kubectl rev-plan to see\n\
         # where the upgrade stands. ./script --yes answers every confirmation.\n\
         set -euo pipefail\n\
         YES=0\n\
         [[ \"${1:-}\" == --yes ]] && YES=1\n\
         confirm() {\n\
         \x20 echo \"==> $1\" >&2\n\
         \x20 [[ $YES == 1 ]] && return 0\n\
         \x20 local answer\n\
         \x20 read -r -p \"Run it? [y/N] \" answer </dev/tty || answer=\n\
         \x20 [[ $answer == y || $answer == Y || $answer == yes ]] || { echo \"stopped before: $1\" >&2; exit 1; }\n\
         }\n",
    );
    let pending: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| s.status != StepStatus::Done)
        .collect();
    if pending
        .iter()
        .any(|s| s.commands.iter().any(|c| c.contains("${ISTIO_VERSION}")))
    {
        out.push_str(
            ": \"${ISTIO_VERSION:?set ISTIO_VERSION to the Istio version to install (or run kubectl rev-plan --istio-version X.Y.Z)}\"\n",
        );
    }
    if pending.is_empty() {
        out.push_str("# every step is done\n");
    }
    for step in pending {
        let title = format!("step {} ({}): {}", step.number, step.cluster, step.title);
        out.push_str(&format!("\n# {title}\n"));
        if let Some(detail) = &step.detail {
            out.push_str(&format!("# {detail}\n"));
        }
        if step.commands.is_empty() {
            out.push_str(&format!(
                "echo {} >&2\nexit 1\n",
                shell_quote(&format!(
                    "fix this by hand, then re-run kubectl rev-plan: {title}"
                ))
            ));
            continue;
        }
        if step.mutating {
            out.push_str(&format!("confirm {}\n", shell_quote(&title)));
        } else {
            out.push_str(&format!(
                "echo {} >&2\n",
                shell_quote(&format!("==> {title}"))
            ));
        }
        for command in &step.commands {
            // The script's own pause is the confirmation: the plugins must not ask again.
            let command = if step.mutating && command.starts_with("kubectl rev-") {
                format!("{command} --yes")
            } else {
                command.clone()
            };
            out.push_str(&command);
            out.push('\n');
        }
    }
    out
}
