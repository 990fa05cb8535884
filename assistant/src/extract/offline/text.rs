//! Text preparation shared by every field: normalisation, clauses, negation and intensity.
//!
//! Everything downstream matches plain lower-case English, so this stage turns what people
//! actually type (emoji, slang, dropped apostrophes, typos, number words, idioms) into that. The
//! idiom table runs before any field rule so that "this deadline is killing me" or "ran out of
//! milk" never reach the crisis or exercise rules in their misleading form.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::{Captures, Regex, RegexSet};

/// Emoji and emoticons become words the field rules already know. A few get tokens of their own
/// (`waterdrop`, `smiley`, `frowny`, `flexed`) because they carry a signal but no word fits.
const EMOJI: &[(&str, &str)] = &[
    ("😴", " sleepy "),
    ("🥱", " sleepy "),
    ("😪", " sleepy "),
    ("💤", " sleepy "),
    ("😫", " exhausted "),
    ("😩", " exhausted "),
    ("🫠", " drained "),
    ("😊", " happy "),
    ("😀", " happy "),
    ("😃", " happy "),
    ("😄", " happy "),
    ("😁", " happy "),
    ("☺", " happy "),
    ("🥰", " happy "),
    ("😍", " happy "),
    ("🥳", " happy "),
    ("🎉", " happy "),
    ("😎", " great "),
    ("🙂", " content "),
    ("😌", " relaxed "),
    ("😢", " sad "),
    ("😭", " sad "),
    ("😞", " sad "),
    ("😔", " sad "),
    ("☹", " sad "),
    ("🙁", " sad "),
    ("😐", " meh "),
    ("😑", " meh "),
    ("😡", " angry "),
    ("😠", " angry "),
    ("🤬", " angry "),
    ("😤", " frustrated "),
    ("😰", " anxious "),
    ("😟", " anxious "),
    ("😥", " anxious "),
    ("😬", " anxious "),
    ("🤯", " overwhelmed "),
    ("😵", " overwhelmed "),
    ("🤒", " sick "),
    ("🤢", " sick "),
    ("🤧", " sick "),
    ("🤕", " sick "),
    ("😂", " laughing "),
    ("🤣", " laughing "),
    ("❤", " love "),
    ("♥", " love "),
    ("👍", " good "),
    ("💪", " flexed "),
    ("🏃", " running "),
    ("🚶", " walking "),
    ("🚴", " cycling "),
    ("🏊", " swimming "),
    ("🧘", " yoga "),
    ("🏋", " gym "),
    ("⚽", " football "),
    // A food emoji on its own is a report of having eaten it ("🥗 for lunch").
    ("🥗", " ate salad "),
    ("🍕", " ate pizza "),
    ("🍔", " ate a burger "),
    ("🍝", " ate pasta "),
    ("🍜", " ate noodles "),
    ("🍣", " ate sushi "),
    ("🥪", " ate a sandwich "),
    ("🍳", " ate eggs "),
    ("🍎", " ate fruit "),
    ("🍌", " ate fruit "),
    ("💧", " waterdrop "),
    ("🚰", " waterdrop "),
    ("☕", " coffee "),
    ("🍷", " wine "),
    ("🍺", " beer "),
    ("🍻", " beer "),
    ("🛌", " bed "),
    ("✅", " done "),
    ("✔", " done "),
];

/// ASCII emoticons, matched on the lower-cased text.
const EMOTICONS: &[(&str, &str)] = &[
    (":-)", " smiley "),
    (":)", " smiley "),
    ("(:", " smiley "),
    (":d", " smiley "),
    (";)", " smiley "),
    ("<3", " love "),
    (":'(", " frowny "),
    (":-(", " frowny "),
    (":(", " frowny "),
    ("):", " frowny "),
];

/// Whole-word rewrites: dropped apostrophes, chat abbreviations and the typos people make when
/// typing on a phone. Only words with no other plausible meaning in a check-in are listed.
const WORDS: &[(&str, &str)] = &[
    ("dont", "don't"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("havent", "haven't"),
    ("hasnt", "hasn't"),
    ("hadnt", "hadn't"),
    ("cant", "can't"),
    ("cannot", "can't"),
    ("couldnt", "couldn't"),
    ("wouldnt", "wouldn't"),
    ("shouldnt", "shouldn't"),
    ("wasnt", "wasn't"),
    ("werent", "weren't"),
    ("isnt", "isn't"),
    ("arent", "aren't"),
    ("aint", "ain't"),
    ("wont", "won't"),
    ("im", "i'm"),
    ("ive", "i've"),
    ("idk", "i don't know"),
    ("tho", "though"),
    ("altho", "although"),
    ("cuz", "because"),
    ("coz", "because"),
    ("cos", "because"),
    ("bc", "because"),
    ("rn", "right now"),
    ("atm", "at the moment"),
    ("tmrw", "tomorrow"),
    ("tmr", "tomorrow"),
    ("tmw", "tomorrow"),
    ("tomoz", "tomorrow"),
    ("2moro", "tomorrow"),
    ("tomorow", "tomorrow"),
    ("tonite", "tonight"),
    ("2nite", "tonight"),
    ("nite", "night"),
    ("2day", "today"),
    ("tdy", "today"),
    ("yday", "yesterday"),
    ("ystd", "yesterday"),
    ("yest", "yesterday"),
    ("yesterdy", "yesterday"),
    ("yesturday", "yesterday"),
    ("w/o", "without"),
    ("abt", "about"),
    ("prob", "probably"),
    ("prolly", "probably"),
    ("probs", "probably"),
    ("rly", "really"),
    ("realy", "really"),
    ("reallly", "really"),
    ("v", "very"),
    ("soo", "so"),
    ("sooo", "so"),
    ("kinda", "kind of"),
    ("sorta", "sort of"),
    ("gud", "good"),
    ("gd", "good"),
    ("gr8", "great"),
    ("okey", "okay"),
    ("k", "okay"),
    ("alrite", "alright"),
    ("aight", "alright"),
    ("tierd", "tired"),
    ("tird", "tired"),
    ("tiered", "tired"),
    ("tiredd", "tired"),
    ("exausted", "exhausted"),
    ("exhuasted", "exhausted"),
    ("exahusted", "exhausted"),
    ("exhasted", "exhausted"),
    ("exhaused", "exhausted"),
    ("knackerd", "knackered"),
    ("stresed", "stressed"),
    ("streesed", "stressed"),
    ("stessed", "stressed"),
    ("stressd", "stressed"),
    ("anxous", "anxious"),
    ("anxios", "anxious"),
    ("anxius", "anxious"),
    ("axious", "anxious"),
    ("hungy", "hungry"),
    ("hungery", "hungry"),
    ("hungrey", "hungry"),
    ("hungary", "hungry"),
    ("starvin", "starving"),
    ("brekfast", "breakfast"),
    ("breakfest", "breakfast"),
    ("breakfeast", "breakfast"),
    ("brekfest", "breakfast"),
    ("breakfat", "breakfast"),
    ("bfast", "breakfast"),
    ("brekkie", "breakfast"),
    ("brekky", "breakfast"),
    ("lunh", "lunch"),
    ("lnch", "lunch"),
    ("lucnh", "lunch"),
    ("dinnr", "dinner"),
    ("diner", "dinner"),
    ("dinenr", "dinner"),
    ("supper", "dinner"),
    ("slep", "slept"),
    ("sleeped", "slept"),
    ("slpet", "slept"),
    ("sleept", "slept"),
    ("sleapt", "slept"),
    ("sleap", "sleep"),
    ("excercise", "exercise"),
    ("exercize", "exercise"),
    ("excersize", "exercise"),
    ("exersize", "exercise"),
    ("exercice", "exercise"),
    ("excercised", "exercised"),
    ("excersized", "exercised"),
    ("wrkout", "workout"),
    ("workuot", "workout"),
    ("worout", "workout"),
    ("wokrout", "workout"),
    ("watter", "water"),
    ("wter", "water"),
    ("drinked", "drank"),
    ("runned", "ran"),
    ("swimmed", "swam"),
    ("energised", "energized"),
    ("feelin", "feeling"),
    ("goin", "going"),
    ("doin", "doing"),
    ("runnin", "running"),
    ("workin", "working"),
    ("tryin", "trying"),
    ("gettin", "getting"),
    ("havin", "having"),
    ("sleepin", "sleeping"),
    ("eatin", "eating"),
    ("nothin", "nothing"),
    ("somethin", "something"),
    ("hrs", "hours"),
    ("hr", "hours"),
    ("hour", "hours"),
    ("mins", "minutes"),
    ("litre", "litres"),
    ("liter", "litres"),
    ("liters", "litres"),
    ("ltr", "litres"),
    ("ltrs", "litres"),
    ("glass", "glasses"),
    ("cup", "cups"),
    ("bottle", "bottles"),
    ("mum's", "mum"),
    ("mom's", "mom"),
];

/// Figures of speech rewritten into what they mean, before any field looks at the text. Order
/// matters: longer phrases come first.
const IDIOMS: &[(&str, &str)] = &[
    // Hyperbole that borrows the words of crisis or exercise language.
    (r"\b(?:is|are|was|were|'s|'re)? ?(?:literally |totally |absolutely |slowly )?killing me\b", " crushing me "),
    (r"\b(?:could|would|i'd|id) (?:literally |honestly )?kill for\b", " would love "),
    (r"\bkill(?:ing)? (?:some )?time\b", " passing time "),
    (
        r"\b(?:die|dying|died) (?:of|from) (?:laughter|laughing|embarrassment|boredom|cringe|cuteness|shame)\b",
        " laughing ",
    ),
    (r"\b(?:died|dying|dead) laughing\b", " laughing "),
    (r"\bi'm dead (?:lol|lmao|haha|laughing)\b", " laughing "),
    (r"\bdying (?:for|to)\b", " craving "),
    (r"\bto die for\b", " delicious "),
    (r"\bmy (?:phone|battery|laptop|plant|car)s? (?:is |are )?(?:dying|dead|died)\b", " my battery is flat "),
    (r"\b(?:dead|dog|bone) tired\b", " very tired "),
    (r"\bdead on my feet\b", " exhausted "),
    (r"\b(bored|scared|worried|frightened|stressed) to death\b", " very $1 "),
    (
        r"\b(?:crushed|smashed|killed|nailed|rocked|aced|destroyed) (?:my|the|a|this morning's|today's|tonight's) (workout|run|training|session|gym session|class|yoga|swim|ride|5k|10k|hike|spin class|leg day)\b",
        " did a great $1 ",
    ),
    (r"\b(?:crushed|smashed|killed|nailed|rocked|aced|owned) (?:it|today|the day|this week)\b", " did great "),
    (r"\bkiller (workout|session|class|run)\b", " hard $1 "),
    (
        r"\b(meeting|email|netflix|movie|film|cleaning|study|coding|gaming|work|shopping|cooking|zoom|call) marathon\b",
        " $1 session ",
    ),
    (r"\bsuicide (?:sprints|runs|drills|shuttles)\b", " shuttle sprints "),
    // Idioms that use exercise words for something else.
    (r"\brun(?:ning)? (?:late|behind)\b", " late "),
    (r"\b(?:ran|run|running|runs) out of\b", " out of "),
    (r"\b(?:ran|run|running|runs) (?:a |some |my |the )?errands?\b", " errands "),
    (r"\b(?:ran|run|running|runs) (?:a )?(?:fever|temperature|temp)\b", " fever "),
    (
        r"\b(?:ran|run|running) (?:a|the|our|my) (meeting|workshop|team|business|company|session|bath|show)\b",
        " led a $1 ",
    ),
    (r"\b(?:school|nursery|daycare) run\b", " school drop-off "),
    (r"\bup and running\b", " working "),
    (r"\bin the long run\b", " eventually "),
    (r"\brun(?:ning)? around\b", " busy "),
    (r"\b(?:run|ran|running) (?:down|ragged)\b|\brundown\b", " drained "),
    (r"\brunning on (?:empty|fumes|caffeine|coffee)\b", " drained "),
    (r"\brunning on\b", " going on "),
    (r"\b(?:it|that|this|things|everything|all) (?:all )?(?:worked|works|work) out\b", " turned out "),
    (
        r"\b(?:work|worked|working|works) out (well|fine|ok|okay|great|alright|in the end|for the best|how|what|why|whether|if|the plan|a plan|a way|some|things|who|where|when)\b",
        " figured out $1 ",
    ),
    (r"\bnot (?:exactly )?a walk in the park\b", " hard "),
    (r"\bwalk(?:ed|ing)? (?:me|us|them|him|her) through\b", " explained "),
    (r"\bbreathing exercises?\b", " breathing practice "),
    (r"\b(?:hit|hitting|hits) the (?:gym|weights)\b", " gym "),
    (r"\b(?:hit|hitting|hits) the pool\b", " swimming "),
    (r"\b(?:hit|hitting|hits) the (?:trails?|hills)\b", " hiking "),
    (r"\b(?:hit|hitting|hits) the (?:sack|hay)\b", " go to bed "),
    // Sleep idioms.
    (r"\bout like a light\b|\bslept like a (?:baby|log|rock)\b", " slept great "),
    (r"\bcatch(?:ing)? some z'?s\b|\bget(?:ting)? some shut-?eye\b", " get some sleep "),
    (r"\b(?:pulled|pulling) an all-? ?nighter\b", " didn't sleep at all "),
    (r"\blie-? ?in\b", " slept in "),
    (r"\btoss(?:ed|ing) and turn(?:ed|ing)\b", " restless night "),
    // Feelings.
    (r"\b(?:i've |have )?never (?:felt|been) better\b|\bcouldn't be better\b", " great "),
    (r"\bcouldn't be happier\b|\bon cloud nine\b|\bover the moon\b|\bon top of the world\b", " happy "),
    (r"\bunder the weather\b", " sick "),
    (r"\bfeeling blue\b", " feeling sad "),
    (r"\bcan't be bothered\b", " unmotivated "),
    (r"\bburn(?:ed|t)[- ]?out\b|\bburnout\b", " burntout "),
    (r"\bstressed out\b", " stressed "),
    (r"\b(?:freaking|freaked) out\b", " panicking "),
    (r"\b(?:sick and tired|tired|sick|fed up) (?:of|with)\b", " fedup with "),
    (r"\bnot great,? (?:but )?not terrible\b|\bnot good,? not bad\b", " meh "),
    (r"\btry and\b", " try to "),
    (r"\bcan't stop (crying|worrying|shaking|panicking|overthinking)\b", " keep $1 "),
    (r"\bheart is broken\b|\bbroken[- ]hearted\b", " heartbroken "),
    // Tracker-style "energy: low", "sleep: 6h".
    (
        r"\b(sleep|mood|energy|stress|water|hunger|exercise|workout|meals?)(?: intake| levels?| today| so far)?(?:\s*[:=]\s*|\s+-\s+)",
        " $1 is ",
    ),
    (r"\bcould be better\b|\b(?:i've |have )?been better\b", " not great "),
    (r"\bcould be worse\b|\bhanging in there\b|\bsurviving\b|\bnothing special\b|\bsame old\b", " okay "),
    (r"\bno complaints\b|\ball good\b", " good "),
    (r"\bso-? ?so\b", " so-so "),
    (r"\bhad a blast\b", " had a great time "),
    (r"\bfml\b|\bugh+\b", " ugh "),
    (r"\bfull of (?:beans|energy|life|beans)\b|\blots of energy\b|\bplenty of energy\b|\bhigh energy\b", " energetic "),
    // Food.
    (r"\bcould eat a horse\b", " starving "),
    (r"\bgrabbed (?:a bite|something to eat|some food|a quick bite)\b|\bwolfed down\b|\bscoffed\b", " ate "),
    (r"\bhad (?:a bite|something to eat|some food|a meal|a proper meal)\b", " ate "),
];

static EMOJI_MAP: LazyLock<HashMap<char, &'static str>> = LazyLock::new(|| {
    EMOJI.iter().map(|(e, w)| (e.chars().next().expect("emoji table entries are not empty"), *w)).collect()
});
static WORD_MAP: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| WORDS.iter().copied().collect());
static WORD_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[a-z0-9'/]+").expect("word regex compiles"));
static IDIOM_SET: LazyLock<RegexSet> =
    LazyLock::new(|| RegexSet::new(IDIOMS.iter().map(|(re, _)| *re)).expect("idiom set compiles"));
static IDIOM_RES: LazyLock<Vec<(Regex, &'static str)>> =
    LazyLock::new(|| IDIOMS.iter().map(|(re, to)| (Regex::new(re).expect("idiom regex compiles"), *to)).collect());

const NUMBER_WORDS: &[(&str, f64)] = &[
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("a couple of", 2.0),
    ("a couple", 2.0),
    ("couple of", 2.0),
    ("a few", 3.0),
    ("an", 1.0),
    ("a", 1.0),
    ("half an", 0.5),
    ("half a", 0.5),
];

/// Units a number word can count. "one" and "a" are numbers only in front of one of these.
const UNITS: &str = r"hours|glasses|cups|litres|bottles|pints|l|ml|k|km|miles|minutes|steps";

static NUMBER_WORD_RE: LazyLock<Regex> = LazyLock::new(|| {
    let words: Vec<&str> = NUMBER_WORDS.iter().map(|(w, _)| *w).collect();
    Regex::new(&format!(r"\b({})(?: and a half)?(?:-?ish)? ({UNITS})\b", words.join("|")))
        .expect("number regex compiles")
});
static HALF_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(\d+) and a half\b").expect("half regex compiles"));
static ISH_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(\d+(?:\.\d+)?)-?ish\b").expect("ish regex compiles"));
static HOURS_MINUTES_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{1,2})h(\d{2})\b").expect("hours-minutes regex compiles"));
static UNIT_GLUE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d+(?:\.\d+)?)(hours|h|glasses|cups|litres|l|ml|k|km|steps)\b").expect("unit glue regex compiles")
});
static THOUSANDS_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{1,3}),(\d{3})\b").expect("thousands regex compiles"));
static K_STEPS_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d+(?:\.\d+)?) ?k steps\b").expect("k steps regex compiles"));
static SPACES_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[ \t]+").expect("spaces regex compiles"));

fn number_word(word: &str) -> Option<f64> {
    NUMBER_WORDS.iter().find(|(w, _)| *w == word).map(|(_, n)| *n)
}

/// Lower-cases and rewrites `text` into the plain form every rule table is written against.
pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut last: Option<char> = None;
    let mut run = 0;
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = match c {
            '\u{2018}' | '\u{2019}' | '\u{02bc}' | '`' | '\u{b4}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            '\u{2013}' | '\u{2014}' => '-',
            '\u{2026}' => '.',
            c => c,
        };
        // Variation selectors, joiners, skin tones and gender signs only decorate an emoji.
        if matches!(c, '\u{fe0f}' | '\u{200d}' | '\u{1f3fb}'..='\u{1f3ff}' | '\u{2640}' | '\u{2642}') {
            continue;
        }
        if let Some(word) = EMOJI_MAP.get(&c) {
            out.push_str(word);
            last = None;
            continue;
        }
        // "soooo tiiiired": three or more of the same letter become two.
        if Some(c) == last && c.is_alphabetic() {
            run += 1;
            if run >= 2 {
                continue;
            }
        } else {
            run = 0;
        }
        last = Some(c);
        out.push(c);
    }
    for (emoticon, word) in EMOTICONS {
        if out.contains(emoticon) {
            out = out.replace(emoticon, word);
        }
    }
    let out = WORD_RE.replace_all(&out, |c: &Captures| {
        let w = &c[0];
        WORD_MAP.get(w).map_or_else(|| w.to_string(), |r| (*r).to_string())
    });
    let mut out = out.into_owned();
    // One pass of the set finds the idioms present; it is re-run only after a rewrite, which
    // can make a later idiom appear.
    let mut present = IDIOM_SET.matches(&out);
    for (i, (re, to)) in IDIOM_RES.iter().enumerate() {
        if present.matched(i) {
            out = re.replace_all(&out, *to).into_owned();
            present = IDIOM_SET.matches(&out);
        }
    }
    let out = THOUSANDS_RE.replace_all(&out, "$1$2");
    let out = K_STEPS_RE.replace_all(&out, |c: &Captures| {
        let k: f64 = c[1].parse().unwrap_or(0.0);
        format!("{} steps", k * 1000.0)
    });
    let out = HOURS_MINUTES_RE.replace_all(&out, |c: &Captures| {
        let h: f64 = c[1].parse().unwrap_or(0.0);
        let m: f64 = c[2].parse().unwrap_or(0.0);
        format!("{} hours", h + m / 60.0)
    });
    let out = UNIT_GLUE_RE.replace_all(&out, |c: &Captures| {
        let unit = if &c[2] == "h" {
            "hours"
        } else if &c[2] == "l" {
            "litres"
        } else {
            &c[2]
        };
        format!("{} {unit}", &c[1])
    });
    let out = NUMBER_WORD_RE.replace_all(&out, |c: &Captures| {
        let n = number_word(&c[1]).unwrap_or(1.0);
        let half = if c[0].contains("and a half") { 0.5 } else { 0.0 };
        format!("{} {}", n + half, &c[2])
    });
    let out = HALF_RE.replace_all(&out, |c: &Captures| format!("{}.5", &c[1]));
    let out = ISH_RE.replace_all(&out, "$1");
    // Number words outside a unit context ("slept maybe five") still count in the sleep and
    // water rules, which accept a bare number after their verb.
    let out = WORD_RE.replace_all(&out, |c: &Captures| {
        let w = &c[0];
        match number_word(w) {
            Some(n) if !matches!(w, "one" | "a" | "an") => format!("{n}"),
            _ => w.to_string(),
        }
    });
    SPACES_RE.replace_all(out.trim(), " ").into_owned()
}

/// One clause of a message: negation and tense do not cross clause boundaries.
#[derive(Clone, Debug)]
pub(crate) struct Clause {
    pub text: String,
    /// Index of the sentence this clause belongs to.
    pub sentence: usize,
    /// Follows "but", "however", "though" ...: what the user stresses.
    pub contrast: bool,
    /// Position of the clause in the message, for "the last word wins" decisions.
    pub index: usize,
    /// Follows "plan is:", "to do:" in the same sentence: everything in it is a plan.
    pub plan: bool,
}

/// A clause that announces a list of plans.
static PLAN_HEADER_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:the |my )?(?:plan|plans|plan is|plan for (?:today|tonight|later|the day)|today's plan|tonight's plan|to do|todo|to-do|goals? for today|later)$")
        .expect("plan header regex compiles")
});

/// Words that start a new clause. "or" and "nor" are missing on purpose: "didn't eat or drink"
/// keeps its negation across them.
const CLAUSE_WORDS: &[&str] =
    &["but", "and", "though", "although", "however", "because", "then", "plus", "while", "whereas", "&", "except"];
const CONTRAST_WORDS: &[&str] = &["but", "however", "though", "except", "whereas", "although"];

/// Nouns that continue a list across "and" or a comma ("skipped breakfast and lunch", "no gym,
/// yoga or running"): the clause does not break in front of them.
const LIST_NOUNS: &[&str] = &[
    "breakfast",
    "lunch",
    "dinner",
    "snack",
    "snacks",
    "brunch",
    "water",
    "coffee",
    "tea",
    "gym",
    "yoga",
    "pilates",
    "run",
    "running",
    "swim",
    "swimming",
    "walk",
    "cycling",
    "exercise",
    "workout",
    "food",
    "meal",
    "meals",
    "sleep",
];
/// Verbs that continue an intention after "and" ("will call mum and go to bed early").
pub(crate) const BASE_VERBS: &[&str] = &[
    "go", "call", "eat", "drink", "sleep", "take", "read", "get", "try", "make", "cook", "walk", "run", "do", "have",
    "meet", "stretch", "meditate", "journal", "rest", "text", "see", "visit", "book", "stop", "start", "finish",
    "relax", "head", "hit", "write", "ask", "talk", "prep", "plan", "swim", "cycle", "log", "turn", "put", "spend",
    "skip", "avoid", "limit", "cut", "be", "watch", "play", "clean", "tidy", "ring", "phone", "catch", "chill",
    "unwind", "wind", "lie", "nap", "shower", "bath", "work",
];
/// Foods: eaten when a verb of eating or a food emoji comes with them, and list members too.
pub(crate) const FOODS: &[&str] = &[
    "pizza",
    "salad",
    "sandwich",
    "sandwiches",
    "burger",
    "pasta",
    "rice",
    "noodles",
    "soup",
    "eggs",
    "toast",
    "oatmeal",
    "porridge",
    "cereal",
    "fruit",
    "banana",
    "apple",
    "veggies",
    "vegetables",
    "chicken",
    "fish",
    "steak",
    "curry",
    "sushi",
    "takeaway",
    "takeout",
    "chocolate",
    "cake",
    "cookies",
    "crisps",
    "chips",
    "smoothie",
    "yogurt",
    "yoghurt",
    "bagel",
    "wrap",
    "leftovers",
    "tacos",
    "burrito",
    "stew",
    "omelette",
    "pancakes",
    "dumplings",
    "kebab",
    "bowl",
    "meal",
    "food",
    "snack",
    "biscuits",
    "nuts",
    "granola",
    "muffin",
    "croissant",
];
const ARTICLES: &[&str] = &["the", "a", "an", "my", "any", "no", "some", "his", "her", "our"];

/// Splits the normalised text into sentences and clauses.
pub(crate) fn clauses(text: &str) -> Vec<Clause> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut sentences: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let decimal =
            c == '.' && i > 0 && chars[i - 1].is_ascii_digit() && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if matches!(c, '.' | '!' | '?' | ';' | '\n' | '(' | ')' | '"') && !decimal {
            sentences.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    sentences.push(cur);
    let mut index = 0;
    for (s, sentence) in sentences.iter().filter(|s| !s.trim().is_empty()).enumerate() {
        let mut words: Vec<String> = Vec::new();
        let mut contrast = false;
        let mut plan = false;
        let mut flush = |words: &mut Vec<String>, contrast: bool, out: &mut Vec<Clause>, index: &mut usize| {
            let text = words.join(" ").trim().to_string();
            words.clear();
            if !text.is_empty() {
                let header = PLAN_HEADER_RE.is_match(&text);
                out.push(Clause { text, sentence: s, contrast, index: *index, plan });
                plan |= header;
                *index += 1;
            }
        };
        let spaced = sentence.replace(',', " , ").replace(':', " : ").replace(" - ", " , ");
        let tokens: Vec<&str> = spaced.split_whitespace().collect();
        for (i, &tok) in tokens.iter().enumerate() {
            let is_comma = tok == "," || tok == ":";
            let is_word = CLAUSE_WORDS.contains(&tok);
            if is_comma || is_word {
                let mut next = tokens.get(i + 1).copied().unwrap_or("");
                if ARTICLES.contains(&next) {
                    next = tokens.get(i + 2).copied().unwrap_or("");
                }
                let list = matches!(tok, "," | "and" | "&") && (LIST_NOUNS.contains(&next) || FOODS.contains(&next));
                if !list {
                    flush(&mut words, contrast, &mut out, &mut index);
                    // Only a contrast word changes sides: "but slept 8 hours and feel calm" is
                    // all on the far side of "but".
                    if CONTRAST_WORDS.contains(&tok) {
                        contrast = true;
                    }
                    continue;
                }
                if is_comma {
                    continue;
                }
            }
            words.push(tok.to_string());
        }
        flush(&mut words, contrast, &mut out, &mut index);
    }
    // "gonna make lunch and go for a walk after": the second clause is as much a plan as the first.
    for i in 1..out.len() {
        let (prev, cur) = (&out[i - 1], &out[i]);
        let continues = prev.sentence == cur.sentence
            && (prev.plan || future(&prev.text))
            && cur.text.split_whitespace().next().is_some_and(|w| BASE_VERBS.contains(&w));
        if continues {
            out[i].plan = true;
        }
    }
    out
}

/// Words that negate what follows them within a few words.
const NEGATORS: &[&str] = &[
    "not",
    "no",
    "never",
    "without",
    "nothing",
    "none",
    "nor",
    "neither",
    "zero",
    "hardly",
    "barely",
    "don't",
    "didn't",
    "doesn't",
    "haven't",
    "hasn't",
    "hadn't",
    "can't",
    "couldn't",
    "won't",
    "wouldn't",
    "shouldn't",
    "wasn't",
    "weren't",
    "isn't",
    "aren't",
    "ain't",
    "lack",
    "lacking",
];
/// Words that end a negation's reach: "no idea why i'm tired" is about being tired.
const NEGATION_BLOCKERS: &[&str] =
    &["why", "what", "how", "if", "whether", "because", "since", "when", "who", "where", "until", "unless", "which"];
/// How many words before a match a negator may stand ("didn't really feel that tired").
const NEGATION_WINDOW: usize = 4;

/// Whether the end of `before` (the clause text in front of a match) negates the match.
pub(crate) fn negated(before: &str) -> bool {
    let words: Vec<&str> = before.split_whitespace().collect();
    for w in words.iter().rev().take(NEGATION_WINDOW) {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        if NEGATION_BLOCKERS.contains(&w) {
            return false;
        }
        if NEGATORS.contains(&w) || w.ends_with("n't") {
            return true;
        }
    }
    false
}

/// Someone else's state ("my kid was sick", "my partner is stressed"): not the user's.
static OTHER_PERSON_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:he|she|they|kid|kids|son|daughter|baby|toddler|partner|wife|husband|boyfriend|girlfriend|bf|gf|mum|mom|dad|friend|boss|dog|cat|sister|brother|colleague|coworker|everyone|everybody|team|people)(?:'s)? (?:is|was|are|were|got|gets|seems|seemed|looks|looked|feels|felt|being|getting)(?: (?:so|very|really|a bit|quite|pretty|super|too))?\s*$")
        .expect("other person regex compiles")
});

/// Whether the words in front of a match make it someone else's state.
pub(crate) fn someone_else(before: &str) -> bool {
    OTHER_PERSON_RE.is_match(before)
}

/// How strongly a feeling is put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Intensity {
    /// "a bit stressed", "slightly tired".
    Mild,
    Plain,
    /// "so stressed", "really tired".
    Strong,
}

/// Diminishers. Hedges ("kinda drained", "sort of anxious") are not among them: people hedge out
/// of habit and still mean it.
const MILD: &[&str] = &["bit", "little", "slightly", "somewhat", "tad", "mildly", "fairly", "moderately", "abit"];
const STRONG: &[&str] = &[
    "very",
    "so",
    "really",
    "super",
    "extremely",
    "incredibly",
    "totally",
    "completely",
    "utterly",
    "absolutely",
    "insanely",
    "crazy",
    "mega",
    "proper",
    "seriously",
    "too",
    "damn",
    "bloody",
    "freaking",
    "fucking",
    "hella",
    "massively",
];

/// The intensity the two words before a match give it.
pub(crate) fn intensity(before: &str) -> Intensity {
    for w in before.split_whitespace().rev().take(3) {
        if MILD.contains(&w) {
            return Intensity::Mild;
        }
        if STRONG.contains(&w) {
            return Intensity::Strong;
        }
    }
    Intensity::Plain
}

/// A rule table: a pattern, what it says, and what it says when negated. `None` means the match
/// says nothing in that polarity ("relax" alone says nothing, "can't relax" says a lot).
pub(crate) struct Rules<T: Copy + 'static> {
    rules: Vec<(Regex, Option<T>, Option<T>)>,
}

/// One rule that matched one clause.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit<T> {
    pub value: T,
    pub negated: bool,
    pub intensity: Intensity,
    pub clause: usize,
    pub start: usize,
    pub end: usize,
}

impl<T: Copy + 'static> Rules<T> {
    pub(crate) fn new(table: &[(&str, Option<T>, Option<T>)]) -> Self {
        let rules = table.iter().map(|(pattern, v, n)| (re(&format!(r"\b(?:{pattern})\b")), *v, *n)).collect();
        Rules { rules }
    }

    /// Every match in every clause, negation applied, in message order. A match inside a longer
    /// match of the same table is dropped: "not tired at all" outranks the "tired" inside it.
    pub(crate) fn scan(&self, clauses: &[Clause]) -> Vec<Hit<T>> {
        let mut all = Vec::new();
        for clause in clauses {
            // (start, end, value after negation, negated, intensity)
            let mut found: Vec<(usize, usize, Option<T>, bool, Intensity)> = Vec::new();
            for (re, value, when_negated) in &self.rules {
                for m in re.find_iter(&clause.text) {
                    let before = &clause.text[..m.start()];
                    if someone_else(before) {
                        continue;
                    }
                    let neg = negated(before);
                    let value = if neg { *when_negated } else { *value };
                    found.push((m.start(), m.end(), value, neg, intensity(before)));
                }
            }
            for &(start, end, value, negated, intensity) in &found {
                let inside = found.iter().any(|&(s, e, ..)| s <= start && end <= e && e - s > end - start);
                if let (false, Some(value)) = (inside, value) {
                    all.push(Hit { value, negated, intensity, clause: clause.index, start, end });
                }
            }
        }
        all.sort_by_key(|h| (h.clause, h.start));
        all
    }
}

/// Plans: the clause is about something that has not happened yet.
static FUTURE_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:going to|going for|going out for|goal is to|aim is to|dream is to|this year|this month|one day|someday|gonna|will|plan to|planning to|planning on|plan on|want to|wanna|hope to|hoping to|about to|intend to|aim to|aiming to|later|tonight|this evening|tomorrow|after work|soon|heading to|heading out|off to|on my way to|booked|scheduled|signed up|next|thinking of|thinking about|might|may|maybe|hopefully|i'd like to|would like to|l8r|tmrw|tmr|tomoz|registered|remind me to|planning a|let's see if|(?:on |this |next )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend)(?:$| morning| evening| night))\b|'ll\b",
    )
});
/// Wishes and obligations: a plan only when a time is attached ("need to run later").
static WISH_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:should|need to|needs to|need|needs|must|have to|has to|got to|gotta|ought to|try to|trying to|want to|wanna)\b",
    )
});
/// A plan that was not carried out: "was going to run but ...", "meant to go to the gym".
static ABANDONED_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:was going to|were going to|was gonna|meant to|wanted to|supposed to|should have|should've|planned to|was planning to|was hoping to|tried to|intended to|was meant to|was supposed to)\b",
    )
});
/// Habits and preferences say nothing about today.
static HABIT_RE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:usually|normally|always|every (?:day|morning|evening|week|weekend)|often|sometimes|typically|generally|used to|lately|recently|these days|i (?:love|like|enjoy|hate|miss))\b",
    )
});

pub(crate) fn future(text: &str) -> bool {
    FUTURE_RE.is_match(text)
}
pub(crate) fn wish(text: &str) -> bool {
    WISH_RE.is_match(text)
}
pub(crate) fn abandoned(text: &str) -> bool {
    ABANDONED_RE.is_match(text)
}
pub(crate) fn habit(text: &str) -> bool {
    HABIT_RE.is_match(text)
}

/// Compiles one pattern used outside a rule table.
pub(crate) fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("pattern {pattern:?} must compile: {e}"))
}

/// Parses a number the normaliser left in the text ("7", "6.5").
pub(crate) fn number(s: &str) -> Option<f64> {
    s.parse().ok().or_else(|| number_word(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_what_people_type() {
        assert_eq!(normalize("Soooo TIRED 😴, didnt eat brekkie"), "so tired sleepy , didn't eat breakfast");
        assert_eq!(normalize("slept six and a half hours"), "slept 6.5 hours");
        assert_eq!(normalize("two litres of water"), "2 litres of water");
        assert_eq!(normalize("7h30 of sleep"), "7.5 hours of sleep");
        assert_eq!(normalize("this deadline is killing me"), "this deadline crushing me");
        assert_eq!(normalize("I ran out of milk"), "i out of milk");
    }

    #[test]
    fn clauses_split_on_conjunctions_but_keep_lists() {
        let c = clauses("skipped breakfast and lunch but ran 5k, feeling good");
        let texts: Vec<&str> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["skipped breakfast and lunch", "ran 5k", "feeling good"]);
        assert!(c[1].contrast);
        assert_eq!(clauses("slept 7.5 hours. ok").len(), 2);
    }

    #[test]
    fn negation_has_a_short_reach_and_stops_at_question_words() {
        assert!(negated("didn't really feel that"));
        assert!(negated("not"));
        assert!(!negated("no idea why i'm"));
        assert!(!negated("i'm"));
    }
}
