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

/// Phrase families that indicate self-harm or suicidal thoughts, matched on the normalised text
/// after hyperbole, denials and other subjects are blanked. Order matters only for the `signal`
/// label. Recall comes first: a false alarm costs one calm message with resources, a miss costs
/// far more. Tuned on the train and dev crisis splits (assistant/data/extract/crisis-*.jsonl);
/// families are written for the phrasing, not for one message, so that new wordings still match.
const CRISIS_PATTERNS: &[(&str, &str)] = &[
    ("suicide", r"\bsuicid(?:e|al|es)\b|\bunaliv\w*|\bkill(?:ing|ed)? myself\b|\bctb\b"),
    (
        "end-life",
        r"\b(?:end|ending|take|taking) my (?:own )?life\b|\bend(?:ing)? (?:it all|everything|things|my suffering)\b|\bfinish it all\b|\bend(?:ing)? it(?:$|[.,!?;:]| all\b| tonight\b| now\b| soon\b| today\b| here\b| for good\b| once and for all\b)|\bdecided to (?:die|end it|go through with it)\b",
    ),
    (
        "want-to-die",
        r"\b(?:want|wants|wanted|wanting|wish|wishing|ready|trying|going|deserve|need) (?:to )?(?:just |really |simply )?(?:die|be dead)\b|\bwish (?:i|i'd) (?:was|were|had) (?:dead|died)\b|\bwish i (?:wasn't|weren't|was not|were not) alive\b|\b(?:just )?not (?:be|being) alive\b|\bwish (?:i|i'd) (?:had never been|was never|wasn't|weren't|were never|had not been) born\b|\b(?:better off|better if i'?m|better if i was|rather be) dead\b|\bi'?d rather die(?:$|[.,!?])|\bshould (?:just )?(?:die|kill myself|end it)\b|\bfeel(?:ing)? like (?:dying|i want to die|ending it|killing myself)\b|\bthink(?:ing)? (?:about|of) (?:dying|death|my death|being dead|jumping|overdosing)\b|\bthoughts? (?:of|about) (?:dying|death|killing myself|ending it)\b|\b(?:death|dying) (?:would be|is|seems|feels like) (?:a relief|easier|better|the (?:only )?(?:answer|way out|option))\b|\beasier if i (?:just )?(?:died|was dead|were dead|wasn't here|wasn't around|was gone)\b|\bif i (?:died|was dead|were dead|didn't wake up|never woke up)\b|\blive or die\b|\bwish i could (?:just )?die\b|\bwant(?:ed)? to be gone\b|\bwant out(?: of (?:this|my) life| of life)?(?:$|[.,!?])|\bstop living\b|\bend myself\b|\b(?:my )?life is (?:pointless|over|meaningless)\b|\bwhy (?:am i|i'm|i am) still (?:alive|here)\b|\b(?:no|don't see a|don't see any|don't have a|don't have any) reason to (?:live|be alive|keep going|go on|stay)\b|\bgoing to jump(?:$|[.,!?])|\b(?:have|got|bought|holding) (?:a|my|the) gun\b|\bfeel like cutting\b|\b(?:part of me|i) wants? to die\b|\bveux mourir\b|\bquiero morir\b|\bwill sterben\b",
    ),
    (
        "no-reason-to-live",
        r"\bno (?:reason|point|will) (?:to|in) (?:live|living|go on|going on|keep going|be alive|being alive|be here|being here|stay|staying|anything|life)\b|\b(?:don't|do not|can't|cannot) see (?:the|any) point(?:$|[.,!?;]| anymore\b| in (?:anything|living|life|going on|trying|it all|being alive|carrying on)\b| of (?:anything|living|life|going on|it all|being alive)\b)|\bwhat's the point (?:of|in) (?:living|life|going on|anything|being alive|it all|trying anymore)\b|\bnothing (?:left )?to live for\b|\b(?:don't|do not|no longer|not|never) want(?:ing)? to (?:live|be alive|exist|wake up|be here|keep living|go on|be around)\b|\bnot (?:sure|certain) (?:if )?i want to (?:live|be alive|be here|keep living|go on|keep going|exist)\b|\bdon't know (?:if|whether) i want to (?:live|keep living|be alive|go on|keep going|be here)\b|\bcan't (?:go on|keep going|carry on|keep living|live like this|do this anymore|take it anymore|take this anymore)\b|\b(?:see no|no) (?:way out|future)\b|\bcan't see a future\b|\btired of (?:living|life|being alive|existing)\b|\bno point (?:in )?(?:living|being alive|going on)\b|\b(?:hope|hoping) i (?:just )?die\b|\bdone with (?:life|living|being alive|it all)\b|\bhate being alive\b|\bgiv(?:e|ing) up on (?:life|living)\b|\bgave up on (?:life|living)\b|\blife (?:isn't|is not|isnt|ain't) worth (?:living|it)\b|\bnot worth living\b",
    ),
    (
        "stop-existing",
        r"\bwant(?:ed|ing)? (?:it all|everything|this life|my life|life|it) (?:to )?(?:stop|end|be over|over)(?:$|[.,!?;]| forever\b| for good\b| now\b| already\b)|\bwant (?:it all|everything|this|it) to (?:just )?(?:stop|end|be over)\b(?:$|[.,!?;])|\bthe pain to (?:stop|end) (?:forever|for good|permanently)\b|\b(?:not|stop|never) (?:to )?exist(?:ing)?\b|\bwant(?:ed)? to disappear\b|\bdisappear(?:ed)? (?:forever|for good|from (?:this world|the world|existence|everyone))\b|\bfade away (?:and never|forever|for good)\b|\bfall asleep (?:forever|and never wake up)\b|\bnever wake up\b|\b(?:wish|want|hope)(?: i could| to)? (?:just )?(?:not|never) wake up\b|\bfall asleep and (?:not|never) wake up\b|\bwant to (?:go to )?sleep forever\b|\bdisappear\w* forever\b|\b(?:hope|hoping|wish|mind if|care if) i (?:don't|didn't|never|wouldn't|do not) wake up\b|\b(?:car|bus|truck|lorry|train) (?:hit|hits|would hit|ran over|runs over) me\b|\bdon't want to be (?:here|alive|around) anymore\b|\bwon't be (?:around|here|alive) (?:much longer|for long|anymore|tomorrow|next week)\b|\bnot (?:going to|gonna) be (?:around|here) (?:anymore|much longer|for long)\b|\bwon't (?:be a (?:problem|burden)|matter) (?:anymore|for long|much longer)\b",
    ),
    (
        "burden",
        r"\b(?:better|happier)(?: off)? without me\b|\bbetter off if i(?:'m| was| were) (?:gone|dead|not here|not around)\b|\b(?:if|when) i(?:'m| was| were| am) gone\b|\b(?:miss|notice|care) if i (?:died|was gone|were gone|disappeared|was dead|killed myself)\b|\b(?:nobody|no one|noone|no-one) would (?:\w+ )?(?:miss|notice|care)\b|\b(?:i'm|i am|i feel like|feel like|feeling like) (?:just |such |only )?(?:a|such a) burden\b|\bburden to (?:everyone|everybody|my family|you all)\b",
    ),
    (
        "means",
        r"\bways to (?:die|kill myself|end it)\b|\bhow to (?:die|kill myself|end it)\b|\bpainless (?:way|ways|death)\b|\bhow many (?:pills|tablets)\b|\b(?:pills|tablets) (?:ready|saved|stockpiled)\b|\bsav(?:e|ing) (?:up )?(?:my |the )?(?:pills|tablets|meds)\b|\bstockpil\w* (?:pills|tablets|meds)\b|\b(?:took|take|taking|swallow|swallowed|swallowing) (?:too many|a bunch of|all (?:my|the|of my)|a handful of|loads of|a whole (?:bottle|box|pack) of) (?:pills|tablets|meds|medication|painkillers)\b|\boverdos\w*|\bbought (?:a )?rope\b|\b(?:hang|hanging|drown|drowning|shoot|shooting|poison|poisoning|stab|stabbing|starve|starving|suffocate) myself\b|\bjump(?:ing)? (?:off|from) (?:a|the) (?:bridge|building|roof|cliff|balcony|ledge|tower)\b|\bin front of (?:a|the) (?:train|bus|car|truck|lorry)\b|\b(?:standing|sitting|looking) (?:on|at|over|by) the (?:bridge|ledge|edge of the bridge|tracks|train tracks|railway)\b|\bslit(?:ting)? my wrists?\b|\bthinking about my wrists\b|\b(?:suicide|goodbye) (?:note|letter)s?\b|\bgiv(?:e|ing) (?:all )?my (?:things|stuff|belongings) away\b|\bhow i(?:'d| would) do it(?:$|[.,!?])|\b(?:this is )?my last message\b|\bgoodbye (?:everyone|everybody|world|forever|all)\b|\bdo something stupid\b|\b(?:i'm|i am|i feel|feel) not safe\b|\bdon't trust myself\b",
    ),
    (
        "self-harm",
        r"\b(?:hurt|harm|cut|cutting|hurting|harming|burn|burned|burnt|burning|punish|punishing|hit|hitting|scratch|scratched|scratching) myself\b|\bself[- ]?harm\w*|\b(?:been|started|keep|kept|was) cutting\b|\bcutting again\b|\bcut deep(?:er)?\b|\b(?:urge|urges) to (?:cut|hurt|harm|burn)\b|\b(?:want|wanting|need) to cut\b(?:$|[.,!?;]| so\b| again\b| tonight\b| deep\b| bad\b| myself\b)|\b(?:blade|razor|knife) to my (?:arm|arms|wrist|wrists|skin|leg|legs|thigh|thighs)\b|\buntil (?:it|they|i) (?:bled|bleed|bruised|bruise)\b|\bwant to bleed\b|\bdeserve to (?:hurt|suffer|be in pain|die)\b|\b(?:don't|do not) deserve to (?:live|be alive|exist|be here)\b|\brelapsed (?:and cut|on self)\b",
    ),
];

/// Figures of speech, other subjects and explicit denials that use the same words without
/// meaning them. They are blanked out before the crisis phrases are matched, and each is written
/// narrowly: a message that also says something else on the list above stays flagged.
const HYPERBOLE_PATTERNS: &[&str] = &[
    r"\b(?:is|are|was|were|'s|'re) (?:literally |totally |absolutely |slowly )?killing me\b",
    r"\bkilling me (?:softly|slowly)\b",
    r"\bcould (?:literally )?kill for\b",
    r"\b(?:i'd|would) kill for\b",
    r"\bdying (?:to|for)\b",
    r"\bkill(?:ed|ing)? it\b",
    r"\bto die for\b",
    r"\b(?:die|dying|died) (?:of|from) (?:laughter|laughing|embarrassment|boredom|cuteness|shame|the heat|heat)\b",
    r"\bkill(?:ing)? (?:some )?time\b",
    r"\bi'm dead\b(?:\s*(?:😂|🤣|lol|lmao))",
    r"\bdied laughing\b",
    r"\bmy (?:phone|battery|laptop|plant|car)s? (?:is |are )?(?:dying|dead|died)\b",
    r"\bcut myself (?:some|a little|a bit of) slack\b",
    r"\bcut myself off from\b",
    // Accidents in the kitchen, the bathroom, the gym or a game are not self-harm.
    r"\bcut myself (?:while |when )?(?:chopping|cooking|shaving|slicing|on (?:a|the|some|my) \w+|by accident|accidentally)\b",
    r"\bburn(?:ed|t)? myself (?:cooking|on (?:a|the|some|my) \w+|while|with|by accident|accidentally)\b",
    r"\bhurt myself (?:at the gym|lifting|running|playing|on (?:a|the|some|my) \w+|while|falling|by accident|accidentally)\b",
    r"\bkill(?:ed|ing)? myself in (?:minecraft|fortnite|roblox|the game|a game|game|that game)\b",
    // Drills, films, car doors, hot wings and the people who work on the subject.
    r"\bsuicide (?:sprints?|drills?|runs?|squeeze|squad|doors?|wings?|prevention|hotline|helpline|line|rates?|awareness|charity|research|bombers?|bombings?|attacks?|bridges)\b",
    r"\bself[- ]?harm (?:patients?|awareness|prevention|charity|research|ward|unit)\b",
    r"\b(?:study|studying|studied|essay|article|lecture|class|course|documentary|book|podcast) (?:on |about |of )?(?:suicide|self[- ]?harm)\b",
    r"\bclean from self[- ]?harm\b",
    // Someone else's story ("my friend said she's feeling suicidal", "my brother self harms").
    r"\b(?:he|she|they)(?:'s| is|'re| are| was| were| has been| have been)(?: feeling| been)? suicidal\b",
    r"\b(?:he|she|they|friend|brother|sister|son|daughter|mum|mom|dad|partner|husband|wife|coworker|colleague|cousin)(?:'s)? (?:attempted|committed|died by) suicide\b",
    r"\b(?:he|she|friend|brother|sister|son|daughter|mum|mom|dad|partner|husband|wife|coworker|colleague|cousin) self[- ]?harms\b",
    r"\bsupport a friend who wants to die\b",
    // Explicit denials ("not suicidal, just tired").
    r"\b(?:not|never|no longer) (?:feeling )?suicidal\b",
    r"\b(?:i'd|i would|i will|i'll) never (?:hurt|harm|kill) myself\b",
    r"\bnot (?:going to|gonna) (?:hurt|harm|kill) myself\b",
    r"\bno (?:thoughts|intention|urges?) of (?:hurting|harming|killing) myself\b",
    r"\bno (?:thoughts|urges?) of (?:self[- ]?harm|suicide)\b",
    r"\bi don't want to die,",
    r"\bwant to wake up from (?:this|my|the|a) (?:nap|dream|lie-in)\b",
    r"\b(?:do|did|doing|ran|run|running) suicides\b",
    // Songs, caffeine and television.
    r"\bdon't want to live forever\b",
    r"\boverdos\w* on (?:caffeine|coffee|sugar|netflix|tv|chocolate|carbs|sweets|candy|cake|memes)\b",
    r"\b(?:sugar|caffeine|carb|coffee|cuteness|netflix) overdose\b",
    r"\bcovered overdoses\b",
    r"\bcan't go on (?:like this )?(?:with no |without (?:my |a |the |any )?)(?:morning )?(?:coffee|tea|caffeine|wifi|internet|snacks|chocolate)\b",
    r"\bdisappear(?:ing)? (?:to|into|on|for) (?:a |the |my )?(?:beach|holiday|island|book|mountains|weekend|week|month|cabin|vacation|trip)\b",
];

/// A joking "I want to die lol" is blanked unless the message says it is not a joke.
static JOKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:want to die|i'm dead|kill me) (?:lol|lmao|haha|jk|😂|🤣)").expect("the joke pattern compiles")
});
static NOT_A_JOKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bnot (?:joking|kidding)\b|\bseriously\b|\bfor real\b|\bfr\b|\bi mean it\b")
        .expect("the not-a-joke pattern compiles")
});

/// Spelling people use for the same words: typos, text speak and slang for suicide.
const SPELLINGS: &[(&str, &str)] = &[
    (r"\bdont\b", "don't"),
    (r"\bcant\b", "can't"),
    (r"\bwont\b", "won't"),
    (r"\bisnt\b", "isn't"),
    (r"\bdidnt\b", "didn't"),
    (r"\bwouldnt\b", "wouldn't"),
    (r"\bwhats\b", "what's"),
    (r"\btheres\b", "there's"),
    (r"\bim\b", "i'm"),
    (r"\bive\b", "i've"),
    (r"\bi ?d\b", "i'd"),
    (r"\b(?:wanna|wana)\b", "want to"),
    (r"\b(?:gonna|gona)\b", "going to"),
    (r"\b(?:wnat|wnt|wamt|whant)\b", "want"),
    (r"\bwant (?:2|too) ", "want to "),
    (r"\bwant (die|dead)\b", "want to $1"),
    (r"\bto dye(?:$|[.,!?])", "to die"),
    (r"\bkms\b", "kill myself"),
    (r"\bkil\b", "kill"),
    (r"\bmy ?self\b", "myself"),
    (r"\b(?:off|offing) myself\b", "kill myself"),
    (r"\b(?:sucidal|suicidle|suicdal|suicidel|suisidal|suicidial|sucidle|suicidall)\b", "suicidal"),
    (r"\b(?:sucide|suicde|suiside|sewerslide|sewer slide|suicied)\b", "suicide"),
    (r"\bthinkin\b", "thinking"),
    (r"\bbout\b", "about"),
    (r"\b(?:any more|no more|anymore)\b", "anymore"),
    (r"\bcould(?:n't| not) care less if i\b", "wouldn't care if i"),
];

static SPELLING_RES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    SPELLINGS.iter().map(|(p, to)| (Regex::new(p).expect("spelling patterns compile"), *to)).collect()
});

static CRISIS: LazyLock<(RegexSet, Vec<&'static str>)> = LazyLock::new(|| {
    let set = RegexSet::new(CRISIS_PATTERNS.iter().map(|(_, re)| *re)).expect("crisis patterns compile");
    (set, CRISIS_PATTERNS.iter().map(|(name, _)| *name).collect())
});

static HYPERBOLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("(?:{})", HYPERBOLE_PATTERNS.join("|"))).expect("hyperbole patterns compile"));

/// Lower case, typographic apostrophes and repeated spaces normalized ("don’t" is "don't"),
/// then the spellings above.
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
    let mut out = out.to_lowercase();
    for (re, to) in SPELLING_RES.iter() {
        if re.is_match(&out) {
            out = re.replace_all(&out, *to).into_owned();
        }
    }
    out
}

/// Decide whether a message is crisis language.
pub fn assess(text: &str) -> Assessment {
    let normalized = normalize(text);
    let mut cleaned = HYPERBOLE.replace_all(&normalized, " ").into_owned();
    if !NOT_A_JOKE.is_match(&cleaned) {
        cleaned = JOKE.replace_all(&cleaned, " ").into_owned();
    }
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
            // Passive ideation, typos and slang.
            "I don't see the point anymore, I just want it all to stop",
            "i cant go on",
            "they'd be better off if I was gone",
            "i wanna kil my self",
            "feeling suicidle",
            "i want to unalive myself",
            "hoping I don't wake up",
            "I'm not going to kill myself but I wish I was dead",
            "i wanna die lol but not joking",
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
            "I don't see the point of this meeting",
            "I want it to stop raining",
            "killed myself in Minecraft by falling in lava lol",
            "my friend said she's feeling suicidal, I'm worried about her",
            "stubbed my toe and I want to die lol",
            "want to disappear to a beach for a month",
            "overdosed on netflix this weekend",
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
