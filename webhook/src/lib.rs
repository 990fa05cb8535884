//! The assistant's HTTP face: Slack endpoints, the durable inbox and its worker, the internal API
//! for check-in Jobs, health and metrics.

pub mod dashboard;
pub mod goal_status;
