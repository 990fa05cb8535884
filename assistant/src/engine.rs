//! The conversation engine: what the webhook worker and `wellbeing up` call for every message,
//! check-in prompt, export and forget.
//!
//! [`Assistant::handle_message`] is a pipeline: redact -> crisis check -> extract (LLM or
//! offline) -> merge into an open follow-up or start a check-in -> decide the one follow-up ->
//! reply in the persona's voice -> write everything in one transaction. Decisions are pure
//! functions in this module, persona.rs and safety.rs; the I/O is the store and the LLM.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::instrument;

use crate::checkin::{CheckIn, missing_required};
use crate::extract::llm::{Extraction, extract_or_fallback};
use crate::llm::types::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestMessage, ChatCompletionRequestToolMessage, ChatCompletionRequestToolMessageContent,
    ChatCompletionToolChoiceOption, ToolChoiceOptions,
};
use crate::llm::{ChatRequest, LlmClient, LlmRouter, LlmTask, system_message, user_message};
use crate::persona::{ActivePersona, PersonaRegistry, Tone, choose_prompt, followup_question, template_reply};
use crate::redact::{self, Redacted};
use crate::safety;
use crate::store::{Store, StoreError};

pub use wellbeing_crds::persona::Channel;

/// Told to a user whose message contained something that looked like a credential.
pub const REDACTION_NOTICE: &str = "I removed something from your message that looked like a password, key or \
token, so it was never stored or sent anywhere. Please don't share secrets in chat: run `wellbeing secrets \
resolve` on your machine to hand them to the assistant safely.";

/// How the engine behaves; every field has a default.
#[derive(Clone, Debug)]
pub struct AssistantConfig {
    /// A message outside the follow-up's thread still answers it within this time (default 2 h).
    pub followup_window: chrono::Duration,
    /// A message is linked to the latest unanswered check-in prompt sent within this time
    /// (default 4 h), or to the prompt whose thread it is in.
    pub prompt_window: chrono::Duration,
    /// Write replies with the LLM when one is configured (default true); templates otherwise.
    pub llm_replies: bool,
    /// Rounds of tool calls an LLM reply may make (default 3).
    pub tool_rounds: u32,
    /// Time budget of one plugin tool call (default 10 s).
    pub tool_timeout: Duration,
    /// How long a reply waits for plugins not connected yet before offering the tools of those
    /// that are (default 10 s; a Python plugin host starts in about a second).
    pub discovery_timeout: Duration,
}

impl Default for AssistantConfig {
    fn default() -> Self {
        AssistantConfig {
            followup_window: chrono::Duration::hours(2),
            prompt_window: chrono::Duration::hours(4),
            llm_replies: true,
            tool_rounds: 3,
            tool_timeout: Duration::from_secs(10),
            discovery_timeout: Duration::from_secs(10),
        }
    }
}

/// One message from a user, as the webhook (or the local page) hands it over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncomingMessage {
    /// Idempotency key: Slack's `event_id`, or a generated id for other channels.
    pub event_id: String,
    /// Stable user id, e.g. "slack:T123:U456" or "local:me".
    pub user_id: String,
    pub channel: Channel,
    /// The raw text; redacted before it is stored or sent anywhere.
    pub text: String,
    /// The thread replies go into: Slack's `thread_ts` when the message is in a thread, else the
    /// message's own `ts` (so the answer starts a thread under it).
    pub thread_ref: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// What kind of message the assistant sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutgoingKind {
    /// The answer to the user's message.
    Reply,
    /// The one question about a check-in's missing fields.
    FollowUp,
    /// The crisis reply with resources; nothing else is sent with it.
    Crisis,
    /// "I'm an AI assistant, not a substitute for professional care", on first contact.
    Disclaimer,
    /// A notice about the message itself (a credential was removed).
    Notice,
}

impl OutgoingKind {
    /// The `interactions.kind` value.
    pub fn as_str(self) -> &'static str {
        match self {
            OutgoingKind::Reply => "reply",
            OutgoingKind::FollowUp => "followup",
            OutgoingKind::Crisis => "crisis",
            OutgoingKind::Disclaimer => "disclaimer",
            OutgoingKind::Notice => "notice",
        }
    }

    fn parse(kind: &str) -> Option<OutgoingKind> {
        [
            OutgoingKind::Reply,
            OutgoingKind::FollowUp,
            OutgoingKind::Crisis,
            OutgoingKind::Disclaimer,
            OutgoingKind::Notice,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }
}

/// One message to send, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    pub text: String,
    /// The thread to post in (the incoming message's `thread_ref`).
    pub thread_ref: Option<String>,
    pub kind: OutgoingKind,
}

/// Everything one message led to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Messages to send, in order.
    pub replies: Vec<OutgoingMessage>,
    /// The check-in row created or updated.
    pub checkin_id: Option<i64>,
    /// That check-in as it stands (after merging a follow-up answer).
    pub checkin: Option<CheckIn>,
    /// The message was crisis language: only the crisis reply is sent.
    pub crisis: bool,
    /// Part of the message looked like a credential and was removed.
    pub redacted: bool,
    /// "llm" or "offline": the extractor of this message (in a replay: of the stored check-in).
    pub extractor: Option<String>,
    /// A follow-up question was asked for this check-in.
    pub followup_asked: bool,
    /// This message answered an open follow-up and was merged into its check-in (not known in a
    /// replay: false there).
    pub merged: bool,
    /// The message was already handled: the replies and flags are the stored ones, `checkin` is
    /// the check-in as it stands now, and nothing was written.
    pub replayed: bool,
}

/// A check-in as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredCheckIn {
    pub id: i64,
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    /// The day the check-in is about, in the persona's time zone (backfill aware).
    pub local_date: NaiveDate,
    pub checkin: CheckIn,
    /// "llm" or "offline".
    pub extractor: String,
    pub model: Option<String>,
    pub persona_name: String,
    pub persona_version: String,
    pub prompt_id: Option<i64>,
    pub thread_ref: Option<String>,
    pub crisis: bool,
}

/// A recorded check-in prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckinPrompt {
    pub id: i64,
    pub user_id: String,
    pub text: String,
    pub persona_name: String,
    pub persona_version: String,
    pub slot: Option<DateTime<Utc>>,
    /// Where it was posted, once [`Assistant::mark_prompt_delivered`] was called.
    pub channel_ref: Option<String>,
    pub thread_ref: Option<String>,
}

impl CheckinPrompt {
    /// Whether delivery was confirmed (a retry of an undelivered prompt should send it again).
    pub fn delivered(&self) -> bool {
        self.channel_ref.is_some() || self.thread_ref.is_some()
    }
}

/// The result of [`Assistant::record_checkin_prompt`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SentPrompt {
    /// Newly recorded: send it, then call [`Assistant::mark_prompt_delivered`].
    New(CheckinPrompt),
    /// This slot was recorded before (a retried CronJob): send it again only if it was not
    /// delivered.
    AlreadySent(CheckinPrompt),
}

impl SentPrompt {
    pub fn prompt(&self) -> &CheckinPrompt {
        match self {
            SentPrompt::New(p) | SentPrompt::AlreadySent(p) => p,
        }
    }
}

/// Rows deleted per table by [`Assistant::forget_user`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetReport {
    pub deleted: BTreeMap<String, usize>,
}

impl ForgetReport {
    pub fn total(&self) -> usize {
        self.deleted.values().sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("failed to open the store")]
    Store(#[from] StoreError),
    #[error("failed to query the database")]
    Sql(#[from] rusqlite::Error),
    #[error("failed to encode or decode stored JSON")]
    Json(#[from] serde_json::Error),
    #[error("failed to find check-in prompt {0}")]
    PromptNotFound(i64),
    #[error("failed to accept a message without {0}")]
    Invalid(&'static str),
}

impl EngineError {
    /// Low-cardinality label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            EngineError::Store(_) => "store",
            EngineError::Sql(_) => "sql",
            EngineError::Json(_) => "json",
            EngineError::PromptNotFound(_) => "prompt_not_found",
            EngineError::Invalid(_) => "invalid",
        }
    }
}

/// The assistant. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Assistant {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    personas: PersonaRegistry,
    llm: LlmRouter,
    config: AssistantConfig,
    plugins: Option<Arc<crate::plugins::PluginPool>>,
}

impl std::fmt::Debug for Assistant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assistant")
            .field("store", &self.inner.store)
            .field("llm", &self.inner.llm.describe())
            .field("plugins", &self.inner.plugins.is_some())
            .finish()
    }
}

/// An open follow-up a message may answer.
struct MergeTarget {
    checkin_id: i64,
    followup_id: i64,
    checkin: CheckIn,
}

/// What one message will write, decided before the transaction.
struct Plan {
    crisis: bool,
    replies: Vec<OutgoingMessage>,
    checkin: Option<PlannedCheckIn>,
}

struct PlannedCheckIn {
    checkin: CheckIn,
    extraction: Extraction,
    /// `Some`: merge into this check-in and close its follow-up.
    merge: Option<MergeTarget>,
    /// New check-ins only: the follow-up question and the fields it asks about.
    followup: Option<(String, Vec<String>)>,
    local_date: NaiveDate,
    prompt_id: Option<i64>,
}

impl Assistant {
    /// `llm`: one endpoint for every task (today's flags), or none. [`Assistant::with_router`]
    /// routes tasks to several.
    pub fn new(store: Store, personas: PersonaRegistry, llm: Option<LlmClient>, config: AssistantConfig) -> Assistant {
        Assistant { inner: Arc::new(Inner { store, personas, llm: LlmRouter::from(llm), config, plugins: None }) }
    }

    /// Route each LLM task by `router` instead.
    pub fn with_router(self, router: LlmRouter) -> Assistant {
        let Inner { store, personas, llm: _, config, plugins } = &*self.inner;
        Assistant {
            inner: Arc::new(Inner {
                store: store.clone(),
                personas: personas.clone(),
                llm: router,
                config: config.clone(),
                plugins: plugins.clone(),
            }),
        }
    }

    /// Offer these plugins' tools (with an LLM) or call relevant ones directly (without).
    pub fn with_plugins(self, plugins: Arc<crate::plugins::PluginPool>) -> Assistant {
        let Inner { store, personas, llm, config, plugins: _ } = &*self.inner;
        Assistant {
            inner: Arc::new(Inner {
                store: store.clone(),
                personas: personas.clone(),
                llm: llm.clone(),
                config: config.clone(),
                plugins: Some(plugins),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn personas(&self) -> &PersonaRegistry {
        &self.inner.personas
    }

    /// Where each LLM task goes (the plugin gateway and the insights use it too).
    pub fn llm(&self) -> &LlmRouter {
        &self.inner.llm
    }

    pub fn config(&self) -> &AssistantConfig {
        &self.inner.config
    }

    /// Handle one message. Idempotent per `event_id`: a second call returns the stored outcome
    /// (with `replayed: true`) and writes nothing.
    #[instrument(skip_all, fields(event_id = %msg.event_id, channel = ?msg.channel))]
    pub async fn handle_message(&self, msg: IncomingMessage) -> Result<Outcome, EngineError> {
        if msg.event_id.trim().is_empty() {
            return Err(EngineError::Invalid("an event id"));
        }
        if msg.user_id.trim().is_empty() {
            return Err(EngineError::Invalid("a user id"));
        }
        if let Some(outcome) = self.replay(&msg.event_id)? {
            tracing::debug!("message already handled");
            return Ok(outcome);
        }
        let persona = self.inner.personas.active();
        let redacted = redact::redact(&msg.text);
        if redacted.redacted() {
            tracing::info!(kinds = ?redacted.kinds, "removed credential-like text from a message");
        }
        let first_contact = !self.disclaimer_shown(&msg.user_id)?;
        let assessment = safety::assess(&redacted.text);
        let plan = if assessment.crisis {
            tracing::warn!(signal = assessment.signal, "crisis language in a message");
            crisis_plan(&persona, &msg)
        } else {
            let merge = self.merge_target(&msg)?;
            let extraction = self.extract(&persona, &redacted.text).await;
            if extraction.checkin.crisis {
                // The phrase list missed what the model saw; err towards caution.
                tracing::warn!(signal = "extractor", "crisis language in a message");
                crisis_plan(&persona, &msg)
            } else {
                self.checkin_plan(&persona, &msg, &redacted, extraction, merge, first_contact).await?
            }
        };
        self.commit(&msg, &persona, &redacted, plan)
    }

    /// Extract with the LLM when configured, else (or on any failure) offline.
    async fn extract(&self, persona: &ActivePersona, text: &str) -> Extraction {
        let route = self.inner.llm.route(LlmTask::Extraction, &persona.spec().models);
        let (client, model) = (route.as_ref().map(|r| &r.client), route.as_ref().map(|r| r.model()));
        extract_or_fallback(client, model, text, crate::extract::offline::extract).await
    }

    async fn checkin_plan(
        &self,
        persona: &ActivePersona,
        msg: &IncomingMessage,
        redacted: &Redacted,
        extraction: Extraction,
        merge: Option<MergeTarget>,
        first_contact: bool,
    ) -> Result<Plan, EngineError> {
        let required = &persona.spec().required_fields;
        let tone = persona.tone();
        let mut replies = Vec::new();
        let out = |text: String, kind| OutgoingMessage { text, thread_ref: msg.thread_ref.clone(), kind };
        if first_contact {
            replies.push(out(safety::DISCLAIMER.to_string(), OutgoingKind::Disclaimer));
        }
        if redacted.redacted() {
            replies.push(out(REDACTION_NOTICE.to_string(), OutgoingKind::Notice));
        }
        let (checkin, followup) = match &merge {
            Some(target) => {
                let mut merged = target.checkin.clone();
                merged.merge(&extraction.checkin);
                merged.missing = missing_required(&merged, required);
                // A check-in is followed up at most once, whatever is still missing.
                (merged, None)
            }
            None => {
                let mut fresh = extraction.checkin.clone();
                fresh.missing = missing_required(&fresh, required);
                let question = if is_empty_checkin(&fresh) {
                    None // nothing understood: no check-in to follow up
                } else {
                    followup_question(&fresh.missing, tone)
                        .map(|q| (q, fresh.missing.iter().take(2).cloned().collect::<Vec<_>>()))
                };
                (fresh, question)
            }
        };
        if merge.is_none() && is_empty_checkin(&checkin) {
            // "hi", "thanks!": nothing to log. Answer without creating a check-in row.
            let text = match tone {
                Tone::Direct => "Got it. Tell me how you're doing whenever you like: mood, energy, sleep, food.",
                _ => "Thanks! Whenever you like, tell me how you're doing: mood, energy, sleep, food, anything.",
            };
            replies.push(out(text.to_string(), OutgoingKind::Reply));
            return Ok(Plan { crisis: false, replies, checkin: None });
        }
        // An answer to a follow-up is acknowledged for what it adds, not the whole check-in again.
        let acknowledged = if merge.is_some() { &extraction.checkin } else { &checkin };
        let reply = self.compose_reply(persona, &redacted.text, acknowledged).await;
        replies.push(out(reply, OutgoingKind::Reply));
        if let Some((question, _)) = &followup {
            replies.push(out(question.clone(), OutgoingKind::FollowUp));
        }
        let local_date = local_date(msg.received_at, persona.time_zone(), extraction.checkin.day_offset);
        let prompt_id = if merge.is_none() { self.prompt_for(msg)? } else { None };
        Ok(Plan {
            crisis: false,
            replies,
            checkin: Some(PlannedCheckIn { checkin, extraction, merge, followup, local_date, prompt_id }),
        })
    }

    /// The reply in the persona's voice: LLM when configured (falling back to the template on
    /// any failure), template otherwise. Plugins: offered as tools to the LLM, or, without one,
    /// the relevant ones are called directly and their suggestion is appended.
    async fn compose_reply(&self, persona: &ActivePersona, text: &str, checkin: &CheckIn) -> String {
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
    async fn chat_with_tools(&self, llm: &LlmClient, mut request: ChatRequest) -> Option<String> {
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
    async fn run_tool(
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

    /// Without an LLM: call the plugins whose triggers match (at most [`MAX_DIRECT_PLUGINS`]) with
    /// `{"text": ..}` as the plugin contract says, and keep their suggestions.
    async fn plugin_suggestions(
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

    /// Write everything one message decided, in one transaction. A concurrent handler of the
    /// same event that got there first wins; this one then returns its outcome.
    fn commit(
        &self,
        msg: &IncomingMessage,
        persona: &ActivePersona,
        redacted: &Redacted,
        plan: Plan,
    ) -> Result<Outcome, EngineError> {
        let now = crate::store::now_rfc3339();
        let received = rfc3339(msg.received_at);
        let persona_name = persona.name().to_string();
        let persona_version = persona.version();
        let channel = channel_str(msg.channel);
        let mut conn = self.inner.store.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO people (person_id, created_at) VALUES (?1, ?2) ON CONFLICT (person_id) DO NOTHING",
            params![msg.user_id, received],
        )?;
        record_persona_version(&tx, persona, &now)?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO interactions (user_id, channel, direction, kind, text, created_at, thread_ref,
                 persona_name, persona_version, event_id, flagged, redacted)
             VALUES (?1, ?2, 'in', 'message', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                msg.user_id,
                channel,
                redacted.text,
                received,
                msg.thread_ref,
                persona_name,
                persona_version,
                msg.event_id,
                plan.crisis,
                redacted.redacted()
            ],
        )?;
        if inserted == 0 {
            drop(tx);
            drop(conn);
            return self.replay(&msg.event_id)?.ok_or(EngineError::Invalid("a stored outcome"));
        }
        let inbound_id = tx.last_insert_rowid();
        let mut outcome = Outcome {
            replies: plan.replies.clone(),
            checkin_id: None,
            checkin: None,
            crisis: plan.crisis,
            redacted: redacted.redacted(),
            extractor: None,
            followup_asked: false,
            merged: false,
            replayed: false,
        };
        if let Some(planned) = plan.checkin {
            let data = serde_json::to_string(&planned.checkin)?;
            let checkin_id = match &planned.merge {
                Some(target) => {
                    tx.execute("UPDATE checkins SET data = ?1 WHERE id = ?2", params![data, target.checkin_id])?;
                    tx.execute(
                        "UPDATE followups SET answered_at = ?1 WHERE id = ?2 AND answered_at IS NULL",
                        params![received, target.followup_id],
                    )?;
                    outcome.merged = true;
                    target.checkin_id
                }
                None => {
                    tx.execute(
                        "INSERT INTO checkins (user_id, created_at, local_date, data, extractor, model, persona_name,
                             persona_version, prompt_id, thread_ref, crisis)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0)",
                        params![
                            msg.user_id,
                            received,
                            planned.local_date.to_string(),
                            data,
                            planned.extraction.extractor.as_str(),
                            planned.extraction.model,
                            persona_name,
                            persona_version,
                            planned.prompt_id,
                            msg.thread_ref
                        ],
                    )?;
                    let id = tx.last_insert_rowid();
                    if let Some(prompt_id) = planned.prompt_id {
                        tx.execute(
                            "UPDATE checkin_prompts SET answered_at = ?1 WHERE id = ?2 AND answered_at IS NULL",
                            params![received, prompt_id],
                        )?;
                    }
                    if let Some((question, fields)) = &planned.followup {
                        // UNIQUE (checkin_id): the schema itself guarantees one follow-up. It is
                        // asked "at" the message's time: the answer window is measured in message
                        // time, so a backlog drained late still merges what belongs together.
                        tx.execute(
                            "INSERT INTO followups (checkin_id, user_id, fields, question, thread_ref, asked_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![
                                id,
                                msg.user_id,
                                serde_json::to_string(fields)?,
                                question,
                                msg.thread_ref,
                                received
                            ],
                        )?;
                        outcome.followup_asked = true;
                    }
                    id
                }
            };
            tx.execute("UPDATE interactions SET checkin_id = ?1 WHERE id = ?2", params![checkin_id, inbound_id])?;
            outcome.checkin_id = Some(checkin_id);
            outcome.extractor = Some(planned.extraction.extractor.as_str().to_string());
            outcome.checkin = Some(planned.checkin);
        }
        for reply in &plan.replies {
            tx.execute(
                "INSERT INTO interactions (user_id, channel, direction, kind, text, created_at, thread_ref,
                     persona_name, persona_version, checkin_id, event_id, flagged)
                 VALUES (?1, ?2, 'out', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    msg.user_id,
                    channel,
                    reply.kind.as_str(),
                    reply.text,
                    now,
                    reply.thread_ref,
                    persona_name,
                    persona_version,
                    outcome.checkin_id,
                    msg.event_id,
                    reply.kind == OutgoingKind::Crisis
                ],
            )?;
        }
        let disclaimed = plan.replies.iter().any(|r| matches!(r.kind, OutgoingKind::Disclaimer | OutgoingKind::Crisis));
        if disclaimed {
            // The crisis reply says it is an AI assistant, too.
            tx.execute("UPDATE people SET disclaimer_shown = 1 WHERE person_id = ?1", params![msg.user_id])?;
        }
        tx.commit()?;
        tracing::info!(
            checkin_id = outcome.checkin_id,
            crisis = outcome.crisis,
            merged = outcome.merged,
            followup = outcome.followup_asked,
            extractor = outcome.extractor.as_deref(),
            "handled message"
        );
        Ok(outcome)
    }

    /// The stored outcome of an event already handled.
    fn replay(&self, event_id: &str) -> Result<Option<Outcome>, EngineError> {
        stored_outcome(&self.inner.store, event_id)
    }

    fn disclaimer_shown(&self, user_id: &str) -> Result<bool, EngineError> {
        let shown: Option<bool> = self
            .inner
            .store
            .conn()
            .query_row("SELECT disclaimer_shown FROM people WHERE person_id = ?1", params![user_id], |r| r.get(0))
            .optional()?;
        Ok(shown.unwrap_or(false))
    }

    /// The open follow-up this message answers: the one whose thread it is in, else the latest
    /// unanswered one of this user asked within `followup_window`.
    fn merge_target(&self, msg: &IncomingMessage) -> Result<Option<MergeTarget>, EngineError> {
        let conn = self.inner.store.conn();
        let since = rfc3339(msg.received_at - self.inner.config.followup_window);
        let row: Option<(i64, i64, String)> = conn
            .query_row(
                "SELECT f.checkin_id, f.id, c.data FROM followups f JOIN checkins c ON c.id = f.checkin_id
                 WHERE f.user_id = ?1 AND f.answered_at IS NULL
                   AND ((?2 IS NOT NULL AND f.thread_ref = ?2) OR f.asked_at >= ?3)
                 ORDER BY (?2 IS NOT NULL AND f.thread_ref = ?2) DESC, f.asked_at DESC, f.id DESC LIMIT 1",
                params![msg.user_id, msg.thread_ref, since],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(checkin_id, followup_id, data)| {
            Ok(MergeTarget { checkin_id, followup_id, checkin: serde_json::from_str(&data)? })
        })
        .transpose()
    }

    /// The check-in prompt this message answers: the one whose thread it is in, else the latest
    /// unanswered one sent within `prompt_window` before it.
    fn prompt_for(&self, msg: &IncomingMessage) -> Result<Option<i64>, EngineError> {
        let conn = self.inner.store.conn();
        let since = rfc3339(msg.received_at - self.inner.config.prompt_window);
        let until = rfc3339(msg.received_at);
        Ok(conn
            .query_row(
                "SELECT id FROM checkin_prompts
                 WHERE user_id = ?1 AND answered_at IS NULL
                   AND ((?2 IS NOT NULL AND thread_ref = ?2) OR (sent_at >= ?3 AND sent_at <= ?4))
                 ORDER BY (?2 IS NOT NULL AND thread_ref = ?2) DESC, sent_at DESC, id DESC LIMIT 1",
                params![msg.user_id, msg.thread_ref, since, until],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Pick the active persona's check-in prompt for `user_id` and record it. With a `slot`
    /// (the scheduled time), a second call for the same slot returns [`SentPrompt::AlreadySent`].
    #[instrument(skip(self))]
    pub fn record_checkin_prompt(
        &self,
        user_id: &str,
        channel: Channel,
        slot: Option<DateTime<Utc>>,
    ) -> Result<SentPrompt, EngineError> {
        if user_id.trim().is_empty() {
            return Err(EngineError::Invalid("a user id"));
        }
        let persona = self.inner.personas.active();
        let text = choose_prompt(persona.spec(), &mut rand::rng());
        let now = crate::store::now_rfc3339();
        let slot_text = slot.map(rfc3339);
        let mut conn = self.inner.store.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(slot_text) = &slot_text
            && let Some(existing) = prompt_by_slot(&tx, user_id, slot_text)?
        {
            return Ok(SentPrompt::AlreadySent(existing));
        }
        tx.execute(
            "INSERT INTO people (person_id, created_at) VALUES (?1, ?2) ON CONFLICT (person_id) DO NOTHING",
            params![user_id, now],
        )?;
        record_persona_version(&tx, &persona, &now)?;
        tx.execute(
            "INSERT INTO checkin_prompts (user_id, persona_name, persona_version, prompt, sent_at, slot)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![user_id, persona.name(), persona.version(), text, now, slot_text],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO interactions (user_id, channel, direction, kind, text, created_at, persona_name, persona_version)
             VALUES (?1, ?2, 'out', 'checkin_prompt', ?3, ?4, ?5, ?6)",
            params![user_id, channel_str(channel), text, now, persona.name(), persona.version()],
        )?;
        tx.commit()?;
        Ok(SentPrompt::New(CheckinPrompt {
            id,
            user_id: user_id.to_string(),
            text,
            persona_name: persona.name().to_string(),
            persona_version: persona.version(),
            slot,
            channel_ref: None,
            thread_ref: None,
        }))
    }

    /// Record where a prompt was posted, so replies in its thread are linked to it.
    #[instrument(skip(self))]
    pub fn mark_prompt_delivered(
        &self,
        prompt_id: i64,
        channel_ref: Option<String>,
        thread_ref: Option<String>,
    ) -> Result<(), EngineError> {
        let changed = self.inner.store.conn().execute(
            "UPDATE checkin_prompts SET channel_ref = ?1, thread_ref = ?2 WHERE id = ?3",
            params![channel_ref, thread_ref, prompt_id],
        )?;
        if changed == 0 {
            return Err(EngineError::PromptNotFound(prompt_id));
        }
        Ok(())
    }

    /// Check-ins created at or after `since`, oldest first; `None`: every user's.
    pub fn checkins_since(
        &self,
        user_id: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Vec<StoredCheckIn>, EngineError> {
        let conn = self.inner.store.conn();
        let mut stmt = conn.prepare(
            "SELECT id, user_id, created_at, local_date, data, extractor, model, persona_name, persona_version,
                    prompt_id, thread_ref, crisis
             FROM checkins WHERE (?1 IS NULL OR user_id = ?1) AND created_at >= ?2 ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map(params![user_id, rfc3339(since)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Option<i64>>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, bool>(11)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                id,
                user_id,
                created_at,
                local_date,
                data,
                extractor,
                model,
                persona_name,
                persona_version,
                prompt_id,
                thread_ref,
                crisis,
            ) = row?;
            out.push(StoredCheckIn {
                id,
                user_id,
                created_at: parse_time(&created_at),
                local_date: local_date.parse().unwrap_or_default(),
                checkin: serde_json::from_str(&data)?,
                extractor,
                model,
                persona_name,
                persona_version,
                prompt_id,
                thread_ref,
                crisis,
            });
        }
        Ok(out)
    }

    /// Everything stored about `user_id` (`None`: every user, for the single-user local mode):
    /// every row of every table with a `user_id` column, plus the persona versions they name.
    pub fn export_user(&self, user_id: Option<&str>) -> Result<Value, EngineError> {
        let conn = self.inner.store.conn();
        let mut tables = serde_json::Map::new();
        for table in user_tables(&conn)? {
            let sql = format!("SELECT * FROM \"{table}\" WHERE {OF_PERSON} ORDER BY rowid");
            let mut stmt = conn.prepare(&sql)?;
            let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
            let rows = stmt.query_map(params![user_id], |r| {
                let mut obj = serde_json::Map::new();
                for (i, name) in columns.iter().enumerate() {
                    obj.insert(name.clone(), sql_to_json(r.get_ref(i)?));
                }
                Ok(Value::Object(obj))
            })?;
            tables.insert(table, Value::Array(rows.collect::<Result<Vec<_>, _>>()?));
        }
        let mut stmt = conn.prepare(
            "SELECT version, name, spec, first_seen FROM persona_versions WHERE version IN (
                 SELECT persona_version FROM interactions WHERE (?1 IS NULL OR user_id = ?1)
                 UNION SELECT persona_version FROM checkins WHERE (?1 IS NULL OR user_id = ?1))
             ORDER BY first_seen",
        )?;
        let personas = stmt
            .query_map(params![user_id], |r| {
                Ok(serde_json::json!({
                    "version": r.get::<_, String>(0)?,
                    "name": r.get::<_, String>(1)?,
                    "spec": serde_json::from_str::<Value>(&r.get::<_, String>(2)?).unwrap_or(Value::Null),
                    "first_seen": r.get::<_, String>(3)?,
                }))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        // Who the person is on each channel: their own data too, though configuration, not history.
        let mut stmt = conn.prepare(
            "SELECT p.person_id, p.created_at, i.channel, i.address, i.first_seen
             FROM people p LEFT JOIN identities i ON i.person_id = p.person_id
             WHERE (?1 IS NULL OR p.person_id = ?1) ORDER BY p.created_at, i.first_seen",
        )?;
        let people = stmt
            .query_map(params![user_id], |r| {
                Ok(serde_json::json!({
                    "person_id": r.get::<_, String>(0)?,
                    "created_at": r.get::<_, String>(1)?,
                    "channel": r.get::<_, Option<String>>(2)?,
                    "address": r.get::<_, Option<String>>(3)?,
                    "first_seen": r.get::<_, Option<String>>(4)?,
                }))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(serde_json::json!({
            "format": "wellbeing-export/v1",
            "exported_at": crate::store::now_rfc3339(),
            "user_id": user_id,
            "people": people,
            "tables": tables,
            "persona_versions": personas,
        }))
    }

    /// Delete everything stored about `user_id` (`None`: every user), in one transaction, then
    /// checkpoint the WAL so deleted rows do not linger in it.
    #[instrument(skip(self))]
    pub fn forget_user(&self, user_id: Option<&str>) -> Result<ForgetReport, EngineError> {
        let mut conn = self.inner.store.conn();
        let tables = user_tables(&conn)?;
        // Overwrite deleted content with zeros instead of leaving it in free pages.
        conn.execute_batch("PRAGMA secure_delete = ON")?;
        let result = (|| -> Result<ForgetReport, EngineError> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Rows reference each other (follow-ups -> check-ins -> prompts); checking foreign keys
            // at commit lets the tables go in any order.
            tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
            let mut report = ForgetReport::default();
            for table in &tables {
                let count: i64 = tx.query_row(
                    &format!("SELECT COUNT(*) FROM \"{table}\" WHERE {OF_PERSON}"),
                    params![user_id],
                    |r| r.get(0),
                )?;
                report.deleted.insert(table.clone(), usize::try_from(count).unwrap_or_default());
            }
            for table in &tables {
                tx.execute(&format!("DELETE FROM \"{table}\" WHERE {OF_PERSON}"), params![user_id])?;
            }
            // The person stays served (who is served is configuration), but starts over: the
            // disclaimer comes again with the next message.
            tx.execute(
                "UPDATE people SET disclaimer_shown = 0 WHERE (?1 IS NULL OR person_id = ?1)",
                params![user_id],
            )?;
            tx.commit()?;
            Ok(report)
        })();
        conn.execute_batch("PRAGMA secure_delete = OFF")?;
        let report = result?;
        // In-memory databases have no WAL; the pragma then reports an error row, not a failure.
        let _: Option<i64> = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0)).optional()?;
        tracing::info!(rows = report.total(), "forgot user data");
        Ok(report)
    }

    /// What the assistant can do, with the disclaimer.
    pub fn help_text(&self) -> String {
        let persona = self.inner.personas.active();
        format!(
            "Hi, I'm {name}. Tell me how you're doing any time (mood, energy, sleep, food, water, movement, \
stress) and I'll keep track, ask about anything important that's missing, and help you keep up your goals. \
I'll also check in now and then.\n\n\
• `/checkin <how you're doing>`: log a check-in, e.g. `/checkin slept great, ran 5k`\n\
• `/wellbeing help`: this message\n\
• `/wellbeing export`: get a JSON file with everything I've stored about you\n\
• `/wellbeing forget`: delete everything I've stored about you (asks to confirm)\n\n\
Never send passwords, API keys or tokens in chat: run `wellbeing secrets resolve` instead.\n\n{disclaimer}",
            name = persona.spec().display_name,
            disclaimer = safety::DISCLAIMER,
        )
    }
}

/// Longest tool result shown to the model; plugin output beyond this is noise for a short reply.
const MAX_TOOL_RESULT_CHARS: usize = 4000;
/// Plugins called directly per message without an LLM: a reply with more suggestions is a list.
const MAX_DIRECT_PLUGINS: usize = 2;
/// Longest plain-text plugin result appended to a template reply.
const MAX_SUGGESTION_CHARS: usize = 500;

/// What a plugin result says to the user without an LLM to phrase it: its `suggestion` (or
/// `message`, `tip`, `summary`, `text`) field, or its text when that is short prose, not JSON.
fn suggestion_text(structured: Option<&Value>, text: &str) -> Option<String> {
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

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn crisis_plan(persona: &ActivePersona, msg: &IncomingMessage) -> Plan {
    Plan {
        crisis: true,
        replies: vec![OutgoingMessage {
            text: safety::crisis_reply(&persona.spec().crisis_resources),
            thread_ref: msg.thread_ref.clone(),
            kind: OutgoingKind::Crisis,
        }],
        checkin: None,
    }
}

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

/// Nothing understood: no state, no event, no intention.
fn is_empty_checkin(c: &CheckIn) -> bool {
    let mut blank = c.clone();
    blank.missing.clear();
    blank.day_offset = 0;
    blank == CheckIn::default()
}

/// The day a check-in is about: the local date of `at` in `tz`, shifted by `day_offset`.
pub fn local_date(at: DateTime<Utc>, tz: chrono_tz::Tz, day_offset: i32) -> NaiveDate {
    let date = at.with_timezone(&tz).date_naive();
    date.checked_add_signed(chrono::Duration::days(i64::from(day_offset))).unwrap_or(date)
}

fn channel_str(channel: Channel) -> &'static str {
    match channel {
        Channel::Slack => "slack",
        Channel::Sms => "sms",
        Channel::Email => "email",
        Channel::Local => "local",
    }
}

use wellbeing_common::time::rfc3339_secs as rfc3339;

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

fn record_persona_version(conn: &Connection, persona: &ActivePersona, now: &str) -> Result<(), EngineError> {
    conn.execute(
        "INSERT OR IGNORE INTO persona_versions (version, name, spec, first_seen) VALUES (?1, ?2, ?3, ?4)",
        params![persona.version(), persona.name(), serde_json::to_string(persona.spec())?, now],
    )?;
    Ok(())
}

fn prompt_by_slot(conn: &Connection, user_id: &str, slot: &str) -> Result<Option<CheckinPrompt>, EngineError> {
    Ok(conn
        .query_row(
            "SELECT id, prompt, persona_name, persona_version, slot, channel_ref, thread_ref
             FROM checkin_prompts WHERE user_id = ?1 AND slot = ?2",
            params![user_id, slot],
            |r| {
                Ok(CheckinPrompt {
                    id: r.get(0)?,
                    user_id: user_id.to_string(),
                    text: r.get(1)?,
                    persona_name: r.get(2)?,
                    persona_version: r.get(3)?,
                    slot: r.get::<_, Option<String>>(4)?.map(|s| parse_time(&s)),
                    channel_ref: r.get(5)?,
                    thread_ref: r.get(6)?,
                })
            },
        )
        .optional()?)
}

/// Rows of person `?1` (NULL: everyone): keyed by their person id, or (the inbox and deliveries,
/// which are written before anyone is told apart) by the key of one of their identities.
const OF_PERSON: &str = "(?1 IS NULL OR user_id = ?1
    OR user_id IN (SELECT channel || ':' || address FROM identities WHERE person_id = ?1))";

/// Every table with a `user_id` column (ours and those other parts of the assistant add), in
/// name order.
fn user_tables(conn: &Connection) -> Result<Vec<String>, EngineError> {
    let mut stmt = conn.prepare(
        "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) c
         WHERE m.type = 'table' AND c.name = 'user_id' ORDER BY m.name",
    )?;
    Ok(stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?)
}

/// A column value as JSON; text that holds JSON (check-in data, payloads) is embedded as JSON.
fn sql_to_json(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => {
            let text = String::from_utf8_lossy(t);
            let trimmed = text.trim_start();
            if (trimmed.starts_with('{') || trimmed.starts_with('['))
                && let Ok(json) = serde_json::from_str::<Value>(&text)
            {
                return json;
            }
            Value::String(text.into_owned())
        }
        ValueRef::Blob(b) => Value::String(b.iter().map(|x| format!("{x:02x}")).collect()),
    }
}

/// What handling `event_id` led to, if it was handled; writes nothing. None also for a message
/// that never reached the engine (refused: someone this installation does not serve).
pub fn stored_outcome(store: &Store, event_id: &str) -> Result<Option<Outcome>, EngineError> {
    let conn = store.conn();
    let inbound: Option<(Option<i64>, bool, bool)> = conn
        .query_row(
            "SELECT checkin_id, flagged, redacted FROM interactions WHERE event_id = ?1 AND direction = 'in'",
            params![event_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((checkin_id, flagged, redacted)) = inbound else { return Ok(None) };
    let mut stmt = conn.prepare(
        "SELECT kind, text, thread_ref FROM interactions WHERE event_id = ?1 AND direction = 'out' ORDER BY id",
    )?;
    let replies = stmt
        .query_map(params![event_id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?
        .filter_map(|row| match row {
            Ok((kind, text, thread_ref)) => {
                OutgoingKind::parse(&kind).map(|kind| Ok(OutgoingMessage { text, thread_ref, kind }))
            }
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stored = match checkin_id {
        Some(id) => conn
            .query_row("SELECT data, extractor FROM checkins WHERE id = ?1", params![id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?,
        None => None,
    };
    let (checkin, extractor) = match stored {
        Some((data, extractor)) => (Some(serde_json::from_str(&data)?), Some(extractor)),
        None => (None, None),
    };
    Ok(Some(Outcome {
        followup_asked: replies.iter().any(|r| r.kind == OutgoingKind::FollowUp),
        replies,
        checkin_id,
        checkin,
        crisis: flagged,
        redacted,
        extractor,
        merged: false,
        replayed: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_date_follows_the_time_zone_and_backfill() {
        let at: DateTime<Utc> = "2026-03-01T23:30:00Z".parse().unwrap();
        assert_eq!(local_date(at, chrono_tz::UTC, 0).to_string(), "2026-03-01");
        assert_eq!(local_date(at, chrono_tz::Europe::Berlin, 0).to_string(), "2026-03-02");
        assert_eq!(local_date(at, chrono_tz::Europe::Berlin, -1).to_string(), "2026-03-01");
        assert_eq!(local_date(at, chrono_tz::America::Los_Angeles, 0).to_string(), "2026-03-01");
    }

    #[test]
    fn an_empty_extraction_is_recognised() {
        assert!(is_empty_checkin(&CheckIn { missing: vec!["mood".into()], ..Default::default() }));
        assert!(!is_empty_checkin(&CheckIn { mood: Some("ok".into()), ..Default::default() }));
    }

    #[test]
    fn outgoing_kinds_round_trip_through_their_stored_names() {
        for kind in [
            OutgoingKind::Reply,
            OutgoingKind::FollowUp,
            OutgoingKind::Crisis,
            OutgoingKind::Disclaimer,
            OutgoingKind::Notice,
        ] {
            assert_eq!(OutgoingKind::parse(kind.as_str()), Some(kind));
        }
    }
}
