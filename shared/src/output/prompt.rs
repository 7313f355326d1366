//! Confirmation before mutating: default No; `--yes` skips it; with no terminal to ask on and
//! no `--yes`, refuse rather than guess.

use std::io::IsTerminal;

use crate::error::RevError;

pub fn confirm(question: &str, yes: bool) -> Result<(), RevError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(RevError::Refused {
            reason: "no terminal to confirm on; re-run with --yes to proceed, or --dry-run=client to only see the plan".into(),
        });
    }
    let answer = dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact_on(&dialoguer::console::Term::stderr())
        .map_err(|e| RevError::Refused {
            reason: format!("no answer ({e})"),
        })?;
    if answer {
        Ok(())
    } else {
        Err(RevError::Refused {
            reason: "not confirmed; nothing was changed".into(),
        })
    }
}
