//! The common crate of the `kubectl rev-*` suite.
//!
//! Data flows one way: [`flags`] → [`client`] → [`snapshot`] (read; [`view`] does connect →
//! read → analyse in one call) → [`analysis`] (pure) → [`plan`] (pure) → confirm → [`exec`] →
//! [`output`]. Every mutating command is a [`command`] run by the one [`driver`]. Only
//! `client`, `snapshot::live` and the executors talk to the API; everything that decides is
//! pure and tested on fixtures.

pub mod analysis;
pub mod cli;
pub mod client;
pub mod command;
pub mod completion;
pub mod driver;
pub mod error;
pub mod exec;
pub mod flags;
pub mod keys;
pub mod meta;
pub mod output;
pub mod plan;
pub mod probe;
pub mod revision;
pub mod runbook;
pub mod selector;
pub mod snapshot;
pub mod view;

pub use error::{Result, RevError};
