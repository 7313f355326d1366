//! The mutating commands, each a [`crate::driver::Mutation`]: its plan (from `plan/`), its
//! words (from `output/`) and its execution (from `exec/`), put together for the driver.

pub mod prune;
pub mod prune_clusters;
pub mod relabel;
pub mod restart;
