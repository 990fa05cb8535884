//! Mailgun's webhook signature, as its "Securing Webhooks" page documents it: the request carries
//! `timestamp` (seconds since 1970), `token` (a random string of 50 characters) and `signature`,
//! the hex HMAC-SHA256 keyed by the domain's webhook signing key over `timestamp` and `token`
//! concatenated with no separator. The page advises refusing stale timestamps and tokens seen
//! before; the window is [`FRESHNESS`], the replay cache is `email::store`.
//!
//! Pure: the caller passes the clock's `now` and asks the replay cache afterwards.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a request's timestamp may be from our clock, either way: Slack's five minutes, which
/// covers Mailgun's prompt forwarding and ordinary clock skew. A request inside the window can
/// only be sent once (the replay cache); one outside it is refused even with a good signature,
/// so the cache need keep tokens only for this long.
pub const FRESHNESS: chrono::Duration = chrono::Duration::minutes(5);

/// Mailgun's tokens are 50 characters; anything much longer is not one of theirs and is refused
/// before it is hashed or stored.
pub const MAX_TOKEN_LEN: usize = 128;

/// The domain's HTTP webhook signing key. Debug never prints it.
#[derive(Clone)]
pub struct SigningKey(String);

impl SigningKey {
    pub fn new(key: impl Into<String>) -> SigningKey {
        SigningKey(key.into().trim().to_string())
    }
}

redacted_debug!(SigningKey);

/// The three signed fields of one request, as sent.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub timestamp: &'a str,
    pub token: &'a str,
    pub signature: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing timestamp, token or signature field")]
    Missing,
    #[error("timestamp is not a number of seconds")]
    Timestamp,
    #[error("timestamp is outside the freshness window")]
    Stale,
    #[error("token is longer than a Mailgun token")]
    Token,
    #[error("signature does not match")]
    Mismatch,
    #[error("token was seen before (a replay)")]
    Replayed,
}

impl SignatureError {
    /// A metric label.
    pub fn label(&self) -> &'static str {
        match self {
            SignatureError::Missing => "mailgun_signature_missing",
            SignatureError::Timestamp => "mailgun_timestamp",
            SignatureError::Stale => "mailgun_stale",
            SignatureError::Token => "mailgun_token",
            SignatureError::Mismatch => "mailgun_signature_mismatch",
            SignatureError::Replayed => "mailgun_replayed",
        }
    }
}

/// The hex signature of `timestamp` and `token` under `key`.
pub fn compute(key: &SigningKey, timestamp: &str, token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.0.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Check one request's signature and freshness (not yet its token's novelty: see `email::store`).
/// The timestamp of a fresh request, for the replay cache.
pub fn verify(key: &SigningKey, signed: Signed<'_>, now: DateTime<Utc>) -> Result<DateTime<Utc>, SignatureError> {
    if signed.timestamp.is_empty() || signed.token.is_empty() || signed.signature.is_empty() {
        return Err(SignatureError::Missing);
    }
    if signed.token.len() > MAX_TOKEN_LEN {
        return Err(SignatureError::Token);
    }
    let seconds: i64 = signed.timestamp.trim().parse().map_err(|_| SignatureError::Timestamp)?;
    let sent = DateTime::<Utc>::from_timestamp(seconds, 0).ok_or(SignatureError::Timestamp)?;
    let expected = compute(key, signed.timestamp, signed.token);
    // Hex from Mailgun is lowercase; accept either case, compare in constant time.
    let given = signed.signature.trim().to_ascii_lowercase();
    if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return Err(SignatureError::Mismatch);
    }
    if (now - sent).abs() > FRESHNESS {
        return Err(SignatureError::Stale);
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mailgun's documented example token and timestamp, signed under a made-up key by the
    /// recipe on its page (Python: `hmac.new(key, timestamp + token, hashlib.sha256).hexdigest()`).
    const KEY: &str = "key-7c5a2b9e0f1d4c3b8a6e5d4c3b2a1f0e";
    const TIMESTAMP: &str = "1770920772";
    const TOKEN: &str = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123";
    const SIGNATURE: &str = "acf5d764b1a682885b15242bbc7d4e5913874af11dec6e1c72c3fd651a7351a9";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn the_documented_recipe_gives_the_same_signature() {
        assert_eq!(compute(&SigningKey::new(KEY), TIMESTAMP, TOKEN), SIGNATURE);
    }

    #[test]
    fn a_fresh_signed_request_passes_and_says_when_it_was_sent() {
        let signed = Signed { timestamp: TIMESTAMP, token: TOKEN, signature: SIGNATURE };
        assert_eq!(verify(&SigningKey::new(KEY), signed, at(1_770_920_772 + 60)), Ok(at(1_770_920_772)));
        let upper = SIGNATURE.to_ascii_uppercase();
        let signed = Signed { signature: &upper, ..signed };
        assert!(verify(&SigningKey::new(KEY), signed, at(1_770_920_772)).is_ok());
    }

    #[test]
    fn forged_stale_and_malformed_requests_are_refused() {
        let key = SigningKey::new(KEY);
        let now = at(1_770_920_772);
        let good = Signed { timestamp: TIMESTAMP, token: TOKEN, signature: SIGNATURE };
        let wrong_key = verify(&SigningKey::new("key-other"), good, now);
        assert_eq!(wrong_key, Err(SignatureError::Mismatch));
        let other_token = Signed { token: "f0b5477167110d68991efc6b9f89f0a11066af27834600e123", ..good };
        assert_eq!(verify(&key, other_token, now), Err(SignatureError::Mismatch));
        let moved_time = Signed { timestamp: "1770920773", ..good };
        assert_eq!(verify(&key, moved_time, now), Err(SignatureError::Mismatch));
        assert_eq!(verify(&key, good, now + FRESHNESS + chrono::Duration::seconds(1)), Err(SignatureError::Stale));
        assert_eq!(verify(&key, good, now - FRESHNESS - chrono::Duration::seconds(1)), Err(SignatureError::Stale));
        assert!(verify(&key, good, now + FRESHNESS).is_ok(), "the window's edge is inside");
        assert_eq!(verify(&key, Signed { signature: "", ..good }, now), Err(SignatureError::Missing));
        assert_eq!(verify(&key, Signed { timestamp: "soon", ..good }, now), Err(SignatureError::Timestamp));
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(verify(&key, Signed { token: &long, ..good }, now), Err(SignatureError::Token));
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        assert_eq!(format!("{:?}", SigningKey::new(KEY)), "SigningKey(<redacted>)");
    }
}
