//! One module per subcommand.

pub mod chat;
pub mod checkin;
pub mod checkins;
pub mod crdgen;
pub mod dashboard;
pub mod eval;
pub mod export;
pub mod extract;
pub mod forget;
pub mod insights;
pub mod operator;
pub mod plugin;
pub mod secrets;
pub mod up;
pub mod webhook;
pub mod webhook_plugins;
