//! Credential detection and redaction: anything that looks like a key or token is replaced by
//! `[REDACTED]` before a message is stored, logged or sent to an LLM.
//!
//! The detectors are shared with the Python plugin checker through
//! `plugins/host/credential_patterns.json` (one list, two engines). A few detectors that need
//! more than one regular expression can express (a PEM block up to its END line, AWS secret keys
//! only after an `aws_secret` label, Slack app-level tokens) live here in Rust.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

/// What replaces each credential-like span.
pub const REDACTED: &str = "[REDACTED]";

/// The shared detector list, compiled into the binary.
const SHARED_PATTERNS: &str = include_str!("../../plugins/host/credential_patterns.json");

#[derive(Deserialize)]
struct PatternFile {
    patterns: Vec<PatternDef>,
    high_entropy: HighEntropyDef,
}

#[derive(Deserialize)]
struct PatternDef {
    name: String,
    regex: String,
}

#[derive(Deserialize)]
struct HighEntropyDef {
    token_regex: String,
    min_length: usize,
    min_bits_per_char: f64,
}

struct Detector {
    name: String,
    regex: Regex,
}

struct Detectors {
    /// Detectors whose whole match (or capture group 1, when the regex has one) is a credential.
    exact: Vec<Detector>,
    token: Regex,
    min_length: usize,
    min_bits_per_char: f64,
}

/// Rust-only detectors: (name, regex). Capture group 1, when present, is the part redacted.
const RUST_PATTERNS: &[(&str, &str)] = &[
    // The shared list matches the BEGIN line only; here the whole block goes, up to its END line
    // (or the end of the message when it was cut off).
    ("private-key-block", r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\z)"),
    ("slack-app-token", r"\bxapp-[0-9]-[A-Za-z0-9-]{10,}"),
    ("anthropic-key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    // 40 base64 characters are too common to flag on their own; after a label they are a key.
    (
        "aws-secret-access-key",
        r#"(?i)aws_?secret(?:_access)?(?:_key)?["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
    ),
];

static DETECTORS: LazyLock<Detectors> = LazyLock::new(|| {
    let file: PatternFile =
        serde_json::from_str(SHARED_PATTERNS).expect("plugins/host/credential_patterns.json is valid JSON");
    let mut exact: Vec<Detector> = file
        .patterns
        .into_iter()
        .map(|p| Detector {
            regex: Regex::new(&p.regex)
                .unwrap_or_else(|e| panic!("credential pattern {} does not compile: {e}", p.name)),
            name: p.name,
        })
        .collect();
    exact.extend(RUST_PATTERNS.iter().map(|(name, re)| Detector {
        name: (*name).to_string(),
        regex: Regex::new(re).expect("built-in credential pattern compiles"),
    }));
    Detectors {
        exact,
        token: Regex::new(&file.high_entropy.token_regex).expect("high-entropy token regex compiles"),
        min_length: file.high_entropy.min_length,
        min_bits_per_char: file.high_entropy.min_bits_per_char,
    }
});

/// A message with its credential-like parts replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    /// Detector names that fired, in order of first appearance, without duplicates (safe to log).
    pub kinds: Vec<String>,
}

impl Redacted {
    /// Whether anything was removed.
    pub fn redacted(&self) -> bool {
        !self.kinds.is_empty()
    }
}

/// Replace every credential-like span of `text` with [`REDACTED`].
pub fn redact(text: &str) -> Redacted {
    let detectors = &*DETECTORS;
    let mut spans: Vec<(usize, usize, &str)> = Vec::new();
    for d in &detectors.exact {
        for caps in d.regex.captures_iter(text) {
            let m = caps.get(1).or_else(|| caps.get(0)).expect("group 0 always matches");
            spans.push((m.start(), m.end(), d.name.as_str()));
        }
    }
    for m in detectors.token.find_iter(text) {
        let candidate = m.as_str();
        if candidate.len() >= detectors.min_length
            && looks_random(candidate, detectors.min_bits_per_char)
            && !spans.iter().any(|(s, e, _)| *s <= m.start() && m.end() <= *e)
        {
            spans.push((m.start(), m.end(), "high-entropy"));
        }
    }
    if spans.is_empty() {
        return Redacted { text: text.to_string(), kinds: Vec::new() };
    }
    spans.sort_by_key(|(s, e, _)| (*s, std::cmp::Reverse(*e)));
    let mut out = String::with_capacity(text.len());
    let mut kinds: Vec<String> = Vec::new();
    let mut cursor = 0;
    for (start, end, name) in spans {
        if !kinds.iter().any(|k| k == name) {
            kinds.push(name.to_string());
        }
        if end <= cursor {
            continue; // inside a span already replaced
        }
        if start >= cursor {
            out.push_str(&text[cursor..start]);
            out.push_str(REDACTED);
        }
        // An overlapping span extends the one just written.
        cursor = end;
    }
    out.push_str(&text[cursor..]);
    Redacted { text: out, kinds }
}

/// Whether `text` contains anything [`redact`] would remove.
pub fn contains_credential(text: &str) -> bool {
    redact(text).redacted()
}

/// The high-entropy rule of the shared file (entropy threshold, letters and digits mixed) plus
/// one guard: a run whose `/`, `-`, `_` separated parts are each plain lowercase words or plain
/// numbers is a URL path or a slug ("com/articles/2024/05/how-to-sleep-better"), not a key.
/// Random keys mix cases and digits inside their parts.
fn looks_random(candidate: &str, min_bits_per_char: f64) -> bool {
    let has_letter = candidate.bytes().any(|b| b.is_ascii_alphabetic());
    let has_digit = candidate.bytes().any(|b| b.is_ascii_digit());
    if !(has_letter && has_digit) {
        return false;
    }
    let slug = candidate
        .split(['/', '-', '_'])
        .filter(|p| !p.is_empty())
        .all(|part| part.bytes().all(|b| b.is_ascii_lowercase()) || part.bytes().all(|b| b.is_ascii_digit()));
    !slug && shannon_entropy(candidate) >= min_bits_per_char
}

/// Shannon entropy in bits per character of the string's own character distribution.
pub fn shannon_entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_redacted(text: &str, secret: &str, kind: &str) {
        let r = redact(text);
        assert!(!r.text.contains(secret), "{kind}: secret survived in {:?}", r.text);
        assert!(r.text.contains(REDACTED), "{kind}: {:?}", r.text);
        assert!(r.kinds.iter().any(|k| k == kind), "{kind} not among {:?}", r.kinds);
    }

    // Test credentials are assembled at run time so the source file itself does not trip secret
    // scanners; each has the shape of the real thing.
    fn rep(s: &str, n: usize) -> String {
        s.repeat(n)
    }

    #[test]
    fn every_known_credential_kind_is_redacted() {
        let slack_bot = format!("xoxb-{}-{}", "1234567890", rep("aB3dE5fG7h", 2));
        assert_redacted(&format!("my token is {slack_bot} ok"), &slack_bot, "slack-token");
        let slack_user = format!("xoxp-{}", rep("9aZ8bY7cX6", 3));
        assert_redacted(&slack_user, &slack_user, "slack-token");
        let slack_app = format!("xapp-1-A0{}", rep("B1c2D3e4F5", 3));
        assert_redacted(&format!("app token: {slack_app}"), &slack_app, "slack-app-token");
        let openai = format!("sk-proj-{}", rep("Ab1Cd2Ef3Gh4", 4));
        assert_redacted(&format!("use {openai} please"), &openai, "openai-key");
        let openai_plain = format!("sk-{}", rep("Zy9Xw8Vu7T", 4));
        assert_redacted(&openai_plain, &openai_plain, "openai-key");
        let anthropic = format!("sk-ant-api03-{}", rep("Qr5St6Uv7W", 6));
        assert_redacted(&format!("key={anthropic}"), &anthropic, "anthropic-key");
        let github = format!("ghp_{}", rep("aB3dE5fG7hI9", 3));
        assert_redacted(&format!("the PAT {github}."), &github, "github-token");
        let gho = format!("gho_{}", rep("Mn0Pq1Rs2T", 4));
        assert_redacted(&gho, &gho, "github-token");
        let ghs = format!("ghs_{}", rep("Uv3Wx4Yz5A", 4));
        assert_redacted(&ghs, &ghs, "github-token");
        let fine = format!("github_pat_11AB{}", rep("cd_EF34gh56", 5));
        assert_redacted(&fine, &fine, "github-fine-grained-token");
        let google = format!("AIza{}", "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q");
        assert_eq!(google.len(), 39);
        assert_redacted(&format!("maps key {google}"), &google, "google-api-key");
        let akia = format!("AKIA{}", "IOSFODNN7EXAMPLE");
        assert_redacted(&format!("aws {akia} thanks"), &akia, "aws-access-key-id");
        let asia = format!("ASIA{}", "Z2Y3X4W5V6U7T8S9");
        assert_redacted(&asia, &asia, "aws-access-key-id");
        let aws_secret = format!("wJalrXUtnFEMI/K7MDENG/{}", "bPxRfiCYEXAMPLEKEY");
        assert_eq!(aws_secret.len(), 40);
        assert_redacted(&format!("aws_secret_access_key = {aws_secret}"), &aws_secret, "aws-secret-access-key");
        let jwt = format!(
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.{}",
            "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
        );
        assert_redacted(&format!("Bearer {jwt}"), &jwt, "jwt");
    }

    #[test]
    fn a_private_key_block_goes_whole() {
        let body = rep("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n", 4);
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----");
        let r = redact(&format!("here:\n{pem}\nthanks"));
        assert_eq!(r.text, format!("here:\n{REDACTED}\nthanks"));
        // Cut off before its END line: everything after the header goes.
        let r = redact(&format!("oops -----BEGIN RSA PRIVATE KEY-----\n{body}"));
        assert_eq!(r.text, format!("oops {REDACTED}"));
    }

    #[test]
    fn long_random_tokens_are_redacted_by_entropy() {
        let token = "Zk3vQ9pLm2XwR7tYb4NcH8sJd1FgA6eU";
        assert_eq!(token.len(), 32);
        assert_redacted(&format!("the webhook secret is {token}"), token, "high-entropy");
    }

    #[test]
    fn ordinary_talk_is_left_alone() {
        for text in [
            "Kinda drained. Haven't eaten yet and didn't sleep much.",
            "slept 7.5 hours, ran 5k in 27:30, drank 8 glasses of water",
            "read https://example.com/articles/2024/05/how-to-sleep-better last night",
            "see https://www.reddit.com/r/running/comments/1abc2de/first_marathon_tips",
            "my order id is 123e4567-e89b-12d3-a456-426614174000",
            "the commit d41d8cd98f00b204e9800998ecf8427e broke the build",
            "supercalifragilisticexpialidocious2024 is a long word",
            "this-is-my-very-long-project-name-v2-final-2024 is due friday",
            "call me at +1 415 555 0100 or at 2024-06-01T09:30:00Z",
            "sk-8 is a skateboard brand and AKIA is a name",
            "😴😴 tired af, 3 coffees already",
        ] {
            let r = redact(text);
            assert_eq!(r.text, text, "changed: {:?}", r.kinds);
            assert!(!r.redacted());
        }
    }

    #[test]
    fn several_secrets_and_the_text_around_them_survive_in_order() {
        let a = format!("ghp_{}", rep("aB3dE5fG7hI9", 3));
        let b = format!("AKIA{}", "IOSFODNN7EXAMPLE");
        let r = redact(&format!("first {a} then {b} end"));
        assert_eq!(r.text, format!("first {REDACTED} then {REDACTED} end"));
        assert_eq!(r.kinds.len(), 2, "{:?}", r.kinds);
    }

    #[test]
    fn entropy_is_what_the_shared_file_assumes() {
        assert!(shannon_entropy("d41d8cd98f00b204e9800998ecf8427e") < 4.0, "hex digests stay below");
        assert!(shannon_entropy("Zk3vQ9pLm2XwR7tYb4NcH8sJd1FgA6eU") > 4.5);
        assert_eq!(shannon_entropy("aaaa"), 0.0);
    }

    proptest::proptest! {
        #[test]
        fn redaction_never_grows_a_secret_back_and_is_idempotent(prefix in "[a-z ,.]{0,40}", suffix in "[a-z ,.]{0,40}") {
            let secret = format!("ghp_{}", "aB3dE5fG7hI9".repeat(3));
            // The shared patterns anchor at a word boundary: "aghp_..." is not a GitHub token.
            let once = redact(&format!("{prefix} {secret} {suffix}"));
            proptest::prop_assert!(!once.text.contains(&secret));
            let twice = redact(&once.text);
            proptest::prop_assert_eq!(twice.text, once.text);
        }
    }
}
