//! The assistant's brain: no Kubernetes and no HTTP server in here.

pub mod checkin;
pub mod goals;
pub mod plugins;
pub mod store;

pub use checkin::CheckIn;
pub use store::{Store, StoreError};
