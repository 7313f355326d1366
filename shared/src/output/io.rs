//! Where a command writes (kubectl's IOStreams): stdout carries only the result (a table or a
//! document), buffered; stderr carries plans under `-o json|yaml|name`, progress, prompts and
//! notes. Injected, so tests can capture both.

use std::io::{BufWriter, IsTerminal, Write};

use crate::error::RevError;

pub struct Io {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
    /// stdin and stderr are terminals: a question can be asked.
    interactive: bool,
}

impl Io {
    /// The process's stdout (locked, buffered) and stderr.
    pub fn stdio() -> Self {
        Self {
            out: Box::new(BufWriter::with_capacity(
                64 * 1024,
                std::io::stdout().lock(),
            )),
            err: Box::new(std::io::stderr()),
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }

    /// Writers of the caller's choosing (tests), never interactive.
    pub fn capture(out: Box<dyn Write>, err: Box<dyn Write>) -> Self {
        Self {
            out,
            err,
            interactive: false,
        }
    }

    /// Writes to stdout. A closed pipe comes back as [`RevError::Output`], which the caller
    /// passes up and `cli::run` turns into a quiet exit 0.
    pub fn out(&mut self, text: &str) -> Result<(), RevError> {
        self.out
            .write_all(text.as_bytes())
            .map_err(RevError::Output)
    }

    /// Writes to stderr. Nothing useful can be done if stderr is gone, so failures are ignored.
    pub fn err(&mut self, text: &str) {
        let _ = self.err.write_all(text.as_bytes());
        let _ = self.err.flush();
    }

    /// The result goes to stdout, or to stderr when stdout carries a document.
    pub fn say(&mut self, to_stderr: bool, text: &str) -> Result<(), RevError> {
        if to_stderr {
            self.err(text);
            Ok(())
        } else {
            self.out(text)
        }
    }

    pub fn flush(&mut self) -> Result<(), RevError> {
        self.out.flush().map_err(RevError::Output)
    }

    pub fn is_interactive(&self) -> bool {
        self.interactive
    }
}
