//! Slack's inbound adapter for the Events API: the signature is checked over the raw body before
//! anything in it is read, then the event becomes one inbox row keyed by Slack's `event_id`
//! (Slack resends the same id on every retry).

use axum::http::StatusCode;

use crate::channel::{InboundAdapter, InboundRequest, Parsed, Refusal};
use crate::inbox::{NewRow, Payload};
use crate::slack::events::{self, Decision};
use crate::slack::signature::{self, SigningSecret};

/// `POST /slack/events`.
pub struct SlackEvents<'a> {
    pub secret: &'a SigningSecret,
    /// The bot's own user id, so it never answers itself.
    pub bot_user_id: Option<&'a str>,
}

/// Slack's request signature (`X-Slack-Signature` over `v0:timestamp:body`, five-minute window).
pub fn verify_signature(secret: &SigningSecret, request: &InboundRequest<'_>) -> Result<(), Refusal> {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    signature::verify(
        secret,
        header(signature::TIMESTAMP_HEADER),
        header(signature::SIGNATURE_HEADER),
        request.body,
        request.now.timestamp(),
    )
    .map_err(|error| Refusal::new(StatusCode::UNAUTHORIZED, error.label()))
}

impl InboundAdapter for SlackEvents<'_> {
    fn name(&self) -> &'static str {
        "events"
    }

    fn verify(&self, request: &InboundRequest<'_>) -> Result<(), Refusal> {
        verify_signature(self.secret, request)
    }

    fn parse(&self, request: &InboundRequest<'_>) -> Result<Parsed, Refusal> {
        let envelope: events::Envelope = serde_json::from_slice(request.body)
            .map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "malformed_json"))?;
        Ok(match events::classify(envelope, self.bot_user_id) {
            Decision::UrlVerification(challenge) => Parsed::Answer(serde_json::json!({ "challenge": challenge })),
            Decision::Ignore(reason) => Parsed::Ignored(reason),
            Decision::Accept { event_id, user_key, message } => {
                Parsed::Rows(vec![NewRow { event_id, user_id: user_key, payload: Payload::SlackMessage(message) }])
            }
        })
    }
}
