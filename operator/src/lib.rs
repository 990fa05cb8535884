//! placeholder
pub mod secret_store;
