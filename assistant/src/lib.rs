//! The assistant's brain: no Kubernetes and no HTTP server in here.

pub mod checkin;
pub mod engine;
pub mod extract;
pub mod goals;
pub mod insights;
pub mod llm;
pub mod message;
pub mod people;
pub mod persona;
pub mod plugin_gateway;
pub mod plugin_gen;
pub mod plugins;
pub mod redact;
pub mod safety;
pub mod store;

pub use checkin::CheckIn;
pub use store::{Store, StoreError};

/// Re-exported so callers keep one path; the helper lives in `wellbeing-common`.
pub use wellbeing_common::error_chain;
