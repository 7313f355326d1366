//! The common crate of the `kubectl rev-*` suite.
//!
//! Data flows one way: [`flags`] → [`client`] → [`snapshot`] (read) → [`analysis`] (pure) →
//! plan → confirm → execute → [`output`]. Only `client`, `snapshot::live` and the executors
//! talk to the API; everything that decides is pure and tested on fixtures.

pub mod analysis;
pub mod cli;
pub mod client;
pub mod completion;
pub mod error;
pub mod exec;
pub mod flags;
pub mod meta;
pub mod output;
pub mod plan;
pub mod revision;
pub mod selector;
pub mod snapshot;

pub use error::{Result, RevError};
