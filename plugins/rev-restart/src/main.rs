//! `kubectl rev-restart`: not built yet. It says so plainly rather than pretend.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("kubectl rev-restart is not built yet: see the issue tracker. Nothing was changed.");
    ExitCode::from(1)
}
