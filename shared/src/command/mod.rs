//! The mutating commands, each a [`crate::driver::Mutation`]: its plan (from `plan/`), its
//! words (from `output/`) and its execution (from `exec/`), put together for the driver; and
//! the runbook, which only reads (and writes values files).

pub mod prune;
pub mod prune_clusters;
pub mod relabel;
pub mod restart;
pub mod runbook;
