//! Mood word, valence, energy and stress.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::text::{Clause, Hit, Intensity, Rules, re};
use crate::checkin::{Level, Valence};

/// A feeling word: the canonical mood it names, how positive it is, whether it is "weak", and the
/// mood it names when negated.
///
/// Weak words ("good", "fine", "rough", "down") are everywhere in check-ins without naming a
/// feeling ("good sleep", "sat down"), so they name the mood only after a feeling frame ("feeling
/// good", "i'm fine"), before a day word ("rough day"), or as a clause of their own ("Good!").
/// They still count towards valence wherever they appear.
struct Feeling {
    pattern: &'static str,
    mood: &'static str,
    valence: i32,
    weak: bool,
    negated: Option<(&'static str, i32)>,
}

/// Weak words that are feelings only in a frame ("feeling down", "i'm spent"); elsewhere they
/// are something else entirely ("sat down", "spent the evening", "dead battery").
const FRAME_ONLY: &[&str] = &[
    "down", "low", "flat", "blue", "spent", "beat", "dead", "alone", "mad", "ill", "well", "better", "worse", "normal",
    "average", "neutral", "positive", "nice", "lovely", "decent",
];

const fn f(pattern: &'static str, mood: &'static str, valence: i32) -> Feeling {
    Feeling { pattern, mood, valence, weak: false, negated: None }
}
const fn weak(pattern: &'static str, mood: &'static str, valence: i32) -> Feeling {
    Feeling { pattern, mood, valence, weak: true, negated: None }
}
const fn neg(mut feeling: Feeling, mood: &'static str, valence: i32) -> Feeling {
    feeling.negated = Some((mood, valence));
    feeling
}

/// Slang and near-synonyms map to one canonical word so that insights can count moods.
const FEELINGS: &[Feeling] = &[
    // Positive.
    neg(f("happy|cheerful|joyful|glad|upbeat|chirpy|jolly|delighted|chuffed|elated", "happy", 2), "unhappy", -2),
    f("excited|stoked|psyched|hyped|buzzing|thrilled|pumped", "excited", 2),
    neg(
        weak(
            "great|amazing|awesome|fantastic|wonderful|excellent|brilliant|fab|fabulous|superb|terrific|incredible|epic",
            "great",
            2,
        ),
        "low",
        -1,
    ),
    neg(weak("good|lovely|nice|positive", "good", 1), "low", -1),
    neg(weak("well", "good", 1), "unwell", -1),
    weak("better", "better", 1),
    f("calm|peaceful|serene|zen|at peace|at ease", "calm", 1),
    f("relaxed|chilled|chill|mellow|laid-back|laid back", "relaxed", 1),
    f("content|contented|smiley", "content", 1),
    f("grateful|thankful|blessed|appreciative", "grateful", 2),
    f("proud|accomplished", "proud", 2),
    neg(f("motivated|inspired|driven|determined", "motivated", 2), "unmotivated", -1),
    f("hopeful|optimistic", "hopeful", 1),
    f("energetic|energized|lively", "energetic", 2),
    f("refreshed", "refreshed", 2),
    f("rested", "rested", 1),
    f("productive|focused", "productive", 1),
    f("confident", "confident", 1),
    // "feeling strong" is energy (docs/labelling.md), and "strong" mostly rates a body or a
    // coffee: it names a mood but gives no valence (see TIREDNESS).
    f("strong", "strong", 1),
    f("loved", "loved", 2),
    // Neutral.
    neg(weak("okay|ok|alright|all right|fine|decent", "okay", 0), "low", -1),
    weak("normal|neutral|average", "okay", 0),
    f("meh|blah|bleh|so-so|indifferent", "meh", 0),
    // Negative.
    f("tired|sleepy|fatigued|weary|drowsy|yawning|tiring", "tired", -1),
    f(
        "exhausted|exhausting|knackered|wiped|wiped out|zonked|shattered|wrecked|pooped|burntout|fried|zombie",
        "exhausted",
        -2,
    ),
    weak("spent|beat|dead", "exhausted", -2),
    f("drained|draining", "drained", -2),
    f("sluggish|lethargic|groggy", "sluggish", -1),
    f(
        "sad|unhappy|miserable|teary|tearful|crying|cried|heartbroken|gutted|devastated|frowny|had a (?:little |good |big )?cry",
        "sad",
        -2,
    ),
    f("depressed|gloomy|deflated|downhearted|dejected", "down", -2),
    weak("down|low|flat|blue", "down", -2),
    f("lonely|isolated", "lonely", -2),
    weak("alone", "lonely", -2),
    f("anxious|panicky|panicking|jittery|on edge", "anxious", -2),
    f("nervous", "nervous", -1),
    f("worried|uneasy", "worried", -1),
    f("scared|afraid|fearful|frightened", "scared", -2),
    f("stressed|frazzled|tense", "stressed", -2),
    f("overwhelmed|swamped|snowed under", "overwhelmed", -2),
    f("angry|furious|livid|pissed off|pissed|raging", "angry", -2),
    weak("mad", "angry", -2),
    f("annoyed|irritated|irked", "annoyed", -1),
    f("frustrated|fedup|exasperated", "frustrated", -2),
    f("irritable|hangry|snappy", "irritable", -1),
    f("grumpy|cranky", "grumpy", -1),
    f("sick|unwell|poorly|nauseous|queasy|fever|hungover|hangover", "sick", -1),
    weak("ill", "sick", -1),
    neg(
        weak("awful|terrible|horrible|crap|crappy|shit|shitty|lousy|rubbish|dreadful|horrendous", "awful", -2),
        "okay",
        0,
    ),
    // "not bad!" is mildly good; "not too bad" stays neutral (see `litotes`).
    neg(weak("bad", "bad", -1), "okay", 1),
    weak("rough|worse", "rough", -1),
    f("numb|empty", "numb", -2),
    f("hopeless|helpless|worthless", "hopeless", -2),
    f("guilty|ashamed", "guilty", -1),
    f("unmotivated|demotivated|apathetic|listless", "unmotivated", -1),
    f("restless|antsy", "restless", -1),
    f("bored", "bored", -1),
];

/// Moods that are about energy only.
const TIREDNESS: &[&str] = &["tired", "exhausted", "drained", "sluggish", "refreshed", "rested", "energetic", "strong"];

/// Cues that say how the user feels without naming a mood.
const VALENCE_CUES: &[(&str, i32)] = &[
    ("did great|did a great|had a great time|perfect|can't wait", 2),
    (
        "laughing|yay|woo+|woohoo|yess+|love|loved it|loving|flexed|proud of myself|win|wins|best|fun|meaningful|fulfilling|finally|celebrating|celebrated|nailed|aced",
        1,
    ),
    // Calm and relief are good feelings; a stress-free day is a good day.
    (
        "centered|centred|vibing|vibes|high spirits|unstoppable|no stress|zero stress|stress free|stress-free|low stress|zero worries|no worries|looking forward|relieved|relief|satisfied|feel lighter|lighter|feeling like a beast",
        1,
    ),
    // Everyday ways of saying the day went well or badly without a mood word.
    (
        "lovely|wonderful day|delighted|cheerful|joy|blessed|can't complain|cant complain|got the job|holiday|yay+|excited|stoked|calmer|relax|relaxd|happy|hapy|gud|lit|slay|best life|on top of the world|in love|tgif|friday feeling",
        1,
    ),
    (
        "homesick|cranky|grumpy|feel off|out of sorts|low mood|mood is bad|garbage|like crap|like poo|like trash|like shit|wits' end|at my limit|so done|already done|not vibing|blah|bleh|sucks|down bad|not it|bruh|sick of|gutted|rejected|didn't get the|dumped|arguments?|fought|shaky|miss my|numb|nothing feels good|crying|cried|teary|lonely|awful|blues|scaries|mid|disaster|write-off",
        -1,
    ),
    // An explicit middle.
    (
        "same as usual|nothing new|nothing special|nothing much|normal day|5/10|so-so|so so|okayish|ok-ish|okay-ish|existing|surviving|it is what it is|could be worse|not too bad|not bad not good|not happy,? not sad",
        0,
    ),
    // Worry and pressure are bad feelings even without a mood word.
    (
        "worrying|dreading|dread|pressure|drowning|fed up|write-off|foul mood|trash|can't breathe|racing|impatient|ignored|want to cry|heartbroken|dumped|not feeling it",
        -1,
    ),
    (
        "ugh|hate|hated|sucks|sucked|crushing me|worst|argh|disaster|nightmares?|insane|anxiety|headache|migraine|pointless|meaningless|panic attack",
        -1,
    ),
    // Idioms of mood: how people say they feel without a feeling word. Phrases that start
    // with their own negator ("not myself") are matched whole, so the negation is theirs.
    (
        "never been happier|couldn't be happier|could not be happier|never felt better|couldn't be better|good place|good headspace|good space|cloud nine|over the moon|walking on air|like myself again|good spirits|heart is full|full heart|can't stop smiling|cant stop smiling|grinning|smiling|looking up|life is good|life's good|had a blast|no complaints|bliss|blissful|on a high|good mood|great mood|best mood|mood(?:'s| is| has) (?:been )?(?:lifted|up|good|great)|in a (?:good|great|happy) mood|treated myself|me time",
        1,
    ),
    (
        "funk|slump|in the dumps|not myself|not feeling myself|(?:i'm|im|been|am|i am) struggling|struggling (?:a bit|a lot|today|lately|mentally|emotionally)|(?:hard|tough|rough) time|feels? heavy|under a (?:bit of a )?cloud|a bust|nothing (?:goes|is going|went|'s going) right|salty|can't be bothered|cant be bothered|couldn't be bothered|bad mood|foul mood|grumpy mood|failure|bummed|upset|hurt that|(?:feel|felt|so|really) hurt|disappointed|disappointing|fuming|feeling off|not in a (?:good|great) (?:place|headspace|space|mood)|(?:mood|spirits) (?:is|are|was|were|'s) (?:not (?:so |that |very |too )?(?:good|great)|low|bad|rubbish|terrible|awful|down|in the gutter)|in my feelings|about to snap|so done|gross|rubbish|overthinking|dreading|piling up|behind on|breaking point|nerves are shot|head above water|stretched (?:way |too |so )?thin|freaking out|a wreck|could cry|annoying me|on my nerves|didn't enjoy|did not enjoy",
        -1,
    ),
];

/// Nouns a rating word can describe instead of the writer ("lovely walk", "best sleep in ages",
/// "amazing pizza"): a valence cue directly before one of them says how that thing was, not how
/// the writer feels (docs/labelling.md).
const RATED_THINGS: &[&str] = &[
    "sleep",
    "night",
    "night's",
    "nap",
    "run",
    "walk",
    "hike",
    "swim",
    "ride",
    "workout",
    "session",
    "class",
    "lunch",
    "dinner",
    "breakfast",
    "meal",
    "food",
    "pizza",
    "coffee",
    "tea",
    "weather",
    "traffic",
    "film",
    "movie",
    "show",
    "book",
    "game",
    "match",
    "gym",
    "sandwich",
    "salad",
    "burger",
    "cake",
    "view",
    "news",
    "podcast",
    "song",
    "music",
    "playlist",
    "restaurant",
    "shower",
    "bath",
];
/// Words that may stand between a rating word and the thing it rates ("lovely long walk").
const RATED_FILLERS: &[&str] =
    &["long", "little", "quick", "big", "solid", "short", "early", "late", "hot", "cold", "new"];

/// Whether a rating word followed by `after` describes a thing, not the writer.
pub(crate) fn rates_a_thing<'a>(mut after: impl Iterator<Item = &'a str>) -> bool {
    after.find(|w| !RATED_FILLERS.contains(w)).is_some_and(|w| RATED_THINGS.contains(&w))
}

/// Words that put a weak feeling word in a feeling frame. The words between the frame and the
/// feeling ("feeling really quite good") are skipped.
const FRAMES: &[&str] = &["feel", "feels", "feeling", "felt", "i'm", "am", "doing", "i'd", "everything's", "been"];
const FRAME_FILLERS: &[&str] = &[
    "a",
    "bit",
    "little",
    "really",
    "pretty",
    "quite",
    "so",
    "very",
    "super",
    "kind",
    "sort",
    "of",
    "rather",
    "fairly",
    "not",
    "too",
    "that",
    "just",
    "actually",
    "honestly",
    "overall",
    "generally",
    "totally",
    "mostly",
    "somewhat",
    "still",
    "all",
    "in",
    "and",
    "reasonably",
    "incredibly",
    "extremely",
    "genuinely",
    "surprisingly",
    "like",
    "kinda",
    "tbh",
    "much",
    "way",
    "lot",
    "heaps",
    "loads",
    "properly",
    "absolutely",
    "proper",
    "bloody",
    "damn",
];
/// Everything a clause may hold besides a weak feeling word and still count as "just that word"
/// ("Good thanks!", "pretty rough today tbh").
const STANDALONE_FILLERS: &[&str] = &[
    "thanks",
    "thank",
    "you",
    "today",
    "overall",
    "so",
    "far",
    "tbh",
    "lol",
    "honestly",
    "here",
    "now",
    "all",
    "things",
    "pretty",
    "really",
    "just",
    "quite",
    "very",
    "super",
    "kind",
    "of",
    "a",
    "bit",
    "mostly",
    "actually",
    "hey",
    "hi",
    "hello",
    "hiya",
    "oh",
    "yeah",
    "yes",
    "ya",
    "yep",
    "im",
    "i'm",
    "it's",
    "its",
    "been",
    "was",
    "is",
    "day",
    "morning",
    "afternoon",
    "evening",
    "week",
    "not",
    "too",
    "feeling",
    "doing",
    "feel",
    "life",
    "ish",
    "ty",
    "tonight",
    "atm",
    "right",
    "moment",
    "at",
    "the",
    "still",
    "mostly",
    "generally",
    "otherwise",
    "good",
    "great",
];
const DAY_WORDS: &[&str] =
    &["day", "morning", "afternoon", "evening", "week", "weekend", "start", "one", "mood", "vibes"];

static FEELING_SET: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(FEELINGS.iter().map(|f| format!(r"\b(?:{})\b", f.pattern))).expect("feeling set compiles")
});
static FEELING_RES: LazyLock<Vec<Regex>> =
    LazyLock::new(|| FEELINGS.iter().map(|f| re(&format!(r"\b(?:{})\b", f.pattern))).collect());
/// "great," "oh fantastic," opening a message that goes on with a complaint.
static SARCASM_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:oh |yeah |just |sure |wow |well |so )*(?:great|fantastic|perfect|brilliant|wonderful|lovely|awesome|amazing|super|thrilled|just perfect)$",
    )
});
/// Phrases that are sarcastic wherever they appear.
static SARCASM_ANYWHERE_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:love that for me|just thrilled|love being woken|yeah totally relaxed|so much fun,? not|really\. love it)\b",
    )
});

/// A glowing opener that is sarcastic when a mishap follows it ("oh good, the printer is broken
/// again"); alone or before good news it is sincere.
static SARCASM_OPENER_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:oh |yeah |just |sure |wow |well |so |cool )*(?:good|great|fantastic|perfect|brilliant|wonderful|lovely|awesome|amazing|super|yay|woohoo|cool|nice|love it|love that|just what i needed|exactly what i needed|what a (?:great|lovely|perfect|fantastic|brilliant) (?:start|day|morning|way to start the day)|perfect timing|living the dream|thanks universe|cheers)(?: cool)*$",
    )
});
/// Everyday mishaps: what sarcasm is usually about.
static MISHAP_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:broke|broken|breaks|broke down|cancelled|canceled|stuck|locked (?:myself )?out|spilled|spilt|died|dead|flat tyre|flat tire|sick|again|delayed|lost|went up|raised|more meetings|crashed|down again|yelling|leaking|leak|flooded|overslept|missed|late|fined|ticket|rejected|ruined)\b",
    )
});

/// A mood or a day rated out of ten: 7 and up is good, 5 and 6 the middle, 4 and below bad.
static RATING_RE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:mood|day|vibes?)\W{0,3}(10|[0-9]) ?/ ?10\b|\b(10|[0-9]) ?/ ?10 (?:day|mood)\b"));

static VALENCE_RES: LazyLock<Vec<(Regex, i32)>> =
    LazyLock::new(|| VALENCE_CUES.iter().map(|(p, v)| (re(&format!(r"\b(?:{p})\b")), *v)).collect());

/// "not too bad", "not that bad": a negated complaint hedged to the middle.
fn litotes(before: &str) -> bool {
    before.split_whitespace().last().is_some_and(|w| matches!(w, "too" | "that" | "so" | "very"))
}

fn framed(before: &str) -> bool {
    let words: Vec<&str> = before.split_whitespace().collect();
    let mut i = words.len();
    while i > 0 && FRAME_FILLERS.contains(&words[i - 1]) && !FRAMES.contains(&words[i - 1]) {
        i -= 1;
    }
    i > 0 && FRAMES.contains(&words[i - 1])
}

fn standalone(clause: &str, word: &str) -> bool {
    let mut seen = false;
    for w in clause.split_whitespace() {
        if w == word && !seen {
            seen = true;
        } else if !STANDALONE_FILLERS.contains(&w) && !FRAME_FILLERS.contains(&w) {
            return false;
        }
    }
    seen
}

fn day_word_follows(after: &str) -> bool {
    after.split_whitespace().next().is_some_and(|w| DAY_WORDS.contains(&w))
}

/// A feeling word found in one clause.
#[derive(Clone, Debug)]
struct MoodHit {
    mood: &'static str,
    valence: i32,
    /// Names the mood (not only colours the valence).
    names: bool,
    framed: bool,
    /// Judges the whole day ("good day"): counts double towards valence.
    day: bool,
    contrast: bool,
    clause: usize,
    start: usize,
}

fn mood_hits(clauses: &[Clause]) -> Vec<MoodHit> {
    let mut hits = Vec::new();
    for clause in clauses {
        let text = clause.text.as_str();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let present = FEELING_SET.matches(text);
        for (feeling, re) in
            FEELINGS.iter().zip(FEELING_RES.iter()).enumerate().filter(|(i, _)| present.matched(*i)).map(|(_, p)| p)
        {
            for m in re.find_iter(text) {
                // "down" in "calm down", "low" in "low energy" are covered by longer words.
                if spans.iter().any(|&(s, e)| s <= m.start() && m.end() <= e) {
                    continue;
                }
                let before = &text[..m.start()];
                let after = &text[m.end()..];
                if FRAME_ONLY.contains(&m.as_str()) && !framed(before) && !standalone(text, m.as_str())
                    || super::text::someone_else(before)
                {
                    continue;
                }
                let is_framed = framed(before);
                let day = day_word_follows(after);
                let names = !feeling.weak || is_framed || standalone(text, m.as_str()) || day;
                let (mood, valence) = if super::text::negated(before) {
                    match feeling.negated {
                        Some((mood, v)) if v > 0 && litotes(before) => (mood, 0),
                        Some(n) => n,
                        // "not stressed", "not sad": says what the user is not, not what they are.
                        None => continue,
                    }
                } else {
                    (feeling.mood, feeling.valence)
                };
                spans.push((m.start(), m.end()));
                hits.push(MoodHit {
                    mood,
                    valence,
                    names,
                    framed: is_framed,
                    day,
                    contrast: clause.contrast,
                    clause: clause.index,
                    start: m.start(),
                });
            }
        }
    }
    hits.sort_by_key(|h| (h.clause, h.start));
    hits
}

/// The mood word: a framed feeling beats an unframed one; what follows "but" beats what precedes
/// it; otherwise the first, since people lead with how they feel.
pub(crate) fn mood_and_valence(clauses: &[Clause]) -> (Option<String>, Valence) {
    let hits = mood_hits(clauses);
    let mood = hits
        .iter()
        .filter(|h| h.names)
        .enumerate()
        .max_by_key(|(i, h)| (h.contrast, h.framed, std::cmp::Reverse(*i)))
        .map(|(_, h)| h.mood.to_string());

    // (contrast, weight) of every valence cue. What follows "but" decides when it says anything:
    // "tired but happy" is positive, "slightly tired but ok" neutral.
    let mut cues: Vec<(bool, i32)> = Vec::new();
    // Tiredness names a mood but says how much energy there is, not whether the user feels good
    // or bad (docs/labelling.md): "so tired" is low energy with no valence.
    // A weak word that names nothing ("good sleep", "terrible night") rates something else.
    for h in hits.iter().filter(|h| !TIREDNESS.contains(&h.mood) && h.names) {
        cues.push((h.contrast, h.valence * if h.day { 2 } else { 1 }));
    }
    for clause in clauses {
        for (re, v) in VALENCE_RES.iter() {
            for m in re.find_iter(&clause.text) {
                // "good place" names the writer's state; "lovely walk" rates the walk.
                if !super::text::negated(&clause.text[..m.start()])
                    && !rates_a_thing(clause.text[m.end()..].split_whitespace())
                {
                    cues.push((clause.contrast, *v));
                }
            }
        }
    }
    // Tracker ratings: "mood 3/10", "10/10 day".
    for clause in clauses {
        for caps in RATING_RE.captures_iter(&clause.text) {
            if let Some(n) = caps.get(1).or_else(|| caps.get(2)).and_then(|m| m.as_str().parse::<i32>().ok()) {
                cues.push((clause.contrast, (n - 5).signum() * 2 * i32::from(n != 6)));
            }
        }
    }
    // Sarcasm: a glowing word thrown at a bad event ("oh fantastic, the car broke down again").
    let mishap = clauses.len() > 1 && clauses[1..].iter().any(|c| MISHAP_RE.is_match(&c.text));
    if clauses.first().is_some_and(|c| SARCASM_RE.is_match(&c.text) || (mishap && SARCASM_OPENER_RE.is_match(&c.text)))
        || clauses.iter().any(|c| SARCASM_ANYWHERE_RE.is_match(&c.text))
    {
        cues.push((false, -6));
    }
    let contrast: Vec<i32> = cues.iter().filter(|(c, _)| *c).map(|(_, v)| *v).collect();
    let deciding: Vec<i32> = if contrast.is_empty() { cues.iter().map(|(_, v)| *v).collect() } else { contrast };
    let score: i32 = deciding.iter().sum();
    let valence = match (deciding.len(), score) {
        (0, _) => Valence::Unknown,
        (_, s) if s > 0 => Valence::Positive,
        (_, s) if s < 0 => Valence::Negative,
        _ => Valence::Neutral,
    };
    (mood, valence)
}

const LOW: Option<Level> = Some(Level::Low);
const MEDIUM: Option<Level> = Some(Level::Medium);
const HIGH: Option<Level> = Some(Level::High);

/// Energy. A mild "a bit tired" is medium; "not tired" is medium, "not tired at all" high.
const ENERGY: &[(&str, Option<Level>, Option<Level>)] = &[
    (
        "tired|sleepy|exhausted|exhausting|knackered|wiped|wiped out|zonked|shattered|wrecked|drained|draining|fatigued|weary|drowsy|sluggish|lethargic|groggy|burntout|pooped|tiring|yawning|fried|zombie",
        LOW,
        MEDIUM,
    ),
    ("tired at all|sleepy at all", None, HIGH),
    ("(?:i'm|so|totally|completely|absolutely|feeling|feel) (?:spent|beat|dead)", LOW, None),
    (
        "no energy|zero energy|low energy|low on energy|out of energy|energy (?:is |was |'s )?(?:low|zero|gone|non-existent)|(?:not much|not a lot of|little|hardly any|barely any|very little) energy",
        LOW,
        MEDIUM,
    ),
    (
        "can't keep my eyes open|need a nap|could sleep for a week|half asleep|brain fog|foggy|need sleep|dragging",
        LOW,
        None,
    ),
    // Everyday ways of saying the tank is empty or full without an energy word.
    (
        "(?:can|could) barely keep my eyes open|dying for a nap|heavy and slow|(?:body|legs|arms|limbs) (?:feel |feels |felt )?(?:so |really )?(?:heavy|like lead)|need (?:coffee|caffeine) to function|need to recharge|running on (?:fumes|empty)|out of gas|no gas (?:left )?in the tank|low battery|🪫",
        LOW,
        None,
    ),
    (
        "(?:feel|feeling|felt|feels|legs feel|body feels) (?:so |super |really |very |pretty |quite )?strong|(?:so much|full of|bursting with|tons of|loads of) energy|energy to burn|could run a marathon|unstoppable|gas in the tank|energised|enrgized|fired up|charged up|firing on all cylinders",
        HIGH,
        None,
    ),
    (
        "energetic|energized|buzzing|pumped|raring to go|lively|refreshed|wide awake|alert|on fire|bouncing off the walls",
        HIGH,
        LOW,
    ),
    (
        "(?:good|great|high|lots of|plenty of|loads of) energy|energy (?:is |was |'s )?(?:pretty |really |very |quite |super |so )?(?:high|good|great|through the roof|amazing)",
        HIGH,
        LOW,
    ),
    (
        "(?:medium|moderate|average|okay|ok|decent|normal) energy|energy(?: levels?)? (?:is |are |was |were )?(?:ok|okay|fine|alright|decent|average|so-so|meh|moderate|normal|medium|not bad)",
        MEDIUM,
        None,
    ),
];

/// Stress. A mild "a bit stressed" is medium; "not stressed" is low; "can't relax" high.
const STRESS: &[(&str, Option<Level>, Option<Level>)] = &[
    (
        "stressed|stressful|stress|overwhelmed|overwhelming|anxious|anxiety|panicking|panicky|panic|frazzled|tense|on edge|swamped|slammed|snowed under|wound up|burntout|losing my mind|going crazy|worried sick|drowning|chaotic|under (?:a lot of |so much |loads of )?pressure|at my wits'? end",
        HIGH,
        LOW,
    ),
    (
        "(?:deadlines?|work|job|boss|meetings?|project|workload|emails?|this week|exams?|commute|kids)\\b.{0,30}\\bcrushing me",
        HIGH,
        None,
    ),
    (
        "so much (?:to do|on)|too much (?:to do|on my plate|going on)|(?:crazy|super|so|insanely|really|very|extremely|ridiculously|stupidly) busy|no time to breathe|flat out|run off my feet|rushed off my feet",
        HIGH,
        None,
    ),
    ("(?:i'm|i am|been|just|pretty|quite) busy|busy (?:day|week|morning|afternoon|at work|shift)", MEDIUM, LOW),
    (
        "hectic|frantic|a lot on|pressure|manageable stress|stress(?: levels?)? (?:is |are |was )?(?:manageable|moderate|medium)",
        MEDIUM,
        None,
    ),
    // Worry and nerves said plainly are high (docs/labelling.md: "so worried", "nervous about
    // the interview"); "a little worried" is softened to medium; "not worried" is low.
    ("nervous|nerves|worried|worry|worrying|uneasy|jittery|dread|dreading|dreaded|scaries", HIGH, LOW),
    // A softener after the verb: "stresses me a bit", "a touch of stress".
    (
        "(?:stresses|stressing|stressed) me (?:out )?(?:a bit|a little|slightly|a tad)|(?:a touch|a bit|a little|a tad|a smidge) of (?:stress|pressure|anxiety)|(?:some|mild|slight|minor) (?:stress|pressure|anxiety|nerves)|stressed-ish|stressy|looming|(?:money|cash|budget|finances|things) (?:is|are) (?:a bit |a little |pretty |quite )?tight",
        MEDIUM,
        None,
    ),
    // Stress without a stress word: a mind that will not stop, a body on alert, a pile of work.
    (
        "stressing|stresses me|stressed me|stressing me out|overthinking|overthink|spiralling|spiraling|racing thoughts|(?:mind|brain|head|thoughts) (?:is |are |keeps? |won't stop |wouldn't stop )?racing|(?:mind|brain|head) (?:won't|wouldn't|will not|would not|can't|cannot|couldn't) (?:shut off|switch off|stop|shut up|calm down|quiet down|slow down)|head (?:is )?spinning|can't stop (?:worrying|stressing|overthinking|thinking about)|cant stop (?:worrying|stressing|overthinking|thinking about)|(?:can't|cannot|cant|couldn't) switch off|behind on everything|(?:so|way|really|hopelessly) behind|falling behind|piling up|piled up|(?:all|everything is|it's all|it is all) too much|stretched (?:way |too |so )?thin|head above water|breaking point|at my limit|end of my (?:rope|tether)|nerves are shot|nervous wreck|(?:i'm|im|i am|a total|a complete|an absolute) (?:a )?wreck|freaking out|freak out|(?:hands|legs|voice) (?:are |is )?shaking|shaky|chest (?:is |feels |felt )?tight|tight chest|heart (?:is |was )?(?:pounding|racing)|walking on eggshells|about to (?:snap|lose it|explode|break down)|a million things|no time to (?:breathe|think|do)|so much pressure|(?:lots|loads|tons) of pressure|pressure is (?:unreal|insane|immense|huge|crazy|too much|intense)|(?:huge|massive|immense|crazy|insane|intense) pressure|pressure (?:is )?(?:on|mounting)",
        HIGH,
        None,
    ),
    (
        "stress(?: levels?)?:? (?:is |are |was |has |have )?(?:way |much |really |finally |pretty )?(?:low|fine|ok|okay|alright|under control|down|gone|zero|0|1/10|2/10|1|2)|no stress|stress-free|stress free|low stress|low-stress|(?:anxiety|nerves|worry|worries) (?:is |are |was |has |have )?(?:finally |way |much )?(?:low|down|gone|better|under control|settled)|zero (?:worries|pressure|stress)|no (?:worries|pressure)|nothing to (?:stress|worry) about",
        LOW,
        None,
    ),
    ("stress(?: levels?)? (?:is |are |was )?(?:high|through the roof|off the charts|insane)", HIGH, None),
    (
        "relaxed|relaxing|calm|calmer|chill|chilled|chilling|at ease|peaceful|zen|serene|mellow|laid-back|laid back|easy day|lazy day|unwound|at peace|grounded|centered|centred|easy going|easygoing|easy breezy|(?:took|taking|take) it easy|breathing easy|(?:feel|feeling|felt) (?:so much |much |a lot )?lighter|(?:mind|head) (?:feels |is |was )?(?:clear|quiet|calm|still)|(?:can|could) finally relax|(?:feel|feeling) relax|relaxd|bliss|blissful|without a care|nowhere to be",
        LOW,
        HIGH,
    ),
    ("relax|switch off|wind down|unwind", None, HIGH),
];

static ENERGY_RULES: LazyLock<Rules<Level>> = LazyLock::new(|| Rules::new(ENERGY));
static STRESS_RULES: LazyLock<Rules<Level>> = LazyLock::new(|| Rules::new(STRESS));

/// A mild high or low becomes medium.
fn soften(hit: &Hit<Level>) -> Level {
    match (hit.value, hit.intensity, hit.negated) {
        (Level::High | Level::Low, Intensity::Mild, false) => Level::Medium,
        (v, ..) => v,
    }
}

/// The last thing said wins: "was stressed this morning but calm now" is calm.
fn last(hits: &[Hit<Level>]) -> Level {
    hits.last().map_or(Level::Unknown, soften)
}

pub(crate) fn energy(clauses: &[Clause]) -> Level {
    last(&ENERGY_RULES.scan(clauses))
}

pub(crate) fn stress(clauses: &[Clause]) -> Level {
    last(&STRESS_RULES.scan(clauses))
}
