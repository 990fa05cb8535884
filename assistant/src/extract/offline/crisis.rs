//! Self-harm and suicide language.
//!
//! Recall matters more than precision here: a false alarm costs the user one calm message with
//! crisis resources, a miss costs far more. Hyperbole ("this deadline is killing me", "I could
//! kill for a coffee", "dying of laughter") never reaches these patterns: the normaliser's idiom
//! table has already rewritten it.

use std::sync::LazyLock;

use regex::Regex;

use super::text::re;

const CRISIS: &[&str] = &[
    r"\bsuicid(?:e|al)\b",
    r"\bunalive\b",
    r"\bkill(?:ing)? my ?self\b",
    r"\bkms\b",
    r"\b(?:end|ending|take|taking) my (?:own )?life\b",
    r"\b(?:end|ending) it all\b",
    r"\b(?:end|ending) things\b",
    r"\b(?:want|wanna|wanted|wish|ready|trying) (?:to )?(?:just )?(?:die|be dead)\b",
    r"\bwish i (?:was|were) dead\b",
    r"\bwish i (?:had never been|was never|wasn't|were never) born\b",
    r"\bbetter off dead\b",
    r"\b(?:everyone|they|people|the world|my family|everybody) (?:would be|is|are|'d be) better off without me\b",
    r"\bno (?:reason|point) (?:to|in) (?:live|living|go on|going on|being alive|being here)\b",
    r"\bnothing (?:left )?to live for\b",
    r"\b(?:don't|do not|no longer) want to (?:live|be alive|exist|wake up|be here)\b",
    r"\bcan't go on\b",
    r"\bnot want(?:ing)? to (?:live|be alive|wake up)\b",
    r"\bdon't want to be here any ?more\b",
    r"\bwant(?:ed)? to disappear (?:forever|for good)\b",
    r"\b(?:hurt|harm|cut|cutting|hurting|harming|burn|burning|starve|starving) my ?self\b",
    r"\bself[- ]?harm(?:ing|ed)?\b",
    r"\boverdos(?:e|ed|ing)\b",
    r"\bjump(?:ing)? off (?:a|the) (?:bridge|building|roof|cliff)\b",
    r"\bslit(?:ting)? my wrists?\b",
    r"\bpills? to end\b",
    r"\blife (?:isn't|is not|isnt) worth living\b",
    r"\bgiv(?:e|ing) up on (?:life|living)\b|\bgave up on (?:life|living)\b",
    r"\b(?:don't|do not|can't) see (?:the|any) point (?:in|of) (?:living|life|going on|being alive|anything any ?more)\b",
    r"\b(?:take|taking|swallow|swallowing) all (?:my|the|of my) (?:pills|tablets|meds|medication)\b",
];

/// Said about oneself, these deny rather than report ("I'm not suicidal, just tired"). The
/// denial must be explicit and about the same phrase; anything else stays flagged.
const DENIALS: &[&str] = &[
    r"\b(?:i'm|i am|im) not suicidal\b",
    r"\b(?:i'd|i would|i will|i'll) never (?:hurt|harm|kill) my ?self\b",
    r"\bnot (?:going to|gonna) (?:hurt|harm|kill) my ?self\b",
    r"\bno (?:thoughts|intention) of (?:hurting|harming|killing) my ?self\b",
    r"\bcut myself (?:some|a little|a bit of) slack\b",
    r"\bcut myself off from\b",
    r"\bcut myself (?:shaving|cooking|chopping|on|while|by accident|accidentally|slightly)\b",
    r"\bburn(?:ed|t)? myself (?:cooking|on|while|with|by accident|accidentally)\b",
    r"\bhurt myself (?:at the gym|lifting|running|playing|on|while|falling|by accident|accidentally)\b",
];

static CRISIS_RES: LazyLock<Vec<Regex>> = LazyLock::new(|| CRISIS.iter().map(|p| re(p)).collect());
static DENIAL_RE: LazyLock<Regex> = LazyLock::new(|| re(&DENIALS.join("|")));

/// Whether the (normalised) message mentions self-harm or suicide.
pub(crate) fn crisis(text: &str) -> bool {
    let cleaned = DENIAL_RE.replace_all(text, " ");
    CRISIS_RES.iter().any(|r| r.is_match(&cleaned))
}
