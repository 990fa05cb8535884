//! The assistant's brain: no Kubernetes and no HTTP server in here.

pub mod checkin;
pub mod engine;
pub mod extract;
pub mod goals;
pub mod insights;
pub mod llm;
pub mod persona;
pub mod plugin_gateway;
pub mod plugin_gen;
pub mod plugins;
pub mod redact;
pub mod safety;
pub mod store;

pub use checkin::CheckIn;
pub use store::{Store, StoreError};

/// An error and its causes on one line ("a: b: c"), for logs, records and condition messages.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
