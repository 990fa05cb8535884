//! Twilio's request signature (`X-Twilio-Signature`): HMAC-SHA1 keyed by the account's auth
//! token over the full URL Twilio requested, followed by every POST parameter's name and value
//! sorted by name, in base64. A JSON body is covered through the URL instead: its SHA-256 (hex)
//! travels as the `bodySHA256` query parameter, and the HMAC is over the URL alone.
//!
//! Pure functions. Like Twilio's own libraries, a URL is also tried without its port and with the
//! scheme's default port, because proxies and Twilio's console disagree about writing `:443`.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";
/// The query parameter that carries a JSON body's SHA-256.
pub const BODY_HASH_PARAM: &str = "bodySHA256";

/// The account's auth token. Debug never prints it.
#[derive(Clone)]
pub struct AuthToken(String);

impl AuthToken {
    pub fn new(token: impl Into<String>) -> AuthToken {
        AuthToken(token.into().trim().to_string())
    }

    /// The token itself, for the REST API's basic auth.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

redacted_debug!(AuthToken);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Twilio-Signature header")]
    Missing,
    #[error("signature does not match")]
    Mismatch,
    #[error("the body's SHA-256 does not match the bodySHA256 query parameter")]
    BodyHash,
}

impl SignatureError {
    /// A metric label.
    pub fn label(&self) -> &'static str {
        match self {
            SignatureError::Missing => "twilio_signature_missing",
            SignatureError::Mismatch => "twilio_signature_mismatch",
            SignatureError::BodyHash => "twilio_body_hash",
        }
    }
}

/// The signature of a request to `url` with POST parameters `params` (empty for a JSON body).
/// Parameters are sorted by name, then value, and exact duplicates counted once, as Twilio's
/// libraries do.
pub fn compute(token: &AuthToken, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(token.0.as_bytes()).expect("HMAC accepts any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Check a form-encoded request's signature.
pub fn verify_form(
    token: &AuthToken,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(SignatureError::Missing)?;
    let matches =
        url_variants(url).iter().any(|u| compute(token, u, params).as_bytes().ct_eq(header.as_bytes()).into());
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// Check a JSON request's signature (over the URL, which carries `bodySHA256`) and that the body
/// is the one whose hash was signed.
pub fn verify_json(token: &AuthToken, url: &str, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    verify_form(token, url, &[], header)?;
    let expected = query_param(url, BODY_HASH_PARAM).ok_or(SignatureError::BodyHash)?;
    let actual = hex::encode(Sha256::digest(body));
    if bool::from(actual.as_bytes().ct_eq(expected.to_ascii_lowercase().as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::BodyHash)
    }
}

/// Whether Twilio signed this request through the URL (a JSON body).
pub fn has_body_hash(url: &str) -> bool {
    query_param(url, BODY_HASH_PARAM).is_some()
}

/// The (percent-decoded) value of query parameter `name` in `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// `url` as given, without its port, and with the scheme's default port.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else { return out };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    let host = match hostport.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) && !host.ends_with(':') => {
            host
        }
        _ => hostport,
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    let without = format!("{scheme}://{userinfo}{host}{tail}");
    let mut push = |candidate: String| {
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    };
    push(without);
    if let Some(port) = default_port {
        push(format!("{scheme}://{userinfo}{host}:{port}{tail}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    /// The worked example of Twilio's "Webhooks security" page (auth token 12345).
    #[test]
    fn twilios_documented_example_signs_and_verifies() {
        let token = AuthToken::new("12345");
        // Out of order on purpose: the signature sorts them.
        let params = pairs(&[
            ("To", "+18005551212"),
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("Caller", "+12349013030"),
        ]);
        assert_eq!(compute(&token, URL, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert_eq!(verify_form(&token, URL, &params, Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")), Ok(()));
    }

    /// The vectors of twilio-python's tests/unit/test_request_validator.py.
    #[test]
    fn twilio_python_vectors() {
        let token = AuthToken::new("12345");
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ]);
        assert_eq!(compute(&token, URL, &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        // Duplicates: names sorted, values sorted, an exact duplicate counted once.
        let dup = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(compute(&token, URL, &dup), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
        // Ports: a URL with a port verifies a signature made without it, and one without a port
        // verifies a signature made with the scheme's default port.
        let with_port = URL.replace(".com", ".com:1234");
        assert_eq!(verify_form(&token, &with_port, &params, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")), Ok(()));
        let http_port = with_port.replace("https", "http");
        assert_eq!(verify_form(&token, &http_port, &params, Some("Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")), Ok(()));
        assert_eq!(verify_form(&token, URL, &params, Some("kvajT1Ptam85bY51eRf/AJRuM3w=")), Ok(()));
        let http = URL.replace("https", "http");
        assert_eq!(verify_form(&token, &http, &params, Some("0ZXoZLH/DfblKGATFgpif+LLRf4=")), Ok(()));
        // The JSON variant: the URL carries the body's SHA-256.
        let body = br#"{"property": "value", "boolean": true}"#;
        assert_eq!(
            hex::encode(Sha256::digest(body)),
            "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        let url = format!("{URL}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620");
        assert!(has_body_hash(&url) && !has_body_hash(URL));
        assert_eq!(verify_json(&token, &url, body, Some("a9nBmqA0ju/hNViExpshrM61xv4=")), Ok(()));
        // Another body under the same signed URL: refused.
        assert_eq!(
            verify_json(
                &token,
                &url,
                br#"{"property": "other", "boolean": true}"#,
                Some("a9nBmqA0ju/hNViExpshrM61xv4=")
            ),
            Err(SignatureError::BodyHash)
        );
        assert_eq!(
            verify_json(&token, &url, body, Some("a9nBmqA0ju/hNViExpshrM61xv5=")),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn forged_missing_and_misdirected_signatures_are_refused() {
        let token = AuthToken::new("12345");
        let params = pairs(&[("From", "+12349013030"), ("Body", "hi")]);
        let good = compute(&token, URL, &params);
        assert_eq!(verify_form(&token, URL, &params, None), Err(SignatureError::Missing));
        assert_eq!(verify_form(&token, URL, &params, Some("  ")), Err(SignatureError::Missing));
        let tampered = pairs(&[("From", "+12349013030"), ("Body", "hi!")]);
        assert_eq!(verify_form(&token, URL, &tampered, Some(&good)), Err(SignatureError::Mismatch));
        assert_eq!(verify_form(&AuthToken::new("54321"), URL, &params, Some(&good)), Err(SignatureError::Mismatch));
        // The address the server sees behind a TLS-terminating proxy is not the one Twilio signed.
        assert_eq!(
            verify_form(&token, "http://10.0.0.7:8080/myapp.php?foo=1&bar=2", &params, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(format!("{token:?}"), "AuthToken(<redacted>)");
    }
}
