//! Slack: request signing, Events API payloads, commands and interactivity, the Web API client,
//! and the channel adapters built on them.

pub mod blocks;
pub mod client;
pub mod commands;
pub mod events;
pub mod inbound;
pub mod outbound;
pub mod signature;
