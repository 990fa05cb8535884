//! Slack: request signing, Events API payloads, commands and interactivity, the Web API client.

pub mod blocks;
pub mod client;
pub mod commands;
pub mod events;
pub mod signature;
