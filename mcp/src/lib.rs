//! Plugins as MCP servers, seen from the client side: where each plugin is served
//! ([`PluginEndpoint`]), its tools in the OpenAI `tools` shape ([`ToolDefinition`]), and a pool of
//! rmcp client connections that lists, caches and calls them ([`PluginPool`]).
//!
//! A crate of its own so the operator can list a Ready plugin's tools without depending on the
//! assistant (SQLite, the LLM client, the NLP rules). Which plugins fit a message, and the LLM
//! tool-calling loop, stay with the assistant.

mod endpoint;
mod pool;
mod tools;

pub use endpoint::{LocalRuntime, PluginEndpoint, PluginTransport};
pub use pool::{
    CLIENT_NAME, Invocation, InvocationOutcome, InvocationSink, MemorySink, PROTOCOL_VERSION, PluginError, PluginPool,
    PoolConfig, ToolOutcome, TracingSink,
};
pub use tools::{ROLE_KEY, ToolDefinition, ToolRole, function_name};
