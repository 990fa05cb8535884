//! Twilio's inbound adapter (`POST /sms/twilio`, the Messaging webhook): the signature is checked
//! over the URL Twilio requested and the POST parameters (or, for a JSON body, the URL's
//! `bodySHA256`) before anything is read; a message becomes one inbox row keyed by its
//! `MessageSid` (`sms:<MessageSid>`), so a redelivery is stored once.
//!
//! STOP, START and HELP (and Twilio's synonyms) are handled here, before the inbox: STOP and START
//! change the opt-out before Twilio gets its answer, HELP is answered in the TwiML response. None
//! of them reaches the engine, the check-in tables or the conversation history. DONE, SNOOZE and
//! SKIP from a person served answer their latest SMS reminder (answered in the TwiML too); with no
//! reminder to answer they are an ordinary message.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::app::AppState;
use crate::channel::{self, InboundAdapter, InboundRequest, Parsed, Received, Refusal};
use crate::inbox::{NewRow, Payload, SmsText};
use crate::sms::keywords::{self, HELP_TEXT, Keyword};
use crate::sms::opt_out;
use crate::sms::signature::{self, AuthToken};

/// Twilio's own limit on an inbound body is 1,600 characters; anything past that is not a text.
const MAX_TEXT_CHARS: usize = 1600;

/// The Messaging webhook of one request, with the URL Twilio signed.
pub struct TwilioInbound<'a> {
    pub token: &'a AuthToken,
    /// The full public URL of this request as Twilio requested it (see [`public_url`]).
    pub url: String,
}

/// The URL Twilio signed: `TWILIO_WEBHOOK_URL` (the address Twilio is given, in front of any
/// TLS-terminating proxy) with this request's query string, or else what the server itself saw.
pub fn public_url(configured: Option<&str>, headers: &HeaderMap, uri: &Uri) -> String {
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    match configured {
        Some(url) => format!("{}{query}", url.split(['?', '#']).next().unwrap_or(url)),
        None => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
            format!("http://{host}{}{query}", uri.path())
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The POST parameters of a form body (names and values decoded), or None.
fn form_params(body: &[u8]) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body).ok()
}

/// What a keyword message asks for, answered by the handler (never stored in the inbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeywordAnswer {
    /// stop | start | help, or an action id (DONE, SNOOZE, SKIP: `wellbeing.goal.*`).
    pub keyword: String,
    pub from: String,
    pub message_sid: String,
    /// For an action word that turns out to be an ordinary message: what the row needs.
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub text: String,
}

impl InboundAdapter for TwilioInbound<'_> {
    fn name(&self) -> &'static str {
        "sms"
    }

    fn verify(&self, request: &InboundRequest<'_>) -> Result<(), Refusal> {
        let header = request.headers.get(signature::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        let refused = |e: signature::SignatureError| Refusal::new(StatusCode::FORBIDDEN, e.label());
        if signature::has_body_hash(&self.url) || is_json(request.headers) {
            return signature::verify_json(self.token, &self.url, request.body, header).map_err(refused);
        }
        let params = form_params(request.body).ok_or(Refusal::new(StatusCode::FORBIDDEN, "twilio_malformed_form"))?;
        signature::verify_form(self.token, &self.url, &params, header).map_err(refused)
    }

    fn parse(&self, request: &InboundRequest<'_>) -> Result<Parsed, Refusal> {
        let params: Vec<(String, String)> = if is_json(request.headers) || signature::has_body_hash(&self.url) {
            let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(request.body)
                .map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "malformed_json"))?;
            object.into_iter().filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string()))).collect()
        } else {
            form_params(request.body).ok_or(Refusal::new(StatusCode::BAD_REQUEST, "malformed_form"))?
        };
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let sid = get("MessageSid").or_else(|| get("SmsSid")).filter(|s| !s.is_empty() && s.len() <= 64);
        let (Some(sid), Some(from)) = (sid, get("From")) else {
            return Err(Refusal::new(StatusCode::BAD_REQUEST, "sms_fields"));
        };
        // Only phone numbers (not `whatsapp:+...` or other Twilio channels, not short codes).
        let Ok(identity) = format!("sms:{from}").parse::<wellbeing_assistant::people::Identity>() else {
            return Ok(Parsed::Ignored("sms_sender"));
        };
        let text = get("Body").unwrap_or_default();
        let word = keywords::keyword(text).map(Keyword::as_str).or_else(|| crate::sms::actions::action_word(text));
        if let Some(word) = word {
            let answer = KeywordAnswer {
                keyword: word.to_string(),
                from: identity.address.clone(),
                message_sid: sid.to_string(),
                to: get("To").unwrap_or_default().to_string(),
                text: text.trim().to_string(),
            };
            return Ok(Parsed::Answer(serde_json::to_value(answer).expect("a keyword answer serializes")));
        }
        let text = text.trim();
        if text.is_empty() {
            // A picture alone (MMS): nothing to read.
            return Ok(Parsed::Ignored("sms_empty"));
        }
        let text: String = text.chars().take(MAX_TEXT_CHARS).collect();
        Ok(Parsed::Rows(vec![NewRow {
            event_id: format!("sms:{sid}"),
            user_id: identity.key(),
            payload: Payload::Sms(SmsText {
                from: identity.address,
                to: get("To").unwrap_or_default().to_string(),
                text,
                message_sid: sid.to_string(),
            }),
        }]))
    }
}

/// TwiML: nothing to send now (replies follow through the REST API).
fn twiml(message: Option<&str>) -> Response {
    let body = match message {
        Some(text) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            xml_escape(text)
        ),
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_string(),
    };
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `POST /sms/twilio`: verify, honour keywords, commit to the inbox, answer with TwiML.
#[instrument(level = "debug", skip_all, fields(event_id))]
pub async fn twilio(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(sms) = state.sms.as_ref() else {
        return (StatusCode::NOT_FOUND, "SMS is not configured").into_response();
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            state.metrics.event("rejected", "body");
            return (rejection.status(), "request body refused").into_response();
        }
    };
    let adapter = TwilioInbound { token: &sms.auth_token, url: public_url(sms.webhook_url.as_deref(), &headers, &uri) };
    let request = InboundRequest { headers: &headers, body: &body, now: state.clock.now() };
    match channel::receive(&adapter, &state.inbox, &state.metrics, request).await {
        Received::Refused(refusal) if refusal.status == StatusCode::FORBIDDEN => {
            (StatusCode::FORBIDDEN, "invalid Twilio signature").into_response()
        }
        Received::Refused(refusal) => (refusal.status, refusal.reason).into_response(),
        Received::Answer(answer) => match serde_json::from_value::<KeywordAnswer>(answer) {
            Ok(answer) => keyword(&state, answer).await,
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer").into_response(),
        },
        Received::Ignored(_) => twiml(None),
        Received::Stored(rows) => {
            if let Some((event_id, _)) = rows.first() {
                tracing::Span::current().record("event_id", event_id.as_str());
            }
            twiml(None)
        }
        Received::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "could not record the message").into_response(),
    }
}

/// STOP and START change the opt-out before Twilio is answered; HELP is answered in the TwiML;
/// DONE, SNOOZE and SKIP answer a reminder.
async fn keyword(state: &AppState, answer: KeywordAnswer) -> Response {
    let kind = match answer.keyword.as_str() {
        "stop" => Keyword::Stop,
        "start" => Keyword::Start,
        "help" => Keyword::Help,
        _ => return act(state, answer).await,
    };
    state.metrics.event("keyword", kind.as_str());
    if kind == Keyword::Help {
        tracing::info!(message_sid = %answer.message_sid, "answered HELP");
        return twiml(Some(HELP_TEXT));
    }
    let store = state.engine.store().clone();
    let (from, sid) = (answer.from.clone(), answer.message_sid.clone());
    let changed = tokio::task::spawn_blocking(move || {
        let conn = store.conn();
        // One transaction: a keyword is remembered as seen only together with its effect.
        let tx = conn.unchecked_transaction().map_err(crate::inbox::InboxError::Query)?;
        let now = wellbeing_assistant::store::now_rfc3339();
        if !opt_out::first_time(&tx, &sid, &now)? {
            return Ok(false);
        }
        match kind {
            Keyword::Stop => opt_out::record_stop(&tx, &from, "keyword", &now)?,
            _ => {
                opt_out::record_start(&tx, &from)?;
            }
        }
        tx.commit().map_err(crate::inbox::InboxError::Query)?;
        Ok::<_, crate::inbox::InboxError>(true)
    })
    .await;
    match changed {
        Ok(Ok(acted)) => {
            if acted {
                tracing::info!(message_sid = %answer.message_sid, keyword = kind.as_str(), "SMS opt-out changed");
            } else {
                tracing::info!(message_sid = %answer.message_sid, keyword = kind.as_str(), "ignored a replayed keyword");
            }
            // Twilio confirms STOP and START itself (its Advanced Opt-Out); after STOP nothing of
            // ours may be sent, so the answer is empty either way.
            twiml(None)
        }
        Ok(Err(error)) => {
            tracing::error!(error = %wellbeing_common::error_chain(&error), "failed to record an SMS opt-out");
            (StatusCode::INTERNAL_SERVER_ERROR, "could not record the opt-out").into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "could not record the opt-out").into_response(),
    }
}

/// DONE, SNOOZE or SKIP from a person served: applied to their latest SMS reminder and answered
/// in the TwiML (nothing is answered to a number that texted STOP). From someone not served, or
/// with no reminder to answer, the word is an ordinary message and goes to the inbox.
async fn act(state: &AppState, answer: KeywordAnswer) -> Response {
    let identity = wellbeing_assistant::people::Identity {
        channel: wellbeing_crds::persona::Channel::Sms,
        address: answer.from.clone(),
    };
    let person = match state.people.admit(identity.clone()).await {
        Ok(Some(person)) => person,
        Ok(None) => return as_message(state, &identity, answer).await,
        Err(error) => {
            tracing::error!(error = %wellbeing_common::error_chain(&error), "failed to tell who texted");
            return (StatusCode::INTERNAL_SERVER_ERROR, "could not tell who wrote").into_response();
        }
    };
    let active = state.engine.personas().active();
    let (store, goals, tz, now) =
        (state.engine.store().clone(), state.goals.clone(), active.time_zone(), state.clock.now());
    let (action_id, from) = (answer.keyword.clone(), answer.from.clone());
    let applied = tokio::task::spawn_blocking(move || -> Result<Option<(String, bool)>, String> {
        let conn = store.conn();
        let err = |e: &dyn std::error::Error| wellbeing_common::error_chain(e);
        let Some(value) = crate::sms::actions::latest_reminder(&conn, &person, now).map_err(|e| err(&e))? else {
            return Ok(None);
        };
        let opted_out = opt_out::is_opted_out(&conn, &from).map_err(|e| err(&e))?;
        drop(conn);
        let outcome = wellbeing_assistant::goals::actions::handle(&store, &goals, &action_id, &value, &person, tz, now)
            .map_err(|e| err(&e))?;
        Ok(outcome.map(|o| (o.reply, opted_out)))
    })
    .await;
    match applied {
        Ok(Ok(Some((reply, opted_out)))) => {
            state.metrics.event("keyword", "reminder_action");
            tracing::info!(message_sid = %answer.message_sid, action = %answer.keyword, "answered a reminder by SMS");
            if opted_out {
                twiml(None)
            } else {
                twiml(Some(&crate::sms::segments::fit(&reply, crate::sms::segments::MAX_SEGMENTS)))
            }
        }
        Ok(Ok(None)) => as_message(state, &identity, answer).await,
        Ok(Err(error)) => {
            tracing::error!(error = %error, "failed to answer a reminder by SMS");
            (StatusCode::INTERNAL_SERVER_ERROR, "could not record the answer").into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "could not record the answer").into_response(),
    }
}

/// An action word with nothing to act on: the ordinary inbox row it would have been.
async fn as_message(
    state: &AppState,
    identity: &wellbeing_assistant::people::Identity,
    answer: KeywordAnswer,
) -> Response {
    let row = NewRow {
        event_id: format!("sms:{}", answer.message_sid),
        user_id: identity.key(),
        payload: Payload::Sms(SmsText {
            from: answer.from,
            to: answer.to,
            text: answer.text,
            message_sid: answer.message_sid,
        }),
    };
    match state.inbox.insert(row).await {
        Ok(inserted) => {
            let outcome = if matches!(inserted, crate::inbox::Inserted::New(_)) { "accepted" } else { "duplicate" };
            state.metrics.event(outcome, "sms");
            twiml(None)
        }
        Err(error) => {
            state.metrics.event("rejected", "inbox");
            tracing::error!(error = %error, "failed to write the inbox");
            (StatusCode::INTERNAL_SERVER_ERROR, "could not record the message").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_url_is_the_configured_one_with_the_requests_query() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        let uri: Uri = "/sms/twilio?bodySHA256=ab".parse().unwrap();
        assert_eq!(public_url(None, &headers, &uri), "http://127.0.0.1:8080/sms/twilio?bodySHA256=ab");
        assert_eq!(
            public_url(Some("https://wellbeing.example.org/hooks/sms"), &headers, &uri),
            "https://wellbeing.example.org/hooks/sms?bodySHA256=ab"
        );
        let plain: Uri = "/sms/twilio".parse().unwrap();
        assert_eq!(
            public_url(Some("https://wellbeing.example.org/hooks/sms?old=1"), &headers, &plain),
            "https://wellbeing.example.org/hooks/sms"
        );
    }
}
