//! The conversation engine: what the webhook worker and `wellbeing up` call for every message,
//! check-in prompt, export and forget.
//!
//! [`Assistant::handle_message`] is a pipeline: redact -> crisis check -> extract (LLM or
//! offline) -> merge into an open follow-up or start a check-in -> decide the one follow-up ->
//! reply in the persona's voice -> write everything in one transaction. This module is the
//! facade; each step has its own module: `plan` (the pure decisions), `reply` (the reply and the
//! tool loop), `advice` (plugin suggestions without an LLM), `records` (the transaction, replay,
//! follow-ups), `prompts` (check-in prompts), `privacy` (export and forget). Everything a step
//! needs about the person comes from one [`PersonContext`] read when the message arrives.

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

mod advice;
mod plan;
mod privacy;
mod prompts;
mod records;
mod reply;

use plan::{MergeTarget, Plan, crisis_plan};
pub use records::stored_outcome;
use records::{channel_str, parse_time, record_persona_version};
pub use reply::reply_system_prompt;
use reply::truncate_chars;

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

/// One message's person and what applies to them (instead of globals read at every step).
#[derive(Clone, Debug)]
pub struct PersonContext {
    /// The person's id (`people.person_id`, the `user_id` of their rows).
    pub person: String,
    /// The persona that answers them.
    pub persona: ActivePersona,
    /// Their days begin and end here (the persona's time zone: people have no zone of their own
    /// yet).
    pub time_zone: chrono_tz::Tz,
    /// Nothing of theirs was answered yet: the first answer carries the disclaimer.
    pub first_contact: bool,
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
        let ctx = self.person_context(&msg.user_id)?;
        let redacted = redact::redact(&msg.text);
        if redacted.redacted() {
            tracing::info!(kinds = ?redacted.kinds, "removed credential-like text from a message");
        }
        let assessment = safety::assess(&redacted.text);
        let plan = if assessment.crisis {
            tracing::warn!(signal = assessment.signal, "crisis language in a message");
            crisis_plan(&ctx.persona, &msg)
        } else {
            let merge = self.merge_target(&ctx.person, &msg)?;
            let extraction = self.extract(&ctx.persona, &redacted.text).await;
            if extraction.checkin.crisis {
                // The phrase list missed what the model saw; err towards caution.
                tracing::warn!(signal = "extractor", "crisis language in a message");
                crisis_plan(&ctx.persona, &msg)
            } else {
                self.checkin_plan(&ctx, &msg, &redacted, extraction, merge).await?
            }
        };
        self.commit(&msg, &ctx, &redacted, plan)
    }

    /// Who the message is from and what applies to them: read once, used by every step, so a
    /// persona edited mid-message cannot split one answer across two personas.
    pub fn person_context(&self, person: &str) -> Result<PersonContext, EngineError> {
        let persona = self.inner.personas.active();
        let time_zone = persona.time_zone();
        let first_contact = !self.disclaimer_shown(person)?;
        Ok(PersonContext { person: person.to_string(), persona, time_zone, first_contact })
    }

    /// Extract with the LLM when configured, else (or on any failure) offline.
    async fn extract(&self, persona: &ActivePersona, text: &str) -> Extraction {
        let route = self.inner.llm.route(LlmTask::Extraction, &persona.spec().models);
        let (client, model) = (route.as_ref().map(|r| &r.client), route.as_ref().map(|r| r.model()));
        extract_or_fallback(client, model, text, crate::extract::offline::extract).await
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

/// The day a check-in is about: the local date of `at` in `tz`, shifted by `day_offset`.
pub fn local_date(at: DateTime<Utc>, tz: chrono_tz::Tz, day_offset: i32) -> NaiveDate {
    let date = at.with_timezone(&tz).date_naive();
    date.checked_add_signed(chrono::Duration::days(i64::from(day_offset))).unwrap_or(date)
}

use wellbeing_common::time::rfc3339_secs as rfc3339;

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
