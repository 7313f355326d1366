//! What every plugin's `main` shares: parsing, the runtime, the output streams, and mapping
//! errors to messages and exit codes in one place (ripgrep's and nextest's pattern).

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::error::{RevError, causes, exit};
use crate::output::io::Io;

/// Parses the command line (clap prints help, version and usage errors itself, exit 2; `meta`
/// answers --version, --completion and kubectl's completion hook), runs the plugin's body with
/// the process's streams, and turns its outcome into an exit code.
pub fn run<C, F>(body: F) -> ExitCode
where
    C: Parser + CommandFactory,
    F: AsyncFnOnce(C, &mut Io) -> Result<(), RevError>,
{
    let cli = crate::meta::parse::<C>();
    let mut io = Io::stdio();
    let result = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(body(cli, &mut io)),
        Err(e) => Err(RevError::Runtime(e)),
    };
    // What is buffered goes out before any error message, so the two stay in order.
    let result = result.and_then(|()| io.flush());
    let _ = io.flush();
    match result {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(err) => {
            report::<C>(&err, &mut io);
            ExitCode::from(err.exit_code())
        }
    }
}

/// Prints an error the same way in every plugin: the message, its causes, what to do next.
/// Usage errors go through clap, with the usage line, like any other usage error.
fn report<C: CommandFactory>(err: &RevError, io: &mut Io) {
    match err {
        e if e.is_broken_pipe() => {}
        RevError::FailOn { .. } => {}
        RevError::Usage(_) | RevError::InvalidName { .. } => {
            let mut message = err.to_string();
            if let Some(hint) = err.hint() {
                message.push_str(&format!("\n  hint: {hint}"));
            }
            let clap_error = C::command().error(clap::error::ErrorKind::ValueValidation, message);
            io.err(&clap_error.render().to_string());
        }
        _ => {
            let mut text = format!("error: {err}\n");
            if let Some(cause) = causes(err) {
                text.push_str(&format!("  cause: {cause}\n"));
            }
            if let Some(hint) = err.hint() {
                text.push_str(&format!("  hint: {hint}\n"));
            }
            io.err(&text);
        }
    }
}
