//! What every plugin's `main` shares: the runtime, and mapping errors to messages and exit
//! codes in one place (ripgrep's and nextest's pattern).

use std::future::Future;
use std::process::ExitCode;

use crate::error::RevError;

/// Runs a plugin's async body; prints its error (with the hint it carries) to stderr and
/// returns the documented exit code.
pub fn run<F>(body: F) -> ExitCode
where
    F: Future<Output = Result<ExitCode, RevError>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(body) {
        Ok(code) => code,
        Err(err) => {
            match &err {
                RevError::FailOn { .. } => {}
                _ => eprintln!("error: {err}"),
            }
            ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(1))
        }
    }
}
