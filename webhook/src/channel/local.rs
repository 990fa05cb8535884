//! The local page's adapters. Inbound: the API token (and origin) check, then `{text, key}`
//! becomes an inbox row whose idempotency key the page chose, so a resend after a dropped
//! connection is the same message. Outbound: the person's conversation in `interactions` is the
//! page's outbox; the engine has recorded the replies there, and a proactive message is recorded
//! the same way (its receipt is the interaction id).

use async_trait::async_trait;
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use wellbeing_assistant::engine::{Assistant, OutgoingMessage as Reply};
use wellbeing_assistant::goals::OutgoingMessage;
use wellbeing_assistant::people::Identity;

use super::{InboundAdapter, InboundRequest, OutboundAdapter, Parsed, Refusal};
use crate::inbox::{LocalText, NewRow, Payload, Row};
use crate::local::{LocalAuth, MAX_MESSAGE_CHARS};
use crate::nudges::{DeliverError, Delivered, store_on_page};
use crate::worker::ProcessError;

/// The body of `POST /api/local/messages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendRequest {
    pub text: String,
    /// The sender's id for this message, the same on every resend (the page makes one per
    /// message). Without one, the server makes one: such a request is not safe to resend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Longest idempotency key accepted (a UUID is 36 characters).
pub const MAX_KEY_CHARS: usize = 100;

/// The inbox key of a local message: the page's own key, or a random one.
pub fn event_id(key: Option<&str>) -> String {
    format!("local:{}", key.map_or_else(wellbeing_common::id::new_id, str::to_string))
}

/// The inbox row of a message `person` wrote as `identity` on the page or with `wellbeing chat`.
pub fn message_row(identity: &Identity, person: &str, text: &str, key: Option<&str>) -> NewRow {
    NewRow {
        event_id: event_id(key),
        user_id: person.to_string(),
        payload: Payload::Local(LocalText { identity: identity.key(), text: text.to_string() }),
    }
}

/// The local API's inbound adapter for one person at one local identity.
pub struct LocalInbound {
    pub auth: LocalAuth,
    /// Who writes on this page (`local:me`).
    pub identity: Identity,
    /// Their person id (the inbox row's ordering key).
    pub person: String,
}

impl InboundAdapter for LocalInbound {
    fn name(&self) -> &'static str {
        "local"
    }

    fn verify(&self, request: &InboundRequest<'_>) -> Result<(), Refusal> {
        self.auth.check_api(request.headers).map_err(|r| r.refusal())
    }

    fn parse(&self, request: &InboundRequest<'_>) -> Result<Parsed, Refusal> {
        let req: SendRequest = serde_json::from_slice(request.body)
            .map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "malformed_json"))?;
        let text = req.text.trim();
        if text.is_empty() {
            return Err(Refusal::new(StatusCode::BAD_REQUEST, "empty"));
        }
        if text.chars().count() > MAX_MESSAGE_CHARS {
            return Err(Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "too_long"));
        }
        let key = req.key.as_deref().map(str::trim).filter(|k| !k.is_empty());
        if key.is_some_and(|k| k.chars().count() > MAX_KEY_CHARS || k.chars().any(char::is_control)) {
            return Err(Refusal::new(StatusCode::BAD_REQUEST, "key"));
        }
        Ok(Parsed::Rows(vec![message_row(&self.identity, &self.person, text, key)]))
    }
}

/// The local page's outbound adapter.
#[derive(Clone)]
pub struct LocalOutbound {
    engine: Assistant,
}

impl LocalOutbound {
    pub fn new(engine: Assistant) -> LocalOutbound {
        LocalOutbound { engine }
    }
}

#[async_trait]
impl OutboundAdapter for LocalOutbound {
    /// Nothing to send: the engine recorded the replies in the conversation the page shows.
    async fn reply(&self, row: &Row, _person: &str, _replies: &[Reply]) -> Result<(), ProcessError> {
        match row.payload {
            Payload::Local(_) => Ok(()),
            _ => Err(ProcessError::WrongChannel("a Slack row")),
        }
    }

    /// The request waiting for this row tells the writer; nothing is stored.
    async fn refuse(&self, _row: &Row) -> Result<(), ProcessError> {
        Ok(())
    }

    async fn deliver(&self, _identity: &Identity, msg: &OutgoingMessage) -> Result<Delivered, DeliverError> {
        let active = self.engine.personas().active();
        let (name, version) = (active.name().to_string(), active.version());
        let (store, m) = (self.engine.store().clone(), msg.clone());
        let stored = tokio::task::spawn_blocking(move || store_on_page(&store.conn(), &m, &name, &version, Utc::now()))
            .await
            .map_err(DeliverError::Join)?
            .map_err(DeliverError::Local)?;
        Ok(stored.map_or(Delivered::AlreadyOnPage, Delivered::LocalPage))
    }
}
