//! Channel adapters: what each way of reaching a person (Slack, the local page; later SMS and
//! email) provides, so the inbox, the worker and the scheduler treat every channel alike.
//!
//! Inbound, an adapter verifies a request (signature, token) before reading anything in it, then
//! parses it into inbox rows with a stable idempotency key ([`receive`] commits them before the
//! request is answered). Outbound, it renders channel-neutral messages (text plus
//! [`Action`](wellbeing_assistant::message::Action)s) in its own format and sends each at most
//! once, keeping a receipt: Slack's message `ts`, the local page's interaction id.

pub mod local;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::Value;
use wellbeing_assistant::engine::OutgoingMessage as Reply;
use wellbeing_assistant::goals::OutgoingMessage;
use wellbeing_assistant::people::Identity;

use crate::inbox::{InboxError, InboxWriter, Inserted, NewRow, Row};
use crate::metrics::Metrics;
use crate::nudges::{DeliverError, Delivered};
use crate::worker::ProcessError;

/// A request as it arrived: nothing in it is trusted until [`InboundAdapter::verify`] says so.
#[derive(Debug, Clone, Copy)]
pub struct InboundRequest<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub now: DateTime<Utc>,
}

/// Why a request was refused: its HTTP status and a metric label (never the request's content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: &'static str,
}

impl Refusal {
    pub const fn new(status: StatusCode, reason: &'static str) -> Refusal {
        Refusal { status, reason }
    }
}

/// What a verified request carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Messages for the inbox, each with its idempotency key (`NewRow::event_id`).
    Rows(Vec<NewRow>),
    /// Answered at once, nothing stored (Slack's URL verification).
    Answer(Value),
    /// Acknowledged and dropped (a bot's own message, an edit); the reason is a metric label.
    Ignored(&'static str),
}

/// The inbound half of a channel.
pub trait InboundAdapter: Send + Sync {
    /// The channel's name in metrics ("events", "local").
    fn name(&self) -> &'static str;
    /// Whether the request comes from the channel it claims to (a signature, a token). Called
    /// before anything in the body is parsed.
    fn verify(&self, request: &InboundRequest<'_>) -> Result<(), Refusal>;
    /// What a verified request means.
    fn parse(&self, request: &InboundRequest<'_>) -> Result<Parsed, Refusal>;
}

/// What [`receive`] did with a request.
#[derive(Debug)]
pub enum Received {
    Refused(Refusal),
    Answer(Value),
    Ignored(&'static str),
    /// Every row is committed (or was already there: a retry).
    Stored(Vec<(String, Inserted)>),
    /// The inbox could not commit: nothing was acknowledged, so the sender should retry.
    Failed(InboxError),
}

/// Verify, parse, and commit to the durable inbox: the one path every inbound message takes.
pub async fn receive(
    adapter: &dyn InboundAdapter,
    inbox: &InboxWriter,
    metrics: &Metrics,
    request: InboundRequest<'_>,
) -> Received {
    if let Err(refusal) = adapter.verify(&request) {
        metrics.event("rejected", refusal.reason);
        tracing::info!(channel = adapter.name(), reason = refusal.reason, "refused an unverified request");
        return Received::Refused(refusal);
    }
    let rows = match adapter.parse(&request) {
        Err(refusal) => {
            metrics.event("rejected", refusal.reason);
            return Received::Refused(refusal);
        }
        Ok(Parsed::Answer(answer)) => return Received::Answer(answer),
        Ok(Parsed::Ignored(reason)) => {
            metrics.event("ignored", reason);
            return Received::Ignored(reason);
        }
        Ok(Parsed::Rows(rows)) => rows,
    };
    let mut stored = Vec::with_capacity(rows.len());
    for row in rows {
        let key = row.event_id.clone();
        match inbox.insert(row).await {
            Ok(inserted) => {
                let outcome = if matches!(inserted, Inserted::New(_)) { "accepted" } else { "duplicate" };
                metrics.event(outcome, adapter.name());
                stored.push((key, inserted));
            }
            Err(error) => {
                metrics.event("rejected", "inbox");
                tracing::error!(channel = adapter.name(), error = %error, "failed to write the inbox");
                return Received::Failed(error);
            }
        }
    }
    Received::Stored(stored)
}

/// The outbound half of a channel.
#[async_trait]
pub trait OutboundAdapter: Send + Sync {
    /// The engine's answers to one inbox row from `person`, in order, each sent at most once
    /// however often the row is retried.
    async fn reply(&self, row: &Row, person: &str, replies: &[Reply]) -> Result<(), ProcessError>;
    /// Tell someone this installation does not serve that it does not; nothing of theirs is kept.
    async fn refuse(&self, row: &Row) -> Result<(), ProcessError>;
    /// A proactive message (reminder, nudge, pillar question, insight) to a person at `identity`,
    /// at most once per message.
    async fn deliver(&self, identity: &Identity, message: &OutgoingMessage) -> Result<Delivered, DeliverError>;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Notify;

    use super::*;
    use crate::inbox::Payload;

    /// Accepts bodies starting with "ok:", answers "ping", ignores "skip"; the rest is malformed.
    struct Echo;

    impl InboundAdapter for Echo {
        fn name(&self) -> &'static str {
            "echo"
        }
        fn verify(&self, request: &InboundRequest<'_>) -> Result<(), Refusal> {
            match request.headers.get("x-token").map(|v| v.as_bytes()) {
                Some(b"secret") => Ok(()),
                _ => Err(Refusal::new(StatusCode::UNAUTHORIZED, "token")),
            }
        }
        fn parse(&self, request: &InboundRequest<'_>) -> Result<Parsed, Refusal> {
            let body = std::str::from_utf8(request.body).map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "utf8"))?;
            match body {
                "ping" => Ok(Parsed::Answer(serde_json::json!({"pong": true}))),
                "skip" => Ok(Parsed::Ignored("skip")),
                _ => {
                    let key = body.strip_prefix("ok:").ok_or(Refusal::new(StatusCode::BAD_REQUEST, "shape"))?;
                    Ok(Parsed::Rows(vec![NewRow {
                        event_id: format!("echo:{key}"),
                        user_id: "local:me".into(),
                        payload: Payload::Local(crate::inbox::LocalText {
                            identity: "local:me".into(),
                            text: "hi".into(),
                        }),
                    }]))
                }
            }
        }
    }

    #[tokio::test]
    async fn nothing_unverified_or_malformed_reaches_the_inbox_and_retries_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = wellbeing_assistant::Store::open(&dir.path().join("db.sqlite")).unwrap();
        let metrics = Metrics::new();
        let (inbox, thread) = InboxWriter::start(store.path(), Arc::new(Notify::new()), metrics.clone()).unwrap();
        let mut headers = HeaderMap::new();
        let request = |headers: &HeaderMap, body: &'static str| -> InboundRequest<'static> {
            let headers: &'static HeaderMap = Box::leak(Box::new(headers.clone()));
            InboundRequest { headers, body: body.as_bytes(), now: Utc::now() }
        };

        let unsigned = receive(&Echo, &inbox, &metrics, request(&headers, "ok:1")).await;
        assert!(
            matches!(unsigned, Received::Refused(Refusal { status: StatusCode::UNAUTHORIZED, .. })),
            "{unsigned:?}"
        );
        headers.insert("x-token", "secret".parse().unwrap());
        let malformed = receive(&Echo, &inbox, &metrics, request(&headers, "garbage")).await;
        assert!(matches!(malformed, Received::Refused(Refusal { reason: "shape", .. })), "{malformed:?}");
        assert!(matches!(receive(&Echo, &inbox, &metrics, request(&headers, "ping")).await, Received::Answer(_)));
        assert!(matches!(receive(&Echo, &inbox, &metrics, request(&headers, "skip")).await, Received::Ignored("skip")));

        let first = receive(&Echo, &inbox, &metrics, request(&headers, "ok:1")).await;
        let Received::Stored(first) = first else { panic!("{first:?}") };
        assert!(matches!(first.as_slice(), [(key, Inserted::New(_))] if key == "echo:1"));
        let again = receive(&Echo, &inbox, &metrics, request(&headers, "ok:1")).await;
        assert!(matches!(again, Received::Stored(ref rows) if rows[0].1 == Inserted::Duplicate), "{again:?}");

        inbox.shutdown().await;
        thread.join().unwrap();
        let rows: i64 = store.conn().query_row("SELECT COUNT(*) FROM inbox", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 1, "one row for the one verified, well-formed message sent twice");
    }
}
