//! Twilio's outbound adapter: replies, the refusal, check-in prompts and proactive messages by
//! SMS, each at most once per (key, seq) through the `deliveries` table, never to a number that
//! texted STOP. Text is made GSM-7-friendly and capped at [`MAX_SEGMENTS`] before it is sent.
//!
//! At most once: a delivery is recorded as `posting` before the REST call and `posted` with the
//! message SID after. When Twilio answered with an error (or could not be reached at all) the
//! record is dropped so a retry sends; when the outcome is unknown (a timeout), the record stays
//! and the message is not sent again: Twilio's API cannot be asked "did you get this one?", and a
//! second text is worse than a lost one.

use async_trait::async_trait;
use wellbeing_assistant::engine::OutgoingMessage as Reply;
use wellbeing_assistant::goals::OutgoingMessage;
use wellbeing_assistant::people::{Identity, NOT_SERVED_REPLY};
use wellbeing_crds::persona::Channel;

use crate::channel::OutboundAdapter;
use crate::db::{Db, DbError};
use crate::deliveries::{self, Delivery as Recorded};
use crate::inbox::{InboxError, Payload, Row};
use crate::nudges::{DeliverError, Delivered, message_key};
use crate::sms::client::{TwilioClient, TwilioError, UNSUBSCRIBED_RECIPIENT};
use crate::sms::opt_out;
use crate::sms::segments::{self, MAX_SEGMENTS};
use crate::worker::ProcessError;

/// The `deliveries.channel` of an SMS.
const CHANNEL: &str = "sms";

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Twilio took it: its message SID (now, or on an earlier attempt).
    Sid(String),
    /// The number texted STOP: nothing was sent.
    OptedOut,
    /// An earlier attempt ended without knowing whether Twilio took it: not sent again.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("failed to send the SMS")]
    Twilio(#[source] TwilioError),
    #[error("failed to record the SMS delivery")]
    Db(#[source] DbError),
}

impl SendError {
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Twilio(e) => e.is_retryable(),
            SendError::Db(_) => true,
        }
    }

    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            SendError::Twilio(e) => e.retry_after(),
            SendError::Db(_) => None,
        }
    }
}

/// Sends SMS for the worker, the check-in trigger and the goals loop.
#[derive(Clone, Debug)]
pub struct SmsOutbound {
    db: Db,
    client: TwilioClient,
}

impl SmsOutbound {
    pub fn new(db: Db, client: TwilioClient) -> SmsOutbound {
        SmsOutbound { db, client }
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, InboxError> + Send + 'static,
    ) -> Result<T, SendError> {
        self.db.run(f).await.map_err(SendError::Db)
    }

    /// Whether `number` texted STOP (and not START since).
    pub async fn opted_out(&self, number: &str) -> Result<bool, SendError> {
        let n = number.to_string();
        self.db(move |conn| opt_out::is_opted_out(conn, &n)).await
    }

    /// Send message `seq` of `key` to `to` unless it was sent before or the number opted out.
    pub async fn send_once(&self, key: &str, seq: i64, person: &str, to: &str, text: &str) -> Result<Sent, SendError> {
        if self.opted_out(to).await? {
            tracing::info!(seq, "not sent: the number texted STOP");
            return Ok(Sent::OptedOut);
        }
        let k = key.to_string();
        match self.db(move |conn| deliveries::get(conn, &k, seq)).await? {
            Some(Recorded::Posted { ts, .. }) => return Ok(Sent::Sid(ts.unwrap_or_default())),
            Some(Recorded::Posting { .. }) => {
                tracing::warn!(seq, "an earlier attempt may have sent this SMS; not sending it twice");
                return Ok(Sent::Unknown);
            }
            None => {}
        }
        let body = segments::fit(text, MAX_SEGMENTS);
        let (k, u) = (key.to_string(), person.to_string());
        self.db(move |conn| deliveries::begin(conn, &k, seq, &u, CHANNEL, None)).await?;
        match self.client.send(to, &body).await {
            Ok(sid) => {
                let (k, s) = (key.to_string(), sid.clone());
                self.db(move |conn| deliveries::finish(conn, &k, seq, Some(&s))).await?;
                tracing::debug!(seq, message_sid = %sid, "SMS sent");
                Ok(Sent::Sid(sid))
            }
            Err(error) => {
                // The Twilio error code, never the text or the number.
                tracing::warn!(seq, status = ?error_status(&error), code = ?error.code(), "Twilio did not take an SMS");
                if error.surely_not_sent() {
                    let k = key.to_string();
                    self.db(move |conn| deliveries::abandon(conn, &k, seq)).await?;
                }
                if error.code() == Some(UNSUBSCRIBED_RECIPIENT) {
                    // Opted out with Twilio (perhaps before we kept opt-outs): remember it.
                    let n = to.to_string();
                    let now = wellbeing_assistant::store::now_rfc3339();
                    self.db(move |conn| opt_out::record_stop(conn, &n, "twilio_21610", &now)).await?;
                    return Ok(Sent::OptedOut);
                }
                Err(SendError::Twilio(error))
            }
        }
    }
}

fn error_status(error: &TwilioError) -> Option<u16> {
    match error {
        TwilioError::Refused { status, .. } => Some(*status),
        _ => None,
    }
}

#[async_trait]
impl OutboundAdapter for SmsOutbound {
    async fn reply(&self, row: &Row, person: &str, replies: &[Reply]) -> Result<(), ProcessError> {
        let Payload::Sms(m) = &row.payload else { return Err(ProcessError::WrongChannel("a row of another channel")) };
        for (seq, reply) in replies.iter().enumerate() {
            match self.send_once(&row.event_id, seq as i64, person, &m.from, &reply.text).await? {
                // Nothing more goes to a number that opted out meanwhile.
                Sent::OptedOut => return Ok(()),
                Sent::Sid(_) | Sent::Unknown => {}
            }
        }
        Ok(())
    }

    async fn refuse(&self, row: &Row) -> Result<(), ProcessError> {
        let Payload::Sms(m) = &row.payload else { return Err(ProcessError::WrongChannel("a row of another channel")) };
        self.send_once(&row.event_id, 0, &row.user_id, &m.from, NOT_SERVED_REPLY).await?;
        Ok(())
    }

    /// The message as text; a reminder's buttons become "Reply DONE, SNOOZE or SKIP" (see
    /// [`crate::sms::actions`]), a pillar question's are not offered.
    async fn deliver(&self, identity: &Identity, msg: &OutgoingMessage) -> Result<Delivered, DeliverError> {
        if identity.channel != Channel::Sms {
            return Ok(Delivered::NoChannel);
        }
        let text = crate::sms::actions::with_hint(&msg.text, &msg.actions);
        match self.send_once(&message_key(msg), 0, &msg.user_id, &identity.address, &text).await {
            Ok(Sent::Sid(sid)) => Ok(Delivered::Sms { sid }),
            Ok(Sent::OptedOut) => Ok(Delivered::OptedOut),
            Ok(Sent::Unknown) => Ok(Delivered::Sms { sid: String::new() }),
            Err(error) => Err(DeliverError::Sms(error)),
        }
    }
}

impl From<SendError> for ProcessError {
    fn from(error: SendError) -> ProcessError {
        ProcessError::Sms(error)
    }
}
