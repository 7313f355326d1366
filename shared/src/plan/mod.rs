//! Pure planning: what each mutating command would do, and the preconditions it checks, from a
//! snapshot and its analysis. A plan is printed, confirmed, then handed to `exec`; nothing
//! outside the plan is ever touched.

pub mod prune;
pub mod prune_clusters;
pub mod relabel;
pub mod restart;
