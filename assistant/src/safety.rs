//! Crisis language detection, the crisis reply, and the "I'm an AI, not a clinician" disclaimer.
//!
//! Detection is deliberately a plain, auditable phrase list rather than a model: it runs before
//! any LLM, never depends on an endpoint being up, and errs towards caution. Everyday hyperbole
//! ("this deadline is killing me", "I could kill for a coffee") is recognised first and removed, so
//! it cannot trigger a crisis reply on its own.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

/// Shown the first time a user talks to the assistant and in its help text.
pub const DISCLAIMER: &str = "Just so you know: I'm an AI assistant, not a substitute for professional care. \
I can't diagnose anything, and if you're ever in danger or thinking about harming yourself, please reach \
out to a crisis line or emergency services.";

/// Resources used when the active persona lists none: international first, then the most common
/// national lines.
pub const DEFAULT_CRISIS_RESOURCES: &[&str] = &[
    "Find a free, confidential helpline in your country: https://findahelpline.com",
    "US: call or text 988 (Suicide & Crisis Lifeline)",
    "UK and Ireland: call Samaritans on 116 123",
    "In immediate danger: call your local emergency number (112 in Europe, 911 in North America, 999 in the UK)",
];

/// The result of checking one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub crisis: bool,
    /// Which phrase family matched (safe to log; never the text itself).
    pub signal: Option<&'static str>,
}

/// Phrase families that indicate self-harm or suicidal thoughts. Order matters only for the
/// `signal` label.
const CRISIS_PATTERNS: &[(&str, &str)] = &[
    ("suicide", r"\bsuicid(?:e|al)\b|\bunalive\b|\bkms\b"),
    ("kill-self", r"\bkill(?:ing)? my ?self\b|\bend(?:ing)? my (?:own )?life\b|\btake my (?:own )?life\b"),
    ("end-it", r"\bend(?:ing)? it all\b|\bend(?:ing)? everything\b|\bfinish it all\b"),
    (
        "want-to-die",
        r"\b(?:want|wanna|wish|ready|trying) (?:to )?(?:just )?(?:die|be dead)\b|\bwish i (?:was|were) dead\b|\bwish i (?:had never been|wasn'?t) born\b|\bbetter off dead\b",
    ),
    (
        "no-reason-to-live",
        r"\bno (?:reason|point) (?:to|in) (?:live|living|go on|going on|being alive)\b|\b(?:don'?t|can'?t) see (?:the|any) point (?:in|of) (?:anything|living|life|going on)\b|\bwhat'?s the point (?:of|in) (?:living|life|going on)\b|\bnothing (?:left )?to live for\b|\bdon'?t want to (?:live|be alive|exist|wake up)\b|\bcan'?t go on\b",
    ),
    (
        "disappear",
        r"\bwant(?:ed)? to disappear\b|\bdon'?t want to be here any ?more\b|\b(?:everyone|they|people|world) (?:would be|is|are) better off without me\b",
    ),
    (
        "self-harm",
        r"\b(?:hurt|harm|cut|cutting|hurting|harming|burn|burning) my ?self\b|\bself[- ]?harm(?:ing)?\b|\boverdos(?:e|ing)\b|\b(?:take|taking|swallow|swallowing) (?:all|every one) of my (?:pills|meds|medication|tablets)\b|\b(?:take|taking|swallow|swallowing) all my (?:pills|meds|medication|tablets)\b",
    ),
];

/// Figures of speech that use the same words without meaning them. They are blanked out before
/// the crisis phrases are matched.
const HYPERBOLE_PATTERNS: &[&str] = &[
    r"\b(?:is|are|was|were|'s|'re) (?:literally |totally |absolutely |slowly )?killing me\b",
    r"\bkilling me (?:softly|slowly)\b",
    r"\bcould (?:literally )?kill for\b",
    r"\b(?:i'?d|would) kill for\b",
    r"\bdying (?:to|for)\b",
    r"\bkill(?:ed|ing)? it\b",
    r"\bto die for\b",
    r"\b(?:die|dying|died) (?:of|from) (?:laughter|laughing|embarrassment|boredom|cuteness|shame)\b",
    r"\bkill(?:ing)? (?:some )?time\b",
    r"\bi'?m dead\b(?:\s*(?:😂|🤣|lol|lmao))",
    r"\bdied laughing\b",
    r"\bmy (?:phone|battery|laptop|plant|car)s? (?:is |are )?(?:dying|dead|died)\b",
    r"\bcut myself (?:some|a little) slack\b",
    // Accidents in the kitchen or the bathroom are not self-harm.
    r"\bcut myself (?:while |when )?(?:chopping|cooking|shaving|slicing|on (?:a|the|some) \w+)\b",
    // A football and basketball conditioning drill.
    r"\bsuicide (?:sprints?|drills?|runs?|squeeze)\b",
    // An explicit denial; "not suicidal, just tired" is not a crisis message.
    r"\b(?:not|never|no longer) (?:feeling )?suicidal,? (?:just|only|but)\b",
    r"\bcut myself off from (?:social media|caffeine|sugar|news)\b",
];

static CRISIS: LazyLock<(RegexSet, Vec<&'static str>)> = LazyLock::new(|| {
    let set =
        RegexSet::new(CRISIS_PATTERNS.iter().map(|(_, re)| format!("(?i){re}"))).expect("crisis patterns compile");
    (set, CRISIS_PATTERNS.iter().map(|(name, _)| *name).collect())
});

static HYPERBOLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("(?i)(?:{})", HYPERBOLE_PATTERNS.join("|"))).expect("hyperbole patterns compile")
});

/// Typographic apostrophes and repeated spaces are normalized so "don’t" matches "don't".
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.chars() {
        let c = match c {
            '\u{2018}' | '\u{2019}' | '\u{02BC}' | '`' => '\'',
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
    }
    out.to_lowercase()
}

/// Decide whether a message is crisis language.
pub fn assess(text: &str) -> Assessment {
    let normalized = normalize(text);
    let cleaned = HYPERBOLE.replace_all(&normalized, " ");
    let (set, names) = &*CRISIS;
    let signal = set.matches(&cleaned).iter().next().map(|i| names[i]);
    Assessment { crisis: signal.is_some(), signal }
}

/// The calm crisis reply: acknowledgement, resources, no coaching, no questions about the
/// check-in. `resources` empty: [`DEFAULT_CRISIS_RESOURCES`].
pub fn crisis_reply(resources: &[String]) -> String {
    let lines: Vec<&str> = if resources.iter().any(|r| !r.trim().is_empty()) {
        resources.iter().map(|r| r.trim()).filter(|r| !r.is_empty()).collect()
    } else {
        DEFAULT_CRISIS_RESOURCES.to_vec()
    };
    let mut out = String::from(
        "I'm really sorry you're going through this, and I'm glad you told me. \
You deserve support from a person right now, and you don't have to handle this alone.\n\n\
Please reach out to someone who can help:\n",
    );
    for line in lines {
        out.push_str("• ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(
        "\nIf you can, let someone you trust know how you're feeling. \
I'm an AI assistant, not a substitute for professional care, but I'm here if you want to keep talking.",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_and_indirect_crisis_language_is_detected() {
        for text in [
            "I want to kill myself",
            "i've been thinking about suicide",
            "honestly I feel suicidal today",
            "I just want to disappear",
            "there's no reason to live anymore",
            "I have nothing left to live for",
            "sometimes I think I should just end it all",
            "I keep wanting to hurt myself",
            "I cut myself again last night",
            "everyone would be better off without me",
            "I don’t want to be here anymore",
            "I wanna die",
            "thinking about ending my life",
            "I don't want to wake up tomorrow",
            "I want to die, this deadline is killing me",
            "KMS",
            "I'm thinking of taking all my pills",
            "I don't see the point in anything anymore",
            "I'm not suicidal. I just want to die",
            "I'm suicidal, just so you know",
            "feeling suicidal but trying to hold on",
        ] {
            let a = assess(text);
            assert!(a.crisis, "missed: {text}");
            assert!(a.signal.is_some());
        }
    }

    #[test]
    fn hyperbole_is_not_a_crisis() {
        for text in [
            "this deadline is killing me",
            "my back is literally killing me after the gym",
            "I could kill for a coffee",
            "I'd kill for a nap right now",
            "dying to see the new movie",
            "I'm dying for some pizza",
            "killed it at the gym today 💪",
            "this cake is to die for",
            "I'm dead 😂 that meme",
            "my phone is dying, talk later",
            "trying to cut myself some slack this week",
            "I'm killing time before my flight",
            "tired, hungry and slept badly",
            "did suicide sprints at football practice",
            "cut myself chopping onions, ouch",
            "I'm not suicidal, just really tired",
        ] {
            assert_eq!(assess(text), Assessment { crisis: false, signal: None }, "{text}");
        }
    }

    #[test]
    fn crisis_reply_uses_persona_resources_or_the_default() {
        let default = crisis_reply(&[]);
        assert!(default.contains("findahelpline.com"));
        assert!(default.contains("988"));
        assert!(default.contains("116 123"));
        assert!(default.contains("112"));
        let custom = crisis_reply(&["DE: TelefonSeelsorge 0800 111 0 111".to_string()]);
        assert!(custom.contains("TelefonSeelsorge"));
        assert!(!custom.contains("988"));
        for reply in [default, custom] {
            // Calm, no coaching: no nudges about food, sleep or exercise, no check-in questions.
            for word in ["exercise", "drink", "sleep", "goal", "?"] {
                assert!(!reply.to_lowercase().contains(word), "crisis reply contains {word:?}");
            }
        }
    }
}
