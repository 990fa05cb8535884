//! Intentions: what the user says they mean to do ("going to bed early", "will call mum").

use std::sync::LazyLock;

use regex::Regex;

use super::text::{BASE_VERBS, Clause, re};

/// Markers of intent, longest first so "going to try to" wins over "going to".
static MARKER_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:going to try to|going to try and|gonna try to|gonna try and|i'll try to|i'll try and|i'll|i will|i'm going to|i am going to|i'm gonna|going to|gonna|will|planning to|planning on|plan to|plan on|want to|wanna|hoping to|hope to|aiming to|aim to|intend to|need to|should|must|trying to|try to|i'd like to|would like to|promise to|determined to|off to|heading to|heading out to|about to|going for|remind me to|goal is to|aim is to|plan is to|'ll)\b",
    )
});
/// Words that may stand between the subject and the marker ("i really need to").
const ADVERBS: &[&str] = &[
    "really",
    "definitely",
    "probably",
    "still",
    "also",
    "just",
    "then",
    "later",
    "tonight",
    "tomorrow",
    "so",
    "and",
    "maybe",
    "hopefully",
    "def",
    "defo",
    "totally",
    "actually",
    "honestly",
    "now",
    "finally",
    "seriously",
    "today",
    "this",
    "evening",
    "afternoon",
    "after",
    "work",
    "think",
    "guess",
    "i",
    "but",
];
const SUBJECTS: &[&str] = &["i", "i'm", "we", "we're", "i've", "am", "i'd", "we'll", "i'll", "my"];
/// A past subject turns the marker into a plan that did not happen ("was going to").
const PAST: &[&str] = &["was", "were", "wasn't", "had", "would've", "should've"];
/// Intentions must be the user's own: "it's going to be a long day" is a forecast.
const NOT_SUBJECTS: &[&str] = &[
    "it", "it's", "its", "that", "this", "he", "she", "they", "you", "he's", "she's", "they're", "you're", "there",
    "there's", "which",
];
/// "be" starts an intention only for things the user can do ("be in bed by 10", "be kinder to
/// myself"), not forecasts ("be fine", "be late").
const BE_OK: &[&str] = &[
    "in", "kinder", "nicer", "gentle", "gentler", "more", "less", "better", "asleep", "early", "active", "outside",
    "offline",
];
const TRAILING_FILLERS: &[&str] = &[
    "lol",
    "haha",
    "hopefully",
    "tbh",
    "maybe",
    "probably",
    "x",
    "though",
    "too",
    "i",
    "think",
    "guess",
    "at",
    "least",
    "anyway",
    "for",
    "sure",
    "ok",
    "okay",
    "smiley",
    "flexed",
    "happy",
    "done",
];
const LEADING_FILLERS: &[&str] = &[
    "try",
    "to",
    "and",
    "actually",
    "definitely",
    "probably",
    "really",
    "just",
    "finally",
    "also",
    "then",
    "maybe",
    "def",
    "defo",
    "at",
    "least",
    "properly",
    "seriously",
    "hopefully",
];
/// Crisis language is never an intention to help with.
static CRISIS_WORDS_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(?:die|dead|kill|killing|hurt myself|harm myself|end it|end my life|disappear|overdose)\b")
});
/// "early night", "bed early": intentions without a marker, unless already done.
static EARLY_NIGHT_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:early night|an early one|bed early|early to bed|in bed by \d+(?: ?pm)?)\b"));
static PAST_CLAUSE_RE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:had|went|was|got|did|yesterday|last night)\b"));

fn clean(phrase: &str) -> String {
    let mut words: Vec<&str> = phrase.split_whitespace().collect();
    while words.first().is_some_and(|w| LEADING_FILLERS.contains(w)) {
        words.remove(0);
    }
    while words.last().is_some_and(|w| TRAILING_FILLERS.contains(w)) {
        words.pop();
    }
    words.join(" ")
}

/// The subject rule: only adverbs (or nothing, or "i") may stand before the marker.
fn own_subject(prefix: &str) -> bool {
    let words: Vec<&str> = prefix.split_whitespace().collect();
    if words.iter().any(|w| PAST.contains(w)) {
        return false;
    }
    let mut rest = words.iter().rev().skip_while(|w| ADVERBS.contains(w) && !SUBJECTS.contains(w));
    match rest.next() {
        None => true,
        Some(w) if SUBJECTS.contains(w) => true,
        Some(w) if NOT_SUBJECTS.contains(w) => false,
        Some(_) => false,
    }
}

/// Turns "going to bed early" into "go to bed early": "going to" is movement there.
fn phrase_after(marker: &str, after: &str) -> String {
    let first = after.split_whitespace().next().unwrap_or("");
    let movement = matches!(
        marker,
        "going to" | "gonna" | "i'm going to" | "i am going to" | "off to" | "heading to" | "heading out to"
    );
    let place = matches!(
        first,
        "bed"
            | "the"
            | "a"
            | "my"
            | "work"
            | "church"
            | "school"
            | "yoga"
            | "pilates"
            | "gym"
            | "class"
            | "mum"
            | "mom"
            | "dad"
            | "town"
            | "sleep"
    );
    if marker == "going for" {
        format!("go for {after}")
    } else if movement && place && first != "sleep" {
        format!("go to {after}")
    } else {
        after.to_string()
    }
}

fn acceptable(phrase: &str) -> bool {
    let mut words = phrase.split_whitespace();
    match (words.next(), words.next()) {
        (None, _) => false,
        (Some("be"), Some(next)) => BE_OK.contains(&next),
        (Some("be"), None) => false,
        _ => !CRISIS_WORDS_RE.is_match(phrase),
    }
}

pub(crate) fn intentions(clauses: &[Clause]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut previous: Option<(usize, usize)> = None; // (sentence, clause index) of the last intention
    for clause in clauses {
        let t = clause.text.as_str();
        let mut found = None;
        if let Some(m) = MARKER_RE.find(t) {
            let prefix = &t[..m.start()];
            let marker = m.as_str();
            let subject_in_marker = marker.starts_with("i'") || marker.starts_with("i ");
            if subject_in_marker && !PAST.iter().any(|p| prefix.split_whitespace().any(|w| w == *p))
                || own_subject(prefix)
            {
                let phrase = clean(&phrase_after(marker, t[m.end()..].trim()));
                if acceptable(&phrase) {
                    found = Some(phrase);
                }
            }
        }
        if found.is_none()
            && let Some((sentence, index)) = previous
            && sentence == clause.sentence
            && index + 1 == clause.index
        {
            let first = t.split_whitespace().next().unwrap_or("");
            if BASE_VERBS.contains(&first) {
                let phrase = clean(t);
                if acceptable(&phrase) {
                    found = Some(phrase);
                }
            }
        }
        if found.is_none() && clause.plan {
            let phrase = clean(t);
            if acceptable(&phrase) {
                found = Some(phrase);
            }
        }
        if found.is_none()
            && !PAST_CLAUSE_RE.is_match(t)
            && let Some(m) = EARLY_NIGHT_RE.find(t)
        {
            found = Some(m.as_str().to_string());
        }
        if let Some(phrase) = found {
            previous = Some((clause.sentence, clause.index));
            if !out.contains(&phrase) {
                out.push(phrase);
            }
        }
    }
    out
}
