//! `kubectl rev-prune`: not built yet. It says so plainly rather than pretend.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("kubectl rev-prune is not built yet: see the issue tracker. Nothing was changed.");
    ExitCode::from(1)
}
