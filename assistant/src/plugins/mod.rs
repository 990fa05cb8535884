//! Plugins as MCP tools: the client pool and its types come from `wellbeing-mcp` (re-exported
//! here so callers keep one path); which plugins fit a message is decided here.
//!
//! The LLM tool-calling loop lives with the assistant core; it takes [`PluginPool::tool_definitions`]
//! (OpenAI `tools` shape), resolves a returned function name with [`PluginPool::resolve`] and runs
//! it with [`PluginPool::call`]. Without an LLM, [`relevant`] picks plugins by their triggers.

mod relevance;

pub use relevance::relevant;
pub use wellbeing_mcp::{
    Invocation, InvocationOutcome, InvocationSink, LocalRuntime, MemorySink, PluginEndpoint, PluginError, PluginPool,
    PluginTransport, PoolConfig, ROLE_KEY, ToolDefinition, ToolOutcome, ToolRole, TracingSink, function_name,
};
