//! Plugin tools as the LLM sees them: OpenAI `tools` entries named `plugin__tool`.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// `_meta` key the plugin host puts on each tool (plugins/README.md): "run" tools are offered to
/// the LLM, a "match" tool answers whether the plugin fits a message. Tools of MCP servers we did
/// not write carry no role and count as "run".
pub const ROLE_KEY: &str = "dev.wellbeing/role";

/// OpenAI allows `^[a-zA-Z0-9_-]{1,64}$` for function names.
const MAX_FUNCTION_NAME: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolRole {
    Run,
    Match,
}

/// One tool of one plugin, ready to be offered to an LLM.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolDefinition {
    /// The name the LLM calls: `plugin__tool`, sanitised and at most 64 characters.
    pub function_name: String,
    pub plugin: String,
    pub tool: String,
    pub description: String,
    /// The tool's JSON schema, as the server declared it.
    pub parameters: Value,
    pub role: ToolRole,
}

impl ToolDefinition {
    pub fn new(plugin: &str, tool: &rmcp::model::Tool) -> Self {
        let role = match tool.meta.as_ref().and_then(|m| m.get(ROLE_KEY)).and_then(Value::as_str) {
            Some("match") => ToolRole::Match,
            _ => ToolRole::Run,
        };
        Self {
            function_name: function_name(plugin, &tool.name),
            plugin: plugin.to_string(),
            tool: tool.name.to_string(),
            description: tool.description.as_deref().unwrap_or_default().to_string(),
            parameters: Value::Object((*tool.input_schema).clone()),
            role,
        }
    }

    /// The entry of a chat-completions request's `tools` array.
    pub fn to_openai(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.function_name,
                "description": self.description,
                "parameters": self.parameters,
            }
        })
    }
}

/// `plugin__tool` with characters outside `[a-zA-Z0-9_-]` replaced by `_`. Names longer than 64
/// keep their first 55 characters plus `_` and 8 hex digits of a SHA-256 of the full name, so two
/// long names stay apart.
pub fn function_name(plugin: &str, tool: &str) -> String {
    let full: String = format!("{plugin}__{tool}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    if full.len() <= MAX_FUNCTION_NAME {
        return full;
    }
    let digest = hex::encode(Sha256::digest(full.as_bytes()));
    format!("{}_{}", &full[..MAX_FUNCTION_NAME - 9], &digest[..8])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn names_are_openai_safe_and_distinct() {
        assert_eq!(function_name("hydration", "hydration"), "hydration__hydration");
        assert_eq!(function_name("sleep.winddown", "plan now"), "sleep_winddown__plan_now");
        let a = function_name(&"p".repeat(40), &"a".repeat(40));
        let b = function_name(&"p".repeat(40), &format!("{}b", "a".repeat(39)));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        let re = regex::Regex::new("^[a-zA-Z0-9_-]{1,64}$").unwrap();
        assert!(re.is_match(&a) && re.is_match(&b));
    }

    #[test]
    fn openai_shape_and_role_from_meta() {
        let schema = json!({"type": "object", "properties": {"text": {"type": "string"}}});
        let mut tool = rmcp::model::Tool::new("hydration", "Drink more", Arc::new(schema.as_object().unwrap().clone()));
        let def = ToolDefinition::new("hydration", &tool);
        assert_eq!(def.role, ToolRole::Run);
        assert_eq!(
            def.to_openai(),
            json!({"type": "function", "function": {
                "name": "hydration__hydration", "description": "Drink more", "parameters": schema}})
        );
        let mut meta = rmcp::model::MetaObject::default();
        meta.insert(ROLE_KEY.into(), json!("match"));
        tool.meta = Some(meta);
        assert_eq!(ToolDefinition::new("hydration", &tool).role, ToolRole::Match);
    }
}
