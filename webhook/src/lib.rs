//! The assistant's HTTP face: Slack endpoints, the durable inbox and its worker, the internal API
//! for check-in Jobs, health and metrics.

/// `Debug` for a newtype that holds a credential: the type's name and `<redacted>`, never the
/// value, so a token cannot reach a log through `{:?}`.
macro_rules! redacted_debug {
    ($($name:ident),+ $(,)?) => {$(
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    )+};
}

pub mod app;
pub mod auth;
pub mod channel;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod deliveries;
pub mod email;
pub mod gateway;
pub mod goal_status;
pub mod goals_loop;
pub mod health;
pub mod inbox;
pub mod internal;
pub mod job_log;
pub mod local;
pub mod metrics;
pub mod nudges;
pub mod people;
pub mod personas_kube;
pub mod pipeline;
pub mod server;
pub mod slack;
pub mod sms;
pub mod worker;
