//! Reply composition in the persona's voice: the LLM with the plugins' tools (a bounded tool
//! loop), or the template.
use super::*;

impl Assistant {
    /// The reply in the persona's voice: LLM when configured (falling back to the template on
    /// any failure), template otherwise. Plugins: offered as tools to the LLM, or, without one,
    /// the relevant ones are called directly and their suggestion is appended.
    pub(super) async fn compose_reply(&self, persona: &ActivePersona, text: &str, checkin: &CheckIn) -> String {
        let template = template_reply(checkin, persona.tone());
        let spec = persona.spec();
        let route = self.inner.llm.route(LlmTask::Reply, &spec.models);
        let Some(route) = route.filter(|_| self.inner.config.llm_replies) else {
            let notes = match &self.inner.plugins {
                Some(pool) => self.plugin_suggestions(pool, text, checkin).await,
                None => Vec::new(),
            };
            return std::iter::once(template).chain(notes).collect::<Vec<_>>().join("\n\n");
        };
        let system = reply_system_prompt(persona);
        let structured = serde_json::to_string(checkin).unwrap_or_default();
        let user = format!(
            "The person wrote (credentials already removed):\n{text}\n\nWhat I understood, as JSON:\n{structured}"
        );
        let request = ChatRequest {
            model: Some(route.model().to_string()),
            messages: vec![system_message(&system), user_message(&user)],
            max_completion_tokens: route.max_completion_tokens(),
            temperature: Some(0.7),
            ..Default::default()
        };
        match self.chat_with_tools(&route.client, request).await {
            Some(reply) => redact::redact(&reply).text,
            None => template,
        }
    }

    /// A chat completion that may call plugin tools for up to `tool_rounds` rounds, each call
    /// bounded by `tool_timeout`; a failing tool is reported to the model as unavailable and
    /// never fails the reply. `None` when the LLM fails or answers with no text.
    pub(super) async fn chat_with_tools(&self, llm: &LlmClient, mut request: ChatRequest) -> Option<String> {
        let pool = self.inner.plugins.as_deref();
        let tools = match pool {
            Some(pool) => {
                // Connect plugins not used yet, but never let a plugin that will not start hold the
                // reply for its whole connect timeout: what is connected by then is offered.
                if tokio::time::timeout(self.inner.config.discovery_timeout, pool.discover()).await.is_err() {
                    tracing::warn!("plugin discovery is slow; offering the tools connected so far");
                }
                pool.tool_definitions().await
            }
            None => Vec::new(),
        };
        request.tools = tools.iter().filter_map(|t| serde_json::from_value(t.to_openai()).ok()).collect();
        let rounds = self.inner.config.tool_rounds;
        for round in 0..=rounds {
            if round == rounds && !request.tools.is_empty() {
                // Out of rounds: ask for the answer with what the tools said so far.
                request.tool_choice = Some(ChatCompletionToolChoiceOption::Mode(ToolChoiceOptions::None));
            }
            let completion = match llm.chat(request.clone()).await {
                Ok(completion) => completion,
                Err(e) => {
                    tracing::warn!(error = e.label(), round, "LLM reply failed, using the template");
                    return None;
                }
            };
            let calls: Vec<ChatCompletionMessageToolCall> = completion
                .message
                .tool_calls
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|call| match call {
                    ChatCompletionMessageToolCalls::Function(f) => Some(f),
                    ChatCompletionMessageToolCalls::Custom(_) => None,
                })
                .collect();
            let Some(pool) = pool.filter(|_| !calls.is_empty() && round < rounds) else {
                return completion.text().map(str::to_string);
            };
            request.messages.push(ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
                content: None,
                tool_calls: Some(calls.iter().cloned().map(ChatCompletionMessageToolCalls::Function).collect()),
                ..Default::default()
            }));
            for call in &calls {
                let result = self.run_tool(pool, &tools, call).await;
                request.messages.push(ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
                    content: ChatCompletionRequestToolMessageContent::Text(result),
                    tool_call_id: call.id.clone(),
                }));
            }
        }
        None
    }

    /// Run one tool call the model asked for; the text the model is shown in return.
    pub(super) async fn run_tool(
        &self,
        pool: &crate::plugins::PluginPool,
        tools: &[crate::plugins::ToolDefinition],
        call: &ChatCompletionMessageToolCall,
    ) -> String {
        let Some(tool) = tools.iter().find(|t| t.function_name == call.function.name) else {
            return format!("error: there is no tool named {}", call.function.name);
        };
        let arguments = match serde_json::from_str::<Value>(&call.function.arguments) {
            Ok(Value::Object(map)) => map,
            Ok(_) | Err(_) => return "error: the arguments were not a JSON object".to_string(),
        };
        match pool.call(&tool.plugin, &tool.tool, arguments, Some(self.inner.config.tool_timeout)).await {
            Ok(outcome) => truncate_chars(&redact::redact(&outcome.text).text, MAX_TOOL_RESULT_CHARS),
            Err(e) => {
                tracing::warn!(plugin = %tool.plugin, tool = %tool.tool, error = %e, "plugin tool failed");
                "error: the tool is unavailable right now; answer without it".to_string()
            }
        }
    }
}

/// Longest tool result shown to the model; plugin output beyond this is noise for a short reply.
pub(super) const MAX_TOOL_RESULT_CHARS: usize = 4000;

/// The system prompt of a reply: the persona's own, its tone, and the rules every reply keeps.
pub fn reply_system_prompt(persona: &ActivePersona) -> String {
    let spec = persona.spec();
    format!(
        "{system}\n\nYou are {name}. Tone: {tone}.\n\
Reply to the person's check-in in at most three short sentences: acknowledge what they told you and, if it fits, \
offer one small practical suggestion. Do not ask questions (a follow-up, if needed, is sent separately). Never \
diagnose, never give medical advice, and never repeat anything shown as [REDACTED].",
        system = spec.system_prompt.trim(),
        name = spec.display_name,
        tone = spec.tone,
    )
}

pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
