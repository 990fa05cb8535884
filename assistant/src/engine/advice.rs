//! Plugin advice without an LLM: the plugins whose triggers match a message are called
//! directly and their suggestion is appended to the template reply.
use super::*;

impl Assistant {
    /// Without an LLM: call the plugins whose triggers match (at most [`MAX_DIRECT_PLUGINS`]) with
    /// `{"text": ..}` as the plugin contract says, and keep their suggestions.
    pub(super) async fn plugin_suggestions(
        &self,
        pool: &crate::plugins::PluginPool,
        text: &str,
        checkin: &CheckIn,
    ) -> Vec<String> {
        let pillars: Vec<String> = checkin.pillars.iter().map(|p| p.as_str().to_string()).collect();
        let endpoints = pool.endpoints();
        let relevant = crate::plugins::relevant(&endpoints, text, &pillars);
        let mut out = Vec::new();
        for endpoint in relevant.into_iter().take(MAX_DIRECT_PLUGINS) {
            match pool.matches(&endpoint.name, text, &pillars).await {
                Ok(Some(false)) => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(plugin = %endpoint.name, error = %e, "plugin match tool failed");
                    continue;
                }
            }
            let tools = match pool.tools(&endpoint.name).await {
                Ok(tools) => tools,
                Err(e) => {
                    tracing::warn!(plugin = %endpoint.name, error = %e, "plugin unavailable");
                    continue;
                }
            };
            let Some(tool) = tools.iter().find(|t| t.role == crate::plugins::ToolRole::Run) else { continue };
            let mut arguments = serde_json::Map::new();
            arguments.insert("text".to_string(), Value::String(text.to_string()));
            match pool.call(&endpoint.name, &tool.tool, arguments, Some(self.inner.config.tool_timeout)).await {
                Ok(outcome) => {
                    if let Some(s) = suggestion_text(outcome.structured.as_ref(), &outcome.text) {
                        out.push(redact::redact(&s).text);
                    }
                }
                Err(e) => tracing::warn!(plugin = %endpoint.name, tool = %tool.tool, error = %e, "plugin tool failed"),
            }
        }
        out
    }
}

/// Plugins called directly per message without an LLM: a reply with more suggestions is a list.
pub(super) const MAX_DIRECT_PLUGINS: usize = 2;
/// Longest plain-text plugin result appended to a template reply.
pub(super) const MAX_SUGGESTION_CHARS: usize = 500;

/// What a plugin result says to the user without an LLM to phrase it: its `suggestion` (or
/// `message`, `tip`, `summary`, `text`) field, or its text when that is short prose, not JSON.
pub(super) fn suggestion_text(structured: Option<&Value>, text: &str) -> Option<String> {
    let parsed;
    let object = match structured {
        Some(v) => Some(v),
        None => {
            parsed = serde_json::from_str::<Value>(text).ok();
            parsed.as_ref()
        }
    };
    if let Some(object) = object.and_then(Value::as_object) {
        return ["suggestion", "message", "tip", "summary", "text"]
            .iter()
            .find_map(|k| object.get(*k).and_then(Value::as_str))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| truncate_chars(s, MAX_SUGGESTION_CHARS));
    }
    let text = text.trim();
    (!text.is_empty() && !text.starts_with(['{', '['])).then(|| truncate_chars(text, MAX_SUGGESTION_CHARS))
}
