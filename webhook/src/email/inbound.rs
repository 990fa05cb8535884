//! What one of Mailgun's route forwards says, read only after its signature is checked: the
//! fields of its "forward" action (`sender`, `from`, `subject`, `body-plain`, `stripped-text`,
//! `Message-Id`, `In-Reply-To`, `References`, and the signed `timestamp`, `token`, `signature`),
//! decoded from a urlencoded body by the caller. Pure.

use chrono::{DateTime, Utc};
use wellbeing_assistant::people::{Identity, IdentityError};

use crate::email::reply_text::reply_text;
use crate::email::signature::{self, SignatureError, Signed, SigningKey};

/// RFC 5322 caps a header line at 998 characters; a Message-Id longer than that is not one.
const MAX_MESSAGE_ID_LEN: usize = 998;

/// A reply is a message, not a document: what the engine reads of one (the rest is cut, like
/// SMS's 1,600 characters).
pub const MAX_TEXT_CHARS: usize = 10_000;

/// One email from a sender, ready for the inbox (keyed by [`InboundEmail::inbox_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEmail {
    /// `email:` and the envelope sender (`sender`), lowercased.
    pub identity: Identity,
    /// Without its angle brackets.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    /// The thread so far, oldest first, without angle brackets.
    pub references: Vec<String>,
    pub subject: String,
    /// What the person wrote: the reply apart from quoted history, signature and footer.
    pub text: String,
}

impl InboundEmail {
    /// The inbox's idempotency key: Mailgun retrying a forward is stored once.
    pub fn inbox_key(&self) -> String {
        format!("email:{}", self.message_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("missing field {0:?}")]
    Missing(&'static str),
    #[error("field \"sender\" is not an email address")]
    Sender(#[source] IdentityError),
    #[error("field \"Message-Id\" is not a message id (empty or over 998 characters)")]
    MessageId,
    #[error("the message holds no text of its own (only quoted history, a signature or a footer)")]
    Empty,
}

impl ParseError {
    /// A metric label.
    pub fn label(&self) -> &'static str {
        match self {
            ParseError::Missing(_) => "email_fields",
            ParseError::Sender(_) => "email_sender",
            ParseError::MessageId => "email_message_id",
            ParseError::Empty => "email_empty",
        }
    }
}

/// A field by name; header fields are matched without regard to case ("Message-Id", "Message-ID").
fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Check the signed fields of a forward (signature and freshness); the timestamp and token, for
/// the replay cache, when they pass.
pub fn verify<'a>(
    key: &SigningKey,
    params: &'a [(String, String)],
    now: DateTime<Utc>,
) -> Result<(&'a str, DateTime<Utc>), SignatureError> {
    let signed = Signed {
        timestamp: field(params, "timestamp").unwrap_or_default(),
        token: field(params, "token").unwrap_or_default(),
        signature: field(params, "signature").unwrap_or_default(),
    };
    let sent = signature::verify(key, signed, now)?;
    Ok((signed.token, sent))
}

/// `<a@b>` or `a@b` as `a@b`.
fn bare_id(value: &str) -> Option<String> {
    let id = value.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty() && id.len() <= MAX_MESSAGE_ID_LEN && !id.contains(char::is_whitespace)).then(|| id.to_string())
}

/// What a verified forward says. The person's text is split from `body-plain` by our own rules;
/// Mailgun's `stripped-text` is used only when `body-plain` is absent.
pub fn parse(params: &[(String, String)]) -> Result<InboundEmail, ParseError> {
    let sender = field(params, "sender").ok_or(ParseError::Missing("sender"))?;
    let identity: Identity = format!("email:{}", sender.trim()).parse().map_err(ParseError::Sender)?;
    let raw_id = field(params, "Message-Id").ok_or(ParseError::Missing("Message-Id"))?;
    let message_id = bare_id(raw_id).ok_or(ParseError::MessageId)?;
    let in_reply_to = field(params, "In-Reply-To").and_then(bare_id);
    let references =
        field(params, "References").map(|v| v.split_whitespace().filter_map(bare_id).collect()).unwrap_or_default();
    let body = field(params, "body-plain")
        .or_else(|| field(params, "stripped-text"))
        .ok_or(ParseError::Missing("body-plain"))?;
    let text: String = reply_text(body).chars().take(MAX_TEXT_CHARS).collect();
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(InboundEmail {
        identity,
        message_id,
        in_reply_to,
        references,
        subject: field(params, "subject").unwrap_or_default().trim().to_string(),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "key-7c5a2b9e0f1d4c3b8a6e5d4c3b2a1f0e";

    fn forward(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut params = vec![
            ("timestamp", "1770920772"),
            ("token", "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"),
            ("signature", "acf5d764b1a682885b15242bbc7d4e5913874af11dec6e1c72c3fd651a7351a9"),
            ("recipient", "assistant@wellbeing.example.org"),
            ("sender", "Ana@Example.org"),
            ("from", "Ana Example <Ana@Example.org>"),
            ("subject", "Re: How did you sleep?"),
            (
                "body-plain",
                "Slept 7 hours.\n\nOn Tue, 3 Mar 2026 at 07:00, Wellbeing <assistant@wellbeing.example.org> wrote:\n> How did you sleep?\n",
            ),
            ("stripped-text", "Slept 7 hours."),
            ("Message-Id", "<CAF=abc123@mail.gmail.com>"),
            ("In-Reply-To", "<checkin-1@wellbeing.example.org>"),
            ("References", "<insight-0@wellbeing.example.org> <checkin-1@wellbeing.example.org>"),
        ];
        params.retain(|(k, _)| !extra.iter().any(|(name, _)| name == k));
        params.extend(extra.iter().filter(|(_, v)| !v.is_empty()).copied());
        params.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_forward_becomes_one_inbox_message_keyed_by_its_message_id() {
        let email = parse(&forward(&[])).unwrap();
        assert_eq!(email.identity.key(), "email:ana@example.org");
        assert_eq!(email.inbox_key(), "email:CAF=abc123@mail.gmail.com");
        assert_eq!(email.in_reply_to.as_deref(), Some("checkin-1@wellbeing.example.org"));
        assert_eq!(email.references, ["insight-0@wellbeing.example.org", "checkin-1@wellbeing.example.org"]);
        assert_eq!(email.subject, "Re: How did you sleep?");
        assert_eq!(email.text, "Slept 7 hours.");
    }

    #[test]
    fn the_signed_fields_are_checked_before_anything_else() {
        let now = DateTime::from_timestamp(1_770_920_800, 0).unwrap();
        let key = SigningKey::new(KEY);
        let good = forward(&[]);
        let (token, _) = verify(&key, &good, now).unwrap();
        assert_eq!(token, "e0b5477167110d68991efc6b9f89f0a11066af27834600e123");
        assert_eq!(verify(&key, &forward(&[("signature", "00")]), now), Err(SignatureError::Mismatch));
        assert_eq!(verify(&key, &forward(&[("token", "")]), now), Err(SignatureError::Missing));
        assert_eq!(verify(&SigningKey::new("key-other"), &forward(&[]), now), Err(SignatureError::Mismatch));
    }

    #[test]
    fn bad_forwards_say_which_field_is_wrong() {
        assert!(matches!(parse(&forward(&[("sender", "")])), Err(ParseError::Missing("sender"))));
        assert!(matches!(parse(&forward(&[("sender", "not an address")])), Err(ParseError::Sender(_))));
        assert!(matches!(parse(&forward(&[("Message-Id", "<>")])), Err(ParseError::MessageId)));
        assert!(matches!(parse(&forward(&[("Message-Id", "")])), Err(ParseError::Missing("Message-Id"))));
        let only_quote = forward(&[("body-plain", "> On Tue, Wellbeing wrote:\n> How did you sleep?\n")]);
        assert!(matches!(parse(&only_quote), Err(ParseError::Empty)));
        assert_eq!(ParseError::Missing("sender").to_string(), "missing field \"sender\"");
    }

    #[test]
    fn header_fields_match_in_any_case_and_stripped_text_is_the_fallback() {
        let mut params: Vec<(String, String)> = forward(&[])
            .into_iter()
            .filter(|(k, _)| k != "body-plain")
            .map(|(k, v)| (if k == "Message-Id" { "Message-ID".to_string() } else { k }, v))
            .collect();
        params.retain(|(k, _)| k != "In-Reply-To" && k != "References");
        let email = parse(&params).unwrap();
        assert_eq!(email.message_id, "CAF=abc123@mail.gmail.com");
        assert_eq!(email.text, "Slept 7 hours.");
        assert_eq!(email.in_reply_to, None);
        assert!(email.references.is_empty());
    }
}
