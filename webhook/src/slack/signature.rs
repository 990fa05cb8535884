//! Slack request signing, version v0: HMAC-SHA256 over `v0:{timestamp}:{raw body}`.
//!
//! Pure functions: the caller passes the clock, so the published example (from 2018) can be
//! checked without switching the freshness check off.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Slack's docs: refuse requests whose timestamp is more than five minutes away from local time,
/// which bounds how long a captured request can be replayed.
pub const MAX_SKEW_SECS: i64 = 5 * 60;

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";

/// The app's signing secret. Debug never prints it.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        SigningSecret(secret.into().trim().as_bytes().to_vec())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn mac(&self, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(b"v0:");
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        mac
    }
}

redacted_debug!(SigningSecret);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Slack-Signature or X-Slack-Request-Timestamp header")]
    MissingHeader,
    #[error("X-Slack-Request-Timestamp is not a unix time")]
    BadTimestamp,
    #[error("request timestamp is more than five minutes from now")]
    Stale,
    #[error("X-Slack-Signature is not of the form v0=<64 hex digits>")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
}

impl SignatureError {
    /// Short label for the rejected-events metric.
    pub fn label(self) -> &'static str {
        match self {
            SignatureError::MissingHeader => "missing_header",
            SignatureError::BadTimestamp => "bad_timestamp",
            SignatureError::Stale => "stale",
            SignatureError::Malformed => "malformed_signature",
            SignatureError::Mismatch => "bad_signature",
        }
    }
}

/// `v0=<hex>` for `body` sent at `timestamp` (what Slack puts in X-Slack-Signature).
pub fn sign(secret: &SigningSecret, timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(secret.mac(timestamp, body).finalize().into_bytes()))
}

/// Check a request's signature headers against its raw body at unix time `now`.
pub fn verify(
    secret: &SigningSecret,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::MissingHeader);
    };
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    // Both directions: a timestamp far in the future is as replayable as an old one.
    if (now - ts).abs() > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let hex_digest = signature.strip_prefix("v0=").ok_or(SignatureError::Malformed)?;
    let mut given = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut given).map_err(|_| SignatureError::Malformed)?;
    let expected = secret.mac(timestamp, body).finalize().into_bytes();
    if bool::from(expected.as_slice().ct_eq(&given)) { Ok(()) } else { Err(SignatureError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's published example ("Verifying requests from Slack").
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn secret() -> SigningSecret {
        SigningSecret::new(SECRET)
    }

    #[test]
    fn slack_published_example_is_accepted() {
        assert_eq!(sign(&secret(), TS, BODY.as_bytes()), SIG);
        verify(&secret(), Some(TS), Some(SIG), BODY.as_bytes(), 1531420618 + 60).unwrap();
    }

    #[test]
    fn the_example_is_stale_today_and_at_the_edges() {
        let now = 1531420618;
        assert_eq!(verify(&secret(), Some(TS), Some(SIG), BODY.as_bytes(), now + 301), Err(SignatureError::Stale));
        assert_eq!(verify(&secret(), Some(TS), Some(SIG), BODY.as_bytes(), now - 301), Err(SignatureError::Stale));
        assert!(verify(&secret(), Some(TS), Some(SIG), BODY.as_bytes(), now + 300).is_ok());
        assert_eq!(
            verify(&secret(), Some(TS), Some(SIG), BODY.as_bytes(), chrono::Utc::now().timestamp()),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn any_change_is_a_mismatch() {
        let now = 1531420618;
        let mut body = BODY.as_bytes().to_vec();
        body[10] ^= 1;
        assert_eq!(verify(&secret(), Some(TS), Some(SIG), &body, now), Err(SignatureError::Mismatch));
        assert_eq!(
            verify(&SigningSecret::new("another secret"), Some(TS), Some(SIG), BODY.as_bytes(), now),
            Err(SignatureError::Mismatch)
        );
        // Same signature, timestamp moved: the timestamp is signed too.
        assert_eq!(
            verify(&secret(), Some("1531420619"), Some(SIG), BODY.as_bytes(), now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let now = 1531420618;
        let b = BODY.as_bytes();
        assert_eq!(verify(&secret(), None, Some(SIG), b, now), Err(SignatureError::MissingHeader));
        assert_eq!(verify(&secret(), Some(TS), None, b, now), Err(SignatureError::MissingHeader));
        assert_eq!(verify(&secret(), Some("soon"), Some(SIG), b, now), Err(SignatureError::BadTimestamp));
        assert_eq!(verify(&secret(), Some(TS), Some(&SIG[3..]), b, now), Err(SignatureError::Malformed));
        assert_eq!(verify(&secret(), Some(TS), Some("v0=abc"), b, now), Err(SignatureError::Malformed));
        assert_eq!(verify(&secret(), Some(TS), Some(&SIG.replace('a', "z")), b, now), Err(SignatureError::Malformed));
        assert_eq!(verify(&secret(), Some(TS), Some(&SIG.replace("v0", "v1")), b, now), Err(SignatureError::Malformed));
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", secret()).contains("8f74"));
    }
}
