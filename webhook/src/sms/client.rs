//! Twilio's Programmable Messaging REST API: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`
//! with basic auth (account SID, auth token) and the form fields To, From or
//! MessagingServiceSid, and Body. The answer's `sid` is the message's receipt.

use std::time::Duration;

use serde::Deserialize;

use crate::sms::signature::AuthToken;

pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";
/// Twilio answers a send in well under a second; ten is a stuck connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Twilio's error 21610: "Attempt to send to unsubscribed recipient" (the number texted STOP to
/// Twilio directly, or before this installation kept opt-outs).
pub const UNSUBSCRIBED_RECIPIENT: i64 = 21610;

/// Who messages are sent as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sender {
    /// `TWILIO_FROM_NUMBER`: a number of the account, E.164.
    From(String),
    /// `TWILIO_MESSAGING_SERVICE_SID`: Twilio picks the number from the service's pool.
    MessagingService(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered and created no message. `code` is Twilio's error code (its message text
    /// may quote the number, so only the code is kept).
    #[error("Twilio refused the message: HTTP {status}, error code {}", code.map_or("none".to_string(), |c| c.to_string()))]
    Refused { status: u16, code: Option<i64>, retry_after: Option<Duration> },
    #[error("failed to reach Twilio")]
    Transport(#[source] reqwest::Error),
    #[error("failed to read Twilio's answer")]
    Decode(#[source] reqwest::Error),
}

impl TwilioError {
    /// 429, 5xx and transport failures may go through later; other refusals will not.
    pub fn is_retryable(&self) -> bool {
        match self {
            TwilioError::Refused { status, .. } => *status == 429 || *status >= 500,
            TwilioError::Transport(_) | TwilioError::Decode(_) => true,
        }
    }

    /// Whether Twilio certainly did not take the message (so sending it again cannot double it):
    /// it answered with an error, or the connection was never made. A timeout is not certain.
    pub fn surely_not_sent(&self) -> bool {
        match self {
            TwilioError::Refused { .. } => true,
            TwilioError::Transport(e) => e.is_connect(),
            TwilioError::Decode(_) => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TwilioError::Refused { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn code(&self) -> Option<i64> {
        match self {
            TwilioError::Refused { code, .. } => *code,
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    messages_url: String,
    account_sid: String,
    token: AuthToken,
    sender: Sender,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient").field("messages_url", &self.messages_url).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize)]
struct ApiError {
    code: Option<i64>,
}

impl TwilioClient {
    /// `base`: `https://api.twilio.com` (tests: a local fake), no trailing slash needed.
    pub fn new(base: &str, account_sid: &str, token: AuthToken, sender: Sender) -> TwilioClient {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("a reqwest client with a timeout and rustls builds");
        let messages_url = format!("{}/2010-04-01/Accounts/{account_sid}/Messages.json", base.trim_end_matches('/'));
        TwilioClient { http, messages_url, account_sid: account_sid.to_string(), token, sender }
    }

    /// Send `body` to `to`. Returns the message SID.
    pub async fn send(&self, to: &str, body: &str) -> Result<String, TwilioError> {
        let sender = match &self.sender {
            Sender::From(number) => ("From", number.as_str()),
            Sender::MessagingService(sid) => ("MessagingServiceSid", sid.as_str()),
        };
        let form = [("To", to), sender, ("Body", body)];
        let response = self
            .http
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(self.token.expose()))
            .form(&form)
            .send()
            .await
            .map_err(TwilioError::Transport)?;
        let status = response.status();
        if status.is_success() {
            let created: Created = response.json().await.map_err(TwilioError::Decode)?;
            return Ok(created.sid);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let code = response.json::<ApiError>().await.ok().and_then(|e| e.code);
        Err(TwilioError::Refused { status: status.as_u16(), code, retry_after })
    }
}
