//! The crate's one integration-test binary (one link, shared helpers): fixture tests of the
//! pure analysis and plans, mocked-API tests of the readers and executors, the krew manifests.

mod common;

mod admission_api;
mod analysis;
mod injection;
mod krew_manifests;
mod live_read;
mod plans;
mod probe;
mod prune;
mod prune_api;
mod prune_clusters;
mod read_requests;
mod readme;
mod relabel_requests;
mod restart_probe;
mod rollout_api;
mod runbook;
