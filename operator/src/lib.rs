//! `wellbeing-operator`: kube-runtime controllers for Personas, Goals, Plugins and
//! SecretRequirements, leader election, the operator's HTTP endpoints, and the secret stores.
//!
//! Each controller is a pipeline: fetch what the decision needs (I/O), decide (a pure function in
//! `build` or the module itself), apply children by server-side apply, then write the status
//! only when it changed, with an Event for each condition transition.

pub mod apply;
pub mod backoff;
pub mod config;
pub mod context;
pub mod error;
pub mod events;
pub mod failure;
pub mod goal;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod persona;
pub mod plugin;
pub mod requirement;
pub mod run;
pub mod secret_store;
pub mod security;
pub mod server;

#[cfg(test)]
mod test_support;

pub use config::{OperatorConfig, PluginDefaults, SecretDelivery};
pub use context::Context;
pub use error::Error;
pub use run::{LeaderOptions, RunError, RunOptions, Scope, run, run_controllers};

pub use wellbeing_common::error_chain;
