//! Plugins as MCP tools: where each plugin is served, which ones fit a message, and a pool of
//! MCP client connections (rmcp) that lists, caches and calls their tools.
//!
//! The LLM tool-calling loop lives with the assistant core; it takes [`PluginPool::tool_definitions`]
//! (OpenAI `tools` shape), resolves a returned function name with [`PluginPool::resolve`] and runs
//! it with [`PluginPool::call`]. Without an LLM, [`relevant`] picks plugins by their triggers.

mod endpoint;
mod pool;
mod relevance;
mod tools;

pub use endpoint::{LocalRuntime, PluginEndpoint, PluginTransport};
pub use pool::{
    Invocation, InvocationOutcome, InvocationSink, MemorySink, PluginError, PluginPool, PoolConfig, ToolOutcome,
    TracingSink,
};
pub use relevance::relevant;
pub use tools::{ROLE_KEY, ToolDefinition, ToolRole, function_name};
