//! The crate's one integration-test binary (one link, shared helpers): fixture tests of the
//! pure analysis and plans, mocked-API tests of the readers and executors, the krew manifests.

mod common;

mod analysis;
mod krew_manifests;
mod live_read;
mod plans;
mod prune;
mod prune_api;
mod read_requests;
mod relabel_requests;
