//! Confirmation before mutating: default No; with no terminal to ask on, refuse rather than
//! guess (the driver skips the question for `--yes` and server dry-run).

use crate::error::{Refusal, RevError};
use crate::output::io::Io;

pub fn confirm(question: &str, io: &Io) -> Result<(), RevError> {
    if !io.is_interactive() {
        return Err(RevError::Refused(Refusal::NoTerminal));
    }
    let answer = dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact_on(&dialoguer::console::Term::stderr())
        // No answer (stdin closed, Ctrl-C at the prompt) is not a yes.
        .unwrap_or(false);
    if answer {
        Ok(())
    } else {
        Err(RevError::Refused(Refusal::NotConfirmed))
    }
}
